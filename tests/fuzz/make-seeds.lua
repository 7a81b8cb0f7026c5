-- make-seeds.lua — writes the committed seed corpora of the fuzz targets
-- (tests/fuzz/<target>/): small valid files of every kind each reader takes,
-- plus the hostile files of the "Hostile files and long runs" issue. Run from
-- the tree's root after `make`:  build/klua tests/fuzz/make-seeds.lua
-- (the files are committed; this script documents where they came from).
local klua = require("klua")
local bit = require("bit")
local L = klua.layers
local root = "tests/fuzz"

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end
local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end
local function le64(n)
  local b = {}
  for i = 1, 8 do b[i] = string.char(n % 256); n = math.floor(n / 256) end
  return table.concat(b)
end
local function be32(n)
  return string.char(bit.band(bit.rshift(n, 24), 255), bit.band(bit.rshift(n, 16), 255),
    bit.band(bit.rshift(n, 8), 255), bit.band(n, 255))
end

klua.random.seed(1)
-- Random whole numbers 0..255 of a shape.
local function bytes(shape) return klua.ops.floor(klua.random.uniform(shape) * 255.99) end

-- model/: saved models of each family, small, and each one's header alone
-- (the driver frames a header that starts with "{").
local function save_model(name, model)
  local path = root .. "/model/" .. name .. ".klua"
  model:save(path)
  local bytes = read(path)
  local n = 0
  for i = 8, 1, -1 do n = n * 256 + bytes:byte(i) end
  write(root .. "/model/" .. name .. ".header.json", bytes:sub(9, 8 + n))
end

local function mlp()
  local m = klua.Sequential { klua.Input { shape = { 4 } }, L.Dense { units = 3, activation = "relu" }, L.Dense { units = 2 } }
  m:compile { optimizer = "adam", loss = "mse", metrics = { "mae" } }
  m:fit { x = klua.random.normal { 8, 4 }, y = klua.random.normal { 8, 2 }, epochs = 1, batch_size = 4, verbose = 0 }
  return m
end
save_model("mlp_adam", mlp())

do
  local a, b = klua.Input { shape = { 3 }, name = "a" }, klua.Input { shape = { 2 }, name = "b" }
  local h = L.Concatenate { axis = -1 } { a, b }
  local out = L.Dense { units = 2, activation = "softmax" } (L.Dense { units = 4, activation = "tanh" } (h))
  local m = klua.Model { inputs = { a, b }, outputs = out, name = "two_inputs" }
  m:compile { optimizer = klua.optimizers.SGD { learning_rate = 0.1, momentum = 0.9 }, loss = "categorical_crossentropy" }
  save_model("functional", m)
end

save_model("conv", klua.Sequential { klua.Input { shape = { 6, 6, 1 } }, L.Conv2D { filters = 2, kernel_size = 3 },
  L.MaxPooling2D { pool_size = 2 }, L.Flatten(), L.Dense { units = 2 } })
save_model("rnn", klua.Sequential { klua.Input { shape = { 5 } }, L.Embedding { input_dim = 10, output_dim = 3, mask_zero = true },
  L.LSTM { units = 2 }, L.Dense { units = 1, activation = "sigmoid" } })
save_model("gru_bidirectional", klua.Sequential { klua.Input { shape = { 4, 2 } },
  L.Bidirectional { layer = L.GRU { units = 2, return_sequences = true } }, L.GlobalAveragePooling1D(), L.Dense { units = 1 } })
save_model("norms", klua.Sequential { klua.Input { shape = { 3 } }, L.Dense { units = 3 }, L.BatchNormalization(),
  L.Dropout { rate = 0.5 }, L.LayerNormalization(), L.Dense { units = 1 } })
do
  local x = klua.Input { shape = { 3, 4 } }
  local y = L.MultiHeadAttention { num_heads = 2, key_dim = 2 } (x, x)
  save_model("attention", klua.Model { inputs = x, outputs = L.Flatten() (y) })
