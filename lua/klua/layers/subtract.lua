-- subtract.lua — Subtract: a - b for a list of exactly two tensors.
local core = require("klua.core")
local Merge = require("klua.layers.merge")

--- Subtract{...}: a - b for a list of exactly two tensors: Subtract()({a, b}).
return Merge.define("Subtract", function(self, list)
  return core.op("sub", list[1], list[2])
end, { max_inputs = 2 })
