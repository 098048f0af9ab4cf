"""Trains a small image classifier on scikit-learn's bundled 8x8 digits (no download), packages
model.tar.gz the SageMaker way (model at the top, handlers under code/), and writes JSON Lines
records {"id", "inputs": <base64 PGM image bytes>, "date"} to score, in several files."""
import base64
import datetime
import json
import os
import sys
import tarfile

import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression


def pgm_bytes(pixels):
    """An 8x8 greyscale image as binary PGM (P5), so the records carry real image file bytes."""
    return b"P5\n8 8\n16\n" + pixels.astype(np.uint8).tobytes()


build = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
digits = load_digits()
held_out = np.arange(len(digits.images)) % 5 == 0  # score images the model did not train on
model = LogisticRegression(max_iter=2000).fit(digits.data[~held_out], digits.target[~held_out])
os.makedirs(f"{build}/model", exist_ok=True)
joblib.dump(model, f"{build}/model/model.joblib")
with tarfile.open(f"{build}/model.tar.gz", "w:gz") as archive:
    archive.add(f"{build}/model/model.joblib", arcname="model.joblib")
    archive.add(f"{here}/code/inference.py", arcname="code/inference.py")

images = digits.images[held_out]
start = datetime.date(2026, 11, 1)
record_id = 0
for day in range(3):
    date = start + datetime.timedelta(days=day)
    path = f"{build}/input/date={date}/images.jsonl"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as out:
        for image in images[day::3]:
            record = {"id": record_id, "inputs": base64.b64encode(pgm_bytes(image)).decode(), "date": str(date)}
            out.write(json.dumps(record) + "\n")
            record_id += 1
print(f"trained on {int((~held_out).sum())} images; wrote {build}/model.tar.gz and {record_id} records in 3 files")
