-- bench_core.lua — the core's kernels against OpenBLAS in the same run:
-- matmul 1024x1024, a large elementwise op, a small MLP forward+backward.
-- Run by `make bench`; prints one table. Medians of repeated runs.
local klua = require("klua")
local ffi = require("ffi")
local utils = require("klua.utils")
local ops = klua.ops

ffi.cdef [[
void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc);
]]
-- The OpenBLAS klua itself runs on (loaded with libklua): a second copy of
-- OpenBLAS in the process would bring its own threads to compete.
local blas = ffi.C
if not pcall(function() return blas.cblas_sgemm end) then
  blas = ffi.load("/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0")
end

local function median_time(fn, reps, warmup)
  for _ = 1, warmup or 3 do fn() end
  local times = {}
  for i = 1, reps do
    local t0 = utils.now(); fn(); times[i] = utils.now() - t0
  end
  table.sort(times)
  return times[math.ceil(#times / 2)], times[1], times[#times]
end

local rows = {}
local function row(name, t, lo, hi, rate, unit) rows[#rows + 1] = { name, t, lo, hi, rate, unit } end

-- sgemm straight through OpenBLAS, the reference rate
local N = 1024
local At, Bt, Ct = klua.random.normal { N, N }, klua.random.normal { N, N }, klua.zeros { N, N }
local A, B, Cm = At.data, Bt.data, Ct.data
local flops = 2 * N * N * N
local t, lo, hi = median_time(function() blas.cblas_sgemm(101, 111, 111, N, N, N, 1, A, N, B, N, 0, Cm, N) end, 15)
row("cblas_sgemm 1024^3 (OpenBLAS)", t, lo, hi, flops / t / 1e9, "GFLOP/s")
local sgemm_rate = flops / t / 1e9

local a, b = klua.random.normal { N, N }, klua.random.normal { N, N }
t, lo, hi = median_time(function() return ops.matmul(a, b) end, 15)
row("klua ops.matmul 1024x1024", t, lo, hi, flops / t / 1e9, ("GFLOP/s (%.0f%% of sgemm)"):format(100 * flops / t / 1e9 / sgemm_rate))

local big = 4 * 1024 * 1024
local x, y = klua.random.normal { big }, klua.random.normal { big }
t, lo, hi = median_time(function() return x + y end, 30)
row("klua add, 4M elements", t, lo, hi, 3 * 4 * big / t / 1e9, "GB/s")
t, lo, hi = median_time(function() return ops.exp(x) end, 30)
row("klua exp, 4M elements", t, lo, hi, 2 * 4 * big / t / 1e9, "GB/s")

-- MLP 784-256-256-10, batch 128, forward + backward on raw ops
local batch = 128
local X = klua.random.normal { batch, 784 }
local W1, b1 = klua.Variable(klua.random.normal({ 784, 256 }, { stddev = 0.05 })), klua.Variable(klua.zeros { 256 })
local W2, b2 = klua.Variable(klua.random.normal({ 256, 256 }, { stddev = 0.05 })), klua.Variable(klua.zeros { 256 })
local W3, b3 = klua.Variable(klua.random.normal({ 256, 10 }, { stddev = 0.05 })), klua.Variable(klua.zeros { 10 })
local vars = { W1, b1, W2, b2, W3, b3 }
local function step()
  local tape = klua.GradientTape()
  tape:start()
  local h = ops.relu(ops.matmul(X, W1) + b1)
  h = ops.relu(ops.matmul(h, W2) + b2)
  local loss = ops.mean(ops.square(ops.matmul(h, W3) + b3))
  tape:stop()
  return tape:gradient(loss, vars)
end
local mlp_flops = 3 * 2 * batch * (784 * 256 + 256 * 256 + 256 * 10)
t, lo, hi = median_time(step, 50, 10)
row("klua MLP 784-256-256-10 fwd+bwd, batch 128", t, lo, hi, mlp_flops / t / 1e9,
  ("GFLOP/s; matmuls alone at the sgemm rate: %.2f ms"):format(mlp_flops / (sgemm_rate * 1e9) * 1e3))

print(("%-44s %10s %10s %10s  %s"):format("benchmark (median of runs)", "ms", "min", "max", "rate"))
for _, r in ipairs(rows) do
  print(("%-44s %10.3f %10.3f %10.3f  %.1f %s"):format(r[1], r[2] * 1e3, r[3] * 1e3, r[4] * 1e3, r[5], r[6]))
end
print(("threads: %d (klua.set_num_threads)"):format(klua.get_num_threads()))
