-- layer_api_spec.lua — klua.Layer: every example of the Keras guide "Making
-- new layers and models via subclassing" and of the reference notes
-- (tests/reference, see its README), written the klua way, plus the API
-- details users rely on (tracking order, freezing, names, errors, configs).
local klua = require("klua")
local ops = klua.ops
local Layer = klua.Layer

local near = require("helpers").near

-- The guide's Linear, weights created in __init (input size given).
local EagerLinear = Layer:extend("EagerLinear")
function EagerLinear:__init(units, input_dim, kw)
  EagerLinear.super.__init(self, kw)
  units, input_dim = units or 32, input_dim or 32
  self.w = self:add_weight { shape = { input_dim, units }, initializer = "random_normal", trainable = true }
  self.b = self:add_weight { shape = { units }, initializer = "zeros", trainable = true }
end
function EagerLinear:call(inputs) return ops.matmul(inputs, self.w) + self.b end

-- The guide's lazy Linear: weights in build(), from the first input's shape.
-- Its constructor takes a config table, so from_config(config) is Linear(config).
local Linear = Layer:extend("Linear")
function Linear:__init(kw)
  if type(kw) == "number" then kw = { units = kw } end
  kw = kw or {}
  Linear.super.__init(self, kw)
  self.units = kw.units or 32
