-- leakyrelu.lua — LeakyReLU: x >= 0 ? x : negative_slope * x (Keras 3
-- default slope 0.3; the leaky_relu function's default is 0.2).
local core = require("klua.core")
local Layer = require("klua.layer")

local LeakyReLU = Layer:extend("LeakyReLU")
LeakyReLU.input_spec = {}   -- one tensor
LeakyReLU.supports_masking = true

--- LeakyReLU{negative_slope=0.3, ...}: x if x >= 0, else negative_slope * x.
function LeakyReLU:__init(negative_slope, kw)
  negative_slope, kw = Layer.args(negative_slope, kw, "negative_slope")
  if negative_slope == nil then negative_slope = kw.alpha or 0.3 end
  if type(negative_slope) ~= "number" or negative_slope < 0 then
    core.raise("LeakyReLU: negative_slope must be a non-negative number. Received: negative_slope=" .. tostring(negative_slope))
  end
  LeakyReLU.super.__init(self, kw)
  self.negative_slope = negative_slope
end

function LeakyReLU:call(x) return core.op("leaky_relu", x, nil, nil, { f = { self.negative_slope } }) end
function LeakyReLU:compute_output_shape(s) return s end

function LeakyReLU:get_config()
  local config = LeakyReLU.super.get_config(self)
  config.negative_slope = self.negative_slope
  return config
end

return LeakyReLU
