-- repeatvector.lua — RepeatVector: (batch, features) -> (batch, n, features).
local core = require("klua.core")
local Layer = require("klua.layer")

local RepeatVector = Layer:extend("RepeatVector")
RepeatVector.input_spec = { ndim = 2 }   -- one tensor (Keras's input_spec)

--- RepeatVector{n, ...}: (batch, features) -> (batch, n, features).
function RepeatVector:__init(n, kw)
  n, kw = Layer.args(n, kw, "n")
  Layer.check_positive_int("RepeatVector", "n", n)
  RepeatVector.super.__init(self, kw)
  self.n = n
end

function RepeatVector:call(x)
  if x.nd ~= 2 then self:raise("expected an input of shape (batch, features), got %s", core.shape_str(x:shape())) end
  local b, f = tonumber(x.dims[0]), tonumber(x.dims[1])
  local x3 = core.op("reshape", x, nil, nil, { ints = { b, 1, f } })
  return core.op("broadcast_to", x3, nil, nil, { ints = { b, self.n, f } })
end

function RepeatVector:compute_output_shape(s) return { s[1], self.n, s[2] } end

function RepeatVector:get_config()
  local config = RepeatVector.super.get_config(self)
  config.n = self.n
  return config
end

return RepeatVector
