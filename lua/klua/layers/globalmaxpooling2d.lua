-- globalmaxpooling2d.lua — GlobalMaxPooling2D: the maximum over the height and width of (batch, height, width, channels).
local BaseGlobalPooling = require("klua.layers.base_global_pooling")

local GlobalMaxPooling2D = BaseGlobalPooling:extend("GlobalMaxPooling2D")

--- GlobalMaxPooling2D{data_format="channels_last", keepdims=false, ...}: the maximum over height and width.
function GlobalMaxPooling2D:__init(kw)
  BaseGlobalPooling.__init(self, 2, "max", kw)
end

return GlobalMaxPooling2D
