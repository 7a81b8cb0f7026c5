-- profiler_spec.lua — klua.profile: time per op (forward and backward) of a
-- piece of Lua, adding up to the time in ops, with fn's results passed on.
local klua = require("klua")
local ops, L = klua.ops, klua.layers
local h = require("helpers")

local function train_step(layer, x, y)
  local tape = klua.GradientTape()
  local loss = tape:record(function() return ops.mean(ops.square(layer(x) - y)) end)
  return tape:gradient(loss, layer.trainable_weights), loss
end

describe("klua.profile", function()
  it("counts each op's forward and backward calls and returns fn's results", function()
    local layer = L.Dense { units = 4, activation = "relu" }
    local x, y = klua.random.normal { 8, 3 }, klua.random.normal { 8, 4 }
    local p, grads, loss = klua.profile(function() return train_step(layer, x, y) end)
    assert.are.equal(2, #grads)
    assert.is_true(klua.is_tensor(loss))
    local calls = {}
    for _, r in ipairs(p.rows) do calls[r.op .. " " .. r.phase] = r.calls end
    assert.are.equal(1, calls["linear forward"])
    assert.are.equal(1, calls["linear backward"])
    assert.are.equal(1, calls["square forward"])
    assert.are.equal(1, calls["square backward"])
  end)

  it("gives each op its own time: the rows add up to the time in ops, within the wall time", function()
    local layer = L.Dense { units = 64 }
    local x, y = klua.random.normal { 256, 128 }, klua.random.normal { 256, 64 }
    local p = klua.profile(function() for _ = 1, 5 do train_step(layer, x, y) end end)
    local sum = 0
    for i, r in ipairs(p.rows) do
      assert.is_true(r.seconds >= 0, r.op)
      if i > 1 then assert.is_true(p.rows[i - 1].seconds >= r.seconds, "rows are sorted, costliest first") end
      sum = sum + r.seconds
    end
    assert.is_true(math.abs(sum - p.ops) < 1e-9)
    assert.is_true(p.ops > 0 and p.ops <= p.total)
    assert.is_true(p.gc >= 0 and p.collections >= 0)
    local text = p:report(3)
    assert.matches("^op%s+phase", text)
    assert.matches("wall time", text)
    local _, lines = text:gsub("\n", "")
    assert.are.equal(1 + 3 + (#p.rows > 3 and 1 or 0) + 4, lines + 1)   -- header, 3 rows, "(n more)", 4 totals
  end)

  it("turns itself off when fn fails, and passes the error on", function()
    local err = h.err_of(klua.profile, function() ops.add(klua.ones { 2 }, klua.ones { 3 }) end)
    assert.matches("add", err)
    local p = klua.profile(function() end)
    assert.are.equal(0, #p.rows)
  end)

  it("refuses a non-function and nested profiles", function()
    h.raises("profile: expected a function. Received: 3", klua.profile, 3)
    local err = h.err_of(klua.profile, function() klua.profile(function() end) end)
    assert.matches("profiles do not nest", err)
  end)
end)
