-- upsampling3d.lua — UpSampling3D: repeats the depth, rows and columns of
-- (batch, depth, height, width, channels) by size (nearest neighbour), with
-- data_format, as Keras: the upsampling2d kernel over the rows and columns,
-- then over the depth of a (batch, depth, 1, rest) view.
local Layer = require("klua.layer")
local nn = require("klua.nn")
local ops = require("klua.ops")

local UpSampling3D = Layer:extend("UpSampling3D")
UpSampling3D.input_spec = { ndim = 5 }   -- one tensor (Keras's input_spec)

--- UpSampling3D{size={2, 2, 2}, data_format="channels_last", ...}: repeats the depth, rows and columns of a volume batch.
function UpSampling3D:__init(size, kw)
  size, kw = nn.args(size, kw, "size")
  UpSampling3D.super.__init(self, kw)
  local ok, s = pcall(nn.tuple, size or 2, 3, "size")
  if not ok then
    self:raise("size must be an integer or a list of 3 integers. Received: size=%s",
      type(size) == "table" and Layer.shape_str(size) or tostring(size))
  end
  self.size = s
  self.data_format = nn.data_format(kw.data_format)
  if not self.data_format then
    self:raise("data_format must be \"channels_last\" or \"channels_first\". Received: data_format=%s", tostring(kw.data_format))
  end
end

-- x channels-last (N,D,H,W,C).
function UpSampling3D:_resize(x)
  local s, f = x:shape(), self.size
  local h, w = s[3] * f[2], s[4] * f[3]
  local y = nn.upsampling2d(ops.reshape(x, { s[1] * s[2], s[3], s[4], s[5] }), { f[2], f[3] })
  y = nn.upsampling2d(ops.reshape(y, { s[1], s[2], 1, h * w * s[5] }), { f[1], 1 })
  return ops.reshape(y, { s[1], s[2] * f[1], h, w, s[5] })
end

function UpSampling3D:call(x)
  if x.nd ~= 5 then self:raise("expected an input of rank 5, got shape %s", Layer.shape_str(x:shape())) end
  if self.data_format == "channels_first" then return nn.to_channels_first(self:_resize(nn.to_channels_last(x))) end
  return self:_resize(x)
end

function UpSampling3D:compute_output_shape(s)
  local out, first = { unpack(s) }, self.data_format == "channels_first" and 1 or 0
  for i = 1, 3 do
    local d = s[i + 1 + first]
    out[i + 1 + first] = (d == nil or d < 0) and -1 or d * self.size[i]
  end
  return out
end

function UpSampling3D:get_config()
  local config = UpSampling3D.super.get_config(self)
  config.size = self.size
  config.data_format = self.data_format
  return config
end

return UpSampling3D
