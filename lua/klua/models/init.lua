-- models/init.lua — klua.models: Model, Sequential, Functional, Input and
-- load_model. klua.Model, klua.Sequential and klua.Input come from here.
local Model = require("klua.models.model")
local F = require("klua.models.functional")
local keras_tensor = require("klua.keras_tensor")
local Sequential = require("klua.models.sequential")
local saving = require("klua.saving")
local core = require("klua.core")

local models = {
  Model = Model,
  Functional = F.Functional,
  Sequential = Sequential,
  Input = F.Input,
  InputLayer = F.InputLayer,
  KerasTensor = keras_tensor.KerasTensor,
  is_keras_tensor = keras_tensor.is_keras_tensor,
}

for _, cls in ipairs { Model, F.Functional, Sequential, F.InputLayer, keras_tensor.TensorOp } do
  saving.register_serializable(cls, { package = "klua" })
end

--- load_model(path, {compile=true, custom_objects={Name = Class}}): a model saved with model:save.
function models.load_model(path, kw)
  if type(path) ~= "string" or path == "" then core.raise("load_model: filepath must be a non-empty string, got " .. core.describe(path)) end
  return saving.load_model(path, kw ~= nil and core.options(kw, "load_model") or nil)
end
--- model_from_json(text, {custom_objects=}): a model (no weights) from model:to_json().
function models.model_from_json(text, kw)
  if type(text) ~= "string" then core.raise("model_from_json: expected the JSON text of model:to_json(), got " .. core.describe(text)) end
  return saving.model_from_json(text, kw ~= nil and core.options(kw, "model_from_json") or nil)
end
--- clone_model(model): a new model of the same architecture, with fresh weights (from its config).
models.clone_model = function(model)
  if type(model) ~= "table" or rawget(model, "_klua_layer") ~= true then
    core.raise("clone_model: expected a model (or a layer), got " .. core.describe(model))
  end
  return core.named("clone_model", saving.deserialize_layer, saving.serialize_layer(model))
end

return models
