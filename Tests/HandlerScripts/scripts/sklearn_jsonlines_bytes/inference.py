# JSON Lines arrive as bytes in SageMaker's containers, so scripts decode them themselves.
import json
import os

import joblib
import numpy as np


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def input_fn(request_body, request_content_type):
    assert request_content_type == "application/jsonlines", request_content_type
    lines = request_body.decode("utf-8").splitlines()
    return np.array([json.loads(line)["features"] for line in lines if line.strip()])


def predict_fn(input_data, model):
    return model.predict(input_data)


def output_fn(prediction, accept):
    return "".join(json.dumps({"label": int(p)}) + "\n" for p in prediction), "application/jsonlines"
