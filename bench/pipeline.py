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
import json
import os
import random
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICKS = os.sysconf("SC_CLK_TCK")


def make_input(path, size_bytes):
    if os.path.exists(path) and os.path.getsize(path) == size_bytes:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = random.Random(42)
    block = "".join(",".join(f"{rng.uniform(-1, 1):.6f}" for _ in range(10)) + "\n" for _ in range(12000)).encode()
    with open(path + ".tmp", "wb") as f:
        written = 0
        while written + len(block) <= size_bytes:
            f.write(block)
            written += len(block)
        # Fill up with whole short lines so the size is exact.
        rest = size_bytes - written
        f.write(b"0" * (rest - 1) + b"\n" if rest else b"")
    os.rename(path + ".tmp", path)


def measure(command, environment=None):
    """Runs a Batchform command; returns wall seconds, its peak RSS in MB and its CPU seconds,
    read from /proc while it runs (so the model server's own use is not counted)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment)
    peak_kb, cpu_ticks = 0, 0
    while process.poll() is None:
        try:
            with open(f"/proc/{process.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(line.split()[1]))
            with open(f"/proc/{process.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
                cpu_ticks = int(fields[11]) + int(fields[12])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
        time.sleep(0.02)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode()
    if process.returncode != 0:
        raise SystemExit(f"job failed ({process.returncode}):\n{stderr}")
    return wall, peak_kb / 1024, cpu_ticks / TICKS


def save_results(kind, results):
    """Writes bench-results/<kind>-<time>.json, so runs can be compared."""
    os.makedirs(os.path.join(ROOT, "bench-results"), exist_ok=True)
    path = os.path.join(ROOT, "bench-results", f"{kind}-{time.strftime('%Y%m%dT%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump({"machine": {"cores": os.cpu_count()}, "results": results}, f, indent=2)
    print(f"wrote {path}")


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
