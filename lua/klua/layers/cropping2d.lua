-- cropping2d.lua — Cropping2D: removes rows at the ends of the spatial
-- axes of (batch, height, width, channels); cropping = n, {h, w} or {{top, bottom}, {left, right}},
-- as Keras (base_cropping.lua).
local BaseCropping = require("klua.layers.base_cropping")

local Cropping2D = BaseCropping:extend("Cropping2D")

--- Cropping2D(cropping=0, {data_format="channels_last"})
function Cropping2D:__init(cropping, kw)
  BaseCropping.__init(self, 2, cropping, kw, 0)
end

return Cropping2D
