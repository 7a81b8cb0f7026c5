-- regularizers.lua — klua.regularizers: weight penalties added to a layer's
-- losses (kernel_regularizer = klua.regularizers.l2(1e-3)). A regularizer is
-- an object called on a weight, returning a scalar tensor:
--   L1: l1 * sum(|w|)   L2: l2 * sum(w^2)   L1L2: both (Keras 3 defaults 0).
local core = require("klua.core")
local registry = require("klua.registry")
local class = require("klua.class")
local tensor = require("klua.tensor")
local op, T = core.op, tensor.T

local M = {}

local function factor(cls, key, v, default)
  if v == nil then return default end
  if type(v) ~= "number" or v < 0 or v ~= v then
    core.raise(("%s: expected a non-negative number. Received: %s=%s"):format(cls, key, core.received(v)))
  end
  return v
end

--- Regularizer(): the base class of weight penalties: a subclass defines __call(w) -> scalar tensor and get_config.
local Regularizer = class("Regularizer")
M.Regularizer = Regularizer
--- Regularizer:class_name(): the class's name, "L2".
function Regularizer:class_name() return rawget(getmetatable(self), "__name") end
--- Regularizer:get_config(): the constructor arguments as a table (from_config rebuilds it).
function Regularizer:get_config() return {} end
function Regularizer:__call(x) core.raise(self:class_name() .. ": __call is not implemented") end
function Regularizer:__tostring()
  local parts = {}
  for k, v in pairs(self:get_config()) do parts[#parts + 1] = k .. "=" .. tostring(v) end
  table.sort(parts)
  return self:class_name() .. "(" .. table.concat(parts, ", ") .. ")"
end

local function sum_abs(x) return op("sum", op("abs", x), nil, nil, { all_axes = true }) end
local function sum_sq(x) return op("sum", op("square", x), nil, nil, { all_axes = true }) end

--- L1{l1=0.01} (also L1(l1)): the penalty l1 * sum(|w|).
local L1 = Regularizer:extend("L1")
function L1:__init(l1)
  if type(l1) == "table" and not core.class_name_of(l1) then l1 = l1.l1 end
  self.l1 = factor("L1", "l1", l1, 0.01)
end
function L1:__call(x) return sum_abs(T(x, "L1", "x")) * self.l1 end
function L1:get_config() return { l1 = self.l1 } end

--- L2{l2=0.01} (also L2(l2)): the penalty l2 * sum(w^2).
local L2 = Regularizer:extend("L2")
function L2:__init(l2)
  if type(l2) == "table" and not core.class_name_of(l2) then l2 = l2.l2 end
  self.l2 = factor("L2", "l2", l2, 0.01)
end
function L2:__call(x) return sum_sq(T(x, "L2", "x")) * self.l2 end
function L2:get_config() return { l2 = self.l2 } end

--- L1L2{l1=0.0, l2=0.0} (also L1L2(l1, l2)): the penalty l1 * sum(|w|) + l2 * sum(w^2).
local L1L2 = Regularizer:extend("L1L2")
function L1L2:__init(l1, l2)
  if type(l1) == "table" and not core.class_name_of(l1) then l1, l2 = l1.l1, l1.l2 end
  self.l1 = factor("L1L2", "l1", l1, 0.0)
  self.l2 = factor("L1L2", "l2", l2, 0.0)
end
function L1L2:__call(x)
  x = T(x, "L1L2", "x")
  if self.l1 == 0 then return sum_sq(x) * self.l2 end
  if self.l2 == 0 then return sum_abs(x) * self.l1 end
  return sum_abs(x) * self.l1 + sum_sq(x) * self.l2
end
function L1L2:get_config() return { l1 = self.l1, l2 = self.l2 } end

M.L1, M.L2, M.L1L2 = L1, L2, L1L2
M.l1, M.l2, M.l1_l2 = L1, L2, L1L2

--- get(identifier): nil, a regularizer, a function(w), a name ("l2"), a
-- registered name or a config {class_name=, config=}.
local GET = { who = "regularizers.get", kind = "regularizer", builtins = M, base = Regularizer, functions = true,
  hidden = { Regularizer = true }, raise = core.raise }
function M.get(id) return registry.resolve(id, GET) end

--- serialize(regularizer): {class_name=, config=} for a regularizer, nil for nil.
function M.serialize(r)
  if r == nil then return nil end
  return registry.serialize(r, core.raise)
end
--- deserialize(config): the regularizer a serialize() table describes (the same as get).
M.deserialize = M.get

return M
