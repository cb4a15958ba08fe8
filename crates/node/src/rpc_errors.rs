//! An engine refusal as the typed part of its RPC error: a stable snake-case `kind` and the
//! fields beside it (the ids it names, the value and the limit it broke, and `reason`, the
//! name of the engine's more precise error, when there is one).
//!
//! Every name and field comes from a `match` on the typed error ([`EngineError`] →
//! [`ApiError`] → [`FirstHopError`], [`ChannelValueError`], [`ApiLimit`], [`ChannelError`],
//! ...), never from its `Debug` or `Display` text: changing how an error prints cannot
//! change the RPC. The engine's errors are `#[non_exhaustive]`, so each match ends in a
//! catch-all arm for a variant this build does not know: such a refusal is answered with a
//! generic kind (`engine`, `refused`) or without `reason` and fields, never with a guess.

use lightning_core::channel::{ChannelError, ChannelErrorReason, ChannelPhase};
use lightning_core::node::{
    ApiError, ApiLimit, ChannelValueError, ClosureReason, FirstHopError, FundingTransactionError,
    RouteError,
};
use lightning_core::onion::ConstructError;
use lightning_core::types::ShortChannelId;
use serde_json::{json, Map, Value};
use shard_engine::store::StoreError;
use shard_engine::EngineError;

