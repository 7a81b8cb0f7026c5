-- tests/dist/dropout.lua DIR [CRASH_AT] — unseeded dropout under DataParallel,
-- for tests/distribution_spec.lua. Each process writes the masks of a Dropout
-- layer (DIR/masks-<rank>.json), then trains a model with Dropout for 3 epochs
-- with BackupAndRestore(DIR/backup); with CRASH_AT, rank 0 exits (status 3)
-- as that epoch begins. Rank 0 writes the final weights to DIR/weights.json.
local klua = require("klua")
local L, dist, ops = klua.layers, klua.distribution, klua.ops
local dir, crash_at = assert(arg[1], "usage: dropout.lua DIR [CRASH_AT]"), tonumber(arg[2])
dist.initialize()
local rank = dist.process_id()

local function write(name, value)
  local f = assert(io.open(("%s/%s.json"):format(dir, name), "w"))
  f:write(klua.json.encode(value))
  f:close()
end

klua.random.seed(31)
dist.set_distribution(dist.DataParallel())
local drop = L.Dropout(0.5)
local masks = {}
for i = 1, 2 do masks[i] = ops.not_equal(drop(klua.ones { 4, 16 }, { training = true }), 0):reshape { -1 }:tolist() end
write("masks-" .. rank, masks)

local x, y = klua.random.normal { 64, 5 }, klua.random.normal { 64, 2 }
local model = klua.Sequential { klua.Input { shape = { 5 } }, L.Dense { units = 16, activation = "relu" },
  L.Dropout(0.3), L.Dense { units = 2 } }
model:compile { optimizer = klua.optimizers.Adam { learning_rate = 0.01 }, loss = "mse" }
local crash = klua.callbacks.LambdaCallback { on_epoch_begin = function(epoch)
  if epoch == crash_at and rank == 0 then os.exit(3) end
end }
model:fit { x = x, y = y, batch_size = 16, epochs = 3, verbose = 0,
  callbacks = { klua.callbacks.BackupAndRestore(dir .. "/backup"), crash } }
if rank == 0 then
  local w = {}
  for i, t in ipairs(model:get_weights()) do w[i] = t:reshape { -1 }:tolist() end
  write("weights", { weights = w, iterations = model.optimizer.iterations })
end
