//! The main job's output: progress while it runs, then the summary (and its JSON form).
#![allow(clippy::print_stdout)]

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use shard_engine::{CoordinatorAccesses, ShardStats};

use super::net::{Outcome, Reconciliation};
use super::plan::Plan;
use super::JobArgs;

/// A line of the report.
pub fn say(line: &str) {
    println!("{line}");
}

/// The payments' progress bar, on stderr (hidden when stderr is not a terminal).
pub fn progress_bar(payments: u64) -> ProgressBar {
    let bar = ProgressBar::new(payments);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} payments {bar:40} {pos}/{len} [{elapsed_precise}] {per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// One shard's share of the payment phase.
#[derive(Debug, Serialize)]
pub struct ShardSummary {
    /// The shard.
    pub shard: usize,
    /// Busy time over wall time during the payments.
    pub busy_share: f64,
    /// Messages it handled during the payments.
    pub messages: u64,
    /// The deepest its inbox has been since the start.
    pub queue_high_water: usize,
    /// HTLCs it handed to another shard during the payments.
    pub forwards_out: u64,
}

/// The job's summary; serialized as the last line with `--json`.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Payments made (succeeded + failed).
    pub payments: u64,
    /// Payments that succeeded.
    pub succeeded: u64,
    /// Payments that failed.
    pub failed: u64,
    /// Payments per second over the payment phase.
    pub payments_per_sec: f64,
    /// Shards of the routing node.
    pub shards: usize,
    /// Peers of the routing node.
    pub peers: usize,
    /// Payments in flight at once.
    pub in_flight: u64,
    /// Median latency from send to proof of payment, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, in milliseconds.
    pub p99_ms: f64,
    /// Forwarded between peers.
    pub forwarded: u64,
    /// ... of which across shards.
    pub cross_shard: u64,
    /// Direct payments to or from the routing node.
    pub direct: u64,
    /// The store: "fs" or "memory".
    pub store: &'static str,
    /// Store syncs (fdatasync) per payment during the payments (0 for the memory store).
    pub fsyncs_per_payment: f64,
    /// Store commits (group-committed batches) per payment during the payments.
    pub commits_per_payment: f64,
    /// BOLT 8 messages per payment.
    pub messages_per_payment: f64,
    /// Encrypted bytes on the BOLT 8 links per payment.
    pub wire_bytes_per_payment: f64,
    /// Each shard.
    pub shard_stats: Vec<ShardSummary>,
    /// Coordinator lock acquisitions for reading, per payment.
    pub coordinator_reads_per_payment: f64,
    /// Coordinator lock acquisitions for writing, per payment.
    pub coordinator_writes_per_payment: f64,
    /// Fees the routing node earned (msat).
    pub fees_msat: u64,
    /// Channels whose balances matched on both sides and the ledger.
    pub channels_matched: usize,
    /// True only if every channel's balance matched on both sides and the ledger, and the
    /// routing node's fees match the payers'.
    pub reconciled: bool,
    /// The seed.
    pub seed: u64,
    #[serde(skip)]
    details: Vec<String>,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    sorted.get(i).copied().unwrap_or(0) as f64 / 1000.0
}

