-- models/sequential.lua — klua.Sequential: a plain stack of single-input,
-- single-output layers.
--
--   local model = klua.Sequential{
--     klua.layers.Dense(64, {activation = "relu", input_shape = {100}}),
--     klua.layers.Dense(10),
--   }
--   model:add(klua.layers.Dense(1)); model:pop()
--
-- When the input shape is known (a klua.Input first, input_shape= on the
-- first layer, or the first call on data), each layer is built as it is added
-- by calling it on a symbolic tensor, so shape errors show at add() and the
-- summary has output shapes. call() itself just runs the layers in order.
local core = require("klua.core")
local Layer = require("klua.layer")
local Model = require("klua.models.model")
local InputLayer = require("klua.models.functional").InputLayer
local keras_tensor = require("klua.keras_tensor")
local json = require("klua.json")
local saving = require("klua.saving")

local is_kt = keras_tensor.is_keras_tensor

local Sequential = Model:extend("Sequential")

local function is_list_of_layers(t)
  return type(t) == "table" and getmetatable(t) == nil and (t[1] ~= nil or t.layers == nil and next(t) == nil)
end

--- Sequential{layers={}, name=nil, trainable=true} (also Sequential{layer, layer, ...} and Sequential({layers}, {name=})):
-- a plain stack of single-input, single-output layers; add(layer) and pop() change it.
function Sequential:__init(layers, kw)
  if type(layers) == "table" and getmetatable(layers) == nil and layers[1] == nil and kw == nil then
    kw, layers = layers, layers.layers
  end
  kw = kw or {}
  if layers ~= nil and not is_list_of_layers(layers) then
    core.raise("Sequential: expected a list of layers, got " .. (Layer.is_layer(layers) and "one layer (wrap it in {})" or type(layers)))
  end
  local name = kw.name or (type(layers) == "table" and layers.name) or Layer.unique_name("sequential")
  Model._init_base(self, { name = name, trainable = kw.trainable })
  self._layers = {}          -- tracked: the weights are collected through it, in order
  rawset(self, "_outs", {})  -- the symbolic output of each layer, once the input shape is known
  for _, l in ipairs(layers or {}) do self:add(l) end
end

local function call_symbolic(self, layer, x)
  local res = { layer(x) }
  if #res ~= 1 or not is_kt(res[1]) then
    self:raise("layer '%s' returned %d outputs; a Sequential model needs layers with one output (use the Functional API)",
      rawget(layer, "name"), #res)
  end
  return res[1]
end

-- Builds layers from position `from` on, each on the previous one's output.
local function propagate(self, from)
  local layers, outs = rawget(self, "_layers"), rawget(self, "_outs")
  local x = from == 1 and rawget(self, "_input") or outs[from - 1]
  for i = from, #layers do
    x = call_symbolic(self, layers[i], x)
    outs[i] = x
  end
  for i = #layers + 1, #outs do outs[i] = nil end
  rawset(self, "inputs", rawget(self, "_input"))
  rawset(self, "outputs", outs[#layers] or rawget(self, "_input"))
  rawset(self, "built", true)
end

local function set_input(self, kt)
  rawset(self, "_input", kt)
end

--- add(layer): appends a layer (or, first, a klua.Input).
function Sequential:add(layer)
  local layers = rawget(self, "_layers")
  if is_kt(layer) or Layer.is_layer(layer) and getmetatable(layer) == InputLayer then
    local kt = is_kt(layer) and layer or layer.output
    if not kt._node.is_input then
      self:raise("add: a symbolic tensor can only be added when it comes from klua.Input")
    end
    if #layers > 0 or rawget(self, "_input") then
      self:raise("add: an Input can only come first")
    end
    set_input(self, kt)
    propagate(self, 1)
    return self
  end
  if not Layer.is_layer(layer) then
    self:raise("add: expected a layer, got %s", core.is_tensor(layer) and "a tensor" or type(layer))
  end
  for _, l in ipairs(layers) do
    if l == layer then self:raise("add: layer '%s' is already in the model", rawget(layer, "name")) end
    if rawget(l, "name") == rawget(layer, "name") then
      self:raise("add: the name '%s' is already used by a layer of the model; layer names must be unique", rawget(layer, "name"))
    end
  end
  if #layers == 0 and not rawget(self, "_input") and rawget(layer, "batch_input_shape") then
    set_input(self, InputLayer{ batch_shape = rawget(layer, "batch_input_shape") }.output)
  end
  layers[#layers + 1] = layer
  if rawget(self, "_input") then
    local ok, err = pcall(propagate, self, #layers)
    if not ok then
      layers[#layers] = nil
      error(err, 0)
    end
  else
    rawset(self, "built", false)
  end
  return self
end

--- pop(): removes and returns the last layer.
function Sequential:pop()
  local layers = rawget(self, "_layers")
  if #layers == 0 then self:raise("pop: the model has no layers") end
  local l = table.remove(layers)
  local outs = rawget(self, "_outs")
  outs[#layers + 1] = nil
  if rawget(self, "_input") then
    rawset(self, "outputs", outs[#layers] or rawget(self, "_input"))
  end
  return l
end

-- Called on the first call (concrete shape) or by hand (model:build({-1, 784})).
function Sequential:build(input_shape)
  if rawget(self, "_input") then return end
  if type(input_shape) ~= "table" or type(input_shape[1]) ~= "number" then
    self:raise("build: expected one input shape like {-1, 784} (a Sequential model has one input)")
  end
  local bs = keras_tensor.copy_shape(input_shape)
  bs[1] = -1
  set_input(self, InputLayer{ batch_shape = bs }.output)
  propagate(self, 1)
end

function Sequential:call(x, kw)
  local input = rawget(self, "_input")
  if input and core.is_tensor(x) then
    local s, want = x:shape(), input.shape
    local ok = #s == #want
    if ok then for d = 2, #want do if want[d] >= 0 and want[d] ~= s[d] then ok = false end end end
    if not ok then
      self:raise("expected an input of shape %s, got %s", core.shape_str(want), core.shape_str(s))
    end
  end
  local ckw = { training = kw and kw.training }
  for _, l in ipairs(rawget(self, "_layers")) do
    x = l(x, { training = ckw.training })
  end
  return x
end

function Sequential:compute_output_shape(input_shape)
  local outs = rawget(self, "_outs")
  local layers = rawget(self, "_layers")
  if #layers > 0 and outs[#layers] then return outs[#layers].shape() end
  return Layer.compute_output_shape(self, input_shape)
end

function Sequential:get_config()
  local layers = {}
  for i, l in ipairs(rawget(self, "_layers")) do layers[i] = saving.serialize_layer(l) end
  local input = rawget(self, "_input")
  return {
    name = rawget(self, "name"), trainable = rawget(self, "_trainable"),
    layers = json.array(layers),
    build_input_shape = input and input.shape() or nil,
  }
end

function Sequential.from_config(a, b)
  local config = b or a
  if type(config) ~= "table" or type(config.layers) ~= "table" then
    core.raise("Sequential.from_config: expected a config with a list of layers")
  end
  local model = Sequential({}, { name = config.name, trainable = config.trainable })
  if config.build_input_shape then
    set_input(model, InputLayer{ batch_shape = config.build_input_shape }.output)
  end
  for _, lc in ipairs(config.layers) do model:add(saving.deserialize_layer(lc)) end
  return model
end

return Sequential
