"""What the benchmark scripts share: seeded input data, running a command while watching its
CPU and memory in /proc, and writing results as JSON."""
import json
import os
import random
import resource
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


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def descendants_cpu_ticks(root, seen):
    """Adds to `seen` (pid -> CPU ticks) every live descendant of `root`, so processes that are
    never reaped by us (a model server's workers) are counted too."""
    parents = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parents[int(name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            pass
    family = {root}
    changed = True
    while changed:
        changed = False
        for pid, (parent, _) in parents.items():
            if parent in family and pid not in family:
                family.add(pid)
                changed = True
    for pid in family - {root}:
        seen[pid] = max(seen.get(pid, 0), parents[pid][1])


def measure(command, watch_pid=True, env=None, cwd=None):
    """Runs a command to its end. Returns wall s, peak RSS MB and CPU s of the process itself,
    and the CPU s of everything it started (its descendants, sampled from /proc every 0.1 s,
    or what was reaped, whichever is more)."""
    cpu_before = children_cpu()
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    peak_kb, own_ticks = 0, 0
    family, polls = {}, 0
    while process.poll() is None:
        polls += 1
        if polls % 5 == 0:
            descendants_cpu_ticks(process.pid, family)
        if watch_pid:
            try:
                with open(f"/proc/{process.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak_kb = max(peak_kb, int(line.split()[1]))
                with open(f"/proc/{process.pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                    own_ticks = int(fields[11]) + int(fields[12])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
        time.sleep(0.02)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode()
    if process.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({process.returncode}):\n{stderr[-3000:]}")
    total = children_cpu() - cpu_before
    own = own_ticks / TICKS if watch_pid else 0.0
    others = max(total - own, sum(family.values()) / TICKS)
    return {"wall_s": wall, "peak_rss_mb": peak_kb / 1024, "own_cpu_s": own, "other_cpu_s": others}


def save_results(kind, results):
    """Writes bench-results/<kind>-<time>.json, so runs can be compared."""
    os.makedirs(os.path.join(ROOT, "bench-results"), exist_ok=True)
    path = os.path.join(ROOT, "bench-results", f"{kind}-{time.strftime('%Y%m%dT%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump({"machine": {"cores": os.cpu_count()}, "results": results}, f, indent=2)
    print(f"wrote {path}")
    return path
