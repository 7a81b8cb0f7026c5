-- datasets/iris.lua — klua.datasets.iris: Fisher's 150 irises, 4 measurements
-- (cm) each, 3 species (50 each), as sklearn's load_iris (the CSV of Debian's
-- python3-sklearn, which `make data` caches). Keras has no iris loader.
local shared = require("klua.datasets._shared")

local iris = {}

-- Label i (0-based) names class_names[i + 1]; sklearn's target_names.
iris.class_names = { "setosa", "versicolor", "virginica" }
iris.target_names = iris.class_names
iris.feature_names = { "sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)" }

--- load_data() -> x, y: x (150,4) in cm, y (150) with labels 0..2, in the file's order (sorted by species).
function iris.load_data(opts)
  shared.options(opts, "iris.load_data", {})
  local x, y = shared.sklearn_csv("iris", "iris.csv", "iris.load_data")
  return x, y
end

return iris
