-- base_rnn.lua — BaseRNN, the shared part of SimpleRNN, LSTM and GRU: Keras's
-- arguments (units, activations, initializers, return_sequences, return_state,
-- go_backwards, dropout, recurrent_dropout, stateful, masks, initial_state)
-- around one fused C op per call that runs the whole sequence (src/ops/rnn.c).
-- Subclasses say which op, how many gates and states, how to build the
-- weights, and one cell step written with ops (_cell_step). Not registered.
--
-- Call: layer(x, {mask=, training=, initial_state={h[, c]}}) with x
-- (batch, timesteps, features). Returns the last output (batch, units) or the
-- sequence (batch, timesteps, units); with return_state also the final states.
-- Where the mask is 0 the state is carried over (Keras semantics).
--
-- recurrent_dropout > 0 while training runs the sequence step by step with
-- ops instead (the fused kernels take no per-gate masks), as Keras's
-- implementation 1: one mask per gate for the inputs and one per gate for
-- the recurrent state (SimpleRNN: one each), fixed over the timesteps of a
-- call. stateful = true keeps the final states in `layer.states` (Variables,
-- not trainable and, as in Keras 3, not among the layer's weights) and starts
-- the next call from them; reset_states() zeroes them.
local core = require("klua.core")
local Layer = require("klua.layer")
local ops = require("klua.ops")
local nn = require("klua.nn")
local activations = require("klua.activations")
local initializers = require("klua.initializers")
local regularizers = require("klua.regularizers")
local constraints = require("klua.constraints")
local random = require("klua.random")
local tensor = require("klua.tensor")
local variable = require("klua.variable")

local BaseRNN = Layer:extend("BaseRNN")
BaseRNN.input_spec = { ndim = 3, layout = "(batch, timesteps, features)" }   -- one tensor (Keras's input_spec)
local unpack = unpack or table.unpack

local zeros = tensor.zeros

-- (T-1, ..., 0): reverses the time axis with ops.take (cached per length).
local index_cache = setmetatable({}, { __mode = "v" })
local function reversed_index(t)
  if type(t) ~= "number" or t < 0 or t % 1 ~= 0 or t > 2 ^ 31 then
    core.raise("reversed_index: t must be a number of timesteps (a non-negative integer), got " .. core.describe(t))
  end
  local idx = index_cache[t]
  if not idx then
    local list = {}
    for i = 1, t do list[i] = t - i end
    idx = core.to_tensor(list)
    index_cache[t] = idx
  end
  return idx
end
BaseRNN.reversed_index = reversed_index

-- kind: "lstm", "gru" or "simple_rnn"; opts.recurrent_activation: the cell
-- has a recurrent activation (LSTM, GRU).
function BaseRNN:__init(kind, units, kw, opts)
  units, kw = nn.args(units, kw, "units")
  BaseRNN.super.__init(self, kw)
  if type(units) ~= "number" or units < 1 or units % 1 ~= 0 then
    self:raise("units must be a positive integer. Received: units=%s", tostring(units))
  end
  local cname = Layer.class_name(self)
  self.kind, self.units = kind, units
  self.activation = activations.get(kw.activation == nil and "tanh" or kw.activation)
  self._act_code = nn.rnn_activation_code(activations.serialize(self.activation), cname)
  if opts.recurrent_activation then
    local ra = kw.recurrent_activation == nil and "sigmoid" or kw.recurrent_activation
    self.recurrent_activation = activations.get(ra)
    self._ract_code = nn.rnn_activation_code(activations.serialize(self.recurrent_activation), cname)
  end
  self.use_bias = kw.use_bias ~= false
  self.kernel_initializer = initializers.get(kw.kernel_initializer or "glorot_uniform")
  self.recurrent_initializer = initializers.get(kw.recurrent_initializer or "orthogonal")
  self.bias_initializer = initializers.get(kw.bias_initializer or "zeros")
  self.kernel_regularizer = regularizers.get(kw.kernel_regularizer)
  self.recurrent_regularizer = regularizers.get(kw.recurrent_regularizer)
  self.bias_regularizer = regularizers.get(kw.bias_regularizer)
  self.kernel_constraint = constraints.get(kw.kernel_constraint)
  self.recurrent_constraint = constraints.get(kw.recurrent_constraint)
  self.bias_constraint = constraints.get(kw.bias_constraint)
  local function rate(key)
    local v = kw[key] or 0
    if type(v) ~= "number" or v < 0 or v >= 1 then self:raise("%s must be a number in [0, 1). Received: %s=%s", key, key, tostring(v)) end
    return v
  end
  self.dropout = rate("dropout")
  self.recurrent_dropout = rate("recurrent_dropout")
  self.seed = kw.seed
  if self.seed ~= nil then
    if type(self.seed) ~= "number" or self.seed % 1 ~= 0 then
      self:raise("seed must be an integer. Received: seed=%s", tostring(self.seed))
    end
    self.seed_generator = random.Generator(self.seed)   -- the dropout masks' own stream
  end
  self.return_sequences = kw.return_sequences == true
  self.return_state = kw.return_state == true
  self.go_backwards = kw.go_backwards == true
  self.zero_output_for_mask = kw.zero_output_for_mask == true
  self.unroll = kw.unroll == true     -- accepted for compatibility; the C kernel never unrolls
  self.stateful = kw.stateful == true
  -- layer.states is set with rawset when made: untracked, so not among the weights (Keras 3)
  self.supports_masking = true
end

function BaseRNN:_input_dim(input_shape)
  if #input_shape ~= 3 then
    self:raise("expected an input of rank 3 (batch, timesteps, features), got shape %s", Layer.shape_str(input_shape))
  end
  local d = input_shape[3]
  if d == nil or d < 1 then self:raise("the feature dimension must be known, got shape %s", Layer.shape_str(input_shape)) end
  return d
end

function BaseRNN:_add(name, shape, init, reg, con)
  return self:add_weight{ shape = shape, initializer = init, name = name, regularizer = reg, constraint = con }
end

-- Weights in Keras's order: kernel, recurrent_kernel, bias; gates = 4 (LSTM), 3 (GRU), 1.
function BaseRNN:_build_weights(input_shape, gates, bias_shape, bias_init)
  local d, u = self:_input_dim(input_shape), self.units
  self.kernel = self:_add("kernel", { d, gates * u }, self.kernel_initializer, self.kernel_regularizer, self.kernel_constraint)
  self.recurrent_kernel = self:_add("recurrent_kernel", { u, gates * u }, self.recurrent_initializer,
    self.recurrent_regularizer, self.recurrent_constraint)
  if self.use_bias then
    self.bias = self:_add("bias", bias_shape, bias_init or self.bias_initializer, self.bias_regularizer, self.bias_constraint)
  end
  -- Keras: a stateful layer built with a known batch size makes its states
  -- now; with an unknown one (-1), at its first call.
  if self.stateful and (input_shape[1] or -1) > 0 then self:_state_variables(input_shape[1]) end
end

-- Stateful layers ------------------------------------------------------------

-- The state Variables for batch size n: made on first use (zeros), then the
-- batch size is fixed.
function BaseRNN:_state_variables(n)
  local states = rawget(self, "states")
  if states == nil then
    states = {}
    for i = 1, self:_num_states() do
      states[i] = variable.new(zeros({ n, self.units }), { name = "rnn_state", trainable = false,
        path = rawget(self, "name") .. "/rnn_state" .. (i > 1 and "_" .. (i - 1) or "") })
    end
    rawset(self, "states", states)
  end
  local want = tonumber(states[1].dims[0])
  if want ~= n then
    self:raise("a stateful layer keeps its batch size: expected batch size %d (that of its states), got %d", want, n)
  end
  return states
end

--- layer:reset_states([states]): zeroes the states of a stateful layer, or
-- sets them to the given tensors (a list, or one tensor for a single state),
-- each (batch, units). Without states, a layer with none is left alone (Keras 3).
function BaseRNN:reset_states(values)
  if values == nil then
    for _, v in ipairs(rawget(self, "states") or {}) do v:assign(zeros(v:shape())) end
    return
  end
  if not self.stateful then self:raise("reset_states: the layer is not stateful (stateful=false)") end
  if core.is_tensor(values) or (type(values) == "table" and type(values[1]) == "number") then values = { values } end
  local k = self:_num_states()
  if type(values) ~= "table" or #values ~= k then
    self:raise("reset_states: expected %d state tensor%s, got %s", k, k == 1 and "" or "s",
      type(values) == "table" and tostring(#values) or type(values))
  end
  local list = {}
  for i = 1, k do
    list[i] = core.to_tensor(values[i])
    if list[i].nd ~= 2 or tonumber(list[i].dims[1]) ~= self.units then
      self:raise("reset_states: state %d must have shape (batch, %d), got %s", i, self.units, Layer.shape_str(list[i]:shape()))
    end
  end
  local states = self:_state_variables(tonumber(list[1].dims[0]))
  for i = 1, k do
    if tonumber(list[i].dims[0]) ~= tonumber(states[1].dims[0]) then
      self:raise("reset_states: state %d must have shape (%d,%d), got %s", i, tonumber(states[1].dims[0]), self.units,
        Layer.shape_str(list[i]:shape()))
    end
    states[i]:assign(list[i])
  end
end
BaseRNN.reset_state = BaseRNN.reset_states

-- The states a call starts from: kw.initial_state, else a stateful layer's
-- states (copies: the kernels' backward reads them after they are updated),
-- else zeros.
function BaseRNN:_initial_states(x, kw, nstates)
  local n, u = tonumber(x.dims[0]), self.units
  local init = kw and kw.initial_state
  if self.stateful then
    local states = self:_state_variables(n)
    if init == nil then
      local out = {}
      for i = 1, nstates do out[i] = states[i]:value() end
      return out
    end
  end
  if init ~= nil and core.is_tensor(init) then init = { init } end
  local out = {}
  for i = 1, nstates do
    local s = init and init[i]
    if s == nil then
      out[i] = zeros({ n, u })
    else
      s = core.to_tensor(s)
      if s.nd ~= 2 or s.dims[0] ~= n or s.dims[1] ~= u then
        self:raise("initial_state[%d] must have shape (%d,%d), got %s", i, n, u, Layer.shape_str(s:shape()))
      end
      out[i] = s
    end
  end
  if init and #init ~= nstates then
    self:raise("expected %d initial state tensor%s, got %d", nstates, nstates == 1 and "" or "s", #init)
  end
  return out
end

-- Run the fused op; returns the packed output and the mask used (or nil).
function BaseRNN:_run(x, kw, states)
  if x.nd ~= 3 then self:raise("expected an input of rank 3 (batch, timesteps, features), got shape %s", Layer.shape_str(x:shape())) end
  local d = tonumber(self.kernel.dims[0])
  if tonumber(x.dims[2]) ~= d then
    self:raise("expected %d input features (last axis), got input shape %s", d, Layer.shape_str(x:shape()))
  end
  local n, t = tonumber(x.dims[0]), tonumber(x.dims[1])
  local mask = kw.mask
  if mask ~= nil then
    mask = core.to_tensor(mask)
    if mask.nd ~= 2 or tonumber(mask.dims[0]) ~= n or tonumber(mask.dims[1]) ~= t then
      self:raise("expected a mask of shape (%d,%d), got %s", n, t, Layer.shape_str(mask:shape()))
    end
  end
  if (kw.training and self.recurrent_dropout > 0) or rawget(self, "_step_by_step") then
    return self:_run_steps(x, kw.training, states, mask), mask
  end
  if kw.training and self.dropout > 0 then
    -- Keras 3: one input mask per sequence, the same at every timestep.
    local keep = 1 - self.dropout
    local m = random.bernoulli({ n, 1, d }, keep, { seed = rawget(self, "seed_generator") or random.process_stream() })
    x = x * (m / keep)
  end
  local bias = self.bias or self:_zero_bias()
  local inputs = { x, self.kernel, self.recurrent_kernel, bias }
  for _, s in ipairs(states) do inputs[#inputs + 1] = s end
  if mask ~= nil then inputs[#inputs + 1] = mask end
  local y = nn.rnn(self.kind, inputs, { go_backwards = self.go_backwards, activation = self._act_code,
    recurrent_activation = self._ract_code or 1, reset_after = self.reset_after })
  return y, mask
end

-- A dropout mask (0 or 1/keep) of the given shape from the layer's stream.
function BaseRNN:_dropout_mask(shape, rate)
  local keep = 1 - rate
  return random.bernoulli(shape, keep, { seed = rawget(self, "seed_generator") or random.process_stream() }) / keep
end

-- Columns (k-1)*units+1 .. k*units of the last axis: gate k's block.
function BaseRNN:_gate(w, k)
  local u = self.units
  return ops.slice_axis(w, -1, (k - 1) * u + 1, k * u)
end

-- The sequence step by step with ops (the tape derives the gradients): the
-- path for recurrent_dropout while training. Same packed layout as far as
-- _outputs reads it: h in columns 1..units, then LSTM's c. Masks as in
-- Keras's implementation 1: `gates` masks each (SimpleRNN: one), drawn
-- inputs first, then recurrent, once per call.
function BaseRNN:_run_steps(x, training, states, mask)
  local n, t, d = tonumber(x.dims[0]), tonumber(x.dims[1]), tonumber(x.dims[2])
  local u, g = self.units, tonumber(self.kernel.dims[1])
  local count = self.kind == "simple_rnn" and 1 or g / u
  local kernel, bias = self.kernel, self.bias or self:_zero_bias()
  local xw
  if training and self.dropout > 0 then
    local parts = {}
    for k = 1, count do
      local m = self:_dropout_mask({ n, 1, d }, self.dropout)
      local xk = ops.reshape(x * m, { n * t, d })
      parts[k] = ops.matmul(xk, count == 1 and kernel or self:_gate(kernel, k))
    end
    xw = count == 1 and parts[1] or ops.concatenate(parts, 2)
  else
    xw = ops.matmul(ops.reshape(x, { n * t, d }), kernel)
  end
  local ctx = { R = {}, rb = {} }
  local in_bias = bias
  if bias.nd == 2 then   -- GRU reset_after: input and recurrent biases
    in_bias = ops.reshape(ops.slice_axis(bias, 1, 1, 1), { g })
    local rec_bias = ops.reshape(ops.slice_axis(bias, 1, 2, 2), { g })
    for k = 1, count do ctx.rb[k] = self:_gate(rec_bias, k) end
  end
  xw = ops.reshape(xw + in_bias, { n, t, g })
  for k = 1, count do ctx.R[k] = count == 1 and self.recurrent_kernel or self:_gate(self.recurrent_kernel, k) end
  if training and self.recurrent_dropout > 0 then
    ctx.rmasks = {}
    for k = 1, count do ctx.rmasks[k] = self:_dropout_mask({ n, u }, self.recurrent_dropout) end
  end
  local rows = {}
  for s = 1, t do
    local ti = self.go_backwards and t - s + 1 or s
    local new = self:_cell_step(ops.reshape(ops.slice_axis(xw, 2, ti, ti), { n, g }), states, ctx)
    if mask ~= nil then   -- carry the state where the step is masked
      local m = ops.slice_axis(mask, 2, ti, ti)
      for i = 1, #new do new[i] = new[i] * m + states[i] * (1 - m) end
    end
    states = new
    rows[s] = #new > 1 and ops.concatenate(new, 2) or new[1]
  end
  return ops.stack(rows, 2)
end

-- Shared call: the sequence, then the outputs; subclasses give _state_cols.
function BaseRNN:call(x, kw)
  local y, mask = self:_run(x, kw, self:_initial_states(x, kw, self:_num_states()))
  return self:_outputs(y, mask, self._state_cols and self:_state_cols() or nil, kw.initial_state ~= nil or self.stateful)
end

-- The mask in processing order (reversed with go_backwards).
function BaseRNN:_processing_mask(mask)
  if self.go_backwards then return ops.take(mask, reversed_index(tonumber(mask.dims[1])), 2) end
  return mask
end

-- 1 from each sequence's first unmasked step on: Keras repeats the previous
-- *output* at masked steps, which is zeros before any step ran even when a
-- given initial state is carried. (N,T) @ upper-triangular ones, clipped.
local function seen_mask(m)
  local t = tonumber(m.dims[1])
  local ar = require("klua.tensor").arange(t)
  local tri = ops.greater_equal(ops.reshape(ar, { 1, t }), ops.reshape(ar, { t, 1 }))
  return ops.clip(ops.matmul(m, tri), 0, 1)
end

-- Outputs from the packed result (h is columns 1..units of each step);
-- state_cols: the first column of each further state (LSTM's c).
function BaseRNN:_outputs(y, mask, state_cols, given_state)
  local u, n, t = self.units, tonumber(y.dims[0]), tonumber(y.dims[1])
  local last = ops.slice_axis(y, 2, t, t)
  local h_last = ops.reshape(ops.slice_axis(last, 3, 1, u), { n, u })
  local pm = mask ~= nil and self:_processing_mask(mask) or nil
  local keep = pm ~= nil and given_state and seen_mask(pm) or nil
  local out
  if self.return_sequences then
    out = ops.slice_axis(y, 3, 1, u)
    if pm ~= nil and self.zero_output_for_mask then keep = pm end
    if keep ~= nil then out = out * ops.expand_dims(keep, 3) end
  else
    out = h_last
    if keep ~= nil then out = out * ops.slice_axis(keep, 2, t, t) end
  end
  local finals = { h_last }
  for _, col in ipairs(state_cols or {}) do
    finals[#finals + 1] = ops.reshape(ops.slice_axis(last, 3, col, col + u - 1), { n, u })
  end
  if self.stateful then
    local states = self:_state_variables(n)
    for i, v in ipairs(states) do v:assign(finals[i]) end
  end
  if not self.return_state then return out end
  return out, unpack(finals)
end

-- use_bias = false: the kernels still take a bias, so pass zeros (not a weight).
function BaseRNN:_zero_bias()
  local z = rawget(self, "_zbias")
  if not z then
    z = zeros(self:_bias_shape())
    rawset(self, "_zbias", z)
  end
  return z
end

function BaseRNN:compute_mask(inputs, mask)
  local out = self.return_sequences and mask or nil
  if self.return_state then
    local r = { out or false }
    for i = 1, self:_num_states() do r[i + 1] = false end
    return r
  end
  return out
end

function BaseRNN:compute_output_shape(input_shape)
  local n, u = input_shape[1], self.units
  local out = self.return_sequences and { n, input_shape[2], u } or { n, u }
  if not self.return_state then return out end
  local res = { out }
  for i = 1, self:_num_states() do res[i + 1] = { n, u } end
  return res
end

function BaseRNN:get_config()
  local config = BaseRNN.super.get_config(self)
  config.units = self.units
  config.activation = activations.serialize(self.activation)
  if self.recurrent_activation then config.recurrent_activation = activations.serialize(self.recurrent_activation) end
  config.use_bias = self.use_bias
  Layer._weight_options_config(self, config, { "kernel", "recurrent", "bias" })
  config.dropout = self.dropout
  config.recurrent_dropout = self.recurrent_dropout
  config.seed = self.seed
  config.return_sequences = self.return_sequences
  config.return_state = self.return_state
  config.go_backwards = self.go_backwards
  config.stateful = self.stateful
  config.unroll = self.unroll
  config.zero_output_for_mask = self.zero_output_for_mask
  return config
end

return BaseRNN
