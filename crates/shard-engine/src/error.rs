//! The engine's errors: routing, backpressure, shutdown, the store, a stopped engine.

use std::sync::Arc;

use lightning_core::node::ApiError;
use lightning_core::persist::PersistError;
use lightning_core::secp256k1::PublicKey;
use lightning_core::transport::{HandshakeError, TransportError};
use lightning_core::types::ChannelId;

use crate::store::StoreError;

/// Why the engine refused or could not finish a call.
///
/// `Clone`, `PartialEq` and `Eq` hold: a store error is shared (`Arc`), and two store errors
/// are equal when they are the same error or describe the same failure. `Debug` prints node
/// ids as their compressed hex (as `Display` does), not secp256k1's internal form.
#[derive(Clone)]
#[non_exhaustive]
pub enum EngineError {
    /// The shard's inbox is full (`inbox_capacity` messages, or `inbox_bytes` bytes of peers'
    /// messages): nothing was queued. Drain the engine's outputs (peer messages, events) and
    /// retry; for a peer's bytes, stop reading its socket until the retry succeeds.
    Full {
        /// The shard whose inbox is full.
        shard: usize,
        /// Its capacity in messages.
        capacity: usize,
    },
    /// The engine is shutting down ([`crate::Engine::shutdown`] or a drop).
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
    /// The store failed (input/output, damage it detected, a bad name): the engine does not
    /// start (on open); during operation a shard's commit failing stops the whole engine
    /// ([`EngineError::Stopped`]) without releasing the batch's outputs.
    Store(Arc<StoreError>),
    /// A record in the store cannot be read (damaged, written by a newer incompatible
    /// version) or a record could not be written (it does not encode).
    Record {
        /// Its namespace.
        namespace: String,
        /// Its key.
        key: String,
        /// Why (boxed: the error stays small on every path that returns it).
        error: Box<PersistError>,
    },
    /// The store belongs to another node: it records another node id than ours. Nothing was
    /// read into the engine or written to the store.
    WrongNode {
        /// The node id the store records (boxed: keeps the error small).
        stored: Box<PublicKey>,
        /// Ours.
        ours: Box<PublicKey>,
    },
    /// [`crate::Engine::open`] needs `config.store`.
    NoStore,
    /// The engine has stopped and takes no more work: a shard's commit failed or a shard
    /// panicked (see `reason`). Every shard stopped taking messages at once; nothing whose
    /// state was not durable was released. Fix the cause (free disk space, ...) and start
    /// the engine again on its store ([`crate::Engine::open`]): every state that was
    /// acknowledged comes back.
    Stopped {
        /// Why (the first cause; later ones are not recorded).
        reason: StopReason,
    },
    /// The encrypted stream failed: close the connection.
    Transport {
        /// The connection.
        conn: u64,
        /// Why.
        error: TransportError,
    },
}

/// Why an engine stopped ([`EngineError::Stopped`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// A shard's group commit failed: the batch's outputs were withheld.
    CommitFailed {
        /// The shard.
        shard: usize,
        /// The store's (or a record's) error.
        error: Box<EngineError>,
    },
    /// A shard's thread panicked (a bug in lnshard: please report it).
    Panicked {
        /// The shard.
        shard: usize,
        /// The panic's message.
        message: String,
    },
    /// [`crate::Engine::new`] could not claim its store for this node (the store belongs to
    /// another node, or recording our node id failed).
    Start {
        /// Why.
        error: Box<EngineError>,
    },
}

impl StopReason {
    /// The error underneath, if the stop has one (a commit's store or record error).
    pub fn error(&self) -> Option<&EngineError> {
        match self {
            StopReason::CommitFailed { error, .. } | StopReason::Start { error } => Some(error),
            StopReason::Panicked { .. } => None,
        }
    }
}

impl core::fmt::Display for StopReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StopReason::CommitFailed { shard, error } => {
                write!(f, "shard {shard}'s commit failed: {error}")
            }
            StopReason::Panicked { shard, message } => {
                write!(f, "shard {shard} panicked: {message}")
            }
            StopReason::Start { error } => write!(f, "cannot start on the store: {error}"),
        }
    }
}

