# JSON answers with one entry per record, and JSON Lines through the container's converter.
import json
import os
import pickle as pkl

import sagemaker_xgboost_container.encoder as xgb_encoders
from sagemaker_containers.beta.framework import content_types, worker


def model_fn(model_dir):
    with open(os.path.join(model_dir, "xgboost-model"), "rb") as f:
        return pkl.load(f)


def input_fn(request_body, request_content_type):
    return xgb_encoders.decode(request_body.rstrip("\n"), request_content_type)


def predict_fn(input_data, model):
    return model.predict(input_data, validate_features=False)


def output_fn(prediction, accept):
    body = json.dumps({"predictions": [{"score": float(p)} for p in prediction]})
    if accept == "application/jsonlines":
        return worker.Response(xgb_encoders.json_to_jsonlines(body), mimetype=accept)
    return worker.Response(body, mimetype=content_types.JSON)
