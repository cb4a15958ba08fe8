//! The stored form of the on-chain monitor ([`crate::chain::ChannelMonitor`]): a snapshot,
//! [`MonitorRecord`] ([`RecordKind::Monitor`]), and the updates applied after it,
//! [`MonitorUpdateRecord`] ([`RecordKind::MonitorUpdate`]), both from format version 4.
//!
//! # API
//! ```text
//! ChannelMonitor::to_record(&self) -> MonitorRecord
//! ChannelMonitor::from_record(MonitorRecord, node_seed: &[u8; 32])
//!     -> Result<ChannelMonitor, PersistError>
//! MonitorUpdate::to_record(&self, channel_id: ChannelId) -> MonitorUpdateRecord
//! MonitorUpdateRecord::into_update(self) -> MonitorUpdate
//! MonitorRecord::{to_bytes, from_bytes}, MonitorUpdateRecord::{to_bytes, from_bytes}
//! restore_monitor(snapshot: MonitorRecord, updates: Vec<MonitorUpdateRecord>,
//!     node_seed: &[u8; 32]) -> Result<ChannelMonitor, PersistError>
//! ```
//! A node persists each [`MonitorUpdate`] (as a [`MonitorUpdateRecord`]) before the channel
//! message that depends on it leaves, a snapshot now and then (after which the older updates
//! may be deleted), and on restart calls [`restore_monitor`] with the last snapshot and the
//! updates it kept: those not newer than the snapshot are skipped, the others must follow
//! each other without a gap ([`PersistError::MonitorUpdateGap`]). Block connections are not
//! updates: a snapshot taken after a block holds the confirmed transactions and the height,
//! and a restart that lost blocks gets them again from the chain (the monitor ignores a
//! transaction it already holds).
//!
//! # Keys
//! As for a channel ([`super::channel`]): a monitor whose keys were derived
//! (`key_index` is `Some`) stores [`ChannelKeysRecord::Derived`] and no secret; on restore
//! the keys are derived again from the node's seed, the peer's node id and the index
//! ([`crate::channel::derive_peer_channel_keys`]), and their public keys must be the
//! record's `local_pubkeys` ([`PersistError::MonitorKeysMismatch`] otherwise: the wrong seed
//! would give a monitor that can sign nothing). A monitor of a channel without a key index
//! (migrated from format 1 or 2, or the forced-keys test mode) stores its secrets
//! ([`ChannelKeysRecord::Stored`]), checked the same way.
//!
//! # Format version and compatibility
//! Format version 3 was released (its fixtures are committed), so the new kinds need a new
//! format version: 4 (the kinds'
//! [`RecordKind::introduced_in`] is 4 and each migration step answers them with
//! `KindNotInVersion`). Version 4 changes no record of the older kinds: the policy
//! ("Compatibility policy" in [`super`]) raises `min_reader_version` only for a change other
//! than appending fields, so channel, node and resolution records keep
//! `min_reader_version` 3 ([`RecordKind::min_reader_version`]) and a version-3 build still
//! reads them (as a compatible newer record). The monitor kinds are written with
//! `min_reader_version` 4, and a version-3 build refuses them with
//! [`PersistError::UnknownKind`] rather than misreading them. Downgrading a node that holds
//! monitors to version 3 drops its on-chain enforcement: as the policy says for such a
//! change, close the channels (and let their monitors resolve) first.
//!
//! The record structs are explicit (plain public fields of this module's types, of
//! [`super::channel`]'s, of bitcoin's and of [`crate::types`]' newtypes); confirmed
//! transactions are stored in their consensus encoding. Maps are stored as lists, and a
//! list that names one key twice is refused on restore
//! ([`PersistError::MonitorInconsistent`]), as is a confirmed transaction whose bytes do not
//! hash to its txid.

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::secp256k1::{ecdsa::Signature, PublicKey};
use bitcoin::{OutPoint, ScriptBuf, Transaction, Txid};
use serde::{Deserialize, Serialize};

