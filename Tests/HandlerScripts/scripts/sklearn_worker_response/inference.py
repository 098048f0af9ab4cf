# Decoding and encoding with the container's own helpers, as many sklearn scripts do.
import os

import joblib
from sagemaker_containers.beta.framework import content_types, encoders, env, modules, transformer, worker  # noqa: F401


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def input_fn(request_body, request_content_type):
    if request_content_type == content_types.CSV:
        return encoders.decode(request_body, request_content_type)
    raise ValueError(f"unsupported content type {request_content_type}")


def predict_fn(input_data, model):
    return model.predict(input_data)


def output_fn(prediction, accept):
    return worker.Response(encoders.encode(prediction, accept), accept, mimetype=accept)
