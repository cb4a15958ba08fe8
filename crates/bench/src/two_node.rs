//! The workload of LDK's `bench_sends`: two nodes on one thread, one channel, and per
//! iteration one 10,000-msat payment each way, each with the full commitment dance and claim.
//! Each node persists into the engine's in-memory store (`--store memory`, LDK's
//! `bench_sends`) or into its own filesystem store, synced (`--store fs`, LDK's
//! `bench_filesystem_persisted_sends`).
//!
//! # What one iteration does
//! For each direction (A to B, then B to A): the payee registers the payment
//! ([`NodeCore::create_inbound_payment`]), the payer sends it along a one-hop route
//! ([`NodeCore::send_payment`], which builds a real BOLT 4 onion), and the two nodes exchange
//! `update_add_htlc`, `commitment_signed`, `revoke_and_ack`, `commitment_signed`,
//! `revoke_and_ack`; the payee peels the onion, sees [`Event::PaymentClaimable`] and claims
//! ([`NodeCore::claim_funds`]), and the same dance runs for `update_fulfill_htlc`, after which
//! the payer sees [`Event::PaymentSent`]. Every signature is a real secp256k1 signature made
//! and verified; every message travels as its encoded wire bytes (encoded by the sender,
//! decoded by the receiver's [`NodeCore::handle_message`]).
//!
//! # Persistence, compared with LDK's
//! LDK's `bench_sends` gives each node a `TestPersister`: every `ChannelMonitorUpdate` is
//! applied to the in-memory `ChannelMonitor` by the `ChainMonitor`, and the persister's
//! `update_persisted_channel` only records the update's id in a `HashSet` and returns
//! `Completed`: nothing is serialized, and the `ChannelManager` is never written.
//!
//! Here each node commits exactly as an engine shard does, before any of its messages
//! leaves (the persistence barrier of [`lightning_core::node`]): the write operations of
//! [`durable::commit_ops`] (for every channel changed since the last commit its whole record,
//! [`ChannelRecord`] encoded, and the node record whenever it changed), written with one
//! [`Store::write_batch`]. With `--store memory` that store is the engine's [`MemoryStore`];
//! so this workload does strictly more persistence work than LDK's: it serializes the whole
//! channel state at every commit point.
//!
//! LDK's `bench_filesystem_persisted_sends` gives each node a `FilesystemStore`: every
//! `ChannelMonitorUpdate` rewrites the channel's whole `ChannelMonitor` into its own file
//! (temporary file, fsync, rename, fsync of the directory) before the `ChannelManager`
//! hands out the messages that depend on it; the `ChannelManager` itself is never written.
//! With `--store fs` each node here has its own [`FsStore`] (a directory under the system
//! temporary directory, `TMPDIR`), and each commit is one `fdatasync`ed WAL frame holding the
//! whole records (the engine's group commit). The rule is the same as LDK's and the engine's:
//! no message leaves a node before a reopen of its store would return the state it depends
//! on. A test reopens both stores after a run (`tests/two_node_fs.rs`).
//!
//! # Batches
//! Messages travel in batches, as an engine shard reads its inbox: every message in flight is
//! delivered, then each node commits once, then what it produced leaves. In this
//! one-payment-at-a-time dance a batch is what one node sent in one go (`update_add_htlc`
//! with its `commitment_signed`, or `revoke_and_ack` with `commitment_signed`), so a node
//! commits once per step of the dance (about 8 commits per payment, both nodes together),
//! never between the messages of one step.
//!
//! # Differences that remain
//! LDK passes messages as structs (no wire encoding) and runs its router for every payment;
//! here the route is given by the caller (lnshard has no router) and messages are encoded
//! and decoded. LDK's channel is `static_remotekey` (its default config does not negotiate
//! anchors); so is this one. Both use a feerate of 253 sat/kw, 8,000,000 sat channels with
//! 100,000,000 msat pushed, and one confirmation.
//!
//! # Correctness
//! Every payment's events are checked (claimable amount, claimed, sent with the right
//! preimage and no fee), and after the run both nodes' balances, commitment numbers and the
//! records in their stores are checked against what the payments must have produced.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::time::Instant;

use lightning_core::bitcoin::block::{Header, Version as BlockVersion};
use lightning_core::bitcoin::hashes::{sha256, Hash};
use lightning_core::bitcoin::{BlockHash, CompactTarget, ScriptBuf, Transaction, TxMerkleNode};
use lightning_core::channel::Balances;
use lightning_core::node::{Event, NodeConfig, NodeCore, Output, PaymentId, Route, RouteHop};
use lightning_core::persist::ChannelRecord;
use lightning_core::secp256k1::{PublicKey, SecretKey};
use lightning_core::types::{ChannelId, PaymentHash, PaymentPreimage, ShortChannelId};
use serde::Serialize;
use shard_engine::durable;
use shard_engine::store::{FsStore, MemoryStore, Store, WriteOp};

