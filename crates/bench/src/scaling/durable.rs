//! What persistence costs, and what group commit buys: the scaling workload's recording
//! (lanes forwarded across shards, every routing-node message compared byte for byte with
//! the recording) replayed on the engine with no store, the in-memory `MemoryStore`, and the
//! filesystem `FsStore` three ways: pipelined (the engine's default: each shard hands every
//! message's writes to its committer thread, which writes whatever queued meanwhile in one
//! `write_batch` and one fdatasync while the shard goes on), and with the shard writing
//! itself, group commit on (the default `commit_batch`: one `write_batch`, one fdatasync, per
//! shard batch) and off (`commit_batch` 1: one per message).
//!
//! fsyncs/payment is `Store::syncs()` over the timed replay (channel opening excluded)
//! divided by the payments; for the `MemoryStore` it counts the `write_batch` calls it would
//! have synced.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use lnshard_testkit::engine_config;
use serde::Serialize;
use shard_engine::store::{FsStore, MemoryStore, Store};
use shard_engine::EngineConfig;

use super::{check_options, choose_lanes, median_of, record, replay_engine, Error};

/// What [`run`] measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Shards of the engine.
    pub shards: usize,
    /// Lanes (pairs of peers paying each other through the routing node).
    pub lanes: usize,
    /// Payments per lane.
    pub payments_per_lane: usize,
    /// Runs of every store mode; each figure is the median.
    pub runs: usize,
    /// Where the filesystem stores' temporary directories go (default: the system's
    /// temporary directory). Its disk's fdatasync latency is what is measured.
    pub dir: Option<PathBuf>,
}

impl Default for Options {
    /// 2 shards, 32 lanes of 10 payments, 3 runs, the system's temporary directory.
    fn default() -> Self {
        Options {
            shards: 2,
            lanes: 32,
            payments_per_lane: 10,
            runs: 3,
            dir: None,
        }
    }
}

/// How the replayed engine persists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreMode {
    /// No store.
    NoStore,
    /// `MemoryStore`, group commit on.
    MemoryStore,
    /// `FsStore`, pipelined group commit (the engine's default).
    FsPipelined,
    /// `FsStore` written by the shard itself, group commit on (the default `commit_batch`).
    FsGroupCommitOn,
    /// `FsStore` written by the shard itself, group commit off (`commit_batch` 1).
    FsGroupCommitOff,
}

impl StoreMode {
    /// Every mode, in the order measured.
    pub const ALL: [StoreMode; 5] = [
        StoreMode::NoStore,
        StoreMode::MemoryStore,
        StoreMode::FsPipelined,
        StoreMode::FsGroupCommitOn,
        StoreMode::FsGroupCommitOff,
    ];

    /// The mode's field name in the JSON report.
    pub fn name(self) -> &'static str {
        match self {
            StoreMode::NoStore => "no_store",
            StoreMode::MemoryStore => "memory_store",
            StoreMode::FsPipelined => "fs_pipelined",
            StoreMode::FsGroupCommitOn => "fs_group_commit_on",
            StoreMode::FsGroupCommitOff => "fs_group_commit_off",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            StoreMode::NoStore => "no store",
            StoreMode::MemoryStore => "MemoryStore",
            StoreMode::FsPipelined => "FsStore, pipelined",
            StoreMode::FsGroupCommitOn => "FsStore, group commit on",
            StoreMode::FsGroupCommitOff => "FsStore, group commit off",
        }
    }

    fn commit_batch(self) -> usize {
        match self {
            StoreMode::FsGroupCommitOff => 1,
            _ => shard_engine::EngineConfig::default().commit_batch,
        }
    }
}

