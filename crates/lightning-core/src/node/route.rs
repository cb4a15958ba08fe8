//! Routes given by the caller and the onion a payment along one of them carries.
//!
//! lnshard does not find routes: the caller gives one (from its own router or gossip), in
//! LDK's shape. [`build_payment_onion`] turns it into the first HTLC's amount and expiry and
//! the BOLT 4 onion whose payloads tell each hop what to forward.

use bitcoin::secp256k1::{Secp256k1, SecretKey, Signing, Verification};

use crate::onion::payload::PaymentData;
use crate::onion::{construct_onion, ConstructError, HopPayload, HopSharedSecret, OnionHop};
pub use crate::payment::{Route, RouteHop};
use crate::types::{PaymentHash, PaymentSecret};

/// Why a payment onion could not be built for a route.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// The route had no hops.
    EmptyRoute,
    /// The route's amounts or expiries overflow.
    Overflow,
    /// The onion could not hold the route.
    Onion(ConstructError),
}

impl core::fmt::Display for RouteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RouteError::EmptyRoute => write!(f, "route has no hops"),
            RouteError::Overflow => write!(f, "route amounts or cltv expiries overflow"),
            RouteError::Onion(e) => write!(f, "cannot build the onion for this route: {e:?}"),
        }
    }
}

impl std::error::Error for RouteError {}

/// What the first hop's HTLC carries, and what the origin keeps to read a failure.
#[derive(Debug, Clone)]
pub struct PaymentOnion {
    /// The first HTLC's amount: the final amount plus every forwarding fee.
    pub first_hop_amount_msat: u64,
    /// The first HTLC's absolute CLTV expiry.
    pub first_hop_cltv_expiry: u32,
    /// The 1366-byte onion for the first hop.
    pub onion: Box<[u8; 1366]>,
    /// The shared secret with each hop, in route order, to decrypt a returned failure.
    pub shared_secrets: Vec<HopSharedSecret>,
}

/// Builds the onion for a payment along `route` at block `best_height`.
///
/// Working back from the recipient: the last HTLC carries the final amount and expires at
/// `best_height + 1 + final delta` (one block of slack, as LDK does, in case a block arrives
/// while the HTLC travels); each earlier HTLC adds its hop's fee and CLTV delta. The
/// recipient's payload carries `payment_data` (secret and total) so it can match the payment.
pub fn build_payment_onion<C: Signing + Verification>(
    secp: &Secp256k1<C>,
    session_key: &SecretKey,
    route: &Route,
    payment_hash: &PaymentHash,
    payment_secret: &PaymentSecret,
    best_height: u32,
) -> Result<PaymentOnion, RouteError> {
    let last = route.hops.last().ok_or(RouteError::EmptyRoute)?;
    let total_msat = last.fee_msat;
    let mut amount = last.fee_msat;
    let mut cltv = best_height
        .checked_add(1)
        .and_then(|h| h.checked_add(last.cltv_expiry_delta))
        .ok_or(RouteError::Overflow)?;
    let mut payloads = vec![HopPayload::receive(
        amount,
        cltv,
        Some(PaymentData {
            payment_secret: *payment_secret,
            total_msat,
        }),
    )];
    // Hop i forwards over hop i+1's channel: its payload names that channel and what the
    // HTLC on it carries; the HTLC reaching hop i carries that plus hop i's fee and delta.
    for pair in route.hops.windows(2).rev() {
        let [hop, next] = pair else { continue };
        payloads.push(HopPayload::forward(next.short_channel_id, amount, cltv));
        amount = amount
            .checked_add(hop.fee_msat)
            .ok_or(RouteError::Overflow)?;
        cltv = cltv
            .checked_add(hop.cltv_expiry_delta)
            .ok_or(RouteError::Overflow)?;
    }
    payloads.reverse();
    let hops: Vec<OnionHop> = route
        .hops
        .iter()
        .zip(payloads)
        .map(|(hop, payload)| OnionHop {
            node_id: hop.node_id,
            payload: payload.encode(),
        })
        .collect();
    let constructed =
        construct_onion(secp, session_key, &hops, &payment_hash.0).map_err(RouteError::Onion)?;
    let shared_secrets = constructed.shared_secrets();
    Ok(PaymentOnion {
        first_hop_amount_msat: amount,
        first_hop_cltv_expiry: cltv,
        onion: Box::new(
            constructed
                .packet
                .encode()
                .try_into()
                .expect("an onion packet always encodes to 1366 bytes"),
        ),
        shared_secrets,
    })
}
