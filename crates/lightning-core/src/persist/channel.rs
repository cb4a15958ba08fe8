//! The stored form of one channel's state machine: [`ChannelStateRecord`] and its nested
//! records, plain data with public fields and their own serde derives.
//!
//! `Channel` (in [`crate::channel`]) converts to and from these records
//! (`Channel::to_record`, `Channel::from_record`); its own fields are private and carry no
//! serde, so refactoring the state machine cannot change the stored format by accident. A
//! change to any type in this file *is* a format change: it needs a new format version, a
//! migration and fixtures (see [`super`]).
//!
//! Field order is the order of format versions 1 and 2 (where the record was the serde
//! derive of `Channel`), so one layout reads all three: version 3 only changed what the
//! `keys` field holds ([`ChannelKeysRecord`] instead of the secrets themselves), which is
//! why [`ChannelStateRecord`] is generic over it (version 2 is read as
//! `ChannelStateRecord<StoredChannelKeys>`).
//!
//! Some fields keep types whose serde form is fixed elsewhere and explicit: bitcoin's types
//! (keys, txids, scripts, signatures), this crate's 32-byte and 64-bit newtypes
//! ([`crate::types`]), the BOLT payload of a stored update or `commitment_signed`
//! (`wire::serde_impls`: fixed by the spec), and
//! [`crate::secrets::CounterpartySecrets`] (its documented
//! stored form, checked on decode).

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::constants::ChainHash;
use bitcoin::secp256k1::{ecdsa::Signature, PublicKey, SecretKey};
use bitcoin::{OutPoint, ScriptBuf, Txid};
use serde::{Deserialize, Serialize};

use crate::secrets::CounterpartySecrets;
use crate::types::{ChannelId, PaymentHash, ShortChannelId};
use crate::wire::{
    CommitmentSigned, UpdateAddHtlc, UpdateFailHtlc, UpdateFailMalformedHtlc, UpdateFee,
    UpdateFulfillHtlc,
};

/// Where a channel's secret keys come from.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelKeysRecord {
    /// Derived from the node's seed, the peer's node id and this index
    /// (`channel::keys::derive_peer_channel_keys`): every channel a node opens or accepts
    /// under format version 3. The record holds no secret.
    Derived {
        /// The channel's key index (unique per peer for one node, see `NodeCore`).
        index: u64,
    },
    /// The secrets themselves: a channel read from a record of format version 1 or 2
    /// (whose keys were not derived this way) keeps them until it closes, and a channel of
    /// the regtest forced-keys test mode (keys chosen by the harness, public by design).
    Stored(StoredChannelKeys),
}

impl core::fmt::Debug for ChannelKeysRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ChannelKeysRecord::Derived { index } => {
                f.debug_struct("Derived").field("index", index).finish()
            }
            ChannelKeysRecord::Stored(_) => f.write_str("Stored(..)"),
        }
    }
}

/// A channel's secrets as records of format versions 1 and 2 hold them (and
/// [`ChannelKeysRecord::Stored`]). `Debug` does not print them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChannelKeys {
    /// Secret of `funding_pubkey`.
    pub funding_key: SecretKey,
    /// Secret of `revocation_basepoint`.
    pub revocation_base_key: SecretKey,
    /// Secret of `payment_basepoint`.
    pub payment_base_key: SecretKey,
    /// Secret of `delayed_payment_basepoint`.
    pub delayed_payment_base_key: SecretKey,
    /// Secret of `htlc_basepoint`.
    pub htlc_base_key: SecretKey,
    /// Seed of the per-commitment secrets.
    pub commitment_seed: [u8; 32],
}

impl core::fmt::Debug for StoredChannelKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("StoredChannelKeys { .. }")
    }
}

/// The commitment format (`channel_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelTypeRecord {
    /// `option_static_remotekey`.
    StaticRemoteKey,
    /// `option_anchors_zero_fee_htlc_tx`.
    AnchorsZeroFeeHtlcTx,
}

/// The channel's configuration (`ChannelConfig`), as it was when the channel was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // Each field is `ChannelConfig`'s field of the same name.
pub struct ChannelConfigRecord {
    pub dust_limit_satoshis: u64,
    pub reserve_proportional_millionths: u64,
    pub htlc_minimum_msat: u64,
    pub max_accepted_htlcs: u16,
    pub max_htlc_value_in_flight_percent: u8,
    pub to_self_delay: u16,
    pub max_to_self_delay: u16,
    pub minimum_depth: u32,
    pub max_minimum_depth: u32,
    pub max_dust_htlc_exposure_msat: u64,
    pub min_feerate_per_kw: u32,
    pub max_feerate_per_kw: u32,
    pub min_funding_satoshis: u64,
    pub max_funding_satoshis: u64,
    pub max_htlc_minimum_msat: u64,
    pub max_reserve_proportional_millionths: u64,
    pub negotiate_anchors: bool,
    pub commit_upfront_shutdown_script: bool,
}