use super::channel::{
    ChannelKeysRecord, ChannelTypeRecord, ParamsRecord, PublicKeysRecord, SpecHtlcRecord,
    SpecRecord,
};
use super::envelope::{PersistError, RecordKind, OLDEST_READABLE_VERSION};
use super::records::{from_record, to_record, MIGRATIONS};
use crate::chain::{
    ChannelMonitor, CounterpartyCommitment, HolderCommitment, MonitorStep, MonitorUpdate,
};
use crate::channel::commit::CommitmentTerms;
use crate::channel::derive_peer_channel_keys;
use crate::channel::record::{
    htlc_from, htlc_record, keys_from, params_from, params_record, pubkeys_from, pubkeys_record,
    spec_from, spec_record, stored_keys,
};
use crate::secrets::CounterpartySecrets;
use crate::transactions::{commitment_number_obscure_factor, ChannelType};
use crate::types::{ChannelId, PaymentPreimage};

/// What the monitor's commitments are built from (the channel's `CommitmentTerms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorTermsRecord {
    /// The commitment format.
    pub channel_type: ChannelTypeRecord,
    /// The funding output.
    pub funding_outpoint: OutPoint,
    /// The funding amount.
    pub funding_satoshis: u64,
    /// Whether we opened the channel.
    pub is_funder: bool,
    /// Our public keys.
    pub local_pubkeys: PublicKeysRecord,
    /// The peer's public keys.
    pub remote_pubkeys: PublicKeysRecord,
    /// Our parameters.
    pub local_params: ParamsRecord,
    /// The peer's parameters.
    pub remote_params: ParamsRecord,
}

/// Our latest commitment as the peer signed it ([`HolderCommitment`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderCommitmentRecord {
    /// Its commitment number.
    pub index: u64,
    /// Its content (our point of view).
    pub spec: SpecRecord,
    /// Its transaction id.
    pub txid: Txid,
    /// The peer's signature of it.
    pub remote_signature: Signature,
    /// The peer's signatures of its HTLC transactions, in output order.
    pub htlc_signatures: Vec<Signature>,
}

/// A commitment of the peer's that we signed ([`CounterpartyCommitment`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterpartyCommitmentRecord {
    /// Its commitment number.
    pub index: u64,
    /// Its content (the peer's point of view).
    pub spec: SpecRecord,
    /// Its transaction id.
    pub txid: Txid,
    /// The peer's per-commitment point for it.
    pub point: PublicKey,
}

/// The untrimmed HTLCs of one revoked commitment of the peer's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedHtlcsRecord {
    /// The revoked commitment's number.
    pub index: u64,
    /// Its untrimmed HTLCs (the peer's point of view).
    pub htlcs: Vec<SpecHtlcRecord>,
}

/// A confirmed transaction of interest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmedTxRecord {
    /// Its txid (checked against the transaction on restore).
    pub txid: Txid,
    /// The height of the block that confirmed it.
    pub height: u32,
    /// The transaction, stored in its consensus encoding.
    #[serde(with = "consensus_tx")]
    pub tx: Transaction,
}

/// An event the monitor already emitted, by what identifies it (so a replay never repeats
/// it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EmittedEventRecord {
    /// `FundingSpent` for this spend.
    FundingSpent(Txid),
    /// `OutboundHtlcFulfilled` or `OutboundHtlcFailed` for our HTLC with this id.
    OutboundResolved(u64),
    /// `InboundHtlcClaimed` or `InboundHtlcLost` for the peer's HTLC with this id.
    InboundResolved(u64),
    /// `ClaimConfirmed` for this claim.
    ClaimConfirmed(Txid),
    /// `RevokedCommitmentSeen` for this commitment.
    Revoked(Txid),
    /// `FutureCommitmentSeen` for this commitment.
    Future(Txid),
}

