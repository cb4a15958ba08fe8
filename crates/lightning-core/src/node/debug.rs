//! `Debug` of the node's public types that hold a peer's node id (events, channel listings,
//! API errors): the key prints as its 33-byte compressed encoding in hex ([`KeyHex`]), as
//! `Display` and every encoding a user sees elsewhere show it, instead of secp256k1's
//! internal 64-byte form. Every other field prints as its derived `Debug` would.

use core::fmt;

use super::event::{Event, Output, PaymentFailure};
use super::refusals::FirstHopError;
use super::{ApiError, ApiLimit, ChannelDetails};
use crate::types::KeyHex;

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::PeerNotConnected(node_id) => f
                .debug_tuple("PeerNotConnected")
                .field(&KeyHex(node_id))
                .finish(),
            ApiError::UnknownChannel(id) => f.debug_tuple("UnknownChannel").field(id).finish(),
            ApiError::UnknownShortChannelId(scid) => {
                f.debug_tuple("UnknownShortChannelId").field(scid).finish()
            }
            ApiError::LimitReached(limit) => f.debug_tuple("LimitReached").field(limit).finish(),
            ApiError::Channel(e) => f.debug_tuple("Channel").field(e).finish(),
            ApiError::InvalidRoute(e) => f.debug_tuple("InvalidRoute").field(e).finish(),
            ApiError::DuplicatePayment(id) => f.debug_tuple("DuplicatePayment").field(id).finish(),
            ApiError::NotClaimable(hash) => f.debug_tuple("NotClaimable").field(hash).finish(),
            ApiError::BadFundingTransaction(e) => {
                f.debug_tuple("BadFundingTransaction").field(e).finish()
            }
            ApiError::FirstHop(e) => f.debug_tuple("FirstHop").field(e).finish(),
            ApiError::PaymentIdRecentlyUsed {
                payment_id,
                completed_height,
                retained_until_height,
            } => f
                .debug_struct("PaymentIdRecentlyUsed")
                .field("payment_id", payment_id)
                .field("completed_height", completed_height)
                .field("retained_until_height", retained_until_height)
                .finish(),
            ApiError::ChannelValue(e) => f.debug_tuple("ChannelValue").field(e).finish(),
        }
    }
}

impl fmt::Debug for ApiLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiLimit::PendingPayments { max } => {
                f.debug_struct("PendingPayments").field("max", max).finish()
            }
            ApiLimit::ChannelsPerPeer { node_id, max } => f
                .debug_struct("ChannelsPerPeer")
                .field("node_id", &KeyHex(node_id))
                .field("max", max)
                .finish(),
        }
    }
}

impl fmt::Debug for FirstHopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FirstHopError::WrongPeer {
                short_channel_id,
                channel_node_id,
            } => f
                .debug_struct("WrongPeer")
                .field("short_channel_id", short_channel_id)
                .field("channel_node_id", &KeyHex(channel_node_id))
                .finish(),
            FirstHopError::NotReady {
                short_channel_id,
                phase,
            } => f
                .debug_struct("NotReady")
                .field("short_channel_id", short_channel_id)
                .field("phase", phase)
                .finish(),
            FirstHopError::ShuttingDown { short_channel_id } => f
                .debug_struct("ShuttingDown")
                .field("short_channel_id", short_channel_id)
                .finish(),
            FirstHopError::PeerDisconnected {
                short_channel_id,
                node_id,
            } => f
                .debug_struct("PeerDisconnected")
                .field("short_channel_id", short_channel_id)
                .field("node_id", &KeyHex(node_id))
                .finish(),
            FirstHopError::BelowHtlcMinimum {
                short_channel_id,
                amount_msat,
                htlc_minimum_msat,
            } => f
                .debug_struct("BelowHtlcMinimum")
                .field("short_channel_id", short_channel_id)
                .field("amount_msat", amount_msat)
                .field("htlc_minimum_msat", htlc_minimum_msat)
                .finish(),
            FirstHopError::AboveOutboundCapacity {
                short_channel_id,
                amount_msat,
                outbound_capacity_msat,
            } => f
                .debug_struct("AboveOutboundCapacity")
                .field("short_channel_id", short_channel_id)
                .field("amount_msat", amount_msat)
                .field("outbound_capacity_msat", outbound_capacity_msat)
                .finish(),
        }
    }
}

impl fmt::Debug for PaymentFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymentFailure")
            .field("failing_hop", &self.failing_hop)
            .field("failing_node", &self.failing_node.as_ref().map(KeyHex))
            .field("failure", &self.failure)
            .field("local", &self.local)
            .finish()
    }
}

