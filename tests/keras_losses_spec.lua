-- keras_losses_spec.lua — the "Keras fidelity" losses: the axis argument of
-- the crossentropies and CosineSimilarity, and CategoricalFocalCrossentropy,
-- Dice, Tversky, Circle, CategoricalGeneralizedCrossEntropy and CTC. Values
-- are the expected numbers of keras/src/losses/losses_test.py (test class and
-- name cited at each case; Keras's axes are 0-based, klua's 1-based, so
-- Keras's axis=1 is axis = 2 here); gradients are checked against central
-- differences.
local klua = require("klua")
local helpers = require("helpers")
local losses, ops = klua.losses, klua.ops

local function item(x) return x:item() end

-- near(actual, expected, atol): every element within atol (and 1e-5 relative).
local function near(actual, expected, atol, what)
  helpers.near(actual, expected, { atol = atol or 1e-6, rtol = 1e-5 }, what)
end

-- Central differences (float32 losses, so a step of 1e-3) of the scalar
-- f(p) with respect to every element of p, against the tape's gradient.
local function check_gradient(f, p, what, tol)
  p = klua.tensor(p):clone()
  local tape = klua.GradientTape()
  tape:watch(p)
  local loss = tape:record(function() return f(p) end)
  local g = tape:gradient(loss, p)
  local numeric = {}
  for i = 0, tonumber(p.count) - 1 do
    local x0 = p.data[i]
    p.data[i] = x0 + 1e-3
    local up = f(p):item()
    p.data[i] = x0 - 1e-3
    local down = f(p):item()
    p.data[i] = x0
    numeric[i + 1] = (up - down) / 2e-3
  end
  assert(g ~= nil, what .. ": no gradient")
  helpers.near(ops.reshape(g, { -1 }):tolist(), numeric, tol or { rtol = 1e-2, atol = 2e-3 }, what)
  return g
end

-- Keras's run_class_serialization_test, in short: the config rebuilds an
-- equal object, directly and through losses.serialize / losses.get.
local function round_trips(obj)
  local cls = getmetatable(obj)
  local cfg = obj:get_config()
  assert.are.same(cfg, cls(cfg):get_config())
  local back = losses.get(losses.serialize(obj))
  assert.are.equal(cls, getmetatable(back))
  assert.are.same(cfg, back:get_config())
  return cfg
end

-- The reference for cosine similarity along axis (0-based), as Keras's
-- CosineSimilarityTest computes it (l2_norm with max(sum of squares, 1e-12)).
local function cosine_reference(t, p, axis)
  local function l2(x) return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis, true), 1e-12)) end
  return ops.sum(l2(klua.tensor(t)) * l2(klua.tensor(p)), axis)
end

