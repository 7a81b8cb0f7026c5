-- adam.lua — Adam, as keras.optimizers.Adam: the bias correction is folded
-- into the step size, alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t), and
-- epsilon is added to sqrt(v) (not to the bias-corrected v as in PyTorch).
local Optimizer = require("klua.optimizers.optimizer")
local kernels = Optimizer.kernels

local Adam = Optimizer:extend("Adam")
Adam.hyper = { learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7, amsgrad = false }
Adam.default_name = "adam"

-- Keras's build order: momentum and velocity per variable, then every velocity_hat.
function Adam:_slot_specs()
  local groups = { { { "momentum", 0 }, { "velocity", 0 } } }
  if self.amsgrad then groups[2] = { { "velocity_hat", 0 } } end
  return groups
end

function Adam:_state_layout_changed() return self.amsgrad end

function Adam:_update(var, grad, slots, step)
  return kernels.adam(var, grad, slots.momentum, slots.velocity, slots.velocity_hat, step, self.beta_1, self.beta_2, self.epsilon)
end

return Adam
