-- bench_suite.lua — klua against PyTorch on the workloads of issue 8, in one
-- invocation: for each workload the klua and PyTorch processes alternate
-- (ROUNDS each); each process reports the median of its steady-state steps,
-- and the table shows the median of those with the spread (min–max) across
-- rounds, the ratio klua/PyTorch and each process's peak resident memory.
--   klua scripts/bench_suite.lua [--rounds N] [--only name,name]
local utils = require("klua.utils")

local ROUNDS, only = 3, nil
for i = 1, #arg do
  if arg[i] == "--rounds" then ROUNDS = tonumber(arg[i + 1]) end
  if arg[i] == "--only" then only = {}; for w in arg[i + 1]:gmatch("[^,]+") do only[w] = true end end
end

local klua_bin = arg[-1] and arg[-1]:match("klua$") and arg[-1] or "build/klua"
local python = "/usr/bin/python3"
-- PyTorch's fair setting on this 2-core machine (issue 8); klua runs with its own defaults.
local torch_env = "OMP_WAIT_POLICY=passive "

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("*a")
  local ok = p:close()
  local res = {}
  for name, med, lo, hi, rss in out:gmatch("RESULT (%S+) (%S+) (%S+) (%S+) (%S+)") do
    res[name] = { med = tonumber(med), lo = tonumber(lo), hi = tonumber(hi), rss = tonumber(rss) }
  end
  if not next(res) then io.stderr:write("bench: no result from `", cmd, "`:\n", out, "\n") end
  return res
end

local have_torch = os.execute(python .. " -c 'import torch' >/dev/null 2>&1") == 0
  or os.execute(python .. " -c 'import torch' >/dev/null 2>&1") == true

local function median(t)
  table.sort(t)
  local n = #t
  if n % 2 == 1 then return t[(n + 1) / 2] end
  return (t[n / 2] + t[n / 2 + 1]) / 2
end

-- collect[name] = { klua = {medians...}, torch = {...}, krss, trss }
local collect = {}
local function add(side, res)
  for name, r in pairs(res) do
    local c = collect[name] or { klua = {}, torch = {}, krss = 0, trss = 0 }
    collect[name] = c
    table.insert(c[side], r.med)
    if side == "klua" then c.krss = math.max(c.krss, r.rss) else c.trss = math.max(c.trss, r.rss) end
  end
end

local workloads = { "sgemm", "mlp", "vae", "cnn", "lstm", "dense-big", "infer", "overhead" }
for _, w in ipairs(workloads) do
  if not only or only[w] then
    for _ = 1, ROUNDS do
      add("klua", run(klua_bin .. " scripts/bench_work.lua " .. w))
      if have_torch and w ~= "sgemm" then add("torch", run(torch_env .. python .. " scripts/bench_torch.py " .. w)) end
    end
  end
end

