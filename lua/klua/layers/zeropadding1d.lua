-- zeropadding1d.lua — ZeroPadding1D: zeros at both ends of (batch, steps,
-- channels); padding = n or {left, right}, data_format, as Keras
-- (base_zero_padding.lua).
local BaseZeroPadding = require("klua.layers.base_zero_padding")

local ZeroPadding1D = BaseZeroPadding:extend("ZeroPadding1D")

--- ZeroPadding1D{padding=1, data_format="channels_last", ...}: zeros at both ends of the steps; padding = n or {left, right}.
function ZeroPadding1D:__init(padding, kw)
  BaseZeroPadding.__init(self, 1, padding, kw)
end

return ZeroPadding1D
