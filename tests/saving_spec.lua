-- saving_spec.lua — klua.saving and klua.json: save -> load gives the same
-- predictions for every kind of model, weight files in the safetensors
-- layout, hostile and corrupt files rejected with the file and the problem
-- named, atomic writes (a crash mid-save keeps the previous file), and a
-- resumed fit that continues exactly as an uninterrupted run.
local ffi = require("ffi")
local klua = require("klua")
local L = klua.layers
local ops = klua.ops
local json = klua.json
local saving = klua.saving
local pty = dofile("tests/pty.lua")

local helpers = require("helpers")
local err_of, max_abs_diff = helpers.err_of, helpers.max_abs_diff
local write_file, read_file, listing = helpers.write_file, helpers.read_file, helpers.listing

local dir
local function path_of(name) return dir .. "/" .. name end

local function le64(n)
  local b = {}
  for i = 1, 8 do b[i] = string.char(n % 256); n = math.floor(n / 256) end
  return table.concat(b)
end

-- A safetensors file from a header text and raw data bytes.
local function raw_file(name, header, data, len)
  local p = path_of(name)
  write_file(p, le64(len or #header) .. header .. (data or ""))
  return p
end

local function floats(list)
  local buf = ffi.new("float[?]", #list, list)
  return ffi.string(buf, 4 * #list)
end

-- A custom layer, registered so that models using it can be loaded.
local Scale = klua.Layer:extend("SpecScale")
function Scale:__init(kw)
  Scale.super.__init(self, kw)
  self.factor = kw and kw.factor or 2
end
function Scale:build(s)
  self.gain = self:add_weight{ shape = { s[#s] }, initializer = "ones", name = "gain" }
end
function Scale:call(x) return x * self.gain * self.factor end
function Scale:get_config()
  local c = Scale.super.get_config(self)
  c.factor = self.factor
  return c
end
saving.register_serializable(Scale)

-- A subclassed model with constructor arguments and the custom layer.
local Net = klua.Model:extend("SpecNet")
function Net:__init(hidden, out)
  Net.super.__init(self)
  self.body = L.Dense(hidden, { activation = "tanh" })
  self.scale = Scale{ factor = 3 }
  self.head = L.Dense(out)
end
function Net:call(x) return self.head(self.scale(self.body(x))) end
saving.register_serializable(Net)

setup(function() dir = helpers.tmpdir() end)
teardown(function() helpers.remove_tree(dir) end)

describe("save and load_model", function()
  it("round-trips a Sequential model with its optimizer state", function()
    klua.random.seed(31)
    local m = klua.Sequential{ L.Dense(6, { activation = "relu", input_shape = { 4 } }), L.BatchNormalization(),
      L.Dropout(0.2), L.Dense(2) }
    m:compile{ optimizer = klua.optimizers.Adam{ learning_rate = 0.01 }, loss = "mse", metrics = { "mae" } }
    local x, y = klua.random.normal({ 16, 4 }), klua.random.normal({ 16, 2 })
    m:fit(x, y, { epochs = 2, batch_size = 8, verbose = 0, shuffle = false })
    m:save(path_of("seq.klua"))
    local back = klua.models.load_model(path_of("seq.klua"))
    assert.are.equal("Sequential", back:class_name())
    assert.are.equal(m.name, back.name)
    assert.are.equal(0, max_abs_diff(back:predict(x, { verbose = 0 }), m:predict(x, { verbose = 0 })))
    assert.are.equal(m.optimizer.iterations, back.optimizer.iterations)
    -- one more epoch from the restored optimizer state matches the original exactly
    klua.random.seed(5)            -- the same dropout masks for both
    m:fit(x, y, { epochs = 1, batch_size = 8, verbose = 0, shuffle = false })
    klua.random.seed(5)
    back:fit(x, y, { epochs = 1, batch_size = 8, verbose = 0, shuffle = false })
    assert.are.same({ "loss", "mae" }, back.metrics_names)
    local a, b = m:get_weights(), back:get_weights()
    for i = 1, #a do assert.are.equal(0, max_abs_diff(a[i], b[i])) end
  end)

  it("round-trips a Functional model with several inputs and a custom layer", function()
    klua.random.seed(32)
    local a, b = klua.Input{ shape = { 3 }, name = "left" }, klua.Input{ shape = { 2 }, name = "right" }
    local h = Scale{ factor = 0.5 }(L.Concatenate()({ a, b }))
    local m = klua.Model{ inputs = { left = a, right = b }, outputs = { L.Dense(2)(h), L.Dense(1)(h) }, name = "two_heads" }
    local x = { left = klua.random.normal({ 5, 3 }), right = klua.random.normal({ 5, 2 }) }
    m:save(path_of("fun.klua"))
    local back = klua.models.load_model(path_of("fun.klua"))
    assert.are.equal("two_heads", back.name)
    assert.is_nil(back.optimizer)
    local p, q = m(x), back(x)
    assert.are.equal(0, max_abs_diff(p[1], q[1]))
    assert.are.equal(0, max_abs_diff(p[2], q[2]))
  end)

  it("round-trips a subclassed model with a custom layer", function()
    klua.random.seed(33)
    local m = Net(5, 2)
    local x = klua.random.normal({ 4, 3 })
    m:compile{ optimizer = "rmsprop", loss = klua.losses.Huber{ delta = 0.5 } }
    m:fit(x, klua.zeros({ 4, 2 }), { epochs = 1, verbose = 0 })
    m:save(path_of("net.klua"))
    local back = klua.models.load_model(path_of("net.klua"))
    assert.are.equal("SpecNet", back:class_name())
    assert.are.equal(3, back.scale.factor)
    assert.are.equal(0, max_abs_diff(back(x), m(x)))
    assert.are.equal(0.5, back._compiled.loss_spec.delta)
  end)

  it("names a class that is not registered, and accepts custom_objects", function()
    local Hidden = klua.Model:extend("UnregisteredNet")
    function Hidden:__init() Hidden.super.__init(self); self.d = L.Dense(2) end
    function Hidden:call(x) return self.d(x) end
    local m = Hidden()
    m(klua.ones({ 1, 3 }))
    m:save(path_of("hidden.klua"))
    local msg = err_of(klua.models.load_model, path_of("hidden.klua"))
    assert.matches("hidden%.klua: unknown class 'UnregisteredNet': register it with klua%.saving%.register_serializable", msg)
    local back = klua.models.load_model(path_of("hidden.klua"), { custom_objects = { UnregisteredNet = Hidden } })
    assert.are.equal(0, max_abs_diff(back(klua.ones({ 1, 3 })), m(klua.ones({ 1, 3 }))))
  end)

  it("saves arithmetic recorded on symbolic tensors", function()
    local i = klua.Input{ shape = { 2 } }
    local m = klua.Model(i, L.Dense(2)(i) * 0.5 + i)
    m:save(path_of("ops.klua"))
    local back = klua.models.load_model(path_of("ops.klua"))
    local x = klua.tensor{ { 1, 2 } }
    assert.are.equal(0, max_abs_diff(back(x), m(x)))
  end)

  it("asks for get_config when a subclass was built from values it cannot save", function()
    local Wrap = klua.Model:extend("WrapNet")
    function Wrap:__init(inner) Wrap.super.__init(self); self.inner = inner end
    function Wrap:call(x) return self.inner(x) end
    local m = Wrap(L.Dense(1))
    m(klua.ones({ 1, 2 }))
    assert.matches("define get_config%(%)", err_of(function() m:save(path_of("wrap.klua")) end))
  end)

  it("refuses to save a model whose config holds a function", function()
    local m = klua.Sequential{ L.Lambda(function(x) return x * 2 end, { input_shape = { 2 } }) }
    assert.matches("cannot write the model config: .*is a function", err_of(function() m:save(path_of("lambda.klua")) end))
  end)

  it("never runs code from the file: configs are data, classes come from the registry", function()
    local m = klua.Sequential{ L.Dense(1, { input_shape = { 1 } }) }
    m:save(path_of("evil.klua"))
    local t, meta = saving.load_safetensors(path_of("evil.klua"))
    meta.model_config = json.encode{ class_name = "os.execute", config = { command = "touch " .. path_of("pwned") } }
    saving.save_safetensors(path_of("evil.klua"), t, meta)
    assert.matches("unknown class 'os.execute'", err_of(klua.models.load_model, path_of("evil.klua")))
    meta.model_config = json.encode{ class_name = "Dense", config = { units = "os.exit(3)" } }
    saving.save_safetensors(path_of("evil.klua"), t, meta)
    assert.matches("units must be a positive integer", err_of(klua.models.load_model, path_of("evil.klua")))
    assert.is_nil(io.open(path_of("pwned")))
  end)
end)

describe("save_weights and load_weights", function()
  it("write the safetensors layout that other tools read", function()
    local m = klua.Sequential{ L.Dense(3, { input_shape = { 2 } }), L.Dense(1) }
    m:save_weights(path_of("w.safetensors"))
    local bytes = read_file(path_of("w.safetensors"))
    local n = 0
    for i = 8, 1, -1 do n = n * 256 + bytes:byte(i) end
    assert.are.equal(0, (8 + n) % 8)
    local header = json.decode(bytes:sub(9, 8 + n))
    assert.are.equal("klua.weights", header.__metadata__.format)
    local k = header["dense/kernel"]
    assert.are.same({ dtype = "F32", shape = { 2, 3 }, data_offsets = { 0, 24 } }, k)
    assert.are.same({ 24, 36 }, header["dense/bias"].data_offsets)
    assert.are.same({ 3, 1 }, header["dense_1/kernel"].shape)
    local data = bytes:sub(9 + n, 8 + n + 24)
    assert.are.equal(floats(m.weights[1]:tolist()), data)
  end)

  it("match weights by name, so a rebuilt model with other layer names loads them", function()
    klua.random.seed(34)
    local a = klua.Sequential{ L.Dense(3, { input_shape = { 2 } }), L.Dense(1) }
    a:save_weights(path_of("a.safetensors"))
    local i = klua.Input{ shape = { 2 } }
    local b = klua.Model(i, L.Dense(1)(L.Dense(3)(i)))
    b:load_weights(path_of("a.safetensors"))
    local x = klua.random.normal({ 3, 2 })
    assert.are.equal(0, max_abs_diff(a(x), b(x)))
  end)

  it("check every shape and name, and change nothing on a mismatch", function()
    local a = klua.Sequential{ L.Dense(3, { input_shape = { 2 } }), L.Dense(1) }
    a:save_weights(path_of("a.safetensors"))
    local wrong = klua.Sequential{ L.Dense(4, { input_shape = { 2 } }), L.Dense(1) }
    local before = wrong:get_weights()
    local msg = err_of(function() wrong:load_weights(path_of("a.safetensors")) end)
    assert.matches("a%.safetensors does not match the model: weight 'dense/kernel' has shape %(2,4%) in the model but %(2,3%) in the file", msg)
    local after = wrong:get_weights()
    for j = 1, #before do assert.are.equal(0, max_abs_diff(before[j], after[j])) end
    local fewer = klua.Sequential{ L.Dense(3, { input_shape = { 2 } }) }
    assert.matches("the file has a weight 'dense_1/kernel' that the model does not",
      err_of(function() fewer:load_weights(path_of("a.safetensors")) end))
    local more = klua.Sequential{ L.Dense(3, { input_shape = { 2 } }), L.Dense(1), L.Dense(1) }
    assert.matches("no weight 'dense_2/kernel' %(shape %(1,1%)%) in the file",
      err_of(function() more:load_weights(path_of("a.safetensors")) end))
    fewer:load_weights(path_of("a.safetensors"), { skip_mismatch = true })
    assert.are.equal(0, max_abs_diff(fewer.weights[1], a.weights[1]))
  end)

  it("builds an unbuilt subclassed model from the saved build config", function()
    klua.random.seed(35)
    local m = Net(4, 1)
    m(klua.ones({ 2, 3 }))
    m:save_weights(path_of("net.safetensors"))
    local fresh = Net(4, 1)
    fresh:load_weights(path_of("net.safetensors"))
    assert.are.equal(0, max_abs_diff(fresh(klua.ones({ 2, 3 })), m(klua.ones({ 2, 3 }))))
    local empty = klua.Sequential{ L.Dense(1) }
    assert.matches("no weights yet", err_of(function() empty:save_weights(path_of("x.safetensors")) end))
  end)
end)

describe("Reading a corrupt or hostile file", function()
  local good = json.encode{ ["w"] = { dtype = "F32", shape = { 2, 2 }, data_offsets = { 0, 16 } } }
  local data = floats{ 1, 2, 3, 4 }

  local function load_error(p)
    return err_of(saving.load_safetensors, p)
  end

  it("reads a well-formed file written by hand", function()
    local t = saving.load_safetensors(raw_file("good.safetensors", good, data))
    assert.are.same({ { 1, 2 }, { 3, 4 } }, t.w:totable())
  end)

  it("rejects a file too short for the header length", function()
    local p = path_of("short.safetensors")
    write_file(p, "\5\0\0")
    assert.matches("short%.safetensors: the file is too short %(3 bytes%)", load_error(p))
  end)

  it("rejects a truncated header and a header length beyond the file", function()
    local p = raw_file("trunc.safetensors", good:sub(1, 20), nil, #good)
    assert.matches("trunc%.safetensors: the header length %d+ is beyond the end of the file %(28 bytes%)", load_error(p))
    p = raw_file("cut.safetensors", good:sub(1, 30) .. "  ", data)
    assert.matches("cut%.safetensors: the header is not valid JSON %(json: .* at position %d+", load_error(p))
    p = raw_file("huge.safetensors", good, data, 2 ^ 40)
    assert.matches("huge%.safetensors: the header length 1099511627776 is larger than the 104857600%-byte limit", load_error(p))
    p = raw_file("zero.safetensors", "", data, 0)
    assert.matches("zero%.safetensors: the header length is 0", load_error(p))
  end)

  it("rejects a header that is not JSON, or not an object", function()
    assert.matches("nojson%.safetensors: the header is not valid JSON %(json: unexpected character \"h\" at position 1 %(line 1, column 1%)%)",
      load_error(raw_file("nojson.safetensors", "hello world!", data)))
    assert.matches("list%.safetensors: the header is not a JSON object", load_error(raw_file("list.safetensors", "[1, 2]", "")))
    assert.matches("meta%.safetensors: __metadata__ value 'n' is not a string",
      load_error(raw_file("meta.safetensors", '{"__metadata__": {"n": 3}}', "")))
  end)

  it("rejects offsets out of range, overlapping or not covering the data", function()
    local h = json.encode{ w = { dtype = "F32", shape = { 2, 2 }, data_offsets = { 0, 400 } } }
    assert.matches("range%.safetensors: tensor 'w' has data_offsets %[0, 400%] beyond the end of the data %(16 bytes%)",
      load_error(raw_file("range.safetensors", h, data)))
    h = json.encode{ a = { dtype = "F32", shape = { 2 }, data_offsets = { 0, 8 } }, b = { dtype = "F32", shape = { 2 }, data_offsets = { 4, 12 } } }
    assert.matches("overlap%.safetensors: tensor 'b' overlaps the data of another tensor", load_error(raw_file("overlap.safetensors", h, data)))
    h = json.encode{ a = { dtype = "F32", shape = { 2 }, data_offsets = { 8, 16 } } }
    assert.matches("hole%.safetensors: the bytes 0%.%.8 of the data belong to no tensor", load_error(raw_file("hole.safetensors", h, data)))
    h = json.encode{ a = { dtype = "F32", shape = { 2 }, data_offsets = { 0, 8 } } }
    assert.matches("tail%.safetensors: the file has 8 bytes after the last tensor's data", load_error(raw_file("tail.safetensors", h, data)))
    h = json.encode{ a = { dtype = "F32", shape = { 2 }, data_offsets = { 8, 0 } } }
    assert.matches("begin after end", load_error(raw_file("reverse.safetensors", h, data)))
    h = '{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, -16]}}'
    assert.matches("neg%.safetensors: tensor 'a' has invalid data_offsets", load_error(raw_file("neg.safetensors", h, data)))
  end)

  it("rejects a wrong dtype and a shape that does not match the byte count", function()
    local h = json.encode{ w = { dtype = "F8_E4M3", shape = { 16 }, data_offsets = { 0, 16 } } }
    assert.matches("dtype%.safetensors: tensor 'w' has dtype F8_E4M3; klua reads F32, F16, BF16", load_error(raw_file("dtype.safetensors", h, data)))
    h = json.encode{ w = { dtype = "F32", shape = { 2, 3 }, data_offsets = { 0, 16 } } }
    assert.matches("size%.safetensors: tensor 'w' has shape %(2,3%) %(24 bytes of F32%) but its data_offsets %[0, 16%] span 16 bytes",
      load_error(raw_file("size.safetensors", h, data)))
    -- a huge shape is refused before anything is allocated
    h = json.encode{ w = { dtype = "F32", shape = { 2 ^ 40, 2 ^ 10 }, data_offsets = { 0, 16 } } }
    assert.matches("big%.safetensors: tensor 'w' has shape", load_error(raw_file("big.safetensors", h, data)))
    h = json.encode{ w = { dtype = "F32", shape = { -1, 4 }, data_offsets = { 0, 16 } } }
    assert.matches("invalid size %-1 at position 1", load_error(raw_file("negshape.safetensors", h, data)))
  end)

  it("names the file for load_weights and load_model too", function()
    local p = raw_file("model.klua", "{{{{", data)
    local m = klua.Sequential{ L.Dense(1, { input_shape = { 1 } }) }
    assert.matches("load_weights: .*model%.klua: the header is not valid JSON", err_of(function() m:load_weights(p) end))
    assert.matches("load_model: .*model%.klua: the header is not valid JSON", err_of(klua.models.load_model, p))
    assert.matches("load_model: .*good%.safetensors is not a klua model file",
      err_of(klua.models.load_model, raw_file("good.safetensors", good, data)))
    assert.matches("cannot open", err_of(klua.models.load_model, path_of("missing.klua")))
  end)
end)

describe("Atomic writes", function()
  it("keep the previous file when a save fails half way", function()
    klua.random.seed(36)
    local a = klua.Sequential{ L.Dense(3, { input_shape = { 2 } }), L.Dense(1) }
    local b = klua.Sequential{ L.Dense(3, { input_shape = { 2 } }), L.Dense(1) }
    local sub = path_of("atomic")
    os.execute("mkdir -p " .. sub)
    local target = sub .. "/model.klua"
    a:save(target)
    saving.test_hooks.after_tensor = function(i) if i == 2 then error("simulated crash") end end
    local ok, err = pcall(b.save, b, target)
    saving.test_hooks.after_tensor = nil
    assert.is_false(ok)
    assert.matches("simulated crash", err)
    local back = klua.models.load_model(target)
    local x = klua.ones({ 2, 2 })
    assert.are.equal(0, max_abs_diff(back(x), a(x)))
    assert.are.same({ "model.klua" }, listing(sub))
  end)

  it("keep a complete file when the saving process is killed", function()
    local script = path_of("saver.lua")
    local target = path_of("killed.safetensors")
    write_file(script, ([[
local klua = require("klua")
local m = klua.Sequential{ klua.layers.Dense(256, { input_shape = { 256 } }) }
local i = 0
while true do
  i = i + 1
  m:set_weights({ klua.full({ 256, 256 }, i), klua.full({ 256 }, i) })
  m:save_weights(%q)
  io.write("saved ", i, "\n"); io.flush()
end
]]):format(target))
    local s = pty.spawn({ helpers.EXE, script })
    local ok, err = pcall(function()
      s:expect("saved 3", 10)
      ffi.C.kill(s.pid, 9)
      s:wait(5)
    end)
    s:close()
    assert(ok, err)
    local t = saving.load_safetensors(target)
    local k = t["dense/kernel"]
    local v = k:get(1, 1)
    assert.is_true(v >= 3)
    assert.are.equal(v, ops.min(k):item())
    assert.are.equal(v, ops.max(k):item())
    assert.are.equal(v, ops.max(t["dense/bias"]):item())
  end)
end)

describe("Resuming with BackupAndRestore", function()
  local function make()
    local m = klua.Sequential{
      L.Dense(8, { activation = "relu", input_shape = { 3 } }),
      L.Dropout(0.3),
      L.Dropout(0.2, { seed = 5 }),
      L.Dense(1),
    }
    m:compile{ optimizer = klua.optimizers.Adam{ learning_rate = 0.01 }, loss = "mse" }
    return m
  end

  local function data()
    klua.random.seed(41)
    return klua.random.normal({ 40, 3 }), klua.random.normal({ 40, 1 })
  end

  it("continues exactly as an uninterrupted run", function()
    local x, y = data()
    klua.random.seed(1)
    local full = make()
    local hf = full:fit{ x = x, y = y, epochs = 5, batch_size = 8, verbose = 0, validation_data = { x, y } }

    local backup = path_of("backup")
    local Crash = klua.callbacks.Callback:extend("Crash")
    function Crash:on_train_batch_end(batch)
      if self.epoch == 2 and batch == 2 then error("power cut") end
    end
    function Crash:on_epoch_begin(epoch) self.epoch = epoch end
    klua.random.seed(1)
    local first = make()
    local ok, err = pcall(first.fit, first, { x = x, y = y, epochs = 5, batch_size = 8, verbose = 0,
      validation_data = { x, y }, callbacks = { klua.callbacks.BackupAndRestore(backup), Crash() } })
    assert.is_false(ok)
    assert.matches("power cut", err)

    -- a new model, a new optimizer and a scrambled generator: all restored from the backup
    klua.random.seed(999)
    local resumed = make()
    local hr = resumed:fit{ x = x, y = y, epochs = 5, batch_size = 8, verbose = 0, validation_data = { x, y },
      callbacks = { klua.callbacks.BackupAndRestore(backup) } }
    assert.are.same({ 2, 3, 4 }, hr.epoch)
    for i = 1, 3 do
      assert.are.equal(hf.history.loss[i + 2], hr.history.loss[i])
      assert.are.equal(hf.history.val_loss[i + 2], hr.history.val_loss[i])
    end
    local a, b = full:get_weights(), resumed:get_weights()
    for i = 1, #a do assert.are.equal(0, max_abs_diff(a[i], b[i])) end
    assert.are.equal(full.optimizer.iterations, resumed.optimizer.iterations)
  end)

  it("continues exactly in a new process after the first one dies", function()
    local script = path_of("resume.lua")
    write_file(script, ([[
local klua = require("klua")
local L = klua.layers
local mode, out = arg[1], arg[2]
klua.random.seed(41)
local x, y = klua.random.normal({ 40, 3 }), klua.random.normal({ 40, 1 })
klua.random.seed(mode == "resume" and 7 or 1)
local m = klua.Sequential{ L.Dense(8, { activation = "relu", input_shape = { 3 } }), L.Dropout(0.3), L.Dense(1) }
m:compile{ optimizer = klua.optimizers.RMSprop{ learning_rate = 0.01 }, loss = "mse" }
local cbs = {}
if mode ~= "full" then cbs[1] = klua.callbacks.BackupAndRestore(%q) end
if mode == "crash" then
  cbs[2] = klua.callbacks.LambdaCallback{ on_epoch_end = function(e) if e == 1 then os.exit(3) end end }
end
m:fit{ x = x, y = y, epochs = 4, batch_size = 8, verbose = 0, callbacks = cbs }
m:save_weights(out)
]]):format(path_of("proc_backup")))
    local function run(mode, out)
      local _, code = helpers.run_klua(("%s %s %s"):format(script, mode, out or path_of("none")))
      return code
    end
    run("full", path_of("full.safetensors"))
    local status = run("crash")
    assert.are_not.equal(0, status)
    run("resume", path_of("resumed.safetensors"))
    local a = saving.load_safetensors(path_of("full.safetensors"))
    local b = saving.load_safetensors(path_of("resumed.safetensors"))
    for name, t in pairs(a) do assert.are.equal(0, max_abs_diff(t, b[name]), name) end
  end)
end)

describe("klua.json", function()
  it("round-trips configs with exact numbers and escapes", function()
    local v = { units = 64, rate = 0.1, name = "a \"quoted\"\n\tname", list = { 1, -2.5e-8, true, false }, empty = json.array() }
    local back = json.decode(json.encode(v))
    assert.are.same({ units = 64, rate = 0.1, name = v.name, list = v.list, empty = {} }, back)
    assert.are.equal('{"b":[],"a":{}}', (json.encode{ a = json.object(), b = json.array() }):gsub('"a":{},"b":%[%]', '"b":[],"a":{}'))
    assert.are.equal("é😀", json.decode('"\\u00e9\\ud83d\\ude00"'))
    assert.are.same({ 1, json.null, 3 }, json.decode("[1, null, 3]"))
  end)

  it("rejects malformed input, naming the position", function()
    local cases = {
      { '{"a": 1,}', "expected a string key in object at position 9" },
      { "[01]", "malformed number at position 2" },
      { '{"a": 1 "b": 2}', "expected ',' or '}' in object at position 9" },
      { '{"a": 1, "a": 2}', "duplicate key \"a\" in object at position 10" },
      { "[1, 2", "expected ',' or ']' in array at position 6" },
      { "[NaN]", "unexpected character \"N\" at position 2" },
      { '"tab\there"', "control character in string at position 5" },
      { "[1]\n x", "trailing characters after the JSON value at position 6 %(line 2, column 2%)" },
      { "", "unexpected end of input at position 1" },
      { '"\\q"', "invalid escape in string at position 2" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(json.decode, c[1])
      assert.is_false(ok, c[1])
      assert.matches(c[2], err)
    end
  end)

  it("limits nesting depth and refuses what JSON cannot hold", function()
    assert.matches("nesting deeper than 128 levels", err_of(json.decode, ("["):rep(10000)))
    assert.matches("value%[1%] is nan", err_of(json.encode, { 0 / 0 }))
    assert.matches("value.f is a function", err_of(json.encode, { f = print }))
    local t = {}
    t.self = t
    assert.matches("contains itself", err_of(json.encode, t))
  end)
end)
