#!/usr/bin/env bash
# Fidelity check of the KFP emulator with the official kfp==2.9.0 Python client.
#
# Usage: tests/fidelity/kfp.sh [CT_SANDBOX_BIN] [PYTHON_OR_VENV]
#   CT_SANDBOX_BIN  default: $CARGO_TARGET_DIR (or target)/debug/ct-sandbox
#   PYTHON_OR_VENV  a python with kfp==2.9.0, or a venv directory; default: /work/venv-kfp.
#                   A venv path that does not exist is created with kfp==2.9.0 (needs PyPI).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-${CARGO_TARGET_DIR:-$root/target}/debug/ct-sandbox}
py=${2:-/work/venv-kfp}
if [ ! -e "$py" ]; then
  # A venv path that does not exist yet: create it (what CI does on a clean machine).
  python3 -m venv "$py"
  "$py/bin/pip" install -q kfp==2.9.0
fi
[ -d "$py" ] && py="$py/bin/python"
[ -x "$bin" ] || { echo "kfp.sh: $bin not found; build it: cargo build -p ct-sandbox" >&2; exit 2; }
"$py" -c 'import kfp, sys; sys.exit(kfp.__version__ != "2.9.0")' \
  || { echo "kfp.sh: $py lacks kfp==2.9.0" >&2; exit 2; }

work=$(mktemp -d)
token="fidelity-$RANDOM$RANDOM"
CT_SANDBOX_KFP_REQUIRE_TOKEN=$token "$bin" serve --kfp-pending 20ms --kfp-running 300ms \
  >"$work/out" 2>"$work/err" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

url=
for _ in $(seq 200); do
  url=$(awk '$1 == "kfp" { print $2 }' "$work/out")
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/err" >&2; exit 3; }
  sleep 0.05
done
[ -n "$url" ] || { echo "kfp.sh: no 'kfp URL' line from ct-sandbox serve" >&2; cat "$work/err" >&2; exit 3; }
HOME="$work" "$py" "$root/tests/fidelity/kfp_client.py" "$url" "$root/tests/fixtures/kfp" "$token"
