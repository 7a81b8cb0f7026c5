-- data_spec.lua — klua.data.Dataset: slicing, batching, shuffling, map/filter,
-- take/skip/repeat and cardinality, on tiny tensors.
local klua = require("klua")
local Dataset, ops = klua.data.Dataset, klua.ops

local raises = require("helpers").raises

-- all elements of ds, each turned into a Lua value by conv (default: totable)
local function collect(ds, conv)
  conv = conv or function(e) return e:totable() end
  local out = {}
  for e in ds:iter() do out[#out + 1] = conv(e) end
  return out
end
local function range(n) return klua.arange(n) end
local function seq(a, b) local t = {} for i = a, b do t[#t + 1] = i end return t end

describe("Dataset.from_tensor_slices", function()
  it("yields the rows of a tensor, in order", function()
    local x = ops.reshape(klua.arange(12), { 4, 3 })
    local ds = Dataset.from_tensor_slices(x)
    assert.equal(4, ds:cardinality())
    assert.same({ { 0, 1, 2 }, { 3, 4, 5 }, { 6, 7, 8 }, { 9, 10, 11 } }, collect(ds))
  end)

  it("yields 0-d tensors from a vector and converts a list of numbers", function()
    local rows = {}
    for e in Dataset.from_tensor_slices({ 5, 6, 7 }):iter() do
      assert.equal(0, e:ndim())
      rows[#rows + 1] = e:item()
    end
    assert.same({ 5, 6, 7 }, rows)
  end)

  it("slices a tuple (list) and a named table of tensors together", function()
    local x, y = ops.reshape(klua.arange(6), { 3, 2 }), klua.tensor { 10, 11, 12 }
    local pairs_ = collect(Dataset.from_tensor_slices({ x, y }), function(e) return { e[1]:totable(), e[2]:item() } end)
    assert.same({ { { 0, 1 }, 10 }, { { 2, 3 }, 11 }, { { 4, 5 }, 12 } }, pairs_)
    local named = collect(Dataset.from_tensor_slices({ image = x, label = y }), function(e) return e.label:item() end)
    assert.same({ 10, 11, 12 }, named)
  end)

  it("iterates afresh on every iter()", function()
    local ds = Dataset.from_tensor_slices(range(3))
    assert.same(collect(ds), collect(ds))
  end)

  it("names the components whose first dimensions differ", function()
    raises("Dataset%.from_tensor_slices: components differ in their first dimension: x%[1%] has 3, x%[2%] has 2",
      Dataset.from_tensor_slices, { klua.zeros { 3, 2 }, klua.zeros { 2 } })
    raises("x is a scalar", Dataset.from_tensor_slices, klua.tensor(3))
    raises("x is a string", Dataset.from_tensor_slices, "abc")
  end)
end)

describe("Dataset:batch", function()
  it("stacks consecutive elements and keeps a short last batch", function()
    local ds = Dataset.from_tensor_slices(range(10)):batch(4)
    assert.equal(3, ds:cardinality())
    assert.same({ { 0, 1, 2, 3 }, { 4, 5, 6, 7 }, { 8, 9 } }, collect(ds))
  end)

  it("drops the short last batch with drop_remainder", function()
    local ds = Dataset.from_tensor_slices(range(10)):batch(4, { drop_remainder = true })
    assert.equal(2, ds:cardinality())
    assert.same({ { 0, 1, 2, 3 }, { 4, 5, 6, 7 } }, collect(ds))
    assert.same(collect(ds), collect(Dataset.from_tensor_slices(range(10)):batch(4, true)))
  end)

  it("batches every component of a tuple with rows kept together", function()
    local x = ops.reshape(klua.arange(10), { 5, 2 })
    local y = klua.arange(5) * 10
    local batches = collect(Dataset.from_tensor_slices({ x, y }):batch(2), function(b)
      return { b[1]:shape(), b[1]:totable(), b[2]:totable() }
    end)
    assert.same({ { 2, 2 }, { { 0, 1 }, { 2, 3 } }, { 0, 10 } }, batches[1])
    assert.same({ { 1, 2 }, { { 8, 9 } }, { 40 } }, batches[3])
  end)

  it("stacks the results of map, and batches of batches", function()
    local ds = Dataset.from_tensor_slices(range(6)):map(function(v) return v * 2 end):batch(3)
    assert.same({ { 0, 2, 4 }, { 6, 8, 10 } }, collect(ds))
    local nested = Dataset.from_tensor_slices(range(8)):batch(2):batch(2)
    assert.same({ 2, 2 }, collect(nested, function(b) return b:shape() end)[1])
    assert.same({ { { 0, 1 }, { 2, 3 } }, { { 4, 5 }, { 6, 7 } } }, collect(nested))
  end)

  it("rejects a batch size that is not a positive integer", function()
    raises("Dataset%.batch: batch_size must be a positive integer, got 0", function()
      Dataset.from_tensor_slices(range(3)):batch(0)
    end)
  end)
end)

describe("Dataset:shuffle", function()
  local function order(ds) return collect(ds, function(e) return e:item() end) end

  it("gives a permutation of the elements", function()
    local got = order(Dataset.from_tensor_slices(range(50)):shuffle(50, 7))
    assert.are_not.same(seq(0, 49), got)
    table.sort(got)
    assert.same(seq(0, 49), got)
  end)

  it("is a permutation too with a buffer smaller than the dataset", function()
    local got = order(Dataset.from_tensor_slices(range(40)):shuffle(5, 3))
    assert.are_not.same(seq(0, 39), got)
    table.sort(got)
    assert.same(seq(0, 39), got)
  end)

  it("repeats exactly with the same seed and differs with another", function()
    local a = order(Dataset.from_tensor_slices(range(30)):shuffle(30, 42))
    local b = order(Dataset.from_tensor_slices(range(30)):shuffle(30, 42))
    local c = order(Dataset.from_tensor_slices(range(30)):shuffle(30, 43))
    assert.same(a, b)
    assert.are_not.same(a, c)
  end)

  it("reshuffles each iteration, repeatably, unless told not to", function()
    local ds = Dataset.from_tensor_slices(range(20)):shuffle(20, 1)
    local e1, e2 = order(ds), order(ds)
    assert.are_not.same(e1, e2)
    local again = Dataset.from_tensor_slices(range(20)):shuffle(20, 1)
    assert.same(e1, order(again))
    assert.same(e2, order(again))
    local fixed = Dataset.from_tensor_slices(range(20)):shuffle(20, { seed = 1, reshuffle_each_iteration = false })
    assert.same(order(fixed), order(fixed))
  end)

  it("without a seed follows klua.random.seed", function()
    klua.random.seed(5)
    local a = order(Dataset.from_tensor_slices(range(25)):shuffle(25))
    klua.random.seed(5)
    local b = order(Dataset.from_tensor_slices(range(25)):shuffle(25))
    assert.same(a, b)
  end)

  it("keeps the components of an element together before batching", function()
    local x, y = klua.arange(16), klua.arange(16) * 3
    for b in Dataset.from_tensor_slices({ x, y }):shuffle(16, 9):batch(5):iter() do
      assert.same((b[1] * 3):totable(), b[2]:totable())
    end
  end)

  it("draws uniformly: the first element's position is spread over the dataset", function()
    -- 400 seeds, 4 elements: each should come first about 100 times
    local counts = { 0, 0, 0, 0 }
    local ds = Dataset.from_tensor_slices(range(4))
    for s = 1, 400 do
      local first = ds:shuffle(4, s):iter()():item()
      counts[first + 1] = counts[first + 1] + 1
    end
    for i = 1, 4 do assert.is_true(counts[i] > 60 and counts[i] < 140, "counts " .. table.concat(counts, ",")) end
  end)
end)

describe("Dataset:map and filter", function()
  it("map passes tuple elements unpacked and packs several results into a tuple", function()
    local ds = Dataset.from_tensor_slices({ range(3), range(3) * 10 })
      :map(function(x, y) return y - x, x end)
    assert.same({ { 0, 0 }, { 9, 1 }, { 18, 2 } }, collect(ds, function(e) return { e[1]:item(), e[2]:item() } end))
    assert.equal(3, ds:cardinality())
  end)

  it("map passes a named element as one table", function()
    local ds = Dataset.from_tensor_slices({ a = range(2), b = range(2) + 5 }):map(function(e) return e.a + e.b end)
    assert.same({ 5, 7 }, collect(ds, function(e) return e:item() end))
  end)

  it("filter keeps elements where the predicate holds and makes cardinality unknown", function()
    local ds = Dataset.from_tensor_slices(range(10)):filter(function(v) return v:item() % 3 == 0 end)
    assert.equal(klua.data.UNKNOWN_CARDINALITY, ds:cardinality())
    assert.equal(-2, ds:cardinality())
    assert.same({ 0, 3, 6, 9 }, collect(ds, function(e) return e:item() end))
    local even = Dataset.from_tensor_slices(range(6)):filter(function(v) return ops.equal(v, 2) end)
    assert.same({ 2 }, collect(even, function(e) return e:item() end))
    assert.same({ { 0, 3 }, { 6, 9 } }, collect(ds:batch(2)))
  end)

  it("raise named errors for a bad function or predicate result", function()
    raises("Dataset%.map: expected a function", function() Dataset.from_tensor_slices(range(2)):map(3) end)
    raises("Dataset%.map: the function returned nothing", function()
      collect(Dataset.from_tensor_slices(range(2)):map(function() end))
    end)
    raises("Dataset%.filter: the predicate must return a boolean.*got a tensor of shape %(2,%)", function()
      collect(Dataset.from_tensor_slices(ops.reshape(range(4), { 2, 2 })):filter(function(v) return v end))
    end)
  end)
end)

describe("Dataset:take, skip, repeat and prefetch", function()
  local function items(ds) return collect(ds, function(e) return e:item() end) end
  local base = function() return Dataset.from_tensor_slices(range(5)) end

  it("take and skip cut the stream and report the cardinality", function()
    assert.same({ 0, 1 }, items(base():take(2)))
    assert.equal(2, base():take(2):cardinality())
    assert.equal(5, base():take(9):cardinality())
    assert.same({ 3, 4 }, items(base():skip(3)))
    assert.equal(2, base():skip(3):cardinality())
    assert.equal(0, base():skip(9):cardinality())
    assert.same({}, items(base():skip(-1)))
    assert.same(seq(0, 4), items(base():take(-1)))
  end)

  it("repeat_ and ds[\"repeat\"] repeat the dataset, count times or forever", function()
    assert.same({ 0, 1, 2, 3, 4, 0, 1, 2, 3, 4 }, items(base():repeat_(2)))
    assert.equal(10, base():repeat_(2):cardinality())
    local ds = base()
    assert.same(items(ds:repeat_(3)), items(ds["repeat"](ds, 3)))
    local forever = base():repeat_()
    assert.equal(klua.data.INFINITE_CARDINALITY, forever:cardinality())
    assert.same({ 0, 1, 2, 3, 4, 0, 1 }, items(forever:take(7)))
    assert.equal(7, forever:take(7):cardinality())
    assert.equal(-1, forever:skip(2):cardinality())
    assert.equal(-1, forever:batch(2):cardinality())
  end)

  it("repeat of an empty pass stops instead of spinning", function()
    local empty = base():filter(function() return false end):repeat_()
    assert.same({}, items(empty))
  end)

  it("prefetch passes elements through unchanged", function()
    local function make() return base():shuffle(5, 2):batch(2) end
    assert.same(collect(make()), collect(make():prefetch(2)))
    assert.equal(3, make():prefetch(1):cardinality())
  end)

  it("compose: shuffle, batch and repeat give every element once per epoch", function()
    local ds = Dataset.from_tensor_slices(range(10)):shuffle(4, 11):batch(3):repeat_(2)
    assert.equal(8, ds:cardinality())
    local seen = {}
    for b in ds:iter() do for _, v in ipairs(b:totable()) do seen[v] = (seen[v] or 0) + 1 end end
    for v = 0, 9 do assert.equal(2, seen[v]) end
  end)

  it("reject counts that are not integers", function()
    raises("Dataset%.take: expected a non%-negative integer %(or %-1 for all%), got 1%.5", function() base():take(1.5) end)
    raises("Dataset%.shuffle: buffer_size must be a positive integer, got nil", function() base():shuffle() end)
  end)

  it("knows it is a dataset", function()
    assert.is_true(klua.data.is_dataset(base()))
    assert.is_false(klua.data.is_dataset({}))
    assert.matches("Dataset%(cardinality=5%)", tostring(base()))
  end)
end)
