-- examples_data_spec.lua — the examples on the CSV and text data sets
-- (boston_housing.lua, tabular_classifier.lua, text_classification.lua) run
-- to the end through the klua executable in a reduced form and print what
-- they promise. The data are small synthetic caches written here, in the
-- layouts scripts/get-data writes, in a temporary KLUA_DATA (CI has no
-- `make data`): a noisy linear price, classes apart in feature space, and
-- e-mails whose words give spam away.
local helpers = require("helpers")

local root = helpers.tmpdir()
teardown(function() helpers.remove_tree(root) end)

-- A small deterministic generator (the specs share klua's global stream: leave it alone).
local state = 12345
local function rand()
  state = (state * 1103515245 + 12345) % 2147483648
  return state / 2147483648
end

local function write(name, file, text)
  assert(os.execute("mkdir -p '" .. root .. "/" .. name .. "'"))
  helpers.write_file(root .. "/" .. name .. "/" .. file, text)
end

-- boston_housing: 80 rows, price = 20 + 3 * x1 - 2 * x2 + noise.
do
  local lines = { "80,13,,,,,,,,,,,,", '"CRIM","ZN","INDUS","CHAS","NOX","RM","AGE","DIS","RAD","TAX","PTRATIO","B","LSTAT","MEDV"' }
  for _ = 1, 80 do
    local row = {}
    for j = 1, 13 do row[j] = ("%.3f"):format(rand() * 4 - 2) end
    row[14] = ("%.2f"):format(20 + 3 * tonumber(row[1]) - 2 * tonumber(row[2]) + rand() - 0.5)
    lines[#lines + 1] = table.concat(row, ",")
  end
  write("boston_housing", "boston_house_prices.csv", table.concat(lines, "\n") .. "\n")
end

-- iris: 90 rows, class k's four features near 2k.
do
  local lines = { "90,4,setosa,versicolor,virginica" }
  for i = 1, 90 do
    local k = (i - 1) % 3
    local row = {}
    for j = 1, 4 do row[j] = ("%.2f"):format(2 * k + rand()) end
    row[5] = k
    lines[#lines + 1] = table.concat(row, ",")
  end
  write("iris", "iris.csv", table.concat(lines, "\n") .. "\n")
end

-- digits: 100 rows of 64 pixels 0..16, digit k lights pixel block k.
do
  local lines = {}
  for i = 1, 100 do
    local k = (i - 1) % 10
    local row = {}
    for j = 1, 64 do row[j] = (math.floor((j - 1) / 6) == k) and 16 or math.floor(rand() * 4) end
    row[65] = k
    lines[#lines + 1] = table.concat(row, ",")
  end
  write("digits", "digits.csv", table.concat(lines, "\n") .. "\n")
end

-- spam_assassin: 300 messages, a third spam; spam words and ham words on common filler.
do
  local spam_words = { "free", "prize", "click", "cheap", "offer", "winner", "money", "now" }
  local ham_words = { "meeting", "build", "report", "lunch", "schedule", "review", "patch", "notes" }
  local filler = { "the", "a", "to", "and", "of", "you", "for", "is", "it", "on" }
  local out = { "klua-spam-assassin 1 300\n" }
  for i = 1, 300 do
    local spam = i % 3 == 0
    local words = {}
    for w = 1, 12 do
      local pool = (w % 3 == 0) and (spam and spam_words or ham_words) or filler
      words[w] = pool[1 + math.floor(rand() * #pool)]
    end
    local text = ("From: someone%d@example.org\nSubject: message %d\n\n%s."):format(i, i, table.concat(words, " "))
    out[#out + 1] = ("%d %s %05d %d\n%s\n"):format(spam and 1 or 0, spam and "spam-1" or "easy-ham-1", i, #text, text)
  end
  write("spam_assassin", "messages.txt", table.concat(out))
end

local function run(script, args)
  return helpers.shell(("KLUA_DATA='%s' %s %s %s"):format(root, helpers.EXE, script, args or ""))
end

local function succeeds(script, args)
  local out, code = run(script, args)
  assert.are.equal(0, code, out)
  return out
end

describe("the examples on the tabular and text data sets", function()
  it("all answer --help with their usage and reject an unknown option", function()
    for _, s in ipairs { "boston_housing", "tabular_classifier", "text_classification" } do
      local out, code = run("examples/" .. s .. ".lua", "--help")
      assert.are.equal(0, code, out)
      assert.matches("usage: klua examples/" .. s .. ".lua", out, 1, true)
      assert.matches("--samples N", out, 1, true)
      out, code = run("examples/" .. s .. ".lua", "--bogus=1")
      assert.are.equal(2, code, out)
      assert.matches("unknown or incomplete option '--bogus=1'", out, 1, true)
    end
  end)

  it("boston_housing.lua fits the regression: the test error beats predicting the mean", function()
    local out = succeeds("examples/boston_housing.lua", "--epochs 40")
    assert.matches("boston_housing: 64 training and 16 test rows, 13 features", out, 1, true)
    local mae, baseline = out:match("test MAE ([%d.]+) k%$ %(always predicting the training mean: ([%d.]+) k%$%)")
    assert.is_truthy(mae, out)
    assert.is_true(tonumber(mae) < tonumber(baseline), out)
    assert.matches("row 5: predicted", out, 1, true)
  end)

  it("tabular_classifier.lua learns iris and digits from a slice, beating the majority class", function()
    for _, c in ipairs { { "iris", "--samples 48", "iris: 48 training and 18 test rows, 4 features, 3 classes" },
                         { "digits", "--samples 60 --epochs 30", "digits: 60 training and 20 test rows, 64 features, 10 classes" } } do
      local out = succeeds("examples/tabular_classifier.lua", "--dataset=" .. c[1] .. " " .. c[2])
      assert.matches(c[3], out, 1, true)
      local acc, baseline = out:match("test accuracy ([%d.]+) %(majority%-class baseline ([%d.]+)%)")
      assert.is_truthy(acc, out)
      assert.is_true(tonumber(acc) > tonumber(baseline) + 0.2, out)
      assert.matches("of %d+ right", out)
    end
    local out, code = run("examples/tabular_classifier.lua", "--dataset mnist")
    assert.are.equal(2, code, out)
    assert.matches("unknown dataset 'mnist' (iris, wine, breast_cancer, digits)", out, 1, true)
  end)

  it("text_classification.lua vectorizes the messages, learns spam from a slice and scores new text", function()
    local out = succeeds("examples/text_classification.lua", "--samples 160 --epochs 8 --max_tokens 100 --sequence_length 20")
    assert.matches("spam_assassin: 160 training and 60 test messages", out, 1, true)
    assert.matches("tokens in the vocabulary, most frequent:", out, 1, true)
    assert.matches("Total params: 465", out, 1, true)     -- Embedding (26 words + 2) x 16 + Dense 17
    local acc, baseline = out:match("test accuracy ([%d.]+) %(majority%-class baseline ([%d.]+)%)")
    assert.is_truthy(acc, out)
    assert.is_true(tonumber(acc) > tonumber(baseline) + 0.1, out)
    assert.matches("P%(spam%) = [%d.]+  Dear friend", out)
  end)
end)
