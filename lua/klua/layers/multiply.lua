-- multiply.lua — Multiply: the elementwise product of a list of tensors.
local core = require("klua.core")
local Merge = require("klua.layers.merge")

--- Multiply{...}: the elementwise product of a list of tensors: Multiply()({a, b}).
return Merge.define("Multiply", function(self, list)
  local out = list[1]
  for i = 2, #list do out = core.op("mul", out, list[i]) end
  return out
end)
