//! What a `NodeCore` tells the application, and what it hands to the shard engine.

use bitcoin::secp256k1::PublicKey;
use bitcoin::{OutPoint, ScriptBuf, Transaction};

use crate::onion::FailureMessage;
use crate::types::{ChannelId, PaymentHash, PaymentPreimage, PaymentSecret, ShortChannelId};
use crate::wire::Message;

use crate::chain::MonitorEvent;
pub use crate::payment::{HtlcSource, PaymentId};

/// Why a channel closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClosureReason {
    /// A cooperative close completed (either side started it).
    CooperativeClosure,
    /// We force-closed at the application's request.
    HolderForceClosed,
    /// The peer sent an `error` for the channel.
    CounterpartyForceClosed {
        /// The peer's error text, escaped for printing and cut to
        /// [`MAX_PEER_TEXT_BYTES`](super::MAX_PEER_TEXT_BYTES) of the peer's bytes (at most
        /// [`MAX_PEER_TEXT_LEN`](super::MAX_PEER_TEXT_LEN) long); only its length when the
        /// peer sent too many texts in the current window ([`super::PeerRateLimits`]).
        peer_msg: String,
    },
    /// We closed because the peer broke the protocol.
    ProcessingError {
        /// What went wrong.
        err: String,
    },
    /// An outbound HTLC was about to expire: we went on chain to time it out.
    HtlcsTimedOut,
    /// The peer disconnected before the channel was funded.
    DisconnectedPeer,
    /// A commitment transaction (ours or the peer's) spending the funding output confirmed:
    /// the channel is resolved on chain by its monitor ([`Event::OnChain`]).
    CommitmentTxConfirmed,
    /// As fundee, the funding transaction did not confirm within
    /// [`FUNDING_CONF_DEADLINE_BLOCKS`](super::FUNDING_CONF_DEADLINE_BLOCKS) of our accepting
    /// the channel: forgotten (BOLT 2). Nothing of ours was at stake.
    FundingTimedOut,
}

/// Why an outbound payment failed.
#[derive(Clone, PartialEq, Eq)]
pub struct PaymentFailure {
    /// The index in the route of the hop that reported the failure (0 is our peer), when the
    /// failure could be attributed.
    pub failing_hop: Option<usize>,
    /// That hop's node id.
    pub failing_node: Option<PublicKey>,
    /// The failure it reported, when readable.
    pub failure: Option<FailureMessage>,
    /// Whether the failure happened before the HTLC left this node (no onion involved).
    pub local: bool,
}

/// An event for the application.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Build a funding transaction paying `channel_value_satoshis` to `output_script`, then
    /// call `NodeCore::funding_transaction_generated`.
    FundingGenerationReady {
        /// The channel's temporary id.
        temporary_channel_id: ChannelId,
        /// The peer.
        counterparty_node_id: PublicKey,
        /// The funding output's value.
        channel_value_satoshis: u64,
        /// The funding output's script (P2WSH of the 2-of-2).
        output_script: ScriptBuf,
        /// The application's id for this channel.
        user_channel_id: u128,
    },
    /// The funding transaction is signed on both sides; wait for confirmations.
    ChannelPending {
        /// The final channel id.
        channel_id: ChannelId,
        /// The peer.
        counterparty_node_id: PublicKey,
        /// The funding output.
        funding_txo: OutPoint,
        /// The application's id for this channel.
        user_channel_id: u128,
    },
    /// Both sides sent `channel_ready`: payments may flow.
    ChannelReady {
        /// The channel.
        channel_id: ChannelId,
        /// The peer.
        counterparty_node_id: PublicKey,
        /// The real short channel id.
        short_channel_id: Option<ShortChannelId>,
        /// The alias we gave the peer: HTLCs addressed to it are for this channel too.
        alias: Option<ShortChannelId>,
        /// The application's id for this channel.
        user_channel_id: u128,
    },
    /// A payment to us arrived and is irrevocably committed: claim it with its preimage or
    /// fail it back.
    PaymentClaimable {
        /// The payment hash.
        payment_hash: PaymentHash,
        /// The amount received.
        amount_msat: u64,
        /// The payment secret it carried.
        payment_secret: Option<PaymentSecret>,
        /// The channel it arrived on.
        via_channel_id: ChannelId,
        /// Its expiry: claim before this height.
        claim_deadline: u32,
    },
    /// We released the preimage of a payment to us.
    PaymentClaimed {
        /// The payment hash.
        payment_hash: PaymentHash,
        /// The amount claimed.
        amount_msat: u64,
    },
    /// Our payment reached its recipient: we hold the preimage.
    PaymentSent {
        /// The payment.
        payment_id: PaymentId,
        /// The payment hash.
        payment_hash: PaymentHash,
        /// The preimage: proof of payment.
        payment_preimage: PaymentPreimage,
        /// Fees paid to forwarding hops.
        fee_paid_msat: u64,
    },
    /// Our payment failed.
    PaymentFailed {
        /// The payment.
        payment_id: PaymentId,
        /// The payment hash.
        payment_hash: PaymentHash,
        /// Where and why it failed.
        failure: PaymentFailure,
    },
    /// We forwarded a payment and its HTLC was fulfilled: we earned a fee.
    PaymentForwarded {
        /// The incoming channel.
        prev_channel_id: ChannelId,
        /// The outgoing channel.
        next_channel_id: ChannelId,
        /// The fee earned (incoming minus outgoing amount).
        fee_earned_msat: u64,
        /// The outgoing amount.
        outbound_amount_msat: u64,
    },
    /// A channel closed.
    ChannelClosed {
        /// The channel (temporary id if it never got a final one).
        channel_id: ChannelId,
        /// The peer.
        counterparty_node_id: PublicKey,
        /// Why.
        reason: ClosureReason,
    },
    /// Broadcast this transaction.
    BroadcastTransaction {
        /// The transaction.
        tx: Transaction,
    },
    /// What a channel's on-chain monitor concluded ([`crate::chain`]): the funding output
    /// spent, HTLCs resolved on chain, claims confirmed, a revoked commitment seen (and
    /// punished), lost state, or a zero-fee transaction that needs fee inputs
    /// ([`MonitorEvent::BumpNeeded`]: act on it, or the claim cannot confirm).
    OnChain {
        /// The channel.
        channel_id: ChannelId,
        /// The peer.
        counterparty_node_id: PublicKey,
        /// What happened.
        event: MonitorEvent,
    },
}

