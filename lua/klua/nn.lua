-- nn.lua — the functional forms of the layer kernels (src/ops/conv.c, pool.c,
-- rnn.c) with Keras's argument conventions: strides, "valid"/"same"/"causal"
-- padding, dilation, pool sizes. Padding amounts are computed here (Keras's
-- "same" puts the odd pixel after) and passed to C explicitly.
--   nn.conv(x, kernel, {strides = 2, padding = "same"})   -- 1-D, 2-D or 3-D by rank
--   nn.max_pool(x, 2)                                      -- pool_size 2, strides = pool_size
-- Tensors are channels-last, as in Keras: (N,L,C) for 1-D, (N,H,W,C) for 2-D,
-- (N,D,H,W,C) for 3-D; layers with data_format = "channels_first" transpose
-- around these (nn.to_channels_last / nn.to_channels_first).
local core = require("klua.core")
local ffi = require("ffi")
local C = core.C

local nn = {}

local function T(x, who, arg) return core.is_tensor(x) and x or core.to_tensor(x, who, arg) end

--- tuple(v, n, what): a number or a list of n positive integers, as a list.
function nn.tuple(v, n, what, allow_zero)
  if type(v) == "number" then
    local t = {}
    for i = 1, n do t[i] = v end
    v = t
  end
  if type(v) ~= "table" or #v ~= n then
    core.raise(("%s: expected an integer or a list of %d integers, got %s"):format(what, n, tostring(v)))
  end
  local out = {}
  for i = 1, n do
    local d = v[i]
    if type(d) ~= "number" or d % 1 ~= 0 or d < (allow_zero and 0 or 1) then
      core.raise(("%s: expected %s integers, got %s"):format(what, allow_zero and "non-negative" or "positive", tostring(d)))
    end
    out[i] = d
  end
  return out
end

--- tuple_pairs(v, rank): Keras's padding / cropping argument as `rank` pairs
-- {before, after} of non-negative integers, from n, a list of `rank` entries
-- (each n or {before, after}), or for rank 1 one {before, after}; nil for
-- anything else.
function nn.tuple_pairs(v, rank)
  local function int(d) return type(d) == "number" and d % 1 == 0 and d >= 0 end
  local function pair(p)
    if int(p) then return { p, p } end
    if type(p) == "table" and #p == 2 and int(p[1]) and int(p[2]) then return { p[1], p[2] } end
  end
  if int(v) then return { { v, v }, rank > 1 and { v, v } or nil, rank > 2 and { v, v } or nil } end
  if type(v) ~= "table" then return nil end
  if rank == 1 then return pair(v) and #v == 2 and { pair(v) } or nil end
  if #v ~= rank then return nil end
  local out = {}
  for i = 1, rank do
    out[i] = pair(v[i])
    if not out[i] then return nil end
  end
  return out
end

--- padding_amounts(size, k, stride, dilation, padding): before, after, out.
-- Keras/TF "same": out = ceil(size/stride), the odd pixel goes after.
function nn.padding_amounts(size, k, stride, dilation, padding, what)
  local eff = (k - 1) * dilation + 1
  if padding == "valid" then
    return 0, 0, math.floor((size - eff) / stride) + 1
  elseif padding == "same" then
    local out = math.ceil(size / stride)
    local total = math.max((out - 1) * stride + eff - size, 0)
    local before = math.floor(total / 2)
    return before, total - before, out
  elseif padding == "causal" then
    return eff - 1, 0, math.floor((size - 1) / stride) + 1
  end
  core.raise(("%s: padding must be \"valid\" or \"same\"%s, got %s"):format(what, what:find("1") and " or \"causal\"" or "", tostring(padding)))
end

--- args(first, kw, key): a layer's leading positional argument, or a config
-- table holding it under `key` (Class.from_config). A plain list such as
-- {3, 3} is the positional value, not a config.
function nn.args(first, kw, key)
  if type(first) == "table" and getmetatable(first) == nil and first[1] == nil and kw == nil then
    return first[key], first
  end
  return first, kw or {}
end

