-- utils.lua — small process helpers: a monotonic clock, isatty, a directory
-- listing, resident memory. The system calls go through libklua
-- (src/kernels/io.c), so no other module declares libc with ffi.cdef.
local ffi = require("ffi")
local core = require("klua.core")
local C = core.C

local utils = {}

--- now(): seconds from a monotonic clock, as a number.
function utils.now() return C.kl_time_monotonic() end

--- isatty(fd): true when file descriptor fd (default 1, stdout) is a terminal.
function utils.isatty(fd) return C.kl_isatty(fd or 1) == 1 end

--- list_dir(path): the names in a directory, sorted, without "." and "..";
-- nil and a message when it cannot be read.
local dir_buf, dir_cap = nil, 0
function utils.list_dir(path)
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

return utils
