-- random_generator_spec.lua — random streams are objects: klua.random.Generator,
-- the seed= keyword of every draw, and the generators that seeded layers,
-- initializers and shuffled datasets hold instead of juggling the global stream.
local klua = require("klua")
local json = require("klua.json")
local h = require("helpers")
local random, L, Dataset = klua.random, klua.layers, klua.data.Dataset

local function values(t) return t:totable() end

local function json_round_trip(st) return json.decode(json.encode(st)) end

-- The next few numbers of the global stream, without disturbing it.
local function global_peek()
  local st = random.get_state()
  local v = values(random.uniform { 6 })
  random.set_state(st)
  return v
end

local function order(ds)
  local out = {}
  for b in ds:iter() do
    for _, v in ipairs(b:totable()) do out[#out + 1] = v end
  end
  return out
end

local function range(n)
  local t = {}
  for i = 1, n do t[i] = i - 1 end
  return klua.tensor(t)
end

describe("klua.random.Generator", function()
  it("draws what the global stream draws after seeding it with the same seed", function()
    random.seed(42)
    local want = values(random.normal { 10 })
    random.seed(1)
    local g = random.Generator(42)
    assert.are.same(want, values(random.normal({ 10 }, { seed = g })))
  end)

  it("is independent of the global stream and of other generators", function()
    random.seed(3)
    local before = global_peek()
    local a, b = random.Generator(5), random.SeedGenerator(5)
    local a1 = values(random.uniform({ 8 }, { seed = a }))
    random.uniform { 100 }
    random.normal({ 50 }, { seed = random.Generator(99) })
    local b1 = values(random.uniform({ 8 }, { seed = b }))
    local a2 = values(random.uniform({ 8 }, { seed = a }))
    assert.are.same(a1, b1)
    assert.are_not.same(a1, a2)
    assert.are.same(a2, values(random.uniform({ 8 }, { seed = b })))
    random.seed(3)
    assert.are.same(before, values(random.uniform { 6 }))
    assert.is_true(random.is_generator(a))
    assert.is_false(random.is_generator({ seed = 5 }))
  end)

  it("reproduces the following draws exactly from a state passed through JSON", function()
    local g = random.Generator(123)
    random.normal({ 7 }, { seed = g })
    local st = json_round_trip(g:get_state())
    assert.are.equal(4, #st)
    for _, v in ipairs(st) do assert.is_true(v >= 0 and v < 2 ^ 32 and v % 1 == 0) end
    local want = { values(random.uniform({ 5 }, { seed = g })), values(random.truncated_normal({ 5 }, { seed = g })),
      random.permutation(9, { seed = g }), g:next() }
    local other = random.Generator(0)
    other:set_state(st)
    assert.are.same(want, { values(random.uniform({ 5 }, { seed = other })),
      values(random.truncated_normal({ 5 }, { seed = other })), random.permutation(9, { seed = other }), other:next() })
  end)

  it("gives the global stream's state as JSON-serialisable integers too", function()
    random.seed(8)
    random.uniform { 3 }
    local st = json_round_trip(random.get_state())
    local want = values(random.normal { 6 })
    random.seed(0)
    random.set_state(st)
    assert.are.same(want, values(random.normal { 6 }))
  end)

  it("refuses states and seeds it cannot use, naming what it received", function()
    h.raises("Generator.set_state: expected four integers in %[0, 2%^32%)", function()
      random.Generator(1):set_state({ 1, 2, 3 })
    end)
    h.raises("random.set_state: expected a table", random.set_state, 7)
    h.raises("random.Generator: seed must be an integer. Received: seed=1.5", random.Generator, 1.5)
    h.raises("random.normal: seed must be an integer or a klua.random.Generator. Received: seed=x",
      random.normal, { 2 }, { seed = "x" })
  end)
end)

describe("the seed keyword of every draw", function()
  local draws = {
    uniform = function(kw) return values(random.uniform({ 40 }, kw)) end,
    normal = function(kw) return values(random.normal({ 40 }, kw)) end,
    truncated_normal = function(kw) return values(random.truncated_normal({ 40 }, kw)) end,
    bernoulli = function(kw) return values(random.bernoulli({ 40 }, 0.5, kw)) end,
    permutation = function(kw) return random.permutation(40, kw) end,
    permutation_tensor = function(kw) return values(random.permutation_tensor(40, kw)) end,
    shuffle = function(kw) return values(random.shuffle(klua.arange(40), kw)) end,
  }
  for name, draw in pairs(draws) do
    it(name .. ": an integer gives the same values every time, a Generator advances, neither touches the global stream", function()
      random.seed(17)
      local before = global_peek()
      assert.are.same(draw { seed = 4 }, draw { seed = 4 })
      local g = random.Generator(4)
      local first = draw { seed = g }
      assert.are.same(draw { seed = 4 }, first)
      assert.are_not.same(first, draw { seed = g })
      assert.are.same(before, values(random.uniform { 6 }))
    end)
  end

  it("keeps the positional forms: bernoulli(shape, p) and permutation(n) draw from the global stream", function()
    random.seed(2)
    local a, p = values(random.bernoulli({ 30 }, 0.3)), random.permutation(10)
    random.seed(2)
    assert.are.same(a, values(random.bernoulli({ 30 }, { p = 0.3 })))
    assert.are.same(p, random.permutation(10))
  end)
end)

describe("a Dropout layer with a seed", function()
  it("repeats its masks and leaves the global stream untouched", function()
    random.seed(6)
    local before = global_peek()
    local a, b = L.Dropout(0.5, { seed = 7 }), L.Dropout(0.5, { seed = 7 })
    local x = klua.ones { 4, 10 }
    for _ = 1, 3 do assert.are.same(values(a(x, { training = true })), values(b(x, { training = true }))) end
    assert.are.same(before, values(random.uniform { 6 }))
    assert.is_true(random.is_generator(a.seed_generator))
  end)

  it("continues its masks from a restored seed_generator state", function()
    local x = klua.ones { 3, 8 }
    local a = L.Dropout(0.5, { seed = 11 })
    a(x, { training = true })
    local st = json_round_trip(a.seed_generator:get_state())
    local want = values(a(x, { training = true }))
    local b = L.Dropout(0.5, { seed = 11 })
    b.seed_generator:set_state(st)
    assert.are.same(want, values(b(x, { training = true })))
  end)
end)

describe("a seeded initializer", function()
  local inits = {
    RandomNormal = { stddev = 1 }, RandomUniform = {}, TruncatedNormal = {}, GlorotUniform = {}, HeNormal = {},
    LecunNormal = {}, Orthogonal = {}, VarianceScaling = { distribution = "untruncated_normal" },
  }
  for name, kw in pairs(inits) do
    it(name .. " gives identical values on every call and leaves the global stream alone", function()
      kw.seed = 21
      local init = klua.initializers[name](kw)
      random.seed(12)
      local before = global_peek()
      local first = values(init { 6, 4 })
      assert.are.same(first, values(init { 6, 4 }))
      assert.are.same(before, values(random.uniform { 6 }))
    end)
  end

  it("draws from the stream its seed names, as klua.random with that seed", function()
    local init = klua.initializers.RandomNormal { mean = 1, stddev = 2, seed = 5 }
    assert.are.same(values(random.normal({ 3, 3 }, { mean = 1, stddev = 2, seed = 5 })), values(init { 3, 3 }))
  end)
end)

describe("an error in the middle of a draw", function()
  it("leaves the global stream usable and where it was", function()
    random.seed(9)
    local before = global_peek()
    local failing = {
      function() random.normal({ 2, -3 }, { seed = 4 }) end,
      function() random.uniform({ 3 }, { minval = 1, maxval = 0, seed = random.Generator(1) }) end,
      function() klua.initializers.Orthogonal { seed = 3 } { 5 } end,
      function() L.Dropout(0.5, { seed = 1, noise_shape = { 1 } })(klua.ones { 2, 2 }, { training = true }) end,
    }
    for _, f in ipairs(failing) do
      assert.is_false(pcall(f))
      assert.are.same(before, global_peek())
    end
    assert.are.same(before, values(random.uniform { 6 }))
  end)
end)

describe("a shuffled Dataset's generators", function()
  local function pipeline(seed) return Dataset.from_tensor_slices(range(20)):shuffle(20, seed):batch(4) end

  it("give, once restored, the order the uninterrupted run has next", function()
    local ds = pipeline(3)
    order(ds)
    local saved = {}
    for i, g in ipairs(ds:generators()) do saved[i] = json_round_trip(g:get_state()) end
    local want = order(ds)

    local resumed = pipeline(3)
    for i, g in ipairs(resumed:generators()) do g:set_state(saved[i]) end
    assert.are.same(want, order(resumed))
  end)

  it("work the same without a seed, and klua.random.seed fixes the orders", function()
    random.seed(4)
    local ds = pipeline()
    local e1 = order(ds)
    local st = ds:generators()[1]:get_state()
    local e2 = order(ds)
    random.seed(4)
    local again = pipeline()
    assert.are.same({ e1, e2 }, { order(again), order(again) })
    local resumed = pipeline()
    resumed:generators()[1]:set_state(st)
    assert.are.same(e2, order(resumed))
  end)

  it("list every shuffle of a pipeline, upstream first", function()
    local first = Dataset.from_tensor_slices(range(12)):shuffle(4, 1)
    local ds = first:map(function(x) return x * 2 end):shuffle(6, 2):batch(3):repeat_(2)
    local gens = ds:generators()
    assert.are.equal(2, #gens)
    assert.are.equal(first:generators()[1], gens[1])
    assert.are.same(random.Generator(2):get_state(), gens[2]:get_state())
    assert.are.same({}, Dataset.from_tensor_slices(range(3)):batch(2):generators())
  end)

  it("keep one order without reshuffle_each_iteration, restored or not", function()
    local function fixed() return Dataset.from_tensor_slices(range(15)):shuffle(15, { seed = 8, reshuffle_each_iteration = false }) end
    local ds = fixed()
    local once = order(ds:batch(15))
    assert.are.same(once, order(ds:batch(15)))
    local other = fixed()
    other:generators()[1]:set_state(ds:generators()[1]:get_state())
    assert.are.same(once, order(other:batch(15)))
  end)
end)

describe("klua.random.seed", function()
  it("makes a whole run reproducible: initial weights, dropout masks and shuffles", function()
    local function run()
      random.seed(31)
      local x, y = random.normal { 24, 3 }, random.normal { 24, 1 }
      local m = klua.Sequential {
        L.Dense(6, { activation = "relu", input_shape = { 3 } }),
        L.Dropout(0.3),
        L.Dropout(0.2, { seed = 5 }),
        L.Dense(1),
      }
      m:compile { optimizer = "sgd", loss = "mse" }
      local ds = Dataset.from_tensor_slices({ x, y }):shuffle(24):batch(6)
      m:fit { x = ds, epochs = 2, verbose = 0 }
      local out = {}
      for i, w in ipairs(m:get_weights()) do out[i] = w:totable() end
      return out
    end
    assert.are.same(run(), run())
  end)
end)
