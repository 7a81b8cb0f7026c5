-- callbacks.lua — klua.callbacks: hooks into fit / evaluate / predict with
-- Keras's names and meanings. Epoch and batch numbers given to hooks are
-- 0-based counts, as in Keras (the progress bar prints "Epoch 1/10").
--
--   local Stop = klua.callbacks.Callback:extend("Stop")
--   function Stop:on_epoch_end(epoch, logs)
--     if logs.loss < 0.1 then self.model.stop_training = true end
--   end
--   model:fit{x = x, y = y, epochs = 50, callbacks = {Stop(), klua.callbacks.EarlyStopping{patience = 3}}}
--
-- Here: Callback, CallbackList, History, ProgbarLogger, ModelCheckpoint,
-- EarlyStopping, ReduceLROnPlateau, LearningRateScheduler, CSVLogger,
-- TerminateOnNaN, BackupAndRestore, LambdaCallback.
local core = require("klua.core")
local class = require("klua.class")
local Progbar = require("klua.progbar")

local callbacks = {}

local function warn(msg) io.stderr:write("klua warning: ", msg, "\n") end

--------------------------------------------------------------------------------
-- Callback

local Callback = class("Callback")
callbacks.Callback = Callback

function Callback:__init() self.model, self.params = nil, {} end
function Callback:set_model(model) self.model = model end
function Callback:set_params(params) self.params = params end

local HOOKS = {
  "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
  "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
  "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
  "on_predict_batch_begin", "on_predict_batch_end",
}
callbacks.HOOKS = HOOKS
for _, h in ipairs(HOOKS) do Callback[h] = function() end end
-- As in Keras, the train-batch hooks default to the older on_batch_* names.
function Callback:on_batch_begin() end
function Callback:on_batch_end() end
function Callback:on_train_batch_begin(batch, logs) self:on_batch_begin(batch, logs) end
function Callback:on_train_batch_end(batch, logs) self:on_batch_end(batch, logs) end

local function optimizer_of(cb, who)
  local opt = cb.model and rawget(cb.model, "optimizer")
  if not opt then core.raise(who .. ": the model has no optimizer; compile it first") end
  return opt
end

local function current_lr(opt, who)
  local lr = opt.learning_rate
  if type(lr) ~= "number" then
    core.raise(who .. ": the optimizer's learning_rate is a schedule; this callback needs a plain number")
  end
  return lr
end

