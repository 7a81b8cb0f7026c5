-- datasets/_shared.lua — what the text-file loaders share: reading a cached
-- file with a size bound, sklearn's CSV layout, and numpy's legacy
-- RandomState(seed).shuffle, so that a split made "as Keras does" (Keras's
-- boston_housing shuffles with np.random.RandomState(113)) picks the same rows.
-- Not a data set: klua.datasets._shared is internal.
local core = require("klua.core")
local bit = require("bit")
local tensor = require("klua.tensor")
local ops = require("klua.ops")
local datasets = require("klua.datasets")

local raise = core.raise
local band, bor, bxor, rshift, lshift = bit.band, bit.bor, bit.bxor, bit.rshift, bit.lshift

local shared = {}
shared.raise = raise

local DEFAULT_MAX_BYTES = 2 ^ 30   -- as read_idx: 1 GiB

--------------------------------------------------------------------------------
-- numpy's MT19937 (RandomState) and its legacy shuffle

local U32 = 4294967296

-- (a * b) mod 2^32 for a, b in [0, 2^32), exactly in doubles: split a in 16-bit halves.
local function mul32(a, b)
  local ah, al = math.floor(a / 65536), a % 65536
  return ((ah * b) % 65536 * 65536 + al * b) % U32
end

local function unsigned(x) return x % U32 end   -- a bit-op result (signed int32) as 0..2^32-1

-- numpy's mt19937_seed (Matsumoto and Nishimura's init_genrand).
local function mt_new(seed)
  local mt = {}
  mt[0] = seed
  for i = 1, 623 do
    local prev = mt[i - 1]
    mt[i] = (mul32(1812433253, unsigned(bxor(prev, rshift(prev, 30)))) + i) % U32
  end
  return { mt = mt, pos = 624 }
end

-- The next 32-bit output, as numpy's mt19937_next32 (genrand_int32).
local function mt_next(st)
  local mt = st.mt
  if st.pos >= 624 then
    for i = 0, 623 do
      local y = bor(band(mt[i], 0x80000000), band(mt[(i + 1) % 624], 0x7fffffff))
      local v = bxor(mt[(i + 397) % 624], rshift(y, 1))
      if band(y, 1) ~= 0 then v = bxor(v, 0x9908b0df) end
      mt[i] = unsigned(v)
    end
    st.pos = 0
  end
  local y = mt[st.pos]
  st.pos = st.pos + 1
  y = bxor(y, rshift(y, 11))
  y = bxor(y, band(lshift(y, 7), 0x9d2c5680))
  y = bxor(y, band(lshift(y, 15), 0xefc60000))
  y = bxor(y, rshift(y, 18))
  return unsigned(y)
end
shared.mt19937 = function(seed)
  local st = mt_new(seed)
  return function() return mt_next(st) end
end

-- numpy's random_interval(max): uniform on 0..max by masking and rejection.
local function interval(st, max)
  if max == 0 then return 0 end
  local mask = max
  for _, s in ipairs { 1, 2, 4, 8, 16 } do mask = bor(mask, rshift(mask, s)) end
  mask = unsigned(mask)
  while true do
    local v = unsigned(band(mt_next(st), mask))
    if v <= max then return v end
  end
end

local function check_seed(seed, what)
  if type(seed) ~= "number" or seed % 1 ~= 0 or seed < 0 or seed >= U32 then
    raise(("%s: seed must be an integer between 0 and 2**32 - 1. Received: seed=%s"):format(what, tostring(seed)))
  end
end

--- numpy_permutation(n, seed) -> list of the 0-based indices 0..n-1 in the
-- order numpy's RandomState(seed).shuffle(np.arange(n)) leaves them (also
-- RandomState(seed).permutation(n)).
function shared.numpy_permutation(n, seed, what)
  check_seed(seed, what or "numpy_permutation")
  local st = mt_new(seed)
  local p = {}
  for i = 1, n do p[i] = i - 1 end
  for i = n - 1, 1, -1 do
    local j = interval(st, i)
    p[i + 1], p[j + 1] = p[j + 1], p[i + 1]
  end
  return p
end

--- split_indices(n, test_split, seed, what) -> train, test: 0-based index
-- lists, Keras's way: shuffled as above, the first int(n * (1 - test_split)) train.
function shared.split_indices(n, test_split, seed, what)
  if type(test_split) ~= "number" or not (test_split >= 0 and test_split < 1) then
    raise(("%s: test_split must be between 0 and 1 (exclusive of 1). Received: test_split=%s"):format(what, tostring(test_split)))
  end
  local p = shared.numpy_permutation(n, seed, what)
  local cut = math.floor(n * (1 - test_split))
  local train, test = {}, {}
  for i = 1, cut do train[i] = p[i] end
  for i = cut + 1, n do test[i - cut] = p[i] end
  return train, test
end

--------------------------------------------------------------------------------
-- Files

--- options(opts, what, known) -> opts: a table of keyword options (nil is {}),
-- every key among `known`.
function shared.options(opts, what, known)
  if opts == nil then return {} end
  local list = #known > 0 and table.concat(known, ", ") or "none"
  if type(opts) ~= "table" then
    raise(("%s: expected a table of options (options: %s), got %s"):format(what, list, type(opts)))
  end
  local ok = {}
  for _, k in ipairs(known) do ok[k] = true end
  for k in pairs(opts) do
    if not ok[k] then raise(("%s: unknown option '%s' (options: %s)"):format(what, tostring(k), list)) end
  end
  return opts
