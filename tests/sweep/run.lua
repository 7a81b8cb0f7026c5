-- tests/sweep/run.lua — the bad-input sweep, run in a child process by
-- tests/bad_input_sweep_spec.lua (so that a crash is reported as a crash):
--   klua tests/sweep/run.lua REPORT PROGRESS [FILTER]
-- Every public function — found by walking the module tables, so a new
-- function is swept without a line here — is called with each argument in
-- turn replaced by values of the wrong kind (nil, booleans, bad numbers,
-- strings, functions, a Layer or another object, tensors where shapes are
-- expected, empty, huge and rank-9 shapes, ...). Every call must return or
-- raise a checked error: a string that names the function (or its class, or
-- an alias) and carries no position inside the library (a raw VM error such
-- as "lua/klua/ops.lua:57: attempt to index a number value" fails). The
-- counts and every failure go to REPORT; PROGRESS holds the call in flight,
-- for the parent to name it if the process dies. FILTER (a Lua pattern)
-- limits the sweep to the functions whose names match it.
local REPORT, PROGRESS, FILTER = arg[1], arg[2], arg[3]
assert(REPORT and PROGRESS, "usage: klua tests/sweep/run.lua REPORT PROGRESS [FILTER]")

local ffi = require("ffi")
local klua = require("klua")
local class = require("klua.class")
local tensor_mod = require("klua.tensor")
local Layer = klua.Layer
local unpack = unpack or table.unpack

