-- hostile_inputs_spec.lua — misuse of the public API from Lua never crashes:
-- each case raises a Lua error whose message names the op (or layer, or file)
-- and says what was wrong.
local klua = require("klua")
local ops = klua.ops
local write_file = require("helpers").write_file

local a = klua.ones { 2, 3 }
local garbage = os.tmpname()
write_file(garbage, string.rep("\255", 100))

-- { what, pattern the message must match, function }
local cases = {
  { "a huge shape", "tensor: .*too large", function() return klua.zeros { 1e6, 1e6, 1e6 } end },
  { "a negative dimension", "zeros: shape entries must be non%-negative integers", function() return klua.zeros { -1 } end },
  { "an impossible reshape", "reshape: cannot reshape a tensor of shape %(2,3%)", function() return ops.reshape(a, { 1e18 }) end },
  { "two inferred dimensions", "reshape: only one dimension can be %-1", function() return ops.reshape(a, { -1, -1 }) end },
  { "rank 9", "reshape: rank 9 is not supported", function() return ops.reshape(a, { 1, 1, 1, 1, 1, 1, 1, 1, 6 }) end },
  { "a repeated permutation", "transpose: invalid permutation", function() return ops.transpose(a, { 1, 1 }) end },
  { "an axis out of range", "sum: axis 9 is out of range for a tensor of rank 2", function() return ops.sum(a, 9) end },
  { "a fractional index", "take: index 0.5 is not an integer", function() return ops.take(a, klua.tensor { 0.5 }, 1) end },
  { "a NaN index", "take: index .*nan is not an integer", function() return ops.take(a, klua.tensor { 0 / 0 }, 1) end },
  { "an index out of range", "take: index 5 is out of range for an axis of size 2", function() return ops.take(a, klua.tensor { 5 }, 1) end },
  { "a zero depth", "one_hot: depth must be a positive integer", function() return ops.one_hot(klua.tensor { 1 }, 0) end },
  { "mismatched concatenation", "concatenate: input 2 has shape %(3,3,3%)", function() return ops.concatenate({ a, klua.ones { 3, 3, 3 } }, 1) end },
  { "a zero slice step", "slice: step must be positive", function() return klua.core.op("slice", a, nil, nil, { ints = { 0, 0, 1, 0 } }) end },
  { "an impossible broadcast", "broadcast_to: cannot broadcast a tensor of shape %(2,3%) to shape %(4,3%)", function() return ops.broadcast_to(a, { 4, 3 }) end },
  { "unbroadcastable batches", "matmul: batch axes of %(2,2,3%) and %(3,3,2%)", function() return ops.matmul(klua.ones { 2, 2, 3 }, klua.ones { 3, 3, 2 }) end },
  { "incompatible matrices", "matmul: shapes %(2,3%) and %(4,5%) are incompatible", function() return ops.matmul(a, klua.ones { 4, 5 }) end },
  { "a mismatched where", "where: shapes %(4,%) and %(2,3%) cannot be broadcast together", function() return ops.where(klua.ones { 4 }, a, a) end },
  { "an uneven split", "split: an axis of size 3 cannot be split into 2 equal parts", function() return ops.split(a, 2, 2) end },
  { "a string as data", "tensor: expected a number at depth 2, got string", function() return klua.tensor { { 1, "x" } } end },
  { "item of many elements", "item: expected a tensor with one element, got shape %(2,3%)", function() return a:item() end },
  { "position 0", "get: index 0 is out of range .*1%-based", function() return a:get(0, 1) end },
  { "assigning the wrong shape", "assign: value of shape %(5,%) does not fit a variable of shape %(2,3%)", function() return klua.Variable(a):assign(klua.ones { 5 }) end },
  { "a zero arange step", "arange: step must be non%-zero", function() return klua.arange(0, 10, 0) end },
  { "an unknown op", "klua.ops: unknown op 'nope'", function() return klua.core.op("nope", a) end },
  { "a missing input", "add: input 2 is missing", function() return klua.core.op("add", a) end },
  { "a Dense input of the wrong size", "Dense 'dense%S*': expected last input dimension 4, got 5", function()
    local d = klua.layers.Dense { units = 2 }; d(klua.ones { 1, 4 }); return d(klua.ones { 1, 5 }) end },
  { "a Conv2D input of the wrong rank", "Conv2D 'conv2d%S*': expected an input of rank 4", function()
    return klua.layers.Conv2D { filters = 2, kernel_size = 3 }(klua.ones { 2, 3 }) end },
  { "a loss of mismatched shapes", "mean_squared_error: y_true %(2,3%) and y_pred %(4,5%)", function()
    return klua.losses.MeanSquaredError()(klua.ones { 2, 3 }, klua.ones { 4, 5 }) end },
  { "a label outside the classes", "sparse_categorical_crossentropy: label 7", function()
    return klua.losses.SparseCategoricalCrossentropy()(klua.tensor { 7 }, klua.ones { 1, 3 }) end },
  { "a missing PNG", "read_png: '/nonexistent.png'", function() return klua.image.read_png("/nonexistent.png") end },
  { "a garbage model file", "load_model: .*header length", function() return klua.models.load_model(garbage) end },
}

describe("hostile input", function()
  teardown(function() os.remove(garbage) end)
  for _, c in ipairs(cases) do
    it("gives a named error, not a crash, for " .. c[1], function()
      local ok, err = pcall(c[3])
      assert.is_false(ok, "expected an error")
      assert.matches(c[2], tostring(err))
    end)
  end
end)
