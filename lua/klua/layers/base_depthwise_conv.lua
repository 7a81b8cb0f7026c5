-- base_depthwise_conv.lua — BaseDepthwiseConv, the shared part of
-- DepthwiseConv1D and DepthwiseConv2D: each input channel convolved with its
-- own depth_multiplier filters; kernel (k..., in, depth_multiplier), output
-- channel c*depth_multiplier + m, as Keras. Direct C loops (src/ops/conv.c;
-- 1-D on a (batch, 1, steps, channels) view). Not registered as a layer itself.
local Layer = require("klua.layer")
local nn = require("klua.nn")
local initializers = require("klua.initializers")
local regularizers = require("klua.regularizers")
local constraints = require("klua.constraints")
local BaseConv = require("klua.layers.base_conv")

local BaseDepthwiseConv = BaseConv:extend("BaseDepthwiseConv")

-- depth_multiplier, checked with Keras's wording.
function BaseDepthwiseConv:_init_depth_multiplier(kw)
  local dm = kw.depth_multiplier or 1
  if type(dm) ~= "number" or dm < 1 or dm % 1 ~= 0 then
    self:raise("depth_multiplier must be a positive integer. Received: depth_multiplier=%s", tostring(dm))
  end
  self.depth_multiplier = dm
end

function BaseDepthwiseConv:__init(rank, kernel_size, kw)
  Layer.__init(self, kw)
  self:_init_common(rank, kw, false)
  self:_refuse(kw, "groups", 1)
  self.groups = 1
  if kernel_size == nil then self:raise("kernel_size is required") end
  self.kernel_size = self:_tuple("kernel_size", kernel_size, rank)
  self:_init_depth_multiplier(kw)
  self.kernel_initializer = initializers.get(kw.depthwise_initializer or "glorot_uniform")
  self.kernel_regularizer = regularizers.get(kw.depthwise_regularizer)
  self.kernel_constraint = constraints.get(kw.depthwise_constraint)
end

function BaseDepthwiseConv:build(input_shape)
  local c = self:_channels(input_shape)
  self:compute_output_shape(input_shape)   -- as Keras: the output size is checked first
  local shape = { unpack(self.kernel_size) }
  shape[#shape + 1] = c
  shape[#shape + 1] = self.depth_multiplier
  self:_make_weights(shape, c * self.depth_multiplier)
end

function BaseDepthwiseConv:_expected_channels() return tonumber(self.kernel.dims[self.rank]) end

function BaseDepthwiseConv:_convolve(x)
  return nn.depthwise_conv(x, self.kernel, { strides = self.strides, padding = self.padding,
    dilation_rate = self.dilation_rate, bias = self.bias })
end

function BaseDepthwiseConv:_out_channels(input_shape)
  local c = input_shape[self:_channel_axis(#input_shape)]
  return c and c > 0 and c * self.depth_multiplier or -1
end

function BaseDepthwiseConv:get_config()
  local config = BaseDepthwiseConv.super.get_config(self)
  config.filters, config.groups = nil, nil
  config.depth_multiplier = self.depth_multiplier
  config.depthwise_initializer = config.kernel_initializer
  config.depthwise_regularizer = config.kernel_regularizer
  config.depthwise_constraint = config.kernel_constraint
  config.kernel_initializer, config.kernel_regularizer, config.kernel_constraint = nil, nil, nil
  return config
end

return BaseDepthwiseConv
