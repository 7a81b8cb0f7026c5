-- lambda_callback.lua — LambdaCallback: a callback built from plain functions.
local core = require("klua.core")
local Callback = require("klua.callbacks.callback")
local HOOKS = require("klua.callbacks.hooks")

local LambdaCallback = Callback:extend("LambdaCallback")

--- LambdaCallback{on_epoch_end = function(epoch, logs) ... end, ...}: any hook
-- name (on_batch_begin/on_batch_end too) as a plain function.
function LambdaCallback:__init(kw)
  Callback.__init(self)
  kw = core.options(kw, "LambdaCallback")
  local known = { on_batch_begin = true, on_batch_end = true }
  for _, h in ipairs(HOOKS) do known[h] = true end
  for k, f in pairs(kw) do
    if not known[k] then core.raise(("LambdaCallback: unknown hook `%s`"):format(tostring(k))) end
    if type(f) ~= "function" then core.raise(("LambdaCallback: %s must be a function"):format(k)) end
    self[k] = function(_, a, b) return f(a, b) end
  end
end

return LambdaCallback
