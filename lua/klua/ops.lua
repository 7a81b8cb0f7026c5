-- ops.lua — klua.ops: Keras's op names over the C op registry. Argument
-- handling lives here (1-based axes, numbers as tensors, keyword tables);
-- every computation is one call into C. Each op is also a tensor method.
local core = require("klua.core")
local tensor = require("klua.tensor")
local no_grad = require("klua.no_grad")
local op, raise, T = core.op, core.raise, tensor.T
local methods = tensor.methods

local ops = {}

-- Elementwise ------------------------------------------------------------------

--- exp(x): e^x, elementwise.
--- log(x): the natural logarithm, elementwise.
--- sqrt(x): the square root, elementwise.
--- square(x): x * x, elementwise.
--- abs(x): |x|, elementwise.
--- sign(x): -1, 0 or 1 by the sign of each element.
--- sin(x): the sine, elementwise.
--- cos(x): the cosine, elementwise.
--- tanh(x): the hyperbolic tangent, elementwise.
--- sigmoid(x): 1 / (1 + exp(-x)), elementwise.
--- relu(x): max(x, 0), elementwise.
--- softplus(x): log(1 + exp(x)), elementwise.
--- floor(x): the largest integer <= x, elementwise (zero gradient).
--- ceil(x): the smallest integer >= x, elementwise (zero gradient).
--- round(x): x rounded to the nearest integer (halves to even, as NumPy), elementwise (zero gradient).
for _, name in ipairs { "exp", "log", "sqrt", "square", "abs", "sign", "sin", "cos", "tanh", "sigmoid", "relu", "softplus", "floor", "ceil", "round" } do
  ops[name] = function(x) return op(name, T(x, name, "x")) end
end
--- negative(x): -x (also neg).
function ops.negative(x) return op("neg", T(x, "negative", "x")) end
ops.neg = ops.negative

