-- simplernn.lua — SimpleRNN: h_t = activation(x_t · kernel + h_{t-1} ·
-- recurrent_kernel + bias) over (batch, timesteps, features), Keras's
-- weights; the sequence runs in one fused C op (src/ops/rnn.c).
local BaseRNN = require("klua.layers.base_rnn")

local SimpleRNN = BaseRNN:extend("SimpleRNN")

--- SimpleRNN(units, {activation="tanh", use_bias=true, return_sequences=false,
-- return_state=false, go_backwards=false, ...})
function SimpleRNN:__init(units, kw)
  BaseRNN.__init(self, "simple_rnn", units, kw, {})
end

function SimpleRNN:_bias_shape() return { self.units } end
function SimpleRNN:_num_states() return 1 end

function SimpleRNN:build(input_shape)
  self:_build_weights(input_shape, 1, { self.units })
end

function SimpleRNN:call(x, kw)
  local y, mask = self:_run(x, kw, self:_initial_states(x, kw, 1))
  return self:_outputs(y, mask, nil, kw.initial_state ~= nil)
end

return SimpleRNN
