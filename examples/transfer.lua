-- transfer.lua — a model nested in a model, frozen, as in the Keras notes
-- ("Model composability": a feature extractor used as a layer).
--   1. A Functional feature extractor (Conv2D 16 → MaxPooling2D → Conv2D 32 →
--      MaxPooling2D → Flatten → Dense 128 relu) is trained with a 5-way head
--      on Fashion-MNIST classes 0-4 (T-shirt, Trouser, Pullover, Dress, Coat).
--   2. It is frozen (feature_extractor.trainable = false) and called like a
--      layer inside a new model whose new head learns classes 5-9 (Sandal,
--      Shirt, Sneaker, Bag, Boot), which the extractor never saw.
-- Prints the accuracy on each task, the weight counts, the largest change of
-- a frozen weight during the second training (0; the head's weights do
-- change), and for comparison the same head trained on a frozen extractor
-- that was never trained.
--
--   klua examples/transfer.lua [--dataset fashion_mnist|mnist] [--epochs N]
--                              [--samples N] [--seed N] [--help]
local klua = require("klua")
local ops, layers = klua.ops, klua.layers
local utils = require("klua.utils")

local USAGE = [[
usage: klua examples/transfer.lua [options]
  --dataset NAME   fashion_mnist (default) or mnist (digits 0-4, then 5-9)
  --epochs N       epochs for each of the three trainings (default 3)
  --samples N      use the first N training images only (quick runs; default: all)
  --seed N         random seed (default 1)
  --help           this text]]

local opts = utils.parse_args(arg, { dataset = "fashion_mnist", epochs = 3, samples = 0, seed = 1 }, USAGE)
klua.random.seed(opts.seed)

-- The data, split by class: task A is classes 0-4, task B classes 5-9 (as 0-4).
local dataset = klua.datasets[opts.dataset]
if not dataset then io.stderr:write("transfer.lua: unknown dataset '", opts.dataset, "'\n"); os.exit(2) end
local train, test = dataset.load_data()
local x_train, y_train = train[1] / 255, train[2]
if opts.samples > 0 and opts.samples < x_train:shape()[1] then
  x_train, y_train = ops.slice_axis(x_train, 1, 1, opts.samples), ops.slice_axis(y_train, 1, 1, opts.samples)
end

-- The images of classes lo..lo+4, and their labels shifted to 0..4.
local function classes(x, y, lo)
  local idx = {}
  for i, label in ipairs(y:totable()) do
    if label >= lo and label < lo + 5 then idx[#idx + 1] = i - 1 end   -- take's indices are 0-based
  end
  if #idx == 0 then
    io.stderr:write(("transfer.lua: no images of classes %d-%d (use more --samples)\n"):format(lo, lo + 4)); os.exit(1)
  end
  local pick = klua.tensor(idx)
  return ops.take(x, pick, 1), ops.take(y, pick, 1) - lo
end
local a_train = { classes(x_train, y_train, 0) }
local b_train = { classes(x_train, y_train, 5) }
local a_test = { classes(test[1] / 255, test[2], 0) }
local b_test = { classes(test[1] / 255, test[2], 5) }
print(("%s: task A (classes 0-4) %d training / %d test images, task B (classes 5-9) %d / %d"):format(opts.dataset,
  a_train[1]:shape()[1], a_test[1]:shape()[1], b_train[1]:shape()[1], b_test[1]:shape()[1]))

local function feature_extractor_model(name)
  local inputs = klua.Input { shape = { 28, 28 } }
  local x = layers.Reshape { 28, 28, 1 }(inputs)   -- one channel, last
  x = layers.Conv2D(16, { 3, 3 }, { activation = "relu" })(x)
  x = layers.MaxPooling2D { 2, 2 }(x)
  x = layers.Conv2D(32, { 3, 3 }, { activation = "relu" })(x)
  x = layers.MaxPooling2D { 2, 2 }(x)
  x = layers.Flatten()(x)
  x = layers.Dense(128, { activation = "relu" })(x)
  return klua.Model { inputs = inputs, outputs = x, name = name }
end

-- A model made of a (nested) feature extractor and a new 5-way head.
local function with_head(features, name)
  local inputs = klua.Input { shape = { 28, 28 } }
  local head = layers.Dense(5)
  return klua.Model { inputs = inputs, outputs = head(features(inputs)), name = name }, head
end

local function train_and_score(model, data, data_test)
  model:compile {
    optimizer = klua.optimizers.Adam { learning_rate = 1e-3 },
    loss = klua.losses.SparseCategoricalCrossentropy { from_logits = true },
    metrics = { "accuracy" },
  }
  local t0 = utils.now()
  model:fit { x = data[1], y = data[2], batch_size = 128, epochs = opts.epochs, verbose = 2 }
  local seconds = utils.now() - t0
  local r = model:evaluate { x = data_test[1], y = data_test[2], batch_size = 256, verbose = 0, return_dict = true }
  return r.accuracy, seconds
end

local function max_change(before, after)
  local m = 0
  for i = 1, #before do m = math.max(m, ops.max(ops.abs(after[i] - before[i])):item()) end
  return m
end

-- 1. Train the feature extractor with a head on task A ---------------------------

local feature_extractor = feature_extractor_model("feature_extractor")
local model_a = with_head(feature_extractor, "classifier_a")
print("== 1. feature extractor + head on task A (classes 0-4)")
local acc_a, sec_a = train_and_score(model_a, a_train, a_test)
print(("task A: test accuracy %.4f (%.1f s)"):format(acc_a, sec_a))

-- 2. Freeze it and train a new head on task B -------------------------------------

feature_extractor.trainable = false
local model_b, head_b = with_head(feature_extractor, "classifier_b")
print("== 2. frozen feature extractor + new head on task B (classes 5-9)")
model_b:summary()
print(("classifier_b: %d trainable weights (the new head), %d frozen (the feature extractor)"):format(
  #model_b.trainable_weights, #model_b.non_trainable_weights))
local before, head_before = feature_extractor:get_weights(), head_b:get_weights()   -- copies
local acc_b, sec_b = train_and_score(model_b, b_train, b_test)
print(("task B: test accuracy %.4f (%.1f s)"):format(acc_b, sec_b))
print(("during task B training the largest change of a frozen weight was %.3g (%d tensors), of a head weight %.3g"):format(
  max_change(before, feature_extractor:get_weights()), #before, max_change(head_before, head_b:get_weights())))

-- 3. For comparison: the same head on a frozen extractor that never trained -------

local untrained = feature_extractor_model("untrained_extractor")
untrained.trainable = false
print("== 3. for comparison: frozen untrained extractor + new head on task B")
local acc_r = train_and_score(with_head(untrained, "classifier_random"), b_train, b_test)
print(("task B with untrained features: test accuracy %.4f"):format(acc_r))
print(("transfer: task B test accuracy %.4f with the features learned on task A, %.4f with random ones"):format(acc_b, acc_r))