impl core::fmt::Debug for EngineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EngineError::Full { shard, capacity } => f
                .debug_struct("Full")
                .field("shard", shard)
                .field("capacity", capacity)
                .finish(),
            EngineError::ShuttingDown => f.write_str("ShuttingDown"),
            EngineError::Timeout { shard, waited_ms } => f
                .debug_struct("Timeout")
                .field("shard", shard)
                .field("waited_ms", waited_ms)
                .finish(),
            EngineError::UnknownChannel(id) => f.debug_tuple("UnknownChannel").field(id).finish(),
            EngineError::Api(e) => f.debug_tuple("Api").field(e).finish(),
            EngineError::UnknownConnection(conn) => {
                f.debug_tuple("UnknownConnection").field(conn).finish()
            }
            EngineError::DuplicateConnection(conn) => {
                f.debug_tuple("DuplicateConnection").field(conn).finish()
            }
            EngineError::Handshake { conn, error } => f
                .debug_struct("Handshake")
                .field("conn", conn)
                .field("error", error)
                .finish(),
            EngineError::Store(e) => f.debug_tuple("Store").field(e).finish(),
            EngineError::Record {
                namespace,
                key,
                error,
            } => f
                .debug_struct("Record")
                .field("namespace", namespace)
                .field("key", key)
                .field("error", error)
                .finish(),
            EngineError::WrongNode { stored, ours } => f
                .debug_struct("WrongNode")
                .field("stored", &format_args!("PublicKey({stored})"))
                .field("ours", &format_args!("PublicKey({ours})"))
                .finish(),
            EngineError::NoStore => f.write_str("NoStore"),
            EngineError::Stopped { reason } => {
                f.debug_struct("Stopped").field("reason", reason).finish()
            }
            EngineError::Transport { conn, error } => f
                .debug_struct("Transport")
                .field("conn", conn)
                .field("error", error)
                .finish(),
        }
    }
}

impl core::fmt::Display for EngineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EngineError::Full { shard, capacity } => {
                write!(
                    f,
                    "inbox of shard {shard} is full ({capacity} messages or its byte bound)"
                )
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
            EngineError::Store(e) => write!(f, "store: {e}"),
            EngineError::Record {
                namespace,
                key,
                error,
            } => write!(f, "store record {namespace}/{key}: {error}"),
            EngineError::WrongNode { stored, ours } => write!(
                f,
                "the store belongs to node {stored}, not to this node {ours}: \
                 use that node's key or another data directory"
            ),
            EngineError::NoStore => write!(f, "Engine::open needs config.store"),
            EngineError::Stopped { reason } => write!(
                f,
                "engine stopped: {reason} (the node takes no more work; fix the cause and \
                 restart it on its store)"
            ),
            EngineError::Transport { conn, error } => {
                write!(f, "transport on connection {conn} failed: {error}")
            }
        }
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EngineError::Api(e) => Some(e),
            EngineError::Handshake { error, .. } => Some(error),
            EngineError::Transport { error, .. } => Some(error),
            EngineError::Store(e) => Some(e.as_ref()),
            EngineError::Record { error, .. } => Some(error.as_ref()),
            EngineError::Stopped { reason } => reason
                .error()
                .map(|e| e as &(dyn std::error::Error + 'static)),
            _ => None,
        }
    }
}

impl PartialEq for EngineError {
    fn eq(&self, other: &Self) -> bool {
        use EngineError as E;
        match (self, other) {
            (
                E::Full { shard, capacity },
                E::Full {
                    shard: s,
                    capacity: c,
                },
            ) => shard == s && capacity == c,
            (E::ShuttingDown, E::ShuttingDown) | (E::NoStore, E::NoStore) => true,
            (
                E::Timeout { shard, waited_ms },
                E::Timeout {
                    shard: s,
                    waited_ms: w,
                },
            ) => shard == s && waited_ms == w,
            (E::UnknownChannel(a), E::UnknownChannel(b)) => a == b,
            (E::Api(a), E::Api(b)) => a == b,
            (E::UnknownConnection(a), E::UnknownConnection(b)) => a == b,
            (E::DuplicateConnection(a), E::DuplicateConnection(b)) => a == b,
            (E::Handshake { conn, error }, E::Handshake { conn: c, error: e }) => {
                conn == c && error == e
            }
            // Store errors hold io::Error (neither Clone nor PartialEq): the same error, or
            // the same description.
            (E::Store(a), E::Store(b)) => Arc::ptr_eq(a, b) || a.to_string() == b.to_string(),
            (
                E::Record {
                    namespace,
                    key,
                    error,
                },
                E::Record {
                    namespace: n,
                    key: k,
                    error: e,
                },
            ) => namespace == n && key == k && error == e,
            (E::WrongNode { stored, ours }, E::WrongNode { stored: s, ours: o }) => {
                stored == s && ours == o
            }
            (E::Stopped { reason }, E::Stopped { reason: r }) => reason == r,
            (E::Transport { conn, error }, E::Transport { conn: c, error: e }) => {
                conn == c && error == e
            }
            _ => false,
        }
    }
}