/// A full snapshot of a [`ChannelMonitor`] ([`ChannelMonitor::to_record`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorRecord {
    /// The channel.
    pub channel_id: ChannelId,
    /// What its commitments are built from.
    pub terms: MonitorTermsRecord,
    /// Where the channel's secret keys come from (never a secret for derived keys).
    pub keys: ChannelKeysRecord,
    /// The peer's node id (an input of the key derivation).
    pub counterparty_node_id: PublicKey,
    /// The commitment number obscuring factor (checked against the terms on restore).
    pub obscure_factor: u64,
    /// The number of the last update applied.
    pub update_id: u64,
    /// Our latest commitment.
    pub holder: HolderCommitmentRecord,
    /// The peer's commitments we signed and it has not revoked, by increasing number.
    pub counterparty: Vec<CounterpartyCommitmentRecord>,
    /// The untrimmed HTLCs of the peer's revoked commitments that had some.
    pub revoked_htlcs: Vec<RevokedHtlcsRecord>,
    /// The peer's revocation secrets (their compact stored form).
    pub secrets: CounterpartySecrets,
    /// Every preimage known (each keyed by its hash in the monitor).
    pub preimages: Vec<PaymentPreimage>,
    /// Whether we force-closed.
    pub force_closed: bool,
    /// Where claims pay.
    pub destination: ScriptBuf,
    /// Every confirmed transaction of interest.
    pub confirmed: Vec<ConfirmedTxRecord>,
    /// The best height seen.
    pub best_height: u32,
    /// The feerate for claims (sat per 1000 weight).
    pub feerate_per_kw: u32,
    /// The events already emitted.
    pub emitted: Vec<EmittedEventRecord>,
}

/// One [`MonitorStep`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MonitorStepRecord {
    /// [`MonitorStep::HolderCommitment`].
    HolderCommitment(HolderCommitmentRecord),
    /// [`MonitorStep::CounterpartyCommitment`].
    CounterpartyCommitment(CounterpartyCommitmentRecord),
    /// [`MonitorStep::CommitmentSecret`].
    CommitmentSecret {
        /// The revoked commitment's number.
        index: u64,
        /// Its per-commitment secret (the peer's, revealed to us).
        secret: [u8; 32],
    },
    /// [`MonitorStep::Preimage`].
    Preimage(PaymentPreimage),
    /// [`MonitorStep::ForceClosed`].
    ForceClosed,
}

/// One [`MonitorUpdate`] of a channel's monitor ([`MonitorUpdate::to_record`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorUpdateRecord {
    /// The channel whose monitor it updates.
    pub channel_id: ChannelId,
    /// The update's number.
    pub update_id: u64,
    /// What changed.
    pub steps: Vec<MonitorStepRecord>,
}

/// How many consecutive commitment numbers one [`MonitorRevokedRecord`] covers.
pub const REVOKED_CHUNK: u64 = 64;

/// The untrimmed HTLCs of the peer's revoked commitments numbered
/// `chunk * REVOKED_CHUNK ..` up to the next chunk ([`RecordKind::MonitorRevoked`]): what
/// rebuilds a revoked commitment's HTLC scripts. Kept beside the monitor's snapshot rather
/// than in it, since it grows with every state: a chunk is written while its numbers are
/// revoked, then never again, so the snapshot stays small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorRevokedRecord {
    /// The channel.
    pub channel_id: ChannelId,
    /// The chunk: commitment numbers `chunk * REVOKED_CHUNK` to `chunk * REVOKED_CHUNK + 63`.
    pub chunk: u64,
    /// The revoked commitments of the chunk that had untrimmed HTLCs.
    pub entries: Vec<RevokedHtlcsRecord>,
}

impl MonitorRevokedRecord {
    /// The record's stored bytes (envelope and payload).
    pub fn to_bytes(&self) -> Result<Vec<u8>, PersistError> {
        to_record(RecordKind::MonitorRevoked, self)
    }

    /// Reads a record written by [`MonitorRevokedRecord::to_bytes`]. Never panics: anything
    /// else is a [`PersistError`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PersistError> {
        from_record(
            bytes,
            RecordKind::MonitorRevoked,
            MIGRATIONS,
            OLDEST_READABLE_VERSION,
        )
    }
}

