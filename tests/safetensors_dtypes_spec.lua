-- safetensors_dtypes_spec.lua — safetensors files of dtypes other than F32:
-- read as float32 (F16/BF16 exactly, F64 to nearest even, integers and BOOL
-- only when exact, else refused naming the tensor) and F16/BF16 written on
-- request (round to nearest even). Values are compared bit for bit: files
-- made byte by byte here, and tests/fixtures/interop/dtypes.safetensors, whose
-- tensors and F16/BF16 roundings PyTorch made (tests/reference/gen_torch_interop.py).
local ffi = require("ffi")
local klua = require("klua")
local helpers = require("helpers")
local json = require("klua.json")
local saving = klua.saving
local err_of = helpers.err_of

local FIXTURE = "tests/fixtures/interop/dtypes.safetensors"

local dir
setup(function() dir = helpers.tmpdir() end)
teardown(function() helpers.remove_tree(dir) end)

local function le(n, bytes)
  local out = {}
  for i = 1, bytes do
    out[i] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(out)
end

-- A safetensors file made by hand: tensors = {{name, dtype, shape, bytes}, ...}.
local function raw_file(name, tensors)
  local header, data, offset = {}, {}, 0
  for _, t in ipairs(tensors) do
    header[t[1]] = { dtype = t[2], shape = json.array(t[3]), data_offsets = json.array{ offset, offset + #t[4] } }
    data[#data + 1] = t[4]
    offset = offset + #t[4]
  end
  local text = json.encode(header)
  text = text .. (" "):rep((8 - #text % 8) % 8)
  local path = dir .. "/" .. name
  helpers.write_file(path, le(#text, 8) .. text .. table.concat(data))
  return path
end

local function u16s(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = le(v, 2) end
  return table.concat(out)
end

-- The float32 bit patterns of a tensor, as hex strings.
local function bits(t)
  t = t:contiguous()
  local p = ffi.cast("const uint32_t *", t.data)
  local out = {}
  for i = 0, tonumber(t.count) - 1 do out[i + 1] = ("%08x"):format(p[i]) end
  return out
end

-- A float32 tensor with the given bit patterns.
local function from_bits(list)
  local t = klua.zeros{ #list }
  local p = ffi.cast("uint32_t *", t.data)
  for i, b in ipairs(list) do p[i - 1] = b end
  return t
end

-- The raw bytes of tensor `name` in a safetensors file.
local function raw_bytes(path, name)
  local info = saving.read_header(path)
  local e, start = info.tensors[name], info.data_start
  saving.close(info)
  local f = assert(io.open(path, "rb"))
  f:seek("set", start + e.b)
  local s = f:read(e.e - e.b)
  f:close()
  return s
end

local function hex16(s)
  local out = {}
  for i = 1, #s, 2 do out[#out + 1] = ("%02x%02x"):format(s:byte(i + 1), s:byte(i)) end
  return out
end

describe("Reading safetensors dtypes", function()
  it("reads F16 exactly: subnormals, the largest half, infinities, NaN and -0", function()
    local p = raw_file("f16.safetensors", { { "h", "F16", { 9 },
      u16s{ 0x0001, 0x03ff, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x7e01, 0x8000, 0x3555 } } })
    local t, _, dtypes = saving.load_safetensors(p)
    assert.are.equal("F16", dtypes.h)
    -- 2^-24, 1023 * 2^-24, 2^-14, 65504, inf, -inf, NaN (payload kept), -0, 0.333251953125
    assert.are.same({ "33800000", "387fc000", "38800000", "477fe000", "7f800000", "ff800000", "7fc02000", "80000000",
      "3eaaa000" }, bits(t.h))
  end)

  it("reads BF16 exactly: the top half of a float32", function()
    local p = raw_file("bf16.safetensors", { { "b", "BF16", { 2, 2 }, u16s{ 0x0001, 0x7f7f, 0xff80, 0x7fc1 } } })
    local t = saving.load_safetensors(p)
    assert.are.same({ 2, 2 }, t.b:shape())
    assert.are.same({ "00010000", "7f7f0000", "ff800000", "7fc10000" }, bits(t.b))
  end)

  it("rounds F64 to the nearest float32, ties to even, and refuses a value past float32's range", function()
    local d = ffi.new("double[5]", { 1 + 2 ^ -24, 1 + 3 * 2 ^ -24, 16777217, 0.1, -1e-50 })
    local p = raw_file("f64.safetensors", { { "d", "F64", { 5 }, ffi.string(d, 40) } })
    -- 1, 1 + 2^-22, 16777216, 0.1f, -0
    assert.are.same({ "3f800000", "3f800002", "4b800000", "3dcccccd", "80000000" }, bits(saving.load_safetensors(p).d))
    local big = ffi.new("double[2]", { 1, 1e39 })
    p = raw_file("f64big.safetensors", { { "w", "F64", { 2 }, ffi.string(big, 16) } })
    assert.matches("f64big%.safetensors: tensor 'w' %(F64%): element 1 is 1e%+39, beyond float32's range %(largest 3%.40282347e%+38%)",
      err_of(saving.load_safetensors, p))
  end)

  it("reads integers that float32 holds exactly, and refuses one it does not, naming the tensor and the value", function()
    local i64 = ffi.new("int64_t[4]", { -7, 16777216, 2 ^ 40, -2 ^ 63 })
    local p = raw_file("i64.safetensors", { { "ids", "I64", { 4 }, ffi.string(i64, 32) },
      { "i16", "I16", { 2 }, u16s{ 0x8000, 0x7fff } }, { "u8", "U8", { 2 }, "\0\255" }, { "i8", "I8", { 2 }, "\128\127" },
      { "flags", "BOOL", { 3 }, "\1\0\1" } })
    local t = saving.load_safetensors(p)
    assert.are.same({ -7, 16777216, 2 ^ 40, -2 ^ 63 }, t.ids:tolist())
    assert.are.same({ -32768, 32767 }, t.i16:tolist())
    assert.are.same({ 0, 255 }, t.u8:tolist())
    assert.are.same({ -128, 127 }, t.i8:tolist())
    assert.are.same({ 1, 0, 1 }, t.flags:tolist())
    local bad = ffi.new("int64_t[3]", { 1, 2, 16777217 })
    p = raw_file("i64bad.safetensors", { { "ids", "I64", { 3 }, ffi.string(bad, 24) } })
    assert.matches("i64bad%.safetensors: tensor 'ids' %(I64%): element 2 is 16777217, which float32 cannot hold exactly "
      .. "%(integers are exact up to 2%^24 = 16777216%)", err_of(saving.load_safetensors, p))
    local i32 = ffi.new("int32_t[1]", { -2 ^ 31 + 1 })
    p = raw_file("i32bad.safetensors", { { "n", "I32", { 1 }, ffi.string(i32, 4) } })
    assert.matches("tensor 'n' %(I32%): element 0 is %-2147483647", err_of(saving.load_safetensors, p))
    p = raw_file("bool.safetensors", { { "m", "BOOL", { 2 }, "\1\2" } })
    assert.matches("tensor 'm' %(BOOL%): element 1 is the byte 2, not a boolean", err_of(saving.load_safetensors, p))
  end)

  it("checks the byte count against the dtype's size, and names the dtypes it reads", function()
    local p = raw_file("short16.safetensors", { { "h", "F16", { 3 }, u16s{ 1, 2 } } })
    assert.matches("short16%.safetensors: tensor 'h' has shape %(3,%) %(6 bytes of F16%) but its data_offsets %[0, 4%] span 4 bytes",
      err_of(saving.load_safetensors, p))
    p = raw_file("f8.safetensors", { { "q", "F8_E4M3", { 2 }, "\1\2" } })
    assert.matches("tensor 'q' has dtype F8_E4M3; klua reads F32, F16, BF16, F64, I64, I32, I16, I8, U64, U32, U16, U8 and BOOL",
      err_of(saving.load_safetensors, p))
  end)

  it("reads every dtype of a file PyTorch's tensors made as PyTorch converts it to float32", function()
    local t, _, dtypes = saving.load_safetensors(FIXTURE)
    local seen = {}
    for name, v in pairs(t) do
      local expect = t[name .. ".expect"]
      if expect then
        seen[#seen + 1] = dtypes[name]
        assert.are.same(bits(expect), bits(v), name)
      end
    end
    table.sort(seen)
    assert.are.same({ "BF16", "BOOL", "F16", "F64", "I16", "I32", "I64", "I64", "I8", "U8" }, seen)
  end)
end)

describe("Writing F16 and BF16", function()
  it("rounds float32 to F16 to nearest, ties to even, with subnormals, overflow to inf, and NaN kept", function()
    local x = from_bits{ 0x3f801000, 0x3f803000, 0x477fef00, 0x477ff000, 0x33000000, 0x33c00000, 0x34200000, 0x387fe000,
      0x322bcc77, 0x80000000, 0x7f800000, 0x7fc00000 }
    -- 1 + 2^-11 -> 1; 1 + 3*2^-11 -> 1 + 2^-9; 65519 -> 65504; 65520 -> inf; 2^-25 -> 0; 1.5*2^-24 -> 2*2^-24;
    -- 2.5*2^-24 -> 2*2^-24; 2^-14 - 2^-25 -> 2^-14; 1e-8 -> 0; -0; inf; NaN
    local p = dir .. "/w16.safetensors"
    saving.save_safetensors(p, { x = x }, nil, { dtype = "F16" })
    assert.are.same({ "3c00", "3c02", "7bff", "7c00", "0000", "0002", "0002", "0400", "0000", "8000", "7c00", "7e00" },
      hex16(raw_bytes(p, "x")))
    local back, _, dtypes = saving.load_safetensors(p)
    assert.are.equal("F16", dtypes.x)
    assert.are.same({ "3f800000", "3f804000", "477fe000", "7f800000" }, { unpack(bits(back.x), 1, 4) })
  end)

  it("rounds float32 to BF16 to nearest, ties to even, and overflows to inf", function()
    local x = from_bits{ 0x3f808000, 0x3f818000, 0x7f7fffff, 0x0001116c, 0xff7f7fff, 0x7fc00001 }
    local p = dir .. "/wbf.safetensors"
    saving.save_safetensors(p, { x = x }, { note = "bf16" }, { dtype = "BF16" })
    assert.are.same({ "3f80", "3f82", "7f80", "0001", "ff7f", "7fc0" }, hex16(raw_bytes(p, "x")))
    local _, meta = saving.load_safetensors(p)
    assert.are.equal("bf16", meta.note)
  end)

  it("rounds as PyTorch's .half() and .bfloat16() do", function()
    local p = dir .. "/round.safetensors"
    local x = saving.load_safetensors(FIXTURE)["round.input"]
    saving.save_safetensors(p, { x = x }, nil, { dtype = "F16" })
    assert.are.same(hex16(raw_bytes(FIXTURE, "round.f16")), hex16(raw_bytes(p, "x")))
    saving.save_safetensors(p, { x = x }, nil, { dtype = "BF16" })
    assert.are.same(hex16(raw_bytes(FIXTURE, "round.bf16")), hex16(raw_bytes(p, "x")))
  end)

  it("loads a model's weights saved as BF16 with load_weights, rounded", function()
    local L = klua.layers
    local m = klua.Sequential{ klua.Input{ shape = { 3 } }, L.Dense{ units = 2, name = "d" } }
    local p = dir .. "/w.safetensors"
    m:save_weights(p)
    local w = saving.load_safetensors(p)
    local _, meta = saving.load_safetensors(p)
    saving.save_safetensors(p, w, meta, { dtype = "BF16" })
    local fresh = klua.Sequential{ klua.Input{ shape = { 3 } }, L.Dense{ units = 2, name = "d" } }
    fresh:load_weights(p)
    local k = bits(fresh.layers[1].kernel)
    for i, b in ipairs(k) do assert.are.equal("0000", b:sub(5), "kernel element " .. i .. " is not BF16: " .. b) end
    assert.is_true(helpers.max_abs_diff(fresh.layers[1].kernel, m.layers[1].kernel) < 1e-2)
  end)

  it("refuses any other dtype to write, and an options table that is not one", function()
    local t = { x = klua.ones{ 2 } }
    assert.matches("save_safetensors: dtype must be \"F32\", \"F16\" or \"BF16\"%. Received: dtype=F64",
      err_of(saving.save_safetensors, dir .. "/x.safetensors", t, nil, { dtype = "F64" }))
    assert.matches("save_safetensors: argument 4 must be a table of keyword arguments",
      err_of(saving.save_safetensors, dir .. "/x.safetensors", t, nil, "F16"))
  end)
end)
