-- datasets/wine.lua — klua.datasets.wine: 178 Italian wines from three
-- cultivars, 13 chemical measurements each, as sklearn's load_wine (the CSV of
-- Debian's python3-sklearn, which `make data` caches). Keras has no wine loader.
local shared = require("klua.datasets._shared")

local wine = {}

-- Label i (0-based) names class_names[i + 1]; sklearn's target_names.
wine.class_names = { "class_0", "class_1", "class_2" }
wine.target_names = wine.class_names
wine.feature_names = { "alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
                       "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
                       "od280/od315_of_diluted_wines", "proline" }

--- load_data() -> x, y: x (178,13) unscaled, y (178) with labels 0..2, in the file's order (sorted by class).
function wine.load_data(opts)
  shared.options(opts, "wine.load_data", {})
  local x, y = shared.sklearn_csv("wine", "wine_data.csv", "wine.load_data")
  return x, y
end

return wine
