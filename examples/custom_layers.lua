-- custom_layers.lua — write your own layers in Lua and train them, the way the
-- Keras guide "Making new layers and models via subclassing" teaches it.
-- Copy this file and change the layers: no recompiling.
--
--   klua examples/custom_layers.lua          (or: luajit examples/custom_layers.lua
--                                              with LUA_PATH="lua/?.lua;lua/?/init.lua;;")
--
-- It fits y = sin(2 x1) + 0.5 x2^2 with a small network of two custom layers:
-- a lazily built Linear and a non-linear layer sin((x·w + b) * a) with three
-- trainable weights, one with an L2 kernel regularizer. Each step records the
-- forward pass on a GradientTape, adds the layers' losses (the regularizer's)
-- and applies plain SGD. The loss printed every 50 steps falls.
local klua = require("klua")
local ops = klua.ops

local USAGE = [[usage: klua examples/custom_layers.lua [options]
  --steps N   SGD steps (default 400)
  --seed N    random seed (default 1)]]
local opts = klua.utils.parse_args(arg or {}, { steps = 400, seed = 1 }, USAGE)
klua.random.seed(opts.seed)

-- A Linear layer whose weights are created on the first call (build), sized
-- from the input's last dimension.
local Linear = klua.Layer:extend("Linear")

-- Constructors take one keyword table, Linear{units = 4, name = ...};
-- Layer.args also accepts Keras's first argument by position, Linear(4).
-- Linear.from_config(config) is Linear(config), so get_config() returns every
-- constructor argument.
function Linear:__init(units, kw)
  units, kw = klua.Layer.args(units, kw, "units")
  Linear.super.__init(self, kw)
  self.units = units or 32
end

function Linear:get_config()
  local config = Linear.super.get_config(self)
  config.units = self.units
  return config
end

function Linear:build(input_shape)
  self.w = self:add_weight { shape = { input_shape[#input_shape], self.units }, initializer = "glorot_uniform", name = "kernel" }
  self.b = self:add_weight { shape = { self.units }, initializer = "zeros", name = "bias" }
end

function Linear:call(inputs)
  return ops.matmul(inputs, self.w) + self.b
end

-- sin((x·w + b) * a): a third trainable weight `a` scales each unit's frequency.
local SinLayer = klua.Layer:extend("SinLayer")

-- SinLayer(32, {...}) or SinLayer{units = 32, ...}: the second form is what
-- SinLayer.from_config(config) calls.
function SinLayer:__init(units, kw)
  units, kw = klua.Layer.args(units, kw, "units")
  SinLayer.super.__init(self, kw)
  self.units = units
  self.kernel_regularizer = klua.regularizers.get(kw.kernel_regularizer)
end

function SinLayer:build(input_shape)
  self.w = self:add_weight { shape = { input_shape[#input_shape], self.units }, initializer = "he_normal",
    name = "kernel", regularizer = self.kernel_regularizer }
  self.b = self:add_weight { shape = { self.units }, initializer = "random_uniform", name = "bias" }
  self.a = self:add_weight { shape = { self.units }, initializer = "ones", name = "frequency" }
end

function SinLayer:call(inputs)
  return ops.sin((ops.matmul(inputs, self.w) + self.b) * self.a)
end

function SinLayer:get_config()
  local config = SinLayer.super.get_config(self)
  config.units = self.units
  config.kernel_regularizer = klua.regularizers.serialize(self.kernel_regularizer)
  return config
end

-- A block made of layers: its weights are those of the layers it holds.
local Regressor = klua.Layer:extend("Regressor")

function Regressor:__init(kw)
  Regressor.super.__init(self, kw)
  self.features = SinLayer(32, { kernel_regularizer = klua.regularizers.l2(1e-4) })
  self.head = Linear(1)
end

function Regressor:call(inputs)
  return self.head(self.features(inputs))
end

-- Data: 256 points in [-1, 1]^2.
local x = klua.random.uniform({ 256, 2 }, { minval = -1, maxval = 1 })
local x1, x2 = ops.slice_axis(x, 2, 1, 1), ops.slice_axis(x, 2, 2, 2)
local y = ops.sin(x1 * 2) + ops.square(x2) * 0.5

local model = Regressor()
model(x)   -- builds the weights
print(tostring(model))
for i, w in ipairs(model.trainable_weights) do
  print(("  weight %d: %-10s %s"):format(i, w.name, klua.core.shape_str(w:shape())))
end

local optimizer = klua.optimizers and klua.optimizers.SGD and klua.optimizers.SGD { learning_rate = 0.1 }
local function sgd_step(grads, weights)
  if optimizer then
    optimizer:apply_gradients(grads, weights)
  else
    for i, w in ipairs(weights) do w:assign_sub(grads[i] * 0.1) end   -- plain SGD by hand
  end
end

local first, last
for step = 1, opts.steps do
  local tape = klua.GradientTape()
  local loss = tape:record(function()
    local prediction = model(x, { training = true })
    local l = ops.mean(ops.square(prediction - y))
    for _, extra in ipairs(model.losses) do l = l + extra end   -- the L2 penalty
    return l
  end)
  local weights = model.trainable_weights
  sgd_step(tape:gradient(loss, weights), weights)
  last = loss:item()
  first = first or last
  if step == 1 or step % 50 == 0 then print(("step %3d  loss %.5f"):format(step, last)) end
end
print(("loss %.5f -> %.5f"):format(first, last))

-- The layers' configs round-trip (name, trainable and dtype come from the base
-- class); check_from_config is the check model:save runs on every layer.
local config = model.features:get_config()
local copy = SinLayer.from_config(config)
model.head:check_from_config()
print(("config round trip: %s units=%d, %s; %s units=%d"):format(copy.name, copy.units, tostring(copy.kernel_regularizer),
  model.head.name, Linear.from_config(model.head:get_config()).units))