local binary = {
  add = "add", subtract = "sub", multiply = "mul", divide = "div", power = "pow",
  maximum = "maximum", minimum = "minimum", mod = "mod", equal = "equal", not_equal = "not_equal", less = "less",
  less_equal = "less_equal", greater = "greater", greater_equal = "greater_equal",
}
--- add(a, b): a + b, broadcast (NumPy rules).
--- subtract(a, b): a - b, broadcast (also sub).
--- multiply(a, b): a * b, broadcast (also mul).
--- divide(a, b): a / b, broadcast (also div, true_divide).
--- true_divide(a, b): a / b, broadcast (divide).
--- power(a, b): a ^ b, broadcast (also pow).
--- maximum(a, b): the larger of a and b, elementwise, broadcast.
--- minimum(a, b): the smaller of a and b, elementwise, broadcast.
--- mod(a, b): a modulo b with the sign of b (Python's %), broadcast (also floor_mod).
--- floor_mod(a, b): a modulo b with the sign of b (mod).
--- equal(a, b): 1 where a == b, else 0, broadcast.
--- not_equal(a, b): 1 where a ~= b, else 0, broadcast.
--- less(a, b): 1 where a < b, else 0, broadcast.
--- less_equal(a, b): 1 where a <= b, else 0, broadcast.
--- greater(a, b): 1 where a > b, else 0, broadcast.
--- greater_equal(a, b): 1 where a >= b, else 0, broadcast.
for name, id in pairs(binary) do
  ops[name] = function(a, b) return op(id, T(a, name, "a"), T(b, name, "b")) end
end
ops.sub, ops.mul, ops.div, ops.pow = ops.subtract, ops.multiply, ops.divide, ops.power
ops.true_divide, ops.floor_mod = ops.divide, ops.mod

--- clip(x, x_min, x_max): x limited to [x_min, x_max], elementwise.
function ops.clip(x, lo, hi)
  if type(lo) ~= "number" or type(hi) ~= "number" then raise("clip: x_min and x_max must be numbers") end
  return op("clip", T(x, "clip", "x"), nil, nil, { f = { lo, hi } })
end
--- where(condition, a, b): a where condition is non-zero, else b, broadcast.
function ops.where(cond, a, b) return op("where", T(cond, "where", "cond"), T(a, "where", "a"), T(b, "where", "b")) end
--- copy(x): a new tensor with x's values (on the tape: the gradient passes through).
function ops.copy(x) return op("copy", T(x, "copy", "x")) end
--- cast(x, dtype="float32"): a float32 copy (klua's only dtype; others raise).
function ops.cast(x, dtype)
  if dtype ~= nil and dtype ~= "float32" and dtype ~= "float" then
    raise(("cast: klua tensors are float32; dtype '%s' is not supported"):format(tostring(dtype)))
  end
  return op("copy", T(x, "cast", "x"))
end
--- convert_to_tensor(x): x as a tensor (numbers and nested tables converted; a tensor returned as it is).
function ops.convert_to_tensor(x) return T(x, "convert_to_tensor", "x") end

--- stop_gradient(x): the same values, invisible to every tape.
function ops.stop_gradient(x)
  return no_grad(op, "copy", T(x, "stop_gradient", "x"))
end

-- Reductions --------------------------------------------------------------------

-- axis: nil (all), a number, or a table of numbers; 1-based.
local function axes_attrs(x, axis, keepdims, what)
  if axis == nil then return { all_axes = true, keepdims = keepdims } end
  if core.class_name_of(axis) then raise(("%s: axis must be an integer or a list of integers, got %s"):format(what, core.describe(axis))) end
  local list = type(axis) == "table" and axis or { axis }
  local axes = {}
  for i, a in ipairs(list) do axes[i] = core.axis_arg(a, x.nd, what) end
  if #axes == 0 then return { all_axes = true, keepdims = keepdims } end
  return { axes = axes, keepdims = keepdims }
end
ops._axes_attrs = axes_attrs

--- sum(x, axis=nil, keepdims=false): the sum over axis (1-based; a list of axes; nil: all) (also reduce_sum).
--- mean(x, axis=nil, keepdims=false): the mean over axis (1-based; a list of axes; nil: all) (also reduce_mean).
--- max(x, axis=nil, keepdims=false): the maximum over axis (1-based; a list of axes; nil: all) (also amax, reduce_max).
--- min(x, axis=nil, keepdims=false): the minimum over axis (1-based; a list of axes; nil: all) (also amin, reduce_min).
--- logsumexp(x, axis=nil, keepdims=false): log(sum(exp(x))) over axis, computed stably.
for _, name in ipairs { "sum", "mean", "max", "min", "logsumexp" } do
  ops[name] = function(x, axis, keepdims)
    x = T(x, name, "x")
    return op(name, x, nil, nil, axes_attrs(x, axis, keepdims, name))
  end
end
ops.reduce_sum, ops.reduce_mean, ops.reduce_max, ops.reduce_min = ops.sum, ops.mean, ops.max, ops.min
ops.amax, ops.amin = ops.max, ops.min

--- argmax(x, axis=nil, keepdims=false): 0-based indices of the maxima along axis (nil: over the flattened tensor).
--- argmin(x, axis=nil, keepdims=false): 0-based indices of the minima along axis (nil: over the flattened tensor).
for _, name in ipairs { "argmax", "argmin" } do
  ops[name] = function(x, axis, keepdims)
    x = T(x, name, "x")
    if axis == nil then x = ops.reshape(x, { -1 }); axis = 1 end
    return op(name, x, nil, nil, { axes = { core.axis_arg(axis, x.nd, name) }, keepdims = keepdims })
  end
end

-- softmax(x, axis): axis is one axis (the fused C op) or a list of axes
-- normalised together, as Keras's tuple axis: x - logsumexp over them, a
-- composition whose gradient the tape derives.
local function softmax_axes(x, axis, who)
  if type(axis) ~= "table" then return { core.axis_arg(axis or -1, x.nd, who) } end
  if #axis == 0 then raise(who .. ": axis must be an axis or a non-empty list of axes. Received: axis={}") end
  local axes, seen = {}, {}
  for i, a in ipairs(axis) do
    axes[i] = core.axis_arg(a, x.nd, who)
    if seen[axes[i]] then raise(("%s: axis %s is given twice. Received: axis={%s}"):format(who, tostring(a), table.concat(axis, ", "))) end
    seen[axes[i]] = true
  end
  return axes
end
--- log_softmax(x, axis=-1): log(softmax(x)) along axis (or a list of axes together), computed stably.
function ops.log_softmax(x, axis)
  x = T(x, "log_softmax", "x")
  local axes = softmax_axes(x, axis, "log_softmax")
  if #axes == 1 then return op("log_softmax", x, nil, nil, { axes = axes }) end
  return x - op("logsumexp", x, nil, nil, { axes = axes, keepdims = true })
end
--- softmax(x, axis=-1): exp(x) / sum(exp(x)) along axis (1-based), or over a list of axes together.
function ops.softmax(x, axis)
  x = T(x, "softmax", "x")
  local axes = softmax_axes(x, axis, "softmax")
  if #axes == 1 then return op("softmax", x, nil, nil, { axes = axes }) end
  return op("exp", x - op("logsumexp", x, nil, nil, { axes = axes, keepdims = true }))
end

--- var(x, axis=nil, keepdims=false): the (population) variance over axis (also variance).
local function variance(who, x, axis, keepdims)
  x = T(x, who, "x")
  local at = axes_attrs(x, axis, keepdims, who)       -- checks the axes, naming `who`
  for _, a in ipairs(at.axes or {}) do
    if x.dims[a] == 0 then raise(("%s: cannot reduce over the empty axis %d of shape %s"):format(who, a + 1, core.shape_str(x:shape()))) end
  end
  if at.all_axes and x.count == 0 then raise(who .. ": cannot reduce an empty tensor") end
  local m = ops.mean(x, axis, true)
  return ops.mean(ops.square(x - m), axis, keepdims)
end
function ops.var(x, axis, keepdims) return variance("var", x, axis, keepdims) end
--- std(x, axis=nil, keepdims=false): the (population) standard deviation over axis.
function ops.std(x, axis, keepdims) return ops.sqrt(variance("std", x, axis, keepdims)) end
ops.variance = ops.var

-- Linear algebra -----------------------------------------------------------------

--- matmul(a, b): NumPy semantics; 1-D operands are promoted and squeezed back.
function ops.matmul(a, b, kw)
  a, b = T(a, "matmul", "a"), T(b, "matmul", "b")
  local squeeze_a, squeeze_b = a.nd == 1, b.nd == 1
  if a.nd == 0 or b.nd == 0 then raise("matmul: scalars are not allowed, use multiply") end
  if squeeze_a then a = ops.reshape(a, { 1, -1 }) end
  if squeeze_b then b = ops.reshape(b, { -1, 1 }) end
  local ints
  if kw ~= nil and (type(kw) ~= "table" or core.class_name_of(kw)) then
    raise("matmul: the options must be a table like {transpose_b = true}, got " .. core.describe(kw))
  end
  if kw and (kw.transpose_a or kw.transpose_b) then ints = { kw.transpose_a and 1 or 0, kw.transpose_b and 1 or 0 } end
  local ok, r = pcall(op, "matmul", a, b, nil, ints and { ints = ints } or nil)
  if not ok then
    if squeeze_a or squeeze_b then raise((tostring(r):gsub("^.-matmul:", "matmul:"))) end
    error(r, 0)
  end
  if squeeze_a and squeeze_b then return ops.reshape(r, {})
  elseif squeeze_a then local s = r:shape(); table.remove(s, #s - 1); return ops.reshape(r, s)
  elseif squeeze_b then local s = r:shape(); table.remove(s); return ops.reshape(r, s) end
  return r
end
ops.dot = ops.matmul

-- Shapes -------------------------------------------------------------------------

--- reshape(x, shape): the same values in a new shape ({2, -1}: one size inferred); a view when x is contiguous.
function ops.reshape(x, shape)
  x = T(x, "reshape", "x")
  if type(shape) ~= "table" then raise("reshape: expected a shape table like {2, -1}") end
  for i, d in ipairs(shape) do
    if type(d) ~= "number" or d ~= math.floor(d) or d < -1 then
      raise(("reshape: shape entries must be integers >= -1, got %s at position %d"):format(tostring(d), i))
    end
  end
  if #shape > 8 then raise("reshape: rank " .. #shape .. " is not supported (at most 8)") end
  return op("reshape", x, nil, nil, { ints = shape })
end

--- transpose(x, axes): axes is a 1-based permutation; nil reverses the axes.
local function transpose(who, x, axes)
  x = T(x, who, "x")
  if axes == nil then return op("transpose", x) end
  if type(axes) ~= "table" or core.class_name_of(axes) then
    raise(("%s: axes must be a list of axes like {2, 1}, got %s"):format(who, core.describe(axes)))
  end
  if #axes ~= x.nd then
    raise(("%s: permutation of length %d for a tensor of rank %d"):format(who, #axes, x.nd))
  end
  local perm = {}
  for i, a in ipairs(axes) do perm[i] = core.axis_arg(a, x.nd, who) end
  return op("transpose", x, nil, nil, { ints = perm })
end
function ops.transpose(x, axes) return transpose("transpose", x, axes) end
--- permute_dims(x, axes): transpose(x, axes), NumPy's name.
function ops.permute_dims(x, axes) return transpose("permute_dims", x, axes) end
--- swapaxes(x, axis1, axis2): x with two axes (1-based) exchanged.
function ops.swapaxes(x, a1, a2)
  x = T(x, "swapaxes", "x")
  local p = {}
  for i = 1, x.nd do p[i] = i end
  local i1, i2 = core.axis_arg(a1, x.nd, "swapaxes") + 1, core.axis_arg(a2, x.nd, "swapaxes") + 1
  p[i1], p[i2] = p[i2], p[i1]
  return ops.transpose(x, p)
end

--- expand_dims(x, axis): x with a new axis of size 1 at position axis (1-based; -1 appends).
function ops.expand_dims(x, axis)
  x = T(x, "expand_dims", "x")
  local s = x:shape()
  local pos = core.axis_arg(axis, x.nd + 1, "expand_dims") + 1
  table.insert(s, pos, 1)
  return ops.reshape(x, s)
end

--- squeeze(x, axis=nil): x without its size-1 axes (or only axis, which must have size 1).
function ops.squeeze(x, axis)
  x = T(x, "squeeze", "x")
  local s, out = x:shape(), {}
  if axis == nil then
    for _, d in ipairs(s) do if d ~= 1 then out[#out + 1] = d end end
  else
    local ax = core.axis_arg(axis, x.nd, "squeeze") + 1
    if s[ax] ~= 1 then raise(("squeeze: axis %d has size %d, not 1"):format(axis, s[ax])) end
    for i, d in ipairs(s) do if i ~= ax then out[#out + 1] = d end end
  end
  return ops.reshape(x, out)
end

--- broadcast_to(x, shape): x repeated to shape along its size-1 (and missing leading) axes, NumPy rules.
function ops.broadcast_to(x, shape)
  x = T(x, "broadcast_to", "x")
  if type(shape) == "number" then shape = { shape } end
  core.shape_arg(shape, "broadcast_to")     -- a list of sizes, checked
  return op("broadcast_to", x, nil, nil, { ints = shape })
end

--- flatten(x): x as one axis (reshape(x, {-1})).
function ops.flatten(x) return ops.reshape(T(x, "flatten", "x"), { -1 }) end

--- slice_axis(x, axis, first, last): positions first..last (1-based, inclusive,
-- negative from the end) along one axis, as a view.
function ops.slice_axis(x, axis, first, last, step)
  x = T(x, "slice_axis", "x")
  local ax = core.axis_arg(axis, x.nd, "slice_axis")
  local d = tonumber(x.dims[ax])
  first = first or 1
  last = last or d
  for _, v in ipairs { { "first", first }, { "last", last }, { "step", step or 1 } } do
    if type(v[2]) ~= "number" or v[2] % 1 ~= 0 then
      raise(("slice_axis: %s must be an integer, got %s"):format(v[1], core.describe(v[2])))
    end
  end
  if (step or 1) < 1 then raise("slice_axis: step must be positive, got " .. core.describe(step)) end
  if first < 0 then first = d + first + 1 end
  if last < 0 then last = d + last + 1 end
  return op("slice", x, nil, nil, { ints = { ax, first - 1, last, step or 1 } })
end
--- t:narrow(axis, first, length): length positions from first (1-based) along axis, as a view (torch's narrow).
methods.narrow = function(x, axis, first, length)
  x = T(x, "narrow", "x")
  core.axis_arg(axis, x.nd, "narrow")
  if type(first) ~= "number" or type(length) ~= "number" or first % 1 ~= 0 or length % 1 ~= 0 then
    raise(("narrow: first and length must be integers, got %s and %s"):format(core.describe(first), core.describe(length)))
  end
  return ops.slice_axis(x, axis, first, first + length - 1)
end

--- slice(x, start_indices, shape): Keras's ops.slice with 1-based starts.
function ops.slice(x, start, shape)
  x = T(x, "slice", "x")
  for _, a in ipairs { { "start_indices", start }, { "shape", shape } } do
    local v = a[2]
    local ok = type(v) == "table" and not core.class_name_of(v)
    for i = 1, ok and x.nd or 0 do ok = ok and (v[i] == nil or (type(v[i]) == "number" and v[i] % 1 == 0)) end
    if not ok then raise(("slice: %s must be a list of integers, got %s"):format(a[1], core.describe(v))) end
  end
  for i = 1, x.nd do
    local s = start[i] or 1
    local len = shape[i] or -1
    if len == -1 then len = tonumber(x.dims[i - 1]) - s + 1 end
    x = ops.slice_axis(x, i, s, s + len - 1)
  end
  return x
end

--- concatenate(list, axis=1): the tensors of list joined along an existing axis (1-based) (also concat).
function ops.concatenate(list, axis)
  if type(list) ~= "table" or #list == 0 then raise("concatenate: expected a non-empty list of tensors") end
  local first = T(list[1], "concatenate", "list[1]")
  return core.op_n("concatenate", list, { axes = { core.axis_arg(axis or 1, first.nd, "concatenate") } })
end
ops.concat = ops.concatenate

--- stack(list, axis=1): the tensors of list (equal shapes) joined along a new axis (1-based).
function ops.stack(list, axis)
  if type(list) ~= "table" or #list == 0 then raise("stack: expected a non-empty list of tensors") end
  local first = T(list[1], "stack", "list[1]")
  return core.op_n("stack", list, { axes = { core.axis_arg(axis or 1, first.nd + 1, "stack") } })
end

--- split(x, n_or_sizes, axis): a list of views; n equal parts or given sizes.
function ops.split(x, parts, axis)
  x = T(x, "split", "x")
  axis = axis or 1
  local ax = core.axis_arg(axis, x.nd, "split")
  local d = tonumber(x.dims[ax])
  local sizes = {}
  if type(parts) ~= "number" and (type(parts) ~= "table" or core.class_name_of(parts)) then
    raise("split: indices_or_sections must be a number of parts or a list of sizes, got " .. core.describe(parts))
  end
  if type(parts) == "number" then
    if parts <= 0 or parts % 1 ~= 0 or d % parts ~= 0 then
      raise(("split: an axis of size %d cannot be split into %s equal parts"):format(d, tostring(parts)))
    end
    for i = 1, parts do sizes[i] = d / parts end
  else
    local total = 0
    for i, s in ipairs(parts) do
      if type(s) ~= "number" or s < 0 or s % 1 ~= 0 then raise("split: sizes must be non-negative integers, got " .. core.describe(s)) end
      sizes[i] = s; total = total + s
    end
    if total ~= d then raise(("split: sizes add up to %d, the axis has %d"):format(total, d)) end
  end
  local out, start = {}, 1
  for i, s in ipairs(sizes) do
    out[i] = ops.slice_axis(x, ax + 1, start, start + s - 1)
    start = start + s
  end
  return out
end

--- take(x, indices, axis): gather along axis with 0-based indices; nil axis flattens x.
function ops.take(x, indices, axis)
  x = T(x, "take", "x")
  if axis == nil then x = ops.reshape(x, { -1 }); axis = 1 end
  return op("take", x, T(indices, "take", "indices"), nil, { axes = { core.axis_arg(axis, x.nd, "take") } })
end
ops.gather = ops.take

--- one_hot(indices, depth): for 0-based class indices, a new last axis of size depth with 1 at each index.
function ops.one_hot(indices, depth)
  if type(depth) ~= "number" or depth < 1 then raise("one_hot: depth must be a positive integer") end
  return op("one_hot", T(indices, "one_hot", "indices"), nil, nil, { ints = { depth } })
end

-- Activation functions with Keras's arguments (klua.activations names them).
-- arg(v, key, default): an optional argument given as a value or in a table.
local function arg(v, key, default)
  if type(v) == "table" and not core.class_name_of(v) then v = v[key] end
  if v == nil then return default end
  return v
end
-- num(who, key, v): v, which must be a finite number.
local function num(who, key, v)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
    raise(("%s: %s must be a number. Received: %s=%s"):format(who, key, key, core.received(v)))
  end
  return v
end

--- relu6(x): min(max(x, 0), 6).
function ops.relu6(x) return op("clip", T(x, "relu6", "x"), nil, nil, { f = { 0, 6 } }) end
--- leaky_relu(x, negative_slope=0.2): x if x >= 0, else negative_slope * x.
-- Keras 3: negative_slope 0.2 for the function (the LeakyReLU layer uses 0.3).
function ops.leaky_relu(x, negative_slope)
  return op("leaky_relu", T(x, "leaky_relu", "x"), nil, nil,
    { f = { num("leaky_relu", "negative_slope", arg(negative_slope, "negative_slope", 0.2)) } })
end
--- elu(x, alpha=1.0): x if x > 0, else alpha * (exp(x) - 1).
function ops.elu(x, alpha) return op("elu", T(x, "elu", "x"), nil, nil, { f = { num("elu", "alpha", arg(alpha, "alpha", 1.0)) } }) end
--- selu(x): scale * elu(x, alpha) with Keras's self-normalising constants.
function ops.selu(x) return op("selu", T(x, "selu", "x")) end
--- gelu(x, approximate=false): x * Phi(x) (exact), or the tanh approximation.
-- Keras's activation default is the exact form x * Phi(x) (approximate = false).
function ops.gelu(x, approximate)
  return op("gelu", T(x, "gelu", "x"), nil, nil, { ints = { arg(approximate, "approximate", false) and 1 or 0 } })
end
--- hard_sigmoid(x): relu6(x + 3) / 6, a piecewise-linear sigmoid.
-- Keras 3: relu6(x + 3) / 6.
function ops.hard_sigmoid(x)
  return op("clip", op("scale", T(x, "hard_sigmoid", "x"), nil, nil, { f = { 1 / 6, 0.5 } }), nil, nil, { f = { 0, 1 } })
end
--- softsign(x): x / (|x| + 1).
function ops.softsign(x)
  x = T(x, "softsign", "x")
  return x / (op("abs", x) + 1)
end
--- silu(x): x * sigmoid(x) (also swish).
function ops.silu(x) return op("silu", T(x, "silu", "x")) end
ops.swish = ops.silu
--- hard_silu(x): x * hard_sigmoid(x) (also hard_swish).
function ops.hard_silu(x)
  x = T(x, "hard_silu", "x")
  return x * ops.hard_sigmoid(x)
end
--- mish(x): x * tanh(softplus(x)).
function ops.mish(x)
  x = T(x, "mish", "x")
  return x * op("tanh", op("softplus", x))
end

--- celu(x, alpha=1.0): max(x, 0) + alpha * (exp(min(x, 0) / alpha) - 1).
-- Keras 3's newer activations (keras/src/ops/nn.py), compositions of the ops
-- above so that the tape derives their gradients.
function ops.celu(x, alpha)
  x, alpha = T(x, "celu", "x"), arg(alpha, "alpha", 1.0)
  if type(alpha) ~= "number" or alpha == 0 then raise("celu: alpha must be a non-zero number. Received: alpha=" .. tostring(alpha)) end
  -- max(x, 0) + alpha * (exp(min(x, 0) / alpha) - 1)
  return op("relu", x) + (op("exp", op("relu", -x) * (-1 / alpha)) - 1) * alpha
end
--- glu(x, axis=-1): a * sigmoid(b), a and b the two halves of x along axis.
function ops.glu(x, axis)
  x = T(x, "glu", "x")
  axis = arg(axis, "axis", -1)
  local ax = core.axis_arg(axis, x.nd, "glu")
  local d = tonumber(x.dims[ax])
  if d % 2 ~= 0 then
    raise(("glu: axis size must be divisible by 2. Received: x.shape=%s with axis=%s"):format(core.shape_str(x:shape()), tostring(axis)))
  end
  return ops.slice_axis(x, ax + 1, 1, d / 2) * op("sigmoid", ops.slice_axis(x, ax + 1, d / 2 + 1, d))
end
--- tanh_shrink(x): x - tanh(x).
function ops.tanh_shrink(x)
  x = T(x, "tanh_shrink", "x")
  return x - op("tanh", x)
end
--- hard_tanh(x): x clipped to [-1, 1].
function ops.hard_tanh(x) return op("clip", T(x, "hard_tanh", "x"), nil, nil, { f = { -1, 1 } }) end
local function shrink_threshold(who, t)
  if type(t) ~= "number" or t < 0 then raise(("%s: threshold must be a non-negative number. Received: threshold=%s"):format(who, tostring(t))) end
  return t
end
--- hard_shrink(x, threshold=0.5): x where |x| > threshold, else 0.
-- x where |x| > threshold, else 0
function ops.hard_shrink(x, threshold)
  x = T(x, "hard_shrink", "x")
  local t = shrink_threshold("hard_shrink", arg(threshold, "threshold", 0.5))
  return op("where", op("greater", op("abs", x), T(t)), x, T(0))
end
--- soft_shrink(x, threshold=0.5): x shrunk toward 0 by threshold (0 within it).
-- x - threshold above it, x + threshold below -threshold, else 0
function ops.soft_shrink(x, threshold)
  x = T(x, "soft_shrink", "x")
  local t = shrink_threshold("soft_shrink", arg(threshold, "threshold", 0.5))
  return op("relu", x - t) - op("relu", -x - t)
end
--- squareplus(x, b=4): (x + sqrt(x^2 + b)) / 2, a smooth relu.
-- (x + sqrt(x^2 + b)) / 2
function ops.squareplus(x, b)
  x, b = T(x, "squareplus", "x"), arg(b, "b", 4)
  if type(b) ~= "number" or b < 0 then raise("squareplus: b must be a non-negative number. Received: b=" .. tostring(b)) end
  return (x + op("sqrt", op("square", x) + b)) * 0.5
end
--- sparse_plus(x): 0 below -1, (x + 1)^2 / 4 in between, x above 1.
-- 0 below -1, (x + 1)^2 / 4 inside (-1, 1), x above 1
function ops.sparse_plus(x)
  x = T(x, "sparse_plus", "x")
  return op("square", op("clip", x, nil, nil, { f = { -1, 1 } }) + 1) * 0.25 + op("relu", x - 1)
end
--- log_sigmoid(x): log(sigmoid(x)) = -softplus(-x), stable for large |x|.
-- log(sigmoid(x)) = -softplus(-x), stable for large |x|
function ops.log_sigmoid(x) return -op("softplus", -T(x, "log_sigmoid", "x")) end
--- sparse_sigmoid(x): 0 below -1, (x + 1) / 2 in between, 1 above 1.
-- 0 below -1, (x + 1) / 2 inside, 1 above
function ops.sparse_sigmoid(x)
  return op("scale", op("clip", T(x, "sparse_sigmoid", "x"), nil, nil, { f = { -1, 1 } }), nil, nil, { f = { 0.5, 0.5 } })
end
--- threshold(x, threshold, default_value): x where x > threshold, else default_value.
-- x where x > threshold, else default_value (Keras: both required)
function ops.threshold(x, threshold, default_value)
  x = T(x, "threshold", "x")
  if type(threshold) == "table" then threshold, default_value = threshold.threshold, threshold.default_value end
  if type(threshold) ~= "number" or type(default_value) ~= "number" then
    raise(("threshold: expected numbers threshold and default_value. Received: threshold=%s, default_value=%s")
      :format(tostring(threshold), tostring(default_value)))
  end
  return op("where", op("greater", x, T(threshold)), x, T(default_value))
end
--- sparsemax(x, axis=-1): max(x - tau, 0) with tau such that the outputs sum
-- to 1 along axis (Martins & Astudillo, 2016). Sort-free and exact: z_j is
-- in the support iff 1 + k_j z_j > s_j, where k_j counts the z_i >= z_j and
-- s_j sums them (ties fall on the same side). The pairwise comparison costs
-- n^2 per row: meant for class scores, not axes of thousands.
function ops.sparsemax(x, axis)
  x = T(x, "sparsemax", "x")
  local ax = core.axis_arg(arg(axis, "axis", -1), x.nd, "sparsemax") + 1
  local last = ax == x.nd
  if not last then x = ops.swapaxes(x, ax, -1) end
  local support = no_grad(function()
    local zi, zj = ops.expand_dims(x, -2), ops.expand_dims(x, -1)
    local ge = op("greater_equal", zi, zj)                     -- (..., j, i): z_i >= z_j
    return op("greater", ops.sum(ge, -1) * x + 1, ops.sum(ge * zi, -1))
  end)
  local tau = (ops.sum(support * x, -1, true) - 1) / ops.sum(support, -1, true)
  local y = op("relu", x - tau)
  if not last then y = ops.swapaxes(y, ax, -1) end
  return y
end

-- Convolution and pooling with Keras's arguments (lua/klua/nn.lua).
--- conv(x, kernel, {strides=1, padding="valid", dilation_rate=1, groups=1, data_format="channels_last"}): Keras's
-- ops.conv: 1-, 2- or 3-D convolution of channels-last x with a (K..., C/groups, O) kernel (klua.nn.conv).
--- conv_transpose(x, kernel, {strides=1, padding="valid", output_padding=nil, dilation_rate=1}): the transposed
-- convolution, kernel (K..., O, C) (klua.nn.conv_transpose).
--- depthwise_conv(x, kernel, {strides=1, padding="valid", dilation_rate=1}): each channel convolved with its own
-- filters, kernel (K..., C, M) -> C * M channels (klua.nn.depthwise_conv).
--- max_pool(x, pool_size, strides=pool_size, padding="valid"): the maximum of each window, 1-, 2- or 3-D by rank.
--- average_pool(x, pool_size, strides=pool_size, padding="valid"): the mean of each window ("same": real elements only).
for _, name in ipairs { "conv", "conv_transpose", "depthwise_conv", "max_pool", "average_pool" } do
  ops[name] = function(...) return require("klua.nn")[name](...) end
end

--- ctc_loss(target, output, target_length, output_length, mask_index=0):
-- keras.ops.ctc_loss: (batch) losses of (batch, max_length) labels, of which
-- the first target_length count, against (batch, time, classes) logits, of
-- which the first output_length steps count; mask_index is the blank.
function ops.ctc_loss(target, output, target_length, output_length, mask_index)
  if mask_index ~= nil and (type(mask_index) ~= "number" or mask_index % 1 ~= 0) then
    raise("ctc_loss: mask_index must be an integer, got " .. core.describe(mask_index))
  end
  return core.op_n("ctc_loss", { T(target, "ctc_loss", "target"), T(output, "ctc_loss", "output"), T(target_length, "ctc_loss", "target_length"), T(output_length, "ctc_loss", "output_length") }, { ints = { mask_index or 0 } })
end

-- Every op is also a method: t:sum(2), t:reshape{...}, t:matmul(w). ---------

local skip = { convert_to_tensor = true, concatenate = true, concat = true, stack = true }
for name, f in pairs(ops) do
  if not skip[name] and name:sub(1, 1) ~= "_" and methods[name] == nil then methods[name] = f end
end
--- t:T(): t with its axes reversed (the matrix transpose of a 2-D tensor).
methods.T = function(x) return ops.transpose(x) end

return ops
