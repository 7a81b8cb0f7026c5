-- saving.lua — klua.saving: the registry of serializable classes, model and
-- weight files, and the training state behind BackupAndRestore.
--
-- One format: the safetensors layout (8-byte little-endian header length, a
-- JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}},
-- then raw little-endian float32 data), so weight files open in other tools.
--   model:save_weights("w.safetensors")   weights only, named by their path
--                                         in the model ("dense/kernel",
--                                         "encoder/dense_proj/bias")
--   model:save("m.klua")                  the same, plus the model config and
--                                         compile config (JSON strings in
--                                         __metadata__) and the optimizer's
--                                         slots ("optimizer/variables/N")
--   klua.models.load_model("m.klua")      classes come from the registry
--                                         (register_serializable), never from
--                                         code in the file
-- Reading checks every size and offset against the file's length before
-- allocating or reading; errors name the file and the problem. Writing goes
-- to a temporary file in the same directory, flushed and fsynced, then
-- renamed over the target, so a crash leaves the previous file intact.
local ffi = require("ffi")
local core = require("klua.core")
local json = require("klua.json")
local C = core.C

local saving = {}

--------------------------------------------------------------------------------
-- The registry

local registry = {}

local function name_of(cls)
  return rawget(cls, "__name")
end

-- register_serializable(Class [, {package=, name=}]) -> Class.
-- Registered under "name" and "package>name" (package "Custom" by default,
-- as in Keras), so get_registered("Linear") and ("Custom>Linear") both work.
function saving.register_serializable(cls, opts)
  if type(cls) ~= "table" then
    core.raise("register_serializable: expected a class, got " .. type(cls))
  end
  opts = opts or {}
  local name = opts.name or name_of(cls)
  if type(name) ~= "string" then core.raise("register_serializable: the class has no name; pass {name=...}") end
  local package = opts.package or "Custom"
  registry[name] = cls
  registry[package .. ">" .. name] = cls
  return cls
end
saving.register_keras_serializable = saving.register_serializable

-- The class registered under `name`, or a built-in layer of that name, or nil.
function saving.get_registered(name)
  if type(name) ~= "string" then return nil end
  local cls = registry[name]
  if cls then return cls end
  local short = name:match(">(.+)$")
  if short and registry[short] then return registry[short] end
  local ok, layers = pcall(require, "klua.layers")
  if ok and type(layers) == "table" then
    local found, c = pcall(function() return layers[short or name] end)
    if found and c then return c end
  end
  return nil
end
saving.get_registered_object = saving.get_registered

-- The name a class is registered under (nil if it is not).
function saving.get_registered_name(cls)
  for k, v in pairs(registry) do
    if v == cls and not k:find(">") then return k end
  end
  return nil
end

--------------------------------------------------------------------------------
-- Layer configs

--- serialize_layer(layer): {class_name=, config=, build_config=}.
function saving.serialize_layer(layer)
  local cls = getmetatable(layer)
  local cname = saving.get_registered_name(cls) or name_of(cls) or "Layer"
  local out = { class_name = cname, config = layer:get_config() }
  if not rawget(layer, "_graph") and not rawget(layer, "_layers") and layer.get_build_config then
    out.build_config = layer:get_build_config()
  end
  return out
end

--- deserialize_layer(config, custom_objects): a layer or model from its
-- serialized config; classes from custom_objects, then the registry.
function saving.deserialize_layer(config, custom_objects)
  if type(config) ~= "table" or type(config.class_name) ~= "string" then
    core.raise("deserialize: expected {class_name=..., config={...}}")
  end
  local name = config.class_name
  local cls = custom_objects and (custom_objects[name] or custom_objects[name:match(">(.+)$") or ""])
  cls = cls or saving.get_registered(name)
  if not cls then
    core.raise(("unknown class '%s': register it with klua.saving.register_serializable(%s) before loading, or pass custom_objects = {%s = %s}")
      :format(name, name, name, name))
  end
  local previous = saving._custom_objects
  saving._custom_objects = custom_objects or previous
  local ok, obj = pcall(function()
    if type(cls.from_config) ~= "function" then core.raise(("class '%s' has no from_config"):format(name)) end
    return cls.from_config(config.config or {})
  end)
  saving._custom_objects = previous
  if not ok then error(obj, 0) end
  if config.build_config and not rawget(obj, "built") and obj.build_from_config then
    obj:build_from_config(config.build_config)
  end
  return obj
