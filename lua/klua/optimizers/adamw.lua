-- adamw.lua — AdamW: Adam with decoupled weight decay (default 0.004), as
-- keras.optimizers.AdamW; the decay w -= w * weight_decay * lr runs before
-- the Adam step, inside the same fused kernel.
local Adam = require("klua.optimizers.adam")

local AdamW = Adam:extend("AdamW")
AdamW.hyper = { learning_rate = 0.001, weight_decay = 0.004, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7, amsgrad = false }
AdamW.default_name = "adamw"

return AdamW
