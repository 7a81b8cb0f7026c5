-- utils.lua — small process helpers: a monotonic clock, resident memory.
local ffi = require("ffi")

pcall(ffi.cdef, [[
typedef struct klua_timespec { long tv_sec; long tv_nsec; } klua_timespec;
int clock_gettime(int clk_id, klua_timespec *tp);
]])

local utils = {}
local ts = ffi.new("klua_timespec")

--- now(): seconds from a monotonic clock, as a number.
function utils.now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
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

return utils
