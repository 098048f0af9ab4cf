#!/usr/bin/env python3
"""Engine-only throughput and memory: one large CSV file per size through the trivial native
model server (Line / MultiRecord), measuring Batchform alone.

Data is generated deterministically (seeded) outside the repo. For each size the job runs
--runs times after a warm-up; the table shows medians. Peak RSS and CPU time are those of the
Batchform process (read from /proc while it runs), not of the model server.

    swift build -c release
    python3 bench/pipeline.py --sizes-gb 1 4
"""
import argparse
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, make_input, save_results  # noqa: E402
from common import measure as measure_process  # noqa: E402


def measure(command, environment=None):
    """(wall s, Batchform's peak RSS MB, Batchform's CPU s) of one Batchform command."""
    result = measure_process(command, env=environment)
    return result["wall_s"], result["peak_rss_mb"], result["own_cpu_s"]


def run_job(binary, server, input_dir, output_dir, args):
    subprocess.run(["rm", "-rf", output_dir], check=True)
    return measure([binary, "transform", "--image", server, "--input", input_dir + "/", "--output", output_dir,
                    "--split-type", "Line", "--content-type", "text/csv", "--log-dir", output_dir + "-logs"] + args)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-gb", type=float, nargs="+", default=[1, 4])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--payload-mb", default="6")
    parser.add_argument("--concurrency", default="2")
    parser.add_argument("--data-dir", default="/tmp/batchform-bench")
    parser.add_argument("--build", default=os.path.join(ROOT, ".build/release"))
    options = parser.parse_args()
    binary, server = os.path.join(options.build, "batchform"), os.path.join(options.build, "trivial-model-server")
    args = ["--strategy", "MultiRecord", "--max-payload-mb", options.payload_mb, "--max-concurrent", options.concurrency]
    results = []
    for size_gb in options.sizes_gb:
        size = int(size_gb * (1 << 30))
        input_dir = f"{options.data_dir}/pipeline-{size_gb:g}gb"
        make_input(f"{input_dir}/data.csv", size)
        with open(f"{input_dir}/data.csv", "rb") as f:
            records = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))
        output_dir = f"{options.data_dir}/out-{size_gb:g}gb"
        run_job(binary, server, input_dir, output_dir, args)  # warm-up (page cache, first start)
        runs = [run_job(binary, server, input_dir, output_dir, args) for _ in range(options.runs)]
        wall = statistics.median(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs)
        cpu = statistics.median(r[2] for r in runs)
        results.append({
            "workload": "pipeline", "input_gb": size_gb, "records": records, "wall_s": round(wall, 3),
            "mb_per_s": round(size / (1 << 20) / wall, 1), "records_per_s": round(records / wall),
            "batchform_peak_rss_mb": round(rss, 1), "batchform_cpu_s": round(cpu, 2),
            "batchform_cpu_s_per_gb": round(cpu / size_gb, 2), "runs": [list(map(lambda v: round(v, 3), r)) for r in runs],
            "settings": " ".join(args),
        })
    header = f"{'input':>8} {'records':>11} {'wall s':>8} {'MB/s':>8} {'records/s':>11} {'peak RSS MB':>12} {'CPU s':>7} {'CPU s/GB':>9}"
    print(header)
    for r in results:
        print(f"{r['input_gb']:>6g}GB {r['records']:>11} {r['wall_s']:>8} {r['mb_per_s']:>8} {r['records_per_s']:>11} "
              f"{r['batchform_peak_rss_mb']:>12} {r['batchform_cpu_s']:>7} {r['batchform_cpu_s_per_gb']:>9}")
    save_results("pipeline", results)


if __name__ == "__main__":
    main()
