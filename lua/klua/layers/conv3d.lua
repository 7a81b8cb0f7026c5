-- conv3d.lua — Conv3D: 3-D convolution over (batch, depth, height, width,
-- channels) with a (kd, kh, kw, in/groups, filters) kernel, as Keras; groups;
-- data_format. im2col + sgemm like Conv2D (src/ops/conv.c).
local nn = require("klua.nn")
local BaseConv = require("klua.layers.base_conv")

local Conv3D = BaseConv:extend("Conv3D")

--- Conv3D{filters, kernel_size, strides=1, padding="valid", data_format="channels_last", dilation_rate=1, groups=1,
-- activation=nil, use_bias=true, kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=nil,
-- bias_regularizer=nil, kernel_constraint=nil, bias_constraint=nil, ...}:
-- 3-D convolution over (batch, depth, height, width, channels) with a (kd, kh, kw, in/groups, filters) kernel.
function Conv3D:__init(filters, kernel_size, kw)
  filters, kernel_size, kw = nn.args2(filters, kernel_size, kw, "filters", "kernel_size")
  BaseConv.__init(self, 3, filters, kernel_size, kw)
end

return Conv3D
