-- autodiff_spec.lua — GradientTape and Variables, including the first example
-- of the reference notes (a dense layer trained by hand on raw ops).
local klua = require("klua")
local ops = klua.ops

describe("GradientTape", function()
  it("differentiates through recorded ops (explicit and closure forms)", function()
    local x = klua.tensor { 1, 2, 3 }
    local tape = klua.GradientTape()
    tape:start(); tape:watch(x)
    local y = ops.sum(x * x)
    tape:stop()
    assert.are.same({ 2, 4, 6 }, tape:gradient(y, x):tolist())

    local tape2 = klua.GradientTape()
    local v = klua.Variable(klua.tensor { 1, 2 })
    local loss = tape2:record(function() return ops.sum(v ^ 3) end)
    assert.are.same({ 3, 12 }, tape2:gradient(loss, { v })[1]:tolist())
  end)

  it("watches trainable variables automatically, not frozen ones or plain tensors", function()
    local w = klua.Variable(klua.ones { 2 })
    local frozen = klua.Variable(klua.ones { 2 }, { trainable = false })
    local plain = klua.ones { 2 }
    local tape = klua.GradientTape()
    local y = tape:record(function() return ops.sum(w * frozen * plain) end)
    local g = tape:gradient(y, { w, frozen, plain })
    assert.are.same({ 1, 1 }, g[1]:tolist())
    assert.is_nil(g[2])
    assert.is_nil(g[3])
    assert.are.equal(3, g.n)
  end)

  it("gives nil for a source the target does not depend on", function()
    local a, b = klua.Variable(klua.ones { 2 }), klua.Variable(klua.ones { 2 })
    local tape = klua.GradientTape()
    local y = tape:record(function() return ops.sum(a * 2) end)
    local g = tape:gradient(y, { a, b })
    assert.are.same({ 2, 2 }, g[1]:tolist())
    assert.is_nil(g[2])
  end)

  it("refuses a second gradient unless persistent", function()
    local v = klua.Variable(klua.tensor { 3 })
    local tape = klua.GradientTape()
    local y = tape:record(function() return v * v end)
    tape:gradient(y, v)
    local ok, err = pcall(tape.gradient, tape, y, v)
    assert.is_false(ok)
    assert.matches("persistent", err)
    local p = klua.GradientTape { persistent = true }
    local y1, y2 = p:record(function() return v * v, v * 3 end)
    assert.are.same({ 6 }, p:gradient(y1, v):tolist())
    assert.are.same({ 3 }, p:gradient(y2, v):tolist())
  end)

  it("stops gradients with ops.stop_gradient", function()
    local v = klua.Variable(klua.tensor { 2 })
    local tape = klua.GradientTape()
    local y = tape:record(function() return v * ops.stop_gradient(v) end)
    assert.are.same({ 2 }, tape:gradient(y, v):tolist())
  end)

  it("computes second derivatives with nested tapes", function()
    local x = klua.Variable(klua.tensor { 3 })
    local outer, inner = klua.GradientTape(), klua.GradientTape()
    outer:start(); inner:start()
    local y = x * x * x
    inner:stop()
    local dy = inner:gradient(y, x)        -- 3x^2, recorded on the outer tape
    outer:stop()
    assert.are.same({ 27 }, dy:tolist())
    assert.are.same({ 18 }, outer:gradient(dy, x):tolist()) -- 6x
  end)

  it("sums gradients of a tensor used twice and through broadcasting", function()
    local b = klua.Variable(klua.tensor { 1, 1, 1 })
    local x = klua.ones { 4, 3 }
    local tape = klua.GradientTape()
    local y = tape:record(function() return ops.sum((x + b) * b) end)
    -- d/db sum((x+b)b) = sum over rows of (x + 2b) = 4 * 3
    assert.are.same({ 12, 12, 12 }, tape:gradient(y, b):tolist())
  end)
end)

describe("Variables", function()
  it("update in place and keep their identity on the tape", function()
    local v = klua.Variable(klua.tensor { 1, 2 }, { name = "v" })
    assert.are.equal("v", v.name)
    v:assign(klua.tensor { 5, 6 })
    v:assign_add(klua.tensor { 1, 1 })
    v:assign_sub(1)
    assert.are.same({ 5, 6 }, v:tolist())
    local ok, err = pcall(function() v:assign(klua.ones { 3 }) end)
    assert.is_false(ok)
    assert.matches("does not fit a variable of shape %(2,%)", err)
    local t = klua.ones { 2 }
    assert.is_false(pcall(function() t:assign(1) end))
  end)
end)

describe("the reference dense example on raw ops", function()
  it("trains w and b with MSE and hand-written SGD; the loss falls and gradients match finite differences", function()
    klua.random.seed(0)
    local X = klua.random.uniform { 100, 10 }
    local y = klua.random.uniform { 100, 1 }
    local w = klua.Variable(klua.random.normal({ 10, 1 }), { name = "w" })
    local b = klua.Variable(klua.zeros { 1 }, { name = "b" })
    local function loss_fn() return ops.mean(ops.square(ops.matmul(X, w) + b - y)) end
    local first, last
    for step = 1, 100 do
      local tape = klua.GradientTape()
      local loss = tape:record(loss_fn)
      local gw, gb = unpack(tape:gradient(loss, { w, b }))
      if step == 1 then
        -- finite differences on a few weights
        for _, j in ipairs { 1, 5, 10 } do
          local orig = w:get(j, 1)
          w:set(j, 1, orig + 1e-2); local lp = loss_fn():item()
          w:set(j, 1, orig - 1e-2); local lm = loss_fn():item()
          w:set(j, 1, orig)
          local numeric = (lp - lm) / 2e-2
          assert(math.abs(numeric - gw:get(j, 1)) < 1e-3 + 1e-2 * math.abs(numeric), "gradient mismatch at " .. j)
        end
        first = loss:item()
      end
      w:assign_sub(gw * 0.1)
      b:assign_sub(gb * 0.1)
      last = loss:item()
    end
    assert(last < first * 0.5, ("loss %g -> %g did not fall"):format(first, last))
  end)
end)

describe("memory", function()
  it("stays flat over 10,000 iterations that make 4 MB temporaries", function()
    local rss_mb = require("klua.utils").rss_mb
    local x = klua.ones { 1024, 1024 } -- 4 MB
    for _ = 1, 200 do local _ = x * 2 end
    local before = rss_mb()
    for _ = 1, 10000 do local _ = x * 2 end
    local after = rss_mb()
    assert(after - before < 150, ("resident memory grew by %.0f MB"):format(after - before))
    assert(klua.memory().live_bytes < 200 * 2 ^ 20)
  end)
end)
