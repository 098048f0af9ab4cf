"""boto3's SageMaker client against `batchform serve`: the only change is endpoint_url."""
import json
import subprocess
import time
import urllib.request

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from botocore.exceptions import ClientError, WaiterError

from conftest import BINARY, KEY_ID, SECRET, create_model, job_request, make_inputs, read_outputs, wait_for


def error_of(call, *args, **kwargs):
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_create_wait_describe_and_outputs(server, tmp_path):
    client = server.client()
    expected = make_inputs(tmp_path / "in", files=3, lines=200)
    create_model(client, "reverser")
    described_model = client.describe_model(ModelName="reverser")
    assert described_model["ModelArn"].endswith(":model/reverser")
    assert described_model["PrimaryContainer"]["Image"].endswith("test-model/serve")

    arn = client.create_transform_job(
        **job_request("job-one", "reverser", tmp_path / "in", tmp_path / "out", MaxPayloadInMB=1)
    )["TransformJobArn"]
    assert arn.endswith(":transform-job/job-one")
    described = wait_for(client, "job-one")

    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert read_outputs(tmp_path / "out") == expected
    # Defaults echoed as SageMaker's Describe shows them.
    assert described["TransformInput"]["CompressionType"] == "None"
    assert described["TransformOutput"]["KmsKeyId"] == ""
    assert described["DataProcessing"] == {"InputFilter": "$", "OutputFilter": "$", "JoinSource": "None"}
    assert described["MaxPayloadInMB"] == 1 and "MaxConcurrentTransforms" not in described
    assert described["CreationTime"] <= described["TransformStartTime"] <= described["TransformEndTime"]
    # Batchform's progress member, read from the raw answer (boto3 drops members it does not know).
    progress = raw_describe(server, "job-one")["BatchformProgress"]
    assert progress["ObjectsTotal"] == 3 and progress["ObjectsCompleted"] == 3 and progress["ObjectsFailed"] == 0
    assert progress["RecordsProcessed"] == 600 and progress["RecordsTotal"] == 600
    assert progress["BytesProcessed"] == progress["BytesTotal"] == sum(
        p.stat().st_size for p in (tmp_path / "in").iterdir()
    )
    assert progress["Instances"][0]["State"] == "stopped" and progress["Instances"][0]["Invocations"] == 3


def raw_describe(server, name):
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=server.url + "/", data=json.dumps({"TransformJobName": name}),
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker.DescribeTransformJob"},
    )
    return json.loads(send_signed(request).read())


def send_signed(request, key_id=KEY_ID, secret=SECRET):
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(key_id, secret), "sagemaker", "us-east-1").add_auth(request)
    prepared = request.prepare()
    return urllib.request.urlopen(
        urllib.request.Request(
            prepared.url, data=prepared.body.encode() if isinstance(prepared.body, str) else prepared.body,
            headers=dict(prepared.headers), method=prepared.method,
        )
    )


def test_list_with_pagination_filters_and_sorting(server, tmp_path):
    client = server.client()
    make_inputs(tmp_path / "in", files=1, lines=3)
    create_model(client, "reverser")
    names = [f"list-job-{index}" for index in range(7)]
    for name in names:
        client.create_transform_job(**job_request(name, "reverser", tmp_path / "in", tmp_path / f"out-{name}"))
        time.sleep(0.01)
    paginator = client.get_paginator("list_transform_jobs")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": 3}))
    assert [len(page["TransformJobSummaries"]) for page in pages] == [3, 3, 1]
    listed = [job["TransformJobName"] for page in pages for job in page["TransformJobSummaries"]]
    assert listed == list(reversed(names))  # CreationTime, Descending by default

    by_name = client.list_transform_jobs(SortBy="Name", SortOrder="Ascending", MaxResults=100)
    assert [job["TransformJobName"] for job in by_name["TransformJobSummaries"]] == sorted(names)
    assert "NextToken" not in by_name
    only = client.list_transform_jobs(NameContains="job-3")["TransformJobSummaries"]
    assert [job["TransformJobName"] for job in only] == ["list-job-3"]

    for name in names:
        wait_for(client, name)
    completed = client.list_transform_jobs(StatusEquals="Completed", MaxResults=100)["TransformJobSummaries"]
    assert len(completed) == 7 and all("TransformEndTime" in job for job in completed)
    assert client.list_transform_jobs(StatusEquals="Failed")["TransformJobSummaries"] == []

    assert error_of(client.list_transform_jobs, NextToken="not-a-token")[0] == "ValidationException"
    code, message = error_of(client.list_transform_jobs, MaxResults=101)
    assert code == "ValidationException" and "maxResults" in message

    models = client.list_models(NameContains="rev")["Models"]
    assert [model["ModelName"] for model in models] == ["reverser"]


def test_stop_a_running_job(server, tmp_path):
    client = server.client()
    make_inputs(tmp_path / "in", files=6, lines=20)
    create_model(client, "slow", env={"TEST_DELAY_MS": "1500"})
    client.create_transform_job(
        **job_request("stop-me", "slow", tmp_path / "in", tmp_path / "out", BatchStrategy="SingleRecord")
    )
    deadline = time.time() + 60
    while raw_describe(server, "stop-me").get("BatchformProgress", {}).get("Phase") != "transforming":
        assert time.time() < deadline, "the job never started transforming"
        time.sleep(0.2)
    client.stop_transform_job(TransformJobName="stop-me")
    assert client.describe_transform_job(TransformJobName="stop-me")["TransformJobStatus"] in ("Stopping", "Stopped")
    described = wait_for(client, "stop-me")
    assert described["TransformJobStatus"] == "Stopped"
    assert read_outputs(tmp_path / "out") == {}  # no object had all its 20 records answered
    assert list((tmp_path / "out").glob("*")) == [] if (tmp_path / "out").exists() else True
    code, _ = error_of(client.stop_transform_job, TransformJobName="no-such-job")
    assert code == "ValidationException"


