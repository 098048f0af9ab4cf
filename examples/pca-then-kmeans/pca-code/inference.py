"""Dimensionality reduction: CSV rows of raw features in, CSV rows of principal components out."""
import io
import os

import joblib
import numpy as np


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def input_fn(request_body, request_content_type):
    return np.loadtxt(io.StringIO(request_body), delimiter=",", ndmin=2)


def predict_fn(input_data, model):
    return model.transform(input_data)


def output_fn(components, accept):
    buffer = io.StringIO()
    np.savetxt(buffer, components, delimiter=",", fmt="%.8f")
    return buffer.getvalue(), "text/csv"
