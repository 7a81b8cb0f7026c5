-- adamax.lua — Adamax (Adam with the infinity norm), as keras.optimizers.Adamax.
local Optimizer = require("klua.optimizers.optimizer")
local kernels = Optimizer.kernels

local Adamax = Optimizer:extend("Adamax")
Adamax.hyper = { learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7 }
Adamax.default_name = "adamax"

function Adamax:_slot_specs() return { { "momentum", 0 }, { "norm", 0 } } end

function Adamax:_update(var, grad, slots, step)
  return kernels.adamax(var, grad, slots.momentum, slots.norm, step, self.beta_1, self.beta_2, self.epsilon)
end

return Adamax
