"""The default handlers of each SageMaker framework image, chosen by the model's image URI
(Batchform passes it as BATCHFORM_FRAMEWORK). A script's own handlers always win; these fill in
what it leaves out, as that framework's container does.

- sklearn: `model.joblib`/`model.pkl`; CSV, JSON, JSON Lines, NPY, NPZ to numpy; `model.predict`;
  JSON, CSV, JSON Lines, NPY by Accept.
- xgboost: `xgboost-model` (pickle or XGBoost's own formats); CSV, LIBSVM, RecordIO-protobuf to a
  DMatrix; `booster.predict(dmatrix, validate_features=False)`; CSV, JSON, JSON Lines.
- pytorch: `model_fn` required; as sklearn, then a float tensor; `model(data)` under
  `torch.no_grad()`; JSON, CSV, NPY.
- huggingface: `pipeline(HF_TASK, the model folder)`; JSON `{"inputs", "parameters"}`, JSON Lines,
  text; `pipeline(inputs, **parameters)`; JSON.

Framework modules (xgboost, torch, transformers) are imported only by their own defaults.
"""
import json
import os
import pickle
from typing import Any, Callable, Optional, Tuple, Union

from . import codecs


class StartupError(Exception):
    """The model cannot be served; the message says what to change."""


# MARK: scikit-learn (and batchform/python)

def sklearn_model_fn(model_dir: str) -> Any:
    for name in ("model.joblib", "model.pkl", "model.pickle"):
        path = os.path.join(model_dir, name)
        if os.path.exists(path):
            if name.endswith("joblib"):
                import joblib

                return joblib.load(path)
            with open(path, "rb") as f:
                return pickle.load(f)
    raise StartupError(
        f"no model_fn in the user module and no model.joblib or model.pkl in {model_dir}: "
        "define model_fn(model_dir) in inference.py"
    )


def sklearn_input_fn(input_data: Union[str, bytes], content_type: Optional[str]) -> Any:
    return codecs.decode(input_data, content_type)


def sklearn_predict_fn(data: Any, model: Any) -> Any:
    if hasattr(model, "predict"):
        return model.predict(data)
    if callable(model):
        return model(data)
    raise StartupError("the model has no predict() and is not callable: define predict_fn(data, model)")


def sklearn_output_fn(prediction: Any, accept: Optional[str]) -> Tuple[bytes, str]:
    return codecs.encode(prediction, accept)


# MARK: XGBoost

def xgboost_model_fn(model_dir: str) -> Any:
    """`xgboost-model`, as the XGBoost container saves it: a pickled Booster (or XGBModel), else
    any of XGBoost's own formats (JSON, UBJSON, the old binary)."""
    import xgboost as xgb

    path = os.path.join(model_dir, "xgboost-model")
    if not os.path.exists(path):
        raise StartupError(f"no model_fn in the user module and no xgboost-model in {model_dir}: "
                           "save the booster as xgboost-model, or define model_fn(model_dir)")
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception:
        booster = xgb.Booster()
        booster.load_model(path)
        return booster


def xgboost_input_fn(input_data: Union[str, bytes], content_type: Optional[str]) -> Any:
    from sagemaker_xgboost_container import encoder

    data = input_data.encode("utf-8") if isinstance(input_data, str) else input_data
    try:
        return encoder.decode(data, content_type)
    except ValueError as error:
        raise codecs.BadRequest(f"cannot decode the request body as {content_type}: {error}") from error


def xgboost_predict_fn(data: Any, model: Any) -> Any:
    import xgboost as xgb

    booster = model.get_booster() if hasattr(model, "get_booster") else model
    if not isinstance(data, xgb.DMatrix):
        data = xgb.DMatrix(data)
    return booster.predict(data, validate_features=False)