impl fmt::Debug for ChannelDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelDetails")
            .field("channel_id", &self.channel_id)
            .field("counterparty_node_id", &KeyHex(&self.counterparty_node_id))
            .field("user_channel_id", &self.user_channel_id)
            .field("channel_value_satoshis", &self.channel_value_satoshis)
            .field("is_outbound", &self.is_outbound)
            .field("phase", &self.phase)
            .field("is_usable", &self.is_usable)
            .field("short_channel_id", &self.short_channel_id)
            .field("balances", &self.balances)
            .finish()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::FundingGenerationReady {
                temporary_channel_id,
                counterparty_node_id,
                channel_value_satoshis,
                output_script,
                user_channel_id,
            } => f
                .debug_struct("FundingGenerationReady")
                .field("temporary_channel_id", temporary_channel_id)
                .field("counterparty_node_id", &KeyHex(counterparty_node_id))
                .field("channel_value_satoshis", channel_value_satoshis)
                .field("output_script", output_script)
                .field("user_channel_id", user_channel_id)
                .finish(),
            Event::ChannelPending {
                channel_id,
                counterparty_node_id,
                funding_txo,
                user_channel_id,
            } => f
                .debug_struct("ChannelPending")
                .field("channel_id", channel_id)
                .field("counterparty_node_id", &KeyHex(counterparty_node_id))
                .field("funding_txo", funding_txo)
                .field("user_channel_id", user_channel_id)
                .finish(),
            Event::ChannelReady {
                channel_id,
                counterparty_node_id,
                short_channel_id,
                alias,
                user_channel_id,
            } => f
                .debug_struct("ChannelReady")
                .field("channel_id", channel_id)
                .field("counterparty_node_id", &KeyHex(counterparty_node_id))
                .field("short_channel_id", short_channel_id)
                .field("alias", alias)
                .field("user_channel_id", user_channel_id)
                .finish(),
            Event::PaymentClaimable {
                payment_hash,
                amount_msat,
                payment_secret,
                via_channel_id,
                claim_deadline,
            } => f
                .debug_struct("PaymentClaimable")
                .field("payment_hash", payment_hash)
                .field("amount_msat", amount_msat)
                .field("payment_secret", payment_secret)
                .field("via_channel_id", via_channel_id)
                .field("claim_deadline", claim_deadline)
                .finish(),
            Event::PaymentClaimed {
                payment_hash,
                amount_msat,
            } => f
                .debug_struct("PaymentClaimed")
                .field("payment_hash", payment_hash)
                .field("amount_msat", amount_msat)
                .finish(),
            Event::PaymentSent {
                payment_id,
                payment_hash,
                payment_preimage,
                fee_paid_msat,
            } => f
                .debug_struct("PaymentSent")
                .field("payment_id", payment_id)
                .field("payment_hash", payment_hash)
                .field("payment_preimage", payment_preimage)
                .field("fee_paid_msat", fee_paid_msat)
                .finish(),
            Event::PaymentFailed {
                payment_id,
                payment_hash,
                failure,
            } => f
                .debug_struct("PaymentFailed")
                .field("payment_id", payment_id)
                .field("payment_hash", payment_hash)
                .field("failure", failure)
                .finish(),
            Event::PaymentForwarded {
                prev_channel_id,
                next_channel_id,
                fee_earned_msat,
                outbound_amount_msat,
            } => f
                .debug_struct("PaymentForwarded")
                .field("prev_channel_id", prev_channel_id)
                .field("next_channel_id", next_channel_id)
                .field("fee_earned_msat", fee_earned_msat)
                .field("outbound_amount_msat", outbound_amount_msat)
                .finish(),
            Event::ChannelClosed {
                channel_id,
                counterparty_node_id,
                reason,
            } => f
                .debug_struct("ChannelClosed")
                .field("channel_id", channel_id)
                .field("counterparty_node_id", &KeyHex(counterparty_node_id))
                .field("reason", reason)
                .finish(),
            Event::BroadcastTransaction { tx } => f
                .debug_struct("BroadcastTransaction")
                .field("tx", tx)
                .finish(),
            Event::OnChain {
                channel_id,
                counterparty_node_id,
                event,
            } => f
                .debug_struct("OnChain")
                .field("channel_id", channel_id)
                .field("counterparty_node_id", &KeyHex(counterparty_node_id))
                .field("event", event)
                .finish(),
        }
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::SendMessage { node_id, msg } => f
                .debug_struct("SendMessage")
                .field("node_id", &KeyHex(node_id))
                .field("msg", msg)
                .finish(),
            Output::Disconnect { node_id } => f
                .debug_struct("Disconnect")
                .field("node_id", &KeyHex(node_id))
                .finish(),
            Output::Event(event) => f.debug_tuple("Event").field(event).finish(),
            Output::Forward(forward) => f.debug_tuple("Forward").field(forward).finish(),
            Output::Resolve(resolution) => f.debug_tuple("Resolve").field(resolution).finish(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bitcoin::hashes::Hash;
    use bitcoin::secp256k1::{PublicKey, SecretKey};
    use bitcoin::{OutPoint, ScriptBuf, Txid};

    use super::*;
    use crate::node::event::ClosureReason;
    use crate::types::{ChannelId, PaymentHash, ShortChannelId};

    fn key() -> PublicKey {
        PublicKey::from_secret_key(
            &crate::secp::ctx(),
            &SecretKey::from_slice(&[7; 32]).unwrap(),
        )
    }

    /// The key's compressed hex, and secp256k1's internal form that must not appear.
    fn hex_and_internal() -> (String, String) {
        let k = key();
        let internal = format!("{:?}", k);
        (k.to_string(), internal)
    }

    fn assert_key_hex(debug: &str) {
        let (hex, internal) = hex_and_internal();
        assert_eq!(hex.len(), 66);
        assert!(
            debug.contains(&format!("PublicKey({hex})")),
            "{debug} lacks the compressed key"
        );
        assert!(
            !debug.contains(&internal),
            "{debug} holds the internal form"
        );
    }

    #[test]
    fn events_print_keys_as_compressed_hex() {
        let c = ChannelId([0xab; 32]);
        let events = [
            Event::FundingGenerationReady {
                temporary_channel_id: c,
                counterparty_node_id: key(),
                channel_value_satoshis: 1,
                output_script: ScriptBuf::new(),
                user_channel_id: 1,
            },
            Event::ChannelPending {
                channel_id: c,
                counterparty_node_id: key(),
                funding_txo: OutPoint {
                    txid: Txid::from_byte_array([1; 32]),
                    vout: 0,
                },
                user_channel_id: 1,
            },
            Event::ChannelReady {
                channel_id: c,
                counterparty_node_id: key(),
                short_channel_id: Some(ShortChannelId::new(1, 2, 3)),
                alias: None,
                user_channel_id: 1,
            },
            Event::ChannelClosed {
                channel_id: c,
                counterparty_node_id: key(),
                reason: ClosureReason::CooperativeClosure,
            },
            Event::PaymentFailed {
                payment_id: crate::payment::PaymentId([0xcd; 32]),
                payment_hash: PaymentHash([0xef; 32]),
                failure: PaymentFailure {
                    failing_hop: Some(0),
                    failing_node: Some(key()),
                    failure: None,
                    local: false,
                },
            },
        ];
        for event in &events {
            let debug = format!("{event:?}");
            assert_key_hex(&debug);
            assert!(
                debug.contains(&format!("ChannelId({})", "ab".repeat(32)))
                    || debug.contains(&"cd".repeat(32)),
                "{debug}"
            );
        }
        let out = Output::Disconnect { node_id: key() };
        assert_key_hex(&format!("{out:?}"));
        let wrapped = Output::Event(events[0].clone());
        assert_key_hex(&format!("{wrapped:?}"));
        assert!(format!("{wrapped:?}").starts_with("Event(FundingGenerationReady {"));
    }

    #[test]
    fn api_errors_print_keys_as_compressed_hex() {
        let scid = ShortChannelId::new(1, 2, 3);
        let errors = [
            ApiError::PeerNotConnected(key()),
            ApiError::LimitReached(ApiLimit::ChannelsPerPeer {
                node_id: key(),
                max: 3,
            }),
            ApiError::FirstHop(FirstHopError::WrongPeer {
                short_channel_id: scid,
                channel_node_id: key(),
            }),
            ApiError::FirstHop(FirstHopError::PeerDisconnected {
                short_channel_id: scid,
                node_id: key(),
            }),
        ];
        for error in &errors {
            assert_key_hex(&format!("{error:?}"));
        }
        assert_eq!(
            format!("{:?}", ApiError::UnknownShortChannelId(scid)),
            "UnknownShortChannelId(1x2x3)"
        );
        assert_eq!(
            format!(
                "{:?}",
                ApiError::DuplicatePayment(crate::payment::PaymentId([1; 32]))
            ),
            format!("DuplicatePayment(PaymentId({}))", "01".repeat(32))
        );
    }

    #[test]
    fn payment_ids_print_as_hex() {
        let id = crate::payment::PaymentId([0x0f; 32]);
        assert_eq!(id.to_string(), "0f".repeat(32));
        assert_eq!(format!("{id:?}"), format!("PaymentId({})", "0f".repeat(32)));
        let hash = PaymentHash([0x0f; 32]);
        assert_eq!(
            format!("{hash:?}"),
            format!("PaymentHash({})", "0f".repeat(32))
        );
        assert_eq!(format!("{}", ChannelId([0x0f; 32])), "0f".repeat(32));
    }

    #[test]
    fn route_hops_print_keys_as_compressed_hex() {
        let hop = crate::payment::RouteHop {
            node_id: key(),
            short_channel_id: ShortChannelId::new(1, 2, 3),
            fee_msat: 5,
            cltv_expiry_delta: 40,
        };
        let route = crate::payment::Route { hops: vec![hop] };
        let debug = format!("{route:?}");
        assert_key_hex(&debug);
        assert!(debug.contains("short_channel_id: 1x2x3"), "{debug}");
    }
}
