#!/usr/bin/env bash
# Benchmark: write-registry-metadata (release) vs the original Python step (model-registry
# 0.2.10, already installed: pip is not timed) against the same Model Registry emulator.
#
#   bench/registry.sh VENV [ITERATIONS]      (default 20 iterations)
#
# Each iteration is one deploy as a fresh process, alternating versions 1 and 2 of `jukebox`
# (so the label really moves and every run writes), with a new run id each time. Prints the
# total and mean wall time of each, the ratio Python / Rust, and the peak RSS of one run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
venv=${1:?usage: bench/registry.sh VENV [ITERATIONS]}
n=${2:-20}
target=${CARGO_TARGET_DIR:-$root/target}
py="$venv/bin/python"
[ -x "$py" ] || { echo "no python in $venv (python3 -m venv $venv && $venv/bin/pip install model-registry==0.2.10)" >&2; exit 2; }

# CT_BENCH_NO_BUILD=1 reuses the release binaries already in the target dir.
if [ -z "${CT_BENCH_NO_BUILD:-}" ]; then
    (cd "$root" && CARGO_TARGET_DIR="$target" cargo build --quiet --release -p write-registry-metadata -p ct-sandbox)
fi
step="$target/release/write-registry-metadata"

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

printf '%s' "bench-$RANDOM-$RANDOM-token" >"$work/token"
mkfifo "$work/out"
"$target/release/ct-sandbox" serve --registry-token-file "$work/token" >"$work/out" 2>"$work/serve.log" &
sandbox_pid=$!
exec 3<"$work/out"
url=
while IFS= read -r -t 30 line <&3; do
    case "$line" in "registry "*) url=${line#registry }; break ;; esac
done
cat <&3 >/dev/null &
[ -n "$url" ] || { echo "ct-sandbox serve printed no registry line" >&2; exit 1; }

export KF_PIPELINES_SA_TOKEN_PATH="$work/token"
"$py" "$here/registry_step.py" seed "$url" 2
mkdir -p "$work/results"

now() { date +%s.%N; }

# One warm-up of each (page cache), not timed.
"$py" "$here/registry_step.py" step "$url" 1 test warm-py "Warm <w@x>" >/dev/null
"$step" --registry-url "$url" --token-file "$work/token" --results-dir "$work/results" --log-level warn \
    --model jukebox --version 2 --environment test --kfp-run-id warm-rs --author "Warm <w@x>" \
    --artifact-uri "oci://image-registry.openshift-image-registry.svc:5000/proj-test/jukebox:2" >/dev/null

rss_py=0
rss_rs=0
t0=$(now)
for i in $(seq 1 "$n"); do
    v=$(( i % 2 + 1 ))
    /usr/bin/time -f %M -o "$work/rss" "$py" "$here/registry_step.py" step "$url" "$v" test "py-$i" "Py <py@example.com>" >/dev/null
    r=$(cat "$work/rss"); [ "$r" -gt "$rss_py" ] && rss_py=$r
done
t1=$(now)
for i in $(seq 1 "$n"); do
    v=$(( i % 2 + 1 ))
    /usr/bin/time -f %M -o "$work/rss" "$step" --registry-url "$url" --token-file "$work/token" \
        --results-dir "$work/results" --log-level warn --model jukebox --version "$v" --environment test \
        --kfp-run-id "rs-$i" --author "Rs <rs@example.com>" \
        --artifact-uri "oci://image-registry.openshift-image-registry.svc:5000/proj-test/jukebox:$v" >/dev/null
    r=$(cat "$work/rss"); [ "$r" -gt "$rss_rs" ] && rss_rs=$r
done
t2=$(now)

# Both left the registry in the same state: the label on exactly one version.
holders=$(curl -fsS -H "Authorization: Bearer $(cat "$work/token")" \
    "$url/api/model_registry/v1alpha3/registered_models/1/versions" | grep -o '"test":' | wc -l)
[ "$holders" -eq 1 ] || { echo "expected exactly one holder of the label, found $holders" >&2; exit 1; }

awk -v n="$n" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v rp="$rss_py" -v rr="$rss_rs" 'BEGIN {
    py = t1 - t0; rs = t2 - t1
    printf "iterations: %d (one deploy per process, alternating versions 1 and 2)\n", n
    printf "python model-registry 0.2.10: total %.2f s, mean %.1f ms/run, peak RSS %.1f MiB\n", py, 1000*py/n, rp/1024
    printf "write-registry-metadata:      total %.2f s, mean %.1f ms/run, peak RSS %.1f MiB\n", rs, 1000*rs/n, rr/1024
    printf "ratio (python / rust): wall %.1fx, peak RSS %.1fx\n", py/rs, rp/rr
}'