def xgboost_output_fn(prediction: Any, accept: Optional[str]) -> Tuple[bytes, str]:
    """CSV (one row per prediction) or JSON, as the container's encoders write them."""
    from sagemaker_containers import _encoders

    kind = codecs.media_type((accept or codecs.CSV).split(",")[0])
    if kind == codecs.CSV:
        return _encoders.array_to_csv(prediction).encode("utf-8"), codecs.CSV
    if kind == codecs.JSON:
        return _encoders.array_to_json(prediction).encode("utf-8"), codecs.JSON
    if kind == codecs.JSONLINES:
        return b"".join(json.dumps(row).encode() + b"\n" for row in prediction.tolist()), codecs.JSONLINES
    raise codecs.UnsupportedAccept(f"unsupported Accept {accept!r}; the XGBoost default output_fn writes text/csv, "
                                   "application/json and application/jsonlines. Write an output_fn for other types.")


# MARK: PyTorch

def pytorch_model_fn(model_dir: str) -> Any:
    raise StartupError("the PyTorch image needs a model_fn(model_dir) in inference.py that loads the model")


def pytorch_input_fn(input_data: Union[str, bytes], content_type: Optional[str]) -> Any:
    import torch

    return torch.as_tensor(codecs.decode(input_data, content_type), dtype=torch.float32)


def pytorch_predict_fn(data: Any, model: Any) -> Any:
    import torch

    if hasattr(model, "eval"):
        model.eval()
    with torch.no_grad():
        return model(data)


def pytorch_output_fn(prediction: Any, accept: Optional[str]) -> Tuple[bytes, str]:
    if hasattr(prediction, "detach"):
        prediction = prediction.detach().cpu().numpy()
    return codecs.encode(prediction, accept)


# MARK: Hugging Face

def huggingface_model_fn(model_dir: str) -> Any:
    task = os.environ.get("HF_TASK")
    if not task:
        raise StartupError("the Hugging Face image needs HF_TASK (for example text-classification) in the "
                           "model's Environment, or a model_fn")
    # Only the model folder: never a download from the hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import pipeline

    return pipeline(task=task, model=model_dir, device=-1)


def huggingface_input_fn(input_data: Union[str, bytes], content_type: Optional[str]) -> Any:
    kind = codecs.media_type(content_type)
    text = input_data.decode("utf-8") if isinstance(input_data, (bytes, bytearray)) else input_data
    if kind == codecs.JSON:
        value = json.loads(text)
        return value if isinstance(value, dict) and "inputs" in value else {"inputs": value}
    if kind == codecs.JSONLINES:
        return {"inputs": [json.loads(line) for line in text.splitlines() if line.strip()]}
    if kind in ("text/plain", codecs.CSV):
        return {"inputs": [line for line in text.splitlines() if line.strip()]}
    raise codecs.UnsupportedContentType(f"unsupported Content-Type {content_type!r}; the Hugging Face default "
                                        "input_fn reads application/json, application/jsonlines and text/plain")


def huggingface_predict_fn(data: Any, model: Any) -> Any:
    return model(data["inputs"], **data.get("parameters", {}))


def huggingface_output_fn(prediction: Any, accept: Optional[str]) -> Tuple[bytes, str]:
    return json.dumps(prediction, default=lambda value: value.tolist()).encode("utf-8"), codecs.JSON


DEFAULTS = {
    "sklearn": (sklearn_model_fn, sklearn_input_fn, sklearn_predict_fn, sklearn_output_fn),
    "xgboost": (xgboost_model_fn, xgboost_input_fn, xgboost_predict_fn, xgboost_output_fn),
    "pytorch": (pytorch_model_fn, pytorch_input_fn, pytorch_predict_fn, pytorch_output_fn),
    "huggingface": (huggingface_model_fn, huggingface_input_fn, huggingface_predict_fn, huggingface_output_fn),
}


def defaults(framework: Optional[str]) -> Tuple[Callable[..., Any], ...]:
    """(model_fn, input_fn, predict_fn, output_fn) for a framework name; scikit-learn's otherwise."""
    return DEFAULTS.get((framework or "sklearn").lower(), DEFAULTS["sklearn"])
