-- klua.saving — the public saving API, assembled from the package's parts:
--   registry.lua (klua.registry)  which names stand for which classes
--   saving/serialization.lua      objects <-> configs
--   saving/safetensors.lua        the file format, atomic writes, bounded reads
--   saving/weights.lua            weights and optimizer slots by path
--   saving/model_file.lua         model:save / load_model
--   saving/training_state.lua     BackupAndRestore's state
local registry = require("klua.registry")
local safetensors = require("klua.saving.safetensors")
local serialization = require("klua.saving.serialization")
local weights = require("klua.saving.weights")
local model_file = require("klua.saving.model_file")
local training_state = require("klua.saving.training_state")

local core = require("klua.core")

local saving = {}

-- Argument checks shared by the entry points below: each names the function
-- and what it got (the parts assume well-formed arguments).
local function plain(v) return type(v) == "table" and getmetatable(v) == nil end
local KINDS = {
  model = { "a model or layer", function(v) return type(v) == "table" and rawget(v, "_klua_layer") == true end },
  path = { "a non-empty file path (a string)", function(v) return type(v) == "string" and v ~= "" end },
  string = { "a string", function(v) return type(v) == "string" end },
  table = { "a table", plain },
  options = { "a table of keyword arguments (or nil)", function(v) return v == nil or plain(v) end },
  metadata = { "a table of strings (or nil)", function(v) return v == nil or (type(v) == "table" and rawget(v, "_klua_layer") == nil) end },
  list = { "a list (or nil)", function(v) return v == nil or plain(v) end },
  config = { "a serialized object {class_name=, config=}", function(v) return plain(v) and type(v.class_name) == "string" end },
  info = { "a header from read_header", function(v) return plain(v) and type(v.tensors) == "table" and type(v.path) == "string" end },
  fn = { "a function", function(v) return type(v) == "function" end },
  object = { "a class or a function", function(v) return type(v) == "table" or type(v) == "function" end },
}

-- checked(name, {kind, ...}, f): f with its positional arguments checked.
local function checked(name, kinds, f)
  local names = {}
  for i, k in ipairs(kinds) do names[i] = k end
  return function(...)
    for i, kind in ipairs(names) do
      local k = KINDS[kind]
      local v = select(i, ...)
      if not k[2](v) then
        core.raise(("saving.%s: argument %d must be %s, got %s"):format(name, i, k[1], core.describe(v)))
      end
    end
    return f(...)
  end
end

--- register_serializable(obj, {package="Custom", name=nil}): registers a class or function under "name" and
-- "package>name" so that load_model and every get find it (also register_keras_serializable); returns obj.
-- register_serializable(Class or function [, {package=, name=}]) -> it:
-- findable by "name" and "package>name" (package "Custom"), as Keras's
-- register_keras_serializable.
saving.register_serializable = checked("register_serializable", { "object", "options" }, function(obj, opts)
  local ok, res = pcall(registry.register, obj, opts)
  if not ok then core.raise(res) end
  return res
end)
saving.register_keras_serializable = saving.register_serializable
saving.get_registered = serialization.get_registered
saving.get_registered_object = serialization.get_registered
--- get_registered_name(obj): "package>name" when registered, else the class name.
function saving.get_registered_name(obj)
  return registry.registered_name(obj) or registry.name_of(obj)
end

--- serialize_layer(layer): {class_name=, config=, build_config=}.
saving.serialize_layer = checked("serialize_layer", { "model" }, serialization.serialize_layer)
--- deserialize_layer(config, custom_objects): a layer or model from its serialized config; classes from
-- custom_objects, then the registry.
saving.deserialize_layer = checked("deserialize_layer", { "config", "options" }, serialization.deserialize_layer)

--- weight_entries(model): {{var=, path=}, ...} in model.weights order.
saving.weight_entries = checked("weight_entries", { "model" }, weights.weight_entries)
--- save_weights(model, path): every weight, named by its path, in safetensors form.
saving.save_weights = checked("save_weights", { "model", "path" }, weights.save_weights)
--- load_weights(model, path, {skip_mismatch=false}): matched by name, every shape checked.
saving.load_weights = checked("load_weights", { "model", "path", "options" }, weights.load_weights)
--- save_model(model, path, {include_optimizer=true}): the config, weights and optimizer state in one .klua file (a
-- safetensors file with the configs as JSON in its metadata), written atomically.
saving.save_model = checked("save_model", { "model", "path", "options" }, model_file.save_model)
--- load_model(path, {compile=true, custom_objects=nil, max_bytes=nil}): the model a .klua file holds, compiled as
-- it was saved. Nothing in the file is executed, and what its config builds is checked against its tensors before
-- it is allocated. max_bytes bounds the tensor memory the load may allocate (default: default_max_bytes, about the
-- file's tensors as float32 plus 64 MiB); a file that needs more fails, naming it.
saving.load_model = checked("load_model", { "path", "options" }, model_file.load_model)
--- model_from_json(text, {custom_objects=nil}): a model (fresh weights) from model:to_json() text.
saving.model_from_json = checked("model_from_json", { "string", "options" }, model_file.model_from_json)
--- save_training_state(model, path, {epoch=, callbacks=, generators=}): weights, optimizer state, epoch, random
-- generator states and callbacks' states in one file (what BackupAndRestore writes).
saving.save_training_state = checked("save_training_state", { "model", "path", "table" }, training_state.save_training_state)
--- restore_training_state(model, path, callbacks, generators) -> {epoch=}: puts back what save_training_state
-- wrote.
saving.restore_training_state = checked("restore_training_state", { "model", "path", "list", "list" },
  training_state.restore_training_state)

--- load_safetensors(path): {name = tensor}, the metadata table and {name = dtype}. Every tensor comes back float32:
-- F16, BF16 exactly, F64 rounded to nearest; integers and BOOL only when float32 holds every value exactly.
saving.load_safetensors = checked("load_safetensors", { "path" }, safetensors.load_safetensors)
--- save_safetensors(path, {name = tensor}, metadata, {dtype = "F32"}): tensors in name order, stored as dtype F32
-- (default), F16 or BF16 (rounded to nearest even; beyond the largest finite value, inf).
saving.save_safetensors = checked("save_safetensors", { "path", "table", "metadata", "options" }, safetensors.save_safetensors)
-- The format's parts, for tools and tests that read or write files piece by piece.
--- read_header(path, who): {path=, file=, metadata=, tensors={name={shape=, offsets=}}, names={...}, data_start=}
saving.read_header = checked("read_header", { "path" }, function(path, who) return safetensors.read_header(path, who or "read_header") end)
--- read_tensor(info, name): the tensor stored under name (float32, converted from its dtype).
saving.read_tensor = checked("read_tensor", { "info", "string" }, safetensors.read_tensor)
--- close(info): closes the file a read_header result holds (idempotent).
saving.close = checked("close", { "info" }, safetensors.close)
--- atomic_write(path, who, fn): runs fn(file) on a temporary file beside path, then syncs and renames it over path;
-- on an error the temporary is removed and path is left as it was.
saving.atomic_write = checked("atomic_write", { "path", "string", "fn" }, safetensors.atomic_write)
--- write_safetensors(path, who, entries, metadata): writes {{name=, tensor=, dtype="F32"|"F16"|"BF16"}} and a
-- {string = string} metadata table as a safetensors file (atomically).
saving.write_safetensors = checked("write_safetensors", { "path", "string", "table", "metadata" }, safetensors.write_safetensors)
saving.test_hooks = safetensors.test_hooks

return saving
