-- helpers.lua — what several specs share: error capture, closeness checks on
-- numbers, nested tables and tensors, temporary files and directories, and
-- running the klua executable. `local helpers = require("helpers")` (.busted
-- puts tests/ on the path, as for fixtures). It requires nothing of klua, so
-- the specs of the executable can use it too.
local assert = require("luassert")

local M = {}

--- EXE: the klua executable under test ($KLUA_EXE, else $KLUA_BUILD/klua).
M.EXE = os.getenv("KLUA_EXE") or ((os.getenv("KLUA_BUILD") or "build") .. "/klua")

--- err_of(fn, ...): the message of the error fn(...) raises; fails if it raises none.
function M.err_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

--- raises(pattern, fn, ...): fn(...) raises an error whose message matches pattern; returns the error.
function M.raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error matching " .. pattern)
  assert.matches(pattern, tostring(err))
  return err
end

-- The allowed difference at expected value e: tol * (1 + |e|) for a number
-- tol, atol + rtol * |e| for {rtol=, atol=}.
local function bound(tol, e)
  if type(tol) == "table" then return tol.atol + tol.rtol * math.abs(e) end
  return tol * (1 + math.abs(e))
end

--- near(actual, expected, tol=1e-5, what="value"): numbers, nested tables or
-- tensors of the same shape, each element within tol (see bound) of expected;
-- NaN never is.
function M.near(actual, expected, tol, what)
  tol = tol or 1e-5
  what = what or "value"
  if type(actual) == "cdata" then actual = actual:totable() end
  if type(expected) == "cdata" then expected = expected:totable() end
  if type(expected) == "table" then
    assert.are.equal(#expected, #actual, "length at " .. what)
    for i = 1, #expected do M.near(actual[i], expected[i], tol, what .. "[" .. i .. "]") end
  else
    assert(math.abs(actual - expected) <= bound(tol, expected),
      ("%s: got %.9g, expected %.9g"):format(what, actual, expected))
  end
end

--- values(t): a tensor as Lua values: a number for a scalar, else a flat list.
function M.values(t) return t.nd == 0 and t:item() or t:tolist() end

--- max_abs_diff(a, b): the largest |a - b| over two tensors, as a number.
function M.max_abs_diff(a, b) return (a - b):abs():max():item() end

--- with_weights(layer, input_shape, weights): layer built for input_shape with the given weights.
function M.with_weights(layer, input_shape, weights)
  layer:build(input_shape)
  layer:set_weights(weights)
  return layer
end

--- literal(s): a Lua pattern that matches s and nothing else.
function M.literal(s) return (s:gsub("%p", "%%%0")) end

--- shell_quote(s): s as one word for /bin/sh.
function M.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- tmpdir(): a new empty directory (remove it with remove_tree).
function M.tmpdir()
  local d = os.tmpname()
  os.remove(d)
  os.execute("mkdir -p " .. M.shell_quote(d))
  return d
end

--- remove_tree(path): deletes a file or directory and everything in it.
function M.remove_tree(path) os.execute("rm -rf " .. M.shell_quote(path)) end

--- listing(dir): the names in dir, sorted, without "." and "..".
function M.listing(dir)
  local out = {}
  local p = io.popen("ls -a " .. M.shell_quote(dir))
  for l in p:lines() do if l ~= "." and l ~= ".." then out[#out + 1] = l end end
  p:close()
  table.sort(out)
  return out
end

--- exists(path): can path be opened for reading?
function M.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

--- read_file(path): the file's bytes; raises if it cannot be opened.
function M.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

--- write_file(path, bytes): creates or replaces the file.
function M.write_file(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

--- shell(cmd): cmd's standard output and error together, and its exit status.
function M.shell(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"exit=$?\""))
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return (out:gsub("exit=%d+%s*$", "")), code
end

--- run_klua(args): shell(EXE .. " " .. args): output and exit status of a klua run.
function M.run_klua(args) return M.shell(M.EXE .. " " .. args) end

--- lua_modules(): {{path=, name=}} for every file under lua/klua, sorted;
-- lua/klua/optimizers/optimizer.lua is klua.optimizers.optimizer and an
-- init.lua names its directory (lua/klua/datasets/init.lua -> klua.datasets).
function M.lua_modules()
  local p = assert(io.popen("find lua/klua -name '*.lua' | sort"))
  local out = {}
  for path in p:lines() do
    out[#out + 1] = { path = path, name = (path:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")) }
  end
  p:close()
  return out
end

--- collect_all(): everything unreachable collected before counting live tensors: the JIT's
-- traces are flushed first (a trace can hold an object it was recorded on as a constant,
-- keeping it alive for as long as the trace lives), then two full collections (what a
-- finalized object held goes one cycle later).
function M.collect_all()
  jit.flush()
  collectgarbage(); collectgarbage()
end

--- leaves_no_tensors(step, n): step() once to warm up, then n times; no live C tensor is left over.
function M.leaves_no_tensors(step, n)
  local C = require("klua").core.C
  step()
  M.collect_all()
  local before = tonumber(C.kl_mem_tensor_count())
  for _ = 1, n do step() end
  M.collect_all()
  assert.are.equal(before, tonumber(C.kl_mem_tensor_count()))
end

return M
