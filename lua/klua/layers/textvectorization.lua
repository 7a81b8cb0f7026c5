-- textvectorization.lua — TextVectorization: Keras's text preprocessing layer.
-- Lua strings in (a list of strings, Keras's (N,1) form {{s}, {s}}, or one
-- string), float32 tensors out: token indices ("int": 0 = padding, 1 = "[UNK]",
-- then the vocabulary, most frequent first) or one row per string over the
-- vocabulary ("multi_hot", "count", "tf_idf": index 0 = "[UNK]").
-- Each string is standardized (lower-cased, ASCII punctuation stripped), split
-- (on ASCII whitespace, or into UTF-8 characters), optionally turned into
-- n-grams, and looked up. `adapt(texts)` learns the vocabulary as Keras's does:
-- by count, ties by the token's bytes from high to low.
-- Not a model layer: strings are not tensors, so call it on the data (as Keras
-- advises outside TensorFlow) and feed the tensors to the model.
local core = require("klua.core")
local Layer = require("klua.layer")
local tensor = require("klua.tensor")
local ops = require("klua.ops")

local TextVectorization = Layer:extend("TextVectorization")
TextVectorization.accepts_any_input = true   -- strings: the layer checks them itself

local MASK, OOV = "", "[UNK]"
local STANDARDIZE = { lower_and_strip_punctuation = true, lower = true, strip_punctuation = true }
local SPLIT = { whitespace = true, character = true }
local MODES = { int = true, multi_hot = true, count = true, tf_idf = true }

local function show(v)
  if type(v) == "string" then return "'" .. v .. "'" end
  return tostring(v)
end

local function fail(fmt, ...) core.raise("TextVectorization: " .. fmt:format(...)) end

-- A list of strings from a list, a tensor-free table or a file path (one term a line).
local function string_list(v, what)
  if type(v) ~= "table" then fail("%s must be a list of strings or a file path. Received: %s", what, type(v)) end
  local out = {}
  for i = 1, #v do
    if type(v[i]) ~= "string" then
      fail("%s must hold strings; item %d is %s", what, i, show(v[i]))
    end
    out[i] = v[i]
  end
  return out
end

local function read_vocabulary_file(path)
  local f = io.open(path, "rb")
  if not f then fail("Vocabulary file %s does not exist.", path) end
  local text = f:read("*a")
  f:close()
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = (line:gsub("\r$", "")) end
  while #lines > 0 and lines[#lines] == "" do lines[#lines] = nil end
  return lines
end

local function number_list(v, what)
  if core.is_tensor(v) then v = v:tolist() end
  if type(v) ~= "table" then fail("%s must be a list of numbers or a 1-D tensor. Received: %s", what, type(v)) end
  local out = {}
  for i = 1, #v do
    if type(v[i]) ~= "number" then fail("%s must hold numbers; item %d is %s", what, i, show(v[i])) end
    out[i] = v[i]
  end
  return out
end

