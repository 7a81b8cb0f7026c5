-- utils.lua — small process helpers: a monotonic clock, isatty, the terminal's
-- width, a directory listing, resident memory. The system calls go through libklua
-- (src/kernels/io.c), so no other module declares libc with ffi.cdef.
local ffi = require("ffi")
local core = require("klua.core")
local C = core.C

local utils = {}

--- now(): seconds from a monotonic clock, as a number.
function utils.now() return C.kl_time_monotonic() end

--- isatty(fd): true when file descriptor fd (default 1, stdout) is a terminal.
function utils.isatty(fd)
  if fd ~= nil and (type(fd) ~= "number" or fd % 1 ~= 0) then core.raise("isatty: fd must be an integer, got " .. core.describe(fd)) end -- one-line check (bad-input sweep)
  return C.kl_isatty(fd or 1) == 1
end

--- terminal_width(fd): the width in columns of the terminal on fd (default 1,
-- stdout), else $COLUMNS, else 80.
function utils.terminal_width(fd)
  if fd ~= nil and (type(fd) ~= "number" or fd % 1 ~= 0) then core.raise("terminal_width: fd must be an integer, got " .. core.describe(fd)) end -- one-line check (bad-input sweep)
  local n = C.kl_terminal_columns(fd or 1)
  if n > 0 then return n end
  local env = tonumber(os.getenv("COLUMNS"))
  if env and env >= 1 then return math.floor(env) end
  return 80
end

