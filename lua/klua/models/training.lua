-- models/training.lua — what klua.Model adds for training, as in Keras 3's
-- Trainer: compile, fit, evaluate, predict, train_on_batch, test_on_batch,
-- predict_on_batch, and the overridable train_step / test_step /
-- predict_step / compute_loss.
--
--   model:compile{optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = {"accuracy"}}
--   local history = model:fit{x = x, y = y, batch_size = 64, epochs = 5, validation_split = 0.1}
--   print(history.history.loss[5], history.history.val_accuracy[5])
--
-- Keras's positional forms work too: model:fit(x, y, {epochs = 5}),
-- model:evaluate(x, y), model:predict(x), model:compile(optimizer, {loss = ...}).
-- Data: tensors (or nested tables of numbers), tables of tensors for models
-- with several inputs/outputs (lists or named), or a klua.data.Dataset whose
-- elements are x or {x, y} or {x, y, sample_weight}.
local core = require("klua.core")
local class = require("klua.class")
local tensor = require("klua.tensor")
local ops = require("klua.ops")
local F -- klua.models.functional, loaded on first use (it requires model.lua)

local unpack = unpack or table.unpack
local C, raise = core.C, core.raise

local M = {}

local function functional()
  F = F or require("klua.models.functional")
  return F
end

local function warn(msg) io.stderr:write("klua warning: ", msg, "\n") end

local function is_plain(t) return type(t) == "table" and getmetatable(t) == nil end

--------------------------------------------------------------------------------
-- Arguments: the table form f{x=, y=, ...} or Keras's positional form f(x, y, {...}).

local function collect_args(who, known, positional, a, b, c, d)
  local kw
  local is_kw_table = is_plain(a) and b == nil and (a.x ~= nil or (a[1] == nil and next(a) ~= nil and (function()
    for k in pairs(a) do if not known[k] then return false end end
    return true
  end)()))
  if is_kw_table then
    kw = {}
    for k, v in pairs(a) do kw[k] = v end
  else
    kw = {}
    local args = { a, b, c, d }
    local last = 0
    for i = 1, 4 do if args[i] ~= nil then last = i end end
    -- a trailing option table (not data) holds the keywords
    if last > 0 and is_plain(args[last]) and last > 1 then
      local opts = args[last]
      local looks_like_opts = next(opts) ~= nil and opts[1] == nil
      if looks_like_opts then
        for k in pairs(opts) do if not known[k] then looks_like_opts = false end end
      end
      if looks_like_opts then
        for k, v in pairs(opts) do kw[k] = v end
        args[last] = nil
        last = last - 1
      end
    end
    for i = 1, last do
      local name = positional[i]
      if not name then raise(("%s: too many positional arguments"):format(who)) end
      if kw[name] ~= nil then raise(("%s: got `%s` twice"):format(who, name)) end
      kw[name] = args[i]
    end
  end
  for k in pairs(kw) do
    if not known[k] then raise(("%s: unknown argument `%s`"):format(who, tostring(k))) end
  end
  return kw
end

