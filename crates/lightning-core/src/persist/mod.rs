//! Durable state: what a node stores and how (pure functions, no IO; the shard engine owns
//! the store).
//!
//! * [`envelope`]: magic, versions, length and checksum around every record; typed
//!   [`PersistError`].
//! * [`records`]: [`ChannelRecord`] (one per channel) and [`NodeRecord`] (one per shard),
//!   their postcard payloads and the migration hook.
//!
//! `NodeCore` produces records with `NodeCore::snapshot_channel` and `NodeCore::node_record`,
//! says what changed since the last commit with `NodeCore::take_dirty`, and is rebuilt from
//! records with `NodeCore::restore` (see [`crate::node`]).

pub mod envelope;
pub mod records;

pub use envelope::{PersistError, RecordKind, FORMAT_VERSION};
pub use records::{
    migrate, ChannelRecord, ClaimableHtlcRecord, InboundPaymentRecord, NodeRecord,
    OfferedHtlcRecord, OutboundPaymentRecord, PendingTimeoutRecord, UpstreamHtlcRecord,
};
