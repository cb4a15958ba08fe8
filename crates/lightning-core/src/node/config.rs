//! `NodeCore` configuration: every limit explicit, with safe defaults.

use bitcoin::constants::ChainHash;
use bitcoin::Network;
use serde::{Deserialize, Serialize};

use super::htlc_policy::ForwardingPolicy;
use crate::channel::ChannelConfig;
use crate::wire::{Feature, Features};

/// Configuration of one node (shared by all its shards).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl NodeConfig {
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