describe("the axis argument of the crossentropies and CosineSimilarity", function()
  local cos_t, cos_p = { { 1, 9, 2 }, { -5, -2, 6 } }, { { 4, 8, 12 }, { 8, 1, 3 } }

  it("accepts the last axis as 2 or -1 and any other axis, 1-based (CosineSimilarityTest.test_axis)", function()
    local per_row = cosine_reference(cos_t, cos_p, 2):tolist()
    local expected = -(per_row[1] + per_row[2]) / 2
    near(item(losses.CosineSimilarity { axis = 2 }(cos_t, cos_p)), expected, 1e-6, "axis 2")
    near(item(losses.CosineSimilarity { axis = -1 }(cos_t, cos_p)), expected, 1e-6, "axis -1")
    near(item(losses.CosineSimilarity()(cos_t, cos_p)), expected, 1e-6, "default")
    -- along the first axis: one value per column
    local per_col = cosine_reference(cos_t, cos_p, 1):tolist()
    near(losses.CosineSimilarity { axis = 1, reduction = "none" }(cos_t, cos_p):tolist(),
      { -per_col[1], -per_col[2], -per_col[3] }, 1e-6, "axis 1")
    near(losses.cosine_similarity(cos_t, cos_p, 1):tolist(), { -per_col[1], -per_col[2], -per_col[3] }, 1e-6, "function, axis 1")
    near(losses.cosine_similarity(cos_t, cos_p, -2):tolist(), { -per_col[1], -per_col[2], -per_col[3] }, 1e-6, "function, axis -2")
  end)

  it("weighs CosineSimilarity's samples and timesteps as Keras (CosineSimilarityTest)", function()
    local per_row = cosine_reference(cos_t, cos_p, 2):tolist()
    local cos = losses.CosineSimilarity()
    -- test_scalar_weighted, test_sample_weighted, test_zero_weighted
    near(item(cos(cos_t, cos_p, 2.3)), -(per_row[1] + per_row[2]) * 2.3 / 2, 1e-6, "scalar weight")
    near(item(cos(cos_t, cos_p, { 1.2, 3.4 })), -(per_row[1] * 1.2 + per_row[2] * 3.4) / 2, 1e-6, "sample weights")
    near(item(cos(cos_t, cos_p, 0)), 0, 0, "zero weight")
    -- test_timestep_weighted: (2, 3, 1) inputs, so each "vector" is one number
    local t3, p3 = ops.reshape(klua.tensor(cos_t), { 2, 3, 1 }), ops.reshape(klua.tensor(cos_p), { 2, 3, 1 })
    local sw = { { 3, 6, 5 }, { 0, 4, 2 } }
    local per = cosine_reference(t3, p3, 3):totable()
    local sum = 0
    for i, w in ipairs { 3, 6, 5, 0, 4, 2 } do sum = sum + per[math.floor((i - 1) / 3) + 1][(i - 1) % 3 + 1] * w end
    near(item(cos(t3, p3, sw)), -sum / 6, 1e-6, "timestep weights")
  end)

  it("keeps the axis in CosineSimilarity's config (CosineSimilarityTest.test_config)", function()
    local obj = losses.CosineSimilarity { axis = 2, reduction = "sum", name = "cosine_loss" }
    assert.are.same({ name = "cosine_loss", reduction = "sum", axis = 2 }, round_trips(obj))
  end)

  it("takes the class axis of CategoricalCrossentropy (CategoricalCrossentropyTest.test_label_smoothing_with_axis)", function()
    -- (batch, classes, spatial) with Keras's axis=1
    local y_true = { { { 1, 0 }, { 0, 1 }, { 0, 0 } }, { { 0, 1 }, { 1, 0 }, { 0, 0 } } }
    local y_pred = { { { 0.8, 0.1 }, { 0.1, 0.8 }, { 0.1, 0.1 } }, { { 0.1, 0.8 }, { 0.8, 0.1 }, { 0.1, 0.1 } } }
    local smoothed = klua.tensor(y_true) * 0.9 + 0.1 / 3
    local expected = ops.mean(-ops.sum(smoothed * ops.log(klua.tensor(y_pred)), 2)):item()
    near(item(losses.CategoricalCrossentropy { label_smoothing = 0.1, axis = 2 }(y_true, y_pred)), expected, 1e-5, "cce axis 2")
    near(item(ops.mean(losses.categorical_crossentropy(y_true, y_pred, false, 0.1, -2))), expected, 1e-5, "function, axis -2")
  end)

  it("takes the class axis of CategoricalFocalCrossentropy (CategoricalFocalCrossentropyTest.test_label_smoothing_with_axis)", function()
    local y_true = { { { 1, 0 }, { 0, 1 }, { 0, 0 } }, { { 0, 1 }, { 1, 0 }, { 0, 0 } } }
    local y_pred = { { { 0.8, 0.1 }, { 0.1, 0.8 }, { 0.1, 0.1 } }, { { 0.1, 0.8 }, { 0.8, 0.1 }, { 0.1, 0.1 } } }
    local smoothed = klua.tensor(y_true) * 0.9 + 0.1 / 3
    local p = klua.tensor(y_pred)
    local focal = ops.square(1 - p) * 0.25 * -(smoothed * ops.log(p))
    local expected = ops.mean(ops.sum(focal, 2)):item()
    near(item(losses.CategoricalFocalCrossentropy { label_smoothing = 0.1, axis = 2 }(y_true, y_pred)), expected, 1e-5, "cfce axis 2")
  end)

  -- SparseCategoricalCrossentropyTest.test_binary_segmentation_different_axis and
  -- test_multi_class_segmentation_different_axis (the torch backend's values)
  it("takes the class axis of SparseCategoricalCrossentropy, labels without it", function()
    local y_true = { { 0, 1, 1, 0 }, { 1, 0, 1, 0 }, { 0, 0, 1, 1 }, { 1, 1, 0, 1 } }
    local exact = ops.one_hot(klua.tensor(y_true), 2)
    local y_pred = klua.tensor {
      { { 1.0, 0.0 }, { 0.0, 1.0 }, { 0.0, 1.0 }, { 0.2, 0.8 } },
      { { 0.0, 1.0 }, { 1.0, 0.0 }, { 0.0, 1.0 }, { 1.0, 0.0 } },
      { { 1.0, 0.0 }, { 1.0, 0.0 }, { 0.0, 1.0 }, { 0.0, 1.0 } },
      { { 0.0, 1.0 }, { 0.0, 1.0 }, { 1.0, 0.0 }, { 0.6, 0.4 } },
    }
    local classes_first = function(x) return ops.transpose(x, { 3, 1, 2 }) end
    near(item(losses.SparseCategoricalCrossentropy { axis = 1 }(y_true, classes_first(exact))), 0, 1e-6, "exact")
    local expected = (-math.log(0.2) - math.log(0.4)) / 16
    near(item(losses.SparseCategoricalCrossentropy { axis = 1 }(y_true, classes_first(y_pred))), expected, 1e-6, "axis 1")
    -- three copies, classes on the second axis
    local labels3 = ops.stack({ y_true, y_true, y_true }, 1)
    local pred3 = ops.stack({ classes_first(y_pred), classes_first(y_pred), classes_first(y_pred) }, 1)
    near(item(losses.SparseCategoricalCrossentropy { axis = 2 }(labels3, pred3)), expected, 1e-6, "axis 2")
    -- labels with a 1 where the class axis is
    near(item(losses.SparseCategoricalCrossentropy { axis = 2 }(ops.expand_dims(labels3, 2), pred3)), expected, 1e-6, "labels (3, 1, 4, 4)")

    local mc_true = { { 0, 1, 2, 0 }, { 1, 0, 1, 0 }, { 0, 0, 1, 1 }, { 1, 1, 0, 1 } }
    local mc_pred = klua.tensor {
      { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 }, { 0.2, 0, 0.8 } },
      { { 0.7, 0.3, 0 }, { 1, 0, 0 }, { 0, 1, 0 }, { 1, 0, 0 } },
      { { 1, 0, 0 }, { 1, 0, 0 }, { 0, 1, 0 }, { 0, 1, 0 } },
      { { 0, 1, 0 }, { 0, 1, 0 }, { 0.5, 0.5, 0 }, { 0, 1, 0 } },
    }
    near(item(losses.SparseCategoricalCrossentropy { axis = 1 }(mc_true, classes_first(mc_pred))),
      (-math.log(0.2) - math.log(0.3) - math.log(0.5)) / 16, 1e-6, "multi-class, axis 1")
  end)

  it("keeps SparseCategoricalCrossentropy's axis in its config (SparseCategoricalCrossentropyTest.test_config)", function()
    local cfg = round_trips(losses.SparseCategoricalCrossentropy { from_logits = true, ignore_class = 3, axis = 1, name = "scce" })
    assert.is_true(cfg.from_logits)
    assert.are.equal(3, cfg.ignore_class)
    assert.are.equal(1, cfg.axis)
    round_trips(losses.SparseCategoricalCrossentropy { name = "scce" })
  end)

  it("averages BinaryCrossentropy and BinaryFocalCrossentropy over the axis asked", function()
    local t = { { 1, 0, 1 }, { 0, 1, 1 } }
    local p = { { 0.9, 0.2, 0.6 }, { 0.3, 0.7, 0.4 } }
    local tt, pt = ops.transpose(klua.tensor(t)), ops.transpose(klua.tensor(p))
    for _, cls in ipairs { "BinaryCrossentropy", "BinaryFocalCrossentropy" } do
      local by_column = losses[cls] { axis = 1, reduction = "none" }(t, p)
      near(by_column:tolist(), losses[cls] { reduction = "none" }(tt, pt):tolist(), 1e-7, cls .. " axis 1")
      near(losses[cls] { axis = -2, reduction = "none" }(t, p):tolist(), by_column:tolist(), 0, cls .. " axis -2")
      round_trips(losses[cls] { axis = 1, name = "b" })
    end
    -- BinaryCrossentropyTest.test_config / CategoricalCrossentropyTest.test_config
    round_trips(losses.BinaryCrossentropy { name = "bce", axis = -1 })
    round_trips(losses.CategoricalCrossentropy { name = "cce", axis = -1 })
    -- the first column by hand: -(log 0.9 + log 0.7) / 2
    near(losses.binary_crossentropy(t, p, false, 0, 1):tolist()[1], -(math.log(0.9) + math.log(0.7)) / 2, 1e-6, "function")
  end)

  it("rejects an axis out of range or 0, naming the loss", function()
    helpers.raises("cosine_similarity: axis 3 is out of range for a tensor of rank 2", function()
      return losses.CosineSimilarity { axis = 3 }(cos_t, cos_p)
    end)
    helpers.raises("categorical_crossentropy: axis 0 is invalid: axes are 1%-based", function()
      return losses.CategoricalCrossentropy { axis = 0 }(cos_t, cos_p)
    end)
    helpers.raises("sparse_categorical_crossentropy: axis must be an integer, got true", function()
      return losses.sparse_categorical_crossentropy({ 0, 1 }, cos_p, false, nil, true)
    end)
  end)

  it("has the right gradient along a non-last axis", function()
    local t = klua.tensor { { { 0.2, 0.5 }, { 0.3, 0.1 }, { 0.5, 0.4 } }, { { 0.6, 0.0 }, { 0.1, 0.3 }, { 0.3, 0.7 } } }
    local x = { { { 0.3, -1.2 }, { 0.8, 0.4 }, { -0.5, 1.1 } }, { { 1.4, -0.2 }, { -0.7, 0.9 }, { 0.2, -0.6 } } }
    local probs = ops.softmax(klua.tensor(x), 2)
    local sig = ops.sigmoid(klua.tensor(x))
    local labels = { { 2, 0 }, { 1, 2 } }
    check_gradient(function(p) return losses.CosineSimilarity { axis = 2 }(t, p) end, x, "CosineSimilarity axis 2")
    check_gradient(function(p) return losses.CosineSimilarity { axis = 1 }(t, p) end, x, "CosineSimilarity axis 1")
    check_gradient(function(p) return losses.CategoricalCrossentropy { axis = 2, from_logits = true }(t, p) end, x, "CategoricalCrossentropy logits axis 2")
    check_gradient(function(p) return losses.CategoricalCrossentropy { axis = 2, label_smoothing = 0.1 }(t, p) end, probs, "CategoricalCrossentropy axis 2")
    check_gradient(function(p) return losses.CategoricalFocalCrossentropy { axis = 2 }(t, p) end, probs, "CategoricalFocalCrossentropy axis 2")
    check_gradient(function(p) return losses.CategoricalFocalCrossentropy { axis = 2, from_logits = true, alpha = { 0.2, 0.3, 0.5 } }(t, p) end, x,
      "CategoricalFocalCrossentropy logits, per-class alpha")
    check_gradient(function(p) return losses.SparseCategoricalCrossentropy { axis = 2, from_logits = true }(labels, p) end, x, "SparseCategoricalCrossentropy axis 2")
    check_gradient(function(p) return losses.BinaryCrossentropy { axis = 1 }(t, p) end, sig, "BinaryCrossentropy axis 1")
    check_gradient(function(p) return losses.BinaryFocalCrossentropy { axis = 2, from_logits = true }(t, p) end, x, "BinaryFocalCrossentropy axis 2")
  end)
end)

