//! Durable state in the engine: what a shard writes after each batch of messages (group
//! commit), and how an engine is rebuilt from a store written with any shard count.
//!
//! Layout in the [`Store`]:
//!
//! ```text
//! channels/<channel id hex>        ChannelRecord (lightning-core envelope)
//! nodes/shard-<i>-of-<n>           NodeRecord of shard i of an engine of n shards
//! resolutions/<source key>         a forward's result handed to another shard, not yet
//!                                  applied there (see below)
//! monitors/<channel id hex>        MonitorRecord: the channel's on-chain monitor without
//!                                  its revoked HTLCs (bounded size), written when it holds
//!                                  what the channel record does not (created, chain data,
//!                                  force-close, channel gone); while the channel is open,
//!                                  restore brings it up to date from the channel record;
//!                                  kept after the channel closes
//! monitor_revoked/<channel id hex>-<chunk, 20 digits>
//!                                  MonitorRevokedRecord: the HTLCs of 64 consecutive
//!                                  revoked commitments of the peer's (written while the
//!                                  chunk fills, then never again)
//! monitor_updates/<channel id hex>-<update id, 20 digits>
//!                                  MonitorUpdateRecord: read on restore if present (a
//!                                  host that logs updates), never written by the engine
//! offered_htlcs/<channel id hex>-<htlc id, 20 digits>
//!                                  OfferedHtlcEntryRecord: an HTLC we offered on that
//!                                  channel (a forward's downstream end, or our payment's
//!                                  first hop), written by the commit that offered it,
//!                                  deleted by the one that resolved it
//! upstream_htlcs/<channel id hex>-<htlc id, 20 digits>
//!                                  UpstreamHtlcEntryRecord: an HTLC that came in on that
//!                                  channel and that we forwarded (its upstream end),
//!                                  written by the commit that forwarded it, deleted by the
//!                                  one that answered it
//! node/id                          the node id the store belongs to (33 bytes): an engine
//!                                  with another node key refuses the store
//! completed_payments/<payment id hex>-<completion height, 10 digits>
//!                                  CompletedPaymentRecord: one of our payments completed
//!                                  within `NodeConfig::payment_id_retention_blocks` (its id
//!                                  is refused); written by the commit of the batch that
//!                                  completed it, deleted by the one that forgot it
//! ```
//!
//! A completed payment's id is a record of its own, not a field of the node record, so a
//! commit writes the ids it changed, never all of the window's. The height is in the key:
//! an id forgotten by one shard and used again (after its window) on another has two
//! records, never one that two shards write and delete. On restore each id goes to one
//! shard ([`completed_payment_shard`]: the id no longer says which peer paid it), and the
//! coordinator learns every shard's, so the id is refused on every shard.
//!
//! The two ends of every forward in flight are records of their own for the same reason
//! (format version 6): a routing shard's node record held one of each per payment in flight,
//! and rewriting it whole made every commit grow with them. A node record written before
//! holds them in its maps: restore merges both, and the first commit writes them as records
//! of their own. Each end names its channel's peer, so restore gives it to the shard that
//! owns that peer, whatever the shard count.
//!
//! See `docs/ENGINE.md` ("Durable state") for the ordering argument.
//!
//! # The best block after a restart
//!
//! Every shard writes its node record, with its own best block, in its own batches, so a
//! crash can leave one shard with a block another never committed. [`NodeRecord::merge`]
//! keeps the LOWEST best block of the records (with that record's hash), and every restored
//! shard and the coordinator start there: the engine reports it
//! (`Coordinator::best_block`), and a host resumes its chain feed from it, giving again
//! every block above it. A shard that missed a block (which may hold a spend of one of its
//! channels' funding outputs: a revoked commitment) sees it; a shard that had processed it
//! takes it again harmlessly (re-fed blocks are idempotent: no confirmation counted twice,
//! no event raised twice, the same claims). Taking the highest would lose the missed block
//! for good.
//!
//! A monitor whose snapshot is ahead of the merged best block (its shard committed a block
//! the others had not, or one the others then disconnected in a reorg) forgets the blocks
//! above it on restore (`NodeCore::restore_with_monitors`): the host's re-feed, of whatever
//! branch is now the chain, is applied, not skipped as already seen. Records that agree on
//! the lowest height but not on its hash (one shard on a branch the others disconnected)
//! give the all-zero hash, a block no chain has: the host disconnects from that height
//! before re-feeding ([`NodeRecord::merge`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lightning_core::bitcoin::BlockHash;
use lightning_core::chain::ChannelMonitor;
use lightning_core::node::{
    ForwardOutcome, ForwardResolution, HtlcSource, NodeConfig, NodeCore, PaymentId,
};
use lightning_core::onion::FailureMessage;
use lightning_core::persist::{
    restore_monitor_with_revoked, ChannelRecord, CompletedPaymentRecord, ForwardResolutionRecord,
    MonitorRecord, MonitorRevokedRecord, MonitorUpdateRecord, NodeRecord, OfferedHtlcEntryRecord,
    PersistError, UpstreamHtlcEntryRecord,
};
use lightning_core::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning_core::types::ChannelId;

