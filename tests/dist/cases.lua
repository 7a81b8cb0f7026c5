-- tests/dist/cases.lua OUT — small models trained under DataParallel, for
-- tests/distribution_spec.lua, which runs this once alone and once under
-- `mpirun -np N` and compares what each run wrote to OUT: per case a JSON file
-- (written by rank 0) with the History, the weights, evaluate and predict.
-- Each process also writes the sample ids it trained on (seen-<rank>.json).
local klua = require("klua")
local json, L, ops = klua.json, klua.layers, klua.ops
local dist = klua.distribution

dist.initialize()
dist.set_distribution(dist.DataParallel { auto_shard_dataset = true })
local rank, out = dist.process_id(), assert(arg[1], "usage: cases.lua OUT")

do -- the host each process ran on (the two-host spec checks them)
  local p = io.popen("hostname")
  local f = assert(io.open(("%s/host-%d.txt"):format(out, rank), "w"))
  f:write(p:read("*l") or "?")
  f:close()
  p:close()
end

local function flat_weights(model)
  local w = {}
  for i, t in ipairs(model:get_weights()) do w[i] = t:reshape { -1 }:tolist() end
  return w
end

local function write(name, value)
  local f = assert(io.open(("%s/%s.json"):format(out, name), "w"))
  f:write(json.encode(value))
  f:close()
end

local function report(name, model, history, x, y)
  local ev = {}
  for k, v in pairs(model:evaluate { x = x, y = y, batch_size = 7, verbose = 0, return_dict = true }) do ev[k] = v end
  local pred = model:predict { x = x, batch_size = 9, verbose = 0 }
  if rank == 0 then
    write(name, { history = history and history.history or {}, weights = flat_weights(model), evaluate = ev,
      predict = pred:reshape { -1 }:tolist(), iterations = model.optimizer.iterations })
  end
end

-- An MLP classifier with fit on tensors (shuffled), 2 epochs of 10 steps,
-- with a ModelCheckpoint and a CSVLogger (written by rank 0 only).
do
  klua.random.seed(11)
  local x, y = klua.random.normal { 200, 6 }, ops.floor(klua.random.uniform { 200 } * 3)
  local model = klua.Sequential { klua.Input { shape = { 6 } }, L.Dense { units = 16, activation = "relu" }, L.Dense { units = 3 } }
  model:compile { optimizer = klua.optimizers.SGD { learning_rate = 0.1, momentum = 0.9 },
    loss = klua.losses.SparseCategoricalCrossentropy { from_logits = true }, metrics = { "accuracy" } }
  local h = model:fit { x = x, y = y, batch_size = 16, epochs = 2, verbose = 2, validation_split = 0.2,
    callbacks = { klua.callbacks.ModelCheckpoint(out .. "/mlp.klua", { monitor = "loss" }),
                  klua.callbacks.CSVLogger(out .. "/mlp.csv") } }
  report("mlp", model, h, x, y)
end

-- A CNN with Adam.
do
  klua.random.seed(12)
  local x, y = klua.random.normal { 160, 6, 6, 1 }, ops.floor(klua.random.uniform { 160 } * 2)
  local model = klua.Sequential { klua.Input { shape = { 6, 6, 1 } },
    L.Conv2D { filters = 4, kernel_size = 3, activation = "relu" }, L.MaxPooling2D { pool_size = 2 },
    L.Flatten(), L.Dense { units = 2 } }
  model:compile { optimizer = klua.optimizers.Adam { learning_rate = 0.01 },
    loss = klua.losses.SparseCategoricalCrossentropy { from_logits = true }, metrics = { "accuracy" } }
  local h = model:fit { x = x, y = y, batch_size = 16, epochs = 2, verbose = 0 }
  report("cnn", model, h, x, y)
end

-- A CNN with BatchNormalization{synchronized = true}: the batch statistics
-- over every process's rows, so N processes train as one.
do
  klua.random.seed(17)
  local x, y = klua.random.normal { 160, 6, 6, 2 }, ops.floor(klua.random.uniform { 160 } * 2)
  local model = klua.Sequential { klua.Input { shape = { 6, 6, 2 } },
    L.Conv2D { filters = 4, kernel_size = 3, use_bias = false }, L.BatchNormalization { synchronized = true }, L.Activation("relu"),
    L.Flatten(), L.Dense { units = 2 } }
  model:compile { optimizer = klua.optimizers.SGD { learning_rate = 0.05, momentum = 0.9 },
    loss = klua.losses.SparseCategoricalCrossentropy { from_logits = true }, metrics = { "accuracy" } }
  local h = model:fit { x = x, y = y, batch_size = 16, epochs = 2, verbose = 0 }
  report("cnn_bn", model, h, x, y)
