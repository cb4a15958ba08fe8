//! What travels into a shard ([`ShardMsg`]) and what a step produces ([`Out`]).

use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::connection::{AttachedConnection, ConnectionId};
use lightning_core::bitcoin::{BlockHash, Transaction};
use lightning_core::channel::Channel;
use lightning_core::node::{
    ApiError, ChannelDetails, Event, ForwardHtlc, ForwardResolution, PaymentId, Route,
};
use lightning_core::secp256k1::PublicKey;
use lightning_core::types::{ChannelId, PaymentHash, PaymentPreimage, PaymentSecret};

/// A NodeCore API call carried to the shard that must run it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ApiCall {
    /// `NodeCore::create_channel`.
    CreateChannel {
        /// The peer.
        node_id: PublicKey,
        /// The funding amount.
        funding_satoshis: u64,
        /// The amount pushed to the peer.
        push_msat: u64,
        /// The application's id for the channel.
        user_channel_id: u128,
        /// The initial commitment feerate.
        feerate_per_kw: u32,
    },
    /// `NodeCore::funding_transaction_generated`.
    FundingTransactionGenerated {
        /// The channel's temporary id.
        temporary_channel_id: ChannelId,
        /// The peer.
        node_id: PublicKey,
        /// The funding transaction.
        funding_tx: Transaction,
    },
    /// `NodeCore::send_payment`.
    SendPayment {
        /// The route.
        route: Route,
        /// The payment hash.
        payment_hash: PaymentHash,
        /// The payment secret.
        payment_secret: PaymentSecret,
        /// The payment id.
        payment_id: PaymentId,
    },
    /// `NodeCore::create_inbound_payment`.
    CreateInboundPayment {
        /// The preimage.
        payment_preimage: PaymentPreimage,
        /// The amount expected.
        amount_msat: Option<u64>,
    },
    /// `NodeCore::register_inbound_payment`.
    RegisterInboundPayment {
        /// The payment hash.
        payment_hash: PaymentHash,
        /// The payment secret.
        payment_secret: PaymentSecret,
        /// The amount expected.
        amount_msat: Option<u64>,
    },
    /// `NodeCore::claim_funds`.
    ClaimFunds(PaymentPreimage),
    /// `NodeCore::fail_htlc_backwards`.
    FailHtlcBackwards(PaymentHash),
    /// `NodeCore::close_channel`.
    CloseChannel {
        /// The channel.
        channel_id: ChannelId,
        /// The peer.
        node_id: PublicKey,
    },
    /// `NodeCore::force_close_channel`.
    ForceCloseChannel {
        /// The channel.
        channel_id: ChannelId,
        /// The peer.
        node_id: PublicKey,
    },
    /// `NodeCore::list_channels`.
    ListChannels,
    /// A copy of one channel's state (inspection and tests).
    Channel {
        /// The peer.
        node_id: PublicKey,
        /// The channel.
        channel_id: ChannelId,
    },
}

/// A shard's answer to an [`ApiCall`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ApiReply {
    /// The temporary channel id of a new channel.
    ChannelCreated(Result<ChannelId, ApiError>),
    /// The result of a call that returns nothing.
    Done(Result<(), ApiError>),
    /// An inbound payment's hash and secret.
    Inbound(PaymentHash, PaymentSecret),
    /// The shard's channels.
    Channels(Vec<ChannelDetails>),
    /// One channel's state.
    Channel(Option<Box<Channel>>),
}

/// An input for one shard. Peer messages of one peer reach its shard in arrival order
/// because they travel through this shard's one FIFO inbox.
#[derive(Debug)]
#[non_exhaustive]
pub enum ShardMsg {
    /// A connection to a peer of this shard is up.
    PeerConnected(PublicKey),
    /// The connection went down.
    PeerDisconnected(PublicKey),
    /// A peer's decrypted message bytes.
    Message {
        /// The peer.
        node_id: PublicKey,
        /// Type and payload.
        bytes: Vec<u8>,
    },
    /// An API call; the answer goes to `reply` (if any).
    Api {
        /// The call.
        call: ApiCall,
        /// Where the answer goes.
        reply: Option<Sender<ApiReply>>,
    },
    /// An HTLC another shard hands to this one (the outgoing channel is ours).
    Forward(ForwardHtlc),
    /// A result for an HTLC whose source this shard owns.
    Resolve(ForwardResolution),
    /// A new best block.
    BestBlock {
        /// Height.
        height: u32,
        /// Hash.
        hash: BlockHash,
    },
    /// Transactions confirmed at `height`, `(index in block, tx)`.
    TransactionsConfirmed {
        /// Height.
        height: u32,
        /// The transactions, shared by every shard.
        txdata: Arc<Vec<(u32, Transaction)>>,
    },
    /// An established BOLT 8 connection moves into this shard: from now on the shard
    /// decrypts the peer's bytes and encrypts its messages. Acts as `PeerConnected` (after a
    /// `PeerDisconnected` when it replaces an older connection of the peer, which is closed).
    Attach(AttachedConnection),
    /// Bytes read from an attached connection's socket, still encrypted.
    Ciphertext {
        /// The connection.
        conn: ConnectionId,
        /// Its peer.
        node_id: PublicKey,
        /// The bytes, as read (any framing).
        bytes: Vec<u8>,
    },
    /// An attached connection's socket closed (ignored if the peer has since attached another).
    Detach {
        /// The connection.
        conn: ConnectionId,
        /// Its peer.
        node_id: PublicKey,
    },
    /// The clock, for ping/pong liveness: `now_ms` is milliseconds on the host's monotonic
    /// clock (the core never reads a clock).
    Timer {
        /// The host's time.
        now_ms: u64,
    },
    /// Stop: finish what is queued, hand back what cannot be delivered, exit.
    Shutdown,
}

impl ShardMsg {
    /// The bytes of a peer's message this carries (counted against the inbox's byte bound).
    pub(crate) fn peer_bytes(&self) -> usize {
        match self {
            ShardMsg::Ciphertext { bytes, .. } | ShardMsg::Message { bytes, .. } => bytes.len(),
            _ => 0,
        }
    }
}

/// What a peer's connection should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerOutput {
    /// Send these message bytes (type and payload, before BOLT 8 encryption).
    Message(Vec<u8>),
    /// Close the connection (after sending what came before).
    Disconnect,
}

/// One effect of a [`step`](crate::step): the thread loop or the simulator carries it out.
#[derive(Debug)]
pub enum Out {
    /// For a peer's connection.
    Peer {
        /// The peer.
        node_id: PublicKey,
        /// What to do.
        output: PeerOutput,
    },
    /// For the application.
    Event(Event),
    /// For another shard.
    Shard {
        /// The shard.
        to: usize,
        /// The message.
        msg: ShardMsg,
    },
    /// An API call's answer, released (like every output) only once the state it reports
    /// is durable.
    Reply {
        /// Where the answer goes.
        reply: Sender<ApiReply>,
        /// The answer.
        answer: ApiReply,
    },
}
