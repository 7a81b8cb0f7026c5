-- klua.optimizers — Keras's optimizers over fused C updates, learning rate
-- schedules, lookup by name, and klua.zip for the (gradient, variable) pairs
-- form of apply_gradients.
--   local opt = klua.optimizers.Adam{learning_rate = 1e-3}
--   opt:apply_gradients(klua.zip(grads, vars))
local core = require("klua.core")
local registry = require("klua.registry")
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
M.Adafactor = require("klua.optimizers.adafactor")
M.Ftrl = require("klua.optimizers.ftrl")
M.Lamb = require("klua.optimizers.lamb")
M.Muon = require("klua.optimizers.muon")
M.schedules = require("klua.optimizers.schedules")

local by_name = {}
for _, name in ipairs { "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Lion",
  "Adafactor", "Ftrl", "Lamb", "Muon" } do
  by_name[name] = M[name]
  by_name[name:lower()] = M[name]
  rawset(M[name], "_klua_builtin", true)   -- Optimizer:_consumes_gradients
end

--- get(identifier): an optimizer from a name ("adam", "SGD"), a registered
-- name, a config table {class_name=, config=}, or an optimizer (returned as
-- is); nil gives nil.
local GET = { who = "optimizers.get", kind = "optimizer", builtins = by_name, base = M.Optimizer,
  raise = core.raise }
function M.get(id) return registry.resolve(id, GET) end

--- serialize(optimizer): {class_name=, config=} for an optimizer, as Keras's serialize.
function M.serialize(opt) return registry.serialize(opt, core.raise) end
--- deserialize(config): the optimizer a serialize() table describes (the same as get).
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
