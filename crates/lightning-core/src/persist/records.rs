//! The kinds of stored record: one [`ChannelRecord`] per channel, one [`NodeRecord`] per
//! node (or per shard), and one [`ForwardResolutionRecord`] per forward result in flight
//! between shards, each a postcard payload inside an envelope ([`super::envelope`]).
//!
//! # Versions and migrations
//! A record carries the format version that wrote it and the oldest one able to read it.
//! Reading ([`ChannelRecord::from_bytes`], [`NodeRecord::from_bytes`],
//! [`ForwardResolutionRecord::from_bytes`]):
//! * `min_reader_version` above [`FORMAT_VERSION`]: refused with [`PersistError::TooNew`],
//!   naming both versions;
//! * `version` below the kind's [`RecordKind::introduced_in`]: refused with
//!   [`PersistError::KindNotInVersion`];
//! * `version` below [`FORMAT_VERSION`]: converted by [`migrate`], one version at a time,
//!   then decoded (or refused with [`PersistError::TooOld`] below the oldest we migrate);
//! * `version` above ours with a `min_reader_version` we meet: the writer promises that its
//!   payload starts with our layout (it only appended fields), so we decode the prefix;
//! * `version` equal to ours: decoded exactly; bytes after the value are corruption.
//!
//! Versions:
//! * 1: the first. A channel record was the serde derive of `Channel`.
//! * 2: appends the channel's creation height (the last field of a channel record) and
//!   `NodeConfig::max_pending_inbound_channels` (the last field of the config, itself last
//!   in a node record). [`MIGRATIONS`] converts version 1 by appending `None` and the
//!   default limit.
//! * 3 (issue 13's "format version 2": our 2 was taken by the step above): explicit
//!   records. A channel record holds a [`ChannelStateRecord`] whose `keys` field is a
//!   [`ChannelKeysRecord`]: a new channel's holds its key index, never a secret (its keys
//!   are derived again from the node's seed on restore); a channel migrated from version 1
//!   or 2 holds its stored secrets ([`ChannelKeysRecord::Stored`]) until it closes. The
//!   node record drops the node's configuration (a restart takes it as an argument; the
//!   stored copy was informational and tied `persist` to `node`). The forward resolution
//!   becomes a record kind ([`RecordKind::Resolution`]); the engine's older hand-written
//!   layout is still read ([`ForwardResolutionRecord::from_stored_bytes`]).
//! * 4: adds two kinds, the on-chain monitor's snapshot ([`RecordKind::Monitor`],
//!   [`super::MonitorRecord`]) and update ([`RecordKind::MonitorUpdate`],
//!   [`super::MonitorUpdateRecord`]); see [`super::monitor`]. The kinds of version 3 are
//!   unchanged: the step from 3 is the identity, and they are still written with
//!   `min_reader_version` 3 ([`RecordKind::min_reader_version`]).
//! * 5: appends the ids of recently completed payments with their completion height
//!   ([`NodeRecord::completed_payments`], the last field of a node record) so that a
//!   restart still refuses their reuse. [`MIGRATIONS`] converts version 4 by appending an
//!   empty map. Only appended: node records keep `min_reader_version` 3, and a version-4
//!   build reads them, ignoring the new field. Version 5 also adds a kind,
//!   [`RecordKind::CompletedPayment`] ([`CompletedPaymentRecord`], one per id): rewriting
//!   the whole map in the node record at every payment made each commit grow with the
//!   payments of the window, so the ids moved to records of their own before version 5 was
//!   released, within the same format version. Node records of the first version-5 build
//!   with ids in the field still read: the node merges them and its next commit rewrites
//!   them as records of their own and the field empty. The new kind is written with
//!   `min_reader_version` 5: a version-4 build refuses it ([`PersistError::TooNew`])
//!   rather than misreading it, so a downgrade to version 4 must start from a store
//!   without completed payment records (after the retention window, or with them
//!   deleted: the ids are then no longer refused).
//! * 6: the node's offered HTLCs and forwarded HTLCs (the two ends of every forward in
//!   flight) move out of the node record into records of their own,
//!   [`RecordKind::OfferedHtlc`] ([`OfferedHtlcEntryRecord`]) and [`RecordKind::UpstreamHtlc`]
//!   ([`UpstreamHtlcEntryRecord`]), one per HTLC: a routing node's node record, rewritten
//!   whole by every commit, grew with every payment in flight. No payload changes (the step
//!   from 5 is the identity): a version-6 node record holds [`NodeRecord::offered`] and
//!   [`NodeRecord::upstream`] empty, and one of version 5 with entries there still reads
//!   (the node writes them as records of their own in its first commit). Node records are
//!   now written with `min_reader_version` 6: a version-5 build would read the empty maps as
//!   no HTLC in flight, so it refuses them ([`PersistError::TooNew`]).
//!
//! A unit test proves the hook with a made-up version 0.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::PublicKey;
use bitcoin::{BlockHash, Transaction, Txid};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::channel::{ChannelKeysRecord, ChannelStateRecord, StoredChannelKeys};
use super::envelope::{
    self, LegacyResolutionError, PersistError, RecordKind, FORMAT_VERSION, OLDEST_READABLE_VERSION,
};
use crate::payment::{HtlcSource, PaymentId, Route};
use crate::ser::Reader;
use crate::types::{ChannelId, PaymentHash, PaymentPreimage, PaymentSecret};

/// Everything needed to resume one channel: the state machine's record and what its node
/// keeps beside it. Made by `NodeCore::snapshot_channel` after the channel's outputs were
/// drained (the outbox and events are transient and never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRecord {
    /// The peer.
    pub node_id: PublicKey,
    /// The application's id for the channel.
    pub user_channel_id: u128,
    /// As funder: the funding transaction, until it is broadcast (stored in its consensus
    /// encoding).
    #[serde(with = "consensus_tx")]
    pub funding_tx: Option<Transaction>,
    /// The BOLT 2 state machine (`Channel::to_record`, `Channel::from_record`).
    pub channel: ChannelStateRecord,
}

/// A channel record of format versions 1 and 2: the same layout with the secrets stored.
#[derive(Deserialize)]
struct ChannelRecordV2 {
    node_id: PublicKey,
    user_channel_id: u128,
    #[serde(with = "consensus_tx")]
    funding_tx: Option<Transaction>,
    channel: ChannelStateRecord<StoredChannelKeys>,
}

/// A payment to us we are ready to receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundPaymentRecord {
    /// The secret the payer must send.
    pub payment_secret: PaymentSecret,
    /// The amount asked for, if any.
    pub amount_msat: Option<u64>,
}

