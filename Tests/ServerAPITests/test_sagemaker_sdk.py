"""The SageMaker Python SDK's Model.transformer() against `batchform serve`, with a local S3
server (moto) for the model archive, inputs and outputs."""
import io
import socket
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import boto3
import pytest

from conftest import KEY_ID, SECRET, Server, create_model, free_port

sagemaker = pytest.importorskip("sagemaker")
from sagemaker.model import Model  # noqa: E402

INFERENCE_PY = textwrap.dedent(
    """
    import json, os

    def model_fn(model_dir):
        with open(os.path.join(model_dir, "model.json")) as f:
            return json.load(f)

    def input_fn(body, content_type):
        assert content_type == "text/csv", content_type
        text = body.decode() if isinstance(body, bytes) else body
        return [[float(x) for x in line.split(",")] for line in text.splitlines() if line]

    def predict_fn(rows, model):
        return [sum(w * x for w, x in zip(model["weights"], row)) + model["bias"] for row in rows]

    def output_fn(predictions, accept):
        return "".join(f"{p:.4f}\\n" for p in predictions)
    """
)
WEIGHTS, BIAS = [0.5, -1.25, 2.0], 3.0


@pytest.fixture
def s3_url(tmp_path):
    port = free_port()
    moto = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.time() < deadline, "moto_server did not start"
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    moto.terminate()
    moto.wait()


def moto_client(s3_url):
    return boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


def s3_server(tmp_path, s3_url):
    """`batchform serve` whose s3:// locations are the moto server's."""
    return Server(
        tmp_path / "data", tmp_path, args=["--s3-endpoint", s3_url, "--region", "us-east-1"],
        env={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    ).start()


def sdk_session(server, bucket):
    """A SageMaker SDK session whose SageMaker calls go to `server`."""
    boto_session = boto3.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name="us-east-1")
    return sagemaker.Session(
        boto_session=boto_session, sagemaker_client=boto_session.client("sagemaker", endpoint_url=server.url),
        default_bucket=bucket,
    )


def model_archive():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in [("model.json", f'{{"weights": {WEIGHTS}, "bias": {BIAS}}}'), ("code/inference.py", INFERENCE_PY)]:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_model_transformer_runs_against_batchform(tmp_path, s3_url, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_url)  # the SDK's own S3 calls go to moto too
    s3 = moto_client(s3_url)
    s3.create_bucket(Bucket="sdk-bucket")
    s3.put_object(Bucket="sdk-bucket", Key="model/model.tar.gz", Body=model_archive())
    expected = {}
    for index in range(4):
        rows = [[index + row * 0.5, row - 2.0, (row % 5) * 1.5] for row in range(300)]
        s3.put_object(Bucket="sdk-bucket", Key=f"input/batch-{index}.csv", Body="".join(",".join(map(str, r)) + "\n" for r in rows))
        expected[f"batch-{index}.csv.out"] = "".join(
            f"{sum(w * x for w, x in zip(WEIGHTS, row)) + BIAS:.4f}\n" for row in rows
        )

    server = s3_server(tmp_path, s3_url)
    try:
        session = sdk_session(server, "sdk-bucket")
        model = Model(
            image_uri="batchform/python", model_data="s3://sdk-bucket/model/model.tar.gz",
            role="arn:aws:iam::000000000000:role/batchform", sagemaker_session=session, name="sdk-linear",
        )
        transformer = model.transformer(
            instance_count=2, instance_type="ml.m5.large", strategy="MultiRecord", assemble_with="Line",
            output_path="s3://sdk-bucket/output/", accept="text/csv", max_payload=1, max_concurrent_transforms=2,
        )
        transformer.transform(
            "s3://sdk-bucket/input/", content_type="text/csv", split_type="Line", job_name="sdk-job", wait=True, logs=False
        )
        described = session.describe_transform_job("sdk-job")
        assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
        assert described["TransformResources"] == {"InstanceType": "ml.m5.large", "InstanceCount": 2}
        outputs = {
            key: s3.get_object(Bucket="sdk-bucket", Key=f"output/{key}")["Body"].read().decode() for key in expected
        }
        assert outputs == expected
    finally:
        server.stop()


