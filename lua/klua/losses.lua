-- losses.lua — klua.losses: Keras's losses as callable objects, as functions
-- (klua.losses.mse(y_true, y_pred) -> per-sample losses) and by name. The
-- per-sample loss of each is one fused C op with its backward (src/ops/loss.c);
-- sample weights, ignore_class masks and the batch reduction are composed
-- here from ordinary ops, following keras/src/losses/loss.py.
--   local loss_fn = klua.losses.SparseCategoricalCrossentropy{from_logits = true}
--   local loss = loss_fn(y_true, logits)          -- scalar tensor, on the tape
local core = require("klua.core")
local registry = require("klua.registry")
local tensor = require("klua.tensor")
local ops = require("klua.ops")
local class = require("klua.class")
local raise, op, T = core.raise, core.op, tensor.T

local losses = {}

-- Shapes ------------------------------------------------------------------------

local function last_dim(x) return x.nd > 0 and tonumber(x.dims[x.nd - 1]) or nil end

local function drop_last(x)
  local s = x:shape()
  s[#s] = nil
  return ops.reshape(x, s)
end

local function add_last(x)
  local s = x:shape()
  s[#s + 1] = 1
  return ops.reshape(x, s)
end

--- same_rank(x1, x2[, expand_rank_1]): Keras's squeeze_or_expand_to_same_rank:
-- when the ranks differ by one and the longer ends in a unit axis, squeeze it
-- (or give a rank-1 partner a trailing unit axis).
local function same_rank(x1, x2, expand_rank_1)
  if not core.is_tensor(x1) then x1 = T(x1, "squeeze_or_expand_to_same_rank", "x1") end
  if not core.is_tensor(x2) then x2 = T(x2, "squeeze_or_expand_to_same_rank", "x2") end
  if expand_rank_1 == nil then expand_rank_1 = true end
  local r1, r2 = x1.nd, x2.nd
  if r1 == r2 then return x1, x2 end
  if r1 == r2 + 1 and last_dim(x1) == 1 then
    if r2 == 1 and expand_rank_1 then x2 = add_last(x2) else x1 = drop_last(x1) end
  end
  if r2 == r1 + 1 and last_dim(x2) == 1 then
    if r1 == 1 and expand_rank_1 then x1 = add_last(x1) else x2 = drop_last(x2) end
  end
  return x1, x2
end
losses.squeeze_or_expand_to_same_rank = same_rank

local function pair(y_true, y_pred, who)
  local p = T(y_pred, who, "y_pred")
  local t = T(y_true, who, "y_true")
  return same_rank(t, p)
end

-- Options may come as a table of keywords or, Keras-style, by position. A
-- table with a first element is a positional value (a list of labels or axes).
-- The kinds of the options that have one (the function's name is put in
-- front of the message by core.name_errors).
local OPTION_KINDS = { label_smoothing = "number", gamma = "number", beta = "number", margin = "number",
  from_logits = "boolean", apply_class_balancing = "boolean", remove_diagonal = "boolean" }
local function opts(names, ...)
  local first = ...
  local o
  if type(first) == "table" and first[1] == nil and not core.class_name_of(first) then
    o = first
  else
    o = {}
    for i, n in ipairs(names) do o[n] = (select(i, ...)) end
  end
  for k, kind in pairs(OPTION_KINDS) do
    local v = o[k]
    if v ~= nil and (type(v) ~= kind or v ~= v) then
      raise(("%s must be a %s. Received: %s=%s"):format(k, kind, k, core.received(v)))
    end
  end
  return o
end

-- The class axis (1-based, negative from the end, default -1) as 0-based.
local function axis0(axis, x, what) return core.axis_arg(axis == nil and -1 or axis, x.nd, what) end

--- to_last(x, a): x with its axis a (0-based) moved to the end, so that the
-- fused kernels, which reduce the last axis, serve any axis.
local function to_last(x, a)
  if a == x.nd - 1 then return x end
  local perm = {}
  for i = 1, x.nd do if i ~= a + 1 then perm[#perm + 1] = i end end
  perm[#perm + 1] = a + 1
  return ops.transpose(x, perm)
end

local function affine(x, a, b) return op("scale", x, nil, nil, { f = { a, b } }) end

-- Keras's backend.epsilon(); probabilities are clipped to [EPS, 1 - EPS].
local EPS = 1e-7

-- Per-sample loss functions (keras.losses.<name>) -------------------------------

local function elementwise_loss(name)
  return function(y_true, y_pred)
    local t, p = pair(y_true, y_pred, name)
    return op(name, t, p)
  end
end

--- mean_squared_error(y_true, y_pred): mean((y_true - y_pred)^2) over the last axis (also mse, MSE).
--- mean_absolute_error(y_true, y_pred): mean(|y_true - y_pred|) over the last axis (also mae, MAE).
--- mean_absolute_percentage_error(y_true, y_pred): 100 * mean(|y_true - y_pred| / |y_true|) over the last axis (also mape, MAPE).
--- mean_squared_logarithmic_error(y_true, y_pred): mean((log(1 + y_true) - log(1 + y_pred))^2) over the last axis (also msle, MSLE).
--- log_cosh(y_true, y_pred): mean(log(cosh(y_pred - y_true))) over the last axis.
--- hinge(y_true, y_pred): mean(max(1 - y_true * y_pred, 0)) over the last axis; 0/1 labels become -1/1.
--- squared_hinge(y_true, y_pred): mean(max(1 - y_true * y_pred, 0)^2) over the last axis; 0/1 labels become -1/1.
--- categorical_hinge(y_true, y_pred): max(0, 1 + max((1 - y_true) * y_pred) - sum(y_true * y_pred)) over the last axis.
losses.mean_squared_error = elementwise_loss("mean_squared_error")
losses.mean_absolute_error = elementwise_loss("mean_absolute_error")
losses.mean_absolute_percentage_error = elementwise_loss("mean_absolute_percentage_error")
losses.mean_squared_logarithmic_error = elementwise_loss("mean_squared_logarithmic_error")
losses.log_cosh = elementwise_loss("log_cosh")
losses.hinge = elementwise_loss("hinge")
losses.squared_hinge = elementwise_loss("squared_hinge")
losses.categorical_hinge = elementwise_loss("categorical_hinge")

--- kl_divergence(y_true, y_pred): sum(t * log(t / p)) over the last axis, both clipped to [1e-7, 1].
function losses.kl_divergence(y_true, y_pred) return op("kl_divergence", T(y_true), T(y_pred)) end
--- poisson(y_true, y_pred): mean(p - t * log(p + 1e-7)) over the last axis.
function losses.poisson(y_true, y_pred) return op("poisson", T(y_true), T(y_pred)) end

--- huber(y_true, y_pred, delta=1.0): mean over the last axis of 0.5 e^2 where |e| <= delta, else delta (|e| - delta / 2).
function losses.huber(y_true, y_pred, delta)
  delta = type(delta) == "table" and delta.delta or delta or 1.0
  if type(delta) ~= "number" or delta <= 0 then raise("huber: delta must be a positive number, got " .. tostring(delta)) end
  local t, p = pair(y_true, y_pred)
  return op("huber", t, p, nil, { f = { delta } })
end

--- cosine_similarity(y_true, y_pred, axis=-1): -cos along axis.
function losses.cosine_similarity(y_true, y_pred, axis)
  axis = type(axis) == "table" and axis.axis or axis
  local t, p = pair(y_true, y_pred)
  if p.nd > 0 then
    local a = axis0(axis, p, "cosine_similarity")
    t, p = to_last(t, a), to_last(p, a)
  end
  return op("cosine_similarity", t, p)
end

--- binary_crossentropy(y_true, y_pred, from_logits=false, label_smoothing=0, axis=-1):
-- the mean over axis of the elementwise crossentropy.
function losses.binary_crossentropy(y_true, y_pred, ...)
  local o = opts({ "from_logits", "label_smoothing", "axis" }, ...)
  local p = T(y_pred)
  local t = T(y_true)
  local ls = o.label_smoothing or 0
  if ls ~= 0 then t = affine(t, 1 - ls, 0.5 * ls) end
  local e = op("binary_crossentropy", t, p, nil, { ints = { o.from_logits and 1 or 0 } })
  if e.nd == 0 then return e end
  return ops.mean(e, axis0(o.axis, e, "binary_crossentropy") + 1)
end

--- binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=false, alpha=0.25, gamma=2, from_logits=false, label_smoothing=0, axis=-1):
-- the binary crossentropy down-weighted by (1 - p_t)^gamma for well-classified entries, averaged over axis.
function losses.binary_focal_crossentropy(y_true, y_pred, ...)
  local o = opts({ "apply_class_balancing", "alpha", "gamma", "from_logits", "label_smoothing", "axis" }, ...)
  local p = T(y_pred)
  local t = T(y_true)
  local ls = o.label_smoothing or 0
  if ls ~= 0 then t = affine(t, 1 - ls, 0.5 * ls) end
  if p.nd > 0 and t.nd == p.nd then
    local a = axis0(o.axis, p, "binary_focal_crossentropy")
    t, p = to_last(t, a), to_last(p, a)
  end
  local alpha, gamma = o.alpha or 0.25, o.gamma or 2.0
  if type(alpha) ~= "number" then raise("alpha must be a number. Received: alpha=" .. core.received(alpha)) end
  return op("binary_focal_crossentropy", t, p, nil,
    { ints = { o.from_logits and 1 or 0, o.apply_class_balancing and 1 or 0 }, f = { alpha, gamma } })
end

--- categorical_crossentropy(y_true, y_pred, from_logits=false, label_smoothing=0, axis=-1): -sum(y_true * log(p))
-- over axis, y_true one-hot (or probabilities) and p the predicted probabilities (softmax of logits with from_logits).
function losses.categorical_crossentropy(y_true, y_pred, ...)
  local o = opts({ "from_logits", "label_smoothing", "axis" }, ...)
  local p = T(y_pred)
  local t = T(y_true)
  local a = p.nd > 0 and axis0(o.axis, p, "categorical_crossentropy") or 0
  local ls = o.label_smoothing or 0
  if ls ~= 0 then t = affine(t, 1 - ls, ls / (p.nd > 0 and tonumber(p.dims[a]) or 1)) end
  if p.nd > 0 and t.nd == p.nd then t, p = to_last(t, a), to_last(p, a) end
  return op("categorical_crossentropy", t, p, nil, { ints = { o.from_logits and 1 or 0 } })
end

--- categorical_focal_crossentropy(y_true, y_pred, alpha=0.25, gamma=2, from_logits=false, label_smoothing=0, axis=-1):
-- sum over axis of alpha * (1 - p)^gamma * -y_true * log(p), p the
-- renormalised, clipped probabilities (Keras's formula, composed of ops).
-- alpha is a number or a list with one weight per class.
function losses.categorical_focal_crossentropy(y_true, y_pred, ...)
  local o = opts({ "alpha", "gamma", "from_logits", "label_smoothing", "axis" }, ...)
  local what = "categorical_focal_crossentropy"
  local p = T(y_pred)
  local t = T(y_true)
  if p.nd == 0 then raise(what .. ": y_pred must have a class axis, got a scalar") end
  if not tensor.same_shape(t, p) then
    raise(("%s: y_true %s and y_pred %s must have the same shape"):format(what, core.shape_str(t:shape()), core.shape_str(p:shape())))
  end
  local a = axis0(o.axis, p, what)
  local k = tonumber(p.dims[a])
  local alpha, gamma = o.alpha == nil and 0.25 or o.alpha, o.gamma == nil and 2.0 or o.gamma
  if type(alpha) == "table" then
    if #alpha ~= k then raise(("%s: alpha has %d weights for %d classes"):format(what, #alpha, k)) end
    local shape = {}
    for i = 1, p.nd do shape[i] = i == a + 1 and k or 1 end
    alpha = ops.reshape(tensor.tensor(alpha), shape)
  end
  local ls = o.label_smoothing or 0
  if ls ~= 0 then t = affine(t, 1 - ls, ls / k) end
  if o.from_logits then p = ops.softmax(p, a + 1) end
  local q = ops.clip(p / ops.sum(p, a + 1, true), EPS, 1 - EPS)
  local focal = ops.power(affine(q, -1, 1), gamma) * alpha
  return ops.sum(focal * -(t * ops.log(q)), a + 1)
end

--- sparse_categorical_crossentropy(y_true, y_pred, from_logits=false, ignore_class=nil, axis=-1)
-- Labels are 0-based class indices, shaped as y_pred without its class axis
-- (or with a 1 there). Returns the per-sample losses (0 where the label is
-- ignore_class) and, with ignore_class, the mask of valid samples.
function losses.sparse_categorical_crossentropy(y_true, y_pred, ...)
  local o = opts({ "from_logits", "ignore_class", "axis" }, ...)
  local p = T(y_pred)
  local t = T(y_true)
  local ic = o.ignore_class
  if ic ~= nil and (type(ic) ~= "number" or ic ~= math.floor(ic)) then
    raise("sparse_categorical_crossentropy: ignore_class must be an integer, got " .. tostring(ic))
  end
  if p.nd > 0 then
    local a = axis0(o.axis, p, "sparse_categorical_crossentropy")
    if a ~= p.nd - 1 then
      if t.nd == p.nd and tonumber(t.dims[a]) == 1 then t = ops.squeeze(t, a + 1) end
      p = to_last(p, a)
    end
  end
  local values = op("sparse_categorical_crossentropy", t, p, nil,
    { ints = { o.from_logits and 1 or 0, ic ~= nil and 1 or 0, ic or 0 } })
  if ic == nil then return values end
  local mask = ops.not_equal(t, ic)
  if mask.count == values.count then mask = ops.reshape(mask, values:shape()) end
  return values, mask
end

-- axis as a number, a list of axes, nil (all axes) or inside an options table.
local function axes_or_opts(a, names)
  if type(a) == "table" and a[1] == nil and next(a) ~= nil then return a end
  return { [names] = a }
end

--- dice(y_true, y_pred, axis=nil): 1 - 2 sum(t p) / (sum(t) + sum(p) + 1e-7),
-- the sums over axis (a number or a list of 1-based axes; nil: all of them).
function losses.dice(y_true, y_pred, axis)
  axis = axes_or_opts(axis, "axis").axis
  local p = T(y_pred)
  local t = T(y_true)
  local inter = ops.sum(t * p, axis)
  return affine((inter * 2) / (ops.sum(t, axis) + ops.sum(p, axis) + EPS), -1, 1)
end

--- tversky(y_true, y_pred, alpha=0.5, beta=0.5, axis=nil): 1 - TP / (TP +
-- alpha FP + beta FN + 1e-7) with soft counts summed over axis (as dice).
function losses.tversky(y_true, y_pred, ...)
  local o = opts({ "alpha", "beta", "axis" }, ...)
  local alpha, beta, axis = o.alpha or 0.5, o.beta or 0.5, o.axis
  local p = T(y_pred)
  local t = T(y_true)
  local inter = ops.sum(p * t, axis)
  local fp = ops.sum(affine(t, -1, 1) * p, axis)
  local fn = ops.sum(t * affine(p, -1, 1), axis)
  return affine(inter / (inter + fp * alpha + fn * beta + EPS), -1, 1)
end

-- Where Keras fills with -inf before a logsumexp: finite, so that a row
-- without pairs gives softplus(-1e30) = 0 and a zero gradient, not NaN.
local NO_PAIR = -1e30

--- circle(y_true, y_pred, ref_labels=y_true, ref_embeddings=y_pred, remove_diagonal=true, gamma=80, margin=0.4):
-- Circle loss of (N) integer labels and (N, D) L2-normalised embeddings
-- against the (M) reference labels and (M, D) embeddings. Returns the (N)
-- losses and the mask of those > 0 (anchors with no positive or no negative
-- pair are left out of the mean, as in Keras).
function losses.circle(y_true, y_pred, ...)
  local o = opts({ "ref_labels", "ref_embeddings", "remove_diagonal", "gamma", "margin" }, ...)
  local what = "circle"
  local p = T(y_pred)
  local t = T(y_true)
  local ref_p = o.ref_embeddings ~= nil and T(o.ref_embeddings) or p
  local ref_t = o.ref_labels ~= nil and T(o.ref_labels) or t
  local gamma, margin = o.gamma or 80.0, o.margin or 0.4
  if p.nd ~= 2 or ref_p.nd ~= 2 or tonumber(p.dims[1]) ~= tonumber(ref_p.dims[1]) then
    raise(("%s: embeddings must be (batch, dim) matrices of one dim, got y_pred %s and ref_embeddings %s")
      :format(what, core.shape_str(p:shape()), core.shape_str(ref_p:shape())))
  end
  local n, m = tonumber(p.dims[0]), tonumber(ref_p.dims[0])
  if tonumber(t.count) ~= n or tonumber(ref_t.count) ~= m then
    raise(("%s: expected one label per embedding, got labels %s for y_pred %s and %s for ref_embeddings %s"):format(what,
      core.shape_str(t:shape()), core.shape_str(p:shape()), core.shape_str(ref_t:shape()), core.shape_str(ref_p:shape())))
  end
  local dist = ops.relu(affine(ops.matmul(p, ref_p, { transpose_b = true }), -1, 1))
  local pos = ops.equal(ops.reshape(t, { n, 1 }), ops.reshape(ref_t, { 1, m }))
  local neg = affine(pos, -1, 1)
  if o.remove_diagonal ~= false then pos = pos * affine(tensor.eye(n, m), -1, 1) end
  local pos_w = ops.relu(affine(dist, 1, margin) * pos)
  local neg_w = ops.relu(affine(dist, -1, 1 + margin) * neg)
  local pos_term = pos_w * affine(dist, gamma, -gamma * margin)      -- -gamma * w * (margin - d)
  local neg_term = neg_w * affine(dist, -gamma, gamma * (1 - margin)) -- gamma * w * (1 - margin - d)
  local p_loss = ops.logsumexp(ops.where(pos, pos_term, NO_PAIR), 2)
  local n_loss = ops.logsumexp(ops.where(neg, neg_term, NO_PAIR), 2)
  local loss = ops.softplus(p_loss + n_loss)
  return loss, ops.greater(loss, 0)
end

local function check_q(q, what)
  if type(q) ~= "number" or not (q > 0 and q < 1) then
    raise(("%s: q must be in the interval (0, 1). Received: q=%s"):format(what, tostring(q)))
  end
end

--- categorical_generalized_cross_entropy(y_true, y_pred, q): (1 - p^q) / q,
-- p the probability y_pred gives the label's class; labels are 0-based
-- class indices shaped as y_pred without its last axis (or with a 1 there).
function losses.categorical_generalized_cross_entropy(y_true, y_pred, q)
  if type(q) == "table" then q = q.q end
  check_q(q, "categorical_generalized_cross_entropy")
  local p = T(y_pred)
  local t = T(y_true)
  if p.nd == 0 then raise("categorical_generalized_cross_entropy: y_pred must have a class axis, got a scalar") end
  if t.nd == p.nd and last_dim(t) == 1 then t = drop_last(t) end
  local pt = ops.sum(p * ops.one_hot(t, last_dim(p)), -1)
  return affine(pt ^ q, -1 / q, 1 / q)
end

--- ctc(y_true, y_pred): the CTC loss of (batch, max_length) integer labels,
-- 0-padded (0 is the blank and no class), and (batch, time, classes) logits
-- (not softmaxed); one fused C op, forward-backward in log space.
function losses.ctc(y_true, y_pred)
  local p = T(y_pred)
  local t = T(y_true)
  if t.nd ~= 2 then
    raise("ctc: y_true must be a tensor of shape (batch_size, max_length) in integer format. Received: y_true.shape=" .. core.shape_str(t:shape()))
  end
  if p.nd ~= 3 then
    raise("ctc: y_pred must be logits of shape (batch_size, max_length, num_classes). Received: y_pred.shape=" .. core.shape_str(p:shape()))
  end
  return core.op_n("ctc_loss", { t, p }, { ints = { 0 } })
end

losses.mse, losses.MSE = losses.mean_squared_error, losses.mean_squared_error
losses.mae, losses.MAE = losses.mean_absolute_error, losses.mean_absolute_error
losses.mape, losses.MAPE = losses.mean_absolute_percentage_error, losses.mean_absolute_percentage_error
losses.msle, losses.MSLE = losses.mean_squared_logarithmic_error, losses.mean_squared_logarithmic_error
losses.kld, losses.KLD, losses.kullback_leibler_divergence = losses.kl_divergence, losses.kl_divergence, losses.kl_divergence
losses.logcosh = losses.log_cosh
losses.bce = losses.binary_crossentropy

-- Reduction (keras/src/losses/loss.py) -------------------------------------------

local REDUCTIONS = { sum_over_batch_size = true, sum = true, mean = true, mean_with_sample_weight = true, none = true }

local function standardize_reduction(r, who)
  if r == nil then return "sum_over_batch_size" end
  if r == false then return "none" end
  if not REDUCTIONS[r] then
    raise(("%s: invalid reduction %s; expected one of \"sum_over_batch_size\", \"sum\", \"mean\", \"mean_with_sample_weight\", \"none\"")
      :format(who, tostring(r)))
  end
  return r
end

local function reduce_values(values, sample_weight, reduction)
  if reduction == "none" or values.nd == 0 or (values.nd == 1 and values.count == 0) then return values end
  local loss = ops.sum(values)
  if reduction == "sum_over_batch_size" or reduction == "mean" or reduction == "mean_with_sample_weight" then
    if reduction == "mean_with_sample_weight" and sample_weight ~= nil then
      local d = tensor.sum_all(sample_weight)
      loss = d ~= 0 and loss * (1 / d) or loss * 0
    else
      local n = tonumber(values.count)
      if n > 0 then loss = loss * (1 / n) end
    end
  end
  return loss
end

--- reduce_weighted_values(values, sample_weight, mask, reduction): weights,
-- the mask of ignored samples and the reduction, as Keras applies them.
local function reduce_weighted_values(values, sample_weight, mask, reduction)
  local who = "reduce_weighted_values"
  values = T(values, who, "values")
  if sample_weight ~= nil then sample_weight = T(sample_weight, who, "sample_weight") end
  if mask ~= nil then mask = T(mask, who, "mask") end
  reduction = standardize_reduction(reduction, who)
  if mask ~= nil then
    if reduction == "mean" or reduction == "sum_over_batch_size" then
      -- valid entries weigh total/valid, so the mean runs over valid entries only
      local valid = tensor.sum_all(mask)
      mask = mask * (valid ~= 0 and tonumber(mask.count) / valid or 0)
    end
    if sample_weight ~= nil then
      local m, sw = same_rank(mask, sample_weight)
      sample_weight = sw * m
    else
      sample_weight = mask
    end
  end
  if sample_weight ~= nil then
    local v, sw = same_rank(values, sample_weight)
    local ok, r = pcall(ops.multiply, v, sw)
    if not ok then
      raise(("loss: sample_weight of shape %s does not fit losses of shape %s"):format(
        core.shape_str(sample_weight:shape()), core.shape_str(values:shape())))
    end
    values = r
  end
  return reduce_values(values, sample_weight, reduction)
end
losses.reduce_weighted_values = reduce_weighted_values

-- Loss classes ------------------------------------------------------------------

--- Loss: the base class. Subclasses define call(y_true, y_pred) returning
-- per-sample losses; calling the object applies sample weights and the reduction.
local Loss = class("Loss")
losses.Loss = Loss

--- Loss{reduction="sum_over_batch_size", name=nil}: the base class of losses: a subclass defines call(y_true, y_pred)
-- returning per-sample losses; loss(y_true, y_pred, sample_weight) weights and reduces them to a scalar.
function Loss:__init(kw)
  kw = kw or {}
  local cname = getmetatable(self).__name
  if type(kw) ~= "table" or core.class_name_of(kw) then
    raise(("%s: expected options as a table, e.g. %s{reduction = \"sum\"}, got %s"):format(cname, cname, core.describe(kw)))
  end
  if kw.name ~= nil and (type(kw.name) ~= "string" or kw.name == "") then
    raise(("%s: name must be a non-empty string. Received: name=%s"):format(cname, core.received(kw.name)))
  end
  self.name = kw.name or getmetatable(self).default_name or "loss"
  self.reduction = standardize_reduction(kw.reduction, getmetatable(self).__name)
end

--- Loss:call(y_true, y_pred): the per-sample losses (before sample weights and the reduction).
function Loss:call() raise(getmetatable(self).__name .. ": subclasses of Loss must define call(y_true, y_pred)") end

local function loss_call(self, who, y_true, y_pred, sample_weight)
  y_true, y_pred = T(y_true, who, "y_true"), T(y_pred, who, "y_pred")
  if sample_weight ~= nil then sample_weight = T(sample_weight, who, "sample_weight") end
  local values, mask = self:call(y_true, y_pred)
  return reduce_weighted_values(T(values, who, "the values call returned"), sample_weight, mask, self.reduction)
end
Loss.__call = function(self, y_true, y_pred, sample_weight)
  local who = getmetatable(self).__name
  if y_true == nil or y_pred == nil then raise(who .. ": expected (y_true, y_pred[, sample_weight])") end
  return core.named({ who, self.name }, loss_call, self, who, y_true, y_pred, sample_weight)
end

--- Loss:get_config(): the constructor arguments as a table; Class.from_config(config) rebuilds the loss.
function Loss:get_config() return { name = self.name, reduction = self.reduction } end
function Loss.from_config(cls, cfg) return cls(cfg) end
Loss.__tostring = function(self) return ("<%s name=%s>"):format(getmetatable(self).__name, tostring(self.name)) end

--- LossFunctionWrapper(fn, {reduction=, name=, ...fn options}): a Loss from a
-- function fn(y_true, y_pred[, options]) returning per-sample losses.
local LossFunctionWrapper = Loss:extend("LossFunctionWrapper")
losses.LossFunctionWrapper = LossFunctionWrapper

function LossFunctionWrapper:__init(fn, kw)
  if type(fn) ~= "function" then raise("LossFunctionWrapper: expected a function, got " .. type(fn)) end
  kw = kw or {}
  Loss.__init(self, kw)
  self.fn = fn
  self.fn_kwargs = {}
  for k, v in pairs(kw) do
    if k ~= "name" and k ~= "reduction" then self.fn_kwargs[k] = v end
  end
end

--- LossFunctionWrapper:call(y_true, y_pred): fn(y_true, y_pred[, options]), the wrapped function's per-sample losses.
function LossFunctionWrapper:call(y_true, y_pred)
  local t, p = pair(y_true, y_pred, getmetatable(self).__name)
  if next(self.fn_kwargs) then return self.fn(t, p, self.fn_kwargs) end
  return self.fn(t, p)
end

-- A named loss class with its options and their defaults; extra.optional
-- names options whose default is nil, extra.check(self) validates them.
local function loss_class(name, default_name, fn, defaults, extra)
  local cls = LossFunctionWrapper:extend(name)
  cls.default_name = default_name
  defaults = defaults or {}
  extra = extra or {}
  local optional = extra.optional or {}
  function cls:__init(kw)
    kw = kw or {}
    if type(kw) ~= "table" or core.class_name_of(kw) then
      raise(name .. ": expected options as a table, e.g. " .. name .. "{reduction = \"sum\"}, got " .. core.describe(kw))
    end
    local o = { name = kw.name or default_name, reduction = kw.reduction }
    for k, v in pairs(kw) do
      if k ~= "name" and k ~= "reduction" and k ~= "dtype" then
        if defaults[k] == nil and not optional[k] then raise(("%s: unknown argument `%s`"):format(name, tostring(k))) end
        o[k] = v
      end
    end
    for k, v in pairs(defaults) do
      if o[k] == nil then o[k] = v end
      self[k] = o[k]
    end
    for k in pairs(optional) do self[k] = o[k] end
    if extra.check then extra.check(self) end
    LossFunctionWrapper.__init(self, fn, o)
  end
  function cls:get_config()
    local cfg = Loss.get_config(self)
    for k in pairs(defaults) do cfg[k] = self[k] end
    for k in pairs(optional) do cfg[k] = self[k] end
    return cfg
  end
  losses[name] = cls
  return cls
end

--- MeanSquaredError{reduction="sum_over_batch_size", name="mean_squared_error"}: the mean of (y_true - y_pred)^2.
loss_class("MeanSquaredError", "mean_squared_error", losses.mean_squared_error)
--- MeanAbsoluteError{reduction="sum_over_batch_size", name="mean_absolute_error"}: the mean of |y_true - y_pred|.
loss_class("MeanAbsoluteError", "mean_absolute_error", losses.mean_absolute_error)
--- MeanAbsolutePercentageError{reduction="sum_over_batch_size", name="mean_absolute_percentage_error"}: 100 * mean(|y_true - y_pred| / |y_true|).
loss_class("MeanAbsolutePercentageError", "mean_absolute_percentage_error", losses.mean_absolute_percentage_error)
--- MeanSquaredLogarithmicError{reduction="sum_over_batch_size", name="mean_squared_logarithmic_error"}: the mean of (log(1 + y_true) - log(1 + y_pred))^2.
loss_class("MeanSquaredLogarithmicError", "mean_squared_logarithmic_error", losses.mean_squared_logarithmic_error)
--- Huber{delta=1.0, reduction="sum_over_batch_size", name="huber_loss"}: quadratic for errors up to delta, linear beyond.
loss_class("Huber", "huber_loss", function(t, p, o) return losses.huber(t, p, o.delta) end, { delta = 1.0 })
--- LogCosh{reduction="sum_over_batch_size", name="log_cosh"}: the mean of log(cosh(y_pred - y_true)).
loss_class("LogCosh", "log_cosh", losses.log_cosh)
--- KLDivergence{reduction="sum_over_batch_size", name="kl_divergence"}: sum(y_true * log(y_true / y_pred)) over the last axis.
loss_class("KLDivergence", "kl_divergence", losses.kl_divergence)
--- Poisson{reduction="sum_over_batch_size", name="poisson"}: mean(y_pred - y_true * log(y_pred)) over the last axis.
loss_class("Poisson", "poisson", losses.poisson)
--- CosineSimilarity{axis=-1, reduction="sum_over_batch_size", name="cosine_similarity"}: minus the cosine similarity along axis.
loss_class("CosineSimilarity", "cosine_similarity", function(t, p, o) return losses.cosine_similarity(t, p, o.axis) end, { axis = -1 })
--- Hinge{reduction="sum_over_batch_size", name="hinge"}: mean(max(1 - y_true * y_pred, 0)), labels -1/1 (0/1 converted).
loss_class("Hinge", "hinge", losses.hinge)
--- SquaredHinge{reduction="sum_over_batch_size", name="squared_hinge"}: mean(max(1 - y_true * y_pred, 0)^2).
loss_class("SquaredHinge", "squared_hinge", losses.squared_hinge)
--- CategoricalHinge{reduction="sum_over_batch_size", name="categorical_hinge"}: max(0, 1 + best wrong score - correct score).
loss_class("CategoricalHinge", "categorical_hinge", losses.categorical_hinge)
--- BinaryCrossentropy{from_logits=false, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size", name="binary_crossentropy"}:
-- the crossentropy of 0/1 labels and probabilities (logits with from_logits), averaged over axis.
loss_class("BinaryCrossentropy", "binary_crossentropy", losses.binary_crossentropy,
  { from_logits = false, label_smoothing = 0.0, axis = -1 })
--- BinaryFocalCrossentropy{apply_class_balancing=false, alpha=0.25, gamma=2.0, from_logits=false, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size", name="binary_focal_crossentropy"}:
-- the binary crossentropy down-weighted by (1 - p_t)^gamma for easy examples.
loss_class("BinaryFocalCrossentropy", "binary_focal_crossentropy", losses.binary_focal_crossentropy,
  { apply_class_balancing = false, alpha = 0.25, gamma = 2.0, from_logits = false, label_smoothing = 0.0, axis = -1 })
--- CategoricalCrossentropy{from_logits=false, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size", name="categorical_crossentropy"}:
-- the crossentropy of one-hot labels and class probabilities (logits with from_logits) along axis.
loss_class("CategoricalCrossentropy", "categorical_crossentropy", losses.categorical_crossentropy,
  { from_logits = false, label_smoothing = 0.0, axis = -1 })
--- CategoricalFocalCrossentropy{alpha=0.25, gamma=2.0, from_logits=false, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size", name="categorical_focal_crossentropy"}:
-- the categorical crossentropy down-weighted by alpha (1 - p)^gamma for well-classified examples.
loss_class("CategoricalFocalCrossentropy", "categorical_focal_crossentropy", losses.categorical_focal_crossentropy,
  { alpha = 0.25, gamma = 2.0, from_logits = false, label_smoothing = 0.0, axis = -1 })
--- Dice{axis=nil, reduction="sum_over_batch_size", name="dice"}: 1 - 2 sum(y_true y_pred) / (sum(y_true) + sum(y_pred)),
-- summed over axis (a list of axes; all by default).
loss_class("Dice", "dice", losses.dice, {}, { optional = { axis = true } })
--- Tversky{alpha=0.5, beta=0.5, axis=nil, reduction="sum_over_batch_size", name="tversky"}: 1 - the Tversky index,
-- false positives weighted by alpha and false negatives by beta.
loss_class("Tversky", "tversky", losses.tversky, { alpha = 0.5, beta = 0.5 }, { optional = { axis = true } })
--- Circle{gamma=80.0, margin=0.4, remove_diagonal=true, reduction="sum_over_batch_size", name="circle"}: the Circle
-- loss of (batch, d) embeddings with integer labels: pairs of the same class pulled together, others pushed apart.
loss_class("Circle", "circle", losses.circle, { gamma = 80.0, margin = 0.4, remove_diagonal = true })
--- CategoricalGeneralizedCrossEntropy{q=0.5, reduction="sum_over_batch_size", name="categorical_generalized_cross_entropy"}:
-- (1 - p_y^q) / q for integer labels y: between crossentropy (q -> 0) and MAE (q = 1), robust to noisy labels.
loss_class("CategoricalGeneralizedCrossEntropy", "categorical_generalized_cross_entropy",
  losses.categorical_generalized_cross_entropy, { q = 0.5 },
  { check = function(self) check_q(self.q, "CategoricalGeneralizedCrossEntropy") end })

--- CTC{reduction="sum_over_batch_size", name="ctc"}: connectionist temporal classification of 0-padded label
-- sequences (0 is the blank) against (batch, time, classes) logits.
-- CTC: labels and logits differ in rank by design, so no same-rank squeeze.
local CTC = loss_class("CTC", "ctc", losses.ctc)
--- CTC:call(y_true, y_pred): the per-sample CTC losses (klua.losses.ctc).
function CTC:call(y_true, y_pred) return losses.ctc(y_true, y_pred) end

--- SparseCategoricalCrossentropy{from_logits=false, ignore_class=nil, axis=-1, reduction="sum_over_batch_size", name="sparse_categorical_crossentropy"}:
-- the crossentropy of 0-based class ids and class probabilities (logits with from_logits); ignore_class is left out.
-- Sparse labels keep their own shape (no same-rank squeeze against y_pred),
-- and ignore_class may be nil, so this class spells its options out.
local SCCE = LossFunctionWrapper:extend("SparseCategoricalCrossentropy")
SCCE.default_name = "sparse_categorical_crossentropy"
losses.SparseCategoricalCrossentropy = SCCE
function SCCE:__init(kw)
  kw = core.options(kw, "SparseCategoricalCrossentropy")
  for k in pairs(kw) do
    if k ~= "from_logits" and k ~= "ignore_class" and k ~= "reduction" and k ~= "name" and k ~= "axis" and k ~= "dtype" then
      raise(("SparseCategoricalCrossentropy: unknown argument `%s`"):format(tostring(k)))
    end
  end
  Loss.__init(self, { name = kw.name or SCCE.default_name, reduction = kw.reduction })
  self.from_logits = kw.from_logits and true or false
  self.ignore_class = kw.ignore_class
  self.axis = kw.axis or -1
  self.fn = losses.sparse_categorical_crossentropy
  self.fn_kwargs = {}
  local ic = self.ignore_class
  if ic ~= nil and (type(ic) ~= "number" or ic ~= math.floor(ic)) then
    raise("SparseCategoricalCrossentropy: ignore_class must be an integer, got " .. tostring(ic))
  end
end
--- SparseCategoricalCrossentropy:call(y_true, y_pred): the per-sample losses and, with ignore_class, the mask.
function SCCE:call(y_true, y_pred)
  return losses.sparse_categorical_crossentropy(y_true, y_pred, self.from_logits, self.ignore_class, self.axis)
end
function SCCE:get_config()
  local cfg = Loss.get_config(self)
  cfg.from_logits, cfg.ignore_class, cfg.axis = self.from_logits, self.ignore_class, self.axis
  return cfg
end

-- Lookup -----------------------------------------------------------------------

local names = {
  mean_squared_error = "MeanSquaredError", mse = "MeanSquaredError",
  mean_absolute_error = "MeanAbsoluteError", mae = "MeanAbsoluteError",
  mean_absolute_percentage_error = "MeanAbsolutePercentageError", mape = "MeanAbsolutePercentageError",
  mean_squared_logarithmic_error = "MeanSquaredLogarithmicError", msle = "MeanSquaredLogarithmicError",
  huber = "Huber", huber_loss = "Huber", log_cosh = "LogCosh", logcosh = "LogCosh",
  kl_divergence = "KLDivergence", kld = "KLDivergence", kullback_leibler_divergence = "KLDivergence",
  poisson = "Poisson", cosine_similarity = "CosineSimilarity",
  hinge = "Hinge", squared_hinge = "SquaredHinge", categorical_hinge = "CategoricalHinge",
  binary_crossentropy = "BinaryCrossentropy", bce = "BinaryCrossentropy",
  binary_focal_crossentropy = "BinaryFocalCrossentropy",
  categorical_crossentropy = "CategoricalCrossentropy", sparse_categorical_crossentropy = "SparseCategoricalCrossentropy",
  categorical_focal_crossentropy = "CategoricalFocalCrossentropy", dice = "Dice", tversky = "Tversky", circle = "Circle",
  categorical_generalized_cross_entropy = "CategoricalGeneralizedCrossEntropy", ctc = "CTC",
}

--- get(identifier): a Loss object from a name ("mse", "categorical_crossentropy",
-- "CategoricalCrossentropy"), a registered name, a config {class_name=,
-- config=}, a Loss class or object; a plain function (y_true, y_pred) is
-- returned as it is; nil gives nil.
local GET = { who = "losses.get", kind = "loss", builtins = losses, aliases = names, base = Loss, functions = true,
  hidden = { Loss = true, LossFunctionWrapper = true }, raise = raise }
function losses.get(id) return registry.resolve(id, GET) end

--- serialize(loss): {class_name=, config=} for a Loss object.
function losses.serialize(l) return registry.serialize(l, core.raise) end
losses.deserialize = losses.get

-- Whatever fails inside a loss function (a composed op, a conversion) names the function.
core.name_errors(losses)

return losses
