"""Clustering: CSV rows of principal components in, one cluster id per row out. input_fn and
output_fn are the built-in defaults (CSV in, CSV out)."""
import os

import joblib


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
