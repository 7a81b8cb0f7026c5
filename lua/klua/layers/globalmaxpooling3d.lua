-- globalmaxpooling3d.lua — GlobalMaxPooling3D: the maximum over the depth, height and width of (batch, depth, height, width, channels).
local BaseGlobalPooling = require("klua.layers.base_global_pooling")

local GlobalMaxPooling3D = BaseGlobalPooling:extend("GlobalMaxPooling3D")

--- GlobalMaxPooling3D{data_format="channels_last", keepdims=false, ...}: the maximum over depth, height and width.
function GlobalMaxPooling3D:__init(kw)
  BaseGlobalPooling.__init(self, 3, "max", kw)
end

return GlobalMaxPooling3D
