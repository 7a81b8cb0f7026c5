-- concatenate.lua — Concatenate: joins a list of tensors along `axis`
-- (1-based, -1 = last, the default). Masks follow Keras: missing masks count
-- as all ones and a timestep is kept if any joined part keeps it.
local core = require("klua.core")
local Layer = require("klua.layer")
local Merge = require("klua.layers.merge")
local ops = require("klua.ops")

local Concatenate = Merge:extend("Concatenate")

--- Concatenate{axis=-1, ...}: joins a list of tensors along axis (1-based, counting the batch): Concatenate()({a, b}).
function Concatenate:__init(axis, kw)
  axis, kw = Layer.args(axis, kw, "axis")
  axis = axis or -1
  if type(axis) ~= "number" or axis == 0 or axis % 1 ~= 0 then
    core.raise("Concatenate: axis must be a non-zero integer (1-based, -1 last). Received: axis=" .. tostring(axis))
  end
  Concatenate.super.__init(self, kw)
  self.axis = axis
end

function Concatenate:merge(list)
  local nd = list[1].nd
  for i = 2, #list do
    if list[i].nd ~= nd then error("all inputs must have the same rank", 0) end
  end
  return ops.concatenate(list, self.axis)
end

function Concatenate:compute_mask(inputs, mask)
  if type(mask) ~= "table" or type(inputs) ~= "table" then return nil end
  local full = {}
  for i, x in ipairs(inputs) do
    local m = mask[i]
    if not m then
      full[i] = core.op("scale", x, nil, nil, { f = { 0, 1 } })
    elseif m.nd < x.nd then
      full[i] = ops.broadcast_to(ops.expand_dims(m, -1), x:shape())
    else
      full[i] = m
    end
  end
  return ops.max(ops.concatenate(full, self.axis), -1)
end

function Concatenate:compute_output_shape(shapes)
  local first = shapes[1]
  if type(first) ~= "table" then self:raise("compute_output_shape: expected a list of input shapes, like {{2, 3}, {2, 4}}") end
  local nd = #first
  local ax = self.axis < 0 and nd + self.axis + 1 or self.axis
  local out = {}
  for i, d in ipairs(first) do out[i] = d end
  for j = 2, #shapes do
    local d = shapes[j][ax]
    if out[ax] == -1 or d == -1 then out[ax] = -1 else out[ax] = out[ax] + d end
  end
  return out
end

function Concatenate:get_config()
  local config = Concatenate.super.get_config(self)
  config.axis = self.axis
  return config
end

return Concatenate
