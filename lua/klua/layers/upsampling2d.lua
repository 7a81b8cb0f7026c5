-- upsampling2d.lua — UpSampling2D: enlarges (batch, height, width, channels)
-- by size; interpolation "nearest" (rows and columns repeated, a C kernel) or
-- "bilinear" (Keras's resize: TF's half-pixel centers, no antialiasing when
-- enlarging), data_format, as Keras.
local Layer = require("klua.layer")
local nn = require("klua.nn")
local ops = require("klua.ops")

local UpSampling2D = Layer:extend("UpSampling2D")
UpSampling2D.input_spec = { ndim = 4 }   -- one tensor (Keras's input_spec)

--- UpSampling2D{size={2, 2}, data_format="channels_last", interpolation="nearest", ...}: enlarges an image batch
-- by size, "nearest" (repeating rows and columns) or "bilinear".
function UpSampling2D:__init(size, kw)
  size, kw = nn.args(size, kw, "size")
  UpSampling2D.super.__init(self, kw)
  local ok, s = pcall(nn.tuple, size or 2, 2, "size")
  if not ok then
    self:raise("size must be an integer or a list of 2 integers. Received: size=%s",
      type(size) == "table" and Layer.shape_str(size) or tostring(size))
  end
  self.size = s
  self.interpolation = type(kw.interpolation) == "string" and kw.interpolation:lower() or kw.interpolation or "nearest"
  if self.interpolation ~= "nearest" and self.interpolation ~= "bilinear" then
    self:raise("interpolation must be \"nearest\" or \"bilinear\" (Keras's bicubic, lanczos3, lanczos5 are not implemented). Received: interpolation=%s",
      tostring(kw.interpolation))
  end
  self.data_format = nn.data_format(kw.data_format)
  if not self.data_format then
    self:raise("data_format must be \"channels_last\" or \"channels_first\". Received: data_format=%s", tostring(kw.data_format))
  end
end

-- Bilinear along one axis of x, n -> n * f: output i samples the input at
-- (i + 0.5) / f - 0.5 (half-pixel centers), clamped to [0, n - 1], from its
-- two neighbours. Composed of gathers, so the gradient is the ops'.
local function lerp_axis(x, axis, n, f)
  local lo, hi, w = {}, {}, {}
  for i = 1, n * f do
    local p = math.min(math.max((i - 0.5) / f - 0.5, 0), n - 1)
    lo[i] = math.floor(p)
    hi[i], w[i] = math.min(lo[i] + 1, n - 1), p - lo[i]
  end
  local shape = { 1, 1, 1, 1 }
  shape[axis] = n * f
  local a, b = ops.take(x, lo, axis), ops.take(x, hi, axis)
  return a + (b - a) * ops.reshape(w, shape)
end

-- x channels-last.
function UpSampling2D:_resize(x)
  if self.interpolation == "nearest" then return nn.upsampling2d(x, self.size) end
  local s = x:shape()
  return lerp_axis(lerp_axis(x, 2, s[2], self.size[1]), 3, s[3], self.size[2])
end

function UpSampling2D:call(x)
  if x.nd ~= 4 then self:raise("expected an input of rank 4, got shape %s", Layer.shape_str(x:shape())) end
  if self.data_format == "channels_first" then return nn.to_channels_first(self:_resize(nn.to_channels_last(x))) end
  return self:_resize(x)
end

function UpSampling2D:compute_output_shape(s)
  local function mul(d, f) return (d == nil or d < 0) and -1 or d * f end
  if self.data_format == "channels_first" then return { s[1], s[2], mul(s[3], self.size[1]), mul(s[4], self.size[2]) } end
  return { s[1], mul(s[2], self.size[1]), mul(s[3], self.size[2]), s[4] }
end

function UpSampling2D:get_config()
  local config = UpSampling2D.super.get_config(self)
  config.size = self.size
  config.data_format = self.data_format
  config.interpolation = self.interpolation
  return config
end

return UpSampling2D
