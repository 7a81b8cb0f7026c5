-- models/summary.lua — model:summary(): Keras's layer table.
--
--   Model: "sequential"
--   _________________________________________________________________
--   Layer (type)                 Output Shape              Param #
--   =================================================================
--   dense (Dense)                (None, 64)                6,464
--   _________________________________________________________________
--   dense_1 (Dense)              (None, 10)                650
--   =================================================================
--   Total params: 7,114 (27.79 KB)
--   Trainable params: 7,114 (27.79 KB)
--   Non-trainable params: 0 (0.00 B)
--   _________________________________________________________________
--
-- Functional models that are not a plain chain get a "Connected to" column
-- (layer_name[node][output]). Layers of a subclassed model show "?" as their
-- output shape: their calls are not recorded.
local structure = require("klua.tree")
local keras_tensor = require("klua.keras_tensor")

local node_inputs = keras_tensor.node_inputs

local M = {}

local function commas(n)
  local s = tostring(math.floor(n))
  local neg = s:sub(1, 1) == "-"
  if neg then s = s:sub(2) end
  s = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  if s:sub(1, 1) == "," then s = s:sub(2) end
  return (neg and "-" or "") .. s
end
M.commas = commas

-- Keras's readable_memory_size (powers of 1024).
local function readable_size(bytes)
  local units = { "B", "KB", "MB", "GB", "TB", "PB" }
  for i, u in ipairs(units) do
    if bytes / 1024 < 1 or i == #units then return ("%.2f %s"):format(bytes, u) end
    bytes = bytes / 1024
  end
end
M.readable_size = readable_size

