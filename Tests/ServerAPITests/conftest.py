"""Fixtures for driving a real `batchform serve` process with boto3 and the SageMaker SDK.

The binary is BATCHFORM_BIN (default .build/debug/batchform); the model is the end-to-end
tests' test-model executable, which answers each line reversed."""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import boto3
import botocore.config
import botocore.exceptions
import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("BATCHFORM_BIN", ROOT / ".build/debug/batchform"))
TEST_MODEL = ROOT / "Tests/EndToEndTests/Fixtures/test-model/serve"
KEY_ID, SECRET = "AKIDBATCHFORMTEST", "batchform-test-secret"
# In CI every part the suites need is installed: a missing one fails instead of skipping.
CI = os.environ.get("CI") == "true"


class Server:
    """One `batchform serve` process on a free loopback port, with its own data directory."""

    def __init__(self, data_dir, root, args=(), env=None):
        self.data_dir, self.root, self.args = Path(data_dir), Path(root), list(args)
        self.env = {**os.environ, "BATCHFORM_ACCESS_KEY_ID": KEY_ID, "BATCHFORM_SECRET_ACCESS_KEY": SECRET, **(env or {})}
        self.process = None
        self.port = None

    def start(self, port=0):
        self.log = open(self.data_dir.parent / f"serve-{time.time_ns()}.log", "w")
        self.process = subprocess.Popen(
            [str(BINARY), "serve", "--port", str(port), "--data-dir", str(self.data_dir),
             "--allow-local-path", str(self.root), "--startup-timeout", "60", *self.args],
            stdout=subprocess.PIPE, stderr=self.log, env=self.env, cwd=self.root, text=True,
        )
        line = self.process.stdout.readline()
        assert "listening on" in line, f"server did not start: {line!r}"
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def kill9(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def client(self, key_id=KEY_ID, secret=SECRET):
        return boto3.client(
            "sagemaker", endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id=key_id, aws_secret_access_key=secret,
            config=botocore.config.Config(retries={"max_attempts": 1}),
        )

    def cli(self, *args, check=True):
        return subprocess.run(
            [str(BINARY), "jobs", *args, "--endpoint", self.url], env=self.env, capture_output=True, text=True,
            check=check, timeout=60,
        )


@pytest.fixture
def server(tmp_path):
    started = Server(tmp_path / "data", tmp_path).start()
    yield started
    started.stop()


def make_inputs(folder, files=3, lines=50, prefix="part"):
    """Text inputs whose expected `.out` is each line reversed."""
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for index in range(files):
        rows = [f"{prefix}{index}-row{row}-{'x' * (row % 7)}" for row in range(lines)]
        (folder / f"{prefix}-{index}.txt").write_text("".join(row + "\n" for row in rows))
        expected[f"{prefix}-{index}.txt.out"] = "".join(row[::-1] + "\n" for row in rows)
    return expected


def create_model(client, name, env=None):
    client.create_model(
        ModelName=name, ExecutionRoleArn="arn:aws:iam::000000000000:role/batchform",
        PrimaryContainer={"Image": str(TEST_MODEL), "Environment": env or {}},
    )


def job_request(name, model, input_dir, output_dir, **overrides):
    request = {
        "TransformJobName": name, "ModelName": model,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"file://{input_dir}/"}},
            "ContentType": "text/plain", "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": f"file://{output_dir}", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "BatchStrategy": "MultiRecord",
    }
    request.update(overrides)
    return request


def wait_for(client, name, delay=1, attempts=120):
    """botocore's own waiter; it raises on Failed, which the caller then sees in Describe."""
    try:
        client.get_waiter("transform_job_completed_or_stopped").wait(
            TransformJobName=name, WaiterConfig={"Delay": delay, "MaxAttempts": attempts}
        )
    except botocore.exceptions.WaiterError as error:
        if "Failed" not in str(error):
            raise
    return client.describe_transform_job(TransformJobName=name)


def read_outputs(folder):
    return {path.name: path.read_text() for path in sorted(Path(folder).glob("*.out"))}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
