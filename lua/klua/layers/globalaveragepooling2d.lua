-- globalaveragepooling2d.lua — GlobalAveragePooling2D: the mean over the height and width of (batch, height, width, channels).
local BaseGlobalPooling = require("klua.layers.base_global_pooling")

local GlobalAveragePooling2D = BaseGlobalPooling:extend("GlobalAveragePooling2D")

--- GlobalAveragePooling2D{data_format="channels_last", keepdims=false, ...}: the mean over height and width.
function GlobalAveragePooling2D:__init(kw)
  BaseGlobalPooling.__init(self, 2, "average", kw)
end

return GlobalAveragePooling2D
