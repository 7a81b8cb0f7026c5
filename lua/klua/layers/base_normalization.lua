-- base_normalization.lua — what BatchNormalization, LayerNormalization and
-- GroupNormalization share: Keras's center/scale arguments with beta's and
-- gamma's initializer, regularizer and constraint, the two weights, and
-- their config entries.
local Layer = require("klua.layer")
local initializers = require("klua.initializers")
local regularizers = require("klua.regularizers")
local constraints = require("klua.constraints")

local M = {}

--- read_affine(self, kw): center, scale and beta_/gamma_ initializer, regularizer, constraint from kw.
function M.read_affine(self, kw)
  self.center = kw.center ~= false
  self.scale = kw.scale ~= false
  self.beta_initializer = initializers.get(kw.beta_initializer or "zeros")
  self.gamma_initializer = initializers.get(kw.gamma_initializer or "ones")
  self.beta_regularizer = regularizers.get(kw.beta_regularizer)
  self.gamma_regularizer = regularizers.get(kw.gamma_regularizer)
  self.beta_constraint = constraints.get(kw.beta_constraint)
  self.gamma_constraint = constraints.get(kw.gamma_constraint)
end

--- add_affine(self, shape, with_gamma, with_beta): the gamma and beta weights (as asked) of that shape.
function M.add_affine(self, shape, with_gamma, with_beta)
  if with_gamma then
    self.gamma = self:add_weight{ shape = shape, name = "gamma", initializer = self.gamma_initializer,
      regularizer = self.gamma_regularizer, constraint = self.gamma_constraint }
  end
  if with_beta then
    self.beta = self:add_weight{ shape = shape, name = "beta", initializer = self.beta_initializer,
      regularizer = self.beta_regularizer, constraint = self.beta_constraint }
  end
end

--- affine_config(self, config): the entries read_affine reads, into config.
function M.affine_config(self, config)
  config.center, config.scale = self.center, self.scale
  return Layer._weight_options_config(self, config, { "beta", "gamma" })
end

return M
