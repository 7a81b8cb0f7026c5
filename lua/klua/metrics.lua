-- metrics.lua — klua.metrics: Keras's streaming metrics. Each keeps running
-- totals (update_state / result / reset_state); calling a metric updates it
-- and returns the running result as a tensor. Per-element work runs in C:
-- ops for the accuracies and means, src/kernels/metrics.c for confusion
-- counts (Precision, Recall, AUC) and top-k hits. Semantics follow
-- keras/src/metrics/*.py.
--   local acc = klua.metrics.SparseCategoricalAccuracy()
--   acc:update_state(labels, logits); print(acc:result():item())
local ffi = require("ffi")
local core = require("klua.core")
local registry = require("klua.registry")
local tensor = require("klua.tensor")
local ops = require("klua.ops")
local class = require("klua.class")
local losses = require("klua.losses")
local nn = require("klua.nn")
local no_grad = require("klua.no_grad")  -- metric updates never belong on a tape
local raise, T, is_tensor = core.raise, tensor.T, core.is_tensor
local sum_all = tensor.sum_all
local same_rank = losses.squeeze_or_expand_to_same_rank

local metrics = {}
local EPSILON = 1e-7   -- keras.backend.epsilon()
local NEG_INF = -1e10  -- keras metrics_utils.NEG_INF

local function range(a, b)
  local r = {}
  for i = a, b do r[#r + 1] = i end
  return r
end

local function last_dim(x) return x.nd > 0 and tonumber(x.dims[x.nd - 1]) or 1 end

-- The base class ------------------------------------------------------------------

local Metric = class("Metric")
metrics.Metric = Metric

function Metric:__init(kw)
  kw = kw or {}
  self.name = kw.name or getmetatable(self).default_name or "metric"
  self.dtype = "float32"
end
function Metric:update_state() raise(getmetatable(self).__name .. ": update_state is not defined") end
function Metric:result() raise(getmetatable(self).__name .. ": result is not defined") end
function Metric:reset_state() end
function Metric:get_config() return { name = self.name } end
function Metric.from_config(cls, cfg) return cls(cfg) end

--- metric(...): update_state(...) then the running result.
Metric.__call = function(self, ...)
  self:update_state(...)
  return self:result()
end
Metric.__tostring = function(self) return ("<%s name=%s>"):format(getmetatable(self).__name, tostring(self.name)) end

-- Keras's reduce_to_samplewise_values: weight, then reduce to one value per sample.
local function samplewise(values, sw, reduce)
  if sw ~= nil then
    values, sw = same_rank(values, sw)
    local wn, vn = sw.nd, values.nd
    if vn > wn then values = reduce(values, range(wn + 1, vn)) end
    if not tensor.same_shape(sw, values) then
      local ok, b = pcall(ops.broadcast_to, sw, values:shape())
      if not ok then
        raise(("metric: sample_weight of shape %s does not fit values of shape %s"):format(
          core.shape_str(sw:shape()), core.shape_str(values:shape())))
      end
      sw = b
    end
    values = values * sw
    if wn > 1 then sw = reduce(sw, range(2, wn)) end
  end
  if values.nd > 1 then values = reduce(values, range(2, values.nd)) end
  return values, sw
end

-- Mean and Sum ------------------------------------------------------------------------

--- Mean{name=}: the (weighted) mean of the values seen.
local Mean = Metric:extend("Mean")
Mean.default_name = "mean"
metrics.Mean = Mean

function Mean:__init(kw)
  Metric.__init(self, kw)
  self.total, self.count = 0, 0
end

local function mean_update(self, values, sample_weight)
  if sample_weight == nil and type(values) == "number" then
    self.total, self.count = self.total + values, self.count + 1
    return
  end
  if type(sample_weight) == "number" and (type(values) == "number" or (is_tensor(values) and values.nd == 0)) then
    local v = type(values) == "number" and values or values:item()
    self.total, self.count = self.total + v * sample_weight, self.count + sample_weight
    return
  end
  values = T(values)
  local sw = sample_weight ~= nil and T(sample_weight) or nil
  values, sw = samplewise(values, sw, ops.mean)
  self.total = self.total + sum_all(values)
  if sw ~= nil then self.count = self.count + sum_all(sw)
  elseif values.nd >= 1 then self.count = self.count + tonumber(values.dims[0])
  else self.count = self.count + 1 end
end

function Mean:update_state(values, sample_weight) no_grad(mean_update, self, values, sample_weight) end
function Mean:reset_state() self.total, self.count = 0, 0 end
function Mean:_value() return self.count ~= 0 and self.total / self.count or 0 end
function Mean:result() return T(self:_value()) end

--- Sum{name=}: the (weighted) sum of the values seen.
local Sum = Metric:extend("Sum")
Sum.default_name = "sum"
metrics.Sum = Sum

function Sum:__init(kw) Metric.__init(self, kw); self.total = 0 end
function Sum:update_state(values, sample_weight)
  no_grad(function()
    if sample_weight == nil and type(values) == "number" then self.total = self.total + values; return end
    local v = samplewise(T(values), sample_weight ~= nil and T(sample_weight) or nil, ops.sum)
    self.total = self.total + sum_all(v)
  end)
end
function Sum:reset_state() self.total = 0 end
function Sum:result() return T(self.total) end

--- MeanMetricWrapper(fn, {name=, ...fn options}): the mean of fn(y_true, y_pred).
local MeanMetricWrapper = Mean:extend("MeanMetricWrapper")
metrics.MeanMetricWrapper = MeanMetricWrapper

function MeanMetricWrapper:__init(fn, kw)
  if type(fn) ~= "function" then raise("MeanMetricWrapper: expected a function, got " .. type(fn)) end
  kw = kw or {}
  Mean.__init(self, kw)
  self.fn = fn
  self.fn_kwargs = {}
  for k, v in pairs(kw) do if k ~= "name" and k ~= "dtype" then self.fn_kwargs[k] = v end end
end

function MeanMetricWrapper:update_state(y_true, y_pred, sample_weight)
  if y_true == nil or y_pred == nil then raise(getmetatable(self).__name .. ".update_state: expected (y_true, y_pred[, sample_weight])") end
  no_grad(function()
    local values, mask
    if next(self.fn_kwargs) then values, mask = self.fn(y_true, y_pred, self.fn_kwargs)
    else values, mask = self.fn(y_true, y_pred) end
    local sw = sample_weight ~= nil and T(sample_weight) or nil
    if mask ~= nil then
      if sw ~= nil then local m, w = same_rank(mask, sw); sw = w * m else sw = mask end
    end
    mean_update(self, T(values), sw)
  end)
end

-- Accuracy functions (per-sample values) -------------------------------------------

function metrics.accuracy(y_true, y_pred)
  local t, p = same_rank(T(y_true), T(y_pred))
  local eq = ops.equal(t, p)
  return eq.nd > 0 and ops.mean(eq, -1) or eq
end

function metrics.binary_accuracy(y_true, y_pred, threshold)
  threshold = type(threshold) == "table" and threshold.threshold or threshold or 0.5
  local t, p = same_rank(T(y_true), T(y_pred))
  local eq = ops.equal(t, ops.greater(p, threshold))
  return eq.nd > 0 and ops.mean(eq, -1) or eq
end

function metrics.categorical_accuracy(y_true, y_pred)
  return ops.equal(ops.argmax(T(y_true), -1), ops.argmax(T(y_pred), -1))
end

function metrics.sparse_categorical_accuracy(y_true, y_pred)
  local t, p = T(y_true), T(y_pred)
  local shape = t:shape()
  if t.nd == p.nd and last_dim(t) == 1 then t = ops.squeeze(t, -1) end
  local m = ops.equal(t, ops.argmax(p, -1))
  m = ops.reshape(m, shape)
  if m.nd > 1 and last_dim(m) == 1 then m = ops.squeeze(m, -1) end
  return m
end

local function in_top_k(targets, predictions, k)
  if type(k) ~= "number" or k < 1 or k ~= math.floor(k) then raise("top-k accuracy: k must be a positive integer, got " .. tostring(k)) end
  local c = last_dim(predictions)
  if predictions.nd ~= 2 then predictions = ops.reshape(predictions, { -1, c }) end
  return nn.in_top_k(targets, predictions, k)
end

function metrics.top_k_categorical_accuracy(y_true, y_pred, k)
  k = type(k) == "table" and k.k or k or 5
  local t = ops.argmax(T(y_true), -1)
  local m = in_top_k(t, T(y_pred), k)
  return t.nd == 1 and m or ops.reshape(m, t:shape())
end

function metrics.sparse_top_k_categorical_accuracy(y_true, y_pred, k)
  k = type(k) == "table" and k.k or k or 5
  local t = T(y_true)
  local m = in_top_k(t, T(y_pred), k)
  return t.nd <= 1 and m or ops.reshape(m, t:shape())
end

metrics.mean_squared_error, metrics.mse = losses.mean_squared_error, losses.mean_squared_error
metrics.mean_absolute_error, metrics.mae = losses.mean_absolute_error, losses.mean_absolute_error

-- Metric classes built on MeanMetricWrapper -----------------------------------------

local function mean_metric(name, default_name, fn, defaults)
  local cls = MeanMetricWrapper:extend(name)
  cls.default_name = default_name
  defaults = defaults or {}
  function cls:__init(kw)
    kw = kw or {}
    local o = { name = kw.name or default_name }
    for k, v in pairs(kw) do
      if k ~= "name" and k ~= "dtype" then
        if defaults[k] == nil then raise(("%s: unknown argument `%s`"):format(name, tostring(k))) end
        o[k] = v
      end
    end
    for k, v in pairs(defaults) do
      if o[k] == nil then o[k] = v end
      self[k] = o[k]
    end
    if self.validate then self:validate() end
    MeanMetricWrapper.__init(self, fn, o)
  end
  metrics[name] = cls
  return cls
end

mean_metric("Accuracy", "accuracy", metrics.accuracy)
local BinaryAccuracy = mean_metric("BinaryAccuracy", "binary_accuracy", metrics.binary_accuracy, { threshold = 0.5 })
function BinaryAccuracy:validate()
  if type(self.threshold) ~= "number" or self.threshold <= 0 or self.threshold >= 1 then
    raise(("BinaryAccuracy: invalid value for argument `threshold`, expected a value in (0, 1). Received: threshold=%s"):format(tostring(self.threshold)))
  end
end
mean_metric("CategoricalAccuracy", "categorical_accuracy", metrics.categorical_accuracy)
mean_metric("SparseCategoricalAccuracy", "sparse_categorical_accuracy", metrics.sparse_categorical_accuracy)
mean_metric("TopKCategoricalAccuracy", "top_k_categorical_accuracy", metrics.top_k_categorical_accuracy, { k = 5 })
mean_metric("SparseTopKCategoricalAccuracy", "sparse_top_k_categorical_accuracy", metrics.sparse_top_k_categorical_accuracy, { k = 5 })
mean_metric("MeanSquaredError", "mean_squared_error", losses.mean_squared_error)
mean_metric("MeanAbsoluteError", "mean_absolute_error", losses.mean_absolute_error)

--- RootMeanSquaredError: sqrt of the (weighted) mean of squared errors.
local RMSE = Mean:extend("RootMeanSquaredError")
RMSE.default_name = "root_mean_squared_error"
metrics.RootMeanSquaredError = RMSE
function RMSE:update_state(y_true, y_pred, sample_weight)
  no_grad(function()
    local t, p = same_rank(T(y_true), T(y_pred))
    mean_update(self, ops.square(p - t), sample_weight ~= nil and T(sample_weight) or nil)
  end)
end
function RMSE:result() return T(math.sqrt(self:_value())) end

-- Confusion-matrix metrics --------------------------------------------------------

local function check_thresholds(who, list)
  for _, t in ipairs(list) do
    if type(t) ~= "number" or t < 0 or t > 1 then
      raise(("%s: threshold values must be in [0, 1]. Received: %s"):format(who, tostring(t)))
    end
  end
end

local function doubles(list)
  local a = ffi.new("double[?]", #list)
  for i, v in ipairs(list) do a[i - 1] = v end
  return a
end

-- sample_weight shaped like y_pred (Keras: expand, match y_true's rank, broadcast).
local function weights_like(who, sw, t, p)
  sw = T(sw)
  if sw.count == p.count then return sw.nd == p.nd and sw or ops.reshape(sw, p:shape()) end
  local w = sw.nd > 0 and ops.expand_dims(sw, -1) or sw
  local _
  _, w = same_rank(t, w, false)
  local ok, b = pcall(ops.broadcast_to, w, p:shape())
  if not ok then
    raise(("%s: sample_weight of shape %s does not broadcast to predictions of shape %s"):format(
      who, core.shape_str(sw:shape()), core.shape_str(p:shape())))
  end
  return b
end

local function confusion_update(self, y_true, y_pred, sample_weight, preprocess)
  local who = getmetatable(self).__name
  local t, p = T(y_true), T(y_pred)
  p, t = same_rank(p, t)
  if t.count ~= p.count then
    raise(("%s: y_true %s and y_pred %s must have the same number of elements"):format(
      who, core.shape_str(t:shape()), core.shape_str(p:shape())))
  end
  if preprocess then p = preprocess(p) end
  local w = sample_weight ~= nil and weights_like(who, sample_weight, t, p) or nil
  nn.confusion_counts(t, p, w, self._n, self._thr, self.top_k or 0,
    self.class_id or -1, self._tp, self._fp, self._tn, self._fn)
end

local function confusion_init(self, thresholds)
  self._n = #thresholds
  self._thr = doubles(thresholds)
  self._tp = ffi.new("double[?]", self._n)
  self._fp = ffi.new("double[?]", self._n)
  self._tn = ffi.new("double[?]", self._n)
  self._fn = ffi.new("double[?]", self._n)
end

local function confusion_reset(self)
  for _, a in ipairs { self._tp, self._fp, self._tn, self._fn } do ffi.fill(a, 8 * self._n) end
end

local function per_threshold(self, f)
  local out = {}
  for i = 0, self._n - 1 do out[i + 1] = f(i) end
  if self._n == 1 then return T(out[1]) end
  return T(out)
end

local function no_nan_div(a, b) return b ~= 0 and a / b or 0 end

local function precision_recall(name, default_name, denom_of)
  local cls = Metric:extend(name)
  cls.default_name = default_name
  function cls:__init(kw)
    kw = kw or {}
    for k in pairs(kw) do
      if k ~= "thresholds" and k ~= "top_k" and k ~= "class_id" and k ~= "name" and k ~= "dtype" then
        raise(("%s: unknown argument `%s`"):format(name, tostring(k)))
      end
    end
    Metric.__init(self, kw)
    self.init_thresholds, self.top_k, self.class_id = kw.thresholds, kw.top_k, kw.class_id
    local thr = kw.thresholds
    if thr == nil then thr = { kw.top_k and NEG_INF or 0.5 }
    else
      if type(thr) == "number" then thr = { thr } end
      check_thresholds(name, thr)
    end
    self.thresholds = thr
    confusion_init(self, thr)
  end
  function cls:update_state(y_true, y_pred, sample_weight)
    no_grad(confusion_update, self, y_true, y_pred, sample_weight)
  end
  function cls:reset_state() confusion_reset(self) end
  function cls:result()
    return per_threshold(self, function(i) return no_nan_div(self._tp[i], self._tp[i] + denom_of(self, i)) end)
  end
  function cls:get_config() return { name = self.name, thresholds = self.init_thresholds, top_k = self.top_k, class_id = self.class_id } end
  metrics[name] = cls
  return cls
end

--- Precision{thresholds=, top_k=, class_id=}: tp / (tp + fp).
precision_recall("Precision", "precision", function(self, i) return self._fp[i] end)
--- Recall{thresholds=, top_k=, class_id=}: tp / (tp + fn).
precision_recall("Recall", "recall", function(self, i) return self._fn[i] end)

--- AUC{num_thresholds=200, curve="ROC"|"PR", summation_method="interpolation"|"minoring"|"majoring",
-- thresholds=, from_logits=false}: area under the ROC or PR curve from bucketed counts.
local AUC = Metric:extend("AUC")
AUC.default_name = "auc"
metrics.AUC = AUC

local function is_evenly_distributed(list)
  local n = #list
  if n < 3 then return false end
  for i = 1, n do
    if math.abs(list[i] - (i - 1) / (n - 1)) > EPSILON then return false end
  end
  return true
end

function AUC:__init(kw)
  kw = kw or {}
  local known = { num_thresholds = 1, curve = 1, summation_method = 1, name = 1, dtype = 1, thresholds = 1,
                  multi_label = 1, num_labels = 1, label_weights = 1, from_logits = 1 }
  for k in pairs(kw) do if not known[k] then raise(("AUC: unknown argument `%s`"):format(tostring(k))) end end
  if kw.multi_label then raise("AUC: multi_label=true is not supported by klua") end
  if kw.label_weights then raise("AUC: label_weights are not supported by klua") end
  Metric.__init(self, kw)
  local curve = (kw.curve or "ROC"):upper()
  if curve ~= "ROC" and curve ~= "PR" then
    raise(('AUC: invalid AUC curve value "%s". Expected values are ["PR", "ROC"]'):format(tostring(kw.curve)))
  end
  local sm = (kw.summation_method or "interpolation"):lower()
  if sm ~= "interpolation" and sm ~= "minoring" and sm ~= "majoring" then
    raise(('AUC: invalid AUC summation method value "%s". Expected values are ["interpolation", "majoring", "minoring"]')
      :format(tostring(kw.summation_method)))
  end
  self.curve, self.summation_method, self.from_logits = curve, sm, kw.from_logits and true or false
  local inner
  if kw.thresholds ~= nil then
    inner = {}
    for i, t in ipairs(kw.thresholds) do inner[i] = t end
    check_thresholds("AUC", inner)
    table.sort(inner)
    self.num_thresholds = #inner + 2
    local probe = { 0.0 }
    for _, t in ipairs(inner) do probe[#probe + 1] = t end
    probe[#probe + 1] = 1.0
    self._evenly = is_evenly_distributed(probe)
    self._init_thresholds = kw.thresholds
  else
    local n = kw.num_thresholds or 200
    if type(n) ~= "number" or n <= 1 then
      raise(("AUC: argument `num_thresholds` must be an integer > 1. Received: num_thresholds=%s"):format(tostring(n)))
    end
    self.num_thresholds = n
    inner = {}
    for i = 1, n - 2 do inner[i] = i / (n - 1) end
    self._evenly = true
  end
  -- endpoints below 0 and above 1 so predictions of exactly 0 or 1 count
  local thr = { 0.0 - EPSILON }
  for _, t in ipairs(inner) do thr[#thr + 1] = t end
  thr[#thr + 1] = 1.0 + EPSILON
  self.thresholds = thr
  confusion_init(self, thr)
end

function AUC:update_state(y_true, y_pred, sample_weight)
  no_grad(confusion_update, self, y_true, y_pred, sample_weight, function(p)
    if self.from_logits then p = ops.sigmoid(p) end
    -- Keras's bucketed update for evenly spaced thresholds clips predictions to [0, 1]
    if self._evenly then p = ops.clip(p, 0, 1) end
    return p
  end)
end

function AUC:reset_state() confusion_reset(self) end

function AUC:_pr_interpolated()
  local n, tp, fp, fn = self._n, self._tp, self._fp, self._fn
  local total = 0
  for i = 0, n - 2 do
    local dtp = tp[i] - tp[i + 1]
    local p0, p1 = tp[i] + fp[i], tp[i + 1] + fp[i + 1]
    local dp = p0 - p1
    local slope = no_nan_div(dtp, math.max(dp, 0))
    local intercept = tp[i + 1] - slope * p1
    local ratio = (p0 > 0 and p1 > 0) and no_nan_div(p0, math.max(p1, 0)) or 1
    total = total + no_nan_div(slope * (dtp + intercept * math.log(ratio)), math.max(tp[i + 1] + fn[i + 1], 0))
  end
  return total
end

function AUC:result()
  if self.curve == "PR" and self.summation_method == "interpolation" then return T(self:_pr_interpolated()) end
  local n, tp, fp, tn, fn = self._n, self._tp, self._fp, self._tn, self._fn
  local x, y = {}, {}
  for i = 0, n - 1 do
    local recall = no_nan_div(tp[i], tp[i] + fn[i])
    if self.curve == "ROC" then
      x[i + 1], y[i + 1] = no_nan_div(fp[i], fp[i] + tn[i]), recall
    else
      x[i + 1], y[i + 1] = recall, no_nan_div(tp[i], tp[i] + fp[i])
    end
  end
  local area = 0
  for i = 1, n - 1 do
    local h
    if self.summation_method == "interpolation" then h = (y[i] + y[i + 1]) / 2
    elseif self.summation_method == "minoring" then h = math.min(y[i], y[i + 1])
    else h = math.max(y[i], y[i + 1]) end
    area = area + (x[i] - x[i + 1]) * h
  end
  return T(area)
end

function AUC:get_config()
  return { name = self.name, num_thresholds = self.num_thresholds, curve = self.curve,
           summation_method = self.summation_method, thresholds = self._init_thresholds, from_logits = self.from_logits }
end

--- FBetaScore{average=nil|"micro"|"macro"|"weighted", beta=1.0, threshold=nil}
-- and F1Score (beta = 1): per class, or averaged.
local FBetaScore = Metric:extend("FBetaScore")
FBetaScore.default_name = "fbeta_score"
metrics.FBetaScore = FBetaScore

function FBetaScore:__init(kw)
  kw = kw or {}
  for k in pairs(kw) do
    if k ~= "average" and k ~= "beta" and k ~= "threshold" and k ~= "name" and k ~= "dtype" then
      raise(("%s: unknown argument `%s`"):format(getmetatable(self).__name, tostring(k)))
    end
  end
  Metric.__init(self, kw)
  local who = getmetatable(self).__name
  local avg = kw.average
  if avg ~= nil and avg ~= "micro" and avg ~= "macro" and avg ~= "weighted" then
    raise(("%s: invalid `average` argument value. Expected one of: {nil, 'micro', 'macro', 'weighted'}. Received: average=%s")
      :format(who, tostring(avg)))
  end
  local beta = kw.beta or getmetatable(self).default_beta or 1.0
  if type(beta) ~= "number" or beta <= 0 then
    raise(("%s: invalid `beta` argument value. It should be > 0. Received: beta=%s"):format(who, tostring(beta)))
  end
  local thr = kw.threshold
  if thr ~= nil and (type(thr) ~= "number" or thr > 1 or thr <= 0) then
    raise(("%s: invalid `threshold` argument value. It should verify 0 < threshold <= 1. Received: threshold=%s"):format(who, tostring(thr)))
  end
  self.average, self.beta, self.threshold = avg, beta, thr
  self:reset_state()
end

function FBetaScore:reset_state()
  self.true_positives, self.false_positives, self.false_negatives, self.intermediate_weights = nil, nil, nil, nil
end

local function add_into(acc, t)
  if acc == nil then return t end
  for i = 1, #t do acc[i] = acc[i] + t[i] end
  return acc
end

function FBetaScore:update_state(y_true, y_pred, sample_weight)
  local who = getmetatable(self).__name
  no_grad(function()
    local t, p = T(y_true), T(y_pred)
    if t.nd ~= 2 or p.nd ~= 2 then
      raise(("%s expects 2D inputs with shape (batch_size, output_dim). Received input shapes: y_pred.shape=%s and y_true.shape=%s")
        :format(who, core.shape_str(p:shape()), core.shape_str(t:shape())))
    end
    local pb
    if self.threshold == nil then
      -- the row's maximum counts as predicted, unless the row is all zeros
      pb = ops.greater_equal(p, ops.max(p, -1, true)) * ops.greater(ops.abs(p), 1e-9)
    else
      pb = ops.greater(p, self.threshold)
    end
    local sw = sample_weight ~= nil and ops.expand_dims(T(sample_weight), -1) or nil
    local function wsum(v)
      if sw then v = v * sw end
      if self.average == "micro" then return { sum_all(v) } end
      return ops.sum(v, 1):totable()
    end
    self.true_positives = add_into(self.true_positives, wsum(pb * t))
    self.false_positives = add_into(self.false_positives, wsum(pb * (1 - t)))
    self.false_negatives = add_into(self.false_negatives, wsum((1 - pb) * t))
    self.intermediate_weights = add_into(self.intermediate_weights, wsum(t))
  end)
end

function FBetaScore:result()
  local tp, fp, fn, iw = self.true_positives, self.false_positives, self.false_negatives, self.intermediate_weights
  if tp == nil then return T(0) end
  local b2 = self.beta * self.beta
  local f = {}
  for i = 1, #tp do
    local precision = tp[i] / (tp[i] + fp[i] + EPSILON)
    local recall = tp[i] / (tp[i] + fn[i] + EPSILON)
    f[i] = precision * recall / (b2 * precision + recall + EPSILON) * (1 + b2)
  end
  if self.average == "weighted" then
    local total = 0
    for i = 1, #iw do total = total + iw[i] end
    local s = 0
    for i = 1, #f do s = s + f[i] * (iw[i] / (total + EPSILON)) end
    return T(s)
  elseif self.average ~= nil then
    local s = 0
    for i = 1, #f do s = s + f[i] end
    return T(s / #f)
  end
  return T(f)
end

function FBetaScore:get_config() return { name = self.name, average = self.average, beta = self.beta, threshold = self.threshold } end

local F1Score = FBetaScore:extend("F1Score")
F1Score.default_name = "f1_score"
metrics.F1Score = F1Score
function F1Score:__init(kw)
  if kw and kw.beta ~= nil then raise("F1Score: unknown argument `beta` (use FBetaScore)") end
  FBetaScore.__init(self, kw)
end

-- Lookup -----------------------------------------------------------------------

local names = {
  accuracy = "Accuracy", acc = "Accuracy", binary_accuracy = "BinaryAccuracy",
  categorical_accuracy = "CategoricalAccuracy", sparse_categorical_accuracy = "SparseCategoricalAccuracy",
  top_k_categorical_accuracy = "TopKCategoricalAccuracy", sparse_top_k_categorical_accuracy = "SparseTopKCategoricalAccuracy",
  mean_squared_error = "MeanSquaredError", mse = "MeanSquaredError",
  mean_absolute_error = "MeanAbsoluteError", mae = "MeanAbsoluteError",
  root_mean_squared_error = "RootMeanSquaredError", rmse = "RootMeanSquaredError",
  precision = "Precision", recall = "Recall", auc = "AUC", f1_score = "F1Score", fbeta_score = "FBetaScore",
  mean = "Mean", sum = "Sum",
}

--- get(identifier): a metric object from a name ("accuracy", "acc", "mse",
-- "AUC"), a registered name, a config {class_name=, config=}, a metric class
-- or object; a plain function (y_true, y_pred) is returned as it is; nil
-- gives nil.
local GET = { who = "metrics.get", kind = "metric", builtins = metrics, aliases = names, base = Metric, functions = true,
  hidden = { Metric = true, Reduce = true, MeanMetricWrapper = true }, raise = raise }
function metrics.get(id) return registry.resolve(id, GET) end

function metrics.serialize(m) return registry.serialize(m) end
metrics.deserialize = metrics.get

return metrics
