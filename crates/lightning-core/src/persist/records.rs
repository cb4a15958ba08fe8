//! The two kinds of stored record: one [`ChannelRecord`] per channel and one [`NodeRecord`]
//! per node (or per shard), each a postcard payload inside an envelope ([`super::envelope`]).
//!
//! # Versions and migrations
//! A record carries the format version that wrote it and the oldest one able to read it.
//! Reading ([`ChannelRecord::from_bytes`], [`NodeRecord::from_bytes`]):
//! * `min_reader_version` above [`FORMAT_VERSION`]: refused with [`PersistError::TooNew`],
//!   naming both versions;
//! * `version` below [`FORMAT_VERSION`]: converted by [`migrate`], one version at a time,
//!   then decoded (or refused with [`PersistError::TooOld`] below the oldest we migrate);
//! * `version` above ours with a `min_reader_version` we meet: the writer promises that its
//!   payload starts with our layout (it only appended fields), so we decode the prefix;
//! * `version` equal to ours: decoded exactly; bytes after the value are corruption.
//!
//! Versions:
//! * 1: the first.
//! * 2: appends the channel's creation height (`Channel::created_height`, the last stored
//!   field of a channel record) and `NodeConfig::max_pending_inbound_channels` (the last
//!   field of the config, itself last in a node record). [`MIGRATIONS`] converts version 1
//!   by appending `None` and the default limit.
//!
//! A unit test proves the hook with a made-up version 0.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bitcoin::secp256k1::PublicKey;
use bitcoin::{BlockHash, Transaction, Txid};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::envelope::{self, PersistError, RecordKind, FORMAT_VERSION, OLDEST_READABLE_VERSION};
use crate::channel::Channel;
use crate::node::{HtlcSource, NodeConfig, PaymentId, Route};
use crate::types::{ChannelId, PaymentHash, PaymentSecret};

/// Everything needed to resume one channel: the state machine and what its node keeps
/// beside it. Its `channel` is persisted after its outputs were drained (the channel's
/// outbox and events are transient and never stored).
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
    /// The BOLT 2 state machine.
    pub channel: Channel,
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
    /// How many random values were drawn for each peer (so keys are never drawn twice).
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
    /// The configuration the node ran with (informational: a restart takes its config as
    /// an argument, so it can change). Last in the record, so that fields appended to the
    /// end of `NodeConfig` only append to the record (see the module documentation).
    pub config: NodeConfig,
}

