#!/usr/bin/env bash
# Fidelity check of the Model Registry emulator with the official Python client.
#
#   tests/fidelity/registry.sh VENV [TARGET_DIR]
#
# VENV: a virtualenv with `pip install model-registry==0.2.10` (created if missing).
# TARGET_DIR: cargo target directory for the debug builds of ct-sandbox and
# write-registry-metadata (default: $CARGO_TARGET_DIR or ./target); they are built first.
# Starts `ct-sandbox serve` with a required bearer token, reads its `registry URL` line, runs
# tests/fidelity/registry_client.py (client + original step sequence + raw HTTP checks + the
# Rust step read back by the Python client), and stops the sandbox.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${1:?usage: registry.sh VENV [TARGET_DIR]}
target=${2:-${CARGO_TARGET_DIR:-$root/target}}

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'model-registry==0.2.10'
fi
# Build (a no-op when up to date); CT_FIDELITY_NO_BUILD=1 uses the binaries as they are.
if [ -z "${CT_FIDELITY_NO_BUILD:-}" ]; then
    (cd "$root" && CARGO_TARGET_DIR="$target" cargo build --quiet -p ct-sandbox -p write-registry-metadata)
fi

work=$(mktemp -d)
sandbox_pid=
cleanup() {
    if [ -n "$sandbox_pid" ]; then
        kill "$sandbox_pid" 2>/dev/null || true
        wait "$sandbox_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# The client reads the token file verbatim: no trailing newline.
printf '%s' "fidelity-$RANDOM-$RANDOM-token" >"$work/token"
mkfifo "$work/out"
"$target/debug/ct-sandbox" serve --registry-token-file "$work/token" >"$work/out" 2>"$work/serve.log" &
sandbox_pid=$!

url=
exec 3<"$work/out"
while IFS= read -r -t 30 line <&3; do
    case "$line" in
        "registry "*) url=${line#registry }; break ;;
    esac
done
# Keep draining the sandbox's stdout so it never blocks.
cat <&3 >/dev/null &
if [ -z "$url" ]; then
    echo "ct-sandbox serve printed no registry line" >&2
    cat "$work/serve.log" >&2
    exit 1
fi
echo "registry emulator at $url"

TMPDIR="$work" "$venv/bin/python" "$here/registry_client.py" "$url" \
    --token-file "$work/token" --step "$target/debug/write-registry-metadata"
