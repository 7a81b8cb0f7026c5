-- fit_overhead_spec.lua — what fit's per-step path must keep while it is made
-- cheap (issue 16): the rows a batch holds, shuffled or not, for a plain
-- tensor and for a table of tensors alike, and the logs callbacks and History
-- see. Timing is measured by `make bench`, never asserted here.
local klua = require("klua")
local helpers = require("helpers")
local adapters = require("klua.trainers.data_adapters")
local steps = require("klua.trainers.steps")
local L = klua.layers
local ops = klua.ops

-- n samples: x row i is {i, -i}, y and the sample weight are i (0-based).
local function numbered(n)
  local xs, ys = {}, {}
  for i = 0, n - 1 do xs[i + 1] = { i, -i }; ys[i + 1] = i end
  return klua.tensor(xs), klua.tensor(ys), klua.tensor(ys)
end

local function ids_of(t) return t:tolist() end

describe("fit's batches of plain tensors", function()
  it("a shuffled epoch holds every sample once, its x, y and sample_weight rows kept together", function()
    local x, y, sw = numbered(10)
    local m = klua.Sequential { klua.Input { shape = { 2 } }, L.Dense(1) }
    m:compile { optimizer = "sgd", loss = "mse" }
    local seen, sizes = {}, {}
    rawset(m, "train_step", function(self, data)     -- Keras's customisation point sees each batch
      local bx, by, bw = data[1], data[2], data[3]
      sizes[#sizes + 1] = tonumber(bx.dims[0])
      helpers.near(ids_of(ops.slice_axis(bx, 2, 1, 1):reshape { -1 }), ids_of(by), 0)
      helpers.near(ids_of(-ops.slice_axis(bx, 2, 2, 2):reshape { -1 }), ids_of(by), 0)
      helpers.near(ids_of(bw), ids_of(by), 0)
      for _, id in ipairs(ids_of(by)) do seen[#seen + 1] = id end
      return steps.train_step(self, data)
    end)
    klua.utils.set_random_seed(3)
    m:fit { x = x, y = y, sample_weight = sw, batch_size = 4, epochs = 1, shuffle = true, verbose = 0 }
    assert.are.same({ 4, 4, 2 }, sizes)
    local in_order = true
    for i, id in ipairs(seen) do if id ~= i - 1 then in_order = false end end
    assert.is_false(in_order, "seed 3 shuffles these 10 samples")
    table.sort(seen)
    for i = 1, 10 do assert.are.equal(i - 1, seen[i]) end
  end)

  it("without shuffle, batches are the rows in order and the last one is short", function()
    local x, y = numbered(10)
    local a = adapters.make_adapter("fit", {}, x, y, nil, 4, false)
    local got = {}
    for b in a:epoch() do
      got[#got + 1] = ids_of(b[2])
      assert.is_nil(b[3])
    end
    assert.are.same({ { 0, 1, 2, 3 }, { 4, 5, 6, 7 }, { 8, 9 } }, got)
  end)

  it("a table of tensors gets the same rows as a plain tensor, in the same shuffled order", function()
    local x, y = numbered(10)
    local function epoch_of(xs, ys)
      klua.utils.set_random_seed(11)
      local out = {}
      for b in adapters.make_adapter("fit", {}, xs, ys, nil, 3, true):epoch() do out[#out + 1] = b end
      return out
    end
    local plain = epoch_of(x, y)
    local named = epoch_of({ a = x, b = x * 2 }, { y })
    assert.are.equal(#plain, #named)
    for i = 1, #plain do
      helpers.near(ids_of(named[i][1].a), ids_of(plain[i][1]), 0)
      helpers.near(ids_of(named[i][1].b), ids_of(plain[i][1] * 2), 0)
      helpers.near(ids_of(named[i][2][1]), ids_of(plain[i][2]), 0)
    end
  end)
end)

describe("fit's logs", function()
  local function classifier()
    klua.utils.set_random_seed(5)
    local m = klua.Sequential { klua.Input { shape = { 4 } }, L.Dense(8, { activation = "relu" }), L.Dense(3) }
    m:compile { optimizer = klua.optimizers.SGD { learning_rate = 0 },
      loss = klua.losses.SparseCategoricalCrossentropy { from_logits = true }, metrics = { "accuracy" } }
    return m
  end
  local x = klua.random.normal { 22, 4 }
  local y = ops.floor(klua.random.uniform({ 22 }, { maxval = 3 }))

  it("on_train_batch_end gets the running loss and accuracy as numbers, and History keeps the last batch's", function()
    local m = classifier()
    local batches = {}
    local cb = klua.callbacks.LambdaCallback { on_train_batch_end = function(batch, logs)
      assert.are.equal("number", type(logs.loss))
      assert.are.equal("number", type(logs.accuracy))
      batches[#batches + 1] = { loss = logs.loss, accuracy = logs.accuracy }
    end }
    local h = m:fit { x = x, y = y, batch_size = 8, epochs = 2, verbose = 0, callbacks = { cb } }
    assert.are.equal(6, #batches)                    -- 3 steps an epoch (8, 8, 6 samples)
    assert.are.equal(batches[3].loss, h.history.loss[1])
    assert.are.equal(batches[3].accuracy, h.history.accuracy[1])
    assert.are.equal(batches[6].loss, h.history.loss[2])
    assert.are.equal(batches[6].accuracy, h.history.accuracy[2])
  end)

  -- Keras (backend/torch/trainer.py, train_step): the loss tracker's sample_weight is the first input's batch size.
  it("the epoch's loss and accuracy weigh each batch by its size: with frozen weights they are evaluate's", function()
    local m = classifier()
    local h = m:fit { x = x, y = y, batch_size = 8, epochs = 1, shuffle = true, verbose = 0 }
    local r = m:evaluate { x = x, y = y, batch_size = 22, verbose = 0 }
    local loss, acc = r[1], r[2]
    helpers.near(h.history.loss[1], loss, 1e-5)
    helpers.near(h.history.accuracy[1], acc, 1e-6)
  end)
end)

describe("fit's gradients", function()
  -- A model whose kernel gradient (512 x 256 floats, 512 KB) dwarfs everything else of a step.
  local function wide()
    local m = klua.Sequential { klua.Input { shape = { 512 } }, L.Dense(256) }
    return m
  end
  local x, y = klua.random.normal { 4, 512 }, klua.random.normal { 4, 256 }
  local KERNEL_BYTES = 512 * 256 * 4

  -- live tensor bytes added by one train_step, with collections held off
  local function bytes_of_step(m)
    m:train_on_batch(x, y)                           -- builds the model and the optimizer's slots
    collectgarbage(); collectgarbage()
    local before = klua.memory().live_bytes
    collectgarbage("stop")
    local ok, err = pcall(m.train_on_batch, m, x, y)
    local grown = klua.memory().live_bytes - before
    collectgarbage("restart")
    assert(ok, err)
    return grown
  end

  it("go back to the pool right after the update with klua's own optimizers", function()
    local m = wide()
    m:compile { optimizer = klua.optimizers.Adam(), loss = "mse" }
    local kept = bytes_of_step(m)
    assert.is_true(kept < KERNEL_BYTES, ("a step kept %d bytes alive"):format(kept))
  end)

  it("stay alive for an optimizer subclass, whose Lua may keep them", function()
    local seen = {}
    local Keeping = klua.optimizers.SGD:extend("KeepingSGD")
    function Keeping:_update(var, grad, slots, step)
      seen[#seen + 1] = grad                         -- a Lua update that keeps its gradient
      return Keeping.super._update(self, var, grad, slots, step)
    end
    local m = wide()
    m:compile { optimizer = Keeping(), loss = "mse" }
    local kept = bytes_of_step(m)
    assert.is_true(kept >= KERNEL_BYTES, ("a step kept only %d bytes alive"):format(kept))
    local last = seen[#seen - 1]                     -- the kernel's gradient of the last step
    assert.are.same({ 512, 256 }, last:shape())
    assert.is_true(math.abs(ops.sum(last):item()) >= 0)   -- still readable
  end)
end)
