-- softmax.lua — Softmax over an axis (the last by default) or over a list of
-- axes together (Keras's tuple axis). With a mask (1 = keep), masked
-- positions get probability 0, as in Keras.
local core = require("klua.core")
local Layer = require("klua.layer")
local ops = require("klua.ops")

local Softmax = Layer:extend("Softmax")
Softmax.input_spec = {}   -- one tensor
Softmax.supports_masking = true

local function is_list(t)
  if type(t) ~= "table" or getmetatable(t) ~= nil or t[1] == nil then return false end
  for k in pairs(t) do if type(k) ~= "number" then return false end end
  return true
end

--- Softmax{axis=-1, ...}: softmax over axis (1-based) or a list of axes together; masked positions get 0.
-- Softmax(-1), Softmax{2, 3} (a list of axes), Softmax{axis = {2, 3}, name = ...}.
function Softmax:__init(axis, kw)
  if not is_list(axis) then axis, kw = Layer.args(axis, kw, "axis") end
  Softmax.super.__init(self, kw)
  self.axis = axis or -1
  local list = type(self.axis) == "table" and self.axis or { self.axis }
  for _, a in ipairs(list) do
    if type(a) ~= "number" or a == 0 or a % 1 ~= 0 then
      local shown = {}
      for i, v in ipairs(list) do shown[i] = tostring(v) end
      core.raise("Softmax: axis must be a non-zero integer (1-based, -1 last) or a list of them. Received: axis="
        .. (type(self.axis) == "table" and "{" .. table.concat(shown, ", ") .. "}" or tostring(self.axis)))
    end
  end
  if #list == 0 then core.raise("Softmax: axis must not be an empty list") end
end

function Softmax:call(x, kw)
  local mask = kw.mask
  if mask ~= nil and mask ~= false and type(mask) ~= "table" then
    -- Keras adds a large negative number where the mask is 0.
    x = x + (1 - mask) * -1e9
  end
  return ops.softmax(x, self.axis)
end

function Softmax:compute_output_shape(s) return s end

function Softmax:get_config()
  local config = Softmax.super.get_config(self)
  config.axis = self.axis
  return config
end

return Softmax
