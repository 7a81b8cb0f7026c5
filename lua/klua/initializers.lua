-- initializers.lua — klua.initializers: Keras's weight initializers, by name or
-- object. An initializer is called with a shape and returns a new tensor:
--   local init = klua.initializers.GlorotNormal{seed = 42}; local w = init({784, 64})
-- Lower-case names are aliases of the classes (glorot_normal == GlorotNormal).
-- Without a seed, values come from the global klua.random stream; with one, the
-- initializer gives the same values on every call (as in Keras 3) and leaves
-- the global stream untouched. The distributions follow Keras's definitions.
local core = require("klua.core")
local registry = require("klua.registry")
local class = require("klua.class")
local random = require("klua.random")
local tensor = require("klua.tensor")
local nn = require("klua.nn")

local M = {}

local function shape_list(shape, who)
  if type(shape) == "number" then shape = { shape } end
  if type(shape) ~= "table" or core.class_name_of(shape) then
    core.raise(("%s: expected a shape table like {784, 64}, got %s"):format(who or "initializer", core.describe(shape)))
  end
  core.shape_arg(shape, who or "initializer")   -- validates
  return shape
end

local Initializer = class("Initializer")
M.Initializer = Initializer

--- Initializer{}: the base class of initializers; init(shape) returns a new tensor. A subclass defines
-- generate(shape) (and validate, get_config).
function Initializer:__init(kw)
  if kw ~= nil and type(kw) ~= "table" then
    core.raise(("%s: expected a table of options, got %s"):format(rawget(getmetatable(self), "__name"), type(kw)))
  end
end

--- Initializer:generate(shape): the values for shape, what a subclass defines; init(shape) calls it.
--- Initializer:validate(): a subclass's check of its arguments, run by the constructor when defined.
function Initializer:__call(shape, dtype)
  if dtype ~= nil and dtype ~= "float32" then
    core.raise(("%s: dtype %s is not supported"):format(self:class_name(), tostring(dtype)))
  end
  return self:generate(shape)
end

-- Every generate(shape) a subclass defines checks the shape and names the class in its errors.
function Initializer.__init_subclass(cls)
  getmetatable(cls).__newindex = function(c, k, v)
    if k == "generate" and type(v) == "function" then
      local f = v
      v = function(self, shape)
        local who = self:class_name()
        return core.named(who, f, self, shape_list(shape, who))
      end
    end
    class.define(c, k, v)
  end
end

function Initializer:generate(shape)
  core.raise(self:class_name() .. ": generate(shape) is not implemented (a subclass of Initializer defines it)")
end

--- Initializer:class_name(): the class's name, "GlorotUniform".
function Initializer:class_name() return rawget(getmetatable(self), "__name") end
--- Initializer:get_config(): the constructor arguments as a table (from_config rebuilds it).
function Initializer:get_config() return {} end
function Initializer:__tostring() return self:class_name() .. "()" end

-- Keras's argument checks echo what they received.
local function positive(cls, key, v)
  if type(v) ~= "number" or not (v > 0) then
    core.raise(("%s: expected a positive number. Received: %s=%s"):format(cls, key, tostring(v)))
  end
  return v
end

local function define(name, parent, defaults)
  local cls = (parent or Initializer):extend(name)
  cls.defaults = defaults
  if defaults then
    cls.__init = function(self, kw)
      if kw ~= nil and (type(kw) ~= "table" or core.class_name_of(kw)) then kw = { [defaults[1][1]] = kw } end
      kw = kw or {}
      for _, d in ipairs(defaults) do
        local v = kw[d[1]]
        if v == nil then v = d[2] end
        self[d[1]] = v
      end
      if kw.seed ~= nil and (type(kw.seed) ~= "number" or kw.seed % 1 ~= 0) then
        core.raise(("%s: seed must be an integer. Received: seed=%s"):format(name, core.received(kw.seed)))
      end
      if self.validate then self:validate() end
    end
    cls.get_config = function(self)
      local config = {}
      for _, d in ipairs(defaults) do config[d[1]] = self[d[1]] end
      return config
    end
  end
  M[name] = cls
  return cls
