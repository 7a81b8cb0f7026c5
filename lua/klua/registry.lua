-- registry.lua — the one object registry and the one resolver behind every
-- `get` (activations, constraints, initializers, losses, metrics, optimizers,
-- regularizers, schedules, layers). A leaf: it requires nothing of klua, so
-- every module may use it without creating a require cycle.
--
--   registry.register(MyLoss)                  -- "MyLoss" and "Custom>MyLoss"
--   registry.resolve(id, kind_spec)            -- what klua.losses.get(id) does
--   registry.serialize(obj)                    -- {class_name=, config=}
local registry = {}

local objects = {}                                   -- "name" and "package>name" -> class or function
local registered_keys = setmetatable({}, { __mode = "k" })   -- class or function -> "package>name"
local short_names = setmetatable({}, { __mode = "k" })       -- class or function -> "name"
local scoped = {}                                    -- custom_objects of the deserialization in progress

local function class_name_of(cls)
  return type(cls) == "table" and rawget(cls, "__name") or nil
end

--- is_class(x): a class made by klua.class (marked __class), not an instance.
function registry.is_class(x)
  return type(x) == "table" and rawget(x, "__class") == true
end
local is_class = registry.is_class

--- is_subclass(cls, base): cls is base or derives from it.
function registry.is_subclass(cls, base)
  while type(cls) == "table" do
    if cls == base then return true end
    cls = rawget(cls, "super")
  end
  return false
end

local function is_instance(obj, base)
  if type(obj) ~= "table" or is_class(obj) then return false end
  return registry.is_subclass(getmetatable(obj), base)
end
registry.is_instance = is_instance

