-- trainers/trainer.lua — what klua.Model adds for training, as Keras 3's
-- Trainer: compile, fit, evaluate, predict, train_on_batch, test_on_batch,
-- predict_on_batch and reset_metrics, installed on the Model class by
-- models/model.lua (install). The per-batch steps are trainers/steps.lua, the
-- compiled losses and metrics trainers/compile_utils.lua, the data
-- trainers/data_adapters.lua.
--
--   model:compile{optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = {"accuracy"}}
--   local history = model:fit{x = x, y = y, batch_size = 64, epochs = 5, validation_split = 0.1}
--   print(history.history.loss[5], history.history.val_accuracy[5])
--
-- Keras's positional forms work too: model:fit(x, y, {epochs = 5}),
-- model:evaluate(x, y), model:predict(x), model:compile(optimizer, {loss = ...}).
local core = require("klua.core")
local ops = require("klua.ops")
local optimizers = require("klua.optimizers")
local callbacks = require("klua.callbacks")
local structure = require("klua.tree")
local arguments = require("klua.trainers.arguments")
local adapters = require("klua.trainers.data_adapters")
local class_weights = require("klua.trainers.class_weights")
local compile_utils = require("klua.trainers.compile_utils")
local steps = require("klua.trainers.steps")
-- distribution: identities in one process; under a multi-process DataParallel
-- each process reads its slice of every batch and the logs are global.
local distribution = require("klua.distribution.training")

local raise = core.raise
local collect_args, set, verbose_of = arguments.collect_args, arguments.set, arguments.verbose_of
local make_adapter, to_tensors = adapters.make_adapter, adapters.to_tensors
local compiled_of, scalar = compile_utils.compiled_of, compile_utils.scalar

local function warn(msg) io.stderr:write("klua warning: ", msg, "\n") end

local function scalars(logs)
  local out = {}
  for k, v in pairs(logs) do out[k] = scalar(v) end
  return out
end

--------------------------------------------------------------------------------
-- compile

local COMPILE_ARGS = set { "optimizer", "loss", "loss_weights", "metrics", "weighted_metrics", "run_eagerly",
  "steps_per_execution", "jit_compile", "auto_scale_loss" }

--- Model:compile{optimizer="rmsprop", loss=nil, loss_weights=nil, metrics=nil, weighted_metrics=nil}
-- (also compile(optimizer, {loss=, ...})): sets up training: the optimizer, losses and metrics, by object or name.
local COMPILE_POS = { "optimizer", "loss", "loss_weights", "metrics", "weighted_metrics", "run_eagerly",
  "steps_per_execution", "jit_compile", "auto_scale_loss" }
local function compile(self, ...)
  local kw
  local a, b = ...
  if type(a) == "table" and getmetatable(a) == nil and select("#", ...) <= 1 and a[1] == nil then
    kw = a
  elseif type(b) == "table" and getmetatable(b) == nil and b[1] == nil and next(b) ~= nil and select("#", ...) == 2
      and COMPILE_ARGS[next(b)] then
    kw = {}                                    -- compile(optimizer, {loss=, ...})
    for k, v in pairs(b) do kw[k] = v end
    if a ~= nil then kw.optimizer = a end
  else
    kw = collect_args("compile", COMPILE_ARGS, COMPILE_POS, ...)   -- Keras's compile("adam", "mse")
  end
  for k in pairs(kw) do
    if not COMPILE_ARGS[k] then raise(("compile: unknown argument `%s`"):format(tostring(k))) end
  end
  local ok, opt = pcall(optimizers.get, kw.optimizer == nil and "rmsprop" or kw.optimizer)
  if not ok then raise("compile: " .. tostring(opt)) end
  rawset(self, "optimizer", opt)
  rawset(self, "_compiled", compile_utils.Compiled(self, kw))
  rawset(self, "_compile_args", {
    optimizer = optimizers.serialize(opt), loss = kw.loss, loss_weights = kw.loss_weights,
    metrics = kw.metrics, weighted_metrics = kw.weighted_metrics,
  })
  rawset(self, "compiled", true)
end

--- Model:reset_metrics(): resets the state of the compiled loss tracker and metrics.
local function reset_metrics(self)
  local c = rawget(self, "_compiled")
  if c then c:reset() end
end

--------------------------------------------------------------------------------
-- fit

local FIT_ARGS = set { "x", "y", "batch_size", "epochs", "verbose", "callbacks", "validation_split", "validation_data",
  "shuffle", "class_weight", "sample_weight", "initial_epoch", "steps_per_epoch", "validation_steps",
  "validation_batch_size", "validation_freq" }
