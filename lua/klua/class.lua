-- class.lua — the one class helper: single inheritance, `Class(...)` builds an
-- instance and calls `__init`, `Class:extend(name)` makes a subclass, and a
-- class may define `__init_subclass(cls)` to prepare its subclasses.
local class = {}

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
  setmetatable(cls, {
    __index = parent,
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

--- is_class(x): a class made here (not an instance).
function class.is_class(x)
  return type(x) == "table" and rawget(x, "__class") == true
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
