-- utils_data_spec.lua — klua.utils.pad_sequences, to_categorical and
-- set_random_seed against Keras's tests: keras/src/utils/sequence_utils_test.py,
-- numerical_utils_test.py and rng_utils_test.py (named in each case).
local klua = require("klua")
local helpers = require("helpers")
local U, ops = klua.utils, klua.ops
local raises, near = helpers.raises, helpers.near

describe("klua.utils.pad_sequences (sequence_utils_test.py)", function()
  local a = { { 1 }, { 1, 2 }, { 1, 2, 3 } }

  it("pads and truncates integer sequences before or after, with any value (test_pad_sequences)", function()
    near(U.pad_sequences(a, { maxlen = 3, padding = "pre" }), { { 0, 0, 1 }, { 0, 1, 2 }, { 1, 2, 3 } }, 0)
    near(U.pad_sequences(a, { maxlen = 3, padding = "post" }), { { 1, 0, 0 }, { 1, 2, 0 }, { 1, 2, 3 } }, 0)
    near(U.pad_sequences(a, { maxlen = 2, truncating = "pre" }), { { 0, 1 }, { 1, 2 }, { 2, 3 } }, 0)
    near(U.pad_sequences(a, { maxlen = 2, truncating = "post" }), { { 0, 1 }, { 1, 2 }, { 1, 2 } }, 0)
    near(U.pad_sequences(a, { maxlen = 3, value = 1 }), { { 1, 1, 1 }, { 1, 1, 2 }, { 1, 2, 3 } }, 0)
    -- the docstring's: maxlen defaults to the longest sequence; pad_sequences(s, maxlen) also works
    near(U.pad_sequences(a), { { 0, 0, 1 }, { 0, 1, 2 }, { 1, 2, 3 } }, 0)
    near(U.pad_sequences(a, 2), { { 0, 1 }, { 1, 2 }, { 2, 3 } }, 0)
  end)

  it("keeps fractions with a float dtype and truncates them with the default int32 (test_pad_sequences_float)", function()
    local f = { { 1.2 }, { 1.2, 2.3 }, { 1.2, 2.3, 3.4 } }
    near(U.pad_sequences(f, { maxlen = 3, padding = "pre", dtype = "float32" }),
      { { 0, 0, 1.2 }, { 0, 1.2, 2.3 }, { 1.2, 2.3, 3.4 } }, 1e-6)
    near(U.pad_sequences(f, { maxlen = 3, padding = "post", dtype = "float32" }),
      { { 1.2, 0, 0 }, { 1.2, 2.3, 0 }, { 1.2, 2.3, 3.4 } }, 1e-6)
    near(U.pad_sequences(f, { maxlen = 2, truncating = "pre", dtype = "float32" }), { { 0, 1.2 }, { 1.2, 2.3 }, { 2.3, 3.4 } }, 1e-6)
    near(U.pad_sequences(f, { maxlen = 2, truncating = "post", dtype = "float32" }), { { 0, 1.2 }, { 1.2, 2.3 }, { 1.2, 2.3 } }, 1e-6)
    near(U.pad_sequences(f, { maxlen = 3, value = 1, dtype = "float32" }), { { 1, 1, 1.2 }, { 1, 1.2, 2.3 }, { 1.2, 2.3, 3.4 } }, 1e-6)
    near(U.pad_sequences(f, { maxlen = 2 }), { { 0, 1 }, { 1, 2 }, { 2, 3 } }, 0)
  end)

  it("pads strings with dtype = \"object\" into Lua tables, and refuses a string value otherwise (test_pad_sequences_str)", function()
    local s = { { "1" }, { "1", "2" }, { "1", "2", "3" } }
    assert.same({ { "pad", "pad", "1" }, { "pad", "1", "2" }, { "1", "2", "3" } },
      U.pad_sequences(s, { maxlen = 3, padding = "pre", value = "pad", dtype = "object" }))
    assert.same({ { "1", "pad", "pad" }, { "1", "2", "pad" }, { "1", "2", "3" } },
      U.pad_sequences(s, { maxlen = 3, padding = "post", value = "pad", dtype = "object" }))
    assert.same({ { "pad", "1" }, { "1", "2" }, { "2", "3" } },
      U.pad_sequences(s, { maxlen = 2, truncating = "pre", value = "pad", dtype = "object" }))
    assert.same({ { "pad", "1" }, { "1", "2" }, { "1", "2" } },
      U.pad_sequences(s, { maxlen = 2, truncating = "post", value = "pad", dtype = "object" }))
    raises("`dtype` int32 is not compatible with `value`'s type", U.pad_sequences, s, { maxlen = 2, truncating = "post", value = "pad" })
  end)

  it("pads sequences of vectors to (N, maxlen, d) (test_pad_sequences_vector)", function()
    local v = { { { 1, 1 } }, { { 2, 1 }, { 2, 2 } }, { { 3, 1 }, { 3, 2 }, { 3, 3 } } }
    near(U.pad_sequences(v, { maxlen = 3, padding = "pre" }),
      { { { 0, 0 }, { 0, 0 }, { 1, 1 } }, { { 0, 0 }, { 2, 1 }, { 2, 2 } }, { { 3, 1 }, { 3, 2 }, { 3, 3 } } }, 0)
    near(U.pad_sequences(v, { maxlen = 3, padding = "post" }),
      { { { 1, 1 }, { 0, 0 }, { 0, 0 } }, { { 2, 1 }, { 2, 2 }, { 0, 0 } }, { { 3, 1 }, { 3, 2 }, { 3, 3 } } }, 0)
    near(U.pad_sequences(v, { maxlen = 2, truncating = "pre" }), { { { 0, 0 }, { 1, 1 } }, { { 2, 1 }, { 2, 2 } }, { { 3, 2 }, { 3, 3 } } }, 0)
    near(U.pad_sequences(v, { maxlen = 2, truncating = "post" }), { { { 0, 0 }, { 1, 1 } }, { { 2, 1 }, { 2, 2 } }, { { 3, 1 }, { 3, 2 } } }, 0)
    near(U.pad_sequences(v, { maxlen = 3, value = 1 }),
      { { { 1, 1 }, { 1, 1 }, { 1, 1 } }, { { 1, 1 }, { 2, 1 }, { 2, 2 } }, { { 3, 1 }, { 3, 2 }, { 3, 3 } } }, 0)
  end)

  it("takes 1-D tensors and empty sequences, and names bad arguments", function()
    near(U.pad_sequences({ klua.tensor { 4, 5 }, {} }, { maxlen = 3 }), { { 0, 4, 5 }, { 0, 0, 0 } }, 0)
    raises('Padding type "middle" not understood', U.pad_sequences, a, { padding = "middle" })
    raises('Truncating type "mid" not understood', U.pad_sequences, a, { truncating = "mid" })
    raises("`sequences` must be a list of iterables%. Found non%-iterable: 5 at position 2", U.pad_sequences, { { 1 }, 5 })
    raises("unknown keyword argument 'max_len'", U.pad_sequences, a, { max_len = 3 })
  end)
end)

