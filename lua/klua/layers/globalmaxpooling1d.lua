-- globalmaxpooling1d.lua — GlobalMaxPooling1D: the maximum over the steps of (batch, steps, channels). Masked steps (a (batch, steps) mask) are left out (Keras 3 ignores the mask here).
local BaseGlobalPooling = require("klua.layers.base_global_pooling")

local GlobalMaxPooling1D = BaseGlobalPooling:extend("GlobalMaxPooling1D")

--- GlobalMaxPooling1D{data_format="channels_last", keepdims=false, ...}: the maximum over the steps of
-- (batch, steps, channels); masked steps are left out.
function GlobalMaxPooling1D:__init(kw)
  BaseGlobalPooling.__init(self, 1, "max", kw)
end

return GlobalMaxPooling1D
