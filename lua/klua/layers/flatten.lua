-- flatten.lua — Flatten: (batch, d1, d2, ...) -> (batch, d1 * d2 * ...).
local core = require("klua.core")
local Layer = require("klua.layer")

local Flatten = Layer:extend("Flatten")
Flatten.input_spec = { min_ndim = 1 }   -- one tensor (Keras's input_spec)

--- Flatten{data_format="channels_last", ...}: (batch, d1, d2, ...) -> (batch, d1 * d2 * ...).
function Flatten:__init(kw)
  Flatten.super.__init(self, kw)
  local fmt = type(kw) == "table" and kw.data_format or "channels_last"
  if fmt ~= "channels_last" then
    core.raise("Flatten: only data_format=\"channels_last\" is supported. Received: data_format=" .. tostring(fmt))
  end
end

function Flatten:call(x)
  if x.nd < 1 then self:raise("expected an input with a batch axis, got a scalar") end
  if x.nd == 1 then return core.op("reshape", x, nil, nil, { ints = { tonumber(x.dims[0]), 1 } }) end
  return core.op("reshape", x, nil, nil, { ints = { tonumber(x.dims[0]), -1 } })
end

function Flatten:compute_output_shape(s)
  local n = 1
  for i = 2, #s do
    if s[i] < 0 then return { s[1], -1 } end
    n = n * s[i]
  end
  return { s[1], n }
end

function Flatten:get_config()
  local config = Flatten.super.get_config(self)
  config.data_format = "channels_last"
  return config
end

return Flatten
