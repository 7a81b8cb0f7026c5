-- lambda.lua — Lambda: wraps a Lua function as a layer.
--   klua.layers.Lambda(function(x) return x * 2 end)
-- The function is called as fn(inputs, kw) where kw holds `arguments` plus
-- training and mask. output_shape (a shape, or a function of the input
-- shape) answers compute_output_shape without running the function.
-- A Lambda has no weights of its own; write a Layer subclass for those.
local core = require("klua.core")
local Layer = require("klua.layer")

local Lambda = Layer:extend("Lambda")

--- Lambda{function, output_shape=nil, mask=nil, arguments={}, ...} (also Lambda(fn, {...})): wraps a Lua function
-- fn(x, arguments...) as a layer; output_shape (a shape or a function of the input shape) spares a probe call.
function Lambda:__init(fn, kw)
  if type(fn) == "table" and getmetatable(fn) == nil then kw = fn; fn = kw["function"] or kw.fn or kw[1] end
  kw = kw or {}
  local callable = type(fn) == "function" or (type(fn) == "table" and getmetatable(fn) and getmetatable(fn).__call)
  if not callable then core.raise("Lambda: expected a function. Received: " .. type(fn)) end
  Lambda.super.__init(self, kw)
  rawset(self, "fn", fn)
  rawset(self, "output_shape", kw.output_shape)
  rawset(self, "arguments", kw.arguments or {})
  rawset(self, "mask", kw.mask)
end

function Lambda:call(inputs, kw)
  local args = {}
  for k, v in pairs(self.arguments) do args[k] = v end
  args.training, args.mask = kw.training, kw.mask
  return self.fn(inputs, args)
end

function Lambda:compute_output_shape(input_shape)
  local os = self.output_shape
  if type(os) == "function" then return os(input_shape) end
  if type(os) == "table" then
    local out = { input_shape[1] }
    for i, d in ipairs(os) do out[i + 1] = d end
    return out
  end
  return Lambda.super.compute_output_shape(self, input_shape)
end

function Lambda:compute_mask(inputs, mask)
  local m = self.mask
  if type(m) == "function" then return m(inputs, mask) end
  if m ~= nil then return m end
  return nil
end

function Lambda:get_config()
  local config = Lambda.super.get_config(self)
  config["function"] = self.fn        -- a Lua value: not portable to a file
  config.output_shape = self.output_shape
  config.arguments = self.arguments
  return config
end

return Lambda
