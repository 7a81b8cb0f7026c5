-- conv2d.lua — Conv2D: 2-D convolution over (batch, height, width, channels)
-- with a (kh, kw, in/groups, filters) kernel, as Keras; groups; data_format.
-- One fused C op: im2col + sgemm with the bias folded in (src/ops/conv.c).
local nn = require("klua.nn")
local BaseConv = require("klua.layers.base_conv")

local Conv2D = BaseConv:extend("Conv2D")

--- Conv2D{filters, kernel_size, strides=1, padding="valid", data_format="channels_last", dilation_rate=1, groups=1,
-- activation=nil, use_bias=true, kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=nil,
-- bias_regularizer=nil, kernel_constraint=nil, bias_constraint=nil, ...}:
-- 2-D convolution over (batch, height, width, channels) with a (kh, kw, in/groups, filters) kernel.
function Conv2D:__init(filters, kernel_size, kw)
  filters, kernel_size, kw = nn.args2(filters, kernel_size, kw, "filters", "kernel_size")
  BaseConv.__init(self, 2, filters, kernel_size, kw)
end

return Conv2D
