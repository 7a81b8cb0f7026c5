-- upsampling2d.lua — UpSampling2D: repeats rows and columns of (batch, height,
-- width, channels) by size (nearest neighbour, as Keras's default).
local Layer = require("klua.layer")
local nn = require("klua.nn")

local UpSampling2D = Layer:extend("UpSampling2D")

--- UpSampling2D(size, {interpolation="nearest"})
function UpSampling2D:__init(size, kw)
  size, kw = nn.args(size, kw, "size")
  UpSampling2D.super.__init(self, kw)
  local ok, s = pcall(nn.tuple, size or 2, 2, "size")
  if not ok then self:raise("size must be an integer or a list of 2 integers. Received: size=%s", tostring(size)) end
  self.size = s
  self.interpolation = kw.interpolation or "nearest"
  if self.interpolation ~= "nearest" then
    self:raise("only interpolation=\"nearest\" is supported. Received: interpolation=%s", tostring(self.interpolation))
  end
  if kw.data_format ~= nil and kw.data_format ~= "channels_last" then
    self:raise("only data_format=\"channels_last\" is supported. Received: data_format=%s", tostring(kw.data_format))
  end
end

function UpSampling2D:call(x)
  if x.nd ~= 4 then self:raise("expected an input of rank 4, got shape %s", Layer.shape_str(x:shape())) end
  return nn.upsampling2d(x, self.size)
end

function UpSampling2D:compute_output_shape(s)
  local function mul(d, f) return (d == nil or d < 0) and -1 or d * f end
  return { s[1], mul(s[2], self.size[1]), mul(s[3], self.size[2]), s[4] }
end

function UpSampling2D:get_config()
  local config = UpSampling2D.super.get_config(self)
  config.size = self.size
  config.data_format = "channels_last"
  config.interpolation = self.interpolation
  return config
end

return UpSampling2D
