-- trainers/data_adapters.lua — what fit/evaluate/predict accept as data, as
-- one interface: an adapter whose epoch() yields batches {x, y, sample_weight}.
-- Data are tensors (or nested tables of numbers), tables of tensors for
-- models with several inputs/outputs (lists or named), or a klua.data.Dataset
-- whose elements are x or {x, y} or {x, y, sample_weight}. Also the
-- validation_split cut. Keras: trainers/data_adapters/.
local core = require("klua.core")
local class = require("klua.class")
local tensor = require("klua.tensor")
local ops = require("klua.ops")
local random = require("klua.random")
local data = require("klua.data")
local structure = require("klua.tree")

local raise = core.raise
local flatten, map, is_plain = structure.flatten, structure.map, structure.is_struct

local M = {}

M.is_dataset = data.is_dataset

--- to_tensors(x, who, what): x with every leaf a tensor (nested tables of
-- numbers become one tensor; tables of those, tables of tensors).
local function to_tensors(x, who, what)
  if x == nil then return nil end
  if core.is_tensor(x) then return x end
  if type(x) == "number" then return tensor.tensor(x) end
  if is_plain(x) then
    local first = x[1]
    if type(first) == "number" or type(first) == "boolean" or (is_plain(first) and (type(first[1]) == "number" or is_plain(first[1]))) then
      -- a nested table of numbers
      local ok, t = pcall(tensor.tensor, x)
      if ok then return t end
    end
    local out = {}
    for k, v in pairs(x) do out[k] = to_tensors(v, who, what) end
    return out
  end
  raise(("%s: %s must be tensors, got %s"):format(who, what, class.name_of(x)))
end
M.to_tensors = to_tensors

local function first_dim(t) return t.nd > 0 and tonumber(t.dims[0]) or nil end

-- The common first dimension of parts {{name, structure}, ...}.
local function num_samples(who, parts)
  local n, first
  for _, part in ipairs(parts) do
    for _, t in ipairs(flatten(part[2])) do
      local d = first_dim(t)
      if d == nil then raise(("%s: %s is a scalar; data needs a first (batch) dimension"):format(who, part[1])) end
      if n == nil then n, first = d, part[1]
      elseif d ~= n then
        raise(("%s: the data do not have the same number of samples: %s has %d, %s has %d"):format(who, first, n, part[1], d))
      end
    end
  end
  return n
end

