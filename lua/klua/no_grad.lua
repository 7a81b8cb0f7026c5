-- no_grad.lua — klua.no_grad(fn, ...): run fn with gradient recording paused
-- on every tape, and resume it however fn ends (return or error). This is the
-- only place that calls the C pause API, so an error raised inside a hook
-- (a constraint, a callback, a custom loss or metric) can never leave
-- recording switched off for the rest of the process.
--   local y = klua.no_grad(function() return model(x) end)
local core = require("klua.core")
local C = core.C

local pause, resume = C.kl_grad_pause, C.kl_grad_resume

local function finish(token, ok, ...)
  resume(token)
  if not ok then error((...), 0) end
  return ...
end

--- no_grad(fn, ...): fn(...)'s results, computed with recording paused on every tape (resumed however fn ends).
local function no_grad(fn, ...)
  return finish(pause(), pcall(fn, ...))
end

return no_grad
