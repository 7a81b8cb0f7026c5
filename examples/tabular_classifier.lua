-- tabular_classifier.lua — a small classifier on sklearn's real tabular data
-- sets: iris (150 flowers, 3 species), wine (178 wines, 3 cultivars),
-- breast_cancer (569 samples, malignant / benign) and digits (1,797 8x8
-- digits). A seeded 80/20 split (these data sets come unsplit), features
-- standardized with the training statistics, Dense 32 relu → Dropout →
-- Dense (one logit per class), Adam, sparse categorical crossentropy. Prints
-- the test accuracy beside the majority-class baseline and the accuracy per class.
--
--   klua examples/tabular_classifier.lua [--dataset iris|wine|breast_cancer|digits]
--                                        [--epochs N] [--samples N] [--seed N] [--help]
local klua = require("klua")
local ops, layers = klua.ops, klua.layers
local utils = require("klua.utils")

local USAGE = [[
usage: klua examples/tabular_classifier.lua [options]
  --dataset NAME   iris (default), wine, breast_cancer or digits
  --epochs N       training epochs (default 60)
  --samples N      train on the first N training rows only (quick runs; default: all)
  --seed N         random seed of the split and the model (default 1)
  --help           this text
The data: `make data` (the CSV files of Debian's python3-sklearn).]]

local opts = utils.parse_args(arg, { dataset = "iris", epochs = 60, samples = 0, seed = 1 }, USAGE)
local known = { iris = true, wine = true, breast_cancer = true, digits = true }
if not known[opts.dataset] then
  io.stderr:write("tabular_classifier.lua: unknown dataset '", opts.dataset, "' (iris, wine, breast_cancer, digits)\n")
  os.exit(2)
end
utils.set_random_seed(opts.seed)

local data = klua.datasets[opts.dataset]
local x, y = data.load_data()
local n, classes = x:shape()[1], #data.class_names

-- A seeded 80/20 split of the rows (the files are sorted by class).
local order = klua.random.permutation_tensor(n, { seed = opts.seed })
x, y = ops.take(x, order, 1), ops.take(y, order, 1)
local n_train = math.floor(n * 0.8)
local x_train, y_train = ops.slice_axis(x, 1, 1, n_train), ops.slice_axis(y, 1, 1, n_train)
local x_test, y_test = ops.slice_axis(x, 1, n_train + 1, n), ops.slice_axis(y, 1, n_train + 1, n)
if opts.samples > 0 and opts.samples < n_train then
  x_train, y_train = ops.slice_axis(x_train, 1, 1, opts.samples), ops.slice_axis(y_train, 1, 1, opts.samples)
end
print(("%s: %d training and %d test rows, %d features, %d classes"):format(
  opts.dataset, x_train:shape()[1], x_test:shape()[1], x:shape()[2], classes))

-- Standardize with the training statistics (constant columns, such as the
-- digits' always-blank corner pixels, are only centred).
local mean, std = ops.mean(x_train, 1, true), ops.std(x_train, 1, true)
std = ops.where(ops.greater(std, 1e-6), std, klua.ones_like(std))
x_train, x_test = (x_train - mean) / std, (x_test - mean) / std

local model = klua.Sequential {
  klua.Input { shape = { x:shape()[2] } },
  layers.Dense(32, { activation = "relu" }),
  layers.Dropout(0.1, { seed = opts.seed }),
  layers.Dense(classes),
}
model:compile {
  optimizer = klua.optimizers.Adam { learning_rate = 1e-2 },
  loss = klua.losses.SparseCategoricalCrossentropy { from_logits = true },
  metrics = { "accuracy" },
}
local t0 = utils.now()
model:fit { x = x_train, y = y_train, batch_size = 32, epochs = opts.epochs, verbose = 0 }
local result = model:evaluate { x = x_test, y = y_test, verbose = 0, return_dict = true }

-- The majority class of the training rows, as a baseline.
local counts = ops.sum(utils.to_categorical(y_train, classes), 1)
local majority = ops.argmax(counts):item()
local baseline = ops.mean(ops.equal(y_test, majority)):item()
print(("fit: %d epochs in %.1f s"):format(opts.epochs, utils.now() - t0))
print(("test accuracy %.4f (majority-class baseline %.4f)"):format(result.accuracy, baseline))

local predicted = ops.argmax(model:predict { x = x_test, verbose = 0 }, -1)
for c = 0, classes - 1 do
  local is_c = ops.equal(y_test, c)
  local total = ops.sum(is_c):item()
  if total > 0 then
    local right = ops.sum(is_c * ops.equal(predicted, c)):item()
    print(("  %-12s %d of %d right"):format(data.class_names[c + 1], right, total))
  end
end