impl NodeRecord {
    /// Keeps only the state owned by the peers `owns` accepts: for a shard of a node
    /// restarted with another shard count. A payment belongs to the peer of its first hop,
    /// a forward's upstream end to the incoming channel's peer and its downstream end to the
    /// outgoing channel's peer, a claimable HTLC to the peer that offered it. The inbound
    /// payment registry, the best block and the config are kept whole (every shard needs
    /// them).
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
    /// [`NodeRecord::retain_peers`]): the highest best block, the first record's config, the
    /// union of everything else. `None` when `records` is empty.
    pub fn merge(records: impl IntoIterator<Item = NodeRecord>) -> Option<NodeRecord> {
        let mut records = records.into_iter();
        let mut out = records.next()?;
        for r in records {
            if r.best_height > out.best_height {
                out.best_height = r.best_height;
                out.best_hash = r.best_hash;
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
        Some(out)
    }
}

/// One migration step: converts a payload of one format version to the next.
pub type MigrationStep = fn(RecordKind, &[u8]) -> Result<Vec<u8>, PersistError>;

/// The migration steps of this build: `MIGRATIONS[i]` converts a payload of format version
/// `OLDEST_READABLE_VERSION + i` to the next version.
pub const MIGRATIONS: &[MigrationStep] = &[v1_to_v2];

/// Version 1 to 2: both kinds gained one field at the very end of their payload (see the
/// module documentation), so the step appends its value: no creation height for a channel
/// (counted from the restart), the default limit for the node's config.
fn v1_to_v2(kind: RecordKind, payload: &[u8]) -> Result<Vec<u8>, PersistError> {
    let appended = match kind {
        RecordKind::Channel => postcard::to_allocvec(&Option::<u32>::None),
        RecordKind::Node => {
            postcard::to_allocvec(&crate::node::DEFAULT_MAX_PENDING_INBOUND_CHANNELS)
        }
    }
    .map_err(|e| PersistError::Encode(e.to_string()))?;
    Ok([payload, &appended].concat())
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
fn to_record<T: Serialize>(kind: RecordKind, value: &T) -> Result<Vec<u8>, PersistError> {
    let payload = postcard::to_allocvec(value).map_err(|e| PersistError::Encode(e.to_string()))?;
    envelope::encode(kind, &payload)
}

/// Decodes a `kind` record, migrating it with `steps` (see the module documentation).
fn from_record<T: DeserializeOwned>(
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
    let (value, rest) = postcard::take_from_bytes::<T>(&payload)
        .map_err(|e| PersistError::Corrupt(format!("{kind}: {e}")))?;
    if !rest.is_empty() && env.version <= FORMAT_VERSION {
        return Err(PersistError::Corrupt(format!(
            "{kind}: {} bytes left after the value",
            rest.len()
        )));
    }
    Ok(value)
}

impl ChannelRecord {
    /// The channel id.
    pub fn channel_id(&self) -> ChannelId {
        self.channel.channel_id()
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
    use crate::node::RouteHop;
    use crate::types::ShortChannelId;
    use bitcoin::hashes::Hash;
    use bitcoin::secp256k1::{Secp256k1, SecretKey};

    fn pk(i: u8) -> PublicKey {
        PublicKey::from_secret_key(
            &Secp256k1::signing_only(),
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
            config: NodeConfig::default(),
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

    /// A made-up format version 0 of the node record: no `peer_random_draws`, and the best
    /// block as a hash first. Only the test knows it.
    #[derive(Serialize, Deserialize)]
    struct NodeRecordV0 {
        best_hash: BlockHash,
        best_height: u32,
        config: NodeConfig,
        inbound_payments: BTreeMap<PaymentHash, InboundPaymentRecord>,
        claimable: BTreeMap<PaymentHash, Vec<ClaimableHtlcRecord>>,
        payments: BTreeMap<PaymentId, OutboundPaymentRecord>,
        offered: BTreeMap<(ChannelId, u64), OfferedHtlcRecord>,
        upstream: BTreeMap<(ChannelId, u64), UpstreamHtlcRecord>,
        pending_timeouts: BTreeMap<Txid, Vec<PendingTimeoutRecord>>,
    }

    fn v0_to_v1(kind: RecordKind, payload: &[u8]) -> Result<Vec<u8>, PersistError> {
        assert_eq!(kind, RecordKind::Node);
        let old: NodeRecordV0 =
            postcard::from_bytes(payload).map_err(|e| PersistError::Corrupt(e.to_string()))?;
        let new = NodeRecord {
            best_height: old.best_height,
            best_hash: old.best_hash,
            config: old.config,
            peer_random_draws: BTreeMap::new(),
            inbound_payments: old.inbound_payments,
            claimable: old.claimable,
            payments: old.payments,
            offered: old.offered,
            upstream: old.upstream,
            pending_timeouts: old.pending_timeouts,
        };
        // Version 1's layout: today's without the field version 2 appended.
        let today =
            postcard::to_allocvec(&new).map_err(|e| PersistError::Corrupt(e.to_string()))?;
        let appended = postcard::to_allocvec(&new.config.max_pending_inbound_channels)
            .map_err(|e| PersistError::Corrupt(e.to_string()))?;
        Ok(today[..today.len() - appended.len()].to_vec())
    }

    #[test]
    fn an_older_version_is_migrated_on_read() {
        let r = sample_node_record();
        let old = NodeRecordV0 {
            best_hash: r.best_hash,
            best_height: r.best_height,
            config: r.config.clone(),
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
        let steps: &[MigrationStep] = &[v0_to_v1, v1_to_v2];
        let read: NodeRecord = from_record(&bytes, RecordKind::Node, steps, 0).expect("migrated");
        assert_eq!(
            read,
            NodeRecord {
                peer_random_draws: BTreeMap::new(),
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
        assert!(matches!(
            NodeRecord::from_bytes(&same),
            Err(PersistError::Corrupt(_))
        ));
    }
}
