# Only model_fn, as in the scikit-learn framework examples: the container's defaults decode the
# CSV, call model.predict and encode the answer.
import os

import joblib


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
