-- saving/safetensors.lua — the safetensors format, and nothing of models:
-- an 8-byte little-endian header length, a JSON header {name: {dtype, shape,
-- data_offsets}, "__metadata__": {string: string}}, then raw little-endian
-- data (klua writes float32, or F16/BF16 on request), so weight files open in
-- other tools; other tools' dtypes are converted to float32 as they are read.
-- Reading checks every size and offset against the file's length before
-- allocating or reading; errors name the file and the problem. Writing goes
-- to a temporary file in the same directory, flushed and fsynced, then
-- renamed over the target, so a crash leaves the previous file intact.
-- Temporaries are named ".<name>.tmp-<pid>-<n>-<host>"; one left by a save
-- that was killed is removed by the next save or load of <name> once its
-- process is gone (another host's: once a day old; src/kernels/io.c,
-- kl_file_remove_stale_temps).
local ffi = require("ffi")
local core = require("klua.core")
local json = require("klua.json")
local tensor = require("klua.tensor")
local C = core.C

local M = {}

local MAX_HEADER = 100 * 1024 * 1024

M.test_hooks = {}   -- after_tensor(i): lets tests simulate a crash mid-write

-- Dtypes other than F32 are converted to float32 as they are read
-- (src/kernels/io.c: F16/BF16 exactly, F64 to nearest, integers and BOOL
-- only when exact); F16 and BF16 can be written (round to nearest even).
local READ_DTYPES = "F32, F16, BF16, F64, I64, I32, I16, I8, U64, U32, U16, U8 and BOOL"
local WRITE_DTYPES = { F32 = 4, F16 = 2, BF16 = 2 }
local function dtype_size(dtype) return tonumber(C.kl_dtype_size(dtype)) end

local function le_u64(n)
  local b = {}
  for i = 1, 8 do
    b[i] = n % 256
    n = math.floor(n / 256)
  end
  return string.char(unpack(b))
end

--- atomic_write(path, who, fn): runs fn(file) on a temporary file beside path, then syncs and renames it over
-- path; on an error the temporary is removed and path is left as it was.
local function atomic_write(path, who, fn)
  if type(path) ~= "string" or path == "" then core.raise(who .. ": expected a file path") end
  local buf = ffi.new("char[4096]")
  local f = C.kl_file_create_temp(path, buf, 4096)
  if f == nil then core.raise(who .. ": " .. core.last_error()) end
  local tmp = ffi.string(buf)
  local ok, err = pcall(fn, f)
  if not ok then
    C.kl_file_abort(f, tmp)
    error(err, 0)
  end
  if C.kl_file_commit(f, tmp, path) ~= 0 then core.raise(who .. ": " .. core.last_error()) end
end
M.atomic_write = atomic_write

