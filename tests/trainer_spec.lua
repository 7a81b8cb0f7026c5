-- trainer_spec.lua — the training loop's contract with the hooks it runs
-- (weight constraints, callbacks, custom losses and metrics, layer calls):
-- each hook runs as often as Keras runs it, and a hook that raises leaves
-- gradient recording as it found it. Also the layout of the trainers/ and
-- models/ packages: no require cycles, no C namespace.
local klua = require("klua")
local L = klua.layers
local ops = klua.ops

-- 8 samples of 3 features, a regression target; batch_size 4 gives 2 steps an epoch.
local function data()
  local x = klua.tensor { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 }, { 1, 1, 0 },
    { 0, 1, 1 }, { 1, 0, 1 }, { 1, 1, 1 }, { 0, 0, 0 } }
  local y = klua.tensor { { 1 }, { 2 }, { 3 }, { 3 }, { 5 }, { 4 }, { 6 }, { 0 } }
  return x, y
end

local function model_with(kw)
  local m = klua.Sequential { L.Dense(1, kw or {}) }
  m:build { -1, 3 }
  return m
end

-- True when a fresh GradientTape still records: recording was resumed.
local function tape_records()
  local v = klua.Variable(klua.tensor { 1, 2 })
  local tape = klua.GradientTape()
  local loss = tape:record(function() return ops.sum(v * v) end)
  local g = tape:gradient(loss, { v })[1]
  return g ~= nil and g:tolist()[2] == 4
end

local function fit_raises(model, kw)
  local x, y = data()
  local args = { x = x, y = y, batch_size = 4, epochs = 2, verbose = 0, shuffle = false }
  for k, v in pairs(kw or {}) do args[k] = v end
  local ok, err = pcall(model.fit, model, args)
  assert.is_false(ok, "fit should have raised")
  assert.matches("hook failed", tostring(err))
end

describe("fit and weight constraints", function()
  it("applies each variable's constraint once per step (the optimizer's, after the update)", function()
    local calls = { kernel = 0, bias = 0 }
    local function counting(name)
      return function(w) calls[name] = calls[name] + 1; return w end
    end
    local model = model_with { kernel_constraint = counting("kernel"), bias_constraint = counting("bias") }
    model:compile { optimizer = "sgd", loss = "mse" }
    local x, y = data()
    model:fit { x = x, y = y, batch_size = 4, epochs = 3, verbose = 0 }
    assert.are.equal(6, calls.kernel)
    assert.are.equal(6, calls.bias)
    model:train_on_batch(x, y)
    assert.are.equal(7, calls.kernel)
  end)
end)

describe("a hook that raises during fit", function()
  after_each(function() assert.is_true(tape_records(), "gradient recording was left paused") end)

  it("as a weight constraint leaves gradient recording on", function()
    local n = 0
    -- raises on its second call, wherever the trainer makes it
    local model = model_with { kernel_constraint = function(w)
      n = n + 1
      if n == 2 then error("hook failed") end
      return w
    end }
    model:compile { optimizer = "sgd", loss = "mse" }
    fit_raises(model)
  end)

  it("as a callback (on_train_batch_end) leaves gradient recording on", function()
    local model = model_with()
    model:compile { optimizer = "sgd", loss = "mse" }
    local cb = klua.callbacks.LambdaCallback { on_train_batch_end = function() error("hook failed") end }
    fit_raises(model, { callbacks = { cb } })
  end)

  it("as a custom loss function leaves gradient recording on", function()
    local model = model_with()
    model:compile { optimizer = "sgd", loss = function() error("hook failed") end }
    fit_raises(model)
  end)

  it("as a custom metric function leaves gradient recording on", function()
    local model = model_with()
    model:compile { optimizer = "sgd", loss = "mse", metrics = { function() error("hook failed") end } }
    fit_raises(model)
  end)

  it("as a custom metric during validation leaves gradient recording on", function()
    local model = model_with()
    local calls = 0
    model:compile { optimizer = "sgd", loss = "mse", metrics = { function(yt, yp)
      calls = calls + 1
      if calls > 2 then error("hook failed") end  -- the training batches pass, validation fails
      return ops.mean(ops.abs(yt - yp))
    end } }
    local x, y = data()
    fit_raises(model, { validation_data = { x, y }, epochs = 1 })
  end)

  it("as a layer's call leaves gradient recording on", function()
    local Failing = klua.Layer:extend("FailingLayer")
    function Failing:call(x, kw)
      if kw and kw.training then error("hook failed") end
      return x
    end
    local model = klua.Sequential { L.Dense(1), Failing() }
    model:build { -1, 3 }
    model:compile { optimizer = "sgd", loss = "mse" }
    fit_raises(model)
  end)

  it("in predict and evaluate (a layer's call) leaves gradient recording on", function()
    local Failing = klua.Layer:extend("FailingInference")
    function Failing:call() error("hook failed") end
    local model = klua.Sequential { L.Dense(1), Failing() }
    model:compile { optimizer = "sgd", loss = "mse" }
    local x, y = data()
    assert.is_false(pcall(model.predict, model, x, { verbose = 0 }))
    assert.is_true(tape_records())
    assert.is_false(pcall(model.evaluate, model, x, y, { verbose = 0 }))
  end)
end)

