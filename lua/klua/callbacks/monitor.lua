-- monitor.lua — helpers the callbacks share for reading the logs and the learning rate.
-- A logged value, the min/max mode of a monitored one and its improvement
-- test, the warning channel; the learning rate for the two callbacks that change it.
local core = require("klua.core")
local distribution = require("klua.distribution")

local M = {}

function M.warn(msg) io.stderr:write("klua warning: ", msg, "\n") end

--- print(...): print, on rank 0 only under a multi-process distribution.
function M.print(...) if distribution.is_chief() then print(...) end end

-- "min" or "max" for a monitored quantity (Keras's mode="auto").
local HIGHER = { "acc", "accuracy", "auc", "precision", "recall", "f1", "fbeta", "iou" }
function M.auto_mode(monitor)
  local base = monitor:gsub("^val_", "")
  for _, h in ipairs(HIGHER) do
    if base == h or base:find("_" .. h .. "$") or base:find("^" .. h .. "_") then return "max" end
  end
  return "min"
end

--- check_mode(mode, monitor, who) -> "min" | "max"; an unknown mode warns
-- and falls back to "auto", as Keras does.
function M.check_mode(mode, monitor, who)
  mode = mode or "auto"
  if mode ~= "auto" and mode ~= "min" and mode ~= "max" then
    M.warn(("%s mode %s is unknown, fallback to auto mode."):format(who, tostring(mode)))
    mode = "auto"
  end
  if mode == "auto" then mode = M.auto_mode(monitor) end
  return mode
end

--- available(logs) -> "a,b,c": the log keys, sorted, for messages.
function M.available(logs)
  local keys = {}
  for k in pairs(logs or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  return table.concat(keys, ",")
end

--- better(mode, a, b, delta): has a improved on b by more than delta?
function M.better(mode, a, b, delta)
  delta = delta or 0
  if mode == "min" then return a < b - delta end
  return a > b + delta
end

--- log_value(logs, key): the logged number (a scalar tensor read out), or nil.
function M.log_value(logs, key)
  local v = logs and logs[key]
  if core.is_tensor(v) then v = v:item() end
  return v
end

--- optimizer_of(cb, who): the compiled model's optimizer, or an error naming who.
function M.optimizer_of(cb, who)
  local opt = cb.model and rawget(cb.model, "optimizer")
  if not opt then core.raise(who .. ": the model has no optimizer; compile it first") end
  return opt
end

--- current_lr(opt, who): the learning rate as a number; a schedule is an error.
function M.current_lr(opt, who)
  local lr = opt.learning_rate
  if type(lr) ~= "number" then
    core.raise(who .. ": the optimizer's learning_rate is a schedule; this callback needs a plain number")
  end
  return lr
end

return M