impl ChannelMonitor {
    /// The snapshot without the revoked commitments' HTLCs (those go in
    /// [`MonitorRevokedRecord`]s: [`ChannelMonitor::revoked_chunk_record`]). Its size does
    /// not grow with the channel's states.
    pub fn to_bounded_record(&self) -> MonitorRecord {
        let mut record = self.to_record();
        record.revoked_htlcs.clear();
        record
    }

    /// The chunks holding revoked commitments numbered above `after` (all of them for
    /// `None`).
    pub fn revoked_chunks_after(&self, after: Option<u64>) -> BTreeSet<u64> {
        let from = after.map_or(0, |a| a.saturating_add(1));
        self.revoked_htlcs
            .range(from..)
            .map(|(number, _)| number / REVOKED_CHUNK)
            .collect()
    }

    /// The highest revoked commitment number with HTLCs, if any.
    pub fn last_revoked_with_htlcs(&self) -> Option<u64> {
        self.revoked_htlcs.keys().next_back().copied()
    }

    /// The record of one chunk of revoked commitments' HTLCs.
    pub fn revoked_chunk_record(&self, chunk: u64) -> MonitorRevokedRecord {
        let start = chunk.saturating_mul(REVOKED_CHUNK);
        let end = start.saturating_add(REVOKED_CHUNK);
        MonitorRevokedRecord {
            channel_id: self.channel_id,
            chunk,
            entries: self
                .revoked_htlcs
                .range(start..end)
                .map(|(index, htlcs)| RevokedHtlcsRecord {
                    index: *index,
                    htlcs: htlcs.iter().map(htlc_record).collect(),
                })
                .collect(),
        }
    }
}

/// As [`restore_monitor`], with the revoked commitments' HTLCs kept beside the snapshot:
/// every entry of `revoked` (a chunk of another channel, or an entry outside its chunk, is
/// refused) joins the snapshot's own.
pub fn restore_monitor_with_revoked(
    mut snapshot: MonitorRecord,
    updates: Vec<MonitorUpdateRecord>,
    revoked: Vec<MonitorRevokedRecord>,
    node_seed: &[u8; 32],
) -> Result<ChannelMonitor, PersistError> {
    let channel_id = snapshot.channel_id;
    for chunk in revoked {
        if chunk.channel_id != channel_id {
            return Err(PersistError::MonitorUpdateWrongChannel {
                expected: channel_id,
                found: chunk.channel_id,
            });
        }
        for entry in chunk.entries {
            if entry.index / REVOKED_CHUNK != chunk.chunk {
                return Err(PersistError::MonitorInconsistent {
                    channel_id,
                    what: "a revoked commitment stored in another chunk",
                });
            }
            snapshot.revoked_htlcs.push(entry);
        }
    }
    restore_monitor(snapshot, updates, node_seed)
}

impl MonitorRecord {
    /// The record's stored bytes (envelope and payload).
    pub fn to_bytes(&self) -> Result<Vec<u8>, PersistError> {
        to_record(RecordKind::Monitor, self)
    }

    /// Reads a record written by [`MonitorRecord::to_bytes`]. Never panics: anything else is
    /// a [`PersistError`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PersistError> {
        from_record(
            bytes,
            RecordKind::Monitor,
            MIGRATIONS,
            OLDEST_READABLE_VERSION,
        )
    }

    /// Whether the record holds secret keys ([`ChannelKeysRecord::Stored`]).
    pub fn holds_secrets(&self) -> bool {
        matches!(self.keys, ChannelKeysRecord::Stored(_))
    }
}

impl MonitorUpdateRecord {
    /// The record's stored bytes (envelope and payload).
    pub fn to_bytes(&self) -> Result<Vec<u8>, PersistError> {
        to_record(RecordKind::MonitorUpdate, self)
    }

