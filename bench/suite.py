#!/usr/bin/env python3
"""The benchmark suite (run it with bench/run, which sets up its environment and builds).

Workloads, each on data generated deterministically (seeded) under --data-dir, outside the repo;
every contender runs once to warm up, then --runs times (the tabular contenders in turns, one run
of each after another); tables show medians:

  tabular    8 CSV files x 250,000 rows x 10 float features, no header, one prediction per row,
             for LinearRegression and RandomForestRegressor(50 trees, depth 10). Contenders: the
             in-process floor (2 Python processes: pandas read, predict, write), a hand-written loop
             posting 5 MB chunks to a gunicorn endpoint with 2 threads, and Batchform (built-in
             handler server) with its defaults, with BATCHFORM_PRELOAD_MODEL=true, and with its best settings.
  pipeline   the same rows, 10x as many, through the trivial native model server: the engine alone.
  small      200,000 JSON Lines records, SingleRecord, MaxConcurrentTransforms 16, trivial server.
  memory     one 2 GB CSV file (and a 1 GB one, to show RSS does not grow) through the trivial server.
  recorderrors  one 1 GB CSV through the trivial server, clean and with 10 bad records spread
             out (lines the server refuses with HTTP 400), both with --max-record-errors 10 and
             1 MB batches: the cost of isolating the bad records by bisection. (Any isolation must
             send the good records of each failed batch again: with 6 MB batches that alone is 6 %
             of this input.)
  scaleout   one 1 GB CSV through the trivial server answering each 6 MB batch 250 ms late (a model
             with a fixed time per batch, as on a GPU), MaxConcurrentTransforms 1, at 1, 2 and 4
             instances. The work phase is the wall time less the same job's start+stop on one row;
             outputs (the records echoed) must be byte-identical at every instance count.

Wall time includes start-up and shut-down for every contender; "start+stop s" (tabular) is the
same contender's wall time on a one-row input, i.e. its start-up and shut-down. "CPU s" is split
between the Batchform process itself and everything else the contender ran (the model server, or
the Python processes), from /proc and getrusage.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from common import make_input, measure, save_results  # noqa: E402

FILES, ROWS, FEATURES = 8, 250_000, 10

INFERENCE_PY = textwrap.dedent(
    """
    import io, os
    import joblib
    import numpy as np
    import pandas as pd

    def model_fn(model_dir):
        return joblib.load(os.path.join(model_dir, "model.joblib"))

    def input_fn(body, content_type):
        data = io.BytesIO(body) if isinstance(body, bytes) else io.StringIO(body)
        return pd.read_csv(data, header=None, dtype=np.float64).to_numpy()

    def predict_fn(features, model):
        return model.predict(features)

    def output_fn(predictions, accept):
        buffer = io.BytesIO()
        np.savetxt(buffer, predictions, fmt="%.6f")
        return buffer.getvalue()
    """
)


# MARK: - Measuring


def repeat(runs, action):
    return repeat_side_by_side(runs, {"": action})[""]


def repeat_side_by_side(runs, actions):
    """Warms each action up (page cache, first imports, first start), then runs them in turns,
    so that a slow spell of this shared VM falls on every contender alike. Returns each one's
    medians and its runs."""
    for action in actions.values():
        action()
    results = {name: [] for name in actions}
    for _ in range(runs):
        for name, action in actions.items():
            results[name].append(action())
    medians = {}
    for name, runs_of_one in results.items():
        medians[name] = {key: statistics.median(r[key] for r in runs_of_one) for key in runs_of_one[0]}
        medians[name]["runs"] = [{k: round(v, 3) for k, v in r.items()} for r in runs_of_one]
    return medians


# MARK: - Data


def tabular_data(folder, files=FILES, rows=ROWS):
    """Seeded float features; y is a noisy non-linear function of them (for training)."""
    import numpy as np

    done = os.path.join(folder, ".complete")
    if not os.path.exists(done):
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        rng = np.random.default_rng(7)
        for index in range(files):
            features = rng.uniform(-1, 1, size=(rows, FEATURES))
            np.savetxt(os.path.join(folder, f"part-{index:02d}.csv"), features, fmt="%.6f", delimiter=",")
        open(done, "w").close()
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".csv"))


def train_models(folder):
    """model.joblib + code/inference.py (the SageMaker layout) for each model; trained once."""
    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, size=(20_000, FEATURES))
    y = x @ rng.uniform(-2, 2, FEATURES) + np.sin(3 * x[:, 0]) + rng.normal(0, 0.1, len(x))
    models = {
        "linear": LinearRegression(),
        "forest": RandomForestRegressor(n_estimators=50, max_depth=10, random_state=0, n_jobs=1),
    }
    paths = {}
    for name, model in models.items():
        directory = os.path.join(folder, f"model-{name}")
        paths[name] = directory
        if os.path.exists(os.path.join(directory, "model.joblib")):
            continue
        os.makedirs(os.path.join(directory, "code"), exist_ok=True)
        model.fit(x, y)
        joblib.dump(model, os.path.join(directory, "model.joblib"))
        with open(os.path.join(directory, "code", "inference.py"), "w") as f:
            f.write(INFERENCE_PY)
    return paths


# MARK: - Contenders (tabular)

FLOOR_WORKER = textwrap.dedent(
    """
    import sys, runpy
    handlers = runpy.run_path(sys.argv[1] + "/code/inference.py")
    model = handlers["model_fn"](sys.argv[1])
    for path in sys.argv[2:]:
        with open(path, "rb") as f:
            body = f.read()
        predictions = handlers["predict_fn"](handlers["input_fn"](body, "text/csv"), model)
        with open(path.replace("/input/", "/out-floor/") + ".out", "wb") as f:
            f.write(handlers["output_fn"](predictions, "text/csv"))
    """
)


def run_floor(python, model_dir, files, scratch):
    """Two Python processes, each with half the files: no HTTP, no engine."""
    script = os.path.join(scratch, "floor_worker.py")
    with open(script, "w") as f:
        f.write(FLOOR_WORKER)
    driver = os.path.join(scratch, "floor_driver.py")
    halves = [files[0::2], files[1::2]]
    with open(driver, "w") as f:
        f.write(
            "import subprocess, sys\n"
            f"procs = [subprocess.Popen([sys.executable, {script!r}, {model_dir!r}, *half]) for half in {halves!r}]\n"
            "sys.exit(max(p.wait() for p in procs))\n"
        )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    result = measure([python, driver], watch_pid=False, env=env)
    return result


HAND_APP = textwrap.dedent(
    """
    import os, runpy
    MODEL_DIR = os.environ["MODEL_DIR"]
    handlers = runpy.run_path(MODEL_DIR + "/code/inference.py")
    model = handlers["model_fn"](MODEL_DIR)

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/ping":
            start_response("200 OK", [("Content-Length", "0")])
            return [b""]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        out = handlers["output_fn"](handlers["predict_fn"](handlers["input_fn"](body, "text/csv"), model), "text/csv")
        start_response("200 OK", [("Content-Type", "text/csv"), ("Content-Length", str(len(out)))])
        return [out]
    """
)

HAND_LOOP = textwrap.dedent(
    """
    # What SageMaker's notebooks show as the alternative: start a gunicorn endpoint, post each
    # file in 5 MB chunks cut at line ends (two at a time, one per server thread), write answers in order.
    import http.client, os, subprocess, sys, time
    from concurrent.futures import ThreadPoolExecutor
    gunicorn, app_dir, model_dir, port, *files = sys.argv[1:]
    env = {**os.environ, "MODEL_DIR": model_dir, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    server = subprocess.Popen([gunicorn, "--chdir", app_dir, "-w", "1", "--threads", "2", "-b", f"127.0.0.1:{port}",
                               "--timeout", "600", "hand_app:app"], env=env, stderr=subprocess.DEVNULL)
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", int(port)); c.request("GET", "/ping")
            ok = c.getresponse().status == 200; c.close()  # an open connection holds up gunicorn's shut-down
            if ok: break
        except OSError: time.sleep(0.05)
    def post(chunk):
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=600)
        c.request("POST", "/invocations", body=chunk, headers={"Content-Type": "text/csv"})
        answer = c.getresponse().read(); c.close()
        return answer
    def chunks(path, size=5 << 20):
        with open(path, "rb") as f:
            rest = b""
            while True:
                data = f.read(size - len(rest))
                if not data:
                    if rest: yield rest
                    return
                data = rest + data
                cut = data.rfind(b"\\n") + 1
                yield data[:cut]; rest = data[cut:]
    with ThreadPoolExecutor(2) as pool:
        for path in files:
            with open(path.replace("/input/", "/out-hand/") + ".out", "wb") as out:
                for answer in pool.map(post, chunks(path)):
                    out.write(answer)
    server.terminate(); server.wait()
    """
)


def run_hand_loop(python, gunicorn, model_dir, files, scratch):
    app_dir = os.path.join(scratch, "hand")
    os.makedirs(app_dir, exist_ok=True)
    with open(os.path.join(app_dir, "hand_app.py"), "w") as f:
        f.write(HAND_APP)
    loop = os.path.join(scratch, "hand_loop.py")
    with open(loop, "w") as f:
        f.write(HAND_LOOP)
    return measure([python, loop, gunicorn, app_dir, model_dir, str(free_port()), *files], watch_pid=False)


def run_batchform(binary, model_dir, input_dir, output_dir, extra, env_pairs=()):
    shutil.rmtree(output_dir, ignore_errors=True)
    command = [
        binary, "transform", "--image", "batchform/python", "--model-data", model_dir, "--input", input_dir + "/",
        "--output", output_dir, "--split-type", "Line", "--content-type", "text/csv", "--accept", "text/csv",
        "--log-dir", output_dir + "-logs", *extra,
    ]
    for pair in env_pairs:
        command += ["--model-env", pair]
    return measure(command)


def free_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def check_same_outputs(files, suffixes):
    """Every contender must have produced the same predictions."""
    for path in files:
        texts = {}
        for suffix, location in suffixes.items():
            with open(location(path), "rb") as f:
                texts[suffix] = f.read()
        first = next(iter(texts.values()))
        different = [s for s, t in texts.items() if t != first]
        if different:
            raise SystemExit(f"outputs differ for {path}: {different}")


# MARK: - Workloads


def tabular_contenders(options, python, binary, model, model_dir, folder, files):
    """The four contenders on `files` (which are in folder/input/); each writes under folder."""
    gunicorn = os.path.join(os.path.dirname(python), "gunicorn")
    input_dir = os.path.join(folder, "input")
    for name in ("out-floor", "out-hand"):
        os.makedirs(os.path.join(folder, name), exist_ok=True)
    return {
        "in-process floor": lambda: run_floor(python, model_dir, files, folder),
        "hand loop (gunicorn)": lambda: run_hand_loop(python, gunicorn, model_dir, files, folder),
        "batchform default": lambda: run_batchform(binary, model_dir, input_dir, os.path.join(folder, f"out-default-{model}"), []),
        "batchform preload": lambda: run_batchform(
            binary, model_dir, input_dir, os.path.join(folder, f"out-preload-{model}"), [],
            ["BATCHFORM_PRELOAD_MODEL=true"],
        ),
        "batchform best": lambda: run_batchform(
            binary, model_dir, input_dir, os.path.join(folder, f"out-best-{model}"),
            ["--strategy", "MultiRecord", "--max-payload-mb", options.best_payload_mb, "--max-concurrent", "2"],
            ["SAGEMAKER_MODEL_SERVER_WORKERS=2"],
        ),
    }


def one_row_input(folder, source):
    """The first row of `source` as folder/input/part-00.csv: a job on it is start-up and shut-down."""
    path = os.path.join(folder, "input", "part-00.csv")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(source, "rb") as f, open(path, "wb") as out:
        out.write(f.readline())
    return [path]


def tabular(options, python, binary):
    folder = os.path.join(options.data_dir, "tabular")
    files = tabular_data(os.path.join(folder, "input"))
    models = train_models(folder)
    size = sum(os.path.getsize(f) for f in files)
    rows = FILES * ROWS
    one_row_folder = os.path.join(folder, "one-row")
    one_row = one_row_input(one_row_folder, files[0])
    results = []
    for model in options.models:
        model_dir = models[model]
        start_stop = repeat_side_by_side(
            options.runs, tabular_contenders(options, python, binary, model, model_dir, one_row_folder, one_row))
        full = repeat_side_by_side(options.runs, tabular_contenders(options, python, binary, model, model_dir, folder, files))
        for name, median in full.items():
            results.append({"workload": f"tabular/{model}", "contender": name, "rows": rows, "input_mb": size / 2**20,
                            **median, "start_stop_s": start_stop[name]["wall_s"]})
            print_row(results[-1])
        check_same_outputs(files, {
            "floor": lambda p: p.replace("/input/", "/out-floor/") + ".out",
            "hand": lambda p: p.replace("/input/", "/out-hand/") + ".out",
            "default": lambda p, m=model: os.path.join(folder, f"out-default-{m}", os.path.basename(p) + ".out"),
            "best": lambda p, m=model: os.path.join(folder, f"out-best-{m}", os.path.basename(p) + ".out"),
            "preload": lambda p, m=model: os.path.join(folder, f"out-preload-{m}", os.path.basename(p) + ".out"),
        })
    return results


def trivial_job(binary, server, input_dir, out, content_type, strategy, concurrency):
    """A job through the trivial native model server, which measures the engine alone."""
    def job():
        shutil.rmtree(out, ignore_errors=True)
        return measure([binary, "transform", "--image", server, "--input", input_dir + "/", "--output", out,
                        "--split-type", "Line", "--content-type", content_type, "--strategy", strategy,
                        "--max-concurrent", str(concurrency), "--log-dir", out + "-logs"])
    return job


def pipeline(options, binary, server):
    folder = os.path.join(options.data_dir, "pipeline")
    source = tabular_data(os.path.join(options.data_dir, "tabular", "input"))
    input_dir = os.path.join(folder, "input")
    copies = 10
    if not os.path.exists(os.path.join(input_dir, ".complete")):
        shutil.rmtree(input_dir, ignore_errors=True)
        os.makedirs(input_dir)
        for path in source:  # 10x the rows: each file repeated ten times
            with open(path, "rb") as f:
                data = f.read()
            with open(os.path.join(input_dir, os.path.basename(path)), "wb") as f:
                for _ in range(copies):
                    f.write(data)
        open(os.path.join(input_dir, ".complete"), "w").close()
    files = [os.path.join(input_dir, n) for n in os.listdir(input_dir) if n.endswith(".csv")]
    size = sum(os.path.getsize(f) for f in files)
    job = trivial_job(binary, server, input_dir, os.path.join(folder, "out"), "text/csv", "MultiRecord", 2)
    median = repeat(options.runs, job)
    result = {"workload": "pipeline", "contender": "batchform + trivial server", "rows": FILES * ROWS * copies,
              "input_mb": size / 2**20, **median}
    result["batchform_cpu_s_per_gb"] = median["own_cpu_s"] / (size / 2**30)
    print_row(result)
    return [result]


def small_records(options, binary, server):
    folder = os.path.join(options.data_dir, "small")
    input_dir = os.path.join(folder, "input")
    records = 200_000
    path = os.path.join(input_dir, "records.jsonl")
    if not os.path.exists(path):
        import random

        os.makedirs(input_dir, exist_ok=True)
        rng = random.Random(5)
        with open(path, "w") as f:
            for index in range(records):
                f.write(json.dumps({"id": index, "features": [round(rng.uniform(-1, 1), 4) for _ in range(4)]}) + "\n")
    job = trivial_job(binary, server, input_dir, os.path.join(folder, "out"), "application/jsonlines", "SingleRecord", 16)
    median = repeat(options.runs, job)
    result = {"workload": "small records", "contender": "batchform + trivial server", "rows": records,
              "input_mb": os.path.getsize(path) / 2**20, **median}
    print_row(result)
    return [result]


def memory(options, binary, server):
    results = []
    for size_gb in (1, 2):
        input_dir = os.path.join(options.data_dir, f"memory-{size_gb}gb")
        make_input(os.path.join(input_dir, "data.csv"), size_gb << 30)
        out = os.path.join(options.data_dir, f"memory-out-{size_gb}gb")
        job = trivial_job(binary, server, input_dir, out, "text/csv", "MultiRecord", 2)
        with open(os.path.join(input_dir, "data.csv"), "rb") as f:
            rows = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))
        median = repeat(options.runs, job)
        results.append({"workload": f"memory {size_gb} GB", "contender": "batchform + trivial server", "rows": rows,
                        "input_mb": (size_gb << 30) / 2**20, **median})
        print_row(results[-1])
    return results


BAD_MARKER = "BADRECORD"


def record_errors(options, binary, server):
    folder = os.path.join(options.data_dir, "recorderrors")
    clean = os.path.join(folder, "clean", "data.csv")
    bad = os.path.join(folder, "bad", "data.csv")
    make_input(clean, 1 << 30)
    if not os.path.exists(bad) or os.path.getsize(bad) != os.path.getsize(clean):
        os.makedirs(os.path.dirname(bad), exist_ok=True)
        shutil.copyfile(clean, bad + ".tmp")
        size = os.path.getsize(clean)
        with open(bad + ".tmp", "r+b") as f:
            for index in range(10):  # the line after each tenth of the file: same length, marked
                f.seek(size * index // 10 + size // 20)
                f.readline()
                start = f.tell()
                line = f.readline()
                f.seek(start)
                f.write((BAD_MARKER + "0" * (len(line) - 1 - len(BAD_MARKER)))[: len(line) - 1].encode() + b"\n")
        os.rename(bad + ".tmp", bad)
    env = {**os.environ, "TRIVIAL_REFUSE": BAD_MARKER}

    def job(source, out):
        def run():
            shutil.rmtree(out, ignore_errors=True)
            return measure([binary, "transform", "--image", server, "--input", os.path.dirname(source) + "/",
                            "--output", out, "--split-type", "Line", "--content-type", "text/csv",
                            "--strategy", "MultiRecord", "--max-concurrent", "2", "--max-payload-mb", "1",
                            "--max-record-errors", "10",
                            "--log-dir", out + "-logs"], env=env)
        return run

    medians = repeat_side_by_side(options.runs, {
        "clean": job(clean, os.path.join(folder, "out-clean")),
        "10 bad records": job(bad, os.path.join(folder, "out-bad")),
    })
    rows = count_lines(clean)
    with open(os.path.join(folder, "out-bad-logs", "record-errors.jsonl")) as f:
        reported = sum(1 for _ in f)
    with open(os.path.join(folder, "out-bad", "data.csv.out"), "rb") as f:
        answered = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))
    results = []
    for name, median in medians.items():
        result = {"workload": f"record errors: {name}", "contender": "batchform + trivial server", "rows": rows,
                  "input_mb": 1024, **median}
        results.append(result)
        print_row(result)
    overhead = results[1]["wall_s"] / results[0]["wall_s"] - 1
    results[1]["overhead"] = overhead
    results[1]["reported"] = reported
    results[1]["answered"] = answered
    print(f"record errors: {reported} reported, {answered} of {rows} records answered; "
          f"bisection overhead {overhead * 100:.1f} %")
    return results


SCALEOUT_DELAY_MS = 250


def scaleout(options, binary, server):
    folder = os.path.join(options.data_dir, "scaleout")
    input_dir = os.path.join(folder, "input")
    make_input(os.path.join(input_dir, "data.csv"), 1 << 30)
    tiny_dir = os.path.join(folder, "tiny")
    os.makedirs(tiny_dir, exist_ok=True)
    with open(os.path.join(tiny_dir, "one.csv"), "w") as f:
        f.write("1\n")
    env = {**os.environ, "TRIVIAL_ECHO": "1", "TRIVIAL_DELAY_MS": str(SCALEOUT_DELAY_MS)}

    def job(source, out, instances):
        def run():
            shutil.rmtree(out, ignore_errors=True)
            return measure([binary, "transform", "--image", server, "--input", source + "/", "--output", out,
                            "--split-type", "Line", "--content-type", "text/csv", "--strategy", "MultiRecord",
                            "--max-payload-mb", "6", "--max-concurrent", "1", "--instance-count", str(instances),
                            "--log-dir", out + "-logs"], env=env)
        return run

    results, digests = [], {}
    for instances in (1, 2, 4):
        out = os.path.join(folder, f"out-{instances}")
        start_stop = repeat(options.runs, job(tiny_dir, os.path.join(folder, f"tiny-out-{instances}"), instances))
        median = repeat(options.runs, job(input_dir, out, instances))
        digests[instances] = file_digest(os.path.join(out, "data.csv.out"))
        result = {"workload": f"scaleout x{instances}", "contender": "batchform + 250 ms/batch server",
                  "rows": count_lines(os.path.join(input_dir, "data.csv")), "input_mb": 1024, **median,
                  "start_stop_s": start_stop["wall_s"]}
        result["work_s"] = median["wall_s"] - start_stop["wall_s"]
        results.append(result)
        print_row(result)
    identical = len(set(digests.values())) == 1 and digests[1] == file_digest(os.path.join(input_dir, "data.csv"))
    for result in results:
        result["output_identical"] = identical
        result["work_speedup"] = results[0]["work_s"] / result["work_s"]
    print(f"scaleout work phase: " + ", ".join(f"x{r['workload'][-1]} {r['work_s']:.1f} s ({r['work_speedup']:.2f}x)"
                                             for r in results) + f"; outputs identical: {identical}")
    return results


def file_digest(path):
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            digest.update(chunk)
    return digest.hexdigest()


def count_lines(path):
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))


# MARK: - Report

HEADER = (f"{'workload':<16} {'contender':<28} {'wall s':>8} {'start+stop s':>13} {'rows/s':>11} {'MB/s':>8} "
          f"{'peak RSS MB':>12} {'CPU s batchform':>16} {'CPU s model/other':>18}")


def print_row(r):
    start_stop = f"{r['start_stop_s']:>13.2f}" if "start_stop_s" in r else f"{'-':>13}"
    print(f"{r['workload']:<16} {r['contender']:<28} {r['wall_s']:>8.2f} {start_stop} {r['rows'] / r['wall_s']:>11,.0f} "
          f"{r['input_mb'] / r['wall_s']:>8.1f} {r['peak_rss_mb'] or float('nan'):>12.1f} {r['own_cpu_s']:>16.2f} "
          f"{r['other_cpu_s']:>18.2f}", flush=True)


def targets(results):
    """The issue's targets, checked against the medians measured side by side in this run."""
    by = {(r["workload"], r["contender"]): r for r in results}
    checks = []

    def ratio(workload, contender, limit_floor, limit_hand):
        ours = by.get((workload, contender))
        floor, hand = by.get((workload, "in-process floor")), by.get((workload, "hand loop (gunicorn)"))
        if ours and floor:
            checks.append((f"{workload}: {contender} / floor", ours["wall_s"] / floor["wall_s"], f"<= {limit_floor}",
                           ours["wall_s"] / floor["wall_s"] <= limit_floor))
        if ours and hand:
            checks.append((f"{workload}: {contender} / hand loop", ours["wall_s"] / hand["wall_s"], f"<= {limit_hand}",
                           ours["wall_s"] / hand["wall_s"] <= limit_hand))

    for contender in ("batchform default", "batchform preload"):
        ratio("tabular/linear", contender, 1.2, 0.9)
        ratio("tabular/forest", contender, 1.05, 0.85)
    ratio("tabular/linear", "batchform best", 1.3, 0.9)
    ratio("tabular/forest", "batchform best", 1.15, 0.85)
    if ("pipeline", "batchform + trivial server") in by:
        r = by[("pipeline", "batchform + trivial server")]
        checks.append(("pipeline MB/s", r["input_mb"] / r["wall_s"], ">= 1024", r["input_mb"] / r["wall_s"] >= 1024))
        checks.append(("pipeline batchform CPU s/GB", r["batchform_cpu_s_per_gb"], "<= 1.0", r["batchform_cpu_s_per_gb"] <= 1.0))
    if ("small records", "batchform + trivial server") in by:
        r = by[("small records", "batchform + trivial server")]
        checks.append(("small records/s", r["rows"] / r["wall_s"], ">= 20000", r["rows"] / r["wall_s"] >= 20000))
    for size in (1, 2):
        r = by.get((f"memory {size} GB", "batchform + trivial server"))
        if r:
            checks.append((f"memory {size} GB peak RSS MB", r["peak_rss_mb"], "<= 300", r["peak_rss_mb"] <= 300))
    bad = by.get(("record errors: 10 bad records", "batchform + trivial server"))
    if bad:
        checks.append(("record errors: bisection overhead %", bad["overhead"] * 100, "< 5", bad["overhead"] < 0.05))
        checks.append(("record errors: reported", bad["reported"], "= 10", bad["reported"] == 10))
        checks.append(("record errors: records answered", bad["answered"], f"= {bad['rows'] - 10}",
                       bad["answered"] == bad["rows"] - 10))
    one, four = by.get(("scaleout x1", "batchform + 250 ms/batch server")), by.get(("scaleout x4", "batchform + 250 ms/batch server"))
    if one and four:
        speedup = one["work_s"] / four["work_s"]
        checks.append(("scaleout work phase 1 -> 4 instances", speedup, ">= 3.5", speedup >= 3.5))
        checks.append(("scaleout outputs identical (1 = yes)", float(four["output_identical"]), "= 1", four["output_identical"]))
        checks.append(("scaleout peak RSS MB at 4 instances", four["peak_rss_mb"], "<= 300", four["peak_rss_mb"] <= 300))
    print("\ntarget                                          measured   target    met")
    for name, value, target, met in checks:
        print(f"{name:<46} {value:>9.2f}   {target:<9} {'yes' if met else 'NO'}")
    return [{"target": n, "measured": round(v, 3), "required": t, "met": m} for n, v, t, m in checks]


