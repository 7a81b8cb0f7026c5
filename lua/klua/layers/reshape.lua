-- reshape.lua — Reshape: (batch, ...) -> (batch, target_shape...); one entry
-- of target_shape may be -1 (inferred).
local core = require("klua.core")
local Layer = require("klua.layer")

local Reshape = Layer:extend("Reshape")
Reshape.input_spec = {}   -- one tensor

local function is_shape(t)
  if type(t) ~= "table" then return false end
  for i = 1, #t do if type(t[i]) ~= "number" then return false end end
  return t.target_shape == nil
end

--- Reshape{target_shape, ...}: (batch, ...) -> (batch, target_shape...); one entry may be -1 (inferred).
function Reshape:__init(target_shape, kw)
  if type(target_shape) == "table" and not is_shape(target_shape) then
    kw = target_shape
    target_shape = kw.target_shape
  end
  kw = kw or {}
  if type(target_shape) == "number" then target_shape = { target_shape } end
  if type(target_shape) ~= "table" then
    core.raise("Reshape: target_shape must be a list of sizes. Received: target_shape=" .. tostring(target_shape))
  end
  local unknown = 0
  for i, d in ipairs(target_shape) do
    if type(d) ~= "number" or d % 1 ~= 0 or (d < 1 and d ~= -1) then
      core.raise(("Reshape: target_shape entries must be positive integers or -1. Received: target_shape=%s")
        :format(core.shape_str(target_shape)))
    end
    if d == -1 then unknown = unknown + 1 end
  end
  if unknown > 1 then
    core.raise("Reshape: at most one entry of target_shape can be -1. Received: target_shape=" .. core.shape_str(target_shape))
  end
  Reshape.super.__init(self, kw)
  local copy = {}
  for i, d in ipairs(target_shape) do copy[i] = d end
  rawset(self, "target_shape", copy)
end

function Reshape:compute_output_shape(s)
  local out, known, unknown_at = { s[1] }, 1, nil
  for i, d in ipairs(self.target_shape) do
    out[i + 1] = d
    if d == -1 then unknown_at = i + 1 else known = known * d end
  end
  if unknown_at then
    local total = 1
    for i = 2, #s do
      if s[i] < 0 then return out end
      total = total * s[i]
    end
    if total % known ~= 0 then
      self:raise("cannot reshape an input of shape %s to %s", core.shape_str(s), core.shape_str(self.target_shape))
    end
    out[unknown_at] = total / known
  end
  return out
end

function Reshape:call(x)
  local s = x:shape()
  local total = 1
  for i = 2, #s do total = total * s[i] end
  local out = self:compute_output_shape(s)
  local n = 1
  for i = 2, #out do n = n * out[i] end
  if n ~= total then
    self:raise("cannot reshape an input of shape %s to target_shape %s", core.shape_str(s), core.shape_str(self.target_shape))
  end
  return core.op("reshape", x, nil, nil, { ints = out })
end

function Reshape:get_config()
  local config = Reshape.super.get_config(self)
  config.target_shape = { unpack(self.target_shape) }
  return config
end

return Reshape