/// The channel's funding amount (as LDK's bench).
pub const CHANNEL_SATOSHIS: u64 = 8_000_000;
/// What the funder pushes to the fundee at opening (as LDK's bench).
pub const PUSH_MSAT: u64 = 100_000_000;
/// Each payment's amount (as LDK's bench): below the dust limit, so no HTLC outputs.
pub const PAYMENT_MSAT: u64 = 10_000;
/// The commitment feerate (LDK's bench uses a fee estimator returning 253).
pub const FEERATE_PER_KW: u32 = 253;
/// The recipient's final CLTV delta in each route (LDK's `TEST_FINAL_CLTV`).
const FINAL_CLTV_DELTA: u32 = 70;
/// Number of timed batches: the reported time per iteration is their median.
const BATCHES: u64 = 10;

/// Options of the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Timed iterations (each: one payment A to B and one B to A).
    pub iterations: u64,
    /// Untimed iterations first (caches, allocator, branch predictors).
    pub warmup: u64,
    /// Where each node's records go.
    pub store: StoreKind,
}

impl Default for Options {
    /// 6,000 timed iterations after 200 warm-up ones, in memory: about 11 s on one core of a
    /// small machine (1.8 ms per iteration), 20 s at worst on a busy one.
    fn default() -> Self {
        Options {
            iterations: 6_000,
            warmup: 200,
            store: StoreKind::Memory,
        }
    }
}

impl Options {
    /// The defaults for `store`: with [`StoreKind::Fs`] fewer iterations (each waits for
    /// the disk), 1,000 after 50 warm-up ones.
    pub fn for_store(store: StoreKind) -> Options {
        match store {
            StoreKind::Memory => Options::default(),
            StoreKind::Fs => Options {
                iterations: 1_000,
                warmup: 50,
                store,
            },
        }
    }
}

/// Where each node's records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The engine's [`MemoryStore`] (nothing synced): LDK's `bench_sends`.
    #[default]
    Memory,
    /// An [`FsStore`] per node, every commit synced before its messages leave: LDK's
    /// `bench_filesystem_persisted_sends`.
    Fs,
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreKind::Memory => "memory",
            StoreKind::Fs => "fs",
        })
    }
}

use super::error::api;
pub use super::error::Error;

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Where each node's records went.
    pub store: StoreKind,
    /// Timed iterations.
    pub iterations: u64,
    /// Untimed warm-up iterations before them.
    pub warmup: u64,
    /// Timed batches (the iterations split evenly).
    pub batches: u64,
    /// Median over the batches of the time per iteration (two payments), in microseconds.
    pub us_per_iteration: f64,
    /// Payments per second at that median (two payments per iteration).
    pub payments_per_sec: f64,
    /// The fastest and slowest batch, microseconds per iteration.
    pub min_batch_us_per_iteration: f64,
    /// See `min_batch_us_per_iteration`.
    pub max_batch_us_per_iteration: f64,
    /// Wall time of all timed iterations, in seconds.
    pub total_seconds: f64,
    /// Messages exchanged per payment (both directions).
    pub messages_per_payment: f64,
    /// Encoded message bytes per payment (both directions).
    pub wire_bytes_per_payment: f64,
    /// Records written to the stores per payment (both nodes; channel and node records).
    pub records_written_per_payment: f64,
    /// Encoded record bytes written per payment (both nodes).
    pub persisted_bytes_per_payment: f64,
    /// Commits (`write_batch` calls) per payment (both nodes).
    pub commits_per_payment: f64,
    /// Durable syncs per payment (both nodes): the stores' own count, `fdatasync` calls for
    /// [`StoreKind::Fs`] (0 for [`StoreKind::Memory`], which syncs nothing).
    pub fsyncs_per_payment: f64,
    /// Of the timed iterations' wall time, microseconds per iteration spent in the stores'
    /// `write_batch` (for [`StoreKind::Fs`], mostly waiting for `fdatasync`); the rest is
    /// the protocol's work (signing, verifying, encoding).
    pub store_us_per_iteration: f64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "two-node-sends ({} store): {} iterations (2 payments of {} msat each) after {} warm-up, {} batches",
            self.store, self.iterations, PAYMENT_MSAT, self.warmup, self.batches
        )?;
        writeln!(
            f,
            "  {:.1} us per iteration (median of batches; min {:.1}, max {:.1}), {:.0} payments/s",
            self.us_per_iteration,
            self.min_batch_us_per_iteration,
            self.max_batch_us_per_iteration,
            self.payments_per_sec
        )?;
        writeln!(
            f,
            "  per payment: {:.1} messages ({:.0} wire bytes), {:.1} commits of {:.1} records ({:.0} bytes), {:.1} fsyncs",
            self.messages_per_payment,
            self.wire_bytes_per_payment,
            self.commits_per_payment,
            self.records_written_per_payment,
            self.persisted_bytes_per_payment,
            self.fsyncs_per_payment
        )?;
        writeln!(
            f,
            "  {:.1} us per iteration in the stores' write_batch (mean over all batches)",
            self.store_us_per_iteration
        )?;
        write!(
            f,
            "  balances, commitment numbers and stored records checked after the run"
        )
    }
}

