-- globalaveragepooling3d.lua — GlobalAveragePooling3D: the mean over the depth, height and width of (batch, depth, height, width, channels).
local BaseGlobalPooling = require("klua.layers.base_global_pooling")

local GlobalAveragePooling3D = BaseGlobalPooling:extend("GlobalAveragePooling3D")

--- GlobalAveragePooling3D{data_format="channels_last", keepdims=false, ...}: the mean over depth, height and width.
function GlobalAveragePooling3D:__init(kw)
  BaseGlobalPooling.__init(self, 3, "average", kw)
end

return GlobalAveragePooling3D
