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
  while type(cur) == "table" and not core.class_name_of(cur) do
    shape[#shape + 1] = #cur
    cur = cur[1]
  end
  return shape
end

-- convert(data, who, arg): data as a tensor; errors name the function (who)
-- and the argument (arg) that received data. Objects (layers, metrics, any
-- klua class instance) are never taken as nested tables.
local function convert(data, who, arg)
  if core.is_tensor(data) then return data end
  local td = type(data)
  if td == "number" or td == "boolean" then
    return wrap(C.kl_tensor_full(0, nil, td == "boolean" and (data and 1 or 0) or data))
  end
  if td ~= "table" or core.class_name_of(data) then
    -- an object whose class says why it is no tensor (a symbolic KerasTensor)
    local hook = td == "table" and rawget(getmetatable(data), "__to_tensor")
    if hook then return hook(data, who or "tensor", arg) end
    if who == nil then
      raise("tensor: expected a number, a nested table or a tensor, got " .. core.describe(data) ..
        (td == "nil" and " (a method called with '.' instead of ':'? write x:sum(), not x.sum())" or ""))
    end
    raise(("%s: %s must be a tensor, a number or a nested table of numbers, got %s%s")
      :format(who, arg or "the input", core.describe(data),
        td == "nil" and " (a method called with '.' instead of ':'? write x:sum(), not x.sum())" or ""))
  end
  who = who or "tensor"
  local of = arg and (" of " .. arg) or ""
  if #data == 0 and next(data) ~= nil then
    raise(("%s: expected a number, a nested table or a tensor%s, got a table with keys (%s = ...) and no list part")
      :format(who, of, tostring(next(data))))
  end
  local shape = nested_shape(data)
  local nd, dims = core.shape_arg(shape, who)
  local n = 1
  for i = 1, nd do n = n * shape[i] end
  local buf = ffi.new("double[?]", math.max(n, 1))
  local k = 0
  local function fill(t, depth)
    if #t ~= shape[depth] then
      raise(("%s: ragged nested table%s at depth %d: expected %d elements, got %d"):format(who, of, depth, shape[depth], #t))
    end
    if depth == nd then
      for i = 1, #t do
        local v = t[i]
        if type(v) == "boolean" then v = v and 1 or 0 end
        if type(v) ~= "number" then
          if core.is_tensor(v) and v.count == 1 then v = v.p.data[0]
          else raise(("%s: expected a number at depth %d%s, got %s"):format(who, depth, of,
            core.class_name_of(v) and core.describe(v) or type(v))) end
        end
        buf[k] = v; k = k + 1
      end
    else
      for i = 1, #t do
        if type(t[i]) ~= "table" then raise(("%s: ragged nested table%s at depth %d"):format(who, of, depth + 1)) end
        fill(t[i], depth + 1)
      end
    end
  end
  if nd > 0 then fill(data, 1) end
  return wrap(C.kl_tensor_from_doubles(nd, dims, buf))
end
M.convert = convert
core.to_tensor = convert

--- tensor(data): a float32 tensor from a number, a nested table or a tensor.
function M.tensor(data) return convert(data) end

-- made(who, p): own the tensor C returned; NULL raises C's message named for `who`.
local function made(who, p)
  if p == nil then raise(core.op_error(who)) end
  return wrap(p)
end

local function shape_from(...)
  local a = ...
  if a == nil then return nil end
  if type(a) == "table" then return a end
  if core.is_tensor(a) then return core.shape_of(a) end
  return {...}
end

--- zeros(shape): a tensor of zeros; shape is a list {2, 3}, sizes zeros(2, 3) or another tensor's shape.
function M.zeros(...) local nd, d = core.shape_arg(shape_from(...), "zeros"); return made("zeros", C.kl_tensor_zeros(nd, d)) end
--- ones(shape): a tensor of ones; shape is a list {2, 3}, sizes ones(2, 3) or another tensor's shape.
function M.ones(...) local nd, d = core.shape_arg(shape_from(...), "ones"); return made("ones", C.kl_tensor_full(nd, d, 1)) end
--- empty(shape): a tensor whose values are not set (fill it before reading).
function M.empty(...) local nd, d = core.shape_arg(shape_from(...), "empty"); return made("empty", C.kl_tensor_empty(nd, d)) end
local function full(who, shape, value)
  local nd, d = core.shape_arg(shape, who)
  if type(value) ~= "number" then raise(who .. ": value must be a number, got " .. core.describe(value)) end
  return made(who, C.kl_tensor_full(nd, d, value))
end
--- full(shape, value): a tensor of the given shape filled with value.
function M.full(shape, value) return full("full", shape, value) end
--- zeros_like(t): zeros of t's shape.
function M.zeros_like(t) return M.zeros(core.shape_of(convert(t, "zeros_like", "x"))) end
--- ones_like(t): ones of t's shape.
function M.ones_like(t) return M.ones(core.shape_of(convert(t, "ones_like", "x"))) end
--- full_like(t, value): value in every element of a tensor of t's shape.
function M.full_like(t, v) return full("full_like", core.shape_of(convert(t, "full_like", "x")), v) end

--- arange(start=0, stop, step=1): start, start + step, ... up to stop excluded (arange(5) is 0..4), as Keras.
local function number_arg(who, name, v)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
    raise(("%s: %s must be a finite number, got %s"):format(who, name, core.describe(v)))
  end
  return v
end
local function count_arg(who, name, v)
  if type(v) ~= "number" or v < 0 or v % 1 ~= 0 or v == math.huge then
    raise(("%s: %s must be a non-negative integer, got %s"):format(who, name, core.describe(v)))
  end
  return v
end
function M.arange(a, b, step)
  if b == nil then a, b = 0, a end
  return made("arange", C.kl_arange(number_arg("arange", "start", a), number_arg("arange", "stop", b),
    number_arg("arange", "step", step or 1)))
end
--- linspace(start, stop, num=50): num evenly spaced values from start to stop, both included.
function M.linspace(a, b, num)
  return made("linspace", C.kl_linspace(number_arg("linspace", "start", a), number_arg("linspace", "stop", b),
    count_arg("linspace", "num", num or 50)))
end
--- eye(n, m=n): the (n, m) identity matrix.
function M.eye(n, m) return made("eye", C.kl_eye(count_arg("eye", "N", n), count_arg("eye", "M", m or n))) end

--- from_pointer(nd, dims, float*): copy raw floats into a new tensor.
function M.from_floats(shape, ptr)
  local nd, d = core.shape_arg(shape, "from_floats")
  return wrap(C.kl_tensor_from_data(nd, d, ptr))
end

-- Methods --------------------------------------------------------------------

--- t:shape(): the shape as a Lua list, {2, 3}.
function methods.shape(t) return core.shape_of(t) end
--- t:numel(): the number of elements.
function methods.numel(t) return tonumber(t.count) end
--- t:ndim(): the number of axes (0 for a scalar).
function methods.ndim(t) return t.nd end
--- t:size(axis): the size of one axis (1-based, negative from the end); without axis, the number of elements.
function methods.size(t, axis)
  if axis == nil then return tonumber(t.count) end
  return tonumber(t.dims[core.axis_arg(axis, t.nd, "size")])
end
--- t:dtype(): "float32", the one dtype of klua's tensors.
methods.dtype = function() return "float32" end

--- t:item(): the value of a one-element tensor as a Lua number.
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

--- t:totable(): the values as nested Lua tables of t's shape (a number for a scalar).
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

--- t:numpy(): t itself (Keras's spelling: klua's tensors already live in host memory).
function methods.numpy(t) return t end            -- Keras spelling; tensors are already host values
--- t:clone(): a copy with its own storage.
function methods.clone(t) return wrap(C.kl_tensor_clone(t.p)) end
--- t:contiguous(): t if its elements are in row-major order in memory, else a row-major copy.
function methods.contiguous(t) return wrap(C.kl_tensor_contiguous(t.p)) end
--- t:is_variable(): true for a klua.Variable.
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
--- T(x, who, arg): x as a tensor; errors name the function and the argument ("exp: x must be a tensor, ...").
local function T(x, who, arg) if core.is_tensor(x) then return x end return convert(x, who, arg) end
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
