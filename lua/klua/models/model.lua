-- models/model.lua — klua.Model: a Layer with training (compile, fit,
-- evaluate, predict: klua.trainers, installed at the end of this file), a
-- summary (models/summary.lua) and saving (klua.saving) built in.
--
-- Two of Keras's three ways to build a model start here:
--   * subclassing: local VAE = klua.Model:extend("VAE") with sublayers made
--     in __init and a call(self, inputs, kw) method;
--   * the Functional form: klua.Model{inputs = inputs, outputs = outputs,
--     name = ...} (or klua.Model(inputs, outputs)) returns a Functional model
--     (models/functional.lua).
-- The third, klua.Sequential, is models/sequential.lua.
-- Functional and Sequential build on this file; neither is required here.
local core = require("klua.core")
local Layer = require("klua.layer")
local tensor = require("klua.tensor")
local json = require("klua.json")
local saving = require("klua.saving")
local no_grad = require("klua.no_grad")
local keras_tensor = require("klua.keras_tensor")
local summary = require("klua.models.summary")
local trainer = require("klua.trainers.trainer")

local unpack = unpack or table.unpack

local Model = Layer:extend("Model")

local function pack(...) return { n = select("#", ...), ... } end

--- quietly(layers, fn, ...): fn(...) with tape recording paused and the
-- layers' losses as they were before (a probe call leaves no losses behind).
-- klua.random is not rewound: weights created meanwhile draw from it as usual.
function Model.quietly(layers, fn, ...)
  local saved = {}
  for _, l in ipairs(layers) do saved[l] = rawget(l, "_losses") end
  local res = pack(pcall(no_grad, fn, ...))
  for l, losses in pairs(saved) do rawset(l, "_losses", losses) end
  Layer._losses_touched()
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, res.n)
end

--------------------------------------------------------------------------------
-- Properties a Model adds to a Layer's (read on access), declared below.

local getters = {}

function getters.layers(self)
  local list = rawget(self, "_layers")
  if list then
    local out = {}
    for i, l in ipairs(list) do out[i] = l end
    return out
  end
  return self:_sublayers()
end

function getters.metrics(self)
  local c = rawget(self, "_compiled")
  if not c then return {} end
  local out = {}
  for _, m in ipairs(c:all_metrics()) do out[#out + 1] = m end
  return out
end

function getters.metrics_names(self)
  local c = rawget(self, "_compiled")
  if not c then return {} end
  return c:log_names()
end

local function kt_shape(kt) return kt and kt.shape and kt.shape() end

function getters.input_shape(self)
  local ins = rawget(self, "inputs")
  if ins == nil then return nil end
  if ins.shape then return kt_shape(ins) end
  local out = {}
  for k, v in pairs(ins) do out[k] = kt_shape(v) end
  return out
end

function getters.output_shape(self)
  local outs = rawget(self, "outputs")
  if outs == nil then return nil end
  if outs.shape then return kt_shape(outs) end
  local out = {}
  for k, v in pairs(outs) do out[k] = kt_shape(v) end
  return out
end

for name, getter in pairs(getters) do Layer.property(Model, name, getter) end

-- A model's first call is marked, so that build() knows the call builds the
-- sublayers itself (an explicit model:build(shape) runs one call on zeros).
local layer_call = Layer.__call
function Model.__call(self, ...)
  if rawget(self, "built") then return layer_call(self, ...) end
  rawset(self, "_first_call", true)
  local res = pack(pcall(layer_call, self, ...))
  rawset(self, "_first_call", nil)
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, res.n)
end

--------------------------------------------------------------------------------
-- Construction

-- The Layer part and a model's own fields (rawset: not tracked as weights).
function Model._init_base(self, kw)
  Layer.__init(self, kw)
  rawset(self, "stop_training", false)
end

-- The Functional class: models/functional.lua builds on this file and
-- registers it when it loads. Symbolic tensors only come from there, so it
-- is always set by the time a model is made from them.
local Functional

