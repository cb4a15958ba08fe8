//! `lnshard bench WORKLOAD [--json]`: the benchmark workloads of this crate, the
//! same code the benches in `benches/` run.
//!
//! * `scaling`: the routing node's payments/s on 1..=cores shards and on LDK's two lock
//!   designs ([`crate::scaling`]); `--svg FILE` also draws the plot.
//! * `durable`: the same replay on the engine's stores, group commit on and off
//!   ([`crate::scaling::durable`]).
//! * `two-node-sends`: LDK's `bench_sends` workload ([`crate::two_node`]).
//! * `memory`: resident bytes per idle channel ([`crate::memory`]).
//! * `plot`: redraws the scaling plot from a saved `scaling --json` report.
//! * `criterion-estimates`: gathers criterion's estimates (`cargo bench --bench micro`) into
//!   one JSON object.
//!
//! The report goes to standard output (progress to standard error); with `--json` the last
//! line of standard output is the report as one JSON object.
#![allow(clippy::print_stdout)]

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::scaling::{self, durable, plot};
use crate::{memory, two_node};
use clap::Subcommand;
use serde::Serialize;

/// Options of `lnshard bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The workload.
    #[command(subcommand)]
    pub workload: Workload,
    /// End the output with the report as one JSON object on its own line.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The workloads.
#[derive(Debug, Subcommand)]
pub enum Workload {
    /// Routing-node payments/s on 1..=cores shards, against one global Mutex and per-peer
    /// Mutexes (LDK's designs) driven by as many threads.
    Scaling(ScalingArgs),
    /// The scaling replay on the engine with no store, MemoryStore and FsStore with group
    /// commit on and off: payments/s and fsyncs per payment.
    Durable(DurableArgs),
    /// LDK's bench_sends workload: two nodes on one thread, one payment each way per
    /// iteration.
    #[command(name = "two-node-sends")]
    TwoNodeSends(TwoNodeArgs),
    /// Resident bytes per idle channel.
    Memory(MemoryArgs),
    /// Draw the scaling plot (SVG) from a saved `lnshard bench scaling --json` report.
    Plot(PlotArgs),
    /// Print criterion's estimates under DIR (as `cargo bench` left them) as one JSON object.
    #[command(name = "criterion-estimates")]
    CriterionEstimates(CriterionArgs),
}

/// Options of `lnshard bench scaling`.
#[derive(Debug, clap::Args)]
pub struct ScalingArgs {
    /// The largest shard (and baseline thread) count [default: the cores available].
    #[arg(long)]
    pub max_shards: Option<usize>,
    /// Lanes (pairs of peers paying each other through the routing node) [default: 32, or 8
    /// per shard when more].
    #[arg(long)]
    pub lanes: Option<usize>,
    /// Payments per lane (at most 48: what a lane's channels hold).
    #[arg(long, default_value_t = 40)]
    pub payments: usize,
    /// Runs of every configuration (figures are medians).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Also measure 2 shards with both ends of every lane on one shard.
    #[arg(long)]
    pub within_shard: bool,
    /// Also draw the plot (payments/s against shards) into this SVG file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

/// Options of `lnshard bench durable`.
#[derive(Debug, clap::Args)]
pub struct DurableArgs {
    /// Shards of the engine.
    #[arg(long, default_value_t = 2)]
    pub shards: usize,
    /// Lanes.
    #[arg(long, default_value_t = 32)]
    pub lanes: usize,
    /// Payments per lane (at most 48: what a lane's channels hold).
    #[arg(long, default_value_t = 10)]
    pub payments: usize,
    /// Runs of every store mode (figures are medians).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Directory for the filesystem stores [default: the system's temporary directory].
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Options of `lnshard bench two-node-sends`.
#[derive(Debug, clap::Args)]
pub struct TwoNodeArgs {
    /// Timed iterations [default: 6000 in memory, 1000 on the filesystem].
    #[arg(long)]
    pub iterations: Option<u64>,
    /// Untimed iterations first [default: 200 in memory, 50 on the filesystem].
    #[arg(long)]
    pub warmup: Option<u64>,
    /// Where each node's records go: `memory` (the engine's MemoryStore, as LDK's
    /// bench_sends) or `fs` (an FsStore per node under the system temporary directory, every
    /// commit synced before its messages leave, as LDK's bench_filesystem_persisted_sends).
    #[arg(long, value_enum, default_value_t = TwoNodeStore::Memory)]
    pub store: TwoNodeStore,
}

/// `lnshard bench two-node-sends --store`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TwoNodeStore {
    /// The engine's in-memory store.
    Memory,
    /// A filesystem store per node, synced.
    Fs,
}

/// Options of `lnshard bench memory`.
#[derive(Debug, clap::Args)]
pub struct MemoryArgs {
    /// Channel counts to measure, comma-separated [default: 10000,100000].
    #[arg(long, value_delimiter = ',')]
    pub channels: Vec<usize>,
}

/// Options of `lnshard bench plot`.
#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// The saved report: a file whose last non-empty line is `lnshard bench scaling --json`'s
    /// JSON object.
    #[arg(long)]
    pub from: PathBuf,
    /// The SVG file to write.
    #[arg(long)]
    pub svg: PathBuf,
}

