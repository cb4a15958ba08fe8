//! Channel establishment v1: `open_channel`, `accept_channel`, `funding_created`,
//! `funding_signed`, `channel_ready`.

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::constants::ChainHash;
use bitcoin::{OutPoint, ScriptBuf};

use super::error::{close, ignore, ChannelErrorReason as R};
use super::spec::CommitmentSpec;
use super::{
    Ahead, Channel, ChannelConfig, ChannelError, ChannelEvent, ChannelParams, ChannelPhase,
    ClosingState, Connection, LocalChanges, LocalCommit, RemoteChanges, RemoteCommit,
    ShutdownState,
};
use crate::keys::{ChannelKeys, ChannelPublicKeys};
use crate::secrets::CounterpartySecrets;
use crate::transactions::{scripts, ChannelType};
use crate::types::{ChannelId, ShortChannelId};
use crate::wire::{
    AcceptChannel, ChannelReady, Feature, Features, FundingCreated, FundingSigned, Message,
    OpenChannel,
};

/// BOLT 3's smallest acceptable `dust_limit_satoshis`.
pub const MIN_DUST_LIMIT_SATOSHIS: u64 = 354;
/// BOLT 2's largest `max_accepted_htlcs`.
pub const MAX_ACCEPTED_HTLCS: u16 = 483;

/// The arguments of [`Channel::new_outbound`].
#[derive(Debug, Clone)]
pub struct OutboundParams {
    /// The chain (genesis hash).
    pub chain_hash: ChainHash,
    /// A temporary channel id unique with this peer (chosen by the caller).
    pub temporary_channel_id: ChannelId,
    /// The funding amount.
    pub funding_satoshis: u64,
    /// The amount given to the peer at opening.
    pub push_msat: u64,
    /// The initial commitment `feerate_per_kw`.
    pub feerate_per_kw: u32,
    /// Whether to announce the channel.
    pub announce: bool,
    /// Our `shutdown` script (sent upfront when both support it).
    pub shutdown_script: ScriptBuf,
}

/// Whether `script` is a `shutdown` `scriptpubkey` BOLT 2 allows: P2PKH, P2SH, P2WPKH,
/// P2WSH, or (with `option_shutdown_anysegwit`) any witness program v1..v16 of 2 to 40 bytes.
pub fn is_valid_shutdown_script(script: &ScriptBuf, anysegwit: bool) -> bool {
    if script.is_p2pkh() || script.is_p2sh() || script.is_p2wpkh() || script.is_p2wsh() {
        return true;
    }
    let b = script.as_bytes();
    if anysegwit {
        if let (Some(&version), Some(&len)) = (b.first(), b.get(1)) {
            let v1_16 = (0x51..=0x60).contains(&version);
            let len = usize::from(len);
            return v1_16 && (2..=40).contains(&len) && b.len() == len + 2;
        }
    }
    false
}

fn channel_type_features(ct: ChannelType) -> Features {
    match ct {
        ChannelType::StaticRemoteKey => Features::from_required(&[Feature::StaticRemoteKey]),
        ChannelType::AnchorsZeroFeeHtlcTx => {
            Features::from_required(&[Feature::StaticRemoteKey, Feature::Anchors])
        }
    }
}

fn parse_channel_type(f: &Features, anchors_ok: bool) -> Option<ChannelType> {
    if f.same_bits(&channel_type_features(ChannelType::StaticRemoteKey)) {
        Some(ChannelType::StaticRemoteKey)
    } else if anchors_ok && f.same_bits(&channel_type_features(ChannelType::AnchorsZeroFeeHtlcTx)) {
        Some(ChannelType::AnchorsZeroFeeHtlcTx)
    } else {
        None
    }
}

fn pubkeys_of_open(m: &OpenChannel) -> ChannelPublicKeys {
    ChannelPublicKeys {
        funding_pubkey: m.funding_pubkey,
        revocation_basepoint: m.revocation_basepoint,
        payment_basepoint: m.payment_basepoint,
        delayed_payment_basepoint: m.delayed_payment_basepoint,
        htlc_basepoint: m.htlc_basepoint,
    }
}

fn pubkeys_of_accept(m: &AcceptChannel) -> ChannelPublicKeys {
    ChannelPublicKeys {
        funding_pubkey: m.funding_pubkey,
        revocation_basepoint: m.revocation_basepoint,
        payment_basepoint: m.payment_basepoint,
        delayed_payment_basepoint: m.delayed_payment_basepoint,
        htlc_basepoint: m.htlc_basepoint,
    }
}

