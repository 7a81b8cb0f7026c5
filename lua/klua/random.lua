-- random.lua — klua.random: seedable random streams (PCG32, in C); the same
-- seed gives the same numbers on every run and machine.
--
--   local g = klua.random.Generator(42)           -- a stream of its own
--   local a = klua.random.normal({2, 3}, {seed = g})    -- advances g
--   local b = klua.random.normal({2, 3}, {seed = 7})    -- the same on every call
--   local c = klua.random.normal({2, 3})                -- the global stream
--
-- Every draw takes `seed` in its keyword table: an integer (a fresh stream
-- from that seed, Keras's stateless seeds), a Generator (the draw advances
-- it) or nothing (the global stream, which random.seed(n) resets). Streams
-- are objects passed or held; nothing here saves and restores the global one.
local ffi = require("ffi")
local core = require("klua.core")
local class = require("klua.class")
local C, wrap, raise = core.C, core.wrap, core.raise

local random = {}

local function is_integer(n) return type(n) == "number" and n % 1 == 0 and n == n end

-- States -------------------------------------------------------------------------

-- A state as four exact 32-bit integers {state_hi, state_lo, inc_hi, inc_lo}:
-- plain numbers survive JSON, uint64 cdata does not.
local TWO32 = 4294967296ULL
local state_buf = ffi.new("uint64_t[2]")

local function state_table(g)
  C.kl_generator_get_state(g, state_buf)
  local s, inc = state_buf[0], state_buf[1]
  return { tonumber(s / TWO32), tonumber(s % TWO32), tonumber(inc / TWO32), tonumber(inc % TWO32) }
end

local function is_u32(v) return is_integer(v) and v >= 0 and v < 4294967296 end

-- Also reads the older form {uint64 state, uint64 inc}, so states saved
-- before the four-integer form still load.
local function load_state(g, st, who)
  if type(st) ~= "table" then raise(who .. ": expected a table from get_state(), got " .. type(st)) end
  if #st == 2 and type(st[1]) == "cdata" and type(st[2]) == "cdata" then
    state_buf[0], state_buf[1] = st[1], st[2]
  else
    for i = 1, 4 do
      if not is_u32(st[i]) then
        raise(("%s: expected four integers in [0, 2^32) from get_state(). Received: state[%d]=%s")
          :format(who, i, tostring(st[i])))
      end
    end
    state_buf[0] = st[1] * TWO32 + st[2]
    state_buf[1] = st[3] * TWO32 + st[4]
  end
  C.kl_generator_set_state(g, state_buf)
end

-- Generator ----------------------------------------------------------------------

