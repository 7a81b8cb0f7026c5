-- unitnormalization.lua — UnitNormalization: scales each sample to unit L2
-- norm over `axis` (1-based, -1 = last, or a list), as Keras's
-- ops.normalize: x * rsqrt(max(sum(x^2), 1e-24)), so zero vectors stay zero.
local Layer = require("klua.layer")
local ops = require("klua.ops")

local UnitNormalization = Layer:extend("UnitNormalization")
UnitNormalization.input_spec = { min_ndim = 1 }   -- one tensor (Keras's input_spec)
UnitNormalization.supports_masking = true

local EPSILON = 1e-12   -- Keras's; the squared norm is clamped at its square

local function axis_list(axis)
  if type(axis) == "number" then return { axis } end
  if type(axis) == "table" and #axis > 0 then return axis end
  return nil
end

--- UnitNormalization{axis=-1, ...}: scales each sample to unit L2 norm over axis (1-based, or a list).
function UnitNormalization:__init(kw)
  kw = kw or {}
  UnitNormalization.super.__init(self, kw)
  local axis = kw.axis == nil and -1 or kw.axis
  local list = axis_list(axis)
  for _, a in ipairs(list or { "?" }) do
    if type(a) ~= "number" or a % 1 ~= 0 or a == 0 then
      self:raise("axis must be a non-zero integer or a list of them (1-based). Received: axis=%s", tostring(kw.axis))
    end
  end
  self.axis = axis
  rawset(self, "built", true)
end

function UnitNormalization:call(x)
  local axes = axis_list(self.axis)
  for _, a in ipairs(axes) do
    if math.abs(a) > x.nd then
      self:raise("axis %d is out of range for an input of shape %s", a, Layer.shape_str(x:shape()))
    end
  end
  local sq = ops.sum(ops.square(x), axes, true)
  return x * ops.maximum(sq, EPSILON * EPSILON) ^ -0.5
end

function UnitNormalization:compute_output_shape(s)
  for _, a in ipairs(axis_list(self.axis)) do
    if math.abs(a) > #s then self:raise("axis %d is out of range for an input of shape %s", a, Layer.shape_str(s)) end
  end
  return s
end

function UnitNormalization:get_config()
  local config = UnitNormalization.super.get_config(self)
  config.axis = self.axis
  return config
end

return UnitNormalization
