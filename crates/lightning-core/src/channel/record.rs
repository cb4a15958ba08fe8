//! Conversions between [`Channel`] and its stored form,
//! [`ChannelStateRecord`](crate::persist::ChannelStateRecord). They live here because
//! `Channel`'s fields are private to the channel module; `persist` knows nothing of
//! `Channel`.

use bitcoin::secp256k1::PublicKey;

use super::{
    keys::derive_peer_channel_keys, Ahead, Channel, ChannelConfig, ChannelParams, ChannelPhase,
    ClosingState, CommitmentSpec, Connection, LocalChanges, LocalCommit, NextRemoteCommit,
    RemoteChanges, RemoteCommit, ShutdownState, SpecHtlc, Update,
};
use crate::keys::{ChannelKeys, ChannelPublicKeys};
use crate::persist::channel::{
    ChannelConfigRecord, ChannelKeysRecord, ChannelStateRecord, ChannelTypeRecord, ClosingRecord,
    ConnectionRecord, LocalChangesRecord, LocalCommitRecord, NextRemoteCommitRecord, ParamsRecord,
    PhaseRecord, PublicKeysRecord, RemoteChangesRecord, RemoteCommitRecord, ShutdownRecord,
    SpecHtlcRecord, SpecRecord, StoredChannelKeys, UpdateRecord,
};
use crate::transactions::ChannelType;
use crate::wire::Features;

impl Channel {
    /// The channel's stored form. A channel whose keys were derived
    /// ([`Channel::key_index`] is `Some`) stores only their index; any other stores its
    /// secrets (see [`ChannelKeysRecord`]). The outbox and events are not stored: persist
    /// after draining them.
    pub fn to_record(&self) -> ChannelStateRecord {
        ChannelStateRecord {
            is_funder: self.is_funder,
            chain_hash: self.chain_hash,
            temporary_channel_id: self.temporary_channel_id,
            channel_id: self.channel_id,
            channel_type: match self.channel_type {
                ChannelType::StaticRemoteKey => ChannelTypeRecord::StaticRemoteKey,
                ChannelType::AnchorsZeroFeeHtlcTx => ChannelTypeRecord::AnchorsZeroFeeHtlcTx,
            },
            channel_type_features: le_bytes(&self.channel_type_features),
            funding_satoshis: self.funding_satoshis,
            push_msat: self.push_msat,
            config: config_record(&self.config),
            keys: match self.key_index {
                Some(index) => ChannelKeysRecord::Derived { index },
                None => ChannelKeysRecord::Stored(stored_keys(&self.keys)),
            },
            local_pubkeys: pubkeys_record(&self.local_pubkeys),
            remote_pubkeys: pubkeys_record(&self.remote_pubkeys),
            local_params: params_record(&self.local_params),
            remote_params: params_record(&self.remote_params),
            phase: match self.phase {
                ChannelPhase::AwaitingAcceptChannel => PhaseRecord::AwaitingAcceptChannel,
                ChannelPhase::AwaitingFundingTransaction => PhaseRecord::AwaitingFundingTransaction,
                ChannelPhase::AwaitingFundingCreated => PhaseRecord::AwaitingFundingCreated,
                ChannelPhase::AwaitingFundingSigned => PhaseRecord::AwaitingFundingSigned,
                ChannelPhase::AwaitingChannelReady => PhaseRecord::AwaitingChannelReady,
                ChannelPhase::Normal => PhaseRecord::Normal,
                ChannelPhase::Closed => PhaseRecord::Closed,
            },
            connection: match self.connection {
                Connection::Connected => ConnectionRecord::Connected,
                Connection::Disconnected => ConnectionRecord::Disconnected,
                Connection::AwaitingReestablish => ConnectionRecord::AwaitingReestablish,
            },
            funding_outpoint: self.funding_outpoint,
            minimum_depth: self.minimum_depth,
            funding_height: self.funding_height,
            short_channel_id: self.short_channel_id,
            local_alias: self.local_alias,
            remote_alias: self.remote_alias,
            channel_ready_sent: self.channel_ready_sent,
            channel_ready_received: self.channel_ready_received,
            local_commit: LocalCommitRecord {
                index: self.local_commit.index,
                spec: spec_record(&self.local_commit.spec),
                txid: self.local_commit.txid,
                remote_signature: self.local_commit.remote_signature,
                htlc_signatures: self.local_commit.htlc_signatures.clone(),
            },
            remote_commit: remote_commit_record(&self.remote_commit),
            next_remote_commit: self
                .next_remote_commit
                .as_ref()
                .map(|n| NextRemoteCommitRecord {
                    commit: remote_commit_record(&n.commit),
                    sig: n.sig.clone(),
                    sent_after_local_commit_index: n.sent_after_local_commit_index,
                }),
            remote_next_point: self.remote_next_point,
            local_changes: LocalChangesRecord {
                proposed: updates_record(&self.local_changes.proposed),
                signed: updates_record(&self.local_changes.signed),
                acked: updates_record(&self.local_changes.acked),
            },
            remote_changes: RemoteChangesRecord {
                proposed: updates_record(&self.remote_changes.proposed),
                acked: updates_record(&self.remote_changes.acked),
                signed: updates_record(&self.remote_changes.signed),
            },
            holding_cell: updates_record(&self.holding_cell),
            local_next_htlc_id: self.local_next_htlc_id,
            remote_next_htlc_id: self.remote_next_htlc_id,
            remote_secrets: self.remote_secrets.clone(),
            local_shutdown_script: self.local_shutdown_script.clone(),
            remote_upfront_shutdown_script: self.remote_upfront_shutdown_script.clone(),
            anysegwit: self.anysegwit,
            shutdown: ShutdownRecord {
                local_requested: self.shutdown.local_requested,
                local_sent: self.shutdown.local_sent,
                remote_script: self.shutdown.remote_script.clone(),
            },
            closing: ClosingRecord {
                last_sent: self.closing.last_sent,
                last_received: self.closing.last_received,
                remote_range: self.closing.remote_range,
            },
            fulfilled_notified: self.fulfilled_notified.clone(),
            created_height: self.created_height,
        }
    }

