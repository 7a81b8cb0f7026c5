-- base_conv.lua — BaseConv, the shared part of Conv1D, Conv2D, Conv2DTranspose
-- and DepthwiseConv2D: Keras's arguments and config, weight creation and the
-- output-shape arithmetic. The computation is one fused C op (klua.nn).
-- Not registered as a layer itself.
local core = require("klua.core")
local Layer = require("klua.layer")
local nn = require("klua.nn")
local activations = require("klua.activations")
local initializers = require("klua.initializers")
local regularizers = require("klua.regularizers")
local constraints = require("klua.constraints")

local BaseConv = Layer:extend("BaseConv")

-- A size argument as a list of `rank` positive integers, with Keras's message.
function BaseConv:_tuple(key, v, rank, allow_zero)
  local ok, r = pcall(nn.tuple, v, rank, key, allow_zero)
  if not ok then
    self:raise("%s must be an integer or a list of %d integers. Received: %s=%s", key, rank, key,
      type(v) == "table" and Layer.shape_str(v) or tostring(v))
  end
  return r
end

-- Options of every convolution, read from kw; `rank` is 1 or 2.
function BaseConv:_init_common(rank, kw)
  local cname = Layer.class_name(self)
  self.rank = rank
  self.strides = self:_tuple("strides", kw.strides or 1, rank)
  self.dilation_rate = self:_tuple("dilation_rate", kw.dilation_rate or 1, rank)
  local padding = kw.padding or "valid"
  if type(padding) == "string" then padding = padding:lower() end
  local allowed = { valid = true, same = true, causal = rank == 1 and cname == "Conv1D" }
  if not allowed[padding] then
    self:raise("padding must be %s. Received: padding=%s", allowed.causal and "\"valid\", \"same\" or \"causal\"" or "\"valid\" or \"same\"", tostring(kw.padding))
  end
  self.padding = padding
  if kw.data_format ~= nil and kw.data_format ~= "channels_last" then
    self:raise("only data_format=\"channels_last\" is supported. Received: data_format=%s", tostring(kw.data_format))
  end
  if kw.groups ~= nil and kw.groups ~= 1 then self:raise("groups > 1 is not supported. Received: groups=%s", tostring(kw.groups)) end
  self.activation = activations.get(kw.activation)
  self.use_bias = kw.use_bias ~= false
  self.bias_initializer = initializers.get(kw.bias_initializer or "zeros")
  self.bias_regularizer = regularizers.get(kw.bias_regularizer)
  self.bias_constraint = constraints.get(kw.bias_constraint)
end

-- Conv1D / Conv2D / Conv2DTranspose: filters, kernel_size and the kernel options.
function BaseConv:__init(rank, filters, kernel_size, kw)
  BaseConv.super.__init(self, kw)
  if type(filters) ~= "number" or filters < 1 or filters % 1 ~= 0 then
    self:raise("filters must be a positive integer. Received: filters=%s", tostring(filters))
  end
  self:_init_common(rank, kw)
  self.filters = filters
  if kernel_size == nil then self:raise("kernel_size is required") end
  self.kernel_size = self:_tuple("kernel_size", kernel_size, rank)
  self.kernel_initializer = initializers.get(kw.kernel_initializer or "glorot_uniform")
  self.kernel_regularizer = regularizers.get(kw.kernel_regularizer)
  self.kernel_constraint = constraints.get(kw.kernel_constraint)
end

-- The input's channel count, checked against the layer's rank.
function BaseConv:_channels(input_shape)
  if #input_shape ~= self.rank + 2 then
    self:raise("expected an input of rank %d (batch, %s, channels), got shape %s", self.rank + 2,
      self.rank == 1 and "steps" or "height, width", Layer.shape_str(input_shape))
  end
  local c = input_shape[#input_shape]
  if c == nil or c < 1 then self:raise("the channel dimension must be known, got shape %s", Layer.shape_str(input_shape)) end
  return c
end

-- kernel_shape: the full kernel shape (Keras layout); bias_size: its length.
function BaseConv:_make_weights(kernel_shape, bias_size)
  self.kernel = self:add_weight{ shape = kernel_shape, initializer = self.kernel_initializer, name = "kernel",
    regularizer = self.kernel_regularizer, constraint = self.kernel_constraint }
  if self.use_bias then
    self.bias = self:add_weight{ shape = { bias_size }, initializer = self.bias_initializer, name = "bias",
      regularizer = self.bias_regularizer, constraint = self.bias_constraint }
  end
end

function BaseConv:_check_input(x)
  if x.nd ~= self.rank + 2 then
    self:raise("expected an input of rank %d, got shape %s", self.rank + 2, Layer.shape_str(x:shape()))
  end
  local want = tonumber(self.kernel.dims[self.rank + (Layer.class_name(self) == "Conv2DTranspose" and 1 or 0)])
  local got = tonumber(x.dims[x.nd - 1])
  if want ~= got then self:raise("expected %d input channels (last axis), got input shape %s", want, Layer.shape_str(x:shape())) end
end

function BaseConv:_activate(y)
  local act = self.activation
  if act ~= activations.linear then y = act(y) end
  return y
end

-- Output length of one spatial axis (-1 stays unknown).
function BaseConv:_out_len(size, i)
  if size == nil or size < 0 then return -1 end
  local k, s, d = self.kernel_size[i], self.strides[i], self.dilation_rate[i]
  local _, _, out = nn.padding_amounts(size, k, s, d, self.padding, Layer.class_name(self))
  return out
end

function BaseConv:compute_output_shape(input_shape)
  local out = { input_shape[1] }
  for i = 1, self.rank do out[i + 1] = self:_out_len(input_shape[i + 1], i) end
  out[self.rank + 2] = self:_out_channels(input_shape)
  return out
end

function BaseConv:_out_channels() return self.filters end

function BaseConv:get_config()
  local config = BaseConv.super.get_config(self)
  config.filters = self.filters
  config.kernel_size = self.kernel_size
  config.strides = self.strides
  config.padding = self.padding
  config.data_format = "channels_last"
  config.dilation_rate = self.dilation_rate
  config.activation = activations.serialize(self.activation)
  config.use_bias = self.use_bias
  config.kernel_initializer = initializers.serialize(self.kernel_initializer)
  config.bias_initializer = initializers.serialize(self.bias_initializer)
  config.kernel_regularizer = regularizers.serialize(self.kernel_regularizer)
  config.bias_regularizer = regularizers.serialize(self.bias_regularizer)
  config.kernel_constraint = constraints.serialize(self.kernel_constraint)
  config.bias_constraint = constraints.serialize(self.bias_constraint)
  return config
end

return BaseConv
