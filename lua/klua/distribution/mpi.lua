-- distribution/mpi.lua — the one module that calls libklua_mpi.so (src/dist/),
-- loaded at run time so that klua runs where MPI is not installed. It finds
-- the library as core.lua finds libklua, declares its API from the header
-- text the library embeds (kl_mpi_cdef), and turns C errors into Lua errors.
-- Everything here works on raw buffers and tensors' float data; the API users
-- see is klua.distribution (distribution/init.lua).
local ffi = require("ffi")
local core = require("klua.core")

local M = {}

M.FLOAT, M.DOUBLE, M.BYTE = 0, 1, 2
M.SUM, M.MAX, M.MIN = 0, 1, 2

local reg = debug.getregistry()

-- The library, or nil and the reasons it could not be loaded.
local function load()
  if reg.klua_mpi_lib then return reg.klua_mpi_lib end
  if reg.klua_mpi_error then return nil, reg.klua_mpi_error end
  local dir = core.lua_dir
  local build = os.getenv("KLUA_BUILD") or "build"
  local candidates = {
    os.getenv("KLUA_MPI_LIB") or false,
    dir .. "/../" .. build .. "/libklua_mpi.so",     -- source tree: lua/ beside build/
    dir .. "/../../../lib/libklua_mpi.so",           -- installed: PREFIX/share/lua/5.1
    dir .. "/../../../lib/lua/5.1/libklua_mpi.so",   -- a luarocks tree
    "klua_mpi",
  }
  local errors = {}
  for _, path in ipairs(candidates) do
    if path then
      local ok, lib = pcall(ffi.load, path)
      if ok then
        ffi.cdef("const char *kl_mpi_cdef(void);")
        ffi.cdef((ffi.string(lib.kl_mpi_cdef()):gsub("const char %*kl_mpi_cdef%(void%);", "")))
        reg.klua_mpi_lib = lib
        return lib
      end
      local f = path:find("/") and io.open(path, "rb")
      if f then f:close(); errors[#errors + 1] = tostring(lib) end   -- there, but it does not load
    end
  end
  reg.klua_mpi_error = #errors > 0 and ("libklua_mpi.so does not load: " .. table.concat(errors, "; "))
    or "klua was built without MPI (no libklua_mpi.so; install libopenmpi-dev and openmpi-bin, then run make)"
  return nil, reg.klua_mpi_error
end

--- available(): true when libklua_mpi.so loads; else false and why.
function M.available()
  local lib, why = load()
  return lib ~= nil, why
end

local function lib_or_raise(who)
  local lib, why = load()
  if not lib then core.raise(who .. ": " .. why) end
  return lib
end

local function check(lib, rc)
  if rc < 0 then core.raise(ffi.string(lib.kl_mpi_last_error())) end
  return rc
end

--- init(): MPI_Init_thread once; returns {rank=, size=, local_rank=, local_size=, host=, library=}.
function M.init()
  local lib = lib_or_raise("klua.distribution.initialize")
  check(lib, lib.kl_mpi_init())
  -- the core's all_reduce_sum op (synchronized BatchNormalization) sums through MPI from now on
  core.C.kl_set_allreduce(ffi.cast("kl_allreduce_fn", lib.kl_mpi_allreduce), ffi.cast("kl_message_fn", lib.kl_mpi_last_error))
  local buf = ffi.new("char[512]")
  lib.kl_mpi_processor_name(buf, 512)
  local host = ffi.string(buf)
  lib.kl_mpi_library_version(buf, 512)
  return {
    rank = lib.kl_mpi_rank(), size = lib.kl_mpi_size(),
    local_rank = lib.kl_mpi_local_rank(), local_size = lib.kl_mpi_local_size(),
    host = host, library = ffi.string(buf),
  }
end

function M.is_initialized()
  local lib = load()
  return lib ~= nil and lib.kl_mpi_is_initialized() ~= 0
end

-- Raw collectives on cdata pointers (counts in elements).
function M.barrier() local lib = lib_or_raise("barrier"); check(lib, lib.kl_mpi_barrier()) end
function M.allreduce(ptr, count, dtype, op)
  local lib = lib_or_raise("all_reduce"); check(lib, lib.kl_mpi_allreduce(ptr, count, dtype, op or M.SUM))
end
function M.broadcast(ptr, count, dtype, root)
  local lib = lib_or_raise("broadcast"); check(lib, lib.kl_mpi_broadcast(ptr, count, dtype, root or 0))
end
function M.allgather(send, count, recv, dtype)
  local lib = lib_or_raise("all_gather"); check(lib, lib.kl_mpi_allgather(send, count, recv, dtype))
end
--- allgatherv(send, count, recv, counts (Lua list, one per rank), dtype)
function M.allgatherv(send, count, recv, counts, dtype)
  local lib = lib_or_raise("all_gather")
  local c = ffi.new("int64_t[?]", #counts)
  for i, n in ipairs(counts) do c[i - 1] = n end
  check(lib, lib.kl_mpi_allgatherv(send, count, recv, c, dtype))
end
function M.iallreduce(ptr, count, dtype, op)
  local lib = lib_or_raise("all_reduce"); return check(lib, lib.kl_mpi_iallreduce(ptr, count, dtype, op or M.SUM))
end
function M.wait(req) local lib = lib_or_raise("all_reduce"); check(lib, lib.kl_mpi_wait(req)) end
function M.wait_all() local lib = lib_or_raise("all_reduce"); check(lib, lib.kl_mpi_wait_all()) end
function M.finalize() local lib = load(); if lib then check(lib, lib.kl_mpi_finalize()) end end

--- copy_scaled(dst, src, n, scale): float copy with a factor (C loop).
function M.copy_scaled(dst, src, n, scale)
  local lib = lib_or_raise("all_reduce")
  lib.kl_mpi_copy_scaled_f32(dst, src, n, scale)
end

--- stats(reset): {seconds=, bytes=, calls=} spent in collectives.
function M.stats(reset)
  local lib = load()
  if not lib then return { seconds = 0, bytes = 0, calls = 0 } end
  local s = ffi.new("double[3]")
  lib.kl_mpi_stats(s, s + 1, s + 2, reset and 1 or 0)
  return { seconds = s[0], bytes = s[1], calls = s[2] }
end

--- data(t): the float* of a contiguous tensor (t keeps it alive).
function M.data(t)
  if t.p.contiguous == 0 then core.raise("klua.distribution: expected a contiguous tensor") end
  return t.p.data
end

return M
