//! `cargo bench --bench durable`: the scaling replay on the engine with no store, the
//! MemoryStore, and the FsStore with group commit on and off (payments/s, fsyncs/payment);
//! the same code as `lnshard bench durable` ([`lnshard_bench::scaling::durable`]).
//! Sized by `BENCH_SHARDS` (2), `BENCH_LANES` (32), `BENCH_PAYMENTS` (per lane, 10) and
//! `BENCH_RUNS` (3). Prints the table, then the JSON report on the last line.
#![allow(clippy::print_stdout)]

use lnshard_bench::scaling::durable;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let defaults = durable::Options::default();
    let options = durable::Options {
        shards: env("BENCH_SHARDS", defaults.shards),
        lanes: env("BENCH_LANES", defaults.lanes),
        payments_per_lane: env("BENCH_PAYMENTS", defaults.payments_per_lane),
        runs: env("BENCH_RUNS", defaults.runs),
        dir: None,
    };
    let report = durable::run_with_progress(&options, |run, mode, rate| {
        println!("run {run}: {:<22} {rate:>7.0} payments/s", mode.name());
    })
    .unwrap_or_else(|e| panic!("durable: {e}"));
    println!("{report}");
    println!(
        "{}",
        serde_json::to_string(&report).expect("the report serializes")
    );
}