end

--------------------------------------------------------------------------------
-- Weight names: the path of each weight through the model's attributes.
-- Sublayers in the model's own layer list are named by class, numbered in
-- order ("dense", "dense_1"), so a rebuilt model (whose layers get fresh
-- automatic names) finds its weights; other sublayers by their attribute
-- name; a weight by its add_weight name (or attribute).

local Layer = require("klua.layer")

local function is_variable(v)
  return core.is_tensor(v) and bit.band(v.flags, C.KL_FLAG_VARIABLE) ~= 0
end

local function join(prefix, key)
  if prefix == "" then return tostring(key) end
  return prefix .. "/" .. tostring(key)
end

--- weight_entries(model): {{var=, path=}, ...} in model.weights order.
function saving.weight_entries(root)
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

--------------------------------------------------------------------------------
-- Safetensors writing

local MAX_HEADER = 100 * 1024 * 1024

saving.test_hooks = {}   -- after_tensor(i): lets tests simulate a crash mid-write

local function le_u64(n)
  local b = {}
  for i = 1, 8 do
    b[i] = n % 256
    n = math.floor(n / 256)
  end
  return string.char(unpack(b))
end

local function atomic_write(path, who, fn)
  if type(path) ~= "string" or path == "" then core.raise(who .. ": expected a file path") end
  local buf = ffi.new("char[4096]")
  local f = C.kl_file_create_temp(path, buf, 4096)
  if f == nil then core.raise(who .. ": " .. core.last_error()) end
  local tmp = ffi.string(buf)
  local ok, err = pcall(fn, f)
  if not ok then
    C.kl_file_abort(f, tmp)
    error(err, 0)
  end
  if C.kl_file_commit(f, tmp, path) ~= 0 then core.raise(who .. ": " .. core.last_error()) end
end
saving.atomic_write = atomic_write

