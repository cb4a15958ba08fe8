//! lnshard's threads: the shard engine over [`lightning_core`]'s `NodeCore`.
//!
//! An [`Engine`] runs N shards. A shard is one thread, one bounded crossbeam inbox and one
//! `NodeCore` that owns the `PeerState` of every peer placed on it ([`Placement`]: a keyed
//! hash of the peer's node id), with no lock around any peer or channel. The thin
//! [`Coordinator`] (channel ids and short channel ids to peers, the best block, the config)
//! is the only shared state. An HTLC whose next channel belongs to another shard travels
//! there as a [`ShardMsg::Forward`]; its result comes back as a [`ShardMsg::Resolve`], and
//! only then is the upstream HTLC settled.
//!
//! The body of a shard is the plain function [`step`]; the thread loop only receives, steps
//! and delivers. With the `sim` feature, `Sim` runs the same `step` for every shard on one thread, with a seeded
//! scheduler choosing the interleaving (`SIM_SEED` replays one).
//!
//! # Backpressure
//! * Caller to shard: [`EngineError::Full`] when the shard's inbox is full; nothing was
//!   queued. Broadcasts that every shard must see (blocks, confirmations, inbound payment
//!   registration) wait for room instead.
//! * Shard to shard: never blocks. A message for a full inbox is parked in the sender's
//!   per-target queue and retried while the sender keeps draining its own inbox, so two
//!   shards with full inboxes forwarding to each other still progress. Parked traffic is
//!   bounded by protocol state (each forward is an HTLC committed upstream, each result an
//!   HTLC offered downstream; both capped by `max_accepted_htlcs` per channel).
//! * Shard to peer: peers come in only as BOLT 8 connections (attach, ciphertext, detach:
//!   the peer's shard decrypts and encrypts); each connection's writer is bounded (through
//!   [`Engine::handle_bytes`], `peer_outbox_capacity` messages and `peer_outbox_bytes`
//!   bytes), and a peer that lets it fill is disconnected rather than waited for.
//! * Shard to application: the event queue holds `event_capacity` events; a shard waits for
//!   room (events are never dropped), so an application that stops draining events stalls
//!   the engine and its API calls end in [`EngineError::Timeout`].
//!
//! # Failures
//! A shard whose group commit fails (the store's error) or that panics stops the whole
//! engine, never one shard alone: every shard stops taking messages, the failed batch's
//! outputs are never released, and every later call (including callers already waiting on
//! an answer) returns [`EngineError::Stopped`] naming the cause ([`StopReason`]), as does
//! [`Engine::health`]. Start again on the store ([`Engine::open`]) once the cause is fixed:
//! every acknowledged state comes back. The store records the node it belongs to, and an
//! engine with another node key refuses it ([`EngineError::WrongNode`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api;
mod budget;
mod connection;
mod coordinator;
mod driver;
pub mod durable;
mod engine;
mod error;
pub mod fees;
mod inbox;
mod msg;
mod placement;
mod shard;
#[cfg(feature = "sim")]
pub mod sim;

pub use api::{ApiTask, Backend, NodeApi, Reply};
pub use budget::ByteBudget;
pub use bumper::{BumpBroadcast, BumpStatus, Bumper};
pub use connection::{AttachedConnection, ConnectionId, ConnectionOutput, ConnectionWriter};
pub use coordinator::{Coordinator, CoordinatorAccesses, CoordinatorState};
pub use engine::{Engine, EngineConfig, ShutdownReport};
pub use error::{EngineError, StopReason};
pub use fees::FeeEstimator;
pub use lightning_core;
pub use msg::{Out, PeerOutput, ShardMsg};
pub use placement::Placement;
pub use shard::{step, Shard, ShardCounters, ShardStats};
#[cfg(feature = "sim")]
pub use sim::{Sim, SimRng};
pub use socket::{PeerSocket, SocketWaker};
pub use wallet::{
    bump_commitment, bump_htlc, fund_channel, rebump_commitment, rebump_htlc_bump,
    BumpCommitmentError, CommitmentBump, FundedChannel, FundingError, HtlcBumped, Reservation,
    Wallet, WalletError,
};

pub mod bumper;
pub mod socket;
pub mod store;
pub mod wallet;
