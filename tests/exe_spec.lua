-- exe_spec.lua — the `klua` executable's command line: scripts and their
-- `arg` table, -e, -l, -v, -h, standard input as a script, error exits, and
-- finding the Lua library from any directory and from an installed layout.
local helpers = require("helpers")
local shell_quote, tmpdir, remove_tree = helpers.shell_quote, helpers.tmpdir, helpers.remove_tree
local write_file, read_file = helpers.write_file, helpers.read_file

local EXE = helpers.EXE
local ROOT = io.popen("pwd"):read("*l")
local ABS_EXE = EXE:sub(1, 1) == "/" and EXE or (ROOT .. "/" .. EXE)

-- klua(args_string, {stdin=, cwd=, env=}) -> stdout, stderr, exit code.
-- LUA_PATH / LUA_INIT are unset so nothing but the executable finds the library.
local function klua(args, opts)
  opts = opts or {}
  local dir = tmpdir()
  local cmd = ""
  if opts.cwd then cmd = "cd " .. shell_quote(opts.cwd) .. " && " end
  cmd = cmd .. "env -u LUA_PATH -u LUA_CPATH -u LUA_INIT"
  for k, v in pairs(opts.env or {}) do cmd = cmd .. " " .. k .. "=" .. shell_quote(v) end
  cmd = cmd .. " " .. shell_quote(opts.exe or ABS_EXE) .. " " .. args
  if opts.stdin then
    write_file(dir .. "/stdin", opts.stdin)
    cmd = cmd .. " < " .. shell_quote(dir .. "/stdin")
  else
    cmd = cmd .. " < /dev/null"
  end
  cmd = "(" .. cmd .. ") > " .. shell_quote(dir .. "/out") .. " 2> " .. shell_quote(dir .. "/err")
  local r = os.execute(cmd)
  local code = type(r) == "number" and math.floor(r / 256) or (r and 0 or 1)
  local out, err = read_file(dir .. "/out"), read_file(dir .. "/err")
  remove_tree(dir)
  return out, err, code
end

