-- pty.lua — a tiny pseudo-terminal driver for the REPL specs: starts a
-- program on a fresh pty (forkpty), types keys into it and waits for text in
-- what it prints (escape sequences and carriage returns stripped). Not a
-- terminal emulator: tests look for text, not screen positions.
--
--   local pty = dofile("tests/pty.lua")
--   local s = pty.spawn({ "build/klua" }, { env = { HOME = dir } })
--   s:expect("klua> "); s:send("1 + 1\r"); s:expect("2")
--   s:close()
local ffi = require("ffi")

local function cdef(decl)
  pcall(ffi.cdef, decl) -- another spec may have declared it already
end
cdef [[ int forkpty(int *amaster, char *name, const void *termp, const void *winp); ]]
cdef [[ int execve(const char *path, char *const argv[], char *const envp[]); ]]
cdef [[ int chdir(const char *path); ]]
cdef [[ void _exit(int status); ]]
cdef [[ long read(int fd, void *buf, size_t n); ]]
cdef [[ long write(int fd, const void *buf, size_t n); ]]
cdef [[ int close(int fd); ]]
cdef [[ struct klua_pollfd { int fd; short events; short revents; }; ]]
cdef [[ int poll(struct klua_pollfd *fds, unsigned long nfds, int timeout); ]]
cdef [[ int kill(int pid, int sig); ]]
cdef [[ int waitpid(int pid, int *status, int options); ]]
cdef [[ struct klua_winsize { unsigned short ws_row, ws_col, ws_xpixel, ws_ypixel; }; ]]
cdef [[ extern char **environ; ]]
cdef [[ struct klua_timespec { long tv_sec; long tv_nsec; }; ]]
cdef [[ int clock_gettime(int clk, struct klua_timespec *ts); ]]

local C = ffi.C
local forkpty = pcall(function() return C.forkpty end) and C.forkpty or ffi.load("util").forkpty

local POLLIN, WNOHANG, SIGKILL, SIGTERM = 1, 1, 9, 15

local ts = ffi.new("struct klua_timespec")
local function now()
  C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local M = {}
M.timeout = 5 -- seconds expect() waits by default

-- The inherited environment with `overrides` applied (false removes a name).
local function environment(overrides)
  local env, order = {}, {}
  local i = 0
  while C.environ[i] ~= nil do
    local kv = ffi.string(C.environ[i])
    local k = kv:match("^([^=]*)=")
    if k and env[k] == nil then order[#order + 1] = k end
    if k then env[k] = kv end
    i = i + 1
  end
  for k, v in pairs(overrides or {}) do
    if env[k] == nil then order[#order + 1] = k end
    env[k] = v and (k .. "=" .. v) or false
  end
  local list = {}
  for _, k in ipairs(order) do if env[k] then list[#list + 1] = env[k] end end
  return list
end

local function cstrings(list)
  local arr = ffi.new("char *[?]", #list + 1)
  local keep = {}
  for i, s in ipairs(list) do
    keep[i] = ffi.new("char[?]", #s + 1, s)
    arr[i - 1] = keep[i]
  end
  arr[#list] = nil
  return arr, keep
end

-- Strips what a terminal would interpret: CSI/OSC escapes, charset selects,
-- carriage returns, bells and backspaces (with the character they erase).
function M.strip(s)
  s = s:gsub("\27%[[%d;?>=]*[%a@`~]", "")
       :gsub("\27%][^\7\27]*\7", "")
       :gsub("\27%][^\27]*\27\\", "")
       :gsub("\27[%(%)][%w]", "")
       :gsub("\27[=>78]", "")
       :gsub("[\r\7]", "")
  local prev
  repeat prev = s; s = s:gsub("[^\b\n]\b", "", 1) until s == prev
  return (s:gsub("\b", ""))
end

local Session = {}
Session.__index = Session

-- pty.spawn(argv, {env = {NAME = value|false}, cwd = dir, rows = 40, cols = 120})
function M.spawn(argv, opts)
  opts = opts or {}
  local c_argv, keep1 = cstrings(argv)
  local c_env, keep2 = cstrings(environment(opts.env))
  local ws = ffi.new("struct klua_winsize", { opts.rows or 40, opts.cols or 120, 0, 0 })
  local master = ffi.new("int[1]")
  local cwd = opts.cwd
  local pid = forkpty(master, nil, nil, ws)
  if pid < 0 then error("pty: forkpty failed") end
  if pid == 0 then
    -- the child only calls async-signal-safe functions before exec
    if cwd then C.chdir(cwd) end
    C.execve(c_argv[0], c_argv, c_env)
    C._exit(127)
  end
  return setmetatable({
    pid = pid, fd = master[0], raw = "", pos = 1, eof = false, status = nil,
    argv = argv, _keep = { keep1, keep2, c_argv, c_env },
  }, Session)
end

-- Reads what is available, waiting at most ms milliseconds for the first byte.
function Session:pump(ms)
  if self.eof then return false end
  local pfd = ffi.new("struct klua_pollfd[1]")
  pfd[0].fd, pfd[0].events = self.fd, POLLIN
  local r = C.poll(pfd, 1, ms)
  if r <= 0 then return false end
  local buf = ffi.new("char[4096]")
  local n = C.read(self.fd, buf, 4096)
  if n <= 0 then self.eof = true return false end -- EIO once the child has exited
  self.raw = self.raw .. ffi.string(buf, n)
  return true
end

-- Everything printed so far, stripped.
function Session:output()
  return M.strip(self.raw)
end

function Session:send(s)
  local n = C.write(self.fd, s, #s)
  if n ~= #s then error("pty: write failed") end
end

-- Waits until `text` (plain) appears after the previous match; returns the
-- text between. Fails with the tail of the output on timeout.
function Session:expect(text, timeout)
  local deadline = now() + (timeout or M.timeout)
  while true do
    local out = self:output()
    local a, b = out:find(text, self.pos, true)
    if a then
      local before = out:sub(self.pos, a - 1)
      self.pos = b + 1
      return before
    end
    if now() > deadline or (self.eof and not self:pump(0)) then
      error(("pty: %q did not appear within %gs; output so far:\n%s"):format(
        text, timeout or M.timeout, out:sub(math.max(1, #out - 1500))), 2)
    end
    self:pump(50)
  end
end

-- Collects output for ms milliseconds (for asserting that something does NOT appear).
function Session:drain(ms)
  local deadline = now() + ms / 1000
  while now() < deadline do self:pump(25) end
  return self:output():sub(self.pos)
end

-- Waits for the program to exit; returns its exit code (or 128 + signal).
function Session:wait(timeout)
  local st = ffi.new("int[1]")
  local deadline = now() + (timeout or M.timeout)
  while true do
    self:pump(0)
    local r = C.waitpid(self.pid, st, WNOHANG)
    if r == self.pid then
      local s = st[0]
      self.status = (s % 128 == 0) and math.floor(s / 256) % 256 or 128 + s % 128
      while self:pump(10) do end
      return self.status
    end
    if now() > deadline then error("pty: the program did not exit", 2) end
    self:pump(20)
  end
end

-- Ends the program if it still runs and frees the pty.
function Session:close()
  if not self.status then
    C.kill(self.pid, SIGTERM)
    local ok = pcall(self.wait, self, 1)
    if not ok then
      C.kill(self.pid, SIGKILL)
      pcall(self.wait, self, 1)
    end
  end
  if self.fd >= 0 then C.close(self.fd) self.fd = -1 end
end

return M
