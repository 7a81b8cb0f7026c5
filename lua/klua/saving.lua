-- saving.lua — klua.saving: the registry of serializable classes (layers,
-- models, initializers...) so that a saved config can name its class and be
-- rebuilt. Saving and loading models is added here by klua.Model's owner.
local core = require("klua.core")

local saving = {}

local registry = {}

local function name_of(cls)
  return rawget(cls, "__name")
end

-- register_serializable(Class [, {package=, name=}]) -> Class.
-- Registered under "name" and "package>name" (package "Custom" by default,
-- as in Keras), so get_registered("Linear") and ("Custom>Linear") both work.
function saving.register_serializable(cls, opts)
  if type(cls) ~= "table" then
    core.raise("register_serializable: expected a class, got " .. type(cls))
  end
  opts = opts or {}
  local name = opts.name or name_of(cls)
  if type(name) ~= "string" then core.raise("register_serializable: the class has no name; pass {name=...}") end
  local package = opts.package or "Custom"
  registry[name] = cls
  registry[package .. ">" .. name] = cls
  return cls
end
saving.register_keras_serializable = saving.register_serializable

-- The class registered under `name`, or a built-in layer of that name, or nil.
function saving.get_registered(name)
  if type(name) ~= "string" then return nil end
  local cls = registry[name]
  if cls then return cls end
  local short = name:match(">(.+)$")
  if short and registry[short] then return registry[short] end
  local ok, layers = pcall(require, "klua.layers")
  if ok and type(layers) == "table" then
    local found, c = pcall(function() return layers[short or name] end)
    if found and c then return c end
  end
  return nil
end
saving.get_registered_object = saving.get_registered

-- The name a class is registered under (nil if it is not).
function saving.get_registered_name(cls)
  for k, v in pairs(registry) do
    if v == cls and not k:find(">") then return k end
  end
  return nil
end

return saving
