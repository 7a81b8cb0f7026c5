-- model_checkpoint.lua — ModelCheckpoint: saves the model or its weights during fit.
-- Every epoch or every N batches, optionally only when the monitored value improves.
local core = require("klua.core")
local Callback = require("klua.callbacks.callback")
local monitor = require("klua.callbacks.monitor")

local better, log_value, warn = monitor.better, monitor.log_value, monitor.warn

local ModelCheckpoint = Callback:extend("ModelCheckpoint")

--- ModelCheckpoint{filepath, monitor="val_loss", verbose=0, save_best_only=false, save_weights_only=false, mode="auto",
-- save_freq="epoch", initial_value_threshold=nil} (also ModelCheckpoint(filepath, {...})): saves the model (or its
-- weights) each epoch or every save_freq batches; filepath may name log values and the 1-based epoch:
-- "ckpt-{epoch:02d}-{val_loss:.2f}.klua".
function ModelCheckpoint:__init(filepath, kw)
  Callback.__init(self)
  if type(filepath) == "table" and kw == nil then kw, filepath = filepath, filepath.filepath end
  if type(filepath) ~= "string" or filepath == "" then core.raise("ModelCheckpoint: filepath must be a non-empty string") end
  kw = core.options(kw, "ModelCheckpoint")
  self.filepath = filepath
  self.monitor = kw.monitor or "val_loss"
  self.verbose = kw.verbose or 0
  self.save_best_only = kw.save_best_only and true or false
  self.save_weights_only = kw.save_weights_only and true or false
  self.save_freq = kw.save_freq or "epoch"
  if self.save_freq ~= "epoch" and (type(self.save_freq) ~= "number" or self.save_freq < 1) then
    core.raise("ModelCheckpoint: save_freq must be \"epoch\" or a positive number of batches. Received: save_freq=" .. tostring(self.save_freq))
  end
  self.mode = monitor.check_mode(kw.mode, self.monitor, "ModelCheckpoint")
  self.best = kw.initial_value_threshold or (self.mode == "min" and math.huge or -math.huge)
  self.batches_seen = 0
  self.current_epoch = 0
end

-- Python-style fields: {epoch}, {epoch:02d}, {val_loss:.4f}.
local function format_path(path, epoch, logs)
  return (path:gsub("{([%w_]+):?([^}]*)}", function(key, spec)
    local v
    if key == "epoch" then v = epoch + 1 else v = log_value(logs, key) end
    if v == nil then core.raise(("ModelCheckpoint: the filepath names '%s', which is not in the logs (%s)"):format(key, monitor.available(logs))) end
    if spec == "" then
      if type(v) == "number" and v == math.floor(v) then return ("%d"):format(v) end
      return tostring(v)
    end
    return ("%" .. spec):format(v)
  end))
end
-- Exported (as klua.callbacks._format_path) for the tests.
ModelCheckpoint._format_path = format_path

function ModelCheckpoint:_save(epoch, logs)
  local path = format_path(self.filepath, epoch, logs)
  if self.save_best_only then
    local current = log_value(logs, self.monitor)
    if current == nil then
      warn(("Can save best model only with %s available, skipping."):format(self.monitor))
      return
    end
    if not better(self.mode, current, self.best) then
      if self.verbose > 0 then
        monitor.print(("\nEpoch %d: %s did not improve from %.5f"):format(epoch + 1, self.monitor, self.best))
      end
      return
    end
    if self.verbose > 0 then
      monitor.print(("\nEpoch %d: %s improved from %.5f to %.5f, saving model to %s"):format(epoch + 1, self.monitor, self.best, current, path))
    end
    self.best = current
  elseif self.verbose > 0 then
    monitor.print(("\nEpoch %d: saving model to %s"):format(epoch + 1, path))
  end
  if self.save_weights_only then self.model:save_weights(path) else self.model:save(path) end
  self.last_saved = path
end

function ModelCheckpoint:on_epoch_begin(epoch) self.current_epoch = epoch end
function ModelCheckpoint:on_train_batch_end(batch, logs)
  if self.save_freq == "epoch" then return end
  self.batches_seen = self.batches_seen + 1
  if self.batches_seen % self.save_freq == 0 then self:_save(self.current_epoch, logs) end
end
function ModelCheckpoint:on_epoch_end(epoch, logs)
  if self.save_freq == "epoch" then self:_save(epoch, logs) end
end

function ModelCheckpoint:get_state() return { best = self.best, batches_seen = self.batches_seen } end
function ModelCheckpoint:set_state(s)
  s = core.options(s, "ModelCheckpoint.set_state")
  self.best, self.batches_seen = s.best, s.batches_seen
end

return ModelCheckpoint
