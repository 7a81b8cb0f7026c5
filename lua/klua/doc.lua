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

--- get(obj): the entry registered for obj (or a dotted name), or for an
-- instance its class's, walking the metatable / super chain; nil if none.
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

-- Doc comments. A `---` line starts an entry and the `--` lines after it
-- continue it; "--- name(args): text" (or "--- Class{arg=default, ...}: text"
-- for a constructor taking a keyword table) gives the signature. An entry is
-- found right above a function's definition, or anywhere in the file that
-- defines it by its name: functions made in a loop, and classes made by a
-- factory, are documented by a list of such lines.
local file_lines = {}
local function source_lines(path)
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
  return lines or nil
end

local function is_comment(l) return l ~= nil and l:match("^%s*%-%-") ~= nil and not l:match("^%s*%-%-%[%[") end
local function is_doc_start(l) return l ~= nil and l:match("^%s*%-%-%-") ~= nil and not l:match("^%s*%-%-%-%-") end

-- The signature and text of the comment lines first..last.
local function parse_block(lines, first, last)
  local block = {}
  for i = first, last do block[#block + 1] = (lines[i]:gsub("^%s*%-%-%-?%s?", "")) end
  local text = table.concat(block, "\n")
  -- name(args), name{args}, name{args}(args), then "(also ...)" and
  -- "-> result"; the text follows a ":" or "—", or starts on the next line
  local sig, rest = text:match("^([%w_%.:]+%b{}%b())(.*)$")
  if not sig then sig, rest = text:match("^([%w_%.:]+%b())(.*)$") end
  if not sig then sig, rest = text:match("^([%w_%.:]+%b{})(.*)$") end
  if sig then
    local also, r = rest:match("^[ \t]*(%b())(.*)$")
    if also and not also:find("\n") and (also:match("^%(also ") or r:match("^[ \t]*:")) then
      sig, rest = sig .. " " .. also, r
    end
    -- "-> result" up to a ": " or " — " on its line, or to the line's end
    local line, after = rest:match("^[ \t]*%->[ \t]*([^\n]*)(.*)$")
    if line then
      local result, tail = line:match("^(.-)%s*(: .*)$")
      if not result then result, tail = line:match("^(.-)%s*(— .*)$") end
      sig = sig .. " -> " .. (result or line)
      rest = (tail or "") .. after
    end
    local body = rest:match("^[ \t]*:[ \t]*(.*)$") or rest:match("^[ \t]*—[ \t]*(.*)$")
      or rest:match("^[ \t]*\n(.*)$")
    if body and body:match("%S") then
      return { signature = sig, text = body:match("^%s*(.-)%s*$"), from_comments = true }
    end
    if body == nil and rest:match("^[ \t]*$") then
      return { signature = sig, text = "", from_comments = true }
    end
  end
  return { text = text, from_comments = true }
end

-- The entry starting at line i: up to the next `---` line or the first line
-- that is not a comment.
local function entry_at(lines, i)
  local last = i
  while is_comment(lines[last + 1]) and not is_doc_start(lines[last + 1]) do last = last + 1 end
  return parse_block(lines, i, last)
end

local function source_path(f)
  local info = type(f) == "function" and debug.getinfo(f, "S")
  local path = info and info.source and info.source:match("^@(.*)$")
  return path, info and info.linedefined or 0
end

local function escape(s) return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end

--- comment_named(path, name): the doc entry for `name` ("matmul", "Dense") in the file at path: a `---` line
-- whose signature starts with it, alone or after a dotted or colon prefix.
function M.comment_named(path, name)
  local lines = path and source_lines(path)
  if not lines or type(name) ~= "string" or name == "" then return nil end
  local pat = "^%s*%-%-%-%s*([%w_%.:]-)" .. escape(name) .. "%s*[%(%{]"
  local first
  for i, l in ipairs(lines) do
    local prefix = l:match(pat)
    if prefix and (prefix == "" or prefix:match("[%.:]$")) and not l:match("^%s*%-%-%-%-") then
      local e = entry_at(lines, i)
      if e.signature then return e end -- else a line naming several: look on
      first = first or e
    end
  end
  return first
end

--- from_comments(f, name): a function's doc comment: the entry right above its definition (the
-- nearest `---` line among the comment lines there), else one for `name` in
-- its file. The fallback when nothing was registered.
function M.from_comments(f, name)
  if type(f) ~= "function" then return nil end
  local path, linedefined = source_path(f)
  local lines = path and source_lines(path)
  if not lines then return nil end
  if linedefined >= 2 then
    local i = linedefined - 1
    while i >= 1 and is_comment(lines[i]) and not is_doc_start(lines[i]) and linedefined - i < 20 do i = i - 1 end
    if i >= 1 and is_doc_start(lines[i]) then
      local e = parse_block(lines, i, linedefined - 1)
      local documented = e.signature and e.signature:match("([%w_]+)%s*[%(%{]")
      if not (name and documented and documented ~= name) then return e end
      -- it documents another name: functions made in a loop below a list of
      -- doc lines, a class's doc above a method made in its file
      -- (Merge.define("Add", function ...)); an alias (ops.dot = ops.matmul)
      -- keeps it when no line names it
      local named = M.comment_named(path, name)
      if named then return named end
      if not (documented:match("^%u") and not name:match("^%u")) then return e end
    end
  end
  if name then return M.comment_named(path, name) end
  return nil
