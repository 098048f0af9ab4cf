# The sagemaker-inference toolkit's helpers, as in the toolkit-based examples.
import os

import joblib
from sagemaker_inference import content_types, decoder, encoder, errors


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def input_fn(input_data, content_type):
    if content_type != content_types.CSV:
        raise errors.UnsupportedFormatError(content_type)
    return decoder.decode(input_data, content_type)


def predict_fn(data, model):
    return model.predict(data)


def output_fn(prediction, accept):
    return encoder.encode(prediction, accept)
