//! [`ChannelError`]: what went wrong ([`ChannelErrorReason`]) and what the caller must do
//! about it (the variant).

use core::fmt;

use crate::keys::KeyError;
use crate::secrets::SecretError;
use crate::transactions::{CommitmentError, Side, SignatureError};
use crate::types::ChannelId;
use crate::wire::{ErrorMessage, Features, Message, Warning};

use super::spec::ReduceError;

/// A refused call or a protocol violation, in LDK's shape: each variant says what the caller
/// must do and carries the typed reason, whose text goes in the BOLT 1 `warning` / `error`
/// message.
///
/// Unless stated otherwise, the channel's state is unchanged when a method returns an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelError {
    /// Nothing to send: a local call was refused, or a harmless message is dropped. The
    /// channel is unchanged.
    Ignore(ChannelErrorReason),
    /// Send a `warning` with this reason (and typically disconnect); the channel is unchanged
    /// and stays open.
    Warn(ChannelErrorReason),
    /// Fail the channel: send an `error` with this reason and broadcast the latest holder
    /// commitment ([`super::Channel::force_close`]).
    Close(ChannelErrorReason),
    /// Our state is outdated (the peer proved it in `channel_reestablish`): send an `error`
    /// with this reason asking the peer to close, and never broadcast our own commitment,
    /// which is revoked. The channel is closed.
    CloseNoBroadcast(ChannelErrorReason),
}

