-- repl_spec.lua — the interactive REPL, driven through a pseudo-terminal
-- (tests/pty.lua) the way a person uses it, plus its parts (compile,
-- completion, pretty printing, doc strings) called directly.
local pty = dofile("tests/pty.lua")
local helpers = require("helpers")
local tmpdir, remove_tree = helpers.tmpdir, helpers.remove_tree

local PROMPT = "klua> "

-- The executables under test: the default build (libedit), and the same
-- main.c against GNU readline (`make READLINE=gnu`) when its headers are
-- installed, built beside it in $KLUA_BUILD (linked against the library
-- already built there: -o keeps make from rebuilding it).
local ROOT = io.popen("pwd"):read("*l")
local function absolute(path) return path:sub(1, 1) == "/" and path or (ROOT .. "/" .. path) end

local function variants()
  local list = { { name = "default build", exe = absolute(helpers.EXE) } }
  local build = os.getenv("KLUA_BUILD") or "build"
  -- (not in a sanitizer build: main.c would need its flags; build-asan/.san marks one)
  if not os.getenv("KLUA_EXE") and helpers.exists("/usr/include/readline/readline.h")
     and not helpers.exists(build .. "/.san") then
    local out, code = helpers.shell(("make -s BUILD=%s -o %s/libklua.so %s/klua-gnu"):format(build, build, build))
    if code == 0 then
      list[#list + 1] = { name = "READLINE=gnu", exe = absolute(build .. "/klua-gnu") }
    else
      print("repl_spec: could not build the GNU readline variant:\n" .. out)
    end
  end
  return list
end

-- What an executable links for line editing, as it reports it.
local function line_editor(exe)
  local out = helpers.shell(exe .. [[ -e 'io.write(require("klua.host").line_editor())']])
  return out
end

for _, variant in ipairs(variants()) do
local EXE = variant.exe

-- A REPL on a fresh terminal, isolated from the user's setup.
local function start(args, env, opts)
  local argv = { EXE }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  local e = { TERM = "xterm", INPUTRC = "/dev/null", NO_COLOR = "1", KLUA_HISTORY = false,
              LUA_PATH = false, LUA_INIT = false, HOME = tmpdir() }
  for k, v in pairs(env or {}) do e[k] = v end
  local s = pty.spawn(argv, { env = e, cwd = opts and opts.cwd, cols = opts and opts.cols })
  s.home = e.HOME
  return s
end

-- Types a line and returns what it printed before the next prompt.
local function run(s, line)
  s:send(line .. "\r")
  s:expect(line .. "\n")
  return s:expect(PROMPT)
end

local function session(args, env, opts)
  local s = start(args, env, opts)
  finally(function()
    s:close()
    if s.home then remove_tree(s.home) end
  end)
  s:expect(PROMPT)
  return s
end

describe("the klua REPL on a terminal (" .. variant.name .. ", " .. line_editor(EXE) .. ")", function()
  it("shows the value of an expression without = or return, and all of several values", function()
    local s = session()
    assert.are.equal("42\n", run(s, "6 * 7"))
    assert.are.equal("43\n", run(s, "_ + 1"))    -- _ is the last value shown
    assert.are.equal('1\t"a"\t{2, 3}\n', run(s, "1, 'a', {2, 3}"))
    assert.are.equal("", run(s, "y = 5"))        -- a statement shows nothing
    assert.are.equal("5\n", run(s, "y"))
  end)

  it("shows a tensor as print() does and x:sum() as a value", function()
    local s = session()
    run(s, "x = klua.ones{2, 3}")
    local printed = run(s, "print(x)")
    assert.matches("1", printed)
    assert.are.equal(printed, run(s, "x"))
    assert.are.equal("{2, 3}\n", run(s, "x:shape()"))
    assert.are.equal("6\n", run(s, "x:sum():item()"))
  end)

  it("runs an input ending in ; without showing its value", function()
    local s = session()
    assert.are.equal("", run(s, "6 * 7;"))
    assert.are.equal("", run(s, "z = klua.ones{2};"))
    assert.are.equal("2\n", run(s, "z:sum():item()"))
    assert.are.equal("", run(s, "z:sum():item();"))
    assert.are.equal("2\n", run(s, "_"))          -- a hidden value does not become _
  end)

  it("keeps every value shown in the list _RESULTS", function()
    local s = session()
    run(s, "6 * 7")
    run(s, "'two'")
    run(s, "nothing = nil")
    run(s, "1 + 1;")
    assert.are.equal('{42, "two"}\n', run(s, "_RESULTS"))
    assert.are.equal("42\n", run(s, "_RESULTS[1]"))
    assert.are.equal("3\n", run(s, "#_RESULTS"))  -- _RESULTS[1] was shown and kept; the list itself is not
  end)

  it("continues a multi-line function definition with a continuation prompt", function()
    local s = session()
    s:send("function sq(a)\r")
    s:expect("  ... ")
    s:send("  return a * a\r")
    s:expect("  ... ")
    s:send("end\r")
    s:expect(PROMPT)
    assert.are.equal("49\n", run(s, "sq(7)"))
    s:send("t = {1,\r")          -- an open table continues too
    s:expect("  ... ")
    s:send("2, 3}\r")
    s:expect(PROMPT)
    assert.are.equal("3\n", run(s, "#t"))
  end)

  it("drops unfinished multi-line input on Ctrl-C", function()
    local s = session()
    s:send("function never(a)\r")
    s:expect("  ... ")
    s:send("return a\3")
    s:expect(PROMPT)
    assert.are.equal("nil\n", run(s, "never"))
    assert.are.equal("42\n", run(s, "6 * 7"))
  end)

  it("completes a tensor method, a module field and a global with Tab", function()
    local s = session()
    run(s, "x = klua.ones{2, 3}")
    s:send("x:resh\t")
    s:expect("x:reshape")
    s:send("{3, 2}:shape()\r")
    assert.are.equal("{3, 2}\n", s:expect(PROMPT):match("\n(.*)$"))
    s:send("klua.random.unif\t")
    s:expect("klua.random.uniform")
    s:send("\3")                 -- Ctrl-C drops the line
    s:expect(PROMPT)
    s:send("collectga\t")
    s:expect("collectgarbage")
    s:send("\3")
    s:expect(PROMPT)
  end)

  it("lists the candidates on a second Tab, without names starting with _", function()
    local s = session()
    run(s, "obj = {alpha = 1, alpine = 2, _alsohidden = 3}")
    s:send("obj.alp\t\t")              -- nothing to add: the second Tab lists
    local shown = s:expect("obj.alpine")
    s:send("\3")
    s:expect(PROMPT)
    assert.truthy((shown .. "obj.alpine"):find("obj.alpha", 1, true))
    assert.is_nil(s.raw:find("_alsohidden", #s.raw - 400, true) and s:output():find("obj._alsohidden", 1, true))
  end)

  it("completes file names inside a string", function()
    local dir = tmpdir()
    finally(function() remove_tree(dir) end)
    helpers.write_file(dir .. "/digits_train.csv", "")
    helpers.write_file(dir .. "/digits_test.csv", "")
    os.execute("mkdir " .. helpers.shell_quote(dir .. "/pictures"))
    helpers.write_file(dir .. "/pictures/cat.png", "")
    local s = session({}, nil, { cwd = dir })
    s:send('f = io.open("digits_tr\t')
    s:expect('io.open("digits_train.csv')
    s:send('")\r')
    s:expect(PROMPT)
    assert.are.equal("true\n", run(s, "f ~= nil"))
    s:send('klua.image.read_png("pic\t')
    s:expect('read_png("pictures/')
    s:send("c\t")
    s:expect("at.png")
    s:send("\3")
    s:expect(PROMPT)
  end)

  it("keeps history in ~/.klua_history across sessions", function()
    local home = tmpdir()
    finally(function() remove_tree(home) end)
    local s1 = start({}, { HOME = home })
    finally(function() s1:close() end)
    s1:expect(PROMPT)
    run(s1, "hist_marker = 41 + 1")
    s1:send("\4")                -- Ctrl-D ends the session
    assert.are.equal(0, s1:wait())
    local saved = helpers.read_file(home .. "/.klua_history")
    assert.matches("hist_marker = 41 %+ 1\n", saved)
    assert.are.equal("-rw-------", helpers.shell("stat -c %A " .. helpers.shell_quote(home .. "/.klua_history")):match("%S+"))

    local s2 = start({}, { HOME = home })
    finally(function() s2:close() end)
    s2:expect(PROMPT)
    s2:send("\27[A")             -- Up: the previous session's line
    s2:expect("hist_marker = 41 + 1")
    s2:send("\r")
    s2:expect(PROMPT)
    assert.are.equal("42\n", run(s2, "hist_marker"))
  end)

  it("keeps history in $KLUA_HISTORY, cut to the last 1000 lines", function()
    local dir = tmpdir()
    finally(function() remove_tree(dir) end)
    local path = dir .. "/hist"
    local lines = {}
    for i = 1, 1005 do lines[i] = "old_line_" .. i end
    helpers.write_file(path, table.concat(lines, "\n") .. "\n")
    local s = session({}, { KLUA_HISTORY = path })
    s:send("\27[A")
    s:expect("old_line_1005")
    s:send("\3")
    s:expect(PROMPT)
    run(s, "newest = 1")
    local kept = "\n" .. helpers.read_file(path)
    assert.is_nil(kept:find("\nold_line_5\n", 1, true))
    assert.truthy(kept:find("\nold_line_6\n", 1, true))
    assert.truthy(kept:find("old_line_1005\nnewest = 1\n", 1, true))
  end)

  it("searches the history backwards with Ctrl-R", function()
    local s = session()
    run(s, "hits = (hits or 0) + 1")
    run(s, "6 * 7")
    s:send("\18hits")            -- Ctrl-R, then part of the line
    s:drain(200)
    s:send("\r")
    s:expect(PROMPT)
    assert.are.equal("2\n", run(s, "hits"))
  end)

  it("reads UTF-8 input, and Backspace deletes a whole character", function()
    local s = session({}, { LANG = false, LC_ALL = false, LC_CTYPE = false })
    run(s, 's = "héllo 日本"')
    assert.are.equal("13\n", run(s, "#s"))   -- the bytes of the UTF-8 text
    s:send('t = "éa\127\127"\r')  -- two Backspaces remove "a" and "é"
    s:expect(PROMPT)
    assert.are.equal("0\n", run(s, "#t"))
  end)

  it("prints an error with a short traceback and returns to a working prompt", function()
    local s = session()
    local out = run(s, "error('boom')")
    assert.matches("^stdin:1: boom\nstack traceback:\n", out)
    assert.matches("stdin:1: in main chunk", out)
    assert.is_nil(out:find("repl.lua", 1, true)) -- the REPL's own frames are cut
    assert.matches("attempt to perform arithmetic", run(s, "nil + 1"))
    assert.matches("^stdin:1: matmul: .*%(2,3%).*%(4,5%)", run(s, "klua.ones{2,3}:matmul(klua.ones{4,5})"))
    assert.matches("unexpected symbol", run(s, "1 +* 2"))
    assert.are.equal("42\n", run(s, "6 * 7"))
  end)

  it("stops an infinite loop on Ctrl-C and keeps the session", function()
    local s = session()
    s:send("while true do end\r")
    assert.is_nil(s:drain(200):find(PROMPT, 1, true)) -- still running
    s:send("\3")
    s:expect("interrupted!")
    s:expect(PROMPT)
    assert.are.equal("42\n", run(s, "6 * 7"))
    -- a loop inside a function typed earlier is interruptible too
    run(s, "function spin() local n = 0 while true do n = n + 1 end end")
    s:send("spin()\r")
    s:drain(200)
    s:send("\3")
    s:expect("interrupted!")
    s:expect(PROMPT)
    -- Ctrl-C at the prompt only drops the typed line
    s:send("abc")
    s:send("\3")
    s:expect(PROMPT)
    assert.are.equal("42\n", run(s, "6 * 7"))
  end)

  it("lets a third Ctrl-C end a loop that ignores the first (JIT-compiled with %jit on)", function()
    local s = session()
    run(s, "%jit on")
    s:send("while true do end\r")
    s:drain(200)
    s:send("\3")
    s:drain(300)
    s:send("\3")
    s:expect("still running")
    s:send("\3")
    assert.are.equal(128 + 2, s:wait()) -- ended by SIGINT
  end)

  it("prints help for a value, a ?name and the REPL itself", function()
    local s = session()
    assert.matches("klua%.doc%.register%(obj, {signature=", run(s, "help(klua.doc.register)"))
    assert.matches("help%(%[value%]%)", run(s, "?help"))
    assert.matches("Prints the doc string", run(s, "klua.doc.help?"))
    assert.matches("klua%.ones%(shape%)", run(s, "help(klua.ones)"))
    assert.matches("Methods.*reshape", run(s, "help(klua.ones{2})"))
    assert.matches("%%time", run(s, "help()"))
    assert.matches("no value or doc string named klua%.nothing_here", run(s, "?klua.nothing_here"))
  end)

  it("times an expression with %time and :time", function()
    local s = session()
    local out = run(s, "%time 6 * 7")
    assert.matches("^42\nWall time: [%d.]+ %S*s %(CPU [%d.]+ %S*s%)\n$", out)
    assert.matches("Wall time", run(s, ":time local z = 0 for i = 1, 1000 do z = z + i end"))
    assert.matches("unknown command", run(s, "%bogus"))
  end)

  it("exits with status 0 on Ctrl-D", function()
    local s = session()
    s:send("\4")
    assert.are.equal(0, s:wait())
  end)

  it("exits with status 0 on quit() and exit(), and says how when they are typed without ()", function()
    local s = session()
    assert.matches("Use quit%(%) or Ctrl%-D", run(s, "quit"))
    s:send("quit()\r")
    assert.are.equal(0, s:wait())
    local e = session()
    e:send("exit()\r")
    assert.are.equal(0, e:wait())
  end)

  it("opens after `klua -i script.lua` with the script's globals", function()
    local dir = tmpdir()
    finally(function() remove_tree(dir) end)
    helpers.write_file(dir .. "/setup.lua", "answer = 41 + 1\nprint('script ran', ...)\n")
    local s = start({ "-i", dir .. "/setup.lua", "a1" })
    finally(function() s:close() end)
    s:expect("script ran\ta1")
    s:expect(PROMPT)
    assert.are.equal("42\n", run(s, "answer"))
  end)

  it("colours values on a terminal unless NO_COLOR is set", function()
    local s = session({}, { NO_COLOR = false })
    run(s, "'abc'")
    assert.truthy(s.raw:find('\27[32m"abc"', 1, true))
    assert.is_nil(s.raw:find("[\1\2]"))          -- the prompt's markers are not printed
    local p = session({}, { NO_COLOR = "1" })
    run(p, "'abc'")
    assert.is_nil(p.raw:find('\27[32m"abc"', 1, true))
    assert.truthy(p.raw:find('"abc"', 1, true))
  end)

  it("still starts as a plain Lua REPL, with a warning, when klua cannot load", function()
    local s = start({ "-e", "package.preload.klua = function() error('no core here') end", "-i" })
    finally(function() s:close() end)
    s:expect("warning: require(\"klua\") failed")
    s:expect("no core here")
    s:expect(PROMPT)
    assert.are.equal("42\n", run(s, "6 * 7"))
  end)

  it("redraws a progress bar in place within an 80-column terminal", function()
    local script = [[
      local Progbar = require("klua.progbar")
      local bar = Progbar(40, { interval = 0 })
      for i = 1, 40 do
        bar:update(i, { { "loss", 0.123456 }, { "accuracy", 0.5 }, { "val_loss", 1.2345 }, { "val_accuracy", 0.25 } })
      end
      io.write("done\n")
    ]]
    local s = start({ "-e", script }, nil, { cols = 80 })
    finally(function() s:close() end)
    s:expect("done")
    s:wait()
    local text = s.raw:gsub("\27%[[%d;]*%a", "")
    local body = text:match("^(.-)done")
    assert.are.equal(1, select(2, body:gsub("\n", "")))     -- one line: no line left per redraw
    local redraws = 0
    for piece in body:gmatch("\r([^\r\n]*)") do
      redraws = redraws + 1
      if redraws < 40 then assert.truthy(#piece <= 79, piece) end
    end
    assert.truthy(redraws >= 40)
    assert.matches("40/40 %[=+%]", body)
    assert.matches("val_accuracy: 0%.2500\r?\n$", body)  -- the final line keeps every value
  end)
end)
end

describe("the klua executable's line editing", function()
  it("reports its line editor, and a default build links libedit, not GNU readline", function()
    local editor = line_editor(helpers.EXE)
    assert.truthy(editor == "libedit" or editor == "GNU readline", editor)
    local build = os.getenv("KLUA_BUILD") or "build"
    if os.getenv("KLUA_EXE") or helpers.exists(build .. "/.readline-gnu") then return end -- built with READLINE=gnu
    assert.are.equal("libedit", editor)
    local libs = helpers.shell("ldd " .. helpers.shell_quote(helpers.EXE))
    assert.truthy(libs:find("libedit", 1, true), libs)
    assert.is_nil(libs:find("libreadline", 1, true), libs)
  end)
end)

describe("the REPL's parts", function()
  local repl = require("klua.repl")
  local pretty = require("klua.pretty")
  local doc = require("klua.doc")

  describe("compile", function()
    it("compiles expressions to their values and statements to nothing", function()
      local run = assert(repl.compile("1 + 1, 'x'"))
      local r = run()
      assert.are.same({ n = 2, 2, "x" }, r)
      run = assert(repl.compile("local a = 1"))
      assert.are.equal(0, run().n)
      run = assert(repl.compile("=3"))        -- lua 5.1's =expr still works
      assert.are.equal(3, run()[1])
    end)

    it("reports open functions, tables and long strings as incomplete", function()
      for _, src in ipairs { "function f()", "if x then", "t = {1,", "s = [[abc", "for i = 1, 2", "x = 1 +" } do
        local run, err = repl.compile(src)
        assert.is_nil(run)
        assert.are.equal("incomplete", err)
      end
    end)

    it("marks input ending in ; as quiet, and keeps Lua's own semicolons working", function()
      local run, _, quiet = repl.compile("1 + 1;")
      assert.are.equal(2, run()[1])
      assert.is_true(quiet)
      run, _, quiet = repl.compile("a_spec_semi = 1; a_spec_semi = a_spec_semi + 1;")
      finally(function() rawset(_G, "a_spec_semi", nil) end)
      assert.are.equal(0, run().n)
      assert.are.equal(2, rawget(_G, "a_spec_semi"))
      assert.is_true(quiet)
      assert.is_nil(select(3, repl.compile("1 + 1")))
      assert.are.same({ nil, "incomplete" }, { repl.compile("function f();") })
    end)

    it("reports a syntax error with its position", function()
      local run, err = repl.compile("1 +* 2")
      assert.is_nil(run)
      assert.matches("^stdin:1: unexpected symbol", err)
    end)
  end)

  describe("complete", function()
    it("completes globals, keywords and table fields", function()
      assert.are.same({ "collectgarbage" }, repl.complete("collectga", "collectga", 1, 9))
      assert.are.same({ "function" }, repl.complete("functi", "functi", 1, 6))
      assert.are.same({ "string.upper" }, repl.complete("string.up", "x = string.up", 5, 13))
      assert.are.same({ "?string.format" }, repl.complete("?string.form", "?string.form", 1, 12))
    end)

    it("completes tensor methods after a colon", function()
      local klua = require("klua")
      rawset(_G, "klua", klua)
      rawset(_G, "x_repl_spec", klua.ones { 2 })
      finally(function() rawset(_G, "x_repl_spec", nil) end)
      assert.are.same({ "x_repl_spec:reshape" }, repl.complete("x_repl_spec:resh", "x_repl_spec:resh", 1, 16))
      local sums = repl.complete("x_repl_spec:su", "x_repl_spec:su", 1, 14)
      assert.truthy(#sums >= 1)
      for _, c in ipairs(sums) do assert.matches("^x_repl_spec:su", c) end
    end)

    it("completes names a lazy table lists in its files table before they load", function()
      local lazy = setmetatable({ files = { Dense = "dense", Dropout = "dropout" } }, {
        __index = function(t, k) if k == "Dense" then return "the Dense class" end end,
      })
      rawset(_G, "lazy_repl_spec", lazy)
      finally(function() rawset(_G, "lazy_repl_spec", nil) end)
      -- Dropout is listed but does not load: not offered
      assert.are.same({ "lazy_repl_spec.Dense" }, repl.complete("lazy_repl_spec.D", "lazy_repl_spec.D", 1, 16))
    end)

    it("offers names starting with _ (metamethods too) only when they are typed", function()
      local t = setmetatable({ visible = 1, _hidden = 2, __call = 3 }, { __index = { __index = 4, also = 5 } })
      rawset(_G, "t_repl_spec", t)
      finally(function() rawset(_G, "t_repl_spec", nil) end)
      assert.are.same({ "t_repl_spec.also", "t_repl_spec.visible" }, repl.complete("t_repl_spec.", "t_repl_spec.", 1, 12))
      assert.are.same({ "t_repl_spec._hidden" }, repl.complete("t_repl_spec._h", "t_repl_spec._h", 1, 14))
    end)

    it("offers only methods after a colon: a class's dot functions are left out", function()
      local Thing = require("klua.class")("ThingForCompletionSpec")
      function Thing:grow() end
      function Thing.grown_from(config) return config end
      rawset(_G, "thing_repl_spec", Thing())
      finally(function() rawset(_G, "thing_repl_spec", nil) end)
      assert.are.same({ "thing_repl_spec:grow" }, repl.complete("thing_repl_spec:gr", "thing_repl_spec:gr", 1, 18))
    end)

    it("completes file names inside a string, directories with a slash", function()
      local dir = tmpdir()
      finally(function() remove_tree(dir) end)
      helpers.write_file(dir .. "/train.csv", "")
      helpers.write_file(dir .. "/.secret", "")
      os.execute("mkdir " .. helpers.shell_quote(dir .. "/tra_dir"))
      assert.are.equal(dir .. "/tr", repl.open_string('x = read("' .. dir .. '/tr'))
      assert.are.same({ "tra_dir/", "train.csv" }, repl.complete_path(dir .. "/tr", "tr"))
      assert.are.same({ "train.csv" }, repl.complete_path(dir .. "/trai", "trai"))
      assert.are.same({ ".secret" }, repl.complete_path(dir .. "/.", "."))
      local line = 'read("' .. dir .. '/trai'
      assert.are.same({ "train.csv" }, repl.complete("trai", line, #line - 3, #line))
    end)

    it("knows when the cursor is inside a string", function()
      assert.are.equal("ab", repl.open_string('f("ab'))
      assert.are.equal("x", repl.open_string([[f('a\'b', "x]]))
      assert.is_nil(repl.open_string('f("ab")'))
      assert.is_nil(repl.open_string('x = 1 -- "a comment'))
      assert.is_nil(repl.open_string('s = [[open "long'))
      assert.are.equal("y", repl.open_string('s = [[done]] .. "y'))
    end)

    it("indents on Tab at the start of a line and offers the % commands", function()
      assert.are.same({ "  " }, repl.complete("", "  ", 3, 2))
      assert.are.same({ "%time" }, repl.complete("%ti", "%ti", 1, 3))
    end)
  end)

  describe("progress bar", function()
    local Progbar = require("klua.progbar")
    local function capture(columns, target, steps, values)
      local out = {}
      local stream = { write = function(_, s) out[#out + 1] = s end, flush = function() end }
      local bar = Progbar(target, { stream = stream, dynamic = true, interval = 0 })
      bar.terminal_width = function() return columns end
      for i = 1, steps do bar:update(i, values) end
      return table.concat(out)
    end

    it("narrows the bar and cuts the line to fit the terminal while it redraws", function()
      local values = { { "loss", 0.5 }, { "accuracy", 0.25 }, { "val_loss", 0.75 }, { "val_accuracy", 0.125 } }
      local text = capture(60, 10, 10, values)
      local pieces = {}
      for piece in text:gmatch("\r([^\r]*)") do pieces[#pieces + 1] = piece end
      assert.are.equal(10, #pieces)
      for i = 1, 9 do assert.truthy(#pieces[i] <= 59, pieces[i]) end
      assert.matches("^ 5/10 %[====>.....%]", pieces[5])                  -- the bar at its narrowest, 10 wide
      assert.matches("val_accuracy: 0%.1250\n$", pieces[10])             -- the final line keeps every value
    end)

    it("keeps the 30-character bar when the terminal is wide enough", function()
      local text = capture(200, 4, 4, { { "loss", 0.5 } })
      assert.matches("\r4/4 %[==============================%] %- 0s", text)
    end)

    it("asks the terminal for its width, then $COLUMNS, then takes 80", function()
      local utils = require("klua.utils")
      assert.are.equal(utils.terminal_width, Progbar.terminal_width)
      local n = utils.terminal_width(-1)                                  -- not a terminal
      local env = tonumber(os.getenv("COLUMNS"))
      assert.are.equal(env and env >= 1 and math.floor(env) or 80, n)
    end)
  end)

  describe("pretty.format", function()
    it("sorts keys, puts the array part first and quotes strings", function()
      assert.are.equal('{1, 2, "three", a = true, b = {c = 1}, [false] = 0}',
        pretty.format({ 1, 2, "three", b = { c = 1 }, a = true, [false] = 0 }))
      assert.are.equal('"line\\none"', pretty.format("line\none"))
    end)

    it("marks cycles and cuts deep and long tables", function()
      local t = { name = "loop" }
      t.self = t
      assert.are.equal('{name = "loop", self = <cycle>}', pretty.format(t))
      assert.are.equal("{a = {b = {c = {d = {...}}}}}", pretty.format({ a = { b = { c = { d = { 1 } } } } }))
      local long = {}
      for i = 1, 200 do long[i] = i end
      local s = pretty.format(long)
      assert.matches("%.%.%. %(150 more%)\n}$", s)
      for line in s:gmatch("[^\n]+") do assert.truthy(#line <= pretty.width) end
    end)

    it("summarises a layer or model: class, name, built, weight shapes, parameter count", function()
      local klua = require("klua")
      local Fake = require("klua.class")("FakeDense")
      function Fake:count_params() return 15 end
      local layer = setmetatable({ name = "fake_1", built = true,
        weights = { klua.Variable(klua.zeros { 4, 3 }, { name = "kernel" }),
                    klua.Variable(klua.zeros { 3 }, { name = "bias" }) } }, Fake)
      assert.are.equal("<FakeDense name=fake_1, built=true, params=15>\n  kernel (4,3)\n  bias   (3,)",
        pretty.format(layer))
      assert.are.equal("{<FakeDense fake_1>}", pretty.format({ layer }))
    end)

    it("shows tensors with their own tostring, and briefly inside tables", function()
      local klua = require("klua")
      local x = klua.ones { 2, 3 }
      assert.are.equal(tostring(x), pretty.format(x))
      assert.are.equal("{w = <tensor (2,3)>}", pretty.format({ w = x }))
    end)

    it("colours only when asked", function()
      assert.are.equal("\27[36m1\27[0m", pretty.format(1, { color = true }))
      assert.are.equal("1", pretty.format(1))
    end)
  end)

  describe("doc", function()
    it("registers a doc string and finds it for the value, its name and its instances", function()
      local Thing = require("klua.class")("ThingForDocSpec")
      doc.register(Thing, { name = "spec.Thing", signature = "spec.Thing(size)", text = "A thing for the spec." })
      local text = doc.describe(Thing)
      assert.matches("^spec%.Thing%(size%)\n\n  A thing for the spec%.", text)
      assert.are.equal(doc.get(Thing), doc.get(Thing()))
      assert.are.equal(doc.get(Thing), doc.get("spec.Thing"))
    end)

    it("rejects a doc entry without text, naming what it got", function()
      local ok, err = pcall(doc.register, print, { signature = "print(...)" })
      assert.is_false(ok)
      assert.matches("doc%.register: expected {signature=%.%.%., text=%.%.%.}", err)
    end)

    it("resolves dotted names through the globals", function()
      assert.are.equal(string.format, (doc.resolve("string.format")))
      assert.is_false(select(2, doc.resolve("string.nothing_here")))
      assert.is_false(select(2, doc.resolve("not a name")))
    end)

    it("reads an LDoc comment above a function when nothing was registered", function()
      local path = os.tmpname()
      finally(function() os.remove(path) end)
      helpers.write_file(path, "-- not a doc comment\n\n--- halve(x): x divided by two.\n-- Works on numbers.\nreturn function(x) return x / 2 end\n")
      local halve = dofile(path)
      assert.are.equal("pkg.halve(x)\n\n  x divided by two.\n  Works on numbers.", doc.describe(halve, { name = "pkg.halve" }))
    end)

    it("describes an undocumented function by its parameters and place", function()
      local function scale(x, factor) return x * factor end
      assert.matches("scale%(x, factor%)\n  defined at .*repl_spec%.lua:%d+", doc.describe(scale, { name = "scale" }))
    end)
  end)
end)
