-- help_spec.lua — help() for the whole public API: every public function,
-- class and method has a signature and a description (from the library's
-- `--- name(args): text` doc comments, lua/klua/doc.lua), every class of the
-- training kinds lists its constructor arguments with their defaults, a
-- layer's documented arguments cover what its get_config returns, and
-- doc/api.md is what the same comments generate.
local helpers = require("helpers")
local klua = require("klua")
local doc = require("klua.doc")

-- Base-class keys a config carries that are not the class's own arguments.
local BASE_CONFIG = { name = true, trainable = true, dtype = true, batch_input_shape = true, input_shape = true,
                      batch_size = true, input_dim = true, activity_regularizer = true }

local function has_description(e)
  return e ~= nil and type(e.signature) == "string" and type(e.text) == "string" and e.text:match("%a") ~= nil
end

describe("help() for the public API", function()
  local api = doc.public_api()

  it("finds the public functions, classes and methods of every module the brief names", function()
    local kinds, names = {}, {}
    for _, item in ipairs(api) do
      kinds[item.kind] = (kinds[item.kind] or 0) + 1
      names[item.name] = true
    end
    assert.truthy(kinds["function"] > 200, "functions: " .. tostring(kinds["function"]))
    assert.truthy(kinds.class > 150, "classes: " .. tostring(kinds.class))
    assert.truthy(kinds.method > 100, "methods: " .. tostring(kinds.method))
    for _, name in ipairs { "klua.zeros", "klua.ops.matmul", "klua.layers.Dense", "klua.losses.MeanSquaredError",
      "klua.metrics.AUC", "klua.optimizers.Adam", "klua.initializers.GlorotUniform", "klua.activations.relu",
      "klua.regularizers.L2", "klua.constraints.MaxNorm", "klua.callbacks.EarlyStopping", "klua.data.Dataset",
      "klua.datasets.data_dir", "klua.image.read_png", "klua.saving.load_model", "klua.random.normal",
      "klua.utils.terminal_width", "klua.Model", "Tensor:shape" } do
      assert.truthy(names[name], name .. " is not in the public API list")
    end
  end)

  it("has a signature and a one-line description for every public function, class and method", function()
    local missing = {}
    for _, item in ipairs(api) do
      if not has_description(doc.api_entry(item)) then missing[#missing + 1] = item.name end
    end
    assert.are.equal("", table.concat(missing, "\n"),
      #missing .. " public names have no help: add a `--- name(args): text` comment above each")
  end)

  it("lists the constructor arguments of every layer, loss, metric, optimizer and callback class", function()
    local bad = {}
    for _, item in ipairs(api) do
      if item.kind == "class" and item.name:match("^klua%.(%a+)%.") then
        local kind = item.name:match("^klua%.(%a+)%.")
        if ({ layers = true, losses = true, metrics = true, optimizers = true, callbacks = true })[kind] then
          local e = doc.api_entry(item)
          local sig = e and e.signature or ""
          -- keyword arguments {a=1, ...}, or a constructor that takes none: Name()
          if not (doc.signature_args(sig) or sig:match("^[%w_%.]+%(%)")) then bad[#bad + 1] = item.name .. ": " .. sig end
        end
      end
    end
    assert.are.equal("", table.concat(bad, "\n"))
  end)

  it("documents every argument a built-in layer's get_config returns", function()
    local L = klua.layers
    local required = {
      Dense = { units = 2 }, Embedding = { input_dim = 5, output_dim = 2 }, LSTM = { units = 2 }, GRU = { units = 2 },
      SimpleRNN = { units = 2 }, MultiHeadAttention = { num_heads = 2, key_dim = 2 }, Reshape = { target_shape = { 2 } },
      Permute = { dims = { 2, 1 } }, RepeatVector = { n = 2 }, Activation = { activation = "relu" }, Dropout = { rate = 0.5 },
      Lambda = { ["function"] = function(x) return x end }, Dot = { axes = 1 },
      EinsumDense = { equation = "ab,bc->ac", output_shape = { 2 } },
      Bidirectional = function() return { layer = L.LSTM { units = 2 } } end,
      TimeDistributed = function() return { layer = L.Dense { units = 2 } } end,
    }
    for _, n in ipairs { "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
      "SeparableConv1D", "SeparableConv2D" } do required[n] = { filters = 2, kernel_size = 3 } end
    required.DepthwiseConv1D, required.DepthwiseConv2D = { kernel_size = 3 }, { kernel_size = 3 }
    local extra = { TextVectorization = { vocabulary_size = true, has_input_vocabulary = true } }
    local problems, checked = {}, 0
    local names = {}
    for name in pairs(L.files) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
      local cls = L[name]
      if cls.__name == name then
        local args = required[name] or {}
        if type(args) == "function" then args = args() end
        local ok, layer = pcall(cls, args)
        assert.truthy(ok, name .. " could not be made for the check: add its required arguments to this spec: " .. tostring(layer))
        local documented = {}
        for _, a in ipairs(doc.signature_args(doc.class_entry(cls).signature) or {}) do documented[a[1]] = true end
        for key in pairs(layer:get_config()) do
          if not BASE_CONFIG[key] and not documented[key] and not (extra[name] or {})[key] then
            problems[#problems + 1] = name .. ": " .. key
          end
        end
        checked = checked + 1
      end
    end
    assert.truthy(checked > 60)
    assert.are.equal("", table.concat(problems, "\n"), "arguments in get_config() but not in the doc line")
  end)

  it("documents every argument a loss's or metric's get_config returns", function()
    local problems = {}
    for _, kind in ipairs { "losses", "metrics" } do
      for _, item in ipairs(api) do
        if item.kind == "class" and item.name:match("^klua%." .. kind .. "%.") then
          local ok, obj = pcall(item.value)   -- those that need no argument
          if ok and type(obj.get_config) == "function" then
            local documented = {}
            for _, a in ipairs(doc.signature_args(doc.api_entry(item).signature) or {}) do documented[a[1]] = true end
            for key in pairs(obj:get_config()) do
              if not BASE_CONFIG[key] and key ~= "reduction" and not documented[key] then
                problems[#problems + 1] = item.name .. ": " .. key
              end
            end
          end
        end
      end
    end
    assert.are.equal("", table.concat(problems, "\n"))
  end)

  it("shows a layer's signature, arguments with defaults and methods, and no internals", function()
    local text = doc.describe(klua.layers.Dense, { name = "klua.layers.Dense" })
    assert.matches("^klua%.layers%.Dense{units, activation=nil, use_bias=true", text)
    assert.matches("\nArguments:\n  units +required\n  activation +default nil\n  use_bias +default true\n", text)
    assert.matches("and those of klua%.[%a.]*Layer: name, trainable, dtype", text)
    assert.matches("\nMethods:\n.*\n  get_weights%(%) +copies of the weights", text)
    assert.matches("\n  add_weight%(%.%.%.%) +a new tracked weight", text)
    for _, internal in ipairs { "_maybe_build", "__init", "_tracked", "__call", "_flatten_layers", "super" } do
      assert.is_nil(text:find(internal, 1, true), internal .. " is shown")
    end
  end)

  it("takes an optimizer's arguments from its declared table and its text from its file", function()
    local text = doc.describe(klua.optimizers.SGD, { name = "klua.optimizers.SGD" })
    assert.matches("^klua%.optimizers%.SGD{learning_rate=0%.01, momentum=0, nesterov=false, %.%.%.}", text)
    assert.matches("Nesterov", text)
    assert.matches("and those of klua%.optimizers%.Optimizer: name, weight_decay, clipnorm", text)
  end)

  it("answers for an alias with the doc of the name it stands for", function()
    local text = doc.describe(klua.losses.MSE, { name = "klua.losses.MSE" })
    assert.matches("^klua%.losses%.mean_squared_error%(y_true, y_pred%)", text)
    assert.matches("mean%(%(y_true %- y_pred%)%^2%)", text)
    assert.matches("^klua%.ops%.matmul%(a, b%)", doc.describe(klua.ops.dot, { name = "klua.ops.dot" }))
  end)

  it("documents a method by the method it overrides", function()
    local e = doc.method_entry(klua.layers.Dense, "call")
    assert.are.same(doc.method_entry(klua.Layer, "call"), e)
    assert.matches("^Layer:call%(inputs, kw%)$", e.signature)
  end)

  it("keeps doc/api.md equal to what the doc comments generate (`make api-doc`)", function()
    local committed = helpers.read_file("doc/api.md")
    -- in a fresh process, as `make api-doc` runs it (other specs change the loaded library)
    local generated, code = helpers.shell("env -u LUA_PATH -u LUA_INIT " .. helpers.EXE
      .. [[ -e 'require("klua"); io.write(require("klua.doc").markdown())' 2>/dev/null]])
    assert.are.equal(0, code)
    if committed ~= generated then
      local a, b = {}, {}
      for l in committed:gmatch("[^\n]*") do a[#a + 1] = l end
      for l in generated:gmatch("[^\n]*") do b[#b + 1] = l end
      local i = 1
      while a[i] == b[i] and i <= #a do i = i + 1 end
      error(("doc/api.md is out of date (run `make api-doc`): line %d is\n  %s\nbut the doc comments give\n  %s")
        :format(i, tostring(a[i]), tostring(b[i])), 0)
    end
  end)
end)

describe("doc comments", function()
  local function entry_of(src, name)
    local path = os.tmpname()
    helpers.write_file(path, src)
    local e = doc.comment_named(path, name)
    os.remove(path)
    return e
  end

  it("read a signature and the text after a colon, a dash or on the next line", function()
    local e = entry_of("--- scale(x, f=2): x times f.\n-- Works on tensors.\n", "scale")
    assert.are.equal("scale(x, f=2)", e.signature)
    assert.are.equal("x times f.\nWorks on tensors.", e.text)
    e = entry_of("--- grid(images, {nrow=}) -> tensor (H, W, C)\n-- tiles images.\n", "grid")
    assert.are.equal("grid(images, {nrow=}) -> tensor (H, W, C)", e.signature)
    assert.are.equal("tiles images.", e.text)
    e = entry_of("--- lines(path, series) — plots series.\n", "lines")
    assert.are.equal("plots series.", e.text)
  end)

  it("read a constructor's keyword arguments and an (also ...) form", function()
    local e = entry_of('--- Thing{size, mode="a"} (also Thing(size, {...})): a thing.\n', "Thing")
    assert.are.equal('Thing{size, mode="a"} (also Thing(size, {...}))', e.signature)
    assert.are.equal("a thing.", e.text)
    assert.are.same({ { "size" }, { "mode", '"a"' } }, doc.signature_args(e.signature))
    assert.are.same({ { "a", "{1, 2}" }, { "..." } }, doc.signature_args("X{a={1, 2}, ...}"))
  end)

  it("find a function made in a loop by a doc line naming it", function()
    local path = os.tmpname()
    finally(function() os.remove(path) end)
    helpers.write_file(path, "local M = {}\n--- up(s): s in capitals.\n--- down(s): s in small letters.\n"
      .. "for _, n in ipairs{'up', 'down'} do M[n] = function(s) return s end end\nreturn M\n")
    local M = dofile(path)
    assert.are.equal("s in small letters.", doc.from_comments(M.down, "down").text)
    assert.are.equal("s in capitals.", doc.from_comments(M.up, "up").text)
  end)
end)
