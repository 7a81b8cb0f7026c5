-- boston_housing.lua — regression on real data: the Boston housing prices
-- (506 suburbs, 13 attributes, Keras's 404/102 split) with the model of
-- "Deep Learning with Python" (chapter 3): features standardized with the
-- training set's mean and standard deviation, Dense 64 relu → Dense 64 relu →
-- Dense 1, RMSprop, mean squared error, mean absolute error as the metric.
-- Prints the test MAE in k$ beside the MAE of always predicting the training
-- mean. (Keras's warning stands: the attribute "B" encodes a racial
-- assumption; the data set serves to show regression, not to price houses.)
--
--   klua examples/boston_housing.lua [--epochs N] [--samples N] [--seed N] [--help]
local klua = require("klua")
local ops, layers = klua.ops, klua.layers
local utils = require("klua.utils")

local USAGE = [[
usage: klua examples/boston_housing.lua [options]
  --epochs N       training epochs (default 80)
  --samples N      train on the first N training rows only (quick runs; default: all 404)
  --seed N         random seed (default 1)
  --help           this text
The data: `make data` (Debian's python3-sklearn CSV, split as Keras's load_data).]]

local opts = utils.parse_args(arg, { epochs = 80, samples = 0, seed = 1 }, USAGE)
utils.set_random_seed(opts.seed)

local train, test = klua.datasets.boston_housing.load_data()
local x_train, y_train, x_test, y_test = train[1], train[2], test[1], test[2]
if opts.samples > 0 and opts.samples < x_train:shape()[1] then
  x_train, y_train = ops.slice_axis(x_train, 1, 1, opts.samples), ops.slice_axis(y_train, 1, 1, opts.samples)
end
print(("boston_housing: %d training and %d test rows, %d features"):format(
  x_train:shape()[1], x_test:shape()[1], x_train:shape()[2]))

-- Standardize with the training statistics only (the test set stays unseen).
local mean, std = ops.mean(x_train, 1, true), ops.std(x_train, 1, true)
std = ops.maximum(std, 1e-6)
x_train, x_test = (x_train - mean) / std, (x_test - mean) / std

local model = klua.Sequential {
  klua.Input { shape = { 13 } },
  layers.Dense(64, { activation = "relu" }),
  layers.Dense(64, { activation = "relu" }),
  layers.Dense(1),
}
model:compile { optimizer = "rmsprop", loss = "mse", metrics = { "mae" } }

local t0 = utils.now()
model:fit { x = x_train, y = y_train, batch_size = 16, epochs = opts.epochs, verbose = 0 }
local result = model:evaluate { x = x_test, y = y_test, verbose = 0, return_dict = true }
local baseline = ops.mean(ops.abs(y_test - ops.mean(y_train))):item()
print(("fit: %d epochs in %.1f s"):format(opts.epochs, utils.now() - t0))
print(("test MAE %.3f k$ (always predicting the training mean: %.3f k$), test MSE %.2f"):format(
  result.mae, baseline, result.loss))

-- A few test rows: predicted and true median value.
local shown = math.min(5, x_test:shape()[1])
local predicted = model:predict { x = ops.slice_axis(x_test, 1, 1, shown), verbose = 0 }
for i = 1, shown do
  print(("  row %d: predicted %5.1f k$, true %5.1f k$"):format(i, predicted:get(i, 1), y_test:get(i)))
end
