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
# corpus/<target> (ignored by git) collects what the fuzzer finds; seeds/<target> (committed,
# where there is one) holds a few hand-made or store-written starting inputs.
printf '%s\n' $targets | xargs -P "$JOBS" -I{} sh -c \
  "mkdir -p corpus/{}; seeds=; [ -d seeds/{} ] && seeds=seeds/{}; \
   cargo fuzz run {} corpus/{} \$seeds -- -max_total_time=$SECONDS_EACH -print_final_stats=1 \
   > logs/{}.log 2>&1; echo \"{} exit=\$?\""
for t in $targets; do
  runs=$(grep -E '^stat::number_of_executed_units' "logs/$t.log" | awk '{print $2}')
  crash=$(grep -cE 'ERROR: libFuzzer|panicked' "logs/$t.log")
  last=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "logs/$t.log" | tail -1)
  echo "$t: executions=${runs:-?} crashes=$crash ${last}"
done
