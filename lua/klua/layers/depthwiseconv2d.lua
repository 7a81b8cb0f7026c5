-- depthwiseconv2d.lua — DepthwiseConv2D: each input channel convolved with its
-- own depth_multiplier filters; kernel (kh, kw, in, depth_multiplier), output
-- channel c*depth_multiplier + m, as Keras. Direct C loops (src/ops/conv.c).
local Layer = require("klua.layer")
local nn = require("klua.nn")
local initializers = require("klua.initializers")
local regularizers = require("klua.regularizers")
local constraints = require("klua.constraints")
local BaseConv = require("klua.layers.base_conv")

local DepthwiseConv2D = BaseConv:extend("DepthwiseConv2D")

--- DepthwiseConv2D(kernel_size, {strides=1, padding="valid", depth_multiplier=1,
-- dilation_rate=1, activation=nil, use_bias=true, depthwise_initializer="glorot_uniform", ...})
function DepthwiseConv2D:__init(kernel_size, kw)
  kernel_size, kw = nn.args(kernel_size, kw, "kernel_size")
  Layer.__init(self, kw)
  self:_init_common(2, kw)
  if kernel_size == nil then self:raise("kernel_size is required") end
  self.kernel_size = self:_tuple("kernel_size", kernel_size, 2)
  local dm = kw.depth_multiplier or 1
  if type(dm) ~= "number" or dm < 1 or dm % 1 ~= 0 then
    self:raise("depth_multiplier must be a positive integer. Received: depth_multiplier=%s", tostring(dm))
  end
  self.depth_multiplier = dm
  self.kernel_initializer = initializers.get(kw.depthwise_initializer or "glorot_uniform")
  self.kernel_regularizer = regularizers.get(kw.depthwise_regularizer)
  self.kernel_constraint = constraints.get(kw.depthwise_constraint)
end

function DepthwiseConv2D:build(input_shape)
  local c = self:_channels(input_shape)
  self:_make_weights({ self.kernel_size[1], self.kernel_size[2], c, self.depth_multiplier }, c * self.depth_multiplier)
end

function DepthwiseConv2D:call(x)
  self:_check_input(x)
  return self:_activate(nn.depthwise_conv(x, self.kernel, { strides = self.strides, padding = self.padding,
    dilation_rate = self.dilation_rate, bias = self.bias }))
end

function DepthwiseConv2D:_out_channels(input_shape)
  local c = input_shape[#input_shape]
  return c and c > 0 and c * self.depth_multiplier or -1
end

function DepthwiseConv2D:get_config()
  local config = DepthwiseConv2D.super.get_config(self)
  config.filters = nil
  config.depth_multiplier = self.depth_multiplier
  config.depthwise_initializer = config.kernel_initializer
  config.depthwise_regularizer = config.kernel_regularizer
  config.depthwise_constraint = config.kernel_constraint
  config.kernel_initializer, config.kernel_regularizer, config.kernel_constraint = nil, nil, nil
  return config
end

return DepthwiseConv2D
