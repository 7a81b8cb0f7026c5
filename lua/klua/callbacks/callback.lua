-- callback.lua — Callback: the base class; every hook is a no-op to override.
-- Epoch and batch numbers given to hooks are 0-based counts, as in Keras.
local class = require("klua.class")
local HOOKS = require("klua.callbacks.hooks")

local Callback = class("Callback")

function Callback:__init() self.model, self.params = nil, {} end
function Callback:set_model(model) self.model = model end
function Callback:set_params(params) self.params = params end

for _, h in ipairs(HOOKS) do Callback[h] = function() end end
-- As in Keras, the train-batch hooks default to the older on_batch_* names.
function Callback:on_batch_begin() end
function Callback:on_batch_end() end
function Callback:on_train_batch_begin(batch, logs) self:on_batch_begin(batch, logs) end
function Callback:on_train_batch_end(batch, logs) self:on_batch_end(batch, logs) end

return Callback
