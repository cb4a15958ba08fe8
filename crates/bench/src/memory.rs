//! Resident memory per idle channel: a node holding 10,000 and 100,000 real channels.
//!
//! # The channels are real
//! Every channel is opened through the protocol between the measured node X and a
//! counterparty node of its own (one channel per peer, as on a routing node): `init`,
//! `open_channel`, `accept_channel`, `funding_created`, `funding_signed` with real
//! signatures, a funding transaction confirmed through the chain calls
//! ([`NodeCore::transactions_confirmed`], [`NodeCore::best_block_updated`]) and
//! `channel_ready` both ways. Half the channels are funded by X, half by its peers. X's
//! channel records and node record are then encoded exactly as a store holds them.
//!
//! Setup runs on worker threads (all cores), in chunks of [`CHUNK`] channels: each chunk is
//! a part of X (a `NodeCore` with X's secret and seed, as a shard of X would be: its keys and
//! ids depend only on the peer, never on the shard) and the chunk's counterparties. Then the
//! counterparties and X's parts are dropped: only X's encoded records remain.
//!
//! # What is measured, and how the counterparts are excluded
//! On the calling thread, X is restored from its records ([`NodeCore::restore`], with the
//! node records merged as for a change of shard count) and its restore batch taken
//! ([`NodeCore::take_dirty`], as the first commit after a restart would). The figure is the
//! growth of the process's resident set across that restore (`/proc/self/statm`, and
//! `RssAnon` from `/proc/self/status`) divided by the channel count. The counterparties
//! never exist while X is measured: they lived on the worker threads, whose memory is
//! allocated in the allocator's per-thread arenas, not in the measuring thread's, and is
//! already resident in the baseline. The encoded records X is restored from also exist
//! before and after the restore, so they are not counted either (their size per channel is
//! reported separately). Each measured node is kept until every point is measured, so a
//! later point never reuses the memory of an earlier one. What is counted: the node's maps,
//! the channel state machines, and whatever the allocator keeps around them (fragmentation
//! included, as in a real restart). Peers are disconnected after a restore: connection
//! buffers belong to the engine, not to the node.
//!
//! Live heap bytes are not reported: measuring them honestly needs a counting global
//! allocator, which a library must not impose on the programs that link it.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use lightning_core::bitcoin::hashes::{sha256, Hash};
use lightning_core::bitcoin::Transaction;
use lightning_core::channel::ChannelPhase;
use lightning_core::node::{Event, NodeConfig, NodeCore, Output};
use lightning_core::persist::{ChannelRecord, NodeRecord};
use lightning_core::secp256k1::{PublicKey, SecretKey};
use serde::Serialize;

use super::two_node::{block_header, funding_tx, secret_from};

/// Channels per setup chunk (one part of X and its counterparties at a time).
pub const CHUNK: usize = 500;
/// Each channel's funding amount.
const CHANNEL_SATOSHIS: u64 = 1_000_000;
/// The height the funding transactions confirm at.
const FUNDING_HEIGHT: u32 = 101;

/// Options of the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The channel counts to measure, each with a node of its own.
    pub channels: Vec<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            channels: vec![10_000, 100_000],
        }
    }
}

use super::error::api;
pub use super::error::Error;

/// One measured channel count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// Channels the node holds (one peer each).
    pub channels: usize,
    /// Growth of the resident set (`/proc/self/statm`) per channel, in bytes.
    pub rss_bytes_per_channel: f64,
    /// Growth of the anonymous resident set (`RssAnon`) per channel, in bytes.
    pub anon_rss_bytes_per_channel: f64,
    /// Growth of the resident set across the restore, in bytes.
    pub rss_delta_bytes: u64,
    /// Size of a channel's encoded record (what a store holds), mean, in bytes.
    pub record_bytes_per_channel: f64,
    /// Seconds to open the channels through the protocol (all worker threads).
    pub setup_seconds: f64,
    /// Seconds to decode the records and restore the node.
    pub restore_seconds: f64,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Worker threads used for the setup.
    pub setup_threads: usize,
    /// One entry per channel count, in the order asked.
    pub points: Vec<Point>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "memory: resident bytes per idle channel (node restored from real channels' records; {} setup threads)",
            self.setup_threads
        )?;
        writeln!(
            f,
            "  {:>9}  {:>12}  {:>12}  {:>12}  {:>9}  {:>9}",
            "channels", "rss B/chan", "anon B/chan", "record B", "setup s", "restore s"
        )?;
        for p in &self.points {
            writeln!(
                f,
                "  {:>9}  {:>12.0}  {:>12.0}  {:>12.0}  {:>9.1}  {:>9.2}",
                p.channels,
                p.rss_bytes_per_channel,
                p.anon_rss_bytes_per_channel,
                p.record_bytes_per_channel,
                p.setup_seconds,
                p.restore_seconds
            )?;
        }
        Ok(())
    }
}

