-- tape.lua — klua.GradientTape: records ops on watched tensors (and on every
-- trainable Variable) in C, then computes gradients in reverse.
--   tape:start() ... tape:stop()              explicit form
--   local loss = tape:record(function() ... end)   closure form
local ffi = require("ffi")
local core = require("klua.core")
local tensor = require("klua.tensor")
local class = require("klua.class")
local no_grad = require("klua.no_grad")
local C, raise = core.C, core.raise

local GradientTape = class("GradientTape")

-- Source and result pointer arrays, kept between calls (a training step asks
-- for the same number of gradients every time).
local array_ct = ffi.typeof("kl_tensor *[?]")
local cap, src_buf, out_buf = 0, nil, nil
local function pointer_arrays(n)
  if n > cap then
    cap = math.max(n, 2 * cap, 16)
    src_buf, out_buf = array_ct(cap), array_ct(cap)
  end
  return src_buf, out_buf
end

--- GradientTape{persistent=false}: records the ops on watched tensors and trainable Variables, then
-- tape:gradient(target, sources) walks them backwards; a persistent tape answers several gradient calls.
function GradientTape:__init(kw)
  kw = kw or {}
  self.persistent = kw.persistent and true or false
  self.handle = ffi.gc(C.kl_tape_new(self.persistent and 1 or 0), C.kl_tape_free)
end

--- GradientTape:start(): starts recording (the explicit form of record); returns the tape.
function GradientTape:start() core.check(C.kl_tape_start(self.handle)); return self end
--- GradientTape:stop(): stops recording; what was recorded stays for gradient().
function GradientTape:stop() C.kl_tape_stop(self.handle); return self end
--- GradientTape:reset(): forgets everything recorded (and what it watched).
function GradientTape:reset() C.kl_tape_reset(self.handle); return self end
--- GradientTape:is_recording(): true between start() and stop().
function GradientTape:is_recording() return C.kl_tape_recording(self.handle) ~= 0 end
--- GradientTape:size(): the number of ops recorded.
function GradientTape:size() return tonumber(C.kl_tape_size(self.handle)) end

--- record(fn, ...): run fn while recording; returns fn's results.
local function finish(self, ok, ...)
  self:stop()
  if not ok then error((...), 0) end
  return ...
end
function GradientTape:record(fn, ...)
  self:start()
  return finish(self, pcall(fn, ...))
end

--- watch(t or {t...}): record ops on a plain tensor too.
function GradientTape:watch(x)
  if type(x) == "table" then for _, t in ipairs(x) do self:watch(t) end return end
  if not core.is_tensor(x) then raise("GradientTape.watch: expected a tensor, got " .. type(x)) end
  core.check(C.kl_tape_watch(self.handle, x.p))
end

--- stop_recording(fn, ...): run fn without recording on any tape.
function GradientTape:stop_recording(fn, ...)
  return no_grad(fn, ...)
end

--- gradient(target, sources[, output_gradients]): gradients in the order of
-- sources (a tensor gives a tensor; a list gives a list with nil holes and
-- field n). A source the target does not depend on gets nil, as in Keras.
function GradientTape:gradient(target, sources, output_gradients)
  if not core.is_tensor(target) then raise("GradientTape.gradient: target must be a tensor, got " .. type(target)) end
  local single = core.is_tensor(sources)
  local list = single and { sources } or sources
  if type(list) ~= "table" then raise("GradientTape.gradient: sources must be a tensor or a list of tensors") end
  local n = table.maxn(list)
  local src, out = pointer_arrays(n)
  for i = 1, n do
    local s = list[i]
    if not core.is_tensor(s) then raise(("GradientTape.gradient: source %d is not a tensor (%s)"):format(i, type(s))) end
    src[i - 1] = s.p
  end
  local seed = output_gradients and tensor.T(output_gradients) or nil
  core.check(C.kl_tape_gradient(self.handle, target.p, seed and seed.p, n, src, out))
  local _ = list -- sources stay alive during the call
  local grads = { n = n }
  for i = 1, n do
    if out[i - 1] ~= nil then grads[i] = core.wrap(out[i - 1]) end
  end
  if single then return grads[1] end
  return grads
end

return GradientTape