--- TextVectorization{max_tokens=nil, standardize="lower_and_strip_punctuation", split="whitespace", ngrams=nil,
-- output_mode="int", output_sequence_length=nil, pad_to_max_tokens=false, vocabulary=nil, idf_weights=nil,
-- encoding="utf-8", sparse=false, ragged=false, ...}: Lua strings -> token ids ("int") or per-document
-- "multi_hot", "count" or "tf_idf" vectors, with a vocabulary from adapt(data) or set_vocabulary.
function TextVectorization:__init(max_tokens, kw)
  max_tokens, kw = Layer.args(max_tokens, kw, "max_tokens")
  local standardize = kw.standardize
  if standardize == nil then standardize = "lower_and_strip_punctuation" end
  local split = kw.split
  if split == nil then split = "whitespace" end
  local output_mode = kw.output_mode or "int"
  if output_mode == "binary" then output_mode = "multi_hot" end      -- Keras's old names
  if output_mode == "tf-idf" then output_mode = "tf_idf" end
  if max_tokens ~= nil and (type(max_tokens) ~= "number" or max_tokens % 1 ~= 0 or max_tokens < 1) then
    fail("max_tokens must be nil or a positive integer. Received: max_tokens=%s", show(max_tokens))
  end
  if not (standardize == false or type(standardize) == "function" or STANDARDIZE[standardize]) then
    fail("standardize must be false, a function or one of \"lower_and_strip_punctuation\", \"lower\", "
      .. "\"strip_punctuation\". Received: standardize=%s", show(standardize))
  end
  if not (split == false or type(split) == "function" or SPLIT[split]) then
    fail("split must be false, a function, \"whitespace\" or \"character\". Received: split=%s", show(split))
  end
  if output_mode == "one_hot" then
    fail("output_mode \"one_hot\" is not supported (Keras supports it only with the TensorFlow backend); "
      .. "use \"int\" and klua.ops.one_hot, or \"multi_hot\"/\"count\"")
  end
  if not MODES[output_mode] then
    fail("output_mode must be one of \"int\", \"multi_hot\", \"count\", \"tf_idf\". Received: output_mode=%s", show(output_mode))
  end
  local ngrams = kw.ngrams
  local widths
  if type(ngrams) == "number" and ngrams % 1 == 0 and ngrams >= 1 then
    widths = {}
    for w = 1, ngrams do widths[w] = w end
  elseif type(ngrams) == "table" and #ngrams > 0 then
    widths = {}
    for i, w in ipairs(ngrams) do
      if type(w) ~= "number" or w % 1 ~= 0 or w < 1 then widths = nil break end
      widths[i] = w
    end
  end
  if ngrams ~= nil and not widths then
    fail("`ngrams` must be nil, an integer, or a list of integers. Received: ngrams=%s", show(ngrams))
  end
  local osl = kw.output_sequence_length
  if output_mode == "int" and osl ~= nil and (type(osl) ~= "number" or osl % 1 ~= 0 or osl < 0) then
    fail("`output_sequence_length` must be either nil or an integer when `output_mode` is 'int'. "
      .. "Received: output_sequence_length=%s", show(osl))
  end
  if output_mode ~= "int" and osl ~= nil then
    fail("`output_sequence_length` must not be set if `output_mode` is not 'int'. Received output_sequence_length=%s.", show(osl))
  end
  if kw.sparse then fail("`sparse=true` is not supported: klua has no sparse tensors (Keras: TensorFlow backend only)") end
  if kw.ragged then fail("`ragged=true` is not supported: klua has no ragged tensors (Keras: TensorFlow backend only)") end
  local encoding = kw.encoding or "utf-8"
  if encoding ~= "utf-8" and encoding ~= "UTF-8" then
    fail("encoding must be \"utf-8\" (Lua strings are bytes; klua reads them as UTF-8). Received: encoding=%s", show(encoding))
  end
  if kw.idf_weights ~= nil and output_mode ~= "tf_idf" then
    fail("`idf_weights` should only be set if `output_mode` is `'tf_idf'`. Received: output_mode=%s", output_mode)
  end
  local has_input = kw.has_input_vocabulary
  if has_input == nil then has_input = kw.vocabulary ~= nil end
  if output_mode == "tf_idf" and kw.vocabulary ~= nil and kw.idf_weights == nil then
    fail("When specifying the `vocabulary` argument, in TF-IDF output mode, the `idf_weights` argument must also be provided.")
  end

  TextVectorization.super.__init(self, kw)
  -- Internal state, kept out of the layer's tracked fields (rawset): a
  -- vocabulary of tens of thousands of strings is not something to walk for weights.
  rawset(self, "_tv", {
    max_tokens = max_tokens, standardize = standardize, split = split, ngrams = ngrams, widths = widths,
    output_mode = output_mode, output_sequence_length = osl, pad_to_max_tokens = kw.pad_to_max_tokens and true or false,
    encoding = encoding, has_input_vocabulary = has_input and true or false,
    input_vocabulary = nil, input_idf_weights = nil,
    tokens = {}, index = {}, idf = nil,
  })
  if kw.vocabulary ~= nil then
    local v = kw.vocabulary
    if type(v) == "table" then v = string_list(v, "vocabulary") end
    self:set_vocabulary(v, kw.idf_weights)
    self._tv.has_input_vocabulary = has_input and true or false
  end
end

-- Index of the first OOV slot and of the first vocabulary token (Keras's
-- _oov_start_index and _token_start_index: the mask takes 0 in int mode only).
function TextVectorization:_oov_start() return self._tv.output_mode == "int" and 1 or 0 end
function TextVectorization:_token_start() return self:_oov_start() + 1 end