/// One store mode's replays.
#[derive(Debug, Clone, Serialize)]
pub struct ModeResult {
    /// The mode.
    pub mode: StoreMode,
    /// Median payments/s.
    pub payments_per_sec: f64,
    /// Median store syncs per payment.
    pub fsyncs_per_payment: f64,
    /// Payments/s of each run.
    pub runs: Vec<f64>,
    /// Syncs per payment of each run.
    pub fsyncs_per_payment_runs: Vec<f64>,
    /// Median process CPU per payment, microseconds (None where `/proc` is not readable):
    /// with the busy share, what tells a store's cost in work from its cost in waiting.
    pub cpu_us_per_payment: Option<f64>,
    /// Median over the runs of the shards' mean busy share of the wall time (a shard idles
    /// when none of its peers has a message it may handle: with a store, while their
    /// answers wait for a sync).
    pub shard_busy: f64,
}

/// What [`run`] measured. Serialized as one flat JSON object: per mode, its median
/// payments/s (`fs_group_commit_on`, ...) and syncs per payment
/// (`fs_group_commit_on_fsyncs_per_payment`, ...), then the details.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Median payments/s and syncs per payment of every mode, by field name.
    #[serde(flatten)]
    pub fields: BTreeMap<String, f64>,
    /// The durable configuration's payments/s: `FsStore`, pipelined (the engine's default).
    pub payments_per_sec: f64,
    /// Group commit on over off, `FsStore` payments/s (medians).
    pub group_commit_speedup: f64,
    /// `FsStore` pipelined over no store, the median of the per-run ratios (each run replays
    /// every mode back to back, so a ratio within a run is not moved by the machine's speed
    /// drifting between runs); 0 without runs.
    pub pipelined_vs_no_store_paired: f64,
    /// Shards of the engine.
    pub shards: usize,
    /// Lanes.
    pub lanes: usize,
    /// Payments per lane.
    pub payments_per_lane: usize,
    /// Payments per replay.
    pub payments: usize,
    /// Runs per mode.
    pub runs: usize,
    /// Every mode's replays.
    pub modes: Vec<ModeResult>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "durable: engine with {} shards, {} lanes x {} payments = {} forwarded payments per replay; median of {} runs",
            self.shards, self.lanes, self.payments_per_lane, self.payments, self.runs
        )?;
        writeln!(
            f,
            "{:<28} {:>10} {:>15} {:>12} {:>11}  runs (payments/s)",
            "store", "payments/s", "fsyncs/payment", "CPU/payment", "shards busy"
        )?;
        for m in &self.modes {
            let runs: Vec<String> = m.runs.iter().map(|r| format!("{r:.0}")).collect();
            let cpu = m
                .cpu_us_per_payment
                .map_or_else(|| "-".to_string(), |c| format!("{:.2} ms", c / 1000.0));
            writeln!(
                f,
                "{:<28} {:>10.0} {:>15.2} {:>12} {:>10.0}%  {}",
                m.mode.describe(),
                m.payments_per_sec,
                m.fsyncs_per_payment,
                cpu,
                m.shard_busy * 100.0,
                runs.join(" ")
            )?;
        }
        writeln!(
            f,
            "group commit on / off (FsStore, written by the shard): {:.2}x",
            self.group_commit_speedup
        )?;
        let none = self.fields.get(StoreMode::NoStore.name()).copied();
        match none.filter(|n| *n > 0.0) {
            Some(none) => write!(
                f,
                "FsStore, pipelined / no store: {:.2}x (medians); {:.2}x (median of per-run ratios)",
                self.payments_per_sec / none,
                self.pipelined_vs_no_store_paired
            ),
            None => Ok(()),
        }
    }
}

/// Runs the durable workload.
pub fn run(options: &Options) -> Result<Report, Error> {
    run_with_progress(options, |_, _, _| {})
}

