-- add.lua — Add: the elementwise sum of a list of tensors.
local core = require("klua.core")
local Merge = require("klua.layers.merge")

--- Add{...}: the elementwise sum of a list of tensors (shapes broadcast): Add()({a, b, c}).
return Merge.define("Add", function(self, list)
  local out = list[1]
  for i = 2, #list do out = core.op("add", out, list[i]) end
  return out
end)
