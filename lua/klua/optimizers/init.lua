-- klua.optimizers — Keras's optimizers over fused C updates, learning rate
-- schedules, lookup by name, and klua.zip for the (gradient, variable) pairs
-- form of apply_gradients.
--   local opt = klua.optimizers.Adam{learning_rate = 1e-3}
--   opt:apply_gradients(klua.zip(grads, vars))
local core = require("klua.core")
local class = require("klua.class")

local M = {}
M.Optimizer = require("klua.optimizers.optimizer")
M.SGD = require("klua.optimizers.sgd")
M.Adam = require("klua.optimizers.adam")
M.AdamW = require("klua.optimizers.adamw")
M.RMSprop = require("klua.optimizers.rmsprop")
M.Adagrad = require("klua.optimizers.adagrad")
M.Adadelta = require("klua.optimizers.adadelta")
M.Adamax = require("klua.optimizers.adamax")
M.Nadam = require("klua.optimizers.nadam")
M.Lion = require("klua.optimizers.lion")
M.schedules = require("klua.optimizers.schedules")

local by_name = {}
for _, name in ipairs { "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Lion" } do
  by_name[name:lower()] = M[name]
end

--- get(identifier): an optimizer from a name ("adam", "SGD"), a config table
-- {class_name=, config=}, or an optimizer (returned as is).
function M.get(id)
  if class.is_instance(id, M.Optimizer) then return id end
  if type(id) == "string" then
    local cls = by_name[id:lower()]
    if not cls then
      local names = {}
      for k in pairs(by_name) do names[#names + 1] = k end
      table.sort(names)
      core.raise(("optimizers.get: unknown optimizer '%s' (known: %s)"):format(id, table.concat(names, ", ")))
    end
    return cls()
  end
  if type(id) == "table" and id.class_name then
    local cls = by_name[tostring(id.class_name):lower()]
    if not cls then core.raise("optimizers.get: unknown optimizer class '" .. tostring(id.class_name) .. "'") end
    return cls:from_config(id.config or {})
  end
  core.raise("optimizers.get: could not interpret optimizer identifier: " .. tostring(id))
end

function M.serialize(opt)
  return { class_name = getmetatable(opt).__name, config = opt:get_config() }
end
M.deserialize = M.get

--- zip(a, b): {{a[1], b[1]}, {a[2], b[2]}, ...}. Entries may be nil (a
-- gradient list with holes): the length is the longer list's (.n counts).
function M.zip(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then core.raise("zip: expected two lists") end
  local n = math.max(a.n or table.maxn(a), b.n or table.maxn(b))
  local out = { n = n }
  for i = 1, n do out[i] = { a[i], b[i] } end
  return out
end

return M
