-- optimizers_spec.lua — every optimizer's update rule step by step against
-- values computed from Keras 3's published formulas (generated once by
-- tests/reference/gen_optimizer_refs.py, in float64), clipping, weight decay,
-- schedules, nil gradients, lookup by name and bit-for-bit state restore.
local klua = require("klua")
local helpers = require("helpers")
local optimizers = klua.optimizers
local schedules = optimizers.schedules

local W0 = { 0.5, -1.2, 2.0, 0.0 }
local GRADS = { { 0.1, -0.2, 0.3, 0.4 }, { -0.3, 0.25, 0.05, -0.1 }, { 0.2, 0.2, -0.4, 0.3 } }

-- near(expected, actual, tol=2e-6, what): helpers.near with the reference first.
local function near(expected, actual, tol, what) helpers.near(actual, expected, tol or 2e-6, what) end

-- {constructor, {the variable after step 1, 2, 3}}
local CASES = {
  {"SGD{learning_rate=0.1}", {{0.49, -1.18, 1.97, -0.04}, {0.52, -1.205, 1.965, -0.03}, {0.5, -1.225, 2.005, -0.06}}},
  {"SGD{learning_rate=0.1, momentum=0.9}", {{0.49, -1.18, 1.97, -0.04}, {0.511, -1.187, 1.938, -0.066}, {0.5099, -1.2133, 1.9492, -0.1194}}},
  {"SGD{learning_rate=0.1, momentum=0.9, nesterov=true}", {{0.481, -1.162, 1.943, -0.076}, {0.5299, -1.1933, 1.9092, -0.0894}, {0.50891, -1.23697, 1.95928, -0.16746}}},
  {"Adam{learning_rate=0.1}", {{0.400003162, -1.10000158, 1.90000105, -0.0999992094}, {0.449421651, -1.11627465, 1.82166913, -0.146945666}, {0.447542898, -1.16080294, 1.8359126, -0.21388813}}},
  {"Adam{learning_rate=0.1, beta_2=0.5}", {{0.400000141, -1.10000007, 1.90000005, -0.0999999646}, {0.443918826, -1.11570959, 1.80535565, -0.155865494}, {0.442103568, -1.16074909, 1.81810987, -0.226810844}}},
  {"Adam{learning_rate=0.1, beta_2=0.5, amsgrad=true}", {{0.400000141, -1.10000007, 1.90000005, -0.0999999646}, {0.443918826, -1.11570959, 1.83124247, -0.141899116}, {0.442176696, -1.16040658, 1.84399669, -0.207066584}}},
  {"AdamW{learning_rate=0.1, weight_decay=0.1}", {{0.395003162, -1.08800158, 1.88000105, -0.0999992094}, {0.44047162, -1.09339463, 1.78286912, -0.145945674}, {0.43418815, -1.12698898, 1.7792839, -0.211428681}}},
  {"RMSprop{learning_rate=0.1}", {{0.183788044, -0.883776187, 1.68377399, -0.316226778}, {0.485297866, -1.13567127, 1.62905675, -0.235644743}, {0.309276579, -1.31200013, 1.88990419, -0.434063257}}},
  {"RMSprop{learning_rate=0.1, momentum=0.5, centered=true}", {{0.166685184, -0.866671296, 1.66666872, -0.333332176}, {0.308485994, -0.952530909, 1.44158685, -0.417587181}, {0.203356863, -1.17672985, 1.59059188, -0.671801442}}},
  {"Adagrad{learning_rate=0.1}", {{0.469848879, -1.14654777, 1.9311753, -0.078446439}, {0.536930902, -1.20210331, 1.91977924, -0.0592014336}, {0.496106081, -1.24271715, 1.98715139, -0.109201427}}},
  {"Adadelta{learning_rate=1.0}", {{0.498585928, -1.19858582, 1.9985858, -0.00141420472}, {0.500487942, -1.20016299, 1.99824871, -0.000917305349}, {0.498992892, -1.20153626, 1.99987233, -0.00215431926}}},
  {"Adamax{learning_rate=0.1}", {{0.4000001, -1.10000005, 1.90000003, -0.099999975}, {0.436842193, -1.11473689, 1.8438035, -0.134244738}, {0.435487826, -1.15359492, 1.85413561, -0.18360539}}},
  {"Nadam{learning_rate=0.1}", {{0.393721326, -1.09372127, 1.89372126, -0.106278754}, {0.488371072, -1.16901252, 1.86980383, -0.0884836734}, {0.436045776, -1.22724487, 1.94943287, -0.155766285}}},
  {"Lion{learning_rate=0.1}", {{0.4, -1.1, 1.9, -0.1}, {0.5, -1.2, 1.8, 0}, {0.4, -1.3, 1.9, -0.1}}},
  {"SGD{learning_rate=0.1, weight_decay=0.5}", {{0.465, -1.12, 1.87, -0.04}, {0.47175, -1.089, 1.7715, -0.028}, {0.4281625, -1.05455, 1.722925, -0.0566}}},
  {"SGD{learning_rate=0.1, clipnorm=0.3}", {{0.494522774, -1.18904555, 1.98356832, -0.0219089023}, {0.516679243, -1.20750927, 1.97987558, -0.0145234128}, {0.506234583, -1.21795393, 2.0007649, -0.0301904019}}},
  {"SGD{learning_rate=0.1, clipvalue=0.25}", {{0.49, -1.18, 1.975, -0.025}, {0.515, -1.205, 1.97, -0.015}, {0.495, -1.225, 1.995, -0.04}}},
}

