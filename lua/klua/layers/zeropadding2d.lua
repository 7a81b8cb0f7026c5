-- zeropadding2d.lua — ZeroPadding2D: zeros around the spatial axes of
-- (batch, height, width, channels); padding = n, {h, w} or {{top, bottom}, {left, right}},
-- as Keras; data_format (base_zero_padding.lua).
local BaseZeroPadding = require("klua.layers.base_zero_padding")

local ZeroPadding2D = BaseZeroPadding:extend("ZeroPadding2D")

--- ZeroPadding2D(padding=1, {data_format="channels_last"})
function ZeroPadding2D:__init(padding, kw)
  BaseZeroPadding.__init(self, 2, padding, kw)
end

return ZeroPadding2D
