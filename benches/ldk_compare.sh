#!/usr/bin/env bash
# lnshard's two-node-sends against LDK's own payment benches, on the same machine,
# alternating so that both see the same conditions. Per round:
#   LDK bench_sends (in-memory TestPersister)  then  lnshard two-node-sends --store memory,
#   LDK bench_filesystem_persisted_sends       then  lnshard two-node-sends --store fs.
# Both filesystem runs write under the system temporary directory (TMPDIR: set it to put
# both on another disk). Writes docs/bench/ldk_compare.json (medians over the rounds). Needs
# ../shared/ldk-bench (LDK's benchmark harness; its first build takes about 5 minutes). Run
# with nothing else running: a compile beside it doubles the figures.
#   benches/ldk_compare.sh [ROUNDS]    (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
ldk_dir="$(cd ../shared/ldk-bench && pwd)"
cargo build --release --quiet --bin lnshard
ldk_bin=$(cd "$ldk_dir" && CARGO_TARGET_DIR=${LDK_TARGET_DIR:-/tmp/ldk-bench-target} RUSTFLAGS=--cfg=ldk_bench \
    cargo bench --no-run --message-format=json 2>/dev/null | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
# LDK's FilesystemStore bench writes ./bench_filesystem_store_{a,b}: run it in a fresh
# directory under the system temporary directory, as lnshard's stores are.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tmp_fs=$(df --output=fstype "$work" | tail -n 1 | tr -d ' ')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# criterion prints "time:   [low median high]" with units: the median in ms.
ldk_ms() {
    (cd "$work" && rm -rf bench_filesystem_store_a bench_filesystem_store_b \
        && "$ldk_bin" --bench "$1" 2>&1) | grep "time:" | head -n 1 | python3 -c 'import re,sys
m=re.search(r"\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", sys.stdin.read())
v,u=float(m.group(1)),m.group(2)
print(v*{"ns":1e-6,"µs":1e-3,"us":1e-3,"ms":1.0,"s":1e3}[u])'
}

ldk_mem=(); ours_mem=(); ldk_fs=(); ours_fs=(); ours_fs_reports=()
for r in $(seq "$rounds"); do
    ms=$(ldk_ms '^bench_sends$')
    ldk_mem+=("$ms")
    ours=$(target/release/lnshard bench two-node-sends --json | tail -n 1)
    us=$(echo "$ours" | python3 -c 'import json,sys; print(json.load(sys.stdin)["us_per_iteration"])')
    ours_mem+=("$us")
    echo "round $r: LDK bench_sends $ms ms/iteration; lnshard two-node-sends $us us/iteration"

    ms=$(ldk_ms 'bench_filesystem_persisted_sends')
    ldk_fs+=("$ms")
    ours=$(TMPDIR="$work" target/release/lnshard bench two-node-sends --store fs --json | tail -n 1)
    us=$(echo "$ours" | python3 -c 'import json,sys; print(json.load(sys.stdin)["us_per_iteration"])')
    ours_fs+=("$us")
    ours_fs_reports+=("$ours")
    echo "round $r: LDK bench_filesystem_persisted_sends $ms ms/iteration; lnshard two-node-sends --store fs $us us/iteration"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

printf '%s\n' "${ours_fs_reports[@]}" > "$work/fs_reports.jsonl"
python3 - "${ldk_mem[*]}" "${ours_mem[*]}" "${ldk_fs[*]}" "${ours_fs[*]}" "$rounds" \
    "$work/fs_reports.jsonl" "$tmp_fs" "$load_before" "$load_after" > docs/bench/ldk_compare.json <<'PY'
import json, os, statistics, sys
ldk = [float(x) for x in sys.argv[1].split()]
ours = [float(x) / 1000.0 for x in sys.argv[2].split()]
ldk_fs = [float(x) for x in sys.argv[3].split()]
ours_fs = [float(x) / 1000.0 for x in sys.argv[4].split()]
fs_reports = [json.loads(l) for l in open(sys.argv[6]) if l.strip()]
ldk_med, ours_med = statistics.median(ldk), statistics.median(ours)
ldk_fs_med, ours_fs_med = statistics.median(ldk_fs), statistics.median(ours_fs)
print(json.dumps({
    "command": f"benches/ldk_compare.sh {sys.argv[5]}",
    "what": "ms per iteration (one 10,000-msat payment each way, full commitment dance and claim), alternating runs",
    "ldk_bench_sends_ms": ldk, "lnshard_two_node_sends_ms": ours,
    "ldk_median_ms": ldk_med, "lnshard_median_ms": ours_med,
    "ldk_payments_per_sec": 2000.0 / ldk_med, "lnshard_payments_per_sec": 2000.0 / ours_med,
    "speedup": ldk_med / ours_med,
    "speedup_per_round": [l / o for l, o in zip(ldk, ours)],
    "fs_what": "the same with each node on a synced filesystem store: LDK's bench_filesystem_persisted_sends (FilesystemStore) against lnshard two-node-sends --store fs (FsStore); both under the system temporary directory",
    "ldk_fs_bench_ms": ldk_fs, "lnshard_fs_two_node_sends_ms": ours_fs,
    "ldk_fs_median_ms": ldk_fs_med, "lnshard_fs_median_ms": ours_fs_med,
    "ldk_fs_payments_per_sec": 2000.0 / ldk_fs_med, "lnshard_fs_payments_per_sec": 2000.0 / ours_fs_med,
    "fs_speedup": ldk_fs_med / ours_fs_med,
    "fs_speedup_per_round": [l / o for l, o in zip(ldk_fs, ours_fs)],
    "ldk_fs_fsyncs_per_payment": 20,
    "ldk_fs_fsyncs_counted": "strace -f -c -e trace=fsync,rename around the bench with 10 and 30 flat samples: 20 renames (monitor writes) per iteration, 2 fsyncs each (docs/bench/ldk_compare.md)",
    "lnshard_fs_fsyncs_per_payment": statistics.median(r["fsyncs_per_payment"] for r in fs_reports),
    "lnshard_fs_commits_per_payment": statistics.median(r["commits_per_payment"] for r in fs_reports),
    "lnshard_fs_store_ms_per_iteration": statistics.median(r["store_us_per_iteration"] / 1000.0 for r in fs_reports),
    "temp_filesystem": sys.argv[7],
    "cores": os.cpu_count(),
    "loadavg_before": sys.argv[8], "loadavg_after": sys.argv[9],
}, indent=2))
PY
cat docs/bench/ldk_compare.json
