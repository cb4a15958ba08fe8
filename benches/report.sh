#!/usr/bin/env bash
# Runs lnshard's benchmarks and writes their results to docs/bench/ (see docs/bench/README.md).
#
#   benches/report.sh                   # everything: scaling durable two-node-sends memory micro
#   benches/report.sh scaling durable   # only these
#   benches/report.sh --smoke           # tiny sizes into target/bench-smoke/ (checks the script;
#                                       # its figures mean nothing)
#
# Run it on a quiet machine: nothing else compiling or running. Timings taken while other work
# runs are not results. Every step is one `lnshard bench ...` command (or `cargo bench --bench
# micro`) that can be rerun alone; each writes NAME.txt (the human-readable report) and
# NAME.json (its JSON object, the command's last line of output).
#
# Environment: BENCH_OUT (output directory, default docs/bench), SCALING_ARGS, DURABLE_ARGS,
# TWO_NODE_ARGS, MEMORY_ARGS (extra arguments to each workload), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
workloads=()
for arg in "$@"; do
    case "$arg" in
        --smoke) smoke=1 ;;
        scaling | durable | two-node-sends | memory | micro) workloads+=("$arg") ;;
        *)
            echo "usage: benches/report.sh [--smoke] [scaling|durable|two-node-sends|memory|micro ...]" >&2
            exit 2
            ;;
    esac
done
if [ ${#workloads[@]} -eq 0 ]; then
    workloads=(scaling durable two-node-sends memory micro)
fi

target=${CARGO_TARGET_DIR:-target}
if [ "$smoke" = 1 ]; then
    out=${BENCH_OUT:-$target/bench-smoke}
    SCALING_ARGS=${SCALING_ARGS:---lanes 4 --payments 3 --runs 1}
    DURABLE_ARGS=${DURABLE_ARGS:---lanes 4 --payments 3 --runs 1}
    TWO_NODE_ARGS=${TWO_NODE_ARGS:---iterations 20 --warmup 2}
    MEMORY_ARGS=${MEMORY_ARGS:---channels 100,1000}
else
    out=${BENCH_OUT:-docs/bench}
fi
mkdir -p "$out"

load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo unknown)
echo "== load average before starting: $load (nothing else should be running)"

echo "== build"
cargo build --release --bin lnshard
bin="$target/release/lnshard"

# The provenance of this run.
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo true || echo false)
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//; s/"/\\"/g' || echo unknown)
cat >"$out/run.json" <<EOF
{"commit":"$commit","uncommitted_changes":$dirty,"date_utc":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","cores":$(nproc),"cpu":"$cpu","load_average_before":"$load","smoke":$([ "$smoke" = 1 ] && echo true || echo false),"workloads":"${workloads[*]}"}
EOF

# bench NAME ARGS...: `lnshard bench ARGS... --json`; NAME.txt gets the report, NAME.json its
# last line.
bench() {
    local name=$1
    shift
    echo "== $name: lnshard bench $* --json"
    local tmp
    tmp=$(mktemp)
    "$bin" bench "$@" --json >"$tmp"
    head -n -1 "$tmp" | tee "$out/$name.txt"
    tail -n 1 "$tmp" >"$out/$name.json"
    rm -f "$tmp"
}

for w in "${workloads[@]}"; do
    case "$w" in
        # shellcheck disable=SC2086 # the *_ARGS are word lists
        scaling) bench scaling scaling --svg "$out/scaling.svg" ${SCALING_ARGS:-} ;;
        durable) bench durable durable ${DURABLE_ARGS:-} ;;
        two-node-sends) bench two-node-sends two-node-sends ${TWO_NODE_ARGS:-} ;;
        memory) bench memory memory ${MEMORY_ARGS:-} ;;
        micro)
            echo "== micro: cargo bench --bench micro"
            criterion_home="$target/criterion-report"
            rm -rf "$criterion_home"
            if [ "$smoke" = 1 ]; then
                CRITERION_HOME="$criterion_home" cargo bench --bench micro -- \
                    --warm-up-time 0.1 --measurement-time 0.2 --sample-size 10
            else
                CRITERION_HOME="$criterion_home" cargo bench --bench micro
            fi
            "$bin" bench criterion-estimates "$criterion_home" >"$out/micro.json"
            echo "criterion estimates written to $out/micro.json"
            ;;
    esac
done

echo "== done: $out (provenance in $out/run.json)"
