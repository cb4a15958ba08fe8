//! What a node does with an HTLC a peer has irrevocably committed to it: peel the onion, then
//! forward it (if our fee and CLTV policy is met) or, at the final hop, check it against the
//! payment we expect.
//!
//! Everything here is a pure function of the HTLC, our keys, our policy and the best block, so
//! the shard that owns the incoming channel can decide without touching any other state.

use bitcoin::secp256k1::{Secp256k1, SecretKey, Verification};

use crate::onion::payload::ReceivePayload;
use crate::onion::{
    process_payment_onion, FailureMessage, HopSharedSecret, OnionPacket, OnionProcessError,
    PaymentHop, PaymentPayload,
};
use crate::types::{PaymentHash, PaymentSecret, ShortChannelId};

/// Our forwarding policy, the same on every outgoing channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardingPolicy {
    /// Base fee per forwarded HTLC, in millisatoshi.
    pub fee_base_msat: u32,
    /// Proportional fee, in millionths of the forwarded amount.
    pub fee_proportional_millionths: u32,
    /// Blocks we require between the incoming and the outgoing HTLC's expiry.
    pub cltv_expiry_delta: u16,
    /// An outgoing HTLC must expire at least this many blocks after the best block.
    pub min_outgoing_cltv_margin: u32,
    /// An outgoing HTLC may expire at most this many blocks after the best block.
    pub max_outgoing_cltv_ahead: u32,
}

impl Default for ForwardingPolicy {
    fn default() -> Self {
        ForwardingPolicy {
            fee_base_msat: 1_000,
            fee_proportional_millionths: 100,
            cltv_expiry_delta: 72,
            min_outgoing_cltv_margin: 18,
            max_outgoing_cltv_ahead: 2016,
        }
    }
}

impl ForwardingPolicy {
    /// The fee we charge to forward `amount_msat`.
    pub fn fee_for(&self, amount_msat: u64) -> u64 {
        let proportional =
            u128::from(amount_msat) * u128::from(self.fee_proportional_millionths) / 1_000_000;
        u64::from(self.fee_base_msat)
            .saturating_add(u64::try_from(proportional).unwrap_or(u64::MAX))
    }
}

/// An HTLC the peer irrevocably committed to us, as the onion needs it.
#[derive(Debug, Clone, Copy)]
pub struct IncomingHtlc<'a> {
    /// The HTLC amount.
    pub amount_msat: u64,
    /// The HTLC's absolute expiry.
    pub cltv_expiry: u32,
    /// The payment hash (the onion's associated data).
    pub payment_hash: PaymentHash,
    /// The onion packet from `update_add_htlc`.
    pub onion: &'a [u8; 1366],
}

/// What to do with an incoming HTLC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HtlcDecision {
    /// Forward over the channel `short_channel_id` with the given amount, expiry and onion.
    Forward {
        /// The outgoing channel the onion names.
        short_channel_id: ShortChannelId,
        /// The outgoing HTLC's amount.
        amount_msat: u64,
        /// The outgoing HTLC's expiry.
        cltv_expiry: u32,
        /// The onion for the next hop.
        onion: Box<[u8; 1366]>,
        /// The secret shared with the origin, to wrap a failure coming back.
        shared_secret: HopSharedSecret,
    },
    /// We are the recipient: check the payload against the payment we expect
    /// ([`check_receive`]).
    Receive {
        /// The recipient's payload.
        payload: ReceivePayload,
        /// The secret shared with the origin, to build a failure.
        shared_secret: HopSharedSecret,
    },
    /// The onion itself is bad (BADONION): answer with `update_fail_malformed_htlc`.
    FailMalformed {
        /// The BADONION failure code.
        failure_code: u16,
        /// SHA256 of the onion as received.
        sha256_of_onion: [u8; 32],
    },
    /// Fail back with an onion-encrypted failure message.
    Fail {
        /// The secret shared with the origin.
        shared_secret: HopSharedSecret,
        /// The failure to report.
        failure: FailureMessage,
    },
}

