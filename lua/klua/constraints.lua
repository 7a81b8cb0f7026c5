-- constraints.lua — klua.constraints: projections applied to a weight after
-- each optimizer update (kernel_constraint = klua.constraints.max_norm(2)).
-- A constraint is an object called on a weight that returns the projected
-- tensor; optimizers assign it back. Axes are 1-based (Keras's axis=0 is 1).
local core = require("klua.core")
local registry = require("klua.registry")
local class = require("klua.class")
local tensor = require("klua.tensor")
local ops = require("klua.ops")
local op, T = core.op, tensor.T

local M = {}
local EPSILON = 1e-7   -- Keras's backend.epsilon()

--- Constraint(): the base class of weight constraints: a subclass defines __call(w) -> the projected weight.
local Constraint = class("Constraint")
M.Constraint = Constraint
--- Constraint:class_name(): the class's name, "MaxNorm".
function Constraint:class_name() return rawget(getmetatable(self), "__name") end
--- Constraint:get_config(): the constructor arguments as a table (from_config rebuilds it).
function Constraint:get_config() return {} end
function Constraint:__call(w) return T(w, self:class_name(), "w") end
function Constraint:__tostring() return self:class_name() .. "()" end

-- norms(w, axis, who): the L2 norms along axis (kept); an axis w lacks raises naming the constraint.
local function norms(w, axis, who)
  for _, a in ipairs(type(axis) == "table" and axis or { axis }) do core.axis_arg(a, w.nd, who) end
  return ops.sqrt(ops.sum(ops.square(w), axis, true))
end

local function check_axis(cls, axis)
  if type(axis) == "table" then
    for _, a in ipairs(axis) do check_axis(cls, a) end
    return axis
  end
  if type(axis) ~= "number" or axis % 1 ~= 0 or axis == 0 then
    core.raise(("%s: axis must be a non-zero integer (1-based, negative from the end). Received: axis=%s")
      :format(cls, tostring(axis)))
  end
  return axis
end

--- MaxNorm{max_value=2, axis=1} (also MaxNorm(max_value, axis)): rescales the slices along axis (1-based)
-- whose L2 norm exceeds max_value down to it.
-- MaxNorm: rescale columns whose norm along `axis` exceeds max_value.
local MaxNorm = Constraint:extend("MaxNorm")
function MaxNorm:__init(max_value, axis)
  if type(max_value) == "table" then max_value, axis = max_value.max_value, max_value.axis end
  self.max_value = max_value or 2
  if type(self.max_value) ~= "number" or self.max_value < 0 then
    core.raise("MaxNorm: max_value must be a non-negative number. Received: max_value=" .. tostring(self.max_value))
  end
  self.axis = check_axis("MaxNorm", axis or 1)
end
function MaxNorm:__call(w)
  w = T(w, "MaxNorm", "w")
  local n = norms(w, self.axis, "MaxNorm")
  local desired = op("clip", n, nil, nil, { f = { 0, self.max_value } })
  return w * (desired / (n + EPSILON))
end
function MaxNorm:get_config() return { max_value = self.max_value, axis = self.axis } end

--- NonNeg(): negative weights become 0.
-- NonNeg: negative entries become 0.
local NonNeg = Constraint:extend("NonNeg")
function NonNeg:__call(w)
  w = T(w, "NonNeg", "w")
  return w * op("greater_equal", w, T(0))
end

--- UnitNorm{axis=1} (also UnitNorm(axis)): each slice along axis (1-based) scaled to L2 norm 1.
-- UnitNorm: columns of norm 1 along `axis`.
local UnitNorm = Constraint:extend("UnitNorm")
function UnitNorm:__init(axis)
  if type(axis) == "table" and axis.axis ~= nil then axis = axis.axis end
  if type(axis) == "table" and #axis == 0 then axis = nil end
  self.axis = check_axis("UnitNorm", axis or 1)
end
function UnitNorm:__call(w)
  w = T(w, "UnitNorm", "w")
  return w / (norms(w, self.axis, "UnitNorm") + EPSILON)
end
function UnitNorm:get_config() return { axis = self.axis } end

--- MinMaxNorm{min_value=0.0, max_value=1.0, rate=1.0, axis=1}: norms along axis pulled into [min_value, max_value]
-- (rate 1: all the way).
-- MinMaxNorm: norms pulled into [min_value, max_value] at `rate`.
local MinMaxNorm = Constraint:extend("MinMaxNorm")
function MinMaxNorm:__init(kw)
  kw = type(kw) == "table" and kw or {}
  self.min_value, self.max_value = kw.min_value or 0.0, kw.max_value or 1.0
  self.rate, self.axis = kw.rate or 1.0, check_axis("MinMaxNorm", kw.axis or 1)
  for _, k in ipairs { "min_value", "max_value", "rate" } do
    local v = self[k]
    if type(v) ~= "number" or v ~= v or v < 0 or v == math.huge then
      core.raise(("MinMaxNorm: %s must be a non-negative number. Received: %s=%s"):format(k, k, core.received(v)))
    end
  end
end
function MinMaxNorm:__call(w)
  w = T(w, "MinMaxNorm", "w")
  local n = norms(w, self.axis, "MinMaxNorm")
  local desired = op("clip", n, nil, nil, { f = { self.min_value, self.max_value } }) * self.rate + n * (1 - self.rate)
  return w * (desired / (n + EPSILON))
end
function MinMaxNorm:get_config()
  return { min_value = self.min_value, max_value = self.max_value, rate = self.rate, axis = self.axis }
end

M.MaxNorm, M.NonNeg, M.UnitNorm, M.MinMaxNorm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm
M.max_norm, M.non_neg, M.unit_norm, M.min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm

--- get(identifier): nil, a constraint, a function(w), a name, a registered
-- name or a config {class_name=, config=}.
local GET = { who = "constraints.get", kind = "constraint", builtins = M, base = Constraint, functions = true,
  hidden = { Constraint = true }, raise = core.raise }
function M.get(id) return registry.resolve(id, GET) end

--- serialize(constraint): {class_name=, config=} for a constraint, nil for nil.
function M.serialize(c)
  if c == nil then return nil end
  return registry.serialize(c, core.raise)
end
--- deserialize(config): the constraint a serialize() table describes (the same as get).
M.deserialize = M.get

return M
