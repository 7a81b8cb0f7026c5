-- cropping1d.lua — Cropping1D: removes steps at both ends of (batch, steps,
-- channels); cropping = n or {left, right}, as Keras (base_cropping.lua).
local BaseCropping = require("klua.layers.base_cropping")

local Cropping1D = BaseCropping:extend("Cropping1D")

--- Cropping1D{cropping={1, 1}, ...}: removes steps at both ends of (batch, steps, channels); cropping = n or {left, right}.
function Cropping1D:__init(cropping, kw)
  BaseCropping.__init(self, 1, cropping, kw, 1)
end

return Cropping1D
