-- embedding.lua — Embedding: token ids (0-based, stored in a float tensor)
-- -> rows of a trainable (input_dim, output_dim) table, gathered in C
-- (ops.take). With mask_zero = true, id 0 is padding: the layer emits a mask
-- (1 where the id is not 0) that later layers receive as kw.mask.
local core = require("klua.core")
local Layer = require("klua.layer")
local ops = require("klua.ops")
local initializers = require("klua.initializers")
local regularizers = require("klua.regularizers")
local constraints = require("klua.constraints")

local Embedding = Layer:extend("Embedding")
Embedding.input_spec = {}   -- one tensor

--- Embedding{input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=nil,
-- embeddings_constraint=nil, mask_zero=false, ...}: 0-based token ids -> rows of a trainable (input_dim, output_dim)
-- table; with mask_zero, id 0 is padding and is masked.
function Embedding:__init(input_dim, output_dim, kw)
  if type(input_dim) == "table" then
    kw = input_dim
    input_dim, output_dim = kw.input_dim, kw.output_dim
  end
  kw = kw or {}
  Layer.check_positive_int("Embedding", "input_dim", input_dim)
  Layer.check_positive_int("Embedding", "output_dim", output_dim)
  Embedding.super.__init(self, kw)
  self.input_dim, self.output_dim = input_dim, output_dim
  self.mask_zero = kw.mask_zero and true or false
  self.embeddings_initializer = initializers.get(kw.embeddings_initializer or "uniform")
  self.embeddings_regularizer = regularizers.get(kw.embeddings_regularizer)
  self.embeddings_constraint = constraints.get(kw.embeddings_constraint)
  -- Weights exist from the start: the table's shape does not depend on the input.
  self.embeddings = self:add_weight{ shape = { input_dim, output_dim }, name = "embeddings",
    initializer = self.embeddings_initializer, regularizer = self.embeddings_regularizer,
    constraint = self.embeddings_constraint }
  self.built = true
end

function Embedding:call(ids)
  if ids:numel() > 0 then
    local lo, hi = ops.min(ids):item(), ops.max(ids):item()
    if lo < 0 or hi >= self.input_dim then
      self:raise("token ids must be in [0, %d), got values in [%g, %g]", self.input_dim, lo, hi)
    end
  end
  return core.op("take", self.embeddings, ids, nil, { axes = { 0 } })
end

function Embedding:compute_mask(ids, mask)
  if not self.mask_zero then return nil end
  return core.op("not_equal", ids, core.to_tensor(0))
end

function Embedding:compute_output_shape(s)
  local out = {}
  for i, d in ipairs(s) do out[i] = d end
  out[#out + 1] = self.output_dim
  return out
end

function Embedding:get_config()
  local config = Embedding.super.get_config(self)
  config.input_dim, config.output_dim, config.mask_zero = self.input_dim, self.output_dim, self.mask_zero
  config.embeddings_initializer = initializers.serialize(self.embeddings_initializer)
  config.embeddings_regularizer = regularizers.serialize(self.embeddings_regularizer)
  config.embeddings_constraint = constraints.serialize(self.embeddings_constraint)
  return config
end

return Embedding
