//! What travels into a shard ([`ShardMsg`]) and what a step produces ([`Out`]).

use std::sync::Arc;

use crate::api::{ApiTask, Reply};
use crate::connection::{AttachedConnection, ConnectionId};
use lightning_core::bitcoin::{BlockHash, Transaction};
use lightning_core::node::{Event, ForwardHtlc, ForwardResolution};
use lightning_core::secp256k1::PublicKey;

/// An input for one shard. A peer's bytes reach its shard in arrival order because they
/// travel through this shard's one FIFO inbox. Peers come in only as BOLT 8: an attached
/// connection ([`ShardMsg::Attach`]), then its ciphertext.
#[derive(Debug)]
#[non_exhaustive]
pub enum ShardMsg {
    /// An API call's work ([`crate::NodeApi`]); its answer, if anyone waits for it, is
    /// released after the batch commits.
    Api(ApiTask),
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
    /// decrypts the peer's bytes and encrypts its messages. The peer connects (after
    /// disconnecting when this replaces an older connection of the peer, which is closed).
    Attach(AttachedConnection),
    /// An established connection's socket moves into this shard, which reads and writes it
    /// itself from now on ([`crate::socket`]); the peer connects as with
    /// [`ShardMsg::Attach`].
    AttachSocket(Box<crate::socket::SocketAttach>),
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
            ShardMsg::Ciphertext { bytes, .. } => bytes.len(),
            _ => 0,
        }
    }
}

/// What a peer's connection should do next (the shard encrypts it on the peer's attached
/// connection once the batch that produced it is durable).
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
        /// The connection attached when it was produced (`None`: none was): it goes to that
        /// connection only, never to one attached after it (which starts afresh with `init`).
        conn: Option<ConnectionId>,
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
    Reply(Reply),
}

impl Out {
    /// Whether the batch that produced this output must be committed before it is released
    /// ([`Output::needs_commit`](lightning_core::node::Output::needs_commit); cross-shard
    /// work). An API call's answer needs none of its own: its task made the batch commit if
    /// it changed state ([`ApiTask::commits`](crate::api::ApiTask)).
    pub fn needs_commit(&self) -> bool {
        match self {
            Out::Peer { output, .. } => matches!(output, PeerOutput::Message(_)),
            Out::Event(event) => !event.may_precede_commit(),
            // The batch of a task that changes state commits anyway (`ApiTask::commits`).
            Out::Reply(_) => false,
            Out::Shard { .. } => true,
        }
    }
}
