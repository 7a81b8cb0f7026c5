-- lstm_sequence.lua — Embedding(mask_zero = true) + LSTM on variable-length
-- sequences, with the Functional API. The task: sequences of 4 to 20 tokens
-- (1..9), padded with 0 to a length of 20; the label says whether the mean
-- token is above 5. The data are generated here with a fixed seed.
-- Prints the test accuracy beside the majority-class baseline, and shows
-- what the mask does: the same sequence padded at the end or at the start
-- gets the same prediction, because the LSTM skips the padded steps.
-- (--mask 0 trains without the mask, for comparison.)
--
--   klua examples/lstm_sequence.lua [--epochs N] [--samples N] [--mask 0|1]
--                                   [--seed N] [--help]
local klua = require("klua")
local ops, layers = klua.ops, klua.layers
local utils = require("klua.utils")

local USAGE = [[
usage: klua examples/lstm_sequence.lua [options]
  --epochs N       training epochs (default 10)
  --samples N      training sequences (default 4000; 1000 more are the test set)
  --mask 0|1       1 (default): Embedding{mask_zero = true}; 0: padding is an ordinary token
  --seed N         random seed for the data and the weights (default 1)
  --help           this text]]

local opts = utils.parse_args(arg, { epochs = 10, samples = 4000, mask = 1, seed = 1 }, USAGE)
klua.random.seed(opts.seed)
math.randomseed(opts.seed)   -- LuaJIT's generator gives the same numbers on every platform

local MAXLEN, VOCAB = 20, 10   -- tokens 1..9; 0 is padding

-- n sequences as Lua lists, and their labels (1 when the mean token is above 5).
local function generate(n)
  local seqs, labels = {}, {}
  for i = 1, n do
    local len, sum, s = math.random(4, MAXLEN), 0, {}
    for t = 1, len do s[t] = math.random(1, VOCAB - 1); sum = sum + s[t] end
    seqs[i], labels[i] = s, sum > 5 * len and 1 or 0
  end
  return seqs, labels
end

-- A (n, MAXLEN) tensor of token ids, padded with 0 after each sequence ("post")
-- or before it ("pre"), as Keras's pad_sequences.
local function pad(seqs, padding)
  local rows = {}
  for i, s in ipairs(seqs) do
    local row, off = {}, padding == "pre" and MAXLEN - #s or 0
    for t = 1, MAXLEN do row[t] = 0 end
    for t = 1, #s do row[off + t] = s[t] end
    rows[i] = row
  end
  return klua.tensor(rows)
end

local train_seqs, train_labels = generate(opts.samples)
local test_seqs, test_labels = generate(1000)
local x_train, y_train = pad(train_seqs, "post"), klua.tensor(train_labels)
local x_test, y_test = pad(test_seqs, "post"), klua.tensor(test_labels)
local positives = 0
for _, v in ipairs(test_labels) do positives = positives + v end
local baseline = math.max(positives, #test_labels - positives) / #test_labels
print(("%d training and %d test sequences of 4..%d tokens, padded to %d; %.1f%% of the test labels are 1"):format(
  #train_seqs, #test_seqs, MAXLEN, MAXLEN, 100 * positives / #test_labels))

-- The model, with the Functional API.
local inputs = klua.Input { shape = { MAXLEN }, name = "tokens" }
local x = layers.Embedding(VOCAB, 16, { mask_zero = opts.mask ~= 0 })(inputs)
x = layers.LSTM(32)(x)
local outputs = layers.Dense(1, { activation = "sigmoid" })(x)
local model = klua.Model { inputs = inputs, outputs = outputs, name = "mean_above_5" }
model:summary()
model:compile {
  optimizer = klua.optimizers.Adam { learning_rate = 3e-3 },
  loss = "binary_crossentropy",
  metrics = { "accuracy" },
}

local t0 = utils.now()
model:fit { x = x_train, y = y_train, batch_size = 64, epochs = opts.epochs, validation_split = 0.1 }
print(("fit: %d epochs in %.1f s"):format(opts.epochs, utils.now() - t0))

local result = model:evaluate { x = x_test, y = y_test, batch_size = 250, verbose = 0, return_dict = true }
print(("test loss %.4f, test accuracy %.4f (majority-class baseline %.4f)"):format(result.loss, result.accuracy, baseline))

-- The mask at work: padding before or after the tokens changes nothing when
-- the padded steps are masked.
local post = model:predict { x = x_test, batch_size = 250, verbose = 0 }
local pre = model:predict { x = pad(test_seqs, "pre"), batch_size = 250, verbose = 0 }
print(("mask %s: predictions padded at the end vs at the start differ by at most %.2g"):format(
  opts.mask ~= 0 and "on" or "off", ops.max(ops.abs(post - pre)):item()))

print("some test sequences (mean, label, predicted probability):")
for i = 1, 5 do
  local s, sum = test_seqs[i], 0
  for _, v in ipairs(s) do sum = sum + v end
  print(("  %-40s mean %.2f  label %d  p %.3f"):format(table.concat(s, " "), sum / #s, test_labels[i], post:get(i, 1)))
end
