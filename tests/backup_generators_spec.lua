-- backup_generators_spec.lua — BackupAndRestore restores every random
-- generator, not only klua.random's stream: a run killed mid-training and
-- resumed in a new process, whose data comes from a seeded Dataset:shuffle
-- and whose Dropout has its own seed, ends with the weights of an
-- uninterrupted run.
local helpers = require("helpers")
local klua = require("klua")

describe("BackupAndRestore", function()
  local dir
  setup(function() dir = helpers.tmpdir() end)
  teardown(function() helpers.remove_tree(dir) end)

  it("restores a seeded shuffle's order and a seeded Dropout's masks in a new process", function()
    local script = dir .. "/resume.lua"
    helpers.write_file(script, ([[
local klua = require("klua")
local L = klua.layers
local mode, out = arg[1], arg[2]
klua.random.seed(41)
local x, y = klua.random.normal({ 40, 3 }), klua.random.normal({ 40, 1 })
local ds = klua.data.Dataset.from_tensor_slices({ x, y }):shuffle(40, 5):batch(8)
klua.random.seed(mode == "resume" and 7 or 1)
local m = klua.Sequential{ L.Dense(8, { activation = "relu", input_shape = { 3 } }),
  L.Dropout(0.3, { seed = 3 }), L.Dense(1, { kernel_initializer = klua.initializers.GlorotUniform{ seed = 2 } }) }
m.layers[1].kernel:assign(klua.initializers.GlorotUniform{ seed = 4 }({ 3, 8 }))
m:compile{ optimizer = klua.optimizers.RMSprop{ learning_rate = 0.01 }, loss = "mse" }
local cbs = {}
if mode ~= "full" then cbs[1] = klua.callbacks.BackupAndRestore(%q) end
if mode == "crash" then
  cbs[2] = klua.callbacks.LambdaCallback{ on_epoch_end = function(e) if e == 1 then os.exit(3) end end }
end
m:fit{ x = ds, epochs = 4, verbose = 0, callbacks = cbs }
m:save_weights(out)
]]):format(dir .. "/backup"))
    local function run(mode, out)
      local _, code = helpers.run_klua(("%s %s %s"):format(script, mode, out or (dir .. "/none")))
      return code
    end
    assert.are.equal(0, run("full", dir .. "/full.safetensors"))
    assert.are_not.equal(0, run("crash"))
    assert.are.equal(0, run("resume", dir .. "/resumed.safetensors"))
    local a = klua.saving.load_safetensors(dir .. "/full.safetensors")
    local b = klua.saving.load_safetensors(dir .. "/resumed.safetensors")
    for name, t in pairs(a) do assert.are.equal(0, helpers.max_abs_diff(t, b[name]), name) end
  end)
end)
