-- bidirectional.lua — Bidirectional: runs a recurrent layer forwards and a
-- copy of it backwards (go_backwards flipped) over the same sequence and merges
-- the two ("concat", "sum", "ave", "mul" or "none" for both outputs), as Keras.
-- Both copies are rebuilt from the given layer's config: they do not share its
-- weights. With return_sequences, masked steps output zeros (Keras forces it).
-- A stateful layer gives two stateful halves: `states` lists the forward
-- layer's states, then the backward layer's; reset_states() resets both.
local core = require("klua.core")
local Layer = require("klua.layer")
local ops = require("klua.ops")
local nn = require("klua.nn")
local BaseRNN = require("klua.layers.base_rnn")

local Bidirectional = Layer:extend("Bidirectional")
Bidirectional.input_spec = { ndim = 3, layout = "(batch, timesteps, features)" }   -- one tensor (Keras's input_spec)
local unpack = unpack or table.unpack

local merge_modes = { concat = true, sum = true, ave = true, mul = true, none = true }

-- A layer, or a {class_name=, config=} table.
local function as_layer(v)
  if Layer.is_layer(v) then return v end
  if type(v) == "table" and type(v.class_name) == "string" then return require("klua.layers").deserialize(v) end
  return nil
end

-- A fresh copy of `layer` from its config, with some keys changed.
local function copy_of(layer, changes)
  local config = layer:get_config()
  for k, v in pairs(changes) do config[k] = v end
  return getmetatable(layer).from_config(config)
end

local function strip(name, prefix)
  if name:sub(1, #prefix) == prefix then return name:sub(#prefix + 1) end
  return name
end

--- Bidirectional{layer, merge_mode="concat", backward_layer=nil, ...}: runs a recurrent layer forwards and a copy
-- backwards over the sequence and merges the two ("concat", "sum", "ave", "mul" or "none": a list).
function Bidirectional:__init(layer, kw)
  layer, kw = nn.args(layer, kw, "layer")
  Bidirectional.super.__init(self, kw)
  local inner = as_layer(layer)
  if not inner then self:raise("expected a recurrent layer instance. Received: layer=%s", tostring(layer)) end
  if inner.go_backwards == nil or inner.return_sequences == nil then
    self:raise("the wrapped layer must be a recurrent layer with go_backwards and return_sequences, got %s", tostring(inner))
  end
  local mode = kw.merge_mode
  if mode == nil then mode = "concat" end
  if mode == false then mode = "none" end
  if not merge_modes[mode] then
    self:raise("merge_mode must be one of \"concat\", \"sum\", \"ave\", \"mul\", \"none\". Received: merge_mode=%s", tostring(mode))
  end
  self.merge_mode = mode
  local base = strip(strip(inner.name, "forward_"), "backward_")
  self.forward_layer = copy_of(inner, { name = "forward_" .. base })
  local backward = kw.backward_layer ~= nil and as_layer(kw.backward_layer) or nil
  if kw.backward_layer ~= nil and not backward then
    self:raise("backward_layer must be a layer. Received: backward_layer=%s", tostring(kw.backward_layer))
  end
  if backward then
    if backward.go_backwards == inner.go_backwards then
      self:raise("the forward and backward layers must have different go_backwards values")
    end
    for _, key in ipairs { "return_sequences", "return_state" } do
      if backward[key] ~= inner[key] then
        self:raise("the forward and backward layers must have the same %s, got %s and %s", key, tostring(inner[key]), tostring(backward[key]))
      end
    end
  else
    backward = copy_of(inner, { name = "backward_" .. base, go_backwards = not inner.go_backwards })
  end
  self.backward_layer = backward
  self.return_sequences = inner.return_sequences
  self.return_state = inner.return_state
  self.stateful = inner.stateful == true
  -- Keras: masked steps of returned sequences are zeros in both directions.
  self.forward_layer.zero_output_for_mask = self.return_sequences
  self.backward_layer.zero_output_for_mask = self.return_sequences
  self.supports_masking = true
end

-- The forward layer's states, then the backward layer's (nil until made).
Layer.property(Bidirectional, "states", function(self)
  local f, b = rawget(self.forward_layer, "states"), rawget(self.backward_layer, "states")
  if not f or not b then return nil end
  local out = {}
  for _, v in ipairs(f) do out[#out + 1] = v end
  for _, v in ipairs(b) do out[#out + 1] = v end
  return out
end)

--- reset_states([states]): zeroes both halves' states, or sets them (the
-- forward layer's states first, then the backward layer's).
function Bidirectional:reset_states(states)
  if not self.stateful then self:raise("reset_states: the layer is not stateful (stateful=false)") end
  if states == nil then
    self.forward_layer:reset_states()
    self.backward_layer:reset_states()
    return
  end
  if type(states) ~= "table" or #states % 2 ~= 0 then
    self:raise("reset_states: expected a list of states, the forward layer's then the backward layer's")
  end
  local half = #states / 2
  self.forward_layer:reset_states({ unpack(states, 1, half) })
  self.backward_layer:reset_states({ unpack(states, half + 1) })
end
Bidirectional.reset_state = Bidirectional.reset_states

function Bidirectional:build(input_shape)
  if not self.forward_layer.built then self.forward_layer:build(input_shape) end
  if not self.backward_layer.built then self.backward_layer:build(input_shape) end
end

function Bidirectional:call(x, kw)
  local sub = { mask = kw.mask, training = kw.training }
  local fstate, bstate
  if kw.initial_state ~= nil then
    local init = kw.initial_state
    local half = #init / 2
    fstate, bstate = { unpack(init, 1, half) }, { unpack(init, half + 1) }
  end
  sub.initial_state = fstate
  local fwd = { self.forward_layer(x, sub) }
  sub.initial_state = bstate
  local bwd = { self.backward_layer(x, sub) }
  local y, yr = fwd[1], bwd[1]
  if self.return_sequences then yr = ops.take(yr, BaseRNN.reversed_index(tonumber(yr.dims[1])), 2) end
  local out
  local mode = self.merge_mode
  if mode == "concat" then out = ops.concatenate({ y, yr }, -1)
  elseif mode == "sum" then out = y + yr
  elseif mode == "ave" then out = (y + yr) * 0.5
  elseif mode == "mul" then out = y * yr end
  local res = out and { out } or { y, yr }
  if self.return_state then
    for i = 2, #fwd do res[#res + 1] = fwd[i] end
    for i = 2, #bwd do res[#res + 1] = bwd[i] end
  end
  return unpack(res)
end

function Bidirectional:compute_mask(inputs, mask)
  if not self.return_sequences or mask == nil then return nil end
  if self.merge_mode == "none" then return { mask, mask } end
  return mask
end

function Bidirectional:compute_output_shape(input_shape)
  local shape = self.forward_layer:compute_output_shape(input_shape)
  local out, states = shape, nil
  if self.return_state then out, states = shape[1], { unpack(shape, 2) } end
  local res
  if self.merge_mode == "concat" then
    local s = { unpack(out) }
    s[#s] = s[#s] * 2
    res = { s }
  elseif self.merge_mode == "none" then
    res = { out, out }
  else
    res = { out }
  end
  if states then
    for _, s in ipairs(states) do res[#res + 1] = s end
    for _, s in ipairs(states) do res[#res + 1] = s end
  end
  if #res == 1 then return res[1] end
  return res
end

function Bidirectional:get_config()
  local config = Bidirectional.super.get_config(self)
  local layers = require("klua.layers")
  config.merge_mode = self.merge_mode
  config.layer = layers.serialize(self.forward_layer)
  config.backward_layer = layers.serialize(self.backward_layer)
  return config
end

return Bidirectional