impl Event {
    /// Whether the application may see this event before the state that produced it is
    /// durable. Only [`Event::PaymentClaimable`]: it asks for an action (a claim, whose own
    /// state is made durable before its `update_fulfill_htlc` leaves) and promises nothing
    /// that a reopen could take back, since a peer whose `revoke_and_ack` a crash lost sends
    /// it again on reconnection (BOLT 2) and the event comes again. Every other event
    /// reports an outcome the application acts on (a payment sent, failed or claimed, a
    /// transaction to broadcast): it waits for the commit of its state.
    pub fn may_precede_commit(&self) -> bool {
        matches!(self, Event::PaymentClaimable { .. })
    }
}

impl Output {
    /// Whether the state that produced this output must be durable before it leaves the
    /// node (the persistence barrier; see [`Event::may_precede_commit`]). A node whose
    /// outputs all answer false (a `revoke_and_ack` that only completes a dance, say) may
    /// carry its changes into its next commit instead of syncing now: nothing that depends
    /// on them has left, so a reopen without them is a state the peers can bring it back
    /// from.
    pub fn needs_commit(&self) -> bool {
        match self {
            Output::Disconnect { .. } => false,
            Output::Event(event) => !event.may_precede_commit(),
            Output::SendMessage { .. } | Output::Forward(_) | Output::Resolve(_) => true,
        }
    }
}

/// An HTLC to add on the channel named by `short_channel_id`: handed to whichever shard owns
/// that channel (possibly the one that emitted it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardHtlc {
    /// Where it came from; its resolution goes back there.
    pub source: HtlcSource,
    /// The outgoing channel (real short channel id or alias).
    pub short_channel_id: ShortChannelId,
    /// The outgoing amount.
    pub amount_msat: u64,
    /// The outgoing expiry.
    pub cltv_expiry: u32,
    /// The payment hash.
    pub payment_hash: PaymentHash,
    /// The onion for the next hop.
    pub onion: Box<[u8; 1366]>,
    /// The incoming amount (for a forward) or the amount sent (for a local payment).
    pub incoming_amount_msat: u64,
}

/// How a forwarded HTLC ended downstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardOutcome {
    /// Fulfilled: the preimage.
    Fulfilled(PaymentPreimage),
    /// Failed downstream: the encrypted `reason` to wrap and pass on.
    FailedDownstream(Vec<u8>),
    /// The next peer could not parse the onion (`update_fail_malformed_htlc`).
    Malformed {
        /// The BADONION code.
        failure_code: u16,
        /// SHA256 of the onion the next peer received.
        sha256_of_onion: [u8; 32],
    },
    /// Failed at this node before leaving (unknown channel, capacity, limits).
    FailedHere(FailureMessage),
}

/// A forward's result, sent back to the shard that owns `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardResolution {
    /// The HTLC it resolves.
    pub source: HtlcSource,
    /// The outgoing channel, when the HTLC got that far.
    pub next_channel_id: Option<ChannelId>,
    /// How it ended.
    pub outcome: ForwardOutcome,
}

/// Everything a `NodeCore` asks of its host, in order.
///
/// Outputs are drained right after they are produced, so their size matters less than an
/// allocation per message would: the message variant is kept unboxed.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Send `msg` to the peer `node_id`.
    SendMessage {
        /// The peer.
        node_id: PublicKey,
        /// The message.
        msg: Message,
    },
    /// Disconnect the peer (after sending what precedes this output).
    Disconnect {
        /// The peer.
        node_id: PublicKey,
    },
    /// An event for the application.
    Event(Event),
    /// Hand an HTLC to the owner of its outgoing channel (`NodeCore::handle_forward`).
    Forward(ForwardHtlc),
    /// Hand a forward's result to the owner of its source (`NodeCore::handle_resolution`).
    Resolve(ForwardResolution),
}
