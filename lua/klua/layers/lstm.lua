-- lstm.lua — LSTM: long short-term memory over (batch, timesteps, features),
-- Keras's weights: kernel (features, 4*units), recurrent_kernel (units,
-- 4*units), bias (4*units), gates in the order i, f, c, o. The whole sequence
-- and its backward run in one fused C op (src/ops/rnn.c); _cell_step is the
-- same step in ops, for recurrent_dropout (base_rnn.lua).
local core = require("klua.core")
local ops = require("klua.ops")
local tensor = require("klua.tensor")
local BaseRNN = require("klua.layers.base_rnn")

local LSTM = BaseRNN:extend("LSTM")

--- LSTM{units, activation="tanh", recurrent_activation="sigmoid", use_bias=true, kernel_initializer="glorot_uniform",
-- recurrent_initializer="orthogonal", bias_initializer="zeros", unit_forget_bias=true, kernel_regularizer=nil,
-- recurrent_regularizer=nil, bias_regularizer=nil, kernel_constraint=nil, recurrent_constraint=nil, bias_constraint=nil,
-- dropout=0, recurrent_dropout=0, seed=nil, return_sequences=false, return_state=false, go_backwards=false,
-- stateful=false, unroll=false, zero_output_for_mask=false, ...}: long short-term memory over (batch, timesteps, features).
function LSTM:__init(units, kw)
  BaseRNN.__init(self, "lstm", units, kw, { recurrent_activation = true })
  kw = type(units) == "table" and units or kw or {}
  self.unit_forget_bias = kw.unit_forget_bias ~= false
end

function LSTM:_bias_shape() return { 4 * self.units } end
function LSTM:_num_states() return 2 end
function LSTM:_state_cols() return { self.units + 1 } end   -- c follows h in the packed output

function LSTM:build(input_shape)
  local init = self.bias_initializer
  if self.unit_forget_bias then
    -- Keras: the forget gate's bias starts at one.
    local u, base = self.units, self.bias_initializer
    init = function()
      return ops.concatenate({ core.to_tensor(base({ u })), tensor.ones({ u }), core.to_tensor(base({ 2 * u })) }, 1)
    end
  end
  self:_build_weights(input_shape, 4, { 4 * self.units }, init)
end

-- One step: xt (N,4U) holds x·kernel + bias; states {h, c}.
function LSTM:_cell_step(xt, states, ctx)
  local h, c = states[1], states[2]
  local z = {}
  for k = 1, 4 do
    local hk = ctx.rmasks and h * ctx.rmasks[k] or h
    z[k] = self:_gate(xt, k) + ops.matmul(hk, ctx.R[k])
  end
  local ract, act = self.recurrent_activation, self.activation
  c = ract(z[2]) * c + ract(z[1]) * act(z[3])
  return { ract(z[4]) * act(c), c }
end

function LSTM:get_config()
  local config = LSTM.super.get_config(self)
  config.unit_forget_bias = self.unit_forget_bias
  return config
end

return LSTM