/// One side's public channel keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // BOLT 2's names.
pub struct PublicKeysRecord {
    pub funding_pubkey: PublicKey,
    pub revocation_basepoint: PublicKey,
    pub payment_basepoint: PublicKey,
    pub delayed_payment_basepoint: PublicKey,
    pub htlc_basepoint: PublicKey,
}

/// The parameters one side announced in `open_channel` / `accept_channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // BOLT 2's names.
pub struct ParamsRecord {
    pub dust_limit_satoshis: u64,
    pub max_htlc_value_in_flight_msat: u64,
    pub channel_reserve_satoshis: u64,
    pub htlc_minimum_msat: u64,
    pub to_self_delay: u16,
    pub max_accepted_htlcs: u16,
}

/// Where the channel is in its life (`ChannelPhase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // `ChannelPhase`'s variants.
pub enum PhaseRecord {
    AwaitingAcceptChannel,
    AwaitingFundingTransaction,
    AwaitingFundingCreated,
    AwaitingFundingSigned,
    AwaitingChannelReady,
    Normal,
    Closed,
}

/// The connection as the channel saw it when stored (`Connection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // `Connection`'s variants.
pub enum ConnectionRecord {
    Connected,
    Disconnected,
    AwaitingReestablish,
}

/// One HTLC of a commitment (`SpecHtlc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecHtlcRecord {
    /// Whether the commitment's owner offered it.
    pub offered: bool,
    /// The id given by the side that offered it.
    pub id: u64,
    /// Its amount.
    pub amount_msat: u64,
    /// Its payment hash.
    pub payment_hash: PaymentHash,
    /// Its `cltv_expiry`.
    pub cltv_expiry: u32,
}

/// The content of one commitment from its owner's point of view (`CommitmentSpec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecRecord {
    /// The HTLCs, keyed by `(offered by the owner, id)`.
    pub htlcs: BTreeMap<(bool, u64), SpecHtlcRecord>,
    /// The owner's balance.
    pub to_local_msat: u64,
    /// The other side's balance.
    pub to_remote_msat: u64,
    /// The commitment's feerate.
    pub feerate_per_kw: u32,
}

/// Our latest commitment (`LocalCommit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalCommitRecord {
    /// The commitment number.
    pub index: u64,
    /// Its content.
    pub spec: SpecRecord,
    /// Its transaction id.
    pub txid: Txid,
    /// The peer's signature of it.
    pub remote_signature: Option<Signature>,
    /// The peer's HTLC signatures, in output order.
    pub htlc_signatures: Vec<Signature>,
}

/// A commitment of the peer that we signed (`RemoteCommit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteCommitRecord {
    /// The commitment number.
    pub index: u64,
    /// Its content from the peer's point of view.
    pub spec: SpecRecord,
    /// Its transaction id.
    pub txid: Txid,
    /// The peer's per-commitment point for it.
    pub per_commitment_point: PublicKey,
}

/// A peer commitment we signed whose predecessor is not revoked yet (`NextRemoteCommit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextRemoteCommitRecord {
    /// The commitment.
    pub commit: RemoteCommitRecord,
    /// The `commitment_signed` we sent for it (its BOLT payload).
    pub sig: CommitmentSigned,
    /// Our local commitment number when we sent it.
    pub sent_after_local_commit_index: u64,
}

/// An update message in a change list (`Update`), stored as its BOLT payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // One variant per update message.
pub enum UpdateRecord {
    Add(UpdateAddHtlc),
    Fulfill(UpdateFulfillHtlc),
    Fail(UpdateFailHtlc),
    FailMalformed(UpdateFailMalformedHtlc),
    Fee(UpdateFee),
}

/// Our change lists (`LocalChanges`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(missing_docs)] // `LocalChanges`'s lists.
pub struct LocalChangesRecord {
    pub proposed: Vec<UpdateRecord>,
    pub signed: Vec<UpdateRecord>,
    pub acked: Vec<UpdateRecord>,
}

/// The peer's change lists (`RemoteChanges`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(missing_docs)] // `RemoteChanges`'s lists.
pub struct RemoteChangesRecord {
    pub proposed: Vec<UpdateRecord>,
    pub acked: Vec<UpdateRecord>,
    pub signed: Vec<UpdateRecord>,
}

/// Shutdown progress (`ShutdownState`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(missing_docs)] // `ShutdownState`'s fields.
pub struct ShutdownRecord {
    pub local_requested: bool,
    pub local_sent: bool,
    pub remote_script: Option<ScriptBuf>,
}

/// Legacy `closing_signed` negotiation progress (`ClosingState`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(missing_docs)] // `ClosingState`'s fields.
pub struct ClosingRecord {
    pub last_sent: Option<(u64, Signature)>,
    pub last_received: Option<(u64, Signature)>,
    pub remote_range: Option<(u64, u64)>,
}

