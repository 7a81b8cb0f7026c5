-- no_grad_spec.lua — klua.no_grad is the one scope that pauses gradient
-- recording, and it always resumes: an error raised anywhere inside it (or
-- inside any library code that uses it) never leaves tapes returning nil.
local klua = require("klua")
local ops = klua.ops

-- A fresh tape still records and returns a gradient.
local function assert_tapes_work()
  local v = klua.Variable(klua.tensor{ 1, 2, 3 })
  local tape = klua.GradientTape()
  local y = tape:record(function() return ops.sum(v * v) end)
  local g = tape:gradient(y, v)
  assert.is_not_nil(g, "a new GradientTape returned no gradient: recording was left paused")
  assert.are.same({ 2, 4, 6 }, g:tolist())
end

describe("klua.no_grad", function()
  it("runs the function without recording and returns its results", function()
    local v = klua.Variable(klua.tensor{ 1, 2 })
    local tape = klua.GradientTape()
    local a, b
    local y = tape:record(function()
      a, b = klua.no_grad(function(x) return ops.sum(x * 3), "second" end, v)
      return a
    end)
    assert.are.equal(9, a:item())
    assert.are.equal("second", b)
    assert.is_nil(tape:gradient(y, v))
    assert_tapes_work()
  end)

  it("resumes recording when the function raises, and passes the error on", function()
    local ok, err = pcall(klua.no_grad, function() error("boom in no_grad") end)
    assert.is_false(ok)
    assert.matches("boom in no_grad", err)
    assert_tapes_work()
  end)

  it("nests, and GradientTape:stop_recording is the same scope", function()
    local tape = klua.GradientTape()
    local ok = pcall(function()
      tape:stop_recording(function()
        klua.no_grad(function() error("inner") end)
      end)
    end)
    assert.is_false(ok)
    assert_tapes_work()
  end)
end)

describe("An error inside library code that pauses recording", function()
  local Broken = klua.Layer:extend("BrokenConfigForNoGradSpec")
  function Broken:call(x) return x * 2 end
  function Broken:get_config() error("get_config failed on purpose") end

  it("in model:save leaves tapes working", function()
    local m = klua.Sequential{ klua.Input{ shape = { 2 } }, Broken(), klua.layers.Dense{ units = 1 } }
    local path = os.tmpname()
    local ok, err = pcall(m.save, m, path)
    os.remove(path)
    assert.is_false(ok)
    assert.matches("get_config failed on purpose", err)
    assert_tapes_work()
  end)

  it("in compute_output_shape and in a layer call leave tapes working", function()
    local Fails = klua.Layer:extend("FailsForNoGradSpec")
    function Fails:call() error("call failed on purpose") end
    local ok = pcall(function() Fails():compute_output_shape{ -1, 3 } end)
    assert.is_false(ok)
    assert_tapes_work()
  end)

  it("in load_weights of a file that does not match leaves tapes working", function()
    local a = klua.Sequential{ klua.Input{ shape = { 2 } }, klua.layers.Dense{ units = 3 } }
    local b = klua.Sequential{ klua.Input{ shape = { 2 } }, klua.layers.Dense{ units = 4 } }
    local path = os.tmpname() .. ".safetensors"
    a:save_weights(path)
    local ok = pcall(b.load_weights, b, path)
    os.remove(path)
    assert.is_false(ok)
    assert_tapes_work()
  end)

  it("in ops.stop_gradient of a bad argument leaves tapes working", function()
    assert.is_false(pcall(ops.stop_gradient, { "not", "numbers" }))
    assert_tapes_work()
  end)
end)
