-- sgd.lua — SGD with optional (Nesterov) momentum, as keras.optimizers.SGD:
--   velocity = momentum * velocity - lr * g;  w += velocity
--   nesterov: w += momentum * velocity - lr * g
local core = require("klua.core")
local Optimizer = require("klua.optimizers.optimizer")
local kernels = Optimizer.kernels

local SGD = Optimizer:extend("SGD")
SGD.hyper = { learning_rate = 0.01, momentum = 0.0, nesterov = false }
SGD.default_name = "SGD"

function SGD:_validate()
  if self.momentum < 0 or self.momentum > 1 then
    core.raise(("SGD: `momentum` must be a number between [0, 1]. Received: momentum=%s"):format(tostring(self.momentum)))
  end
end

function SGD:_slot_specs()
  if self.momentum ~= 0 then return { { "momentum", 0 } } end
  return {}
end

function SGD:_update(var, grad, slots, step)
  return kernels.sgd(var, grad, slots.momentum, step, self.momentum, self.nesterov and 1 or 0)
end

return SGD