describe("CategoricalFocalCrossentropy (CategoricalFocalCrossentropyTest)", function()
  local y_true = { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } }
  local y_pred = { { 0.9, 0.05, 0.05 }, { 0.5, 0.89, 0.6 }, { 0.05, 0.01, 0.94 } }
  local logits = { { 8, 1, 1 }, { 0, 9, 1 }, { 2, 3, 5 } }
  local CFCE = losses.CategoricalFocalCrossentropy

  it("is 0 when every prediction is right (test_all_correct_unweighted)", function()
    near(item(CFCE { alpha = 0.25, gamma = 2 }(y_true, y_true)), 0, 1e-6, "probabilities")
    near(item(CFCE { from_logits = true }(y_true, { { 10, 0, 0 }, { 0, 10, 0 }, { 0, 0, 10 } })), 0, 1e-6, "logits")
  end)

  it("gives Keras's values, weighted and not (test_unweighted, test_scalar_weighted, test_sample_weighted, test_no_reduction)", function()
    near(item(CFCE()(y_true, y_pred)), 0.02059, 1e-5, "unweighted")
    near(item(CFCE { from_logits = true }(y_true, logits)), 0.000345, 1e-6, "unweighted logits")
    near(item(CFCE()(y_true, y_pred, 2.3)), 0.047368, 1e-6, "scalar weight")
    near(item(CFCE { from_logits = true }(y_true, logits, 2.3)), 0.000794, 1e-6, "scalar weight, logits")
    near(item(CFCE()(y_true, y_pred, { { 1.2 }, { 3.4 }, { 5.6 } })), 0.06987, 1e-5, "sample weights")
    near(item(CFCE { from_logits = true }(y_true, logits, { { 1.2 }, { 3.4 }, { 5.6 } })), 0.001933, 1e-6, "sample weights, logits")
    near(CFCE { from_logits = true, reduction = "none" }(y_true, logits):tolist(), { 1.5096224e-09, 2.4136547e-11, 1.0360638e-03 }, 1e-9, "none")
  end)

  it("smooths labels (test_label_smoothing) and matches the docstring", function()
    near(item(CFCE { from_logits = true, label_smoothing = 0.1 }({ { 1, 0, 0 } }, { { 4.9, -0.5, 2.05 } })), 0.06685, 1e-5, "label smoothing")
    local t, p = { { 0, 1, 0 }, { 0, 0, 1 } }, { { 0.05, 0.95, 0 }, { 0.1, 0.8, 0.1 } }
    near(item(CFCE()(t, p)), 0.23315276, 1e-6, "docstring")
    near(item(CFCE()(t, p, { 0.3, 0.7 })), 0.1632, 1e-4, "docstring, weighted")
    near(item(CFCE { reduction = "sum" }(t, p)), 0.46631, 1e-5, "docstring, sum")
    near(CFCE { reduction = "none" }(t, p):tolist(), { 3.2058331e-05, 4.6627346e-01 }, 1e-7, "docstring, none")
    -- keras.losses.categorical_focal_crossentropy's docstring
    near(losses.categorical_focal_crossentropy(t, { { 0.05, 0.9, 0.05 }, { 0.1, 0.85, 0.05 } }):tolist(), { 2.63401289e-04, 6.75912094e-01 }, 1e-7, "function")
  end)

  it("round-trips its config (test_config) and differentiates", function()
    local cfg = round_trips(CFCE { name = "cfce" })
    assert.are.same({ name = "cfce", reduction = "sum_over_batch_size", alpha = 0.25, gamma = 2.0, from_logits = false, label_smoothing = 0.0, axis = -1 }, cfg)
    round_trips(CFCE { alpha = { 0.2, 0.3, 0.5 }, gamma = 1.5, from_logits = true })
    check_gradient(function(p) return CFCE { from_logits = true, label_smoothing = 0.1 }(y_true, p) end, { { 1.5, -0.3, 0.2 }, { 0.1, 0.8, -1.1 }, { -0.4, 0.6, 0.9 } }, "logits")
    check_gradient(function(p) return CFCE { gamma = 3 }(y_true, p, { 1, 2, 0.5 }) end, y_pred, "probabilities, weighted")
  end)
