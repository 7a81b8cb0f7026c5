-- profiler.lua — klua.profile(fn): where the time of a piece of Lua goes, by
-- op. The dispatcher (src/tape.c) times every op's forward and backward while
-- the profiler is on; a backward that calls other ops leaves their time to
-- them, so the rows add up to the time in ops. The rest of the wall time is
-- Lua, the optimizers' fused updates (not ops) and Lua collections, the
-- latter counted apart (core.gc_stats).
local ffi = require("ffi")
local core = require("klua.core")
local C, raise = core.C, core.raise

local M = {}

local running = false
local seconds_buf, calls_buf = ffi.new("double[1]"), ffi.new("int64_t[1]")

local Profile = {}
Profile.__index = Profile

local function row_line(name, phase, seconds, calls, total)
  return ("%-24s %-8s %10.3f %6.1f%% %8d %10.2f"):format(name, phase, seconds * 1e3, 100 * seconds / total, calls,
    calls > 0 and seconds / calls * 1e6 or 0)
end

--- Profile:report(n=20): the n costliest rows and the totals as a text table (ms, share of the wall time, calls, µs per call).
function Profile:report(n)
  if n ~= nil and (type(n) ~= "number" or n < 0 or n % 1 ~= 0) then
    raise("Profile.report: n must be a non-negative integer. Received: n=" .. core.received(n))
  end
  n = n or 20
  local total = math.max(self.total, 1e-12)
  local lines = { ("%-24s %-8s %10s %7s %8s %10s"):format("op", "phase", "ms", "share", "calls", "us/call") }
  for i = 1, math.min(n, #self.rows) do
    local r = self.rows[i]
    lines[#lines + 1] = row_line(r.op, r.phase, r.seconds, r.calls, total)
  end
  if #self.rows > n then
    local rest = 0
    for i = n + 1, #self.rows do rest = rest + self.rows[i].seconds end
    lines[#lines + 1] = row_line(("(%d more)"):format(#self.rows - n), "", rest, 0, total)
  end
  lines[#lines + 1] = row_line("all ops", "", self.ops, 0, total)
  lines[#lines + 1] = row_line("Lua collections", "", self.gc, self.collections, total)
  lines[#lines + 1] = row_line("elsewhere", "", self.total - self.ops - self.gc, 0, total)
  lines[#lines + 1] = row_line("wall time", "", self.total, 0, total)
  return table.concat(lines, "\n")
end
Profile.__tostring = Profile.report

--- profile(fn, ...): runs fn(...) with the op profiler on and returns a Profile, then fn's results.
-- A Profile has total (wall seconds), ops (seconds in ops), gc and collections (Lua collections run
-- for tensor memory), rows {op=, phase="forward"|"backward", seconds=, calls=} costliest first,
-- and report(n); print(p) shows the table.
function M.profile(fn, ...)
  if type(fn) ~= "function" then raise("profile: expected a function. Received: " .. core.received(fn)) end
  if running then raise("profile: already profiling (profiles do not nest)") end
  running = true
  C.kl_profile_reset()
  local gc0, n0 = core.gc_stats.seconds, core.gc_stats.collections
  local t0 = C.kl_time_monotonic()
  C.kl_profile_enable(1)
  local res = { n = 0 }
  local function keep(ok, ...) res.n = select("#", ...); res.ok = ok; for i = 1, res.n do res[i] = select(i, ...) end end
  keep(pcall(fn, ...))
  C.kl_profile_enable(0)
  local total = C.kl_time_monotonic() - t0
  running = false
  if not res.ok then error(res[1], 0) end
  local p = setmetatable({ total = total, ops = 0, gc = core.gc_stats.seconds - gc0,
    collections = core.gc_stats.collections - n0, rows = {} }, Profile)
  for op = 0, C.kl_op_count() - 1 do
    for phase = 0, 1 do
      core.check(C.kl_profile_get(op, phase, seconds_buf, calls_buf))
      local calls = tonumber(calls_buf[0])
      if calls > 0 then
        p.rows[#p.rows + 1] = { op = ffi.string(C.kl_op_name(op)), phase = phase == 0 and "forward" or "backward",
          seconds = seconds_buf[0], calls = calls }
        p.ops = p.ops + seconds_buf[0]
      end
    end
  end
  table.sort(p.rows, function(a, b) return a.seconds > b.seconds end)
  return p, unpack(res, 1, res.n)
end

return M