use crate::coordinator::Coordinator;
use crate::error::EngineError;
use crate::msg::{Out, ShardMsg};
use crate::placement::Placement;
use crate::store::{Corruption, Store, StoreError, WriteOp};

/// Namespace of channel records.
pub const CHANNELS: &str = "channels";
/// Namespace of node records (one per shard).
pub const NODES: &str = "nodes";
/// Namespace of cross-shard resolutions not yet applied by their receiver.
pub const RESOLUTIONS: &str = "resolutions";
/// Namespace of monitor snapshots.
pub const MONITORS: &str = "monitors";
/// Namespace of monitor updates stored after their monitor's snapshot (read, not written).
pub const MONITOR_UPDATES: &str = "monitor_updates";
/// Namespace of the chunks of revoked commitments' HTLCs of each monitor.
pub const MONITOR_REVOKED: &str = "monitor_revoked";
/// Namespace of completed payment ids (one record each).
pub const COMPLETED_PAYMENTS: &str = "completed_payments";
/// Namespace of the HTLCs we offered (one record each).
pub const OFFERED_HTLCS: &str = "offered_htlcs";
/// Namespace of the HTLCs we forwarded, by their incoming channel (one record each).
pub const UPSTREAM_HTLCS: &str = "upstream_htlcs";
/// Namespace of the record naming the node the store belongs to.
pub const NODE: &str = "node";
/// Key of the record naming the node the store belongs to: its node id, 33 bytes
/// (compressed public key).
pub const NODE_ID: &str = "id";

/// The key of shard `index`'s node record in an engine of `shards` shards.
pub fn node_key(index: usize, shards: usize) -> String {
    format!("shard-{index}-of-{shards}")
}

fn hex(bytes: &[u8]) -> String {
    // One allocation per key (the keys are written at every commit), lowercase.
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
        }
    }
    out
}

/// The key of a channel's record: its id in hex.
pub fn channel_key(channel_id: &ChannelId) -> String {
    hex(&channel_id.0)
}

/// The key of a monitor update record: the channel id in hex, then the update id.
pub fn monitor_update_key(channel_id: &ChannelId, update_id: u64) -> String {
    format!("{}-{update_id:020}", hex(&channel_id.0))
}

/// The key of a chunk of a monitor's revoked HTLCs: the channel id in hex, then the chunk.
pub fn monitor_revoked_key(channel_id: &ChannelId, chunk: u64) -> String {
    format!("{}-{chunk:020}", hex(&channel_id.0))
}

/// The key of an offered or forwarded HTLC's record: its channel id in hex, then its id.
pub fn htlc_key(channel_id: &ChannelId, htlc_id: u64) -> String {
    format!("{}-{htlc_id:020}", hex(&channel_id.0))
}

/// The key of a completed payment's record: the payment id in hex, then the best height
/// when it completed.
pub fn completed_payment_key(record: &CompletedPaymentRecord) -> String {
    format!(
        "{}-{:010}",
        hex(&record.payment_id.0),
        record.completed_height
    )
}

/// The shard (of `shards`) that takes back completed payment id `id` on restore: any one
/// would do (the coordinator refuses the id on every shard), this one spreads them.
pub fn completed_payment_shard(id: &PaymentId, shards: usize) -> usize {
    let folded =
        id.0.iter()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(*b)));
    usize::try_from(folded % shards.max(1) as u64).unwrap_or(0)
}

/// The key of a resolution record: `f-<incoming channel>-<htlc id>` or `p-<payment id>`.
pub fn resolution_key(source: &HtlcSource) -> String {
    match source {
        HtlcSource::Forwarded {
            channel_id,
            htlc_id,
        } => format!("f-{}-{htlc_id}", hex(&channel_id.0)),
        HtlcSource::Local(PaymentId(id)) => format!("p-{}", hex(id)),
    }
}

