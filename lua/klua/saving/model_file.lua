-- saving/model_file.lua — whole models in one file: model:save("m.klua")
-- writes the weights (saving/weights.lua) plus the model config and compile
-- config (JSON strings in the safetensors __metadata__) and the optimizer's
-- slots; klua.models.load_model reads them back, taking classes from the
-- registry, never from code in the file.
local core = require("klua.core")
local json = require("klua.json")
local registry = require("klua.registry")
local safetensors = require("klua.saving.safetensors")
local serialization = require("klua.saving.serialization")
local weights = require("klua.saving.weights")

local M = {}

local VERSION = core.version

local function compile_config(model)
  local args = rawget(model, "_compile_args")
  if not args then return nil end
  local spec = serialization.serialize_spec
  local ok, text = pcall(function()
    return json.encode({
      optimizer = args.optimizer, loss = spec(args.loss, "losses"), loss_weights = args.loss_weights,
      metrics = spec(args.metrics, "metrics"), weighted_metrics = spec(args.weighted_metrics, "metrics"),
    })
  end)
  if not ok then
    io.stderr:write(("klua warning: save: the compile arguments cannot be saved (%s); load_model will return the model uncompiled\n")
      :format(tostring(text)))
    return nil
  end
  return text
end

--- save_model(model, path, {include_optimizer=true}): the config, weights and optimizer state in one .klua file
-- (a safetensors file with the configs as JSON in its metadata), written atomically.
function M.save_model(model, path, kw)
  kw = kw or {}
  weights.refuse_foreign_extension(path, "save", ".klua")
  local entries = weights.check_built(model, "save")
  local list = {}
  for i, e in ipairs(entries) do
    if e.path:find("^optimizer/") then model:raise("save: the weight path '%s' is reserved for the optimizer", e.path) end
    list[i] = { name = e.path, tensor = e.var }
  end
  local ok, config = pcall(function() return json.encode(serialization.serialize_layer(model)) end)
  if not ok then model:raise("save: cannot write the model config: %s", tostring(config)) end
  local metadata = {
    format = "klua.model", klua_version = VERSION, model_config = config, compile_config = compile_config(model),
  }
  local opt = rawget(model, "optimizer")
  if kw.include_optimizer ~= false and opt and metadata.compile_config then
    weights.add_optimizer_state(opt, list, metadata)
  end
  safetensors.write_safetensors(path, "save", list, metadata)
end

--- decode_meta(info, key, who): a JSON value of the file's metadata (nil if absent).
function M.decode_meta(info, key, who)
  local text = info.metadata[key]
  if text == nil then return nil end
  local ok, v = pcall(json.decode, text)
  if not ok then
    safetensors.close(info)
    core.raise(("%s: %s: %s is not valid JSON (%s)"):format(who, info.path, key, tostring(v)))
  end
  return v
end
local decode_meta = M.decode_meta

-- Room for what is not a weight while a model loads (layer objects' tensors,
-- symbolic shapes computed on zeros, garbage not collected yet).
local MARGIN = 64 * 2 ^ 20

--- default_max_bytes(info): the file's tensors as float32 (4 bytes a value,
-- whatever their dtype in the file), plus its optimizer slots once more
-- (restoring them holds a copy), plus its largest tensor of another dtype once
-- more (converted through a scratch copy), plus MARGIN.
function M.default_max_bytes(info)
  local values, slots, scratch = 0, 0, 0
  for _, name in ipairs(info.names) do
    local e = info.tensors[name]
    local bytes = e.count * 4
    values = values + bytes
    if name:find("^optimizer/") then slots = slots + bytes end
    if e.dtype and e.dtype ~= "F32" and bytes > scratch then scratch = bytes end
  end
  return values + slots + scratch + MARGIN
end

-- The model, its weights and its compile state, under the memory limit.
local function load_body(info, kw, who)
  local path = info.path
  local config = decode_meta(info, "model_config", who)
  local ok, model, refusal = weights.with_file_weights(info, who, serialization.deserialize_layer, config,
    kw.custom_objects)
  if not ok then
    safetensors.close(info)
    if refusal then error(refusal, 0) end
    error(("%s: %s: %s"):format(who, path, tostring(model):gsub("^[^\n]-:%d+: ", "")), 0)
  end
  weights.assign_weights(model, info, who, false, true)
  local cc = decode_meta(info, "compile_config", who)
  if cc and kw.compile ~= false then
    local spec = serialization.deserialize_spec
    local okc, err = pcall(function()
      registry.with_custom_objects(kw.custom_objects, function()
        model:compile{
          optimizer = cc.optimizer, loss = spec(cc.loss, "losses"), loss_weights = cc.loss_weights,
          metrics = spec(cc.metrics, "metrics"), weighted_metrics = spec(cc.weighted_metrics, "metrics"),
        }
      end)
      local ometa = decode_meta(info, "optimizer_state", who)
      if ometa then weights.restore_optimizer(rawget(model, "optimizer"), info, ometa, who) end
    end)
    if not okc then
      safetensors.close(info)
      error(err, 0)
    end
  end
  return model
end

--- load_model(path, {compile=true, custom_objects=nil, max_bytes=nil}): the model a .klua file holds, compiled
-- as it was saved. Nothing in the file is executed, and what its config builds is checked
-- against its tensors before it is allocated. max_bytes bounds the tensor
-- memory the load may allocate (default: default_max_bytes, about the file's
-- tensors as float32 plus 64 MiB); a file that needs more fails, naming it.
function M.load_model(path, kw)
  kw = kw or {}
  local who = "load_model"
  local max_bytes = kw.max_bytes
  if max_bytes ~= nil and (type(max_bytes) ~= "number" or not (max_bytes > 0) or max_bytes % 1 ~= 0) then
    core.raise(("%s: max_bytes must be a positive integer (bytes). Received: max_bytes=%s"):format(who, tostring(max_bytes)))
  end
  local info = safetensors.read_header(path, who)
  if info.metadata.format ~= "klua.model" then
    safetensors.close(info)
    core.raise(("%s: %s is not a klua model file (its metadata has no model config); for weights only, use model:load_weights")
      :format(who, path))
  end
  max_bytes = max_bytes or M.default_max_bytes(info)
  local ok, model = pcall(safetensors.with_memory_limit, max_bytes, load_body, info, kw, who)
  safetensors.close(info)
  if not ok then
    local msg = tostring(model)
    if msg:find("would exceed the memory limit", 1, true) then
      core.raise(("%s: %s: loading needs more than max_bytes = %d bytes of tensors (%s); the default is the file's "
        .. "tensors as float32, its optimizer slots once more and 64 MiB: pass {max_bytes = ...} to allow more")
        :format(who, path, max_bytes, msg:match("(tensor: allocating [^%)]*%))") or msg))
    end
    error(msg, 0)
  end
  return model
end

--- model_from_json(text, {custom_objects=nil}): a model (fresh weights) from model:to_json() text.
function M.model_from_json(text, kw)
  local ok, config = pcall(json.decode, text)
  if not ok then core.raise("model_from_json: " .. tostring(config)) end
  return serialization.deserialize_layer(config, kw and kw.custom_objects)
end

return M