end

-- An LSTM regression with RMSprop.
do
  klua.random.seed(13)
  local x, y = klua.random.normal { 80, 5, 3 }, klua.random.normal { 80, 1 }
  local model = klua.Sequential { klua.Input { shape = { 5, 3 } }, L.LSTM { units = 8 }, L.Dense { units = 1 } }
  model:compile { optimizer = klua.optimizers.RMSprop { learning_rate = 0.01 }, loss = "mse", metrics = { "mae" } }
  local h = model:fit { x = x, y = y, batch_size = 8, epochs = 2, verbose = 0 }
  report("lstm", model, h, x, y)
end

-- A klua.data.Dataset (seeded shuffle, batched by the global batch).
do
  klua.random.seed(14)
  local x, y = klua.random.normal { 96, 4 }, klua.random.normal { 96, 2 }
  local ds = klua.data.Dataset.from_tensor_slices { x, y }:shuffle(64, 7):batch(12)
  local model = klua.Sequential { klua.Input { shape = { 4 } }, L.Dense { units = 8, activation = "tanh" }, L.Dense { units = 2 } }
  model:compile { optimizer = klua.optimizers.Adam { learning_rate = 0.02 }, loss = "mse" }
  local h = model:fit { x = ds, epochs = 3, verbose = 0 }
  report("dataset", model, h, x, y)
end

-- 50 samples in global batches of 16 (16, 16, 16, 2): not divisible by the
-- processes. Column 1 of x is the sample's id: each process records the ids
-- it trained on.
do
  klua.random.seed(15)
  local ids = ops.reshape(klua.arange(0, 50), { 50, 1 })
  local x = ops.concatenate({ ids, klua.random.normal { 50, 3 } }, 2)
  local y = klua.random.normal { 50, 1 }
  local model = klua.Sequential { klua.Input { shape = { 4 } }, L.Dense { units = 1 } }
  model:compile { optimizer = klua.optimizers.SGD { learning_rate = 0.001 }, loss = "mse" }
  local seen, epoch = {}, 0
  local base = model.train_step
  model.train_step = function(self, data)
    for _, id in ipairs(ops.slice_axis(data[1], 2, 1, 1):reshape { -1 }:tolist()) do
      seen[epoch] = seen[epoch] or {}
      table.insert(seen[epoch], id)
    end
    return base(self, data)
  end
  local cb = klua.callbacks.LambdaCallback { on_epoch_begin = function(e) epoch = e + 1 end }
  local h = model:fit { x = x, y = y, batch_size = 16, epochs = 2, verbose = 0, callbacks = { cb } }
  local f = assert(io.open(("%s/seen-%d.json"):format(out, rank), "w"))
  f:write(json.encode { seen[1] or json.array {}, seen[2] or json.array {} })
  f:close()
  report("uneven", model, h, x, y)
end

-- A custom GradientTape loop: each process takes its rows of every global
-- batch of 16; the optimizer averages the gradients (no extra line). Steps
-- 11-20 use buckets of 256 bytes: the 98 gradient values then go in two
-- buckets (non-blocking), one collective each; steps 2-10 take one in all.
do
  klua.random.seed(16)
  local x, y = klua.random.normal { 64, 5 }, klua.random.normal { 64, 2 }
  local model = klua.Sequential { klua.Input { shape = { 5 } }, L.Dense { units = 12, activation = "relu" }, L.Dense { units = 2 } }
  local opt = klua.optimizers.Adam { learning_rate = 0.01 }
  local loss_fn = klua.losses.MeanSquaredError()
  local n, per = dist.num_processes(), 16 / dist.num_processes()
  local calls = {}
  for step = 0, 19 do
    if step == 1 or step == 11 then dist.stats(true) end
    if step == 10 then dist.bucket_size(256) end
    if step == 9 or step == 19 then calls[#calls + 1] = dist.stats().calls / 8 end
    local first = (step % 4) * 16 + rank * per + 1
    local xb, yb = ops.slice_axis(x, 1, first, first + per - 1), ops.slice_axis(y, 1, first, first + per - 1)
    local tape = klua.GradientTape()
    local loss = tape:record(function() return loss_fn(yb, model(xb)) end)
    local vars = model.trainable_weights
    opt:apply_gradients(tape:gradient(loss, vars), vars)
  end
  dist.bucket_size(4 * 2 ^ 20)
  if rank == 0 then write("tape", { weights = flat_weights(model), n = n, calls_per_step = calls }) end
end