/// Serializes a [`ForwardResolution`]: a [`ForwardResolutionRecord`] in core's envelope
/// (kind `Resolution`, format version 3 on).
pub fn encode_resolution(r: &ForwardResolution) -> Result<Vec<u8>, PersistError> {
    r.to_record().to_bytes()
}

/// Reads a stored resolution: what [`encode_resolution`] writes, or the hand-written layout
/// of engines before format version 3 (its first byte is 1, never an envelope's magic; see
/// `ForwardResolutionRecord::from_legacy_bytes`), so stores written by the old code still
/// read. Anything else is a clear [`PersistError`].
pub fn decode_resolution(value: &[u8]) -> Result<ForwardResolution, PersistError> {
    ForwardResolutionRecord::from_stored_bytes(value).map(ForwardResolution::from_record)
}

/// One shard's writer: builds the batch of a group commit and writes it.
#[derive(Clone)]
pub(crate) struct Persister {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) node_key: String,
}

impl core::fmt::Debug for Persister {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Persister")
            .field("node_key", &self.node_key)
            .finish_non_exhaustive()
    }
}

/// The write operations for what `core` changed since its last commit, the resolutions in
/// `out` that leave for another shard, and the resolutions `consumed` (received from another
/// shard and now applied here). A host driving a [`NodeCore`] of its own (the two-node
/// benchmark) writes them with one [`Store::write_batch`] before any of its messages leave.
///
/// Errors: [`EngineError::Record`] when a record cannot be encoded.
pub fn commit_ops(
    core: &mut NodeCore,
    node_key: &str,
    out: &[Out],
    consumed: &[HtlcSource],
) -> Result<Vec<WriteOp>, EngineError> {
    let dirty = core.take_dirty();
    let mut ops = Vec::new();
    for source in consumed {
        ops.push(remove(RESOLUTIONS, resolution_key(source)));
    }
    for (_, channel_id) in &dirty.removed {
        ops.push(remove(CHANNELS, channel_key(channel_id)));
    }
    for (node_id, channel_id) in &dirty.channels {
        if let Some(record) = core.snapshot_channel(node_id, channel_id) {
            ops.push(put(CHANNELS, channel_key(channel_id), record.to_bytes())?);
        }
    }
    // Monitors: each changed one's bounded snapshot, and the chunks of revoked HTLCs it
    // added, in the batch of the channel state it follows.
    for channel_id in &dirty.monitors {
        let Some((record, chunks)) = core.snapshot_monitor(channel_id) else {
            continue;
        };
        monitor_ops(&mut ops, record.as_ref(), &chunks)?;
    }
    // Completed payment ids: the ones forgotten, then the ones completed (never the same
    // key: see `Dirty`), each a small record of its own.
    for record in &dirty.forgotten_payments {
        ops.push(remove(COMPLETED_PAYMENTS, completed_payment_key(record)));
    }
    for record in &dirty.completed_payments {
        ops.push(put(
            COMPLETED_PAYMENTS,
            completed_payment_key(record),
            record.to_bytes(),
        )?);
    }
    // The two ends of forwards: each changed one's record, or its deletion.
    for &(channel_id, htlc_id) in &dirty.offered {
        let record = core
            .offered_entry(channel_id, htlc_id)
            .map(|r| r.to_bytes());
        ops.push(put_or_remove(
            OFFERED_HTLCS,
            htlc_key(&channel_id, htlc_id),
            record,
        )?);
    }
    for &(channel_id, htlc_id) in &dirty.upstream {
        let record = core
            .upstream_entry(channel_id, htlc_id)
            .map(|r| r.to_bytes());
        ops.push(put_or_remove(
            UPSTREAM_HTLCS,
            htlc_key(&channel_id, htlc_id),
            record,
        )?);
    }
    if dirty.node {
        ops.push(put(
            NODES,
            node_key.to_owned(),
            core.stored_node_record().to_bytes(),
        )?);
    }
    for o in out {
        if let Out::Shard {
            msg: ShardMsg::Resolve(r),
            ..
        } = o
        {
            ops.push(put(
                RESOLUTIONS,
                resolution_key(&r.source),
                encode_resolution(r),
            )?);
        }
    }
    Ok(ops)
}

pub(crate) fn store_error(e: StoreError) -> EngineError {
    EngineError::Store(Arc::new(e))
}

fn record_error(namespace: &str, key: &str, error: PersistError) -> EngineError {
    EngineError::Record {
        namespace: namespace.to_owned(),
        key: key.to_owned(),
        error: Box::new(error),
    }
}

