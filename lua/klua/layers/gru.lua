-- gru.lua — GRU: gated recurrent unit over (batch, timesteps, features) in
-- both of Keras's forms: reset_after=true (the default) with bias (2, 3*units)
-- = input and recurrent biases, and reset_after=false (the reset gate applied
-- to the state before the product) with bias (3*units). kernel (features,
-- 3*units), recurrent_kernel (units, 3*units), gates in the order z, r, h.
-- One fused C op per call (src/ops/rnn.c); _cell_step is the same step in
-- ops, for recurrent_dropout (base_rnn.lua).
local ops = require("klua.ops")
local BaseRNN = require("klua.layers.base_rnn")

local GRU = BaseRNN:extend("GRU")

--- GRU{units, activation="tanh", recurrent_activation="sigmoid", use_bias=true, kernel_initializer="glorot_uniform",
-- recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=nil, recurrent_regularizer=nil,
-- bias_regularizer=nil, kernel_constraint=nil, recurrent_constraint=nil, bias_constraint=nil, dropout=0,
-- recurrent_dropout=0, seed=nil, return_sequences=false, return_state=false, go_backwards=false, stateful=false,
-- unroll=false, reset_after=true, zero_output_for_mask=false, ...}: gated recurrent unit over (batch, timesteps, features).
function GRU:__init(units, kw)
  BaseRNN.__init(self, "gru", units, kw, { recurrent_activation = true })
  kw = type(units) == "table" and units or kw or {}
  self.reset_after = kw.reset_after ~= false
end

function GRU:_bias_shape() return self.reset_after and { 2, 3 * self.units } or { 3 * self.units } end
function GRU:_num_states() return 1 end

function GRU:build(input_shape)
  self:_build_weights(input_shape, 3, self:_bias_shape())
end

-- One step: xt (N,3U) holds x·kernel + input bias; states {h}.
function GRU:_cell_step(xt, states, ctx)
  local h = states[1]
  local function hk(k) return ctx.rmasks and h * ctx.rmasks[k] or h end
  local rz, rr = ops.matmul(hk(1), ctx.R[1]), ops.matmul(hk(2), ctx.R[2])
  if self.reset_after then rz, rr = rz + ctx.rb[1], rr + ctx.rb[2] end
  local z = self.recurrent_activation(self:_gate(xt, 1) + rz)
  local r = self.recurrent_activation(self:_gate(xt, 2) + rr)
  local rh
  if self.reset_after then
    rh = r * (ops.matmul(hk(3), ctx.R[3]) + ctx.rb[3])
  else
    rh = ops.matmul(r * hk(3), ctx.R[3])
  end
  local hh = self.activation(self:_gate(xt, 3) + rh)
  return { z * h + (1 - z) * hh }
end

function GRU:get_config()
  local config = GRU.super.get_config(self)
  config.reset_after = self.reset_after
  return config
end

return GRU
