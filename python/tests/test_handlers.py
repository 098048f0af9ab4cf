import json

import numpy as np
import pytest

from batchform_serve import codecs
from batchform_serve.handlers import Handlers, StartupError, call, load_user_module


def module_from(tmp_path, source, name="inference.py"):
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / name).write_text(source)
    return load_user_module(str(code), name)


class LinearModel:
    def predict(self, data):
        return np.asarray(data).sum(axis=1)


def test_context_is_passed_only_to_handlers_that_take_one():
    seen = []
    call(lambda a, b: seen.append((a, b)), (1, 2), "ctx")
    call(lambda a, b, context: seen.append((a, b, context)), (1, 2), "ctx")
    call(lambda a, b, context=None: seen.append(context), (1, 2), "ctx")
    assert seen == [(1, 2), (1, 2, "ctx"), "ctx"]
    with pytest.raises(TypeError, match="takes 1 arguments"):
        call(lambda a: None, (1, 2), "ctx")


def test_transform_fn_with_the_other_handlers_is_an_error_at_startup(tmp_path):
    module = module_from(tmp_path, "def transform_fn(m, d, c, a): pass\ndef input_fn(d, c): pass\n")
    with pytest.raises(StartupError, match="transform_fn together with input_fn"):
        Handlers(module, str(tmp_path))


def test_user_handlers_get_str_for_csv_and_their_return_becomes_the_body(tmp_path):
    module = module_from(tmp_path, """
def model_fn(model_dir):
    return "model"
def input_fn(body, content_type):
    assert isinstance(body, str), type(body)
    return body.upper()
def predict_fn(data, model, context):
    return data + "|" + model + "|" + context.system_properties["model_dir"]
def output_fn(prediction, accept):
    return prediction, "text/x-custom"
""")
    handlers = Handlers(module, "/models/m")
    handlers.load_model()
    _, body, content_type, _ = handlers.transform(b"a,b", {"Content-Type": "text/csv; charset=utf-8"}, codecs.JSON)
    assert (body, content_type) == (b"A,B|model|/models/m", "text/x-custom")


def test_binary_content_types_get_bytes(tmp_path):
    module = module_from(tmp_path, """
def model_fn(d): return None
def transform_fn(model, data, content_type, accept):
    return {"type": type(data).__name__, "accept": accept}
""")
    handlers = Handlers(module, str(tmp_path))
    handlers.load_model()
    headers = {"Content-Type": "application/octet-stream"}
    _, body, content_type, _ = handlers.transform(b"\x00\x01", headers, "application/json")
    assert json.loads(body) == {"type": "bytes", "accept": "application/json"}
    assert content_type == "application/json"


def test_defaults_predict_with_the_model_and_encode_per_accept(tmp_path):
    handlers = Handlers(None, str(tmp_path))
    handlers.model = LinearModel()
    headers = {"Content-Type": "text/csv", "Accept": "text/csv"}
    _, body, content_type, _ = handlers.transform(b"1,2\n3,4\n", headers, codecs.JSON)
    assert (body, content_type) == (b"3.0\n7.0\n", "text/csv")
    _, body, content_type, _ = handlers.transform(b"1,2\n", {"Content-Type": "text/csv", "Accept": "*/*"}, codecs.JSON)
    assert (body, content_type) == (b"[3.0]", "application/json")


def test_default_model_fn_loads_a_pickle_or_says_what_is_missing(tmp_path):
    handlers = Handlers(None, str(tmp_path))
    with pytest.raises(StartupError, match="define model_fn"):
        handlers.load_model()
    import pickle

    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"weights": [1, 2]}))
    handlers.load_model()
    assert handlers.model == {"weights": [1, 2]}


def test_an_import_error_in_the_user_module_fails_at_startup(tmp_path):
    with pytest.raises(StartupError, match="importing .* failed: ModuleNotFoundError"):
        module_from(tmp_path, "import a_module_that_does_not_exist\n")
