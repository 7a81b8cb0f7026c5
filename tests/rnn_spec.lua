-- rnn_spec.lua — SimpleRNN, LSTM, GRU, Bidirectional, TimeDistributed and
-- MultiHeadAttention against PyTorch reference values (tests/fixtures/rnn_ref.lua,
-- inputs from fixtures/det.lua): outputs, states, gradients through time, masks,
-- go_backwards, configs and error messages.
local klua = require("klua")
local ops = klua.ops
local L = klua.layers
local ref = require("fixtures.rnn_ref")
local fx = require("fixtures.det")
local det, near = fx.det, fx.near
local helpers = require("helpers")
local err_of, with_weights, max_abs_diff = helpers.err_of, helpers.with_weights, helpers.max_abs_diff

local N, T, D, U = 2, 5, 3, 4
local MASK = { { 1, 1, 1, 0, 0 }, { 1, 0, 1, 1, 1 } }

-- Gradients of sum(out * det(out, wseed)) with respect to x and the layer's weights.
local function grads_of(layer, x, wseed)
  local tape = klua.GradientTape()
  tape:start()
  tape:watch(x)
  local y = layer(x)
  local loss = ops.sum(y * det(y:shape(), wseed))
  tape:stop()
  local g = tape:gradient(loss, { x, layer.weights[1], layer.weights[2], layer.weights[3] })
  return y, g
end

