-- batchnormalization.lua — BatchNormalization: normalises each feature (the
-- `axis`, last by default) with the batch's mean and variance in training
-- and with moving averages of them in inference:
--   moving = moving * momentum + batch * (1 - momentum)
-- Training uses the fused C ops moments + batch_norm (src/ops/normalization.c).
-- A frozen layer (trainable = false) runs in inference mode, as in Keras.
local core = require("klua.core")
local Layer = require("klua.layer")
local affine = require("klua.layers.base_normalization")
local ops = require("klua.ops")
local initializers = require("klua.initializers")
local nn = require("klua.nn")
local no_grad = require("klua.no_grad")
local distribution = require("klua.distribution")
local op = core.op

local BatchNormalization = Layer:extend("BatchNormalization")
BatchNormalization.input_spec = { min_ndim = 1 }   -- one tensor (Keras's input_spec)
BatchNormalization.supports_masking = true

--- BatchNormalization.fused(x, mean, var, gamma, beta, epsilon): (x - mean) / sqrt(var + epsilon) * gamma + beta
-- over the last axis, one C op (klua.nn.batch_norm).
BatchNormalization.fused = nn.batch_norm
core.name_errors({ fused = nn.batch_norm })   -- called directly, its errors name it
local fused = BatchNormalization.fused

--- BatchNormalization{axis=-1, momentum=0.99, epsilon=1e-3, center=true, scale=true, beta_initializer="zeros",
-- gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
-- beta_regularizer=nil, gamma_regularizer=nil, beta_constraint=nil, gamma_constraint=nil, synchronized=false, ...}:
-- normalises each feature of `axis` (1-based) with the batch's statistics in training, moving averages otherwise.
function BatchNormalization:__init(kw)
  kw = kw or {}
  BatchNormalization.super.__init(self, kw)
  self.axis = kw.axis or -1
  self.momentum = kw.momentum or 0.99
  self.epsilon = kw.epsilon or 1e-3
  self.synchronized = kw.synchronized and true or false
  affine.read_affine(self, kw)
  if type(self.axis) ~= "number" or self.axis == 0 or self.axis % 1 ~= 0 then
    self:raise("axis must be a non-zero integer (1-based, -1 last). Received: axis=%s", tostring(self.axis))
  end
  if type(self.momentum) ~= "number" or self.momentum < 0 or self.momentum > 1 then
    self:raise("momentum must be in [0, 1]. Received: momentum=%s", tostring(self.momentum))
  end
  if type(self.epsilon) ~= "number" or self.epsilon < 0 then
    self:raise("epsilon must be a non-negative number. Received: epsilon=%s", tostring(self.epsilon))
  end
  self.moving_mean_initializer = initializers.get(kw.moving_mean_initializer or "zeros")
  self.moving_variance_initializer = initializers.get(kw.moving_variance_initializer or "ones")
end

function BatchNormalization:build(input_shape)
  local nd = #input_shape
  local ax = self.axis < 0 and nd + self.axis + 1 or self.axis
  if ax < 1 or ax > nd then
    self:raise("axis %d is out of range for an input of shape %s", self.axis, Layer.shape_str(input_shape))
  end
  local c = input_shape[ax]
  if c == nil or c < 1 then self:raise("the size of axis %d must be known, got shape %s", self.axis, Layer.shape_str(input_shape)) end
  rawset(self, "_axis", ax)
  rawset(self, "_features", c)
  affine.add_affine(self, { c }, self.scale, self.center)
  self.moving_mean = self:add_weight{ shape = { c }, name = "moving_mean", initializer = self.moving_mean_initializer, trainable = false }
  self.moving_variance = self:add_weight{ shape = { c }, name = "moving_variance",
    initializer = self.moving_variance_initializer, trainable = false }
end

-- Keras 3's masked moments: the mask (one dimension less than the input,
-- nonzero = keep) gets a trailing axis and is broadcast to the input's shape,
-- so a mask of shape (1,2,1) for an input (1,2,3,4) covers axis 3 too; each
-- feature's mean and variance are over its kept positions, divided by their
-- count + 1e-7 (keras.backend.epsilon()).
local EPSILON = 1e-7

