-- dot.lua — Dot: the dot product of two batched tensors along one axis of
-- each, as Keras's batch_dot: Dot{axes = 2}({a, b}) or Dot{axes = {2, 3}}.
-- Axes are 1-based positions counting the batch axis (Keras's axes=1 is 2
-- here; negative counts from the end); the batch axis cannot be one. The
-- result has a's other axes, then b's other axes without its batch; a rank-1
-- result becomes (batch, 1). normalize = true L2-normalises both along their
-- axis first (cosine proximity). Transposes, reshapes and one batched matmul.
local core = require("klua.core")
local Layer = require("klua.layer")
local Merge = require("klua.layers.merge")
local nn = require("klua.nn")
local ops = require("klua.ops")

local Dot = Merge:extend("Dot")
Dot.max_inputs = 2

local function is_int(v) return type(v) == "number" and v % 1 == 0 end

--- Dot{axes, normalize=false, ...}: the dot product of two batched tensors along one axis of each (1-based, counting
-- the batch: Keras's axes=1 is 2), with normalize the cosine: Dot{axes = 2}({a, b}).
function Dot:__init(axes, kw)
  axes, kw = nn.args(axes, kw, "axes")
  Dot.super.__init(self, kw)
  local ok = is_int(axes) or (type(axes) == "table" and #axes == 2 and is_int(axes[1]) and is_int(axes[2]))
  if not ok then
    self:raise("axes must be an integer or a list of two integers. Received: axes=%s",
      core.received(axes))
  end
  self.axes = axes
  self.normalize = kw.normalize == true
end

-- The two contracted positions (1-based, positive) for shapes s1, s2.
-- fail(fmt, ...) reports a problem (self:raise unless given).
function Dot:_positions(s1, s2, fail)
  fail = fail or function(...) self:raise(...) end
  local a = type(self.axes) == "table" and self.axes or { self.axes, self.axes }
  local p1 = a[1] < 0 and #s1 + a[1] + 1 or a[1]
  local p2 = a[2] < 0 and #s2 + a[2] + 1 or a[2]
  if #s1 < 2 or #s2 < 2 then
    fail("expected two inputs of rank >= 2, got shapes %s and %s", Layer.shape_str(s1), Layer.shape_str(s2))
  end
  if p1 == 1 or p2 == 1 then fail("cannot take the dot product over the batch axis (axis 1)") end
  if p1 < 1 or p1 > #s1 or p2 < 1 or p2 > #s2 then
    fail("axes are out of range for inputs of shapes %s and %s", Layer.shape_str(s1), Layer.shape_str(s2))
  end
  if s1[p1] >= 0 and s2[p2] >= 0 and s1[p1] ~= s2[p2] then
    fail("incompatible input shapes: axis values %d (at axis %d) != %d (at axis %d). Full input shapes: %s, %s",
      s1[p1], p1, s2[p2], p2, Layer.shape_str(s1), Layer.shape_str(s2))
  end
  return p1, p2
end

local function shapes_of(input_shape)
  if type(input_shape) ~= "table" or #input_shape ~= 2 or type(input_shape[1]) ~= "table" then return nil end
  return input_shape[1], input_shape[2]
end

function Dot:build(input_shape)
  local s1, s2 = shapes_of(input_shape)
  if not s1 then self:raise("a Dot layer should be called on a list of 2 inputs") end
  self:_positions(s1, s2)
end

-- x * rsqrt(max(sum(x^2), 1e-14)) along position p (Keras's normalize, epsilon 1e-7).
local function l2_normalize(x, p)
  return x * ops.maximum(ops.sum(ops.square(x), p, true), 1e-14) ^ -0.5
end

-- Moves position p of x to `to`, keeping the other axes in order.
local function move_axis(x, p, to)
  local order = {}
  for i = 1, x.nd do if i ~= p then order[#order + 1] = i end end
  table.insert(order, to, p)
  for i = 1, x.nd do if order[i] ~= i then return ops.transpose(x, order) end end
  return x
end

-- Merge:call names the layer and the input shapes around these messages.
local function fail(fmt, ...) error(fmt:format(...), 0) end

function Dot:merge(list)
  local x, y = list[1], list[2]
  local s1, s2 = x:shape(), y:shape()
  local p1, p2 = self:_positions(s1, s2, fail)
  if s1[1] ~= s2[1] then fail("the batch sizes differ") end
  if self.normalize then x, y = l2_normalize(x, p1), l2_normalize(y, p2) end
  local b, k = s1[1], s1[p1]
  local out = { b }
  local m, n = 1, 1
  for i = 2, #s1 do if i ~= p1 then out[#out + 1] = s1[i]; m = m * s1[i] end end
  for i = 2, #s2 do if i ~= p2 then out[#out + 1] = s2[i]; n = n * s2[i] end end
  -- (b, m, k) @ (b, k, n)
  local xm = ops.reshape(move_axis(x, p1, #s1), { b, m, k })
  local ym = ops.reshape(move_axis(y, p2, 2), { b, k, n })
  if #out == 1 then out[2] = 1 end
  return ops.reshape(ops.matmul(xm, ym), out)
end

function Dot:compute_output_shape(input_shape)
  local s1, s2 = shapes_of(input_shape)
  if not s1 then self:raise("a Dot layer should be called on a list of 2 inputs") end
  local p1, p2 = self:_positions(s1, s2)
  local out = { s1[1] }
  for i = 2, #s1 do if i ~= p1 then out[#out + 1] = s1[i] end end
  for i = 2, #s2 do if i ~= p2 then out[#out + 1] = s2[i] end end
  if #out == 1 then out[2] = 1 end
  return out
end

function Dot:compute_mask() return nil end

function Dot:get_config()
  local config = Dot.super.get_config(self)
  config.axes = type(self.axes) == "table" and { self.axes[1], self.axes[2] } or self.axes
  config.normalize = self.normalize
  return config
end

return Dot
