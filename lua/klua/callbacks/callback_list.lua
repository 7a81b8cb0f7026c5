-- callback_list.lua — CallbackList: what fit / evaluate / predict call hooks on.
-- It forwards each hook to every callback and adds History / ProgbarLogger when asked.
local core = require("klua.core")
local class = require("klua.class")
local Callback = require("klua.callbacks.callback")
local HOOKS = require("klua.callbacks.hooks")
local History = require("klua.callbacks.history")
local ProgbarLogger = require("klua.callbacks.progbar_logger")

local CallbackList = class("CallbackList")

--- CallbackList{callbacks, add_history=false, add_progbar=false, model=nil, verbose=nil, epochs=nil, steps=nil}
-- (also CallbackList(callbacks, {...})): what fit, evaluate and predict call hooks on: each hook forwards to every callback.
function CallbackList:__init(list, kw)
  kw = core.options(kw, "CallbackList")
  self.callbacks = {}
  if list ~= nil and type(list) ~= "table" then core.raise("CallbackList: callbacks must be a list of Callback objects, got " .. core.describe(list)) end
  if class.is_instance(list, Callback) then list = { list } end
  for i, cb in ipairs(list or {}) do
    if not class.is_instance(cb, Callback) then
      core.raise(("CallbackList: callbacks[%d] is not a klua.callbacks.Callback (got %s)"):format(i, core.describe(cb)))
    end
    self.callbacks[#self.callbacks + 1] = cb
  end
  for _, cb in ipairs(self.callbacks) do
    if class.is_instance(cb, History) then self.history = cb end
    if class.is_instance(cb, ProgbarLogger) then self.progbar = cb end
  end
  if kw.add_history and not self.history then
    self.history = History()
    self.callbacks[#self.callbacks + 1] = self.history
  end
  if kw.add_progbar and not self.progbar then
    self.progbar = ProgbarLogger()
    self.callbacks[#self.callbacks + 1] = self.progbar
  end
  self.model = kw.model
  if kw.model then for _, cb in ipairs(self.callbacks) do cb:set_model(kw.model) end end
  local params = { verbose = kw.verbose, epochs = kw.epochs, steps = kw.steps }
  self:set_params(params)
end

--- CallbackList:set_params(params): passes the run's params to every callback.
function CallbackList:set_params(params)
  self.params = params
  for _, cb in ipairs(self.callbacks) do cb:set_params(params) end
end

--- CallbackList:append(callback): adds a callback (given the list's model and params).
function CallbackList:append(cb)
  if not class.is_instance(cb, Callback) then core.raise("CallbackList.append: expected a klua.callbacks.Callback, got " .. core.describe(cb)) end
  self.callbacks[#self.callbacks + 1] = cb; cb:set_model(self.model); cb:set_params(self.params) end

--- CallbackList:on_train_begin(logs): calls on_train_begin of every callback (each hook below forwards the same way).
--- CallbackList:on_train_end(logs): calls on_train_end of every callback.
--- CallbackList:on_epoch_begin(epoch, logs): calls on_epoch_begin of every callback.
--- CallbackList:on_epoch_end(epoch, logs): calls on_epoch_end of every callback.
--- CallbackList:on_train_batch_begin(batch, logs): calls on_train_batch_begin of every callback.
--- CallbackList:on_train_batch_end(batch, logs): calls on_train_batch_end of every callback.
--- CallbackList:on_test_begin(logs): calls on_test_begin of every callback.
--- CallbackList:on_test_end(logs): calls on_test_end of every callback.
--- CallbackList:on_test_batch_begin(batch, logs): calls on_test_batch_begin of every callback.
--- CallbackList:on_test_batch_end(batch, logs): calls on_test_batch_end of every callback.
--- CallbackList:on_predict_begin(logs): calls on_predict_begin of every callback.
--- CallbackList:on_predict_end(logs): calls on_predict_end of every callback.
--- CallbackList:on_predict_batch_begin(batch, logs): calls on_predict_batch_begin of every callback.
--- CallbackList:on_predict_batch_end(batch, logs): calls on_predict_batch_end of every callback.
for _, h in ipairs(HOOKS) do
  CallbackList[h] = function(self, a, b)
    for _, cb in ipairs(self.callbacks) do cb[h](cb, a, b) end
  end
end

return CallbackList