    /// Reads a record written by [`MonitorUpdateRecord::to_bytes`]. Never panics: anything
    /// else is a [`PersistError`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PersistError> {
        from_record(
            bytes,
            RecordKind::MonitorUpdate,
            MIGRATIONS,
            OLDEST_READABLE_VERSION,
        )
    }

    /// The update it stores (its channel id aside).
    pub fn into_update(self) -> MonitorUpdate {
        MonitorUpdate {
            update_id: self.update_id,
            steps: self.steps.into_iter().map(step_from).collect(),
        }
    }
}

impl MonitorUpdate {
    /// The update's stored form, for the monitor of `channel_id`.
    pub fn to_record(&self, channel_id: ChannelId) -> MonitorUpdateRecord {
        MonitorUpdateRecord {
            channel_id,
            update_id: self.update_id,
            steps: self.steps.iter().map(step_record).collect(),
        }
    }
}

impl ChannelMonitor {
    /// The monitor's stored form: a full snapshot. Derived keys are stored as their index
    /// only; see the [module documentation](self).
    pub fn to_record(&self) -> MonitorRecord {
        MonitorRecord {
            channel_id: self.channel_id,
            terms: terms_record(&self.terms),
            keys: match self.key_index {
                Some(index) => ChannelKeysRecord::Derived { index },
                None => ChannelKeysRecord::Stored(stored_keys(&self.keys)),
            },
            counterparty_node_id: self.counterparty_node_id,
            obscure_factor: self.obscure_factor,
            update_id: self.update_id,
            holder: holder_record(&self.holder),
            counterparty: self
                .counterparty
                .values()
                .map(counterparty_record)
                .collect(),
            revoked_htlcs: self
                .revoked_htlcs
                .iter()
                .map(|(index, htlcs)| RevokedHtlcsRecord {
                    index: *index,
                    htlcs: htlcs.iter().map(htlc_record).collect(),
                })
                .collect(),
            secrets: self.secrets.clone(),
            preimages: self.preimages.values().copied().collect(),
            force_closed: self.force_closed,
            destination: self.destination.clone(),
            confirmed: self
                .confirmed
                .iter()
                .map(|(txid, (height, tx))| ConfirmedTxRecord {
                    txid: *txid,
                    height: *height,
                    tx: tx.clone(),
                })
                .collect(),
            best_height: self.best_height,
            feerate_per_kw: self.feerate_per_kw,
            emitted: self.emitted_records(),
        }
    }

    /// The monitor stored as `record`. Derived keys are derived again from `node_seed`, the
    /// record's peer and index; the keys (derived or stored) must match the record's public
    /// keys ([`PersistError::MonitorKeysMismatch`]), and the record must be consistent
    /// ([`PersistError::MonitorInconsistent`]).
    pub fn from_record(
        record: MonitorRecord,
        node_seed: &[u8; 32],
    ) -> Result<ChannelMonitor, PersistError> {
        let channel_id = record.channel_id;
        let inconsistent = |what| PersistError::MonitorInconsistent { channel_id, what };
        let (keys, key_index) = match record.keys {
            ChannelKeysRecord::Derived { index } => (
                derive_peer_channel_keys(node_seed, &record.counterparty_node_id, index),
                Some(index),
            ),
            ChannelKeysRecord::Stored(k) => (keys_from(k), None),
        };
        let terms = terms_from(&record.terms);
        if keys.public_keys(&crate::secp::ctx()) != terms.local_pubkeys {
            return Err(PersistError::MonitorKeysMismatch {
                channel_id,
                key_index,
            });
        }
        let (opener, accepter) = if terms.is_funder {
            (&terms.local_pubkeys, &terms.remote_pubkeys)
        } else {
            (&terms.remote_pubkeys, &terms.local_pubkeys)
        };
        let obscure_factor = commitment_number_obscure_factor(
            &opener.payment_basepoint,
            &accepter.payment_basepoint,
        );
        if obscure_factor != record.obscure_factor {
            return Err(inconsistent("the obscure factor is not the terms' one"));
        }
        let counterparty = unique(
            record
                .counterparty
                .into_iter()
                .map(|c| (c.index, counterparty_from(c))),
        )
        .ok_or_else(|| inconsistent("two counterparty commitments with one number"))?;
        let revoked_htlcs = unique(
            record
                .revoked_htlcs
                .into_iter()
                .map(|r| (r.index, r.htlcs.into_iter().map(htlc_from).collect())),
        )
        .ok_or_else(|| inconsistent("two revoked commitments with one number"))?;
        let preimages = unique(record.preimages.into_iter().map(|p| (p.payment_hash(), p)))
            .ok_or_else(|| inconsistent("a preimage stored twice"))?;
        let mut confirmed = BTreeMap::new();
        for c in record.confirmed {
            if c.tx.compute_txid() != c.txid {
                return Err(inconsistent(
                    "a confirmed transaction does not hash to its txid",
                ));
            }
            if confirmed.insert(c.txid, (c.height, c.tx)).is_some() {
                return Err(inconsistent("a confirmed transaction stored twice"));
            }
        }
        let emitted_count = record.emitted.len();
        let mut monitor = ChannelMonitor {
            channel_id,
            terms,
            keys,
            key_index,
            counterparty_node_id: record.counterparty_node_id,
            obscure_factor,
            update_id: record.update_id,
            holder: holder_from(record.holder),
            counterparty,
            revoked_htlcs,
            secrets: record.secrets,
            preimages,
            force_closed: record.force_closed,
            destination: record.destination,
            confirmed,
            best_height: record.best_height,
            feerate_per_kw: record.feerate_per_kw,
            emitted: BTreeSet::new(),
            claim_memo: Default::default(),
        };
        monitor.set_emitted_records(&record.emitted);
        if monitor.emitted_records().len() != emitted_count {
            return Err(inconsistent("an emitted event stored twice"));
        }
        Ok(monitor)
    }
}