end

-- The hostile file of the issue: a config of a 20000 -> 20000 Dense and a
-- one-float tensor (load_model used to build 3.1 GB before looking).
do
  local config = klua.json.encode {
    class_name = "Sequential",
    config = { name = "sequential", layers = {
      { class_name = "InputLayer", config = { batch_shape = { -1, 20000 }, name = "input" } },
      { class_name = "Dense", config = { units = 20000, name = "dense" } } } },
  }
  local header = klua.json.encode {
    __metadata__ = { format = "klua.model", model_config = config },
    ["dense/kernel"] = { dtype = "F32", shape = { 1 }, data_offsets = { 0, 4 } },
  }
  write(root .. "/model/hostile_dense_20000.klua", le64(#header) .. header .. "\0\0\0\0")
  write(root .. "/model/hostile_dense_20000.header.json", header)
end

-- Other dtypes: the MLP's tensors as F16 and BF16, and a Dense whose kernel
-- is F64 and bias I64 (each converted to float32 as it is read).
do
  local info = klua.saving.read_header(root .. "/model/mlp_adam.klua")
  local entries = {}
  for i, name in ipairs(info.names) do
    entries[i] = { name = name, tensor = klua.saving.read_tensor(info, name), dtype = i % 2 == 0 and "F16" or "BF16" }
  end
  klua.saving.write_safetensors(root .. "/model/mlp_f16.klua", "make-seeds", entries, info.metadata)
  klua.saving.close(info)
  local ffi = require("ffi")
  local config = klua.json.encode {
    class_name = "Sequential",
    config = { name = "sequential", layers = {
      { class_name = "InputLayer", config = { batch_shape = { -1, 2 }, name = "input" } },
      { class_name = "Dense", config = { units = 1, name = "dense" } } } },
  }
  local header = klua.json.encode {
    __metadata__ = { format = "klua.model", model_config = config },
    ["dense/kernel"] = { dtype = "F64", shape = { 2, 1 }, data_offsets = { 0, 16 } },
    ["dense/bias"] = { dtype = "I64", shape = { 1 }, data_offsets = { 16, 24 } },
  }
  local data = ffi.string(ffi.new("double[2]", { 0.5, -2 }), 16) .. ffi.string(ffi.new("int64_t[1]", { 7 }), 8)
  write(root .. "/model/dense_f64_i64.klua", le64(#header) .. header .. data)
  write(root .. "/model/dense_f64_i64.header.json", header)
end

-- json/: configs as saved, and the grammar's corners.
local json_seeds = {
  config = read(root .. "/model/functional.header.json"),
  nested = '{"a": [1, 2.5, -3e-7, true, false, null, {"b": []}], "c": {}}',
  strings = '["\\u00e9\\ud83d\\ude00", "tab\\tnew\\nline", "\\"\\\\\\/\\b\\f\\r", "plain"]',
  numbers = '[0, -0, 1e308, 1.7976931348623157e308, 5e-324, 123456789012345678901234567890]',
  deep = string.rep("[", 100) .. string.rep("]", 100),
  bad_escape = '["\\x"]',
}
for name, text in pairs(json_seeds) do write(root .. "/json/" .. name .. ".json", text) end

-- idx/: labels and images, plain and gzip, and broken headers.
local ds = klua.datasets
ds.write_idx(root .. "/idx/labels.idx", klua.tensor { 0, 1, 2, 9, 255 })
ds.write_idx(root .. "/idx/images.idx", bytes { 2, 3, 3 })
ds.write_idx(root .. "/idx/images.idx.gz", bytes { 2, 3, 3 }, { gzip = true })
ds.write_idx(root .. "/idx/zeros_4d.idx.gz", klua.zeros { 2, 2, 2, 2 }, { gzip = true })
write(root .. "/idx/huge_header.idx", "\0\0\8\3" .. be32(60000) .. be32(60000) .. be32(60000) .. "\1\2\3")
write(root .. "/idx/zero_and_huge.idx", "\0\0\8\3" .. be32(0) .. be32(4000000000) .. be32(4000000000))

-- png/: each colour type and depth klua writes, the palette fixtures, and
-- ancillary chunks (text, compressed text, ICC profile) inserted by hand.
local img = klua.image
img.write_png(root .. "/png/gray8.png", bytes { 3, 4 }, { max_value = 255 })
img.write_png(root .. "/png/rgb8.png", bytes { 2, 3, 3 }, { max_value = 255 })
img.write_png(root .. "/png/gray_alpha16.png", klua.random.uniform { 2, 2, 2 }, { max_value = 1, bit_depth = 16 })
img.write_png(root .. "/png/rgba16.png", klua.random.uniform { 2, 2, 4 }, { max_value = 1, bit_depth = 16 })
write(root .. "/png/palette.png", read("tests/fixtures/image_palette.png"))
write(root .. "/png/palette_trns.png", read("tests/fixtures/image_palette_trns.png"))

local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do c = bit.band(c, 1) ~= 0 and bit.bxor(0xEDB88320, bit.rshift(c, 1)) or bit.rshift(c, 1) end
  crc_table[i] = c
end
local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do c = bit.bxor(crc_table[bit.band(bit.bxor(c, s:byte(i)), 255)], bit.rshift(c, 8)) end
  return bit.bxor(c, 0xFFFFFFFF)
end
local function chunk(kind, data) return be32(#data) .. kind .. data .. be32(crc32(kind .. data)) end
-- A zlib stream of one stored (uncompressed) block.
local function zlib_stored(data)
  local a, b = 1, 0
  for i = 1, #data do a = (a + data:byte(i)) % 65521; b = (b + a) % 65521 end
  local n = #data
  return "\120\1\1" .. string.char(n % 256, math.floor(n / 256), 255 - n % 256, 255 - math.floor(n / 256))
    .. data .. be32(b * 65536 + a)
end
local gray = read(root .. "/png/gray8.png")
local ihdr_end = 8 + 8 + 13 + 4
local function with_chunks(extra) return gray:sub(1, ihdr_end) .. extra .. gray:sub(ihdr_end + 1) end
write(root .. "/png/text_chunks.png", with_chunks(chunk("tEXt", "Comment\0made by klua") ..
  chunk("zTXt", "Title\0\0" .. zlib_stored("a compressed title")) ..
  chunk("iTXt", "Author\0\0\0en\0Autor\0klua")))
write(root .. "/png/iccp.png", with_chunks(chunk("iCCP", "profile\0\0" .. zlib_stored(string.rep("\0", 128)))))
-- The hostile one: a tEXt chunk that declares 2^31 - 1 bytes.
write(root .. "/png/huge_text_chunk.png", gray:sub(1, ihdr_end) .. be32(0x7fffffff) .. "tEXt" .. "Comment\0...")
-- A header of 10^6 x 10^6 RGBA, 16 bits (libpng's own side limit), then the end.
write(root .. "/png/huge_dims.png", gray:sub(1, 8) .. chunk("IHDR", be32(1000000) .. be32(1000000) .. "\16\6\0\0\0")
  .. chunk("IDAT", zlib_stored("\0\0\0")) .. chunk("IEND", ""))

-- hostile/ (not seeds: too large to fuzz with) holds idx_bomb.idx.gz.gz, a
-- gzip of a 291 KB gzip IDX file that declares 300000x1000 bytes and holds
-- them (zeros): read_idx used to inflate it into 1.5 GB. Made with
--   printf '\000\000\010\002\000\004\223\340\000\000\003\350' | cat - <(head -c 300000000 /dev/zero) \
--     | gzip -9 | gzip -9 > tests/fuzz/hostile/idx_bomb.idx.gz.gz
print("seeds written under " .. root)
