-- layer.lua — klua.Layer, the base class of every layer (and of klua.Model).
-- It follows the Keras lifecycle: __init stores the configuration,
-- build(input_shape) creates the weights once, on the first call, and
-- call(inputs, kw) computes. The base class tracks weights and sublayers in
-- assignment order, collects losses, passes `training` and masks down, names
-- layers and their errors, and round-trips configs. Training loops, summaries
-- and saving are not here (klua.Model, klua.saving).
--
-- Conventions:
--   * A shape is a Lua list of sizes; an unknown size (the batch in a symbolic
--     shape) is -1 (Layer.UNKNOWN). build() receives the concrete shape of the
--     first call's input, batch included.
--   * call(self, inputs, kw): kw.training is a boolean (given by the caller,
--     else inherited from the enclosing layer call, else false); kw.mask is the
--     mask of the inputs (a float tensor of 1 = keep, 0 = skip) or nil; any
--     other key the caller passed is kept. Several positional tensors are passed
--     on as call(self, a, b, kw) and build(self, shape_a, shape_b).
--   * Constructors take a config table: Layer.__init(self, kw) reads name,
--     dtype, trainable, input_shape, batch_size, input_dim, activity_regularizer
--     and ignores other keys, so Class.from_config(config) is Class(config).
local core = require("klua.core")
local class = require("klua.class")
local json = require("klua.json")
local tensor = require("klua.tensor")
local variable = require("klua.variable")
local no_grad = require("klua.no_grad")
local initializers = require("klua.initializers")
local regularizers = require("klua.regularizers")
local constraints = require("klua.constraints")

local Layer = class("Layer")

Layer.UNKNOWN = -1          -- an unknown dimension, e.g. the batch
Layer.supports_masking = false
-- A layer is called on tensors (or lists and named tables of them); a class
-- that takes other values (TextVectorization: strings) sets this and checks them.
Layer.accepts_any_input = false
-- Keras's input_spec, light: nil (any inputs), or a table declaring that the
-- layer takes one tensor, with optional rank bounds {ndim=, min_ndim=,
-- max_ndim=, layout= (named in the message: "(batch, timesteps, features)")};
-- layer(x) checks it before build and call.
Layer.input_spec = nil
-- function(layer, name, shape) -> value or nil: set only while klua.saving
-- builds a model from a file (see add_weight).
Layer.weight_source = nil

local unpack = unpack or table.unpack

-- The mask attached to a tensor by the layer that produced it (Keras's
-- `_keras_mask`). Weak keys: a mask lives as long as its tensor.
local masks = setmetatable({}, { __mode = "k" })

-- The innermost layer call in progress: { training = bool } or nil at top level.
local context = nil

local is_tensor = core.is_tensor

local is_variable = variable.is_variable

--- Layer.is_layer(x): true when x is a layer (or model) instance.
local function is_layer(x)
  return type(x) == "table" and rawget(x, "_klua_layer") == true
end
Layer.is_layer = is_layer

-- The class an instance belongs to, and its name.
local function class_of(obj)
  return getmetatable(obj)
end

local function class_name(cls)
  return type(cls) == "table" and rawget(cls, "__name") or "Layer"
end

--- Layer.class_name(layer_or_class): the class's name, "Dense" for a Dense layer.
function Layer.class_name(self)
  return class_name(is_layer(self) and class_of(self) or self)
end

--- Layer.snake_case(name): Keras's to_snake_case, the base of default layer names ("Conv2D" -> "conv2d").
-- Keras's to_snake_case: "MLPBlock" -> "mlp_block", "Conv2D" -> "conv2d".
local function snake_case(name)
  if type(name) ~= "string" then core.raise("snake_case: expected a string, got " .. core.describe(name)) end
  local s = name:gsub("(.)(%u%l+)", "%1_%2")
  s = s:gsub("(%l)(%u)", "%1_%2")
  return s:lower()
end
Layer.snake_case = snake_case

-- Unique names per prefix: dense, dense_1, dense_2 ...
local uids = {}
--- Layer.unique_name(prefix): prefix, then prefix_1, prefix_2, ... on later calls (default layer names).
local function unique_name(prefix)
  if type(prefix) ~= "string" then core.raise("unique_name: prefix must be a string, got " .. core.describe(prefix)) end
  local n = uids[prefix]
  uids[prefix] = (n or 0) + 1
  if n == nil then return prefix end
  return prefix .. "_" .. n
end
Layer.unique_name = unique_name
--- Layer.reset_names(): restarts the default layer names (dense, dense_1, ...), as Keras's clear_session.
-- Forget the name counters (klua.backend.clear_session-like, for tests).
function Layer.reset_names()
  uids = {}
end

local shape_str = core.shape_str
Layer.shape_str = shape_str

--- Layer.args(first, kw, key): a constructor's arguments as (value of `key`, keyword table), whether it was
-- called as Cls(4, {...}) or Cls{key = 4, ...}.
-- Constructors accept Keras's positional first argument or one config table:
-- Dense(32, {activation = "relu"}) and Dense{units = 32, activation = "relu"}.
-- Returns the first argument's value and the keyword table.
function Layer.args(first, kw, key)
  if type(first) == "table" and kw == nil and getmetatable(first) == nil then
    local v = first[key]
    if v == nil then v = first[1] end
    return v, first
  end
  if kw ~= nil and (type(kw) ~= "table" or core.class_name_of(kw)) then
    core.raise(("Layer.args: the keyword arguments must be a table, got %s"):format(core.describe(kw)))
  end
  return first, kw or {}
