-- simplernn.lua — SimpleRNN: h_t = activation(x_t · kernel + h_{t-1} ·
-- recurrent_kernel + bias) over (batch, timesteps, features), Keras's
-- weights; the sequence runs in one fused C op (src/ops/rnn.c); _cell_step
-- is the same step in ops, for recurrent_dropout (base_rnn.lua).
local ops = require("klua.ops")
local BaseRNN = require("klua.layers.base_rnn")

local SimpleRNN = BaseRNN:extend("SimpleRNN")

--- SimpleRNN{units, activation="tanh", use_bias=true, kernel_initializer="glorot_uniform",
-- recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=nil, recurrent_regularizer=nil,
-- bias_regularizer=nil, kernel_constraint=nil, recurrent_constraint=nil, bias_constraint=nil, dropout=0,
-- recurrent_dropout=0, seed=nil, return_sequences=false, return_state=false, go_backwards=false, stateful=false,
-- unroll=false, zero_output_for_mask=false, ...}: h_t = activation(x_t · kernel + h_{t-1} · recurrent_kernel + bias).
function SimpleRNN:__init(units, kw)
  BaseRNN.__init(self, "simple_rnn", units, kw, {})
end

function SimpleRNN:_bias_shape() return { self.units } end
function SimpleRNN:_num_states() return 1 end

function SimpleRNN:build(input_shape)
  self:_build_weights(input_shape, 1, { self.units })
end

-- One step: xt (N,U) holds x·kernel + bias; states {h}.
function SimpleRNN:_cell_step(xt, states, ctx)
  local h = states[1]
  if ctx.rmasks then h = h * ctx.rmasks[1] end
  return { self.activation(xt + ops.matmul(h, ctx.R[1])) }
end

return SimpleRNN
