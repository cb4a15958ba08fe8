#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 300) each, JOBS (default 2) at a time, and prints
# each target's execution count and result. Needs `cargo install cargo-fuzz --locked`.
# Stable Rust works with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes nightly-only flags).
set -uo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${1:-300}
JOBS=${JOBS:-2}
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
cargo fuzz build
mkdir -p logs
printf '%s\n' $targets | xargs -P "$JOBS" -I{} sh -c \
  "cargo fuzz run {} -- -max_total_time=$SECONDS_EACH -print_final_stats=1 > logs/{}.log 2>&1; echo \"{} exit=\$?\""
for t in $targets; do
  runs=$(grep -E '^stat::number_of_executed_units' "logs/$t.log" | awk '{print $2}')
  crash=$(grep -cE 'ERROR: libFuzzer|panicked' "logs/$t.log")
  echo "$t: executions=${runs:-?} crashes=$crash"
done
