-- conv2dtranspose.lua — Conv2DTranspose: the transposed 2-D convolution
-- (the input-gradient of Conv2D), kernel (kh, kw, filters, in) as Keras, output
-- size by Keras's deconv_output_length (output_padding optional).
local nn = require("klua.nn")
local BaseConv = require("klua.layers.base_conv")

local Conv2DTranspose = BaseConv:extend("Conv2DTranspose")

--- Conv2DTranspose(filters, kernel_size, {strides=1, padding="valid", output_padding=nil, dilation_rate=1, ...})
function Conv2DTranspose:__init(filters, kernel_size, kw)
  filters, kernel_size, kw = nn.args2(filters, kernel_size, kw, "filters", "kernel_size")
  BaseConv.__init(self, 2, filters, kernel_size, kw)
  if kw.output_padding ~= nil then
    local ok, op = pcall(nn.tuple, kw.output_padding, 2, "output_padding", true)
    if not ok then self:raise("output_padding must be an integer or a list of 2 integers. Received: output_padding=%s", tostring(kw.output_padding)) end
    for i = 1, 2 do
      if op[i] >= self.strides[i] then
        self:raise("output_padding must be smaller than the strides. Received: output_padding=(%d,%d), strides=(%d,%d)",
          op[1], op[2], self.strides[1], self.strides[2])
      end
    end
    self.output_padding = op
  end
end

function Conv2DTranspose:build(input_shape)
  local c = self:_channels(input_shape)
  self:_make_weights({ self.kernel_size[1], self.kernel_size[2], self.filters, c }, self.filters)
end

function Conv2DTranspose:call(x)
  self:_check_input(x)
  return self:_activate(nn.conv_transpose(x, self.kernel, { strides = self.strides, padding = self.padding,
    output_padding = self.output_padding, dilation_rate = self.dilation_rate, bias = self.bias }))
end

function Conv2DTranspose:_out_len(size, i)
  if size == nil or size < 0 then return -1 end
  return nn.conv_transpose_length(size, self.kernel_size[i], self.padding, self.output_padding and self.output_padding[i],
    self.strides[i], self.dilation_rate[i])
end

function Conv2DTranspose:get_config()
  local config = Conv2DTranspose.super.get_config(self)
  config.output_padding = self.output_padding
  return config
end

return Conv2DTranspose