/// An HTLC paying us, committed and waiting for a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimableHtlcRecord {
    /// The peer that offered it.
    pub node_id: PublicKey,
    /// Its channel.
    pub channel_id: ChannelId,
    /// Its id (the peer's numbering).
    pub htlc_id: u64,
    /// Its amount.
    pub amount_msat: u64,
    /// Its expiry.
    pub cltv_expiry: u32,
    /// The onion shared secret with the payer, to fail it back.
    pub shared_secret: [u8; 32],
}

/// One of our payments in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundPaymentRecord {
    /// Its payment hash.
    pub payment_hash: PaymentHash,
    /// Its route (the first hop's `node_id` is the peer that owns it).
    pub route: Route,
    /// The onion shared secret with each hop, to read a returned failure.
    pub shared_secrets: Vec<[u8; 32]>,
}

/// An HTLC we offered on one of our channels (a forward's downstream end, or a payment's
/// first hop), keyed in [`NodeRecord::offered`] by `(channel id, htlc id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferedHtlcRecord {
    /// The peer of the outgoing channel.
    pub node_id: PublicKey,
    /// Where it came from.
    pub source: HtlcSource,
    /// Its amount.
    pub amount_msat: u64,
    /// The incoming amount (or the amount sent, for a payment).
    pub incoming_amount_msat: u64,
    /// Its expiry.
    pub cltv_expiry: u32,
}

/// A forward's upstream end: an HTLC a peer offered us that we forwarded, keyed in
/// [`NodeRecord::upstream`] by `(incoming channel id, htlc id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamHtlcRecord {
    /// The peer of the incoming channel.
    pub node_id: PublicKey,
    /// The onion shared secret with the payer, to wrap a failure coming back.
    pub shared_secret: [u8; 32],
}

/// An HTLC of a force-closed channel waiting for its HTLC-timeout transaction to confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTimeoutRecord {
    /// The closed channel.
    pub channel_id: ChannelId,
    /// The HTLC (its `node_id` is the closed channel's peer).
    pub offered: OfferedHtlcRecord,
}

/// A node's (or a shard's) state outside its channels. Channels live in their own
/// [`ChannelRecord`]s; indexes (`scid_to_channel`, the peers) are rebuilt from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The best block height.
    pub best_height: u32,
    /// The best block hash.
    pub best_hash: BlockHash,
    /// How many random values were drawn for each peer (so draws never repeat).
    pub peer_random_draws: BTreeMap<PublicKey, u64>,
    /// The payments to us we expect, by hash. Not owned by a peer: every shard keeps them.
    pub inbound_payments: BTreeMap<PaymentHash, InboundPaymentRecord>,
    /// HTLCs paying us, waiting for a claim, by payment hash.
    pub claimable: BTreeMap<PaymentHash, Vec<ClaimableHtlcRecord>>,
    /// Our payments in flight.
    pub payments: BTreeMap<PaymentId, OutboundPaymentRecord>,
    /// HTLCs we offered, by `(outgoing channel id, htlc id)`: the downstream ends.
    pub offered: BTreeMap<(ChannelId, u64), OfferedHtlcRecord>,
    /// HTLCs we forwarded, by `(incoming channel id, htlc id)`: the upstream ends.
    pub upstream: BTreeMap<(ChannelId, u64), UpstreamHtlcRecord>,
    /// HTLC-timeout transactions we wait for, by txid.
    pub pending_timeouts: BTreeMap<Txid, Vec<PendingTimeoutRecord>>,
    /// Ids of our payments that completed, with the best block height then, as the first
    /// build of format version 5 stored them (appended to the node record). Read, merged
    /// and rewritten as [`CompletedPaymentRecord`]s by the next commit; this build writes
    /// the field empty (a record per id costs each commit the ids it changed, not all of
    /// them).
    pub completed_payments: BTreeMap<PaymentId, u32>,
}

/// The id of one of our payments that completed, with the best block height then: refused
/// for `NodeConfig::payment_id_retention_blocks` after it, across restarts. One record per
/// id ([`RecordKind::CompletedPayment`], format version 5 on), written by the commit of the
/// batch that completed the payment and deleted by the one that forgot it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CompletedPaymentRecord {
    /// The payment's id.
    pub payment_id: PaymentId,
    /// The best block height when it completed.
    pub completed_height: u32,
}

/// One HTLC we offered, a record of its own ([`RecordKind::OfferedHtlc`], format version 6
/// on): written by the commit of the batch that offered it, deleted by the one that resolved
/// it. Before version 6 these were [`NodeRecord::offered`], rewritten whole by every commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferedHtlcEntryRecord {
    /// The outgoing channel.
    pub channel_id: ChannelId,
    /// The HTLC's id in that channel.
    pub htlc_id: u64,
    /// The HTLC.
    pub offered: OfferedHtlcRecord,
}

/// One HTLC we forwarded (its upstream end), a record of its own
/// ([`RecordKind::UpstreamHtlc`], format version 6 on): written by the commit of the batch
/// that forwarded it, deleted by the one that answered it. Before version 6 these were
/// [`NodeRecord::upstream`], rewritten whole by every commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamHtlcEntryRecord {
    /// The incoming channel.
    pub channel_id: ChannelId,
    /// The HTLC's id in that channel.
    pub htlc_id: u64,
    /// The upstream end.
    pub upstream: UpstreamHtlcRecord,
}

/// A node record of format versions 1 and 2 up to (not including) its configuration, the
/// last field, which version 3 no longer stores: the whole node record of versions 3 and 4.
#[derive(Serialize, Deserialize)]
struct NodeRecordV2Head {
    best_height: u32,
    best_hash: BlockHash,
    peer_random_draws: BTreeMap<PublicKey, u64>,
    inbound_payments: BTreeMap<PaymentHash, InboundPaymentRecord>,
    claimable: BTreeMap<PaymentHash, Vec<ClaimableHtlcRecord>>,
    payments: BTreeMap<PaymentId, OutboundPaymentRecord>,
    offered: BTreeMap<(ChannelId, u64), OfferedHtlcRecord>,
    upstream: BTreeMap<(ChannelId, u64), UpstreamHtlcRecord>,
    pending_timeouts: BTreeMap<Txid, Vec<PendingTimeoutRecord>>,
}

