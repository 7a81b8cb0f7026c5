-- random.lua — klua.random: one seedable generator in C; the same seed gives
-- the same numbers on every run and machine.
local ffi = require("ffi")
local core = require("klua.core")
local C, wrap = core.C, core.wrap

local random = {}

function random.seed(n)
  if type(n) ~= "number" then core.raise("random.seed: expected an integer seed") end
  C.kl_random_seed(n)
end

function random.uniform(shape, kw)
  kw = kw or {}
  local nd, d = core.shape_arg(shape, "random.uniform")
  return wrap(C.kl_random_uniform(nd, d, kw.minval or 0, kw.maxval or 1))
end

function random.normal(shape, kw)
  kw = kw or {}
  local nd, d = core.shape_arg(shape, "random.normal")
  return wrap(C.kl_random_normal(nd, d, kw.mean or 0, kw.stddev or 1))
end

--- truncated_normal: values beyond two standard deviations are redrawn (Keras).
function random.truncated_normal(shape, kw)
  kw = kw or {}
  local nd, d = core.shape_arg(shape, "random.truncated_normal")
  return wrap(C.kl_random_truncated_normal(nd, d, kw.mean or 0, kw.stddev or 1))
end

function random.bernoulli(shape, p)
  local nd, d = core.shape_arg(shape, "random.bernoulli")
  return wrap(C.kl_random_bernoulli(nd, d, p or 0.5))
end

--- permutation(n): a 0-based permutation of 0..n-1 as a Lua array of numbers.
function random.permutation(n)
  local buf = ffi.new("int64_t[?]", math.max(n, 1))
  core.check(C.kl_random_permutation(n, buf))
  local out = {}
  for i = 0, n - 1 do out[i + 1] = tonumber(buf[i]) end
  return out
end

--- permutation_tensor(n): the same as a float tensor, for ops.take.
function random.permutation_tensor(n)
  return wrap(C.kl_random_permutation_tensor(n))
end

function random.get_state()
  local s = ffi.new("uint64_t[2]")
  C.kl_random_get_state(s)
  return { s[0], s[1] }
end

function random.set_state(st)
  local s = ffi.new("uint64_t[2]", st[1], st[2])
  C.kl_random_set_state(s)
end

function random.shuffle(x)
  local t = require("klua.tensor").T(x)
  return require("klua.ops").take(t, random.permutation_tensor(tonumber(t.dims[0])), 1)
end

return random
