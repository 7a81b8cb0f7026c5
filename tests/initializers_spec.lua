-- initializers_spec.lua — klua.initializers against Keras's definitions:
-- each distribution is sampled and its bounds, mean and standard deviation
-- compared with the formula (variance scaling: scale / fan, the truncated
-- normal's 0.87962566103423978 correction, limits sqrt(3 * scale / fan)).
local klua = require("klua")
local ops = klua.ops
local I = klua.initializers

local TRUNC = 0.87962566103423978

local function stats(t)
  return ops.mean(t):item(), ops.std(t):item(), ops.min(t):item(), ops.max(t):item()
end

-- mean ~ 0 and std within 3% of the expected value (n = 60000 samples)
local function check_spread(t, std, bound)
  local mean, s, lo, hi = stats(t)
  assert(math.abs(mean) < 0.03 * std, ("mean %.5g, expected ~0 (std %.5g)"):format(mean, std))
  assert(math.abs(s - std) < 0.03 * std, ("std %.5g, expected %.5g"):format(s, std))
  if bound then
    assert(lo >= -bound - 1e-7 and hi <= bound + 1e-7, ("values in [%.5g, %.5g], bound %.5g"):format(lo, hi, bound))
    assert(hi > 0.95 * bound and lo < -0.95 * bound, "the range reaches the bound")
  end
end

describe("initializers", function()
  before_each(function() klua.random.seed(2024) end)

  it("fill constants: zeros, ones, constant", function()
    assert.are.same({ 0, 0, 0 }, I.zeros()({ 3 }):tolist())
    assert.are.same({ 1, 1 }, I.Ones()({ 2 }):tolist())
    assert.are.same({ 2.5, 2.5 }, I.constant(2.5)({ 2 }):tolist())
    assert.are.same({ -1, -1 }, I.Constant { value = -1 }({ 2 }):tolist())
  end)

  it("random_normal has Keras's stddev 0.05, random_uniform Keras's [-0.05, 0.05]", function()
    check_spread(I.random_normal()({ 200, 300 }), 0.05)
    check_spread(I.RandomUniform()({ 200, 300 }), 0.05 / math.sqrt(3), 0.05)
    local n = I.RandomNormal { mean = 1, stddev = 2 }({ 200, 300 })
    assert(math.abs(ops.mean(n):item() - 1) < 0.05)
    local u = I.RandomUniform { minval = 2, maxval = 4 }({ 1000 })
    assert(ops.min(u):item() >= 2 and ops.max(u):item() <= 4)
  end)

  it("truncated_normal redraws beyond two standard deviations", function()
    local t = I.truncated_normal()({ 200, 300 })
    check_spread(t, 0.05 * TRUNC, 0.1)
  end)

  it("computes fans like Keras (receptive field for kernels)", function()
    assert.are.same({ 1, 1 }, { I.compute_fans({}) })
    assert.are.same({ 5, 5 }, { I.compute_fans({ 5 }) })
    assert.are.same({ 3, 4 }, { I.compute_fans({ 3, 4 }) })
    assert.are.same({ 3 * 3 * 16, 3 * 3 * 32 }, { I.compute_fans({ 3, 3, 16, 32 }) })
  end)

  local fan_in, fan_out = 200, 300
  local cases = {
    { "glorot_uniform", "uniform", 1, (fan_in + fan_out) / 2 },
    { "glorot_normal", "truncated", 1, (fan_in + fan_out) / 2 },
    { "he_normal", "truncated", 2, fan_in },
    { "he_uniform", "uniform", 2, fan_in },
    { "lecun_normal", "truncated", 1, fan_in },
    { "lecun_uniform", "uniform", 1, fan_in },
  }
  for _, c in ipairs(cases) do
    local name, dist, scale, fan = c[1], c[2], c[3], c[4]
    it(name .. " follows variance scaling (scale " .. scale .. ", " .. dist .. ")", function()
      local t = I.get(name)({ fan_in, fan_out })
      local variance = scale / fan
      if dist == "uniform" then
        local limit = math.sqrt(3 * variance)
        check_spread(t, math.sqrt(variance), limit)
      else
        -- the corrected stddev keeps the variance at scale / fan after truncation
        check_spread(t, math.sqrt(variance), 2 * math.sqrt(variance) / TRUNC)
      end
    end)
  end

  it("variance_scaling accepts every mode and distribution", function()
    check_spread(I.VarianceScaling { scale = 2, mode = "fan_out", distribution = "untruncated_normal" }({ 200, 300 }),
      math.sqrt(2 / 300))
    check_spread(I.VarianceScaling { mode = "fan_avg", distribution = "uniform" }({ 200, 300 }),
      math.sqrt(1 / 250), math.sqrt(3 / 250))
    -- a convolution kernel: fan_in = 3 * 3 * 8
    check_spread(I.he_normal()({ 3, 3, 8, 400 }), math.sqrt(2 / 72))
  end)

  it("orthogonal gives orthonormal rows or columns, times gain", function()
    local function gram(q, rows)
      local m = q:reshape({ -1, q:shape()[#q:shape()] })
      return rows and ops.matmul(m, ops.transpose(m)) or ops.matmul(ops.transpose(m), m)
    end
    local function is_identity(g, tol)
      local n = g:shape()[1]
      local d = g - klua.eye(n)
      assert(ops.max(ops.abs(d)):item() < tol, "max deviation " .. ops.max(ops.abs(d)):item())
    end
    is_identity(gram(I.orthogonal()({ 30, 10 })), 1e-5)              -- tall: columns
    is_identity(gram(I.Orthogonal()({ 10, 30 }), true), 1e-5)        -- wide: rows
    is_identity(gram(I.orthogonal()({ 3, 3, 4, 8 })), 1e-5)           -- kernel: (36, 8)
    local q = I.Orthogonal { gain = 2 }({ 6, 6 })
    is_identity(gram(q) / 4, 1e-5)
    local ok, err = pcall(I.orthogonal(), { 5 })
    assert.is_false(ok)
    assert.matches("Orthogonal: the shape must have at least 2 dimensions", err)
  end)

  it("identity gives gain times the identity matrix, 2D only", function()
    assert.are.same({ { 1, 0, 0 }, { 0, 1, 0 } }, I.identity()({ 2, 3 }):totable())
    assert.are.same({ { 3, 0 }, { 0, 3 } }, I.Identity { gain = 3 }({ 2, 2 }):totable())
    local ok, err = pcall(I.identity(), { 2, 2, 2 })
    assert.is_false(ok)
    assert.matches("Identity: only 2D shapes are supported", err)
  end)

  it("with a seed, gives the same values every call and leaves the global stream alone", function()
    klua.random.seed(5)
    local expected = klua.random.uniform({ 4 }):totable()
    klua.random.seed(5)
    local a = I.GlorotUniform { seed = 42 }
    local v1, v2 = a({ 4, 4 }), a({ 4, 4 })
    assert.are.same(v1:totable(), v2:totable())
    assert.are.same(v1:totable(), I.glorot_uniform(42)({ 4, 4 }):totable())
    assert.are_not.same(v1:totable(), I.GlorotUniform { seed = 43 }({ 4, 4 }):totable())
    assert.are.same(expected, klua.random.uniform({ 4 }):totable())
    -- without a seed, the global seed makes runs repeatable
    klua.random.seed(9)
    local r1 = I.he_normal()({ 3 }):totable()
    klua.random.seed(9)
    assert.are.same(r1, I.he_normal()({ 3 }):totable())
  end)

  it("are found by name, class name, config, object or function, and serialize", function()
    assert.are.equal("GlorotNormal", I.get("glorot_normal"):class_name())
    assert.are.equal("GlorotNormal", I.get("GlorotNormal"):class_name())
    assert.are.equal("RandomUniform", I.get("uniform"):class_name())
    local obj = I.RandomNormal { stddev = 0.2, seed = 1 }
    assert.are.equal(obj, I.get(obj))
    local config = I.serialize(obj)
    assert.are.same({ class_name = "RandomNormal", config = { mean = 0, stddev = 0.2, seed = 1 } }, config)
    assert.are.same(obj({ 3 }):totable(), I.get(config)({ 3 }):totable())
    local f = function(shape) return klua.full(shape, 7) end
    assert.are.equal(f, I.get(f))
    local ok, err = pcall(I.get, "glorot_normall")
    assert.is_false(ok)
    assert.matches("initializers.get: unknown initializer 'glorot_normall'", err)
    ok, err = pcall(I.RandomNormal, { stddev = -1 })
    assert.is_false(ok)
    assert.matches("RandomNormal: expected a positive number. Received: stddev=%-1", err)
    ok, err = pcall(I.VarianceScaling, { mode = "fan_sideways" })
    assert.is_false(ok)
    assert.matches("mode must be one of fan_in, fan_out, fan_avg. Received: mode=fan_sideways", err)
  end)
end)