/// How a forwarded HTLC ended downstream (`ForwardOutcome`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardOutcomeRecord {
    /// Fulfilled: the preimage.
    Fulfilled(PaymentPreimage),
    /// Failed downstream: the encrypted reason to wrap and pass on.
    FailedDownstream(Vec<u8>),
    /// The next peer could not parse the onion.
    Malformed {
        /// The BADONION code.
        failure_code: u16,
        /// SHA256 of the onion the next peer received.
        sha256_of_onion: [u8; 32],
    },
    /// Failed at this node before leaving: the BOLT 4 failure message, encoded
    /// (`onion::Failure::encode`; empty if it could not be, read as
    /// `temporary_node_failure`).
    FailedHere(Vec<u8>),
}

/// A forward's result handed to the shard that owns its source, stored until that shard
/// applied it (`ForwardResolution`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardResolutionRecord {
    /// The HTLC it resolves.
    pub source: HtlcSource,
    /// The outgoing channel, when the HTLC got that far.
    pub next_channel_id: Option<ChannelId>,
    /// How it ended.
    pub outcome: ForwardOutcomeRecord,
}

impl NodeRecord {
    /// Keeps only the state owned by the peers `owns` accepts: for a shard of a node
    /// restarted with another shard count. A payment belongs to the peer of its first hop,
    /// a forward's upstream end to the incoming channel's peer and its downstream end to the
    /// outgoing channel's peer, a claimable HTLC to the peer that offered it. The inbound
    /// payment registry and the best block are kept whole (every shard needs them).
    pub fn retain_peers(&mut self, mut owns: impl FnMut(&PublicKey) -> bool) {
        self.peer_random_draws.retain(|node_id, _| owns(node_id));
        for htlcs in self.claimable.values_mut() {
            htlcs.retain(|h| owns(&h.node_id));
        }
        self.claimable.retain(|_, htlcs| !htlcs.is_empty());
        self.payments
            .retain(|_, p| p.route.hops.first().is_some_and(|hop| owns(&hop.node_id)));
        self.offered.retain(|_, o| owns(&o.node_id));
        self.upstream.retain(|_, u| owns(&u.node_id));
        for pending in self.pending_timeouts.values_mut() {
            pending.retain(|p| owns(&p.offered.node_id));
        }
        self.pending_timeouts
            .retain(|_, pending| !pending.is_empty());
    }

    /// Combines the node records of several shards into one (to redistribute them with
    /// [`NodeRecord::retain_peers`]): the LOWEST best block (height and that record's
    /// hash), the union of everything else. `None` when `records` is empty.
    ///
    /// Records at the lowest height that disagree on its hash: one of them is on a branch
    /// the others disconnected, and which one cannot be told. The merged hash is then all
    /// zeros, a block no chain has: a host, not finding it on its chain, disconnects from
    /// that height and re-feeds the blocks of its chain from there.
    ///
    /// Why the lowest: each shard commits its own record after each block, so after a crash
    /// one shard may hold a block another never processed. Every shard has processed every
    /// block up to the lowest height, and no block above it is known to all of them: a host
    /// resuming from the merged best block re-feeds the blocks above it, so a shard that
    /// missed one (a spend of one of its channels' funding outputs, say) sees it. Shards that
    /// had already processed a re-fed block take it again harmlessly (`NodeCore`'s block
    /// calls are idempotent).
    pub fn merge(records: impl IntoIterator<Item = NodeRecord>) -> Option<NodeRecord> {
        let mut records = records.into_iter();
        let mut out = records.next()?;
        // Whether records at `out.best_height` disagree on its hash.
        let mut forked = false;
        for r in records {
            if r.best_height < out.best_height {
                out.best_height = r.best_height;
                out.best_hash = r.best_hash;
                forked = false;
            } else if r.best_height == out.best_height && r.best_hash != out.best_hash {
                forked = true;
            }
            for (k, v) in r.peer_random_draws {
                let e = out.peer_random_draws.entry(k).or_insert(0);
                *e = (*e).max(v);
            }
            out.inbound_payments.extend(r.inbound_payments);
            for (hash, htlcs) in r.claimable {
                let entry = out.claimable.entry(hash).or_default();
                for h in htlcs {
                    if !entry
                        .iter()
                        .any(|e| e.channel_id == h.channel_id && e.htlc_id == h.htlc_id)
                    {
                        entry.push(h);
                    }
                }
            }
            out.payments.extend(r.payments);
            for (id, height) in r.completed_payments {
                let e = out.completed_payments.entry(id).or_insert(height);
                *e = (*e).max(height);
            }
            out.offered.extend(r.offered);
            out.upstream.extend(r.upstream);
            for (txid, pending) in r.pending_timeouts {
                let entry = out.pending_timeouts.entry(txid).or_default();
                for p in pending {
                    if !entry.contains(&p) {
                        entry.push(p);
                    }
                }
            }
        }
        if forked {
            out.best_hash = BlockHash::all_zeros();
        }
        Some(out)
    }
}

/// One migration step: converts a payload of one format version to the next.
pub type MigrationStep = fn(RecordKind, &[u8]) -> Result<Vec<u8>, PersistError>;

/// The migration steps of this build: `MIGRATIONS[i]` converts a payload of format version
/// `OLDEST_READABLE_VERSION + i` to the next version. A step only sees kinds that existed at
/// its version (see [`RecordKind::introduced_in`]).
pub const MIGRATIONS: &[MigrationStep] = &[v1_to_v2, v2_to_v3, v3_to_v4, v4_to_v5, v5_to_v6];

/// `NodeConfig::max_pending_inbound_channels`'s default when format version 2 appended it
/// (`node::DEFAULT_MAX_PENDING_INBOUND_CHANNELS`), frozen here: version 3 drops the config.
const V2_DEFAULT_MAX_PENDING_INBOUND_CHANNELS: usize = 64;

fn encode_err(kind: RecordKind) -> impl Fn(postcard::Error) -> PersistError {
    move |error| PersistError::Encode { kind, error }
}

fn decode_err(kind: RecordKind, version: u16) -> impl Fn(postcard::Error) -> PersistError {
    move |error| PersistError::Decode {
        kind,
        version,
        error,
    }
}

/// The step's answer for a kind that did not exist at version `version`: unreachable
/// through [`migrate`], which refuses such records first.
fn not_in_version(kind: RecordKind, version: u16) -> PersistError {
    PersistError::KindNotInVersion {
        kind,
        version,
        introduced_in: kind.introduced_in(),
    }
}