--- args2(a, b, kw, k1, k2): the same with two leading positional arguments
-- (Conv2D(32, 3, {...}) or Conv2D{filters = 32, kernel_size = 3}).
function nn.args2(a, b, kw, k1, k2)
  if type(a) == "table" and getmetatable(a) == nil and a[1] == nil and b == nil and kw == nil then return a[k1], a[k2], a end
  if type(b) == "table" and getmetatable(b) == nil and b[1] == nil and kw == nil then return a, b[k2], b end
  return a, b, kw or {}
end

-- Call a registry op with up to 8 inputs and integer attributes.
local inbuf = ffi.new("kl_tensor *[8]")
function nn.call(name, inputs, ints)
  local id = core.op_ids[name]
  local at = core.fresh_attrs()
  at.nints = #ints
  for i, v in ipairs(ints) do at.ints[i - 1] = v end
  for i, t in ipairs(inputs) do inbuf[i - 1] = t.p end
  local r = core.wrap(C.kl_op_n(id, #inputs, inbuf, at))
  for i = 1, #inputs do inbuf[i - 1] = nil end
  return r
end

local function reshape(x, shape) return core.op("reshape", x, nil, nil, { ints = shape }) end

local function shape_str(t) return core.shape_str(core.shape_of(t)) end

-- opts: {strides=, padding=, dilation_rate=} or nil
local function conv_opts(opts, rank, what)
  opts = opts or {}
  if type(opts) ~= "table" or core.class_name_of(opts) then
    core.raise(("%s: opts must be a table like {strides = 2, padding = \"same\"}, got %s"):format(what, core.describe(opts)))
  end
  local strides = nn.tuple(opts.strides or 1, rank, what .. ": strides")
  local dilation = nn.tuple(opts.dilation_rate or 1, rank, what .. ": dilation_rate")
  return strides, opts.padding or "valid", dilation
end

-- x (N,L,C) as (N,1,L,C); kernel (K,C,O) as (1,K,C,O).
local function as_2d(x, kernel)
  local xs, ks = core.shape_of(x), core.shape_of(kernel)
  return reshape(x, { xs[1], 1, xs[2], xs[3] }), ks[3] and reshape(kernel, { 1, ks[1], ks[2], ks[3] }) or kernel
end

-- y (N,1,L,C) back to (N,L,C).
local function from_2d(y)
  local ys = core.shape_of(y)
  return reshape(y, { ys[1], ys[3], ys[4] })
end

local function check_rank(x, op, what)
  local rank = x.nd - 2
  if rank < 1 or rank > 3 then
    core.raise(("%s: expected input (N,L,C), (N,H,W,C) or (N,D,H,W,C), got %s"):format(op, shape_str(x)))
  end
  return rank, what .. rank .. "d"
end

--- conv(x, kernel, opts): x (N,L,C), (N,H,W,C) or (N,D,H,W,C) with a kernel
-- (K..., C/groups, O). opts: strides, padding ("valid", "same", "causal" for
-- 1-D), dilation_rate, groups (Keras's: group g reads channel block g and
-- writes output block g), bias (O), activation ("relu" or "sigmoid", applied
-- to the output in place by the op, as a Conv layer's activation).
local conv_activation = { linear = 0, relu = 1, sigmoid = 2 }
function nn.conv(x, kernel, opts)
  x, kernel = T(x, "conv", "x"), T(kernel, "conv", "kernel")
  local rank, what = check_rank(x, "conv", "conv")
  if kernel.nd ~= rank + 2 then
    core.raise(("%s: expected a %d-d kernel for input %s, got %s"):format(what, rank + 2, shape_str(x), shape_str(kernel)))
  end
  local strides, padding, dil = conv_opts(opts, rank, what)
  if padding == "causal" and rank ~= 1 then core.raise(what .. ": padding \"causal\" is only for 1-D convolutions") end
  local groups = opts and opts.groups or 1
  if type(groups) ~= "number" or groups < 1 or groups % 1 ~= 0 then
    core.raise(("%s: groups must be a positive integer, got %s"):format(what, tostring(groups)))
  end
  local act = conv_activation[opts and opts.activation or "linear"]
  if not act then
    core.raise(("%s: activation must be \"relu\", \"sigmoid\" or \"linear\", got %s"):format(what, core.describe(opts.activation)))
  end
  local xs, ks = core.shape_of(x), core.shape_of(kernel)
  local inputs = { x, kernel, opts and opts.bias and T(opts.bias, "conv", "bias") or nil }
  if rank == 1 then
    local t, b = nn.padding_amounts(xs[2], ks[1], strides[1], dil[1], padding, what)
    inputs[1], inputs[2] = as_2d(x, kernel)
    return from_2d(nn.call("conv2d", inputs, { 1, strides[1], 1, dil[1], 0, 0, t, b, groups, act }))
  end
  -- strides, dilations, (before, after) per axis, groups
  local ints = {}
  for i = 1, rank do
    ints[i], ints[rank + i] = strides[i], dil[i]
    ints[2 * rank + 2 * i - 1], ints[2 * rank + 2 * i] = nn.padding_amounts(xs[i + 1], ks[i], strides[i], dil[i], padding, what)
  end
  ints[4 * rank + 1] = groups
  ints[4 * rank + 2] = act
  return nn.call(what, inputs, ints)
end

--- Keras's deconv_output_length.
function nn.conv_transpose_length(size, k, padding, output_padding, stride, dilation)
  local eff = (k - 1) * dilation + 1
  if output_padding == nil then
    if padding == "valid" then return size * stride + math.max(eff - stride, 0) end
    return size * stride
  end
  local pad = padding == "same" and math.floor(eff / 2) or 0
  return (size - 1) * stride + eff - 2 * pad + output_padding
end

--- conv_transpose(x, kernel, opts): x (N,H,W,Cin), kernel (KH,KW,Cout,Cin)
-- (or the 1-D and 3-D forms). opts: strides, padding, output_padding, dilation_rate, bias.
function nn.conv_transpose(x, kernel, opts)
  x, kernel = T(x, "conv_transpose", "x"), T(kernel, "conv_transpose", "kernel")
  opts = opts or {}
  if type(opts) ~= "table" then core.raise("conv_transpose: opts must be a table like {strides = 2}, got " .. core.describe(opts)) end
  local rank, what = check_rank(x, "conv_transpose", "conv")
  what = what .. "_transpose"
  if kernel.nd ~= rank + 2 then
    core.raise(("%s: expected a %d-d kernel, got %s"):format(what, rank + 2, shape_str(kernel)))
  end
  local strides, padding, dil = conv_opts(opts, rank, what)
  if padding ~= "valid" and padding ~= "same" then
    core.raise(("%s: padding must be \"valid\" or \"same\", got %s"):format(what, tostring(padding)))
  end
  local op = opts.output_padding and nn.tuple(opts.output_padding, rank, what .. ": output_padding", true)
  local inputs = { x, kernel, opts.bias and T(opts.bias, "conv_transpose", "bias") or nil }
  if rank == 1 then inputs[1], inputs[2] = as_2d(x, kernel) end
  local xs, ks = core.shape_of(inputs[1]), core.shape_of(inputs[2])
  local r = math.max(rank, 2)   -- the kernel's spatial rank (1-D runs as 2-D)
  local ints = {}
  local s = rank == 1 and { 1, strides[1] } or strides
  local d = rank == 1 and { 1, dil[1] } or dil
  local o = op and (rank == 1 and { 0, op[1] } or op)
  for i = 1, r do
    local size, k = xs[i + 1], ks[i]
    local out
    if rank == 1 and i == 1 then out = 1 else out = nn.conv_transpose_length(size, k, padding, o and o[i], s[i], d[i]) end
    local eff = (k - 1) * d[i] + 1
    -- The convolution that maps the output back to x: TF's padding for it.
    local before = 0
    if padding == "same" and not (rank == 1 and i == 1) then
      before = math.floor(math.max((size - 1) * s[i] + eff - out, 0) / 2)
    end
    if out < 1 then core.raise(("%s: output size %d is not positive for input %s"):format(what, out, shape_str(x))) end
    ints[i], ints[i + r], ints[i + 2 * r], ints[i + 3 * r] = s[i], d[i], before, out
  end
  local y = nn.call(r == 3 and "conv3d_transpose" or "conv2d_transpose", inputs, ints)
  return rank == 1 and from_2d(y) or y
end

--- depthwise_conv(x, kernel, opts): x (N,H,W,C), kernel (KH,KW,C,M) -> (N,H',W',C*M);
-- or x (N,L,C), kernel (K,C,M) -> (N,L',C*M), on a (N,1,L,C) view.
function nn.depthwise_conv(x, kernel, opts)
  x, kernel = T(x, "depthwise_conv", "x"), T(kernel, "depthwise_conv", "kernel")
  if x.nd == 3 and kernel.nd == 3 then
    local strides, padding, dil = conv_opts(opts, 1, "depthwise_conv1d")
    local xs, ks = core.shape_of(x), core.shape_of(kernel)
    local l, r = nn.padding_amounts(xs[2], ks[1], strides[1], dil[1], padding, "depthwise_conv1d")
    local x2, k2 = as_2d(x, kernel)
    return from_2d(nn.call("depthwise_conv2d", { x2, k2, opts and opts.bias and T(opts.bias, "depthwise_conv", "bias") or nil },
      { 1, strides[1], 1, dil[1], 0, 0, l, r }))
  end
  if x.nd ~= 4 or kernel.nd ~= 4 then
    core.raise(("depthwise_conv2d: expected input (N,H,W,C) and kernel (KH,KW,C,M), got %s and %s"):format(shape_str(x), shape_str(kernel)))
  end
  local strides, padding, dil = conv_opts(opts, 2, "depthwise_conv2d")
  local xs, ks = core.shape_of(x), core.shape_of(kernel)
  local t, b = nn.padding_amounts(xs[2], ks[1], strides[1], dil[1], padding, "depthwise_conv2d")
  local l, r = nn.padding_amounts(xs[3], ks[2], strides[2], dil[2], padding, "depthwise_conv2d")
  return nn.call("depthwise_conv2d", { x, kernel, opts and opts.bias and T(opts.bias, "depthwise_conv", "bias") or nil },
    { strides[1], strides[2], dil[1], dil[2], t, b, l, r })
end

-- kind: "max" or "avg"
local function pool(kind, x, pool_size, strides, padding)
  x = T(x, kind == "max" and "max_pool" or "average_pool", "x")
  local rank, what = check_rank(x, kind == "max" and "max_pool" or "average_pool", kind == "max" and "max_pool" or "average_pool")
  local p = nn.tuple(pool_size, rank, what .. ": pool_size")
  local s = nn.tuple(strides or p, rank, what .. ": strides")
  padding = padding or "valid"
  if padding ~= "valid" and padding ~= "same" then
    core.raise(("%s: padding must be \"valid\" or \"same\", got %s"):format(what, tostring(padding)))
  end
  local xs = core.shape_of(x)
  if rank == 1 then
    local l, r = nn.padding_amounts(xs[2], p[1], s[1], 1, padding, what)
    return from_2d(core.op(kind .. "_pool2d", reshape(x, { xs[1], 1, xs[2], xs[3] }), nil, nil, { ints = { 1, p[1], 1, s[1], 0, 0, l, r } }))
  end
  -- pool sizes, strides, (before, after) per axis
  local ints = {}
  for i = 1, rank do
    ints[i], ints[rank + i] = p[i], s[i]
    ints[2 * rank + 2 * i - 1], ints[2 * rank + 2 * i] = nn.padding_amounts(xs[i + 1], p[i], s[i], 1, padding, what)
  end
  return core.op(kind .. "_pool" .. rank .. "d", x, nil, nil, { ints = ints })
end

--- max_pool(x, pool_size, strides, padding): 1-D, 2-D or 3-D by rank; strides default to pool_size.
function nn.max_pool(x, pool_size, strides, padding) return pool("max", x, pool_size, strides, padding) end
--- average_pool(x, pool_size, strides, padding): "same" averages only real elements.
function nn.average_pool(x, pool_size, strides, padding) return pool("avg", x, pool_size, strides, padding) end

--- to_channels_last(x): (N,C,...) -> (N,...,C), a transposed view; to_channels_first undoes it.
function nn.to_channels_last(x)
  x = T(x)
  local perm = { 0 }
  for i = 2, x.nd - 1 do perm[#perm + 1] = i end
  perm[#perm + 1] = 1
  return core.op("transpose", x, nil, nil, { ints = perm })
end
function nn.to_channels_first(x)
  x = T(x)
  local perm = { 0, x.nd - 1 }
  for i = 1, x.nd - 2 do perm[#perm + 1] = i end
  return core.op("transpose", x, nil, nil, { ints = perm })
end

--- data_format(v): Keras's standardize_data_format: nil -> "channels_last",
-- case-insensitive; nil for anything else.
function nn.data_format(v)
  if v == nil then return "channels_last" end
  v = type(v) == "string" and v:lower() or v
  if v == "channels_last" or v == "channels_first" then return v end
  return nil
end

--- upsampling2d(x, size): nearest-neighbour repeat of rows and columns.
function nn.upsampling2d(x, size)
  local s = nn.tuple(size or 2, 2, "upsampling2d: size")
  return core.op("upsampling2d", T(x), nil, nil, { ints = s })
end

--- zero_padding2d(x, padding): padding = n, {h, w} or {{top, bottom}, {left, right}}.
function nn.zero_padding2d(x, padding)
  local p = padding or 1
  if type(p) == "number" then p = { { p, p }, { p, p } } end
  if type(p) == "table" and type(p[1]) == "number" then p = { { p[1], p[1] }, { p[2], p[2] } } end
  if type(p) ~= "table" or type(p[1]) ~= "table" or type(p[2]) ~= "table" then
    core.raise("zero_padding2d: padding must be an integer, {h, w} or {{top, bottom}, {left, right}}")
  end
  local t = nn.tuple(p[1], 2, "zero_padding2d: padding", true)
  local l = nn.tuple(p[2], 2, "zero_padding2d: padding", true)
  return core.op("zero_padding2d", T(x), nil, nil, { ints = { t[1], t[2], l[1], l[2] } })
end

-- Recurrent kernels ---------------------------------------------------------

-- Activation names the fused kernels know (codes shared with src/ops/rnn.c).
nn.rnn_activation_codes = { tanh = 0, sigmoid = 1, relu = 2, linear = 3, hard_sigmoid = 4 }

--- rnn_activation_code(name, what): the kernel's code for an activation given
-- by name (klua.activations.serialize names a function); raises for others.
function nn.rnn_activation_code(id, what)
  local name = id
  if id == nil then name = "linear" end
  local code = nn.rnn_activation_codes[name]
  if not code then
    core.raise(("%s: activation %s is not supported by the fused recurrent kernel (use tanh, sigmoid, relu, linear or hard_sigmoid)")
      :format(what, tostring(name)))
  end
  return code
end

--- rnn(kind, inputs, opts): kind is "lstm", "gru" or "simple_rnn"; inputs as
-- documented in src/ops/rnn.c (mask appended when given); opts: go_backwards,
-- activation code, recurrent activation code, reset_after (gru; default
-- true: bias (2,3U); false: Keras's other form, bias (3U)). Returns the packed output.
function nn.rnn(kind, inputs, opts)
  return nn.call(kind, inputs, { opts.go_backwards and 1 or 0, opts.activation or 0, opts.recurrent_activation or 1,
    opts.reset_after == false and 0 or 1 })
end

--- batch_norm(x, mean, var, gamma, beta, eps): the fused op over the last
-- axis, (x - mean) / sqrt(var + eps) * gamma + beta (src/ops/normalization.c).
function nn.batch_norm(x, mean, var, gamma, beta, eps)
  local list = { T(x), T(mean), T(var), T(gamma), T(beta) }
  local at = core.fresh_attrs()
  at.f[0] = eps or 1e-3
  for i = 1, 5 do inbuf[i - 1] = list[i].p end
  local r = core.wrap(C.kl_op_n(core.op_ids.batch_norm, 5, inbuf, at))
  for i = 1, 5 do inbuf[i - 1] = nil end
  return r
end

-- The attention op; context_only: its output is the context alone (ints[0] = 1).
local function attention_op(q, k, v, mask, scale, context_only)
  local list = { T(q), T(k), T(v), mask ~= nil and T(mask) or nil }
  local n = #list
  local at = core.fresh_attrs()
  at.f[0] = scale or 0
  at.ints[0] = context_only and 1 or 0
  for i = 1, n do inbuf[i - 1] = list[i].p end
  local out = core.wrap(C.kl_op_n(core.op_ids.attention, n, inbuf, at))
  for i = 1, n do inbuf[i - 1] = nil end
  return out, list
end

--- attention(q, k, v, mask, scale): the fused scaled dot-product attention
-- (src/ops/attention.c) over q (B,Tq,H,K), k (B,Tv,H,K), v (B,Tv,H,V), with an
-- optional mask (1 = attend; masked logits get -1e9 added, as Keras's) that
-- broadcasts to (B,Tq,Tv), or to (B,H,Tq,Tv) when it has rank 4, and scale
-- (nil: 1/sqrt(K)). Returns the context (B,Tq,H,V) and the attention
-- probabilities (B,H,Tq,Tv), both views of the op's one packed output and
-- both differentiable.
function nn.attention(q, k, v, mask, scale)
  local packed, list = attention_op(q, k, v, mask, scale, false)
  local B, Tq, H, V = tonumber(list[1].dims[0]), tonumber(list[1].dims[1]), tonumber(list[1].dims[2]), tonumber(list[3].dims[3])
  local nctx, total = B * Tq * H * V, tonumber(packed.count)
  local ctx = core.op("slice", packed, nil, nil, { ints = { 0, 0, nctx } })
  local probs = core.op("slice", packed, nil, nil, { ints = { 0, nctx, total } })
  return reshape(ctx, { B, Tq, H, V }), reshape(probs, { B, H, Tq, tonumber(list[2].dims[1]) })
end

--- attention_context(q, k, v, mask, scale): nn.attention's context (B,Tq,H,V)
-- alone, for callers that do not use the probabilities: the op keeps them for
-- its backward without making them an output, so the gradient step builds and
-- reads no zeros for them.
function nn.attention_context(q, k, v, mask, scale)
  return (attention_op(q, k, v, mask, scale, true))
end

-- Metric kernels (src/kernels/metrics.c) --------------------------------------

--- in_top_k(targets, predictions, k): 1 where the 0-based class index
-- targets[r] is among the k largest entries of row r of the 2-D predictions.
function nn.in_top_k(targets, predictions, k)
  return core.wrap(C.kl_metric_in_top_k(targets.p, predictions.p, k))
end

--- confusion_counts(y_true, y_pred, weights, n, thresholds, top_k, class_id,
-- multi_label, tp, fp, tn, fn): adds the (weighted; weights may be nil)
-- confusion counts at each of the n thresholds (double[n]) into the double[n]
-- arrays tp..fn (double[n * num_labels], (threshold, label), with multi_label).
function nn.confusion_counts(y_true, y_pred, weights, n, thresholds, top_k, class_id, multi_label, tp, fp, tn, fn)
  core.check(C.kl_metric_confusion(y_true.p, y_pred.p, weights and weights.p, n, thresholds,
    top_k, class_id, multi_label and 1 or 0, tp, fp, tn, fn))
end

--- confusion_matrix(labels, predictions, weights, n, ignore_class, cm): adds
-- the (weighted) pairs of class ids into cm (double[n * n], row = label);
-- ids outside [0, n) and labels equal to ignore_class (nil: none) are left out.
function nn.confusion_matrix(labels, predictions, weights, n, ignore_class, cm)
  core.check(C.kl_metric_confusion_matrix(labels.p, predictions.p, weights and weights.p, n,
    ignore_class ~= nil and 1 or 0, ignore_class or 0, cm))
end

--- orthonormal(a): a (m, n) with m >= n -> q (m, n) with orthonormal columns
-- (Gram-Schmidt in C; the Orthogonal initializer's QR).
function nn.orthonormal(a) return core.wrap(C.kl_orthonormal(T(a).p)) end

return nn
