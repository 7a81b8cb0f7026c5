-- base_cropping.lua — BaseCropping, the shared part of Cropping1D, Cropping2D
-- and Cropping3D: cropping parsed as Keras does, data_format (2-D and 3-D),
-- output shapes. The crop is a slice view per axis (its gradient pads back
-- with zeros). Not registered as a layer itself.
local Layer = require("klua.layer")
local nn = require("klua.nn")
local ops = require("klua.ops")

local BaseCropping = Layer:extend("BaseCropping")
BaseCropping.input_spec = {}   -- one tensor

local FORMS = {
  "an integer or {left, right}",
  "an integer, {h, w} or {{top, bottom}, {left, right}}",
  "an integer, {d, h, w} or {{front, back}, {top, bottom}, {left, right}}",
}

-- default: Keras's (1 in 1-D and 3-D, 0 in 2-D).
function BaseCropping:__init(rank, cropping, kw, default)
  cropping, kw = nn.args(cropping, kw, "cropping")
  BaseCropping.super.__init(self, kw)
  self.rank = rank
  local c = nn.tuple_pairs(cropping == nil and default or cropping, rank)
  if not c then
    self:raise("cropping must be %s of non-negative integers. Received: cropping=%s", FORMS[rank],
      type(cropping) == "table" and Layer.shape_str(cropping) or tostring(cropping))
  end
  self.crops = c
  self.cropping = rank == 1 and c[1] or c
  if rank == 1 then
    self.data_format = "channels_last"   -- Keras's Cropping1D has no data_format
  else
    self.data_format = nn.data_format(kw.data_format)
    if not self.data_format then
      self:raise("data_format must be \"channels_last\" or \"channels_first\". Received: data_format=%s", tostring(kw.data_format))
    end
  end
end

-- The spatial sizes after cropping, checked as Keras does; -1 stays unknown.
function BaseCropping:_cropped(shape)
  local out, first = {}, self.data_format == "channels_first" and 1 or 0
  for i = 1, self.rank do
    local d, c = shape[i + 1 + first], self.crops[i]
    if d == nil or d < 0 then
      out[i] = -1
    else
      out[i] = d - c[1] - c[2]
      if out[i] <= 0 then
        self:raise("cropping must leave at least one element on each spatial axis. Received: input shape %s, cropping=%s",
          Layer.shape_str(shape), Layer.shape_str(self.cropping))
      end
    end
  end
  return out, first
end

function BaseCropping:call(x)
  if x.nd ~= self.rank + 2 then
    self:raise("expected an input of rank %d, got shape %s", self.rank + 2, Layer.shape_str(x:shape()))
  end
  local sizes, first = self:_cropped(x:shape())
  for i = 1, self.rank do
    local c = self.crops[i]
    x = ops.slice_axis(x, i + 1 + first, c[1] + 1, c[1] + sizes[i])
  end
  return x
end

function BaseCropping:compute_output_shape(s)
  local sizes, first = self:_cropped(s)
  local out = { unpack(s) }
  for i = 1, self.rank do out[i + 1 + first] = sizes[i] end
  return out
end

function BaseCropping:get_config()
  local config = BaseCropping.super.get_config(self)
  config.cropping = self.cropping
  if self.rank > 1 then config.data_format = self.data_format end
  return config
end

return BaseCropping