impl Eq for EngineError {}

impl From<ApiError> for EngineError {
    fn from(e: ApiError) -> Self {
        EngineError::Api(e)
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        EngineError::Store(Arc::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_stop_names_its_cause_and_chains_to_the_store_error() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
        let store = EngineError::from(StoreError::Io {
            context: "append to wal.log".into(),
            source: io,
        });
        let stopped = EngineError::Stopped {
            reason: StopReason::CommitFailed {
                shard: 1,
                error: Box::new(store.clone()),
            },
        };
        let text = stopped.to_string();
        assert!(text.contains("shard 1's commit failed"), "{text}");
        assert!(text.contains("disk full"), "{text}");
        let source = stopped.source().expect("a source");
        assert_eq!(source.to_string(), store.to_string());
        let io = source
            .source()
            .and_then(|s| s.source())
            .expect("the io error");
        assert_eq!(io.to_string(), "disk full");
        assert_eq!(stopped.clone(), stopped);
        assert_ne!(stopped, store);
        let panicked = EngineError::Stopped {
            reason: StopReason::Panicked {
                shard: 0,
                message: "boom".into(),
            },
        };
        assert!(panicked.to_string().contains("shard 0 panicked: boom"));
        assert!(panicked.source().is_none());
    }

    #[test]
    fn debug_prints_node_ids_as_compressed_hex() {
        use lightning_core::secp256k1::{Secp256k1, SecretKey};
        let key = |b: u8| {
            PublicKey::from_secret_key(
                &Secp256k1::signing_only(),
                &SecretKey::from_slice(&[b; 32]).expect("a valid key"),
            )
        };
        let (stored, ours) = (key(1), key(2));
        let error = EngineError::WrongNode {
            stored: Box::new(stored),
            ours: Box::new(ours),
        };
        assert_eq!(
            format!("{error:?}"),
            format!("WrongNode {{ stored: PublicKey({stored}), ours: PublicKey({ours}) }}")
        );
        let api = EngineError::Api(ApiError::PeerNotConnected(stored));
        assert_eq!(
            format!("{api:?}"),
            format!("Api(PeerNotConnected(PublicKey({stored})))")
        );
        assert_eq!(
            format!(
                "{:?}",
                EngineError::Full {
                    shard: 1,
                    capacity: 8
                }
            ),
            "Full { shard: 1, capacity: 8 }"
        );
    }

    #[test]
    fn a_record_error_chains_to_the_typed_persist_error() {
        let persist = PersistError::ChecksumMismatch {
            stored: 1,
            computed: 2,
        };
        let record = EngineError::Record {
            namespace: "channels".into(),
            key: "c-00".into(),
            error: Box::new(persist.clone()),
        };
        let text = record.to_string();
        assert!(text.contains("channels/c-00"), "{text}");
        let source = record.source().expect("a source");
        assert_eq!(
            source.downcast_ref::<PersistError>(),
            Some(&persist),
            "the persist error itself, not its text"
        );
        // Through a stop too.
        let stopped = EngineError::Stopped {
            reason: StopReason::CommitFailed {
                shard: 0,
                error: Box::new(record),
            },
        };
        let inner = stopped
            .source()
            .and_then(|e| e.source())
            .and_then(|e| e.downcast_ref::<PersistError>());
        assert_eq!(inner, Some(&persist));
    }
}
