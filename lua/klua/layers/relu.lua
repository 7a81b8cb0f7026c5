-- relu.lua — ReLU: Keras's ReLU layer, relu with an optional max_value,
-- negative_slope and threshold.
local core = require("klua.core")
local Layer = require("klua.layer")
local activations = require("klua.activations")

local ReLU = Layer:extend("ReLU")
ReLU.input_spec = {}   -- one tensor
ReLU.supports_masking = true

--- ReLU{max_value=nil, negative_slope=0, threshold=0, ...}: relu with an optional ceiling, leak below threshold
-- and threshold.
function ReLU:__init(kw)
  if type(kw) == "number" then kw = { max_value = kw } end
  kw = kw or {}
  ReLU.super.__init(self, kw)
  self.max_value = kw.max_value
  self.negative_slope = kw.negative_slope or 0
  self.threshold = kw.threshold or 0
  if self.max_value ~= nil and (type(self.max_value) ~= "number" or self.max_value < 0) then
    core.raise("ReLU: max_value must be a non-negative number. Received: max_value=" .. tostring(self.max_value))
  end
  if type(self.negative_slope) ~= "number" or self.negative_slope < 0 then
    core.raise("ReLU: negative_slope must be a non-negative number. Received: negative_slope=" .. tostring(self.negative_slope))
  end
end

function ReLU:call(x) return activations.relu(x, self.negative_slope, self.max_value, self.threshold) end
function ReLU:compute_output_shape(s) return s end

function ReLU:get_config()
  local config = ReLU.super.get_config(self)
  config.max_value, config.negative_slope, config.threshold = self.max_value, self.negative_slope, self.threshold
  return config
end

return ReLU
