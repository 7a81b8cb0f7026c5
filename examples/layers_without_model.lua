-- layers_without_model.lua — training Keras-style layers without a Model: the
-- three loops of the reference notes (shared/reference/000_f66d83ae8b468e05.txt)
-- written with klua. Each builds a layer, runs GradientTape + apply_gradients
-- by hand, prints the loss every epoch and predicts on a new input.
--   build/klua examples/layers_without_model.lua [--epochs N | N]
-- (epochs, when given, replaces the 100 / 50 / 200 epochs of the three loops.)
local klua = require("klua")
local ops = klua.ops
local layers, losses, optimizers = klua.layers, klua.losses, klua.optimizers

local USAGE = [[usage: klua examples/layers_without_model.lua [options]
  --epochs N   epochs of each of the three loops (default 100, 50 and 200)]]
-- a bare number is the epochs too, as before
local args = arg or {}
if tonumber(args[1]) then args = { [0] = args[0], "--epochs", args[1] } end
local override = klua.utils.parse_args(args, { epochs = false }, USAGE).epochs
if override == false then override = nil end
klua.random.seed(42)

local function random_labels(n, classes)
  local t = {}
  for i = 1, n do t[i] = math.floor(klua.random.uniform({}):item() * classes) end
  return klua.tensor(t)
end

-- 1. A Dense layer for regression: Adam 0.01 and mean squared error.
do
  print("== Dense regression")
  local dense_layer = layers.Dense(1, { input_shape = { 10 } })
  dense_layer:build({ -1, 10 })   -- create the weights before training

  local X = klua.random.uniform { 100, 10 }
  local y = klua.random.uniform { 100, 1 }

  local optimizer = optimizers.Adam { learning_rate = 0.01 }
  local loss_fn = losses.MeanSquaredError()

  local epochs = override or 100
  for epoch = 1, epochs do
    local tape = klua.GradientTape()
    local loss = tape:record(function()
      local predictions = dense_layer(X)
      return loss_fn(y, predictions)
    end)
    local gradients = tape:gradient(loss, dense_layer.trainable_variables)
    optimizer:apply_gradients(klua.zip(gradients, dense_layer.trainable_variables))
    print(("Epoch %d/%d, Loss: %.6f"):format(epoch, epochs, loss:item()))
  end

  local new_input = klua.random.uniform { 1, 10 }
  print("Prediction:", dense_layer(new_input))
end

-- 2. A Conv2D layer on 28x28x1 inputs, outputs averaged over the spatial axes,
-- trained as logits with sparse categorical crossentropy.
do
  print("== Conv2D classification")
  local conv_layer = layers.Conv2D(32, { 3, 3 }, { input_shape = { 28, 28, 1 } })
  conv_layer:build({ -1, 28, 28, 1 })

  local X = klua.random.uniform { 100, 28, 28, 1 }
  local y = random_labels(100, 10)   -- 0-based class labels

  local optimizer = optimizers.Adam { learning_rate = 0.001 }
  local loss_fn = losses.SparseCategoricalCrossentropy { from_logits = true }

  local epochs = override or 50
  for epoch = 1, epochs do
    local tape = klua.GradientTape()
    local loss = tape:record(function()
      local predictions = conv_layer(X)
      predictions = ops.mean(predictions, { 2, 3 })   -- average over height and width
      return loss_fn(y, predictions)
    end)
    local gradients = tape:gradient(loss, conv_layer.trainable_variables)
    optimizer:apply_gradients(klua.zip(gradients, conv_layer.trainable_variables))
    print(("Epoch %d/%d, Loss: %.6f"):format(epoch, epochs, loss:item()))
  end

  local new_input = klua.random.uniform { 1, 28, 28, 1 }
  print("Prediction:", ops.mean(conv_layer(new_input), { 2, 3 }))
end

-- 3. An LSTM on a time series with a custom loss written from ops.
do
  print("== LSTM with a custom loss")
  local lstm_layer = layers.LSTM(64, { return_sequences = false, input_shape = { 10, 1 } })
  lstm_layer:build({ -1, 10, 1 })

  local X = klua.random.uniform { 100, 10, 1 }
  local y = klua.random.uniform { 100, 1 }

  -- mean absolute error, as a plain function of (y_true, y_pred)
  local function custom_loss(y_true, y_pred)
    return ops.mean(ops.abs(y_true - y_pred))
  end

  local optimizer = optimizers.Adam { learning_rate = 0.005 }

  local epochs = override or 200
  for epoch = 1, epochs do
    local tape = klua.GradientTape()
    local loss = tape:record(function()
      local predictions = lstm_layer(X)
      return custom_loss(y, predictions)
    end)
    local gradients = tape:gradient(loss, lstm_layer.trainable_variables)
    optimizer:apply_gradients(klua.zip(gradients, lstm_layer.trainable_variables))
    print(("Epoch %d/%d, Loss: %.6f"):format(epoch, epochs, loss:item()))
  end

  local new_input = klua.random.uniform { 1, 10, 1 }
  print("Prediction:", lstm_layer(new_input))
end
