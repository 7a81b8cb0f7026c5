-- examples_spec.lua — every example script runs to the end through build/klua
-- in a reduced form and prints what it promises. The data sets are tiny
-- synthetic MNIST / Fashion-MNIST caches written here (a bright block whose
-- place gives the class, on noise) in a temporary KLUA_DATA, so the spec needs
-- no `make data` and its numbers do not depend on the real data.
-- (examples/layers_without_model.lua has its own spec.)
local klua = require("klua")
local ops = klua.ops
local helpers = require("helpers")

local root = helpers.tmpdir()
assert(os.execute("mkdir -p '" .. root .. "/data' '" .. root .. "/vae'"))

-- n images (n,28,28) with values 0..255 and labels i % 10: class k is an 8x5
-- block at row 2 (k < 5) or 16 (k >= 5), column 1 + 5 * (k % 5), on noise below 60.
local function synthetic(n)
  local templates = {}
  for k = 0, 9 do
    local img = {}
    for r = 1, 28 do
      local row = {}
      for c = 1, 28 do
        local r0, c0 = k < 5 and 2 or 16, 1 + 5 * (k % 5)
        row[c] = (r > r0 and r <= r0 + 8 and c > c0 and c <= c0 + 5) and 1 or 0
      end
      img[r] = row
    end
    templates[k + 1] = img
  end
  local labels = {}
  for i = 1, n do labels[i] = (i - 1) % 10 end
  local y = klua.tensor(labels)
  local x = ops.take(klua.tensor(templates), y, 1) * 195 + ops.floor(klua.random.uniform { n, 28, 28 } * 60)
  return x, y
end

local saved_rng = klua.random.get_state()   -- the specs share one Lua state: leave the stream as it was
klua.random.seed(7)
for _, name in ipairs { "mnist", "fashion_mnist" } do
  local dir = root .. "/data/" .. name
  assert(os.execute("mkdir -p '" .. dir .. "'"))
  local x, y = synthetic(1400)
  klua.datasets.write_idx(dir .. "/train-images-idx3-ubyte", x)
  klua.datasets.write_idx(dir .. "/train-labels-idx1-ubyte", y)
  x, y = synthetic(100)
  klua.datasets.write_idx(dir .. "/t10k-images-idx3-ubyte", x)
  klua.datasets.write_idx(dir .. "/t10k-labels-idx1-ubyte", y)
end
klua.random.set_state(saved_rng)

teardown(function() helpers.remove_tree(root) end)

-- Runs `klua <script> <args>` on the synthetic data; returns its output and exit code.
local function run(script, args)
  return helpers.shell(("KLUA_DATA='%s/data' %s %s %s"):format(root, helpers.EXE, script, args or ""))
end

-- The number after `label` in out (e.g. "test accuracy 0.9100").
local function number_after(out, label)
  local v = out:match(helpers.literal(label) .. "%s+([%d%.eE+-]+)")
  return tonumber(v)
end

local function succeeds(script, args)
  local out, code = run(script, args)
  assert.are.equal(0, code, out)
  return out
end

