-- keras_optimizers_spec.lua — Keras 3's optimizer tests ported: the base
-- optimizer's variables, EMA, gradient accumulation, loss scaling and
-- set_weights (keras/src/optimizers/optimizer_test.py), and Adafactor, Ftrl,
-- Lamb and Muon (keras/src/optimizers/<name>_test.py), with Keras's expected
-- numbers and tolerances (assertAllClose: |got - want| <= atol + rtol * |want|).
local klua = require("klua")
local helpers = require("helpers")
local optimizers = klua.optimizers
local V, T = klua.Variable, klua.tensor

local function close(got, want, rtol, atol, what)
  helpers.near(got, want, { rtol = rtol or 1e-6, atol = atol or 1e-6 }, what)
end

-- np.arange(0.1, 1.1, 0.1) and np.full((10,), 0.01), the golden tests' gradients
local ARANGE, FIRST = {}, {}
for i = 1, 10 do ARANGE[i] = i / 10; FIRST[i] = 0.01 end

-- Keras's test_correctness_with_golden: one step on FIRST, then each row is
-- checked before a step on ARANGE.
local function golden(opt, rows)
  local x = V(klua.ones { 10 })
  opt:apply_gradients({ T(FIRST) }, { x })
  for i, row in ipairs(rows) do
    close(x, row, 5e-4, 5e-4, "golden row " .. i)
    opt:apply_gradients({ T(ARANGE) }, { x })
  end
end

-- Keras's test_weight_decay: var1 decays once in each of three optimizers,
-- var2 is excluded by name, var3 by identity.
local function weight_decay_case(cls)
  local g = klua.zeros {}
  local var1, var2, var3 = V(2.0), V(2.0, { name = "exclude" }), V(2.0)
  cls { learning_rate = 1.0, weight_decay = 0.004 }:apply_gradients({ g }, { var1 })
  local o2 = cls { learning_rate = 1.0, weight_decay = 0.004 }
  o2:exclude_from_weight_decay { var_names = { "exclude" } }
  o2:apply_gradients({ g, g }, { var1, var2 })
  local o3 = cls { learning_rate = 1.0, weight_decay = 0.004 }
  o3:exclude_from_weight_decay { var_list = { var3 } }
  o3:apply_gradients({ g, g }, { var1, var3 })
  close(var1:item(), 1.9760959, 0, 1.5e-6, "var1")   -- assertAlmostEqual(decimal=6)
  close(var2:item(), 2.0, 0, 1.5e-6, "var2")
  close(var3:item(), 2.0, 0, 1.5e-6, "var3")
end

local function round_trips(opt)
  local back = optimizers.get(optimizers.serialize(opt))
  assert.are.equal(getmetatable(opt), getmetatable(back))
  assert.are.same(opt:get_config(), back:get_config())
end

