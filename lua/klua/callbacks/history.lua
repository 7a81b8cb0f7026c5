-- history.lua — History: every epoch's logs, kept as model.history.
local Callback = require("klua.callbacks.callback")

local History = Callback:extend("History")

--- History(): records every epoch's logs in history.history (what fit returns, also model.history).
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

return History