-- The interpreter checks the timeout hook; compiled traces would not (and the
-- sweep's calls run once each: nothing to gain from compiling them).
jit.off()
local CALL_SECONDS = 0.25               -- a call running longer counts as a timeout (Lua code only)
local progress = assert(io.open(PROGRESS, "w"))
progress:setvbuf("no")
local TMP = os.getenv("KLUA_SWEEP_TMP") or "."

klua.random.seed(1)
klua.set_num_threads(1)

--------------------------------------------------------------------------------
-- The values of the wrong kind, made fresh for each call (a callee may keep or
-- change what it is given).

-- A callee may write into what it is given: objects are made fresh per call.
local function a_layer() return klua.layers.Dense { units = 2, name = "sweep_layer" } end
local function an_object() return klua.metrics.Mean { name = "sweep_object" } end
local BAD = {
  { "nil", function() return nil end },
  { "true", function() return true end },
  { "-3", function() return -3 end },
  { "2.5", function() return 2.5 end },
  { "NaN", function() return 0 / 0 end },
  { "inf", function() return math.huge end },
  { "2^40", function() return 2 ^ 40 end },
  { "a string", function() return "/nonexistent-klua-sweep/no such" end },
  { "a function", function() return function() end end },
  { "a Layer", a_layer },
  { "an object (a Metric)", an_object },
  { "a file handle", function() return io.stderr end },
  { "a cdata array", function() return ffi.new("double[2]") end },
  { "a tensor (2,3)", function() return klua.ones { 2, 3 } end },
  { "a scalar tensor", function() return klua.tensor(2) end },
  { "{}", function() return {} end },
  { "a rank-9 shape", function() return { 1, 1, 1, 1, 1, 1, 1, 1, 1 } end },
  { "{-2, 3}", function() return { -2, 3 } end },
  { "{2^40}", function() return { 2 ^ 40 } end },
  { "{NaN, 2}", function() return { 0 / 0, 2 } end },
  { "a nested table", function() return { { 1, 2 }, { 3, 4 } } end },
  { "a list of strings", function() return { "a", "b" } end },
  { "a keyword table", function() return { foo = 1 } end },
}

-- Tensors of every rank, for layer calls with wrong input shapes.
local SHAPES = {
  { "a rank-0 tensor", function() return klua.tensor(1) end },
  { "a rank-1 tensor", function() return klua.ones { 3 } end },
  { "a rank-2 tensor", function() return klua.ones { 2, 3 } end },
  { "a rank-3 tensor", function() return klua.ones { 2, 3, 4 } end },
  { "a rank-4 tensor", function() return klua.ones { 2, 3, 4, 2 } end },
  { "a rank-5 tensor", function() return klua.ones { 1, 2, 3, 2, 2 } end },
  { "a rank-6 tensor", function() return klua.ones { 1, 1, 1, 1, 2, 2 } end },
  { "an empty (0,3) tensor", function() return klua.ones { 0, 3 } end },
  { "a NaN tensor", function() return klua.full({ 2, 3 }, 0 / 0) end },
  { "two tensors (2,3)", function() return { klua.ones { 2, 3 }, klua.ones { 2, 3 } } end },
  { "tensors (2,3) and (4,5)", function() return { klua.ones { 2, 3 }, klua.ones { 4, 5 } } end },
}

--------------------------------------------------------------------------------
-- Plausible values for the other arguments, by parameter name: the sweep needs
-- no valid call, only one that gets past the arguments before the bad one.

local function t23() return klua.random.uniform { 2, 3 } end
local base_png, base_model_file, base_weights_file
local BASE = {
  x = t23, a = t23, b = t23, x1 = t23, x2 = t23, t = t23, data = t23, value = t23, values = t23, inputs = t23,
  y_true = t23, y_pred = t23, y = t23, cond = t23, target = t23, output = t23, kernel = function() return klua.ones { 2, 3, 2 } end,
  img = function() return klua.ones { 4, 4, 3 } end, images = function() return klua.ones { 2, 4, 4 } end,
  indices = function() return klua.tensor { 0, 1 } end, loss = function() return klua.tensor(1) end,
  axis = function() return -1 end, a1 = function() return 1 end, a2 = function() return 2 end,
  keepdims = function() return false end, shape = function() return { 2, 3 } end, input_shape = function() return { 2, 3 } end,
  depth = function() return 3 end, n = function() return 3 end, num = function() return 3 end, k = function() return 2 end,
  num_classes = function() return 3 end, count = function() return 2 end, batch_size = function() return 2 end,
  buffer_size = function() return 2 end, seed = function() return 1 end, lo = function() return 0 end, hi = function() return 1 end,
  first = function() return 1 end, last = function() return 2 end, length = function() return 1 end, step = function() return 1 end,
  start = function() return { 1, 1 } end, parts = function() return 1 end, axes = function() return { 2, 1 } end,
  list = function() return { klua.ones { 2, 3 }, klua.ones { 2, 3 } } end,
  fn = function() return function(...) return ... end end, pred = function() return function() return true end end,
  path = function() return TMP .. "/sweep-out.bin" end, name = function() return "relu" end, id = function() return nil end,
  dtype = function() return "float32" end, approximate = function() return false end, alpha = function() return 1 end,
  threshold = function() return 0.5 end, negative_slope = function() return 0.1 end, delta = function() return 1 end,
  sequences = function() return { { 1, 2 }, { 3 } } end, mask_index = function() return 0 end,
  target_length = function() return klua.tensor { 1, 1 } end, output_length = function() return klua.tensor { 2, 2 } end,
}
local current = ""          -- the name of the target being swept
-- Parameters that take data (a tensor, a list or a shape), by name.
local DATA_PARAMS = {}
for _, k in ipairs { "x", "a", "b", "x1", "x2", "t", "data", "value", "values", "inputs", "y_true", "y_pred", "y", "cond",
  "target", "output", "kernel", "img", "images", "indices", "shape", "input_shape", "list", "start", "axes" } do
  DATA_PARAMS[k] = true
end

local function base_value(name)
  if name == "path" and not (current:find("save") or current:find("write")) then
    if current:find("png") then return base_png end
    if current:find("weights") then return base_weights_file end
    if current:find("load") or current:find("read") or current:find("restore") then return base_model_file end
  end
  local f = BASE[name]
  if f then return f() end
  return nil
end

--------------------------------------------------------------------------------
-- Classification.

local counts = { calls = 0, ok = 0, checked = 0, raw = 0, unnamed = 0, not_string = 0, timeouts = 0, functions = 0,
  accepted = 0 }
local failures = {}        -- lines for the report
local failing = {}         -- target name -> true

local function norm(s) return (tostring(s):lower():gsub("[_%s]", "")) end

local function first_line(s) return (tostring(s):match("^[^\n]*")) end

-- A position inside the library: any "file.lua:N:" that is not this script.
local function library_position(msg)
  for path in msg:gmatch("([^%s:'\"]+%.lua):%d+:") do
    if not path:find("sweep/run%.lua$") then return path end
  end
  for path in msg:gmatch("([^%s:'\"]+%.lua):%d+") do
    if path:find("klua/") and not path:find("sweep/run%.lua$") then return path end
  end
  return nil
end

local RAW = { "attempt to ", "bad argument #", "table index is ", "stack overflow", "number has no integer representation",
  "invalid key to 'next'", "table overflow", "cannot convert '", "loop or previous error", "C stack overflow",
  "not enough memory" }

local function fail(kind, target, label, msg)
  counts[kind] = counts[kind] + 1
  failing[target.name] = true
  failures[#failures + 1] = ("%s\t%s\t%s\t%s"):format(kind, target.name, label, first_line(msg):gsub("\t", " "):sub(1, 300))
end

local deadline = math.huge
debug.sethook(function()
  if os.clock() > deadline then deadline = math.huge; error("SWEEP_TIMEOUT", 0) end
end, "", 10000)

local function classify(target, label, ok, err)
  if ok then counts.ok = counts.ok + 1; return end
  if type(err) ~= "string" then
    fail("not_string", target, label, ("error value of type %s: %s"):format(type(err), tostring(err)))
    return
  end
  if err:find("SWEEP_TIMEOUT", 1, true) then
    counts.timeouts = counts.timeouts + 1
    failures[#failures + 1] = ("timeout\t%s\t%s\t(over %.1f s)"):format(target.name, label, CALL_SECONDS)
    return
  end
  local line = first_line(err)
  for _, p in ipairs(RAW) do
    if line:find(p, 1, true) then return fail("raw", target, label, err) end
  end
  if library_position(line) then return fail("raw", target, label, err) end
  local m = norm(line)
  for _, name in ipairs(target.names) do
    if m:find(norm(name), 1, true) then counts.checked = counts.checked + 1; return end
  end
  fail("unnamed", target, label, err)
end

local now = klua.utils.now
local spent = {}           -- target name -> wall seconds (the slowest are reported)
local function attempt(target, label, fn, ...)
  counts.calls = counts.calls + 1
  local t0 = now()
  progress:write(target.name .. " with " .. label .. "\n")   -- one write: the call in flight if the process dies
  deadline = os.clock() + CALL_SECONDS
  local ok, err = pcall(fn, ...)
  deadline = math.huge
  classify(target, label, ok, err)
  local key = target.name:match("^[^:(]+")
  spent[key] = (spent[key] or 0) + now() - t0
  return ok
end

--------------------------------------------------------------------------------
-- Targets: { name = "ops.matmul", names = {accepted in the message}, fn, params = {names} }

local targets, by_fn = {}, {}

local function params_of(f)
  local info = debug.getinfo(f, "u")
  local out = {}
  for i = 1, info.nparams do out[i] = debug.getlocal(f, i) end
  return out, info.isvararg
end

local function add_target(t)
  if FILTER and not t.name:find(FILTER) then return end
  targets[#targets + 1] = t
end

-- A module function; aliases (the same function under other keys) are
-- accepted names and not swept twice.
local function add_function(prefix, key, f, self_factory, extra_names)
  local prev = by_fn[f]
  if prev then prev.names[#prev.names + 1] = key; return end
  local params, vararg = params_of(f)
  if self_factory then table.remove(params, 1) end
  if vararg then params[#params + 1] = "..." ; params[#params + 1] = "..." end
  local t = { name = prefix .. key, names = { key }, fn = f, params = params, self = self_factory }
  for _, n in ipairs(extra_names or {}) do t.names[#t.names + 1] = n end
  by_fn[f] = t
  add_target(t)
end

local function sorted_keys(tbl)
  local keys = {}
  for k in pairs(tbl) do if type(k) == "string" and k:sub(1, 1) ~= "_" then keys[#keys + 1] = k end end
  table.sort(keys)
  return keys
end

-- Functions that take no user input or change the process in ways a sweep
-- must not (they are checked elsewhere): name -> why.
local SKIP = {
  ["klua.no_grad"] = "calls its argument",
  ["utils.parse_args"] = "prints usage and exits on --help",
  ["saving.atomic_write"] = "calls its argument with a file handle",
}

local function add_module(prefix, mod)
  for _, k in ipairs(sorted_keys(mod)) do
    local v = mod[k]
    if type(v) == "function" and not SKIP[prefix .. k] then add_function(prefix, k, v) end
  end
end

add_module("klua.", klua)
add_module("ops.", klua.ops)
add_module("random.", klua.random)
for _, m in ipairs { "losses", "metrics", "optimizers", "initializers", "regularizers", "constraints", "activations",
  "image", "saving", "models", "data", "utils", "callbacks" } do
  add_module(m .. ".", klua[m])
end
add_module("schedules.", klua.optimizers.schedules)
add_module("Dataset.", { from_tensor_slices = klua.data.Dataset.from_tensor_slices })
local function fresh_variable() return klua.Variable(klua.ones { 2, 3 }) end
for _, k in ipairs(sorted_keys(tensor_mod.methods)) do
  local f = tensor_mod.methods[k]
  if not by_fn[f] then add_function("tensor:", k, f, (k:find("assign") or k == "value") and fresh_variable or t23) end
end

--------------------------------------------------------------------------------
-- Classes: the constructor with each keyword (or the first positional
-- argument) bad, calls of an instance, and each public method.

local function tmp(name) return TMP .. "/" .. name end
local SAMPLES = {
  Dense = { units = 2 }, EinsumDense = { equation = "ab,bc->ac", output_shape = 2 },
  Conv1D = { filters = 2, kernel_size = 2 }, Conv2D = { filters = 2, kernel_size = 2 }, Conv3D = { filters = 2, kernel_size = 2 },
  Conv1DTranspose = { filters = 2, kernel_size = 2 }, Conv2DTranspose = { filters = 2, kernel_size = 2 },
  Conv3DTranspose = { filters = 2, kernel_size = 2 }, SeparableConv1D = { filters = 2, kernel_size = 2 },
  SeparableConv2D = { filters = 2, kernel_size = 2 }, DepthwiseConv1D = { kernel_size = 2 }, DepthwiseConv2D = { kernel_size = 2 },
  Dropout = { rate = 0.5 }, Permute = { dims = { 2, 1 } }, RepeatVector = { n = 2 }, Reshape = { target_shape = { 3, 1 } },
  Lambda = { ["function"] = function(x) return x end }, SimpleRNN = { units = 2 }, LSTM = { units = 2 }, GRU = { units = 2 },
  Bidirectional = function() return { layer = klua.layers.LSTM { units = 2 } } end,
  TimeDistributed = function() return { layer = klua.layers.Dense { units = 2 } } end,
  Embedding = { input_dim = 5, output_dim = 2 }, MultiHeadAttention = { num_heads = 2, key_dim = 2 },
  Activation = { activation = "relu" }, Dot = { axes = 2 },
  LossFunctionWrapper = { klua.losses.mean_squared_error, {} }, MeanMetricWrapper = { klua.metrics.mean_squared_error, {} },
  IoU = { num_classes = 2, target_class_ids = { 0 } }, OneHotIoU = { num_classes = 2, target_class_ids = { 0 } },
  MeanIoU = { num_classes = 2 }, OneHotMeanIoU = { num_classes = 2 },
  SensitivityAtSpecificity = { specificity = 0.5 }, SpecificityAtSensitivity = { sensitivity = 0.5 },
  PrecisionAtRecall = { recall = 0.5 }, RecallAtPrecision = { precision = 0.5 },
  BackupAndRestore = function() return { backup_dir = tmp("backup") } end,
  ModelCheckpoint = function() return { filepath = tmp("checkpoint.klua") } end,
  LearningRateScheduler = { schedule = function(_, lr) return lr end }, CSVLogger = function() return { filename = tmp("log.csv") } end,
  ExponentialDecay = { initial_learning_rate = 0.1, decay_steps = 10, decay_rate = 0.9 },
  InverseTimeDecay = { initial_learning_rate = 0.1, decay_steps = 10, decay_rate = 0.9 },
  PiecewiseConstantDecay = { boundaries = { 10 }, values = { 0.1, 0.01 } },
  CosineDecay = { initial_learning_rate = 0.1, decay_steps = 10 },
  CosineDecayRestarts = { initial_learning_rate = 0.1, first_decay_steps = 10 },
  PolynomialDecay = { initial_learning_rate = 0.1, decay_steps = 10 },
  Model = function()
    local inp = klua.Input { shape = { 3 } }
    return { inputs = inp, outputs = klua.layers.Dense { units = 2 }(inp) }
  end,
  Functional = function()
    local inp = klua.Input { shape = { 3 } }
    return { inputs = inp, outputs = klua.layers.Dense { units = 2 }(inp) }
  end,
  Sequential = function() return { klua.Input { shape = { 3 } }, klua.layers.Dense { units = 2 } } end,
  Input = { shape = { 3 } }, InputLayer = { shape = { 3 } },
}
-- Classes whose constructor is not public (made through a function).
local NO_CONSTRUCTOR = { Dataset = true, KerasTensor = true }

-- (first positional argument or nil, keyword table) of a class's sample.
local function sample_args(cname)
  local s = SAMPLES[cname]
  if type(s) == "function" then s = s() end
  if s == nil then return {} end
  if s[1] ~= nil and type(s[1]) == "function" then return s[2], s[1] end  -- wrappers: (fn, kw)
  local kw = {}
  for k, v in pairs(s) do kw[k] = v end
  return kw
end

local function construct(cls, kw, first)
  if first ~= nil then return cls(first, kw) end
  return cls(kw)
end

local function copy(t) local o = {}; for k, v in pairs(t) do o[k] = v end; return o end

local class_targets = {}   -- cls -> {name, names, sample = function}
local classes = {}

local function add_class(prefix, key, cls)
  local prev = class_targets[cls]
  if prev then prev.names[#prev.names + 1] = key; return end
  local cname = rawget(cls, "__name") or key
  local t = { name = prefix .. key, names = { key, cname, Layer.snake_case(cname) }, cls = cls, cname = cname }
  t.sample = function()
    local kw, first = sample_args(cname)
    return construct(cls, kw, first)
  end
  class_targets[cls] = t
  classes[#classes + 1] = t
end

local function add_classes(prefix, mod)
  for _, k in ipairs(sorted_keys(mod)) do
    local v = mod[k]
    if class.is_class(v) then add_class(prefix, k, v) end
  end
end
local layer_names = sorted_keys(klua.layers.files)
for _, k in ipairs(layer_names) do add_class("layers.", k, klua.layers[k]) end
for _, m in ipairs { "losses", "metrics", "optimizers", "initializers", "regularizers", "constraints", "callbacks", "models", "data" } do
  add_classes(m .. ".", klua[m])
end
add_classes("schedules.", klua.optimizers.schedules)
add_classes("random.", klua.random)

local function is_layer_class(cls) return class_targets[cls] and require("klua.registry").is_subclass(cls, Layer) end

-- Calls of an instance, by kind: the base arguments.
local function call_base(c)
  local reg = require("klua.registry")
  local cls = c.cls
  if reg.is_subclass(cls, klua.losses.Loss) or reg.is_subclass(cls, klua.metrics.Metric) then
    return { "y_true", "y_pred", "sample_weight" }
  elseif reg.is_subclass(cls, klua.initializers.Initializer) then
    return { "shape" }
  elseif reg.is_subclass(cls, klua.regularizers.Regularizer) or reg.is_subclass(cls, klua.constraints.Constraint) then
    return { "x" }
  end
  return nil
end

-- The public methods of a class (own and inherited), by function.
-- Not swept as methods: class plumbing (extend, super, property), raise
-- (raises by design), and the hooks a subclass defines that the library
-- calls after its own checks: a layer's call and merge (reached through
-- layer(x), swept with bad inputs above) and the callbacks' on_* hooks
-- (fit, evaluate and predict call them).
local METHOD_SKIP = { extend = true, super = true, raise = true, property = true, quietly = true,
  iter = true, __call = true, call = true, merge = true, on_batch_begin = true, on_batch_end = true }
for _, h in ipairs(require("klua.callbacks.hooks")) do METHOD_SKIP[h] = true end
local function methods_of(cls)
  local out, seen = {}, {}
  local c = cls
  while type(c) == "table" do
    for k, v in pairs(c) do
      if type(k) == "string" and type(v) == "function" and k:sub(1, 1) ~= "_" and not METHOD_SKIP[k] and not seen[k] then
        seen[k] = true
        out[#out + 1] = k
      end
    end
    c = rawget(c, "super")
  end
  table.sort(out)
  return out
end

--------------------------------------------------------------------------------
-- Keyword tables of the training API: the base keywords, each replaced in turn.

local function small_model()
  local m = klua.Sequential { klua.Input { shape = { 3 } }, klua.layers.Dense { units = 2 } }
  m:compile { optimizer = "sgd", loss = "mse" }
  return m
end
local function xy() return { x = klua.random.uniform { 4, 3 }, y = klua.random.uniform { 4, 2 } } end
local KW_METHODS = {
  compile = function() return { optimizer = "sgd", loss = "mse", metrics = { "mae" }, loss_weights = nil } end,
  fit = function() local d = xy(); d.epochs = 1; d.batch_size = 2; d.verbose = 0; d.validation_split = nil; return d end,
  evaluate = function() local d = xy(); d.batch_size = 2; d.verbose = 0; return d end,
  predict = function() return { x = klua.random.uniform { 4, 3 }, batch_size = 2, verbose = 0 } end,
}
local KW_EXTRA = {
  fit = { "validation_split", "validation_data", "shuffle", "class_weight", "sample_weight", "initial_epoch",
    "steps_per_epoch", "callbacks", "validation_batch_size", "validation_freq", "validation_steps" },
  evaluate = { "sample_weight", "steps", "callbacks", "return_dict" },
  predict = { "steps", "callbacks" },
  compile = { "loss_weights", "weighted_metrics" },
}

--------------------------------------------------------------------------------
-- Running.

local function sweep_function(t)
  counts.functions = counts.functions + 1
  current = t.name
  local params = t.params
  local function call(args, n)
    if t.self then
      local self = t.self()
      return t.fn(self, unpack(args, 1, n))
    end
    return t.fn(unpack(args, 1, n))
  end
  if #params == 0 then
    attempt(t, "no arguments", call, {}, 0)
    return
  end
  for i = 1, #params do
    for _, bad in ipairs(BAD) do
      local args = {}
      for j = 1, #params do args[j] = base_value(params[j]) end
      args[i] = bad[2]()
      local label = ("argument %d (%s) = %s"):format(i, params[i], bad[1])
      local ok = attempt(t, label, call, args, #params)
      -- an object where a tensor or a shape is expected must be refused, not read as an empty table
      if ok and (bad[2] == a_layer or bad[2] == an_object) and DATA_PARAMS[params[i]] and not t.names[1]:find("^is_") then
        fail("accepted", t, label, "returned normally: the object was taken as data")
      end
    end
  end
end

local function safe_sample(c)
  local ok, obj = pcall(c.sample)
  if ok then return obj end
  return nil, obj
end

local broken_samples = {}

local function sweep_class(c)
  counts.functions = counts.functions + 1
  current = c.name
  local cls, cname = c.cls, c.cname
  local obj, why = safe_sample(c)
  if not obj and not NO_CONSTRUCTOR[cname] then
    broken_samples[#broken_samples + 1] = { c.name, first_line(why) }
  end
  -- The constructor.
  if not NO_CONSTRUCTOR[cname] then
    local t = { name = c.name, names = c.names }
    local kw0, first0 = sample_args(cname)
    for _, bad in ipairs(BAD) do
      attempt(t, "first argument = " .. bad[1], function(v) return cls(v) end, bad[2]())
    end
    local keys, seen = {}, {}
    for k in pairs(kw0) do if type(k) == "string" then keys[#keys + 1] = k; seen[k] = true end end
    if obj and type(obj.get_config) == "function" then
      local ok, config = pcall(obj.get_config, obj)
      if ok and type(config) == "table" then
        for k in pairs(config) do if type(k) == "string" and not seen[k] then keys[#keys + 1] = k; seen[k] = true end end
      end
    end
    table.sort(keys)
    for _, k in ipairs(keys) do
      for _, bad in ipairs(BAD) do
        local kw, first = sample_args(cname)
        kw = copy(kw)
        kw[k] = bad[2]()
        attempt(t, ("%s = %s"):format(k, bad[1]), construct, cls, kw, first)
      end
    end
    -- from_config with a bad config
    for _, bad in ipairs(BAD) do
      attempt({ name = c.name .. ".from_config", names = c.names }, "config = " .. bad[1],
        function(v) return cls.from_config(v) end, bad[2]())
    end
  end
  if not obj then return end
  local names = { unpack(c.names) }
  if type(obj) == "table" and type(rawget(obj, "name")) == "string" then names[#names + 1] = rawget(obj, "name") end
  local ocls = type(obj) == "table" and getmetatable(obj)
  if type(ocls) == "table" and type(rawget(ocls, "__name")) == "string" then   -- Model{...} makes a Functional
    names[#names + 1] = rawget(ocls, "__name")
  end
  -- Calls of an instance.
  if is_layer_class(cls) and cname ~= "InputLayer" and cname ~= "Input" then
    local t = { name = c.name .. "()", names = names }
    for _, bad in ipairs(BAD) do
      attempt(t, "input = " .. bad[1], function(v) local l = c.sample(); return l(v) end, bad[2]())
    end
    for _, s in ipairs(SHAPES) do
      attempt(t, "input = " .. s[1], function(v) local l = c.sample(); return l(v) end, s[2]())
    end
    if cname == "MultiHeadAttention" or cname == "Dot" or cname == "Add" then
      for _, bad in ipairs(BAD) do
        attempt(t, "second input = " .. bad[1], function(v) local l = c.sample(); return l(klua.ones { 2, 3, 2 }, v) end, bad[2]())
      end
    end
  else
    local params = call_base(c)
    if params then
      local t = { name = c.name .. "()", names = names }
      for i = 1, #params do
        for _, bad in ipairs(BAD) do
          local args = {}
          for j = 1, #params do args[j] = base_value(params[j]) end
          args[i] = bad[2]()
          attempt(t, ("argument %d (%s) = %s"):format(i, params[i], bad[1]),
            function(...) local o = c.sample(); return o(...) end, unpack(args, 1, #params))
        end
      end
    end
  end
  -- Methods (each function once, on the first class that has it).
  for _, m in ipairs(methods_of(cls)) do
    local f = cls[m]
    if type(f) == "function" and not by_fn[f] and (not FILTER or (c.name .. ":" .. m):find(FILTER)) then
      local mt = { name = c.name .. ":" .. m, names = { m, unpack(names) } }
      if require("klua.registry").is_subclass(cls, klua.Model) then   -- the methods run on a Sequential
        mt.names[#mt.names + 1] = "Sequential"
      end
      by_fn[f] = mt
      current = mt.name
      counts.functions = counts.functions + 1
      local kwf = KW_METHODS[m]
      if kwf and is_layer_class(cls) and cls ~= Layer and require("klua.registry").is_subclass(cls, klua.Model) then
        -- the keyword form: each keyword in turn
        local keys = sorted_keys(kwf())
        for _, extra in ipairs(KW_EXTRA[m] or {}) do keys[#keys + 1] = extra end
        for _, k in ipairs(keys) do
          for _, bad in ipairs(BAD) do
            local kw = kwf()
            kw[k] = bad[2]()
            attempt(mt, ("%s = %s"):format(k, bad[1]), function(a) local mo = small_model(); return mo[m](mo, a) end, kw)
          end
        end
        -- and the positional form
        for _, bad in ipairs(BAD) do
          attempt(mt, "first argument = " .. bad[1], function(v) local mo = small_model(); return mo[m](mo, v) end, bad[2]())
        end
      else
        local params, vararg = params_of(f)
        -- a vararg function of a class (a wrapped method: Model.save) takes self too
        local is_method = params[1] == "self" or (#params == 0 and vararg)
        if is_method then table.remove(params, 1) end
        if vararg then params[#params + 1] = "..."; params[#params + 1] = "..." end
        local function self_of()
          if require("klua.registry").is_subclass(cls, klua.Model) then return small_model() end
          if cname == "Dataset" then return klua.data.Dataset.from_tensor_slices(klua.ones { 4, 3 }) end
          return c.sample()
        end
        for i = 1, #params do
          for _, bad in ipairs(BAD) do
            local args = {}
            for j = 1, #params do args[j] = base_value(params[j]) end
            args[i] = bad[2]()
            local label = ("argument %d (%s) = %s"):format(i, params[i], bad[1])
            if is_method then
              attempt(mt, label, function(...) local o = self_of(); return f(o, ...) end, unpack(args, 1, #params))
            else
              attempt(mt, label, f, unpack(args, 1, #params))
            end
          end
        end
      end
    end
  end
end

-- Extra calls the generic walk cannot make: optimizer steps with bad pairs.
local function sweep_extras()
  local t = { name = "optimizers:apply_gradients(pairs)", names = { "apply_gradients", "SGD", "sgd" } }
  if FILTER and not t.name:find(FILTER) then return end
  counts.functions = counts.functions + 1
  for _, bad in ipairs(BAD) do
    local function run(pair)
      local opt = klua.optimizers.SGD { learning_rate = 0.1 }
      return opt:apply_gradients(pair)
    end
    attempt(t, "gradient = " .. bad[1], function(v) return run { { v, fresh_variable() } } end, bad[2]())
    attempt(t, "variable = " .. bad[1], function(v) return run { { klua.ones { 2, 3 }, v } } end, bad[2]())
    attempt(t, "pair = " .. bad[1], function(v) return run { v } end, bad[2]())
    attempt(t, "gradients list = " .. bad[1], function(v)
      return klua.optimizers.SGD { learning_rate = 0.1 }:apply_gradients(v, { fresh_variable() }) end, bad[2]())
    attempt(t, "variables list = " .. bad[1], function(v)
      return klua.optimizers.SGD { learning_rate = 0.1 }:apply_gradients({ klua.ones { 2, 3 } }, v) end, bad[2]())
  end
end

-- Files the loaders get as their base path.
do
  local ok, err = pcall(function()
    local m = small_model()
    base_model_file = tmp("model.klua"); m:save(base_model_file)
    base_weights_file = tmp("model.weights.safetensors"); m:save_weights(base_weights_file)
    base_png = tmp("image.png"); klua.image.write_png(base_png, klua.ones { 4, 4, 3 })
  end)
  if not ok then io.stderr:write("sweep: could not write the base files: ", tostring(err), "\n") end
end

local started = os.clock()
for _, t in ipairs(targets) do sweep_function(t) end
for _, c in ipairs(classes) do
  if not FILTER or (c.name .. ":"):find(FILTER) then sweep_class(c) end
end
sweep_extras()
debug.sethook()

local distinct = 0
for _ in pairs(failing) do distinct = distinct + 1 end
local out = assert(io.open(REPORT, "w"))
out:write(("functions %d\ncalls %d\nok %d\nchecked %d\nraw %d\nunnamed %d\nnot_string %d\naccepted %d\ntimeouts %d\nfailing_functions %d\nseconds %.2f\n")
  :format(counts.functions, counts.calls, counts.ok, counts.checked, counts.raw, counts.unnamed, counts.not_string,
    counts.accepted, counts.timeouts, distinct, os.clock() - started))
local slow = {}
for k, v in pairs(spent) do slow[#slow + 1] = { k, v } end
table.sort(slow, function(a, b) return a[2] > b[2] end)
for i = 1, math.min(40, #slow) do out:write(("slowest\t%s\t%.3f s\n"):format(slow[i][1], slow[i][2])) end
for _, b in ipairs(broken_samples) do out:write("sample\t", b[1], "\t\t", b[2], "\n") end
for _, f in ipairs(failures) do out:write(f, "\n") end
out:write("DONE\n")
out:close()
progress:write("DONE\n")
progress:close()
os.exit(0)
