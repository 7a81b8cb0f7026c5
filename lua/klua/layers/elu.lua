-- elu.lua — ELU: x > 0 ? x : alpha * (exp(x) - 1).
local core = require("klua.core")
local Layer = require("klua.layer")

local ELU = Layer:extend("ELU")
ELU.input_spec = {}   -- one tensor
ELU.supports_masking = true

--- ELU{alpha=1.0, ...}: x if x > 0, else alpha * (exp(x) - 1).
function ELU:__init(alpha, kw)
  alpha, kw = Layer.args(alpha, kw, "alpha")
  if alpha == nil then alpha = 1.0 end
  if type(alpha) ~= "number" then core.raise("ELU: alpha must be a number. Received: alpha=" .. tostring(alpha)) end
  ELU.super.__init(self, kw)
  self.alpha = alpha
end

function ELU:call(x) return core.op("elu", x, nil, nil, { f = { self.alpha } }) end
function ELU:compute_output_shape(s) return s end

function ELU:get_config()
  local config = ELU.super.get_config(self)
  config.alpha = self.alpha
  return config
end

return ELU
