-- conv2dtranspose.lua — Conv2DTranspose: the transposed 2-D convolution over
-- (batch, height, width, channels), kernel (kh, kw, filters, in) as Keras; output_padding,
-- data_format (base_conv_transpose.lua).
local nn = require("klua.nn")
local BaseConvTranspose = require("klua.layers.base_conv_transpose")

local Conv2DTranspose = BaseConvTranspose:extend("Conv2DTranspose")

--- Conv2DTranspose{filters, kernel_size, strides=1, padding="valid", output_padding=nil, data_format="channels_last",
-- dilation_rate=1, activation=nil, use_bias=true, kernel_initializer="glorot_uniform", bias_initializer="zeros",
-- kernel_regularizer=nil, bias_regularizer=nil, kernel_constraint=nil, bias_constraint=nil, ...}:
-- the transposed 2-D convolution (kernel (kh, kw, filters, in)), upsampling height and width by strides.
function Conv2DTranspose:__init(filters, kernel_size, kw)
  filters, kernel_size, kw = nn.args2(filters, kernel_size, kw, "filters", "kernel_size")
  BaseConvTranspose.__init(self, 2, filters, kernel_size, kw)
end

return Conv2DTranspose
