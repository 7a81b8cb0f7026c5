-- metrics_spec.lua — every metric's result against Keras 3's docstring
-- examples and, for AUC and the F-scores, values computed once from Keras's
-- formulas (tests/reference/gen_metric_refs.py); the update/result/reset
-- protocol, sample weights, lookup by name and errors.
local klua = require("klua")
local helpers = require("helpers")
local metrics = klua.metrics

-- near(expected, actual, tol=1e-6, what): a metric's result (a number, or a
-- tensor read as a flat list) within the absolute tolerance tol.
local function near(expected, actual, tol, what)
  if type(actual) ~= "number" then actual = helpers.values(actual) end
  helpers.near(actual, expected, { rtol = 0, atol = tol or 1e-6 }, what or "result")
end

describe("Mean and Sum", function()
  it("average and add values, weighted or not", function()
    local m = metrics.Mean()
    m:update_state({ 1, 3, 5, 7 })
    near(4, m:result())
    m:reset_state()
    m:update_state({ 1, 3, 5, 7 }, { 1, 1, 0, 0 })
    near(2, m:result())
    local s = metrics.Sum()
    s:update_state({ 1, 3, 5, 7 })
    near(16, s:result())
    s:reset_state()
    s:update_state({ 1, 3, 5, 7 }, { 1, 1, 0, 0 })
    near(4, s:result())
  end)

  it("track a running loss when called, as loss_metric(loss) in the guide", function()
    local tracker = metrics.Mean { name = "loss" }
    assert.are.equal("loss", tracker.name)
    near(0, tracker:result(), 0, "empty")
    near(2, tracker(klua.tensor(2)))
    near(3, tracker(4))
    near(4, tracker(klua.tensor(5), 2))     -- (2 + 4 + 5 * 2) / 4
  end)

  it("reduce multi-dimensional values per sample first", function()
    local m = metrics.Mean()
    m:update_state({ { 1, 3 }, { 5, 7 } }, { 1, 0 })
    near(2, m:result())
  end)

  it("do not record on a tape", function()
    local w = klua.Variable({ 1, 2 })
    local m = metrics.Mean()
    local tape = klua.GradientTape()
    tape:start()
    local y = klua.ops.sum(w * 2)
    local before = tape:size()
    m:update_state(w * 3)
    tape:stop()
    assert.are.equal(before + 1, tape:size())    -- only w * 3, not the metric's ops
    assert.is_not_nil(y)
  end)
end)

describe("accuracy metrics", function()
  it("Accuracy counts exact matches", function()
    local m = metrics.Accuracy()
    m:update_state({ { 1 }, { 2 }, { 3 }, { 4 } }, { { 0 }, { 2 }, { 3 }, { 4 } })
    near(0.75, m:result())
    m:reset_state()
    m:update_state({ { 1 }, { 2 }, { 3 }, { 4 } }, { { 0 }, { 2 }, { 3 }, { 4 } }, { 1, 1, 0, 0 })
    near(0.5, m:result())
  end)

  it("BinaryAccuracy thresholds predictions", function()
    local m = metrics.BinaryAccuracy()
    m:update_state({ { 1 }, { 1 }, { 0 }, { 0 } }, { { 0.98 }, { 1 }, { 0 }, { 0.6 } })
    near(0.75, m:result())
    m:reset_state()
    m:update_state({ { 1 }, { 1 }, { 0 }, { 0 } }, { { 0.98 }, { 1 }, { 0 }, { 0.6 } }, { 1, 0, 0, 1 })
    near(0.5, m:result())
    near(1, metrics.BinaryAccuracy { threshold = 0.7 }({ { 1 }, { 0 } }, { { 0.8 }, { 0.6 } }))
    local ok, err = pcall(metrics.BinaryAccuracy, { threshold = 1.5 })
    assert.is_false(ok)
    assert.matches("BinaryAccuracy: invalid value for argument `threshold`", err)
  end)

  it("CategoricalAccuracy and SparseCategoricalAccuracy compare argmaxes", function()
    local yp = { { 0.1, 0.9, 0.8 }, { 0.05, 0.95, 0 } }
    near(0.5, metrics.CategoricalAccuracy()({ { 0, 0, 1 }, { 0, 1, 0 } }, yp))
    near(0.3, metrics.CategoricalAccuracy()({ { 0, 0, 1 }, { 0, 1, 0 } }, yp, { 0.7, 0.3 }))
    local s = { { 0.1, 0.6, 0.3 }, { 0.05, 0.95, 0 } }
    near(0.5, metrics.SparseCategoricalAccuracy()({ { 2 }, { 1 } }, s))
    near(0.3, metrics.SparseCategoricalAccuracy()({ { 2 }, { 1 } }, s, { 0.7, 0.3 }))
    near(0.5, metrics.SparseCategoricalAccuracy()({ 2, 1 }, s))
  end)

  it("the top-k accuracies count ties with the k-th score as hits", function()
    local yp = { { 0.1, 0.9, 0.8 }, { 0.05, 0.95, 0 } }
    near(0.5, metrics.TopKCategoricalAccuracy { k = 1 }({ { 0, 0, 1 }, { 0, 1, 0 } }, yp))
    near(0.3, metrics.TopKCategoricalAccuracy { k = 1 }({ { 0, 0, 1 }, { 0, 1, 0 } }, yp, { 0.7, 0.3 }))
    near(1, metrics.TopKCategoricalAccuracy { k = 2 }({ { 0, 0, 1 }, { 0, 1, 0 } }, yp))
    near(0.5, metrics.SparseTopKCategoricalAccuracy { k = 1 }({ 2, 1 }, yp))
    near(0.3, metrics.SparseTopKCategoricalAccuracy { k = 1 }({ 2, 1 }, yp, { 0.7, 0.3 }))
    near(1, metrics.SparseTopKCategoricalAccuracy { k = 1 }({ 0, 2 }, { { 0.5, 0.5, 0 }, { 0.2, 0.4, 0.4 } }))
    near(0, metrics.SparseTopKCategoricalAccuracy { k = 5 }({ 7 }, { { 0.5, 0.5, 0 } }), 0, "out of range label")
  end)
end)

