//! Events: an opaque handle with a kind and one accessor per field.

use std::ffi::c_char;

use lightning_core::bitcoin::hashes::Hash;
use lightning_core::bitcoin::{consensus, OutPoint, Txid};
use lightning_core::chain::{FundingSpendKind, MonitorEvent};
use lightning_core::node::event::ClosureReason;
use lightning_core::node::Event as CoreEvent;
use lightning_core::types::PaymentHash;

use crate::bytes::{lnshard_bytes, write_bytes};
use crate::error::{invalid_parameter, lnshard_result, write_text};
use crate::handle::{Castable, HandleKind};
use crate::types::write_fixed as write;
use crate::types::{
    lnshard_channel_id, lnshard_node_id, lnshard_payment_hash, lnshard_payment_id,
    lnshard_payment_preimage, lnshard_payment_secret, lnshard_txid,
};

/// What an event is. The numbers are part of the ABI and never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lnshard_event_kind {
    /// An event this library version does not know (or a NULL event).
    Unknown = 0,
    /// Fund the channel from an `lnshard_wallet` with `lnshard_engine_fund_channel`, or
    /// build the funding transaction (`lnshard_event_build_funding_transaction`) and pass it
    /// to `lnshard_engine_funding_transaction_generated`. Fields: temporary channel id,
    /// counterparty node id, channel value, output script, user channel id.
    FundingGenerationReady = 1,
    /// The funding transaction is signed on both sides: wait for confirmations. Fields:
    /// channel id, counterparty node id, funding txo, user channel id.
    ChannelPending = 2,
    /// Payments may flow. Fields: channel id, counterparty node id, short channel id,
    /// alias, user channel id.
    ChannelReady = 3,
    /// A payment to us is committed: claim it or fail it back. Fields: payment hash,
    /// amount, payment secret, channel id (the channel it arrived on), claim deadline.
    PaymentClaimable = 4,
    /// We released a payment's preimage. Fields: payment hash, amount.
    PaymentClaimed = 5,
    /// Our payment arrived. Fields: payment id, payment hash, payment preimage, fee.
    PaymentSent = 6,
    /// Our payment failed. Fields: payment id, payment hash, failure.
    PaymentFailed = 7,
    /// We forwarded a payment and earned a fee. Fields: prev and next channel ids, fee,
    /// amount (the outbound amount).
    PaymentForwarded = 8,
    /// A channel closed. Fields: channel id, counterparty node id, closure reason and its
    /// message.
    ChannelClosed = 9,
    /// Broadcast a transaction. Fields: transaction.
    BroadcastTransaction = 10,
    /// What a channel's on-chain monitor concluded: the funding output spent, an HTLC
    /// resolved on chain, a claim confirmed, a revoked or future commitment seen, or a
    /// transaction that needs fee inputs before it can confirm (read
    /// `lnshard_event_onchain` for which). Fields: channel id, counterparty node id, the
    /// `lnshard_onchain_event` (`lnshard_event_onchain`), and for `BUMP_NEEDED` the
    /// transaction (`lnshard_event_transaction`).
    OnChain = 11,
}

/// What an `ON_CHAIN` event says (`lnshard_onchain_event.kind`). The numbers are part of
/// the ABI and never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lnshard_onchain_kind {
    /// A kind this library version does not know (only the channel is meaningful).
    Unknown = 0,
    /// A transaction spending the funding output confirmed (`txid`, `spend_kind`,
    /// `commitment_number`): the channel is closed on chain. Never broadcast an older
    /// commitment of ours after this.
    FundingSpent = 1,
    /// An HTLC we offered was fulfilled on chain (`htlc_id`, `payment_preimage` and its
    /// `payment_hash`): the engine has fulfilled it upstream.
    OutboundHtlcFulfilled = 2,
    /// An HTLC we offered is irrevocably resolved on chain without a preimage (`htlc_id`,
    /// `payment_hash`): the engine fails it upstream.
    OutboundHtlcFailed = 3,
    /// An HTLC offered to us was irrevocably claimed by us on chain (`htlc_id`,
    /// `payment_hash`, `amount_msat`).
    InboundHtlcClaimed = 4,
    /// An HTLC offered to us was taken back by the peer on chain (`htlc_id`,
    /// `payment_hash`, `amount_msat`).
    InboundHtlcLost = 5,
    /// One of our claims confirmed irrevocably (`txid`): `value_sat` now pays the sweep
    /// script.
    ClaimConfirmed = 6,
    /// The peer broadcast a revoked commitment (`txid`, `commitment_number`); our justice
    /// transactions are out.
    RevokedCommitmentSeen = 7,
    /// The funding output was spent by a commitment newer than any we know (`txid`,
    /// `commitment_number`): we lost data; only what is ours without the peer's help is
    /// claimed.
    FutureCommitmentSeen = 8,
    /// Anchor channels: a transaction (`lnshard_event_transaction`, whose id is `txid`)
    /// that pays no fee of its own must confirm by `deadline` at `feerate_per_kw`, paying
    /// at most `max_fee_sat` in fees. Add wallet inputs (and change) to it, or spend
    /// `anchor` (when `has_anchor`) with a child paying for both: `lnshard_engine_bump`
    /// does either from an `lnshard_wallet`, and `lnshard_bumper_handle` answers every
    /// request (asked again each block until it confirms) with BIP 125 replacements. Never
    /// broadcast it alone as if final.
    BumpNeeded = 9,
}

/// Which transaction spent a channel's funding output (`lnshard_onchain_event.spend_kind`).
/// The numbers are part of the ABI and never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lnshard_funding_spend_kind {
    /// Not a `FUNDING_SPENT` event, or a kind this library version does not know.
    Unknown = 0,
    /// A cooperative close: nothing to claim.
    Cooperative = 1,
    /// Our commitment.
    Holder = 2,
    /// The peer's current or next commitment.
    Counterparty = 3,
    /// A commitment the peer revoked: everything on it is ours.
    Revoked = 4,
    /// A commitment of the peer's newer than any we know: we lost state.
    Future = 5,
    /// Something else (it should not exist).
    Other = 6,
}

