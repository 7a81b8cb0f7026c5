-- adagrad.lua — Adagrad, as keras.optimizers.Adagrad: accumulators start at
-- initial_accumulator_value; w -= lr * g / sqrt(acc + epsilon).
local core = require("klua.core")
local Optimizer = require("klua.optimizers.optimizer")
local kernels = Optimizer.kernels

local Adagrad = Optimizer:extend("Adagrad")
Adagrad.hyper = { learning_rate = 0.001, initial_accumulator_value = 0.1, epsilon = 1e-7 }
Adagrad.default_name = "adagrad"

function Adagrad:_validate()
  if self.initial_accumulator_value < 0 then
    core.raise(("Adagrad: `initial_accumulator_value` must be non-negative. Received: %s"):format(tostring(self.initial_accumulator_value)))
  end
end

function Adagrad:_slot_specs() return { { "accumulator", self.initial_accumulator_value } } end

function Adagrad:_update(var, grad, slots, step)
  return kernels.adagrad(var, grad, slots.accumulator, step, self.epsilon)
end

return Adagrad
