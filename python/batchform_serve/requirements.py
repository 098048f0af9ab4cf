"""Installs `code/requirements.txt` before the model loads, into a cache keyed by the file's
hash, so the next job with the same file installs nothing."""
import hashlib
import os
import subprocess
import sys

from .handlers import StartupError


def install_requirements(code_dir: str) -> None:
    path = os.path.join(code_dir, "requirements.txt")
    if not os.path.exists(path):
        return
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    cache = os.environ.get("BATCHFORM_REQUIREMENTS_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "batchform", "requirements")
    target = os.path.join(cache, digest)
    if not os.path.exists(os.path.join(target, ".complete")):
        import shutil

        shutil.rmtree(target + ".partial", ignore_errors=True)
        print(f"batchform_serve: installing {path} into {target}", file=sys.stderr, flush=True)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
             "--target", target + ".partial", "-r", path],
            capture_output=True, text=True)
        if result.returncode != 0:
            raise StartupError(f"pip install -r {path} failed: {result.stderr.strip()[-2000:]}")
        shutil.rmtree(target, ignore_errors=True)
        os.rename(target + ".partial", target)
        open(os.path.join(target, ".complete"), "w").close()
    sys.path.insert(0, target)