end

--- Zeros(): tensors of zeros.
local Zeros = define("Zeros")
function Zeros:generate(shape) return tensor.zeros(shape) end

--- Ones(): tensors of ones.
local Ones = define("Ones")
function Ones:generate(shape) return tensor.ones(shape) end

--- Constant{value=0.0} (also Constant(value)): the value everywhere; an array value (a tensor or nested list) is broadcast to the shape.
-- Keras's Constant(value): a number, or an array (a tensor or a nested Lua
-- list) broadcast to the shape asked for. The config holds an array as a
-- nested list.
local Constant = define("Constant", nil, { { "value", 0.0 } })
local define_init = Constant.__init
function Constant:__init(kw)
  if type(kw) == "table" and getmetatable(kw) == nil and kw[1] ~= nil then kw = { value = kw } end  -- Constant{{1, 2}, {3, 4}}
  define_init(self, kw)
end
function Constant:validate()
  local v = self.value
  if type(v) == "table" and getmetatable(v) == nil then
    local ok, t = pcall(tensor.tensor, v)
    if ok then self.value = t end
  end
  if type(self.value) ~= "number" and not core.is_tensor(self.value) then
    core.raise("Constant: value must be a number, a tensor or a nested list of numbers. Received: value=" .. tostring(v))
  end
end
function Constant:generate(shape)
  local v = self.value
  if type(v) == "number" then return tensor.full(shape, v) end
  local ok, b = pcall(core.op, "broadcast_to", v, nil, nil, { ints = shape })
  if not ok then
    core.raise(("Constant: a value of shape %s does not broadcast to the shape %s"):format(
      core.shape_str(v:shape()), core.shape_str(shape)))
  end
  return core.op("copy", b)
end
function Constant:get_config()
  local v = self.value
  return { value = core.is_tensor(v) and v:totable() or v }
end

--- RandomNormal{mean=0.0, stddev=0.05, seed=nil}: normal draws.
local RandomNormal = define("RandomNormal", nil, { { "mean", 0.0 }, { "stddev", 0.05 }, { "seed", nil } })
function RandomNormal:validate() positive("RandomNormal", "stddev", self.stddev) end
function RandomNormal:generate(shape)
  return random.normal(shape, { mean = self.mean, stddev = self.stddev, seed = self.seed })
end

--- TruncatedNormal{mean=0.0, stddev=0.05, seed=nil}: normal draws redrawn beyond two standard deviations.
local TruncatedNormal = define("TruncatedNormal", nil, { { "mean", 0.0 }, { "stddev", 0.05 }, { "seed", nil } })
function TruncatedNormal:validate() positive("TruncatedNormal", "stddev", self.stddev) end
function TruncatedNormal:generate(shape)
  return random.truncated_normal(shape, { mean = self.mean, stddev = self.stddev, seed = self.seed })
end

--- RandomUniform{minval=-0.05, maxval=0.05, seed=nil}: uniform draws in [minval, maxval).
local RandomUniform = define("RandomUniform", nil, { { "minval", -0.05 }, { "maxval", 0.05 }, { "seed", nil } })
function RandomUniform:validate()
  if type(self.minval) ~= "number" or type(self.maxval) ~= "number" or self.maxval < self.minval then
    core.raise(("RandomUniform: expected minval <= maxval. Received: minval=%s, maxval=%s"):format(
      tostring(self.minval), tostring(self.maxval)))
  end
end
function RandomUniform:generate(shape)
  return random.uniform(shape, { minval = self.minval, maxval = self.maxval, seed = self.seed })
end

