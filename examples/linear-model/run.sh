#!/usr/bin/env bash
# Builds Batchform, makes three CSV files, runs a Line/MultiRecord batch transform over them with
# two model server instances, and checks every prediction against the model computed directly.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
(cd "$root" && swift build --product batchform)
rm -rf "$here/build" && mkdir -p "$here/build/input/day=2026-11-01" "$here/build/input/day=2026-11-02"
python3 - "$here/build/input" <<'PY'
import random, sys
random.seed(7)
for name in ["day=2026-11-01/part-0.csv", "day=2026-11-01/part-1.csv", "day=2026-11-02/part-0.csv"]:
    with open(f"{sys.argv[1]}/{name}", "w") as f:
        for _ in range(20000):
            f.write(",".join(f"{random.uniform(-10, 10):.4f}" for _ in range(4)) + "\n")
PY
"$root/.build/debug/batchform" transform \
    --job-name linear-model-example \
    --image "$here/serve" --model-data "$here/model/" \
    --input "$here/build/input/" --output "$here/build/output" \
    --content-type text/csv --accept text/csv --split-type Line --strategy MultiRecord \
    --instance-count 2 --log-dir "$here/build/logs"
python3 - "$here" <<'PY'
import json, pathlib, sys
here = pathlib.Path(sys.argv[1])
model = json.loads((here / "model/model.json").read_text())
checked = 0
for source in sorted((here / "build/input").rglob("*.csv")):
    output = here / "build/output" / (str(source.relative_to(here / "build/input")) + ".out")
    predictions = output.read_text().splitlines()
    rows = source.read_text().splitlines()
    assert len(predictions) == len(rows), f"{output}: {len(predictions)} predictions for {len(rows)} rows"
    for row, prediction in zip(rows, predictions):
        expected = sum(w * float(v) for w, v in zip(model["weights"], row.split(","))) + model["bias"]
        assert abs(float(prediction) - expected) < 1e-6, (row, prediction, expected)
    checked += len(rows)
print(f"OK: {checked} predictions in build/output match the model computed directly.")
PY