local function set(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end

--------------------------------------------------------------------------------
-- Structures of tensors

local function flatten(x) return functional().flatten(x) end
local function map(x, fn) return functional().map(x, fn) end

local function to_tensors(x, who, what)
  if x == nil then return nil end
  if core.is_tensor(x) then return x end
  if type(x) == "number" then return tensor.tensor(x) end
  if is_plain(x) then
    local first = x[1]
    if type(first) == "number" or type(first) == "boolean" or (is_plain(first) and (type(first[1]) == "number" or is_plain(first[1]))) then
      -- a nested table of numbers
      local ok, t = pcall(tensor.tensor, x)
      if ok then return t end
    end
    local out = {}
    for k, v in pairs(x) do out[k] = to_tensors(v, who, what) end
    return out
  end
  raise(("%s: %s must be tensors, got %s"):format(who, what, class.name_of(x)))
end

local function first_dim(t) return t.nd > 0 and tonumber(t.dims[0]) or nil end

local function num_samples(who, parts)
  local n, first
  for _, part in ipairs(parts) do
    for _, t in ipairs(flatten(part[2])) do
      local d = first_dim(t)
      if d == nil then raise(("%s: %s is a scalar; data needs a first (batch) dimension"):format(who, part[1])) end
      if n == nil then n, first = d, part[1]
      elseif d ~= n then
        raise(("%s: the data do not have the same number of samples: %s has %d, %s has %d"):format(who, first, n, part[1], d))
      end
    end
  end
  return n
end

--------------------------------------------------------------------------------
-- Data adapters: each epoch yields batches {x, y, sample_weight}.

local Adapter = class("DataAdapter")

-- From tensors: batches by index, reshuffled at each epoch from klua.random.
local function tensor_adapter(who, x, y, sw, batch_size, shuffle, steps)
  local n = num_samples(who, { { "x", x }, { "y", y }, { "sample_weight", sw } })
  if n == nil then raise(who .. ": x is required") end
  local nb = math.ceil(n / batch_size)
  local a = Adapter()
  a.num_samples = n
  a.steps = steps and math.min(steps, nb) or nb
  function a:first_batch()
    local hi = math.min(batch_size, n)
    return { map(x, function(t) return ops.slice_axis(t, 1, 1, hi) end) }
  end
  function a:epoch()
    local perm = shuffle and require("klua.random").permutation_tensor(n) or nil
    local step = 0
    return function()
      if step >= a.steps then return nil end
      local lo, hi = step * batch_size + 1, math.min((step + 1) * batch_size, n)
      step = step + 1
      local pick
      if perm then
        local idx = ops.slice_axis(perm, 1, lo, hi)
        pick = function(t) return ops.take(t, idx, 1) end
      else
        pick = function(t) return ops.slice_axis(t, 1, lo, hi) end
      end
      return { map(x, pick), y ~= nil and map(y, pick) or nil, sw ~= nil and map(sw, pick) or nil }
    end
  end
  return a
end

-- An element of a Dataset as {x, y, sample_weight}.
local function unpack_element(e)
  if is_plain(e) and e[1] ~= nil then return { e[1], e[2], e[3] } end
  return { e }
end

local function dataset_adapter(who, ds, steps, keep_iterator)
  local data = require("klua.data")
  local card = ds:cardinality()
  if card == data.INFINITE_CARDINALITY and not steps then
    raise(who .. ": the dataset is infinite (repeat()); give steps_per_epoch (or steps)")
  end
  local a = Adapter()
  if steps then a.steps = steps elseif card >= 0 then a.steps = card end
  local it
  function a:first_batch()
    local e = ds:iter()()
    return e ~= nil and unpack_element(e) or nil
  end
  function a:epoch()
    if not keep_iterator or it == nil then it = ds:iter() end
    local step = 0
    return function()
      if a.steps and step >= a.steps then return nil end
      local e = it()
      if e == nil then
        it = nil
        if steps and step < steps then a.ran_out = true end
        return nil
      end
      step = step + 1
      return unpack_element(e)
    end
  end
  return a
end

local function make_adapter(who, kw, x, y, sw, batch_size, shuffle, steps, keep_iterator)
  local data = require("klua.data")
  if data.is_dataset(x) then
    if y ~= nil then raise(who .. ": y must not be given when x is a Dataset (its elements are {x, y})") end
    if sw ~= nil then raise(who .. ": sample_weight must not be given when x is a Dataset (its elements are {x, y, sample_weight})") end
    if kw.batch_size ~= nil then raise(who .. ": batch_size must not be given when x is a Dataset (batch the dataset instead)") end
    return dataset_adapter(who, x, steps, keep_iterator)
  end
  if x == nil then raise(who .. ": x is required") end
  if type(batch_size) ~= "number" or batch_size < 1 or batch_size % 1 ~= 0 then
    raise(("%s: batch_size must be a positive integer. Received: batch_size=%s"):format(who, tostring(batch_size)))
  end
  return tensor_adapter(who, to_tensors(x, who, "x"), to_tensors(y, who, "y"), to_tensors(sw, who, "sample_weight"),
    batch_size, shuffle, steps)
end

--------------------------------------------------------------------------------
-- The compiled loss and metrics

local function output_names(model, y_pred)
  local outs = rawget(model, "outputs")
  local Fm = functional()
  if outs ~= nil and not Fm.is_keras_tensor(outs) and is_plain(outs) then
    local names = {}
    for _, k in ipairs(Fm.ordered_keys(outs)) do
      local v = outs[k]
      names[#names + 1] = type(k) == "string" and k or (Fm.is_keras_tensor(v) and v.name or ("output_" .. k))
    end
    local dup = {}
    for i, nm in ipairs(names) do
      if dup[nm] then names[i] = nm .. "_" .. i end
      dup[nm] = true
    end
    return names
  end
  if is_plain(y_pred) then
    local names = {}
    for _, k in ipairs(Fm.ordered_keys(y_pred)) do
      names[#names + 1] = type(k) == "string" and k or ("output_" .. k)
    end
    return names
  end
  if outs ~= nil and Fm.is_keras_tensor(outs) then return { outs.name } end
  return { "output" }
end

-- Per output: a spec given once (for all outputs), as a list, or by name.
local function per_output(spec, names, what)
  local n = #names
  local out = {}
  if spec == nil then return out end
  if is_plain(spec) and next(spec) ~= nil then
    if spec[1] ~= nil then
      if #spec ~= n then
        raise(("compile: %s is a list of %d entries, the model has %d outputs"):format(what, #spec, n))
      end
      for i = 1, n do out[i] = spec[i] end
    else
      local known = {}
      for i, nm in ipairs(names) do known[nm] = i end
      for k, v in pairs(spec) do
        local i = known[k]
        if not i then
          raise(("compile: %s names output '%s', but the outputs are: %s"):format(what, tostring(k), table.concat(names, ", ")))
        end
        out[i] = v
      end
    end
    return out
  end
  for i = 1, n do out[i] = spec end
  return out
end

local function resolve_loss(spec, who)
  if spec == nil or spec == false then return nil end
  local losses = require("klua.losses")
  local ok, l = pcall(losses.get, spec)
  if not ok then raise(("%s: %s"):format(who, tostring(l))) end
  if type(l) == "function" then l = losses.LossFunctionWrapper(l, { name = "loss" }) end
  return l
end

local function loss_name(l)
  local n = type(l) == "table" and (l.name or class.name_of(l)) or ""
  return tostring(n):lower()
end

-- "accuracy" / "crossentropy" take their meaning from the loss and the shapes (Keras).
local function resolve_metric(spec, loss, y_true, y_pred)
  local metrics = require("klua.metrics")
  if spec == "accuracy" or spec == "acc" or spec == "crossentropy" or spec == "ce" then
    local lname = loss_name(loss)
    local pl = y_pred.nd > 0 and tonumber(y_pred.dims[y_pred.nd - 1]) or 1
    local tl = y_true and y_true.nd > 0 and tonumber(y_true.dims[y_true.nd - 1]) or 1
    local kind
    if lname:find("binary") or pl == 1 then kind = "binary"
    elseif lname:find("sparse") or (y_true and (y_true.nd < y_pred.nd or (tl == 1 and pl > 1))) then kind = "sparse_categorical"
    else kind = "categorical" end
    local base = (spec == "accuracy" or spec == "acc") and "_accuracy" or "_crossentropy"
    local m
    if base == "_accuracy" then
      m = metrics.get(kind .. base)
    else
      local cls = ({ binary = "BinaryCrossentropy", sparse_categorical = "SparseCategoricalCrossentropy",
        categorical = "CategoricalCrossentropy" })[kind]
      m = rawget(metrics, cls) and metrics[cls]() or metrics.MeanMetricWrapper(require("klua.losses")[kind .. base])
    end
    m.name = spec
    return m
  end
  local ok, m = pcall(metrics.get, spec)
  if not ok then raise("compile: " .. tostring(m)) end
  if type(m) == "function" then
    m = metrics.MeanMetricWrapper(m, { name = "metric" })
  elseif type(spec) == "string" then
    m.name = spec
  end
  return m
end

local Compiled = class("CompiledTraining")

function Compiled:__init(model, kw)
  self.model = model
  self.loss_spec, self.weights_spec = kw.loss, kw.loss_weights
  self.metrics_spec, self.weighted_spec = kw.metrics, kw.weighted_metrics
  local metrics = require("klua.metrics")
  self.loss_tracker = metrics.Mean{ name = "loss" }
  self.built = false
  -- Loss objects given directly are checked now, so a typo fails at compile.
  if self.loss_spec ~= nil and not is_plain(self.loss_spec) then resolve_loss(self.loss_spec, "compile") end
end

-- Resolved on the first batch, when the outputs' structure and shapes are known.
function Compiled:build(y_true, y_pred)
  if self.built then return end
  local flat_pred = flatten(y_pred)
  local names = output_names(self.model, y_pred)
  if #names ~= #flat_pred then
    names = {}
    for i = 1, #flat_pred do names[i] = #flat_pred == 1 and "output" or ("output_" .. i) end
  end
  local n = #names
  self.names, self.n = names, n
  self.losses = {}
  if self.loss_spec ~= nil then
    local specs = per_output(self.loss_spec, names, "loss")
    for i = 1, n do self.losses[i] = resolve_loss(specs[i], "compile: loss") end
  end
  self.loss_weights = {}
  local ws = per_output(self.weights_spec, names, "loss_weights")
  for i = 1, n do
    local w = ws[i]
    if w == nil then w = 1 end
    if type(w) ~= "number" then raise(("compile: loss_weights for output '%s' must be a number"):format(names[i])) end
    self.loss_weights[i] = w
  end
  self.output_trackers = {}
  if n > 1 then
    local metrics = require("klua.metrics")
    for i = 1, n do
      if self.losses[i] then self.output_trackers[i] = metrics.Mean{ name = names[i] .. "_loss" } end
    end
  end
  -- metrics: a list applies to every output; a list of lists or a named table per output
  self.entries = {}
  local flat_true = y_true ~= nil and flatten(y_true) or {}
  local function add(spec_list, weighted)
    if spec_list == nil then return end
    if not is_plain(spec_list) then spec_list = { spec_list } end
    local per
    if spec_list[1] == nil and next(spec_list) ~= nil then
      per = per_output(spec_list, names, weighted and "weighted_metrics" or "metrics")
    elseif n > 1 and #spec_list == n and is_plain(spec_list[1]) then
      per = spec_list
    else
      per = {}
      for i = 1, n do per[i] = spec_list end
    end
    for i = 1, n do
      local list = per[i]
      if list ~= nil then
        if not is_plain(list) then list = { list } end
        for _, spec in ipairs(list) do
          local m = resolve_metric(spec, self.losses[i], flat_true[i], flat_pred[i])
          local base = m.name or "metric"
          if weighted and type(spec) == "string" then base = "weighted_" .. base end
          self.entries[#self.entries + 1] = {
            metric = m, output = i, weighted = weighted,
            name = n > 1 and (names[i] .. "_" .. base) or base,
          }
        end
      end
    end
  end
  add(self.metrics_spec, false)
  add(self.weighted_spec, true)
  self.built = true
end

function Compiled:all_metrics()
  local out = { self.loss_tracker }
  for i = 1, self.n or 0 do if self.output_trackers[i] then out[#out + 1] = self.output_trackers[i] end end
  for _, e in ipairs(self.entries or {}) do out[#out + 1] = e.metric end
  return out
end

function Compiled:log_names()
  local out = { "loss" }
  for i = 1, self.n or 0 do if self.output_trackers[i] then out[#out + 1] = self.names[i] .. "_loss" end end
  for _, e in ipairs(self.entries or {}) do out[#out + 1] = e.name end
  return out
end

function Compiled:reset()
  for _, m in ipairs(self:all_metrics()) do m:reset_state() end
end

local function scalar(v)
  if core.is_tensor(v) then return v:item() end
  return v
end

local function metric_value(m)
  if m._value then return m:_value() end
  return scalar(m:result())
end

function Compiled:logs()
  local logs = { loss = metric_value(self.loss_tracker) }
  for i = 1, self.n or 0 do
    local t = self.output_trackers[i]
    if t then logs[self.names[i] .. "_loss"] = metric_value(t) end
  end
  for _, e in ipairs(self.entries or {}) do logs[e.name] = metric_value(e.metric) end
  return logs
end

local function weights_for(sw, i, n)
  if sw == nil then return nil end
  if core.is_tensor(sw) then return sw end
  local flat = flatten(sw)
  if #flat ~= n then raise(("sample_weight has %d entries, the model has %d outputs"):format(#flat, n)) end
  return flat[i]
end

-- The total loss (a scalar tensor, recorded when a tape is) and per-output values.
function Compiled:compute(y_true, y_pred, sw, extra_losses)
  self:build(y_true, y_pred)
  local n = self.n
  local flat_pred = flatten(y_pred)
  local total
  local parts = {}
  local any = false
  for i = 1, n do if self.losses[i] then any = true end end
  if any then
    if y_true == nil then raise("the compiled loss needs targets: pass y (or a dataset of {x, y})") end
    local flat_true = flatten(y_true)
    if #flat_true ~= n then
      raise(("the model has %d outputs but y has %d entries"):format(n, #flat_true))
    end
    for i = 1, n do
      local l = self.losses[i]
      if l then
        local v = l(flat_true[i], flat_pred[i], weights_for(sw, i, n))
        parts[i] = v
        if self.loss_weights[i] ~= 1 then v = v * self.loss_weights[i] end
        total = total and total + v or v
      end
    end
  end
  for _, extra in ipairs(extra_losses or {}) do
    local e = extra
    if e.nd > 0 then e = ops.sum(e) end
    total = total and total + e or e
  end
  if total == nil then
    raise("no loss to compute: give `loss` to compile(), or add losses with add_loss() in call()")
  end
  return total, parts
end

function Compiled:update(y_true, y_pred, sw, loss, parts, batch)
  local token = C.kl_grad_pause()
  local ok, err = pcall(function()
    self.loss_tracker:update_state(scalar(loss), batch)
    for i, t in pairs(self.output_trackers) do
      if parts[i] then t:update_state(scalar(parts[i]), batch) end
    end
    if #self.entries > 0 then
      local flat_pred = flatten(y_pred)
      local flat_true = y_true ~= nil and flatten(y_true) or {}
      for _, e in ipairs(self.entries) do
        local yt = flat_true[e.output]
        if yt == nil then raise(("metric '%s' needs targets y"):format(e.name)) end
        e.metric:update_state(yt, flat_pred[e.output], e.weighted and weights_for(sw, e.output, self.n) or nil)
      end
    end
  end)
  C.kl_grad_resume(token)
  if not ok then error(err, 0) end
end

--------------------------------------------------------------------------------
-- compile

local COMPILE_ARGS = set { "optimizer", "loss", "loss_weights", "metrics", "weighted_metrics", "run_eagerly",
  "steps_per_execution", "jit_compile", "auto_scale_loss" }

--- compile{optimizer="rmsprop", loss=, loss_weights=, metrics=, weighted_metrics=}
-- or compile(optimizer, {loss=, ...}).
local function compile(self, a, b)
  local kw
  if is_plain(a) and b == nil then
    kw = a
  else
    kw = {}
    for k, v in pairs(b or {}) do kw[k] = v end
    if a ~= nil then kw.optimizer = a end
  end
  for k in pairs(kw) do
    if not COMPILE_ARGS[k] then raise(("compile: unknown argument `%s`"):format(tostring(k))) end
  end
  local optimizers = require("klua.optimizers")
  local ok, opt = pcall(optimizers.get, kw.optimizer == nil and "rmsprop" or kw.optimizer)
  if not ok then raise("compile: " .. tostring(opt)) end
  rawset(self, "optimizer", opt)
  rawset(self, "_compiled", Compiled(self, kw))
  rawset(self, "_compile_args", {
    optimizer = optimizers.serialize(opt), loss = kw.loss, loss_weights = kw.loss_weights,
    metrics = kw.metrics, weighted_metrics = kw.weighted_metrics,
  })
  rawset(self, "compiled", true)
end

local function compiled(self, who)
  local c = rawget(self, "_compiled")
  if not c then raise(("%s: you must call compile() before %s()"):format(class.name_of(self), who)) end
  return c
end

--------------------------------------------------------------------------------
-- Steps

local GradientTape

-- Keras 3's Trainer.compute_loss: the compiled losses plus the model's own
-- (add_loss and weight regularizers), read while the tape records.
local function compute_loss(self, x, y, y_pred, sample_weight)
  local c = compiled(self, "compute_loss")
  local total, parts = c:compute(y, y_pred, sample_weight, self.losses)
  return total, parts
end

local function batch_size_of(x)
  for _, t in ipairs(flatten(x)) do
    if core.is_tensor(t) and t.nd > 0 then return tonumber(t.dims[0]) end
  end
  return 1
end

local function apply_constraints(vars)
  local Layer = require("klua.layer")
  local token
  for _, v in ipairs(vars) do
    local c = Layer.constraint_of(v)
    if c then
      token = token or C.kl_grad_pause()
      v:assign(c(v))
    end
  end
  if token then C.kl_grad_resume(token) end
end

--- train_step(data): one optimizer step on data = {x, y, sample_weight};
-- returns the logs (running means since the last reset).
local function train_step(self, data)
  local x, y, sw = data[1], data[2], data[3]
  local c = compiled(self, "fit")
  GradientTape = GradientTape or require("klua.tape")
  local vars = self.trainable_weights
  local tape = GradientTape()
  tape:start()
  local ok, y_pred, loss, parts = pcall(function()
    local y_pred = self(x, { training = true })
    local loss, parts = self:compute_loss(x, y, y_pred, sw)
    return y_pred, loss, parts
  end)
  tape:stop()
  if not ok then error(y_pred, 0) end
  if #vars > 0 then
    local grads = tape:gradient(loss, vars)
    self.optimizer:apply_gradients(grads, vars)
    apply_constraints(vars)
  end
  c:update(y, y_pred, sw, loss, parts, batch_size_of(x))
  return c:logs()
end

local function test_step(self, data)
  local x, y, sw = data[1], data[2], data[3]
  local c = compiled(self, "evaluate")
  local token = C.kl_grad_pause()
  local ok, y_pred, loss, parts = pcall(function()
    local y_pred = self(x, { training = false })
    local loss, parts = self:compute_loss(x, y, y_pred, sw)
    return y_pred, loss, parts
  end)
  C.kl_grad_resume(token)
  if not ok then error(y_pred, 0) end
  c:update(y, y_pred, sw, loss, parts, batch_size_of(x))
  return c:logs()
end

local function predict_step(self, data)
  local token = C.kl_grad_pause()
  local ok, y = pcall(self, data[1], { training = false })
  C.kl_grad_resume(token)
  if not ok then error(y, 0) end
  return y
end

--------------------------------------------------------------------------------
-- Class weights

local function class_weight_vector(cw, who)
  if not is_plain(cw) then raise(who .. ": class_weight must be a table {[class] = weight} (0-based classes)") end
  local maxc = -1
  for k, w in pairs(cw) do
    if type(k) ~= "number" or k < 0 or k % 1 ~= 0 then raise(("%s: class_weight keys must be class indices (0, 1, ...), got %s"):format(who, tostring(k))) end
    if type(w) ~= "number" then raise(("%s: class_weight[%d] must be a number"):format(who, k)) end
    if k > maxc then maxc = k end
  end
  local list = {}
  for i = 0, maxc do list[i + 1] = cw[i] or 1 end
  return tensor.tensor(list), maxc + 1
end

-- Per-sample weights from class weights: by label (sparse) or argmax (one-hot).
local function class_sample_weights(y, wvec, nclass, who)
  if not core.is_tensor(y) then raise(who .. ": class_weight is only supported for models with one output") end
  local idx
  if y.nd == 1 or (y.nd == 2 and tonumber(y.dims[1]) == 1) then
    idx = ops.reshape(y, { tonumber(y.dims[0]) })
  else
    idx = ops.argmax(y, -1)
  end
  local mx = ops.max(idx):item()
  if mx >= nclass then
    -- classes not named in class_weight weigh 1
    local pad = {}
    for i = 1, mx + 1 do pad[i] = i <= nclass and wvec:get(i) or 1 end
    wvec = tensor.tensor(pad)
  end
  return ops.take(wvec, idx, 1)
end

--------------------------------------------------------------------------------
-- fit

local FIT_ARGS = set { "x", "y", "batch_size", "epochs", "verbose", "callbacks", "validation_split", "validation_data",
  "shuffle", "class_weight", "sample_weight", "initial_epoch", "steps_per_epoch", "validation_steps",
  "validation_batch_size", "validation_freq" }
local FIT_POS = { "x", "y", "batch_size", "epochs" }

local function verbose_of(v)
  if v == nil or v == "auto" then return 1 end
  if v == true then return 1 elseif v == false then return 0 end
  if v ~= 0 and v ~= 1 and v ~= 2 then raise("verbose must be 0, 1, 2 or \"auto\". Received: verbose=" .. tostring(v)) end
  return v
end

-- Builds a model that has no weights yet from its first batch, before the
-- callbacks start (BackupAndRestore needs the weights in on_train_begin).
-- The batch is read aside: no shuffle is drawn and no iterator advanced.
local function ensure_built(self, adapter)
  if rawget(self, "built") and #self.weights > 0 then return end
  local Model = require("klua.models.model")
  Model.quietly(self:_flatten_layers(), function()
    local data = adapter:first_batch()
    if data ~= nil then self(data[1], { training = false }) end
  end)
end

local function split_validation(who, x, y, sw, fraction)
  if type(fraction) ~= "number" or fraction <= 0 or fraction >= 1 then
    raise(("%s: validation_split must be a number between 0 and 1. Received: validation_split=%s"):format(who, tostring(fraction)))
  end
  if require("klua.data").is_dataset(x) then
    raise(who .. ": validation_split is not supported when x is a Dataset; give validation_data")
  end
  x, y, sw = to_tensors(x, who, "x"), to_tensors(y, who, "y"), to_tensors(sw, who, "sample_weight")
  local n = num_samples(who, { { "x", x }, { "y", y }, { "sample_weight", sw } })
  local at = math.ceil(n * (1 - fraction))
  if at < 1 or at >= n then
    raise(("%s: validation_split=%s leaves no samples for training or for validation (%d samples)"):format(who, tostring(fraction), n))
  end
  local function head(t) return ops.slice_axis(t, 1, 1, at) end
  local function tail(t) return ops.slice_axis(t, 1, at + 1, n) end
  local function part(s, f) if s == nil then return nil end return map(s, f) end
  return part(x, head), part(y, head), part(sw, head), { part(x, tail), part(y, tail), part(sw, tail) }
end

local function fit(self, a, b, c, d)
  local who = "fit"
  local kw = collect_args(who, FIT_ARGS, FIT_POS, a, b, c, d)
  compiled(self, who)
  local epochs = kw.epochs or 1
  if type(epochs) ~= "number" or epochs < 0 or epochs % 1 ~= 0 then
    raise("fit: epochs must be a non-negative integer. Received: epochs=" .. tostring(epochs))
  end
  local verbose = verbose_of(kw.verbose)
  local batch_size = kw.batch_size or 32
  local x, y, sw = kw.x, kw.y, kw.sample_weight
  local val
  if kw.validation_data ~= nil then
    val = kw.validation_data
    if not require("klua.data").is_dataset(val) then
      if not is_plain(val) or val[1] == nil then
        raise("fit: validation_data must be {x_val, y_val}, {x_val, y_val, sample_weight} or a Dataset")
      end
    end
  elseif kw.validation_split ~= nil and kw.validation_split ~= 0 then
    x, y, sw, val = split_validation(who, x, y, sw, kw.validation_split)
  end
  local steps = kw.steps_per_epoch
  local shuffle = kw.shuffle ~= false
  local train = make_adapter(who, kw, x, y, sw, batch_size, shuffle, steps, steps ~= nil)
  local cw, ncls
  if kw.class_weight ~= nil then cw, ncls = class_weight_vector(kw.class_weight, who) end
  ensure_built(self, train)

  local cbs = require("klua.callbacks")
  local list = cbs.CallbackList(kw.callbacks, {
    add_history = true, add_progbar = verbose ~= 0, model = self, verbose = verbose, epochs = epochs, steps = train.steps,
  })
  for _, cb in ipairs(list.callbacks) do
    if cb.set_callback_list then cb:set_callback_list(list) end
  end
  rawset(self, "stop_training", false)
  rawset(self, "_initial_epoch", nil)
  list:on_train_begin()
  local initial_epoch = rawget(self, "_initial_epoch") or kw.initial_epoch or 0
  rawset(self, "_initial_epoch", nil)
  local val_adapter
  if val ~= nil then
    if require("klua.data").is_dataset(val) then
      val_adapter = make_adapter(who, {}, val, nil, nil, nil, false, kw.validation_steps)
    else
      val_adapter = make_adapter(who, {}, val[1], val[2], val[3], kw.validation_batch_size or batch_size, false, kw.validation_steps)
    end
  end
  local freq = kw.validation_freq or 1
  local logs = {}
  for epoch = initial_epoch, epochs - 1 do
    self:reset_metrics()
    list:on_epoch_begin(epoch)
    local step = 0
    for data in train:epoch() do
      if cw then
        local w = class_sample_weights(data[2], cw, ncls, who)
        data[3] = data[3] ~= nil and ops.multiply(data[3], w) or w
      end
      list:on_train_batch_begin(step)
      logs = self:train_step(data)
      list:on_train_batch_end(step, logs)
      step = step + 1
      if rawget(self, "stop_training") then break end
    end
    if train.ran_out then
      warn("Your input ran out of data; interrupting training. Make sure that your dataset can generate at least `steps_per_epoch * epochs` batches.")
      rawset(self, "stop_training", true)
    end
    local epoch_logs = {}
    for k, v in pairs(logs) do epoch_logs[k] = scalar(v) end
    if val_adapter and (epoch + 1) % freq == 0 then
      local vlogs = M.run_evaluation(self, val_adapter, list, true)
      for k, v in pairs(vlogs) do epoch_logs["val_" .. k] = v end
    end
    list:on_epoch_end(epoch, epoch_logs)
    logs = epoch_logs
    if rawget(self, "stop_training") then break end
  end
  list:on_train_end(logs)
  return list.history
end

--------------------------------------------------------------------------------
-- evaluate

function M.run_evaluation(self, adapter, list, in_fit)
  self:reset_metrics()
  if not in_fit then list:set_params({ verbose = list.params.verbose, epochs = 1, steps = adapter.steps }) end
  list:on_test_begin()
  local logs = {}
  local step = 0
  for data in adapter:epoch() do
    list:on_test_batch_begin(step)
    logs = self:test_step(data)
    list:on_test_batch_end(step, logs)
    step = step + 1
  end
  local out = {}
  for k, v in pairs(logs) do out[k] = scalar(v) end
  if step == 0 then
    raise("evaluate: the data yielded no batches")
  end
  list:on_test_end(out)
  return out
end

local EVAL_ARGS = set { "x", "y", "batch_size", "verbose", "sample_weight", "steps", "callbacks", "return_dict" }
local EVAL_POS = { "x", "y", "batch_size" }

local function ordered_result(self, logs, return_dict)
  if return_dict then return logs end
  local names = self.metrics_names
  if #names == 1 then return logs.loss end
  local out = {}
  for i, k in ipairs(names) do out[i] = logs[k] end
  return out
end

--- evaluate{x=, y=, batch_size=32, verbose=1, sample_weight=, steps=, callbacks=, return_dict=false}:
-- the loss, or {loss, metric...} in metrics_names order, or a table by name.
local function evaluate(self, a, b, c, d)
  local who = "evaluate"
  local kw = collect_args(who, EVAL_ARGS, EVAL_POS, a, b, c, d)
  compiled(self, who)
  local verbose = verbose_of(kw.verbose)
  local adapter = make_adapter(who, kw, kw.x, kw.y, kw.sample_weight, kw.batch_size or 32, false, kw.steps)
  local cbs = require("klua.callbacks")
  local list = cbs.CallbackList(kw.callbacks, { add_progbar = verbose ~= 0, model = self, verbose = verbose, epochs = 1, steps = adapter.steps })
  local logs = M.run_evaluation(self, adapter, list, false)
  return ordered_result(self, logs, kw.return_dict)
end

--------------------------------------------------------------------------------
-- predict

local PRED_ARGS = set { "x", "batch_size", "verbose", "steps", "callbacks" }
local PRED_POS = { "x", "batch_size" }

local function concat_outputs(batches)
  if #batches == 1 then return batches[1] end
  local first = batches[1]
  if core.is_tensor(first) then return ops.concatenate(batches, 1) end
  local out = {}
  for _, k in ipairs(functional().ordered_keys(first)) do
    local parts = {}
    for i, bt in ipairs(batches) do parts[i] = bt[k] end
    out[k] = concat_outputs(parts)
  end
  return out
end

--- predict{x=, batch_size=32, verbose=1, steps=, callbacks=}: the outputs for
-- all of x, computed batch by batch in inference mode.
local function predict(self, a, b, c)
  local who = "predict"
  local kw = collect_args(who, PRED_ARGS, PRED_POS, a, b, c)
  local verbose = verbose_of(kw.verbose)
  local x = kw.x
  local adapter
  if require("klua.data").is_dataset(x) then
    adapter = make_adapter(who, kw, x, nil, nil, nil, false, kw.steps)
  else
    adapter = make_adapter(who, kw, x, nil, nil, kw.batch_size or 32, false, kw.steps)
  end
  local cbs = require("klua.callbacks")
  local list = cbs.CallbackList(kw.callbacks, { add_progbar = verbose ~= 0, model = self, verbose = verbose, epochs = 1, steps = adapter.steps })
  list:on_predict_begin()
  local outs = {}
  local step = 0
  for data in adapter:epoch() do
    list:on_predict_batch_begin(step)
    local y = self:predict_step(data)
    outs[#outs + 1] = y
    list:on_predict_batch_end(step, { outputs = y })
    step = step + 1
  end
  list:on_predict_end()
  if #outs == 0 then raise("predict: the data yielded no batches") end
  return concat_outputs(outs)
end

--------------------------------------------------------------------------------
-- On one batch

local function batch_args(who, a, b, c)
  local known = set { "x", "y", "sample_weight", "class_weight", "return_dict" }
  return collect_args(who, known, { "x", "y" }, a, b, c)
end

--- train_on_batch(x, y, {sample_weight=, class_weight=, return_dict=}): one
-- step; returns the loss (or {loss, metrics...}, or a table by name). As in
-- Keras 3 the values are running means until model:reset_metrics().
local function train_on_batch(self, a, b, c)
  local kw = batch_args("train_on_batch", a, b, c)
  compiled(self, "train_on_batch")
  local x, y, sw = to_tensors(kw.x, "train_on_batch", "x"), to_tensors(kw.y, "train_on_batch", "y"),
    to_tensors(kw.sample_weight, "train_on_batch", "sample_weight")
  if kw.class_weight then
    local wv, n = class_weight_vector(kw.class_weight, "train_on_batch")
    local w = class_sample_weights(y, wv, n, "train_on_batch")
    sw = sw ~= nil and ops.multiply(sw, w) or w
  end
  local logs = self:train_step({ x, y, sw })
  local out = {}
  for k, v in pairs(logs) do out[k] = scalar(v) end
  return ordered_result(self, out, kw.return_dict)
end

local function test_on_batch(self, a, b, c)
  local kw = batch_args("test_on_batch", a, b, c)
  compiled(self, "test_on_batch")
  local logs = self:test_step({ to_tensors(kw.x, "test_on_batch", "x"), to_tensors(kw.y, "test_on_batch", "y"),
    to_tensors(kw.sample_weight, "test_on_batch", "sample_weight") })
  local out = {}
  for k, v in pairs(logs) do out[k] = scalar(v) end
  return ordered_result(self, out, kw.return_dict)
end

local function predict_on_batch(self, x)
  return self:predict_step({ to_tensors(x, "predict_on_batch", "x") })
end

local function reset_metrics(self)
  local c = rawget(self, "_compiled")
  if c then c:reset() end
end

function M.install(Model)
  Model.compile = compile
  Model.fit = fit
  Model.evaluate = evaluate
  Model.predict = predict
  Model.train_on_batch = train_on_batch
  Model.test_on_batch = test_on_batch
  Model.predict_on_batch = predict_on_batch
  Model.train_step = train_step
  Model.test_step = test_step
  Model.predict_step = predict_step
  Model.compute_loss = compute_loss
  Model.reset_metrics = reset_metrics
end

M.Compiled = Compiled
return M
