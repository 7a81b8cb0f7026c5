-- klua — a deep-learning framework for LuaJIT with a Keras-style API.
-- This file assembles the public table; submodules load on first use
-- (klua.layers, klua.losses, ...) so `require("klua")` stays fast.
local core = require("klua.core")
local tensor = require("klua.tensor")
local ops = require("klua.ops")

local klua = {}
klua._VERSION = core.version
klua.core = core
klua.ops = ops
klua.class = require("klua.class")

for _, name in ipairs { "tensor", "zeros", "ones", "empty", "full", "zeros_like", "ones_like", "full_like", "arange", "linspace", "eye" } do
  klua[name] = tensor[name]
end
klua.constant = tensor.tensor
klua.convert_to_tensor = tensor.tensor
klua.is_tensor = core.is_tensor
klua.random = require("klua.random")
klua.Variable = require("klua.variable")
klua.GradientTape = require("klua.tape")

klua.set_num_threads = core.set_num_threads
klua.get_num_threads = core.get_num_threads
--- memory(): bytes held by tensors in C, bytes cached for reuse, live tensors.
klua.memory = core.memory
klua.no_grad = require("klua.no_grad")
klua.profile = require("klua.profiler").profile

-- Lazily loaded modules and the classes they export at the top level, as in
-- Keras (klua.Layer, klua.Model, klua.Sequential, klua.Input).
local modules = {
  layers = "klua.layers", initializers = "klua.initializers", activations = "klua.activations",
  regularizers = "klua.regularizers", constraints = "klua.constraints", optimizers = "klua.optimizers",
  losses = "klua.losses", metrics = "klua.metrics", callbacks = "klua.callbacks", saving = "klua.saving",
  models = "klua.models", datasets = "klua.datasets", data = "klua.data", image = "klua.image",
  plot = "klua.plot", doc = "klua.doc", json = "klua.json", utils = "klua.utils", interop = "klua.interop",
  distribution = "klua.distribution",
}
local top_level = {
  Layer = function() return require("klua.layer") end,
  Model = function() return require("klua.models").Model end,
  Sequential = function() return require("klua.models").Sequential end,
  Input = function() return require("klua.models").Input end,
  zip = function() return require("klua.optimizers").zip end,
}

setmetatable(klua, {
  -- for the REPL's completion of names not loaded yet
  __names = function()
    local names = {}
    for k in pairs(modules) do names[#names + 1] = k end
    for k in pairs(top_level) do names[#names + 1] = k end
    return names
  end,
  __index = function(t, k)
    local mod = modules[k]
    if mod then
      local v = require(mod)
      rawset(t, k, v)
      return v
    end
    local f = top_level[k]
    if f then
      local v = f()
      rawset(t, k, v)
      return v
    end
    return nil
  end,
})

return klua
