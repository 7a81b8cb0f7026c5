-- mnist_data_parallel.lua — examples/mnist_mlp.lua's MLP (Flatten → Dense 256
-- relu → Dropout → Dense 10) trained with data parallelism: the same script
-- runs alone or as several processes under mpirun, and trains one model.
--
--   klua examples/mnist_data_parallel.lua                      # one process
--   mpirun -np 2 klua examples/mnist_data_parallel.lua         # two processes, one model
--   (as root add --allow-run-as-root; more processes than cores: --oversubscribe)
--
-- The two lines that make it parallel are marked. batch_size is the global
-- batch: each of N processes computes the gradient of batch_size / N rows,
-- and the optimizer averages the gradients. Rank 0 prints; it also reports
-- the time spent in MPI collectives and the bytes they reduced per step.
local klua = require("klua")
local ops, layers, dist = klua.ops, klua.layers, klua.distribution
local utils = require("klua.utils")

local USAGE = [[
usage: klua examples/mnist_data_parallel.lua [options]   (or: mpirun -np N klua examples/...)
  --dataset NAME   mnist (default) or fashion_mnist
  --epochs N       training epochs (default 10)
  --batch N        global batch size (default 128)
  --samples N      train on the first N training images only (default: all)
  --dropout R      dropout rate (default 0.2; 0 makes N processes train exactly as one)
  --seed N         random seed (default 1)
  --help           this text]]

local opts = utils.parse_args(arg, { dataset = "mnist", epochs = 10, batch = 128, samples = 0, dropout = 0.2, seed = 1 }, USAGE)

dist.initialize()                                          -- (1) join the mpirun job; a no-op alone
dist.set_distribution(dist.DataParallel())                 -- (2) one replica per process
local chief = dist.process_id() == 0
local function say(...) if chief then print(...) end end

klua.random.seed(opts.seed)
local dataset = klua.datasets[opts.dataset]
if not dataset then io.stderr:write("mnist_data_parallel.lua: unknown dataset '", opts.dataset, "'\n"); os.exit(2) end
local train, test = dataset.load_data()
local x_train, y_train = train[1] / 255, train[2]
local x_test, y_test = test[1] / 255, test[2]
if opts.samples > 0 and opts.samples < x_train:shape()[1] then
  x_train, y_train = ops.slice_axis(x_train, 1, 1, opts.samples), ops.slice_axis(y_train, 1, 1, opts.samples)
end
say(("%s: %d training and %d test images; %d process(es), %d thread(s) each, global batch %d"):format(
  opts.dataset, x_train:shape()[1], x_test:shape()[1], dist.num_processes(), klua.get_num_threads(), opts.batch))

local model = klua.Sequential {
  layers.Flatten { input_shape = { 28, 28 } },
  layers.Dense(256, { activation = "relu" }),
  layers.Dropout(opts.dropout, { seed = opts.seed }),
  layers.Dense(10),
}
model:compile {
  optimizer = klua.optimizers.Adam { learning_rate = 1e-3 },
  loss = klua.losses.SparseCategoricalCrossentropy { from_logits = true },
  metrics = { "accuracy" },
}

dist.stats(true)
local t0 = utils.now()
local history = model:fit { x = x_train, y = y_train, batch_size = opts.batch, epochs = opts.epochs, verbose = 2 }
local seconds = utils.now() - t0
local s = dist.stats()
local steps = opts.epochs * math.ceil(x_train:shape()[1] / opts.batch)
local h = history.history
say(("fit: %d steps in %.2f s (%.1f steps/s); last epoch accuracy %.4f"):format(
  steps, seconds, steps / seconds, h.accuracy[#h.accuracy]))
if dist.num_processes() > 1 then
  say(("collectives: %.3f ms and %.0f kB per step (%d calls in all)"):format(
    s.seconds / steps * 1e3, s.bytes / steps / 1024, s.calls))
end

local result = model:evaluate { x = x_test, y = y_test, batch_size = 256, verbose = 0, return_dict = true }
say(("test loss %.4f, test accuracy %.4f"):format(result.loss, result.accuracy))
