//! Payment vocabulary shared by the node ([`crate::node`]) and its stored records
//! ([`crate::persist`]): the application's payment handle, where an offered HTLC came from,
//! and the caller's route. Plain values with no behaviour beyond arithmetic on a route, so
//! that `persist` never depends on `node` (the arrow runs from `node` to `persist` only).
//!
//! They derive serde because node records store them: their serde form is part of the
//! stored format (see [`crate::persist`]), so a change to them is a format change.

use bitcoin::secp256k1::PublicKey;
use serde::{Deserialize, Serialize};

use crate::types::{ChannelId, KeyHex, ShortChannelId};

crate::types::byte_array_type!(
    /// The application's handle for one outbound payment (`Debug` and `Display` in hex, as
    /// the other ids).
    PaymentId,
    32
);

/// Where an HTLC we offered came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HtlcSource {
    /// Our own payment.
    Local(PaymentId),
    /// An HTLC a peer offered us on `channel_id`, which we forward.
    Forwarded {
        /// The incoming channel.
        channel_id: ChannelId,
        /// The incoming HTLC's id.
        htlc_id: u64,
    },
}

/// One hop of a route: the channel to a node, and what that node is paid.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteHop {
    /// The node at the far end of this hop's channel.
    pub node_id: PublicKey,
    /// The channel (real short channel id or alias) that reaches `node_id`.
    pub short_channel_id: ShortChannelId,
    /// For a forwarding hop, the fee `node_id` charges to forward over the next hop's
    /// channel; for the last hop, the amount delivered to the recipient.
    pub fee_msat: u64,
    /// For a forwarding hop, the CLTV delta `node_id` requires on the next hop's channel; for
    /// the last hop, the recipient's minimum final CLTV delta.
    pub cltv_expiry_delta: u32,
}

impl core::fmt::Debug for RouteHop {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RouteHop")
            .field("node_id", &KeyHex(&self.node_id))
            .field("short_channel_id", &self.short_channel_id)
            .field("fee_msat", &self.fee_msat)
            .field("cltv_expiry_delta", &self.cltv_expiry_delta)
            .finish()
    }
}

/// A route: the hops from our first channel to the recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The hops, first (our peer) to last (the recipient).
    pub hops: Vec<RouteHop>,
}

impl Route {
    /// The amount delivered to the recipient.
    pub fn final_amount_msat(&self) -> u64 {
        self.hops.last().map_or(0, |h| h.fee_msat)
    }

    /// The fees paid to forwarding hops.
    pub fn total_fees_msat(&self) -> u64 {
        let n = self.hops.len();
        self.hops
            .iter()
            .take(n.saturating_sub(1))
            .map(|h| h.fee_msat)
            .sum()
    }
}
