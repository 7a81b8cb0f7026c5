-- base_pooling.lua — BasePooling, the shared part of MaxPooling1D/2D/3D and
-- AveragePooling1D/2D/3D: pool_size, strides (default: pool_size), padding,
-- data_format (the kernels are channels-last: "channels_first" transposes
-- around them). Not registered as a layer itself.
local Layer = require("klua.layer")
local nn = require("klua.nn")

local BasePooling = Layer:extend("BasePooling")
BasePooling.input_spec = {}   -- one tensor

-- rank: 1, 2 or 3; fn: nn.max_pool or nn.average_pool.
function BasePooling:__init(rank, fn, pool_size, kw)
  pool_size, kw = nn.args(pool_size, kw, "pool_size")
  BasePooling.super.__init(self, kw)
  self.rank, self._pool = rank, fn
  local function tuple(key, v)
    local ok, r = pcall(nn.tuple, v, rank, key)
    if not ok then
      self:raise("%s must be an integer or a list of %d integers. Received: %s=%s", key, rank, key,
        type(v) == "table" and Layer.shape_str(v) or tostring(v))
    end
    return r
  end
  self.pool_size = tuple("pool_size", pool_size or 2)
  self.strides = tuple("strides", kw.strides or self.pool_size)
  local padding = type(kw.padding) == "string" and kw.padding:lower() or kw.padding or "valid"
  if padding ~= "valid" and padding ~= "same" then
    self:raise("padding must be \"valid\" or \"same\". Received: padding=%s", tostring(kw.padding))
  end
  self.padding = padding
  self.data_format = nn.data_format(kw.data_format)
  if not self.data_format then
    self:raise("data_format must be \"channels_last\" or \"channels_first\". Received: data_format=%s", tostring(kw.data_format))
  end
end

function BasePooling:call(x)
  if x.nd ~= self.rank + 2 then
    self:raise("expected an input of rank %d, got shape %s", self.rank + 2, Layer.shape_str(x:shape()))
  end
  if self.data_format == "channels_first" then
    return nn.to_channels_first(self._pool(nn.to_channels_last(x), self.pool_size, self.strides, self.padding))
  end
  return self._pool(x, self.pool_size, self.strides, self.padding)
end

function BasePooling:compute_output_shape(input_shape)
  local first = self.data_format == "channels_first" and 1 or 0
  local out = { input_shape[1] }
  for i = 1, self.rank do
    local size = input_shape[i + 1 + first]
    if size == nil or size < 0 then
      out[i + 1 + first] = -1
    else
      local _, _, n = nn.padding_amounts(size, self.pool_size[i], self.strides[i], 1, self.padding, Layer.class_name(self))
      out[i + 1 + first] = n
    end
  end
  if first == 1 then out[2] = input_shape[2] else out[self.rank + 2] = input_shape[self.rank + 2] end
  return out
end

function BasePooling:get_config()
  local config = BasePooling.super.get_config(self)
  config.pool_size = self.pool_size
  config.strides = self.strides
  config.padding = self.padding
  config.data_format = self.data_format
  return config
end

return BasePooling