/// An `ON_CHAIN` event's fields, as `lnshard_event_onchain` copies them out (plain data).
/// Fields its `kind` does not use are zero (flags false).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lnshard_onchain_event {
    /// What happened.
    pub kind: lnshard_onchain_kind,
    /// The transaction it is about (32 bytes, internal byte order): the funding spend, the
    /// claim, the revoked or future commitment, or the transaction needing fees.
    pub txid: [u8; 32],
    /// `FUNDING_SPENT`: what spent it.
    pub spend_kind: lnshard_funding_spend_kind,
    /// The commitment's number (`FUNDING_SPENT` of a commitment, `REVOKED_COMMITMENT_SEEN`,
    /// `FUTURE_COMMITMENT_SEEN`).
    pub commitment_number: u64,
    /// The HTLC's id on the channel (HTLC kinds).
    pub htlc_id: u64,
    /// Whether `payment_hash` is set (HTLC kinds).
    pub has_payment_hash: bool,
    /// The HTLC's payment hash (32 bytes).
    pub payment_hash: [u8; 32],
    /// Whether `payment_preimage` is set (`OUTBOUND_HTLC_FULFILLED`).
    pub has_payment_preimage: bool,
    /// The preimage learned on chain (32 bytes).
    pub payment_preimage: [u8; 32],
    /// The HTLC's amount (`INBOUND_HTLC_CLAIMED`, `INBOUND_HTLC_LOST`).
    pub amount_msat: u64,
    /// `CLAIM_CONFIRMED`: what the claim pays the sweep script.
    pub value_sat: u64,
    /// `BUMP_NEEDED`: whether `anchor_txid`:`anchor_vout` is our anchor output to spend
    /// (commitments of anchor channels).
    pub has_anchor: bool,
    /// The anchor output's transaction (32 bytes, internal byte order).
    pub anchor_txid: [u8; 32],
    /// The anchor output's index.
    pub anchor_vout: u32,
    /// `BUMP_NEEDED`: the height by which the transaction must confirm.
    pub deadline: u32,
    /// `BUMP_NEEDED`: the feerate (sat per 1000 weight) the package should reach.
    pub feerate_per_kw: u32,
    /// `BUMP_NEEDED`: the most the fee inputs should pay in fees, in all (the value the
    /// transaction's confirmation protects).
    pub max_fee_sat: u64,
}

/// Why a channel closed. The numbers are part of the ABI and never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lnshard_closure_reason {
    /// A reason this library version does not know.
    Unknown = 0,
    /// A cooperative close completed.
    CooperativeClosure = 1,
    /// We force-closed at the application's request.
    HolderForceClosed = 2,
    /// The peer sent an `error` (its text: `lnshard_event_closure_message`).
    CounterpartyForceClosed = 3,
    /// We closed because the peer broke the protocol (what: `lnshard_event_closure_message`).
    ProcessingError = 4,
    /// An outbound HTLC was about to expire: we went on chain.
    HtlcsTimedOut = 5,
    /// The peer disconnected before the channel was funded.
    DisconnectedPeer = 6,
    /// A commitment transaction (ours or the peer's) spending the funding output confirmed:
    /// the channel is resolved on chain (`ON_CHAIN` events follow).
    CommitmentTxConfirmed = 7,
    /// As fundee, the funding transaction did not confirm in time: the channel was
    /// forgotten (nothing of ours was at stake).
    FundingTimedOut = 8,
}

/// Why a payment failed, as `lnshard_event_payment_failure` reports it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lnshard_payment_failure {
    /// Whether it failed before the HTLC left this node.
    pub local: bool,
    /// Whether `failing_hop` is set.
    pub has_failing_hop: bool,
    /// The index in the route of the hop that reported it (0 is our peer).
    pub failing_hop: u32,
    /// Whether `failing_node` is set.
    pub has_failing_node: bool,
    /// That hop's node id (33 bytes).
    pub failing_node: [u8; 33],
    /// Whether `failure_code` is set.
    pub has_failure_code: bool,
    /// The BOLT 4 `failure_code` it reported.
    pub failure_code: u16,
}

/// An event from `lnshard_engine_next_event` / `lnshard_engine_wait_event`.
///
/// Owner: the caller that received it; free it exactly once with `lnshard_event_free`.
/// Borrowed data from its accessors lives until then. Thread-safety: immutable; may be read
/// from any thread, freed from one.
pub struct lnshard_event {
    _private: [u8; 0],
}

pub(crate) struct Event(pub(crate) CoreEvent);

impl Castable for lnshard_event {
    const KIND: HandleKind = HandleKind::Event;
    type Rust = Event;
}

fn kind_of(e: &CoreEvent) -> lnshard_event_kind {
    match e {
        CoreEvent::FundingGenerationReady { .. } => lnshard_event_kind::FundingGenerationReady,
        CoreEvent::ChannelPending { .. } => lnshard_event_kind::ChannelPending,
        CoreEvent::ChannelReady { .. } => lnshard_event_kind::ChannelReady,
        CoreEvent::PaymentClaimable { .. } => lnshard_event_kind::PaymentClaimable,
        CoreEvent::PaymentClaimed { .. } => lnshard_event_kind::PaymentClaimed,
        CoreEvent::PaymentSent { .. } => lnshard_event_kind::PaymentSent,
        CoreEvent::PaymentFailed { .. } => lnshard_event_kind::PaymentFailed,
        CoreEvent::PaymentForwarded { .. } => lnshard_event_kind::PaymentForwarded,
        CoreEvent::ChannelClosed { .. } => lnshard_event_kind::ChannelClosed,
        CoreEvent::BroadcastTransaction { .. } => lnshard_event_kind::BroadcastTransaction,
        CoreEvent::OnChain { .. } => lnshard_event_kind::OnChain,
        _ => lnshard_event_kind::Unknown,
    }
}

fn no_field(e: &CoreEvent, field: &str) -> lnshard_result {
    invalid_parameter(format!("event of kind {:?} has no {field}", kind_of(e)))
}

impl crate::error::PanicValue for lnshard_event_kind {
    fn panic_value() -> Self {
        lnshard_event_kind::Unknown
    }
}

/// The event's kind: `LNSHARD_EVENT_KIND_UNKNOWN` for NULL, and for anything but a live
/// event (the last error then says why).
#[no_mangle]
pub extern "C" fn lnshard_event_get_kind(event: *const lnshard_event) -> lnshard_event_kind {
    ffi_panic_boundary! {
        kind_of(&try_handle!(event, "event").0)
    }
}

/// Frees an event. NULL is a no-op, and so is a handle of another type (the last error
/// names it); freeing twice is undefined behaviour.
#[no_mangle]
pub extern "C" fn lnshard_event_free(event: *mut lnshard_event) {
    ffi_panic_boundary! {
        drop(try_take_handle!(event, "event"));
    }
}

/// The channel id (32 bytes) of a `CHANNEL_PENDING`, `CHANNEL_READY`, `CHANNEL_CLOSED`,
/// `ON_CHAIN` or `PAYMENT_CLAIMABLE` (the channel it arrived on) event.
#[no_mangle]
pub extern "C" fn lnshard_event_channel_id(
    event: *const lnshard_event,
    out: *mut lnshard_channel_id,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out = try_out!(out, "out");
        let id = match e {
            CoreEvent::ChannelPending { channel_id, .. }
            | CoreEvent::ChannelReady { channel_id, .. }
            | CoreEvent::ChannelClosed { channel_id, .. }
            | CoreEvent::OnChain { channel_id, .. }
            | CoreEvent::PaymentClaimable { via_channel_id: channel_id, .. } => channel_id,
            _ => return no_field(e, "channel_id"),
        };
        write(out, &id.0);
        lnshard_result::Ok
    }
}