describe("regression metrics", function()
  local yt, yp = { { 0, 1 }, { 0, 0 } }, { { 1, 1 }, { 0, 0 } }

  it("MeanSquaredError, MeanAbsoluteError and RootMeanSquaredError", function()
    near(0.25, metrics.MeanSquaredError()(yt, yp))
    near(0.25, metrics.MeanAbsoluteError()(yt, yp))
    near(0.5, metrics.RootMeanSquaredError()(yt, yp))
    near(math.sqrt(0.5), metrics.RootMeanSquaredError()(yt, yp, { 1, 0 }))   -- only the first sample, mean error 0.5
    local m = metrics.MeanSquaredError()
    m:update_state(yt, yp)
    m:update_state({ { 2, 2 } }, { { 0, 0 } })
    near((0.5 + 0 + 4) / 3, m:result())
  end)
end)

describe("confusion metrics", function()
  it("Precision and Recall at the default threshold", function()
    near(2 / 3, metrics.Precision()({ 0, 1, 1, 1 }, { 1, 0, 1, 1 }))
    near(1, metrics.Precision()({ 0, 1, 1, 1 }, { 1, 0, 1, 1 }, { 0, 0, 1, 0 }))
    near(2 / 3, metrics.Recall()({ 0, 1, 1, 1 }, { 1, 0, 1, 1 }))
    near(1, metrics.Recall()({ 0, 1, 1, 1 }, { 1, 0, 1, 1 }, { 0, 0, 1, 0 }))
  end)

  it("Precision with top_k and class_id, Recall at several thresholds", function()
    near(0, metrics.Precision { top_k = 2 }({ 0, 0, 1, 1 }, { 1, 1, 1, 1 }))
    near(0.5, metrics.Precision { top_k = 4 }({ 0, 0, 1, 1 }, { 1, 1, 1, 1 }))
    local yt = { { 0, 1, 0 }, { 1, 0, 0 }, { 0, 1, 0 } }
    local yp = { { 0.2, 0.7, 0.1 }, { 0.6, 0.3, 0.1 }, { 0.5, 0.4, 0.1 } }
    near(1, metrics.Precision { class_id = 1 }(yt, yp))       -- class 1 predicted once, correctly
    near(0.5, metrics.Recall { class_id = 1 }(yt, yp))        -- found 1 of its 2
    near({ 1, 0.5, 0 }, metrics.Recall { thresholds = { 0, 0.5, 0.9 } }({ 1, 1, 0, 0 }, { 0.3, 0.8, 0.6, 0.1 }))
    near({ 0, 1, 0.5 }, metrics.Recall { thresholds = { 0.9, 0, 0.5 } }({ 1, 1, 0, 0 }, { 0.3, 0.8, 0.6, 0.1 }), 1e-6, "unsorted")
  end)

  it("AUC matches the docstring", function()
    local m = metrics.AUC { num_thresholds = 3 }
    near(0.75, m({ 0, 0, 1, 1 }, { 0, 0.5, 0.3, 0.9 }))
    m:reset_state()
    near(1, m({ 0, 0, 1, 1 }, { 0, 0.5, 0.3, 0.9 }, { 1, 0, 0, 1 }))
  end)

  -- {num_thresholds, curve, summation_method, AUC, AUC with weights W}
  local AUCS = {
    { 5, "ROC", "interpolation", 0.86, 0.7784090909 },
    { 5, "ROC", "minoring", 0.8, 0.6931818182 },
    { 5, "ROC", "majoring", 0.92, 0.8636363636 },
    { 5, "PR", "interpolation", 0.8608531975, 0.8281516594 },
    { 5, "PR", "minoring", 0.4357142857, 0.5357142857 },
    { 5, "PR", "majoring", 0.9, 0.9107142857 },
    { 200, "ROC", "interpolation", 0.8, 0.6931818182 },
    { 200, "PR", "interpolation", 0.8078746909, 0.7549484791 },
    { 200, "PR", "minoring", 0.5866666667, 0.5712719298 },
    { 200, "PR", "majoring", 0.8261904762, 0.7973057644 },
  }
  local Y = { 0, 1, 1, 0, 1, 0, 1, 1, 0, 0 }
  local P = { 0.1, 0.35, 0.8, 0.4, 0.9, 0.05, 0.55, 0.3, 0.7, 0.2 }
  local W = { 1, 2, 1, 0.5, 1, 1, 3, 1, 2, 1 }
  for _, c in ipairs(AUCS) do
    it(("AUC %s/%s with %d thresholds matches Keras's formula"):format(c[2], c[3], c[1]), function()
      local m = metrics.AUC { num_thresholds = c[1], curve = c[2], summation_method = c[3] }
      m:update_state(Y, P)
      near(c[4], m:result(), 1e-6, "unweighted")
      m:reset_state()
      -- two batches accumulate like one
      m:update_state({ unpack(Y, 1, 4) }, { unpack(P, 1, 4) }, { unpack(W, 1, 4) })
      m:update_state({ unpack(Y, 5) }, { unpack(P, 5) }, { unpack(W, 5) })
      near(c[5], m:result(), 1e-6, "weighted")
    end)
  end

  it("AUC takes logits with from_logits", function()
    local logits = {}
    for i, p in ipairs(P) do logits[i] = math.log(p / (1 - p)) end
    near(0.86, metrics.AUC { num_thresholds = 5, from_logits = true }(Y, logits), 1e-6)
  end)
end)