--------------------------------------------------------------------------------
-- Adapters: a.steps (nil when a dataset's length is unknown), a:epoch() (an
-- iterator of batches), a:first_batch() (read aside: no shuffle drawn, no
-- iterator advanced), a.ran_out (a dataset ended before steps), and
-- a:generators() (the random generators that decide future orders, beyond
-- klua.random's global stream, for BackupAndRestore).

local Adapter = class("DataAdapter")
function Adapter:generators() return {} end

-- f(t, a, b) on every tensor of s (nil stays nil). A plain tensor, the
-- common case, costs no closure and no walk: this runs at every step.
local function rows(s, f, a, b)
  if s == nil then return nil end
  if core.is_tensor(s) then return f(s, a, b) end
  return map(s, function(t) return f(t, a, b) end)
end
local function take_rows(t, idx) return ops.take(t, idx, 1) end
local function slice_rows(t, lo, hi) return ops.slice_axis(t, 1, lo, hi) end

-- From tensors: batches by index, reshuffled at each epoch from klua.random.
local function tensor_adapter(who, x, y, sw, batch_size, shuffle, steps)
  local n = num_samples(who, { { "x", x }, { "y", y }, { "sample_weight", sw } })
  if n == nil then raise(who .. ": x is required") end
  local nb = math.ceil(n / batch_size)
  local a = Adapter()
  a.num_samples = n
  a.steps = steps and math.min(steps, nb) or nb
  function a:first_batch()
    local hi = math.min(batch_size, n)
    return { map(x, function(t) return ops.slice_axis(t, 1, 1, hi) end) }
  end
  function a:epoch()
    local perm = shuffle and random.permutation_tensor(n) or nil
    local step = 0
    return function()
      if step >= a.steps then return nil end
      local lo, hi = step * batch_size + 1, math.min((step + 1) * batch_size, n)
      step = step + 1
      if perm then
        local idx = ops.slice_axis(perm, 1, lo, hi)
        return { rows(x, take_rows, idx), rows(y, take_rows, idx), rows(sw, take_rows, idx) }
      end
      return { rows(x, slice_rows, lo, hi), rows(y, slice_rows, lo, hi), rows(sw, slice_rows, lo, hi) }
    end
  end
  return a
end

-- An element of a Dataset as {x, y, sample_weight}.
local function unpack_element(e)
  if is_plain(e) and e[1] ~= nil then return { e[1], e[2], e[3] } end
  return { e }
end

-- keep_iterator: with steps_per_epoch, an epoch goes on where the last one
-- stopped instead of restarting the dataset (Keras).
local function dataset_adapter(who, ds, steps, keep_iterator)
  local card = ds:cardinality()
  if card == data.INFINITE_CARDINALITY and not steps then
    raise(who .. ": the dataset is infinite (repeat()); give steps_per_epoch (or steps)")
  end
  local a = Adapter()
  if steps then a.steps = steps elseif card >= 0 then a.steps = card end
  function a:generators() return ds:generators() end
  local it
  function a:first_batch()
    local e = ds:iter()()
    return e ~= nil and unpack_element(e) or nil
  end
  function a:epoch()
    if not keep_iterator or it == nil then it = ds:iter() end
    local step = 0
    return function()
      if a.steps and step >= a.steps then return nil end
      local e = it()
      if e == nil then
        it = nil
        if steps and step < steps then a.ran_out = true end
        return nil
      end
      step = step + 1
      return unpack_element(e)
    end
  end
  return a
end

--- make_adapter(who, kw, x, y, sample_weight, batch_size, shuffle, steps,
-- keep_iterator): the adapter for x (a Dataset, or tensors batched by
-- batch_size). kw is the caller's keywords, to refuse batch_size with a Dataset.
function M.make_adapter(who, kw, x, y, sw, batch_size, shuffle, steps, keep_iterator)
  if data.is_dataset(x) then
    if y ~= nil then raise(who .. ": y must not be given when x is a Dataset (its elements are {x, y})") end
    if sw ~= nil then raise(who .. ": sample_weight must not be given when x is a Dataset (its elements are {x, y, sample_weight})") end
    if kw.batch_size ~= nil then raise(who .. ": batch_size must not be given when x is a Dataset (batch the dataset instead)") end
    return dataset_adapter(who, x, steps, keep_iterator)
  end
  if x == nil then raise(who .. ": x is required") end
  if type(batch_size) ~= "number" or batch_size < 1 or batch_size % 1 ~= 0 then
    raise(("%s: batch_size must be a positive integer. Received: batch_size=%s"):format(who, tostring(batch_size)))
  end
  return tensor_adapter(who, to_tensors(x, who, "x"), to_tensors(y, who, "y"), to_tensors(sw, who, "sample_weight"),
    batch_size, shuffle, steps)
end

--------------------------------------------------------------------------------
-- Validation data

--- split_validation(who, x, y, sample_weight, fraction): the first 1 - fraction
-- of the samples for training and the rest {x, y, sample_weight} for
-- validation, unshuffled (Keras).
function M.split_validation(who, x, y, sw, fraction)
  if type(fraction) ~= "number" or fraction <= 0 or fraction >= 1 then
    raise(("%s: validation_split must be a number between 0 and 1. Received: validation_split=%s"):format(who, tostring(fraction)))
  end
  if data.is_dataset(x) then
    raise(who .. ": validation_split is not supported when x is a Dataset; give validation_data")
  end
  x, y, sw = to_tensors(x, who, "x"), to_tensors(y, who, "y"), to_tensors(sw, who, "sample_weight")
  local n = num_samples(who, { { "x", x }, { "y", y }, { "sample_weight", sw } })
  local at = math.ceil(n * (1 - fraction))
  if at < 1 or at >= n then
    raise(("%s: validation_split=%s leaves no samples for training or for validation (%d samples)"):format(who, tostring(fraction), n))
  end
  local function head(t) return ops.slice_axis(t, 1, 1, at) end
  local function tail(t) return ops.slice_axis(t, 1, at + 1, n) end
  local function part(s, f) if s == nil then return nil end return map(s, f) end
  return part(x, head), part(y, head), part(sw, head), { part(x, tail), part(y, tail), part(sw, tail) }
end

--- check_validation_data(who, val): val is {x, y[, sample_weight]} or a Dataset.
function M.check_validation_data(who, val)
  if not data.is_dataset(val) and (not is_plain(val) or val[1] == nil) then
    raise(who .. ": validation_data must be {x_val, y_val}, {x_val, y_val, sample_weight} or a Dataset")
  end
end

--- validation_adapter(who, val, batch_size, steps): batches of val, in order.
function M.validation_adapter(who, val, batch_size, steps)
  if data.is_dataset(val) then return M.make_adapter(who, {}, val, nil, nil, nil, false, steps) end
  return M.make_adapter(who, {}, val[1], val[2], val[3], batch_size, false, steps)
end

return M
