//! `cargo bench --bench scaling`: the routing node's payments/s on 1..=cores shards against
//! LDK's two lock designs, the same code as `lnshard bench scaling`
//! ([`lnshard_bench::scaling`]). Sized by `BENCH_MAX_SHARDS` (default: the cores),
//! `BENCH_LANES` (default 32, or 8 per shard when more), `BENCH_PAYMENTS` (per lane, 40),
//! `BENCH_RUNS` (3) and `BENCH_WITHIN_SHARD=1`. Prints the table, then the JSON report on
//! the last line.
#![allow(clippy::print_stdout)]

use lnshard_bench::scaling;

fn env(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

fn main() {
    let max_shards = env("BENCH_MAX_SHARDS").unwrap_or_else(scaling::cores);
    let options = scaling::Options {
        max_shards,
        lanes: env("BENCH_LANES").unwrap_or_else(|| scaling::default_lanes(max_shards)),
        payments_per_lane: env("BENCH_PAYMENTS").unwrap_or(40),
        runs: env("BENCH_RUNS").unwrap_or(3),
        within_shard: env("BENCH_WITHIN_SHARD") == Some(1),
    };
    let report = scaling::run_with_progress(&options, |m| {
        println!(
            "run {}: {:<28} {:>7.0} payments/s",
            m.run, m.configuration, m.payments_per_sec
        );
    })
    .unwrap_or_else(|e| panic!("scaling: {e}"));
    println!("{report}");
    println!(
        "{}",
        serde_json::to_string(&report).expect("the report serializes")
    );
}
