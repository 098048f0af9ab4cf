"""SageMaker scikit-learn handlers, exactly as they would ship in model.tar.gz under code/."""
import io
import os

import joblib
import numpy as np


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def input_fn(request_body, request_content_type):
    if request_content_type != "text/csv":
        raise ValueError(f"this model reads text/csv, not {request_content_type}")
    return np.loadtxt(io.StringIO(request_body), delimiter=",", ndmin=2)


def predict_fn(input_data, model):
    return model.predict(input_data)


def output_fn(prediction, content_type):
    return "".join(f"{value:.6f}\n" for value in prediction), "text/csv"
