-- datasets_tables_spec.lua — the loaders of the CSV and text data sets
-- (boston_housing, iris, wine, breast_cancer, digits, diabetes, spam_assassin)
-- on the small committed copies in tests/fixtures/datasets (no `make data`
-- needed), numpy's RandomState shuffle that gives Keras's splits, and, when
-- `make data` has filled the real cache, Keras's published boston_housing rows.
local klua = require("klua")
local ffi = require("ffi")
local helpers = require("helpers")
local shared = require("klua.datasets._shared")
local datasets = klua.datasets
local raises, near, literal = helpers.raises, helpers.near, helpers.literal

pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite); int unsetenv(const char *name);")
local saved_env = os.getenv("KLUA_DATA")
local function set_data(dir) ffi.C.setenv("KLUA_DATA", dir, 1) end
local function restore_data()
  if saved_env then ffi.C.setenv("KLUA_DATA", saved_env, 1) else ffi.C.unsetenv("KLUA_DATA") end
end

-- The fixtures beside this spec, as an absolute path (KLUA_DATA points there).
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "tests"
if here:sub(1, 1) ~= "/" then here = os.getenv("PWD") .. "/" .. here end
local FIXTURES = here .. "/fixtures/datasets"

-- Row i of a 2-D tensor as a 1-D tensor.
local function ops_row(x, i) return klua.ops.reshape(klua.ops.slice_axis(x, 1, i, i), { x:shape()[2] }) end
local tmp = helpers.tmpdir()
teardown(function()
  helpers.remove_tree(tmp)
  restore_data()
end)

-- A copy of one fixture directory in tmp (to damage it), returned as its path.
local function copy_fixture(name)
  os.execute(("mkdir -p '%s' && cp -r '%s/%s' '%s/'"):format(tmp, FIXTURES, name, tmp))
  return tmp .. "/" .. name
end

describe("numpy's RandomState shuffle (what Keras's boston_housing split uses), reproduced in Lua", function()
  it("draws MT19937's reference outputs for seed 5489", function()
    -- Matsumoto and Nishimura's mt19937ar reference; also numpy's RandomState(5489)
    local g = shared.mt19937(5489)
    assert.same({ 3499211612, 581869302, 3890346734 }, { g(), g(), g() })
  end)

  it("gives numpy's RandomState(seed).permutation(n) (values from numpy 1.24)", function()
    local p = shared.numpy_permutation(506, 113)
    assert.same({ 22, 202, 368, 335, 461, 323, 382, 143, 146, 141 }, { unpack(p, 1, 10) })
    assert.same({ 364, 74, 162, 220, 165 }, { unpack(p, 502, 506) })
    assert.same({ 18, 1, 19, 8, 10, 17, 6, 13, 4, 2, 5, 14, 9, 7, 16, 11, 3, 0, 15, 12 }, shared.numpy_permutation(20, 0))
    assert.same({ 1, 5, 0, 6, 4, 2, 3 }, shared.numpy_permutation(7, 2 ^ 32 - 1))
    assert.same({ 0 }, shared.numpy_permutation(1, 42))
  end)

  it("refuses seeds numpy refuses", function()
    raises("seed must be an integer between 0 and 2%*%*32 %- 1%. Received: seed=%-1", shared.numpy_permutation, 5, -1)
    raises("Received: seed=1%.5", shared.numpy_permutation, 5, 1.5)
  end)
end)

