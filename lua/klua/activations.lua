-- activations.lua — klua.activations: Keras's activation functions, by name or
-- function. Each takes a tensor (and Keras's optional arguments, positionally
-- or as a table) and returns a tensor:
--   klua.activations.leaky_relu(x, 0.1)   klua.activations.gelu(x, {approximate = true})
-- gelu, elu, selu, leaky_relu and silu are C ops (src/ops/activation.c); the
-- rest are compositions of one to three ops whose gradients the tape derives.
local core = require("klua.core")
local tensor = require("klua.tensor")
local ops = require("klua.ops")
local op, T = core.op, tensor.T

local M = {}

-- arg(kw, key, default): Keras's optional argument given as a number/bool or
-- inside a table.
local function arg(v, key, default)
  if type(v) == "table" then v = v[key] end
  if v == nil then return default end
  return v
end

function M.linear(x) return T(x) end

-- Keras's relu(x, negative_slope=0, max_value=nil, threshold=0).
function M.relu(x, negative_slope, max_value, threshold)
  x = T(x)
  if type(negative_slope) == "table" then
    local kw = negative_slope
    negative_slope, max_value, threshold = kw.negative_slope, kw.max_value, kw.threshold
  end
  negative_slope, threshold = negative_slope or 0, threshold or 0
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

function M.relu6(x) return op("clip", T(x), nil, nil, { f = { 0, 6 } }) end

-- Keras 3: negative_slope 0.2 for the function (the LeakyReLU layer uses 0.3).
function M.leaky_relu(x, negative_slope)
  return op("leaky_relu", T(x), nil, nil, { f = { arg(negative_slope, "negative_slope", 0.2) } })
end

function M.elu(x, alpha) return op("elu", T(x), nil, nil, { f = { arg(alpha, "alpha", 1.0) } }) end

function M.selu(x) return op("selu", T(x)) end

-- Keras's default is the exact form x * Phi(x) (approximate = false).
function M.gelu(x, approximate)
  return op("gelu", T(x), nil, nil, { ints = { arg(approximate, "approximate", false) and 1 or 0 } })
end

function M.sigmoid(x) return op("sigmoid", T(x)) end

-- Keras 3: relu6(x + 3) / 6.
function M.hard_sigmoid(x) return op("clip", op("scale", T(x), nil, nil, { f = { 1 / 6, 0.5 } }), nil, nil, { f = { 0, 1 } }) end

function M.tanh(x) return op("tanh", T(x)) end

function M.softmax(x, axis) return ops.softmax(T(x), arg(axis, "axis", -1)) end
function M.log_softmax(x, axis) return ops.log_softmax(T(x), arg(axis, "axis", -1)) end

function M.softplus(x) return op("softplus", T(x)) end

function M.softsign(x)
  x = T(x)
  return x / (op("abs", x) + 1)
end

function M.silu(x) return op("silu", T(x)) end
M.swish = M.silu

function M.hard_silu(x)
  x = T(x)
  return x * M.hard_sigmoid(x)
end
M.hard_swish = M.hard_silu

function M.mish(x)
  x = T(x)
  return x * op("tanh", op("softplus", x))
end

function M.exponential(x) return op("exp", T(x)) end

local names = {}
for name, f in pairs(M) do names[f] = name end
-- Aliases serialize under the Keras name.
names[M.silu] = "silu"
names[M.hard_silu] = "hard_silu"

--- get(identifier): an activation function from a name or a function; nil
-- gives linear (as in Keras).
function M.get(id)
  if id == nil then return M.linear end
  if type(id) == "function" then return id end
  if type(id) == "string" then
    local f = M[id]
    if type(f) ~= "function" or id == "get" or id == "serialize" or id == "deserialize" then
      core.raise(("activations.get: unknown activation '%s'"):format(id))
    end
    return f
  end
  if type(id) == "table" then
    if type(id.class_name) == "string" then return M.get(id.class_name) end
    local mt = getmetatable(id)
    if mt and mt.__call then return id end
  end
  core.raise("activations.get: cannot interpret " .. tostring(id) .. " as an activation")
end

--- serialize(fn): the activation's name ("custom" for a function of the user's).
function M.serialize(f)
  if f == nil then return "linear" end
  return names[f] or "custom"
end
M.deserialize = M.get

return M
