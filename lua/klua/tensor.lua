-- tensor.lua — the tensor type seen from Lua: a kl_tensor* cdata with a
-- metatype (operators, methods, printing), and the creation functions.
local ffi = require("ffi")
local core = require("klua.core")
local C, wrap, raise = core.C, core.wrap, core.raise

local M = {}
-- A metatype can be set only once per process, so the tables it closes over
-- live in the Lua registry: a second load of this module (test runners that
-- reset package.loaded) shares them instead of splitting the state.
local state = debug.getregistry().klua_tensor_state
local first_load = state == nil
if first_load then
  state = { methods = {}, var_info = setmetatable({}, { __mode = "k" }) }
  debug.getregistry().klua_tensor_state = state
end
local methods = state.methods  -- filled here and by ops.lua: t:sum(), t:reshape{}, ...
M.methods = methods
-- Variables keep their Lua-side attributes here (klua.variable fills it),
-- keyed by the Variable itself: weak, so the entry dies with the Variable.
local var_info = state.var_info
M.var_info = var_info

local FLAG_VARIABLE, FLAG_TRAINABLE = C.KL_FLAG_VARIABLE, C.KL_FLAG_TRAINABLE

-- Creation -------------------------------------------------------------------

local function nested_shape(data, what)
  local shape, cur = {}, data
  while type(cur) == "table" do
    shape[#shape + 1] = #cur
    cur = cur[1]
  end
  return shape
end

--- tensor(data): a float32 tensor from a number, a nested table or a tensor.
function M.tensor(data)
  if core.is_tensor(data) then return data end
  local td = type(data)
  if td == "number" or td == "boolean" then
    return wrap(C.kl_tensor_full(0, nil, td == "boolean" and (data and 1 or 0) or data))
  end
  if td ~= "table" then
    raise("tensor: expected a number, a nested table or a tensor, got " .. td ..
      (td == "nil" and " (a method called with '.' instead of ':'? write x:sum(), not x.sum())" or ""))
  end
  local shape = nested_shape(data)
  local nd, dims = core.shape_arg(shape, "tensor")
  local n = 1
  for i = 1, nd do n = n * shape[i] end
  local buf = ffi.new("double[?]", math.max(n, 1))
  local k = 0
  local function fill(t, depth)
    if #t ~= shape[depth] then
      raise(("tensor: ragged nested table at depth %d: expected %d elements, got %d"):format(depth, shape[depth], #t))
    end
    if depth == nd then
      for i = 1, #t do
        local v = t[i]
        if type(v) == "boolean" then v = v and 1 or 0 end
        if type(v) ~= "number" then
          if core.is_tensor(v) and v.count == 1 then v = v.p.data[0]
          else raise(("tensor: expected a number at depth %d, got %s"):format(depth, type(v))) end
        end
        buf[k] = v; k = k + 1
      end
    else
      for i = 1, #t do
        if type(t[i]) ~= "table" then raise(("tensor: ragged nested table at depth %d"):format(depth + 1)) end
        fill(t[i], depth + 1)
      end
    end
  end
  if nd > 0 then fill(data, 1) end
  return wrap(C.kl_tensor_from_doubles(nd, dims, buf))
end
core.to_tensor = M.tensor

local function shape_from(...)
  local a = ...
  if type(a) == "table" then return a end
  if core.is_tensor(a) then return core.shape_of(a) end
  return {...}
end

function M.zeros(...) local nd, d = core.shape_arg(shape_from(...), "zeros"); return wrap(C.kl_tensor_zeros(nd, d)) end
function M.ones(...) local nd, d = core.shape_arg(shape_from(...), "ones"); return wrap(C.kl_tensor_full(nd, d, 1)) end
function M.empty(...) local nd, d = core.shape_arg(shape_from(...), "empty"); return wrap(C.kl_tensor_empty(nd, d)) end
function M.full(shape, value)
  local nd, d = core.shape_arg(shape, "full")
  return wrap(C.kl_tensor_full(nd, d, value))
end
function M.zeros_like(t) return M.zeros(core.shape_of(t)) end
function M.ones_like(t) return M.ones(core.shape_of(t)) end
function M.full_like(t, v) return M.full(core.shape_of(t), v) end

--- arange(stop) or arange(start, stop[, step]) — stop excluded, like Keras.
function M.arange(a, b, step)
  if b == nil then a, b = 0, a end
  return wrap(C.kl_arange(a, b, step or 1))
end
function M.linspace(a, b, num) return wrap(C.kl_linspace(a, b, num or 50)) end
function M.eye(n, m) return wrap(C.kl_eye(n, m or n)) end

--- from_pointer(nd, dims, float*): copy raw floats into a new tensor.
function M.from_floats(shape, ptr)
  local nd, d = core.shape_arg(shape, "from_floats")
  return wrap(C.kl_tensor_from_data(nd, d, ptr))
end

-- Methods --------------------------------------------------------------------

function methods.shape(t) return core.shape_of(t) end
function methods.numel(t) return tonumber(t.count) end
function methods.ndim(t) return t.nd end
function methods.size(t, axis)
  if axis == nil then return tonumber(t.count) end
  return tonumber(t.dims[core.axis_arg(axis, t.nd, "size")])
end
methods.dtype = function() return "float32" end

function methods.item(t)
  if t.count ~= 1 then
    raise(("item: expected a tensor with one element, got shape %s"):format(core.shape_str(core.shape_of(t))))
  end
  return tonumber(t.data[0])
end

local function offset_of(t, what, ...)
  local n = select("#", ...)
  if n ~= t.nd then raise(("%s: expected %d indices for a tensor of shape %s, got %d"):format(what, t.nd, core.shape_str(core.shape_of(t)), n)) end
  local off = 0
  for i = 1, n do
    local idx = select(i, ...)
    local d = tonumber(t.dims[i - 1])
    if type(idx) ~= "number" or idx ~= math.floor(idx) then raise(("%s: index %d must be an integer"):format(what, i)) end
    if idx < 0 then idx = d + idx + 1 end
    if idx < 1 or idx > d then raise(("%s: index %d is out of range for axis %d of size %d (positions are 1-based)"):format(what, select(i, ...), i, d)) end
    off = off + (idx - 1) * tonumber(t.strides[i - 1])
  end
  return off
end

--- t:get(i, j, ...): one element (1-based positions, negative from the end).
function methods.get(t, ...) return tonumber(t.data[offset_of(t, "get", ...)]) end

--- t:set(i, j, ..., value): write one element in place.
methods.set = function(t, ...)
  local args = {...}
  local value = table.remove(args)
  if type(value) ~= "number" then raise("set: the last argument must be the value (a number)") end
  t.data[offset_of(t, "set", unpack(args))] = value
  return t
end

function methods.totable(t)
  local c = wrap(C.kl_tensor_contiguous(t.p))
  if c.nd == 0 then return tonumber(c.data[0]) end
  local shape = core.shape_of(c)
  local k = 0
  local function build(depth)
    local out = {}
    if depth == #shape then
      for i = 1, shape[depth] do out[i] = tonumber(c.data[k]); k = k + 1 end
    else
      for i = 1, shape[depth] do out[i] = build(depth + 1) end
    end
    return out
  end
  return build(1)
end

--- t:tolist(): the values as one flat Lua array in row-major order.
function methods.tolist(t)
  local c = wrap(C.kl_tensor_contiguous(t.p))
  local out = {}
  for i = 0, tonumber(c.count) - 1 do out[i + 1] = tonumber(c.data[i]) end
  return out
end

function methods.numpy(t) return t end            -- Keras spelling; tensors are already host values
function methods.clone(t) return wrap(C.kl_tensor_clone(t.p)) end
function methods.contiguous(t) return wrap(C.kl_tensor_contiguous(t.p)) end
function methods.is_variable(t) return bit.band(t.flags, FLAG_VARIABLE) ~= 0 end

-- Printing ---------------------------------------------------------------------

local function fmt_number(v, all_int)
  if v ~= v then return "nan" end
  if v == math.huge then return "inf" elseif v == -math.huge then return "-inf" end
  if all_int then return ("%d."):format(v) end
  local s = ("%.4g"):format(v)
  if not s:find("[%.e]") then s = s .. "." end
  return s
end

local EDGE, SUMMARY_THRESHOLD = 3, 1000

local function format_values(t)
  local c = wrap(C.kl_tensor_contiguous(t.p))
  local shape = core.shape_of(c)
  local n = tonumber(c.count)
  local summarise = n > SUMMARY_THRESHOLD
  local all_int = true
  for i = 0, math.min(n, 10000) - 1 do
    local v = c.data[i]
    if v ~= math.floor(v) or math.abs(v) > 1e9 then all_int = false; break end
  end
  if #shape == 0 then return fmt_number(tonumber(c.data[0]), all_int) end
  local strides = {}
  local s = 1
  for i = #shape, 1, -1 do strides[i] = s; s = s * shape[i] end
  -- collect strings first to align columns
  local width = 0
  local function visit(depth, off, f)
    local d = shape[depth]
    local idxs = {}
    if summarise and d > 2 * EDGE then
      for i = 1, EDGE do idxs[#idxs + 1] = i end
      idxs[#idxs + 1] = false
      for i = d - EDGE + 1, d do idxs[#idxs + 1] = i end
    else
      for i = 1, d do idxs[i] = i end
    end
    return f(idxs, depth, off)
  end
  local function measure(idxs, depth, off)
    for _, i in ipairs(idxs) do
      if i then
        local o = off + (i - 1) * strides[depth]
        if depth == #shape then width = math.max(width, #fmt_number(tonumber(c.data[o]), all_int))
        else visit(depth + 1, o, measure) end
      end
    end
  end
  visit(1, 0, measure)
  local function render(idxs, depth, off)
    local parts = {}
    for _, i in ipairs(idxs) do
      if not i then parts[#parts + 1] = "..."
      else
        local o = off + (i - 1) * strides[depth]
        if depth == #shape then
          local str = fmt_number(tonumber(c.data[o]), all_int)
          parts[#parts + 1] = (" "):rep(width - #str) .. str
        else
          parts[#parts + 1] = visit(depth + 1, o, render)
        end
      end
    end
    if depth == #shape then return "[" .. table.concat(parts, " ") .. "]" end
    local sep = "\n" .. ("\n"):rep(#shape - depth - 1) .. (" "):rep(depth)
    return "[" .. table.concat(parts, sep) .. "]"
  end
  return visit(1, 0, render)
end
M.format_values = format_values

local function tostring_tensor(t)
  local shape = core.shape_str(core.shape_of(t))
  local head = "tensor("
  if bit.band(t.flags, FLAG_VARIABLE) ~= 0 then
    local info = var_info[t] or {}
    head = ("Variable '%s' "):format(info.name or "variable") .. "("
  end
  local body = format_values(t):gsub("\n", "\n" .. (" "):rep(#head))
  return head .. body .. ", shape=" .. shape .. ", dtype=float32)"
end

-- The metatype -------------------------------------------------------------

local tensor = M.tensor
local function T(x) if core.is_tensor(x) then return x end return tensor(x) end
M.T = T

local op = core.op
local function scale(t, a, b) return op("scale", t, nil, nil, { f = { a, b } }) end

-- Fields of the C struct, read through the handle.
-- Fields of a Variable kept in var_info (Keras's Variable attributes).
local var_fields = { name = true, path = true, regularizer = true, constraint = true }
local raw_fields = { nd = true, dims = true, strides = true, count = true, data = true, id = true, flags = true,
  refcount = true, contiguous = true, storage = true }

local mt = {
  __index = function(t, k)
    local m = methods[k]
    if m ~= nil then return m end
    if type(k) == "number" then
      raise(("tensor: x[%s] is not supported (tensors are not Lua tables): use x:get(i, ...) for one element, "
        .. "ops.slice_axis / ops.take for parts, x:tolist() for a table"):format(tostring(k)))
    end
    if raw_fields[k] then return t.p[k] end
    if k == "trainable" then return bit.band(t.flags, FLAG_TRAINABLE) ~= 0 end
    if var_fields[k] then
      local info = var_info[t]
      return info and info[k] or nil
    end
    if k == "shape_tuple" then return core.shape_of(t) end
    return nil
  end,
  __newindex = function(t, k, v)
    if k == "flags" then t.p.flags = v; return end
    if k == "trainable" then
      t.flags = v and bit.bor(t.flags, FLAG_TRAINABLE) or bit.band(t.flags, bit.bnot(FLAG_TRAINABLE))
      return
    elseif var_fields[k] then
      local info = var_info[t]
      if not info then info = {}; var_info[t] = info end
      info[k] = v
      return
    end
    raise("tensor: cannot set field '" .. tostring(k) .. "'")
  end,
  __add = function(a, b)
    if type(b) == "number" then return scale(a, 1, b) end
    if type(a) == "number" then return scale(b, 1, a) end
    return op("add", a, b)
  end,
  __sub = function(a, b)
    if type(b) == "number" then return scale(a, 1, -b) end
    if type(a) == "number" then return scale(b, -1, a) end
    return op("sub", a, b)
  end,
  __mul = function(a, b)
    if type(b) == "number" then return scale(a, b, 0) end
    if type(a) == "number" then return scale(b, a, 0) end
    return op("mul", a, b)
  end,
  __div = function(a, b)
    if type(b) == "number" then return scale(a, 1 / b, 0) end
    return op("div", T(a), T(b))
  end,
  __pow = function(a, b)
    if type(b) == "number" then
      if b == 2 then return op("square", a) end
      return op("pow_scalar", a, nil, nil, { f = { b } })
    end
    return op("pow", T(a), T(b))
  end,
  __mod = function(a, b) return op("mod", T(a), T(b)) end,
  __unm = function(a) return op("neg", a) end,
  __len = function(t) return t.nd > 0 and tonumber(t.dims[0]) or 0 end,
  __tostring = tostring_tensor,
}
if first_load then ffi.metatype("kl_handle", mt) end

-- Whole-tensor queries that return Lua values, for modules that may not call C.

--- sum_all(t): the sum of all elements as a Lua number (summed in double).
function M.sum_all(t) return C.kl_sum_all(t.p) end

--- same_shape(a, b): true when the two tensors have the same shape.
function M.same_shape(a, b) return C.kl_tensor_same_shape(a.p, b.p) ~= 0 end

--- from_doubles(shape, ptr): copy raw doubles (a double* buffer) into a new tensor.
function M.from_doubles(shape, ptr)
  local nd, d = core.shape_arg(shape, "from_doubles")
  return wrap(C.kl_tensor_from_doubles(nd, d, ptr))
end

--- row_view(t, i): row i (1-based) along t's first axis, a view sharing t's storage.
function M.row_view(t, i)
  local p = t.p
  if p.nd < 1 or i < 1 or i > p.dims[0] then
    raise(("row_view: row %s is out of range for shape %s"):format(tostring(i), core.shape_str(core.shape_of(t))))
  end
  return wrap(C.kl_tensor_view(p, p.nd - 1, p.dims + 1, p.strides + 1, (i - 1) * p.strides[0]))
end

return M
