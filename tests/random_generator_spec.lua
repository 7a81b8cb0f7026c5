-- random_generator_spec.lua — random streams are objects: klua.random.Generator,
-- the seed= keyword of every draw, and the generators that seeded layers,
-- initializers and shuffled datasets hold instead of juggling the global stream;
-- and the floats a seed gives, pinned bit for bit.
local ffi = require("ffi")
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

-- Fingerprints recorded with the scalar generator that drew one PCG step at a
-- time and each normal with libm's log and cos, before draws went blockwise
-- (issue 16): a hash of the float bits, the sum in double, floats 1, 2, 3 and
-- the last. Dropout draws bernoulli; the initializers normal, uniform and
-- truncated_normal.
local PINNED = {
  ["normal 1"] = "4061429955 -0x1.0ca5efb1e778p+7 0x1.700da8p-1 0x1.3c654ep-2 -0x1.1208bcp+0 0x1.327b9ep-7",
  ["uniform 1"] = "2672886891 0x1.879f4801cc6abp+15 0x1.2d13e6p-1 0x1.bee8ecp-1 0x1.29f568p-2 0x1.8d79b6p-2",
  ["truncated_normal 1"] = "827589176 -0x1.bbd94961df25p+7 0x1.700da8p-1 0x1.3c654ep-2 -0x1.1208bcp+0 0x1.255a52p-4",
  ["bernoulli 1"] = "2325969726 0x1.d02p+14 0x0p+0 0x0p+0 0x1p+0 0x0p+0",
  ["normal 42"] = "3610340989 0x1.6657b702b048p+6 -0x1.14f30ap+0 -0x1.4082b8p-2 -0x1.4f38ecp+0 -0x1.cd661p-1",
  ["uniform 42"] = "4097561244 0x1.8618fa4c290edp+15 0x1.1b5ef2p-1 0x1.087b5ep-1 0x1.e67cf4p-1 0x1.c27b9p-1",
  ["truncated_normal 42"] = "1511806975 -0x1.97d7e834bab8p+6 -0x1.14f30ap+0 -0x1.4082b8p-2 -0x1.4f38ecp+0 0x1.0969cp-5",
  ["bernoulli 42"] = "591155360 0x1.d5ap+14 0x0p+0 0x0p+0 0x0p+0 0x0p+0",
  ["normal 1099511627779"] = "132414912 -0x1.aea7fec6c48p+4 -0x1.3d8f7ep-1 0x1.257d38p-1 0x1.668bep-2 0x1.9df89ep-2",
  ["uniform 1099511627779"] = "1961408842 0x1.86747969e944ep+15 0x1.3038f4p-1 0x1.6a7b4ep-2 0x1.0c3b18p-1 0x1.a83b5ap-4",
  ["truncated_normal 1099511627779"] = "935431194 0x1.019b1a684778p+8 -0x1.3d8f7ep-1 0x1.257d38p-1 0x1.668bep-2 0x1.bb9d34p-2",
  ["bernoulli 1099511627779"] = "1376101534 0x1.d7ep+14 0x0p+0 0x0p+0 0x0p+0 0x1p+0",
  ["seq normal"] = "2855621270 0x1.77799a0fp+10 0x1.860356p+0 0x1.840662p+0 0x1.7ec968p+0 0x1.80f67cp+0",
  ["seq uniform"] = "735548344 -0x1.634fcf0cdd4p+7 -0x1.ebebb2p-2 0x1.71d2b2p-1 -0x1.a7d3c6p-1 0x1.0b99b8p+0",
  ["seq truncated_normal"] = "1852307335 -0x1.4493a4d5p+7 -0x1.b7475p+1 -0x1.8e5a06p+1 -0x1.8446aep-1 -0x1.418ce4p+2",
  ["seq bernoulli"] = "3120953199 0x1.3p+5 0x1p+0 0x1p+0 0x0p+0 0x1p+0",
  ["seq normal 1"] = "1068002909 0x1.50dcbap+0 0x1.50dcbap+0 0x1.50dcbap+0 0x1.50dcbap+0 0x1.50dcbap+0",
  ["seq state"] = "455862357 1093400074 0 19 3970939518",
  ["global normal"] = "3384819948 0x1.a00860afb8p+4 -0x1.f2bddep-2 0x1.ddc89cp-2 -0x1.7e90fcp-5 0x1.03023ap-4",
  ["global uniform"] = "3618863258 0x1.a0e936a4p+3 0x1.23f54ep-1 0x1.23a798p-1 0x1.1d4f26p-1 0x1.e37e84p-2",
  ["global truncated_normal"] = "659039794 0x1.22dd906184p+5 0x1.92b87p-8 -0x1.116d12p-1 -0x1.0fb792p+0 0x1.3dbc14p-1",
  ["global state"] = "2029801661 934654888 0 11",
}

