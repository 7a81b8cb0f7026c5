-- datasets/fashion_mnist.lua — klua.datasets.fashion_mnist: Zalando's clothing
-- images (28x28 gray, 10 classes), 60,000 train / 10,000 test, from Debian's
-- dataset-fashion-mnist (`make data` links it into the cache).
local datasets = require("klua.datasets")

local fashion_mnist = {}

--- load_data({max_bytes=}) -> {x_train, y_train}, {x_test, y_test}
-- x: (N,28,28) with values 0..255, y: (N) with labels 0..9 (float tensors), as in Keras.
fashion_mnist.load_data = datasets.idx_loader("fashion_mnist")

-- Label i (0-based) names class_names[i + 1].
fashion_mnist.class_names = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" }

return fashion_mnist
