-- mnist_cnn.lua — Keras's classic convnet on MNIST digits or Fashion-MNIST:
-- Conv2D 32 3x3 relu → MaxPooling2D 2 → Conv2D 64 3x3 relu → MaxPooling2D 2 →
-- Flatten → Dropout 0.5 → Dense 10 softmax, trained with compile + fit (Adam,
-- sparse categorical crossentropy) and scored with evaluate on the test set.
-- Prints the summary, the progress of fit, the test accuracy and the
-- accuracy per class.
--
--   klua examples/mnist_cnn.lua [--dataset mnist|fashion_mnist] [--epochs N]
--                               [--samples N] [--seed N] [--help]
local klua = require("klua")
local ops, layers = klua.ops, klua.layers
local utils = require("klua.utils")

local USAGE = [[
usage: klua examples/mnist_cnn.lua [options]
  --dataset NAME   mnist (default) or fashion_mnist
  --epochs N       training epochs (default: 12 for up to 10,000 training
                   images, such as the 8,000 MNIST digits of `make data`; 3 for
                   more, such as the 60,000 of Fashion-MNIST: about 700 and
                   1,270 steps of 128 images)
  --samples N      train on the first N training images only (quick runs; default: all)
  --seed N         random seed (default 1)
  --help           this text]]

local opts = utils.parse_args(arg, { dataset = "mnist", epochs = 0, samples = 0, seed = 1 }, USAGE)
klua.random.seed(opts.seed)

-- The data: images as (N,28,28,1) in [0,1] (channels last), labels 0..9.
local dataset = klua.datasets[opts.dataset]
if not dataset then io.stderr:write("mnist_cnn.lua: unknown dataset '", opts.dataset, "'\n"); os.exit(2) end
local train, test = dataset.load_data()
local x_train, y_train = ops.expand_dims(train[1] / 255, -1), train[2]
local x_test, y_test = ops.expand_dims(test[1] / 255, -1), test[2]
if opts.samples > 0 and opts.samples < x_train:shape()[1] then
  x_train, y_train = ops.slice_axis(x_train, 1, 1, opts.samples), ops.slice_axis(y_train, 1, 1, opts.samples)
end
local n_train = x_train:shape()[1]
if opts.epochs <= 0 then opts.epochs = n_train <= 10000 and 12 or 3 end
print(("%s: %d training and %d test images; %d epochs"):format(opts.dataset, n_train, x_test:shape()[1], opts.epochs))

-- The model.
local model = klua.Sequential {
  klua.Input { shape = { 28, 28, 1 } },
  layers.Conv2D(32, { 3, 3 }, { activation = "relu" }),
  layers.MaxPooling2D { 2, 2 },
  layers.Conv2D(64, { 3, 3 }, { activation = "relu" }),
  layers.MaxPooling2D { 2, 2 },
  layers.Flatten(),
  layers.Dropout(0.5, { seed = opts.seed }),
  layers.Dense(10, { activation = "softmax" }),
}
model:summary()
model:compile { optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } }

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

-- Accuracy per class on the test images.
local predicted = ops.argmax(model:predict { x = x_test, batch_size = 256, verbose = 0 }, -1)
local hits, counts = {}, {}
for c = 0, 9 do hits[c], counts[c] = 0, 0 end
local p, l = predicted:totable(), y_test:totable()
for i = 1, #l do
  counts[l[i]] = counts[l[i]] + 1
  if p[i] == l[i] then hits[l[i]] = hits[l[i]] + 1 end
end
local names = opts.dataset == "fashion_mnist"
  and { [0] = "T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot" } or {}
print("per class:")
for c = 0, 9 do
  if counts[c] > 0 then
    print(("  %d %-8s %.3f (%d images)"):format(c, names[c] or "", hits[c] / counts[c], counts[c]))
  end
end
