-- keras_tensor.lua — KerasTensor, the symbolic tensor of the
-- Functional API: a shape (the batch, and any size not known yet, is -1) and
-- the node that made it, a node being one recorded layer call
-- {layer, args, nargs, kw, outputs, flat, nret}. Arithmetic on symbolic
-- tensors (x + y, 2 * x, -x, x ^ 2) records a TensorOp layer, so graphs hold
-- it without a Lambda and can still be saved. Making and replaying graphs is
-- models/functional.lua; this file is what summary and the trainers read too.
local core = require("klua.core")
local Layer = require("klua.layer")
local ops = require("klua.ops")
local structure = require("klua.tree")

local shape_str = core.shape_str
local flatten, ordered_keys, is_struct = structure.flatten, structure.ordered_keys, structure.is_struct

local M = {}

local KerasTensor = { __name = "KerasTensor" }
M.KerasTensor = KerasTensor

-- Reached when a symbolic tensor is handed to an op directly (klua.ops.exp(x)
-- reads x[1] while converting it): say what to do instead of computing on a
-- made-up value.
local function no_values(t)
  core.raise(("%s is symbolic and holds no values: call layers on it, or wrap the computation in a layer, "
    .. "e.g. klua.layers.Lambda(function(x) return klua.ops.exp(x) end)(x)"):format(tostring(t)))
end

KerasTensor.__to_tensor = no_values   -- klua.tensor / an op given a symbolic tensor
KerasTensor.__index = function(t, k)
  if type(k) == "number" then no_values(t) end
  return KerasTensor[k]
end

-- A shape table that is also callable, so that both Keras's `x.shape` and
-- klua's `x:shape()` read it.
local shape_mt = {
  __call = function(s)
    local out = {}
    for i = 1, #s do out[i] = s[i] end
    return out
  end,
  __tostring = function(s) return shape_str(s) end,
}

local function copy_shape(s)
  local out = {}
  for i = 1, #s do out[i] = s[i] end
  return out
end
M.copy_shape = copy_shape

--- new(shape, node, name): the symbolic output of `node`.
function M.new(shape, node, name)
  return setmetatable({ shape = setmetatable(copy_shape(shape), shape_mt), dtype = "float32", _node = node, name = name },
    KerasTensor)
end

--- is_keras_tensor(x): true for a symbolic tensor (klua.Input's output, a layer call on one).
local function is_kt(x) return getmetatable(x) == KerasTensor end
M.is_keras_tensor = is_kt

function KerasTensor:ndim() return #self.shape end
KerasTensor.__tostring = function(t)
  return ("<KerasTensor shape=%s, name=%s>"):format(shape_str(t.shape), tostring(t.name))
end
KerasTensor.__len = no_values

--- has_symbolic(x): x is, or holds (nested up to 6 deep), a KerasTensor.
local function has_symbolic(x, depth)
  if is_kt(x) then return true end
  depth = depth or 0
  if depth > 6 or not is_struct(x) then return false end
  for _, v in pairs(x) do
    if has_symbolic(v, depth + 1) then return true end
  end
  return false
end
M.has_symbolic = has_symbolic

--- node_inputs(node): the symbolic tensors a node reads (positional args,
-- then keyword values).
function M.node_inputs(node)
  local out = {}
  for i = 1, node.nargs do
    for _, v in ipairs(flatten(node.args[i])) do if is_kt(v) then out[#out + 1] = v end end
  end
  for _, k in ipairs(ordered_keys(node.kw)) do
    for _, v in ipairs(flatten(node.kw[k])) do if is_kt(v) then out[#out + 1] = v end end
  end
  return out
end

--------------------------------------------------------------------------------
-- Arithmetic: a TensorOp layer called on the operands.

local TensorOp = Layer:extend("TensorOp")
TensorOp.accepts_any_input = true   -- operands: tensors and Lua numbers (x + 2)
M.TensorOp = TensorOp
local OPS = { add = true, subtract = true, multiply = true, divide = true, power = true, negative = true }

function TensorOp:__init(kw)
  kw = kw or {}
  if not OPS[kw.op] then core.raise("TensorOp: unknown op " .. tostring(kw.op)) end
  TensorOp.super.__init(self, { name = kw.name or Layer.unique_name(kw.op), dtype = kw.dtype })
  rawset(self, "op", kw.op)
end

function TensorOp:call(inputs)
  return ops[rawget(self, "op")](inputs[1], inputs[2])
end

function TensorOp:get_config()
  local config = TensorOp.super.get_config(self)
  config.op = rawget(self, "op")
  return config
end

local function op_meta(op)
  return function(a, b) return TensorOp{ op = op }({ a, b }) end
end
KerasTensor.__add = op_meta("add")
KerasTensor.__sub = op_meta("subtract")
KerasTensor.__mul = op_meta("multiply")
KerasTensor.__div = op_meta("divide")
KerasTensor.__pow = op_meta("power")
KerasTensor.__unm = function(a) return TensorOp{ op = "negative" }({ a }) end

return M
