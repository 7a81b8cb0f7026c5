-- registry_spec.lua — one registry behind every `get`: a registered custom
-- object of every kind survives model:save -> klua.models.load_model with its
-- configuration, every `get(nil)` answers as Keras's does, and no module of
-- the library requires another in a cycle.
local klua = require("klua")
local saving = klua.saving
local L = klua.layers

-- One custom class (or function) of every kind, each with a setting that
-- must come back from the file.
local function scaled_tanh(x) return klua.ops.tanh(x) * 1.5 end
saving.register_serializable(scaled_tanh, { name = "scaled_tanh_for_registry_spec" })

local HalfOnes = klua.initializers.Initializer:extend("HalfOnesForRegistrySpec")
function HalfOnes:__init(kw) kw = kw or {}; self.value = kw.value or 0.5 end
function HalfOnes:generate(shape) return klua.full(shape, self.value) end
function HalfOnes:get_config() return { value = self.value } end
saving.register_serializable(HalfOnes)

local Clip = klua.constraints.Constraint:extend("ClipForRegistrySpec")
function Clip:__init(kw) kw = kw or {}; self.limit = kw.limit or 1 end
function Clip:__call(w) return klua.ops.clip(w, -self.limit, self.limit) end
function Clip:get_config() return { limit = self.limit } end
saving.register_serializable(Clip)

local SumSq = klua.regularizers.Regularizer:extend("SumSqForRegistrySpec")
function SumSq:__init(kw) kw = kw or {}; self.factor = kw.factor or 0.01 end
function SumSq:__call(w) return klua.ops.sum(klua.ops.square(w)) * self.factor end
function SumSq:get_config() return { factor = self.factor } end
saving.register_serializable(SumSq)

local ScaledMSE = klua.losses.Loss:extend("ScaledMSEForRegistrySpec")
function ScaledMSE:__init(kw) kw = kw or {}; klua.losses.Loss.__init(self, kw); self.scale = kw.scale or 1 end
function ScaledMSE:call(y_true, y_pred) return klua.ops.mean(klua.ops.square(y_pred - y_true), -1) * self.scale end
function ScaledMSE:get_config()
  local c = klua.losses.Loss.get_config(self); c.scale = self.scale; return c
end
saving.register_serializable(ScaledMSE)

local Count = klua.metrics.Metric:extend("CountForRegistrySpec")
function Count:__init(kw) kw = kw or {}; klua.metrics.Metric.__init(self, kw); self.step = kw.step or 1; self.n = 0 end
function Count:update_state() self.n = self.n + self.step end
function Count:result() return self.n end
function Count:reset_state() self.n = 0 end
function Count:get_config() local c = klua.metrics.Metric.get_config(self); c.step = self.step; return c end
saving.register_serializable(Count)

local Halving = klua.optimizers.schedules.LearningRateSchedule:extend("HalvingForRegistrySpec")
function Halving:__init(kw) kw = kw or {}; self.initial = kw.initial or 0.1 end
Halving.__call = function(self, step) return self.initial / (1 + step) end
function Halving:get_config() return { initial = self.initial } end
saving.register_serializable(Halving)

local TaggedSGD = klua.optimizers.SGD:extend("TaggedSGDForRegistrySpec")
TaggedSGD.hyper = { learning_rate = 0.01, momentum = 0.0, nesterov = false, tag = 0 }
saving.register_serializable(TaggedSGD)

local Shift = klua.Layer:extend("ShiftForRegistrySpec")
function Shift:__init(kw) Shift.super.__init(self, kw); self.amount = kw and kw.amount or 0 end
function Shift:call(x) return x + self.amount end
function Shift:get_config() local c = Shift.super.get_config(self); c.amount = self.amount; return c end
saving.register_serializable(Shift)

local dir
setup(function() dir = os.tmpname(); os.remove(dir); os.execute("mkdir -p " .. dir) end)
teardown(function() os.execute("rm -rf " .. dir) end)

