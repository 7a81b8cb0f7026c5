-- losses_spec.lua — every loss's value and gradient against Keras 3's
-- definitions (reference values from tests/reference/gen_loss_refs.py, torch
-- float64 autograd, generated once), finite differences through the tape,
-- the edge cases (probabilities at 0 and 1, logits of +-100, ignore_class),
-- sample weights and every reduction.
local klua = require("klua")
local helpers = require("helpers")
local losses, ops = klua.losses, klua.ops

local function flat(x)
  if type(x) ~= "table" then return { x } end
  local out = {}
  local function walk(t) for _, v in ipairs(t) do if type(v) == "table" then walk(v) else out[#out + 1] = v end end end
  walk(x)
  return out
end

-- near(expected, actual, rtol=1e-5, atol=1e-6, what): helpers.near on the
-- flattened values, the reference first.
local function near(expected, actual, rtol, atol, what)
  helpers.near(flat(actual), flat(expected), { rtol = rtol or 1e-5, atol = atol or 1e-6 }, what)
end

local values = helpers.values

-- {name, constructor, y_true, y_pred, per-sample losses, gradient of the mean wrt y_pred}
local CASES = {
  { "MeanSquaredError", "MeanSquaredError()", { { 0.5, -1, 2 }, { 1.5, 0.2, -0.5 } }, { { 0.7, -0.4, 1 }, { 1, 0.3, -2.5 } }, { 0.4666666667, 1.42 }, { { 0.06666666667, 0.2, -0.3333333333 }, { -0.1666666667, 0.03333333333, -0.6666666667 } } },
  { "MeanAbsoluteError", "MeanAbsoluteError()", { { 0.5, -1, 2 }, { 1.5, 0.2, -0.5 } }, { { 0.7, -0.4, 1 }, { 1, 0.3, -2.5 } }, { 0.6, 0.8666666667 }, { { 0.1666666667, 0.1666666667, -0.1666666667 }, { -0.1666666667, 0.1666666667, -0.1666666667 } } },
  { "MeanAbsolutePercentageError", "MeanAbsolutePercentageError()", { { 0.5, -1, 2 }, { 1.5, 0.2, -0.5 } }, { { 0.7, -0.4, 1 }, { 1, 0.3, -2.5 } }, { 50, 161.1111111 }, { { 33.33333333, 16.66666667, -8.333333333 }, { -11.11111111, 83.33333333, -33.33333333 } } },
  { "MeanSquaredLogarithmicError", "MeanSquaredLogarithmicError()", { { 0.5, 1, 2 }, { 1.5, 0, 3 } }, { { 0.7, 0.4, 1 }, { 1, -0.3, 2.5 } }, { 0.1024282606, 0.02254122577 }, { { 0.02454179274, -0.0849226057, -0.06757751802 }, { -0.03719059189, 0, -0.01271727549 } } },
  { "Huber", "Huber()", { { 0.5, -1, 2 }, { 1.5, 0.2, -0.5 } }, { { 0.7, -0.4, 1 }, { 1, 0.3, -2.5 } }, { 0.2333333333, 0.5433333333 }, { { 0.03333333333, 0.1, -0.1666666667 }, { -0.08333333333, 0.01666666667, -0.1666666667 } } },
  { "Huber delta 0.5", "Huber{delta = 0.5}", { { 0.5, -1, 2 }, { 1.5, 0.2, -0.5 } }, { { 0.7, -0.4, 1 }, { 1, 0.3, -2.5 } }, { 0.19, 0.335 }, { { 0.03333333333, 0.08333333333, -0.08333333333 }, { -0.08333333333, 0.01666666667, -0.08333333333 } } },
  { "LogCosh", "LogCosh()", { { 0.5, -1, 2 }, { 1.5, 0.2, -0.5 } }, { { 0.7, -0.4, 1 }, { 1, 0.3, -2.5 } }, { 0.207928063, 0.4833696477 }, { { 0.0328958867, 0.08950826117, -0.1269323593 }, { -0.07701952621, 0.01661133244, -0.1606712633 } } },
  { "Poisson", "Poisson()", { { 0.5, 1, 2 }, { 1.5, 0, 3 } }, { { 0.7, 0.4, 1 }, { 1, 0.3, 2.5 } }, { 1.064875894, 0.3503758448 }, { { 0.04761906463, -0.2499998958, -0.1666666333 }, { -0.08333330833, 0.1666666667, -0.03333332533 } } },
  { "KLDivergence", "KLDivergence()", { { 0.2, 0.3, 0.5 }, { 0, 0.6, 0.4 } }, { { 0.1, 0.6, 0.3 }, { 0.25, 0.25, 0.5 } }, { 0.1860980938, 0.4360223487 }, { { -1, -0.25, -0.8333333333 }, { -2.000000023e-07, -1.2, -0.4 } } },
  { "Hinge", "Hinge()", { { 1, -1, 1 }, { -1, 1, -1 } }, { { 0.3, 0.8, -0.2 }, { -1.5, 2, 0.4 } }, { 1.233333333, 0.4666666667 }, { { -0.1666666667, 0.1666666667, -0.1666666667 }, { 0, -0, 0.1666666667 } } },
  { "Hinge with 0/1 labels", "Hinge()", { { 1, 0, 1 }, { 0, 1, 0 } }, { { 0.3, 0.8, -0.2 }, { -1.5, 2, 0.4 } }, { 1.233333333, 0.4666666667 }, { { -0.1666666667, 0.1666666667, -0.1666666667 }, { 0, -0, 0.1666666667 } } },
  { "SquaredHinge", "SquaredHinge()", { { 1, -1, 1 }, { -1, 1, -1 } }, { { 0.3, 0.8, -0.2 }, { -1.5, 2, 0.4 } }, { 1.723333333, 0.6533333333 }, { { -0.2333333333, 0.6, -0.4 }, { 0, -0, 0.4666666667 } } },
  { "SquaredHinge with 0/1 labels", "SquaredHinge()", { { 1, 0, 1 }, { 0, 1, 0 } }, { { 0.3, 0.8, -0.2 }, { -1.5, 2, 0.4 } }, { 1.723333333, 0.6533333333 }, { { -0.2333333333, 0.6, -0.4 }, { 0, -0, 0.4666666667 } } },
  { "CategoricalHinge", "CategoricalHinge()", { { 0, 1, 0 }, { 1, 0, 0 } }, { { 0.3, 0.5, -0.2 }, { 0.1, 0.4, 0.9 } }, { 0.8, 1.8 }, { { 0.5, -0.5, 0 }, { -0.5, 0, 0.5 } } },
  { "CosineSimilarity", "CosineSimilarity()", { { 0.5, -1, 2 }, { 1.5, 0.2, -0.5 } }, { { 0.7, -0.4, 1 }, { 1, 0.3, -2.5 } }, { -0.9343531843, -0.6507908402 }, { { 0.1132549314, 0.05662746572, -0.05662746572 }, { -0.1293668217, -0.009860276045, -0.05292996181 } } },
  { "BinaryCrossentropy", "BinaryCrossentropy()", { { 0, 1 }, { 0, 0 } }, { { 0.6, 0.4 }, { 0.4, 0.6 } }, { 0.9162907319, 0.7135581778 }, { { 0.625, -0.625 }, { 0.4166666667, 0.625 } } },
  { "BinaryCrossentropy from logits", "BinaryCrossentropy{from_logits = true}", { { 0, 1 }, { 0, 0 } }, { { -18.6, 0.51 }, { 2.94, -12.8 } }, { 0.2351566632, 1.495759236 }, { { 2.089597508e-09, -0.09379838138 }, { 0.2374471817, 6.901912375e-07 } } },
  { "BinaryCrossentropy label smoothing", "BinaryCrossentropy{label_smoothing = 0.2}", { { 0, 1 }, { 0, 0 } }, { { 0.6, 0.4 }, { 0.4, 0.6 } }, { 0.8757442211, 0.7135581778 }, { { 0.5208333333, -0.5208333333 }, { 0.3125, 0.5208333333 } } },
  { "BinaryFocalCrossentropy", "BinaryFocalCrossentropy()", { { 0, 1 }, { 0, 0 } }, { { 0.6, 0.4 }, { 0.4, 0.6 } }, { 0.3298646635, 0.2057983816 }, { { 0.4998872196, -0.4998872196 }, { 0.1688317914, 0.4998872196 } } },
  { "BinaryFocalCrossentropy balanced from logits", "BinaryFocalCrossentropy{apply_class_balancing = true, gamma = 3, from_logits = true}", { { 0, 1 }, { 0, 0 } }, { { -1.5, 0.51 }, { 2.94, -0.8 } }, { 0.003563550981, 0.9653243029 }, { { 0.0007699901492, -0.004148562743 }, { 0.2249770296, 0.00602397353 } } },
  { "CategoricalCrossentropy", "CategoricalCrossentropy()", { { 0.1, 0.6, 0.3 }, { 0, 0.2, 0.8 } }, { { 0.1, 0.6, 0.3 }, { 0.25, 0.25, 0.5 } }, { 0.8979457249, 0.8317766167 }, { { 0, 0, 0 }, { 0.5, 0.1, -0.3 } } },
  { "CategoricalCrossentropy from logits", "CategoricalCrossentropy{from_logits = true}", { { 0.1, 0.6, 0.3 }, { 0, 0.2, 0.8 } }, { { 2, -1, 0.5 }, { -0.3, 0.8, 1.7 } }, { 2.491311297, 0.613018628 }, { { 0.3427985173, -0.2804437134, -0.06235480393 }, { 0.04388574142, 0.0318400533, -0.07572579472 } } },
  { "CategoricalCrossentropy label smoothing", "CategoricalCrossentropy{from_logits = true, label_smoothing = 0.1}", { { 0, 1, 0 }, { 1, 0, 0 } }, { { 2, -1, 0.5 }, { -0.3, 0.8, 1.7 } }, { 3.091311297, 2.329685295 }, { { 0.3761318506, -0.44711038, 0.0709785294 }, { -0.4227809252, 0.1151733866, 0.3076075386 } } },
  { "SparseCategoricalCrossentropy", "SparseCategoricalCrossentropy()", { 1, 2 }, { { 0.1, 0.6, 0.3 }, { 0.25, 0.25, 0.5 } }, { 0.5108256238, 0.6931471806 }, { { 0.5, -0.3333333333, 0.5 }, { 0.5, 0.5, -0.5 } } },
  { "SparseCategoricalCrossentropy from logits", "SparseCategoricalCrossentropy{from_logits = true}", { 2, 0 }, { { 2, -1, 0.5 }, { -0.3, 0.8, 1.7 } }, { 1.741311297, 2.433018628 }, { { 0.3927985173, 0.01955628664, -0.4123548039 }, { -0.4561142586, 0.1318400533, 0.3242742053 } } },
}

local function make(ctor, extra)
  local src = ctor
  if extra then
    src = ctor:match("^(%w+)%(%)$") and (ctor:gsub("%(%)$", "{" .. extra .. "}")) or ctor:gsub("}$", ", " .. extra .. "}")
  end
  return assert(loadstring("local L = ...; return L." .. src))(losses)
end

-- Central differences of a scalar loss wrt y_pred (float32 arithmetic, so a
-- step of 1e-3 and a tolerance to match).
local function numeric_grad(f, y_true, y_pred)
  local p = klua.tensor(y_pred):clone()
  local g = {}
  for i = 0, tonumber(p.count) - 1 do
    local x0 = p.data[i]
    p.data[i] = x0 + 1e-3
    local up = f(y_true, p):item()
    p.data[i] = x0 - 1e-3
    local down = f(y_true, p):item()
    p.data[i] = x0
    g[i + 1] = (up - down) / 2e-3
  end
  return g
end

describe("loss values and gradients", function()
  for _, c in ipairs(CASES) do
    local name, ctor, yt, yp, per_sample, grad = unpack(c)
    it(name .. " matches Keras's definition, per sample and reduced", function()
      near(per_sample, values(make(ctor, 'reduction = "none"')(yt, yp)), 1e-5, 1e-6, name .. " per sample")
      local mean = 0
      for _, v in ipairs(per_sample) do mean = mean + v end
      near({ mean / #per_sample }, { make(ctor)(yt, yp):item() }, 1e-5, 1e-6, name .. " reduced")
    end)

    it(name .. " has Keras's gradient, and finite differences agree", function()
      local loss_fn = make(ctor)
      local p = klua.tensor(yp)
      local tape = klua.GradientTape()
      tape:watch(p)
      local loss = tape:record(function() return loss_fn(yt, p) end)
      local g = tape:gradient(loss, p)
      near(grad, g:tolist(), 1e-4, 1e-6, name .. " gradient")
      near(numeric_grad(loss_fn, yt, yp), g:tolist(), 1e-2, 2e-3, name .. " finite differences")
    end)
  end
end)

describe("loss edge cases", function()
  it("clips probabilities of exactly 0 and 1 as Keras does", function()
    local bce = losses.BinaryCrossentropy { reduction = "none" }
    local v = ops.reshape(losses.binary_crossentropy({ { 0 }, { 1 }, { 1 }, { 0 } }, { { 0 }, { 1 }, { 0 }, { 1 } }), { 4 })
    near({ 1.000000062e-07, 1.192092967e-07, 16.11809564, 15.94238515 }, v:tolist(), 1e-5, 1e-9, "binary_crossentropy")
    near({ (1.000000062e-07 + 1.192092967e-07 + 16.11809564 + 15.94238515) / 4 }, { bce({ 0, 1, 1, 0 }, { 0, 1, 0, 1 }):item() }, 1e-6, 0, "one row of four")
    near({ 16.11809564 }, { losses.categorical_crossentropy({ { 0, 1, 0 } }, { { 1, 0, 0 } }):item() }, 1e-6, 0, "cce miss")
    -- no gradient flows where the probability was clipped
    local p = klua.tensor { { 0, 1, 0.5 } }
    local tape = klua.GradientTape()
    tape:watch(p)
    local loss = tape:record(function() return losses.BinaryCrossentropy()({ { 0, 1, 1 } }, p) end)
    near({ 0, 0, -2 / 3 }, tape:gradient(loss, p):tolist(), 1e-6, 1e-7, "clipped gradient")
  end)

  it("is exact and finite for logits of +-100", function()
    local x = klua.tensor { { 100, -100, -100, 100 } }
    local tape = klua.GradientTape()
    tape:watch(x)
    local loss = tape:record(function()
      return losses.BinaryCrossentropy { from_logits = true, reduction = "none" }({ { 1, 0, 1, 0 } }, x)
    end)
    near({ 50 }, { loss:item() }, 1e-7, 0, "bce mean of 0, 0, 100, 100")
    near({ 0, 0, -0.25, 0.25 }, tape:gradient(loss, x):tolist(), 0, 1e-7, "bce gradient")

    local z = klua.tensor { { 100, -100, 0 } }
    local tape2 = klua.GradientTape()
    tape2:watch(z)
    local l2 = tape2:record(function() return losses.CategoricalCrossentropy { from_logits = true }({ { 0, 0, 1 } }, z) end)
    near({ 100 }, { l2:item() }, 1e-7, 0, "cce")
    near({ 1, 0, -1 }, tape2:gradient(l2, z):tolist(), 0, 1e-7, "cce gradient")
    local s = losses.SparseCategoricalCrossentropy { from_logits = true }({ 2 }, { { 100, -100, 0 } })
    near({ 100 }, { s:item() }, 1e-7, 0, "sparse")
    near({ 99.30685282 }, { losses.log_cosh({ { 0 } }, { { 100 } }):item() }, 1e-6, 0, "log_cosh")
  end)

  it("divides by max(|y_true|, epsilon) in MAPE", function()
    near({ 150000023.2 }, { losses.mape({ { 0, 2 } }, { { 0.3, 1.0 } }):item() }, 1e-6, 0, "mape")
  end)

  it("leaves ignore_class out of the loss, the mean and the gradient", function()
    local logits = klua.tensor { { 0.2, 1.0, -0.5 }, { 3.0, 0.1, 0.2 }, { -1.0, 0.0, 2.0 } }
    local labels = { 1, -1, 2 }
    local per = losses.SparseCategoricalCrossentropy { from_logits = true, ignore_class = -1, reduction = "none" }(labels, logits)
    near({ 0.5142950728, 0, 0.1698460196 }, per:tolist(), 1e-5, 1e-7, "per sample")
    local fn = losses.SparseCategoricalCrossentropy { from_logits = true, ignore_class = -1 }
    local tape = klua.GradientTape()
    tape:watch(logits)
    local loss = tape:record(function() return fn(labels, logits) end)
    near({ 0.3420705462 }, { loss:item() }, 1e-5, 0, "mean over the two valid samples")
    local g = tape:gradient(loss, logits):totable()
    assert.are.same({ 0, 0, 0 }, g[2])
    assert.is_true(math.abs(g[1][2]) > 0.1)
    near({ 0.6841410924 }, { losses.SparseCategoricalCrossentropy { from_logits = true, ignore_class = -1, reduction = "sum" }(labels, logits):item() },
      1e-5, 0, "sum")
    -- every sample ignored: zero, not NaN
    near({ 0 }, { fn({ -1, -1, -1 }, logits):item() }, 0, 0, "all ignored")
  end)

  it("accepts labels shaped (N,) or (N, 1)", function()
    local p = { { 0.1, 0.6, 0.3 }, { 0.25, 0.25, 0.5 } }
    local a = losses.SparseCategoricalCrossentropy()({ 1, 2 }, p):item()
    local b = losses.SparseCategoricalCrossentropy()({ { 1 }, { 2 } }, p):item()
    assert.are.equal(a, b)
    -- and regression targets (N,) against predictions (N, 1)
    near({ 0.25 }, { losses.MeanSquaredError()({ 1, 2 }, { { 1.5 }, { 2.5 } }):item() }, 1e-7, 0, "mse rank")
  end)
end)

describe("sample weights and reductions", function()
  local yt, yp = { { 0.5, -1.0, 2.0 }, { 1.5, 0.2, -0.5 } }, { { 0.7, -0.4, 1.0 }, { 1.0, 0.3, -2.5 } }
  local v1, v2 = 0.4666666667, 1.42

  it("weights each sample, then reduces as asked", function()
    local sw = { 0.3, 0.7 }
    local function with(reduction) return losses.MeanSquaredError { reduction = reduction }(yt, yp, sw) end
    near({ (0.3 * v1 + 0.7 * v2) / 2 }, { with(nil):item() }, 1e-6, 0, "sum_over_batch_size")
    near({ (0.3 * v1 + 0.7 * v2) / 2 }, { with("mean"):item() }, 1e-6, 0, "mean")
    near({ 0.3 * v1 + 0.7 * v2 }, { with("sum"):item() }, 1e-6, 0, "sum")
    near({ 0.3 * v1, 0.7 * v2 }, with("none"):tolist(), 1e-6, 0, "none")
    near({ (0.3 * v1 + 0.7 * v2) / 1.0 }, { with("mean_with_sample_weight"):item() }, 1e-6, 0, "mean_with_sample_weight")
  end)

  it("takes weights shaped (N, 1) or as a number", function()
    local a = losses.MeanSquaredError()(yt, yp, { { 0.3 }, { 0.7 } }):item()
    near({ (0.3 * v1 + 0.7 * v2) / 2 }, { a }, 1e-6, 0, "(N,1)")
    near({ 2 * (v1 + v2) / 2 }, { losses.MeanSquaredError()(yt, yp, 2):item() }, 1e-6, 0, "scalar")
  end)

  it("matches the Keras docstrings", function()
    local bt, bp = { { 0, 1 }, { 0, 0 } }, { { -18.6, 0.51 }, { 2.94, -12.8 } }
    local bce = losses.BinaryCrossentropy { from_logits = true }
    near({ 0.8654 }, { bce(bt, bp):item() }, 0, 1e-4, "bce")
    near({ 0.243 }, { bce(bt, bp, { 0.8, 0.2 }):item() }, 0, 1e-3, "bce weighted")
    near({ 1.730 }, { losses.BinaryCrossentropy { from_logits = true, reduction = "sum" }(bt, bp):item() }, 0, 1e-3, "bce sum")
    local ct, cp = { { 0, 1, 0 }, { 0, 0, 1 } }, { { 0.05, 0.95, 0 }, { 0.1, 0.8, 0.1 } }
    near({ 1.177 }, { losses.CategoricalCrossentropy()(ct, cp):item() }, 0, 1e-3, "cce")
    near({ 0.814 }, { losses.CategoricalCrossentropy()(ct, cp, { 0.3, 0.7 }):item() }, 0, 1e-3, "cce weighted")
    near({ 1.177 }, { losses.SparseCategoricalCrossentropy()({ 1, 2 }, cp):item() }, 0, 1e-3, "scce")
    near({ 0.691 }, { losses.BinaryFocalCrossentropy { gamma = 2, from_logits = true }({ 0, 1, 0, 0 }, { -18.6, 0.51, 2.94, -12.8 }):item() },
      0, 1e-3, "focal")
    near({ 0.097 }, { losses.BinaryFocalCrossentropy { apply_class_balancing = true, gamma = 3, from_logits = true }(bt, bp, { 0.8, 0.2 }):item() },
      0, 1e-3, "focal weighted")
    near({ -0, -0.99999994, 0.99999994 }, losses.cosine_similarity({ { 0, 1 }, { 1, 1 }, { 1, 1 } }, { { 1, 0 }, { 1, 1 }, { -1, -1 } }):tolist(),
      0, 1e-6, "cosine")
  end)

  it("rejects an unknown reduction and weights that do not fit", function()
    local ok, err = pcall(losses.MeanSquaredError, { reduction = "average" })
    assert.is_false(ok)
    assert.matches('MeanSquaredError: invalid reduction average', err)
    ok, err = pcall(function() return losses.MeanSquaredError()(yt, yp, { 1, 2, 3 }) end)
    assert.is_false(ok)
    assert.matches("loss: sample_weight of shape %(3,%) does not fit losses of shape %(2,%)", err)
  end)
end)

describe("loss functions, names and custom losses", function()
  it("offers every loss as a per-sample function", function()
    local yt, yp = { { 0.5, -1.0, 2.0 }, { 1.5, 0.2, -0.5 } }, { { 0.7, -0.4, 1.0 }, { 1.0, 0.3, -2.5 } }
    near({ 0.4666666667, 1.42 }, losses.mse(yt, yp):tolist(), 1e-6, 0, "mse")
    near({ 0.4666666667, 1.42 }, losses.mean_squared_error(yt, yp):tolist(), 1e-6, 0, "mean_squared_error")
    near({ 0.6, 0.8666666667 }, losses.mae(yt, yp):tolist(), 1e-6, 0, "mae")
    near({ 0.2333333333, 0.5433333333 }, losses.huber(yt, yp):tolist(), 1e-6, 0, "huber")
    near({ 0.19, 0.335 }, losses.huber(yt, yp, 0.5):tolist(), 1e-6, 0, "huber delta")
    near({ 0.9162907319, 0.7135581778 }, losses.binary_crossentropy({ { 0, 1 }, { 0, 0 } }, { { 0.6, 0.4 }, { 0.4, 0.6 } }):tolist(), 1e-6, 0, "bce")
  end)

  it("finds losses by name", function()
    for name, cls in pairs { mse = "MeanSquaredError", mean_absolute_error = "MeanAbsoluteError", mape = "MeanAbsolutePercentageError",
      msle = "MeanSquaredLogarithmicError", huber = "Huber", log_cosh = "LogCosh", binary_crossentropy = "BinaryCrossentropy",
      binary_focal_crossentropy = "BinaryFocalCrossentropy", categorical_crossentropy = "CategoricalCrossentropy",
      sparse_categorical_crossentropy = "SparseCategoricalCrossentropy", kld = "KLDivergence", poisson = "Poisson",
      cosine_similarity = "CosineSimilarity", hinge = "Hinge", squared_hinge = "SquaredHinge", categorical_hinge = "CategoricalHinge",
      SparseCategoricalCrossentropy = "SparseCategoricalCrossentropy" } do
      assert.is_true(klua.class.is_instance(losses.get(name), losses[cls]), name)
    end
    local ok, err = pcall(losses.get, "mean_sqared_error")
    assert.is_false(ok)
    assert.matches("losses.get: unknown loss 'mean_sqared_error'", err)
    local cfg = losses.serialize(losses.CategoricalCrossentropy { from_logits = true, label_smoothing = 0.1 })
    local back = losses.get(cfg)
    assert.is_true(back.from_logits)
    assert.are.equal(0.1, back.label_smoothing)
  end)

  it("takes a plain Lua function of (y_true, y_pred) as a loss", function()
    local function custom_mae(y_true, y_pred) return ops.mean(ops.abs(y_true - y_pred)) end
    assert.are.equal(custom_mae, losses.get(custom_mae))
    local w = klua.Variable({ { 0.5 }, { -0.5 } })
    local x, y = klua.tensor { { 1, 2 } }, klua.tensor { { 1 } }
    local tape = klua.GradientTape()
    local loss = tape:record(function() return losses.get(custom_mae)(y, ops.matmul(x, w)) end)
    near({ 1.5 }, { loss:item() }, 1e-7, 0, "custom loss")
    near({ -1, -2 }, tape:gradient(loss, { w })[1]:tolist(), 1e-7, 0, "custom gradient")
  end)

  it("releases every tensor it makes, forward and backward", function()
    local w = klua.Variable(klua.random.normal { 4, 3 })
    local x = klua.random.normal { 5, 4 }
    local onehot = { { 0, 1, 0 }, { 1, 0, 0 }, { 0, 0, 1 }, { 0, 1, 0 }, { 1, 0, 0 } }
    local fns = {
      function(h) return losses.SparseCategoricalCrossentropy { from_logits = true, ignore_class = 0 }({ 0, 1, 2, 1, 2 }, h) end,
      function(h) return losses.CategoricalCrossentropy()(onehot, ops.softmax(h), { 1, 2, 3, 4, 5 }) end,
      function(h) return losses.BinaryFocalCrossentropy { from_logits = true }(onehot, h) end,
      function(h) return losses.CosineSimilarity()(h, h * 2 + 1) + losses.CategoricalHinge()(onehot, h) end,
      function(h) return losses.KLDivergence()(ops.softmax(h), ops.softmax(h * 0.3)) + losses.Huber()(h, h * 0.5) end,
    }
    local function step()
      for _, f in ipairs(fns) do
        local tape = klua.GradientTape()
        local loss = tape:record(function() return f(ops.matmul(x, w)) end)
        tape:gradient(loss, { w })
      end
    end
    helpers.leaves_no_tensors(step, 20)
  end)

  it("lets a Loss subclass define call", function()
    local Scaled = losses.Loss:extend("ScaledMSE")
    function Scaled:call(y_true, y_pred) return losses.mse(y_true, y_pred) * 10 end
    near({ 5 }, { Scaled()({ { 1 } }, { { 0.5 } }, { 2 }):item() }, 1e-7, 0, "subclass")
  end)

  it("raises named errors with the shapes", function()
    local ok, err = pcall(function() return losses.MeanSquaredError()({ { 1, 2, 3 } }, { { 1, 2 } }) end)
    assert.is_false(ok)
    assert.matches("mean_squared_error: y_true %(1,3%) and y_pred %(1,2%) must have the same shape", err)
    ok, err = pcall(function() return losses.SparseCategoricalCrossentropy()({ 0, 3 }, { { 0.5, 0.5, 0 }, { 0.2, 0.3, 0.5 } }) end)
    assert.is_false(ok)
    assert.matches("sparse_categorical_crossentropy: label 3 %(sample 2%) is not a class index in %[0, 3%)", err)
    ok, err = pcall(function() return losses.SparseCategoricalCrossentropy()({ 0, 1, 2 }, { { 0.5, 0.5 }, { 0.2, 0.8 } }) end)
    assert.is_false(ok)
    assert.matches("sparse_categorical_crossentropy: labels %(3,%) do not match y_pred %(2,2%)", err)
    ok, err = pcall(losses.BinaryCrossentropy, { from_logit = true })
    assert.is_false(ok)
    assert.matches("BinaryCrossentropy: unknown argument `from_logit`", err)
  end)
end)