/// What went wrong in a channel, with the offending values and the limits they broke. Its
/// `Display` is the lower-case text sent in a BOLT 1 `warning` or `error`.
///
/// Fields named `message` hold the BOLT 2 message concerned (`"update_fee"`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelErrorReason {
    // --- Messages out of place ---
    /// A message names another channel than this one.
    WrongChannelId {
        /// The message.
        message: &'static str,
    },
    /// A message names another temporary channel id than this one's.
    WrongTemporaryChannelId {
        /// The message.
        message: &'static str,
    },
    /// A message that this phase of the channel does not expect.
    UnexpectedMessage {
        /// The message.
        message: &'static str,
    },
    /// An update, `commitment_signed` or `revoke_and_ack` before the channel is open.
    BeforeOpen {
        /// The message.
        message: &'static str,
    },
    /// A message that must wait for `channel_reestablish` after a reconnection.
    BeforeReestablish {
        /// The message.
        message: &'static str,
    },
    /// An update, `commitment_signed` or `revoke_and_ack` during closing negotiation.
    DuringClosingNegotiation {
        /// The message.
        message: &'static str,
    },
    /// A message of this type arrived for a closed channel.
    MessageForClosedChannel {
        /// Its BOLT 1 type.
        message_type: u16,
    },
    /// A message of this type is not for the channel state machine.
    NotAChannelMessage {
        /// Its BOLT 1 type.
        message_type: u16,
    },

    // --- Opening ---
    /// `open_channel` is for another chain.
    WrongChain,
    /// A field is below the protocol's minimum.
    BelowMinimum {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The minimum.
        min: u64,
    },
    /// A field is above the protocol's maximum.
    AboveMaximum {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The maximum.
        max: u64,
    },
    /// A field of the peer's is above the maximum our configuration accepts.
    AboveOurMaximum {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// Our maximum.
        max: u64,
    },
    /// A field is outside the range we accept.
    OutsideRange {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The lowest value accepted.
        min: u64,
        /// The highest value accepted.
        max: u64,
    },
    /// The peer's `channel_reserve_satoshis` is below our `dust_limit_satoshis`.
    ReserveBelowOurDustLimit {
        /// The peer's reserve.
        channel_reserve_satoshis: u64,
        /// Our dust limit.
        dust_limit_satoshis: u64,
    },
    /// The peer's `max_htlc_value_in_flight_msat` is 0.
    ZeroMaxHtlcValueInFlight,
    /// `push_msat` is above the funding amount.
    PushAboveFunding {
        /// The push.
        push_msat: u64,
        /// The funding.
        funding_satoshis: u64,
    },
    /// A channel of `1 << 24` satoshis or more without `option_support_large_channel`.
    LargeChannelNotNegotiated {
        /// The funding.
        funding_satoshis: u64,
    },
    /// The peer's `dust_limit_satoshis` is above a channel reserve.
    DustLimitAboveReserve {
        /// The peer's dust limit.
        dust_limit_satoshis: u64,
        /// The reserve.
        channel_reserve_satoshis: u64,
        /// Whether the reserve is ours (else the one the peer announced).
        ours: bool,
    },
    /// `open_channel` or `accept_channel` has no `channel_type`.
    NoChannelType {
        /// The message.
        message: &'static str,
    },
    /// The peer's `channel_type` is not one we support.
    UnsupportedChannelType {
        /// The peer's bits.
        channel_type: Features,
    },
    /// `accept_channel`'s `channel_type` is not the one we proposed.
    ChannelTypeMismatch {
        /// The peer's bits.
        channel_type: Features,
    },
    /// The peer's `upfront_shutdown_script` is not a standard form.
    NonStandardUpfrontShutdownScript,
    /// Our own shutdown script is not a standard form.
    OurShutdownScriptNonStandard,
    /// The funder cannot pay the first commitment's fee.
    FunderCannotPayFirstFee {
        /// The funder's balance.
        balance_msat: u64,
        /// The fee.
        fee_msat: u64,
    },
    /// Neither side's initial balance is above its channel reserve.
    BothBalancesAtReserve,
    /// `funding_transaction_built` outside `AwaitingFundingTransaction`.
    NotAwaitingFundingTransaction,
    /// The funding output's index does not fit in 16 bits.
    FundingOutputIndexTooLarge {
        /// The index.
        vout: u32,
    },
    /// A signature of the first commitment does not verify.
    BadFundingSignature {
        /// The message that carried it (`funding_created` or `funding_signed`).
        message: &'static str,
    },
    /// The funding transaction confirmed before the first commitments were signed.
    FundingNotSigned,
    /// A retransmitted `channel_ready` carries another per-commitment point.
    ChannelReadyPointChanged,

    // --- Commitments and revocations ---
    /// The keys of a commitment could not be derived.
    CommitmentKeys {
        /// Whose commitment: [`Side::Local`] is ours.
        side: Side,
        /// Its number.
        index: u64,
        /// Why.
        error: KeyError,
    },
    /// A commitment transaction could not be built.
    BuildCommitment {
        /// Whose commitment: [`Side::Local`] is ours.
        side: Side,
        /// Its number.
        index: u64,
        /// Why.
        error: CommitmentError,
    },
    /// The next commitment's content could not be computed from the changes.
    NextCommitment {
        /// Whose commitment: [`Side::Local`] is ours.
        side: Side,
        /// Why.
        error: ReduceError,
    },
    /// No funding outpoint is known yet.
    NoFundingOutpoint,
    /// The peer has not given its next per-commitment point yet.
    NoNextRemotePoint,
    /// Our HTLC key for the peer's next commitment could not be derived.
    HtlcKey {
        /// Why.
        error: KeyError,
    },
    /// A commitment number is above the 48-bit range.
    CommitmentNumberTooLarge {
        /// The number.
        index: u64,
    },
    /// Our per-commitment point could not be derived.
    PerCommitmentPoint {
        /// The commitment number.
        index: u64,
        /// Why.
        error: KeyError,
    },
    /// Our per-commitment secret could not be derived.
    PerCommitmentSecret {
        /// The commitment number.
        index: u64,
        /// Why.
        error: KeyError,
    },
    /// `commitment_signed` with nothing to sign.
    CommitmentSignedWithoutChanges,
    /// The commitment signature does not verify.
    BadCommitmentSignature {
        /// The commitment number.
        index: u64,
    },
    /// `commitment_signed` carries another number of HTLC signatures than the commitment has
    /// HTLC outputs.
    HtlcSignatureCount {
        /// The commitment number.
        index: u64,
        /// Signatures received.
        received: usize,
        /// HTLC outputs of the commitment.
        expected: usize,
    },
    /// An HTLC signature does not verify.
    BadHtlcSignature {
        /// The commitment number.
        index: u64,
        /// The HTLC's output index in the commitment.
        output: u32,
    },
    /// `revoke_and_ack` when no commitment awaits revocation.
    NoCommitmentAwaitsRevocation,
    /// `per_commitment_secret` is not a valid secret key.
    InvalidPerCommitmentSecret,
    /// `per_commitment_secret` does not match the point of the revoked commitment.
    SecretMismatchesPoint {
        /// The revoked commitment's number.
        index: u64,
    },
    /// The per-commitment secret store refused the secret.
    SecretRejected {
        /// Why.
        error: SecretError,
    },

    // --- Reestablishment ---
    /// `channel_reestablish` before ours was sent.
    ReestablishBeforeOurs,
    /// `channel_reestablish` before the channel was funded.
    ReestablishBeforeFunding,
    /// `next_commitment_number` 0: the peer asks us to close.
    PeerAsksToClose,
    /// `your_last_per_commitment_secret` is not our secret.
    WrongLastSecret {
        /// The number of our commitment whose secret it should be.
        index: u64,
    },
    /// The peer's `next_revocation_number` is behind our commitment: it has old state.
    PeerRevocationBehind {
        /// The peer's `next_revocation_number`.
        next_revocation_number: u64,
        /// Our commitment number.
        local_commitment: u64,
    },
    /// The peer proved that our commitment is outdated.
    OurStateOutdated {
        /// The peer's `next_revocation_number`.
        next_revocation_number: u64,
        /// Our commitment number.
        local_commitment: u64,
    },
    /// The peer's `next_revocation_number` is ahead of our commitment without proof.
    PeerRevocationAheadWithoutProof {
        /// The peer's `next_revocation_number`.
        next_revocation_number: u64,
        /// Our commitment number.
        local_commitment: u64,
    },
    /// The peer's `next_commitment_number` is behind its latest commitment.
    PeerCommitmentBehind {
        /// The peer's `next_commitment_number`.
        next_commitment_number: u64,
        /// The peer's latest commitment number.
        remote_commitment: u64,
    },
    /// The peer's `next_commitment_number` is ahead of its latest commitment.
    PeerCommitmentAhead {
        /// The peer's `next_commitment_number`.
        next_commitment_number: u64,
        /// The peer's latest commitment number.
        remote_commitment: u64,
    },

    // --- HTLCs and fees ---
    /// The channel is not open.
    NotOpen,
    /// Closing negotiation has started.
    ClosingNegotiationStarted,
    /// The channel is shutting down: no new HTLC.
    ShuttingDown,
    /// An HTLC is below the receiver's `htlc_minimum_msat` (or is 0).
    HtlcBelowMinimum {
        /// Whose minimum: [`Side::Local`] is ours (the peer offered), [`Side::Remote`] the
        /// peer's (we would offer).
        side: Side,
        /// The HTLC's amount.
        amount_msat: u64,
        /// The minimum (at least 1).
        htlc_minimum_msat: u64,
    },
    /// An HTLC's `cltv_expiry` is not below the protocol's limit.
    CltvExpiryTooLarge {
        /// The expiry.
        cltv_expiry: u32,
        /// The limit it must stay below.
        limit: u32,
    },
    /// Our HTLC would put the peer's commitment above its `max_accepted_htlcs`.
    WouldExceedMaxAcceptedHtlcs {
        /// HTLCs there would be.
        count: usize,
        /// The peer's maximum.
        max: u16,
    },
    /// The peer's HTLCs are above our `max_accepted_htlcs`.
    PeerExceedsMaxAcceptedHtlcs {
        /// HTLCs from the peer.
        count: usize,
        /// Our maximum.
        max: u16,
    },
    /// Our HTLC would put more in flight than the peer's `max_htlc_value_in_flight_msat`.
    WouldExceedMaxInFlight {
        /// The total in flight.
        in_flight_msat: u64,
        /// The peer's maximum.
        max_msat: u64,
    },
    /// The peer has more in flight than our `max_htlc_value_in_flight_msat`.
    PeerExceedsMaxInFlight {
        /// The total in flight.
        in_flight_msat: u64,
        /// Our maximum.
        max_msat: u64,
    },
    /// Our balance after the HTLC would be below the peer's reserve plus fees.
    BalanceBelowReserve {
        /// Our balance.
        balance_msat: u64,
        /// The reserve plus fees.
        needed_msat: u64,
    },
    /// As funder, our balance cannot pay our commitment's fee above the reserve.
    CannotPayCommitmentFee {
        /// Our balance.
        balance_msat: u64,
        /// The fee.
        fee_msat: u64,
    },
    /// The funder (the peer) could not pay the commitment fee above its reserve with our
    /// HTLC.
    FunderCannotPayWithHtlc {
        /// The funder's balance.
        balance_msat: u64,
        /// Its reserve plus the fee.
        needed_msat: u64,
    },
    /// Our dust HTLC exposure would be above our maximum.
    DustExposure {
        /// The exposure.
        exposure_msat: u64,
        /// Our maximum.
        max_msat: u64,
    },
    /// No irrevocably committed inbound HTLC has this id.
    NoCommittedInboundHtlc {
        /// The id.
        id: u64,
    },
    /// An HTLC's removal is under way already.
    HtlcAlreadyRemoved {
        /// The HTLC's id.
        id: u64,
        /// How it is being removed.
        removal: Removal,
    },
    /// The preimage we were given does not match the HTLC's payment hash.
    PreimageMismatch {
        /// The HTLC's id.
        id: u64,
    },
    /// The peer's `update_fulfill_htlc` preimage does not hash to the HTLC's payment hash.
    PeerPreimageMismatch {
        /// The HTLC's id.
        id: u64,
    },
    /// The peer fulfilled the same HTLC twice (harmless).
    DuplicateFulfill {
        /// The HTLC's id.
        id: u64,
    },
    /// A failure reason longer than a message can carry.
    FailureReasonTooLong {
        /// Its length.
        len: usize,
        /// The limit, 65535.
        max: usize,
    },
    /// Our `failure_code` for a malformed HTLC lacks the BADONION bit.
    FailureCodeLacksBadonion {
        /// The code.
        failure_code: u16,
    },
    /// The peer's `update_fail_malformed_htlc` `failure_code` lacks the BADONION bit.
    PeerFailureCodeLacksBadonion {
        /// The code.
        failure_code: u16,
    },
    /// Only the funder sends `update_fee`.
    NotFunder,
    /// No `update_fee` once shutting down without HTLCs.
    UpdateFeeWhileShuttingDown,
    /// A change could not be applied to a commitment's content.
    Spec {
        /// What was being done (`"cannot add htlc"`, `"update_fee"`, ...).
        during: &'static str,
        /// Why.
        error: ReduceError,
    },
    /// As funder, we cannot afford this feerate above the peer's reserve.
    CannotAffordFeerate {
        /// The feerate.
        feerate_per_kw: u32,
    },
    /// The peer's `update_add_htlc` after its `shutdown`.
    AddAfterShutdown,
    /// The peer's `update_add_htlc` id is not the next one.
    UnexpectedHtlcId {
        /// The id received.
        id: u64,
        /// The id expected.
        expected: u64,
    },
    /// The peer's balance after its HTLC is below our reserve plus fees.
    PeerBalanceBelowReserve {
        /// The peer's balance.
        balance_msat: u64,
        /// The HTLC's amount.
        amount_msat: u64,
        /// Our reserve plus fees.
        needed_msat: u64,
    },
    /// The peer removes an HTLC of ours that is not in our commitment.
    UnknownHtlc {
        /// The message.
        message: &'static str,
        /// The id.
        id: u64,
    },
    /// `update_fee` from the peer, which is not the funder.
    UpdateFeeFromNonFunder,
    /// The funder (the peer) cannot afford its new feerate.
    FunderCannotAffordFeerate {
        /// The feerate.
        feerate_per_kw: u32,
        /// The funder's balance.
        balance_msat: u64,
        /// Our reserve plus the fee.
        needed_msat: u64,
    },
    /// An outbound HTLC is still in our commitment past its deadline.
    OutboundHtlcTimedOut {
        /// The HTLC's id.
        id: u64,
        /// Its expiry.
        cltv_expiry: u32,
        /// The block height.
        height: u32,
    },
    /// An inbound HTLC we claimed is not removed close to its expiry.
    ClaimedHtlcNotRemoved {
        /// The HTLC's id.
        id: u64,
        /// Its expiry.
        cltv_expiry: u32,
        /// The block height.
        height: u32,
    },

    // --- Closing ---
    /// `shutdown` on a channel that is not funded or already closed.
    NotFundedOrClosed,
    /// The peer's shutdown script is not a standard form.
    NonStandardShutdownScript,
    /// The peer's shutdown script is not its upfront shutdown script.
    ShutdownScriptNotUpfront,
    /// The peer's shutdown script changed.
    ShutdownScriptChanged,
    /// The peer's `shutdown` while it has unsigned updates.
    ShutdownWithUnsignedUpdates,
    /// No shutdown script from the peer yet.
    NoRemoteShutdownScript,
    /// A closing fee above the funder's balance.
    ClosingFeeAboveFunderBalance {
        /// The fee.
        fee_satoshis: u64,
        /// The funder's balance.
        balance_satoshis: u64,
    },
    /// The closing transaction would have no output.
    ClosingTxWithoutOutput,
    /// The closing transaction's sighash could not be computed.
    ClosingSighash {
        /// Why.
        error: SignatureError,
    },
    /// `closing_signed`'s signature does not verify.
    BadClosingSignature {
        /// The fee it signs.
        fee_satoshis: u64,
    },
    /// `closing_signed` before the channel is clean.
    ClosingSignedBeforeClean,
    /// The peer's closing fee range does not overlap ours.
    ClosingFeeRangeNoOverlap {
        /// The peer's minimum.
        their_min: u64,
        /// The peer's maximum.
        their_max: u64,
        /// Our minimum.
        our_min: u64,
        /// Our maximum.
        our_max: u64,
    },
    /// The funder's closing fee differs from the one we sent.
    ClosingFeeChanged {
        /// The fee.
        fee_satoshis: u64,
    },
    /// The closing fee is outside the overlap of both ranges.
    ClosingFeeOutsideOverlap {
        /// The fee.
        fee_satoshis: u64,
        /// The overlap's lowest fee.
        min: u64,
        /// The overlap's highest fee.
        max: u64,
    },
    /// A legacy closing fee proposal is not strictly between the last two.
    ClosingFeeNotBetween {
        /// The fee.
        fee_satoshis: u64,
        /// The lower of the last two.
        low: u64,
        /// The higher of the last two.
        high: u64,
    },
    /// No commitment signed by the peer to broadcast.
    NoSignedCommitment,
}

