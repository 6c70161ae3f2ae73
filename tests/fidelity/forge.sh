#!/usr/bin/env bash
# Fidelity check of the forge emulator's GitHub and GitLab views with PyGithub 2.10.0 and
# python-gitlab 8.6.0, and of its git smart HTTP with the git CLI. (The Gitea API is checked
# against the Gitea swagger by `cargo test -p ct-forge-emulator --test forge_swagger`.)
#
#   tests/fidelity/forge.sh VENV [TARGET_DIR]
#
# VENV: a virtualenv with PyGithub==2.10.0 python-gitlab==8.6.0 (created if missing).
# TARGET_DIR: cargo target directory with a debug ct-sandbox (default: $CARGO_TARGET_DIR or
# ./target); built if missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${1:?usage: forge.sh VENV [TARGET_DIR]}
target=${2:-${CARGO_TARGET_DIR:-$root/target}}

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -c 'import github, gitlab' 2>/dev/null \
    || "$venv/bin/pip" install --quiet 'PyGithub==2.10.0' 'python-gitlab==8.6.0'
if [ ! -x "$target/debug/ct-sandbox" ]; then
    (cd "$root" && CARGO_TARGET_DIR="$target" cargo build --quiet -p ct-sandbox)
fi

work=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

token="fidelity$RANDOM$RANDOM$RANDOM"
printf '%s' "$token" > "$work/token"
"$target/debug/ct-sandbox" serve --forge-admin-token-file "$work/token" \
    --forge-root "$work/repos" >"$work/out" 2>"$work/err" &
pid=$!
url=
for _ in $(seq 200); do
    url=$(awk '$1 == "forge" { print $2 }' "$work/out")
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/err" >&2; exit 3; }
    sleep 0.05
done
[ -n "$url" ] || { echo "forge.sh: no 'forge URL' line from ct-sandbox serve" >&2; exit 3; }
HOME="$work" "$venv/bin/python" "$here/forge_clients.py" "$url" "$token" gitea_admin
