"""CloudWatch Logs through `batchform serve`: boto3's `logs` client, the AWS CLI and the SageMaker
SDK's `logs=True` read each instance's model server log as `/aws/sagemaker/TransformJobs`
streams named `<JobName>/instance-<n>`."""
import json
import os
import subprocess
from pathlib import Path

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from conftest import KEY_ID, SECRET, create_model, job_request, make_inputs, wait_for

GROUP = "/aws/sagemaker/TransformJobs"
ROOT = Path(__file__).resolve().parents[2]


def logs_client(server):
    return boto3.client(
        "logs", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET, config=botocore.config.Config(retries={"max_attempts": 1}),
    )


def finished_job(server, tmp_path, name="logged", instances=2):
    client = server.client()
    make_inputs(tmp_path / "in", files=4, lines=20)
    create_model(client, "talker", env={"TEST_LOG_REQUESTS": "1"})
    client.create_transform_job(**job_request(
        name, "talker", tmp_path / "in", tmp_path / "out",
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": instances},
    ))
    described = wait_for(client, name)
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")


def test_streams_events_and_paging_with_boto3(server, tmp_path):
    finished_job(server, tmp_path)
    logs = logs_client(server)
    streams = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="logged/", orderBy="LogStreamName")
    names = [s["logStreamName"] for s in streams["logStreams"]]
    assert names == ["logged/instance-1", "logged/instance-2"] and "nextToken" not in streams

    everything = []
    for name in names:
        page = logs.get_log_events(logGroupName=GROUP, logStreamName=name, startFromHead=True, limit=2)
        while True:
            everything += [event["message"] for event in page["events"]]
            following = logs.get_log_events(
                logGroupName=GROUP, logStreamName=name, startFromHead=True, limit=2, nextToken=page["nextForwardToken"]
            )
            if not following["events"]:
                # At the end the forward token stays the same, as CloudWatch's does.
                assert following["nextForwardToken"] == page["nextForwardToken"]
                break
            page = following
    assert sum("test model: listening on" in line for line in everything) == 2
    assert sum(line.startswith("test model: request ") for line in everything) == 4
    assert all(isinstance(event["timestamp"], int) for event in page["events"])

    matched = logs.filter_log_events(logGroupName=GROUP, logStreamNamePrefix="logged/", filterPattern='"request"')
    assert len(matched["events"]) == 4 and {e["logStreamName"] for e in matched["events"]} <= set(names)

    for call, arguments in [
        (logs.get_log_events, {"logGroupName": GROUP, "logStreamName": "logged/instance-9"}),
        (logs.get_log_events, {"logGroupName": "/aws/sagemaker/Nope", "logStreamName": "logged/instance-1"}),
        (logs.describe_log_streams, {"logGroupName": "/aws/lambda/x"}),
    ]:
        with pytest.raises(ClientError) as caught:
            call(**arguments)
        assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_wrong_key_is_refused_for_logs_too(server):
    bad = boto3.client(
        "logs", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=KEY_ID,
        aws_secret_access_key="wrong", config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as caught:
        bad.describe_log_streams(logGroupName=GROUP)
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"


def aws_cli():
    """The AWS CLI in a virtual environment of its own (it pins its own botocore)."""
    folder = ROOT / ".venv-awscli"
    if not (folder / "bin" / "aws").exists():
        subprocess.run(["python3", "-m", "venv", str(folder)], check=True)
        subprocess.run([str(folder / "bin/pip"), "install", "--quiet", "--disable-pip-version-check", "awscli"],
                       check=True)
    return str(folder / "bin" / "aws")


def test_the_aws_cli_reads_a_finished_jobs_logs(server, tmp_path):
    finished_job(server, tmp_path, name="cli-job", instances=1)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1"}
    run = lambda *args: json.loads(subprocess.run(  # noqa: E731
        [aws_cli(), "--endpoint-url", server.url, "logs", *args, "--log-group-name", GROUP, "--output", "json"],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout)
    events = run("get-log-events", "--log-stream-name", "cli-job/instance-1", "--start-from-head")["events"]
    assert any("listening on" in event["message"] for event in events)
    filtered = run("filter-log-events", "--filter-pattern", "request")["events"]
    assert len(filtered) == 4 and all(e["logStreamName"] == "cli-job/instance-1" for e in filtered)
