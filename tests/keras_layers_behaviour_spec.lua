-- keras_layers_behaviour_spec.lua — where klua used to differ from Keras 3 in
-- layers and configs ("Keras fidelity"): the documented custom layer saves
-- and loads, from_config has one spelling for every kind, every built-in
-- config round-trips, masked BatchNormalization, the losses of a deferred
-- Sequential build, softmax over several axes, the activations Keras 3 added,
-- and Constant with a tensor value.
local klua = require("klua")
local class = require("klua.class")
local json = require("klua.json")
local helpers = require("helpers")
local ops, L = klua.ops, klua.layers
local near = helpers.near

local function copy(v)
  if type(v) ~= "table" or getmetatable(v) ~= nil then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

-- The tape's gradient of sum(f(x) * w) (w: fixed weights in [0.5, 1.5], so
-- that each output counts differently) against central differences with step
-- 1e-2 in float32, element by element; callers keep inputs away from kinks.
local function gradient_check(f, x, what)
  local w = klua.random.uniform(f(x):shape(), { minval = 0.5, maxval = 1.5, seed = 11 })
  local v = klua.Variable(x)
  local tape = klua.GradientTape()
  local loss = tape:record(function() return ops.sum(f(v) * w) end)
  local g = tape:gradient(loss, v):tolist()
  local base, shape = x:tolist(), x:shape()
  for i = 1, #base do
    local function at(d)
      local p = { unpack(base) }
      p[i] = p[i] + d
      return ops.sum(f(ops.reshape(klua.tensor(p), shape)) * w):item()
    end
    local numeric = (at(1e-2) - at(-1e-2)) / 2e-2
    assert(math.abs(numeric - g[i]) < 2e-3 + 2e-2 * math.abs(numeric),
      ("%s: d/dx[%d] is %.6g by the tape, %.6g by finite differences"):format(what, i, g[i], numeric))
  end
end

--------------------------------------------------------------------------------
-- 3. Every built-in class's config round-trips, with non-default arguments.

-- One row per class: the arguments (not the defaults) it is built with, or a
-- function that builds it, or ABSTRACT with the reason it has no instances of
-- its own. A class missing here fails the spec.
local ABSTRACT = {}
local function abstract(why) return { [ABSTRACT] = why } end

