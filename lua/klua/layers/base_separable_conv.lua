-- base_separable_conv.lua — BaseSeparableConv, the shared part of
-- SeparableConv1D and SeparableConv2D: a depthwise convolution (kernel
-- depthwise_kernel (k..., in, depth_multiplier)) then a pointwise one
-- (pointwise_kernel (1..., in*depth_multiplier, filters)) and the bias, with
-- Keras's weight names, so Keras weights load 1:1. Two fused C ops.
-- Not registered as a layer itself.
local Layer = require("klua.layer")
local nn = require("klua.nn")
local initializers = require("klua.initializers")
local regularizers = require("klua.regularizers")
local constraints = require("klua.constraints")
local BaseConv = require("klua.layers.base_conv")
local BaseDepthwiseConv = require("klua.layers.base_depthwise_conv")

local BaseSeparableConv = BaseConv:extend("BaseSeparableConv")

function BaseSeparableConv:__init(rank, filters, kernel_size, kw)
  Layer.__init(self, kw)
  BaseDepthwiseConv._init_depth_multiplier(self, kw)
  self:_init_common(rank, kw, false)
  self:_init_filters(rank, filters, kernel_size, kw)
  self:_refuse(kw, "groups", 1)
  self.groups = 1
  for _, part in ipairs { "depthwise", "pointwise" } do
    self[part .. "_initializer"] = initializers.get(kw[part .. "_initializer"] or "glorot_uniform")
    self[part .. "_regularizer"] = regularizers.get(kw[part .. "_regularizer"])
    self[part .. "_constraint"] = constraints.get(kw[part .. "_constraint"])
  end
  self.kernel_initializer, self.kernel_regularizer, self.kernel_constraint = nil, nil, nil
end

function BaseSeparableConv:build(input_shape)
  local c = self:_channels(input_shape)
  -- As Keras: the output size is checked before any weight exists.
  self:compute_output_shape(input_shape)
  local dshape, pshape = { unpack(self.kernel_size) }, {}
  dshape[#dshape + 1], dshape[#dshape + 2] = c, self.depth_multiplier
  for i = 1, self.rank do pshape[i] = 1 end
  pshape[self.rank + 1], pshape[self.rank + 2] = c * self.depth_multiplier, self.filters
  self.depthwise_kernel = self:add_weight{ shape = dshape, initializer = self.depthwise_initializer,
    name = "depthwise_kernel", regularizer = self.depthwise_regularizer, constraint = self.depthwise_constraint }
  self.pointwise_kernel = self:add_weight{ shape = pshape, initializer = self.pointwise_initializer,
    name = "pointwise_kernel", regularizer = self.pointwise_regularizer, constraint = self.pointwise_constraint }
  self:_make_bias(self.filters)
end

function BaseSeparableConv:_expected_channels() return tonumber(self.depthwise_kernel.dims[self.rank]) end

function BaseSeparableConv:_convolve(x)
  local y = nn.depthwise_conv(x, self.depthwise_kernel, { strides = self.strides, padding = self.padding,
    dilation_rate = self.dilation_rate })
  return nn.conv(y, self.pointwise_kernel, { bias = self.bias })
end

function BaseSeparableConv:get_config()
  local config = BaseSeparableConv.super.get_config(self)
  config.groups = nil
  config.depth_multiplier = self.depth_multiplier
  config.kernel_initializer, config.kernel_regularizer, config.kernel_constraint = nil, nil, nil
  for _, part in ipairs { "depthwise", "pointwise" } do
    config[part .. "_initializer"] = initializers.serialize(self[part .. "_initializer"])
    config[part .. "_regularizer"] = regularizers.serialize(self[part .. "_regularizer"])
    config[part .. "_constraint"] = constraints.serialize(self[part .. "_constraint"])
  end
  return config
end

return BaseSeparableConv