--- write_safetensors(path, who, entries, metadata): writes {{name=, tensor=, dtype="F32"|"F16"|"BF16"}} and a
-- {string = string} metadata table as a safetensors file (atomically).
local function write_safetensors(path, who, entries, metadata)
  local header = { __metadata__ = json.object(metadata or {}) }
  local offset = 0
  local seen = {}
  for _, e in ipairs(entries) do
    if e.name == "__metadata__" or seen[e.name] then core.raise(("%s: duplicate or reserved tensor name '%s'"):format(who, e.name)) end
    seen[e.name] = true
    local t = e.tensor
    local dtype = e.dtype or "F32"
    if not WRITE_DTYPES[dtype] then
      core.raise(("%s: cannot write dtype %s (klua writes F32, F16 and BF16)"):format(who, tostring(dtype)))
    end
    local bytes = tonumber(t.count) * WRITE_DTYPES[dtype]
    header[e.name] = { dtype = dtype, shape = json.array(t:shape()), data_offsets = json.array{ offset, offset + bytes } }
    offset = offset + bytes
  end
  local text = json.encode(header)
  -- pad the header with spaces so the data starts 8-byte aligned (as safetensors does)
  local pad = (8 - #text % 8) % 8
  text = text .. (" "):rep(pad)
  atomic_write(path, who, function(f)
    local head = le_u64(#text) .. text
    if C.kl_file_write(f, head, #head) ~= 0 then error(who .. ": " .. core.last_error(), 0) end
    local hook = M.test_hooks.after_tensor
    for i, e in ipairs(entries) do
      local rc = (e.dtype or "F32") == "F32" and C.kl_file_write_tensor(f, e.tensor.p)
        or C.kl_file_write_tensor_as(f, e.tensor.p, e.dtype)
      if rc ~= 0 then error(who .. ": " .. core.last_error(), 0) end
      if hook then hook(i, e.name) end
    end
  end)
end
M.write_safetensors = write_safetensors

--------------------------------------------------------------------------------
-- Reading: everything is checked before anything is allocated.

local function open_file(path, who)
  if type(path) ~= "string" or path == "" then core.raise(who .. ": expected a file path") end
  local f = C.kl_file_open_read(path)
  if f == nil then core.raise(who .. ": " .. core.last_error()) end
  return ffi.gc(f, C.kl_file_close)
end

local function close_file(f)
  ffi.gc(f, nil)
  C.kl_file_close(f)
end

local function is_int(v) return type(v) == "number" and v >= 0 and v % 1 == 0 and v < 2 ^ 53 end

--- read_header(path, who): {path=, file=, metadata=, tensors={name={shape=, offsets=}}, names={...}, data_start=}
function M.read_header(path, who)
  who = who or "load"
  local f = open_file(path, who)
  local function fail(fmt, ...)
    close_file(f)
    core.raise(("%s: %s: " .. fmt):format(who, path, ...))
  end
  local size = tonumber(C.kl_file_size(f))
  if size < 0 then fail("%s", core.last_error()) end
  if size < 8 then fail("the file is too short (%d bytes) to hold a safetensors header", size) end
  local lenbuf = ffi.new("uint8_t[8]")
  if C.kl_file_read(f, 0, lenbuf, 8) ~= 0 then fail("cannot read the header length") end
  local n = 0
  for i = 7, 0, -1 do n = n * 256 + lenbuf[i] end
  -- a file of another kind fails one of these first: say so plainly
  local NOT_OURS = " (this is not a safetensors file, the format of klua's models and weights)"
  if n == 0 then fail("the header length is 0" .. NOT_OURS) end
  if n > MAX_HEADER then fail("the header length %.0f is larger than the %d-byte limit" .. NOT_OURS, n, MAX_HEADER) end
  if n > size - 8 then fail("the header length %.0f is beyond the end of the file (%d bytes)" .. NOT_OURS, n, size) end
  local hbuf = ffi.new("char[?]", n)
  if C.kl_file_read(f, 8, hbuf, n) ~= 0 then fail("cannot read the header") end
  local text = ffi.string(hbuf, n)
  local ok, header = pcall(json.decode, text)
  if not ok then fail("the header is not valid JSON (%s)" .. NOT_OURS, tostring(header)) end
  if type(header) ~= "table" or header == json.null or (next(header) ~= nil and header[1] ~= nil) then
    fail("the header is not a JSON object")
  end
  local data_start = 8 + n
  local data_size = size - data_start
  local metadata = header.__metadata__ or {}
  if type(metadata) ~= "table" or metadata[1] ~= nil then fail("__metadata__ is not a JSON object") end
  for k, v in pairs(metadata) do
    if type(v) ~= "string" then fail("__metadata__ value '%s' is not a string", tostring(k)) end
  end
  local tensors, names = {}, {}
  for name, e in pairs(header) do
    if name ~= "__metadata__" then
      if type(e) ~= "table" then fail("entry '%s' is not an object", name) end
      if type(e.dtype) ~= "string" then fail("tensor '%s' has no dtype", name) end
      local esize = dtype_size(e.dtype)
      if esize == 0 then fail("tensor '%s' has dtype %s; klua reads %s", name, e.dtype, READ_DTYPES) end
      local shape = e.shape
      if type(shape) ~= "table" or (next(shape) ~= nil and shape[1] == nil) then fail("tensor '%s' has no shape list", name) end
      if #shape > 8 then fail("tensor '%s' has rank %d; at most 8 is supported", name, #shape) end
      local count = 1
      for i, d in ipairs(shape) do
        if not is_int(d) then fail("tensor '%s' has an invalid size %s at position %d of its shape", name, tostring(d), i) end
        count = count * d
      end
      for k in pairs(shape) do
        if type(k) ~= "number" or k > #shape then fail("tensor '%s' has a malformed shape", name) end
      end
      local off = e.data_offsets
      if type(off) ~= "table" or #off ~= 2 or not is_int(off[1]) or not is_int(off[2]) then
        fail("tensor '%s' has invalid data_offsets (expected [begin, end])", name)
      end
      local b, en = off[1], off[2]
      if b > en then fail("tensor '%s' has data_offsets [%d, %d] with begin after end", name, b, en) end
      if en > data_size then
        fail("tensor '%s' has data_offsets [%d, %d] beyond the end of the data (%d bytes)", name, b, en, data_size)
      end
      if en - b ~= count * esize then
        fail("tensor '%s' has shape %s (%.0f bytes of %s) but its data_offsets [%d, %d] span %d bytes",
          name, core.shape_str(shape), count * esize, e.dtype, b, en, en - b)
      end
      tensors[name] = { shape = shape, b = b, e = en, count = count, dtype = e.dtype }
      names[#names + 1] = name
    end
  end
  -- The data must be covered exactly once: no overlaps, no holes.
  table.sort(names, function(x, y)
    local a, c = tensors[x], tensors[y]
    if a.b ~= c.b then return a.b < c.b end
    return a.e < c.e
  end)
  local pos = 0
  for _, name in ipairs(names) do
    local t = tensors[name]
    if t.b < pos then fail("tensor '%s' overlaps the data of another tensor (offsets [%d, %d])", name, t.b, t.e) end
    if t.b > pos then fail("the bytes %d..%d of the data belong to no tensor", pos, t.b) end
    pos = t.e
  end
  if pos ~= data_size then fail("the file has %d bytes after the last tensor's data", data_size - pos) end
  table.sort(names)
  return { path = path, file = f, size = size, metadata = metadata, tensors = tensors, names = names,
           data_start = data_start, who = who }
end

-- Fills the contiguous float32 tensor t with entry e's data, converted from
-- its dtype; a value float32 cannot hold is refused, naming the tensor.
local function read_data(info, name, e, t)
  if e.count == 0 then return end
  local rc
  if e.dtype == nil or e.dtype == "F32" then
    rc = C.kl_file_read_tensor(info.file, info.data_start + e.b, t.p)
  else
    rc = C.kl_file_read_tensor_as(info.file, info.data_start + e.b, t.p, e.dtype)
  end
  if rc ~= 0 then
    local what = e.dtype and e.dtype ~= "F32" and ("tensor '%s' (%s): "):format(name, e.dtype) or ""
    core.raise(("%s: %s: %s%s"):format(info.who, info.path, what, core.last_error()))
  end
end

--- read_tensor(info, name): the tensor stored under name (float32, converted from its dtype).
function M.read_tensor(info, name)
  local e = info.tensors[name]
  if not e then core.raise(("%s: %s: no tensor named '%s'"):format(info.who, info.path, name)) end
  local t = tensor.empty(e.shape)
  read_data(info, name, e, t)
  return t
end

--- read_into(info, name, t): reads the tensor stored under name straight into
-- the contiguous tensor t of the same shape (a Variable being loaded), with no
-- copy in between.
function M.read_into(info, name, t)
  local e = info.tensors[name]
  if not e then core.raise(("%s: %s: no tensor named '%s'"):format(info.who, info.path, name)) end
  if tonumber(t.count) ~= e.count or t.contiguous == 0 then
    core.raise(("%s: %s: tensor '%s' does not fit the target"):format(info.who, info.path, name))
  end
  if e.dtype ~= nil and e.dtype ~= "F32" then
    -- converted into a scratch tensor first: a value refused half-way leaves t as it was
    local tmp = M.read_tensor(info, name)
    ffi.copy(t.data, tmp.data, e.count * 4)
    return
  end
  read_data(info, name, e, t)
end

--- with_memory_limit(max_bytes, fn, ...): fn(...) with the core refusing any
-- allocation that would take the tensor data allocated since the call past
-- max_bytes (an inner limit never loosens an outer one). Loaders run what a
-- file's contents decide under it; the error names the limit.
function M.with_memory_limit(max_bytes, fn, ...)
  local want = math.min(tonumber(C.kl_mem_data_bytes()) + max_bytes, 2 ^ 62)   -- an int64 in C
  local prev = tonumber(C.kl_mem_set_limit(want))
  if prev >= 0 and prev < want then C.kl_mem_set_limit(prev) end
  local res = { pcall(fn, ...) }
  C.kl_mem_set_limit(prev)
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, table.maxn(res))
end

--- close(info): closes the file a read_header result holds (idempotent).
function M.close(info)
  if info.file then close_file(info.file); info.file = nil end
end

--- load_safetensors(path): {name = tensor}, the metadata table and {name = dtype}. Every tensor comes back
-- float32: F16, BF16 exactly, F64 rounded to nearest; integers and BOOL only when float32 holds every value exactly.
function M.load_safetensors(path)
  local info = M.read_header(path, "load_safetensors")
  local out, dtypes = {}, {}
  local ok, err = pcall(function()
    for _, name in ipairs(info.names) do
      out[name] = M.read_tensor(info, name)
      dtypes[name] = info.tensors[name].dtype
    end
  end)
  M.close(info)
  if not ok then error(err, 0) end
  return out, info.metadata, dtypes
end

--- save_safetensors(path, {name = tensor}, metadata, {dtype = "F32"}): tensors in name order, stored as
-- dtype F32 (default), F16 or BF16 (rounded to nearest even; beyond the largest finite value, inf).
function M.save_safetensors(path, tensors, metadata, opts)
  local dtype = type(opts) == "table" and opts.dtype or "F32"
  if opts ~= nil and type(opts) ~= "table" then
    core.raise("save_safetensors: the fourth argument is an options table {dtype = \"F16\"}. Received: " .. type(opts))
  end
  if not WRITE_DTYPES[dtype] then
    core.raise(("save_safetensors: dtype must be \"F32\", \"F16\" or \"BF16\". Received: dtype=%s"):format(tostring(dtype)))
  end
  local names = {}
  for k, t in pairs(tensors) do
    if type(k) ~= "string" or not core.is_tensor(t) then core.raise("save_safetensors: expected {name = tensor}") end
    names[#names + 1] = k
  end
  table.sort(names)
  local entries = {}
  for i, k in ipairs(names) do entries[i] = { name = k, tensor = tensors[k], dtype = dtype } end
  write_safetensors(path, "save_safetensors", entries, metadata)
end

return M
