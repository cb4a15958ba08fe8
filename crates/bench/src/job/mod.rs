//! The main job: a routing node on the shard engine with many peers, and a stream of payments
//! through it.
//!
//! The routing node is the shard engine (as many shards as cores by default) persisting to the
//! embedded filesystem store in a temporary directory (or `--data-dir`, or in memory with
//! `--store memory`). Each of its peers (64 by default) is a real node of its own — a
//! `NodeCore` with its own keys — in the same process, linked to it by BOLT 8 (every message
//! encrypted by its sender's transport and decrypted by its receiver's). Each peer opens a
//! channel to the routing node through the API, funds it, and the chain calls confirm it.
//! Then a closed loop of payments runs: most are forwarded by the routing node from one peer
//! to another (across shards when the two peers live on different shards), some go directly
//! to or from the routing node. Real onions, real BOLT 3 commitment and HTLC transactions,
//! real signatures verified on receipt, every state durable before the messages committing
//! to it leave the engine.
//!
//! It ends with a summary (payments/s, p50/p99 latency, each shard's busy share and queue
//! high-water mark, fsyncs per payment) and a reconciliation of every channel's balance on
//! both sides against a ledger of the payments that succeeded. `--json` makes the last line of
//! output one JSON object.

mod net;
mod plan;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lightning_core::node::NodeConfig;
use shard_engine::store::{FsStore, MemoryStore, Store};
use shard_engine::EngineConfig;

use net::Net;
use plan::Plan;

/// Where the routing node keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// The embedded filesystem store (write-ahead log, fsync per committed batch).
    Fs,
    /// In memory (no durability; for comparison).
    Memory,
}

/// Options of the main job.
#[derive(Debug, clap::Args)]
pub struct JobArgs {
    /// Peers of the routing node, each a node of its own with one channel to it.
    #[arg(long, default_value_t = 64)]
    pub peers: usize,
    /// Shards of the routing node's engine (default: as many as cores).
    #[arg(long)]
    pub shards: Option<usize>,
    /// Payments to make.
    #[arg(long, default_value_t = 8000)]
    pub payments: u64,
    /// Payments in flight at once (closed loop).
    #[arg(long, default_value_t = 64)]
    pub in_flight: u64,
    /// Where the routing node keeps its state.
    #[arg(long, value_enum, default_value_t = StoreKind::Fs)]
    pub store: StoreKind,
    /// The filesystem store's directory (default: a temporary directory, removed at the end).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Seed of every key and every choice (peer, amount, kind of payment).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print one JSON object as the last line of output.
    #[arg(long)]
    pub json: bool,
}

/// Runs the main job.
pub fn run(args: JobArgs) -> ExitCode {
    match run_job(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("lnshard: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Returns whether every balance reconciled and every payment succeeded.
fn run_job(args: &JobArgs) -> Result<bool, String> {
    if args.peers < 2 {
        return Err("--peers must be at least 2 (payments are forwarded between peers)".into());
    }
    if args.in_flight == 0 {
        return Err("--in-flight must be at least 1".into());
    }
    let shards = args.shards.unwrap_or_else(cores);
    if shards == 0 {
        return Err("--shards must be at least 1".into());
    }
    let (store, dir): (Arc<dyn Store>, Option<(PathBuf, bool)>) = match args.store {
        StoreKind::Memory => {
            if args.data_dir.is_some() {
                return Err("--data-dir needs --store fs".into());
            }
            (Arc::new(MemoryStore::new()), None)
        }
        StoreKind::Fs => {
            let temporary = args.data_dir.is_none();
            let dir = args.data_dir.clone().unwrap_or_else(|| {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                std::env::temp_dir().join(format!("lnshard-{}-{nanos}", std::process::id()))
            });
            if dir.join("data").exists() {
                return Err(format!(
                    "{} already holds a store: give an empty --data-dir",
                    dir.display()
                ));
            }
            let store = FsStore::open(&dir)
                .map_err(|e| format!("cannot open the store in {}: {e}", dir.display()))?;
            (Arc::new(store), Some((dir, temporary)))
        }
    };
    // Every peer opens its channel to the routing node at once, before any is funded: leave
    // room for all of them, whichever shard they land on (the default cap is for strangers).
    let mut node = NodeConfig::default();
    node.max_pending_inbound_channels = node
        .max_pending_inbound_channels
        .max(args.peers.saturating_mul(shards));
    let config = EngineConfig {
        shards,
        store: Some(store.clone()),
        node,
        ..EngineConfig::default()
    };
    let where_ = match &dir {
        Some((d, _)) => format!("filesystem store in {}", d.display()),
        None => "in-memory store".to_string(),
    };
    report::say(&format!(
        "lnshard {}: routing node on the shard engine ({shards} shards, {where_}) with {} peers over BOLT 8",
        env!("CARGO_PKG_VERSION"),
        args.peers
    ));

    let plan = Plan::new(args.seed, args.peers, args.payments);
    let setup_start = Instant::now();
    let net = Net::new(config, &plan).map_err(|e| format!("setup: {e}"))?;
    net.open_channels()
        .map_err(|e| format!("opening channels: {e}"))?;
    report::say(&format!(
        "{} channels opened and confirmed in {:.2?}; peers per shard: {:?}",
        args.peers,
        setup_start.elapsed(),
        net.peers_per_shard()
    ));

    let syncs_before = store.syncs();
    let stats_before = net.engine().shard_stats();
    let coordinator_before = net.engine().coordinator().accesses();
    let outcome = net.pay(&plan, args.in_flight, cores().max(2));
    let stats_after = net.engine().shard_stats();
    let coordinator = net.engine().coordinator().accesses();
    let coordinator = shard_engine::CoordinatorAccesses {
        reads: coordinator.reads - coordinator_before.reads,
        writes: coordinator.writes - coordinator_before.writes,
    };
    let syncs = store.syncs() - syncs_before;
    net.settle().map_err(|e| format!("settling: {e}"))?;
    let reconciliation = net.reconcile();

    let summary = report::Summary::new(
        args,
        shards,
        &outcome,
        &stats_before,
        &stats_after,
        syncs,
        coordinator,
        &reconciliation,
        &plan,
    );
    summary.print(args.json);

    let ok = summary.reconciled && outcome.failed == 0 && outcome.timed_out.is_none();
    net.shutdown(Duration::from_secs(5));
    if let Some((dir, true)) = dir {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(ok)
}
