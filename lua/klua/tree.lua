-- tree.lua — nested structures (a leaf, a list or a named table of leaves,
-- nested) as the models and the trainers walk them: one stable key order,
-- flatten, map and zip. Keras's tree utilities; it requires only klua.core.
local core = require("klua.core")

local M = {}

-- A plain table is a structure; anything with a metatable (a tensor, a
-- layer, a symbolic tensor) is a leaf.
local function is_struct(x)
  return type(x) == "table" and getmetatable(x) == nil
end
M.is_struct = is_struct

-- Keys in a stable order: the array part, then the other keys sorted.
local function ordered_keys(t)
  local keys, n = {}, #t
  for i = 1, n do keys[i] = i end
  local rest = {}
  for k in pairs(t) do
    if not (type(k) == "number" and k >= 1 and k <= n and k % 1 == 0) then rest[#rest + 1] = k end
  end
  table.sort(rest, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  return keys
end
M.ordered_keys = ordered_keys

--- flatten(x): the leaves of x in ordered_keys order.
local function flatten(x, out)
  out = out or {}
  if is_struct(x) then
    for _, k in ipairs(ordered_keys(x)) do flatten(x[k], out) end
  elseif x ~= nil then
    out[#out + 1] = x
  end
  return out
end
M.flatten = flatten

--- map(x, fn): the same structure with fn applied to every leaf.
local function map(x, fn)
  if is_struct(x) then
    local out = {}
    for k, v in pairs(x) do out[k] = map(v, fn) end
    return out
  end
  return fn(x)
end
M.map = map

--- zip(template, value, fn, path): fn(leaf, value_leaf, path) for each leaf
-- of template and the leaf at the same place in value.
local function zip(template, value, fn, path)
  if is_struct(template) then
    if not is_struct(value) then
      core.raise(("%s: expected a table, got %s"):format(path, core.is_tensor(value) and "a tensor" or type(value)))
    end
    for _, k in ipairs(ordered_keys(template)) do
      zip(template[k], value[k], fn, path .. (type(k) == "number" and ("[" .. k .. "]") or ("." .. k)))
    end
  else
    fn(template, value, path)
  end
end
M.zip = zip

return M
