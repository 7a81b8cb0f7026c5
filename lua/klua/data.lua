-- data.lua — klua.data: tf.data-style input pipelines (klua.data.Dataset).
--
--   local ds = klua.data.Dataset.from_tensor_slices({x_train, y_train})
--                :shuffle(1024, 42):batch(64)
--   for batch in ds:iter() do local x, y = batch[1], batch[2] ... end
--
-- An element is a tensor or a table of them: a list (Keras's tuple) or a
-- named table (Keras's dict), nested as deep as you like. Datasets are lazy:
-- each iter() runs the pipeline afresh. Rows are never copied one value at a
-- time in Lua: until a map() needs the values, the pipeline passes row
-- numbers, and batch() gathers all rows of a batch with one C call per
-- component (ops "take"); a single row is a view of its source tensor.
--
-- Not here: threads. prefetch() is accepted and does nothing (see there).
local ffi = require("ffi")
local bit = require("bit")
local core = require("klua.core")
local class = require("klua.class")
local random = require("klua.random")
local tensor = require("klua.tensor")
local raise = core.raise
local band, bor, bxor, rshift, tobit = bit.band, bit.bor, bit.bxor, bit.rshift, bit.tobit

local data = {}
local INFINITE, UNKNOWN = -1, -2
data.INFINITE_CARDINALITY, data.UNKNOWN_CARDINALITY = INFINITE, UNKNOWN

local is_tensor = core.is_tensor

-- Structures -------------------------------------------------------------------

local function is_struct(x) return type(x) == "table" and not is_tensor(x) end

local function map_structure(s, fn)
  if not is_struct(s) then return fn(s) end
  local out = {}
  for k, v in pairs(s) do out[k] = map_structure(v, fn) end
  return out
end

-- fn(list of leaves at the same place in every structure of `list`).
local function zip_structure(list, fn, what)
  local first = list[1]
  if not is_struct(first) then return fn(list) end
  local out = {}
  for k in pairs(first) do
    local sub = {}
    for i, s in ipairs(list) do
      if not is_struct(s) or s[k] == nil then
        raise(("%s: elements have different structures (no '%s' in element %d)"):format(what, tostring(k), i))
      end
      sub[i] = s[k]
    end
    out[k] = zip_structure(sub, fn, what)
  end
  return out
end

-- Rows --------------------------------------------------------------------------

-- A pending row: {source, 0-based index}; materialised only when needed.
local Ref = {}

local function materialize(e)
  if getmetatable(e) ~= Ref then return e end
  local i = e[2] + 1
  return map_structure(e[1].struct, function(t) return tensor.row_view(t, i) end)
end

local function index_tensor(items, k)
  local buf = ffi.new("double[?]", k)
  for i = 1, k do buf[i - 1] = items[i][2] end
  return tensor.from_doubles(k, buf)
end

-- One batch from k elements: a gather per component when they are rows of one
-- source, else a stack of the materialised elements.
local function collate(items, k)
  local first = items[1]
  if getmetatable(first) == Ref then
    local src, same = first[1], true
    for i = 2, k do
      local it = items[i]
      if getmetatable(it) ~= Ref or it[1] ~= src then same = false; break end
    end
    if same then
      local idx = index_tensor(items, k)
      return map_structure(src.struct, function(t) return core.op("take", t, idx, nil, { axes = { 0 } }) end)
    end
  end
  local els = {}
  for i = 1, k do els[i] = materialize(items[i]) end
  return zip_structure(els, function(leaves) return core.op_n("stack", leaves, { axes = { 0 } }) end, "Dataset.batch")
end

-- An epoch's order (mulberry32) in 32-bit integer ops, seeded by one draw from
-- the shuffle's Generator: the same orders on every machine, a stream that is
-- advanced once per epoch (so its state at an epoch boundary decides the rest).
local function imul(a, b)   -- 32-bit wrapping multiply; exact in doubles
  return tobit(band(a, 0xffff) * b + tobit(rshift(a, 16) * b) * 65536)
end
local function new_rng(seed)
  local state = tobit(seed)
  return function(n)   -- uniform integer in [0, n)
    state = tobit(state + 0x6D2B79F5)
    local t = imul(bxor(state, rshift(state, 15)), bor(state, 1))
    t = bxor(t, tobit(t + imul(bxor(t, rshift(t, 7)), bor(t, 61))))
    t = bxor(t, rshift(t, 14))
    local u = t < 0 and t + 4294967296 or t
    return math.floor(u / 4294967296 * n)
  end
end
data._new_rng = new_rng   -- for tests

-- Arguments ---------------------------------------------------------------------

local function check_count(n, what, allow_minus_one)
  if type(n) ~= "number" or n ~= math.floor(n) or (n < 0 and not (allow_minus_one and n == -1)) then
    raise(("%s: expected a non-negative integer%s, got %s"):format(what, allow_minus_one and " (or -1 for all)" or "", tostring(n)))
  end
  return n
end

-- Calls fn with a tuple element unpacked (Keras: map(lambda x, y: ...)).
local function call_with(fn, e)
  if is_struct(e) and e[1] ~= nil then return fn(unpack(e, 1, #e)) end
  return fn(e)
end
local function pack(...) return select("#", ...), { ... } end

-- Dataset -----------------------------------------------------------------------

local Dataset = class("Dataset")
data.Dataset = Dataset

--- Dataset(open, cardinality): a pipeline of elements (tensors, or tables of them), as tf.data.Dataset; made with
-- Dataset.from_tensor_slices(x) and chained: ds:shuffle(1024):batch(64), iterated with ds:iter().
-- open() returns a fresh next() that yields elements, then nil (and nil again).
-- Datasets made of the rows of one source (from_tensor_slices, then shuffle)
-- also keep index_open(), a stream of bare 0-based row numbers, so batch can
-- gather without making a Lua table per row. gens: the pipeline's shuffle
-- Generators, upstream first (see generators()).
function Dataset:__init(open, card, index_open, src, gens)
  self._open, self._card, self._index_open, self._src = open, card, index_open, src
  self._gens = gens or {}
end

--- ds:generators(): the klua.random.Generators whose states decide this
-- pipeline's future orders (its shuffles, upstream first, in a stable order).
-- Saving their get_state() at an epoch boundary and restoring it with
-- set_state() in a new process continues with the same orders.
function Dataset:generators()
  local out = {}
  for i, g in ipairs(self._gens) do out[i] = g end
  return out
end

-- The element stream of a row-index stream: a Ref per row.
local function refs_of(index_open, src)
  return function()
    local nxt = index_open()
    return function()
      local i = nxt()
      if i ~= nil then return setmetatable({ src, i }, Ref) end
    end
  end
end

--- is_dataset(x): true when x is a klua.data.Dataset.
function data.is_dataset(x) return class.is_instance(x, Dataset) end

-- Leaves: tensors, or flat Lua lists of numbers (converted). Deeper numeric
-- nesting is read as structure: convert it with klua.tensor first.
local function normalize(x, path, info)
  if is_tensor(x) or (type(x) == "table" and type(x[1]) == "number") then
    local t = core.to_tensor(x)
    if t.nd < 1 then
      raise(("Dataset.from_tensor_slices: %s is a scalar; slicing needs a first dimension"):format(path))
    end
    local n = tonumber(t.dims[0])
    if info.n == nil then info.n, info.first = n, path
    elseif info.n ~= n then
      raise(("Dataset.from_tensor_slices: components differ in their first dimension: %s has %d, %s has %d")
        :format(info.first, info.n, path, n))
    end
    return t
  end
  if type(x) ~= "table" then
    raise(("Dataset.from_tensor_slices: %s is a %s; expected a tensor or a table of tensors"):format(path, type(x)))
  end
  local out, any = {}, false
  for k, v in pairs(x) do
    any = true
    out[k] = normalize(v, type(k) == "number" and ("%s[%d]"):format(path, k) or ("%s.%s"):format(path, tostring(k)), info)
  end
  if not any then raise(("Dataset.from_tensor_slices: %s is an empty table"):format(path)) end
  return out
end

--- Dataset.from_tensor_slices(x): one element per row (first dimension) of x,
-- a tensor or a (nested) table of tensors with equal first dimensions.
function Dataset.from_tensor_slices(x)
  local info = {}
  local src = { struct = normalize(x, "x", info) }
  local n = info.n
  local function index_open()
    local i = -1
    return function()
      if i < n - 1 then i = i + 1; return i end
    end
  end
  return Dataset(refs_of(index_open, src), n, index_open, src)
end

--- ds:iter(): the elements, for `for element in ds:iter() do ... end`.
function Dataset:iter()
  local nxt = self._open()
  return function()
    local e = nxt()
    if e == nil then return nil end
    return materialize(e)
  end
end

--- ds:cardinality(): the number of elements; -1 infinite, -2 unknown (filter).
function Dataset:cardinality() return self._card end

--- Dataset:shuffle(buffer_size, seed=nil, reshuffle_each_iteration=true) (also shuffle(buffer_size, {seed=, reshuffle_each_iteration=})):
-- each output drawn at random from a buffer of buffer_size elements (at least the dataset's size: a uniform permutation).
-- The orders come from a Generator held by the dataset (ds:generators()):
-- Generator(seed) (or the Generator given as seed), or without a seed one
-- seeded now from klua.random (so klua.random.seed fixes it). Each iteration
-- draws its order's seed from it; with reshuffle_each_iteration=false every
-- iteration uses the first order.
function Dataset:shuffle(buffer_size, seed, reshuffle)
  if type(seed) == "table" and not random.is_generator(seed) and not core.class_name_of(seed) then
    seed, reshuffle = seed.seed, seed.reshuffle_each_iteration
  end
  if type(buffer_size) ~= "number" or buffer_size < 1 or buffer_size ~= math.floor(buffer_size) then
    raise(("Dataset.shuffle: buffer_size must be a positive integer, got %s"):format(tostring(buffer_size)))
  end
  local given = random.is_generator(seed)
  if seed ~= nil and not given and (type(seed) ~= "number" or seed ~= math.floor(seed) or math.abs(seed) == math.huge) then
    raise(("Dataset.shuffle: seed must be an integer or a klua.random.Generator, got %s"):format(core.describe(seed)))
  end
  if reshuffle == nil then reshuffle = true end
  local gen = given and seed or random.Generator(seed)
  local peek = not reshuffle and random.Generator(0) or nil
  -- The order's seed: the next draw, or without reshuffling the draw the
  -- generator would give next (it never advances, so its state still decides).
  local function order_seed()
    if reshuffle then return gen:next() end
    peek:set_state(gen:get_state())
    return peek:next()
  end
  -- The buffered shuffle over any stream; on a row-index stream it holds
  -- numbers, on an element stream the elements (same order either way).
  local function shuffled(up)
    return function()
      local rng, nxt = new_rng(order_seed()), up()
      local buf, n, done = {}, 0, false
      while n < buffer_size do
        local e = nxt()
        if e == nil then done = true; break end
        n = n + 1; buf[n] = e
      end
      return function()
        if n == 0 then return nil end
        local j = rng(n) + 1
        local out = buf[j]
        local e = nil
        if not done then e = nxt(); done = e == nil end
        if e ~= nil then buf[j] = e
        else buf[j] = buf[n]; buf[n] = nil; n = n - 1 end
        return out
      end
    end
  end
  local gens = self:generators()
  gens[#gens + 1] = gen
  if self._index_open then
    local index_open = shuffled(self._index_open)
    return Dataset(refs_of(index_open, self._src), self._card, index_open, self._src, gens)
  end
  return Dataset(shuffled(self._open), self._card, nil, nil, gens)
end

--- Dataset:batch(batch_size, {drop_remainder=false}) (also batch(n, true)): stacks consecutive elements along a
-- new first axis; the last batch may be short unless drop_remainder.
function Dataset:batch(batch_size, opts)
  local drop = (type(opts) == "table" and opts.drop_remainder) or opts == true
  if type(batch_size) ~= "number" or batch_size < 1 or batch_size ~= math.floor(batch_size) then
    raise(("Dataset.batch: batch_size must be a positive integer, got %s"):format(tostring(batch_size)))
  end
  local c = self._card
  if c >= 0 then c = drop and math.floor(c / batch_size) or math.ceil(c / batch_size) end
  if self._index_open then
    -- rows of one source: gather each batch with one take per component
    local index_open, src = self._index_open, self._src
    return Dataset(function()
      local nxt, ended = index_open(), false
      local buf = ffi.new("double[?]", batch_size)
      return function()
        if ended then return nil end
        local k = 0
        while k < batch_size do
          local i = nxt()
          if i == nil then ended = true; break end
          buf[k] = i; k = k + 1
        end
        if k == 0 or (drop and k < batch_size) then return nil end
        local idx = tensor.from_doubles(k, buf)
        return map_structure(src.struct, function(t) return core.op("take", t, idx, nil, { axes = { 0 } }) end)
      end
    end, c, nil, nil, self._gens)
  end
  local up = self._open
  return Dataset(function()
    local nxt, ended = up(), false
    return function()
      if ended then return nil end
      local items, k = {}, 0
      while k < batch_size do
        local e = nxt()
        if e == nil then ended = true; break end
        k = k + 1; items[k] = e
      end
      if k == 0 or (drop and k < batch_size) then return nil end
      return collate(items, k)
    end
  end, c, nil, nil, self._gens)
end

--- ds:map(fn): fn(element) -> new element. A tuple (list) element is passed
-- unpacked, fn(x, y), and several return values make a tuple, as in tf.data.
function Dataset:map(fn)
  if type(fn) ~= "function" and not (type(fn) == "table" and getmetatable(fn) and getmetatable(fn).__call) then
    raise("Dataset.map: expected a function, got " .. type(fn))
  end
  local up = self._open
  return Dataset(function()
    local nxt = up()
    return function()
      local e = nxt()
      if e == nil then return nil end
      local n, r = pack(call_with(fn, materialize(e)))
      if n == 0 or r[1] == nil then raise("Dataset.map: the function returned nothing for an element") end
      if n == 1 then return r[1] end
      return r
    end
  end, self._card, nil, nil, self._gens)
end

local function truthy(v)
  if type(v) == "boolean" then return v end
  if type(v) == "number" then return v ~= 0 end
  if is_tensor(v) and v.count == 1 then return v:item() ~= 0 end
  raise(("Dataset.filter: the predicate must return a boolean, a number or a one-element tensor, got %s")
    :format(is_tensor(v) and ("a tensor of shape " .. core.shape_str(core.shape_of(v))) or type(v)))
end

--- ds:filter(predicate): keeps elements for which predicate(element) is true
-- (a boolean, a number or a one-element tensor; non-zero is true).
function Dataset:filter(pred)
  if type(pred) ~= "function" then raise("Dataset.filter: expected a function, got " .. type(pred)) end
  local up = self._open
  return Dataset(function()
    local nxt = up()
    return function()
      while true do
        local e = nxt()
        if e == nil then return nil end
        if truthy(call_with(pred, materialize(e))) then return e end
      end
    end
  end, UNKNOWN, nil, nil, self._gens)
end

--- ds:repeat_(count) — also ds["repeat"](ds, count), since `repeat` is a Lua
-- keyword and ds:repeat() does not parse. nil or -1 repeats forever.
function Dataset:repeat_(count)
  if count == nil then count = -1 end
  check_count(count, "Dataset.repeat", true)
  local n = self._card
  local c
  if count == -1 then c = n == 0 and 0 or INFINITE
  elseif count == 0 then c = 0
  elseif n < 0 then c = n
  else c = n * count end
  local up = self._open
  return Dataset(function()
    local pass, nxt, got, stopped = 0, nil, false, false
    return function()
      while not stopped and (count == -1 or pass < count) do
        nxt = nxt or up()
        local e = nxt()
        if e ~= nil then got = true; return e end
        -- An empty pass would repeat forever without yielding: stop instead.
        if not got then stopped = true; break end
        pass, nxt, got = pass + 1, nil, false
      end
      return nil
    end
  end, c, nil, nil, self._gens)
end
Dataset["repeat"] = Dataset.repeat_

--- ds:take(count): at most count elements (-1: all).
function Dataset:take(count)
  check_count(count, "Dataset.take", true)
  local n, c = self._card, nil
  if n == UNKNOWN then c = UNKNOWN
  elseif count == -1 then c = n
  elseif n == INFINITE then c = count
  else c = math.min(n, count) end
  local up = self._open
  return Dataset(function()
    local nxt, k = up(), 0
    return function()
      if count ~= -1 and k >= count then return nil end
      local e = nxt()
      if e ~= nil then k = k + 1 end
      return e
    end
  end, c, nil, nil, self._gens)
end

--- ds:skip(count): all but the first count elements (-1: skip all).
function Dataset:skip(count)
  check_count(count, "Dataset.skip", true)
  local n, c = self._card, nil
  if n == UNKNOWN then c = UNKNOWN
  elseif n == INFINITE then c = INFINITE
  elseif count == -1 then c = 0
  else c = math.max(0, n - count) end
  local up = self._open
  return Dataset(function()
    local nxt, skipped = up(), false
    return function()
      if not skipped then
        skipped = true
        if count == -1 and n == INFINITE then nxt = function() return nil end end
        local k = 0
        while count == -1 or k < count do
          if nxt() == nil then break end
          k = k + 1
        end
      end
      return nxt()
    end
  end, c, nil, nil, self._gens)
end

--- ds:prefetch(buffer_size): accepted for Keras code and returns the same
-- pipeline. NOTE: klua runs in one Lua state, so there is no background
-- thread to fill a buffer, and a batch is a C gather taking microseconds:
-- there is nothing to overlap with training.
function Dataset:prefetch(buffer_size)
  if buffer_size ~= nil and type(buffer_size) ~= "number" then
    raise("Dataset.prefetch: buffer_size must be a number, got " .. type(buffer_size))
  end
  return Dataset(self._open, self._card, nil, nil, self._gens)
end

-- `for batch in ds do` calls the dataset: say how to iterate instead.
function Dataset:__call()
  raise("Dataset: iterate with `for batch in ds:iter() do` (a Dataset is not an iterator itself)")
end

function Dataset:__tostring()
  local c = self._card
  return ("Dataset(cardinality=%s)"):format(c == INFINITE and "infinite" or c == UNKNOWN and "unknown" or tostring(c))
end

return data
