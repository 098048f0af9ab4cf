"""What `batchform serve` and `batchform jobs watch` say about jobs."""
import json
import subprocess

from conftest import Server, create_model, job_request, make_inputs, wait_for


def test_serve_logs_each_job_event_as_json_lines(tmp_path):
    server = Server(tmp_path / "data", tmp_path, args=["--log-format", "json"]).start()
    try:
        client = server.client()
        make_inputs(tmp_path / "in", files=2, lines=5)
        (tmp_path / "in" / "bad.txt").write_text("FAIL\n")
        create_model(client, "m")
        client.create_transform_job(**job_request("evented", "m", tmp_path / "in", tmp_path / "out"))
        assert wait_for(client, "evented")["TransformJobStatus"] == "Failed"

        watched = server.cli("watch", "evented", "--interval", "0.2", check=False)
        assert watched.returncode == 1
        assert "evented Failed:" in watched.stderr and "objects 3/3 (1 failed)" in watched.stderr
        assert "FailureReason: ClientError" in watched.stderr
    finally:
        server.stop()
    events = [json.loads(line) for line in open(server.log.name) if line.startswith("{")]
    by_message = {event["message"]: event for event in events}
    assert by_message["job created"]["job"] == "evented"
    assert by_message["job started"]["job"] == "evented"
    assert by_message["object failed"]["input"].endswith("/in/bad.txt")
    assert by_message["job failed"]["level"] == "error" and "ClientError" in by_message["job failed"]["reason"]
    assert "shutting down" in by_message and "stopped" in by_message


def test_jobs_watch_follows_a_job_to_completion(server, tmp_path):
    client = server.client()
    make_inputs(tmp_path / "in", files=2, lines=20)
    create_model(client, "m")
    client.create_transform_job(**job_request("watched", "m", tmp_path / "in", tmp_path / "out"))
    watched = server.cli("watch", "watched", "--interval", "0.2", check=False)
    assert watched.returncode == 0, watched.stderr
    assert watched.stderr.strip().splitlines()[-1].startswith("watched Completed: 100%, objects 2/2")


def test_a_bad_log_format_is_refused(tmp_path):
    result = subprocess.run([str(__import__("conftest").BINARY), "serve", "--log-format", "xml", "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--log-format must be text or json" in result.stderr