/// Peels an incoming HTLC's onion and applies our forwarding policy (BOLT 4, "Accepting and
/// Forwarding a Payment"). Checks that need the outgoing channel (known peer, amount minimum,
/// capacity) are made by that channel's owner.
pub fn decide_incoming<C: Verification>(
    secp: &Secp256k1<C>,
    node_secret: &SecretKey,
    htlc: IncomingHtlc<'_>,
    policy: &ForwardingPolicy,
    best_height: u32,
) -> HtlcDecision {
    let packet = match OnionPacket::decode(htlc.onion) {
        Ok(packet) => packet,
        Err(_) => {
            // The packet is fixed-size, so this cannot happen; answer as for a bad version.
            return malformed(&OnionProcessError::UnknownVersion {
                version: 0xff,
                sha256_of_onion: [0; 32],
            });
        }
    };
    let hop = match process_payment_onion(secp, node_secret, &packet, &htlc.payment_hash) {
        Ok(hop) => hop,
        Err(error) => {
            return match error.shared_secret() {
                Some(shared_secret) => HtlcDecision::Fail {
                    shared_secret: *shared_secret,
                    failure: error.failure_message(),
                },
                None => malformed(&error),
            }
        }
    };
    match hop {
        PaymentHop::Forward {
            shared_secret,
            payload: PaymentPayload::Forward(fwd),
            next_packet,
        } => {
            let fail = |failure| HtlcDecision::Fail {
                shared_secret,
                failure,
            };
            let fee = htlc.amount_msat.checked_sub(fwd.amt_to_forward);
            if fee.is_none_or(|fee| fee < policy.fee_for(fwd.amt_to_forward)) {
                return fail(FailureMessage::FeeInsufficient {
                    htlc_msat: htlc.amount_msat,
                    channel_update: Vec::new(),
                });
            }
            let delta = htlc.cltv_expiry.checked_sub(fwd.outgoing_cltv_value);
            if delta.is_none_or(|d| d < u32::from(policy.cltv_expiry_delta)) {
                return fail(FailureMessage::IncorrectCltvExpiry {
                    cltv_expiry: htlc.cltv_expiry,
                    channel_update: Vec::new(),
                });
            }
            if fwd.outgoing_cltv_value
                <= best_height.saturating_add(policy.min_outgoing_cltv_margin)
            {
                return fail(FailureMessage::ExpiryTooSoon {
                    channel_update: Vec::new(),
                });
            }
            if fwd.outgoing_cltv_value > best_height.saturating_add(policy.max_outgoing_cltv_ahead)
            {
                return fail(FailureMessage::ExpiryTooFar);
            }
            HtlcDecision::Forward {
                short_channel_id: fwd.short_channel_id,
                amount_msat: fwd.amt_to_forward,
                cltv_expiry: fwd.outgoing_cltv_value,
                onion: Box::new(
                    next_packet
                        .encode()
                        .try_into()
                        .expect("an onion packet always encodes to 1366 bytes"),
                ),
                shared_secret,
            }
        }
        PaymentHop::Receive {
            shared_secret,
            payload: PaymentPayload::Receive(payload),
        } => HtlcDecision::Receive {
            payload,
            shared_secret,
        },
        // Route blinding is not supported: a blinded payload is a payload we cannot act on.
        PaymentHop::Forward { shared_secret, .. } | PaymentHop::Receive { shared_secret, .. } => {
            HtlcDecision::Fail {
                shared_secret,
                failure: FailureMessage::InvalidOnionPayload { location: None },
            }
        }
    }
}

fn malformed(error: &OnionProcessError) -> HtlcDecision {
    let sha256_of_onion = match error {
        OnionProcessError::UnknownVersion {
            sha256_of_onion, ..
        }
        | OnionProcessError::InvalidEphemeralKey {
            sha256_of_onion, ..
        }
        | OnionProcessError::InvalidHmac {
            sha256_of_onion, ..
        } => *sha256_of_onion,
        _ => [0; 32],
    };
    HtlcDecision::FailMalformed {
        failure_code: error.failure_code().0,
        sha256_of_onion,
    }
}

/// A payment we are ready to receive: its secret and, if invoiced, its amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedPayment {
    /// The secret the payer must put in `payment_data`.
    pub payment_secret: PaymentSecret,
    /// The amount we asked for, if any.
    pub amount_msat: Option<u64>,
}

/// The final node's checks (BOLT 4, "an intermediate hop MUST NOT, but the final node"), for a
/// single-part payment: every failure is `incorrect_or_unknown_payment_details` except the two
/// `final_incorrect_*` ones, so a probing payer learns nothing more.
pub fn check_receive(
    payload: &ReceivePayload,
    htlc_amount_msat: u64,
    htlc_cltv_expiry: u32,
    best_height: u32,
    min_final_cltv_expiry_delta: u32,
    expected: Option<&ExpectedPayment>,
) -> Result<(), FailureMessage> {
    let unknown = FailureMessage::IncorrectOrUnknownPaymentDetails {
        htlc_msat: htlc_amount_msat,
        height: best_height,
    };
    if htlc_cltv_expiry < payload.outgoing_cltv_value {
        return Err(FailureMessage::FinalIncorrectCltvExpiry {
            cltv_expiry: htlc_cltv_expiry,
        });
    }
    if htlc_amount_msat < payload.amt_to_forward {
        return Err(FailureMessage::FinalIncorrectHtlcAmount {
            incoming_htlc_amt: htlc_amount_msat,
        });
    }
    let Some(expected) = expected else {
        return Err(unknown);
    };
    if payload.payment_secret != Some(expected.payment_secret) {
        return Err(unknown);
    }
    if htlc_cltv_expiry < best_height.saturating_add(min_final_cltv_expiry_delta) {
        return Err(unknown);
    }
    // Multi-part payments are not assembled: the HTLC must carry the whole total.
    if payload.total_msat > htlc_amount_msat {
        return Err(unknown);
    }
    if let Some(amount) = expected.amount_msat {
        if htlc_amount_msat < amount || htlc_amount_msat > amount.saturating_mul(2) {
            return Err(unknown);
        }
    }
    Ok(())
}
