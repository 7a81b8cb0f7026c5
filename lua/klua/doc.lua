-- doc.lua — the doc-string registry behind help(obj), ?name in the REPL and
-- the README's API section. Doc strings live next to the definitions:
--
--   local doc = require("klua.doc")
--   doc.register(Dense, {
--     name = "klua.layers.Dense",                       -- optional, else found
--     signature = "klua.layers.Dense(units, {activation=nil, use_bias=true, ...})",
--     text = "Densely-connected layer: output = activation(x · kernel + bias).",
--     example = "local d = klua.layers.Dense(4)",       -- optional
--   })
--
-- Also: what can be called on a value (doc.members), used by help() and by
-- the REPL's tab completion.
local M = {}

local by_obj = setmetatable({}, { __mode = "k" })
local by_name = {}

local function safe_index(obj, key)
  local ok, v = pcall(function() return obj[key] end)
  if ok then return v end
end

-- doc.register(obj, {signature=, text=, name=, example=}) -> obj
-- obj may also be a dotted name string for things that are not values.
function M.register(obj, spec)
  if type(spec) ~= "table" or type(spec.text) ~= "string" then
    error("doc.register: expected {signature=..., text=...}. Received: " .. tostring(spec), 2)
  end
  if obj == nil then error("doc.register: the documented object is nil (" ..
    tostring(spec.name or spec.signature) .. ")", 2) end
  if type(obj) == "string" then
    spec.name = spec.name or obj
    by_name[obj] = spec
  else
    by_obj[obj] = spec
    if spec.name then by_name[spec.name] = spec end
  end
  return obj
end

-- The entry for obj: its own, or (for an instance) its class's, walking the
-- metatable / super chain.
function M.get(obj)
  if obj == nil then return nil end
  if type(obj) == "string" then return by_name[obj] end
  local ok, e = pcall(function() return by_obj[obj] end)
  if ok and e then return e end
  if type(obj) == "table" then
    local seen, cur = { [obj] = true }, obj
    for _ = 1, 16 do
      cur = getmetatable(cur)
      if type(cur) ~= "table" or seen[cur] then break end
      seen[cur] = true
      if by_obj[cur] then return by_obj[cur] end
    end
  end
  return nil
end

