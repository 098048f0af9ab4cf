"""Compares every prediction in the .out files with the model called directly."""
import pathlib
import sys

import joblib
import numpy as np

build = pathlib.Path(sys.argv[1])
model = joblib.load(build / "model/model.joblib")
checked = 0
for source in sorted((build / "input").rglob("*.csv")):
    output = build / "output" / (str(source.relative_to(build / "input")) + ".out")
    predicted = np.loadtxt(output, ndmin=1)
    expected = model.predict(np.loadtxt(source, delimiter=",", ndmin=2))
    assert predicted.shape == expected.shape, f"{output}: {predicted.shape} vs {expected.shape}"
    assert np.allclose(predicted, expected, atol=1e-5), f"{output} differs from direct predictions"
    checked += len(expected)
print(f"OK: {checked} predictions in {build / 'output'} match model.predict called directly.")