/// How an HTLC is already being removed ([`ChannelErrorReason::HtlcAlreadyRemoved`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Removal {
    /// Removed one way or the other.
    Removed,
    /// Fulfilled.
    Fulfilled,
    /// Failed.
    Failed,
}

impl fmt::Display for ChannelErrorReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ChannelErrorReason as R;
        let our = |side: &Side| match side {
            Side::Local => "our",
            Side::Remote => "remote",
        };
        match self {
            R::WrongChannelId { message } => write!(f, "{message} for another channel_id"),
            R::WrongTemporaryChannelId { message } => {
                write!(f, "{message} for another temporary_channel_id")
            }
            R::UnexpectedMessage { message } => write!(f, "unexpected {message}"),
            R::BeforeOpen { message } => {
                write!(f, "unexpected {message} before the channel is open")
            }
            R::BeforeReestablish { message } => {
                write!(f, "unexpected {message} before channel_reestablish")
            }
            R::DuringClosingNegotiation { message } => {
                write!(f, "unexpected {message} during closing negotiation")
            }
            R::MessageForClosedChannel { message_type } => {
                write!(f, "message type {message_type} for a closed channel")
            }
            R::NotAChannelMessage { message_type } => write!(
                f,
                "message type {message_type} is not for the channel state machine"
            ),
            R::WrongChain => write!(f, "open_channel chain_hash is not our chain"),
            R::BelowMinimum { field, value, min } => {
                write!(f, "{field} {value} is below the minimum {min}")
            }
            R::AboveMaximum { field, value, max } => {
                write!(f, "{field} {value} is above the maximum {max}")
            }
            R::AboveOurMaximum { field, value, max } => {
                write!(f, "{field} {value} is above our maximum {max}")
            }
            R::OutsideRange {
                field,
                value,
                min,
                max,
            } => write!(f, "{field} {value} is outside {min}..={max}"),
            R::ReserveBelowOurDustLimit {
                channel_reserve_satoshis,
                dust_limit_satoshis,
            } => write!(
                f,
                "channel_reserve_satoshis {channel_reserve_satoshis} is below our \
                 dust_limit_satoshis {dust_limit_satoshis}"
            ),
            R::ZeroMaxHtlcValueInFlight => {
                write!(f, "max_htlc_value_in_flight_msat 0 is too small")
            }
            R::PushAboveFunding {
                push_msat,
                funding_satoshis,
            } => write!(
                f,
                "push_msat {push_msat} is above funding_satoshis {funding_satoshis} * 1000"
            ),
            R::LargeChannelNotNegotiated { funding_satoshis } => write!(
                f,
                "funding_satoshis {funding_satoshis} needs option_support_large_channel"
            ),
            R::DustLimitAboveReserve {
                dust_limit_satoshis,
                channel_reserve_satoshis,
                ours,
            } => write!(
                f,
                "dust_limit_satoshis {dust_limit_satoshis} is above {}channel_reserve_satoshis \
                 {channel_reserve_satoshis}",
                if *ours { "our " } else { "" }
            ),
            R::NoChannelType { message } => write!(f, "{message} has no channel_type"),
            R::UnsupportedChannelType { channel_type } => {
                // The peer chose the bitmap's length: show it only when short.
                let len = channel_type.to_wire_bytes().len();
                if len <= 16 {
                    write!(f, "channel_type {channel_type:?} is not supported")
                } else {
                    write!(f, "channel_type of {len} bytes is not supported")
                }
            }
            R::ChannelTypeMismatch { channel_type } => write!(
                f,
                "accept_channel channel_type {channel_type:?} differs from ours"
            ),
            R::NonStandardUpfrontShutdownScript => {
                write!(f, "upfront_shutdown_script is not a standard form")
            }
            R::OurShutdownScriptNonStandard => {
                write!(f, "our shutdown script is not a standard form")
            }
            R::FunderCannotPayFirstFee {
                balance_msat,
                fee_msat,
            } => write!(
                f,
                "funder balance {balance_msat} msat cannot pay the first commitment fee \
                 {fee_msat} msat"
            ),
            R::BothBalancesAtReserve => {
                write!(
                    f,
                    "both initial balances are at or below the channel reserve"
                )
            }
            R::NotAwaitingFundingTransaction => {
                write!(f, "not waiting for a funding transaction")
            }
            R::FundingOutputIndexTooLarge { vout } => {
                write!(f, "funding output index {vout} is above 65535")
            }
            R::BadFundingSignature { message } => {
                write!(f, "{message} signature does not verify")
            }
            R::FundingNotSigned => write!(f, "funding is not signed yet"),
            R::ChannelReadyPointChanged => {
                write!(f, "retransmitted channel_ready changed its point")
            }
            R::CommitmentKeys { side, index, error } => write!(
                f,
                "cannot derive keys of {} commitment {index}: {error}",
                our(side)
            ),
            R::BuildCommitment { side, index, error } => {
                write!(f, "cannot build {} commitment {index}: {error}", our(side))
            }
            R::NextCommitment { side, error } => match side {
                Side::Local => write!(f, "cannot build our next commitment: {error}"),
                Side::Remote => write!(f, "cannot build the next remote commitment: {error}"),
            },
            R::NoFundingOutpoint => write!(f, "no funding outpoint yet"),
            R::NoNextRemotePoint => write!(f, "no next per-commitment point from the peer"),
            R::HtlcKey { error } => write!(f, "cannot derive our htlc key: {error}"),
            R::CommitmentNumberTooLarge { index } => {
                write!(f, "commitment number {index} is above 2^48-1")
            }
            R::PerCommitmentPoint { index, error } => {
                write!(f, "per-commitment point {index}: {error}")
            }
            R::PerCommitmentSecret { index, error } => {
                write!(f, "per-commitment secret {index}: {error}")
            }
            R::CommitmentSignedWithoutChanges => write!(f, "commitment_signed without changes"),
            R::BadCommitmentSignature { index } => write!(
                f,
                "commitment_signed signature does not verify for commitment {index}"
            ),
            R::HtlcSignatureCount {
                index,
                received,
                expected,
            } => write!(
                f,
                "commitment_signed has {received} htlc signatures, commitment {index} has \
                 {expected} htlc outputs"
            ),
            R::BadHtlcSignature { index, output } => write!(
                f,
                "htlc signature for output {output} of commitment {index} does not verify"
            ),
            R::NoCommitmentAwaitsRevocation => write!(
                f,
                "unexpected revoke_and_ack: no commitment awaits revocation"
            ),
            R::InvalidPerCommitmentSecret => {
                write!(f, "per_commitment_secret is not a valid secret key")
            }
            R::SecretMismatchesPoint { index } => write!(
                f,
                "per_commitment_secret does not match the point of commitment {index}"
            ),
            R::SecretRejected { error } => write!(f, "per_commitment_secret rejected: {error}"),
            R::ReestablishBeforeOurs => write!(f, "channel_reestablish before ours was sent"),
            R::ReestablishBeforeFunding => write!(f, "channel_reestablish before funding"),
            R::PeerAsksToClose => {
                write!(f, "peer sent next_commitment_number 0: it asks us to close")
            }
            R::WrongLastSecret { index } => write!(
                f,
                "your_last_per_commitment_secret is not our secret {index}"
            ),
            R::PeerRevocationBehind {
                next_revocation_number,
                local_commitment,
            } => write!(
                f,
                "next_revocation_number {next_revocation_number} is behind our commitment \
                 {local_commitment}: peer has old state"
            ),
            R::OurStateOutdated {
                next_revocation_number,
                local_commitment,
            } => write!(
                f,
                "next_revocation_number {next_revocation_number} proves our commitment \
                 {local_commitment} is outdated"
            ),
            R::PeerRevocationAheadWithoutProof {
                next_revocation_number,
                local_commitment,
            } => write!(
                f,
                "next_revocation_number {next_revocation_number} is ahead of our commitment \
                 {local_commitment} without proof"
            ),
            R::PeerCommitmentBehind {
                next_commitment_number,
                remote_commitment,
            } => write!(
                f,
                "next_commitment_number {next_commitment_number} is behind our remote \
                 commitment {remote_commitment}"
            ),
            R::PeerCommitmentAhead {
                next_commitment_number,
                remote_commitment,
            } => write!(
                f,
                "next_commitment_number {next_commitment_number} is ahead of our remote \
                 commitment {remote_commitment}"
            ),
            R::NotOpen => write!(f, "the channel is not open"),
            R::ClosingNegotiationStarted => write!(f, "closing negotiation has started"),
            R::ShuttingDown => write!(f, "the channel is shutting down"),
            R::HtlcBelowMinimum {
                side,
                amount_msat,
                htlc_minimum_msat,
            } => write!(
                f,
                "amount_msat {amount_msat} is below {} htlc_minimum_msat {htlc_minimum_msat}",
                match side {
                    Side::Local => "our",
                    Side::Remote => "the peer's",
                }
            ),
            R::CltvExpiryTooLarge { cltv_expiry, limit } => {
                write!(f, "cltv_expiry {cltv_expiry} is not below {limit}")
            }
            R::WouldExceedMaxAcceptedHtlcs { count, max } => write!(
                f,
                "{count} htlcs would be above the peer's max_accepted_htlcs {max}"
            ),
            R::PeerExceedsMaxAcceptedHtlcs { count, max } => write!(
                f,
                "{count} htlcs from the peer are above our max_accepted_htlcs {max}"
            ),
            R::WouldExceedMaxInFlight {
                in_flight_msat,
                max_msat,
            } => write!(
                f,
                "{in_flight_msat} msat in flight would be above the peer's \
                 max_htlc_value_in_flight_msat {max_msat}"
            ),
            R::PeerExceedsMaxInFlight {
                in_flight_msat,
                max_msat,
            } => write!(
                f,
                "{in_flight_msat} msat in flight from the peer is above our \
                 max_htlc_value_in_flight_msat {max_msat}"
            ),
            R::BalanceBelowReserve {
                balance_msat,
                needed_msat,
            } => write!(
                f,
                "our balance {balance_msat} msat after the htlc is below the reserve plus fees \
                 {needed_msat} msat"
            ),
            R::CannotPayCommitmentFee {
                balance_msat,
                fee_msat,
            } => write!(
                f,
                "our balance {balance_msat} msat cannot pay our commitment fee {fee_msat} msat \
                 above reserve"
            ),
            R::FunderCannotPayWithHtlc {
                balance_msat,
                needed_msat,
            } => write!(
                f,
                "the funder's balance {balance_msat} msat could not pay the commitment fee \
                 above its reserve ({needed_msat} msat) with this htlc"
            ),
            R::DustExposure {
                exposure_msat,
                max_msat,
            } => write!(
                f,
                "dust htlc exposure {exposure_msat} msat would be above our maximum {max_msat}"
            ),
            R::NoCommittedInboundHtlc { id } => {
                write!(f, "no committed inbound htlc with id {id}")
            }
            R::HtlcAlreadyRemoved { id, removal } => {
                let how = match removal {
                    Removal::Removed => "removed",
                    Removal::Fulfilled => "fulfilled",
                    Removal::Failed => "failed",
                };
                write!(f, "htlc {id} is already being {how}")
            }
            R::PreimageMismatch { id } => {
                write!(f, "preimage does not match the hash of htlc {id}")
            }
            R::PeerPreimageMismatch { id } => write!(
                f,
                "update_fulfill_htlc preimage does not hash to the payment_hash of htlc {id}"
            ),
            R::DuplicateFulfill { id } => {
                write!(f, "duplicate update_fulfill_htlc for htlc {id}")
            }
            R::FailureReasonTooLong { len, max } => {
                write!(f, "failure reason of {len} bytes is above {max}")
            }
            R::FailureCodeLacksBadonion { failure_code } => {
                write!(f, "failure_code {failure_code:#06x} lacks the BADONION bit")
            }
            R::PeerFailureCodeLacksBadonion { failure_code } => write!(
                f,
                "update_fail_malformed_htlc failure_code {failure_code:#06x} lacks the \
                 BADONION bit"
            ),
            R::NotFunder => write!(f, "only the funder sends update_fee"),
            R::UpdateFeeWhileShuttingDown => {
                write!(f, "no update_fee once shutting down without htlcs")
            }
            R::Spec { during, error } => write!(f, "{during}: {error}"),
            R::CannotAffordFeerate { feerate_per_kw } => write!(
                f,
                "we cannot afford feerate_per_kw {feerate_per_kw} above the reserve"
            ),
            R::AddAfterShutdown => write!(f, "update_add_htlc after the peer's shutdown"),
            R::UnexpectedHtlcId { id, expected } => {
                write!(f, "update_add_htlc id {id} is not the expected {expected}")
            }
            R::PeerBalanceBelowReserve {
                balance_msat,
                amount_msat,
                needed_msat,
            } => write!(
                f,
                "the peer's balance {balance_msat} msat after amount_msat {amount_msat} is \
                 below our reserve plus fees {needed_msat} msat"
            ),
            R::UnknownHtlc { message, id } => write!(f, "{message} for unknown htlc id {id}"),
            R::UpdateFeeFromNonFunder => write!(f, "update_fee from the non-funder"),
            R::FunderCannotAffordFeerate {
                feerate_per_kw,
                balance_msat,
                needed_msat,
            } => write!(
                f,
                "the funder cannot afford feerate_per_kw {feerate_per_kw}: balance \
                 {balance_msat} msat, needs {needed_msat} msat"
            ),
            R::OutboundHtlcTimedOut {
                id,
                cltv_expiry,
                height,
            } => write!(
                f,
                "outbound htlc {id} with cltv_expiry {cltv_expiry} timed out at height {height}"
            ),
            R::ClaimedHtlcNotRemoved {
                id,
                cltv_expiry,
                height,
            } => write!(
                f,
                "claimed inbound htlc {id} with cltv_expiry {cltv_expiry} is not removed by \
                 height {height}"
            ),
            R::NotFundedOrClosed => write!(f, "the channel is not funded or already closed"),
            R::NonStandardShutdownScript => {
                write!(f, "shutdown scriptpubkey is not a standard form")
            }
            R::ShutdownScriptNotUpfront => write!(
                f,
                "shutdown scriptpubkey differs from upfront_shutdown_script"
            ),
            R::ShutdownScriptChanged => write!(f, "shutdown scriptpubkey changed"),
            R::ShutdownWithUnsignedUpdates => {
                write!(f, "shutdown while the peer has unsigned updates")
            }
            R::NoRemoteShutdownScript => write!(f, "no shutdown script from the peer"),
            R::ClosingFeeAboveFunderBalance {
                fee_satoshis,
                balance_satoshis,
            } => write!(
                f,
                "closing fee_satoshis {fee_satoshis} is above the funder's balance \
                 {balance_satoshis}"
            ),
            R::ClosingTxWithoutOutput => write!(f, "closing transaction would have no output"),
            R::ClosingSighash { error } => write!(f, "closing sighash: {error}"),
            R::BadClosingSignature { fee_satoshis } => write!(
                f,
                "closing_signed signature does not verify for fee_satoshis {fee_satoshis}"
            ),
            R::ClosingSignedBeforeClean => {
                write!(f, "closing_signed before the channel is clean")
            }
            R::ClosingFeeRangeNoOverlap {
                their_min,
                their_max,
                our_min,
                our_max,
            } => write!(
                f,
                "closing fee_range {their_min}..={their_max} does not overlap ours \
                 {our_min}..={our_max}"
            ),
            R::ClosingFeeChanged { fee_satoshis } => write!(
                f,
                "closing fee_satoshis {fee_satoshis} differs from the value we sent"
            ),
            R::ClosingFeeOutsideOverlap {
                fee_satoshis,
                min,
                max,
            } => write!(
                f,
                "closing fee_satoshis {fee_satoshis} is outside the overlap {min}..={max}"
            ),
            R::ClosingFeeNotBetween {
                fee_satoshis,
                low,
                high,
            } => write!(
                f,
                "closing fee_satoshis {fee_satoshis} is not strictly between {low} and {high}"
            ),
            R::NoSignedCommitment => write!(f, "no signed commitment to broadcast"),
        }
    }
}

