//! `PeerState`: one peer's connection state and channels, owned by exactly one shard.
//!
//! This is LDK's per-peer `PeerState` without its `Mutex`: the shard that owns the peer owns
//! this value outright, so nothing here is shared or locked.

use std::collections::BTreeMap;

use bitcoin::secp256k1::PublicKey;
use bitcoin::Transaction;

use crate::channel::{Channel, ChannelPhase};
use crate::node::limits::PeerBudget;
use crate::types::ChannelId;
use crate::wire::Features;

/// One channel as its node keeps it: the state machine plus what only the node needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerChannel {
    /// The BOLT 2 state machine.
    pub channel: Channel,
    /// The application's id for the channel.
    pub user_channel_id: u128,
    /// As funder: the funding transaction, broadcast once `funding_signed` arrives.
    pub funding_tx: Option<Transaction>,
}

/// A peer's state: its `init` features, its channels by id (temporary until funding, then
/// final) and whether it is connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerState {
    /// The peer's node id.
    pub node_id: PublicKey,
    /// The features of the peer's `init`, once received on the current connection.
    pub their_features: Option<Features>,
    /// Whether a connection to the peer is up.
    pub connected: bool,
    /// The peer's channels with us, by channel id. Boxed: a channel is about 5 KB, and a
    /// map node holds room for 11 values, mostly one per peer.
    pub channel_by_id: BTreeMap<ChannelId, Box<PeerChannel>>,
    /// How many random values the node has drawn for this peer (see `NodeCore`).
    pub random_draws: u64,
    /// Liveness on the current connection: when (host milliseconds) we last sent a `ping`,
    /// or, before the first, the first tick after the peer's `init`; `None` until that tick.
    /// Not persisted (a connection's state).
    pub last_ping_ms: Option<u64>,
    /// Set while a `ping` of ours waits for its `pong`.
    pub awaiting_pong: bool,
    /// What the peer drew from its [`PeerRateLimits`](crate::node::PeerRateLimits) in the
    /// current window. Not persisted.
    pub budget: PeerBudget,
}

/// An inbound channel (the peer is the funder) whose funding has not confirmed.
pub fn is_pending_inbound(channel: &Channel) -> bool {
    !channel.is_funder()
        && channel.short_channel_id().is_none()
        && !matches!(channel.phase(), ChannelPhase::Normal | ChannelPhase::Closed)
}

impl PeerState {
    /// A peer that has just connected and not yet sent `init`.
    pub fn new(node_id: PublicKey) -> Self {
        PeerState {
            node_id,
            their_features: None,
            connected: true,
            channel_by_id: BTreeMap::new(),
            random_draws: 0,
            last_ping_ms: None,
            awaiting_pong: false,
            budget: PeerBudget::default(),
        }
    }

    /// Channels not yet funded: no `funding_signed` exchanged, or (as LDK counts them)
    /// inbound ones whose funding has not confirmed. What a peer can make us hold for free
    /// (a `funding_created` naming a transaction that never appears costs it nothing), so it
    /// is limited per peer.
    pub fn unfunded_channels(&self) -> usize {
        self.channel_by_id
            .values()
            .filter(|c| {
                matches!(
                    c.channel.phase(),
                    ChannelPhase::AwaitingAcceptChannel
                        | ChannelPhase::AwaitingFundingTransaction
                        | ChannelPhase::AwaitingFundingCreated
                        | ChannelPhase::AwaitingFundingSigned
                ) || is_pending_inbound(&c.channel)
            })
            .count()
    }

    /// Inbound channels (the peer funds them) whose funding has not confirmed.
    pub fn pending_inbound_channels(&self) -> usize {
        self.channel_by_id
            .values()
            .filter(|c| is_pending_inbound(&c.channel))
            .count()
    }

    /// Whether the peer has a channel that cost something: one we fund, or one whose funding
    /// confirmed. A peer without one is limited by
    /// [`NodeConfig::max_pending_inbound_channels`](crate::node::NodeConfig::max_pending_inbound_channels).
    pub fn has_funded_channel(&self) -> bool {
        self.channel_by_id
            .values()
            .any(|c| c.channel.is_funder() || c.channel.short_channel_id().is_some())
    }

    /// Whether the peer has nothing worth keeping: disconnected and no channel.
    pub fn is_prunable(&self) -> bool {
        !self.connected && self.channel_by_id.is_empty()
    }

    /// Re-keys a channel whose id changed (temporary to final at funding).
    pub fn rekey(&mut self, old: ChannelId, new: ChannelId) {
        if old != new {
            if let Some(entry) = self.channel_by_id.remove(&old) {
                self.channel_by_id.insert(new, entry);
            }
        }
    }
}
