"""Loads the user's `inference.py` and calls its handlers with the toolkit's rules.

- The module is `SAGEMAKER_PROGRAM` (default `inference.py`) from the code directory.
- `transform_fn` together with `input_fn`/`predict_fn`/`output_fn` is an error at start-up.
- Each handler may take one extra trailing argument, the `context`.
- Missing handlers fall back to the defaults of the model's framework image (see frameworks.py).
- The modules SageMaker's containers have preinstalled can be imported (see container_modules.py).
"""
import importlib.util
import inspect
import json
import os
import sys
import threading
from types import ModuleType
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from . import codecs, frameworks
from .frameworks import StartupError

__all__ = ["Context", "Handlers", "StartupError", "call", "find_code_directory", "load_user_module"]

HANDLER_NAMES = ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn", "pre_model_fn",
                 "model_warmup_fn", "execution_parameters_fn")


class RequestProperties:
    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    def get_request_properties(self) -> Dict[str, str]:
        return self._headers


class Context:
    """What toolkit handlers receive as `context`: model_dir, request headers, response controls."""

    def __init__(self, model_dir: str) -> None:
        self.system_properties = {"model_dir": model_dir, "gpu_id": None, "batch_size": 1}
        self.request_processor = [RequestProperties({})]
        self.response_content_type = None
        self.response_status = None
        self.response_headers = {}

    def get_request_header(self, index: int, key: str) -> Optional[str]:
        return self.request_processor[index].get_request_properties().get(key)

    def set_response_content_type(self, index: int, content_type: str) -> None:
        self.response_content_type = content_type

    def set_response_status(self, code: int = 200, phrase: str = "") -> None:
        self.response_status = int(code)

    def set_response_header(self, index: int, key: str, value: str) -> None:
        self.response_headers[key] = value


def call(function: Callable[..., Any], args: Tuple[Any, ...], context: "Context") -> Any:
    """Calls with `context` appended when the function takes one more parameter."""
    count = len(inspect.signature(function).parameters)
    if count == len(args):
        return function(*args)
    if count == len(args) + 1:
        return function(*args, context)
    raise TypeError(f"{function.__name__} takes {count} arguments but {len(args)} (or {len(args) + 1} "
                    "with context) were given")


def find_code_directory(model_dir: str, environ: Mapping[str, str]) -> str:
    """SAGEMAKER_SUBMIT_DIRECTORY when it is a local folder (Batchform unpacks URIs before
    starting the server), else the model's own code/ folder."""
    submitted = environ.get("SAGEMAKER_SUBMIT_DIRECTORY", "")
    if submitted.startswith("file://"):
        submitted = submitted[len("file://"):]
    if submitted == "/opt/ml/model/code":
        submitted = os.path.join(model_dir, "code")
    if submitted and os.path.isdir(submitted):
        return submitted
    return os.path.join(model_dir, "code")


def load_user_module(code_dir: str, program: str) -> Optional[ModuleType]:
    """Imports the user module; None when the default program is absent (defaults are used)."""
    name = program[:-3] if program.endswith(".py") else program
    path = os.path.join(code_dir, name + ".py")
    if not os.path.exists(path):
        return None
    for folder in (os.path.join(code_dir, "lib"), code_dir):
        if os.path.isdir(folder) and folder not in sys.path:
            sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise StartupError(f"importing {path} failed: {type(error).__name__}: {error}") from error
    return module


class Handlers:
    def __init__(self, module: Optional[ModuleType], model_dir: str, framework: Optional[str] = None) -> None:
        found = {name: getattr(module, name, None) for name in HANDLER_NAMES} if module else {}
        found = {name: value for name, value in found.items() if callable(value)}
        if "transform_fn" in found and {"input_fn", "predict_fn", "output_fn"} & found.keys():
            clashing = sorted({"input_fn", "predict_fn", "output_fn"} & found.keys())
            raise StartupError(
                f"the user module defines transform_fn together with {', '.join(clashing)}; "
                "define either transform_fn or input_fn/predict_fn/output_fn"
            )
        self.model_dir = model_dir
        self.context = Context(model_dir)
        model_fn, input_fn, predict_fn, output_fn = frameworks.defaults(framework)
        self.model_fn = found.get("model_fn", model_fn)
        self.transform_fn = found.get("transform_fn")
        self.input_fn = found.get("input_fn", input_fn)
        self.predict_fn = found.get("predict_fn", predict_fn)
        self.output_fn = found.get("output_fn", output_fn)
        self.pre_model_fn = found.get("pre_model_fn")
        self.model_warmup_fn = found.get("model_warmup_fn")
        self.execution_parameters_fn = found.get("execution_parameters_fn")
        self.model = None
        # Set when the supervisor ran model_fn before forking (BATCHFORM_PRELOAD_MODEL).
        self.preloaded = False
        self.loaded = threading.Event()

    def load_model(self) -> None:
        if self.pre_model_fn:
            call(self.pre_model_fn, (self.model_dir,), self.context)
        self.model = call(self.model_fn, (self.model_dir,), self.context)
        if self.model_warmup_fn:
            call(self.model_warmup_fn, (self.model_dir, self.model), self.context)

    def transform(
        self, body: bytes, headers: Mapping[str, str], default_accept: str
    ) -> Tuple[int, bytes, Optional[str], Dict[str, str]]:
        """Runs one request; returns (status, body bytes, content type, extra response headers)."""
        lowered = {key.lower(): value for key, value in headers.items()}
        content_type = lowered.get("content-type")
        accept = lowered.get("accept")
        if not accept or accept == "*/*":
            accept = default_accept
        # The toolkits hand JSON and CSV over as str and everything else (JSON Lines included) as bytes.
        data = bytes(body).decode("utf-8") if codecs.media_type(content_type) in codecs.STR_TYPES else body
        # A fresh context per request: a worker serves several connections on threads.
        context = Context(self.model_dir)
        context.request_processor = [RequestProperties(headers)]
        if self.transform_fn:
            result = call(self.transform_fn, (self.model, data, content_type, accept), context)
        else:
            decoded = call(self.input_fn, (data, content_type), context)
            prediction = call(self.predict_fn, (decoded, self.model), context)
            result = call(self.output_fn, (prediction, accept), context)
        response_type = context.response_content_type or accept
        status = context.response_status or 200
        if isinstance(result, tuple) and len(result) == 2:
            result, response_type = result
        elif hasattr(result, "get_data") and hasattr(result, "mimetype"):  # flask.Response, worker.Response
            status = getattr(result, "status_code", None) or status
            result, response_type = result.get_data(), result.mimetype
        if isinstance(result, (bytes, bytearray, memoryview)):
            payload = bytes(result)
        elif isinstance(result, str):
            payload = result.encode("utf-8")
        else:
            payload = json.dumps(result, default=lambda value: value.tolist()).encode("utf-8")
        return status, payload, response_type, context.response_headers
