-- dropout.lua — Dropout: during training, zero each input with probability
-- `rate` and scale the rest by 1 / (1 - rate); the identity otherwise.
-- With a seed the layer draws from its own stream, self.seed_generator
-- (reproducible, and leaves klua.random's stream alone); without one it uses
-- klua.random's global stream, or under a multi-process distribution this
-- process's own stream (klua.random.process_stream()), so masks differ by rank.
local core = require("klua.core")
local Layer = require("klua.layer")
local random = require("klua.random")

local Dropout = Layer:extend("Dropout")
Dropout.input_spec = {}   -- one tensor
Dropout.supports_masking = true

--- Dropout{rate, noise_shape=nil, seed=nil, ...}: while training, zeroes each input with probability rate and
-- scales the rest by 1 / (1 - rate); the identity otherwise.
function Dropout:__init(rate, kw)
  rate, kw = Layer.args(rate, kw, "rate")
  if type(rate) ~= "number" or rate < 0 or rate >= 1 then
    core.raise("Dropout: rate must be a number in [0, 1). Received: rate=" .. tostring(rate))
  end
  Dropout.super.__init(self, kw)
  self.rate = rate
  self.noise_shape = kw.noise_shape
  self.seed = kw.seed
  if self.seed ~= nil then
    if type(self.seed) ~= "number" or self.seed % 1 ~= 0 then
      core.raise("Dropout: seed must be an integer. Received: seed=" .. tostring(self.seed))
    end
    self.seed_generator = random.Generator(self.seed)
  end
end

-- The mask's shape: noise_shape with nil/-1 entries taken from the input.
local function mask_shape(self, x)
  local shape = x:shape()
  local ns = self.noise_shape
  if ns == nil then return shape end
  if #ns ~= #shape then
    self:raise("noise_shape %s does not match the input's rank (shape %s)", core.shape_str(ns), core.shape_str(shape))
  end
  local out = {}
  for i = 1, #shape do
    local d = ns[i]
    out[i] = (d == nil or d == -1) and shape[i] or d
  end
  return out
end

function Dropout:call(x, kw)
  if not kw.training or self.rate == 0 then return x end
  local keep = 1 - self.rate
  local mask = random.bernoulli(mask_shape(self, x), keep, { seed = rawget(self, "seed_generator") or random.process_stream() })
  return core.op("mul", x, core.op("scale", mask, nil, nil, { f = { 1 / keep, 0 } }))
end

function Dropout:compute_output_shape(s) return s end

function Dropout:get_config()
  local config = Dropout.super.get_config(self)
  config.rate, config.noise_shape, config.seed = self.rate, self.noise_shape, self.seed
  return config
end

return Dropout