describe("F-scores", function()
  local yt = { { 1, 1, 1 }, { 1, 0, 0 }, { 1, 1, 0 } }
  local yp = { { 0.2, 0.6, 0.7 }, { 0.2, 0.6, 0.6 }, { 0.6, 0.8, 0.0 } }

  it("F1Score per class matches the docstring", function()
    near({ 0.5, 0.8, 0.6666667 }, metrics.F1Score { threshold = 0.5 }(yt, yp), 1e-6)
  end)

  it("F1Score averages micro, macro and weighted", function()
    near(0.6666666056, metrics.F1Score { threshold = 0.5, average = "micro" }(yt, yp), 1e-6, "micro")
    near(0.6555554784, metrics.F1Score { threshold = 0.5, average = "macro" }(yt, yp), 1e-6, "macro")
    near(0.6277776946, metrics.F1Score { threshold = 0.5, average = "weighted" }(yt, yp), 1e-6, "weighted")
    near({ 0, 0.499999925, 0.6666665778 }, metrics.F1Score()(yt, yp), 1e-6, "argmax")
  end)

  it("FBetaScore weighs recall by beta, with sample weights", function()
    near({ 0.172413783, 0.7894736136, 0.7142856327 }, metrics.FBetaScore { beta = 2.0, threshold = 0.5 }(yt, yp, { 1, 2, 0.5 }), 1e-6)
  end)

  it("expects 2-D inputs", function()
    local ok, err = pcall(function() return metrics.F1Score()({ 1, 0 }, { 0.3, 0.6 }) end)
    assert.is_false(ok)
    assert.matches("F1Score expects 2D inputs with shape %(batch_size, output_dim%)", err)
  end)
end)

describe("metric lookup", function()
  it("finds metrics by name, including accuracy and acc", function()
    for name, cls in pairs { accuracy = "Accuracy", acc = "Accuracy", binary_accuracy = "BinaryAccuracy",
      categorical_accuracy = "CategoricalAccuracy", sparse_categorical_accuracy = "SparseCategoricalAccuracy",
      top_k_categorical_accuracy = "TopKCategoricalAccuracy", sparse_top_k_categorical_accuracy = "SparseTopKCategoricalAccuracy",
      mse = "MeanSquaredError", mae = "MeanAbsoluteError", rmse = "RootMeanSquaredError", precision = "Precision",
      recall = "Recall", auc = "AUC", AUC = "AUC", f1_score = "F1Score", mean = "Mean", Sum = "Sum" } do
      assert.is_true(klua.class.is_instance(metrics.get(name), metrics[cls]), name)
    end
    local acc = metrics.SparseCategoricalAccuracy()
    assert.are.equal(acc, metrics.get(acc))
    local ok, err = pcall(metrics.get, "acuracy")
    assert.is_false(ok)
    assert.matches("metrics.get: unknown metric 'acuracy'", err)
    assert.are.equal(5, metrics.get(metrics.serialize(metrics.TopKCategoricalAccuracy { k = 5 })).k)
  end)

  it("wraps any per-sample function with MeanMetricWrapper", function()
    local m = metrics.MeanMetricWrapper(function(t, p) return klua.ops.abs(klua.tensor(t) - p) end, { name = "abs" })
    near(1.5, m({ 1, 2 }, { 0, 4 }))
    assert.are.equal("abs", m.name)
  end)
end)