/// Checks of the peer's announced parameters common to `open_channel` and `accept_channel`.
fn check_peer_params(
    p: &ChannelParams,
    funding_satoshis: u64,
    our_dust_limit: u64,
    config: &ChannelConfig,
) -> Result<(), ChannelError> {
    if p.dust_limit_satoshis < MIN_DUST_LIMIT_SATOSHIS {
        return Err(close(R::BelowMinimum {
            field: "dust_limit_satoshis",
            value: p.dust_limit_satoshis,
            min: MIN_DUST_LIMIT_SATOSHIS,
        }));
    }
    if p.channel_reserve_satoshis < our_dust_limit {
        return Err(close(R::ReserveBelowOurDustLimit {
            channel_reserve_satoshis: p.channel_reserve_satoshis,
            dust_limit_satoshis: our_dust_limit,
        }));
    }
    let max_reserve =
        funding_satoshis.saturating_mul(config.max_reserve_proportional_millionths) / 1_000_000;
    if p.channel_reserve_satoshis > max_reserve.max(our_dust_limit) {
        return Err(close(R::AboveOurMaximum {
            field: "channel_reserve_satoshis",
            value: p.channel_reserve_satoshis,
            max: max_reserve,
        }));
    }
    if p.to_self_delay > config.max_to_self_delay {
        return Err(close(R::AboveOurMaximum {
            field: "to_self_delay",
            value: u64::from(p.to_self_delay),
            max: u64::from(config.max_to_self_delay),
        }));
    }
    if p.max_accepted_htlcs > MAX_ACCEPTED_HTLCS || p.max_accepted_htlcs == 0 {
        return Err(close(R::OutsideRange {
            field: "max_accepted_htlcs",
            value: u64::from(p.max_accepted_htlcs),
            min: 1,
            max: u64::from(MAX_ACCEPTED_HTLCS),
        }));
    }
    if p.htlc_minimum_msat > config.max_htlc_minimum_msat {
        return Err(close(R::AboveOurMaximum {
            field: "htlc_minimum_msat",
            value: p.htlc_minimum_msat,
            max: config.max_htlc_minimum_msat,
        }));
    }
    if p.max_htlc_value_in_flight_msat == 0 {
        return Err(close(R::ZeroMaxHtlcValueInFlight));
    }
    Ok(())
}

impl Channel {
    #[allow(clippy::too_many_arguments)]
    fn new_common(
        is_funder: bool,
        chain_hash: ChainHash,
        temporary_channel_id: ChannelId,
        channel_type: ChannelType,
        funding_satoshis: u64,
        push_msat: u64,
        feerate_per_kw: u32,
        config: ChannelConfig,
        keys: ChannelKeys,
        local_params: ChannelParams,
        shutdown_script: ScriptBuf,
        anysegwit: bool,
    ) -> Channel {
        let secp = crate::secp::ctx();
        let local_pubkeys = keys.public_keys(&secp);
        let funder_msat = funding_satoshis
            .saturating_mul(1000)
            .saturating_sub(push_msat);
        let (to_local, to_remote) = if is_funder {
            (funder_msat, push_msat)
        } else {
            (push_msat, funder_msat)
        };
        let spec = CommitmentSpec {
            htlcs: BTreeMap::new(),
            to_local_msat: to_local,
            to_remote_msat: to_remote,
            feerate_per_kw,
        };
        let placeholder_point = local_pubkeys.funding_pubkey;
        Channel {
            is_funder,
            chain_hash,
            temporary_channel_id,
            channel_id: temporary_channel_id,
            channel_type,
            channel_type_features: channel_type_features(channel_type),
            funding_satoshis,
            push_msat,
            config,
            keys,
            key_index: None,
            local_pubkeys,
            remote_pubkeys: local_pubkeys,
            local_params,
            remote_params: ChannelParams::default(),
            phase: ChannelPhase::AwaitingAcceptChannel,
            connection: Connection::Connected,
            funding_outpoint: None,
            minimum_depth: 0,
            funding_height: None,
            short_channel_id: None,
            local_alias: None,
            remote_alias: None,
            channel_ready_sent: false,
            channel_ready_received: false,
            local_commit: LocalCommit {
                index: 0,
                spec: spec.clone(),
                txid: bitcoin::Txid::from_raw_hash(bitcoin::hashes::Hash::all_zeros()),
                remote_signature: None,
                htlc_signatures: Vec::new(),
            },
            remote_commit: RemoteCommit {
                index: 0,
                spec: spec.mirrored(),
                txid: bitcoin::Txid::from_raw_hash(bitcoin::hashes::Hash::all_zeros()),
                per_commitment_point: placeholder_point,
            },
            next_remote_commit: None,
            remote_next_point: None,
            local_changes: LocalChanges::default(),
            remote_changes: RemoteChanges::default(),
            holding_cell: Vec::new(),
            local_next_htlc_id: 0,
            remote_next_htlc_id: 0,
            remote_secrets: CounterpartySecrets::new(),
            local_shutdown_script: shutdown_script,
            remote_upfront_shutdown_script: None,
            anysegwit,
            shutdown: ShutdownState::default(),
            closing: ClosingState::default(),
            fulfilled_notified: BTreeSet::new(),
            created_height: None,
            outbox: Vec::new(),
            events: Vec::new(),
            ahead: Ahead::default(),
        }
    }

