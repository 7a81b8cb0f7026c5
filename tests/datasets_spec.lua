-- datasets_spec.lua — IDX files (src/idx.c) and klua.datasets.mnist /
-- fashion_mnist, on tiny files made here in a temporary KLUA_DATA.
local klua = require("klua")
local ffi = require("ffi")
local datasets, ops = klua.datasets, klua.ops

pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite); int unsetenv(const char *name);")
local saved_env = os.getenv("KLUA_DATA")

local helpers = require("helpers")
local raises, literal, read_file, write_file = helpers.raises, helpers.literal, helpers.read_file, helpers.write_file

local root = helpers.tmpdir()
local function path(name) return root .. "/" .. name end

local function be32(n)
  return string.char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
end
-- a raw IDX file: dtype byte, dims, then payload bytes
local function raw_idx(dims, payload, dtype)
  local h = { "\0\0", string.char(dtype or 8), string.char(#dims) }
  for _, d in ipairs(dims) do h[#h + 1] = be32(d) end
  return table.concat(h) .. payload
end

-- (n, h, w) images whose values are (i*31 + 7) % 256, a distinct pattern per position
local function byte_images(n, h, w)
  local v = {}
  for i = 1, n * h * w do v[i] = (i * 31 + 7) % 256 end
  return ops.reshape(klua.tensor(v), { n, h, w })
end

teardown(function()
  helpers.remove_tree(root)
  if saved_env then ffi.C.setenv("KLUA_DATA", saved_env, 1) else ffi.C.unsetenv("KLUA_DATA") end
end)

describe("klua.datasets.read_idx and write_idx", function()
  it("round-trip a ubyte tensor through a plain IDX file", function()
    local x = byte_images(3, 4, 5)
    datasets.write_idx(path("plain.idx"), x)
    local size = #read_file(path("plain.idx"))
    assert.equal(4 + 3 * 4 + 3 * 4 * 5, size)   -- magic, three sizes, the bytes
    local back = datasets.read_idx(path("plain.idx"))
    assert.same({ 3, 4, 5 }, back:shape())
    assert.same(x:totable(), back:totable())
  end)

  it("round-trip through a gzipped IDX file, read with the same function", function()
    local y = klua.tensor { 0, 9, 255, 3, 7 }
    datasets.write_idx(path("labels.idx.gz"), y, { gzip = true })
    local magic = read_file(path("labels.idx.gz")):sub(1, 2)
    assert.equal("\31\139", magic)   -- gzip's magic bytes
    assert.same({ 0, 9, 255, 3, 7 }, datasets.read_idx(path("labels.idx.gz")):totable())
  end)

  it("reads a hand-made file byte for byte", function()
    write_file(path("hand.idx"), raw_idx({ 2, 3 }, "\0\1\2\253\254\255"))
    assert.same({ { 0, 1, 2 }, { 253, 254, 255 } }, datasets.read_idx(path("hand.idx")):totable())
  end)

  it("rejects a bad magic number, naming the file", function()
    write_file(path("magic.idx"), "\18\52\8\1" .. be32(2) .. "ab")
    raises("read_idx: '" .. literal(path("magic.idx")) .. "': bad magic number 0x12340801", datasets.read_idx, path("magic.idx"))
  end)

  it("rejects data types other than unsigned bytes and impossible dimension counts", function()
    write_file(path("float.idx"), raw_idx({ 1 }, "\0\0\0\0", 0x0D))
    raises("read_idx: '.*float%.idx': data type 0x0d %(float%) is not supported", datasets.read_idx, path("float.idx"))
    write_file(path("nd0.idx"), "\0\0\8\0")
    raises("read_idx: '.*nd0%.idx': 0 dimensions", datasets.read_idx, path("nd0.idx"))
  end)

  it("rejects a truncated file, saying how many bytes the sizes need", function()
    write_file(path("short.idx"), raw_idx({ 2, 3 }, "\1\2\3\4\5"))
    raises("read_idx: '.*short%.idx': truncated: sizes 2x3 need 6 bytes of data, the file has 5",
      datasets.read_idx, path("short.idx"))
    write_file(path("head.idx"), "\0\0\8\3\0\0")
    raises("read_idx: '.*head%.idx': truncated header", datasets.read_idx, path("head.idx"))
  end)

  it("rejects a file with more bytes than its dimensions say", function()
    write_file(path("long.idx"), raw_idx({ 2, 3 }, "1234567"))
    raises("read_idx: '.*long%.idx': sizes 2x3 account for 6 bytes .*dimensions do not match the file size",
      datasets.read_idx, path("long.idx"))
  end)

  it("answers a hostile header with an error, not a huge allocation", function()
    write_file(path("huge.idx"), raw_idx({ 4294967295, 4294967295, 4294967295 }, "xx"))
    raises("read_idx: '.*huge%.idx': header sizes 4294967295x4294967295x4294967295 are too large",
      datasets.read_idx, path("huge.idx"))
    write_file(path("liar.idx"), raw_idx({ 4000000000, 2 }, "xx"))   -- claims 8 GB, has 2 bytes
    raises("read_idx: '.*liar%.idx': truncated: sizes 4000000000x2 need 8000000000 bytes of data, the file has 2",
      datasets.read_idx, path("liar.idx"))
  end)

  it("rejects truncated gzip data and a missing file", function()
    datasets.write_idx(path("big.idx.gz"), byte_images(20, 28, 28), { gzip = true })
    local s = read_file(path("big.idx.gz"))
    write_file(path("cut.idx.gz"), s:sub(1, math.floor(#s / 2)))
    raises("read_idx: '.*cut%.idx%.gz': truncated gzip data", datasets.read_idx, path("cut.idx.gz"))
    raises("read_idx: '.*absent%.idx': No such file", datasets.read_idx, path("absent.idx"))
  end)

  it("refuses to write values that are not bytes", function()
    raises("write_idx: '.*bad%.idx': value 256 at position 2 %(1%-based, row%-major%) is not an integer in 0%.%.255",
      datasets.write_idx, path("bad.idx"), klua.tensor { 1, 256 })
    raises("value 0%.5 at position 1", datasets.write_idx, path("bad.idx"), klua.tensor { 0.5 })
  end)
end)

describe("klua.datasets.mnist.load_data", function()
  local dir = path("cache")

  -- the four standard files of a tiny dataset: 5 train and 3 test images
  local function make(name, gz)
    os.execute("mkdir -p '" .. dir .. "/" .. name .. "'")
    local ext = gz and ".gz" or ""
    local o = { gzip = gz }
    datasets.write_idx(dir .. "/" .. name .. "/train-images-idx3-ubyte" .. ext, byte_images(5, 28, 28), o)
    datasets.write_idx(dir .. "/" .. name .. "/train-labels-idx1-ubyte" .. ext, klua.tensor { 5, 0, 4, 1, 9 }, o)
    datasets.write_idx(dir .. "/" .. name .. "/t10k-images-idx3-ubyte" .. ext, byte_images(3, 28, 28), o)
    datasets.write_idx(dir .. "/" .. name .. "/t10k-labels-idx1-ubyte" .. ext, klua.tensor { 7, 2, 1 }, o)
  end

  before_each(function() ffi.C.setenv("KLUA_DATA", dir, 1) end)

  it("reads the cache under $KLUA_DATA/<name>", function()
    assert.equal(dir .. "/mnist", datasets.data_dir("mnist"))
    ffi.C.unsetenv("KLUA_DATA")
    assert.equal(os.getenv("HOME") .. "/.klua/datasets/mnist", datasets.data_dir("mnist"))
  end)

  it("says exactly which command fetches missing data", function()
    local err = raises("mnist%.load_data: train%-images%-idx3%-ubyte%(%.gz%) not found in " .. literal(dir .. "/mnist"),
      datasets.mnist.load_data)
    assert.matches("make data", err, 1, true)
    assert.matches("scripts/get%-data", err)
  end)

  it("returns {x_train, y_train}, {x_test, y_test} with Keras's shapes and byte values", function()
    make("mnist", false)
    local train, test = datasets.mnist.load_data()
    local x_train, y_train = train[1], train[2]
    local x_test, y_test = test[1], test[2]
    assert.same({ 5, 28, 28 }, x_train:shape())
    assert.same({ 5 }, y_train:shape())
    assert.same({ 3, 28, 28 }, x_test:shape())
    assert.same({ 7, 2, 1 }, y_test:totable())
    assert.same(byte_images(5, 28, 28):totable(), x_train:totable())
    assert.equal(255, ops.max(x_train):item())
  end)

  it("reads gzipped files for fashion_mnist from its own directory", function()
    make("fashion_mnist", true)
    local train, test = datasets.fashion_mnist.load_data()
    assert.same({ 5, 28, 28 }, train[1]:shape())
    assert.same({ 5, 0, 4, 1, 9 }, train[2]:totable())
    assert.same({ 3 }, test[2]:shape())
    assert.equal("Ankle boot", datasets.fashion_mnist.class_names[9 + 1])
  end)

  it("names both files when images and labels disagree in number", function()
    datasets.write_idx(dir .. "/mnist/t10k-labels-idx1-ubyte", klua.tensor { 7, 2 })
    raises("mnist%.load_data: '.*t10k%-images%-idx3%-ubyte' has 3 images but '.*t10k%-labels%-idx1%-ubyte' has 2 labels",
      datasets.mnist.load_data)
  end)

  it("passes a damaged file's error through, naming the file", function()
    write_file(dir .. "/mnist/t10k-labels-idx1-ubyte", raw_idx({ 3 }, "\1"))
    raises("read_idx: '.*t10k%-labels%-idx1%-ubyte': truncated", datasets.mnist.load_data)
  end)
end)
