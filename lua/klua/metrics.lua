-- metrics.lua — klua.metrics: Keras 3's streaming metrics. Each keeps running
-- totals (update_state / result / reset_state); calling a metric updates it
-- and returns the running result as a tensor; `metric.variables` lists its
-- state under Keras's names and shapes. Per-element work runs in C: ops for
-- the accuracies, means, F-scores and R2, src/kernels/metrics.c for confusion
-- counts (Precision, Recall, AUC, TruePositives, ...), the class confusion
-- matrix (the IoU metrics) and top-k hits. Semantics follow
-- keras/src/metrics/*.py; state is kept in double precision.
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
local variable = require("klua.variable")
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

local function copy_list(t)
  if type(t) ~= "table" then return t end
  local out = {}
  for i, v in ipairs(t) do out[i] = v end
  return out
end

-- Keyword arguments: raise for a name the class does not take.
local function check_args(who, kw, known)
  kw = core.options(kw, who)
  for k in pairs(kw) do
    if k ~= "name" and k ~= "dtype" and not known[k] then
      raise(("%s: unknown argument `%s`"):format(who, tostring(k)))
    end
  end
  return kw
end

-- The base class ------------------------------------------------------------------

local Metric = class("Metric")
metrics.Metric = Metric

-- Each metric class is its instances' metatable. When a subclass is made it
-- gets the properties of its parent (values computed on access: Keras's
-- `variables`, `true_positives`, ...); a class adds its own with
-- Metric.property.
local function prepare_class(cls)
  local parent = rawget(cls, "super")
  local props = {}
  if parent then for k, g in pairs(rawget(parent, "_properties")) do props[k] = g end end
  rawset(cls, "_properties", props)
  rawset(cls, "__index", function(t, k)
    local g = props[k]
    if g ~= nil then return g(t) end
    return cls[k]
  end)
end
-- An update_state a subclass defines names itself ("IoU.update_state: ...") in
-- whatever fails inside it when called directly (core.name_errors: the
-- function is not wrapped, so it keeps its doc); metric(...) names the metric.
local function name_update(cls)
  getmetatable(cls).__newindex = function(c, k, v)
    if k == "update_state" and type(v) == "function" then
      core.name_errors({ [rawget(c, "__name") .. ".update_state"] = v, update_state = v })
    end
    class.define(c, k, v)
  end
end
Metric.__init_subclass = function(cls) prepare_class(cls); name_update(cls) end
prepare_class(Metric)

--- Metric.property(cls, name, getter): a read-only value computed on access,
-- for cls and the subclasses made after it.
function Metric.property(cls, name, getter) rawget(cls, "_properties")[name] = getter end

--- Metric{name=nil, dtype="float32"}: the base class of metrics: subclass it with Metric:extend("Name") and define
-- update_state, result and reset_state.
function Metric:__init(kw)
  local cname = getmetatable(self).__name
  kw = core.options(kw, cname)
  if kw.name ~= nil and (type(kw.name) ~= "string" or kw.name == "") then
    raise(("%s: name must be a non-empty string. Received: name=%s"):format(cname, core.received(kw.name)))
  end
  self.name = kw.name or getmetatable(self).default_name or "metric"
  self.dtype = kw.dtype or "float32"
end
--- Metric:update_state(y_true, y_pred, sample_weight): adds a batch to the metric's state (outside any tape).
function Metric:update_state() raise(getmetatable(self).__name .. ": update_state is not defined") end
--- Metric:result(): the metric's value over everything seen since the last reset, as a tensor.
function Metric:result() raise(getmetatable(self).__name .. ": result is not defined") end
--- Metric:reset_state(): forgets what update_state has seen (fit and evaluate call it at each epoch's start).
function Metric:reset_state() end
--- Metric:get_config(): every constructor argument as a table; Class.from_config(config) rebuilds the metric.
function Metric:get_config() return { name = self.name, dtype = self.dtype } end
--- Cls.from_config(config) or Cls:from_config(config): Cls(config).
function Metric.from_config(cls, config) return cls(config or {}) end

-- The state behind `variables`: a list of {keras_name, value, shape}, value a
-- number, a tensor or a double array of that shape. Subclasses override it.
function Metric:_state() return {} end

-- One piece of state as a tensor (a copy).
local function state_tensor(value, shape)
  if type(value) == "number" then return T(value) end
  if is_tensor(value) then return value:clone() end
  return tensor.from_doubles(shape, value)
end

--- metric.variables: the metric's state as non-trainable Variables named as
-- in Keras (total, count, true_positives, ...). They are snapshots: assigning
-- to one does not change the metric (use reset_state).
Metric.property(Metric, "variables", function(self)
  local out = {}
  for i, s in ipairs(self:_state()) do
    out[i] = variable.new(state_tensor(s[2], s[3]), { name = s[1], trainable = false })
  end
  return out
end)

-- Declares each {attribute, keras_name} of cls's _state() as a tensor property.
local function state_properties(cls, names)
  for _, pair in ipairs(names) do
    local attr, keras_name = pair[1], pair[2]
    Metric.property(cls, attr, function(self)
      for _, s in ipairs(self:_state()) do
        if s[1] == keras_name then return state_tensor(s[2], s[3]) end
      end
      return nil
    end)
  end
end

--- metric(...): update_state(...) then the running result.
local function update_and_result(self, ...)
  self:update_state(...)
  return self:result()
end
Metric.__call = function(self, ...)
  return core.named({ getmetatable(self).__name, tostring(rawget(self, "name")) }, update_and_result, self, ...)
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
  self._total, self._count = 0, 0
end

local function mean_update(self, values, sample_weight)
  if sample_weight == nil and type(values) == "number" then
    self._total, self._count = self._total + values, self._count + 1
    return
  end
  if type(sample_weight) == "number" and (type(values) == "number" or (is_tensor(values) and values.nd == 0)) then
    local v = type(values) == "number" and values or values:item()
    self._total, self._count = self._total + v * sample_weight, self._count + sample_weight
    return
  end
  values = T(values)
  local sw = sample_weight ~= nil and T(sample_weight) or nil
  values, sw = samplewise(values, sw, ops.mean)
  self._total = self._total + sum_all(values)
  if sw ~= nil then self._count = self._count + sum_all(sw)
  elseif values.nd >= 1 then self._count = self._count + tonumber(values.dims[0])
  else self._count = self._count + 1 end
end

function Mean:update_state(values, sample_weight) no_grad(mean_update, self, values, sample_weight) end
function Mean:reset_state() self._total, self._count = 0, 0 end
function Mean:_value() return self._count ~= 0 and self._total / self._count or 0 end
function Mean:result() return T(self:_value()) end
function Mean:_state() return { { "total", self._total }, { "count", self._count } } end
state_properties(Mean, { { "total", "total" }, { "count", "count" } })

--- Sum{name=}: the (weighted) sum of the values seen.
local Sum = Metric:extend("Sum")
Sum.default_name = "sum"
metrics.Sum = Sum

function Sum:__init(kw) Metric.__init(self, kw); self._total = 0 end
function Sum:update_state(values, sample_weight)
  no_grad(function()
    if sample_weight == nil and type(values) == "number" then self._total = self._total + values; return end
    local v = samplewise(T(values), sample_weight ~= nil and T(sample_weight) or nil, ops.sum)
    self._total = self._total + sum_all(v)
  end)
end
function Sum:reset_state() self._total = 0 end
function Sum:result() return T(self._total) end
function Sum:_state() return { { "total", self._total } } end
state_properties(Sum, { { "total", "total" } })

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

local function wrapper_update(self, y_true, y_pred, sample_weight)
  local values, mask
  if next(self.fn_kwargs) then values, mask = self.fn(y_true, y_pred, self.fn_kwargs)
  else values, mask = self.fn(y_true, y_pred) end
  local sw = sample_weight ~= nil and T(sample_weight) or nil
  -- As in Keras, a mask from fn (sparse_categorical_crossentropy's
  -- ignore_class) only scales given sample weights: unweighted, masked
  -- entries count as the 0 that fn returns for them.
  if mask ~= nil and sw ~= nil then local m, w = same_rank(mask, sw); sw = w * m end
  mean_update(self, T(values), sw)
end

--- MeanMetricWrapper:update_state(y_true, y_pred, sample_weight): adds the (weighted) values of fn(y_true, y_pred).
function MeanMetricWrapper:update_state(y_true, y_pred, sample_weight)
  if y_true == nil or y_pred == nil then raise(getmetatable(self).__name .. ".update_state: expected (y_true, y_pred[, sample_weight])") end
  no_grad(wrapper_update, self, y_true, y_pred, sample_weight)
end

-- Accuracy functions (per-sample values) -------------------------------------------

--- accuracy(y_true, y_pred): 1 where they are equal, element by element
-- (Keras 3; Keras 2 averaged over the last axis).
function metrics.accuracy(y_true, y_pred)
  local t, p = same_rank(T(y_true), T(y_pred))
  local r = ops.equal(t, p)   -- not a tail call: raise names accuracy (core.name_errors)
  return r
end

--- binary_accuracy(y_true, y_pred, threshold=0.5): 1 where y_true equals
-- (y_pred > threshold), element by element.
function metrics.binary_accuracy(y_true, y_pred, threshold)
  threshold = type(threshold) == "table" and threshold.threshold or threshold or 0.5
  local t, p = same_rank(T(y_true), T(y_pred))
  local r = ops.equal(t, ops.greater(p, threshold))   -- not a tail call (core.name_errors)
  return r
end

--- categorical_accuracy(y_true, y_pred): 1 where the argmax of one-hot y_true equals the argmax of y_pred (last axis).
function metrics.categorical_accuracy(y_true, y_pred)
  return ops.equal(ops.argmax(T(y_true), -1), ops.argmax(T(y_pred), -1))
end

--- sparse_categorical_accuracy(y_true, y_pred): 1 where the 0-based class id y_true equals the argmax of y_pred.
function metrics.sparse_categorical_accuracy(y_true, y_pred)
  local t, p = T(y_true), T(y_pred)
  local shape   -- y_true's shape when its last axis of 1 is squeezed (kept in the result)
  if t.nd == p.nd and last_dim(t) == 1 then shape = t:shape(); t = ops.squeeze(t, -1) end
  local m = ops.equal(t, ops.argmax(p, -1))
  if shape then m = ops.reshape(m, shape) end
  if m.nd > 1 and last_dim(m) == 1 then m = ops.squeeze(m, -1) end
  return m
end

local function in_top_k(targets, predictions, k)
  if type(k) ~= "number" or k < 1 or k ~= math.floor(k) then raise("top-k accuracy: k must be a positive integer, got " .. tostring(k)) end
  local c = last_dim(predictions)
  if predictions.nd ~= 2 then predictions = ops.reshape(predictions, { -1, c }) end
  return nn.in_top_k(targets, predictions, k)
end

--- top_k_categorical_accuracy(y_true, y_pred, k=5): 1 where the argmax of one-hot y_true is among the k best scores of y_pred.
function metrics.top_k_categorical_accuracy(y_true, y_pred, k)
  k = type(k) == "table" and k.k or k or 5
  local t = ops.argmax(T(y_true), -1)
  local m = in_top_k(t, T(y_pred), k)
  return t.nd == 1 and m or ops.reshape(m, t:shape())
end

--- sparse_top_k_categorical_accuracy(y_true, y_pred, k=5, from_sorted_ids=false):
-- 1 where the class id y_true is among the k best scores of y_pred, or, with
-- from_sorted_ids, among the first k ids of each row of y_pred (ids sorted
-- from the highest score down).
function metrics.sparse_top_k_categorical_accuracy(y_true, y_pred, k, from_sorted_ids)
  if type(k) == "table" then k, from_sorted_ids = k.k, k.from_sorted_ids end
  k = k or 5
  local t, p = T(y_true), T(y_pred)
  local m
  if from_sorted_ids then
    if type(k) ~= "number" or k < 1 or k ~= math.floor(k) then raise("top-k accuracy: k must be a positive integer, got " .. tostring(k)) end
    local c = last_dim(p)
    if p.nd ~= 2 then p = ops.reshape(p, { -1, c }) end
    local ids = ops.slice_axis(p, 2, 1, math.min(k, c))
    -- any of the first k ids equal to the label (a repeated id counts once)
    m = ops.max(ops.equal(ops.reshape(t, { -1, 1 }), ids), -1)
  else
    m = in_top_k(t, p, k)
  end
  return t.nd <= 1 and m or ops.reshape(m, t:shape())
end

--- pearson_correlation(y_true, y_pred, axis=-1): Pearson's r along axis.
function metrics.pearson_correlation(y_true, y_pred, axis)
  axis = type(axis) == "table" and axis.axis or axis or -1
  local t, p = same_rank(T(y_true), T(y_pred))
  local tn = t - ops.mean(t, axis, true)
  local pn = p - ops.mean(p, axis, true)
  tn = tn / ops.std(tn, axis, true)
  pn = pn / ops.std(pn, axis, true)
  return ops.mean(tn * pn, axis)
end

--- concordance_correlation(y_true, y_pred, axis=-1): Lin's concordance
-- correlation coefficient along axis, written as Keras 3 writes it (its
-- covariance term centres y_true on y_pred's mean).
function metrics.concordance_correlation(y_true, y_pred, axis)
  axis = type(axis) == "table" and axis.axis or axis or -1
  local t, p = same_rank(T(y_true), T(y_pred))
  local tm, pm = ops.mean(t, axis, true), ops.mean(p, axis, true)
  local tv, pv = ops.var(t - tm, axis, true), ops.var(p - pm, axis, true)
  local covar = (t - pm) * (p - pm)
  local norm = tv + pv + ops.square(tm - pm)
  return ops.mean(covar * 2 / (norm + EPSILON), axis)
end

--- cosine_similarity(y_true, y_pred, axis=-1): the cosine of the angle
-- between the two along axis (each L2-normalised, norms at least 1e-6).
function metrics.cosine_similarity(y_true, y_pred, axis)
  axis = type(axis) == "table" and axis.axis or axis or -1
  local t, p = same_rank(T(y_true), T(y_pred))
  local function normalize(x)
    return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis, true), 1e-12))
  end
  return ops.sum(normalize(t) * normalize(p), axis)
end

metrics.mean_squared_error, metrics.mse = losses.mean_squared_error, losses.mean_squared_error
metrics.mean_absolute_error, metrics.mae = losses.mean_absolute_error, losses.mean_absolute_error

-- Metric classes built on MeanMetricWrapper -----------------------------------------

-- A MeanMetricWrapper class over fn taking Keras's arguments: defaults holds
-- them with their default values, optional those whose default is nil.
local function mean_metric(name, default_name, fn, defaults, optional)
  local cls = MeanMetricWrapper:extend(name)
  cls.default_name = default_name
  defaults, optional = defaults or {}, optional or {}
  function cls:__init(kw)
    kw = core.options(kw, name)
    local o = { name = kw.name or default_name, dtype = kw.dtype }
    for k, v in pairs(kw) do
      if k ~= "name" and k ~= "dtype" then
        if defaults[k] == nil and not optional[k] then raise(("%s: unknown argument `%s`"):format(name, tostring(k))) end
        o[k] = v
      end
    end
    for k, v in pairs(defaults) do
      if o[k] == nil then o[k] = v end
      self[k] = o[k]
    end
    for k in pairs(optional) do self[k] = o[k] end
    if self.validate then self:validate() end
    MeanMetricWrapper.__init(self, fn, o)
  end
  function cls:get_config()
    local c = Metric.get_config(self)
    for k in pairs(defaults) do c[k] = self[k] end
    for k in pairs(optional) do c[k] = self[k] end
    return c
  end
  metrics[name] = cls
  return cls
end

--- Accuracy{name="accuracy", dtype="float32"}: how often y_pred equals y_true, element by element.
mean_metric("Accuracy", "accuracy", metrics.accuracy)
--- BinaryAccuracy{threshold=0.5, name="binary_accuracy", dtype="float32"}: how often (y_pred > threshold) equals y_true.
local BinaryAccuracy = mean_metric("BinaryAccuracy", "binary_accuracy", metrics.binary_accuracy, { threshold = 0.5 })
--- BinaryAccuracy:validate(): raises unless 0 < threshold < 1 (run by the constructor).
function BinaryAccuracy:validate()
  if type(self.threshold) ~= "number" or self.threshold <= 0 or self.threshold >= 1 then
    raise(("BinaryAccuracy: invalid value for argument `threshold`, expected a value in (0, 1). Received: threshold=%s"):format(tostring(self.threshold)))
  end
end
--- CategoricalAccuracy{name="categorical_accuracy", dtype="float32"}: how often argmax(y_pred) equals argmax(one-hot y_true).
mean_metric("CategoricalAccuracy", "categorical_accuracy", metrics.categorical_accuracy)
--- SparseCategoricalAccuracy{name="sparse_categorical_accuracy", dtype="float32"}: how often argmax(y_pred) equals the 0-based class id y_true.
mean_metric("SparseCategoricalAccuracy", "sparse_categorical_accuracy", metrics.sparse_categorical_accuracy)
--- TopKCategoricalAccuracy{k=5, name="top_k_categorical_accuracy", dtype="float32"}: how often the one-hot class is among y_pred's k best scores.
mean_metric("TopKCategoricalAccuracy", "top_k_categorical_accuracy", metrics.top_k_categorical_accuracy, { k = 5 })
--- SparseTopKCategoricalAccuracy{k=5, from_sorted_ids=false, name="sparse_top_k_categorical_accuracy", dtype="float32"}:
-- how often the class id y_true is among y_pred's k best scores (or its first k ids, with from_sorted_ids).
local STK = mean_metric("SparseTopKCategoricalAccuracy", "sparse_top_k_categorical_accuracy",
  metrics.sparse_top_k_categorical_accuracy, { k = 5, from_sorted_ids = false })
local stk_config = STK.get_config
function STK:get_config()   -- Keras writes from_sorted_ids only when it is set
  local c = stk_config(self)
  if not c.from_sorted_ids then c.from_sorted_ids = nil end
  return c
end

-- Regression, hinge, probabilistic and correlation metrics: the mean of a loss
-- function (one fused C op each, src/ops/loss.c) or of a composition of ops.
--- MeanSquaredError{name="mean_squared_error", dtype="float32"}: the mean of (y_true - y_pred)^2.
mean_metric("MeanSquaredError", "mean_squared_error", losses.mean_squared_error)
--- MeanAbsoluteError{name="mean_absolute_error", dtype="float32"}: the mean of |y_true - y_pred|.
mean_metric("MeanAbsoluteError", "mean_absolute_error", losses.mean_absolute_error)
--- MeanAbsolutePercentageError{name="mean_absolute_percentage_error", dtype="float32"}: the mean of 100 |y_true - y_pred| / |y_true|.
mean_metric("MeanAbsolutePercentageError", "mean_absolute_percentage_error", losses.mean_absolute_percentage_error)
--- MeanSquaredLogarithmicError{name="mean_squared_logarithmic_error", dtype="float32"}: the mean of (log(1 + y_true) - log(1 + y_pred))^2.
mean_metric("MeanSquaredLogarithmicError", "mean_squared_logarithmic_error", losses.mean_squared_logarithmic_error)
--- LogCoshError{name="logcosh", dtype="float32"}: the mean of log(cosh(y_pred - y_true)).
mean_metric("LogCoshError", "logcosh", losses.log_cosh)
--- CosineSimilarity{axis=-1, name="cosine_similarity", dtype="float32"}: the mean cosine similarity of y_true and y_pred along axis.
mean_metric("CosineSimilarity", "cosine_similarity", metrics.cosine_similarity, { axis = -1 })
--- Hinge{name="hinge", dtype="float32"}: the mean of max(1 - y_true y_pred, 0), labels -1 or 1 (0/1 are converted).
mean_metric("Hinge", "hinge", losses.hinge)
--- SquaredHinge{name="squared_hinge", dtype="float32"}: the mean of max(1 - y_true y_pred, 0)^2.
mean_metric("SquaredHinge", "squared_hinge", losses.squared_hinge)
--- CategoricalHinge{name="categorical_hinge", dtype="float32"}: the mean of max(0, 1 + max(wrong scores) - correct score).
mean_metric("CategoricalHinge", "categorical_hinge", losses.categorical_hinge)
--- KLDivergence{name="kl_divergence", dtype="float32"}: the mean Kullback-Leibler divergence of y_pred from y_true.
mean_metric("KLDivergence", "kl_divergence", losses.kl_divergence)
--- Poisson{name="poisson", dtype="float32"}: the mean of y_pred - y_true log(y_pred).
mean_metric("Poisson", "poisson", losses.poisson)
--- BinaryCrossentropy{from_logits=false, label_smoothing=0, name="binary_crossentropy", dtype="float32"}:
-- the mean binary crossentropy of 0/1 labels and probabilities (logits with from_logits).
mean_metric("BinaryCrossentropy", "binary_crossentropy", losses.binary_crossentropy,
  { from_logits = false, label_smoothing = 0 })
--- CategoricalCrossentropy{from_logits=false, label_smoothing=0, axis=-1, name="categorical_crossentropy", dtype="float32"}:
-- the mean crossentropy of one-hot labels and class probabilities along axis.
mean_metric("CategoricalCrossentropy", "categorical_crossentropy", losses.categorical_crossentropy,
  { from_logits = false, label_smoothing = 0, axis = -1 })
--- SparseCategoricalCrossentropy{from_logits=false, axis=-1, ignore_class=nil, name="sparse_categorical_crossentropy", dtype="float32"}:
-- the mean crossentropy of 0-based class ids and class probabilities.
mean_metric("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy", losses.sparse_categorical_crossentropy,
  { from_logits = false, axis = -1 }, { ignore_class = true })
--- PearsonCorrelation{axis=-1, name="pearson_correlation", dtype="float32"}: the mean Pearson correlation of y_true and y_pred along axis.
mean_metric("PearsonCorrelation", "pearson_correlation", metrics.pearson_correlation, { axis = -1 })
--- ConcordanceCorrelation{axis=-1, name="concordance_correlation", dtype="float32"}: the mean concordance correlation (Lin) along axis.
mean_metric("ConcordanceCorrelation", "concordance_correlation", metrics.concordance_correlation, { axis = -1 })

--- RootMeanSquaredError{name="root_mean_squared_error", dtype="float32"}: sqrt of the (weighted) mean of squared errors.
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

-- Keras's parse_init_thresholds: nil (the default), a number or a list, each in [0, 1].
-- Bounds that keep a metric's state allocatable (Keras's defaults: 200 thresholds).
local MAX_THRESHOLDS = 2 ^ 20
local MAX_CLASSES = 2 ^ 14      -- IoU's (num_classes, num_classes) matrix: 2 GiB of doubles

local function parse_thresholds(who, thresholds, default)
  if thresholds == nil then return { default } end
  local list = type(thresholds) == "number" and { thresholds } or thresholds
  if type(list) ~= "table" then
    raise(("%s: thresholds must be a number or a list of numbers. Received: thresholds=%s"):format(who, tostring(thresholds)))
  end
  local bad = {}
  for _, t in ipairs(list) do
    if type(t) ~= "number" or t < 0 or t > 1 then bad[#bad + 1] = tostring(t) end
  end
  if #bad > 0 then raise(("%s: Threshold values must be in [0, 1]. Received: [%s]"):format(who, table.concat(bad, ", "))) end
  return copy_list(list)
end

-- Keras's is_evenly_distributed_thresholds: i / (n - 1) for n >= 3 thresholds
-- (np.allclose). Keras then buckets predictions clipped to [0, 1].
local function is_evenly_distributed(list)
  local n = #list
  if n < 3 then return false end
  for i = 1, n do
    local even = (i - 1) / (n - 1)
    if math.abs(list[i] - even) > EPSILON + 1e-5 * even then return false end
  end
  return true
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

-- Counts live in double arrays: _tp, _fp, _tn, _fn, each _n thresholds by
-- _ncols columns (one column, or one per label for AUC's multi_label).
local function confusion_init(self, thresholds, ncols, multi_label)
  self._n, self._ncols, self._multi = #thresholds, ncols or 1, multi_label or false
  self._thr = doubles(thresholds)
  local size = self._n * self._ncols
  self._tp = ffi.new("double[?]", size)
  self._fp = ffi.new("double[?]", size)
  self._tn = ffi.new("double[?]", size)
  self._fn = ffi.new("double[?]", size)
end

local function confusion_reset(self)
  if self._tp == nil then return end
  for _, a in ipairs { self._tp, self._fp, self._tn, self._fn } do ffi.fill(a, 8 * self._n * self._ncols) end
end

local function confusion_update(self, y_true, y_pred, sample_weight, preprocess)
  local who = getmetatable(self).__name
  local t, p = T(y_true), T(y_pred)
  p, t = same_rank(p, t)
  if t.count ~= p.count then
    raise(("%s: y_true %s and y_pred %s must have the same number of elements"):format(
      who, core.shape_str(t:shape()), core.shape_str(p:shape())))
  end
  if self._multi and (p.nd ~= 2 or last_dim(p) ~= self._ncols) then
    raise(("%s: with multi_label, y_pred must have shape (num_samples, %d). Received: y_pred.shape=%s"):format(
      who, self._ncols, core.shape_str(p:shape())))
  end
  if preprocess then p = preprocess(p) end
  local w = sample_weight ~= nil and weights_like(who, sample_weight, t, p) or nil
  if self._label_weights_flat then   -- AUC's label_weights when labels are pooled
    local ok, lw = pcall(ops.broadcast_to, self._label_weights_flat, p:shape())
    if not ok then
      raise(("%s: label_weights of length %d do not match predictions of shape %s"):format(
        who, self._label_weights_flat.count, core.shape_str(p:shape())))
    end
    w = w and w * lw or lw
  end
  nn.confusion_counts(t, p, w, self._n, self._thr, self.top_k or 0, self.class_id or -1, self._multi,
    self._tp, self._fp, self._tn, self._fn)
end

local function clip_unit(p) return ops.clip(p, 0, 1) end

local function per_threshold(self, f)
  local out = {}
  for i = 0, self._n - 1 do out[i + 1] = f(i) end
  if self._n == 1 then return T(out[1]) end
  return T(out)
end

local function no_nan_div(a, b) return b ~= 0 and a / b or 0 end

-- The state of a confusion metric: the named count arrays, (thresholds[, labels]).
local COUNT_FIELD = { true_positives = "_tp", false_positives = "_fp", true_negatives = "_tn", false_negatives = "_fn" }
local function count_state(self, names)
  local out = {}
  if self._tp == nil then return out end
  local shape = self._multi and { self._n, self._ncols } or { self._n }
  for i, name in ipairs(names) do out[i] = { name, self[COUNT_FIELD[name]], shape } end
  return out
end
local function count_properties(cls, names)
  local pairs_ = {}
  for i, name in ipairs(names) do pairs_[i] = { name, name } end
  state_properties(cls, pairs_)
end

--- TruePositives, FalsePositives, TrueNegatives, FalseNegatives{thresholds=0.5}:
-- the (weighted) count at each threshold (a prediction is positive when > it).
local function condition_count(name, default_name, field)
  local cls = Metric:extend(name)
  cls.default_name = default_name
  metrics[name] = cls
  function cls:__init(kw)
    kw = check_args(name, kw, { thresholds = true })
    Metric.__init(self, kw)
    self.init_thresholds = copy_list(kw.thresholds)
    self.thresholds = parse_thresholds(name, kw.thresholds, 0.5)
    self._evenly = is_evenly_distributed(self.thresholds)
    confusion_init(self, self.thresholds)
  end
  function cls:update_state(y_true, y_pred, sample_weight)
    no_grad(confusion_update, self, y_true, y_pred, sample_weight, self._evenly and clip_unit or nil)
  end
  function cls:reset_state() confusion_reset(self) end
  function cls:result()
    local a = self[field]
    return per_threshold(self, function(i) return a[i] end)
  end
  function cls:_state() return { { "accumulator", self[field], { self._n } } } end
  state_properties(cls, { { "accumulator", "accumulator" } })
  function cls:get_config()
    local c = Metric.get_config(self)
    c.thresholds = copy_list(self.init_thresholds)
    return c
  end
  return cls
end
--- TruePositives{thresholds=0.5, name="true_positives", dtype="float32"}: the (weighted) count of true positives at each threshold.
condition_count("TruePositives", "true_positives", "_tp")
--- FalsePositives{thresholds=0.5, name="false_positives", dtype="float32"}: the (weighted) count of false positives at each threshold.
condition_count("FalsePositives", "false_positives", "_fp")
--- TrueNegatives{thresholds=0.5, name="true_negatives", dtype="float32"}: the (weighted) count of true negatives at each threshold.
condition_count("TrueNegatives", "true_negatives", "_tn")
--- FalseNegatives{thresholds=0.5, name="false_negatives", dtype="float32"}: the (weighted) count of false negatives at each threshold.
condition_count("FalseNegatives", "false_negatives", "_fn")

local function precision_recall(name, default_name, denom_field, state_names)
  local cls = Metric:extend(name)
  cls.default_name = default_name
  function cls:__init(kw)
    kw = check_args(name, kw, { thresholds = true, top_k = true, class_id = true })
    Metric.__init(self, kw)
    self.init_thresholds, self.top_k, self.class_id = copy_list(kw.thresholds), kw.top_k, kw.class_id
    self.thresholds = parse_thresholds(name, kw.thresholds, kw.top_k and NEG_INF or 0.5)
    self._evenly = kw.top_k == nil and is_evenly_distributed(self.thresholds)
    confusion_init(self, self.thresholds)
  end
  function cls:update_state(y_true, y_pred, sample_weight)
    no_grad(confusion_update, self, y_true, y_pred, sample_weight, self._evenly and clip_unit or nil)
  end
  function cls:reset_state() confusion_reset(self) end
  function cls:result()
    local tp, other = self._tp, self[denom_field]
    return per_threshold(self, function(i) return no_nan_div(tp[i], tp[i] + other[i]) end)
  end
  function cls:_state() return count_state(self, state_names) end
  count_properties(cls, state_names)
  function cls:get_config()
    local c = Metric.get_config(self)
    c.thresholds, c.top_k, c.class_id = copy_list(self.init_thresholds), self.top_k, self.class_id
    return c
  end
  metrics[name] = cls
  return cls
end

--- Precision{thresholds=, top_k=, class_id=}: tp / (tp + fp).
precision_recall("Precision", "precision", "_fp", { "true_positives", "false_positives" })
--- Recall{thresholds=, top_k=, class_id=}: tp / (tp + fn).
precision_recall("Recall", "recall", "_fn", { "true_positives", "false_negatives" })

local FOUR_COUNTS = { "true_positives", "false_positives", "true_negatives", "false_negatives" }

--- SensitivityAtSpecificity(specificity, {num_thresholds=200, class_id=}),
-- SpecificityAtSensitivity(sensitivity, ...), PrecisionAtRecall(recall, ...),
-- RecallAtPrecision(precision, ...): the best value of one rate over the
-- thresholds at which the other reaches the given value (0 when none does).
-- The value may also be given by name: SensitivityAtSpecificity{specificity = 0.5}.
local function at_metric(name, default_name, value_key, constrained, dependent)
  local cls = Metric:extend(name)
  cls.default_name = default_name
  metrics[name] = cls
  function cls:__init(value, kw)
    if type(value) == "table" and kw == nil then kw, value = value, value[value_key] end
    kw = check_args(name, kw, { [value_key] = true, num_thresholds = true, class_id = true })
    if value == nil then value = kw[value_key] end
    if type(value) ~= "number" or value < 0 or value > 1 then
      raise(("%s: Argument `%s` must be in the range [0, 1]. Received: %s=%s"):format(name, value_key, value_key, tostring(value)))
    end
    local n = kw.num_thresholds or 200
    if type(n) ~= "number" or n <= 0 or n ~= math.floor(n) or n > MAX_THRESHOLDS then
      raise(("%s: Argument `num_thresholds` must be an integer > 0. Received: num_thresholds=%s"):format(name, tostring(n)))
    end
    Metric.__init(self, kw)
    self[value_key], self.value, self.num_thresholds, self.class_id = value, value, n, kw.class_id
    local thr = { 0.5 }
    if n > 1 then
      thr = { 0.0 }
      for i = 1, n - 2 do thr[#thr + 1] = i / (n - 1) end
      thr[#thr + 1] = 1.0
    end
    self.thresholds, self._evenly = thr, n > 1
    confusion_init(self, thr)
  end
  function cls:update_state(y_true, y_pred, sample_weight)
    no_grad(confusion_update, self, y_true, y_pred, sample_weight, self._evenly and clip_unit or nil)
  end
  function cls:reset_state() confusion_reset(self) end
  function cls:result()
    local best = 0
    for i = 0, self._n - 1 do
      local tp, fp, tn, fn = self._tp[i], self._fp[i], self._tn[i], self._fn[i]
      if constrained(tp, fp, tn, fn) >= self.value then best = math.max(best, dependent(tp, fp, tn, fn)) end
    end
    return T(best)
  end
  function cls:_state() return count_state(self, FOUR_COUNTS) end
  count_properties(cls, FOUR_COUNTS)
  function cls:get_config()
    local c = Metric.get_config(self)
    c[value_key], c.num_thresholds, c.class_id = self.value, self.num_thresholds, self.class_id
    return c
  end
  return cls
end

local function sensitivity(tp, fp, tn, fn) return no_nan_div(tp, tp + fn) end
local function specificity(tp, fp, tn, fn) return no_nan_div(tn, tn + fp) end
local function precision(tp, fp, tn, fn) return no_nan_div(tp, tp + fp) end
--- SensitivityAtSpecificity{specificity, num_thresholds=200, class_id=nil, name="sensitivity_at_specificity", dtype="float32"}
-- (also SensitivityAtSpecificity(specificity, {...})): the best sensitivity at a specificity >= the given one.
at_metric("SensitivityAtSpecificity", "sensitivity_at_specificity", "specificity", specificity, sensitivity)
--- SpecificityAtSensitivity{sensitivity, num_thresholds=200, class_id=nil, name="specificity_at_sensitivity", dtype="float32"}
-- (also SpecificityAtSensitivity(sensitivity, {...})): the best specificity at a sensitivity >= the given one.
at_metric("SpecificityAtSensitivity", "specificity_at_sensitivity", "sensitivity", sensitivity, specificity)
--- PrecisionAtRecall{recall, num_thresholds=200, class_id=nil, name="precision_at_recall", dtype="float32"}
-- (also PrecisionAtRecall(recall, {...})): the best precision at a recall >= the given one.
at_metric("PrecisionAtRecall", "precision_at_recall", "recall", sensitivity, precision)
--- RecallAtPrecision{precision, num_thresholds=200, class_id=nil, name="recall_at_precision", dtype="float32"}
-- (also RecallAtPrecision(precision, {...})): the best recall at a precision >= the given one.
at_metric("RecallAtPrecision", "recall_at_precision", "precision", precision, sensitivity)

--- AUC{num_thresholds=200, curve="ROC"|"PR"|"PRGAIN", summation_method="interpolation"|"minoring"|"majoring",
-- thresholds=, multi_label=false, num_labels=, label_weights=, from_logits=false}: area under the ROC,
-- precision-recall or precision-recall-gain curve from bucketed counts. multi_label = true keeps the
-- counts of each label (column of a (num_samples, num_labels) y_pred) apart and averages the labels'
-- areas (weighted by label_weights); otherwise all entries are pooled, each weighted by its label's
-- label_weights.
local AUC = Metric:extend("AUC")
AUC.default_name = "auc"
metrics.AUC = AUC

local CURVES = { ROC = "ROC", roc = "ROC", PR = "PR", pr = "PR", PRGAIN = "PRGAIN", prgain = "PRGAIN" }
local SUMMATIONS = { interpolation = "interpolation", Interpolation = "interpolation", majoring = "majoring",
                     Majoring = "majoring", minoring = "minoring", Minoring = "minoring" }

function AUC:__init(kw)
  kw = check_args("AUC", kw, { num_thresholds = true, curve = true, summation_method = true, thresholds = true,
                               multi_label = true, num_labels = true, label_weights = true, from_logits = true })
  Metric.__init(self, kw)
  local curve = CURVES[kw.curve or "ROC"]
  if not curve then
    raise(('AUC: Invalid AUC curve value: "%s". Expected values are ["PR", "ROC", "PRGAIN"]'):format(tostring(kw.curve)))
  end
  local sm = SUMMATIONS[kw.summation_method or "interpolation"]
  if not sm then
    raise(('AUC: Invalid AUC summation method value: "%s". Expected values are ["interpolation", "majoring", "minoring"]')
      :format(tostring(kw.summation_method)))
  end
  self.curve, self.summation_method, self.from_logits = curve, sm, kw.from_logits and true or false
  local inner
  if kw.thresholds ~= nil then
    inner = parse_thresholds("AUC", kw.thresholds)
    table.sort(inner)
    self.num_thresholds = #inner + 2
    local probe = { 0.0 }
    for _, t in ipairs(inner) do probe[#probe + 1] = t end
    probe[#probe + 1] = 1.0
    self._evenly = is_evenly_distributed(probe)
    self._init_thresholds = copy_list(inner)
  else
    local n = kw.num_thresholds or 200
    if type(n) ~= "number" or n <= 1 or n ~= math.floor(n) or n > MAX_THRESHOLDS then
      raise(("AUC: Argument `num_thresholds` must be an integer > 1. Received: num_thresholds=%s"):format(tostring(n)))
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

  self.multi_label, self.num_labels = kw.multi_label and true or false, kw.num_labels
  if self.num_labels ~= nil and (type(self.num_labels) ~= "number" or self.num_labels < 1 or self.num_labels ~= math.floor(self.num_labels)
      or self.num_labels > MAX_THRESHOLDS) then
    raise(("AUC: `num_labels` must be a positive integer. Received: num_labels=%s"):format(tostring(self.num_labels)))
  end
  if kw.label_weights ~= nil then
    local lw = T(kw.label_weights)
    if lw.nd ~= 1 then
      raise(("AUC: `label_weights` must be a list of numbers, one per label. Received: shape %s"):format(core.shape_str(lw:shape())))
    end
    self.label_weights = lw:totable()
    self._label_weights = lw
  end
  if self.multi_label then
    if self.num_labels then self:_build(self.num_labels) end
  else
    if self.num_labels then raise("AUC: `num_labels` is needed only when `multi_label` is True.") end
    self._label_weights_flat = self._label_weights
    self:_build(1)
  end
end

-- The count arrays: (num_thresholds) or, with multi_label, (num_thresholds, num_labels).
function AUC:_build(num_labels)
  if self.multi_label and self.label_weights and #self.label_weights ~= num_labels then
    raise(("AUC: %d label_weights for %d labels"):format(#self.label_weights, num_labels))
  end
  confusion_init(self, self.thresholds, num_labels, self.multi_label)
end

function AUC:update_state(y_true, y_pred, sample_weight)
  no_grad(function()
    if self._tp == nil then   -- multi_label without num_labels: the first y_pred tells
      local p = T(y_pred)
      if p.nd ~= 2 then
        raise(("AUC: `y_pred` must have rank 2 when `multi_label=True`. Found rank %d. Full shape received for `y_pred`: %s")
          :format(p.nd, core.shape_str(p:shape())))
      end
      self:_build(last_dim(p))
    end
    confusion_update(self, y_true, y_pred, sample_weight, function(p)
      if self.from_logits then p = ops.sigmoid(p) end
      -- Keras's bucketed update for evenly spaced thresholds clips predictions to [0, 1]
      if self._evenly then p = ops.clip(p, 0, 1) end
      return p
    end)
  end)
end

function AUC:reset_state() confusion_reset(self) end

-- Davis & Goadrich's interpolation of the PR curve, label column j.
function AUC:_pr_interpolated(j)
  local n, L, tp, fp, fn = self._n, self._ncols, self._tp, self._fp, self._fn
  local total = 0
  for i = 0, n - 2 do
    local a, b = i * L + j, (i + 1) * L + j
    local dtp = tp[a] - tp[b]
    local p0, p1 = tp[a] + fp[a], tp[b] + fp[b]
    local slope = no_nan_div(dtp, math.max(p0 - p1, 0))
    local intercept = tp[b] - slope * p1
    local ratio = (p0 > 0 and p1 > 0) and no_nan_div(p0, math.max(p1, 0)) or 1
    total = total + no_nan_div(slope * (dtp + intercept * math.log(ratio)), math.max(tp[b] + fn[b], 0))
  end
  return total
end

-- The curve's point (x, y) at flat count index k.
function AUC:_point(k)
  local tp, fp, tn, fn = self._tp[k], self._fp[k], self._tn[k], self._fn[k]
  if self.curve == "ROC" then return no_nan_div(fp, fp + tn), no_nan_div(tp, tp + fn) end
  if self.curve == "PR" then return no_nan_div(tp, tp + fn), no_nan_div(tp, tp + fp) end
  -- PRGAIN (Flach & Kull): gains against the positive rate P/N; with no true
  -- positives recall gain is 0 and precision gain 1; negative recall gain is 0.
  if tp == 0 then return 0, 1 end
  local scale = no_nan_div(tp + fn, tn + fp)
  return math.max(1 - scale * fn / tp, 0), 1 - scale * fp / tp
end

-- A Riemann sum over the thresholds, label column j.
function AUC:_area(j)
  local L, sm = self._ncols, self.summation_method
  local area = 0
  local x0, y0 = self:_point(j)
  for i = 1, self._n - 1 do
    local x1, y1 = self:_point(i * L + j)
    local h
    if sm == "interpolation" then h = (y0 + y1) / 2
    elseif sm == "minoring" then h = math.min(y0, y1)
    else h = math.max(y0, y1) end
    area = area + (x0 - x1) * h
    x0, y0 = x1, y1
  end
  return area
end

function AUC:result()
  if self._tp == nil then return T(0) end
  local pr_interp = self.curve == "PR" and self.summation_method == "interpolation"
  local areas = {}
  for j = 0, self._ncols - 1 do areas[j + 1] = pr_interp and self:_pr_interpolated(j) or self:_area(j) end
  if not self.multi_label then return T(areas[1]) end
  local lw = self.label_weights
  local num, den = 0, 0
  for j, a in ipairs(areas) do
    local w = lw and lw[j] or 1
    num, den = num + a * w, den + w
  end
  return T(no_nan_div(num, den))
end

function AUC:_state() return count_state(self, FOUR_COUNTS) end
count_properties(AUC, FOUR_COUNTS)

function AUC:get_config()
  local c = Metric.get_config(self)
  c.num_thresholds, c.curve, c.summation_method = self.num_thresholds, self.curve, self.summation_method
  c.multi_label, c.num_labels, c.label_weights = self.multi_label, self.num_labels, copy_list(self.label_weights)
  c.from_logits, c.thresholds = self.from_logits, copy_list(self._init_thresholds)
  return c
end

--- FBetaScore{average=nil|"micro"|"macro"|"weighted", beta=1.0, threshold=nil, name="fbeta_score", dtype="float32"}:
-- the F-beta score of each class (one-hot y_true, scores or 0/1 y_pred), or averaged.
local FBetaScore = Metric:extend("FBetaScore")
FBetaScore.default_name = "fbeta_score"
metrics.FBetaScore = FBetaScore

function FBetaScore:__init(kw)
  local who = getmetatable(self).__name
  kw = check_args(who, kw, { average = true, beta = true, threshold = true })
  Metric.__init(self, kw)
  local avg = kw.average
  if avg ~= nil and avg ~= "micro" and avg ~= "macro" and avg ~= "weighted" then
    raise(("%s: Invalid `average` argument value. Expected one of: {nil, 'micro', 'macro', 'weighted'}. Received: average=%s")
      :format(who, tostring(avg)))
  end
  local beta = kw.beta or getmetatable(self).default_beta or 1.0
  if type(beta) ~= "number" then
    raise(("%s: Invalid `beta` argument value. It should be a number. Received: beta=%s of type %s"):format(who, tostring(beta), type(beta)))
  end
  if beta <= 0 then
    raise(("%s: Invalid `beta` argument value. It should be > 0. Received: beta=%s"):format(who, tostring(beta)))
  end
  local thr = kw.threshold
  if thr ~= nil and type(thr) ~= "number" then
    raise(("%s: Invalid `threshold` argument value. It should be a number. Received: threshold=%s of type %s"):format(who, tostring(thr), type(thr)))
  end
  if thr ~= nil and (thr > 1 or thr <= 0) then
    raise(("%s: Invalid `threshold` argument value. It should verify 0 < threshold <= 1. Received: threshold=%s"):format(who, tostring(thr)))
  end
  self.average, self.beta, self.threshold = avg, beta, thr
  self._tp = nil   -- the state is made by the first update, shaped by its classes
end

-- State: tensors of shape (num_classes) (() with average = "micro").
local FBETA_STATE = { { "true_positives", "_tp" }, { "false_positives", "_fp" }, { "false_negatives", "_fn" },
                      { "intermediate_weights", "_iw" } }

function FBetaScore:reset_state()
  if self._tp == nil then return end
  for _, s in ipairs(FBETA_STATE) do self[s[2]] = tensor.zeros_like(self[s[2]]) end
end

function FBetaScore:update_state(y_true, y_pred, sample_weight)
  local who = getmetatable(self).__name
  no_grad(function()
    local t, p = T(y_true), T(y_pred)
    if t.nd ~= 2 or p.nd ~= 2 then
      raise(("%s expects 2D inputs with shape (batch_size, output_dim). Received input shapes: y_pred.shape=%s and y_true.shape=%s")
        :format(who, core.shape_str(p:shape()), core.shape_str(t:shape())))
    end
    if self._tp == nil then
      local zero = self.average == "micro" and T(0) or tensor.zeros { last_dim(p) }
      for _, s in ipairs(FBETA_STATE) do self[s[2]] = zero end
    end
    local pb
    if self.threshold == nil then
      -- the row's maximum counts as predicted, unless the row is all zeros
      pb = ops.greater_equal(p, ops.max(p, -1, true)) * ops.greater(ops.abs(p), 1e-9)
    else
      pb = ops.greater(p, self.threshold)
    end
    -- sample_weight: a number, one per sample or one per entry (as y_true)
    local sw = sample_weight ~= nil and T(sample_weight) or nil
    if sw ~= nil and sw.nd < t.nd then
      local shape = sw:shape()
      for _ = sw.nd + 1, t.nd do shape[#shape + 1] = 1 end
      sw = ops.reshape(sw, shape)
    end
    local function wsum(v)
      if sw then v = v * sw end
      if self.average == "micro" then return ops.sum(v) end
      return ops.sum(v, 1)
    end
    self._tp = self._tp + wsum(pb * t)
    self._fp = self._fp + wsum(pb * (1 - t))
    self._fn = self._fn + wsum((1 - pb) * t)
    self._iw = self._iw + wsum(t)
  end)
end

function FBetaScore:result()
  if self._tp == nil then return T(0) end
  return no_grad(function()
    local tp, fp, fn, iw = self._tp, self._fp, self._fn, self._iw
    local b2 = self.beta * self.beta
    local precision = tp / (tp + fp + EPSILON)
    local recall = tp / (tp + fn + EPSILON)
    local f = precision * recall / (precision * b2 + recall + EPSILON) * (1 + b2)
    if self.average == "weighted" then
      return ops.sum(f * (iw / (ops.sum(iw) + EPSILON)))
    elseif self.average ~= nil then
      return ops.mean(f)
    end
    return f
  end)
end

function FBetaScore:_state()
  local out = {}
  if self._tp == nil then return out end
  for i, s in ipairs(FBETA_STATE) do out[i] = { s[1], self[s[2]] } end
  return out
end
state_properties(FBetaScore, { { "true_positives", "true_positives" }, { "false_positives", "false_positives" },
  { "false_negatives", "false_negatives" }, { "intermediate_weights", "intermediate_weights" } })

function FBetaScore:get_config()
  local c = Metric.get_config(self)
  c.average, c.beta, c.threshold = self.average, self.beta, self.threshold
  return c
end

--- F1Score{average=nil|"micro"|"macro"|"weighted", threshold=nil, name="f1_score", dtype="float32"}: FBetaScore with beta = 1.
local F1Score = FBetaScore:extend("F1Score")
F1Score.default_name = "f1_score"
metrics.F1Score = F1Score
function F1Score:__init(kw)
  kw = core.options(kw, "F1Score")
  if kw.beta ~= nil then raise("F1Score: unknown argument `beta` (use FBetaScore)") end
  FBetaScore.__init(self, kw)
end
function F1Score:get_config()   -- as Keras's: no beta (always 1), so from_config takes it back
  local c = FBetaScore.get_config(self)
  c.beta = nil
  return c
end

-- R2Score ------------------------------------------------------------------------

--- R2Score{class_aggregation="uniform_average", num_regressors=0}: the
-- coefficient of determination of each output column of 2-D (batch_size,
-- output_dim) inputs, then aggregated: "uniform_average", the
-- "variance_weighted_average", or false (Keras's None: one score per
-- output). num_regressors > 0 gives the adjusted R2.
local R2Score = Metric:extend("R2Score")
R2Score.default_name = "r2_score"
metrics.R2Score = R2Score

local R2_AGGREGATIONS = { uniform_average = true, variance_weighted_average = true }

function R2Score:__init(kw)
  kw = check_args("R2Score", kw, { class_aggregation = true, num_regressors = true })
  Metric.__init(self, kw)
  local agg = kw.class_aggregation
  if agg == nil then agg = "uniform_average" end
  if agg ~= false and not R2_AGGREGATIONS[agg] then
    raise(("R2Score: Invalid value for argument `class_aggregation`. Expected one of {false, 'uniform_average', 'variance_weighted_average'}. Received: class_aggregation=%s")
      :format(tostring(agg)))
  end
  local nr = kw.num_regressors or 0
  if type(nr) ~= "number" or nr < 0 or nr ~= math.floor(nr) then
    raise(("R2Score: Invalid value for argument `num_regressors`. Expected a value >= 0. Received: num_regressors=%s"):format(tostring(nr)))
  end
  self.class_aggregation, self.num_regressors = agg, nr
  self._num_samples = 0
end

-- Per-output state, made by the first update: tensors of shape (output_dim).
local R2_STATE = { { "squared_sum", "_squared_sum" }, { "sum", "_sum" }, { "residual", "_total_mse" }, { "count", "_count" } }

function R2Score:update_state(y_true, y_pred, sample_weight)
  no_grad(function()
    local t, p = same_rank(T(y_true), T(y_pred))
    if t.nd ~= 2 or p.nd ~= 2 then
      raise(("R2Score expects 2D inputs with shape (batch_size, output_dim). Received input shapes: y_pred.shape=%s and y_true.shape=%s")
        :format(core.shape_str(p:shape()), core.shape_str(t:shape())))
    end
    if self._sum == nil then
      local zero = tensor.zeros { last_dim(p) }
      for _, s in ipairs(R2_STATE) do self[s[2]] = zero end
    end
    local sw = T(sample_weight == nil and 1 or sample_weight)
    if sw.nd == 1 then sw = ops.expand_dims(sw, 2) end
    local ok, b = pcall(ops.broadcast_to, sw, t:shape())
    if not ok then
      raise(("R2Score: sample_weight of shape %s does not broadcast to y_true of shape %s"):format(
        core.shape_str(sw:shape()), core.shape_str(t:shape())))
    end
    sw = b
    local wt = t * sw
    self._sum = self._sum + ops.sum(wt, 1)
    self._squared_sum = self._squared_sum + ops.sum(t * wt, 1)
    self._total_mse = self._total_mse + ops.sum(ops.square(t - p) * sw, 1)
    self._count = self._count + ops.sum(sw, 1)
    -- a sample counts when it has a non-zero weight in at least one output
    self._num_samples = self._num_samples + sum_all(ops.max(ops.not_equal(sw, 0), -1))
  end)
end

function R2Score:reset_state()
  self._num_samples = 0
  if self._sum == nil then return end
  for _, s in ipairs(R2_STATE) do self[s[2]] = tensor.zeros_like(self[s[2]]) end
end

function R2Score:result()
  if self._sum == nil then return T(0) end
  return no_grad(function()
    local mean = self._sum / self._count
    local total = self._squared_sum - self._sum * mean
    local raw = 1 - self._total_mse / total
    raw = ops.where(ops.equal(ops.abs(raw), math.huge), 0, raw)   -- as Keras: an infinite score counts 0
    local r2
    if self.class_aggregation == "uniform_average" then r2 = ops.mean(raw)
    elseif self.class_aggregation == "variance_weighted_average" then r2 = ops.sum(total * raw) / ops.sum(total)
    else r2 = raw end
    local n, nr = self._num_samples, self.num_regressors
    if nr ~= 0 then
      if nr > n - 1 then
        io.stderr:write("klua warning: R2Score: more independent predictors than datapoints in adjusted R2 score. Falling back to standard R2 score.\n")
      elseif nr == n - 1 then
        io.stderr:write("klua warning: R2Score: division by zero in adjusted R2 score. Falling back to standard R2 score.\n")
      else
        r2 = 1 - (1 - r2) * ((n - 1) / (n - nr - 1))
      end
    end
    return r2
  end)
end

function R2Score:_state()
  local out = { { "num_samples", self._num_samples } }
  if self._sum == nil then return out end
  for _, s in ipairs(R2_STATE) do out[#out + 1] = { s[1], self[s[2]] } end
  return out
end
state_properties(R2Score, { { "num_samples", "num_samples" }, { "squared_sum", "squared_sum" }, { "sum", "sum" },
  { "total_mse", "residual" }, { "count", "count" } })

function R2Score:get_config()
  local c = Metric.get_config(self)
  c.class_aggregation, c.num_regressors = self.class_aggregation, self.num_regressors
  return c
end

-- IoU metrics ----------------------------------------------------------------------

--- IoU{num_classes=, target_class_ids=, ignore_class=, sparse_y_true=true, sparse_y_pred=true, axis=-1}
-- (also IoU(num_classes, target_class_ids, {...})): the intersection over
-- union of each target class, TP / (TP + FP + FN), averaged over the target
-- classes present, from a (num_classes, num_classes) confusion matrix (rows:
-- true class). Class ids are 0-based; ids outside [0, num_classes) and
-- labels equal to ignore_class are left out. Non-sparse inputs are argmaxed
-- along axis.
local IoU = Metric:extend("IoU")
IoU.default_name = "io_u"     -- Keras's to_snake_case("IoU")
metrics.IoU = IoU

local IOU_ARGS = { num_classes = true, target_class_ids = true, ignore_class = true, sparse_y_true = true,
                   sparse_y_pred = true, axis = true }

function IoU:__init(num_classes, target_class_ids, kw)
  local who = getmetatable(self).__name
  if type(num_classes) == "table" and target_class_ids == nil and kw == nil and not core.class_name_of(num_classes) then
    kw, num_classes = num_classes, nil
  end
  kw = check_args(who, kw, IOU_ARGS)
  if num_classes == nil then num_classes = kw.num_classes end
  if target_class_ids == nil then target_class_ids = kw.target_class_ids end
  if type(num_classes) ~= "number" or num_classes < 1 or num_classes ~= math.floor(num_classes) then
    raise(("%s: `num_classes` must be a positive integer. Received: num_classes=%s"):format(who, core.received(num_classes)))
  end
  if num_classes > MAX_CLASSES then
    raise(("%s: num_classes=%.0f is too large: the confusion matrix would hold num_classes^2 values (at most %d classes)")
      :format(who, num_classes, MAX_CLASSES))
  end
  if type(target_class_ids) ~= "table" or #target_class_ids == 0 then
    raise(("%s: `target_class_ids` must be a non-empty list of class ids. Received: target_class_ids=%s"):format(who, tostring(target_class_ids)))
  end
  local top = -1
  for _, id in ipairs(target_class_ids) do
    if type(id) ~= "number" or id < 0 or id ~= math.floor(id) then
      raise(("%s: target class ids must be non-negative integers. Received: %s"):format(who, tostring(id)))
    end
    top = math.max(top, id)
  end
  if top >= num_classes then
    raise(("%s: Target class id %d is out of range, which is [0, %d)."):format(who, top, num_classes))
  end
  Metric.__init(self, kw)
  self.num_classes, self.target_class_ids = num_classes, copy_list(target_class_ids)
  self.ignore_class = kw.ignore_class
  self.sparse_y_true = kw.sparse_y_true ~= false
  self.sparse_y_pred = kw.sparse_y_pred ~= false
  self.axis = kw.axis or -1
  self._cm = ffi.new("double[?]", num_classes * num_classes)
end

function IoU:_ids(y_true, y_pred)
  local t, p = T(y_true), T(y_pred)
  if not self.sparse_y_true then t = ops.argmax(t, self.axis) end
  if not self.sparse_y_pred then p = ops.argmax(p, self.axis) end
  return t, p
end

function IoU:update_state(y_true, y_pred, sample_weight)
  local who = getmetatable(self).__name
  no_grad(function()
    local t, p = self:_ids(y_true, y_pred)
    t, p = ops.reshape(t, { -1 }), ops.reshape(p, { -1 })
    local w
    if sample_weight ~= nil then
      w = ops.reshape(T(sample_weight), { -1 })
      local ok, b = pcall(ops.broadcast_to, w, t:shape())
      if not ok then
        raise(("%s: sample_weight of %d values does not fit %d labels"):format(who, tonumber(w.count), tonumber(t.count)))
      end
      w = b
    end
    nn.confusion_matrix(t, p, w, self.num_classes, self.ignore_class, self._cm)
  end)
end

function IoU:reset_state() ffi.fill(self._cm, 8 * self.num_classes * self.num_classes) end

function IoU:result()
  return no_grad(function()
    local n = self.num_classes
    local cm = tensor.from_doubles({ n, n }, self._cm)
    local tp = ops.take(ops.reshape(cm, { -1 }), tensor.arange(0, n * n, n + 1))   -- the diagonal
    local denom = ops.sum(cm, 1) + ops.sum(cm, 2) - tp
    local ids = T(self.target_class_ids)
    tp, denom = ops.take(tp, ids), ops.take(denom, ids)
    local valid = ops.greater(denom, 1e-9)   -- classes never seen count neither way
    local iou = ops.where(valid, tp / (denom + EPSILON), 0)
    return ops.sum(iou) / (ops.sum(valid) + EPSILON)
  end)
end

function IoU:_state() return { { "total_confusion_matrix", self._cm, { self.num_classes, self.num_classes } } } end
state_properties(IoU, { { "total_cm", "total_confusion_matrix" } })

function IoU:get_config()
  local c = Metric.get_config(self)
  c.num_classes, c.target_class_ids, c.ignore_class = self.num_classes, copy_list(self.target_class_ids), self.ignore_class
  c.sparse_y_true, c.sparse_y_pred, c.axis = self.sparse_y_true, self.sparse_y_pred, self.axis
  return c
end

local function drop(config, keys)
  for _, k in ipairs(keys) do config[k] = nil end
  return config
end

-- The first argument by position or in a config table, for the IoU variants.
local function leading(first, kw, key, who)
  if type(first) == "table" and kw == nil and not core.class_name_of(first) then return first[key], first end
  local o = {}
  for k, v in pairs(core.options(kw, who)) do o[k] = v end
  if first ~= nil then o[key] = first end
  return first, o
end

--- MeanIoU{num_classes=, ignore_class=, sparse_y_true=true, sparse_y_pred=true, axis=-1}
-- (also MeanIoU(num_classes, {...})): IoU averaged over every class.
local MeanIoU = IoU:extend("MeanIoU")
MeanIoU.default_name = "mean_io_u"
metrics.MeanIoU = MeanIoU
function MeanIoU:__init(num_classes, kw)
  num_classes, kw = leading(num_classes, kw, "num_classes", getmetatable(self).__name)
  if kw.target_class_ids ~= nil then raise("MeanIoU: unknown argument `target_class_ids` (use IoU)") end
  local o = {}
  for k, v in pairs(kw) do o[k] = v end
  o.target_class_ids = type(num_classes) == "number" and num_classes >= 1 and num_classes <= MAX_CLASSES
    and range(0, num_classes - 1) or nil
  IoU.__init(self, o)
end
function MeanIoU:get_config() return drop(IoU.get_config(self), { "target_class_ids" }) end

--- BinaryIoU{target_class_ids={0, 1}, threshold=0.5}: IoU of two classes,
-- predictions >= threshold counting as class 1.
local BinaryIoU = IoU:extend("BinaryIoU")
BinaryIoU.default_name = "binary_io_u"
metrics.BinaryIoU = BinaryIoU
function BinaryIoU:__init(kw)
  kw = check_args("BinaryIoU", kw, { target_class_ids = true, threshold = true })
  local thr = kw.threshold or 0.5
  if type(thr) ~= "number" then raise(("BinaryIoU: `threshold` must be a number. Received: threshold=%s"):format(tostring(thr))) end
  IoU.__init(self, { num_classes = 2, target_class_ids = kw.target_class_ids or { 0, 1 }, name = kw.name, dtype = kw.dtype })
  self.threshold = thr
end
function BinaryIoU:update_state(y_true, y_pred, sample_weight)
  return IoU.update_state(self, y_true, no_grad(ops.greater_equal, T(y_pred), self.threshold), sample_weight)
end
function BinaryIoU:get_config()
  return { target_class_ids = copy_list(self.target_class_ids), threshold = self.threshold, name = self.name, dtype = self.dtype }
end

--- OneHotIoU{num_classes=, target_class_ids=, ignore_class=, sparse_y_pred=false, axis=-1}:
-- IoU with one-hot y_true (and, by default, scores as y_pred), both argmaxed.
local OneHotIoU = IoU:extend("OneHotIoU")
OneHotIoU.default_name = "one_hot_io_u"
metrics.OneHotIoU = OneHotIoU
function OneHotIoU:__init(num_classes, target_class_ids, kw)
  if type(num_classes) == "table" and target_class_ids == nil and kw == nil then kw = num_classes; num_classes = nil end
  kw = kw or {}
  if kw.sparse_y_true ~= nil then raise("OneHotIoU: unknown argument `sparse_y_true`") end
  local o = {}
  for k, v in pairs(kw) do o[k] = v end
  o.num_classes = num_classes or kw.num_classes
  o.target_class_ids = target_class_ids or kw.target_class_ids
  o.sparse_y_true, o.sparse_y_pred = false, kw.sparse_y_pred == true
  IoU.__init(self, o)
end
function OneHotIoU:get_config() return drop(IoU.get_config(self), { "sparse_y_true" }) end

--- OneHotMeanIoU{num_classes=, ignore_class=, sparse_y_pred=false, axis=-1}
-- (also OneHotMeanIoU(num_classes, {...})): MeanIoU with one-hot y_true.
local OneHotMeanIoU = MeanIoU:extend("OneHotMeanIoU")
OneHotMeanIoU.default_name = "one_hot_mean_io_u"
metrics.OneHotMeanIoU = OneHotMeanIoU
function OneHotMeanIoU:__init(num_classes, kw)
  num_classes, kw = leading(num_classes, kw, "num_classes", "OneHotMeanIoU")
  if kw.sparse_y_true ~= nil then raise("OneHotMeanIoU: unknown argument `sparse_y_true`") end
  local o = {}
  for k, v in pairs(kw) do o[k] = v end
  o.sparse_y_true, o.sparse_y_pred = false, kw.sparse_y_pred == true
  MeanIoU.__init(self, o)
end
function OneHotMeanIoU:get_config() return drop(MeanIoU.get_config(self), { "sparse_y_true" }) end

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
  -- the rest of Keras 3's list, by Keras's snake_case names and the usual spellings
  f_beta_score = "FBetaScore",
  true_positives = "TruePositives", false_positives = "FalsePositives",
  true_negatives = "TrueNegatives", false_negatives = "FalseNegatives",
  precision_at_recall = "PrecisionAtRecall", recall_at_precision = "RecallAtPrecision",
  sensitivity_at_specificity = "SensitivityAtSpecificity", specificity_at_sensitivity = "SpecificityAtSensitivity",
  mean_absolute_percentage_error = "MeanAbsolutePercentageError", mape = "MeanAbsolutePercentageError",
  mean_squared_logarithmic_error = "MeanSquaredLogarithmicError", msle = "MeanSquaredLogarithmicError",
  cosine_similarity = "CosineSimilarity", log_cosh_error = "LogCoshError", logcosh = "LogCoshError",
  r2_score = "R2Score", pearson_correlation = "PearsonCorrelation", concordance_correlation = "ConcordanceCorrelation",
  hinge = "Hinge", squared_hinge = "SquaredHinge", categorical_hinge = "CategoricalHinge",
  kl_divergence = "KLDivergence", poisson = "Poisson",
  binary_crossentropy = "BinaryCrossentropy", bce = "BinaryCrossentropy",
  categorical_crossentropy = "CategoricalCrossentropy", sparse_categorical_crossentropy = "SparseCategoricalCrossentropy",
  iou = "IoU", io_u = "IoU", binary_iou = "BinaryIoU", binary_io_u = "BinaryIoU", mean_iou = "MeanIoU", mean_io_u = "MeanIoU",
  one_hot_iou = "OneHotIoU", one_hot_io_u = "OneHotIoU", one_hot_mean_iou = "OneHotMeanIoU", one_hot_mean_io_u = "OneHotMeanIoU",
}

--- get(identifier): a metric object from a name ("accuracy", "acc", "mse",
-- "AUC"), a registered name, a config {class_name=, config=}, a metric class
-- or object; a plain function (y_true, y_pred) is returned as it is; nil
-- gives nil.
local GET = { who = "metrics.get", kind = "metric", builtins = metrics, aliases = names, base = Metric, functions = true,
  hidden = { Metric = true, Reduce = true, MeanMetricWrapper = true }, raise = raise }
function metrics.get(id) return registry.resolve(id, GET) end

--- serialize(metric): {class_name=, config=} for a metric object, as Keras's serialize.
function metrics.serialize(m) return registry.serialize(m, core.raise) end
--- deserialize(config): the metric a serialize() table describes (the same as get).
metrics.deserialize = metrics.get

-- Whatever fails inside a metric function (a composed op, a conversion) names the function.
core.name_errors(metrics)

return metrics
