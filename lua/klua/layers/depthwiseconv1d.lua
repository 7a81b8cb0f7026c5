-- depthwiseconv1d.lua — DepthwiseConv1D: each channel of (batch, steps, channels)
-- convolved with its own depth_multiplier filters; kernel (k, in, depth_multiplier),
-- output channel c*depth_multiplier + m, as Keras (base_depthwise_conv.lua).
local nn = require("klua.nn")
local BaseDepthwiseConv = require("klua.layers.base_depthwise_conv")

local DepthwiseConv1D = BaseDepthwiseConv:extend("DepthwiseConv1D")

--- DepthwiseConv1D{kernel_size, strides=1, padding="valid", depth_multiplier=1, data_format="channels_last",
-- dilation_rate=1, activation=nil, use_bias=true, depthwise_initializer="glorot_uniform", bias_initializer="zeros",
-- depthwise_regularizer=nil, bias_regularizer=nil, depthwise_constraint=nil, bias_constraint=nil, ...}:
-- each channel of (batch, steps, channels) convolved with its own depth_multiplier filters.
function DepthwiseConv1D:__init(kernel_size, kw)
  kernel_size, kw = nn.args(kernel_size, kw, "kernel_size")
  BaseDepthwiseConv.__init(self, 1, kernel_size, kw)
end

return DepthwiseConv1D
