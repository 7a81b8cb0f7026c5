-- conv_spec.lua — convolution, pooling and resizing layers against PyTorch
-- reference values (tests/fixtures/conv_ref.lua, inputs from fixtures/det.lua),
-- their gradients, output shapes, configs and error messages.
local klua = require("klua")
local ops = klua.ops
local L = klua.layers
local ref = require("fixtures.conv_ref")
local fx = require("fixtures.det")
local det, near = fx.det, fx.near
local helpers = require("helpers")
local err_of, with_weights, max_abs_diff = helpers.err_of, helpers.with_weights, helpers.max_abs_diff

-- y = layer(x) and, with want_grads, d sum(y * det(y, wseed)) / d(x, weights...).
local function run(layer, x, wseed)
  local tape = klua.GradientTape()
  tape:start()
  tape:watch(x)
  local y = layer(x)
  local loss = ops.sum(y * det(y:shape(), wseed))
  tape:stop()
  local sources = { x }
  for _, w in ipairs(layer.weights) do sources[#sources + 1] = w end
  return y, tape:gradient(loss, sources)
end

describe("Conv2D", function()
  it("matches PyTorch with strides (1,2), same padding and a bias, gradients included", function()
    local r = ref.conv2d_same
    local x = det({ 2, 5, 6, 2 }, 1)
    local conv = with_weights(L.Conv2D(3, { 2, 3 }, { strides = { 1, 2 }, padding = "same" }), { 2, 5, 6, 2 },
      { det({ 2, 3, 2, 3 }, 2, 0.5), det({ 3 }, 3, 0.5) })
    local y, g = run(conv, x, 9)
    near(y, r.y, 1e-5, "y")
    near(g[1], r.dx, 1e-4, "dx")
    near(g[2], r.dkernel, 1e-4, "dkernel")
    near(g[3], r.dbias, 1e-4, "dbias")
  end)

  it("matches PyTorch over 8 channels (im2col and sgemm), gradients included", function()
    local r = ref.conv2d_wide
    local conv = with_weights(L.Conv2D(5, 3, { padding = "same" }), { 2, 6, 7, 8 }, { det({ 3, 3, 8, 5 }, 52, 0.3), det({ 5 }, 53, 0.5) })
    local y, g = run(conv, det({ 2, 6, 7, 8 }, 51), 54)
    near(y, r.y, 1e-5, "y")
    near(g[1], r.dx, 1e-4, "dx")
    near(g[2], r.dkernel, 1e-4, "dkernel")
    near(g[3], r.dbias, 1e-4, "dbias")
  end)

  it("gives the same values and gradients on one thread and on two", function()
    -- Big enough for several cache blocks shared between threads.
    local x = det({ 4, 16, 16, 16 }, 1)
    local function once(threads, layer_of)
      klua.set_num_threads(threads)
      local layer = layer_of()
      local y, g = run(layer, x, 2)
      return y, g
    end
    local threads = klua.set_num_threads(1)   -- the setting to restore ("auto" by default)
    for _, make in ipairs {
      function() return with_weights(L.Conv2D(32, 3, { padding = "same" }), { 4, 16, 16, 16 }, { det({ 3, 3, 16, 32 }, 3, 0.2), det({ 32 }, 4) }) end,
      function() return with_weights(L.Conv2DTranspose(32, 3, { strides = 2, padding = "same" }), { 4, 16, 16, 16 }, { det({ 3, 3, 32, 16 }, 5, 0.2), det({ 32 }, 6) }) end,
    } do
      local y1, g1 = once(1, make)
      local y2, g2 = once(2, make)
      assert.is_true(max_abs_diff(y1, y2) < 1e-4)
      for i = 1, 3 do assert.is_true(max_abs_diff(g1[i], g2[i]) < 1e-3 * (1 + ops.max(ops.abs(g1[i])):item())) end
    end
    klua.set_num_threads(threads)
  end)

  it("matches PyTorch with dilation 2 and with strides 2 over an even size", function()
    local conv = with_weights(L.Conv2D(2, 3, { dilation_rate = 2, use_bias = false }), { 1, 7, 6, 2 }, { det({ 3, 3, 2, 2 }, 5, 0.5) })
    near(conv(det({ 1, 7, 6, 2 }, 4)), ref.conv2d_dilated.y, 1e-5, "dilated")
    conv = with_weights(L.Conv2D(4, 3, { strides = 2, padding = "same", use_bias = false }), { 1, 6, 7, 1 }, { det({ 3, 3, 1, 4 }, 7, 0.5) })
    near(conv(det({ 1, 6, 7, 1 }, 6)), ref.conv2d_strided.y, 1e-5, "strided")
  end)

  it("applies its activation and creates Keras's weights", function()
    local conv = L.Conv2D(4, 3, { activation = "relu", kernel_initializer = "ones" })
    local y = conv(klua.full({ 1, 5, 5, 2 }, -1))
    assert.are.same({ 1, 3, 3, 4 }, y:shape())
    assert.are.equal(0, ops.max(y):item())
    assert.are.same({ 3, 3, 2, 4 }, conv.kernel:shape())
    assert.are.same({ 4 }, conv.bias:shape())
    assert.are.equal(2, #conv.trainable_weights)
    assert.are.equal(3 * 3 * 2 * 4 + 4, conv:count_params())
  end)

  it("computes its output shape without running, the batch unknown", function()
    assert.are.same({ -1, 14, 10, 8 }, L.Conv2D(8, 3, { strides = { 2, 3 }, padding = "same" }):compute_output_shape({ -1, 28, 28, 1 }))
    assert.are.same({ -1, 22, 26, 8 }, L.Conv2D(8, 3, { dilation_rate = { 3, 1 } }):compute_output_shape({ -1, 28, 28, 1 }))
  end)

  it("round-trips its config", function()
    local conv = L.Conv2D(6, { 3, 2 }, { strides = 2, padding = "same", activation = "tanh", use_bias = false })
    local copy = L.Conv2D.from_config(conv:get_config())
    assert.are.same({ 3, 2 }, copy.kernel_size)
    assert.are.same({ 2, 2 }, copy.strides)
    assert.are.equal("same", copy.padding)
    assert.are.equal(6, copy.filters)
    assert.is_false(copy.use_bias)
    assert.are.equal("tanh", copy:get_config().activation)
  end)

  it("names the layer and the shapes in its errors", function()
    local conv = L.Conv2D(2, 3, { name = "c1" })
    conv(klua.zeros({ 1, 5, 5, 3 }))
    assert.matches("Conv2D 'c1': expected 3 input channels %(last axis%), got input shape %(1,5,5,4%)",
      err_of(conv, klua.zeros({ 1, 5, 5, 4 })))
    assert.matches("Conv2D 'c2': expected an input of rank 4 %(batch, height, width, channels%), got shape %(5,5,3%)",
      err_of(function() L.Conv2D(2, 3, { name = "c2" })(klua.zeros({ 5, 5, 3 })) end))
    assert.matches("filters must be a positive integer. Received: filters=%-3", err_of(L.Conv2D, -3, 3))
    assert.matches("padding must be \"valid\" or \"same\". Received: padding=full", err_of(L.Conv2D, 2, 3, { padding = "full" }))
    assert.matches("kernel_size must be an integer or a list of 2 integers", err_of(L.Conv2D, 2, { 3, 3, 3 }))
    assert.matches("conv2d: input %(1,2,2,1%) %(padded to 2x2%) is smaller than the kernel %(3,3,1,2%)",
      err_of(function() L.Conv2D(2, 3)(klua.zeros({ 1, 2, 2, 1 })) end))
  end)

  it("applies relu and sigmoid inside the op exactly as the activation after it, on every forward path", function()
    klua.random.seed(31)
    -- a thin first layer (direct loop), a 1x1 over many channels (one sgemm), a 3x3 over many (im2col blocks)
    for _, case in ipairs { { { 2, 6, 5, 2 }, 3, 4 }, { { 2, 4, 4, 40 }, 1, 5 }, { { 2, 9, 8, 16 }, 3, 6 } } do
      for _, act in ipairs { "relu", "sigmoid" } do
        local x = klua.random.normal(case[1])
        local fused = L.Conv2D(case[3], case[2], { activation = act, padding = "same", bias_initializer = "random_normal" })
        local y = fused(x)
        local plain = L.Conv2D(case[3], case[2], { padding = "same" })
        plain(x)
        plain.kernel:assign(fused.kernel)
        plain.bias:assign(fused.bias)
        local want = klua.activations.get(act)(plain(x))
        assert(max_abs_diff(y, want) < 1e-6, act .. " on " .. table.concat(case[1], "x"))
      end
    end
  end)

  it("refuses a kernel whose channels do not match, at the op level", function()
    local nn = require("klua.nn")
    assert.matches("conv2d: kernel %(3,3,4,2%) expects 4 input channels, input %(1,5,5,3%) has 3",
      err_of(nn.conv, klua.zeros({ 1, 5, 5, 3 }), klua.zeros({ 3, 3, 4, 2 })))
  end)
end)

describe("Conv1D", function()
  it("matches PyTorch with causal padding and dilation 2, gradients included", function()
    local r = ref.conv1d_causal
    local conv = with_weights(L.Conv1D(2, 3, { padding = "causal", dilation_rate = 2 }), { 2, 7, 3 },
      { det({ 3, 3, 2 }, 9, 0.5), det({ 2 }, 10, 0.5) })
    local y, g = run(conv, det({ 2, 7, 3 }, 8), 11)
    near(y, r.y, 1e-5, "y")
    near(g[1], r.dx, 1e-4, "dx")
    near(g[2], r.dkernel, 1e-4, "dkernel")
    near(g[3], r.dbias, 1e-4, "dbias")
  end)

  it("matches PyTorch with same padding and strides 2", function()
    local conv = with_weights(L.Conv1D(3, 4, { strides = 2, padding = "same", use_bias = false }), { 1, 9, 2 }, { det({ 4, 2, 3 }, 13, 0.5) })
    near(conv(det({ 1, 9, 2 }, 12)), ref.conv1d_same_strided.y, 1e-5)
    assert.are.same({ -1, 5, 3 }, conv:compute_output_shape({ -1, 9, 2 }))
  end)

  it("accepts causal padding only in one dimension", function()
    assert.matches("padding must be \"valid\" or \"same\"%. Received: padding=causal", err_of(L.Conv2D, 2, 3, { padding = "causal" }))
  end)
end)

describe("Conv2DTranspose", function()
  it("matches PyTorch with strides 2 and same padding, gradients included", function()
    local r = ref.conv2d_transpose_same
    local conv = with_weights(L.Conv2DTranspose(2, 3, { strides = 2, padding = "same" }), { 1, 3, 3, 2 },
      { det({ 3, 3, 2, 2 }, 15, 0.5), det({ 2 }, 16, 0.5) })
    local y, g = run(conv, det({ 1, 3, 3, 2 }, 14), 17)
    near(y, r.y, 1e-5, "y")
    near(g[1], r.dx, 1e-4, "dx")
    near(g[2], r.dkernel, 1e-4, "dkernel")
    near(g[3], r.dbias, 1e-4, "dbias")
  end)

  it("matches PyTorch with valid padding, and with output_padding", function()
    local conv = with_weights(L.Conv2DTranspose(2, { 3, 2 }, { strides = { 2, 1 }, use_bias = false }), { 2, 2, 3, 1 }, { det({ 3, 2, 2, 1 }, 19, 0.5) })
    near(conv(det({ 2, 2, 3, 1 }, 18)), ref.conv2d_transpose_valid.y, 1e-5, "valid")
    conv = with_weights(L.Conv2DTranspose(1, 3, { strides = 2, output_padding = 1, use_bias = false }), { 1, 3, 2, 2 }, { det({ 3, 3, 1, 2 }, 21, 0.5) })
    near(conv(det({ 1, 3, 2, 2 }, 20)), ref.conv2d_transpose_output_padding.y, 1e-5, "output_padding")
    assert.are.same({ -1, 8, 6, 1 }, conv:compute_output_shape({ -1, 3, 2, 2 }))
  end)

  it("stores its kernel as (kh, kw, filters, in) and checks output_padding", function()
    local conv = L.Conv2DTranspose(5, 3)
    conv:build({ 1, 4, 4, 2 })
    assert.are.same({ 3, 3, 5, 2 }, conv.kernel:shape())
    assert.matches("output_padding must be smaller than the strides", err_of(L.Conv2DTranspose, 2, 3, { strides = 2, output_padding = 2 }))
  end)
end)

describe("DepthwiseConv2D", function()
  it("matches PyTorch's grouped convolution with depth_multiplier 2, gradients included", function()
    local r = ref.depthwise_same
    local conv = with_weights(L.DepthwiseConv2D(3, { depth_multiplier = 2, padding = "same" }), { 1, 5, 5, 3 },
      { det({ 3, 3, 3, 2 }, 23, 0.5), det({ 6 }, 24, 0.5) })
    local y, g = run(conv, det({ 1, 5, 5, 3 }, 22), 25)
    near(y, r.y, 1e-5, "y")
    near(g[1], r.dx, 1e-4, "dx")
    near(g[2], r.dkernel, 1e-4, "dkernel")
    near(g[3], r.dbias, 1e-4, "dbias")
  end)

  it("matches PyTorch with strides 2", function()
    local conv = with_weights(L.DepthwiseConv2D(2, { strides = 2, use_bias = false }), { 2, 6, 5, 2 }, { det({ 2, 2, 2, 1 }, 27, 0.5) })
    near(conv(det({ 2, 6, 5, 2 }, 26)), ref.depthwise_strided.y, 1e-5)
    assert.are.same({ -1, 3, 2, 2 }, conv:compute_output_shape({ -1, 6, 5, 2 }))
  end)
end)

describe("MaxPooling2D and AveragePooling2D", function()
  it("max-pool with same padding and route the gradient to each maximum", function()
    local x = det({ 2, 5, 5, 2 }, 28)
    local y, g = run(L.MaxPooling2D(2, { padding = "same" }), x, 29)
    near(y, ref.max_pool2d_same.y, 1e-6, "y")
    near(g[1], ref.max_pool2d_same.dx, 1e-6, "dx")
  end)

  it("route a tied window's gradient to its first maximum in row-major order, per channel", function()
    -- one 2x2 window, 2 channels: channel 1 ties at positions 2 and 4, channel 2 at 1 and 3
    local x = klua.tensor({ { { { 1, 5 }, { 3, 2 } }, { { 0, 5 }, { 3, 4 } } } })
    local tape = klua.GradientTape()
    tape:watch(x)
    local y
    local loss = tape:record(function()
      y = L.MaxPooling2D(2)(x)
      return ops.sum(y * klua.tensor({ { { { 10, 20 } } } }))
    end)
    assert.are.same({ 3, 5 }, y:reshape({ 2 }):totable())
    local dx = tape:gradient(loss, { x })[1]
    assert.are.same({ { { { 0, 20 }, { 10, 0 } }, { { 0, 0 }, { 0, 0 } } } }, dx:totable())
  end)

  it("max-pool overlapping windows", function()
    near(L.MaxPooling2D(3, { strides = 1 })(det({ 1, 5, 6, 2 }, 30)), ref.max_pool2d_overlap.y, 1e-6)
  end)

  it("average only the real elements of padded windows, as Keras", function()
    local y, g = run(L.AveragePooling2D(3, { strides = 2, padding = "same" }), det({ 1, 6, 7, 2 }, 31), 32)
    near(y, ref.avg_pool2d_same.y, 1e-6, "y")
    near(g[1], ref.avg_pool2d_same.dx, 1e-6, "dx")
  end)

  it("default strides to the pool size and compute output shapes", function()
    local pool = L.MaxPooling2D({ 2, 3 })
    assert.are.same({ 2, 3 }, pool.strides)
    assert.are.same({ -1, 14, 9, 4 }, pool:compute_output_shape({ -1, 28, 28, 4 }))
    assert.are.same({ -1, 14, 10, 4 }, L.AveragePooling2D({ 2, 3 }, { padding = "same" }):compute_output_shape({ -1, 28, 28, 4 }))
    assert.are.same({ 3, 2, 4, 1 }, pool(klua.zeros({ 3, 5, 12, 1 })):shape())
  end)

  it("round-trip their config and name bad arguments", function()
    local copy = L.AveragePooling2D.from_config(L.AveragePooling2D(3, { strides = 1, padding = "same" }):get_config())
    assert.are.same({ 3, 3 }, copy.pool_size)
    assert.are.same({ 1, 1 }, copy.strides)
    assert.are.equal("same", copy.padding)
    assert.matches("pool_size must be an integer or a list of 2 integers. Received: pool_size=0", err_of(L.MaxPooling2D, 0))
    assert.matches("MaxPooling2D '.-': expected an input of rank 4, got shape %(2,3%)",
      err_of(function() L.MaxPooling2D(2)(klua.zeros({ 2, 3 })) end))
    assert.matches("max_pool2d: input %(1,1,1,1%) is smaller than the pool size %(2,2%)",
      err_of(function() L.MaxPooling2D(2)(klua.zeros({ 1, 1, 1, 1 })) end))
  end)
end)

describe("MaxPooling1D and AveragePooling1D", function()
  it("pool over the steps as PyTorch does", function()
    local x = det({ 2, 7, 3 }, 33)
    near(L.MaxPooling1D(2)(x), ref.max_pool1d.y, 1e-6, "max")
    near(L.AveragePooling1D(3, { strides = 2, padding = "same" })(x), ref.avg_pool1d_same.y, 1e-6, "average")
  end)
end)

describe("global pooling", function()
  local x = det({ 2, 5, 3 }, 34)
  local mask = klua.tensor({ { 1, 1, 0, 1, 0 }, { 1, 1, 1, 1, 1 } })

  it("averages and maxes over the unmasked steps only", function()
    near(L.GlobalAveragePooling1D()(x, { mask = mask }), ref.global_pool1d_masked.average, 1e-6, "average")
    near(L.GlobalMaxPooling1D()(x, { mask = mask }), ref.global_pool1d_masked.max, 1e-6, "max")
  end)

  it("reduce over all steps or pixels without a mask, keepdims as asked", function()
    local a = L.GlobalAveragePooling1D()(x)
    assert.is_true(max_abs_diff(a, ops.mean(x, 2)) < 1e-7)
    local img = det({ 2, 3, 4, 5 }, 35)
    local m = L.GlobalMaxPooling2D({ keepdims = true })(img)
    assert.are.same({ 2, 1, 1, 5 }, m:shape())
    assert.is_true(max_abs_diff(ops.reshape(m, { 2, 5 }), ops.max(img, { 2, 3 })) == 0)
    assert.are.same({ 2, 5 }, L.GlobalAveragePooling2D()(img):shape())
    assert.are.same({ -1, 1, 1, 5 }, L.GlobalAveragePooling2D({ keepdims = true }):compute_output_shape({ -1, 3, 4, 5 }))
  end)

  it("does not pass the mask on", function()
    local pool = L.GlobalAveragePooling1D()
    assert.is_nil(pool:compute_mask(x, mask))
  end)
end)

describe("UpSampling2D and ZeroPadding2D", function()
  local x = klua.tensor({ { { { 1 }, { 2 } }, { { 3 }, { 4 } } } })   -- (1,2,2,1)

  it("repeat rows and columns, and sum the gradient back", function()
    local up = L.UpSampling2D({ 2, 3 })
    local y = up(x)
    assert.are.same({ 1, 4, 6, 1 }, y:shape())
    assert.are.same({ 1, 1, 1, 2, 2, 2 }, ops.reshape(y, { 4, 6 }):totable()[2])
    assert.are.same({ 3, 3, 3, 4, 4, 4 }, ops.reshape(y, { 4, 6 }):totable()[3])
    local v = klua.Variable(x)
    local tape = klua.GradientTape()
    local loss = tape:record(function() return ops.sum(up(v)) end)
    assert.are.same({ 6, 6, 6, 6 }, ops.reshape(tape:gradient(loss, v), { 4 }):totable())
  end)

  it("pad with zeros on each side as asked", function()
    local pad = L.ZeroPadding2D({ { 1, 0 }, { 2, 1 } })
    local y = ops.reshape(pad(x), { 3, 5 }):totable()
    assert.are.same({ { 0, 0, 0, 0, 0 }, { 0, 0, 1, 2, 0 }, { 0, 0, 3, 4, 0 } }, y)
    assert.are.same({ -1, 5, 6, 3 }, L.ZeroPadding2D(1):compute_output_shape({ -1, 3, 4, 3 }))
    assert.are.same({ { 1, 1 }, { 2, 2 } }, L.ZeroPadding2D({ 1, 2 }).padding)
  end)
end)

describe("a small CNN", function()
  it("trains: Conv2D -> MaxPooling2D -> Conv2D -> GlobalAveragePooling2D -> Dense lowers its loss", function()
    klua.random.seed(7)
    local c1, p1 = L.Conv2D(4, 3, { activation = "relu" }), L.MaxPooling2D(2)
    local c2, gp, d = L.Conv2D(4, 3, { activation = "relu", padding = "same" }), L.GlobalAveragePooling2D(), L.Dense(1)
    local x, target = klua.random.normal({ 8, 8, 8, 1 }), klua.random.normal({ 8, 1 })
    local function forward() return ops.mean(ops.square(d(gp(c2(p1(c1(x))))) - target)) end
    local first
    for _ = 1, 20 do
      local tape = klua.GradientTape()
      local loss = tape:record(forward)
      first = first or loss:item()
      local ws = {}
      for _, l in ipairs { c1, c2, d } do for _, w in ipairs(l.trainable_weights) do ws[#ws + 1] = w end end
      local grads = tape:gradient(loss, ws)
      for i, w in ipairs(ws) do w:assign_sub(grads[i] * 0.05) end
    end
    assert.is_true(forward():item() < first * 0.9)
  end)
end)