end

--- read(name, file, what, max_bytes) -> text, path: the whole of
-- data_dir(name)/file; a missing file names `make data`, a file over max_bytes
-- (default 1 GiB) fails before it is read.
function shared.read(name, file, what, max_bytes)
  local path = datasets.data_dir(name) .. "/" .. file
  local f = io.open(path, "rb")
  if not f then
    raise(("%s: %s not found in %s; %s to fetch it"):format(what, file, datasets.data_dir(name), datasets.FETCH_HINT))
  end
  local size = f:seek("end")
  max_bytes = max_bytes or DEFAULT_MAX_BYTES
  if type(max_bytes) ~= "number" or max_bytes < 1 then
    f:close()
    raise(("%s: max_bytes must be a positive integer (bytes). Received: max_bytes=%s"):format(what, tostring(max_bytes)))
  end
  if not size or size > max_bytes then
    f:close()
    raise(("%s: '%s' has %s bytes, more than max_bytes=%d"):format(what, path, tostring(size), max_bytes))
  end
  f:seek("set")
  local text = f:read("*a")
  f:close()
  return text, path
end

-- The numbers of one line (fields split on commas and blanks); nil and the
-- offending field when one is not a number.
local function numbers(line, out)
  out = out or {}
  for field in line:gmatch("[^,%s]+") do
    local v = tonumber(field)
    if v == nil then return nil, field end
    out[#out + 1] = v
  end
  return out
end

--- rows(text, path, what, {skip=, width=, count=}) -> flat list, row count:
-- the numeric rows of a CSV text (commas or blanks), after `skip` header
-- lines; each must hold `width` values, and there must be `count` rows when
-- count is given. Errors name the file and the line.
function shared.rows(text, path, what, o)
  local flat, n, lineno, pos, len = {}, 0, 0, 1, #text
  while pos <= len do
    local stop = text:find("\n", pos, true) or len + 1
    local line = text:sub(pos, stop - 1)
    pos = stop + 1
    lineno = lineno + 1
    if lineno > (o.skip or 0) and line:find("%S") then
      local before = #flat
      local ok, bad = numbers(line, flat)
      if not ok then raise(("%s: '%s' line %d: '%s' is not a number"):format(what, path, lineno, bad)) end
      if #flat - before ~= o.width then
        raise(("%s: '%s' line %d: expected %d values, got %d"):format(what, path, lineno, o.width, #flat - before))
      end
      n = n + 1
    end
  end
  if o.count and n ~= o.count then
    raise(("%s: '%s' has %d rows, its header says %d (a truncated or damaged file: %s)"):format(
      what, path, n, o.count, datasets.FETCH_HINT))
  end
  return flat, n
end

--- sklearn_csv(name, file, what) -> x (N, F), y (N), class names: sklearn's
-- load_csv_data layout: a first line "N,F,name0,name1,...", then N rows of F
-- features and an integer class.
function shared.sklearn_csv(name, file, what)
  local text, path = shared.read(name, file, what)
  local first = text:match("^[^\n]*")
  local fields = {}
  for f in (first .. ","):gmatch("([^,]*),") do fields[#fields + 1] = (f:gsub("%s+$", "")) end
  local n, f = tonumber(fields[1]), tonumber(fields[2])
  if not n or not f or n < 1 or f < 1 or n % 1 ~= 0 or f % 1 ~= 0 then
    shared.raise_format(what, path, "sklearn's header line \"<samples>,<features>,<class names>\"")
  end
  local flat = shared.rows(text, path, what, { skip = 1, width = f + 1, count = n })
  local all = shared.matrix(flat, n, f + 1)
  local names = {}
  for i = 3, #fields do names[#names + 1] = fields[i] end
  return shared.columns(all, 1, f), shared.flatten(shared.columns(all, f + 1, f + 1)), names
end

--- raise_format(what, path, expected): a file that is not in the expected layout.
function shared.raise_format(what, path, expected)
  raise(("%s: '%s' does not start with %s (a damaged file? %s)"):format(what, path, expected, datasets.FETCH_HINT))
end

--- matrix(flat, n, w): a (n, w) tensor of a flat Lua list of numbers.
function shared.matrix(flat, n, w) return ops.reshape(tensor.tensor(flat), { n, w }) end

--- flatten(x): a (N, 1) column as (N).
function shared.flatten(x) return ops.reshape(x, { x:shape()[1] }) end

--- columns(x, a, b): columns a..b (1-based, inclusive) of a 2-D tensor.
function shared.columns(x, a, b) return ops.slice_axis(x, 2, a, b) end

--- take_rows(x, idx): the rows of x at the 0-based indices idx (a Lua list).
function shared.take_rows(x, idx)
  if #idx == 0 then
    local shape = x:shape()
    shape[1] = 0
    return tensor.zeros(shape)
  end
  return ops.take(x, tensor.tensor(idx), 1)
end

return shared
