-- layers/init.lua — klua.layers: the built-in layer classes, one per file in
-- this directory (file name = class name in lower case), loaded on first use:
--   klua.layers.Dense  -> require("klua.layers.dense")
-- Every class loaded here is registered (klua.registry) under its name.
local core = require("klua.core")
local registry = require("klua.registry")
local layers = {}

-- Class name -> module file.
local files = {
  -- core layers, normalisation, embedding, merging
  Dense = "dense", Activation = "activation", Dropout = "dropout", Flatten = "flatten",
  Reshape = "reshape", Permute = "permute", RepeatVector = "repeatvector", Lambda = "lambda",
  BatchNormalization = "batchnormalization", LayerNormalization = "layernormalization",
  Embedding = "embedding", Masking = "masking",
  Add = "add", Subtract = "subtract", Multiply = "multiply", Average = "average",
  Concatenate = "concatenate", Maximum = "maximum", Minimum = "minimum", Merge = "merge",
  -- activation layers (Keras also has these as classes)
  ReLU = "relu", LeakyReLU = "leakyrelu", ELU = "elu", Softmax = "softmax",

  -- convolution, pooling, resizing, recurrent, attention
  Conv1D = "conv1d", Conv2D = "conv2d", Conv2DTranspose = "conv2dtranspose", DepthwiseConv2D = "depthwiseconv2d",
  MaxPooling1D = "maxpooling1d", MaxPooling2D = "maxpooling2d",
  AveragePooling1D = "averagepooling1d", AveragePooling2D = "averagepooling2d",
  GlobalAveragePooling1D = "globalaveragepooling1d", GlobalAveragePooling2D = "globalaveragepooling2d",
  GlobalMaxPooling1D = "globalmaxpooling1d", GlobalMaxPooling2D = "globalmaxpooling2d",
  UpSampling2D = "upsampling2d", ZeroPadding2D = "zeropadding2d",
  SimpleRNN = "simplernn", LSTM = "lstm", GRU = "gru", Bidirectional = "bidirectional",
  TimeDistributed = "timedistributed", MultiHeadAttention = "multiheadattention",
  -- Keras fidelity: more core, merging, activation and normalisation layers
  Dot = "dot", Identity = "identity", EinsumDense = "einsumdense", PReLU = "prelu",
  GroupNormalization = "groupnormalization", UnitNormalization = "unitnormalization",
  RMSNormalization = "rmsnormalization",
  -- Keras's aliases
  Convolution1D = "conv1d", Convolution2D = "conv2d", Convolution2DTranspose = "conv2dtranspose",
  MaxPool1D = "maxpooling1d", MaxPool2D = "maxpooling2d", AvgPool1D = "averagepooling1d", AvgPool2D = "averagepooling2d",
  GlobalAvgPool1D = "globalaveragepooling1d", GlobalAvgPool2D = "globalaveragepooling2d",
  GlobalMaxPool1D = "globalmaxpooling1d", GlobalMaxPool2D = "globalmaxpooling2d",
  -- more of Keras's convolution family: 3-D, transposed, depthwise, separable, pooling, reshaping
  Conv3D = "conv3d", Conv1DTranspose = "conv1dtranspose", Conv3DTranspose = "conv3dtranspose",
  DepthwiseConv1D = "depthwiseconv1d", SeparableConv1D = "separableconv1d", SeparableConv2D = "separableconv2d",
  MaxPooling3D = "maxpooling3d", AveragePooling3D = "averagepooling3d",
  GlobalAveragePooling3D = "globalaveragepooling3d", GlobalMaxPooling3D = "globalmaxpooling3d",
  UpSampling1D = "upsampling1d", UpSampling3D = "upsampling3d", ZeroPadding1D = "zeropadding1d", ZeroPadding3D = "zeropadding3d",
  Cropping1D = "cropping1d", Cropping2D = "cropping2d", Cropping3D = "cropping3d",
  Convolution3D = "conv3d", Convolution1DTranspose = "conv1dtranspose", Convolution3DTranspose = "conv3dtranspose",
  SeparableConvolution1D = "separableconv1d", SeparableConvolution2D = "separableconv2d",
  MaxPool3D = "maxpooling3d", AvgPool3D = "averagepooling3d",
  GlobalAvgPool3D = "globalaveragepooling3d", GlobalMaxPool3D = "globalmaxpooling3d",
  -- text preprocessing (strings in, tensors out)
  TextVectorization = "textvectorization",
}
layers.files = files

