# Sourced by the examples' run.sh: sets up .venv (scikit-learn), builds Batchform, and leaves
# $here (the example), $root (the repository), $batchform (the binary) and a fresh $here/build;
# exports BATCHFORM_PYTHON, the interpreter the built-in model server runs handlers with.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
"$root/scripts/setup-python"
(cd "$root" && swift build --product batchform)
batchform="$root/.build/debug/batchform"
export BATCHFORM_PYTHON="$root/.venv/bin/python"
rm -rf "$here/build"
