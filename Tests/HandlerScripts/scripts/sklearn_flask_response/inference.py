# Some scripts build a flask.Response themselves.
import json
import os

import flask
import joblib
import numpy as np


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def input_fn(request_body, request_content_type):
    rows = json.loads(request_body)["instances"]
    return np.array(rows, dtype=float)


def predict_fn(input_data, model):
    return model.predict(input_data)


def output_fn(prediction, response_content_type):
    body = json.dumps({"predictions": [round(float(p), 6) for p in prediction]})
    return flask.Response(response=body, status=200, mimetype="application/json")
