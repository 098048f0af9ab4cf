"""scripts/install into a temporary prefix, then the installed batchform runs the linear-model
example from another directory, and the built-in server's Python files are found beside it.

BATCHFORM_INSTALL_CONFIGURATION=debug reuses the debug build the test command already made (a
release build from scratch takes about 10 minutes here); the install steps are the same."""
import json
import os
import random
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "linear-model"


def test_the_installed_binary_runs_the_linear_model_example_from_elsewhere(tmp_path):
    prefix = tmp_path / "prefix"
    env = {**os.environ, "BATCHFORM_INSTALL_CONFIGURATION": os.environ.get("BATCHFORM_INSTALL_CONFIGURATION", "debug")}
    installed = subprocess.run([str(ROOT / "scripts" / "install"), str(prefix)], capture_output=True, text=True,
                               env=env, timeout=1800)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    binary = prefix / "bin" / "batchform"
    assert binary.is_file() and os.access(binary, os.X_OK)
    assert (prefix / "share/batchform/python/batchform_serve/__init__.py").is_file()
    assert f"as {binary}" in installed.stdout

    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "input").mkdir(parents=True)
    rng = random.Random(3)
    rows = [[round(rng.uniform(-10, 10), 4) for _ in range(4)] for _ in range(500)]
    (elsewhere / "input" / "part-0.csv").write_text("".join(",".join(map(str, row)) + "\n" for row in rows))
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, cwd=elsewhere, timeout=30)
    assert version.returncode == 0 and version.stdout.startswith("0.2.0")
    result = subprocess.run(
        [str(binary), "transform", "--image", str(EXAMPLE / "serve"), "--model-data", str(EXAMPLE / "model"),
         "--input", "input/", "--output", "output", "--content-type", "text/csv", "--accept", "text/csv",
         "--split-type", "Line", "--strategy", "MultiRecord"],
        capture_output=True, text=True, cwd=elsewhere, timeout=300,
        env={"PATH": f"{prefix / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    model = json.loads((EXAMPLE / "model" / "model.json").read_text())
    predictions = (elsewhere / "output" / "part-0.csv.out").read_text().splitlines()
    assert len(predictions) == len(rows)
    for row, prediction in zip(rows, predictions):
        expected = sum(w * v for w, v in zip(model["weights"], row)) + model["bias"]
        assert abs(float(prediction) - expected) < 1e-6
    assert f"outputs:    {elsewhere / 'output'}" in result.stderr


def test_the_installed_built_in_server_is_found_without_the_repository(tmp_path):
    """The installed binary finds share/batchform/python, not the checkout's python/ folder."""
    prefix = tmp_path / "prefix"
    env = {**os.environ, "BATCHFORM_INSTALL_CONFIGURATION": os.environ.get("BATCHFORM_INSTALL_CONFIGURATION", "debug")}
    subprocess.run([str(ROOT / "scripts" / "install"), str(prefix)], check=True, capture_output=True, env=env, timeout=1800)
    work = tmp_path / "work"
    (work / "in").mkdir(parents=True)
    (work / "in" / "a.csv").write_text("1,2\n3,4\n")
    (work / "model" / "code").mkdir(parents=True)
    (work / "model" / "code" / "inference.py").write_text(
        "import os\n"
        "def model_fn(d):\n    return os.environ['PYTHONPATH'].split(':')[0]\n"
        "def transform_fn(model, body, content_type, accept):\n    return model + '\\n', 'text/plain'\n")
    result = subprocess.run(
        [str(prefix / "bin" / "batchform"), "transform", "--image", "batchform/python", "--model-data", "model/",
         "--input", "in/", "--output", "out", "--content-type", "text/csv"],
        capture_output=True, text=True, cwd=work, timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SAGEMAKER_MODEL_SERVER_WORKERS": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert (work / "out" / "a.csv.out").read_text().strip() == str(prefix / "share" / "batchform" / "python")