end)

describe("Dice and Tversky (DiceTest, TverskyTest)", function()
  local t2, p2 = { { 1, 2 }, { 1, 2 } }, { { 4, 1 }, { 6, 1 } }
  local seg_t = { { 1, 0, 1, 0 }, { 0, 1, 0, 1 }, { 1, 0, 1, 0 }, { 0, 1, 0, 1 } }
  local seg_p = { { 0, 1, 0, 1 }, { 1, 0, 1, 1 }, { 0, 1, 0, 1 }, { 1, 0, 1, 1 } }
  local ax_t = { { { { 1 }, { 1 } }, { { 0 }, { 0 } } }, { { { 1 }, { 1 } }, { { 0 }, { 0 } } } }
  local ax_p = { { { { 0 }, { 1 } }, { { 0 }, { 1 } } }, { { { 0.4 }, { 0 } }, { { 0 }, { 0.9 } } } }

  it("gives Keras's Dice values over all axes and per sample (test_correctness, test_binary_segmentation[_with_axis])", function()
    near(item(losses.Dice()(t2, p2)), -0.55555546, 1e-6, "correctness")
    near(item(losses.Dice()(seg_t, seg_p)), 0.77777773, 1e-6, "binary segmentation")
    local per = losses.Dice { axis = { 2, 3, 4 }, reduction = "none" }(ax_t, ax_p)
    near(per:tolist(), { 0.5, 0.75757575 }, 1e-6, "axis (2, 3, 4)")
    near(item(losses.Dice()(ax_t, ax_p)), 0.6164384, 1e-6, "docstring, all axes")
    near(losses.dice(ax_t, ax_p, { 2, 3, 4 }):tolist(), { 0.5, 0.75757575 }, 1e-6, "function")
    near(item(losses.Dice { axis = { 2, 3, 4 } }(ax_t, ax_p, { 1, 3 })), (0.5 + 3 * 0.75757575) / 2, 1e-6, "sample weights")
  end)

  it("gives Keras's Tversky values (test_correctness[_custom_coefficients], test_binary_segmentation*)", function()
    near(item(losses.Tversky()(t2, p2)), -0.55555558, 1e-6, "correctness")
    near(item(losses.Tversky { alpha = 0.2, beta = 0.8 }(t2, p2)), -0.94444442, 1e-6, "custom coefficients")
    near(item(losses.Tversky()(seg_t, seg_p)), 0.77777779, 1e-6, "binary segmentation")
    near(losses.Tversky { axis = { 2, 3, 4 }, reduction = "none" }(ax_t, ax_p):tolist(), { 0.5, 0.75757575 }, 1e-6, "with axis")
    near(item(losses.Tversky { alpha = 0.2, beta = 0.8 }(seg_t, seg_p)), 0.76190472, 1e-6, "custom coefficients, segmentation")
    near(losses.Tversky { alpha = 0.2, beta = 0.8, axis = { 2, 3, 4 }, reduction = "none" }(ax_t, ax_p):tolist(), { 0.5, 0.78494626 }, 1e-6,
      "custom coefficients with axis")
    near(losses.tversky(ax_t, ax_p, 0.2, 0.8, { -3, -2, -1 }):tolist(), { 0.5, 0.78494626 }, 1e-6, "function, negative axes")
  end)

  it("round-trip their configs (test_config) and differentiate", function()
    assert.are.same({ name = "mydice", reduction = "sum_over_batch_size" }, round_trips(losses.Dice { name = "mydice" }))
    assert.are.same({ 2, 3, 4 }, round_trips(losses.Dice { axis = { 2, 3, 4 } }).axis)
    assert.are.same({ name = "mytversky", reduction = "sum_over_batch_size", alpha = 0.5, beta = 0.5 }, round_trips(losses.Tversky { name = "mytversky" }))
    round_trips(losses.Tversky { alpha = 0.2, beta = 0.8, axis = 2 })
    local soft = { { { 0.3 }, { 0.8 } }, { { 0.6 }, { 0.2 } } }
    check_gradient(function(p) return losses.Dice()(ax_t[1], p) end, soft, "Dice")
    check_gradient(function(p) return losses.Tversky { alpha = 0.2, beta = 0.8, axis = { 2, 3 } }(ax_t[1], p) end, soft, "Tversky")
  end)
end)

