-- ftrl.lua — FTRL-proximal ("Follow The Regularized Leader"), as
-- keras.optimizers.Ftrl: per-weight accumulator and linear slots, online L1/L2
-- regularization and L2 shrinkage, one fused C update.
local core = require("klua.core")
local Optimizer = require("klua.optimizers.optimizer")
local kernels = Optimizer.kernels

local Ftrl = Optimizer:extend("Ftrl")
Ftrl.hyper = {
  learning_rate = 0.001, learning_rate_power = -0.5, initial_accumulator_value = 0.1,
  l1_regularization_strength = 0.0, l2_regularization_strength = 0.0,
  l2_shrinkage_regularization_strength = 0.0, beta = 0.0,
}
Ftrl.default_name = "ftrl"

local NON_NEGATIVE = { "initial_accumulator_value", "l1_regularization_strength", "l2_regularization_strength",
  "l2_shrinkage_regularization_strength" }

function Ftrl:_validate()
  for _, k in ipairs(NON_NEGATIVE) do
    if self[k] < 0 then
      core.raise(("Ftrl: `%s` needs to be positive or zero. Received: %s=%s."):format(k, k, tostring(self[k])))
    end
  end
  if self.learning_rate_power > 0 then
    core.raise(("Ftrl: `learning_rate_power` needs to be negative or zero. Received: learning_rate_power=%s.")
      :format(tostring(self.learning_rate_power)))
  end
end

function Ftrl:_slot_specs() return { { "accumulator", self.initial_accumulator_value }, { "linear", 0 } } end

function Ftrl:_update(var, grad, slots, step)
  return kernels.ftrl(var, grad, slots.accumulator, slots.linear, step, self.learning_rate_power,
    self.l1_regularization_strength, self.l2_regularization_strength, self.l2_shrinkage_regularization_strength, self.beta)
end

return Ftrl
