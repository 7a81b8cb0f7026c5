-- minimum.lua — Minimum: the elementwise minimum of a list of tensors.
local core = require("klua.core")
local Merge = require("klua.layers.merge")

--- Minimum{...}: the elementwise minimum of a list of tensors: Minimum()({a, b}).
return Merge.define("Minimum", function(self, list)
  local out = list[1]
  for i = 2, #list do out = core.op("minimum", out, list[i]) end
  return out
end)
