//! On-chain enforcement (BOLT 5): one [`ChannelMonitor`] per channel.
//!
//! The monitor is sans-IO and deterministic, like [`crate::channel::Channel`] beside which
//! it lives (on the channel's shard, inside its node). It learns the channel's states from
//! [`MonitorUpdate`]s (each new commitment of either side, each revocation secret, each
//! preimage, the force-close) and the chain from blocks connected and disconnected; it
//! answers with [`MonitorOutput`]s: transactions to broadcast and [`MonitorEvent`]s.
//!
//! # How it decides
//! The monitor keeps every transaction of interest that confirmed (the spend of the funding
//! output, and every spend of an output that spend created, transitively) with its height.
//! Everything else it concludes (which commitment confirmed, what each output is, who spent
//! it, which preimages were revealed, what to claim now and at which fee) is recomputed from
//! that set, the channel states it was given and the best height, by `spend` and
//! `claim`. A reorg is then only the removal of the transactions of the disconnected
//! blocks, and a restart only the replay of the stored set: the strategy Core Lightning's
//! onchaind uses, and the one that keeps reorgs sound by construction. What must happen
//! once (an event to the node) is remembered in a persisted set, so a replay never repeats
//! it, and a reorg never undoes a preimage (preimages are never forgotten).
//!
//! Confirmations are acted on after [`ANTI_REORG_DELAY`] blocks, except a preimage, which
//! goes upstream at once.

pub mod bump;
mod claim;
mod monitor;
mod spend;

pub use claim::PlannedClaim;
pub use monitor::{
    Balance, ChannelMonitor, CounterpartyCommitment, DeadlineReason, HolderCommitment,
    MonitorError, MonitorEvent, MonitorOutput, MonitorStep, MonitorUpdate,
};
pub use spend::{FundingSpendKind, OutputKind, TrackedOutput};

/// Confirmations after which an on-chain event is final: a library-wide security
/// assumption, as in LDK (a reorg deeper than this can lose funds).
pub const ANTI_REORG_DELAY: u32 = 6;

/// Blocks before an inbound HTLC's expiry at which, holding its preimage, we force-close to
/// claim it on chain (BOLT 2 "fulfillment deadline"; LDK's `CLTV_CLAIM_BUFFER`).
pub const CLTV_CLAIM_BUFFER: u32 = 36;

/// Blocks past an offered HTLC's expiry after which we force-close to time it out on chain
/// (LDK's `LATENCY_GRACE_PERIOD_BLOCKS`).
pub const LATENCY_GRACE_PERIOD_BLOCKS: u32 = 3;

/// Blocks after everything is resolved before a monitor may be archived (dropped).
pub const ARCHIVAL_DELAY_BLOCKS: u32 = 4032;

/// A claim on an output the counterparty can also spend within this many blocks is
/// "pinnable": it goes in a transaction of its own, never aggregated with others.
pub const PINNABLE_WINDOW_BLOCKS: u32 = 12;

#[cfg(test)]
mod tests;
