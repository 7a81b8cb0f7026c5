-- timedistributed.lua — TimeDistributed: applies a layer to every timestep of
-- (batch, timesteps, ...) by folding time into the batch: one call of the
-- inner layer on (batch * timesteps, ...), then the time axis back, as Keras.
local Layer = require("klua.layer")
local ops = require("klua.ops")
local nn = require("klua.nn")

local TimeDistributed = Layer:extend("TimeDistributed")
TimeDistributed.input_spec = { min_ndim = 3, layout = "(batch, timesteps, ...)" }   -- one tensor (Keras's input_spec)

--- TimeDistributed{layer, ...}: applies layer to every timestep of (batch, timesteps, ...) in one call.
function TimeDistributed:__init(layer, kw)
  layer, kw = nn.args(layer, kw, "layer")
  TimeDistributed.super.__init(self, kw)
  if type(layer) == "table" and type(layer.class_name) == "string" then layer = require("klua.layers").deserialize(layer) end
  if not Layer.is_layer(layer) then self:raise("expected a layer instance. Received: layer=%s", tostring(layer)) end
  self.layer = layer
  self.supports_masking = true
end

local function fold(shape)
  local out = { (shape[1] and shape[1] > 0 and shape[2] and shape[2] > 0) and shape[1] * shape[2] or -1 }
  for i = 3, #shape do out[#out + 1] = shape[i] end
  return out
end

function TimeDistributed:build(input_shape)
  if #input_shape < 3 then
    self:raise("expected an input of rank >= 3 (batch, timesteps, ...), got shape %s", Layer.shape_str(input_shape))
  end
  if not self.layer.built then self.layer:build(fold(input_shape)) end
end

function TimeDistributed:call(x, kw)
  if x.nd < 3 then self:raise("expected an input of rank >= 3 (batch, timesteps, ...), got shape %s", Layer.shape_str(x:shape())) end
  local shape = x:shape()
  local y = self.layer(ops.reshape(x, fold(shape)), { training = kw.training })
  local ys = y:shape()
  local out = { shape[1], shape[2] }
  for i = 2, #ys do out[#out + 1] = ys[i] end
  return ops.reshape(y, out)
end

function TimeDistributed:compute_output_shape(input_shape)
  local inner = self.layer:compute_output_shape(fold(input_shape))
  local out = { input_shape[1], input_shape[2] }
  for i = 2, #inner do out[#out + 1] = inner[i] end
  return out
end

function TimeDistributed:get_config()
  local config = TimeDistributed.super.get_config(self)
  config.layer = require("klua.layers").serialize(self.layer)
  return config
end

return TimeDistributed