local function build(src) return assert(loadstring("local o = ...; return o." .. src))(optimizers) end

describe("optimizer update rules", function()
  for _, case in ipairs(CASES) do
    it(case[1] .. " matches Keras's formula step by step", function()
      local opt = build(case[1])
      local w = klua.Variable(W0, { name = "w" })
      for step = 1, 3 do
        opt:apply_gradients({ klua.tensor(GRADS[step]) }, { w })
        near(case[2][step], w:tolist(), 2e-6, case[1] .. " step " .. step)
      end
      assert.are.equal(3, opt.iterations)
    end)
  end

  it("gives the RMSprop docstring's value for one minimize step", function()
    local opt = optimizers.RMSprop { learning_rate = 0.1 }
    local x = klua.Variable(10.0)
    opt:minimize(function() return x * x / 2 end, { x })
    assert.is_true(math.abs(x:item() - 9.683772) < 1e-5)
  end)

  it("updates large variables on the threaded path like small ones", function()
    local n = 100003
    local w = klua.Variable(klua.ones { n })
    local opt = optimizers.SGD { learning_rate = 0.1, momentum = 0.9 }
    opt:apply_gradients({ klua.full({ n }, 0.5) }, { w })
    opt:apply_gradients({ klua.full({ n }, 0.5) }, { w })
    -- v1 = -0.05, w1 = 0.95; v2 = -0.095, w2 = 0.855
    for _, i in ipairs { 1, 50000, n } do assert.is_true(math.abs(w:get(i) - 0.855) < 1e-6) end
  end)

  it("allocates no tensors in steady state", function()
    local C = klua.core.C
    local w, b = klua.Variable(klua.ones { 64, 32 }), klua.Variable(klua.zeros { 32 })
    local g = { klua.random.normal { 64, 32 }, klua.random.normal { 32 } }
    for _, name in ipairs { "SGD", "Adam", "RMSprop", "Nadam", "Adadelta", "Adagrad", "Adamax", "Lion" } do
      local opt = optimizers[name] { clipnorm = 1.0 }
      opt:apply_gradients(g, { w, b })
      helpers.collect_all()
      local tensors, allocs = C.kl_mem_tensor_count(), C.kl_mem_alloc_count()
      for _ = 1, 10 do opt:apply_gradients(g, { w, b }) end
      helpers.collect_all()
      assert.are.equal(tensors, C.kl_mem_tensor_count(), name)
      assert.are.equal(allocs, C.kl_mem_alloc_count(), name)
    end
  end)

  it("accepts strided gradients", function()
    local w = klua.Variable({ { 1, 2 }, { 3, 4 } })
    local g = klua.tensor({ { 1, 2 }, { 3, 4 } }):T()   -- a transposed view
    optimizers.SGD { learning_rate = 1.0 }:apply_gradients({ g }, { w })
    assert.are.same({ { 0, -1 }, { 1, 0 } }, w:totable())
  end)
end)

