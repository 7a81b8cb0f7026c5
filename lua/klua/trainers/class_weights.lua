-- trainers/class_weights.lua — fit's and train_on_batch's class_weight
-- {[class] = weight} (0-based classes, as in Keras) turned into per-sample
-- weights, by label (sparse targets) or by argmax (one-hot targets).
local core = require("klua.core")
local tensor = require("klua.tensor")
local ops = require("klua.ops")

local raise = core.raise

local M = {}

--- vector(class_weight, who): the weights as a tensor indexed by class (a
-- class not named weighs 1), and the number of classes it covers.
function M.vector(cw, who)
  if type(cw) ~= "table" or getmetatable(cw) ~= nil then
    raise(who .. ": class_weight must be a table {[class] = weight} (0-based classes)")
  end
  local maxc = -1
  for k, w in pairs(cw) do
    if type(k) ~= "number" or k < 0 or k % 1 ~= 0 then raise(("%s: class_weight keys must be class indices (0, 1, ...), got %s"):format(who, tostring(k))) end
    if type(w) ~= "number" then raise(("%s: class_weight[%d] must be a number"):format(who, k)) end
    if k > maxc then maxc = k end
  end
  local list = {}
  for i = 0, maxc do list[i + 1] = cw[i] or 1 end
  return tensor.tensor(list), maxc + 1
end

-- Per-sample weights for the targets y.
local function per_sample(y, wvec, nclass, who)
  if not core.is_tensor(y) then raise(who .. ": class_weight is only supported for models with one output") end
  local idx
  if y.nd == 1 or (y.nd == 2 and tonumber(y.dims[1]) == 1) then
    idx = ops.reshape(y, { tonumber(y.dims[0]) })
  else
    idx = ops.argmax(y, -1)
  end
  local mx = ops.max(idx):item()
  if mx >= nclass then
    -- classes not named in class_weight weigh 1
    local pad = {}
    for i = 1, mx + 1 do pad[i] = i <= nclass and wvec:get(i) or 1 end
    wvec = tensor.tensor(pad)
  end
  return ops.take(wvec, idx, 1)
end

--- sample_weights(y, sample_weight, wvec, nclass, who): the batch's sample
-- weights with the class weights of its targets multiplied in.
function M.sample_weights(y, sw, wvec, nclass, who)
  local w = per_sample(y, wvec, nclass, who)
  return sw ~= nil and ops.multiply(sw, w) or w
end

return M