/// A write of a record's encoding (`bytes`) under `namespace`/`key`, or the error naming
/// where it would have gone.
fn put(
    namespace: &str,
    key: String,
    bytes: Result<Vec<u8>, PersistError>,
) -> Result<WriteOp, EngineError> {
    match bytes {
        Ok(value) => Ok(WriteOp::Put {
            namespace: namespace.into(),
            key,
            value,
        }),
        Err(error) => Err(record_error(namespace, &key, error)),
    }
}

/// The deletion of `namespace`/`key`.
fn remove(namespace: &str, key: String) -> WriteOp {
    WriteOp::Remove {
        namespace: namespace.into(),
        key,
    }
}

/// [`put`] when there is a record, else [`remove`] (the record is gone).
fn put_or_remove(
    namespace: &str,
    key: String,
    bytes: Option<Result<Vec<u8>, PersistError>>,
) -> Result<WriteOp, EngineError> {
    match bytes {
        Some(bytes) => put(namespace, key, bytes),
        None => Ok(remove(namespace, key)),
    }
}

/// Checks that `store` belongs to `ours`: `Ok(None)` when it records our node id,
/// `Ok(Some(op))` when it records none (a new store, or one written before the id was
/// recorded): `op` records it, to be written before anything else of ours.
///
/// Errors: [`EngineError::WrongNode`] naming both ids when it records another node;
/// [`EngineError::Record`] when the record is not a node id; [`EngineError::Store`].
pub fn check_owner(store: &dyn Store, ours: &PublicKey) -> Result<Option<WriteOp>, EngineError> {
    match store.read(NODE, NODE_ID).map_err(store_error)? {
        None => Ok(Some(WriteOp::Put {
            namespace: NODE.into(),
            key: NODE_ID.into(),
            value: ours.serialize().to_vec(),
        })),
        Some(bytes) => {
            let stored = PublicKey::from_slice(&bytes).map_err(|_| {
                record_error(NODE, NODE_ID, PersistError::BadNodeId { len: bytes.len() })
            })?;
            if stored == *ours {
                Ok(None)
            } else {
                Err(EngineError::WrongNode {
                    stored: Box::new(stored),
                    ours: Box::new(*ours),
                })
            }
        }
    }
}

/// The write operations storing a monitor's snapshot and revoked-HTLC chunks.
fn monitor_ops(
    ops: &mut Vec<WriteOp>,
    record: Option<&MonitorRecord>,
    chunks: &[MonitorRevokedRecord],
) -> Result<(), EngineError> {
    if let Some(record) = record {
        ops.push(put(
            MONITORS,
            channel_key(&record.channel_id),
            record.to_bytes(),
        )?);
    }
    for chunk in chunks {
        let key = monitor_revoked_key(&chunk.channel_id, chunk.chunk);
        ops.push(put(MONITOR_REVOKED, key, chunk.to_bytes())?);
    }
    Ok(())
}

/// Reads a listed record (a listed key that cannot be read is corruption).
type ReadRecord<'a> = dyn Fn(&str, &str) -> Result<Vec<u8>, EngineError> + 'a;

