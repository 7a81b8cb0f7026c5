-- identity.lua — Identity: returns its input unchanged (a placeholder layer,
-- as Keras's); masks pass through. Built when made: it has no weights.
local Layer = require("klua.layer")

local Identity = Layer:extend("Identity")
Identity.input_spec = {}   -- one tensor
Identity.supports_masking = true

--- Identity{...}: returns its input unchanged (a placeholder); masks pass through.
function Identity:__init(kw)
  Identity.super.__init(self, kw)
  rawset(self, "built", true)
end

function Identity:call(x) return x end
function Identity:compute_output_shape(s) return s end

return Identity
