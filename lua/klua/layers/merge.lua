-- merge.lua — Merge: the base of the layers that combine a list of tensors
-- (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate).
-- They are called on a list: klua.layers.Add()({a, b}); shapes broadcast as
-- in the elementwise ops. The output mask is the product (AND) of the masks.
local core = require("klua.core")
local Layer = require("klua.layer")

local Merge = Layer:extend("Merge")
Merge.supports_masking = true
Merge.min_inputs = 2

--- Merge{...}: the base of the layers that combine a list of tensors (Add, Subtract, ..., Concatenate); a subclass
-- defines merge(self, list) or is made with Merge.define.
function Merge:__init(kw)
  Merge.super.__init(self, kw)
end

-- The list of inputs, from call({a, b}, kw) or call(a, b, kw).
local function inputs_of(self, first, ...)
  local list
  if core.is_tensor(first) then
    list = { first }
    for i = 1, select("#", ...) do
      local v = select(i, ...)
      if core.is_tensor(v) then list[#list + 1] = v end
    end
  else
    list = first
  end
  if type(list) ~= "table" or #list < self.min_inputs then
    self:raise("expected a list of at least %d tensors, got %s", self.min_inputs,
      type(list) == "table" and (#list .. " tensor" .. (#list == 1 and "" or "s")) or type(list))
  end
  if self.max_inputs and #list > self.max_inputs then
    self:raise("expected exactly %d inputs, got %d", self.max_inputs, #list)
  end
  for i, t in ipairs(list) do
    if not core.is_tensor(t) then list[i] = core.to_tensor(t) end
  end
  return list
end

function Merge:call(first, ...)
  local list = inputs_of(self, first, ...)
  local ok, out = pcall(self.merge, self, list)
  if not ok then
    local shapes = {}
    for i, t in ipairs(list) do shapes[i] = core.shape_str(t:shape()) end
    self:raise("inputs of shapes %s cannot be combined: %s", table.concat(shapes, ", "), tostring(out):gsub("^.-:%d+: ", ""))
  end
  return out
end

--- Merge:merge(list): combines the list of input tensors into the output (what a merge layer defines).
function Merge:merge(list) self:raise("merge() is not implemented") end

function Merge:compute_mask(inputs, mask)
  if type(mask) ~= "table" then return nil end
  local out
  for i = 1, #mask do
    local m = mask[i]
    if m then out = out and core.op("mul", out, m) or m end
  end
  return out
end

-- Broadcast shapes (unknown sizes stay unknown).
function Merge:compute_output_shape(shapes)
  if type(shapes[1]) ~= "table" then self:raise("compute_output_shape: expected a list of input shapes, like {{2, 3}, {2, 3}}") end
  local n = 0
  for _, s in ipairs(shapes) do n = math.max(n, #s) end
  local out = {}
  for i = 1, n do
    local d = 1
    for _, s in ipairs(shapes) do
      local v = s[#s - n + i] or 1
      if v == -1 then d = -1 elseif d ~= -1 and v ~= 1 then d = v end
    end
    out[i] = d
  end
  return out
end

--- Merge.define(name, merge, extra): a new merge layer class whose merge(self, list) is `merge`, with the fields of extra.
-- Define a merge layer class by its reduction.
function Merge.define(name, merge, extra)
  if type(name) ~= "string" or type(merge) ~= "function" or (extra ~= nil and type(extra) ~= "table") then
    core.raise(("Merge.define(name, merge, extra): expected a string, a function and a table or nil, got %s, %s and %s")
      :format(core.describe(name), core.describe(merge), core.describe(extra)))
  end
  local cls = Merge:extend(name)
  cls.merge = merge
  for k, v in pairs(extra or {}) do cls[k] = v end
  return cls
end

return Merge
