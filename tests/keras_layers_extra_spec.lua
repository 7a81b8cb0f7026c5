-- keras_layers_extra_spec.lua — Dot, Identity, EinsumDense, PReLU,
-- GroupNormalization, UnitNormalization, and the recurrent layers' stateful,
-- recurrent_dropout and GRU reset_after=false, against the numbers of Keras's
-- own tests (keras/src/layers/**/*_test.py; each case names its test), brute-
-- force references where Keras's tests compare with NumPy, and central finite
-- differences for every gradient.
local klua = require("klua")
local ops = klua.ops
local L = klua.layers
local helpers = require("helpers")
local near, raises, max_abs_diff = helpers.near, helpers.raises, helpers.max_abs_diff

-- np.arange(n).reshape(shape) as float32
local function arange(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  return ops.reshape(klua.arange(n), shape)
end

local function const(v) return klua.initializers.Constant(v) end
-- Keras's RNN tests: kernel 0.01, recurrent 0.02, bias 0.03 everywhere.
local function keras_rnn(cls, units, kw)
  kw = kw or {}
  kw.kernel_initializer, kw.recurrent_initializer, kw.bias_initializer = const(0.01), const(0.02), const(0.03)
  return cls(units, kw)
end

-- Gradients of f = sum(out * r) (r fixed, in [0.5, 1.5]) with respect to each
-- tensor in `wrt`, against Richardson-extrapolated central differences in
-- float32 (as tests/gradcheck_spec.lua): ||g - D|| <= rtol ||D|| + atol sqrt(n).
-- fn() returns a tensor or a list; before() runs before each evaluation.
local function check_gradients(fn, wrt, opts)
  opts = opts or {}
  local h, rtol, atol = opts.h or 1 / 64, opts.rtol or 2e-3, opts.atol or 1e-6
  local before = opts.before or function() end
  local function outputs()
    before()
    local out = fn()
    return type(out) == "table" and out or { out }
  end
  local rs = {}
  for i, y in ipairs(outputs()) do rs[i] = klua.random.uniform(y:shape(), { minval = 0.5, maxval = 1.5, seed = 100 + i }) end
  local function value()
    local s = 0
    for i, y in ipairs(outputs()) do
      local c, r = y:contiguous(), rs[i]
      for j = 0, tonumber(c.count) - 1 do s = s + c.data[j] * r.data[j] end
    end
    return s
  end
  local tape = klua.GradientTape()
  tape:start()
  for _, v in ipairs(wrt) do tape:watch(v) end
  local loss
  for i, y in ipairs(outputs()) do
    local term = ops.sum(y * rs[i])
    loss = loss and loss + term or term
  end
  tape:stop()
  local grads = tape:gradient(loss, wrt)
  for k, x in ipairs(wrt) do
    local g = grads[k]
    assert(g ~= nil, "no gradient for source " .. k)
    g = g:contiguous()
    local err2, ref2 = 0, 0
    for j = 0, tonumber(x.count) - 1 do
      local orig = x.data[j]
      local function central(step)
        x.data[j] = orig + step; local xp, fp = x.data[j], value()
        x.data[j] = orig - step; local xm, fm = x.data[j], value()
        x.data[j] = orig
        return (fp - fm) / (xp - xm)
      end
      local d = (4 * central(h / 2) - central(h)) / 3
      err2, ref2 = err2 + (g.data[j] - d) ^ 2, ref2 + d * d
    end
    local err, ref = math.sqrt(err2), math.sqrt(ref2)
    assert(err <= rtol * ref + atol * math.sqrt(tonumber(x.count)),
      ("source %d: gradient off by %.3g (norm of the numeric gradient %.3g)"):format(k, err, ref))
  end
end

-- A layer's gradients with respect to its input and every trainable weight.
local function check_layer(layer, x, kw, opts)
  kw = kw or {}
  layer(x, kw)   -- builds
  local wrt = { x:clone() }
  for _, v in ipairs(layer.trainable_weights) do wrt[#wrt + 1] = v end
  check_gradients(function() return { layer(wrt[1], kw) } end, wrt, opts)
end

describe("the finite-difference check of this spec", function()
  it("fails a gradient that is off (x * stop_gradient(x) has half the derivative of x^2)", function()
    local x = klua.tensor({ 0.5, -1.5, 2 })
    check_gradients(function() return x * x end, { x })
    assert.is_false(pcall(check_gradients, function() return x * ops.stop_gradient(x) end, { x }))
  end)
end)

local function name_of(v) return klua.Variable.info(v).name end

local function config_round_trip(layer)
  local json = klua.json or require("klua.json")
  local config = json.decode(json.encode(layer:get_config()))
  return getmetatable(layer).from_config(config)
end

--------------------------------------------------------------------------------
describe("Dot", function()
  -- keras/src/layers/merging/merging_test.py's np_dot: a per-sample tensordot.
  local function dot_ref(a, b, ax1, ax2)
    local ta, tb = a:totable(), b:totable()
    local out = {}
    for n = 1, #ta do
      if ax1 == 2 and ax2 == 2 and type(ta[n][1]) == "number" then   -- (B, D) . (B, D)
        local s = 0
        for k = 1, #ta[n] do s = s + ta[n][k] * tb[n][k] end
        out[n] = { s }
      else                                                             -- (B, M, D) . (B, N, D) over the last axes
        out[n] = {}
        for i = 1, #ta[n] do
          out[n][i] = {}
          for j = 1, #tb[n] do
            local s = 0
            for k = 1, #ta[n][i] do s = s + ta[n][i][k] * tb[n][j][k] end
            out[n][i][j] = s
          end
        end
      end
    end
    return out
  end

  it("takes per-sample dot products along the last axis (merging_test.py: dot_2d, dot_3d)", function()
    klua.random.seed(1)
    local a, b = klua.random.uniform({ 2, 4 }), klua.random.uniform({ 2, 4 })
    local y = L.Dot{ axes = -1 }({ a, b })
    assert.are.same({ 2, 1 }, y:shape())
    near(y, dot_ref(a, b, 2, 2), 1e-5)
    local a3, b3 = klua.random.uniform({ 2, 4, 5 }), klua.random.uniform({ 2, 4, 5 })
    local y3 = L.Dot(-1)({ a3, b3 })
    assert.are.same({ 2, 4, 4 }, y3:shape())
    near(y3, dot_ref(a3, b3, 3, 3), 1e-5)
  end)

  it("has the shape of Keras's test_dot_higher_dim, symbolic and eager", function()
    local a, b = klua.Input{ batch_shape = { 1, 3, 2 } }, klua.Input{ batch_shape = { 1, 1, 2, 3 } }
    assert.are.same({ 1, 2, 1, 2 }, L.Dot{ axes = { -2, -1 } }({ a, b }).shape)
    local y = L.Dot{ axes = { -2, -1 } }({ klua.random.uniform({ 1, 3, 2 }), klua.random.uniform({ 1, 1, 2, 3 }) })
    assert.are.same({ 1, 2, 1, 2 }, y:shape())
    assert.are.same({ -1, 2, 1, 2 }, L.Dot{ axes = { -2, -1 } }:compute_output_shape({ { -1, 3, 2 }, { -1, 1, 2, 3 } }))
  end)

  it("takes 1-based axes: Keras's axes=(1, 2) is {2, 3}", function()
    local x, y = arange({ 1, 5, 2 }), ops.reshape(klua.arange(10, 20), { 1, 2, 5 })
    -- Keras's docstring example: keras.layers.Dot(axes=(1, 2))([x, y])
    near(L.Dot({ 2, 3 })({ x, y }), { { { 260, 360 }, { 320, 445 } } }, 1e-6)
  end)

  it("gives the cosine proximity with normalize = true", function()
    local a, b = klua.tensor({ { 3, 4 }, { 1, 0 } }), klua.tensor({ { 4, 3 }, { 0, 2 } })
    near(L.Dot{ axes = -1, normalize = true }({ a, b }), { { 24 / 25 }, { 0 } }, 1e-6)
  end)

  it("has gradients matching finite differences, normalize included", function()
    klua.random.seed(2)
    local a, b = klua.random.normal({ 2, 3, 4 }), klua.random.normal({ 2, 4, 3 })
    for _, kw in ipairs { { axes = { 3, 2 } }, { axes = { 2, 3 }, normalize = true } } do
      local layer = L.Dot(kw)
      check_gradients(function() return layer({ a, b }) end, { a, b })
    end
  end)

  it("makes no mask, round-trips its config, and names what is wrong", function()
    local layer = L.Dot{ axes = { 2, 3 }, normalize = true, name = "dd" }
    assert.is_nil(layer:compute_mask({ klua.ones({ 2, 3 }), klua.ones({ 2, 3 }) }, { klua.ones({ 2 }), klua.ones({ 2 }) }))
    local copy = config_round_trip(layer)
    assert.are.same({ 2, 3 }, copy.axes)
    assert.is_true(copy.normalize)
    raises("Dot 'dd': incompatible input shapes: axis values 3 %(at axis 2%) != 4 %(at axis 3%)", layer,
      { klua.ones({ 2, 3, 5 }), klua.ones({ 2, 5, 4 }) })
    layer({ klua.ones({ 2, 3, 4 }), klua.ones({ 2, 5, 3 }) })
    raises("Dot 'dd': inputs of shapes %(2,3,4%), %(3,5,3%) cannot be combined: the batch sizes differ", layer,
      { klua.ones({ 2, 3, 4 }), klua.ones({ 3, 5, 3 }) })
    raises("Dot '[%w_]+': axes must be an integer or a list of two integers%. Received: axes={1, 2, 3}", L.Dot, { 1, 2, 3 })
    raises("over the batch axis", L.Dot(1), { klua.ones({ 2, 3 }), klua.ones({ 2, 3 }) })
  end)
end)

--------------------------------------------------------------------------------
describe("Identity", function()
  it("returns its input, has no weights and is built when made (identity_test.py)", function()
    local layer = L.Identity()
    assert.is_true(layer.built)
    local x = klua.random.normal({ 2, 3 })
    local y = layer(x)
    assert.are.same({ 2, 3 }, y:shape())
    assert.are.equal(0, max_abs_diff(x, y))
    assert.are.equal(0, #layer.weights)
    assert.are.same({ -1, 3 }, layer:compute_output_shape({ -1, 3 }))
  end)

  it("passes masks on, passes gradients through and round-trips its config", function()
    local m = klua.tensor({ { 1, 0 } })
    assert.are.equal(m, L.Identity():compute_mask(nil, m))
    local x = klua.random.normal({ 2, 3 })
    check_gradients(function() return L.Identity()(x) end, { x })
    assert.are.equal("id", config_round_trip(L.Identity{ name = "id" }).name)
  end)
end)

--------------------------------------------------------------------------------
describe("EinsumDense", function()
  -- keras/src/layers/core/einsum_dense_test.py, test_einsum_dense_basics: every case.
  local cases = {
    { "_1d_end_weight", "ab,b->a", nil, { 2, 32 }, {}, { 32 }, nil, { 2 } },
    { "_2d_middle_weight", "ab,bc->ac", nil, { 2, 32 }, { 64 }, { 32, 64 }, nil, { 2, 64 } },
    { "_3d_bert", "abc,cde->abde", nil, { 2, 1, 2 }, { 1, 3, 4 }, { 2, 3, 4 }, nil, { 2, 1, 3, 4 } },
    { "_3d_3_bias", "abc,cde->abde", "e", { 2, 1, 2 }, { 1, 3, 4 }, { 2, 3, 4 }, { 4 }, { 2, 1, 3, 4 } },
    { "_3d_2_bias", "abc,cde->abde", "d", { 2, 1, 2 }, { 1, 3, 4 }, { 2, 3, 4 }, { 3, 1 }, { 2, 1, 3, 4 } },
    { "_3d_1_3_bias", "abc,cde->abde", "be", { 2, 7, 2 }, { 7, 3, 4 }, { 2, 3, 4 }, { 7, 1, 4 }, { 2, 7, 3, 4 } },
    { "_3d_bert_projection", "BFNH,NHD->BFD", nil, { 2, 1, 2, 3 }, { 1, 4 }, { 2, 3, 4 }, nil, { 2, 1, 4 } },
    { "_2d_bert", "abc,cd->abd", nil, { 2, 1, 2 }, { 1, 4 }, { 2, 4 }, nil, { 2, 1, 4 } },
    { "_embedding_1d", "i,d->id", nil, { 2 }, { 2 }, { 2 }, nil, { 2, 2 } },
    { "_xlnet_lm", "ibd,nd->ibn", nil, { 2, 2, 1 }, { 2, 2 }, { 2, 1 }, nil, { 2, 2, 2 } },
    { "_2d_precast", "...b,bc->...c", nil, { 2, 32 }, { 64 }, { 32, 64 }, nil, { 2, 64 } },
    { "_2d_precast_elided_input_used_in_output", "...bc,bc->...b", nil, { 2, 32, 64 }, { 32 }, { 32, 64 }, nil, { 2, 32 } },
    { "_2d_precast_multiple_elided_dims", "...b,bc->...c", nil, { 2, 3, 32 }, { 64 }, { 32, 64 }, nil, { 2, 3, 64 } },
    { "_3d_precast", "...c,cde->...de", nil, { 2, 1, 2 }, { 3, 4 }, { 2, 3, 4 }, nil, { 2, 1, 3, 4 } },
    { "_3d_precast_3_bias", "...c,cde->...de", "e", { 2, 1, 2 }, { 3, 4 }, { 2, 3, 4 }, { 4 }, { 2, 1, 3, 4 } },
    { "_3d_precast_2_bias", "...c,cde->...de", "d", { 2, 1, 2 }, { 3, 4 }, { 2, 3, 4 }, { 3, 1 }, { 2, 1, 3, 4 } },
    { "_3d_precast_2_3_bias", "...c,cde->...de", "de", { 2, 1, 2 }, { 3, 4 }, { 2, 3, 4 }, { 3, 4 }, { 2, 1, 3, 4 } },
    { "_2d_postcast", "bc...,cd->bd...", nil, { 2, 1, 2, 3 }, { 4 }, { 1, 4 }, nil, { 2, 4, 2, 3 } },
    { "_3d_postcast", "bc...,cde->bde...", nil, { 2, 1, 2 }, { 3, 4 }, { 1, 3, 4 }, nil, { 2, 3, 4, 2 } },
    { "_3d_postcast_1_bias", "bc...,cde->bde...", "d", { 2, 1, 2 }, { 3, 4 }, { 1, 3, 4 }, { 3, 1, 1 }, { 2, 3, 4, 2 } },
    { "_3d_postcast_2_bias", "bc...,cde->bde...", "e", { 2, 1, 2 }, { 3, 4 }, { 1, 3, 4 }, { 4, 1 }, { 2, 3, 4, 2 } },
    { "_3d_postcast_1_2_bias", "bc...,cde->bde...", "de", { 2, 1, 2 }, { 3, 4 }, { 1, 3, 4 }, { 3, 4, 1 }, { 2, 3, 4, 2 } },
  }

  -- Brute-force einsum over every index: the reference for the values.
  local function einsum_ref(x, w, xl, wl, ol)
    local sizes = {}
    local xs, ws = x:shape(), w:shape()
    for i, c in ipairs(xl) do sizes[c] = xs[i] end
    for i, c in ipairs(wl) do sizes[c] = ws[i] end
    local labels = {}
    for c in pairs(sizes) do labels[#labels + 1] = c end
    table.sort(labels)
    local oshape = {}
    for i, c in ipairs(ol) do oshape[i] = sizes[c] end
    local n = 1
    for _, d in ipairs(oshape) do n = n * d end
    local out = {}
    for i = 1, n do out[i] = 0 end
    local xc, wc = x:contiguous(), w:contiguous()
    local idx = {}
    local function offset(list, shape)
      local o = 0
      for i, c in ipairs(list) do o = o * shape[i] + idx[c] end
      return o
    end
    local function visit(k)
      if k > #labels then
        local o = offset(ol, oshape) + 1
        out[o] = out[o] + xc.data[offset(xl, xs)] * wc.data[offset(wl, ws)]
        return
      end
      for v = 0, sizes[labels[k]] - 1 do idx[labels[k]] = v; visit(k + 1) end
    end
    visit(1)
    return ops.reshape(klua.tensor(out), oshape)
  end

  local function spec_letters(s)
    local out = {}
    for c in s:gmatch("%a") do out[#out + 1] = c end
    return out
  end

  for _, c in ipairs(cases) do
    local name, equation, bias_axes, input_shape, output_shape, kshape, bshape, oshape = unpack(c)
    it("builds Keras's weights and output for " .. equation .. (bias_axes and " with bias " .. bias_axes or "")
      .. " (test_einsum_dense_basics: " .. name .. ")", function()
      local layer = L.EinsumDense(equation, output_shape, { bias_axes = bias_axes, bias_initializer = "random_normal" })
      local x = klua.random.normal(input_shape)
      local y = layer(x)
      assert.are.same(oshape, y:shape())
      assert.are.same(kshape, layer.kernel:shape())
      assert.are.equal("kernel", name_of(layer.kernel))
      assert.are.equal(bshape and 2 or 1, #layer.trainable_weights)
      if bshape then assert.are.same(bshape, layer.bias:shape()); assert.are.equal("bias", name_of(layer.bias)) end
      local batchless = { -1 }
      for i = 2, #input_shape do batchless[i] = input_shape[i] end
      local want = { -1 }
      for i = 2, #oshape do want[i] = oshape[i] end
      assert.are.same(want, layer:compute_output_shape(batchless))
      -- values: the brute-force einsum with the "..." axes spelled out
      local xl, wl, ol = spec_letters(equation:match("^[^,]*")), spec_letters(equation:match(",([^-]*)")),
        spec_letters(equation:match("->(.*)$"))
      local extra = #input_shape - #xl
      local fill = { "P", "Q", "R", "S" }
      if extra > 0 then
        local left = equation:sub(1, 3) == "..."
        for i = 1, extra do
          if left then table.insert(xl, i, fill[i]); table.insert(ol, i, fill[i])
          else xl[#xl + 1] = fill[i]; ol[#ol + 1] = fill[i] end
        end
      end
      local want_y = einsum_ref(x, layer.kernel, xl, wl, ol)
      if layer.bias then want_y = want_y + layer.bias end
      assert.is_true(max_abs_diff(y, want_y) < 1e-4)
    end)
  end

  it("is Dense for \"ab,bc->ac\" with bias_axes \"c\" and an activation", function()
    local layer = L.EinsumDense{ equation = "ab,bc->ac", output_shape = 4, bias_axes = "c", activation = "relu" }
    local x = klua.random.normal({ 3, 5 })
    local y = layer(x)
    local dense = L.Dense(4, { activation = "relu" })
    dense(x)
    dense:set_weights({ layer.kernel:value(), layer.bias:value() })
    assert.is_true(max_abs_diff(y, dense(x)) < 1e-5)
  end)

  it("gives the kernel initializer Keras's fans: input and output axes of the equation", function()
    -- einsum_dense.py tells VarianceScaling input_axes/output_axes: kernel (3,8,32)
    -- for "ab,bcd->acd" has fan_in 3, fan_out 256: glorot limit sqrt(6/259)
    klua.random.seed(3)
    local layer = L.EinsumDense("ab,bcd->acd", { 8, 32 }, { bias_axes = "d" })
    layer:build({ -1, 3 })
    local limit = math.sqrt(6 / 259)
    local m = ops.max(ops.abs(layer.kernel)):item()
    assert.is_true(m <= limit and m > 0.95 * limit, "max |kernel| " .. m .. " against limit " .. limit)
  end)

  it("has gradients matching finite differences (transposes, a batch axis, bias)", function()
    klua.random.seed(4)
    check_layer(L.EinsumDense("abc,cde->abde", { 3, 2, 2 }, { bias_axes = "be", bias_initializer = "random_normal" }),
      klua.random.normal({ 2, 3, 2 }))
    check_layer(L.EinsumDense("BFNH,NHD->BFD", { 2, 3 }), klua.random.normal({ 2, 2, 2, 3 }))
    check_layer(L.EinsumDense("...b,bc->...c", 3, { activation = "tanh" }), klua.random.normal({ 2, 2, 4 }))
  end)

  it("round-trips its config and names what is wrong", function()
    local layer = L.EinsumDense("abc,cd->abd", { -1, 4 }, { bias_axes = "d", activation = "relu", name = "ed" })
    local copy = config_round_trip(layer)
    assert.are.equal("abc,cd->abd", copy.equation)
    assert.are.same({ -1, 4 }, copy.partial_output_shape)
    assert.are.equal("d", copy.bias_axes)
    assert.are.same({ 2, 5, 4 }, copy(klua.ones({ 2, 5, 3 })):shape())
    raises("EinsumDense 'e1': invalid einsum equation 'ab%->c'", L.EinsumDense, "ab->c", 3, { name = "e1" })
    raises("bias dimension 'x' was requested, but is not part of the output spec 'ac'",
      L.EinsumDense("ab,bc->ac", 3, { bias_axes = "x" }), klua.ones({ 2, 4 }))
    raises("input shape and output shape do not match at shared dimension 'b'. Input shape is 5, and output shape is 7",
      L.EinsumDense("abc,cd->abd", { 7, 4 }), klua.ones({ 2, 5, 3 }))
    raises("weight dimension 'z' did not have a match", L.EinsumDense("ab,bz->ab", 4), klua.ones({ 2, 4 }))
  end)
end)

--------------------------------------------------------------------------------
describe("PReLU", function()
  it("is x above zero and alpha * x below, alpha shared over axes (prelu_test.py: test_prelu_correctness)", function()
    klua.random.seed(5)
    local x = klua.random.normal({ 2, 10, 5, 3 })
    local layer = L.PReLU{ alpha_initializer = "glorot_uniform", alpha_regularizer = "l1", alpha_constraint = "non_neg",
      shared_axes = { 2, 3 } }   -- Keras's shared_axes=(1, 2)
    layer:build(x:shape())
    assert.are.same({ 1, 1, 3 }, layer.alpha:shape())
    assert.are.equal("alpha", name_of(layer.alpha))
    local alpha = klua.random.uniform({ 1, 1, 3 })
    layer.alpha:assign(alpha)
    -- np_prelu: (x > 0) * x + (x <= 0) * alpha * x
    local pos = ops.cast(ops.greater(x, 0))
    local want = pos * x + (1 - pos) * alpha * x
    assert.is_true(max_abs_diff(layer(x), want) < 1e-6)
  end)

  it("has Keras's defaults: alpha of zeros shaped like the input without the batch (test_prelu)", function()
    local layer = L.PReLU{ alpha_regularizer = "l1", alpha_constraint = "max_norm", shared_axes = 2 }
    local y = layer(klua.random.normal({ 2, 3, 4 }))
    assert.are.same({ 2, 3, 4 }, y:shape())
    assert.are.same({ 1, 4 }, layer.alpha:shape())
    assert.are.equal(0, ops.max(ops.abs(layer.alpha)):item())
    assert.are.equal(1, #layer.trainable_weights)
    assert.are.equal(1, #layer.losses)
    assert.are.same({ 1, 1, 1 }, L.PReLU():compute_output_shape({ 1, 1, 1 }))
  end)

  it("has gradients matching finite differences, alpha included", function()
    klua.random.seed(6)
    -- inputs kept away from the kink at 0
    local x = klua.random.normal({ 2, 3, 2 })
    x = x + ops.sign(x) * 0.1
    check_layer(L.PReLU{ alpha_initializer = const(0.25), shared_axes = -1 }, x)
  end)

  it("round-trips its config and names what is wrong", function()
    local copy = config_round_trip(L.PReLU{ shared_axes = { 2, 3 }, alpha_initializer = const(0.1) })
    assert.are.same({ 2, 3 }, copy.shared_axes)
    local y = copy(klua.tensor({ { { -1 } } }))
    near(y, { { { -0.1 } } }, 1e-7)
    raises("shared_axes must be non%-zero integers other than the batch axis 1", L.PReLU, { shared_axes = 1 })
    local layer = L.PReLU{ name = "pr" }
    layer(klua.ones({ 2, 3 }))
    raises("PReLU 'pr': expected an input of shape %(batch,3%)", layer, klua.ones({ 2, 4 }))
  end)
end)

--------------------------------------------------------------------------------
describe("GroupNormalization", function()
  local plain = function(kw) kw.scale, kw.center = false, false; return L.GroupNormalization(kw) end

  it("matches Keras's numbers (group_normalization_test.py)", function()
    -- test_correctness_instance_norm
    local x = klua.tensor({ { { -1, 1, 0, 2 }, { 1, 3, -4, -2 } } })
    near(plain{ groups = 4 }(x), { { { -1, -1, 1, 1 }, { 1, 1, -1, -1 } } }, 1e-3)
    -- test_groups_instance_norm: groups = -1 is one group per channel
    assert.is_true(max_abs_diff(plain{ groups = -1 }(x), plain{ groups = 4 }(x)) < 1e-7)
    -- test_correctness_1d (Keras's axis=1 on a 2-D input is 2 here)
    local x1 = klua.tensor({ { -1, -1, 1, 1, 2, 2, 0, -2 } })
    near(plain{ groups = 1 }(x1), { { -0.898, -0.898, 0.539, 0.539, 1.257, 1.257, -0.180, -1.616 } }, { atol = 1e-3, rtol = 0 })
    near(plain{ groups = 2, axis = 2 }(x1), { { -1, -1, 1, 1, 0.904, 0.904, -0.301, -1.507 } }, { atol = 1e-3, rtol = 0 })
    -- test_correctness_2d (Keras's axis=2 is 3 here)
    local x2 = klua.tensor({ { { -1, -1, 2, 2 }, { 1, 1, 0, -2 } } })
    near(plain{ groups = 1 }(x2), { { { -0.898, -0.898, 1.257, 1.257 }, { 0.539, 0.539, -0.180, -1.616 } } }, { atol = 1e-3, rtol = 0 })
    near(plain{ groups = 2, axis = 3 }(x2), { { { -1, -1, 0.904, 0.904 }, { 1, 1, -0.301, -1.507 } } }, { atol = 1e-3, rtol = 0 })
    -- test_broadcasting_2d_channels_first (Keras's axis=1 is 2), with gamma and beta
    local y = L.GroupNormalization{ groups = 2, axis = 2 }(arange({ 1, 4, 2, 2 }))
    local a = { { -1.5274, -1.0910 }, { -0.6546, -0.2182 } }
    local b = { { 0.2182, 0.6546 }, { 1.0910, 1.5274 } }
    near(y, { { a, b, a, b } }, { atol = 1e-3, rtol = 0 })
  end)

  it("has gamma and beta per channel, regularized and constrained (test_groupnorm)", function()
    local layer = L.GroupNormalization{ gamma_regularizer = klua.regularizers.L2(0.01), beta_regularizer = klua.regularizers.L2(0.01) }
    assert.are.same({ 3, 4, 32 }, layer(klua.random.normal({ 3, 4, 32 })):shape())
    assert.are.equal(2, #layer.trainable_weights)
    assert.are.same({ 32 }, layer.gamma:shape())
    assert.are.same({ "gamma", "beta" }, { name_of(layer.trainable_weights[1]), name_of(layer.trainable_weights[2]) })
    assert.are.equal(2, #layer.losses)
    local c = L.GroupNormalization{ groups = 4, gamma_constraint = "unit_norm", beta_constraint = "unit_norm" }
    c(klua.random.normal({ 3, 4, 4 }))
    assert.are.equal(2, #c.trainable_weights)
  end)

  it("has gradients matching finite differences", function()
    klua.random.seed(7)
    check_layer(L.GroupNormalization{ groups = 2, beta_initializer = "random_normal", gamma_initializer = "random_normal" },
      klua.random.normal({ 2, 3, 4 }))
    check_layer(L.GroupNormalization{ groups = 3, axis = 2 }, klua.random.normal({ 2, 6, 2 }))
  end)

  it("round-trips its config and gives Keras's errors", function()
    local copy = config_round_trip(L.GroupNormalization{ groups = 2, axis = 2, epsilon = 1e-5, center = false })
    assert.are.same({ 2, 2, 1e-5, false, true }, { copy.groups, copy.axis, copy.epsilon, copy.center, copy.scale })
    -- test_groups_bigger_than_dim_error, test_groups_not_a_multiple_of_dim_error
    raises("cannot be more than the number of channels", L.GroupNormalization{ groups = 5 }, klua.ones({ 2, 2, 2, 4 }))
    raises("must be a multiple of the number of groups", L.GroupNormalization{ groups = 3 }, klua.ones({ 2, 2, 2, 4 }))
    -- test_groups_rejects_invalid_values
    for _, bad in ipairs { 0, -2, 1.5, "32" } do raises("groups must be a positive integer", L.GroupNormalization, { groups = bad }) end
    -- test_undefined_dim_error
    raises("should have a defined dimension but the layer received an input with shape",
      function() return L.GroupNormalization()(klua.Input{ shape = { 2, 2, 2, -1 } }) end)
  end)
end)

--------------------------------------------------------------------------------
describe("UnitNormalization", function()
  local function sq_norms(t, axes) return ops.sum(ops.square(t), axes) end

  it("gives each sample unit L2 norm over its axes (unit_normalization_test.py: test_correctness)", function()
    klua.random.seed(8)
    near(sq_norms(L.UnitNormalization{ axis = -1 }(klua.random.normal({ 2, 3 })), 2), { 1, 1 }, 1e-5)
    near(sq_norms(L.UnitNormalization{ axis = { 2, 3 } }(klua.random.normal({ 2, 3, 3 })), { 2, 3 }), { 1, 1 }, 1e-5)
    -- Keras's axis=1 is 2 here: unit norm down each column
    near(sq_norms(L.UnitNormalization{ axis = 2 }(klua.random.normal({ 2, 3, 2 })), 2), { { 1, 1 }, { 1, 1 } }, 1e-5)
  end)

  it("is built when made, keeps zero vectors zero, and has gradients matching finite differences", function()
    local layer = L.UnitNormalization()
    assert.is_true(layer.built)
    assert.are.same({ -1, 3 }, layer:compute_output_shape({ -1, 3 }))
    near(layer(klua.zeros({ 1, 3 })), { { 0, 0, 0 } }, 0)
    klua.random.seed(9)
    check_layer(L.UnitNormalization{ axis = { 2, 3 } }, klua.random.normal({ 2, 2, 3 }))
  end)

  it("round-trips its config and refuses a bad axis (test_invalid_axis)", function()
    assert.are.same({ 2, 3 }, config_round_trip(L.UnitNormalization{ axis = { 2, 3 } }).axis)
    raises("axis must be a non%-zero integer or a list of them", L.UnitNormalization, { axis = { axis = -1 } })
    raises("axis 4 is out of range", L.UnitNormalization{ axis = 4 }, klua.ones({ 2, 3 }))
  end)
end)

--------------------------------------------------------------------------------
describe("the recurrent layers with Keras's fixed weights, on the fused and the step-by-step paths", function()
  -- rows where every unit has the same value: one number per row
  local function rows(values, units)
    local out = {}
    for i, v in ipairs(values) do
      if type(v) == "table" then out[i] = rows(v, units)
      else out[i] = {}; for j = 1, units do out[i][j] = v end end
    end
    return out
  end
  local init22 = function() return arange({ 2, 2 }) end
  local MASK_A = { { 1, 1, 0, 1 }, { 1, 0, 0, 1 } }   -- gru/simple_rnn_test.py test_masking
  local MASK_B = { { 1, 1, 1, 0 }, { 1, 1, 0, 0 } }   -- lstm_test.py test_masking
  local cases = {
    -- test_correctness
    { "gru_test.py test_correctness", L.GRU, 3, {}, { 3, 6, 4 }, rows({ 0.5217289, 0.6371659, 0.39384964 }, 3) },
    { "gru_test.py test_correctness, go_backwards", L.GRU, 3, { go_backwards = true }, { 3, 6, 4 }, rows({ 0.24406259, 0.611516, 0.3928808 }, 3) },
    { "gru_test.py test_correctness, use_bias=False", L.GRU, 3, { use_bias = false }, { 3, 6, 4 }, rows({ 0.49988455, 0.64701194, 0.4103359 }, 3) },
    { "gru_test.py test_correctness, reset_after=False", L.GRU, 3, { reset_after = false }, { 3, 6, 4 }, rows({ 0.51447755, 0.6426879, 0.40208298 }, 3) },
    { "lstm_test.py test_correctness", L.LSTM, 3, {}, { 3, 6, 4 }, rows({ 0.6288687, 0.86899155, 0.9460773 }, 3) },
    { "lstm_test.py test_correctness, go_backwards", L.LSTM, 3, { go_backwards = true }, { 3, 6, 4 }, rows({ 0.35622165, 0.74789524, 0.8872726 }, 3) },
    { "lstm_test.py test_correctness, unit_forget_bias=False", L.LSTM, 3, { unit_forget_bias = false }, { 3, 6, 4 }, rows({ 0.57019705, 0.8661914, 0.9459622 }, 3) },
    { "lstm_test.py test_correctness, use_bias=False", L.LSTM, 3, { use_bias = false }, { 3, 6, 4 }, rows({ 0.54986924, 0.86226785, 0.9443936 }, 3) },
    { "simple_rnn_test.py test_correctness", L.SimpleRNN, 4, {}, { 2, 3, 4 }, rows({ 0.405432, 0.73605347 }, 4) },
    { "simple_rnn_test.py test_correctness, go_backwards", L.SimpleRNN, 4, { go_backwards = true }, { 2, 3, 4 }, rows({ 0.11144729, 0.5528889 }, 4) },
    -- test_pass_initial_state
    { "gru_test.py test_pass_initial_state", L.GRU, 2, {}, { 2, 4, 3 }, { { 0.23774096, 0.33508456 }, { 0.83659905, 1.0227708 } }, nil, { init22 } },
    { "gru_test.py test_pass_initial_state, go_backwards", L.GRU, 2, { go_backwards = true }, { 2, 4, 3 },
      { { 0.13486053, 0.23261218 }, { 0.78257304, 0.9691353 } }, nil, { init22 } },
    { "lstm_test.py test_pass_initial_state", L.LSTM, 2, {}, { 2, 4, 3 }, { { 0.20574439, 0.3558822 }, { 0.64930826, 0.66276 } }, nil, { init22, init22 } },
    { "lstm_test.py test_pass_initial_state, go_backwards", L.LSTM, 2, { go_backwards = true }, { 2, 4, 3 },
      { { 0.13281618, 0.2790356 }, { 0.5839337, 0.5992567 } }, nil, { init22, init22 } },
    { "simple_rnn_test.py test_pass_initial_state", L.SimpleRNN, 4, {}, { 2, 4, 3 }, rows({ 0.33621645, 0.6262637 }, 4), nil,
      { function() return arange({ 2, 4 }) end } },
    { "simple_rnn_test.py test_pass_initial_state, go_backwards", L.SimpleRNN, 4, { go_backwards = true }, { 2, 4, 3 },
      rows({ 0.07344437, 0.43043602 }, 4), nil, { function() return arange({ 2, 4 }) end } },
    -- test_masking
    { "gru_test.py test_masking", L.GRU, 2, {}, { 2, 4, 3 }, rows({ 0.19393763, 0.30818558 }, 2), MASK_A },
    { "gru_test.py test_masking, return_sequences", L.GRU, 2, { return_sequences = true }, { 2, 4, 3 },
      rows({ { 0.03606692, 0.09497581, 0.09497581, 0.19393763 }, { 0.16051409, 0.16051409, 0.16051409, 0.30818558 } }, 2), MASK_A },
    { "gru_test.py test_masking, zero_output_for_mask", L.GRU, 2, { return_sequences = true, zero_output_for_mask = true }, { 2, 4, 3 },
      rows({ { 0.03606692, 0.09497581, 0, 0.19393763 }, { 0.16051409, 0, 0, 0.30818558 } }, 2), MASK_A },
    { "gru_test.py test_masking, go_backwards", L.GRU, 2, { go_backwards = true }, { 2, 4, 3 }, rows({ 0.11669192, 0.28380975 }, 2), MASK_A },
    { "lstm_test.py test_masking", L.LSTM, 2, {}, { 2, 4, 3 }, rows({ 0.11755939, 0.28556206 }, 2), MASK_B },
    { "lstm_test.py test_masking, return_sequences", L.LSTM, 2, { return_sequences = true }, { 2, 4, 3 },
      rows({ { 0.0158891, 0.05552048, 0.11755939, 0.11755939 }, { 0.14185596, 0.28556206, 0.28556206, 0.28556206 } }, 2), MASK_B },
    { "simple_rnn_test.py test_masking", L.SimpleRNN, 4, {}, { 2, 4, 3 }, rows({ 0.32951632, 0.61799484 }, 4), MASK_A },
    { "simple_rnn_test.py test_masking, return_sequences", L.SimpleRNN, 2, { return_sequences = true }, { 2, 4, 3 },
      rows({ { 0.0599281, 0.15122814, 0.15122814, 0.32394567 }, { 0.3969304, 0.3969304, 0.3969304, 0.608085 } }, 2), MASK_A },
    { "simple_rnn_test.py test_masking, zero_output_for_mask", L.SimpleRNN, 2, { return_sequences = true, zero_output_for_mask = true },
      { 2, 4, 3 }, rows({ { 0.0599281, 0.15122814, 0, 0.32394567 }, { 0.3969304, 0, 0, 0.608085 } }, 2), MASK_A },
  }
  for _, c in ipairs(cases) do
    local what, cls, units, kw, shape, want, mask, init = unpack(c, 1, 8)
    it("match " .. what, function()
      for _, steps in ipairs { false, true } do
        local args = {}
        for k, v in pairs(kw) do args[k] = v end
        local layer = keras_rnn(cls, units, args)
        rawset(layer, "_step_by_step", steps)
        local call = { mask = mask and klua.tensor(mask) }
        if init then
          call.initial_state = {}
          for i, f in ipairs(init) do call.initial_state[i] = f() end
        end
        near(layer(arange(shape), call), want, 1e-5, what .. (steps and " (step by step)" or " (fused)"))
      end
    end)
  end
end)

--------------------------------------------------------------------------------
describe("GRU with reset_after = false", function()
  it("matches Keras (gru_test.py: test_correctness, reset_after=False)", function()
    local layer = keras_rnn(L.GRU, 3, { reset_after = false })
    near(layer(arange({ 3, 6, 4 })), {
      { 0.51447755, 0.51447755, 0.51447755 }, { 0.6426879, 0.6426879, 0.6426879 }, { 0.40208298, 0.40208298, 0.40208298 } }, 1e-5)
    assert.are.same({ 9 }, layer.bias:shape())
    assert.are.equal(3, #layer.trainable_weights)
    assert.is_false(config_round_trip(layer).reset_after)
  end)

  it("has gradients through time matching finite differences (fused kernel, masked, backwards)", function()
    klua.random.seed(10)
    local layer = L.GRU(3, { reset_after = false, return_sequences = true, bias_initializer = "random_normal", go_backwards = true })
    local mask = klua.tensor({ { 1, 1, 0, 1 }, { 1, 0, 1, 1 } })
    check_layer(layer, klua.random.normal({ 2, 4, 2 }), { mask = mask }, { h = 1 / 16 })
  end)

  it("gives the same values and gradients on one thread and on two", function()
    local n, t, d, u = 64, 16, 8, 32
    klua.random.seed(11)
    local x = klua.random.normal({ n, t, d })
    local weights = { klua.random.normal({ d, 3 * u }) * 0.3, klua.random.normal({ u, 3 * u }) * 0.3, klua.random.normal({ 3 * u }) * 0.3 }
    local function run(threads)
      klua.set_num_threads(threads)
      local layer = helpers.with_weights(L.GRU(u, { reset_after = false, return_sequences = true }), { n, t, d }, weights)
      local tape = klua.GradientTape()
      tape:start()
      tape:watch(x)
      local y = layer(x)
      local loss = ops.sum(y * y)
      tape:stop()
      return y, tape:gradient(loss, { x, layer.kernel, layer.recurrent_kernel, layer.bias })
    end
    local threads = klua.set_num_threads(1)   -- the setting to restore ("auto" by default)
    local y1, g1 = run(1)
    local y2, g2 = run(2)
    klua.set_num_threads(threads)
    assert.is_true(max_abs_diff(y1, y2) < 1e-6)
    for i = 1, 4 do assert.is_true(max_abs_diff(g1[i], g2[i]) < 1e-4 * (1 + ops.max(ops.abs(g1[i])):item())) end
  end)
end)

--------------------------------------------------------------------------------
describe("stateful recurrent layers", function()
  local seq = arange({ 2, 3, 4 })

  it("carry their states from call to call and reset them (lstm/gru/simple_rnn_test.py: test_statefulness)", function()
    local cases = {
      { L.LSTM, { 0.3124785, 0.6863672 } },
      { L.GRU, { 0.29542392, 0.5885018 } },
      { L.SimpleRNN, { 0.40559256, 0.7361247 } },
    }
    for _, c in ipairs(cases) do
      local layer = keras_rnn(c[1], 4, { stateful = true })
      local first = layer(seq)
      local want = { { c[2][1], c[2][1], c[2][1], c[2][1] }, { c[2][2], c[2][2], c[2][2], c[2][2] } }
      near(layer(seq), want, 1e-5)
      layer:reset_state()
      assert.is_true(max_abs_diff(layer(seq), first) < 1e-7)
      near(layer(seq), want, 1e-5)
    end
  end)

  it("add up as Keras's rnn_test.py says (test_statefulness_single_state, test_go_backwards)", function()
    -- OneStateRNNCell: ones kernels, no bias, no activation
    local function cell(kw)
      kw.activation, kw.use_bias = "linear", false
      kw.kernel_initializer, kw.recurrent_initializer = "ones", "ones"
      return L.SimpleRNN(2, kw)
    end
    local layer = cell{ stateful = true }
    layer(klua.ones({ 1, 2, 3 }))
    near(layer(klua.ones({ 1, 2, 3 })), { { 45, 45 } }, 1e-6)
    layer = cell{ stateful = true, return_state = true }
    local s = arange({ 2, 3, 4 })
    layer(s)
    local out, state = layer(s)
    near(out, { { 954, 954 }, { 3978, 3978 } }, 1e-6)
    near(state, { { 954, 954 }, { 3978, 3978 } }, 1e-6)
  end)

  it("keep their states as non-trainable Variables outside the weights, one batch size (test_stateful_batch_size_mismatch_raises)", function()
    local layer = keras_rnn(L.LSTM, 4, { stateful = true, name = "sl" })
    layer(seq)
    assert.are.equal(2, #layer.states)
    for _, v in ipairs(layer.states) do
      assert.is_true(klua.Variable.is_variable(v))
      assert.is_false(v.trainable)
      assert.are.same({ 2, 4 }, v:shape())
    end
    assert.are.equal(3, #layer.weights)
    assert.are.equal(0, #layer.non_trainable_weights)
    raises("LSTM 'sl': a stateful layer keeps its batch size: expected batch size 2 %(that of its states%), got 1",
      layer, arange({ 1, 3, 4 }))
  end)

  it("make their states when built with a known batch size (Input{batch_size=})", function()
    local x = klua.Input{ shape = { 3, 4 }, batch_size = 2 }
    local layer = keras_rnn(L.GRU, 4, { stateful = true })
    local model = klua.Model{ inputs = x, outputs = layer(x) }
    assert.are.same({ 2, 4 }, layer.states[1]:shape())
    model(seq)
    near(model(seq), { { 0.29542392, 0.29542392, 0.29542392, 0.29542392 }, { 0.5885018, 0.5885018, 0.5885018, 0.5885018 } }, 1e-5)
    raises("expects shape %(2,3,4%), got %(1,3,4%)", model, arange({ 1, 3, 4 }))
  end)

  it("take given states in reset_states(states) and pass no gradient back to earlier calls", function()
    local layer = keras_rnn(L.LSTM, 4, { stateful = true, return_state = true })
    local _, h, c = layer(seq)
    local again = keras_rnn(L.LSTM, 4, { stateful = true })
    again(seq)
    again:reset_states({ h, c })
    local want = layer(seq)
    again:reset_states({ h, c })
    assert.is_true(max_abs_diff(again(seq), want) < 1e-7)
    raises("reset_states: expected 2 state tensors, got 1", again.reset_states, again, { h })
    raises("reset_states: state 1 must have shape %(batch, 4%), got %(2,3%)", again.reset_states, again, { klua.ones({ 2, 3 }), c })
    raises("not stateful", L.LSTM(4).reset_states, L.LSTM(4), { h, c })
    -- the weights' gradient sees only this call: the states are constants
    local tape = klua.GradientTape()
    local loss = tape:record(function() return ops.sum(again(seq)) end)
    assert.is_not_nil(tape:gradient(loss, again.kernel))
  end)

  it("work inside Bidirectional (bidirectional_test.py: test_statefulness)", function()
    local s = arange({ 2, 4, 3 })
    local layer = L.Bidirectional(keras_rnn(L.LSTM, 2, { stateful = true }))
    local want = { { 0.26234663, 0.26234663, 0.16959146, 0.16959146 }, { 0.6137073, 0.6137073, 0.5381646, 0.5381646 } }
    layer(s)
    near(layer(s), want, 1e-5)
    layer:reset_state()
    layer(s)
    near(layer(s), want, 1e-5)
    assert.are.equal(4, #layer.states)
    assert.is_true(config_round_trip(layer).forward_layer.stateful)
    raises("not stateful", L.Bidirectional(L.LSTM(2)).reset_states, L.Bidirectional(L.LSTM(2)))
  end)

  it("round-trip stateful in their config", function()
    assert.is_true(config_round_trip(L.GRU(3, { stateful = true })).stateful)
    assert.is_false(config_round_trip(L.GRU(3)).stateful)
  end)
end)

--------------------------------------------------------------------------------
describe("recurrent_dropout", function()
  local function x_of(shape) klua.random.seed(12); return klua.random.normal(shape) end

  it("trains with Keras's shapes and weights and leaves inference alone (test_basics)", function()
    for _, cls in ipairs { L.LSTM, L.GRU, L.SimpleRNN } do
      local layer = cls(3, { dropout = 0.5, recurrent_dropout = 0.5, seed = 1 })
      local x = x_of({ 3, 2, 4 })
      assert.are.same({ 3, 3 }, layer(x, { training = true }):shape())
      assert.are.equal(3, #layer.trainable_weights)
      assert.are.equal(0, #layer.non_trainable_weights)
      local plain = cls(3)
      plain(x)
      plain:set_weights(layer:get_weights())
      assert.are.equal(0, max_abs_diff(layer(x), plain(x)))
      assert.is_true(max_abs_diff(layer(x, { training = true }), plain(x)) > 1e-3)
    end
  end)

  it("keeps one recurrent mask over the timesteps of a call", function()
    -- h_t = (h_{t-1} * m) @ I from h_0 = 1: m^t, so the zeros stay in place and the rest is 2^t
    local layer = L.SimpleRNN(64, { recurrent_dropout = 0.5, seed = 3, activation = "linear", use_bias = false,
      kernel_initializer = "zeros", recurrent_initializer = "identity", return_sequences = true })
    local y = layer(klua.zeros({ 2, 3, 1 }), { training = true, initial_state = { klua.ones({ 2, 64 }) } })
    local m = ops.slice_axis(y, 2, 1, 1)
    local zeros = ops.sum(ops.equal(m, 0)):item()
    assert.is_true(zeros > 20 and zeros < 108, "dropped " .. zeros .. " of 128")
    for t = 1, 3 do
      local step = ops.slice_axis(y, 2, t, t)
      assert.is_true(max_abs_diff(step, ops.cast(ops.greater(m, 0)) * 2 ^ t) < 1e-6)
    end
  end)

  it("draws from the layer's generator when seeded, else from the global stream", function()
    local x = x_of({ 2, 4, 3 })
    local a, b = L.GRU(3, { recurrent_dropout = 0.3, seed = 5 }), L.GRU(3, { recurrent_dropout = 0.3, seed = 5 })
    a(x); b(x); b:set_weights(a:get_weights())
    klua.random.seed(99)
    local before = klua.random.uniform({ 1 }):item()
    klua.random.seed(99)
    assert.are.equal(0, max_abs_diff(a(x, { training = true }), b(x, { training = true })))
    assert.are.equal(before, klua.random.uniform({ 1 }):item())   -- the global stream did not move
    local c = L.GRU(3, { recurrent_dropout = 0.3 })
    c(x); c:set_weights(a:get_weights())
    klua.random.seed(7)
    local y1 = c(x, { training = true })
    klua.random.seed(7)
    assert.are.equal(0, max_abs_diff(c(x, { training = true }), y1))
  end)

  local configs = {
    { "LSTM", L.LSTM, { return_sequences = true } },
    { "GRU", L.GRU, { return_state = true, go_backwards = true } },
    { "GRU (reset_after = false)", L.GRU, { reset_after = false, return_sequences = true } },
    { "SimpleRNN", L.SimpleRNN, { return_sequences = true } },
  }
  for _, c in ipairs(configs) do
    it("has gradients matching finite differences through the step-by-step path: " .. c[1], function()
      local kw = { recurrent_dropout = 0.4, dropout = 0.3, seed = 4, bias_initializer = "random_normal" }
      for k, v in pairs(c[3]) do kw[k] = v end
      local layer = c[2](3, kw)
      local x = x_of({ 2, 4, 2 })
      local mask = klua.tensor({ { 1, 1, 0, 1 }, { 1, 0, 1, 1 } })
      local gen = layer.seed_generator
      local state = gen:get_state()
      check_layer(layer, x, { training = true, mask = mask }, { before = function() gen:set_state(state) end, h = 1 / 16 })
    end)
  end

  it("is the fused kernels' sequence when no mask is drawn (the step path against C)", function()
    local x = x_of({ 2, 5, 3 })
    local mask = klua.tensor({ { 1, 1, 0, 1, 0 }, { 0, 1, 1, 1, 1 } })
    for _, c in ipairs(configs) do
      for _, backwards in ipairs { false, true } do
        local kw = { bias_initializer = "random_normal", go_backwards = backwards, return_state = true, return_sequences = true }
        for k, v in pairs(c[3]) do kw[k] = v end
        local fused = c[2](4, kw)
        local init = fused:_num_states() == 2 and { x_of({ 2, 4 }), x_of({ 2, 4 }) * 0.5 } or { x_of({ 2, 4 }) }
        local want = { fused(x, { mask = mask, initial_state = init }) }
        rawset(fused, "_step_by_step", true)
        local got = { fused(x, { mask = mask, initial_state = init }) }
        for i = 1, #want do assert.is_true(max_abs_diff(got[i], want[i]) < 1e-5, c[1] .. " output " .. i) end
      end
    end
  end)
end)

describe("RMSNormalization", function()
  -- keras/src/layers/normalization/rms_normalization_test.py (test_correctness):
  -- x * rsqrt(mean(x^2) + epsilon) * scale over the last axis.
  it("divides by the root mean square over the axis and scales by a weight of ones", function()
    local klua = require("klua")
    local layer = klua.layers.RMSNormalization{ epsilon = 1e-6 }
    local x = klua.tensor{ { 1, 2, 3, 4 }, { -2, 0, 2, 0 } }
    local y = layer(x)
    assert.are.same({ 4 }, layer.scale:shape())
    local rms1, rms2 = math.sqrt((1 + 4 + 9 + 16) / 4 + 1e-6), math.sqrt(8 / 4 + 1e-6)
    local want = { { 1 / rms1, 2 / rms1, 3 / rms1, 4 / rms1 }, { -2 / rms2, 0, 2 / rms2, 0 } }
    for i = 1, 2 do for j = 1, 4 do assert.is_true(math.abs(y:get(i, j) - want[i][j]) < 1e-5) end end
    -- over two axes, with the scale shaped like them
    local l2 = klua.layers.RMSNormalization{ axis = { 2, 3 } }
    l2(klua.ones{ 2, 3, 4 })
    assert.are.same({ 3, 4 }, l2.scale:shape())
  end)

  it("has gradients that match finite differences", function()
    local klua = require("klua")
    klua.random.seed(5)
    local layer = klua.layers.RMSNormalization()
    local x = klua.random.normal{ 3, 5 }
    layer(x)
    layer.scale:assign(klua.random.normal{ 5 })
    local r = klua.random.normal{ 3, 5 }
    local function f(t) return klua.ops.sum(layer(t) * r):item() end
    local xv = klua.Variable(x)
    local tape = klua.GradientTape()
    local loss = tape:record(function() return klua.ops.sum(layer(xv) * r) end)
    local g = tape:gradient(loss, xv)
    for i = 1, 3 do
      for j = 1, 5 do
        local h = 1e-2
        local function at(delta)
          local rows = {}
          for a = 1, 3 do
            rows[a] = {}
            for b = 1, 5 do rows[a][b] = x:get(a, b) + ((a == i and b == j) and delta or 0) end
          end
          return f(klua.tensor(rows))
        end
        local d = (at(h) - at(-h)) / (2 * h)
        assert.is_true(math.abs(d - g:get(i, j)) < 2e-3 * (1 + math.abs(d)), ("(%d,%d): %g vs %g"):format(i, j, d, g:get(i, j)))
      end
    end
  end)
end)
