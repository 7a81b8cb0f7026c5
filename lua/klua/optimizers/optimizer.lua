-- optimizer.lua — the base Optimizer shared by every klua optimizer: argument
-- checking, the learning rate (number, function of the step or schedule),
-- gradient clipping, weight decay, lazily created slot variables, the
-- iteration counter, and state save/restore. Each subclass only names its
-- hyperparameters and slots and calls its fused C update (src/kernels/optim.c)
-- through Optimizer.kernels.
-- Semantics follow keras/src/optimizers/base_optimizer.py.
local ffi = require("ffi")
local core = require("klua.core")
local tensor = require("klua.tensor")
local class = require("klua.class")
local Variable = require("klua.variable")
local schedules = require("klua.optimizers.schedules")
local GradientTape = require("klua.tape")
local C, raise = core.C, core.raise
local T, is_tensor = tensor.T, core.is_tensor

local Optimizer = class("Optimizer")

-- Arguments every optimizer accepts (Keras's base_optimizer keyword args).
local BASE_ARGS = {
  learning_rate = true, weight_decay = true, clipnorm = true, clipvalue = true, global_clipnorm = true,
  name = true, use_ema = true, ema_momentum = true, ema_overwrite_frequency = true,
  loss_scale_factor = true, gradient_accumulation_steps = true,
}

-- Subclasses set: hyper = {name = default, ...}, default_name, and the
-- methods _slot_specs() -> {{slot_name, initial_value}, ...} and
-- _update(var, grad, slots, step) -> rc, which calls one of Optimizer.kernels.
Optimizer.hyper = { learning_rate = 0.001 }
Optimizer.default_name = "optimizer"

-- The fused updates of src/kernels/optim.c over tensors (nil for a slot the
-- configuration leaves out) and the shared step struct; each returns C's rc.
-- Subclasses call these instead of the C library, so this file stays the
-- only optimizer that crosses the FFI boundary.
local function P(t) return t and t.p end
Optimizer.kernels = {
  sgd = function(var, grad, m, step, momentum, nesterov)
    return C.kl_sgd_update(var.p, grad.p, P(m), step, momentum, nesterov)
  end,
  adam = function(var, grad, m, v, vhat, step, beta_1, beta_2, epsilon)
    return C.kl_adam_update(var.p, grad.p, P(m), P(v), P(vhat), step, beta_1, beta_2, epsilon)
  end,
  rmsprop = function(var, grad, velocity, momentum_slot, average_gradient, step, rho, momentum, epsilon)
    return C.kl_rmsprop_update(var.p, grad.p, P(velocity), P(momentum_slot), P(average_gradient), step, rho, momentum, epsilon)
  end,
  adagrad = function(var, grad, accumulator, step, epsilon)
    return C.kl_adagrad_update(var.p, grad.p, P(accumulator), step, epsilon)
  end,
  adadelta = function(var, grad, accumulated_grad, accumulated_delta_var, step, rho, epsilon)
    return C.kl_adadelta_update(var.p, grad.p, P(accumulated_grad), P(accumulated_delta_var), step, rho, epsilon)
  end,
  adamax = function(var, grad, m, norm, step, beta_1, beta_2, epsilon)
    return C.kl_adamax_update(var.p, grad.p, P(m), P(norm), step, beta_1, beta_2, epsilon)
  end,
  nadam = function(var, grad, m, v, step, beta_1, beta_2, epsilon, u_product)
    return C.kl_nadam_update(var.p, grad.p, P(m), P(v), step, beta_1, beta_2, epsilon, u_product)
  end,
  lion = function(var, grad, m, step, beta_1, beta_2)
    return C.kl_lion_update(var.p, grad.p, P(m), step, beta_1, beta_2)
  end,
}

local function is_callable(x)
  if type(x) == "function" then return true end
  local mt = type(x) == "table" and getmetatable(x)
  return mt and mt.__call ~= nil or false
end

local function fmt(v)
  if type(v) == "string" then return ("%q"):format(v) end
  return tostring(v)
end

--- Optimizer{learning_rate=, ...} or Optimizer(learning_rate, {...}).
function Optimizer:__init(a, b)
  local cls = getmetatable(self)
  local who = cls.__name
  local kw = {}
  if type(a) == "table" and not is_callable(a) then
    for k, v in pairs(a) do kw[k] = v end
  else
    if b ~= nil and type(b) ~= "table" then raise(who .. ": expected options as a table, got " .. type(b)) end
    for k, v in pairs(b or {}) do kw[k] = v end
    if a ~= nil then kw.learning_rate = a end
  end
  local hyper = cls.hyper
  for k in pairs(kw) do
    if not BASE_ARGS[k] and hyper[k] == nil then
      raise(("%s: unknown argument `%s`"):format(who, tostring(k)))
    end
  end
  for k, default in pairs(hyper) do
    local v = kw[k]
    if v == nil then v = default end
    if k ~= "learning_rate" and type(v) ~= type(default) then
      raise(("%s: `%s` must be a %s. Received: %s=%s"):format(who, k, type(default), k, fmt(v)))
    end
    self[k] = v
  end
  local lr = self.learning_rate
  if not (type(lr) == "number" or is_callable(lr)) then
    raise(("%s: `learning_rate` should be a number, a schedule, or a function of the step. Received: learning_rate=%s")
      :format(who, fmt(lr)))
  end
  for _, k in ipairs { "weight_decay", "clipnorm", "clipvalue", "global_clipnorm" } do
    local v = kw[k]
    if v == nil then v = hyper[k] end
    if v ~= nil and v ~= false and type(v) ~= "number" then
      raise(("%s: `%s` must be a number. Received: %s=%s"):format(who, k, k, fmt(v)))
    end
    self[k] = v or nil
  end
  local nclip = (self.clipnorm and 1 or 0) + (self.clipvalue and 1 or 0) + (self.global_clipnorm and 1 or 0)
  if nclip > 1 then
    raise(("%s: only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: clipnorm=%s, clipvalue=%s, global_clipnorm=%s")
      :format(who, tostring(self.clipnorm), tostring(self.clipvalue), tostring(self.global_clipnorm)))
  end
  if kw.use_ema then raise(who .. ": `use_ema` is not supported by klua") end
  if kw.gradient_accumulation_steps then raise(who .. ": `gradient_accumulation_steps` is not supported by klua") end
  if kw.loss_scale_factor ~= nil and type(kw.loss_scale_factor) ~= "number" then
    raise(who .. ": `loss_scale_factor` must be a number")
  end
  self.loss_scale_factor = kw.loss_scale_factor
  self.name = kw.name or cls.default_name
  self.iterations = 0
  self.variables = {}          -- slot variables, in creation order
  self.built = false
  self._slots = {}             -- tonumber(var.id) -> {slot_name = Variable}
  self._step = ffi.new("kl_optim_step")
  self._exclude_ids, self._exclude_names = {}, nil
  self:_validate()
end

function Optimizer:_validate() end
function Optimizer:_slot_specs() return {} end
function Optimizer:_before_update() end
function Optimizer:_update() raise(getmetatable(self).__name .. ": no update rule") end

--- current_learning_rate(): the learning rate the next step will use (a number).
function Optimizer:current_learning_rate()
  local lr = self.learning_rate
  if type(lr) == "number" then return lr end
  if not is_callable(lr) then
    raise(("%s: `learning_rate` should be a number, a schedule, or a function of the step. Received: %s")
      :format(getmetatable(self).__name, fmt(lr)))
  end
  local v = lr(self.iterations)
  if is_tensor(v) then v = v:item() end
  if type(v) ~= "number" then
    raise(("%s: the learning rate function returned %s, expected a number"):format(getmetatable(self).__name, fmt(v)))
  end
  return v
end

-- Slots ---------------------------------------------------------------------

local function is_variable(v)
  return is_tensor(v) and bit.band(v.flags, C.KL_FLAG_VARIABLE) ~= 0
end

function Optimizer:_slots_for(var)
  local key = tonumber(var.id)
  local s = self._slots[key]
  if s then return s end
  s = {}
  local shape = var:shape()
  local base = var.name or "variable"
  for _, spec in ipairs(self:_slot_specs()) do
    local name, init = spec[1], spec[2]
    local value
    local pending = self._pending
    if pending then
      value = pending[#self.variables + 1]
      if value and C.kl_tensor_same_shape(value.p, var.p) == 0 then
        raise(("%s.set_state: saved slot %d has shape %s, the variable %s has shape %s"):format(
          getmetatable(self).__name, #self.variables + 1, core.shape_str(value:shape()), base, core.shape_str(shape)))
      end
    end
    local slot = Variable(value or tensor.full(shape, init), { name = base .. "_" .. name, trainable = false })
    s[name] = slot
    self.variables[#self.variables + 1] = slot
  end
  if self._pending and #self.variables >= #self._pending then self._pending = nil end
  self._slots[key] = s
  return s
end

--- build(vars): create the slot variables for vars now (they are otherwise
-- created on the first apply_gradients that sees each variable).
function Optimizer:build(vars)
  for i = 1, table.maxn(vars) do
    local v = vars[i]
    if not is_variable(v) then raise(("%s.build: item %d is not a Variable"):format(getmetatable(self).__name, i)) end
    self:_slots_for(v)
  end
  self.built = true
end

--- exclude_from_weight_decay{var_list=, var_names=}: variables (or names
-- containing one of var_names) that weight decay skips.
function Optimizer:exclude_from_weight_decay(var_list, var_names)
  if type(var_list) == "table" and (var_list.var_list or var_list.var_names) then
    var_list, var_names = var_list.var_list, var_list.var_names
  end
  for _, v in ipairs(var_list or {}) do self._exclude_ids[tonumber(v.id)] = true end
  self._exclude_names = var_names
end

function Optimizer:_decay_for(var, lr)
  local wd = self.weight_decay
  if not wd or wd == 0 then return 0 end
  if self._exclude_ids[tonumber(var.id)] then return 0 end
  local names = self._exclude_names
  if names then
    local n = var.name or ""
    for _, pat in ipairs(names) do
      if n:find(pat, 1, true) then return 0 end
    end
  end
  return wd * lr
end

-- Applying gradients ---------------------------------------------------------

local ptr_bufs = {}
local function ptr_array(n)
  local b = ptr_bufs[n]
  if not b then b = ffi.new("kl_tensor *[?]", n); ptr_bufs[n] = b end
  return b
end

--- apply_gradients(grads, vars) or apply_gradients(klua.zip(grads, vars)).
-- grads may have nil holes (variables the loss does not depend on): those
-- variables are skipped, with a warning the first time.
function Optimizer:apply_gradients(grads, vars)
  local who = getmetatable(self).__name .. ".apply_gradients"
  if type(grads) ~= "table" then raise(who .. ": expected a list of gradients and a list of variables, or a list of {gradient, variable} pairs") end
  local n
  if vars == nil then
    local list = grads
    n = list.n or table.maxn(list)
    grads, vars = {}, {}
    for i = 1, n do
      local p = list[i]
      if type(p) ~= "table" then
        raise(("%s: item %d is not a {gradient, variable} pair (pass grads and vars as two lists, or klua.zip(grads, vars))"):format(who, i))
      end
      grads[i], vars[i] = p[1], p[2]
    end
  else
    if type(vars) ~= "table" then raise(who .. ": variables must be a list") end
    n = vars.n or table.maxn(vars)
  end
  local gs, vs, missing = {}, {}, nil
  for i = 1, n do
    local v, g = vars[i], grads[i]
    if not is_variable(v) then raise(("%s: item %d is not a Variable (got %s)"):format(who, i, type(v))) end
    if g == nil then
      missing = missing or {}
      missing[#missing + 1] = v.name or ("#" .. i)
    else
      if not is_tensor(g) then g = T(g) end
      gs[#gs + 1], vs[#vs + 1] = g, v
    end
  end
  if #gs == 0 then
    if n == 0 then return self.iterations end
    raise(who .. ": no gradients provided for any variable")
  end
  if missing and not self._warned_missing then
    self._warned_missing = true
    io.stderr:write(("klua warning: Gradients do not exist for variables {%s} when minimizing the loss; they are not updated.\n")
      :format(table.concat(missing, ", ")))
  end
  self:_apply(gs, vs)
  return self.iterations
end
Optimizer.apply = Optimizer.apply_gradients

local constraint_of = Variable.constraint_of

function Optimizer:_apply(gs, vs)
  local lr = self:current_learning_rate()
  local step = self._step
  local count = #gs
  local unscale = self.loss_scale_factor and 1 / self.loss_scale_factor or 1
  local scales = {}
  if self.clipnorm and self.clipnorm > 0 then
    local c = self.clipnorm
    for i = 1, count do
      local norm = math.sqrt(C.kl_optim_sumsq(gs[i].p)) * unscale
      scales[i] = unscale * c / math.max(norm, c)
    end
  elseif self.global_clipnorm and self.global_clipnorm > 0 then
    local arr = ptr_array(count)
    for i = 1, count do arr[i - 1] = gs[i].p end
    local gn = C.kl_global_norm(count, arr) * unscale
    local c = self.global_clipnorm
    -- Keras: clip_norm * min(1 / norm, 1 / clip_norm), NaN when the norm is not finite
    local s = c * math.min(1 / gn, 1 / c)
    if gn ~= gn or gn == math.huge then s = 0 / 0 end
    for i = 1, count do scales[i] = unscale * s end
  else
    for i = 1, count do scales[i] = unscale end
  end
  step.lr = lr
  step.step = self.iterations + 1
  step.clipvalue = (self.clipvalue and self.clipvalue > 0) and self.clipvalue or 0
  self:_before_update()
  for i = 1, count do
    local v = vs[i]
    local slots = self:_slots_for(v)
    step.grad_scale = scales[i]
    step.decay = self:_decay_for(v, lr)
    core.check(self:_update(v, gs[i], slots, step))
    -- Keras applies a weight's constraint right after its update.
    local constraint = constraint_of(v)
    if constraint then v:assign(constraint(v)) end
  end
  self.built = true
  self.iterations = self.iterations + 1
end

--- minimize(loss_fn, vars): one step on loss_fn() (a function of no arguments).
function Optimizer:minimize(loss_fn, vars)
  local tape = GradientTape()
  local loss = tape:record(loss_fn)
  self:apply_gradients(tape:gradient(loss, vars), vars)
  return loss
end

-- State ------------------------------------------------------------------------

-- Scalars besides the slots that a subclass keeps between steps (Nadam's
-- momentum cache); listed so get_state/set_state carry them.
Optimizer.state_scalars = {}

--- get_state(): {iterations=, learning_rate= (when a number), variables={copies of the slots}, ...}
function Optimizer:get_state()
  local vars = {}
  for i, v in ipairs(self.variables) do vars[i] = v:value() end
  local st = { iterations = self.iterations, variables = vars }
  if type(self.learning_rate) == "number" then st.learning_rate = self.learning_rate end
  for _, k in ipairs(getmetatable(self).state_scalars) do st[k] = self[k] end
  return st
end

--- set_state(state): restore what get_state returned. On an optimizer whose
-- slots do not exist yet, they take the saved values as they are created
-- (variables are met in the same order as in the saved run).
function Optimizer:set_state(st)
  local who = getmetatable(self).__name .. ".set_state"
  if type(st) ~= "table" or type(st.iterations) ~= "number" then raise(who .. ": expected a table from get_state()") end
  local saved = st.variables or {}
  for i, t in ipairs(saved) do
    if not is_tensor(t) then raise(("%s: variables[%d] is not a tensor"):format(who, i)) end
  end
  if #self.variables > 0 then
    if #saved ~= #self.variables then
      raise(("%s: the state holds %d slot variables, the optimizer has %d"):format(who, #saved, #self.variables))
    end
    for i, v in ipairs(self.variables) do
      if C.kl_tensor_same_shape(v.p, saved[i].p) == 0 then
        raise(("%s: slot %d (%s) has shape %s, the saved value %s"):format(who, i, v.name or "?",
          core.shape_str(v:shape()), core.shape_str(saved[i]:shape())))
      end
      v:assign(saved[i])
    end
  else
    local copies = {}
    for i, t in ipairs(saved) do copies[i] = t:clone() end
    self._pending = #copies > 0 and copies or nil
  end
  self.iterations = st.iterations
  if st.learning_rate ~= nil and type(self.learning_rate) == "number" then self.learning_rate = st.learning_rate end
  for _, k in ipairs(getmetatable(self).state_scalars) do
    if st[k] ~= nil then self[k] = st[k] end
  end
end

-- Config --------------------------------------------------------------------------

function Optimizer:get_config()
  local cls = getmetatable(self)
  local cfg = { name = self.name }
  for k in pairs(cls.hyper) do cfg[k] = self[k] end
  local lr = self.learning_rate
  if type(lr) == "table" and lr.get_config then
    cfg.learning_rate = schedules.serialize(lr)
  end
  cfg.weight_decay, cfg.clipnorm, cfg.clipvalue, cfg.global_clipnorm = self.weight_decay, self.clipnorm, self.clipvalue, self.global_clipnorm
  return cfg
end

function Optimizer.from_config(cls, cfg)
  local kw = {}
  for k, v in pairs(cfg) do kw[k] = v end
  if type(kw.learning_rate) == "table" and kw.learning_rate.class_name then
    kw.learning_rate = schedules.deserialize(kw.learning_rate)
  end
  return cls(kw)
end

Optimizer.__tostring = function(self)
  return ("<%s name=%s learning_rate=%s iterations=%d>"):format(getmetatable(self).__name, tostring(self.name),
    type(self.learning_rate) == "number" and tostring(self.learning_rate) or "schedule", self.iterations)
end

return Optimizer
