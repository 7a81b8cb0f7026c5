-- conv3dtranspose.lua — Conv3DTranspose: the transposed 3-D convolution over
-- (batch, depth, height, width, channels), kernel (kd, kh, kw, filters, in) as Keras; output_padding,
-- data_format (base_conv_transpose.lua).
local nn = require("klua.nn")
local BaseConvTranspose = require("klua.layers.base_conv_transpose")

local Conv3DTranspose = BaseConvTranspose:extend("Conv3DTranspose")

--- Conv3DTranspose{filters, kernel_size, strides=1, padding="valid", output_padding=nil, data_format="channels_last",
-- dilation_rate=1, activation=nil, use_bias=true, kernel_initializer="glorot_uniform", bias_initializer="zeros",
-- kernel_regularizer=nil, bias_regularizer=nil, kernel_constraint=nil, bias_constraint=nil, ...}:
-- the transposed 3-D convolution (kernel (kd, kh, kw, filters, in)), upsampling by strides.
function Conv3DTranspose:__init(filters, kernel_size, kw)
  filters, kernel_size, kw = nn.args2(filters, kernel_size, kw, "filters", "kernel_size")
  BaseConvTranspose.__init(self, 3, filters, kernel_size, kw)
end

return Conv3DTranspose
