-- maxpooling3d.lua — MaxPooling3D: the maximum of each window; the gradient goes to the first maximum, over (batch, depth, height, width, channels) as Keras (src/ops/pool.c).
local nn = require("klua.nn")
local BasePooling = require("klua.layers.base_pooling")

local MaxPooling3D = BasePooling:extend("MaxPooling3D")

--- MaxPooling3D{pool_size={2, 2, 2}, strides=pool_size, padding="valid", data_format="channels_last", ...}:
-- the maximum of each window of (batch, depth, height, width, channels).
function MaxPooling3D:__init(pool_size, kw)
  BasePooling.__init(self, 3, nn.max_pool, pool_size, kw)
end

return MaxPooling3D
