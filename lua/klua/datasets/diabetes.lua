-- datasets/diabetes.lua — klua.datasets.diabetes: Efron et al.'s 442 diabetes
-- patients, 10 baseline variables each, and a measure of disease progression
-- one year later, as sklearn's load_diabetes (the CSV files of Debian's
-- python3-sklearn, which `make data` caches). A regression data set.
local shared = require("klua.datasets._shared")
local ops = require("klua.ops")

local diabetes = {}

local WHAT = "diabetes.load_data"

-- s1..s6 are six blood serum measurements (tc, ldl, hdl, tch, ltg, glu in sklearn's description).
diabetes.feature_names = { "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6" }

--- load_data({scaled = true}) -> x, y: x (442,10), y (442) (progression, 25..346).
-- scaled, as sklearn's default: each column centred and divided by its
-- standard deviation times sqrt(442), so each has sum of squares 1; false
-- gives the raw values (age in years, sex 1/2, ...).
function diabetes.load_data(opts)
  opts = shared.options(opts, WHAT, { "scaled" })
  local text, path = shared.read("diabetes", "diabetes_data_raw.csv", WHAT)
  local flat, n = shared.rows(text, path, WHAT, { width = 10 })
  local x = shared.matrix(flat, n, 10)
  text, path = shared.read("diabetes", "diabetes_target.csv", WHAT)
  local targets = shared.rows(text, path, WHAT, { width = 1, count = n })
  local y = shared.flatten(shared.matrix(targets, n, 1))
  if opts.scaled ~= false then
    -- sklearn's scale (population standard deviation) and then / sqrt(n):
    -- together, (x - mean) / sqrt(sum of squared deviations).
    local centred = x - ops.mean(x, 1, true)
    x = centred / ops.sqrt(ops.sum(ops.square(centred), 1, true))
  end
  return x, y
end

return diabetes