local function shape_text(s)
  if s == nil then return "?" end
  if type(s[1]) == "table" then
    local parts = {}
    for i, t in ipairs(s) do parts[i] = shape_text(t) end
    return "[" .. table.concat(parts, ", ") .. "]"
  end
  local parts = {}
  for i, d in ipairs(s) do parts[i] = d < 0 and "None" or tostring(d) end
  return "(" .. table.concat(parts, ", ") .. (#s == 1 and ",)" or ")")
end
M.shape_text = shape_text

-- Cells wrap onto more lines instead of being cut.
local function format_row(fields, stops)
  local cols, height = {}, 1
  local start = 0
  for i, f in ipairs(fields) do
    local width = stops[i] - start
    local room = math.max(width - 1, 1)
    local text, lines = tostring(f), {}
    if i == #fields then room = math.max(width, 1) end
    if #text == 0 then lines[1] = "" end
    while #text > 0 do
      lines[#lines + 1] = text:sub(1, room)
      text = text:sub(room + 1)
    end
    cols[i] = lines
    if #lines > height then height = #lines end
    start = stops[i]
  end
  local out = {}
  for h = 1, height do
    local line = ""
    start = 0
    for i, lines in ipairs(cols) do
      local cell = lines[h] or ""
      line = line .. cell .. (" "):rep(math.max(stops[i] - start - #cell, 0))
      start = stops[i]
    end
    out[#out + 1] = (line:gsub("%s+$", ""))
  end
  return out
end

local function count(list)
  local n = 0
  for _, v in ipairs(list) do n = n + tonumber(v.count) end
  return n
end

local function params_of(layer)
  local ws = layer.weights
  if not rawget(layer, "built") and #ws == 0 then return "0 (unbuilt)" end
  return commas(count(ws))
end

-- Rows {name_type, shape, params, connected, trainable} for each layer.
local function rows_of(model)
  local rows = {}
  local graph = rawget(model, "_graph")
  local outs = rawget(model, "_outs")
  local nodes_by_layer = {}
  if graph then
    for i, node in ipairs(graph.nodes) do
      local list = nodes_by_layer[node.layer]
      if not list then list = {}; nodes_by_layer[node.layer] = list end
      list[#list + 1] = node
      node._summary_index = #list - 1
    end
  end
  local layers = model.layers
  for i, l in ipairs(layers) do
    local shape = "?"
    local connected = {}
    if graph then
      local nodes = nodes_by_layer[l] or {}
      if #nodes > 1 then
        shape = "multiple"
      elseif #nodes == 1 then
        local flat = nodes[1].flat
        if #flat == 1 then shape = shape_text(flat[1].shape) else
          local ss = {}
          for j, kt in ipairs(flat) do ss[j] = kt.shape end
          shape = shape_text(ss)
        end
      end
      for _, node in ipairs(nodes) do
        for _, kt in ipairs(node_inputs(node)) do
          local src = kt._node
          local idx = 0
          for j, o in ipairs(src.flat) do if o == kt then idx = j - 1 end end
          connected[#connected + 1] = ("%s[%d][%d]"):format(rawget(src.layer, "name"), src._summary_index or 0, idx)
        end
      end
    elseif outs and outs[i] then
      shape = shape_text(outs[i].shape)
    end
    rows[i] = {
      ("%s (%s)"):format(rawget(l, "name"), l:class_name()), shape, params_of(l),
      table.concat(connected, ", "), rawget(l, "_trainable") and "Y" or "N",
    }
  end
  return rows
end

local function needs_connections(model)
  local graph = rawget(model, "_graph")
  if not graph then return false end
  if #graph.input_flat > 1 or #structure.flatten(graph.outputs) > 1 then return true end
  local seen = {}
  for _, node in ipairs(graph.nodes) do
    if seen[node.layer] then return true end
    seen[node.layer] = true
    if #node_inputs(node) > 1 or #node.flat > 1 then return true end
  end
  return false
end

--- summary_lines(model, {line_length=, positions=, show_trainable=}): the lines.
function M.summary_lines(model, kw)
  kw = kw or {}
  local connections = needs_connections(model)
  local headers = { "Layer (type)", "Output Shape", "Param #" }
  local line_length = kw.line_length or (connections and 98 or 65)
  local positions = kw.positions or (connections and { 0.33, 0.55, 0.67, 1.0 } or { 0.45, 0.85, 1.0 })
  if connections then headers[4] = "Connected to" end
  local stops = {}
  for i, p in ipairs(positions) do stops[i] = p <= 1 and math.floor(line_length * p + 0.5) or p end
  if kw.show_trainable then
    headers[#headers + 1] = "Trainable"
    line_length = line_length + 11
    stops[#stops + 1] = line_length
  end
  local rows = rows_of(model)
  if not kw.positions and not kw.line_length then
    -- widen the first column to its longest "name (Type)" instead of wrapping it
    local longest = 0
    for _, r in ipairs(rows) do longest = math.max(longest, #tostring(r[1])) end
    local extra = longest + 1 - stops[1]
    if extra > 0 then
      for i = 1, #stops do stops[i] = stops[i] + extra end
      line_length = line_length + extra
    end
  end
  local out = {}
  local function add(lines) for _, l in ipairs(lines) do out[#out + 1] = l end end
  out[#out + 1] = ('Model: "%s"'):format(rawget(model, "name"))
  out[#out + 1] = ("_"):rep(line_length)
  add(format_row(headers, stops))
  out[#out + 1] = ("="):rep(line_length)
  for i, r in ipairs(rows) do
    local fields = { r[1], r[2], r[3] }
    if connections then fields[4] = r[4] end
    if kw.show_trainable then fields[#fields + 1] = r[5] end
    add(format_row(fields, stops))
    if i < #rows then out[#out + 1] = ("_"):rep(line_length) end
  end
  out[#out + 1] = ("="):rep(line_length)
  local trainable = count(model.trainable_weights)
  local non_trainable = count(model.non_trainable_weights)
  local total = trainable + non_trainable
  out[#out + 1] = ("Total params: %s (%s)"):format(commas(total), readable_size(total * 4))
  out[#out + 1] = ("Trainable params: %s (%s)"):format(commas(trainable), readable_size(trainable * 4))
  out[#out + 1] = ("Non-trainable params: %s (%s)"):format(commas(non_trainable), readable_size(non_trainable * 4))
  local opt = rawget(model, "optimizer")
  if opt and opt.built and opt.variables and #opt.variables > 0 then
    local n = count(opt.variables)
    out[#out + 1] = ("Optimizer params: %s (%s)"):format(commas(n), readable_size(n * 4))
  end
  out[#out + 1] = ("_"):rep(line_length)
  return out
end

--- print_summary(model, {print_fn=print, ...}): prints the table line by line.
function M.print_summary(model, kw)
  kw = kw or {}
  local print_fn = kw.print_fn or print
  for _, line in ipairs(M.summary_lines(model, kw)) do print_fn(line) end
end

return M
