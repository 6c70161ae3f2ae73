#!/usr/bin/env bash
# Benchmark: execute-ds-pipeline + wait-kfp-run (release) vs the same calls made by the
# kfp 2.9.0 Python client (already installed: pip is not timed), against one KFP emulator.
#
#   bench/kfp.sh [VENV] [ITERATIONS]      (default /work/venv-kfp, 10 iterations)
#
# Runs finish at once in the emulator (0 s pending/running), so the figures are the client
# cost: process start, imports, TLS-less HTTP round trips, JSON. Each iteration is a fresh
# process (two for Rust: submit, then wait). Prints total and mean wall time of each, the ratio
# Python / Rust, and the peak RSS of the largest process of each side.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
venv=${1:-/work/venv-kfp}
n=${2:-10}
target=${CARGO_TARGET_DIR:-$root/target}
py="$venv/bin/python"
[ -x "$py" ] || { echo "no python in $venv (python3 -m venv $venv && $venv/bin/pip install kfp==2.9.0)" >&2; exit 2; }

(cd "$root" && CARGO_TARGET_DIR="$target" cargo build --quiet --release -p execute-ds-pipeline -p wait-kfp-run -p ct-sandbox)
exec_bin="$target/release/execute-ds-pipeline"
wait_bin="$target/release/wait-kfp-run"
fx="$root/tests/fixtures/kfp"
pkg="$fx/jukebox-training-pipeline.yaml"
params="$fx/default_parameters.json"

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
CT_SANDBOX_KFP_REQUIRE_TOKEN=$(cat "$work/token") "$target/release/ct-sandbox" serve \
    --kfp-pending 0s --kfp-running 0s >"$work/out" 2>"$work/serve.log" &
sandbox_pid=$!
url=
for _ in $(seq 200); do
    url=$(awk '$1 == "kfp" { print $2 }' "$work/out")
    [ -n "$url" ] && break
    sleep 0.05
done
[ -n "$url" ] || { echo "ct-sandbox serve printed no kfp line" >&2; cat "$work/serve.log" >&2; exit 1; }
mkdir -p "$work/results"

rust_once() {
    /usr/bin/time -f "%M %U %S" -o "$work/rss1" "$exec_bin" --kfp-url "$url" --token-file "$work/token" \
        --results-dir "$work/results" --log-level warn --pipeline-package "$pkg" \
        --parameters-file "$params" --param version=abc1234 --param prod_flag=true \
        --enable-caching true --experiment bench >/dev/null
    /usr/bin/time -f "%M %U %S" -o "$work/rss2" "$wait_bin" --kfp-url "$url" --token-file "$work/token" \
        --results-dir "$work/results" --log-level warn --run-id-file "$work/results/KFP_RUN_ID" >/dev/null
}
py_once() {
    /usr/bin/time -f "%M %U %S" -o "$work/rss1" "$py" "$here/kfp_baseline.py" "$url" "$work/token" "$pkg" "$params" >/dev/null 2>&1
}
now() { date +%s.%N; }

# One warm-up of each (page cache, experiment created), not timed.
rust_once
py_once

rss_rs=0
rss_py=0
cpu_rs=0
cpu_py=0
# Peak RSS (KB) and CPU seconds (user + sys) of one measured process.
take() {
    read -r kb user sys <"$work/$1"
    cpu=$(awk -v a="$cpu" -v u="$user" -v s="$sys" 'BEGIN { print a + u + s }')
    rss=$kb
}
t0=$(now)
for _ in $(seq 1 "$n"); do
    rust_once
    for f in rss1 rss2; do
        cpu=$cpu_rs; take "$f"; cpu_rs=$cpu; [ "$rss" -gt "$rss_rs" ] && rss_rs=$rss
    done
done
t1=$(now)
for _ in $(seq 1 "$n"); do
    py_once
    cpu=$cpu_py; take rss1; cpu_py=$cpu; [ "$rss" -gt "$rss_py" ] && rss_py=$rss
done
t2=$(now)

awk -v n="$n" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v rr="$rss_rs" -v rp="$rss_py" \
    -v cr="$cpu_rs" -v cp="$cpu_py" -v load="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
    rs = t1 - t0; py = t2 - t1
    printf "iterations:          %d (submit + wait, run already SUCCEEDED on the first poll)\n", n
    printf "rust   (2 processes): wall %.2f s (mean %.0f ms), CPU %.2f s, peak RSS %.1f MB\n", rs, rs / n * 1000, cr, rr / 1024
    printf "python kfp 2.9.0:     wall %.2f s (mean %.0f ms), CPU %.2f s, peak RSS %.1f MB\n", py, py / n * 1000, cp, rp / 1024
    printf "ratio python/rust: wall-time %.1fx, CPU %.1fx, peak RSS %.1fx   (load average %s)\n", py / rs, (cr > 0 ? cp / cr : 0), rp / rr, load
}'
