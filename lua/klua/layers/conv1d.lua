-- conv1d.lua — Conv1D: 1-D convolution over (batch, steps, channels) with a
-- (k, in, filters) kernel, as Keras; padding "valid", "same" or "causal"
-- (left-padded so that output t sees inputs <= t). Runs the conv2d kernel on
-- a (batch, 1, steps, channels) view.
local nn = require("klua.nn")
local BaseConv = require("klua.layers.base_conv")

local Conv1D = BaseConv:extend("Conv1D")

--- Conv1D(filters, kernel_size, {strides=1, padding="valid", dilation_rate=1, activation=nil, ...})
function Conv1D:__init(filters, kernel_size, kw)
  filters, kernel_size, kw = nn.args2(filters, kernel_size, kw, "filters", "kernel_size")
  BaseConv.__init(self, 1, filters, kernel_size, kw)
end

function Conv1D:build(input_shape)
  local c = self:_channels(input_shape)
  self:_make_weights({ self.kernel_size[1], c, self.filters }, self.filters)
end

function Conv1D:call(x)
  self:_check_input(x)
  return self:_activate(nn.conv(x, self.kernel, { strides = self.strides, padding = self.padding,
    dilation_rate = self.dilation_rate, bias = self.bias }))
end

return Conv1D