--- Generator(seed): a stream of its own, advanced by every draw that names it
-- (also SeedGenerator, Keras's name). Without a seed, the seed is drawn from
-- the global stream, so klua.random.seed(n) still fixes it.
local Generator = class("Generator")
random.Generator = Generator
random.SeedGenerator = Generator

function Generator:__init(seed)
  if type(seed) == "table" then seed = seed.seed end
  if seed == nil then
    seed = tonumber(C.kl_random_u32_g(nil))
  elseif not is_integer(seed) then
    raise("random.Generator: seed must be an integer. Received: seed=" .. tostring(seed))
  end
  self.seed = seed
  local p = C.kl_generator_new(seed)
  if p == nil then raise(core.last_error()) end
  self._g = ffi.gc(p, C.kl_generator_free)
end

--- is_generator(x): true when x is a klua.random.Generator.
function random.is_generator(x) return class.is_instance(x, Generator) end

--- g:get_state(): a plain table of four 32-bit integers (JSON-serialisable).
function Generator:get_state() return state_table(self._g) end

--- g:set_state(t): continue from a state that get_state returned.
function Generator:set_state(st) load_state(self._g, st, "Generator.set_state") end

--- g:next(): a 32-bit integer drawn from the stream (a seed for another one).
function Generator:next() return tonumber(C.kl_random_u32_g(self._g)) end

function Generator:__tostring() return ("Generator(seed=%s)"):format(tostring(self.seed)) end

-- Streams for draws ---------------------------------------------------------------

-- Integer seeds reseed one scratch generator: a draw runs to completion before
-- the next begins, and the scratch is never handed out.
local scratch = ffi.gc(C.kl_generator_new(0), C.kl_generator_free)

-- The kl_generator* (nil: the global stream) that kw.seed names.
local function stream(kw, who)
  local seed = kw and kw.seed
  if seed == nil then return nil end
  if is_integer(seed) then
    C.kl_generator_seed(scratch, seed)
    return scratch
  end
  if class.is_instance(seed, Generator) then return seed._g end
  raise(("%s: seed must be an integer or a klua.random.Generator. Received: seed=%s"):format(who, tostring(seed)))
end
random._stream = stream

local function opts(kw, who)
  if type(kw) == "number" then
    raise(("%s: the shape is one table, as in Keras: %s{2, 3} (Torch's %s(2, 3) is not supported); options go in a second table"):format(who, "klua." .. who, who))
  end
  if kw ~= nil and (type(kw) ~= "table" or core.class_name_of(kw)) then
    raise(("%s: expected a table of options, got %s"):format(who, core.describe(kw)))
  end
  return kw or {}
end

-- made(who, p): own the tensor C returned; NULL raises C's message named for `who`.
local function made(who, p)
  if p == nil then raise(core.op_error(who)) end
  return wrap(p)
end

-- num(kw, key, default, who): kw[key] or default, a finite number.
local function num(kw, key, default, who)
  local v = kw[key]
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
    raise(("%s: %s must be a finite number. Received: %s=%s"):format(who, key, key, core.received(v)))
  end
  return v
end

-- The global stream ---------------------------------------------------------------

--- seed(n): restart the global stream from the integer seed n.
function random.seed(n)
  if not is_integer(n) or math.abs(n) >= 2 ^ 63 then raise("random.seed: expected an integer seed, got " .. core.describe(n)) end
  C.kl_random_seed(n)
end

--- get_state(): the global stream's state, four 32-bit integers (as Generator's).
function random.get_state() return state_table(nil) end

--- set_state(t): continue the global stream from a state get_state returned.
function random.set_state(st) load_state(nil, st, "random.set_state") end

-- The process stream ---------------------------------------------------------------
-- Under a multi-process distribution the global stream is common to every
-- process (the data order and the initial weights come from it), so the
-- layers that draw without a seed (Dropout, recurrent and attention dropout)
-- take this process's own stream instead; klua.distribution starts it.
-- Without a distribution it does not exist and they use the global stream.

local process_stream = nil
local peek = ffi.gc(C.kl_generator_new(0), C.kl_generator_free)

--- process_stream(): this process's own stream under a multi-process
-- distribution, or nil (then unseeded layers draw from the global stream).
function random.process_stream() return process_stream end

--- start_process_stream(rank): (re)starts the process stream from the global
-- stream's next value, read but not consumed (so the global stream stays the
-- same for any number of processes), mixed with the rank: reproducible run to
-- run and different on every rank. start_process_stream(nil) removes it.
function random.start_process_stream(rank)
  if rank == nil then process_stream = nil return nil end
  if not is_integer(rank) or rank < 0 or rank >= 2 ^ 20 then
    raise("random.start_process_stream: rank must be an integer in [0, 2^20). Received: rank=" .. core.received(rank))
  end
  C.kl_generator_get_state(nil, state_buf)
  C.kl_generator_set_state(peek, state_buf)
  local v = tonumber(C.kl_random_u32_g(peek))
  -- 2^52 + v*2^20 + rank: never a 32-bit seed, so never the stream of a Generator(v)
  process_stream = Generator(2 ^ 52 + v * 2 ^ 20 + rank)
  return process_stream
