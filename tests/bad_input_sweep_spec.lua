-- bad_input_sweep_spec.lua — every public function, called with arguments of
-- the wrong kind, returns or raises a checked error (issue 14, defect 7).
--
-- tests/sweep/run.lua walks the module tables (klua.*, klua.ops and the
-- tensor methods, klua.random, the layer classes of klua.layers.files and
-- their calls with wrong inputs, losses, metrics, optimizers and schedules,
-- initializers, regularizers, constraints, activations, callbacks, models and
-- the training API, klua.data, klua.image, klua.saving, klua.utils), so a new
-- function is swept without a line here, and calls each with every argument
-- in turn replaced by nil, booleans, -3, 2.5, NaN, inf, 2^40, a string, a
-- function, a Layer, another object, a file handle, a cdata array, tensors,
-- {}, a rank-9 shape, {-2, 3}, {2^40}, {NaN, 2}, nested tables, strings in a
-- list and a keyword table. It runs in a child process, so that a crash
-- (segfault, abort) fails this spec with the call that caused it instead of
-- ending the test run. A call passes when it returns, or raises a string that
-- carries no position inside the library (no "lua/klua/ops.lua:57: attempt to
-- index ...") and names the function, its class or an alias.
local helpers = require("helpers")

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  local p = io.popen("pwd")
  local cwd = p:read("*l")
  p:close()
  return cwd .. "/" .. path
end

-- Findings that are listed as pending instead of failing (none today: every
-- public module is held to the same rule).
local PENDING = {}
-- Calls that do what they were asked, for as long as asked: not failures when they time out.
local LONG = {
  ["models.Functional:fit\tepochs = 2^40"] = "2^40 epochs is a valid request",
  ["optimizers.Muon:zeropower_via_newtonschulz5\targument 2 (steps) = 2^40"] = "2^40 Newton-Schulz steps, as asked",
}

local function pending_owner(target)
  for _, p in ipairs(PENDING) do
    if target:find(p[1]) then return p[2] end
  end
  return nil
end

-- Runs the sweep: the report as {counts = {}, failures = {kind=, target=, label=, message=}}, and the
-- child's exit status, log and last call in flight.
local function run_sweep()
  local dir = helpers.tmpdir()
  local report, progress, log = dir .. "/report.txt", dir .. "/progress.txt", dir .. "/log.txt"
  local exe = absolute(helpers.EXE)
  local script = absolute("tests/sweep/run.lua")
  -- ulimit: a call that allocates what it was asked for (2^40 elements) must fail, not swap (not under
  -- AddressSanitizer, whose shadow memory needs the address space; there a huge request returns NULL to
  -- klua, which reports it, instead of aborting)
  local cmd = ("cd %s && { [ -n \"$ASAN_OPTIONS\" ] || ulimit -v 16000000; } && "
    .. "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}allocator_may_return_null=1\" "
    .. "KLUA_BUILD=%s OMP_NUM_THREADS=1 KLUA_SWEEP_TMP=%s timeout 120 %s %s %s %s > %s 2>&1")
    :format(helpers.shell_quote(dir), helpers.shell_quote(absolute(os.getenv("KLUA_BUILD") or "build")),
      helpers.shell_quote(dir), helpers.shell_quote(exe), helpers.shell_quote(script), helpers.shell_quote(report),
      helpers.shell_quote(progress), helpers.shell_quote(log))
  local _, code = helpers.shell(cmd)
  local result = { code = code, counts = {}, failures = {}, done = false }
  if helpers.exists(progress) then
    local last
    for line in io.lines(progress) do last = line end
    result.last_call = last
  end
  if helpers.exists(log) then result.log = helpers.read_file(log):sub(-2000) end
  if helpers.exists(report) then
    for line in io.lines(report) do
      local k, n = line:match("^(%a[%w_]*) ([%d.]+)$")
      if k then result.counts[k] = tonumber(n)
      elseif line == "DONE" then result.done = true
      else
        local kind, target, label, message = line:match("^([^\t]+)\t([^\t]+)\t([^\t]*)\t?(.*)$")
        if kind then
          result.failures[#result.failures + 1] = { kind = kind, target = target, label = label, message = message }
        end
      end
    end
  end
  helpers.remove_tree(dir)
  return result
end

describe("the bad-input sweep", function()
  local r
  local mine, others = {}, {}     -- failures by kind, outside / inside the pending modules
  local broken = {}               -- classes whose sample instance could not be made (swept only in part)
  setup(function()
    r = run_sweep()
    for _, f in ipairs(r.failures) do
      local owner = pending_owner(f.target)
      local long = f.kind == "timeout" and LONG[f.target .. "\t" .. f.label]
      if f.kind == "slowest" or long then   -- timings; calls that run as long as asked
      elseif f.kind == "sample" then broken[#broken + 1] = f.target .. " " .. f.label
      elseif owner then others[#others + 1] = f
      else mine[#mine + 1] = f end
    end
    local c = r.counts
    local by_owner = {}
    for _, f in ipairs(others) do
      local owner = pending_owner(f.target)
      by_owner[owner] = by_owner[owner] or {}
      by_owner[owner][f.kind] = (by_owner[owner][f.kind] or 0) + 1
    end
    local pend = {}
    for _, p in ipairs(PENDING) do
      local k = by_owner[p[2]]
      if k then
        local parts = {}
        for kind, n in pairs(k) do parts[#parts + 1] = kind .. " " .. n end
        table.sort(parts)
        pend[#pend + 1] = p[2] .. ": " .. table.concat(parts, ", ")
      end
    end
    io.stderr:write(("\nbad-input sweep: %s functions, %s calls, %s returned, %s checked errors; raw VM errors %s, "
      .. "errors not naming the function %s, objects taken as data %s, timeouts %s (%.1f s in the child)%s\n")
      :format(c.functions or "?", c.calls or "?", c.ok or "?", c.checked or "?", c.raw or "?", c.unnamed or "?",
        c.accepted or "?", c.timeouts or "?", c.seconds or 0,
        #pend > 0 and ("; pending, in modules other work owns: " .. table.concat(pend, "; ")) or ""))
  end)

  local function listing(list, kinds)
    local out = {}
    for _, f in ipairs(list) do
      if kinds[f.kind] and #out < 25 then out[#out + 1] = ("  %s with %s: %s"):format(f.target, f.label, f.message) end
    end
    return table.concat(out, "\n")
  end
  local function count(list, kinds)
    local n = 0
    for _, f in ipairs(list) do if kinds[f.kind] then n = n + 1 end end
    return n
  end

  it("calls every public function to the end in a child process, without a crash", function()
    assert(r.done and r.code == 0, ("the sweep did not finish (exit status %s; a crash or a hang in C) during: %s\n%s")
      :format(tostring(r.code), tostring(r.last_call), tostring(r.log)))
    assert.are.equal("", table.concat(broken, "\n"), "classes the sweep could not instantiate (add a sample in tests/sweep/run.lua)")
    assert.is_true(r.counts.functions >= 800, "fewer functions than expected: " .. tostring(r.counts.functions))
    assert.is_true(r.counts.calls >= 40000, "fewer calls than expected: " .. tostring(r.counts.calls))
  end)

  it("raises no raw Lua error from inside the library", function()
    local kinds = { raw = true, not_string = true }
    assert(count(mine, kinds) == 0, ("%d calls ended in a raw Lua error:\n%s"):format(count(mine, kinds), listing(mine, kinds)))
  end)

  it("names the function, its class or an alias in every error", function()
    local kinds = { unnamed = true }
    assert(count(mine, kinds) == 0, ("%d errors do not name the function:\n%s"):format(count(mine, kinds), listing(mine, kinds)))
  end)

  it("refuses a Layer or another object where a tensor, a list or a shape is expected", function()
    local kinds = { accepted = true }
    assert(count(mine, kinds) == 0, ("%d calls took an object as data:\n%s"):format(count(mine, kinds), listing(mine, kinds)))
  end)

  it("finishes every call within its time (a huge size fails fast instead of running)", function()
    local kinds = { timeout = true }
    assert(count(mine, kinds) == 0, ("%d calls ran too long:\n%s"):format(count(mine, kinds), listing(mine, kinds)))
  end)

  it("says, Keras-style, which function, which argument and what it got", function()
    local klua = require("klua")
    local L, ops = klua.layers, klua.ops
    local dense = L.Dense { units = 2, name = "dense_x" }
    local cases = {
      { "Dense: units must be a positive integer%. Received: units=%-3", function() return L.Dense { units = -3 } end },
      { "matmul: b must be a tensor, a number or a nested table of numbers, got a Layer %(Dense 'dense_x'%)",
        function() return ops.matmul(klua.ones { 2, 2 }, dense) end },
      { "tensor: expected a number, a nested table or a tensor, got a Layer %(Dense 'dense_x'%)", function() return klua.tensor(dense) end },
      { "zeros: expected a shape table like {2, 3}, got a Layer", function() return klua.zeros(dense) end },
      { "sum: axis must be an integer or a list of integers, got a Layer", function() return ops.sum(klua.ones { 2 }, dense) end },
      { "flatten: x must be a tensor, a number or a nested table of numbers, got a string %(\"abc\"%)", function() return ops.flatten("abc") end },
      { "std: axis 3 is out of range for a tensor of rank 1", function() return ops.std(klua.ones { 2 }, 3) end },
      { "Dense 'dense_x': input 1 must be a tensor, a number, a nested table of numbers or a list of tensors, got a string",
        function() return dense("abc") end },
      { "Dense 'dense_x': expects 1 input tensor, but it received 2", function() return dense { klua.ones { 1, 2 }, klua.ones { 1, 2 } } end },
      { "Conv2D: initializers.get: .*nope", function() return L.Conv2D { filters = 2, kernel_size = 3, kernel_initializer = "nope" } end },
      { "MeanSquaredError: y_pred must be a tensor, a number or a nested table of numbers, got a Mean object",
        function() return klua.losses.MeanSquaredError()(klua.ones { 2 }, klua.metrics.Mean()) end },
      { "dice: mul: shapes %(2,3%) and %(4,5%) cannot be broadcast together",
        function() return klua.losses.dice(klua.ones { 2, 3 }, klua.ones { 4, 5 }) end },
      { "SGD%.apply_gradients: item 1 is not a Variable %(got a number %(3%)%)",
        function() return klua.optimizers.SGD():apply_gradients { { klua.ones { 2 }, 3 } } end },
      { "fit: batch_size must be a positive integer%. Received: batch_size=0", function()
        local m = klua.Sequential { klua.Input { shape = { 3 } }, L.Dense { units = 1 } }
        m:compile { optimizer = "sgd", loss = "mse" }
        return m:fit { x = klua.ones { 4, 3 }, y = klua.ones { 4, 1 }, batch_size = 0, verbose = 0 }
      end },
      { "load_model: filepath must be a non%-empty string, got a number %(3%)", function() return klua.models.load_model(3) end },
    }
    for _, c in ipairs(cases) do
      local err = helpers.err_of(c[2])
      assert.matches(c[1], err)
      assert.is_nil(err:find("lua/klua/", 1, true), "the error points inside the library: " .. err)
    end
  end)

end)
