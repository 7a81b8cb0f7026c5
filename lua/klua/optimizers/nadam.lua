-- nadam.lua — Nadam (Adam with Nesterov momentum), as keras.optimizers.Nadam:
-- a momentum cache u_product = prod_t beta_1 * (1 - 0.5 * 0.96^t) advances
-- once per step, before the variables are updated. As in Keras it is a
-- float32 Variable, created after the slots (the last of opt.variables).
local Optimizer = require("klua.optimizers.optimizer")
local kernels = Optimizer.kernels

local Nadam = Optimizer:extend("Nadam")
Nadam.hyper = { learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7 }
Nadam.default_name = "nadam"

function Nadam:_slot_specs() return { { "momentum", 0 }, { "velocity", 0 } } end

function Nadam:_state_layout_changed() return true end

function Nadam:_build_extra()
  if not rawget(self, "_u_product") then
    self._u_product = self:add_variable { shape = {}, initializer = 1, name = "u_product" }
  end
end

function Nadam:_before_update()
  local u = self._u_product
  self:_set_scalar(u, self:_get_scalar(u) * self.beta_1 * (1.0 - 0.5 * 0.96 ^ (self.iterations + 1)))
  self._u_value = self:_get_scalar(u)
end

function Nadam:_update(var, grad, slots, step)
  local u = self._u_value or self:_get_scalar(self._u_product)
  return kernels.nadam(var, grad, slots.momentum, slots.velocity, step, self.beta_1, self.beta_2, self.epsilon, u)
end

return Nadam
