-- cropping3d.lua — Cropping3D: removes slices at the edges of (batch, depth,
-- height, width, channels); cropping = n, {d, h, w} or
-- {{front, back}, {top, bottom}, {left, right}}, data_format, as Keras
-- (base_cropping.lua).
local BaseCropping = require("klua.layers.base_cropping")

local Cropping3D = BaseCropping:extend("Cropping3D")

--- Cropping3D{cropping=1, data_format="channels_last", ...}: removes slices at the edges of a volume batch;
-- cropping = n, {d, h, w} or {{d1, d2}, {h1, h2}, {w1, w2}}.
function Cropping3D:__init(cropping, kw)
  BaseCropping.__init(self, 3, cropping, kw, 1)
end

return Cropping3D
