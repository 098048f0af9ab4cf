"""Fits PCA on scikit-learn's bundled wine data (no download), then k-means on the PCA
components, and packages each as its own model.tar.gz with its own inference.py, as two
SageMaker models would be. Writes the raw features to reduce as headerless CSV files."""
import os
import sys
import tarfile

import joblib
import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

build = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
features, _ = load_wine(return_X_y=True)
reducer = make_pipeline(StandardScaler(), PCA(n_components=3, random_state=0)).fit(features)
clusterer = KMeans(n_clusters=3, n_init=10, random_state=0).fit(reducer.transform(features))
for name, model in [("pca", reducer), ("kmeans", clusterer)]:
    os.makedirs(f"{build}/{name}", exist_ok=True)
    joblib.dump(model, f"{build}/{name}/model.joblib")
    with tarfile.open(f"{build}/{name}.tar.gz", "w:gz") as archive:
        archive.add(f"{build}/{name}/model.joblib", arcname="model.joblib")
        archive.add(f"{here}/{name}-code/inference.py", arcname="code/inference.py")
rng = np.random.default_rng(0)
for part in range(4):
    path = f"{build}/input/part-{part}.csv"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rows = features[rng.integers(0, len(features), 5000)] * rng.normal(1, 0.01, (5000, features.shape[1]))
    np.savetxt(path, rows, delimiter=",", fmt="%.5f")
print(f"fitted PCA and k-means on {len(features)} wines; wrote {build}/pca.tar.gz, {build}/kmeans.tar.gz and 4 input files")
