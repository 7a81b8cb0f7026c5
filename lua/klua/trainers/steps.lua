-- trainers/steps.lua — one batch of each kind, as Keras 3's Trainer defines
-- them: train_step (forward under a tape, compute_loss, one optimizer update),
-- test_step, predict_step and compute_loss. fit/evaluate/predict and the
-- on-batch API call these per batch through the model, so a Model subclass
-- can override any of them. data = {x, y, sample_weight}.
local core = require("klua.core")
local GradientTape = require("klua.tape")
local no_grad = require("klua.no_grad")
local structure = require("klua.tree")
local compile_utils = require("klua.trainers.compile_utils")

local flatten, compiled_of = structure.flatten, compile_utils.compiled_of

local M = {}

--- compute_loss(x, y, y_pred, sample_weight): the compiled losses plus the
-- model's own (add_loss and weight regularizers), read while the tape records.
function M.compute_loss(self, x, y, y_pred, sample_weight)
  local c = compiled_of(self, "compute_loss")
  local loss, parts = c:compute(y, y_pred, sample_weight, self.losses)
  return loss, parts   -- not a tail call: errors raised inside name compute_loss (core.name_errors)
end

-- The metrics' batch weight: the first dimension of the first input.
local function batch_size_of(x)
  if core.is_tensor(x) then return x.nd > 0 and tonumber(x.dims[0]) or 1 end
  for _, t in ipairs(flatten(x)) do
    if core.is_tensor(t) and t.nd > 0 then return tonumber(t.dims[0]) end
  end
  return 1
end

local function forward_and_loss(self, x, y, sw, training)
  local y_pred = self(x, { training = training })
  local loss, parts = self:compute_loss(x, y, y_pred, sw)
  return y_pred, loss, parts
end

--- train_step(data): one optimizer step; returns the logs (running means
-- since the last reset). The optimizer applies each weight's constraint
-- right after its update, as in Keras; nothing here applies them again.
-- data: a list {x, y, sample_weight}.
local function check_data(who, data)
  if type(data) ~= "table" or core.class_name_of(data) then
    core.raise(("%s: data must be a list {x, y, sample_weight}, got %s"):format(who, core.describe(data)))
  end
  return data
end

function M.train_step(self, data)
  local x, y, sw = check_data("train_step", data)[1], data[2], data[3]
  local c = compiled_of(self, "fit")
  local vars = self.trainable_weights
  local tape = GradientTape()
  local y_pred, loss, parts = tape:record(forward_and_loss, self, x, y, sw, true)
  local opt = self.optimizer
  -- Keras scales the loss before the backward pass (the optimizer unscales
  -- the gradients); the metrics see the loss itself.
  local target = loss
  if opt.loss_scale_factor then target = tape:record(function() return opt:scale_loss(loss) end) end
  if #vars > 0 then
    local grads = tape:gradient(target, vars)
    opt:apply_gradients(grads, vars)
    -- nothing else saw them: their buffers go back to the pool now, warm for the
    -- next step, instead of piling up until a collection
    if opt:_consumes_gradients() then for i = 1, grads.n do core.free_now(grads[i]) end end
  end
  c:update(y, y_pred, sw, loss, parts, batch_size_of(x))
  return c:logs()
end

--- test_step(data): the loss and metrics on one batch, in inference mode.
function M.test_step(self, data)
  local x, y, sw = check_data("test_step", data)[1], data[2], data[3]
  local c = compiled_of(self, "evaluate")
  local y_pred, loss, parts = no_grad(forward_and_loss, self, x, y, sw, false)
  c:update(y, y_pred, sw, loss, parts, batch_size_of(x))
  return c:logs()
end

--- predict_step(data): the outputs for data[1], in inference mode.
function M.predict_step(self, data)
  return no_grad(self, check_data("predict_step", data)[1], { training = false })
end

return M