/// The temporary channel id (32 bytes) of a `FUNDING_GENERATION_READY` event.
#[no_mangle]
pub extern "C" fn lnshard_event_temporary_channel_id(
    event: *const lnshard_event,
    out: *mut lnshard_channel_id,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out = try_out!(out, "out");
        let CoreEvent::FundingGenerationReady { temporary_channel_id, .. } = e else {
            return no_field(e, "temporary_channel_id");
        };
        write(out, &temporary_channel_id.0);
        lnshard_result::Ok
    }
}

/// The peer's node id (33 bytes) of a `FUNDING_GENERATION_READY`, `CHANNEL_PENDING`,
/// `CHANNEL_READY`, `CHANNEL_CLOSED` or `ON_CHAIN` event.
#[no_mangle]
pub extern "C" fn lnshard_event_counterparty_node_id(
    event: *const lnshard_event,
    out: *mut lnshard_node_id,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out = try_out!(out, "out");
        let id = match e {
            CoreEvent::FundingGenerationReady { counterparty_node_id, .. }
            | CoreEvent::ChannelPending { counterparty_node_id, .. }
            | CoreEvent::ChannelReady { counterparty_node_id, .. }
            | CoreEvent::ChannelClosed { counterparty_node_id, .. }
            | CoreEvent::OnChain { counterparty_node_id, .. } => counterparty_node_id,
            _ => return no_field(e, "counterparty_node_id"),
        };
        write(out, &id.serialize());
        lnshard_result::Ok
    }
}

/// The application's channel id (its low 64 bits) of a `FUNDING_GENERATION_READY`,
/// `CHANNEL_PENDING` or `CHANNEL_READY` event.
#[no_mangle]
pub extern "C" fn lnshard_event_user_channel_id(
    event: *const lnshard_event,
    out: *mut u64,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out = try_mut_from_ptr!(out, "out");
        let id = match e {
            CoreEvent::FundingGenerationReady { user_channel_id, .. }
            | CoreEvent::ChannelPending { user_channel_id, .. }
            | CoreEvent::ChannelReady { user_channel_id, .. } => *user_channel_id,
            _ => return no_field(e, "user_channel_id"),
        };
        *out = id as u64;
        lnshard_result::Ok
    }
}

/// The funding amount of a `FUNDING_GENERATION_READY` event.
#[no_mangle]
pub extern "C" fn lnshard_event_channel_value_satoshis(
    event: *const lnshard_event,
    out: *mut u64,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out = try_mut_from_ptr!(out, "out");
        let CoreEvent::FundingGenerationReady { channel_value_satoshis, .. } = e else {
            return no_field(e, "channel_value_satoshis");
        };
        *out = *channel_value_satoshis;
        lnshard_result::Ok
    }
}

/// The funding output's script of a `FUNDING_GENERATION_READY` event: `*out_data` and
/// `*out_len`, borrowed from the event (valid until `lnshard_event_free`).
#[no_mangle]
pub extern "C" fn lnshard_event_output_script(
    event: *const lnshard_event,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out_data = try_mut_from_ptr!(out_data, "out_data");
        let out_len = try_mut_from_ptr!(out_len, "out_len");
        let CoreEvent::FundingGenerationReady { output_script, .. } = e else {
            return no_field(e, "output_script");
        };
        *out_data = output_script.as_bytes().as_ptr();
        *out_len = output_script.len();
        lnshard_result::Ok
    }
}

/// The funding outpoint of a `CHANNEL_PENDING` event: its txid (32 bytes, internal byte
/// order) in `out_txid`, its output index in `*out_vout`.
#[no_mangle]
pub extern "C" fn lnshard_event_funding_txo(
    event: *const lnshard_event,
    out_txid: *mut lnshard_txid,
    out_vout: *mut u32,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out_txid = try_out!(out_txid, "out_txid");
        let out_vout = try_mut_from_ptr!(out_vout, "out_vout");
        let CoreEvent::ChannelPending { funding_txo, .. } = e else {
            return no_field(e, "funding_txo");
        };
        write(out_txid, &funding_txo.txid.to_byte_array());
        *out_vout = funding_txo.vout;
        lnshard_result::Ok
    }
}

/// The real short channel id of a `CHANNEL_READY` event: `*out_found` says whether it has
/// one, and then `*out` holds it.
#[no_mangle]
pub extern "C" fn lnshard_event_short_channel_id(
    event: *const lnshard_event,
    out: *mut u64,
    out_found: *mut bool,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out = try_mut_from_ptr!(out, "out");
        let out_found = try_mut_from_ptr!(out_found, "out_found");
        let CoreEvent::ChannelReady { short_channel_id, .. } = e else {
            return no_field(e, "short_channel_id");
        };
        *out_found = short_channel_id.is_some();
        *out = short_channel_id.map_or(0, |s| s.0);
        lnshard_result::Ok
    }
}

/// The alias we gave the peer, of a `CHANNEL_READY` event: `*out_found` says whether there
/// is one, and then `*out` holds it.
#[no_mangle]
pub extern "C" fn lnshard_event_alias(
    event: *const lnshard_event,
    out: *mut u64,
    out_found: *mut bool,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out = try_mut_from_ptr!(out, "out");
        let out_found = try_mut_from_ptr!(out_found, "out_found");
        let CoreEvent::ChannelReady { alias, .. } = e else {
            return no_field(e, "alias");
        };
        *out_found = alias.is_some();
        *out = alias.map_or(0, |s| s.0);
        lnshard_result::Ok
    }
}

/// The payment hash (32 bytes) of a `PAYMENT_CLAIMABLE`, `PAYMENT_CLAIMED`, `PAYMENT_SENT`
/// or `PAYMENT_FAILED` event.
#[no_mangle]
pub extern "C" fn lnshard_event_payment_hash(
    event: *const lnshard_event,
    out: *mut lnshard_payment_hash,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out = try_out!(out, "out");
        let hash = match e {
            CoreEvent::PaymentClaimable { payment_hash, .. }
            | CoreEvent::PaymentClaimed { payment_hash, .. }
            | CoreEvent::PaymentSent { payment_hash, .. }
            | CoreEvent::PaymentFailed { payment_hash, .. } => payment_hash,
            _ => return no_field(e, "payment_hash"),
        };
        write(out, &hash.0);
        lnshard_result::Ok
    }
}

