-- callback.lua — Callback: the base class; every hook is a no-op to override.
-- Epoch and batch numbers given to hooks are 0-based counts, as in Keras.
local class = require("klua.class")
local core = require("klua.core")
local HOOKS = require("klua.callbacks.hooks")

local Callback = class("Callback")

--- Callback(): the base class of callbacks: subclass it (Callback:extend("Name")) and define the hooks you need;
-- fit, evaluate and predict call them with 0-based epoch and batch numbers and a logs table.
--- Callback:get_state(): a plain table of what the callback must carry over a restart (BackupAndRestore saves it).
--- Callback:set_state(state): takes back what get_state returned.
function Callback:__init() self.model, self.params = nil, {} end
--- Callback:set_model(model): the model the hooks act on (self.model).
function Callback:set_model(model)
  if model ~= nil and (type(model) ~= "table" or rawget(model, "_klua_layer") ~= true) then
    core.raise(("%s.set_model: expected a model, got %s"):format(class.name_of(self), core.describe(model)))
  end
  self.model = model
end
--- Callback:set_params(params): {verbose=, epochs=, steps=} of the run (self.params).
function Callback:set_params(params)
  if params ~= nil and (type(params) ~= "table" or core.class_name_of(params)) then
    core.raise(("%s.set_params: expected a table like {epochs = 1, steps = 10, verbose = 1}, got %s")
      :format(class.name_of(self), core.describe(params)))
  end
  self.params = params or {}
end

--- Callback:on_train_begin(logs): at the start of fit.
--- Callback:on_train_end(logs): at the end of fit.
--- Callback:on_epoch_begin(epoch, logs): at the start of each epoch (0-based).
--- Callback:on_epoch_end(epoch, logs): at the end of each epoch, logs holding the epoch's loss, metrics and val_ values.
--- Callback:on_test_begin(logs): at the start of evaluate (and of fit's validation).
--- Callback:on_test_end(logs): at the end of evaluate.
--- Callback:on_test_batch_begin(batch, logs): before each evaluation batch.
--- Callback:on_test_batch_end(batch, logs): after each evaluation batch.
--- Callback:on_predict_begin(logs): at the start of predict.
--- Callback:on_predict_end(logs): at the end of predict.
--- Callback:on_predict_batch_begin(batch, logs): before each prediction batch.
--- Callback:on_predict_batch_end(batch, logs): after each prediction batch.
for _, h in ipairs(HOOKS) do Callback[h] = function() end end
--- Callback:on_batch_begin(batch, logs): before each training batch (on_train_batch_begin calls it).
-- As in Keras, the train-batch hooks default to the older on_batch_* names.
function Callback:on_batch_begin() end
--- Callback:on_batch_end(batch, logs): after each training batch, logs holding the running loss and metrics.
function Callback:on_batch_end() end
--- Callback:on_train_batch_begin(batch, logs): before each training batch; by default on_batch_begin.
function Callback:on_train_batch_begin(batch, logs) self:on_batch_begin(batch, logs) end
--- Callback:on_train_batch_end(batch, logs): after each training batch; by default on_batch_end.
function Callback:on_train_batch_end(batch, logs) self:on_batch_end(batch, logs) end

return Callback
