"""Record errors through `batchform serve`: the settings go in the job's Environment (as boto3 and
the SDK send them), the report comes out of `batchform jobs errors NAME`."""
import json
import urllib.request

from conftest import create_model, job_request, wait_for


def test_a_bad_record_is_isolated_and_reported_through_the_api(server, tmp_path):
    client = server.client()
    folder = tmp_path / "in"
    folder.mkdir()
    rows = [f"row-{index:04d}" + (" FAIL" if index in (7, 88) else "") for index in range(120)]
    (folder / "data.txt").write_text("".join(row + "\n" for row in rows))
    create_model(client, "reverser")
    client.create_transform_job(**job_request(
        "isolating", "reverser", folder, tmp_path / "out",
        Environment={"BATCHFORM_MAX_RECORD_ERRORS": "5", "BATCHFORM_RECORD_ERROR_PLACEHOLDER": "n/a"},
    ))
    described = wait_for(client, "isolating")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    answers = (tmp_path / "out" / "data.txt.out").read_text().splitlines()
    assert answers == ["n/a" if index in (7, 88) else row[::-1] for index, row in enumerate(rows)]

    report = [json.loads(line) for line in server.cli("errors", "isolating").stdout.splitlines()]
    assert [(line["record"], line["status"]) for line in report] == [(7, 400), (88, 400)]
    assert report[0]["offset"] == sum(len(row) + 1 for row in rows[:7])
    assert report[0]["input"].endswith("/in/data.txt") and "FAIL" in report[0]["message"]

    progress = json.loads(server.cli("describe", "isolating").stdout)["BatchformProgress"]
    assert progress["RecordsFailed"] == 2
    metrics = urllib.request.urlopen(server.url + "/metrics").read().decode()
    assert "batchform_record_errors_total 2" in metrics


def test_errors_of_a_job_that_isolated_nothing_say_why(server, tmp_path):
    client = server.client()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("x\n")
    create_model(client, "reverser")
    client.create_transform_job(**job_request("plain", "reverser", folder, tmp_path / "out"))
    wait_for(client, "plain")
    missing = server.cli("errors", "plain", check=False)
    assert missing.returncode == 1
    assert "did not set BATCHFORM_MAX_RECORD_ERRORS" in missing.stderr + missing.stdout