/// Everything needed to resume one channel's state machine. `K` is what the `keys` field
/// holds: [`ChannelKeysRecord`] from format version 3 on, [`StoredChannelKeys`] in
/// versions 1 and 2. Field meanings are those of `Channel`'s fields of the same names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // `Channel`'s fields of the same names.
pub struct ChannelStateRecord<K = ChannelKeysRecord> {
    pub is_funder: bool,
    pub chain_hash: ChainHash,
    pub temporary_channel_id: ChannelId,
    pub channel_id: ChannelId,
    pub channel_type: ChannelTypeRecord,
    /// The `channel_type` feature bits, little-endian (byte `i` holds bits `8i..8i+8`).
    pub channel_type_features: Vec<u8>,
    pub funding_satoshis: u64,
    pub push_msat: u64,
    pub config: ChannelConfigRecord,
    /// Where the channel's secret keys come from; never a secret for a channel opened or
    /// accepted under format version 3 (outside the regtest forced-keys mode).
    pub keys: K,
    pub local_pubkeys: PublicKeysRecord,
    pub remote_pubkeys: PublicKeysRecord,
    pub local_params: ParamsRecord,
    pub remote_params: ParamsRecord,
    pub phase: PhaseRecord,
    pub connection: ConnectionRecord,
    pub funding_outpoint: Option<OutPoint>,
    pub minimum_depth: u32,
    pub funding_height: Option<u32>,
    pub short_channel_id: Option<ShortChannelId>,
    pub local_alias: Option<ShortChannelId>,
    pub remote_alias: Option<ShortChannelId>,
    pub channel_ready_sent: bool,
    pub channel_ready_received: bool,
    pub local_commit: LocalCommitRecord,
    pub remote_commit: RemoteCommitRecord,
    pub next_remote_commit: Option<NextRemoteCommitRecord>,
    pub remote_next_point: Option<PublicKey>,
    pub local_changes: LocalChangesRecord,
    pub remote_changes: RemoteChangesRecord,
    pub holding_cell: Vec<UpdateRecord>,
    pub local_next_htlc_id: u64,
    pub remote_next_htlc_id: u64,
    pub remote_secrets: CounterpartySecrets,
    pub local_shutdown_script: ScriptBuf,
    pub remote_upfront_shutdown_script: Option<ScriptBuf>,
    pub anysegwit: bool,
    pub shutdown: ShutdownRecord,
    pub closing: ClosingRecord,
    pub fulfilled_notified: BTreeSet<u64>,
    /// `None` in a record of format version 1 (appended by version 2).
    pub created_height: Option<u32>,
}

impl ChannelStateRecord<StoredChannelKeys> {
    /// The same state with its stored secrets as [`ChannelKeysRecord::Stored`]: how a record
    /// of format version 1 or 2 becomes one of version 3.
    pub fn into_v3(self) -> ChannelStateRecord {
        let ChannelStateRecord {
            is_funder,
            chain_hash,
            temporary_channel_id,
            channel_id,
            channel_type,
            channel_type_features,
            funding_satoshis,
            push_msat,
            config,
            keys,
            local_pubkeys,
            remote_pubkeys,
            local_params,
            remote_params,
            phase,
            connection,
            funding_outpoint,
            minimum_depth,
            funding_height,
            short_channel_id,
            local_alias,
            remote_alias,
            channel_ready_sent,
            channel_ready_received,
            local_commit,
            remote_commit,
            next_remote_commit,
            remote_next_point,
            local_changes,
            remote_changes,
            holding_cell,
            local_next_htlc_id,
            remote_next_htlc_id,
            remote_secrets,
            local_shutdown_script,
            remote_upfront_shutdown_script,
            anysegwit,
            shutdown,
            closing,
            fulfilled_notified,
            created_height,
        } = self;
        ChannelStateRecord {
            is_funder,
            chain_hash,
            temporary_channel_id,
            channel_id,
            channel_type,
            channel_type_features,
            funding_satoshis,
            push_msat,
            config,
            keys: ChannelKeysRecord::Stored(keys),
            local_pubkeys,
            remote_pubkeys,
            local_params,
            remote_params,
            phase,
            connection,
            funding_outpoint,
            minimum_depth,
            funding_height,
            short_channel_id,
            local_alias,
            remote_alias,
            channel_ready_sent,
            channel_ready_received,
            local_commit,
            remote_commit,
            next_remote_commit,
            remote_next_point,
            local_changes,
            remote_changes,
            holding_cell,
            local_next_htlc_id,
            remote_next_htlc_id,
            remote_secrets,
            local_shutdown_script,
            remote_upfront_shutdown_script,
            anysegwit,
            shutdown,
            closing,
            fulfilled_notified,
            created_height,
        }
    }
}
