# The XGBoost container's own decoders, as the abalone and churn examples use them.
import os

import numpy as np
import sagemaker_xgboost_container.encoder as xgb_encoders
import xgboost as xgb


def model_fn(model_dir):
    booster = xgb.Booster()
    booster.load_model(os.path.join(model_dir, "model.json"))
    return booster


def input_fn(request_body, request_content_type):
    if request_content_type == "text/libsvm":
        return xgb_encoders.libsvm_to_dmatrix(request_body)
    if request_content_type == "text/csv":
        return xgb_encoders.csv_to_dmatrix(request_body.rstrip("\n"))
    raise ValueError("Content type {} is not supported.".format(request_content_type))


def predict_fn(input_data, model):
    return model.predict(input_data, validate_features=False)


def output_fn(predictions, content_type):
    if content_type == "text/csv":
        return "\n".join(str(x) for x in np.asarray(predictions).tolist()) + "\n"
    raise ValueError("Content type {} is not supported.".format(content_type))
