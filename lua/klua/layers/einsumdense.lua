-- einsumdense.lua — EinsumDense: activation(einsum(equation, x, kernel) + bias),
-- Keras's arguments and shape rules. The equation is "X,W->O", "...X,W->...O"
-- or "X...,W->O..." (letters name axes; "..." stands for the axes the input
-- has beyond X's letters); output_shape gives the output's sizes without the
-- batch and the "..." axes (-1 for a size taken from the input); bias_axes
-- names the output letters that get a bias. The einsum is transposes,
-- reshapes and one (batched) matmul: axes in x, kernel and output are batch
-- axes, in x and kernel only are contracted, in one operand only are summed.
local core = require("klua.core")
local class = require("klua.class")
local Layer = require("klua.layer")
local ops = require("klua.ops")
local activations = require("klua.activations")
local initializers = require("klua.initializers")
local regularizers = require("klua.regularizers")
local constraints = require("klua.constraints")

local EinsumDense = Layer:extend("EinsumDense")
EinsumDense.input_spec = {}   -- one tensor

local function letters(s)
  local out = {}
  for c in s:gmatch(".") do out[#out + 1] = c end
  return out
end

local function index_of(list)
  local idx = {}
  for i, c in ipairs(list) do idx[c] = i end
  return idx
end

-- "ab,bc->ac" -> input, weight, output letters and where "..." is: "left",
-- "right" or nil. Keras's three forms only.
local function parse(equation)
  local ok_letters = "^[%a]+$"
  local x, w, o = equation:match("^([^,]*),([^,%-]*)%->(.*)$")
  if x and w:match(ok_letters) then
    if x:match(ok_letters) and o:match(ok_letters) then return letters(x), letters(w), letters(o), nil end
    local xl, ol = x:match("^%.%.%.([%a]+)$"), o:match("^%.%.%.([%a]+)$")
    if xl and ol then return letters(xl), letters(w), letters(ol), "left" end
    local xr, orr = x:match("^([%a][%a]+)%.%.%.$"), o:match("^([%a]+)%.%.%.$")
    if xr and orr then return letters(xr), letters(w), letters(orr), "right" end
  end
  return nil
end

--- EinsumDense{equation, output_shape, activation=nil, bias_axes=nil, kernel_initializer="glorot_uniform",
-- bias_initializer="zeros", kernel_regularizer=nil, bias_regularizer=nil, kernel_constraint=nil, bias_constraint=nil, ...}:
-- activation(einsum(equation, x, kernel) + bias), e.g. EinsumDense{equation = "ab,bc->ac", output_shape = {64}}.
function EinsumDense:__init(equation, output_shape, kw)
  if type(equation) == "table" and output_shape == nil and kw == nil then
    kw = equation
    equation, output_shape = kw.equation or kw[1], kw.output_shape or kw[2]
  elseif type(output_shape) == "table" and getmetatable(output_shape) == nil and output_shape.output_shape ~= nil then
    kw = output_shape
    output_shape = kw.output_shape
  end
  kw = kw or {}
  EinsumDense.super.__init(self, kw)
  if type(equation) ~= "string" or not parse(equation) then
    self:raise("invalid einsum equation '%s'. Equations must be in the form [X],[Y]->[Z], ...[X],[Y]->...[Z], or [X]...,[Y]->[Z]...",
      tostring(equation))
  end
  if type(output_shape) == "number" then output_shape = { output_shape } end
  if type(output_shape) ~= "table" then
    self:raise("output_shape must be an integer or a list of integers. Received: output_shape=%s", tostring(output_shape))
  end
  local partial = {}
  for i, d in ipairs(output_shape) do
    if type(d) ~= "number" or d % 1 ~= 0 or d == 0 or d < -1 then
      self:raise("output_shape must hold positive integers (-1: unknown). Received: %s at position %d", tostring(d), i)
    end
    partial[i] = d
  end
  local bias_axes = kw.bias_axes
  if bias_axes ~= nil and (type(bias_axes) ~= "string" or not bias_axes:match("^[%a]+$")) then
    self:raise("bias_axes must be a string of output letters. Received: bias_axes=%s", tostring(bias_axes))
  end
  self.equation, self.partial_output_shape, self.bias_axes = equation, partial, bias_axes
  self.activation = activations.get(kw.activation)
  self.kernel_initializer = initializers.get(kw.kernel_initializer or "glorot_uniform")
  self.bias_initializer = initializers.get(kw.bias_initializer or "zeros")
  self.kernel_regularizer = regularizers.get(kw.kernel_regularizer)
  self.bias_regularizer = regularizers.get(kw.bias_regularizer)
  self.kernel_constraint = constraints.get(kw.kernel_constraint)
  self.bias_constraint = constraints.get(kw.bias_constraint)
end

-- Keras's shape analysis for an input shape (batch first, -1 unknown): the
-- kernel shape, the bias shape (or nil), the full output shape, the fan-in
-- and fan-out of the kernel, and the axis labels of input, kernel and output
-- ("..." axes get labels of their own).
function EinsumDense:_analyze(input_shape)
  local xspec, wspec, ospec, elided_at = parse(self.equation)
  local nd = #input_shape
  local elided = nd - #xspec
  if elided < 0 or (elided > 0 and not elided_at) then
    self:raise("the equation '%s' expects an input of rank %d, got shape %s", self.equation, #xspec, Layer.shape_str(input_shape))
  end
  local ell = {}
  for i = 1, elided do ell[i] = "..." .. i end
  local xl, ol = {}, {}
  local function append(dst, src) for _, v in ipairs(src) do dst[#dst + 1] = v end end
  if elided_at == "left" then append(xl, ell); append(xl, xspec); append(ol, ell); append(ol, ospec)
  else append(xl, xspec); append(xl, ell); append(ol, ospec); append(ol, ell) end
  -- Full output shape: the batch, then output_shape, with the "..." sizes.
  local xi = index_of(xl)
  local out = {}
  local partial = self.partial_output_shape
  local k = 0
  for i, c in ipairs(ol) do
    local from_input = xi[c] and input_shape[xi[c]] or nil
    if i == 1 then
      out[i] = input_shape[1]            -- the batch (Keras)
    elseif c:sub(1, 3) == "..." then
      out[i] = from_input
    else
      k = k + 1
      local d = partial[k]
      if d == nil then
        self:raise("output_shape has %d entries, the equation '%s' needs %d", #partial, self.equation, k)
      end
      if from_input and d ~= -1 and from_input ~= -1 and d ~= from_input then
        self:raise("input shape and output shape do not match at shared dimension '%s'. Input shape is %d, and output shape is %d",
          c, from_input, d)
      end
      out[i] = d == -1 and (from_input or -1) or d
    end
  end
  if k ~= #partial then
    self:raise("output_shape has %d entries, the equation '%s' needs %d", #partial, self.equation, k)
  end
  local wi, oi = index_of(wspec), index_of(ol)
  for _, c in ipairs(ospec) do
    if not xi[c] and not wi[c] then
      self:raise("dimension '%s' was specified in the output '%s' but has no corresponding dim in the input spec '%s' or weight spec '%s'",
        c, table.concat(ospec), table.concat(xspec), table.concat(wspec))
    end
  end
  local kshape, fan_in, fan_out = {}, 1, 1
  for i, c in ipairs(wspec) do
    local d
    if oi[c] then d = out[oi[c]]; fan_out = fan_out * d
    elseif xi[c] then d = input_shape[xi[c]]; fan_in = fan_in * d
    else
      self:raise("weight dimension '%s' did not have a match in either the input spec '%s' or the output spec '%s'. For this layer, the weight must be fully specified",
        c, table.concat(xspec), table.concat(ospec))
    end
    if d == nil or d < 1 then
      self:raise("the size of weight dimension '%s' must be known, got input shape %s", c, Layer.shape_str(input_shape))
    end
    kshape[i] = d
  end
  local bshape
  if self.bias_axes then
    local first = #ospec + 1
    for c in self.bias_axes:gmatch(".") do
      local at = index_of(ospec)[c]
      if not at then self:raise("bias dimension '%s' was requested, but is not part of the output spec '%s'", c, table.concat(ospec)) end
      first = math.min(first, at)
    end
    bshape = {}
    local lead = elided_at == "left" and elided or 0
    for i = first, #ospec do
      bshape[#bshape + 1] = self.bias_axes:find(ospec[i], 1, true) and out[i + lead] or 1
    end
    if elided_at ~= "left" then for _ = 1, elided do bshape[#bshape + 1] = 1 end end
  end
  return kshape, bshape, out, fan_in, fan_out, xl, wspec, ol
end

function EinsumDense:build(input_shape)
  local kshape, bshape, _, fan_in, fan_out = self:_analyze(input_shape)
  local init = self.kernel_initializer
  if class.is_instance(init, initializers.VarianceScaling) then
    -- Keras tells the initializer which kernel axes are inputs and which
    -- outputs; its draws are i.i.d., so a (fan_in, fan_out) draw reshaped is the same.
    local base = init
    init = function() return ops.reshape(core.to_tensor(base({ fan_in, fan_out })), kshape) end
  end
  self.kernel = self:add_weight{ shape = kshape, name = "kernel", initializer = init,
    regularizer = self.kernel_regularizer, constraint = self.kernel_constraint }
  if bshape then
    self.bias = self:add_weight{ shape = bshape, name = "bias", initializer = self.bias_initializer,
      regularizer = self.bias_regularizer, constraint = self.bias_constraint }
  end
  rawset(self, "_input_rank", #input_shape)
end

--- EinsumDense.einsum(x, w, x_labels, w_labels, out_labels): einsum of x (axes labelled x_labels) and w into out_labels.
-- einsum(x, w, xl, wl, ol): x with axis labels xl, w with wl -> labels ol.
function EinsumDense.einsum(x, w, xl, wl, ol, raise)
  raise = raise or core.raise
  x, w = core.to_tensor(x, "einsum", "x"), core.to_tensor(w, "einsum", "w")
  for _, a in ipairs { { "x_labels", xl, x.nd }, { "w_labels", wl, w.nd }, { "out_labels", ol } } do
    local list, ok = a[2], type(a[2]) == "table" and not core.class_name_of(a[2])
    for i = 1, ok and #list or 0 do ok = ok and type(list[i]) == "string" end
    if ok and a[3] and #list ~= a[3] then ok = false end
    if not ok then raise(("einsum: %s must be a list of one label (a string) per axis, got %s"):format(a[1], core.describe(list))) end
  end
  local function count(list) local c = {} for _, v in ipairs(list) do c[v] = (c[v] or 0) + 1 end return c end
  local cx, cw, co = count(xl), count(wl), count(ol)
  for _, c in pairs({ cx, cw, co }) do
    for label, n in pairs(c) do
      if n > 1 then raise(("einsum: the label '%s' is repeated in one operand (diagonals are not supported)"):format(label)) end
    end
  end
  -- Sum away the axes that appear in one operand only.
  local function reduce(t, labels, other)
    local axes, kept = {}, {}
    for i, c in ipairs(labels) do
      if not other[c] and not co[c] then axes[#axes + 1] = i else kept[#kept + 1] = c end
    end
    if #axes == 0 then return t, labels end
    return ops.sum(t, axes), kept
  end
  x, xl = reduce(x, xl, cw)
  w, wl = reduce(w, wl, cx)
  local xs, ws = x:shape(), w:shape()
  local xi, wi = index_of(xl), index_of(wl)
  local batch, free_x, contract, free_w = {}, {}, {}, {}
  for _, c in ipairs(xl) do
    if wi[c] and co[c] then batch[#batch + 1] = c
    elseif wi[c] then contract[#contract + 1] = c
    else free_x[#free_x + 1] = c end
  end
  for _, c in ipairs(wl) do if not xi[c] then free_w[#free_w + 1] = c end end
  for _, c in ipairs(batch) do
    if xs[xi[c]] ~= ws[wi[c]] then raise(("einsum: axis '%s' has size %d in the input and %d in the kernel"):format(c, xs[xi[c]], ws[wi[c]])) end
  end
  for _, c in ipairs(contract) do
    if xs[xi[c]] ~= ws[wi[c]] then raise(("einsum: axis '%s' has size %d in the input and %d in the kernel"):format(c, xs[xi[c]], ws[wi[c]])) end
  end
  local function arrange(t, idx, shape, groups)
    local order, dims, sizes = {}, {}, {}
    for g, group in ipairs(groups) do
      local n = 1
      for _, c in ipairs(group) do order[#order + 1] = idx[c]; n = n * shape[idx[c]] end
      sizes[g] = n
    end
    local moved = false
    for i, p in ipairs(order) do if p ~= i then moved = true end end
    if moved then t = ops.transpose(t, order) end
    for _, n in ipairs(sizes) do dims[#dims + 1] = n end
    return ops.reshape(t, dims)
  end
  local has_batch = #batch > 0
  local a = arrange(x, xi, xs, has_batch and { batch, free_x, contract } or { free_x, contract })
  local b = arrange(w, wi, ws, has_batch and { batch, contract, free_w } or { contract, free_w })
  local r = ops.matmul(a, b)
  local labels, dims = {}, {}
  for _, group in ipairs({ batch, free_x, free_w }) do
    for _, c in ipairs(group) do
      labels[#labels + 1] = c
      dims[#dims + 1] = xi[c] and xs[xi[c]] or ws[wi[c]]
    end
  end
  r = ops.reshape(r, dims)
  local ri = index_of(labels)
  local order, moved = {}, false
  for i, c in ipairs(ol) do
    order[i] = ri[c]
    if not order[i] then raise(("einsum: output label '%s' is in neither operand"):format(c)) end
    if order[i] ~= i then moved = true end
  end
  if moved then r = ops.transpose(r, order) end
  return r
end

function EinsumDense:call(x)
  if x.nd ~= rawget(self, "_input_rank") then
    self:raise("expected an input of rank %d, got shape %s", rawget(self, "_input_rank"), core.shape_str(x:shape()))
  end
  local _, _, _, _, _, xl, wl, ol = self:_analyze(x:shape())
  local y = EinsumDense.einsum(x, self.kernel, xl, wl, ol, function(msg) self:raise("%s", msg) end)
  if self.bias then y = y + self.bias end
  return self.activation(y)
end

function EinsumDense:compute_output_shape(input_shape)
  local _, _, out = self:_analyze(input_shape)
  return out
end

function EinsumDense:get_config()
  local config = EinsumDense.super.get_config(self)
  config.equation = self.equation
  config.output_shape = { unpack(self.partial_output_shape) }
  config.bias_axes = self.bias_axes
  config.activation = activations.serialize(self.activation)
  Layer._weight_options_config(self, config, { "kernel", "bias" })
  return config
end

return EinsumDense
