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

local function pair(y_true, y_pred)
  local p = T(y_pred)
  local t = T(y_true)
  return same_rank(t, p)
end

-- Options may come as a table (Lua's keywords) or, Keras-style, by position.
local function opts(a, names)
  if type(a) == "table" then return a end
  local o, args = {}, { a }
  for i, n in ipairs(names) do o[n] = args[i] end
  return o
end

local function check_axis(axis, what)
  if axis ~= nil and axis ~= -1 then raise(("%s: only axis=-1 (the last axis) is supported, got %s"):format(what, tostring(axis))) end
end

local function affine(x, a, b) return op("scale", x, nil, nil, { f = { a, b } }) end

-- Per-sample loss functions (keras.losses.<name>) -------------------------------

local function elementwise_loss(name)
  return function(y_true, y_pred)
    local t, p = pair(y_true, y_pred)
    return op(name, t, p)
  end
end

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

--- huber(y_true, y_pred, delta=1.0)
function losses.huber(y_true, y_pred, delta)
  delta = type(delta) == "table" and delta.delta or delta or 1.0
  if type(delta) ~= "number" or delta <= 0 then raise("huber: delta must be a positive number, got " .. tostring(delta)) end
  local t, p = pair(y_true, y_pred)
  return op("huber", t, p, nil, { f = { delta } })
end

--- cosine_similarity(y_true, y_pred, axis=-1): -cos along the last axis.
function losses.cosine_similarity(y_true, y_pred, axis)
  axis = type(axis) == "table" and axis.axis or axis
  check_axis(axis, "cosine_similarity")
  local t, p = pair(y_true, y_pred)
  return op("cosine_similarity", t, p)
end

--- binary_crossentropy(y_true, y_pred, from_logits=false, label_smoothing=0, axis=-1)
function losses.binary_crossentropy(y_true, y_pred, from_logits, label_smoothing, axis)
  local o = opts(from_logits, { "from_logits", "label_smoothing", "axis" })
  if type(from_logits) ~= "table" then o.label_smoothing, o.axis = label_smoothing, axis end
  check_axis(o.axis, "binary_crossentropy")
  local p = T(y_pred)
  local t = T(y_true)
  local ls = o.label_smoothing or 0
  if ls ~= 0 then t = affine(t, 1 - ls, 0.5 * ls) end
  local e = op("binary_crossentropy", t, p, nil, { ints = { o.from_logits and 1 or 0 } })
  if e.nd == 0 then return e end
  return ops.mean(e, -1)
end

--- binary_focal_crossentropy(y_true, y_pred, {apply_class_balancing=false, alpha=0.25, gamma=2, from_logits=false, label_smoothing=0})
function losses.binary_focal_crossentropy(y_true, y_pred, o)
  o = o or {}
  check_axis(o.axis, "binary_focal_crossentropy")
  local p = T(y_pred)
  local t = T(y_true)
  local ls = o.label_smoothing or 0
  if ls ~= 0 then t = affine(t, 1 - ls, 0.5 * ls) end
  local alpha, gamma = o.alpha or 0.25, o.gamma or 2.0
  return op("binary_focal_crossentropy", t, p, nil,
    { ints = { o.from_logits and 1 or 0, o.apply_class_balancing and 1 or 0 }, f = { alpha, gamma } })
end

--- categorical_crossentropy(y_true, y_pred, from_logits=false, label_smoothing=0, axis=-1)
function losses.categorical_crossentropy(y_true, y_pred, from_logits, label_smoothing, axis)
  local o = opts(from_logits, { "from_logits", "label_smoothing", "axis" })
  if type(from_logits) ~= "table" then o.label_smoothing, o.axis = label_smoothing, axis end
  check_axis(o.axis, "categorical_crossentropy")
  local p = T(y_pred)
  local t = T(y_true)
  local ls = o.label_smoothing or 0
  if ls ~= 0 then
    local k = last_dim(t) or 1
    t = affine(t, 1 - ls, ls / k)
  end
  return op("categorical_crossentropy", t, p, nil, { ints = { o.from_logits and 1 or 0 } })
end

--- sparse_categorical_crossentropy(y_true, y_pred, from_logits=false, ignore_class=nil, axis=-1)
-- Labels are 0-based class indices. Returns the per-sample losses (0 where
-- the label is ignore_class) and, with ignore_class, the mask of valid samples.
function losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits, ignore_class, axis)
  local o = opts(from_logits, { "from_logits", "ignore_class", "axis" })
  if type(from_logits) ~= "table" then o.ignore_class, o.axis = ignore_class, axis end
  check_axis(o.axis, "sparse_categorical_crossentropy")
  local p = T(y_pred)
  local t = T(y_true)
  local ic = o.ignore_class
  if ic ~= nil and (type(ic) ~= "number" or ic ~= math.floor(ic)) then
    raise("sparse_categorical_crossentropy: ignore_class must be an integer, got " .. tostring(ic))
  end
  local values = op("sparse_categorical_crossentropy", t, p, nil,
    { ints = { o.from_logits and 1 or 0, ic ~= nil and 1 or 0, ic or 0 } })
  if ic == nil then return values end
  local mask = ops.not_equal(t, ic)
  if mask.count == values.count then mask = ops.reshape(mask, values:shape()) end
  return values, mask
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
  if sample_weight ~= nil then sample_weight = T(sample_weight) end
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

