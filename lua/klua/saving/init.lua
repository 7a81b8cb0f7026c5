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

local saving = {}

--- register_serializable(obj, {package="Custom", name=nil}): registers a class or function under "name" and
-- "package>name" so that load_model and every get find it (also register_keras_serializable); returns obj.
-- register_serializable(Class or function [, {package=, name=}]) -> it:
-- findable by "name" and "package>name" (package "Custom"), as Keras's
-- register_keras_serializable.
function saving.register_serializable(obj, opts)
  local ok, res = pcall(registry.register, obj, opts)
  if not ok then require("klua.core").raise(res) end
  return res
end
saving.register_keras_serializable = saving.register_serializable
saving.get_registered = serialization.get_registered
saving.get_registered_object = serialization.get_registered
--- get_registered_name(obj): "package>name" when registered, else the class name.
function saving.get_registered_name(obj)
  return registry.registered_name(obj) or registry.name_of(obj)
end

saving.serialize_layer = serialization.serialize_layer
saving.deserialize_layer = serialization.deserialize_layer

saving.weight_entries = weights.weight_entries
saving.save_weights = weights.save_weights
saving.load_weights = weights.load_weights
saving.save_model = model_file.save_model
saving.load_model = model_file.load_model
saving.model_from_json = model_file.model_from_json
saving.save_training_state = training_state.save_training_state
saving.restore_training_state = training_state.restore_training_state

saving.load_safetensors = safetensors.load_safetensors
saving.save_safetensors = safetensors.save_safetensors
saving.read_header = safetensors.read_header
saving.read_tensor = safetensors.read_tensor
saving.close = safetensors.close
saving.atomic_write = safetensors.atomic_write
saving.write_safetensors = safetensors.write_safetensors
saving.test_hooks = safetensors.test_hooks

return saving
