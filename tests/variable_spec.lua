-- variable_spec.lua — klua.Variable keeps its metadata with itself: name,
-- path, regularizer and constraint are read from the Variable, and nothing is
-- left behind when it is collected (long loops that make Variables stay flat).
local klua = require("klua")

describe("A Variable", function()
  it("carries its name, path, constraint and regularizer", function()
    local c = klua.constraints.NonNeg()
    local v = klua.Variable(klua.ones{ 2 }, { name = "w", path = "dense/w", constraint = c })
    assert.are.equal("w", v.name)
    assert.are.equal("dense/w", v.path)
    assert.are.equal(c, v.constraint)
    assert.is_nil(v.regularizer)
    v.name = "renamed"
    assert.are.equal("renamed", v.name)
    assert.matches("Variable 'renamed'", tostring(v))
  end)

  it("made by add_weight has the layer's path and the weight's constraint", function()
    local d = klua.layers.Dense{ units = 2, kernel_constraint = "non_neg", name = "dense_for_variable_spec" }
    d:build{ 1, 3 }
    assert.are.equal("dense_for_variable_spec/kernel", d.kernel.path)
    assert.are.equal("NonNeg", d.kernel.constraint:class_name())
  end)

  it("leaves the Lua heap flat after 200,000 throwaway Variables", function()
    local function make(n)
      for i = 1, n do klua.Variable(klua.zeros{ 1 }, { name = "tmp" .. i }) end
    end
    -- the first 200,000 may grow the metadata table's capacity (how far depends on when
    -- Lua's own pacing collects, which follows the whole run's heap): flat means the
    -- next 200,000 add nothing more
    make(200000)
    collectgarbage(); collectgarbage()
    local before = collectgarbage("count")
    make(200000)
    collectgarbage(); collectgarbage()
    local grown_kb = collectgarbage("count") - before
    assert.is_true(grown_kb < 2048, ("the Lua heap grew by %.0f KB"):format(grown_kb))
  end)
end)
