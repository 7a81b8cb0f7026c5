-- averagepooling2d.lua — AveragePooling2D: the mean of each window; with padding "same" only real elements are averaged, over (batch, height, width, channels) as Keras (src/ops/pool.c).
local nn = require("klua.nn")
local BasePooling = require("klua.layers.base_pooling")

local AveragePooling2D = BasePooling:extend("AveragePooling2D")

--- AveragePooling2D{pool_size={2, 2}, strides=pool_size, padding="valid", data_format="channels_last", ...}:
-- the mean of each window of (batch, height, width, channels); with "same" padding only real pixels count.
function AveragePooling2D:__init(pool_size, kw)
  BasePooling.__init(self, 2, nn.average_pool, pool_size, kw)
end

return AveragePooling2D
