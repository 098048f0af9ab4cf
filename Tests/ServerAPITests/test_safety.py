"""What `batchform serve` must refuse or survive: paths outside its folders, numbers out of
range, a container asking for too much, a crash, and hosts that only look like loopback."""
import json
import signal
import subprocess
import time

import botocore.awsrequest
import pytest

from conftest import BINARY, Server, create_model, job_request, make_inputs, wait_for
from test_boto3 import error_of, raw_describe, send_signed


def signed_call(server, operation, body):
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=server.url + "/", data=json.dumps(body) if not isinstance(body, str) else body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"SageMaker.{operation}"},
    )
    try:
        return 200, json.loads(send_signed(request).read())
    except Exception as error:  # urllib's HTTPError carries the AWS JSON error body
        return error.code, json.loads(error.read())


def test_a_manifest_cannot_reach_outside_the_allowed_folders(server, tmp_path):
    client = server.client()
    create_model(client, "m")
    manifest = tmp_path / "etc.manifest"
    manifest.write_text(json.dumps([{"prefix": "/etc/"}, "passwd"]))
    request = job_request("etc-job", "m", tmp_path, tmp_path / "out")
    request["TransformInput"]["DataSource"]["S3DataSource"] = {"S3DataType": "ManifestFile", "S3Uri": f"file://{manifest}"}
    code, message = error_of(client.create_transform_job, **request)
    assert code == "ValidationException"
    assert "/etc/" in message and "outside the local folders" in message
    assert not (tmp_path / "out").exists()


def test_a_job_level_submit_directory_is_confined(server, tmp_path):
    client = server.client()
    make_inputs(tmp_path / "in", files=1, lines=3)
    create_model(client, "m")
    request = job_request("submit-job", "m", tmp_path / "in", tmp_path / "out", Environment={"SAGEMAKER_SUBMIT_DIRECTORY": "/etc"})
    code, message = error_of(client.create_transform_job, **request)
    assert code == "ValidationException"
    assert "Environment SAGEMAKER_SUBMIT_DIRECTORY /etc" in message and "outside the local folders" in message


def test_an_output_folder_linked_out_is_refused(server, tmp_path):
    client = server.client()
    make_inputs(tmp_path / "in", files=1, lines=3)
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_path / "out").symlink_to(outside)
    create_model(client, "m")
    code, message = error_of(client.create_transform_job, **job_request("linked", "m", tmp_path / "in", tmp_path / "out"))
    assert code == "ValidationException" and "outside the local folders" in message
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("member, value, constraint", [
    (("TransformResources", "InstanceCount"), "1e30", "less than or equal to 100"),
    (("TransformResources", "InstanceCount"), "99999999999999999999", "less than or equal to 100"),
    (("MaxConcurrentTransforms",), "4611686018427387904", "less than or equal to 2147483647"),
    (("MaxPayloadInMB",), "-1e25", "greater than or equal to 0"),
])
def test_numbers_out_of_range_get_range_errors(server, tmp_path, member, value, constraint):
    client = server.client()
    make_inputs(tmp_path / "in", files=1, lines=3)
    create_model(client, "m")
    # Put the raw number text into the JSON, as a non-Python client could send it.
    request = job_request("range-job", "m", tmp_path / "in", tmp_path / "out")
    target = request
    for key in member[:-1]:
        target = target[key]
    target[member[-1]] = "@NUMBER@"
    body = json.dumps(request).replace('"@NUMBER@"', value)
    status, answer = signed_call(server, "CreateTransformJob", body)
    path = ".".join(part[0].lower() + part[1:] for part in member)
    assert status == 400 and answer["__type"] == "ValidationException", answer
    assert "Value '" in answer["message"] and f"at '{path}'" in answer["message"] and constraint in answer["message"], answer
    assert "not valid JSON" not in answer["message"]
    assert client.list_transform_jobs()["TransformJobSummaries"] == []


