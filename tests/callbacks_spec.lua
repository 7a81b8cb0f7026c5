-- callbacks_spec.lua — klua.callbacks and the progress bar: every callback's
-- behaviour on a tiny model, the hook order fit follows, and what the bar
-- prints on a pipe (one line per epoch, no carriage returns) and on a
-- pseudo-terminal (redrawn in place, with an ETA).
local klua = require("klua")
local L = klua.layers
local cbs = klua.callbacks
local pty = dofile("tests/pty.lua")
local helpers = require("helpers")
local err_of, exists, max_abs_diff = helpers.err_of, helpers.exists, helpers.max_abs_diff
local tmpdir, remove_tree = helpers.tmpdir, helpers.remove_tree

local function tiny(lr)
  klua.random.seed(21)
  local m = klua.Sequential{ L.Dense(1, { input_shape = { 2 } }) }
  m:compile{ optimizer = klua.optimizers.SGD{ learning_rate = lr or 0.01 }, loss = "mse", metrics = { "mae" } }
  return m
end

local X = klua.tensor{ { 1, 2 }, { 2, 1 }, { 0, 1 }, { 1, 0 }, { 3, 1 }, { 1, 3 }, { 2, 2 }, { 0, 0 } }
local Y = klua.tensor{ { 3 }, { 3 }, { 1 }, { 1 }, { 4 }, { 4 }, { 4 }, { 0 } }

-- Puts a scripted value into the logs (callbacks run in list order and share logs).
local function script_metric(name, values)
  return cbs.LambdaCallback{ on_epoch_end = function(epoch, logs) logs[name] = values[epoch + 1] end }
end

