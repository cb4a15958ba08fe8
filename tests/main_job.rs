//! The main job end to end: the `lnshard` binary with a small network, checked through its
//! `--json` line (every payment succeeded, every channel balance reconciled on both sides).

use std::process::Command;

fn run_job(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_lnshard"))
        .args(args)
        .output()
        .expect("the lnshard binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lnshard {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().expect("some output");
    serde_json::from_str(last).expect("the last line is one JSON object")
}

#[test]
fn main_job_pays_through_the_engine_and_reconciles_on_the_filesystem_store() {
    let v = run_job(&[
        "--peers",
        "6",
        "--shards",
        "2",
        "--payments",
        "60",
        "--in-flight",
        "8",
        "--json",
    ]);
    assert_eq!(v["payments"], 60);
    assert_eq!(v["succeeded"], 60);
    assert_eq!(v["failed"], 0);
    assert_eq!(v["shards"], 2);
    assert_eq!(v["reconciled"], true);
    assert_eq!(v["store"], "fs");
    assert!(v["payments_per_sec"].as_f64().expect("a number") > 0.0);
    assert!(v["p99_ms"].as_f64() >= v["p50_ms"].as_f64());
    assert!(v["fsyncs_per_payment"].as_f64().expect("a number") > 0.0);
    assert!(v["forwarded"].as_u64().expect("a number") > 0);
    assert_eq!(v["shard_stats"].as_array().expect("per shard").len(), 2);
}

#[test]
fn main_job_runs_on_the_memory_store_with_one_shard_and_a_seed() {
    let v = run_job(&[
        "--peers",
        "3",
        "--shards",
        "1",
        "--payments",
        "20",
        "--store",
        "memory",
        "--seed",
        "9",
        "--json",
    ]);
    assert_eq!(v["succeeded"], 20);
    assert_eq!(v["reconciled"], true);
    assert_eq!(v["seed"], 9);
    assert_eq!(v["fsyncs_per_payment"], 0.0);
}

#[test]
fn main_job_refuses_nonsense_flags_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_lnshard"))
        .args(["--peers", "1"])
        .output()
        .expect("the lnshard binary runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--peers must be at least 2"));
}
