-- keras_metrics_spec.lua — klua.metrics against the cases and expected numbers
-- of Keras 3's own tests (keras/src/metrics/*_test.py; each block names the
-- test file and each case the test it ports): the element-wise accuracies,
-- FBetaScore with 2-D weights, `variables` and the named state, AUC with
-- multi_label and PRGAIN, the confusion counts and *At* metrics, the IoU,
-- regression, correlation, hinge and probabilistic metrics, and get_config
-- round trips and lookup by name for every metric.
local klua = require("klua")
local helpers = require("helpers")
local metrics = klua.metrics

-- near(expected, actual, tol, what): a result (number or tensor, read as a
-- flat list) within the absolute tolerance tol (Keras's assertAllClose atol).
local function near(expected, actual, tol, what)
  if type(actual) == "cdata" then actual = helpers.values(actual) end   -- a tensor
  helpers.near(actual, expected, { rtol = 0, atol = tol or 1e-6 }, what or "result")
end

local function shapes(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = v:shape() end
  return out
end

local function names(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = v.name end
  return out
end

local function transpose(rows)
  local out = {}
  for j = 1, #rows[1] do
    out[j] = {}
    for i = 1, #rows do out[j][i] = rows[i][j] end
  end
  return out
end

local function one_hot(labels, depth)
  local out = {}
  for i, l in ipairs(labels) do
    out[i] = {}
    for j = 1, depth do out[i][j] = (j - 1 == l) and 1 or 0 end
  end
  return out
end

describe("accuracy metrics compare element by element, as Keras 3 (accuracy_metrics_test.py)", function()
  it("Accuracy: test_unweighted, test_weighted, test_weighted_rank_1, test_weighted_nd_weights, test_weighted_nd_broadcast_weights", function()
    local yt, yp = { { 1 }, { 2 }, { 3 }, { 4 } }, { { 0 }, { 2 }, { 3 }, { 4 } }
    near(0.75, metrics.Accuracy()(yt, yp), 1e-3, "unweighted")
    near(0.5, metrics.Accuracy()(yt, yp, { 1, 1, 0, 0 }), 1e-3, "weighted")
    near(0.5, metrics.Accuracy()({ 1, 2, 3, 4 }, { 0, 2, 3, 4 }, { 1, 1, 0, 0 }), 1e-3, "rank 1")
    near(0.5, metrics.Accuracy()({ { 1, 2 }, { 3, 4 } }, { { 0, 2 }, { 3, 4 } }, { { 1, 0 }, { 0, 1 } }), 1e-3, "nd weights")
    near(0.5, metrics.Accuracy()({ { 1, 2 }, { 3, 4 } }, { { 0, 2 }, { 3, 4 } }, { { 1, 0 } }), 1e-3, "nd broadcast weights")
  end)

  it("BinaryAccuracy: test_unweighted (with broadcasting), test_weighted, test_weighted_rank_1, test_weighted_nd_*, test_threshold", function()
    local yt, yp = { { 1 }, { 1 }, { 0 }, { 0 } }, { { 0.98 }, { 1 }, { 0 }, { 0.6 } }
    near(0.75, metrics.BinaryAccuracy()(yt, yp), 1e-3, "unweighted")
    near(0.75, metrics.BinaryAccuracy()({ 1, 1, 0, 0 }, yp), 1e-3, "broadcasting")
    near(0.5, metrics.BinaryAccuracy()(yt, yp, { 1, 0, 0, 1 }), 1e-3, "weighted")
    near(0.5, metrics.BinaryAccuracy()({ 1, 1, 0, 0 }, { 0.98, 1, 0, 0.6 }, { 1, 0, 0, 1 }), 1e-3, "rank 1")
    local yt2, yp2 = { { 1, 1 }, { 0, 0 } }, { { 0.98, 1 }, { 0, 0.6 } }
    near(0.5, metrics.BinaryAccuracy()(yt2, yp2, { { 1, 0 }, { 0, 1 } }), 1e-3, "nd weights")
    near(1.0, metrics.BinaryAccuracy()(yt2, yp2, { { 1, 0 } }), 1e-3, "nd broadcast weights")
    local yt3, yp3 = { { 1 }, { 1 }, { 0 }, { 0 } }, { { 0.98 }, { 0.5 }, { 0.1 }, { 0.2 } }
    near(1.0, metrics.BinaryAccuracy { threshold = 0.3 }(yt3, yp3), 1e-6, "threshold 0.3")
    near(0.75, metrics.BinaryAccuracy { threshold = 0.9 }(yt3, yp3), 1e-6, "threshold 0.9")
  end)

  it("accuracy() and binary_accuracy() return one value per element", function()
    assert.are.same({ 2, 2 }, metrics.accuracy({ { 1, 2 }, { 3, 4 } }, { { 0, 2 }, { 3, 4 } }):shape())
    near({ 0, 1, 1, 0 }, metrics.binary_accuracy({ 1, 1, 0, 0 }, { 0.2, 0.7, 0.4, 0.9 }))
  end)

  it("SparseCategoricalAccuracy: test_reshape_matches and test_squeeze_y_true", function()
    -- y_true (2, 1) against y_pred (1, 2, 3): the matches broadcast, as in Keras
    near(1.0, metrics.SparseCategoricalAccuracy()({ { 0 }, { 0 } }, { { { 0.9, 0.1, 0.0 }, { 0.8, 0.15, 0.05 } } }), 1e-6)
    near(1.0, metrics.SparseCategoricalAccuracy()({ { 0 }, { 1 }, { 2 } },
      { { 0.9, 0.05, 0.05 }, { 0.05, 0.9, 0.05 }, { 0.05, 0.05, 0.9 } }), 1e-4)
    near(1.0, metrics.SparseCategoricalAccuracy()({ 2, 1, 0 }, { { 0, 0, 1 }, { 0, 1, 0 }, { 1, 0, 0 } }), 1e-4)
  end)

  it("SparseTopKCategoricalAccuracy{from_sorted_ids = true}: test_from_sorted_ids_unweighted/_weighted, test_config_from_sorted_ids", function()
    local m = metrics.SparseTopKCategoricalAccuracy { k = 1, from_sorted_ids = true }
    near(0.5, m({ 2, 1 }, { { 1, 0, 3 }, { 1, 2, 3 } }), 1e-3, "unweighted")
    m:reset_state()
    near(0.3, m({ 2, 1 }, { { 1, 0, 3 }, { 1, 2, 3 } }, { 0.7, 0.3 }), 1e-3, "weighted")
    near(1, metrics.SparseTopKCategoricalAccuracy { k = 2, from_sorted_ids = true }({ 2, 1 }, { { 1, 2, 3 }, { 3, 1, 2 } }))
    local c = m:get_config()
    assert.is_true(c.from_sorted_ids)
    assert.is_true(metrics.SparseTopKCategoricalAccuracy.from_config(c).from_sorted_ids)
    assert.is_nil(metrics.SparseTopKCategoricalAccuracy { k = 1 }:get_config().from_sorted_ids)
    assert.is_false(metrics.SparseTopKCategoricalAccuracy { k = 1 }.from_sorted_ids)
  end)

  it("test_config: accuracy metrics hold two variables, total and count", function()
    for _, cls in ipairs { "Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
      "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy" } do
      local m = metrics[cls] { name = "acc_" .. cls, dtype = "float32" }
      assert.are.same({ "total", "count" }, names(m.variables), cls)
      local back = metrics[cls].from_config(m:get_config())
      assert.are.equal("acc_" .. cls, back.name)
      assert.are.equal(2, #back.variables)
    end
  end)
end)

describe("FBetaScore and F1Score (f_score_metrics_test.py)", function()
  local function run(yt, yp, sw, average, beta, threshold)
    local m = metrics.FBetaScore { average = average, beta = beta, threshold = threshold }
    m:update_state(yt, yp, sw)
    return m:result()
  end

  it("take a 2-D sample_weight: test_fbeta_2d_weight, and a number: test_fbeta_scalar_weight", function()
    local yt, yp = { { 1, 1 }, { 1, 0 } }, { { 0.2, 0.6 }, { 0.2, 0.6 } }
    near({ 0.0, 0.333333 }, run(yt, yp, { { 0.5, 0.2 }, { 0.3, 0.8 } }, nil, 1.0, 0.5), 1e-5, "2-D weight")
    near({ 0.0, 0.6666665 }, run(yt, yp, 0.5, nil, 1.0, 0.5), 1e-5, "scalar weight")
  end)

  it("test_fbeta_perfect_score and test_fbeta_worst_score", function()
    for _, average in ipairs { "micro", "macro", "weighted" } do
      for _, beta in ipairs { 0.5, 1.0, 2.0 } do
        near(1.0, run({ { 1, 1, 1 }, { 1, 0, 0 }, { 1, 1, 0 } }, { { 0.7, 0.7, 0.7 }, { 1, 0, 0 }, { 0.9, 0.8, 0 } },
          nil, average, beta, 0.66), 1e-6, average .. " perfect")
        near(0.0, run({ { 0, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } }, { { 0.7, 0.7, 0.7 }, { 1, 0, 0 }, { 0.9, 0.8, 0 } },
          nil, average, beta, 0.66), 1e-6, average .. " worst")
      end
    end
  end)

  it("test_fbeta_random_score", function()
    local yp, yt = { { 0.7, 0.7, 0.7 }, { 1, 0, 0 }, { 0.9, 0.8, 0 } }, { { 0, 0, 1 }, { 1, 1, 0 }, { 1, 1, 1 } }
    for _, c in ipairs {
      { nil, 0.5, { 0.71428573, 0.5, 0.833334 } }, { nil, 1.0, { 0.8, 0.5, 0.6666667 } }, { nil, 2.0, { 0.9090904, 0.5, 0.555556 } },
      { "micro", 0.5, 0.6666667 }, { "micro", 1.0, 0.6666667 }, { "micro", 2.0, 0.6666667 },
      { "macro", 0.5, 0.6825397 }, { "macro", 1.0, 0.6555555 }, { "macro", 2.0, 0.6548822 },
      { "weighted", 0.5, 0.6825397 }, { "weighted", 1.0, 0.6555555 }, { "weighted", 2.0, 0.6548822 },
    } do
      near(c[3], run(yt, yp, nil, c[1], c[2], 0.66), 1e-6, tostring(c[1]) .. " beta " .. c[2])
    end
  end)

  local YT = { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 }, { 1, 0, 0 }, { 1, 0, 0 }, { 0, 0, 1 } }
  local YP = { { 0.9, 0.1, 0 }, { 0.2, 0.6, 0.2 }, { 0, 0, 1 }, { 0.4, 0.3, 0.3 }, { 0, 0.9, 0.1 }, { 0, 0, 1 } }

  it("test_fbeta_random_score_none (the argmax of each row counts as predicted)", function()
    for _, c in ipairs {
      { nil, 0.5, { 0.9090904, 0.555556, 1.0 } }, { nil, 1.0, { 0.8, 0.6666667, 1.0 } }, { nil, 2.0, { 0.71428573, 0.833334, 1.0 } },
      { "micro", 0.5, 0.833334 }, { "micro", 1.0, 0.833334 }, { "micro", 2.0, 0.833334 },
      { "macro", 0.5, 0.821549 }, { "macro", 1.0, 0.822222 }, { "macro", 2.0, 0.849206 },
      { "weighted", 0.5, 0.880471 }, { "weighted", 1.0, 0.844445 }, { "weighted", 2.0, 0.829365 },
    } do
      near(c[3], run(YT, YP, nil, c[1], c[2], nil), 1e-6, tostring(c[1]) .. " beta " .. c[2])
    end
  end)

  it("test_fbeta_weighted_random_score_none", function()
    local W1, W2, W3 = { 1, 1, 1, 1, 1, 1 }, { 1, 0, 1, 1, 0, 1 }, { 0.5, 1, 1, 1, 0.5, 1 }
    for _, c in ipairs {
      { nil, 0.5, W1, { 0.909091, 0.555556, 1.0 } }, { nil, 0.5, W2, { 1.0, 0.0, 1.0 } }, { nil, 0.5, W3, { 0.9375, 0.714286, 1.0 } },
      { nil, 1.0, W1, { 0.8, 0.666667, 1.0 } }, { nil, 1.0, W2, { 1.0, 0.0, 1.0 } }, { nil, 1.0, W3, { 0.857143, 0.8, 1.0 } },
      { nil, 2.0, W1, { 0.714286, 0.833333, 1.0 } }, { nil, 2.0, W2, { 1.0, 0.0, 1.0 } }, { nil, 2.0, W3, { 0.789474, 0.909091, 1.0 } },
      { "micro", 0.5, W1, 0.833333 }, { "micro", 0.5, W2, 1.0 }, { "micro", 0.5, W3, 0.9 },
      { "micro", 1.0, W1, 0.833333 }, { "micro", 1.0, W2, 1.0 }, { "micro", 1.0, W3, 0.9 },
      { "micro", 2.0, W1, 0.833333 }, { "micro", 2.0, W2, 1.0 }, { "micro", 2.0, W3, 0.9 },
      { "macro", 0.5, W1, 0.821549 }, { "macro", 0.5, W2, 0.666667 }, { "macro", 0.5, W3, 0.883929 },
      { "macro", 1.0, W1, 0.822222 }, { "macro", 1.0, W2, 0.666667 }, { "macro", 1.0, W3, 0.885714 },
      { "macro", 2.0, W1, 0.849206 }, { "macro", 2.0, W2, 0.666667 }, { "macro", 2.0, W3, 0.899522 },
      { "weighted", 0.5, W1, 0.880471 }, { "weighted", 0.5, W2, 1.0 }, { "weighted", 0.5, W3, 0.917857 },
      { "weighted", 1.0, W1, 0.844444 }, { "weighted", 1.0, W2, 1.0 }, { "weighted", 1.0, W3, 0.902857 },
      { "weighted", 2.0, W1, 0.829365 }, { "weighted", 2.0, W2, 1.0 }, { "weighted", 2.0, W3, 0.897608 },
    } do
      near(c[4], run(YT, YP, c[3], c[1], c[2], nil), 1e-6, tostring(c[1]) .. " beta " .. c[2])
    end
  end)

  it("F1Score equals FBetaScore with beta 1 (F1ScoreTest.test_correctness) and leaves beta out of its config", function()
    near(helpers.values(run(YT, YP, nil, nil, 1.0, nil)), metrics.F1Score()(YT, YP), 1e-6)
    assert.is_nil(metrics.F1Score():get_config().beta)
    assert.is_nil(metrics.F1Score.from_config(metrics.F1Score():get_config()).average)
  end)

  it("reject bad arguments as Keras does (test_invalid_average_raises_value_error, test_beta_*, test_threshold_*)", function()
    helpers.raises("Invalid `average` argument value. Expected one of: {nil, 'micro', 'macro', 'weighted'}. Received: average=invalid_average",
      metrics.FBetaScore, { average = "invalid_average" })
    helpers.raises("Invalid `beta` argument value. It should be > 0. Received: beta=0", metrics.FBetaScore, { beta = 0.0 })
    helpers.raises("Received: beta=%-1", metrics.FBetaScore, { beta = -1.0 })
    helpers.raises("Received: beta=%-0.5", metrics.FBetaScore, { beta = -0.5 })
    helpers.raises("Invalid `beta` argument value. It should be a number", metrics.FBetaScore, { beta = "1.0" })
    helpers.raises("It should verify 0 < threshold <= 1. Received: threshold=1.1", metrics.FBetaScore, { threshold = 1.1 })
    helpers.raises("Received: threshold=0", metrics.FBetaScore, { threshold = 0.0 })
    helpers.raises("Received: threshold=%-0.5", metrics.FBetaScore, { threshold = -0.5 })
    helpers.raises("Invalid `threshold` argument value. It should be a number", metrics.FBetaScore, { threshold = "0.5" })
    helpers.raises("FBetaScore expects 2D inputs with shape %(batch_size, output_dim%)%. Received input shapes: y_pred.shape=%(2,3,4%)",
      function() metrics.FBetaScore()(klua.zeros { 2, 3, 4 }, klua.zeros { 2, 3, 4 }) end)
  end)

  it("test_config: beta, average and threshold round-trip; four variables after the first update", function()
    local m = metrics.FBetaScore { beta = 0.5, threshold = 0.3, dtype = "float32" }
    local back = metrics.FBetaScore.from_config(m:get_config())
    assert.are.same(m:get_config(), back:get_config())
    assert.are.equal(0.5, back.beta)
    assert.are.equal(0.3, back.threshold)
    assert.are.equal(0, #m.variables)
    m:update_state(YT, YP)
    assert.are.same({ "true_positives", "false_positives", "false_negatives", "intermediate_weights" }, names(m.variables))
    assert.are.same({ { 3 }, { 3 }, { 3 }, { 3 } }, shapes(m.variables))
    local micro = metrics.FBetaScore { average = "micro" }
    micro:update_state(YT, YP)
    assert.are.same({ {}, {}, {}, {} }, shapes(micro.variables))
    m:reset_state()
    near({ 0, 0, 0 }, m.true_positives)
  end)
end)

describe("confusion counts (confusion_metrics_test.py)", function()
  local YT = { { 0, 1, 0, 1, 0 }, { 0, 0, 1, 1, 1 }, { 1, 1, 1, 1, 0 }, { 0, 0, 0, 0, 1 } }
  local YP = { { 0, 0, 1, 1, 0 }, { 1, 1, 1, 1, 1 }, { 0, 1, 0, 1, 0 }, { 1, 1, 1, 1, 1 } }
  local SW = { 1.0, 1.5, 2.0, 2.5 }
  local TP = { { 0.9, 0.2, 0.8, 0.1 }, { 0.2, 0.9, 0.7, 0.6 }, { 0.1, 0.2, 0.4, 0.3 }, { 0, 1, 0.7, 0.3 } }
  local TT = { { 0, 1, 1, 0 }, { 1, 0, 0, 0 }, { 0, 0, 0, 0 }, { 1, 1, 1, 1 } }
  local THR = { 0.15, 0.5, 0.85 }

  -- {class, unweighted, weighted, with thresholds, weights with thresholds, weighted with thresholds}
  for _, c in ipairs {
    { "FalsePositives", 7, 14, { 7, 4, 2 }, { { 1, 2, 3, 5 }, { 7, 11, 13, 17 }, { 19, 23, 29, 31 }, { 5, 15, 10, 0 } }, { 125, 42, 12 } },
    { "FalseNegatives", 3, 5, { 1, 4, 6 }, { { 3 }, { 5 }, { 7 }, { 4 } }, { 4, 16, 23 } },
    { "TrueNegatives", 3, 4, { 2, 5, 7 }, { { 0, 2, 3, 5 } }, { 5, 15, 23 } },
    { "TruePositives", 7, 12, { 6, 3, 1 }, 37, { 222, 111, 37 } },
  } do
    it(c[1] .. ": test_unweighted, test_weighted, test_unweighted_with_thresholds, test_weighted_with_thresholds", function()
      local cls = metrics[c[1]]
      near(c[2], cls()(YT, YP), 1e-6, "unweighted")
      near(c[3], cls()(YT, YP, SW), 1e-6, "weighted")
      near(c[4], cls { thresholds = THR }(TT, TP), 1e-6, "with thresholds")
      near(c[6], cls { thresholds = THR }(TT, TP, c[5]), 1e-5, "weighted with thresholds")
    end)
  end

  it("test_config and test_threshold_limit", function()
    local m = metrics.FalsePositives { name = "my_fp", thresholds = { 0.4, 0.9 } }
    assert.are.same({ 0.4, 0.9 }, m.thresholds)
    assert.are.same({ "accumulator" }, names(m.variables))
    assert.are.same({ { 2 } }, shapes(m.variables))
    local back = metrics.FalsePositives.from_config(m:get_config())
    assert.are.equal("my_fp", back.name)
    assert.are.same({ 0.4, 0.9 }, back.thresholds)
    helpers.raises("Threshold values must be in %[0, 1%]%. Received: %[%-1, 2%]", metrics.FalsePositives, { thresholds = { -1, 0.5, 2 } })
  end)

  it("Precision and Recall expose their counts under Keras's names (PrecisionTest.test_config, test_unweighted_class_id_multiclass, test_unweighted_top_k_and_threshold)", function()
    local p = metrics.Precision { name = "my_precision", thresholds = { 0.4, 0.9 }, top_k = 15, class_id = 12 }
    assert.are.same({ "true_positives", "false_positives" }, names(p.variables))
    assert.are.same({ { 2 }, { 2 } }, shapes(p.variables))
    assert.are.same({ "true_positives", "false_negatives" }, names(metrics.Recall().variables))
    local back = metrics.Precision.from_config(p:get_config())
    assert.are.same({ 0.4, 0.9 }, back.thresholds)
    assert.are.equal(15, back.top_k)
    assert.are.equal(12, back.class_id)

    local yp = { { 0.1, 0.2, 0.7 }, { 0.5, 0.3, 0.2 }, { 0.2, 0.6, 0.2 }, { 0.7, 0.2, 0.1 }, { 0.1, 0.1, 0.8 } }
    local yt = { { 0, 0, 1 }, { 1, 0, 0 }, { 0, 1, 0 }, { 1, 0, 0 }, { 0, 0, 1 } }
    local m = metrics.Precision { class_id = 1 }
    near(1.0, m(yt, yp))
    near({ 1.0 }, m.true_positives)
    near({ 0.0 }, m.false_positives)
    local r = metrics.Recall { class_id = 1 }
    r:update_state(yt, yp)
    near({ 1.0 }, r.true_positives)
    near({ 0.0 }, r.false_negatives)

    local k = metrics.Precision { thresholds = 0.7, top_k = 2 }
    near(1, k({ 0, 1, 1, 0, 1 }, { 0.2, 0.8, 0.6, 0, 0.2 }))
    near({ 1 }, k.true_positives)
    near({ 0 }, k.false_positives)
  end)

  it("Precision: test_weighted_top_k and test_multiple_updates", function()
    local p = metrics.Precision { top_k = 3 }
    p({ { 0, 1, 1, 0, 1 } }, { { 0.2, 0.1, 0.4, 0, 0.2 } }, { { 1, 4, 2, 3, 5 } })
    near((2 + 5 + 3 + 3) / (1 + 2 + 5 + 3 + 3 + 3), p({ 1, 0, 1, 1, 1 }, { 0.2, 0.6, 0.4, 0.2, 0.2 }, 3), 1e-6)
    local m = metrics.Precision { thresholds = { 0.5, 1.0 } }
    for _ = 1, 2 do m:update_state({ { 0, 1 }, { 1, 0 } }, { { 1, 0 }, { 0.6, 0 } }, { { 4, 0 }, { 3, 1 } }) end
    near({ 6 / 14, 0 }, m:result())
  end)
end)

describe("SensitivityAtSpecificity, SpecificityAtSensitivity, PrecisionAtRecall, RecallAtPrecision (confusion_metrics_test.py)", function()
  local P1 = { 0.0, 0.1, 0.2, 0.3, 0.4, 0.01, 0.02, 0.25, 0.26, 0.26 }
  local L1 = { 0, 0, 0, 0, 0, 1, 1, 1, 1, 1 }
  local P2 = { 0.0, 0.1, 0.2, 0.5, 0.6, 0.2, 0.5, 0.6, 0.8, 0.9 }
  local P3 = { 0.05, 0.1, 0.2, 0.3, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.9, 0.95 }
  local L3 = { 0, 1, 0, 0, 0, 1, 1, 0, 1, 1, 0, 1 }

  it("SensitivityAtSpecificity: test_unweighted_all_correct, _high_specificity, _low_specificity, test_weighted", function()
    local x = { 0, 1, 1, 0, 1, 0, 0, 1 }
    near(1, metrics.SensitivityAtSpecificity(0.7)(x, x), 1e-6, "all correct")
    near(0.8, metrics.SensitivityAtSpecificity(0.8)(L1, { 0.0, 0.1, 0.2, 0.3, 0.4, 0.1, 0.45, 0.5, 0.8, 0.9 }), 1e-6, "high")
    near(0.6, metrics.SensitivityAtSpecificity(0.4)(L1, P1), 1e-6, "low")
    near(0.675, metrics.SensitivityAtSpecificity(0.4)(L1, P1, { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }), 1e-6, "weighted")
  end)

  it("SpecificityAtSensitivity: test_unweighted_high_sensitivity, _low_sensitivity, _class_id, test_weighted", function()
    near(0.2, metrics.SpecificityAtSensitivity(1.0)(L1, P1), 1e-6, "high")
    near(0.6, metrics.SpecificityAtSensitivity(0.4)(L1, P1), 1e-6, "low")
    local L = { 0, 0, 0, 0, 0, 2, 2, 2, 2, 2 }
    near(0.6, metrics.SpecificityAtSensitivity(0.4, { class_id = 2 })(one_hot(L, 3), transpose { P1, P1, P1 }), 1e-6, "class_id")
    near(0.4, metrics.SpecificityAtSensitivity(0.4)(L1, P1, { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }), 1e-6, "weighted")
  end)

  it("PrecisionAtRecall: test_unweighted_high_recall, _low_recall, _class_id, test_weighted", function()
    near(2 / 3, metrics.PrecisionAtRecall(0.8)(L1, P2), 1e-6, "high")
    near(0.75, metrics.PrecisionAtRecall(0.6)(L1, P2), 1e-6, "low")
    local L = { 0, 0, 0, 0, 0, 2, 2, 2, 2, 2 }
    near(0.75, metrics.PrecisionAtRecall(0.6, { class_id = 2 })(one_hot(L, 3), transpose { P2, P2, P2 }), 1e-6, "class_id")
    near(0.7, metrics.PrecisionAtRecall(7 / 8)(L1, P2, { 2, 1, 2, 1, 2, 1, 2, 2, 1, 2 }), 1e-6, "weighted")
  end)

  it("RecallAtPrecision: test_unweighted_high_precision, _low_precision, _class_id, test_weighted, test_unachievable_precision", function()
    near(0.5, metrics.RecallAtPrecision(0.75)(L3, P3), 1e-6, "high")
    near(5 / 6, metrics.RecallAtPrecision(2 / 3)(L3, P3), 1e-6, "low")
    local L = { 0, 2, 0, 0, 0, 2, 2, 0, 2, 2, 0, 2 }
    near(5 / 6, metrics.RecallAtPrecision(2 / 3, { class_id = 2 })(one_hot(L, 3), transpose { P3, P3, P3 }), 1e-6, "class_id")
    near(0.6, metrics.RecallAtPrecision(0.75)({ 0, 1, 0, 0, 0, 1, 1 }, { 0.1, 0.2, 0.3, 0.5, 0.6, 0.9, 0.9 }, { 1, 2, 1, 2, 1, 2, 1 }), 1e-6, "weighted")
    near(0, metrics.RecallAtPrecision(2 / 3)({ 1, 1, 0, 0 }, { 0.1, 0.2, 0.3, 0.9 }), 1e-6, "unachievable")
  end)

  it("test_config, test_invalid_* of each: four variables, the value by position or by name", function()
    for _, c in ipairs { { "SensitivityAtSpecificity", "specificity" }, { "SpecificityAtSensitivity", "sensitivity" },
      { "PrecisionAtRecall", "recall" }, { "RecallAtPrecision", "precision" } } do
      local cls = metrics[c[1]]
      local m = cls(0.4, { num_thresholds = 100, class_id = 12, name = "x_1" })
      assert.are.equal(0.4, m[c[2]])
      assert.are.same({ "true_positives", "false_positives", "true_negatives", "false_negatives" }, names(m.variables))
      assert.are.same({ 100 }, m.variables[1]:shape())
      local back = cls.from_config(m:get_config())
      assert.are.same(m:get_config(), back:get_config())
      assert.are.equal(100, back.num_thresholds)
      assert.are.equal(12, back.class_id)
      helpers.raises("Argument `" .. c[2] .. "` must be in the range %[0, 1%]", cls, -1)
      helpers.raises("Argument `num_thresholds` must be an integer > 0", cls, 0.4, { num_thresholds = -1 })
    end
  end)
end)

describe("AUC (confusion_metrics_test.py AUCTest and MultiAUCTest)", function()
  local YT, YP, SW = { 0, 0, 1, 1 }, { 0, 0.5, 0.3, 0.9 }, { 1, 2, 3, 4 }

  it("PRGAIN: test_weighted_prgain_majoring, _minoring, _interpolation, test_prgain_interpolation", function()
    near(1.0, metrics.AUC { num_thresholds = 3, curve = "PRGAIN", summation_method = "majoring" }(YT, YP, SW), 1e-3, "majoring")
    near(0.0, metrics.AUC { num_thresholds = 3, curve = "PRGAIN", summation_method = "minoring" }(YT, YP, SW), 1e-3, "minoring")
    near(0.5, metrics.AUC { num_thresholds = 3, curve = "PRGAIN" }(YT, YP, SW), 1e-3, "interpolation")
    near(0.666666 * 0.333333 + 0.333333 * 0.833333, metrics.AUC { num_thresholds = 3, curve = "PRGAIN" }(
      { 0, 0, 0, 1, 0, 1, 0, 1, 1, 1 }, { 0.1, 0.2, 0.3, 0.3, 0.4, 0.4, 0.6, 0.6, 0.8, 0.9 }), 1e-3, "unweighted")
  end)

  it("test_weighted_*: ROC and PR with each summation, negative weights", function()
    near(0.7855, metrics.AUC { num_thresholds = 3 }(YT, YP, SW), 1e-3, "roc interpolation")
    near(1.0, metrics.AUC { num_thresholds = 3, summation_method = "majoring" }(YT, YP, SW), 1e-3, "roc majoring")
    near(0.571, metrics.AUC { num_thresholds = 3, summation_method = "minoring" }(YT, YP, SW), 1e-3, "roc minoring")
    near(1.0, metrics.AUC { num_thresholds = 3, curve = "PR", summation_method = "majoring" }(YT, YP, SW), 1e-3, "pr majoring")
    near(0.7 * 0.429, metrics.AUC { num_thresholds = 3, curve = "PR", summation_method = "minoring" }(YT, YP, SW), 1e-3, "pr minoring")
    near(2.416 / 7 + 4 / 7, metrics.AUC { num_thresholds = 3, curve = "PR" }(YT, YP, SW), 1e-3, "pr interpolation")
    near(0.0, metrics.AUC { num_thresholds = 3, curve = "PR" }(YT, YP, { -1, -2, -3, -4 }), 1e-3, "negative weights")
    near(1, metrics.AUC()(YT, YT), 0, "all correct")
    near(0.75, metrics.AUC { num_thresholds = 2, thresholds = { 0.5 } }(YT, YP), 1e-3, "manual thresholds")
  end)

  it("test_extra_dims: predictions of any rank are pooled", function()
    local function expit(x) return 1 / (1 + math.exp(-x)) end
    local logits = { { { -10, 10, -10 }, { 10, -10, 10 } }, { { -12, 12, -12 }, { 12, -12, 12 } } }
    local p = {}
    for i, a in ipairs(logits) do
      p[i] = {}
      for j, row in ipairs(a) do
        p[i][j] = {}
        for k, v in ipairs(row) do p[i][j][k] = expit(-v) end
      end
    end
    near(0.5, metrics.AUC()({ { { 1, 0, 0 }, { 1, 0, 0 } }, { { 0, 1, 1 }, { 0, 1, 1 } } }, p), 1e-6)
  end)

  it("reject a bad curve, summation method or num_thresholds (test_invalid_*)", function()
    helpers.raises('Invalid AUC curve value: "Invalid"', metrics.AUC, { curve = "Invalid" })
    helpers.raises('Invalid AUC summation method value: "Invalid"', metrics.AUC, { summation_method = "Invalid" })
    helpers.raises("Argument `num_thresholds` must be an integer > 1", metrics.AUC, { num_thresholds = -1 })
    helpers.raises("Argument `num_thresholds` must be an integer > 1", metrics.AUC, { num_thresholds = 1 })
    helpers.raises("`num_labels` is needed only when `multi_label` is True", metrics.AUC, { num_labels = 2 })
  end)

  -- MultiAUCTest's data: two labels, as columns
  local MP = transpose { { 0, 0.5, 0.3, 0.9 }, { 0.1, 0.2, 0.3, 0.4 } }
  local GOOD = transpose { { 0, 0, 1, 1 }, { 0, 0, 1, 1 } }
  local BAD = transpose { { 0, 0, 1, 1 }, { 1, 1, 0, 0 } }

  it("multi_label = true averages the labels' areas: test_unweighted, test_unweighted_from_logits, test_label_weights, test_manual_thresholds", function()
    near(1, metrics.AUC { multi_label = true }(GOOD, GOOD), 0, "all correct")
    near(1, metrics.AUC { multi_label = false }(GOOD, GOOD), 0, "all correct, flat")
    near((0.875 + 1.0) / 2, metrics.AUC { num_thresholds = 5, multi_label = true }(GOOD, MP), 1e-3, "unweighted")
    local logits = klua.ops.log(klua.tensor(MP) + 1e-12) - klua.ops.log(1 - klua.tensor(MP) + 1e-12)
    near((0.875 + 1.0) / 2, metrics.AUC { num_thresholds = 5, multi_label = true, from_logits = true }(GOOD, logits), 1e-3, "from logits")
    near((0.875 * 0.75 + 1.0 * 0.25) / (0.75 + 0.25),
      metrics.AUC { num_thresholds = 5, multi_label = true, label_weights = { 0.75, 0.25 } }(GOOD, MP), 1e-3, "label weights")
    local m = metrics.AUC { num_thresholds = 2, thresholds = { 0.5 }, multi_label = true }
    assert.are.equal(3, m.num_thresholds)
    near((0.75 + 0.5) / 2, m(GOOD, MP), 1e-3, "manual thresholds")
    near(1.0 - 0.5 * 0.43 * 0.67, metrics.AUC { num_thresholds = 5, multi_label = true }(GOOD, MP, SW), 1e-1, "weighted roc")
  end)

  it("multi_label = false pools the labels: test_unweighted_flat, test_sample_weight_flat, test_full_sample_weight_flat, test_label_weights_flat", function()
    near(1 - 3 / 32, metrics.AUC { num_thresholds = 5 }(GOOD, MP), 1e-3, "unweighted")
    near(1.0 - (0.3333 * (1.0 - 0.2857) / 2.0), metrics.AUC { num_thresholds = 5 }(GOOD, MP, SW), 1e-3, "sample weight")
    near(1.0 - (0.3333 * (1.0 - 0.2727) / 2.0), metrics.AUC { num_thresholds = 5 }(GOOD, MP, { { 0, 1 }, { 2, 3 }, { 4, 5 }, { 6, 7 } }),
      1e-3, "full sample weight")
    near(1.0 - ((1.0 - 0.375) * 0.375 / 2.0), metrics.AUC { num_thresholds = 5, label_weights = { 0.75, 0.25 } }(GOOD, MP), 1e-2, "label weights")
  end)

  it("PR interpolation per label: test_pr_interpolation_unweighted, test_pr_interpolation", function()
    local m = metrics.AUC { num_thresholds = 5, curve = "PR", multi_label = true }
    near((0.91667 + 1.0) / 2, m(GOOD, MP), 1e-1, "good")
    near((0.91667 + 0.5) / 2, m(BAD, MP), 1e-1, "bad")
    near((0.939 + 1.0) / 2, metrics.AUC { num_thresholds = 5, curve = "PR", multi_label = true }(GOOD, MP, SW), 1e-1, "weighted")
  end)

  it("holds (num_thresholds, num_labels) counts, zeroed by reset_state (test_reset_state)", function()
    local m = metrics.AUC { num_thresholds = 5, multi_label = true }
    assert.are.equal(0, #m.variables)       -- built by the first update, as Keras's
    m(GOOD, MP)
    assert.are.same({ { 5, 2 }, { 5, 2 }, { 5, 2 }, { 5, 2 } }, shapes(m.variables))
    near({ { 2, 2 }, { 2, 2 }, { 1, 0 }, { 1, 0 }, { 0, 0 } }, m.true_positives:totable())
    m:reset_state()
    near({ { 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 0 } }, m.true_positives:totable())
    local flat = metrics.AUC { num_thresholds = 3 }
    flat(YT, YP, SW)
    assert.are.same({ "true_positives", "false_positives", "true_negatives", "false_negatives" }, names(flat.variables))
    near({ 7, 4, 0 }, flat.true_positives)
    near({ 3, 0, 0 }, flat.false_positives)
    near({ 0, 3, 7 }, flat.false_negatives)
    near({ 0, 3, 3 }, flat.true_negatives)
    assert.are.equal(4, #metrics.AUC { multi_label = true, num_labels = 2 }.variables)
    helpers.raises("`y_pred` must have rank 2 when `multi_label=True`", function() metrics.AUC { multi_label = true }(YT, YP) end)
  end)

  it("test_config and test_config_manual_thresholds: the config round-trips through JSON", function()
    local m = metrics.AUC { num_thresholds = 100, curve = "PR", summation_method = "majoring", name = "auc_1",
      multi_label = true, num_labels = 2, from_logits = true }
    local c = m:get_config()
    assert.is_nil(c.thresholds)
    assert.are.same(c, klua.json.decode(klua.json.encode(c)))
    local back = metrics.AUC.from_config(c)
    assert.are.same(c, back:get_config())
    assert.is_true(back.multi_label)
    assert.are.equal(2, back.num_labels)
    assert.are.equal(4, #back.variables)
    local t = metrics.AUC { curve = "PR", summation_method = "majoring", name = "auc_1", thresholds = { 0.5, 0.3 } }
    assert.are.equal(4, t.num_thresholds)
    near({ 0.0, 0.3, 0.5, 1.0 }, t.thresholds, 1e-6)
    assert.are.same({ 0.3, 0.5 }, t:get_config().thresholds)
    assert.are.same(t:get_config(), metrics.AUC.from_config(t:get_config()):get_config())
  end)
end)

describe("IoU metrics (iou_metrics_test.py)", function()
  it("IoU: test_unweighted, test_weighted, test_multi_dim_input, test_zero_valid_entries, test_zero_and_non_zero_entries", function()
    near((1 / 3 + 1 / 3) / 2, metrics.IoU { num_classes = 2, target_class_ids = { 0, 1 } }({ 0, 0, 1, 1 }, { 0, 1, 0, 1 }), 1e-3)
    local expected = (0.1 / (0.4 + 0.5 - 0.1) + 0.2 / (0.6 + 0.5 - 0.2)) / 2
    near(expected, metrics.IoU(2, { 1, 0 })({ 0, 0, 1, 1 }, { 0, 1, 0, 1 }, { 0.2, 0.3, 0.4, 0.1 }), 1e-3, "weighted")
    near(expected, metrics.IoU(2, { 0, 1 })({ { 0, 0 }, { 1, 1 } }, { { 0, 1 }, { 0, 1 } }, { { 0.2, 0.3 }, { 0.4, 0.1 } }), 1e-3, "multi-dim")
    near(0, metrics.IoU(2, { 0, 1 }):result(), 1e-3, "zero valid entries")
    near(1, metrics.IoU(2, { 0, 1 })({ 1 }, { 1 }), 1e-3, "zero and non-zero entries")
  end)

  it("IoU leaves out-of-range ids and counts absent classes as 0 (test_out_of_range_*, test_negative_*, test_absent_class_contributes_zero)", function()
    for _, c in ipairs { { { 0, 2 }, { 0, 1 } }, { { 0, 1 }, { 0, 2 } }, { { -1, 0 }, { 0, 0 } }, { { 0, 1 }, { -1, 1 } } } do
      local m = metrics.IoU(2, { 0, 1 })
      m:update_state(c[1], c[2])
      near(1.0, m:result(), 1e-3)
    end
    near((1 / 3 + 1 / 3) / 2, metrics.IoU(4, { 0, 1, 2, 3 })({ 0, 0, 1, 1 }, { 0, 1, 0, 1 }), 1e-3, "absent")
    helpers.raises("Target class id 2 is out of range, which is %[0, 2%)", metrics.IoU, 2, { 0, 2 })
  end)

  it("BinaryIoU: test_different_thresholds_weighted, _unweighted, test_multi_dim_input, test_zero_and_non_zero_entries", function()
    local yt, yp = { 0, 1, 0, 1 }, { 0.1, 0.2, 0.4, 0.7 }
    near((0.2 / (0.6 + 0.5 - 0.2) + 0.1 / (0.4 + 0.5 - 0.1)) / 2,
      metrics.BinaryIoU { target_class_ids = { 0, 1 }, threshold = 0.3 }(yt, yp, { 0.2, 0.3, 0.4, 0.1 }), 1e-3, "weighted 0.3")
    near((0.5 / (0.5 + 0.7 - 0.5) + 0.3 / (0.5 + 0.3 - 0.3)) / 2,
      metrics.BinaryIoU { target_class_ids = { 0, 1 }, threshold = 0.5 }(yt, yp, { 0.1, 0.2, 0.4, 0.3 }), 1e-3, "weighted 0.5")
    near((1 / 3 + 1 / 3) / 2, metrics.BinaryIoU { threshold = 0.3 }(yt, yp), 1e-3, "unweighted 0.3")
    near((2 / 3 + 1 / 2) / 2, metrics.BinaryIoU { threshold = 0.5 }(yt, yp), 1e-3, "unweighted 0.5")
    near((0.2 / (0.6 + 0.3 - 0.2) + 0.3 / (0.4 + 0.7 - 0.3)) / 2,
      metrics.BinaryIoU { threshold = 0.4 }({ { 0, 1 }, { 0, 1 } }, { { 0.1, 0.7 }, { 0.9, 0.3 } }, { { 0.2, 0.3 }, { 0.4, 0.1 } }), 1e-3, "multi-dim")
    near(1, metrics.BinaryIoU()({ 1 }, { 0.6 }), 1e-3, "zero and non-zero")
    near(0, metrics.BinaryIoU():result(), 1e-3, "zero valid entries")
  end)

  it("MeanIoU: test_unweighted, test_unweighted_ignore_class_255, _1, test_weighted, test_weighted_ignore_class_1, test_absent_class_contributes_zero", function()
    near((1 / 3 + 1 / 3) / 2, metrics.MeanIoU(2)({ 0, 0, 1, 1 }, { 0, 1, 0, 1 }), 1e-3)
    local expected = (1 / (1 + 1 - 1) + 1 / (2 + 1 - 1) + 0 / (0 + 1 - 0)) / 3
    near(expected, metrics.MeanIoU(3, { ignore_class = 255 })({ 0, 1, 2, 255 }, { 0, 1, 1, 1 }), 1e-3, "ignore 255")
    near(expected, metrics.MeanIoU { num_classes = 3, ignore_class = -1 }({ 0, 1, 2, -1 }, { 0, 1, 1, 1 }), 1e-3, "ignore -1")
    near((0.2 / (0.6 + 0.5 - 0.2) + 0.1 / (0.4 + 0.5 - 0.1)) / 2,
      metrics.MeanIoU(2)({ 0, 0, 1, 1 }, { 0, 1, 0, 1 }, { 0.2, 0.3, 0.4, 0.1 }), 1e-3, "weighted")
    near((0.2 / (0.6 + 0.5 - 0.2) + 0.0 / (0.3 + 0.4 - 0.0)) / 2,
      metrics.MeanIoU(2, { ignore_class = -1 })({ 0, 0, 1, -1 }, { 0, 1, 0, 1 }, { 0.2, 0.3, 0.4, 0.1 }), 1e-3, "weighted ignore")
    near(1.0, metrics.MeanIoU(3)({ 0, 0, 0, 0 }, { 0, 0, 0, 0 }), 1e-3, "absent classes")
    local m = metrics.MeanIoU(2)
    m:update_state({ 0, 3 }, { 0, 1 })
    near(1.0, m:result(), 1e-3, "out of range")
  end)

  it("OneHotIoU and OneHotMeanIoU: test_unweighted, test_weighted", function()
    local yt = { { 0, 0, 1 }, { 1, 0, 0 }, { 0, 1, 0 }, { 1, 0, 0 } }
    local yp = { { 0.2, 0.3, 0.5 }, { 0.1, 0.2, 0.7 }, { 0.5, 0.3, 0.1 }, { 0.1, 0.4, 0.5 } }
    near((0 / (1 + 2 - 0) + 1 / (3 + 1 - 1)) / 2, metrics.OneHotIoU(3, { 0, 2 })(yt, yp), 1e-3)
    near((0 / (0.3 + 0.6 - 0) + 0.1 / (0.7 + 0.1 - 0.1)) / 2,
      metrics.OneHotIoU { num_classes = 3, target_class_ids = { 0, 2 } }(yt, yp, { 0.1, 0.2, 0.3, 0.4 }), 1e-3, "weighted")
    near((0 + 0 + 1 / (3 + 1 - 1)) / 3, metrics.OneHotMeanIoU(3)(yt, yp), 1e-3)
    local yt5 = { { 0, 0, 1 }, { 1, 0, 0 }, { 0, 1, 0 }, { 1, 0, 0 }, { 1, 0, 0 } }
    local yp5 = { { 0.2, 0.3, 0.5 }, { 0.1, 0.2, 0.7 }, { 0.5, 0.3, 0.1 }, { 0.1, 0.4, 0.5 }, { 0.6, 0.2, 0.2 } }
    local expected = (0.1 / (0.4 + 0.6 - 0.1) + 0 + 0.1 / (0.6 + 0.1 - 0.1)) / 3
    near(expected, metrics.OneHotMeanIoU(3)(yt5, yp5, { 0.1, 0.2, 0.3, 0.3, 0.1 }), 1e-3, "weighted")
    near(expected, metrics.OneHotMeanIoU(3)(yt5, yp5, { 1, 2, 3, 3, 1 }), 1e-3, "integer weights")
  end)

  it("test_config: the confusion matrix is the one variable, total_cm", function()
    local m = metrics.IoU { num_classes = 2, target_class_ids = { 1, 0 }, name = "iou_class_1_0" }
    local back = metrics.IoU.from_config(m:get_config())
    assert.are.equal("iou_class_1_0", back.name)
    assert.are.same({ 1, 0 }, back.target_class_ids)
    assert.are.same({ "total_confusion_matrix" }, names(m.variables))
    m({ 0, 0, 1, 1 }, { 0, 1, 0, 1 })
    near({ { 1, 1 }, { 1, 1 } }, m.total_cm:totable())
    local b = metrics.BinaryIoU { target_class_ids = { 1, 0 }, threshold = 0.1, name = "iou_class_1_0" }
    assert.are.same(b:get_config(), metrics.BinaryIoU.from_config(b:get_config()):get_config())
    assert.are.equal("mean_io_u", metrics.MeanIoU(2).name)   -- Keras's default name
  end)
end)

describe("regression metrics (regression_metrics_test.py)", function()
  local YT = { { 0, 1, 0, 1, 0 }, { 0, 0, 1, 1, 1 }, { 1, 1, 1, 1, 0 }, { 0, 0, 0, 0, 1 } }
  local YP = { { 0, 0, 1, 1, 0 }, { 1, 1, 1, 1, 1 }, { 0, 1, 0, 1, 0 }, { 1, 1, 1, 1, 1 } }
  local SW = { 1.0, 1.5, 2.0, 2.5 }

  it("MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError: test_unweighted, test_weighted", function()
    near(0.5, metrics.MeanSquaredError()(YT, YP), 1e-5, "mse")
    near(0.54285, metrics.MeanSquaredError()(YT, YP, SW), 1e-5, "mse weighted")
    near(0.5, metrics.MeanAbsoluteError()(YT, YP), 1e-5, "mae")
    near(0.54285, metrics.MeanAbsoluteError()(YT, YP, SW), 1e-5, "mae weighted")
    helpers.near(metrics.MeanAbsolutePercentageError()(YT, YP):item(), 35e7, { rtol = 1e-6, atol = 0 }, "mape")
    helpers.near(metrics.MeanAbsolutePercentageError()(YT, YP, SW):item(), 40e7, { rtol = 1e-6, atol = 0 }, "mape weighted")
    near(0.24022, metrics.MeanSquaredLogarithmicError()(YT, YP), 1e-5, "msle")
    near(0.26082, metrics.MeanSquaredLogarithmicError()(YT, YP, SW), 1e-5, "msle weighted")
  end)

  it("RootMeanSquaredError: test_unweighted, test_weighted", function()
    near(math.sqrt(6), metrics.RootMeanSquaredError()({ 2, 4, 6 }, { 1, 3, 2 }), 1e-3)
    near(math.sqrt(13), metrics.RootMeanSquaredError()({ 2, 4, 6, 8 }, { 1, 3, 2, 3 }, { 0, 1, 0, 1 }), 1e-3)
  end)

  it("CosineSimilarity and LogCoshError: test_unweighted, test_weighted, test_axis", function()
    local yt, yp = { { 1, 9, 2 }, { -5, -2, 6 } }, { { 4, 8, 12 }, { 8, 1, 3 } }
    -- cosines 0.72048802, -0.34604988 (computed as the test's l2_norm does)
    near(0.1872190708, metrics.CosineSimilarity()(yt, yp), 1e-3, "cosine")
    near(-0.0678226015, metrics.CosineSimilarity()(yt, yp, { 1.2, 3.4 }), 1e-3, "cosine weighted")
    near(0.1872190708, metrics.CosineSimilarity { axis = 2 }(yt, yp), 1e-3, "cosine axis 2 (Keras's axis=1)")
    near(4.8292453309, metrics.LogCoshError()(yt, yp), 1e-3, "logcosh")
    near(5.2178759424, metrics.LogCoshError()(yt, yp, { { 1.2 }, { 3.4 } }), 1e-3, "logcosh weighted")
    assert.are.equal("logcosh", metrics.LogCoshError().name)
  end)

  local R2T = { { 0.0, 0.0, 1.0 }, { 0.0, 1.0, 0.0 }, { 1.0, 0.0, 0.0 } }

  it("R2Score: test_r2_sklearn_comparison", function()
    local yp = { { 0.4, 0.5, 0.6 }, { 0.1, 0.2, 0.3 }, { 0.5, 0.8, 0.2 } }
    for _, c in ipairs { { false, 0, { 0.37, -1.295, 0.565 } }, { false, 1, { -0.26, -3.59, 0.13 } },
      { "uniform_average", 0, -0.12 }, { "variance_weighted_average", 0, -0.12 } } do
      local m = metrics.R2Score { class_aggregation = c[1], num_regressors = c[2] }
      m:update_state(R2T, yp)
      near(c[3], m:result(), 1e-6, tostring(c[1]) .. " " .. c[2])
    end
  end)

  it("R2Score: test_r2_tfa_comparison (sample weights, adjusted R2)", function()
    local yp = { { 0.4, 0.9, 1.6 }, { 0.1, 1.2, 0.6 }, { 1.5, 0.8, 0.6 } }
    local stderr = io.stderr
    io.stderr = { write = function() end }   -- the n - 1 == num_regressors cases warn
    local ok, err = pcall(function()
      for _, c in ipairs {
        { false, 0, { 0.17305559, -8.836666, -0.521 } }, { false, 1, { -0.65388882, -18.673332, -2.042 } },
        { false, 2, { 0.17305559, -8.836666, -0.521 } },
        { "uniform_average", 0, -3.0615367889404297 }, { "uniform_average", 1, -7.123073577880859 },
        { "uniform_average", 2, -3.0615367889404297 },
        { "variance_weighted_average", 0, -1.3710224628448486 }, { "variance_weighted_average", 1, -3.742044448852539 },
        { "variance_weighted_average", 2, -1.3710224628448486 },
      } do
        local m = metrics.R2Score { class_aggregation = c[1], num_regressors = c[2] }
        m:update_state(R2T, yp, { 0.8, 0.1, 0.4 })
        near(c[3], m:result(), 1e-5, tostring(c[1]) .. " " .. c[2])
      end
    end)
    io.stderr = stderr
    assert(ok, err)
  end)

  it("R2Score: test_errors and test_config", function()
    helpers.raises("Invalid value for argument `class_aggregation`", metrics.R2Score, { class_aggregation = "wrong" })
    helpers.raises("Invalid value for argument `num_regressors`", metrics.R2Score, { num_regressors = -1 })
    helpers.raises("expects 2D inputs with shape", function() metrics.R2Score():update_state({ 0.0, 1.0 }, { 0.0, 1.0 }) end)
    local m = metrics.R2Score { class_aggregation = false, num_regressors = 2, dtype = "float32" }
    local back = metrics.R2Score.from_config(m:get_config())
    assert.is_false(back.class_aggregation)
    assert.are.equal(2, back.num_regressors)
    assert.are.same({ "num_samples" }, names(m.variables))
    m:update_state(R2T, R2T)
    assert.are.same({ "num_samples", "squared_sum", "sum", "residual", "count" }, names(m.variables))
    near(3, m.num_samples)
    near({ 3, 3, 3 }, m.count)
    near({ 0, 0, 0 }, m.total_mse)
  end)
end)

describe("correlation metrics (correlation_metrics_test.py)", function()
  local YT = { { 0, 1, 0.5 }, { 1, 1, 0.2 }, { 1, 1, 0.1 }, { 0.1, 0.7, 0.0 } }
  local YP = { { 0.1, 0.9, 0.5 }, { 1, 0.9, 0.2 }, { 0.2, 0.8, 0 }, { 0.3, 0.3, 0.9 } }
  local PCC = { 1, 0.99339927, 0.69337525, -0.60999428 }
  local CCC = { 0.97560976, 0.98765432, 0.46511628, -0.46376812 }

  it("pearson_correlation and concordance_correlation: test_pearson_function, test_concordance_function", function()
    near(PCC, metrics.pearson_correlation(YT, YP, -1), 1e-6)
    near(CCC, metrics.concordance_correlation(YT, YP, -1), 1e-6)
  end)

  it("PearsonCorrelation and ConcordanceCorrelation stream the mean: test_pearson_class, test_concordance_class, test_*_config", function()
    local p, c = metrics.PearsonCorrelation { axis = -1 }, metrics.ConcordanceCorrelation { axis = -1 }
    near((PCC[1] + PCC[2]) / 2, p({ YT[1], YT[2] }, { YP[1], YP[2] }), 1e-6)
    near((PCC[1] + PCC[2] + PCC[3] + PCC[4]) / 4, p({ YT[3], YT[4] }, { YP[3], YP[4] }), 1e-6)
    near((CCC[1] + CCC[2]) / 2, c({ YT[1], YT[2] }, { YP[1], YP[2] }), 1e-6)
    near((CCC[1] + CCC[2] + CCC[3] + CCC[4]) / 4, c({ YT[3], YT[4] }, { YP[3], YP[4] }), 1e-6)
    local cfg = metrics.PearsonCorrelation { axis = -1, dtype = "float16" }:get_config()
    assert.are.same({ name = "pearson_correlation", dtype = "float16", axis = -1 }, cfg)
    assert.are.equal("concordance_correlation", metrics.ConcordanceCorrelation():get_config().name)
  end)
end)

describe("hinge and probabilistic metrics (hinge_metrics_test.py, probabilistic_metrics_test.py)", function()
  it("Hinge, SquaredHinge, CategoricalHinge: test_unweighted, test_weighted", function()
    local yp = { { -0.3, 0.2, -0.1, 1.6 }, { -0.25, -1.0, 0.5, 0.6 } }
    near(0.506, metrics.Hinge()({ { 0, 1, 0, 1 }, { 0, 0, 1, 1 } }, yp), 1e-3, "hinge")
    near(0.493, metrics.Hinge()({ { -1, 1, -1, 1 }, { -1, -1, 1, 1 } }, yp, { 1.5, 2.0 }), 1e-3, "hinge weighted")
    near(0.364, metrics.SquaredHinge()({ { 0, 1, 0, 1 }, { 0, 0, 1, 1 } }, yp), 1e-3, "squared hinge")
    near(0.347, metrics.SquaredHinge()({ { -1, 1, -1, 1 }, { -1, -1, 1, 1 } }, yp, { 1.5, 2.0 }), 1e-3, "squared hinge weighted")
    local yt = { { 0, 1, 0, 1, 0 }, { 0, 0, 1, 1, 1 }, { 1, 1, 1, 1, 0 }, { 0, 0, 0, 0, 1 } }
    local yp2 = { { 0, 0, 1, 1, 0 }, { 1, 1, 1, 1, 1 }, { 0, 1, 0, 1, 0 }, { 1, 1, 1, 1, 1 } }
    near(0.5, metrics.CategoricalHinge()(yt, yp2), 1e-5, "categorical hinge")
    near(0.5, metrics.CategoricalHinge()(yt, yp2, { 1.0, 1.5, 2.0, 2.5 }), 1e-5, "categorical hinge weighted")
  end)

  it("KLDivergence and Poisson: test_unweighted, test_weighted", function()
    local yp, yt = { { 0.4, 0.9, 0.12 }, { 0.36, 0.3, 0.4 } }, { { 0.5, 0.8, 0.12 }, { 0.7, 0.43, 0.8 } }
    near(0.5960738399, metrics.KLDivergence()(yt, yp), 1e-3, "kld")
    near(0.8728570320, metrics.KLDivergence()(yt, yp, { { 1.2 }, { 3.4 } }), 1e-3, "kld weighted")
    local pp, pt = { { 1, 9, 2 }, { 5, 2, 6 } }, { { 4, 8, 12 }, { 8, 1, 3 } }
    near(-3.3065819455, metrics.Poisson()(pt, pp), 1e-3, "poisson")
    near(-2.6727560551, metrics.Poisson()(pt, pp, { { 1.2 }, { 3.4 } }), 1e-3, "poisson weighted")
  end)

  it("BinaryCrossentropy: test_unweighted, test_unweighted_with_logits, test_weighted, test_weighted_from_logits, test_label_smoothing", function()
    local yt, yp = { { 1, 0 }, { 1, 0 } }, { { 1, 1 }, { 1, 0 } }
    near(3.9855, metrics.BinaryCrossentropy()(yt, yp), 1e-3, "unweighted")
    near(3.4162, metrics.BinaryCrossentropy()(yt, yp, { 1.5, 2.0 }), 1e-3, "weighted")
    local lt, lp = { { 1, 0, 1 }, { 0, 1, 1 } }, { { 10, -10, 10 }, { 10, 10, -10 } }
    near(3.333, metrics.BinaryCrossentropy { from_logits = true }(lt, lp), 1e-3, "logits")
    near(3.7037, metrics.BinaryCrossentropy { from_logits = true }(lt, lp, { 2.0, 2.5 }), 1e-3, "logits weighted")
    near((10 + 5 * 0.1) / 3, metrics.BinaryCrossentropy { from_logits = true, label_smoothing = 0.1 }({ 1, 0, 1 }, { 10, -10, -10 }), 1e-3, "smoothing")
  end)

  it("CategoricalCrossentropy: test_unweighted, test_unweighted_from_logits, test_weighted, test_weighted_from_logits, test_label_smoothing", function()
    local yt, yp = { { 0, 1, 0 }, { 0, 0, 1 } }, { { 0.05, 0.95, 0 }, { 0.1, 0.8, 0.1 } }
    local logits = { { 1, 9, 0 }, { 1, 8, 1 } }
    near(1.176, metrics.CategoricalCrossentropy()(yt, yp), 1e-3)
    near(3.5011, metrics.CategoricalCrossentropy { from_logits = true }(yt, logits), 1e-3)
    near(1.338, metrics.CategoricalCrossentropy()(yt, yp, { 1.5, 2.0 }), 1e-3)
    near(4.0012, metrics.CategoricalCrossentropy { from_logits = true }(yt, logits, { 1.5, 2.0 }), 1e-3)
    near(3.667, metrics.CategoricalCrossentropy { from_logits = true, label_smoothing = 0.1 }(yt, logits), 1e-3)
  end)

  it("SparseCategoricalCrossentropy: test_unweighted, test_weighted (and from logits), test_ignore_class, test_ignore_class_weighted, test_ignore_class_from_logits", function()
    local yp, logits = { { 0.05, 0.95, 0 }, { 0.1, 0.8, 0.1 } }, { { 1, 9, 0 }, { 1, 8, 1 } }
    near(1.176, metrics.SparseCategoricalCrossentropy()({ 1, 2 }, yp), 1e-3)
    near(3.5011, metrics.SparseCategoricalCrossentropy { from_logits = true }({ 1, 2 }, logits), 1e-3)
    near(1.338, metrics.SparseCategoricalCrossentropy()({ 1, 2 }, yp, { 1.5, 2.0 }), 1e-3)
    near(4.0012, metrics.SparseCategoricalCrossentropy { from_logits = true }({ 1, 2 }, logits, { 1.5, 2.0 }), 1e-3)
    local yp3 = { { 0.8, 0.1, 0.1 }, { 0.05, 0.95, 0 }, { 0.1, 0.8, 0.1 } }
    -- unweighted, an ignored sample counts as a 0 (Keras applies the mask only to given weights)
    near(0.78462, metrics.SparseCategoricalCrossentropy { ignore_class = 0 }({ 0, 1, 2 }, yp3), 1e-3, "ignore")
    near(1.33774646, metrics.SparseCategoricalCrossentropy { ignore_class = 0 }({ 0, 1, 2 }, yp3, { 0.5, 1.5, 2.0 }), 1e-3, "ignore weighted")
    near(2.33409, metrics.SparseCategoricalCrossentropy { from_logits = true, ignore_class = 0 }(
      { 0, 1, 2 }, { { 10, 1, 1 }, { 1, 9, 0 }, { 1, 8, 1 } }), 1e-3, "ignore logits")
  end)
end)

describe("every Keras 3 metric", function()
  -- keras/src/metrics/__init__.py's ALL_OBJECTS, each with arguments it needs
  local ALL = {
    Mean = {}, Sum = {}, MeanSquaredError = {}, RootMeanSquaredError = {}, MeanAbsoluteError = {},
    MeanAbsolutePercentageError = {}, MeanSquaredLogarithmicError = {}, CosineSimilarity = { axis = -1 }, LogCoshError = {},
    R2Score = { class_aggregation = "variance_weighted_average", num_regressors = 1 },
    AUC = { num_thresholds = 50, curve = "PRGAIN", multi_label = true, num_labels = 3, label_weights = { 1, 2, 3 } },
    FalseNegatives = { thresholds = { 0.2, 0.7 } }, FalsePositives = {}, TrueNegatives = { thresholds = 0.3 }, TruePositives = {},
    Precision = { top_k = 2 }, Recall = { thresholds = { 0.5, 0.1 }, class_id = 1 },
    PrecisionAtRecall = { recall = 0.5 }, RecallAtPrecision = { precision = 0.5, num_thresholds = 7 },
    SensitivityAtSpecificity = { specificity = 0.5, class_id = 2 }, SpecificityAtSensitivity = { sensitivity = 0.5 },
    ConcordanceCorrelation = {}, PearsonCorrelation = { axis = -2 },
    Hinge = {}, SquaredHinge = {}, CategoricalHinge = {},
    KLDivergence = {}, Poisson = {}, BinaryCrossentropy = { from_logits = true, label_smoothing = 0.2 },
    CategoricalCrossentropy = { label_smoothing = 0.1 }, SparseCategoricalCrossentropy = { ignore_class = 3 },
    Accuracy = {}, BinaryAccuracy = { threshold = 0.7 }, CategoricalAccuracy = {}, SparseCategoricalAccuracy = {},
    TopKCategoricalAccuracy = { k = 3 }, SparseTopKCategoricalAccuracy = { k = 2, from_sorted_ids = true },
    F1Score = { average = "macro" }, FBetaScore = { beta = 2.0, threshold = 0.4 },
    IoU = { num_classes = 3, target_class_ids = { 2 } }, BinaryIoU = { threshold = 0.3 }, MeanIoU = { num_classes = 4, ignore_class = 0 },
    OneHotIoU = { num_classes = 3, target_class_ids = { 0, 1 } }, OneHotMeanIoU = { num_classes = 3, sparse_y_pred = true },
  }

  it("exists, and its get_config round-trips: Cls(config) has the same config, also through JSON", function()
    local count = 0
    for name, args in pairs(ALL) do
      local cls = metrics[name]
      assert.is_not_nil(cls, name)
      local cfg = cls(args):get_config()
      for k, v in pairs(args) do assert.are.same(v, cfg[k], name .. "." .. k) end
      assert.are.same(cfg, cls(cfg):get_config(), name)
      assert.are.same(cfg, cls.from_config(klua.json.decode(klua.json.encode(cfg))):get_config(), name .. " via JSON")
      assert.are.same(cfg, metrics.get(metrics.serialize(cls(args))):get_config(), name .. " via get")
      count = count + 1
    end
    assert.are.equal(44, count)   -- Keras's ALL_OBJECTS but Metric and MeanMetricWrapper
  end)

  it("is found by its Keras names", function()
    for id, cls in pairs {
      mean_iou = "MeanIoU", mean_io_u = "MeanIoU", iou = "IoU", binary_iou = "BinaryIoU", one_hot_iou = "OneHotIoU",
      one_hot_mean_iou = "OneHotMeanIoU", r2_score = "R2Score", pearson_correlation = "PearsonCorrelation",
      concordance_correlation = "ConcordanceCorrelation", logcosh = "LogCoshError", log_cosh_error = "LogCoshError",
      cosine_similarity = "CosineSimilarity", hinge = "Hinge", squared_hinge = "SquaredHinge", categorical_hinge = "CategoricalHinge",
      kl_divergence = "KLDivergence", poisson = "Poisson", mape = "MeanAbsolutePercentageError", MSLE = "MeanSquaredLogarithmicError",
      bce = "BinaryCrossentropy", binary_crossentropy = "BinaryCrossentropy", categorical_crossentropy = "CategoricalCrossentropy",
      sparse_categorical_crossentropy = "SparseCategoricalCrossentropy", true_positives = "TruePositives",
      false_negatives = "FalseNegatives", precision_at_recall = "PrecisionAtRecall", specificity_at_sensitivity = "SpecificityAtSensitivity",
      TrueNegatives = "TrueNegatives", OneHotMeanIoU = "OneHotMeanIoU",
    } do
      local args = ({ MeanIoU = { num_classes = 2 }, IoU = { num_classes = 2, target_class_ids = { 0 } }, OneHotIoU = { num_classes = 2, target_class_ids = { 0 } },
        OneHotMeanIoU = { num_classes = 2 }, PrecisionAtRecall = { recall = 0.5 }, SpecificityAtSensitivity = { sensitivity = 0.5 } })[cls]
      local m = args and metrics.get { class_name = id, config = args } or metrics.get(id)
      assert.is_true(klua.class.is_instance(m, metrics[cls]), id)
    end
    helpers.raises("MeanIoU: `num_classes` must be a positive integer", metrics.get, "mean_iou")
  end)

  it("lists its state in `variables`: Mean's total and count, scalars", function()
    local m = metrics.Mean()
    m:update_state({ 1, 3, 5, 7 })
    assert.are.same({ "total", "count" }, names(m.variables))
    near(16, m.variables[1])
    near(4, m.count)
    assert.is_false(m.variables[1].trainable)
    assert.are.same({ "total" }, names(metrics.Sum().variables))
  end)
end)
