-- mnist_mlp.lua — a multilayer perceptron on MNIST digits with the Sequential
-- API: Flatten → Dense 256 relu → Dropout → Dense 10 (logits), trained with
-- compile + fit (Adam, sparse categorical crossentropy from logits) and scored
-- with evaluate on the test set. Prints the model summary, the progress of
-- fit, the test accuracy and a few predictions.
--
--   klua examples/mnist_mlp.lua [--dataset mnist|fashion_mnist] [--epochs N]
--                               [--samples N] [--seed N] [--help]
local klua = require("klua")
local ops, layers = klua.ops, klua.layers
local utils = require("klua.utils")

local USAGE = [[
usage: klua examples/mnist_mlp.lua [options]
  --dataset NAME   mnist (default) or fashion_mnist
  --epochs N       training epochs (default 10)
  --samples N      train on the first N training images only (quick runs; default: all)
  --seed N         random seed (default 1)
  --help           this text]]

local opts = utils.parse_args(arg, { dataset = "mnist", epochs = 10, samples = 0, seed = 1 }, USAGE)
klua.random.seed(opts.seed)

-- The data: (N,28,28) images scaled to [0,1], labels 0..9 as they come.
local dataset = klua.datasets[opts.dataset]
if not dataset then io.stderr:write("mnist_mlp.lua: unknown dataset '", opts.dataset, "'\n"); os.exit(2) end
local train, test = dataset.load_data()
local x_train, y_train = train[1] / 255, train[2]
local x_test, y_test = test[1] / 255, test[2]
if opts.samples > 0 and opts.samples < x_train:shape()[1] then
  x_train, y_train = ops.slice_axis(x_train, 1, 1, opts.samples), ops.slice_axis(y_train, 1, 1, opts.samples)
end
print(("%s: %d training and %d test images"):format(opts.dataset, x_train:shape()[1], x_test:shape()[1]))

-- The model.
local model = klua.Sequential {
  layers.Flatten { input_shape = { 28, 28 } },
  layers.Dense(256, { activation = "relu" }),
  layers.Dropout(0.2, { seed = opts.seed }),
  layers.Dense(10),
}
model:summary()
model:compile {
  optimizer = klua.optimizers.Adam { learning_rate = 1e-3 },
  loss = klua.losses.SparseCategoricalCrossentropy { from_logits = true },
  metrics = { "accuracy" },
}

-- Training, with the last 10% of the training images held out for validation.
local t0 = utils.now()
local history = model:fit { x = x_train, y = y_train, batch_size = 128, epochs = opts.epochs, validation_split = 0.1 }
local seconds = utils.now() - t0
local h = history.history
print(("fit: %d epochs in %.1f s; last epoch accuracy %.4f, validation accuracy %.4f"):format(
  opts.epochs, seconds, h.accuracy[#h.accuracy], h.val_accuracy[#h.val_accuracy]))

-- Scoring on the test images.
local result = model:evaluate { x = x_test, y = y_test, batch_size = 256, verbose = 0, return_dict = true }
print(("test loss %.4f, test accuracy %.4f"):format(result.loss, result.accuracy))

-- The first ten test images: predicted class (argmax of the logits) and label.
local first = ops.slice_axis(x_test, 1, 1, 10)
local predicted = ops.argmax(model:predict { x = first, verbose = 0 }, -1)
local p, l = {}, {}
for i = 1, 10 do p[i], l[i] = ("%d"):format(predicted:get(i)), ("%d"):format(y_test:get(i)) end
print("predicted: " .. table.concat(p, " "))
print("labels:    " .. table.concat(l, " "))
