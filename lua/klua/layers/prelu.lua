-- prelu.lua — PReLU: x where x >= 0, alpha * x below, with a learned alpha
-- of the input's shape without the batch axis (Keras's weight "alpha").
-- shared_axes are 1-based positions counting the batch axis (Keras's
-- shared_axes=[1, 2] is {2, 3} here); alpha has size 1 along them.
local core = require("klua.core")
local Layer = require("klua.layer")
local ops = require("klua.ops")
local initializers = require("klua.initializers")
local regularizers = require("klua.regularizers")
local constraints = require("klua.constraints")

local PReLU = Layer:extend("PReLU")
PReLU.input_spec = { min_ndim = 2 }   -- one tensor (Keras's input_spec)
PReLU.supports_masking = true

--- PReLU{alpha_initializer="zeros", alpha_regularizer=nil, alpha_constraint=nil, shared_axes=nil, ...}: x if x >= 0,
-- else alpha * x with a learned alpha per input position (shared along shared_axes, 1-based).
function PReLU:__init(kw)
  kw = kw or {}
  PReLU.super.__init(self, kw)
  local shared = kw.shared_axes
  if type(shared) == "number" then shared = { shared } end
  if shared ~= nil then
    if type(shared) ~= "table" then
      self:raise("shared_axes must be an integer or a list of integers. Received: shared_axes=%s", tostring(shared))
    end
    for _, a in ipairs(shared) do
      if type(a) ~= "number" or a % 1 ~= 0 or a == 0 or a == 1 then
        self:raise("shared_axes must be non-zero integers other than the batch axis 1. Received: shared_axes=%s", tostring(a))
      end
    end
  end
  self.shared_axes = shared
  self.alpha_initializer = initializers.get(kw.alpha_initializer or "zeros")
  self.alpha_regularizer = regularizers.get(kw.alpha_regularizer)
  self.alpha_constraint = constraints.get(kw.alpha_constraint)
end

function PReLU:build(input_shape)
  local nd = #input_shape
  if nd < 2 then self:raise("expected an input of rank >= 2, got shape %s", Layer.shape_str(input_shape)) end
  local shape = {}
  for i = 2, nd do shape[i - 1] = input_shape[i] end
  for _, a in ipairs(self.shared_axes or {}) do
    local p = a < 0 and nd + a + 1 or a
    if p < 2 or p > nd then self:raise("shared axis %d is out of range for an input of shape %s", a, Layer.shape_str(input_shape)) end
    shape[p - 1] = 1
  end
  for i, d in ipairs(shape) do
    if d < 1 then self:raise("the size of axis %d must be known (or the axis shared), got shape %s", i + 1, Layer.shape_str(input_shape)) end
  end
  self.alpha = self:add_weight{ shape = shape, name = "alpha", initializer = self.alpha_initializer,
    regularizer = self.alpha_regularizer, constraint = self.alpha_constraint }
end

function PReLU:call(x)
  local want = self.alpha:shape()
  local ok = x.nd == #want + 1
  for i = 1, #want do ok = ok and (want[i] == 1 or tonumber(x.dims[i]) == want[i]) end
  if not ok then
    self:raise("expected an input of shape (batch,%s) (1: any size), got %s", table.concat(want, ","), core.shape_str(x:shape()))
  end
  return ops.relu(x) - self.alpha * ops.relu(-x)
end

function PReLU:compute_output_shape(s) return s end

function PReLU:get_config()
  local config = PReLU.super.get_config(self)
  config.alpha_initializer = initializers.serialize(self.alpha_initializer)
  config.alpha_regularizer = regularizers.serialize(self.alpha_regularizer)
  config.alpha_constraint = constraints.serialize(self.alpha_constraint)
  config.shared_axes = self.shared_axes
  return config
end

return PReLU
