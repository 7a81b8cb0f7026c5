-- class.lua — the one class helper: single inheritance, `Class(...)` builds an
-- instance and calls `__init`, `Class:extend(name)` makes a subclass, and a
-- class may define `__init_subclass(cls)` to prepare its subclasses.
--
-- Every class answers `from_config` in both spellings, for every kind
-- (layers, losses, metrics, optimizers, initializers, ...):
--   Dense.from_config(config)   Dense:from_config(config)   -- Keras's classmethod
-- Without a definition it is `Class(config)`. A class that needs more defines
-- `function Cls:from_config(config)` (self is the class it was called on; a
-- one-argument `function Cls.from_config(config)` is accepted too), and both
-- spellings still work for it and for its subclasses.
local class = {}

-- The definitions of from_config, kept under this key; `from_config` itself
-- is each class's own entry point (it must know the class: Cls.from_config(c)
-- passes no self).
local IMPL = "_from_config_impl"

--- is_class(x): a class made here (not an instance).
function class.is_class(x)
  return type(x) == "table" and rawget(x, "__class") == true
end
local is_class = class.is_class

local function default_from_config(cls, config) return cls(config) end

-- A definition written with one parameter takes only the config.
local function takes_class(f)
  local info = debug.getinfo(f, "u")
  return info.isvararg or info.nparams ~= 1
end

local function entry_point(cls)
  return function(a, b)
    local target, config = cls, a
    if is_class(a) then target, config = a, b end     -- Cls:from_config(config)
    if config == nil then config = {} end
    local impl = target[IMPL] or default_from_config
    if takes_class(impl) then return impl(target, config) end
    return impl(config)
  end
end

--- define(cls, key, value): how a class stores a field assigned to it (a
-- subclass's __newindex hook ends with this): from_config is kept as the
-- definition behind the class's entry point.
function class.define(cls, k, v)
  if k == "from_config" and type(v) == "function" then k = IMPL end
  rawset(cls, k, v)
end

local function new_class(name, parent)
  local cls = {}
  cls.__index = cls
  cls.__name = name
  cls.super = parent
  -- Metamethods are not inherited through __index, so copy them down.
  if parent then
    for k, v in pairs(parent) do
      if type(k) == "string" and k:sub(1, 2) == "__" and k ~= "__index" and k ~= "__name" and k ~= "__init"
          and rawget(cls, k) == nil then
        cls[k] = v
      end
    end
  end
  rawset(cls, "__class", true)
  -- Lookups go to the class's own entry points first, then to the parent;
  -- the entry points live outside the class table, so that a later
  -- `Cls.from_config = f` reaches __newindex (class.define).
  local own = setmetatable({ from_config = entry_point(cls) }, { __index = parent })
  setmetatable(cls, {
    __index = own,
    __newindex = class.define,
    __call = function(c, ...)
      local obj = setmetatable({}, c)
      local init = c.__init
      if init then init(obj, ...) end
      return obj
    end,
    __tostring = function(c) return "class " .. c.__name end,
  })
  -- A base class may prepare each subclass when it is made (klua.Layer
  -- declares its properties and marks build() as building).
  local hook = parent and parent.__init_subclass
  if hook then hook(cls) end
  return cls
end

--- extend(name): a subclass of this class.
local function extend(parent, name)
  local cls = new_class(name or "Anonymous", parent)
  cls.extend = parent.extend
  return cls
end

setmetatable(class, {
  __call = function(_, name, parent)
    local cls = new_class(name, parent)
    cls.extend = extend
    return cls
  end,
})

--- is_instance(obj, cls): is obj an instance of cls or of one of its subclasses?
function class.is_instance(obj, cls)
  if type(obj) ~= "table" then return false end
  local c = getmetatable(obj)
  while type(c) == "table" do
    if c == cls then return true end
    c = rawget(c, "super")
  end
  return false
end

function class.name_of(obj)
  local c = type(obj) == "table" and getmetatable(obj)
  return c and rawget(c, "__name") or type(obj)
end

return class
