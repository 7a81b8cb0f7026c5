-- zeropadding3d.lua — ZeroPadding3D: zeros around (batch, depth, height,
-- width, channels); padding = n, {d, h, w} or
-- {{front, back}, {top, bottom}, {left, right}}, data_format, as Keras
-- (base_zero_padding.lua).
local BaseZeroPadding = require("klua.layers.base_zero_padding")

local ZeroPadding3D = BaseZeroPadding:extend("ZeroPadding3D")

--- ZeroPadding3D{padding=1, data_format="channels_last", ...}: zeros around a volume batch; padding = n, {d, h, w}
-- or {{d1, d2}, {h1, h2}, {w1, w2}}.
function ZeroPadding3D:__init(padding, kw)
  BaseZeroPadding.__init(self, 3, padding, kw)
end

return ZeroPadding3D
