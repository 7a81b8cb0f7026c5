-- schedules.lua — learning rate schedules (keras.optimizers.schedules): each
-- is a callable object, schedule(step) -> learning rate, that an optimizer
-- calls with its iteration count before each step. Formulas follow
-- keras/src/optimizers/schedules/learning_rate_schedule.py; values are Lua
-- numbers (double), not tensors.
local core = require("klua.core")
local registry = require("klua.registry")
local class = require("klua.class")
local raise = core.raise

local M = {}

--- LearningRateSchedule(): the base class of schedules: schedule(step) calls the subclass's call(step) -> rate.
--- LearningRateSchedule:call(step): the learning rate at an optimizer step (0-based), what a subclass defines.
--- LearningRateSchedule:validate(): a subclass's check of its arguments, run by the constructor when defined.
local LearningRateSchedule = class("LearningRateSchedule")
M.LearningRateSchedule = LearningRateSchedule

LearningRateSchedule.__call = function(self, step)
  local f = getmetatable(self).call
  if not f then raise(("Learning rate schedule '%s' must define call(step) (or __call)"):format(getmetatable(self).__name)) end
  return f(self, step)
end

--- LearningRateSchedule:get_config(): the schedule's arguments as a table (from_config rebuilds it).
function LearningRateSchedule:get_config()
  local cfg = {}
  for _, k in ipairs(getmetatable(self).args or {}) do cfg[k[1]] = self[k[1]] end
  return cfg
end

local function step_number(step, self)
  if core.is_tensor(step) and step.count == 1 then return step:item() end
  if type(step) ~= "number" then
    raise(("%s: step must be a number, got %s"):format(getmetatable(self).__name, core.describe(step)))
  end
  return step
end

-- A schedule class with arguments given as {name, default, required?}: taken
-- by position or from a keyword table, Keras's order.
local function schedule(name, args)
  local cls = LearningRateSchedule:extend(name)
  cls.args = args
  function cls:__init(...)
    local n = select("#", ...)
    local first = ...
    local kw = {}
    local function is_kw(t) return type(t) == "table" and t[1] == nil and next(t) ~= nil end
    if n == 1 and type(first) == "table" and (is_kw(first) or next(first) == nil) then
      for k, v in pairs(first) do kw[k] = v end
    else
      local pos = { ... }
      if n > 0 and is_kw(pos[n]) then
        for k, v in pairs(pos[n]) do kw[k] = v end
        n = n - 1
      end
      for i = 1, n do
        if i > #args then raise(("%s: too many arguments (%d)"):format(name, n)) end
        kw[args[i][1]] = pos[i]
      end
    end
    local known = {}
    for _, a in ipairs(args) do
      known[a[1]] = true
      local v = kw[a[1]]
      if v == nil then
        if a[3] then raise(("%s: missing required argument `%s`"):format(name, a[1])) end
        v = a[2]
      end
      self[a[1]] = v
    end
    for k in pairs(kw) do
      if not known[k] then raise(("%s: unknown argument `%s`"):format(name, tostring(k))) end
    end
    if self.validate then self:validate() end
  end
  M[name] = cls
  return cls
end

local function positive(self, key)
  if type(self[key]) ~= "number" or self[key] <= 0 then
    raise(("%s: argument `%s` must be > 0. Received: %s=%s"):format(getmetatable(self).__name, key, key, tostring(self[key])))
  end
end

--- ExponentialDecay{initial_learning_rate, decay_steps, decay_rate, staircase=false, name="ExponentialDecay"}
-- (also ExponentialDecay(initial_learning_rate, decay_steps, decay_rate)): exponential decay of the rate.
-- initial_learning_rate * decay_rate ^ (step / decay_steps)
local ExponentialDecay = schedule("ExponentialDecay", {
  { "initial_learning_rate", nil, true }, { "decay_steps", nil, true }, { "decay_rate", nil, true },
  { "staircase", false }, { "name", "ExponentialDecay" },
})
function ExponentialDecay:validate() positive(self, "decay_steps") end
function ExponentialDecay:call(step)
  local p = step_number(step, self) / self.decay_steps
  if self.staircase then p = math.floor(p) end
  return self.initial_learning_rate * self.decay_rate ^ p
end