/// Version 1 to 2: both kinds gained one field at the very end of their payload (see the
/// module documentation), so the step appends its value: no creation height for a channel
/// (counted from the restart), the default limit for the node's config.
fn v1_to_v2(kind: RecordKind, payload: &[u8]) -> Result<Vec<u8>, PersistError> {
    let appended = match kind {
        RecordKind::Channel => postcard::to_allocvec(&Option::<u32>::None),
        RecordKind::Node => postcard::to_allocvec(&V2_DEFAULT_MAX_PENDING_INBOUND_CHANNELS),
        RecordKind::Resolution
        | RecordKind::Monitor
        | RecordKind::MonitorUpdate
        | RecordKind::MonitorRevoked
        | RecordKind::CompletedPayment
        | RecordKind::OfferedHtlc
        | RecordKind::UpstreamHtlc => return Err(not_in_version(kind, 1)),
    }
    .map_err(encode_err(kind))?;
    Ok([payload, &appended].concat())
}

/// Version 2 to 3: a channel's stored secrets move into [`ChannelKeysRecord::Stored`]; a
/// node record loses its configuration (its last field).
fn v2_to_v3(kind: RecordKind, payload: &[u8]) -> Result<Vec<u8>, PersistError> {
    match kind {
        RecordKind::Channel => {
            let old: ChannelRecordV2 =
                postcard::from_bytes(payload).map_err(decode_err(kind, 2))?;
            let new = ChannelRecord {
                node_id: old.node_id,
                user_channel_id: old.user_channel_id,
                funding_tx: old.funding_tx,
                channel: old.channel.into_v3(),
            };
            postcard::to_allocvec(&new).map_err(encode_err(kind))
        }
        RecordKind::Node => {
            // The configuration after the head is dropped unread.
            let (old, _config) = postcard::take_from_bytes::<NodeRecordV2Head>(payload)
                .map_err(decode_err(kind, 2))?;
            // The head is version 3's whole node record.
            postcard::to_allocvec(&old).map_err(encode_err(kind))
        }
        RecordKind::Resolution
        | RecordKind::Monitor
        | RecordKind::MonitorUpdate
        | RecordKind::MonitorRevoked
        | RecordKind::CompletedPayment
        | RecordKind::OfferedHtlc
        | RecordKind::UpstreamHtlc => Err(not_in_version(kind, 2)),
    }
}

/// Version 3 to 4: version 4 only added kinds; the kinds of version 3 are unchanged.
fn v3_to_v4(kind: RecordKind, payload: &[u8]) -> Result<Vec<u8>, PersistError> {
    match kind {
        RecordKind::Channel | RecordKind::Node | RecordKind::Resolution => Ok(payload.to_vec()),
        RecordKind::Monitor
        | RecordKind::MonitorUpdate
        | RecordKind::MonitorRevoked
        | RecordKind::CompletedPayment
        | RecordKind::OfferedHtlc
        | RecordKind::UpstreamHtlc => Err(not_in_version(kind, 3)),
    }
}

/// Version 4 to 5: a node record gained one field at its very end (the completed payment
/// ids), so the step appends an empty map; the other kinds are unchanged.
fn v4_to_v5(kind: RecordKind, payload: &[u8]) -> Result<Vec<u8>, PersistError> {
    match kind {
        RecordKind::Node => {
            let appended = postcard::to_allocvec(&BTreeMap::<PaymentId, u32>::new())
                .map_err(encode_err(kind))?;
            Ok([payload, &appended].concat())
        }
        RecordKind::Channel
        | RecordKind::Resolution
        | RecordKind::Monitor
        | RecordKind::MonitorUpdate
        | RecordKind::MonitorRevoked => Ok(payload.to_vec()),
        RecordKind::CompletedPayment | RecordKind::OfferedHtlc | RecordKind::UpstreamHtlc => {
            Err(not_in_version(kind, 4))
        }
    }
}

/// Version 5 to 6: version 6 moved the node record's offered and forwarded HTLCs into
/// records of their own, leaving the node record's layout as it was (a version-6 node
/// record holds those two maps empty); no payload changes.
fn v5_to_v6(kind: RecordKind, payload: &[u8]) -> Result<Vec<u8>, PersistError> {
    match kind {
        RecordKind::Channel
        | RecordKind::Node
        | RecordKind::Resolution
        | RecordKind::Monitor
        | RecordKind::MonitorUpdate
        | RecordKind::MonitorRevoked
        | RecordKind::CompletedPayment => Ok(payload.to_vec()),
        RecordKind::OfferedHtlc | RecordKind::UpstreamHtlc => Err(not_in_version(kind, 5)),
    }
}

/// Converts a `kind` payload written by format `version` to [`FORMAT_VERSION`] with
/// [`MIGRATIONS`]. A payload of this version or newer is returned as it is.
pub fn migrate(
    kind: RecordKind,
    version: u16,
    payload: &[u8],
) -> Result<Cow<'_, [u8]>, PersistError> {
    migrate_with(MIGRATIONS, OLDEST_READABLE_VERSION, kind, version, payload)
}

/// [`migrate`] with the given steps, `steps[i]` converting version `oldest + i`.
fn migrate_with<'a>(
    steps: &[MigrationStep],
    oldest: u16,
    kind: RecordKind,
    version: u16,
    payload: &'a [u8],
) -> Result<Cow<'a, [u8]>, PersistError> {
    if version >= FORMAT_VERSION {
        return Ok(Cow::Borrowed(payload));
    }
    let too_old = PersistError::TooOld {
        written_by_version: version,
        oldest_readable_version: oldest,
    };
    if version < oldest {
        return Err(too_old);
    }
    // A kind of the first readable format has no lower bound of its own.
    if version < kind.introduced_in() && kind.introduced_in() > OLDEST_READABLE_VERSION {
        return Err(not_in_version(kind, version));
    }
    let mut current = payload.to_vec();
    for v in version..FORMAT_VERSION {
        let step = steps
            .get(usize::from(v - oldest))
            .ok_or_else(|| too_old.clone())?;
        current = step(kind, &current)?;
    }
    Ok(Cow::Owned(current))
}

/// Encodes `value` as a `kind` record of this format version.
pub(super) fn to_record<T: Serialize>(
    kind: RecordKind,
    value: &T,
) -> Result<Vec<u8>, PersistError> {
    let payload = postcard::to_allocvec(value).map_err(encode_err(kind))?;
    envelope::encode(kind, &payload)
}

