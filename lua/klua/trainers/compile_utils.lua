-- trainers/compile_utils.lua — what compile() sets up: the compiled losses
-- and metrics of a model (Keras's CompileLoss and CompileMetrics in one
-- container), resolved per output on the first batch, when the outputs'
-- structure and shapes are known. It computes the total loss and keeps the
-- running means that fit/evaluate report as logs.
local core = require("klua.core")
local class = require("klua.class")
local ops = require("klua.ops")
local losses = require("klua.losses")
local metrics = require("klua.metrics")
local no_grad = require("klua.no_grad")
local structure = require("klua.tree")
local keras_tensor = require("klua.keras_tensor")

local raise = core.raise
local flatten, ordered_keys, is_plain = structure.flatten, structure.ordered_keys, structure.is_struct
local is_keras_tensor = keras_tensor.is_keras_tensor

local M = {}

--- scalar(v): a number from a scalar tensor (numbers pass through).
local function scalar(v)
  if core.is_tensor(v) then return v:item() end
  return v
end
M.scalar = scalar

--------------------------------------------------------------------------------
-- Outputs, losses and metrics by name

-- The outputs' names: a Functional model's, else the keys of y_pred.
local function output_names(model, y_pred)
  local outs = rawget(model, "outputs")
  if outs ~= nil and not is_keras_tensor(outs) and is_plain(outs) then
    local names = {}
    for _, k in ipairs(ordered_keys(outs)) do
      local v = outs[k]
      names[#names + 1] = type(k) == "string" and k or (is_keras_tensor(v) and v.name or ("output_" .. k))
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
    for _, k in ipairs(ordered_keys(y_pred)) do
      names[#names + 1] = type(k) == "string" and k or ("output_" .. k)
    end
    return names
  end
  if outs ~= nil and is_keras_tensor(outs) then return { outs.name } end
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
      m = rawget(metrics, cls) and metrics[cls]() or metrics.MeanMetricWrapper(losses[kind .. base])
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

M.resolve_loss, M.resolve_metric, M.output_names = resolve_loss, resolve_metric, output_names

--------------------------------------------------------------------------------
-- The container

local Compiled = class("CompiledTraining")
M.Compiled = Compiled

function Compiled:__init(model, kw)
  self.model = model
  self.loss_spec, self.weights_spec = kw.loss, kw.loss_weights
  self.metrics_spec, self.weighted_spec = kw.metrics, kw.weighted_metrics
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

-- The leaves of y_true or y_pred, and the k-th of them: a single tensor (one
-- output, the common case) is its own only leaf, with no table made per step.
local function leaves(s)
  if s == nil or core.is_tensor(s) then return s end
  return flatten(s)
end
local function leaf(flat, k)
  if flat == nil then return nil end
  if core.is_tensor(flat) then return k == 1 and flat or nil end
  return flat[k]
end

local function update(self, y_true, y_pred, sw, loss, parts, batch)
  self.loss_tracker:update_state(scalar(loss), batch)
  for i, t in pairs(self.output_trackers) do
    if parts[i] then t:update_state(scalar(parts[i]), batch) end
  end
  local entries = self.entries
  if #entries > 0 then
    local flat_pred, flat_true = leaves(y_pred), leaves(y_true)
    for _, e in ipairs(entries) do
      local k = e.output
      local yt = leaf(flat_true, k)
      if yt == nil then raise(("metric '%s' needs targets y"):format(e.name)) end
      e.metric:update_state(yt, leaf(flat_pred, k), e.weighted and weights_for(sw, k, self.n) or nil)
    end
  end
end

-- The running means after a batch; metrics are computed without recording.
function Compiled:update(y_true, y_pred, sw, loss, parts, batch)
  no_grad(update, self, y_true, y_pred, sw, loss, parts, batch)
end

--- compiled_of(model, who): the model's Compiled, or an error that
-- compile() must come first.
function M.compiled_of(model, who)
  local c = rawget(model, "_compiled")
  if not c then raise(("%s: you must call compile() before %s()"):format(class.name_of(model), who)) end
  return c
end

return M

