"""Trains a RandomForest regressor on scikit-learn's bundled diabetes data (no download),
packages model.tar.gz the SageMaker way (model at the top, handlers under code/), and writes
the features to score as headerless CSV files in sub-folders."""
import os
import sys
import tarfile

import joblib
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor

build = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
features, target = load_diabetes(return_X_y=True)
model = RandomForestRegressor(n_estimators=50, max_depth=8, random_state=0).fit(features, target)
os.makedirs(f"{build}/model", exist_ok=True)
joblib.dump(model, f"{build}/model/model.joblib")
with tarfile.open(f"{build}/model.tar.gz", "w:gz") as archive:
    archive.add(f"{build}/model/model.joblib", arcname="model.joblib")
    archive.add(f"{here}/code/inference.py", arcname="code/inference.py")
rng = np.random.default_rng(0)
for name in ["region=north/batch-0.csv", "region=north/batch-1.csv", "region=south/batch-0.csv"]:
    path = f"{build}/input/{name}"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rows = features[rng.integers(0, len(features), 2000)] + rng.normal(0, 0.001, (2000, features.shape[1]))
    np.savetxt(path, rows, delimiter=",", fmt="%.6f")
print(f"trained on {len(features)} rows; wrote {build}/model.tar.gz and 3 input files")