/// The amount of a `PAYMENT_CLAIMABLE` or `PAYMENT_CLAIMED` event, or the outbound amount
/// of a `PAYMENT_FORWARDED` event.
#[no_mangle]
pub extern "C" fn lnshard_event_amount_msat(
    event: *const lnshard_event,
    out: *mut u64,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out = try_mut_from_ptr!(out, "out");
        *out = match e {
            CoreEvent::PaymentClaimable { amount_msat, .. }
            | CoreEvent::PaymentClaimed { amount_msat, .. }
            | CoreEvent::PaymentForwarded { outbound_amount_msat: amount_msat, .. } => *amount_msat,
            _ => return no_field(e, "amount_msat"),
        };
        lnshard_result::Ok
    }
}

/// The payment secret of a `PAYMENT_CLAIMABLE` event: `*out_found` says whether it carried
/// one, and then `out` (32 bytes) holds it.
#[no_mangle]
pub extern "C" fn lnshard_event_payment_secret(
    event: *const lnshard_event,
    out: *mut lnshard_payment_secret,
    out_found: *mut bool,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out = try_out!(out, "out");
        let out_found = try_mut_from_ptr!(out_found, "out_found");
        let CoreEvent::PaymentClaimable { payment_secret, .. } = e else {
            return no_field(e, "payment_secret");
        };
        *out_found = payment_secret.is_some();
        if let Some(s) = payment_secret {
            write(out, &s.0);
        }
        lnshard_result::Ok
    }
}

/// The height before which a `PAYMENT_CLAIMABLE` event's payment must be claimed.
#[no_mangle]
pub extern "C" fn lnshard_event_claim_deadline(
    event: *const lnshard_event,
    out: *mut u32,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out = try_mut_from_ptr!(out, "out");
        let CoreEvent::PaymentClaimable { claim_deadline, .. } = e else {
            return no_field(e, "claim_deadline");
        };
        *out = *claim_deadline;
        lnshard_result::Ok
    }
}

/// The payment id (32 bytes) of a `PAYMENT_SENT` or `PAYMENT_FAILED` event.
#[no_mangle]
pub extern "C" fn lnshard_event_payment_id(
    event: *const lnshard_event,
    out: *mut lnshard_payment_id,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out = try_out!(out, "out");
        let id = match e {
            CoreEvent::PaymentSent { payment_id, .. } | CoreEvent::PaymentFailed { payment_id, .. } => payment_id,
            _ => return no_field(e, "payment_id"),
        };
        write(out, &id.0);
        lnshard_result::Ok
    }
}

/// The preimage (32 bytes, the proof of payment) of a `PAYMENT_SENT` event.
#[no_mangle]
pub extern "C" fn lnshard_event_payment_preimage(
    event: *const lnshard_event,
    out: *mut lnshard_payment_preimage,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out = try_out!(out, "out");
        let CoreEvent::PaymentSent { payment_preimage, .. } = e else {
            return no_field(e, "payment_preimage");
        };
        write(out, &payment_preimage.0);
        lnshard_result::Ok
    }
}

/// The fee paid (`PAYMENT_SENT`) or earned (`PAYMENT_FORWARDED`).
#[no_mangle]
pub extern "C" fn lnshard_event_fee_msat(
    event: *const lnshard_event,
    out: *mut u64,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out = try_mut_from_ptr!(out, "out");
        *out = match e {
            CoreEvent::PaymentSent { fee_paid_msat: fee, .. }
            | CoreEvent::PaymentForwarded { fee_earned_msat: fee, .. } => *fee,
            _ => return no_field(e, "fee_msat"),
        };
        lnshard_result::Ok
    }
}

/// The incoming (`out_prev`) and outgoing (`out_next`) channel ids (32 bytes each) of a
/// `PAYMENT_FORWARDED` event.
#[no_mangle]
pub extern "C" fn lnshard_event_forwarded_channels(
    event: *const lnshard_event,
    out_prev: *mut lnshard_channel_id,
    out_next: *mut lnshard_channel_id,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out_prev = try_out!(out_prev, "out_prev");
        let out_next = try_out!(out_next, "out_next");
        let CoreEvent::PaymentForwarded { prev_channel_id, next_channel_id, .. } = e else {
            return no_field(e, "forwarded_channels");
        };
        write(out_prev, &prev_channel_id.0);
        write(out_next, &next_channel_id.0);
        lnshard_result::Ok
    }
}

/// Why a `PAYMENT_FAILED` event's payment failed.
#[no_mangle]
pub extern "C" fn lnshard_event_payment_failure(
    event: *const lnshard_event,
    out: *mut lnshard_payment_failure,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out = try_mut_from_ptr!(out, "out");
        let CoreEvent::PaymentFailed { failure, .. } = e else {
            return no_field(e, "payment_failure");
        };
        *out = lnshard_payment_failure {
            local: failure.local,
            has_failing_hop: failure.failing_hop.is_some(),
            failing_hop: failure.failing_hop.map_or(0, |h| u32::try_from(h).unwrap_or(u32::MAX)),
            has_failing_node: failure.failing_node.is_some(),
            failing_node: failure.failing_node.map_or([0; 33], |n| n.serialize()),
            has_failure_code: failure.failure.is_some(),
            failure_code: failure.failure.as_ref().map_or(0, |f| f.code().0),
        };
        lnshard_result::Ok
    }
}

/// Why a `CHANNEL_CLOSED` event's channel closed.
#[no_mangle]
pub extern "C" fn lnshard_event_closure_reason(
    event: *const lnshard_event,
    out: *mut lnshard_closure_reason,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out = try_mut_from_ptr!(out, "out");
        let CoreEvent::ChannelClosed { reason, .. } = e else {
            return no_field(e, "closure_reason");
        };
        *out = match reason {
            ClosureReason::CooperativeClosure => lnshard_closure_reason::CooperativeClosure,
            ClosureReason::HolderForceClosed => lnshard_closure_reason::HolderForceClosed,
            ClosureReason::CounterpartyForceClosed { .. } => lnshard_closure_reason::CounterpartyForceClosed,
            ClosureReason::ProcessingError { .. } => lnshard_closure_reason::ProcessingError,
            ClosureReason::HtlcsTimedOut => lnshard_closure_reason::HtlcsTimedOut,
            ClosureReason::DisconnectedPeer => lnshard_closure_reason::DisconnectedPeer,
            ClosureReason::CommitmentTxConfirmed => lnshard_closure_reason::CommitmentTxConfirmed,
            ClosureReason::FundingTimedOut => lnshard_closure_reason::FundingTimedOut,
            _ => lnshard_closure_reason::Unknown,
        };
        lnshard_result::Ok
    }
}

