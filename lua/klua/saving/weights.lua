-- saving/weights.lua — a model's weights in a safetensors file, each named by
-- its path in the model ("dense/kernel", "encoder/dense_proj/bias"), and the
-- optimizer's slots beside them ("optimizer/variables/N").
local core = require("klua.core")
local json = require("klua.json")
local Layer = require("klua.layer")
local tensor = require("klua.tensor")
local variable = require("klua.variable")
local no_grad = require("klua.no_grad")
local safetensors = require("klua.saving.safetensors")
local serialization = require("klua.saving.serialization")

local M = {}
local write_safetensors = safetensors.write_safetensors

-- Weight names: the path of each weight through the model's attributes.
-- Sublayers in the model's own layer list are named by class, numbered in
-- order ("dense", "dense_1"), so a rebuilt model (whose layers get fresh
-- automatic names) finds its weights; other sublayers by their attribute
-- name; a weight by its add_weight name (or attribute).

local is_variable = variable.is_variable

local function human_bytes(n)
  if n < 1024 then return ("%d bytes"):format(n) end
  local units, i = { "KB", "MB", "GB", "TB" }, 0
  repeat n = n / 1000; i = i + 1 until n < 1000 or i == #units
  return ("%.3g %s"):format(n, units[i])
end
M.human_bytes = human_bytes

local function join(prefix, key)
  if prefix == "" then return tostring(key) end
  return prefix .. "/" .. tostring(key)
end

