-- zeropadding2d.lua — ZeroPadding2D: rows and columns of zeros around
-- (batch, height, width, channels); padding = n, {h, w} or
-- {{top, bottom}, {left, right}}, as Keras.
local Layer = require("klua.layer")
local nn = require("klua.nn")

local ZeroPadding2D = Layer:extend("ZeroPadding2D")

--- ZeroPadding2D(padding)
function ZeroPadding2D:__init(padding, kw)
  padding, kw = nn.args(padding, kw, "padding")
  ZeroPadding2D.super.__init(self, kw)
  local p = padding or 1
  if type(p) == "number" then p = { { p, p }, { p, p } } end
  if type(p) == "table" and type(p[1]) == "number" then p = { { p[1], p[1] }, { p[2], p[2] } } end
  local ok = type(p) == "table" and type(p[1]) == "table" and type(p[2]) == "table"
  if ok then
    ok = pcall(nn.tuple, p[1], 2, "padding", true) and pcall(nn.tuple, p[2], 2, "padding", true)
  end
  if not ok then
    self:raise("padding must be an integer, {h, w} or {{top, bottom}, {left, right}} of non-negative integers. Received: padding=%s",
      tostring(padding))
  end
  self.padding = { { p[1][1], p[1][2] }, { p[2][1], p[2][2] } }
  if kw.data_format ~= nil and kw.data_format ~= "channels_last" then
    self:raise("only data_format=\"channels_last\" is supported. Received: data_format=%s", tostring(kw.data_format))
  end
end

function ZeroPadding2D:call(x)
  if x.nd ~= 4 then self:raise("expected an input of rank 4, got shape %s", Layer.shape_str(x:shape())) end
  return nn.zero_padding2d(x, self.padding)
end

function ZeroPadding2D:compute_output_shape(s)
  local p = self.padding
  local function add(d, a, b) return (d == nil or d < 0) and -1 or d + a + b end
  return { s[1], add(s[2], p[1][1], p[1][2]), add(s[3], p[2][1], p[2][2]), s[4] }
end

function ZeroPadding2D:get_config()
  local config = ZeroPadding2D.super.get_config(self)
  config.padding = self.padding
  config.data_format = "channels_last"
  return config
end

return ZeroPadding2D