/// The text of a `CHANNEL_CLOSED` event's reason (the peer's error, or what the peer broke;
/// empty for other reasons), copied into `buf` (`len` bytes, NUL-terminated); its length
/// without the NUL goes to `*out_n`.
#[no_mangle]
pub extern "C" fn lnshard_event_closure_message(
    event: *const lnshard_event,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let CoreEvent::ChannelClosed { reason, .. } = e else {
            return no_field(e, "closure_message");
        };
        let text = match reason {
            ClosureReason::CounterpartyForceClosed { peer_msg } => peer_msg.as_str(),
            ClosureReason::ProcessingError { err } => err.as_str(),
            _ => "",
        };
        write_text(text, buf, len, out_n, false)
    }
}

/// The transaction of a `BROADCAST_TRANSACTION` event, or the transaction needing fees of
/// an `ON_CHAIN` event of kind `BUMP_NEEDED`, serialized: `*out` is a new buffer to free
/// with `lnshard_bytes_free`.
#[no_mangle]
pub extern "C" fn lnshard_event_transaction(
    event: *const lnshard_event,
    out: *mut *mut lnshard_bytes,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out = try_out!(out, "out");
        let tx = match e {
            CoreEvent::BroadcastTransaction { tx }
            | CoreEvent::OnChain { event: MonitorEvent::BumpNeeded { tx, .. }, .. } => tx,
            _ => return no_field(e, "transaction"),
        };
        write_bytes(out, consensus::serialize(tx));
        lnshard_result::Ok
    }
}

/// The plain fields of a core monitor event.
fn onchain(event: &MonitorEvent) -> lnshard_onchain_event {
    let mut out = lnshard_onchain_event {
        kind: lnshard_onchain_kind::Unknown,
        txid: [0; 32],
        spend_kind: lnshard_funding_spend_kind::Unknown,
        commitment_number: 0,
        htlc_id: 0,
        has_payment_hash: false,
        payment_hash: [0; 32],
        has_payment_preimage: false,
        payment_preimage: [0; 32],
        amount_msat: 0,
        value_sat: 0,
        has_anchor: false,
        anchor_txid: [0; 32],
        anchor_vout: 0,
        deadline: 0,
        feerate_per_kw: 0,
        max_fee_sat: 0,
    };
    let hash = |out: &mut lnshard_onchain_event, h: &PaymentHash| {
        out.has_payment_hash = true;
        out.payment_hash = h.0;
    };
    match event {
        MonitorEvent::FundingSpent { txid, kind } => {
            out.kind = lnshard_onchain_kind::FundingSpent;
            out.txid = txid.to_byte_array();
            let (spend_kind, number) = match kind {
                FundingSpendKind::Cooperative => (lnshard_funding_spend_kind::Cooperative, 0),
                FundingSpendKind::Holder { index } => (lnshard_funding_spend_kind::Holder, *index),
                FundingSpendKind::Counterparty { index } => {
                    (lnshard_funding_spend_kind::Counterparty, *index)
                }
                FundingSpendKind::Revoked { index } => {
                    (lnshard_funding_spend_kind::Revoked, *index)
                }
                FundingSpendKind::Future { index } => (lnshard_funding_spend_kind::Future, *index),
                FundingSpendKind::Unknown => (lnshard_funding_spend_kind::Other, 0),
                #[allow(unreachable_patterns)]
                _ => (lnshard_funding_spend_kind::Unknown, 0),
            };
            out.spend_kind = spend_kind;
            out.commitment_number = number;
        }
        MonitorEvent::OutboundHtlcFulfilled { htlc_id, preimage } => {
            out.kind = lnshard_onchain_kind::OutboundHtlcFulfilled;
            out.htlc_id = *htlc_id;
            out.has_payment_preimage = true;
            out.payment_preimage = preimage.0;
            hash(&mut out, &preimage.payment_hash());
        }
        MonitorEvent::OutboundHtlcFailed {
            htlc_id,
            payment_hash,
        } => {
            out.kind = lnshard_onchain_kind::OutboundHtlcFailed;
            out.htlc_id = *htlc_id;
            hash(&mut out, payment_hash);
        }
        MonitorEvent::InboundHtlcClaimed {
            htlc_id,
            amount_msat,
            payment_hash,
        } => {
            out.kind = lnshard_onchain_kind::InboundHtlcClaimed;
            out.htlc_id = *htlc_id;
            out.amount_msat = *amount_msat;
            hash(&mut out, payment_hash);
        }
        MonitorEvent::InboundHtlcLost {
            htlc_id,
            amount_msat,
            payment_hash,
        } => {
            out.kind = lnshard_onchain_kind::InboundHtlcLost;
            out.htlc_id = *htlc_id;
            out.amount_msat = *amount_msat;
            hash(&mut out, payment_hash);
        }
        MonitorEvent::ClaimConfirmed { txid, value_sat } => {
            out.kind = lnshard_onchain_kind::ClaimConfirmed;
            out.txid = txid.to_byte_array();
            out.value_sat = *value_sat;
        }
        MonitorEvent::RevokedCommitmentSeen { txid, index } => {
            out.kind = lnshard_onchain_kind::RevokedCommitmentSeen;
            out.txid = txid.to_byte_array();
            out.commitment_number = *index;
        }
        MonitorEvent::FutureCommitmentSeen { txid, index } => {
            out.kind = lnshard_onchain_kind::FutureCommitmentSeen;
            out.txid = txid.to_byte_array();
            out.commitment_number = *index;
        }
        MonitorEvent::BumpNeeded {
            tx,
            anchor,
            deadline,
            feerate_per_kw,
            max_fee_sat,
            ..
        } => {
            out.kind = lnshard_onchain_kind::BumpNeeded;
            out.txid = tx.compute_txid().to_byte_array();
            if let Some(anchor) = anchor {
                out.has_anchor = true;
                out.anchor_txid = anchor.txid.to_byte_array();
                out.anchor_vout = anchor.vout;
            }
            out.deadline = *deadline;
            out.feerate_per_kw = *feerate_per_kw;
            out.max_fee_sat = *max_fee_sat;
        }
        #[allow(unreachable_patterns)]
        _ => {}
    }
    out
}

/// What an `ON_CHAIN` event says, copied into `*out` (its `kind` says which fields are
/// set). The transaction of a `BUMP_NEEDED` one comes from `lnshard_event_transaction`.
#[no_mangle]
pub extern "C" fn lnshard_event_onchain(
    event: *const lnshard_event,
    out: *mut lnshard_onchain_event,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let out = try_mut_from_ptr!(out, "out");
        let CoreEvent::OnChain { event, .. } = e else {
            return no_field(e, "onchain");
        };
        *out = onchain(event);
        lnshard_result::Ok
    }
}

