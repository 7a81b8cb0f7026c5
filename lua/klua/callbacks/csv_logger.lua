-- csv_logger.lua — CSVLogger: one CSV row of logs per epoch.
local core = require("klua.core")
local Callback = require("klua.callbacks.callback")
local monitor = require("klua.callbacks.monitor")
local distribution = require("klua.distribution")

local CSVLogger = Callback:extend("CSVLogger")

--- CSVLogger(filename, {separator=",", append=false}): one row per epoch.
function CSVLogger:__init(filename, kw)
  Callback.__init(self)
  if type(filename) == "table" and kw == nil then kw, filename = filename, filename.filename end
  if type(filename) ~= "string" then core.raise("CSVLogger: filename must be a string") end
  kw = core.options(kw, "CSVLogger")
  self.filename = filename
  self.sep = kw.separator or ","
  self.append = kw.append and true or false
  self.keys = nil
end

-- The shortest text that reads back as the same number (Python's repr).
local function number_text(v)
  if type(v) ~= "number" then return tostring(v) end
  if v ~= v then return "nan" end
  if v == math.huge then return "inf" elseif v == -math.huge then return "-inf" end
  for prec = 1, 17 do
    local s = ("%." .. prec .. "g"):format(v)
    if tonumber(s) == v then
      if not s:find("[%.eni]") then s = s .. ".0" end
      return s
    end
  end
  return ("%.17g"):format(v)
end
-- Exported (as klua.callbacks._number_text) for the tests.
CSVLogger._number_text = number_text

local function csv_field(s, sep)
  if s:find('[' .. sep:gsub("%p", "%%%0") .. '"\n]') then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

function CSVLogger:on_train_begin()
  if not distribution.is_chief() then return end   -- under DataParallel only rank 0 writes
  local has_header = false
  if self.append then
    local f = io.open(self.filename, "r")
    if f then
      has_header = (f:read("*l") or "") ~= ""
      f:close()
    end
  end
  local f, err = io.open(self.filename, self.append and "a" or "w")
  if not f then core.raise("CSVLogger: cannot open " .. self.filename .. ": " .. tostring(err)) end
  self.file = f
  self.write_header = not has_header
  self.keys = nil
end

function CSVLogger:on_epoch_end(epoch, logs)
  if not self.file then return end
  logs = logs or {}
  if not self.keys then
    local keys = {}
    for k in pairs(logs) do keys[#keys + 1] = k end
    table.sort(keys)
    self.keys = keys
    if self.write_header then
      local head = { "epoch" }
      for _, k in ipairs(keys) do head[#head + 1] = csv_field(k, self.sep) end
      self.file:write(table.concat(head, self.sep), "\n")
    end
  end
  local row = { tostring(epoch) }
  for _, k in ipairs(self.keys) do
    local v = monitor.log_value(logs, k)
    row[#row + 1] = v == nil and "NA" or csv_field(number_text(v), self.sep)
  end
  self.file:write(table.concat(row, self.sep), "\n")
  self.file:flush()
end

function CSVLogger:on_train_end()
  if self.file then self.file:close(); self.file = nil end
end

return CSVLogger
