-- gradcheck_spec.lua — every differentiable op in the registry (src/ops.def)
-- is checked against central finite differences. The spec loops over the
-- registry, so an op without a row here fails: add the row with the op.
local klua = require("klua")
local ffi = require("ffi")
local ops, core = klua.ops, klua.core

-- Inputs: values kept away from kinks (|x| >= 0.2), positive where asked.
local function signed(shape) local u = klua.random.uniform(shape, { minval = 0.2, maxval = 1 }); return u * (klua.random.bernoulli(shape, 0.5) * 2 - 1) end
local function positive(shape) return klua.random.uniform(shape, { minval = 0.5, maxval = 2 }) end
local function distinct(shape) -- values 0.1 apart: no ties within eps
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  return ops.reshape(klua.random.shuffle(klua.arange(n) * 0.1 - n * 0.05), shape)
end
local function idx(values) return function() return klua.tensor(values) end end
local function fixed(f) return f end

local function A(name, attrs) return function(...) return core.op(name, ...) end end

-- One or more cases per op: shapes (random signed inputs) or inputs (a list of
-- functions building each input), the call, and which inputs to check.
local rows = {}

-- elementwise unary
for _, n in ipairs { "neg", "exp", "sin", "cos", "tanh", "sigmoid", "relu", "softplus", "square", "abs", "sign", "copy", "floor", "ceil", "round" } do
  rows[n] = { { shapes = { { 2, 3 } }, call = function(x) return core.op(n, x) end } }
end
rows.log = { { inputs = { positive }, shapes = { { 2, 3 } }, call = function(x) return ops.log(x) end } }
rows.sqrt = { { inputs = { positive }, shapes = { { 2, 3 } }, call = function(x) return ops.sqrt(x) end } }
rows.clip = { { shapes = { { 3, 4 } }, inputs = { distinct }, call = function(x) return ops.clip(x, -0.55, 0.55) end } }
rows.scale = { { shapes = { { 4 } }, call = function(x) return x * 3 - 1 end } }
rows.pow_scalar = { { inputs = { positive }, shapes = { { 5 } }, call = function(x) return x ^ 1.5 end } }
rows._relu_grad = { { shapes = { { 2, 3 }, { 2, 3 } }, wrt = { 1 }, call = function(g, x) return core.op("_relu_grad", g, x) end } }
rows._sigmoid_grad = { { shapes = { { 2, 3 }, { 2, 3 } }, call = function(g, y) return core.op("_sigmoid_grad", g, y) end } }
rows._tanh_grad = { { shapes = { { 2, 3 }, { 2, 3 } }, call = function(g, y) return core.op("_tanh_grad", g, y) end } }

-- binary, with broadcasting both ways
for _, n in ipairs { "add", "sub", "mul" } do
  rows[n] = {
    { shapes = { { 2, 3 }, { 2, 3 } }, call = function(a, b) return core.op(n, a, b) end },
    { shapes = { { 2, 3 }, { 3 } }, call = function(a, b) return core.op(n, a, b) end },
    { shapes = { { 2, 1 }, { 1, 3 } }, call = function(a, b) return core.op(n, a, b) end },
  }
end
rows.div = {
  { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { signed, positive }, call = function(a, b) return a / b end },
  { shapes = { { 2, 3 }, { 1, 3 } }, inputs = { signed, positive }, call = function(a, b) return a / b end },
}
rows.pow = { { shapes = { { 2, 3 }, { 3 } }, inputs = { positive, signed }, call = function(a, b) return ops.power(a, b) end } }
rows.maximum = { { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { distinct, function(s) return distinct(s) + 0.05 end }, call = function(a, b) return ops.maximum(a, b) end } }
rows.minimum = { { shapes = { { 2, 3 }, { 3 } }, inputs = { distinct, function(s) return distinct(s) + 0.035 end }, call = function(a, b) return ops.minimum(a, b) end } }
-- mod: a kept inside (0.2, 0.8) of each period of b, away from the jumps
rows.mod = { { shapes = { { 2, 3 }, { 3 } }, inputs = { function(s) return klua.random.uniform(s, { minval = 1.2, maxval = 1.6 }) end, function(s) return klua.random.uniform(s, { minval = 0.95, maxval = 1.05 }) end }, call = function(a, b) return ops.mod(a, b) end } }
rows.where = { {
  shapes = { { 2, 3 }, { 2, 3 }, { 3 } }, wrt = { 2, 3 },
  inputs = { function(s) return klua.random.bernoulli(s, 0.5) end, signed, signed },
  call = function(c, a, b) return ops.where(c, a, b) end,
} }

