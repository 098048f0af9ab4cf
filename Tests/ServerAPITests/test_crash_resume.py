"""kill -9 the server mid-job, start it again: the job finishes, redoing only unfinished objects."""
import json
import time
from pathlib import Path

from conftest import Server, create_model, job_request, make_inputs, read_outputs, wait_for


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


def test_killed_server_resumes_job_with_identical_outputs(tmp_path):
    expected = make_inputs(tmp_path / "in", files=12, lines=40)
    reports = tmp_path / "reports"
    reports.mkdir()
    out = tmp_path / "out"
    first = Server(tmp_path / "data", tmp_path).start()
    try:
        client = first.client()
        create_model(client, "slow", env={"TEST_DELAY_MS": "700", "TEST_REPORT_DIR": str(reports)})
        client.create_transform_job(**job_request("crashy", "slow", tmp_path / "in", out, MaxConcurrentTransforms=1))
        deadline = time.time() + 60
        while len(list(out.glob("*.out"))) < 3:
            assert time.time() < deadline, "no outputs appeared"
            time.sleep(0.02)
        first.kill9()
    finally:
        first.stop()
    before = {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in out.glob("*.out")}
    assert 3 <= len(before) < 12, "the kill must land mid-job"
    first_run_servers = [int(path.stem.split("-")[1]) for path in reports.glob("env-*.json")]
    assert first_run_servers

    second = Server(tmp_path / "data", tmp_path).start()
    try:
        client = second.client()
        described = wait_for(client, "crashy")
        assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
        outputs = read_outputs(out)
        assert outputs == expected
        # The killed run's writers left temporary files; the resumed run removes them.
        assert sorted(path.name for path in out.iterdir() if ".batchform-" in path.name) == []

        # An uninterrupted run of the same job gives the same bytes.
        client.create_transform_job(**job_request("reference", "slow", tmp_path / "in", tmp_path / "ref"))
        assert wait_for(client, "reference")["TransformJobStatus"] == "Completed"
        assert read_outputs(tmp_path / "ref") == outputs

        # Outputs committed before the kill were not written again.
        after = {name: ((out / name).stat().st_ino, (out / name).stat().st_mtime_ns) for name in before}
        assert after == before
        progress = json.loads(second.cli("describe", "crashy").stdout)["BatchformProgress"]
        assert progress["ObjectsResumed"] >= len(before) and progress["ObjectsCompleted"] == 12
        logs = second.cli("logs", "crashy").stdout
        assert "resuming the job" in logs and "Resuming:" in logs
        # The killed server's model processes were ended by the restarted one.
        assert [pid for pid in first_run_servers if alive(pid)] == []
    finally:
        second.stop()