describe("gradient clipping and weight decay", function()
  it("scales all gradients by one factor with global_clipnorm", function()
    local a, b = klua.Variable(W0), klua.Variable({ 1.5, -0.5 })
    local opt = optimizers.SGD { learning_rate = 0.1, global_clipnorm = 0.5 }
    opt:apply_gradients({ klua.tensor(GRADS[1]), klua.tensor { 0.6, -0.8 } }, { a, b })
    near({0.49561471, -1.19122942, 1.98684413, -0.0175411604}, a:tolist(), 2e-6, "first variable")
    near({1.47368826, -0.464917679}, b:tolist(), 2e-6, "second variable")
  end)

  it("leaves gradients under the clip norm unchanged", function()
    local w = klua.Variable(W0)
    optimizers.SGD { learning_rate = 0.1, clipnorm = 10 }:apply_gradients({ klua.tensor(GRADS[1]) }, { w })
    near({ 0.49, -1.18, 1.97, -0.04 }, w:tolist())
  end)

  it("refuses two clipping arguments at once", function()
    local ok, err = pcall(optimizers.Adam, { clipnorm = 1, clipvalue = 1 })
    assert.is_false(ok)
    assert.matches("Adam: only one of `clipnorm`, `clipvalue` and `global_clipnorm`", err)
  end)

  it("skips weight decay for excluded variables and names", function()
    local w = klua.Variable({ 1.0 }, { name = "dense/kernel" })
    local bias = klua.Variable({ 1.0 }, { name = "dense/bias" })
    local other = klua.Variable({ 1.0 })
    local opt = optimizers.SGD { learning_rate = 0.1, weight_decay = 0.5 }
    opt:exclude_from_weight_decay { var_list = { other }, var_names = { "bias" } }
    local z = klua.zeros { 1 }
    opt:apply_gradients({ z, z, z }, { w, bias, other })
    near({ 0.95 }, w:tolist())
    near({ 1.0 }, bias:tolist())
    near({ 1.0 }, other:tolist())
  end)

  it("uses AdamW's default weight decay of 0.004", function()
    assert.are.equal(0.004, optimizers.AdamW().weight_decay)
    local ok, err = pcall(optimizers.AdamW, { weight_decay = false })
    assert.is_false(ok)
    assert.matches("AdamW: `weight_decay` must be a number", err)
  end)
end)

