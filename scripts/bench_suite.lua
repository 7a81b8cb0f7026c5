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
if sgemm then print(("OpenBLAS sgemm in this run: %.0f GFLOP/s at 1024^3, %.0f at 4096^3"):format(sgemm, sgemm4k or 0)) end
if not have_torch then print("PyTorch is not installed (make bench-deps): klua's numbers alone.") end
print(("rounds: %d per workload (alternating klua / PyTorch); PyTorch: 2 threads, OMP_WAIT_POLICY=passive; klua: its defaults (2 threads)"):format(ROUNDS))
