-- activations.lua — klua.activations: Keras's activation functions, by name or
-- function. Each takes a tensor (and Keras's optional arguments, positionally
-- or as a table) and returns a tensor:
--   klua.activations.leaky_relu(x, 0.1)   klua.activations.gelu(x, {approximate = true})
-- gelu, elu, selu, leaky_relu and silu are C ops (src/ops/activation.c); the
-- rest are compositions of ops (klua.ops) whose gradients the tape derives.
local core = require("klua.core")
local registry = require("klua.registry")
local tensor = require("klua.tensor")
local ops = require("klua.ops")
local op, T = core.op, tensor.T

local M = {}

--- linear(x): x unchanged (the activation of activation=nil).
function M.linear(x) return T(x, "linear", "x") end

--- relu(x, negative_slope=0, max_value=nil, threshold=0): max(x, 0), with Keras's leak, ceiling and threshold.
-- Keras's relu(x, negative_slope=0, max_value=nil, threshold=0).
function M.relu(x, negative_slope, max_value, threshold)
  x = T(x, "relu", "x")
  if type(negative_slope) == "table" and not core.class_name_of(negative_slope) then
    local kw = negative_slope
    negative_slope, max_value, threshold = kw.negative_slope, kw.max_value, kw.threshold
  end
  negative_slope, threshold = negative_slope or 0, threshold or 0
  for _, a in ipairs { { "negative_slope", negative_slope }, { "max_value", max_value or 0 }, { "threshold", threshold } } do
    if type(a[2]) ~= "number" or a[2] ~= a[2] then
      core.raise(("relu: %s must be a number. Received: %s=%s"):format(a[1], a[1], core.received(a[2])))
    end
  end
  if negative_slope == 0 and max_value == nil and threshold == 0 then return op("relu", x) end
  if negative_slope ~= 0 and max_value == nil and threshold == 0 then
    return op("leaky_relu", x, nil, nil, { f = { negative_slope } })
  end
  local negative_part
  if negative_slope ~= 0 then negative_part = op("relu", op("scale", x, nil, nil, { f = { -1, threshold } })) end
  local y
  if threshold ~= 0 then
    y = x * op("greater", x, T(threshold))
  else
    y = op("relu", x)
  end
  if max_value ~= nil then y = op("clip", y, nil, nil, { f = { -math.huge, max_value } }) end
  if negative_part then y = y - negative_part * negative_slope end
  return y
end

M.relu6, M.leaky_relu, M.elu, M.selu, M.gelu = ops.relu6, ops.leaky_relu, ops.elu, ops.selu, ops.gelu

--- sigmoid(x): 1 / (1 + exp(-x)).
function M.sigmoid(x) return op("sigmoid", T(x, "sigmoid", "x")) end

M.hard_sigmoid = ops.hard_sigmoid

--- tanh(x): the hyperbolic tangent.
function M.tanh(x) return op("tanh", T(x, "tanh", "x")) end

-- axis: one axis or a list of axes normalised together (Keras's tuple), also
-- as {axis = ...}.
local function axis_arg(v)
  if type(v) == "table" and v[1] == nil and not core.class_name_of(v) then v = v.axis end
  if v == nil then return -1 end
  return v
end
--- softmax(x, axis=-1): exp(x) / sum(exp(x)) along axis (1-based) or a list of axes together.
function M.softmax(x, axis) return ops.softmax(T(x, "softmax", "x"), axis_arg(axis)) end
--- log_softmax(x, axis=-1): log(softmax(x)) along axis, computed stably.
function M.log_softmax(x, axis) return ops.log_softmax(T(x, "log_softmax", "x"), axis_arg(axis)) end

--- softplus(x): log(1 + exp(x)).
function M.softplus(x) return op("softplus", T(x, "softplus", "x")) end

M.softsign, M.silu, M.hard_silu, M.mish = ops.softsign, ops.silu, ops.hard_silu, ops.mish
M.swish, M.hard_swish = M.silu, M.hard_silu

--- exponential(x): exp(x).
function M.exponential(x) return op("exp", T(x, "exponential", "x")) end

-- Keras 3's newer ones (compositions in klua.ops).
M.celu, M.glu, M.tanh_shrink, M.hard_tanh = ops.celu, ops.glu, ops.tanh_shrink, ops.hard_tanh
M.hard_shrink, M.soft_shrink, M.squareplus, M.sparse_plus = ops.hard_shrink, ops.soft_shrink, ops.squareplus, ops.sparse_plus
M.log_sigmoid, M.sparse_sigmoid, M.threshold = ops.log_sigmoid, ops.sparse_sigmoid, ops.threshold
--- sparsemax(x, axis=-1): the Euclidean projection of x onto the probability simplex along axis (sparse outputs).
function M.sparsemax(x, axis) return ops.sparsemax(T(x, "sparsemax", "x"), axis_arg(axis)) end

local names = {}
for name, f in pairs(M) do names[f] = name end
-- Aliases serialize under the Keras name.
names[M.silu] = "silu"
names[M.hard_silu] = "hard_silu"

--- get(identifier): an activation function from a name, a registered name or
-- a function; nil gives linear (as in Keras).
local GET = { who = "activations.get", kind = "activation", builtins = M, functions = true,
  named_functions = true, instantiate = false, hidden = { get = true, serialize = true, deserialize = true }, raise = core.raise }
function M.get(id)
  if id == nil then return M.linear end
  return registry.resolve(id, GET)
end

--- serialize(fn): the activation's name ("custom" for a function of the user's).
function M.serialize(f)
  if f == nil then return "linear" end
  return names[f] or registry.name_of(f) or "custom"
end
--- deserialize(name): the activation function a serialize() name stands for (the same as get).
M.deserialize = M.get

return M
