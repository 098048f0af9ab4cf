#!/usr/bin/env bash
# Example 3: two chained batch transforms. A PCA job writes components; its .out files are the
# input of a k-means job, as in the dimensionality-reduction-then-clustering walkthrough.
source "$(dirname "$0")/../prepare.sh"
"$BATCHFORM_PYTHON" "$here/train.py" "$here/build"
"$batchform" transform \
    --job-name pca-stage --image batchform/python --model-data "$here/build/pca.tar.gz" \
    --input "$here/build/input/" --output "$here/build/components" \
    --content-type text/csv --accept text/csv --split-type Line --strategy MultiRecord --assemble-with Line \
    --log-dir "$here/build/logs"
"$batchform" transform \
    --job-name kmeans-stage --image batchform/python --model-data "$here/build/kmeans.tar.gz" \
    --input "$here/build/components/" --output "$here/build/clusters" \
    --content-type text/csv --accept text/csv --split-type Line --strategy MultiRecord --assemble-with Line \
    --log-dir "$here/build/logs"
"$BATCHFORM_PYTHON" "$here/check.py" "$here/build"
