-- rmsprop.lua — RMSprop, as keras.optimizers.RMSprop: epsilon inside the
-- square root, plain (not Nesterov) momentum, optional centering.
local Optimizer = require("klua.optimizers.optimizer")
local kernels = Optimizer.kernels

local RMSprop = Optimizer:extend("RMSprop")
RMSprop.hyper = { learning_rate = 0.001, rho = 0.9, momentum = 0.0, epsilon = 1e-7, centered = false }
RMSprop.default_name = "rmsprop"

function RMSprop:_slot_specs()
  local s = { { "velocity", 0 } }
  if self.momentum > 0 then s[#s + 1] = { "momentum", 0 } end
  if self.centered then s[#s + 1] = { "average_gradient", 0 } end
  return s
end

function RMSprop:_update(var, grad, slots, step)
  return kernels.rmsprop(var, grad, slots.velocity, slots.momentum, slots.average_gradient, step, self.rho, self.momentum, self.epsilon)
end

return RMSprop