-- reductions over all axes, each axis, and with keepdims
for _, n in ipairs { "sum", "mean", "logsumexp" } do
  rows[n] = {
    { shapes = { { 2, 3, 4 } }, call = function(x) return ops[n](x) end },
    { shapes = { { 2, 3, 4 } }, call = function(x) return ops[n](x, 1) end },
    { shapes = { { 2, 3, 4 } }, call = function(x) return ops[n](x, 2, true) end },
    { shapes = { { 2, 3, 4 } }, call = function(x) return ops[n](x, -1) end },
    { shapes = { { 2, 3, 4 } }, call = function(x) return ops[n](x, { 1, 3 }) end },
  }
end
for _, n in ipairs { "max", "min" } do
  rows[n] = {
    { shapes = { { 2, 3, 4 } }, inputs = { distinct }, call = function(x) return ops[n](x) end },
    { shapes = { { 2, 3, 4 } }, inputs = { distinct }, call = function(x) return ops[n](x, 2) end },
    { shapes = { { 2, 3, 4 } }, inputs = { distinct }, call = function(x) return ops[n](x, { 1, 3 }, true) end },
  }
end
rows.softmax = { { shapes = { { 2, 5 } }, call = function(x) return ops.softmax(x) end }, { shapes = { { 3, 2, 2 } }, call = function(x) return ops.softmax(x, 1) end } }
rows.log_softmax = { { shapes = { { 2, 5 } }, call = function(x) return ops.log_softmax(x) end }, { shapes = { { 3, 2, 2 } }, call = function(x) return ops.log_softmax(x, 2) end } }

-- linear algebra
rows.matmul = {
  { shapes = { { 2, 3 }, { 3, 4 } }, call = function(a, b) return ops.matmul(a, b) end },
  { shapes = { { 2, 2, 3 }, { 3, 4 } }, call = function(a, b) return ops.matmul(a, b) end },
  { shapes = { { 2, 2, 3 }, { 2, 3, 2 } }, call = function(a, b) return ops.matmul(a, b) end },
  { shapes = { { 3, 2 }, { 4, 3 } }, call = function(a, b) return ops.matmul(a, b, { transpose_a = true, transpose_b = true }) end },
  { shapes = { { 3, 2 }, { 3, 4 } }, call = function(a, b) return ops.matmul(ops.transpose(a), b) end },
}

