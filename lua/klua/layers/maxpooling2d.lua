-- maxpooling2d.lua — MaxPooling2D: the maximum of each window; the gradient goes to the first maximum, over (batch, height, width, channels) as Keras (src/ops/pool.c).
local nn = require("klua.nn")
local BasePooling = require("klua.layers.base_pooling")

local MaxPooling2D = BasePooling:extend("MaxPooling2D")

--- MaxPooling2D{pool_size={2, 2}, strides=pool_size, padding="valid", data_format="channels_last", ...}:
-- the maximum of each window of (batch, height, width, channels).
function MaxPooling2D:__init(pool_size, kw)
  BasePooling.__init(self, 2, nn.max_pool, pool_size, kw)
end

return MaxPooling2D
