-- activations_spec.lua — klua.activations against PyTorch's values for the
-- same definitions (tests/fixtures/layers_core.lua), Keras's defaults and
-- argument forms, lookup by name, and gradients through the compositions.
local klua = require("klua")
local A = klua.activations
local ops = klua.ops
local ref = require("fixtures.layers_core")

local near = require("helpers").near

describe("activations", function()
  local x = klua.tensor(ref.act_x)

  local by_name = { "relu", "relu6", "elu", "selu", "gelu", "sigmoid", "hard_sigmoid", "tanh", "softplus",
    "softsign", "silu", "mish", "exponential", "softmax", "log_softmax", "hard_silu", "leaky_relu" }
  for _, name in ipairs(by_name) do
    it(name .. " matches the reference", function()
      near(A.get(name)(x):tolist(), ref.act[name], 2e-6, name)
    end)
  end

  it("take Keras's arguments positionally or in a table", function()
    near(A.gelu(x, true):tolist(), ref.act.gelu_tanh, 2e-6, "gelu_tanh")
    near(A.gelu(x, { approximate = true }):tolist(), ref.act.gelu_tanh, 2e-6, "gelu_tanh")
    near(A.leaky_relu(x):tolist(), ref.act.leaky_relu, 1e-7, "leaky_relu default 0.2")
    assert.are.same({ -0.5, 2 }, A.leaky_relu(klua.tensor { -5, 2 }, { negative_slope = 0.1 }):tolist())
    assert.are.same({ -2, 2 }, A.elu(klua.tensor { -100, 2 }, 2):tolist())
    assert.are.same({ 0, 0.5, 1 }, A.relu(klua.tensor { -1, 0.5, 3 }, { max_value = 1 }):tolist())
    assert.are.same(A.swish, A.silu)
    assert.are.same({ 1, 2 }, A.linear(klua.tensor { 1, 2 }):tolist())
    -- softmax over another axis (1-based)
    local m = klua.tensor { { 1, 1 }, { 3, 3 } }
    local s = A.softmax(m, 1)
    assert(math.abs(s:get(1, 1) + s:get(2, 1) - 1) < 1e-6)
  end)

  it("stay finite for large inputs", function()
    local big = klua.tensor { -1000, -100, 100, 1000 }
    for _, name in ipairs { "gelu", "elu", "selu", "silu", "mish", "softplus", "sigmoid", "softsign", "hard_sigmoid" } do
      for _, v in ipairs(A.get(name)(big):tolist()) do
        assert(v == v and v ~= math.huge and v ~= -math.huge, name .. " gave " .. tostring(v))
      end
    end
  end)

  it("are found by name or function, and serialize to their names", function()
    local f = function(t) return t * 2 end
    assert.are.equal(f, A.get(f))
    assert.are.equal(A.linear, A.get(nil))
    assert.are.equal("gelu", A.serialize(A.get("gelu")))
    assert.are.equal("silu", A.serialize(A.swish))
    assert.are.equal("custom", A.serialize(f))
    local ok, err = pcall(A.get, "rellu")
    assert.is_false(ok)
    assert.matches("activations.get: unknown activation 'rellu'", err)
  end)

  it("have gradients matching finite differences, away from kinks", function()
    local pts = { -2.3, -0.7, 0.4, 1.9 }
    local names = { "relu6", "hard_sigmoid", "softsign", "mish", "hard_silu", "exponential", "gelu", "selu", "log_softmax" }
    for _, name in ipairs(names) do
      local f = A.get(name)
      local v = klua.Variable(klua.tensor(pts))
      local tape = klua.GradientTape()
      local w = klua.tensor { 0.3, 0.9, 1.1, 0.6 }
      local loss = tape:record(function() return ops.sum(f(v) * w) end)
      local g = tape:gradient(loss, v):tolist()
      for i = 1, #pts do
        local function at(d)
          local p = {}
          for k = 1, #pts do p[k] = pts[k] end
          p[i] = p[i] + d
          return ops.sum(f(klua.tensor(p)) * w):item()
        end
        local numeric = (at(1e-2) - at(-1e-2)) / 2e-2
        assert(math.abs(numeric - g[i]) < 2e-3 + 2e-2 * math.abs(numeric),
          ("%s: d/dx[%d] analytic %.6g vs numeric %.6g"):format(name, i, g[i], numeric))
      end
    end
  end)
end)

describe("regularizers", function()
  local R = klua.regularizers
  local w = klua.tensor { { 1, -2 }, { 3, -4 } }
  it("compute Keras's penalties", function()
    assert.are.equal(0.1 * 10, R.l1(0.1)(w):item())
    assert(math.abs(R.L2 { l2 = 0.01 }(w):item() - 0.3) < 1e-6)
    assert(math.abs(R.l1_l2 { l1 = 0.1, l2 = 0.01 }(w):item() - 1.3) < 1e-6)
    assert.are.equal(0, R.L1L2()(w):item())            -- Keras 3 defaults: 0, 0
    assert(math.abs(R.get("l2")(w):item() - 0.3) < 1e-6) -- default 0.01
    assert.are.same({ class_name = "L1L2", config = { l1 = 0.1, l2 = 0.2 } }, R.serialize(R.l1_l2(0.1, 0.2)))
    assert(math.abs(R.get({ class_name = "L1", config = { l1 = 1 } })(w):item() - 10) < 1e-6)
    local ok, err = pcall(R.l2, -1)
    assert.is_false(ok)
    assert.matches("L2: expected a non%-negative number. Received: l2=%-1", err)
  end)
end)

describe("constraints", function()
  local C = klua.constraints
  it("project weights like Keras (axis 1 = Keras's axis 0)", function()
    local w = klua.tensor { { 3, 0 }, { 4, 1 } }       -- column norms 5 and 1
    local m = C.max_norm(2)(w):totable()
    assert(math.abs(m[1][1] - 1.2) < 1e-5 and math.abs(m[2][1] - 1.6) < 1e-5)
    assert(math.abs(m[2][2] - 1) < 1e-5)               -- within the norm: unchanged
    local u = C.unit_norm()(w):totable()
    assert(math.abs(u[1][1] - 0.6) < 1e-5 and math.abs(u[2][2] - 1) < 1e-5)
    local rows = C.UnitNorm { axis = 2 }(w):totable()
    assert(math.abs(rows[1][1] - 1) < 1e-5)
    assert.are.same({ { 0, 2 }, { 0, 0 } }, C.non_neg()(klua.tensor { { -1, 2 }, { 0, -3 } }):totable())
    local mm = C.MinMaxNorm { min_value = 2, max_value = 3 }(w):totable()
    assert(math.abs(mm[2][2] - 2) < 1e-5)
    assert.are.same({ class_name = "MaxNorm", config = { max_value = 2, axis = 1 } }, C.serialize(C.max_norm(2)))
  end)

  it("are kept with the weight for optimizers to apply", function()
    local d = klua.layers.Dense(2, { kernel_constraint = C.non_neg() })
    d(klua.ones { 1, 3 })
    local c = klua.Layer.constraint_of(d.kernel)
    assert.is_not_nil(c)
    d.kernel:assign(c(d.kernel))
    assert(ops.min(d.kernel):item() >= 0)
    assert.is_nil(klua.Layer.constraint_of(d.bias))
  end)
end)