local function fingerprint(t)
  local n = t:numel()
  local bits, f = ffi.cast("const uint32_t *", t.data), ffi.cast("const float *", t.data)
  local hash, sum = 0, 0
  for i = 0, n - 1 do hash = (hash * 65599 + bits[i]) % 4294967291; sum = sum + f[i] end
  local s = string.format("%d %a", hash, sum)
  for _, i in ipairs { 0, 1, 2, n - 1 } do s = s .. string.format(" %a", f[math.min(i, n - 1)]) end
  return s
end

describe("the values a seed gives", function()
  it("are, bit for bit, the floats the scalar generator gave, for generators and the global stream", function()
    for _, seed in ipairs { 1, 42, 2 ^ 40 + 3 } do
      local kw = { seed = seed }
      assert.are.equal(PINNED["normal " .. seed], fingerprint(random.normal({ 100000 }, kw)))
      assert.are.equal(PINNED["uniform " .. seed], fingerprint(random.uniform({ 100000 }, kw)))
      assert.are.equal(PINNED["truncated_normal " .. seed], fingerprint(random.truncated_normal({ 100000 }, kw)))
      assert.are.equal(PINNED["bernoulli " .. seed], fingerprint(random.bernoulli({ 100000 }, 0.3, kw)))
    end
    local g = random.Generator(9)
    assert.are.equal(PINNED["seq normal"], fingerprint(random.normal({ 1001 }, { seed = g, mean = 1.5, stddev = 0.01 })))
    assert.are.equal(PINNED["seq uniform"], fingerprint(random.uniform({ 333 }, { seed = g, minval = -3, maxval = 2 })))
    assert.are.equal(PINNED["seq truncated_normal"],
      fingerprint(random.truncated_normal({ 77 }, { seed = g, mean = -2, stddev = 3 })))
    assert.are.equal(PINNED["seq bernoulli"], fingerprint(random.bernoulli({ 55 }, 0.7, { seed = g })))
    assert.are.equal(PINNED["seq normal 1"], fingerprint(random.normal({ 1 }, { seed = g })))
    assert.are.equal(PINNED["seq state"], table.concat(g:get_state(), " ") .. " " .. g:next())
    local saved = random.get_state()
    finally(function() random.set_state(saved) end)
    random.seed(5)
    assert.are.equal(PINNED["global normal"], fingerprint(random.normal { 64, 32 }))
    assert.are.equal(PINNED["global uniform"], fingerprint(random.uniform { 3, 7 }))
    assert.are.equal(PINNED["global truncated_normal"], fingerprint(random.truncated_normal { 100, 10 }))
    assert.are.equal(PINNED["global state"], table.concat(random.get_state(), " "))
  end)

  it("are libm's also where a fast polynomial's value would round to the neighbouring float", function()
    -- states found by scanning 4e8 normals (near z = 0, where libm's rounding of 2 pi u shows)
    local cases = {
      { { 2019609991, 786188662, 0, 24691 }, "0x1.006da6p-8" },
      { { 3141729270, 4101995566, 0, 24691 }, "0x1.7bb37cp-12" },
      { { 782776978, 3722893042, 0, 24691 }, "0x1.63ffd6p-14" },
      { { 2741057247, 4151720762, 0, 24691 }, "-0x1.f7fa46p-14" },
    }
    for _, case in ipairs(cases) do
      local g = random.Generator(0)
      g:set_state(case[1])
      assert.are.equal(case[2], string.format("%a", random.normal({ 1 }, { seed = g }):item()))
    end
  end)

  it("do not depend on how a draw is cut into pieces, nor on the number of threads", function()
    local draws = {
      normal = function(n, g) return random.normal({ n }, { seed = g }) end,
      uniform = function(n, g) return random.uniform({ n }, { seed = g }) end,
      truncated_normal = function(n, g) return random.truncated_normal({ n }, { seed = g }) end,
      bernoulli = function(n, g) return random.bernoulli({ n }, 0.4, { seed = g }) end,
    }
    local before = klua.set_num_threads(1)
    finally(function() klua.set_num_threads(before) end)
    for name, draw in pairs(draws) do
      -- 40000 values are three spans of 16384 that threads draw side by side
      local g = random.Generator(3)
      local whole, after = fingerprint(draw(40000, g)), g:get_state()
      local pieces = {}
      g = random.Generator(3)
      for _, n in ipairs { 1, 7, 256, 300, 39436 } do
        for _, v in ipairs(values(draw(n, g))) do pieces[#pieces + 1] = v end
      end
      assert.are.equal(whole, fingerprint(klua.tensor(pieces)), name)
      assert.are.same(after, g:get_state(), name)
      klua.set_num_threads(3)
      g = random.Generator(3)
      assert.are.equal(whole, fingerprint(draw(40000, g)), name)
      assert.are.same(after, g:get_state(), name)
      klua.set_num_threads(1)
    end
  end)
end)