describe("klua.datasets.boston_housing.load_data", function()
  before_each(function() set_data(FIXTURES) end)
  after_each(restore_data)

  it("splits the rows as Keras does: numpy's RandomState(113) order, the first int(n * 0.8) for training", function()
    -- 10 fixture rows: numpy's RandomState(113).permutation(10) = 9 3 6 1 0 7 4 8 | 2 5
    local train, test = datasets.boston_housing.load_data()
    assert.same({ 8, 13 }, train[1]:shape())
    assert.same({ 2, 13 }, test[1]:shape())
    near(train[2], { 18.9, 33.4, 22.9, 21.6, 24, 27.1, 36.2, 16.5 }, 1e-6)
    near(test[2], { 34.7, 28.7 }, 1e-6)
    near(train[1]:get(1, 1), 0.17004, 1e-6)          -- row 9's CRIM
    near(test[1]:get(2, 13), 5.21, 1e-6)             -- row 5's LSTAT
  end)

  it("takes Keras's test_split and seed, and checks them with Keras's message", function()
    local train, test = datasets.boston_housing.load_data { test_split = 0, seed = 7 }
    assert.same({ 10, 13 }, train[1]:shape())
    assert.same({ 0, 13 }, test[1]:shape())
    assert.same({ 0 }, test[2]:shape())
    raises("boston_housing%.load_data: test_split must be between 0 and 1 %(exclusive of 1%)%. Received: test_split=1",
      datasets.boston_housing.load_data, { test_split = 1 })
    raises("boston_housing%.load_data: unknown option 'test_size' %(options: test_split, seed%)",
      datasets.boston_housing.load_data, { test_size = 0.1 })
  end)

  it("names the file, the line and `make data` when the cache is missing or damaged", function()
    set_data(tmp .. "/nowhere")
    local err = raises("boston_housing%.load_data: boston_house_prices%.csv not found in .*nowhere/boston_housing",
      datasets.boston_housing.load_data)
    assert.matches("make data", err, 1, true)
    local dir = copy_fixture("boston_housing")
    set_data(tmp)
    local f = assert(io.open(dir .. "/boston_house_prices.csv", "ab"))
    f:write("1,2,3\n")
    f:close()
    raises("'.*boston_house_prices%.csv' line 13: expected 14 values, got 3", datasets.boston_housing.load_data)
    helpers.write_file(dir .. "/boston_house_prices.csv", helpers.read_file(FIXTURES .. "/boston_housing/boston_house_prices.csv")
      :gsub("^10,", "11,"))
    raises("'.*boston_house_prices%.csv' has 10 rows, its header says 11", datasets.boston_housing.load_data)
    helpers.write_file(dir .. "/boston_house_prices.csv", "not a csv\n")
    raises("does not start with sklearn's header line", datasets.boston_housing.load_data)
  end)

  it("gives Keras's rows on the real data (after `make data`)", function()
    restore_data()
    local path = datasets.data_dir("boston_housing") .. "/boston_house_prices.csv"
    if not helpers.exists(path) then
      pending("no " .. path .. ": `make data` has not run here (CI has no data cache); the fixture tests above cover the loader")
      return
    end
    local train, test = datasets.boston_housing.load_data()
    assert.same({ 404, 13 }, train[1]:shape())
    assert.same({ 102, 13 }, test[1]:shape())
    -- Keras's boston_housing.load_data(): x_train[0], y_train[:10], x_test[0], y_test[0]
    -- (as printed in "Deep Learning with Python", ch. 3, and by numpy on Keras's file)
    near(ops_row(train[1], 1), { 1.23247, 0, 8.14, 0, 0.538, 6.142, 91.7, 3.9769, 4, 307, 21, 396.9, 18.72 }, 1e-5)
    near(klua.ops.slice_axis(train[2], 1, 1, 10), { 15.2, 42.3, 50, 21.1, 17.7, 18.5, 11.3, 15.6, 15.6, 14.4 }, 1e-5)
    near(ops_row(test[1], 1), { 18.0846, 0, 18.1, 0, 0.679, 6.434, 100, 1.8347, 24, 666, 20.2, 27.25, 29.05 }, 1e-5)
    near(test[2]:get(1), 7.2, 1e-5)
  end)
end)

describe("The real caches (after `make data`)", function()
  after_each(restore_data)

  it("hold sklearn's sizes and the corpus's 6,046 messages", function()
    restore_data()
    local missing = {}
    for _, f in ipairs { "iris/iris.csv", "digits/digits.csv", "diabetes/diabetes_target.csv", "spam_assassin/messages.txt" } do
      if not helpers.exists(datasets.data_dir() .. "/" .. f) then missing[#missing + 1] = f end
    end
    if #missing > 0 then
      pending("no " .. table.concat(missing, ", ") .. " in " .. datasets.data_dir() .. ": `make data` has not run here")
      return
    end
    -- In a klua process of its own: 32 MB of mail would otherwise stay in the
    -- heap and the reuse pool that the specs after this one share.
    local script = helpers.tmpdir() .. "/real.lua"
    helpers.write_file(script, [[
      local d = require("klua").datasets
      for _, name in ipairs { "iris", "wine", "breast_cancer", "digits", "diabetes" } do
        local x, y = d[name].load_data()
        io.write(name, " ", table.concat(x:shape(), "x"), " ", y:shape()[1], "\n")
      end
      local train, test = d.spam_assassin.load_data()
      io.write("spam_assassin ", #train[1], " ", #test[1], " ", train[2]:sum():item() + test[2]:sum():item(), "\n")
    ]])
    local out, code = helpers.run_klua(helpers.shell_quote(script))
    helpers.remove_tree(script:match("^(.*)/"))
    assert.equal(0, code, out)
    assert.equal("iris 150x4 150\nwine 178x13 178\nbreast_cancer 569x30 569\ndigits 1797x64 1797\ndiabetes 442x10 442\n"
      .. "spam_assassin 4836 1210 1896\n", out)   -- spam: spam-1 500 + spam-2 1396
  end)
end)

describe("sklearn's tabular data sets", function()
  before_each(function() set_data(FIXTURES) end)
  after_each(restore_data)

  it("iris.load_data returns (x, y) with sklearn's features, 0-based classes and names", function()
    local x, y = datasets.iris.load_data()
    assert.same({ 6, 4 }, x:shape())
    assert.same({ 0, 0, 1, 1, 2, 2 }, y:tolist())
    near(ops_row(x, 3), { 7.0, 3.2, 4.7, 1.4 }, 1e-6)
    assert.same({ "setosa", "versicolor", "virginica" }, datasets.iris.class_names)
    assert.equal("petal width (cm)", datasets.iris.feature_names[4])
  end)

  it("wine and breast_cancer keep sklearn's class order (breast_cancer: 0 = malignant)", function()
    local x, y = datasets.wine.load_data()
    assert.same({ 3, 13 }, x:shape())
    assert.same({ 0, 1, 2 }, y:tolist())
    near(x:get(3, 13), 630, 1e-6)
    assert.equal(13, #datasets.wine.feature_names)
    assert.equal("od280/od315_of_diluted_wines", datasets.wine.feature_names[12])
    x, y = datasets.breast_cancer.load_data()
    assert.same({ 2, 30 }, x:shape())
    assert.same({ 0, 1 }, y:tolist())
    assert.same({ "malignant", "benign" }, datasets.breast_cancer.class_names)
    assert.equal(30, #datasets.breast_cancer.feature_names)
    assert.same({ "mean radius", "radius error", "worst fractal dimension" }, { datasets.breast_cancer.feature_names[1],
      datasets.breast_cancer.feature_names[11], datasets.breast_cancer.feature_names[30] })
  end)

  it("digits gives 64 pixels 0..16 per row, or sklearn's 8x8 images, and keeps n_class classes", function()
    local x, y = datasets.digits.load_data()
    assert.same({ 3, 64 }, x:shape())
    assert.same({ 0, 1, 2 }, y:tolist())
    near(x:get(1, 3), 5, 0)
    local images = datasets.digits.load_data { images = true }
    assert.same({ 3, 8, 8 }, images:shape())
    near(images:get(1, 1, 3), 5, 0)
    local xs, ys = datasets.digits.load_data { n_class = 2 }
    assert.same({ 2, 64 }, xs:shape())
    assert.same({ 0, 1 }, ys:tolist())
    assert.equal("pixel_7_7", datasets.digits.feature_names[64])
    raises("n_class must be an integer between 1 and 10%. Received: n_class=11", datasets.digits.load_data, { n_class = 11 })
  end)

  it("diabetes is scaled as sklearn's by default (values from numpy) and raw on request", function()
    local x, y = datasets.diabetes.load_data()
    assert.same({ 4, 10 }, x:shape())
    near(y, { 151, 75, 141, 206 }, 0)
    -- numpy: (raw - mean) / std / sqrt(4) on the fixture's 4 rows
    near(ops_row(x, 1), { 0.23402489693155767, 0.5, 0.5657668406658887, 0.7505553499465135, -0.46318355658658544,
      -0.3903323612792305, -0.3509356229324192, 0.0, 0.34688338268206076, 0.2840374813940114 }, 1e-5)
    near(klua.ops.sum(klua.ops.square(x), 1), { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, 1e-5)
    local raw = datasets.diabetes.load_data { scaled = false }
    near(ops_row(raw, 2), { 48, 1, 21.6, 87, 183, 103.2, 70, 3, 3.8918, 69 }, 1e-5)
    assert.equal("s6", datasets.diabetes.feature_names[10])
  end)

  it("reject an unknown option, a non-number field and a missing file, naming what to do", function()
    raises("iris%.load_data: unknown option 'shuffle'", datasets.iris.load_data, { shuffle = true })
    local dir = copy_fixture("iris")
    set_data(tmp)
    helpers.write_file(dir .. "/iris.csv", "2,4,a,b\n1,2,3,4,0\n1,two,3,4,1\n")
    raises("iris%.load_data: '.*iris%.csv' line 3: 'two' is not a number", datasets.iris.load_data)
    os.remove(dir .. "/iris.csv")
    raises("iris%.load_data: iris%.csv not found in " .. literal(tmp .. "/iris") .. "; run `make data`", datasets.iris.load_data)
  end)
end)

describe("klua.datasets.spam_assassin.load_data", function()
  before_each(function() set_data(FIXTURES) end)
  after_each(restore_data)

  it("returns the bodies as Lua strings and 0/1 labels, split as Keras splits", function()
    -- numpy's RandomState(113).permutation(6) = 1 0 3 2 | 4 5
    local train, test = datasets.spam_assassin.load_data()
    assert.same({ "You WIN a FREE prize! Click here now.", "The meeting moved to Thursday; the notes are attached.",
      "FREE pills, cheap prices, click here to order now!", "The build is green again, thanks for the fix." }, train[1])
    assert.same({ 1, 0, 1, 0 }, train[2]:tolist())
    assert.same({ "Rendez-vous au caf\195\169 \195\160 midi.", "" }, test[1])   -- CRLF headers; headers only
    assert.same({ 0, 0 }, test[2]:tolist())
    assert.same({ "ham", "spam" }, datasets.spam_assassin.class_names)
  end)

  it("keeps the headers on request and takes test_split and seed", function()
    local train = datasets.spam_assassin.load_data { headers = true, test_split = 0.5, seed = 7 }
    -- numpy's RandomState(7).permutation(6) = 3 5 0 | 2 1 4
    assert.equal(3, #train[1])
    assert.matches("^From: deals@example%.net\nSubject: Cheap meds\n\nFREE pills", train[1][1])
    assert.same({ 1, 0, 0 }, train[2]:tolist())
  end)

  it("rejects a truncated or foreign file, naming it", function()
    local dir = copy_fixture("spam_assassin")
    set_data(tmp)
    local text = helpers.read_file(dir .. "/messages.txt")
    helpers.write_file(dir .. "/messages.txt", text:sub(1, 300))
    raises("spam_assassin%.load_data: '.*messages%.txt': message %d %(.-%) claims %d+ bytes, the file ends before them",
      datasets.spam_assassin.load_data)
    helpers.write_file(dir .. "/messages.txt", "hello\n")
    raises("does not start with \"klua%-spam%-assassin 1 <count>\"", datasets.spam_assassin.load_data)
    helpers.write_file(dir .. "/messages.txt", text)
    raises("has %d+ bytes, more than max_bytes=100", datasets.spam_assassin.load_data, { max_bytes = 100 })
  end)
end)
