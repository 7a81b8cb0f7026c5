-- steady_state_spec.lua — a training step reuses memory: once the reuse pool
-- has warmed up, steps make no new storage allocations (the core's counter of
-- allocations that reached malloc stays put), and live tensors do not grow.
local klua = require("klua")
local L = klua.layers
local helpers = require("helpers")

describe("a steady-state training step", function()
  it("allocates no new storage and leaks no tensors", function()
    klua.random.seed(5)
    local model = { L.Dense { units = 32, activation = "relu" }, L.Dense { units = 10 } }
    local loss_fn = klua.losses.SparseCategoricalCrossentropy { from_logits = true }
    local opt = klua.optimizers.Adam { learning_rate = 1e-3 }
    local x = klua.random.normal { 64, 20 }
    local y = klua.random.permutation_tensor(64) % 10
    local vars
    local function step()
      local tape = klua.GradientTape()
      local loss = tape:record(function()
        local h = x
        for _, layer in ipairs(model) do h = layer(h) end
        return loss_fn(y, h)
      end)
      if not vars then
        vars = {}
        for _, layer in ipairs(model) do for _, v in ipairs(layer.trainable_weights) do vars[#vars + 1] = v end end
      end
      opt:apply_gradients(tape:gradient(loss, vars), vars)
    end
    -- A collection at least every 50 steps, as the tensor-memory budget gives
    -- a real loop: when the collections come is then not left to Lua's own
    -- pacing (which follows the whole process's heap, so a long test run could
    -- stretch one cycle over more steps than the warm-up ever saw). Warm up
    -- over several of them, so the pool holds one cycle's worth of steps.
    local function steps(n)
      for i = 1, n do
        step()
        if i % 50 == 0 then collectgarbage() end
      end
    end
    steps(600)
    helpers.collect_all()
    local before = klua.memory()
    steps(300)
    helpers.collect_all()
    local after = klua.memory()
    assert.are.equal(before.allocations, after.allocations)
    assert.are.equal(before.tensors, after.tensors)
    assert.are.equal(before.live_bytes, after.live_bytes)
  end)
end)
