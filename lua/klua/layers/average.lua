-- average.lua — Average: the elementwise mean of a list of tensors.
local core = require("klua.core")
local Merge = require("klua.layers.merge")

--- Average{...}: the elementwise mean of a list of tensors: Average()({a, b}).
return Merge.define("Average", function(self, list)
  local out = list[1]
  for i = 2, #list do out = core.op("add", out, list[i]) end
  return core.op("scale", out, nil, nil, { f = { 1 / #list, 0 } })
end)
