-- attention_spec.lua — MultiHeadAttention's fused attention op (src/ops/attention.c,
-- nn.attention) against the path composed from batched matmuls and softmax that the
-- layer keeps for dropout while training: the same outputs, attention scores and
-- gradients for masks of every kind; Keras's mask behaviour; threads; errors.
local klua = require("klua")
local ops, nn = klua.ops, require("klua.nn")
local L = klua.layers
local helpers = require("helpers")
local err_of, max_abs_diff = helpers.err_of, helpers.max_abs_diff

local gen = klua.random.Generator(16)
local function normal(shape) return klua.random.normal(shape, { seed = gen }) end

-- |a - b| within tol of b's scale, elementwise over tensors of one shape.
local function close(a, b, tol, what)
  assert.are.same(b:shape(), a:shape(), what)
  local scale = 1 + ops.max(ops.abs(b)):item()
  local d = max_abs_diff(a, b)
  assert(d <= (tol or 1e-5) * scale, ("%s: differs by %.3g (scale %.3g)"):format(what, d, scale))
end

-- The output, the attention scores and the gradients of sum(out * r1) + sum(scores * r2)
-- with respect to the inputs and every weight; r2 = nil leaves the scores out of the loss,
-- scores = false leaves them out of the call (the fused path then returns the context alone).
local function run(mha, inputs, kw, r1, r2, scores)
  local tape = klua.GradientTape()
  tape:start()
  for _, x in ipairs(inputs) do tape:watch(x) end
  local args = { unpack(inputs) }
  kw.return_attention_scores = scores ~= false or nil
  args[#args + 1] = kw
  local y, s = mha(unpack(args))
  local loss = ops.sum(y * r1)
  if r2 then loss = loss + ops.sum(s * r2) end
  tape:stop()
  local sources = { unpack(inputs) }
  for _, w in ipairs(mha.trainable_weights) do sources[#sources + 1] = w end
  local g = tape:gradient(loss, sources)
  local grads = {}
  for i = 1, #sources do grads[i] = g[i] end
  return y, s, grads
end

local function same_grads(ga, gb, what)
  assert.are.equal(#gb, #ga)
  for i = 1, #gb do
    assert(ga[i] ~= nil and gb[i] ~= nil, what .. " " .. i .. " is missing")
    close(ga[i], gb[i], 1e-5, what .. " " .. i)
  end
end

-- Runs the layer on both paths and compares everything, with the scores
-- returned and without (the fused op's context-only form).
local function same_on_both_paths(mha, inputs, kw, with_scores)
  local kw2, kw3, kw4 = {}, {}, {}
  for k, v in pairs(kw) do kw2[k], kw3[k], kw4[k] = v, v, v end
  local y = mha(unpack(inputs))   -- builds
  local r1 = normal(y:shape())
  local _, s = mha(inputs[1], inputs[2], inputs[3], { return_attention_scores = true })
  local r2 = with_scores and normal(s:shape()) or nil
  mha._composed = nil
  local yf, sf, gf = run(mha, inputs, kw, r1, r2)
  mha._composed = true
  local yc, sc, gc = run(mha, inputs, kw2, r1, r2)
  mha._composed = nil
  close(yf, yc, 1e-5, "output")
  close(sf, sc, 1e-5, "attention scores")
  same_grads(gf, gc, "gradient")
  local yo, so, go = run(mha, inputs, kw3, r1, nil, false)
  mha._composed = true
  local _, _, gco = run(mha, inputs, kw4, r1, nil, false)
  mha._composed = nil
  assert.is_nil(so)
  close(yo, yc, 1e-5, "output without the scores")
  same_grads(go, gco, "gradient without the scores")
  return yf, sf
end

describe("MultiHeadAttention's fused attention", function()
  it("gives the composed path's outputs, scores and gradients for cross-attention without a mask", function()
    -- Tq ~= Tv, value_dim ~= key_dim, an output_shape of its own, and a key of its own
    local mha = L.MultiHeadAttention(3, 4, { value_dim = 5, output_shape = 7 })
    same_on_both_paths(mha, { normal({ 3, 5, 6 }), normal({ 3, 7, 4 }), normal({ 3, 7, 2 }) }, {}, true)
  end)

  it("gives the same with an attention mask that has a fully masked row (uniform weights there, as Keras)", function()
    local mha = L.MultiHeadAttention(2, 3, { value_dim = 2 })
    local mask = ops.cast(ops.greater(normal({ 2, 4, 6 }), -0.3))
    mask = ops.concatenate({ ops.slice_axis(mask, 2, 1, 3), klua.zeros({ 2, 1, 6 }) }, 2)   -- query 4 sees nothing
    local _, s = same_on_both_paths(mha, { normal({ 2, 4, 5 }), normal({ 2, 6, 3 }) }, { attention_mask = mask }, true)
    close(ops.slice_axis(s, 3, 4, 4), klua.full({ 2, 2, 1, 6 }, 1 / 6), 1e-6, "the fully masked row")
    local rows = ops.slice_axis(s * (1 - ops.expand_dims(mask, 2)), 3, 1, 3)
    assert.are.equal(0, ops.max(rows):item())   -- elsewhere masked keys get exactly 0
  end)

  it("gives the same for self-attention with a causal mask, and with masks from the inputs", function()
    local x = normal({ 2, 6, 8 })
    same_on_both_paths(L.MultiHeadAttention(4, 2), { x }, { use_causal_mask = true }, true)
    local qmask = klua.tensor({ { 1, 1, 1, 1, 0, 0 }, { 1, 1, 1, 1, 1, 1 } })
    local vmask = klua.tensor({ { 1, 1, 1, 0, 0, 0 }, { 1, 0, 1, 1, 1, 0 } })
    same_on_both_paths(L.MultiHeadAttention(2, 3, { use_bias = false }), { x, normal({ 2, 6, 3 }) },
      { query_mask = qmask, value_mask = vmask }, false)
  end)

  it("gives the same with a mask per head", function()
    local mha = L.MultiHeadAttention(2, 3)
    local mask = ops.cast(ops.greater(normal({ 2, 2, 3, 5 }), -0.5))
    same_on_both_paths(mha, { normal({ 2, 3, 4 }), normal({ 2, 5, 4 }) }, { attention_mask = mask }, false)
  end)

  -- Keras: multi_head_attention_test.py, test_masking (causal and not causal):
  -- masks from Embedding(mask_zero) give the output of the equivalent attention_mask.
  for _, causal in ipairs { true, false } do
    it("takes the query and value masks into account as Keras's test_masking does" .. (causal and " (causal)" or ""), function()
      local mha = L.MultiHeadAttention(2, 2)
      local q = L.Embedding(4, 8, { mask_zero = true })(klua.tensor({ { 1, 2, 3, 0, 0 }, { 3, 3, 1, 1, 2 }, { 1, 0, 0, 0, 0 } }))
      local v = L.Embedding(6, 8, { mask_zero = true })(klua.tensor({ { 5, 4, 0 }, { 3, 0, 0 }, { 2, 1, 1 } }))
      local auto = mha(q, v, { use_causal_mask = causal })
      local mask = klua.tensor({
        { { 1, 1, 0 }, { 1, 1, 0 }, { 1, 1, 0 }, { 0, 0, 0 }, { 0, 0, 0 } },
        { { 1, 0, 0 }, { 1, 0, 0 }, { 1, 0, 0 }, { 1, 0, 0 }, { 1, 0, 0 } },
        { { 1, 1, 1 }, { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 } } })
      if causal then mask = mask * klua.tensor({ { 1, 0, 0 }, { 1, 1, 0 }, { 1, 1, 1 }, { 1, 1, 1 }, { 1, 1, 1 } }) end
      L.Layer.set_mask(q, nil)
      L.Layer.set_mask(v, nil)
      close(auto, mha(q, v, { attention_mask = mask }), 1e-6, "output")
    end)
  end

  -- Keras: multi_head_attention_test.py, test_masking_with_different_shapes:
  -- a (5,5) mask, the same tiled to (2,5,5) and to (2,2,5,5) per head give one output.
  it("broadcasts a (T,S), (B,T,S) or (B,H,T,S) mask as Keras's test_masking_with_different_shapes", function()
    local x = klua.random.uniform({ 2, 5, 8 }, { seed = gen })
    local mha = L.MultiHeadAttention(2, 4)
    local tril = ops.cast(ops.greater_equal(ops.reshape(klua.arange(5), { 5, 1 }), ops.reshape(klua.arange(5), { 1, 5 })))
    local y1 = mha(x, x, { attention_mask = tril })
    local y2 = mha(x, x, { attention_mask = ops.broadcast_to(tril, { 2, 5, 5 }) })
    local y3 = mha(x, x, { attention_mask = ops.broadcast_to(tril, { 2, 2, 5, 5 }) })
    close(y2, y1, 1e-6, "(B,T,S)")
    close(y3, y1, 1e-6, "(B,H,T,S)")
    close(y1, mha(x, x, { use_causal_mask = true }), 1e-6, "causal")
  end)

  it("gives the same values and gradients on one thread and on two", function()
    -- large enough that threads take the (batch, head) pairs
    local mha = L.MultiHeadAttention(4, 16)
    local q, v = normal({ 8, 16, 32 }), normal({ 8, 24, 32 })
    local mask = ops.cast(ops.greater(normal({ 8, 16, 24 }), -1))
    mha(q, v)
    local r1 = normal({ 8, 16, 32 })
    local setting = klua.set_num_threads(1)   -- "auto" or the count the user fixed, restored below
    local y1, s1, g1 = run(mha, { q, v }, { attention_mask = mask }, r1)
    klua.set_num_threads(2)
    local y2, s2, g2 = run(mha, { q, v }, { attention_mask = mask }, r1)
    klua.set_num_threads(setting)
    close(y2, y1, 1e-6, "output")
    close(s2, s1, 1e-6, "scores")
    for i = 1, #g1 do close(g2[i], g1[i], 1e-5, "gradient " .. i) end
  end)

  it("applies dropout to the attention weights only while training (the composed path)", function()
    local mha = L.MultiHeadAttention(2, 4, { dropout = 0.5, seed = 3 })
    local q, v = normal({ 2, 5, 6 }), normal({ 2, 7, 6 })
    local infer = mha(q, v)
    close(mha(q, v, { training = false }), infer, 0, "inference")
    assert.is_true(max_abs_diff(mha(q, v, { training = true }), infer) > 1e-3)
  end)
end)

-- The attention composed from ops: q (B,Tq,H,K), k (B,Tv,H,K), v (B,Tv,H,V), a mask
-- (B,1|H,Tq,Tv) or nil -> the context (B,Tq,H,V).
local function composed(q, k, v, mask, scale)
  local tr = { 1, 3, 2, 4 }
  local s = ops.matmul(ops.transpose(q, tr) * scale, ops.transpose(k, tr), { transpose_b = true })
  if mask ~= nil then s = s + (1 - mask) * -1e9 end
  return ops.transpose(ops.matmul(ops.softmax(s, -1), ops.transpose(v, tr)), tr)
end

-- fn(q, k, v)'s value and the gradients of sum(fn(q, k, v) * r).
local function value_and_grads(fn, q, k, v, r)
  local tape = klua.GradientTape()
  tape:start()
  for _, x in ipairs { q, k, v } do tape:watch(x) end
  local y = fn(q, k, v)
  local loss = ops.sum(y * r)
  tape:stop()
  return y, tape:gradient(loss, { q, k, v })
end

describe("nn.attention_context", function()
  local q, k, v = normal({ 2, 3, 4, 5 }), normal({ 2, 6, 4, 5 }), normal({ 2, 6, 4, 7 })
  local r = normal({ 2, 3, 4, 7 })
  local mask = ops.cast(ops.greater(normal({ 2, 3, 6 }), -0.3))
  local per_head = ops.cast(ops.greater(normal({ 2, 4, 3, 6 }), -0.3))
  for _, case in ipairs {
    { "without a mask" },
    { "with a (B,Tq,Tv) mask", mask, ops.reshape(mask, { 2, 1, 3, 6 }) },
    { "with a mask per head", per_head, per_head },
  } do
    it("gives the composed path's context and gradients " .. case[1], function()
      local yf, gf = value_and_grads(function(a, b, c) return nn.attention_context(a, b, c, case[2], 0.6) end, q, k, v, r)
      local yc, gc = value_and_grads(function(a, b, c) return composed(a, b, c, case[3], 0.6) end, q, k, v, r)
      close(yf, yc, 1e-5, "context")
      same_grads({ gf[1], gf[2], gf[3] }, { gc[1], gc[2], gc[3] }, "gradient")
    end)
  end

  it("returns exactly nn.attention's context, and no probabilities", function()
    local ctx, p = nn.attention_context(q, k, v, mask)
    assert.is_nil(p)
    assert.are.same({ 2, 3, 4, 7 }, ctx:shape())
    assert.are.equal(0, max_abs_diff(ctx, (nn.attention(q, k, v, mask))))
  end)
end)

describe("nn.attention", function()
  it("returns the context (B,Tq,H,V) and the probabilities (B,H,Tq,Tv); an empty key sequence gives zeros", function()
    local ctx, p = nn.attention(normal({ 2, 3, 4, 5 }), normal({ 2, 6, 4, 5 }), normal({ 2, 6, 4, 7 }))
    assert.are.same({ 2, 3, 4, 7 }, ctx:shape())
    assert.are.same({ 2, 4, 3, 6 }, p:shape())
    close(ops.sum(p, -1), klua.ones({ 2, 4, 3 }), 1e-6, "rows sum to 1")
    local empty = nn.attention(normal({ 2, 3, 1, 2 }), klua.zeros({ 2, 0, 1, 2 }), klua.zeros({ 2, 0, 1, 4 }))
    assert.are.same({ 2, 3, 1, 4 }, empty:shape())
    assert.are.equal(0, ops.max(ops.abs(empty)):item())
  end)

  it("lets a NaN through, as the composed softmax does", function()
    local k = normal({ 1, 4, 1, 3 })
    k:set(1, 3, 1, 2, 0 / 0)   -- one key: one NaN logit in every row
    local ctx, p = nn.attention(normal({ 1, 2, 1, 3 }), k, normal({ 1, 4, 1, 2 }))
    for i = 1, 2 do
      assert.is_true(ctx:get(1, i, 1, 1) ~= ctx:get(1, i, 1, 1), "context row " .. i)
      assert.is_true(p:get(1, 1, i, 1) ~= p:get(1, 1, i, 1), "probabilities row " .. i)
    end
  end)

  it("names the op and the shapes when inputs do not fit", function()
    local q, k, v = normal({ 2, 3, 4, 5 }), normal({ 2, 6, 4, 5 }), normal({ 2, 6, 4, 7 })
    assert.matches("attention: expected query %(batch,Tq,heads,key_dim%).*got %(2,3,20%), %(2,6,4,5%) and %(2,6,4,7%)",
      err_of(nn.attention, ops.reshape(q, { 2, 3, 20 }), k, v))
    assert.matches("attention: query %(2,3,4,5%), key %(2,6,4,5%) and value %(2,5,4,7%) do not match",
      err_of(nn.attention, q, k, normal({ 2, 5, 4, 7 })))
    assert.matches("attention: query %(2,3,4,6%), key %(2,6,4,5%)", err_of(nn.attention, normal({ 2, 3, 4, 6 }), k, v))
    assert.matches("attention: mask of shape %(2,6,3%) cannot be broadcast to %(batch,Tq,Tv%) = %(2,3,6%)",
      err_of(nn.attention, q, k, v, klua.ones({ 2, 6, 3 })))
    assert.matches("mask of shape %(2,3,3,6%) cannot be broadcast.*%(batch,heads,Tq,Tv%) = %(2,4,3,6%)",
      err_of(nn.attention, q, k, v, klua.ones({ 2, 3, 3, 6 })))
    local mha = L.MultiHeadAttention(2, 2)
    assert.matches("attention_spec.lua:%d+: MultiHeadAttention 'multi_head_attention_%d+': attention: mask of shape %(3,3%)",
      err_of(function()
        local y = mha(normal({ 1, 2, 4 }), normal({ 1, 3, 4 }), { attention_mask = klua.ones({ 3, 3 }) })
        return y
      end))
  end)
end)