local ROWS = {
  layers = {
    Dense = { units = 3, activation = "relu", use_bias = false, kernel_initializer = "he_normal",
      kernel_regularizer = "l2", kernel_constraint = "non_neg", input_shape = { 4 } },
    Activation = { activation = "tanh" },
    Dropout = { rate = 0.3, seed = 7, noise_shape = { -1, 1 } },
    Flatten = { name = "flat" },              -- data_format: klua is channels-last only
    Reshape = { target_shape = { 2, 3 } },
    Permute = { dims = { 2, 1 } },
    RepeatVector = { n = 4 },
    Lambda = function() return L.Lambda { ["function"] = ops.relu, output_shape = { 5 }, arguments = { a = 1 } } end,
    BatchNormalization = { axis = 2, momentum = 0.9, epsilon = 0.01, center = false, scale = false,
      moving_variance_initializer = "zeros", gamma_regularizer = "l1" },
    LayerNormalization = { axis = -2, epsilon = 0.01, center = false, rms_scaling = true, gamma_initializer = "zeros" },
    Embedding = { input_dim = 10, output_dim = 3, mask_zero = true, embeddings_initializer = "ones" },
    Masking = { mask_value = -1 },
    Add = { name = "add_them" }, Subtract = { name = "sub_them" }, Multiply = { name = "mul_them" },
    Average = { name = "avg_them" }, Maximum = { name = "max_them" }, Minimum = { name = "min_them" },
    Concatenate = { axis = 2 },
    Merge = abstract("the base of the merge layers: subclasses define the merge"),
    ReLU = { max_value = 6, negative_slope = 0.1, threshold = 0.5 },
    LeakyReLU = { negative_slope = 0.1 },
    ELU = { alpha = 0.5 },
    Softmax = { axis = { 2, 3 } },
    Conv1D = { filters = 2, kernel_size = 3, strides = 2, padding = "same", dilation_rate = 1, activation = "relu",
      use_bias = false },
    Conv2D = { filters = 2, kernel_size = { 3, 2 }, strides = { 2, 1 }, padding = "same", dilation_rate = { 1, 1 },
      groups = 2, activation = "sigmoid", kernel_initializer = "ones", bias_regularizer = "l2" },
    Conv2DTranspose = { filters = 2, kernel_size = 3, strides = 2, padding = "same", output_padding = 1 },
    DepthwiseConv2D = { kernel_size = 3, depth_multiplier = 2, padding = "same", depthwise_initializer = "ones" },
    MaxPooling1D = { pool_size = 3, strides = 1, padding = "same" },
    MaxPooling2D = { pool_size = { 3, 3 }, strides = { 1, 1 }, padding = "same" },
    AveragePooling1D = { pool_size = 3, strides = 1, padding = "same" },
    AveragePooling2D = { pool_size = { 3, 3 }, strides = { 1, 1 }, padding = "same" },
    GlobalAveragePooling1D = { keepdims = true }, GlobalAveragePooling2D = { keepdims = true },
    GlobalMaxPooling1D = { keepdims = true }, GlobalMaxPooling2D = { keepdims = true },
    UpSampling2D = { size = { 2, 3 }, interpolation = "bilinear" },
    ZeroPadding2D = { padding = { { 1, 2 }, { 3, 4 } } },
    SimpleRNN = { units = 3, activation = "relu", return_sequences = true, go_backwards = true, seed = 3 },
    LSTM = { units = 3, recurrent_activation = "hard_sigmoid", unit_forget_bias = false, return_state = true },
    GRU = { units = 3, reset_after = false, use_bias = false, return_sequences = true },
    Bidirectional = function() return L.Bidirectional { layer = L.LSTM { units = 2, return_sequences = true }, merge_mode = "sum" } end,
    TimeDistributed = function() return L.TimeDistributed { layer = L.Dense { units = 2, activation = "relu" } } end,
    MultiHeadAttention = { num_heads = 2, key_dim = 3, value_dim = 4, dropout = 0.1, use_bias = false, seed = 5 },
    Conv1DTranspose = { filters = 2, kernel_size = 3, strides = 2, padding = "same", use_bias = false },
    Conv3D = { filters = 2, kernel_size = { 2, 3, 1 }, strides = 2, padding = "same", activation = "relu" },
    Conv3DTranspose = { filters = 2, kernel_size = 2, strides = 2, padding = "same" },
    DepthwiseConv1D = { kernel_size = 3, depth_multiplier = 2, padding = "same" },
    SeparableConv1D = { filters = 2, kernel_size = 3, depth_multiplier = 2, padding = "same", activation = "relu" },
    SeparableConv2D = { filters = 2, kernel_size = 3, depth_multiplier = 2, strides = 2, use_bias = false },
    MaxPooling3D = { pool_size = 3, strides = 1, padding = "same" },
    AveragePooling3D = { pool_size = { 2, 2, 1 }, strides = 1, padding = "same" },
    GlobalAveragePooling3D = { keepdims = true }, GlobalMaxPooling3D = { keepdims = true },
    Cropping1D = { cropping = { 1, 2 } },
    Cropping2D = { cropping = { { 1, 2 }, { 0, 1 } } },
    Cropping3D = { cropping = { { 1, 0 }, { 0, 1 }, { 2, 2 } } },
    ZeroPadding1D = { padding = { 1, 2 } },
    ZeroPadding3D = { padding = { { 1, 0 }, { 0, 1 }, { 2, 2 } } },
    UpSampling1D = { size = 3 },
    UpSampling3D = { size = { 2, 1, 3 } },
    Dot = { axes = { 1, 2 }, normalize = true },
    EinsumDense = { equation = "ab,bc->ac", output_shape = { 4 }, bias_axes = "c", activation = "relu" },
    GroupNormalization = { groups = 2, axis = -1, epsilon = 0.01, center = false, gamma_initializer = "zeros" },
    Identity = { name = "same" },
    PReLU = { alpha_initializer = "ones", shared_axes = { 2 }, alpha_regularizer = "l2" },
    UnitNormalization = { axis = { 1, 2 } },
    RMSNormalization = { axis = { 2, 3 }, epsilon = 1e-3 },
    TextVectorization = { max_tokens = 20, standardize = "lower", split = "character", ngrams = 2,
      output_mode = "count", pad_to_max_tokens = true, vocabulary = { "a", "b", "a b" } },
  },
  losses = {
    Loss = abstract("the base class: call() is the subclass's"),
    LossFunctionWrapper = abstract("wraps a Lua function, which a config cannot hold"),
    MeanSquaredError = { reduction = "sum", name = "mse_sum" },
    MeanAbsoluteError = { reduction = "none" },
    MeanAbsolutePercentageError = { reduction = "sum" },
    MeanSquaredLogarithmicError = { reduction = "sum" },
    Huber = { delta = 2.5 },
    LogCosh = { reduction = "sum" },
    KLDivergence = { reduction = "sum" },
    Poisson = { reduction = "sum" },
    CosineSimilarity = { axis = 1 },
    Hinge = { reduction = "sum" }, SquaredHinge = { reduction = "sum" }, CategoricalHinge = { reduction = "sum" },
    BinaryCrossentropy = { from_logits = true, label_smoothing = 0.1, axis = 1 },
    BinaryFocalCrossentropy = { apply_class_balancing = true, alpha = 0.5, gamma = 3, from_logits = true, label_smoothing = 0.1 },
    CategoricalCrossentropy = { from_logits = true, label_smoothing = 0.2, axis = 1 },
    SparseCategoricalCrossentropy = { from_logits = true, ignore_class = 0, axis = 1 },
    CategoricalFocalCrossentropy = { alpha = 0.5, gamma = 3, from_logits = true, label_smoothing = 0.1 },
    CategoricalGeneralizedCrossEntropy = { q = 0.3 },
    CTC = { reduction = "sum" },
    Circle = { gamma = 32, margin = 0.5 },
    Dice = { reduction = "sum", axis = { 2 } },
    Tversky = { alpha = 0.3, beta = 0.7 },
  },
  metrics = {
    Metric = abstract("the base class: update_state and result are the subclass's"),
    MeanMetricWrapper = abstract("wraps a Lua function, which a config cannot hold"),
    Mean = { name = "my_mean" }, Sum = { name = "my_sum" },
    Accuracy = { name = "acc" },
    BinaryAccuracy = { threshold = 0.9 },
    CategoricalAccuracy = { name = "cat" }, SparseCategoricalAccuracy = { name = "sparse_cat" },
    TopKCategoricalAccuracy = { k = 3 },
    SparseTopKCategoricalAccuracy = { k = 2 },
    MeanSquaredError = { name = "m" }, MeanAbsoluteError = { name = "a" }, RootMeanSquaredError = { name = "r" },
    Precision = { thresholds = 0.3, class_id = 1 },
    Recall = { thresholds = { 0.2, 0.6 } },
    AUC = { num_thresholds = 50, curve = "PR", summation_method = "minoring", multi_label = true, num_labels = 3,
      from_logits = true },
    FBetaScore = { average = "macro", beta = 2, threshold = 0.4 },
    F1Score = { average = "weighted", threshold = 0.6 },
    MeanAbsolutePercentageError = { name = "mape" }, MeanSquaredLogarithmicError = { name = "msle" },
    LogCoshError = { name = "lc" }, CosineSimilarity = { axis = 1 },
    Hinge = { name = "h" }, SquaredHinge = { name = "sh" }, CategoricalHinge = { name = "ch" },
    KLDivergence = { name = "kl" }, Poisson = { name = "p" },
    BinaryCrossentropy = { from_logits = true, label_smoothing = 0.1 },
    CategoricalCrossentropy = { from_logits = true, label_smoothing = 0.1, axis = 1 },
    SparseCategoricalCrossentropy = { from_logits = true, axis = 1, ignore_class = 0 },
    PearsonCorrelation = { axis = 1 }, ConcordanceCorrelation = { axis = 1 },
    TruePositives = { thresholds = 0.3 }, FalsePositives = { thresholds = { 0.2, 0.7 } },
    TrueNegatives = { thresholds = 0.3 }, FalseNegatives = { thresholds = 0.6 },
    SensitivityAtSpecificity = { specificity = 0.7, num_thresholds = 50, class_id = 1 },
    SpecificityAtSensitivity = { sensitivity = 0.7, num_thresholds = 50 },
    PrecisionAtRecall = { recall = 0.6, num_thresholds = 50 },
    RecallAtPrecision = { precision = 0.6, num_thresholds = 50, class_id = 2 },
    R2Score = { class_aggregation = "variance_weighted_average", num_regressors = 2 },
    IoU = { num_classes = 3, target_class_ids = { 0, 2 }, ignore_class = 1, sparse_y_pred = false },
    MeanIoU = { num_classes = 3, ignore_class = 0, sparse_y_true = false },
    BinaryIoU = { target_class_ids = { 1 }, threshold = 0.3 },
    OneHotIoU = { num_classes = 3, target_class_ids = { 1 } },
    OneHotMeanIoU = { num_classes = 4 },
  },
  optimizers = {
    Optimizer = abstract("the base class: the update rule is the subclass's"),
    SGD = { learning_rate = 0.1, momentum = 0.9, nesterov = true, weight_decay = 0.01, clipnorm = 1 },
    Adam = { learning_rate = 0.01, beta_1 = 0.8, beta_2 = 0.99, epsilon = 1e-6, amsgrad = true, clipvalue = 0.5 },
    AdamW = { learning_rate = 0.01, weight_decay = 0.1, amsgrad = true },
    RMSprop = { learning_rate = 0.01, rho = 0.8, momentum = 0.5, centered = true, global_clipnorm = 2 },
    Adagrad = { learning_rate = 0.01, initial_accumulator_value = 0.5, epsilon = 1e-6 },
    Adadelta = { learning_rate = 0.5, rho = 0.9, epsilon = 1e-6 },
    Adamax = { learning_rate = 0.01, beta_1 = 0.8, beta_2 = 0.99 },
    Nadam = { learning_rate = 0.01, beta_1 = 0.8, beta_2 = 0.99 },
    Lion = { learning_rate = 0.01, beta_1 = 0.8, beta_2 = 0.9 },
    Adafactor = { learning_rate = 0.01, beta_2_decay = -0.7, epsilon_2 = 1e-2, clip_threshold = 2, relative_step = false },
    Ftrl = { learning_rate = 0.01, learning_rate_power = -0.7, l1_regularization_strength = 0.1, beta = 0.5 },
    Lamb = { learning_rate = 0.01, beta_1 = 0.8, beta_2 = 0.99, epsilon = 1e-6 },
    Muon = { learning_rate = 0.01, adam_beta_1 = 0.8, exclude_layers = { "head" }, exclude_embeddings = false,
      ns_steps = 3, nesterov = false, rms_rate = false },
  },
  initializers = {
    Initializer = abstract("the base class: generate() is the subclass's"),
    Zeros = {}, Ones = {},                     -- no arguments (Keras's neither)
    Constant = { value = 0.5 },
    RandomNormal = { mean = 1, stddev = 2, seed = 3 },
    TruncatedNormal = { mean = 1, stddev = 2, seed = 3 },
    RandomUniform = { minval = -2, maxval = 3, seed = 3 },
    VarianceScaling = { scale = 2, mode = "fan_out", distribution = "uniform", seed = 3 },
    GlorotUniform = { seed = 1 }, GlorotNormal = { seed = 2 }, HeNormal = { seed = 3 }, HeUniform = { seed = 4 },
    LecunNormal = { seed = 5 }, LecunUniform = { seed = 6 },
    Orthogonal = { gain = 2, seed = 3 },
    Identity = { gain = 3 },
  },
  regularizers = {
    Regularizer = abstract("the base class: __call is the subclass's"),
    L1 = { l1 = 0.5 }, L2 = { l2 = 0.25 }, L1L2 = { l1 = 0.5, l2 = 0.25 },
  },
  constraints = {
    Constraint = abstract("the base class (the identity)"),
    MaxNorm = { max_value = 3, axis = 2 },
    NonNeg = {},                               -- no arguments (Keras's neither)
    UnitNorm = { axis = { 1, 2 } },
    MinMaxNorm = { min_value = 0.5, max_value = 2, rate = 0.5, axis = 2 },
  },
  schedules = {
    LearningRateSchedule = abstract("the base class: call(step) is the subclass's"),
    ExponentialDecay = { initial_learning_rate = 0.1, decay_steps = 10, decay_rate = 0.5, staircase = true },
    InverseTimeDecay = { initial_learning_rate = 0.1, decay_steps = 10, decay_rate = 0.5, staircase = true },
    PiecewiseConstantDecay = { boundaries = { 10, 20 }, values = { 1, 0.5, 0.1 } },
    PolynomialDecay = { initial_learning_rate = 0.1, decay_steps = 10, end_learning_rate = 0.01, power = 2, cycle = true },
    CosineDecay = { initial_learning_rate = 0.1, decay_steps = 10, alpha = 0.1, warmup_target = 0.5, warmup_steps = 5 },
    CosineDecayRestarts = { initial_learning_rate = 0.1, first_decay_steps = 10, t_mul = 3, m_mul = 0.5, alpha = 0.1 },
  },
}

-- The modules' tables of built-ins (aliases point at the same class).
local function builtin_classes()
  local layer_table = {}
  for name in pairs(L.files) do layer_table[name] = L[name] end
  local kinds = {
    layers = layer_table, losses = klua.losses, metrics = klua.metrics, optimizers = klua.optimizers,
    initializers = klua.initializers, regularizers = klua.regularizers, constraints = klua.constraints,
    schedules = klua.optimizers.schedules,
  }
  local out = {}
  for kind, t in pairs(kinds) do
    local seen = {}
    for _, v in pairs(t) do
      if class.is_class(v) and not seen[v] then
        seen[v] = true
        out[#out + 1] = { kind = kind, name = rawget(v, "__name"), cls = v }
      end
    end
  end
  table.sort(out, function(a, b) return a.kind .. a.name < b.kind .. b.name end)
  return out
end

-- The given arguments show in the config: plain values as given, objects
-- (initializers, activations given by name) as something.
local function assert_holds(config, args, who)
  for k, v in pairs(args) do
    local got = config[k]
    assert(got ~= nil, ("%s: the config lost %s"):format(who, tostring(k)))
    if type(v) == "number" and type(got) == "table" then          -- strides = 2 is kept as {2}
      for _, g in ipairs(got) do assert(g == v, ("%s: the config has %s=%s, built with %s"):format(who, k, json.encode(got), v)) end
    elseif type(v) ~= "table" and (type(got) ~= "table" or type(v) ~= "string") then   -- a name may come back as an object
      assert(got == v, ("%s: the config has %s=%s, built with %s"):format(who, k, tostring(got), tostring(v)))
    end
  end
end

describe("Every built-in class (layers, losses, metrics, optimizers, initializers, regularizers, constraints, schedules)", function()
  for _, c in ipairs(builtin_classes()) do
    local row = ROWS[c.kind][c.name]
    local who = c.kind .. "." .. c.name
    if type(row) == "table" and row[ABSTRACT] then
      it(who .. " is an abstract base (" .. row[ABSTRACT] .. ")", function()
        assert.is_truthy(c.cls)
      end)
    else
      it(who .. " gives back the same config from from_config(get_config()), built with non-default arguments", function()
        assert(row ~= nil, who .. " has no row in this spec's table of non-default arguments")
        local obj = type(row) == "function" and row() or c.cls(copy(row))
        local config = obj:get_config()
        if type(row) == "table" then assert_holds(config, row, who) end
        assert.are.same(config, c.cls.from_config(copy(config)):get_config())
        assert.are.same(config, c.cls:from_config(copy(config)):get_config())
        if c.name ~= "Lambda" then   -- a Lua function is no JSON value
          local text = json.encode(config)
          assert.are.equal(text, json.encode(c.cls.from_config(json.decode(text)):get_config()))
        end
      end)
    end
  end
end)

--------------------------------------------------------------------------------
-- 1. The README's way of writing a layer saves and loads; a layer whose config
-- cannot rebuild it fails at save, naming it and what to change.

-- The README's "Writing layers" Linear, as written there.
local Linear = klua.Layer:extend("ReadmeLinear")
function Linear:__init(units, kw)
  units, kw = klua.Layer.args(units, kw, "units")
  Linear.super.__init(self, kw)
  self.units = units or 32
end
function Linear:build(input_shape)
  self.w = self:add_weight { shape = { input_shape[#input_shape], self.units }, initializer = "random_normal" }
  self.b = self:add_weight { shape = { self.units }, initializer = "zeros" }
end
function Linear:call(x) return ops.matmul(x, self.w) + self.b end
function Linear:get_config()
  local config = Linear.super.get_config(self)
  config.units = self.units
  return config
end
klua.saving.register_serializable(Linear)

-- The README's former spelling: the first positional argument only.
local Positional = klua.Layer:extend("PositionalLinear")
function Positional:__init(units, kw) Positional.super.__init(self, kw); self.units = units or 32 end
Positional.build, Positional.call, Positional.get_config = Linear.build, Linear.call, Linear.get_config
klua.saving.register_serializable(Positional)

describe("A custom layer written as the README shows", function()
  it("takes Keras's first argument by position or every argument in one keyword table", function()
    assert.are.equal(4, Linear(4).units)
    assert.are.equal("p", Linear(4, { name = "p" }).name)
    assert.are.equal(4, Linear { units = 4 }.units)
    assert.are.equal(32, Linear().units)
  end)

  it("round-trips through get_config and from_config, in both spellings", function()
    local layer = Linear { units = 5, name = "proj" }
    local config = layer:get_config()
    assert.are.same(config, Linear.from_config(config):get_config())
    assert.are.same(config, Linear:from_config(config):get_config())
    assert.are.equal(5, Linear.from_config(config).units)
  end)

  it("saves inside a model and comes back from load_model with its weights", function()
    local dir = helpers.tmpdir()
    local model = klua.Sequential { klua.Input { shape = { 3 } }, Linear { units = 4 }, L.Dense { units = 2 } }
    local x = klua.random.normal { 5, 3 }
    model:save(dir .. "/m.klua")
    local again = klua.models.load_model(dir .. "/m.klua")
    helpers.remove_tree(dir)
    assert.are.equal(4, again.layers[1].units)
    assert.are.equal(0, helpers.max_abs_diff(model(x), again(x)))
  end)

  it("fails at save, not at load, when its constructor cannot take its config, naming the layer and the fix", function()
    local dir = helpers.tmpdir()
    local model = klua.Sequential { klua.Input { shape = { 3 } }, Positional(4, { name = "pos" }) }
    local err = helpers.err_of(model.save, model, dir .. "/m.klua")
    helpers.remove_tree(dir)
    assert.matches("PositionalLinear 'pos': cannot be rebuilt from its config", err, 1, true)
    assert.matches("units=4", err, 1, true)
    assert.matches("klua.Layer.args(first, kw, \"units\")", err, 1, true)
    assert.is_false(helpers.exists(dir .. "/m.klua"))
  end)

  it("leaves the global random stream as it was after that check", function()
    local dir = helpers.tmpdir()
    local model = klua.Sequential { klua.Input { shape = { 5, 3 } }, Linear { units = 4 }, L.Dropout { rate = 0.5 },
      L.LSTM { units = 2 } }
    klua.random.seed(9)
    local want = klua.random.normal { 4 }
    klua.random.seed(9)
    model:save(dir .. "/m.klua")
    local got = klua.random.normal { 4 }
    helpers.remove_tree(dir)
    near(got, want, 0)
  end)

  it("leaves the layer names to come as they were after that check", function()
    klua.Layer.reset_names()
    local model = klua.Sequential { klua.Input { shape = { 3 } }, L.Dense { units = 2 } }
    model:get_config()
    assert.are.equal("dense_1", L.Dense { units = 1 }.name)
  end)
end)

--------------------------------------------------------------------------------
-- 2. from_config: one spelling for every kind.

describe("from_config", function()
  it("works called with a dot or a colon on optimizers, losses, metrics and the rest", function()
    for _, c in ipairs {
      { klua.optimizers.Adam, { learning_rate = 0.5 }, "learning_rate", 0.5 },
      { klua.losses.Huber, { delta = 2 }, "delta", 2 },
      { klua.metrics.BinaryAccuracy, { threshold = 0.9 }, "threshold", 0.9 },
      { klua.initializers.RandomNormal, { stddev = 2 }, "stddev", 2 },
      { klua.regularizers.L2, { l2 = 0.5 }, "l2", 0.5 },
      { klua.constraints.MaxNorm, { max_value = 3 }, "max_value", 3 },
      { klua.optimizers.schedules.ExponentialDecay, { initial_learning_rate = 1, decay_steps = 2, decay_rate = 0.5 }, "decay_steps", 2 },
      { L.Dense, { units = 3 }, "units", 3 },
    } do
      local cls, config, key, want = c[1], c[2], c[3], c[4]
      local a, b = cls.from_config(copy(config)), cls:from_config(copy(config))
      assert.are.equal(cls, getmetatable(a))
      assert.are.equal(cls, getmetatable(b))
      assert.are.equal(want, a[key])
      assert.are.equal(want, b[key])
    end
  end)

  it("keeps both spellings for a class that defines its own, either way, and for its subclasses", function()
    local Loss = klua.losses.Loss
    local Scaled = Loss:extend("ScaledLossSpec")
    function Scaled:__init(kw) Loss.__init(self, kw); self.factor = (kw or {}).factor or 1 end
    function Scaled:call(t, p) return ops.square(p - t) * self.factor end
    function Scaled:get_config() local c = Loss.get_config(self); c.factor = self.factor; return c end
    function Scaled:from_config(config)   -- self is the class called on
      local c = copy(config); c.factor = c.factor * 10; return self(c)
    end
    local Sub = Scaled:extend("ScaledLossSubSpec")
    assert.are.equal(20, Scaled.from_config { factor = 2 }.factor)
    assert.are.equal(20, Scaled:from_config { factor = 2 }.factor)
    assert.are.equal(Sub, getmetatable(Sub.from_config { factor = 2 }))
    assert.are.equal(20, Sub:from_config { factor = 2 }.factor)
    klua.saving.register_serializable(Scaled)
    assert.are.equal(30, klua.losses.get { class_name = "ScaledLossSpec", config = { factor = 3 } }.factor)
    local OneArg = klua.Layer:extend("OneArgFromConfigSpec")
    function OneArg.from_config(config) return OneArg { name = config.name .. "_copy" } end
    assert.are.equal("a_copy", OneArg.from_config { name = "a" }.name)
    assert.are.equal("a_copy", OneArg:from_config { name = "a" }.name)
  end)
end)

--------------------------------------------------------------------------------
-- 4. BatchNormalization with a mask that is broadcast over more axes.

describe("BatchNormalization with a mask", function()
  -- keras/src/layers/normalization/batch_normalization_test.py,
  -- test_masked_broadcast_normalization
  it("broadcasts a mask of shape (1,2,1) over an input (1,2,3,4) as Keras", function()
    local bn = L.BatchNormalization { axis = -1, momentum = 0, epsilon = 1e-3 }
    local y = bn(klua.ones { 1, 2, 3, 4 }, { training = true, mask = klua.ones { 1, 2, 1 } })
    near(y, klua.zeros { 1, 2, 3, 4 }, 1e-6)
    near(bn.moving_mean:value(), { 1, 1, 1, 1 }, 1e-6)
    near(bn.moving_variance:value(), { 0, 0, 0, 0 }, 1e-6)
  end)

  it("takes each feature's statistics over the kept positions of the broadcast mask", function()
    local x = klua.random.normal({ 2, 2, 3, 4 }, { seed = 3 })
    local mask = klua.tensor { { { 1 }, { 0 } }, { { 1 }, { 1 } } }    -- (2,2,1): drops x[1][2][*][*]
    local bn = L.BatchNormalization { momentum = 0, epsilon = 1e-3, center = false, scale = false }
    local y = bn(x, { training = true, mask = mask })
    -- Keras's _moments by hand: the kept rows are the 3 * 3 = 9 positions of each feature
    local t = x:totable()
    for c = 1, 4 do
      local vals = {}
      for i = 1, 2 do for j = 1, 2 do for k = 1, 3 do
        if not (i == 1 and j == 2) then vals[#vals + 1] = t[i][j][k][c] end
      end end end
      local mean, var = 0, 0
      for _, v in ipairs(vals) do mean = mean + v end
      mean = mean / (#vals + 1e-7)
      for _, v in ipairs(vals) do var = var + (v - mean) ^ 2 end
      var = var / (#vals + 1e-7)
      near(bn.moving_mean:value():get(c), mean, 1e-5, "mean " .. c)
      near(bn.moving_variance:value():get(c), var, 1e-5, "variance " .. c)
      near(y:get(2, 1, 2, c), (t[2][1][2][c] - mean) / math.sqrt(var + 1e-3), 1e-4, "output " .. c)
    end
  end)

  -- test_input_fully_masked
  it("gives zeros for a fully masked input", function()
    local bn = L.BatchNormalization { center = false, scale = false }
    near(bn(klua.zeros { 4, 5 }, { training = true, mask = klua.zeros { 4 } }), klua.zeros { 4, 5 }, 0)
  end)

  -- test_bachnorm_ignore_masked_values (one step with momentum 0: the moving
  -- statistics are the batch's over the unmasked timesteps)
  it("ignores timesteps that Masking drops", function()
    local rows = {}
    for i = 1, 10 do rows[i] = { { 1, 5 }, { 2, 5 }, { 0.1, 0.1 }, { 0.1, 0.1 } } end
    local x = klua.tensor(rows)
    local bn = L.BatchNormalization { momentum = 0 }
    bn(L.Masking { mask_value = 0.1 }(x), { training = true })
    near(bn.moving_mean:value(), { 1.5, 5.0 }, 1e-5)
    near(bn.moving_variance:value(), { 0.25, 0.0 }, 1e-5)
  end)

  it("refuses a mask whose rank is not the input's minus one, as Keras", function()
    local bn = L.BatchNormalization()
    helpers.raises("the mask should have one dimension less than the inputs", bn, klua.ones { 2, 3 },
      { training = true, mask = klua.ones { 2, 3 } })
  end)

  it("has gradients matching finite differences through the masked statistics", function()
    local bn = L.BatchNormalization { momentum = 0 }
    local mask = klua.tensor { { 1, 0, 1 }, { 1, 1, 0 } }
    local x = klua.random.normal({ 2, 3, 2 }, { seed = 5 })
    gradient_check(function(v) return bn(v, { training = true, mask = mask }) end, x, "masked BatchNormalization")
  end)
end)

--------------------------------------------------------------------------------
-- 5. The losses of a Sequential built on its first call.

local AddsOne = klua.Layer:extend("AddsOneLossSpec")
function AddsOne:call(x)
  self:add_loss(ops.sum(x) * 0 + 1)
  return x
end

describe("A Sequential without an Input", function()
  it("reports, after its first call, only that call's losses (not those of the build's tracing calls)", function()
    local model = klua.Sequential { L.Dense { units = 2 }, AddsOne() }
    model(klua.ones { 3, 4 })
    local losses = model.losses
    assert.are.equal(1, #losses)
    assert.are.equal(1, losses[1]:item())
    model(klua.ones { 3, 4 })
    assert.are.equal(1, #model.losses)
  end)

  it("adds one term to a custom loop's loss on its first step, as on the next ones", function()
    local model = klua.Sequential { L.Dense { units = 1, activity_regularizer = klua.regularizers.L2(0.5) }, AddsOne() }
    local x = klua.ones { 2, 3 }
    for step = 1, 2 do
      local tape = klua.GradientTape()
      tape:record(function()
        local out = model(x, { training = true })
        assert.are.equal(2, #model.losses, "step " .. step)   -- the activity penalty and AddsOne's
        return ops.sum(out)
      end)
    end
  end)

  it("keeps a probe call's losses out of an enclosing call's (compute_output_shape inside call)", function()
    local Outer = klua.Layer:extend("ProbingOuterSpec")
    function Outer:__init(kw) Outer.super.__init(self, kw); self.inner = AddsOne() end
    function Outer:call(x)
      self.inner:compute_output_shape(x:shape())
      return self.inner(x)
    end
    local outer = Outer()
    outer(klua.ones { 2, 2 })
    assert.are.equal(1, #outer.losses)
  end)
end)

--------------------------------------------------------------------------------
-- 6. softmax over several axes.

-- Softmax over the axes of x (a flat loop in Lua: test reference only).
local function ref_softmax_all(values)
  local m, s, out = -math.huge, 0, {}
  for _, v in ipairs(values) do m = math.max(m, v) end
  for _, v in ipairs(values) do s = s + math.exp(v - m) end
  for i, v in ipairs(values) do out[i] = math.exp(v - m) / s end
  return out
end

describe("softmax and log_softmax over a list of axes", function()
  -- keras/src/activations/activations_test.py, test_softmax_3d_axis_tuple:
  -- axis (1, 2) of a (2, 3, 5) input normalises each x[i] as a whole.
  it("normalise over every axis given, as Keras's tuple axis", function()
    local x = klua.random.uniform({ 2, 3, 5 }, { seed = 4 })
    local s = klua.activations.softmax(x, { 2, 3 })
    local ls = klua.activations.log_softmax(x, { 2, 3 })
    local flat = x:tolist()
    for i = 0, 1 do
      local part = { unpack(flat, i * 15 + 1, i * 15 + 15) }
      local want = ref_softmax_all(part)
      near({ unpack(s:tolist(), i * 15 + 1, i * 15 + 15) }, want, 1e-6)
      local logs = {}
      for j, v in ipairs(want) do logs[j] = math.log(v) end
      near({ unpack(ls:tolist(), i * 15 + 1, i * 15 + 15) }, logs, 1e-5)
    end
    near(ops.softmax(x, { 3, 2 }), s, 1e-7)                  -- the order of the axes does not matter
    near(klua.activations.softmax(x, { axis = { 2, 3 } }), s, 1e-7)
  end)

  -- keras/src/ops/nn_test.py, test_softmax_correctness_with_axis_tuple and
  -- test_log_softmax_correctness_with_axis_tuple: every pair of axes of a (2,2,2) input sums to 1.
  it("sum to one over every pair of axes (Keras's axis-tuple correctness cases)", function()
    local x = klua.tensor { { { 1, 2 }, { 3, 4 } }, { { 5, 6 }, { 7, 8 } } }
    for _, axes in ipairs { { 1, 2 }, { 1, 3 }, { 2, 3 } } do
      near(ops.sum(ops.softmax(x, axes), axes), klua.ones { 2 }, 1e-6)
      near(ops.sum(ops.exp(ops.log_softmax(x, axes)), axes), klua.ones { 2 }, 1e-6)
    end
  end)

  -- keras/src/layers/activations/softmax_test.py, test_softmax_correctness_with_mask (axis=(1, 0))
  it("work in the Softmax layer, with a mask", function()
    local layer = L.Softmax { axis = { 2, 1 } }
    local y = layer(klua.tensor { { 1, 2, 1 }, { 1, 2, 1 } }, { mask = klua.tensor { { 1, 0, 1 }, { 0, 1, 0 } } })
    near(y, { { 0.21194154, 0, 0.21194154 }, { 0, 0.57611686, 0 } }, 1e-6)
    assert.are.same({ 1, 2 }, L.Softmax { 1, 2 }.axis)
    helpers.raises("Softmax: axis must be a non%-zero integer", L.Softmax, { axis = { 1, 0 } })
    helpers.raises("softmax: axis %-1 is given twice", ops.softmax, klua.ones { 2, 2 }, { 2, -1 })
  end)

  it("have gradients matching finite differences", function()
    local x = klua.random.normal({ 2, 3, 2 }, { seed = 6 })
    gradient_check(function(v) return ops.softmax(v, { 2, 3 }) end, x, "softmax over {2, 3}")
    gradient_check(function(v) return ops.log_softmax(v, { 1, 3 }) end, x, "log_softmax over {1, 3}")
  end)
end)

--------------------------------------------------------------------------------
-- 7. Keras 3's newer activations.

describe("The activations Keras 3 added", function()
  local A = klua.activations
  -- keras/src/ops/nn_test.py, NNOpsCorrectnessTest: test_celu, test_glu,
  -- test_tanh_shrink, test_hard_tanh, test_hard_shrink, test_threshold,
  -- test_squareplus, test_soft_shrink, test_sparse_plus, test_sparse_sigmoid,
  -- test_log_sigmoid, test_sparsemax (Keras's inputs and expected values).
  local a = { -1, 0, 1, 2, 3 }
  local b = { -0.5, 0, 1, 2, 3 }
  local cases = {
    { "celu", a, { -0.63212055, 0.0, 1.0, 2.0, 3.0 } },
    { "glu", { -1, 0, 1, 2, 3, 4 }, { -0.8807971, 0.0, 0.98201376 } },
    { "tanh_shrink", a, { -0.238406, 0.0, 0.238406, 1.035972, 2.004945 } },
    { "hard_tanh", a, { -1.0, 0.0, 1.0, 1.0, 1.0 } },
    { "hard_shrink", b, { 0.0, 0.0, 1.0, 2.0, 3.0 } },
    { "threshold", b, { 0.0, 0.0, 1.0, 2.0, 3.0 }, { 0, 0 } },
    { "squareplus", b, { 0.780776, 1.0, 1.618034, 2.414214, 3.302776 } },
    { "soft_shrink", b, { 0.0, 0.0, 0.5, 1.5, 2.5 } },
    { "sparse_plus", b, { 0.0625, 0.25, 1.0, 2.0, 3.0 } },
    { "sparse_sigmoid", a, { 0.0, 0.5, 1.0, 1.0, 1.0 } },
    { "log_sigmoid", a, { -1.3132616, -0.6931472, -0.31326166, -0.126928, -0.04858732 } },
    { "sparsemax", b, { 0.0, 0.0, 0.0, 0.0, 1.0 } },
  }
  for _, c in ipairs(cases) do
    it(c[1] .. " gives Keras's values, by name, as an op and as a tensor method", function()
      local x = klua.tensor(c[2])
      local extra = c[4] or {}
      near(A.get(c[1])(x, unpack(extra)), c[3], 1e-6, c[1])
      near(ops[c[1]](x, unpack(extra)), c[3], 1e-6, c[1])
      near(x[c[1]](x, unpack(extra)), c[3], 1e-6, c[1])
      assert.are.equal(c[1], A.serialize(A.get(c[1])))
    end)
  end

  -- keras/src/activations/activations_test.py (test_celu, test_glu, test_soft_shrink, ...):
  -- the reference formulas, with Keras's optional arguments.
  it("follow Keras's formulas and take Keras's optional arguments, positionally or by name", function()
    local x = klua.tensor { -2.5, -1.2, -0.3, 0.2, 0.7, 1.6 }
    local v = x:tolist()
    local function map(f) local out = {} for i, t in ipairs(v) do out[i] = f(t) end return out end
    near(A.celu(x, 0.5), map(function(t) return math.max(t, 0) + 0.5 * (math.exp(math.min(t, 0) / 0.5) - 1) end), 1e-6)
    near(A.celu(x, { alpha = 0.5 }), A.celu(x, 0.5), 0)
    near(A.squareplus(x, 1), map(function(t) return (t + math.sqrt(t * t + 1)) / 2 end), 1e-6)
    near(A.soft_shrink(x, { threshold = 1 }), map(function(t) return t > 1 and t - 1 or (t < -1 and t + 1 or 0) end), 1e-6)
    near(A.hard_shrink(x, 1), map(function(t) return math.abs(t) > 1 and t or 0 end), 0)
    near(A.threshold(x, { threshold = 0.5, default_value = -9 }), map(function(t) return t > 0.5 and t or -9 end), 0)
    local m = klua.tensor { { 1, 2 }, { 3, 4 }, { 5, 6 }, { 7, 8 } }
    near(A.glu(m, -2), ops.slice_axis(m, 1, 1, 2) * ops.sigmoid(ops.slice_axis(m, 1, 3, 4)), 1e-7)
    helpers.raises("glu: axis size must be divisible by 2", A.glu, klua.ones { 2, 3 })
    helpers.raises("threshold: expected numbers threshold and default_value", A.threshold, x, 0)
  end)

  -- keras/src/activations/activations_test.py, test_sparsemax: linspace(1, 12)
  -- reshaped, along the last axis and along axis -2.
  it("sparsemax matches Keras's cases, sums to one along its axis, and handles ties", function()
    local v = {}
    for i = 1, 12 do v[i] = i end
    local x2 = ops.reshape(klua.tensor(v), { 6, 2 })
    near(A.sparsemax(x2), { { 0, 1 }, { 0, 1 }, { 0, 1 }, { 0, 1 }, { 0, 1 }, { 0, 1 } }, 1e-6)
    local want = { { 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 0 }, { 1, 1 } }
    near(A.sparsemax(x2, -2), want, 1e-6)
    near(A.sparsemax(ops.reshape(klua.tensor(v), { 4, 1, 3 }), -2), klua.ones { 4, 1, 3 }, 1e-6)
    local r = A.sparsemax(klua.tensor { { 0.1, 0.2, 0.15 }, { 0.5, 0.5, -1 } })
    local tau = (0.45 - 1) / 3                                   -- all three in the support
    near(r, { { 0.1 - tau, 0.2 - tau, 0.15 - tau }, { 0.5, 0.5, 0 } }, 1e-6)
    near(ops.sum(r, -1), { 1, 1 }, 1e-6)
  end)

  it("have gradients matching finite differences, away from their kinks", function()
    local x = klua.tensor { { -2.3, -0.7, 0.4, 1.9 }, { -1.6, 0.15, 2.7, -0.3 } }
    for _, name in ipairs { "celu", "glu", "tanh_shrink", "hard_tanh", "hard_shrink", "soft_shrink", "squareplus",
      "sparse_plus", "log_sigmoid", "sparse_sigmoid", "sparsemax" } do
      gradient_check(A.get(name), x, name)
    end
    gradient_check(function(v) return A.celu(v, 0.5) end, x, "celu alpha 0.5")
    gradient_check(function(v) return A.threshold(v, 0.1, 2) end, x, "threshold")
    gradient_check(function(v) return A.glu(v, 1) end, x, "glu axis 1")
    -- supports well inside, outputs well away from zero
    local s = klua.tensor { { 0.1, 0.9, 0.5, -1.2 }, { 2.0, 1.3, 1.95, 0.2 } }
    gradient_check(A.sparsemax, s, "sparsemax")
    gradient_check(function(v) return A.sparsemax(v, 1) end, ops.transpose(s), "sparsemax along axis 1")
  end)

  it("work as layer activations by name", function()
    local d = L.Dense { units = 3, activation = "squareplus" }
    local y = d(klua.ones { 2, 4 })
    near(y, ops.squareplus(ops.matmul(klua.ones { 2, 4 }, d.kernel) + d.bias), 1e-6)
    assert.are.equal("squareplus", d:get_config().activation)
  end)
end)

--------------------------------------------------------------------------------
-- 8. Constant with an array value.

describe("initializers.Constant", function()
  -- keras/src/initializers/constant_initializers_test.py,
  -- test_constant_initializer_array_value (and Keras's value * ones(shape) broadcast)
  it("takes a tensor or a nested list as its value, broadcast to the shape", function()
    local I = klua.initializers
    local v = klua.random.uniform({ 3, 3 }, { seed = 2 })
    near(I.Constant(v)({ 3, 3 }), v, 0)
    near(I.Constant { value = { 1, 2, 3 } }({ 2, 3 }), { { 1, 2, 3 }, { 1, 2, 3 } }, 0)
    near(I.Constant { { 1 }, { 2 } }({ 2, 2 }), { { 1, 1 }, { 2, 2 } }, 0)
    near(I.Constant(6)({ 2 }), { 6, 6 }, 0)
    helpers.raises("Constant: a value of shape %(2,%) does not broadcast to the shape %(2,3%)", I.Constant(klua.tensor { 1, 2 }), { 2, 3 })
    helpers.raises("Constant: value must be a number, a tensor or a nested list", I.Constant, { value = "x" })
  end)

  it("round-trips an array value through its config and a saved model", function()
    local c = klua.initializers.Constant(klua.tensor { { 1, 2 }, { 3, 4 } })
    assert.are.same({ value = { { 1, 2 }, { 3, 4 } } }, c:get_config())
    near(klua.initializers.get(klua.initializers.serialize(c))({ 2, 2 }), { { 1, 2 }, { 3, 4 } }, 0)
    local d = L.Dense { units = 2, kernel_initializer = c }
    local dir = helpers.tmpdir()
    local model = klua.Sequential { klua.Input { shape = { 2 } }, d }
    model:save(dir .. "/m.klua")
    local again = klua.models.load_model(dir .. "/m.klua")
    helpers.remove_tree(dir)
    assert.are.same(d:get_config().kernel_initializer, again.layers[1]:get_config().kernel_initializer)
    near(again.layers[1].kernel:value(), { { 1, 2 }, { 3, 4 } }, 0)
  end)
end)