end

--- is_class(v): true for a class made by klua.class (not an instance).
local function is_class(v)
  return type(v) == "table" and rawget(v, "__class") == true
end
M.is_class = is_class

-- A function's parameters say whether it is a method (t:name) or not.
local function is_method(f)
  return type(f) == "function" and debug.getinfo(f, "u").nparams > 0 and debug.getlocal(f, 1) == "self"
end

--- class_entry(cls, modname): a class's entry: registered, else the `--- Name{...}: text` (or
-- `Name(...)`) line in a file that defines it: its __init's, its own
-- methods', or the module's that exports it (`modname`).
-- The files that define cls: its __init's, its own methods', the module's.
local function class_paths(cls, modname)
  local paths, seen = {}, {}
  local function add(path)
    if path and not seen[path] then seen[path] = true paths[#paths + 1] = path end
  end
  local init = rawget(cls, "__init")
  if type(init) == "function" then add((source_path(init))) end
  local own = {}
  -- (metamethods are copied down from the parent class: not where it is defined)
  for k, v in pairs(cls) do
    if type(v) == "function" and type(k) == "string" and k:sub(1, 2) ~= "__" then own[#own + 1] = k end
  end
  table.sort(own)
  for _, k in ipairs(own) do add((source_path(rawget(cls, k)))) end
  if modname then add(package.searchpath(modname, package.path)) end
  return paths
end

-- A value as it is written in a signature: 0.001, "fan_in", true, {}.
local function literal(v)
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) == "table" then return next(v) == nil and "{}" or "{...}" end
  if type(v) == "number" and v % 1 == 0 and math.abs(v) < 1e15 then return ("%d"):format(v) end
  return tostring(v)
end

-- What a file's first line says after "— " (with the comment lines that
-- continue it): the description of the class a file defines.
local function file_header(path)
  local lines = path and source_lines(path)
  if not lines or not lines[1] then return nil end
  local text = lines[1]:match("^%-%-%s*%S+%s+—%s+(.*)$")
  if not text then return nil end
  local i = 2
  while lines[i] and lines[i]:match("^%-%-%s?%S") and #text < 400 do
    text = text .. "\n" .. lines[i]:gsub("^%-%-%s?", "")
    i = i + 1
  end
  return text
end

