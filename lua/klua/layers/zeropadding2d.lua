-- zeropadding2d.lua — ZeroPadding2D: zeros around (batch, height, width,
-- channels); padding = n, {h, w} or {{top, bottom}, {left, right}},
-- data_format, as Keras (base_zero_padding.lua).
local BaseZeroPadding = require("klua.layers.base_zero_padding")

local ZeroPadding2D = BaseZeroPadding:extend("ZeroPadding2D")

--- ZeroPadding2D{padding=1, data_format="channels_last", ...}: zeros around an image batch; padding = n, {h, w}
-- or {{top, bottom}, {left, right}}.
function ZeroPadding2D:__init(padding, kw)
  BaseZeroPadding.__init(self, 2, padding, kw)
end

return ZeroPadding2D
