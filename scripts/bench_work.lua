-- bench_work.lua WORKLOAD[,WORKLOAD...] — the klua side of `make bench`
-- (scripts/bench_suite.lua). Mirrors scripts/bench_torch.py: same shapes,
-- initialisers (glorot_uniform, zero bias) and optimizer settings. Prints
--   RESULT <name> <median> <min> <max> <peak RSS MiB> <BLAS FLOPs per step>
--          <s in BLAS per step> <s in Lua collections per step> <mean s per step>
-- in ms (µs for the per-call rows), medians of steady-state steps after
-- warm-up; the FLOPs are those of the core's sgemm/sgemv calls during the
-- timed steps (kl_blas_flops), -1 when the core does not count them; the last
-- three are means over the timed steps (kl_blas_seconds, core.gc_stats).
-- KLUA_BENCH_BUDGET=<seconds> (the suite's contended runs): each row stops
-- after about that long (at least 3 steps, unless they pass 3 budgets), with
-- at most 3 warm-up steps; the epoch rows shrink (vae-epoch and fit-bare are
-- skipped, fit-epoch runs 20 of its 469 steps, scaled to the whole epoch).
local klua = require("klua")
local utils = require("klua.utils")
local ops, L = klua.ops, klua.layers
local C = klua.core.C

klua.random.seed(0)

local BUDGET = tonumber(os.getenv("KLUA_BENCH_BUDGET"))
local have_flops = pcall(function() return C.kl_blas_flops end)
local function blas_flops() return have_flops and tonumber(C.kl_blas_flops()) or 0 end
-- the wall time in those products and in the Lua collections core.lua runs (-1: not measured)
local have_blas_time = pcall(function() return C.kl_blas_timing end)
if have_blas_time then C.kl_blas_timing(1) end
local function blas_seconds() return have_blas_time and C.kl_blas_seconds() or 0 end
local gc_stats = require("klua.core").gc_stats
local function gc_seconds() return gc_stats and gc_stats.seconds or 0 end

-- timed(name, fn, steps, warmup=10, scale=1e3, per=1): per scales one call of
-- fn to the reported unit (fit-epoch's part of an epoch -> a whole epoch).
local function timed(name, fn, steps, warmup, scale, per)
  scale, per = scale or 1e3, per or 1
  warmup = warmup or 10
  local t0 = utils.now()
  if BUDGET then warmup = math.min(warmup, 3) end
  for _ = 1, warmup do
    fn()
    if BUDGET and utils.now() - t0 > BUDGET / 3 then break end
  end
  local times = {}
  local f0, b0, g0 = blas_flops(), blas_seconds(), gc_seconds()
  t0 = utils.now()
  for i = 1, steps do
    local t1 = utils.now(); fn(); times[i] = utils.now() - t1
    local spent = BUDGET and utils.now() - t0
    if BUDGET and (i >= 3 and spent > BUDGET or spent > 3 * BUDGET) then break end
  end
  local flops = have_flops and (blas_flops() - f0) / #times * per or -1
  -- means per step, in seconds: time in the products, time in collections, the whole step
  local blas = have_blas_time and (blas_seconds() - b0) / #times * per or -1
  local gc = gc_stats and (gc_seconds() - g0) / #times * per or -1
  local mean = (utils.now() - t0) / #times * per
  table.sort(times)
  io.write(("RESULT %s %.6f %.6f %.6f %.1f %.0f %.9f %.9f %.9f\n"):format(name, times[math.floor(#times / 2) + 1] * scale * per,
    times[1] * scale * per, times[#times] * scale * per, utils.peak_rss_mb(), flops, blas, gc, mean))
  io.flush()
end

local SCE = function() return klua.losses.SparseCategoricalCrossentropy { from_logits = true } end
-- integer labels 0..n-1 as floats
local function labels(count, n) return ops.floor(klua.random.uniform({ count }, { maxval = n })) end

-- A training step of forward(x) over the weights of `layers`: the same work
-- as model.fit's inner step, without its slicing, metrics and callbacks.
local function step_of(forward, layers, loss_fn, opt)
  local vars
  return function(x, y)
    local tape = klua.GradientTape()
    local loss = tape:record(function() return loss_fn(y, forward(x)) end)
    if not vars then
      vars = {}
      for _, layer in ipairs(layers) do for _, v in ipairs(layer.trainable_weights) do vars[#vars + 1] = v end end
    end
    opt:apply_gradients(tape:gradient(loss, vars), vars)
    return loss
  end
end

-- The same over a stack of layers applied in turn.
local function trainer(stack, loss_fn, opt)
  return step_of(function(x)
    for _, layer in ipairs(stack) do x = layer(x) end
    return x
  end, stack, loss_fn, opt)
end

local function mlp_stack()
  return { L.Dense { units = 256, activation = "relu" }, L.Dense { units = 256, activation = "relu" }, L.Dense { units = 10 } }
end

local workloads = {}

function workloads.mlp()
  local step = trainer(mlp_stack(), klua.losses.SparseCategoricalCrossentropy { from_logits = true },
    klua.optimizers.SGD { learning_rate = 0.01, momentum = 0.9 })
  local x, y = klua.random.normal { 128, 784 }, ops.floor and ops.floor(klua.random.uniform({ 128 }, { maxval = 10 })) or klua.random.permutation_tensor(128) % 10
  timed("mlp", function() step(x, y) end, 200)
end

-- The VAE's training step (encoder 784-64-(32,32), decoder 32-64-784).
local function vae_step()
  local proj, mean, log_var = L.Dense { units = 64, activation = "relu" }, L.Dense { units = 32 }, L.Dense { units = 32 }
  local dproj, out = L.Dense { units = 64, activation = "relu" }, L.Dense { units = 784, activation = "sigmoid" }
  local mse = klua.losses.MeanSquaredError()
  local opt = klua.optimizers.Adam { learning_rate = 1e-3 }
  local vars
  local function step(x)
    local tape = klua.GradientTape()
    local loss = tape:record(function()
      local h = proj(x)
      local zm, zl = mean(h), log_var(h)
      local z = zm + ops.exp(zl * 0.5) * klua.random.normal(zm:shape())
      local rec = out(dproj(z))
      local kl = ops.mean(zl - ops.square(zm) - ops.exp(zl) + 1) * -0.5
      return mse(x, rec) + kl
    end)
    if not vars then
      vars = {}
      for _, l in ipairs { proj, mean, log_var, dproj, out } do for _, v in ipairs(l.trainable_weights) do vars[#vars + 1] = v end end
    end
    opt:apply_gradients(tape:gradient(loss, vars), vars)
  end
  return step
end

function workloads.vae()
  local step = vae_step()
  local data = klua.random.uniform { BUDGET and 64 or 60000, 784 }
  local x = ops.slice_axis(data, 1, 1, 64):contiguous()
  timed("vae", function() step(x) end, 300)
  if BUDGET then return end   -- the epoch is 938 of those steps
  local ds = klua.data.Dataset.from_tensor_slices(data):shuffle(60000, 1):batch(64)
  timed("vae-epoch", function() for b in ds:iter() do step(b) end end, 3, 1)
end

local function cnn_stack()
  return {
    L.Conv2D { filters = 32, kernel_size = 3, activation = "relu" }, L.MaxPooling2D { pool_size = 2 },
    L.Conv2D { filters = 64, kernel_size = 3, activation = "relu" }, L.MaxPooling2D { pool_size = 2 },
    L.Flatten(), L.Dense { units = 128, activation = "relu" }, L.Dense { units = 10 },
  }
end

function workloads.cnn()
  local step = trainer(cnn_stack(), SCE(), klua.optimizers.Adam { learning_rate = 1e-3 })
  local x, y = klua.random.uniform { 64, 28, 28, 1 }, klua.random.permutation_tensor(64) % 10
  timed("cnn", function() step(x, y) end, 60)
end

-- cnn-infer-256: the cnn row's model, forward only (no tape), batch 256.
workloads["cnn-infer"] = function()
  local stack = cnn_stack()
  local x = klua.random.uniform { 256, 28, 28, 1 }
  timed("cnn-infer-256", function()
    local h = x
    for _, l in ipairs(stack) do h = l(h) end
    return h
  end, 40)
end

-- transformer: an encoder block's training step. Token ids (32, 64) from a
-- vocabulary of 1000 -> Embedding 64 + a learned position Embedding ->
-- self-attention (4 heads, key_dim 16) -> Add -> LayerNormalization -> Dense
-- 256 relu -> Dense 64 -> Add -> LayerNormalization -> GlobalAveragePooling1D
-- -> Dense 10 logits; sparse categorical crossentropy, Adam 1e-3.
function workloads.transformer()
  local B, T, V, D = 32, 64, 1000, 64
  local tok, pos = L.Embedding { input_dim = V, output_dim = D }, L.Embedding { input_dim = T, output_dim = D }
  local mha = L.MultiHeadAttention { num_heads = 4, key_dim = 16 }
  local ln1, ln2 = L.LayerNormalization(), L.LayerNormalization()
  local ff1, ff2 = L.Dense { units = 256, activation = "relu" }, L.Dense { units = D }
  local pool, head = L.GlobalAveragePooling1D(), L.Dense { units = 10 }
  local positions = ops.reshape(require("klua.tensor").arange(T), { 1, T })
  local function forward(ids)
    local h = tok(ids) + pos(positions)
    h = ln1(h + mha(h, h))
    h = ln2(h + ff2(ff1(h)))
    return head(pool(h))
  end
  local step = step_of(forward, { tok, pos, mha, ln1, ln2, ff1, ff2, head }, SCE(),
    klua.optimizers.Adam { learning_rate = 1e-3 })
  local ids, y = ops.floor(klua.random.uniform({ B, T }, { maxval = V })), labels(B, 10)
  timed("transformer", function() step(ids, y) end, 40)
end

-- resnet: a ResNet-style block's training step on (64, 32, 32, 3) inputs
-- (NHWC, klua's layout): Conv2D 32 3x3 + BatchNormalization + relu, then two
-- Conv2D 64 3x3 (+ BatchNormalization; relu between) beside a 1x1 Conv2D 64
-- projection shortcut, Add, relu, GlobalAveragePooling2D, Dense 10;
-- SGD momentum 0.9, learning rate 0.01.
function workloads.resnet()
  local function conv(f, k) return L.Conv2D { filters = f, kernel_size = k, padding = "same" } end
  local c0, c1, c2, proj = conv(32, 3), conv(64, 3), conv(64, 3), conv(64, 1)
  local bn0, bn1, bn2 = L.BatchNormalization(), L.BatchNormalization(), L.BatchNormalization()
  local pool, head = L.GlobalAveragePooling2D(), L.Dense { units = 10 }
  local train = { training = true }
  local function forward(x)
    local h = ops.relu(bn0(c0(x), train))
    local r = ops.relu(bn1(c1(h), train))
    r = bn2(c2(r), train)
    h = ops.relu(r + proj(h))
    return head(pool(h))
  end
  local step = step_of(forward, { c0, bn0, c1, bn1, c2, bn2, proj, head }, SCE(),
    klua.optimizers.SGD { learning_rate = 0.01, momentum = 0.9 })
  local x, y = klua.random.uniform { 64, 32, 32, 3 }, labels(64, 10)
  timed("resnet", function() step(x, y) end, 20, 3)
end

-- fit: a whole model:fit epoch (Sequential Dense 256 relu, Dense 10; 60,000 x
-- 784 uniform samples, labels 0..9, batch 128, shuffled, accuracy, verbose 0,
-- Adam 1e-3), then fit-bare: the same layers' tape steps over the same
-- batches pre-sliced, per epoch; the suite prints fit's per-step overhead
-- (fit-epoch - fit-bare) / fit-bare. Under KLUA_BENCH_BUDGET fit-epoch runs
-- 20 of the 469 steps, scaled to the whole epoch, and fit-bare is skipped.
function workloads.fit()
  local N, batch = 60000, 128
  local steps = math.ceil(N / batch)
  local part = BUDGET and 20 or steps
  local model = klua.Sequential { L.Dense { units = 256, activation = "relu" }, L.Dense { units = 10 } }
  model:compile { optimizer = klua.optimizers.Adam { learning_rate = 1e-3 }, loss = SCE(), metrics = { "accuracy" } }
  local x, y = klua.random.uniform { N, 784 }, labels(N, 10)
  timed("fit-epoch", function()
    model:fit { x = x, y = y, batch_size = batch, epochs = 1, shuffle = true, verbose = 0,
      steps_per_epoch = part < steps and part or nil }
  end, 3, 1, 1e3, steps / part)
  if BUDGET then return end
  local batches = {}
  for i = 1, steps do
    local lo, hi = (i - 1) * batch + 1, math.min(i * batch, N)
    batches[i] = { ops.slice_axis(x, 1, lo, hi):contiguous(), ops.slice_axis(y, 1, lo, hi):contiguous() }
  end
  local step = trainer(model.layers, SCE(), klua.optimizers.Adam { learning_rate = 1e-3 })
  for i = 1, 10 do step(batches[i][1], batches[i][2]) end
  timed("fit-bare", function() for i = 1, steps do step(batches[i][1], batches[i][2]) end end, 3, 0)
end

function workloads.lstm()
  for _, case in ipairs { { "lstm-10x1", { 100, 10, 1 } }, { "lstm-50x32", { 100, 50, 32 } } } do
    local step = trainer({ L.LSTM { units = 64 }, L.Dense { units = 1 } }, klua.losses.MeanAbsoluteError(),
      klua.optimizers.Adam { learning_rate = 0.005 })
    local x, y = klua.random.uniform(case[2]), klua.random.uniform { case[2][1], 1 }
    timed(case[1], function() step(x, y) end, 60)
  end
end

function workloads.dense_big()
  local w = klua.Variable(klua.random.normal({ 4096, 4096 }, { stddev = 0.01 }))
  local b = klua.Variable(klua.zeros { 4096 })
  local x = klua.random.normal { 256, 4096 }
  timed("dense-big", function()
    local tape = klua.GradientTape()
    tape:start(); tape:watch(x)
    local y = ops.sum(ops.matmul(x, w) + b)
    tape:stop()
    tape:gradient(y, { x, w, b })
  end, 20, 3)
end

function workloads.infer()
  local stack = mlp_stack()
  local x1, x1024 = klua.random.normal { 1, 784 }, klua.random.normal { 1024, 784 }
  local function fwd(x) for _, l in ipairs(stack) do x = l(x) end return x end
  timed("infer-1", function() fwd(x1) end, 2000, 100, 1e6)
  timed("infer-1024", function() fwd(x1024) end, 100)
end

function workloads.overhead()
  local step = trainer({ L.Dense { units = 1 } }, klua.losses.MeanSquaredError(), klua.optimizers.SGD { learning_rate = 0.01 })
  local x, y = klua.random.normal { 1, 1 }, klua.random.normal { 1, 1 }
  timed("overhead", function() step(x, y) end, 2000, 100, 1e6)
end
workloads["dense-big"] = workloads.dense_big

--- dist: data parallelism, run alone or under `mpirun -np N` (scripts/bench_suite.lua
-- runs both): the MNIST MLP (784-256-10, global batch 128) and the VAE step
-- (global batch 64), each process on its rows of the batch, the optimizer
-- averaging the gradients over MPI. Each measurement runs for about
-- KLUA_BENCH_SECONDS (default 2) seconds; rank 0 prints
--   DIST <name> <processes> <threads> <steps/s> <allreduce ms/step> <bytes/step> <bus GB/s>
-- and, on several processes, an all-reduce of one 4 MB bucket alone:
--   DIST allreduce-4MB <processes> <threads> <calls/s> <ms/call> <bytes/call> <bus GB/s>
-- The bus bandwidth is Horovod's and NCCL's: bytes·2(N−1)/N per second of all-reduce.
function workloads.dist()
  local dist = klua.distribution
  dist.initialize()
  dist.set_distribution(dist.DataParallel())
  local n, rank = dist.num_processes(), dist.process_id()
  local budget = tonumber(os.getenv("KLUA_BENCH_SECONDS")) or 2
  local function report(name, steps, seconds, st)
    if rank ~= 0 then return end
    local ar, bytes = st.seconds / steps, st.bytes / steps
    local bus = ar > 0 and bytes * 2 * (n - 1) / n / ar / 1e9 or 0
    io.write(("DIST %s %d %d %.3f %.4f %.0f %.3f\n"):format(name, n, klua.get_num_threads(), steps / seconds,
      ar * 1e3, bytes, bus))
    io.flush()
  end
  -- Runs fn for about `budget` seconds; every process runs the same number of times (rank 0's count).
  local function measure(name, fn)
    for _ = 1, 10 do fn() end
    -- NOTE: a fixed count, not a time: each call is a collective, so a loop
    -- ended by each process's own clock would leave them mismatched (a hang).
    local t0, k = utils.now(), 20
    for _ = 1, k do fn() end
    local steps = math.max(10, math.floor(budget * k / (utils.now() - t0)))
    steps = dist.broadcast(klua.tensor { steps }):tolist()[1]
    dist.barrier()
    dist.stats(true)
    t0 = utils.now()
    for _ = 1, steps do fn() end
    report(name, steps, utils.now() - t0, dist.stats(true))
  end
  local function rows(x, global)   -- this process's rows of a global batch
    local per = global / n
    return ops.slice_axis(x, 1, rank * per + 1, (rank + 1) * per):contiguous()
  end
  local mlp = trainer({ L.Dense { units = 256, activation = "relu" }, L.Dense { units = 10 } },
    klua.losses.SparseCategoricalCrossentropy { from_logits = true }, klua.optimizers.SGD { learning_rate = 0.01, momentum = 0.9 })
  local x, y = klua.random.normal { 128, 784 }, klua.random.permutation_tensor(128) % 10
  x, y = rows(x, 128), rows(y, 128)
  measure("mlp", function() mlp(x, y) end)
  local vae = vae_step()
  local v = rows(klua.random.uniform { 64, 784 }, 64)
  measure("vae", function() vae(v) end)
  if n > 1 then
    local bucket = klua.random.normal { 2 ^ 20 }
    measure("allreduce-4MB", function() dist.all_reduce(bucket) end)
  end
end

--- sgemm: OpenBLAS's own rate in this run (GFLOP/s reported in the median column).
function workloads.sgemm()
  local ffi = require("ffi")
  pcall(ffi.cdef, [[void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc);]])
  local C = klua.core.C
  for _, n in ipairs { 1024, 4096 } do
    local a, b, c = klua.random.normal { n, n }, klua.random.normal { n, n }, klua.zeros { n, n }
    local reps = n == 1024 and 15 or 3
    local times = {}
    for i = 1, reps + 2 do
      local t0 = utils.now()
      ffi.C.cblas_sgemm(101, 111, 111, n, n, n, 1, a.data, n, b.data, n, 0, c.data, n)
      times[i] = utils.now() - t0
    end
    table.remove(times, 1); table.remove(times, 1)
    table.sort(times)
    local med = times[math.floor(#times / 2) + 1]
    io.write(("RESULT sgemm-%d %.3f %.3f %.3f %.1f\n"):format(n, 2 * n ^ 3 / med / 1e9, 2 * n ^ 3 / times[#times] / 1e9, 2 * n ^ 3 / times[1] / 1e9, utils.peak_rss_mb()))
  end
end

local names = {}
for w in tostring(arg[1]):gmatch("[^,]+") do
  if not workloads[w] then io.stderr:write("bench_work.lua: unknown workload ", w, "\n"); os.exit(2) end
  names[#names + 1] = w
end
for _, w in ipairs(names) do
  workloads[w]()
  collectgarbage(); collectgarbage()
end
