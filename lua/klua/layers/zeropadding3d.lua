-- zeropadding3d.lua — ZeroPadding3D: zeros around the spatial axes of
-- (batch, depth, height, width, channels); padding = n, {d, h, w} or
-- {{front, back}, {top, bottom}, {left, right}},
-- as Keras; data_format (base_zero_padding.lua).
local BaseZeroPadding = require("klua.layers.base_zero_padding")

local ZeroPadding3D = BaseZeroPadding:extend("ZeroPadding3D")

--- ZeroPadding3D(padding=1, {data_format="channels_last"})
function ZeroPadding3D:__init(padding, kw)
  BaseZeroPadding.__init(self, 3, padding, kw)
end

return ZeroPadding3D