--- PiecewiseConstantDecay{boundaries, values, name="PiecewiseConstant"} (also PiecewiseConstantDecay(boundaries, values)):
-- a constant rate between step boundaries.
-- values[1] while step <= boundaries[1], ..., values[#values] after the last boundary
local PiecewiseConstantDecay = schedule("PiecewiseConstantDecay", {
  { "boundaries", nil, true }, { "values", nil, true }, { "name", "PiecewiseConstant" },
})
function PiecewiseConstantDecay:validate()
  if type(self.boundaries) ~= "table" or type(self.values) ~= "table" or #self.boundaries ~= #self.values - 1 then
    raise(("PiecewiseConstantDecay: the length of boundaries should be 1 less than the length of values. Received: %d boundaries and %d values")
      :format(type(self.boundaries) == "table" and #self.boundaries or 0, type(self.values) == "table" and #self.values or 0))
  end
end
function PiecewiseConstantDecay:call(step)
  step = step_number(step, self)
  local b, v = self.boundaries, self.values
  for i = 1, #b do
    if step <= b[i] then return v[i] end
  end
  return v[#v]
end

--- PolynomialDecay{initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=false, name="PolynomialDecay"}:
-- polynomial decay to end_learning_rate over decay_steps.
-- (initial - end) * (1 - min(step, decay_steps) / decay_steps) ^ power + end;
-- cycle: decay_steps grows to the first multiple above step
local PolynomialDecay = schedule("PolynomialDecay", {
  { "initial_learning_rate", nil, true }, { "decay_steps", nil, true }, { "end_learning_rate", 0.0001 },
  { "power", 1.0 }, { "cycle", false }, { "name", "PolynomialDecay" },
})
function PolynomialDecay:validate() positive(self, "decay_steps") end
function PolynomialDecay:call(step)
  step = step_number(step, self)
  local ds = self.decay_steps
  if self.cycle then
    ds = ds * (step == 0 and 1 or math.ceil(step / ds))
  else
    step = math.min(step, ds)
  end
  local p = step / ds
  return (self.initial_learning_rate - self.end_learning_rate) * (1 - p) ^ self.power + self.end_learning_rate
end

--- InverseTimeDecay{initial_learning_rate, decay_steps, decay_rate, staircase=false, name="InverseTimeDecay"}:
-- the rate divided by 1 + decay_rate * step / decay_steps.
-- initial / (1 + decay_rate * step / decay_steps)
local InverseTimeDecay = schedule("InverseTimeDecay", {
  { "initial_learning_rate", nil, true }, { "decay_steps", nil, true }, { "decay_rate", nil, true },
  { "staircase", false }, { "name", "InverseTimeDecay" },
})
function InverseTimeDecay:validate() positive(self, "decay_steps") end
function InverseTimeDecay:call(step)
  local p = step_number(step, self) / self.decay_steps
  if self.staircase then p = math.floor(p) end
  return self.initial_learning_rate / (1 + self.decay_rate * p)
end

--- CosineDecay{initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=nil, warmup_steps=0}:
-- cosine decay, after an optional linear warmup.
-- Optional linear warmup from initial_learning_rate to warmup_target over
-- warmup_steps, then cosine decay to alpha * (warmup_target or initial).
local CosineDecay = schedule("CosineDecay", {
  { "initial_learning_rate", nil, true }, { "decay_steps", nil, true }, { "alpha", 0.0 },
  { "name", "CosineDecay" }, { "warmup_target", nil }, { "warmup_steps", 0 },
})
function CosineDecay:validate() positive(self, "decay_steps") end
function CosineDecay:_decay(step, from)
  local cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
  return from * ((1 - self.alpha) * cosine + self.alpha)
end
function CosineDecay:call(step)
  step = step_number(step, self)
  if self.warmup_target == nil then
    return self:_decay(math.min(step, self.decay_steps), self.initial_learning_rate)
  end
  step = math.min(step, self.decay_steps + self.warmup_steps)
  if step < self.warmup_steps then
    return (self.warmup_target - self.initial_learning_rate) * (step / self.warmup_steps) + self.initial_learning_rate
  end
  return self:_decay(step - self.warmup_steps, self.warmup_target)
end

--- CosineDecayRestarts{initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0, name="SGDRDecay"}:
-- cosine decay with warm restarts (SGDR).
-- SGDR: cosine decay restarted after first_decay_steps * t_mul^i steps, the
-- i-th restart scaled by m_mul^i.
local CosineDecayRestarts = schedule("CosineDecayRestarts", {
  { "initial_learning_rate", nil, true }, { "first_decay_steps", nil, true }, { "t_mul", 2.0 },
  { "m_mul", 1.0 }, { "alpha", 0.0 }, { "name", "SGDRDecay" },
})
function CosineDecayRestarts:validate() positive(self, "first_decay_steps") end
function CosineDecayRestarts:call(step)
  local frac = step_number(step, self) / self.first_decay_steps
  local t_mul, i = self.t_mul
  if t_mul == 1.0 then
    i = math.floor(frac)
    frac = frac - i
  else
    i = math.floor(math.log(1.0 - frac * (1.0 - t_mul)) / math.log(t_mul))
    local sum_r = (1.0 - t_mul ^ i) / (1.0 - t_mul)
    frac = (frac - sum_r) / t_mul ^ i
  end
  local cosine = 0.5 * self.m_mul ^ i * (1.0 + math.cos(math.pi * frac))
  return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)
end

--- serialize(schedule): {class_name=, config=} for a schedule.
function M.serialize(s) return registry.serialize(s, core.raise) end
local GET = { who = "schedules.deserialize", kind = "learning rate schedule", builtins = M,
  base = LearningRateSchedule, hidden = { LearningRateSchedule = true }, raise = raise,
  from_config = function(cls, config) return cls(config) end }
--- deserialize(identifier): a schedule from a serialize() table, a name, a registered name or a schedule (get is the same).
function M.deserialize(t) return registry.resolve(t, GET) end
M.get = M.deserialize

return M
