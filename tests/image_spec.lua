-- image_spec.lua — klua.image (PNG read/write, grids) and klua.plot (line charts).
-- Palette fixtures: tests/fixtures/image_palette*.png, made by image_palette.py there.
local klua = require("klua")
local image, plot, ops = klua.image, klua.plot, klua.ops

local helpers = require("helpers")
local raises, literal, max_abs_diff = helpers.raises, helpers.literal, helpers.max_abs_diff
local read_file, write_file = helpers.read_file, helpers.write_file

local dir = helpers.tmpdir()
local function path(name) return dir .. "/" .. name end

-- integer-valued test images in 0..top
local function ramp(shape, top)
  local n, v = 1, {}
  for _, d in ipairs(shape) do n = n * d end
  for i = 1, n do v[i] = (i * 7919) % (top + 1) end
  return ops.reshape(klua.tensor(v), shape)
end

teardown(function() helpers.remove_tree(dir) end)

describe("klua.image.write_png and read_png", function()

  it("round-trip a gray (H,W) image as (H,W,1) with its 0..255 values", function()
    local img = ramp({ 5, 7 }, 255)
    image.write_png(path("gray.png"), img)
    local back, depth = image.read_png(path("gray.png"))
    assert.same({ 5, 7, 1 }, back:shape())
    assert.equal(8, depth)
    assert.equal(0, max_abs_diff(back:reshape { 5, 7 }, img))
  end)

  it("round-trip RGB and RGBA images exactly", function()
    for _, c in ipairs { 3, 4, 2 } do
      local img = ramp({ 4, 6, c }, 255)
      image.write_png(path("c" .. c .. ".png"), img)
      local back = image.read_png(path("c" .. c .. ".png"))
      assert.same({ 4, 6, c }, back:shape())
      assert.equal(0, max_abs_diff(back, img))
    end
  end)

  it("round-trip 16-bit images with values up to 65535", function()
    local img = ramp({ 3, 5, 3 }, 65535) * 1
    img:set(1, 1, 1, 65535)
    image.write_png(path("deep.png"), img, { bit_depth = 16 })
    local back, depth = image.read_png(path("deep.png"))
    assert.equal(16, depth)
    assert.equal(65535, back:get(1, 1, 1))
    assert.equal(0, max_abs_diff(back, img))
  end)

  it("takes images whose maximum is <= 1 as [0,1] floats", function()
    local img = klua.tensor { { 0, 0.5 }, { 0.25, 1 } }
    image.write_png(path("unit.png"), img)
    local back = image.read_png(path("unit.png"))
    assert.same({ { 0 }, { 128 } }, back:totable()[1])
    assert.same({ { 64 }, { 255 } }, back:totable()[2])
  end)

  it("uses an explicit max_value and clamps values outside the range", function()
    local img = klua.tensor { { -5, 1, 2, 300 } }
    image.write_png(path("mv.png"), img, { max_value = 255 })
    assert.same({ 0, 1, 2, 255 }, image.read_png(path("mv.png")):reshape { 4 }:totable())
  end)

  it("reads palette images as RGB, and as RGBA when the palette has transparency", function()
    local rgb = image.read_png("tests/fixtures/image_palette.png")
    assert.same({ 2, 3, 3 }, rgb:shape())
    assert.same({ { { 255, 0, 0 }, { 0, 255, 0 }, { 0, 0, 255 } }, { { 10, 20, 30 }, { 0, 0, 255 }, { 0, 255, 0 } } },
      rgb:totable())
    local rgba = image.read_png("tests/fixtures/image_palette_trns.png")   -- 2-bit indices
    assert.same({ 2, 3, 4 }, rgba:shape())
    assert.same({ { { 255, 0, 0, 0 }, { 0, 255, 0, 128 }, { 0, 0, 255, 255 } },
                  { { 10, 20, 30, 255 }, { 0, 0, 255, 255 }, { 0, 255, 0, 128 } } }, rgba:totable())
  end)

  it("raises an error naming the file for a truncated PNG", function()
    image.write_png(path("whole.png"), ramp({ 32, 32, 3 }, 255))
    local bytes = read_file(path("whole.png"))
    write_file(path("cut.png"), bytes:sub(1, math.floor(#bytes / 2)))
    raises("read_png: '" .. literal(path("cut.png")) .. "': file is truncated", image.read_png, path("cut.png"))
  end)

  it("raises an error naming the file for garbage, a non-PNG file and a missing file", function()
    local bytes = read_file(path("whole.png"))
    local junk = {}
    for i = 1, 200 do junk[i] = string.char((i * 97 + 13) % 256) end
    write_file(path("garbage.png"), bytes:sub(1, 16) .. table.concat(junk))
    raises("read_png: '.*garbage%.png': ", image.read_png, path("garbage.png"))
    write_file(path("text.png"), "hello, this is not an image\n")
    raises("read_png: '.*text%.png': not a PNG file", image.read_png, path("text.png"))
    raises("read_png: '.*nowhere%.png': No such file", image.read_png, path("nowhere.png"))
  end)

  it("rejects images of the wrong shape with the shape in the message", function()
    raises("write_png: '.*bad%.png': expected an image %(H,W%) or %(H,W,C%) with C in 1%.%.4, got %(2,2,5%)",
      image.write_png, path("bad.png"), klua.zeros { 2, 2, 5 })
    raises("write_png: bit_depth must be 8 or 16", image.write_png, path("bad.png"), klua.zeros { 2, 2 }, { bit_depth = 4 })
  end)

  it("writes atomically: no temporary file is left, and a failed write leaves the old file", function()
    image.write_png(path("atomic.png"), ramp({ 4, 4 }, 255))
    local before = read_file(path("atomic.png"))
    raises("write_png", image.write_png, path("atomic.png"), klua.zeros { 2, 2, 7 })
    assert.equal(before, read_file(path("atomic.png")))
    assert.is_nil(table.concat(helpers.listing(dir), "\n"):find("%.tmp%."))
    raises("write_png: '" .. literal(dir) .. "/no/such/dir/x%.png': cannot create", image.write_png,
      path("no/such/dir/x.png"), klua.zeros { 2, 2 })
  end)
end)

describe("klua.image.make_grid and save_grid", function()
  it("tile a batch row by row, nrow images per row, with padding between and around", function()
    -- image i (0-based) is filled with the value i + 1
    local imgs = ops.broadcast_to(ops.reshape(klua.arange(5) + 1, { 5, 1, 1 }), { 5, 2, 3 })
    local grid = image.make_grid(imgs, { nrow = 3, padding = 1, pad_value = 0 })
    assert.same({ 2 * (2 + 1) + 1, 3 * (3 + 1) + 1, 1 }, grid:shape())
    local g = grid:reshape { 7, 13 }
    assert.equal(0, g:get(1, 1))                 -- border
    assert.equal(1, g:get(2, 2))                 -- image 0, top-left
    assert.equal(1, g:get(3, 4))                 -- image 0, bottom-right
    assert.equal(0, g:get(2, 5))                 -- gap between columns
    assert.equal(2, g:get(2, 6))                 -- image 1
    assert.equal(3, g:get(3, 12))                -- image 2, last column
    assert.equal(4, g:get(5, 2))                 -- image 3 starts the second row
    assert.equal(5, g:get(6, 8))                 -- image 4
    assert.equal(0, g:get(6, 10))                -- empty slot after the last image
    assert.equal(0, g:get(7, 13))
  end)

  it("keeps channels and picks ceil(sqrt(N)) images per row by default", function()
    local grid = image.make_grid(klua.ones { 10, 4, 4, 3 }, { padding = 0 })
    assert.same({ 3 * 4, 4 * 4, 3 }, grid:shape())
  end)

  it("saves a grid of [0,1] images as a PNG of the grid's size", function()
    local imgs = klua.random.uniform { 6, 28, 28 }
    image.save_grid(path("grid.png"), imgs, { nrow = 3 })
    local back = image.read_png(path("grid.png"))
    assert.same({ 2 * 30 + 2, 3 * 30 + 2, 1 }, back:shape())
    assert.near(imgs:get(1, 1, 1) * 255, back:get(3, 3, 1), 0.5 + 1e-3)
  end)

  it("accepts a list of images", function()
    local grid = image.make_grid({ klua.zeros { 2, 2 }, klua.ones { 2, 2 } }, { padding = 0 })
    assert.same({ 2, 4, 1 }, grid:shape())
  end)

  it("rejects a batch that is not (N,H,W) or (N,H,W,C)", function()
    raises("save_grid: expected images %(N,H,W%) or %(N,H,W,C%), got %(784,%)", image.save_grid, path("g.png"), klua.zeros { 784 })
    raises("padding must be a non%-negative integer", image.make_grid, klua.zeros { 2, 2, 2 }, { padding = -1 })
  end)
end)

describe("klua.plot.history", function()
  -- count of pixels within `tol` of colour rgb
  local function count_colour(img, rgb, tol)
    local px = img:reshape { -1, 3 }
    local d = ops.sum(ops.abs(px - klua.tensor { rgb }), -1)
    return ops.sum(ops.less(d, tol)):item()
  end

  it("draws a chart of the requested size with both curves, axes and text", function()
    local history = { history = { loss = { 0.9, 0.5, 0.3, 0.25, 0.2 }, val_loss = { 1.0, 0.6, 0.45, 0.4, 0.38 } } }
    plot.history(history, path("loss.png"), { width = 400, height = 300, title = "loss" })
    local img = image.read_png(path("loss.png"))
    assert.same({ 300, 400, 3 }, img:shape())
    local white = count_colour(img, { 255, 255, 255 }, 1)
    assert.is_true(white > 0.5 * 300 * 400)                         -- a white background
    assert.is_true(white < 300 * 400 - 2000)                        -- and plenty drawn on it
    assert.is_true(count_colour(img, { 31, 119, 180 }, 30) > 200)  -- loss: matplotlib blue
    assert.is_true(count_colour(img, { 255, 127, 14 }, 30) > 200)  -- val_loss: orange
    assert.is_true(count_colour(img, { 38, 38, 38 }, 10) > 100)    -- text
  end)

  it("plots a plain table of series, one-element tensors and gaps included", function()
    plot.history({ loss = { klua.tensor(2), 1.5, 0 / 0, 1.0 }, accuracy = { 0.5, 0.7, 0.8, 0.9 } },
      path("plain.png"), { width = 320, height = 200, keys = { "accuracy" } })
    local img = image.read_png(path("plain.png"))
    assert.same({ 200, 320, 3 }, img:shape())
    assert.is_true(count_colour(img, { 31, 119, 180 }, 30) > 100)  -- the one series asked for
    assert.equal(0, count_colour(img, { 255, 127, 14 }, 30))
  end)

  it("draws single-point and constant series without failing", function()
    plot.history({ loss = { 0.5 } }, path("one.png"))
    assert.same({ 560, 800, 3 }, image.read_png(path("one.png")):shape())
    plot.history({ loss = { 1, 1, 1 } }, path("flat.png"), { width = 200, height = 150 })
  end)

  it("raises clear errors for empty histories and unknown keys", function()
    raises("plot%.history: the history holds no series", plot.history, { history = {} }, path("x.png"))
    raises("plot: no series named 'acc'", plot.history, { loss = { 1, 2 } }, path("x.png"), { keys = { "acc" } })
    raises("plot: .*size 10x10 is out of range", plot.history, { loss = { 1, 2 } }, path("x.png"), { width = 10, height = 10 })
  end)
end)