-- {constructor, values at STEPS}
local STEPS = { 0, 1, 5, 9, 10, 11, 15, 25, 40 }
local SCHEDULES = {
  {"ExponentialDecay{initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5}", {0.1, 0.0933032992, 0.0707106781, 0.0535886731, 0.05, 0.0466516496, 0.0353553391, 0.0176776695, 0.00625}},
  {"ExponentialDecay{initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5, staircase=true}", {0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.00625}},
  {"InverseTimeDecay{initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5}", {0.1, 0.0952380952, 0.08, 0.0689655172, 0.0666666667, 0.064516129, 0.0571428571, 0.0444444444, 0.0333333333}},
  {"InverseTimeDecay{initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5, staircase=true}", {0.1, 0.1, 0.1, 0.1, 0.0666666667, 0.0666666667, 0.0666666667, 0.05, 0.0333333333}},
  {"PiecewiseConstantDecay{boundaries={5, 10}, values={1.0, 0.5, 0.1}}", {1, 1, 1, 0.5, 0.5, 0.1, 0.1, 0.1, 0.1}},
  {"PolynomialDecay{initial_learning_rate=0.1, decay_steps=10, end_learning_rate=0.01, power=2.0}", {0.1, 0.0829, 0.0325, 0.0109, 0.01, 0.01, 0.01, 0.01, 0.01}},
  {"PolynomialDecay{initial_learning_rate=0.1, decay_steps=10, end_learning_rate=0.01, power=2.0, cycle=true}", {0.1, 0.0829, 0.0325, 0.0109, 0.01, 0.028225, 0.015625, 0.0125, 0.01}},
  {"CosineDecay{initial_learning_rate=0.1, decay_steps=10, alpha=0.1}", {0.1, 0.0977975432, 0.055, 0.0122024568, 0.01, 0.01, 0.01, 0.01, 0.01}},
  {"CosineDecay{initial_learning_rate=0.0, decay_steps=10, alpha=0.1, warmup_target=0.2, warmup_steps=4}", {0, 0.05, 0.195595086, 0.11, 0.0821884705, 0.0570993273, 0.02, 0.02, 0.02}},
  {"CosineDecayRestarts{initial_learning_rate=0.1, first_decay_steps=10, t_mul=2.0, m_mul=0.5}", {0.1, 0.0975528258, 0.05, 0.00244717419, 0.05, 0.0496922085, 0.0426776695, 0.00732233047, 0.0213388348}},
  {"CosineDecayRestarts{initial_learning_rate=0.1, first_decay_steps=10, t_mul=1.0, m_mul=1.0, alpha=0.1}", {0.1, 0.0977975432, 0.055, 0.0122024568, 0.1, 0.0977975432, 0.055, 0.055, 0.1}},
}

