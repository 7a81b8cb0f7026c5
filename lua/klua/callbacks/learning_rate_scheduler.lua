-- learning_rate_scheduler.lua — LearningRateScheduler: lr = schedule(epoch, lr) at each epoch's start.
local core = require("klua.core")
local Callback = require("klua.callbacks.callback")
local monitor = require("klua.callbacks.monitor")

local WHO = "LearningRateScheduler"

local LearningRateScheduler = Callback:extend("LearningRateScheduler")

--- LearningRateScheduler(schedule, {verbose=0}): schedule(epoch, lr) -> new lr
-- at the start of each epoch (epoch 0-based).
function LearningRateScheduler:__init(schedule, kw)
  Callback.__init(self)
  if type(schedule) == "table" and kw == nil and getmetatable(schedule) == nil then kw, schedule = schedule, schedule.schedule end
  if type(schedule) ~= "function" then core.raise("LearningRateScheduler: schedule must be a function(epoch, lr)") end
  self.schedule = schedule
  self.verbose = core.options(kw, "LearningRateScheduler").verbose or 0
end

function LearningRateScheduler:on_epoch_begin(epoch)
  local opt = monitor.optimizer_of(self, WHO)
  local lr = self.schedule(epoch, monitor.current_lr(opt, WHO))
  if core.is_tensor(lr) then lr = lr:item() end
  if type(lr) ~= "number" or lr ~= lr then
    core.raise(("LearningRateScheduler: the schedule returned %s for epoch %d; expected a number"):format(tostring(lr), epoch))
  end
  opt.learning_rate = lr
  if self.verbose > 0 then
    monitor.print(("\nEpoch %d: LearningRateScheduler setting learning rate to %s."):format(epoch + 1, tostring(lr)))
  end
end

function LearningRateScheduler:on_epoch_end(epoch, logs)
  if logs then logs.learning_rate = monitor.current_lr(monitor.optimizer_of(self, WHO), WHO) end
end

return LearningRateScheduler