/// [`run`], calling `progress(run, mode, payments_per_sec)` after each replay.
pub fn run_with_progress(
    options: &Options,
    mut progress: impl FnMut(usize, StoreMode, f64),
) -> Result<Report, Error> {
    let Options {
        shards,
        lanes: lanes_n,
        payments_per_lane,
        runs,
        ref dir,
    } = *options;
    check_options(lanes_n, payments_per_lane, runs)?;
    if shards == 0 {
        return Err(Error::Options("shards must be at least 1".into()));
    }
    let (peers, lanes) = choose_lanes(lanes_n, true);
    let rec = record(peers, &lanes, payments_per_lane)?;
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); StoreMode::ALL.len()];
    let mut syncs: Vec<Vec<f64>> = vec![Vec::new(); StoreMode::ALL.len()];
    let mut cpus: Vec<Vec<f64>> = vec![Vec::new(); StoreMode::ALL.len()];
    let mut busy: Vec<Vec<f64>> = vec![Vec::new(); StoreMode::ALL.len()];
    for run in 0..runs {
        for (i, mode) in StoreMode::ALL.into_iter().enumerate() {
            let tmp = match dir {
                Some(d) => tempfile::tempdir_in(d),
                None => tempfile::tempdir(),
            }
            .map_err(|e| Error::Store(format!("cannot create a temporary directory: {e}")))?;
            let store: Option<Arc<dyn Store>> = match mode {
                StoreMode::NoStore => None,
                StoreMode::MemoryStore => Some(Arc::new(MemoryStore::new())),
                StoreMode::FsPipelined
                | StoreMode::FsGroupCommitOn
                | StoreMode::FsGroupCommitOff => {
                    Some(Arc::new(FsStore::open(tmp.path()).map_err(|e| {
                        Error::Store(format!(
                            "cannot open a store in {}: {e}",
                            tmp.path().display()
                        ))
                    })?))
                }
            };
            let config = EngineConfig {
                commit_batch: mode.commit_batch(),
                pipeline_commits: mode == StoreMode::FsPipelined,
                ..engine_config(shards)
            };
            let name = format!("durable {} ({} shards)", mode.name(), shards);
            let o = replay_engine(config, store.clone(), peers, &lanes, &rec, &name)?;
            let total = store.as_ref().map_or(0, |s| s.syncs());
            let rate = o.rate();
            rates[i].push(rate);
            syncs[i].push(total.saturating_sub(o.setup_syncs) as f64 / o.payments as f64);
            if let Some(cpu) = o.process_cpu {
                cpus[i].push(cpu.as_secs_f64() * 1e6 / o.payments as f64);
            }
            if !o.shard_busy.is_empty() {
                busy[i].push(o.shard_busy.iter().sum::<f64>() / o.shard_busy.len() as f64);
            }
            progress(run, mode, rate);
        }
    }
    let mut fields = BTreeMap::new();
    let mut modes = Vec::new();
    for (i, mode) in StoreMode::ALL.into_iter().enumerate() {
        let rate = median_of(rates[i].iter().copied()).unwrap_or(0.0);
        let per_payment = median_of(syncs[i].iter().copied()).unwrap_or(0.0);
        fields.insert(mode.name().to_string(), rate);
        fields.insert(format!("{}_fsyncs_per_payment", mode.name()), per_payment);
        modes.push(ModeResult {
            mode,
            payments_per_sec: rate,
            fsyncs_per_payment: per_payment,
            runs: rates[i].clone(),
            fsyncs_per_payment_runs: syncs[i].clone(),
            cpu_us_per_payment: median_of(cpus[i].iter().copied()),
            shard_busy: median_of(busy[i].iter().copied()).unwrap_or(0.0),
        });
    }
    let on = fields[StoreMode::FsGroupCommitOn.name()];
    let off = fields[StoreMode::FsGroupCommitOff.name()];
    let pipelined = fields[StoreMode::FsPipelined.name()];
    let index = |mode: StoreMode| StoreMode::ALL.iter().position(|m| *m == mode);
    let paired = match (index(StoreMode::FsPipelined), index(StoreMode::NoStore)) {
        (Some(p), Some(n)) => median_of(
            rates[p]
                .iter()
                .zip(&rates[n])
                .filter(|(_, none)| **none > 0.0)
                .map(|(fs, none)| fs / none),
        )
        .unwrap_or(0.0),
        _ => 0.0,
    };
    Ok(Report {
        pipelined_vs_no_store_paired: paired,
        fields,
        payments_per_sec: pipelined,
        group_commit_speedup: if off > 0.0 { on / off } else { 0.0 },
        shards,
        lanes: lanes_n,
        payments_per_lane,
        payments: lanes_n * payments_per_lane,
        runs,
        modes,
    })
}
