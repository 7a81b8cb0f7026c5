-- trainers/arguments.lua — the two calling forms of compile/fit/evaluate/
-- predict and the on-batch API: the table form f{x=, y=, ...} and Keras's
-- positional form f(x, y, {...}), checked against the names each accepts.
local core = require("klua.core")

local raise = core.raise

local M = {}

local function is_plain(t) return type(t) == "table" and getmetatable(t) == nil end

-- Only known names: a table of data (a list of tensors, {a = t, b = u})
-- is never mistaken for keywords.
local function only_known(t, known)
  for k in pairs(t) do if not known[k] then return false end end
  return true
end

--- set{"a", "b"}: {a = true, b = true}.
function M.set(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end

--- collect_args(who, known, positional, ...): the keywords, from either
-- form (positional arguments in Keras's order, as many as Keras takes); an
-- unknown name, a name given twice or too many positional arguments raise.
function M.collect_args(who, known, positional, ...)
  local kw = {}
  local n = select("#", ...)
  local a, b = ...
  if is_plain(a) and b == nil and n <= 1 and (a.x ~= nil or (a[1] == nil and next(a) ~= nil and only_known(a, known))) then
    for k, v in pairs(a) do kw[k] = v end
  else
    local args = { ... }
    local last = 0
    for i = 1, n do if args[i] ~= nil then last = i end end
    -- a trailing option table (not data) holds the keywords
    if last > 1 and is_plain(args[last]) then
      local opts = args[last]
      if next(opts) ~= nil and opts[1] == nil and only_known(opts, known) then
        for k, v in pairs(opts) do kw[k] = v end
        args[last] = nil
        last = last - 1
      end
    end
    for i = 1, last do
      local name = positional[i]
      if not name then raise(("%s: too many positional arguments"):format(who)) end
      if kw[name] ~= nil then raise(("%s: got `%s` twice"):format(who, name)) end
      kw[name] = args[i]
    end
  end
  for k in pairs(kw) do
    if not known[k] then raise(("%s: unknown argument `%s`"):format(who, tostring(k))) end
  end
  return kw
end

--- verbose_of(v): 0, 1 or 2 from Keras's verbose values (nil and "auto" are 1).
function M.verbose_of(v)
  if v == nil or v == "auto" then return 1 end
  if v == true then return 1 elseif v == false then return 0 end
  if v ~= 0 and v ~= 1 and v ~= 2 then raise("verbose must be 0, 1, 2 or \"auto\". Received: verbose=" .. tostring(v)) end
  return v
end

return M
