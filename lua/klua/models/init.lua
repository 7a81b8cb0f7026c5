-- models/init.lua — klua.models: Model, Sequential, Functional, Input and
-- load_model. klua.Model, klua.Sequential and klua.Input come from here.
local Model = require("klua.models.model")
local F = require("klua.models.functional")
local keras_tensor = require("klua.keras_tensor")
local Sequential = require("klua.models.sequential")
local saving = require("klua.saving")

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
function models.load_model(path, kw) return saving.load_model(path, kw) end
--- model_from_json(text, {custom_objects=}): a model (no weights) from model:to_json().
function models.model_from_json(text, kw) return saving.model_from_json(text, kw) end
models.clone_model = function(model) return saving.deserialize_layer(saving.serialize_layer(model)) end

return models
