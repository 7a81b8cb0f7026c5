-- base_conv_transpose.lua — BaseConvTranspose, the shared part of
-- Conv1DTranspose, Conv2DTranspose and Conv3DTranspose: the transposed
-- convolution (the input-gradient of a convolution), kernel
-- (k..., filters, in) as Keras, output size by Keras's deconv_output_length
-- (output_padding optional). Not registered as a layer itself.
local Layer = require("klua.layer")
local nn = require("klua.nn")
local BaseConv = require("klua.layers.base_conv")

local BaseConvTranspose = BaseConv:extend("BaseConvTranspose")

function BaseConvTranspose:__init(rank, filters, kernel_size, kw)
  Layer.__init(self, kw)
  self:_init_common(rank, kw, false)
  self:_init_filters(rank, filters, kernel_size, kw)
  self:_refuse(kw, "groups", 1)
  self.groups = 1
  if kw.output_padding ~= nil then
    local op = self:_tuple("output_padding", kw.output_padding, rank, true)
    for i = 1, rank do
      if op[i] >= self.strides[i] then
        self:raise("output_padding must be smaller than the strides. Received: output_padding=%s, strides=%s",
          Layer.shape_str(op), Layer.shape_str(self.strides))
      end
    end
    self.output_padding = op
  end
  self:_check_strides_with_dilation()
end

function BaseConvTranspose:_kernel_shape(c)
  local shape = { unpack(self.kernel_size) }
  shape[#shape + 1] = self.filters
  shape[#shape + 1] = c
  return shape
end

function BaseConvTranspose:_expected_channels() return tonumber(self.kernel.dims[self.rank + 1]) end

function BaseConvTranspose:_convolve(x)
  return nn.conv_transpose(x, self.kernel, { strides = self.strides, padding = self.padding,
    output_padding = self.output_padding, dilation_rate = self.dilation_rate, bias = self.bias })
end

function BaseConvTranspose:_out_len(size, i)
  if size == nil or size < 0 then return -1 end
  return nn.conv_transpose_length(size, self.kernel_size[i], self.padding, self.output_padding and self.output_padding[i],
    self.strides[i], self.dilation_rate[i])
end

function BaseConvTranspose:get_config()
  local config = BaseConvTranspose.super.get_config(self)
  config.groups = nil
  config.output_padding = self.output_padding
  return config
end

return BaseConvTranspose