    /// Opens a channel as funder: returns the channel and the `open_channel` to send.
    ///
    /// `our_features` / `their_features` are the `init` features of both nodes (for
    /// `channel_type`, `upfront_shutdown_script` and `shutdown_anysegwit`).
    pub fn new_outbound(
        params: OutboundParams,
        our_features: &Features,
        their_features: &Features,
        config: ChannelConfig,
        keys: ChannelKeys,
    ) -> Result<(Channel, OpenChannel), ChannelError> {
        if params.push_msat > params.funding_satoshis.saturating_mul(1000) {
            return Err(ignore(R::PushAboveFunding {
                push_msat: params.push_msat,
                funding_satoshis: params.funding_satoshis,
            }));
        }
        if params.funding_satoshis > config.max_funding_satoshis {
            return Err(ignore(R::AboveMaximum {
                field: "funding_satoshis",
                value: params.funding_satoshis,
                max: config.max_funding_satoshis,
            }));
        }
        let anysegwit = our_features.negotiated(their_features, Feature::ShutdownAnySegwit);
        if !is_valid_shutdown_script(&params.shutdown_script, anysegwit) {
            return Err(ignore(R::OurShutdownScriptNonStandard));
        }
        let anchors = config.negotiate_anchors
            && our_features.supports(Feature::Anchors)
            && their_features.supports(Feature::Anchors);
        let channel_type = if anchors {
            ChannelType::AnchorsZeroFeeHtlcTx
        } else {
            ChannelType::StaticRemoteKey
        };
        let local_params = ChannelParams {
            dust_limit_satoshis: config.dust_limit_satoshis,
            max_htlc_value_in_flight_msat: config.max_in_flight_for(params.funding_satoshis),
            channel_reserve_satoshis: config.reserve_for(params.funding_satoshis, 0),
            htlc_minimum_msat: config.htlc_minimum_msat,
            to_self_delay: config.to_self_delay,
            max_accepted_htlcs: config.max_accepted_htlcs.min(MAX_ACCEPTED_HTLCS),
        };
        let upfront = our_features.supports(Feature::UpfrontShutdownScript)
            && their_features.supports(Feature::UpfrontShutdownScript);
        let upfront_script = upfront.then(|| {
            if config.commit_upfront_shutdown_script {
                params.shutdown_script.clone()
            } else {
                ScriptBuf::new()
            }
        });
        let channel = Channel::new_common(
            true,
            params.chain_hash,
            params.temporary_channel_id,
            channel_type,
            params.funding_satoshis,
            params.push_msat,
            params.feerate_per_kw,
            config,
            keys,
            local_params,
            params.shutdown_script,
            anysegwit,
        );
        let pk = channel.local_pubkeys;
        let open = OpenChannel {
            chain_hash: params.chain_hash,
            temporary_channel_id: params.temporary_channel_id,
            funding_satoshis: params.funding_satoshis,
            push_msat: params.push_msat,
            dust_limit_satoshis: local_params.dust_limit_satoshis,
            max_htlc_value_in_flight_msat: local_params.max_htlc_value_in_flight_msat,
            channel_reserve_satoshis: local_params.channel_reserve_satoshis,
            htlc_minimum_msat: local_params.htlc_minimum_msat,
            feerate_per_kw: params.feerate_per_kw,
            to_self_delay: local_params.to_self_delay,
            max_accepted_htlcs: local_params.max_accepted_htlcs,
            funding_pubkey: pk.funding_pubkey,
            revocation_basepoint: pk.revocation_basepoint,
            payment_basepoint: pk.payment_basepoint,
            delayed_payment_basepoint: pk.delayed_payment_basepoint,
            htlc_basepoint: pk.htlc_basepoint,
            first_per_commitment_point: channel.local_point(0)?,
            channel_flags: if params.announce {
                OpenChannel::ANNOUNCE_CHANNEL
            } else {
                0
            },
            upfront_shutdown_script: upfront_script,
            channel_type: Some(channel.channel_type_features.clone()),
        };
        Ok((channel, open))
    }

