#!/usr/bin/env bash
# Example 3: two chained batch transforms. A PCA job writes components; its .out files are the
# input of a k-means job, as in the dimensionality-reduction-then-clustering walkthrough.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
"$root/scripts/setup-python"
(cd "$root" && swift build --product batchform)
export BATCHFORM_PYTHON="$root/.venv/bin/python"
rm -rf "$here/build"
"$BATCHFORM_PYTHON" "$here/train.py" "$here/build"
"$root/.build/debug/batchform" transform \
    --job-name pca-stage --image batchform/python --model-data "$here/build/pca.tar.gz" \
    --input "$here/build/input/" --output "$here/build/components" \
    --content-type text/csv --accept text/csv --split-type Line --strategy MultiRecord --assemble-with Line \
    --log-dir "$here/build/logs"
"$root/.build/debug/batchform" transform \
    --job-name kmeans-stage --image batchform/python --model-data "$here/build/kmeans.tar.gz" \
    --input "$here/build/components/" --output "$here/build/clusters" \
    --content-type text/csv --accept text/csv --split-type Line --strategy MultiRecord --assemble-with Line \
    --log-dir "$here/build/logs"
"$BATCHFORM_PYTHON" "$here/check.py" "$here/build"