-- A class that declares its constructor's keyword arguments with their
-- defaults in a table (an optimizer's `hyper`): the signature comes from
-- there, the text from its file's first lines. `...` stands for the base
-- class's arguments.
local function declared_entry(cls, paths)
  local hyper = rawget(cls, "hyper")
  if type(hyper) ~= "table" then return nil end
  local keys = {}
  for k in pairs(hyper) do if type(k) == "string" then keys[#keys + 1] = k end end
  table.sort(keys, function(a, b)
    if (a == "learning_rate") ~= (b == "learning_rate") then return a == "learning_rate" end
    return a < b
  end)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = k .. "=" .. literal(hyper[k]) end
  parts[#parts + 1] = "..."
  local text
  for _, path in ipairs(paths) do
    text = file_header(path)
    if text then break end
  end
  if not text then return nil end
  return { signature = rawget(cls, "__name") .. "{" .. table.concat(parts, ", ") .. "}", text = text, declared = true }
end

function M.class_entry(cls, modname)
  if not is_class(cls) then return nil end
  if by_obj[cls] then return by_obj[cls] end
  local cname = rawget(cls, "__name")
  if type(cname) ~= "string" then return nil end
  local paths = class_paths(cls, modname)
  for _, path in ipairs(paths) do
    local e = M.comment_named(path, cname)
    if e then return e end
  end
  return declared_entry(cls, paths)
end

--- method_entry(cls, name): the doc entry of a method `name` of cls: its own, else that of the
-- method it overrides (Dense:call is documented by Layer:call).
function M.method_entry(cls, name)
  local cur, depth = cls, 0
  while type(cur) == "table" and depth < 32 do
    local f = rawget(cur, name)
    if type(f) == "function" then
      local e = M.get(f) or M.from_comments(f, name)
      if e then return e end
    end
    cur, depth = rawget(cur, "super"), depth + 1
  end
  -- a method replaced by a wrapper made elsewhere: its doc line beside the
  -- class's other methods ("--- Model:save(path): ...")
  cur, depth = cls, 0
  while is_class(cur) and depth < 32 do
    for _, path in ipairs(class_paths(cur)) do
      local e = M.comment_named(path, name)
      if e and e.signature then return e end
    end
    cur, depth = rawget(cur, "super"), depth + 1
  end
  return nil
end

--- entry(v, name): the entry help() shows for v: registered, from comments, a class's, or for
-- an instance its class's. `name` is the dotted name it was reached by.
function M.entry(v, name)
  if v == nil then return nil end
  local e = M.get(v)
  if e then return e end
  local tail = type(name) == "string" and name:match("([%w_]+)$") or nil
  if type(v) == "function" then
    e = M.from_comments(v, tail)
    if e then return e end
    local owner = type(name) == "string" and name:match("^(.+)[%.:][%w_]+$")
    local t = owner and (name:sub(1, 5) == "klua." and M.resolve_in(package.loaded["klua"] or {}, owner:sub(6))
      or M.resolve(owner))
    -- a method reached through its class: klua.layers.Dense.call
    if is_class(t) and tail then return M.method_entry(t, tail) end
    -- a function made elsewhere and documented in the module that exports it
    -- (klua.datasets.mnist.load_data = datasets.idx_loader("mnist"))
    if owner and tail and package.loaded[owner] == t then
      e = M.comment_named(package.searchpath(owner, package.path), tail)
      if e and e.signature then return e end
    end
    -- an alias (klua.losses.MSE): the doc line of another name of it there
    if type(t) == "table" then
      local keys = {}
      for k, val in pairs(t) do if val == v and type(k) == "string" and k ~= tail then keys[#keys + 1] = k end end
      table.sort(keys)
      for _, k in ipairs(keys) do
        e = M.from_comments(v, k)
        if e and e.signature then return e end
      end
    end
    return nil
  end
  if is_class(v) then
    local modname = type(name) == "string" and name:match("^(.+)%.[%w_]+$") or nil
    return M.class_entry(v, modname)
  end
  if type(v) == "table" then
    local cls = getmetatable(v)
    if is_class(cls) then return M.class_entry(cls) end
  end
  return nil
end

--- name_of(obj): the dotted name of obj inside the loaded klua tree ("klua.layers.Dense"),
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

--- is_dotted_name(s): true for "a.b.c" or "a.b:c": identifiers joined by dots (and a last colon).
function M.is_dotted_name(s)
  return type(s) == "string" and s:match("^[%a_][%w_%.:]*$") ~= nil
     and not s:find("[%.:][%.:]") and not s:find("[%.:]$") and not s:find("[%.:]%d")
     and not s:find(":.*[%.:]")
end

--- resolve(name) -> value, found: doc.resolve("klua.layers.Dense") is the class and true; nil, false
-- when there is none. Walks the globals (so lazy modules load); a registered name that is not a value
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

--- members(value, prefix=""): { name = value, ... }: fields and methods
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

--- signature_args(signature): the keyword arguments a signature lists: "Dense{units, activation=nil, ...}"
-- -> {{"units"}, {"activation", "nil"}, {"..."}}; nil when it has no {...}.
local function split_top(body)
  local items, depth, cur = {}, 0, {}
  local function flush()
    local item = table.concat(cur):match("^%s*(.-)%s*$")
    if item ~= "" then items[#items + 1] = item end
    cur = {}
  end
  for c in body:gmatch(".") do
    if c == "{" or c == "(" or c == "[" then depth = depth + 1
    elseif c == "}" or c == ")" or c == "]" then depth = depth - 1 end
    if c == "," and depth == 0 then flush() else cur[#cur + 1] = c end
  end
  flush()
  return items
end

local function add_args(out, body)
  for _, item in ipairs(split_top(body)) do
    local k, d = item:match("^([%a_][%w_]*)%s*=%s*(.-)$")
    out[#out + 1] = k and { k, d } or { item }
  end
end

function M.signature_args(sig)
  if type(sig) ~= "string" then return nil end
  local body = sig:match("^[%w_%.:]+(%b{})")
  local out = {}
  if body then
    add_args(out, body:sub(2, -2))
    return out
  end
  -- Name(first, second, {key=default, ...}): positional arguments, then a keyword table
  body = sig:match("^[%w_%.:]+(%b())")
  if not body then return nil end
  local items = split_top(body:sub(2, -2))
  local last = items[#items]
  if not (last and last:match("^{.*}$")) then return nil end
  for i = 1, #items - 1 do out[#out + 1] = { items[i] } end
  add_args(out, last:sub(2, -2))
  return out
end

-- The first sentence of a doc text, on one line, at most `max` characters.
local function first_sentence(text, max)
  max = max or 90
  local s = (text or ""):gsub("%s*\n%s*", " ")
  s = s:match("^(.-%.)%s") or s:match("^(.-%.)$") or s
  if #s > max then s = s:sub(1, max - 3):gsub("%s+%S*$", "") .. "..." end
  return s
end

-- "Arguments:" from a class's signature; a closing `...` names the base
-- class whose arguments it also takes.
local function arguments_block(cls, entry)
  local args = entry and M.signature_args(entry.signature)
  if not args or #args == 0 then return nil end
  local lines, more = {}, false
  for _, a in ipairs(args) do
    if a[1] == "..." then more = true
    elseif a[2] then lines[#lines + 1] = ("  %-28s default %s"):format(a[1], a[2])
    else lines[#lines + 1] = ("  %-28s required"):format(a[1]) end
  end
  if more then
    local super = rawget(cls, "super")
    while is_class(super) do
      local se = M.class_entry(super)
      local sargs = se and M.signature_args(se.signature)
      if sargs then
        local names, listed = {}, {}
        for _, a in ipairs(args) do listed[a[1]] = true end
        for _, a in ipairs(sargs) do if a[1] ~= "..." and not listed[a[1]] then names[#names + 1] = a[1] end end
        local sname = M.name_of(super) or rawget(super, "__name")
        if #names > 0 then
          lines[#lines + 1] = wrap_list(names, "    ", 78):gsub("^    ", "  and those of " .. sname .. ": ", 1)
        end
        break
      end
      super = rawget(super, "super")
    end
  end
  if #lines == 0 then return nil end
  return "Arguments:\n" .. table.concat(lines, "\n")
end

-- The methods of a class (called as obj:name(...)), own and inherited, each
-- with the first line of its doc; class functions (Cls.name) of the class
-- itself under their own heading.
local function class_methods_block(cls)
  local methods, functions = {}, {}
  for k, f in pairs(M.class_methods(cls)) do
    local e = not is_method(f) and M.method_entry(cls, k)
    if is_method(f) or (e and e.signature and e.signature:find(":" .. k .. "(", 1, true)) then
      methods[#methods + 1] = k   -- (a no-op hook takes no parameters but is called as obj:hook(...))
    elseif rawget(cls, k) == f and k ~= "from_config" and k ~= "extend" then functions[#functions + 1] = k end
  end
  table.sort(methods)
  table.sort(functions)
  local out = {}
  local function rows(title, names, sep)
    if #names == 0 then return end
    local lines, shown = {}, {}
    for _, k in ipairs(names) do
      local f = cls[k]
      if not shown[f] then -- an alias (apply = apply_gradients) once
        shown[f] = true
        local e = M.method_entry(cls, k)
        local sig = e and e.signature and (e.signature:match("([%w_]+%b())$") or e.signature:match("([%w_]+%b{})$"))
        if not sig or sig:match("^[%w_]+") ~= k then sig = k .. (sig and sig:match("^[%w_]+(.*)$") or "()") end
        if #sig > 30 then sig = sig:match("^[%w_]+") .. "(...)" end
        lines[#lines + 1] = ("  %-30s %s"):format(sig, e and first_sentence(e.text, 64) or "")
      end
    end
    out[#out + 1] = title .. ":\n" .. table.concat(lines, "\n")
  end
  rows("Methods", methods)
  rows("Class functions (" .. tostring(rawget(cls, "__name")) .. ".name)", functions)
  if #out == 0 then return nil end
  return table.concat(out, "\n\n")
end

--- describe(value, {color=false, name=nil}): the text help() prints for a value.
function M.describe(v, opts)
  opts = opts or {}
  local pretty = require("klua.pretty")
  local color = opts.color
  local function bold(s) return pretty.paint(color, "class", s) end
  local out = {}
  local entry = M.entry(v, opts.name)
  local tail = entry and entry.signature and entry.signature:match("([%w_]+)%s*[%(%{]")
  local name = opts.name or (entry and entry.name) or (type(v) ~= "string" and M.name_of(v, tail)) or nil
  if entry then
    local sig = entry.signature
    if not sig then
      sig = (type(v) == "function" and name) and (function_signature(v, name)) or name or "?"
    end
    if name and sig:sub(1, 1) == "(" then sig = name .. sig end
    -- "matmul(a, b)" from a comment reads better as "klua.ops.matmul(a, b)"; an
    -- alias (klua.ops.dot) shows the name it stands for in the same module
    local last = name and name:match("[^%.:]+$")
    if last and (sig:sub(1, #last + 1) == last .. "(" or sig:sub(1, #last + 1) == last .. "{") then
      sig = name .. sig:sub(#last + 1)
    elseif name and name:find(".", 1, true) and sig:match("^[%w_]+%s*[%(%{]") then
      sig = name:match("^(.*%.)") .. sig
    end
    out[#out + 1] = bold(sig)
    out[#out + 1] = ""
    out[#out + 1] = "  " .. entry.text:gsub("\n", "\n  ")
    if entry.example then
      out[#out + 1] = ""
      out[#out + 1] = "Example:"
      out[#out + 1] = "  " .. entry.example:gsub("\n", "\n  ")
    end
  end
  local function section(s)
    if s then
      if #out > 0 then out[#out + 1] = "" end
      out[#out + 1] = s
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
    section(methods_block(v, "Methods (t:name(...))"))
  elseif is_class(v) then
    if not entry then out[#out + 1] = bold((name or tostring(rawget(v, "__name"))) .. " (class)") end
    section(arguments_block(v, entry))
    section(class_methods_block(v))
  elseif tv == "table" and is_class(getmetatable(v)) then
    if pretty.is_layer(v) then section(pretty.format(v, { color = color })) end
    section(class_methods_block(getmetatable(v)))
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
        local child = name and (name .. "." .. k) or nil
        local ok, e = pcall(M.entry, members[k], child)
        if ok and e then documented[#documented + 1] = ("  %-24s %s"):format(k, first_line(e.text))
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

--- entries(): the registered entries, sorted by name, as {name=, entry=}.
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

--- markdown(): the API reference as Markdown: every public function and class with its signature and
-- description, grouped by module (what `make api-doc` writes to doc/api.md).
function M.markdown()
  -- the first sentence or paragraph of a text (later lines are details, in help())
  local function summary(text)
    local lines = {}
    for l in (text .. "\n"):gmatch("([^\n]*)\n") do
      l = l:match("^%s*(.-)%s*$")
      if l ~= "" then
        lines[#lines + 1] = l
        if l:match("%.$") or #lines >= 4 then break end
      end
    end
    return table.concat(lines, " ")
  end
  -- "klua.ops.matmul(a, b)" rather than the comment's "matmul(a, b)"
  local function full_signature(name, sig)
    sig = sig:gsub("%s*\n%s*", " ")
    local last = name:match("[^%.:]+$")
    local head = sig:match("^[%w_%.:]+")
    if head and head:match("[%w_]+$") == last then return name .. sig:sub(#head + 1) end
    return sig
  end
  local out = {
    "# klua API reference", "",
    "Generated by `make api-doc` from the `--- name(args): text` doc comments in `lua/klua`, the text",
    "`help(name)` shows in the REPL (with more detail); `tests/help_spec.lua` fails when a public function,",
    "class or method has none, or when this file is out of date. Axes and positions are 1-based; `{...}` is a",
    "table of keyword arguments with their defaults (`...`: also the base class's). Every class also has",
    "`Class:extend(name)` (a subclass) and `Class.from_config(config)`.",
  }
  local module
  for _, it in ipairs(M.public_api()) do
    local e = M.api_entry(it)
    if it.kind ~= "method" then
      local mod = it.name:match("^(.*)%.[%w_]+$") or "klua"
      if mod ~= module then
        module = mod
        out[#out + 1] = ""
        out[#out + 1] = "## " .. mod
        out[#out + 1] = ""
      end
    elseif it.name:match("^Tensor:") and module ~= "Tensor" then
      module = "Tensor"
      out[#out + 1] = ""
      out[#out + 1] = "## Tensor methods (`t:name(...)`; every `klua.ops` function is one too)"
      out[#out + 1] = ""
    end
    if e and e.signature then
      if it.kind == "class" then
        out[#out + 1] = ""
        out[#out + 1] = "### " .. it.name
        out[#out + 1] = ""
        out[#out + 1] = "`" .. full_signature(it.name, e.signature) .. "`: " .. summary(e.text)
        out[#out + 1] = ""
      elseif it.kind == "method" and it.owner then
        -- a method with its own doc (an override documented by its base is not repeated)
        local own = M.get(it.value) or M.from_comments(it.value, it.key)
        local super = rawget(it.owner, "super")
        local base = is_class(super) and M.method_entry(super, it.key)
        if it.key ~= "extend" and it.key ~= "from_config" and own and own.signature
          and own.signature:match("([%w_]+)%s*[%(%{]") == it.key and not (base and base.text == own.text) then
          local short = it.name:match("([%w_]+[%.:][%w_]+)$")
          local args = (own.signature:match("[%w_]+%s*([%(%{].*)$") or ""):gsub("%s*\n%s*", " ")
          out[#out + 1] = "- `" .. short .. args .. "`: " .. summary(e.text)
        end
      else
        out[#out + 1] = "- `" .. full_signature(it.name, e.signature) .. "`: " .. summary(e.text)
      end
    end
  end
  return (table.concat(out, "\n"):gsub("\n\n\n+", "\n\n")) .. "\n"
end

--------------------------------------------------------------------------------
-- The public API: what help() must answer for, listed for the API reference
-- and checked by tests/help_spec.lua.

-- The modules whose functions and classes are public, in this order (a
-- function exported under several names is listed under the first).
M.public_modules = {
  "klua", "klua.ops", "klua.random", "klua.layers", "klua.activations", "klua.initializers",
  "klua.regularizers", "klua.constraints", "klua.losses", "klua.metrics", "klua.optimizers",
  "klua.optimizers.schedules", "klua.callbacks", "klua.models", "klua.data", "klua.datasets",
  "klua.image", "klua.plot", "klua.saving", "klua.utils", "klua.doc",
}

--- is_public_name(k): true for a name that is not internal (a letter first: no _ or metamethod).
local function is_public_name(k)
  return type(k) == "string" and k:match("^[%a][%w_]*$") ~= nil
end
M.is_public_name = is_public_name

-- The public names of a module table, including those it loads lazily.
local function module_keys(t)
  local keys, seen = {}, {}
  local function add(k)
    if is_public_name(k) and not seen[k] then seen[k] = true keys[#keys + 1] = k end
  end
  for k in pairs(t) do add(k) end
  for k in pairs(lazy_names(t)) do add(k) end
  table.sort(keys)
  return keys
end


--- class_methods(cls, own_only=false): the public methods of cls (its own and inherited): name -> function.
function M.class_methods(cls, own_only)
  local out, cur, depth = {}, cls, 0
  while is_class(cur) and depth < 32 do
    for k, v in pairs(cur) do
      if type(v) == "function" and is_public_name(k) and out[k] == nil then out[k] = v end
    end
    if own_only then break end
    cur, depth = rawget(cur, "super"), depth + 1
  end
  return out
end

--- public_api(): every public function, class and method as a list of
-- {name=, value=, kind="function"|"class"|"method", owner=}
-- in module order; methods are a class's own ones (inherited ones are listed
-- under the class that defines them) and the tensor methods ("Tensor:sum").
function M.public_api()
  -- the package root is assembled by init.lua; modules never require it
  local root = package.loaded["klua"]
  if type(root) ~= "table" then error("doc.public_api: require(\"klua\") first", 2) end
  local list, seen_value, seen_module = {}, {}, {}
  local function add(item)
    if seen_value[item.value] then return end
    seen_value[item.value] = item.name
    list[#list + 1] = item
  end
  local function add_class(cls, name)
    if seen_value[cls] then return end
    add { name = name, value = cls, kind = "class" }
    local own = M.class_methods(cls, true)
    local keys = {}
    for k in pairs(own) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local f = own[k]
      local sep = is_method(f) and ":" or "."
      -- a method shared with another class is documented once
      if not seen_value[f] then add { name = name .. sep .. k, value = f, kind = "method", owner = cls, key = k } end
    end
  end
  local modules, order = {}, {}
  for _, m in ipairs(M.public_modules) do
    local t = m == "klua" and root or M.resolve_in(root, m:sub(6))
    if type(t) == "table" then modules[m] = t seen_module[t] = true order[#order + 1] = m end
  end
  -- and their own submodules (klua.datasets.mnist): a table loaded as module m.k
  local i = 1
  while order[i] do
    local m = order[i]
    if m ~= "klua" then
      for _, k in ipairs(module_keys(modules[m])) do
        local v = safe_index(modules[m], k)
        local name = m .. "." .. k
        if type(v) == "table" and not is_class(v) and not seen_module[v] and package.loaded[name] == v then
          modules[name], seen_module[v] = v, true
          table.insert(order, i + 1, name)
        end
      end
    end
    i = i + 1
  end
  for _, m in ipairs(order) do
    local t = modules[m]
    if t then
      -- a value under the name its doc gives it first: a class's own name
      -- (Conv2D before its alias Convolution2D), a function's documented one
      -- (matmul before dot)
      local pairs_ = {}
      for _, k in ipairs(module_keys(t)) do
        local v = safe_index(t, k)
        local cname = is_class(v) and rawget(v, "__name")
        local alias = cname and cname ~= k and safe_index(t, cname) == v
        if type(v) == "function" then
          local e = M.get(v) or M.from_comments(v, k)
          local documented = e and e.signature and e.signature:match("([%w_]+)%s*[%(%{]")
          alias = documented ~= nil and documented ~= k and safe_index(t, documented) == v
        end
        pairs_[#pairs_ + 1] = { k = k, v = v, alias = alias and 1 or 0 }
      end
      table.sort(pairs_, function(a, b)
        if a.alias ~= b.alias then return a.alias < b.alias end
        return a.k < b.k
      end)
      for _, kv in ipairs(pairs_) do
        local k, v = kv.k, kv.v
        local name = m .. "." .. k
        if type(v) == "function" then add { name = name, value = v, kind = "function", key = k }
        elseif is_class(v) then add_class(v, name) end
      end
    end
  end
  local tm = package.loaded["klua.tensor"]
  local methods = type(tm) == "table" and rawget(tm, "methods") or {}
  local keys = {}
  for k, f in pairs(methods) do if is_public_name(k) and type(f) == "function" then keys[#keys + 1] = k end end
  table.sort(keys)
  for _, k in ipairs(keys) do add { name = "Tensor:" .. k, value = methods[k], kind = "method", key = k } end
  return list
end

--- resolve_in(t, path): the value at a dotted path under t ("layers.Dense" in klua).
function M.resolve_in(t, path)
  for part in path:gmatch("[^%.]+") do
    if type(t) ~= "table" then return nil end
    t = safe_index(t, part)
  end
  return t
end

--- api_entry(item): the doc entry of an item of public_api() (a method's may come from the one it overrides).
function M.api_entry(item)
  if item.kind == "class" or item.kind == "function" then return M.entry(item.value, item.name) end
  local e = M.get(item.value) or M.from_comments(item.value, item.key)
  if e then return e end
  if item.owner then return M.method_entry(item.owner, item.key) end
  return nil
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