    /// Accepts an `open_channel` as fundee after checking every BOLT 2 rule: returns the
    /// channel and the `accept_channel` to send. On error nothing is created; send the
    /// error's message (there is nothing to broadcast).
    pub fn new_inbound(
        open: &OpenChannel,
        chain_hash: ChainHash,
        our_features: &Features,
        their_features: &Features,
        config: ChannelConfig,
        keys: ChannelKeys,
        shutdown_script: ScriptBuf,
    ) -> Result<(Channel, AcceptChannel), ChannelError> {
        if open.chain_hash != chain_hash {
            return Err(close(R::WrongChain));
        }
        let funding = open.funding_satoshis;
        if funding < config.min_funding_satoshis || funding > config.max_funding_satoshis {
            return Err(close(R::OutsideRange {
                field: "funding_satoshis",
                value: funding,
                min: config.min_funding_satoshis,
                max: config.max_funding_satoshis,
            }));
        }
        if funding >= 1 << 24 && !our_features.negotiated(their_features, Feature::LargeChannel) {
            return Err(close(R::LargeChannelNotNegotiated {
                funding_satoshis: funding,
            }));
        }
        if open.push_msat > funding.saturating_mul(1000) {
            return Err(close(R::PushAboveFunding {
                push_msat: open.push_msat,
                funding_satoshis: funding,
            }));
        }
        if open.feerate_per_kw < config.min_feerate_per_kw
            || open.feerate_per_kw > config.max_feerate_per_kw
        {
            return Err(close(R::OutsideRange {
                field: "feerate_per_kw",
                value: u64::from(open.feerate_per_kw),
                min: u64::from(config.min_feerate_per_kw),
                max: u64::from(config.max_feerate_per_kw),
            }));
        }
        if open.dust_limit_satoshis > open.channel_reserve_satoshis {
            return Err(close(R::DustLimitAboveReserve {
                dust_limit_satoshis: open.dust_limit_satoshis,
                channel_reserve_satoshis: open.channel_reserve_satoshis,
                ours: false,
            }));
        }
        let their_params = ChannelParams {
            dust_limit_satoshis: open.dust_limit_satoshis,
            max_htlc_value_in_flight_msat: open.max_htlc_value_in_flight_msat,
            channel_reserve_satoshis: open.channel_reserve_satoshis,
            htlc_minimum_msat: open.htlc_minimum_msat,
            to_self_delay: open.to_self_delay,
            max_accepted_htlcs: open.max_accepted_htlcs,
        };
        check_peer_params(&their_params, funding, config.dust_limit_satoshis, &config)?;
        let anchors_ok = our_features.supports(Feature::Anchors);
        let channel_type = match &open.channel_type {
            None => {
                return Err(close(R::NoChannelType {
                    message: "open_channel",
                }))
            }
            Some(f) => parse_channel_type(f, anchors_ok).ok_or_else(|| {
                close(R::UnsupportedChannelType {
                    channel_type: f.clone(),
                })
            })?,
        };
        let anysegwit = our_features.negotiated(their_features, Feature::ShutdownAnySegwit);
        let remote_upfront = match &open.upfront_shutdown_script {
            Some(s) if !s.is_empty() => {
                if !is_valid_shutdown_script(s, anysegwit) {
                    return Err(close(R::NonStandardUpfrontShutdownScript));
                }
                Some(s.clone())
            }
            _ => None,
        };
        if !is_valid_shutdown_script(&shutdown_script, anysegwit) {
            return Err(ignore(R::OurShutdownScriptNonStandard));
        }
        let our_reserve = config.reserve_for(funding, open.dust_limit_satoshis);
        let local_params = ChannelParams {
            dust_limit_satoshis: config.dust_limit_satoshis,
            max_htlc_value_in_flight_msat: config.max_in_flight_for(funding),
            channel_reserve_satoshis: our_reserve,
            htlc_minimum_msat: config.htlc_minimum_msat,
            to_self_delay: config.to_self_delay,
            max_accepted_htlcs: config.max_accepted_htlcs.min(MAX_ACCEPTED_HTLCS),
        };
        // The funder must afford the first commitment's fee, and someone must be above
        // reserve.
        let spec = CommitmentSpec {
            htlcs: BTreeMap::new(),
            to_local_msat: open.push_msat,
            to_remote_msat: funding.saturating_mul(1000).saturating_sub(open.push_msat),
            feerate_per_kw: open.feerate_per_kw,
        };
        let fee = spec.funder_cost_msat(config.dust_limit_satoshis, channel_type);
        let funder_after_fee = spec.to_remote_msat.checked_sub(fee).ok_or_else(|| {
            close(R::FunderCannotPayFirstFee {
                balance_msat: spec.to_remote_msat,
                fee_msat: fee,
            })
        })?;
        if funder_after_fee <= our_reserve.saturating_mul(1000)
            && open.push_msat <= open.channel_reserve_satoshis.saturating_mul(1000)
        {
            return Err(close(R::BothBalancesAtReserve));
        }
        let upfront = our_features.supports(Feature::UpfrontShutdownScript)
            && their_features.supports(Feature::UpfrontShutdownScript);
        let our_upfront = upfront.then(|| {
            if config.commit_upfront_shutdown_script {
                shutdown_script.clone()
            } else {
                ScriptBuf::new()
            }
        });
        let minimum_depth = config.minimum_depth.max(1);
        let mut channel = Channel::new_common(
            false,
            chain_hash,
            open.temporary_channel_id,
            channel_type,
            funding,
            open.push_msat,
            open.feerate_per_kw,
            config,
            keys,
            local_params,
            shutdown_script,
            anysegwit,
        );
        channel.remote_pubkeys = pubkeys_of_open(open);
        channel.remote_params = their_params;
        channel.remote_commit.per_commitment_point = open.first_per_commitment_point;
        channel.remote_upfront_shutdown_script = remote_upfront;
        channel.minimum_depth = minimum_depth;
        channel.phase = ChannelPhase::AwaitingFundingCreated;
        let pk = channel.local_pubkeys;
        let accept = AcceptChannel {
            temporary_channel_id: open.temporary_channel_id,
            dust_limit_satoshis: local_params.dust_limit_satoshis,
            max_htlc_value_in_flight_msat: local_params.max_htlc_value_in_flight_msat,
            channel_reserve_satoshis: local_params.channel_reserve_satoshis,
            htlc_minimum_msat: local_params.htlc_minimum_msat,
            minimum_depth,
            to_self_delay: local_params.to_self_delay,
            max_accepted_htlcs: local_params.max_accepted_htlcs,
            funding_pubkey: pk.funding_pubkey,
            revocation_basepoint: pk.revocation_basepoint,
            payment_basepoint: pk.payment_basepoint,
            delayed_payment_basepoint: pk.delayed_payment_basepoint,
            htlc_basepoint: pk.htlc_basepoint,
            first_per_commitment_point: channel.local_point(0)?,
            upfront_shutdown_script: our_upfront,
            channel_type: Some(channel.channel_type_features.clone()),
        };
        Ok((channel, accept))
    }

