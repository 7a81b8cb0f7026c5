-- saving/training_state.lua — what BackupAndRestore writes and reads: the
-- weights, the optimizer's state, the epoch, every random generator's state
-- (klua.random's global stream and, on several processes, every rank's
-- process stream; the generators the model's layers hold and
-- those of the training data, e.g. a seeded Dataset:shuffle) and the
-- callbacks' states, in one file written atomically.
local core = require("klua.core")
local json = require("klua.json")
local random = require("klua.random")
local distribution = require("klua.distribution")
local safetensors = require("klua.saving.safetensors")
local serialization = require("klua.saving.serialization")
local weights = require("klua.saving.weights")
local model_file = require("klua.saving.model_file")

local M = {}

-- The generators whose states decide what comes next, each under a name
-- that a rebuilt model (and data pipeline) gives them again: "layer/<i>/<field>"
-- by the layer's position in the model and its field, "data/<j>" by position.
local function generators(model, data_generators)
  local out = {}
  for i, layer in ipairs(model:_flatten_layers()) do
    local keys = {}
    for k, v in pairs(layer) do
      if type(k) == "string" and random.is_generator(v) then keys[#keys + 1] = k end
    end
    table.sort(keys)
    for _, k in ipairs(keys) do out[#out + 1] = { name = ("layer/%d/%s"):format(i, k), gen = rawget(layer, k) } end
  end
  for j, g in ipairs(data_generators or {}) do out[#out + 1] = { name = "data/" .. j, gen = g } end
  return out
end

local function rng_state(model, data_generators)
  local st = { global = random.get_state(), generators = {} }
  for _, e in ipairs(generators(model, data_generators)) do st.generators[e.name] = e.gen:get_state() end
  -- under a multi-process distribution: every rank's own stream (unseeded dropout), by rank
  st.process = distribution.process_stream_states()
  return st
end

local function set_rng_state(model, data_generators, st)
  random.set_state(st.global)
  for _, e in ipairs(generators(model, data_generators)) do
    local s = st.generators and st.generators[e.name]
    if s then e.gen:set_state(s) end
  end
  local g = random.process_stream()
  local mine = g and st.process and st.process[tostring(distribution.process_id())]
  if mine then g:set_state(mine) end
end

--- save_training_state(model, path, {epoch=, callbacks=, generators=}): weights, optimizer state, epoch, random
-- generator states and callbacks' states in one file (what BackupAndRestore writes).
function M.save_training_state(model, path, kw)
  local entries = weights.check_built(model, "BackupAndRestore")
  local list = {}
  for i, e in ipairs(entries) do list[i] = { name = e.path, tensor = e.var } end
  local state = { epoch = kw.epoch, rng = rng_state(model, kw.generators), callbacks = {} }
  for i, cb in ipairs(kw.callbacks or {}) do
    if cb.get_state then state.callbacks[tostring(i)] = { class = getmetatable(cb).__name, state = cb:get_state() } end
  end
  local metadata = { format = "klua.backup", training_state = json.encode(serialization.to_plain(state)) }
  local opt = rawget(model, "optimizer")
  if opt then
    weights.add_optimizer_state(opt, list, metadata)
  end
  safetensors.write_safetensors(path, "BackupAndRestore", list, metadata)
end

--- restore_training_state(model, path, callbacks, generators) -> {epoch=}: puts back what save_training_state wrote.
function M.restore_training_state(model, path, callbacks, data_generators)
  local who = "BackupAndRestore"
  local info = safetensors.read_header(path, who)
  if info.metadata.format ~= "klua.backup" then
    safetensors.close(info)
    core.raise(("%s: %s is not a klua backup file"):format(who, path))
  end
  local state = serialization.from_plain(model_file.decode_meta(info, "training_state", who))
  weights.assign_weights(model, info, who, false)
  local ometa = model_file.decode_meta(info, "optimizer_state", who)
  local opt = rawget(model, "optimizer")
  if ometa and opt then
    local ok, err = pcall(weights.restore_optimizer, opt, info, ometa, who)
    if not ok then safetensors.close(info); error(err, 0) end
  end
  safetensors.close(info)
  if type(state) ~= "table" or type(state.epoch) ~= "number" or type(state.rng) ~= "table" then
    core.raise(("%s: %s: the training state is incomplete"):format(who, path))
  end
  set_rng_state(model, data_generators, state.rng)
  for k, v in pairs(state.callbacks or {}) do
    local cb = callbacks and callbacks[tonumber(k)]
    if cb and cb.set_state and getmetatable(cb).__name == v.class then cb:set_state(v.state) end
  end
  return state
end

return M