/// The process's resident bytes: (`statm` resident pages × page size, `RssAnon`).
fn resident() -> Result<(u64, u64), Error> {
    let read =
        |path: &str| std::fs::read_to_string(path).map_err(|e| Error::Proc(format!("{path}: {e}")));
    let statm = read("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Proc(format!("unexpected /proc/self/statm: {statm:?}")))?;
    let status = read("/proc/self/status")?;
    let kib = |field: &str| -> Result<u64, Error> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .map(|n| n * 1024)
            .ok_or_else(|| Error::Proc(format!("no {field} in /proc/self/status")))
    };
    let (vm_rss, anon) = (kib("VmRSS:")?, kib("RssAnon:")?);
    // statm counts pages; VmRSS gives the same figure in KiB, which yields the page size.
    let page = vm_rss.checked_div(pages).unwrap_or(4096);
    Ok((pages * page, anon))
}

/// X: the measured node's identity.
fn x_secret() -> SecretKey {
    secret_from(b"memory node X secret")
}

fn x_seed() -> [u8; 32] {
    sha256::Hash::hash(b"memory node X seed").to_byte_array()
}

fn config() -> NodeConfig {
    let mut config = NodeConfig::default();
    config.channel.minimum_depth = 1;
    // A chunk's peers open their channels to X all at once, before any is funded.
    config.max_pending_inbound_channels = CHUNK;
    config
}

/// X's encoded records for one chunk of channels.
struct ChunkRecords {
    first: usize,
    channels: Vec<Vec<u8>>,
    node: Vec<u8>,
}

/// One part of X and the counterparties of one chunk.
struct Hub {
    x: NodeCore,
    x_events: Vec<Event>,
    peers: Vec<NodeCore>,
    peer_events: Vec<Vec<Event>>,
    index: HashMap<PublicKey, usize>,
    /// (to: None for X or Some(peer index), from, bytes).
    inflight: Vec<(Option<usize>, PublicKey, Vec<u8>)>,
}