def test_upload_data_uris_name_outputs_as_sagemaker_does(tmp_path, s3_url, monkeypatch):
    """`session.upload_data` returns `s3://bucket/prefix` with no slash. SageMaker writes
    `out/part-0.csv.out` for `prefix/part-0.csv`; Batchform wrote `out/prefix/part-0.csv.out`."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_url)
    s3 = moto_client(s3_url)
    s3.create_bucket(Bucket="sdk-bucket")
    s3.put_object(Bucket="sdk-bucket", Key="model/model.tar.gz", Body=model_archive())
    local = tmp_path / "upload"
    local.mkdir()
    expected = {}
    for index in range(2):
        rows = [[index + row, row * 0.5, 1.0] for row in range(40)]
        (local / f"part-{index}.csv").write_text("".join(",".join(map(str, r)) + "\n" for r in rows))
        expected[f"part-{index}.csv.out"] = "".join(f"{sum(w * x for w, x in zip(WEIGHTS, r)) + BIAS:.4f}\n" for r in rows)

    server = s3_server(tmp_path, s3_url)
    try:
        session = sdk_session(server, "sdk-bucket")
        uri = session.upload_data(str(local), bucket="sdk-bucket", key_prefix="prefix")
        assert uri == "s3://sdk-bucket/prefix"
        model = Model(
            image_uri="batchform/python", model_data="s3://sdk-bucket/model/model.tar.gz",
            role="arn:aws:iam::000000000000:role/batchform", sagemaker_session=session, name="sdk-upload",
        )
        transformer = model.transformer(
            instance_count=1, instance_type="ml.m5.large", strategy="MultiRecord", assemble_with="Line",
            output_path="s3://sdk-bucket/sdk-out", accept="text/csv",
        )
        transformer.transform(uri, content_type="text/csv", split_type="Line", job_name="sdk-upload-job", wait=True, logs=False)
        assert session.describe_transform_job("sdk-upload-job")["TransformJobStatus"] == "Completed"
        listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="sdk-bucket", Prefix="sdk-out")["Contents"])
        assert listed == [f"sdk-out/{name}" for name in sorted(expected)]
        outputs = {name: s3.get_object(Bucket="sdk-bucket", Key=f"sdk-out/{name}")["Body"].read().decode() for name in expected}
        assert outputs == expected

        # The same URI through boto3 alone.
        client = server.client()
        client.create_transform_job(
            TransformJobName="boto3-upload-job", ModelName="sdk-upload",
            TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
                            "ContentType": "text/csv", "SplitType": "Line"},
            TransformOutput={"S3OutputPath": "s3://sdk-bucket/boto3-out", "AssembleWith": "Line"},
            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
        )
        client.get_waiter("transform_job_completed_or_stopped").wait(
            TransformJobName="boto3-upload-job", WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
        listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="sdk-bucket", Prefix="boto3-out")["Contents"])
        assert listed == [f"boto3-out/{name}" for name in sorted(expected)]
    finally:
        server.stop()


def test_colliding_keys_are_refused_naming_both(tmp_path, s3_url):
    """`in/abs.csv` and `in//abs.csv` are two S3 objects but one local output: one answer was lost."""
    s3 = moto_client(s3_url)
    s3.create_bucket(Bucket="collide")
    for key in ["in/abs.csv", "in//abs.csv"]:
        s3.put_object(Bucket="collide", Key=key, Body=b"1,2\n")
    server = s3_server(tmp_path, s3_url)
    try:
        client = server.client()
        create_model(client, "m")
        with pytest.raises(Exception) as caught:
            client.create_transform_job(
                TransformJobName="collide", ModelName="m",
                TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://collide/in/"}}},
                TransformOutput={"S3OutputPath": f"file://{tmp_path}/out"},
                TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
            )
        error = caught.value.response["Error"]
        assert error["Code"] == "ValidationException"
        assert "s3://collide/in/abs.csv" in error["Message"] and "s3://collide/in//abs.csv" in error["Message"]
        assert not (tmp_path / "out").exists()
    finally:
        server.stop()


def test_transform_with_logs_prints_the_model_servers_lines_and_returns(tmp_path, s3_url, monkeypatch, capsys):
    """The SDK's default, `logs=True`, reads CloudWatch Logs: pointed at Batchform with
    AWS_ENDPOINT_URL_CLOUDWATCH_LOGS, it prints the model's log lines and returns at the end."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_url)
    s3 = moto_client(s3_url)
    s3.create_bucket(Bucket="logs-bucket")
    s3.put_object(Bucket="logs-bucket", Key="model/model.tar.gz", Body=model_archive())
    s3.put_object(Bucket="logs-bucket", Key="input/rows.csv", Body="1,2,3\n4,5,6\n")
    server = s3_server(tmp_path, s3_url)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", server.url)
        session = sdk_session(server, "logs-bucket")
        model = Model(
            image_uri="batchform/python", model_data="s3://logs-bucket/model/model.tar.gz",
            role="arn:aws:iam::000000000000:role/batchform", sagemaker_session=session, name="sdk-logged",
        )
        transformer = model.transformer(
            instance_count=1, instance_type="ml.m5.large", output_path="s3://logs-bucket/output/", accept="text/csv",
        )
        transformer.transform("s3://logs-bucket/input/", content_type="text/csv", split_type="Line",
                              job_name="sdk-logged-job", wait=True, logs=True)
        printed = capsys.readouterr().out
        assert "batchform_serve" in printed and "model loaded" in printed, printed[-2000:]
        assert session.describe_transform_job("sdk-logged-job")["TransformJobStatus"] == "Completed"
    finally:
        server.stop()
