-- keras_conv_spec.lua — Keras 3's convolution family as Keras's own tests
-- state it: Conv1D/2D/3D (groups, data_format), the transposed, depthwise and
-- separable convolutions, 1-D/2-D/3-D and global pooling, UpSampling,
-- ZeroPadding and Cropping. Shapes, argument errors and exact values are
-- ported from keras/src/layers/{convolutional,pooling,reshaping}/*_test.py
-- (each block names its test); the random-input correctness cases compare
-- with ports of those tests' NumPy references (np_conv2d, np_maxpool3d, ...),
-- written below as plain loops. Every new layer also passes a
-- finite-difference gradient check.
local klua = require("klua")
local ops = klua.ops
local L = klua.layers
local helpers = require("helpers")
local err_of, near = helpers.err_of, helpers.near

local function numel(shape) local n = 1 for _, d in ipairs(shape) do n = n * d end return n end
local function flat(t) return ops.reshape(t, { -1 }):totable() end
local function arange(shape) return ops.reshape(klua.arange(numel(shape)), shape) end
local function randn(shape, seed) return klua.random.normal(shape, { seed = seed }) end
local function tuple(v, n) if type(v) == "table" then return v end local t = {} for i = 1, n do t[i] = v end return t end
-- (N, C, spatial...) <-> (N, spatial..., C), as the references' transposes.
local function to_last(x) local p = { 1 } for i = 3, x.nd do p[#p + 1] = i end p[#p + 1] = 2 return ops.transpose(x, p) end
local function to_first(x) local p = { 1, x.nd } for i = 2, x.nd - 1 do p[#p + 1] = i end return ops.transpose(x, p) end

-- Three spatial axes, the missing leading ones filled (2-D and 1-D as 3-D).
local function to3(list, fill)
  local out = {}
  for i = 1, 3 - #list do out[i] = fill end
  for i = 1, #list do out[3 - #list + i] = list[i] end
  return out
end

-- Keras's _same_padding (conv_test.py): the (before, after) split of "same".
local function same_padding(size, k, stride)
  local pad = size % stride == 0 and math.max(k - stride, 0) or math.max(k - size % stride, 0)
  return math.floor(pad / 2), pad - math.floor(pad / 2)
end

-- np_conv1d / np_conv2d / np_conv3d of conv_test.py, channels-last: x
-- (N, spatial..., C) and kernel (k..., C/groups, O) as tensors; o = {strides,
-- padding, dilation_rate, groups}. Returns the flat output.
local function np_conv(x, kernel, bias, o)
  local xs, ks = x:shape(), kernel:shape()
  local r = #xs - 2
  local X, K, B = flat(x), flat(kernel), bias and flat(bias)
  local N, C, O, G = xs[1], xs[r + 2], ks[r + 2], o.groups or 1
  local Cg, Og = C / G, O / G
  local st, dl = tuple(o.strides or 1, r), tuple(o.dilation_rate or 1, r)
  local sp, kk, before, out = {}, {}, {}, {}
  for i = 1, r do
    sp[i], kk[i] = xs[i + 1], ks[i]
    local eff = (ks[i] - 1) * dl[i] + 1
    local b, a = 0, 0
    if o.padding == "same" then b, a = same_padding(sp[i], eff, st[i]) end
    if o.padding == "causal" then local p1, p2 = same_padding(sp[i], eff, st[i]); b = p1 + p2 end
    before[i], out[i] = b, math.floor((sp[i] + b + a - eff) / st[i]) + 1
  end
  sp, kk, st, dl, before, out = to3(sp, 1), to3(kk, 1), to3(st, 1), to3(dl, 1), to3(before, 0), to3(out, 1)
  local y = {}
  for n = 0, N - 1 do for oz = 0, out[1] - 1 do for oy = 0, out[2] - 1 do for ox = 0, out[3] - 1 do
    for oc = 0, O - 1 do
      local g, acc = math.floor(oc / Og), B and B[oc + 1] or 0
      for kz = 0, kk[1] - 1 do for ky = 0, kk[2] - 1 do for kx = 0, kk[3] - 1 do
        local iz, iy, ix = oz * st[1] - before[1] + kz * dl[1], oy * st[2] - before[2] + ky * dl[2], ox * st[3] - before[3] + kx * dl[3]
        if iz >= 0 and iz < sp[1] and iy >= 0 and iy < sp[2] and ix >= 0 and ix < sp[3] then
          for c = 0, Cg - 1 do
            acc = acc + X[(((n * sp[1] + iz) * sp[2] + iy) * sp[3] + ix) * C + g * Cg + c + 1]
              * K[(((kz * kk[2] + ky) * kk[3] + kx) * Cg + c) * O + oc + 1]
          end
        end
      end end end
      y[#y + 1] = acc
    end
  end end end end
  return y
end

-- np_depthwise_conv1d / 2d of depthwise_conv_test.py: kernel (k..., C, M),
-- output channel c*M + m.
local function np_depthwise(x, kernel, bias, o)
  local ks = kernel:shape()
  local r, C, M = #ks - 2, ks[#ks - 1], ks[#ks]
  -- the same as a grouped convolution with one group per channel
  local gk = ops.reshape(kernel, (function() local s = { unpack(ks, 1, r) } s[r + 1], s[r + 2] = 1, C * M return s end)())
  return np_conv(x, gk, bias, { strides = o.strides, padding = o.padding, dilation_rate = o.dilation_rate, groups = C })
end

-- Keras's deconv_output_length and its JAX padding conversion
-- (backend_utils.py), for the transposed references.
local function deconv_length(size, k, padding, op, s, d)
  local eff = (k - 1) * d + 1
  if op == nil then return padding == "valid" and size * s + math.max(eff - s, 0) or size * s end
  local pad = padding == "same" and math.floor(eff / 2) or 0
  return (size - 1) * s + eff - 2 * pad + op
end
local function jax_left_pad(k, s, d, padding, op)
  local eff = (k - 1) * d + 1
  if padding == "valid" then return eff - 1 end
  local pad_len = op == nil and s + eff - 2 or eff + eff % 2 - 2 + op
  return math.min(math.floor(pad_len / 2) + pad_len % 2, eff - 1)
end

-- np_conv1d_transpose / 2d / 3d of conv_transpose_test.py: every input pixel
-- adds kernel * x at its strided place in the full output, which is then cut
-- at kernel - 1 - left_pad. kernel (k..., Cout, Cin).
local function np_conv_transpose(x, kernel, bias, o)
  local xs, ks = x:shape(), kernel:shape()
  local r = #xs - 2
  local X, K, B = flat(x), flat(kernel), bias and flat(bias)
  local N, Cin, Cout = xs[1], xs[r + 2], ks[r + 1]
  local st, dl, opad = tuple(o.strides or 1, r), tuple(o.dilation_rate or 1, r), o.output_padding and tuple(o.output_padding, r)
  local sp, kk, out, start = {}, {}, {}, {}
  for i = 1, r do
    sp[i], kk[i] = xs[i + 1], ks[i]
    out[i] = deconv_length(sp[i], ks[i], o.padding, opad and opad[i], st[i], dl[i])
    start[i] = (ks[i] - 1) * dl[i] - jax_left_pad(ks[i], st[i], dl[i], o.padding, opad and opad[i])
  end
  sp, kk, st, dl, out, start = to3(sp, 1), to3(kk, 1), to3(st, 1), to3(dl, 1), to3(out, 1), to3(start, 0)
  local y = {}
  for i = 1, N * out[1] * out[2] * out[3] do for c = 1, Cout do y[(i - 1) * Cout + c] = B and B[c] or 0 end end
  for n = 0, N - 1 do for iz = 0, sp[1] - 1 do for iy = 0, sp[2] - 1 do for ix = 0, sp[3] - 1 do
    for kz = 0, kk[1] - 1 do for ky = 0, kk[2] - 1 do for kx = 0, kk[3] - 1 do
      local pz, py, px = iz * st[1] + kz * dl[1] - start[1], iy * st[2] + ky * dl[2] - start[2], ix * st[3] + kx * dl[3] - start[3]
      if pz >= 0 and pz < out[1] and py >= 0 and py < out[2] and px >= 0 and px < out[3] then
        local base = (((n * out[1] + pz) * out[2] + py) * out[3] + px) * Cout
        for co = 0, Cout - 1 do
          local acc = 0
          for ci = 0, Cin - 1 do
            acc = acc + X[(((n * sp[1] + iz) * sp[2] + iy) * sp[3] + ix) * Cin + ci + 1]
              * K[(((kz * kk[2] + ky) * kk[3] + kx) * Cout + co) * Cin + ci + 1]
          end
          y[base + co + 1] = y[base + co + 1] + acc
        end
      end
    end end end
  end end end end
  return y
end

-- np_maxpool* / np_avgpool* of max_pooling_test.py and average_pooling_test.py:
-- "same" pads after only (-inf for max, edge values for the average), then
-- full windows.
local function np_pool(kind, x, pool_size, strides, padding)
  local xs = x:shape()
  local r = #xs - 2
  local X, N, C = flat(x), xs[1], xs[r + 2]
  local p = tuple(pool_size, r)
  local s = tuple(strides or pool_size, r)
  local sp, out = {}, {}
  for i = 1, r do
    sp[i] = xs[i + 1]
    local pad = 0
    if padding == "same" then
      pad = sp[i] % s[i] == 0 and math.max(p[i] - s[i], 0) or math.max(p[i] - sp[i] % s[i], 0)
    end
    out[i] = math.floor((sp[i] + pad - p[i]) / s[i]) + 1
  end
  sp, p, s, out = to3(sp, 1), to3(p, 1), to3(s, 1), to3(out, 1)
  local y = {}
  for n = 0, N - 1 do for oz = 0, out[1] - 1 do for oy = 0, out[2] - 1 do for ox = 0, out[3] - 1 do
    for c = 0, C - 1 do
      local acc = kind == "max" and -math.huge or 0
      for tz = 0, p[1] - 1 do for ty = 0, p[2] - 1 do for tx = 0, p[3] - 1 do
        local iz, iy, ix = oz * s[1] + tz, oy * s[2] + ty, ox * s[3] + tx
        local pad = iz >= sp[1] or iy >= sp[2] or ix >= sp[3]
        if kind == "avg" then iz, iy, ix = math.min(iz, sp[1] - 1), math.min(iy, sp[2] - 1), math.min(ix, sp[3] - 1) end
        if kind == "avg" or not pad then
          local v = X[(((n * sp[1] + iz) * sp[2] + iy) * sp[3] + ix) * C + c + 1]
          acc = kind == "max" and math.max(acc, v) or acc + v
        end
      end end end
      y[#y + 1] = kind == "max" and acc or acc / (p[1] * p[2] * p[3])
    end
  end end end end
  return y
end

-- sum(layer(x) * r) differentiated by the tape and by central differences
-- (in double, from the float32 outputs), for x and every trainable weight:
-- ||g - d|| <= 1e-3 ||d|| + 1e-5 sqrt(n). h: the step (the layers here are
-- linear or piecewise linear with kinks kept farther than h away).
local function gradcheck(layer, x, h)
  h = h or 0.125
  x = x:clone()
  local y0 = layer(x)
  local r = klua.random.uniform(y0:shape(), { minval = 0.5, maxval = 1.5, seed = 11 }):contiguous()
  local sources = { x }
  for _, w in ipairs(layer.trainable_weights) do sources[#sources + 1] = w end
  local tape = klua.GradientTape()
  tape:start()
  tape:watch(x)
  local y = layer(x)
  tape:stop()
  local grads = tape:gradient(y, sources, r)
  local function f()
    local c, s = layer(x):contiguous(), 0
    for i = 0, tonumber(c.count) - 1 do s = s + c.data[i] * r.data[i] end
    return s
  end
  for k, t in ipairs(sources) do
    local g = grads[k]:contiguous()
    local err2, ref2 = 0, 0
    for j = 0, tonumber(t.count) - 1 do
      local orig = t.data[j]
      t.data[j] = orig + h; local xp, fp = t.data[j], f()
      t.data[j] = orig - h; local xm, fm = t.data[j], f()
      t.data[j] = orig
      local d = (fp - fm) / (xp - xm)
      err2, ref2 = err2 + (g.data[j] - d) ^ 2, ref2 + d * d
    end
    local ok = math.sqrt(err2) <= 1e-3 * math.sqrt(ref2) + 1e-5 * math.sqrt(tonumber(t.count))
    assert(ok, ("%s: gradient of source %d off: |g - numeric| = %.3g, |numeric| = %.3g")
      :format(tostring(layer), k, math.sqrt(err2), math.sqrt(ref2)))
  end
end

-- Values 0.4 apart in a random order: max pooling's windows have no near-ties.
local function distinct(shape, seed)
  local n = numel(shape)
  return ops.reshape(klua.random.shuffle(klua.arange(n) * 0.4 - n * 0.2, { seed = seed }), shape)
end

-- A layer built for `shape` with seeded random weights (Keras's tests assign np.random.normal ones).
local function with_random_weights(layer, shape, seed)
  layer:build(shape)
  local ws = {}
  for i, w in ipairs(layer.weights) do ws[i] = randn(w:shape(), seed + i) end
  layer:set_weights(ws)
  return layer
end

-- t (any shape) against a reference's flat list: every element within
-- tol * (1 + the largest |reference|), compared as tensors (some outputs are large).
local function close(t, list, tol, what)
  local want = klua.tensor(list)
  assert.are.equal(#list, tonumber(t.count), (what or "output") .. ": element count")
  local scale = 1 + ops.max(ops.abs(want)):item()
  local diff = helpers.max_abs_diff(ops.reshape(t, { -1 }), want)
  assert(diff <= tol * scale, ("%s: off by %.3g (scale %.3g)"):format(what or "output", diff, scale))
end

-- Keras's correctness cases: a layer with random weights on a random input
-- against the reference, which sees channels-last data as the NumPy ones do.
local function run_conv_case(cls, case, input_shape, reference)
  local layer = with_random_weights(cls(case), input_shape, 100)
  local x = randn(input_shape, 7)
  local y = layer(x)
  local ws = layer.weights
  if case.data_format == "channels_first" then
    close(to_last(y), reference(to_last(x), ws[1], ws[2], case), 1e-5, tostring(layer))
  else
    close(y, reference(x, ws[1], ws[2], case), 1e-5, tostring(layer))
  end
  return y
end

describe("Conv1D, Conv2D and Conv3D (keras/src/layers/convolutional/conv_test.py)", function()
  -- ConvBasicTest.test_conv1d_basic / test_conv2d_basic / test_conv3d_basic
  local basic = {
    { L.Conv1D, { filters = 5, kernel_size = 2 }, { 3, 5, 4 }, { 3, 4, 5 } },
    { L.Conv1D, { filters = 6, kernel_size = 2, padding = "same", dilation_rate = { 2 }, groups = 2 }, { 3, 4, 4 }, { 3, 4, 6 } },
    { L.Conv1D, { filters = 6, kernel_size = 2, padding = "causal", dilation_rate = { 2 }, groups = 2 }, { 3, 4, 4 }, { 3, 4, 6 } },
    { L.Conv1D, { filters = 6, kernel_size = 2, strides = { 2 }, groups = 2 }, { 3, 5, 4 }, { 3, 2, 6 } },
    { L.Conv2D, { filters = 5, kernel_size = 2 }, { 3, 5, 5, 4 }, { 3, 4, 4, 5 } },
    { L.Conv2D, { filters = 6, kernel_size = 2, padding = "same", dilation_rate = { 2, 2 }, groups = 2 }, { 3, 4, 4, 4 }, { 3, 4, 4, 6 } },
    { L.Conv2D, { filters = 6, kernel_size = { 2, 2 }, strides = { 2, 1 }, groups = 2 }, { 3, 5, 5, 4 }, { 3, 2, 4, 6 } },
    { L.Conv3D, { filters = 5, kernel_size = 2 }, { 3, 5, 5, 5, 4 }, { 3, 4, 4, 4, 5 } },
    { L.Conv3D, { filters = 6, kernel_size = 2, padding = "same", dilation_rate = { 2, 2, 2 }, groups = 2 }, { 3, 4, 4, 4, 4 }, { 3, 4, 4, 4, 6 } },
    { L.Conv3D, { filters = 6, kernel_size = { 2, 2, 3 }, strides = { 2, 1, 2 }, groups = 2 }, { 3, 5, 5, 5, 4 }, { 3, 2, 4, 2, 6 } },
    -- test_enable_lora's shapes (without LoRA)
    { L.Conv1D, { filters = 6, kernel_size = 3 }, { -1, 5, 4 }, { -1, 3, 6 } },
    { L.Conv1D, { filters = 6, kernel_size = 2, strides = 2, groups = 2 }, { -1, 5, 4 }, { -1, 2, 6 } },
    { L.Conv2D, { filters = 6, kernel_size = 3 }, { -1, 5, 5, 4 }, { -1, 3, 3, 6 } },
    { L.Conv2D, { filters = 6, kernel_size = 2, strides = 2, groups = 2 }, { -1, 5, 5, 4 }, { -1, 2, 2, 6 } },
    { L.Conv3D, { filters = 6, kernel_size = 3 }, { -1, 5, 5, 5, 4 }, { -1, 3, 3, 3, 6 } },
    { L.Conv3D, { filters = 6, kernel_size = 2, strides = 2, groups = 2 }, { -1, 5, 5, 5, 4 }, { -1, 2, 2, 2, 6 } },
  }
  it("give Keras's output shapes, computed and run, with two trainable weights", function()
    for _, c in ipairs(basic) do
      local layer = c[1](c[2])
      assert.are.same(c[4], layer:compute_output_shape(c[3]))
      local run = { unpack(c[3]) }
      if run[1] == -1 then run[1] = 2 end
      local y = layer(klua.ones(run))
      local want = { unpack(c[4]) }
      want[1] = run[1]
      assert.are.same(want, y:shape())
      assert.are.equal(2, #layer.trainable_weights)
      assert.are.equal(0, #layer.non_trainable_weights)
    end
  end)

  it("store grouped kernels as (k..., in/groups, filters)", function()
    local conv = L.Conv3D(6, { 2, 2, 3 }, { groups = 2 })
    conv:build({ 1, 5, 5, 5, 4 })
    assert.are.same({ 2, 2, 3, 2, 6 }, conv.kernel:shape())
    assert.are.same({ 6 }, conv.bias:shape())
  end)

  -- ConvCorrectnessTest.test_conv1d / test_conv2d / test_conv3d: inputs (2,8,4), (2,8,8,4), (2,8,8,8,4)
  it("match np_conv1d, groups and channels_first included", function()
    for _, c in ipairs {
      { filters = 5, kernel_size = 2 },
      { filters = 6, kernel_size = 2, padding = "same", dilation_rate = { 2 }, groups = 2 },
      { filters = 6, kernel_size = 2, padding = "causal", dilation_rate = { 2 }, groups = 2 },
      { filters = 6, kernel_size = { 2 }, strides = { 2 }, groups = 2 },
      { filters = 6, kernel_size = { 2 }, strides = { 2 }, groups = 2, data_format = "channels_first" },
    } do
      c.padding = c.padding or "valid"
      run_conv_case(L.Conv1D, c, { 2, 8, 4 }, np_conv)
    end
  end)

  it("match np_conv2d, groups and channels_first included", function()
    for _, c in ipairs {
      { filters = 5, kernel_size = 2 },
      { filters = 4, kernel_size = 3, strides = 2, padding = "same" },
      { filters = 6, kernel_size = 2, padding = "same", dilation_rate = { 2, 2 }, groups = 2 },
      { filters = 6, kernel_size = 2, padding = "same", dilation_rate = { 2, 3 }, groups = 2 },
      { filters = 6, kernel_size = { 4, 3 }, strides = { 2, 1 }, groups = 2 },
      { filters = 6, kernel_size = { 4, 3 }, strides = { 2, 1 }, groups = 2, data_format = "channels_first" },
    } do
      c.padding = c.padding or "valid"
      run_conv_case(L.Conv2D, c, { 2, 8, 8, 4 }, np_conv)
    end
  end)

  it("match np_conv3d, groups and channels_first included", function()
    for _, c in ipairs {
      { filters = 5, kernel_size = 2 },
      { filters = 6, kernel_size = 2, padding = "same", dilation_rate = { 2, 2, 2 }, groups = 2 },
      { filters = 6, kernel_size = 2, padding = "same", dilation_rate = { 2, 3, 4 }, groups = 2 },
      { filters = 6, kernel_size = { 2, 2, 3 }, strides = { 2, 1, 2 }, groups = 2 },
      { filters = 6, kernel_size = { 2, 2, 3 }, strides = { 2, 1, 2 }, groups = 2, data_format = "channels_first" },
    } do
      c.padding = c.padding or "valid"
      run_conv_case(L.Conv3D, c, { 2, 8, 8, 8, 4 }, np_conv)
    end
  end)

  it("run groups through im2col and sgemm as two separate convolutions would, values and gradients", function()
    -- 3x3 kernels over 2 groups of 4 channels (36 columns per group: im2col,
    -- not the direct loop); then of 32 channels over an image large enough
    -- for the row-block backward and for threads
    for _, case in ipairs { { { 2, 9, 9, 8 }, 6 }, { { 1, 122, 122, 64 }, 4 } } do
      local shape, filters = case[1], case[2]
      local cg, og = shape[4] / 2, filters / 2
      local x = klua.Variable(randn(shape, 1))
      local conv = with_random_weights(L.Conv2D(filters, 3, { groups = 2, padding = "same" }), shape, 20)
      local k, b = conv.kernel, conv.bias
      local tape = klua.GradientTape()
      local loss = tape:record(function() return ops.sum(ops.square(conv(x))) end)
      local g = tape:gradient(loss, { x, k })
      local tape2 = klua.GradientTape()
      local loss2 = tape2:record(function()
        local halves = {}
        for i = 1, 2 do
          local xi = ops.slice_axis(x, 4, cg * (i - 1) + 1, cg * i)
          local ki = ops.slice_axis(k, 4, og * (i - 1) + 1, og * i)
          halves[i] = require("klua.nn").conv(xi, ki, { padding = "same", bias = ops.slice_axis(b, 1, og * (i - 1) + 1, og * i) })
        end
        return ops.sum(ops.square(ops.concatenate(halves, 4)))
      end)
      local g2 = tape2:gradient(loss2, { x, k })
      near(loss:item(), loss2:item(), 1e-5)
      for i = 1, 2 do
        assert.is_true(helpers.max_abs_diff(g[i], g2[i]) <= 1e-5 * (1 + ops.max(ops.abs(g2[i])):item()))
      end
    end
  end)

  -- Keras raises "Computed output size would be zero or negative" here; klua's
  -- error comes from the kernel's check and names the layer and both shapes.
  it("compute symbolic shapes and refuse a kernel larger than the input (test_conv_symbolic_invalid_configuration)", function()
    assert.are.same({ -1, 3, 6 }, L.Conv1D(6, 3):compute_output_shape({ -1, 5, 4 }))
    assert.are.same({ -1, 6, 3, 3 }, L.Conv2D(6, 3, { data_format = "channels_first" }):compute_output_shape({ -1, 4, 5, 5 }))
    for _, c in ipairs { { L.Conv1D, { 10, 3 }, 2, 10 }, { L.Conv2D, { 10, 10, 3 }, { 2, 2 }, { 10, 10 } },
      { L.Conv3D, { 10, 10, 10, 3 }, { 2, 2, 2 }, { 10, 10, 10 } } } do
      local inputs = klua.Input{ shape = c[2] }
      local layer = c[1]{ filters = 1, kernel_size = c[3], dilation_rate = c[4] }
      assert.matches(layer.name .. "': conv%dd: input .* is smaller than the kernel", err_of(layer, inputs))
      assert.matches("computed output size would be zero or negative", err_of(layer.compute_output_shape, layer, { -1, unpack(c[2]) }))
    end
  end)

  it("refuse Keras's bad arguments, naming the layer (test_bad_init_args)", function()
    assert.matches("Conv1D '.-': filters must be a positive integer. Received: filters=0",
      err_of(L.Conv1D, { filters = 0, kernel_size = 1 }))
    assert.matches("kernel_size must be an integer or a list of 2 integers. Received: kernel_size=%(1,0%)",
      err_of(L.Conv2D, { filters = 2, kernel_size = { 1, 0 } }))
    assert.matches("strides must be an integer or a list of 2 integers. Received: strides=%(1,0%)",
      err_of(L.Conv2D, { filters = 2, kernel_size = { 2, 2 }, strides = { 1, 0 } }))
    assert.matches("strides > 1 is not supported together with dilation_rate > 1. Received: strides=%(2,2%) and dilation_rate=%(2,1%)",
      err_of(L.Conv2D, { filters = 2, kernel_size = { 2, 2 }, strides = 2, dilation_rate = { 2, 1 } }))
    assert.matches("groups must be a positive integer. Received: groups=0",
      err_of(L.Conv2D, { filters = 5, kernel_size = { 2, 2 }, groups = 0 }))
    assert.matches("filters must be divisible by groups. Received: groups=2, filters=5",
      err_of(L.Conv2D, { filters = 5, kernel_size = { 2, 2 }, groups = 2 }))
    assert.matches("Conv2D '.-': the number of input channels must be divisible by groups. Received: groups=2, but the input has 3 channels",
      err_of(function() L.Conv2D(4, 2, { groups = 2 })(klua.ones({ 1, 4, 4, 3 })) end))
    assert.matches("data_format must be \"channels_last\" or \"channels_first\". Received: data_format=nchw",
      err_of(L.Conv3D, 2, 2, { data_format = "nchw" }))
    assert.matches("Conv3D '.-': expected an input of rank 5 %(batch, channels, depth, height, width%), got shape %(2,3,4,5%)",
      err_of(function() L.Conv3D(2, 2, { data_format = "channels_first" })(klua.ones({ 2, 3, 4, 5 })) end))
    local conv = L.Conv2D(2, 2, { data_format = "channels_first" })
    conv(klua.ones({ 1, 3, 4, 4 }))
    assert.matches("expected 3 input channels %(axis 2, channels_first%), got input shape %(1,4,4,3%)", err_of(conv, klua.ones({ 1, 4, 4, 3 })))
    assert.matches("conv3d: kernel %(2,2,2,2,4%) with 2 groups expects 4 input channels %(2 per group%), input %(1,3,3,3,6%) has 6",
      err_of(require("klua.nn").conv, klua.ones({ 1, 3, 3, 3, 6 }), klua.ones({ 2, 2, 2, 2, 4 }), { groups = 2 }))
  end)

  it("round-trip groups and data_format through their config", function()
    local conv = L.Conv3D(6, { 2, 2, 3 }, { groups = 3, data_format = "channels_first", strides = { 1, 2, 1 } })
    local config = conv:get_config()
    assert.are.equal(3, config.groups)
    assert.are.equal("channels_first", config.data_format)
    local copy = L.Conv3D.from_config(config)
    assert.are.same({ 2, 2, 3 }, copy.kernel_size)
    assert.are.same({ 1, 2, 1 }, copy.strides)
    assert.are.equal(3, copy.groups)
    assert.are.equal("channels_first", copy.data_format)
    assert.are.same(conv:compute_output_shape({ -1, 3, 5, 6, 7 }), copy:compute_output_shape({ -1, 3, 5, 6, 7 }))
  end)

  it("pass the finite-difference gradient check: Conv3D with groups, Conv1D and Conv2D channels_first", function()
    gradcheck(with_random_weights(L.Conv3D(4, 2, { groups = 2, padding = "same" }), { 1, 3, 2, 3, 4 }, 30), randn({ 1, 3, 2, 3, 4 }, 31))
    gradcheck(with_random_weights(L.Conv1D(4, 2, { groups = 2, data_format = "channels_first", strides = 2 }), { 2, 4, 5 }, 32), randn({ 2, 4, 5 }, 33))
    gradcheck(with_random_weights(L.Conv2D(3, { 2, 3 }, { data_format = "channels_first", padding = "same" }), { 1, 2, 3, 4 }, 34), randn({ 1, 2, 3, 4 }, 35))
  end)
end)

describe("Conv1DTranspose, Conv2DTranspose and Conv3DTranspose (conv_transpose_test.py)", function()
  -- ConvTransposeBasicTest
  local basic = {
    { L.Conv1DTranspose, { filters = 5, kernel_size = 2, strides = 2 }, { 2, 8, 4 }, { 2, 16, 5 } },
    { L.Conv1DTranspose, { filters = 6, kernel_size = 2, strides = 3, padding = "same", output_padding = 2, dilation_rate = { 1 } }, { 2, 8, 4 }, { 2, 23, 6 } },
    { L.Conv1DTranspose, { filters = 6, kernel_size = { 2 }, strides = { 2 } }, { 2, 8, 4 }, { 2, 16, 6 } },
    { L.Conv2DTranspose, { filters = 5, kernel_size = 2, strides = 2 }, { 2, 8, 8, 4 }, { 2, 16, 16, 5 } },
    { L.Conv2DTranspose, { filters = 6, kernel_size = 2, strides = 3, padding = "same", output_padding = 2 }, { 2, 8, 8, 4 }, { 2, 23, 23, 6 } },
    { L.Conv2DTranspose, { filters = 6, kernel_size = { 2, 3 }, strides = { 2, 1 }, data_format = "channels_first" }, { 2, 4, 8, 8 }, { 2, 6, 16, 10 } },
    { L.Conv2DTranspose, { filters = 2, kernel_size = { 7, 7 }, strides = { 16, 16 } }, { 1, 14, 14, 2 }, { 1, 224, 224, 2 } },
    { L.Conv3DTranspose, { filters = 5, kernel_size = 2, strides = 2 }, { 2, 8, 8, 8, 4 }, { 2, 16, 16, 16, 5 } },
    { L.Conv3DTranspose, { filters = 6, kernel_size = 2, strides = 3, padding = "same", output_padding = 2 }, { 2, 8, 8, 8, 4 }, { 2, 23, 23, 23, 6 } },
    { L.Conv3DTranspose, { filters = 6, kernel_size = { 2, 2, 3 }, strides = { 2, 1, 2 } }, { 2, 8, 8, 8, 4 }, { 2, 16, 9, 17, 6 } },
  }
  it("give Keras's output shapes, computed and run", function()
    for _, c in ipairs(basic) do
      local layer = c[1](c[2])
      assert.are.same(c[4], layer:compute_output_shape(c[3]))
      assert.are.same(c[4], layer(klua.ones(c[3])):shape())
      assert.are.equal(2, #layer.trainable_weights)
    end
  end)

  -- ConvTransposeCorrectnessTest: inputs (2,8,4), (2,14,14,4), (2,8,8,8,4)
  it("match np_conv1d_transpose, np_conv2d_transpose and np_conv3d_transpose", function()
    local cases = {
      { L.Conv1DTranspose, { 2, 8, 4 }, { filters = 5, kernel_size = 2, strides = 2, padding = "valid" } },
      { L.Conv1DTranspose, { 2, 8, 4 }, { filters = 6, kernel_size = 2, strides = 3, padding = "same", output_padding = 2 } },
      { L.Conv1DTranspose, { 2, 8, 4 }, { filters = 6, kernel_size = { 2 }, strides = { 2 }, padding = "valid" } },
      { L.Conv2DTranspose, { 2, 14, 14, 4 }, { filters = 5, kernel_size = 2, strides = 2, padding = "valid" } },
      { L.Conv2DTranspose, { 2, 14, 14, 4 }, { filters = 6, kernel_size = 7, strides = 16, padding = "same", output_padding = 2 } },
      { L.Conv2DTranspose, { 2, 14, 14, 4 }, { filters = 6, kernel_size = { 2, 3 }, strides = { 2, 1 }, padding = "valid" } },
      { L.Conv2DTranspose, { 2, 14, 14, 4 }, { filters = 2, kernel_size = { 7, 7 }, strides = { 16, 16 }, padding = "valid" } },
      { L.Conv3DTranspose, { 2, 8, 8, 8, 4 }, { filters = 5, kernel_size = 2, strides = 2, padding = "valid" } },
      { L.Conv3DTranspose, { 2, 8, 8, 8, 4 }, { filters = 6, kernel_size = 2, strides = 3, padding = "same", output_padding = 2 } },
      { L.Conv3DTranspose, { 2, 8, 8, 8, 4 }, { filters = 6, kernel_size = { 2, 2, 3 }, strides = { 2, 1, 2 }, padding = "valid" } },
    }
    for _, c in ipairs(cases) do run_conv_case(c[1], c[3], c[2], np_conv_transpose) end
  end)

  it("match np_conv1d_transpose on ones for every kernel size, stride, padding and output_padding (test_conv1d_transpose_consistency)", function()
    local n = 0
    for k = 1, 4 do for s = 1, 4 do for _, padding in ipairs { "same", "valid" } do for op = 0, 4 do
      local output_padding = op > 0 and op or nil
      if not (output_padding and output_padding >= s) then
        local layer = L.Conv1DTranspose{ filters = 1, kernel_size = k, strides = s, padding = padding, output_padding = output_padding }
        layer:build({ 1, 3, 1 })
        layer:set_weights({ ops.reshape(klua.arange(k) + 1, { k, 1, 1 }), klua.zeros({ 1 }) })
        local x = klua.ones({ 1, 3, 1 })
        near(flat(layer(x)), np_conv_transpose(x, layer.kernel, nil, { strides = s, padding = padding, output_padding = output_padding }), 1e-5)
        n = n + 1
      end
    end end end end
    assert.are.equal(80, n)
  end)

  it("infer (None, None, None, 2) for an unknown spatial size (test_shape_inference_static_unknown_shape)", function()
    local n = 0
    for k = 1, 4 do for s = 1, 4 do for _, padding in ipairs { "same", "valid" } do for op = 0, 4 do
      local output_padding = op > 0 and op or nil
      if not (output_padding and output_padding >= s) then
        local x = klua.Input{ shape = { -1, -1, 3 } }
        local y = L.Conv2DTranspose{ filters = 2, kernel_size = k, strides = s, padding = padding, output_padding = output_padding }(x)
        assert.are.same({ -1, -1, -1, 2 }, { unpack(y.shape) })
        n = n + 1
      end
    end end end end
    assert.are.equal(80, n)
  end)

  it("round-trip output_padding (test_output_padding_serialization) and refuse bad arguments (test_bad_init_args)", function()
    for _, c in ipairs { { L.Conv1DTranspose, { 1, 8, 3 } }, { L.Conv2DTranspose, { 1, 5, 5, 3 } }, { L.Conv3DTranspose, { 1, 5, 5, 5, 3 } } } do
      local layer = c[1](2, 3, { strides = 2, output_padding = 1 })
      local config = layer:get_config()
      assert.is_not_nil(config.output_padding)
      local revived = c[1].from_config(config)
      assert.are.same(layer.output_padding, revived.output_padding)
      assert.are.same(layer:compute_output_shape(c[2]), revived:compute_output_shape(c[2]))
    end
    assert.matches("filters must be a positive integer. Received: filters=0", err_of(L.Conv1DTranspose, { filters = 0, kernel_size = 1 }))
    assert.matches("kernel_size must be an integer or a list of 2 integers", err_of(L.Conv2DTranspose, { filters = 2, kernel_size = { 1, 0 } }))
    for _, c in ipairs {
      { L.Conv1DTranspose, { filters = 2, kernel_size = 3, strides = 2, output_padding = 2 } },
      { L.Conv2DTranspose, { filters = 2, kernel_size = 3, strides = 2, output_padding = 3 } },
      { L.Conv2DTranspose, { filters = 2, kernel_size = 3, strides = { 2, 3 }, output_padding = { 1, 3 } } },
      { L.Conv2DTranspose, { filters = 16, kernel_size = 3, strides = { 1, 1 }, output_padding = 1 } },
      { L.Conv3DTranspose, { filters = 8, kernel_size = 3, strides = 1, output_padding = 1 } },
    } do
      assert.matches("output_padding must be smaller than the strides", err_of(c[1], c[2]))
    end
    assert.matches("strides > 1 is not supported together with dilation_rate > 1",
      err_of(L.Conv2DTranspose, { filters = 2, kernel_size = { 2, 2 }, strides = 2, dilation_rate = { 2, 1 } }))
    assert.matches("Conv2DTranspose '.-': groups is not an argument of Conv2DTranspose", err_of(L.Conv2DTranspose, 2, 2, { groups = 2 }))
  end)

  it("store the kernel as (k..., filters, in) and pass the gradient check", function()
    local t1 = with_random_weights(L.Conv1DTranspose(3, 3, { strides = 2, padding = "same" }), { 2, 4, 2 }, 40)
    assert.are.same({ 3, 3, 2 }, t1.kernel:shape())
    gradcheck(t1, randn({ 2, 4, 2 }, 41))
    local t3 = with_random_weights(L.Conv3DTranspose(2, 2, { strides = { 2, 1, 2 }, data_format = "channels_first" }), { 1, 2, 2, 3, 2 }, 42)
    assert.are.same({ 2, 2, 2, 2, 2 }, t3.kernel:shape())
    gradcheck(t3, randn({ 1, 2, 2, 3, 2 }, 43))
  end)
end)

describe("DepthwiseConv1D and DepthwiseConv2D (depthwise_conv_test.py)", function()
  it("give Keras's output shapes (DepthwiseConvBasicTest)", function()
    for _, c in ipairs {
      { L.DepthwiseConv1D, { depth_multiplier = 5, kernel_size = 2 }, { 3, 5, 4 }, { 3, 4, 20 } },
      { L.DepthwiseConv1D, { depth_multiplier = 6, kernel_size = 2, padding = "same", dilation_rate = { 2 } }, { 3, 4, 4 }, { 3, 4, 24 } },
      { L.DepthwiseConv1D, { depth_multiplier = 6, kernel_size = 2, strides = { 2 } }, { 3, 5, 4 }, { 3, 2, 24 } },
      { L.DepthwiseConv1D, { depth_multiplier = 6, kernel_size = 2, padding = "same", dilation_rate = { 2 }, data_format = "channels_first" }, { 3, 4, 10 }, { 3, 24, 10 } },
      { L.DepthwiseConv2D, { depth_multiplier = 5, kernel_size = 2 }, { 3, 5, 5, 4 }, { 3, 4, 4, 20 } },
      { L.DepthwiseConv2D, { depth_multiplier = 6, kernel_size = 2, padding = "same", dilation_rate = { 2, 2 } }, { 3, 4, 4, 4 }, { 3, 4, 4, 24 } },
      { L.DepthwiseConv2D, { depth_multiplier = 6, kernel_size = { 2, 2 }, strides = { 2, 2 } }, { 3, 5, 5, 4 }, { 3, 2, 2, 24 } },
    } do
      local layer = c[1](c[2])
      assert.are.same(c[4], layer:compute_output_shape(c[3]))
      assert.are.same(c[4], layer(klua.ones(c[3])):shape())
      assert.are.equal(2, #layer.trainable_weights)
    end
  end)

  it("match np_depthwise_conv1d and np_depthwise_conv2d (DepthwiseConvCorrectnessTest)", function()
    for _, c in ipairs {
      { L.DepthwiseConv1D, { depth_multiplier = 5, kernel_size = 2, padding = "valid" }, { 2, 8, 4 } },
      { L.DepthwiseConv1D, { depth_multiplier = 6, kernel_size = 2, padding = "same", dilation_rate = { 2 } }, { 2, 8, 4 } },
      { L.DepthwiseConv1D, { depth_multiplier = 6, kernel_size = { 2 }, strides = { 2 }, padding = "valid" }, { 2, 8, 4 } },
      { L.DepthwiseConv1D, { depth_multiplier = 6, kernel_size = 2, padding = "same", dilation_rate = { 2 }, data_format = "channels_first" }, { 2, 4, 8 } },
      { L.DepthwiseConv2D, { depth_multiplier = 5, kernel_size = 2, padding = "valid" }, { 2, 8, 8, 4 } },
      { L.DepthwiseConv2D, { depth_multiplier = 6, kernel_size = 2, padding = "same", dilation_rate = { 2, 2 } }, { 2, 8, 8, 4 } },
      { L.DepthwiseConv2D, { depth_multiplier = 6, kernel_size = { 2, 2 }, strides = { 2, 2 }, padding = "valid" }, { 2, 8, 8, 4 } },
    } do
      run_conv_case(c[1], c[2], c[3], np_depthwise)
    end
  end)

  it("refuse bad arguments and a kernel larger than the input, eagerly (test_bad_init_args, test_invalid_output_shape_raises)", function()
    assert.matches("DepthwiseConv1D '.-': depth_multiplier must be a positive integer. Received: depth_multiplier=0",
      err_of(L.DepthwiseConv1D, { depth_multiplier = 0, kernel_size = 1 }))
    assert.matches("kernel_size must be an integer or a list of 2 integers. Received: kernel_size=%(1,0%)",
      err_of(L.DepthwiseConv2D, { depth_multiplier = 2, kernel_size = { 1, 0 } }))
    assert.matches("strides must be an integer or a list of 2 integers",
      err_of(L.DepthwiseConv2D, { depth_multiplier = 2, kernel_size = { 2, 2 }, strides = { 1, 0 } }))
    assert.matches("DepthwiseConv1D '.-': computed output size would be zero or negative",
      err_of(L.DepthwiseConv1D(11, { strides = 5 }), klua.ones({ 4, 10, 3 })))
    assert.matches("DepthwiseConv2D '.-': computed output size would be zero or negative",
      err_of(L.DepthwiseConv2D(5, { strides = 2 }), klua.ones({ 2, 4, 4, 3 })))
  end)

  it("round-trip their config and pass the gradient check", function()
    local dw = L.DepthwiseConv1D(3, { depth_multiplier = 2, data_format = "channels_first", padding = "same" })
    local copy = L.DepthwiseConv1D.from_config(dw:get_config())
    assert.are.equal(2, copy.depth_multiplier)
    assert.are.equal("channels_first", copy.data_format)
    assert.is_nil(dw:get_config().filters)
    gradcheck(with_random_weights(dw, { 2, 3, 5 }, 50), randn({ 2, 3, 5 }, 51))
    gradcheck(with_random_weights(L.DepthwiseConv2D(2, { data_format = "channels_first" }), { 1, 2, 3, 4 }, 52), randn({ 1, 2, 3, 4 }, 53))
  end)
end)

describe("SeparableConv1D and SeparableConv2D (separable_conv_test.py)", function()
  it("give Keras's output shapes with three trainable weights (SeparableConvBasicTest)", function()
    for _, c in ipairs {
      { L.SeparableConv1D, { depth_multiplier = 5, filters = 5, kernel_size = 2 }, { 3, 5, 4 }, { 3, 4, 5 } },
      { L.SeparableConv1D, { depth_multiplier = 6, filters = 6, kernel_size = 2, padding = "same", dilation_rate = { 2 } }, { 3, 4, 4 }, { 3, 4, 6 } },
      { L.SeparableConv1D, { depth_multiplier = 6, filters = 6, kernel_size = 2, strides = { 2 } }, { 3, 5, 4 }, { 3, 2, 6 } },
      { L.SeparableConv2D, { depth_multiplier = 5, filters = 5, kernel_size = 2 }, { 3, 5, 5, 4 }, { 3, 4, 4, 5 } },
      { L.SeparableConv2D, { depth_multiplier = 6, filters = 6, kernel_size = 2, padding = "same", dilation_rate = { 2, 2 } }, { 3, 4, 4, 4 }, { 3, 4, 4, 6 } },
      { L.SeparableConv2D, { depth_multiplier = 6, filters = 6, kernel_size = { 2, 2 }, strides = { 2, 2 } }, { 3, 5, 5, 4 }, { 3, 2, 2, 6 } },
    } do
      local layer = c[1](c[2])
      assert.are.same(c[4], layer:compute_output_shape(c[3]))
      assert.are.same(c[4], layer(klua.ones(c[3])):shape())
      assert.are.equal(3, #layer.trainable_weights)
    end
  end)

  it("hold Keras's weights: depthwise_kernel (k..., in, depth_multiplier), pointwise_kernel (1..., in*depth_multiplier, filters), bias", function()
    local sep = L.SeparableConv2D(7, 3, { depth_multiplier = 2 })
    sep:build({ 1, 6, 6, 4 })
    local names, shapes = {}, {}
    for i, w in ipairs(sep.weights) do names[i], shapes[i] = w.name, w:shape() end
    assert.are.same({ "depthwise_kernel", "pointwise_kernel", "bias" }, names)
    assert.are.same({ { 3, 3, 4, 2 }, { 1, 1, 8, 7 }, { 7 } }, shapes)
    assert.are.equal(3 * 3 * 4 * 2 + 8 * 7 + 7, sep:count_params())
  end)

  -- SeparableConvCorrectnessTest: the depthwise reference, then np_conv with the pointwise kernel
  it("match np_depthwise_conv followed by np_conv", function()
    for _, c in ipairs {
      { L.SeparableConv1D, { depth_multiplier = 5, filters = 5, kernel_size = 2, padding = "valid" }, { 2, 8, 4 } },
      { L.SeparableConv1D, { depth_multiplier = 6, filters = 6, kernel_size = 2, padding = "same", dilation_rate = { 2 } }, { 2, 8, 4 } },
      { L.SeparableConv1D, { depth_multiplier = 6, filters = 6, kernel_size = { 2 }, strides = { 2 }, padding = "valid" }, { 2, 8, 4 } },
      { L.SeparableConv2D, { depth_multiplier = 5, filters = 5, kernel_size = 2, padding = "valid" }, { 2, 8, 8, 4 } },
      { L.SeparableConv2D, { depth_multiplier = 6, filters = 6, kernel_size = 2, padding = "same", dilation_rate = { 2, 2 } }, { 2, 8, 8, 4 } },
      { L.SeparableConv2D, { depth_multiplier = 6, filters = 6, kernel_size = { 2, 2 }, strides = { 2, 2 }, padding = "valid" }, { 2, 8, 8, 4 } },
    } do
      local layer = with_random_weights(c[1](c[2]), c[3], 60)
      local x = randn(c[3], 61)
      local dk, pk, b = unpack(layer.weights)
      local mid = np_depthwise(x, dk, nil, c[2])
      local ms = layer:compute_output_shape(c[3])   -- the depthwise output: the same spatial sizes
      ms[#ms] = c[3][#c[3]] * c[2].depth_multiplier
      near(flat(layer(x)), np_conv(klua.tensor(mid):reshape(ms), pk, b, { padding = "valid" }), 1e-4)
    end
  end)

  it("refuse bad arguments and a kernel larger than the input, eagerly (test_bad_init_args, test_invalid_output_shape_raises)", function()
    assert.matches("depth_multiplier must be a positive integer. Received: depth_multiplier=0",
      err_of(L.SeparableConv1D, { depth_multiplier = 0, filters = 1, kernel_size = 1 }))
    assert.matches("filters must be a positive integer. Received: filters=0",
      err_of(L.SeparableConv1D, { depth_multiplier = 1, filters = 0, kernel_size = 1 }))
    assert.matches("kernel_size must be an integer or a list of 2 integers", err_of(L.SeparableConv2D, { depth_multiplier = 2, filters = 2, kernel_size = { 1, 0 } }))
    assert.matches("strides must be an integer or a list of 2 integers",
      err_of(L.SeparableConv2D, { depth_multiplier = 2, filters = 2, kernel_size = { 2, 2 }, strides = { 1, 0 } }))
    assert.matches("SeparableConv1D '.-': computed output size would be zero or negative",
      err_of(L.SeparableConv1D(64, 11, { strides = 5 }), klua.ones({ 4, 10, 12 })))
    assert.matches("SeparableConv2D '.-': computed output size would be zero or negative",
      err_of(L.SeparableConv2D(8, 5, { strides = 2 }), klua.ones({ 2, 4, 4, 3 })))
  end)

  it("round-trip their config and pass the gradient check, channels_first included", function()
    local sep = L.SeparableConv1D(3, 2, { depth_multiplier = 2, pointwise_initializer = "ones", padding = "same" })
    local config = sep:get_config()
    assert.are.equal(2, config.depth_multiplier)
    assert.is_nil(config.kernel_initializer)
    assert.are.equal("Ones", L.SeparableConv1D.from_config(config):get_config().pointwise_initializer.class_name)
    gradcheck(with_random_weights(sep, { 2, 4, 2 }, 70), randn({ 2, 4, 2 }, 71))
    gradcheck(with_random_weights(L.SeparableConv2D(2, 2, { data_format = "channels_first", strides = 2 }), { 1, 2, 4, 5 }, 72), randn({ 1, 2, 4, 5 }, 73))
  end)
end)

describe("MaxPooling1D/2D/3D and AveragePooling1D/2D/3D (max_pooling_test.py, average_pooling_test.py)", function()
  it("give Keras's output shapes, data_format included (MaxPoolingBasicTest, AveragePoolingBasicTest)", function()
    local M, A = "max", "avg"
    local cls = { [M] = { L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D }, [A] = { L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D } }
    for _, c in ipairs {
      { M, 2, 1, "valid", "channels_last", { 3, 5, 4 }, { 3, 4, 4 } }, { M, 2, 1, "same", "channels_first", { 3, 5, 4 }, { 3, 5, 4 } },
      { M, { 2 }, { 2 }, "valid", "channels_last", { 3, 5, 4 }, { 3, 2, 4 } },
      { M, 2, 1, "valid", "channels_last", { 3, 5, 5, 4 }, { 3, 4, 4, 4 } }, { M, 2, 1, "same", "channels_first", { 3, 5, 5, 4 }, { 3, 5, 5, 4 } },
      { M, { 2, 3 }, { 2, 2 }, "valid", "channels_last", { 3, 5, 5, 4 }, { 3, 2, 2, 4 } },
      { M, 2, 1, "valid", "channels_last", { 3, 5, 5, 5, 4 }, { 3, 4, 4, 4, 4 } }, { M, 2, 1, "same", "channels_first", { 3, 5, 5, 5, 4 }, { 3, 5, 5, 5, 4 } },
      { M, { 2, 3, 2 }, { 2, 2, 1 }, "valid", "channels_last", { 3, 5, 5, 5, 4 }, { 3, 2, 2, 4, 4 } },
      { A, 2, 1, "valid", "channels_last", { 3, 5, 4 }, { 3, 4, 4 } }, { A, 2, 1, "same", "channels_first", { 3, 5, 4 }, { 3, 5, 4 } },
      { A, { 2 }, { 2 }, "valid", "channels_last", { 3, 5, 4 }, { 3, 2, 4 } },
      { A, 2, 1, "valid", "channels_last", { 3, 5, 5, 4 }, { 3, 4, 4, 4 } }, { A, 2, 1, "same", "channels_last", { 3, 5, 5, 4 }, { 3, 5, 5, 4 } },
      { A, 2, 1, "valid", "channels_first", { 3, 5, 5, 4 }, { 3, 5, 4, 3 } }, { A, 2, 1, "same", "channels_first", { 3, 5, 5, 4 }, { 3, 5, 5, 4 } },
      { A, { 2, 3 }, { 2, 2 }, "valid", "channels_last", { 3, 5, 5, 4 }, { 3, 2, 2, 4 } },
      { A, { 2, 3 }, { 2, 2 }, "same", "channels_last", { 3, 5, 5, 4 }, { 3, 3, 3, 4 } },
      { A, { 2, 3 }, { 3, 3 }, "same", "channels_first", { 3, 5, 5, 4 }, { 3, 5, 2, 2 } },
      { A, 2, 1, "valid", "channels_last", { 3, 5, 5, 5, 4 }, { 3, 4, 4, 4, 4 } }, { A, 2, 1, "same", "channels_first", { 3, 5, 5, 5, 4 }, { 3, 5, 5, 5, 4 } },
      { A, { 2, 3, 2 }, { 2, 2, 1 }, "valid", "channels_last", { 3, 5, 5, 5, 4 }, { 3, 2, 2, 4, 4 } },
    } do
      local layer = cls[c[1]][#c[6] - 2]{ pool_size = c[2], strides = c[3], padding = c[4], data_format = c[5] }
      assert.are.same(c[7], layer:compute_output_shape(c[6]))
      assert.are.same(c[7], layer(klua.ones(c[6])):shape())
    end
  end)

  -- MaxPoolingCorrectnessTest / AveragePoolingCorrectnessTest: arange inputs
  it("match np_maxpool1d/2d/3d and np_avgpool1d/2d/3d on Keras's arange inputs", function()
    local cases = {
      { "max", { 2, 3, 4 }, { { 2, 1, "valid" }, { 2, 1, "same" }, { { 2 }, { 2 }, "valid" } } },
      { "max", { 1, 5, 5, 4 }, { { 2, 1, "valid" }, { { 2, 2 }, { 2, 2 }, "same" }, { { 2, 3 }, { 3, 3 }, "same" } } },
      { "max", { 2, 3, 4, 5, 2 }, { { 2, 1, "valid" }, { 2, 1, "same" }, { { 2, 3, 2 }, { 2, 2, 1 }, "valid" } } },
      { "avg", { 2, 3, 4 }, { { 2, 1, "valid" }, { { 2 }, { 2 }, "valid" }, { 2, 1, "same" }, { { 2 }, { 2 }, "same" } } },
      { "avg", { 1, 4, 4, 1 }, { { 2, 1, "valid" }, { { 2, 3 }, { 2, 2 }, "valid" }, { 2, { 2, 1 }, "same" }, { { 2, 2 }, { 2, 2 }, "same" } } },
      { "avg", { 2, 3, 4, 5, 2 }, { { 2, 1, "valid" }, { { 2, 3, 2 }, { 2, 2, 1 }, "valid" }, { 2, 1, "same" }, { { 2, 2, 2 }, { 2, 2, 1 }, "same" } } },
    }
    local classes = { max = { L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D }, avg = { L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D } }
    local n = 0
    for _, c in ipairs(cases) do
      local x = arange(c[2])
      for _, p in ipairs(c[3]) do
        for _, df in ipairs { "channels_last", "channels_first" } do
          local layer = classes[c[1]][#c[2] - 2]{ pool_size = p[1], strides = p[2], padding = p[3], data_format = df }
          local y = df == "channels_first" and to_last(layer(to_first(x))) or layer(x)
          near(flat(y), np_pool(c[1], x, p[1], p[2], p[3]), 1e-6, c[1] .. " pool " .. #c[2] - 2 .. "d " .. p[3] .. " " .. df)
          n = n + 1
        end
      end
    end
    assert.are.equal(42, n)
  end)

  it("round-trip data_format and pass the gradient check in 3-D", function()
    local pool = L.MaxPooling3D({ 2, 2, 1 }, { padding = "same", data_format = "channels_first" })
    local copy = L.MaxPooling3D.from_config(pool:get_config())
    assert.are.equal("channels_first", copy.data_format)
    assert.are.same({ 2, 2, 1 }, copy.pool_size)
    gradcheck(pool, distinct({ 2, 2, 3, 3, 2 }, 80))
    gradcheck(L.AveragePooling3D({ 2, 3, 2 }, { strides = 1, padding = "same" }), randn({ 1, 3, 4, 3, 2 }, 81))
    gradcheck(L.MaxPooling1D(2, { data_format = "channels_first", strides = 1 }), distinct({ 2, 3, 5 }, 82))
    assert.matches("MaxPooling3D '.-': expected an input of rank 5, got shape %(2,3,4,5%)", err_of(L.MaxPooling3D(2), klua.ones({ 2, 3, 4, 5 })))
    assert.matches("data_format must be \"channels_last\" or \"channels_first\"", err_of(L.AveragePooling2D, 2, { data_format = "NHWC" }))
  end)
end)

describe("global pooling in 1-D, 2-D and 3-D (global_average_pooling_test.py, global_max_pooling_test.py)", function()
  local classes = {
    average = { L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D },
    max = { L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D },
  }

  it("give Keras's output shapes with keepdims and data_format", function()
    for _, kind in ipairs { "average", "max" } do
      for r, shape in ipairs { { 3, 5, 4 }, { 3, 5, 6, 4 }, { 3, 5, 6, 5, 4 } } do
        local keep = { 3 }
        for i = 2, r + 1 do keep[i] = 1 end
        keep[r + 2] = 4
        for _, c in ipairs { { "channels_last", false, { 3, 4 } }, { "channels_last", true, keep }, { "channels_first", false, { 3, 5 } } } do
          local layer = classes[kind][r]{ data_format = c[1], keepdims = c[2] }
          assert.are.same(c[3], layer:compute_output_shape(shape))
          assert.are.same(c[3], layer(klua.ones(shape)):shape())
        end
      end
    end
  end)

  -- the Correctness tests: arange inputs (2,3,4), (2,3,4,4), (2,3,3,5,4)
  it("reduce Keras's arange inputs over the spatial axes, channels_first and keepdims included", function()
    for r, shape in ipairs { { 2, 3, 4 }, { 2, 3, 4, 4 }, { 2, 3, 3, 5, 4 } } do
      local x = arange(shape)
      for _, kind in ipairs { "average", "max" } do
        for _, df in ipairs { "channels_last", "channels_first" } do
          for _, keepdims in ipairs { false, true } do
            local axes = {}
            for i = 1, r do axes[i] = df == "channels_first" and i + 2 or i + 1 end
            local want = kind == "max" and ops.max(x, axes, keepdims) or ops.mean(x, axes, keepdims)
            local y = classes[kind][r]{ data_format = df, keepdims = keepdims }(x)
            assert.are.same(want:shape(), y:shape())
            near(flat(y), flat(want), 1e-6)
          end
        end
      end
    end
    -- np_gap1d's mask cases: masked steps take no part
    local x = arange({ 2, 3, 4 })
    near(L.GlobalAveragePooling1D()(x, { mask = klua.tensor({ { 1, 1, 0 }, { 0, 1, 0 } }) }):totable(),
      { { 2, 3, 4, 5 }, { 16, 17, 18, 19 } }, 1e-6)
    near(L.GlobalAveragePooling1D{ data_format = "channels_first" }(x, { mask = klua.tensor({ { 1, 1, 0, 0 }, { 0, 1, 0, 1 } }) }):totable(),
      { { 0.5, 4.5, 8.5 }, { 14, 18, 22 } }, 1e-6)
  end)

  it("round-trip data_format and pass the gradient check in 3-D", function()
    local g = L.GlobalMaxPooling3D{ data_format = "channels_first", keepdims = true }
    local copy = L.GlobalMaxPooling3D.from_config(g:get_config())
    assert.are.equal("channels_first", copy.data_format)
    assert.is_true(copy.keepdims)
    gradcheck(g, distinct({ 2, 2, 2, 3, 2 }, 90))
    gradcheck(L.GlobalAveragePooling3D(), randn({ 2, 2, 3, 2, 3 }, 91))
  end)
end)

describe("UpSampling1D, UpSampling2D and UpSampling3D (up_sampling*_test.py)", function()
  it("repeat steps as Keras's test_upsampling_1d_correctness, and infer shapes", function()
    local y = L.UpSampling1D(2)(arange({ 2, 2, 3 }))
    near(y:totable(), { { { 0, 1, 2 }, { 0, 1, 2 }, { 3, 4, 5 }, { 3, 4, 5 } }, { { 6, 7, 8 }, { 6, 7, 8 }, { 9, 10, 11 }, { 9, 10, 11 } } }, 0)
    near(L.UpSampling1D(3)(klua.ones({ 2, 1, 5 })):totable(), klua.ones({ 2, 3, 5 }):totable(), 0)
    assert.are.same({ 3, 10, 4 }, L.UpSampling1D{ size = 2 }:compute_output_shape({ 3, 5, 4 }))
    assert.are.same({ -1, 4, 3 }, L.UpSampling1D(2):compute_output_shape({ -1, 2, 3 }))
    assert.are.same({ 2, -1, 3 }, L.UpSampling1D(4):compute_output_shape({ 2, -1, 3 }))
    for _, bad in ipairs { 0, -2, 2.5, "2", true } do
      assert.matches("UpSampling1D '.-': size must be a positive integer", err_of(L.UpSampling1D, bad))
    end
  end)

  it("repeat rows and columns in either data_format (test_upsampling_2d, test_upsampling_2d_correctness)", function()
    near(L.UpSampling2D({ 1, 2 })(arange({ 2, 2, 1, 3 })):totable(),
      { { { { 0, 1, 2 }, { 0, 1, 2 } }, { { 3, 4, 5 }, { 3, 4, 5 } } }, { { { 6, 7, 8 }, { 6, 7, 8 } }, { { 9, 10, 11 }, { 9, 10, 11 } } } }, 0)
    local x = randn({ 2, 11, 12, 2 }, 100)
    for _, col in ipairs { 2, 3 } do
      local last = L.UpSampling2D{ size = { 2, col } }(x)
      local first = L.UpSampling2D{ size = { 2, col }, data_format = "channels_first" }(to_first(x))
      assert.are.same({ 2, 22, 12 * col, 2 }, last:shape())
      assert.are.same({ 2, 2, 22, 12 * col }, first:shape())
      assert.are.equal(0, helpers.max_abs_diff(to_last(first), last))
      near(flat(ops.slice_axis(ops.slice_axis(last, 2, 2, 2), 3, col, col)), flat(ops.slice_axis(ops.slice_axis(x, 2, 1, 1), 3, 1, 1)), 0)
    end
  end)

  -- test_upsampling_2d_bilinear checks shapes; the values are TF's resize
  -- (half_pixel_centers) that Keras 3 calls: [0, 1] enlarged by 2 is
  -- [0, 0.25, 0.75, 1], and a bilinear image is exact
  it("interpolate bilinearly as Keras's resize, in either data_format", function()
    local x = klua.tensor({ { { { 0 }, { 1 } }, { { 2 }, { 3 } } } })
    near(ops.reshape(L.UpSampling2D{ size = 2, interpolation = "bilinear" }(x), { 4, 4 }):totable(),
      { { 0, 0.25, 0.75, 1 }, { 0.5, 0.75, 1.25, 1.5 }, { 1.5, 1.75, 2.25, 2.5 }, { 2, 2.25, 2.75, 3 } }, 1e-6)
    near(flat(L.UpSampling2D{ size = { 1, 3 }, interpolation = "bilinear" }(klua.tensor({ { { { 0 }, { 3 } } } }))),
      { 0, 0, 1, 2, 3, 3 }, 1e-6)
    local img = randn({ 2, 11, 12, 2 }, 101)
    for _, col in ipairs { 2, 3 } do
      local last = L.UpSampling2D{ size = { 2, col }, interpolation = "bilinear" }(img)
      assert.are.same({ 2, 22, 12 * col, 2 }, last:shape())
      local first = L.UpSampling2D{ size = { 2, col }, interpolation = "bilinear", data_format = "channels_first" }(to_first(img))
      assert.is_true(helpers.max_abs_diff(to_last(first), last) < 1e-6)
    end
    assert.matches("interpolation must be \"nearest\" or \"bilinear\"", err_of(L.UpSampling2D, 2, { interpolation = "bicubic" }))
    local up = L.UpSampling2D({ 2, 3 }, { interpolation = "bilinear", data_format = "channels_first" })
    local copy = L.UpSampling2D.from_config(up:get_config())
    assert.are.equal("bilinear", copy.interpolation)
    assert.are.same({ 2, 3 }, copy.size)
    assert.are.same({ -1, 3, 8, 15 }, copy:compute_output_shape({ -1, 3, 4, 5 }))
    gradcheck(up, randn({ 1, 2, 3, 2 }, 102))
  end)

  it("repeat depth, rows and columns (test_upsampling_3d, test_upsampling_3d_correctness)", function()
    local y = L.UpSampling3D({ 2, 2, 2 })(arange({ 2, 1, 2, 1, 3 }))
    local a, b = { 0, 1, 2 }, { 3, 4, 5 }
    local c, d = { 6, 7, 8 }, { 9, 10, 11 }
    local one = { { { a, a }, { a, a }, { b, b }, { b, b } }, { { a, a }, { a, a }, { b, b }, { b, b } } }
    local two = { { { c, c }, { c, c }, { d, d }, { d, d } }, { { c, c }, { c, c }, { d, d }, { d, d } } }
    near(y:totable(), { one, two }, 0)
    local x = randn({ 2, 10, 11, 12, 2 }, 103)
    for _, d1 in ipairs { 2, 3 } do
      local last = L.UpSampling3D{ size = { d1, 2, 3 } }(x)
      assert.are.same({ 2, 10 * d1, 22, 36, 2 }, last:shape())
      local first = L.UpSampling3D{ size = { d1, 2, 3 }, data_format = "channels_first" }(to_first(x))
      assert.are.same({ 2, 2, 10 * d1, 22, 36 }, first:shape())
      assert.are.equal(0, helpers.max_abs_diff(to_last(first), last))
    end
    assert.are.same({ 2, 20, 22, 24, 2 }, L.UpSampling3D(2):compute_output_shape({ 2, 10, 11, 12, 2 }))
    assert.are.same({ 2, 2, 20, 22, 24 }, L.UpSampling3D(2, { data_format = "channels_first" }):compute_output_shape({ 2, 2, 10, 11, 12 }))
    gradcheck(L.UpSampling3D({ 2, 1, 3 }), randn({ 1, 2, 2, 2, 2 }, 104))
    gradcheck(L.UpSampling1D(3), randn({ 2, 3, 2 }, 105))
  end)
end)

describe("ZeroPadding1D, ZeroPadding2D and ZeroPadding3D (zero_padding*_test.py)", function()
  -- the outputs hold zeros at the padded places and the input inside
  local function check_inside(y, x, axes, pads)
    local inner = y
    for i, ax in ipairs(axes) do
      local n = y:shape()[ax]
      inner = ops.slice_axis(inner, ax, pads[i][1] + 1, n - pads[i][2])
    end
    assert.are.equal(0, helpers.max_abs_diff(inner, x))
    -- x is positive, so equal sums leave only zeros outside
    assert.is_true(math.abs(ops.sum(y):item() - ops.sum(x):item()) < 1e-4)
  end

  it("pad the spatial axes as asked, in either data_format", function()
    local x1, x2, x3 = klua.random.uniform({ 1, 2, 3 }, { minval = 0.5, maxval = 1, seed = 1 }),
      klua.random.uniform({ 1, 2, 3, 4 }, { minval = 0.5, maxval = 1, seed = 2 }), klua.random.uniform({ 1, 2, 3, 4, 5 }, { minval = 0.5, maxval = 1, seed = 3 })
    -- test_zero_padding_1d, test_zero_padding_1d_with_same_padding
    check_inside(L.ZeroPadding1D{ padding = { 1, 2 }, data_format = "channels_last" }(x1), x1, { 2 }, { { 1, 2 } })
    check_inside(L.ZeroPadding1D{ padding = { 1, 2 }, data_format = "channels_first" }(x1), x1, { 3 }, { { 1, 2 } })
    for _, p in ipairs { { 2, 2 }, 2 } do check_inside(L.ZeroPadding1D(p)(x1), x1, { 2 }, { { 2, 2 } }) end
    -- test_zero_padding_2d, test_zero_padding_2d_with_same_padding
    check_inside(L.ZeroPadding2D{ padding = { { 1, 2 }, { 3, 4 } } }(x2), x2, { 2, 3 }, { { 1, 2 }, { 3, 4 } })
    check_inside(L.ZeroPadding2D{ padding = { { 1, 2 }, { 3, 4 } }, data_format = "channels_first" }(x2), x2, { 3, 4 }, { { 1, 2 }, { 3, 4 } })
    for _, p in ipairs { { { 2, 2 }, { 2, 2 } }, { 2, 2 }, 2 } do
      check_inside(L.ZeroPadding2D(p, { data_format = "channels_first" })(x2), x2, { 3, 4 }, { { 2, 2 }, { 2, 2 } })
    end
    -- test_zero_padding_3d, test_zero_padding_3d_with_same_padding
    check_inside(L.ZeroPadding3D{ padding = { { 1, 2 }, { 3, 4 }, { 0, 2 } } }(x3), x3, { 2, 3, 4 }, { { 1, 2 }, { 3, 4 }, { 0, 2 } })
    check_inside(L.ZeroPadding3D{ padding = { { 1, 2 }, { 3, 4 }, { 0, 2 } }, data_format = "channels_first" }(x3), x3, { 3, 4, 5 }, { { 1, 2 }, { 3, 4 }, { 0, 2 } })
    for _, p in ipairs { { { 2, 2 }, { 2, 2 }, { 2, 2 } }, { 2, 2, 2 }, 2 } do
      check_inside(L.ZeroPadding3D(p)(x3), x3, { 2, 3, 4 }, { { 2, 2 }, { 2, 2 }, { 2, 2 } })
    end
  end)

  it("infer shapes with unknown sizes (test_zero_padding_*_with_dynamic_spatial_dim)", function()
    assert.are.same({ 1, -1, 3 }, L.ZeroPadding1D({ 1, 2 }):compute_output_shape({ 1, -1, 3 }))
    assert.are.same({ 1, 5, 3 }, L.ZeroPadding1D({ 1, 2 }):compute_output_shape({ 1, 2, 3 }))
    assert.are.same({ 1, 5, -1, 4 }, L.ZeroPadding2D({ { 1, 2 }, { 3, 4 } }):compute_output_shape({ 1, 2, -1, 4 }))
    assert.are.same({ 1, 5, -1, 15, 5 }, L.ZeroPadding3D({ { 1, 2 }, { 3, 4 }, { 5, 6 } }):compute_output_shape({ 1, 2, -1, 4, 5 }))
    assert.are.same({ 1, 5, 5, -1, 15 }, L.ZeroPadding3D({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, { data_format = "channels_first" }):compute_output_shape({ 1, 5, 2, -1, 4 }))
  end)

  it("refuse bad padding and round-trip Keras's config forms (test_zero_padding_*_errors, *_get_config)", function()
    for _, bad in ipairs { { 1 }, { 1, 2, 3 }, "1" } do assert.matches("ZeroPadding1D '.-': padding must be", err_of(L.ZeroPadding1D, bad)) end
    for _, bad in ipairs { { 1 }, { 1, 2, 3 }, "1", { { 1, 2 }, { 3, 4, 5 } }, { { 1, 2 }, { 3, -4 } }, { { 1, 2 }, "3" } } do
      assert.matches("ZeroPadding2D '.-': padding must be", err_of(L.ZeroPadding2D, bad))
    end
    for _, bad in ipairs { { 1 }, { 1, 2 }, { 1, 2, 3, 4 }, "1", { { 1, 2 }, { 3, 4 }, { 5, 6, 7 } }, { { 1, 2 }, { 3, 4 }, { 5, -6 } }, { { 1, 2 }, { 3, 4 }, "5" } } do
      assert.matches("ZeroPadding3D '.-': padding must be", err_of(L.ZeroPadding3D, bad))
    end
    for _, df in ipairs { "channels_first", "channels_last" } do
      local c1 = L.ZeroPadding1D({ 1, 2 }, { data_format = df }):get_config()
      assert.are.same({ 1, 2 }, c1.padding)
      assert.are.equal(df, c1.data_format)
      assert.are.same({ { 1, 1 }, { 2, 2 } }, L.ZeroPadding2D({ 1, 2 }, { data_format = df }):get_config().padding)
      local c3 = L.ZeroPadding3D({ 1, 2, 3 }, { data_format = df }):get_config()
      assert.are.same({ { 1, 1 }, { 2, 2 }, { 3, 3 } }, c3.padding)
      assert.are.same(c3.padding, L.ZeroPadding3D.from_config(c3).padding)
    end
  end)

  it("pass the gradient check", function()
    gradcheck(L.ZeroPadding1D({ 1, 2 }), randn({ 2, 3, 2 }, 110))
    gradcheck(L.ZeroPadding3D({ { 1, 0 }, { 0, 2 }, { 1, 1 } }, { data_format = "channels_first" }), randn({ 1, 2, 2, 2, 3 }, 111))
  end)
end)

describe("Cropping1D, Cropping2D and Cropping3D (cropping*_test.py)", function()
  it("crop as Keras's expected slices (test_cropping_1d)", function()
    local x = randn({ 3, 5, 7 }, 120)
    for _, c in ipairs { { { 1, 2 }, 2, 3 }, { { 1, 1 }, 2, 4 }, { 1, 2, 4 }, { { 0, 1 }, 1, 4 }, { { 1, 0 }, 2, 5 } } do
      assert.are.equal(0, helpers.max_abs_diff(L.Cropping1D(c[1])(x), ops.slice_axis(x, 2, c[2], c[3])))
    end
    assert.are.same({ 1, -1, 7 }, L.Cropping1D({ 1, 2 }):compute_output_shape({ 1, -1, 7 }))
    for _, bad in ipairs { { 1 }, { 1, 2, 3 }, "1" } do assert.matches("Cropping1D '.-': cropping must be", err_of(L.Cropping1D, bad)) end
    assert.matches("Cropping1D '.-': cropping must leave at least one element", err_of(L.Cropping1D({ 2, 3 }), klua.Input{ shape = { 5, 7 } }))
    assert.matches("cropping must leave at least one element on each spatial axis. Received: input shape %(3,5,7%), cropping=%(3,3%)",
      err_of(L.Cropping1D({ 3, 3 }), x))
  end)

  it("crop as Keras's expected ranges in either data_format (test_cropping_2d)", function()
    local last, first = randn({ 3, 7, 9, 5 }, 121), randn({ 3, 5, 7, 9 }, 122)
    for _, c in ipairs {
      { { { 1, 2 }, { 3, 4 } }, { { 1, 5 }, { 3, 5 } } }, { { { 2, 2 }, { 2, 2 } }, { { 2, 5 }, { 2, 7 } } },
      { { 2, 2 }, { { 2, 5 }, { 2, 7 } } }, { 2, { { 2, 5 }, { 2, 7 } } }, { { { 0, 2 }, { 0, 4 } }, { { 0, 5 }, { 0, 5 } } },
      { { { 1, 0 }, { 3, 0 } }, { { 1, 7 }, { 3, 9 } } }, { { { 1, 0 }, { 3, 4 } }, { { 1, 7 }, { 3, 5 } } },
      { { { 1, 2 }, { 3, 0 } }, { { 1, 5 }, { 3, 9 } } },
    } do
      local r = c[2]   -- Python ranges [a, b)
      local want = ops.slice_axis(ops.slice_axis(last, 2, r[1][1] + 1, r[1][2]), 3, r[2][1] + 1, r[2][2])
      assert.are.equal(0, helpers.max_abs_diff(L.Cropping2D{ cropping = c[1] }(last), want))
      want = ops.slice_axis(ops.slice_axis(first, 3, r[1][1] + 1, r[1][2]), 4, r[2][1] + 1, r[2][2])
      assert.are.equal(0, helpers.max_abs_diff(L.Cropping2D{ cropping = c[1], data_format = "channels_first" }(first), want))
    end
    assert.are.same({ 1, 4, -1, 5 }, L.Cropping2D({ { 1, 2 }, { 3, 4 } }):compute_output_shape({ 1, 7, -1, 5 }))
    for _, bad in ipairs { { 1 }, { 1, 2, 3 }, "1", { { 1, 2 }, { 3, 4, 5 } }, { { 1, 2 }, { 3, -4 } }, { { 1, 2 }, "3" } } do
      assert.matches("Cropping2D '.-': cropping must be", err_of(L.Cropping2D, bad))
    end
    for _, c in ipairs { { { 4, 5 }, { 0, 0 } }, { { 0, 0 }, { 5, 5 } }, { { 6, 3 }, { 0, 0 } }, { { 0, 0 }, { 7, 3 } } } do
      for _, df in ipairs { "channels_first", "channels_last" } do
        assert.matches("cropping must leave at least one element", err_of(L.Cropping2D(c, { data_format = df }), klua.ones({ 3, 8, 9, 5 })))
      end
    end
  end)

  it("crop three axes (test_cropping_3d, test_cropping_3d_with_same_cropping)", function()
    local last, first = randn({ 3, 7, 9, 13, 5 }, 123), randn({ 3, 5, 7, 9, 13 }, 124)
    local n = 0
    for _, d1 in ipairs { { { 1, 2 }, { 1, 5 } }, { { 0, 2 }, { 0, 5 } }, { { 1, 0 }, { 1, 7 } } } do
      for _, d2 in ipairs { { { 3, 4 }, { 3, 5 } }, { { 0, 4 }, { 0, 5 } }, { { 3, 0 }, { 3, 9 } } } do
        for _, d3 in ipairs { { { 5, 6 }, { 5, 7 } }, { { 0, 6 }, { 0, 7 } }, { { 5, 0 }, { 5, 13 } } } do
          local crop, r = { d1[1], d2[1], d3[1] }, { d1[2], d2[2], d3[2] }
          for _, df in ipairs { "channels_last", "channels_first" } do
            local x, off = df == "channels_last" and last or first, df == "channels_last" and 1 or 2
            local want = x
            for i = 1, 3 do want = ops.slice_axis(want, i + off, r[i][1] + 1, r[i][2]) end
            assert.are.equal(0, helpers.max_abs_diff(L.Cropping3D(crop, { data_format = df })(x), want))
            n = n + 1
          end
        end
      end
    end
    assert.are.equal(54, n)
    for _, c in ipairs { { { 2, 2 }, { 2, 2 }, { 2, 2 } }, { 2, 2, 2 }, 2 } do
      local want = ops.slice_axis(ops.slice_axis(ops.slice_axis(last, 2, 3, 5), 3, 3, 7), 4, 3, 11)
      assert.are.equal(0, helpers.max_abs_diff(L.Cropping3D(c)(last), want))
    end
    assert.are.same({ 1, 4, -1, 2, 5 }, L.Cropping3D({ { 1, 2 }, { 3, 4 }, { 5, 6 } }):compute_output_shape({ 1, 7, -1, 13, 5 }))
    for _, bad in ipairs { { 1 }, { 1, 2 }, { 1, 2, 3, 4 }, "1", { { 1, 2 }, { 3, 4 }, { 5, 6, 7 } }, { { 1, 2 }, { 3, 4 }, { 5, -6 } }, { { 1, 2 }, { 3, 4 }, "5" } } do
      assert.matches("Cropping3D '.-': cropping must be", err_of(L.Cropping3D, bad))
    end
    for _, c in ipairs { { { 8, 1 }, { 1, 1 }, { 1, 1 } }, { { 1, 1 }, { 10, 1 }, { 1, 1 } }, { { 1, 1 }, { 1, 1 }, { 14, 1 } } } do
      assert.matches("cropping must leave at least one element", err_of(L.Cropping3D(c), klua.Input{ shape = { 7, 9, 13, 5 } }))
    end
  end)

  it("round-trip their config and pass the gradient check", function()
    local c2 = L.Cropping2D({ { 1, 0 }, { 2, 1 } }, { data_format = "channels_first" })
    local copy = L.Cropping2D.from_config(c2:get_config())
    assert.are.same({ { 1, 0 }, { 2, 1 } }, copy.cropping)
    assert.are.equal("channels_first", copy.data_format)
    assert.are.same({ 1, 2 }, L.Cropping1D.from_config(L.Cropping1D({ 1, 2 }):get_config()).cropping)
    gradcheck(c2, randn({ 2, 2, 3, 4 }, 130))
    gradcheck(L.Cropping1D({ 1, 2 }), randn({ 2, 5, 2 }, 131))
    gradcheck(L.Cropping3D({ 1, 0, { 0, 1 } }), randn({ 1, 3, 2, 3, 2 }, 132))
  end)
end)

describe("every layer of the family", function()
  it("gives back its config from from_config(get_config()), Keras's keys included", function()
    local layers = {
      L.Conv1D(4, 3, { groups = 2, padding = "causal", data_format = "channels_first", activation = "relu" }),
      L.Conv2D(6, { 3, 2 }, { groups = 3, strides = 2, use_bias = false, kernel_regularizer = "l2" }),
      L.Conv3D(2, 2, { dilation_rate = { 1, 2, 1 }, padding = "same", bias_initializer = "ones" }),
      L.Conv1DTranspose(3, 4, { strides = 2, output_padding = 1, data_format = "channels_first" }),
      L.Conv2DTranspose(3, 2, { padding = "same" }), L.Conv3DTranspose(2, { 1, 2, 3 }, { strides = { 1, 2, 3 } }),
      L.DepthwiseConv1D(3, { depth_multiplier = 2, depthwise_constraint = "non_neg" }),
      L.DepthwiseConv2D(2, { data_format = "channels_first", strides = 2 }),
      L.SeparableConv1D(4, 2, { depth_multiplier = 3, pointwise_regularizer = "l1", data_format = "channels_first" }),
      L.SeparableConv2D(4, 3, { padding = "same", depthwise_initializer = "he_normal" }),
      L.MaxPooling1D(3, { strides = 1, data_format = "channels_first" }), L.AveragePooling2D({ 2, 3 }, { padding = "same" }),
      L.MaxPooling3D({ 1, 2, 2 }), L.AveragePooling3D(2, { data_format = "channels_first", strides = 1 }),
      L.GlobalAveragePooling3D{ keepdims = true }, L.GlobalMaxPooling3D{ data_format = "channels_first" },
      L.GlobalMaxPooling1D{ data_format = "channels_first" },
      L.UpSampling1D(3), L.UpSampling2D({ 2, 3 }, { interpolation = "bilinear" }), L.UpSampling3D({ 1, 2, 3 }, { data_format = "channels_first" }),
      L.ZeroPadding1D({ 0, 2 }), L.ZeroPadding2D(2, { data_format = "channels_first" }), L.ZeroPadding3D({ { 0, 1 }, 2, { 3, 0 } }),
      L.Cropping1D(2), L.Cropping2D({ 1, 2 }, { data_format = "channels_first" }), L.Cropping3D({ { 0, 1 }, 2, { 3, 0 } }),
    }
    for _, layer in ipairs(layers) do
      local config = layer:get_config()
      local copy = getmetatable(layer).from_config(config)
      assert.are.same(config, copy:get_config(), tostring(layer))
      local named = L.deserialize(L.serialize(layer))
      assert.are.equal(getmetatable(layer), getmetatable(named))
    end
  end)
end)

describe("the convolution family in a model", function()
  it("trains a channels_first Conv3D -> MaxPooling3D -> GlobalAveragePooling3D -> Dense and saves it", function()
    local model = klua.Sequential{
      klua.Input{ shape = { 2, 4, 4, 4 } },
      L.Conv3D(4, 3, { padding = "same", activation = "relu", data_format = "channels_first", groups = 2 }),
      L.MaxPooling3D(2, { data_format = "channels_first" }),
      L.GlobalAveragePooling3D{ data_format = "channels_first" },
      L.Dense(1),
    }
    model:compile{ optimizer = klua.optimizers.Adam{ learning_rate = 0.02 }, loss = "mse" }
    local x, y = randn({ 16, 2, 4, 4, 4 }, 140), randn({ 16, 1 }, 141)
    local history = model:fit{ x = x, y = y, epochs = 8, batch_size = 8, verbose = 0 }
    local losses = history.history.loss
    assert.is_true(losses[#losses] < losses[1])
    local dir = helpers.tmpdir()
    model:save(dir .. "/m.klua")
    local again = klua.models.load_model(dir .. "/m.klua")
    assert.is_true(helpers.max_abs_diff(model:predict{ x = x, verbose = 0 }, again:predict{ x = x, verbose = 0 }) < 1e-6)
    helpers.remove_tree(dir)
  end)
end)