/// A node's store, fed as an engine shard feeds its own: [`durable::commit_ops`] written
/// with one [`Store::write_batch_meanwhile`], the node deriving its next keys ahead while the
/// store waits on its disk.
pub(crate) struct NodeStore {
    store: Box<dyn Store>,
    /// The key of the node's record ([`durable::node_key`] of shard 0 of 1).
    node_key: String,
    /// Records written so far.
    pub(crate) records_written: u64,
    /// Bytes written so far.
    pub(crate) bytes_written: u64,
    /// Batches written so far.
    pub(crate) commits: u64,
    /// Time spent in [`Store::write_batch`] so far (for [`StoreKind::Fs`], mostly waiting for
    /// the disk's sync).
    pub(crate) write_nanos: u128,
}

impl fmt::Debug for NodeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeStore")
            .field("records_written", &self.records_written)
            .field("commits", &self.commits)
            .finish_non_exhaustive()
    }
}

impl NodeStore {
    /// `store`, recorded as belonging to `node_id` (as [`shard_engine::Engine::open`]
    /// records it).
    fn new(store: Box<dyn Store>, node_id: &PublicKey) -> Result<NodeStore, Error> {
        if let Some(op) = durable::check_owner(store.as_ref(), node_id)? {
            store.write_batch(&[op])?;
        }
        Ok(NodeStore {
            store,
            node_key: durable::node_key(0, 1),
            records_written: 0,
            bytes_written: 0,
            commits: 0,
            write_nanos: 0,
        })
    }

    /// One group commit of everything `core` changed since its last commit: returns once
    /// the store has made it durable.
    pub(crate) fn commit(&mut self, core: &mut NodeCore) -> Result<(), Error> {
        let ops = durable::commit_ops(core, &self.node_key, &[], &[])?;
        if ops.is_empty() {
            return Ok(());
        }
        for op in &ops {
            if let WriteOp::Put { value, .. } = op {
                self.records_written += 1;
                self.bytes_written += value.len() as u64;
            }
        }
        // While the disk writes, the node's idle work: its next keys, derived ahead (an engine
        // shard does the same before it sleeps). Timed apart from the store's wait.
        let mut ahead = std::time::Duration::ZERO;
        let started = Instant::now();
        if self.store.overlap_writes() {
            self.store.write_batch_meanwhile(&ops, &mut || {
                let t = Instant::now();
                while core.derive_ahead(16) {}
                ahead += t.elapsed();
            })?;
        } else {
            // A memory store does not wait: nothing to overlap.
            self.store.write_batch(&ops)?;
        }
        self.write_nanos += started.elapsed().saturating_sub(ahead).as_nanos();
        self.commits += 1;
        Ok(())
    }

