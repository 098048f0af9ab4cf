"""The built-in server as a real process: workers, readiness, keep-alive, errors."""
import http.client
import json
import os
import socket
import subprocess
import sys
import time

import pytest

PACKAGE_DIR = os.path.join(os.path.dirname(__file__), "..")

INFERENCE = '''
import os, time

class Teapot(Exception):
    status_code = 418

def model_fn(model_dir):
    if os.environ.get("BROKEN_MODEL"):
        raise ValueError("broken weights")
    time.sleep(float(os.environ.get("LOAD_SECONDS", "0")))
    if os.environ.get("THREADED_MODEL"):
        import threading
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
    with open(os.path.join(model_dir, "loads.txt"), "a") as f:
        f.write(f"{os.getpid()}\\n")
    return "model"

def transform_fn(model, body, content_type, accept, context):
    text = body if isinstance(body, str) else bytes(body).decode()
    if text == "crash":
        os._exit(9)
    if text == "teapot":
        raise Teapot("short and stout")
    if text == "boom":
        raise RuntimeError("the model broke")
    if text == "not-found":
        context.set_response_status(404)
        return "no such item", "text/plain"
    if text == "created":
        from sagemaker_containers.beta.framework import worker
        return worker.Response("made", status=201, mimetype="text/plain")
    return {"pid": os.getpid(), "omp": os.environ.get("OMP_NUM_THREADS"), "length": len(text)}, "application/json"
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    started = []

    def start(workers=2, load_seconds=0.0, requirements=None, extra_env=None):
        (tmp_path / "code").mkdir(exist_ok=True)
        (tmp_path / "code" / "inference.py").write_text(INFERENCE)
        if requirements is not None:
            (tmp_path / "code" / "requirements.txt").write_text(requirements)
        port = free_port()
        env = dict(os.environ, SM_MODEL_DIR=str(tmp_path), SAGEMAKER_BIND_TO_PORT=str(port),
                   SAGEMAKER_MODEL_SERVER_WORKERS=str(workers), LOAD_SECONDS=str(load_seconds),
                   PYTHONPATH=PACKAGE_DIR, BATCHFORM_REQUIREMENTS_CACHE=str(tmp_path / "cache"))
        env.pop("OMP_NUM_THREADS", None)
        env.update(extra_env or {})
        process = subprocess.Popen([sys.executable, "-m", "batchform_serve", "serve"], env=env,
                                   stderr=subprocess.PIPE, text=True)
        started.append(process)
        return process, port

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)


def get(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.read()


def wait_ready(port, seconds=20):
    deadline = time.monotonic() + seconds
    statuses = []
    while time.monotonic() < deadline:
        try:
            status, _ = get(port, "/ping")
            statuses.append(status)
            if status == 200:
                return statuses
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"never ready: {statuses}")


def post(connection, body, headers=None):
    connection.request("POST", "/invocations", body=body, headers=headers or {"Content-Type": "text/plain"})
    response = connection.getresponse()
    return response.status, response.read()


def test_ping_waits_for_every_worker_and_each_loads_the_model_once(server, tmp_path):
    _, port = server(workers=2, load_seconds=1.0)
    statuses = wait_ready(port)
    assert 503 in statuses and statuses[-1] == 200
    loads = (tmp_path / "loads.txt").read_text().split()
    assert len(loads) == 2 and len(set(loads)) == 2


def test_keep_alive_connection_serves_many_requests(server):
    _, port = server(workers=2)
    wait_ready(port)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    answers = [post(connection, b"x" * n) for n in range(1, 30)]
    assert all(status == 200 for status, _ in answers)
    assert [json.loads(body)["length"] for _, body in answers] == list(range(1, 30))
    assert connection.sock is not None  # never closed by the server


def test_connections_are_spread_evenly_over_the_workers(server):
    # Left to the kernel, one worker may take several connections while another gets none.
    _, port = server(workers=3)
    wait_ready(port)
    time.sleep(0.2)  # the pings' connections are closed on the server's side too
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=5) for _ in range(6)]
    pids = [json.loads(post(connection, b"x")[1])["pid"] for connection in connections]
    assert sorted(pids.count(pid) for pid in set(pids)) == [2, 2, 2], pids
    # Each keeps its worker.
    assert [json.loads(post(connection, b"y")[1])["pid"] for connection in connections] == pids


def test_chunked_request_bodies_are_read(server):
    _, port = server(workers=1)
    wait_ready(port)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("POST", "/invocations", body=iter([b"abc", b"defg"]),
                       headers={"Content-Type": "text/plain", "Transfer-Encoding": "chunked"}, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 200 and json.loads(response.read())["length"] == 7


def test_threads_are_limited_per_worker_and_execution_parameters_name_the_workers(server):
    _, port = server(workers=2)
    wait_ready(port)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    _, body = post(connection, b"x")
    assert json.loads(body)["omp"] == str(max(1, (os.cpu_count() or 1) // 2))
    status, body = get(port, "/execution-parameters")
    assert status == 200
    assert json.loads(body) == {"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}


def test_errors_use_the_exceptions_status_or_500_with_its_message(server):
    _, port = server(workers=1)
    wait_ready(port)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    assert post(connection, b"teapot") == (418, b"Teapot: short and stout")
    assert post(connection, b"boom") == (500, b"RuntimeError: the model broke")


def test_a_crashed_worker_is_replaced(server):
    _, port = server(workers=1)
    wait_ready(port)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        post(http.client.HTTPConnection("127.0.0.1", port, timeout=5), b"crash")
    wait_ready(port)
    assert post(http.client.HTTPConnection("127.0.0.1", port, timeout=5), b"ok")[0] == 200


def test_requirements_are_installed_once_and_a_failed_install_stops_the_server(server, tmp_path):
    process, port = server(workers=1, requirements="--no-index\n")
    wait_ready(port)
    assert (tmp_path / "cache").is_dir() and len(list((tmp_path / "cache").iterdir())) == 1
    failing, _ = server(workers=1, requirements="--no-index\nbatchform-no-such-package==1.0\n")
    assert failing.wait(timeout=60) == 3
    assert "pip install -r" in failing.stderr.read()


def test_a_handlers_status_is_the_answers_status(server):
    _, port = server(workers=1)
    wait_ready(port)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    assert post(connection, b"not-found") == (404, b"no such item")
    assert post(connection, b"created") == (201, b"made")
    assert post(connection, b"x")[0] == 200


@pytest.mark.parametrize("size_line", [b"zz\r\n", b"-5\r\n", b"\r\n"])
def test_a_bad_chunk_size_is_a_bad_request(server, size_line):
    _, port = server(workers=1)
    wait_ready(port)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n" + size_line + b"abc\r\n0\r\n\r\n")
        answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"chunk" in answer


def test_a_model_fn_failure_stops_the_server_with_the_real_error_last(server):
    process, _ = server(workers=2, extra_env={"BROKEN_MODEL": "1"})
    assert process.wait(timeout=30) == 3  # not 0: Batchform reports the exit status
    lines = process.stderr.read().strip().splitlines()
    assert any("model_fn failed: ValueError: broken weights" in line for line in lines[-3:]), lines[-5:]


def test_preloading_runs_model_fn_once_and_every_worker_answers(server, tmp_path):
    process, port = server(workers=2, extra_env={"BATCHFORM_PRELOAD_MODEL": "true"})
    wait_ready(port)
    pids = set()
    for _ in range(40):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        status, body = post(connection, b"hello")
        connection.close()
        assert status == 200
        pids.add(json.loads(body)["pid"])
    assert len(pids) == 2, "both workers answer"
    loads = (tmp_path / "loads.txt").read_text().split()
    assert len(loads) == 1 and int(loads[0]) == process.pid, "model_fn ran once, in the supervisor"


@pytest.mark.parametrize("extra_env, words", [
    ({"BATCHFORM_INSTANCE_TYPE": "ml.g5.xlarge"}, "GPU instance type (ml.g5.xlarge)"),
    ({"THREADED_MODEL": "1"}, "model_fn started threads"),
])
def test_preloading_is_refused_where_it_is_unsafe(server, extra_env, words):
    process, _ = server(workers=2, extra_env={"BATCHFORM_PRELOAD_MODEL": "true", **extra_env})
    assert process.wait(timeout=30) == 3
    assert words in process.stderr.read()


def test_preloading_on_a_gpu_type_when_the_user_says_so(server, tmp_path):
    _, port = server(workers=1, extra_env={
        "BATCHFORM_PRELOAD_MODEL": "true", "BATCHFORM_INSTANCE_TYPE": "ml.g5.xlarge",
        "BATCHFORM_PRELOAD_ON_GPU": "true",
    })
    wait_ready(port)
    assert len((tmp_path / "loads.txt").read_text().split()) == 1
