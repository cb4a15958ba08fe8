//! The engine's errors: routing, backpressure, shutdown.

use lightning_core::node::ApiError;
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
        }
    }
}

impl std::error::Error for EngineError {}

impl From<ApiError> for EngineError {
    fn from(e: ApiError) -> Self {
        EngineError::Api(e)
    }
}
