-- adadelta.lua — Adadelta, as keras.optimizers.Adadelta (with a learning
-- rate, 0.001 by default; 1.0 matches the paper).
local Optimizer = require("klua.optimizers.optimizer")
local kernels = Optimizer.kernels

local Adadelta = Optimizer:extend("Adadelta")
Adadelta.hyper = { learning_rate = 0.001, rho = 0.95, epsilon = 1e-7 }
Adadelta.default_name = "adadelta"

function Adadelta:_slot_specs() return { { "accumulated_grad", 0 }, { "accumulated_delta_var", 0 } } end

function Adadelta:_update(var, grad, slots, step)
  return kernels.adadelta(var, grad, slots.accumulated_grad, slots.accumulated_delta_var, step, self.rho, self.epsilon)
end

return Adadelta