def test_a_container_asking_for_too_much_fails_its_job_and_the_server_restarts_cleanly(tmp_path):
    answer = '{"MaxConcurrentTransforms": 4611686018427387904, "MaxPayloadInMB": 6}'
    first = Server(tmp_path / "data", tmp_path).start()
    try:
        client = first.client()
        make_inputs(tmp_path / "in", files=1, lines=5)
        create_model(client, "greedy", env={"TEST_EXEC_PARAMS": answer})
        request = job_request("greedy-job", "greedy", tmp_path / "in", tmp_path / "out")
        del request["BatchStrategy"]
        client.create_transform_job(**request)
        described = wait_for(client, "greedy-job")
        assert described["TransformJobStatus"] == "Failed"
        assert f"/execution-parameters answered {answer}" in described["FailureReason"]
        assert first.process.poll() is None, "the server must not crash"
    finally:
        first.stop()
    second = Server(tmp_path / "data", tmp_path).start()
    try:
        client = second.client()
        assert client.describe_transform_job(TransformJobName="greedy-job")["TransformJobStatus"] == "Failed"
        create_model(client, "plain")
        client.create_transform_job(**job_request("after", "plain", tmp_path / "in", tmp_path / "out2"))
        assert wait_for(client, "after")["TransformJobStatus"] == "Completed"
    finally:
        second.stop()


def test_a_job_running_when_the_server_crashed_is_failed_not_resumed(tmp_path):
    """A crash (here SIGSEGV) is written down; the next start fails that job with the reason
    instead of resuming it, so one bad request cannot take the service down for good."""
    first = Server(tmp_path / "data", tmp_path).start()
    make_inputs(tmp_path / "in", files=4, lines=40)
    client = first.client()
    create_model(client, "slow", env={"TEST_DELAY_MS": "300"})
    client.create_transform_job(**job_request("crashed", "slow", tmp_path / "in", tmp_path / "out", BatchStrategy="SingleRecord"))
    deadline = time.time() + 60
    while raw_describe(first, "crashed").get("BatchformProgress", {}).get("Phase") != "transforming":
        assert time.time() < deadline
        time.sleep(0.2)
    first.process.send_signal(signal.SIGSEGV)
    first.process.wait(timeout=30)
    assert first.process.returncode != 0
    second = Server(tmp_path / "data", tmp_path).start()
    try:
        client = second.client()
        described = client.describe_transform_job(TransformJobName="crashed")
        assert described["TransformJobStatus"] == "Failed"
        assert "crashed (signal 11)" in described["FailureReason"]
        # A kill -9 is not a crash: that job would resume (test_crash_resume covers it).
        create_model(client, "plain")
        client.create_transform_job(**job_request("after-crash", "plain", tmp_path / "in", tmp_path / "out2"))
        assert wait_for(client, "after-crash")["TransformJobStatus"] == "Completed"
    finally:
        second.stop()


def test_arns_carry_the_signed_region_and_the_account_id(tmp_path):
    server = Server(tmp_path / "data", tmp_path, args=["--account-id", "123456789012"]).start()
    try:
        import boto3
        from conftest import KEY_ID, SECRET
        client = boto3.client(
            "sagemaker", endpoint_url=server.url, region_name="eu-west-1", aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
        )
        arn = client.create_model(ModelName="regional", PrimaryContainer={"Image": "/bin/true"})["ModelArn"]
        assert arn == "arn:aws:sagemaker:eu-west-1:123456789012:model/regional"
        code, message = error_of(client.describe_transform_job, TransformJobName="nope")
        assert message == 'Could not find transform job "arn:aws:sagemaker:eu-west-1:123456789012:transform-job/nope".'
    finally:
        server.stop()


@pytest.mark.parametrize("host", ["127.0.0.1.nip.io", "localhost.example.com"])
def test_a_name_that_only_looks_like_loopback_needs_credentials(tmp_path, host):
    result = subprocess.run(
        [str(BINARY), "serve", "--host", host, "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2 and "without credentials" in result.stderr, result.stderr


def test_a_bad_account_id_is_refused(tmp_path):
    result = subprocess.run(
        [str(BINARY), "serve", "--account-id", "12ab", "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2 and "--account-id must be 12 digits" in result.stderr, result.stderr