impl Hub {
    fn new(first: usize, count: usize) -> Hub {
        let tip = block_header(FUNDING_HEIGHT - 1).block_hash();
        let x = NodeCore::new(x_secret(), x_seed(), config(), FUNDING_HEIGHT - 1, tip);
        let peers: Vec<NodeCore> = (first..first + count)
            .map(|i| {
                let label = (i as u64).to_be_bytes();
                NodeCore::new(
                    secret_from(&[b"memory peer secret ".as_slice(), &label].concat()),
                    sha256::Hash::hash(&[b"memory peer seed ".as_slice(), &label].concat())
                        .to_byte_array(),
                    config(),
                    FUNDING_HEIGHT - 1,
                    tip,
                )
            })
            .collect();
        let index = peers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.node_id(), i))
            .collect();
        Hub {
            x,
            x_events: Vec::new(),
            peer_events: vec![Vec::new(); peers.len()],
            peers,
            index,
            inflight: Vec::new(),
        }
    }

    fn collect(&mut self) -> Result<(), Error> {
        let x_id = self.x.node_id();
        while let Some(output) = self.x.poll_output() {
            match output {
                Output::SendMessage { node_id, msg } => {
                    let to = *self.index.get(&node_id).ok_or_else(|| {
                        Error::Protocol(format!("X sent to an unknown peer {node_id}"))
                    })?;
                    self.inflight.push((Some(to), x_id, msg.encode()));
                }
                Output::Event(e) => self.x_events.push(e),
                other => return Err(Error::Protocol(format!("X output {other:?}"))),
            }
        }
        for (i, peer) in self.peers.iter_mut().enumerate() {
            let peer_id = peer.node_id();
            while let Some(output) = peer.poll_output() {
                match output {
                    Output::SendMessage { node_id, msg } if node_id == x_id => {
                        self.inflight.push((None, peer_id, msg.encode()));
                    }
                    Output::Event(e) => self.peer_events[i].push(e),
                    other => return Err(Error::Protocol(format!("peer output {other:?}"))),
                }
            }
        }
        Ok(())
    }

    /// Delivers messages until none is in flight.
    fn pump(&mut self) -> Result<(), Error> {
        loop {
            self.collect()?;
            if self.inflight.is_empty() {
                return Ok(());
            }
            for (to, from, bytes) in std::mem::take(&mut self.inflight) {
                match to {
                    None => self.x.handle_message(from, &bytes),
                    Some(i) => self.peers[i].handle_message(from, &bytes),
                }
            }
        }
    }

    /// Opens, funds, confirms and readies one channel per peer; `first` is the global index
    /// of the chunk's first channel (its funding transaction's position in the block).
    fn open_all(&mut self, first: usize) -> Result<(), Error> {
        let x_id = self.x.node_id();
        for peer in &mut self.peers {
            self.x.peer_connected(peer.node_id());
            peer.peer_connected(x_id);
        }
        self.pump()?;
        for (i, peer) in self.peers.iter_mut().enumerate() {
            let global = (first + i) as u128;
            if (first + i).is_multiple_of(2) {
                self.x
                    .create_channel(peer.node_id(), CHANNEL_SATOSHIS, 0, global, 253)
                    .map_err(api("create_channel"))?;
            } else {
                peer.create_channel(x_id, CHANNEL_SATOSHIS, 0, global, 253)
                    .map_err(api("create_channel"))?;
            }
        }
        self.pump()?;
        // Fund: each funder builds a transaction paying the funding script.
        let mut txs: Vec<Option<Transaction>> = vec![None; self.peers.len()];
        let ready = |events: &mut Vec<Event>| {
            std::mem::take(events)
                .into_iter()
                .filter_map(|e| match e {
                    Event::FundingGenerationReady {
                        temporary_channel_id,
                        counterparty_node_id,
                        output_script,
                        user_channel_id,
                        ..
                    } => Some((
                        temporary_channel_id,
                        counterparty_node_id,
                        output_script,
                        user_channel_id,
                    )),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        for (temp, counterparty, script, user_id) in ready(&mut self.x_events) {
            let tx = funding_tx(script, CHANNEL_SATOSHIS, user_id as u32);
            let i = *self
                .index
                .get(&counterparty)
                .ok_or_else(|| Error::Protocol("funding for an unknown peer".into()))?;
            self.x
                .funding_transaction_generated(temp, counterparty, tx.clone())
                .map_err(api("funding_transaction_generated"))?;
            txs[i] = Some(tx);
        }
        let peers = self.peers.iter_mut().zip(&mut self.peer_events);
        for ((peer, events), slot) in peers.zip(txs.iter_mut()) {
            for (temp, counterparty, script, user_id) in ready(events) {
                let tx = funding_tx(script, CHANNEL_SATOSHIS, user_id as u32);
                peer.funding_transaction_generated(temp, counterparty, tx.clone())
                    .map_err(api("funding_transaction_generated"))?;
                *slot = Some(tx);
            }
        }
        self.pump()?;
        // Confirm every funding transaction in one block, at its global position; X sees
        // all of the chunk's, each peer its own (what a filtering chain client hands over).
        let txs: Vec<Transaction> = txs
            .into_iter()
            .enumerate()
            .map(|(i, tx)| {
                tx.ok_or_else(|| Error::Protocol(format!("channel {} not funded", first + i)))
            })
            .collect::<Result<_, _>>()?;
        let position = |i: usize| u32::try_from(first + i + 1).unwrap_or(u32::MAX);
        let txdata: Vec<(u32, &Transaction)> = txs
            .iter()
            .enumerate()
            .map(|(i, tx)| (position(i), tx))
            .collect();
        let tip = block_header(FUNDING_HEIGHT).block_hash();
        self.x.transactions_confirmed(FUNDING_HEIGHT, &txdata);
        self.x.best_block_updated(FUNDING_HEIGHT, tip);
        for (i, peer) in self.peers.iter_mut().enumerate() {
            peer.transactions_confirmed(FUNDING_HEIGHT, &[(position(i), &txs[i])]);
            peer.best_block_updated(FUNDING_HEIGHT, tip);
        }
        self.pump()?;
        let ready = self
            .x
            .list_channels()
            .iter()
            .filter(|c| c.phase == ChannelPhase::Normal && c.is_usable)
            .count();
        if ready != self.peers.len() {
            return Err(Error::Protocol(format!(
                "{ready} of {} channels ready in the chunk at {first}",
                self.peers.len()
            )));
        }
        Ok(())
    }
}

/// Opens channels `first..first + count` and returns X's encoded records for them.
fn setup_chunk(first: usize, count: usize) -> Result<ChunkRecords, Error> {
    let mut hub = Hub::new(first, count);
    hub.open_all(first)?;
    let channels = hub
        .x
        .channel_records()
        .iter()
        .map(ChannelRecord::to_bytes)
        .collect::<Result<Vec<_>, _>>()?;
    let node = hub.x.node_record().to_bytes()?;
    Ok(ChunkRecords {
        first,
        channels,
        node,
    })
}

/// Opens `channels` channels of X on `threads` worker threads; X's records in chunk order.
fn setup(channels: usize, threads: usize) -> Result<Vec<ChunkRecords>, Error> {
    let chunks = channels.div_ceil(CHUNK);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Result<ChunkRecords, Error>>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let chunk = next.fetch_add(1, Ordering::Relaxed);
                if chunk >= chunks {
                    break;
                }
                let first = chunk * CHUNK;
                let result = setup_chunk(first, CHUNK.min(channels - first));
                let failed = result.is_err();
                results
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(result);
                if failed {
                    // Make every worker stop at its next chunk.
                    next.store(chunks, Ordering::Relaxed);
                }
            });
        }
    });
    let mut records = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    records.sort_by_key(|r| r.first);
    Ok(records)
}

