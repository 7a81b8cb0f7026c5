-- core.lua — the FFI boundary: loads libklua, declares its API from the
-- header text embedded in the library, turns C errors into Lua errors at the
-- user's line, and tells the GC about memory held in C.
local ffi = require("ffi")

local core = {}

-- The directory holding klua/*.lua, used to find the library and to tell
-- library frames from user frames in error reports.
local source = debug.getinfo(1, "S").source
local lua_dir = source:match("^@(.*)[/\\]klua[/\\]core%.lua$") or "."
core.lua_dir = lua_dir

ffi.cdef("const char *kl_cdef(void);")

local function try_load()
  if rawget(_G, "KLUA_EMBEDDED") then
    local ok = pcall(function() return ffi.C.kl_cdef end)
    if ok then return ffi.C end
  end
  local build = os.getenv("KLUA_BUILD") or "build"
  local candidates = {
    os.getenv("KLUA_LIB"),
    lua_dir .. "/../" .. build .. "/libklua.so",   -- source tree: lua/ beside build/
    lua_dir .. "/../../../lib/libklua.so",         -- installed: PREFIX/share/lua/5.1
    lua_dir .. "/../../../lib/lua/5.1/libklua.so", -- a luarocks tree
    package.searchpath and package.searchpath("libklua", package.cpath) or nil,
    "klua",
  }
  local errors = {}
  for i = 1, 6 do
    local path = candidates[i]
    if path then
      local ok, lib = pcall(ffi.load, path)
      if ok then
        -- Pin the library: at exit LuaJIT unloads it before running the
        -- finalizers of tensors still alive, which call into it.
        ffi.cdef("void *dlopen(const char *file, int mode);")
        pcall(function() ffi.C.dlopen(path:find("/") and path or "libklua.so", 0x1002) end) -- RTLD_NOW | RTLD_NODELETE
        return lib
      end
      errors[#errors + 1] = tostring(lib)
    end
  end
  error("klua: cannot load libklua (run `make` first): " .. table.concat(errors, "; "), 0)
end

-- Loaded once per process (the cdefs cannot be declared twice), and never
-- unloaded: finalizers of tensors still alive at exit call into it.
local reg = debug.getregistry()
local C = reg.klua_lib
if not C then
  C = try_load()
  ffi.cdef((ffi.string(C.kl_cdef()):gsub("const char %*kl_cdef%(void%);", "")))
  reg.klua_lib = C
end
core.C = C
core.ffi = ffi
core.version = ffi.string(C.kl_version())

--- set_num_threads(n): fix the number of threads of the one pool (the core's kernels and OpenBLAS) to n, or
-- n = "auto" (the default): as many as the cores other processes leave free, re-checked every 50 ms, so that a
-- busy machine does not make klua's spinning workers fight the other load. Returns the previous setting.
function core.set_num_threads(n)
  local prev = C.kl_threads_adaptive() ~= 0 and "auto" or C.kl_get_num_threads()
  if n == "auto" then
    C.kl_set_num_threads(0)
  elseif type(n) ~= "number" or n < 1 or n > 4096 or n % 1 ~= 0 then
    core.raise("set_num_threads: n must be \"auto\" or an integer from 1 to 4096, got " .. core.describe(n))
  else
    C.kl_set_num_threads(n)
  end
  return prev
end
--- get_num_threads(): the number of threads in use now (with "auto", it follows the machine's load).
function core.get_num_threads() return C.kl_get_num_threads() end
--- memory(): {live_bytes=, pool_bytes=, allocations=, tensors=}: bytes held by tensors in C, bytes cached for
-- reuse, allocations made and live tensors.
function core.memory()
  return {
    live_bytes = tonumber(C.kl_mem_live_bytes()),
    pool_bytes = tonumber(C.kl_mem_pool_bytes()),
    allocations = tonumber(C.kl_mem_alloc_count()),
    tensors = tonumber(C.kl_mem_tensor_count()),
  }
end

-- Errors -------------------------------------------------------------------

local lib_prefix = "@" .. lua_dir .. "/klua/"
local function is_library_frame(src)
  return src:sub(1, #lib_prefix) == lib_prefix or src == "=[C]"
end

-- Public functions -> their names (core.name_errors), weak: for raise.
local public_names = setmetatable({}, { __mode = "k" })

--- raise(msg): error reported at the first stack frame outside the library. When the library function the
-- user called is one whose module asked for it (core.name_errors) and msg does not name it, its name goes in
-- front ("dice: mul: shapes (2,3) and (3,) cannot be broadcast together").
function core.raise(msg)
  local level, entry = 2, nil
  while true do
    local info = debug.getinfo(level, "Sf")
    if not info then level, entry = 2, nil; break end
    if not is_library_frame(info.source) then break end
    if info.source ~= "=[C]" then entry = info.func end
    level = level + 1
  end
  local names = entry and public_names[entry]
  if names and type(msg) == "string" then msg = core.rename(msg, names) end
  error(msg, level)
end

function core.last_error() return ffi.string(C.kl_last_error()) end

-- A position inside the library at the start of a message (a raw Lua error).
local function library_position(pos)
  return pos:find(lua_dir .. "/klua/", 1, true) or (pos:sub(1, 3) == "..." and pos:find("klua/", 1, true))
end

--- rename(err, who): an error message from a call made on behalf of `who`, prefixed "who: " unless it names
-- who already, without the position of the inner raise (the caller raises it again at the user's line).
-- Non-strings and raw errors at a position inside the library come back unchanged.
local function norm(s) return (s:lower():gsub("_", "")) end
function core.rename(err, who)
  if type(err) ~= "string" then return err end
  local pos, msg = err:match("^([^\n]-:%d+: )(.*)$")
  if pos and library_position(pos) then return err end
  msg = msg or err
  local names, m = type(who) == "table" and who or { who }, norm(msg:match("^[^\n]*"))
  for _, name in ipairs(names) do
    if m:find(norm(name), 1, true) then return msg end
  end
  return names[1] .. ": " .. msg
end

local function finish(who, ok, ...)
  if ok then return ... end
  local err = ...
  local pos = type(err) == "string" and err:match("^([^\n]-:%d+: )")
  if type(err) ~= "string" or (pos and library_position(pos)) then error(err, 0) end
  core.raise(core.rename(err, who))
end
--- named(who, f, ...): f(...); an error it raises is renamed for `who` (a name or a list of names, the
-- first used as the prefix: core.rename) and raised at the user's line.
function core.named(who, f, ...) return finish(who, pcall(f, ...)) end

--- name_errors(mod): the public functions of a module table name themselves in the errors raised (core.raise)
-- while they are the library function the user called, whatever inside them fails (a composed op, a
-- conversion). Nothing is wrapped: the functions keep their identity and their doc. A function under several
-- keys accepts any of them in the message and puts the longest in front.
function core.name_errors(mod)
  for k, f in pairs(mod) do
    if type(f) == "function" and type(k) == "string" and k:sub(1, 1) ~= "_" then
      local list = public_names[f] or {}
      list[#list + 1] = k
      table.sort(list, function(a, b) if #a ~= #b then return #a > #b end return a < b end)
      public_names[f] = list
    end
  end
end

--- describe(v): a value as an error message names it: "nil", "a string (\"relu\")", "a number (nan)",
-- "a tensor of shape (2,3)", "a Layer (Dense 'dense_2')", "a Mean object", "a function".
function core.describe(v)
  local tv = type(v)
  if tv == "nil" then return "nil" end
  if tv == "number" or tv == "boolean" then return ("a %s (%s)"):format(tv, tostring(v)) end
  if tv == "string" then return ("a string (%q)"):format(#v > 40 and v:sub(1, 37) .. "..." or v) end
  if tv == "function" then return "a function" end
  if tv == "userdata" then return io.type(v) and "a file handle" or "a userdata value" end
  if tv == "cdata" then
    if core.is_tensor(v) then return "a tensor of shape " .. core.shape_str(core.shape_of(v)) end
    return "a cdata value (" .. tostring(ffi.typeof(v)):gsub("^ctype<(.*)>$", "%1") .. ")"
  end
  if tv == "table" then
    local cname = core.class_name_of(v)
    if rawget(v, "_klua_layer") then return ("a Layer (%s '%s')"):format(cname, tostring(rawget(v, "name"))) end
    if rawget(v, "__class") then return "a class (" .. tostring(rawget(v, "__name")) .. ")" end
    if cname then return ("a %s object"):format(cname) end
    if next(v) == nil then return "an empty table" end
    return "a table"
  end
  return "a " .. tv .. " value"
end

--- options(kw, who): kw, a plain table of keyword arguments ({} for nil); anything else raises naming who.
function core.options(kw, who)
  if kw == nil then return {} end
  if type(kw) ~= "table" or core.class_name_of(kw) then
    core.raise(("%s: expected a table of keyword arguments, got %s"):format(who, core.describe(kw)))
  end
  return kw
end

--- received(v): a value as Keras's "Received: units=-3" shows it: numbers, booleans and nil as they print,
-- strings quoted, anything else described ("a Layer (Dense 'dense_2')").
function core.received(v)
  local tv = type(v)
  if tv == "nil" or tv == "number" or tv == "boolean" then return tostring(v) end
  if tv == "string" then return ("%q"):format(#v > 40 and v:sub(1, 37) .. "..." or v) end
  if tv == "table" and not core.class_name_of(v) and #v > 0 and #v <= 16 then   -- a short list of numbers: {1, 2, 3}
    local parts = {}
    for i = 1, #v do
      if type(v[i]) ~= "number" then return core.describe(v) end
      parts[i] = tostring(v[i])
    end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return core.describe(v)
end

--- class_name_of(v): the klua class name of an object (a table whose metatable is a klua class), else nil.
-- Such objects (layers, metrics, optimizers...) are never taken as data: not as tensors, lists or shapes.
function core.class_name_of(v)
  local mt = type(v) == "table" and getmetatable(v)
  if type(mt) ~= "table" then return nil end
  local name = rawget(mt, "__name")
  return type(name) == "string" and name or nil
end

function core.check(rc)
  if rc < 0 then core.raise(core.last_error()) end
  return rc
end

-- Memory: LuaJIT's GC sees a tensor as a few bytes of cdata, not the buffer
-- behind it. When the bytes held by tensors have grown by GC_BUDGET since the
-- last collection, we run a full collection (finalizers return the buffers to
-- the core's reuse pool). A small, fixed budget keeps long loops flat and
-- keeps the temporaries of consecutive steps in the same, cache-warm buffers.
-- A full collection costs time in proportion to the Lua heap (a compiled
-- model's modules and objects, ~1.5 MB, take ~0.4 ms to mark and sweep), so
-- the budget grows with the heap — 8 bytes of tensors per byte of Lua heap —
-- up to 64 MB. core.gc_stats counts the collections and their time.
local GC_BUDGET = (tonumber(os.getenv("KLUA_GC_MB")) or 8) * 2 ^ 20
local MAX_BUDGET = 64 * 2 ^ 20
local threshold = GC_BUDGET
local now = C.kl_time_monotonic
local release = C.kl_handle_release
local handle_ct = ffi.typeof("kl_handle")
core.handle_ct = handle_ct

-- What the collections cost (`make bench` prints it).
local gc_stats = { collections = 0, seconds = 0 }
core.gc_stats = gc_stats

local function account()
  if C.kl_mem_live_bytes() > threshold then
    local t0 = now()
    collectgarbage()
    gc_stats.collections = gc_stats.collections + 1
    gc_stats.seconds = gc_stats.seconds + (now() - t0)
    local budget = math.min(MAX_BUDGET, math.max(GC_BUDGET, 8 * 1024 * collectgarbage("count")))
    threshold = tonumber(C.kl_mem_live_bytes()) + budget
  end
end
core.account = account

--- free_now(t): drops this handle's reference to its tensor at once instead of at
-- collection (the buffer goes back to the reuse pool if nothing else holds it).
-- Only for handles no other code can reach: the handle is dead afterwards.
function core.free_now(t)
  if core.is_tensor(t) then release(t) end
end

--- wrap(p): own a kl_tensor* returned by C (NULL raises the C error).
function core.wrap(p)
  if p == nil then core.raise(core.last_error()) end
  account()
  return ffi.gc(handle_ct(p), release)
end

-- Shapes --------------------------------------------------------------------

local dims_buf = ffi.new("int64_t[8]")

--- shape_arg(shape, what): a Lua shape table (or a number) as (nd, int64_t*).
-- The buffer is reused: use it before the next call.
function core.shape_arg(shape, what)
  if type(shape) == "number" then shape = {shape} end
  if type(shape) ~= "table" or core.class_name_of(shape) then
    core.raise(("%s: expected a shape table like {2, 3}, got %s"):format(what, core.describe(shape)))
  end
  local nd = #shape
  if nd > 8 then core.raise(("%s: rank %d is not supported (at most 8)"):format(what, nd)) end
  for i = 1, nd do
    local d = shape[i]
    if type(d) ~= "number" or d < 0 or d ~= math.floor(d) or d == math.huge then
      core.raise(("%s: shape entries must be non-negative integers, got %s at position %d"):format(what, tostring(d), i))
    end
    dims_buf[i - 1] = d
  end
  return nd, dims_buf
end

--- shape_of(t): a tensor's shape as a Lua table.
function core.shape_of(t)
  local s = {}
  for i = 0, t.nd - 1 do s[i + 1] = tonumber(t.dims[i]) end
  return s
end

--- shape_str(shape): a shape as Keras prints it: "(2,3)", "(4,)", "(None,10)" for an unknown size.
function core.shape_str(shape)
  if type(shape) ~= "table" then core.raise("shape_str: expected a shape like {2, 3}, got " .. core.describe(shape)) end
  local parts = {}
  for i, d in ipairs(shape) do parts[i] = (d == -1 or d == nil) and "None" or tostring(d) end
  return "(" .. table.concat(parts, ",") .. (#shape == 1 and ",)" or ")")
end

-- Axes: Lua positions are 1-based, negative counts from the end.
function core.axis_arg(axis, nd, what)
  if type(axis) ~= "number" or axis ~= math.floor(axis) then
    core.raise(("%s: axis must be an integer, got %s"):format(what, core.received(axis)))
  end
  if axis == 0 then
    core.raise(("%s: axis 0 is invalid: axes are 1-based (1 is the first, -1 the last)"):format(what))
  end
  if axis > nd or axis < -nd then
    core.raise(("%s: axis %d is out of range for a tensor of rank %d"):format(what, axis, nd))
  end
  return axis > 0 and axis - 1 or nd + axis
end

-- Ops -----------------------------------------------------------------------

local op_ids = {}
for i = 0, C.kl_op_count() - 1 do op_ids[ffi.string(C.kl_op_name(i))] = i end
core.op_ids = op_ids

local attrs = ffi.new("kl_attrs")
local attrs_size = ffi.sizeof("kl_attrs")
core.attrs = attrs

--- fresh_attrs(): the shared attrs struct, zeroed (C copies it per call).
function core.fresh_attrs()
  ffi.fill(attrs, attrs_size)
  return attrs
end

--- is_tensor(x): true when x is a klua tensor (or Variable).
function core.is_tensor(x) return type(x) == "cdata" and ffi.istype(handle_ct, x) end

--- ptr(x): the kl_tensor* behind a tensor (numbers and tables are converted;
-- the caller keeps the converted tensor alive while C uses the pointer).
function core.ptr(x)
  if core.is_tensor(x) then return x.p end
  return core.to_tensor(x).p
end

-- Set by tensor.lua: converts numbers and tables to tensors.
core.to_tensor = nil

--- attrs_of(t): a Lua table {axes={0-based}, all_axes=, keepdims=, ints={}, f={}}
-- as the shared kl_attrs struct (nil stays nil).
function core.attrs_of(at)
  if at == nil or type(at) ~= "table" then return at end
  local s = core.fresh_attrs()
  if at.axes then
    s.naxes = #at.axes
    for i, v in ipairs(at.axes) do s.axes[i - 1] = v end
  elseif at.all_axes then
    s.naxes = -1
  end
  s.keepdims = at.keepdims and 1 or 0
  if at.ints then
    if #at.ints > 16 then core.raise("klua.ops: at most 16 integer attributes") end
    s.nints = #at.ints
    for i, v in ipairs(at.ints) do s.ints[i - 1] = v end
  end
  if at.f then for i, v in ipairs(at.f) do s.f[i - 1] = v end end
  return s
end

--- op(name, a, b, c, at): call a registry op; `at` is nil, a kl_attrs, or a
-- table {axes={0-based}, keepdims=, ints={}, f={}}.
function core.op(name, a, b, c, at)
  local id = op_ids[name]
  if not id then core.raise("klua.ops: unknown op '" .. tostring(name) .. "'") end
  local to = core.to_tensor
  if a ~= nil and not core.is_tensor(a) then a = to(a, name, "input 1") end
  if b ~= nil and not core.is_tensor(b) then b = to(b, name, "input 2") end
  if c ~= nil and not core.is_tensor(c) then c = to(c, name, "input 3") end
  if type(at) == "table" then at = core.attrs_of(at) end
  local r = C.kl_op(id, a and a.p, b and b.p, c and c.p, at)
  if r == nil then core.raise(core.op_error(name)) end
  return core.wrap(r)
end

--- op_error(name): the C library's last error, prefixed with the op's name when it does not start with it.
function core.op_error(name)
  local msg = core.last_error()
  if msg:sub(1, #name + 1) ~= name .. ":" then msg = name .. ": " .. msg end
  return msg
end

--- op_n(name, list, at): a variadic op (concatenate, stack).
function core.op_n(name, list, at)
  local id = op_ids[name]
  if not id then core.raise("klua.ops: unknown op '" .. tostring(name) .. "'") end
  if type(list) ~= "table" or core.class_name_of(list) then
    core.raise(("%s: expected a list of tensors, got %s"):format(name, core.describe(list)))
  end
  local n = #list
  local arr = ffi.new("kl_tensor *[?]", math.max(n, 1))
  local keep = {}
  for i = 1, n do
    local t = list[i]
    if not core.is_tensor(t) then t = core.to_tensor(t, name, "input " .. i) end
    keep[i] = t
    arr[i - 1] = t.p
  end
  local r = C.kl_op_n(id, n, arr, core.attrs_of(at))
  local _ = keep -- keep the inputs alive across the call
  if r == nil then core.raise(core.op_error(name)) end
  return core.wrap(r)
end

return core
