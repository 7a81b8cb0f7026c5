-- backup_and_restore.lua — BackupAndRestore: an interrupted fit resumes where it stopped.
local core = require("klua.core")
local saving = require("klua.saving")
local Callback = require("klua.callbacks.callback")
local distribution = require("klua.distribution")

local BackupAndRestore = Callback:extend("BackupAndRestore")

--- BackupAndRestore(backup_dir, {save_freq="epoch", delete_checkpoint=true}):
-- saves weights, optimizer state, the epoch, every random generator's state
-- (klua.random's stream, the layers' seed generators, the training data's
-- shuffle generators) and the state of the other callbacks at each epoch end
-- (atomically); a later fit
-- with the same callback resumes from there as if never interrupted. The
-- backup is deleted when training ends normally.
function BackupAndRestore:__init(backup_dir, kw)
  Callback.__init(self)
  if type(backup_dir) == "table" and kw == nil then kw, backup_dir = backup_dir, backup_dir.backup_dir end
  if type(backup_dir) ~= "string" or backup_dir == "" then core.raise("BackupAndRestore: backup_dir must be a non-empty string") end
  kw = core.options(kw, "BackupAndRestore")
  self.backup_dir = backup_dir
  self.save_freq = kw.save_freq or "epoch"
  if self.save_freq ~= "epoch" and self.save_freq ~= false then
    core.raise("BackupAndRestore: only save_freq=\"epoch\" (or false) is supported. Received: save_freq=" .. tostring(self.save_freq))
  end
  self.delete_checkpoint = kw.delete_checkpoint ~= false
  self.path = backup_dir:gsub("/+$", "") .. "/backup.klua"
end

--- BackupAndRestore:set_callback_list(list): the other callbacks, whose state is backed up too (fit sets it).
-- fit hands over its CallbackList so that the other callbacks' state is saved
-- too, and with it the training data's generators (list.data_generators).
function BackupAndRestore:set_callback_list(list) self.callback_list = list end

function BackupAndRestore:on_train_begin()
  os.execute(("mkdir -p '%s'"):format(self.backup_dir:gsub("'", "'\\''")))
  local f = io.open(self.path, "rb")
  if not f then return end
  f:close()
  local list = self.callback_list
  local state = saving.restore_training_state(self.model, self.path, list and list.callbacks, list and list.data_generators)
  rawset(self.model, "_initial_epoch", state.epoch + 1)
end

function BackupAndRestore:on_epoch_end(epoch)
  if self.save_freq ~= "epoch" or not distribution.is_chief() then return end   -- DataParallel: rank 0 writes
  local list = self.callback_list
  saving.save_training_state(self.model, self.path, {
    epoch = epoch, callbacks = list and list.callbacks, generators = list and list.data_generators,
  })
end

function BackupAndRestore:on_train_end()
  if self.delete_checkpoint and distribution.is_chief() then os.remove(self.path) end
  -- DataParallel: no process starts another fit while the backup may still be there
  if distribution.active() then distribution.barrier() end
end

return BackupAndRestore
