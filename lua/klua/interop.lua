-- interop.lua — klua.interop: a model's weights to and from PyTorch module
-- state, the {name = tensor} table that `torch.save(model.state_dict())` or a
-- safetensors file holds (klua.saving.load_safetensors reads the latter).
--
--   local state = klua.saving.load_safetensors("model.safetensors")
--   klua.interop.from_torch(model, state, {mapping = {dense = "fc1", dense_1 = "fc2"}})
--   klua.saving.save_safetensors("back.safetensors", klua.interop.to_torch(model, {mapping = ...}))
--
-- What differs between the two, and is converted here (exactly: transposes,
-- reshapes, slices and concatenations; the one sum is noted):
-- - Linear weight (out, in) vs Dense kernel (in, out). A Dense that reads a
--   Flatten of a convolution's map gets its rows reordered from PyTorch's
--   NCHW flatten (C, H, W) to klua's NHWC one (H, W, C).
-- - Conv weight (out, in/groups, k...) vs Keras's (k..., in/groups, out);
--   ConvTranspose (in, out, k...) vs (k..., out, in); a depthwise Conv
--   (groups = in, out = in * m) weight (in*m, 1, k...) vs (k..., in, m).
-- - BatchNorm weight, bias, running_mean, running_var vs gamma, beta,
--   moving_mean, moving_variance (num_batches_tracked has no counterpart: it
--   is ignored when read and not written). LayerNorm/GroupNorm weight, bias
--   vs gamma, beta; RMSNorm weight vs scale; Embedding weight vs embeddings.
-- - LSTM/GRU/RNN weight_ih_l<k> (gates*units, in) and weight_hh_l<k> vs
--   kernel (in, gates*units) and recurrent_kernel: transposed, and GRU's gates
--   reordered (PyTorch r, z, n; Keras z, r, h; LSTM's i, f, g, o is Keras's
--   i, f, c, o). LSTM and RNN add the two biases: bias = bias_ih + bias_hh
--   (to_torch writes the sum as bias_ih and zeros as bias_hh). GRU keeps both,
--   as Keras's reset_after form (bias (2, 3*units)), which is PyTorch's GRU.
--   `_reverse` tensors belong to the backward layer of a Bidirectional.
-- - MultiheadAttention in_proj_weight (3E, E) (or q/k/v_proj_weight),
--   in_proj_bias, out_proj vs MultiHeadAttention's per-head kernels
--   query/key/value (dim, heads, head_dim) and output (heads, head_dim, E).
-- Hyper-parameters are not in a state: give the klua layers PyTorch's
-- (BatchNormalization{epsilon = 1e-5, momentum = 0.9},
-- LayerNormalization{epsilon = 1e-5}).
-- Nothing here touches the C library: it composes klua.ops.
local core = require("klua.core")
local ops = require("klua.ops")
local tensor = require("klua.tensor")
local Layer = require("klua.layer")
local no_grad = require("klua.no_grad")

local raise, shape_str, is_tensor = core.raise, core.shape_str, core.is_tensor

local M = {}

--------------------------------------------------------------------------------
-- Layer kinds

-- The first class name in layer's ancestry that is in `set` (a subclass of
-- Dense converts as a Dense).
local function kind_of(layer, set)
  local cls = getmetatable(layer)
  while type(cls) == "table" do
    local name = rawget(cls, "__name")
    if name and set[name] then return name end
    cls = rawget(cls, "super")
  end
  return nil
end

local function label(layer) return ("%s '%s'"):format(Layer.class_name(layer), tostring(layer.name)) end

local function dims(v) return v:shape() end

-- A permutation's inverse.
local function inverse(p)
  local q = {}
  for i, a in ipairs(p) do q[a] = i end
  return q
end

