-- distribution/collectives.lua — the processes of an MPI job (rank, size) and
-- the collectives on tensors that klua.distribution builds on: all_reduce
-- (fused into buckets, one non-blocking MPI call per bucket), broadcast,
-- all_gather, barrier, and the check that every process holds the same list
-- of variables. In a plain process (no mpirun, or no MPI) there is one
-- process and every collective returns its input.
local ffi = require("ffi")
local core = require("klua.core")
local tensor = require("klua.tensor")
local variable = require("klua.variable")
local structure = require("klua.tree")
local mpi = require("klua.distribution.mpi")

local raise, is_tensor, shape_str = core.raise, core.is_tensor, core.shape_str
local FLOAT, DOUBLE, BYTE = mpi.FLOAT, mpi.DOUBLE, mpi.BYTE

local M = {}

-- The process: rank 0 of 1 until initialize() finds a launcher.
local proc = { initialized = false, rank = 0, size = 1, local_rank = 0, local_size = 1, host = "localhost" }
M.process = proc

--- launched(): the size of the job when this process was started by
-- mpirun/mpiexec (Open MPI, MPICH or PMIx variables), else nil.
function M.launched()
  local n = os.getenv("OMPI_COMM_WORLD_SIZE") or os.getenv("PMI_SIZE") or os.getenv("PMIX_SIZE")
  if n == nil and os.getenv("PMIX_RANK") then n = "1" end
  return n and tonumber(n) or nil
end

--- initialize(): joins the MPI job this process was launched in (a no-op in
-- a plain process, and when already done). Returns the process table.
function M.initialize()
  if proc.initialized then return proc end
  local launched = M.launched()
  if launched == nil then return proc end
  local info = mpi.init()
  for k, v in pairs(info) do proc[k] = v end
  proc.initialized = true
  -- One process per core unless the user said otherwise: several processes
  -- on one machine each spinning up every core's thread would fight.
  if proc.local_size > 1 and os.getenv("OMP_NUM_THREADS") == nil then
    core.set_num_threads(math.max(1, math.floor(core.get_num_threads() / proc.local_size)))
  end
  return proc
end

function M.rank() return proc.rank end
function M.size() return proc.size end

--------------------------------------------------------------------------------
-- Buffers

-- A float tensor's data as a contiguous tensor (a copy when it is a view).
local function contiguous(t)
  if t.p.contiguous == 0 then return t:contiguous() end
  return t
end

local function new_like(t) return tensor.empty(core.shape_of(t)) end

--------------------------------------------------------------------------------
-- Checking that the processes agree

-- Two polynomial hashes of s, each below 2^32 (exact in doubles).
local function hash(s)
  local a, b = 0, 0
  for i = 1, #s do
    local c = s:byte(i)
    a = (a * 31 + c) % 4294967296
    b = (b * 131 + c) % 4294967291
  end
  return a, b
end

