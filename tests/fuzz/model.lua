-- model.lua — fuzz driver for klua.saving.load_model (run by fuzz_model,
-- tests/fuzz/fuzz_lua.c): the safetensors reader, the JSON header and
-- metadata, the model config reaching deserialization and the build under
-- the file's weights, the compile config and the optimizer state.
--
-- An input is either a whole file, or (when it starts with "{") a header
-- that the driver frames: the 8-byte length in front, and zero bytes behind
-- for the data its largest data_offsets asks (at most 1 MB), so mutations of
-- the config are not wasted on the framing.
--
-- Any Lua error is an accepted outcome here (crashes, leaks, timeouts and
-- oversized allocations are what fail a run). Errors that look like bugs
-- rather than messages ("attempt to index a nil value", ...) are appended,
-- once each, to the file named by $KLUA_FUZZ_ERRORS when it is set, each
-- input beside it as <file>.<n>.input.
-- The whole package, as a user loads it: klua.models registers Sequential and
-- Functional, without which every config would fail at its first class.
local klua = require("klua")
local json = klua.json
local load_model = klua.models.load_model

local dir = (io.open("/dev/shm", "r") and "/dev/shm" or "/tmp") .. "/klua-fuzz-model-" .. tostring(os.time()) .. "-"
  .. tostring(math.random(1e9))
os.execute("mkdir -p '" .. dir .. "'")
local path = dir .. "/m.klua"
-- fuzz_lua.c calls this at exit
function FUZZ_CLEANUP() os.remove(path); os.remove(dir) end

local function le_u64(n)
  local b = {}
  for i = 1, 8 do b[i] = n % 256; n = math.floor(n / 256) end
  return string.char(unpack(b))
end

local function frame(header)
  local ok, h = pcall(json.decode, header)
  local n = 0
  if ok and type(h) == "table" then
    for _, e in pairs(h) do
      local off = type(e) == "table" and e.data_offsets
      if type(off) == "table" and type(off[2]) == "number" and off[2] > n then n = off[2] end
    end
  end
  n = math.floor(math.min(n, 2 ^ 20))
  return le_u64(#header) .. header .. string.rep("\0", n)
end

-- What Lua itself says about a bug, right after a source position or after the
-- file's name (load_model drops the position of errors from deserialization).
-- Messages quote the file's contents, so a phrase anywhere else does not count.
local BUGLIKE = { "attempt to ", "bad argument #", "stack overflow", "table index is ", "invalid key to 'next'",
  "string length overflow", "not enough memory", "loop or previous error" }
local seen, logged, log_path = {}, 0, os.getenv("KLUA_FUZZ_ERRORS")
local function literal(s) return (s:gsub("%p", "%%%0")) end
local function buglike(msg)
  for _, p in ipairs(BUGLIKE) do
    local lp = literal(p)
    if msg:find("%.lua:%d+: " .. lp) or msg:find("^" .. literal(path) .. ": " .. lp)
        or msg:find("load_model: " .. literal(path) .. ": " .. lp) then
      return true
    end
  end
  return false
end

-- A driver that cannot load a good file would fuzz nothing but its errors.
do
  local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "tests/fuzz"
  local ok, err = pcall(load_model, here .. "/model/mlp_adam.klua")
  if not ok then error("fuzz_model: the seed mlp_adam.klua does not load: " .. tostring(err), 0) end
end

return function(bytes)
  local data = bytes:sub(1, 1) == "{" and frame(bytes) or bytes
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  local ok, err = pcall(load_model, path)
  if ok or not log_path then return end
  local msg = tostring(err)
  if not buglike(msg) then return end
  local key = msg:gsub("0x%x+", "0x"):gsub("%d+", "N")
  if seen[key] then return end
  seen[key] = true
  local out = io.open(log_path, "a")
  if out then
    out:write(msg:gsub("\n", " | "), "\n")
    out:close()
  end
  logged = logged + 1   -- and the input, to reproduce it: <log>.<n>.input
  local keep = io.open(("%s.%d.input"):format(log_path, logged), "wb")
  if keep then keep:write(data); keep:close() end
end