    /// The channel stored as `record`, with peer `peer`. Derived keys
    /// ([`ChannelKeysRecord::Derived`]) are derived again from `node_seed`, `peer` and the
    /// index; stored ones are used as they are.
    pub fn from_record(record: ChannelStateRecord, node_seed: &[u8; 32], peer: &PublicKey) -> Self {
        let (keys, key_index) = match record.keys {
            ChannelKeysRecord::Derived { index } => (
                derive_peer_channel_keys(node_seed, peer, index),
                Some(index),
            ),
            ChannelKeysRecord::Stored(k) => (keys_from(k), None),
        };
        Channel {
            is_funder: record.is_funder,
            chain_hash: record.chain_hash,
            temporary_channel_id: record.temporary_channel_id,
            channel_id: record.channel_id,
            channel_type: match record.channel_type {
                ChannelTypeRecord::StaticRemoteKey => ChannelType::StaticRemoteKey,
                ChannelTypeRecord::AnchorsZeroFeeHtlcTx => ChannelType::AnchorsZeroFeeHtlcTx,
            },
            channel_type_features: {
                let mut wire = record.channel_type_features;
                wire.reverse();
                Features::from_wire_bytes(&wire)
            },
            funding_satoshis: record.funding_satoshis,
            push_msat: record.push_msat,
            config: config_from(record.config),
            keys,
            key_index,
            local_pubkeys: pubkeys_from(&record.local_pubkeys),
            remote_pubkeys: pubkeys_from(&record.remote_pubkeys),
            local_params: params_from(&record.local_params),
            remote_params: params_from(&record.remote_params),
            phase: match record.phase {
                PhaseRecord::AwaitingAcceptChannel => ChannelPhase::AwaitingAcceptChannel,
                PhaseRecord::AwaitingFundingTransaction => ChannelPhase::AwaitingFundingTransaction,
                PhaseRecord::AwaitingFundingCreated => ChannelPhase::AwaitingFundingCreated,
                PhaseRecord::AwaitingFundingSigned => ChannelPhase::AwaitingFundingSigned,
                PhaseRecord::AwaitingChannelReady => ChannelPhase::AwaitingChannelReady,
                PhaseRecord::Normal => ChannelPhase::Normal,
                PhaseRecord::Closed => ChannelPhase::Closed,
            },
            connection: match record.connection {
                ConnectionRecord::Connected => Connection::Connected,
                ConnectionRecord::Disconnected => Connection::Disconnected,
                ConnectionRecord::AwaitingReestablish => Connection::AwaitingReestablish,
            },
            funding_outpoint: record.funding_outpoint,
            minimum_depth: record.minimum_depth,
            funding_height: record.funding_height,
            short_channel_id: record.short_channel_id,
            local_alias: record.local_alias,
            remote_alias: record.remote_alias,
            channel_ready_sent: record.channel_ready_sent,
            channel_ready_received: record.channel_ready_received,
            local_commit: LocalCommit {
                index: record.local_commit.index,
                spec: spec_from(record.local_commit.spec),
                txid: record.local_commit.txid,
                remote_signature: record.local_commit.remote_signature,
                htlc_signatures: record.local_commit.htlc_signatures,
            },
            remote_commit: remote_commit_from(record.remote_commit),
            next_remote_commit: record.next_remote_commit.map(|n| NextRemoteCommit {
                commit: remote_commit_from(n.commit),
                sig: n.sig,
                sent_after_local_commit_index: n.sent_after_local_commit_index,
            }),
            remote_next_point: record.remote_next_point,
            local_changes: LocalChanges {
                proposed: updates_from(record.local_changes.proposed),
                signed: updates_from(record.local_changes.signed),
                acked: updates_from(record.local_changes.acked),
            },
            remote_changes: RemoteChanges {
                proposed: updates_from(record.remote_changes.proposed),
                acked: updates_from(record.remote_changes.acked),
                signed: updates_from(record.remote_changes.signed),
            },
            holding_cell: updates_from(record.holding_cell),
            local_next_htlc_id: record.local_next_htlc_id,
            remote_next_htlc_id: record.remote_next_htlc_id,
            remote_secrets: record.remote_secrets,
            local_shutdown_script: record.local_shutdown_script,
            remote_upfront_shutdown_script: record.remote_upfront_shutdown_script,
            anysegwit: record.anysegwit,
            shutdown: ShutdownState {
                local_requested: record.shutdown.local_requested,
                local_sent: record.shutdown.local_sent,
                remote_script: record.shutdown.remote_script,
            },
            closing: ClosingState {
                last_sent: record.closing.last_sent,
                last_received: record.closing.last_received,
                remote_range: record.closing.remote_range,
            },
            fulfilled_notified: record.fulfilled_notified,
            created_height: record.created_height,
            outbox: Vec::new(),
            events: Vec::new(),
            ahead: Ahead::default(),
        }
    }
}