/// Measures one channel count; returns the point and the restored node (to keep alive).
fn measure(channels: usize, threads: usize) -> Result<(Point, NodeCore), Error> {
    let started = Instant::now();
    let records = setup(channels, threads)?;
    let setup_seconds = started.elapsed().as_secs_f64();
    let record_bytes: usize = records
        .iter()
        .flat_map(|r| r.channels.iter().map(Vec::len))
        .sum();

    let (rss0, anon0) = resident()?;
    let started = Instant::now();
    let channel_records = records
        .iter()
        .flat_map(|r| r.channels.iter().map(|b| ChannelRecord::from_bytes(b)))
        .collect::<Result<Vec<_>, _>>()?;
    let node_records = records
        .iter()
        .map(|r| NodeRecord::from_bytes(&r.node))
        .collect::<Result<Vec<_>, _>>()?;
    let node_record =
        NodeRecord::merge(node_records).ok_or_else(|| Error::Protocol("no node record".into()))?;
    let mut node = NodeCore::restore(x_secret(), x_seed(), config(), node_record, channel_records);
    // The first commit after a restart writes the restored state back and clears this.
    let dirty = node.take_dirty();
    let restore_seconds = started.elapsed().as_secs_f64();
    drop(dirty);
    let (rss1, anon1) = resident()?;

    let held = node
        .list_channels()
        .iter()
        .filter(|c| c.phase == ChannelPhase::Normal)
        .count();
    if held != channels {
        return Err(Error::Protocol(format!(
            "the restored node holds {held} open channels, expected {channels}"
        )));
    }
    let n = channels as f64;
    let rss_delta = rss1.saturating_sub(rss0);
    let point = Point {
        channels,
        rss_bytes_per_channel: rss_delta as f64 / n,
        anon_rss_bytes_per_channel: anon1.saturating_sub(anon0) as f64 / n,
        rss_delta_bytes: rss_delta,
        record_bytes_per_channel: record_bytes as f64 / n,
        setup_seconds,
        restore_seconds,
    };
    tracing::info!(
        channels,
        rss_bytes_per_channel = point.rss_bytes_per_channel,
        "memory point"
    );
    drop(records);
    Ok((point, node))
}

/// Runs the workload: for each channel count, opens the channels, restores the node and
/// measures its resident memory (see the [module documentation](self)).
pub fn run(opts: &Options) -> Result<Report, Error> {
    if opts.channels.is_empty() || opts.channels.contains(&0) {
        return Err(Error::BadOptions(
            "give one or more channel counts, each at least 1".into(),
        ));
    }
    if opts.channels.iter().any(|&c| c >= (1 << 24) - 1) {
        return Err(Error::BadOptions(
            "at most 16,777,214 channels (one block's transaction positions)".into(),
        ));
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut points = Vec::new();
    // Every measured node stays alive until the end, so that no later point reuses the
    // memory an earlier one freed.
    let mut nodes = Vec::new();
    for &channels in &opts.channels {
        let (point, node) = measure(channels, threads)?;
        points.push(point);
        nodes.push(node);
    }
    drop(nodes);
    Ok(Report {
        setup_threads: threads,
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_node_is_measured() {
        let report = run(&Options {
            channels: vec![CHUNK + 7],
        })
        .expect("runs");
        let p = &report.points[0];
        assert_eq!(p.channels, CHUNK + 7);
        assert!(p.record_bytes_per_channel > 500.0, "{p:?}");
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(matches!(
            run(&Options { channels: vec![] }),
            Err(Error::BadOptions(_))
        ));
    }
}