/// Every monitor in the store, each rebuilt from its snapshot, its revoked-HTLC chunks and
/// any update records stored after the snapshot. A monitor rebuilt with updates is written
/// again as a snapshot by the opening batch, which removes the update records (`ops`).
fn read_monitors(
    store: &dyn Store,
    seed: &[u8; 32],
    read: &ReadRecord<'_>,
    ops: &mut Vec<WriteOp>,
) -> Result<Vec<ChannelMonitor>, EngineError> {
    let mut updates: BTreeMap<String, Vec<(String, MonitorUpdateRecord)>> = BTreeMap::new();
    for key in store.list(MONITOR_UPDATES).map_err(store_error)? {
        let bytes = read(MONITOR_UPDATES, &key)?;
        let record = MonitorUpdateRecord::from_bytes(&bytes)
            .map_err(|e| record_error(MONITOR_UPDATES, &key, e))?;
        updates
            .entry(channel_key(&record.channel_id))
            .or_default()
            .push((key, record));
    }
    let mut revoked: BTreeMap<String, Vec<MonitorRevokedRecord>> = BTreeMap::new();
    for key in store.list(MONITOR_REVOKED).map_err(store_error)? {
        let bytes = read(MONITOR_REVOKED, &key)?;
        let record = MonitorRevokedRecord::from_bytes(&bytes)
            .map_err(|e| record_error(MONITOR_REVOKED, &key, e))?;
        revoked
            .entry(channel_key(&record.channel_id))
            .or_default()
            .push(record);
    }
    let mut out = Vec::new();
    for key in store.list(MONITORS).map_err(store_error)? {
        let bytes = read(MONITORS, &key)?;
        let record =
            MonitorRecord::from_bytes(&bytes).map_err(|e| record_error(MONITORS, &key, e))?;
        let pending = updates.remove(&key).unwrap_or_default();
        let chunks = revoked.remove(&key).unwrap_or_default();
        let update_keys: Vec<String> = pending.iter().map(|(k, _)| k.clone()).collect();
        let monitor = restore_monitor_with_revoked(
            record,
            pending.into_iter().map(|(_, u)| u).collect(),
            chunks,
            seed,
        )
        .map_err(|e| record_error(MONITORS, &key, e))?;
        if !update_keys.is_empty() {
            // Fold the updates into a snapshot, in the same batch that removes them.
            let chunks: Vec<MonitorRevokedRecord> = monitor
                .revoked_chunks_after(None)
                .into_iter()
                .map(|c| monitor.revoked_chunk_record(c))
                .collect();
            monitor_ops(ops, Some(&monitor.to_bounded_record()), &chunks)?;
            ops.extend(update_keys.into_iter().map(|k| remove(MONITOR_UPDATES, k)));
        }
        out.push(monitor);
    }
    // Records of a monitor with no snapshot: the snapshot is written in the batch that
    // creates the monitor, so this is damage, not a crash.
    let orphan = updates
        .into_values()
        .flatten()
        .map(|(key, r)| (MONITOR_UPDATES, key, r.channel_id))
        .chain(revoked.into_values().flatten().map(|r| {
            (
                MONITOR_REVOKED,
                monitor_revoked_key(&r.channel_id, r.chunk),
                r.channel_id,
            )
        }))
        .next();
    if let Some((namespace, key, channel_id)) = orphan {
        return Err(record_error(
            namespace,
            &key,
            PersistError::MonitorInconsistent {
                channel_id,
                what: "monitor records without a monitor snapshot",
            },
        ));
    }
    Ok(out)
}

/// What [`restore`] rebuilt: one core per shard and the coordinator rebuilt from their
/// channels.
pub(crate) struct Restored {
    pub(crate) cores: Vec<NodeCore>,
    pub(crate) coordinator: Arc<Coordinator>,
}

/// Why a forward's upstream end has no downstream end on restart: the shard that was to add
/// it had not committed it (so it never sent `update_add_htlc`). It fails back.
fn lost_forward_failure() -> ForwardOutcome {
    ForwardOutcome::FailedHere(FailureMessage::TemporaryNodeFailure)
}

