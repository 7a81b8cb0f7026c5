-- conv1dtranspose.lua — Conv1DTranspose: the transposed 1-D convolution over
-- (batch, steps, channels), kernel (k, filters, in) as Keras; output_padding,
-- data_format (base_conv_transpose.lua).
local nn = require("klua.nn")
local BaseConvTranspose = require("klua.layers.base_conv_transpose")

local Conv1DTranspose = BaseConvTranspose:extend("Conv1DTranspose")

--- Conv1DTranspose{filters, kernel_size, strides=1, padding="valid", output_padding=nil, data_format="channels_last",
-- dilation_rate=1, activation=nil, use_bias=true, kernel_initializer="glorot_uniform", bias_initializer="zeros",
-- kernel_regularizer=nil, bias_regularizer=nil, kernel_constraint=nil, bias_constraint=nil, ...}:
-- the transposed 1-D convolution (kernel (k, filters, in)): the gradient of Conv1D, upsampling steps by strides.
function Conv1DTranspose:__init(filters, kernel_size, kw)
  filters, kernel_size, kw = nn.args2(filters, kernel_size, kw, "filters", "kernel_size")
  BaseConvTranspose.__init(self, 1, filters, kernel_size, kw)
end

return Conv1DTranspose
