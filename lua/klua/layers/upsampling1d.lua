-- upsampling1d.lua — UpSampling1D: repeats each step of (batch, steps,
-- channels) `size` times, as Keras (the upsampling2d kernel on a
-- (batch, 1, steps, channels) view).
local Layer = require("klua.layer")
local nn = require("klua.nn")
local ops = require("klua.ops")

local UpSampling1D = Layer:extend("UpSampling1D")
UpSampling1D.input_spec = { ndim = 3 }   -- one tensor (Keras's input_spec)

--- UpSampling1D{size=2, ...}: repeats each step of (batch, steps, channels) size times.
function UpSampling1D:__init(size, kw)
  size, kw = nn.args(size, kw, "size")
  UpSampling1D.super.__init(self, kw)
  size = size == nil and 2 or size
  if type(size) ~= "number" or size % 1 ~= 0 or size < 1 then
    self:raise("size must be a positive integer. Received: size=%s", tostring(size))
  end
  self.size = size
end

function UpSampling1D:call(x)
  if x.nd ~= 3 then self:raise("expected an input of rank 3, got shape %s", Layer.shape_str(x:shape())) end
  local s = x:shape()
  local y = nn.upsampling2d(ops.reshape(x, { s[1], 1, s[2], s[3] }), { 1, self.size })
  return ops.reshape(y, { s[1], s[2] * self.size, s[3] })
end

function UpSampling1D:compute_output_shape(s)
  return { s[1], (s[2] == nil or s[2] < 0) and -1 or s[2] * self.size, s[3] }
end

function UpSampling1D:get_config()
  local config = UpSampling1D.super.get_config(self)
  config.size = self.size
  return config
end

return UpSampling1D
