-- json.lua — klua.json: a small, strict JSON encoder and decoder (RFC 8259)
-- for model configs and safetensors headers. The decoder accepts nothing
-- outside the grammar (no comments, trailing commas, NaN, leading zeros or
-- duplicate keys), limits nesting depth, and reports errors with the byte
-- position, line and column. It never evaluates its input.
--
--   json.encode({units = 4, shape = json.array{}})  --> '{"shape":[],"units":4}'
--   json.decode('[1, "a", null]')                  --> {1, "a", json.null}
--
-- Lua tables have no array/object distinction: a table whose keys are
-- exactly 1..n encodes as an array, other tables as objects (keys sorted, so
-- output is deterministic); an empty table encodes as an object unless made
-- with json.array(). Decoding: null in an array is json.null (keeps
-- positions), null as an object value drops the key.
local json = {}

local byte, char, sub, find, format, concat = string.byte, string.char, string.sub, string.find, string.format, table.concat

json.null = setmetatable({}, { __tostring = function() return "json.null" end })
local array_mt = { __json = "array" }
local object_mt = { __json = "object" }

--- array(t): mark t (default {}) to encode as a JSON array even when empty.
function json.array(t) return setmetatable(t or {}, array_mt) end
--- object(t): mark t (default {}) to encode as a JSON object even when empty.
function json.object(t) return setmetatable(t or {}, object_mt) end

json.MAX_DEPTH = 128

-- Encoding -----------------------------------------------------------------

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function escape_char(c)
  return escapes[c] or format("\\u%04x", byte(c))
end

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', escape_char) .. '"'
end

local function encode_number(v, path)
  if v ~= v or v == math.huge or v == -math.huge then
    error(format("json.encode: %s is %s, which JSON cannot represent", path, tostring(v)), 0)
  end
  if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return format("%d", v) end
  -- the shortest form that reads back as the same double
  for prec = 15, 17 do
    local s = format("%." .. prec .. "g", v)
    if tonumber(s) == v then return s end
  end
  return format("%.17g", v)
end

local function is_array(t)
  local mt = getmetatable(t)
  if mt == array_mt then return true end
  if mt == object_mt then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  if n == 0 then return false end
  for i = 1, n do
    if t[i] == nil then return false end
  end
  return true
end