-- "min" or "max" for a monitored quantity (Keras's mode="auto").
local HIGHER = { "acc", "accuracy", "auc", "precision", "recall", "f1", "fbeta", "iou" }
local function auto_mode(monitor)
  local base = monitor:gsub("^val_", "")
  for _, h in ipairs(HIGHER) do
    if base == h or base:find("_" .. h .. "$") or base:find("^" .. h .. "_") then return "max" end
  end
  return "min"
end
callbacks._auto_mode = auto_mode

local function check_mode(mode, monitor, who)
  mode = mode or "auto"
  if mode ~= "auto" and mode ~= "min" and mode ~= "max" then
    warn(("%s mode %s is unknown, fallback to auto mode."):format(who, tostring(mode)))
    mode = "auto"
  end
  if mode == "auto" then mode = auto_mode(monitor) end
  return mode
end

local function available(logs)
  local keys = {}
  for k in pairs(logs or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  return table.concat(keys, ",")
end

--------------------------------------------------------------------------------
-- CallbackList: what fit/evaluate/predict talk to.

local CallbackList = class("CallbackList")
callbacks.CallbackList = CallbackList

--- CallbackList(list, {add_history=, add_progbar=, model=, verbose=, epochs=, steps=})
function CallbackList:__init(list, kw)
  kw = kw or {}
  self.callbacks = {}
  if list ~= nil and type(list) ~= "table" then core.raise("callbacks must be a list of Callback objects") end
  if class.is_instance(list, Callback) then list = { list } end
  for i, cb in ipairs(list or {}) do
    if not class.is_instance(cb, Callback) then
      core.raise(("callbacks[%d] is not a klua.callbacks.Callback (got %s)"):format(i, class.name_of(cb)))
    end
    self.callbacks[#self.callbacks + 1] = cb
  end
  for _, cb in ipairs(self.callbacks) do
    if class.is_instance(cb, callbacks.History) then self.history = cb end
    if class.is_instance(cb, callbacks.ProgbarLogger) then self.progbar = cb end
  end
  if kw.add_history and not self.history then
    self.history = callbacks.History()
    self.callbacks[#self.callbacks + 1] = self.history
  end
  if kw.add_progbar and not self.progbar then
    self.progbar = callbacks.ProgbarLogger()
    self.callbacks[#self.callbacks + 1] = self.progbar
  end
  self.model = kw.model
  if kw.model then for _, cb in ipairs(self.callbacks) do cb:set_model(kw.model) end end
  local params = { verbose = kw.verbose, epochs = kw.epochs, steps = kw.steps }
  self:set_params(params)
end

function CallbackList:set_params(params)
  self.params = params
  for _, cb in ipairs(self.callbacks) do cb:set_params(params) end
end

function CallbackList:append(cb) self.callbacks[#self.callbacks + 1] = cb; cb:set_model(self.model); cb:set_params(self.params) end

for _, h in ipairs(HOOKS) do
  CallbackList[h] = function(self, a, b)
    for _, cb in ipairs(self.callbacks) do cb[h](cb, a, b) end
  end
end

--------------------------------------------------------------------------------
-- History

local History = Callback:extend("History")
callbacks.History = History

function History:__init()
  Callback.__init(self)
  self.history, self.epoch = {}, {}
end

function History:on_train_begin() self.epoch = {} end

History.__tostring = function(self)
  local keys = {}
  for k in pairs(self.history) do keys[#keys + 1] = k end
  table.sort(keys)
  return ("<History epochs=%d: %s>"):format(#self.epoch, table.concat(keys, ", "))
end

function History:on_epoch_end(epoch, logs)
  self.epoch[#self.epoch + 1] = epoch
  for k, v in pairs(logs or {}) do
    local list = self.history[k]
    if not list then list = {}; self.history[k] = list end
    list[#list + 1] = v
  end
  if self.model then rawset(self.model, "history", self) end
end

--------------------------------------------------------------------------------
-- ProgbarLogger

local ProgbarLogger = Callback:extend("ProgbarLogger")
callbacks.ProgbarLogger = ProgbarLogger

--- ProgbarLogger{stream=io.stdout}: prints the epoch header and progress bar
-- (what fit's verbose=1/2 show).
function ProgbarLogger:__init(kw)
  Callback.__init(self)
  kw = kw or {}
  self.stream = kw.stream or io.stdout
  self.verbose = 1
  self.epochs = 1
  self.in_fit = false
end

function ProgbarLogger:set_params(params)
  Callback.set_params(self, params)
  local v = params.verbose
  if v == nil or v == "auto" then v = 1 end
  self.verbose = v
  self.epochs = params.epochs or 1
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

--------------------------------------------------------------------------------
-- Improvement tests shared by EarlyStopping, ModelCheckpoint, ReduceLROnPlateau.

local function better(mode, a, b, delta)
  delta = delta or 0
  if mode == "min" then return a < b - delta end
  return a > b + delta
end

local function is_number(v) return type(v) == "number" end

local function log_value(logs, key)
  local v = logs and logs[key]
  if core.is_tensor(v) then v = v:item() end
  return v
end

--------------------------------------------------------------------------------
-- EarlyStopping

local EarlyStopping = Callback:extend("EarlyStopping")
callbacks.EarlyStopping = EarlyStopping

--- EarlyStopping{monitor="val_loss", min_delta=0, patience=0, verbose=0,
-- mode="auto", baseline=nil, restore_best_weights=false, start_from_epoch=0}
function EarlyStopping:__init(kw)
  Callback.__init(self)
  kw = kw or {}
  self.monitor = kw.monitor or "val_loss"
  self.patience = kw.patience or 0
  self.verbose = kw.verbose or 0
  self.baseline = kw.baseline
  self.min_delta = math.abs(kw.min_delta or 0)
  self.restore_best_weights = kw.restore_best_weights and true or false
  self.start_from_epoch = kw.start_from_epoch or 0
  self.mode = check_mode(kw.mode, self.monitor, "EarlyStopping")
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
      :format(self.monitor, available(logs)))
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
    print(("Epoch %d: early stopping"):format(self.stopped_epoch + 1))
  end
  if self.restore_best_weights and self.best_weights ~= nil then
    if self.verbose > 0 then
      print(("Restoring model weights from the end of the best epoch: %d."):format(self.best_epoch + 1))
    end
    self.model:set_weights(self.best_weights)
  end
end

function EarlyStopping:get_state()
  return { wait = self.wait, best = self.best, best_epoch = self.best_epoch, stopped_epoch = self.stopped_epoch }
end
function EarlyStopping:set_state(s)
  self.wait, self.best, self.best_epoch, self.stopped_epoch = s.wait, s.best, s.best_epoch, s.stopped_epoch
end

--------------------------------------------------------------------------------
-- ModelCheckpoint

local ModelCheckpoint = Callback:extend("ModelCheckpoint")
callbacks.ModelCheckpoint = ModelCheckpoint

--- ModelCheckpoint(filepath, {monitor="val_loss", verbose=0, save_best_only=false,
-- save_weights_only=false, mode="auto", save_freq="epoch", initial_value_threshold=nil}).
-- filepath may name log values and the 1-based epoch: "ckpt-{epoch:02d}-{val_loss:.2f}.klua".
function ModelCheckpoint:__init(filepath, kw)
  Callback.__init(self)
  if type(filepath) == "table" and kw == nil then kw, filepath = filepath, filepath.filepath end
  if type(filepath) ~= "string" or filepath == "" then core.raise("ModelCheckpoint: filepath must be a non-empty string") end
  kw = kw or {}
  self.filepath = filepath
  self.monitor = kw.monitor or "val_loss"
  self.verbose = kw.verbose or 0
  self.save_best_only = kw.save_best_only and true or false
  self.save_weights_only = kw.save_weights_only and true or false
  self.save_freq = kw.save_freq or "epoch"
  if self.save_freq ~= "epoch" and (type(self.save_freq) ~= "number" or self.save_freq < 1) then
    core.raise("ModelCheckpoint: save_freq must be \"epoch\" or a positive number of batches. Received: save_freq=" .. tostring(self.save_freq))
  end
  self.mode = check_mode(kw.mode, self.monitor, "ModelCheckpoint")
  self.best = kw.initial_value_threshold or (self.mode == "min" and math.huge or -math.huge)
  self.batches_seen = 0
  self.current_epoch = 0
end

-- Python-style fields: {epoch}, {epoch:02d}, {val_loss:.4f}.
local function format_path(path, epoch, logs)
  return (path:gsub("{([%w_]+):?([^}]*)}", function(key, spec)
    local v
    if key == "epoch" then v = epoch + 1 else v = log_value(logs, key) end
    if v == nil then core.raise(("ModelCheckpoint: the filepath names '%s', which is not in the logs (%s)"):format(key, available(logs))) end
    if spec == "" then
      if type(v) == "number" and v == math.floor(v) then return ("%d"):format(v) end
      return tostring(v)
    end
    return ("%" .. spec):format(v)
  end))
end
callbacks._format_path = format_path

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
        print(("\nEpoch %d: %s did not improve from %.5f"):format(epoch + 1, self.monitor, self.best))
      end
      return
    end
    if self.verbose > 0 then
      print(("\nEpoch %d: %s improved from %.5f to %.5f, saving model to %s"):format(epoch + 1, self.monitor, self.best, current, path))
    end
    self.best = current
  elseif self.verbose > 0 then
    print(("\nEpoch %d: saving model to %s"):format(epoch + 1, path))
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
function ModelCheckpoint:set_state(s) self.best, self.batches_seen = s.best, s.batches_seen end

--------------------------------------------------------------------------------
-- ReduceLROnPlateau

local ReduceLROnPlateau = Callback:extend("ReduceLROnPlateau")
callbacks.ReduceLROnPlateau = ReduceLROnPlateau

--- ReduceLROnPlateau{monitor="val_loss", factor=0.1, patience=10, verbose=0,
-- mode="auto", min_delta=1e-4, cooldown=0, min_lr=0}
function ReduceLROnPlateau:__init(kw)
  Callback.__init(self)
  kw = kw or {}
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
  self.mode = check_mode(kw.mode, self.monitor, "ReduceLROnPlateau")
  self:_reset()
end

function ReduceLROnPlateau:_reset()
  self.best = self.mode == "min" and math.huge or -math.huge
  self.cooldown_counter, self.wait = 0, 0
end

function ReduceLROnPlateau:on_train_begin() self:_reset() end

function ReduceLROnPlateau:on_epoch_end(epoch, logs)
  local opt = optimizer_of(self, "ReduceLROnPlateau")
  logs = logs or {}
  logs.learning_rate = current_lr(opt, "ReduceLROnPlateau")
  local current = log_value(logs, self.monitor)
  if current == nil then
    warn(("Learning rate reduction is conditioned on metric `%s` which is not available. Available metrics are: %s.")
      :format(self.monitor, available(logs)))
    return
  end
  if self.cooldown_counter > 0 then
    self.cooldown_counter = self.cooldown_counter - 1
    self.wait = 0
  end
  if better(self.mode, current, self.best, self.min_delta) then
    self.best = current
    self.wait = 0
  elseif self.cooldown_counter <= 0 then
    self.wait = self.wait + 1
    if self.wait >= self.patience then
      local old = current_lr(opt, "ReduceLROnPlateau")
      if old > self.min_lr then
        local new = math.max(old * self.factor, self.min_lr)
        opt.learning_rate = new
        if self.verbose > 0 then
          print(("\nEpoch %d: ReduceLROnPlateau reducing learning rate to %s."):format(epoch + 1, tostring(new)))
        end
        self.cooldown_counter = self.cooldown
        self.wait = 0
      end
    end
  end
end

function ReduceLROnPlateau:get_state() return { best = self.best, wait = self.wait, cooldown_counter = self.cooldown_counter } end
function ReduceLROnPlateau:set_state(s) self.best, self.wait, self.cooldown_counter = s.best, s.wait, s.cooldown_counter end

--------------------------------------------------------------------------------
-- LearningRateScheduler

local LearningRateScheduler = Callback:extend("LearningRateScheduler")
callbacks.LearningRateScheduler = LearningRateScheduler

--- LearningRateScheduler(schedule, {verbose=0}): schedule(epoch, lr) -> new lr
-- at the start of each epoch (epoch 0-based).
function LearningRateScheduler:__init(schedule, kw)
  Callback.__init(self)
  if type(schedule) == "table" and kw == nil and getmetatable(schedule) == nil then kw, schedule = schedule, schedule.schedule end
  if type(schedule) ~= "function" then core.raise("LearningRateScheduler: schedule must be a function(epoch, lr)") end
  self.schedule = schedule
  self.verbose = (kw or {}).verbose or 0
end

function LearningRateScheduler:on_epoch_begin(epoch)
  local opt = optimizer_of(self, "LearningRateScheduler")
  local lr = self.schedule(epoch, current_lr(opt, "LearningRateScheduler"))
  if core.is_tensor(lr) then lr = lr:item() end
  if type(lr) ~= "number" or lr ~= lr then
    core.raise(("LearningRateScheduler: the schedule returned %s for epoch %d; expected a number"):format(tostring(lr), epoch))
  end
  opt.learning_rate = lr
  if self.verbose > 0 then
    print(("\nEpoch %d: LearningRateScheduler setting learning rate to %s."):format(epoch + 1, tostring(lr)))
  end
end

function LearningRateScheduler:on_epoch_end(epoch, logs)
  if logs then logs.learning_rate = current_lr(optimizer_of(self, "LearningRateScheduler"), "LearningRateScheduler") end
end

--------------------------------------------------------------------------------
-- CSVLogger

local CSVLogger = Callback:extend("CSVLogger")
callbacks.CSVLogger = CSVLogger

--- CSVLogger(filename, {separator=",", append=false}): one row per epoch.
function CSVLogger:__init(filename, kw)
  Callback.__init(self)
  if type(filename) == "table" and kw == nil then kw, filename = filename, filename.filename end
  if type(filename) ~= "string" then core.raise("CSVLogger: filename must be a string") end
  kw = kw or {}
  self.filename = filename
  self.sep = kw.separator or ","
  self.append = kw.append and true or false
  self.keys = nil
end

-- The shortest text that reads back as the same number (Python's repr).
local function number_text(v)
  if type(v) ~= "number" then return tostring(v) end
  if v ~= v then return "nan" end
  if v == math.huge then return "inf" elseif v == -math.huge then return "-inf" end
  for prec = 1, 17 do
    local s = ("%." .. prec .. "g"):format(v)
    if tonumber(s) == v then
      if not s:find("[%.eni]") then s = s .. ".0" end
      return s
    end
  end
  return ("%.17g"):format(v)
end
callbacks._number_text = number_text

local function csv_field(s, sep)
  if s:find('[' .. sep:gsub("%p", "%%%0") .. '"\n]') then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

function CSVLogger:on_train_begin()
  local has_header = false
  if self.append then
    local f = io.open(self.filename, "r")
    if f then
      has_header = (f:read("*l") or "") ~= ""
      f:close()
    end
  end
  local f, err = io.open(self.filename, self.append and "a" or "w")
  if not f then core.raise("CSVLogger: cannot open " .. self.filename .. ": " .. tostring(err)) end
  self.file = f
  self.write_header = not has_header
  self.keys = nil
end

function CSVLogger:on_epoch_end(epoch, logs)
  logs = logs or {}
  if not self.keys then
    local keys = {}
    for k in pairs(logs) do keys[#keys + 1] = k end
    table.sort(keys)
    self.keys = keys
    if self.write_header then
      local head = { "epoch" }
      for _, k in ipairs(keys) do head[#head + 1] = csv_field(k, self.sep) end
      self.file:write(table.concat(head, self.sep), "\n")
    end
  end
  local row = { tostring(epoch) }
  for _, k in ipairs(self.keys) do
    local v = log_value(logs, k)
    row[#row + 1] = v == nil and "NA" or csv_field(number_text(v), self.sep)
  end
  self.file:write(table.concat(row, self.sep), "\n")
  self.file:flush()
end

function CSVLogger:on_train_end()
  if self.file then self.file:close(); self.file = nil end
end

--------------------------------------------------------------------------------
-- TerminateOnNaN

local TerminateOnNaN = Callback:extend("TerminateOnNaN")
callbacks.TerminateOnNaN = TerminateOnNaN

function TerminateOnNaN:on_batch_end(batch, logs)
  local loss = log_value(logs, "loss")
  if loss ~= nil and (loss ~= loss or loss == math.huge or loss == -math.huge) then
    print(("Batch %d: Invalid loss, terminating training"):format(batch))
    self.model.stop_training = true
  end
end

--------------------------------------------------------------------------------
-- BackupAndRestore

local BackupAndRestore = Callback:extend("BackupAndRestore")
callbacks.BackupAndRestore = BackupAndRestore

--- BackupAndRestore(backup_dir, {save_freq="epoch", delete_checkpoint=true}):
-- saves weights, optimizer state, the epoch, klua.random's state and the
-- state of the other callbacks at each epoch end (atomically); a later fit
-- with the same callback resumes from there as if never interrupted. The
-- backup is deleted when training ends normally.
function BackupAndRestore:__init(backup_dir, kw)
  Callback.__init(self)
  if type(backup_dir) == "table" and kw == nil then kw, backup_dir = backup_dir, backup_dir.backup_dir end
  if type(backup_dir) ~= "string" or backup_dir == "" then core.raise("BackupAndRestore: backup_dir must be a non-empty string") end
  kw = kw or {}
  self.backup_dir = backup_dir
  self.save_freq = kw.save_freq or "epoch"
  if self.save_freq ~= "epoch" and self.save_freq ~= false then
    core.raise("BackupAndRestore: only save_freq=\"epoch\" (or false) is supported. Received: save_freq=" .. tostring(self.save_freq))
  end
  self.delete_checkpoint = kw.delete_checkpoint ~= false
  self.path = backup_dir:gsub("/+$", "") .. "/backup.klua"
end

function BackupAndRestore:set_callback_list(list) self.callback_list = list end

function BackupAndRestore:on_train_begin()
  local saving = require("klua.saving")
  os.execute(("mkdir -p '%s'"):format(self.backup_dir:gsub("'", "'\\''")))
  local f = io.open(self.path, "rb")
  if not f then return end
  f:close()
  local state = saving.restore_training_state(self.model, self.path, self.callback_list and self.callback_list.callbacks)
  rawset(self.model, "_initial_epoch", state.epoch + 1)
end

function BackupAndRestore:on_epoch_end(epoch)
  if self.save_freq ~= "epoch" then return end
  require("klua.saving").save_training_state(self.model, self.path, {
    epoch = epoch, callbacks = self.callback_list and self.callback_list.callbacks,
  })
end

function BackupAndRestore:on_train_end()
  if self.delete_checkpoint then os.remove(self.path) end
end

--------------------------------------------------------------------------------
-- LambdaCallback

local LambdaCallback = Callback:extend("LambdaCallback")
callbacks.LambdaCallback = LambdaCallback

--- LambdaCallback{on_epoch_end = function(epoch, logs) ... end, ...}: any hook
-- name (on_batch_begin/on_batch_end too) as a plain function.
function LambdaCallback:__init(kw)
  Callback.__init(self)
  kw = kw or {}
  local known = { on_batch_begin = true, on_batch_end = true }
  for _, h in ipairs(HOOKS) do known[h] = true end
  for k, f in pairs(kw) do
    if not known[k] then core.raise(("LambdaCallback: unknown hook `%s`"):format(tostring(k))) end
    if type(f) ~= "function" then core.raise(("LambdaCallback: %s must be a function"):format(k)) end
    self[k] = function(_, a, b) return f(a, b) end
  end
end

return callbacks
