#!/usr/bin/env bash
# lnshard's two-node-sends against LDK's own bench_sends, on the same machine, alternating
# (LDK, lnshard, LDK, lnshard, ...) so that both see the same conditions. Writes
# docs/bench/ldk_compare.json. Needs ../shared/ldk-bench (LDK's benchmark harness; its first
# build takes about 5 minutes). Run with nothing else running.
#   benches/ldk_compare.sh [ROUNDS]    (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
ldk_dir="$(cd ../shared/ldk-bench && pwd)"
cargo build --release --quiet --bin lnshard
ldk_bin=$(cd "$ldk_dir" && CARGO_TARGET_DIR=${LDK_TARGET_DIR:-/tmp/ldk-bench-target} RUSTFLAGS=--cfg=ldk_bench \
    cargo bench --no-run --message-format=json 2>/dev/null | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ldk_ms=()
ours_us=()
for r in $(seq "$rounds"); do
    # criterion prints "time:   [low median high]" with units; take the median in ms.
    full=$(cd "$work" && "$ldk_bin" --bench '^bench_sends$' 2>&1)
    line=$(echo "$full" | grep "time:" | head -n 1)
    ms=$(echo "$line" | python3 -c 'import re,sys
m=re.search(r"\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", sys.stdin.read())
v,u=float(m.group(1)),m.group(2)
print(v*{"ns":1e-6,"µs":1e-3,"us":1e-3,"ms":1.0,"s":1e3}[u])')
    ldk_ms+=("$ms")
    ours=$(target/release/lnshard bench two-node-sends --json | tail -n 1)
    us=$(echo "$ours" | python3 -c 'import json,sys; print(json.load(sys.stdin)["us_per_iteration"])')
    ours_us+=("$us")
    echo "round $r: LDK bench_sends $ms ms/iteration; lnshard two-node-sends $us us/iteration"
done
python3 - "${ldk_ms[*]}" "${ours_us[*]}" "$rounds" > docs/bench/ldk_compare.json <<'PY'
import json, statistics, sys
ldk = [float(x) for x in sys.argv[1].split()]
ours = [float(x) / 1000.0 for x in sys.argv[2].split()]
ldk_med, ours_med = statistics.median(ldk), statistics.median(ours)
print(json.dumps({
    "command": f"benches/ldk_compare.sh {sys.argv[3]}",
    "what": "ms per iteration (one 10,000-msat payment each way, full commitment dance and claim), alternating runs",
    "ldk_bench_sends_ms": ldk, "lnshard_two_node_sends_ms": ours,
    "ldk_median_ms": ldk_med, "lnshard_median_ms": ours_med,
    "ldk_payments_per_sec": 2000.0 / ldk_med, "lnshard_payments_per_sec": 2000.0 / ours_med,
    "speedup": ldk_med / ours_med,
}, indent=2))
PY
cat docs/bench/ldk_compare.json