-- {from, from+1, ..., to}
local function range(from, to)
  local out = {}
  for i = from, to do out[#out + 1] = i end
  return out
end

local function cat(...)
  local out = {}
  for _, list in ipairs { ... } do
    for _, x in ipairs(list) do out[#out + 1] = x end
  end
  return out
end

-- rows a..b (1-based, inclusive) of axis 1
local function rows(x, a, b) return ops.slice_axis(x, 1, a, b) end

-- GRU: PyTorch's gate blocks r, z, n along axis 1 <-> Keras's z, r, h (the
-- same swap both ways).
local function swap_rz(x, u)
  return ops.concatenate({ rows(x, u + 1, 2 * u), rows(x, 1, u), rows(x, 2 * u + 1, 3 * u) }, 1)
end

--------------------------------------------------------------------------------
-- Conversions. Each kind lists, for a built layer, its conversions:
--   { torch = {suffix, ...}, shapes = {torch shape, ...}, vars = {Variable, ...},
--     what = "its kernel", load = function(torch tensors) -> klua values,
--     save = function() -> torch tensors }
-- A suffix is the tensor's name under the module's prefix ("weight").

local function one(suffix, var, what, load, save, tshape)
  return { torch = { suffix }, shapes = { tshape or dims(var) }, vars = { var }, what = what,
           load = function(t) return { load and load(t[1]) or t[1] } end,
           save = function() return { save and save() or var } end }
end

local T2 = { 2, 1 }

local kinds = {}

-- Dense; opt.flatten = {C, s1, ..., sk}: the kernel's rows come from a
-- PyTorch flatten of a (C, s1..sk) map, klua's from (s1..sk, C).
function kinds.Dense(layer, opt)
  local k = layer.kernel
  local din, dout = unpack(dims(k))
  local load, save = function(w) return ops.transpose(w, T2) end, function() return ops.transpose(k, T2) end
  local f = opt.flatten
  if f then
    local n = 1
    for _, d in ipairs(f) do n = n * d end
    if n ~= din then
      raise(("%s: flatten = %s (PyTorch's (C, ...) map) has %d values, but the kernel reads %d inputs")
        :format(label(layer), shape_str(f), n, din))
    end
    local r = #f
    local to_klua = cat({ 1 }, range(3, r + 1), { 2 })      -- (out, C, s...) -> (out, s..., C)
    local nchw = cat({ dout }, f)
    local nhwc = cat({ dout }, { unpack(f, 2) }, { f[1] })
    load = function(w)
      return ops.transpose(ops.reshape(ops.transpose(ops.reshape(w, nchw), to_klua), { dout, din }), T2)
    end
    save = function()
      return ops.reshape(ops.transpose(ops.reshape(ops.transpose(k, T2), nhwc), inverse(to_klua)), { dout, din })
    end
  end
  local list = { one("weight", k, "its kernel (in, out) as Linear's weight (out, in)", load, save, { dout, din }) }
  if layer.bias then list[2] = one("bias", layer.bias, "its bias") end
  return list
end

-- Convolutions of any rank: weight (out, in/groups, k...) <-> (k..., in/groups, out);
-- transposed ones (in, out, k...) <-> (k..., out, in): the same permutation.
local function conv(layer, what)
  local k = layer.kernel
  local s = dims(k)
  local n = #s - 2
  local to_klua = cat(range(3, n + 2), { 2, 1 })
  local tshape = cat({ s[n + 2], s[n + 1] }, { unpack(s, 1, n) })
  local list = { one("weight", k, what, function(w) return ops.transpose(w, to_klua) end,
    function() return ops.transpose(k, inverse(to_klua)) end, tshape) }
  if layer.bias then list[2] = one("bias", layer.bias, "its bias") end
  return list
end
for _, n in ipairs { "Conv1D", "Conv2D", "Conv3D" } do
  kinds[n] = function(layer) return conv(layer, "its kernel (k..., in/groups, out) as Conv's weight (out, in/groups, k...)") end
end
for _, n in ipairs { "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose" } do
  kinds[n] = function(layer) return conv(layer, "its kernel (k..., out, in) as ConvTranspose's weight (in, out, k...)") end
end

-- Depthwise: a Conv with groups = in and out = in * m, weight (in*m, 1, k...) <-> (k..., in, m).
local function depthwise(layer)
  local k = layer.kernel
  local s = dims(k)
  local n = #s - 2
  local c, m = s[n + 1], s[n + 2]
  local spatial = { unpack(s, 1, n) }
  local to_klua = cat(range(3, n + 2), { 1, 2 })
  local load = function(w) return ops.transpose(ops.reshape(w, cat({ c, m }, spatial)), to_klua) end
  local save = function() return ops.reshape(ops.transpose(k, inverse(to_klua)), cat({ c * m, 1 }, spatial)) end
  local list = { one("weight", k, "its kernel (k..., in, multiplier) as a depthwise Conv's weight (in*multiplier, 1, k...)",
    load, save, cat({ c * m, 1 }, spatial)) }
  if layer.bias then list[2] = one("bias", layer.bias, "its bias") end
  return list
end
kinds.DepthwiseConv1D, kinds.DepthwiseConv2D = depthwise, depthwise

function kinds.BatchNormalization(layer)
  local list = {}
  if layer.gamma then list[#list + 1] = one("weight", layer.gamma, "its gamma") end
  if layer.beta then list[#list + 1] = one("bias", layer.beta, "its beta") end
  list[#list + 1] = one("running_mean", layer.moving_mean, "its moving_mean")
  list[#list + 1] = one("running_var", layer.moving_variance, "its moving_variance")
  list.ignore = { "num_batches_tracked" }
  return list
end

-- PyTorch's normalized_shape may be written as one axis or several: the
-- values are taken in order, reshaped to the layer's own.
local function affine(layer, scale, shift)
  local list = {}
  for _, p in ipairs { { "weight", scale }, { "bias", shift } } do
    local v = layer[p[2]]
    if v then
      local e = one(p[1], v, "its " .. p[2], function(t) return ops.reshape(t, dims(v)) end)
      e.count_only = true
      list[#list + 1] = e
    end
  end
  return list
end
function kinds.LayerNormalization(layer) return affine(layer, "gamma", "beta") end
function kinds.GroupNormalization(layer) return affine(layer, "gamma", "beta") end
function kinds.RMSNormalization(layer) return affine(layer, "scale", nil) end

function kinds.Embedding(layer) return { one("weight", layer.embeddings, "its embeddings") } end

-- Recurrent layers: opt.layer (PyTorch's l<k>) and opt.reverse (the
-- backward direction of a bidirectional module) pick the tensors.
local function rnn(layer, opt, gates)
  local sfx = ("_l%d%s"):format(opt.layer or 0, opt.reverse and "_reverse" or "")
  local k, r, b = layer.kernel, layer.recurrent_kernel, layer.bias
  local d, u = dims(k)[1], layer.units
  local g = gates == 3 and function(x) return swap_rz(x, u) end or function(x) return x end
  local list = {
    one("weight_ih" .. sfx, k, "its kernel (in, gates*units) as weight_ih (gates*units, in)",
      function(w) return ops.transpose(g(w), T2) end, function() return g(ops.transpose(k, T2)) end, { gates * u, d }),
    one("weight_hh" .. sfx, r, "its recurrent_kernel (units, gates*units) as weight_hh (gates*units, units)",
      function(w) return ops.transpose(g(w), T2) end, function() return g(ops.transpose(r, T2)) end, { gates * u, u }),
  }
  if b and gates == 3 then
    -- Keras's reset_after GRU: bias (2, 3*units) = input bias, recurrent bias
    list[3] = { torch = { "bias_ih" .. sfx, "bias_hh" .. sfx }, shapes = { { 3 * u }, { 3 * u } }, vars = { b },
      what = "its bias (2, 3*units) as bias_ih and bias_hh",
      load = function(t) return { ops.stack({ g(t[1]), g(t[2]) }, 1) } end,
      save = function() return { g(ops.squeeze(rows(b, 1, 1), 1)), g(ops.squeeze(rows(b, 2, 2), 1)) } end }
  elseif b then
    -- NOTE: one bias in Keras, two in PyTorch: their sum is what counts.
    list[3] = { torch = { "bias_ih" .. sfx, "bias_hh" .. sfx }, shapes = { dims(b), dims(b) }, vars = { b },
      what = "its bias as bias_ih + bias_hh",
      load = function(t) return { t[1] + t[2] } end,
      save = function() return { b, tensor.zeros(dims(b)) } end }
  end
  return list
end
function kinds.LSTM(layer, opt) return rnn(layer, opt, 4) end
function kinds.SimpleRNN(layer, opt) return rnn(layer, opt, 1) end
function kinds.GRU(layer, opt)
  if not layer.reset_after then
    raise(("%s: PyTorch's GRU is Keras's reset_after=true form; this layer has reset_after=false"):format(label(layer)))
  end
  return rnn(layer, opt, 3)
end

function kinds.Bidirectional(layer, opt)
  local inner = { LSTM = true, GRU = true, SimpleRNN = true }
  local f, b = layer.forward_layer, layer.backward_layer
  local kf, kb = kind_of(f, inner), kind_of(b, inner)
  if not kf or kf ~= kb then
    raise(("%s: only a Bidirectional LSTM, GRU or SimpleRNN maps to a bidirectional PyTorch module; this one holds %s and %s")
      :format(label(layer), Layer.class_name(f), Layer.class_name(b)))
  end
  return cat(kinds[kf](f, { layer = opt.layer }), kinds[kf](b, { layer = opt.layer, reverse = true }))
end

-- MultiHeadAttention <-> nn.MultiheadAttention: embed_dim E = heads * head_dim,
-- the query's dim E and the output's E; keys and values of other dims use
-- q/k/v_proj_weight (PyTorch's kdim, vdim), equal dims in_proj_weight.
function kinds.MultiHeadAttention(layer, opt)
  local H, K, V = layer.num_heads, layer.key_dim, layer.value_dim
  local qk, kk, vk, ok = layer.query_kernel, layer.key_kernel, layer.value_kernel, layer.output_kernel
  local dq, dk, dv, E = dims(qk)[1], dims(kk)[1], dims(vk)[1], dims(ok)[3]
  if K ~= V or H * K ~= E or dq ~= E then
    raise(("%s: nn.MultiheadAttention needs key_dim = value_dim = embed_dim / num_heads and a query and output of "
      .. "embed_dim; this layer has num_heads=%d, key_dim=%d, value_dim=%d, query dim %d, output dim %d")
      :format(label(layer), H, K, V, dq, E))
  end
  local function w_load(v, din) return function(w) return ops.reshape(ops.transpose(w, T2), { din, H, K }) end end
  local function w_save(v, din) return function() return ops.transpose(ops.reshape(v, { din, E }), T2) end end
  local list = {}
  if opt.packed then
    list[1] = { torch = { "in_proj_weight" }, shapes = { { 3 * E, E } }, vars = { qk, kk, vk },
      what = "its query, key and value kernels (dim, heads, head_dim) as in_proj_weight (3*embed_dim, embed_dim)",
      load = function(t)
        local w = t[1]
        return { w_load(qk, E)(rows(w, 1, E)), w_load(kk, E)(rows(w, E + 1, 2 * E)), w_load(vk, E)(rows(w, 2 * E + 1, 3 * E)) }
      end,
      save = function() return { ops.concatenate({ w_save(qk, E)(), w_save(kk, E)(), w_save(vk, E)() }, 1) } end }
  else
    for _, p in ipairs { { "q", qk, dq }, { "k", kk, dk }, { "v", vk, dv } } do
      list[#list + 1] = one(p[1] .. "_proj_weight", p[2], ("its %s kernel (dim, heads, head_dim) as %s_proj_weight (embed_dim, dim)")
        :format(({ q = "query", k = "key", v = "value" })[p[1]], p[1]), w_load(p[2], p[3]), w_save(p[2], p[3]), { E, p[3] })
    end
  end
  local qb, kb, vb = layer.query_bias, layer.key_bias, layer.value_bias
  if qb then
    list[#list + 1] = { torch = { "in_proj_bias" }, shapes = { { 3 * E } }, vars = { qb, kb, vb },
      what = "its query, key and value biases (heads, head_dim) as in_proj_bias (3*embed_dim)",
      load = function(t)
        local b = t[1]
        return { ops.reshape(rows(b, 1, E), { H, K }), ops.reshape(rows(b, E + 1, 2 * E), { H, K }),
                 ops.reshape(rows(b, 2 * E + 1, 3 * E), { H, K }) }
      end,
      save = function() return { ops.concatenate({ ops.reshape(qb, { E }), ops.reshape(kb, { E }), ops.reshape(vb, { E }) }, 1) } end }
  end
  list[#list + 1] = one("out_proj.weight", ok, "its output kernel (heads, head_dim, E) as out_proj.weight (E, embed_dim)",
    function(w) return ops.reshape(ops.transpose(w, T2), { H, V, E }) end,
    function() return ops.transpose(ops.reshape(ok, { H * V, E }), T2) end, { E, H * V })
  if layer.output_bias then list[#list + 1] = one("out_proj.bias", layer.output_bias, "its output bias") end
  list.refuse = { bias_k = "add_bias_kv", bias_v = "add_bias_kv" }
  return list
end

local KINDS = {}
for k in pairs(kinds) do KINDS[k] = true end
local RECURRENT = { LSTM = true, GRU = true, SimpleRNN = true, Bidirectional = true }

-- Layers the auto-detected flatten order passes through, and those that make
-- a channels-last feature map.
local TRANSPARENT = { Dropout = true, Activation = true, ReLU = true, LeakyReLU = true, ELU = true, PReLU = true,
  Softmax = true, Identity = true, GaussianNoise = true, GaussianDropout = true, AlphaDropout = true }
local function is_spatial(name)
  return name:find("Conv") or name:find("Pooling%dD$") or name:find("^UpSampling") or name:find("^ZeroPadding")
    or name:find("^Cropping") or name:find("^SpatialDropout")
end

--------------------------------------------------------------------------------
-- Walking the model

-- The layers with weights, in model order: {layer=, kind=, flatten=}. A
-- Bidirectional is one entry; containers (models, wrappers) are walked into.
local function units_of(model, who)
  if not Layer.is_layer(model) then raise(who .. ": expected a klua layer or model as the first argument") end
  local out, skip = {}, {}
  -- Walking in order, the previous layer's output shape when known (for a
  -- Flatten, which is not built), whether it is a channels-last feature map,
  -- and a Flatten's PyTorch-order shape (C, s...) waiting for its Dense.
  local shape, spatial, pending = nil, false, nil
  for _, l in ipairs(model:_flatten_layers(true)) do
    local leaf = #l:_sublayers() == 0
    local kind = kind_of(l, KINDS)
    if not skip[l] and not kind and #(rawget(l, "_own") or {}) > 0 then
      raise(("%s: %s has weights but no PyTorch counterpart here (klua.interop converts %s)")
        :format(who, label(l), M.supported()))
    end
    if not skip[l] and (leaf or kind) then
      local name = Layer.class_name(l)
      local cfg = l:get_build_config()
      local s_in = cfg and cfg.input_shape or shape
      if kind then
        if not rawget(l, "built") then
          raise(("%s: %s is not built yet: call the model on an input (or begin it with klua.Input) first")
            :format(who, label(l)))
        end
        if kind == "Bidirectional" then
          for _, sub in ipairs(l:_flatten_layers(false)) do skip[sub] = true end
        end
        out[#out + 1] = { layer = l, kind = kind, flatten = kind == "Dense" and pending or nil }
        pending = nil
        if kind ~= "BatchNormalization" then spatial = is_spatial(kind) and l.data_format ~= "channels_first" end
      elseif name == "Flatten" then
        pending = nil
        if s_in and #s_in >= 3 and spatial then
          pending = cat({ s_in[#s_in] }, { unpack(s_in, 2, #s_in - 1) })   -- (B, s..., C) -> PyTorch's (C, s...)
        end
        spatial = false
      elseif is_spatial(name) then
        spatial = l.data_format ~= "channels_first"
      elseif not TRANSPARENT[name] then
        spatial, pending = false, nil
      end
      shape = nil
      if s_in and spatial then   -- only a feature map's shape matters (for a Flatten)
        local ok, o = pcall(l.compute_output_shape, l, s_in)
        if ok and type(o) == "table" and type(o[1]) == "number" then shape = o end
      end
    end
  end
  return out
end

--- interop.supported(): the layer classes klua.interop converts, as a sorted, comma-separated string.
function M.supported()
  local names = {}
  for k in pairs(KINDS) do names[#names + 1] = k end
  table.sort(names)
  return table.concat(names, ", ")
end

-- Natural order: "layers.10" after "layers.9".
local function natural_less(a, b)
  local function parts(s)
    local out = {}
    for digits, other in s:gmatch("(%d*)(%D*)") do
      if digits ~= "" then out[#out + 1] = tonumber(digits) end
      if other ~= "" then out[#out + 1] = other end
    end
    return out
  end
  local pa, pb = parts(a), parts(b)
  for i = 1, math.max(#pa, #pb) do
    local x, y = pa[i], pb[i]
    if x == nil then return true end
    if y == nil then return false end
    if x ~= y then
      if type(x) == type(y) then return x < y end
      return type(x) == "number"
    end
  end
  return false
end

local MHA_PARAMS = { in_proj_weight = true, in_proj_bias = true, q_proj_weight = true, k_proj_weight = true,
  v_proj_weight = true, bias_k = true, bias_v = true }

-- The modules of a PyTorch state, in natural order of their names:
-- {prefix=, layer=, bidirectional=} (one per layer of a recurrent module).
local function torch_units(state)
  local units, by_key, mha = {}, {}, {}
  local function add(prefix, layer)
    local key = prefix .. "\0" .. tostring(layer)
    local u = by_key[key]
    if not u then
      u = { prefix = prefix, layer = layer }
      by_key[key] = u
      units[#units + 1] = u
    end
    return u
  end
  for name in pairs(state) do
    local prefix, param = name:match("^(.*)%.([^.]*)$")
    if not prefix then prefix, param = "", name end
    if MHA_PARAMS[param] then mha[prefix] = true end
  end
  for name in pairs(state) do
    local prefix, param = name:match("^(.*)%.([^.]*)$")
    if not prefix then prefix, param = "", name end
    local l, rev = param:match("^weight_[ihr]h_l(%d+)(.*)$")
    if not l then l, rev = param:match("^bias_[ihr]h_l(%d+)(.*)$") end
    local parent = prefix == "out_proj" and "" or prefix:match("^(.*)%.out_proj$")
    if l then
      local u = add(prefix, tonumber(l))
      if rev == "_reverse" then u.bidirectional = true end
    elseif parent and mha[parent] then
      add(parent, nil)                     -- nn.MultiheadAttention's out_proj is part of it
    else
      add(prefix, nil)
    end
  end
  table.sort(units, function(a, b)
    if a.prefix ~= b.prefix then return natural_less(a.prefix, b.prefix) end
    return (a.layer or 0) < (b.layer or 0)
  end)
  return units
end

local function unit_str(u)
  local s = u.prefix == "" and "(top level)" or u.prefix
  if u.layer then s = s .. ("[layer %d%s]"):format(u.layer, u.bidirectional and ", bidirectional" or "") end
  return s
end

-- One mapping value: "prefix" or {"prefix", layer = k, flatten = {C, ...} | false}.
local function parse_entry(v, who, where)
  if type(v) == "string" then return { prefix = v } end
  if type(v) == "table" and type(v[1]) == "string" then
    if v.layer ~= nil and (type(v.layer) ~= "number" or v.layer < 0 or v.layer % 1 ~= 0) then
      raise(("%s: mapping %s: layer must be PyTorch's 0-based layer number. Received: layer=%s"):format(who, where, tostring(v.layer)))
    end
    local f = v.flatten
    local ok = f == nil or f == false or (type(f) == "table" and #f >= 2)
    for _, d in ipairs(type(f) == "table" and f or {}) do ok = ok and type(d) == "number" and d >= 1 and d % 1 == 0 end
    if not ok then
      raise(("%s: mapping %s: flatten must be PyTorch's (C, H, W...) shape of the flattened map, or false. Received: %s")
        :format(who, where, type(f) == "table" and shape_str(f) or tostring(f)))
    end
    return { prefix = v[1], layer = v.layer, flatten = f }
  end
  raise(("%s: mapping %s must be a PyTorch module name (\"fc1\") or {\"lstm\", layer = 1}. Received: %s")
    :format(who, where, tostring(v)))
end

-- Pairs each unit with its PyTorch module: {unit, entry} in model order.
local function pair(units, opts, who, state)
  local mapping = opts.mapping
  local pairs_out = {}
  if mapping == nil then
    if state == nil then
      -- to_torch: the klua layer names are the module names
      for _, u in ipairs(units) do pairs_out[#pairs_out + 1] = { u, { prefix = u.layer.name } } end
      return pairs_out, false
    end
    local tu = torch_units(state)
    if #tu ~= #units then
      local a, b = {}, {}
      for i, u in ipairs(units) do a[i] = label(u.layer) end
      for i, u in ipairs(tu) do b[i] = unit_str(u) end
      raise(("%s: the model has %d layers with weights (%s) but the state has %d modules (%s); "
        .. "give mapping = {layer name = module name, ...}"):format(who, #units, table.concat(a, ", "), #tu, table.concat(b, ", ")))
    end
    for i, u in ipairs(units) do pairs_out[i] = { u, { prefix = tu[i].prefix, layer = tu[i].layer } } end
    return pairs_out, true
  end
  if type(mapping) ~= "table" then raise(("%s: mapping must be a table. Received: %s"):format(who, type(mapping))) end
  if mapping[1] ~= nil then
    if #mapping ~= #units then
      local a = {}
      for i, u in ipairs(units) do a[i] = label(u.layer) end
      raise(("%s: mapping lists %d modules, but the model has %d layers with weights (%s)")
        :format(who, #mapping, #units, table.concat(a, ", ")))
    end
    for i, u in ipairs(units) do pairs_out[i] = { u, parse_entry(mapping[i], who, "entry " .. i) } end
    return pairs_out, false
  end
  local by_name = {}
  for _, u in ipairs(units) do by_name[u.layer.name] = u end
  for k in pairs(mapping) do
    if not by_name[k] then
      local names = {}
      for _, u in ipairs(units) do names[#names + 1] = "'" .. u.layer.name .. "'" end
      raise(("%s: mapping names layer '%s', which is not among the model's layers with weights (%s)")
        :format(who, tostring(k), table.concat(names, ", ")))
    end
  end
  for _, u in ipairs(units) do
    local v = mapping[u.layer.name]
    if v ~= nil then
      pairs_out[#pairs_out + 1] = { u, parse_entry(v, who, "'" .. u.layer.name .. "'") }
    elseif opts.strict ~= false then
      raise(("%s: %s is not in the mapping (strict = false leaves it as it is)"):format(who, label(u.layer)))
    end
  end
  return pairs_out, false
end

local function full_name(prefix, suffix) return prefix == "" and suffix or prefix .. "." .. suffix end

-- The conversions of one paired unit.
local function conversions(unit, entry, state)
  local opt = { layer = entry.layer, flatten = unit.flatten }
  if entry.flatten ~= nil then opt.flatten = entry.flatten or nil end
  if unit.kind == "MultiHeadAttention" then
    opt.packed = state == nil and unit.layer.key_kernel:shape()[1] == unit.layer.output_kernel:shape()[3]
      and unit.layer.value_kernel:shape()[1] == unit.layer.output_kernel:shape()[3]
    if state ~= nil then opt.packed = state[full_name(entry.prefix, "in_proj_weight")] ~= nil end
  end
  if RECURRENT[unit.kind] == nil and entry.layer ~= nil then
    raise(("%s: layer = %d in its mapping, but only recurrent layers have PyTorch layer numbers"):format(label(unit.layer), entry.layer))
  end
  return kinds[unit.kind](unit.layer, opt)
end

--------------------------------------------------------------------------------
-- Public functions

local function check_opts(opts, who)
  if opts ~= nil and type(opts) ~= "table" then
    raise(("%s: the options are a table {mapping =, strict =}. Received: %s"):format(who, type(opts)))
  end
  return opts or {}
end

--- interop.from_torch(model, state, {mapping=, strict=true}): copies a PyTorch state ({name = tensor}, as
-- klua.saving.load_safetensors returns it) into the built model's weights, converting layouts. Without a mapping
-- the model's layers with weights are paired in order with the state's modules in natural name order; mapping is
-- {layer name = "module", ...} or a list of module names in the model's order ({"lstm", layer = 1} for PyTorch's
-- second layer of a multi-layer LSTM/GRU/RNN; flatten = {C, H, W} or false overrides the Flatten detection for a
-- Dense). Every shape is checked before any weight changes; with strict, tensors no layer takes are an error.
-- Returns the model.
function M.from_torch(model, state, opts)
  local who = "from_torch"
  opts = check_opts(opts, who)
  if type(state) ~= "table" then raise(who .. ": expected the state as a table {name = tensor}. Received: " .. type(state)) end
  for k, v in pairs(state) do
    if type(k) ~= "string" or not is_tensor(v) then
      raise(("%s: expected the state as a table {name = tensor}; entry %s is a %s"):format(who, tostring(k), type(v)))
    end
  end
  local units = units_of(model, who)
  local paired, auto = pair(units, opts, who, state)
  local hint = auto and " (layers are paired with the state's modules in order; give mapping = {layer name = module name} to choose)" or ""
  local used, plan = {}, {}
  no_grad(function()
    for _, p in ipairs(paired) do
      local unit, entry = p[1], p[2]
      local list = conversions(unit, entry, state)
      for _, ig in ipairs(list.ignore or {}) do used[full_name(entry.prefix, ig)] = true end
      for param, feature in pairs(list.refuse or {}) do
        if state[full_name(entry.prefix, param)] then
          raise(("%s: tensor '%s': PyTorch's %s has no counterpart in klua's %s"):format(who, full_name(entry.prefix, param),
            feature, label(unit.layer)))
        end
      end
      for _, c in ipairs(list) do
        local ts = {}
        for i, suffix in ipairs(c.torch) do
          local name = full_name(entry.prefix, suffix)
          local t = state[name]
          local want = c.shapes[i]
          if t == nil then
            raise(("%s: %s needs tensor '%s' %s for %s, which the state does not have%s")
              :format(who, label(unit.layer), name, shape_str(want), c.what, hint))
          end
          local got = t:shape()
          local fits = #got == #want
          for j = 1, #want do fits = fits and got[j] == want[j] end
          if c.count_only then fits = tonumber(t.count) == tonumber(c.vars[1].count) end
          if not fits then
            raise(("%s: tensor '%s' has shape %s, but %s expects %s for %s%s")
              :format(who, name, shape_str(got), label(unit.layer), shape_str(want), c.what, hint))
          end
          used[name] = true
          ts[i] = t
        end
        plan[#plan + 1] = { c, ts }
      end
    end
    if opts.strict ~= false then
      local left = {}
      for name, t in pairs(state) do
        if not used[name] and not name:match("num_batches_tracked$") then
          left[#left + 1] = ("'%s' %s"):format(name, shape_str(t:shape()))
        end
      end
      table.sort(left)
      if #left > 0 then
        raise(("%s: %d tensor%s of the state fit no layer: %s%s (strict = false ignores them)")
          :format(who, #left, #left == 1 and "" or "s", table.concat(left, ", ", 1, math.min(#left, 8)),
            #left > 8 and ", ..." or ""))
      end
    end
    -- everything fits: now assign
    local values = {}
    for i, p in ipairs(plan) do values[i] = p[1].load(p[2]) end
    for i, p in ipairs(plan) do
      for j, v in ipairs(p[1].vars) do v:assign(values[i][j]) end
    end
  end)
  return model
end

--- interop.to_torch(model, {mapping=}): the model's weights as a PyTorch state {name = tensor} (copies, in
-- PyTorch's layouts and names) that `module.load_state_dict` takes once saved with klua.saving.save_safetensors.
-- Module names come from mapping (as in from_torch) or are the klua layer names. LSTM/RNN biases go to bias_ih
-- (bias_hh is zeros); BatchNorm's num_batches_tracked is not written (PyTorch fills it in on load).
function M.to_torch(model, opts)
  local who = "to_torch"
  opts = check_opts(opts, who)
  local units = units_of(model, who)
  local paired = pair(units, opts, who, nil)
  local out = {}
  no_grad(function()
    for _, p in ipairs(paired) do
      local unit, entry = p[1], p[2]
      for _, c in ipairs(conversions(unit, entry, nil)) do
        local ts = c.save()
        for i, suffix in ipairs(c.torch) do
          local name = full_name(entry.prefix, suffix)
          if out[name] then raise(("%s: two layers give tensor '%s' (check the mapping)"):format(who, name)) end
          local t = ts[i]
          if c.count_only then t = ops.reshape(t, c.shapes[i]) end
          out[name] = t:clone()
        end
      end
    end
  end)
  return out
end

return M
