-- early_stopping.lua — EarlyStopping: stops fit once a monitored value stops improving.
-- Optionally restores the best epoch's weights at the end.
local core = require("klua.core")
local Callback = require("klua.callbacks.callback")
local monitor = require("klua.callbacks.monitor")

local better, log_value, warn = monitor.better, monitor.log_value, monitor.warn

local EarlyStopping = Callback:extend("EarlyStopping")

--- EarlyStopping{monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=nil,
-- restore_best_weights=false, start_from_epoch=0}: stops fit when the monitored value has not improved by
-- min_delta for patience epochs.
function EarlyStopping:__init(kw)
  Callback.__init(self)
  kw = core.options(kw, "EarlyStopping")
  self.monitor = kw.monitor or "val_loss"
  self.patience = kw.patience or 0
  self.verbose = kw.verbose or 0
  self.baseline = kw.baseline
  self.min_delta = math.abs(kw.min_delta or 0)
  self.restore_best_weights = kw.restore_best_weights and true or false
  self.start_from_epoch = kw.start_from_epoch or 0
  self.mode = monitor.check_mode(kw.mode, self.monitor, "EarlyStopping")
  self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
end

function EarlyStopping:on_train_begin()
  self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
  self.best = self.mode == "min" and math.huge or -math.huge
  self.best_weights = nil
end

function EarlyStopping:on_epoch_end(epoch, logs)
  local current = log_value(logs, self.monitor)
  if current == nil then
    warn(("Early stopping conditioned on metric `%s` which is not available. Available metrics are: %s")
      :format(self.monitor, monitor.available(logs)))
    return
  end
  if epoch < self.start_from_epoch then return end
  if self.restore_best_weights and self.best_weights == nil then
    self.best_weights = self.model:get_weights()
  end
  self.wait = self.wait + 1
  if better(self.mode, current, self.best, self.min_delta) then
    self.best = current
    self.best_epoch = epoch
    if self.restore_best_weights then self.best_weights = self.model:get_weights() end
    if self.baseline == nil or better(self.mode, current, self.baseline, self.min_delta) then self.wait = 0 end
    return
  end
  if self.wait >= self.patience and epoch > 0 then
    self.stopped_epoch = epoch
    self.model.stop_training = true
  end
end

function EarlyStopping:on_train_end()
  if self.stopped_epoch > 0 and self.verbose > 0 then
    monitor.print(("Epoch %d: early stopping"):format(self.stopped_epoch + 1))
  end
  if self.restore_best_weights and self.best_weights ~= nil then
    if self.verbose > 0 then
      monitor.print(("Restoring model weights from the end of the best epoch: %d."):format(self.best_epoch + 1))
    end
    self.model:set_weights(self.best_weights)
  end
end

-- get_state / set_state: what BackupAndRestore keeps across an interrupted fit.
function EarlyStopping:get_state()
  return { wait = self.wait, best = self.best, best_epoch = self.best_epoch, stopped_epoch = self.stopped_epoch }
end
function EarlyStopping:set_state(s)
  s = core.options(s, "EarlyStopping.set_state")
  self.wait, self.best, self.best_epoch, self.stopped_epoch = s.wait, s.best, s.best_epoch, s.stopped_epoch
end

return EarlyStopping
