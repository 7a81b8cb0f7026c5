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
  M.check_kinds(who, kw)
  return kw
end

-- The kind of value each keyword of the training API takes (nil is always allowed).
local KINDS = {
  batch_size = "positive integer", validation_batch_size = "positive integer", steps_per_epoch = "positive integer",
  validation_steps = "positive integer", steps = "positive integer", validation_freq = "positive integer",
  initial_epoch = "non-negative integer", validation_split = "number in [0, 1)",
  shuffle = "boolean", return_dict = "boolean", class_weight = "table",
}
local function fits(kind, v)
  if kind == "boolean" then return type(v) == "boolean" end
  if kind == "table" then return type(v) == "table" and not core.class_name_of(v) end
  if type(v) ~= "number" or v ~= v then return false end
  if kind == "number in [0, 1)" then return v >= 0 and v < 1 end
  if v % 1 ~= 0 or v == math.huge then return false end
  return kind == "positive integer" and v >= 1 or (kind == "non-negative integer" and v >= 0)
end

--- check_kinds(who, kw): raises, Keras-style, for a keyword of the wrong kind
-- ("fit: batch_size must be a positive integer. Received: batch_size=0").
function M.check_kinds(who, kw)
  for k, kind in pairs(KINDS) do
    local v = kw[k]
    if v ~= nil and not fits(kind, v) then
      raise(("%s: %s must be a %s. Received: %s=%s"):format(who, k, kind, k, core.received(v)))
    end
  end
end

--- verbose_of(v): 0, 1 or 2 from Keras's verbose values (nil and "auto" are 1).
function M.verbose_of(v)
  if v == nil or v == "auto" then return 1 end
  if v == true then return 1 elseif v == false then return 0 end
  if v ~= 0 and v ~= 1 and v ~= 2 then raise("verbose must be 0, 1, 2 or \"auto\". Received: verbose=" .. core.received(v)) end
  return v
end

return M
