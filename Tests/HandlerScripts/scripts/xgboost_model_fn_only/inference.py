# Only model_fn, as the XGBoost framework examples write it: the container's defaults decode the
# CSV into a DMatrix and call booster.predict.
import os
import pickle as pkl


def model_fn(model_dir):
    with open(os.path.join(model_dir, "xgboost-model"), "rb") as f:
        booster = pkl.load(f)
    return booster