describe("LSTM", function()
  local function lstm(kw)
    return with_weights(L.LSTM(U, kw), { N, T, D }, { det({ D, 4 * U }, 2, 0.5), det({ U, 4 * U }, 3, 0.5), det({ 4 * U }, 4, 0.5) })
  end

  it("matches PyTorch: sequence, final h and c, and the gradients through time", function()
    local r = ref.lstm
    local layer = lstm({ return_sequences = true, return_state = true })
    local x = det({ N, T, D }, 1)
    local tape = klua.GradientTape()
    tape:start()
    tape:watch(x)
    local seq, h, c = layer(x)
    local loss = ops.sum(seq * det({ N, T, U }, 5)) + ops.sum(c * det({ N, U }, 6))
    tape:stop()
    near(seq, r.seq, 1e-5, "seq")
    near(h, r.h, 1e-5, "h")
    near(c, r.c, 1e-5, "c")
    local g = tape:gradient(loss, { x, layer.kernel, layer.recurrent_kernel, layer.bias })
    near(g[1], r.dx, 1e-4, "dx")
    near(g[2], r.dkernel, 1e-4, "dkernel")
    near(g[3], r.drecurrent, 1e-4, "drecurrent")
    near(g[4], r.dbias, 1e-4, "dbias")
  end)

  it("returns the last output by default", function()
    local y = lstm()(det({ N, T, D }, 1))
    assert.are.same({ N, U }, y:shape())
    near(y, ref.lstm.h, 1e-5)
  end)

  it("runs backwards over a masked sequence from a given initial state, as Keras", function()
    local r = ref.lstm_backwards_masked
    local layer = lstm({ return_sequences = true, return_state = true, go_backwards = true })
    local seq, h, c = layer(det({ N, T, D }, 1), { mask = klua.tensor(MASK), initial_state = { det({ N, U }, 7, 0.5), det({ N, U }, 8, 0.5) } })
    near(seq, r.seq, 1e-5, "seq")     -- zeros before the first unmasked step, then carried
    near(h, r.h, 1e-5, "h")
    near(c, r.c, 1e-5, "c")
  end)

  it("starts the forget gate's bias at one (unit_forget_bias)", function()
    local layer = L.LSTM(2)
    layer:build({ 1, 3, 4 })
    assert.are.same({ 0, 0, 1, 1, 0, 0, 0, 0 }, layer.bias:totable())
    assert.are.same({ 4, 8 }, layer.kernel:shape())
    assert.are.same({ 2, 8 }, layer.recurrent_kernel:shape())
    assert.are.equal(3, #layer.trainable_weights)
  end)

  it("applies input dropout only when training", function()
    klua.random.seed(3)
    local layer = lstm({ dropout = 0.5 })
    local x = det({ N, T, D }, 1)
    near(layer(x), ref.lstm.h, 1e-5, "inference")
    local diff = max_abs_diff(layer(x, { training = true }), layer(x))
    assert.is_true(diff > 1e-3)
  end)

  it("computes output shapes and passes the mask on only with return_sequences", function()
    assert.are.same({ -1, 8 }, L.LSTM(8):compute_output_shape({ -1, 10, 3 }))
    assert.are.same({ { -1, 10, 8 }, { -1, 8 }, { -1, 8 } },
      L.LSTM(8, { return_sequences = true, return_state = true }):compute_output_shape({ -1, 10, 3 }))
    local m = klua.tensor(MASK)
    assert.is_nil(L.LSTM(2):compute_mask(nil, m))
    assert.are.equal(m, L.LSTM(2, { return_sequences = true }):compute_mask(nil, m))
  end)

  it("round-trips its config", function()
    local layer = L.LSTM(6, { return_sequences = true, go_backwards = true, unit_forget_bias = false, activation = "relu" })
    local copy = L.LSTM.from_config(layer:get_config())
    assert.are.equal(6, copy.units)
    assert.is_true(copy.return_sequences)
    assert.is_true(copy.go_backwards)
    assert.is_false(copy.unit_forget_bias)
    assert.are.equal("relu", copy:get_config().activation)
    assert.are.equal("sigmoid", copy:get_config().recurrent_activation)
  end)

  it("names the layer and the shapes in its errors", function()
    local layer = L.LSTM(3, { name = "enc" })
    layer(klua.zeros({ 2, 4, 5 }))
    assert.matches("LSTM 'enc': expected 5 input features %(last axis%), got input shape %(2,4,6%)", err_of(layer, klua.zeros({ 2, 4, 6 })))
    assert.matches("LSTM 'enc': expected an input of rank 3 %(batch, timesteps, features%), got shape %(2,4%)", err_of(layer, klua.zeros({ 2, 4 })))
    assert.matches("LSTM 'enc': expected a mask of shape %(2,4%), got %(2,3%)", err_of(layer, klua.zeros({ 2, 4, 5 }), { mask = klua.ones({ 2, 3 }) }))
    assert.matches("initial_state%[1%] must have shape %(2,3%), got %(3,3%)",
      err_of(layer, klua.zeros({ 2, 4, 5 }), { initial_state = { klua.zeros({ 3, 3 }), klua.zeros({ 2, 3 }) } }))
    assert.matches("units must be a positive integer. Received: units=0", err_of(L.LSTM, 0))
    assert.matches("activation softplus is not supported by the fused recurrent kernel", err_of(L.LSTM, 2, { activation = "softplus" }))
    assert.matches("recurrent_dropout must be a number in %[0, 1%)", err_of(L.LSTM, 2, { recurrent_dropout = 1.2 }))
  end)

  it("refuses inconsistent weights at the op level", function()
    local nn = require("klua.nn")
    local z = klua.zeros
    assert.matches("lstm: expected kernel %(3,16%), got %(3,12%)",
      err_of(nn.rnn, "lstm", { z({ 2, 5, 3 }), z({ 3, 12 }), z({ 4, 16 }), z({ 16 }), z({ 2, 4 }), z({ 2, 4 }) }, {}))
  end)
end)

describe("masks from Embedding(mask_zero)", function()
  it("make an LSTM ignore the padding: the final state equals the unpadded sequence's", function()
    local emb = L.Embedding(10, 3, { mask_zero = true })
    local lstm = L.LSTM(4)
    local padded = lstm(emb(klua.tensor({ { 1, 2, 0, 0 }, { 3, 4, 5, 0 } })))
    local short1 = lstm(emb(klua.tensor({ { 1, 2 } })))
    local short2 = lstm(emb(klua.tensor({ { 3, 4, 5 } })))
    assert.is_true(max_abs_diff(ops.slice_axis(padded, 1, 1, 1), short1) < 1e-6)
    assert.is_true(max_abs_diff(ops.slice_axis(padded, 1, 2, 2), short2) < 1e-6)
  end)

  it("flow through LSTM(return_sequences) into GlobalAveragePooling1D", function()
    local emb = L.Embedding(10, 3, { mask_zero = true })
    local lstm = L.LSTM(4, { return_sequences = true })
    local seq = lstm(emb(klua.tensor({ { 1, 2, 0, 0 } })))
    local pooled = L.GlobalAveragePooling1D()(seq)
    local want = ops.mean(ops.slice_axis(seq, 2, 1, 2), 2)
    assert.is_true(max_abs_diff(pooled, want) < 1e-6)
  end)
end)

describe("an LSTM regressor", function()
  it("trains: a few gradient steps lower its loss", function()
    klua.random.seed(11)
    local lstm, dense = L.LSTM(8), L.Dense(1)
    local x, target = klua.random.normal({ 16, 6, 2 }), klua.random.normal({ 16, 1 })
    local function loss_fn() return ops.mean(ops.abs(dense(lstm(x)) - target)) end
    local first
    for _ = 1, 30 do
      local tape = klua.GradientTape()
      local loss = tape:record(loss_fn)
      first = first or loss:item()
      local ws = { lstm.kernel, lstm.recurrent_kernel, lstm.bias, dense.kernel, dense.bias }
      local g = tape:gradient(loss, ws)
      for i, w in ipairs(ws) do w:assign_sub(g[i] * 0.05) end
    end
    assert.is_true(loss_fn():item() < first * 0.9)
  end)
end)

describe("the fused recurrent kernels", function()
  -- Large enough that each thread runs the time loop over its own batch rows.
  for _, case in ipairs { { "LSTM", 4 }, { "GRU", 3 }, { "SimpleRNN", 1 } } do
    it("give the same values and gradients on one thread and on two (" .. case[1] .. ")", function()
      local name, gates = case[1], case[2]
      local n, t, d, u = 64, 16, 8, 32
      local x = det({ n, t, d }, 1)
      local mask = ops.cast(ops.greater(det({ n, t }, 2), -0.8))
      local function run(threads)
        klua.set_num_threads(threads)
        local layer = with_weights(L[name](u, { return_sequences = true }), { n, t, d },
          { det({ d, gates * u }, 3, 0.3), det({ u, gates * u }, 4, 0.3), det(name == "GRU" and { 2, 3 * u } or { gates * u }, 5, 0.3) })
        local tape = klua.GradientTape()
        tape:start()
        tape:watch(x)
        local y = layer(x, { mask = mask })
        local loss = ops.sum(y * det(y:shape(), 6))
        tape:stop()
        local g = tape:gradient(loss, { x, layer.weights[1], layer.weights[2], layer.weights[3] })
        return y, g
      end
      local threads = klua.set_num_threads(1)   -- the setting to restore ("auto" by default)
      local y1, g1 = run(1)
      local y2, g2 = run(2)
      klua.set_num_threads(threads)
      assert.is_true(max_abs_diff(y1, y2) < 1e-6)
      for i = 1, 4 do assert.is_true(max_abs_diff(g1[i], g2[i]) < 1e-4 * (1 + ops.max(ops.abs(g1[i])):item())) end
    end)
  end
end)

describe("GRU", function()
  local function gru(kw)
    return with_weights(L.GRU(U, kw), { N, T, D }, { det({ D, 3 * U }, 12, 0.5), det({ U, 3 * U }, 13, 0.5), det({ 2, 3 * U }, 14, 0.5) })
  end

  it("matches PyTorch (reset_after, gates z r h mapped to r z n), gradients included", function()
    local r = ref.gru
    local y, g = grads_of(gru({ return_sequences = true }), det({ N, T, D }, 11), 15)
    near(y, r.seq, 1e-5, "seq")
    near(g[1], r.dx, 1e-4, "dx")
    near(g[2], r.dkernel, 1e-4, "dkernel")
    near(g[3], r.drecurrent, 1e-4, "drecurrent")
    near(g[4], r.dbias, 1e-4, "dbias")
  end)

  it("runs backwards over a masked sequence", function()
    local seq, h = gru({ return_sequences = true, return_state = true, go_backwards = true })(det({ N, T, D }, 11), { mask = klua.tensor(MASK) })
    near(seq, ref.gru_backwards_masked.seq, 1e-5, "seq")
    near(h, ref.gru_backwards_masked.h, 1e-5, "h")
  end)

  it("has a (2, 3*units) bias by default and a (3*units,) one with reset_after=false", function()
    local layer = L.GRU(3)
    layer:build({ 1, 2, 5 })
    assert.are.same({ 2, 9 }, layer.bias:shape())
    local classic = L.GRU(3, { reset_after = false })
    classic:build({ 1, 2, 5 })
    assert.are.same({ 9 }, classic.bias:shape())
    assert.is_true(L.GRU.from_config(layer:get_config()).reset_after)
  end)
end)

describe("SimpleRNN", function()
  local function rnn(kw)
    return with_weights(L.SimpleRNN(U, kw), { N, T, D }, { det({ D, U }, 22, 0.5), det({ U, U }, 23, 0.5), det({ U }, 24, 0.5) })
  end

  it("matches PyTorch, gradients included", function()
    local r = ref.simple_rnn
    local y, g = grads_of(rnn({ return_sequences = true }), det({ N, T, D }, 21), 25)
    near(y, r.seq, 1e-5, "seq")
    near(g[1], r.dx, 1e-4, "dx")
    near(g[2], r.dkernel, 1e-4, "dkernel")
    near(g[3], r.drecurrent, 1e-4, "drecurrent")
    near(g[4], r.dbias, 1e-4, "dbias")
  end)

  it("carries its state over masked steps with a relu activation", function()
    local seq, h = rnn({ activation = "relu", return_sequences = true, return_state = true })(det({ N, T, D }, 21), { mask = klua.tensor(MASK) })
    near(seq, ref.simple_rnn_relu_masked.seq, 1e-5, "seq")
    near(h, ref.simple_rnn_relu_masked.h, 1e-5, "h")
  end)

  it("works without a bias", function()
    local layer = L.SimpleRNN(2, { use_bias = false })
    assert.are.same({ 3, 2 }, layer(klua.ones({ 3, 4, 5 })):shape())
    assert.are.equal(2, #layer.weights)
  end)
end)

describe("Bidirectional", function()
  it("concatenates a forward and a backward LSTM as Keras, zeros at masked steps", function()
    local bi = L.Bidirectional(L.LSTM(U, { return_sequences = true }))
    bi:build({ N, T, D })
    bi:set_weights({ det({ D, 4 * U }, 32, 0.5), det({ U, 4 * U }, 33, 0.5), det({ 4 * U }, 34, 0.5),
      det({ D, 4 * U }, 35, 0.5), det({ U, 4 * U }, 36, 0.5), det({ 4 * U }, 37, 0.5) })
    local y = bi(det({ N, T, D }, 31), { mask = klua.tensor(MASK) })
    near(y, ref.bidirectional_lstm_concat.y, 1e-5)
  end)

  it("merges by sum, returns both directions' states, and round-trips its config", function()
    local bi = L.Bidirectional(L.GRU(3, { return_state = true }), { merge_mode = "sum" })
    local y, hf, hb = bi(klua.ones({ 2, 4, 5 }))
    assert.are.same({ 2, 3 }, y:shape())
    assert.are.same({ 2, 3 }, hf:shape())
    assert.are.same({ 2, 3 }, hb:shape())
    assert.is_true(max_abs_diff(y - hf, hb) < 1e-6)
    assert.are.equal(6, #bi.weights)
    assert.matches("^forward_gru", bi.forward_layer.name)
    assert.is_true(bi.backward_layer.go_backwards)
    local copy = L.Bidirectional.from_config(bi:get_config())
    assert.are.equal("sum", copy.merge_mode)
    assert.is_true(copy.backward_layer.go_backwards)
    assert.are.same({ { 2, 3 }, { 2, 3 }, { 2, 3 } }, bi:compute_output_shape({ 2, 4, 5 }))
    assert.matches("merge_mode must be one of", err_of(L.Bidirectional, L.GRU(3), { merge_mode = "max" }))
  end)
end)

describe("TimeDistributed", function()
  it("applies a Dense layer to every timestep", function()
    local dense = L.Dense(3)
    local td = L.TimeDistributed(dense)
    local x = det({ 2, 4, 5 }, 3)
    local y = td(x)
    assert.are.same({ 2, 4, 3 }, y:shape())
    local direct = ops.matmul(x, dense.kernel) + dense.bias
    assert.is_true(max_abs_diff(y, direct) < 1e-6)
    assert.are.equal(2, #td.weights)
    assert.are.same({ -1, 4, 3 }, td:compute_output_shape({ -1, 4, 5 }))
  end)

  it("applies a Conv2D to every frame", function()
    local td = L.TimeDistributed(L.Conv2D(2, 3))
    assert.are.same({ 2, 3, 4, 4, 2 }, td(klua.ones({ 2, 3, 6, 6, 1 })):shape())
  end)
end)

describe("MultiHeadAttention", function()
  local B, Tq, Tv, Dq, Dv, H, K = 2, 3, 4, 4, 5, 2, 3

  it("matches Keras's formulation: weights, scaling, masked softmax and output projection", function()
    local mha = L.MultiHeadAttention(H, K)
    mha:build({ B, Tq, Dq }, { B, Tv, Dv })
    mha:set_weights({ det({ Dq, H, K }, 43, 0.5), det({ H, K }, 44, 0.5), det({ Dv, H, K }, 45, 0.5), det({ H, K }, 46, 0.5),
      det({ Dv, H, K }, 47, 0.5), det({ H, K }, 48, 0.5), det({ H, K, Dq }, 49, 0.5), det({ Dq }, 50, 0.5) })
    local m = {}
    for b = 1, B do m[b] = {} for t = 1, Tq do m[b][t] = b == 1 and { 1, 1, 0, 1 } or { 1, 1, 1, 0 } end end
    local y, scores = mha(det({ B, Tq, Dq }, 41), det({ B, Tv, Dv }, 42),
      { attention_mask = klua.tensor(m), return_attention_scores = true })
    near(y, ref.multi_head_attention.y, 1e-5, "output")
    near(scores, ref.multi_head_attention.scores, 1e-5, "scores")
  end)

  it("names its weights as Keras and supports self-attention with a causal mask", function()
    local mha = L.MultiHeadAttention(2, 4, { name = "att" })
    local x = det({ 1, 3, 6 }, 1)
    local y, s = mha(x, x, { use_causal_mask = true, return_attention_scores = true })
    assert.are.same({ 1, 3, 6 }, y:shape())
    assert.are.equal(0, s:get(1, 1, 1, 2))          -- the first query sees only the first key
    assert.are.equal(0, s:get(1, 2, 2, 3))
    local names = {}
    for i, w in ipairs(mha.weights) do names[i] = w.name end
    assert.are.same({ "query/kernel", "query/bias", "key/kernel", "key/bias", "value/kernel", "value/bias",
      "attention_output/kernel", "attention_output/bias" }, names)
    assert.are.same({ 6, 2, 4 }, mha.weights[1]:shape())
    assert.are.same({ 2, 4, 6 }, mha.weights[7]:shape())
    local copy = L.MultiHeadAttention.from_config(mha:get_config())
    assert.are.equal(2, copy.num_heads)
    assert.are.equal(4, copy.key_dim)
    assert.matches("num_heads must be a positive integer. Received: num_heads=0", err_of(L.MultiHeadAttention, 0, 4))
  end)

  it("trains: gradients reach every weight", function()
    local mha = L.MultiHeadAttention(2, 2)
    local q, v = det({ 2, 3, 4 }, 1), det({ 2, 5, 4 }, 2)
    mha(q, v)
    local tape = klua.GradientTape()
    local loss = tape:record(function() return ops.sum(ops.square(mha(q, v))) end)
    local g = tape:gradient(loss, mha.trainable_weights)
    assert.are.equal(8, g.n)
    for i = 1, 8 do assert.is_not_nil(g[i]) end
  end)
end)
