-- masking.lua — Masking: timesteps whose features all equal mask_value are
-- skipped: they are zeroed and the layer emits a mask (batch, time) with 0
-- there, which later layers (RNNs, pooling, losses) receive as kw.mask.
local core = require("klua.core")
local Layer = require("klua.layer")
local ops = require("klua.ops")

local Masking = Layer:extend("Masking")
Masking.input_spec = { min_ndim = 2, layout = "(batch, ..., features)" }   -- one tensor (Keras's input_spec)
Masking.supports_masking = true

--- Masking{mask_value=0, ...}: timesteps whose features all equal mask_value are zeroed and masked out for the
-- layers after it (RNNs, pooling, losses).
function Masking:__init(mask_value, kw)
  mask_value, kw = Layer.args(mask_value, kw, "mask_value")
  if mask_value == nil then mask_value = 0.0 end
  if type(mask_value) ~= "number" then
    core.raise("Masking: mask_value must be a number. Received: mask_value=" .. tostring(mask_value))
  end
  Masking.super.__init(self, kw)
  self.mask_value = mask_value
end

-- (..., 1): 1 where any feature differs from mask_value.
local function keep_of(self, x)
  return ops.max(core.op("not_equal", x, core.to_tensor(self.mask_value)), -1, true)
end

function Masking:call(x)
  if x.nd < 2 then self:raise("expected an input of rank >= 2 (batch, ..., features), got %s", core.shape_str(x:shape())) end
  local keep = keep_of(self, x)
  rawset(self, "_last", { x, keep })
  return x * keep
end

function Masking:compute_mask(x, mask)
  local last = rawget(self, "_last")
  local keep = (last and last[1] == x) and last[2] or keep_of(self, x)
  rawset(self, "_last", nil)
  return ops.squeeze(keep, -1)
end

function Masking:compute_output_shape(s) return s end

function Masking:get_config()
  local config = Masking.super.get_config(self)
  config.mask_value = self.mask_value
  return config
end

return Masking