end
function Linear:build(input_shape)
  self.w = self:add_weight { shape = { input_shape[#input_shape], self.units }, initializer = "random_normal", trainable = true }
  self.b = self:add_weight { shape = { self.units }, initializer = "random_normal", trainable = true }
end
function Linear:call(inputs) return ops.matmul(inputs, self.w) + self.b end
function Linear:get_config()
  local config = Linear.super.get_config(self)
  config.units = self.units
  return config
end

describe("the guide's Layer examples", function()
  before_each(function() klua.random.seed(7) end)

  it("Linear with weights created in __init computes x·w + b and tracks w and b", function()
    local x = klua.ones { 2, 2 }
    local linear_layer = EagerLinear(4, 2)
    local y = linear_layer(x)
    assert.are.same({ 2, 4 }, y:shape())
    -- both rows see the same input, so they are equal; and equal to w's column sums
    local w = linear_layer.w:totable()
    for j = 1, 4 do
      near(y:get(1, j), y:get(2, j))
      near(y:get(1, j), w[1][j] + w[2][j])
    end
    local weights = linear_layer.weights
    assert.are.equal(2, #weights)
    assert.is_true(rawequal(weights[1], linear_layer.w))
    assert.is_true(rawequal(weights[2], linear_layer.b))
    -- random_normal: Keras's stddev 0.05
    for _, row in ipairs(w) do for _, v in ipairs(row) do assert(math.abs(v) < 0.3) end end
  end)

  it("ComputeSum accumulates into a non-trainable weight: [2 2] then [4 4]", function()
    local ComputeSum = Layer:extend("ComputeSum")
    function ComputeSum:__init(input_dim)
      ComputeSum.super.__init(self)
      self.total = self:add_weight { initializer = "zeros", shape = { input_dim }, trainable = false }
    end
    function ComputeSum:call(inputs)
      self.total:assign_add(ops.sum(inputs, 1))
      return self.total
    end
    local x = klua.ones { 2, 2 }
    local my_sum = ComputeSum(2)
    assert.are.same({ 2, 2 }, my_sum(x):tolist())
    assert.are.same({ 4, 4 }, my_sum(x):tolist())
    assert.are.equal(1, #my_sum.weights)
    assert.are.equal(1, #my_sum.non_trainable_weights)
    assert.are.same({}, my_sum.trainable_weights)
  end)

  it("lazy Linear creates its weights on the first call, from the input's shape", function()
    local linear_layer = Linear(32)
    assert.is_false(linear_layer.built)
    assert.are.equal(0, #linear_layer.weights)
    local y = linear_layer(klua.ones { 2, 2 })
    assert.is_true(linear_layer.built)
    assert.are.same({ 2, 32 }, y:shape())
    assert.are.same({ 2, 32 }, linear_layer.w:shape())
    assert.are.same({ 32 }, linear_layer.b:shape())
    -- later calls reuse the same weights
    local w = linear_layer.w
    linear_layer(klua.ones { 5, 2 })
    assert.is_true(rawequal(w, linear_layer.w))
    assert.are.equal(2, #linear_layer.weights)
  end)

  it("MLPBlock tracks the weights of its sublayers: 6 weights, 6 trainable", function()
    local MLPBlock = Layer:extend("MLPBlock")
    function MLPBlock:__init()
      MLPBlock.super.__init(self)
      self.linear_1 = Linear(32)
      self.linear_2 = Linear(32)
      self.linear_3 = Linear(1)
    end
    function MLPBlock:call(inputs)
      local x = self.linear_1(inputs)
      x = ops.relu(x)
      x = self.linear_2(x)
      x = ops.relu(x)
      return self.linear_3(x)
    end
    local mlp = MLPBlock()
    local y = mlp(klua.ones { 3, 64 })
    assert.are.same({ 3, 1 }, y:shape())
    assert.are.equal(6, #mlp.weights)
    assert.are.equal(6, #mlp.trainable_weights)
    -- in assignment order: linear_1's w, b, then linear_2's, then linear_3's
    local w = mlp.weights
    assert.is_true(rawequal(w[1], mlp.linear_1.w))
    assert.is_true(rawequal(w[4], mlp.linear_2.b))
    assert.is_true(rawequal(w[5], mlp.linear_3.w))
    assert.are.same({ 64, 32 }, w[1]:shape())
  end)

  describe("add_loss and losses", function()
    local ActivityRegularizationLayer = Layer:extend("ActivityRegularizationLayer")
    function ActivityRegularizationLayer:__init(rate)
      ActivityRegularizationLayer.super.__init(self)
      self.rate = rate or 1e-2
    end
    function ActivityRegularizationLayer:call(inputs)
      self:add_loss(ops.mean(inputs) * self.rate)
      return inputs
    end

    local OuterLayer = Layer:extend("OuterLayer")
    function OuterLayer:__init()
      OuterLayer.super.__init(self)
      self.activity_reg = ActivityRegularizationLayer(1e-2)
    end
    function OuterLayer:call(inputs) return self.activity_reg(inputs) end

    it("collects the losses of inner layers and resets them at each top-level call", function()
      local layer = OuterLayer()
      assert.are.equal(0, #layer.losses)    -- never called
      layer(klua.zeros { 1, 1 })
      assert.are.equal(1, #layer.losses)    -- one loss value
      layer(klua.zeros { 1, 1 })
      assert.are.equal(1, #layer.losses)    -- the loss of the last call only
      layer(klua.full({ 2, 2 }, 3))
      near(layer.losses[1]:item(), 0.03)
    end)

    it("includes the regularization losses of inner layers' weights: 1e-3 * sum(kernel^2)", function()
      local OuterLayerWithKernelRegularizer = Layer:extend("OuterLayerWithKernelRegularizer")
      function OuterLayerWithKernelRegularizer:__init()
        OuterLayerWithKernelRegularizer.super.__init(self)
        self.dense = klua.layers.Dense(32, { kernel_regularizer = klua.regularizers.l2(1e-3) })
      end
      function OuterLayerWithKernelRegularizer:call(inputs) return self.dense(inputs) end
      local layer = OuterLayerWithKernelRegularizer()
      layer(klua.zeros { 1, 1 })
      local losses = layer.losses
      assert.are.equal(1, #losses)
      local expected = 1e-3 * ops.sum(ops.square(layer.dense.kernel)):item()
      assert(expected > 0)
      near(losses[1]:item(), expected, 1e-5)
    end)

    it("adds the losses to a training loop's objective, with gradients through them", function()
      local layer = OuterLayer()
      local x = klua.Variable(klua.full({ 2, 3 }, 2))
      local tape = klua.GradientTape()
      local loss = tape:record(function()
        local y = layer(x)
        local l = ops.sum(y)
        for _, extra in ipairs(layer.losses) do l = l + extra end
        return l
      end)
      near(loss:item(), 12 + 0.02)
      -- d/dx [sum(x) + 0.01 * mean(x)] = 1 + 0.01 / 6
      local g = tape:gradient(loss, x)
      near(g:get(1, 1), 1 + 0.01 / 6)
    end)
  end)

  describe("get_config / from_config", function()
    it("round-trips a config without the base keys", function()
      local Bare = Layer:extend("BareLinear")
      function Bare:__init(kw)
        Bare.super.__init(self)
        self.units = (kw or {}).units or 32
      end
      function Bare:get_config() return { units = self.units } end
      local layer = Bare { units = 64 }
      local config = layer:get_config()
      assert.are.same({ units = 64 }, config)
      local new_layer = Bare.from_config(config)
      assert.are.equal(64, new_layer.units)
      assert.are_not.equal(layer.name, new_layer.name)
    end)

    it("round-trips a config with name, trainable and dtype from the base class", function()
      local layer = Linear(64)
      local config = layer:get_config()
      assert.are.equal(64, config.units)
      assert.are.equal(layer.name, config.name)
      assert.is_true(config.trainable)
      assert.are.equal("float32", config.dtype)
      local new_layer = Linear.from_config(config)
      assert.are.same(config, new_layer:get_config())
      -- the colon form works too
      assert.are.equal(64, Linear:from_config(config).units)
    end)

    it("finds registered classes by name for deserialization", function()
      local Registered = Layer:extend("RegisteredLinearForTest")
      function Registered:__init(kw) Registered.super.__init(self, kw); self.units = (kw or {}).units end
      function Registered:get_config()
        local c = Registered.super.get_config(self); c.units = self.units; return c
      end
      assert.are.equal(Registered, klua.saving.register_serializable(Registered))
      assert.are.equal(Registered, klua.saving.get_registered("RegisteredLinearForTest"))
      assert.are.equal(Registered, klua.saving.get_registered("Custom>RegisteredLinearForTest"))
      local layer = klua.layers.deserialize { class_name = "RegisteredLinearForTest", config = { units = 3 } }
      assert.are.equal(3, layer.units)
      -- built-in layers are found without registering
      assert.are.equal(klua.layers.Dense, klua.saving.get_registered("Dense"))
      local ok, err = pcall(klua.layers.deserialize, { class_name = "NoSuchLayer", config = {} })
      assert.is_false(ok)
      assert.matches("unknown layer class 'NoSuchLayer'", err)
    end)
  end)

  it("CustomDropout honours the training argument", function()
    local CustomDropout = Layer:extend("CustomDropout")
    function CustomDropout:__init(rate, kw)
      CustomDropout.super.__init(self, kw)
      self.rate = rate
    end
    function CustomDropout:call(inputs, kw)
      if kw.training then
        local keep = klua.random.bernoulli(inputs:shape(), 1 - self.rate)
        return inputs * keep / (1 - self.rate)
      end
      return inputs
    end
    local layer = CustomDropout(0.5)
    local x = klua.ones { 20, 20 }
    assert.are.equal(400, ops.sum(layer(x)):item())                       -- default: inference
    assert.are.equal(400, ops.sum(layer(x, { training = false })):item())
    local y = layer(x, { training = true })
    local zeros = ops.sum(ops.equal(y, 0)):item()
    assert(zeros > 120 and zeros < 280, "about half the units dropped, got " .. zeros)
    assert.are.equal(2, ops.max(y):item())                                -- kept ones are scaled by 2
  end)

  it("passes training down to sublayers unless a call says otherwise", function()
    local seen = {}
    local Probe = Layer:extend("Probe")
    function Probe:call(x, kw) seen[#seen + 1] = kw.training; return x end
    local Outer = Layer:extend("TrainingOuter")
    function Outer:__init() Outer.super.__init(self); self.a = Probe(); self.b = Probe() end
    function Outer:call(x) return self.b(self.a(x), { training = false }) end
    local outer = Outer()
    outer(klua.ones { 1 }, { training = true })
    outer(klua.ones { 1 })
    assert.are.same({ true, false, false, false }, seen)
  end)

  it("passes masks from Embedding(mask_zero) to layers that take them", function()
    local got
    local MaskReader = Layer:extend("MaskReader")
    MaskReader.supports_masking = true
    function MaskReader:call(x, kw) got = kw.mask; return x end
    local emb = klua.layers.Embedding(10, 3, { mask_zero = true })
    local reader = MaskReader()
    local ids = klua.tensor { { 4, 2, 0, 0 }, { 1, 0, 0, 0 } }
    local y = reader(emb(ids))
    assert.are.same({ { 1, 1, 0, 0 }, { 1, 0, 0, 0 } }, got:totable())
    -- supports_masking passes it on
    assert.are.same(got:totable(), Layer.get_mask(y):totable())
    -- Masking makes one from the values
    local seq = klua.tensor { { { 1, 2 }, { 0, 0 }, { 3, 0 } } }
    reader(klua.layers.Masking(0)(seq))
    assert.are.same({ { 1, 0, 1 } }, got:totable())
  end)

  it("a layer used as a Model part: the VAE's encoder/decoder with a KL loss, trained a few steps", function()
    local Sampling = Layer:extend("Sampling")
    function Sampling:call(inputs)
      local z_mean, z_log_var = inputs[1], inputs[2]
      local epsilon = klua.random.normal(z_mean:shape())
      return z_mean + ops.exp(z_log_var * 0.5) * epsilon
    end
    local Encoder = Layer:extend("Encoder")
    function Encoder:__init(latent_dim, intermediate_dim, kw)
      kw = kw or {}
      kw.name = kw.name or "encoder"
      Encoder.super.__init(self, kw)
      self.dense_proj = klua.layers.Dense(intermediate_dim, { activation = "relu" })
      self.dense_mean = klua.layers.Dense(latent_dim)
      self.dense_log_var = klua.layers.Dense(latent_dim)
      self.sampling = Sampling()
    end
    function Encoder:call(inputs)
      local x = self.dense_proj(inputs)
      local z_mean, z_log_var = self.dense_mean(x), self.dense_log_var(x)
      return z_mean, z_log_var, self.sampling({ z_mean, z_log_var })
    end
    local Decoder = Layer:extend("Decoder")
    function Decoder:__init(original_dim, intermediate_dim)
      Decoder.super.__init(self, { name = "decoder" })
      self.dense_proj = klua.layers.Dense(intermediate_dim, { activation = "relu" })
      self.dense_output = klua.layers.Dense(original_dim, { activation = "sigmoid" })
    end
    function Decoder:call(inputs) return self.dense_output(self.dense_proj(inputs)) end
    local VAE = Layer:extend("VariationalAutoEncoder")
    function VAE:__init(original_dim, intermediate_dim, latent_dim)
      VAE.super.__init(self, { name = "autoencoder" })
      self.encoder = Encoder(latent_dim, intermediate_dim)
      self.decoder = Decoder(original_dim, intermediate_dim)
    end
    function VAE:call(inputs)
      local z_mean, z_log_var, z = self.encoder(inputs)
      local reconstructed = self.decoder(z)
      local kl = ops.mean(z_log_var - ops.square(z_mean) - ops.exp(z_log_var) + 1) * -0.5
      self:add_loss(kl)
      return reconstructed
    end

    local vae = VAE(12, 8, 2)
    local x = klua.random.uniform({ 16, 12 })
    local lr, first, last = 0.5, nil, nil
    for step = 1, 40 do
      local tape = klua.GradientTape()
      local loss = tape:record(function()
        local reconstructed = vae(x)
        local l = ops.mean(ops.square(reconstructed - x))
        for _, extra in ipairs(vae.losses) do l = l + extra end
        return l
      end)
      local weights = vae.trainable_weights
      local grads = tape:gradient(loss, weights)
      for i, w in ipairs(weights) do if grads[i] then w:assign_sub(grads[i] * lr) end end
      first = first or loss:item()
      last = loss:item()
    end
    assert.are.equal("encoder", vae.encoder.name)
    assert.are.equal(10, #vae.weights)            -- 5 Dense layers
    assert.are.equal(1, #vae.losses)
    assert(last < first, ("the loss falls: %.4f -> %.4f"):format(first, last))
  end)
end)

describe("the reference notes' custom layers", function()
  before_each(function() klua.random.seed(11) end)

  it("CustomNonLinear sin((x·w + b) * a) has three trainable weights and trains with a tape and SGD", function()
    local CustomNonLinear = Layer:extend("CustomNonLinear")
    function CustomNonLinear:__init(units, kw)
      CustomNonLinear.super.__init(self, kw)
      self.units = units
    end
    function CustomNonLinear:build(input_shape)
      self.w = self:add_weight { shape = { input_shape[#input_shape], self.units }, initializer = "random_normal", trainable = true }
      self.b = self:add_weight { shape = { self.units }, initializer = "zeros", trainable = true }
      self.a = self:add_weight { shape = { self.units }, initializer = "random_normal", trainable = true }
    end
    function CustomNonLinear:call(inputs)
      local output = ops.matmul(inputs, self.w) + self.b
      return ops.sin(output * self.a)
    end

    local layer = CustomNonLinear(4)
    local x = klua.random.normal({ 32, 3 })
    local target = ops.sin(ops.matmul(x, klua.tensor { { 0.5, -0.3, 0.2, 0.1 }, { 0.4, 0.6, -0.2, 0.3 }, { -0.1, 0.2, 0.5, -0.4 } }))
    layer(x)
    assert.are.equal(3, #layer.trainable_weights)
    assert.are.same({ 3, 4 }, layer.w:shape())
    local losses = {}
    for step = 1, 60 do
      local tape = klua.GradientTape()
      local loss = tape:record(function() return ops.mean(ops.square(layer(x) - target)) end)
      local grads = tape:gradient(loss, layer.trainable_weights)
      assert.are.equal(3, grads.n)
      for i, v in ipairs(layer.trainable_weights) do v:assign_sub(grads[i] * 2.0) end
      losses[step] = loss:item()
    end
    assert(losses[60] < losses[1] * 0.5, ("loss %.4f -> %.4f"):format(losses[1], losses[60]))
  end)

  it("CustomInitLayer uses GlorotNormal and ones initializers", function()
    local CustomInitLayer = Layer:extend("CustomInitLayer")
    function CustomInitLayer:__init(units) CustomInitLayer.super.__init(self); self.units = units end
    function CustomInitLayer:build(input_shape)
      self.w = self:add_weight { shape = { input_shape[#input_shape], self.units },
        initializer = klua.initializers.GlorotNormal(), trainable = true }
      self.b = self:add_weight { shape = { self.units }, initializer = klua.initializers.ones(), trainable = true }
    end
    function CustomInitLayer:call(inputs) return ops.matmul(inputs, self.w) + self.b end
    local layer = CustomInitLayer(50)
    local y = layer(klua.zeros { 2, 40 })
    assert.are.same({ 2, 50 }, y:shape())
    assert.are.equal(1, ops.min(y):item())           -- zeros · w + ones
    assert.are.equal(1, ops.max(layer.b):item())
    -- glorot_normal: stddev sqrt(2 / (40 + 50)), truncated at two (pre-correction) deviations
    local std = ops.std(layer.w):item()
    assert(math.abs(std - math.sqrt(2 / 90)) < 0.2 * math.sqrt(2 / 90), "std " .. std)
    assert(ops.max(ops.abs(layer.w)):item() <= 2 * math.sqrt(2 / 90) / 0.87962566103423978 + 1e-6)
  end)

  it("a layer that calls super build and names its weights, with an activation from activations.get", function()
    local NonLinearTrainableLayer = Layer:extend("NonLinearTrainableLayer")
    function NonLinearTrainableLayer:__init(units, kw)
      kw = kw or {}
      NonLinearTrainableLayer.super.__init(self, kw)
      self.units = units
      self.activation = klua.activations.get(kw.activation or "relu")
    end
    function NonLinearTrainableLayer:build(input_shape)
      self.w = self:add_weight { shape = { input_shape[#input_shape], self.units }, initializer = "he_normal", trainable = true, name = "kernel" }
      self.b = self:add_weight { shape = { self.units }, initializer = "zeros", trainable = true, name = "bias" }
      NonLinearTrainableLayer.super.build(self, input_shape)
    end
    function NonLinearTrainableLayer:call(inputs) return self.activation(ops.matmul(inputs, self.w) + self.b) end
    local layer = NonLinearTrainableLayer(10, { activation = "relu" })
    local y = layer(klua.random.normal({ 100, 5 }))
    assert.are.same({ 100, 10 }, y:shape())
    assert.are.equal(0, ops.min(y):item())
    assert.are.equal("kernel", layer.weights[1].name)
    assert.are.equal("bias", layer.weights[2].name)
    assert.are.equal(60, layer:count_params())
  end)

  it("a model-like layer that builds its sublayers by hand builds them only once", function()
    local MyLayer = Layer:extend("MyLayer")
    function MyLayer:__init(units, kw) MyLayer.super.__init(self, kw); self.units = units end
    function MyLayer:build(input_shape)
      self.w = self:add_weight { shape = { input_shape[#input_shape], self.units }, initializer = "glorot_uniform", name = "kernel" }
      self.b = self:add_weight { shape = { self.units }, initializer = "zeros", name = "bias" }
      self.built = true
    end
    function MyLayer:call(inputs) return ops.relu(ops.matmul(inputs, self.w) + self.b) end
    local MyModel = Layer:extend("MyModel")
    function MyModel:__init()
      MyModel.super.__init(self)
      self.dense1 = MyLayer(64)
      self.dense2 = MyLayer(10)
    end
    function MyModel:build(input_shape)
      self.dense1:build(input_shape)
      self.dense2:build({ input_shape[1], self.dense1.units })
    end
    function MyModel:call(inputs) return self.dense2(self.dense1(inputs)) end
    local model = MyModel()
    model:build({ -1, 100 })                 -- -1: the unknown batch size
    assert.is_true(model.built and model.dense1.built and model.dense2.built)
    assert.are.equal(4, #model.weights)
    local y = model(klua.ones { 3, 100 })
    assert.are.same({ 3, 10 }, y:shape())
    assert.are.equal(4, #model.weights)     -- no second set of weights
    assert.are.equal(100 * 64 + 64 + 64 * 10 + 10, model:count_params())
  end)

  it("a Dense layer built for (None, 10) trains on its own for regression", function()
    local dense_layer = klua.layers.Dense(1, { input_shape = { 10 } })
    dense_layer:build({ -1, 10 })
    local X = klua.random.uniform({ 64, 10 })
    local y = ops.matmul(X, klua.random.normal({ 10, 1 })) * 0.5
    local first, last
    for epoch = 1, 30 do
      local tape = klua.GradientTape()
      local loss = tape:record(function() return ops.mean(ops.square(dense_layer(X) - y)) end)
      local grads = tape:gradient(loss, dense_layer.trainable_variables)
      for i, v in ipairs(dense_layer.trainable_variables) do v:assign_sub(grads[i] * 0.1) end
      first = first or loss:item()
      last = loss:item()
    end
    assert(last < first * 0.5, ("loss %.4f -> %.4f"):format(first, last))
    assert.are.same({ -1, 10 }, dense_layer.batch_input_shape)
  end)
end)

describe("Layer", function()
  it("names layers per class like Keras: dense, dense_1, ... and snake_cases class names", function()
    Layer.reset_names()
    assert.are.equal("dense", klua.layers.Dense(2).name)
    assert.are.equal("dense_1", klua.layers.Dense(2).name)
    assert.are.equal("mine", klua.layers.Dense(2, { name = "mine" }).name)
    assert.are.equal("mlp_block", Layer.snake_case("MLPBlock"))
    assert.are.equal("conv2d", Layer.snake_case("Conv2D"))
    assert.are.equal("batch_normalization", Layer.snake_case("BatchNormalization"))
  end)

  it("tracks weights in assignment order, through tables of layers, without duplicates", function()
    local Stack = Layer:extend("Stack")
    function Stack:__init()
      Stack.super.__init(self)
      self.scale = self:add_weight { shape = { 1 }, initializer = "ones", name = "scale" }
      self.blocks = { klua.layers.Dense(3), klua.layers.Dense(2) }
      self.shared = self.blocks[1]                 -- the same layer twice
      self.head = klua.layers.Dense(1, { use_bias = false })
    end
    function Stack:call(x)
      for _, b in ipairs(self.blocks) do x = b(x) end
      return self.head(x) * self.scale
    end
    local s = Stack()
    s(klua.ones { 2, 4 })
    local names = {}
    for i, w in ipairs(s.weights) do names[i] = w.name .. table.concat(w:shape(), "x") end
    assert.are.same({ "scale1", "kernel4x3", "bias3", "kernel3x2", "bias2", "kernel2x1" }, names)
  end)

  it("freezes a layer and its sublayers with trainable = false, and unfreezes them", function()
    local Outer = Layer:extend("FreezeOuter")
    function Outer:__init() Outer.super.__init(self); self.inner = klua.layers.Dense(2); self.bn = klua.layers.BatchNormalization() end
    function Outer:call(x) return self.bn(self.inner(x)) end
    local o = Outer()
    o(klua.ones { 3, 2 })
    assert.are.equal(4, #o.trainable_weights)       -- kernel, bias, gamma, beta
    assert.are.equal(2, #o.non_trainable_weights)   -- the moving statistics
    o.inner.trainable = false
    assert.are.equal(2, #o.trainable_weights)
    assert.is_false(o.inner.kernel.trainable)       -- a tape no longer watches it
    o.trainable = false
    assert.are.equal(0, #o.trainable_weights)
    assert.are.equal(6, #o.non_trainable_weights)
    assert.is_false(o.bn.trainable)
    o.trainable = true
    assert.are.equal(4, #o.trainable_weights)
    assert.is_true(o.inner.kernel.trainable)
    -- the moving statistics stay non-trainable
    assert.is_false(o.bn.moving_mean.trainable)
  end)

  it("creates weights of a frozen layer non-trainable when it builds later", function()
    local d = klua.layers.Dense(2)
    d.trainable = false
    d(klua.ones { 1, 3 })
    assert.are.equal(0, #d.trainable_weights)
    assert.is_false(d.kernel.trainable)
    d.trainable = true
    assert.are.equal(2, #d.trainable_weights)
  end)

  it("raises errors that name the layer", function()
    local d = klua.layers.Dense(10, { name = "dense_3" })
    d(klua.ones { 2, 784 })
    local ok, err = pcall(d, klua.ones { 2, 100 })
    assert.is_false(ok)
    assert.matches("Dense 'dense_3': expected last input dimension 784, got 100", err, 1, true)
    assert.matches("layer_api_spec.lua", err, 1, true)   -- reported at the caller's line
    -- an op error inside a custom call is prefixed with the layer
    local Bad = Layer:extend("BadLayer")
    function Bad:call(x) return ops.matmul(x, klua.ones { 5, 5 }) end
    ok, err = pcall(Bad { name = "bad" }, klua.ones { 2, 3 })
    assert.is_false(ok)
    assert.matches("BadLayer 'bad': .*matmul: shapes %(2,3%) and %(5,5%) are incompatible", err)
    ok, err = pcall(function() return klua.layers.Dense(-3) end)
    assert.is_false(ok)
    assert.matches("Dense: units must be a positive integer. Received: units=-3", err, 1, true)
    ok, err = pcall(function() local l = Layer(); l(klua.ones { 1 }) end)
    assert.is_false(ok)
    assert.matches("Layer 'layer[_%d]*': call%(%) is not implemented", err)
    ok, err = pcall(function() d.weights = {} end)
    assert.is_false(ok)
    assert.matches("'weights' is read%-only", err)
  end)

  it("validates add_weight arguments and reports them with the layer's name", function()
    local l = Layer { name = "holder" }
    local ok, err = pcall(function() l:add_weight { shape = { 2, -1 } } end)
    assert.is_false(ok)
    assert.matches("Layer 'holder': add_weight: shape %(2,None%) has an unknown size", err)
    ok, err = pcall(function() l:add_weight { shape = { 2 }, initializer = "nope" } end)
    assert.is_false(ok)
    assert.matches("unknown initializer 'nope'", err)
    ok, err = pcall(function() l:add_weight { shape = { 2 }, initializer = function() return klua.ones { 3 } end } end)
    assert.is_false(ok)
    assert.matches("returned shape %(3,%), expected %(2,%)", err)
    -- defaults: glorot_uniform, trainable, float32
    local v = l:add_weight { shape = { 4, 4 } }
    assert.is_true(v.trainable)
    assert(ops.max(ops.abs(v)):item() <= math.sqrt(6 / 8))
  end)

  it("computes output shapes, counts parameters and prints readably", function()
    local d = klua.layers.Dense(5, { name = "d" })
    assert.are.same({ -1, 3, 5 }, d:compute_output_shape({ -1, 3, 7 }))
    assert.are.equal("Dense 'd' (not built)", tostring(d))
    local ok, err = pcall(d.count_params, d)
    assert.is_false(ok)
    assert.matches("Dense 'd': count_params%(%) needs the weights", err)
    d(klua.ones { 2, 7 })
    assert.are.equal(40, d:count_params())
    assert.are.equal("Dense 'd' (2 weights, 40 params)", tostring(d))
    -- the default compute_output_shape runs the layer on zeros, batch kept unknown
    assert.are.same({ -1, 5 }, Linear(5):compute_output_shape({ -1, 3 }))
  end)

  it("gets and sets weights with shape checks", function()
    local d = klua.layers.Dense(2, { name = "gs" })
    d(klua.ones { 1, 3 })
    local values = d:get_weights()
    assert.are.equal(2, #values)
    d:set_weights({ klua.ones { 3, 2 }, { 1, 2 } })
    assert.are.same({ { 4, 5 } }, d(klua.ones { 1, 3 }):totable())
    local ok, err = pcall(d.set_weights, d, { klua.ones { 2, 2 }, { 1, 2 } })
    assert.is_false(ok)
    assert.matches("Dense 'gs': set_weights: weight 1 %(gs/kernel%) has shape %(3,2%), got %(2,2%)", err)
  end)

  it("accepts plain Lua tables as inputs and passes several positional inputs to call", function()
    local Pair = Layer:extend("Pair")
    local shapes
    function Pair:build(a, b) shapes = { a, b } end
    function Pair:call(a, b, kw) return a + b end
    local p = Pair()
    local y = p({ { 1, 2 } }, klua.tensor { { 10, 20 } }, { training = true })
    assert.are.same({ { 11, 22 } }, y:totable())
    assert.are.same({ { 1, 2 }, { 1, 2 } }, shapes)
  end)

  it("adds an activity regularizer's loss, divided by the batch size", function()
    local d = klua.layers.Dense(2, { activity_regularizer = klua.regularizers.l1(0.1), kernel_initializer = "ones" })
    d(klua.ones { 4, 3 })
    -- output is 3 everywhere: 0.1 * sum(|y|) / batch = 0.1 * 24 / 4
    assert.are.equal(1, #d.losses)
    near(d.losses[1]:item(), 0.6)
  end)
end)
