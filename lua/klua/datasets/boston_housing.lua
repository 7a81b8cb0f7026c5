-- datasets/boston_housing.lua — klua.datasets.boston_housing: 506 Boston
-- suburbs of the 1970s, 13 attributes each, and the median house value (k$).
-- The rows are the CSV that Debian's python3-sklearn ships (`make data` takes
-- it from the .deb), split exactly as Keras's loader splits its copy:
-- numpy's RandomState(seed) shuffle, reproduced in _shared.lua, so
-- load_data() gives Keras's x_train[1] (1.23247, 0, 8.14, ...) and 404/102 rows.
-- Keras's warning holds here too: the attribute "B" encodes a racial
-- assumption; use the data to illustrate that problem, not to model prices.
local shared = require("klua.datasets._shared")

local boston_housing = {}

local WHAT = "boston_housing.load_data"

-- The CSV's column names (the first 13 are the features; MEDV is the target).
boston_housing.feature_names = { "CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX",
                                 "PTRATIO", "B", "LSTAT" }

--- load_data({test_split = 0.2, seed = 113}) -> {x_train, y_train}, {x_test, y_test}
-- x: (N,13), y: (N) in k$; Keras's split: the rows shuffled by numpy's
-- RandomState(seed), the first int(506 * (1 - test_split)) for training.
function boston_housing.load_data(opts)
  opts = shared.options(opts, WHAT, { "test_split", "seed" })
  local test_split = opts.test_split == nil and 0.2 or opts.test_split
  local seed = opts.seed == nil and 113 or opts.seed
  local text, path = shared.read("boston_housing", "boston_house_prices.csv", WHAT)
  local n = tonumber(text:match("^(%d+),13,"))
  if not n then
    shared.raise_format(WHAT, path, "sklearn's header line \"506,13,...\" and the column names")
  end
  local flat = shared.rows(text, path, WHAT, { skip = 2, width = 14, count = n })
  local all = shared.matrix(flat, n, 14)
  local train, test = shared.split_indices(n, test_split, seed, WHAT)
  local x, y = shared.columns(all, 1, 13), shared.columns(all, 14, 14)
  local function part(idx)
    return { shared.take_rows(x, idx), shared.flatten(shared.take_rows(y, idx)) }
  end
  return part(train), part(test)
end

return boston_housing