end

--- Layer.check_positive_int(class_name, key, v): v, or a Keras-style error ("Dense: units must be a positive integer. Received: units=-3").
-- Keras-style argument check: "Dense: units must be a positive integer. Received: units=-3".
function Layer.check_positive_int(cls, key, v)
  if type(cls) ~= "string" or type(key) ~= "string" then
    core.raise(("check_positive_int(class_name, key, value): class_name and key must be strings, got %s and %s")
      :format(core.describe(cls), core.describe(key)))
  end
  if type(v) ~= "number" or v < 1 or v % 1 ~= 0 then
    core.raise(("%s: %s must be a positive integer. Received: %s=%s"):format(cls, key, key, core.received(v)))
  end
  return v
end

--------------------------------------------------------------------------------
-- Errors

local function prefix_of(self)
  return string.format("%s '%s': ", Layer.class_name(self), tostring(rawget(self, "name")))
end

--- Layer:raise(fmt, ...): raises "<Class> '<name>': <message>" (string.format) at the user's line.
-- Raise `<Class> '<name>': <message>` at the user's line.
function Layer:raise(fmt, ...)
  local msg = select("#", ...) > 0 and string.format(fmt, ...) or fmt
  core.raise(prefix_of(self) .. msg)
end

-- An error escaping call()/build(): name the layer unless the message names
-- it already; an inner layer's message keeps its own name after this one's
-- ("Bidirectional 'b': LSTM 'forward_lstm': ...").
local function annotate(self, err)
  if type(err) ~= "string" then return err end
  if err:find(prefix_of(self), 1, true) then return err end
  local pos, rest = err:match("^([^\n]-:%d+: )(.*)$")
  if pos then return pos .. prefix_of(self) .. rest end
  return prefix_of(self) .. err
end

--------------------------------------------------------------------------------
-- Tracking. Lua tables do not keep insertion order, so every instance keeps an
-- ordered registry `_tracked`: variables created by add_weight and the names of
-- fields first assigned through __newindex. Values are read live, so a field
-- that is reassigned keeps its place.