describe("the example scripts", function()
  it("all answer --help with their usage and reject an unknown option", function()
    for _, s in ipairs { "mnist_mlp", "mnist_cnn", "lstm_sequence", "transfer", "train_vae" } do
      local out, code = run("examples/" .. s .. ".lua", "--help")
      assert.are.equal(0, code, out)
      assert.matches("usage: klua examples/" .. s .. ".lua", out, 1, true)
      out, code = run("examples/" .. s .. ".lua", "--bogus 1")
      assert.are.equal(2, code, out)
      assert.matches("unknown or incomplete option '--bogus'", out, 1, true)
    end
  end)

  it("mnist_mlp.lua trains the MLP with fit and reports a test accuracy well above chance", function()
    local out = succeeds("examples/mnist_mlp.lua", "--epochs 3")
    assert.matches("mnist: 1400 training and 100 test images", out, 1, true)
    assert.matches("Total params: 203,530", out, 1, true)
    local acc = number_after(out, "test accuracy")
    assert.is_number(acc, out)
    assert.is_true(acc > 0.5, out)
    assert.matches("predicted: [%d ]+\nlabels:    0 1 2 3 4 5 6 7 8 9", out)
  end)

  it("mnist_cnn.lua trains the convnet on digits and on Fashion-MNIST and reports test and per-class accuracy", function()
    for _, name in ipairs { "mnist", "fashion_mnist" } do
      local out = succeeds("examples/mnist_cnn.lua", "--dataset " .. name .. " --epochs 2 --samples 300")
      assert.matches(name .. ": 300 training and 100 test images; 2 epochs", out, 1, true)
      assert.matches("Total params: 34,826", out, 1, true)
      local acc = number_after(out, "test accuracy")
      assert.is_number(acc, out)
      assert.is_true(acc > 0.3 and acc <= 1, out)   -- chance is 0.1
      local classes = 0
      for _ in out:gmatch("\n  %d [%a%- ]*%d%.%d%d%d %(10 images%)") do classes = classes + 1 end
      assert.are.equal(10, classes, out)
    end
  end)

  it("lstm_sequence.lua learns the masked sequence task and the mask makes padding invisible", function()
    local out = succeeds("examples/lstm_sequence.lua", "--epochs 4 --samples 1000")
    local acc, baseline = out:match("test accuracy ([%d.]+) %(majority%-class baseline ([%d.]+)%)")
    assert.is_truthy(acc, out)
    assert.is_true(tonumber(acc) > tonumber(baseline) + 0.15, out)
    local diff = number_after(out, "padded at the end vs at the start differ by at most")
    assert.is_true(diff < 1e-4, out)
    assert.matches("mask on:", out, 1, true)
  end)

  it("transfer.lua freezes the nested feature extractor: its weights do not move while the new head learns", function()
    local out = succeeds("examples/transfer.lua", "--epochs 2")
    assert.matches("task A %(classes 0%-4%) 700 training / 50 test images, task B %(classes 5%-9%) 700 / 50", out)
    assert.is_number(number_after(out, "task A: test accuracy"), out)
    assert.is_number(number_after(out, "task B: test accuracy"), out)
    assert.matches("classifier_b: 2 trainable weights (the new head), 6 frozen (the feature extractor)", out, 1, true)
    local frozen, head = out:match("largest change of a frozen weight was (%S+) %(6 tensors%), of a head weight (%S+)")
    assert.are.equal(0, tonumber(frozen), out)
    assert.is_true(tonumber(head) > 0, out)
  end)

  it("train_vae.lua runs both loops and writes its pictures, plot and model", function()
    local dir = root .. "/vae"
    local out = succeeds("examples/train_vae.lua", "--epochs 1 --steps 20 --out '" .. dir .. "'")
    assert.matches("custom loop: 20 steps", out, 1, true)
    assert.matches("saved " .. dir .. "/vae.klua", out, 1, true)
    for _, f in ipairs { "reconstructions.png", "samples.png", "loss.png", "vae.klua" } do
      local h = io.open(dir .. "/" .. f, "rb")
      assert.is_truthy(h, f .. " is missing\n" .. out)
      local size = h:seek("end")
      h:close()
      assert.is_true(size > 0, f .. " is empty")
    end
    local img = klua.image.read_png(dir .. "/samples.png")
    assert.are.equal(3, #img:shape())
  end)

  it("custom_layers.lua trains its two custom layers: the loss falls", function()
    local out = succeeds("examples/custom_layers.lua")
    local first, last = out:match("\nloss ([%d.]+) %-> ([%d.]+)")
    assert.is_truthy(first, out)
    assert.is_true(tonumber(last) < tonumber(first) / 10, out)
    assert.matches("config round trip: sin_layer units=32", out, 1, true)
  end)
end)
