-- terminate_on_nan.lua — TerminateOnNaN: stops fit at the first NaN or infinite batch loss.
local Callback = require("klua.callbacks.callback")
local monitor = require("klua.callbacks.monitor")

--- TerminateOnNaN(): stops fit at the first batch whose loss is NaN or infinite.
local TerminateOnNaN = Callback:extend("TerminateOnNaN")

function TerminateOnNaN:on_batch_end(batch, logs)
  local loss = monitor.log_value(logs, "loss")
  if loss ~= nil and (loss ~= loss or loss == math.huge or loss == -math.huge) then
    monitor.print(("Batch %d: Invalid loss, terminating training"):format(batch))
    self.model.stop_training = true
  end
end

return TerminateOnNaN