describe("klua.utils.to_categorical (numerical_utils_test.py)", function()
  it("one-hot encodes labels of any shape, dropping a trailing axis of 1 (test_to_categorical)", function()
    local cases = { { { 1 }, { 1, 5 } }, { { 3 }, { 3, 5 } }, { { 4, 3 }, { 4, 3, 5 } }, { { 5, 4, 3 }, { 5, 4, 3, 5 } },
      { { 3, 1 }, { 3, 5 } }, { { 3, 2, 1 }, { 3, 2, 5 } } }
    for _, c in ipairs(cases) do
      local labels = ops.floor(klua.random.uniform(c[1], { maxval = 5, seed = 3 }))
      local one_hot = U.to_categorical(labels, 5)
      assert.same(c[2], one_hot:shape())
      near(ops.sum(one_hot, -1), klua.ones(ops.sum(one_hot, -1):shape()), 0)          -- one 1 per row
      near(ops.reshape(ops.argmax(one_hot, -1), c[1]), labels, 0)                    -- the labels come back
    end
  end)

  it("infers num_classes as max + 1 and takes tensors (test_to_categorical_without_num_classes, ..._with_backend_tensor)", function()
    assert.same({ 3, 6 }, U.to_categorical { 0, 2, 5 }:shape())
    near(U.to_categorical(klua.tensor { 0, 2, 1, 3, 4 }, 5),
      { { 1, 0, 0, 0, 0 }, { 0, 0, 1, 0, 0 }, { 0, 1, 0, 0, 0 }, { 0, 0, 0, 1, 0 }, { 0, 0, 0, 0, 1 } }, 0)
  end)

  it("refuses out-of-range and fractional labels, hinting that class indices are 0-based", function()
    raises("label 3 is out of range for num_classes=3 %(labels are 0%.%.2%) %(class indices are 0%-based", U.to_categorical, { 1, 2, 3 }, 3)
    raises("class labels must be 0%.%.num_classes%-1; got %-1", U.to_categorical, { -1, 0 }, 2)
    raises("class labels must be integers", U.to_categorical, { 0.5 }, 2)
  end)
end)

describe("klua.utils.set_random_seed (rng_utils_test.py)", function()
  local function model_output()
    local model = klua.Sequential { klua.Input { shape = { 10 } }, klua.layers.Dense(10), klua.layers.Dropout(0.5), klua.layers.Dense(10) }
    return model:predict { x = klua.random.uniform { 32, 10 }, batch_size = 16, verbose = 0 }
  end

  it("makes models and draws repeat after re-seeding, and differ otherwise (test_set_random_seed_with_seed_generator)", function()
    local saved = klua.random.get_state()
    U.set_random_seed(42)
    local y1 = model_output()
    local y2 = model_output()
    assert.is_true(helpers.max_abs_diff(y1, y2) > 1e-3)
    U.set_random_seed(42)
    near(model_output(), y1, 0)
    U.set_random_seed(1337)
    assert.is_true(helpers.max_abs_diff(model_output(), y1) > 1e-3)
    assert.equal(1337, U.get_random_seed())
    U.set_random_seed(42)
    local r1 = math.random()
    U.set_random_seed(42)
    assert.equal(r1, math.random())                                   -- Lua's own generator too
    klua.random.set_state(saved)
  end)

  it("wants an integer seed, as Keras", function()
    raises("Expected `seed` argument to be an integer%. Received: seed=1%.5", U.set_random_seed, 1.5)
    raises("Received: seed=abc %(of type string%)", U.set_random_seed, "abc")
  end)
end)
