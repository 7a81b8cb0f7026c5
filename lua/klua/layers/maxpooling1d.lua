-- maxpooling1d.lua — MaxPooling1D: the maximum of each window; the gradient goes to the first maximum, over (batch, steps, channels) as Keras (src/ops/pool.c).
local nn = require("klua.nn")
local BasePooling = require("klua.layers.base_pooling")

local MaxPooling1D = BasePooling:extend("MaxPooling1D")

--- MaxPooling1D{pool_size=2, strides=pool_size, padding="valid", data_format="channels_last", ...}:
-- the maximum of each window of (batch, steps, channels).
function MaxPooling1D:__init(pool_size, kw)
  BasePooling.__init(self, 1, nn.max_pool, pool_size, kw)
end

return MaxPooling1D
