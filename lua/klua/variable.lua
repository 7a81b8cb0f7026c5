-- variable.lua — klua.Variable: a tensor owned by the C side whose storage is
-- updated in place (assign, assign_add, assign_sub), so a tape recognises it
-- by identity across steps. Trainable variables are watched automatically.
local core = require("klua.core")
local tensor = require("klua.tensor")
local C, raise = core.C, core.raise
local methods, var_info = tensor.methods, tensor.var_info

local counter = 0

--- Variable(initial_value, {name=, trainable=true})
local function Variable(initial, kw)
  kw = kw or {}
  if initial == nil then raise("Variable: an initial value is required") end
  local t = core.wrap(C.kl_tensor_clone(tensor.T(initial).p))
  local trainable = kw.trainable ~= false
  t.flags = bit.bor(C.KL_FLAG_VARIABLE, trainable and C.KL_FLAG_TRAINABLE or 0)
  counter = counter + 1
  var_info[tonumber(t.id)] = { name = kw.name or ("variable_" .. counter), path = kw.path }
  return t
end

local function assigner(mode, what)
  return function(v, value)
    if bit.band(v.flags, C.KL_FLAG_VARIABLE) == 0 then raise(what .. ": only Variables can be updated in place") end
    local src = tensor.T(value)
    core.check(C.kl_assign(v.p, src.p, mode))
    return v
  end
end
methods.assign = assigner(0, "assign")
methods.assign_add = assigner(1, "assign_add")
methods.assign_sub = assigner(2, "assign_sub")

--- v:value(): a plain tensor copy of the variable's current value.
function methods.value(v) return core.wrap(C.kl_tensor_clone(v.p)) end

return Variable