/// A refusal's typed fields, in order.
type Fields = Vec<(&'static str, Value)>;

/// `name: value` fields, each named as the error's own field.
macro_rules! fields {
    ($($name:ident),* $(,)?) => {
        vec![$((stringify!($name), json!($name))),*]
    };
}

/// The `kind` of an engine error and its typed fields (`reason` among them when the engine
/// names a more precise error).
pub(crate) fn engine_refusal(e: &EngineError) -> (&'static str, Map<String, Value>) {
    let (kind, reason, fields): (&'static str, Option<&'static str>, Fields) = match e {
        EngineError::Api(api) => api_refusal(api),
        EngineError::Full { shard, capacity } => ("full", None, fields![shard, capacity]),
        EngineError::ShuttingDown => ("shutting_down", None, Vec::new()),
        EngineError::Timeout { shard, waited_ms } => ("timeout", None, fields![shard, waited_ms]),
        EngineError::UnknownChannel(channel_id) => (
            "unknown_channel",
            None,
            vec![("channel_id", channel_id.to_string().into())],
        ),
        EngineError::UnknownConnection(conn) => ("unknown_connection", None, fields![conn]),
        EngineError::DuplicateConnection(conn) => ("duplicate_connection", None, fields![conn]),
        EngineError::Handshake { conn, .. } => ("handshake", None, fields![conn]),
        EngineError::Transport { conn, .. } => ("transport", None, fields![conn]),
        EngineError::Store(store) => ("store", store_reason(store), Vec::new()),
        EngineError::Record { .. } => ("record", None, Vec::new()),
        EngineError::WrongNode { .. } => ("wrong_node", None, Vec::new()),
        EngineError::NoStore => ("no_store", None, Vec::new()),
        EngineError::Stopped { .. } => ("stopped", None, Vec::new()),
        _ => ("engine", None, Vec::new()),
    };
    let mut data = Map::new();
    if let Some(reason) = reason {
        data.insert("reason".into(), reason.into());
    }
    for (name, value) in fields {
        data.insert(name.into(), value);
    }
    (kind, data)
}

/// A refusal by the node (`EngineError::Api`).
fn api_refusal(e: &ApiError) -> (&'static str, Option<&'static str>, Fields) {
    match e {
        ApiError::PeerNotConnected(node_id) => (
            "peer_not_connected",
            None,
            vec![("node_id", node_id.to_string().into())],
        ),
        ApiError::UnknownChannel(channel_id) => (
            "unknown_channel",
            None,
            vec![("channel_id", channel_id.to_string().into())],
        ),
        ApiError::UnknownShortChannelId(scid) => (
            "unknown_short_channel_id",
            None,
            vec![("short_channel_id", scid.to_string().into())],
        ),
        ApiError::LimitReached(limit) => {
            let (reason, fields) = limit_refusal(limit);
            ("limit_reached", reason, fields)
        }
        ApiError::Channel(e) => ("channel", channel_error_name(e), channel_fields(e.reason())),
        ApiError::InvalidRoute(e) => {
            let (reason, fields) = route_refusal(e);
            ("invalid_route", reason, fields)
        }
        ApiError::DuplicatePayment(id) => (
            "duplicate_payment",
            None,
            vec![("payment_id", hex::encode(id.0).into())],
        ),
        ApiError::NotClaimable(hash) => (
            "not_claimable",
            None,
            vec![("payment_hash", hash.to_string().into())],
        ),
        ApiError::BadFundingTransaction(e) => {
            let (reason, fields) = match e {
                FundingTransactionError::NoFundingOutput { value_satoshis } => {
                    (Some("no_funding_output"), fields![value_satoshis])
                }
                FundingTransactionError::TooManyOutputs { outputs } => {
                    (Some("too_many_outputs"), fields![outputs])
                }
                _ => (None, Vec::new()),
            };
            ("bad_funding_transaction", reason, fields)
        }
        ApiError::FirstHop(e) => {
            let (reason, fields) = first_hop_refusal(e);
            ("first_hop", reason, fields)
        }
        ApiError::PaymentIdRecentlyUsed {
            payment_id,
            completed_height,
            retained_until_height,
        } => {
            let mut fields = vec![("payment_id", hex::encode(payment_id.0).into())];
            fields.extend(fields![completed_height, retained_until_height]);
            ("payment_id_recently_used", None, fields)
        }
        ApiError::ChannelValue(e) => {
            let (reason, fields) = channel_value_refusal(e);
            ("channel_value", reason, fields)
        }
        _ => ("refused", None, Vec::new()),
    }
}

/// A configured limit ([`ApiError::LimitReached`]): its name and the limit.
fn limit_refusal(limit: &ApiLimit) -> (Option<&'static str>, Fields) {
    match limit {
        ApiLimit::PendingPayments { max } => (Some("pending_payments"), fields![max]),
        ApiLimit::ChannelsPerPeer { node_id, max } => {
            let mut fields = vec![("node_id", node_id.to_string().into())];
            fields.extend(fields![max]);
            (Some("channels_per_peer"), fields)
        }
        _ => (None, Vec::new()),
    }
}

/// A first hop that cannot carry the payment ([`ApiError::FirstHop`]).
fn first_hop_refusal(e: &FirstHopError) -> (Option<&'static str>, Fields) {
    let scid = |s: &ShortChannelId| ("short_channel_id", s.to_string().into());
    match e {
        FirstHopError::WrongPeer {
            short_channel_id,
            channel_node_id,
        } => (
            Some("wrong_peer"),
            vec![
                scid(short_channel_id),
                ("channel_node_id", channel_node_id.to_string().into()),
            ],
        ),
        FirstHopError::NotReady {
            short_channel_id,
            phase,
        } => (
            Some("not_ready"),
            vec![scid(short_channel_id), ("phase", phase_name(*phase).into())],
        ),
        FirstHopError::ShuttingDown { short_channel_id } => {
            (Some("shutting_down"), vec![scid(short_channel_id)])
        }
        FirstHopError::PeerDisconnected {
            short_channel_id,
            node_id,
        } => (
            Some("peer_disconnected"),
            vec![
                scid(short_channel_id),
                ("node_id", node_id.to_string().into()),
            ],
        ),
        FirstHopError::BelowHtlcMinimum {
            short_channel_id,
            amount_msat,
            htlc_minimum_msat,
        } => {
            let mut fields = vec![scid(short_channel_id)];
            fields.extend(fields![amount_msat, htlc_minimum_msat]);
            (Some("below_htlc_minimum"), fields)
        }
        FirstHopError::AboveOutboundCapacity {
            short_channel_id,
            amount_msat,
            outbound_capacity_msat,
        } => {
            let mut fields = vec![scid(short_channel_id)];
            fields.extend(fields![amount_msat, outbound_capacity_msat]);
            (Some("above_outbound_capacity"), fields)
        }
        _ => (None, Vec::new()),
    }
}

/// A channel value or push amount refused ([`ApiError::ChannelValue`]).
fn channel_value_refusal(e: &ChannelValueError) -> (Option<&'static str>, Fields) {
    match e {
        ChannelValueError::BelowMinimum {
            funding_satoshis,
            min_satoshis,
        } => (
            Some("below_minimum"),
            fields![funding_satoshis, min_satoshis],
        ),
        ChannelValueError::AboveMaximum {
            funding_satoshis,
            max_satoshis,
        } => (
            Some("above_maximum"),
            fields![funding_satoshis, max_satoshis],
        ),
        ChannelValueError::AbovePeerMaximum {
            funding_satoshis,
            max_satoshis,
        } => (
            Some("above_peer_maximum"),
            fields![funding_satoshis, max_satoshis],
        ),
        ChannelValueError::PushAboveValue {
            push_msat,
            value_msat,
        } => (Some("push_above_value"), fields![push_msat, value_msat]),
        ChannelValueError::FeerateOutOfRange {
            feerate_per_kw,
            min,
            max,
        } => (
            Some("feerate_out_of_range"),
            fields![feerate_per_kw, min, max],
        ),
        ChannelValueError::CannotPayFirstFee {
            balance_msat,
            fee_msat,
        } => (
            Some("cannot_pay_first_fee"),
            fields![balance_msat, fee_msat],
        ),
        ChannelValueError::BothAtReserve {
            our_balance_msat,
            min_our_balance_msat,
            push_msat,
            min_push_msat,
        } => (
            Some("both_at_reserve"),
            fields![
                our_balance_msat,
                min_our_balance_msat,
                push_msat,
                min_push_msat
            ],
        ),
        _ => (None, Vec::new()),
    }
}

/// An invalid route ([`ApiError::InvalidRoute`]).
fn route_refusal(e: &RouteError) -> (Option<&'static str>, Fields) {
    match e {
        RouteError::EmptyRoute => (Some("empty_route"), Vec::new()),
        RouteError::Overflow => (Some("overflow"), Vec::new()),
        RouteError::Onion(onion) => {
            let fields = match onion {
                ConstructError::PayloadTooShort { hop, length } => fields![hop, length],
                ConstructError::RouteTooLong { needed, limit } => fields![needed, limit],
                _ => Vec::new(),
            };
            (Some("onion"), fields)
        }
        _ => (None, Vec::new()),
    }
}

/// What was done with the channel ([`ApiError::Channel`]'s `reason`).
fn channel_error_name(e: &ChannelError) -> Option<&'static str> {
    match e {
        ChannelError::Ignore(_) => Some("ignore"),
        ChannelError::Warn(_) => Some("warn"),
        ChannelError::Close(_) => Some("close"),
        ChannelError::CloseNoBroadcast(_) => Some("close_no_broadcast"),
        _ => None,
    }
}