describe("Callback hooks", function()
  it("are called in Keras's order with 0-based epochs and batches", function()
    local m = tiny()
    local calls = {}
    local hooks = {}
    for _, h in ipairs(cbs.HOOKS) do
      hooks[h] = function(a) calls[#calls + 1] = a ~= nil and type(a) == "number" and (h .. "(" .. a .. ")") or h end
    end
    m:fit{ x = X, y = Y, batch_size = 4, epochs = 2, verbose = 0, validation_data = { X, Y }, shuffle = false,
      callbacks = { cbs.LambdaCallback(hooks) } }
    local epoch = { "train_batch_begin(0)", "train_batch_end(0)", "train_batch_begin(1)", "train_batch_end(1)",
      "test_begin", "test_batch_begin(0)", "test_batch_end(0)", "test_batch_begin(1)", "test_batch_end(1)", "test_end" }
    local expected = { "on_train_begin" }
    for e = 0, 1 do
      expected[#expected + 1] = "on_epoch_begin(" .. e .. ")"
      for _, h in ipairs(epoch) do expected[#expected + 1] = "on_" .. h end
      expected[#expected + 1] = "on_epoch_end(" .. e .. ")"
    end
    expected[#expected + 1] = "on_train_end"
    assert.are.same(expected, calls)
  end)

  it("let a subclass of Callback see the epoch logs and stop training", function()
    local Stopper = cbs.Callback:extend("Stopper")
    function Stopper:on_train_batch_end(batch, logs)
      self.batches = (self.batches or 0) + 1
      if batch == 1 then self.model.stop_training = true end
    end
    function Stopper:on_epoch_end(epoch, logs) self.keys = logs end
    local s = Stopper()
    local m = tiny()
    local h = m:fit{ x = X, y = Y, batch_size = 2, epochs = 5, verbose = 0, validation_data = { X, Y }, callbacks = { s } }
    assert.are.equal(2, s.batches)
    assert.are.equal(1, #h.history.loss)
    assert.is_number(s.keys.val_loss)
    assert.is_number(s.keys.mae)
  end)

  it("reject things that are not callbacks, and unknown LambdaCallback hooks", function()
    local m = tiny()
    assert.matches("callbacks%[1%] is not a klua.callbacks.Callback", err_of(function()
      m:fit{ x = X, y = Y, verbose = 0, callbacks = { function() end } }
    end))
    assert.matches("unknown hook `on_epoch`", err_of(function() cbs.LambdaCallback{ on_epoch = print } end))
  end)
end)

describe("History", function()
  it("records every log value per epoch and is returned by fit", function()
    local m = tiny()
    local h = m:fit{ x = X, y = Y, epochs = 3, verbose = 0, validation_data = { X, Y } }
    assert.is_true(klua.class.is_instance(h, cbs.History))
    assert.are.same({ 0, 1, 2 }, h.epoch)
    for _, k in ipairs{ "loss", "mae", "val_loss", "val_mae" } do assert.are.equal(3, #h.history[k], k) end
    -- validation runs after the epoch's updates, on the same data here
    assert.are.equal(m:evaluate(X, Y, { verbose = 0 })[1], h.history.val_loss[3])
  end)
end)

describe("EarlyStopping", function()
  it("stops after `patience` epochs without improvement", function()
    local m = tiny()
    local es = cbs.EarlyStopping{ monitor = "score", patience = 2 }
    local h = m:fit{ x = X, y = Y, epochs = 10, verbose = 0,
      callbacks = { script_metric("score", { 5, 4, 4.5, 4.2, 3, 1 }), es } }
    assert.are.equal(4, #h.history.loss)
    assert.are.equal(3, es.stopped_epoch)
    assert.are.equal(1, es.best_epoch)
  end)

  it("needs improvements larger than min_delta, and maximises accuracies", function()
    local m = tiny()
    local es = cbs.EarlyStopping{ monitor = "score", patience = 1, min_delta = 1 }
    local h = m:fit{ x = X, y = Y, epochs = 10, verbose = 0, callbacks = { script_metric("score", { 5, 4.5, 4.2, 1 }), es } }
    assert.are.equal(2, #h.history.loss)
    assert.are.equal("max", cbs.EarlyStopping{ monitor = "val_accuracy" }.mode)
    assert.are.equal("min", cbs.EarlyStopping{}.mode)
    local up = cbs.EarlyStopping{ monitor = "score", patience = 1, mode = "max" }
    local h2 = m:fit{ x = X, y = Y, epochs = 10, verbose = 0, callbacks = { script_metric("score", { 1, 2, 3, 2, 2, 9 }), up } }
    assert.are.equal(4, #h2.history.loss)
  end)

  it("restores the weights of the best epoch", function()
    local m = tiny()
    local snapshots = {}
    local snap = cbs.LambdaCallback{ on_epoch_end = function(e) snapshots[e + 1] = m:get_weights() end }
    local es = cbs.EarlyStopping{ monitor = "score", patience = 2, restore_best_weights = true }
    m:fit{ x = X, y = Y, epochs = 10, verbose = 0, callbacks = { script_metric("score", { 3, 1, 2, 2, 2 }), snap, es } }
    local w = m:get_weights()
    for i = 1, #w do assert.are.equal(0, max_abs_diff(w[i], snapshots[2][i])) end
  end)

  it("warns when the monitored value is missing", function()
    local m = tiny()
    local h = m:fit{ x = X, y = Y, epochs = 2, verbose = 0, callbacks = { cbs.EarlyStopping{ monitor = "nothing" } } }
    assert.are.equal(2, #h.history.loss)
  end)
end)

describe("ModelCheckpoint", function()
  it("saves only improvements with save_best_only, naming files by epoch", function()
    local dir = tmpdir()
    local m = tiny()
    local ck = cbs.ModelCheckpoint(dir .. "/ckpt-{epoch:02d}.klua", { monitor = "score", save_best_only = true })
    m:fit{ x = X, y = Y, epochs = 4, verbose = 0, callbacks = { script_metric("score", { 3, 2, 2.5, 1 }), ck } }
    assert.is_true(exists(dir .. "/ckpt-01.klua"))
    assert.is_true(exists(dir .. "/ckpt-02.klua"))
    assert.is_false(exists(dir .. "/ckpt-03.klua"))
    assert.is_true(exists(dir .. "/ckpt-04.klua"))
    local back = klua.models.load_model(dir .. "/ckpt-04.klua")
    assert.are.equal(0, max_abs_diff(back:predict(X, { verbose = 0 }), m:predict(X, { verbose = 0 })))
    local up = cbs.ModelCheckpoint(dir .. "/best.klua", { monitor = "score", save_best_only = true, mode = "max" })
    local saves = 0
    local count = cbs.LambdaCallback{ on_epoch_end = function() if up.last_saved then saves = saves + 1; up.last_saved = nil end end }
    m:fit{ x = X, y = Y, epochs = 4, verbose = 0, callbacks = { script_metric("score", { 1, 3, 2, 4 }), up, count } }
    assert.are.equal(3, saves)
    assert.are.equal(4, up.best)
    remove_tree(dir)
  end)

  it("writes weights only with save_weights_only, every epoch by default", function()
    local dir = tmpdir()
    local m = tiny()
    local path = dir .. "/w.safetensors"
    m:fit{ x = X, y = Y, epochs = 2, verbose = 0, callbacks = { cbs.ModelCheckpoint(path, { save_weights_only = true }) } }
    local _, meta = klua.saving.load_safetensors(path)
    assert.are.equal("klua.weights", meta.format)
    local other = tiny()
    other:load_weights(path)
    assert.are.equal(0, max_abs_diff(other(X), m(X)))
    remove_tree(dir)
  end)

  it("formats log values into the path and names what is missing", function()
    assert.are.equal("m-03-0.25.klua", cbs._format_path("m-{epoch:02d}-{val_loss:.2f}.klua", 2, { val_loss = 0.25 }))
    assert.matches("names 'acc'", err_of(cbs._format_path, "m-{acc}.klua", 0, { loss = 1 }))
  end)
end)

describe("ReduceLROnPlateau", function()
  it("divides the learning rate after `patience` flat epochs, not below min_lr", function()
    local m = tiny(0.1)
    local r = cbs.ReduceLROnPlateau{ monitor = "score", factor = 0.5, patience = 2, min_lr = 0.02 }
    local h = m:fit{ x = X, y = Y, epochs = 8, verbose = 0, callbacks = { script_metric("score", { 1, 1, 1, 1, 1, 1, 1, 1 }), r } }
    local lr = h.history.learning_rate
    assert.are.same({ 0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02 }, lr)
    assert.are.equal(0.02, m.optimizer.learning_rate)
  end)

  it("refuses a factor of 1 or more", function()
    assert.matches("factor >= 1.0", err_of(function() cbs.ReduceLROnPlateau{ factor = 2 } end))
  end)
end)

describe("LearningRateScheduler", function()
  it("sets the learning rate from schedule(epoch, lr) at each epoch start", function()
    local m = tiny(0.3)
    local s = cbs.LearningRateScheduler(function(epoch, lr) if epoch < 2 then return 0.1 end return lr * 0.5 end)
    local h = m:fit{ x = X, y = Y, epochs = 4, verbose = 0, callbacks = { s } }
    assert.are.same({ 0.1, 0.1, 0.05, 0.025 }, h.history.learning_rate)
    assert.are.equal(0.025, m.optimizer.learning_rate)
    local bad = cbs.LearningRateScheduler(function() return "fast" end)
    assert.matches("returned fast for epoch 0", err_of(function() m:fit{ x = X, y = Y, verbose = 0, callbacks = { bad } } end))
  end)
end)

describe("CSVLogger", function()
  it("writes a header and one row per epoch, and appends", function()
    local path = os.tmpname()
    local m = tiny()
    local h = m:fit{ x = X, y = Y, epochs = 3, verbose = 0, callbacks = { cbs.CSVLogger(path) } }
    local lines = {}
    for l in io.lines(path) do lines[#lines + 1] = l end
    assert.are.equal("epoch,loss,mae", lines[1])
    assert.are.equal(4, #lines)
    local e, loss, mae = lines[3]:match("^(%d+),([^,]+),([^,]+)$")
    assert.are.equal("1", e)
    assert.are.equal(h.history.loss[2], tonumber(loss))
    assert.are.equal(h.history.mae[2], tonumber(mae))
    m:fit{ x = X, y = Y, epochs = 2, verbose = 0, callbacks = { cbs.CSVLogger(path, { append = true }) } }
    local n, headers = 0, 0
    for l in io.lines(path) do
      n = n + 1
      if l:find("^epoch") then headers = headers + 1 end
    end
    assert.are.equal(6, n)
    assert.are.equal(1, headers)
    os.remove(path)
  end)
end)

describe("TerminateOnNaN", function()
  it("stops at the first batch whose loss is NaN", function()
    local m = tiny()
    local bad = klua.tensor{ { 0 / 0, 1 }, { 1, 1 }, { 1, 1 }, { 1, 1 } }
    local batches = 0
    local count = cbs.LambdaCallback{ on_train_batch_end = function() batches = batches + 1 end }
    local h = m:fit{ x = bad, y = klua.ones({ 4, 1 }), batch_size = 1, epochs = 3, shuffle = false, verbose = 0,
      callbacks = { count, cbs.TerminateOnNaN() } }
    assert.are.equal(1, batches)
    assert.are.equal(1, #h.history.loss)
  end)
end)

describe("BackupAndRestore", function()
  it("deletes its backup when training ends normally", function()
    local dir = tmpdir()
    local m = tiny()
    local seen = false
    local peek = cbs.LambdaCallback{ on_epoch_end = function() seen = seen or exists(dir .. "/backup.klua") end }
    m:fit{ x = X, y = Y, epochs = 2, verbose = 0, callbacks = { cbs.BackupAndRestore(dir), peek } }
    assert.is_true(seen)
    assert.is_false(exists(dir .. "/backup.klua"))
    remove_tree(dir)
  end)
end)

describe("The progress bar", function()
  local Progbar = require("klua.progbar")

  local function sink()
    local s = { text = "" }
    function s:write(...) for _, v in ipairs{ ... } do self.text = self.text .. v end end
    function s:flush() end
    return s
  end

  it("draws Keras's bar and formats values as Keras does", function()
    local s = sink()
    local bar = Progbar(938, { stream = s, dynamic = false })
    bar:update(938, { { "loss", 0.0746 }, { "tiny", 0.00012 } })
    assert.matches("^938/938 %[==============================%] %- %d+s %d+[mu]?s/step %- loss: 0%.0746 %- tiny: 1%.2000e%-04\n$", s.text)
    s = sink()
    bar = Progbar(10, { stream = s, dynamic = true })
    bar:update(3, { { "loss", 1 } })
    assert.matches("^\r 3/10 %[========>%.+%] %- ETA: %d+s %- loss: 1%.0000$", s.text)
    s = sink()
    Progbar(nil, { stream = s, dynamic = false }):update(12, {}, true)
    assert.matches("^     12/Unknown %- %d+s", s.text)
    s = sink()
    Progbar(5, { stream = s, verbose = 2 }):update(5, { { "loss", 0.5 } })
    assert.matches("^5/5 %- %d+s %- loss: 0%.5000 %- %d+[mu]?s/epoch %- %d+[mu]?s/step\n$", s.text)
    s = sink()
    Progbar(5, { stream = s, verbose = 0 }):update(5, {})
    assert.are.equal("", s.text)
  end)

  local script = [[
local klua = require("klua")
local L = klua.layers
klua.random.seed(1)
local m = klua.Sequential{ L.Dense(4, { input_shape = { 3 } }), L.Dense(1) }
m:compile{ optimizer = "sgd", loss = "mse", metrics = { "mae" } }
local x = klua.random.normal({ 64, 3 })
local y = klua.random.normal({ 64, 1 })
m:fit{ x = x, y = y, epochs = 2, batch_size = 8, verbose = tonumber(arg[1] or 1) }
io.write("done\n")
]]

  local function script_file()
    local path = os.tmpname()
    helpers.write_file(path, script)
    return path
  end

  it("prints one line per epoch and no carriage returns on a pipe", function()
    local path = script_file()
    local out = helpers.run_klua(path)
    os.remove(path)
    assert.is_nil(out:find("\r", 1, true))
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(5, #lines, out)
    assert.are.equal("Epoch 1/2", lines[1])
    assert.are.equal("Epoch 2/2", lines[3])
    for _, i in ipairs{ 2, 4 } do
      assert.matches("^8/8 %[==============================%] %- %d+s %d+[mu]?s/step %- loss: %d+%.%d%d%d%d %- mae: %d+%.%d%d%d%d$", lines[i])
    end
    assert.are.equal("done", lines[5])
  end)

  it("prints the verbose=2 line and nothing with verbose=0", function()
    local path = script_file()
    local out = helpers.run_klua(path .. " 2")
    assert.matches("Epoch 1/2\n8/8 %- %d+s %- loss: [%d.]+ %- mae: [%d.]+ %- %d+[mu]?s/epoch %- %d+[mu]?s/step\nEpoch 2/2\n", out)
    out = helpers.run_klua(path .. " 0")
    os.remove(path)
    assert.are.equal("done\n", out)
  end)

  it("redraws the line in place with an ETA on a terminal", function()
    local path = script_file()
    local s = pty.spawn({ helpers.EXE, path }, { cols = 200 })
    local ok, err = pcall(function()
      s:expect("done", 10)
      assert.are.equal(0, s:wait(5))
    end)
    s:close()
    os.remove(path)
    assert(ok, err)
    local raw = s.raw
    assert.is_truthy(raw:find("\r1/8 [", 1, true), raw)
    assert.is_truthy(raw:find("ETA: ", 1, true))
    -- the finished bar overwrites the running one on the same line
    assert.matches("\r8/8 %[==============================%] %- %d+s %d+[mu]?s/step %- loss: [%d.]+ %- mae: [%d.]+ *\r?\n", raw)
    local text = pty.strip(raw)
    assert.matches("Epoch 2/2", text)
  end)
end)
