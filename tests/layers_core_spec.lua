-- layers_core_spec.lua — the built-in core layers against reference outputs
-- for fixed weights and inputs (tests/fixtures/layers_core.lua, generated
-- with PyTorch by tests/fixtures/layers_core.py), and their gradients against
-- central finite differences.
local klua = require("klua")
local ops = klua.ops
local L = klua.layers
local ref = require("fixtures.layers_core")

local helpers = require("helpers")
local near, raises, max_abs_diff = helpers.near, helpers.raises, helpers.max_abs_diff

-- Gradients of sum(layer(x) * w) with respect to x and every trainable weight,
-- against central differences (float32: eps 1e-2, as tests/gradcheck_spec.lua).
local EPS, RTOL, ATOL = 1e-2, 2e-2, 2e-3
local function check_gradients(layer, x, kw)
  kw = kw or {}
  layer(x, kw)   -- build
  local out0 = layer(x, kw)
  local n = out0:numel()
  local wt = {}
  for i = 1, n do wt[i] = 0.5 + (i % 7) / 7 end
  local wtensor = klua.tensor(wt):reshape(out0:shape())
  local function loss_value()
    local y = layer(x, kw):contiguous()
    local s = 0
    for i = 0, n - 1 do s = s + y.data[i] * wt[i + 1] end
    return s
  end
  local sources = { x }
  for _, v in ipairs(layer.trainable_weights) do sources[#sources + 1] = v end
  local tape = klua.GradientTape()
  tape:start()
  tape:watch(x)
  local loss = ops.sum(layer(x, kw) * wtensor)
  tape:stop()
  local grads = tape:gradient(loss, sources)
  for s, src in ipairs(sources) do
    if not (kw.skip_input and s == 1) then
      local g = grads[s]
      assert(g ~= nil, "no gradient for source " .. s)
      g = g:contiguous()
      for j = 0, src:numel() - 1 do
        local orig = src.data[j]
        src.data[j] = orig + EPS
        local lp = loss_value()
        src.data[j] = orig - EPS
        local lm = loss_value()
        src.data[j] = orig
        local numeric, analytic = (lp - lm) / (2 * EPS), g.data[j]
        if math.abs(numeric - analytic) > ATOL + RTOL * math.abs(numeric) then
          error(("%s: d/dsource%d[%d] analytic %.6g vs numeric %.6g"):format(layer.name, s, j, analytic, numeric), 0)
        end
      end
    end
  end
end

describe("Dense", function()
  it("computes activation(x · kernel + bias) like the reference", function()
    local d = L.Dense(5, { activation = "relu" })
    d(klua.zeros { 1, 4 })
    d:set_weights({ ref.dense_w, ref.dense_b })
    near(d(klua.tensor(ref.dense_x)), ref.dense_relu)
    local lin = L.Dense { units = 5 }
    lin(klua.zeros { 1, 4 })
    lin:set_weights({ ref.dense_w, ref.dense_b })
    near(lin(klua.tensor(ref.dense_x3)), ref.dense_linear3)
  end)

  it("uses glorot_uniform kernels and zero biases by default, and round-trips its config", function()
    klua.random.seed(3)
    local d = L.Dense(64, { activation = "tanh", kernel_regularizer = "l2", use_bias = true })
    d(klua.zeros { 1, 32 })
    local limit = math.sqrt(6 / (32 + 64))
    assert(ops.max(ops.abs(d.kernel)):item() <= limit)
    assert.are.equal(0, ops.max(ops.abs(d.bias)):item())
    local config = d:get_config()
    assert.are.equal("tanh", config.activation)
    assert.are.same({ class_name = "GlorotUniform", config = {} }, config.kernel_initializer)
    assert.are.same({ class_name = "L2", config = { l2 = 0.01 } }, config.kernel_regularizer)
    local d2 = L.Dense.from_config(config)
    assert.are.same(config, d2:get_config())
  end)

  it("rejects inputs of rank 1 and wrong widths", function()
    local d = L.Dense(3, { name = "dd" })
    raises("Dense 'dd': expected an input of rank >= 2, got shape %(4,%)", d, klua.ones { 4 })
    d(klua.ones { 2, 4 })
    raises("Dense 'dd': expected last input dimension 4, got 5", d, klua.ones { 2, 5 })
  end)

  it("has gradients matching finite differences", function()
    klua.random.seed(5)
    check_gradients(L.Dense(3, { activation = "gelu", bias_initializer = "random_normal" }), klua.random.normal({ 2, 4 }))
    check_gradients(L.Dense(2), klua.random.normal({ 2, 3, 4 }))
  end)
end)

describe("BatchNormalization", function()
  local function bn_with_weights(kw)
    local bn = L.BatchNormalization(kw)
    bn(klua.zeros { 1, 3 })
    bn.gamma:assign(klua.tensor(ref.bn_gamma))
    bn.beta:assign(klua.tensor(ref.bn_beta))
    return bn
  end

  it("normalises with the batch statistics in training and updates the moving averages", function()
    local bn = bn_with_weights { momentum = 0.9, epsilon = 1e-3 }
    assert.are.same({ "gamma", "beta", "moving_mean", "moving_variance" },
      (function() local t = {} for i, w in ipairs(bn.weights) do t[i] = w.name end return t end)())
    local x = klua.tensor(ref.bn_x)
    near(bn(x, { training = true }), ref.bn_train, 1e-4)
    near(bn.moving_mean, ref.bn_moving_mean, 1e-5)
    near(bn.moving_variance, ref.bn_moving_var, 1e-5)
  end)

  it("uses the moving statistics in inference and leaves them alone", function()
    local bn = bn_with_weights { momentum = 0.9, epsilon = 1e-3 }
    bn.moving_mean:assign(klua.tensor(ref.bn_moving_mean))
    bn.moving_variance:assign(klua.tensor(ref.bn_moving_var))
    local x = klua.tensor(ref.bn_x)
    near(bn(x), ref.bn_infer, 1e-4)
    near(bn.moving_mean, ref.bn_moving_mean, 1e-6)
    -- a frozen layer runs in inference mode even when training
    bn.trainable = false
    near(bn(x, { training = true }), ref.bn_infer, 1e-4)
    near(bn.moving_mean, ref.bn_moving_mean, 1e-6)
  end)

  it("normalises another axis (channels in the middle) without scale and center", function()
    local bn = L.BatchNormalization { axis = 2, center = false, scale = false }
    local y = bn(klua.tensor(ref.bn_axis2_x), { training = true })
    near(y, ref.bn_axis2_train, 1e-4)
    assert.are.equal(2, #bn.weights)
  end)

  it("has gradients matching finite differences in training and inference", function()
    klua.random.seed(8)
    local bn = L.BatchNormalization { beta_initializer = "random_normal", gamma_initializer = "random_uniform" }
    check_gradients(bn, klua.random.normal({ 5, 3 }), { training = true })
    check_gradients(L.BatchNormalization { axis = 2 }, klua.random.normal({ 3, 2, 2 }), { training = true })
    check_gradients(L.BatchNormalization(), klua.random.normal({ 4, 2 }), { training = false })
  end)

  it("matches the composed formula and its gradients on a large batch (threaded kernels)", function()
    klua.random.seed(12)
    local x = klua.random.normal({ 700, 64 }) * 2 + 1      -- 44800 elements: above the threading threshold
    local bn = L.BatchNormalization { epsilon = 1e-3, gamma_initializer = "random_uniform" }
    local ln = L.LayerNormalization { epsilon = 1e-3, gamma_initializer = "random_uniform" }
    local wt = klua.random.normal({ 700, 64 })
    bn(x)
    ln(x)   -- build both, so their weights exist when the sources are listed
    local function grads(f, sources)
      local tape = klua.GradientTape()
      local loss = tape:record(function() tape:watch(x); return ops.sum(f() * wt) end)
      return tape:gradient(loss, sources)
    end
    -- BatchNormalization: fused vs mean/variance over the batch axis
    local g1 = grads(function() return bn(x, { training = true }) end, { x, bn.gamma, bn.beta })
    local g2 = grads(function()
      local m = ops.mean(x, 1, true)
      local v = ops.mean(ops.square(x - m), 1, true)
      return (x - m) / ops.sqrt(v + 1e-3) * bn.gamma + bn.beta
    end, { x, bn.gamma, bn.beta })
    for i = 1, 3 do assert(max_abs_diff(g1[i], g2[i]) < 1e-3, "batch_norm gradient " .. i) end
    -- LayerNormalization: fused vs mean/variance over the features
    local h1 = grads(function() return ln(x) end, { x, ln.gamma, ln.beta })
    local h2 = grads(function()
      local m = ops.mean(x, -1, true)
      local v = ops.mean(ops.square(x - m), -1, true)
      return (x - m) / ops.sqrt(v + 1e-3) * ln.gamma + ln.beta
    end, { x, ln.gamma, ln.beta })
    for i = 1, 3 do assert(max_abs_diff(h1[i], h2[i]) < 1e-3, "layer_norm gradient " .. i) end
  end)

  it("keeps the batch variance accurate for offset data with an outlier, as a two-pass float64 computation", function()
    -- 20,000 rows around 1000 (std 1) and a first row at 1e4: the moving variance after one step with
    -- momentum 0 is the batch variance; compare it with a two-pass float64 sum over the same floats
    klua.random.seed(21)
    local x = klua.random.normal({ 20000, 3 }) + 1000
    local rows = x:totable()
    rows[1] = { 1e4, -1e4, 1000 }
    x = klua.tensor(rows)
    local bn = L.BatchNormalization { momentum = 0 }
    bn(x, { training = true })
    local mean, var = {}, {}
    for j = 1, 3 do
      local s = 0
      for i = 1, #rows do s = s + rows[i][j] end
      mean[j] = s / #rows
      local v = 0
      for i = 1, #rows do v = v + (rows[i][j] - mean[j]) ^ 2 end
      var[j] = v / #rows
    end
    local got_mean, got_var = bn.moving_mean:totable(), bn.moving_variance:totable()
    for j = 1, 3 do
      assert(math.abs(got_mean[j] - mean[j]) <= 1e-6 * math.abs(mean[j]), ("mean %d: %.9g vs %.9g"):format(j, got_mean[j], mean[j]))
      assert(math.abs(got_var[j] - var[j]) <= 1e-5 * var[j], ("variance %d: %.9g vs %.9g"):format(j, got_var[j], var[j]))
    end
  end)

  it("rejects inputs with another number of features", function()
    local bn = L.BatchNormalization { name = "bn" }
    bn(klua.ones { 2, 3 })
    raises("BatchNormalization 'bn': expected 3 features on axis %-1, got shape %(2,4%)", bn, klua.ones { 2, 4 })
  end)
end)

describe("LayerNormalization", function()
  it("normalises the last axis like the reference", function()
    local ln = L.LayerNormalization()
    ln(klua.zeros { 1, 4 })
    ln:set_weights({ ref.ln_gamma, ref.ln_beta })
    near(ln(klua.tensor(ref.ln_x)), ref.ln_out, 1e-4)
  end)

  it("normalises several trailing axes, and scales by the root mean square with rms_scaling", function()
    local ln = L.LayerNormalization { axis = { 2, 3 }, center = false, scale = false }
    near(ln(klua.tensor(ref.ln3_x)), ref.ln3_out, 1e-4)
    local rms = L.LayerNormalization { rms_scaling = true }
    rms(klua.zeros { 1, 4 })
    assert.are.equal(1, #rms.weights)
    rms:set_weights({ ref.ln_gamma })
    near(rms(klua.tensor(ref.ln_x)), ref.ln_rms, 1e-4)
  end)

  it("has gradients matching finite differences (fused and composed paths)", function()
    klua.random.seed(9)
    check_gradients(L.LayerNormalization { beta_initializer = "random_normal", gamma_initializer = "random_uniform" },
      klua.random.normal({ 3, 4 }))
    check_gradients(L.LayerNormalization { axis = 2 }, klua.random.normal({ 2, 3, 2 }))
    check_gradients(L.LayerNormalization { axis = { 2, 3 } }, klua.random.normal({ 2, 2, 3 }))
  end)
end)

describe("Embedding", function()
  it("gathers rows by 0-based id and masks id 0 with mask_zero", function()
    local e = L.Embedding(5, 3, { mask_zero = true })
    local table_ = { { 0, 0, 0 }, { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 }, { 10, 11, 12 } }
    e:set_weights({ table_ })
    local ids = klua.tensor { { 1, 4, 0 }, { 2, 0, 0 } }
    local y = e(ids)
    assert.are.same({ { { 1, 2, 3 }, { 10, 11, 12 }, { 0, 0, 0 } }, { { 4, 5, 6 }, { 0, 0, 0 }, { 0, 0, 0 } } }, y:totable())
    assert.are.same({ { 1, 1, 0 }, { 1, 0, 0 } }, klua.Layer.get_mask(y):totable())
    assert.are.same({ 2, 3, 3 }, e:compute_output_shape({ 2, 3 }))
    -- Keras's "uniform" default: within [-0.05, 0.05]
    local fresh = L.Embedding(100, 8)
    assert(ops.max(ops.abs(fresh.embeddings)):item() <= 0.05)
    assert.is_nil(klua.Layer.get_mask(fresh(klua.tensor { { 1 } })))
  end)

  it("sends gradients to the rows it used, summing repeats", function()
    local e = L.Embedding(4, 2)
    local ids = klua.tensor { 3, 1, 3 }
    local tape = klua.GradientTape()
    local loss = tape:record(function() return ops.sum(e(ids)) end)
    local g = tape:gradient(loss, e.embeddings)
    assert.are.same({ { 0, 0 }, { 1, 1 }, { 0, 0 }, { 2, 2 } }, g:totable())
    check_gradients(e, klua.tensor { { 0, 2 }, { 3, 3 } }, { skip_input = true })
  end)

  it("rejects ids outside [0, input_dim)", function()
    local e = L.Embedding(4, 2, { name = "emb" })
    raises("Embedding 'emb': token ids must be in %[0, 4%), got values in %[%-1, 2%]", e, klua.tensor { -1, 2 })
    raises("Embedding: input_dim must be a positive integer. Received: input_dim=0", function() return L.Embedding(0, 2) end)
  end)
end)

describe("Masking", function()
  it("zeroes timesteps whose features all equal mask_value and emits their mask", function()
    local m = L.Masking { mask_value = -1 }
    local x = klua.tensor { { { 1, -1 }, { -1, -1 }, { 2, 3 } } }
    local y = m(x)
    assert.are.same({ { { 1, -1 }, { 0, 0 }, { 2, 3 } } }, y:totable())
    assert.are.same({ { 1, 0, 1 } }, klua.Layer.get_mask(y):totable())
  end)
end)

describe("Dropout", function()
  it("is the identity outside training", function()
    local d = L.Dropout(0.5)
    local x = klua.random.normal({ 3, 4 })
    assert.is_true(rawequal(x, d(x)))
    assert.is_true(rawequal(x, d(x, { training = false })))
  end)

  it("drops about `rate` of the units in training and scales the rest by 1 / (1 - rate)", function()
    klua.random.seed(1)
    local d = L.Dropout(0.25)
    local y = d(klua.ones { 100, 100 }, { training = true })
    local kept = ops.sum(ops.not_equal(y, 0)):item()
    assert(math.abs(kept / 10000 - 0.75) < 0.02, "kept fraction " .. kept / 10000)
    assert(math.abs(ops.max(y):item() - 1 / 0.75) < 1e-6)
    assert(math.abs(ops.mean(y):item() - 1) < 0.03)
  end)

  it("repeats its masks for a seed without touching the global stream, and honours noise_shape", function()
    klua.random.seed(42)
    local expected = klua.random.uniform({ 3 }):totable()
    klua.random.seed(42)
    local a, b = L.Dropout(0.5, { seed = 7 }), L.Dropout(0.5, { seed = 7 })
    local x = klua.ones { 4, 6 }
    local ya = a(x, { training = true })
    local yb = b(x, { training = true })
    assert.are.same(ya:totable(), yb:totable())
    assert.are.same(expected, klua.random.uniform({ 3 }):totable())
    local n = L.Dropout(0.5, { noise_shape = { -1, 1 } })(klua.ones { 50, 4 }, { training = true })
    for i = 1, 50 do
      local v = n:get(i, 1)
      for j = 2, 4 do assert.are.equal(v, n:get(i, j)) end
    end
    raises("Dropout: rate must be a number in %[0, 1%)", function() return L.Dropout(1.5) end)
  end)

  it("passes gradients through the kept units only", function()
    klua.random.seed(3)
    local d = L.Dropout(0.5)
    local x = klua.Variable(klua.ones { 4, 4 })
    local tape = klua.GradientTape()
    local y
    local loss = tape:record(function() y = d(x, { training = true }); return ops.sum(y) end)
    assert.are.same(y:totable(), tape:gradient(loss, x):totable())
  end)
end)

describe("shape layers", function()
  local x = klua.tensor { { { 1, 2, 3 }, { 4, 5, 6 } }, { { 7, 8, 9 }, { 10, 11, 12 } } }   -- (2, 2, 3)

  it("Flatten keeps the batch axis", function()
    assert.are.same({ { 1, 2, 3, 4, 5, 6 }, { 7, 8, 9, 10, 11, 12 } }, L.Flatten()(x):totable())
    assert.are.same({ -1, 6 }, L.Flatten():compute_output_shape({ -1, 2, 3 }))
  end)

  it("Reshape reshapes all but the batch axis, inferring one -1", function()
    local y = L.Reshape({ 3, -1 })(x)
    assert.are.same({ 2, 3, 2 }, y:shape())
    assert.are.same({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, y:totable()[1])
    assert.are.same({ -1, 3, 2 }, L.Reshape { target_shape = { 3, -1 } }:compute_output_shape({ -1, 2, 3 }))
    raises("Reshape 'r': cannot reshape an input of shape %(2,2,3%) to target_shape %(4,%)", L.Reshape({ 4 }, { name = "r" }), x)
    raises("Reshape: at most one entry of target_shape can be %-1", function() return L.Reshape({ -1, -1 }) end)
  end)

  it("Permute reorders the non-batch axes (1-based, as in Keras)", function()
    local y = L.Permute({ 2, 1 })(x)
    assert.are.same({ 2, 3, 2 }, y:shape())
    assert.are.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, y:totable()[1])
    assert.are.same({ -1, 3, 2 }, L.Permute({ 2, 1 }):compute_output_shape({ -1, 2, 3 }))
    raises("Permute: dims must be a permutation of 1..2", function() return L.Permute({ 1, 3 }) end)
  end)

  it("RepeatVector repeats a vector n times", function()
    local y = L.RepeatVector(3)(klua.tensor { { 1, 2 }, { 3, 4 } })
    assert.are.same({ { { 1, 2 }, { 1, 2 }, { 1, 2 } }, { { 3, 4 }, { 3, 4 }, { 3, 4 } } }, y:totable())
    assert.are.same({ -1, 3, 2 }, L.RepeatVector(3):compute_output_shape({ -1, 2 }))
  end)

  it("have gradients matching finite differences", function()
    klua.random.seed(4)
    check_gradients(L.Flatten(), klua.random.normal({ 2, 2, 3 }))
    check_gradients(L.Reshape({ 6 }), klua.random.normal({ 2, 3, 2 }))
    check_gradients(L.Permute({ 2, 1 }), klua.random.normal({ 2, 2, 3 }))
    check_gradients(L.RepeatVector(2), klua.random.normal({ 2, 3 }))
  end)
end)

describe("Lambda", function()
  it("wraps a Lua function, passing its arguments", function()
    local l = L.Lambda(function(x, kw) return x * kw.k end, { arguments = { k = 3 }, output_shape = { 4 } })
    assert.are.same({ { 3, 6 } }, l(klua.tensor { { 1, 2 } }):totable())
    assert.are.same({ -1, 4 }, l:compute_output_shape({ -1, 2 }))
    raises("Lambda: expected a function", function() return L.Lambda(3) end)
  end)
end)

describe("activation layers", function()
  local a = klua.tensor(ref.act_x)
  it("Activation applies a named activation", function()
    near(L.Activation("gelu")(a), ref.act.gelu, 1e-5)
    near(L.Activation { activation = "selu" }(a), ref.act.selu, 1e-5)
    assert.are.equal("selu", L.Activation("selu"):get_config().activation)
  end)
  it("ReLU, LeakyReLU, ELU and Softmax follow Keras", function()
    near(L.ReLU { max_value = 6 }(a), ref.act.relu6, 1e-6)
    near(L.LeakyReLU(0.2)(a), ref.act.leaky_relu, 1e-6)
    assert.are.equal(0.3, L.LeakyReLU().negative_slope)
    near(L.ELU()(a), ref.act.elu, 1e-5)
    near(L.Softmax(1)(a), ref.act.softmax, 1e-5)
    -- Keras's relu with a threshold: x if x > threshold else negative_slope * (x - threshold)
    local y = L.ReLU { threshold = 1, negative_slope = 0.5 }(klua.tensor { -1, 0.5, 2 })
    near(y, { -1, -0.25, 2 }, 1e-6)
  end)
  it("Softmax gives masked positions probability 0", function()
    local s = L.Softmax()
    local y = s(klua.tensor { { 1, 2, 3 } }, { mask = klua.tensor { { 1, 1, 0 } } })
    assert(y:get(1, 3) < 1e-6)
    assert(math.abs(y:get(1, 1) + y:get(1, 2) - 1) < 1e-6)
  end)
end)

describe("merge layers", function()
  local a, b = klua.tensor { { 1, 2 }, { 3, 4 } }, klua.tensor { { 5, 7 }, { 1, 2 } }
  it("combine a list of tensors", function()
    assert.are.same({ { 6, 9 }, { 4, 6 } }, L.Add()({ a, b }):totable())
    assert.are.same({ { -4, -5 }, { 2, 2 } }, L.Subtract()({ a, b }):totable())
    assert.are.same({ { 5, 14 }, { 3, 8 } }, L.Multiply()({ a, b }):totable())
    assert.are.same({ { 3, 4.5 }, { 2, 3 } }, L.Average()({ a, b }):totable())
    assert.are.same({ { 5, 7 }, { 3, 4 } }, L.Maximum()({ a, b }):totable())
    assert.are.same({ { 1, 2 }, { 1, 2 } }, L.Minimum()({ a, b }):totable())
    assert.are.same({ { 1, 2, 5, 7 }, { 3, 4, 1, 2 } }, L.Concatenate()({ a, b }):totable())
    assert.are.same({ { 1, 2 }, { 3, 4 }, { 5, 7 }, { 1, 2 } }, L.Concatenate(1)({ a, b }):totable())
    assert.are.same({ { 7, 10 }, { 5, 7 } }, L.Add()({ a, b, klua.ones { 2, 2 } }):totable())
    assert.are.same({ -1, 3, 6 }, L.Concatenate():compute_output_shape({ { -1, 3, 2 }, { -1, 3, 4 } }))
  end)

  it("name themselves in errors", function()
    raises("Add 'm': expected a list of at least 2 tensors, got 1 tensor", L.Add { name = "m" }, { a })
    raises("Subtract 's': expected exactly 2 inputs, got 3", L.Subtract { name = "s" }, { a, a, a })
    raises("Multiply 'p': inputs of shapes %(2,2%), %(3,%) cannot be combined", L.Multiply { name = "p" }, { a, klua.ones { 3 } })
  end)

  it("combine masks", function()
    local m1, m2 = klua.tensor { { 1, 1, 0 } }, klua.tensor { { 1, 0, 0 } }
    local x1, x2 = klua.ones { 1, 3, 2 }, klua.ones { 1, 3, 2 }
    klua.Layer.set_mask(x1, m1)
    klua.Layer.set_mask(x2, m2)
    assert.are.same({ { 1, 0, 0 } }, klua.Layer.get_mask(L.Add()({ x1, x2 })):totable())
    -- Concatenate on the features: a step is kept if any part keeps it
    assert.are.same({ { 1, 1, 0 } }, klua.Layer.get_mask(L.Concatenate()({ x1, x2 })):totable())
  end)

  it("have gradients matching finite differences", function()
    klua.random.seed(6)
    local x1 = klua.random.normal({ 2, 3 })
    local x2 = klua.random.normal({ 2, 3 })
    for _, name in ipairs { "Add", "Subtract", "Multiply", "Average", "Concatenate" } do
      local layer = L[name]()
      local Pair = klua.Layer:extend("PairOf" .. name)
      function Pair:__init() Pair.super.__init(self); self.inner = layer end
      function Pair:call(x) return self.inner({ x, x2 * x }) end
      check_gradients(Pair(), x1)
    end
  end)
end)