/// The numbers a channel's refusal names (the value and the limit), and the field a limit
/// applies to.
fn channel_fields(r: &ChannelErrorReason) -> Fields {
    use ChannelErrorReason as R;
    match r {
        R::MessageForClosedChannel { message_type } | R::NotAChannelMessage { message_type } => {
            fields![message_type]
        }
        R::BelowMinimum { field, value, min } => fields![field, value, min],
        R::AboveMaximum { field, value, max } | R::AboveOurMaximum { field, value, max } => {
            fields![field, value, max]
        }
        R::OutsideRange {
            field,
            value,
            min,
            max,
        } => fields![field, value, min, max],
        R::ReserveBelowOurDustLimit {
            channel_reserve_satoshis,
            dust_limit_satoshis,
        }
        | R::DustLimitAboveReserve {
            dust_limit_satoshis,
            channel_reserve_satoshis,
            ..
        } => fields![channel_reserve_satoshis, dust_limit_satoshis],
        R::PushAboveFunding {
            push_msat,
            funding_satoshis,
        } => fields![push_msat, funding_satoshis],
        R::LargeChannelNotNegotiated { funding_satoshis } => fields![funding_satoshis],
        R::FunderCannotPayFirstFee {
            balance_msat,
            fee_msat,
        }
        | R::CannotPayCommitmentFee {
            balance_msat,
            fee_msat,
        } => fields![balance_msat, fee_msat],
        R::FundingOutputIndexTooLarge { vout } => fields![vout],
        R::CommitmentKeys { index, .. }
        | R::BuildCommitment { index, .. }
        | R::CommitmentNumberTooLarge { index }
        | R::PerCommitmentPoint { index, .. }
        | R::PerCommitmentSecret { index, .. }
        | R::BadCommitmentSignature { index }
        | R::SecretMismatchesPoint { index }
        | R::WrongLastSecret { index } => fields![index],
        R::HtlcSignatureCount {
            index,
            received,
            expected,
        } => fields![index, received, expected],
        R::BadHtlcSignature { index, output } => fields![index, output],
        R::PeerRevocationBehind {
            next_revocation_number,
            local_commitment,
        }
        | R::OurStateOutdated {
            next_revocation_number,
            local_commitment,
        }
        | R::PeerRevocationAheadWithoutProof {
            next_revocation_number,
            local_commitment,
        } => fields![next_revocation_number, local_commitment],
        R::PeerCommitmentBehind {
            next_commitment_number,
            remote_commitment,
        }
        | R::PeerCommitmentAhead {
            next_commitment_number,
            remote_commitment,
        } => fields![next_commitment_number, remote_commitment],
        R::HtlcBelowMinimum {
            amount_msat,
            htlc_minimum_msat,
            ..
        } => fields![amount_msat, htlc_minimum_msat],
        R::CltvExpiryTooLarge { cltv_expiry, limit } => fields![cltv_expiry, limit],
        R::WouldExceedMaxAcceptedHtlcs { count, max }
        | R::PeerExceedsMaxAcceptedHtlcs { count, max } => fields![count, max],
        R::WouldExceedMaxInFlight {
            in_flight_msat,
            max_msat,
        }
        | R::PeerExceedsMaxInFlight {
            in_flight_msat,
            max_msat,
        } => fields![in_flight_msat, max_msat],
        R::BalanceBelowReserve {
            balance_msat,
            needed_msat,
        }
        | R::FunderCannotPayWithHtlc {
            balance_msat,
            needed_msat,
        } => fields![balance_msat, needed_msat],
        R::DustExposure {
            exposure_msat,
            max_msat,
        } => fields![exposure_msat, max_msat],
        R::NoCommittedInboundHtlc { id }
        | R::HtlcAlreadyRemoved { id, .. }
        | R::PreimageMismatch { id }
        | R::PeerPreimageMismatch { id }
        | R::DuplicateFulfill { id }
        | R::UnknownHtlc { id, .. } => fields![id],
        R::FailureReasonTooLong { len, max } => fields![len, max],
        R::FailureCodeLacksBadonion { failure_code }
        | R::PeerFailureCodeLacksBadonion { failure_code } => fields![failure_code],
        R::CannotAffordFeerate { feerate_per_kw } => fields![feerate_per_kw],
        R::UnexpectedHtlcId { id, expected } => fields![id, expected],
        R::PeerBalanceBelowReserve {
            balance_msat,
            amount_msat,
            needed_msat,
        } => fields![balance_msat, amount_msat, needed_msat],
        R::FunderCannotAffordFeerate {
            feerate_per_kw,
            balance_msat,
            needed_msat,
        } => fields![feerate_per_kw, balance_msat, needed_msat],
        R::OutboundHtlcTimedOut {
            id,
            cltv_expiry,
            height,
        }
        | R::ClaimedHtlcNotRemoved {
            id,
            cltv_expiry,
            height,
        } => fields![id, cltv_expiry, height],
        R::ClosingFeeAboveFunderBalance {
            fee_satoshis,
            balance_satoshis,
        } => fields![fee_satoshis, balance_satoshis],
        R::BadClosingSignature { fee_satoshis } | R::ClosingFeeChanged { fee_satoshis } => {
            fields![fee_satoshis]
        }
        R::ClosingFeeRangeNoOverlap {
            their_min,
            their_max,
            our_min,
            our_max,
        } => fields![their_min, their_max, our_min, our_max],
        R::ClosingFeeOutsideOverlap {
            fee_satoshis,
            min,
            max,
        } => fields![fee_satoshis, min, max],
        R::ClosingFeeNotBetween {
            fee_satoshis,
            low,
            high,
        } => fields![fee_satoshis, low, high],
        // No number: the kind and `reason` say it all (the message says more).
        _ => Vec::new(),
    }
}

