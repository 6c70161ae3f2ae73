#!/usr/bin/env bash
# Benchmark: open-pr (release) vs the workshop's shell step (`curl -X POST …/pulls` with Basic
# auth, answer ignored) against the same sandbox forge (Gitea API).
#
#   bench/open-pr.sh [ITERATIONS]      (default 20)
#
# The curl baseline sends one POST per run (after the first it gets 409 and ignores it: it
# neither reuses nor reports the PR). open-pr does the full idempotent flow per run: version
# probe, repository, both branches, lookup by base/head, PATCH only if needed, results.
# Prints total and mean wall time of each, the ratio, and peak RSS of one run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
n=${1:-20}
target=${CARGO_TARGET_DIR:-$root/target}
(cd "$root" && CARGO_TARGET_DIR="$target" cargo build --quiet --release -p open-pr -p ct-sandbox)
step="$target/release/open-pr"

work=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

token="bench$RANDOM$RANDOM$RANDOM"
password="pw$RANDOM$RANDOM"
printf '%s' "$token" >"$work/token"
printf '%s' "$password" >"$work/password"
"$target/release/ct-sandbox" serve --forge-admin-token-file "$work/token" \
    --forge-admin-password-file "$work/password" --forge-root "$work/repos" >"$work/out" 2>"$work/err" &
pid=$!
url=
for _ in $(seq 200); do
    url=$(awk '$1 == "forge" { print $2 }' "$work/out")
    [ -n "$url" ] && break
    sleep 0.05
done
[ -n "$url" ] || { echo "no forge line from ct-sandbox serve" >&2; cat "$work/err" >&2; exit 1; }
api="$url/api/v1"
user=gitea_admin

# Seed: a repository with main and jukebox-1.0.1 one commit ahead, pushed with the git CLI.
curl -fsS -o /dev/null -H "Authorization: token $token" -H 'Content-Type: application/json' \
    -d '{"name":"mlops-gitops"}' "$api/user/repos"
basic=$(printf '%s:%s' "$user" "$token" | base64 -w0)
g() { GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_COUNT=1 \
      GIT_CONFIG_KEY_0=http.extraHeader GIT_CONFIG_VALUE_0="Authorization: Basic $basic" \
      GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@x GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@x \
      git -C "$work/w" "$@"; }
mkdir "$work/w"
g init -q -b main && echo "version: 1.0.0" >"$work/w/config.yaml" && g add . && g commit -qm init
g push -q "$url/$user/mlops-gitops.git" main
g checkout -qb jukebox-1.0.1 && echo "version: 1.0.1" >"$work/w/config.yaml" && g commit -qam promote
g push -q "$url/$user/mlops-gitops.git" jukebox-1.0.1
mkdir -p "$work/results"

now() { date +%s.%N; }
curl_step() {
    # The workshop step: password on the command line, answer ignored.
    curl -s -o /dev/null -X POST -u "$user:$password" -H 'Content-Type: application/json' \
        -d '{"head":"jukebox-1.0.1","base":"main","title":"Promote jukebox 1.0.1"}' \
        "$api/repos/$user/mlops-gitops/pulls"
}

CT_TOKEN="$token" "$step" --api-url "$api" --repo "$user/mlops-gitops" --head jukebox-1.0.1 \
    --base main --title "Promote jukebox 1.0.1" --results-dir "$work/results" --log-level warn >/dev/null
# ^ creates the PR (warm-up, not timed)
curl_step   # warm-up (409, ignored)
rss_c=0; rss_r=0
t0=$(now)
for _ in $(seq 1 "$n"); do
    /usr/bin/time -f %M -o "$work/rss" curl -s -o /dev/null -X POST -u "$user:$password" \
        -H 'Content-Type: application/json' \
        -d '{"head":"jukebox-1.0.1","base":"main","title":"Promote jukebox 1.0.1"}' \
        "$api/repos/$user/mlops-gitops/pulls"
    r=$(cat "$work/rss"); [ "$r" -gt "$rss_c" ] && rss_c=$r
done
t1=$(now)
for _ in $(seq 1 "$n"); do
    CT_TOKEN="$token" /usr/bin/time -f %M -o "$work/rss" "$step" --api-url "$api" --repo "$user/mlops-gitops" \
        --head jukebox-1.0.1 --base main --title "Promote jukebox 1.0.1" --results-dir "$work/results" \
        --log-level warn >/dev/null
    r=$(cat "$work/rss"); [ "$r" -gt "$rss_r" ] && rss_r=$r
done
t2=$(now)
[ "$(cat "$work/results/PR_ACTION")" = existing ] || { echo "open-pr did not reuse the PR" >&2; exit 1; }
open=$(curl -fsS "$api/repos/$user/mlops-gitops/pulls?state=open" | grep -o '"number":' | wc -l)
[ "$open" -eq 1 ] || { echo "expected one open PR, found $open" >&2; exit 1; }

awk -v n="$n" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v rc="$rss_c" -v rr="$rss_r" 'BEGIN {
    c = t1 - t0; r = t2 - t1
    printf "iterations: %d (one process per run; the PR exists after the warm-up)\n", n
    printf "curl step (1 POST, 409 ignored): total %.2f s, mean %.1f ms/run, peak RSS %.1f MiB\n", c, 1000*c/n, rc/1024
    printf "open-pr (full idempotent flow):   total %.2f s, mean %.1f ms/run, peak RSS %.1f MiB\n", r, 1000*r/n, rr/1024
    printf "ratio (curl / rust): wall %.2fx, peak RSS %.2fx\n", c/r, rc/rr
}'