fn le_bytes(f: &Features) -> Vec<u8> {
    let mut bytes = f.to_wire_bytes();
    bytes.reverse();
    bytes
}

/// Channel secrets from their stored form.
pub(crate) fn keys_from(k: StoredChannelKeys) -> ChannelKeys {
    ChannelKeys {
        funding_key: k.funding_key,
        revocation_base_key: k.revocation_base_key,
        payment_base_key: k.payment_base_key,
        delayed_payment_base_key: k.delayed_payment_base_key,
        htlc_base_key: k.htlc_base_key,
        commitment_seed: k.commitment_seed,
    }
}

/// Channel secrets' stored form (only for keys not derived from the seed).
pub(crate) fn stored_keys(k: &ChannelKeys) -> StoredChannelKeys {
    StoredChannelKeys {
        funding_key: k.funding_key,
        revocation_base_key: k.revocation_base_key,
        payment_base_key: k.payment_base_key,
        delayed_payment_base_key: k.delayed_payment_base_key,
        htlc_base_key: k.htlc_base_key,
        commitment_seed: k.commitment_seed,
    }
}

fn config_record(c: &ChannelConfig) -> ChannelConfigRecord {
    ChannelConfigRecord {
        dust_limit_satoshis: c.dust_limit_satoshis,
        reserve_proportional_millionths: c.reserve_proportional_millionths,
        htlc_minimum_msat: c.htlc_minimum_msat,
        max_accepted_htlcs: c.max_accepted_htlcs,
        max_htlc_value_in_flight_percent: c.max_htlc_value_in_flight_percent,
        to_self_delay: c.to_self_delay,
        max_to_self_delay: c.max_to_self_delay,
        minimum_depth: c.minimum_depth,
        max_minimum_depth: c.max_minimum_depth,
        max_dust_htlc_exposure_msat: c.max_dust_htlc_exposure_msat,
        min_feerate_per_kw: c.min_feerate_per_kw,
        max_feerate_per_kw: c.max_feerate_per_kw,
        min_funding_satoshis: c.min_funding_satoshis,
        max_funding_satoshis: c.max_funding_satoshis,
        max_htlc_minimum_msat: c.max_htlc_minimum_msat,
        max_reserve_proportional_millionths: c.max_reserve_proportional_millionths,
        negotiate_anchors: c.negotiate_anchors,
        commit_upfront_shutdown_script: c.commit_upfront_shutdown_script,
    }
}

