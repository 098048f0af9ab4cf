"""`batchform serve` as a service group: SIGTERM stops it in order, and a locked database does not
stop it answering."""
import json
import os
import signal
import sqlite3
import threading
import time
import urllib.request

from conftest import Server, create_model, job_request, make_inputs, read_outputs, wait_for
from test_boto3 import raw_describe


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_sigterm_stops_accepting_lets_jobs_reach_a_resumable_state_and_stops_the_model_servers(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    first = Server(tmp_path / "data", tmp_path, env={"TEST_REPORT_DIR": str(reports)}).start()
    client = first.client()
    expected = make_inputs(tmp_path / "in", files=6, lines=30)
    create_model(client, "slow", env={"TEST_DELAY_MS": "150"})
    client.create_transform_job(**job_request("graceful", "slow", tmp_path / "in", tmp_path / "out",
                                              BatchStrategy="SingleRecord"))
    deadline = time.time() + 60
    while not list(reports.glob("requests-*")):
        assert time.time() < deadline, "the job never started"
        time.sleep(0.1)
    servers = [int(path.stem.split("-")[1]) for path in reports.glob("env-*.json")]
    assert servers and all(alive(pid) for pid in servers)
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=60) == 0
    assert [pid for pid in servers if alive(pid)] == []
    log = open(first.log.name).read()
    assert "shutting down" in log and "stopped" in log
    # Nothing half-written, and the job resumes at the next start.
    assert not [path for path in (tmp_path / "out").glob("*") if ".batchform-" in path.name] if (tmp_path / "out").exists() else True
    second = Server(tmp_path / "data", tmp_path).start()
    try:
        described = wait_for(second.client(), "graceful")
        assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
        assert read_outputs(tmp_path / "out") == expected
    finally:
        second.stop()


def test_a_locked_database_does_not_stop_healthz_or_describe(server, tmp_path):
    """SQLite runs on its own thread: a writer waiting out another process's lock (5 s busy
    timeout) does not hold the server's async threads, so other requests still answer."""
    client = server.client()
    make_inputs(tmp_path / "in", files=3, lines=200)
    create_model(client, "m", env={"TEST_DELAY_MS": "5"})
    client.create_transform_job(**job_request("locked", "m", tmp_path / "in", tmp_path / "out", BatchStrategy="SingleRecord"))
    database = sqlite3.connect(str(tmp_path / "data" / "batchform.db"), timeout=30, isolation_level=None,
                               check_same_thread=False)
    database.execute("BEGIN IMMEDIATE")  # the job's log and state writes now wait for this lock
    release = threading.Timer(4.0, lambda: database.execute("COMMIT"))
    release.start()
    try:
        time.sleep(1.0)  # the job's writers are now blocked on the lock
        started = time.monotonic()
        with urllib.request.urlopen(server.url + "/healthz", timeout=10) as answer:
            assert answer.read() == b"ok\n"
        healthz = time.monotonic() - started
        started = time.monotonic()
        described = raw_describe(server, "locked")
        describe = time.monotonic() - started
        assert described["TransformJobName"] == "locked"
        assert healthz < 1.0 and describe < 1.0, (healthz, describe)
    finally:
        release.join()
        database.close()
    assert wait_for(client, "locked")["TransformJobStatus"] == "Completed"
    assert json.dumps(read_outputs(tmp_path / "out"))
