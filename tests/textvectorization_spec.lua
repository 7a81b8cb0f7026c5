-- textvectorization_spec.lua — klua.layers.TextVectorization against Keras's
-- keras/src/layers/preprocessing/text_vectorization_test.py (the test named
-- in each case; inputs and expected outputs are Keras's), plus what Lua adds:
-- strings in, float32 tensors out, the config round trip through JSON, and
-- errors that say how to use the layer.
local klua = require("klua")
local json = require("klua.json")
local helpers = require("helpers")
local TV = klua.layers.TextVectorization
local raises, near = helpers.raises, helpers.near

local function vocab_of(layer) return table.concat(layer:get_vocabulary(), "|") end

describe("TextVectorization in int mode (Keras's text_vectorization_test.py)", function()
  it("learns a vocabulary with adapt and maps unknown words to 1, padding to 0 (test_adapt_flow)", function()
    local layer = TV { max_tokens = 5000, output_mode = "int", output_sequence_length = 4 }
    layer:adapt { "foo bar", "bar baz", "baz bada boom" }
    near(layer { { "foo qux bar" }, { "qux baz" } }, { { 4, 1, 3, 0 }, { 1, 2, 0, 0 } }, 0)
    -- by count, ties by the token from high to low (index_lookup.py's lexsort)
    assert.equal("|[UNK]|baz|bar|foo|boom|bada", vocab_of(layer))
  end)

  it("takes a fixed vocabulary, or one set later (test_fixed_vocabulary, test_set_vocabulary)", function()
    local layer = TV { max_tokens = 5000, output_sequence_length = 4, vocabulary = { "baz", "bar", "foo" } }
    near(layer { { "foo qux bar" }, { "qux baz" } }, { { 4, 1, 3, 0 }, { 1, 2, 0, 0 } }, 0)
    layer = TV { max_tokens = 5000, output_sequence_length = 4 }
    layer:set_vocabulary { "baz", "bar", "foo" }
    near(layer { "foo qux bar", "qux baz" }, { { 4, 1, 3, 0 }, { 1, 2, 0, 0 } }, 0)
  end)

  it("adapts from a generator of batches, at most `steps` of them (test_adapt_with_generator, ..._and_steps)", function()
    local batches = { { "hello world", "foo bar" }, { "baz qux", "hello foo" } }
    local i = 0
    local layer = TV()
    layer:adapt(function() i = i + 1; return batches[i] end)
    assert.equal("|[UNK]|hello|foo|world|qux|baz|bar", vocab_of(layer))
    layer = TV()
    layer:adapt(function() return { "hello world", "foo bar" } end, { steps = 3 })
    assert.equal("|[UNK]|world|hello|foo|bar", vocab_of(layer))
  end)

  it("standardizes: lower + strip punctuation, lower only, strip only, none, or a function", function()
    -- test_lower_and_strip_punctuation_standardization
    local out = TV { vocabulary = { "hello", "world", "this", "is", "nice", "test" } } { "Hello, World!. This is just a nice test!" }
    near(out, { { 2, 3, 4, 5, 1, 1, 6, 7 } }, 0)
    -- test_lower_standardization
    out = TV { standardize = "lower", vocabulary = { "hello,", "hello", "world", "this", "is", "nice", "test" } }
      { "Hello, World!. This is just a nice test!" }
    near(out, { { 2, 1, 5, 6, 1, 1, 7, 1 } }, 0)
    -- test_strip_punctuation_standardization, test_no_standardization (Keras's None is false)
    near(TV { standardize = "strip_punctuation", vocabulary = { "Hello", "World", "Test" } } { "Hello, World! Test." },
      { { 2, 3, 4 } }, 0)
    near(TV { standardize = false, vocabulary = { "Hello", "world" } } { "Hello hello" }, { { 2, 1 } }, 0)
    -- test_custom_standardize_callable: a Lua function of one string
    near(TV { standardize = function(s) return (s:gsub("-", " ")) end, vocabulary = { "foo", "bar" } } { "foo-bar" },
      { { 2, 3 } }, 0)
  end)

  it("splits on whitespace, into UTF-8 characters, not at all, or with a function", function()
    near(TV { split = "character", vocabulary = { "a", "b", "c", "d", "e" } } { "abcf" }, { { 2, 3, 4, 1 } }, 0)   -- test_char_splitting
    near(TV { split = "character", vocabulary = { "\195\169" } } { "\195\169t\195\169" }, { { 2, 1, 2 } }, 0)      -- é is one character
    local bars = function(s)
      local out = {}
      for w in s:gmatch("[^|]+") do out[#out + 1] = w end
      return out
    end
    -- test_custom_splitting: the default standardize strips "|" first, so "foobar" (index 4) is left
    near(TV { split = bars, vocabulary = { "foo", "bar", "foobar" } } { "foo|bar" }, { { 4 } }, 0)
    near(TV { split = bars, standardize = false, vocabulary = { "foo", "bar", "foobar" } } { "foo|bar" }, { { 2, 3 } }, 0)
    -- test_no_split: each string is one token
    near(TV { split = false, vocabulary = { "foo", "bar", "baz" } } { { "foo" }, { "bar" }, { "unknown" } },
      { { 2 }, { 3 }, { 1 } }, 0)
    near(TV { vocabulary = { "a" } } { "  a \t\n b  a " }, { { 2, 1, 2 } }, 0)   -- runs of whitespace split once
  end)

  it("makes n-grams: up to n, or the widths listed (test_ngrams_integer, test_ngrams_tuple)", function()
    local layer = TV { ngrams = 2 }
    layer:adapt { "foo bar baz" }
    assert.equal("|[UNK]|foo bar|foo|baz|bar baz|bar", vocab_of(layer))
    layer = TV { ngrams = { 1, 3 } }
    layer:adapt { "foo bar baz" }
    assert.equal("|[UNK]|foo bar baz|foo|baz|bar", vocab_of(layer))
  end)

  it("caps the vocabulary at max_tokens, padding and [UNK] included (test_max_tokens)", function()
    local layer = TV { max_tokens = 5 }
    layer:adapt { "a b c d e f g h i j" }
    assert.equal(5, #layer:get_vocabulary())
  end)

  it("reports its vocabulary and size with or without the special tokens (test_get_vocabulary, ...)", function()
    local layer = TV { vocabulary = { "foo", "bar", "baz" } }
    assert.same({ "", "[UNK]", "foo", "bar", "baz" }, layer:get_vocabulary())
    assert.same({ "foo", "bar", "baz" }, layer:get_vocabulary(false))
    assert.equal(5, layer:vocabulary_size())
  end)

  it("reads a vocabulary file, one term a line (test_vocabulary_from_file)", function()
    local dir = helpers.tmpdir()
    helpers.write_file(dir .. "/vocab.txt", "foo\nbar\nbaz\n")
    near(TV { vocabulary = dir .. "/vocab.txt" } { "foo bar baz unknown" }, { { 2, 3, 4, 1 } }, 0)
    helpers.remove_tree(dir)
  end)

  it("gives float32 tensors: 1-D for one string, rows padded to the longest without output_sequence_length", function()
    local layer = TV { vocabulary = { "a", "b" } }
    near(layer("a b a"), { 2, 3, 2 }, 0)
    local out = layer { "a", "b a b c" }
    assert.same({ 2, 4 }, out:shape())
    near(out, { { 2, 0, 0, 0 }, { 3, 2, 3, 1 } }, 0)
    near(TV { vocabulary = { "a" }, output_sequence_length = 2 } { "a a a" }, { { 2, 2 } }, 0)   -- cut at the end
  end)
end)

describe("TextVectorization in multi_hot, count and tf_idf modes", function()
  it("marks, counts or weighs each vocabulary entry per string, [UNK] at index 0 (Keras's tests)", function()
    -- test_multi_hot_output, test_output_mode_count_output, test_output_mode_tf_idf_output
    near(TV { output_mode = "multi_hot", vocabulary = { "foo", "bar", "baz" } } { { "foo bar" }, { "baz foo foo" } },
      { { 0, 1, 1, 0 }, { 0, 1, 0, 1 } }, 0)
    near(TV { output_mode = "count", vocabulary = { "foo", "bar", "baz" } } { "foo bar", "baz foo foo" },
      { { 0, 1, 1, 0 }, { 0, 2, 0, 1 } }, 0)
    near(TV { output_mode = "tf_idf", vocabulary = { "foo", "bar", "baz" }, idf_weights = { 0.3, 0.5, 0.2 } }
      { "foo bar", "baz foo foo" }, { { 0, 0.3, 0.5, 0 }, { 0, 0.6, 0, 0.2 } }, 1e-6)
    near(TV { output_mode = "count", vocabulary = { "a" } } { "b c a" }, { { 2, 1 } }, 0)   -- unknown words count at 0
  end)

  it("pads the feature axis to max_tokens on request (test_pad_to_max_tokens)", function()
    local out = TV { output_mode = "multi_hot", vocabulary = { "foo", "bar" }, max_tokens = 8, pad_to_max_tokens = true } { "foo bar" }
    assert.same({ 1, 8 }, out:shape())
    near(out, { { 0, 1, 1, 0, 0, 0, 0, 0 } }, 0)
  end)

  it("learns idf = log(1 + documents / (1 + documents with the term)), [UNK] the mean (index_lookup.py)", function()
    local layer = TV { max_tokens = 100, output_mode = "tf_idf" }
    layer:adapt { "foo bar", "bar baz", "baz bada boom" }
    assert.same({ "[UNK]", "baz", "bar", "foo", "boom", "bada" }, layer:get_vocabulary())
    local l2, l15 = math.log(2), math.log(2.5)
    local unk = (2 * l2 + 3 * l15) / 5
    near(layer { "foo foo qux", "bada" }, { { unk, 0, 0, 2 * l15, 0, 0 }, { 0, 0, 0, 0, 0, l15 } }, 1e-6)
  end)

  it("needs a vocabulary before a call, as Keras", function()
    raises("When using `output_mode=multi_hot` and `pad_to_max_tokens=False`, you must set the layer's vocabulary",
      function() return TV { output_mode = "multi_hot" } { "a" } end)
  end)
end)

describe("TextVectorization's config", function()
  it("round-trips through JSON, a learned vocabulary and idf weights included (test_config, test_save_load_tf_idf_mode)", function()
    local given = TV { output_mode = "int", vocabulary = { "one", "two" }, output_sequence_length = 5 }
    local config = given:get_config()
    assert.same({ "one", "two" }, config.vocabulary)
    assert.equal(5, config.output_sequence_length)
    assert.same(config, TV.from_config(json.decode(json.encode(config))):get_config())
    local texts = { "foo bar", "bar baz", "baz bada boom" }
    for _, mode in ipairs { "int", "tf_idf", "count" } do
      local layer = TV { max_tokens = 100, output_mode = mode }
      layer:adapt(texts)
      local again = TV:from_config(json.decode(json.encode(layer:get_config())))
      assert.same(layer:get_vocabulary(), again:get_vocabulary())
      near(again(texts), layer(texts), 0)
      again:adapt { "x y" }                  -- a learned vocabulary can be learned again
      assert.same({ "x", "y" }, { again:get_vocabulary(false)[2], again:get_vocabulary(false)[1] })
    end
  end)
end)

describe("TextVectorization's errors", function()
  it("reject Keras's invalid arguments with Keras's messages", function()
    raises("`ngrams` must be nil, an integer, or a list of integers%. Received: ngrams='invalid'", TV, { ngrams = "invalid" })
    raises("`output_sequence_length` must not be set if `output_mode` is not 'int'", TV,
      { output_mode = "multi_hot", output_sequence_length = 5 })
    raises("output_mode must be one of", TV, { output_mode = "bag" })
    raises("When specifying the `vocabulary` argument, in TF%-IDF output mode, the `idf_weights` argument must also be provided",
      TV, { output_mode = "tf_idf", vocabulary = { "a" } })
    raises("The passed vocabulary has at least one repeated term%. .* The repeated terms are: 'a'", TV, { vocabulary = { "a", "b", "a" } })
    raises("Attempted to set a vocabulary larger than the maximum vocab size%. Received vocabulary size is 5; `max_tokens` is 4",
      TV, { vocabulary = { "a", "b", "c" }, max_tokens = 4 })
    raises("Cannot adapt layer '.-' after setting a static vocabulary", function() TV { vocabulary = { "a" } }:adapt { "b" } end)
    raises("`ragged=true` is not supported", TV, { ragged = true })
  end)

  it("say how to use the layer when given tensors or symbolic inputs", function()
    local layer = TV { vocabulary = { "a" } }
    raises("takes Lua strings %(a string or a list of strings%), not tensors", layer, klua.tensor { 1, 2 })
    raises("call it on the texts before the model", function()
      return klua.Sequential { klua.Input { shape = { 1 } }, TV { vocabulary = { "a" } } }
    end)
    raises("expected strings; item 2 is 3", layer, { "a", 3 })
    raises("the input rank must be 1 or the last shape dimension must be 1", layer, { { "a", "b" } })
  end)
end)