describe("A registered custom object of every kind", function()
  it("survives model:save and klua.models.load_model with its configuration", function()
    local model = klua.Sequential{
      klua.Input{ shape = { 3 } },
      Shift{ amount = 2 },
      L.Dense{ units = 2, activation = scaled_tanh, kernel_initializer = HalfOnes{ value = 0.25 },
        kernel_constraint = Clip{ limit = 3 }, kernel_regularizer = SumSq{ factor = 0.5 } },
    }
    model:compile{ optimizer = TaggedSGD{ learning_rate = Halving{ initial = 0.2 }, tag = 7 },
      loss = ScaledMSE{ scale = 3 }, metrics = { Count{ step = 2 } } }
    local x, y = klua.random.normal{ 8, 3 }, klua.random.normal{ 8, 2 }
    model:fit{ x = x, y = y, epochs = 1, batch_size = 4, verbose = 0 }
    local path = dir .. "/every_kind.klua"
    model:save(path)

    local back = klua.models.load_model(path)
    local shift, dense = back.layers[1], back.layers[2]
    assert.are.equal(Shift, getmetatable(shift))
    assert.are.equal(2, shift.amount)
    assert.are.equal(scaled_tanh, dense.activation)
    assert.are.equal(HalfOnes, getmetatable(dense.kernel_initializer))
    assert.are.equal(0.25, dense.kernel_initializer.value)
    assert.are.equal(Clip, getmetatable(dense.kernel_constraint))
    assert.are.equal(3, dense.kernel_constraint.limit)
    assert.are.equal(Clip, getmetatable(dense.kernel.constraint))
    assert.are.equal(SumSq, getmetatable(dense.kernel_regularizer))
    assert.are.equal(0.5, dense.kernel_regularizer.factor)
    local opt = back.optimizer
    assert.are.equal(TaggedSGD, getmetatable(opt))
    assert.are.equal(7, opt.tag)
    assert.are.equal(Halving, getmetatable(opt.learning_rate))
    assert.are.equal(0.2, opt.learning_rate.initial)
    assert.are.equal(opt.iterations, model.optimizer.iterations)
    local a, b = model:predict(x, { verbose = 0 }), back:predict(x, { verbose = 0 })
    assert.is_true(klua.ops.max(klua.ops.abs(a - b)):item() < 1e-6)
    -- the compiled loss and metric come back on the first step
    back:train_on_batch(x, y)
    local compiled = rawget(back, "_compiled")
    assert.are.equal(ScaledMSE, getmetatable(compiled.losses[1]))
    assert.are.equal(3, compiled.losses[1].scale)
    assert.are.equal(Count, getmetatable(compiled.entries[1].metric))
    assert.are.equal(2, compiled.entries[1].metric.step)
  end)

  it("is found by its name and by Custom>name through every kind's get", function()
    assert.are.equal(scaled_tanh, klua.activations.get("scaled_tanh_for_registry_spec"))
    assert.are.equal(HalfOnes, getmetatable(klua.initializers.get("Custom>HalfOnesForRegistrySpec")))
    assert.are.equal(Clip, getmetatable(klua.constraints.get{ class_name = "ClipForRegistrySpec", config = { limit = 2 } }))
    assert.are.equal(SumSq, getmetatable(klua.regularizers.get("SumSqForRegistrySpec")))
    assert.are.equal(ScaledMSE, getmetatable(klua.losses.get("Custom>ScaledMSEForRegistrySpec")))
    assert.are.equal(Count, getmetatable(klua.metrics.get{ class_name = "CountForRegistrySpec", config = { step = 3 } }))
    assert.are.equal(TaggedSGD, getmetatable(klua.optimizers.get("TaggedSGDForRegistrySpec")))
    assert.are.equal(Halving, getmetatable(klua.optimizers.schedules.deserialize{ class_name = "HalvingForRegistrySpec", config = {} }))
    assert.are.equal(Shift, klua.saving.get_registered("Custom>ShiftForRegistrySpec"))
    assert.are.equal("Custom>ShiftForRegistrySpec", klua.saving.get_registered_name(Shift))
  end)
end)

describe("get(nil)", function()
  it("returns nil for every kind, as in Keras (activations give linear, as Keras's activations.get(None))", function()
    assert.is_nil(klua.optimizers.get(nil))
    assert.is_nil(klua.losses.get(nil))
    assert.is_nil(klua.metrics.get(nil))
    assert.is_nil(klua.initializers.get(nil))
    assert.is_nil(klua.regularizers.get(nil))
    assert.is_nil(klua.constraints.get(nil))
    assert.is_nil(klua.optimizers.schedules.get(nil))
    assert.are.equal(klua.activations.linear, klua.activations.get(nil))
  end)

  it("a typo gets the closest known name, in the user's spelling", function()
    local cases = {
      { klua.losses.get, "categorial_crossentropy", "did you mean 'categorical_crossentropy'%?" },
      { klua.activations.get, "rleu", "did you mean 'relu'%?" },
      { klua.optimizers.get, "adamm", "did you mean 'adam'%?" },
      { klua.metrics.get, "acuracy", "did you mean 'accuracy'%?" },
      { klua.losses.get, "MeanSquaredErorr", "did you mean 'MeanSquaredError'%?" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(c[1], c[2])
      assert.is_false(ok)
      assert.matches(c[3], err)
    end
    local ok, err = pcall(klua.losses.get, "zzz")
    assert.is_false(ok)
    assert.is_nil(err:find("did you mean", 1, true))
  end)

  it("an unknown name lists the known ones", function()
    local ok, err = pcall(klua.optimizers.get, "adamm")
    assert.is_false(ok)
    assert.matches("optimizers.get: unknown optimizer 'adamm'; did you mean 'adam'%? %(known: .*Adam", err)
    assert.matches("registry_spec.lua", err)   -- reported at the caller's line
  end)
end)
