#!/usr/bin/env python3
"""The cost of DataProcessing: the same CSV job (Line / MultiRecord, trivial native model
server) without DataProcessing, with JoinSource=Input, and with InputFilter + join +
OutputFilter. Without DataProcessing the batches are slices of the read buffer (zero-copy);
with it every record is parsed and every output row rebuilt, which this measures.

    swift build -c release
    python3 bench/data_processing.py --size-mb 512
"""
import argparse
import os
import statistics

from pipeline import ROOT, make_input, measure, save_results

VARIANTS = [
    ("no DataProcessing", []),
    ("JoinSource=Input", ["--join-source", "Input"]),
    ("InputFilter $[1:] + join + OutputFilter $[0,-1]",
     ["--input-filter", "$[1:]", "--join-source", "Input", "--output-filter", "$[0,-1]"]),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data-dir", default="/tmp/batchform-bench")
    parser.add_argument("--build", default=os.path.join(ROOT, ".build/release"))
    options = parser.parse_args()
    size = options.size_mb << 20
    input_dir = f"{options.data_dir}/dp-{options.size_mb}mb"
    make_input(f"{input_dir}/data.csv", size)
    binary, server = os.path.join(options.build, "batchform"), os.path.join(options.build, "trivial-model-server")
    results = []
    for name, flags in VARIANTS:
        output_dir = f"{options.data_dir}/dp-out"
        command = [binary, "transform", "--image", server, "--input", input_dir + "/", "--output", output_dir,
                   "--split-type", "Line", "--content-type", "text/csv", "--accept", "text/csv", "--assemble-with", "Line",
                   "--strategy", "MultiRecord", "--max-payload-mb", "6", "--max-concurrent", "2",
                   "--log-dir", output_dir + "-logs"] + flags
        runs = [measure(command) for _ in range(options.runs)]
        wall = statistics.median(r[0] for r in runs)
        results.append({
            "variant": name, "input_mb": options.size_mb, "wall_s": round(wall, 2),
            "mb_per_s": round(options.size_mb / wall, 1),
            "batchform_cpu_s": round(statistics.median(r[2] for r in runs), 2),
            "batchform_peak_rss_mb": round(statistics.median(r[1] for r in runs), 1),
        })
    print(f"{'variant':<50} {'wall s':>8} {'MB/s':>8} {'CPU s':>7} {'peak RSS MB':>12}")
    for r in results:
        print(f"{r['variant']:<50} {r['wall_s']:>8} {r['mb_per_s']:>8} {r['batchform_cpu_s']:>7} {r['batchform_peak_rss_mb']:>12}")
    save_results("data-processing", results)


if __name__ == "__main__":
    main()
