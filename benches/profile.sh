#!/usr/bin/env bash
# Profiles the main job's routing node (its shard threads) with perf and splits the samples
# into cost categories (docs/ARCHITECTURE.md, question 7). Writes docs/bench/profile.json.
#   benches/profile.sh [PAYMENTS]     (default 3000; run on a quiet machine)
set -euo pipefail
cd "$(dirname "$0")/.."
payments="${1:-3000}"
export CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
cargo build --release --quiet
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
perf record -q -F 999 --call-graph dwarf,16384 -o "$data/perf.data" -- \
    target/release/lnshard --payments "$payments" --json > "$data/job.out"
tail -n 1 "$data/job.out" > "$data/job.json"
perf script -i "$data/perf.data" --no-demangle -F comm,ip,sym 2>/dev/null \
    | python3 benches/profile.py lnshard-shard | tee "$data/profile.txt"
mkdir -p docs/bench
python3 - "$data/profile.txt" "$data/job.json" "$payments" > docs/bench/profile.json <<'PY'
import json, sys
shares = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
job = json.loads(open(sys.argv[2]).read())
print(json.dumps({
    "command": f"benches/profile.sh {sys.argv[3]}",
    "what": "perf samples of the routing node's shard threads during the main job, by category",
    "profile": shares,
    "job": {k: job[k] for k in ("payments", "payments_per_sec", "shards", "peers", "p50_ms", "p99_ms", "fsyncs_per_payment", "reconciled")},
}, indent=2))
PY
echo "wrote docs/bench/profile.json"
