-- interop_spec.lua — klua.interop against PyTorch: models trained in PyTorch
-- (tests/reference/gen_torch_interop.py wrote their state_dict and their
-- outputs on fixed inputs into tests/fixtures/interop/) load into the
-- matching klua models, predict the same (max abs difference <= 1e-5), and
-- map back to the original state exactly; plus the errors and Variable paths.
-- KLUA_INTEROP_EXPORT=dir also writes each model's to_torch state there, for
-- `gen_torch_interop.py --verify dir` (PyTorch loads them, strict).
local klua = require("klua")
local helpers = require("helpers")
local interop = require("klua.interop")
local L, ops, saving = klua.layers, klua.ops, klua.saving
local err_of, max_abs_diff = helpers.err_of, helpers.max_abs_diff

local DIR = "tests/fixtures/interop/"
local EXPORT = os.getenv("KLUA_INTEROP_EXPORT")

local function fixture(name)
  return saving.load_safetensors(DIR .. name .. ".safetensors"), saving.load_safetensors(DIR .. name .. "_io.safetensors")
end

local function channels_last(x)   -- (N, C, s...) -> (N, s..., C)
  local p = { 1 }
  for i = 3, x.nd do p[#p + 1] = i end
  p[#p + 1] = 2
  return ops.transpose(x, p)
end

local function same_shape(a, b) return table.concat(a:shape(), ",") == table.concat(b:shape(), ",") end

-- to_torch gives back every tensor of `state` bit for bit, except
-- num_batches_tracked (not written) and the bias pairs of LSTM and RNN
-- layers, which klua holds as one sum: bias_ih = the sum, bias_hh = 0.
local function assert_gives_back(name, model, state, opts, summed)
  local back = interop.to_torch(model, opts)
  if EXPORT then saving.save_safetensors(EXPORT .. "/" .. name .. ".safetensors", back) end
  for k, t in pairs(state) do
    if k:match("num_batches_tracked$") then
      assert.is_nil(back[k], k)
    elseif summed and k:match("bias_ih_l%d") then
      local hh = k:gsub("bias_ih", "bias_hh")
      assert.is_true(same_shape(back[k], t), k)
      assert.are.equal(0, max_abs_diff(back[k], t + state[hh]), k)
      assert.are.equal(0, back[hh]:abs():max():item(), hh)
    elseif not (summed and k:match("bias_hh_l%d")) then
      assert.is_not_nil(back[k], k)
      assert.is_true(same_shape(back[k], t), k)
      assert.are.equal(0, max_abs_diff(back[k], t), k)
    end
  end
  for k in pairs(back) do assert.is_not_nil(state[k], "to_torch wrote '" .. k .. "', which the state does not have") end
end

local function assert_predicts(y, expected)
  assert.is_true(same_shape(y, expected))
  assert.is_true(max_abs_diff(y, expected) <= 1e-5, "max abs difference " .. max_abs_diff(y, expected))
end

describe("klua.interop loads models trained in PyTorch", function()
  it("maps an nn.Sequential MLP by order (no mapping), predicts as PyTorch did and gives the state back", function()
    local state, io = fixture("mlp")
    local model = klua.Sequential{ klua.Input{ shape = { 6 } }, L.Dense{ units = 16, activation = "relu" },
      L.Dense{ units = 8, activation = "tanh" }, L.Dense{ units = 3 } }
    interop.from_torch(model, state)
    assert_predicts(model(io.input), io.output)
    assert_gives_back("mlp", model, state, { mapping = { "0", "2", "4" } })
  end)

  it("maps a CNN: Conv2d (OIHW -> HWIO), BatchNorm2d, and the Linear after an NCHW Flatten", function()
    local state, io = fixture("cnn")
    local model = klua.Sequential{ klua.Input{ shape = { 8, 10, 3 } },
      L.Conv2D{ filters = 4, kernel_size = 3, padding = "same", name = "c1" },
      L.BatchNormalization{ epsilon = 1e-5, momentum = 0.9, name = "b1" }, L.ReLU(), L.MaxPooling2D{ pool_size = 2 },
      L.Conv2D{ filters = 6, kernel_size = 3, activation = "relu", name = "c2" }, L.Flatten(), L.Dropout{ rate = 0.5 },
      L.Dense{ units = 5, name = "head" } }
    local mapping = { c1 = "conv1", b1 = "bn1", c2 = "conv2", head = "fc" }
    interop.from_torch(model, state, { mapping = mapping })
    assert_predicts(model(channels_last(io.input)), io.output)
    assert_gives_back("cnn", model, state, { mapping = mapping })
  end)

  it("maps Conv1d, a depthwise Conv1d, ConvTranspose1d and a Linear after an NCL Flatten", function()
    local state, io = fixture("conv1d")
    local model = klua.Sequential{ klua.Input{ shape = { 12, 4 } },
      L.Conv1D{ filters = 6, kernel_size = 3, padding = "same", activation = "relu" },
      L.DepthwiseConv1D{ kernel_size = 3, depth_multiplier = 2 },
      L.Conv1DTranspose{ filters = 5, kernel_size = 3, strides = 2, activation = "relu" }, L.Flatten(), L.Dense{ units = 3 } }
    local mapping = { "conv", "depthwise", "up", "fc" }
    interop.from_torch(model, state, { mapping = mapping })
    assert_predicts(model(channels_last(io.input)), io.output)
    assert_gives_back("conv1d", model, state, { mapping = mapping })
  end)

  it("maps a depthwise Conv2d, a grouped Conv2d and a ConvTranspose2d with a 3x2 kernel", function()
    local state, io = fixture("conv2d_more")
    local model = klua.Sequential{ klua.Input{ shape = { 6, 7, 4 } },
      L.DepthwiseConv2D{ kernel_size = 3, depth_multiplier = 2, padding = "same" },
      L.Conv2D{ filters = 6, kernel_size = 1, groups = 2, activation = "relu" },
      L.Conv2DTranspose{ filters = 3, kernel_size = { 3, 2 }, strides = 2 } }
    local mapping = { "depthwise", "grouped", "up" }
    interop.from_torch(model, state, { mapping = mapping })
    assert_predicts(model(channels_last(io.input)), channels_last(io.output))
    assert_gives_back("conv2d_more", model, state, { mapping = mapping })
  end)

  it("maps a two-layer nn.LSTM onto two LSTM layers (gates i, f, g, o; bias_ih + bias_hh)", function()
    local state, io = fixture("lstm")
    local model = klua.Sequential{ klua.Input{ shape = { 7, 5 } }, L.LSTM{ units = 8, return_sequences = true },
      L.LSTM{ units = 8 }, L.Dense{ units = 2 } }
    local mapping = { "lstm", { "lstm", layer = 1 }, "fc" }
    interop.from_torch(model, state, { mapping = mapping })
    assert_predicts(model(io.input), io.output)
    assert_gives_back("lstm", model, state, { mapping = mapping }, true)
  end)

  it("maps a bidirectional nn.GRU onto Bidirectional(GRU) (gates r, z, n -> z, r, h; reset_after biases)", function()
    local state, io = fixture("gru")
    local model = klua.Sequential{ klua.Input{ shape = { 6, 4 } }, L.Bidirectional(L.GRU{ units = 6 }, { name = "bi" }),
      L.Dense{ units = 3, name = "head" } }
    local mapping = { bi = "gru", head = "fc" }
    interop.from_torch(model, state, { mapping = mapping })
    assert_predicts(model(io.input), io.output)
    assert_gives_back("gru", model, state, { mapping = mapping })
  end)

  it("maps a Transformer block: nn.MultiheadAttention (in_proj_weight), LayerNorm and Linear", function()
    local state, io = fixture("transformer")
    local x = klua.Input{ shape = { 5, 8 } }
    local a = L.MultiHeadAttention{ num_heads = 2, key_dim = 4, name = "attn" }(x, x)
    local h = L.LayerNormalization{ epsilon = 1e-5, name = "norm1" }(L.Add()({ x, a }))
    local f = L.Dense{ units = 8, name = "ff2" }(L.Dense{ units = 16, activation = "relu", name = "ff1" }(h))
    local y = L.LayerNormalization{ epsilon = 1e-5, name = "norm2" }(L.Add()({ h, f }))
    local model = klua.Model{ inputs = x, outputs = y }
    local mapping = { attn = "attn", norm1 = "norm1", ff1 = "ff1", ff2 = "ff2", norm2 = "norm2" }
    interop.from_torch(model, state, { mapping = mapping })
    assert_predicts(model(io.input), io.output)
    assert_gives_back("transformer", model, state, { mapping = mapping })
  end)

  it("maps nn.MultiheadAttention with kdim and vdim (q/k/v_proj_weight) onto MultiHeadAttention", function()
    local state, io = fixture("cross_attention")
    local mha = L.MultiHeadAttention{ num_heads = 2, key_dim = 4 }
    mha(io.query, io.value)
    interop.from_torch(mha, state, { mapping = { "attn" } })
    assert_predicts(mha(io.query, io.value), io.output)
    assert_gives_back("cross_attention", mha, state, { mapping = { "attn" } })
  end)

  it("maps nn.Embedding and an Elman nn.RNN (token ids stored as I64)", function()
    local state, io = fixture("embedding_rnn")
    local model = klua.Sequential{ klua.Input{ shape = { 7 } }, L.Embedding{ input_dim = 20, output_dim = 6 },
      L.SimpleRNN{ units = 5 }, L.Dense{ units = 3 } }
    local mapping = { "embed", "rnn", "fc" }
    interop.from_torch(model, state, { mapping = mapping })
    assert_predicts(model(io.input), io.output)
    assert_gives_back("embedding_rnn", model, state, { mapping = mapping }, true)
  end)

  it("maps a bare nn.GroupNorm (names without a module prefix) onto GroupNormalization", function()
    local state, io = fixture("group_norm")
    local gn = L.GroupNormalization{ groups = 3, epsilon = 1e-5 }
    gn(klua.zeros{ 1, 3, 4, 6 })
    interop.from_torch(gn, state, { mapping = { "" } })
    assert_predicts(gn(channels_last(io.input)), channels_last(io.output))
    assert_gives_back("group_norm", gn, state, { mapping = { "" } })
  end)
end)

describe("klua.interop without PyTorch", function()
  local function convnet()
    return klua.Sequential{ klua.Input{ shape = { 5, 4, 2 } }, L.Conv2D{ filters = 3, kernel_size = 2, name = "c" },
      L.Flatten(), L.Dense{ units = 2, name = "d" } }
  end

  it("names modules after the klua layers without a mapping, and reads that state back by order", function()
    local m, x = convnet(), klua.random.normal{ 2, 5, 4, 2 }
    local state = interop.to_torch(m)
    local names = {}
    for k in pairs(state) do names[#names + 1] = k end
    table.sort(names)
    assert.are.same({ "c.bias", "c.weight", "d.bias", "d.weight" }, names)
    assert.are.same({ 3, 2, 2, 2 }, state["c.weight"]:shape())
    local fresh = interop.from_torch(convnet(), state)
    assert.are.equal(0, max_abs_diff(fresh(x), m(x)))
  end)

  it("round-trips the kinds no fixture covers: Bidirectional LSTM, RMSNormalization, Conv3D and Conv3DTranspose", function()
    local function seq() return klua.Sequential{ klua.Input{ shape = { 4, 6 } },
      L.Bidirectional(L.LSTM{ units = 3, return_sequences = true }), L.RMSNormalization(), L.LayerNormalization(),
      L.Dense{ units = 2 } } end
    local function vol() return klua.Sequential{ klua.Input{ shape = { 3, 4, 5, 2 } }, L.Conv3D{ filters = 2, kernel_size = 2 },
      L.Conv3DTranspose{ filters = 3, kernel_size = { 2, 1, 2 } } } end
    for _, make in ipairs { seq, vol } do
      local a, b = make(), make()
      for _, v in ipairs(a.weights) do v:assign(klua.random.normal(v:shape())) end
      local state = interop.to_torch(a)
      interop.from_torch(b, state, { mapping = (function()
        local m = {}
        for i, l in ipairs(a.layers) do m[b.layers[i].name] = l.name end
        return m
      end)() })
      local x = klua.random.normal(make == seq and { 2, 4, 6 } or { 1, 3, 4, 5, 2 })
      assert.are.equal(0, max_abs_diff(b(x), a(x)))
    end
  end)

  it("reorders the first Dense after a Flatten of a conv map, unless the mapping says flatten = false", function()
    local m, x = convnet(), klua.random.normal{ 2, 5, 4, 2 }
    local state = interop.to_torch(m)
    -- PyTorch's (out, C*H*W) against klua's (H*W*C, out): the same numbers in another order
    assert.is_true(max_abs_diff(state["d.weight"], ops.transpose(m.layers[3].kernel, { 2, 1 })) > 0)
    local plain = interop.from_torch(convnet(), state, { mapping = { c = "c", d = { "d", flatten = false } } })
    assert.is_true(max_abs_diff(plain(x), m(x)) > 1e-3)
    local given = interop.from_torch(convnet(), state, { mapping = { "c", { "d", flatten = { 3, 4, 3 } } } })
    assert.are.equal(0, max_abs_diff(given(x), m(x)))
    assert.matches("flatten must be PyTorch's %(C, H, W...%) shape of the flattened map, or false%. Received: true",
      err_of(interop.from_torch, convnet(), state, { mapping = { "c", { "d", flatten = true } } }))
  end)
end)

describe("klua.interop's errors", function()
  local function mlp_state()
    return { ["fc.weight"] = klua.random.normal{ 3, 4 }, ["fc.bias"] = klua.zeros{ 3 } }
  end
  local function dense(units, kw)
    local l = L.Dense{ units = units, name = kw and kw.name, use_bias = not (kw and kw.no_bias) }
    l(klua.ones{ 1, 4 })
    return l
  end

  it("name the tensor and both shapes when a tensor does not fit", function()
    local l = dense(5, { name = "proj" })
    local e = err_of(interop.from_torch, l, mlp_state(), { mapping = { proj = "fc" } })
    assert.matches("from_torch: tensor 'fc.weight' has shape %(3,4%), but Dense 'proj' expects %(5,4%) for its kernel", e)
  end)

  it("name a missing tensor and what it was for", function()
    local state = mlp_state()
    state["fc.bias"] = nil
    local e = err_of(interop.from_torch, dense(3, { name = "proj2" }), state, { mapping = { "fc" } })
    assert.matches("Dense 'proj2' needs tensor 'fc%.bias' %(3,%) for its bias, which the state does not have", e)
  end)

  it("refuse tensors no layer takes unless strict = false, and leave the weights as they were on any error", function()
    local l = dense(3, { name = "proj3", no_bias = true })
    local before = l.kernel:clone()
    local e = err_of(interop.from_torch, l, mlp_state(), { mapping = { "fc" } })
    assert.matches("1 tensor of the state fit no layer: 'fc%.bias' %(3,%) %(strict = false ignores them%)", e)
    assert.are.equal(0, max_abs_diff(l.kernel, before))
    local state = mlp_state()
    interop.from_torch(l, state, { mapping = { "fc" }, strict = false })
    assert.are.equal(0, max_abs_diff(l.kernel, ops.transpose(state["fc.weight"], { 2, 1 })))
  end)

  it("say that an unbuilt model must be built first", function()
    local m = klua.Sequential{ L.Dense{ units = 3, name = "unbuilt" } }
    assert.matches("from_torch: Dense 'unbuilt' is not built yet", err_of(interop.from_torch, m, mlp_state()))
  end)

  it("suggest a mapping when pairing by order does not fit", function()
    local m = klua.Sequential{ klua.Input{ shape = { 4 } }, L.Dense{ units = 3 }, L.Dense{ units = 2 } }
    assert.matches("the model has 2 layers with weights %(.*%) but the state has 1 modules %(fc%); give mapping",
      err_of(interop.from_torch, m, mlp_state()))
  end)

  it("name layers that have weights but no PyTorch counterpart", function()
    local m = klua.Sequential{ klua.Input{ shape = { 6, 4 } }, L.SeparableConv1D{ filters = 2, kernel_size = 3, name = "sep" } }
    assert.matches("SeparableConv1D 'sep' has weights but no PyTorch counterpart here %(klua%.interop converts .*Dense",
      err_of(interop.to_torch, m))
  end)

  it("refuse a GRU with reset_after = false, which PyTorch's GRU is not", function()
    local g = L.GRU{ units = 2, reset_after = false, name = "g0" }
    g(klua.ones{ 1, 3, 4 })
    assert.matches("GRU 'g0': PyTorch's GRU is Keras's reset_after=true form", err_of(interop.to_torch, g))
  end)

  it("name a mapping entry that names no layer, and a bad options table", function()
    assert.matches("mapping names layer 'nope', which is not among the model's layers with weights %('p4'%)",
      err_of(interop.from_torch, dense(3, { name = "p4" }), mlp_state(), { mapping = { nope = "fc" } }))
    assert.matches("from_torch: expected the state as a table {name = tensor}", err_of(interop.from_torch, dense(3), "x"))
    assert.matches("to_torch: the options are a table", err_of(interop.to_torch, dense(3), "fc"))
  end)
end)

describe("Variable paths", function()
  -- Keras 3 (keras/src/models/variable_mapping_test.py, test_basics; layers/layer_test.py):
  -- a layer called outside any other gives "<layer name>/<weight name>".
  it("are '<layer name>/<weight name>' for a layer of a Functional model, as Keras 3's", function()
    local x = klua.Input{ shape = { 3 } }
    local y = L.Dense{ units = 2, name = "first_dense" }(x)
    local model = klua.Model{ inputs = x, outputs = y }
    assert.are.equal("first_dense/kernel", model.weights[1].path)
    assert.are.equal("first_dense/bias", model.weights[2].path)
    assert.are.equal("kernel", model.weights[1].name)
  end)

  it("name MultiHeadAttention's projections as Keras 3's EinsumDense sublayers do", function()
    local mha = L.MultiHeadAttention{ num_heads = 2, key_dim = 2, name = "multi_head_attention" }
    mha(klua.ones{ 1, 2, 3 }, klua.ones{ 1, 2, 3 })
    local paths = {}
    for i, v in ipairs(mha.weights) do paths[i] = v.path end
    assert.are.same({ "multi_head_attention/query/kernel", "multi_head_attention/query/bias",
      "multi_head_attention/key/kernel", "multi_head_attention/key/bias", "multi_head_attention/value/kernel",
      "multi_head_attention/value/bias", "multi_head_attention/attention_output/kernel",
      "multi_head_attention/attention_output/bias" }, paths)
  end)
end)