--- list_dir(path): the names in a directory, sorted, without "." and "..";
-- nil and a message when it cannot be read.
local dir_buf, dir_cap = nil, 0
function utils.list_dir(path)
  if type(path) ~= "string" then core.raise("list_dir: path must be a string, got " .. type(path)) end -- NULL crashes C
  local need = tonumber(C.kl_list_dir(path, dir_buf, dir_cap))
  -- the directory can grow between two calls, hence a loop
  while need > dir_cap do
    dir_cap = need
    dir_buf = ffi.new("char[?]", dir_cap)
    need = tonumber(C.kl_list_dir(path, dir_buf, dir_cap))
  end
  if need < 0 then return nil, core.last_error() end
  local names, off = {}, 0
  while off < need do
    local name = ffi.string(dir_buf + off)
    names[#names + 1] = name
    off = off + #name + 1
  end
  table.sort(names)
  return names
end

--- rss_mb(): this process's resident memory in MiB (Linux).
function utils.rss_mb()
  local f = io.open("/proc/self/statm")
  if not f then return nil end
  local s = f:read("*l"); f:close()
  return tonumber(s:match("^%d+%s+(%d+)")) * 4096 / 2 ^ 20
end

--- peak_rss_mb(): the high-water mark of resident memory in MiB (Linux).
function utils.peak_rss_mb()
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local s = f:read("*a"); f:close()
  local kb = s:match("VmHWM:%s+(%d+)")
  return kb and tonumber(kb) / 1024
end

--- parse_args(arg, defaults, usage): `--name value` or `--name=value` options for a script.
-- A string default takes a string, any other default (a number, or false for
-- "unset") a number. `--help` prints usage and exits 0; an unknown option or a
-- missing or non-numeric value prints the problem and usage and exits 2.
function utils.parse_args(args, defaults, usage)
  local script = (args[0] or "script"):match("[^/]+$")
  local opts = {}
  for k, v in pairs(defaults) do opts[k] = v end
  local function fail(msg)
    io.stderr:write(script, ": ", msg, "\n", usage, "\n")
    os.exit(2)
  end
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--help" or a == "-h" then print(usage); os.exit(0) end
    local key, v = a:match("^%-%-([%w_]+)=(.*)$")
    local step = 1
    if not key then
      key, v, step = a:match("^%-%-([%w_]+)$"), args[i + 1], 2
    end
    if not key or defaults[key] == nil or v == nil then fail("unknown or incomplete option '" .. a .. "'") end
    if type(defaults[key]) == "string" then opts[key] = v
    else
      opts[key] = tonumber(v)
      if opts[key] == nil then fail("--" .. key .. " expects a number, got '" .. v .. "'") end
    end
    i = i + step
  end
  return opts
end

--------------------------------------------------------------------------------
-- Keras's keras.utils helpers for data: pad_sequences, to_categorical,
-- set_random_seed. They return float32 tensors (klua's one dtype); they use
-- the tensor functions that klua.tensor installs in klua.core, so they work
-- once require("klua") has run.

local function tensor_of(x, what)
  if not core.to_tensor then core.raise(what .. ": require(\"klua\") first (it sets up tensors)") end
  return core.to_tensor(x, what, "x")
end

local INT_DTYPES = { int32 = true, int64 = true, int16 = true, int8 = true, uint8 = true, int = true }
local FLOAT_DTYPES = { float32 = true, float64 = true, float16 = true, float = true }

-- The value as dtype makes it: integer dtypes truncate toward zero (numpy's cast).
local function cast(v, int)
  if int and type(v) == "number" then return v < 0 and math.ceil(v) or math.floor(v) end
  return v
end

--- pad_sequences(sequences, {maxlen=, dtype="int32", padding="pre", truncating="pre", value=0})
-- Keras's keras.utils.pad_sequences (also pad_sequences(sequences, maxlen)):
-- a list of sequences (Lua lists of numbers, or of equal-length lists of
-- numbers, or 1-D tensors) becomes a (N, maxlen[, d]) tensor; maxlen defaults
-- to the longest sequence; shorter ones are padded with value, longer ones cut,
-- at the start ("pre") or the end ("post"). An integer dtype truncates the
-- values toward zero as numpy's cast does; the tensor is float32 either way.
-- dtype = "object" (or "string") pads sequences of strings and returns Lua tables.
function utils.pad_sequences(sequences, kw)
  local W = "pad_sequences"
  if type(kw) == "number" then kw = { maxlen = kw } end
  if kw ~= nil and type(kw) ~= "table" then
    core.raise(W .. ": expected a table of keyword arguments {maxlen=, dtype=, padding=, truncating=, value=}, got " .. type(kw))
  end
  kw = kw or {}
  for k in pairs(kw) do
    if k ~= "maxlen" and k ~= "dtype" and k ~= "padding" and k ~= "truncating" and k ~= "value" then
      core.raise(("%s: unknown keyword argument '%s' (maxlen, dtype, padding, truncating, value)"):format(W, tostring(k)))
    end
  end
  if type(sequences) ~= "table" then
    core.raise(("%s: `sequences` must be a list of sequences. Received: %s"):format(W, type(sequences)))
  end
  local maxlen, dtype = kw.maxlen, kw.dtype or "int32"
  local padding, truncating = kw.padding or "pre", kw.truncating or "pre"
  local value = kw.value == nil and 0 or kw.value
  if maxlen ~= nil and (type(maxlen) ~= "number" or maxlen < 0 or maxlen % 1 ~= 0) then
    core.raise(("%s: maxlen must be a non-negative integer or nil. Received: maxlen=%s"):format(W, tostring(maxlen)))
  end
  -- the result is built in Lua tables before the tensor: refuse what could never be held
  if maxlen ~= nil and maxlen * math.max(#sequences, 1) > 2 ^ 31 then
    core.raise(("%s: %d sequences of maxlen %.0f are more than 2^31 values. Received: maxlen=%.0f"):format(W, #sequences, maxlen, maxlen))
  end
  if padding ~= "pre" and padding ~= "post" then
    core.raise(('%s: Padding type "%s" not understood (expected "pre" or "post")'):format(W, tostring(padding)))
  end
  if truncating ~= "pre" and truncating ~= "post" then
    core.raise(('%s: Truncating type "%s" not understood (expected "pre" or "post")'):format(W, tostring(truncating)))
  end
  local objects = dtype == "object" or dtype == "string" or dtype == "str"
  local int = INT_DTYPES[dtype]
  if not objects and not int and not FLOAT_DTYPES[dtype] then
    core.raise(("%s: unknown dtype '%s' (int32, float32, object, ...)"):format(W, tostring(dtype)))
  end
  if type(value) == "string" and not objects then
    core.raise(("%s: `dtype` %s is not compatible with `value`'s type: string. Use dtype = \"object\" for strings."):format(W, dtype))
  end
  -- The sequences as Lua lists; the sample shape (nil or {d}) from the first non-empty one.
  local seqs, lengths, width = {}, {}, nil
  for i = 1, #sequences do
    local s = sequences[i]
    if core.is_tensor(s) then s = s:totable() end
    if type(s) ~= "table" then
      core.raise(("%s: `sequences` must be a list of iterables. Found non-iterable: %s at position %d"):format(W, tostring(s), i))
    end
    seqs[i], lengths[i] = s, #s
    if width == nil and #s > 0 then width = type(s[1]) == "table" and #s[1] or false end
  end
  if maxlen == nil then
    if #seqs == 0 then core.raise(W .. ": no sequences, so maxlen cannot be inferred: pass maxlen") end
    maxlen = 0
    for _, n in ipairs(lengths) do if n > maxlen then maxlen = n end end
  end
  local d = width or 1
  local out = {}
  if objects then
    for i, s in ipairs(seqs) do
      local row, n = {}, math.min(#s, maxlen)
      local first = truncating == "pre" and #s - n or 0
      local at = padding == "pre" and maxlen - n or 0
      for j = 1, maxlen do row[j] = value end
      for j = 1, n do row[at + j] = s[first + j] end
      out[i] = row
    end
    return out
  end
  local k = 0
  local fill = cast(value, int)
  for _ = 1, #seqs * maxlen * d do k = k + 1; out[k] = fill end
  for i, s in ipairs(seqs) do
    local n = math.min(#s, maxlen)
    local first = truncating == "pre" and #s - n or 0
    local at = padding == "pre" and maxlen - n or 0
    local base = (i - 1) * maxlen * d
    for j = 1, n do
      local v = s[first + j]
      local pos = base + (at + j - 1) * d
      if width then
        if type(v) ~= "table" or #v ~= width then
          core.raise(("%s: Shape of sample (%s) of sequence at position %d is different from expected shape (%d)"):format(
            W, type(v) == "table" and tostring(#v) or type(v), i, width))
        end
        for c = 1, width do out[pos + c] = cast(v[c], int) end
      else
        if type(v) ~= "number" then
          core.raise(("%s: sequence %d holds %s at position %d; expected numbers (dtype = \"object\" for strings)"):format(
            W, i, type(v), first + j))
        end
        out[pos + 1] = cast(v, int)
      end
    end
  end
  local shape = width and { #seqs, maxlen, width } or { #seqs, maxlen }
  return core.op("reshape", tensor_of(out, W), nil, nil, { ints = shape })
end

--- to_categorical(x, num_classes): Keras's one-hot matrix of integer class
-- labels (0-based): shape x's shape + (num_classes), a trailing axis of size 1
-- dropped first ((N,1) labels give (N, num_classes)). num_classes defaults to
-- max(x) + 1. x: a tensor, a number or a (nested) list. Unlike Keras, which
-- truncates fractions and wraps negative labels around, such labels are errors.
function utils.to_categorical(x, num_classes)
  local W = "to_categorical"
  if type(num_classes) == "table" then num_classes = num_classes.num_classes end
  local t = tensor_of(x, W)
  local shape = t:shape()
  if #shape > 1 and shape[#shape] == 1 then
    shape[#shape] = nil
    t = core.op("reshape", t, nil, nil, { ints = shape })
  end
  local all = { all_axes = true }
  local n = t.count
  local lo = n > 0 and core.op("min", t, nil, nil, all):item() or 0
  local hi = n > 0 and core.op("max", t, nil, nil, all):item() or -1
  if n > 0 and core.op("max", core.op("abs", core.op("sub", t, core.op("floor", t))), nil, nil, all):item() ~= 0 then
    core.raise(W .. ": class labels must be integers (0-based); the labels hold fractions")
  end
  if num_classes == nil then
    num_classes = hi + 1
    if num_classes < 1 then core.raise(W .. ": no labels to infer num_classes from: pass num_classes") end
  end
  if type(num_classes) ~= "number" or num_classes < 1 or num_classes % 1 ~= 0 then
    core.raise(("%s: num_classes must be a positive integer. Received: num_classes=%s"):format(W, tostring(num_classes)))
  end
  if lo < 0 then
    core.raise(("%s: class labels must be 0..num_classes-1; got %d"):format(W, lo))
  end
  if hi >= num_classes then
    local hint = hi == num_classes and lo >= 1 and " (class indices are 0-based: labels 1.." .. num_classes ..
      " need shifting by 1)" or ""
    core.raise(("%s: label %d is out of range for num_classes=%d (labels are 0..%d)%s"):format(
      W, hi, num_classes, num_classes - 1, hint))
  end
  return core.op("one_hot", t, nil, nil, { ints = { num_classes } })
end

local global_seed = nil

--- set_random_seed(seed): Keras's: seeds klua's global random stream (what
-- initializers, unseeded Dropout and klua.random draw from) and Lua's
-- math.random, so that a program gives the same numbers on every run.
function utils.set_random_seed(seed)
  if type(seed) ~= "number" or seed % 1 ~= 0 then
    core.raise(("set_random_seed: Expected `seed` argument to be an integer. Received: seed=%s (of type %s)"):format(
      tostring(seed), type(seed)))
  end
  global_seed = seed
  C.kl_random_seed(seed)
  math.randomseed(seed)
end

--- get_random_seed(): the seed set_random_seed was last given (nil if never).
function utils.get_random_seed() return global_seed end

return utils
