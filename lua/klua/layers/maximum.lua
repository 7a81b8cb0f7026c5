-- maximum.lua — Maximum: the elementwise maximum of a list of tensors.
local core = require("klua.core")
local Merge = require("klua.layers.merge")

--- Maximum{...}: the elementwise maximum of a list of tensors: Maximum()({a, b}).
return Merge.define("Maximum", function(self, list)
  local out = list[1]
  for i = 2, #list do out = core.op("maximum", out, list[i]) end
  return out
end)
