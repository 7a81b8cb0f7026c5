-- nadam.lua — Nadam (Adam with Nesterov momentum), as keras.optimizers.Nadam:
-- a momentum cache u_product = prod_t beta_1 * (1 - 0.5 * 0.96^t) advances
-- once per step, before the variables are updated; it is part of the state.
local Optimizer = require("klua.optimizers.optimizer")
local kernels = Optimizer.kernels

local Nadam = Optimizer:extend("Nadam")
Nadam.hyper = { learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7 }
Nadam.default_name = "nadam"
Nadam.state_scalars = { "u_product" }

function Nadam:_validate() self.u_product = 1.0 end

function Nadam:_slot_specs() return { { "momentum", 0 }, { "velocity", 0 } } end

function Nadam:_before_update()
  self.u_product = self.u_product * self.beta_1 * (1.0 - 0.5 * 0.96 ^ (self.iterations + 1))
end

function Nadam:_update(var, grad, slots, step)
  return kernels.nadam(var, grad, slots.momentum, slots.velocity, step, self.beta_1, self.beta_2, self.epsilon, self.u_product)
end

return Nadam