    /// Funder: checks the peer's `accept_channel`. On success build a funding transaction
    /// paying [`Self::funding_script_pubkey`] `funding_satoshis`, then call
    /// [`Self::funding_transaction_built`].
    pub fn handle_accept_channel(&mut self, accept: &AcceptChannel) -> Result<(), ChannelError> {
        if self.phase != ChannelPhase::AwaitingAcceptChannel {
            return Err(close(R::UnexpectedMessage {
                message: "accept_channel",
            }));
        }
        if accept.temporary_channel_id != self.temporary_channel_id {
            return Err(ignore(R::WrongTemporaryChannelId {
                message: "accept_channel",
            }));
        }
        if accept.minimum_depth > self.config.max_minimum_depth {
            return Err(close(R::AboveOurMaximum {
                field: "minimum_depth",
                value: u64::from(accept.minimum_depth),
                max: u64::from(self.config.max_minimum_depth),
            }));
        }
        let their_params = ChannelParams {
            dust_limit_satoshis: accept.dust_limit_satoshis,
            max_htlc_value_in_flight_msat: accept.max_htlc_value_in_flight_msat,
            channel_reserve_satoshis: accept.channel_reserve_satoshis,
            htlc_minimum_msat: accept.htlc_minimum_msat,
            to_self_delay: accept.to_self_delay,
            max_accepted_htlcs: accept.max_accepted_htlcs,
        };
        check_peer_params(
            &their_params,
            self.funding_satoshis,
            self.local_params.dust_limit_satoshis,
            &self.config,
        )?;
        if accept.dust_limit_satoshis > self.local_params.channel_reserve_satoshis {
            return Err(close(R::DustLimitAboveReserve {
                dust_limit_satoshis: accept.dust_limit_satoshis,
                channel_reserve_satoshis: self.local_params.channel_reserve_satoshis,
                ours: true,
            }));
        }
        match &accept.channel_type {
            None => {
                return Err(close(R::NoChannelType {
                    message: "accept_channel",
                }))
            }
            Some(f) if !f.same_bits(&self.channel_type_features) => {
                return Err(close(R::ChannelTypeMismatch {
                    channel_type: f.clone(),
                }))
            }
            Some(_) => {}
        }
        let remote_upfront = match &accept.upfront_shutdown_script {
            Some(s) if !s.is_empty() => {
                if !is_valid_shutdown_script(s, self.anysegwit) {
                    return Err(close(R::NonStandardUpfrontShutdownScript));
                }
                Some(s.clone())
            }
            _ => None,
        };
        self.remote_pubkeys = pubkeys_of_accept(accept);
        self.remote_params = their_params;
        self.remote_commit.per_commitment_point = accept.first_per_commitment_point;
        self.remote_upfront_shutdown_script = remote_upfront;
        self.minimum_depth = accept.minimum_depth.max(1);
        self.phase = ChannelPhase::AwaitingFundingTransaction;
        Ok(())
    }