end

-- Draws ---------------------------------------------------------------------------

--- uniform(shape, {minval=0, maxval=1, seed=}): uniform in [minval, maxval).
function random.uniform(shape, kw)
  kw = opts(kw, "random.uniform")
  local g = stream(kw, "random.uniform")
  local nd, d = core.shape_arg(shape, "random.uniform")
  local who = "random.uniform"
  return made(who, C.kl_random_uniform_g(g, nd, d, num(kw, "minval", 0, who), num(kw, "maxval", 1, who)))
end

--- normal(shape, {mean=0, stddev=1, seed=}): normally distributed values.
function random.normal(shape, kw)
  kw = opts(kw, "random.normal")
  local g = stream(kw, "random.normal")
  local nd, d = core.shape_arg(shape, "random.normal")
  local who = "random.normal"
  return made(who, C.kl_random_normal_g(g, nd, d, num(kw, "mean", 0, who), num(kw, "stddev", 1, who)))
end

--- truncated_normal(shape, {mean=0, stddev=1, seed=}): values beyond two
-- standard deviations are redrawn (Keras).
function random.truncated_normal(shape, kw)
  kw = opts(kw, "random.truncated_normal")
  local g = stream(kw, "random.truncated_normal")
  local nd, d = core.shape_arg(shape, "random.truncated_normal")
  local who = "random.truncated_normal"
  return made(who, C.kl_random_truncated_normal_g(g, nd, d, num(kw, "mean", 0, who), num(kw, "stddev", 1, who)))
end

--- bernoulli(shape, p=0.5, {seed=}): 1 with probability p, else 0; also
-- written bernoulli(shape, {p=, seed=}).
function random.bernoulli(shape, p, kw)
  if type(p) == "table" and not core.class_name_of(p) then kw, p = p, p.p end
  kw = opts(kw, "random.bernoulli")
  if p ~= nil and (type(p) ~= "number" or p ~= p) then raise("random.bernoulli: p must be a number. Received: p=" .. core.received(p)) end
  local g = stream(kw, "random.bernoulli")
  local nd, d = core.shape_arg(shape, "random.bernoulli")
  return made("random.bernoulli", C.kl_random_bernoulli_g(g, nd, d, p or 0.5))
end

local function count(n, who)
  if not is_integer(n) then raise(("%s: n must be an integer. Received: n=%s"):format(who, core.received(n))) end
  if n > 2 ^ 31 then raise(("%s: n=%.0f is too large (at most 2^31)"):format(who, n)) end
  return n
end

--- permutation(n, {seed=}): a 0-based permutation of 0..n-1 as a Lua array.
function random.permutation(n, kw)
  kw = opts(kw, "random.permutation")
  count(n, "random.permutation")
  local g = stream(kw, "random.permutation")
  local buf = ffi.new("int64_t[?]", math.max(n, 1))
  core.check(C.kl_random_permutation_g(g, n, buf))
  local out = {}
  for i = 0, n - 1 do out[i + 1] = tonumber(buf[i]) end
  return out
end

--- permutation_tensor(n, {seed=}): the same as a float tensor, for ops.take.
function random.permutation_tensor(n, kw)
  kw = opts(kw, "random.permutation_tensor")
  count(n, "random.permutation_tensor")
  return made("random.permutation_tensor", C.kl_random_permutation_tensor_g(stream(kw, "random.permutation_tensor"), n))
end

--- shuffle(x, {axis=1, seed=}): x with its slices along axis in random order.
function random.shuffle(x, kw)
  kw = opts(kw, "random.shuffle")
  local t = require("klua.tensor").T(x, "random.shuffle", "x")
  local axis = kw.axis or 1
  local size = core.shape_of(t)[core.axis_arg(axis, t.nd, "random.shuffle") + 1]
  return require("klua.ops").take(t, random.permutation_tensor(size, kw), axis)
end

return random
