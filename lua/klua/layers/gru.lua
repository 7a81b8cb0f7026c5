-- gru.lua — GRU: gated recurrent unit over (batch, timesteps, features), Keras
-- 3's default form (reset_after=true): kernel (features, 3*units),
-- recurrent_kernel (units, 3*units), bias (2, 3*units) = input and recurrent
-- biases, gates in the order z, r, h. One fused C op per call (src/ops/rnn.c).
local BaseRNN = require("klua.layers.base_rnn")

local GRU = BaseRNN:extend("GRU")

--- GRU(units, {activation="tanh", recurrent_activation="sigmoid", use_bias=true,
-- reset_after=true, return_sequences=false, return_state=false, go_backwards=false, ...})
function GRU:__init(units, kw)
  BaseRNN.__init(self, "gru", units, kw, { recurrent_activation = true })
  kw = type(units) == "table" and units or kw or {}
  if kw.reset_after == false then
    self:raise("reset_after=false is not supported (the fused kernel implements Keras 3's default, reset_after=true)")
  end
  self.reset_after = true
end

function GRU:_bias_shape() return { 2, 3 * self.units } end
function GRU:_num_states() return 1 end

function GRU:build(input_shape)
  self:_build_weights(input_shape, 3, { 2, 3 * self.units })
end

function GRU:call(x, kw)
  local y, mask = self:_run(x, kw, self:_initial_states(x, kw, 1))
  return self:_outputs(y, mask, nil, kw.initial_state ~= nil)
end

function GRU:get_config()
  local config = GRU.super.get_config(self)
  config.reset_after = true
  return config
end

return GRU