function Model._register_functional(cls) Functional = cls end

local has_symbolic = keras_tensor.has_symbolic

--- Model{inputs, outputs, name=nil, trainable=true} (also Model(inputs, outputs, {name=})): a Functional model from
-- symbolic inputs to outputs; subclasses (Model:extend("Name")) call Model.__init(self, {name=}) and define call.
function Model:__init(a, b, c)
  local inputs, outputs, kw
  if type(a) == "table" and getmetatable(a) == nil and a.inputs ~= nil and a.outputs ~= nil then
    inputs, outputs, kw = a.inputs, a.outputs, a
  elseif has_symbolic(a) and has_symbolic(b) then
    inputs, outputs, kw = a, b, c or {}
  end
  if inputs ~= nil then
    if not Functional then core.raise("Model: inputs and outputs must be symbolic tensors from klua.Input") end
    if getmetatable(self) == Model then setmetatable(self, Functional) end
    return Functional._init_graph(self, inputs, outputs, kw)
  end
  if a ~= nil and (type(a) ~= "table" or core.class_name_of(a)) then
    core.raise("Model: expected {inputs=, outputs=, name=} or, in a subclass, {name=, trainable=}; got " .. core.describe(a))
  end
  Model._init_base(self, a)
end

-- Plain values only: what a saved config can hold.
local function plain(v, depth)
  local tv = type(v)
  if tv == "number" or tv == "string" or tv == "boolean" then return true end
  if tv ~= "table" or getmetatable(v) ~= nil or depth > 8 then return false end
  for k, x in pairs(v) do
    if (type(k) ~= "string" and type(k) ~= "number") or not plain(x, depth + 1) then return false end
  end
  return true
end

-- Subclasses remember their constructor arguments when those are plain
-- values, so that a saved subclassed model can be made again without a
-- get_config of its own (as Keras 3 does for basic-typed arguments).
local layer_extend = Model.extend
function Model.extend(cls, name)
  local sub = layer_extend(cls, name)
  local cmt = getmetatable(sub)
  local construct = cmt.__call
  cmt.__call = function(c, ...)
    local obj = construct(c, ...)
    if c.get_config == Model.get_config and rawget(obj, "_init_args") == nil then
      local args = pack(...)
      local ok = true
      for i = 1, args.n do
        if args[i] ~= nil and not plain(args[i], 0) then ok = false end
      end
      if ok then rawset(obj, "_init_args", args) else rawset(obj, "_init_args_unsaved", true) end
    end
    return obj
  end
  return sub
end

-- Both spellings (Sub.from_config(c), Sub:from_config(c)) come from klua.class.
function Model.from_config(cls, config) return Model._from_config(cls, config) end

function Model._from_config(cls, config)
  if type(config) ~= "table" then core.raise(rawget(cls, "__name") .. ".from_config: expected a config table") end
  local obj
  local args = config.init_args
  if type(args) == "table" then
    local n = #args
    local list = {}
    for i = 1, n do if args[i] ~= json.null then list[i] = args[i] end end
    obj = cls(unpack(list, 1, n))
  else
    obj = cls(config)
  end
  if type(config.name) == "string" then rawset(obj, "name", config.name) end
  return obj
end

-- The Layer keys, plus the constructor arguments when they were plain values.
function Model:get_config()
  local config = Layer.get_config(self)
  if rawget(self, "_init_args_unsaved") then
    self:raise("get_config: the constructor was given values that cannot be saved (layers, functions, tensors); "
      .. "define get_config() (and from_config) in the class to save it")
  end
  local args = rawget(self, "_init_args")
  if args then
    local list = {}
    for i = 1, args.n do
      if args[i] == nil then list[i] = json.null else list[i] = args[i] end
    end
    config.init_args = json.array(list)
  end
  return config
end

--------------------------------------------------------------------------------
-- Building

