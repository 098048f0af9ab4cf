# The preprocessing ("featurizer") pattern of the inference-pipeline examples: pandas reads the
# CSV, the fitted transformer runs in predict_fn, and output_fn answers JSON instances or CSV
# through worker.Response.
import json
import os
from io import StringIO

import joblib
import pandas as pd
from sagemaker_containers.beta.framework import encoders, worker

feature_columns_names = ["length", "diameter", "height", "weight"]


def input_fn(input_data, content_type):
    if content_type == "text/csv":
        df = pd.read_csv(StringIO(input_data), header=None)
        df.columns = feature_columns_names
        return df
    raise ValueError("{} not supported by script!".format(content_type))


def output_fn(prediction, accept):
    if accept == "application/json":
        instances = []
        for row in prediction.tolist():
            instances.append({"features": row})
        json_output = {"instances": instances}
        return worker.Response(json.dumps(json_output), mimetype=accept)
    elif accept == "text/csv":
        return worker.Response(encoders.encode(prediction, accept), mimetype=accept)
    raise RuntimeError("{} accept type is not supported by this script.".format(accept))


def predict_fn(input_data, model):
    return model.transform(input_data)


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
