-- repl.lua — the interactive prompt of `klua`: evaluates expressions and
-- statements (no `=` or `return` needed), continues incomplete input, shows
-- results with klua.pretty, completes names with Tab, answers help()/?name,
-- times with %time, and keeps history in ~/.klua_history.
-- Line editing, Ctrl-C and the clock come from the executable (module
-- klua.host, src/main.c); under a plain luajit it falls back to io.read.
local pretty = require("klua.pretty")
local doc = require("klua.doc")

local M = {}

M.prompt = "klua> "
M.continuation = "  ... "
M.history_size = 1000
-- NOTE: a JIT-compiled loop never checks the Ctrl-C hook, so chunks typed at
-- the prompt run interpreted (library code is still compiled). %jit on changes it.
M.jit_chunks = false

local has_host, host = pcall(require, "klua.host")
if not has_host then host = nil end

local keywords = {
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto",
  "if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
}

local magics = { "%time", "%jit", "%help", "%quit", ":time", ":jit", ":help", ":quit" }

local function pack(...) return { n = select("#", ...), ... } end

local function clock()
  if host then return host.clock() end
  return os.time()
end

local out_color, err_color = false, false

local function write_err(s)
  io.stderr:write(s)
  io.stderr:flush()
end

--------------------------------------------------------------------------------
-- Compiling input

-- compile(src) -> run, chunk | nil, "incomplete" | nil, message
-- run() returns the chunk's results packed ({n = count, ...}); chunk is the
-- loaded function (for jit.off). An expression is tried first, so `x` and
-- `x:sum()` show their value. It is compiled as `__pack(<src>)` rather than
-- `return <src>`: as a tail call, error("boom") would lose the stdin:1 frame.
-- A trailing `;` (as in IPython) runs the input without showing its values:
-- the third result is then true.
function M.compile(src, chunkname)
  chunkname = chunkname or "=stdin"
  src = src:gsub("^%s*=", "", 1) -- lua 5.1's `=expr`
  local quiet = src:match(";%s*$") ~= nil
  if quiet then
    local run, chunk = M.compile((src:gsub(";%s*$", "")), chunkname)
    if run then return run, chunk, true end
    -- `a = 1; b = 2;` or `do end;`: the semicolons are Lua's own
    if chunk ~= "incomplete" then
      local f = loadstring(src, chunkname)
      if f then return function() return pack(f()) end, f, true end
    end
    return nil, chunk
  end
  local f = loadstring("local __pack = ...; return __pack(" .. src .. "\n)", chunkname)
  if f then return function() return f(pack) end, f end
  local err
  f, err = loadstring(src, chunkname)
  if f then return function() return pack(f()) end, f end
  if err:match("<eof>'?$") then return nil, "incomplete" end
  return nil, err
end

--------------------------------------------------------------------------------
-- Errors: the message and the traceback frames above the REPL's own.

local function error_message(e)
  if type(e) == "string" then return e end
  local ok, s = pcall(tostring, e)
  if ok and type(s) == "string" then return s end
  return "(error object is a " .. type(e) .. " value)"
end