describe("learning rate schedules", function()
  for _, case in ipairs(SCHEDULES) do
    it(case[1] .. " gives Keras's values", function()
      local s = assert(loadstring("local s = ...; return s." .. case[1]))(schedules)
      local got = {}
      for i, step in ipairs(STEPS) do got[i] = s(step) end
      near(case[2], got, 1e-9, case[1])
    end)
  end

  it("takes positional arguments in Keras's order", function()
    local s = schedules.ExponentialDecay(0.1, 10, 0.5, { staircase = true })
    assert.are.equal(0.05, s(15))
    assert.are.equal(0.5, schedules.PiecewiseConstantDecay({ 5, 10 }, { 1.0, 0.5, 0.1 })(6))
  end)

  it("rejects bad arguments by name", function()
    local ok, err = pcall(schedules.ExponentialDecay, { initial_learning_rate = 0.1, decay_steps = 0, decay_rate = 0.5 })
    assert.is_false(ok)
    assert.matches("ExponentialDecay: argument `decay_steps` must be > 0", err)
    ok, err = pcall(schedules.PiecewiseConstantDecay, { 1, 2 }, { 1 })
    assert.is_false(ok)
    assert.matches("PiecewiseConstantDecay: the length of boundaries", err)
  end)

  it("drives an optimizer through its iteration count", function()
    local w = klua.Variable({ 0.0 })
    local opt = optimizers.SGD { learning_rate = schedules.PiecewiseConstantDecay({ 1 }, { 1.0, 0.1 }) }
    local g = { klua.tensor { 1 } }
    opt:apply_gradients(g, { w })   -- step 0: lr 1
    opt:apply_gradients(g, { w })   -- step 1: lr 1 (step <= boundary)
    opt:apply_gradients(g, { w })   -- step 2: lr 0.1
    near({ -2.1 }, w:tolist())
    assert.are.equal(0.1, opt:current_learning_rate())
  end)

  it("accepts a Lua function of the step and a learning rate changed between steps", function()
    local w = klua.Variable({ 0.0 })
    local seen = {}
    local opt = optimizers.SGD { learning_rate = function(step) seen[#seen + 1] = step; return 0.5 ^ step end }
    local g = { klua.tensor { 1 } }
    opt:apply_gradients(g, { w })
    opt:apply_gradients(g, { w })
    assert.are.same({ 0, 1 }, seen)
    near({ -1.5 }, w:tolist())
    opt.learning_rate = 0.25
    opt:apply_gradients(g, { w })
    near({ -1.75 }, w:tolist())
  end)
end)

describe("apply_gradients", function()
  it("takes two lists or klua.zip pairs, with the same result", function()
    local a, b = klua.Variable(W0), klua.Variable(W0)
    local oa, ob = optimizers.Adam { learning_rate = 0.1 }, optimizers.Adam { learning_rate = 0.1 }
    for step = 1, 3 do
      oa:apply_gradients({ klua.tensor(GRADS[step]) }, { a })
      ob:apply_gradients(klua.zip({ klua.tensor(GRADS[step]) }, { b }))
    end
    assert.are.same(a:tolist(), b:tolist())
  end)

  it("creates slot variables lazily and lists them in opt.variables after the iteration counter and the learning rate", function()
    local opt = optimizers.Adam { amsgrad = true }
    assert.are.equal(2, #opt.variables)
    local w = klua.Variable({ 1, 2 }, { name = "w" })
    opt:apply_gradients({ klua.tensor { 1, 1 } }, { w })
    assert.are.equal(5, #opt.variables)
    assert.are.equal("iteration", opt.variables[1].name)
    assert.are.equal("learning_rate", opt.variables[2].name)
    assert.are.equal("w_momentum", opt.variables[3].name)
    assert.are.equal("w_velocity_hat", opt.variables[5].name)
    assert.is_false(opt.variables[3].trainable)
    assert.are.equal(2, #optimizers.SGD().variables)
  end)

  it("skips nil gradients with one warning and still updates the others", function()
    local a = klua.Variable({ 1.0 }, { name = "a" })
    local b = klua.Variable({ 1.0 }, { name = "b" })
    local c = klua.Variable({ 1.0 }, { name = "c" })
    local tape = klua.GradientTape()
    local loss = tape:record(function() return klua.ops.sum(a * 2 + c) end)
    local grads = tape:gradient(loss, { a, b, c })
    assert.is_nil(grads[2])
    local opt = optimizers.SGD { learning_rate = 0.1 }
    local written = {}
    local real = io.stderr
    io.stderr = { write = function(_, s) written[#written + 1] = s end }
    local ok, err = pcall(function()
      opt:apply_gradients(klua.zip(grads, { a, b, c }))
      opt:apply_gradients(grads, { a, b, c })
    end)
    io.stderr = real
    assert(ok, err)
    assert.are.equal(1, #written)
    assert.matches("Gradients do not exist for variables {b}", written[1])
    near({ 0.6 }, a:tolist())
    near({ 1.0 }, b:tolist())
    near({ 0.8 }, c:tolist())
    assert.are.equal(2, opt.iterations)
  end)

  it("raises when no variable has a gradient", function()
    local ok, err = pcall(function() optimizers.SGD():apply_gradients({ n = 1 }, { klua.Variable({ 1 }) }) end)
    assert.is_false(ok)
    assert.matches("SGD.apply_gradients: no gradients provided for any variable", err)
  end)

  it("names the optimizer and the shapes when a gradient does not fit", function()
    local ok, err = pcall(function() optimizers.Adam():apply_gradients({ klua.ones { 3 } }, { klua.Variable(klua.ones { 4 }) }) end)
    assert.is_false(ok)
    assert.matches("Adam: gradient of shape %(3,%) does not match variable of shape %(4,%)", err)
    ok, err = pcall(function() optimizers.Adam():apply_gradients({ klua.ones { 3 } }, { klua.ones { 3 } }) end)
    assert.is_false(ok)
    assert.matches("Adam.apply_gradients: item 1 is not a Variable", err)
  end)

  it("checks its arguments like Keras", function()
    local ok, err = pcall(optimizers.SGD, { momentum = 1.5 })
    assert.is_false(ok)
    assert.matches("SGD: `momentum` must be a number between %[0, 1%]", err)
    ok, err = pcall(optimizers.Adam, { beta1 = 0.9 })
    assert.is_false(ok)
    assert.matches("Adam: unknown argument `beta1`", err)
    ok, err = pcall(optimizers.Lion, { beta_1 = 0 })
    assert.is_false(ok)
    assert.matches("Lion: `beta_1` must be in the %(0, 1%] range", err)
    ok, err = pcall(optimizers.Adam, { learning_rate = "fast" })
    assert.is_false(ok)
    assert.matches("Adam: `learning_rate` should be a number", err)
  end)

  it("finds optimizers by name and by config", function()
    local opt = optimizers.get("adam")
    assert.is_true(klua.class.is_instance(opt, optimizers.Adam))
    assert.are.equal(0.001, opt.learning_rate)
    assert.is_true(klua.class.is_instance(optimizers.get("SGD"), optimizers.SGD))
    assert.is_true(klua.class.is_instance(optimizers.get("rmsprop"), optimizers.RMSprop))
    local again = optimizers.get(optimizers.serialize(optimizers.Nadam { learning_rate = 0.5 }))
    assert.are.equal(0.5, again.learning_rate)
    local s = optimizers.get(optimizers.serialize(optimizers.SGD { learning_rate = schedules.ExponentialDecay(0.1, 10, 0.5) }))
    assert.are.equal(0.05, s.learning_rate(10))
    local ok, err = pcall(optimizers.get, "adamm")
    assert.is_false(ok)
    assert.matches("optimizers.get: unknown optimizer 'adamm'", err)
    assert.are.equal(optimizers.zip, klua.zip)
  end)
end)

describe("optimizer state", function()
  for _, name in ipairs { "Adam", "Nadam", "RMSprop", "Adadelta", "Lion" } do
    it(name .. " resumes bit for bit from get_state/set_state", function()
      local cfg = { learning_rate = 0.05 }
      if name == "RMSprop" then cfg.centered = true; cfg.momentum = 0.5 end
      klua.random.seed(7)
      local gs = {}
      for i = 1, 6 do gs[i] = { klua.random.normal { 3, 2 }, klua.random.normal { 2 } } end
      local function run(opt, w, b, from, to)
        for i = from, to do opt:apply_gradients(gs[i], { w, b }) end
      end
      local w1, b1 = klua.Variable(klua.ones { 3, 2 }), klua.Variable(klua.zeros { 2 })
      run(optimizers[name](cfg), w1, b1, 1, 6)

      local w2, b2 = klua.Variable(klua.ones { 3, 2 }), klua.Variable(klua.zeros { 2 })
      local first = optimizers[name](cfg)
      run(first, w2, b2, 1, 3)
      local state = first:get_state()
      assert.are.equal(3, state.iterations)
      local resumed = optimizers[name](cfg)
      resumed:set_state(state)               -- before its slots exist
      run(resumed, w2, b2, 4, 6)
      assert.are.same(w1:tolist(), w2:tolist())  -- exact equality of every float
      assert.are.same(b1:tolist(), b2:tolist())
      assert.are.equal(6, resumed.iterations)

      local again = optimizers[name](cfg)     -- and after they exist
      again:build({ w2, b2 })
      again:set_state(state)
      assert.are.same(state.variables[1]:tolist(), again.variables[3]:tolist())  -- after iterations, learning_rate
    end)
  end

  it("refuses a state with the wrong slots", function()
    local opt = optimizers.Adam()
    opt:build({ klua.Variable(klua.ones { 2 }) })
    local ok, err = pcall(opt.set_state, opt, { iterations = 1, variables = { klua.ones { 2 } } })
    assert.is_false(ok)
    assert.matches("Adam.set_state: the state holds 1 slot variables, the optimizer has 2", err)
  end)
end)

describe("optimizers and weight constraints", function()
  it("apply a weight's constraint right after its update, as Keras does", function()
    local klua = require("klua")
    local layer = klua.layers.Dense { units = 2, kernel_constraint = klua.constraints.non_neg() }
    layer(klua.ones { 1, 3 })
    local opt = klua.optimizers.SGD { learning_rate = 10 }
    local grads = {}
    for i, v in ipairs(layer.trainable_weights) do grads[i] = klua.ones(v:shape()) end
    opt:apply_gradients(grads, layer.trainable_weights)
    assert(klua.ops.min(layer.kernel):item() >= 0, "the kernel stays non-negative")
  end)
end)
