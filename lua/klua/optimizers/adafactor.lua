-- adafactor.lua — Adafactor, as keras.optimizers.Adafactor: for a variable
-- of rank >= 2 the second moments are factored over the last two axes (a row
-- slot r without the last axis, a column slot c without the second-to-last);
-- the step is rho = min(lr, 1/sqrt(t)) times max(epsilon_2, RMS(w)), and the
-- update is clipped by its RMS (clip_threshold). One C call per variable.
-- NOTE: as in Keras, the step rho is min(lr, 1/sqrt(t)) whatever
-- relative_step says (Keras applies that minimum twice when it is true), so
-- relative_step changes nothing; it is kept for the configuration.
local Optimizer = require("klua.optimizers.optimizer")
local kernels = Optimizer.kernels

local Adafactor = Optimizer:extend("Adafactor")
Adafactor.hyper = {
  learning_rate = 0.001, beta_2_decay = -0.8, epsilon_1 = 1e-30, epsilon_2 = 1e-3,
  clip_threshold = 1.0, relative_step = true,
}
Adafactor.default_name = "adafactor"

-- Keras's variables per weight: r, c (scalar placeholders below rank 2), velocity.
function Adafactor:_slot_specs(var)
  local shape = var:shape()
  local n = #shape
  if n < 2 then return { { "r", 0, shape = {} }, { "c", 0, shape = {} }, { "velocity", 0 } } end
  local r, c = {}, {}
  for i = 1, n - 1 do r[i] = shape[i] end
  for i = 1, n - 2 do c[i] = shape[i] end
  c[n - 1] = shape[n]
  return { { "r", 0, shape = r }, { "c", 0, shape = c }, { "velocity", 0 } }
end

function Adafactor:_update(var, grad, slots, step)
  local factored = var.nd >= 2
  return kernels.adafactor(var, grad, factored and slots.r or nil, factored and slots.c or nil, slots.velocity, step,
    self.beta_2_decay, self.epsilon_1, self.epsilon_2, self.clip_threshold)
end

return Adafactor
