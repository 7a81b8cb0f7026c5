-- gradcheck_spec.lua — every op in the registry (src/ops.def) has a row here:
-- differentiable ops are checked against Richardson-extrapolated central
-- differences, precise enough that a backward 0.5% off fails (the mutation
-- run at the end proves it op by op); ops without a gradient say why. The
-- spec loops over the registry, so an op without a row fails: add the row
-- with the op.
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
for _, n in ipairs { "neg", "exp", "sin", "cos", "tanh", "sigmoid", "relu", "softplus", "square", "abs", "copy" } do
  rows[n] = { { shapes = { { 2, 3 } }, call = function(x) return core.op(n, x) end } }
end
-- Step functions: the backward is all zeros, so scaling it changes nothing and
-- the mutation run cannot apply; the check asserts the zeros. Inputs sit at
-- k + [0.1, 0.4], away from the integer and half-integer jumps.
local function between_steps(shape)
  return klua.random.uniform(shape, { minval = 0.1, maxval = 0.4 }) + ops.floor(klua.random.uniform(shape, { minval = -2, maxval = 2 }))
end
for _, n in ipairs { "sign", "floor", "ceil", "round" } do
  rows[n] = { zero_gradient = "piecewise constant", { shapes = { { 2, 3 } }, inputs = { between_steps }, call = function(x) return core.op(n, x) end } }
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
-- distinct(3) lands halfway between distinct(6)'s values: 0.05 from a tie
rows.minimum = { { shapes = { { 2, 3 }, { 3 } }, inputs = { distinct, distinct }, call = function(a, b) return ops.minimum(a, b) end } }
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
  -- CTC: 0-padded labels with a repeat (the blank between them), then explicit
  -- label and logit lengths (padding in time gets no gradient) and blank 2
  rows.ctc_loss = {
    { shapes = { { 2, 3 }, { 2, 6, 4 } }, wrt = { 2 }, inputs = { idx { { 1, 1, 3 }, { 2, 0, 0 } }, signed },
      call = function(y, x) return core.op_n("ctc_loss", { y, x }, { ints = { 0 } }) end },
    { shapes = { { 2, 3 }, { 2, 5, 3 }, { 2 }, { 2 } }, wrt = { 2 }, inputs = { idx { { 0, 1, 0 }, { 1, 1, 0 } }, signed, idx { 2, 3 }, idx { 4, 5 } },
      call = function(y, x, ll, tl) return core.op_n("ctc_loss", { y, x, ll, tl }, { ints = { 2 } }) end },
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
    -- the direct loop's blocks of 4 interior pixels (one group, outputs a multiple of 16), with borders around
    { shapes = { { 1, 3, 9, 2 }, { 2, 3, 2, 16 }, { 16 } }, call = function(x, k, b) return nn.conv(x, k, { bias = b, padding = "same", activation = "sigmoid" }) end },
    { shapes = { { 1, 3, 12, 1 }, { 2, 3, 1, 16 } }, call = function(x, k) return nn.conv(x, k, { strides = { 1, 2 }, padding = "same" }) end },
    { shapes = { { 1, 2, 11, 3 }, { 1, 3, 3, 32 } }, call = function(x, k) return nn.conv(x, k, { dilation_rate = { 1, 2 }, activation = "sigmoid" }) end },
    -- the fused activation on each forward path: direct loop, pointwise, im2col blocks, 1-D
    { shapes = { { 2, 4, 5, 2 }, { 2, 3, 2, 3 }, { 3 } }, call = function(x, k, b) return nn.conv(x, k, { bias = b, activation = "sigmoid" }) end },
    { shapes = { { 1, 2, 3, 40 }, { 1, 1, 40, 2 } }, call = function(x, k) return nn.conv(x, k, { activation = "sigmoid" }) end },   -- K 40: pointwise
    { shapes = { { 1, 4, 3, 9 }, { 2, 2, 9, 3 } }, call = function(x, k) return nn.conv(x, k, { padding = "same", activation = "sigmoid" }) end },   -- K 36: im2col
    { shapes = { { 2, 7, 2 }, { 3, 2, 2 } }, call = function(x, k) return nn.conv(x, k, { activation = "sigmoid" }) end },
    { shapes = { { 1, 4, 4, 2 }, { 2, 2, 2, 3 }, { 3 } }, inputs = { function(s) return klua.full(s, 0.5) end,
      function(s) return klua.full(s, 0.25) end, function() return klua.tensor { 0.3, -3, 0.1 } end },   -- relu: one output channel all negative
      call = function(x, k, b) return nn.conv(x, k, { bias = b, activation = "relu" }) end },
    -- groups: the direct loop, im2col + one sgemm per group, 1-D, and the pointwise backward
    { shapes = { { 2, 4, 4, 4 }, { 2, 2, 2, 6 }, { 6 } }, call = function(x, k, b) return nn.conv(x, k, { groups = 2, bias = b }) end },
    { shapes = { { 1, 4, 4, 8 }, { 3, 3, 4, 4 } }, call = function(x, k) return nn.conv(x, k, { groups = 2, padding = "same" }) end },
    { shapes = { { 2, 6, 6 }, { 2, 2, 6 } }, call = function(x, k) return nn.conv(x, k, { groups = 3, strides = 2 }) end },
    { shapes = { { 2, 2, 3, 4 }, { 1, 1, 2, 4 } }, call = function(x, k) return nn.conv(x, k, { groups = 2 }) end },
  }
  rows.conv3d = {
    { shapes = { { 1, 3, 4, 3, 2 }, { 2, 2, 2, 2, 3 }, { 3 } }, call = function(x, k, b) return nn.conv(x, k, { strides = { 1, 2, 1 }, padding = "same", bias = b }) end },
    { shapes = { { 1, 3, 3, 4, 5 }, { 2, 2, 2, 5, 2 } }, call = function(x, k) return nn.conv(x, k, { dilation_rate = { 1, 1, 2 } }) end },   -- im2col
    { shapes = { { 1, 2, 3, 3, 10 }, { 2, 2, 3, 5, 4 } }, call = function(x, k) return nn.conv(x, k, { groups = 2, padding = "same" }) end },
    { shapes = { { 1, 3, 3, 4, 5 }, { 2, 2, 2, 5, 2 } }, call = function(x, k) return nn.conv(x, k, { activation = "sigmoid" }) end },
  }
  rows.conv3d_transpose = {
    { shapes = { { 1, 2, 2, 2, 2 }, { 2, 2, 2, 3, 2 }, { 3 } }, call = function(x, k, b) return nn.conv_transpose(x, k, { strides = 2, padding = "same", bias = b }) end },
    { shapes = { { 1, 2, 3, 2, 1 }, { 2, 3, 2, 2, 1 } }, call = function(x, k) return nn.conv_transpose(x, k, { strides = { 1, 2, 1 } }) end },
  }
  rows.conv2d_transpose = {
    { shapes = { { 1, 3, 2, 2 }, { 3, 3, 2, 2 }, { 2 } }, call = function(x, k, b) return nn.conv_transpose(x, k, { strides = 2, padding = "same", bias = b }) end },
    { shapes = { { 2, 2, 3, 1 }, { 2, 3, 2, 1 } }, call = function(x, k) return nn.conv_transpose(x, k, { strides = { 1, 2 } }) end },
  }
  rows.depthwise_conv2d = {
    { shapes = { { 2, 4, 4, 2 }, { 3, 3, 2, 2 }, { 4 } }, call = function(x, k, b) return nn.depthwise_conv(x, k, { padding = "same", bias = b }) end },
    { shapes = { { 1, 5, 4, 3 }, { 2, 2, 3, 1 } }, call = function(x, k) return nn.depthwise_conv(x, k, { strides = 2 }) end },
    { shapes = { { 2, 6, 2 }, { 3, 2, 2 } }, call = function(x, k) return nn.depthwise_conv(x, k, { padding = "same", dilation_rate = 2 }) end },   -- 1-D
  }
  rows.max_pool2d = {
    { shapes = { { 2, 4, 5, 2 } }, inputs = { distinct }, call = function(x) return nn.max_pool(x, 2, nil, "same") end },
    { shapes = { { 1, 5, 5, 2 } }, inputs = { distinct }, call = function(x) return nn.max_pool(x, 3, 1) end },   -- overlapping windows
    { shapes = { { 2, 6, 2 } }, inputs = { distinct }, call = function(x) return nn.max_pool(x, 2) end },
    -- tiling windows over uneven sizes: the last row and column belong to no window
    { shapes = { { 2, 5, 7, 3 } }, inputs = { distinct }, call = function(x) return nn.max_pool(x, 2) end },
  }
  rows.avg_pool2d = {
    { shapes = { { 2, 5, 5, 2 } }, call = function(x) return nn.average_pool(x, 2, nil, "same") end },
    { shapes = { { 1, 4, 4, 1 } }, call = function(x) return nn.average_pool(x, { 3, 2 }, 1) end },
  }
  rows.max_pool3d = {
    { shapes = { { 1, 3, 4, 3, 2 } }, inputs = { distinct }, call = function(x) return nn.max_pool(x, 2, nil, "same") end },
    { shapes = { { 1, 3, 4, 5, 1 } }, inputs = { distinct }, call = function(x) return nn.max_pool(x, { 2, 3, 2 }, { 1, 1, 2 }) end },
    { shapes = { { 1, 5, 4, 3, 2 } }, inputs = { distinct }, call = function(x) return nn.max_pool(x, 2) end },   -- tiling, uneven
  }
  rows.avg_pool3d = {
    { shapes = { { 1, 3, 4, 5, 2 } }, call = function(x) return nn.average_pool(x, 2, nil, "same") end },
    { shapes = { { 2, 3, 3, 3, 1 } }, call = function(x) return nn.average_pool(x, { 2, 2, 3 }, 1) end },
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
    -- reset_after = false: bias (3U), the reset gate applied before the product
    { shapes = { { 2, 4, 3 }, { 3, 6 }, { 2, 6 }, { 6 }, { 2, 2 } },
      call = function(...) return hc(nn.rnn("gru", { ... }, { reset_after = false }), 2) end },
    { shapes = { { 2, 4, 3 }, { 3, 6 }, { 2, 6 }, { 6 }, { 2, 2 }, { 2, 4 } }, wrt = { 1, 2, 3, 4, 5 },
      inputs = { signed, signed, signed, signed, signed, mask },
      call = function(...) return hc(nn.rnn("gru", { ... }, { go_backwards = true, reset_after = false }), 2) end },
  }
  rows.simple_rnn = {
    { shapes = { { 2, 4, 3 }, { 3, 3 }, { 3, 3 }, { 3 }, { 2, 3 } }, call = function(...) return nn.rnn("simple_rnn", { ... }, {}) end },
    { shapes = { { 2, 4, 3 }, { 3, 3 }, { 3, 3 }, { 3 }, { 2, 3 }, { 2, 4 } }, wrt = { 1, 2, 3, 4, 5 },
      inputs = { signed, signed, signed, signed, signed, mask },
      call = function(...) return nn.rnn("simple_rnn", { ... }, { go_backwards = true }) end },
  }
