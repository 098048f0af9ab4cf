#!/usr/bin/env python3
"""Start-up and memory of the built-in server with and without BATCHFORM_PRELOAD_MODEL=true.

For each model of the tabular workload (trained by `bench/run --workloads tabular` under
--data-dir), starts `python -m batchform_serve serve` with 2 workers --runs times each way and
measures the time to the first 200 on /ping and the proportional memory (PSS, from
/proc/<pid>/smaps_rollup) of the supervisor and its workers once ready. Prints a table and writes
bench-results/preload-<time>.json. Run with the bench environment:
  .venv-bench/bin/python bench/preload.py
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import save_results  # noqa: E402

ROOT = os.path.dirname(HERE)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pss_mb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return sum(int(line.split()[1]) for line in f if line.startswith("Pss:")) / 1024
    except FileNotFoundError:
        return 0.0


def start(model_dir, preload):
    port = free_port()
    env = dict(os.environ, SM_MODEL_DIR=model_dir, SAGEMAKER_BIND_TO_PORT=str(port), SAGEMAKER_MODEL_SERVER_WORKERS="2",
               PYTHONPATH=os.path.join(ROOT, "python"), BATCHFORM_PRELOAD_MODEL="true" if preload else "false")
    began = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "batchform_serve", "serve"], env=env, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.01)
        ready = time.monotonic() - began
        workers = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
        return ready, pss_mb(process.pid) + sum(pss_mb(int(pid)) for pid in workers)
    finally:
        process.terminate()
        process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="/tmp/batchform-bench")
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    results = []
    print(f"{'model':<8} {'preload':<8} {'ready s':>8} {'PSS MB':>8}")
    for model in ("linear", "forest"):
        model_dir = os.path.join(options.data_dir, "tabular", f"model-{model}")
        for preload in (False, True):
            runs = [start(model_dir, preload) for _ in range(options.runs)]
            result = {"model": model, "preload": preload, "ready_s": statistics.median(r[0] for r in runs),
                      "pss_mb": statistics.median(r[1] for r in runs)}
            results.append(result)
            print(f"{model:<8} {str(preload):<8} {result['ready_s']:>8.2f} {result['pss_mb']:>8.0f}")
    save_results("preload", results)


if __name__ == "__main__":
    main()