--- register(obj [, {package=, name=}]) -> obj: a class or a function, found
-- afterwards by "name" and by "package>name" (package "Custom" by default, as
-- in Keras's register_keras_serializable).
function registry.register(obj, opts)
  opts = opts or {}
  local name = opts.name or class_name_of(obj)
  if type(obj) ~= "table" and type(obj) ~= "function" then
    error("register_serializable: expected a class or a function, got " .. type(obj), 2)
  end
  if type(name) ~= "string" or name == "" then
    error("register_serializable: the object has no name; pass {name = ...}", 2)
  end
  local key = (opts.package or "Custom") .. ">" .. name
  objects[name] = obj
  objects[key] = obj
  registered_keys[obj] = key
  short_names[obj] = name
  return obj
end

--- lookup(name): the object registered under "name" or "package>name", the
-- custom_objects of a load in progress first; nil when there is none.
function registry.lookup(name)
  if type(name) ~= "string" then return nil end
  local short = name:match(">(.+)$")
  for i = #scoped, 1, -1 do
    local c = scoped[i]
    local v = c[name] or (short and c[short])
    if v ~= nil then return v end
  end
  return objects[name] or (short and objects[short]) or nil
end

--- registered_name(obj): "package>name" for a registered object, else nil.
function registry.registered_name(obj) return registered_keys[obj] end

--- name_of(obj): the name a class or function is saved under: its
-- registered name, else its class name (nil for an unregistered function).
function registry.name_of(obj)
  return short_names[obj] or class_name_of(obj)
end

--- with_custom_objects(map, fn, ...): run fn with map's names visible to lookup.
function registry.with_custom_objects(map, fn, ...)
  if map == nil then return fn(...) end
  scoped[#scoped + 1] = map
  local depth = #scoped
  local function finish(ok, ...)
    for i = #scoped, depth, -1 do scoped[i] = nil end
    if not ok then error((...), 0) end
    return ...
  end
  return finish(pcall(fn, ...))
end

--- serialize(obj): a registered function as its name; an object as
-- {class_name=, config=} under its registered name, else its class name.
function registry.serialize(obj, raise)
  if obj == nil then return nil end
  if type(obj) == "function" then return short_names[obj] end
  if type(obj) ~= "table" or type(obj.get_config) ~= "function" then         -- raise: core.raise, from the caller
    (raise or error)("serialize: expected an object with get_config (or a function), got " .. type(obj))
  end
  return { class_name = registry.name_of(getmetatable(obj)), config = obj:get_config() }
end

local function sorted_names(builtins, hidden)
  local out = {}
  for k, v in pairs(builtins) do
    if type(k) == "string" and (is_class(v) or type(v) == "function") and not (hidden and hidden[k]) then
      out[#out + 1] = k
    end
  end
  table.sort(out)
  return out
end

-- A built-in by name: as given, through the kind's aliases, in lower case.
local function builtin(spec, name)
  local b, aliases = spec.builtins, spec.aliases or {}
  local key = aliases[name] or aliases[name:lower()] or name
  local v = rawget(b, key)
  if v == nil and spec.lazy then v = b[key] end
  if v == nil then v = rawget(b, key:lower()) end
  if spec.hidden and spec.hidden[key] then return nil end
  if is_class(v) and spec.base and not registry.is_subclass(v, spec.base) then return nil end
  if type(v) == "function" and not spec.named_functions then return nil end
  if v ~= nil and not is_class(v) and type(v) ~= "function" then return nil end
  return v
end

local function find(spec, name)
  local short = name:match(">(.+)$")
  if short then return registry.lookup(name) or builtin(spec, short) end
  return builtin(spec, name) or registry.lookup(name)
end

-- Edit distance, for "did you mean" (names are short: the quadratic table is fine).
local function distance(a, b)
  local before, prev, cur = {}, {}, {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    cur[0] = i
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      -- a swap of two neighbours counts once ("rleu" is one step from "relu")
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        cur[j] = math.min(cur[j], before[j - 2] + 1)
      end
    end
    before, prev, cur = prev, cur, before
  end
  return prev[#b]
end

-- The known name closest to `name` (ignoring case and _), if it is close;
-- a lower-case name is answered with a lower-case one when one is as close.
local function closest(name, known)
  local key = name:lower():gsub("_", "")
  local lower = name == name:lower()
  local best, best_score
  for _, k in ipairs(known) do
    local kk = k:lower():gsub("_", "")
    local d = distance(key, kk)
    local score = d * 4 + math.min(math.abs(#kk - #key), 2) + ((lower and k ~= k:lower()) and 1 or 0)
    -- one extra or missing letter at the end ("adamm") beats a different one
    if kk:sub(1, #key) == key or key:sub(1, #kk) == kk then score = score - 2 end
    if best_score == nil or score < best_score then best, best_score = k, score end
  end
  if best and math.floor(best_score / 4) <= math.max(2, math.floor(#key / 4)) then return best end
end
registry.closest = closest

local function fail(spec, fmt, ...)
  error({ klua_registry_error = (spec.who .. ": " .. fmt):format(...) }, 0)
end

local function from_config(spec, cls, config)
  if type(cls) == "function" then return cls end
  if spec.from_config then return spec.from_config(cls, config or {}) end
  if type(cls.from_config) == "function" then return cls:from_config(config or {}) end
  return cls(config or {})
end

--- resolve(id, spec): the object a `get(id)` of one kind returns.
-- spec = {who = "losses.get", kind = "loss", builtins = table, aliases = {},
--         base = BaseClass, functions = true (plain functions pass),
--         named_functions = true (builtins may be functions, as activations),
--         instantiate = true (a name gives an instance, else the class or
--         function itself), on_nil = value for nil (default nil),
--         from_config = function(cls, config) (default cls:from_config),
--         raise = function(msg)}.
-- Errors are prefixed with spec.who and raised by spec.raise (klua's
-- core.raise, which reports them at the user's line) or error().
function registry.resolve(id, spec)
  local ok, res = pcall(function()
    if id == nil then return spec.on_nil end
    local t = type(id)
    if t == "function" then
      if spec.functions then return id end
      fail(spec, "a %s must be given by name, config or object, not a function", spec.kind)
    end
    if spec.base and is_instance(id, spec.base) then return id end
    if t == "string" then
      local v = find(spec, id)
      if v == nil then
        local known = sorted_names(spec.builtins, spec.hidden)
        for k in pairs(spec.aliases or {}) do known[#known + 1] = k end
        local guess = closest(id, known)
        fail(spec, "unknown %s '%s'%s (known: %s)", spec.kind, id, guess and ("; did you mean '" .. guess .. "'?") or "",
          table.concat(sorted_names(spec.builtins, spec.hidden), ", "))
      end
      if is_class(v) and spec.instantiate ~= false then return v() end
      return v
    end
    if t == "table" then
      if is_class(id) then
        if spec.base == nil or registry.is_subclass(id, spec.base) then
          return spec.instantiate ~= false and id() or id
        end
        fail(spec, "%s is not a %s class", tostring(rawget(id, "__name")), spec.kind)
      end
      if getmetatable(id) == nil and type(id.class_name) == "string" then
        local v = find(spec, id.class_name)
        if v == nil then fail(spec, "unknown %s class '%s'", spec.kind, id.class_name) end
        return from_config(spec, v, id.config)
      end
      local mt = getmetatable(id)
      if spec.functions and mt and mt.__call then return id end
    end
    fail(spec, "could not interpret %s identifier: %s", spec.kind, tostring(id))
  end)
  if ok then return res end
  if type(res) == "table" and res.klua_registry_error then
    if spec.raise then spec.raise(res.klua_registry_error) end
    error(res.klua_registry_error, 2)
  end
  error(res, 0)
end

return registry
