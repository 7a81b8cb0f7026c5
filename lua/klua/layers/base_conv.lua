-- base_conv.lua — BaseConv, the shared part of every convolution layer
-- (Conv1D/2D/3D and, through their own bases, the transposed, depthwise and
-- separable ones): Keras's arguments and config, data_format, weight creation
-- and the output-shape arithmetic. Conv1D/2D/3D themselves are this class with
-- a rank: kernel (k..., in/groups, filters), one fused C op (klua.nn). The
-- kernels are channels-last; a "channels_first" layer transposes its input to
-- that and its output back. Not registered as a layer itself.
local Layer = require("klua.layer")
local nn = require("klua.nn")
local activations = require("klua.activations")
local initializers = require("klua.initializers")
local regularizers = require("klua.regularizers")
local constraints = require("klua.constraints")

local BaseConv = Layer:extend("BaseConv")
BaseConv.input_spec = {}   -- one tensor

local SPATIAL = { "steps", "height, width", "depth, height, width" }

-- A size argument as a list of `rank` positive integers, with Keras's message.
function BaseConv:_tuple(key, v, rank, allow_zero)
  local ok, r = pcall(nn.tuple, v, rank, key, allow_zero)
  if not ok then
    self:raise("%s must be an integer or a list of %d integers. Received: %s=%s", key, rank, key,
      type(v) == "table" and Layer.shape_str(v) or tostring(v))
  end
  return r
end

-- Options of every convolution, read from kw; `rank` is 1, 2 or 3. `causal`:
-- whether padding "causal" is allowed (Conv1D only, as Keras).
function BaseConv:_init_common(rank, kw, causal)
  self.rank = rank
  self.strides = self:_tuple("strides", kw.strides or 1, rank)
  self.dilation_rate = self:_tuple("dilation_rate", kw.dilation_rate or 1, rank)
  local padding = kw.padding or "valid"
  if type(padding) == "string" then padding = padding:lower() end
  local allowed = { valid = true, same = true, causal = causal or false }
  if not allowed[padding] then
    self:raise("padding must be %s. Received: padding=%s", causal and "\"valid\", \"same\" or \"causal\"" or "\"valid\" or \"same\"", tostring(kw.padding))
  end
  self.padding = padding
  self.data_format = nn.data_format(kw.data_format)
  if not self.data_format then
    self:raise("data_format must be \"channels_last\" or \"channels_first\". Received: data_format=%s", tostring(kw.data_format))
  end
  self.activation = activations.get(kw.activation)
  self.use_bias = kw.use_bias ~= false
  self.bias_initializer = initializers.get(kw.bias_initializer or "zeros")
  self.bias_regularizer = regularizers.get(kw.bias_regularizer)
  self.bias_constraint = constraints.get(kw.bias_constraint)
end

-- Keras refuses strides > 1 together with dilation_rate > 1 in Conv and ConvTranspose.
function BaseConv:_check_strides_with_dilation()
  local function max(t) return math.max(unpack(t)) end
  if max(self.strides) > 1 and max(self.dilation_rate) > 1 then
    self:raise("strides > 1 is not supported together with dilation_rate > 1. Received: strides=%s and dilation_rate=%s",
      Layer.shape_str(self.strides), Layer.shape_str(self.dilation_rate))
  end
end

-- Keras refuses arguments its class does not take; from_config passes a
-- whole config, so only a value other than the default counts.
function BaseConv:_refuse(kw, key, default)
  if kw[key] ~= nil and kw[key] ~= default then
    self:raise("%s is not an argument of %s. Received: %s=%s", key, Layer.class_name(self), key, tostring(kw[key]))
  end
end

-- filters and kernel_size with the kernel's initializer, regularizer and constraint.
function BaseConv:_init_filters(rank, filters, kernel_size, kw)
  if type(filters) ~= "number" or filters < 1 or filters % 1 ~= 0 then
    self:raise("filters must be a positive integer. Received: filters=%s", tostring(filters))
  end
  self.filters = filters
  if kernel_size == nil then self:raise("kernel_size is required") end
  self.kernel_size = self:_tuple("kernel_size", kernel_size, rank)
  self.kernel_initializer = initializers.get(kw.kernel_initializer or "glorot_uniform")
  self.kernel_regularizer = regularizers.get(kw.kernel_regularizer)
  self.kernel_constraint = constraints.get(kw.kernel_constraint)
end

-- Conv1D / Conv2D / Conv3D: BaseConv.__init(self, rank, filters, kernel_size, kw).
function BaseConv:__init(rank, filters, kernel_size, kw)
  BaseConv.super.__init(self, kw)
  self:_init_common(rank, kw, rank == 1)
  self:_init_filters(rank, filters, kernel_size, kw)
  self:_check_strides_with_dilation()
  local groups = kw.groups or 1
  if type(groups) ~= "number" or groups < 1 or groups % 1 ~= 0 then
    self:raise("groups must be a positive integer. Received: groups=%s", tostring(groups))
  end
  if filters % groups ~= 0 then
    self:raise("filters must be divisible by groups. Received: groups=%d, filters=%d", groups, filters)
  end
  self.groups = groups
end

-- The channel axis of an input of this layer (1-based).
function BaseConv:_channel_axis(nd)
  return self.data_format == "channels_first" and 2 or nd
end

-- The spatial dimension i (1..rank) of a shape.
function BaseConv:_spatial(shape, i)
  return shape[self.data_format == "channels_first" and i + 2 or i + 1]
end