-- entries: {{name=, tensor=}}; metadata: {string = string}.
local function write_safetensors(path, who, entries, metadata)
  local header = { __metadata__ = json.object(metadata or {}) }
  local offset = 0
  local seen = {}
  for _, e in ipairs(entries) do
    if e.name == "__metadata__" or seen[e.name] then core.raise(("%s: duplicate or reserved tensor name '%s'"):format(who, e.name)) end
    seen[e.name] = true
    local t = e.tensor
    local bytes = tonumber(t.count) * 4
    header[e.name] = { dtype = "F32", shape = json.array(t:shape()), data_offsets = json.array{ offset, offset + bytes } }
    offset = offset + bytes
  end
  local text = json.encode(header)
  -- pad the header with spaces so the data starts 8-byte aligned (as safetensors does)
  local pad = (8 - #text % 8) % 8
  text = text .. (" "):rep(pad)
  atomic_write(path, who, function(f)
    local head = le_u64(#text) .. text
    if C.kl_file_write(f, head, #head) ~= 0 then error(who .. ": " .. core.last_error(), 0) end
    local hook = saving.test_hooks.after_tensor
    for i, e in ipairs(entries) do
      if C.kl_file_write_tensor(f, e.tensor.p) ~= 0 then error(who .. ": " .. core.last_error(), 0) end
      if hook then hook(i, e.name) end
    end
  end)
end
saving.write_safetensors = write_safetensors

--------------------------------------------------------------------------------
-- Safetensors reading: everything is checked before anything is allocated.

local function open_file(path, who)
  if type(path) ~= "string" or path == "" then core.raise(who .. ": expected a file path") end
  local f = C.kl_file_open_read(path)
  if f == nil then core.raise(who .. ": " .. core.last_error()) end
  return ffi.gc(f, C.kl_file_close)
end

local function close_file(f)
  ffi.gc(f, nil)
  C.kl_file_close(f)
end

local function is_int(v) return type(v) == "number" and v >= 0 and v % 1 == 0 and v < 2 ^ 53 end

--- read_header(path, who): {path=, file=, metadata=, tensors={name={shape=, offsets=}}, names={...}, data_start=}
function saving.read_header(path, who)
  who = who or "load"
  local f = open_file(path, who)
  local function fail(fmt, ...)
    close_file(f)
    core.raise(("%s: %s: " .. fmt):format(who, path, ...))
  end
  local size = tonumber(C.kl_file_size(f))
  if size < 0 then fail("%s", core.last_error()) end
  if size < 8 then fail("the file is too short (%d bytes) to hold a safetensors header", size) end
  local lenbuf = ffi.new("uint8_t[8]")
  if C.kl_file_read(f, 0, lenbuf, 8) ~= 0 then fail("cannot read the header length") end
  local n = 0
  for i = 7, 0, -1 do n = n * 256 + lenbuf[i] end
  if n == 0 then fail("the header length is 0") end
  if n > MAX_HEADER then fail("the header length %.0f is larger than the %d-byte limit", n, MAX_HEADER) end
  if n > size - 8 then fail("the header length %.0f is beyond the end of the file (%d bytes)", n, size) end
  local hbuf = ffi.new("char[?]", n)
  if C.kl_file_read(f, 8, hbuf, n) ~= 0 then fail("cannot read the header") end
  local text = ffi.string(hbuf, n)
  local ok, header = pcall(json.decode, text)
  if not ok then fail("the header is not valid JSON (%s)", tostring(header)) end
  if type(header) ~= "table" or header == json.null or (next(header) ~= nil and header[1] ~= nil) then
    fail("the header is not a JSON object")
  end
  local data_start = 8 + n
  local data_size = size - data_start
  local metadata = header.__metadata__ or {}
  if type(metadata) ~= "table" or metadata[1] ~= nil then fail("__metadata__ is not a JSON object") end
  for k, v in pairs(metadata) do
    if type(v) ~= "string" then fail("__metadata__ value '%s' is not a string", tostring(k)) end
  end
  local tensors, names = {}, {}
  for name, e in pairs(header) do
    if name ~= "__metadata__" then
      if type(e) ~= "table" then fail("entry '%s' is not an object", name) end
      if type(e.dtype) ~= "string" then fail("tensor '%s' has no dtype", name) end
      if e.dtype ~= "F32" then fail("tensor '%s' has dtype %s; klua reads F32 only", name, e.dtype) end
      local shape = e.shape
      if type(shape) ~= "table" or (next(shape) ~= nil and shape[1] == nil) then fail("tensor '%s' has no shape list", name) end
      if #shape > 8 then fail("tensor '%s' has rank %d; at most 8 is supported", name, #shape) end
      local count = 1
      for i, d in ipairs(shape) do
        if not is_int(d) then fail("tensor '%s' has an invalid size %s at position %d of its shape", name, tostring(d), i) end
        count = count * d
      end
      for k in pairs(shape) do
        if type(k) ~= "number" or k > #shape then fail("tensor '%s' has a malformed shape", name) end
      end
      local off = e.data_offsets
      if type(off) ~= "table" or #off ~= 2 or not is_int(off[1]) or not is_int(off[2]) then
        fail("tensor '%s' has invalid data_offsets (expected [begin, end])", name)
      end
      local b, en = off[1], off[2]
      if b > en then fail("tensor '%s' has data_offsets [%d, %d] with begin after end", name, b, en) end
      if en > data_size then
        fail("tensor '%s' has data_offsets [%d, %d] beyond the end of the data (%d bytes)", name, b, en, data_size)
      end
      if en - b ~= count * 4 then
        fail("tensor '%s' has shape %s (%.0f bytes of F32) but its data_offsets [%d, %d] span %d bytes",
          name, core.shape_str(shape), count * 4, b, en, en - b)
      end
      tensors[name] = { shape = shape, b = b, e = en, count = count }
      names[#names + 1] = name
    end
  end
  -- The data must be covered exactly once: no overlaps, no holes.
  table.sort(names, function(x, y)
    local a, c = tensors[x], tensors[y]
    if a.b ~= c.b then return a.b < c.b end
    return a.e < c.e
  end)
  local pos = 0
  for _, name in ipairs(names) do
    local t = tensors[name]
    if t.b < pos then fail("tensor '%s' overlaps the data of another tensor (offsets [%d, %d])", name, t.b, t.e) end
    if t.b > pos then fail("the bytes %d..%d of the data belong to no tensor", pos, t.b) end
    pos = t.e
  end
  if pos ~= data_size then fail("the file has %d bytes after the last tensor's data", data_size - pos) end
  table.sort(names)
  return { path = path, file = f, metadata = metadata, tensors = tensors, names = names, data_start = data_start, who = who }
end

--- read_tensor(info, name): the tensor stored under name.
function saving.read_tensor(info, name)
  local e = info.tensors[name]
  if not e then core.raise(("%s: %s: no tensor named '%s'"):format(info.who, info.path, name)) end
  local tensor = require("klua.tensor")
  local t = tensor.empty(e.shape)
  if e.count > 0 and C.kl_file_read_tensor(info.file, info.data_start + e.b, t.p) ~= 0 then
    core.raise(("%s: %s: %s"):format(info.who, info.path, core.last_error()))
  end
  return t
end

function saving.close(info)
  if info.file then close_file(info.file); info.file = nil end
end

--- load_safetensors(path): {name = tensor} and the metadata table.
function saving.load_safetensors(path)
  local info = saving.read_header(path, "load_safetensors")
  local out = {}
  local ok, err = pcall(function()
    for _, name in ipairs(info.names) do out[name] = saving.read_tensor(info, name) end
  end)
  saving.close(info)
  if not ok then error(err, 0) end
  return out, info.metadata
end

--- save_safetensors(path, {name = tensor}, metadata): tensors in name order.
function saving.save_safetensors(path, tensors, metadata)
  local names = {}
  for k, t in pairs(tensors) do
    if type(k) ~= "string" or not core.is_tensor(t) then core.raise("save_safetensors: expected {name = tensor}") end
    names[#names + 1] = k
  end
  table.sort(names)
  local entries = {}
  for i, k in ipairs(names) do entries[i] = { name = k, tensor = tensors[k] } end
  write_safetensors(path, "save_safetensors", entries, metadata)
end

--------------------------------------------------------------------------------
-- JSON with non-finite numbers (callback states hold inf)

local function to_plain(v)
  if type(v) == "number" then
    if v ~= v then return { __float__ = "nan" } end
    if v == math.huge then return { __float__ = "inf" } end
    if v == -math.huge then return { __float__ = "-inf" } end
    return v
  end
  if type(v) == "table" and getmetatable(v) == nil then
    local out = {}
    for k, x in pairs(v) do out[k] = to_plain(x) end
    return out
  end
  if core.is_tensor(v) then return v:item() end
  return v
end

local function from_plain(v)
  if type(v) == "table" then
    if v.__float__ then
      return ({ nan = 0 / 0, inf = math.huge, ["-inf"] = -math.huge })[v.__float__]
    end
    local out = {}
    for k, x in pairs(v) do out[k] = from_plain(x) end
    return out
  end
  return v
end

--------------------------------------------------------------------------------
-- Weights

local function check_built(model, who)
  local entries = saving.weight_entries(model)
  if #entries == 0 and not rawget(model, "built") then
    model:raise("%s: the model has no weights yet; call it on data or model:build(input_shape) first", who)
  end
  return entries
end

local function build_config_text(model)
  if rawget(model, "_graph") or rawget(model, "_layers") then return nil end
  local bc = model.get_build_config and model:get_build_config()
  if not bc then return nil end
  local ok, text = pcall(json.encode, bc)
  return ok and text or nil
end

--- save_weights(model, path): every weight, named by its path, in safetensors form.
function saving.save_weights(model, path)
  local entries = check_built(model, "save_weights")
  local list = {}
  for i, e in ipairs(entries) do list[i] = { name = e.path, tensor = e.var } end
  write_safetensors(path, "save_weights", list, { format = "klua.weights", build_config = build_config_text(model) })
end

-- Checks every weight against the file, then assigns them all (or none).
local function assign_weights(model, info, who, skip_mismatch)
  if next(info.metadata) and not rawget(model, "built") and info.metadata.build_config then
    local ok, bc = pcall(json.decode, info.metadata.build_config)
    if ok and type(bc) == "table" then model:build_from_config(bc) end
  end
  local entries = saving.weight_entries(model)
  if #entries == 0 then
    saving.close(info)
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
    saving.close(info)
    local shown = {}
    for i = 1, math.min(#problems, 5) do shown[i] = problems[i] end
    local more = #problems > 5 and ("; and %d more"):format(#problems - 5) or ""
    core.raise(("%s: %s does not match the model: %s%s"):format(who, info.path, table.concat(shown, "; "), more))
  elseif #problems > 0 then
    for _, p in ipairs(problems) do io.stderr:write(("klua warning: %s: skipping: %s\n"):format(who, p)) end
  end
  local values = {}
  local ok, err = pcall(function()
    for i, e in ipairs(plan) do values[i] = saving.read_tensor(info, e.path) end
  end)
  if not ok then saving.close(info); error(err, 0) end
  local token = C.kl_grad_pause()
  for i, e in ipairs(plan) do e.var:assign(values[i]) end
  C.kl_grad_resume(token)
end

--- load_weights(model, path, {skip_mismatch=false}): matched by name, every shape checked.
function saving.load_weights(model, path, kw)
  kw = kw or {}
  local info = saving.read_header(path, "load_weights")
  assign_weights(model, info, "load_weights", kw.skip_mismatch)
  saving.close(info)
end

--------------------------------------------------------------------------------
-- Optimizer state

local OPT_PREFIX = "optimizer/variables/"

local function optimizer_entries(opt)
  local st = opt:get_state()
  local list, meta = {}, {}
  for i, t in ipairs(st.variables or {}) do list[i] = { name = OPT_PREFIX .. (i - 1), tensor = t } end
  for k, v in pairs(st) do
    if k ~= "variables" then meta[k] = v end
  end
  meta.nvariables = #list
  return list, meta
end

local function restore_optimizer(opt, info, meta, who)
  local vars = {}
  for i = 1, meta.nvariables or 0 do
    local name = OPT_PREFIX .. (i - 1)
    if not info.tensors[name] then core.raise(("%s: %s: optimizer slot '%s' is missing"):format(who, info.path, name)) end
    vars[i] = saving.read_tensor(info, name)
  end
  local st = from_plain(meta)
  st.nvariables = nil
  st.variables = vars
  opt:set_state(st)
end

--------------------------------------------------------------------------------
-- Compile config (what can be written as JSON)

local function serialize_spec(x, kind)
  local mod = require("klua." .. kind)
  if x == nil or type(x) == "string" or type(x) == "number" or type(x) == "boolean" then return x end
  if type(x) == "function" then error(("a %s given as a function cannot be saved"):format(kind:sub(1, -2)), 0) end
  if type(x) == "table" and getmetatable(x) == nil then
    local out = {}
    for k, v in pairs(x) do out[k] = serialize_spec(v, kind) end
    return out
  end
  return { __object__ = mod.serialize(x) }
end

local function deserialize_spec(x, kind)
  if type(x) ~= "table" then return x end
  if x.__object__ then return require("klua." .. kind).get(x.__object__) end
  local out = {}
  for k, v in pairs(x) do out[k] = deserialize_spec(v, kind) end
  return out
end

local function compile_config(model)
  local args = rawget(model, "_compile_args")
  if not args then return nil end
  local ok, text = pcall(function()
    return json.encode({
      optimizer = args.optimizer, loss = serialize_spec(args.loss, "losses"), loss_weights = args.loss_weights,
      metrics = serialize_spec(args.metrics, "metrics"), weighted_metrics = serialize_spec(args.weighted_metrics, "metrics"),
    })
  end)
  if not ok then
    io.stderr:write(("klua warning: save: the compile arguments cannot be saved (%s); load_model will return the model uncompiled\n")
      :format(tostring(text)))
    return nil
  end
  return text
end

--------------------------------------------------------------------------------
-- Models

--- save_model(model, path, {include_optimizer=true}).
function saving.save_model(model, path, kw)
  kw = kw or {}
  local entries = check_built(model, "save")
  local list = {}
  for i, e in ipairs(entries) do
    if e.path:find("^optimizer/") then model:raise("save: the weight path '%s' is reserved for the optimizer", e.path) end
    list[i] = { name = e.path, tensor = e.var }
  end
  local ok, config = pcall(function() return json.encode(saving.serialize_layer(model)) end)
  if not ok then model:raise("save: cannot write the model config: %s", tostring(config)) end
  local metadata = {
    format = "klua.model", klua_version = require("klua")._VERSION, model_config = config,
    compile_config = compile_config(model),
  }
  local opt = rawget(model, "optimizer")
  if kw.include_optimizer ~= false and opt and metadata.compile_config then
    local olist, meta = optimizer_entries(opt)
    for _, e in ipairs(olist) do list[#list + 1] = e end
    metadata.optimizer_state = json.encode(to_plain(meta))
  end
  write_safetensors(path, "save", list, metadata)
end

local function decode_meta(info, key, who)
  local text = info.metadata[key]
  if text == nil then return nil end
  local ok, v = pcall(json.decode, text)
  if not ok then
    saving.close(info)
    core.raise(("%s: %s: %s is not valid JSON (%s)"):format(who, info.path, key, tostring(v)))
  end
  return v
end

--- load_model(path, {compile=true, custom_objects={Name = Class}}).
function saving.load_model(path, kw)
  kw = kw or {}
  local who = "load_model"
  local info = saving.read_header(path, who)
  if info.metadata.format ~= "klua.model" then
    saving.close(info)
    core.raise(("%s: %s is not a klua model file (its metadata has no model config); for weights only, use model:load_weights")
      :format(who, path))
  end
  local config = decode_meta(info, "model_config", who)
  local ok, model = pcall(saving.deserialize_layer, config, kw.custom_objects)
  if not ok then
    saving.close(info)
    error(("%s: %s: %s"):format(who, path, tostring(model):gsub("^[^\n]-:%d+: ", "")), 0)
  end
  assign_weights(model, info, who, false)
  local cc = decode_meta(info, "compile_config", who)
  if cc and kw.compile ~= false then
    local okc, err = pcall(function()
      model:compile{
        optimizer = cc.optimizer, loss = deserialize_spec(cc.loss, "losses"), loss_weights = cc.loss_weights,
        metrics = deserialize_spec(cc.metrics, "metrics"), weighted_metrics = deserialize_spec(cc.weighted_metrics, "metrics"),
      }
      local ometa = decode_meta(info, "optimizer_state", who)
      if ometa then restore_optimizer(rawget(model, "optimizer"), info, ometa, who) end
    end)
    if not okc then
      saving.close(info)
      error(err, 0)
    end
  end
  saving.close(info)
  return model
end

function saving.model_from_json(text, kw)
  local ok, config = pcall(json.decode, text)
  if not ok then core.raise("model_from_json: " .. tostring(config)) end
  return saving.deserialize_layer(config, kw and kw.custom_objects)
end

--------------------------------------------------------------------------------
-- Training state (BackupAndRestore)

local function u64_parts(x)
  return { tonumber(x / 4294967296ULL), tonumber(x % 4294967296ULL) }
end
local function u64_from(hi, lo)
  return ffi.new("uint64_t", hi) * 4294967296ULL + lo
end

-- klua.random's state and the private generators some layers keep
-- (Dropout with a seed: a uint64_t[2] in `_rng`), by position in the model.
local function rng_state(model)
  local st = require("klua.random").get_state()
  local out = { global = { u64_parts(st[1]), u64_parts(st[2]) }, layers = {} }
  for i, l in ipairs(model:_flatten_layers()) do
    local r = rawget(l, "_rng")
    if type(r) == "cdata" then out.layers[tostring(i)] = { u64_parts(r[0]), u64_parts(r[1]) } end
  end
  return out
end

local function set_rng_state(model, st)
  local g = st.global
  require("klua.random").set_state({ u64_from(g[1][1], g[1][2]), u64_from(g[2][1], g[2][2]) })
  local layers = model:_flatten_layers()
  for k, v in pairs(st.layers or {}) do
    local l = layers[tonumber(k)]
    local r = l and rawget(l, "_rng")
    if type(r) == "cdata" then
      r[0] = u64_from(v[1][1], v[1][2])
      r[1] = u64_from(v[2][1], v[2][2])
    end
  end
end

--- save_training_state(model, path, {epoch=, callbacks=}): weights, optimizer
-- state, epoch, random state and callback states in one file (atomically).
function saving.save_training_state(model, path, kw)
  local entries = check_built(model, "BackupAndRestore")
  local list = {}
  for i, e in ipairs(entries) do list[i] = { name = e.path, tensor = e.var } end
  local state = { epoch = kw.epoch, rng = rng_state(model), callbacks = {} }
  for i, cb in ipairs(kw.callbacks or {}) do
    if cb.get_state then state.callbacks[tostring(i)] = { class = getmetatable(cb).__name, state = cb:get_state() } end
  end
  local metadata = { format = "klua.backup", training_state = json.encode(to_plain(state)) }
  local opt = rawget(model, "optimizer")
  if opt then
    local olist, meta = optimizer_entries(opt)
    for _, e in ipairs(olist) do list[#list + 1] = e end
    metadata.optimizer_state = json.encode(to_plain(meta))
  end
  write_safetensors(path, "BackupAndRestore", list, metadata)
end

--- restore_training_state(model, path, callbacks) -> {epoch=}.
function saving.restore_training_state(model, path, callbacks)
  local who = "BackupAndRestore"
  local info = saving.read_header(path, who)
  if info.metadata.format ~= "klua.backup" then
    saving.close(info)
    core.raise(("%s: %s is not a klua backup file"):format(who, path))
  end
  local state = from_plain(decode_meta(info, "training_state", who))
  assign_weights(model, info, who, false)
  local ometa = decode_meta(info, "optimizer_state", who)
  local opt = rawget(model, "optimizer")
  if ometa and opt then
    local ok, err = pcall(restore_optimizer, opt, info, ometa, who)
    if not ok then saving.close(info); error(err, 0) end
  end
  saving.close(info)
  if type(state) ~= "table" or type(state.epoch) ~= "number" or type(state.rng) ~= "table" then
    core.raise(("%s: %s: the training state is incomplete"):format(who, path))
  end
  set_rng_state(model, state.rng)
  for k, v in pairs(state.callbacks or {}) do
    local cb = callbacks and callbacks[tonumber(k)]
    if cb and cb.set_state and getmetatable(cb).__name == v.class then cb:set_state(v.state) end
  end
  return state
end

return saving