impl Summary {
    /// Builds the summary.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        args: &JobArgs,
        shards: usize,
        outcome: &Outcome,
        before: &[ShardStats],
        after: &[ShardStats],
        syncs: u64,
        coordinator: CoordinatorAccesses,
        rec: &Reconciliation,
        plan: &Plan,
    ) -> Summary {
        let payments = outcome.succeeded + outcome.failed;
        let secs = outcome.elapsed.as_secs_f64().max(1e-9);
        let wall_nanos = outcome.elapsed.as_nanos() as f64;
        let shard_stats = after
            .iter()
            .zip(before)
            .enumerate()
            .map(|(shard, (a, b))| ShardSummary {
                shard,
                busy_share: (a.busy_nanos - b.busy_nanos) as f64 / wall_nanos.max(1.0),
                messages: a.messages_handled - b.messages_handled,
                queue_high_water: a.queue_high_water,
                forwards_out: a.forwards_out - b.forwards_out,
            })
            .collect();
        let fees_ok = rec.fees_msat == rec.fees_reported_msat;
        let mut details = rec.mismatches.clone();
        details.extend(outcome.failures.iter().map(|f| format!("failed: {f}")));
        if let Some(t) = &outcome.timed_out {
            details.push(format!("timed out: {t}"));
        }
        if !fees_ok {
            details.push(format!(
                "fees: payers paid {} msat, the routing node reported {}",
                rec.fees_msat, rec.fees_reported_msat
            ));
        }
        Summary {
            payments,
            succeeded: outcome.succeeded,
            failed: outcome.failed,
            payments_per_sec: outcome.succeeded as f64 / secs,
            shards,
            peers: plan.peers,
            in_flight: args.in_flight,
            p50_ms: percentile(&outcome.latencies_us, 0.50),
            p99_ms: percentile(&outcome.latencies_us, 0.99),
            forwarded: outcome.forwards,
            cross_shard: outcome.cross_shard,
            direct: outcome.to_hub + outcome.from_hub,
            store: match args.store {
                super::StoreKind::Fs => "fs",
                super::StoreKind::Memory => "memory",
            },
            fsyncs_per_payment: match args.store {
                super::StoreKind::Fs => syncs as f64 / payments.max(1) as f64,
                super::StoreKind::Memory => 0.0,
            },
            commits_per_payment: syncs as f64 / payments.max(1) as f64,
            messages_per_payment: outcome.messages as f64 / payments.max(1) as f64,
            wire_bytes_per_payment: outcome.wire_bytes as f64 / payments.max(1) as f64,
            shard_stats,
            coordinator_reads_per_payment: coordinator.reads as f64 / payments.max(1) as f64,
            coordinator_writes_per_payment: coordinator.writes as f64 / payments.max(1) as f64,
            fees_msat: rec.fees_msat,
            channels_matched: rec.matched,
            reconciled: rec.mismatches.is_empty() && rec.matched == rec.channels && fees_ok,
            seed: plan.seed,
            details,
        }
    }

    /// Prints the summary; with `json`, its JSON form last.
    pub fn print(&self, json: bool) {
        println!(
            "{} payments ({} forwarded, {} of them across shards; {} direct) in {:.2} s: {:.0} payments/s, {} failed",
            self.payments,
            self.forwarded,
            self.cross_shard,
            self.direct,
            self.payments as f64 / self.payments_per_sec.max(1e-9),
            self.payments_per_sec,
            self.failed
        );
        println!(
            "latency: p50 {:.1} ms, p99 {:.1} ms ({} in flight); per payment: {:.1} BOLT 8 messages, {:.2} store commits, {:.2} fsyncs ({} store)",
            self.p50_ms,
            self.p99_ms,
            self.in_flight,
            self.messages_per_payment,
            self.commits_per_payment,
            self.fsyncs_per_payment,
            self.store
        );
        for s in &self.shard_stats {
            println!(
                "shard {}: busy {:.0}%, {} messages, inbox high-water {}, {} HTLCs handed to another shard",
                s.shard,
                s.busy_share * 100.0,
                s.messages,
                s.queue_high_water,
                s.forwards_out
            );
        }
        println!(
            "coordinator (id_to_peer, scid map, payments in flight): {:.2} reads and {:.2} writes of its lock per payment",
            self.coordinator_reads_per_payment, self.coordinator_writes_per_payment
        );
        println!(
            "reconciliation: {} of {} channels match on both sides and the ledger; routing node earned {} msat",
            self.channels_matched, self.peers, self.fees_msat
        );
        for d in self.details.iter().take(10) {
            println!("  {d}");
        }
        println!("reconciled: {}", self.reconciled);
        if json {
            match serde_json::to_string(self) {
                Ok(line) => println!("{line}"),
                Err(e) => println!("{{\"error\":\"{e}\"}}"),
            }
        }
    }
}