describe("optimizer.variables (optimizer_test.py)", function()
  it("lists iterations and the learning rate, then the slots; a schedule leaves the list", function()
    -- test_setting_lr_to_callable_untracks_lr_var
    local adam = optimizers.Adam { learning_rate = 0.001 }
    assert.are.equal(2, #adam.variables)
    assert.are.equal("iteration", adam.variables[1].name)
    assert.are.equal("learning_rate", adam.variables[2].name)
    close(adam.variables[2]:item(), 0.001, 1e-6, 0)
    adam.learning_rate = optimizers.schedules.PolynomialDecay(adam.learning_rate, 4)
    assert.are.equal(1, #adam.variables)
  end)

  it("orders the variables as Keras's build does: EMA averages, accumulators, then each group of slots", function()
    local function names(opt)
      local out = {}
      for i, v in ipairs(opt.variables) do out[i] = v.name end
      return out
    end
    local a, b = V({ 1 }, { name = "a" }), V({ 1 }, { name = "b" })
    local opt = optimizers.RMSprop { momentum = 0.5, centered = true }
    opt:build({ a, b })
    assert.are.same({ "iteration", "learning_rate", "a_velocity", "b_velocity", "a_momentum", "b_momentum",
      "a_average_gradient", "b_average_gradient" }, names(opt))
    opt = optimizers.Adam { amsgrad = true, use_ema = true, gradient_accumulation_steps = 2 }
    opt:build({ a, b })
    assert.are.same({ "iteration", "learning_rate", "a_average", "b_average", "a_gradient_accumulator",
      "b_gradient_accumulator", "a_momentum", "a_velocity", "b_momentum", "b_velocity", "a_velocity_hat",
      "b_velocity_hat" }, names(opt))
    opt = optimizers.Nadam()
    opt:build({ a, b })
    assert.are.same({ "iteration", "learning_rate", "a_momentum", "a_velocity", "b_momentum", "b_velocity", "u_product" },
      names(opt))
  end)

  it("counts steps in iterations and in its first Variable", function()
    -- test_iterations_counter
    local v = V { { 1, 2 }, { 3, 4 } }
    local opt = optimizers.Adam { learning_rate = 1.0 }
    assert.are.equal(0, opt.iterations)
    opt:apply_gradients(klua.zip({ klua.ones { 2, 2 } }, { v }))
    assert.are.equal(1, opt.iterations)
    opt:apply_gradients(klua.zip({ klua.ones { 2, 2 } }, { v }))
    assert.are.equal(2, opt.iterations)
    assert.are.equal(2, opt.variables[1]:item())
  end)

  it("reads the learning rate and the count back from their Variables when they are assigned", function()
    local w = V { 1.0 }
    local opt = optimizers.SGD { learning_rate = 0.1 }
    assert.are.equal(0.1, opt.learning_rate)          -- the number as typed, not its float32 rounding
    opt.variables[2]:assign(0.5)
    assert.are.equal(0.5, opt.learning_rate)
    opt:apply_gradients({ T { 1.0 } }, { w })
    close(w, { 0.5 }, 0, 1e-7)
    opt.variables[1]:assign(41)
    opt:apply_gradients({ T { 1.0 } }, { w })
    assert.are.equal(42, opt.iterations)
    opt.learning_rate = 0.25
    assert.are.equal(0.25, opt.learning_rate)
    close(opt.variables[2]:item(), 0.25, 0, 0)
    helpers.raises("SGD: `iterations` is read%-only", function() opt.iterations = 3 end)
  end)

  it("gets and sets its weights in the order of variables, once built", function()
    -- test_set_weights
    local x = V { { 1, 2 }, { 3, 4 } }
    local o1 = optimizers.Adam()
    o1:apply_gradients(klua.zip({ T { { 1, 2 }, { 3, 4 } } }, { x }))
    local o2 = optimizers.Adam()
    helpers.raises("You are calling `set_weights%(%)`", o2.set_weights, o2, o1.variables)
    o2:build({ x })
    o2:set_weights(o1.variables)
    assert.are.equal(#o1.variables, #o2.variables)
    for i, v in ipairs(o1.variables) do close(o2.variables[i], v, 0, 0, "variable " .. i) end
    assert.are.equal(1, o2.iterations)
    local w = o1:get_weights()
    assert.are.equal(4, #w)
    assert.is_false(klua.Variable.is_variable(w[3]))
    helpers.raises("Adam.set_weights: expected 4 values", o2.set_weights, o2, { w[1] })
    w[3] = klua.ones { 3 }
    helpers.raises("Adam.set_weights: optimizer variable 3 %(.-%) has shape %(2,2%), not compatible with provided weight shape %(3,%)",
      o2.set_weights, o2, w)
  end)

  it("keeps the state across get_state/set_state with EMA and accumulators", function()
    klua.random.seed(3)
    local gs = {}
    for i = 1, 6 do gs[i] = klua.random.normal { 3 } end
    local cfg = { learning_rate = 0.1, use_ema = true, gradient_accumulation_steps = 2 }
    local a, b = V(klua.ones { 3 }), V(klua.ones { 3 })
    local full = optimizers.Adam(cfg)
    for i = 1, 6 do full:apply_gradients({ gs[i] }, { a }) end
    local first = optimizers.Adam(cfg)
    for i = 1, 3 do first:apply_gradients({ gs[i] }, { b }) end
    local resumed = optimizers.Adam(cfg)
    resumed:set_state(first:get_state())
    for i = 4, 6 do resumed:apply_gradients({ gs[i] }, { b }) end
    assert.are.same(a:tolist(), b:tolist())
    assert.are.equal(full.iterations, resumed.iterations)
    for i, v in ipairs(full.variables) do assert.are.same(v:tolist(), resumed.variables[i]:tolist()) end
  end)
end)

describe("base optimizer features (optimizer_test.py)", function()
  it("clips by norm, by value and by global norm like Keras", function()
    -- test_clip_norm, test_clip_value, test_global_clip_norm: w = 0 - clipped gradient
    local function clipped(kw, g)
      local w = V(klua.zeros { #g })
      kw.learning_rate = 1.0
      optimizers.SGD(kw):apply_gradients({ T(g) }, { w })
      return (-w):tolist()
    end
    close(clipped({ clipnorm = 1 }, { 100, 100 }), { 2 ^ 0.5 / 2, 2 ^ 0.5 / 2 })
    close(clipped({ clipvalue = 1 }, { 100, 100 }), { 1, 1 })
    local n = math.sqrt(50 ^ 2 + 100 ^ 2)
    close(clipped({ global_clipnorm = 1 }, { 50, 100 }), { 50 / n, 100 / n })
  end)

  it("keeps an EMA of the weights and overwrites them every ema_overwrite_frequency steps", function()
    -- test_ema
    local v = V { { 3, 4 }, { 5, 6 } }
    local g = klua.ones { 2, 2 }
    local opt = optimizers.SGD { learning_rate = 1.0, use_ema = true, ema_momentum = 0.9, ema_overwrite_frequency = 3 }
    opt:apply_gradients(klua.zip({ g }, { v }))
    close(v, { { 2, 3 }, { 4, 5 } })
    close(opt._model_variables_moving_average[1], { { 2, 3 }, { 4, 5 } })   -- initialized after the first step
    opt:apply_gradients(klua.zip({ g }, { v }))
    close(v, { { 1, 2 }, { 3, 4 } })
    close(opt._model_variables_moving_average[1], { { 1.9, 2.9 }, { 3.9, 4.9 } })
    opt:apply_gradients(klua.zip({ g }, { v }))
    close(v, { { 1.71, 2.71 }, { 3.71, 4.71 } })                            -- overwritten with the EMA
    close(opt._model_variables_moving_average[1], { { 1.71, 2.71 }, { 3.71, 4.71 } })
    assert.are.equal("variable", opt.variables[3].name:sub(1, 8))
    assert.are.equal(3, #opt.variables)                                    -- iterations, learning_rate, average
  end)

  it("gives the weights their EMA at the end of fit", function()
    -- test_ema_with_model_fit
    local opt = optimizers.SGD { learning_rate = 0.1, use_ema = true, ema_momentum = 0.9 }
    local model = klua.Sequential { klua.Input { shape = { 1 } },
      klua.layers.Dense { units = 2, kernel_initializer = "ones", use_bias = false } }
    model:compile { loss = "mse", optimizer = opt }
    -- Keras broadcasts y (1,1) against the (1,2) output; klua's losses take the same shape
    model:fit { x = klua.ones { 1, 1 }, y = klua.zeros { 1, 2 }, batch_size = 1, epochs = 2, verbose = 0 }
    close(opt._model_variables_moving_average[1], { { 0.891, 0.891 } }, 1e-6, 1e-5)
    close(model.trainable_variables[1], { { 0.891, 0.891 } }, 1e-6, 1e-5)
  end)

  it("accumulates gradients and applies their mean every gradient_accumulation_steps calls", function()
    -- test_gradient_accumulation
    local v = V { { 1, 2 }, { 3, 4 } }
    local g = klua.ones { 2, 2 }
    local opt = optimizers.SGD { learning_rate = 1.0, gradient_accumulation_steps = 3 }
    assert.are.equal(3, opt.gradient_accumulation_steps)
    local expect = {
      { { { 1, 2 }, { 3, 4 } }, { { 1, 1 }, { 1, 1 } }, 1, 0 },
      { { { 1, 2 }, { 3, 4 } }, { { 2, 2 }, { 2, 2 } }, 2, 0 },
      { { { 0, 1 }, { 2, 3 } }, { { 0, 0 }, { 0, 0 } }, 3, 1 },
      { { { 0, 1 }, { 2, 3 } }, { { 1, 1 }, { 1, 1 } }, 4, 1 },
    }
    for i, e in ipairs(expect) do
      opt:apply_gradients(klua.zip({ g }, { v }))
      close(v, e[1], 1e-6, 1e-6, "iteration " .. i)
      close(opt._accumulated_gradients[1], e[2], 1e-6, 1e-6, "accumulator " .. i)
      assert.are.equal(e[3], opt._iterations:item())
      assert.are.equal(e[4], opt.iterations)
    end
  end)

  for _, name in ipairs { "adam", "sgd", "adamw", "adagrad", "rmsprop", "adadelta", "adamax", "lion", "nadam", "ftrl",
    "adafactor", "lamb", "muon" } do
    it(name .. " with gradient_accumulation_steps = 3 matches the mean gradient, weight decay included", function()
      -- test_gradient_accumulation_with_weigth_decay (Keras lists all but lamb and muon)
      local o1 = optimizers.get { class_name = name, config = { weight_decay = 0.05 } }
      local o3 = optimizers.get { class_name = name, config = { weight_decay = 0.05, gradient_accumulation_steps = 3 } }
      local v1, v3 = V { { 0.9 }, { 0.5 } }, V { { 0.9 }, { 0.5 } }
      klua.random.seed(11)
      for _ = 1, 8 do
        local g = { klua.random.uniform { 2, 1 }, klua.random.uniform { 2, 1 }, klua.random.uniform { 2, 1 } }
        o1:apply_gradients({ (g[1] + g[2] + g[3]) / 3 }, { v1 })
        for b = 1, 3 do o3:apply_gradients({ g[b] }, { v3 }) end
      end
      close(v3, v1:totable(), 1e-6, 1e-6)
      assert.are.equal(o1.iterations, o3.iterations)
    end)
  end

  it("unscales gradients by loss_scale_factor and scales losses with scale_loss", function()
    -- test_static_loss_scaling
    local v = V { { 1, 2 }, { 3, 4 } }
    local g = T { { 1, 2 }, { 3, 4 } } * 1024
    local opt = optimizers.SGD { learning_rate = 1.0, loss_scale_factor = 1024.0 }
    opt:apply_gradients(klua.zip({ g }, { v }))
    assert.are.equal(1024, opt:scale_loss(1.0))
    close(v, { { 0, 0 }, { 0, 0 } })
    assert.are.equal(2.5, optimizers.SGD():scale_loss(2.5))
  end)

  it("calls a learning rate function before each step", function()
    -- test_callable_learning_rate
    local v = V { { 1, 2 }, { 3, 4 } }
    local opt = optimizers.SGD { learning_rate = function() return 0.1 end }
    assert.are.equal(0, opt.iterations)
    opt:apply_gradients(klua.zip({ klua.ones { 2, 2 } }, { v }))
    close(v, { { 0.9, 1.9 }, { 2.9, 3.9 } })
    assert.are.equal(1, opt.iterations)
  end)

  it("checks use_ema and gradient_accumulation_steps like Keras", function()
    helpers.raises("SGD: `ema_momentum` must be in the range %[0, 1%]. Received: ema_momentum=1.5",
      optimizers.SGD, { use_ema = true, ema_momentum = 1.5 })
    helpers.raises("SGD: `ema_overwrite_frequency` must be an integer >= 1 or nil. Received: ema_overwrite_frequency=0.5",
      optimizers.SGD, { use_ema = true, ema_overwrite_frequency = 0.5 })
    helpers.raises("Adam: `gradient_accumulation_steps` must be an integer >= 2. Received: gradient_accumulation_steps=1",
      optimizers.Adam, { gradient_accumulation_steps = 1 })
    helpers.raises("not settable", function()
      optimizers.SGD { learning_rate = optimizers.schedules.ExponentialDecay(0.1, 10, 0.5) }.learning_rate = 0.1
    end)
  end)

  it("finds every Keras optimizer by name", function()
    -- test_get_method
    for _, name in ipairs { "sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "lion",
      "adafactor", "ftrl", "lamb", "muon" } do
      local opt = optimizers.get(name)
      assert.are.equal(name, getmetatable(opt).__name:lower())
    end
    assert.is_nil(optimizers.get(nil))
    helpers.raises("unknown optimizer 'typo'", optimizers.get, "typo")
  end)

  it("updates large variables (threaded, chunked sums) like small ones, and allocates nothing in steady state", function()
    local C = klua.core.C
    for _, case in ipairs {
      { "Lamb", { 2 ^ 21 + 3 }, { 4 } },          -- more chunks than the partial sums keep on the stack
      { "Adafactor", { 100003 }, { 4 } },
      { "Adafactor", { 317, 331 }, { 2, 2 } },
      { "Ftrl", { 100003 }, { 4 } },
    } do
      local big, small = V(klua.full(case[2], 0.75)), V(klua.full(case[3], 0.75))
      local ob, os_ = optimizers[case[1]] { learning_rate = 0.1 }, optimizers[case[1]] { learning_rate = 0.1 }
      for _ = 1, 2 do
        ob:apply_gradients({ klua.full(case[2], 0.5) }, { big })
        os_:apply_gradients({ klua.full(case[3], 0.5) }, { small })
      end
      local want = small:reshape { -1 }:tolist()[1]
      assert.is_true(math.abs(klua.ops.max(big):item() - want) < 1e-6, case[1])
      assert.is_true(math.abs(klua.ops.min(big):item() - want) < 1e-6, case[1])
    end
    local w, b = V(klua.ones { 64, 32 }), V(klua.zeros { 32 })
    local g = { klua.random.normal { 64, 32 }, klua.random.normal { 32 } }
    for _, cfg in ipairs { { "Ftrl" }, { "Lamb" }, { "Adafactor" }, { "Adam", use_ema = true, ema_overwrite_frequency = 2 },
      { "SGD", gradient_accumulation_steps = 2 } } do
      local opt = optimizers[cfg[1]] { use_ema = cfg.use_ema, ema_overwrite_frequency = cfg.ema_overwrite_frequency,
        gradient_accumulation_steps = cfg.gradient_accumulation_steps, clipnorm = 1.0 }
      opt:apply_gradients(g, { w, b })
      helpers.collect_all()
      local tensors, allocs = C.kl_mem_tensor_count(), C.kl_mem_alloc_count()
      for _ = 1, 10 do opt:apply_gradients(g, { w, b }) end
      helpers.collect_all()
      assert.are.equal(tensors, C.kl_mem_tensor_count(), cfg[1])
      assert.are.equal(allocs, C.kl_mem_alloc_count(), cfg[1])
    end
  end)

  it("round-trips the base configuration", function()
    local opt = optimizers.Adam { use_ema = true, ema_momentum = 0.5, ema_overwrite_frequency = 4,
      gradient_accumulation_steps = 2, loss_scale_factor = 8 }
    round_trips(opt)
    local cfg = opt:get_config()
    assert.are.same({ true, 0.5, 4, 2, 8 }, { cfg.use_ema, cfg.ema_momentum, cfg.ema_overwrite_frequency,
      cfg.gradient_accumulation_steps, cfg.loss_scale_factor })
  end)
end)

describe("Adafactor (adafactor_test.py)", function()
  it("takes one step on a vector", function()
    local v = V { 1, 2, 3, 4 }
    optimizers.Adafactor { learning_rate = 0.5 }:apply_gradients(klua.zip({ T { 1, 6, 7, 2 } }, { v }))
    close(v, { -0.3693, 0.6307, 1.6307, 2.6307 }, 1e-4, 1e-4)
  end)

  it("takes one step on a matrix with factored second moments", function()
    local v = V { { 1, 2 }, { 3, 4 } }
    local opt = optimizers.Adafactor { learning_rate = 0.5 }
    opt:apply_gradients(klua.zip({ T { { 1, 6 }, { 7, 2 } } }, { v }))
    close(v, { { 0.7007, -0.0081 }, { 1.2492, 3.4407 } }, 1e-4, 1e-4)
    -- r drops the last axis, c the second-to-last (Keras's shapes)
    assert.are.same({ 2 }, opt.variables[3]:shape())
    assert.are.same({ 2 }, opt.variables[4]:shape())
    assert.are.same({ 2, 2 }, opt.variables[5]:shape())
  end)

  it("factors the last two axes of a 3-D weight per leading index", function()
    -- the same matrix twice along a leading axis takes the 2-D step twice
    local v = V { { { 1, 2 }, { 3, 4 } }, { { 1, 2 }, { 3, 4 } } }
    local opt = optimizers.Adafactor { learning_rate = 0.5 }
    opt:apply_gradients({ T { { { 1, 6 }, { 7, 2 } }, { { 1, 6 }, { 7, 2 } } } }, { v })
    close(v, { { { 0.7007, -0.0081 }, { 1.2492, 3.4407 } }, { { 0.7007, -0.0081 }, { 1.2492, 3.4407 } } }, 1e-4, 1e-4)
    assert.are.same({ 2, 2 }, opt.variables[3]:shape())
    assert.are.same({ 2, 2 }, opt.variables[4]:shape())
  end)

  it("applies weight decay and its exclusions", function() weight_decay_case(optimizers.Adafactor) end)

  it("follows Keras's golden trajectory", function()
    golden(optimizers.Adafactor { learning_rate = 0.5, beta_2_decay = -0.65, epsilon_1 = 1e-15, epsilon_2 = 1e-4,
      clip_threshold = 0.9, relative_step = false }, {
      { 0.55, 0.55, 0.55, 0.55, 0.55, 0.55, 0.55, 0.55, 0.55, 0.55 },
      { 0.3031, 0.3026, 0.3025, 0.3024, 0.3024, 0.3024, 0.3024, 0.3024, 0.3024, 0.3024 },
      { 0.1671, 0.1665, 0.1663, 0.1663, 0.1663, 0.1663, 0.1663, 0.1663, 0.1663, 0.1663 },
      { 0.0923, 0.0916, 0.0915, 0.0914, 0.0914, 0.0914, 0.0914, 0.0914, 0.0914, 0.0914 },
      { 0.0554, 0.0548, 0.0546, 0.0546, 0.0546, 0.0546, 0.0546, 0.0545, 0.0545, 0.0545 },
    })
  end)

  it("round-trips its configuration", function()
    round_trips(optimizers.Adafactor { learning_rate = 0.5, beta_2_decay = -0.65, epsilon_1 = 1e-15, epsilon_2 = 1e-4,
      clip_threshold = 0.9, relative_step = false })
  end)
end)

describe("Ftrl (ftrl_test.py)", function()
  it("takes one step", function()
    local v = V { 1, 2, 3, 4 }
    optimizers.Ftrl { learning_rate = 0.5 }:apply_gradients(klua.zip({ T { 1, 6, 7, 2 } }, { v }))
    close(v, { 0.2218, 1.3954, 2.3651, 2.8814 }, 1e-4, 1e-4)
  end)

  local GOLDEN_CFG = { learning_rate = 0.05, learning_rate_power = -0.2, initial_accumulator_value = 0.4,
    l1_regularization_strength = 0.05, l2_regularization_strength = 0.15, l2_shrinkage_regularization_strength = 0.01,
    beta = 0.3 }

  it("follows Keras's golden trajectory", function()
    golden(optimizers.Ftrl(GOLDEN_CFG), {
      { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
      { -0.0034, -0.0077, -0.0118, -0.0157, -0.0194, -0.023, -0.0263, -0.0294, -0.0325, -0.0354 },
      { -0.0078, -0.0162, -0.0242, -0.0317, -0.0387, -0.0454, -0.0516, -0.0575, -0.0631, -0.0685 },
      { -0.0121, -0.0246, -0.0363, -0.0472, -0.0573, -0.0668, -0.0757, -0.0842, -0.0922, -0.0999 },
      { -0.0164, -0.0328, -0.0481, -0.0623, -0.0753, -0.0875, -0.099, -0.1098, -0.1201, -0.1299 },
    })
  end)

  it("round-trips its configuration", function() round_trips(optimizers.Ftrl(GOLDEN_CFG)) end)

  it("rejects out-of-range arguments with Keras's messages", function()
    for _, k in ipairs { "initial_accumulator_value", "l1_regularization_strength", "l2_regularization_strength",
      "l2_shrinkage_regularization_strength" } do
      helpers.raises(helpers.literal(("Ftrl: `%s` needs to be positive or zero. Received: %s=-0.1."):format(k, k)),
        optimizers.Ftrl, { [k] = -0.1 })
    end
    helpers.raises(helpers.literal("Ftrl: `learning_rate_power` needs to be negative or zero. Received: learning_rate_power=0.1."),
      optimizers.Ftrl, { learning_rate_power = 0.1 })
  end)
end)

describe("Lamb (lamb_test.py)", function()
  it("takes one step", function()
    local v = V { 1, 2, 3, 4 }
    optimizers.Lamb { learning_rate = 0.5 }:apply_gradients(klua.zip({ T { 1, 6, 7, 2 } }, { v }))
    close(v, { -0.3693, 0.6306, 1.6306, 2.6306 }, 1e-4, 1e-4)
  end)

  it("applies weight decay and its exclusions", function() weight_decay_case(optimizers.Lamb) end)

  it("follows Keras's golden trajectory", function()
    local rows = {}
    for i, x in ipairs { 0.999, 0.9982, 0.9974, 0.9965, 0.9955 } do
      rows[i] = {}
      for j = 1, 10 do rows[i][j] = x end
    end
    golden(optimizers.Lamb(), rows)
  end)

  it("follows lamb.py's formula to float32 rounding", function()
    -- Keras's golden rows above sit up to 6e-4 from its own formula (inside
    -- their tolerance); these rows are that formula in float64, same inputs.
    local opt, x = optimizers.Lamb(), V(klua.ones { 10 })
    local want = {
      { 0.9979437, 0.9979835, 0.9979974, 0.9980045, 0.9980088, 0.9980116, 0.9980137, 0.9980152, 0.9980164, 0.9980174 },
      { 0.9969182, 0.9969771, 0.9969977, 0.9970081, 0.9970144, 0.9970187, 0.9970217, 0.9970240, 0.9970258, 0.9970272 },
      { 0.9959038, 0.9959748, 0.9959995, 0.9960121, 0.9960197, 0.9960248, 0.9960285, 0.9960312, 0.9960334, 0.9960351 },
    }
    opt:apply_gradients({ T(FIRST) }, { x })
    for i, row in ipairs(want) do
      opt:apply_gradients({ T(ARANGE) }, { x })
      close(x, row, 0, 1e-6, "step " .. i + 1)
    end
  end)

  it("round-trips its configuration", function()
    round_trips(optimizers.Lamb { learning_rate = 0.5, beta_1 = 0.5, beta_2 = 0.67, epsilon = 1e-5 })
  end)
end)

describe("Muon (muon_test.py)", function()
  it("orthogonalizes a matrix with five Newton-Schulz steps", function()
    local out = optimizers.Muon():zeropower_via_newtonschulz5(T { { 0.2499, 0.9105 }, { 0.2655, 0.8824 } }, 5)
    close(out, { { -0.4422, 0.6457 }, { 0.7285, 0.2968 } }, 1e-3, 1e-3)
  end)

  it("takes an AdamW step for a vector", function()
    local v = V({ 1, 2, 3, 4 }, { name = "test_vars" })
    local opt = optimizers.Muon()
    opt:build({ v })
    opt:update_step(T { 1, 6, 7, 2 }, v, 0.5)
    close(v, { 0.5, 1.5, 2.5, 3.5 }, 1e-4, 1e-4)
    -- through apply_gradients: the same step after adam_weight_decay
    local w = V({ 1, 2, 3, 4 })
    optimizers.Muon { learning_rate = 0.5 }:apply_gradients({ T { 1, 6, 7, 2 } }, { w })
    close(w, { 1 * 0.998 - 0.5, 2 * 0.998 - 0.5, 3 * 0.998 - 0.5, 4 * 0.998 - 0.5 }, 1e-4, 1e-4)
  end)

  it("leaves weights that are not 2-D, embeddings and excluded layers to AdamW", function()
    local opt = optimizers.Muon { exclude_layers = { "var" } }
    assert.is_true(opt:_should_use_adamw(V { { 1, 2 }, { 3, 4 } }))   -- named variable_N
    local embedding = klua.layers.Embedding { input_dim = 2, output_dim = 2 }
    embedding:build({ 1 })
    assert.is_true(opt:_should_use_adamw(embedding.weights[1]))
    opt = optimizers.Muon()
    assert.is_false(opt:_should_use_adamw(V { { 1, 2 }, { 3, 4 } }))
    local dense = klua.layers.Dense { units = 2 }
    dense:build({ -1, 2 })
    assert.is_false(opt:_should_use_adamw(dense.weights[1]))
    assert.is_true(opt:_should_use_adamw(dense.weights[2]))
    -- Keras's variables: a momentum per weight, a velocity only for the AdamW ones
    opt:build(dense.weights)
    assert.are.equal(2 + 3, #opt.variables)
  end)

  it("takes a Muon step for a matrix", function()
    local v = V { { 1, 2 }, { 3, 4 } }
    local opt = optimizers.Muon { learning_rate = 0.5, weight_decay = 0 }
    opt:build({ v })
    opt:update_step(T { { 1, 6 }, { 7, 2 } }, v, 0.5)
    close(v, { { 0.988775, 1.887053 }, { 2.873428, 3.97035 } }, 1e-2, 1e-2)
    local w = V { { 1, 2 }, { 3, 4 } }
    optimizers.Muon { learning_rate = 0.5, weight_decay = 0 }:apply_gradients({ T { { 1, 6 }, { 7, 2 } } }, { w })
    close(w, v:totable(), 0, 1e-6)
  end)

  it("decays Muon weights by weight_decay and AdamW weights by adam_weight_decay", function()
    -- test_muon_weight_decay, test_adamw_weight_decay
    local m = V { { 1, 2 }, { 3, 4 } }
    optimizers.Muon { learning_rate = 1.0, weight_decay = 0.01 }:_apply_weight_decay({ m })
    close(m, { { 0.99, 1.98 }, { 2.97, 3.96 } }, 1e-4, 1e-4)
    local s = V(2.0)
    optimizers.Muon { learning_rate = 1.0, adam_weight_decay = 0.01 }:_apply_weight_decay({ s })
    close(s:item(), 1.98, 1e-4, 1e-4)
  end)

  it("scales an update by sqrt(max(rows, cols)) * rms_rate", function()
    local x = klua.ones { 4, 4 }
    close(optimizers.Muon { rms_rate = false }:lr_adjust(x), x:totable())          -- rms_rate=None
    close(optimizers.Muon { rms_rate = 0.2 }:lr_adjust(klua.ones { 4, 2 }), (klua.ones { 4, 2 } * 0.4):totable())
  end)

  it("trains a model with its last layer excluded", function()
    -- test_model_fit
    local model = klua.Sequential { klua.Input { shape = { 10 } }, klua.layers.Dense { units = 5 },
      klua.layers.Dense { units = 1, name = "last" } }
    local opt = optimizers.Muon { learning_rate = 1e-3, exclude_layers = { "last" } }
    model:compile { optimizer = opt, loss = "mse" }
    model:fit { x = klua.ones { 1, 10 }, y = klua.ones { 1, 1 }, verbose = 0 }
    assert.are.equal(1, opt.iterations)
    assert.is_nil(opt._slots[tonumber(model.layers[1].kernel.id)].velocity)
    assert.is_not_nil(opt._slots[tonumber(model.layers[2].kernel.id)].velocity)
  end)

  it("round-trips its configuration", function()
    round_trips(optimizers.Muon { learning_rate = 0.5, epsilon = 1e-5, exclude_layers = { "head" }, rms_rate = false })
  end)
end)

describe("optimizer states saved before Keras's variable order", function()
  it("are refused where the order changed, and restored where it did not", function()
    local old = { iterations = 1, variables = { klua.ones { 2 }, klua.ones { 2 } } }    -- no version
    helpers.raises("Nadam.set_state: the state was saved by an older klua", optimizers.Nadam().set_state, optimizers.Nadam(), old)
    helpers.raises("RMSprop.set_state: the state was saved by an older klua",
      optimizers.RMSprop { momentum = 0.5 }.set_state, optimizers.RMSprop { momentum = 0.5 }, old)
    local adam = optimizers.Adam()
    adam:set_state(old)
    assert.are.equal(1, adam.iterations)
  end)
end)

describe("saving an optimizer with EMA and gradient accumulation", function()
  it("resumes from model:save exactly, mid-accumulation", function()
    local dir = helpers.tmpdir()
    local ok, err = pcall(function()
      klua.random.seed(41)
      local m = klua.Sequential { klua.Input { shape = { 3 } }, klua.layers.Dense { units = 2 } }
      m:compile { optimizer = optimizers.Lamb { learning_rate = 0.05, use_ema = true, gradient_accumulation_steps = 2 },
        loss = "mse" }
      local x, y = klua.random.normal { 12, 3 }, klua.random.normal { 12, 2 }
      m:fit { x = x, y = y, batch_size = 4, epochs = 1, verbose = 0, shuffle = false }   -- 3 calls: one pending
      m:save(dir .. "/m.klua")
      local back = klua.models.load_model(dir .. "/m.klua")
      assert.are.equal(3, back.optimizer.variables[1]:item())
      assert.are.equal(1, back.optimizer.iterations)
      m:fit { x = x, y = y, batch_size = 4, epochs = 1, verbose = 0, shuffle = false }
      back:fit { x = x, y = y, batch_size = 4, epochs = 1, verbose = 0, shuffle = false }
      local a, b = m:get_weights(), back:get_weights()
      for i = 1, #a do assert.are.same(a[i]:tolist(), b[i]:tolist()) end
      local va, vb = m.optimizer:get_weights(), back.optimizer:get_weights()
      assert.are.equal(#va, #vb)
      for i = 1, #va do assert.are.same(va[i]:tolist(), vb[i]:tolist()) end
    end)
    helpers.remove_tree(dir)
    assert(ok, err)
  end)
end)