function Loss:__init(kw)
  kw = kw or {}
  self.name = kw.name or getmetatable(self).default_name or "loss"
  self.reduction = standardize_reduction(kw.reduction, getmetatable(self).__name)
end

function Loss:call() raise(getmetatable(self).__name .. ": subclasses of Loss must define call(y_true, y_pred)") end

Loss.__call = function(self, y_true, y_pred, sample_weight)
  if y_true == nil or y_pred == nil then raise(getmetatable(self).__name .. ": expected (y_true, y_pred[, sample_weight])") end
  local values, mask = self:call(y_true, y_pred)
  return reduce_weighted_values(T(values), sample_weight, mask, self.reduction)
end

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

function LossFunctionWrapper:call(y_true, y_pred)
  local t, p = pair(y_true, y_pred)
  if next(self.fn_kwargs) then return self.fn(t, p, self.fn_kwargs) end
  return self.fn(t, p)
end

-- A named loss class with its options and their defaults.
local function loss_class(name, default_name, fn, defaults)
  local cls = LossFunctionWrapper:extend(name)
  cls.default_name = default_name
  defaults = defaults or {}
  function cls:__init(kw)
    kw = kw or {}
    if type(kw) ~= "table" then raise(name .. ": expected options as a table, e.g. " .. name .. "{reduction = \"sum\"}") end
    local o = { name = kw.name or default_name, reduction = kw.reduction }
    for k, v in pairs(kw) do
      if k ~= "name" and k ~= "reduction" and k ~= "dtype" then
        if defaults[k] == nil then raise(("%s: unknown argument `%s`"):format(name, tostring(k))) end
        o[k] = v
      end
    end
    for k, v in pairs(defaults) do
      if o[k] == nil then o[k] = v end
      self[k] = o[k]
    end
    LossFunctionWrapper.__init(self, fn, o)
  end
  function cls:get_config()
    local cfg = Loss.get_config(self)
    for k in pairs(defaults) do cfg[k] = self[k] end
    return cfg
  end
  losses[name] = cls
  return cls
end

loss_class("MeanSquaredError", "mean_squared_error", losses.mean_squared_error)
loss_class("MeanAbsoluteError", "mean_absolute_error", losses.mean_absolute_error)
loss_class("MeanAbsolutePercentageError", "mean_absolute_percentage_error", losses.mean_absolute_percentage_error)
loss_class("MeanSquaredLogarithmicError", "mean_squared_logarithmic_error", losses.mean_squared_logarithmic_error)
loss_class("Huber", "huber_loss", function(t, p, o) return losses.huber(t, p, o.delta) end, { delta = 1.0 })
loss_class("LogCosh", "log_cosh", losses.log_cosh)
loss_class("KLDivergence", "kl_divergence", losses.kl_divergence)
loss_class("Poisson", "poisson", losses.poisson)
loss_class("CosineSimilarity", "cosine_similarity", function(t, p, o) return losses.cosine_similarity(t, p, o.axis) end, { axis = -1 })
loss_class("Hinge", "hinge", losses.hinge)
loss_class("SquaredHinge", "squared_hinge", losses.squared_hinge)
loss_class("CategoricalHinge", "categorical_hinge", losses.categorical_hinge)
loss_class("BinaryCrossentropy", "binary_crossentropy", losses.binary_crossentropy,
  { from_logits = false, label_smoothing = 0.0, axis = -1 })
loss_class("BinaryFocalCrossentropy", "binary_focal_crossentropy", losses.binary_focal_crossentropy,
  { apply_class_balancing = false, alpha = 0.25, gamma = 2.0, from_logits = false, label_smoothing = 0.0, axis = -1 })
loss_class("CategoricalCrossentropy", "categorical_crossentropy", losses.categorical_crossentropy,
  { from_logits = false, label_smoothing = 0.0, axis = -1 })

-- Sparse labels keep their own shape (no same-rank squeeze against y_pred),
-- and ignore_class may be nil, so this class spells its options out.
local SCCE = LossFunctionWrapper:extend("SparseCategoricalCrossentropy")
SCCE.default_name = "sparse_categorical_crossentropy"
losses.SparseCategoricalCrossentropy = SCCE
function SCCE:__init(kw)
  kw = kw or {}
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
function SCCE:call(y_true, y_pred)
  return losses.sparse_categorical_crossentropy(y_true, y_pred, self.from_logits, self.ignore_class, self.axis)
end
function SCCE:get_config()
  local cfg = Loss.get_config(self)
  cfg.from_logits, cfg.ignore_class = self.from_logits, self.ignore_class
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
}

--- get(identifier): a Loss object from a name ("mse", "categorical_crossentropy",
-- "CategoricalCrossentropy"), a registered name, a config {class_name=,
-- config=}, a Loss class or object; a plain function (y_true, y_pred) is
-- returned as it is; nil gives nil.
local GET = { who = "losses.get", kind = "loss", builtins = losses, aliases = names, base = Loss, functions = true,
  hidden = { Loss = true, LossFunctionWrapper = true }, raise = raise }
function losses.get(id) return registry.resolve(id, GET) end

function losses.serialize(l) return registry.serialize(l) end
losses.deserialize = losses.get

return losses
