-- activation.lua — Activation: applies an activation function (a name from
-- klua.activations or a function) to its input.
local Layer = require("klua.layer")
local activations = require("klua.activations")

local Activation = Layer:extend("Activation")
Activation.input_spec = {}   -- one tensor
Activation.supports_masking = true

--- Activation{activation, ...}: applies an activation (a name from klua.activations or a function) to its input.
function Activation:__init(activation, kw)
  activation, kw = Layer.args(activation, kw, "activation")
  if activation == nil then require("klua.core").raise("Activation: an activation is required, e.g. Activation(\"relu\")") end
  Activation.super.__init(self, kw)
  self.activation = activations.get(activation)
end

function Activation:call(x) return self.activation(x) end

function Activation:compute_output_shape(input_shape) return input_shape end

function Activation:get_config()
  local config = Activation.super.get_config(self)
  config.activation = activations.serialize(self.activation)
  return config
end

return Activation