-- The input's channel count, checked against the layer's rank.
function BaseConv:_channels(input_shape)
  if #input_shape ~= self.rank + 2 then
    local layout = self.data_format == "channels_first" and "(batch, channels, %s)" or "(batch, %s, channels)"
    self:raise("expected an input of rank %d %s, got shape %s", self.rank + 2, layout:format(SPATIAL[self.rank]),
      Layer.shape_str(input_shape))
  end
  local c = input_shape[self:_channel_axis(#input_shape)]
  if c == nil or c < 1 then self:raise("the channel dimension must be known, got shape %s", Layer.shape_str(input_shape)) end
  return c
end

-- The kernel layout of this class for `c` input channels: Conv's (k..., c/groups, filters).
function BaseConv:_kernel_shape(c)
  if c % self.groups ~= 0 then
    self:raise("the number of input channels must be divisible by groups. Received: groups=%d, but the input has %d channels",
      self.groups, c)
  end
  local shape = { unpack(self.kernel_size) }
  shape[#shape + 1] = c / self.groups
  shape[#shape + 1] = self.filters
  return shape
end

function BaseConv:build(input_shape)
  local c = self:_channels(input_shape)
  self:_make_weights(self:_kernel_shape(c), self.filters)
end

-- The input channels the built kernel expects.
function BaseConv:_expected_channels()
  return tonumber(self.kernel.dims[self.rank]) * self.groups
end

-- kernel_shape: the full kernel shape (Keras layout); bias_size: its length.
function BaseConv:_make_weights(kernel_shape, bias_size)
  self.kernel = self:add_weight{ shape = kernel_shape, initializer = self.kernel_initializer, name = "kernel",
    regularizer = self.kernel_regularizer, constraint = self.kernel_constraint }
  self:_make_bias(bias_size)
end

function BaseConv:_make_bias(size)
  if self.use_bias then
    self.bias = self:add_weight{ shape = { size }, initializer = self.bias_initializer, name = "bias",
      regularizer = self.bias_regularizer, constraint = self.bias_constraint }
  end
end

function BaseConv:_check_input(x)
  if x.nd ~= self.rank + 2 then
    self:raise("expected an input of rank %d, got shape %s", self.rank + 2, Layer.shape_str(x:shape()))
  end
  local want, axis = self:_expected_channels(), self:_channel_axis(x.nd)
  local got = tonumber(x.dims[axis - 1])
  if want ~= got then
    self:raise("expected %d input channels (%s), got input shape %s", want,
      axis == 2 and "axis 2, channels_first" or "last axis", Layer.shape_str(x:shape()))
  end
end

-- The convolution itself on a channels-last x; subclasses replace it.
function BaseConv:_convolve(x)
  return nn.conv(x, self.kernel, { strides = self.strides, padding = self.padding,
    dilation_rate = self.dilation_rate, groups = self.groups, bias = self.bias })
end

-- Activations the convolution op applies to its output itself (src/ops/conv.c).
local fused = { [activations.relu] = "relu", [activations.sigmoid] = "sigmoid" }

function BaseConv:call(x)
  self:_check_input(x)
  local first = self.data_format == "channels_first"
  if first then x = nn.to_channels_last(x) end
  local y
  local act = fused[self.activation]
  if act and self._convolve == BaseConv._convolve then
    -- one pass over the output: the op applies relu/sigmoid while each block is in cache
    y = nn.conv(x, self.kernel, { strides = self.strides, padding = self.padding,
      dilation_rate = self.dilation_rate, groups = self.groups, bias = self.bias, activation = act })
  else
    y = self:_convolve(x)
    if self.activation ~= activations.linear then y = self.activation(y) end
  end
  return first and nn.to_channels_first(y) or y
end

-- Output length of spatial axis i (-1 stays unknown).
function BaseConv:_out_len(size, i)
  if size == nil or size < 0 then return -1 end
  local k, s, d = self.kernel_size[i], self.strides[i], self.dilation_rate[i]
  local _, _, out = nn.padding_amounts(size, k, s, d, self.padding, Layer.class_name(self))
  return out
end

function BaseConv:compute_output_shape(input_shape)
  local spatial = {}
  for i = 1, self.rank do
    spatial[i] = self:_out_len(self:_spatial(input_shape, i), i)
    if spatial[i] ~= -1 and spatial[i] < 1 then
      self:raise("computed output size would be zero or negative. Received: input shape %s, kernel_size %s, dilation_rate %s, strides %s, padding %s",
        Layer.shape_str(input_shape), Layer.shape_str(self.kernel_size), Layer.shape_str(self.dilation_rate),
        Layer.shape_str(self.strides), self.padding)
    end
  end
  local c = self:_out_channels(input_shape)
  if self.data_format == "channels_first" then return { input_shape[1], c, unpack(spatial) } end
  local out = { input_shape[1], unpack(spatial) }
  out[#out + 1] = c
  return out
end

function BaseConv:_out_channels() return self.filters end

-- The keys every convolution shares; subclasses add and remove theirs.
function BaseConv:get_config()
  local config = BaseConv.super.get_config(self)
  config.filters = self.filters
  config.kernel_size = self.kernel_size
  config.strides = self.strides
  config.padding = self.padding
  config.data_format = self.data_format
  config.dilation_rate = self.dilation_rate
  config.groups = self.groups
  config.activation = activations.serialize(self.activation)
  config.use_bias = self.use_bias
  Layer._weight_options_config(self, config, { "kernel", "bias" })
  return config
end

return BaseConv