--------------------------------------------------------------------------------
-- Package layout

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("*a")
  f:close()
  return s
end

local function lua_files(dir)
  local out = {}
  local p = io.popen('ls "' .. dir .. '"')
  for name in p:lines() do
    if name:match("%.lua$") then out[#out + 1] = dir .. "/" .. name end
  end
  p:close()
  return out
end

local function module_of(path)
  local m = path:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
  return m
end

-- Every require("klua...") in the file, lazy ones inside functions included.
local function requires_of(path)
  local out = {}
  for line in read(path):gmatch("[^\n]*") do
    local code = line:gsub("%-%-.*$", "")
    for target in code:gmatch("require%s*%(?%s*[\"'](klua[%w_%.]*)[\"']") do out[#out + 1] = target end
  end
  return out
end

describe("the models and trainers packages", function()
  local files = {}
  for _, dir in ipairs { "lua/klua/models", "lua/klua/trainers" } do
    for _, f in ipairs(lua_files(dir)) do files[#files + 1] = f end
  end

  it("have no require cycle among their modules", function()
    local edges, mine = {}, {}
    for _, f in ipairs(files) do mine[module_of(f)] = true end
    for _, f in ipairs(files) do
      local list = {}
      for _, t in ipairs(requires_of(f)) do if mine[t] then list[#list + 1] = t end end
      edges[module_of(f)] = list
    end
    local state, path = {}, {}
    local function visit(m)
      if state[m] == "done" then return end
      if state[m] == "open" then
        local from = 1
        for i, p in ipairs(path) do if p == m then from = i end end
        local cycle = {}
        for i = from, #path do cycle[#cycle + 1] = path[i] end
        cycle[#cycle + 1] = m
        error("require cycle: " .. table.concat(cycle, " -> "))
      end
      state[m] = "open"
      path[#path + 1] = m
      for _, t in ipairs(edges[m] or {}) do visit(t) end
      path[#path] = nil
      state[m] = "done"
    end
    for m in pairs(edges) do visit(m) end
  end)

  it("reach the C library only through klua.ops, klua.tensor and klua.no_grad", function()
    for _, f in ipairs(files) do
      local src = read(f)
      assert.is_nil(src:find("kl_grad_pause", 1, true), f .. " pauses recording by hand")
      assert.is_nil(src:find("kl_grad_resume", 1, true), f .. " resumes recording by hand")
      assert.is_nil(src:find("core%.C[^%w_]"), f .. " indexes the C namespace")
      assert.is_nil(src:find("[^%w_%.]C%.kl_"), f .. " calls the C library")
    end
  end)
end)

describe("fit with a loss_scale_factor", function()
  it("gives the weights of a run without one (the loss is scaled, the gradients unscaled)", function()
    local function run(factor)
      klua.random.seed(3)
      local m = klua.Sequential{ klua.Input{ shape = { 3 } }, klua.layers.Dense{ units = 2 } }
      m:compile{ optimizer = klua.optimizers.SGD{ learning_rate = 0.1, loss_scale_factor = factor }, loss = "mse" }
      local x, y = klua.random.normal{ 16, 3 }, klua.random.normal{ 16, 2 }
      local h = m:fit{ x = x, y = y, batch_size = 4, epochs = 2, verbose = 0, shuffle = false }
      return m:get_weights(), h.history.loss
    end
    local w1, l1 = run(nil)
    local w2, l2 = run(256)
    for i = 1, #w1 do assert.is_true(klua.ops.max(klua.ops.abs(w1[i] - w2[i])):item() < 1e-6) end
    assert.is_true(math.abs(l1[2] - l2[2]) < 1e-6)
  end)
end)
