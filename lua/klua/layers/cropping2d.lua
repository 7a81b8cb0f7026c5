-- cropping2d.lua — Cropping2D: removes rows and columns at the edges of
-- (batch, height, width, channels); cropping = n, {h, w} or
-- {{top, bottom}, {left, right}}, data_format, as Keras (base_cropping.lua).
local BaseCropping = require("klua.layers.base_cropping")

local Cropping2D = BaseCropping:extend("Cropping2D")

--- Cropping2D{cropping=0, data_format="channels_last", ...}: removes rows and columns at the edges of an image batch;
-- cropping = n, {h, w} or {{top, bottom}, {left, right}}.
function Cropping2D:__init(cropping, kw)
  BaseCropping.__init(self, 2, cropping, kw, 0)
end

return Cropping2D
