//! `NodeCore` configuration: every limit explicit, with safe defaults.

use bitcoin::constants::ChainHash;
use bitcoin::Network;

use super::htlc_policy::ForwardingPolicy;
use crate::channel::ChannelConfig;
use crate::wire::{Feature, Features};

/// The default of [`NodeConfig::max_pending_inbound_channels`].
pub const DEFAULT_MAX_PENDING_INBOUND_CHANNELS: usize = 64;

/// BOLT 2: a fundee "SHOULD forget the channel if it does not see the correct funding
/// transaction after a timeout of 2016 blocks" (counted from the block at which we accepted
/// the channel).
pub const FUNDING_CONF_DEADLINE_BLOCKS: u32 = 2016;

/// Configuration of one node (shared by all its shards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// The chain our channels live on; peers whose `init` names other chains only are
    /// disconnected, and `open_channel` for another chain is refused.
    pub chain_hash: ChainHash,
    /// Limits and parameters for each channel.
    pub channel: ChannelConfig,
    /// Our fee and CLTV policy for forwarded HTLCs.
    pub forwarding: ForwardingPolicy,
    /// Channels a peer may have open-but-unfunded with us at once (LDK uses 4): bounds the
    /// state a peer can make us hold without committing funds.
    pub max_unfunded_channels_per_peer: usize,
    /// Channels of any state a single peer may have with us.
    pub max_channels_per_peer: usize,
    /// The minimum blocks left before expiry of an HTLC paid to us (BOLT 11's
    /// `min_final_cltv_expiry_delta`).
    pub min_final_cltv_expiry_delta: u32,
    /// BOLT 2's `G`: blocks past an offered HTLC's expiry after which we fail the channel and
    /// time the HTLC out on chain.
    pub offered_htlc_grace_blocks: u32,
    /// Blocks before an unclaimed received HTLC's expiry at which we fail it back (BOLT 2's
    /// fulfillment deadline, `2R+G+S`).
    pub received_htlc_deadline_blocks: u32,
    /// Outbound payments in flight at once (bounds the state the application can make us hold).
    pub max_pending_payments: usize,
    /// Inbound channels whose funding has not confirmed, in total over the peers that have no
    /// funded channel with us (none we fund, none confirmed): an `open_channel` from such a
    /// peer beyond it is refused with an `error` for its `temporary_channel_id`. Node ids cost
    /// nothing, so the per-peer limit alone bounds nothing. A peer with a funded channel is
    /// not held to it (only to the per-peer limits).
    ///
    /// Each `NodeCore` applies it to the peers it owns: a node split into shards gives each
    /// its share ([`NodeConfig::shard_share`]), so the node as a whole holds at most this many
    /// (rounded up to a multiple of the shard count).
    /// Last in the struct: the node record stores the config last, so this field was appended
    /// by format version 2.
    pub max_pending_inbound_channels: usize,
    /// Blocks a completed payment's id stays refused after the payment ended
    /// ([`ApiError::PaymentIdRecentlyUsed`](super::ApiError::PaymentIdRecentlyUsed)), so that
    /// an application retrying a call whose answer it lost never pays twice (LDK's
    /// idempotency rule). The ids are stored with the completion height and forgotten once
    /// the best block is this many blocks past it. Counted in blocks, the core's only clock.
    pub payment_id_retention_blocks: u32,
}

/// The default of [`NodeConfig::payment_id_retention_blocks`]: about a day of blocks.
pub const DEFAULT_PAYMENT_ID_RETENTION_BLOCKS: u32 = 144;

impl NodeConfig {
    /// The configuration of one of `shards` `NodeCore`s that together are one node: the
    /// node-wide caps are divided among them (rounded up, at least one each), since each core
    /// applies them only to the peers it owns.
    pub fn shard_share(&self, shards: usize) -> NodeConfig {
        let shards = shards.max(1);
        NodeConfig {
            max_pending_inbound_channels: self.max_pending_inbound_channels.div_ceil(shards).max(1),
            ..self.clone()
        }
    }

    /// The defaults for `network`.
    pub fn for_network(network: Network) -> Self {
        NodeConfig {
            chain_hash: ChainHash::using_genesis_block(network),
            // Today's nodes default to anchor channels; a peer without them gets
            // static_remotekey.
            channel: ChannelConfig {
                negotiate_anchors: true,
                ..ChannelConfig::default()
            },
            forwarding: ForwardingPolicy::default(),
            max_unfunded_channels_per_peer: 4,
            max_channels_per_peer: 64,
            min_final_cltv_expiry_delta: 42,
            offered_htlc_grace_blocks: 2,
            received_htlc_deadline_blocks: 18,
            max_pending_payments: 100_000,
            max_pending_inbound_channels: DEFAULT_MAX_PENDING_INBOUND_CHANNELS,
            payment_id_retention_blocks: DEFAULT_PAYMENT_ID_RETENTION_BLOCKS,
        }
    }

    /// The features we send in `init`.
    pub fn init_features(&self) -> Features {
        let mut features = Features::empty();
        for required in [
            Feature::DataLossProtect,
            Feature::VarOnionOptin,
            Feature::StaticRemoteKey,
            Feature::PaymentSecret,
            Feature::ChannelType,
        ] {
            features.set_required(required);
        }
        for optional in [Feature::Anchors, Feature::ShutdownAnySegwit] {
            features.set_optional(optional);
        }
        features
    }
}

/// Ping/pong liveness (BOLT 1): how often we ping a peer that has sent `init`, and how long
/// its `pong` may take before we disconnect it. Host time, in milliseconds, comes in through
/// [`NodeCore::timer_tick`](super::NodeCore::timer_tick); the core reads no clock. Not part of
/// the persisted configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// Milliseconds between our pings to one peer.
    pub ping_interval_ms: u64,
    /// Milliseconds a peer has to answer a ping before it is disconnected.
    pub pong_timeout_ms: u64,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            ping_interval_ms: 30_000,
            pong_timeout_ms: 15_000,
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig::for_network(Network::Regtest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_share_the_node_wide_cap_on_pending_inbound_channels() {
        let node = NodeConfig {
            max_pending_inbound_channels: 64,
            ..NodeConfig::default()
        };
        for shards in [1usize, 2, 3, 7, 16] {
            let share = node.shard_share(shards).max_pending_inbound_channels;
            assert!(share * shards >= 64, "{shards} shards hold the whole cap");
            assert!(
                share * shards < 64 + shards,
                "{shards} shards: {share} each"
            );
        }
        assert_eq!(node.shard_share(1), node, "one shard is the whole node");
        assert_eq!(node.shard_share(0).max_pending_inbound_channels, 64);
        assert_eq!(node.shard_share(100).max_pending_inbound_channels, 1);
    }
}