--- compute_fans(shape): Keras's fan_in, fan_out of a kernel shape (..., in, out).
-- Keras's compute_fans: kernels are (..., in, out); the leading sizes form the
-- receptive field.
local function compute_fans(shape)
  shape = shape_list(shape, "compute_fans")
  local n = #shape
  if n == 0 then return 1, 1 end
  if n == 1 then return shape[1], shape[1] end
  if n == 2 then return shape[1], shape[2] end
  local receptive = 1
  for i = 1, n - 2 do receptive = receptive * shape[i] end
  return shape[n - 1] * receptive, shape[n] * receptive
end
M.compute_fans = compute_fans

-- Stddev of a standard normal truncated to [-2, 2]: dividing by it keeps the
-- variance at `scale` (Keras's constant).
local TRUNC_STD = 0.87962566103423978

--- VarianceScaling{scale=1.0, mode="fan_in", distribution="truncated_normal", seed=nil}: draws of variance
-- scale / fan (fan_in, fan_out or fan_avg), truncated normal, untruncated normal or uniform.
local VarianceScaling = define("VarianceScaling", nil,
  { { "scale", 1.0 }, { "mode", "fan_in" }, { "distribution", "truncated_normal" }, { "seed", nil } })
function VarianceScaling:validate()
  local name = self:class_name()
  positive(name, "scale", self.scale)
  local modes = { fan_in = true, fan_out = true, fan_avg = true }
  if not modes[self.mode] then
    core.raise(("%s: mode must be one of fan_in, fan_out, fan_avg. Received: mode=%s"):format(name, tostring(self.mode)))
  end
  if self.distribution == "normal" then self.distribution = "truncated_normal" end
  local dists = { truncated_normal = true, untruncated_normal = true, uniform = true }
  if not dists[self.distribution] then
    core.raise(("%s: distribution must be one of truncated_normal, untruncated_normal, uniform. Received: distribution=%s")
      :format(name, tostring(self.distribution)))
  end
end
function VarianceScaling:generate(shape)
  local fan_in, fan_out = compute_fans(shape)
  local scale = self.scale
  if self.mode == "fan_in" then
    scale = scale / math.max(1, fan_in)
  elseif self.mode == "fan_out" then
    scale = scale / math.max(1, fan_out)
  else
    scale = scale / math.max(1, (fan_in + fan_out) / 2)
  end
  if self.distribution == "truncated_normal" then
    return random.truncated_normal(shape, { stddev = math.sqrt(scale) / TRUNC_STD, seed = self.seed })
  elseif self.distribution == "untruncated_normal" then
    return random.normal(shape, { stddev = math.sqrt(scale), seed = self.seed })
  end
  local limit = math.sqrt(3 * scale)
  return random.uniform(shape, { minval = -limit, maxval = limit, seed = self.seed })
end

-- The named variance-scaling initializers: only the seed is configurable.
local function fixed(name, scale, mode, distribution)
  local cls = define(name, VarianceScaling)
  cls.__init = function(self, kw)
    if kw ~= nil and (type(kw) ~= "table" or core.class_name_of(kw)) then kw = { seed = kw } end
    kw = kw or {}
    if kw.seed ~= nil and (type(kw.seed) ~= "number" or kw.seed % 1 ~= 0) then
      core.raise(("%s: seed must be an integer. Received: seed=%s"):format(name, core.received(kw.seed)))
    end
    VarianceScaling.__init(self, { scale = scale, mode = mode, distribution = distribution, seed = kw.seed })
  end
  cls.get_config = function(self) return { seed = self.seed } end
  return cls
end
--- GlorotUniform{seed=nil}: uniform in ±sqrt(6 / (fan_in + fan_out)) (Xavier); the default kernel initializer.
fixed("GlorotUniform", 1.0, "fan_avg", "uniform")
--- GlorotNormal{seed=nil}: truncated normal of variance 2 / (fan_in + fan_out).
fixed("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
--- HeNormal{seed=nil}: truncated normal of variance 2 / fan_in.
fixed("HeNormal", 2.0, "fan_in", "truncated_normal")
--- HeUniform{seed=nil}: uniform in ±sqrt(6 / fan_in).
fixed("HeUniform", 2.0, "fan_in", "uniform")
--- LecunNormal{seed=nil}: truncated normal of variance 1 / fan_in.
fixed("LecunNormal", 1.0, "fan_in", "truncated_normal")
--- LecunUniform{seed=nil}: uniform in ±sqrt(3 / fan_in).
fixed("LecunUniform", 1.0, "fan_in", "uniform")

--- Orthogonal{gain=1.0, seed=nil}: a (semi-)orthogonal matrix (over the last axis) times gain.
-- Keras: QR of a normal (max(r,c), min(r,c)) matrix, Q's columns signed so
-- that R's diagonal is positive, transposed when there are fewer rows than
-- columns, times gain. The QR runs in C (nn.orthonormal, Gram-Schmidt).
local Orthogonal = define("Orthogonal", nil, { { "gain", 1.0 }, { "seed", nil } })
function Orthogonal:generate(shape)
  if #shape < 2 then
    core.raise(("Orthogonal: the shape must have at least 2 dimensions. Received: shape=%s"):format(core.shape_str(shape)))
  end
  local rows = 1
  for i = 1, #shape - 1 do rows = rows * shape[i] end
  local cols = shape[#shape]
  local q = random.normal({ math.max(rows, cols), math.min(rows, cols) }, { seed = self.seed })
  q = nn.orthonormal(q)
  if rows < cols then q = core.op("transpose", q, nil, nil, { ints = { 1, 0 } }) end
  q = core.op("reshape", q, nil, nil, { ints = shape })
  if self.gain ~= 1 then q = core.op("scale", q, nil, nil, { f = { self.gain, 0 } }) end
  return q
end

--- Identity{gain=1.0}: gain times the identity matrix (2-D shapes only).
local Identity = define("Identity", nil, { { "gain", 1.0 } })
function Identity:generate(shape)
  if #shape ~= 2 then
    core.raise(("Identity: only 2D shapes are supported. Received: shape=%s"):format(core.shape_str(shape)))
  end
  local eye = tensor.eye(shape[1], shape[2])
  if self.gain ~= 1 then eye = core.op("scale", eye, nil, nil, { f = { self.gain, 0 } }) end
  return eye
end

-- Keras's lower-case aliases.
local aliases = {
  zeros = "Zeros", ones = "Ones", constant = "Constant", random_normal = "RandomNormal",
  random_uniform = "RandomUniform", truncated_normal = "TruncatedNormal",
  variance_scaling = "VarianceScaling", glorot_uniform = "GlorotUniform",
  glorot_normal = "GlorotNormal", he_normal = "HeNormal", he_uniform = "HeUniform",
  lecun_normal = "LecunNormal", lecun_uniform = "LecunUniform", orthogonal = "Orthogonal",
  identity = "Identity",
  -- Keras's extra names
  uniform = "RandomUniform", normal = "RandomNormal", one = "Ones", zero = "Zeros",
}
for alias, name in pairs(aliases) do M[alias] = M[name] end
M.IdentityInitializer, M.OrthogonalInitializer = M.Identity, M.Orthogonal

--- get(identifier): an initializer from a name ("he_normal", "HeNormal"), a
-- registered name, a config {class_name=, config=}, an initializer, a class
-- or a function(shape).
local GET = { who = "initializers.get", kind = "initializer", builtins = M, base = Initializer, functions = true,
  hidden = { Initializer = true }, raise = core.raise }
function M.get(id) return registry.resolve(id, GET) end

--- serialize(init): {class_name=, config=} (a plain function: its registered name, else nil).
function M.serialize(init)
  if type(init) == "string" then return init end
  return registry.serialize(init, core.raise)
end

--- deserialize(config): the initializer a serialize() table describes (the same as get).
M.deserialize = M.get

return M