def test_errors(server, tmp_path):
    client = server.client()
    make_inputs(tmp_path / "in", files=1, lines=3)
    create_model(client, "reverser")
    client.create_transform_job(**job_request("dupe", "reverser", tmp_path / "in", tmp_path / "out"))

    code, message = error_of(client.create_transform_job, **job_request("dupe", "reverser", tmp_path / "in", tmp_path / "o2"))
    assert code == "ResourceInUse" and "already exists" in message
    code, message = error_of(client.create_model, ModelName="reverser", PrimaryContainer={"Image": "/bin/true"})
    assert code == "ValidationException" and "already existing model" in message
    code, message = error_of(client.create_transform_job, **job_request("j2", "no-model", tmp_path / "in", tmp_path / "o"))
    assert (code, message) == ("ValidationException", 'Could not find model "arn:aws:sagemaker:us-east-1:000000000000:model/no-model".')
    code, message = error_of(client.describe_transform_job, TransformJobName="missing")
    assert code == "ValidationException" and "Could not find transform job" in message
    code, message = error_of(client.create_transform_job, **job_request("bad_name", "reverser", tmp_path / "in", tmp_path / "o"))
    assert code == "ValidationException" and message.startswith("1 validation error detected: Value 'bad_name' at 'transformJobName'")
    code, message = error_of(client.create_transform_job, **job_request("empty", "reverser", tmp_path / "nothing", tmp_path / "o"))
    assert code == "ValidationException" and "No objects found" in message
    code, message = error_of(client.create_transform_job, **job_request("outside", "reverser", "/etc", tmp_path / "o"))
    assert code == "ValidationException" and "outside the local folders" in message
    code, _ = error_of(client.delete_model, ModelName="no-model")
    assert code == "ValidationException"

    # The waiter treats ValidationException as a failure, as against SageMaker.
    with pytest.raises(WaiterError):
        client.get_waiter("transform_job_completed_or_stopped").wait(
            TransformJobName="missing", WaiterConfig={"Delay": 1, "MaxAttempts": 2}
        )

    code, message = error_of(server.client(secret="wrong-secret").list_transform_jobs)
    assert code == "InvalidSignatureException" and "signature" in message
    code, _ = error_of(server.client(key_id="AKIDUNKNOWN").list_models)
    assert code == "UnrecognizedClientException"

    unknown = botocore.awsrequest.AWSRequest(
        method="POST", url=server.url + "/", data="{}",
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker.CreateEndpoint"},
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        send_signed(unknown)
    assert answer.value.code == 400 and json.loads(answer.value.read())["__type"] == "UnknownOperationException"

    too_big = botocore.awsrequest.AWSRequest(
        method="POST", url=server.url + "/", data="x" * (2 << 20),
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker.ListModels"},
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        send_signed(too_big)
    assert answer.value.code == 413

    unsigned = urllib.request.Request(server.url + "/", data=b"{}", headers={"X-Amz-Target": "SageMaker.ListModels"})
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(unsigned)
    assert json.loads(answer.value.read())["__type"] == "MissingAuthenticationTokenException"

    wait_for(client, "dupe")
    code, message = error_of(client.stop_transform_job, TransformJobName="dupe")
    assert code == "ValidationException" and "already ended (Completed)" in message


def test_failed_job_reports_where(server, tmp_path):
    client = server.client()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text("a\nb\n")
    (folder / "bad.txt").write_text("ok\nFAIL here\n")
    create_model(client, "reverser")
    client.create_transform_job(**job_request("fails", "reverser", folder, tmp_path / "out"))
    described = wait_for(client, "fails")
    assert described["TransformJobStatus"] == "Failed"
    assert "bad.txt" in described["FailureReason"] and "HTTP 400" in described["FailureReason"]
    assert read_outputs(tmp_path / "out") == {"good.txt.out": "a\nb\n"}
    summary = client.list_transform_jobs()["TransformJobSummaries"][0]
    assert summary["TransformJobStatus"] == "Failed" and "bad.txt" in summary["FailureReason"]


def test_cli_verbs_logs_metrics_and_health(server, tmp_path):
    client = server.client()
    make_inputs(tmp_path / "in", files=2, lines=10)
    create_model(client, "reverser")
    client.create_transform_job(**job_request("observed", "reverser", tmp_path / "in", tmp_path / "out"))
    wait_for(client, "observed")

    listed = server.cli("list").stdout
    assert "observed" in listed and "Completed" in listed
    described = json.loads(server.cli("describe", "observed").stdout)
    assert described["TransformJobStatus"] == "Completed" and described["BatchformProgress"]["RecordsProcessed"] == 20
    logs = server.cli("logs", "observed").stdout
    assert "[sagemaker logs]" in logs and "Completed" in logs and "==> instance-1 <==" in logs
    missing = server.cli("describe", "nope", check=False)
    assert missing.returncode == 1 and "ValidationException" in missing.stderr

    metrics = urllib.request.urlopen(server.url + "/metrics").read().decode()
    assert 'batchform_transform_jobs{status="Completed"} 1' in metrics
    assert "batchform_records_processed_total 20" in metrics
    assert "batchform_invocation_duration_seconds_count 2" in metrics
    assert urllib.request.urlopen(server.url + "/healthz").read() == b"ok\n"


def test_refuses_to_listen_beyond_loopback_without_credentials(tmp_path):
    result = subprocess.run(
        [str(BINARY), "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2 and "without credentials" in result.stderr