def markdown(results, checks):
    """The run's tables as BENCHMARKS.md shows them."""
    lines = ["| workload | contender | wall s | start+stop s | rows/s | MB/s | peak RSS MB (Batchform) | CPU s Batchform "
             "| CPU s model / others |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        start_stop = f"{r['start_stop_s']:.2f}" if "start_stop_s" in r else "–"
        ours = r["contender"].startswith("batchform")
        rss = f"{r['peak_rss_mb']:.1f}" if ours else "–"
        own = f"{r['own_cpu_s']:.2f}" if ours else "–"
        lines.append(f"| {r['workload']} | {r['contender']} | {r['wall_s']:.2f} | {start_stop} | {r['rows'] / r['wall_s']:,.0f} "
                     f"| {r['input_mb'] / r['wall_s']:.1f} | {rss} | {own} | {r['other_cpu_s']:.2f} |")
    scaled = [r for r in results if r["workload"].startswith("scaleout")]
    if scaled:
        lines += ["", "| scale-out | wall s | start+stop s | work s | work speedup | peak RSS MB | outputs identical |",
                  "|---|---:|---:|---:|---:|---:|---|"]
        for r in scaled:
            lines.append(f"| {r['workload']} | {r['wall_s']:.2f} | {r['start_stop_s']:.2f} | {r['work_s']:.2f} "
                         f"| {r['work_speedup']:.2f}x | {r['peak_rss_mb']:.1f} | {'yes' if r['output_identical'] else 'no'} |")
    lines += ["", "| target | measured | required | met |", "|---|---:|---|---|"]
    for c in checks:
        lines.append(f"| {c['target']} | {c['measured']:,.2f} | {c['required']} | {'yes' if c['met'] else '**no**'} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", nargs="+", default=["tabular", "pipeline", "small", "memory", "recorderrors", "scaleout"])
    parser.add_argument("--models", nargs="+", default=["linear", "forest"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--best-payload-mb", default="12")
    parser.add_argument("--data-dir", default="/tmp/batchform-bench")
    parser.add_argument("--build", default=os.path.join(ROOT, ".build/release"))
    options = parser.parse_args()
    binary = os.path.join(options.build, "batchform")
    server = os.path.join(options.build, "trivial-model-server")
    python = sys.executable
    os.environ.setdefault("BATCHFORM_PYTHON", python)
    print(f"machine: {os.cpu_count()} cores; {options.runs} runs after a warm-up, medians\n")
    print(HEADER)
    results = []
    if "tabular" in options.workloads:
        results += tabular(options, python, binary)
    if "pipeline" in options.workloads:
        results += pipeline(options, binary, server)
    if "small" in options.workloads:
        results += small_records(options, binary, server)
    if "memory" in options.workloads:
        results += memory(options, binary, server)
    if "recorderrors" in options.workloads:
        results += record_errors(options, binary, server)
    if "scaleout" in options.workloads:
        results += scaleout(options, binary, server)
    checks = targets(results)
    path = save_results("suite", {"measurements": results, "targets": checks})
    with open(path.removesuffix(".json") + ".md", "w") as f:
        f.write(markdown(results, checks))
    print(f"wrote {path.removesuffix('.json')}.md (the tables for BENCHMARKS.md)")


if __name__ == "__main__":
    main()
