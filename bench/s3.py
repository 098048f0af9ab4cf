#!/usr/bin/env python3
"""S3 throughput and memory on loopback: one large CSV object read from and written back to a
real S3-compatible server (moto, as the tests use it), through the trivial native model server
in echo mode, so the output object is as large as the input.

moto is a Python server and is the ceiling here, so the table also shows boto3's own upload and
download of the same object against the same server: Batchform's figures are to be read
against those. Peak RSS and CPU are Batchform's own (from /proc while it runs).

    swift build -c release
    .venv/bin/python bench/s3.py --size-mb 1024
"""
import argparse
import os
import subprocess
import sys
import time

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pipeline import make_input, measure, save_results  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_s3():
    server = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "Tests/EndToEndTests/Fixtures/s3-server.py"), "--fault-every", "0"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    _, port, _, key, secret = server.stdout.readline().split()
    return server, f"http://127.0.0.1:{port}", key, secret


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--data-dir", default="/tmp/batchform-bench")
    parser.add_argument("--build", default=os.path.join(ROOT, ".build/release"))
    options = parser.parse_args()
    size = options.size_mb << 20
    path = f"{options.data_dir}/s3-{options.size_mb}mb/data.csv"
    make_input(path, size)
    server, endpoint, key, secret = start_s3()
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=key, aws_secret_access_key=secret)
        s3.create_bucket(Bucket="bench")
        start = time.perf_counter()
        s3.upload_file(path, "bench", "in/data.csv")
        boto3_upload = time.perf_counter() - start
        start = time.perf_counter()
        s3.download_file("bench", "in/data.csv", path + ".downloaded")
        boto3_download = time.perf_counter() - start
        os.remove(path + ".downloaded")

        environment = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_REGION="us-east-1",
                           AWS_ENDPOINT_URL=endpoint, TRIVIAL_ECHO="1")
        command = [os.path.join(options.build, "batchform"), "transform",
                   "--image", os.path.join(options.build, "trivial-model-server"),
                   "--input", "s3://bench/in/", "--output", "s3://bench/out/", "--split-type", "Line",
                   "--content-type", "text/csv", "--strategy", "MultiRecord", "--max-payload-mb", "6",
                   "--max-concurrent", "2", "--log-dir", f"{options.data_dir}/s3-logs"]
        wall, rss, cpu = measure(command, environment)
        written = s3.head_object(Bucket="bench", Key="out/data.csv.out")
        assert written["ContentLength"] == size, f"output is {written['ContentLength']} bytes, expected {size}"
        parts = written["ETag"].strip('"').split("-")[-1]
    finally:
        server.stdin.close()
        server.wait(timeout=30)

    megabytes = size / (1 << 20)
    results = {
        "workload": "s3-read-transform-write", "object_mb": options.size_mb, "wall_s": round(wall, 2),
        "mb_per_s_each_way": round(megabytes / wall, 1), "batchform_peak_rss_mb": round(rss, 1),
        "batchform_cpu_s": round(cpu, 2), "output_parts": int(parts),
        "boto3_upload_mb_per_s": round(megabytes / boto3_upload, 1),
        "boto3_download_mb_per_s": round(megabytes / boto3_download, 1),
        "settings": "Line / MultiRecord / 6 MB / 2 concurrent, echo model, moto on loopback",
    }
    print(f"{'object':>8} {'job wall s':>10} {'MB/s in+out':>12} {'peak RSS MB':>12} {'CPU s':>7} {'parts':>6} "
          f"{'boto3 up MB/s':>14} {'boto3 down MB/s':>16}")
    print(f"{options.size_mb:>6}MB {results['wall_s']:>10} {results['mb_per_s_each_way']:>12} "
          f"{results['batchform_peak_rss_mb']:>12} {results['batchform_cpu_s']:>7} {results['output_parts']:>6} "
          f"{results['boto3_upload_mb_per_s']:>14} {results['boto3_download_mb_per_s']:>16}")
    save_results("s3", [results])


if __name__ == "__main__":
    main()
