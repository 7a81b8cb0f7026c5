-- saving/serialization.lua — objects to configs and back: layers and models
-- as {class_name=, config=, build_config=} (classes come from the registry,
-- never from code in a file), the compile arguments, and JSON values that
-- may hold non-finite numbers.
local core = require("klua.core")
local registry = require("klua.registry")
local layers = require("klua.layers")
local losses = require("klua.losses")
local metrics = require("klua.metrics")

local M = {}

--- get_registered(name): the class registered under `name` (or
-- "package>name"), else the built-in layer of that name, else nil.
function M.get_registered(name)
  if type(name) ~= "string" then return nil end
  local cls = registry.lookup(name)
  if cls ~= nil then return cls end
  return layers[name:match(">(.+)$") or name]
end

--- serialize_layer(layer): {class_name=, config=, build_config=}.
function M.serialize_layer(layer)
  local cls = getmetatable(layer)
  local out = { class_name = registry.name_of(cls) or "Layer", config = layer:get_config() }
  if layer.check_from_config then layer:check_from_config(out.config) end  -- fail at save, not at load
  if not rawget(layer, "_graph") and not rawget(layer, "_layers") and layer.get_build_config then
    out.build_config = layer:get_build_config()
  end
  return out
end

--- deserialize_layer(config, custom_objects): a layer or model from its
-- serialized config; classes from custom_objects, then the registry.
function M.deserialize_layer(config, custom_objects)
  if type(config) ~= "table" or type(config.class_name) ~= "string" then
    core.raise("deserialize: expected {class_name=..., config={...}}")
  end
  return registry.with_custom_objects(custom_objects, function()
    local name = config.class_name
    local cls = M.get_registered(name)
    if not cls then
      core.raise(("unknown class '%s': register it with klua.saving.register_serializable(%s) before loading, or pass custom_objects = {%s = %s}")
        :format(name, name, name, name))
    end
    if type(cls.from_config) ~= "function" then core.raise(("class '%s' has no from_config"):format(name)) end
    local obj = cls.from_config(config.config or {})
    if config.build_config and not rawget(obj, "built") and obj.build_from_config then
      obj:build_from_config(config.build_config)
    end
    return obj
  end)
end

--------------------------------------------------------------------------------
-- Compile arguments: losses and metrics as names, or objects as configs.

local kinds = { losses = losses, metrics = metrics }

function M.serialize_spec(x, kind)
  if x == nil or type(x) == "string" or type(x) == "number" or type(x) == "boolean" then return x end
  if type(x) == "function" then
    local name = registry.name_of(x)
    if name then return name end
    error(("a %s given as a function cannot be saved (register it with klua.saving.register_serializable(fn, {name = ...}))")
      :format(kind:sub(1, -2)), 0)
  end
  if type(x) == "table" and getmetatable(x) == nil then
    local out = {}
    for k, v in pairs(x) do out[k] = M.serialize_spec(v, kind) end
    return out
  end
  return { __object__ = kinds[kind].serialize(x) }
end

function M.deserialize_spec(x, kind)
  if type(x) ~= "table" then return x end
  if x.__object__ then return kinds[kind].get(x.__object__) end
  local out = {}
  for k, v in pairs(x) do out[k] = M.deserialize_spec(v, kind) end
  return out
end

--------------------------------------------------------------------------------
-- JSON with non-finite numbers (callback states hold inf)

function M.to_plain(v)
  if type(v) == "number" then
    if v ~= v then return { __float__ = "nan" } end
    if v == math.huge then return { __float__ = "inf" } end
    if v == -math.huge then return { __float__ = "-inf" } end
    return v
  end
  if type(v) == "table" and getmetatable(v) == nil then
    local out = {}
    for k, x in pairs(v) do out[k] = M.to_plain(x) end
    return out
  end
  if core.is_tensor(v) then return v:item() end
  return v
end

function M.from_plain(v)
  if type(v) == "table" then
    if v.__float__ then
      return ({ nan = 0 / 0, inf = math.huge, ["-inf"] = -math.huge })[v.__float__]
    end
    local out = {}
    for k, x in pairs(v) do out[k] = M.from_plain(x) end
    return out
  end
  return v
end

return M
