-- groupnormalization.lua — GroupNormalization: splits the channels of `axis`
-- (1-based, -1 = last) into `groups` groups and normalises each group of each
-- sample over its channels and every other non-batch axis, then scales by
-- gamma and shifts by beta (per channel), as Keras's. groups = -1 gives one
-- group per channel (instance normalisation). A composition of ops.
local Layer = require("klua.layer")
local affine = require("klua.layers.base_normalization")
local ops = require("klua.ops")

local GroupNormalization = Layer:extend("GroupNormalization")
GroupNormalization.input_spec = { min_ndim = 2 }   -- one tensor (Keras's input_spec)
GroupNormalization.supports_masking = true

--- GroupNormalization{groups=32, axis=-1, epsilon=1e-3, center=true, scale=true, beta_initializer="zeros",
-- gamma_initializer="ones", beta_regularizer=nil, gamma_regularizer=nil, beta_constraint=nil, gamma_constraint=nil, ...}:
-- splits the channels of axis into groups and normalises each group of each sample (groups = -1: instance norm).
function GroupNormalization:__init(kw)
  kw = kw or {}
  GroupNormalization.super.__init(self, kw)
  local groups = kw.groups == nil and 32 or kw.groups
  if type(groups) ~= "number" or groups % 1 ~= 0 or (groups <= 0 and groups ~= -1) then
    self:raise("groups must be a positive integer (or -1 for instance normalization). Received: groups=%s", tostring(groups))
  end
  local axis = kw.axis == nil and -1 or kw.axis
  if type(axis) ~= "number" or axis % 1 ~= 0 or axis == 0 or axis == 1 then
    self:raise("axis must be a non-zero integer other than the batch axis 1 (1-based, -1 = last). Received: axis=%s", tostring(axis))
  end
  self.groups, self.axis = groups, axis
  self.epsilon = kw.epsilon or 1e-3
  affine.read_affine(self, kw)
end

-- The 1-based position of `axis` in a shape of rank nd.
function GroupNormalization:_position(nd, shape)
  local p = self.axis < 0 and nd + self.axis + 1 or self.axis
  if p < 2 or p > nd then
    self:raise("axis %d is out of range for an input of shape %s", self.axis, Layer.shape_str(shape))
  end
  return p
end

function GroupNormalization:build(input_shape)
  local p = self:_position(#input_shape, input_shape)
  local dim = input_shape[p]
  if dim == nil or dim < 1 then
    self:raise("axis %d of the input tensor should have a defined dimension but the layer received an input with shape %s",
      self.axis, Layer.shape_str(input_shape))
  end
  local groups = self.groups == -1 and dim or self.groups
  if dim < groups then
    self:raise("the number of groups (%d) cannot be more than the number of channels (%d)", groups, dim)
  end
  if dim % groups ~= 0 then
    self:raise("the number of channels (%d) must be a multiple of the number of groups (%d)", dim, groups)
  end
  rawset(self, "_groups", groups)
  affine.add_affine(self, { dim }, self.scale, self.center)
end

function GroupNormalization:call(x)
  local shape = x:shape()
  local nd = #shape
  local p = self:_position(nd, shape)
  local groups = rawget(self, "_groups")
  local dim = self.gamma and self.gamma:shape()[1] or (self.beta and self.beta:shape()[1]) or shape[p]
  if shape[p] ~= dim then
    self:raise("expected %d channels on axis %d, got input shape %s", dim, self.axis, Layer.shape_str(shape))
  end
  -- (..., C, ...) -> (..., groups, C / groups, ...); statistics over every
  -- axis but the batch and the group axis.
  local gshape, bshape, axes = {}, {}, {}
  for i = 1, nd do
    if i == p then
      gshape[#gshape + 1], gshape[#gshape + 2] = groups, dim / groups
      bshape[#bshape + 1], bshape[#bshape + 2] = groups, dim / groups
    else
      gshape[#gshape + 1] = shape[i]
      bshape[#bshape + 1] = 1
    end
  end
  for i = 2, nd + 1 do if i ~= p then axes[#axes + 1] = i end end
  local xg = ops.reshape(x, gshape)
  local mean = ops.mean(xg, axes, true)
  local d = xg - mean
  local y = d * (ops.mean(d * d, axes, true) + self.epsilon) ^ -0.5
  if self.gamma then y = y * ops.reshape(self.gamma, bshape) end
  if self.center then y = y + ops.reshape(self.beta, bshape) end
  return ops.reshape(y, shape)
end

function GroupNormalization:compute_output_shape(s)
  self:_position(#s, s)
  return s
end

function GroupNormalization:get_config()
  local config = GroupNormalization.super.get_config(self)
  config.groups, config.axis, config.epsilon = self.groups, self.axis, self.epsilon
  return affine.affine_config(self, config)
end

return GroupNormalization
