#!/usr/bin/env bash
# Example 2: JSON Lines records carrying base64 images, classified through the built-in model
# server with a custom input_fn/output_fn; one JSON line out per record.
source "$(dirname "$0")/../prepare.sh"
"$BATCHFORM_PYTHON" "$here/train.py" "$here/build"
"$batchform" transform \
    --job-name digits-jsonlines-example \
    --image batchform/python --model-data "$here/build/model.tar.gz" \
    --model-env SAGEMAKER_MODEL_SERVER_WORKERS=2 \
    --input "$here/build/input/" --output "$here/build/output" \
    --content-type application/jsonlines --accept application/jsonlines \
    --split-type Line --strategy MultiRecord --max-payload-mb 1 --assemble-with Line \
    --max-concurrent 2 --log-dir "$here/build/logs"
"$BATCHFORM_PYTHON" "$here/check.py" "$here/build"
