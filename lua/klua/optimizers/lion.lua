-- lion.lua — Lion (sign of an interpolated momentum), as keras.optimizers.Lion.
local core = require("klua.core")
local Optimizer = require("klua.optimizers.optimizer")
local kernels = Optimizer.kernels

local Lion = Optimizer:extend("Lion")
Lion.hyper = { learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.99 }
Lion.default_name = "lion"

function Lion:_validate()
  if self.beta_1 <= 0 or self.beta_1 > 1 then
    core.raise(("Lion: `beta_1` must be in the (0, 1] range; otherwise the optimizer degenerates to SignSGD. Received: beta_1=%s")
      :format(tostring(self.beta_1)))
  end
end

function Lion:_slot_specs() return { { "momentum", 0 } } end

function Lion:_update(var, grad, slots, step)
  return kernels.lion(var, grad, slots.momentum, step, self.beta_1, self.beta_2)
end

return Lion
