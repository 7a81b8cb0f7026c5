-- optimizer.lua — the base Optimizer shared by every klua optimizer: argument
-- checking, the learning rate (number, function of the step or schedule),
-- gradient clipping, weight decay, the optimizer's variables (the iteration
-- counter, the learning rate, then the slots, EMA averages and gradient
-- accumulators, in Keras's order), EMA of the weights, gradient accumulation,
-- and state save/restore. Each subclass only names its hyperparameters and
-- slots and calls its fused C update (src/kernels/optim.c) through
-- Optimizer.kernels.
-- Semantics follow keras/src/optimizers/base_optimizer.py.
local ffi = require("ffi")
local core = require("klua.core")
local tensor = require("klua.tensor")
local class = require("klua.class")
local Variable = require("klua.variable")
local schedules = require("klua.optimizers.schedules")
local GradientTape = require("klua.tape")
local distribution = require("klua.distribution")  -- averages gradients over processes under DataParallel
local C, raise = core.C, core.raise
local T, is_tensor = tensor.T, core.is_tensor

local Optimizer = class("Optimizer")

-- Arguments every optimizer accepts (Keras's base_optimizer keyword args).
local BASE_ARGS = {
  learning_rate = true, weight_decay = true, clipnorm = true, clipvalue = true, global_clipnorm = true,
  name = true, use_ema = true, ema_momentum = true, ema_overwrite_frequency = true,
  loss_scale_factor = true, gradient_accumulation_steps = true,
}

-- Subclasses set: hyper = {name = default, ...} (nullable = {name = true}
-- for those that also take false, Keras's None), default_name, and the
-- methods _slot_specs(var) and _update(var, grad, slots, step) -> rc, which
-- calls one of Optimizer.kernels. _slot_specs returns {{slot_name,
-- initial_value[, shape=]}, ...}, or a list of such groups: Keras creates
-- each group for all the variables before the next group.
Optimizer.hyper = { learning_rate = 0.001 }
Optimizer.nullable = {}
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
  ftrl = function(var, grad, accumulator, linear, step, lr_power, l1, l2, l2_shrinkage, beta)
    return C.kl_ftrl_update(var.p, grad.p, P(accumulator), P(linear), step, lr_power, l1, l2, l2_shrinkage, beta)
  end,
  lamb = function(var, grad, m, v, step, beta_1, beta_2, epsilon)
    return C.kl_lamb_update(var.p, grad.p, P(m), P(v), step, beta_1, beta_2, epsilon)
  end,
  adafactor = function(var, grad, r, c, v, step, beta_2_decay, epsilon_1, epsilon_2, clip_threshold)
    return C.kl_adafactor_update(var.p, grad.p, P(r), P(c), P(v), step, beta_2_decay, epsilon_1, epsilon_2, clip_threshold)
  end,
  -- Muon's elementwise half: decay, momentum, and into out the matrix to orthogonalize
  muon_momentum = function(var, grad, m, out, step, momentum, nesterov)
    return C.kl_muon_momentum(var.p, grad.p, P(m), P(out), step, momentum, nesterov)
  end,
}

local function is_callable(x)
  if type(x) == "function" then return true end
  local mt = type(x) == "table" and getmetatable(x)
  return mt and mt.__call ~= nil or false
end

local function fmt(v)
  if type(v) == "string" then return ("%q"):format(v) end
  if v == nil then return "nil" end
  return tostring(v)
end

local function who_of(self) return getmetatable(self).__name end

local function is_variable(v)
  return is_tensor(v) and bit.band(v.flags, C.KL_FLAG_VARIABLE) ~= 0
end

local function same_shape(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- Properties ------------------------------------------------------------------
-- `iterations`, `learning_rate` and `variables` are computed on access, as
-- Keras's properties are: an instance has no raw field of these names, so
-- reads go to the getters and writes to the setters.

local getters, setters = {}, {}

function Optimizer.__init_subclass(cls)
  rawset(cls, "__index", function(t, k)
    local g = getters[k]
    if g then return g(t) end
    return cls[k]
  end)
end

Optimizer.__newindex = function(t, k, v)
  local s = setters[k]
  if s then return s(t, v) end
  rawset(t, k, v)
end

-- NOTE: the iteration counter and the learning rate are float32 Variables (in
-- `variables`, as Keras's are), which round 0.001 and cannot count past 2^24
-- exactly. The exact number (the count, the rate as typed) is kept beside each
-- and is what reads return as long as the Variable still holds its float32
-- rounding; a value assigned to the Variable itself (set_weights, assign)
-- takes over. The fused updates read the number, never a tensor.
local function read1(v) return tonumber(v.p.data[0]) end
local function write1(v, x) v.p.data[0] = x end

local function raw_iterations(self)
  local v = rawget(self, "_iterations")
  local x = read1(v)
  if x ~= rawget(self, "_it_f32") then rawset(self, "_it_f32", x); rawset(self, "_it_n", x) end
  return rawget(self, "_it_n")
end

local function set_raw_iterations(self, n)
  local v = rawget(self, "_iterations")
  write1(v, n)
  rawset(self, "_it_n", n)
  rawset(self, "_it_f32", read1(v))
end

--- opt.iterations: the number of optimizer steps taken (with
-- gradient_accumulation_steps = N: the number of real updates, every Nth
-- call, as Keras's; the Variable opt.variables[1] counts every call).
getters.iterations = function(self)
  local n = raw_iterations(self)
  local gas = rawget(self, "gradient_accumulation_steps")
  if gas then return math.floor(n / gas) end
  return n
end
setters.iterations = function(self)
  raise(who_of(self) .. ": `iterations` is read-only; assign opt.variables[1] or use set_state()")
end

--- opt.learning_rate: a number (held in a Variable), a schedule or a function of the step.
getters.learning_rate = function(self)
  local v = rawget(self, "_lr_var")
  if not v then return rawget(self, "_lr_fn") end
  local x = read1(v)
  if x ~= rawget(self, "_lr_f32") then rawset(self, "_lr_f32", x); rawset(self, "_lr_n", x) end
  return rawget(self, "_lr_n")
end
setters.learning_rate = function(self, lr)
  local who = who_of(self)
  if type(lr) == "number" then
    local fn = rawget(self, "_lr_fn")
    if fn and class.is_instance(fn, schedules.LearningRateSchedule) then
      raise(who .. ": this optimizer was created with a learning rate schedule as its `learning_rate`, hence its learning rate is not settable. To set it, create the optimizer with a number as `learning_rate`")
    end
    local v = rawget(self, "_lr_var")
    if not v then
      v = Variable(lr, { name = "learning_rate", path = rawget(self, "name") .. "/learning_rate", trainable = false })
      rawset(self, "_lr_var", v)
      rawset(self, "_lr_fn", nil)
    else
      write1(v, lr)
    end
    rawset(self, "_lr_n", lr)
    rawset(self, "_lr_f32", read1(v))
  elseif is_callable(lr) then
    -- a schedule replaces the Variable, which leaves `variables` (as in Keras)
    rawset(self, "_lr_var", nil)
    rawset(self, "_lr_fn", lr)
  else
    raise(("%s: `learning_rate` should be a number, a schedule, or a function of the step. Received: learning_rate=%s")
      :format(who, fmt(lr)))
  end
end

--- opt.variables: every optimizer variable, in Keras's order: the iteration
-- counter, the learning rate (when it is a number), then the rest in the
-- order they were created (EMA averages, gradient accumulators, slots).
getters.variables = function(self)
  local out = { rawget(self, "_iterations") }
  local lr = rawget(self, "_lr_var")
  if lr then out[2] = lr end
  for _, v in ipairs(rawget(self, "_others")) do out[#out + 1] = v end
  return out
end
setters.variables = function(self)
  raise(who_of(self) .. ": `variables` is read-only; use set_weights() or set_state()")
end

Optimizer.__init_subclass(Optimizer)

-- Construction --------------------------------------------------------------------

local function copy_default(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = x end
  return c
end

local function check_base_args(self, who, kw)
  local use_ema = kw.use_ema
  if use_ema ~= nil and type(use_ema) ~= "boolean" then
    raise(("%s: `use_ema` must be a boolean. Received: use_ema=%s"):format(who, fmt(use_ema)))
  end
  local mom = kw.ema_momentum
  if mom == nil then mom = 0.99 end
  if type(mom) ~= "number" then raise(("%s: `ema_momentum` must be a number. Received: ema_momentum=%s"):format(who, fmt(mom))) end
  local freq = kw.ema_overwrite_frequency
  if freq == false then freq = nil end
  if use_ema then
    if mom > 1 or mom < 0 then
      raise(("%s: `ema_momentum` must be in the range [0, 1]. Received: ema_momentum=%s"):format(who, fmt(mom)))
    end
    if freq ~= nil and (type(freq) ~= "number" or freq % 1 ~= 0 or freq < 1) then
      raise(("%s: `ema_overwrite_frequency` must be an integer >= 1 or nil. Received: ema_overwrite_frequency=%s")
        :format(who, fmt(freq)))
    end
  end
  local gas = kw.gradient_accumulation_steps
  if gas == false or gas == 0 then gas = nil end   -- Python's falsy values
  if gas ~= nil and (type(gas) ~= "number" or gas % 1 ~= 0 or gas < 2) then
    raise(("%s: `gradient_accumulation_steps` must be an integer >= 2. Received: gradient_accumulation_steps=%s")
      :format(who, fmt(gas)))
  end
  local lsf = kw.loss_scale_factor
  if lsf == false then lsf = nil end
  if lsf ~= nil and type(lsf) ~= "number" then
    raise(("%s: `loss_scale_factor` must be a number. Received: loss_scale_factor=%s"):format(who, fmt(lsf)))
  end
  self.use_ema = use_ema or false
  self.ema_momentum = mom
  self.ema_overwrite_frequency = freq
  self.gradient_accumulation_steps = gas
  self.loss_scale_factor = lsf
end

--- Optimizer{learning_rate=0.001, name=nil, weight_decay=nil, clipnorm=nil, clipvalue=nil, global_clipnorm=nil,
-- use_ema=false, ema_momentum=0.99, ema_overwrite_frequency=nil, loss_scale_factor=nil, gradient_accumulation_steps=nil}
-- (also Optimizer(learning_rate, {...})): the base class of optimizers; every optimizer takes these arguments besides its own.
function Optimizer:__init(a, b)
  local cls = getmetatable(self)
  local who = cls.__name
  local kw = {}
  if type(a) == "table" and not is_callable(a) then
    for k, v in pairs(a) do kw[k] = v end
  else
    if b ~= nil and (type(b) ~= "table" or core.class_name_of(b)) then raise(who .. ": expected options as a table, got " .. core.describe(b)) end
    for k, v in pairs(b or {}) do kw[k] = v end
    if a ~= nil then kw.learning_rate = a end
  end
  local hyper, nullable = cls.hyper, cls.nullable
  for k in pairs(kw) do
    if not BASE_ARGS[k] and hyper[k] == nil then
      raise(("%s: unknown argument `%s`"):format(who, tostring(k)))
    end
  end
  if kw.name ~= nil and (type(kw.name) ~= "string" or kw.name == "") then
    raise(("%s: `name` must be a non-empty string. Received: name=%s"):format(who, core.received(kw.name)))
  end
  self.name = kw.name or cls.default_name
  -- Keras creates the iteration counter first, then the learning rate
  self._iterations = Variable(0, { name = "iteration", path = self.name .. "/iteration", trainable = false })
  self._it_n, self._it_f32 = 0, 0
  for k, default in pairs(hyper) do
    if k ~= "learning_rate" then
      local v = kw[k]
      if v == nil then v = copy_default(default) end
      if type(v) ~= type(default) and not (v == false and nullable[k]) then
        raise(("%s: `%s` must be a %s. Received: %s=%s"):format(who, k, type(default), k, fmt(v)))
      end
      self[k] = v
    end
  end
  local lr = kw.learning_rate
  if lr == nil then lr = hyper.learning_rate end
  if not (type(lr) == "number" or is_callable(lr)) then
    raise(("%s: `learning_rate` should be a number, a schedule, or a function of the step. Received: learning_rate=%s")
      :format(who, fmt(lr)))
  end
  self.learning_rate = lr
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
  check_base_args(self, who, kw)
  self.built = false
  self._others = {}            -- every variable after iterations and the learning rate, in creation order
  self._slots = {}             -- tonumber(var.id) -> {slot_name = Variable}
  self._averages = {}          -- tonumber(var.id) -> EMA of the variable (use_ema)
  self._accumulators = {}      -- tonumber(var.id) -> summed gradients (gradient_accumulation_steps)
  self._trainable_variables = {}                 -- the variables the optimizer was built on, in order
  self._var_index = {}                           -- tonumber(var.id) -> position in _trainable_variables
  self._model_variables_moving_average = {}      -- Keras's names, in the same order
  self._accumulated_gradients = {}
  self._step = ffi.new("kl_optim_step")
  self._exclude_ids, self._exclude_names = {}, nil
  self:_validate()
end

function Optimizer:_validate() end
function Optimizer:_slot_specs() return {} end
function Optimizer:_build_extra() end
function Optimizer:_before_update() end
function Optimizer:_update() raise(who_of(self) .. ": no update rule") end

--- current_learning_rate(): the learning rate the next step will use (a
-- number). A schedule or function is called with the count of calls (Keras's
-- `_iterations`, which gradient accumulation does not divide).
function Optimizer:current_learning_rate()
  local lr = getters.learning_rate(self)
  if type(lr) == "number" then return lr end
  local v = lr(raw_iterations(self))
  if is_tensor(v) then v = v:item() end
  if type(v) ~= "number" then
    raise(("%s: the learning rate function returned %s, expected a number"):format(who_of(self), fmt(v)))
  end
  return v
end

--- scale_loss(loss): loss * loss_scale_factor when one is set, else loss (Keras's).
function Optimizer:scale_loss(loss)
  local f = self.loss_scale_factor
  if f then return loss * f end
  return loss
end

-- Variables ----------------------------------------------------------------------

local function init_value(who, init)
  if init == nil or init == "zeros" then return 0 end
  if init == "ones" then return 1 end
  if type(init) ~= "number" then
    raise(("%s.add_variable: `initializer` must be a number, \"zeros\" or \"ones\". Received: initializer=%s"):format(who, fmt(init)))
  end
  return init
end

--- add_variable{shape=, initializer=0 | "zeros" | "ones", name=}: a new
-- non-trainable optimizer variable, appended to opt.variables.
function Optimizer:add_variable(kw)
  local who = who_of(self)
  kw = core.options(kw, who .. ".add_variable")
  local shape = kw.shape or {}
  core.shape_arg(shape, who .. ".add_variable")
  if kw.name ~= nil and type(kw.name) ~= "string" then
    raise(("%s.add_variable: `name` must be a string. Received: name=%s"):format(who, core.received(kw.name)))
  end
  local init = init_value(who, kw.initializer)
  local name = kw.name or "variable"
  local others = self._others
  local value
  local pending = self._pending
  if pending then
    value = pending[#others + 1]
    if value and not same_shape(value:shape(), shape) then
      raise(("%s.set_state: saved variable %d has shape %s, the optimizer variable %s has shape %s"):format(
        who, #others + 1, core.shape_str(value:shape()), name, core.shape_str(shape)))
    end
  end
  local v = Variable(value or tensor.full(shape, init), { name = name, path = self.name .. "/" .. name, trainable = false })
  others[#others + 1] = v
  if pending and #others >= #pending then self._pending = nil end
  return v
end

--- add_variable_from_reference(var, name, initializer): a variable shaped
-- like var, named "<var's path with _ for />_<name>" as in Keras.
function Optimizer:add_variable_from_reference(var, name, initializer)
  local who = who_of(self) .. ".add_variable_from_reference"
  if not core.is_tensor(var) then raise(("%s: expected a Variable. Received: %s"):format(who, core.received(var))) end
  if name ~= nil and type(name) ~= "string" then raise(("%s: `name` must be a string. Received: name=%s"):format(who, core.received(name))) end
  local base = Variable.path_of(var):gsub("[/:]", "_")
  return self:add_variable { shape = var:shape(), initializer = initializer, name = base .. "_" .. (name or "var") }
end

local function slot_groups(self, var)
  local specs = self:_slot_specs(var) or {}
  if specs[1] and type(specs[1][1]) == "string" then return { specs } end
  return specs
end

--- build(vars): create the optimizer's variables for vars now (they are
-- otherwise created on the first apply_gradients, for the variables passed
-- then), in Keras's order: EMA averages, gradient accumulators, then each
-- group of slots for every variable. A variable met later gets its own
-- appended when it is first seen.
function Optimizer:build(vars)
  local who = who_of(self) .. ".build"
  if type(vars) ~= "table" then raise(who .. ": expected a list of Variables") end
  local new, index, tv = {}, self._var_index, self._trainable_variables
  for i = 1, vars.n or table.maxn(vars) do
    local v = vars[i]
    if not is_variable(v) then raise(("%s: item %d is not a Variable"):format(who, i)) end
    local key = tonumber(v.id)
    if not index[key] then
      tv[#tv + 1] = v
      index[key] = #tv
      new[#new + 1] = v
    end
  end
  if self.use_ema then
    for _, v in ipairs(new) do
      local avg = self:add_variable_from_reference(v, "average")
      self._averages[tonumber(v.id)] = avg
      self._model_variables_moving_average[#self._model_variables_moving_average + 1] = avg
    end
  end
  if self.gradient_accumulation_steps then
    for _, v in ipairs(new) do
      local acc = self:add_variable_from_reference(v, "gradient_accumulator")
      self._accumulators[tonumber(v.id)] = acc
      self._accumulated_gradients[#self._accumulated_gradients + 1] = acc
    end
  end
  local groups, ngroups = {}, 0
  for i, v in ipairs(new) do
    groups[i] = slot_groups(self, v)
    ngroups = math.max(ngroups, #groups[i])
    self._slots[tonumber(v.id)] = {}
  end
  for g = 1, ngroups do
    for i, v in ipairs(new) do
      local slots = self._slots[tonumber(v.id)]
      for _, spec in ipairs(groups[i][g] or {}) do
        if spec.shape then
          local base = Variable.path_of(v):gsub("[/:]", "_")
          slots[spec[1]] = self:add_variable { shape = spec.shape, initializer = spec[2], name = base .. "_" .. spec[1] }
        else
          slots[spec[1]] = self:add_variable_from_reference(v, spec[1], spec[2])
        end
      end
    end
  end
  if #new > 0 then self:_build_extra(new) end
  self.built = true
end

--- _slots_for(var): var's slots {name = Variable}, created if needed.
function Optimizer:_slots_for(var)
  local s = self._slots[tonumber(var.id)]
  if not s then
    self:build({ var })
    s = self._slots[tonumber(var.id)]
  end
  return s
end

--- get_weights(): copies of the values of opt.variables, in order (Keras's).
function Optimizer:get_weights()
  local out = {}
  for i, v in ipairs(getters.variables(self)) do out[i] = v:value() end
  return out
end

--- set_weights(list): assign the values (tensors or nested tables) to
-- opt.variables in order; the optimizer must be built.
function Optimizer:set_weights(weights)
  local who = who_of(self) .. ".set_weights"
  if not self.built then
    raise(who .. ": You are calling `set_weights()` on an optimizer that has not yet been built. Call `optimizer:build(trainable_variables)` to create the optimizer weights before calling `set_weights()`")
  end
  if type(weights) ~= "table" then raise(who .. ": expected a list of values, got " .. type(weights)) end
  local vars = getters.variables(self)
  local n = weights.n or table.maxn(weights)
  if n ~= #vars then
    raise(("%s: expected %d values (one per optimizer variable), got %d"):format(who, #vars, n))
  end
  local values = {}
  for i, v in ipairs(vars) do
    local w = T(weights[i])
    if not same_shape(v:shape(), w:shape()) then
      raise(("%s: optimizer variable %d (%s) has shape %s, not compatible with provided weight shape %s"):format(
        who, i, v.name or "?", core.shape_str(v:shape()), core.shape_str(w:shape())))
    end
    values[i] = w
  end
  for i, v in ipairs(vars) do v:assign(values[i]) end
end

-- Weight decay --------------------------------------------------------------------

--- exclude_from_weight_decay{var_list=, var_names=}: variables (or names
-- containing one of var_names) that weight decay skips.
function Optimizer:exclude_from_weight_decay(var_list, var_names)
  local who = who_of(self) .. ".exclude_from_weight_decay"
  if type(var_list) == "table" and not core.class_name_of(var_list) and (var_list.var_list or var_list.var_names) then
    var_list, var_names = var_list.var_list, var_list.var_names
  end
  for _, a in ipairs { { "var_list", var_list }, { "var_names", var_names } } do
    if a[2] ~= nil and (type(a[2]) ~= "table" or core.class_name_of(a[2])) then
      raise(("%s: `%s` must be a list. Received: %s=%s"):format(who, a[1], a[1], core.received(a[2])))
    end
  end
  for i, v in ipairs(var_list or {}) do
    if not core.is_tensor(v) then raise(("%s: var_list[%d] is not a Variable: %s"):format(who, i, core.describe(v))) end
  end
  for i, v in ipairs(var_names or {}) do
    if type(v) ~= "string" then raise(("%s: var_names[%d] is not a string: %s"):format(who, i, core.describe(v))) end
  end
  for _, v in ipairs(var_list or {}) do self._exclude_ids[tonumber(v.id)] = true end
  self._exclude_names = var_names
end

function Optimizer:_use_weight_decay(var)
  if self._exclude_ids[tonumber(var.id)] then return false end
  local names = self._exclude_names
  if names then
    local n = var.name or ""
    for _, pat in ipairs(names) do
      if n:find(pat, 1, true) then return false end
    end
  end
  return true
end

-- The factor w -= w * factor the update applies first (Keras's _apply_weight_decay).
function Optimizer:_decay_for(var, lr)
  local wd = self.weight_decay
  if not wd or wd == 0 or not self:_use_weight_decay(var) then return 0 end
  return wd * lr
end

--- _apply_weight_decay(vars): w -= w * weight_decay * lr for each variable
-- weight decay does not skip (Keras's; the fused updates do this themselves).
function Optimizer:_apply_weight_decay(vars)
  local lr = self:current_learning_rate()
  for _, v in ipairs(vars) do
    local d = self:_decay_for(v, lr)
    if d ~= 0 then v:assign(v - v * d) end
  end
end

-- Applying gradients ---------------------------------------------------------

local ptr_bufs = {}
local function ptr_array(n)
  local b = ptr_bufs[n]
  if not b then b = ffi.new("kl_tensor *[?]", n); ptr_bufs[n] = b end
  return b
end

--- Optimizer:apply_gradients(grads, vars): one update of each variable from its gradient (also apply(...) and
-- apply_gradients(klua.zip(grads, vars))); nil gradients are skipped with a warning the first time.
function Optimizer:apply_gradients(grads, vars)
  local who = who_of(self) .. ".apply_gradients"
  if type(grads) ~= "table" or core.class_name_of(grads) then
    raise(who .. ": expected a list of gradients and a list of variables, or a list of {gradient, variable} pairs. Received: "
      .. core.describe(grads))
  end
  local n
  if vars == nil then
    local list = grads
    n = list.n or table.maxn(list)
    grads, vars = {}, {}
    for i = 1, n do
      local p = list[i]
      if type(p) ~= "table" or core.class_name_of(p) then
        raise(("%s: item %d is not a {gradient, variable} pair (pass grads and vars as two lists, or klua.zip(grads, vars))"):format(who, i))
      end
      grads[i], vars[i] = p[1], p[2]
    end
  else
    if type(vars) ~= "table" or core.class_name_of(vars) then raise(who .. ": variables must be a list. Received: " .. core.received(vars)) end
    n = vars.n or table.maxn(vars)
  end
  local gs, vs, missing = {}, {}, nil
  for i = 1, n do
    local v, g = vars[i], grads[i]
    if not is_variable(v) then raise(("%s: item %d is not a Variable (got %s)"):format(who, i, core.describe(v))) end
    if g == nil then
      missing = missing or {}
      missing[#missing + 1] = v.name or ("#" .. i)
    else
      if not is_tensor(g) then g = T(g, who, ("gradient %d"):format(i)) end
      gs[#gs + 1], vs[#vs + 1] = g, v
    end
  end
  if #gs == 0 then
    if n == 0 then return self.iterations end
    raise(who .. ": no gradients provided for any variable")
  end
  -- Keras builds on every variable passed, gradient or not
  if not self.built then self:build({ n = n, unpack(vars, 1, n) }) end
  if missing and not self._warned_missing then
    self._warned_missing = true
    io.stderr:write(("klua warning: Gradients do not exist for variables {%s} when minimizing the loss; they are not updated.\n")
      :format(table.concat(missing, ", ")))
  end
  gs = distribution.reduce_gradients(gs, vs)  -- distribution: the mean over processes (identity in one process)
  self:_apply(gs, vs)
  return self.iterations
end
Optimizer.apply = Optimizer.apply_gradients

local constraint_of = Variable.constraint_of

-- One update of vs by gs (clipping, weight decay, the rule): Keras's
-- _clip_gradients + _apply_weight_decay + _backend_update_step. it is the
-- step count the rule sees (Keras's `iterations` before this step).
function Optimizer:_update_step(gs, vs, lr, unscale, it)
  local step = self._step
  local count = #gs
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
  step.step = it + 1
  step.clipvalue = (self.clipvalue and self.clipvalue > 0) and self.clipvalue or 0
  self:_before_update()
  local slots_of = self._slots
  for i = 1, count do
    local v = vs[i]
    step.grad_scale = scales[i]
    step.decay = self:_decay_for(v, lr)
    core.check(self:_update(v, gs[i], slots_of[tonumber(v.id)], step))
  end
end

-- _consumes_gradients(): true for one of klua's own optimizer classes used
-- as it is (no method of the update path replaced on the instance): such an
-- update keeps no reference to a gradient, so model.fit's train_step frees
-- them right after it instead of leaving them to the collector (a Dense
-- kernel's gradient is the biggest tensor of a step). Subclasses answer
-- false: their Lua may keep a gradient.
local UPDATE_PATH = { "apply_gradients", "apply", "_apply", "_update_step", "_update", "update_step", "_before_update" }
function Optimizer:_consumes_gradients()
  if not rawget(getmetatable(self), "_klua_builtin") then return false end
  for _, k in ipairs(UPDATE_PATH) do if rawget(self, k) ~= nil then return false end end
  return true
end

--- update_step(gradient, variable, learning_rate): the optimizer's rule alone
-- on one variable (no clipping, weight decay, EMA or step count), as Keras's
-- update_step; the variable's slots are created if needed.
function Optimizer:update_step(gradient, variable, learning_rate)
  if not is_variable(variable) then raise(who_of(self) .. ".update_step: the variable is not a Variable") end
  local step = self._step
  step.lr, step.step, step.clipvalue, step.grad_scale, step.decay = learning_rate, self.iterations + 1, 0, 1, 0
  core.check(self:_update(variable, T(gradient), self:_slots_for(variable), step))
end

-- Keras's _update_model_variables_moving_average (the first step copies the
-- weights) and, every ema_overwrite_frequency steps, the overwrite.
function Optimizer:_update_ema()
  local it = self.iterations
  local momentum = it ~= 0 and self.ema_momentum or 0
  local averages = self._averages
  for _, v in ipairs(self._trainable_variables) do
    core.check(C.kl_optim_ema(averages[tonumber(v.id)].p, v.p, momentum))
  end
  local f = self.ema_overwrite_frequency
  if f and (it + 1) % f == 0 then
    for _, v in ipairs(self._trainable_variables) do v:assign(averages[tonumber(v.id)]) end
  end
end

function Optimizer:_apply(gs, vs)
  local count = #gs
  local slots_of = self._slots
  local unseen
  for i = 1, count do
    if not slots_of[tonumber(vs[i].id)] then unseen = unseen or {}; unseen[#unseen + 1] = vs[i] end
  end
  if unseen then self:build(unseen) end
  local raw = raw_iterations(self)
  local lr = self:current_learning_rate()
  local unscale = self.loss_scale_factor and 1 / self.loss_scale_factor or 1
  local gas = self.gradient_accumulation_steps
  if gas then
    -- accumulate; every gas-th call, update with the mean and reset every accumulator
    local update = (raw + 1) % gas == 0
    local accs, accumulators = {}, self._accumulators
    for i = 1, count do
      local acc = accumulators[tonumber(vs[i].id)]
      core.check(C.kl_optim_accumulate(acc.p, gs[i].p, unscale, update and gas or 1))
      accs[i] = acc
    end
    if update then
      self:_update_step(accs, vs, lr, 1, math.floor(raw / gas))
      for _, acc in ipairs(self._accumulated_gradients) do core.check(C.kl_fill(acc.p, 0)) end
    end
  else
    self:_update_step(gs, vs, lr, unscale, raw)
  end
  if self.use_ema then self:_update_ema() end
  -- Keras applies each weight's constraint after the update (and the EMA)
  for i = 1, count do
    local v = vs[i]
    local constraint = constraint_of(v)
    if constraint then v:assign(constraint(v)) end
  end
  set_raw_iterations(self, raw + 1)
end

--- finalize_variable_values(vars): with use_ema, copy each variable's moving
-- average into it (fit does this after the last epoch, as Keras's).
function Optimizer:finalize_variable_values(var_list)
  if not self.use_ema then return end
  for _, v in ipairs(var_list or {}) do
    local avg = is_variable(v) and self._averages[tonumber(v.id)]
    if avg then v:assign(avg) end
  end
end

--- minimize(loss_fn, vars): one step on loss_fn() (a function of no arguments).
function Optimizer:minimize(loss_fn, vars)
  if not is_callable(loss_fn) then
    raise(("%s.minimize: loss must be a function of no arguments. Received: %s"):format(who_of(self), core.received(loss_fn)))
  end
  if type(vars) ~= "table" or core.class_name_of(vars) then
    raise(("%s.minimize: var_list must be a list of Variables. Received: %s"):format(who_of(self), core.received(vars)))
  end
  local tape = GradientTape()
  local loss = tape:record(loss_fn)
  self:apply_gradients(tape:gradient(loss, vars), vars)
  return loss
end

-- State ------------------------------------------------------------------------

-- Scalars besides the variables that a subclass keeps between steps; listed
-- so get_state/set_state carry them.
Optimizer.state_scalars = {}

-- get_state's layout: 2 since the variables follow Keras's order. A state
-- without it (layout 1: slots per variable, Nadam's u_product a number)
-- restores the same unless the subclass says its layout changed.
local STATE_VERSION = 2
function Optimizer:_state_layout_changed() return false end

--- get_state(): {iterations= (every call counted), learning_rate= (when a
-- number), variables={copies of the variables after those two}, ...}
function Optimizer:get_state()
  local vars = {}
  for i, v in ipairs(self._others) do vars[i] = v:value() end
  local st = { iterations = raw_iterations(self), variables = vars, version = STATE_VERSION }
  if rawget(self, "_lr_var") then st.learning_rate = getters.learning_rate(self) end
  for _, k in ipairs(getmetatable(self).state_scalars) do st[k] = self[k] end
  return st
end

--- set_state(state): restore what get_state returned. On an optimizer whose
-- variables do not exist yet, they take the saved values as they are created
-- (variables are met in the same order as in the saved run).
function Optimizer:set_state(st)
  local who = who_of(self) .. ".set_state"
  if type(st) ~= "table" or type(st.iterations) ~= "number" then raise(who .. ": expected a table from get_state()") end
  if st.version == nil and self:_state_layout_changed() then
    raise(("%s: the state was saved by an older klua, whose %s kept its variables in another order; it cannot be restored")
      :format(who, who_of(self)))
  end
  local saved = st.variables or {}
  for i, t in ipairs(saved) do
    if not is_tensor(t) then raise(("%s: variables[%d] is not a tensor"):format(who, i)) end
  end
  local others = self._others
  if #others > 0 then
    if #saved ~= #others then
      raise(("%s: the state holds %d slot variables, the optimizer has %d"):format(who, #saved, #others))
    end
    for i, v in ipairs(others) do
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
  set_raw_iterations(self, st.iterations)
  if st.learning_rate ~= nil and rawget(self, "_lr_var") then self.learning_rate = st.learning_rate end
  for _, k in ipairs(getmetatable(self).state_scalars) do
    if st[k] ~= nil then self[k] = st[k] end
  end
end

-- Scalar variables a subclass keeps (Nadam's momentum cache): read and
-- written in place, without a temporary tensor.
function Optimizer:_get_scalar(v) return read1(v) end
function Optimizer:_set_scalar(v, x) write1(v, x) end

-- Config --------------------------------------------------------------------------

--- Optimizer:get_config(): the optimizer's arguments as a table (a schedule serialized); from_config rebuilds it.
function Optimizer:get_config()
  local cls = getmetatable(self)
  local cfg = { name = self.name }
  for k in pairs(cls.hyper) do cfg[k] = copy_default(self[k]) end
  local lr = getters.learning_rate(self)
  if type(lr) == "table" and lr.get_config then
    cfg.learning_rate = schedules.serialize(lr)
  end
  cfg.weight_decay, cfg.clipnorm, cfg.clipvalue, cfg.global_clipnorm = self.weight_decay, self.clipnorm, self.clipvalue, self.global_clipnorm
  cfg.use_ema, cfg.ema_momentum, cfg.ema_overwrite_frequency = self.use_ema, self.ema_momentum, self.ema_overwrite_frequency
  cfg.loss_scale_factor, cfg.gradient_accumulation_steps = self.loss_scale_factor, self.gradient_accumulation_steps
  return cfg
end

function Optimizer.from_config(cls, cfg)
  local kw = {}
  for k, v in pairs(core.options(cfg, rawget(cls, "__name") .. ".from_config")) do kw[k] = v end
  if type(kw.learning_rate) == "table" and kw.learning_rate.class_name then
    kw.learning_rate = schedules.deserialize(kw.learning_rate)
  end
  return cls(kw)
end

Optimizer.__tostring = function(self)
  local lr = getters.learning_rate(self)
  return ("<%s name=%s learning_rate=%s iterations=%d>"):format(who_of(self), tostring(self.name),
    type(lr) == "number" and tostring(lr) or "schedule", self.iterations)
end

return Optimizer
