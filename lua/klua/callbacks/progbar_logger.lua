-- progbar_logger.lua — ProgbarLogger: the epoch header and progress bar of verbose=1 or 2.
local core = require("klua.core")
local Callback = require("klua.callbacks.callback")
local Progbar = require("klua.progbar")
local distribution = require("klua.distribution")

local ProgbarLogger = Callback:extend("ProgbarLogger")

--- ProgbarLogger{stream=io.stdout}: prints the epoch header and progress bar
-- (what fit's verbose=1/2 show).
function ProgbarLogger:__init(kw)
  Callback.__init(self)
  kw = core.options(kw, "ProgbarLogger")
  self.stream = kw.stream or io.stdout
  self.verbose = 1
  self.epochs = 1
  self.in_fit = false
end

function ProgbarLogger:set_params(params)
  Callback.set_params(self, params)
  params = self.params
  local v = params.verbose
  if v == nil or v == "auto" then v = 1 end
  if not distribution.is_chief() then v = 0 end   -- under DataParallel only rank 0 prints
  self.verbose = v
  self.epochs = params.epochs or 1
  if v ~= 0 and v ~= 1 and v ~= 2 then core.raise("ProgbarLogger.set_params: verbose must be 0, 1, 2 or \"auto\", got " .. core.describe(v)) end
  if type(self.epochs) ~= "number" then core.raise("ProgbarLogger.set_params: epochs must be a number, got " .. core.describe(self.epochs)) end
  self.target = params.steps
end

-- Logs in the order the model reports them (loss, metrics, val_...), then the rest.
function ProgbarLogger:_values(logs)
  local order, seen = {}, {}
  local names = self.model and self.model.metrics_names or {}
  local function push(k)
    if logs[k] ~= nil and not seen[k] then seen[k] = true; order[#order + 1] = { k, logs[k] } end
  end
  for _, k in ipairs(names) do push(k) end
  for _, k in ipairs(names) do push("val_" .. k) end
  local rest = {}
  for k in pairs(logs or {}) do if not seen[k] then rest[#rest + 1] = k end end
  table.sort(rest)
  for _, k in ipairs(rest) do push(k) end
  return order
end

function ProgbarLogger:_new_bar(target)
  self.seen = 0
  self.bar = Progbar(target, { verbose = self.verbose, stream = self.stream })
end

function ProgbarLogger:on_train_begin() self.in_fit = true end
function ProgbarLogger:on_train_end() self.in_fit = false end

function ProgbarLogger:on_epoch_begin(epoch)
  if self.verbose == 0 then return end
  self:_new_bar(self.target)
  self.stream:write(("Epoch %d/%d\n"):format(epoch + 1, self.epochs))
  self.stream:flush()
end

function ProgbarLogger:on_train_batch_end(batch, logs)
  if self.verbose == 0 or not self.bar then return end
  self.seen = batch + 1
  self.bar:update(self.seen, self:_values(logs or {}), false)
end

function ProgbarLogger:on_epoch_end(epoch, logs)
  if self.verbose == 0 or not self.bar then return end
  self.bar:update(self.target or self.seen, self:_values(logs or {}), true)
end

-- evaluate's own bar; inside fit the validation pass stays silent.
function ProgbarLogger:on_test_begin()
  if self.in_fit or self.verbose == 0 then return end
  self:_new_bar(self.target)
end
function ProgbarLogger:on_test_batch_end(batch, logs)
  if self.in_fit or self.verbose == 0 or not self.bar then return end
  self.seen = batch + 1
  self.bar:update(self.seen, self:_values(logs or {}), false)
end
function ProgbarLogger:on_test_end(logs)
  if self.in_fit or self.verbose == 0 or not self.bar then return end
  self.bar:update(self.target or self.seen, self:_values(logs or {}), true)
end

function ProgbarLogger:on_predict_begin()
  if self.verbose == 0 then return end
  self:_new_bar(self.target)
end
function ProgbarLogger:on_predict_batch_end(batch)
  if self.verbose == 0 or not self.bar then return end
  self.seen = batch + 1
  self.bar:update(self.seen, {}, false)
end
function ProgbarLogger:on_predict_end()
  if self.verbose == 0 or not self.bar then return end
  self.bar:update(self.target or self.seen, {}, true)
end

return ProgbarLogger