/// Builds the funding transaction a `FUNDING_GENERATION_READY` event asks for, spending the
/// caller's UTXO `prev_txid` (32 bytes, internal byte order):`prev_vout`, worth
/// `utxo_value_sat`, with one output paying the event's script the channel value (the rest
/// is fee: `utxo_value_sat` below the channel value is `LNSHARD_RESULT_INVALID_PARAMETER`).
///
/// The input is NOT signed (its witness is empty): sign it with the wallet that owns the
/// UTXO, then pass the signed transaction to `lnshard_engine_funding_transaction_generated`.
/// Do NOT broadcast it yourself: the engine emits a `BROADCAST_TRANSACTION` event for this
/// same transaction once the peer's `funding_signed` has arrived (never before), and the
/// application broadcasts what that event carries. The engine only checks that the
/// transaction pays the funding script the right amount, so a simulated chain (as in
/// `examples/c`) can confirm it unsigned. The same as the Rust
/// `lightning_core::wallet::funding_transaction_from_utxo`.
/// On success `*out` is a new serialized transaction to free with `lnshard_bytes_free`.
#[no_mangle]
pub extern "C" fn lnshard_event_build_funding_transaction(
    event: *const lnshard_event,
    prev_txid: *const lnshard_txid,
    prev_vout: u32,
    utxo_value_sat: u64,
    out: *mut *mut lnshard_bytes,
) -> lnshard_result {
    ffi_panic_boundary! {
        let e = &try_handle!(event, "event").0;
        let txid = Txid::from_byte_array(try_array!(prev_txid, 32, "prev_txid"));
        let out = try_out!(out, "out");
        let CoreEvent::FundingGenerationReady { output_script, channel_value_satoshis, .. } = e else {
            return no_field(e, "funding request");
        };
        let utxo = OutPoint { txid, vout: prev_vout };
        let tx = match lightning_core::wallet::funding_transaction_from_utxo(
            utxo,
            utxo_value_sat,
            output_script.clone(),
            *channel_value_satoshis,
        ) {
            Ok(tx) => tx,
            Err(_) => {
                return invalid_parameter(format!(
                    "utxo_value_sat {utxo_value_sat} below the channel value {channel_value_satoshis}"
                ))
            }
        };
        write_bytes(out, consensus::serialize(&tx));
        lnshard_result::Ok
    }
}

