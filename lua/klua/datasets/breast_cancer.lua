-- datasets/breast_cancer.lua — klua.datasets.breast_cancer: the Wisconsin
-- diagnostic breast cancer data, 569 cell-nucleus samples with 30 features
-- (mean, standard error and worst of ten measurements), as sklearn's
-- load_breast_cancer (the CSV of Debian's python3-sklearn, which `make data`
-- caches). Keras has no loader for it.
local shared = require("klua.datasets._shared")

local breast_cancer = {}

-- Label 0 is malignant (212 samples), 1 benign (357), as in sklearn.
breast_cancer.class_names = { "malignant", "benign" }
breast_cancer.target_names = breast_cancer.class_names
breast_cancer.feature_names = {}
for _, group in ipairs { "mean %s", "%s error", "worst %s" } do
  for _, m in ipairs { "radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
                       "concave points", "symmetry", "fractal dimension" } do
    breast_cancer.feature_names[#breast_cancer.feature_names + 1] = group:format(m)
  end
end

--- load_data() -> x, y: x (569,30) unscaled, y (569) with 0 = malignant, 1 = benign.
function breast_cancer.load_data(opts)
  shared.options(opts, "breast_cancer.load_data", {})
  local x, y = shared.sklearn_csv("breast_cancer", "breast_cancer.csv", "breast_cancer.load_data")
  return x, y
end

return breast_cancer