-- Keras's positional order: fit(x, y, batch_size, epochs, verbose, callbacks, ...).
local FIT_POS = { "x", "y", "batch_size", "epochs", "verbose", "callbacks", "validation_split", "validation_data",
  "shuffle", "class_weight", "sample_weight", "initial_epoch", "steps_per_epoch", "validation_steps",
  "validation_batch_size", "validation_freq" }

-- Builds a model that has no weights yet from its first batch, before the
-- callbacks start (BackupAndRestore needs the weights in on_train_begin).
local function ensure_built(self, adapter)
  if rawget(self, "built") and #self.weights > 0 then return end
  local data = adapter:first_batch()
  if data ~= nil then self:_build_on(data[1]) end
end

-- The loop over a validation or evaluation adapter; the logs as numbers.
local function run_evaluation(self, adapter, list, in_fit)
  self:reset_metrics()
  if not in_fit then list:set_params({ verbose = list.params.verbose, epochs = 1, steps = adapter.steps }) end
  list:on_test_begin()
  local logs = {}
  local step = 0
  for data in adapter:epoch() do
    list:on_test_batch_begin(step)
    if data.empty then logs = distribution.empty_test_step(self) else logs = self:test_step(data) end  -- distribution
    logs = distribution.reduce_logs(self, logs)                                                          -- distribution
    list:on_test_batch_end(step, logs)
    step = step + 1
  end
  if step == 0 then raise("evaluate: the data yielded no batches") end
  local out = scalars(logs)
  list:on_test_end(out)
  return out
end

--- fit{x=, y=, batch_size=32, epochs=1, verbose=1, callbacks=, validation_split=,
-- validation_data=, shuffle=true, class_weight=, sample_weight=, initial_epoch=0,
-- steps_per_epoch=, validation_steps=, validation_batch_size=, validation_freq=1}:
-- the History callback.
local function fit(self, ...)
  local who = "fit"
  local kw = collect_args(who, FIT_ARGS, FIT_POS, ...)
  compiled_of(self, who)
  local epochs = kw.epochs or 1
  if type(epochs) ~= "number" or epochs < 0 or epochs % 1 ~= 0 then
    raise("fit: epochs must be a non-negative integer. Received: epochs=" .. tostring(epochs))
  end
  local verbose = verbose_of(kw.verbose)
  local batch_size = kw.batch_size or 32
  local x, y, sw = kw.x, kw.y, kw.sample_weight
  local val
  if kw.validation_data ~= nil then
    val = kw.validation_data
    adapters.check_validation_data(who, val)
  elseif kw.validation_split ~= nil and kw.validation_split ~= 0 then
    x, y, sw, val = adapters.split_validation(who, x, y, sw, kw.validation_split)
  end
  local steps_per_epoch = kw.steps_per_epoch
  local train = make_adapter(who, kw, x, y, sw, batch_size, kw.shuffle ~= false, steps_per_epoch, steps_per_epoch ~= nil)
  train = distribution.shard(train, { training = true, dataset = adapters.is_dataset(x) })  -- distribution
  local cw, ncls
  if kw.class_weight ~= nil then cw, ncls = class_weights.vector(kw.class_weight, who) end
  ensure_built(self, train)

  local list = callbacks.CallbackList(kw.callbacks, {
    add_history = true, add_progbar = verbose ~= 0, model = self, verbose = verbose, epochs = epochs, steps = train.steps,
  })
  list.data_generators = train:generators()
  for _, cb in ipairs(list.callbacks) do
    if cb.set_callback_list then cb:set_callback_list(list) end
  end
  rawset(self, "stop_training", false)
  rawset(self, "_initial_epoch", nil)
  list:on_train_begin()
  -- a callback (BackupAndRestore) may set the epoch to resume from
  local initial_epoch = rawget(self, "_initial_epoch") or kw.initial_epoch or 0
  rawset(self, "_initial_epoch", nil)
  distribution.sync_model(self, who)                            -- distribution: rank 0's weights everywhere
  distribution.agree_on(initial_epoch, "the epoch to start from")
  local val_adapter
  if val ~= nil then
    val_adapter = adapters.validation_adapter(who, val, kw.validation_batch_size or batch_size, kw.validation_steps)
    val_adapter = distribution.shard(val_adapter, { dataset = adapters.is_dataset(val) })  -- distribution
  end
  local freq = kw.validation_freq or 1
  local logs = {}
  for epoch = initial_epoch, epochs - 1 do
    self:reset_metrics()
    list:on_epoch_begin(epoch)
    local step = 0
    for data in train:epoch() do
      if cw and not data.empty then data[3] = class_weights.sample_weights(data[2], data[3], cw, ncls, who) end
      list:on_train_batch_begin(step)
      if data.empty then logs = distribution.empty_train_step(self) else logs = self:train_step(data) end  -- distribution
      logs = distribution.reduce_logs(self, logs)                                                            -- distribution
      list:on_train_batch_end(step, logs)
      step = step + 1
      if rawget(self, "stop_training") then break end
    end
    if train.ran_out then
      warn("Your input ran out of data; interrupting training. Make sure that your dataset can generate at least `steps_per_epoch * epochs` batches.")
      rawset(self, "stop_training", true)
    end
    distribution.average_non_trainable(self)                    -- distribution: moving statistics
    local epoch_logs = scalars(logs)
    if val_adapter and (epoch + 1) % freq == 0 then
      local vlogs = run_evaluation(self, val_adapter, list, true)
      for k, v in pairs(vlogs) do epoch_logs["val_" .. k] = v end
    end
    list:on_epoch_end(epoch, epoch_logs)
    logs = epoch_logs
    if rawget(self, "stop_training") then break end
  end
  distribution.finish()
  -- Keras: with use_ema, the weights take their moving averages after the last epoch
  local opt = rawget(self, "optimizer")
  if epochs > 0 and opt and opt.finalize_variable_values then opt:finalize_variable_values(self.trainable_weights) end
  list:on_train_end(logs)
  return list.history
