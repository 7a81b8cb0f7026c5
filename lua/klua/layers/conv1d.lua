-- conv1d.lua — Conv1D: 1-D convolution over (batch, steps, channels) with a
-- (k, in/groups, filters) kernel, as Keras; padding "valid", "same" or
-- "causal" (left-padded so that output t sees inputs <= t); groups;
-- data_format. Runs the conv2d kernel on a (batch, 1, steps, channels) view.
local nn = require("klua.nn")
local BaseConv = require("klua.layers.base_conv")

local Conv1D = BaseConv:extend("Conv1D")

--- Conv1D{filters, kernel_size, strides=1, padding="valid", data_format="channels_last", dilation_rate=1, groups=1,
-- activation=nil, use_bias=true, kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=nil,
-- bias_regularizer=nil, kernel_constraint=nil, bias_constraint=nil, ...}:
-- 1-D convolution over (batch, steps, channels) with a (k, in/groups, filters) kernel; padding "valid", "same" or "causal".
function Conv1D:__init(filters, kernel_size, kw)
  filters, kernel_size, kw = nn.args2(filters, kernel_size, kw, "filters", "kernel_size")
  BaseConv.__init(self, 1, filters, kernel_size, kw)
end

return Conv1D
