-- distribution/training.lua — what fit, evaluate and predict do differently
-- under a multi-process DataParallel (lua/klua/trainers/trainer.lua calls
-- these at marked lines; each is the identity in a single process):
--   * shard(adapter): every process reads its slice of every global batch;
--   * sync_model(model): rank 0's weights (and optimizer state) everywhere,
--     after checking that the processes built the same model;
--   * reduce_logs(model, logs): logs over the whole global batch, from the
--     metrics' summed states, so History and the progress bar are global;
--   * gather_outputs(y, data): predict's outputs for the whole batch;
--   * average_non_trainable(model): moving statistics averaged at epoch end
--     (and the process streams' states gathered for BackupAndRestore);
--   * chief_writes(fn): model:save and save_weights on rank 0 only.
-- Gradients are averaged by the optimizer (distribution.reduce_gradients).
--
-- A global batch of n rows is split as evenly as possible, in order: rank r
-- gets rows [r*floor(n/N) + min(r, n%N), ...), so the processes together see
-- every sample once per epoch, neither padded nor dropped; each process's
-- gradient is weighted by its share of the rows, which makes a step equal to
-- one process's step on the whole batch. A process whose share of a (last)
-- batch is empty takes no forward pass and adds a zero gradient.
local ffi = require("ffi")
local core = require("klua.core")
local tensor = require("klua.tensor")
local ops = require("klua.ops")
local random = require("klua.random")
local structure = require("klua.tree")
local distribution = require("klua.distribution")
local collectives = require("klua.distribution.collectives")

local raise, is_tensor = core.raise, core.is_tensor
local flatten, map = structure.flatten, structure.map
local proc = collectives.process

local M = {}

M.active = distribution.active
M.is_chief = distribution.is_chief

--------------------------------------------------------------------------------
-- Data

-- Rows of a global batch of n for each rank: counts (by rank + 1) and this rank's first row (1-based).
local function split(n, size)
  local base, extra = math.floor(n / size), n % size
  local counts = {}
  for r = 1, size do counts[r] = base + (r <= extra and 1 or 0) end
  local first = proc.rank * base + math.min(proc.rank, extra) + 1
  return counts, first
end
M.split = split

local function rows_of(data)
  for _, t in ipairs(flatten(data[1])) do
    if is_tensor(t) and t.nd > 0 then return tonumber(t.dims[0]) end
  end
  return nil
end

-- The random states that decide the data's order (klua.random's stream and
-- the data's own generators), made rank 0's on every process.
local function sync_order(adapter)
  local gens = adapter:generators()
  local mine = { #gens }
  local function add(st) for i = 1, 4 do mine[#mine + 1] = st[i] end end
  add(random.get_state())
  for _, g in ipairs(gens) do add(g:get_state()) end
  local n = collectives.broadcast_numbers({ #mine }, 0)[1]
  if n ~= #mine then
    raise(("fit: the processes' datasets differ: %d shuffle generators on rank 0, %d on rank %d"):format((n - 5) / 4, #gens, proc.rank))
  end
  local got = collectives.broadcast_numbers(mine, 0)
  local function take(at) return { got[at], got[at + 1], got[at + 2], got[at + 3] } end
  random.set_state(take(2))
  for i, g in ipairs(gens) do g:set_state(take(2 + 4 * i)) end
end

--- shard(adapter, {training=, dataset=, whole_when_short=}): the adapter
-- under a multi-process DataParallel yields this process's rows of each
-- global batch; each batch carries .share = {counts=, first=, rows=} (counts
-- by rank + 1), and .empty when this process's share is empty
-- (whole_when_short: a batch of fewer rows than processes is computed whole
-- on every process instead, for predict). training: the data order is made
-- rank 0's at each epoch and the optimizer told this process's share.
function M.shard(adapter, kw)
  local d = M.active()
  if d == nil then return adapter end
  kw = kw or {}
  local presharded = kw.dataset and not d.auto_shard_dataset
  local proxy = setmetatable({}, { __index = adapter })
  function proxy:epoch()
    if kw.training and not presharded then sync_order(adapter) end
    local nxt = adapter:epoch()
    return function()
      local data = nxt()
      if data == nil then
        if kw.training then distribution.set_batch_share(nil) end
        return nil
      end
      if presharded then return data end
      local n = rows_of(data)
      if n == nil then raise("fit: under DataParallel every batch needs a first (batch) dimension to split") end
      if kw.whole_when_short and n < proc.size then return data end
      local counts, first = split(n, proc.size)
      local mine = counts[proc.rank + 1]
      if kw.training then distribution.set_batch_share(mine, n) end
      local out = { share = { counts = counts, first = first, rows = n } }
      if mine == 0 then
        out.empty = true
        return out
      end
      local last = first + mine - 1
      local function pick(t)
        if is_tensor(t) and t.nd > 0 then return ops.slice_axis(t, 1, first, last) end
        return t
      end
      for i = 1, 3 do if data[i] ~= nil then out[i] = map(data[i], pick) end end
      return out
    end
  end
  return proxy
end

--- empty_train_step(model): the step of a process whose share of the batch
-- is empty: a zero gradient for every trainable weight, so that the
-- collectives of the step still match; the metrics are not updated.
function M.empty_train_step(model)
  for _, l in ipairs(model:_flatten_layers(true)) do
    if rawget(l, "synchronized") == true then
      raise(("fit: BatchNormalization{synchronized = true} needs rows of every batch on every process, but rank %d"
        .. " has none of a batch (fewer rows than the %d processes): give batches of at least %d rows"
        .. " (Dataset:batch(n, {drop_remainder = true}), or a sample count that leaves them)"):format(proc.rank, proc.size, proc.size))
    end
  end
  local vars = model.trainable_weights
  if #vars > 0 then
    local zeros = {}
    for i, v in ipairs(vars) do zeros[i] = tensor.zeros_like(v) end
    model.optimizer:apply_gradients(zeros, vars)
  end
  local c = rawget(model, "_compiled")
  return c and c.built and c:logs() or {}
end

--- empty_test_step(model): the logs unchanged (nothing to evaluate here).
function M.empty_test_step(model)
  local c = rawget(model, "_compiled")
  return c and c.built and c:logs() or {}
end

--- finish(): the end of fit; custom loops get equal shares again.
function M.finish() distribution.set_batch_share(nil) end

--- gather_outputs(y, data): predict's outputs for the whole global batch,
-- in order, on every process.
function M.gather_outputs(y, data)
  if M.active() == nil or not data.share then return y end
  local counts = data.share.counts
  return map(y, function(t) return collectives.all_gather(t, { counts = counts }) end)
end

--------------------------------------------------------------------------------
-- Weights

--- sync_model(model, who): checks that every process holds the same weights
-- (names, shapes, order) and gives every process rank 0's values, with the
-- optimizer's state when it has one.
function M.sync_model(model, who)
  if M.active() == nil then return end
  local vars = {}
  for _, v in ipairs(model.weights) do vars[#vars + 1] = v end
  local opt = rawget(model, "optimizer")
  if opt and opt.variables then
    for _, v in ipairs(opt.variables) do vars[#vars + 1] = v end
  end
  collectives.check_variables(who, vars)
  collectives.broadcast(vars, { root = 0 })
  -- (an optimizer whose step count is a plain number rather than one of its variables)
  if opt and type(rawget(opt, "iterations")) == "number" then
    rawset(opt, "iterations", collectives.broadcast_numbers({ opt.iterations }, 0)[1])
  end
end

-- Every rank's process stream state (klua.random.process_stream), gathered so
-- that rank 0's BackupAndRestore can save them all.
local function gather_process_streams()
  local g = random.process_stream()
  if g == nil then return end
  local all = collectives.gather_strings(table.concat(g:get_state(), ","))
  local states = {}
  for r, s in ipairs(all) do
    local st = {}
    for v in s:gmatch("[^,]+") do st[#st + 1] = tonumber(v) end
    states[tostring(r - 1)] = st
  end
  distribution.set_process_stream_states(states)
end

--- average_non_trainable(model): the non-trainable weights (BatchNormalization's
-- moving statistics) averaged over the processes, at epoch end; the process
-- streams' states are gathered there too (for BackupAndRestore).
function M.average_non_trainable(model)
  if M.active() == nil then return end
  gather_process_streams()
  local vars = model.non_trainable_weights
  if #vars == 0 then return end
  local mean = collectives.all_reduce(vars, { op = "mean" })
  for i, v in ipairs(vars) do v:assign(mean[i]) end
end

--- agree_on(number, what): raises when the processes disagree on a number
-- (the epoch a BackupAndRestore resumes from).
function M.agree_on(value, what)
  if M.active() == nil then return value end
  local got = collectives.reduce_numbers({ value, -value }, "max")
  if got[1] ~= -got[2] then
    raise(("fit: the processes disagree on %s (%s on rank %d; from %s to %s over the processes)")
      :format(what, tostring(value), proc.rank, tostring(-got[2]), tostring(got[1])))
  end
  return value
end

--------------------------------------------------------------------------------
-- Logs
--
-- Each process sums its metrics' states (Keras's metric variables: total and
-- count, confusion counts, ...) with every other's; rank 0 reads each
-- metric's result from the summed state and sends the numbers to all, so
-- every process's callbacks see the same logs. A metric whose state cannot be
-- read that way falls back to the mean of the processes' results.

-- A metric's state: {name, value, shape}, value a number, a tensor, a double
-- array (cdata) or a list of numbers; Metric:_state() when the class has it.
local function state_list(m)
  if type(m._state) == "function" then return m:_state() end
  local out = {}
  if type(m.total) == "number" then out[#out + 1] = { "total", m.total } end
  if type(m.count) == "number" then out[#out + 1] = { "count", m.count } end
  if type(m._n) == "number" and type(m._tp) == "cdata" then
    for _, k in ipairs { "_tp", "_fp", "_tn", "_fn" } do out[#out + 1] = { k, m[k], { m._n } } end
  end
  return out
end

local function size_of(value, shape)
  if type(value) == "number" then return 1 end
  if is_tensor(value) then return tonumber(value.count) end
  if type(value) == "table" then return #value end
  local n = 1
  for _, d in ipairs(shape or {}) do n = n * d end
  return n
end

-- Appends a state value's numbers to out (doubles).
local function push(out, value, n)
  if type(value) == "number" then out[#out + 1] = value; return end
  if type(value) == "table" then for i = 1, n do out[#out + 1] = value[i] end; return end
  if is_tensor(value) then value = value:contiguous().p.data end
  for i = 0, n - 1 do out[#out + 1] = tonumber(value[i]) end
end

-- A value of value's kind holding nums[at + 1 .. at + n].
local function rebuild(value, shape, nums, at, n)
  if type(value) == "number" then return nums[at + 1] end
  local d = ffi.new("double[?]", math.max(n, 1))
  for i = 1, n do d[i - 1] = nums[at + i] end
  if type(value) == "table" then
    local l = {}
    for i = 1, n do l[i] = nums[at + i] end
    return l
  end
  if is_tensor(value) then return tensor.from_doubles(core.shape_of(value), d) end
  return d
end

-- The field of m that holds a state value: the one field holding that very
-- object, or "_<name>" / "<name>" holding that number.
local function field_of(m, name, value)
  local found = {}
  if type(value) == "number" then
    for _, k in ipairs { "_" .. name, name } do
      if rawget(m, k) == value then return k end
    end
    return nil
  end
  for k, v in pairs(m) do if rawequal(v, value) then found[#found + 1] = k end end
  if #found == 1 then return found[1] end
  for _, k in ipairs(found) do if k == "_" .. name or k == name then return k end end
  return nil
end

local function scalar_of(v)
  if is_tensor(v) then return tonumber(v.count) == 1 and v:item() or nil end
  return type(v) == "number" and v or nil
end

-- How compile_utils reads a metric for the logs.
local function metric_value(m)
  if m._value then return m:_value() end
  return scalar_of(m:result())
end

-- The result m would have with the summed state nums[at + 1 ...], or nil.
local function result_from(m, states, nums, at)
  local fields, saved = {}, {}
  for i, s in ipairs(states) do
    local f = field_of(m, s[1], s[2])
    if f == nil then return nil end
    fields[i] = f
  end
  for i, s in ipairs(states) do
    local n = size_of(s[2], s[3])
    saved[i] = rawget(m, fields[i])
    m[fields[i]] = rebuild(s[2], s[3], nums, at, n)
    at = at + n
  end
  local ok, r = pcall(metric_value, m)
  for i = #states, 1, -1 do m[fields[i]] = saved[i] end
  if not ok then error(r, 0) end
  return r
end

-- This process's entries: {name=, nums= (state numbers, then result and 1), metric=, states=}.
local function entries_of(model, logs)
  local c = rawget(model, "_compiled")
  local entries, seen = {}, {}
  if c and c.built then
    local metrics, names = c:all_metrics(), c:log_names()
    for i, m in ipairs(metrics) do
      local name = names[i]
      if name and logs[name] ~= nil then
        local states, nums = state_list(m), {}
        for _, st in ipairs(states) do push(nums, st[2], size_of(st[2], st[3])) end
        local r = scalar_of(logs[name])
        nums[#nums + 1], nums[#nums + 2] = r or 0, r and 1 or 0
        entries[#entries + 1] = { name = name, nums = nums, metric = m, states = states }
        seen[name] = true
      end
    end
  end
  local rest = {}
  for k, v in pairs(logs) do
    if not seen[k] and type(k) == "string" and scalar_of(v) ~= nil then rest[#rest + 1] = k end
  end
  table.sort(rest)
  for _, k in ipairs(rest) do entries[#entries + 1] = { name = k, nums = { scalar_of(logs[k]), 1 } } end
  return entries
end

local function layout_of(entries)
  local parts = {}
  for i, e in ipairs(entries) do parts[i] = e.name .. "=" .. #e.nums end
  return table.concat(parts, ";")
end

-- When the processes' layouts differ (a process that has not updated a
-- metric yet: an empty share, a metric whose state is made by its first
-- update), the layout with the most numbers is used; a process lacking an
-- entry's numbers adds zeros in their place.
local function canonical(entries)
  local layouts = collectives.gather_strings(layout_of(entries))
  local best, best_len = layouts[1], -1
  for _, l in ipairs(layouts) do
    local total = 0
    for n in l:gmatch("=(%d+)") do total = total + tonumber(n) end
    if total > best_len then best, best_len = l, total end
  end
  local by_name = {}
  for _, e in ipairs(entries) do by_name[e.name] = e end
  local out = {}
  for item in best:gmatch("[^;]+") do
    local name, n = item:match("^(.*)=(%d+)$")
    n = tonumber(n)
    local e = by_name[name]
    if e and #e.nums == n then
      out[#out + 1] = e
    else
      local zeros = {}
      for k = 1, n do zeros[k] = 0 end
      out[#out + 1] = { name = name, nums = zeros }
    end
  end
  return out
end

--- reduce_logs(model, logs): the logs over the global batch, the same
-- numbers on every process (see above).
function M.reduce_logs(model, logs)
  if M.active() == nil or logs == nil then return logs end
  local entries = entries_of(model, logs)
  if not collectives.agree(layout_of(entries)) then entries = canonical(entries) end
  local flat = {}
  for _, e in ipairs(entries) do for _, x in ipairs(e.nums) do flat[#flat + 1] = x end end
  local sum = collectives.reduce_numbers(flat, "sum")
  local values, at = {}, 0
  for i, e in ipairs(entries) do
    local n = #e.nums
    local v
    if proc.rank == 0 then
      if e.metric then v = scalar_of(result_from(e.metric, e.states, sum, at)) end
      if v == nil then
        local r, k = sum[at + n - 1], sum[at + n]
        v = k > 0 and r / k or 0
      end
    end
    values[i] = v or 0
    at = at + n
  end
  values = collectives.broadcast_numbers(values, 0)
  local out = {}
  for k, v in pairs(logs) do out[k] = v end
  for i, e in ipairs(entries) do out[e.name] = values[i] end
  return out
end

--------------------------------------------------------------------------------
-- Files

--- chief_writes(fn): fn (a method that writes a file) run on rank 0 only
-- under a multi-process distribution; the other processes return at once, so
-- the usual `if dist.process_id() == 0 then model:save(...) end` is fine too.
-- (A process that loads the file right after should call dist.barrier() first.)
function M.chief_writes(fn)
  return function(...)
    if M.active() ~= nil and proc.rank ~= 0 then return nil end
    return fn(...)
  end
end

return M
