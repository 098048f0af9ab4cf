# The inference toolkit's newer handler shapes, with the trailing context argument.
import json
import os

import joblib
import numpy as np


def model_fn(model_dir, context):
    assert context.system_properties["model_dir"] == model_dir
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def input_fn(input_data, content_type, context):
    return np.array(json.loads(input_data), dtype=float)


def predict_fn(data, model, context):
    return model.predict(data)


def output_fn(prediction, accept, context):
    context.set_response_content_type(0, "application/json")
    return json.dumps(prediction.tolist())
