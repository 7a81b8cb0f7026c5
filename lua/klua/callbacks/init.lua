-- klua.callbacks — Keras's callbacks for fit / evaluate / predict, one class per file here.
-- Epoch and batch numbers given to hooks are 0-based counts, as in Keras (the
-- progress bar prints "Epoch 1/10").
--
--   local Stop = klua.callbacks.Callback:extend("Stop")
--   function Stop:on_epoch_end(epoch, logs)
--     if logs.loss < 0.1 then self.model.stop_training = true end
--   end
--   model:fit{x = x, y = y, epochs = 50, callbacks = {Stop(), klua.callbacks.EarlyStopping{patience = 3}}}
local M = {}
M.Callback = require("klua.callbacks.callback")
M.CallbackList = require("klua.callbacks.callback_list")
M.History = require("klua.callbacks.history")
M.ProgbarLogger = require("klua.callbacks.progbar_logger")
M.EarlyStopping = require("klua.callbacks.early_stopping")
M.ModelCheckpoint = require("klua.callbacks.model_checkpoint")
M.ReduceLROnPlateau = require("klua.callbacks.reduce_lr_on_plateau")
M.LearningRateScheduler = require("klua.callbacks.learning_rate_scheduler")
M.CSVLogger = require("klua.callbacks.csv_logger")
M.TerminateOnNaN = require("klua.callbacks.terminate_on_nan")
M.BackupAndRestore = require("klua.callbacks.backup_and_restore")
M.LambdaCallback = require("klua.callbacks.lambda_callback")

M.HOOKS = require("klua.callbacks.hooks")

-- Internals the specs test directly.
M._auto_mode = require("klua.callbacks.monitor").auto_mode
M._format_path = M.ModelCheckpoint._format_path
M._number_text = M.CSVLogger._number_text

return M
