-- averagepooling1d.lua — AveragePooling1D: the mean of each window; with padding "same" only real elements are averaged, over (batch, steps, channels) as Keras (src/ops/pool.c).
local nn = require("klua.nn")
local BasePooling = require("klua.layers.base_pooling")

local AveragePooling1D = BasePooling:extend("AveragePooling1D")

--- AveragePooling1D{pool_size=2, strides=pool_size, padding="valid", data_format="channels_last", ...}:
-- the mean of each window of (batch, steps, channels); with "same" padding only real steps count.
function AveragePooling1D:__init(pool_size, kw)
  BasePooling.__init(self, 1, nn.average_pool, pool_size, kw)
end

return AveragePooling1D
