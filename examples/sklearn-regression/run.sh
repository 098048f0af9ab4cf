#!/usr/bin/env bash
# Example 1: train a scikit-learn model, package model.tar.gz with inference.py, run a Line /
# MultiRecord batch transform through the built-in model server, check the predictions.
source "$(dirname "$0")/../prepare.sh"
stage "Training a RandomForest on scikit-learn's diabetes data, packaging model.tar.gz"
"$BATCHFORM_PYTHON" "$here/train.py" "$here/build"
stage "Batch transform: 3 CSV files, 2 workers (batchform transform)"
"$batchform" transform \
    --job-name sklearn-regression-example \
    --image batchform/python --model-data "$here/build/model.tar.gz" \
    --model-env SAGEMAKER_PROGRAM=inference.py --model-env SAGEMAKER_MODEL_SERVER_WORKERS=2 \
    --input "$here/build/input/" --output "$here/build/output" \
    --content-type text/csv --accept text/csv --split-type Line --strategy MultiRecord \
    --max-concurrent 2 --log-dir "$here/build/logs"
stage "Checking every prediction against model.predict"
"$BATCHFORM_PYTHON" "$here/check.py" "$here/build"
stage ""
echo "Outputs: $here/build/output/   Logs: $here/build/logs/"