    /// The funding output's script (P2WSH of the 2-of-2), once both funding keys are known.
    pub fn funding_script_pubkey(&self) -> ScriptBuf {
        self.funding_redeem_script().to_p2wsh()
    }

    /// The 2-of-2 funding witness script.
    pub fn funding_redeem_script(&self) -> ScriptBuf {
        scripts::funding_script(
            &self.local_pubkeys.funding_pubkey,
            &self.remote_pubkeys.funding_pubkey,
        )
    }

    /// Funder: the funding transaction (not broadcast yet) pays the funding script at
    /// `outpoint`. Returns the `funding_created` to send; the channel id becomes final.
    pub fn funding_transaction_built(
        &mut self,
        outpoint: OutPoint,
    ) -> Result<FundingCreated, ChannelError> {
        if self.phase != ChannelPhase::AwaitingFundingTransaction {
            return Err(ignore(R::NotAwaitingFundingTransaction));
        }
        let vout = u16::try_from(outpoint.vout).map_err(|_| {
            ignore(R::FundingOutputIndexTooLarge {
                vout: outpoint.vout,
            })
        })?;
        let mut next = self.clone();
        next.funding_outpoint = Some(outpoint);
        let tx = next.build_remote_tx(
            &next.remote_commit.spec,
            0,
            &next.remote_commit.per_commitment_point,
        )?;
        let secp = crate::secp::ctx();
        let signature = tx.sign(&secp, &next.keys.funding_key);
        next.remote_commit.txid = tx.txid();
        next.channel_id = ChannelId::from_funding_outpoint(&outpoint.txid, vout);
        next.phase = ChannelPhase::AwaitingFundingSigned;
        *self = next;
        Ok(FundingCreated {
            temporary_channel_id: self.temporary_channel_id,
            funding_txid: outpoint.txid,
            funding_output_index: vout,
            signature,
        })
    }

    /// Funder: checks the fundee's signature of our first commitment. Only after this
    /// succeeds may the funding transaction be broadcast.
    pub fn handle_funding_signed(&mut self, msg: &FundingSigned) -> Result<(), ChannelError> {
        if self.phase != ChannelPhase::AwaitingFundingSigned {
            return Err(close(R::UnexpectedMessage {
                message: "funding_signed",
            }));
        }
        if msg.channel_id != self.channel_id {
            return Err(close(R::WrongChannelId {
                message: "funding_signed",
            }));
        }
        let tx = self.build_local_tx(&self.local_commit.spec, 0)?;
        let secp = crate::secp::ctx();
        tx.verify_remote(&secp, &msg.signature).map_err(|_| {
            close(R::BadFundingSignature {
                message: "funding_signed",
            })
        })?;
        self.local_commit.remote_signature = Some(msg.signature);
        self.local_commit.txid = tx.txid();
        self.phase = ChannelPhase::AwaitingChannelReady;
        Ok(())
    }

