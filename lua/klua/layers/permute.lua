-- permute.lua — Permute: reorders the non-batch axes. dims is 1-based and
-- excludes the batch axis, as in Keras: Permute({2, 1}) swaps axes 2 and 3.
local core = require("klua.core")
local Layer = require("klua.layer")

local Permute = Layer:extend("Permute")
Permute.input_spec = {}   -- one tensor

--- Permute{dims, ...}: reorders the axes after the batch; dims is 1-based without the batch: Permute{dims = {2, 1}}.
function Permute:__init(dims, kw)
  if type(dims) == "table" and dims.dims ~= nil then kw = dims; dims = kw.dims end
  kw = kw or {}
  if type(dims) ~= "table" or #dims == 0 then
    core.raise("Permute: dims must be a list like {2, 1}. Received: dims=" .. tostring(dims))
  end
  local seen = {}
  for _, d in ipairs(dims) do
    if type(d) ~= "number" or d < 1 or d > #dims or d % 1 ~= 0 or seen[d] then
      core.raise(("Permute: dims must be a permutation of 1..%d (the batch axis excluded). Received: dims=%s")
        :format(#dims, core.shape_str(dims)))
    end
    seen[d] = true
  end
  Permute.super.__init(self, kw)
  local copy = {}
  for i, d in ipairs(dims) do copy[i] = d end
  rawset(self, "dims", copy)
end

function Permute:call(x)
  local dims = self.dims
  if x.nd ~= #dims + 1 then
    self:raise("expected an input of rank %d, got shape %s", #dims + 1, core.shape_str(x:shape()))
  end
  local perm = { 0 }
  for i, d in ipairs(dims) do perm[i + 1] = d end
  return core.op("transpose", x, nil, nil, { ints = perm })
end

function Permute:compute_output_shape(s)
  local out = { s[1] }
  for i, d in ipairs(self.dims) do out[i + 1] = s[d + 1] end
  return out
end

function Permute:get_config()
  local config = Permute.super.get_config(self)
  config.dims = { unpack(self.dims) }
  return config
end

return Permute