/// Restores a monitor from its last snapshot and the updates stored since: the updates not
/// newer than the snapshot are skipped, the others applied in order of their number, which
/// must follow the snapshot's without a gap. Refuses an update of another channel, a gap,
/// and an update the monitor refuses, each with its [`PersistError`].
pub fn restore_monitor(
    snapshot: MonitorRecord,
    mut updates: Vec<MonitorUpdateRecord>,
    node_seed: &[u8; 32],
) -> Result<ChannelMonitor, PersistError> {
    let mut monitor = ChannelMonitor::from_record(snapshot, node_seed)?;
    let channel_id = monitor.channel_id();
    updates.sort_by_key(|u| u.update_id);
    for record in updates {
        if record.channel_id != channel_id {
            return Err(PersistError::MonitorUpdateWrongChannel {
                expected: channel_id,
                found: record.channel_id,
            });
        }
        let expected = monitor.update_id().saturating_add(1);
        if record.update_id < expected {
            continue;
        }
        if record.update_id > expected {
            return Err(PersistError::MonitorUpdateGap {
                channel_id,
                expected,
                got: record.update_id,
            });
        }
        let update = record.into_update();
        monitor
            .apply(&update)
            .map_err(|error| PersistError::MonitorUpdateRefused {
                channel_id,
                update_id: update.update_id,
                error,
            })?;
    }
    Ok(monitor)
}

/// The map of `entries`, or `None` if a key appears twice.
fn unique<K: Ord, V>(entries: impl Iterator<Item = (K, V)>) -> Option<BTreeMap<K, V>> {
    let mut out = BTreeMap::new();
    for (k, v) in entries {
        if out.insert(k, v).is_some() {
            return None;
        }
    }
    Some(out)
}

fn terms_record(t: &CommitmentTerms) -> MonitorTermsRecord {
    MonitorTermsRecord {
        channel_type: match t.channel_type {
            ChannelType::StaticRemoteKey => ChannelTypeRecord::StaticRemoteKey,
            ChannelType::AnchorsZeroFeeHtlcTx => ChannelTypeRecord::AnchorsZeroFeeHtlcTx,
        },
        funding_outpoint: t.funding_outpoint,
        funding_satoshis: t.funding_satoshis,
        is_funder: t.is_funder,
        local_pubkeys: pubkeys_record(&t.local_pubkeys),
        remote_pubkeys: pubkeys_record(&t.remote_pubkeys),
        local_params: params_record(&t.local_params),
        remote_params: params_record(&t.remote_params),
    }
}