-- the fused dense layer, with each activation (inputs kept away from relu's kink by the bias)
rows.linear = {
  { shapes = { { 3, 4 }, { 4, 2 }, { 2 } }, call = function(x, w, b) return core.op("linear", x, w, b, { ints = { 0 } }) end },
  { shapes = { { 1, 4 }, { 4, 3 }, { 3 } }, call = function(x, w, b) return core.op("linear", x, w, b, { ints = { 2 } }) end },
  { shapes = { { 3, 2 }, { 2, 2 }, { 2 } }, inputs = { function(s) return klua.full(s, 0.5) end, function(s) return klua.full(s, 0.3) end, function(s) return klua.tensor { 0.4, -0.9 } end },
    call = function(x, w, b) return core.op("linear", x, w, b, { ints = { 1 } }) end },
}

-- shapes and indexing
rows.reshape = { { shapes = { { 2, 3 } }, call = function(x) return ops.reshape(x, { 3, -1 }) end } }
rows.transpose = { { shapes = { { 2, 3, 4 } }, call = function(x) return ops.transpose(x, { 3, 1, 2 }) end } }
rows.slice = { { shapes = { { 4, 3 } }, call = function(x) return ops.slice_axis(x, 1, 2, 3) end }, { shapes = { { 3, 5 } }, call = function(x) return ops.slice_axis(x, 2, 1, 5, 2) end } }
rows.broadcast_to = { { shapes = { { 3, 1 } }, call = function(x) return ops.broadcast_to(x, { 2, 3, 4 }) end } }
rows._unslice = { { shapes = { { 2, 3 } }, call = function(x) return core.op("_unslice", x, nil, nil, { ints = { 0, 1, 3, 1, 2, 4, 3 } }) end } }
rows.concatenate = { { shapes = { { 2, 3 }, { 1, 3 } }, call = function(a, b) return ops.concatenate({ a, b }, 1) end }, { shapes = { { 2, 3 }, { 2, 2 } }, call = function(a, b) return ops.concatenate({ a, b }, -1) end } }
rows.stack = { { shapes = { { 2, 3 }, { 2, 3 } }, call = function(a, b) return ops.stack({ a, b }, 2) end } }
rows.take = { { shapes = { { 4, 3 }, { 5 } }, wrt = { 1 }, inputs = { signed, idx { 3, 0, 0, 2, 1 } }, call = function(x, i) return ops.take(x, i, 1) end },
  { shapes = { { 2, 4 }, { 2, 2 } }, wrt = { 1 }, inputs = { signed, idx { { 3, 0 }, { 1, 1 } } }, call = function(x, i) return ops.take(x, i, 2) end } }
rows._scatter_add = { { shapes = { { 5, 3 }, { 5 } }, wrt = { 1 }, inputs = { signed, idx { 3, 0, 0, 2, 1 } }, call = function(g, i) return core.op("_scatter_add", g, i, nil, { axes = { 0 }, ints = { 4 } }) end } }

-- @losses (training issue: one row per loss op)
do
  -- (y_true, y_pred) -> per-sample losses; fixed values keep |kinks| > EPS away
  local L = function(name, at) return function(t, p) return core.op(name, t, p, nil, at) end end
  local t23, p23 = idx { { 0.1, -0.5, 0.9 }, { 0.3, 0.2, -0.7 } }, idx { { 0.4, -0.1, 0.2 }, { -0.3, 0.8, -0.2 } }
  local prob_t, prob_p = idx { { 0.2, 0.7, 0.5 }, { 0.9, 0.3, 0.6 } }, idx { { 0.3, 0.6, 0.15 }, { 0.8, 0.45, 0.35 } }
  rows.mean_squared_error = { { shapes = { { 2, 3 }, { 2, 3 } }, call = L("mean_squared_error") } }
  rows.mean_absolute_error = { { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { t23, p23 }, call = L("mean_absolute_error") } }
  rows.mean_absolute_percentage_error = { { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { t23, p23 }, call = L("mean_absolute_percentage_error") } }
  rows.mean_squared_logarithmic_error = { { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { positive, positive }, call = L("mean_squared_logarithmic_error") } }
  rows.huber = { { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { idx { { 0, 0, 0 }, { 1, 1, 1 } }, idx { { 0.3, 1.5, -0.6 }, { -1, 1.8, 2.3 } } },
    call = L("huber", { f = { 1.0 } }) } }
  rows.log_cosh = { { shapes = { { 2, 3 }, { 2, 3 } }, call = L("log_cosh") } }
  rows.poisson = { { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { positive, positive }, call = L("poisson") } }
  rows.kl_divergence = { { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { prob_t, prob_p }, call = L("kl_divergence") } }
  local pm1, p_h = idx { { 1, -1, 1 }, { -1, -1, 1 } }, idx { { 0.3, 0.5, -0.4 }, { 1.6, -0.2, 0.7 } }
  local b01 = idx { { 1, 0, 1 }, { 0, 0, 1 } }
  rows.hinge = { { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { pm1, p_h }, call = L("hinge") },
    { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { b01, p_h }, wrt = { 2 }, call = L("hinge") } }
  rows.squared_hinge = { { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { pm1, p_h }, call = L("squared_hinge") },
    { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { b01, p_h }, wrt = { 2 }, call = L("squared_hinge") } }
  rows.categorical_hinge = { { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { idx { { 0, 1, 0 }, { 1, 0, 0 } }, idx { { 0.3, 0.5, -0.2 }, { 0.1, 0.4, 0.9 } } },
    call = L("categorical_hinge") } }
  rows.cosine_similarity = { { shapes = { { 2, 4 }, { 2, 4 } }, call = L("cosine_similarity") } }
  rows.binary_crossentropy = {
    { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { prob_t, signed }, call = L("binary_crossentropy", { ints = { 1 } }) },
    { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { prob_t, prob_p }, call = L("binary_crossentropy", { ints = { 0 } }) },
  }
  rows.binary_focal_crossentropy = {
    { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { prob_t, signed }, call = L("binary_focal_crossentropy", { ints = { 1, 1 }, f = { 0.25, 2.0 } }) },
    { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { prob_t, prob_p }, call = L("binary_focal_crossentropy", { ints = { 0, 0 }, f = { 0.25, 1.5 } }) },
  }
  local soft = idx { { 0.1, 0.6, 0.3 }, { 0.0, 0.2, 0.8 } }
  rows.categorical_crossentropy = {
    { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { soft, signed }, call = L("categorical_crossentropy", { ints = { 1 } }) },
    { shapes = { { 2, 3 }, { 2, 3 } }, inputs = { soft, positive }, call = L("categorical_crossentropy", { ints = { 0 } }) },
  }
  rows.sparse_categorical_crossentropy = {
    { shapes = { { 3 }, { 3, 4 } }, wrt = { 2 }, inputs = { idx { 1, 0, 3 }, signed }, call = L("sparse_categorical_crossentropy", { ints = { 1 } }) },
    { shapes = { { 3, 1 }, { 3, 4 } }, wrt = { 2 }, inputs = { idx { { 2 }, { 0 }, { 1 } }, positive }, call = L("sparse_categorical_crossentropy", { ints = { 0 } }) },
    { shapes = { { 3 }, { 3, 4 } }, wrt = { 2 }, inputs = { idx { 1, -1, 3 }, signed }, call = L("sparse_categorical_crossentropy", { ints = { 1, 1, -1 } }) },
  }
end

-- @conv (convolution and pooling ops)
do
  local nn = require("klua.nn")
  rows.conv2d = {
    { shapes = { { 2, 4, 5, 2 }, { 2, 3, 2, 3 }, { 3 } }, call = function(x, k, b) return nn.conv(x, k, { bias = b }) end },
    { shapes = { { 1, 5, 5, 2 }, { 3, 3, 2, 2 } }, call = function(x, k) return nn.conv(x, k, { strides = 2, padding = "same" }) end },
    { shapes = { { 1, 6, 5, 1 }, { 2, 2, 1, 2 } }, call = function(x, k) return nn.conv(x, k, { dilation_rate = { 2, 1 }, padding = "same" }) end },
    { shapes = { { 2, 3, 3, 3 }, { 1, 1, 3, 2 } }, call = function(x, k) return nn.conv(x, k) end },   -- pointwise path
    { shapes = { { 2, 7, 2 }, { 3, 2, 2 } }, call = function(x, k) return nn.conv(x, k, { padding = "causal", dilation_rate = 2 }) end },
  }
  rows.conv2d_transpose = {
    { shapes = { { 1, 3, 2, 2 }, { 3, 3, 2, 2 }, { 2 } }, call = function(x, k, b) return nn.conv_transpose(x, k, { strides = 2, padding = "same", bias = b }) end },
    { shapes = { { 2, 2, 3, 1 }, { 2, 3, 2, 1 } }, call = function(x, k) return nn.conv_transpose(x, k, { strides = { 1, 2 } }) end },
  }
  rows.depthwise_conv2d = {
    { shapes = { { 2, 4, 4, 2 }, { 3, 3, 2, 2 }, { 4 } }, call = function(x, k, b) return nn.depthwise_conv(x, k, { padding = "same", bias = b }) end },
    { shapes = { { 1, 5, 4, 3 }, { 2, 2, 3, 1 } }, call = function(x, k) return nn.depthwise_conv(x, k, { strides = 2 }) end },
  }
  rows.max_pool2d = {
    { shapes = { { 2, 4, 5, 2 } }, inputs = { distinct }, call = function(x) return nn.max_pool(x, 2, nil, "same") end },
    { shapes = { { 1, 5, 5, 2 } }, inputs = { distinct }, call = function(x) return nn.max_pool(x, 3, 1) end },   -- overlapping windows
    { shapes = { { 2, 6, 2 } }, inputs = { distinct }, call = function(x) return nn.max_pool(x, 2) end },
  }
  rows.avg_pool2d = {
    { shapes = { { 2, 5, 5, 2 } }, call = function(x) return nn.average_pool(x, 2, nil, "same") end },
    { shapes = { { 1, 4, 4, 1 } }, call = function(x) return nn.average_pool(x, { 3, 2 }, 1) end },
  }
  rows.upsampling2d = { { shapes = { { 2, 2, 3, 2 } }, call = function(x) return nn.upsampling2d(x, { 2, 3 }) end } }
  rows.zero_padding2d = { { shapes = { { 2, 2, 3, 2 } }, call = function(x) return nn.zero_padding2d(x, { { 1, 0 }, { 2, 1 } }) end } }
end

-- @rnn (recurrent, normalisation and attention ops)
do
  local nn = require("klua.nn")
  -- The differentiable part of the packed outputs: h (and c) per step.
  local function hc(y, width) return ops.slice_axis(y, 3, 1, width) end
  local function mask(s) return klua.tensor({ { 1, 1, 0, 1 }, { 1, 0, 0, 1 } }) end
  rows.lstm = {
    { shapes = { { 2, 4, 3 }, { 3, 8 }, { 2, 8 }, { 8 }, { 2, 2 }, { 2, 2 } },
      call = function(...) return hc(nn.rnn("lstm", { ... }, {}), 4) end },
    { shapes = { { 2, 4, 3 }, { 3, 8 }, { 2, 8 }, { 8 }, { 2, 2 }, { 2, 2 }, { 2, 4 } }, wrt = { 1, 2, 3, 4, 5, 6 },
      inputs = { signed, signed, signed, signed, signed, signed, mask },
      call = function(...) return hc(nn.rnn("lstm", { ... }, { go_backwards = true }), 4) end },
  }
  rows.gru = {
    { shapes = { { 2, 4, 3 }, { 3, 6 }, { 2, 6 }, { 2, 6 }, { 2, 2 } },
      call = function(...) return hc(nn.rnn("gru", { ... }, {}), 2) end },
    { shapes = { { 2, 4, 3 }, { 3, 6 }, { 2, 6 }, { 2, 6 }, { 2, 2 }, { 2, 4 } }, wrt = { 1, 2, 3, 4, 5 },
      inputs = { signed, signed, signed, signed, signed, mask },
      call = function(...) return hc(nn.rnn("gru", { ... }, { go_backwards = true }), 2) end },
  }
  rows.simple_rnn = {
    { shapes = { { 2, 4, 3 }, { 3, 3 }, { 3, 3 }, { 3 }, { 2, 3 } }, call = function(...) return nn.rnn("simple_rnn", { ... }, {}) end },
    { shapes = { { 2, 4, 3 }, { 3, 3 }, { 3, 3 }, { 3 }, { 2, 3 }, { 2, 4 } }, wrt = { 1, 2, 3, 4, 5 },
      inputs = { signed, signed, signed, signed, signed, mask },
      call = function(...) return nn.rnn("simple_rnn", { ... }, { go_backwards = true }) end },
  }
end

-- @activations (activation ops)
do
  local acts = klua.activations
  rows.gelu = { { shapes = { { 2, 3 } }, call = function(x) return acts.gelu(x) end },
    { shapes = { { 2, 3 } }, call = function(x) return acts.gelu(x, true) end } }
  rows.elu = { { shapes = { { 2, 3 } }, call = function(x) return acts.elu(x, 1.5) end } }
  rows.selu = { { shapes = { { 2, 3 } }, call = function(x) return acts.selu(x) end } }
  rows.leaky_relu = { { shapes = { { 2, 3 } }, call = function(x) return acts.leaky_relu(x, 0.2) end } }
  rows.silu = { { shapes = { { 2, 3 } }, call = function(x) return acts.silu(x) end } }
  -- the gradient helper, for every activation code (checks the second derivatives)
  rows._act_grad = {}
  for code, p in ipairs { 0, 0, 1.5, 0, 0.2, 0 } do
    rows._act_grad[code] = { shapes = { { 2, 3 }, { 2, 3 } },
      call = function(g, x) return core.op("_act_grad", g, x, nil, { ints = { code }, f = { p } }) end }
  end
  -- normalisation kernels (src/ops/normalization.c)
  rows.moments = { { shapes = { { 5, 3 } }, call = function(x) return core.op("moments", x) end },
    { shapes = { { 2, 3, 2 } }, call = function(x) return core.op("moments", x) end } }
  local bn = function(...) return klua.layers.BatchNormalization.fused(...) end
  rows.batch_norm = {
    { shapes = { { 4, 3 }, { 3 }, { 3 }, { 3 }, { 3 } }, inputs = { signed, signed, positive, signed, signed },
      call = function(x, m, v, g, b) return bn(x, m, v, g, b, 1e-3) end },
    -- training: statistics from the batch, gradients through moments
    { shapes = { { 5, 2 }, { 2 }, { 2 } },
      call = function(x, g, b)
        local s = core.op("moments", x)
        return bn(x, ops.reshape(ops.slice_axis(s, 1, 1, 1), { 2 }), ops.reshape(ops.slice_axis(s, 1, 2, 2), { 2 }), g, b, 1e-3)
      end },
  }
  rows.layer_norm = { { shapes = { { 3, 4 }, { 4 }, { 4 } }, call = function(x, g, b) return core.op("layer_norm", x, g, b, { f = { 1e-3 } }) end },
    { shapes = { { 2, 2, 3 }, { 3 }, { 3 } }, call = function(x, g, b) return core.op("layer_norm", x, g, b, { f = { 1e-5 } }) end } }
end

-- The checker ---------------------------------------------------------------

local EPS, RTOL, ATOL = 1e-2, 2e-2, 2e-3

local function loss_of(out, weights)
  local s = 0
  local c = out:contiguous()
  for i = 0, tonumber(c.count) - 1 do s = s + c.data[i] * weights[i + 1] end
  return s
end

local function check_case(name, case)
  local inputs = {}
  for i, shape in ipairs(case.shapes) do
    local make = case.inputs and case.inputs[i] or signed
    inputs[i] = make(shape):clone()  -- fresh contiguous storage we may poke
  end
  local out0 = case.call(unpack(inputs))
  local weights = {}
  for i = 1, tonumber(out0.count) do weights[i] = 0.5 + (i % 7) / 7 end
  local wt = klua.tensor(weights):reshape(out0:shape())
  local tape = klua.GradientTape()
  tape:start()
  for _, x in ipairs(inputs) do tape:watch(x) end
  local out = case.call(unpack(inputs))
  local loss = ops.sum(out * wt)
  tape:stop()
  local grads = tape:gradient(loss, inputs)
  for _, i in ipairs(case.wrt or (function() local w = {} for k = 1, #inputs do w[k] = k end return w end)()) do
    local x, g = inputs[i], grads[i]
    assert(g ~= nil, name .. ": no gradient for input " .. i)
    assert.are.same(x:shape(), g:shape())
    for j = 0, tonumber(x.count) - 1 do
      local orig = x.data[j]
      x.data[j] = orig + EPS
      local lp = loss_of(case.call(unpack(inputs)), weights)
      x.data[j] = orig - EPS
      local lm = loss_of(case.call(unpack(inputs)), weights)
      x.data[j] = orig
      local numeric, analytic = (lp - lm) / (2 * EPS), g:contiguous().data[j]
      if math.abs(numeric - analytic) > ATOL + RTOL * math.abs(numeric) then
        error(("%s: d/dinput%d[%d] analytic %.6g vs numeric %.6g"):format(name, i, j, analytic, numeric), 0)
      end
    end
  end
end

describe("the gradient check", function()
  local C = core.C
  for id = 0, C.kl_op_count() - 1 do
    local name = ffi.string(C.kl_op_name(id))
    if C.kl_op_differentiable(id) ~= 0 then
      it("covers " .. name .. " with finite differences", function()
        assert(rows[name], "op '" .. name .. "' has no row in tests/gradcheck_spec.lua")
        klua.random.seed(1234 + id)
        for _, case in ipairs(rows[name]) do check_case(name, case) end
      end)
    end
  end
end)