describe("the klua executable", function()
  local dir
  setup(function() dir = tmpdir() end)
  teardown(function() remove_tree(dir) end)

  it("runs a script with its arguments in `arg` and `...`, as lua and luajit do", function()
    write_file(dir .. "/args.lua", [[
      print(arg[0], arg[1], arg[2], #arg, select("#", ...), ...)
      print(arg[-1] == ]] .. ("%q"):format(ABS_EXE) .. [[, arg[-2])
    ]])
    local out, err, code = klua(shell_quote(dir .. "/args.lua") .. " one 'two words'")
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal(dir .. "/args.lua\tone\ttwo words\t2\t2\tone\ttwo words\ntrue\tnil\n", out)
  end)

  it("puts the interpreter's options at negative indices of `arg`", function()
    write_file(dir .. "/neg.lua", "print(arg[-3] ~= nil, arg[-2], arg[-1], arg[0], arg[1])\n")
    local out, _, code = klua("-e 'x = 1' " .. shell_quote(dir .. "/neg.lua") .. " a")
    assert.are.equal(0, code)
    assert.are.equal("true\t-e\tx = 1\t" .. dir .. "/neg.lua\ta\n", out)
  end)

  it("runs -e code, and several -e and -l in order before the script", function()
    local out, _, code = klua([[-e 'print(6 * 7)']])
    assert.are.equal("42\n", out)
    assert.are.equal(0, code)
    out = klua([[-e 'a = 1' -e 'print(a + 1)' -l klua -e 'print(type(klua.ones))']])
    assert.are.equal("2\nfunction\n", out)
    out = klua([[-e'print("glued")']])
    assert.are.equal("glued\n", out)
  end)

  it("prints the version from kl_version() with -v", function()
    local out, _, code = klua("-v")
    assert.are.equal(0, code)
    assert.matches("^klua %d+%.%d+[%w%.%-]* %(LuaJIT [^)]+%)\n$", out)
    local v = klua([[-e 'print(require("ffi").string(require("klua.core").C.kl_version()))']])
    local version = v:match("([%d%.]+[%w%.%-]*)\n$")
    assert.truthy(version)
    assert.truthy(out:find(version, 1, true))
  end)

  it("prints usage with -h and rejects an unknown option with exit code 1", function()
    local out, _, code = klua("-h")
    assert.are.equal(0, code)
    assert.matches("^usage: klua %[options%] %[script %[args%.%.%.%]%]", out)
    assert.matches("%-e code", out)
    local _, err
    _, err, code = klua("--frobnicate")
    assert.are.equal(1, code)
    assert.matches("unrecognized option '%-%-frobnicate'", err)
    _, err, code = klua("-e")
    assert.are.equal(1, code)
    assert.matches("'%-e' needs an argument", err)
  end)

  it("runs standard input as a script when it is not a terminal", function()
    local out, _, code = klua("", { stdin = "print(1 + 1)\n" })
    assert.are.equal("2\n", out)
    assert.are.equal(0, code)
    out = klua("- x y", { stdin = "print(arg[0], ...)\n" })
    assert.are.equal("-\tx\ty\n", out)
  end)

  it("prints an error and its traceback to stderr and exits 1", function()
    write_file(dir .. "/boom.lua", "local function f()\n  error('boom')\nend\nf()\n")
    local out, err, code = klua(shell_quote(dir .. "/boom.lua"))
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("^klua: [^\n]*boom%.lua:2: boom\nstack traceback:\n", err)
    assert.matches("boom%.lua:4: in main chunk", err)
    _, err, code = klua("-e 'error({})'")
    assert.are.equal(1, code)
    assert.matches("%(error object is a table value%)", err)
    _, err, code = klua(shell_quote(dir .. "/missing.lua"))
    assert.are.equal(1, code)
    assert.matches("cannot open .*missing%.lua", err)
    _, err, code = klua("-e 'x = = 1'")
    assert.are.equal(1, code)
    assert.matches("unexpected symbol", err)
  end)

  it("finds the klua library from another directory with no LUA_PATH", function()
    write_file(dir .. "/use.lua", [[
      local klua = require("klua")
      print(KLUA_EMBEDDED, klua.ones{2, 3}:sum():item())
    ]])
    local out, err, code = klua("use.lua", { cwd = dir })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("true\t6\n", out)
  end)

  it("finds the library in an installed layout: bin/klua, lib/libklua.so.0, share/lua/5.1/", function()
    local prefix = tmpdir()
    finally(function() remove_tree(prefix) end)
    local build = ABS_EXE:match("^(.*)/[^/]*$")
    assert.are.equal(0, os.execute(("mkdir -p %s/bin %s/lib %s/share/lua/5.1 && cp %s %s/bin/ && cp -P %s/libklua.so* %s/lib/ && cp -r %s/lua/klua %s/share/lua/5.1/")
      :format(prefix, prefix, prefix, shell_quote(ABS_EXE), prefix, shell_quote(build), prefix, shell_quote(ROOT), prefix)))
    local out, err, code = klua([[-e 'print(package.searchpath("klua", package.path), require("klua").ones{2}:sum():item())']],
      { exe = prefix .. "/bin/klua", cwd = "/" })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal(prefix .. "/share/lua/5.1/klua/init.lua\t2\n", out)
  end)

  it("stops a script on Ctrl-C with \"interrupted!\" and a traceback, exit code 1", function()
    local out, err, code = klua([[-e 'jit.off() print("started") io.stdout:flush() while true do end' & ]]
      .. [[sleep 0.3; kill -INT $!; wait $!]])
    assert.are.equal("started\n", out)
    assert.are.equal(1, code)
    assert.matches("^klua: [^\n]*interrupted!\nstack traceback:", err)
  end)

  it("ends a script on the second Ctrl-C when a JIT-compiled loop ignores the first", function()
    local _, _, code = klua([[-e 'while true do end' & sleep 0.3; kill -INT $!; sleep 0.2; kill -INT $!; wait $!]])
    assert.are.equal(128 + 2, code)
  end)

  it("answers `-i` with piped input as a prompt-driven session", function()
    local out, _, code = klua("-i", { stdin = "x = 6\nx * 7\n" })
    assert.are.equal(0, code)
    assert.matches("42\n", out)
  end)
end)
