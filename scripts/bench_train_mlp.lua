-- bench_train_mlp.lua — the training-step benchmark of issue 4: an MLP
-- 784-256-256-10 on a batch of 128, SparseCategoricalCrossentropy(from_logits)
-- and SGD(0.01, momentum 0.9), written with raw ops and Variables so it times
-- the tape, the fused loss and the fused optimizer update, nothing else.
-- scripts/bench_train_mlp.py runs the same step in PyTorch. Prints
--   RESULT train-mlp <median ms> <min ms> <max ms> <peak RSS MiB>
--   ALLOCS train-mlp <storage allocations per steady-state step>
-- Run: build/klua scripts/bench_train_mlp.lua [steps]
local klua = require("klua")
local utils = require("klua.utils")
local ops = klua.ops

local STEPS = tonumber(arg and arg[1]) or 100
klua.random.seed(0)

local function glorot(fan_in, fan_out)
  local limit = math.sqrt(6 / (fan_in + fan_out))
  return klua.Variable(klua.random.uniform({ fan_in, fan_out }, { minval = -limit, maxval = limit }))
end
local sizes = { 784, 256, 256, 10 }
local weights, vars = {}, {}
for i = 1, 3 do
  local w, b = glorot(sizes[i], sizes[i + 1]), klua.Variable(klua.zeros { sizes[i + 1] })
  weights[i] = { w, b }
  vars[#vars + 1], vars[#vars + 2] = w, b
end

local x = klua.random.uniform { 128, 784 }
local labels = {}
for i = 1, 128 do labels[i] = (i * 7) % 10 end
local y = klua.tensor(labels)
local loss_fn = klua.losses.SparseCategoricalCrossentropy { from_logits = true }
local opt = klua.optimizers.SGD { learning_rate = 0.01, momentum = 0.9 }

local function step()
  local tape = klua.GradientTape()
  local loss = tape:record(function()
    local h = x
    for i = 1, 3 do
      h = ops.matmul(h, weights[i][1]) + weights[i][2]
      if i < 3 then h = ops.relu(h) end
    end
    return loss_fn(y, h)
  end)
  opt:apply_gradients(tape:gradient(loss, vars), vars)
  return loss
end

local first = step():item()
for _ = 1, 200 do step() end -- past a few collections: the reuse pool is then full
collectgarbage()
local C = klua.core.C
local allocs0 = tonumber(C.kl_mem_alloc_count())
local times = {}
for i = 1, STEPS do
  local t0 = utils.now()
  step()
  times[i] = utils.now() - t0
end
local allocs = (tonumber(C.kl_mem_alloc_count()) - allocs0) / STEPS
local last = step():item()
table.sort(times)
io.write(("RESULT train-mlp %.6f %.6f %.6f %.1f\n"):format(times[math.floor(#times / 2) + 1] * 1e3, times[1] * 1e3,
  times[#times] * 1e3, utils.peak_rss_mb()))
io.write(("ALLOCS train-mlp %.2f\n"):format(allocs))
if not (last < first) then io.stderr:write(("bench_train_mlp: the loss did not fall (%.4f -> %.4f)\n"):format(first, last)) end
