-- globalaveragepooling1d.lua — GlobalAveragePooling1D: the mean over the steps of (batch, steps, channels). Masked steps (a (batch, steps) mask) are left out.
local BaseGlobalPooling = require("klua.layers.base_global_pooling")

local GlobalAveragePooling1D = BaseGlobalPooling:extend("GlobalAveragePooling1D")

--- GlobalAveragePooling1D{data_format="channels_last", keepdims=false, ...}: the mean over the steps of
-- (batch, steps, channels); masked steps are left out.
function GlobalAveragePooling1D:__init(kw)
  BaseGlobalPooling.__init(self, 1, "average", kw)
end

return GlobalAveragePooling1D
