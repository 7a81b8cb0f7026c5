-- averagepooling3d.lua — AveragePooling3D: the mean of each window; with padding "same" only real elements are averaged, over (batch, depth, height, width, channels) as Keras (src/ops/pool.c).
local nn = require("klua.nn")
local BasePooling = require("klua.layers.base_pooling")

local AveragePooling3D = BasePooling:extend("AveragePooling3D")

--- AveragePooling3D{pool_size={2, 2, 2}, strides=pool_size, padding="valid", data_format="channels_last", ...}:
-- the mean of each window of (batch, depth, height, width, channels).
function AveragePooling3D:__init(pool_size, kw)
  BasePooling.__init(self, 3, nn.average_pool, pool_size, kw)
end

return AveragePooling3D
