//! The engine's errors: routing, backpressure, shutdown.

use lightning_core::node::ApiError;
use lightning_core::transport::{HandshakeError, TransportError};
use lightning_core::types::ChannelId;

/// Why the engine refused or could not finish a call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineError {
    /// The shard's inbox is full (`inbox_capacity` messages): nothing was queued. Drain the
    /// engine's outputs (peer messages, events) and retry; for a peer's bytes, stop reading
    /// its socket until the retry succeeds.
    Full {
        /// The shard whose inbox is full.
        shard: usize,
        /// Its capacity.
        capacity: usize,
    },
    /// The engine is shutting down or stopped.
    ShuttingDown,
    /// A shard did not answer an API call within `reply_timeout` (it is blocked on a full
    /// event queue: drain events).
    Timeout {
        /// The shard.
        shard: usize,
        /// The wait in milliseconds.
        waited_ms: u64,
    },
    /// No shard knows a channel with this id.
    UnknownChannel(ChannelId),
    /// The NodeCore refused the call.
    Api(ApiError),
    /// No open connection has this id (or it exists already, for a new one).
    UnknownConnection(u64),
    /// A connection with this id is open already.
    DuplicateConnection(u64),
    /// The BOLT 8 handshake failed: close the connection without sending anything.
    Handshake {
        /// The connection.
        conn: u64,
        /// Why.
        error: HandshakeError,
    },
    /// The store failed or holds a record this version cannot read: the engine does not
    /// start (on open) or the shard stops without releasing the batch's outputs.
    Store(String),
    /// The encrypted stream failed: close the connection.
    Transport {
        /// The connection.
        conn: u64,
        /// Why.
        error: TransportError,
    },
}

impl core::fmt::Display for EngineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EngineError::Full { shard, capacity } => {
                write!(f, "inbox of shard {shard} is full ({capacity} messages)")
            }
            EngineError::ShuttingDown => write!(f, "engine is shutting down"),
            EngineError::Timeout { shard, waited_ms } => {
                write!(f, "shard {shard} did not answer within {waited_ms} ms")
            }
            EngineError::UnknownChannel(c) => write!(f, "no channel {c} known to the engine"),
            EngineError::Api(e) => write!(f, "node refused the call: {e}"),
            EngineError::UnknownConnection(c) => write!(f, "no open connection {c}"),
            EngineError::DuplicateConnection(c) => write!(f, "connection {c} is open already"),
            EngineError::Handshake { conn, error } => {
                write!(f, "handshake on connection {conn} failed: {error}")
            }
            EngineError::Store(detail) => write!(f, "store: {detail}"),
            EngineError::Transport { conn, error } => {
                write!(f, "transport on connection {conn} failed: {error}")
            }
        }
    }
}

impl std::error::Error for EngineError {}

impl From<ApiError> for EngineError {
    fn from(e: ApiError) -> Self {
        EngineError::Api(e)
    }
}
