-- lamb.lua — Lamb, as keras.optimizers.Lamb: Adam's bias-corrected direction
-- scaled per variable by the trust ratio ||w|| / ||update|| (1 when either is
-- 0). One C call: the two norms are whole-tensor sums in a fixed order.
local Optimizer = require("klua.optimizers.optimizer")
local kernels = Optimizer.kernels

local Lamb = Optimizer:extend("Lamb")
Lamb.hyper = { learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7 }
Lamb.default_name = "lamb"

function Lamb:_slot_specs() return { { "momentum", 0 }, { "velocity", 0 } } end

function Lamb:_update(var, grad, slots, step)
  return kernels.lamb(var, grad, slots.momentum, slots.velocity, step, self.beta_1, self.beta_2, self.epsilon)
end

return Lamb
