-- softmax.lua — Softmax over an axis (the last by default). With a mask
-- (1 = keep), masked positions get probability 0, as in Keras.
local core = require("klua.core")
local Layer = require("klua.layer")
local ops = require("klua.ops")

local Softmax = Layer:extend("Softmax")
Softmax.supports_masking = true

function Softmax:__init(axis, kw)
  axis, kw = Layer.args(axis, kw, "axis")
  Softmax.super.__init(self, kw)
  self.axis = axis or -1
  if type(self.axis) ~= "number" or self.axis == 0 or self.axis % 1 ~= 0 then
    core.raise("Softmax: axis must be a non-zero integer (1-based, -1 last). Received: axis=" .. tostring(self.axis))
  end
end

function Softmax:call(x, kw)
  local mask = kw.mask
  if mask ~= nil and mask ~= false and type(mask) ~= "table" then
    -- Keras adds a large negative number where the mask is 0.
    x = x + (1 - mask) * -1e9
  end
  return ops.softmax(x, self.axis)
end

function Softmax:compute_output_shape(s) return s end

function Softmax:get_config()
  local config = Softmax.super.get_config(self)
  config.axis = self.axis
  return config
end

return Softmax