-- A function's LDoc comment: the `---` block right above its definition,
-- "--- name(args): text" giving the signature. The fallback when nothing was
-- registered, so the library's existing comments answer help() too.
local file_lines = {}
function M.from_comments(f)
  if type(f) ~= "function" then return nil end
  local info = debug.getinfo(f, "S")
  local path = info and info.source and info.source:match("^@(.*)$")
  if not path or (info.linedefined or 0) < 2 then return nil end
  local lines = file_lines[path]
  if lines == nil then
    lines = false
    local fh = io.open(path)
    if fh then
      lines = {}
      for l in fh:lines() do lines[#lines + 1] = l end
      fh:close()
    end
    file_lines[path] = lines
  end
  if not lines then return nil end
  local block, i = {}, info.linedefined - 1
  while i >= 1 and #block < 20 and lines[i]:match("^%s*%-%-") do
    table.insert(block, 1, lines[i])
    i = i - 1
  end
  if #block == 0 or not block[1]:match("^%s*%-%-%-") then return nil end
  for k, l in ipairs(block) do block[k] = l:gsub("^%s*%-%-%-?%s?", "") end
  local text = table.concat(block, "\n")
  local sig, rest = text:match("^([%w_%.:]+%b())%s*:%s*(.*)$")
  return { signature = sig, text = sig and rest or text, from_comments = true }
end

-- The dotted name of obj inside the loaded klua tree ("klua.layers.Dense"),
-- without triggering lazy loads.
function M.name_of(obj, tail)
  local root = package.loaded["klua"]
  if type(root) ~= "table" then return nil end
  if obj == root then return "klua" end
  local first
  local queue, seen, head = { { root, "klua", 0 } }, { [root] = true }, 1
  while queue[head] do
    local t, name, depth = queue[head][1], queue[head][2], queue[head][3]
    head = head + 1
    local keys = {}
    for k in pairs(t) do if type(k) == "string" then keys[#keys + 1] = k end end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v = rawget(t, k)
      if v == obj then
        -- an alias (klua.ops.dot == klua.ops.matmul): prefer the name asked for
        if tail == nil or k == tail then return name .. "." .. k end
        first = first or (name .. "." .. k)
      end
      if type(v) == "table" and not seen[v] and depth < 3 and not k:match("^_") then
        seen[v] = true
        queue[#queue + 1] = { v, name .. "." .. k, depth + 1 }
      end
    end
  end
  return first
end

-- "a.b.c" or "a.b:c": identifiers joined by dots (and a last colon).
function M.is_dotted_name(s)
  return type(s) == "string" and s:match("^[%a_][%w_%.:]*$") ~= nil
     and not s:find("[%.:][%.:]") and not s:find("[%.:]$") and not s:find("[%.:]%d")
     and not s:find(":.*[%.:]")
end

-- doc.resolve("klua.layers.Dense") -> value, true | nil, false. Walks the
-- globals (so lazy modules load); a registered name that is not a value
-- resolves to its name string.
function M.resolve(name)
  if type(name) ~= "string" then return nil, false end
  name = name:match("^%s*(.-)%s*$")
  if not M.is_dotted_name(name) then
    return by_name[name] and name or nil, by_name[name] ~= nil
  end
  local cur, found = _G, true
  for part in name:gmatch("[%a_][%w_]*") do
    if cur == nil then found = false break end
    cur = safe_index(cur, part)
  end
  if found and cur ~= nil then return cur, true end
  if by_name[name] then return name, true end
  return nil, false
end

-- Submodules of a module table that its lazy loader would provide, found as
-- files on package.path (klua.losses before anyone has touched it).
local dir_cache = {}
local function list_dir(path)
  if dir_cache[path] then return dir_cache[path] end
  -- klua.utils loads libklua; required here, not at the top, so that the REPL
  -- (which loads this module) still starts when the library cannot load.
  local ok, names = pcall(function() return require("klua.utils").list_dir(path) end)
  names = ok and names or {}
  dir_cache[path] = names
  return names
end

local function submodule_names(modname)
  local out = {}
  local rel = modname:gsub("%.", "/")
  for template in package.path:gmatch("[^;]+") do
    local dir = template:match("^(.*)/%?%.lua$")
    if dir then
      for _, f in ipairs(list_dir(dir .. "/" .. rel)) do
        local base = f:match("^([%a_][%w_]*)%.lua$")
        if base and base ~= "init" then out[base] = true
        elseif f:match("^[%a_][%w_]*$") then out[f] = true end
      end
    end
  end
  return out
end

local function module_name(t)
  for name, m in pairs(package.loaded) do
    if m == t and type(name) == "string" then return name end
  end
end

-- Where tensor methods come from: the tensor module's tables and klua.ops
-- (every klua.ops.X is t:X). Candidates are kept only if t[name] is a function.
local function tensor_candidates()
  local cands = {}
  local function add(t)
    if type(t) ~= "table" then return end
    for k in pairs(t) do if type(k) == "string" then cands[k] = true end end
  end
  local k = package.loaded["klua"]
  local tm = package.loaded["klua.tensor"]
  add(tm)
  if type(tm) == "table" then
    for _, f in ipairs{ "methods", "Tensor", "mt", "metatable", "__index" } do
      local v = rawget(tm, f)
      add(v)
      if type(v) == "table" then add(rawget(v, "__index")) end
    end
  end
  if type(k) == "table" then
    add(rawget(k, "Tensor"))
    add(safe_index(k, "ops"))
  end
  add(package.loaded["klua.ops"])
  return cands
end

-- Keras properties that layers and models compute in __index (not enumerable).
local properties = { "weights", "trainable_weights", "non_trainable_weights", "variables",
  "trainable_variables", "non_trainable_variables", "losses", "trainable", "layers" }

-- Names a lazily loading table provides before they are touched: the keys of
-- its raw `files` table (klua.layers), of its metatable's `__names`, and for a
-- module table the files beside it on package.path (klua.losses).
local function lazy_names(v)
  local out = {}
  local mt = getmetatable(v)
  if type(mt) ~= "table" or type(rawget(mt, "__index")) ~= "function" then return out end
  local files = rawget(v, "files")
  if type(files) == "table" then
    for k in pairs(files) do if type(k) == "string" then out[k] = true end end
  end
  local listed = rawget(mt, "__names")
  if type(listed) == "function" then
    local ok, r = pcall(listed, v)
    listed = ok and r or nil
  end
  if type(listed) == "table" then
    for k, val in pairs(listed) do
      if type(k) == "string" then out[k] = true elseif type(val) == "string" then out[val] = true end
    end
  end
  local mname = module_name(v)
  if mname then
    for sub in pairs(submodule_names(mname)) do out[sub] = true end
  end
  return out
end

-- doc.members(value [, prefix]) -> { name = value, ... }: fields and methods
-- of a table (through its __index chain), a tensor, or a string. Lazily
-- loaded names are included when they resolve; with a prefix, only matching
-- ones are tried (so Tab does not load every module).
function M.members(v, prefix)
  prefix = prefix or ""
  local names = {}
  local function add_table(t, seen)
    if type(t) ~= "table" or seen[t] then return end
    seen[t] = true
    for k, val in pairs(t) do
      if type(k) == "string" and not k:match("^__") and names[k] == nil then names[k] = val end
    end
    local mt = getmetatable(t)
    if type(mt) == "table" then
      local idx = rawget(mt, "__index")
      if type(idx) == "table" then add_table(idx, seen)
      elseif type(idx) == "function" and rawget(t, "__index") == nil then
        -- an instance whose class computes properties in __index: the class
        -- table still holds the methods
        add_table(mt, seen)
        for _, p in ipairs(properties) do
          if names[p] == nil and safe_index(t, p) ~= nil then names[p] = safe_index(t, p) end
        end
      end
    end
    local super = rawget(t, "super")
    if type(super) == "table" then add_table(super, seen) end
  end
  local tv = type(v)
  if tv == "table" then
    add_table(v, {})
    for sub in pairs(lazy_names(v)) do
      if names[sub] == nil and sub:sub(1, #prefix) == prefix then
        local val = safe_index(v, sub)
        if val ~= nil then names[sub] = val end
      end
    end
  elseif tv == "string" then
    add_table(string, {})
  elseif tv == "cdata" then
    for name in pairs(tensor_candidates()) do
      if not name:match("^__") then
        local f = safe_index(v, name)
        if type(f) == "function" then names[name] = f end
      end
    end
  end
  return names
end

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

local function wrap_list(items, indent, width)
  local lines, cur = {}, indent
  for i, s in ipairs(items) do
    local piece = s .. (i < #items and ", " or "")
    if #cur + #piece > width and #cur > #indent then
      lines[#lines + 1] = cur:gsub("%s+$", "")
      cur = indent
    end
    cur = cur .. piece
  end
  if #cur > #indent then lines[#lines + 1] = cur end
  return table.concat(lines, "\n")
end

local function first_line(s)
  return (s:match("^[^\n]*"))
end

local function function_signature(f, name)
  local info = debug.getinfo(f, "Su")
  if not info or info.what == "C" then return (name or "function") .. "(...)", "builtin" end
  local params = {}
  for i = 1, info.nparams or 0 do params[i] = debug.getlocal(f, i) or ("arg" .. i) end
  if info.isvararg then params[#params + 1] = "..." end
  return (name or "function") .. "(" .. table.concat(params, ", ") .. ")",
         ("%s:%d"):format(info.short_src, info.linedefined or 0)
end

local function methods_block(v, title)
  local fns = {}
  for k, val in pairs(M.members(v)) do
    if type(val) == "function" and not k:match("^_") then fns[#fns + 1] = k end
  end
  table.sort(fns)
  if #fns == 0 then return nil end
  return title .. ":\n" .. wrap_list(fns, "  ", 78)
end

-- doc.describe(value, {color=, name=}) -> the text help() prints.
function M.describe(v, opts)
  opts = opts or {}
  local pretty = require("klua.pretty")
  local color = opts.color
  local function bold(s) return pretty.paint(color, "class", s) end
  local out = {}
  local entry = M.get(v) or M.from_comments(v)
  local tail = entry and entry.signature and entry.signature:match("([%w_]+)%(")
  local name = opts.name or (entry and entry.name) or (type(v) ~= "string" and M.name_of(v, tail)) or nil
  if entry then
    local sig = entry.signature
    if not sig then
      sig = (type(v) == "function" and name) and (function_signature(v, name)) or name or "?"
    end
    if name and sig:sub(1, 1) == "(" then sig = name .. sig end
    -- "matmul(a, b)" from a comment reads better as "klua.ops.matmul(a, b)"
    local tail = name and name:match("[^%.:]+$")
    if tail and sig:sub(1, #tail + 1) == tail .. "(" then sig = name .. sig:sub(#tail + 1) end
    out[#out + 1] = bold(sig)
    out[#out + 1] = ""
    out[#out + 1] = "  " .. entry.text:gsub("\n", "\n  ")
    if entry.example then
      out[#out + 1] = ""
      out[#out + 1] = "Example:"
      out[#out + 1] = "  " .. entry.example:gsub("\n", "\n  ")
    end
  end
  local tv = type(v)
  if tv == "function" then
    if not entry then
      local sig, where = function_signature(v, name)
      out[#out + 1] = bold(sig)
      out[#out + 1] = "  " .. (where == "builtin" and "a builtin function (no doc string)"
        or ("defined at " .. where .. " (no doc string)"))
    end
  elseif pretty.is_tensor(v) then
    if not entry then out[#out + 1] = bold("tensor " .. pretty.shape_str(v) .. " float32") end
    out[#out + 1] = methods_block(v, "Methods (t:name(...))")
  elseif pretty.is_layer(v) then
    if #out > 0 then out[#out + 1] = "" end
    out[#out + 1] = pretty.format(v, { color = color })
    out[#out + 1] = methods_block(v, "Methods")
  elseif tv == "table" then
    local members = M.members(v)
    local keys = sorted_keys(members)
    if not entry then
      out[#out + 1] = bold((name or "table") .. (module_name(v) and " (module)" or ""))
    end
    if #keys > 0 then
      if #out > 0 then out[#out + 1] = "" end
      -- documented members with their first line, the rest as a list
      local documented, rest = {}, {}
      for _, k in ipairs(keys) do
        if k:match("^_") or k == "super" then goto continue end
        local e = M.get(members[k])
        if e then documented[#documented + 1] = ("  %-20s %s"):format(k, first_line(e.text))
        else rest[#rest + 1] = k end
        ::continue::
      end
      if #documented > 0 then out[#out + 1] = table.concat(documented, "\n") end
      if #rest > 0 then out[#out + 1] = (#documented > 0 and "Also:\n" or "Members:\n")
        .. wrap_list(rest, "  ", 78) end
    end
  elseif not entry then
    if tv == "string" and opts.from_name then
      out[#out + 1] = "no help for " .. v
    else
      out[#out + 1] = bold(tv) .. ": " .. pretty.format(v, { color = color })
    end
  end
  return table.concat(out, "\n")
end

-- help(value) / help("klua.layers.Dense"): prints the doc of a value or a
-- dotted name.
function M.help(v, opts)
  opts = opts or {}
  if type(v) == "string" and (by_name[v] or (M.is_dotted_name(v) and v:find("[%.:]"))) then
    local obj, found = M.resolve(v)
    if not found then
      io.write("help: no value or doc string named ", v, "\n")
      return
    end
    opts = setmetatable({ name = v, from_name = true }, { __index = opts })
    v = obj
  end
  io.write(M.describe(v, opts), "\n")
end

-- The registered entries, sorted by name, e.g. for the README's API section.
function M.entries()
  local list = {}
  for name, e in pairs(by_name) do list[#list + 1] = { name = name, entry = e } end
  for obj, e in pairs(by_obj) do
    if not e.name then
      local n = M.name_of(obj)
      if n and not by_name[n] then list[#list + 1] = { name = n, entry = e } end
    end
  end
  table.sort(list, function(a, b) return a.name < b.name end)
  return list
end

-- Markdown for the README: one entry per documented name.
function M.markdown()
  local out = {}
  for _, it in ipairs(M.entries()) do
    local e = it.entry
    out[#out + 1] = "- `" .. (e.signature or it.name) .. "`: " .. e.text:gsub("\n", " ")
  end
  return table.concat(out, "\n") .. "\n"
end

M.register(M.register, {
  name = "klua.doc.register",
  signature = "klua.doc.register(obj, {signature=, text=, example=, name=})",
  text = "Attaches a doc string to obj (a function, class or table) for help(obj),\n"
      .. "?name in the REPL and the README's API list. Returns obj.",
  example = 'doc.register(Dense, {signature = "klua.layers.Dense(units, {...})", text = "..."})',
})
M.register(M.help, {
  name = "klua.doc.help",
  signature = "klua.doc.help(value_or_name)",
  text = "Prints the doc string of a value or of a dotted name such as \"klua.layers.Dense\";\n"
      .. "without one, the signature, where it is defined, and its methods.",
})

return M
