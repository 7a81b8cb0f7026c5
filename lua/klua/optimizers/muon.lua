-- muon.lua — Muon, as keras.optimizers.Muon: for a 2-D weight, Nesterov
-- momentum (fused C) whose matrix is orthogonalized by five Newton-Schulz
-- iterations (klua ops: matmul is sgemm) and scaled by sqrt(max(rows, cols))
-- * rms_rate; every other weight (not 2-D, an embedding, or a path that
-- matches exclude_layers) takes Keras's fallback, an AdamW step with
-- adam_beta_1/2, adam_weight_decay and lr * adam_lr_ratio.
-- NOTE: exclude_layers entries are Lua patterns searched in the variable's
-- path (Keras: regular expressions); plain names behave the same.
local core = require("klua.core")
local tensor = require("klua.tensor")
local ops = require("klua.ops")
local no_grad = require("klua.no_grad")
local Optimizer = require("klua.optimizers.optimizer")
local Variable = require("klua.variable")
local kernels = Optimizer.kernels

local Muon = Optimizer:extend("Muon")
Muon.hyper = {
  learning_rate = 0.001, adam_beta_1 = 0.9, adam_beta_2 = 0.999, adam_weight_decay = 0.004, epsilon = 1e-7,
  weight_decay = 0.004, exclude_layers = {}, exclude_embeddings = true, muon_a = 3.4445, muon_b = -4.7750,
  muon_c = 2.0315, adam_lr_ratio = 1, momentum = 0.95, ns_steps = 5, nesterov = true, rms_rate = 0.2,
}
-- false is Keras's None: no weight decay on the AdamW weights, no RMS scaling
Muon.nullable = { adam_weight_decay = true, rms_rate = true }
Muon.default_name = "muon"

function Muon:_validate()
  for i, k in ipairs(self.exclude_layers) do
    if type(k) ~= "string" then
      core.raise(("Muon: `exclude_layers` must be a list of strings. Received: item %d = %s"):format(i, tostring(k)))
    end
  end
end

--- opt:_should_use_adamw(var): true for a weight Muon leaves to AdamW.
function Muon:_should_use_adamw(var)
  if var.nd ~= 2 then return true end
  local path = Variable.path_of(var)
  if self.exclude_embeddings and path:lower():find("embedding", 1, true) then return true end
  for _, keyword in ipairs(self.exclude_layers) do
    if path:find(keyword) then return true end
  end
  return false
end

function Muon:_slot_specs(var)
  if self:_should_use_adamw(var) then return { { "momentum", 0 }, { "velocity", 0 } } end
  return { { "momentum", 0 } }
end

-- Keras's Muon._apply_weight_decay: adam_weight_decay for the AdamW weights.
function Muon:_decay_for(var, lr)
  if not self:_use_weight_decay(var) then return 0 end
  local wd
  if self:_should_use_adamw(var) then wd = self.adam_weight_decay else wd = self.weight_decay end
  if not wd then return 0 end
  return wd * lr
end

local function transpose_last(x) return ops.swapaxes(x, -2, -1) end

--- opt:zeropower_via_newtonschulz5(x, steps): the quintic Newton-Schulz
-- iteration that brings x (rank >= 2; the last two axes are the matrix) close
-- to the orthogonal factor U V^T of its SVD.
function Muon:zeropower_via_newtonschulz5(x, steps)
  x = tensor.T(x, "Muon.zeropower_via_newtonschulz5", "x")
  if type(steps) ~= "number" or steps < 0 or steps % 1 ~= 0 then
    core.raise("Muon.zeropower_via_newtonschulz5: steps must be a non-negative integer. Received: steps=" .. core.received(steps))
  end
  local shape = x:shape()
  if #shape < 2 then
    core.raise(("Muon: expected gradient or momentum to have at least 2 dimensions. Received: shape=%s")
      :format(core.shape_str(shape)))
  end
  local a, b, c = self.muon_a, self.muon_b, self.muon_c
  local tall = shape[#shape - 1] > shape[#shape]
  if tall then x = transpose_last(x) end
  x = x / (ops.sqrt(ops.sum(ops.square(x), { -2, -1 }, true)) + 1e-7)   -- spectral norm <= 1
  for _ = 1, steps do
    local A = ops.matmul(x, transpose_last(x))
    local B = A * b + ops.matmul(A * c, A)
    x = x * a + ops.matmul(B, x)
  end
  if tall then x = transpose_last(x) end
  return x
end

--- opt:lr_adjust(x): x * sqrt(max(rows, cols)) * rms_rate (Moonlight's
-- scaling); x unchanged when rms_rate is false.
function Muon:lr_adjust(x)
  x = tensor.T(x, "Muon.lr_adjust", "x")
  if not self.rms_rate then return x end
  local shape = x:shape()
  if #shape < 2 then core.raise("Muon.lr_adjust: expected a tensor of rank >= 2. Received: shape=" .. core.shape_str(shape)) end
  return x * (math.sqrt(math.max(shape[1], shape[2])) * self.rms_rate)
end

function Muon:_update(var, grad, slots, step)
  if slots.velocity then
    local lr = step.lr
    step.lr = lr * self.adam_lr_ratio
    local rc = kernels.adam(var, grad, slots.momentum, slots.velocity, nil, step, self.adam_beta_1, self.adam_beta_2, self.epsilon)
    step.lr = lr
    return rc
  end
  local g = tensor.full(var:shape(), 0)
  local rc = kernels.muon_momentum(var, grad, slots.momentum, g, step, self.momentum, self.nesterov and 1 or 0)
  if rc ~= 0 then return rc end
  local lr = step.lr
  no_grad(function()
    var:assign_sub(self:lr_adjust(self:zeropower_via_newtonschulz5(g, self.ns_steps) * lr))
  end)
  return 0
end

return Muon
