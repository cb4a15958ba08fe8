#!/usr/bin/env bash
# Two commits' `lnshard` alternating on this machine, for an issue's "no loss against the
# commit before it" line: the main job (payments/s, filesystem store) and `two-node-sends`
# with each store (microseconds per iteration, `benches/ldk_compare.sh`'s lnshard figures).
# Medians over the rounds, and the change.
#
#   benches/compare_commits.sh BASE [HEAD] [ROUNDS]     (HEAD: the working tree's HEAD; 5)
#
# Each commit is built in release mode in a worktree of its own with a target directory of
# its own under $COMPARE_DIR (default /tmp/lnshard-compare): sharing one target directory
# between worktrees breaks their builds. BASE_BIN / HEAD_BIN: an already built `lnshard` to
# use instead. Run it with nothing else running; the builds come first, the timings after.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: benches/compare_commits.sh BASE [HEAD] [ROUNDS]}
head=${2:-HEAD}
rounds=${3:-5}
dir=${COMPARE_DIR:-/tmp/lnshard-compare}
mkdir -p "$dir"

build() { # commit -> path of its lnshard binary
    local rev sha tree
    rev=$1
    sha=$(git rev-parse --short=12 "$rev^{commit}")
    tree="$dir/tree-$sha"
    if [ ! -x "$dir/lnshard-$sha" ]; then
        [ -d "$tree" ] || git worktree add --detach --quiet "$tree" "$sha"
        (cd "$tree" && CARGO_TARGET_DIR="$dir/target-$sha" cargo build --release --quiet --bin lnshard) >&2
        cp "$dir/target-$sha/release/lnshard" "$dir/lnshard-$sha"
    fi
    echo "$dir/lnshard-$sha"
}
base_bin=${BASE_BIN:-$(build "$base")}
head_bin=${HEAD_BIN:-$(build "$head")}
echo "base $base: $base_bin"
echo "head $head: $head_bin"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

out="$dir/rounds.txt"
: > "$out"
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }
for r in $(seq "$rounds"); do
    for side in base head; do
        bin=$base_bin
        [ "$side" = head ] && bin=$head_bin
        v=$("$bin" --json 2>/dev/null | field payments_per_sec)
        echo "main $side $v" | tee -a "$out"
        for store in memory fs; do
            v=$("$bin" bench two-node-sends --store "$store" --json 2>/dev/null | field us_per_iteration)
            echo "two-node-sends-$store $side $v" | tee -a "$out"
        done
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    workload, side, value = line.split()
    runs[(workload, side)].append(float(value))
for workload, unit, higher_is_better in [
    ("main", "payments/s", True),
    ("two-node-sends-memory", "us/iteration", False),
    ("two-node-sends-fs", "us/iteration", False),
]:
    b = statistics.median(runs[(workload, "base")])
    h = statistics.median(runs[(workload, "head")])
    speed = h / b if higher_is_better else b / h
    print(f"{workload:24} base {b:10.1f}  head {h:10.1f} {unit:13} head's speed {100 * (speed - 1):+.1f}%")
PY
