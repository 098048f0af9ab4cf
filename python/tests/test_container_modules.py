"""The SageMaker container modules scripts import, and the framework defaults."""
import importlib
import io
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from batchform_serve import container_modules, frameworks


def run_python(code, tmp_path, extra_path=()):
    """In a fresh interpreter, with the finder installed as the server installs it."""
    script = textwrap.dedent(f"""
        import sys
        sys.path[:0] = {list(map(str, extra_path))!r}
        sys.path.insert(0, {str(__import__('os').path.dirname(container_modules.__file__) + '/..')!r})
        from batchform_serve import container_modules
        container_modules.install()
    """) + textwrap.dedent(code)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={"BATCHFORM_REQUIREMENTS_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_stand_ins_answer_the_imports_scripts_make(tmp_path):
    out = run_python("""
        from sagemaker_containers.beta.framework import content_types, encoders, env, errors, modules, worker
        from sagemaker_containers.beta.framework import transformer
        import sagemaker_containers.beta.framework.encoders as same
        import sagemaker_xgboost_container.encoder as xgb_encoders
        from sagemaker_containers import _content_types, _errors
        assert same is encoders and content_types.CSV == "text/csv" and _errors.UnsupportedFormatError
        print(encoders.decode("1,2\\n3,4\\n", content_types.CSV).tolist())
        print(encoders.encode([[1.5, 2]], content_types.JSON))
        response = worker.Response(encoders.encode([1, 2], "text/csv"), "text/csv", mimetype="text/csv")
        print(response.status_code, response.mimetype, response.get_data())
        print(callable(xgb_encoders.libsvm_to_dmatrix), env.ServingEnv().http_port)
    """, tmp_path)
    assert out.splitlines() == ["[[1, 2], [3, 4]]", "[[1.5, 2]]", "200 text/csv b'1\\n2\\n'", "True 8080"]


def test_a_package_the_user_installed_wins_over_the_stand_in(tmp_path):
    own = tmp_path / "site" / "sagemaker_containers"
    own.mkdir(parents=True)
    (own / "__init__.py").write_text("WHOSE = 'the user'\n")
    out = run_python("import sagemaker_containers; print(sagemaker_containers.WHOSE)", tmp_path, [tmp_path / "site"])
    assert out.strip() == "the user"


def test_a_failed_install_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("BATCHFORM_REQUIREMENTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(container_modules, "FROM_PYPI", {"batchform_no_such_module": "batchform-no-such-package-xyz"})
    finder = container_modules.ContainerModuleFinder()
    monkeypatch.setattr(sys, "meta_path", sys.meta_path + [finder])
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    with pytest.raises(ImportError) as caught:
        importlib.import_module("batchform_no_such_module")
    assert "pip install batchform-no-such-package-xyz failed" in str(caught.value)
    assert "code/requirements.txt" in str(caught.value)


def test_the_framework_defaults_are_chosen_by_name():
    assert frameworks.defaults("xgboost")[0] is frameworks.xgboost_model_fn
    assert frameworks.defaults("pytorch")[2] is frameworks.pytorch_predict_fn
    assert frameworks.defaults(None)[0] is frameworks.sklearn_model_fn
    with pytest.raises(frameworks.StartupError, match="needs a model_fn"):
        frameworks.pytorch_model_fn("/nowhere")
    with pytest.raises(frameworks.StartupError, match="HF_TASK"):
        frameworks.huggingface_model_fn("/nowhere")


def test_recordio_protobuf_dense_and_sparse_without_the_protobuf_package():
    pytest.importorskip("scipy")
    sys.path.insert(0, container_modules.STAND_INS)
    # Hand-encoded: one Record, features {"values": Float32Tensor(values=[1.5, -2.0], keys=[0, 3], shape=[5])}.
    import struct

    from sagemaker_xgboost_container import recordio_protobuf

    def field(number, wire, payload):
        key = bytes([number << 3 | wire])
        return key + (bytes([len(payload)]) + payload if wire == 2 else payload)

    tensor = field(1, 2, struct.pack("<2f", 1.5, -2.0)) + field(2, 2, bytes([0, 3])) + field(3, 2, bytes([5]))
    value = field(2, 2, tensor)
    entry = field(1, 2, b"values") + field(2, 2, value)
    record = field(1, 2, entry)
    frame = struct.pack("<II", recordio_protobuf.RECORDIO_MAGIC, len(record)) + record + b"\0" * (-len(record) % 4)
    matrix = recordio_protobuf.read_features(frame * 2)
    assert matrix.shape == (2, 5)
    assert matrix.toarray().tolist() == [[1.5, 0, 0, -2.0, 0]] * 2
    with pytest.raises(ValueError):
        recordio_protobuf.read_features(frame[:-6])


def test_xgboost_defaults_decode_each_format_and_call_the_booster():
    xgb = pytest.importorskip("xgboost", reason="xgboost is not installed in this Python")
    sys.path.insert(0, container_modules.STAND_INS)
    rng = np.random.RandomState(0)
    x = rng.rand(40, 3)
    booster = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(x, label=x.sum(axis=1)), num_boost_round=5)
    expected = booster.predict(xgb.DMatrix(x), validate_features=False)
    csv = "".join(",".join(map(repr, row)) + "\n" for row in x.tolist())
    libsvm = "".join(" ".join(f"{j}:{v!r}" for j, v in enumerate(row)) + "\n" for row in x.tolist())
    for body, content_type in [(csv, "text/csv"), (libsvm.encode(), "text/libsvm")]:
        data = frameworks.xgboost_input_fn(body, content_type)
        np.testing.assert_allclose(frameworks.xgboost_predict_fn(data, booster), expected, rtol=1e-6)
    body, kind = frameworks.xgboost_output_fn(expected[:2], "text/csv")
    assert kind == "text/csv" and len(body.decode().splitlines()) == 2
    body, kind = frameworks.xgboost_output_fn(expected[:2], "application/json")
    assert kind == "application/json" and len(json.loads(body)) == 2
    from batchform_serve import codecs

    with pytest.raises(codecs.UnsupportedContentType.__mro__[1]):
        frameworks.xgboost_input_fn(io.BytesIO(b"x").getvalue(), "application/x-parquet")
