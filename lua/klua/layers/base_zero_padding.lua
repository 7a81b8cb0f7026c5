-- base_zero_padding.lua — BaseZeroPadding, the shared part of ZeroPadding1D,
-- ZeroPadding2D and ZeroPadding3D: padding parsed as Keras does, data_format,
-- output shapes. The zeros come from the zero_padding2d kernel (1-D on a
-- (batch, 1, steps, channels) view; 3-D as a 2-D pass over (height, width)
-- and one over depth). Not registered as a layer itself.
local Layer = require("klua.layer")
local nn = require("klua.nn")
local ops = require("klua.ops")

local BaseZeroPadding = Layer:extend("BaseZeroPadding")
BaseZeroPadding.input_spec = {}   -- one tensor

local FORMS = {
  "an integer or {left, right}",
  "an integer, {h, w} or {{top, bottom}, {left, right}}",
  "an integer, {d, h, w} or {{front, back}, {top, bottom}, {left, right}}",
}

function BaseZeroPadding:__init(rank, padding, kw)
  padding, kw = nn.args(padding, kw, "padding")
  BaseZeroPadding.super.__init(self, kw)
  self.rank = rank
  local p = nn.tuple_pairs(padding == nil and 1 or padding, rank)
  if not p then
    self:raise("padding must be %s of non-negative integers. Received: padding=%s", FORMS[rank],
      type(padding) == "table" and Layer.shape_str(padding) or tostring(padding))
  end
  self.pads = p
  -- Keras's config form: (left, right) in 1-D, ((top, bottom), (left, right)) above.
  self.padding = rank == 1 and p[1] or p
  self.data_format = nn.data_format(kw.data_format)
  if not self.data_format then
    self:raise("data_format must be \"channels_last\" or \"channels_first\". Received: data_format=%s", tostring(kw.data_format))
  end
end

-- x channels-last, (batch, spatial..., channels).
function BaseZeroPadding:_pad(x)
  local p, s = self.pads, x:shape()
  if self.rank == 1 then
    local y = nn.zero_padding2d(ops.reshape(x, { s[1], 1, s[2], s[3] }), { { 0, 0 }, p[1] })
    return ops.reshape(y, { s[1], s[2] + p[1][1] + p[1][2], s[3] })
  elseif self.rank == 2 then
    return nn.zero_padding2d(x, p)
  end
  local h, w = s[3] + p[2][1] + p[2][2], s[4] + p[3][1] + p[3][2]
  local y = nn.zero_padding2d(ops.reshape(x, { s[1] * s[2], s[3], s[4], s[5] }), { p[2], p[3] })
  y = nn.zero_padding2d(ops.reshape(y, { s[1], s[2], 1, h * w * s[5] }), { p[1], { 0, 0 } })
  return ops.reshape(y, { s[1], s[2] + p[1][1] + p[1][2], h, w, s[5] })
end

function BaseZeroPadding:call(x)
  if x.nd ~= self.rank + 2 then
    self:raise("expected an input of rank %d, got shape %s", self.rank + 2, Layer.shape_str(x:shape()))
  end
  if self.data_format == "channels_first" then return nn.to_channels_first(self:_pad(nn.to_channels_last(x))) end
  return self:_pad(x)
end

function BaseZeroPadding:compute_output_shape(s)
  local out, first = { unpack(s) }, self.data_format == "channels_first" and 1 or 0
  for i = 1, self.rank do
    local d, p = s[i + 1 + first], self.pads[i]
    out[i + 1 + first] = (d == nil or d < 0) and -1 or d + p[1] + p[2]
  end
  return out
end

function BaseZeroPadding:get_config()
  local config = BaseZeroPadding.super.get_config(self)
  config.padding = self.padding
  config.data_format = self.data_format
  return config
end

return BaseZeroPadding
