-- conv2d.lua — Conv2D: 2-D convolution over (batch, height, width, channels)
-- with a (kh, kw, in, filters) kernel, as Keras. One fused C op: im2col +
-- sgemm with the bias folded in (src/ops/conv.c).
local nn = require("klua.nn")
local BaseConv = require("klua.layers.base_conv")

local Conv2D = BaseConv:extend("Conv2D")

--- Conv2D(filters, kernel_size, {strides=1, padding="valid", dilation_rate=1,
-- activation=nil, use_bias=true, kernel_initializer="glorot_uniform", ...})
function Conv2D:__init(filters, kernel_size, kw)
  filters, kernel_size, kw = nn.args2(filters, kernel_size, kw, "filters", "kernel_size")
  BaseConv.__init(self, 2, filters, kernel_size, kw)
end

function Conv2D:build(input_shape)
  local c = self:_channels(input_shape)
  self:_make_weights({ self.kernel_size[1], self.kernel_size[2], c, self.filters }, self.filters)
end

function Conv2D:call(x)
  self:_check_input(x)
  return self:_activate(nn.conv(x, self.kernel, { strides = self.strides, padding = self.padding,
    dilation_rate = self.dilation_rate, bias = self.bias }))
end

return Conv2D