--- weight_entries(model): {{var=, path=}, ...} in model.weights order.
function M.weight_entries(root)
  local out, seen_var, seen_layer, used = {}, {}, {}, {}
  local function add_var(v, path)
    if seen_var[v] then return end
    seen_var[v] = true
    local p, k = path, 1
    while used[p] do p = path .. "_" .. k; k = k + 1 end
    used[p] = true
    out[#out + 1] = { var = v, path = p }
  end
  local visit_layer
  local function walk(v, path, seen_tbl)
    if is_variable(v) then
      add_var(v, path)
    elseif Layer.is_layer(v) then
      visit_layer(v, path)
    elseif type(v) == "table" and getmetatable(v) == nil and not seen_tbl[v] then
      seen_tbl[v] = true
      local n = #v
      local counters = {}
      for i = 1, n do
        local item = v[i]
        local key = tostring(i)
        if Layer.is_layer(item) then
          local base = Layer.snake_case(item:class_name())
          local c = counters[base]
          counters[base] = (c or 0) + 1
          key = c and (base .. "_" .. c) or base
        end
        walk(item, join(path, key), seen_tbl)
      end
      local keys = {}
      for k in pairs(v) do
        if not (type(k) == "number" and k >= 1 and k <= n and k % 1 == 0) then keys[#keys + 1] = k end
      end
      table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
      for _, k in ipairs(keys) do walk(v[k], join(path, k), seen_tbl) end
    end
  end
  visit_layer = function(layer, prefix)
    if seen_layer[layer] then return end
    seen_layer[layer] = true
    local seen_tbl = {}
    for _, e in ipairs(rawget(layer, "_tracked") or {}) do
      if type(e) == "string" then
        -- a model's own layer list names its layers directly under the model
        walk(rawget(layer, e), e == "_layers" and prefix or join(prefix, e), seen_tbl)
      else
        add_var(e, join(prefix, e.name or "variable"))
      end
    end
  end
  visit_layer(root, "")
  return out
end

function M.check_built(model, who)
  local entries = M.weight_entries(model)
  if #entries == 0 and not rawget(model, "built") then
    model:raise("%s: the model has no weights yet; call it on data or model:build(input_shape) first", who)
  end
  return entries
end

function M.build_config_text(model)
  if rawget(model, "_graph") or rawget(model, "_layers") then return nil end
  local bc = model.get_build_config and model:get_build_config()
  if not bc then return nil end
  local ok, text = pcall(json.encode, bc)
  return ok and text or nil
end

--------------------------------------------------------------------------------
-- Building from a file: a model config (or a weights file's build_config)
-- decides which weights get allocated, so each one is checked against the
-- file's tensors before it exists.

--- with_file_weights(info, who, fn, ...) -> ok, result or error, refusal:
-- fn(...) (which builds layers) runs with every add_weight checked against
-- the file first: a weight must have the shape of one of the file's tensors
-- that no earlier weight claimed, so a config can never make the model larger
-- than the weights the file holds; it is made without its initializer (a
-- broadcast zero, copied into place; the file's values overwrite it).
-- `refusal` is the message when a weight was refused.
function M.with_file_weights(info, who, fn, ...)
  local free, held, count = {}, 0, 0
  for _, name in ipairs(info.names) do
    if not name:find("^optimizer/") then
      local t = info.tensors[name]
      local key = core.shape_str(t.shape)
      free[key] = (free[key] or 0) + 1
      held, count = held + t.count * 4, count + 1
    end
  end
  local refusal
  local zero = tensor.zeros {}
  local function source(layer, name, shape)
    local key = core.shape_str(shape)
    if (free[key] or 0) == 0 then
      local n = 1
      for _, d in ipairs(shape) do n = n * d end
      refusal = ("%s: %s does not match its model config: layer '%s' creates a weight '%s' of shape %s (%s), "
        .. "which the file does not hold (it holds %d weight%s, %s in all)")
        :format(who, info.path, tostring(rawget(layer, "name")), tostring(name), key, human_bytes(n * 4), count,
          count == 1 and "" or "s", human_bytes(held))
      core.raise(refusal)
    end
    free[key] = free[key] - 1
    return core.op("broadcast_to", zero, nil, nil, { ints = shape })
  end
  local prev = Layer.weight_source
  Layer.weight_source = source
  local res = { pcall(fn, ...) }
  Layer.weight_source = prev
  return res[1], res[2], refusal
end

--- save_weights(model, path): every weight, named by its path, in safetensors form.
--- refuse_foreign_extension(path, who, wanted): klua never writes its format
-- under the name of Keras's (.keras, .h5): a user would take it for one.
function M.refuse_foreign_extension(path, who, wanted)
  if type(path) ~= "string" then return end
  local ext = path:lower():match("%.(%w+)$")
  if ext == "keras" or ext == "h5" or ext == "hdf5" then
    core.raise(("%s: %s: klua cannot write Keras's .%s format; its files are safetensors: name it *%s")
      :format(who, path, ext, wanted))
  end
end

function M.save_weights(model, path)
  M.refuse_foreign_extension(path, "save_weights", ".safetensors (or .weights.safetensors)")
  local entries = M.check_built(model, "save_weights")
  local list = {}
  for i, e in ipairs(entries) do list[i] = { name = e.path, tensor = e.var } end
  write_safetensors(path, "save_weights", list, { format = "klua.weights", build_config = M.build_config_text(model) })
end

-- Checks every weight against the file, then assigns them all (or none).
-- fresh: the model was just built from this file (load_model), so each weight
-- is read straight into its Variable, with no second copy.
function M.assign_weights(model, info, who, skip_mismatch, fresh)
  if next(info.metadata) and not rawget(model, "built") and info.metadata.build_config then
    local ok, bc = pcall(json.decode, info.metadata.build_config)
    if ok and type(bc) == "table" then
      local built, err, refusal = M.with_file_weights(info, who, model.build_from_config, model, bc)
      if not built then
        safetensors.close(info)
        if refusal then core.raise(refusal) end
        error(err, 0)
      end
    end
  end
  local entries = M.weight_entries(model)
  if #entries == 0 then
    safetensors.close(info)
    model:raise("%s: the model has no weights yet; call it on data or model:build(input_shape) first", who)
  end
  local problems, plan, wanted = {}, {}, {}
  for _, e in ipairs(entries) do
    wanted[e.path] = true
    local t = info.tensors[e.path]
    local shape = e.var:shape()
    if not t then
      problems[#problems + 1] = ("no weight '%s' (shape %s) in the file"):format(e.path, core.shape_str(shape))
    else
      local same = #t.shape == #shape
      for i = 1, #shape do same = same and t.shape[i] == shape[i] end
      if not same then
        problems[#problems + 1] = ("weight '%s' has shape %s in the model but %s in the file")
          :format(e.path, core.shape_str(shape), core.shape_str(t.shape))
      else
        plan[#plan + 1] = e
      end
    end
  end
  for _, name in ipairs(info.names) do
    if not wanted[name] and not name:find("^optimizer/") then
      problems[#problems + 1] = ("the file has a weight '%s' that the model does not"):format(name)
    end
  end
  if #problems > 0 and not skip_mismatch then
    safetensors.close(info)
    local shown = {}
    for i = 1, math.min(#problems, 5) do shown[i] = problems[i] end
    local more = #problems > 5 and ("; and %d more"):format(#problems - 5) or ""
    core.raise(("%s: %s does not match the model: %s%s"):format(who, info.path, table.concat(shown, "; "), more))
  elseif #problems > 0 then
    for _, p in ipairs(problems) do io.stderr:write(("klua warning: %s: skipping: %s\n"):format(who, p)) end
  end
  if fresh then
    local ok, err = pcall(function()
      for _, e in ipairs(plan) do safetensors.read_into(info, e.path, e.var) end
    end)
    if not ok then safetensors.close(info); error(err, 0) end
    return
  end
  local values = {}
  local ok, err = pcall(function()
    for i, e in ipairs(plan) do values[i] = safetensors.read_tensor(info, e.path) end
  end)
  if not ok then safetensors.close(info); error(err, 0) end
  no_grad(function()
    for i, e in ipairs(plan) do e.var:assign(values[i]) end
  end)
end

--- load_weights(model, path, {skip_mismatch=false}): matched by name, every shape checked.
function M.load_weights(model, path, kw)
  kw = kw or {}
  local info = safetensors.read_header(path, "load_weights")
  M.assign_weights(model, info, "load_weights", kw.skip_mismatch)
  safetensors.close(info)
end

--------------------------------------------------------------------------------
-- Optimizer state

local OPT_PREFIX = "optimizer/variables/"

function M.optimizer_entries(opt)
  local st = opt:get_state()
  local list, meta = {}, {}
  for i, t in ipairs(st.variables or {}) do list[i] = { name = OPT_PREFIX .. (i - 1), tensor = t } end
  for k, v in pairs(st) do
    if k ~= "variables" then meta[k] = v end
  end
  meta.nvariables = #list
  return list, meta
end

--- add_optimizer_state(opt, list, metadata): the optimizer's slots appended
-- to the tensor list, its other state as JSON in metadata.optimizer_state.
function M.add_optimizer_state(opt, list, metadata)
  local olist, meta = M.optimizer_entries(opt)
  for _, e in ipairs(olist) do list[#list + 1] = e end
  metadata.optimizer_state = json.encode(serialization.to_plain(meta))
end

function M.restore_optimizer(opt, info, meta, who)
  local vars = {}
  for i = 1, meta.nvariables or 0 do
    local name = OPT_PREFIX .. (i - 1)
    if not info.tensors[name] then core.raise(("%s: %s: optimizer slot '%s' is missing"):format(who, info.path, name)) end
    vars[i] = safetensors.read_tensor(info, name)
  end
  local st = serialization.from_plain(meta)
  st.nvariables = nil
  st.variables = vars
  opt:set_state(st)
end

return M
