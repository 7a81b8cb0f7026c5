-- separableconv2d.lua — SeparableConv2D: a depthwise then a pointwise
-- convolution over (batch, height, width, channels), weights depthwise_kernel,
-- pointwise_kernel and bias as Keras (base_separable_conv.lua).
local nn = require("klua.nn")
local BaseSeparableConv = require("klua.layers.base_separable_conv")

local SeparableConv2D = BaseSeparableConv:extend("SeparableConv2D")

--- SeparableConv2D{filters, kernel_size, strides=1, padding="valid", data_format="channels_last", dilation_rate=1,
-- depth_multiplier=1, activation=nil, use_bias=true, depthwise_initializer="glorot_uniform",
-- pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=nil, pointwise_regularizer=nil,
-- bias_regularizer=nil, depthwise_constraint=nil, pointwise_constraint=nil, bias_constraint=nil, ...}:
-- a depthwise then a pointwise (1x1) convolution over (batch, height, width, channels).
function SeparableConv2D:__init(filters, kernel_size, kw)
  filters, kernel_size, kw = nn.args2(filters, kernel_size, kw, "filters", "kernel_size")
  BaseSeparableConv.__init(self, 2, filters, kernel_size, kw)
end

return SeparableConv2D
