-- rmsprop.lua — RMSprop, as keras.optimizers.RMSprop: epsilon inside the
-- square root, plain (not Nesterov) momentum, optional centering.
local Optimizer = require("klua.optimizers.optimizer")
local kernels = Optimizer.kernels

local RMSprop = Optimizer:extend("RMSprop")
RMSprop.hyper = { learning_rate = 0.001, rho = 0.9, momentum = 0.0, epsilon = 1e-7, centered = false }
RMSprop.default_name = "rmsprop"

-- Keras's build order: every velocity, then every momentum, then every average_gradient.
function RMSprop:_slot_specs()
  local groups = { { { "velocity", 0 } } }
  if self.momentum > 0 then groups[#groups + 1] = { { "momentum", 0 } } end
  if self.centered then groups[#groups + 1] = { { "average_gradient", 0 } } end
  return groups
end

function RMSprop:_state_layout_changed() return self.momentum > 0 or self.centered end

function RMSprop:_update(var, grad, slots, step)
  return kernels.rmsprop(var, grad, slots.velocity, slots.momentum, slots.average_gradient, step, self.rho, self.momentum, self.epsilon)
end

return RMSprop