    /// The stored record of `channel_id`, if any.
    fn channel(&self, channel_id: &ChannelId) -> Result<Option<ChannelRecord>, Error> {
        let key = durable::channel_key(channel_id);
        match self.store.read(durable::CHANNELS, &key)? {
            Some(bytes) => Ok(Some(ChannelRecord::from_bytes(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Durable syncs so far.
    fn syncs(&self) -> u64 {
        self.store.syncs()
    }
}

/// One of the two nodes: its core, its store and the events it produced.
#[derive(Debug)]
struct Node {
    core: NodeCore,
    store: NodeStore,
    events: Vec<Event>,
    /// Whether the next commit point commits whatever the outputs: an API call was made (an
    /// engine answers every call only once the state it reports is durable).
    must_commit: bool,
}

/// The node configuration of both nodes: as LDK's bench, `static_remotekey` channels and one
/// confirmation.
pub fn node_config() -> NodeConfig {
    let mut config = NodeConfig::default();
    config.channel.negotiate_anchors = false;
    config.channel.minimum_depth = 1;
    config
}

/// Node A's (`0`) or node B's (any other index) secret key and seed: what reopening its
/// store takes.
pub fn node_identity(index: usize) -> (SecretKey, [u8; 32]) {
    let label: &[u8] = if index == 0 { b"a" } else { b"b" };
    (
        secret_from(&[b"two-node secret ", label].concat()),
        sha256::Hash::hash(&[b"two-node seed ", label].concat()).to_byte_array(),
    )
}

/// A deterministic secret key from a label.
pub(crate) fn secret_from(label: &[u8]) -> SecretKey {
    let mut bytes = sha256::Hash::hash(label).to_byte_array();
    loop {
        if let Ok(key) = SecretKey::from_slice(&bytes) {
            return key;
        }
        bytes = sha256::Hash::hash(&bytes).to_byte_array();
    }
}

/// The header of fake block `height`: a real header whose hash depends on the height only.
pub(crate) fn block_header(height: u32) -> Header {
    Header {
        version: BlockVersion::TWO,
        prev_blockhash: BlockHash::from_byte_array(
            sha256::Hash::hash(&height.to_be_bytes()).to_byte_array(),
        ),
        merkle_root: TxMerkleNode::all_zeros(),
        time: height,
        bits: CompactTarget::from_consensus(0x207f_ffff),
        nonce: 0,
    }
}

/// A funding transaction spending a made-up coin (`salt` makes it unique) and paying
/// `script` exactly `value` sat: the harness's, shared with the engine's tests.
pub(crate) fn funding_tx(script: ScriptBuf, value: u64, salt: u32) -> Transaction {
    lnshard_testkit::fake_funding_tx(script, value, salt)
}

/// Two nodes with one ready channel, driven on the calling thread: the state one benchmark
/// iteration ([`Harness::iteration`]) runs on.
#[derive(Debug)]
pub struct Harness {
    nodes: [Node; 2],
    ids: [PublicKey; 2],
    /// Encoded messages in flight: (receiver index, bytes), in sending order.
    inflight: VecDeque<(usize, Vec<u8>)>,
    channel_id: ChannelId,
    scid: ShortChannelId,
    height: u32,
    /// Payments completed (both directions).
    payments: u64,
    /// Payments sent (each gets its own preimage).
    sent: u64,
    /// Msat paid from A to B minus msat paid from B to A.
    net_a_to_b_msat: i128,
    /// Commitments each side signed since the channel became ready (two per payment,
    /// claimed or failed: the add, then the removal).
    commitment_rounds: u64,
    messages: u64,
    wire_bytes: u64,
    /// A's and B's local commitment numbers right after the channel became ready.
    initial_commitment: [u64; 2],
    /// When sampling: the first encoding of each message type sent.
    samples: Option<BTreeMap<u16, Vec<u8>>>,
}

impl Harness {
    /// Node `i`'s core, for an API call: its next commit point commits.
    fn call(&mut self, i: usize) -> &mut NodeCore {
        let node = &mut self.nodes[i];
        node.must_commit = true;
        &mut node.core
    }

    /// Two fresh nodes, connected, with an 8,000,000-sat channel from A to B (100,000,000
    /// msat pushed) opened through the protocol and confirmed through the chain calls.
    /// Each node persists into its own engine [`MemoryStore`].
    pub fn new() -> Result<Harness, Error> {
        Self::build(false, || Ok(Box::new(MemoryStore::new())))
    }

    /// As [`Harness::new`], but node A persists into an [`FsStore`] in `dirs[0]` and node B
    /// into one in `dirs[1]` (created if needed; each must be a new store).
    pub fn on_fs(dirs: [&Path; 2]) -> Result<Harness, Error> {
        let mut next = dirs.into_iter();
        Self::build(false, move || {
            let dir = next
                .next()
                .ok_or_else(|| Error::BadOptions("two store directories".into()))?;
            Ok(Box::new(FsStore::open(dir)?))
        })
    }

    fn build(
        sample: bool,
        mut store: impl FnMut() -> Result<Box<dyn Store>, Error>,
    ) -> Result<Harness, Error> {
        let config = node_config();
        let height = 100;
        let tip = block_header(height).block_hash();
        let mut make = |index: usize| -> Result<Node, Error> {
            let (secret, seed) = node_identity(index);
            let core = NodeCore::new(secret, seed, config.clone(), height, tip);
            let store = NodeStore::new(store()?, &core.node_id())?;
            Ok(Node {
                core,
                store,
                events: Vec::new(),
                must_commit: false,
            })
        };
        let nodes = [make(0)?, make(1)?];
        let ids = [nodes[0].core.node_id(), nodes[1].core.node_id()];
        let mut h = Harness {
            nodes,
            ids,
            inflight: VecDeque::new(),
            channel_id: ChannelId([0; 32]),
            scid: ShortChannelId(0),
            height,
            payments: 0,
            sent: 0,
            net_a_to_b_msat: 0,
            commitment_rounds: 0,
            messages: 0,
            wire_bytes: 0,
            initial_commitment: [0; 2],
            samples: sample.then(BTreeMap::new),
        };
        h.open_channel()?;
        Ok(h)
    }

    fn open_channel(&mut self) -> Result<(), Error> {
        let [a, b] = self.ids;
        self.call(0).peer_connected(b);
        self.call(1).peer_connected(a);
        self.pump()?;
        let temp = self
            .call(0)
            .create_channel(b, CHANNEL_SATOSHIS, PUSH_MSAT, 42, FEERATE_PER_KW)
            .map_err(api("create_channel"))?;
        self.pump()?;
        let script = std::mem::take(&mut self.nodes[0].events)
            .into_iter()
            .find_map(|e| match e {
                Event::FundingGenerationReady {
                    temporary_channel_id,
                    output_script,
                    ..
                } if temporary_channel_id == temp => Some(output_script),
                _ => None,
            })
            .ok_or_else(|| Error::Protocol("no FundingGenerationReady after open".into()))?;
        let tx = funding_tx(script, CHANNEL_SATOSHIS, 0x7477_6f6e);
        self.call(0)
            .funding_transaction_generated(temp, b, tx.clone())
            .map_err(api("funding_transaction_generated"))?;
        self.pump()?;
        let broadcast = self.nodes[0]
            .events
            .iter()
            .any(|e| matches!(e, Event::BroadcastTransaction { tx: t } if *t == tx));
        if !broadcast {
            return Err(Error::Protocol(
                "the funder did not broadcast the funding transaction".into(),
            ));
        }
        self.height += 1;
        let tip = block_header(self.height).block_hash();
        for node in &mut self.nodes {
            node.must_commit = true;
            node.core.transactions_confirmed(self.height, &[(1, &tx)]);
            node.core.best_block_updated(self.height, tip);
        }
        self.pump()?;
        self.channel_id = ChannelId::from_funding_outpoint(&tx.compute_txid(), 0);
        for i in 0..2 {
            let ready = std::mem::take(&mut self.nodes[i].events)
                .into_iter()
                .find_map(|e| match e {
                    Event::ChannelReady {
                        channel_id,
                        short_channel_id,
                        ..
                    } if channel_id == self.channel_id => short_channel_id,
                    _ => None,
                });
            self.scid = ready.ok_or_else(|| {
                Error::Protocol(format!("node {i} saw no ChannelReady with a short id"))
            })?;
            let peer = self.ids[1 - i];
            self.initial_commitment[i] = self.channel(i, &peer)?.local_commit().index;
        }
        self.check_balances()?;
        self.messages = 0;
        self.wire_bytes = 0;
        for node in &mut self.nodes {
            node.store.records_written = 0;
            node.store.bytes_written = 0;
            node.store.commits = 0;
            node.store.write_nanos = 0;
        }
        Ok(())
    }

    /// Node A's (`0`) and node B's (`1`) ids.
    pub fn node_ids(&self) -> [PublicKey; 2] {
        self.ids
    }

    /// The channel's id.
    pub fn channel_id(&self) -> ChannelId {
        self.channel_id
    }

    /// The chain tip both nodes last saw: height and block hash.
    pub fn best_block(&self) -> (u32, BlockHash) {
        (self.height, block_header(self.height).block_hash())
    }

    /// The channel's balances as node A (`0`) and node B (`1`) see them now.
    pub fn balances(&self) -> Result<[Balances; 2], Error> {
        Ok([
            self.channel(0, &self.ids[1])?.balances(),
            self.channel(1, &self.ids[0])?.balances(),
        ])
    }

    fn channel(
        &self,
        i: usize,
        peer: &PublicKey,
    ) -> Result<&lightning_core::channel::Channel, Error> {
        self.nodes[i]
            .core
            .channel(peer, &self.channel_id)
            .ok_or_else(|| Error::Protocol(format!("node {i} lost the channel")))
    }

    /// Commits each node's changes, then moves its outputs out (messages encoded into the
    /// network, events kept), then delivers every message in flight (one batch per node, in
    /// sending order), until nothing moves.
    fn pump(&mut self) -> Result<(), Error> {
        loop {
            for i in 0..2 {
                let node = &mut self.nodes[i];
                let outputs: Vec<Output> = std::iter::from_fn(|| node.core.poll_output()).collect();
                // The persistence barrier: nothing leaves before it is stored. As an engine
                // shard, a step none of whose outputs needs its state durable (a
                // `revoke_and_ack` that only completes a dance, `PaymentClaimable`) carries
                // its changes into the next commit.
                if std::mem::take(&mut node.must_commit) || outputs.iter().any(Output::needs_commit)
                {
                    node.store.commit(&mut node.core)?;
                }
                for output in outputs {
                    match output {
                        Output::SendMessage { node_id, msg } => {
                            if node_id != self.ids[1 - i] {
                                return Err(Error::Protocol(format!(
                                    "node {i} sent to an unknown peer {node_id}"
                                )));
                            }
                            let bytes = msg.encode();
                            if let Some(samples) = &mut self.samples {
                                samples
                                    .entry(msg.message_type())
                                    .or_insert_with(|| bytes.clone());
                            }
                            self.messages += 1;
                            self.wire_bytes += bytes.len() as u64;
                            self.inflight.push_back((1 - i, bytes));
                        }
                        Output::Event(e) => node.events.push(e),
                        other => {
                            return Err(Error::Protocol(format!(
                                "node {i} produced an unexpected output: {other:?}"
                            )))
                        }
                    }
                }
            }
            if self.inflight.is_empty() {
                return Ok(());
            }
            while let Some((to, bytes)) = self.inflight.pop_front() {
                let from = self.ids[1 - to];
                self.nodes[to].core.handle_message(from, &bytes);
            }
        }
    }

    /// One payment of [`PAYMENT_MSAT`] from node `from` (0 is A) to the other, claimed.
    pub fn pay(&mut self, from: usize) -> Result<(), Error> {
        self.pay_amount(from, PAYMENT_MSAT)
    }

    /// Sends `amount_msat` from node `from` to the other; returns the payment's id, hash
    /// and preimage once the payee saw it claimable.
    fn send_to_claimable(
        &mut self,
        from: usize,
        amount_msat: u64,
    ) -> Result<(PaymentId, PaymentHash, PaymentPreimage), Error> {
        let to = 1 - from;
        let mut preimage = [0u8; 32];
        preimage[..8].copy_from_slice(&self.sent.to_le_bytes());
        self.sent += 1;
        let preimage = PaymentPreimage(preimage);
        // Stateless (nothing to commit), as LDK's.
        let (hash, secret) = self.nodes[to]
            .core
            .create_inbound_payment(&preimage, Some(amount_msat));
        let route = Route {
            hops: vec![RouteHop {
                node_id: self.ids[to],
                short_channel_id: self.scid,
                fee_msat: amount_msat,
                cltv_expiry_delta: FINAL_CLTV_DELTA,
            }],
        };
        let payment_id = PaymentId(hash.0);
        self.call(from)
            .send_payment(&route, hash, secret, payment_id)
            .map_err(api("send_payment"))?;
        self.pump()?;
        match self.nodes[to].events.as_slice() {
            [Event::PaymentClaimable {
                payment_hash,
                amount_msat: claimable,
                ..
            }] if *payment_hash == hash && *claimable == amount_msat => {}
            other => {
                return Err(Error::Protocol(format!(
                    "payment {}: expected one PaymentClaimable at the payee, got {other:?}",
                    self.payments
                )))
            }
        }
        self.nodes[to].events.clear();
        Ok((payment_id, hash, preimage))
    }

    /// One payment of `amount_msat` from node `from` (0 is A) to the other, claimed.
    fn pay_amount(&mut self, from: usize, amount_msat: u64) -> Result<(), Error> {
        let to = 1 - from;
        let (payment_id, hash, preimage) = self.send_to_claimable(from, amount_msat)?;
        self.call(to)
            .claim_funds(preimage)
            .map_err(api("claim_funds"))?;
        self.pump()?;
        match self.nodes[to].events.as_slice() {
            [Event::PaymentClaimed {
                payment_hash,
                amount_msat: claimed,
            }] if *payment_hash == hash && *claimed == amount_msat => {}
            other => {
                return Err(Error::Protocol(format!(
                    "payment {}: expected one PaymentClaimed at the payee, got {other:?}",
                    self.payments
                )))
            }
        }
        self.nodes[to].events.clear();
        match self.nodes[from].events.as_slice() {
            [Event::PaymentSent {
                payment_id: id,
                payment_preimage,
                fee_paid_msat: 0,
                ..
            }] if *id == payment_id && *payment_preimage == preimage => {}
            other => {
                return Err(Error::Protocol(format!(
                    "payment {}: expected one PaymentSent at the payer, got {other:?}",
                    self.payments
                )))
            }
        }
        self.nodes[from].events.clear();
        self.payments += 1;
        self.commitment_rounds += 2;
        let moved = i128::from(amount_msat);
        self.net_a_to_b_msat += if from == 0 { moved } else { -moved };
        Ok(())
    }

    /// A payment of `amount_msat` from node `from` that the payee refuses
    /// ([`NodeCore::fail_htlc_backwards`]): the payer sees it fail.
    fn pay_and_fail(&mut self, from: usize, amount_msat: u64) -> Result<(), Error> {
        let to = 1 - from;
        let (payment_id, hash, _) = self.send_to_claimable(from, amount_msat)?;
        self.call(to)
            .fail_htlc_backwards(hash)
            .map_err(api("fail_htlc_backwards"))?;
        self.pump()?;
        let failed = std::mem::take(&mut self.nodes[from].events)
            .into_iter()
            .any(|e| matches!(e, Event::PaymentFailed { payment_id: id, .. } if id == payment_id));
        if !failed {
            return Err(Error::Protocol("a refused payment did not fail".into()));
        }
        self.nodes[to].events.clear();
        self.commitment_rounds += 2;
        Ok(())
    }

    /// Cuts the connection and reconnects: `init` and `channel_reestablish` both ways.
    fn reconnect(&mut self) -> Result<(), Error> {
        let [a, b] = self.ids;
        self.inflight.clear();
        self.call(0).peer_disconnected(b);
        self.call(1).peer_disconnected(a);
        self.pump()?;
        self.call(0).peer_connected(b);
        self.call(1).peer_connected(a);
        self.pump()?;
        let usable = self.nodes[0]
            .core
            .list_channels()
            .iter()
            .any(|c| c.channel_id == self.channel_id && c.is_usable);
        if !usable {
            return Err(Error::Protocol(
                "the channel is not usable after reconnecting".into(),
            ));
        }
        Ok(())
    }

    /// Closes the channel cooperatively (`shutdown`, `closing_signed`); A broadcasts the
    /// closing transaction.
    fn close(&mut self) -> Result<(), Error> {
        let b = self.ids[1];
        let channel_id = self.channel_id;
        self.call(0)
            .close_channel(channel_id, b)
            .map_err(api("close_channel"))?;
        self.pump()?;
        let broadcast = self.nodes[0]
            .events
            .iter()
            .any(|e| matches!(e, Event::BroadcastTransaction { .. }));
        if !broadcast {
            return Err(Error::Protocol(
                "no closing transaction after a cooperative close".into(),
            ));
        }
        Ok(())
    }

    /// One benchmark iteration: a payment from A to B, then one from B to A.
    pub fn iteration(&mut self) -> Result<(), Error> {
        self.pay(0)?;
        self.pay(1)
    }

    /// Payments completed so far.
    pub fn payments(&self) -> u64 {
        self.payments
    }

    /// Commits what each node carried over uncommitted (as an engine shard does at a clean
    /// stop or when its inbox stays empty).
    pub fn flush(&mut self) -> Result<(), Error> {
        for node in &mut self.nodes {
            node.store.commit(&mut node.core)?;
        }
        Ok(())
    }

    /// Checks both nodes' balances and commitment numbers against the payments made, and,
    /// after a [`Harness::flush`], that each store holds exactly the live channel.
    pub fn check(&mut self) -> Result<(), Error> {
        self.flush()?;
        self.check_balances()?;
        // Every payment moves each side's commitment forward twice (add, then fulfill).
        for i in 0..2 {
            let peer = self.ids[1 - i];
            let index = self.channel(i, &peer)?.local_commit().index;
            let expected = self.initial_commitment[i] + self.commitment_rounds;
            if index != expected {
                return Err(Error::Protocol(format!(
                    "node {i}: local commitment number {index}, expected {expected}"
                )));
            }
            let record = self.nodes[i]
                .store
                .channel(&self.channel_id)?
                .ok_or_else(|| Error::Protocol(format!("node {i}: channel not in the store")))?;
            let live = self.nodes[i]
                .core
                .snapshot_channel(&peer, &self.channel_id)
                .ok_or_else(|| Error::Protocol(format!("node {i} lost the channel")))?;
            if record != live {
                return Err(Error::Protocol(format!(
                    "node {i}: the stored channel record differs from the live channel"
                )));
            }
        }
        Ok(())
    }

    fn check_balances(&self) -> Result<(), Error> {
        let total = CHANNEL_SATOSHIS * 1000;
        let moved = self.net_a_to_b_msat;
        let a_expected = i128::from(total - PUSH_MSAT) - moved;
        let a = self.channel(0, &self.ids[1])?.balances();
        let b = self.channel(1, &self.ids[0])?.balances();
        let (a_local, a_remote) = (i128::from(a.to_local_msat), i128::from(a.to_remote_msat));
        let (b_local, b_remote) = (i128::from(b.to_local_msat), i128::from(b.to_remote_msat));
        let b_expected = i128::from(PUSH_MSAT) + moved;
        if a_local != a_expected || b_remote != a_expected {
            return Err(Error::Protocol(format!(
                "after {} payments A holds {a_local} msat (B sees {b_remote}), expected {a_expected}",
                self.payments
            )));
        }
        if b_local != b_expected || a_remote != b_expected {
            return Err(Error::Protocol(format!(
                "after {} payments B holds {b_local} msat (A sees {a_remote}), expected {b_expected}",
                self.payments
            )));
        }
        Ok(())
    }
}

/// Real encoded messages, one per message type (the first of its type sent), from two nodes
/// that open a channel, pay above the dust limit both ways (so `commitment_signed` carries an
/// HTLC signature), refuse a payment (`update_fail_htlc`), reconnect
/// (`channel_reestablish`) and close cooperatively (`shutdown`, `closing_signed`). Keyed by
/// message type. For the decoding micro-benchmarks.
pub fn sample_messages() -> Result<BTreeMap<u16, Vec<u8>>, Error> {
    let mut h = Harness::build(true, || Ok(Box::new(MemoryStore::new())))?;
    h.pay_amount(0, 5_000_000)?;
    h.pay_amount(1, 2_000_000)?;
    h.pay_and_fail(0, 3_000_000)?;
    h.check()?;
    h.reconnect()?;
    h.pay_amount(0, 1_000_000)?;
    h.check()?;
    h.close()?;
    h.samples
        .ok_or_else(|| Error::Protocol("sampling was not enabled".into()))
}

/// Runs the workload: [`Options::warmup`] untimed iterations, then [`Options::iterations`]
/// timed ones in `BATCHES` batches, then the correctness checks.
pub fn run(opts: &Options) -> Result<Report, Error> {
    if opts.iterations == 0 {
        return Err(Error::BadOptions("iterations must be at least 1".into()));
    }
    // Dropped after the harness (declared first): the stores close before their
    // directories go.
    let dirs = match opts.store {
        StoreKind::Memory => None,
        StoreKind::Fs => Some([tempfile::tempdir()?, tempfile::tempdir()?]),
    };
    let mut h = match &dirs {
        None => Harness::new()?,
        Some([a, b]) => Harness::on_fs([a.path(), b.path()])?,
    };
    for _ in 0..opts.warmup {
        h.iteration()?;
    }
    h.check()?;
    let (messages0, wire0) = (h.messages, h.wire_bytes);
    let records0: u64 = h.nodes.iter().map(|n| n.store.records_written).sum();
    let bytes0: u64 = h.nodes.iter().map(|n| n.store.bytes_written).sum();
    let commits0: u64 = h.nodes.iter().map(|n| n.store.commits).sum();
    let write0: u128 = h.nodes.iter().map(|n| n.store.write_nanos).sum();
    let syncs0: u64 = h.nodes.iter().map(|n| n.store.syncs()).sum();
    let batches = BATCHES.min(opts.iterations);
    let mut per_iteration_us = Vec::new();
    let started = Instant::now();
    for batch in 0..batches {
        // Spread the remainder over the first batches.
        let n = opts.iterations / batches + u64::from(batch < opts.iterations % batches);
        let t = Instant::now();
        for _ in 0..n {
            h.iteration()?;
        }
        per_iteration_us.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    let total_seconds = started.elapsed().as_secs_f64();
    h.check()?;
    let payments = (2 * opts.iterations) as f64;
    let records: u64 = h.nodes.iter().map(|n| n.store.records_written).sum();
    let bytes: u64 = h.nodes.iter().map(|n| n.store.bytes_written).sum();
    let commits: u64 = h.nodes.iter().map(|n| n.store.commits).sum();
    let write: u128 = h.nodes.iter().map(|n| n.store.write_nanos).sum();
    let syncs: u64 = match opts.store {
        StoreKind::Memory => syncs0,
        StoreKind::Fs => h.nodes.iter().map(|n| n.store.syncs()).sum(),
    };
    per_iteration_us.sort_by(f64::total_cmp);
    let median = median_sorted(&per_iteration_us);
    let report = Report {
        store: opts.store,
        iterations: opts.iterations,
        warmup: opts.warmup,
        batches,
        us_per_iteration: median,
        payments_per_sec: 2e6 / median,
        min_batch_us_per_iteration: per_iteration_us.first().copied().unwrap_or(median),
        max_batch_us_per_iteration: per_iteration_us.last().copied().unwrap_or(median),
        total_seconds,
        messages_per_payment: (h.messages - messages0) as f64 / payments,
        wire_bytes_per_payment: (h.wire_bytes - wire0) as f64 / payments,
        records_written_per_payment: (records - records0) as f64 / payments,
        persisted_bytes_per_payment: (bytes - bytes0) as f64 / payments,
        commits_per_payment: (commits - commits0) as f64 / payments,
        fsyncs_per_payment: (syncs - syncs0) as f64 / payments,
        store_us_per_iteration: (write - write0) as f64 / 1e3 / opts.iterations as f64,
    };
    tracing::info!(
        store = %report.store,
        us_per_iteration = report.us_per_iteration,
        payments_per_sec = report.payments_per_sec,
        "two-node-sends done"
    );
    Ok(report)
}

/// The median of a sorted, non-empty slice (0 for an empty one).
pub(crate) fn median_sorted(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_run_checks_out() {
        let report = run(&Options {
            iterations: 4,
            warmup: 1,
            store: StoreKind::Memory,
        })
        .expect("runs");
        assert_eq!(report.iterations, 4);
        assert_eq!(report.batches, 4);
        assert!(report.payments_per_sec > 0.0);
        // add + commitment_signed + revoke_and_ack + commitment_signed + revoke_and_ack,
        // then the same for the fulfill.
        assert_eq!(report.messages_per_payment, 10.0);
        assert!(report.records_written_per_payment >= 4.0);
    }

    #[test]
    fn samples_cover_the_channel_messages() {
        let samples = sample_messages().expect("the scenario runs");
        // init, open/accept, funding created/signed, channel_ready, shutdown, closing_signed,
        // add, fulfill, fail, commitment_signed, revoke_and_ack, channel_reestablish.
        for t in [16, 32, 33, 34, 35, 36, 38, 39, 128, 130, 131, 132, 133, 136] {
            let bytes = samples
                .get(&t)
                .unwrap_or_else(|| panic!("type {t} sampled"));
            let msg = lightning_core::wire::Message::decode(bytes).expect("decodes");
            assert_eq!(msg.message_type(), t);
        }
    }

    #[test]
    fn check_catches_a_wrong_balance() {
        let mut h = Harness::new().expect("opens");
        h.iteration().expect("pays");
        h.check().expect("consistent");
        h.net_a_to_b_msat += 1;
        assert!(matches!(h.check(), Err(Error::Protocol(_))));
    }
}