impl ChannelErrorReason {
    /// The error underneath, when the reason wraps one.
    pub fn source_error(&self) -> Option<&(dyn std::error::Error + 'static)> {
        use ChannelErrorReason as R;
        match self {
            R::CommitmentKeys { error, .. }
            | R::HtlcKey { error }
            | R::PerCommitmentPoint { error, .. }
            | R::PerCommitmentSecret { error, .. } => Some(error),
            R::BuildCommitment { error, .. } => Some(error),
            R::NextCommitment { error, .. } | R::Spec { error, .. } => Some(error),
            R::SecretRejected { error } => Some(error),
            R::ClosingSighash { error } => Some(error),
            _ => None,
        }
    }
}

impl ChannelError {
    /// What went wrong.
    pub fn reason(&self) -> &ChannelErrorReason {
        match self {
            ChannelError::Ignore(r)
            | ChannelError::Warn(r)
            | ChannelError::Close(r)
            | ChannelError::CloseNoBroadcast(r) => r,
        }
    }

    /// The text carried to the peer: the reason's lower-case description.
    pub fn text(&self) -> String {
        self.reason().to_string()
    }

    /// Whether the channel must be failed.
    pub fn is_close(&self) -> bool {
        matches!(
            self,
            ChannelError::Close(_) | ChannelError::CloseNoBroadcast(_)
        )
    }

