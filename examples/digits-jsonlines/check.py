"""Checks that every .out file answers its input records one JSON line each, in order, with the
label the model gives when called directly on the decoded images."""
import base64
import json
import pathlib
import sys

import joblib
import numpy as np

build = pathlib.Path(sys.argv[1])
model = joblib.load(build / "model/model.joblib")
checked = 0
for source in sorted((build / "input").rglob("*.jsonl")):
    output = build / "output" / (str(source.relative_to(build / "input")) + ".out")
    records = [json.loads(line) for line in source.read_text().splitlines()]
    answers = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(answers) == len(records), f"{output}: {len(answers)} answers for {len(records)} records"
    images = np.stack([np.frombuffer(base64.b64decode(r["inputs"])[-64:], dtype=np.uint8) for r in records])
    expected = model.predict(images.astype(np.float64))
    for record, answer, label in zip(records, answers, expected):
        assert (answer["id"], answer["date"]) == (record["id"], record["date"]), f"{output}: out of order at {answer}"
        assert answer["label"] == int(label), f"{output}: record {record['id']} got {answer['label']}, expected {label}"
    checked += len(records)
print(f"OK: {checked} labels in {build / 'output'} match model.predict called directly, one line per record, in order.")