/// Reads every record of `store` (written with any shard count) and rebuilds `placement`'s
/// shards from them. See [`crate::Engine::open`]. The store must belong to this node
/// ([`check_owner`]); the returned operations record our node id first if it has none.
/// Every core and the coordinator start at the lowest best block of the node records (see
/// the module documentation); `best_block` is for a store without any.
pub(crate) fn restore(
    store: &dyn Store,
    placement: &Placement,
    node_secret: SecretKey,
    seed: [u8; 32],
    config: &NodeConfig,
    best_block: (u32, BlockHash),
) -> Result<(Restored, Vec<WriteOp>), EngineError> {
    // Whose store this is, before anything is read from it.
    let ours = PublicKey::from_secret_key(&Secp256k1::signing_only(), &node_secret);
    let owner_op = check_owner(store, &ours)?;
    let read = |ns: &str, key: &str| -> Result<Vec<u8>, EngineError> {
        store.read(ns, key).map_err(store_error)?.ok_or_else(|| {
            store_error(StoreError::Corrupt {
                corruption: Corruption::ListedButUnreadable {
                    namespace: ns.to_owned(),
                    key: key.to_owned(),
                },
            })
        })
    };
    let node_keys = store.list(NODES).map_err(store_error)?;
    let mut nodes = Vec::new();
    for key in &node_keys {
        let bytes = read(NODES, key)?;
        nodes.push(NodeRecord::from_bytes(&bytes).map_err(|e| record_error(NODES, key, e))?);
    }
    let mut channels = Vec::new();
    for key in store.list(CHANNELS).map_err(store_error)? {
        let bytes = read(CHANNELS, &key)?;
        channels
            .push(ChannelRecord::from_bytes(&bytes).map_err(|e| record_error(CHANNELS, &key, e))?);
    }
    let resolution_keys = store.list(RESOLUTIONS).map_err(store_error)?;
    let mut resolutions = Vec::new();
    for key in &resolution_keys {
        let bytes = read(RESOLUTIONS, key)?;
        resolutions.push(decode_resolution(&bytes).map_err(|e| record_error(RESOLUTIONS, key, e))?);
    }
    let mut completed = Vec::new();
    for key in store.list(COMPLETED_PAYMENTS).map_err(store_error)? {
        let bytes = read(COMPLETED_PAYMENTS, &key)?;
        completed.push(
            CompletedPaymentRecord::from_bytes(&bytes)
                .map_err(|e| record_error(COMPLETED_PAYMENTS, &key, e))?,
        );
    }
    let mut offered = Vec::new();
    for key in store.list(OFFERED_HTLCS).map_err(store_error)? {
        let bytes = read(OFFERED_HTLCS, &key)?;
        offered.push(
            OfferedHtlcEntryRecord::from_bytes(&bytes)
                .map_err(|e| record_error(OFFERED_HTLCS, &key, e))?,
        );
    }
    let mut upstream = Vec::new();
    for key in store.list(UPSTREAM_HTLCS).map_err(store_error)? {
        let bytes = read(UPSTREAM_HTLCS, &key)?;
        upstream.push(
            UpstreamHtlcEntryRecord::from_bytes(&bytes)
                .map_err(|e| record_error(UPSTREAM_HTLCS, &key, e))?,
        );
    }
    let mut monitor_ops_opening = Vec::new();
    let monitors = read_monitors(store, &seed, &read, &mut monitor_ops_opening)?;
    let mut merged = match NodeRecord::merge(nodes) {
        Some(m) => m,
        None => NodeCore::new(
            node_secret,
            seed,
            config.clone(),
            best_block.0,
            best_block.1,
        )
        .node_record(),
    };

    // The ends of forwards stored as records of their own (format 6 on) join those of node
    // records written before (which a commit never writes again once it has written them
    // as records: one source holds each).
    for r in offered {
        merged.offered.insert((r.channel_id, r.htlc_id), r.offered);
    }
    for r in upstream {
        merged
            .upstream
            .insert((r.channel_id, r.htlc_id), r.upstream);
    }

    // Every downstream end the store knows of: offered HTLCs, HTLCs waiting for their
    // timeout transaction, results on their way back.
    let mut downstream: BTreeSet<HtlcSource> = merged.offered.values().map(|o| o.source).collect();
    downstream.extend(
        merged
            .pending_timeouts
            .values()
            .flatten()
            .map(|p| p.offered.source),
    );
    downstream.extend(resolutions.iter().map(|r| r.source));
    // Upstream ends (forwards, our payments) whose downstream end was never committed.
    let lost: Vec<ForwardResolution> = merged
        .upstream
        .keys()
        .map(|(channel_id, htlc_id)| HtlcSource::Forwarded {
            channel_id: *channel_id,
            htlc_id: *htlc_id,
        })
        .chain(merged.payments.keys().map(|id| HtlcSource::Local(*id)))
        .filter(|source| !downstream.contains(source))
        .map(|source| ForwardResolution {
            source,
            next_channel_id: None,
            outcome: lost_forward_failure(),
        })
        .collect();
    // The shard owning each source.
    let upstream_peer: BTreeMap<(ChannelId, u64), PublicKey> = merged
        .upstream
        .iter()
        .map(|(k, u)| (*k, u.node_id))
        .collect();
    let payment_peer: BTreeMap<PaymentId, PublicKey> = merged
        .payments
        .iter()
        .filter_map(|(id, p)| p.route.hops.first().map(|h| (*id, h.node_id)))
        .collect();
    let owner = |source: &HtlcSource| -> Option<usize> {
        let peer = match source {
            HtlcSource::Forwarded {
                channel_id,
                htlc_id,
            } => upstream_peer.get(&(*channel_id, *htlc_id)),
            HtlcSource::Local(id) => payment_peer.get(id),
        }?;
        Some(placement.shard_of(peer))
    };

    let n = placement.shards();
    let mut by_shard: Vec<Vec<ChannelRecord>> = (0..n).map(|_| Vec::new()).collect();
    for record in channels {
        if let Some(v) = by_shard.get_mut(placement.shard_of(&record.node_id)) {
            v.push(record);
        }
    }
    // Completed payment ids, each to one shard: those of their own records, and those a
    // node record of the first format-5 build held (the shard's node record passes them on,
    // and its first commit writes them as records of their own).
    let mut completed_by_shard: Vec<Vec<CompletedPaymentRecord>> =
        (0..n).map(|_| Vec::new()).collect();
    for record in completed {
        if let Some(v) = completed_by_shard.get_mut(completed_payment_shard(&record.payment_id, n))
        {
            v.push(record);
        }
    }
    let mut legacy_completed: Vec<BTreeMap<PaymentId, u32>> =
        (0..n).map(|_| BTreeMap::new()).collect();
    for (id, height) in std::mem::take(&mut merged.completed_payments) {
        if let Some(m) = legacy_completed.get_mut(completed_payment_shard(&id, n)) {
            m.insert(id, height);
        }
    }
    let mut monitors_by_shard: Vec<Vec<ChannelMonitor>> = (0..n).map(|_| Vec::new()).collect();
    for monitor in monitors {
        let shard = placement.shard_of(&monitor.counterparty_node_id());
        if let Some(v) = monitors_by_shard.get_mut(shard) {
            v.push(monitor);
        }
    }
    let mut cores: Vec<NodeCore> = by_shard
        .into_iter()
        .zip(monitors_by_shard)
        .zip(completed_by_shard.into_iter().zip(legacy_completed))
        .enumerate()
        .map(|(index, ((records, monitors), (completed, legacy)))| {
            let mut record = merged.clone();
            record.retain_peers(|peer| placement.shard_of(peer) == index);
            record.completed_payments = legacy;
            let mut core = NodeCore::restore_with_monitors(
                node_secret,
                seed,
                config.clone(),
                record,
                records,
                monitors,
            );
            core.restore_completed_payments(completed);
            core
        })
        .collect();
    for r in resolutions.iter().chain(lost.iter()) {
        if let Some(core) = owner(&r.source).and_then(|i| cores.get_mut(i)) {
            core.handle_resolution(r.clone());
        }
    }

    // The lowest best block any shard committed (`NodeRecord::merge`): the host re-feeds
    // the blocks above it, which some shard may never have processed.
    let coordinator = Arc::new(Coordinator::new(
        config.clone(),
        merged.best_height,
        merged.best_hash,
    ));
    for (index, core) in cores.iter().enumerate() {
        for c in core.list_channels() {
            coordinator.insert_channel(c.channel_id, c.counterparty_node_id);
        }
        // A channel closed on chain whose monitor still resolves it keeps its place too (as
        // `channel_closed` keeps it before a restart): a preimage learned downstream must
        // still reach that monitor's shard to claim the upstream HTLC on chain.
        for id in core.monitor_ids() {
            if let Some(m) = core.monitor(&id) {
                coordinator.insert_channel(id, m.counterparty_node_id());
            }
        }
        let mut scids: BTreeMap<ChannelId, (PublicKey, Vec<_>)> = BTreeMap::new();
        for (scid, node_id, channel_id) in core.short_channel_ids() {
            scids
                .entry(channel_id)
                .or_insert_with(|| (node_id, Vec::new()))
                .1
                .push(scid);
        }
        for (channel_id, (node_id, list)) in scids {
            coordinator.insert_scids(channel_id, node_id, &list);
        }
        let record = core.node_record();
        for id in record.payments.keys() {
            coordinator.payment_started(*id, index);
        }
        for (id, height) in core.completed_payments() {
            coordinator.payment_completed(*id, *height);
        }
        for hash in record.claimable.keys() {
            coordinator.claimable_at(*hash, index);
        }
    }

    // Old node records not rewritten under the new shard count, and every resolution
    // (applied above, or found already applied): removed in the opening batch.
    let new_keys: BTreeSet<String> = (0..n).map(|i| node_key(i, n)).collect();
    let mut ops: Vec<WriteOp> = owner_op.into_iter().collect();
    ops.extend(
        node_keys
            .iter()
            .filter(|k| !new_keys.contains(*k))
            .map(|k| remove(NODES, k.clone())),
    );
    ops.extend(
        resolution_keys
            .iter()
            .map(|k| remove(RESOLUTIONS, k.clone())),
    );
    ops.extend(monitor_ops_opening);
    Ok((Restored { cores, coordinator }, ops))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(super::hex(&[]), "");
    }

    use super::*;
    use lightning_core::onion::Failure;
    use lightning_core::types::PaymentPreimage;

    const RESOLUTION_VERSION: u8 = 1;

    /// The engine's hand-written encoder of before format version 3, kept to prove that
    /// stores it wrote still read.
    fn legacy_encode_resolution(r: &ForwardResolution) -> Vec<u8> {
        let mut out = vec![RESOLUTION_VERSION];
        match r.source {
            HtlcSource::Local(PaymentId(id)) => {
                out.push(0);
                out.extend_from_slice(&id);
            }
            HtlcSource::Forwarded {
                channel_id,
                htlc_id,
            } => {
                out.push(1);
                out.extend_from_slice(&channel_id.0);
                out.extend_from_slice(&htlc_id.to_be_bytes());
            }
        }
        match r.next_channel_id {
            None => out.push(0),
            Some(c) => {
                out.push(1);
                out.extend_from_slice(&c.0);
            }
        }
        let bytes = |out: &mut Vec<u8>, b: &[u8]| {
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        };
        match &r.outcome {
            ForwardOutcome::Fulfilled(p) => {
                out.push(0);
                out.extend_from_slice(&p.0);
            }
            ForwardOutcome::FailedDownstream(reason) => {
                out.push(1);
                bytes(&mut out, reason);
            }
            ForwardOutcome::Malformed {
                failure_code,
                sha256_of_onion,
            } => {
                out.push(2);
                out.extend_from_slice(&failure_code.to_be_bytes());
                out.extend_from_slice(sha256_of_onion);
            }
            ForwardOutcome::FailedHere(message) => {
                out.push(3);
                // A failure this node built itself always encodes; if it ever did not, the
                // upstream end still fails (with temporary_node_failure) rather than hang.
                let encoded = Failure::from(message.clone()).encode().unwrap_or_default();
                bytes(&mut out, &encoded);
            }
        }
        out
    }

    fn all() -> Vec<ForwardResolution> {
        let fwd = HtlcSource::Forwarded {
            channel_id: ChannelId([3; 32]),
            htlc_id: 9,
        };
        vec![
            ForwardResolution {
                source: fwd,
                next_channel_id: Some(ChannelId([4; 32])),
                outcome: ForwardOutcome::Fulfilled(PaymentPreimage([5; 32])),
            },
            ForwardResolution {
                source: HtlcSource::Local(PaymentId([6; 32])),
                next_channel_id: None,
                outcome: ForwardOutcome::FailedDownstream(vec![1, 2, 3]),
            },
            ForwardResolution {
                source: fwd,
                next_channel_id: None,
                outcome: ForwardOutcome::Malformed {
                    failure_code: 0x8000 | 0x4000 | 5,
                    sha256_of_onion: [7; 32],
                },
            },
            ForwardResolution {
                source: fwd,
                next_channel_id: None,
                outcome: ForwardOutcome::FailedHere(FailureMessage::TemporaryNodeFailure),
            },
        ]
    }

    #[test]
    fn resolutions_round_trip() {
        for r in all() {
            let bytes = encode_resolution(&r).expect("encodes");
            assert_eq!(&bytes[..4], b"LNSD", "inside core's envelope");
            assert_eq!(decode_resolution(&bytes), Ok(r));
        }
    }

    /// Stores written by engines before format version 3 hold resolutions in the old
    /// hand-written layout: they still read, to the same values.
    #[test]
    fn resolutions_of_the_old_layout_still_read() {
        for r in all() {
            let old = legacy_encode_resolution(&r);
            assert_eq!(old[0], RESOLUTION_VERSION);
            assert_eq!(decode_resolution(&old), Ok(r));
            for cut in 0..old.len() {
                assert!(decode_resolution(&old[..cut]).is_err(), "cut at {cut}");
            }
            let mut longer = old.clone();
            longer.push(0);
            assert!(decode_resolution(&longer).is_err());
        }
    }

    #[test]
    fn truncated_extended_or_unknown_resolutions_are_errors() {
        for r in all() {
            let bytes = encode_resolution(&r).expect("encodes");
            for cut in 0..bytes.len() {
                assert!(decode_resolution(&bytes[..cut]).is_err(), "cut at {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(decode_resolution(&longer).is_err());
        }
        let err = decode_resolution(&[2]).unwrap_err();
        assert!(matches!(err, PersistError::BadMagic { .. }), "{err}");
        let err = decode_resolution(&[1, 7]).unwrap_err();
        assert!(err.to_string().contains("unknown source tag 7"), "{err}");
    }

    #[test]
    fn keys_are_valid_store_names() {
        for r in all() {
            crate::store::check_name(&resolution_key(&r.source)).expect("valid key");
        }
        crate::store::check_name(&node_key(11, 12)).expect("valid key");
        crate::store::check_name(&channel_key(&ChannelId([0xab; 32]))).expect("valid key");
    }
}
