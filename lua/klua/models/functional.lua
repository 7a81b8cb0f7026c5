-- models/functional.lua — the Functional API: klua.Input, InputLayer, the
-- graph of layer calls that symbolic tensors (keras_tensor.lua)
-- record, and the Functional model that replays that graph on real tensors.
--
--   local inputs = klua.Input{shape = {784}}
--   local x = klua.layers.Dense(64, {activation = "relu"})(inputs)
--   local model = klua.Model{inputs = inputs, outputs = klua.layers.Dense(10)(x)}
--
-- Calling a layer on a KerasTensor (the hook in klua.Layer's __call) builds
-- the layer with the known shape, finds the output shapes (the layer's
-- compute_output_shape, else one call on zeros), and records a node
-- {layer, args, kw, outputs}. Nothing is computed then.
-- Inputs and outputs may be one tensor, a list or a named table; layers may
-- be shared (several nodes) and a model can be called like any layer.
-- This file builds on models/model.lua and registers Functional with it, so
-- that klua.Model{inputs=, outputs=} can return one without a require cycle.
local core = require("klua.core")
local Layer = require("klua.layer")
local tensor = require("klua.tensor")
local Model = require("klua.models.model")
local structure = require("klua.tree")
local kt_mod = require("klua.keras_tensor")
local json = require("klua.json")
local saving = require("klua.saving")

local unpack = unpack or table.unpack
local shape_str = core.shape_str
local flatten, map, zip = structure.flatten, structure.map, structure.zip
local ordered_keys, is_struct = structure.ordered_keys, structure.is_struct
local is_kt, copy_shape, new_keras_tensor = kt_mod.is_keras_tensor, kt_mod.copy_shape, kt_mod.new
local node_inputs = kt_mod.node_inputs

local M = {
  KerasTensor = kt_mod.KerasTensor, is_keras_tensor = is_kt, TensorOp = kt_mod.TensorOp,
}

--------------------------------------------------------------------------------
-- InputLayer and Input

local InputLayer = Layer:extend("InputLayer")
M.InputLayer = InputLayer

local function check_dims(s, who)
  if type(s) == "number" then s = { s } end
  if type(s) ~= "table" or core.class_name_of(s) then core.raise(("%s: shape must be a list of sizes, got %s"):format(who, core.describe(s))) end
  local out = {}
  for i = 1, table.maxn(s) do
    local d = s[i]
    if d == nil or d == false then d = -1 end
    if type(d) ~= "number" or d % 1 ~= 0 or (d < 0 and d ~= -1) then
      core.raise(("%s: shape entries must be positive integers or -1 (unknown), got %s at position %d")
        :format(who, tostring(d), i))
    end
    out[i] = d
  end
  return out
end

--- InputLayer{shape=nil, batch_size=nil, batch_shape=nil, name=nil}: the layer behind klua.Input: it holds a model's
-- input shape (shape without the batch, or batch_shape with it).
function InputLayer:__init(kw)
  kw = core.options(kw, "InputLayer")
  local batch_shape
  if kw.batch_shape or kw.batch_input_shape then
    batch_shape = check_dims(kw.batch_shape or kw.batch_input_shape, "InputLayer")
  else
    if kw.shape == nil then core.raise("Input: a shape is required, e.g. klua.Input{shape = {784}}") end
    batch_shape = check_dims(kw.shape, "Input")
    table.insert(batch_shape, 1, kw.batch_size or -1)
  end
  InputLayer.super.__init(self, { name = kw.name or Layer.unique_name("input_layer"), dtype = kw.dtype })
  rawset(self, "batch_shape", batch_shape)
  rawset(self, "built", true)
  local node = { layer = self, args = {}, nargs = 0, kw = {}, is_input = true, nret = 1 }
  local kt = new_keras_tensor(batch_shape, node, rawget(self, "name"))
  node.outputs, node.flat = kt, { kt }
  rawset(self, "output", kt)
end

function InputLayer:call(x) return x end
function InputLayer:compute_output_shape(s) return s end
function InputLayer:get_config()
  return { name = rawget(self, "name"), batch_shape = copy_shape(rawget(self, "batch_shape")), dtype = "float32" }
end

--- Input{shape={784}, batch_size=, name=} (or Input({784})): a symbolic
-- tensor of shape (batch, ...) that starts a Functional graph.
function M.Input(kw, extra)
  if type(kw) == "number" or (type(kw) == "table" and kw.shape == nil and kw.batch_shape == nil and kw[1] ~= nil) then
    local opts = {}
    for k, v in pairs(extra or {}) do opts[k] = v end
    opts.shape = kw
    kw = opts
  end
  if type(kw) ~= "table" or core.class_name_of(kw) then core.raise("Input: expected {shape = {...}}, got " .. core.describe(kw)) end
  return InputLayer(kw).output
end

--------------------------------------------------------------------------------
-- Calling a layer on symbolic tensors

local function shape_tree(x)
  return map(x, function(v)
    if is_kt(v) then return copy_shape(v.shape) end
    if core.is_tensor(v) then return v:shape() end
    return nil
  end)
end

local function is_flat_shape(s)
  if type(s) ~= "table" or getmetatable(s) ~= nil then return false end
  for i = 1, #s do if type(s[i]) ~= "number" then return false end end
  return true
end

-- Shapes with unknown sizes made concrete: the batch (first) as `b`, other
-- unknown sizes as `o`.
local function concrete_dims(shape, b, o)
  local dims = {}
  for i, d in ipairs(shape) do dims[i] = d >= 0 and d or (i == 1 and b or o) end
  return dims
end

local function any_unknown(list)
  for _, kt in ipairs(list) do
    for _, d in ipairs(kt.shape) do if d < 0 then return true end end
  end
  return false
end

local quietly = Model.quietly

local function pack(...) return { n = select("#", ...), ... } end

-- One call of `layer` on zeros shaped like the symbolic args.
local function probe_once(layer, args, n, kw, b, o)
  local function fill(v)
    if is_kt(v) then return tensor.zeros(concrete_dims(v.shape, b, o)) end
    return v
  end
  local cargs = {}
  for i = 1, n do cargs[i] = map(args[i], fill) end
  local ckw = {}
  for k, v in pairs(kw) do ckw[k] = map(v, fill) end
  if ckw.training == nil then ckw.training = false end
  cargs[n + 1] = ckw
  return pack(layer(unpack(cargs, 1, n + 1)))
end

-- The shapes of every returned tensor, in flatten order.
local function result_shapes(layer, res)
  local out = {}
  for i = 1, res.n do
    for _, t in ipairs(flatten(res[i])) do
      if not core.is_tensor(t) then layer:raise("call() returned a %s where a tensor was expected", type(t)) end
      out[#out + 1] = t:shape()
    end
  end
  return out
end

-- Output structure and shapes: two probes (batch 1 and 2, other unknown sizes
-- 32 and 64) tell the sizes that follow the input from those that do not.
local function probe(layer, args, n, kw, flat_in)
  local layers = layer:_flatten_layers()
  local r1 = quietly(layers, probe_once, layer, args, n, kw, 1, 32)
  if r1.n == 0 or r1[1] == nil then layer:raise("call() returned nothing") end
  local s1 = result_shapes(layer, r1)
  if not any_unknown(flat_in) then return r1, s1 end
  local r2 = quietly(layers, probe_once, layer, args, n, kw, 2, 64)
  local s2 = result_shapes(layer, r2)
  if #s1 ~= #s2 then layer:raise("the number of outputs depends on the input size") end
  for j, a in ipairs(s1) do
    local b2 = s2[j]
    if #a ~= #b2 then layer:raise("output %d has a rank that depends on the input size", j) end
    for d = 1, #a do if a[d] ~= b2[d] then a[d] = -1 end end
  end
  return r1, s1
end

-- The hook klua.Layer calls when the first argument is symbolic.
local function symbolic_call(layer, args, kw)
  local n = table.maxn(args)
  local flat_in = {}
  for i = 1, n do
    for _, v in ipairs(flatten(args[i])) do if is_kt(v) then flat_in[#flat_in + 1] = v end end
  end
  for _, v in pairs(kw) do
    for _, leaf in ipairs(flatten(v)) do if is_kt(leaf) then flat_in[#flat_in + 1] = leaf end end
  end
  if not rawget(layer, "built") then
    local shapes = {}
    for i = 1, n do shapes[i] = shape_tree(args[i]) end
    local ok, err = pcall(layer.build, layer, unpack(shapes, 1, n))
    if not ok then
      if type(err) == "string" and not err:find("%u[%w_]*%s'[^']*': ") then
        err = ("%s '%s': %s"):format(layer:class_name(), rawget(layer, "name"), err)
      end
      error(err, 0)
    end
    rawset(layer, "built", true)
  end
  local node = { layer = layer, args = args, nargs = n, kw = kw }
  local name = rawget(layer, "name")
  -- A layer that states its output shape for one input is not run.
  local declared
  if n == 1 and layer.compute_output_shape ~= Layer.compute_output_shape and not is_struct(args[1]) then
    local ok, s = pcall(layer.compute_output_shape, layer, shape_tree(args[1]))
    if ok and is_flat_shape(s) then declared = s end
  end
  if declared then
    local kt = new_keras_tensor(declared, node, name)
    node.outputs, node.flat, node.nret = kt, { kt }, 1
    return kt
  end
  local res, shapes = probe(layer, args, n, kw, flat_in)
  local flat = {}
  local outs = {}
  for i = 1, res.n do
    -- the result structure with symbolic tensors in place of tensors
    local function build(v)
      if core.is_tensor(v) then
        local kt = new_keras_tensor(shapes[#flat + 1], node, name)
        flat[#flat + 1] = kt
        return kt
      end
      local out = {}
      for _, k in ipairs(ordered_keys(v)) do out[k] = build(v[k]) end
      return out
    end
    outs[i] = build(res[i])
  end
  node.nret = res.n
  node.flat = flat
  if res.n == 1 then
    node.outputs = outs[1]
    return outs[1]
  end
  node.outputs = outs
  return unpack(outs, 1, res.n)
end

Layer.functional = {
  is_symbolic = kt_mod.has_symbolic,
  call = symbolic_call,
}

--------------------------------------------------------------------------------
-- Graphs

local function check_struct(x, what, who)
  if is_kt(x) then return end
  if not is_struct(x) or next(x) == nil then
    core.raise(("%s: %s must be a symbolic tensor (from klua.Input or a layer called on one), a list or a named table of them")
      :format(who, what))
  end
  for _, v in ipairs(flatten(x)) do
    if not is_kt(v) then
      core.raise(("%s: %s must hold symbolic tensors, found %s"):format(who, what,
        core.is_tensor(v) and "a concrete tensor" or type(v)))
    end
  end
end

--- graph(inputs, outputs, who): the nodes between inputs and outputs in
-- an order where every node comes after the nodes it reads from.
function M.build_graph(inputs, outputs, who)
  check_struct(inputs, "inputs", who)
  check_struct(outputs, "outputs", who)
  local flat_in = flatten(inputs)
  local input_nodes = {}
  for i, kt in ipairs(flat_in) do
    if not kt._node.is_input then
      core.raise(("%s: inputs[%d] was produced by layer '%s'; model inputs must come from klua.Input")
        :format(who, i, rawget(kt._node.layer, "name")))
    end
    if input_nodes[kt._node] then core.raise(("%s: input '%s' is listed twice"):format(who, kt.name)) end
    input_nodes[kt._node] = true
  end
  local order, state = {}, {}
  local function visit(node)
    if state[node] == 2 then return end
    state[node] = 2
    for _, kt in ipairs(node_inputs(node)) do visit(kt._node) end
    if node.is_input and not input_nodes[node] then
      core.raise(("%s: the graph is disconnected: the outputs depend on input '%s', which is not in inputs")
        :format(who, rawget(node.layer, "name")))
    end
    order[#order + 1] = node
  end
  for _, kt in ipairs(flatten(outputs)) do visit(kt._node) end
  -- Layers: the inputs' first, then in call order; each once.
  local layers, seen = {}, {}
  for _, kt in ipairs(flat_in) do
    local l = kt._node.layer
    if not seen[l] then seen[l] = true; layers[#layers + 1] = l end
  end
  for _, node in ipairs(order) do
    local l = node.layer
    if not seen[l] then seen[l] = true; layers[#layers + 1] = l end
  end
  local names = {}
  for _, l in ipairs(layers) do
    local nm = rawget(l, "name")
    if names[nm] then
      core.raise(("%s: the name '%s' is used by two layers; layer names must be unique in a model"):format(who, nm))
    end
    names[nm] = true
  end
  return { inputs = inputs, outputs = outputs, input_flat = flat_in, nodes = order, layers = layers }
end

--- run_graph(graph, input_values_flat, kw): the outputs for real inputs.
function M.run_graph(graph, values_in, kw)
  local values = {}
  for i, kt in ipairs(graph.input_flat) do values[kt] = values_in[i] end
  local function lookup(v)
    if is_kt(v) then return values[v] end
    return v
  end
  for _, node in ipairs(graph.nodes) do
    if not node.is_input then
      local n = node.nargs
      local args = {}
      for i = 1, n do args[i] = map(node.args[i], lookup) end
      local ckw = {}
      for k, v in pairs(node.kw) do ckw[k] = map(v, lookup) end
      if ckw.training == nil then ckw.training = kw.training end
      args[n + 1] = ckw
      local res = pack(node.layer(unpack(args, 1, n + 1)))
      local outs = node.nret == 1 and { node.outputs } or node.outputs
      for i = 1, node.nret do
        zip(outs[i], res[i], function(kt, t)
          if not core.is_tensor(t) then
            node.layer:raise("returned %s where the graph expects a tensor", type(t))
          end
          values[kt] = t
        end, "output")
      end
    end
  end
  return map(graph.outputs, lookup)
end

--------------------------------------------------------------------------------
-- The Functional model

local Functional = Model:extend("Functional")
M.Functional = Functional
Model._register_functional(Functional)

-- Called by Model.__init for klua.Model{inputs=, outputs=}.
function Functional._init_graph(self, inputs, outputs, kw)
  kw = core.options(kw, "Model")
  local who = ("Model '%s'"):format(tostring(kw.name or "functional"))
  local graph = M.build_graph(inputs, outputs, who)
  Model._init_base(self, { name = kw.name or Layer.unique_name("functional"), trainable = kw.trainable })
  rawset(self, "_graph", graph)
  rawset(self, "inputs", inputs)
  rawset(self, "outputs", outputs)
  -- tracked (not rawset): weights are collected through the layer list, in order
  self._layers = graph.layers
  rawset(self, "built", true)
end

--- Functional{inputs, outputs, name=nil, trainable=true}: a model from the graph of layer calls between symbolic
-- inputs and outputs (what klua.Model{inputs=, outputs=} makes).
function Functional:__init(kw)
  kw = core.options(kw, "Functional")
  Functional._init_graph(self, kw.inputs, kw.outputs, kw)
end

function Functional:build() end

-- Real inputs in the order of the model's flat input list.
local function bind_inputs(self, x)
  local graph = rawget(self, "_graph")
  local flat_in = graph.input_flat
  local given = {}
  local inputs = graph.inputs
  if is_kt(inputs) then
    if is_struct(x) and #x == 1 and core.is_tensor(x[1]) then x = x[1] end
    given[1] = x
  elseif is_struct(x) and x[1] == nil and next(x) ~= nil then
    -- named
    zip(inputs, x, function(kt, v, path)
      if v == nil then self:raise("missing input '%s' (%s)", kt.name, path) end
      given[#given + 1] = v
    end, "inputs")
  elseif is_struct(x) then
    if #x ~= #flat_in then self:raise("expected %d inputs, got %d", #flat_in, #x) end
    for i = 1, #x do given[i] = x[i] end
  else
    self:raise("expected %d inputs as a list, got %s", #flat_in, core.is_tensor(x) and "one tensor" or type(x))
  end
  for i, kt in ipairs(flat_in) do
    local v = given[i]
    if not core.is_tensor(v) then
      if type(v) == "number" or type(v) == "table" then v = core.to_tensor(v) else
        self:raise("input '%s' must be a tensor, got %s", kt.name, type(v))
      end
    end
    local s, want = v:shape(), kt.shape
    local ok = #s == #want
    if ok then for d = 1, #want do if want[d] >= 0 and want[d] ~= s[d] then ok = false end end end
    if not ok then
      self:raise("input '%s' expects shape %s, got %s", kt.name, shape_str(want), shape_str(s))
    end
    given[i] = v
  end
  return given
end

function Functional:call(...)
  local n = select("#", ...)
  local kw = select(n, ...)
  local x
  if n > 2 then x = { ... }; x[n] = nil else x = ... end
  return M.run_graph(rawget(self, "_graph"), bind_inputs(self, x), kw or {})
end

function Functional:compute_output_shape()
  local outs = rawget(self, "outputs")
  if is_kt(outs) then return copy_shape(outs.shape) end
  return map(outs, function(kt) return copy_shape(kt.shape) end)
end

--------------------------------------------------------------------------------
-- Config: the layers, then the nodes in graph order; a symbolic tensor is
-- {__ref__ = {node, output}} (1-based positions in those lists).

local function encode_struct(x, refs, who)
  return map(x, function(v)
    if is_kt(v) then
      local r = refs[v]
      if not r then core.raise(who .. ": a symbolic tensor outside the graph") end
      return { __ref__ = { r[1], r[2] } }
    end
    local tv = type(v)
    if tv == "number" or tv == "string" or tv == "boolean" then return v end
    core.raise(("%s: cannot save a %s argument in a layer call (only symbolic tensors and plain values)")
      :format(who, core.is_tensor(v) and "tensor" or tv))
  end)
end

function Functional:get_config()
  local graph = rawget(self, "_graph")
  local who = ("Functional '%s'"):format(rawget(self, "name"))
  local refs, nodes = {}, {}
  for i, node in ipairs(graph.nodes) do
    for j, kt in ipairs(node.flat) do refs[kt] = { i, j } end
  end
  for i, node in ipairs(graph.nodes) do
    local entry = { layer = rawget(node.layer, "name") }
    if node.is_input then
      entry.input = true
    else
      local args = {}
      for a = 1, node.nargs do args[a] = encode_struct(node.args[a], refs, who) end
      entry.args = json.array(args)
      local kwc = {}
      for k, v in pairs(node.kw) do kwc[k] = encode_struct(v, refs, who) end
      entry.kw = json.object(kwc)
    end
    nodes[i] = entry
  end
  local layers = {}
  for i, l in ipairs(graph.layers) do layers[i] = saving.serialize_layer(l) end
  -- inputs that no output depends on still belong to the model
  for _, kt in ipairs(graph.input_flat) do
    if not refs[kt] then
      nodes[#nodes + 1] = { layer = rawget(kt._node.layer, "name"), input = true }
      refs[kt] = { #nodes, 1 }
    end
  end
  return {
    name = rawget(self, "name"), trainable = rawget(self, "_trainable"),
    layers = layers, nodes = nodes,
    inputs = encode_struct(graph.inputs, refs, who), outputs = encode_struct(graph.outputs, refs, who),
  }
end

function Functional.from_config(a, b)
  local config = b or a
  local who = "Functional.from_config"
  if type(config) ~= "table" or type(config.layers) ~= "table" or type(config.nodes) ~= "table" then
    core.raise(who .. ": expected a config with layers and nodes")
  end
  local by_name = {}
  for i, lc in ipairs(config.layers) do
    local l = saving.deserialize_layer(lc)
    by_name[rawget(l, "name")] = l
  end
  local produced = {}
  local function decode(x)
    if type(x) == "table" and x.__ref__ then
      local r = x.__ref__
      local outs = produced[r[1]]
      local kt = outs and outs[r[2]]
      if not kt then core.raise(("%s: a reference to node %s output %s, which does not exist yet"):format(who, tostring(r[1]), tostring(r[2]))) end
      return kt
    end
    if type(x) == "table" then
      local out = {}
      for k, v in pairs(x) do out[k] = decode(v) end
      return out
    end
    return x
  end
  for i, entry in ipairs(config.nodes) do
    local layer = by_name[entry.layer]
    if not layer then core.raise(("%s: node %d calls layer '%s', which is not in the config"):format(who, i, tostring(entry.layer))) end
    if entry.input then
      produced[i] = { layer.output }
    else
      local args = {}
      local nargs = #(entry.args or {})
      for a = 1, nargs do args[a] = decode(entry.args[a]) end
      local kwv = decode(entry.kw or {})
      args[nargs + 1] = kwv
      local res = pack(layer(unpack(args, 1, nargs + 1)))
      local first = flatten(res[1])[1]
      if not is_kt(first) then core.raise(("%s: layer '%s' did not return symbolic tensors"):format(who, entry.layer)) end
      produced[i] = first._node.flat
    end
  end
  return Functional._from_graph(decode(config.inputs), decode(config.outputs), { name = config.name, trainable = config.trainable })
end

function Functional._from_graph(inputs, outputs, kw)
  local obj = setmetatable({}, Functional)
  Functional._init_graph(obj, inputs, outputs, kw)
  return obj
end

return M
