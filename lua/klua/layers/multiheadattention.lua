-- multiheadattention.lua — MultiHeadAttention as Keras 3: query, key and value
-- projections with kernels (dim, num_heads, key_dim) and biases (num_heads,
-- key_dim), scaled dot-product attention per head with masks, dropout on the
-- attention weights when training, and an output projection (num_heads,
-- value_dim, output_dim). The attention itself is one fused C op over every
-- (batch, head) on the projections' own (B,T,heads,dim) layout
-- (src/ops/attention.c: nn.attention, or nn.attention_context when the scores
-- are not returned, so that the backward builds no gradient for them); only
-- dropout on the attention weights while training takes the path composed
-- from batched matmuls and softmax.
--   mha(query, value[, key], {attention_mask=, use_causal_mask=, return_attention_scores=, training=})
local core = require("klua.core")
local Layer = require("klua.layer")
local ops = require("klua.ops")
local nn = require("klua.nn")
local initializers = require("klua.initializers")
local regularizers = require("klua.regularizers")
local constraints = require("klua.constraints")
local random = require("klua.random")

local MultiHeadAttention = Layer:extend("MultiHeadAttention")

--- MultiHeadAttention{num_heads, key_dim, value_dim=key_dim, dropout=0, use_bias=true, output_shape=nil,
-- attention_axes=nil, kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=nil,
-- bias_regularizer=nil, kernel_constraint=nil, bias_constraint=nil, seed=nil, ...}: Keras's multi-head attention,
-- called as mha(query, value[, key], {attention_mask=, use_causal_mask=, return_attention_scores=}).
function MultiHeadAttention:__init(num_heads, key_dim, kw)
  num_heads, key_dim, kw = nn.args2(num_heads, key_dim, kw, "num_heads", "key_dim")
  MultiHeadAttention.super.__init(self, kw)
  local function pos(key, v)
    if type(v) ~= "number" or v < 1 or v % 1 ~= 0 then
      self:raise("%s must be a positive integer. Received: %s=%s", key, key, tostring(v))
    end
    return v
  end
  self.num_heads = pos("num_heads", num_heads)
  self.key_dim = pos("key_dim", key_dim)
  self.value_dim = pos("value_dim", kw.value_dim or key_dim)
  local rate = kw.dropout or 0
  if type(rate) ~= "number" or rate < 0 or rate >= 1 then self:raise("dropout must be in [0, 1). Received: dropout=%s", tostring(rate)) end
  self.dropout = rate
  self.use_bias = kw.use_bias ~= false
  if kw.output_shape ~= nil then
    local s = type(kw.output_shape) == "table" and kw.output_shape[1] or kw.output_shape
    if type(kw.output_shape) == "table" and #kw.output_shape ~= 1 then
      self:raise("only a 1-d output_shape is supported. Received: output_shape=%s", Layer.shape_str(kw.output_shape))
    end
    self.output_dim = pos("output_shape", s)
  end
  if kw.attention_axes ~= nil then self:raise("attention_axes is not supported (attention runs over the time axis)") end
  self.kernel_initializer = initializers.get(kw.kernel_initializer or "glorot_uniform")
  self.bias_initializer = initializers.get(kw.bias_initializer or "zeros")
  self.kernel_regularizer = regularizers.get(kw.kernel_regularizer)
  self.bias_regularizer = regularizers.get(kw.bias_regularizer)
  self.kernel_constraint = constraints.get(kw.kernel_constraint)
  self.bias_constraint = constraints.get(kw.bias_constraint)
  self.seed = kw.seed
  if self.seed ~= nil then
    if type(self.seed) ~= "number" or self.seed % 1 ~= 0 then
      self:raise("seed must be an integer. Received: seed=%s", tostring(self.seed))
    end
    self.seed_generator = random.Generator(self.seed)   -- the attention dropout's own stream
  end
  self.supports_masking = true
end

function MultiHeadAttention:_dense(name, shape, bias_shape)
  local k = self:add_weight{ shape = shape, initializer = self.kernel_initializer, name = name .. "/kernel",
    regularizer = self.kernel_regularizer, constraint = self.kernel_constraint }
  local b
  if self.use_bias then
    b = self:add_weight{ shape = bias_shape, initializer = self.bias_initializer, name = name .. "/bias",
      regularizer = self.bias_regularizer, constraint = self.bias_constraint }
  end
  return k, b
end

local function last(shape, self, what)
  if #shape ~= 3 then self:raise("expected %s of rank 3 (batch, steps, features), got shape %s", what, Layer.shape_str(shape)) end
  return shape[3]
end

function MultiHeadAttention:build(query_shape, value_shape, key_shape)
  value_shape = value_shape or query_shape
  key_shape = key_shape or value_shape
  local dq, dv, dk = last(query_shape, self, "query"), last(value_shape, self, "value"), last(key_shape, self, "key")
  local H, K, V = self.num_heads, self.key_dim, self.value_dim
  self.query_kernel, self.query_bias = self:_dense("query", { dq, H, K }, { H, K })
  self.key_kernel, self.key_bias = self:_dense("key", { dk, H, K }, { H, K })
  self.value_kernel, self.value_bias = self:_dense("value", { dv, H, V }, { H, V })
  local out = self.output_dim or dq
  self.output_kernel, self.output_bias = self:_dense("attention_output", { H, V, out }, { out })
end

-- rows (M,D) @ w (D,N) + b (N) as one fused op (a plain matmul without a bias)
local function affine(x, w, b)
  if b then return core.op("linear", x, w, b) end
  return ops.matmul(x, w)
end