#[cfg(test)]
mod tests {
    use lightning_core::bitcoin::absolute::LockTime;
    use lightning_core::bitcoin::hashes::{sha256, Hash};
    use lightning_core::bitcoin::transaction::Version;
    use lightning_core::bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxOut, Txid};
    use lightning_core::node::event::{ClosureReason, PaymentFailure};
    use lightning_core::node::PaymentId;
    use lightning_core::secp256k1::{PublicKey, Secp256k1, SecretKey};
    use lightning_core::types::{
        ChannelId, PaymentHash, PaymentPreimage, PaymentSecret, ShortChannelId,
    };

    use super::*;

    fn key() -> PublicKey {
        PublicKey::from_secret_key(
            &Secp256k1::new(),
            &SecretKey::from_slice(&[7; 32]).expect("valid"),
        )
    }

    fn with_event<T>(e: CoreEvent, f: impl FnOnce(*const lnshard_event) -> T) -> T {
        let ptr = crate::handle::into_handle::<lnshard_event>(Event(e));
        let out = f(ptr);
        lnshard_event_free(ptr);
        out
    }

    fn every_event() -> Vec<CoreEvent> {
        let c = ChannelId([1; 32]);
        vec![
            CoreEvent::FundingGenerationReady {
                temporary_channel_id: c,
                counterparty_node_id: key(),
                channel_value_satoshis: 5000,
                output_script: ScriptBuf::from_bytes(vec![0, 32, 9, 9]),
                user_channel_id: 42,
            },
            CoreEvent::ChannelPending {
                channel_id: c,
                counterparty_node_id: key(),
                funding_txo: OutPoint {
                    txid: Txid::from_byte_array([3; 32]),
                    vout: 1,
                },
                user_channel_id: 42,
            },
            CoreEvent::ChannelReady {
                channel_id: c,
                counterparty_node_id: key(),
                short_channel_id: Some(ShortChannelId(77)),
                alias: None,
                user_channel_id: 42,
            },
            CoreEvent::PaymentClaimable {
                payment_hash: PaymentHash([4; 32]),
                amount_msat: 1000,
                payment_secret: Some(PaymentSecret([5; 32])),
                via_channel_id: c,
                claim_deadline: 900,
            },
            CoreEvent::PaymentClaimed {
                payment_hash: PaymentHash([4; 32]),
                amount_msat: 1000,
            },
            CoreEvent::PaymentSent {
                payment_id: PaymentId([6; 32]),
                payment_hash: PaymentHash([4; 32]),
                payment_preimage: PaymentPreimage([8; 32]),
                fee_paid_msat: 3,
            },
            CoreEvent::PaymentFailed {
                payment_id: PaymentId([6; 32]),
                payment_hash: PaymentHash([4; 32]),
                failure: PaymentFailure {
                    failing_hop: Some(1),
                    failing_node: Some(key()),
                    failure: None,
                    local: false,
                },
            },
            CoreEvent::PaymentForwarded {
                prev_channel_id: c,
                next_channel_id: ChannelId([2; 32]),
                fee_earned_msat: 11,
                outbound_amount_msat: 500,
            },
            CoreEvent::ChannelClosed {
                channel_id: c,
                counterparty_node_id: key(),
                reason: ClosureReason::ProcessingError {
                    err: "bad sig".into(),
                },
            },
            CoreEvent::BroadcastTransaction {
                tx: Transaction {
                    version: Version::TWO,
                    lock_time: LockTime::ZERO,
                    input: vec![],
                    output: vec![],
                },
            },
        ]
    }

    fn onchain_event(event: MonitorEvent) -> CoreEvent {
        CoreEvent::OnChain {
            channel_id: ChannelId([1; 32]),
            counterparty_node_id: key(),
            event,
        }
    }

    fn read_onchain(e: CoreEvent) -> lnshard_onchain_event {
        with_event(e, |p| {
            assert_eq!(lnshard_event_get_kind(p), lnshard_event_kind::OnChain);
            let mut out = std::mem::MaybeUninit::<lnshard_onchain_event>::uninit();
            assert_eq!(
                lnshard_event_onchain(p, out.as_mut_ptr()),
                lnshard_result::Ok
            );
            // SAFETY: written on Ok.
            unsafe { out.assume_init() }
        })
    }

    #[test]
    fn onchain_events_carry_what_the_application_acts_on() {
        let txid = Txid::from_byte_array([7; 32]);
        // The channel and the peer, as for the other channel events.
        with_event(
            onchain_event(MonitorEvent::ClaimConfirmed {
                txid,
                value_sat: 12_345,
            }),
            |p| {
                let mut id = [0u8; 32];
                let mut node = [0u8; 33];
                assert_eq!(
                    lnshard_event_channel_id(p, id.as_mut_ptr().cast()),
                    lnshard_result::Ok
                );
                assert_eq!(id, [1; 32]);
                assert_eq!(
                    lnshard_event_counterparty_node_id(p, node.as_mut_ptr().cast()),
                    lnshard_result::Ok
                );
                assert_eq!(node, key().serialize());
                // Only a bump carries a transaction.
                let mut tx = std::ptr::null_mut();
                assert_eq!(
                    lnshard_event_transaction(p, &mut tx),
                    lnshard_result::InvalidParameter
                );
            },
        );
        let o = read_onchain(onchain_event(MonitorEvent::ClaimConfirmed {
            txid,
            value_sat: 12_345,
        }));
        assert_eq!(o.kind, lnshard_onchain_kind::ClaimConfirmed);
        assert_eq!((o.txid, o.value_sat), ([7; 32], 12_345));
        let o = read_onchain(onchain_event(MonitorEvent::FundingSpent {
            txid,
            kind: FundingSpendKind::Revoked { index: 9 },
        }));
        assert_eq!(
            (o.kind, o.spend_kind, o.commitment_number, o.txid),
            (
                lnshard_onchain_kind::FundingSpent,
                lnshard_funding_spend_kind::Revoked,
                9,
                [7; 32]
            )
        );
        let o = read_onchain(onchain_event(MonitorEvent::FundingSpent {
            txid,
            kind: FundingSpendKind::Cooperative,
        }));
        assert_eq!(o.spend_kind, lnshard_funding_spend_kind::Cooperative);
        let preimage = PaymentPreimage([8; 32]);
        let o = read_onchain(onchain_event(MonitorEvent::OutboundHtlcFulfilled {
            htlc_id: 3,
            preimage,
        }));
        assert_eq!(o.kind, lnshard_onchain_kind::OutboundHtlcFulfilled);
        assert!(o.has_payment_preimage && o.has_payment_hash);
        assert_eq!((o.htlc_id, o.payment_preimage), (3, [8; 32]));
        assert_eq!(
            o.payment_hash,
            sha256::Hash::hash(&[8; 32]).to_byte_array(),
            "the hash of the preimage learned"
        );
        let o = read_onchain(onchain_event(MonitorEvent::OutboundHtlcFailed {
            htlc_id: 4,
            payment_hash: PaymentHash([5; 32]),
        }));
        assert_eq!(
            (o.kind, o.htlc_id, o.payment_hash, o.has_payment_preimage),
            (lnshard_onchain_kind::OutboundHtlcFailed, 4, [5; 32], false)
        );
        for (event, kind) in [
            (
                MonitorEvent::InboundHtlcClaimed {
                    htlc_id: 5,
                    amount_msat: 1_000,
                    payment_hash: PaymentHash([6; 32]),
                },
                lnshard_onchain_kind::InboundHtlcClaimed,
            ),
            (
                MonitorEvent::InboundHtlcLost {
                    htlc_id: 5,
                    amount_msat: 1_000,
                    payment_hash: PaymentHash([6; 32]),
                },
                lnshard_onchain_kind::InboundHtlcLost,
            ),
        ] {
            let o = read_onchain(onchain_event(event));
            assert_eq!(
                (o.kind, o.htlc_id, o.amount_msat, o.payment_hash),
                (kind, 5, 1_000, [6; 32])
            );
        }
        for (event, kind) in [
            (
                MonitorEvent::RevokedCommitmentSeen { txid, index: 11 },
                lnshard_onchain_kind::RevokedCommitmentSeen,
            ),
            (
                MonitorEvent::FutureCommitmentSeen { txid, index: 12 },
                lnshard_onchain_kind::FutureCommitmentSeen,
            ),
        ] {
            let o = read_onchain(onchain_event(event));
            assert_eq!(o.kind, kind);
            assert_eq!(o.txid, [7; 32]);
            assert!(o.commitment_number == 11 || o.commitment_number == 12);
        }
        // A bump: the transaction, its id, the anchor, the deadline and the feerate.
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![],
            output: vec![TxOut {
                value: Amount::from_sat(330),
                script_pubkey: ScriptBuf::new(),
            }],
        };
        let bump = onchain_event(MonitorEvent::BumpNeeded {
            tx: tx.clone(),
            anchor: Some(OutPoint { txid, vout: 2 }),
            deadline: 850,
            feerate_per_kw: 5_000,
            max_fee_sat: 40_000,
        });
        let o = read_onchain(bump.clone());
        assert_eq!(o.kind, lnshard_onchain_kind::BumpNeeded);
        assert_eq!(o.txid, tx.compute_txid().to_byte_array());
        assert!(o.has_anchor);
        assert_eq!(
            (
                o.anchor_txid,
                o.anchor_vout,
                o.deadline,
                o.feerate_per_kw,
                o.max_fee_sat
            ),
            ([7; 32], 2, 850, 5_000, 40_000)
        );
        with_event(bump, |p| {
            let mut bytes = std::ptr::null_mut();
            assert_eq!(lnshard_event_transaction(p, &mut bytes), lnshard_result::Ok);
            let got = crate::handle::get(bytes.cast_const(), "bytes")
                .expect("a live buffer")
                .expect("not NULL");
            assert_eq!(got.0, consensus::serialize(&tx));
            crate::bytes::lnshard_bytes_free(bytes);
        });
        // Another kind has no on-chain fields.
        let closed = CoreEvent::ChannelClosed {
            channel_id: ChannelId([1; 32]),
            counterparty_node_id: key(),
            reason: ClosureReason::CommitmentTxConfirmed,
        };
        with_event(closed, |p| {
            let mut out = std::mem::MaybeUninit::<lnshard_onchain_event>::uninit();
            assert_eq!(
                lnshard_event_onchain(p, out.as_mut_ptr()),
                lnshard_result::InvalidParameter
            );
            let mut reason = lnshard_closure_reason::Unknown;
            assert_eq!(
                lnshard_event_closure_reason(p, &mut reason),
                lnshard_result::Ok
            );
            assert_eq!(reason, lnshard_closure_reason::CommitmentTxConfirmed);
        });
    }

    #[test]
    fn every_event_variant_has_its_kind() {
        let kinds: Vec<u32> = every_event()
            .into_iter()
            .map(|e| with_event(e, |p| lnshard_event_get_kind(p) as u32))
            .collect();
        assert_eq!(kinds, (1..=10).collect::<Vec<u32>>());
    }

    #[test]
    fn accessors_read_their_fields_and_refuse_other_kinds() {
        let events = every_event();
        let mut buf32 = [0u8; 32];
        let mut buf33 = [0u8; 33];
        let mut n = 0u64;
        let mut found = false;
        // channel_id: present on pending, ready, claimable, closed only.
        let has_channel_id: Vec<bool> = events
            .iter()
            .map(|e| {
                with_event(e.clone(), |p| {
                    lnshard_event_channel_id(p, buf32.as_mut_ptr().cast()) == lnshard_result::Ok
                })
            })
            .collect();
        assert_eq!(
            has_channel_id,
            [false, true, true, true, false, false, false, false, true, false]
        );
        let [fgr, pending, ready, claimable, _, sent, failed, forwarded, closed, broadcast] =
            <[CoreEvent; 10]>::try_from(events).expect("ten events");
        with_event(fgr.clone(), |p| {
            assert_eq!(
                lnshard_event_channel_value_satoshis(p, &mut n),
                lnshard_result::Ok
            );
            assert_eq!(n, 5000);
            assert_eq!(lnshard_event_user_channel_id(p, &mut n), lnshard_result::Ok);
            assert_eq!(n, 42);
            let (mut data, mut len) = (std::ptr::null(), 0usize);
            assert_eq!(
                lnshard_event_output_script(p, &mut data, &mut len),
                lnshard_result::Ok
            );
            assert_eq!(len, 4);
            assert_eq!(
                lnshard_event_counterparty_node_id(p, buf33.as_mut_ptr().cast()),
                lnshard_result::Ok
            );
            assert_eq!(buf33, key().serialize());
            let mut tx = std::ptr::null_mut();
            assert_eq!(
                lnshard_event_build_funding_transaction(
                    p,
                    [9u8; 32].as_ptr().cast(),
                    0,
                    4999,
                    &mut tx
                ),
                lnshard_result::InvalidParameter
            );
            assert_eq!(
                lnshard_event_build_funding_transaction(
                    p,
                    [9u8; 32].as_ptr().cast(),
                    0,
                    6000,
                    &mut tx
                ),
                lnshard_result::Ok
            );
            let bytes = crate::handle::get(tx.cast_const(), "tx")
                .expect("a live buffer")
                .expect("not NULL");
            let decoded: Transaction = consensus::deserialize(&bytes.0).expect("decodes");
            assert_eq!(decoded.output[0].value, Amount::from_sat(5000));
            crate::bytes::lnshard_bytes_free(tx);
        });
        with_event(pending, |p| {
            let mut vout = 0;
            assert_eq!(
                lnshard_event_funding_txo(p, buf32.as_mut_ptr().cast(), &mut vout),
                lnshard_result::Ok
            );
            assert_eq!((buf32, vout), ([3; 32], 1));
        });
        with_event(ready, |p| {
            assert_eq!(
                lnshard_event_short_channel_id(p, &mut n, &mut found),
                lnshard_result::Ok
            );
            assert_eq!((n, found), (77, true));
            assert_eq!(
                lnshard_event_alias(p, &mut n, &mut found),
                lnshard_result::Ok
            );
            assert!(!found);
        });
        with_event(claimable, |p| {
            assert_eq!(
                lnshard_event_payment_secret(p, buf32.as_mut_ptr().cast(), &mut found),
                lnshard_result::Ok
            );
            assert_eq!((buf32, found), ([5; 32], true));
            let mut deadline = 0;
            assert_eq!(
                lnshard_event_claim_deadline(p, &mut deadline),
                lnshard_result::Ok
            );
            assert_eq!(deadline, 900);
            assert_eq!(lnshard_event_amount_msat(p, &mut n), lnshard_result::Ok);
            assert_eq!(n, 1000);
        });
        with_event(sent, |p| {
            assert_eq!(
                lnshard_event_payment_preimage(p, buf32.as_mut_ptr().cast()),
                lnshard_result::Ok
            );
            assert_eq!(buf32, [8; 32]);
            assert_eq!(
                lnshard_event_payment_id(p, buf32.as_mut_ptr().cast()),
                lnshard_result::Ok
            );
            assert_eq!(buf32, [6; 32]);
            assert_eq!(lnshard_event_fee_msat(p, &mut n), lnshard_result::Ok);
            assert_eq!(n, 3);
        });
        with_event(failed, |p| {
            let mut f = std::mem::MaybeUninit::<lnshard_payment_failure>::uninit();
            assert_eq!(
                lnshard_event_payment_failure(p, f.as_mut_ptr()),
                lnshard_result::Ok
            );
            // SAFETY: written on Ok.
            let f = unsafe { f.assume_init() };
            assert!(f.has_failing_hop && f.failing_hop == 1 && !f.has_failure_code && !f.local);
            assert_eq!(
                lnshard_event_payment_hash(p, buf32.as_mut_ptr().cast()),
                lnshard_result::Ok
            );
        });
        with_event(forwarded, |p| {
            let mut next = [0u8; 32];
            assert_eq!(
                lnshard_event_forwarded_channels(
                    p,
                    buf32.as_mut_ptr().cast(),
                    next.as_mut_ptr().cast()
                ),
                lnshard_result::Ok
            );
            assert_eq!((buf32, next), ([1; 32], [2; 32]));
            assert_eq!(lnshard_event_fee_msat(p, &mut n), lnshard_result::Ok);
            assert_eq!(n, 11);
        });
        with_event(closed, |p| {
            let mut reason = lnshard_closure_reason::Unknown;
            assert_eq!(
                lnshard_event_closure_reason(p, &mut reason),
                lnshard_result::Ok
            );
            assert_eq!(reason, lnshard_closure_reason::ProcessingError);
            let mut text = [0 as c_char; 32];
            let mut len = 0usize;
            assert_eq!(
                lnshard_event_closure_message(p, text.as_mut_ptr(), text.len(), &mut len),
                lnshard_result::Ok
            );
            assert_eq!(len, "bad sig".len());
        });
        with_event(broadcast, |p| {
            let mut tx = std::ptr::null_mut();
            assert_eq!(lnshard_event_transaction(p, &mut tx), lnshard_result::Ok);
            assert!(crate::bytes::lnshard_bytes_len(tx) > 0);
            crate::bytes::lnshard_bytes_free(tx);
            // A field this kind does not have: the message names the kind and the field.
            assert_eq!(
                lnshard_event_payment_hash(p, buf32.as_mut_ptr().cast()),
                lnshard_result::InvalidParameter
            );
            let mut msg = [0 as c_char; 128];
            let mut len = 0usize;
            crate::error::lnshard_last_error_message(msg.as_mut_ptr(), msg.len(), &mut len);
            // SAFETY: NUL-terminated by the call.
            let msg = unsafe { std::ffi::CStr::from_ptr(msg.as_ptr()) };
            assert_eq!(
                msg.to_str().expect("utf-8"),
                "event of kind BroadcastTransaction has no payment_hash"
            );
        });
        // The funding request's temporary channel id.
        with_event(fgr, |p| {
            assert_eq!(
                lnshard_event_temporary_channel_id(p, buf32.as_mut_ptr().cast()),
                lnshard_result::Ok
            );
            assert_eq!(buf32, [1; 32]);
        });
    }
}