describe("Circle (CircleTest)", function()
  local y_true = { 1, 1, 2, 2, 3 }
  local y_pred = {
    { 0.70014004, -0.42008403, 0.14002801, 0.56011203 },
    { 0.17609018, 0.70436073, -0.52827054, 0.44022545 },
    { -0.34050261, 0.25537696, -0.68100522, 0.59587957 },
    { 0.32163376, -0.75047877, 0.53605627, -0.21442251 },
    { 0.51261459, -0.34174306, 0.17087153, 0.76892189 },
  }
  local ref_labels = { 1, 1, 2, 2, 3, 4 }
  local ref_embeddings = {
    { 0.40824829, -0.54433105, 0.27216553, 0.68041382 },
    { 0.76376261, 0.10910895, -0.54554473, 0.32732684 },
    { -0.74420841, 0.24806947, 0.49613894, -0.3721042 },
    { 0.52981294, -0.13245324, 0.79471941, -0.26490647 },
    { 0.54554473, -0.32732684, 0.10910895, 0.76376261 },
    { -0.27216553, 0.68041382, 0.40824829, -0.54433105 },
  }

  it("gives Keras's values (test_correctness)", function()
    near(item(losses.Circle { gamma = 80, margin = 0.4 }(y_true, y_pred)), 188.3883, 1e-3, "gamma 80")
    near(item(losses.Circle { gamma = 256, margin = 0.25 }(y_true, y_pred)), 652.7617, 1e-3, "gamma 256")
    local per = losses.circle(y_true, y_pred, { ref_labels = ref_labels, ref_embeddings = ref_embeddings, gamma = 80, margin = 0.4, remove_diagonal = false })
    near(per:tolist(), { 61.5844, 94.3465, 276.9344, 90.9873, 48.8963 }, 1e-3, "against references")
  end)

  it("leaves anchors without pairs out, weighted and reduced as Keras (test_correctness_weighted, test_no_reduction, test_sum_reduction, test_mean_with_sample_weight_reduction)", function()
    local sw = { 2, 2, 1, 1, 0.5 }
    near(item(losses.Circle()(y_true, y_pred, sw)), 244.91918, 1e-3, "weighted")
    near(losses.Circle { reduction = "none" }(ref_labels, ref_embeddings):tolist(), { 82.9116, 36.7942, 92.4590, 52.6798, 0, 0 }, 1e-3, "none")
    near(item(losses.Circle { reduction = "sum" }(ref_labels, ref_embeddings)), 264.845, 1e-3, "sum")
    near(item(losses.Circle { reduction = "mean_with_sample_weight" }(y_true, y_pred, sw)), 163.27948, 1e-3, "mean_with_sample_weight")
    -- no anchor has a positive pair: 0, not NaN
    near(item(losses.Circle()({ 1, 2, 3 }, { { 1, 0 }, { 0, 1 }, { 0.6, 0.8 } })), 0, 0, "no pairs")
  end)

  it("round-trips its config (test_config) and differentiates", function()
    assert.are.same({ name = "mycircle", reduction = "sum_over_batch_size", gamma = 80.0, margin = 0.4, remove_diagonal = true },
      round_trips(losses.Circle { name = "mycircle", gamma = 80.0, margin = 0.4 }))
    local emb = ops.divide(klua.tensor(y_pred), 1) -- unit rows
    check_gradient(function(p) return losses.Circle { gamma = 2, margin = 0.25 }(y_true, p) end, emb, "Circle")
  end)

  it("says what it expected", function()
    helpers.raises("circle: expected one label per embedding, got labels %(4,%) for y_pred %(5,4%)", function()
      return losses.circle({ 1, 2, 3, 4 }, y_pred)
    end)
  end)
end)

