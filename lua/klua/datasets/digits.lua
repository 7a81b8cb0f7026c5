-- datasets/digits.lua — klua.datasets.digits: sklearn's 1,797 handwritten
-- digits, 8x8 pixels with values 0..16 (the UCI optical-recognition test set),
-- as sklearn's load_digits (the CSV of Debian's python3-sklearn, which
-- `make data` caches). Not MNIST: see klua.datasets.mnist for 28x28 digits.
local shared = require("klua.datasets._shared")
local ops = require("klua.ops")

local digits = {}

local WHAT = "digits.load_data"

digits.class_names = { "0", "1", "2", "3", "4", "5", "6", "7", "8", "9" }
digits.target_names = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }   -- sklearn's: the numbers
-- pixel_<row>_<column>, 0-based as sklearn's: feature k (1-based) is pixel_((k-1)//8)_((k-1)%8).
digits.feature_names = {}
for r = 0, 7 do
  for c = 0, 7 do digits.feature_names[#digits.feature_names + 1] = ("pixel_%d_%d"):format(r, c) end
end

--- load_data({n_class = 10, images = false}) -> x, y: x (N,64) pixel values
-- 0..16 (row by row), or (N,8,8) with images = true (sklearn's `images`);
-- y (N) with labels 0..9. n_class < 10 keeps only the digits 0..n_class-1, as sklearn's.
function digits.load_data(opts)
  opts = shared.options(opts, WHAT, { "n_class", "images" })
  local n_class = opts.n_class == nil and 10 or opts.n_class
  if type(n_class) ~= "number" or n_class % 1 ~= 0 or n_class < 1 or n_class > 10 then
    shared.raise(("%s: n_class must be an integer between 1 and 10. Received: n_class=%s"):format(WHAT, tostring(n_class)))
  end
  local text, path = shared.read("digits", "digits.csv", WHAT)
  local flat, n = shared.rows(text, path, WHAT, { width = 65 })
  local all = shared.matrix(flat, n, 65)
  local x, y = shared.columns(all, 1, 64), shared.flatten(shared.columns(all, 65, 65))
  if n_class < 10 then
    local keep, labels = {}, y:tolist()
    for i, label in ipairs(labels) do
      if label < n_class then keep[#keep + 1] = i - 1 end
    end
    x, y = shared.take_rows(x, keep), shared.flatten(shared.take_rows(shared.columns(all, 65, 65), keep))
  end
  if opts.images then x = ops.reshape(x, { x:shape()[1], 8, 8 }) end
  return x, y
end

return digits
