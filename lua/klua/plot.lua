-- plot.lua — klua.plot: loss and metric curves as PNG files. The chart is drawn
-- in C (src/plot.c: axes, 1-2-5 ticks, grid, antialiased lines, legend, a
-- built-in bitmap font) and written with libpng; this file gathers the series.
local ffi = require("ffi")
local core = require("klua.core")
local C, raise = core.C, core.raise

local plot = {}

local LEGEND = { none = 0, [false] = 0, best = 1, ["upper right"] = 2, ["upper left"] = 3,
                 ["lower left"] = 4, ["lower right"] = 5 }

-- A number from a logged value: numbers, one-element tensors; nil/NaN = gap.
local function value_of(v, name, i)
  if type(v) == "number" then return v end
  if v == nil then return 0 / 0 end
  if core.is_tensor(v) and v.count == 1 then return v:item() end
  raise(("plot: series '%s' holds a %s at position %d; expected numbers"):format(name, type(v), i))
end

local function is_series(t)
  if type(t) ~= "table" then return false end
  local first = t[1]
  return type(first) == "number" or (core.is_tensor(first) and first.count == 1)
end

-- Keras orders history keys as logged; a Lua table has no order, so sort:
-- "loss" first, then other names alphabetically, each followed by its "val_".
local function default_keys(h)
  local bases, seen = {}, {}
  for k, v in pairs(h) do
    if type(k) == "string" and is_series(v) then
      local base = k:match("^val_(.+)$") or k
      if not seen[base] then seen[base] = true; bases[#bases + 1] = base end
    end
  end
  table.sort(bases, function(a, b)
    if a == "loss" or b == "loss" then return a == "loss" and b ~= "loss" end
    return a < b
  end)
  local keys = {}
  for _, b in ipairs(bases) do
    if is_series(h[b]) then keys[#keys + 1] = b end
    if is_series(h["val_" .. b]) then keys[#keys + 1] = "val_" .. b end
  end
  return keys
end

--- lines(path, series, opts) — series is a list of {name=, y={...}, x={...}?}
-- or a table of named lists {loss={...}, val_loss={...}}. opts: title, xlabel,
-- ylabel, width=800, height=560, legend="best" ("upper right", "upper left",
-- "lower left", "lower right", "none"), keys (order, for named tables).
function plot.lines(path, series, opts)
  opts = opts or {}
  if type(path) ~= "string" or path == "" then raise("plot: expected an output file path string") end
  if type(series) ~= "table" then raise("plot: expected a table of series, got " .. type(series)) end
  local list = {}
  if series[1] ~= nil then
    for i, s in ipairs(series) do
      if type(s) ~= "table" or type(s.y) ~= "table" then
        raise(("plot: series %d must be a table {name=, y={...}}"):format(i))
      end
      list[#list + 1] = { name = s.name and tostring(s.name) or "", y = s.y, x = s.x }
    end
  else
    local keys = opts.keys or default_keys(series)
    for _, k in ipairs(keys) do
      local ys = series[k]
      if ys == nil then raise(("plot: no series named '%s'"):format(tostring(k))) end
      if type(ys) ~= "table" then raise(("plot: series '%s' is a %s, not a list of numbers"):format(k, type(ys))) end
      list[#list + 1] = { name = tostring(k), y = ys }
    end
  end
  if #list == 0 then raise("plot: nothing to plot (no series of numbers)") end

  local n = #list
  local cs = ffi.new("kl_plot_series[?]", n)
  local keep = {}   -- the double arrays must live until the C call returns
  for i, s in ipairs(list) do
    local len = #s.y
    local y = ffi.new("double[?]", math.max(len, 1))
    for j = 1, len do y[j - 1] = value_of(s.y[j], s.name, j) end
    local x = nil
    if s.x then
      if #s.x ~= len then raise(("plot: series '%s' has %d x values for %d y values"):format(s.name, #s.x, len)) end
      x = ffi.new("double[?]", math.max(len, 1))
      for j = 1, len do x[j - 1] = value_of(s.x[j], s.name, j) end
    end
    keep[#keep + 1], keep[#keep + 2] = y, x or false
    cs[i - 1].name, cs[i - 1].x, cs[i - 1].y, cs[i - 1].n = s.name, x, y, len
    keep[#keep + 1] = s.name
  end
  local legend = LEGEND[opts.legend == nil and "best" or opts.legend]
  if legend == nil then raise(("plot: unknown legend position '%s'"):format(tostring(opts.legend))) end
  core.check(C.kl_plot_lines(path, opts.width or 800, opts.height or 560, opts.title, opts.xlabel,
                             opts.ylabel, legend, n, cs))
  local _ = keep
  return path
end

--- history(history, path, opts) — plots a Keras-style History (fit's return:
-- history.history.loss, ...) or a plain table of named series ({loss={...}}).
-- opts as in lines; keys picks and orders the series; xlabel defaults to
-- "epoch", ylabel to the metric name when one metric (and its val_) is shown.
function plot.history(history, path, opts)
  opts = opts or {}
  if type(history) ~= "table" then raise("plot.history: expected a History or a table of series, got " .. type(history)) end
  local h = type(history.history) == "table" and history.history or history
  local keys = opts.keys or default_keys(h)
  if #keys == 0 then raise("plot.history: the history holds no series of numbers (nothing logged yet?)") end
  local base
  for _, k in ipairs(keys) do
    local b = tostring(k):match("^val_(.+)$") or tostring(k)
    if base == nil then base = b elseif base ~= b then base = false end
  end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.keys = keys
  o.xlabel = o.xlabel or "epoch"
  if o.ylabel == nil and base then o.ylabel = base end
  if o.title == nil then o.title = "Training history" end
  return plot.lines(path, h, o)
end

return plot