    /// The message to send the peer for this error about `channel_id`: a `warning` for
    /// [`ChannelError::Warn`], an `error` for the closing variants, none for `Ignore`.
    pub fn to_message(&self, channel_id: ChannelId) -> Option<Message> {
        match self {
            ChannelError::Ignore(_) => None,
            ChannelError::Warn(r) => {
                Some(Message::Warning(Warning::new(channel_id, &r.to_string())))
            }
            ChannelError::Close(r) | ChannelError::CloseNoBroadcast(r) => Some(Message::Error(
                ErrorMessage::new(channel_id, &r.to_string()),
            )),
        }
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::Ignore(r) => write!(f, "ignored: {r}"),
            ChannelError::Warn(r) => write!(f, "warning: {r}"),
            ChannelError::Close(r) => write!(f, "channel failed: {r}"),
            ChannelError::CloseNoBroadcast(r) => {
                write!(f, "channel failed, state outdated, do not broadcast: {r}")
            }
        }
    }
}

impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.reason().source_error()
    }
}

/// Shorthand constructors used throughout the channel.
pub(super) fn close(reason: ChannelErrorReason) -> ChannelError {
    ChannelError::Close(reason)
}

pub(super) fn ignore(reason: ChannelErrorReason) -> ChannelError {
    ChannelError::Ignore(reason)
}

