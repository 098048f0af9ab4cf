#!/usr/bin/env python3
"""One job over 1, 2 and 4 Slurm nodes (--executor slurm), with a fixed-time-per-batch model.

The model is the trivial server with TRIVIAL_DELAY_MS=250 (one request at a time per node), so
the work phase should shrink with the nodes: it is the job's wall time minus that of the same
job on a one-line input (start and stop: sbatch, workers, model servers). Also reported: the
coordinator's own CPU per GB (workers read and write the stores; only parts' concatenation goes
through it) and the time from submitting the job to the first batch reaching a model (the
trivial server's TRIVIAL_ARRIVALS_FILE). Outputs must equal the local run's byte for byte.

Needs a 4-node cluster (SLURM_NODES=4 scripts/slurm-up ensure) and a release build
(swift build -c release). Prints a table, writes bench-results/slurm-<time>.json:
  python3 bench/slurm.py [--size-mb 512] [--runs 3] [--data-dir /tmp/batchform-bench]
"""
import argparse
import hashlib
import os
import shutil
import statistics
import time
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import make_input, measure, save_results  # noqa: E402

ROOT = os.path.dirname(HERE)
DELAY_MS = 250


def digest(path):
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--unit-mb", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data-dir", default="/tmp/batchform-bench")
    options = parser.parse_args()
    binary = os.path.join(ROOT, ".build/release/batchform")
    server = os.path.join(ROOT, ".build/release/trivial-model-server")
    folder = os.path.join(options.data_dir, "slurm")
    inputs, tiny = os.path.join(folder, "input"), os.path.join(folder, "tiny")
    make_input(os.path.join(inputs, "data.csv"), options.size_mb << 20)
    os.makedirs(tiny, exist_ok=True)
    with open(os.path.join(tiny, "one.csv"), "w") as f:
        f.write("1\n")
    arrivals = os.path.join(folder, "arrivals.txt")
    env = {**os.environ, "TRIVIAL_ECHO": "1", "TRIVIAL_DELAY_MS": str(DELAY_MS), "TRIVIAL_ARRIVALS_FILE": arrivals,
           "BATCHFORM_UNIT_MB": str(options.unit_mb)}

    def run(source, out, executor, nodes):
        shutil.rmtree(out, ignore_errors=True)
        if os.path.exists(arrivals):
            os.remove(arrivals)
        command = [binary, "transform", "--image", server, "--input", source + "/", "--output", out,
                   "--split-type", "Line", "--content-type", "text/csv", "--env", "BATCHFORM_CSV_SPLIT=newline",
                   "--strategy", "MultiRecord", "--max-payload-mb", "6", "--max-concurrent", "1",
                   "--instance-count", str(nodes), "--executor", executor, "--log-dir", out + "-logs"]
        submitted = time.time()
        result = measure(command, env=env)
        with open(arrivals) as f:
            result["first_batch_s"] = min(float(line) for line in f if line.strip()) - submitted
        return result

    local_out = os.path.join(folder, "out-local")
    run(inputs, local_out, "local", 1)
    expected = digest(os.path.join(local_out, "data.csv.out"))
    results = []
    print(f"{'nodes':>5} {'wall s':>8} {'start+stop s':>13} {'work s':>8} {'speed-up':>9} "
          f"{'coord CPU s/GB':>15} {'submit->1st batch s':>20} {'identical':>10}")
    for nodes in (1, 2, 4):
        walls, starts, cpus, firsts, identical = [], [], [], [], True
        for _ in range(options.runs):
            out = os.path.join(folder, f"out-{nodes}")
            measured = run(inputs, out, "slurm", nodes)
            walls.append(measured["wall_s"])
            cpus.append(measured["own_cpu_s"])
            firsts.append(measured["first_batch_s"])
            identical &= digest(os.path.join(out, "data.csv.out")) == expected
            starts.append(run(tiny, os.path.join(folder, f"tiny-{nodes}"), "slurm", nodes)["wall_s"])
        result = {
            "workload": f"slurm x{nodes}", "nodes": nodes, "input_mb": options.size_mb, "unit_mb": options.unit_mb,
            "delay_ms": DELAY_MS, "wall_s": statistics.median(walls), "start_stop_s": statistics.median(starts),
            "coordinator_cpu_s_per_gb": statistics.median(cpus) / (options.size_mb / 1024),
            "first_batch_s": statistics.median(firsts), "output_identical": identical,
        }
        result["work_s"] = result["wall_s"] - result["start_stop_s"]
        results.append(result)
    for result in results:
        result["work_speedup"] = results[0]["work_s"] / result["work_s"]
        print(f"{result['nodes']:>5} {result['wall_s']:>8.2f} {result['start_stop_s']:>13.2f} {result['work_s']:>8.2f} "
              f"{result['work_speedup']:>8.2f}x {result['coordinator_cpu_s_per_gb']:>15.2f} "
              f"{result['first_batch_s']:>20.2f} {str(result['output_identical']):>10}")
    save_results("slurm", results)
    four = results[-1]
    if four["work_speedup"] < 3.5 or not all(r["output_identical"] for r in results):
        raise SystemExit(f"target missed: 4 nodes {four['work_speedup']:.2f}x (needs 3.5x), identical outputs "
                         f"{[r['output_identical'] for r in results]}")


if __name__ == "__main__":
    main()
