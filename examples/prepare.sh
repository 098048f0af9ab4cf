# Sourced by the examples' run.sh. Checks the system packages, sets up .venv-examples (numpy,
# scikit-learn, joblib), builds Batchform quietly, and leaves $here (the example), $root (the
# repository), $batchform (the binary) and a fresh $here/build; exports BATCHFORM_PYTHON, the
# interpreter the built-in model server runs handlers with. `stage NAME` starts a timed stage.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
stage_name=""
stage_started=$SECONDS
stage() {
    [ -n "$stage_name" ] && echo "    done in $((SECONDS - stage_started)) s"
    stage_name="$1"
    stage_started=$SECONDS
    [ -n "$1" ] && echo "==> $1"
    return 0
}
trap 'status=$?; [ $status -ne 0 ] && [ -n "$stage_name" ] && echo "!!! $stage_name failed (status $status)" >&2' EXIT

stage "System packages (zlib, SQLite headers, python3-venv)"
"$root/scripts/install-system-packages"

stage "Python environment for the example (.venv-examples: numpy, scikit-learn, joblib)"
venv="$root/.venv-examples"
stamp="$venv/.installed-$(sha256sum "$root/examples/requirements.txt" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --disable-pip-version-check --progress-bar off -r "$root/examples/requirements.txt" \
        | grep -E "^(Collecting|Successfully)" | sed -e 's/ (from .*//' -e 's/^/    /'
    touch "$stamp"
else
    echo "    already set up"
fi
export BATCHFORM_PYTHON="$venv/bin/python"

stage "Building batchform (debug build; the first one takes about 6 minutes on 2 cores)"
build_log=$(mktemp)
if ! (cd "$root" && swift build --product batchform) > "$build_log" 2>&1; then
    grep -E "error:" "$build_log" | sort -u | head -40 >&2 || true
    echo "The build failed; its full output is in $build_log." >&2
    exit 1
fi
rm -f "$build_log"
batchform="$root/.build/debug/batchform"
echo "    $("$batchform" --version | sed 's/^/batchform /')"
rm -rf "$here/build"