    /// Fundee: checks the funder's signature of our first commitment, signs theirs and
    /// returns the `funding_signed` to send. The channel id becomes final.
    pub fn handle_funding_created(
        &mut self,
        msg: &FundingCreated,
    ) -> Result<FundingSigned, ChannelError> {
        if self.phase != ChannelPhase::AwaitingFundingCreated {
            return Err(close(R::UnexpectedMessage {
                message: "funding_created",
            }));
        }
        if msg.temporary_channel_id != self.temporary_channel_id {
            return Err(ignore(R::WrongTemporaryChannelId {
                message: "funding_created",
            }));
        }
        let mut next = self.clone();
        next.funding_outpoint = Some(OutPoint {
            txid: msg.funding_txid,
            vout: u32::from(msg.funding_output_index),
        });
        let local = next.build_local_tx(&next.local_commit.spec, 0)?;
        let secp = crate::secp::ctx();
        local.verify_remote(&secp, &msg.signature).map_err(|_| {
            close(R::BadFundingSignature {
                message: "funding_created",
            })
        })?;
        let remote = next.build_remote_tx(
            &next.remote_commit.spec,
            0,
            &next.remote_commit.per_commitment_point,
        )?;
        let signature = remote.sign(&secp, &next.keys.funding_key);
        next.local_commit.remote_signature = Some(msg.signature);
        next.local_commit.txid = local.txid();
        next.remote_commit.txid = remote.txid();
        next.channel_id = msg.channel_id();
        next.phase = ChannelPhase::AwaitingChannelReady;
        *self = next;
        Ok(FundingSigned {
            channel_id: self.channel_id,
            signature,
        })
    }

    /// Records the best block height at which the channel was created (the node does, when
    /// it opens or accepts the channel).
    pub fn set_created_height(&mut self, height: u32) {
        self.created_height = Some(height);
    }

    /// The best block height at which the channel was created, if recorded.
    pub fn created_height(&self) -> Option<u32> {
        self.created_height
    }

    /// BOLT 2: as fundee, whether the funding has not confirmed `deadline_blocks` after the
    /// channel was created, at best block `height` (a fundee "SHOULD forget the channel").
    /// Never true for the funder (its money is in the funding transaction) or once the
    /// funding confirmed.
    pub fn funding_timed_out(&self, height: u32, deadline_blocks: u32) -> bool {
        !self.is_funder
            && self.funding_height.is_none()
            && !matches!(self.phase, ChannelPhase::Normal | ChannelPhase::Closed)
            && self
                .created_height
                .is_some_and(|created| height >= created.saturating_add(deadline_blocks))
    }

    /// Sets the alias we send in `channel_ready` (TLV `short_channel_id`), chosen by the
    /// caller. Call before the channel becomes ready.
    pub fn set_local_alias(&mut self, alias: ShortChannelId) {
        self.local_alias = Some(alias);
    }

    /// The funding transaction confirmed at `height`, position `tx_index`, output `output`.
    pub fn funding_confirmed(
        &mut self,
        height: u32,
        tx_index: u32,
        output: u16,
    ) -> Result<(), ChannelError> {
        if !self.is_funded() {
            return Err(ignore(R::FundingNotSigned));
        }
        self.funding_height = Some(height);
        self.short_channel_id = Some(ShortChannelId::new(height, tx_index, output));
        self.best_block_updated(height)
    }

    /// A new best block: sends `channel_ready` once the funding is `minimum_depth` deep.
    pub fn best_block_updated(&mut self, height: u32) -> Result<(), ChannelError> {
        let Some(funding_height) = self.funding_height else {
            return Ok(());
        };
        let depth = height.saturating_sub(funding_height).saturating_add(1);
        if height < funding_height || depth < self.minimum_depth || self.channel_ready_sent {
            return Ok(());
        }
        if self.phase != ChannelPhase::AwaitingChannelReady {
            return Ok(());
        }
        self.channel_ready_sent = true;
        if self.connection == Connection::Connected {
            let ready = self.channel_ready_msg()?;
            self.outbox.push(Message::ChannelReady(ready));
        }
        self.maybe_become_ready();
        Ok(())
    }