pub(super) fn warn(reason: ChannelErrorReason) -> ChannelError {
    ChannelError::Warn(reason)
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use ChannelErrorReason as R;

    #[test]
    fn messages_match_variants() {
        let id = ChannelId([7; 32]);
        assert_eq!(ignore(R::NotOpen).to_message(id), None);
        let behind = R::PeerRevocationBehind {
            next_revocation_number: 3,
            local_commitment: 5,
        };
        assert!(matches!(
            warn(behind).to_message(id),
            Some(Message::Warning(w))
                if w.data == b"next_revocation_number 3 is behind our commitment 5: peer has old state"
        ));
        assert!(matches!(
            close(R::AddAfterShutdown).to_message(id),
            Some(Message::Error(_))
        ));
        assert!(close(R::AddAfterShutdown).is_close());
        assert!(!warn(R::NonStandardShutdownScript).is_close());
        assert_eq!(
            close(R::BadCommitmentSignature { index: 4 }).to_string(),
            "channel failed: commitment_signed signature does not verify for commitment 4"
        );
    }

    #[test]
    fn reasons_name_the_field_the_value_and_the_limit() {
        let e = close(R::OutsideRange {
            field: "funding_satoshis",
            value: 500,
            min: 1000,
            max: 16_777_215,
        });
        assert_eq!(
            e.reason().to_string(),
            "funding_satoshis 500 is outside 1000..=16777215"
        );
        assert_eq!(
            R::BelowMinimum {
                field: "dust_limit_satoshis",
                value: 100,
                min: 354
            }
            .to_string(),
            "dust_limit_satoshis 100 is below the minimum 354"
        );
    }

    #[test]
    fn a_wrapped_error_is_the_source() {
        let inner = SecretError::AfterLastIndex { index: 0 };
        let e = close(R::SecretRejected { error: inner });
        let source = e.source().expect("a source");
        assert_eq!(source.to_string(), inner.to_string());
        assert!(e.to_string().contains(&inner.to_string()));
        assert!(close(R::NotOpen).source().is_none());
    }
}
