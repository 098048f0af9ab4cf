"""Checks the chain: each stage-1 .out holds the PCA components of its input rows, and each
stage-2 .out (named <input>.out.out) holds the cluster k-means gives those rows directly."""
import pathlib
import sys

import joblib
import numpy as np

build = pathlib.Path(sys.argv[1])
reducer = joblib.load(build / "pca/model.joblib")
clusterer = joblib.load(build / "kmeans/model.joblib")
checked = 0
for source in sorted((build / "input").glob("*.csv")):
    rows = np.loadtxt(source, delimiter=",", ndmin=2)
    components = np.loadtxt(build / "components" / (source.name + ".out"), delimiter=",", ndmin=2)
    clusters = np.loadtxt(build / "clusters" / (source.name + ".out.out"), delimiter=",", ndmin=1)
    assert np.allclose(components, reducer.transform(rows), atol=1e-6), f"{source.name}: components differ"
    expected = clusterer.predict(reducer.transform(rows))
    assert clusters.shape == expected.shape, f"{source.name}: {clusters.shape[0]} clusters for {expected.shape[0]} rows"
    assert (clusters == expected).all(), f"{source.name}: clusters differ from direct predictions"
    checked += len(rows)
print(f"OK: {checked} rows reduced then clustered through two chained jobs match the models called directly.")