describe("CategoricalGeneralizedCrossEntropy (CategoricalGeneralizedCrossEntropyTest)", function()
  local CGCE = losses.CategoricalGeneralizedCrossEntropy
  local function gce(p, q) return (1 - p ^ q) / q end

  it("gives Keras's values for two and more classes (test_basic_correctness_for_binary, _for_multi_class)", function()
    local y_true = { 0, 1, 0, 1 }
    local binary = { { 0.7, 0.3 }, { 0.2, 0.8 }, { 0.6, 0.4 }, { 0.4, 0.6 } }
    near(item(CGCE()(y_true, binary)), (gce(0.7, 0.5) + gce(0.8, 0.5) + 2 * gce(0.6, 0.5)) / 4, 1e-6, "binary")
    near(item(CGCE { q = 0.8 }(y_true, binary)), (gce(0.7, 0.8) + gce(0.8, 0.8) + 2 * gce(0.6, 0.8)) / 4, 1e-6, "binary, q 0.8")
    local multi = { { 0.7, 0.3, 0.0 }, { 0.2, 0.2, 0.6 }, { 0.6, 0.4, 0.0 }, { 0.2, 0.2, 0.6 } }
    near(item(CGCE()(y_true, multi)), (gce(0.7, 0.5) + 2 * gce(0.2, 0.5) + gce(0.6, 0.5)) / 4, 1e-6, "multi-class")
    near(item(CGCE { q = 0.8 }(y_true, multi)), (gce(0.7, 0.8) + 2 * gce(0.2, 0.8) + gce(0.6, 0.8)) / 4, 1e-6, "multi-class, q 0.8")
    near(losses.categorical_generalized_cross_entropy({ { 0 }, { 1 } }, { { 0.7, 0.3 }, { 0.2, 0.8 } }, 0.5):tolist(), { gce(0.7, 0.5), gce(0.8, 0.5) }, 1e-6,
      "function, labels (N, 1)")
  end)

  it("averages over every pixel of a segmentation (test_binary_segmentation, test_multi_class_segmentation)", function()
    local y_true = { { 0, 1, 1, 0 }, { 1, 0, 1, 0 }, { 0, 0, 1, 1 }, { 1, 1, 0, 1 } }
    near(item(CGCE { q = 0.5 }(y_true, ops.one_hot(klua.tensor(y_true), 2))), 0, 1e-7, "exact")
    local y_pred = {
      { { 1, 0 }, { 0, 1 }, { 0, 1 }, { 0.2, 0.8 } }, { { 0, 1 }, { 1, 0 }, { 0, 1 }, { 1, 0 } },
      { { 1, 0 }, { 1, 0 }, { 0, 1 }, { 0, 1 } }, { { 0, 1 }, { 0, 1 }, { 1, 0 }, { 0.6, 0.4 } },
    }
    near(item(CGCE { q = 0.5 }(y_true, y_pred)), (gce(0.2, 0.5) + gce(0.4, 0.5)) / 16, 1e-6, "binary segmentation")
    local mc_true = { { 0, 1, 2, 0 }, { 1, 0, 1, 0 }, { 0, 0, 1, 1 }, { 1, 1, 0, 1 } }
    local mc_pred = {
      { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 }, { 0.2, 0, 0.8 } }, { { 1, 0, 0 }, { 1, 0, 0 }, { 0, 1, 0 }, { 1, 0, 0 } },
      { { 1, 0, 0 }, { 1, 0, 0 }, { 0, 1, 0 }, { 0, 1, 0 } }, { { 0, 1, 0 }, { 0, 1, 0 }, { 0.5, 0.5, 0 }, { 0, 1, 0 } },
    }
    near(item(CGCE { q = 0.5 }(mc_true, mc_pred)), (gce(0.2, 0.5) + gce(0, 0.5) + gce(0.5, 0.5)) / 16, 1e-6, "multi-class segmentation")
  end)

  it("round-trips its config (test_config), checks q and differentiates", function()
    assert.are.same({ name = "gce", reduction = "sum_over_batch_size", q = 0.5 }, round_trips(CGCE { name = "gce" }))
    assert.are.equal(0.1, round_trips(CGCE { q = 0.1, name = "gce" }).q)
    helpers.raises("CategoricalGeneralizedCrossEntropy: q must be in the interval %(0, 1%)%. Received: q=1", CGCE, { q = 1 })
    check_gradient(function(p) return CGCE { q = 0.7 }({ 0, 2, 1 }, p, { 1, 0.5, 2 }) end, { { 0.5, 0.2, 0.3 }, { 0.1, 0.3, 0.6 }, { 0.3, 0.4, 0.3 } }, "CGCE")
  end)
