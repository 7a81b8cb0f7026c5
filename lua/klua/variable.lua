-- variable.lua — klua.Variable: a tensor owned by the C side whose storage is
-- updated in place (assign, assign_add, assign_sub), so a tape recognises it
-- by identity across steps. Trainable variables are watched automatically.
-- What C cannot hold (name, path, regularizer, constraint) lives in one
-- weak-keyed table, keyed by the Variable itself, so it dies with it.
local core = require("klua.core")
local tensor = require("klua.tensor")
local C, raise = core.C, core.raise
local methods, var_info = tensor.methods, tensor.var_info
local FLAG_VARIABLE, FLAG_TRAINABLE = C.KL_FLAG_VARIABLE, C.KL_FLAG_TRAINABLE

local M = {}
local counter = 0

--- is_variable(x): true when x is a klua.Variable.
function M.is_variable(x)
  return core.is_tensor(x) and bit.band(x.flags, FLAG_VARIABLE) ~= 0
end

--- Variable(initial_value, {name=nil, trainable=true, path=nil, regularizer=nil, constraint=nil}): a tensor
-- updated in place (assign, assign_add, assign_sub) that tapes watch automatically when trainable.
function M.new(initial, kw)
  kw = kw or {}
  if initial == nil then raise("Variable: an initial value is required") end
  if type(kw) ~= "table" then raise("Variable: the options must be a table like {name = \"w\"}, got " .. core.describe(kw)) end
  local t = core.wrap(C.kl_tensor_clone(tensor.T(initial, "Variable", "initial_value").p))
  local trainable = kw.trainable ~= false
  t.flags = bit.bor(FLAG_VARIABLE, trainable and FLAG_TRAINABLE or 0)
  counter = counter + 1
  local name = kw.name or ("variable_" .. counter)
  var_info[t] = { name = name, path = kw.path or name, regularizer = kw.regularizer, constraint = kw.constraint }
  return t
end

--- info(v): the variable's metadata table {name=, path=, regularizer=, constraint=} (nil for a plain tensor).
function M.info(v) return var_info[v] end
--- constraint_of(v): the constraint a Variable was made with, or nil.
function M.constraint_of(v) local i = var_info[v]; return i and i.constraint end
--- regularizer_of(v): the regularizer a Variable was made with, or nil.
function M.regularizer_of(v) local i = var_info[v]; return i and i.regularizer end
--- path_of(v): a Variable's path, Keras 3's variable.path ("dense/kernel").
function M.path_of(v) local i = var_info[v]; return i and i.path or "variable" end

local function assigner(mode, what)
  return function(v, value)
    if bit.band(v.flags, FLAG_VARIABLE) == 0 then raise(what .. ": only Variables can be updated in place") end
    local src = tensor.T(value, what, "value")
    core.check(C.kl_assign(v.p, src.p, mode))
    return v
  end
end
--- v:assign(value): sets a Variable's value in place (same shape); returns v.
methods.assign = assigner(0, "assign")
--- v:assign_add(value): adds value to a Variable in place; returns v.
methods.assign_add = assigner(1, "assign_add")
--- v:assign_sub(value): subtracts value from a Variable in place; returns v.
methods.assign_sub = assigner(2, "assign_sub")

--- v:value(): a plain tensor copy of the variable's current value.
function methods.value(v) return core.wrap(C.kl_tensor_clone(v.p)) end

return setmetatable(M, { __call = function(_, initial, kw) return M.new(initial, kw) end })