local function zeros_like_shape(s)
  if type(s) == "table" and type(s[1]) == "table" then
    local out = {}
    for i, t in ipairs(s) do out[i] = zeros_like_shape(t) end
    return out
  end
  if type(s) == "table" and getmetatable(s) == nil and s[1] == nil and next(s) ~= nil then
    local out = {}
    for k, t in pairs(s) do out[k] = zeros_like_shape(t) end
    return out
  end
  local dims = {}
  for i, d in ipairs(s) do dims[i] = (d < 0 or i == 1) and 1 or d end
  return tensor.zeros(dims)
end
Model._zeros_like_shape = zeros_like_shape

--- build(input_shape): creates the weights of a subclassed model by calling
-- it once on zeros of that shape (batch 1), in inference mode, leaving no
-- losses behind. Sequential and Functional models
-- build from their layers instead.
function Model:build(...)
  if rawget(self, "_first_call") or rawget(self, "_graph") then return end
  local shapes = { ... }
  if shapes[1] == nil then self:raise("build: expected an input shape, e.g. model:build({-1, 784})") end
  local args = {}
  for i, s in ipairs(shapes) do args[i] = zeros_like_shape(s) end
  args[#args + 1] = { training = false }
  rawset(self, "built", true)
  local ok, err = pcall(Model.quietly, self:_flatten_layers(), function() return self(unpack(args)) end)
  if not ok then
    rawset(self, "built", false)
    error(err, 0)
  end
end

--- _build_on(x): creates the weights by one inference call on a real batch,
-- recording nothing and leaving no losses behind (fit builds an unbuilt
-- model from its first batch, before the callbacks start).
function Model:_build_on(x)
  Model.quietly(self:_flatten_layers(), function() self(x, { training = false }) end)
end

function Model:call(...)
  if rawget(self, "_graph") then return Functional.call(self, ...) end
  self:raise("call() is not implemented; a Model subclass defines call(self, inputs, kw)")
end

--------------------------------------------------------------------------------
-- Layers, summary, saving

--- Model:get_layer(name_or_position): a layer by name, or by 1-based position (also get_layer{name=, index=}).
function Model:get_layer(name, index)
  if type(name) == "table" then name, index = name.name, name.index end
  if type(name) == "number" then name, index = nil, name end
  local layers = self.layers
  if index ~= nil then
    local l = layers[index]
    if not l then self:raise("get_layer: position %s is out of range (the model has %d layers)", tostring(index), #layers) end
    return l
  end
  if type(name) ~= "string" then self:raise("get_layer: expected a layer name or a position") end
  for _, l in ipairs(layers) do
    if rawget(l, "name") == name then return l end
  end
  local names = {}
  for i, l in ipairs(layers) do names[i] = rawget(l, "name") end
  self:raise("get_layer: no layer named '%s' (layers: %s)", name, table.concat(names, ", "))
end

--- summary{line_length=, positions=, print_fn=, show_trainable=}: the Keras table.
function Model:summary(kw)
  return summary.print_summary(self, core.options(kw, "summary"))
end

--- save(path, {include_optimizer=true}): config, weights and optimizer state in one file.
-- The file arguments of save / save_weights / load_weights, checked here so
-- that the error names the method and what it got.
local function file_args(who, path, kw)
  if type(path) ~= "string" or path == "" then
    core.raise(("%s: filepath must be a non-empty string, got %s"):format(who, core.describe(path)))
  end
  return path, kw ~= nil and core.options(kw, who) or nil
end
function Model:save(path, kw) return saving.save_model(self, file_args("save", path, kw)) end
--- save_weights(path): the weights in the safetensors layout.
function Model:save_weights(path, kw) return saving.save_weights(self, file_args("save_weights", path, kw)) end
--- load_weights(path, {skip_mismatch=false}): by name, every shape checked.
function Model:load_weights(path, kw) return saving.load_weights(self, file_args("load_weights", path, kw)) end

--- to_json(): the model's architecture as JSON text.
function Model:to_json()
  return json.encode(saving.serialize_layer(self))
end

trainer.install(Model)

return Model
