-- pretty.lua — how the REPL shows a value: tensors through their own
-- tostring (NumPy style), layers and models as a summary (class, name, built,
-- weight shapes, parameter count), tables nested with sorted keys, cycles
-- marked and long tables cut. Colours are opt-in (pretty.use_color decides).
-- Not a serializer: the output is for people, not for loadstring.
local M = {}

M.max_items = 50   -- entries shown per table before "... (N more)"
M.max_depth = 3    -- nesting shown before {...}
M.width = 80       -- a table that fits stays on one line
M.max_string = 2000

local ESC = {
  number = "\27[36m", string = "\27[32m", keyword = "\27[35m", dim = "\27[2m",
  class = "\27[1m", error = "\27[31m", reset = "\27[0m",
}

-- True when `fd` (default 1, stdout) is a terminal and NO_COLOR is unset
-- (https://no-color.org: any non-empty value turns colours off).
function M.use_color(fd)
  fd = fd or 1
  local nc = os.getenv("NO_COLOR")
  if nc and nc ~= "" then return false end
  local term = os.getenv("TERM")
  if term == "dumb" then return false end
  local host = package.loaded["klua.host"]
  if host then return host.isatty(fd) end
  -- required here, not at the top: klua.utils loads libklua, and the REPL
  -- (which loads this module) must start even when that fails
  local ok, r = pcall(function() return require("klua.utils").isatty(fd) end)
  return ok and r
end

-- paint(color_on, kind, text)
local function paint(on, kind, s)
  if not on then return s end
  return ESC[kind] .. s .. ESC.reset
end
M.paint = paint

local function is_identifier(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil and not ({
    ["and"]=1, ["break"]=1, ["do"]=1, ["else"]=1, ["elseif"]=1, ["end"]=1, ["false"]=1,
    ["for"]=1, ["function"]=1, ["goto"]=1, ["if"]=1, ["in"]=1, ["local"]=1, ["nil"]=1,
    ["not"]=1, ["or"]=1, ["repeat"]=1, ["return"]=1, ["then"]=1, ["true"]=1,
    ["until"]=1, ["while"]=1 })[s]
end
M.is_identifier = is_identifier

-- A readable double-quoted string literal (newlines as \n, not Lua's \<newline>).
function M.quote(s, limit)
  limit = limit or M.max_string
  local cut = ""
  if #s > limit then
    cut = ("... (%d more bytes)"):format(#s - limit)
    s = s:sub(1, limit)
  end
  local q = s:gsub('[%c"\\]', function(c)
    if c == "\n" then return "\\n" elseif c == "\t" then return "\\t"
    elseif c == "\r" then return "\\r" elseif c == '"' then return '\\"'
    elseif c == "\\" then return "\\\\" end
    return ("\\%03d"):format(c:byte())
  end)
  return '"' .. q .. '"' .. cut
end

local function klua_module() return package.loaded["klua"] end

-- Tensors: klua.is_tensor when the library is loaded.
local function is_tensor(v)
  if type(v) ~= "cdata" then return false end
  local k = klua_module()
  if type(k) == "table" and type(rawget(k, "is_tensor")) == "function" then
    local ok, r = pcall(k.is_tensor, v)
    return ok and r
  end
  return false
end
M.is_tensor = is_tensor

local function safe_index(obj, key)
  local ok, v = pcall(function() return obj[key] end)
  if ok then return v end
end
M.safe_index = safe_index

local function shape_str(t)
  local ok, s = pcall(function() return t:shape() end)
  if not ok or type(s) ~= "table" then return "(?)" end
  local parts = {}
  for i = 1, #s do parts[i] = tostring(s[i]) end
  return "(" .. table.concat(parts, ",") .. (#s == 1 and "," or "") .. ")"
end
M.shape_str = shape_str

-- A layer or model: has a count_params method and a weights field (duck typing,
-- so this file does not depend on the layer classes).
local function is_layer(v)
  -- a class table (its own __index) is not an instance
  return type(v) == "table" and rawget(v, "__index") == nil
     and type(safe_index(v, "count_params")) == "function"
     and safe_index(v, "weights") ~= nil
end
M.is_layer = is_layer

-- The class name of an instance, whatever the class library calls it.
function M.class_name(v)
  local cls = safe_index(v, "class")
  for _, c in ipairs{ cls, getmetatable(v) } do
    if type(c) == "table" then
      for _, f in ipairs{ "__name", "name", "classname", "__classname" } do
        local n = rawget(c, f)
        if type(n) == "string" then return n end
      end
    end
  end
  for _, f in ipairs{ "__name", "__class_name", "class_name" } do
    local n = safe_index(v, f)
    if type(n) == "string" then return n end
  end
  return nil
end

local function weights_of(v)
  local w = safe_index(v, "weights")
  if type(w) == "function" then
    local ok, r = pcall(w, v)
    w = ok and r or nil
  end
  return type(w) == "table" and w or {}
end

local function group_digits(n)
  local s = tostring(math.floor(n))
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

local function format_layer(v, color)
  local cls = M.class_name(v) or "Layer"
  local name = safe_index(v, "name")
  local built = safe_index(v, "built")
  local head = {}
  if name ~= nil then head[#head + 1] = "name=" .. tostring(name) end
  head[#head + 1] = "built=" .. tostring(built and true or false)
  local ok, n = pcall(v.count_params, v)
  if ok and type(n) == "number" then head[#head + 1] = "params=" .. group_digits(n) end
  local lines = { "<" .. paint(color, "class", cls) .. " " .. table.concat(head, ", ") .. ">" }
  local sub = safe_index(v, "layers")
  if type(sub) == "table" and #sub > 0 then
    local names = {}
    for i = 1, math.min(#sub, M.max_items) do
      local l = sub[i]
      local lname = type(l) == "table" and safe_index(l, "name")
      names[i] = (M.class_name(l) or "?") .. (lname and ("(" .. tostring(lname) .. ")") or "")
    end
    if #sub > M.max_items then names[#names + 1] = ("... (%d more)"):format(#sub - M.max_items) end
    lines[#lines + 1] = "  layers: " .. table.concat(names, ", ")
  end
  local ws = weights_of(v)
  local width = 0
  for i = 1, math.min(#ws, M.max_items) do
    local wname = tostring(safe_index(ws[i], "name") or ("weight " .. i))
    width = math.max(width, #wname)
  end
  for i = 1, math.min(#ws, M.max_items) do
    local w = ws[i]
    local wname = tostring(safe_index(w, "name") or ("weight " .. i))
    local trainable = safe_index(w, "trainable")
    lines[#lines + 1] = ("  %-" .. width .. "s %s%s"):format(wname,
      paint(color, "number", shape_str(w)),
      trainable == false and paint(color, "dim", "  (non-trainable)") or "")
  end
  if #ws > M.max_items then
    lines[#lines + 1] = paint(color, "dim", ("  ... (%d more weights)"):format(#ws - M.max_items))
  end
  return table.concat(lines, "\n")
end

local function module_name(t)
  for name, m in pairs(package.loaded) do
    if m == t and type(name) == "string" then return name end
  end
end

local function function_str(f, color)
  local doc = package.loaded["klua.doc"]
  local entry = doc and doc.get(f)
  if entry and entry.signature then
    return paint(color, "dim", "<function " .. entry.signature .. ">")
  end
  local info = debug.getinfo(f, "S")
  if info and info.what ~= "C" and info.short_src then
    local src = info.short_src:match("/lua/(klua/.*)$") or info.short_src
    return paint(color, "dim", ("<function %s:%d>"):format(src, info.linedefined or 0))
  end
  return paint(color, "dim", "<function builtin>")
end

local function visible_len(s)
  return #(s:gsub("\27%[[%d;]*m", ""))
end

local key_rank = { number = 1, string = 2, boolean = 3 }
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  local ra, rb = key_rank[ta] or 4, key_rank[tb] or 4
  if ra ~= rb then return ra < rb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local format_value

-- The short form of a value nested in a table: tensors and layers summarised
-- on one line, so a table of weights stays readable.
local function format_nested(v, color, depth, path)
  if is_tensor(v) then
    return paint(color, "dim", "<tensor " .. shape_str(v) .. ">")
  elseif is_layer(v) then
    local name = safe_index(v, "name")
    return "<" .. paint(color, "class", M.class_name(v) or "Layer")
      .. (name ~= nil and (" " .. tostring(name)) or "") .. ">"
  end
  return format_value(v, color, depth, path)
end

local function format_table(t, color, depth, path)
  if path[t] then return paint(color, "dim", "<cycle>") end
  local mt = getmetatable(t)
  if type(mt) == "table" and rawget(mt, "__tostring") then
    local ok, s = pcall(tostring, t)
    if ok and type(s) == "string" then return s end
  end
  if depth > M.max_depth then
    return next(t) == nil and "{}" or paint(color, "dim", "{...}")
  end
  path[t] = true
  local items, n = {}, 0
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  -- array part first, in order; then the remaining keys sorted
  local len = 0
  while rawget(t, len + 1) ~= nil do len = len + 1 end
  for i = 1, len do
    if n >= M.max_items then break end
    n = n + 1
    items[n] = format_nested(rawget(t, i), color, depth + 1, path)
  end
  local npos = n
  if n < M.max_items then
    local keys = {}
    for k in pairs(t) do
      if not (type(k) == "number" and k >= 1 and k <= len and k % 1 == 0) then keys[#keys + 1] = k end
    end
    table.sort(keys, key_less)
    for _, k in ipairs(keys) do
      if n >= M.max_items then break end
      local ks
      if is_identifier(k) then ks = k
      else ks = "[" .. format_nested(k, color, depth + 1, path) .. "]" end
      n = n + 1
      items[n] = ks .. " = " .. format_nested(rawget(t, k), color, depth + 1, path)
    end
  end
  path[t] = nil
  if count > n then items[#items + 1] = paint(color, "dim", ("... (%d more)"):format(count - n)) end
  if #items == 0 then return "{}" end
  local one = "{" .. table.concat(items, ", ") .. "}"
  if visible_len(one) + depth * 2 <= M.width and not one:find("\n") then return one end
  -- several lines: short array items share lines, keyed items get one each
  local indent = string.rep("  ", depth) .. "  "
  local lines, cur = {}, nil
  for i, s in ipairs(items) do
    if i <= npos and not s:find("\n") then
      if cur and #indent + visible_len(cur) + 2 + visible_len(s) + 1 <= M.width then
        cur = cur .. ", " .. s
      else
        if cur then lines[#lines + 1] = cur end
        cur = s
      end
    else
      if cur then lines[#lines + 1] = cur; cur = nil end
      lines[#lines + 1] = s
    end
  end
  if cur then lines[#lines + 1] = cur end
  for i, s in ipairs(lines) do lines[i] = indent .. s:gsub("\n", "\n" .. indent) end
  return "{\n" .. table.concat(lines, ",\n") .. "\n" .. string.rep("  ", depth) .. "}"
end

function format_value(v, color, depth, path)
  local tv = type(v)
  if tv == "string" then
    return paint(color, "string", M.quote(v, depth > 0 and 200 or nil))
  elseif tv == "number" then
    return paint(color, "number", tostring(v))
  elseif tv == "boolean" or tv == "nil" then
    return paint(color, "keyword", tostring(v))
  elseif tv == "function" then
    return function_str(v, color)
  elseif tv == "table" then
    if is_layer(v) then return format_layer(v, color) end
    local mname = depth == 0 and module_name(v)
    if mname then
      local saved = M.max_depth
      M.max_depth = 0
      local ok, s = pcall(format_table, v, color, 0, path)
      M.max_depth = saved
      return paint(color, "dim", "<module " .. mname .. "> ") .. (ok and s or "{...}")
    end
    return format_table(v, color, depth, path)
  else
    local ok, s = pcall(tostring, v)
    return ok and s or ("<" .. tv .. ">")
  end
end

-- pretty.format(value, {color = bool}) -> string (may span lines)
function M.format(v, opts)
  opts = opts or {}
  return format_value(v, opts.color or false, 0, {})
end

-- The REPL's display of a call's results: one line when every value fits on
-- one, otherwise one value after another.
function M.format_results(res, opts)
  local parts, multi = {}, false
  for i = 1, res.n do
    parts[i] = M.format(res[i], opts)
    if parts[i]:find("\n") then multi = true end
  end
  return table.concat(parts, multi and "\n" or "\t")
end

return M