/// A store failure's name ([`EngineError::Store`]'s `reason`).
fn store_reason(e: &StoreError) -> Option<&'static str> {
    Some(match e {
        StoreError::InvalidName { .. } => "invalid_name",
        StoreError::Io { .. } => "io",
        StoreError::Corrupt { .. } => "corrupt",
        StoreError::ValueTooLarge { .. } => "value_too_large",
        StoreError::CutFailed { .. } => "cut_failed",
        StoreError::Poisoned { .. } => "poisoned",
        StoreError::Permissions { .. } => "permissions",
        StoreError::Locked { .. } => "locked",
        _ => return None,
    })
}

/// A channel's phase as a stable snake-case name.
pub(crate) fn phase_name(phase: ChannelPhase) -> &'static str {
    match phase {
        ChannelPhase::AwaitingAcceptChannel => "awaiting_accept_channel",
        ChannelPhase::AwaitingFundingTransaction => "awaiting_funding_transaction",
        ChannelPhase::AwaitingFundingCreated => "awaiting_funding_created",
        ChannelPhase::AwaitingFundingSigned => "awaiting_funding_signed",
        ChannelPhase::AwaitingChannelReady => "awaiting_channel_ready",
        ChannelPhase::Normal => "normal",
        ChannelPhase::Closed => "closed",
    }
}

