-- rmsnormalization.lua — RMSNormalization (Keras 3): x * rsqrt(mean(x^2) + epsilon)
-- * scale over `axis` (1-based, -1 = last, or a list), with one learnable
-- `scale` weight per normalized position (initialised to ones).
local Layer = require("klua.layer")
local ops = require("klua.ops")

local RMSNormalization = Layer:extend("RMSNormalization")
RMSNormalization.input_spec = { min_ndim = 1 }   -- one tensor (Keras's input_spec)
RMSNormalization.supports_masking = true

local function axis_list(axis)
  if type(axis) == "number" then return { axis } end
  return axis
end

--- RMSNormalization{axis=-1, epsilon=1e-6, ...}: x / sqrt(mean(x^2) + epsilon) * scale over axis, one learned scale.
function RMSNormalization:__init(kw)
  kw = kw or {}
  RMSNormalization.super.__init(self, kw)
  local axis = kw.axis == nil and -1 or kw.axis
  local list = type(axis) == "table" and axis or { axis }
  if #list == 0 then self:raise("axis must be a non-zero integer or a list of them. Received: axis={}") end
  for _, a in ipairs(list) do
    if type(a) ~= "number" or a % 1 ~= 0 or a == 0 then
      self:raise("axis must be a non-zero integer or a list of them (1-based). Received: axis=%s", tostring(a))
    end
  end
  local eps = kw.epsilon == nil and 1e-6 or kw.epsilon
  if type(eps) ~= "number" or eps < 0 then self:raise("epsilon must be a non-negative number. Received: epsilon=%s", tostring(eps)) end
  self.axis, self.epsilon = axis, eps
end

-- The axes as 1-based positions in an input of rank nd, sorted.
local function positions(self, nd)
  local out = {}
  for i, a in ipairs(axis_list(self.axis)) do
    local p = a < 0 and nd + a + 1 or a
    if p < 1 or p > nd then
      self:raise("axis %d is out of range for an input of rank %d. Received: axis=%s", a, nd, tostring(a))
    end
    out[i] = p
  end
  table.sort(out)
  return out
end

function RMSNormalization:build(input_shape)
  local shape = {}
  for i, p in ipairs(positions(self, #input_shape)) do shape[i] = input_shape[p] end
  self.scale = self:add_weight{ name = "scale", shape = shape, initializer = "ones" }
end

function RMSNormalization:call(x)
  local axes = positions(self, x.nd)
  local y = x * ops.power(ops.mean(ops.square(x), axes, true) + self.epsilon, -0.5)
  -- the scale weight broadcast back over the other axes
  local bshape = {}
  for i = 1, x.nd do bshape[i] = 1 end
  for _, p in ipairs(axes) do bshape[p] = tonumber(x.dims[p - 1]) end
  return y * ops.reshape(self.scale, bshape)
end

function RMSNormalization:compute_output_shape(s)
  positions(self, #s)
  return s
end

function RMSNormalization:get_config()
  local config = RMSNormalization.super.get_config(self)
  config.axis, config.epsilon = self.axis, self.epsilon
  return config
end

return RMSNormalization
