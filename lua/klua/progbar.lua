-- progbar.lua — klua.progbar: Keras's progress bar.
--
--   938/938 [==============================] - 4s 3ms/step - loss: 0.0746
--
-- On a terminal the line is redrawn in place (\r) with an ETA while running,
-- fitted to the terminal's width (the bar narrows, then the end is cut);
-- when the output is not a terminal (a log file, a pipe) nothing is printed
-- until the end, so a log gets one line per bar and no carriage returns.
-- verbose = 0 prints nothing, 1 the bar, 2 only the final line without the
-- bar ("938/938 - 4s - loss: 0.0746 - 4s/epoch - 3ms/step"), as Keras's verbose=2.
--   local bar = Progbar(target, {verbose = 1})
--   bar:update(step, {{"loss", 0.25}}); ... bar:update(target, values, true)
local core = require("klua.core")
local class = require("klua.class")
local utils = require("klua.utils")

local Progbar = class("Progbar")

Progbar.now = utils.now
-- The terminal's width: a line redrawn in place must not wrap, or each
-- redraw leaves a line behind.
Progbar.terminal_width = utils.terminal_width

--- is_terminal(stream): true when the stream is stdout on a terminal.
function Progbar.is_terminal(stream)
  if stream ~= nil and stream ~= io.stdout then return false end
  return utils.isatty(1)
end

--- Progbar(target, {width=30, verbose=1, interval=0.05, unit_name="step",
-- stream=io.stdout, dynamic=<stream is a terminal>}); target nil = unknown.
function Progbar:__init(target, kw)
  kw = kw or {}
  if target ~= nil and (type(target) ~= "number" or target < 0) then
    core.raise("Progbar: target must be a non-negative number or nil, got " .. tostring(target))
  end
  self.target = target
  self.width = kw.width or 30
  self.verbose = kw.verbose == nil and 1 or kw.verbose
  self.interval = kw.interval or 0.05
  self.unit_name = kw.unit_name or "step"
  self.stream = kw.stream or io.stdout
  if kw.dynamic ~= nil then self.dynamic = kw.dynamic else self.dynamic = Progbar.is_terminal(self.stream) end
  self.start = Progbar.now()
  self.last_update = 0
  self.total_width = 0
  self.seen = 0
  self.finished = false
end

-- " 3ms/step" from seconds per unit (Keras's _format_time).
local function format_time(per_unit, unit)
  if per_unit >= 1 or per_unit == 0 then return (" %.0fs/%s"):format(per_unit, unit) end
  if per_unit >= 1e-3 then return (" %.0fms/%s"):format(per_unit * 1e3, unit) end
  return (" %.0fus/%s"):format(per_unit * 1e6, unit)
end

local function format_value(v)
  if type(v) ~= "number" then return " " .. tostring(v) end
  if v ~= v then return " nan" end
  if math.abs(v) > 1e-3 or v == 0 then return (" %.4f"):format(v) end
  return (" %.4e"):format(v)
end
Progbar.format_value = format_value

local function values_text(values)
  local parts = {}
  for _, kv in ipairs(values or {}) do
    parts[#parts + 1] = " - " .. kv[1] .. ":" .. format_value(kv[2])
  end
  return table.concat(parts)
end

local function eta_text(eta)
  if eta > 3600 then
    return ("%d:%02d:%02d"):format(math.floor(eta / 3600), math.floor(eta % 3600 / 60), math.floor(eta % 60))
  elseif eta > 60 then
    return ("%d:%02d"):format(math.floor(eta / 60), math.floor(eta % 60))
  end
  return ("%ds"):format(math.floor(eta))
end

function Progbar:_bar(current, width)
  width = width or self.width
  local target = self.target
  if target == nil then return ("%7d/Unknown"):format(current) end
  local digits = target > 0 and math.floor(math.log10(target)) + 1 or 1
  local s = ("%" .. digits .. "d/%d ["):format(current, target)
  local frac = target > 0 and math.min(current / target, 1) or 1
  local filled = math.floor(width * frac)
  if filled > 0 then
    s = s .. ("="):rep(filled - 1) .. (current < target and ">" or "=")
  end
  return s .. ("."):rep(width - filled) .. "]"
end

local MIN_BAR = 10

-- The line for `current` fitted to the terminal: the bar narrows (down to
-- MIN_BAR) and then, except on the final line (which may wrap: nothing is
-- redrawn over it), the end is cut. One column stays free, as a line that
-- fills the last column leaves some terminals' cursor on the next line.
function Progbar:_fit(current, info, finalize)
  local line = self:_bar(current) .. info
  if not self.dynamic then return line end
  local room = self.terminal_width() - 1
  if #line <= room then return line end
  if self.target ~= nil then
    local width = math.max(MIN_BAR, self.width - (#line - room))
    line = self:_bar(current, width) .. info
  end
  if #line > room and not finalize then line = line:sub(1, math.max(room, 1)) end
  return line
end

--- update(current, values, finalize): values is a list of {name, number}
-- pairs shown in order; finalize (default: current >= target) ends the line.
function Progbar:update(current, values, finalize)
  if self.finished then return end
  if finalize == nil then finalize = self.target ~= nil and current >= self.target end
  self.seen = current
  local now = Progbar.now()
  local elapsed = now - self.start
  local per_unit = current > 0 and elapsed / current or 0
  local out = self.stream
  if self.verbose == 1 then
    if not finalize and (not self.dynamic or now - self.last_update < self.interval) then return end
    local prev = self.total_width
    local info
    if self.target == nil or finalize then
      info = (" - %.0fs"):format(elapsed) .. format_time(per_unit, self.unit_name)
    else
      info = " - ETA: " .. eta_text(per_unit * (self.target - current))
    end
    info = info .. values_text(values)
    local line = self:_fit(current, info, finalize)
    self.total_width = #line
    if self.dynamic then
      -- blank out the rest of a longer previous line (within the terminal)
      local pad = math.min(prev, self.terminal_width() - 1) - #line
      if pad > 0 then line = line .. (" "):rep(pad) end
      out:write("\r" .. line)
    else
      out:write(line)
    end
    if finalize then out:write("\n") end
    out:flush()
  elseif self.verbose == 2 and finalize then
    local head
    if self.target ~= nil then
      local digits = self.target > 0 and math.floor(math.log10(self.target)) + 1 or 1
      head = ("%" .. digits .. "d/%d"):format(current, self.target)
    else
      head = ("%d/Unknown"):format(current)
    end
    out:write(head .. (" - %.0fs"):format(elapsed) .. values_text(values) .. " -" .. format_time(elapsed, "epoch")
      .. " -" .. format_time(per_unit, self.unit_name) .. "\n")
    out:flush()
  end
  self.last_update = now
  if finalize then self.finished = true end
end

--- add(n, values): advance by n.
function Progbar:add(n, values) self:update(self.seen + n, values) end

return Progbar