/// A closure reason's stable name (`channel_closed`'s `reason_kind`); `other` for one this
/// build does not know.
pub(crate) fn closure_kind(r: &ClosureReason) -> &'static str {
    match r {
        ClosureReason::CooperativeClosure => "cooperative_closure",
        ClosureReason::HolderForceClosed => "holder_force_closed",
        ClosureReason::CounterpartyForceClosed { .. } => "counterparty_force_closed",
        ClosureReason::ProcessingError { .. } => "processing_error",
        ClosureReason::HtlcsTimedOut => "htlcs_timed_out",
        ClosureReason::DisconnectedPeer => "disconnected_peer",
        ClosureReason::CommitmentTxConfirmed => "commitment_tx_confirmed",
        ClosureReason::FundingTimedOut => "funding_timed_out",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightning_core::channel::ChannelErrorReason as R;
    use lightning_core::node::PaymentId;
    use lightning_core::secp256k1::PublicKey;
    use lightning_core::transactions::Side;
    use lightning_core::transport::{Act, HandshakeError, TransportError};
    use lightning_core::types::{ChannelId, PaymentHash};
    use std::sync::Arc;

    const NODE: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    const SCID: &str = "900000x1x2";

    fn node() -> PublicKey {
        NODE.parse().expect("a key")
    }

    fn scid() -> ShortChannelId {
        ShortChannelId::new(900_000, 1, 2)
    }

    /// The `data` object of an engine error's RPC error: `kind` and the typed fields.
    fn data(e: impl Into<EngineError>) -> Value {
        let (kind, mut fields) = engine_refusal(&e.into());
        fields.insert("kind".into(), kind.into());
        Value::Object(fields)
    }

    #[test]
    fn api_refusals_name_their_ids() {
        assert_eq!(
            data(ApiError::PeerNotConnected(node())),
            json!({"kind": "peer_not_connected", "node_id": NODE})
        );
        assert_eq!(
            data(ApiError::UnknownChannel(ChannelId([1; 32]))),
            json!({"kind": "unknown_channel", "channel_id": "01".repeat(32)})
        );
        assert_eq!(
            data(ApiError::UnknownShortChannelId(scid())),
            json!({"kind": "unknown_short_channel_id", "short_channel_id": SCID})
        );
        assert_eq!(
            data(ApiError::DuplicatePayment(PaymentId([2; 32]))),
            json!({"kind": "duplicate_payment", "payment_id": "02".repeat(32)})
        );
        assert_eq!(
            data(ApiError::NotClaimable(PaymentHash([3; 32]))),
            json!({"kind": "not_claimable", "payment_hash": "03".repeat(32)})
        );
    }

    #[test]
    fn a_recently_used_payment_id_names_its_heights() {
        assert_eq!(
            data(ApiError::PaymentIdRecentlyUsed {
                payment_id: PaymentId([4; 32]),
                completed_height: 100,
                retained_until_height: 244,
            }),
            json!({"kind": "payment_id_recently_used", "payment_id": "04".repeat(32),
                   "completed_height": 100, "retained_until_height": 244})
        );
    }

    #[test]
    fn a_limit_names_itself_and_its_value() {
        assert_eq!(
            data(ApiError::LimitReached(ApiLimit::PendingPayments { max: 3 })),
            json!({"kind": "limit_reached", "reason": "pending_payments", "max": 3})
        );
        assert_eq!(
            data(ApiError::LimitReached(ApiLimit::ChannelsPerPeer {
                node_id: node(),
                max: 64
            })),
            json!({"kind": "limit_reached", "reason": "channels_per_peer", "node_id": NODE,
                   "max": 64})
        );
    }

    #[test]
    fn first_hop_refusals_name_the_channel_the_value_and_the_limit() {
        let first_hop = |e| data(ApiError::FirstHop(e));
        assert_eq!(
            first_hop(FirstHopError::WrongPeer {
                short_channel_id: scid(),
                channel_node_id: node(),
            }),
            json!({"kind": "first_hop", "reason": "wrong_peer", "short_channel_id": SCID,
                   "channel_node_id": NODE})
        );
        assert_eq!(
            first_hop(FirstHopError::NotReady {
                short_channel_id: scid(),
                phase: ChannelPhase::AwaitingChannelReady,
            }),
            json!({"kind": "first_hop", "reason": "not_ready", "short_channel_id": SCID,
                   "phase": "awaiting_channel_ready"})
        );
        assert_eq!(
            first_hop(FirstHopError::ShuttingDown {
                short_channel_id: scid()
            }),
            json!({"kind": "first_hop", "reason": "shutting_down", "short_channel_id": SCID})
        );
        assert_eq!(
            first_hop(FirstHopError::PeerDisconnected {
                short_channel_id: scid(),
                node_id: node(),
            }),
            json!({"kind": "first_hop", "reason": "peer_disconnected",
                   "short_channel_id": SCID, "node_id": NODE})
        );
        assert_eq!(
            first_hop(FirstHopError::BelowHtlcMinimum {
                short_channel_id: scid(),
                amount_msat: 5,
                htlc_minimum_msat: 1000,
            }),
            json!({"kind": "first_hop", "reason": "below_htlc_minimum",
                   "short_channel_id": SCID, "amount_msat": 5, "htlc_minimum_msat": 1000})
        );
        assert_eq!(
            first_hop(FirstHopError::AboveOutboundCapacity {
                short_channel_id: scid(),
                amount_msat: 9_000_000,
                outbound_capacity_msat: 8_000_000,
            }),
            json!({"kind": "first_hop", "reason": "above_outbound_capacity",
                   "short_channel_id": SCID, "amount_msat": 9_000_000u64,
                   "outbound_capacity_msat": 8_000_000u64})
        );
    }

    #[test]
    fn channel_value_refusals_name_the_value_and_the_limit() {
        let value = |e| data(ApiError::ChannelValue(e));
        assert_eq!(
            value(ChannelValueError::BelowMinimum {
                funding_satoshis: 100,
                min_satoshis: 1000,
            }),
            json!({"kind": "channel_value", "reason": "below_minimum",
                   "funding_satoshis": 100, "min_satoshis": 1000})
        );
        assert_eq!(
            value(ChannelValueError::AboveMaximum {
                funding_satoshis: 5_000_000,
                max_satoshis: 1_000_000,
            }),
            json!({"kind": "channel_value", "reason": "above_maximum",
                   "funding_satoshis": 5_000_000u64, "max_satoshis": 1_000_000u64})
        );
        assert_eq!(
            value(ChannelValueError::AbovePeerMaximum {
                funding_satoshis: 1 << 24,
                max_satoshis: (1 << 24) - 1,
            }),
            json!({"kind": "channel_value", "reason": "above_peer_maximum",
                   "funding_satoshis": 16_777_216u64, "max_satoshis": 16_777_215u64})
        );
        assert_eq!(
            value(ChannelValueError::PushAboveValue {
                push_msat: 2_000_000,
                value_msat: 1_000_000,
            }),
            json!({"kind": "channel_value", "reason": "push_above_value",
                   "push_msat": 2_000_000u64, "value_msat": 1_000_000u64})
        );
        assert_eq!(
            value(ChannelValueError::FeerateOutOfRange {
                feerate_per_kw: 100,
                min: 253,
                max: 100_000,
            }),
            json!({"kind": "channel_value", "reason": "feerate_out_of_range",
                   "feerate_per_kw": 100, "min": 253, "max": 100_000})
        );
        assert_eq!(
            value(ChannelValueError::CannotPayFirstFee {
                balance_msat: 10,
                fee_msat: 20,
            }),
            json!({"kind": "channel_value", "reason": "cannot_pay_first_fee",
                   "balance_msat": 10, "fee_msat": 20})
        );
        assert_eq!(
            value(ChannelValueError::BothAtReserve {
                our_balance_msat: 1,
                min_our_balance_msat: 2,
                push_msat: 3,
                min_push_msat: 4,
            }),
            json!({"kind": "channel_value", "reason": "both_at_reserve",
                   "our_balance_msat": 1, "min_our_balance_msat": 2, "push_msat": 3,
                   "min_push_msat": 4})
        );
    }

    #[test]
    fn channel_refusals_say_what_was_done_and_name_the_numbers() {
        let channel = |e| data(ApiError::Channel(e));
        assert_eq!(
            channel(ChannelError::Ignore(R::HtlcBelowMinimum {
                side: Side::Remote,
                amount_msat: 5,
                htlc_minimum_msat: 10,
            })),
            json!({"kind": "channel", "reason": "ignore", "amount_msat": 5,
                   "htlc_minimum_msat": 10})
        );
        assert_eq!(
            channel(ChannelError::Ignore(R::WouldExceedMaxInFlight {
                in_flight_msat: 7,
                max_msat: 6,
            })),
            json!({"kind": "channel", "reason": "ignore", "in_flight_msat": 7, "max_msat": 6})
        );
        assert_eq!(
            channel(ChannelError::Close(R::BelowMinimum {
                field: "funding_satoshis",
                value: 100,
                min: 1000,
            })),
            json!({"kind": "channel", "reason": "close", "field": "funding_satoshis",
                   "value": 100, "min": 1000})
        );
        assert_eq!(
            channel(ChannelError::Warn(R::NotOpen)),
            json!({"kind": "channel", "reason": "warn"})
        );
        assert_eq!(
            channel(ChannelError::CloseNoBroadcast(R::OurStateOutdated {
                next_revocation_number: 9,
                local_commitment: 3,
            })),
            json!({"kind": "channel", "reason": "close_no_broadcast",
                   "next_revocation_number": 9, "local_commitment": 3})
        );
    }

    #[test]
    fn route_and_funding_refusals_name_their_reason() {
        assert_eq!(
            data(ApiError::InvalidRoute(RouteError::EmptyRoute)),
            json!({"kind": "invalid_route", "reason": "empty_route"})
        );
        assert_eq!(
            data(ApiError::InvalidRoute(RouteError::Overflow)),
            json!({"kind": "invalid_route", "reason": "overflow"})
        );
        assert_eq!(
            data(ApiError::InvalidRoute(RouteError::Onion(
                ConstructError::RouteTooLong {
                    needed: 1400,
                    limit: 1300
                }
            ))),
            json!({"kind": "invalid_route", "reason": "onion", "needed": 1400, "limit": 1300})
        );
        assert_eq!(
            data(ApiError::BadFundingTransaction(
                FundingTransactionError::NoFundingOutput {
                    value_satoshis: 50_000
                }
            )),
            json!({"kind": "bad_funding_transaction", "reason": "no_funding_output",
                   "value_satoshis": 50_000})
        );
        assert_eq!(
            data(ApiError::BadFundingTransaction(
                FundingTransactionError::TooManyOutputs { outputs: 7 }
            )),
            json!({"kind": "bad_funding_transaction", "reason": "too_many_outputs",
                   "outputs": 7})
        );
    }

    #[test]
    fn engine_errors_name_their_kind_and_numbers() {
        assert_eq!(
            data(EngineError::Full {
                shard: 1,
                capacity: 8
            }),
            json!({"kind": "full", "shard": 1, "capacity": 8})
        );
        assert_eq!(
            data(EngineError::ShuttingDown),
            json!({"kind": "shutting_down"})
        );
        assert_eq!(
            data(EngineError::Timeout {
                shard: 2,
                waited_ms: 5
            }),
            json!({"kind": "timeout", "shard": 2, "waited_ms": 5})
        );
        assert_eq!(
            data(EngineError::UnknownChannel(ChannelId([1; 32]))),
            json!({"kind": "unknown_channel", "channel_id": "01".repeat(32)})
        );
        assert_eq!(
            data(EngineError::UnknownConnection(3)),
            json!({"kind": "unknown_connection", "conn": 3})
        );
        assert_eq!(
            data(EngineError::DuplicateConnection(4)),
            json!({"kind": "duplicate_connection", "conn": 4})
        );
        assert_eq!(
            data(EngineError::Handshake {
                conn: 5,
                error: HandshakeError::BadVersion {
                    act: Act::One,
                    version: 1
                },
            }),
            json!({"kind": "handshake", "conn": 5})
        );
        assert_eq!(
            data(EngineError::Transport {
                conn: 6,
                error: TransportError::MessageTooLong {
                    len: 70_000,
                    max: 65_535
                },
            }),
            json!({"kind": "transport", "conn": 6})
        );
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
        assert_eq!(
            data(EngineError::Store(Arc::new(StoreError::Io {
                context: "append".into(),
                source: io,
            }))),
            json!({"kind": "store", "reason": "io"})
        );
        assert_eq!(
            data(EngineError::Store(Arc::new(StoreError::Locked {
                path: "/tmp/x".into(),
                holder_pid: Some(1),
            }))),
            json!({"kind": "store", "reason": "locked"})
        );
        assert_eq!(data(EngineError::NoStore), json!({"kind": "no_store"}));
        assert_eq!(
            data(EngineError::WrongNode {
                stored: Box::new(node()),
                ours: Box::new(node()),
            }),
            json!({"kind": "wrong_node"})
        );
        assert_eq!(
            data(EngineError::Stopped {
                reason: shard_engine::StopReason::Panicked {
                    shard: 0,
                    message: "boom".into(),
                },
            }),
            json!({"kind": "stopped"})
        );
    }

    #[test]
    fn closure_reasons_have_stable_names() {
        let cases = [
            (ClosureReason::CooperativeClosure, "cooperative_closure"),
            (ClosureReason::HolderForceClosed, "holder_force_closed"),
            (
                ClosureReason::CounterpartyForceClosed {
                    peer_msg: "bye".into(),
                },
                "counterparty_force_closed",
            ),
            (
                ClosureReason::ProcessingError { err: "x: 1".into() },
                "processing_error",
            ),
            (ClosureReason::HtlcsTimedOut, "htlcs_timed_out"),
            (ClosureReason::DisconnectedPeer, "disconnected_peer"),
            (
                ClosureReason::CommitmentTxConfirmed,
                "commitment_tx_confirmed",
            ),
            (ClosureReason::FundingTimedOut, "funding_timed_out"),
        ];
        for (reason, name) in cases {
            assert_eq!(closure_kind(&reason), name, "{reason:?}");
        }
    }
}