-- x (B,T,D) · kernel (D,H,K) + bias (H,K) -> (B,T,H,K), the layout the fused attention takes
local function project(x, kernel, bias, H, K)
  local B, T, D = tonumber(x.dims[0]), tonumber(x.dims[1]), tonumber(x.dims[2])
  local y = affine(ops.reshape(x, { B * T, D }), ops.reshape(kernel, { D, H * K }), bias and ops.reshape(bias, { H * K }))
  return ops.reshape(y, { B, T, H, K })
end

-- Keras's mask rules: query/value/key masks (from the inputs), the causal
-- mask and attention_mask combine into one mask of 1 = attend, (B,Tq,Tv) or,
-- from a per-head attention_mask, (B,H,Tq,Tv).
local function attention_mask(query, value, key, kw)
  local m = kw.attention_mask and core.to_tensor(kw.attention_mask) or nil
  local function both(a) if m == nil then m = a else m = m * a end end
  local qm = kw.query_mask or Layer.get_mask(query)
  local vm = kw.value_mask or Layer.get_mask(value)
  local km = kw.key_mask or (key ~= value and Layer.get_mask(key) or nil)
  if qm then both(ops.expand_dims(core.to_tensor(qm), 3)) end
  if vm then both(ops.expand_dims(core.to_tensor(vm), 2)) end
  if km then both(ops.expand_dims(core.to_tensor(km), 2)) end
  if kw.use_causal_mask then
    local tq, tv = tonumber(query.dims[1]), tonumber(value.dims[1])
    local rows = ops.reshape(require("klua.tensor").arange(tq), { tq, 1 })
    local cols = ops.reshape(require("klua.tensor").arange(tv), { 1, tv })
    both(ops.reshape(ops.greater_equal(rows, cols), { 1, tq, tv }))
  end
  return m
end

-- The attention as batched matmuls and softmax: q (B,Tq,H,K), k (B,Tv,H,K),
-- v (B,Tv,H,V) -> context (B,Tq,H,V) and probabilities (B,H,Tq,Tv), with
-- dropout on the probabilities when training. The fused op computes the same.
function MultiHeadAttention:_composed_attention(q, k, v, mask, training)
  local tr = { 1, 3, 2, 4 }
  local scores = ops.matmul(ops.transpose(q, tr) * (1 / math.sqrt(self.key_dim)), ops.transpose(k, tr), { transpose_b = true })
  if mask ~= nil then
    -- Keras's masked softmax: masked logits get -1e9 added; a mask without
    -- a heads axis ((B,Tq,Tv), (Tq,Tv)) is the same for every head.
    if mask.nd < 4 then
      local s = mask:shape()
      while #s < 3 do table.insert(s, 1, 1) end
      mask = ops.reshape(mask, { s[1], 1, s[2], s[3] })
    end
    scores = scores + (1 - mask) * -1e9
  end
  local probs = ops.softmax(scores, -1)
  local attn = probs
  if training and self.dropout > 0 then
    local keep = 1 - self.dropout
    attn = probs * (random.bernoulli(probs:shape(), keep, { seed = rawget(self, "seed_generator") or random.process_stream() }) / keep)
  end
  return ops.transpose(ops.matmul(attn, ops.transpose(v, tr)), tr), probs
end

function MultiHeadAttention:call(query, ...)
  local rest = { ... }
  local kw = {}
  if type(rest[#rest]) == "table" then kw = table.remove(rest) end
  local value = rest[1] or query
  local key = rest[2] or value
  for _, p in ipairs { { query, "query" }, { value, "value" }, { key, "key" } } do
    if p[1].nd ~= 3 then self:raise("expected %s of rank 3 (batch, steps, features), got shape %s", p[2], Layer.shape_str(p[1]:shape())) end
  end
  local H, K, V = self.num_heads, self.key_dim, self.value_dim
  local q = project(query, self.query_kernel, self.query_bias, H, K)   -- (B,Tq,H,K)
  local k = project(key, self.key_kernel, self.key_bias, H, K)         -- (B,Tv,H,K)
  local v = project(value, self.value_kernel, self.value_bias, H, V)   -- (B,Tv,H,V)
  local mask = attention_mask(query, value, key, kw)
  local ctx, probs
  -- layer._composed = true forces the composed path (the specs compare the two)
  if (kw.training and self.dropout > 0) or rawget(self, "_composed") then
    ctx, probs = self:_composed_attention(q, k, v, mask, kw.training)
  elseif kw.return_attention_scores then
    ctx, probs = nn.attention(q, k, v, mask, 1 / math.sqrt(K))
  else   -- the common case: no gradient for the probabilities to build
    ctx = nn.attention_context(q, k, v, mask, 1 / math.sqrt(K))
  end
  local B, Tq, out_dim = tonumber(query.dims[0]), tonumber(query.dims[1]), tonumber(self.output_kernel.dims[2])
  local out = affine(ops.reshape(ctx, { B * Tq, H * V }), ops.reshape(self.output_kernel, { H * V, out_dim }), self.output_bias)
  out = ops.reshape(out, { B, Tq, out_dim })
  if kw.return_attention_scores then return out, probs end
  return out
end

function MultiHeadAttention:compute_mask(inputs, mask) return mask end

function MultiHeadAttention:compute_output_shape(query_shape)
  return { query_shape[1], query_shape[2], self.output_dim or query_shape[3] }
end

function MultiHeadAttention:get_config()
  local config = MultiHeadAttention.super.get_config(self)
  config.num_heads = self.num_heads
  config.key_dim = self.key_dim
  config.value_dim = self.value_dim
  config.dropout = self.dropout
  config.use_bias = self.use_bias
  config.output_shape = self.output_dim and { self.output_dim } or nil
  Layer._weight_options_config(self, config, { "kernel", "bias" })
  config.seed = self.seed
  return config
end

return MultiHeadAttention
