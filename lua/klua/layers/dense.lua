-- dense.lua — Dense: activation(inputs · kernel + bias) on the last axis.
-- Inputs of rank > 2 are multiplied on their last axis, as in Keras.
local core = require("klua.core")
local Layer = require("klua.layer")
local activations = require("klua.activations")
local initializers = require("klua.initializers")
local regularizers = require("klua.regularizers")
local constraints = require("klua.constraints")

local Dense = Layer:extend("Dense")
Dense.input_spec = { min_ndim = 2 }   -- one tensor (Keras's input_spec)

--- Dense{units, activation=nil, use_bias=true, kernel_initializer="glorot_uniform", bias_initializer="zeros",
-- kernel_regularizer=nil, bias_regularizer=nil, kernel_constraint=nil, bias_constraint=nil, ...}:
-- activation(inputs · kernel + bias) on the last axis; kernel (in, units), bias (units).
function Dense:__init(units, kw)
  units, kw = Layer.args(units, kw, "units")
  Layer.check_positive_int("Dense", "units", units)
  Dense.super.__init(self, kw)
  self.units = units
  self.activation = activations.get(kw.activation)
  self.use_bias = kw.use_bias ~= false
  self.kernel_initializer = initializers.get(kw.kernel_initializer or "glorot_uniform")
  self.bias_initializer = initializers.get(kw.bias_initializer or "zeros")
  self.kernel_regularizer = regularizers.get(kw.kernel_regularizer)
  self.bias_regularizer = regularizers.get(kw.bias_regularizer)
  self.kernel_constraint = constraints.get(kw.kernel_constraint)
  self.bias_constraint = constraints.get(kw.bias_constraint)
  self.supports_masking = true
end

function Dense:build(input_shape)
  local in_dim = input_shape[#input_shape]
  if #input_shape < 2 then
    self:raise("expected an input of rank >= 2, got shape %s", Layer.shape_str(input_shape))
  end
  if in_dim == nil or in_dim < 1 then
    self:raise("the last input dimension must be known, got shape %s", Layer.shape_str(input_shape))
  end
  self.kernel = self:add_weight{ shape = { in_dim, self.units }, initializer = self.kernel_initializer, name = "kernel",
    regularizer = self.kernel_regularizer, constraint = self.kernel_constraint }
  if self.use_bias then
    self.bias = self:add_weight{ shape = { self.units }, initializer = self.bias_initializer, name = "bias",
      regularizer = self.bias_regularizer, constraint = self.bias_constraint }
  end
end

local linear = activations.linear
-- Activations the fused op applies itself (src/ops/linear.c).
local fused_code = { [activations.linear] = { 0 }, [activations.relu] = { 1 }, [activations.sigmoid] = { 2 } }

function Dense:call(x)
  local xp = x.p   -- the C struct's fields directly: this runs at every call
  local nd = xp.nd
  if nd < 2 then self:raise("expected an input of rank >= 2, got shape %s", core.shape_str(x:shape())) end
  local kernel = self.kernel
  local want, got = tonumber(kernel.p.dims[0]), tonumber(xp.dims[nd - 1])
  if got ~= want then self:raise("expected last input dimension %d, got %d", want, got) end
  local code = self.use_bias and fused_code[self.activation]
  if code then
    -- matmul + bias + activation in one op: one pass over the output. A
    -- higher rank (..., K) is folded into rows (M, K) for it (reshapes are
    -- views) and its leading axes put back.
    if nd == 2 then return core.op("linear", x, kernel, self.bias, { ints = code }) end
    local shape = x:shape()
    local y = core.op("linear", core.op("reshape", x, nil, nil, { ints = { -1, want } }), kernel, self.bias, { ints = code })
    shape[nd] = self.units
    return core.op("reshape", y, nil, nil, { ints = shape })
  end
  local y = core.op("matmul", x, kernel)
  if self.use_bias then y = core.op("add", y, self.bias) end
  local act = self.activation
  if act ~= linear then y = act(y) end
  return y
end

function Dense:compute_output_shape(input_shape)
  local out = {}
  for i, d in ipairs(input_shape) do out[i] = d end
  out[#out] = self.units
  return out
end

function Dense:get_config()
  local config = Dense.super.get_config(self)
  config.units = self.units
  config.activation = activations.serialize(self.activation)
  config.use_bias = self.use_bias
  Layer._weight_options_config(self, config, { "kernel", "bias" })
  return config
end

return Dense