--- gather_strings(s): every rank's string, as a list indexed by rank + 1.
function M.gather_strings(s)
  if proc.size == 1 then return { s } end
  local n = proc.size
  local lens = ffi.new("double[?]", n)
  local mine = ffi.new("double[1]", #s)
  mpi.allgather(mine, 1, lens, DOUBLE)
  local counts, total = {}, 0
  for r = 1, n do counts[r] = tonumber(lens[r - 1]); total = total + counts[r] end
  local recv = ffi.new("char[?]", math.max(total, 1))
  mpi.allgatherv(s, #s, recv, counts, BYTE)
  local out, off = {}, 0
  for r = 1, n do out[r] = ffi.string(recv + off, counts[r]); off = off + counts[r] end
  return out
end

--- agree(s): true when every rank passed the same string (one small allreduce).
function M.agree(s)
  if proc.size == 1 then return true end
  local a, b = hash(s)
  local buf = ffi.new("double[6]", #s, -#s, a, -a, b, -b)
  mpi.allreduce(buf, 6, DOUBLE, mpi.MAX)
  return buf[0] == -buf[1] and buf[2] == -buf[3] and buf[4] == -buf[5]
end

local function describe(list)
  local lines = {}
  for i, v in ipairs(list) do
    lines[i] = variable.path_of(v) .. " " .. shape_str(core.shape_of(v))
  end
  return table.concat(lines, "\n")
end

-- The first difference between the ranks' descriptions, as a sentence.
local function first_difference(descs)
  local per = {}
  for r, d in ipairs(descs) do
    local l = {}
    for line in (d .. "\n"):gmatch("(.-)\n") do if line ~= "" then l[#l + 1] = line end end
    per[r] = l
  end
  local longest = 0
  for _, l in ipairs(per) do longest = math.max(longest, #l) end
  for i = 1, longest do
    local ref = per[1][i]
    for r = 2, #per do
      if per[r][i] ~= ref then
        local parts = {}
        for q, l in ipairs(per) do
          local e = l[i]
          local name, shape = (e or ""):match("^(.-) (%(.*%))$")
          parts[#parts + 1] = e and ("'%s' %s on rank %d"):format(name, shape, q - 1) or ("nothing on rank %d"):format(q - 1)
        end
        return ("variable %d is %s"):format(i, table.concat(parts, ", "))
      end
    end
  end
  return "the lists differ"
end

--- check_variables(who, vars): raises on every rank, naming the first
-- variable whose name or shape differs, when the ranks' lists differ.
function M.check_variables(who, vars)
  if proc.size == 1 then return end
  local d = describe(vars)
  if M.agree(d) then return end
  local descs = M.gather_strings(d)
  local counts = {}
  for r, s in ipairs(descs) do
    local n = 0
    for _ in s:gmatch("[^\n]+") do n = n + 1 end
    counts[r] = ("%d on rank %d"):format(n, r - 1)
  end
  raise(("%s: the processes hold different models (variables: %s); %s. Every process must build the same model"
    .. " (the same layers, sizes and order)"):format(who, table.concat(counts, ", "), first_difference(descs)))
end

--------------------------------------------------------------------------------
-- Fused all-reduce: buckets of a few MB, one non-blocking MPI call each

M.bucket_bytes = 4 * 2 ^ 20
-- Several buckets go out as non-blocking MPI_Iallreduce calls, all started
-- before the first is waited for; one bucket as a blocking MPI_Allreduce:
-- with nothing to overlap, Open MPI's tuned blocking algorithms beat its
-- non-blocking ones (libnbc) in our measurements (0.09 against 0.15 ms for
-- 0.8 MB on 2 processes; a loaded 2-core VM, so only roughly).
M.nonblocking = true

-- Plans (which tensors go in which bucket, and the bucket buffers) by layout.
local plans, n_plans = {}, 0

local function plan_for(counts)
  local cap = math.max(1, math.floor(M.bucket_bytes / 4))
  local key = cap .. ":" .. table.concat(counts, ",")
  local p = plans[key]
  if p then return p end
  if n_plans >= 16 then plans, n_plans = {}, 0 end
  p = { buckets = {} }
  local cur
  for i, n in ipairs(counts) do
    if cur == nil or (cur.count + n > cap and cur.count > 0) then
      cur = { first = i, last = i, count = 0, offsets = {} }
      p.buckets[#p.buckets + 1] = cur
    end
    cur.offsets[i] = cur.count
    cur.count = cur.count + n
    cur.last = i
  end
  for _, b in ipairs(p.buckets) do b.buffer = tensor.empty { math.max(b.count, 1) } end
  plans[key], n_plans = p, n_plans + 1
  return p
end

--- reduce_list(list, scale): sum over processes of scale * t for each tensor
-- of the list (no holes), as new tensors. The tensors are packed into buckets
-- of M.bucket_bytes, one MPI call per bucket (see M.nonblocking).
function M.reduce_list(list, scale)
  scale = scale or 1
  local n = #list
  local src, counts = {}, {}
  for i = 1, n do
    src[i] = contiguous(list[i])
    counts[i] = tonumber(src[i].count)
  end
  local p = plan_for(counts)
  local reqs = {}
  local single = #p.buckets == 1 or not M.nonblocking
  for b, bk in ipairs(p.buckets) do
    local buf = bk.buffer.p.data
    for i = bk.first, bk.last do mpi.copy_scaled(buf + bk.offsets[i], src[i].p.data, counts[i], scale) end
    if single then mpi.allreduce(buf, bk.count, FLOAT, mpi.SUM)
    else reqs[b] = mpi.iallreduce(buf, bk.count, FLOAT, mpi.SUM) end
  end
  local out = {}
  for b, bk in ipairs(p.buckets) do
    if not single then mpi.wait(reqs[b]) end
    local buf = bk.buffer.p.data
    for i = bk.first, bk.last do
      local o = new_like(src[i])
      ffi.copy(o.p.data, buf + bk.offsets[i], counts[i] * 4)
      out[i] = o
    end
  end
  return out
end

-- Tensors of a structure x (nil holes of a list kept) and how to rebuild it.
local function leaves(x, who)
  if is_tensor(x) then return { x }, function(list) return list[1] end end
  if not structure.is_struct(x) then raise(("%s: expected a tensor or a table of tensors, got %s"):format(who, type(x))) end
  local keys, list = {}, {}
  local n = x.n or table.maxn(x)
  for i = 1, n do keys[#keys + 1] = i end
  for k in pairs(x) do if type(k) ~= "number" and k ~= "n" then keys[#keys + 1] = k end end
  for _, k in ipairs(keys) do
    local v = x[k]
    if v ~= nil and not is_tensor(v) then v = tensor.T(v) end
    list[#list + 1] = v or false
  end
  return list, function(vals)
    local out = { n = x.n }
    for j, k in ipairs(keys) do if vals[j] then out[k] = vals[j] end end
    return out
  end
end

local OPS = { sum = mpi.SUM, mean = mpi.SUM, max = mpi.MAX, min = mpi.MIN }

--- all_reduce(x, {op="mean"}): x (a tensor or a table of tensors, nil holes
-- kept) reduced over every process: "mean" (the default, what gradients
-- need), "sum", "max" or "min". Returns new tensors; x is not changed.
function M.all_reduce(x, kw)
  kw = kw or {}
  local op = kw.op or "mean"
  if not OPS[op] then raise(("all_reduce: op must be \"mean\", \"sum\", \"max\" or \"min\". Received: op=%s"):format(tostring(op))) end
  local list, rebuild = leaves(x, "all_reduce")
  if proc.size == 1 then return x end
  local dense, where = {}, {}
  for j, t in ipairs(list) do
    if t then dense[#dense + 1] = t; where[#dense] = j end
  end
  local vals = {}
  if op == "sum" or op == "mean" then
    local r = M.reduce_list(dense, op == "mean" and 1 / proc.size or 1)
    for i, t in ipairs(r) do vals[where[i]] = t end
  else
    for i, t in ipairs(dense) do
      local o = contiguous(t)
      o = o == t and t:clone() or o
      mpi.allreduce(o.p.data, o.count, FLOAT, OPS[op])
      vals[where[i]] = o
    end
  end
  for j = 1, #list do if vals[j] == nil then vals[j] = false end end
  return rebuild(vals)
end

--- broadcast(x, {root=0}): rank root's values on every process. Variables
-- are assigned in place (broadcast(model.weights) makes every process's
-- model rank 0's); plain tensors are returned as new tensors.
function M.broadcast(x, kw)
  kw = kw or {}
  local root = kw.root or 0
  if type(root) ~= "number" or root % 1 ~= 0 or root < 0 or root >= proc.size then
    raise(("broadcast: root must be a rank in [0, %d). Received: root=%s"):format(proc.size, tostring(root)))
  end
  local list, rebuild = leaves(x, "broadcast")
  if proc.size == 1 then return x end
  local vals = {}
  for j, t in ipairs(list) do
    if t then
      if variable.is_variable(t) and t.p.contiguous ~= 0 then
        mpi.broadcast(t.p.data, t.count, FLOAT, root)
        vals[j] = t
      else
        local o = t:clone()
        mpi.broadcast(o.p.data, o.count, FLOAT, root)
        vals[j] = o
      end
    else
      vals[j] = false
    end
  end
  return rebuild(vals)
end

--- broadcast_numbers(list, root): a Lua list of numbers, rank root's on every process.
function M.broadcast_numbers(list, root)
  if proc.size == 1 then return list end
  local n = #list
  local buf = ffi.new("double[?]", math.max(n, 1))
  for i = 1, n do buf[i - 1] = list[i] end
  mpi.broadcast(buf, n, DOUBLE, root or 0)
  local out = {}
  for i = 1, n do out[i] = tonumber(buf[i - 1]) end
  return out
end

--- reduce_numbers(list, op): a Lua list of numbers reduced over processes in
-- double precision ("sum", "max" or "min").
function M.reduce_numbers(list, op)
  if proc.size == 1 then return list end
  local n = #list
  if n == 0 then return list end
  local buf = ffi.new("double[?]", n)
  for i = 1, n do buf[i - 1] = list[i] end
  mpi.allreduce(buf, n, DOUBLE, OPS[op or "sum"])
  local out = {}
  for i = 1, n do out[i] = tonumber(buf[i - 1]) end
  return out
end

--- all_gather(x, {counts=}): the tensors of every process joined along the
-- first axis, in rank order (the first axis may differ between processes;
-- counts, the rows of each rank when every process knows them, saves a call).
function M.all_gather(x, kw)
  if not is_tensor(x) then raise("all_gather: expected a tensor, got " .. type(x)) end
  if proc.size == 1 then return x end
  local t = contiguous(x)
  local shape = core.shape_of(t)
  if #shape == 0 then t = t:reshape { 1 }; shape = { 1 } end
  local row = 1
  for i = 2, #shape do row = row * shape[i] end
  local rows = kw and kw.counts
  if not rows then
    rows = {}
    local trail = table.concat(shape, ",", 2)
    local all = M.gather_strings(("%d|%s"):format(shape[1], trail))
    for r, s in ipairs(all) do
      local n, tr = s:match("^(%d+)|(.*)$")
      if tr ~= trail then
        raise(("all_gather: the tensors must agree beyond the first axis: %s on rank %d, (%s) on rank %d")
          :format(shape_str(shape), proc.rank, tr, r - 1))
      end
      rows[r] = tonumber(n)
    end
  end
  local counts, total = {}, 0
  for r = 1, proc.size do counts[r] = rows[r] * row; total = total + rows[r] end
  local out_shape = { total }
  for i = 2, #shape do out_shape[i] = shape[i] end
  local out = tensor.empty(out_shape)
  mpi.allgatherv(t.p.data, t.count, out.p.data, counts, FLOAT)
  return out
end

--- barrier(): returns when every process has called it.
function M.barrier()
  if proc.size > 1 then mpi.barrier() end
end

M.stats = mpi.stats

return M