end)

describe("CTC (CTCTest)", function()
  local logits = (klua.arange(24):reshape { 2, 4, 3 } - 12) / 100

  it("gives Keras's value for 0-padded labels (test_correctness)", function()
    near(item(losses.CTC()({ { 1, 2, 1, 0 }, { 1, 2, 0, 2 } }, logits)), 2.448645, 1e-6, "CTC")
    near(item(losses.get("ctc")({ { 1, 2, 1, 0 }, { 1, 2, 0, 2 } }, logits)), 2.448645, 1e-6, "by name")
  end)

  -- -log of the summed probability of every path of T steps that collapses
  -- (merge repeats, drop blanks) to the labels, by enumeration.
  local function brute_force(labels, x)
    local p = ops.softmax(klua.tensor(x)):totable()
    local T, C = #p, #p[1]
    local total = 0
    local path = {}
    local function walk(t, prob)
      if t > T then
        local out, prev = {}, nil
        for _, k in ipairs(path) do
          if k ~= prev and k ~= 0 then out[#out + 1] = k end
          prev = k
        end
        if table.concat(out, ",") == table.concat(labels, ",") then total = total + prob end
        return
      end
      for k = 0, C - 1 do path[t] = k; walk(t + 1, prob * p[t][k + 1]) end
    end
    walk(1, 1)
    return -math.log(total)
  end

  it("equals the sum over every alignment, with repeats and padding", function()
    local x = { { 0.3, -1.2, 0.8, 0.1 }, { 0.4, -0.5, 1.1, -0.9 }, { 0.2, 0.7, -0.3, 0.5 }, { -0.8, 0.6, 0.9, 0.0 }, { 1.0, -0.1, 0.2, -0.4 } }
    local x2 = { { -0.2, 0.9, 0.1, 0.3 }, { 0.5, 0.5, -1.0, 0.2 }, { 0.0, 0.4, 0.6, -0.7 }, { 0.8, -0.3, 0.1, 0.2 }, { -0.5, 0.2, 0.7, 0.9 } }
    local per = losses.ctc({ { 1, 1, 3 }, { 2, 0, 0 } }, { x, x2 }):tolist()
    near(per[1], brute_force({ 1, 1, 3 }, x), 1e-5, "repeat")
    near(per[2], brute_force({ 2 }, x2), 1e-5, "padded")
    -- too many labels for the time steps: probability 0
    assert.are.equal(math.huge, losses.ctc({ { 1, 1, 1 } }, { { { 0.1, 0.2 }, { 0.3, 0.4 }, { 0.5, 0.6 } } }):tolist()[1])
  end)

  it("is klua.ops.ctc_loss with explicit lengths and any blank (keras/src/ops/nn_test.py NNOpsCorrectnessTest.test_ctc_loss)", function()
    local outputs = { { { 0.4, 0.8, 0.4 }, { 0.2, 0.8, 0.3 }, { 0.9, 0.4, 0.5 } }, { { 0.4, 0.8, 0.4 }, { 0.2, 0.3, 0.3 }, { 0.4, 0.3, 0.2 } } }
    near(ops.ctc_loss({ { 1, 2, 1 }, { 1, 2, 2 } }, outputs, { 3, 2 }, { 3, 2 }):tolist(), { 3.4411672, 1.91680186 }, 1e-6, "lengths")
    -- the loss's 0-padding is label_length = the non-zero labels, output_length = T
    local y = { { 1, 2, 1, 0 }, { 1, 2, 0, 2 } }
    near(ops.ctc_loss(y, logits, { 3, 3 }, { 4, 4 }):tolist(), losses.CTC { reduction = "none" }(y, logits):tolist(), 0, "as the loss")
    -- blank 2 is blank 0 with the classes rotated
    local rotated = ops.concatenate({ ops.slice_axis(logits, 3, 2, 3), ops.slice_axis(logits, 3, 1, 1) }, 3)
    near(ops.ctc_loss({ { 0, 1, 0 }, { 0, 1, 1 } }, rotated, { 3, 3 }, { 4, 4 }, 2):tolist(),
      ops.ctc_loss({ { 1, 2, 1 }, { 1, 2, 2 } }, logits, { 3, 3 }, { 4, 4 }, 0):tolist(), 1e-6, "mask_index 2")
    helpers.raises("ctc_loss: label_length 4 %(sample 2%) is not in %[0, 3%]", ops.ctc_loss, { { 1, 2, 1 }, { 1, 2, 2 } }, outputs, { 3, 4 }, { 3, 2 })
  end)

  it("weighs, reduces and round-trips as the other losses (test_config)", function()
    local y = { { 1, 2, 1, 0 }, { 1, 2, 0, 2 } }
    local per = losses.CTC { reduction = "none" }(y, logits):tolist()
    near(item(losses.CTC { reduction = "sum" }(y, logits, { 0.5, 2 })), 0.5 * per[1] + 2 * per[2], 1e-5, "weighted sum")
    assert.are.same({ name = "myctc", reduction = "sum_over_batch_size" }, round_trips(losses.CTC { name = "myctc" }))
  end)

  it("has the gradient of its forward-backward", function()
    local x = klua.random.normal({ 2, 5, 4 }, { seed = 7 })
    check_gradient(function(p) return losses.CTC()({ { 1, 1, 3 }, { 2, 3, 0 } }, p) end, x, "CTC", { rtol = 1e-2, atol = 5e-4 })
  end)

  it("names its shapes when they are wrong", function()
    helpers.raises("ctc: y_true must be a tensor of shape %(batch_size, max_length%)", function() return losses.ctc({ 1, 2 }, logits) end)
    helpers.raises("ctc: y_pred must be logits of shape %(batch_size, max_length, num_classes%)", function()
      return losses.ctc({ { 1, 2 } }, { { 0.1, 0.2 } })
    end)
    helpers.raises("ctc_loss: label 3 %(sample 1, position 2%) is not a class index in %[0, 3%)", function()
      return losses.ctc({ { 1, 3 }, { 1, 0 } }, logits)
    end)
  end)
end)

describe("the new losses by name", function()
  it("are found by their Keras names and class names", function()
    for name, cls in pairs { categorical_focal_crossentropy = "CategoricalFocalCrossentropy", dice = "Dice", tversky = "Tversky", circle = "Circle",
      categorical_generalized_cross_entropy = "CategoricalGeneralizedCrossEntropy", ctc = "CTC", Dice = "Dice", CTC = "CTC" } do
      assert.is_true(klua.class.is_instance(losses.get(name), losses[cls]), name)
    end
  end)

  it("release every tensor they make, forward and backward", function()
    local w = klua.Variable(klua.random.normal({ 4, 6 }, { seed = 3 }))
    local x = klua.random.normal({ 3, 4 }, { seed = 4 })
    local fns = {
      function(h) return losses.CTC()({ { 1, 2 }, { 2, 0 }, { 1, 1 } }, ops.reshape(h, { 3, 2, 3 })) end,
      function(h) return losses.CategoricalFocalCrossentropy { from_logits = true, axis = 1 }(ops.softmax(h, 1), h) end,
      function(h) return losses.Dice()(ops.sigmoid(h * 0.5), ops.sigmoid(h)) + losses.Tversky { axis = 2 }(ops.sigmoid(h * 0.5), ops.sigmoid(h)) end,
      function(h) return losses.Circle()({ 0, 1, 0 }, h / ops.sqrt(ops.sum(ops.square(h), 2, true))) end,
      function(h) return losses.CategoricalGeneralizedCrossEntropy()({ 0, 5, 2 }, ops.softmax(h)) end,
    }
    local function step()
      for _, f in ipairs(fns) do
        local tape = klua.GradientTape()
        local loss = tape:record(function() return f(ops.matmul(x, w)) end)
        tape:gradient(loss, { w })
      end
    end
    helpers.leaves_no_tensors(step, 10)
  end)
end)