/// Decodes a `kind` record, migrating it with `steps` (see the module documentation).
pub(super) fn from_record<T: DeserializeOwned>(
    bytes: &[u8],
    kind: RecordKind,
    steps: &[MigrationStep],
    oldest: u16,
) -> Result<T, PersistError> {
    let env = envelope::decode(bytes)?;
    if env.kind != kind {
        return Err(PersistError::WrongKind {
            expected: kind,
            found: env.kind,
        });
    }
    let payload = migrate_with(steps, oldest, kind, env.version, env.payload)?;
    // After migration the payload starts with this version's layout.
    let (value, rest) =
        postcard::take_from_bytes::<T>(&payload).map_err(decode_err(kind, FORMAT_VERSION))?;
    if !rest.is_empty() && env.version <= FORMAT_VERSION {
        return Err(PersistError::PayloadTrailing {
            kind,
            version: env.version,
            left: rest.len(),
        });
    }
    Ok(value)
}

impl ChannelRecord {
    /// The channel id.
    pub fn channel_id(&self) -> ChannelId {
        self.channel.channel_id
    }

    /// Whether the record holds secret keys ([`ChannelKeysRecord::Stored`]): a channel from
    /// a record of format version 1 or 2, or of the forced-keys test mode.
    pub fn holds_secrets(&self) -> bool {
        matches!(self.channel.keys, ChannelKeysRecord::Stored(_))
    }

    /// The record's stored bytes (envelope and payload).
    pub fn to_bytes(&self) -> Result<Vec<u8>, PersistError> {
        to_record(RecordKind::Channel, self)
    }

    /// Reads a record written by [`ChannelRecord::to_bytes`] of this or an older version.
    /// Never panics: anything else is a [`PersistError`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PersistError> {
        from_record(
            bytes,
            RecordKind::Channel,
            MIGRATIONS,
            OLDEST_READABLE_VERSION,
        )
    }
}

impl NodeRecord {
    /// The record's stored bytes (envelope and payload).
    pub fn to_bytes(&self) -> Result<Vec<u8>, PersistError> {
        to_record(RecordKind::Node, self)
    }

    /// Reads a record written by [`NodeRecord::to_bytes`] of this or an older version.
    /// Never panics: anything else is a [`PersistError`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PersistError> {
        from_record(bytes, RecordKind::Node, MIGRATIONS, OLDEST_READABLE_VERSION)
    }
}

impl CompletedPaymentRecord {
    /// The record's stored bytes (envelope and payload).
    pub fn to_bytes(&self) -> Result<Vec<u8>, PersistError> {
        to_record(RecordKind::CompletedPayment, self)
    }

    /// Reads a record written by [`CompletedPaymentRecord::to_bytes`]. Never panics:
    /// anything else is a [`PersistError`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PersistError> {
        from_record(
            bytes,
            RecordKind::CompletedPayment,
            MIGRATIONS,
            OLDEST_READABLE_VERSION,
        )
    }
}

impl OfferedHtlcEntryRecord {
    /// The record's stored bytes (envelope and payload).
    pub fn to_bytes(&self) -> Result<Vec<u8>, PersistError> {
        to_record(RecordKind::OfferedHtlc, self)
    }

    /// Reads a record written by [`OfferedHtlcEntryRecord::to_bytes`]. Never panics:
    /// anything else is a [`PersistError`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PersistError> {
        from_record(
            bytes,
            RecordKind::OfferedHtlc,
            MIGRATIONS,
            OLDEST_READABLE_VERSION,
        )
    }
}

impl UpstreamHtlcEntryRecord {
    /// The record's stored bytes (envelope and payload).
    pub fn to_bytes(&self) -> Result<Vec<u8>, PersistError> {
        to_record(RecordKind::UpstreamHtlc, self)
    }

    /// Reads a record written by [`UpstreamHtlcEntryRecord::to_bytes`]. Never panics:
    /// anything else is a [`PersistError`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PersistError> {
        from_record(
            bytes,
            RecordKind::UpstreamHtlc,
            MIGRATIONS,
            OLDEST_READABLE_VERSION,
        )
    }
}

/// The version byte that opens a resolution in the engine's hand-written layout (before
/// format version 3 moved resolutions into the envelope). It can never open an envelope,
/// which starts with [`MAGIC`](super::envelope::MAGIC).
pub const LEGACY_RESOLUTION_VERSION: u8 = 1;

impl ForwardResolutionRecord {
    /// The record's stored bytes (envelope and payload).
    pub fn to_bytes(&self) -> Result<Vec<u8>, PersistError> {
        to_record(RecordKind::Resolution, self)
    }

    /// Reads a record written by [`ForwardResolutionRecord::to_bytes`]. Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PersistError> {
        from_record(
            bytes,
            RecordKind::Resolution,
            MIGRATIONS,
            OLDEST_READABLE_VERSION,
        )
    }

    /// Reads a stored resolution in either layout: an envelope (it opens with
    /// [`MAGIC`](super::envelope::MAGIC)),
    /// or the engine's hand-written layout of before format version 3 (it opens with
    /// [`LEGACY_RESOLUTION_VERSION`]; see [`ForwardResolutionRecord::from_legacy_bytes`]).
    pub fn from_stored_bytes(bytes: &[u8]) -> Result<Self, PersistError> {
        match bytes.first() {
            Some(&LEGACY_RESOLUTION_VERSION) => Self::from_legacy_bytes(bytes),
            _ => Self::from_bytes(bytes),
        }
    }

    /// Reads the engine's hand-written layout of before format version 3: version byte 1;
    /// source tag (0: payment id (32); 1: channel id (32), htlc id (u64)); next channel tag
    /// (0, or 1 and a channel id); outcome tag (0: preimage; 1: u32 length and reason;
    /// 2: u16 code and 32-byte onion hash; 3: u32 length and encoded failure), big-endian.
    /// Its integrity was the store's checksum. Never panics.
    pub fn from_legacy_bytes(value: &[u8]) -> Result<Self, PersistError> {
        let mut r = Reader::new(value);
        let version = r
            .read_u8("version")
            .map_err(|e| PersistError::LegacyResolution {
                version: 0,
                error: LegacyResolutionError::Field(e),
            })?;
        let fail = |error| PersistError::LegacyResolution { version, error };
        let e = |e| fail(LegacyResolutionError::Field(e));
        let tag = |field, tag| fail(LegacyResolutionError::UnknownTag { field, tag });
        if version != LEGACY_RESOLUTION_VERSION {
            return Err(tag("version", version));
        }
        let source = match r.read_u8("source").map_err(e)? {
            0 => HtlcSource::Local(PaymentId(r.read_array::<32>("payment_id").map_err(e)?)),
            1 => HtlcSource::Forwarded {
                channel_id: ChannelId(r.read_array::<32>("channel_id").map_err(e)?),
                htlc_id: r.read_u64("htlc_id").map_err(e)?,
            },
            t => return Err(tag("source", t)),
        };
        let next_channel_id = match r.read_u8("next_channel").map_err(e)? {
            0 => None,
            1 => Some(ChannelId(r.read_array::<32>("next_channel_id").map_err(e)?)),
            t => return Err(tag("next channel", t)),
        };
        let outcome = match r.read_u8("outcome").map_err(e)? {
            0 => ForwardOutcomeRecord::Fulfilled(PaymentPreimage(
                r.read_array::<32>("preimage").map_err(e)?,
            )),
            1 => {
                let len = r.read_u32("reason_len").map_err(e)?;
                ForwardOutcomeRecord::FailedDownstream(
                    r.read_bytes(len.into(), "reason").map_err(e)?.to_vec(),
                )
            }
            2 => ForwardOutcomeRecord::Malformed {
                failure_code: r.read_u16("failure_code").map_err(e)?,
                sha256_of_onion: r.read_array::<32>("sha256_of_onion").map_err(e)?,
            },
            3 => {
                let len = r.read_u32("failure_len").map_err(e)?;
                ForwardOutcomeRecord::FailedHere(
                    r.read_bytes(len.into(), "failure").map_err(e)?.to_vec(),
                )
            }
            t => return Err(tag("outcome", t)),
        };
        r.finish("resolution").map_err(e)?;
        Ok(ForwardResolutionRecord {
            source,
            next_channel_id,
            outcome,
        })
    }
}

