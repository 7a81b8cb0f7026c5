-- reduce_lr_on_plateau.lua — ReduceLROnPlateau: lowers the learning rate when a value stops improving.
-- Multiplies it by `factor` after `patience` epochs without improvement.
local core = require("klua.core")
local Callback = require("klua.callbacks.callback")
local monitor = require("klua.callbacks.monitor")

local WHO = "ReduceLROnPlateau"

local ReduceLROnPlateau = Callback:extend("ReduceLROnPlateau")

--- ReduceLROnPlateau{monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4, cooldown=0,
-- min_lr=0}: multiplies the learning rate by factor when the monitored value has not improved for patience epochs.
function ReduceLROnPlateau:__init(kw)
  Callback.__init(self)
  kw = core.options(kw, "ReduceLROnPlateau")
  self.monitor = kw.monitor or "val_loss"
  self.factor = kw.factor or 0.1
  if self.factor >= 1 then
    core.raise("ReduceLROnPlateau does not support a factor >= 1.0. Received factor=" .. tostring(self.factor))
  end
  self.patience = kw.patience or 10
  self.verbose = kw.verbose or 0
  self.min_delta = kw.min_delta or 1e-4
  self.cooldown = kw.cooldown or 0
  self.min_lr = kw.min_lr or 0
  self.mode = monitor.check_mode(kw.mode, self.monitor, WHO)
  self:_reset()
end

function ReduceLROnPlateau:_reset()
  self.best = self.mode == "min" and math.huge or -math.huge
  self.cooldown_counter, self.wait = 0, 0
end

function ReduceLROnPlateau:on_train_begin() self:_reset() end

function ReduceLROnPlateau:on_epoch_end(epoch, logs)
  local opt = monitor.optimizer_of(self, WHO)
  logs = logs or {}
  logs.learning_rate = monitor.current_lr(opt, WHO)
  local current = monitor.log_value(logs, self.monitor)
  if current == nil then
    monitor.warn(("Learning rate reduction is conditioned on metric `%s` which is not available. Available metrics are: %s.")
      :format(self.monitor, monitor.available(logs)))
    return
  end
  if self.cooldown_counter > 0 then
    self.cooldown_counter = self.cooldown_counter - 1
    self.wait = 0
  end
  if monitor.better(self.mode, current, self.best, self.min_delta) then
    self.best = current
    self.wait = 0
  elseif self.cooldown_counter <= 0 then
    self.wait = self.wait + 1
    if self.wait >= self.patience then
      local old = monitor.current_lr(opt, WHO)
      if old > self.min_lr then
        local new = math.max(old * self.factor, self.min_lr)
        opt.learning_rate = new
        if self.verbose > 0 then
          monitor.print(("\nEpoch %d: ReduceLROnPlateau reducing learning rate to %s."):format(epoch + 1, tostring(new)))
        end
        self.cooldown_counter = self.cooldown
        self.wait = 0
      end
    end
  end
end

function ReduceLROnPlateau:get_state() return { best = self.best, wait = self.wait, cooldown_counter = self.cooldown_counter } end
function ReduceLROnPlateau:set_state(s)
  s = core.options(s, "ReduceLROnPlateau.set_state")
  self.best, self.wait, self.cooldown_counter = s.best, s.wait, s.cooldown_counter
end

return ReduceLROnPlateau