    pub(crate) fn channel_ready_msg(&self) -> Result<ChannelReady, ChannelError> {
        Ok(ChannelReady {
            channel_id: self.channel_id,
            second_per_commitment_point: self.local_point(1)?,
            short_channel_id_alias: self.local_alias,
        })
    }

    /// The peer's `channel_ready`: remembers its next per-commitment point and alias.
    pub fn handle_channel_ready(&mut self, msg: &ChannelReady) -> Result<(), ChannelError> {
        if msg.channel_id != self.channel_id {
            return Err(close(R::WrongChannelId {
                message: "channel_ready",
            }));
        }
        match self.phase {
            ChannelPhase::AwaitingChannelReady => {}
            ChannelPhase::Normal => {
                // A retransmission after reconnection: the point must not change.
                if self.remote_commit.index == 0
                    && self.next_remote_commit.is_none()
                    && self.remote_next_point != Some(msg.second_per_commitment_point)
                {
                    return Err(close(R::ChannelReadyPointChanged));
                }
                if msg.short_channel_id_alias.is_some() {
                    self.remote_alias = msg.short_channel_id_alias;
                }
                return Ok(());
            }
            _ => {
                return Err(close(R::UnexpectedMessage {
                    message: "channel_ready",
                }))
            }
        }
        self.channel_ready_received = true;
        self.remote_next_point = Some(msg.second_per_commitment_point);
        self.remote_alias = msg.short_channel_id_alias;
        self.maybe_become_ready();
        Ok(())
    }

    fn maybe_become_ready(&mut self) {
        if self.channel_ready_sent
            && self.channel_ready_received
            && self.phase == ChannelPhase::AwaitingChannelReady
        {
            self.phase = ChannelPhase::Normal;
            self.events.push(ChannelEvent::ChannelReady {
                short_channel_id: self.short_channel_id,
                remote_alias: self.remote_alias,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_script_forms() {
        let p2wpkh = ScriptBuf::from_bytes([vec![0x00, 0x14], vec![7; 20]].concat());
        let p2wsh = ScriptBuf::from_bytes([vec![0x00, 0x20], vec![7; 32]].concat());
        let p2pkh =
            ScriptBuf::from_bytes([vec![0x76, 0xa9, 0x14], vec![7; 20], vec![0x88, 0xac]].concat());
        let p2sh = ScriptBuf::from_bytes([vec![0xa9, 0x14], vec![7; 20], vec![0x87]].concat());
        let taproot = ScriptBuf::from_bytes([vec![0x51, 0x20], vec![7; 32]].concat());
        for s in [&p2wpkh, &p2wsh, &p2pkh, &p2sh] {
            assert!(is_valid_shutdown_script(s, false));
        }
        assert!(!is_valid_shutdown_script(&taproot, false));
        assert!(is_valid_shutdown_script(&taproot, true));
        let too_short = ScriptBuf::from_bytes(vec![0x51, 0x01, 0x07]);
        assert!(!is_valid_shutdown_script(&too_short, true));
        let bad_len = ScriptBuf::from_bytes(vec![0x52, 0x05, 0x07]);
        assert!(!is_valid_shutdown_script(&bad_len, true));
        assert!(!is_valid_shutdown_script(&ScriptBuf::new(), true));
        assert!(!is_valid_shutdown_script(
            &ScriptBuf::from_bytes(vec![0x6a]),
            true
        ));
    }

    #[test]
    fn channel_types_parse_exactly() {
        let srk = channel_type_features(ChannelType::StaticRemoteKey);
        let anchors = channel_type_features(ChannelType::AnchorsZeroFeeHtlcTx);
        assert_eq!(
            parse_channel_type(&srk, false),
            Some(ChannelType::StaticRemoteKey)
        );
        assert_eq!(parse_channel_type(&anchors, false), None);
        assert_eq!(
            parse_channel_type(&anchors, true),
            Some(ChannelType::AnchorsZeroFeeHtlcTx)
        );
        let mut with_alias = srk.clone();
        with_alias.set_required(Feature::ScidAlias);
        assert_eq!(parse_channel_type(&with_alias, true), None);
        assert_eq!(parse_channel_type(&Features::empty(), true), None);
    }
}