/// Options of `lnshard bench criterion-estimates`.
#[derive(Debug, clap::Args)]
pub struct CriterionArgs {
    /// Criterion's output directory (`CRITERION_HOME`, or `<target dir>/criterion`).
    pub dir: PathBuf,
}

/// Runs `lnshard bench`.
pub fn run(args: BenchArgs) -> ExitCode {
    let json = args.json;
    let result = match args.workload {
        Workload::Scaling(a) => scaling_cmd(a, json),
        Workload::Durable(a) => {
            let options = durable::Options {
                shards: a.shards,
                lanes: a.lanes,
                payments_per_lane: a.payments,
                runs: a.runs,
                dir: a.dir,
            };
            durable::run_with_progress(&options, |run, mode, rate| {
                eprintln!("run {run}: {:<22} {rate:>7.0} payments/s", mode.name());
            })
            .map_err(|e| e.to_string())
            .map(|r| emit(&r, json))
        }
        Workload::TwoNodeSends(a) => {
            let store = match a.store {
                TwoNodeStore::Memory => two_node::StoreKind::Memory,
                TwoNodeStore::Fs => two_node::StoreKind::Fs,
            };
            let defaults = two_node::Options::for_store(store);
            let options = two_node::Options {
                iterations: a.iterations.unwrap_or(defaults.iterations),
                warmup: a.warmup.unwrap_or(defaults.warmup),
                store,
            };
            two_node::run(&options)
                .map_err(|e| e.to_string())
                .map(|r| emit(&r, json))
        }
        Workload::Memory(a) => {
            let mut options = memory::Options::default();
            if !a.channels.is_empty() {
                options.channels = a.channels;
            }
            memory::run(&options)
                .map_err(|e| e.to_string())
                .map(|r| emit(&r, json))
        }
        Workload::Plot(a) => plot_cmd(&a.from, &a.svg),
        Workload::CriterionEstimates(a) => criterion_estimates(&a.dir).map(|v| println!("{v}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lnshard bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a report, then (with `--json`) its JSON on the last line.
fn emit<R: Display + Serialize>(report: &R, json: bool) {
    println!("{report}");
    if json {
        match serde_json::to_string(report) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("lnshard bench: cannot serialize the report: {e}"),
        }
    }
}

fn scaling_cmd(a: ScalingArgs, json: bool) -> Result<(), String> {
    let max_shards = a.max_shards.unwrap_or_else(scaling::cores);
    let options = scaling::Options {
        max_shards,
        lanes: a
            .lanes
            .unwrap_or_else(|| scaling::default_lanes(max_shards)),
        payments_per_lane: a.payments,
        runs: a.runs,
        within_shard: a.within_shard,
    };
    eprintln!(
        "recording {} lanes x {} payments with real peers, then replaying on 1..={} shards/threads, {} runs",
        options.lanes, options.payments_per_lane, options.max_shards, options.runs
    );
    let report = scaling::run_with_progress(&options, |m| {
        eprintln!(
            "run {}: {:<28} {:>7.0} payments/s  wall {:.3}s  cpu/payment {}  driver cpu {}  cross-shard {}  shards busy {:.0?}",
            m.run,
            m.configuration,
            m.payments_per_sec,
            m.wall_secs,
            m.cpu_us_per_payment()
                .map_or("-".into(), |us| format!("{:.0} us", us)),
            m.driver_cpu_share
                .map_or("-".into(), |s| format!("{:.1}%", s * 100.0)),
            m.cross_shard_forwards,
            m.shard_busy.iter().map(|b| b * 100.0).collect::<Vec<_>>(),
        );
    })
    .map_err(|e| e.to_string())?;
    if let Some(path) = &a.svg {
        write_svg(&plot::Curves::from_report(&report), path)?;
        eprintln!("plot written to {}", path.display());
    }
    emit(&report, json);
    Ok(())
}

fn write_svg(curves: &plot::Curves, path: &Path) -> Result<(), String> {
    let svg = plot::svg(curves).map_err(|e| e.to_string())?;
    std::fs::write(path, svg).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn plot_cmd(from: &Path, svg: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(from)
        .map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) else {
        return Err(format!("{} is empty", from.display()));
    };
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
        format!(
            "{}: the last line is not a JSON report: {e}",
            from.display()
        )
    })?;
    let curves = plot::Curves::from_json(&value).map_err(|e| e.to_string())?;
    write_svg(&curves, svg)?;
    eprintln!("plot written to {}", svg.display());
    Ok(())
}

/// Every `<bench>/new/estimates.json` under `dir`, as `{ "<bench id>": { "mean_ns": ..,
/// "mean_lower_ns": .., "mean_upper_ns": .., "median_ns": .., "std_dev_ns": .. } }`
/// (criterion's point estimates and the mean's confidence interval, in nanoseconds).
fn criterion_estimates(dir: &Path) -> Result<serde_json::Value, String> {
    let mut found = serde_json::Map::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).map_err(|e| format!("cannot read {}: {e}", d.display()))?;
        for entry in entries {
            let path = entry
                .map_err(|e| format!("cannot read {}: {e}", d.display()))?
                .path();
            if !path.is_dir() || path.file_name().is_some_and(|n| n == "report") {
                continue;
            }
            let estimates = path.join("new").join("estimates.json");
            if estimates.is_file() {
                let read = |p: &Path| -> Result<serde_json::Value, String> {
                    let text = std::fs::read_to_string(p)
                        .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
                };
                let e = read(&estimates)?;
                // criterion's own name of the benchmark, else its directory under `dir`.
                let id = read(&path.join("new").join("benchmark.json"))
                    .ok()
                    .and_then(|b| b["full_id"].as_str().map(str::to_string))
                    .unwrap_or_else(|| {
                        path.strip_prefix(dir)
                            .unwrap_or(&path)
                            .display()
                            .to_string()
                    });
                let point = |k: &str| e[k]["point_estimate"].clone();
                found.insert(
                    id,
                    serde_json::json!({
                        "mean_ns": point("mean"),
                        "mean_lower_ns": e["mean"]["confidence_interval"]["lower_bound"],
                        "mean_upper_ns": e["mean"]["confidence_interval"]["upper_bound"],
                        "median_ns": point("median"),
                        "std_dev_ns": point("std_dev"),
                    }),
                );
            } else {
                stack.push(path);
            }
        }
    }
    if found.is_empty() {
        return Err(format!(
            "no criterion estimates under {} (run `cargo bench --bench micro` first)",
            dir.display()
        ));
    }
    Ok(serde_json::Value::Object(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criterion_estimates_are_gathered_by_benchmark_id() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let bench = dir.path().join("wire decode").join("update_add_htlc");
        std::fs::create_dir_all(bench.join("new")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("report")).expect("mkdir");
        let estimate = |x: f64| {
            serde_json::json!({"confidence_interval": {"confidence_level": 0.95,
                "lower_bound": x - 1.0, "upper_bound": x + 1.0}, "point_estimate": x,
                "standard_error": 0.5})
        };
        let estimates = serde_json::json!({"mean": estimate(120.0), "median": estimate(118.0),
            "median_abs_dev": estimate(2.0), "slope": null, "std_dev": estimate(3.0)});
        std::fs::write(bench.join("new/estimates.json"), estimates.to_string()).expect("write");
        std::fs::write(
            bench.join("new/benchmark.json"),
            r#"{"full_id": "wire decode/update_add_htlc"}"#,
        )
        .expect("write");
        let found = criterion_estimates(dir.path()).expect("found");
        let b = &found["wire decode/update_add_htlc"];
        assert_eq!(b["mean_ns"], 120.0);
        assert_eq!(b["mean_lower_ns"], 119.0);
        assert_eq!(b["mean_upper_ns"], 121.0);
        assert_eq!(b["median_ns"], 118.0);
        assert_eq!(b["std_dev_ns"], 3.0);
        assert!(criterion_estimates(&dir.path().join("report")).is_err());
    }
}