fn config_from(c: ChannelConfigRecord) -> ChannelConfig {
    ChannelConfig {
        dust_limit_satoshis: c.dust_limit_satoshis,
        reserve_proportional_millionths: c.reserve_proportional_millionths,
        htlc_minimum_msat: c.htlc_minimum_msat,
        max_accepted_htlcs: c.max_accepted_htlcs,
        max_htlc_value_in_flight_percent: c.max_htlc_value_in_flight_percent,
        to_self_delay: c.to_self_delay,
        max_to_self_delay: c.max_to_self_delay,
        minimum_depth: c.minimum_depth,
        max_minimum_depth: c.max_minimum_depth,
        max_dust_htlc_exposure_msat: c.max_dust_htlc_exposure_msat,
        min_feerate_per_kw: c.min_feerate_per_kw,
        max_feerate_per_kw: c.max_feerate_per_kw,
        min_funding_satoshis: c.min_funding_satoshis,
        max_funding_satoshis: c.max_funding_satoshis,
        max_htlc_minimum_msat: c.max_htlc_minimum_msat,
        max_reserve_proportional_millionths: c.max_reserve_proportional_millionths,
        negotiate_anchors: c.negotiate_anchors,
        commit_upfront_shutdown_script: c.commit_upfront_shutdown_script,
    }
}

/// One side's public keys' stored form.
pub(crate) fn pubkeys_record(k: &ChannelPublicKeys) -> PublicKeysRecord {
    PublicKeysRecord {
        funding_pubkey: k.funding_pubkey,
        revocation_basepoint: k.revocation_basepoint,
        payment_basepoint: k.payment_basepoint,
        delayed_payment_basepoint: k.delayed_payment_basepoint,
        htlc_basepoint: k.htlc_basepoint,
    }
}

/// One side's public keys from their stored form.
pub(crate) fn pubkeys_from(k: &PublicKeysRecord) -> ChannelPublicKeys {
    ChannelPublicKeys {
        funding_pubkey: k.funding_pubkey,
        revocation_basepoint: k.revocation_basepoint,
        payment_basepoint: k.payment_basepoint,
        delayed_payment_basepoint: k.delayed_payment_basepoint,
        htlc_basepoint: k.htlc_basepoint,
    }
}

/// One side's channel parameters' stored form.
pub(crate) fn params_record(p: &ChannelParams) -> ParamsRecord {
    ParamsRecord {
        dust_limit_satoshis: p.dust_limit_satoshis,
        max_htlc_value_in_flight_msat: p.max_htlc_value_in_flight_msat,
        channel_reserve_satoshis: p.channel_reserve_satoshis,
        htlc_minimum_msat: p.htlc_minimum_msat,
        to_self_delay: p.to_self_delay,
        max_accepted_htlcs: p.max_accepted_htlcs,
    }
}

