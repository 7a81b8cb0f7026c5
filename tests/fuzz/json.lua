-- json.lua — fuzz driver for klua.json (run by fuzz_json, tests/fuzz/fuzz_lua.c).
-- Oracles: decode either returns a value or raises "json: <problem> at
-- position ..." (never an internal Lua error); a value it returns encodes,
-- and that text decodes to the same value.
local json = require("klua.json")

local function same(a, b, depth)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" or depth > 200 then return false end
  for k, v in pairs(a) do if not same(v, b[k], depth + 1) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

return function(text)
  local ok, v = pcall(json.decode, text)
  if not ok then
    if type(v) ~= "string" or not v:find("^json: .* at position %d+ %(line %d+, column %d+%)$") then
      error("json.decode raised an unexpected error: " .. tostring(v), 0)
    end
    return
  end
  local ok2, again = pcall(json.encode, v)
  if not ok2 then error("json.encode failed on a decoded value: " .. tostring(again), 0) end
  local ok3, back = pcall(json.decode, again)
  if not ok3 then error("json.decode failed on json.encode's output " .. again .. ": " .. tostring(back), 0) end
  if not same(v, back, 0) then error("decode(encode(v)) differs from v for input " .. ("%q"):format(text), 0) end
end