local encode_value
encode_value = function(v, path, depth, seen, out)
  local tv = type(v)
  if v == nil or v == json.null then
    out[#out + 1] = "null"
  elseif tv == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif tv == "number" then
    out[#out + 1] = encode_number(v, path)
  elseif tv == "string" then
    out[#out + 1] = encode_string(v)
  elseif tv == "table" then
    if depth > json.MAX_DEPTH then error(format("json.encode: %s nests deeper than %d levels", path, json.MAX_DEPTH), 0) end
    if seen[v] then error(format("json.encode: %s is a table that contains itself", path), 0) end
    local mt = getmetatable(v)
    if mt ~= nil and mt ~= array_mt and mt ~= object_mt then
      error(format("json.encode: %s is an object (%s), not plain data", path, tostring(rawget(mt, "__name") or "table")), 0)
    end
    seen[v] = true
    if is_array(v) then
      out[#out + 1] = "["
      local n = #v
      for i = 1, n do
        if i > 1 then out[#out + 1] = "," end
        encode_value(v[i], path .. "[" .. i .. "]", depth + 1, seen, out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do
        local tk = type(k)
        if tk == "number" then
          keys[#keys + 1] = k
        elseif tk == "string" then
          keys[#keys + 1] = k
        else
          error(format("json.encode: %s has a %s key; JSON object keys are strings", path, tk), 0)
        end
      end
      table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = encode_string(tostring(k))
        out[#out + 1] = ":"
        encode_value(v[k], path .. "." .. tostring(k), depth + 1, seen, out)
      end
      out[#out + 1] = "}"
    end
    seen[v] = nil
  else
    error(format("json.encode: %s is a %s, which JSON cannot represent", path, tv), 0)
  end
end

--- encode(value): a JSON text. Raises on functions, cdata, cycles, NaN and inf.
function json.encode(v)
  local out = {}
  encode_value(v, "value", 0, {}, out)
  return concat(out)
end

-- Decoding -----------------------------------------------------------------

local function fail(s, pos, msg)
  local line, col = 1, 1
  local last = 1
  for nl in s:sub(1, pos - 1):gmatch("()\n") do line = line + 1; last = nl + 1 end
  col = pos - last + 1
  error(format("json: %s at position %d (line %d, column %d)", msg, pos, line, col), 0)
end

local function skip_ws(s, pos)
  local _, e = find(s, "^[ \t\r\n]*", pos)
  return e + 1
end

local function utf8_char(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64, 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

local simple_escapes = { [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f", [110] = "\n", [114] = "\r", [116] = "\t" }

local function decode_string(s, pos)
  -- pos is at the opening quote
  local parts = {}
  local i = pos + 1
  while true do
    local a, b = find(s, '^[^"\\%c]+', i)
    if a then
      parts[#parts + 1] = sub(s, a, b)
      i = b + 1
    end
    local c = byte(s, i)
    if c == nil then fail(s, pos, "unterminated string") end
    if c == 34 then return concat(parts), i + 1 end
    if c < 32 then fail(s, i, "control character in string") end
    local e = c == 92 and byte(s, i + 1)
    if c ~= 92 then         -- DEL and others that %c matches but JSON allows
      parts[#parts + 1] = char(c)
      i = i + 1
    elseif e == 117 then
      local hex = sub(s, i + 2, i + 5)
      if not hex:find("^%x%x%x%x$") then fail(s, i, "invalid \\u escape") end
      local cp = tonumber(hex, 16)
      i = i + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        local hex2 = s:match("^\\u(%x%x%x%x)", i)
        local lo = hex2 and tonumber(hex2, 16)
        if not lo or lo < 0xDC00 or lo > 0xDFFF then fail(s, i - 6, "unpaired surrogate in \\u escape") end
        cp = 0x10000 + (cp - 0xD800) * 1024 + (lo - 0xDC00)
        i = i + 6
      elseif cp >= 0xDC00 and cp <= 0xDFFF then
        fail(s, i - 6, "unpaired surrogate in \\u escape")
      end
      parts[#parts + 1] = utf8_char(cp)
    else
      local r = e and simple_escapes[e]
      if not r then fail(s, i, "invalid escape in string") end
      parts[#parts + 1] = r
      i = i + 2
    end
  end
end

local decode_value

local function decode_array(s, pos, depth)
  local out = {}
  local n = 0
  pos = skip_ws(s, pos + 1)
  if byte(s, pos) == 93 then return out, pos + 1 end
  while true do
    local v
    v, pos = decode_value(s, pos, depth)
    n = n + 1
    out[n] = v == nil and json.null or v
    pos = skip_ws(s, pos)
    local c = byte(s, pos)
    if c == 93 then return out, pos + 1 end
    if c ~= 44 then fail(s, pos, "expected ',' or ']' in array") end
    pos = skip_ws(s, pos + 1)
  end
end

local function decode_object(s, pos, depth)
  local out, seen = {}, {}
  pos = skip_ws(s, pos + 1)
  if byte(s, pos) == 125 then return out, pos + 1 end
  while true do
    if byte(s, pos) ~= 34 then fail(s, pos, "expected a string key in object") end
    local key_pos = pos
    local k
    k, pos = decode_string(s, pos)
    if seen[k] then fail(s, key_pos, format("duplicate key %q in object", k)) end
    seen[k] = true
    pos = skip_ws(s, pos)
    if byte(s, pos) ~= 58 then fail(s, pos, "expected ':' after object key") end
    pos = skip_ws(s, pos + 1)
    local v
    v, pos = decode_value(s, pos, depth)
    out[k] = v
    pos = skip_ws(s, pos)
    local c = byte(s, pos)
    if c == 125 then return out, pos + 1 end
    if c ~= 44 then fail(s, pos, "expected ',' or '}' in object") end
    pos = skip_ws(s, pos + 1)
  end
end

decode_value = function(s, pos, depth)
  local c = byte(s, pos)
  if c == nil then fail(s, pos, "unexpected end of input") end
  if c == 123 or c == 91 then
    if depth >= json.MAX_DEPTH then fail(s, pos, format("nesting deeper than %d levels", json.MAX_DEPTH)) end
    if c == 123 then return decode_object(s, pos, depth + 1) end
    return decode_array(s, pos, depth + 1)
  end
  if c == 34 then return decode_string(s, pos) end
  if c == 116 then
    if sub(s, pos, pos + 3) == "true" then return true, pos + 4 end
  elseif c == 102 then
    if sub(s, pos, pos + 4) == "false" then return false, pos + 5 end
  elseif c == 110 then
    if sub(s, pos, pos + 3) == "null" then return nil, pos + 4 end
  else
    local a, b = find(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if a then
      local text = sub(s, a, b)
      -- the strict grammar: int [frac] [exp]; no leading zeros, digits after '.' and 'e'
      if text:find("^-?0%d") or not (text:find("^-?%d+$") or text:find("^-?%d+%.%d+$") or text:find("^-?%d+[eE][-+]?%d+$")
          or text:find("^-?%d+%.%d+[eE][-+]?%d+$")) then
        fail(s, pos, "malformed number")
      end
      local v = tonumber(text)
      if not v or v ~= v or v == math.huge or v == -math.huge then fail(s, pos, "number out of range") end
      return v, b + 1
    end
  end
  fail(s, pos, format("unexpected character %q", sub(s, pos, pos)))
end

--- decode(text): the Lua value of a JSON text. Raises "json: <problem> at
-- position P (line L, column C)" on anything outside the grammar.
function json.decode(s)
  if type(s) ~= "string" then error("json.decode: expected a string, got " .. type(s), 2) end
  local pos = skip_ws(s, 1)
  local v
  v, pos = decode_value(s, pos, 0)
  pos = skip_ws(s, pos)
  if pos <= #s then fail(s, pos, "trailing characters after the JSON value") end
  if v == nil then v = json.null end
  return v
end

return json