fn terms_from(t: &MonitorTermsRecord) -> CommitmentTerms {
    CommitmentTerms {
        channel_type: match t.channel_type {
            ChannelTypeRecord::StaticRemoteKey => ChannelType::StaticRemoteKey,
            ChannelTypeRecord::AnchorsZeroFeeHtlcTx => ChannelType::AnchorsZeroFeeHtlcTx,
        },
        funding_outpoint: t.funding_outpoint,
        funding_satoshis: t.funding_satoshis,
        is_funder: t.is_funder,
        local_pubkeys: pubkeys_from(&t.local_pubkeys),
        remote_pubkeys: pubkeys_from(&t.remote_pubkeys),
        local_params: params_from(&t.local_params),
        remote_params: params_from(&t.remote_params),
    }
}

fn holder_record(h: &HolderCommitment) -> HolderCommitmentRecord {
    HolderCommitmentRecord {
        index: h.index,
        spec: spec_record(&h.spec),
        txid: h.txid,
        remote_signature: h.remote_signature,
        htlc_signatures: h.htlc_signatures.clone(),
    }
}

fn holder_from(h: HolderCommitmentRecord) -> HolderCommitment {
    HolderCommitment {
        index: h.index,
        spec: spec_from(h.spec),
        txid: h.txid,
        remote_signature: h.remote_signature,
        htlc_signatures: h.htlc_signatures,
    }
}

fn counterparty_record(c: &CounterpartyCommitment) -> CounterpartyCommitmentRecord {
    CounterpartyCommitmentRecord {
        index: c.index,
        spec: spec_record(&c.spec),
        txid: c.txid,
        point: c.point,
    }
}

fn counterparty_from(c: CounterpartyCommitmentRecord) -> CounterpartyCommitment {
    CounterpartyCommitment {
        index: c.index,
        spec: spec_from(c.spec),
        txid: c.txid,
        point: c.point,
    }
}

fn step_record(s: &MonitorStep) -> MonitorStepRecord {
    match s {
        MonitorStep::HolderCommitment(h) => MonitorStepRecord::HolderCommitment(holder_record(h)),
        MonitorStep::CounterpartyCommitment(c) => {
            MonitorStepRecord::CounterpartyCommitment(counterparty_record(c))
        }
        MonitorStep::CommitmentSecret { index, secret } => MonitorStepRecord::CommitmentSecret {
            index: *index,
            secret: *secret,
        },
        MonitorStep::Preimage(p) => MonitorStepRecord::Preimage(*p),
        MonitorStep::ForceClosed => MonitorStepRecord::ForceClosed,
    }
}

fn step_from(s: MonitorStepRecord) -> MonitorStep {
    match s {
        MonitorStepRecord::HolderCommitment(h) => MonitorStep::HolderCommitment(holder_from(h)),
        MonitorStepRecord::CounterpartyCommitment(c) => {
            MonitorStep::CounterpartyCommitment(counterparty_from(c))
        }
        MonitorStepRecord::CommitmentSecret { index, secret } => {
            MonitorStep::CommitmentSecret { index, secret }
        }
        MonitorStepRecord::Preimage(p) => MonitorStep::Preimage(p),
        MonitorStepRecord::ForceClosed => MonitorStep::ForceClosed,
    }
}

/// A `Transaction` stored as its consensus encoding (a byte string).
mod consensus_tx {
    use bitcoin::consensus::encode;
    use bitcoin::Transaction;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(tx: &Transaction, s: S) -> Result<S::Ok, S::Error> {
        encode::serialize(tx).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Transaction, D::Error> {
        let bytes: Vec<u8> = Vec::deserialize(d)?;
        encode::deserialize(&bytes)
            .map_err(|e| D::Error::custom(format!("confirmed transaction: {e}")))
    }
}

#[cfg(test)]
mod tests;
