-- models_spec.lua — klua.Model, klua.Sequential and the Functional API: the
-- guide's three ways to build a model, nesting, shared layers, multi-input /
-- multi-output training, compile / fit / evaluate / predict and the summary.
local klua = require("klua")
local L = klua.layers
local ops = klua.ops

local helpers = require("helpers")
local err_of, max_abs_diff = helpers.err_of, helpers.max_abs_diff

-- The reference notes' custom layer: relu(x . w + b), weights in build().
local MyLayer = klua.Layer:extend("MyLayer")
function MyLayer:__init(units, kw)
  MyLayer.super.__init(self, kw)
  self.units = units
end
function MyLayer:build(input_shape)
  self.w = self:add_weight{ shape = { input_shape[#input_shape], self.units }, initializer = "glorot_uniform", name = "kernel" }
  self.b = self:add_weight{ shape = { self.units }, initializer = "zeros", name = "bias" }
end
function MyLayer:call(x) return ops.relu(ops.matmul(x, self.w) + self.b) end
function MyLayer:get_config()
  local c = MyLayer.super.get_config(self)
  c.units = self.units
  return c
end
function MyLayer.from_config(c) return MyLayer(c.units, c) end

-- Records the training flag each call sees.
local Probe = klua.Layer:extend("TrainingProbe")
function Probe:__init(kw) Probe.super.__init(self, kw); rawset(self, "seen", {}) end
function Probe:call(x, kw)
  local seen = rawget(self, "seen")
  seen[#seen + 1] = kw.training
  return x
end

-- Two well separated Gaussian blobs in 2-D, labels 0/1.
local function blobs(n, seed)
  klua.random.seed(seed)
  local half = n / 2
  local a = klua.random.normal({ half, 2 }, { mean = -2, stddev = 0.7 })
  local b = klua.random.normal({ half, 2 }, { mean = 2, stddev = 0.7 })
  local x = ops.concatenate({ a, b }, 1)
  local y = ops.concatenate({ klua.zeros({ half, 1 }), klua.ones({ half, 1 }) }, 1)
  return x, y
end

describe("The three ways to build a model", function()
  it("Sequential, Functional and subclassed models give the same output for the same weights", function()
    klua.random.seed(1)
    local seq = klua.Sequential{ L.Dense(16, { activation = "relu", input_shape = { 10 } }), L.Dense(4) }

    local inputs = klua.Input{ shape = { 10 } }
    local h = L.Dense(16, { activation = "relu" })(inputs)
    local fun = klua.Model{ inputs = inputs, outputs = L.Dense(4)(h) }

    local Sub = klua.Model:extend("ThreeWaysSub")
    function Sub:__init(kw)
      Sub.super.__init(self, kw)
      self.dense1 = L.Dense(16, { activation = "relu" })
      self.dense2 = L.Dense(4)
    end
    function Sub:call(x) return self.dense2(self.dense1(x)) end
    local sub = Sub()
    sub:build({ -1, 10 })

    assert.are.equal(4, #seq.weights)
    assert.are.equal(4, #fun.weights)
    assert.are.equal(4, #sub.weights)
    fun:set_weights(seq:get_weights())
    sub:set_weights(seq:get_weights())
    local x = klua.random.normal({ 7, 10 })
    local y = seq(x)
    assert.are.same({ 7, 4 }, y:shape())
    assert.are.equal(0, max_abs_diff(y, fun(x)))
    assert.are.equal(0, max_abs_diff(y, sub(x)))
    assert.are.equal(0, max_abs_diff(y, seq:predict(x, { verbose = 0 })))
  end)

  it("builds the notes' custom layer in all three forms", function()
    klua.random.seed(2)
    local seq = klua.Sequential{ MyLayer(8, { input_shape = { 5 } }), MyLayer(3) }
    local i = klua.Input{ shape = { 5 } }
    local fun = klua.Model(i, MyLayer(3)(MyLayer(8)(i)))
    assert.are.equal(8 * 5 + 8 + 3 * 8 + 3, seq:count_params())
    assert.are.equal(seq:count_params(), fun:count_params())
    fun:set_weights(seq:get_weights())
    local x = klua.random.normal({ 4, 5 })
    assert.are.equal(0, max_abs_diff(seq(x), fun(x)))
  end)
end)

describe("Sequential", function()
  it("accepts a list, add and pop, and lists its layers without the input", function()
    local m = klua.Sequential({ klua.Input{ shape = { 3 } }, L.Dense(4, { name = "seq_a" }) }, { name = "stack" })
    assert.are.equal("stack", m.name)
    m:add(L.Dense(2, { name = "seq_b" }))
    assert.are.equal(2, #m.layers)
    assert.are.same({ -1, 2 }, m.output_shape)
    local popped = m:pop()
    assert.are.equal("seq_b", popped.name)
    assert.are.same({ -1, 4 }, m.output_shape)
    assert.are.equal(1, #m.layers)
    assert.are.equal("seq_a", m:get_layer("seq_a").name)
    assert.are.equal("seq_a", m:get_layer(1).name)
  end)

  it("builds on the first call when no input shape is given", function()
    local m = klua.Sequential{ L.Dense(4), L.Dense(1) }
    assert.is_false(m.built)
    local y = m(klua.ones({ 2, 6 }))
    assert.are.same({ 2, 1 }, y:shape())
    assert.is_true(m.built)
    assert.are.same({ -1, 6 }, m.input_shape)
    assert.are.equal(6 * 4 + 4 + 4 + 1, m:count_params())
  end)

  it("reports shape errors when a layer is added, naming the layer", function()
    local m = klua.Sequential{ klua.Input{ shape = { 4, 4 } }, L.Reshape({ 16 }) }
    local msg = err_of(function() m:add(L.Conv2D(2, 3)) end)
    assert.matches("Conv2D 'conv2d[_%d]*': expected an input of rank 4.*got shape %(None,16%)", msg)
    assert.are.equal(1, #m.layers)
  end)

  it("rejects non-layers and duplicate names", function()
    local m = klua.Sequential{ L.Dense(2, { name = "dup" }) }
    assert.matches("expected a layer, got number", err_of(function() m:add(3) end))
    assert.matches("already used", err_of(function() m:add(L.Dense(2, { name = "dup" })) end))
    assert.matches("no layers", err_of(function() klua.Sequential{}:pop() end))
  end)

  it("checks the input shape at call time", function()
    local m = klua.Sequential{ L.Dense(2, { input_shape = { 3 } }) }
    assert.matches("expected an input of shape %(None,3%), got %(2,5%)", err_of(function() m(klua.ones({ 2, 5 })) end))
  end)
end)

describe("The Functional API", function()
  it("records a graph on symbolic tensors without computing", function()
    local i = klua.Input{ shape = { 784 }, name = "pixels" }
    assert.are.same({ -1, 784 }, i.shape())
    local d = L.Dense(64, { activation = "relu" })
    local h = d(i)
    assert.are.same({ -1, 64 }, h.shape())
    assert.is_true(klua.models.is_keras_tensor(h))
    assert.is_true(d.built)
    local m = klua.Model{ inputs = i, outputs = L.Dense(10)(h), name = "mnist_mlp" }
    assert.are.equal(3, #m.layers)           -- the InputLayer is a layer of a Functional model
    assert.are.equal("InputLayer", m.layers[1]:class_name())
    assert.are.same({ -1, 10 }, m.output_shape)
  end)

  it("runs models with named and listed inputs and outputs", function()
    local a, b = klua.Input{ shape = { 3 }, name = "fa" }, klua.Input{ shape = { 2 }, name = "fb" }
    local x = L.Concatenate()({ a, b })
    local o1, o2 = L.Dense(1)(x), L.Dense(2)(x)
    local named = klua.Model{ inputs = { left = a, right = b }, outputs = { sum = o1, pair = o2 } }
    local listed = klua.Model({ a, b }, { o1, o2 })
    local xa, xb = klua.ones({ 4, 3 }), klua.ones({ 4, 2 })
    local r = named{ left = xa, right = xb }
    assert.are.same({ 4, 1 }, r.sum:shape())
    assert.are.same({ 4, 2 }, r.pair:shape())
    local l = listed({ xa, xb })
    assert.are.equal(0, max_abs_diff(l[1], r.sum))
    assert.are.equal(0, max_abs_diff(l[2], r.pair))
    assert.matches("missing input", err_of(function() named{ left = xa } end))
    assert.matches("expects shape %(None,3%), got %(4,2%)", err_of(function() listed({ xb, xb }) end))
  end)

  it("shares a layer between calls and counts its weights once", function()
    local shared = L.Dense(4, { name = "shared_dense" })
    local i1, i2 = klua.Input{ shape = { 4 } }, klua.Input{ shape = { 4 } }
    local m = klua.Model({ i1, i2 }, L.Add()({ shared(i1), shared(i2) }))
    assert.are.equal(2, #m.weights)
    local x1, x2 = klua.random.normal({ 2, 4 }), klua.random.normal({ 2, 4 })
    assert.is_true(max_abs_diff(m({ x1, x2 }), shared(x1) + shared(x2)) < 1e-6)
    assert.are.equal(shared, m:get_layer("shared_dense"))
  end)

  it("nests a model as a layer (the notes' feature extractor)", function()
    klua.random.seed(4)
    local fi = klua.Input{ shape = { 16 } }
    local feature_extractor = klua.Model(fi, MyLayer(8)(fi))
    local main_input = klua.Input{ shape = { 16 } }
    local features = feature_extractor(main_input)
    assert.are.same({ -1, 8 }, features.shape())
    local combined = klua.Model(main_input, MyLayer(5)(features))
    assert.are.equal(4, #combined.weights)
    local x = klua.random.normal({ 3, 16 })
    local expect = combined.layers[3](feature_extractor(x))
    assert.are.equal(0, max_abs_diff(combined(x), expect))
    -- training the combined model trains the nested one
    combined:compile{ optimizer = klua.optimizers.SGD{ learning_rate = 0.1 }, loss = "mse" }
    local before = feature_extractor:get_weights()[1]
    combined:fit(x, klua.ones({ 3, 5 }), { epochs = 1, verbose = 0 })
    assert.is_true(max_abs_diff(before, feature_extractor:get_weights()[1]) > 0)
  end)

  it("nests a subclassed model and a Sequential inside a Functional model", function()
    local Block = klua.Model:extend("NestedBlock")
    function Block:__init() Block.super.__init(self); self.d = L.Dense(3) end
    function Block:call(x) return ops.tanh(self.d(x)) end
    local i = klua.Input{ shape = { 5 } }
    local out = klua.Sequential{ L.Dense(2) }(Block()(i))
    assert.are.same({ -1, 2 }, out.shape())
    local m = klua.Model(i, out)
    assert.are.equal(4, #m.weights)
    assert.are.same({ 6, 2 }, m(klua.ones({ 6, 5 })):shape())
  end)

  it("reports a disconnected graph and inputs that do not come from Input", function()
    local i1, i2 = klua.Input{ shape = { 2 }, name = "used" }, klua.Input{ shape = { 2 }, name = "forgotten" }
    local o = L.Add()({ i1, i2 })
    assert.matches("disconnected.*'forgotten'", err_of(function() klua.Model(i1, o) end))
    local h = L.Dense(2)(i1)
    assert.matches("must come from klua.Input", err_of(function() klua.Model(h, L.Dense(1)(h)) end))
    assert.matches("no layer named 'nope'", err_of(function() klua.Model(i1, h):get_layer("nope") end))
  end)

  it("records arithmetic on symbolic tensors, and refuses ops that need values", function()
    local i = klua.Input{ shape = { 3 } }
    local d = L.Dense(3)
    local y = -(d(i) + i) * 2 / 4 - 1
    local m = klua.Model(i, y ^ 2)
    local x = klua.random.normal({ 2, 3 })
    local expect = klua.ops.square(-(d(x) + x) * 2 / 4 - 1)
    assert.is_true(max_abs_diff(m(x), expect) < 1e-6)
    assert.matches("is symbolic and holds no values", err_of(klua.ops.exp, i))
  end)

  it("supports layers that return several values (the guide's Encoder)", function()
    local Enc = klua.Layer:extend("TripleEncoder")
    function Enc:__init() Enc.super.__init(self); self.m = L.Dense(2); self.v = L.Dense(2) end
    function Enc:call(x) local a, b = self.m(x), self.v(x); return a, b, a + b end
    local i = klua.Input{ shape = { 3 } }
    local zm, zv, z = Enc()(i)
    assert.are.same({ -1, 2 }, z.shape())
    local m = klua.Model(i, { zm, zv, z })
    local r = m(klua.ones({ 2, 3 }))
    assert.are.equal(0, max_abs_diff(r[3], r[1] + r[2]))
  end)
end)

describe("compile and fit", function()
  it("fits a separable 2-class problem to at least 95% accuracy", function()
    local x, y = blobs(200, 7)
    klua.random.seed(8)
    local m = klua.Sequential{ L.Dense(8, { activation = "relu", input_shape = { 2 } }), L.Dense(1, { activation = "sigmoid" }) }
    m:compile{ optimizer = klua.optimizers.Adam{ learning_rate = 0.05 }, loss = "binary_crossentropy", metrics = { "accuracy" } }
    local h = m:fit{ x = x, y = y, epochs = 8, batch_size = 32, verbose = 0 }
    assert.are.equal(8, #h.history.loss)
    assert.is_true(h.history.loss[8] < h.history.loss[1])
    local loss, acc = unpack(m:evaluate(x, y, { verbose = 0 }))
    assert.is_true(acc >= 0.95, "accuracy " .. acc)
    assert.is_true(loss < 0.3)
    assert.are.same({ "loss", "accuracy" }, m.metrics_names)
    assert.are.equal(m.history, h)
  end)

  it("trains a multi-input, multi-output model with per-output losses, weights and metrics", function()
    klua.random.seed(9)
    local a, b = klua.Input{ shape = { 3 } }, klua.Input{ shape = { 2 } }
    local x = L.Dense(8, { activation = "relu" })(L.Concatenate()({ a, b }))
    local m = klua.Model{ inputs = { a, b }, outputs = { score = L.Dense(1)(x), class = L.Dense(3)(x) } }
    m:compile{
      optimizer = klua.optimizers.Adam{ learning_rate = 0.02 },
      loss = { score = "mse", class = klua.losses.SparseCategoricalCrossentropy{ from_logits = true } },
      loss_weights = { score = 2.0, class = 0.5 },
      metrics = { class = { "accuracy" } },
    }
    local n = 48
    local xa, xb = klua.random.normal({ n, 3 }), klua.random.normal({ n, 2 })
    local ys = ops.sum(xa, 2, true)
    local yc = ops.argmax(xa, 2)
    local h = m:fit{ x = { xa, xb }, y = { score = ys, class = yc }, epochs = 6, batch_size = 16, verbose = 0 }
    for _, k in ipairs{ "loss", "score_loss", "class_loss", "class_accuracy" } do
      assert.are.equal(6, #h.history[k], k)
    end
    assert.is_true(h.history.loss[6] < h.history.loss[1])
    -- the total is the weighted sum of the per-output losses
    local logs = m:evaluate{ x = { xa, xb }, y = { score = ys, class = yc }, verbose = 0, return_dict = true }
    assert.is_true(math.abs(logs.loss - (2 * logs.score_loss + 0.5 * logs.class_loss)) < 1e-4)
    local p = m:predict({ xa, xb }, { verbose = 0, batch_size = 20 })
    assert.are.same({ n, 3 }, p.class:shape())
  end)

  it("passes training=true in fit and false in evaluate and predict", function()
    local probe = Probe()
    local m = klua.Sequential{ L.Dense(2, { input_shape = { 2 } }), probe }
    m:compile{ optimizer = "sgd", loss = "mse" }
    local x, y = klua.ones({ 4, 2 }), klua.zeros({ 4, 2 })
    rawset(probe, "seen", {})
    m:fit(x, y, { epochs = 1, batch_size = 4, verbose = 0 })
    assert.are.same({ true }, rawget(probe, "seen"))
    rawset(probe, "seen", {})
    m:evaluate(x, y, { verbose = 0 })
    m:predict(x, { verbose = 0 })
    assert.are.same({ false, false }, rawget(probe, "seen"))
  end)

  it("trains the guide's VAE with add_loss, with and without a compiled loss", function()
    klua.random.seed(10)
    local Sampling = klua.Layer:extend("SpecSampling")
    function Sampling:call(inputs)
      local z_mean, z_log_var = inputs[1], inputs[2]
      return z_mean + ops.exp(z_log_var * 0.5) * klua.random.normal(z_mean:shape())
    end
    local VAE = klua.Model:extend("SpecVAE")
    function VAE:__init(original_dim, latent_dim)
      VAE.super.__init(self, { name = "autoencoder" })
      self.proj = L.Dense(8, { activation = "relu" })
      self.mean, self.log_var = L.Dense(latent_dim), L.Dense(latent_dim)
      self.sampling = Sampling()
      self.out = L.Dense(original_dim, { activation = "sigmoid" })
    end
    function VAE:call(x)
      local h = self.proj(x)
      local zm, zl = self.mean(h), self.log_var(h)
      self:add_loss(-0.5 * ops.mean(zl - ops.square(zm) - ops.exp(zl) + 1))
      return self.out(self.sampling({ zm, zl }))
    end
    local vae = VAE(12, 2)
    local x = klua.random.uniform({ 32, 12 })
    vae:compile(klua.optimizers.Adam{ learning_rate = 1e-2 }, { loss = klua.losses.MeanSquaredError() })
    local h = vae:fit(x, x, { epochs = 4, batch_size = 8, verbose = 0 })
    assert.is_true(h.history.loss[4] < h.history.loss[1])
    assert.are.equal(1, #vae.losses)         -- the KL loss of the last call
    vae:compile("adam")                      -- no loss: add_loss alone is minimised
    local h2 = vae:fit(x, x, { epochs = 1, batch_size = 8, verbose = 0 })
    assert.is_true(h2.history.loss[1] >= 0)
  end)

  it("takes sample weights and class weights as Keras does", function()
    local m = klua.Sequential{ L.Dense(1, { input_shape = { 1 }, use_bias = false, kernel_initializer = "zeros" }) }
    m:compile{ optimizer = "sgd", loss = "mse" }
    local x = klua.tensor{ { 1 }, { 1 }, { 1 }, { 1 } }
    local y = klua.tensor{ { 1 }, { 2 }, { 3 }, { 4 } }
    -- prediction 0: squared errors 1, 4, 9, 16; sum_over_batch_size divides by 4
    local w = klua.tensor{ 1, 1, 0, 0 }
    assert.is_true(math.abs(m:test_on_batch(x, y, { sample_weight = w }) - 5 / 4) < 1e-6)
    m:reset_metrics()
    local yc = klua.tensor{ { 0 }, { 1 }, { 1 }, { 1 } }
    -- class 0 weighs 3: errors 0, 1, 1, 1 -> (0 * 3 + 3) / 4
    m:compile{ optimizer = klua.optimizers.SGD{ learning_rate = 0 }, loss = "mse" }
    local loss = m:train_on_batch(x, yc, { class_weight = { [0] = 3, [1] = 1 } })
    assert.is_true(math.abs(loss - 3 / 4) < 1e-6)
  end)

  it("takes a klua.data.Dataset of {x, y} batches", function()
    local x, y = blobs(64, 11)
    local ds = klua.data.Dataset.from_tensor_slices({ x, y }):shuffle(64, 1):batch(16)
    klua.random.seed(12)
    local m = klua.Sequential{ L.Dense(1, { activation = "sigmoid", input_shape = { 2 } }) }
    m:compile{ optimizer = klua.optimizers.Adam{ learning_rate = 0.1 }, loss = "bce", metrics = { "accuracy" } }
    local h = m:fit{ x = ds, epochs = 3, verbose = 0, validation_data = ds }
    assert.are.equal(3, #h.history.val_accuracy)
    assert.is_true(h.history.accuracy[3] > 0.9)
    assert.matches("y must not be given", err_of(function() m:fit{ x = ds, y = y, verbose = 0 } end))
    local infinite = klua.data.Dataset.from_tensor_slices({ x, y }):batch(16):repeat_()
    assert.matches("steps_per_epoch", err_of(function() m:fit{ x = infinite, verbose = 0 } end))
    local h2 = m:fit{ x = infinite, epochs = 2, steps_per_epoch = 3, verbose = 0 }
    assert.are.equal(2, #h2.history.loss)
  end)

  it("starts at initial_epoch, limits steps_per_epoch, and builds an unbuilt model from the first batch", function()
    local x, y = blobs(40, 15)
    local m = klua.Sequential{ L.Dense(3, { activation = "relu" }), L.Dense(1) }
    m:compile{ optimizer = "sgd", loss = "mse" }
    local batches = 0
    local count = klua.callbacks.LambdaCallback{ on_train_batch_end = function() batches = batches + 1 end }
    local h = m:fit{ x = x, y = y, epochs = 4, initial_epoch = 2, steps_per_epoch = 3, batch_size = 4, verbose = 0, callbacks = { count } }
    assert.are.same({ 2, 3 }, h.epoch)
    assert.are.equal(6, batches)
    assert.are.same({ -1, 2 }, m.input_shape)
  end)

  it("validates on the last fraction of the data with validation_split", function()
    local x, y = blobs(40, 13)
    local m = klua.Sequential{ L.Dense(1, { input_shape = { 2 } }) }
    m:compile{ optimizer = klua.optimizers.SGD{ learning_rate = 0.01 }, loss = "mse" }
    local h = m:fit{ x = x, y = y, validation_split = 0.25, epochs = 1, verbose = 0, shuffle = false }
    local tail_loss = m:evaluate(ops.slice_axis(x, 1, 31, 40), ops.slice_axis(y, 1, 31, 40), { verbose = 0 })
    assert.is_true(math.abs(h.history.val_loss[1] - tail_loss) < 1e-6)
  end)

  it("predicts in batches of any size, and on one batch", function()
    klua.random.seed(14)
    local m = klua.Sequential{ L.Dense(3, { input_shape = { 4 } }) }
    local x = klua.random.normal({ 70, 4 })
    local p = m:predict{ x = x, batch_size = 32, verbose = 0 }
    assert.are.same({ 70, 3 }, p:shape())
    assert.is_true(max_abs_diff(p, m(x)) < 1e-6)
    assert.is_true(max_abs_diff(m:predict_on_batch(x), m(x)) < 1e-6)
  end)

  it("returns evaluate results as a number, a list or a table", function()
    local m = klua.Sequential{ L.Dense(1, { input_shape = { 2 } }) }
    local x, y = klua.ones({ 4, 2 }), klua.zeros({ 4, 1 })
    m:compile{ optimizer = "sgd", loss = "mse" }
    assert.are.equal("number", type(m:evaluate(x, y, { verbose = 0 })))
    m:compile{ optimizer = "sgd", loss = "mse", metrics = { "mae" } }
    local r = m:evaluate(x, y, { verbose = 0 })
    assert.are.equal(2, #r)
    local d = m:evaluate{ x = x, y = y, verbose = 0, return_dict = true }
    assert.are.equal(r[2], d.mae)
    local tb = m:train_on_batch(x, y, { return_dict = true })
    assert.is_number(tb.loss)
  end)

  it("explains what is missing or wrong", function()
    local m = klua.Sequential{ L.Dense(1, { input_shape = { 2 } }) }
    assert.matches("compile%(%) before fit", err_of(function() m:fit(klua.ones({ 2, 2 }), klua.ones({ 2, 1 })) end))
    assert.matches("unknown argument `lr`", err_of(function() m:compile{ optimizer = "sgd", lr = 1 } end))
    m:compile{ optimizer = "sgd", loss = "mse" }
    assert.matches("unknown argument `epoch`", err_of(function() m:fit{ x = klua.ones({ 2, 2 }), y = klua.ones({ 2, 1 }), epoch = 3 } end))
    assert.matches("x has 2, y has 3", err_of(function() m:fit(klua.ones({ 2, 2 }), klua.ones({ 3, 1 }), { verbose = 0 }) end))
    local none = klua.Sequential{ L.Dense(1, { input_shape = { 2 } }) }
    none:compile{ optimizer = "sgd" }
    assert.matches("no loss to compute", err_of(function() none:fit(klua.ones({ 2, 2 }), klua.ones({ 2, 1 }), { verbose = 0 }) end))
  end)
end)

describe("summary", function()
  it("prints the Keras table with totals for trainable and non-trainable weights", function()
    local m = klua.Sequential({
      L.Dense(4, { name = "hidden", input_shape = { 3 } }),
      L.BatchNormalization{ name = "norm" },
      L.Dense(2, { name = "out" }),
    }, { name = "mlp" })
    local lines = {}
    m:summary{ print_fn = function(l) lines[#lines + 1] = l end }
    assert.are.same({
      'Model: "mlp"',
      "_________________________________________________________________",
      "Layer (type)                 Output Shape              Param #",
      "=================================================================",
      "hidden (Dense)               (None, 4)                 16",
      "_________________________________________________________________",
      "norm (BatchNormalization)    (None, 4)                 16",
      "_________________________________________________________________",
      "out (Dense)                  (None, 2)                 10",
      "=================================================================",
      "Total params: 42 (168.00 B)",
      "Trainable params: 34 (136.00 B)",
      "Non-trainable params: 8 (32.00 B)",
      "_________________________________________________________________",
    }, lines)
  end)

  it("adds a Connected to column for graphs that are not a chain", function()
    local a, b = klua.Input{ shape = { 2 }, name = "sum_a" }, klua.Input{ shape = { 2 }, name = "sum_b" }
    local m = klua.Model({ a, b }, L.Add{ name = "sum_add" }({ a, b }), { name = "adder" })
    local text = {}
    m:summary{ print_fn = function(l) text[#text + 1] = l end }
    text = table.concat(text, "\n")
    assert.matches("Connected to", text)
    assert.matches("sum_add %(Add%) +%(None, 2%) +0 +sum_a%[0%]%[0%], sum_b%[0%]%[0%]", text)
  end)
end)

describe("get_weights and set_weights", function()
  it("round-trips plain tensors in weights order and checks count and shapes", function()
    local m = klua.Sequential{ L.Dense(3, { input_shape = { 2 } }), L.Dense(1) }
    local w = m:get_weights()
    assert.are.same({ 2, 3 }, w[1]:shape())
    assert.is_false(w[1]:is_variable())
    local zeros = {}
    for i, t in ipairs(w) do zeros[i] = klua.zeros_like(t) end
    m:set_weights(zeros)
    assert.are.equal(0, ops.max(ops.abs(m(klua.ones({ 1, 2 })))):item())
    assert.matches("expected a list of 4 values, got 1", err_of(function() m:set_weights({ w[1] }) end))
    zeros[1] = klua.zeros({ 3, 2 })
    assert.matches("has shape %(2,3%), got %(3,2%)", err_of(function() m:set_weights(zeros) end))
  end)
end)