end

-- @attention (the fused attention op): the whole packed output [context | probabilities],
-- so both parts' gradients are checked; Tq ~= Tv and value_dim ~= key_dim. The mask
-- leaves no row fully masked: there -1e9 swallows the logits in float32, the output
-- stops depending on q and k, and only the analytic gradient (Keras's too) stays nonzero.
do
  local att = function(q, k, v, m) return core.op_n("attention", { q, k, v, m }, { f = { 0.7 } }) end
  local att_ctx = function(q, k, v, m) return core.op_n("attention", { q, k, v, m }, { f = { 0.7 }, ints = { 1 } }) end
  local mask = idx { { { 1, 1, 0, 1 }, { 0, 1, 1, 1 }, { 1, 0, 0, 0 } }, { { 1, 1, 1, 1 }, { 1, 0, 1, 0 }, { 0, 0, 1, 1 } } }
  local causal = idx { { { 1, 0, 0, 0 }, { 1, 1, 0, 0 }, { 1, 1, 1, 0 } } }
  local per_head = idx { { { { 1, 0, 1, 1 }, { 1, 1, 0, 0 }, { 0, 0, 0, 1 } }, { { 1, 1, 1, 1 }, { 0, 1, 1, 0 }, { 1, 0, 1, 0 } } } }
  rows.attention = {
    { shapes = { { 2, 3, 2, 3 }, { 2, 4, 2, 3 }, { 2, 4, 2, 2 } }, call = att },
    { shapes = { { 2, 3, 2, 3 }, { 2, 4, 2, 3 }, { 2, 4, 2, 2 }, { 2, 3, 4 } }, wrt = { 1, 2, 3 },
      inputs = { signed, signed, signed, mask }, call = att },
    { shapes = { { 2, 3, 1, 2 }, { 2, 4, 1, 2 }, { 2, 4, 1, 3 }, { 1, 3, 4 } }, wrt = { 1, 2, 3 },   -- broadcast over the batch
      inputs = { signed, signed, signed, causal }, call = att },
    { shapes = { { 1, 3, 2, 2 }, { 1, 4, 2, 2 }, { 1, 4, 2, 2 }, { 1, 2, 3, 4 } }, wrt = { 1, 2, 3 },   -- a mask per head
      inputs = { signed, signed, signed, per_head }, call = att },
    -- ints[0] = 1: the context alone (nn.attention_context), its gradient without a probabilities part
    { shapes = { { 2, 3, 2, 3 }, { 2, 4, 2, 3 }, { 2, 4, 2, 2 } }, call = att_ctx },
    { shapes = { { 2, 3, 2, 3 }, { 2, 4, 2, 3 }, { 2, 4, 2, 2 }, { 2, 3, 4 } }, wrt = { 1, 2, 3 },
      inputs = { signed, signed, signed, mask }, call = att_ctx },
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

-- collectives: in one process (this spec) the sum over processes is x itself;
-- tests/distribution_spec.lua checks it on several (synchronized BatchNormalization)
rows.all_reduce_sum = { { shapes = { { 2, 3 } }, call = function(x) return core.op("all_reduce_sum", x) end },
  { shapes = { { 4 } }, call = function(x) return core.op("all_reduce_sum", x, nil, nil, { f = { 0.25 } }) end } }

-- Ops without a gradient: the registry marks them not differentiable, so the
-- tape records nothing and a source reached only through them gets nil. Each
-- row says why and is checked for exactly that.
do
  for _, n in ipairs { "equal", "not_equal", "less", "less_equal", "greater", "greater_equal" } do
    rows[n] = { no_gradient = "a 0/1 comparison", { shapes = { { 2, 3 }, { 2, 3 } }, call = function(a, b) return core.op(n, a, b) end } }
  end
  for _, n in ipairs { "argmax", "argmin" } do
    rows[n] = { no_gradient = "an index", { shapes = { { 3, 4 } }, inputs = { distinct }, call = function(x) return core.op(n, x, nil, nil, { axes = { 1 } }) end } }
  end
  rows.one_hot = { no_gradient = "its input is a list of indices", { shapes = { { 3 } }, inputs = { idx { 2, 0, 1 } }, call = function(i) return core.op("one_hot", i, nil, nil, { ints = { 4 } }) end } }
  rows._act_grad2 = { no_gradient = "the second-derivative helper ends the chain: no third derivatives",
    { shapes = { { 2, 3 }, { 2, 3 } }, call = function(g, x) return core.op("_act_grad2", g, x, nil, { ints = { 1 }, f = { 0 } }) end } }
end

-- Per-op steps. The default H keeps both steps inside the margins kept from
-- kinks; these smooth ops have gradients small next to their outputs, so the
-- float32 rounding error (~1/h) dominates and a larger step is more precise.
for _, n in ipairs { "batch_norm", "logsumexp", "softmax", "log_softmax", "lstm", "gru" } do rows[n].h = 1 / 16 end

-- The checker ---------------------------------------------------------------
--
-- f(x) = sum(op(x) * r) for a random r, summed in double from the float32
-- outputs. Each element's derivative is a central difference with Richardson
-- extrapolation, D = (4 D(h/2) - D(h)) / 3: it cancels the h^2 error term, so
-- a step large enough to drown float32 rounding is still accurate to ~1e-5.
-- Each input's gradient is compared as one vector, ||g - D|| <= RTOL ||D||
-- (+ ATOL per element for gradients that are ~0). A backward 0.5% off is
-- then ~5x the tolerance; the mutation run below shows it for every op.
-- The seed is fixed per op; scripts/mutate-gradcheck sweeps it through
-- KLUA_GRADCHECK_SEED and the mutation factor through KLUA_GRADCHECK_MUTATION.

local H = 1 / 64      -- h/2 = 1/128: both well inside the margins kept from kinks
local RTOL = 1e-3     -- observed: <= 2e-4 over 21 seeds (scripts/mutate-gradcheck)
local ATOL = 1e-7
local MUTATION = tonumber(os.getenv("KLUA_GRADCHECK_MUTATION")) or 1.005  -- the issue's bar

local function project(out, r)
  local s, c, rd = 0, out:contiguous(), r.data
  for i = 0, tonumber(c.count) - 1 do s = s + c.data[i] * rd[i] end
  return s
end

local function all_inputs(n) local w = {} for k = 1, n do w[k] = k end return w end

-- Returns the largest error as a fraction of the tolerance (> 1 fails).
local function check_case(name, case, h)
  local inputs = {}
  for i, shape in ipairs(case.shapes) do
    local make = case.inputs and case.inputs[i] or signed
    inputs[i] = make(shape):clone()  -- fresh contiguous storage we may poke
  end
  local out0 = case.call(unpack(inputs))
  local r = klua.random.uniform(out0:shape(), { minval = 0.5, maxval = 1.5 })
  local tape = klua.GradientTape()
  tape:start()
  for _, x in ipairs(inputs) do tape:watch(x) end
  local out = case.call(unpack(inputs))
  tape:stop()
  -- r as the output gradient: no extra mul/sum nodes on the tape
  local grads = tape:gradient(out, inputs, r)
  local f = function() return project(case.call(unpack(inputs)), r) end
  local used = 0
  for _, i in ipairs(case.wrt or all_inputs(#inputs)) do
    local x, g = inputs[i], grads[i]
    assert(g ~= nil, name .. ": no gradient for input " .. i)
    assert.are.same(x:shape(), g:shape())
    g = g:contiguous()
    local err2, ref2, worst, worst_j, worst_d = 0, 0, -1, 0, 0
    for j = 0, tonumber(x.count) - 1 do
      local orig = x.data[j]
      -- divided by the step float32 actually stored, not the one asked for
      local function central(step)
        x.data[j] = orig + step; local xp, fp = x.data[j], f()
        x.data[j] = orig - step; local xm, fm = x.data[j], f()
        x.data[j] = orig
        return (fp - fm) / (xp - xm)
      end
      local d = (4 * central(h / 2) - central(h)) / 3
      local e = g.data[j] - d
      err2, ref2 = err2 + e * e, ref2 + d * d
      if math.abs(e) > worst then worst, worst_j, worst_d = math.abs(e), j, d end
    end
    local err, ref = math.sqrt(err2), math.sqrt(ref2)
    local q = err / (RTOL * ref + ATOL * math.sqrt(tonumber(x.count)))
    if q > 1 then
      error(("%s: gradient of input %d off by %.2g relative, %.1fx the tolerance (|g - numeric| = %.3g, |numeric| = %.3g); worst element %d: analytic %.8g vs numeric %.8g")
        :format(name, i, err / ref, q, err, ref, worst_j, g.data[worst_j], worst_d), 0)
    end
    used = math.max(used, q)
  end
  return used
end

local function check_no_gradient(name, case)
  local inputs = {}
  for i, shape in ipairs(case.shapes) do inputs[i] = (case.inputs and case.inputs[i] or signed)(shape) end
  local tape = klua.GradientTape()
  tape:start()
  for _, x in ipairs(inputs) do tape:watch(x) end
  local out = case.call(unpack(inputs))
  tape:stop()
  local grads = tape:gradient(out, inputs)
  for i = 1, #inputs do assert(grads[i] == nil, name .. ": input " .. i .. " got a gradient") end
  return 0
end

local SEED = 1234 + 7919 * (tonumber(os.getenv("KLUA_GRADCHECK_SEED")) or 0)
-- KLUA_GRADCHECK_LOG names a file that gets "op clean|mutated <fraction of tolerance>" per op.
local log = os.getenv("KLUA_GRADCHECK_LOG") and assert(io.open(os.getenv("KLUA_GRADCHECK_LOG"), "a"))

local function check_op(name, id)
  klua.random.seed(SEED + id)
  local check, used = rows[name].no_gradient and check_no_gradient or check_case, 0
  for _, case in ipairs(rows[name]) do used = math.max(used, check(name, case, rows[name].h or H)) end
  return used
end

local C = core.C
local function each_op(fn)
  for id = 0, C.kl_op_count() - 1 do fn(id, ffi.string(C.kl_op_name(id))) end
end

describe("the gradient check", function()
  each_op(function(id, name)
    local row = rows[name]
    local why = row and (row.no_gradient or row.zero_gradient)
    it("covers " .. name .. (why and " (" .. why .. ")" or " with finite differences"), function()
      assert(row, "op '" .. name .. "' has no row in tests/gradcheck_spec.lua")
      local differentiable = C.kl_op_differentiable(id) ~= 0
      assert(differentiable == not row.no_gradient, name .. ": src/ops.def says differentiable = " ..
        tostring(differentiable) .. " but its row says " .. (row.no_gradient and "no_gradient" or "it has a gradient"))
      local used = check_op(name, id)
      if log and not row.no_gradient then log:write(("%s clean %.3f\n"):format(name, used)); log:flush() end
    end)
  end)
end)

-- Every op with a gradient, its backward scaled by 1.005 (C's test-only
-- switch, src/debug.h), must fail the same check; the switch is turned off
-- again whatever the check did.
describe("the gradient check under mutation", function()
  local function mutated_check(id, name)
    C.kl_debug_mutate_backward(id, MUTATION)
    local ok, err = pcall(check_op, name, id)
    C.kl_debug_mutate_backward(-1, 1)
    return ok, err
  end
  each_op(function(id, name)
    local row = rows[name]
    if not row or row.no_gradient then return end
    if row.zero_gradient then
      it("has nothing to mutate in " .. name .. ": its backward is all zeros", function()
        local ok, err = mutated_check(id, name)
        assert(ok, err)
      end)
      return
    end
    it("fails " .. name .. " when its backward is scaled by " .. MUTATION, function()
      local ok, err = mutated_check(id, name)
      assert(not ok, name .. ": a backward scaled by " .. MUTATION .. " passed the gradient check")
      assert.matches("gradient of input", err)
      if log then log:write(("%s mutated %s\n"):format(name, err:match("([%d.]+)x the tolerance"))); log:flush() end
    end)
  end)
end)