--- vocabulary_size(): the number of indices, padding and OOV included.
function TextVectorization:vocabulary_size() return #self._tv.tokens + self:_token_start() end

--- get_vocabulary(include_special_tokens = true): a term's position (0-based) is its index.
function TextVectorization:get_vocabulary(include_special_tokens)
  local out = {}
  if include_special_tokens ~= false then
    if self._tv.output_mode == "int" then out[1] = MASK end
    out[#out + 1] = OOV
  end
  for _, t in ipairs(self._tv.tokens) do out[#out + 1] = t end
  return out
end

-- Install `tokens` (no special tokens) as the vocabulary, indices from the token start.
function TextVectorization:_set_tokens(tokens)
  local index, start = {}, self:_token_start()
  for i, t in ipairs(tokens) do index[t] = start + i - 1 end
  self._tv.tokens, self._tv.index = tokens, index
end

--- set_vocabulary(vocabulary, idf_weights): Keras's: a list of strings (with
-- or without the special tokens at its start, in Keras's order) or a file
-- with one term a line; idf_weights (tf_idf only) as long as vocabulary.
function TextVectorization:set_vocabulary(vocabulary, idf_weights)
  local tv = self._tv
  if tv.output_mode == "tf_idf" then
    if idf_weights == nil then self:raise("`idf_weights` must be set if output_mode is 'tf_idf'.") end
  elseif idf_weights ~= nil then
    self:raise("`idf_weights` should only be set if output_mode is `'tf_idf'`. Received: output_mode=%s", tv.output_mode)
  end
  if type(vocabulary) == "string" then
    if tv.output_mode == "tf_idf" then self:raise("output_mode `'tf_idf'` does not support loading a vocabulary from file.") end
    vocabulary = read_vocabulary_file(vocabulary)
  else
    vocabulary = string_list(vocabulary, "vocabulary")
  end
  if #vocabulary == 0 then self:raise("Cannot set an empty vocabulary. Received: vocabulary={}") end
  local start = self:_token_start()
  local special = tv.output_mode == "int" and { MASK, OOV } or { OOV }
  local found = #vocabulary >= start
  for i = 1, start do found = found and vocabulary[i] == special[i] end
  local tokens = {}
  for i = (found and start or 0) + 1, #vocabulary do tokens[#tokens + 1] = vocabulary[i] end
  local seen, repeated = {}, {}
  for _, t in ipairs(tokens) do
    if seen[t] and seen[t] == 1 then repeated[#repeated + 1] = show(t) end
    seen[t] = (seen[t] or 0) + 1
  end
  if #repeated > 0 then
    self:raise("The passed vocabulary has at least one repeated term. Please uniquify your dataset. The repeated terms are: %s",
      table.concat(repeated, ", "))
  end
  if tv.output_mode == "int" and seen[MASK] then
    self:raise("Found reserved mask token '' at unexpected location in `vocabulary`. Note that passed `vocabulary` does "
      .. "not need to include the OOV and mask tokens. Either remove all mask and OOV tokens, or include them only at "
      .. "the start of the vocabulary in precisely this order: ['', '[UNK]'].")
  end
  if tv.max_tokens and start + #tokens > tv.max_tokens then
    self:raise("Attempted to set a vocabulary larger than the maximum vocab size. Received vocabulary size is %d; "
      .. "`max_tokens` is %d.", start + #tokens, tv.max_tokens)
  end
  self:_set_tokens(tokens)
  tv.idf, tv.input_vocabulary, tv.input_idf_weights = nil, vocabulary, nil
  if tv.output_mode == "tf_idf" then
    local w = number_list(idf_weights, "idf_weights")
    tv.input_idf_weights = w
    if #w ~= #vocabulary then
      self:raise("`idf_weights` must be the same length as vocabulary. len(idf_weights) is %d; len(vocabulary) is %d",
        #w, #vocabulary)
    end
    local full = {}
    if not found then
      -- No document frequencies for the special tokens: the average weight.
      local mean = 0
      for _, x in ipairs(w) do mean = mean + x end
      mean = mean / #w
      for i = 1, start do full[i] = mean end
    end
    for _, x in ipairs(w) do full[#full + 1] = x end
    self:_set_idf(full)
  end
  tv.has_input_vocabulary = true
end

-- The idf weights per index (Lua list from index 0), padded with zeros to
-- max_tokens when pad_to_max_tokens, as a float32 tensor.
function TextVectorization:_set_idf(full)
  local tv = self._tv
  tv.idf_list = full
  local padded = {}
  for i, w in ipairs(full) do padded[i] = w end
  if tv.pad_to_max_tokens and tv.max_tokens then
    for i = #padded + 1, tv.max_tokens do padded[i] = 0 end
  end
  tv.idf = tensor.tensor(padded)
end

--------------------------------------------------------------------------------
-- Standardize, split, n-grams

local function standardize(tv, s)
  local mode = tv.standardize
  if mode == "lower" or mode == "lower_and_strip_punctuation" then s = s:lower() end
  -- NOTE: %p in the C locale is exactly Keras's class (string.punctuation), bytes < 128 only.
  if mode == "strip_punctuation" or mode == "lower_and_strip_punctuation" then s = s:gsub("%p+", "") end
  if type(mode) == "function" then
    s = mode(s)
    if type(s) ~= "string" then fail("the standardize function must return a string, got %s", type(s)) end
  end
  return s
end

local UTF8_CHAR = "[%z\1-\127\194-\244][\128-\191]*"

local function split(tv, s)
  local mode, out = tv.split, {}
  if mode == "whitespace" then
    for w in s:gmatch("%S+") do out[#out + 1] = w end
  elseif mode == "character" then
    for c in s:gmatch(UTF8_CHAR) do out[#out + 1] = c end
  elseif mode == false then
    out[1] = s
  else
    local r = mode(s)
    if type(r) ~= "table" then fail("the split function must return a list of strings, got %s", type(r)) end
    for i = 1, #r do out[i] = r[i] end
  end
  local widths = tv.widths
  if widths then
    -- tf.strings.ngrams: every width in turn, joined with a space; a
    -- sequence shorter than a width gives none of that width.
    local grams = {}
    for _, w in ipairs(widths) do
      for i = 1, #out - w + 1 do
        grams[#grams + 1] = w == 1 and out[i] or table.concat(out, " ", i, i + w - 1)
      end
    end
    out = grams
  end
  return out
end

-- The documents of an input: a list of strings; Keras's (N,1) form {{s}, {s}}
-- too. Returns the list and whether the input was a single string (scalar).
function TextVectorization:_documents(inputs)
  if type(inputs) == "string" then return { inputs }, true, false end
  if type(inputs) ~= "table" or core.is_tensor(inputs) then
    self:raise("expected a string or a list of strings, got %s", core.is_tensor(inputs) and "a tensor" or type(inputs))
  end
  local docs, nested = {}, false
  for i = 1, #inputs do
    local v = inputs[i]
    if type(v) == "table" and not core.is_tensor(v) then
      if #v ~= 1 or type(v[1]) ~= "string" then
        self:raise("When using `TextVectorization` to tokenize strings, the input rank must be 1 or the last shape "
          .. "dimension must be 1. Received: item %d holds %d values", i, #v)
      end
      v, nested = v[1], true
    end
    if type(v) ~= "string" then self:raise("expected strings; item %d is %s", i, show(v)) end
    docs[i] = v
  end
  return docs, false, nested
end

--------------------------------------------------------------------------------
-- adapt

--- adapt(data, {steps=}): learn the vocabulary (and, for tf_idf, the
-- document frequencies) from data: a list of strings, Keras's {{s}, {s}}, or a
-- function returning such batches until it returns nil (at most `steps` of them).
function TextVectorization:adapt(data, kw)
  local tv = self._tv
  if tv.has_input_vocabulary then
    self:raise("Cannot adapt layer '%s' after setting a static vocabulary via `vocabulary` argument or "
      .. "`set_vocabulary()` method.", self.name)
  end
  local steps = type(kw) == "table" and kw.steps or nil
  local counts, doc_counts, num_docs = {}, {}, 0
  local function update(batch)
    local docs = self:_documents(batch)
    for _, d in ipairs(docs) do
      local tokens = split(tv, standardize(tv, d))
      local seen = tv.output_mode == "tf_idf" and {} or nil
      for _, t in ipairs(tokens) do
        counts[t] = (counts[t] or 0) + 1
        if seen and not seen[t] then
          seen[t] = true
          doc_counts[t] = (doc_counts[t] or 0) + 1
        end
      end
    end
    num_docs = num_docs + #docs
  end
  if type(data) == "function" then
    local i = 0
    while steps == nil or i < steps do
      local batch = data()
      if batch == nil then break end
      update(batch)
      i = i + 1
    end
  else
    update(data)
  end
  counts[MASK], counts[OOV] = nil, nil
  local tokens = {}
  for t in pairs(counts) do tokens[#tokens + 1] = t end
  -- Keras: by count, ties by the tokens themselves, high to low.
  table.sort(tokens, function(a, b)
    local ca, cb = counts[a], counts[b]
    if ca ~= cb then return ca > cb end
    return a > b
  end)
  local start = self:_token_start()
  if tv.max_tokens then
    for i = #tokens, math.max(tv.max_tokens - start, 0) + 1, -1 do tokens[i] = nil end
  end
  self:_set_tokens(tokens)
  if tv.output_mode == "tf_idf" then
    -- Keras's _inverse_document_frequency, then cast to float32 (a tensor's values)
    local idf = {}
    for i, t in ipairs(tokens) do idf[i] = math.log(1 + num_docs / (1 + doc_counts[t])) end
    idf = #idf > 0 and tensor.tensor(idf):tolist() or {}
    local sum = 0
    for _, w in ipairs(idf) do sum = sum + w end
    local full = {}
    local mean = #idf > 0 and tensor.tensor(sum / #idf):item() or 0
    for i = 1, start do full[i] = mean end
    for _, w in ipairs(idf) do full[#full + 1] = w end
    self:_set_idf(full)
  end
  tv.adapted = true
end

--------------------------------------------------------------------------------
-- call

-- The number of columns of a multi_hot / count / tf_idf output.
function TextVectorization:_depth()
  local tv = self._tv
  if tv.pad_to_max_tokens and tv.max_tokens then return tv.max_tokens end
  if #tv.tokens == 0 and not tv.adapted and not tv.has_input_vocabulary then
    self:raise("When using `output_mode=%s` and `pad_to_max_tokens=False`, you must set the layer's vocabulary before "
      .. "calling it. Either pass a `vocabulary` argument to the layer, or call `adapt` with some sample data.", tv.output_mode)
  end
  return self:vocabulary_size()
end

-- Rows r0+1..r1 of `ids` (a list of index lists) as a (r1 - r0, depth) count
-- matrix: one scatter-add in C over flat positions row * depth + id.
-- NOTE: positions are float32 in the op, exact only below 2^24: chunk the rows.
local function counts_matrix(ids, r0, r1, depth, unique)
  local pos, k = {}, 0
  for r = r0 + 1, r1 do
    local seen = unique and {} or nil
    local base = (r - r0 - 1) * depth
    for _, id in ipairs(ids[r]) do
      if not seen or not seen[id] then
        if seen then seen[id] = true end
        k = k + 1
        pos[k] = base + id
      end
    end
  end
  local size = (r1 - r0) * depth
  local flat
  if k == 0 then
    flat = tensor.zeros { size }
  else
    flat = core.op("_scatter_add", tensor.ones { k }, tensor.tensor(pos), nil, { axes = { 0 }, ints = { size } })
  end
  return ops.reshape(flat, { r1 - r0, depth })
end

function TextVectorization:call(inputs)
  local tv = self._tv
  local docs, scalar, nested = self:_documents(inputs)
  local index, int = tv.index, tv.output_mode == "int"
  local oov = self:_oov_start()
  local ids = {}
  for i, d in ipairs(docs) do
    local row = {}
    for _, t in ipairs(split(tv, standardize(tv, d))) do
      local id = index[t]
      if t == MASK then
        if int then row[#row + 1] = 0 end          -- the mask: 0 in int mode, dropped otherwise
      else
        row[#row + 1] = id or oov
      end
    end
    ids[i] = row
  end
  local n = #docs
  if int then
    local len = tv.output_sequence_length
    if len == nil then
      len = 0
      for _, row in ipairs(ids) do if #row > len then len = #row end end
    end
    local flat, k = {}, 0
    for _, row in ipairs(ids) do
      for j = 1, len do k = k + 1; flat[k] = row[j] or 0 end    -- cut or padded at the end, as Keras
    end
    if scalar then return k > 0 and tensor.tensor(flat) or tensor.zeros { 0 } end
    if tv.split == false and not nested and tv.output_sequence_length == nil then
      return n > 0 and tensor.tensor(flat) or tensor.zeros { 0 }      -- one token per string: shape (N)
    end
    if k == 0 then return tensor.zeros { n, len } end
    return ops.reshape(tensor.tensor(flat), { n, len })
  end
  local depth = self:_depth()
  for _, row in ipairs(ids) do
    for _, id in ipairs(row) do
      if id >= depth then self:raise("token index %d is out of range for the output depth %d", id, depth) end
    end
  end
  local chunk = math.max(1, math.floor(2 ^ 24 / depth))
  local parts = {}
  for r0 = 0, n - 1, chunk do
    parts[#parts + 1] = counts_matrix(ids, r0, math.min(n, r0 + chunk), depth, tv.output_mode == "multi_hot")
  end
  local out = #parts == 0 and tensor.zeros { 0, depth } or (#parts == 1 and parts[1] or ops.concatenate(parts, 1))
  if tv.output_mode == "tf_idf" then out = out * tv.idf end
  if scalar then out = ops.reshape(out, { depth }) end
  return out
end

function TextVectorization:compute_output_shape(input_shape)
  local tv = self._tv
  local batch = type(input_shape) == "table" and input_shape[1] or -1
  if tv.output_mode == "int" then return { batch, tv.output_sequence_length or -1 } end
  return { batch, self:_depth() }
end

-- No weights. A numeric shape means a tensor input (a symbolic one from
-- klua.Input among them), which cannot hold strings: say how to use the layer.
function TextVectorization:build(input_shape)
  if type(input_shape) == "table" and type(input_shape[1]) == "number" then
    self:raise("takes Lua strings (a string or a list of strings), not tensors; a symbolic input (klua.Input) cannot "
      .. "hold strings, so call it on the texts before the model (x = vectorize(texts)) and give the model the "
      .. "token ids, as Keras advises outside TensorFlow")
  end
end

-- Strings have no shape worth keeping for a rebuild.
function TextVectorization:get_build_config() return nil end

function TextVectorization:get_config()
  local config = TextVectorization.super.get_config(self)
  local tv = self._tv
  config.max_tokens = tv.max_tokens
  config.standardize = tv.standardize
  config.split = tv.split
  config.ngrams = tv.ngrams
  config.output_mode = tv.output_mode
  config.output_sequence_length = tv.output_sequence_length
  config.pad_to_max_tokens = tv.pad_to_max_tokens
  config.sparse = false
  config.ragged = false
  config.encoding = tv.encoding
  config.vocabulary_size = self:vocabulary_size()
  if tv.has_input_vocabulary then
    -- as Keras: the vocabulary (and idf weights) as they were given
    config.vocabulary = tv.input_vocabulary
    config.idf_weights = tv.input_idf_weights
  elseif tv.adapted then
    -- Keras keeps a learned vocabulary in the saved file's assets; klua in the
    -- config (special tokens first, so it is installed as it is)
    config.vocabulary = self:get_vocabulary(true)
    if tv.output_mode == "tf_idf" then
      config.idf_weights = {}
      for i, w in ipairs(tv.idf_list) do config.idf_weights[i] = w end
    end
    config.has_input_vocabulary = false
  end
  return config
end

function TextVectorization:from_config(config)
  local kw = {}
  for k, v in pairs(core.options(config, "TextVectorization.from_config")) do kw[k] = v end
  local adapted = kw.has_input_vocabulary == false and kw.vocabulary ~= nil
  local vocabulary, idf = kw.vocabulary, kw.idf_weights
  if adapted then kw.vocabulary, kw.idf_weights, kw.has_input_vocabulary = nil, nil, nil end
  kw.vocabulary_size = nil
  local layer = self(kw)
  if adapted then
    -- a learned vocabulary: installed without making it a static one
    layer:set_vocabulary(vocabulary, idf)
    local tv = layer._tv
    tv.has_input_vocabulary, tv.adapted, tv.input_vocabulary, tv.input_idf_weights = false, true, nil, nil
  end
  return layer
end

return TextVectorization