end

--------------------------------------------------------------------------------
-- evaluate

local EVAL_ARGS = set { "x", "y", "batch_size", "verbose", "sample_weight", "steps", "callbacks", "return_dict" }
local EVAL_POS = { "x", "y", "batch_size", "verbose", "sample_weight", "steps", "callbacks", "return_dict" }

-- The loss alone, {loss, metric...} in metrics_names order, or the table by name.
-- Results print as Keras's do: print(model:evaluate{...}) shows
-- [0.3521, 0.9062], and a dict {accuracy: 0.9062, loss: 0.3521}.
local function number_text(v) return type(v) == "number" and ("%.6g"):format(v) or tostring(v) end
local list_mt = { __tostring = function(t)
  local parts = {}
  for i = 1, #t do parts[i] = number_text(t[i]) end
  return "[" .. table.concat(parts, ", ") .. "]"
end }
local dict_mt = { __tostring = function(t)
  local keys, parts = {}, {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do parts[i] = k .. ": " .. number_text(t[k]) end
  return "{" .. table.concat(parts, ", ") .. "}"
end }

local function ordered_result(self, logs, return_dict)
  if return_dict then return setmetatable(logs, dict_mt) end
  local names = self.metrics_names
  if #names == 1 then return logs.loss end
  local out = {}
  for i, k in ipairs(names) do out[i] = logs[k] end
  return setmetatable(out, list_mt)
end

--- evaluate{x=, y=, batch_size=32, verbose=1, sample_weight=, steps=, callbacks=, return_dict=false}:
-- the loss, or {loss, metric...} in metrics_names order, or a table by name.
local function evaluate(self, ...)
  local who = "evaluate"
  local kw = collect_args(who, EVAL_ARGS, EVAL_POS, ...)
  compiled_of(self, who)
  local verbose = verbose_of(kw.verbose)
  local adapter = make_adapter(who, kw, kw.x, kw.y, kw.sample_weight, kw.batch_size or 32, false, kw.steps)
  adapter = distribution.shard(adapter, { dataset = adapters.is_dataset(kw.x) })  -- distribution
  local list = callbacks.CallbackList(kw.callbacks, { add_progbar = verbose ~= 0, model = self, verbose = verbose, epochs = 1, steps = adapter.steps })
  local logs = run_evaluation(self, adapter, list, false)
  return ordered_result(self, logs, kw.return_dict)
end

--------------------------------------------------------------------------------
-- predict

local PRED_ARGS = set { "x", "batch_size", "verbose", "steps", "callbacks" }
local PRED_POS = { "x", "batch_size", "verbose", "steps", "callbacks" }

-- The batches' outputs joined along the batch axis, structure kept.
local function concat_outputs(batches)
  if #batches == 1 then return batches[1] end
  local first = batches[1]
  if core.is_tensor(first) then return ops.concatenate(batches, 1) end
  local out = {}
  for _, k in ipairs(structure.ordered_keys(first)) do
    local parts = {}
    for i, bt in ipairs(batches) do parts[i] = bt[k] end
    out[k] = concat_outputs(parts)
  end
  return out
end

--- predict{x=, batch_size=32, verbose=1, steps=, callbacks=}: the outputs for
-- all of x, computed batch by batch in inference mode.
local function predict(self, ...)
  local who = "predict"
  local kw = collect_args(who, PRED_ARGS, PRED_POS, ...)
  local verbose = verbose_of(kw.verbose)
  -- a Dataset brings its own batches; batch_size is then refused by make_adapter
  local adapter = make_adapter(who, kw, kw.x, nil, nil, kw.batch_size or 32, false, kw.steps)
  adapter = distribution.shard(adapter, { dataset = adapters.is_dataset(kw.x), whole_when_short = true })  -- distribution
  local list = callbacks.CallbackList(kw.callbacks, { add_progbar = verbose ~= 0, model = self, verbose = verbose, epochs = 1, steps = adapter.steps })
  list:on_predict_begin()
  local outs = {}
  local step = 0
  for data in adapter:epoch() do
    list:on_predict_batch_begin(step)
    local y = distribution.gather_outputs(self:predict_step(data), data)  -- distribution: the whole batch's
    outs[#outs + 1] = y
    list:on_predict_batch_end(step, { outputs = y })
    step = step + 1
  end
  list:on_predict_end()
  if #outs == 0 then raise("predict: the data yielded no batches") end
  return concat_outputs(outs)
end

--------------------------------------------------------------------------------
-- On one batch

local BATCH_ARGS = set { "x", "y", "sample_weight", "class_weight", "return_dict" }
local BATCH_POS = { "x", "y", "sample_weight", "class_weight", "return_dict" }

--- train_on_batch(x, y, {sample_weight=, class_weight=, return_dict=}): one
-- step; returns the loss (or {loss, metrics...}, or a table by name). As in
-- Keras 3 the values are running means until model:reset_metrics().
local function train_on_batch(self, ...)
  local who = "train_on_batch"
  local kw = collect_args(who, BATCH_ARGS, BATCH_POS, ...)
  compiled_of(self, who)
  local x, y, sw = to_tensors(kw.x, who, "x"), to_tensors(kw.y, who, "y"), to_tensors(kw.sample_weight, who, "sample_weight")
  if kw.class_weight then
    local wv, n = class_weights.vector(kw.class_weight, who)
    sw = class_weights.sample_weights(y, sw, wv, n, who)
  end
  return ordered_result(self, scalars(self:train_step({ x, y, sw })), kw.return_dict)
end

--- test_on_batch(x, y, {sample_weight=, return_dict=}): as train_on_batch,
-- without the update.
local function test_on_batch(self, ...)
  local who = "test_on_batch"
  local kw = collect_args(who, BATCH_ARGS, BATCH_POS, ...)
  compiled_of(self, who)
  local logs = self:test_step({ to_tensors(kw.x, who, "x"), to_tensors(kw.y, who, "y"),
    to_tensors(kw.sample_weight, who, "sample_weight") })
  return ordered_result(self, scalars(logs), kw.return_dict)
end

--- Model:predict_on_batch(x): the model's output for one batch (inference mode, no callbacks).
local function predict_on_batch(self, x)
  return self:predict_step({ to_tensors(x, "predict_on_batch", "x") })
end

--------------------------------------------------------------------------------

local M = {}

-- model.fit{...} (a dot for a colon) passes the keyword table as the model:
-- say so instead of failing somewhere inside.
local function method(name, f)
  return function(self, ...)
    if type(self) ~= "table" or rawget(self, "_klua_layer") ~= true then
      core.raise(("Model.%s: call it with a colon, model:%s{...} (it got %s as the model: model.%s{...} has a dot)")
        :format(name, name, type(self) == "table" and "a plain table" or type(self), name))
    end
    return core.named(name, f, self, ...)   -- whatever fails inside names the method
  end
end

--- install(Model): the training methods on the Model class.
function M.install(Model)
  Model.compile = method("compile", compile)
  Model.fit = method("fit", fit)
  Model.evaluate = method("evaluate", evaluate)
  Model.predict = method("predict", predict)
  Model.train_on_batch = method("train_on_batch", train_on_batch)
  Model.test_on_batch = method("test_on_batch", test_on_batch)
  Model.predict_on_batch = method("predict_on_batch", predict_on_batch)
  Model.train_step = steps.train_step
  Model.test_step = steps.test_step
  Model.predict_step = steps.predict_step
  Model.compute_loss = steps.compute_loss
  core.name_errors({ compute_loss = steps.compute_loss })   -- called directly, its errors name it
  Model.reset_metrics = reset_metrics
  -- distribution: under a multi-process DataParallel only rank 0 writes the file
  Model.save = distribution.chief_writes(Model.save)
  Model.save_weights = distribution.chief_writes(Model.save_weights)
end

return M
