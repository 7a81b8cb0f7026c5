-- distribution/init.lua — klua.distribution: Keras 3's distribution API
-- (keras/src/distribution/distribution_lib.py) in Lua spelling, for data
-- parallelism over MPI processes: one process per replica, launched by
-- mpirun, each on its own slice of every global batch, gradients averaged.
--
--   local dist = klua.distribution
--   dist.initialize()                                   -- joins the mpirun job (no-op alone)
--   dist.set_distribution(dist.DataParallel{auto_shard_dataset = true})
--   model:fit{x = x, y = y, batch_size = 256}           -- 256 = the global batch
--
-- What it is not: there are no devices below the process (one CPU replica per
-- process, so list_devices() is one "cpu:<rank>" per process) and no model
-- parallelism (ModelParallel, LayoutMap, TensorLayout are not provided).
local core = require("klua.core")
local class = require("klua.class")
local collectives = require("klua.distribution.collectives")
local random = require("klua.random")

local raise = core.raise
local proc = collectives.process

local M = {}

--------------------------------------------------------------------------------
-- The processes

--- initialize{num_processes=, process_id=, job_addresses=} (or positional, as
-- Keras's): joins the MPI job that mpirun started this process in, reading
-- the rank and size from MPI. A no-op in a plain process and when called
-- again. The arguments are optional checks (Keras's names): MPI decides.
function M.initialize(a, b, c)
  local kw = type(a) == "table" and a or { job_addresses = a, num_processes = b, process_id = c }
  for k in pairs(kw) do
    if k ~= "job_addresses" and k ~= "num_processes" and k ~= "process_id" then
      raise(("initialize: unknown argument `%s`"):format(tostring(k)))
    end
  end
  local launched = collectives.launched()
  if launched == nil and kw.num_processes ~= nil and kw.num_processes > 1 then
    raise(("initialize: num_processes=%d, but this process was not started by mpirun"
      .. " (run: mpirun -np %d klua script.lua)"):format(kw.num_processes, kw.num_processes))
  end
  collectives.initialize()
  if proc.size > 1 then random.start_process_stream(proc.rank) end
  if kw.num_processes ~= nil and kw.num_processes ~= proc.size then
    raise(("initialize: num_processes=%d, but mpirun started %d processes"):format(kw.num_processes, proc.size))
  end
  if kw.process_id ~= nil and kw.process_id ~= proc.rank then
    raise(("initialize: process_id=%d, but MPI gave this process rank %d"):format(kw.process_id, proc.rank))
  end
end

--- num_processes(): the processes of the job (1 in a plain process).
function M.num_processes() return proc.size end
--- process_id(): this process's rank, 0-based (Keras's name).
function M.process_id() return proc.rank end
--- is_initialized(): whether initialize() joined an MPI job.
function M.is_initialized() return proc.initialized end
--- mpi_available(): whether klua was built with MPI (libklua_mpi.so loads), and why not.
function M.mpi_available() return require("klua.distribution.mpi").available() end

-- A launched process joins its job on first use, so that DataParallel()
-- counts every process even when initialize() was forgotten.
local function ensure_joined()
  if not proc.initialized and collectives.launched() then collectives.initialize() end
end

--- list_devices(device_type): "cpu:<rank>" for every process of the job
-- (global devices, as in Keras). klua has no "gpu" or "tpu" devices: {}.
function M.list_devices(device_type)
  if device_type ~= nil and device_type ~= "cpu" then
    if device_type == "gpu" or device_type == "tpu" then return {} end
    raise(("list_devices: device_type must be \"cpu\", \"gpu\" or \"tpu\". Received: device_type=%s"):format(tostring(device_type)))
  end
  ensure_joined()
  local out = {}
  for r = 0, proc.size - 1 do out[r + 1] = "cpu:" .. r end
  return out
end

--- get_device_count(device_type): #list_devices(device_type).
function M.get_device_count(device_type) return #M.list_devices(device_type) end

--------------------------------------------------------------------------------
-- DeviceMesh

local DeviceMesh = class("DeviceMesh")
M.DeviceMesh = DeviceMesh

--- DeviceMesh{shape=, axis_names=, devices=} (or positional): Keras's
-- checks; klua uses meshes of one axis (data parallelism) only.
function DeviceMesh:__init(shape, axis_names, devices)
  if type(shape) == "table" and axis_names == nil and shape.shape ~= nil then
    shape, axis_names, devices = shape.shape, shape.axis_names, shape.devices
  end
  if type(axis_names) == "string" then axis_names = axis_names == "" and {} or { axis_names } end
  if shape == nil or type(shape) ~= "table" or #shape == 0 or axis_names == nil or #axis_names == 0 then
    raise(("DeviceMesh: Shape and axis_names cannot be empty. Received: shape=%s, axis_names=%s")
      :format(core.shape_str(type(shape) == "table" and shape or {}), table.concat(axis_names or {}, ",")))
  end
  if #shape ~= #axis_names then
    raise(("DeviceMesh: Shape and axis_names should have same size. Received: shape=%s, axis_names={%s}")
      :format(core.shape_str(shape), table.concat(axis_names, ", ")))
  end
  devices = devices or M.list_devices()
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  if n ~= #devices then
    raise(("DeviceMesh: Shape does not match the number of devices. Received: shape=%s; devices.shape=(%d,)")
      :format(core.shape_str(shape), #devices))
  end
  self.shape, self.axis_names, self.devices = shape, axis_names, devices
end

function DeviceMesh:__tostring()
  return ("<DeviceMesh shape=%s, axis_names={%s}>"):format(core.shape_str(self.shape), table.concat(self.axis_names, ", "))
end

--------------------------------------------------------------------------------
-- DataParallel

local DataParallel = class("DataParallel")
M.DataParallel = DataParallel

--- DataParallel{device_mesh=, devices=, auto_shard_dataset=true}: one model
-- replica per process. fit's batch_size is the global batch, and each process
-- trains on its own slice of every batch (auto_shard_dataset=false: a Dataset
-- is taken as already sharded, each process's batches its own). Fields:
-- num_processes, data_shard_id (= rank), rank, batch_dim_name, device_mesh,
-- num_model_replicas, auto_shard_dataset.
function DataParallel:__init(kw)
  kw = kw or {}
  if class.is_instance(kw, DeviceMesh) then kw = { device_mesh = kw } end
  for k in pairs(kw) do
    if k ~= "device_mesh" and k ~= "devices" and k ~= "auto_shard_dataset" then
      raise(("DataParallel: unknown argument `%s`"):format(tostring(k)))
    end
  end
  ensure_joined()
  local mesh = kw.device_mesh
  if mesh ~= nil then
    if not class.is_instance(mesh, DeviceMesh) then
      raise(("DataParallel: Expect `mesh` to be an instance of `DeviceMesh`. Received: mesh=%s"):format(class.name_of(mesh)))
    end
    if #mesh.shape ~= 1 then
      raise(("DataParallel: klua's meshes have one axis (one replica per process). Received: shape=%s"):format(core.shape_str(mesh.shape)))
    end
    self.batch_dim_name = mesh.axis_names[1]
  else
    local devices = kw.devices or M.list_devices()
    mesh = DeviceMesh({ #devices }, { "batch" }, devices)
    self.batch_dim_name = "batch"
  end
  if #mesh.devices ~= proc.size then
    raise(("DataParallel: klua runs one replica per process: expected %d devices (one per process), got %d")
      :format(proc.size, #mesh.devices))
  end
  self.device_mesh = mesh
  self.auto_shard_dataset = kw.auto_shard_dataset ~= false
  self.num_processes = proc.size
  self.num_model_replicas = proc.size
  self.num_data_shards = proc.size
  self.rank = proc.rank
  self.data_shard_id = proc.rank
  self._process_id = proc.rank
  self._is_multi_process = proc.size > 1
end

function DataParallel:__tostring()
  return ("<DataParallel device_mesh=%s, process %d of %d>"):format(tostring(self.device_mesh), self.rank, self.num_processes)
end

--------------------------------------------------------------------------------
-- The global distribution

local current = nil

--- set_distribution(d): d (a DataParallel, or nil) becomes the distribution
-- that fit, evaluate, predict and the optimizers follow. In a job of several
-- processes it also (re)starts klua.random's process stream (as initialize()
-- does), from which unseeded Dropout, recurrent and attention dropout draw:
-- their masks differ by rank, reproducibly, while the global stream (data
-- order, initial weights) stays common.
function M.set_distribution(d)
  if d ~= nil and not class.is_instance(d, DataParallel) then
    raise(("set_distribution: expected a klua.distribution.DataParallel (or nil), got %s"):format(class.name_of(d)))
  end
  current = d
  if proc.size > 1 then random.start_process_stream(proc.rank) end
end

--- distribution(): the current distribution, or nil.
function M.distribution() return current end

--- d:scope(fn, ...): fn(...) with d as the distribution, the previous one restored after.
function DataParallel:scope(fn, ...)
  local before = current
  current = self
  local function finish(ok, ...)
    current = before
    if not ok then error((...), 0) end
    return ...
  end
  return finish(pcall(fn, ...))
end

--- active(): the current distribution when it spans several processes, else nil.
function M.active()
  if current ~= nil and current.num_processes > 1 then return current end
  return nil
end

--- is_chief(): false only on the processes other than rank 0 of a
-- multi-process distribution; they neither print progress nor write files.
function M.is_chief() return M.active() == nil or proc.rank == 0 end

--------------------------------------------------------------------------------
-- The process streams' states, for BackupAndRestore: only rank 0 writes the
-- backup, so fit gathers every rank's state at each epoch's end
-- (distribution/training.lua) and the backup keeps them all.

local gathered = nil   -- { ["<rank>"] = {four integers}, ... }
local function same_state(a, b)
  for i = 1, 4 do if a[i] ~= b[i] then return false end end
  return true
end

--- set_process_stream_states(t): what the last gather returned (by rank, as strings).
function M.set_process_stream_states(t) gathered = t end

--- process_stream_states(): {["<rank>"] = state} for every rank when this
-- rank's entry of the last gather is its stream's state now, else this
-- rank's alone; nil when there is no process stream.
function M.process_stream_states()
  local g = random.process_stream()
  if g == nil then return nil end
  local mine, key = g:get_state(), tostring(proc.rank)
  if gathered and gathered[key] and same_state(gathered[key], mine) then return gathered end
  return { [key] = mine }
end

--------------------------------------------------------------------------------
-- Collectives on tensors (see distribution/collectives.lua)

M.all_reduce = collectives.all_reduce
M.broadcast = collectives.broadcast
M.all_gather = collectives.all_gather
M.barrier = collectives.barrier

--- stats(reset): {seconds=, bytes=, calls=} spent in collectives so far.
M.stats = collectives.stats

--- bucket_size(bytes): the size of the fused gradient buckets (default 4 MB).
function M.bucket_size(bytes)
  if bytes ~= nil then
    if type(bytes) ~= "number" or bytes < 4 then raise("bucket_size: expected a number of bytes >= 4. Received: " .. tostring(bytes)) end
    collectives.bucket_bytes = bytes
  end
  return collectives.bucket_bytes
end

--------------------------------------------------------------------------------
-- Gradients

-- The share of the current global batch that this process holds, set by
-- fit's data (distribution/training.lua); nil in custom loops (equal shares).
local share = nil
--- set_batch_share(local_rows, global_rows) or set_batch_share(nil).
function M.set_batch_share(n_local, n_global)
  share = n_local and { n_local, n_global } or nil
end

--- gradient_weight(): the weight the optimizer gives this process's
-- gradient (its share of the batch inside fit, 1/N otherwise).
function M.gradient_weight()
  if share then return share[2] > 0 and share[1] / share[2] or 0 end
  return 1 / proc.size
end

-- The variables whose names and shapes were last checked across processes.
local checked = {}
local function same_as_checked(vars)
  if #vars ~= #checked then return false end
  for i = 1, #vars do if vars[i] ~= checked[i] then return false end end
  return true
end

--- reduce_gradients(grads, vars): under a multi-process distribution, the
-- gradients averaged over the processes (weighted by each process's rows of
-- the global batch inside fit), in fused buckets; unchanged otherwise.
-- Optimizer:apply_gradients calls this, so a custom GradientTape loop needs
-- no extra line. The first call with a list of variables checks that every
-- process holds the same names and shapes.
function M.reduce_gradients(grads, vars)
  if M.active() == nil then return grads end
  if not same_as_checked(vars) then
    collectives.check_variables("apply_gradients", vars)
    checked = {}
    for i = 1, #vars do checked[i] = vars[i] end
  end
  return collectives.reduce_list(grads, M.gradient_weight())
end

return M
