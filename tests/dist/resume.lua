-- tests/dist/resume.lua DIR [CRASH_AT] — an MLP trained for 4 epochs with
-- BackupAndRestore(DIR/backup), for tests/distribution_spec.lua. With
-- CRASH_AT, rank 0 exits (status 3) as that epoch begins, which ends the
-- whole job; run again without it, on any number of processes, fit resumes
-- from the backup. Rank 0 writes the final weights to DIR/weights.json.
local klua = require("klua")
local L, dist = klua.layers, klua.distribution
local dir, crash_at = assert(arg[1], "usage: resume.lua DIR [CRASH_AT]"), tonumber(arg[2])

dist.initialize()
dist.set_distribution(dist.DataParallel())
klua.random.seed(21)
local x, y = klua.random.normal { 96, 5 }, klua.random.normal { 96, 2 }
local model = klua.Sequential { klua.Input { shape = { 5 } }, L.Dense { units = 8, activation = "relu" }, L.Dense { units = 2 } }
model:compile { optimizer = klua.optimizers.Adam { learning_rate = 0.01 }, loss = "mse" }
local crash = klua.callbacks.LambdaCallback { on_epoch_begin = function(epoch)
  if epoch == crash_at and dist.process_id() == 0 then os.exit(3) end
end }
model:fit { x = x, y = y, batch_size = 16, epochs = 4, verbose = 0,
  callbacks = { klua.callbacks.BackupAndRestore(dir .. "/backup"), crash } }
if dist.process_id() == 0 then
  local w = {}
  for i, t in ipairs(model:get_weights()) do w[i] = t:reshape { -1 }:tolist() end
  local f = assert(io.open(dir .. "/weights.json", "w"))
  f:write(klua.json.encode { weights = w, iterations = model.optimizer.iterations })
  f:close()
end
