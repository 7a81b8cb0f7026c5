-- tests/dist/faults.lua MODE — processes that go wrong, for
-- tests/distribution_spec.lua (run under mpirun -np 2):
--   error_on_rank1: rank 1 raises a Lua error in its third step while rank 0
--                   waits in the step's collective;
--   killed_rank1:   rank 1 is killed (SIGKILL) in its third step;
--   wider_on_rank1: rank 1 builds a wider hidden layer;
--   extra_on_rank1: rank 1 builds one more layer;
--   sync_bn_short:  BatchNormalization{synchronized = true} and a last batch
--                   of 2 rows for 4 processes (run with -np 4).
local klua = require("klua")
local L, dist = klua.layers, klua.distribution
local mode = assert(arg[1], "usage: faults.lua MODE")

dist.initialize()
dist.set_distribution(dist.DataParallel())
local rank = dist.process_id()

klua.random.seed(1)
local x, y = klua.random.normal { 64, 4 }, klua.random.normal { 64, 1 }
local layers = { klua.Input { shape = { 4 } }, L.Dense { units = (mode == "wider_on_rank1" and rank == 1) and 9 or 8 } }
if mode == "extra_on_rank1" and rank == 1 then layers[#layers + 1] = L.Dense { units = 8 } end
if mode == "sync_bn_short" then
  layers[#layers + 1] = L.BatchNormalization { synchronized = true }
  x, y = klua.ops.slice_axis(x, 1, 1, 50), klua.ops.slice_axis(y, 1, 1, 50)   -- batches of 8: 8 x 6, then 2
end
layers[#layers + 1] = L.Dense { units = 1 }
local model = klua.Sequential(layers)
model:compile { optimizer = "sgd", loss = "mse" }
local cb = klua.callbacks.LambdaCallback { on_train_batch_begin = function(batch)
  if mode == "error_on_rank1" and rank == 1 and batch == 2 then error("deliberate failure in step 3 on rank 1") end
  if mode == "killed_rank1" and rank == 1 and batch == 2 then os.execute("kill -9 $PPID") end   -- the shell's parent: this process
end }
model:fit { x = x, y = y, batch_size = 8, epochs = 50, verbose = 0, callbacks = { cb } }
print("rank " .. rank .. " finished")
