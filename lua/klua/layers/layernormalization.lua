-- layernormalization.lua — LayerNormalization: normalises each sample over
-- `axis` (the last by default; a list of axes is allowed), then scales by
-- gamma and shifts by beta. Trailing axes use the fused C op layer_norm;
-- other axes and rms_scaling are compositions of ops.
local core = require("klua.core")
local Layer = require("klua.layer")
local affine = require("klua.layers.base_normalization")
local ops = require("klua.ops")
local op = core.op

local LayerNormalization = Layer:extend("LayerNormalization")
LayerNormalization.input_spec = { min_ndim = 1 }   -- one tensor (Keras's input_spec)
LayerNormalization.supports_masking = true

--- LayerNormalization{axis=-1, epsilon=1e-3, center=true, scale=true, rms_scaling=false, beta_initializer="zeros",
-- gamma_initializer="ones", beta_regularizer=nil, gamma_regularizer=nil, beta_constraint=nil, gamma_constraint=nil, ...}:
-- normalises each sample over axis (1-based, or a list), then scales by gamma and shifts by beta.
function LayerNormalization:__init(kw)
  kw = kw or {}
  LayerNormalization.super.__init(self, kw)
  local axis = kw.axis or -1
  local list = type(axis) == "table" and axis or { axis }
  for _, a in ipairs(list) do
    if type(a) ~= "number" or a == 0 or a % 1 ~= 0 then
      self:raise("axis must be a non-zero integer or a list of them (1-based). Received: axis=%s", tostring(a))
    end
  end
  self.axis = axis
  self.epsilon = kw.epsilon or 1e-3
  self.rms_scaling = kw.rms_scaling and true or false
  affine.read_affine(self, kw)
end

function LayerNormalization:build(input_shape)
  local nd = #input_shape
  local list = type(self.axis) == "table" and self.axis or { self.axis }
  local axes, pshape = {}, {}
  for i, a in ipairs(list) do
    local p = a < 0 and nd + a + 1 or a
    if p < 1 or p > nd then self:raise("axis %d is out of range for an input of shape %s", a, Layer.shape_str(input_shape)) end
    axes[i] = p
  end
  table.sort(axes)
  for i, p in ipairs(axes) do pshape[i] = input_shape[p] end
  -- The fused op needs the normalised axes to be the trailing ones.
  local trailing = axes[#axes] == nd
  for i = 2, #axes do trailing = trailing and axes[i] == axes[i - 1] + 1 end
  rawset(self, "_axes", axes)
  rawset(self, "_trailing", trailing)
  affine.add_affine(self, pshape, self.scale or self.rms_scaling, self.center and not self.rms_scaling)
end

-- gamma/beta reshaped to broadcast against x (1 on the other axes).
local function broadcastable(self, v, nd)
  local shape = {}
  for i = 1, nd do shape[i] = 1 end
  local vs = v:shape()
  for i, p in ipairs(rawget(self, "_axes")) do shape[p] = vs[i] end
  return op("reshape", v, nil, nil, { ints = shape })
end

function LayerNormalization:call(x)
  local axes = rawget(self, "_axes")
  local nd = x.nd
  local gamma, beta = self.gamma, self.beta
  for i, p in ipairs(axes) do
    local want = gamma and gamma:shape()[i] or (beta and beta:shape()[i])
    if p > nd or (want and tonumber(x.dims[p - 1]) ~= want) then
      self:raise("expected an input shaped like the one it was built with, got %s", core.shape_str(x:shape()))
    end
  end
  if self.rms_scaling then
    local ms = ops.mean(ops.square(x), axes, true)
    local y = x * ops.power(ms + self.epsilon, -0.5)
    return y * broadcastable(self, gamma, nd)
  end
  if rawget(self, "_trailing") then
    local n = 1
    for _, p in ipairs(axes) do n = n * tonumber(x.dims[p - 1]) end
    local shape = x:shape()
    local x2 = #axes == 1 and x or op("reshape", x, nil, nil, { ints = { -1, n } })
    local g = gamma or op("reshape", core.to_tensor(1), nil, nil, { ints = {} })
    if not gamma then g = core.op("broadcast_to", g, nil, nil, { ints = { n } }) end
    local b = beta or core.op("broadcast_to", core.to_tensor(0), nil, nil, { ints = { n } })
    local y = op("layer_norm", x2, g, b, { f = { self.epsilon } })
    if #axes ~= 1 then y = op("reshape", y, nil, nil, { ints = shape }) end
    return y
  end
  local mean = ops.mean(x, axes, true)
  local d = x - mean
  local var = ops.mean(d * d, axes, true)
  local y = d * ops.power(var + self.epsilon, -0.5)
  if gamma then y = y * broadcastable(self, gamma, nd) end
  if beta then y = y + broadcastable(self, beta, nd) end
  return y
end

function LayerNormalization:compute_output_shape(s) return s end

function LayerNormalization:get_config()
  local config = LayerNormalization.super.get_config(self)
  config.axis, config.epsilon = self.axis, self.epsilon
  config.rms_scaling = self.rms_scaling
  return affine.affine_config(self, config)
end

return LayerNormalization
