-- lua_habits_spec.lua — the mistakes a Lua, Keras or Torch habit leads to get
-- a message that says what to write instead, at the user's line.
local helpers = require("helpers")
local klua = require("klua")

-- (the functions below avoid `return f()`: a tail call leaves no frame for the
-- error to point at)
local function message(fn)
  local err = helpers.err_of(fn)
  assert.matches("lua_habits_spec%.lua:%d+:", err)   -- reported at the caller's line
  return err
end

describe("A Lua habit", function()
  it("x[1] on a tensor says how to read elements", function()
    local x = klua.ones{ 3 }
    assert.matches("x%[1%] is not supported.*x:get", message(function() local r = x[1]; return r end))
  end)

  it("x.sum() with a dot hints at the colon", function()
    local x = klua.ones{ 2 }
    assert.matches("instead of ':'%? write x:sum%(%)", message(function() local r = x.sum(); return r end))
  end)

  it("model.fit{...} with a dot says to use a colon", function()
    local m = klua.Sequential{ klua.Input{ shape = { 2 } }, klua.layers.Dense{ units = 1 } }
    assert.matches("Model%.compile: call it with a colon, model:compile", message(function()
      m.compile{ optimizer = "adam", loss = "mse" }
    end))
    m:compile{ optimizer = "sgd", loss = "mse" }
    assert.matches("Model%.fit: call it with a colon", message(function() m.fit{ x = klua.ones{ 4, 2 }, y = klua.ones{ 4, 1 } } end))
  end)

  it("a Dataset iterated without :iter() says how", function()
    local ds = klua.data.Dataset.from_tensor_slices(klua.ones{ 4, 2 })
    assert.matches("for batch in ds:iter%(%) do", message(function() for _ in ds do end end))
  end)
end)

describe("A Torch or Keras habit", function()
  it("klua.random.normal(2, 3) shows the table form", function()
    assert.matches("klua%.random%.normal{2, 3}", message(function() local r = klua.random.normal(2, 3); return r end))
  end)

  it("class indices given to categorical_crossentropy point to the sparse loss and one_hot", function()
    assert.matches("looks like class indices: use the sparse_ form.*one_hot", message(function()
      local r = klua.losses.categorical_crossentropy(klua.tensor{ 0, 2 }, klua.ones{ 2, 3 }); return r
    end))
  end)

  it("1-based labels are told that class indices are 0-based", function()
    assert.matches("class indices are 0%-based", message(function()
      local r = klua.losses.sparse_categorical_crossentropy(klua.tensor{ 1, 3 }, klua.ones{ 2, 3 }); return r
    end))
  end)

  it("a misspelt loss, activation or optimizer name gets the closest known name", function()
    assert.matches("did you mean 'mse'%?", message(function() local r = klua.losses.get("mse2"); return r end))
    assert.matches("did you mean 'relu'%?", message(function() local r = klua.activations.get("rleu"); return r end))
  end)

  it("Keras's positional compile/fit/evaluate forms work, verbose included", function()
    local m = klua.Sequential{ klua.Input{ shape = { 2 } }, klua.layers.Dense{ units = 1 } }
    m:compile("sgd", "mse", nil, { "mae" })
    local h = m:fit(klua.ones{ 4, 2 }, klua.ones{ 4, 1 }, 2, 3, 0)   -- batch_size, epochs, verbose = 0
    assert.are.equal(3, #h.history.loss)
    local r = m:evaluate(klua.ones{ 4, 2 }, klua.ones{ 4, 1 }, 2, 0)
    assert.are.equal(2, #r)
    assert.matches("^%[[%d.e-]+, [%d.e-]+%]$", tostring(r))        -- prints as Keras's list
  end)

  it("a misspelt keyword of a layer is named, with the closest argument, as Keras refuses unknown keywords", function()
    assert.matches("Dense: unknown argument `unit`, did you mean `units`%?", message(function()
      local r = klua.layers.Dense{ unit = 4 }; return r
    end))
    assert.matches("Dense: unknown argument `activaton`, did you mean `activation`%?", message(function()
      local r = klua.layers.Dense(4, { activaton = "relu" }); return r
    end))
    -- a custom initializer given as a function is not mistaken for an unknown key
    local d = klua.layers.Dense{ units = 2, kernel_initializer = function(shape) return klua.zeros(shape) end }
    assert.are.equal(2, d.units)
  end)

  it("an unknown data set lists those available", function()
    assert.matches("no data set named 'cifar10'; available: mnist, fashion_mnist", message(function()
      local r = klua.datasets.cifar10; return r
    end))
  end)

  it("saving under Keras's .keras or .h5 names is refused, naming klua's own", function()
    local m = klua.Sequential{ klua.Input{ shape = { 2 } }, klua.layers.Dense{ units = 1 } }
    assert.matches("klua cannot write Keras's %.keras format.*name it %*%.klua", message(function() m:save("/tmp/m.keras") end))
    assert.matches("klua cannot write Keras's %.h5 format.*%.safetensors", message(function() m:save_weights("/tmp/m.weights.h5") end))
  end)

  it("loading a file that is not a model says so plainly", function()
    local path = os.tmpname()
    helpers.write_file(path, "name,value\nfirst,1\nsecond,2\n")
    local err = message(function() klua.models.load_model(path) end)
    os.remove(path)
    assert.matches("this is not a safetensors file", err)
  end)
end)