-- Keys every layer takes (klua.Layer's own, or Keras's on the first layer).
local BASE_KEYS = { name = true, trainable = true, dtype = true, input_shape = true, input_dim = true,
  batch_size = true, batch_input_shape = true, activity_regularizer = true }

-- A misspelt keyword (Dense{unit = 4}) is refused as Keras refuses unknown
-- keyword arguments. A built-in layer's get_config() lists every argument
-- it takes, so a key it neither knows nor reports is not one of them (a
-- function value may be an unregistered custom object, which no config
-- names: those are let through).
local function unknown_key(cls, k, names)
  local known = {}
  for name in pairs(names) do known[#known + 1] = name end
  table.sort(known)
  local guess = registry.closest(k, known)
  core.raise(("%s: unknown argument `%s`%s (it takes: %s)"):format(rawget(cls, "__name"), k,
    guess and (", did you mean `" .. guess .. "`?") or "", table.concat(known, ", ")))
end

local function check_keywords(cls, obj, kw)
  if type(kw) ~= "table" or getmetatable(kw) ~= nil or type(obj) ~= "table" then return end
  local config
  for k, v in pairs(kw) do
    if type(k) == "string" and not BASE_KEYS[k] and type(v) ~= "function" then
      if config == nil then
        local ok, c = pcall(obj.get_config, obj)
        if not ok or type(c) ~= "table" then return end
        config = c
      end
      if config[k] == nil then unknown_key(cls, k, config) end
    end
  end
end

-- The argument names of the class's `--- Name{a, b=..., ...}` doc line, for
-- when the constructor fails before there is an object to ask (Dense{unit = 4}
-- fails on the missing units: the misspelt key is the cause to report).
local function documented_keys(name, file)
  local path = package.searchpath("klua.layers." .. file, package.path)
  local f = path and io.open(path)
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  local head, rest = text:match("\n%-%-%- " .. name .. "(%b{})")
  if not head then return nil end
  local keys = {}
  for arg in head:sub(2, -2):gsub("\n%s*%-+", "\n"):gmatch("[^,]+") do
    local k = arg:match("^%s*([%a_][%w_]*)")
    if k then keys[k] = true end
  end
  return next(keys) and keys or nil
end

setmetatable(layers, {
  __index = function(t, name)
    local file = files[name]
    if not file then return nil end
    local cls = require("klua.layers." .. file)
    rawset(t, name, cls)
    registry.register(cls, { package = "klua" })
    local cmt = getmetatable(cls)
    if not rawget(cmt, "_checks_keywords") then
      local construct = cmt.__call
      cmt.__call = function(c, a, b, ...)
        local kw = type(a) == "table" and getmetatable(a) == nil and a or b
        local ok, obj = pcall(construct, c, a, b, ...)
        if not ok then
          local keys = c == cls and type(kw) == "table" and getmetatable(kw) == nil and documented_keys(name, file)
          if keys then
            for k in pairs(kw) do
              if type(k) == "string" and not BASE_KEYS[k] and not keys[k] then unknown_key(cls, k, keys) end
            end
          end
          error(obj, 0)
        end
        if c == cls then check_keywords(cls, obj, kw) end
        return obj
      end
      rawset(cmt, "_checks_keywords", true)
    end
    return cls
  end,
})

-- Keras's lower-case helpers.
layers.Layer = require("klua.layer")

--- deserialize(config): a layer from {class_name=, config=} (registered
-- classes and the built-in layers).
function layers.deserialize(config)
  if type(config) ~= "table" or type(config.class_name) ~= "string" then
    core.raise("layers.deserialize: expected {class_name=..., config={...}}")
  end
  local name = config.class_name
  local cls = registry.lookup(name) or layers[name:match(">(.+)$") or name]
  if not cls then core.raise(("layers.deserialize: unknown layer class '%s' (register it with klua.saving.register_serializable)"):format(name)) end
  return cls.from_config(config.config or {})
end

--- serialize(layer): {class_name=, config=}.
function layers.serialize(layer)
  return { class_name = registry.name_of(getmetatable(layer)), config = layer:get_config() }
end

return layers