-- startup: whole processes, alternating
if not only or only.startup then
  local kt, tt = {}, {}
  for _ = 1, 7 do
    local t0 = utils.now(); os.execute(klua_bin .. " -e 'require(\"klua\")'"); kt[#kt + 1] = (utils.now() - t0) * 1e3
    if have_torch then t0 = utils.now(); os.execute(python .. " -c 'import torch'"); tt[#tt + 1] = (utils.now() - t0) * 1e3 end
  end
  collect.startup = { klua = kt, torch = tt, krss = 0, trss = 0 }
end

local sgemm = collect["sgemm-1024"] and median(collect["sgemm-1024"].klua)
local sgemm4k = collect["sgemm-4096"] and median(collect["sgemm-4096"].klua)
local flops = { -- per step, for the matrix-bound rows
  mlp = 3 * 2 * 128 * (784 * 256 + 256 * 256 + 256 * 10),
  ["dense-big"] = 3 * 2 * 256 * 4096 * 4096,
}
local targets = {
  mlp = "<= 0.55", vae = "<= 0.3", ["vae-epoch"] = "< 1 s", cnn = "<= 0.5", ["lstm-10x1"] = "<= 0.5",
  ["lstm-50x32"] = "<= 0.5", ["dense-big"] = ">= 90% sgemm", ["infer-1"] = "<= 0.2", ["infer-1024"] = "<= 1.0",
  overhead = "<= 0.3", startup = "<= 0.05",
}
-- Why a target may be missed (printed under the table for rows that miss).
local reasons = {
  mlp = "matrix-bound: its products run at OpenBLAS's rate for these shapes (128x784x256 reaches ~75% of the 1024^3 rate), and this machine pins OPENBLAS_CORETYPE=Haswell (AVX2 kernels on an AVX-512 CPU)",
  vae = "about 60 small ops a step at ~0.5 us of framework overhead each, plus OpenBLAS's packing cost on 64-row products",
  ["vae-epoch"] = "938 steps of the vae row plus the shuffle/batch pipeline; memory: both sides hold the 188 MB data set, klua adds up to one collection budget of temporaries",
  ["lstm-10x1"] = "the recurrent product per timestep is 50x64x256 per thread, too small for OpenBLAS to run near its peak",
  ["lstm-50x32"] = "as lstm-10x1: per-timestep products of 50x64x256 per thread",
  ["dense-big"] = "OpenBLAS runs the two gradient products (transposed operands) below its plain NN rate",
  ["infer-1"] = "three fused dense ops: sgemv over 0.8 MB of weights (~9 us single-threaded for the first layer) plus ~2 us of Lua per layer call; this VM's timing noise (±20%) straddles the target",
  ["infer-1024"] = "matrix-bound: OpenBLAS's rate on 1024x784x256 (pinned to its Haswell kernels here) sets both sides; within noise of PyTorch",
  overhead = "a step is a tape, a layer call, a loss, a gradient and an optimizer update: about 15 C calls from Lua",
  startup = "",
  cnn = "",
  memory = "klua frees a step's temporaries at the next collection (every 8 MB of tensors, more with a large Lua heap), so up to that budget sits beside the live tensors; both sides hold the same data",
}

local units = { ["infer-1"] = "µs", overhead = "µs", ["vae-epoch"] = "ms", startup = "ms" }
local order = { "mlp", "vae", "vae-epoch", "cnn", "lstm-10x1", "lstm-50x32", "dense-big", "infer-1", "infer-1024", "overhead", "startup" }

-- met(name, klua_median, torch_median): true/false, or nil when it cannot be judged
local function met(name, km, tm, c)
  local t = targets[name]
  if not t then return nil end
  if name == "dense-big" then
    local ref = collect["sgemm-4096"] and median(collect["sgemm-4096"].klua)
    if not ref then return nil end
    return flops[name] / (km * 1e-3) / 1e9 >= 0.9 * ref
  elseif name == "vae-epoch" then
    return km < 1000
  elseif tm then
    return km / tm <= tonumber(t:match("[%d.]+"))
  end
  return nil
end

print(("%-11s %12s %18s %12s %18s %7s %8s %8s  %-13s %-5s %s"):format("workload", "klua", "(spread)", "PyTorch", "(spread)", "ratio",
  "klua MB", "torch MB", "target", "met", "notes"))
local misses = {}
for _, name in ipairs(order) do
  local c = collect[name]
  if c and #c.klua > 0 then
    local km = median(c.klua)
    local kspread = ("%.3g–%.3g"):format(math.min(unpack(c.klua)), math.max(unpack(c.klua)))
    local tm, tspread, ratio = nil, "", ""
    if #c.torch > 0 then
      tm = median(c.torch)
      tspread = ("%.3g–%.3g"):format(math.min(unpack(c.torch)), math.max(unpack(c.torch)))
      ratio = ("%.2f"):format(km / tm)
    end
    local notes = ""
    if flops[name] then
      local rate = flops[name] / (km * 1e-3) / 1e9
      local ref = name == "dense-big" and sgemm4k or sgemm
      notes = ("%.0f GFLOP/s"):format(rate)
      if ref then
        notes = notes .. (" = %.0f%% of sgemm %.0f"):format(100 * rate / ref, ref)
        if name == "mlp" then notes = notes .. ("; matmuls at sgemm rate %.2f ms"):format(flops[name] / (ref * 1e9) * 1e3) end
      end
    end
    local u = units[name] or "ms"
    local ok = met(name, km, tm, c)
    if ok == false then misses[#misses + 1] = name end
    if #c.torch > 0 and c.trss > 0 and c.krss > 0.5 * c.trss and name ~= "startup" then
      notes = notes .. (notes ~= "" and "; " or "") .. ("memory %.2fx PyTorch's (target 0.5x)"):format(c.krss / c.trss)
      misses[#misses + 1] = name .. " memory"
    end
    print(("%-11s %9.3f %-2s %18s %12s %18s %7s %8.0f %8s  %-13s %-5s %s"):format(name, km, u, kspread,
      tm and ("%.3f"):format(tm) or "-", tspread, ratio, c.krss, #c.torch > 0 and ("%.0f"):format(c.trss) or "-",
      targets[name] or "", ok == nil and "-" or (ok and "yes" or "NO"), notes))
  end
end
if #misses > 0 then
  print("\nwhy the missed targets miss:")
  for _, name in ipairs(misses) do
    print(("  %-11s %s"):format(name, name:match(" memory$") and reasons.memory or reasons[name] or ""))
  end
end
-- dist: data parallelism over MPI on this machine (loopback): the MNIST MLP
-- and the VAE step on 2 processes of 1 thread against 1 process of 2 threads,
-- alternating (ROUNDS each), with the all-reduce time and bytes per step and
-- the bus bandwidth reached (scripts/bench_work.lua's `dist` workload).
local function dist_row()
  local have_mpirun = os.execute("command -v mpirun >/dev/null 2>&1")
  if not (have_mpirun == 0 or have_mpirun == true) then
    print("\ndist: skipped: mpirun is not installed (make deps installs openmpi-bin)")
    return
  end
  local ok, why = require("klua.distribution").mpi_available()
  if not ok then print("\ndist: skipped: " .. tostring(why)) return end
  local function loadavg()
    local f = io.open("/proc/loadavg")
    local l = f and f:read("*l") or "?"
    if f then f:close() end
    return l:match("^(%S+ %S+ %S+)") or l
  end
  local root = io.popen("id -u"):read("*l") == "0" and "--allow-run-as-root " or ""
  local alone = "OMP_NUM_THREADS=2 " .. klua_bin .. " scripts/bench_work.lua dist 2>&1"
  local single = "OMP_NUM_THREADS=1 " .. klua_bin .. " scripts/bench_work.lua dist 2>&1"   -- for reference
  local many = ("timeout 120 mpirun %s--oversubscribe --mca btl_vader_single_copy_mechanism none -np 2 -x OMP_NUM_THREADS=1"
    .. " -x KLUA_BUILD=%s %s scripts/bench_work.lua dist 2>&1"):format(root, os.getenv("KLUA_BUILD") or "build", klua_bin)
  local got = {}   -- got["<name>/<processes>x<threads>"] = { {steps/s, ar ms, bytes, bus}, ... }
  local function run_one(cmd)
    local p = io.popen(cmd)
    local out = p:read("*a")
    p:close()
    local any = false
    for name, np, nt, sps, ar, bytes, bus in out:gmatch("DIST (%S+) (%d+) (%d+) (%S+) (%S+) (%S+) (%S+)") do
      local key = name .. "/" .. np .. "x" .. nt
      got[key] = got[key] or {}
      table.insert(got[key], { tonumber(sps), tonumber(ar), tonumber(bytes), tonumber(bus) })
      any = true
    end
    if not any then io.stderr:write("bench: no result from `", cmd, "`:\n", out, "\n") end
  end
  local load_before = loadavg()
  for _ = 1, ROUNDS do run_one(alone); run_one(many); run_one(single) end
  local function med(key, i)
    local list = {}
    for _, r in ipairs(got[key] or {}) do list[#list + 1] = r[i] end
    if #list == 0 then return nil end
    return median(list), math.min(unpack(list)), math.max(unpack(list))
  end
  print(("\ndist (MPI on this machine, loopback; load average %s before, %s after):"):format(load_before, loadavg()))
  print(("%-6s %22s %22s %8s %16s %12s %9s %22s"):format("model", "1 proc x 2 threads", "2 procs x 1 thread", "speed-up",
    "all-reduce/step", "bytes/step", "bus GB/s", "(1 proc x 1 thread)"))
  for _, name in ipairs { "mlp", "vae" } do
    local one, olo, ohi = med(name .. "/1x2", 1)
    local two, tlo, thi = med(name .. "/2x1", 1)
    local ref, rlo, rhi = med(name .. "/1x1", 1)
    if one and two then
      print(("%-6s %8.0f/s (%4.0f–%4.0f) %8.0f/s (%4.0f–%4.0f) %7.2fx %13.2f ms %10.2f MB %9.2f %s"):format(name,
        one, olo, ohi, two, tlo, thi, two / one, med(name .. "/2x1", 2), med(name .. "/2x1", 3) / 1e6, med(name .. "/2x1", 4),
        ref and ("%8.0f/s (%4.0f–%4.0f)"):format(ref, rlo, rhi) or "-"))
    end
  end
  if got["allreduce-4MB/2x1"] then
    print(("all-reduce of one 4 MB bucket alone, 2 processes: %.2f ms, bus bandwidth %.2f GB/s"):format(
      med("allreduce-4MB/2x1", 2), med("allreduce-4MB/2x1", 4)))
  end
  print("steps/s: global steps (MLP 784-256-10, batch 128; VAE, batch 64), median of rounds (min–max); all-reduce time"
    .. " includes waiting for the slower process. The machine is shared: timings move with its load.")
end
if not only or only.dist then dist_row() end

if sgemm then print(("OpenBLAS sgemm in this run: %.0f GFLOP/s at 1024^3, %.0f at 4096^3"):format(sgemm, sgemm4k or 0)) end
if not have_torch then print("PyTorch is not installed (make bench-deps): klua's numbers alone.") end
print(("rounds: %d per workload (alternating klua / PyTorch); PyTorch: 2 threads, OMP_WAIT_POLICY=passive; klua: its defaults (2 threads)"):format(ROUNDS))
