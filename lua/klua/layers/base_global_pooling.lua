-- base_global_pooling.lua — BaseGlobalPooling, the shared part of the global
-- pooling layers: a mean or max reduction over the steps (1-D), the height
-- and width (2-D) or the depth, height and width (3-D), keepdims and
-- data_format as Keras. The 1-D layers honour a (batch, steps) mask: masked
-- steps take no part. Not registered as a layer itself.
local core = require("klua.core")
local Layer = require("klua.layer")
local ops = require("klua.ops")
local nn = require("klua.nn")

local BaseGlobalPooling = Layer:extend("BaseGlobalPooling")
BaseGlobalPooling.input_spec = {}   -- one tensor

-- rank: 1, 2 or 3; kind: "average" or "max".
function BaseGlobalPooling:__init(rank, kind, kw)
  kw = kw or {}
  BaseGlobalPooling.super.__init(self, kw)
  self.data_format = nn.data_format(kw.data_format)
  if not self.data_format then
    self:raise("data_format must be \"channels_last\" or \"channels_first\". Received: data_format=%s", tostring(kw.data_format))
  end
  self.rank, self.kind = rank, kind
  self.keepdims = kw.keepdims == true
  self.supports_masking = rank == 1
end

function BaseGlobalPooling:call(x, kw)
  if x.nd ~= self.rank + 2 then
    self:raise("expected an input of rank %d, got shape %s", self.rank + 2, Layer.shape_str(x:shape()))
  end
  local first = self.data_format == "channels_first" and 1 or 0
  local axes = {}
  for i = 1, self.rank do axes[i] = i + 1 + first end
  local mask = self.rank == 1 and kw and kw.mask or nil
  if mask == nil then
    return self.kind == "max" and ops.max(x, axes, self.keepdims) or ops.mean(x, axes, self.keepdims)
  end
  mask = core.to_tensor(mask)
  local steps = x.dims[1 + first]
  if mask.nd ~= 2 or mask.dims[0] ~= x.dims[0] or mask.dims[1] ~= steps then
    self:raise("expected a mask of shape (%d,%d), got %s", tonumber(x.dims[0]), tonumber(steps), Layer.shape_str(mask:shape()))
  end
  local m = ops.expand_dims(mask, 3 - first)         -- (batch, steps, 1) or (batch, 1, steps)
  if self.kind == "max" then
    -- Masked steps become very negative so that they never win.
    return ops.max(x * m + (m - 1) * 1e30, axes, self.keepdims)
  end
  return ops.sum(x * m, axes, self.keepdims) / ops.sum(m, axes, self.keepdims)
end

function BaseGlobalPooling:compute_mask() return nil end

function BaseGlobalPooling:compute_output_shape(input_shape)
  local n = #input_shape
  local c = self.data_format == "channels_first" and 2 or n
  if self.keepdims then
    local out = {}
    for i = 1, n do out[i] = (i == 1 or i == c) and input_shape[i] or 1 end
    return out
  end
  return { input_shape[1], input_shape[c] }
end

function BaseGlobalPooling:get_config()
  local config = BaseGlobalPooling.super.get_config(self)
  config.data_format = self.data_format
  config.keepdims = self.keepdims
  return config
end

return BaseGlobalPooling