-- Visit a value held by a layer: variables, layers, and plain tables of them
-- (array part in order, then other keys sorted, for a stable order).
local function walk_value(v, on_var, on_layer, seen)
  if is_variable(v) then
    on_var(v)
  elseif is_layer(v) then
    on_layer(v)
  elseif type(v) == "table" and getmetatable(v) == nil and not seen[v] then
    seen[v] = true
    local n = #v
    for i = 1, n do walk_value(v[i], on_var, on_layer, seen) end
    local keys
    for k in pairs(v) do
      if not (type(k) == "number" and k >= 1 and k <= n and k % 1 == 0) then
        keys = keys or {}
        keys[#keys + 1] = k
      end
    end
    if keys then
      table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
      for _, k in ipairs(keys) do walk_value(v[k], on_var, on_layer, seen) end
    end
  end
end

-- Direct children: each tracked entry of `layer`, in order.
local function each_entry(layer, on_var, on_layer)
  local seen = {}
  for _, e in ipairs(rawget(layer, "_tracked")) do
    if type(e) == "string" then
      walk_value(rawget(layer, e), on_var, on_layer, seen)
    else
      on_var(e)
    end
  end
end

-- All variables reachable from `root`, deduplicated, in tracking order.
local function collect_variables(root)
  local out, seen_var, seen_layer = {}, {}, {}
  local visit
  local function on_var(v)
    if not seen_var[v] then
      seen_var[v] = true
      out[#out + 1] = v
    end
  end
  visit = function(layer)
    if seen_layer[layer] then return end
    seen_layer[layer] = true
    each_entry(layer, on_var, visit)
  end
  visit(root)
  return out
end

-- `root` and every layer below it (pre-order, deduplicated).
function Layer:_flatten_layers(include_self)
  local out, seen = {}, {}
  local function visit(layer)
    if seen[layer] then return end
    seen[layer] = true
    out[#out + 1] = layer
    each_entry(layer, function() end, visit)
  end
  visit(self)
  if include_self == false then table.remove(out, 1) end
  return out
end

-- Direct sublayers, in assignment order.
function Layer:_sublayers()
  local out, seen = {}, {}
  each_entry(self, function() end, function(l)
    if not seen[l] and l ~= self then
      seen[l] = true
      out[#out + 1] = l
    end
  end)
  return out
end

local function remember_variable(self, v, trainable)
  local own = rawget(self, "_own")
  for _, e in ipairs(own) do
    if e.var == v then return end
  end
  own[#own + 1] = { var = v, trainable = trainable }
end

local function set_trainable(self, value)
  value = value and true or false
  rawset(self, "_trainable", value)
  -- Variables created trainable follow their layer's flag (as in Keras 3), so
  -- a recording tape stops watching frozen weights.
  for _, e in ipairs(rawget(self, "_own")) do
    if e.trainable then e.var.trainable = value end
  end
  for _, l in ipairs(self:_sublayers()) do set_trainable(l, value) end
end

-- Read-only properties computed on access.
local getters = {}

function getters.trainable(self)
  return rawget(self, "_trainable")
end

function getters.weights(self)
  return collect_variables(self)
end
getters.variables = getters.weights

function getters.trainable_weights(self)
  if not rawget(self, "_trainable") then return {} end
  local out = {}
  for _, v in ipairs(collect_variables(self)) do
    if v.trainable then out[#out + 1] = v end
  end
  return out
end
getters.trainable_variables = getters.trainable_weights

function getters.non_trainable_weights(self)
  local all = collect_variables(self)
  if not rawget(self, "_trainable") then return all end
  local out = {}
  for _, v in ipairs(all) do
    if not v.trainable then out[#out + 1] = v end
  end
  return out
end
getters.non_trainable_variables = getters.non_trainable_weights

-- The losses of the last top-level call (add_loss in this layer and the layers
-- below it), then the regularization losses of the trainable weights, computed
-- now (so reading `losses` under a tape records them).
function getters.losses(self)
  local out = {}
  for _, l in ipairs(self:_flatten_layers()) do
    for _, loss in ipairs(rawget(l, "_losses")) do out[#out + 1] = loss end
  end
  for _, v in ipairs(getters.trainable_weights(self)) do
    local reg = variable.regularizer_of(v)
    if reg then out[#out + 1] = reg(v) end
  end
  return out
end

local readonly = {
  weights = true, variables = true, trainable_weights = true, trainable_variables = true,
  non_trainable_weights = true, non_trainable_variables = true, losses = true,
}

local function newindex(self, k, v)
  if k == "trainable" then
    set_trainable(self, v)
    return
  end
  if readonly[k] then
    Layer.raise(self, "'%s' is read-only", tostring(k))
  end
  if v ~= nil and type(k) == "string" and (type(v) == "table" or type(v) == "cdata") then
    local tracked = rawget(self, "_tracked")
    if tracked then
      tracked[#tracked + 1] = k
      if is_variable(v) then remember_variable(self, v, v.trainable) end
    end
  end
  rawset(self, k, v)
end

-- build() marks the layer built when it returns, so calling layer:build(shape)
-- by hand and then layer(x) builds only once (Keras's build wrapper). Every
-- `build` assigned to a layer class is wrapped once, when it is defined.
-- What a layer takes as an input: tensors (numbers and nested tables of
-- numbers are converted before), or lists and named tables of them. Returns
-- nil, or a description of what is wrong.
local function bad_input(x, depth)
  if is_tensor(x) then return nil end
  if type(x) == "table" and not core.class_name_of(x) and not is_layer(x) then
    if next(x) == nil then return "an empty table" end
    if depth >= 4 then return "a table nested too deeply" end
    for _, v in pairs(x) do
      local why = bad_input(v, depth + 1)
      if why then return "a table holding " .. why end
    end
    return nil
  end
  return core.describe(x)
end

-- A shape as build() and compute_output_shape() take it: a list of sizes (-1
-- for an unknown size) or, for several inputs, a list or named table of such
-- lists. Objects (a Layer, a tensor) are not shapes.
local function is_shape(s, depth)
  if type(s) ~= "table" or core.class_name_of(s) or depth > 4 then return false end
  local count, numbers = 0, 0
  for _, d in pairs(s) do
    count = count + 1
    if type(d) == "table" then
      if not is_shape(d, depth + 1) then return false end
    elseif type(d) == "number" and d % 1 == 0 and d >= -1 then
      numbers = numbers + 1
    else
      return false
    end
  end
  -- sizes: a list of numbers only; otherwise {} (a scalar) or a list / named table of shapes
  return numbers == 0 or (numbers == count and count == #s)
end
--- Layer.is_shape(s): true for a shape as build() takes it: a list of sizes (-1 unknown), or a list or named
-- table of such lists for several inputs.
function Layer.is_shape(s) return is_shape(s, 0) end

-- check_shapes(self, what, ...): the shape arguments of build / compute_output_shape.
local function check_shapes(self, what, ...)
  for i = 1, math.max(select("#", ...), 1) do
    local s = select(i, ...)
    if (s ~= nil or (i == 1 and not self.accepts_any_input)) and not is_shape(s, 0) then
      Layer.raise(self, "%s: %s must be a list of sizes like {2, 3} (-1 for an unknown size), got %s", what,
        i == 1 and "input_shape" or ("input shape " .. i), core.describe(s))
    end
    if self.input_spec and s ~= nil and (i > 1 or next(s) ~= nil and type(select(2, next(s))) == "table") then
      Layer.raise(self, "%s: the layer takes one input, so one shape like {2, 3}, got %s", what,
        i > 1 and (i .. " shapes") or "a list of shapes")
    end
  end
end

local function wrap_build(f)
  return function(self, ...)
    local r
    if is_layer(self) then
      check_shapes(self, "build", ...)
      r = core.named(prefix_of(self):sub(1, -3), f, self, ...)
    else
      r = f(self, ...)
    end
    if is_layer(self) then
      rawset(self, "built", true)
      if rawget(self, "_build_shapes") == nil then rawset(self, "_build_shapes", { ... }) end
    end
    return r
  end
end

--------------------------------------------------------------------------------
-- Classes. Every layer class is its instances' metatable; when a subclass is
-- made (klua.class calls __init_subclass) it gets, once: the properties
-- (its parent's, copied, plus any it declares with Layer.property), an
-- __index that reads them, and a class table that wraps each build() defined
-- on it (from_config, in both spellings, comes from klua.class). __newindex, __call and
-- __tostring are inherited as metamethods.

local call_layer, layer_tostring

-- compute_output_shape(shape, ...) checks its shapes and names the layer in its errors.
local function wrap_output_shape(f)
  return function(self, ...)
    if not is_layer(self) then return f(self, ...) end
    check_shapes(self, "compute_output_shape", ...)
    return core.named(prefix_of(self):sub(1, -3), f, self, ...)
  end
end

-- compute_mask(inputs, mask) checks that inputs are tensors and names the layer in its errors.
local function wrap_compute_mask(f)
  return function(self, inputs, mask)
    if not is_layer(self) then return f(self, inputs, mask) end
    local why = inputs ~= nil and not self.accepts_any_input and bad_input(inputs, 0)   -- Keras: inputs may be None
    if why then Layer.raise(self, "compute_mask: inputs must be a tensor or a list of tensors, got %s", why) end
    if mask ~= nil then
      why = bad_input(mask, 0)
      if why then Layer.raise(self, "compute_mask: mask must be a tensor, a list of tensors or nil, got %s", why) end
    end
    return core.named(prefix_of(self):sub(1, -3), f, self, inputs, mask)
  end
end

-- Constructing a layer names its class in whatever fails inside __init (an
-- initializer or activation it looks up, a keyword of the wrong type): the
-- class's call, as klua.class makes it, with __init run under core.named
-- (__init itself stays as written, for help()).
local function construct(c, ...)
  local obj = setmetatable({}, c)
  local init = c.__init
  if init then core.named(class_name(c), init, obj, ...) end
  return obj
end

function Layer.__init_subclass(cls)
  getmetatable(cls).__call = construct
  local parent = rawget(cls, "super")
  local props = {}
  if parent then for k, g in pairs(rawget(parent, "_properties")) do props[k] = g end end
  rawset(cls, "_properties", props)
  rawset(cls, "__index", function(t, k)
    local g = props[k]
    if g then return g(t) end
    return cls[k]
  end)
  getmetatable(cls).__newindex = function(c, k, v)
    if k == "build" and type(v) == "function" then v = wrap_build(v) end
    if k == "compute_output_shape" and type(v) == "function" then v = wrap_output_shape(v) end
    if k == "compute_mask" and type(v) == "function" then v = wrap_compute_mask(v) end
    class.define(c, k, v)
  end
end

--- Layer.property(cls, name, getter): a read-only property computed on
-- access, for cls and the subclasses made after.
function Layer.property(cls, name, getter)
  rawget(cls, "_properties")[name] = getter
end

--------------------------------------------------------------------------------
-- Construction

local function shape_list(s, what, self)
  if type(s) == "number" then s = { s } end
  if type(s) ~= "table" then Layer.raise(self, "%s must be a list of sizes, got %s", what, type(s)) end
  local out = {}
  for i = 1, #s do
    local d = s[i]
    if type(d) ~= "number" or d % 1 ~= 0 then
      Layer.raise(self, "%s must hold integers, got %s at position %d", what, tostring(d), i)
    end
    out[i] = d
  end
  return out
end

--- Layer{name=nil, trainable=true, dtype="float32", input_shape=nil, batch_size=nil, input_dim=nil, activity_regularizer=nil}:
-- the base class of every layer and model: subclass it with Layer:extend("Name"), define build and call.
function Layer:__init(kw)
  kw = core.options(kw, Layer.class_name(self))
  -- Fields set before this call (a subclass that assigns first) are tracked
  -- too, in sorted order since their assignment order is lost.
  local early = {}
  for k, v in pairs(self) do
    if type(k) == "string" and (type(v) == "table" or type(v) == "cdata") then early[#early + 1] = k end
  end
  table.sort(early)
  rawset(self, "_klua_layer", true)
  rawset(self, "_tracked", early)
  rawset(self, "_own", {})
  rawset(self, "_losses", {})
  rawset(self, "_trainable", kw.trainable ~= false)
  rawset(self, "built", rawget(self, "built") or false)
  local cname = Layer.class_name(self)
  if kw.name ~= nil and (type(kw.name) ~= "string" or kw.name == "") then
    core.raise(string.format("%s: name must be a non-empty string, got %s", cname, core.describe(kw.name)))
  end
  rawset(self, "name", kw.name or unique_name(snake_case(cname)))
  local dtype = kw.dtype or "float32"
  if dtype ~= "float32" then
    Layer.raise(self, "dtype %s is not supported (klua computes in float32)", core.describe(dtype))
  end
  rawset(self, "dtype", dtype)
  if kw.batch_size ~= nil and (type(kw.batch_size) ~= "number" or kw.batch_size < 1 or kw.batch_size % 1 ~= 0) then
    Layer.raise(self, "batch_size must be a positive integer, got %s", core.describe(kw.batch_size))
  end
  -- Keras's input_shape / input_dim / batch_size: the shape a model builds
  -- this layer with, batch first (-1 when unknown).
  local ishape = kw.input_shape or (kw.input_dim and { kw.input_dim })
  if ishape then
    local s = shape_list(ishape, "input_shape", self)
    table.insert(s, 1, kw.batch_size or -1)
    rawset(self, "batch_input_shape", s)
  end
  if kw.activity_regularizer ~= nil then
    rawset(self, "activity_regularizer", regularizers.get(kw.activity_regularizer))
  end
end

--------------------------------------------------------------------------------
-- Lifecycle

--- Layer:build(input_shape): creates the weights (add_weight) for inputs of this shape, batch first; run once,
-- before the first call. A manual layer:build(shape) marks the layer built.
function Layer:build(input_shape) end

--- Layer:call(inputs, kw): the layer's computation; kw.training and kw.mask come from the caller.
-- Subclasses define it; calling the layer, layer(x, {training = true}), builds it first.
function Layer:call(inputs, kw)
  self:raise("call() is not implemented; subclasses define call(self, inputs, kw)")
end

--- Layer:add_weight{shape, initializer="glorot_uniform", name=nil, trainable=true, dtype="float32", regularizer=nil, constraint=nil}:
-- a new tracked weight (a klua.Variable) of the layer, initialised by name, object, function(shape) or tensor.
-- Add a weight (a klua.Variable owned by the C core).
--   shape, initializer ("glorot_uniform" by default, a name, an initializer
--   object, a function(shape) or a tensor), name, trainable (true),
--   dtype ("float32"), regularizer, constraint.
function Layer:add_weight(kw)
  kw = core.options(kw, prefix_of(self) .. "add_weight")
  if kw.name ~= nil and type(kw.name) ~= "string" then self:raise("add_weight: name must be a string, got %s", core.describe(kw.name)) end
  local shape = shape_list(kw.shape or kw[1] or {}, "add_weight: shape", self)
  for i, d in ipairs(shape) do
    if d < 0 then self:raise("add_weight: shape %s has an unknown size at position %d", shape_str(shape), i) end
  end
  local dtype = kw.dtype or "float32"
  if dtype ~= "float32" then self:raise("add_weight: dtype %s is not supported", tostring(dtype)) end
  local own = rawget(self, "_own")
  local name = kw.name or (#own == 0 and "variable" or ("variable_" .. #own))
  local init = kw.initializer
  if init == nil then init = "glorot_uniform" end
  -- While klua.saving loads a file, it checks each weight against the file's
  -- tensors before anything is allocated and gives a value that the file
  -- overwrites, so the initializer is skipped (saving/weights.lua).
  local value = Layer.weight_source and Layer.weight_source(self, name, shape)
  if value ~= nil then
    value = core.to_tensor(value)
  elseif is_tensor(init) then
    value = init
  else
    local ok, f = pcall(initializers.get, init)
    if not ok then self:raise("add_weight '%s': %s", name, tostring(f)) end
    value = core.named(prefix_of(self) .. "add_weight '" .. name .. "'", f, shape)
    value = core.to_tensor(value, prefix_of(self) .. "add_weight '" .. name .. "'", "the initializer's value")
  end
  local got = value:shape()
  if #got ~= #shape then
    self:raise("add_weight '%s': the initializer returned shape %s, expected %s", name, shape_str(got), shape_str(shape))
  end
  for i = 1, #shape do
    if got[i] ~= shape[i] then
      self:raise("add_weight '%s': the initializer returned shape %s, expected %s", name, shape_str(got), shape_str(shape))
    end
  end
  local trainable = kw.trainable ~= false
  local v = variable.new(value, {
    name = name, trainable = trainable and rawget(self, "_trainable"), path = rawget(self, "name") .. "/" .. name,
    regularizer = regularizers.get(kw.regularizer), constraint = constraints.get(kw.constraint),
  })
  local tracked = rawget(self, "_tracked")
  tracked[#tracked + 1] = v
  own[#own + 1] = { var = v, trainable = trainable }
  return v
end

-- Metadata of a weight (kept with the Variable: klua.variable).
Layer.constraint_of, Layer.regularizer_of, Layer.path_of = variable.constraint_of, variable.regularizer_of, variable.path_of

-- A loss to add to the training objective (inside call, usually).
-- Set once any layer has held a loss: until then there is nothing to reset
-- at the start of a top-level call, and the walk over the sublayers is skipped.
local losses_ever = false
function Layer._losses_touched() losses_ever = true end

--- Layer:add_loss(value): adds a scalar tensor to the losses of this call (layer.losses); fit adds them to the loss.
-- The list is replaced, never appended to in place: a probe call (a deferred
-- build tracing the layers, compute_output_shape, Model.quietly) that saves
-- the lists and puts them back afterwards leaves no losses behind.
function Layer:add_loss(value)
  losses_ever = true
  local losses = rawget(self, "_losses")
  local n = #losses
  local out = { unpack(losses, 1, n) }
  out[n + 1] = core.to_tensor(value, prefix_of(self) .. "add_loss", "value")
  rawset(self, "_losses", out)
end

local function clear_losses(self)
  if not losses_ever then return end
  for _, l in ipairs(self:_flatten_layers()) do rawset(l, "_losses", {}) end
end

--- Layer.get_mask(t): the mask a layer attached to tensor t (or a list of masks for a list of tensors), or nil.
-- Masks travel beside tensors.
function Layer.get_mask(t)
  if type(t) == "table" and not is_layer(t) then
    local out, any = {}, false
    for i = 1, #t do
      out[i] = masks[t[i]] or false
      any = any or out[i] ~= false
    end
    return any and out or nil
  end
  return t ~= nil and masks[t] or nil
end

--- Layer.set_mask(t, m): attaches mask m (a float tensor, 1 = keep) to tensor t (or masks to a list of tensors).
function Layer.set_mask(t, m)
  if is_tensor(t) then
    masks[t] = m
  elseif type(t) == "table" and type(m) == "table" then
    for i = 1, #t do
      if is_tensor(t[i]) then masks[t[i]] = m[i] or nil end
    end
  end
end

--- Layer:compute_mask(inputs, mask): the mask of the output: the input's when supports_masking, else nil.
-- The output mask. Layers that make masks (Embedding, Masking) or change them
-- override this; layers with supports_masking = true pass the mask through.
function Layer:compute_mask(inputs, mask)
  if self.supports_masking then return mask end
  return nil
end

-- Plain numbers and nested tables become tensors; lists of tensors stay lists.
local function convert_input(x)
  local tx = type(x)
  if tx == "number" then return core.to_tensor(x) end
  if tx == "table" and not is_layer(x) then
    local first = x[1]
    if type(first) == "number" or (type(first) == "table" and not is_layer(first) and getmetatable(first) == nil
        and (type(first[1]) == "number" or type(first[1]) == "table")) then
      return core.to_tensor(x)
    end
  end
  return x
end

local function shape_of(x)
  if is_tensor(x) then return x:shape() end
  if type(x) == "table" then
    local out = {}
    for i = 1, #x do out[i] = shape_of(x[i]) end
    return out
  end
  return nil
end

local function check_input_spec(self, spec, n, x)
  if n > 1 or not is_tensor(x) then
    local count = n
    if n == 1 then count = 0; for _ in pairs(x) do count = count + 1 end end
    Layer.raise(self, "expects 1 input tensor, but it received %d (%s)", count,
      n > 1 and "positional arguments" or "a table of tensors")
  end
  local nd = x.nd
  local want
  if spec.ndim and nd ~= spec.ndim then want = tostring(spec.ndim)
  elseif spec.min_ndim and nd < spec.min_ndim then want = ">= " .. spec.min_ndim
  elseif spec.max_ndim and nd > spec.max_ndim then want = "<= " .. spec.max_ndim end
  if want then
    Layer.raise(self, "expected an input of rank %s%s, got shape %s", want, spec.layout and (" " .. spec.layout) or "",
      shape_str(x:shape()))
  end
end

local function kw_like(x)
  return type(x) == "table" and not is_layer(x) and getmetatable(x) == nil and x[1] == nil
end

-- Optional hook for symbolic (functional API) inputs, set by klua.Model:
-- Layer.functional = { is_symbolic = function(x) ..., call = function(layer, args, kw) ... }
Layer.functional = nil

-- Build from the first call's input shapes, once.
function Layer:_maybe_build(n, args)
  if rawget(self, "built") then return end
  local shapes = {}
  for i = 1, n do shapes[i] = shape_of(args[i]) end
  self:build(unpack(shapes, 1, n))
  rawset(self, "built", true)
  rawset(self, "_build_shapes", shapes)
end

local function run(self, n, args, kw)
  self:_maybe_build(n, args)
  args[n + 1] = kw
  local res = { self:call(unpack(args, 1, n + 1)) }
  local out = res[1]
  local areg = rawget(self, "activity_regularizer")
  if areg and is_tensor(out) then
    local batch = out.nd > 0 and tonumber(out.dims[0]) or 1
    self:add_loss(areg(out) / batch)
  end
  if out ~= nil and (kw.mask ~= nil or self.compute_mask ~= Layer.compute_mask) then
    local m = self:compute_mask(args[1], kw.mask)
    if m ~= nil then Layer.set_mask(out, m) end
  end
  return res
end

-- layer(inputs, kw) / layer(a, b, kw)
call_layer = function(self, ...)
  local n = select("#", ...)
  local args = { ... }
  local kw = nil
  if n >= 2 and kw_like(args[n]) then
    kw = args[n]
    args[n] = nil
    n = n - 1
  end
  while n > 0 and args[n] == nil do n = n - 1 end
  if n == 0 then Layer.raise(self, "called without inputs") end
  local hook = Layer.functional
  if hook and hook.is_symbolic(args[1]) then return hook.call(self, args, kw or {}) end
  for i = 1, n do args[i] = convert_input(args[i]) end
  if not self.accepts_any_input then
    for i = 1, n do
      local why = (args[i] ~= nil or i == 1) and bad_input(args[i], 0)
      if why then
        Layer.raise(self, "input %d must be a tensor, a number, a nested table of numbers or a list of tensors, got %s", i, why)
      end
    end
  end
  local spec = self.input_spec
  if spec then check_input_spec(self, spec, n, args[1]) end
  local ckw = {}
  if kw then for k, v in pairs(kw) do ckw[k] = v end end
  local outer = context
  if ckw.training == nil then ckw.training = outer ~= nil and outer.training or false end
  ckw.training = ckw.training and true or false
  if ckw.mask == nil then ckw.mask = Layer.get_mask(args[1]) end
  if outer == nil then clear_losses(self) end
  context = { training = ckw.training }
  local ok, res = pcall(run, self, n, args, ckw)
  context = outer
  if not ok then error(annotate(self, res), 0) end
  return unpack(res, 1, table.maxn(res))
end

--- Layer.in_training(): the training flag of the layer call in progress (false outside calls).
-- The training flag of the layer call in progress (false outside calls).
function Layer.in_training()
  return context ~= nil and context.training or false
end

--------------------------------------------------------------------------------
-- Shapes, parameters, config

--- Layer:compute_output_shape(input_shape): the output shape (a list, -1 for unknown sizes) for inputs of this shape.
-- Default: run call on zeros of that shape (unknown sizes as 1), outside any
-- tape, and read the output's shape. Layers override this when they can say
-- it without computing; a stateful call runs once more (losses are restored).
function Layer:compute_output_shape(input_shape, ...)
  check_shapes(self, "compute_output_shape", input_shape, ...)
  local function concrete(s)
    if type(s[1]) == "table" then
      local out = {}
      for i, t in ipairs(s) do out[i] = concrete(t) end
      return out
    end
    local dims = {}
    for i, d in ipairs(s) do dims[i] = d < 0 and 1 or d end
    return core.named(prefix_of(self) .. "compute_output_shape", tensor.zeros, dims)
  end
  local saved = {}
  for _, l in ipairs(self:_flatten_layers()) do saved[l] = rawget(l, "_losses") end
  local args = { concrete(input_shape) }
  for i, s in ipairs({ ... }) do args[i + 1] = concrete(s) end
  args[#args + 1] = { training = false }
  local ok, out = pcall(no_grad, call_layer, self, unpack(args))
  for l, losses in pairs(saved) do rawset(l, "_losses", losses) end
  losses_ever = true
  if not ok then error(out, 0) end
  local function restore(t, s)
    local shape = t:shape()
    if type(s[1]) ~= "table" and s[1] == -1 and shape[1] == 1 then shape[1] = -1 end
    return shape
  end
  if is_tensor(out) then return restore(out, input_shape) end
  local shapes = {}
  for i, t in ipairs(out) do shapes[i] = restore(t, input_shape) end
  return shapes
end

--- Layer:count_params(): the number of weight values (scalars) in the layer and its sublayers.
function Layer:count_params()
  local weights = collect_variables(self)
  if not rawget(self, "built") and #weights == 0 then
    self:raise("count_params() needs the weights: call the layer on an input or build(input_shape) first")
  end
  local n = 0
  for _, v in ipairs(weights) do n = n + tonumber(v.count) end
  return n
end

--- Layer:get_weights(): copies of the weights' values, as tensors, in `weights` order.
-- Copies of the weights' values, in `weights` order.
function Layer:get_weights()
  local out = {}
  for i, v in ipairs(collect_variables(self)) do out[i] = v:value() end
  return out
end

--- Layer:set_weights(values): assigns a list of tensors (or nested tables) to the weights, in `weights` order;
-- shapes must match.
function Layer:set_weights(values)
  local weights = collect_variables(self)
  if type(values) ~= "table" or #values ~= #weights then
    self:raise("set_weights: expected a list of %d values, got %s", #weights,
      type(values) == "table" and tostring(#values) or type(values))
  end
  for i, v in ipairs(weights) do
    local t = core.to_tensor(values[i], prefix_of(self) .. "set_weights", ("weight %d"):format(i))
    local a, b = v:shape(), t:shape()
    local same = #a == #b
    for j = 1, #a do same = same and a[j] == b[j] end
    if not same then
      self:raise("set_weights: weight %d (%s) has shape %s, got %s", i, Layer.path_of(v), shape_str(a), shape_str(b))
    end
    v:assign(t)
  end
end

--- Layer:get_config(): every constructor argument as a table; Class.from_config(config) rebuilds the layer.
-- The base keys; subclasses add theirs:
--   local config = Linear.super.get_config(self); config.units = self.units; return config
function Layer:get_config()
  local config = { name = rawget(self, "name"), trainable = rawget(self, "_trainable"), dtype = rawget(self, "dtype") }
  if rawget(self, "batch_input_shape") then
    local s = {}
    for i, d in ipairs(rawget(self, "batch_input_shape")) do s[i] = d end
    config.batch_input_shape = s
    config.input_shape = { unpack(s, 2) }
    config.batch_size = s[1] ~= -1 and s[1] or nil
  end
  if rawget(self, "activity_regularizer") then
    config.activity_regularizer = regularizers.serialize(rawget(self, "activity_regularizer"))
  end
  return config
end

-- Configs are data: plain tables (JSON arrays and objects among them) are
-- compared and copied by value, anything else (a function) by identity.
local DATA_MT = { [getmetatable(json.array())] = true, [getmetatable(json.object())] = true }
local function is_data(v) return type(v) == "table" and (getmetatable(v) == nil or DATA_MT[getmetatable(v)]) end

local function copy_config(v)
  if not is_data(v) then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy_config(x) end
  return setmetatable(out, getmetatable(v))
end

-- Where two configs differ: a list of {path, value in a, value in b}.
local function config_differences(a, b, path, out)
  out = out or {}
  if is_data(a) and is_data(b) then
    local keys, seen = {}, {}
    for k in pairs(a) do keys[#keys + 1] = k; seen[k] = true end
    for k in pairs(b) do if not seen[k] then keys[#keys + 1] = k end end
    table.sort(keys, function(x, y) return tostring(x) < tostring(y) end)
    for _, k in ipairs(keys) do
      local p = path and (type(k) == "number" and ("%s[%d]"):format(path, k) or path .. "." .. tostring(k)) or tostring(k)
      config_differences(a[k], b[k], p, out)
    end
  elseif not (a == b or (a ~= a and b ~= b)) then
    out[#out + 1] = { path or "config", a, b }
  end
  return out
end

local function show(v)
  if is_data(v) then
    local ok, s = pcall(json.encode, v)
    if ok then return #s > 60 and s:sub(1, 57) .. "..." or s end
  end
  return v == nil and "nil (missing)" or tostring(v)
end

--- layer:check_from_config([config]): raises, naming the layer and what to
-- change, unless Class.from_config(config) rebuilds a layer whose
-- get_config() is config again (config: get_config() by default). Saving
-- runs it on each layer whose config goes into a file, so that a layer
-- load_model could not rebuild fails at save. It builds one throw-away
-- copy (no weights, unless its constructor builds them); layer names given
-- out meanwhile are taken back. Sequential and Functional models are checked
-- through their layers.
function Layer:check_from_config(config)
  if rawget(self, "_layers") or rawget(self, "_graph") then return end
  config = config or self:get_config()
  local cls = class_of(self)
  local cname = class_name(cls)
  local hint = ("A layer is rebuilt as %s.from_config(config), which is %s(config) unless the class defines "
    .. "from_config: take Keras's arguments from one keyword table (`first, kw = klua.Layer.args(first, kw, \"units\")` "
    .. "accepts both %s(4, {...}) and %s{units = 4, ...}) and return every constructor argument from get_config()")
    :format(cname, cname, cname, cname)
  local names = {}
  for k, v in pairs(uids) do names[k] = v end
  local ok, res = pcall(function()
    local copy = cls.from_config(copy_config(config))
    if not is_layer(copy) then error(("from_config returned %s, not a layer"):format(type(copy)), 0) end
    return copy:get_config()
  end)
  uids = names
  if not ok then
    self:raise("cannot be rebuilt from its config: %s.from_config(layer:get_config()) fails: %s. %s",
      cname, tostring(res), hint)
  end
  local diffs = config_differences(config, res)
  if #diffs > 0 then
    local want, got = {}, {}
    for i = 1, math.min(#diffs, 3) do
      want[i] = diffs[i][1] .. "=" .. show(diffs[i][2])
      got[i] = diffs[i][1] .. "=" .. show(diffs[i][3])
    end
    self:raise("cannot be rebuilt from its config: get_config() gives %s, but the layer %s.from_config makes from it gives %s. %s",
      table.concat(want, ", "), cname, table.concat(got, ", "), hint)
  end
end

--- Layer:get_build_config(): {input_shape=, input_shapes=} the layer was built with, or nil if not built.
-- _weight_options_config(config, {"kernel", "bias", ...}): puts each prefix's initializer, regularizer and
-- constraint (self.<prefix>_initializer, ...) into config, serialized, for get_config; returns config.
function Layer:_weight_options_config(config, prefixes)
  for _, p in ipairs(prefixes) do
    config[p .. "_initializer"] = initializers.serialize(self[p .. "_initializer"])
    config[p .. "_regularizer"] = regularizers.serialize(self[p .. "_regularizer"])
    config[p .. "_constraint"] = constraints.serialize(self[p .. "_constraint"])
  end
  return config
end

-- The shapes build() was called with (for saving and rebuilding).
function Layer:get_build_config()
  local shapes = rawget(self, "_build_shapes")
  if not shapes then return nil end
  return { input_shape = shapes[1], input_shapes = shapes }
end

--- Layer:build_from_config(config): builds an unbuilt layer with the shapes of get_build_config().
function Layer:build_from_config(config)
  if config ~= nil and (type(config) ~= "table" or core.class_name_of(config)) then
    self:raise("build_from_config: expected {input_shape=} or {input_shapes=}, got %s", core.describe(config))
  end
  if config and config.input_shapes and not rawget(self, "built") then
    self:build(unpack(config.input_shapes))
  elseif config and config.input_shape and not rawget(self, "built") then
    self:build(config.input_shape)
  end
end

layer_tostring = function(self)
  local cname, name = Layer.class_name(self), tostring(rawget(self, "name"))
  local weights = collect_variables(self)
  if not rawget(self, "built") and #weights == 0 then
    return string.format("%s '%s' (not built)", cname, name)
  end
  local n = 0
  for _, v in ipairs(weights) do n = n + tonumber(v.count) end
  local extra = rawget(self, "_trainable") and "" or ", frozen"
  return string.format("%s '%s' (%d weight%s, %d params%s)", cname, name, #weights,
    #weights == 1 and "" or "s", n, extra)
end

Layer.__newindex = newindex
Layer.__call = call_layer
Layer.__tostring = layer_tostring
Layer.__init_subclass(Layer)
Layer._properties = rawget(Layer, "_properties")
for k, g in pairs(getters) do Layer._properties[k] = g end

return Layer