/// One side's channel parameters from their stored form.
pub(crate) fn params_from(p: &ParamsRecord) -> ChannelParams {
    ChannelParams {
        dust_limit_satoshis: p.dust_limit_satoshis,
        max_htlc_value_in_flight_msat: p.max_htlc_value_in_flight_msat,
        channel_reserve_satoshis: p.channel_reserve_satoshis,
        htlc_minimum_msat: p.htlc_minimum_msat,
        to_self_delay: p.to_self_delay,
        max_accepted_htlcs: p.max_accepted_htlcs,
    }
}

/// An HTLC of a commitment spec, stored.
pub(crate) fn htlc_record(h: &SpecHtlc) -> SpecHtlcRecord {
    SpecHtlcRecord {
        offered: h.offered,
        id: h.id,
        amount_msat: h.amount_msat,
        payment_hash: h.payment_hash,
        cltv_expiry: h.cltv_expiry,
    }
}

/// An HTLC of a commitment spec from its stored form.
pub(crate) fn htlc_from(h: SpecHtlcRecord) -> SpecHtlc {
    SpecHtlc {
        offered: h.offered,
        id: h.id,
        amount_msat: h.amount_msat,
        payment_hash: h.payment_hash,
        cltv_expiry: h.cltv_expiry,
    }
}

/// A commitment spec's stored form.
pub(crate) fn spec_record(s: &CommitmentSpec) -> SpecRecord {
    SpecRecord {
        htlcs: s.htlcs.iter().map(|(k, h)| (*k, htlc_record(h))).collect(),
        to_local_msat: s.to_local_msat,
        to_remote_msat: s.to_remote_msat,
        feerate_per_kw: s.feerate_per_kw,
    }
}

/// A commitment spec from its stored form.
pub(crate) fn spec_from(s: SpecRecord) -> CommitmentSpec {
    CommitmentSpec {
        htlcs: s
            .htlcs
            .into_iter()
            .map(|(k, h)| (k, htlc_from(h)))
            .collect(),
        to_local_msat: s.to_local_msat,
        to_remote_msat: s.to_remote_msat,
        feerate_per_kw: s.feerate_per_kw,
    }
}

fn remote_commit_record(c: &RemoteCommit) -> RemoteCommitRecord {
    RemoteCommitRecord {
        index: c.index,
        spec: spec_record(&c.spec),
        txid: c.txid,
        per_commitment_point: c.per_commitment_point,
    }
}

fn remote_commit_from(c: RemoteCommitRecord) -> RemoteCommit {
    RemoteCommit {
        index: c.index,
        spec: spec_from(c.spec),
        txid: c.txid,
        per_commitment_point: c.per_commitment_point,
    }
}

/// An update's stored form.
pub(crate) fn update_record(u: &Update) -> UpdateRecord {
    match u {
        Update::Add(m) => UpdateRecord::Add(m.clone()),
        Update::Fulfill(m) => UpdateRecord::Fulfill(m.clone()),
        Update::Fail(m) => UpdateRecord::Fail(m.clone()),
        Update::FailMalformed(m) => UpdateRecord::FailMalformed(m.clone()),
        Update::Fee(m) => UpdateRecord::Fee(m.clone()),
    }
}

/// An update from its stored form.
pub(crate) fn update_from(u: UpdateRecord) -> Update {
    match u {
        UpdateRecord::Add(m) => Update::Add(m),
        UpdateRecord::Fulfill(m) => Update::Fulfill(m),
        UpdateRecord::Fail(m) => Update::Fail(m),
        UpdateRecord::FailMalformed(m) => Update::FailMalformed(m),
        UpdateRecord::Fee(m) => Update::Fee(m),
    }
}

fn updates_record(u: &[Update]) -> Vec<UpdateRecord> {
    u.iter().map(update_record).collect()
}

fn updates_from(u: Vec<UpdateRecord>) -> Vec<Update> {
    u.into_iter().map(update_from).collect()
}
