#!/usr/bin/env python3
"""Per-request overhead and body throughput of the built-in model server (batchform_serve).

Method, as in the container-contract reference's table: a trivial handler (read the body,
answer its length), a sequential keep-alive http.client client, loopback. Reports the mean
per request and MB/s for 1 KB and 6 MB bodies with 1 worker, and 6 MB with 2 workers and
2 client threads. Prints a table and writes JSON to bench-results/.

    python3 bench/python_server.py
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HANDLER = "def model_fn(d):\n    return None\n\ndef transform_fn(m, body, ct, accept):\n    return str(len(body)), 'text/plain'\n"


def start(workers):
    model = tempfile.mkdtemp()
    os.makedirs(f"{model}/code")
    with open(f"{model}/code/inference.py", "w") as f:
        f.write(HANDLER)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, SM_MODEL_DIR=model, SAGEMAKER_BIND_TO_PORT=str(port),
               SAGEMAKER_MODEL_SERVER_WORKERS=str(workers), PYTHONPATH=os.path.join(ROOT, "python"))
    process = subprocess.Popen([sys.executable, "-m", "batchform_serve", "serve"], env=env)
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                return process, port
        except OSError:
            pass
        time.sleep(0.05)


def client(port, body, count, durations):
    connection = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(count):
        start = time.perf_counter()
        connection.request("POST", "/invocations", body=body, headers={"Content-Type": "application/octet-stream"})
        response = connection.getresponse()
        assert response.status == 200 and int(response.read()) == len(body)
        durations.append(time.perf_counter() - start)


def measure(workers, clients, size, count):
    process, port = start(workers)
    try:
        body = os.urandom(size)
        client(port, body, max(3, count // 20), [])  # warm-up
        durations = []
        threads = [threading.Thread(target=client, args=(port, body, count, durations)) for _ in range(clients)]
        wall = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - wall
    finally:
        process.terminate()
        process.wait()
    requests = count * clients
    return {"workers": workers, "clients": clients, "body_bytes": size, "requests": requests,
            "mean_ms": round(sum(durations) / len(durations) * 1000, 3), "requests_per_s": round(requests / wall),
            "mb_per_s": round(size * requests / wall / (1 << 20), 1)}


def main():
    results = [measure(1, 1, 1024, 3000), measure(1, 1, 6 << 20, 40), measure(2, 2, 6 << 20, 40)]
    print(f"{'workers':>7} {'clients':>7} {'body':>8} {'requests':>8} {'mean ms':>8} {'req/s':>7} {'MB/s':>7}")
    for r in results:
        body = f"{r['body_bytes'] // 1024} KB" if r["body_bytes"] < 1 << 20 else f"{r['body_bytes'] >> 20} MB"
        print(f"{r['workers']:>7} {r['clients']:>7} {body:>8} {r['requests']:>8} {r['mean_ms']:>8} "
              f"{r['requests_per_s']:>7} {r['mb_per_s']:>7}")
    os.makedirs(os.path.join(ROOT, "bench-results"), exist_ok=True)
    path = os.path.join(ROOT, "bench-results", f"python-server-{time.strftime('%Y%m%dT%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump({"machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]}, "results": results}, f, indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