local function handler(e)
  local tb = debug.traceback("", 2)
  local frames = {}
  for line in tb:gmatch("[^\n]+") do
    if line:find("klua/repl.lua", 1, true) then break end
    -- error() itself and core.raise (which only moves the blame) add nothing
    if line ~= "stack traceback:" and not line:find("/klua/core.lua:", 1, true)
       and not (#frames == 0 and line:match("^%s*%[C%]: in function 'error'$")) then
      frames[#frames + 1] = line
    end
  end
  -- the frame just above the REPL's is the typed chunk, named after a local here
  local n = #frames
  if n > 0 then frames[n] = frames[n]:gsub("^(%s*stdin:%d+:) in function '[^']*'$", "%1 in main chunk") end
  -- the library's own frames above the first user frame are noise when
  -- the message already points at the user's line
  if #frames > 12 then
    local n = #frames
    frames = { frames[1], frames[2], frames[3], frames[4], frames[5],
               ("\t... (%d frames)"):format(n - 10),
               frames[n - 4], frames[n - 3], frames[n - 2], frames[n - 1], frames[n] }
  end
  return { msg = error_message(e), frames = frames }
end

local function report(err)
  if type(err) ~= "table" then err = { msg = error_message(err), frames = {} } end
  -- after Ctrl-C the terminal has echoed ^C: start on a fresh line
  local s = (err.msg:match("interrupted!$") and "\n" or "")
    .. pretty.paint(err_color, "error", err.msg) .. "\n"
  if #err.frames > 0 then
    s = s .. pretty.paint(err_color, "dim", "stack traceback:\n" .. table.concat(err.frames, "\n")) .. "\n"
  end
  write_err(s)
end

-- Runs fn() with Ctrl-C armed (klua.host.pcall) and the short traceback.
local function protected(fn, ...)
  if host then return host.pcall(handler, fn, ...) end
  return xpcall(fn, handler, ...)
end

-- Each shown result (the first value, unless nil) is appended to the global
-- list _RESULTS, as IPython's Out; `_` is the last one.
local function remember_result(v)
  rawset(_G, "_", v)
  if v == nil then return end
  local list = rawget(_G, "_RESULTS")
  if type(list) ~= "table" then
    list = {}
    rawset(_G, "_RESULTS", list)
  end
  if v ~= list then list[#list + 1] = v end -- showing _RESULTS does not add it to itself
end

local function show(res, quiet)
  if res.n == 0 or quiet then return end
  remember_result(res[1])
  io.write(pretty.format_results(res, { color = out_color }), "\n")
end

-- Runs a compiled chunk with Ctrl-C armed and shows its results (not when quiet).
local function eval(run, chunk, quiet)
  if not M.jit_chunks and jit then jit.off(chunk, true) end
  local ok, err = protected(function()
    show(run(), quiet)
  end)
  io.stdout:flush()
  if not ok then report(err) end
  return ok
end

--------------------------------------------------------------------------------
-- Help and magic commands

local function format_seconds(s)
  if s < 1e-3 then return ("%.1f µs"):format(s * 1e6) end
  if s < 1 then return ("%.2f ms"):format(s * 1e3) end
  return ("%.3f s"):format(s)
end

local help_text = [[
klua REPL — Lua (LuaJIT) with klua loaded as the global `klua`.

  x = klua.random.normal{2, 3}     statements and expressions; values are shown
  x:sum()                           several results are all shown; `_` is the last
  x:sum();                          a trailing ; runs it without showing the value
  _RESULTS[3]                       every value shown so far, in order
  help(klua.layers.Dense)           a doc string (or ?klua.layers.Dense, klua.layers.Dense?)
  %time expr   (or :time)           run and print the wall and CPU time
  %jit on|off                       JIT-compile typed chunks (off: Ctrl-C always works)
  quit()  exit()  %quit  Ctrl-D     leave

  Tab completes globals, fields and methods (x:res<Tab>), and file names inside
  a string ("data/tr<Tab>); Up/Down and Ctrl-R search the history
  (~/.klua_history or $KLUA_HISTORY); Ctrl-C interrupts a running computation
  or clears the line.]]

function M.help(...)
  if select("#", ...) == 0 then
    io.write(help_text, "\n")
    return
  end
  local v = ...
  if v == nil then
    io.write("help: got nil (is the name defined? try help(\"klua.layers.Dense\"))\n")
    return
  end
  doc.help(v, { color = out_color })
end

doc.register(M.help, {
  name = "help",
  signature = "help([value])",
  text = "Shows the doc string of a value: help(klua.layers.Dense), or ?klua.layers.Dense.\n"
      .. "Without an argument, the REPL's commands.",
})

local function help_name(name)
  name = name:match("^%s*(.-)%s*$")
  if name == "" then return M.help() end
  local ok, err = protected(function() doc.help(name, { color = out_color }) end)
  if not ok then report(err) end
end

local function time_chunk(src)
  if src:match("^%s*$") then
    write_err("%time: give an expression or statement, e.g. %time x:matmul(x)\n")
    return
  end
  local run, chunk, quiet = M.compile(src)
  if not run then
    report(chunk == "incomplete" and "%time: incomplete input (one line only)" or chunk)
    return
  end
  if not M.jit_chunks and jit then jit.off(chunk, true) end
  local res
  local cpu0, t0 = os.clock(), clock()
  local ok, e = protected(function() res = run() end)
  local wall, cpu = clock() - t0, os.clock() - cpu0
  if not ok then report(e) return end
  show(res, quiet)
  io.write(pretty.paint(out_color, "dim",
    ("Wall time: %s (CPU %s)"):format(format_seconds(wall), format_seconds(cpu))), "\n")
end

local done = false

-- quit() / exit(): leave after the current input. Typed without the call,
-- they say how (as Python's).
local function make_quitter(name)
  return setmetatable({}, {
    __call = function() done = true end,
    __tostring = function() return ("Use %s() or Ctrl-D to leave the klua REPL"):format(name) end,
  })
end
M.quit = make_quitter("quit")
M.exit = make_quitter("exit")
doc.register(M.quit, { name = "quit", signature = "quit()", text = "Leaves the REPL (also exit(), %quit or Ctrl-D)." })
doc.register(M.exit, { name = "exit", signature = "exit()", text = "Leaves the REPL (also quit(), %quit or Ctrl-D)." })

-- A line starting with % or : (or ?), or ending with ?: a command, not Lua.
local function magic(line)
  local q = line:match("^%s*%?(.*)$") or line:match("^%s*([%a_][%w_%.:]*)%?%s*$")
  if q then help_name(q) return true end
  local cmd, rest = line:match("^%s*[%%:](%a+)%s*(.-)%s*$")
  if not cmd then return false end
  if cmd == "time" then time_chunk(rest)
  elseif cmd == "jit" then
    if rest == "on" then M.jit_chunks = true elseif rest == "off" then M.jit_chunks = false
    elseif rest ~= "" then write_err("%jit: expected on or off\n") end
    io.write("JIT for typed chunks: ", M.jit_chunks and "on" or "off", "\n")
  elseif cmd == "help" then help_name(rest)
  elseif cmd == "quit" or cmd == "q" or cmd == "exit" then done = true
  else write_err(("unknown command %%%s (try %%help)\n"):format(cmd)) end
  return true
end

--------------------------------------------------------------------------------
-- Tab completion

local function sorted_matching(names, prefix, fmt)
  local out = {}
  local private = prefix:sub(1, 1) == "_" -- _names only when asked for
  for name in pairs(names) do
    if name:sub(1, #prefix) == prefix and name:match("^[%a_][%w_]*$")
       and (private or name:sub(1, 1) ~= "_") then
      out[#out + 1] = name
    end
  end
  table.sort(out)
  for i, name in ipairs(out) do out[i] = fmt(name) end
  return out
end

-- The contents so far of the string literal the cursor is in, or nil.
local function open_string(before)
  local i, n, quote, from = 1, #before, nil, nil
  while i <= n do
    local c = before:sub(i, i)
    if quote then
      if c == "\\" then i = i + 1
      elseif c == quote then quote = nil end
    elseif c == '"' or c == "'" then
      quote, from = c, i
    elseif before:sub(i, i + 1) == "--" then
      return nil -- a comment
    elseif c == "[" and before:match("^%[=*%[", i) then
      local eq = before:match("^%[(=*)%[", i)
      local close = before:find("]" .. eq .. "]", i, true)
      if not close then return nil end -- inside a long string: no file names
      i = close + #eq + 1
    end
    i = i + 1
  end
  if quote then return before:sub(from + 1) end
  return nil
end
M.open_string = open_string

local function list_dir(path)
  local ok, names = pcall(function() return require("klua.utils").list_dir(path) end)
  return ok and names or nil
end

-- File names completing `partial` (the string so far); each candidate
-- replaces `text`, the end of it. Directories end in "/"; dot files only
-- when asked for.
local function complete_path(partial, text)
  if partial:sub(#partial - #text + 1) ~= text then return {} end
  local dir, base = partial:match("^(.*/)([^/]*)$")
  if not dir then dir, base = "", partial end
  local where = dir == "" and "." or dir
  if where:sub(1, 2) == "~/" then where = (os.getenv("HOME") or "~") .. where:sub(2) end
  local out = {}
  for _, name in ipairs(list_dir(where) or {}) do
    if name:sub(1, #base) == base and (base:sub(1, 1) == "." or name:sub(1, 1) ~= ".") then
      local full = dir .. name
      if list_dir(where .. "/" .. name) then full = full .. "/" end
      out[#out + 1] = text .. full:sub(#partial + 1)
    end
  end
  table.sort(out)
  return out
end
M.complete_path = complete_path

-- A Lua function whose first parameter is not `self` is called with a dot.
local function takes_self(f)
  if type(f) ~= "function" then return false end
  local info = debug.getinfo(f, "Su")
  if info.what == "C" then return true end
  return info.nparams > 0 and debug.getlocal(f, 1) == "self"
end

-- complete(text, line, start, stop) -> candidates replacing `text`, the word
-- before the cursor (readline splits at spaces and operators, not at . or :);
-- line is the line up to the cursor at least. Inside a string: file names.
-- Names starting with _ (metamethods too) are offered only when typed.
function M.complete(text, line, start, stop)
  local before = line:sub(1, stop)
  if before:match("^%s*$") then return { "  " } end -- Tab at the left margin indents
  local partial = open_string(before)
  if partial then return complete_path(partial, text) end
  local lead = ""
  if text:match("^%?") then lead, text = "?", text:sub(2) end
  if text:match("^[%%:]%a*$") and start == (before:find("%S") or 0) then
    local out = {}
    for _, m in ipairs(magics) do
      if m:sub(1, #text) == text then out[#out + 1] = m end
    end
    return out
  end
  local chain, sep, partial = text:match("^(.-)([%.:])([%w_]*)$")
  if not chain then
    if not text:match("^[%a_][%w_]*$") and text ~= "" then return {} end
    local names = {}
    for _, k in ipairs(keywords) do names[k] = true end
    for k, v in pairs(doc.members(_G, text)) do names[k] = v end
    return sorted_matching(names, text, function(n) return lead .. n end)
  end
  if not doc.is_dotted_name(chain) or chain:find(":") then return {} end
  local v, found = doc.resolve(chain)
  if not found or v == nil then return {} end
  local members = doc.members(v, partial)
  if sep == ":" then
    -- a class's (or an object's) methods; its dot functions are not methods
    local of_class = doc.is_class(v) or doc.is_class(type(v) == "table" and getmetatable(v) or nil)
    for k, f in pairs(members) do
      if type(f) ~= "function" or (of_class and not takes_self(f)) then members[k] = nil end
    end
  end
  return sorted_matching(members, partial, function(n) return lead .. chain .. sep .. n end)
end

--------------------------------------------------------------------------------
-- Reading lines

local function history_path()
  local p = os.getenv("KLUA_HISTORY")
  if p then return p ~= "" and p or nil end
  local home = os.getenv("HOME")
  return home and home ~= "" and (home .. "/.klua_history") or nil
end

local last_history

local function remember(line)
  if not host or line:match("^%s*$") or line == last_history then return end
  last_history = line
  host.add_history(line)
  local path = history_path()
  if path then host.append_history(path, line) end
end

local function read_line(prompt)
  if host then return host.readline(prompt) end
  io.write((prompt:gsub("[\1\2]", "")))
  io.flush()
  return io.read("*l")
end

local function make_prompt(s)
  if not out_color then return s end
  -- \1 \2 tell readline the escape codes take no room on screen
  local body, pad = s:match("^(.-)(%s*)$")
  return "\1\27[32;1m\2" .. body .. "\1\27[0m\2" .. pad
end

--------------------------------------------------------------------------------

local function load_klua()
  if rawget(_G, "klua") ~= nil then return true end
  local ok, res = protected(function() return require("klua") end)
  if ok then
    rawset(_G, "klua", res)
    return true
  end
  local msg = type(res) == "table" and res.msg or tostring(res)
  write_err(pretty.paint(err_color, "error", "warning: require(\"klua\") failed: " .. msg) ..
    "\n(a plain Lua REPL: fix the error and restart klua)\n")
  return false
end

-- repl.start{banner = true}: runs until Ctrl-D or %quit.
function M.start(opts)
  opts = opts or {}
  out_color = pretty.use_color(1)
  err_color = pretty.use_color(2)
  done = false
  load_klua()
  if rawget(_G, "help") == nil then rawset(_G, "help", M.help) end
  if rawget(_G, "quit") == nil then rawset(_G, "quit", M.quit) end
  if rawget(_G, "exit") == nil then rawset(_G, "exit", M.exit) end
  if rawget(_G, "_RESULTS") == nil then rawset(_G, "_RESULTS", {}) end
  local interactive = host and host.isatty(0)
  if interactive then
    host.set_completer(function(text, line, start, stop)
      local ok, r = pcall(M.complete, text, line, start, stop)
      return ok and r or {}
    end)
    local path = history_path()
    if path then host.load_history(path, M.history_size) end
  end
  if opts.banner ~= false and interactive then
    local version = host.version and host.version() or "klua"
    io.write(version, " — help() for help, Ctrl-D to exit\n")
  end
  local buffer = nil
  while not done do
    local line = read_line(make_prompt(buffer and M.continuation or M.prompt))
    if line == nil then -- Ctrl-D / end of input
      if interactive then io.write("\n") end
      break
    elseif line == false then -- Ctrl-C at the prompt: drop the pending input
      buffer = nil
    else
      remember(line)
      if not buffer and magic(line) then
        -- handled
      else
        local src = buffer and (buffer .. "\n" .. line) or line
        if src:match("^%s*$") then
          buffer = nil
        else
          local run, err, quiet = M.compile(src)
          if run then
            buffer = nil
            eval(run, err, quiet)
          elseif err == "incomplete" then
            buffer = src
          else
            buffer = nil
            report(err)
          end
        end
      end
    end
  end
  io.stdout:flush()
  if host then host.set_completer(nil) end
end

return M
