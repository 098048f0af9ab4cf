# One transform_fn instead of the three handlers, returning the body and its content type.
import os

import joblib
from sagemaker_containers.beta.framework import encoders


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def transform_fn(model, request_body, content_type, accept):
    data = encoders.decode(request_body, content_type)
    probabilities = model.predict_proba(data)[:, 1]
    return encoders.encode(probabilities, accept), accept