/// `Option<Transaction>` stored as its consensus encoding.
mod consensus_tx {
    use bitcoin::consensus::encode;
    use bitcoin::Transaction;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        tx: &Option<Transaction>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match tx {
            Some(tx) => s.serialize_some(&serde_bytes_of(tx)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Transaction>, D::Error> {
        let bytes: Option<Vec<u8>> = Option::deserialize(d)?;
        bytes
            .map(|b| {
                encode::deserialize(&b)
                    .map_err(|e| D::Error::custom(format!("funding transaction: {e}")))
            })
            .transpose()
    }

    fn serde_bytes_of(tx: &Transaction) -> Vec<u8> {
        encode::serialize(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payment::RouteHop;
    use crate::types::ShortChannelId;
    use bitcoin::hashes::Hash;
    use bitcoin::secp256k1::SecretKey;

    fn pk(i: u8) -> PublicKey {
        PublicKey::from_secret_key(
            &crate::secp::ctx(),
            &SecretKey::from_slice(&[i; 32]).expect("valid"),
        )
    }

    pub(super) fn sample_node_record() -> NodeRecord {
        let offered = |node: u8, source| OfferedHtlcRecord {
            node_id: pk(node),
            source,
            amount_msat: 1000,
            incoming_amount_msat: 1100,
            cltv_expiry: 500,
        };
        NodeRecord {
            best_height: 100,
            best_hash: BlockHash::from_byte_array([1; 32]),
            peer_random_draws: [(pk(1), 3), (pk(2), 5)].into_iter().collect(),
            inbound_payments: [(
                PaymentHash([4; 32]),
                InboundPaymentRecord {
                    payment_secret: PaymentSecret([5; 32]),
                    amount_msat: Some(7),
                },
            )]
            .into_iter()
            .collect(),
            claimable: [(
                PaymentHash([6; 32]),
                vec![ClaimableHtlcRecord {
                    node_id: pk(1),
                    channel_id: ChannelId([1; 32]),
                    htlc_id: 0,
                    amount_msat: 5000,
                    cltv_expiry: 400,
                    shared_secret: [8; 32],
                }],
            )]
            .into_iter()
            .collect(),
            payments: [(
                PaymentId([9; 32]),
                OutboundPaymentRecord {
                    payment_hash: PaymentHash([10; 32]),
                    route: Route {
                        hops: vec![RouteHop {
                            node_id: pk(2),
                            short_channel_id: ShortChannelId(42),
                            fee_msat: 1000,
                            cltv_expiry_delta: 40,
                        }],
                    },
                    shared_secrets: vec![[11; 32]],
                },
            )]
            .into_iter()
            .collect(),
            offered: [
                (
                    (ChannelId([2; 32]), 0),
                    offered(2, HtlcSource::Local(PaymentId([9; 32]))),
                ),
                (
                    (ChannelId([2; 32]), 1),
                    offered(
                        2,
                        HtlcSource::Forwarded {
                            channel_id: ChannelId([1; 32]),
                            htlc_id: 1,
                        },
                    ),
                ),
            ]
            .into_iter()
            .collect(),
            upstream: [(
                (ChannelId([1; 32]), 1),
                UpstreamHtlcRecord {
                    node_id: pk(1),
                    shared_secret: [12; 32],
                },
            )]
            .into_iter()
            .collect(),
            pending_timeouts: [(
                Txid::from_byte_array([13; 32]),
                vec![PendingTimeoutRecord {
                    channel_id: ChannelId([3; 32]),
                    offered: offered(3, HtlcSource::Local(PaymentId([14; 32]))),
                }],
            )]
            .into_iter()
            .collect(),
            completed_payments: [(PaymentId([12; 32]), 90)].into_iter().collect(),
        }
    }

    #[test]
    fn node_record_round_trips() {
        let r = sample_node_record();
        let bytes = r.to_bytes().expect("encodes");
        assert_eq!(NodeRecord::from_bytes(&bytes), Ok(r));
    }

    #[test]
    fn a_node_record_is_not_read_as_a_channel_record() {
        let bytes = sample_node_record().to_bytes().expect("encodes");
        assert_eq!(
            ChannelRecord::from_bytes(&bytes),
            Err(PersistError::WrongKind {
                expected: RecordKind::Channel,
                found: RecordKind::Node
            })
        );
    }

    #[test]
    fn retain_peers_splits_a_forward_between_its_two_peers() {
        let r = sample_node_record();
        let mut only1 = r.clone();
        only1.retain_peers(|p| *p == pk(1));
        assert_eq!(only1.claimable.len(), 1);
        assert_eq!(
            only1.upstream.len(),
            1,
            "the forward's upstream end is peer 1's"
        );
        assert!(only1.offered.is_empty(), "its downstream end is peer 2's");
        assert!(only1.payments.is_empty());
        assert!(only1.pending_timeouts.is_empty());
        assert_eq!(only1.inbound_payments.len(), 1, "kept whole");
        let mut only2 = r.clone();
        only2.retain_peers(|p| *p == pk(2));
        assert!(only2.upstream.is_empty());
        assert_eq!(only2.offered.len(), 2);
        assert_eq!(only2.payments.len(), 1);
        assert!(only2.claimable.is_empty());
        let mut only3 = r.clone();
        only3.retain_peers(|p| *p == pk(3));
        assert_eq!(only3.pending_timeouts.len(), 1);
        // Splitting and merging gives the original back.
        let merged = NodeRecord::merge([only1, only2, only3]).expect("three records");
        assert_eq!(merged, r);
    }

    /// Shards' records after a crash may hold different best blocks (each shard commits its
    /// own after each block): the merge keeps the lowest, with its own hash, whatever the
    /// order, so a host re-feeds every block some shard may have missed.
    #[test]
    fn merge_keeps_the_lowest_best_block_with_its_hash() {
        let at = |height: u32, hash: u8| {
            let mut r = sample_node_record();
            r.best_height = height;
            r.best_hash = BlockHash::from_byte_array([hash; 32]);
            r
        };
        let lowest = (101, BlockHash::from_byte_array([0xb1; 32]));
        for order in [
            vec![at(102, 0xb2), at(101, 0xb1), at(103, 0xb3)],
            vec![at(101, 0xb1), at(103, 0xb3), at(102, 0xb2)],
            vec![at(103, 0xb3), at(102, 0xb2), at(101, 0xb1)],
        ] {
            let merged = NodeRecord::merge(order).expect("three records");
            assert_eq!((merged.best_height, merged.best_hash), lowest);
        }
        // A tie on the same block keeps it.
        let merged = NodeRecord::merge([at(101, 0xb1), at(101, 0xb1), at(102, 0xb2)]);
        let merged = merged.expect("three");
        assert_eq!((merged.best_height, merged.best_hash), lowest);
    }

    /// Two shards' records at the same lowest height with different hashes: one is on a
    /// branch the other disconnected, and the merge cannot tell which. It reports the
    /// all-zero hash (no chain has it), whatever the order, so the host disconnects from
    /// that height and re-feeds its chain; a lower record elsewhere still wins whole.
    #[test]
    fn merge_reports_no_hash_when_the_lowest_height_forks() {
        let at = |height: u32, hash: u8| {
            let mut r = sample_node_record();
            r.best_height = height;
            r.best_hash = BlockHash::from_byte_array([hash; 32]);
            r
        };
        let forked = (101, BlockHash::all_zeros());
        for order in [
            vec![at(101, 0xb1), at(101, 0xc1)],
            vec![at(101, 0xc1), at(101, 0xb1)],
            vec![at(102, 0xb2), at(101, 0xb1), at(101, 0xc1)],
            vec![at(101, 0xb1), at(102, 0xb2), at(101, 0xc1), at(101, 0xb1)],
        ] {
            let merged = NodeRecord::merge(order).expect("records");
            assert_eq!((merged.best_height, merged.best_hash), forked);
        }
        // A fork above the lowest height does not matter: the lowest block is known.
        for order in [
            vec![at(102, 0xb2), at(102, 0xc2), at(101, 0xb1)],
            vec![at(101, 0xb1), at(102, 0xb2), at(102, 0xc2)],
        ] {
            let merged = NodeRecord::merge(order).expect("records");
            let lowest = (101, BlockHash::from_byte_array([0xb1; 32]));
            assert_eq!((merged.best_height, merged.best_hash), lowest);
        }
    }

    /// A made-up format version 0 of the node record: no `peer_random_draws`, and the best
    /// block as a hash first. Only the test knows it.
    #[derive(Serialize, Deserialize)]
    struct NodeRecordV0 {
        best_hash: BlockHash,
        best_height: u32,
        inbound_payments: BTreeMap<PaymentHash, InboundPaymentRecord>,
        claimable: BTreeMap<PaymentHash, Vec<ClaimableHtlcRecord>>,
        payments: BTreeMap<PaymentId, OutboundPaymentRecord>,
        offered: BTreeMap<(ChannelId, u64), OfferedHtlcRecord>,
        upstream: BTreeMap<(ChannelId, u64), UpstreamHtlcRecord>,
        pending_timeouts: BTreeMap<Txid, Vec<PendingTimeoutRecord>>,
    }

    /// Version 1's node layout: the head of version 2, then a configuration (which version
    /// 3 drops unread, so any bytes do here).
    #[derive(Serialize)]
    struct NodeRecordV1<'a> {
        best_height: u32,
        best_hash: BlockHash,
        peer_random_draws: BTreeMap<PublicKey, u64>,
        inbound_payments: &'a BTreeMap<PaymentHash, InboundPaymentRecord>,
        claimable: &'a BTreeMap<PaymentHash, Vec<ClaimableHtlcRecord>>,
        payments: &'a BTreeMap<PaymentId, OutboundPaymentRecord>,
        offered: &'a BTreeMap<(ChannelId, u64), OfferedHtlcRecord>,
        upstream: &'a BTreeMap<(ChannelId, u64), UpstreamHtlcRecord>,
        pending_timeouts: &'a BTreeMap<Txid, Vec<PendingTimeoutRecord>>,
        config: [u8; 3],
    }

    fn v0_to_v1(kind: RecordKind, payload: &[u8]) -> Result<Vec<u8>, PersistError> {
        assert_eq!(kind, RecordKind::Node);
        let old: NodeRecordV0 = postcard::from_bytes(payload).map_err(decode_err(kind, 0))?;
        postcard::to_allocvec(&NodeRecordV1 {
            best_height: old.best_height,
            best_hash: old.best_hash,
            peer_random_draws: BTreeMap::new(),
            inbound_payments: &old.inbound_payments,
            claimable: &old.claimable,
            payments: &old.payments,
            offered: &old.offered,
            upstream: &old.upstream,
            pending_timeouts: &old.pending_timeouts,
            config: [1, 2, 3],
        })
        .map_err(encode_err(kind))
    }

    #[test]
    fn an_older_version_is_migrated_on_read() {
        let r = sample_node_record();
        let old = NodeRecordV0 {
            best_hash: r.best_hash,
            best_height: r.best_height,
            inbound_payments: r.inbound_payments.clone(),
            claimable: r.claimable.clone(),
            payments: r.payments.clone(),
            offered: r.offered.clone(),
            upstream: r.upstream.clone(),
            pending_timeouts: r.pending_timeouts.clone(),
        };
        let payload = postcard::to_allocvec(&old).expect("encodes");
        let bytes =
            envelope::encode_with_versions(RecordKind::Node, 0, 0, &payload).expect("small");
        let steps: &[MigrationStep] = &[v0_to_v1, v1_to_v2, v2_to_v3, v3_to_v4, v4_to_v5, v5_to_v6];
        let read: NodeRecord = from_record(&bytes, RecordKind::Node, steps, 0).expect("migrated");
        assert_eq!(
            read,
            NodeRecord {
                peer_random_draws: BTreeMap::new(),
                completed_payments: BTreeMap::new(),
                ..r
            }
        );
        // This build has no step from version 0: the record is refused, naming versions.
        assert_eq!(
            NodeRecord::from_bytes(&bytes),
            Err(PersistError::TooOld {
                written_by_version: 0,
                oldest_readable_version: OLDEST_READABLE_VERSION
            })
        );
    }

    fn sample_resolutions() -> Vec<ForwardResolutionRecord> {
        let forwarded = HtlcSource::Forwarded {
            channel_id: ChannelId([3; 32]),
            htlc_id: 7,
        };
        vec![
            ForwardResolutionRecord {
                source: HtlcSource::Local(PaymentId([1; 32])),
                next_channel_id: None,
                outcome: ForwardOutcomeRecord::Fulfilled(PaymentPreimage([2; 32])),
            },
            ForwardResolutionRecord {
                source: forwarded,
                next_channel_id: Some(ChannelId([4; 32])),
                outcome: ForwardOutcomeRecord::FailedDownstream(vec![5; 300]),
            },
            ForwardResolutionRecord {
                source: forwarded,
                next_channel_id: Some(ChannelId([4; 32])),
                outcome: ForwardOutcomeRecord::Malformed {
                    failure_code: 0x8000 | 0x4000 | 5,
                    sha256_of_onion: [6; 32],
                },
            },
            ForwardResolutionRecord {
                source: forwarded,
                next_channel_id: None,
                outcome: ForwardOutcomeRecord::FailedHere(vec![0x20, 0x02]),
            },
        ]
    }

    #[test]
    fn resolution_records_round_trip_in_the_envelope() {
        for r in sample_resolutions() {
            let bytes = r.to_bytes().expect("encodes");
            assert_eq!(&bytes[..4], b"LNSD");
            assert_eq!(ForwardResolutionRecord::from_bytes(&bytes), Ok(r.clone()));
            assert_eq!(ForwardResolutionRecord::from_stored_bytes(&bytes), Ok(r));
        }
        // A resolution envelope claiming a version before the kind existed is refused.
        let payload = postcard::to_allocvec(&sample_resolutions()[0]).expect("encodes");
        let old =
            envelope::encode_with_versions(RecordKind::Resolution, 2, 2, &payload).expect("small");
        assert_eq!(
            ForwardResolutionRecord::from_bytes(&old),
            Err(PersistError::KindNotInVersion {
                kind: RecordKind::Resolution,
                version: 2,
                introduced_in: 3
            })
        );
    }

    /// The engine's hand-written layout of before format version 3, byte by byte: stores
    /// written by the old engine still read.
    #[test]
    fn legacy_hand_written_resolutions_still_read() {
        let mut fulfilled = vec![1, 0];
        fulfilled.extend_from_slice(&[1; 32]);
        fulfilled.push(0);
        fulfilled.push(0);
        fulfilled.extend_from_slice(&[2; 32]);
        let mut failed = vec![1, 1];
        failed.extend_from_slice(&[3; 32]);
        failed.extend_from_slice(&7u64.to_be_bytes());
        failed.push(1);
        failed.extend_from_slice(&[4; 32]);
        failed.push(1);
        failed.extend_from_slice(&300u32.to_be_bytes());
        failed.extend_from_slice(&[5; 300]);
        let mut malformed = vec![1, 1];
        malformed.extend_from_slice(&[3; 32]);
        malformed.extend_from_slice(&7u64.to_be_bytes());
        malformed.push(1);
        malformed.extend_from_slice(&[4; 32]);
        malformed.push(2);
        malformed.extend_from_slice(&(0x8000u16 | 0x4000 | 5).to_be_bytes());
        malformed.extend_from_slice(&[6; 32]);
        let mut here = vec![1, 1];
        here.extend_from_slice(&[3; 32]);
        here.extend_from_slice(&7u64.to_be_bytes());
        here.push(0);
        here.push(3);
        here.extend_from_slice(&2u32.to_be_bytes());
        here.extend_from_slice(&[0x20, 0x02]);
        let read: Vec<_> = [&fulfilled, &failed, &malformed, &here]
            .iter()
            .map(|b| ForwardResolutionRecord::from_stored_bytes(b).expect("legacy layout"))
            .collect();
        assert_eq!(read, sample_resolutions());
        // Damaged: a clear error naming the field or tag, never a panic.
        assert!(matches!(
            ForwardResolutionRecord::from_stored_bytes(&fulfilled[..20]),
            Err(PersistError::LegacyResolution {
                version: 1,
                error: LegacyResolutionError::Field(_)
            })
        ));
        let mut bad = fulfilled.clone();
        bad[1] = 9;
        assert_eq!(
            ForwardResolutionRecord::from_stored_bytes(&bad),
            Err(PersistError::LegacyResolution {
                version: 1,
                error: LegacyResolutionError::UnknownTag {
                    field: "source",
                    tag: 9
                }
            })
        );
        assert!(ForwardResolutionRecord::from_stored_bytes(&[]).is_err());
        for cut in 0..failed.len() {
            assert!(ForwardResolutionRecord::from_stored_bytes(&failed[..cut]).is_err());
        }
    }

    #[test]
    fn a_compatible_newer_record_with_appended_fields_is_read() {
        let r = sample_node_record();
        let mut payload = postcard::to_allocvec(&r).expect("encodes");
        payload.extend_from_slice(&[1, 2, 3]);
        let newer =
            envelope::encode_with_versions(RecordKind::Node, FORMAT_VERSION + 1, 1, &payload)
                .expect("small");
        assert_eq!(NodeRecord::from_bytes(&newer), Ok(r.clone()));
        // The same bytes claimed by our own version are corrupt.
        let same = envelope::encode(RecordKind::Node, &payload).expect("small");
        assert_eq!(
            NodeRecord::from_bytes(&same),
            Err(PersistError::PayloadTrailing {
                kind: RecordKind::Node,
                version: FORMAT_VERSION,
                left: 3
            })
        );
    }
}