-- The mask as 0/1 weights of x's shape (nil in inference, which ignores it).
local function mask_weights(self, mask, x, training)
  local shape = x:shape()
  if mask.nd ~= x.nd - 1 then
    self:raise("the mask should have one dimension less than the inputs. Received: mask.shape=%s, inputs.shape=%s",
      core.shape_str(mask:shape()), core.shape_str(shape))
  end
  if not training then return nil end
  local ms = mask:shape()
  ms[#ms + 1] = 1
  local w = op("reshape", op("not_equal", mask, core.to_tensor(0)), nil, nil, { ints = ms })
  local ok, b = pcall(op, "broadcast_to", w, nil, nil, { ints = shape })
  if not ok then
    self:raise("the mask of shape %s does not broadcast to the inputs' shape %s",
      core.shape_str(mask:shape()), core.shape_str(shape))
  end
  return b
end

-- synchronized = true under a multi-process DataParallel: the moments over
-- every process's rows, from sums (Σx, Σx², rows) added up across processes
-- by the differentiable all_reduce_sum op (src/ops/collective.c).
local function synchronized_moments(self, x, c)
  local flat = ops.reshape(x, { -1, c })
  local local_sums = ops.concatenate({ ops.sum(flat, 1), ops.sum(flat * flat, 1), core.to_tensor { flat:shape()[1] } }, 1)
  local sums = op("all_reduce_sum", local_sums, nil, nil, { f = { distribution.gradient_weight() } })
  local n = ops.slice_axis(sums, 1, 2 * c + 1, 2 * c + 1)
  local mean = ops.slice_axis(sums, 1, 1, c) / n
  local var = ops.maximum(ops.slice_axis(sums, 1, c + 1, 2 * c) / n - mean * mean, 0)
  return mean, var
end

-- x and w (0/1, x's shape) with the features last.
local function masked_moments(x, w)
  local axes = {}
  for i = 1, x.nd - 1 do axes[i] = i end
  local count = ops.sum(w, axes) + EPSILON
  local mean = ops.sum(x * w, axes) / count
  local d = x - mean
  local var = ops.sum(d * d * w, axes) / count
  return mean, var
end

function BatchNormalization:call(x, kw)
  local nd, ax, c = x.nd, rawget(self, "_axis"), rawget(self, "_features")
  if nd < ax or tonumber(x.dims[ax - 1]) ~= c then
    self:raise("expected %d features on axis %d, got shape %s", c, self.axis, core.shape_str(x:shape()))
  end
  local training = kw.training and self.trainable
  local w = core.is_tensor(kw.mask) and mask_weights(self, kw.mask, x, training) or nil
  -- Features last: move the axis there and back.
  local perm
  if ax ~= nd then
    perm = {}
    for i = 1, nd do perm[i] = i - 1 end
    table.remove(perm, ax)
    perm[nd] = ax - 1
    x = op("transpose", x, nil, nil, { ints = perm })
    if w then w = op("transpose", w, nil, nil, { ints = perm }) end
  end
  local gamma = self.gamma or core.op("scale", self.moving_mean, nil, nil, { f = { 0, 1 } })
  local beta = self.beta or core.op("scale", self.moving_mean, nil, nil, { f = { 0, 0 } })
  local y
  if training then
    local mean, var
    if self.synchronized and distribution.active() then
      if w then self:raise("synchronized = true does not support masks") end
      mean, var = synchronized_moments(self, x, c)
    elseif w then
      mean, var = masked_moments(x, w)
    else
      local stats = op("moments", x)
      mean = op("reshape", ops.slice_axis(stats, 1, 1, 1), nil, nil, { ints = { c } })
      var = op("reshape", ops.slice_axis(stats, 1, 2, 2), nil, nil, { ints = { c } })
    end
    y = fused(x, mean, var, gamma, beta, self.epsilon)
    local m = self.momentum
    no_grad(function()
      self.moving_mean:assign(self.moving_mean * m + mean * (1 - m))
      self.moving_variance:assign(self.moving_variance * m + var * (1 - m))
    end)
  else
    y = fused(x, self.moving_mean, self.moving_variance, gamma, beta, self.epsilon)
  end
  if perm then
    local inv = {}
    for i, p in ipairs(perm) do inv[p + 1] = i - 1 end
    y = op("transpose", y, nil, nil, { ints = inv })
  end
  return y
end

function BatchNormalization:compute_output_shape(s) return s end

function BatchNormalization:get_config()
  local config = BatchNormalization.super.get_config(self)
  config.axis, config.momentum, config.epsilon = self.axis, self.momentum, self.epsilon
  config.synchronized = self.synchronized
  config.moving_mean_initializer = initializers.serialize(self.moving_mean_initializer)
  config.moving_variance_initializer = initializers.serialize(self.moving_variance_initializer)
  return affine.affine_config(self, config)
end

return BatchNormalization
