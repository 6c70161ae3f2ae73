#!/usr/bin/env bash
# Benchmark: bump-gitops-version vs the git CLI (clone --depth 1 + in-place edit + commit + push)
# on a generated GitOps repository (~20,000 files, ~5,000 commits) served by the real
# `git http-backend` behind Basic auth (crates/ct-forge-emulator/examples/git_server.rs).
#
# Usage: bench/gitops.sh            (env: FILES=20000 COMMITS=5000 RUNS=5 CARGO_TARGET_DIR)
# Prints per-tool median wall time, the ratio and the peak RSS (/usr/bin/time %M, max over the
# process tree, i.e. including git-remote-http, pack-objects, index-pack).
set -euo pipefail

FILES=${FILES:-20000}
COMMITS=${COMMITS:-5000}
RUNS=${RUNS:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}

echo "building (release)..." >&2
(cd "$here" && cargo build -q --release -p bump-gitops-version --bin bump-gitops-version \
  && cargo build -q --release -p ct-forge-emulator --example git_server)
step="$target/release/bump-gitops-version"
server="$target/release/examples/git_server"

work=$(mktemp -d /tmp/gitops-bench.XXXXXX)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "generating a repository with $FILES files and $COMMITS commits (git fast-import)..." >&2
bare="$work/root/org/gitops.git"
mkdir -p "$bare"
git init -q --bare -b main "$bare"
t0=$(date +%s.%N)
python3 "$here/bench/gitops-gen.py" "$FILES" "$COMMITS" | git -C "$bare" fast-import --quiet
git -C "$bare" gc -q
t1=$(date +%s.%N)
echo "  generated in $(echo "$t1 - $t0" | bc) s: $(git -C "$bare" ls-tree -r main | wc -l) files, $(git -C "$bare" rev-list --count main) commits, pack $(du -sh "$bare/objects" | cut -f1)" >&2

user=bench
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$password" > "$work/password"
chmod 600 "$work/password"
GIT_SERVER_USER=$user GIT_SERVER_PASSWORD=$password "$server" "$work/root" > "$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 100); do grep -q '^url ' "$work/server.out" 2>/dev/null && break; sleep 0.05; done
url="$(sed -n 's/^url //p' "$work/server.out")/org/gitops.git"
echo "  served at $url" >&2

# The git CLI gets the password from an askpass helper (never in argv or the URL).
cat > "$work/askpass" <<ASK
#!/bin/sh
case "\$1" in Username*) echo "$user" ;; *) cat "$work/password" ;; esac
ASK
chmod 700 "$work/askpass"

app=app00042
env=prod
file="model-deployments/$env/$app/config.yaml"
mkdir -p "$work/results"

run_rust() { # $1 = version
  /usr/bin/time -f '%e %M' -o "$work/time" "$step" --repo-url "$url" --username "$user" \
    --password-file "$work/password" --environment "$env" --app "$app" --set "version=$1" \
    --results-dir "$work/results" --log-level warn > /dev/null
  test "$(cat "$work/results/CHANGED")" = true
}

run_git() { # $1 = version
  rm -rf "$work/clone"
  GIT_ASKPASS="$work/askpass" GIT_TERMINAL_PROMPT=0 /usr/bin/time -f '%e %M' -o "$work/time" sh -c '
    set -e
    git clone -q --depth 1 --branch main "$1" "$2"
    cd "$2"
    sed -i "s/^version: .*/version: \"$3\"    # bumped by CT/" "$4"
    git -c user.name=bench -c user.email=bench@example.com commit -q -am "bump $3"
    git push -q origin HEAD:main' sh "$url" "$work/clone" "$1" "$file"
}

# A leaner shell variant: no working tree except the one file (what a careful script could do).
run_git_lean() { # $1 = version
  rm -rf "$work/clone"
  GIT_ASKPASS="$work/askpass" GIT_TERMINAL_PROMPT=0 /usr/bin/time -f '%e %M' -o "$work/time" sh -c '
    set -e
    git clone -q --depth 1 --no-checkout --branch main "$1" "$2"
    cd "$2"
    git reset -q
    git checkout HEAD -- "$4"
    sed -i "s/^version: .*/version: \"$3\"    # bumped by CT/" "$4"
    git -c user.name=bench -c user.email=bench@example.com commit -q -m "bump $3" -- "$4"
    git push -q origin HEAD:main' sh "$url" "$work/clone" "$1" "$file"
}

rust_t=(); rust_m=(); git_t=(); git_m=(); lean_t=(); lean_m=()
for i in $(seq "$RUNS"); do
  run_rust "2.$i.0"; read -r t m < "$work/time"; rust_t+=("$t"); rust_m+=("$m")
  run_git "3.$i.0";  read -r t m < "$work/time"; git_t+=("$t"); git_m+=("$m")
  run_git_lean "4.$i.0"; read -r t m < "$work/time"; lean_t+=("$t"); lean_m+=("$m")
  echo "  run $i: bump-gitops-version ${rust_t[-1]} s ${rust_m[-1]} KiB | git CLI ${git_t[-1]} s ${git_m[-1]} KiB | git CLI, no checkout ${lean_t[-1]} s ${lean_m[-1]} KiB" >&2
done
# Sanity: every variant's last bump landed on main, byte-preserving.
git -C "$bare" show "main:$file" | grep -q '^version: "4\.'"$RUNS"'\.0"    # bumped by CT$'
test "$(git -C "$bare" rev-list --count main)" -eq $((COMMITS + 3 * RUNS))

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
max() { printf '%s\n' "$@" | sort -n | tail -1; }
rt=$(median "${rust_t[@]}"); gt=$(median "${git_t[@]}")
lt=$(median "${lean_t[@]}")
rm_=$(max "${rust_m[@]}"); gm=$(max "${git_m[@]}"); lm=$(max "${lean_m[@]}")
echo
echo "repository: $FILES files, $COMMITS commits; $RUNS runs each (median wall, max peak RSS)"
printf '%-40s %8s s  %8s MiB\n' "bump-gitops-version (release)" "$rt" "$(echo "scale=1; $rm_/1024" | bc)"
printf '%-40s %8s s  %8s MiB\n' "git clone --depth 1 + sed + commit + push" "$gt" "$(echo "scale=1; $gm/1024" | bc)"
printf '%-40s %8s s  %8s MiB\n' "same, --no-checkout + 1-file checkout" "$lt" "$(echo "scale=1; $lm/1024" | bc)"
echo "ratio (git CLI / bump-gitops-version): wall $(echo "scale=2; $gt/$rt" | bc)x, peak RSS $(echo "scale=2; $gm/$rm_" | bc)x"
echo "ratio (git CLI no checkout / bump-gitops-version): wall $(echo "scale=2; $lt/$rt" | bc)x, peak RSS $(echo "scale=2; $lm/$rm_" | bc)x"
