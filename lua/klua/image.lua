-- image.lua — klua.image: PNG files and image grids. Decoding, encoding and
-- tiling run in C (src/image.c, libpng); this file handles arguments and the
-- value-range rule.
--
-- Value range when writing: values are divided by `max_value` and clamped to
-- [0, 1] before quantising. Without an explicit `max_value`, an image whose
-- largest value is <= 1 is taken as [0, 1] floats, anything else as 0..255
-- (0..65535 for bit_depth = 16). Pass `max_value` when an image could be
-- either (an all-dark 0..255 image whose maximum happens to be 1).
local ffi = require("ffi")
local core = require("klua.core")
local C, wrap, raise = core.C, core.wrap, core.raise

local image = {}

local depth_buf = ffi.new("int[1]")

local function check_path(path, what)
  if type(path) ~= "string" or path == "" then
    raise(("%s: expected a file path string, got %s"):format(what, type(path)))
  end
end

local function as_tensor(x, what)
  if core.is_tensor(x) then return x end
  if type(x) == "table" and core.is_tensor(x[1]) then   -- a list of images
    return core.op_n("stack", x, { axes = { 0 } })
  end
  if type(x) == "table" then return core.to_tensor(x, what, "images") end
  raise(("%s: expected a tensor, got %s"):format(what, type(x)))
end

-- The divisor for the value-range rule above.
local function max_value_of(t, opts, what)
  if opts.max_value ~= nil then
    if type(opts.max_value) ~= "number" or not (opts.max_value > 0) then
      raise(("%s: max_value must be a positive number, got %s"):format(what, tostring(opts.max_value)))
    end
    return opts.max_value
  end
  if t.count == 0 then return 1 end
  local top = core.op("max", t, nil, nil, { all_axes = true }):item()
  if top <= 1 then return 1 end
  return (opts.bit_depth or 8) == 16 and 65535 or 255
end

local function bit_depth_of(opts, what)
  local d = opts.bit_depth or 8
  if d ~= 8 and d ~= 16 then raise(("%s: bit_depth must be 8 or 16, got %s"):format(what, tostring(d))) end
  return d
end

--- read_png(path, {max_bytes=}) -> tensor (H,W,C), bit_depth
-- C is 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA); palette files give RGB
-- (RGBA with transparency). Values are 0..255 (0..65535 for 16-bit files).
-- max_bytes (default 1 GiB) bounds the memory decoding takes (the decoded rows
-- plus the tensor, about 5 bytes per 8-bit sample): a larger image fails
-- before anything is allocated. Ancillary chunks (text, ICC profiles) are
-- skipped unread.
function image.read_png(path, opts)
  if opts ~= nil and (type(opts) ~= "table" or core.class_name_of(opts)) then raise(("%s: opts must be a table, got %s"):format("read_png", core.describe(opts))) end -- one-line check (bad-input sweep)
  check_path(path, "read_png")
  local max_bytes = 0   -- the C default
  if type(opts) == "table" and opts.max_bytes ~= nil then
    max_bytes = opts.max_bytes
    if type(max_bytes) ~= "number" or not (max_bytes >= 1) or max_bytes % 1 ~= 0 then
      raise(("read_png: max_bytes must be a positive integer (bytes). Received: max_bytes=%s"):format(tostring(max_bytes)))
    end
    max_bytes = math.min(max_bytes, 2 ^ 62)   -- an int64 in C
  end
  local t = wrap(C.kl_png_read(path, depth_buf, max_bytes))
  return t, depth_buf[0]
end

--- write_png(path, img, {max_value=, bit_depth=8})
-- img: (H,W), (H,W,1), (H,W,2), (H,W,3) or (H,W,4). See the range rule above.
function image.write_png(path, img, opts)
  if opts ~= nil and (type(opts) ~= "table" or core.class_name_of(opts)) then raise(("%s: opts must be a table, got %s"):format("write_png", core.describe(opts))) end -- one-line check (bad-input sweep)
  opts = opts or {}
  check_path(path, "write_png")
  img = as_tensor(img, "write_png")
  local depth = bit_depth_of(opts, "write_png")
  core.check(C.kl_png_write(path, img.p, max_value_of(img, opts, "write_png"), depth))
  return path
end

local function grid_args(images, opts, what)
  if opts ~= nil and (type(opts) ~= "table" or core.class_name_of(opts)) then raise(("%s: opts must be a table, got %s"):format(what, core.describe(opts))) end -- one-line check (bad-input sweep)
  opts = opts or {}
  images = as_tensor(images, what)
  local ncol = opts.nrow or 0   -- torchvision's name: images per row of the grid
  if type(ncol) ~= "number" or ncol < 0 or ncol ~= math.floor(ncol) then
    raise(("%s: nrow (images per row) must be a positive integer, got %s"):format(what, tostring(opts.nrow)))
  end
  local padding = opts.padding or 2
  if type(padding) ~= "number" or padding < 0 or padding ~= math.floor(padding) then
    raise(("%s: padding must be a non-negative integer, got %s"):format(what, tostring(opts.padding)))
  end
  return images, ncol, padding, opts
end

--- make_grid(images, {nrow=, padding=2, pad_value=0}) -> tensor (H', W', C)
-- images (N,H,W) or (N,H,W,C), or a list of (H,W[,C]) tensors; `nrow` images
-- per row (default ceil(sqrt(N))), as in torchvision.utils.make_grid.
function image.make_grid(images, opts)
  local imgs, ncol, padding, o = grid_args(images, opts, "make_grid")
  local grid = C.kl_image_grid(imgs.p, ncol, padding, o.pad_value or 0)
  if grid == nil then raise((core.last_error():gsub("^save_grid:", "make_grid:"))) end   -- the kernel names save_grid
  return wrap(grid)
end

--- save_grid(path, images, {nrow=, padding=2, pad_value=0, max_value=, bit_depth=8})
-- Tiles a batch into one PNG. pad_value is in the images' own range.
function image.save_grid(path, images, opts)
  check_path(path, "save_grid")
  local imgs, ncol, padding, o = grid_args(images, opts, "save_grid")
  local grid = wrap(C.kl_image_grid(imgs.p, ncol, padding, o.pad_value or 0))
  local depth = bit_depth_of(o, "save_grid")
  -- Decide the range from the images, not the padding.
  if C.kl_png_write(path, grid.p, max_value_of(imgs, o, "save_grid"), depth) < 0 then
    raise((core.last_error():gsub("^write_png:", "save_grid:")))   -- the writer names itself
  end
  return path
end

return image
