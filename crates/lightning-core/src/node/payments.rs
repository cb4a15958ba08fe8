//! Payments: receiving (the registry of payments we expect, claiming, failing back) and
//! sending along a caller-given route.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::SecretKey;

use super::htlc_policy::ExpectedPayment;
use super::route::{build_payment_onion, RouteError};
use super::{
    ApiError, ApiLimit, Event, ForwardHtlc, HtlcSource, InboundPayment, NodeCore, OutboundPayment,
    PaymentId, Route,
};
use crate::onion::FailureMessage;
use crate::types::{PaymentHash, PaymentPreimage, PaymentSecret};

/// The masked amount of a payment made without one.
const NO_AMOUNT: u64 = u64::MAX;

impl NodeCore {
    /// Makes a payment we expect: returns its hash and the secret the payer must send. The
    /// preimage stays with the application, which gives it to [`NodeCore::claim_funds`] when
    /// [`Event::PaymentClaimable`] arrives.
    ///
    /// Stateless, as LDK's invoices: the secret carries the amount asked for (masked) and a
    /// 24-byte tag over it and the hash, keyed by the node's seed, so nothing is stored and
    /// the call needs no commit; an HTLC is accepted when its secret's tag verifies. A second
    /// payment of the same hash after a claim is therefore accepted again (BOLT 4 lets the
    /// final node do either): the application may fail it back.
    pub fn create_inbound_payment(
        &self,
        payment_preimage: &PaymentPreimage,
        amount_msat: Option<u64>,
    ) -> (PaymentHash, PaymentSecret) {
        let hash = payment_preimage.payment_hash();
        let metadata = amount_msat.unwrap_or(NO_AMOUNT).to_be_bytes();
        let pad = self.inbound_pad(&hash);
        let mut secret = [0u8; 32];
        let (masked, tag_part) = secret.split_at_mut(8);
        for ((m, a), p) in masked.iter_mut().zip(metadata).zip(pad) {
            *m = a ^ p;
        }
        let tag = self.inbound_tag(&hash, masked);
        for (t, v) in tag_part.iter_mut().zip(tag) {
            *t = v;
        }
        (hash, PaymentSecret(secret))
    }

    /// What a payment of `hash` carrying `secret` must satisfy if we made `secret` with
    /// [`NodeCore::create_inbound_payment`]; `None` if its tag does not verify.
    pub(crate) fn stateless_expected(
        &self,
        hash: &PaymentHash,
        secret: &PaymentSecret,
    ) -> Option<ExpectedPayment> {
        let (masked, tag_part) = secret.0.split_at(8);
        let tag = self.inbound_tag(hash, masked);
        // Compared in constant time: the tag is what a prober would guess at (the 24 bytes
        // after the masked amount; the zip stops there).
        let diff = tag
            .iter()
            .zip(tag_part)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return None;
        }
        let pad = self.inbound_pad(hash);
        let mut metadata = [0u8; 8];
        for ((m, s), p) in metadata.iter_mut().zip(masked).zip(pad) {
            *m = s ^ p;
        }
        let amount = u64::from_be_bytes(metadata);
        Some(ExpectedPayment {
            payment_secret: *secret,
            amount_msat: (amount != NO_AMOUNT).then_some(amount),
        })
    }

    fn inbound_pad(&self, hash: &PaymentHash) -> [u8; 32] {
        self.derive(b"inbound-payment-pad", &[&hash.0])
    }

    fn inbound_tag(&self, hash: &PaymentHash, masked: &[u8]) -> [u8; 32] {
        self.derive(b"inbound-payment-tag", &[&hash.0, masked])
    }

    /// Registers a payment we expect whose hash and secret the application chose.
    pub fn register_inbound_payment(
        &mut self,
        payment_hash: PaymentHash,
        payment_secret: PaymentSecret,
        amount_msat: Option<u64>,
    ) {
        self.dirty.node = true;
        self.inbound_payments.insert(
            payment_hash,
            InboundPayment {
                secret: payment_secret,
                amount_msat,
            },
        );
    }

    /// Pays along `route` (first hop: one of our channels, by short channel id). The onion
    /// carries `payment_secret` to the recipient. [`Event::PaymentSent`] or
    /// [`Event::PaymentFailed`] (naming the failing hop) follows.
    ///
    /// Refused at once, with nothing sent or stored: a `payment_id` in flight
    /// ([`ApiError::DuplicatePayment`]) or completed within
    /// [`NodeConfig::payment_id_retention_blocks`](super::NodeConfig::payment_id_retention_blocks)
    /// ([`ApiError::PaymentIdRecentlyUsed`]); a first hop that is not one of our channels
    /// ([`ApiError::UnknownShortChannelId`]) or cannot carry the payment now: another peer,
    /// not ready, closing, peer disconnected, amount below its `htlc_minimum_msat` or above
    /// its outbound capacity ([`ApiError::FirstHop`]).
    pub fn send_payment(
        &mut self,
        route: &Route,
        payment_hash: PaymentHash,
        payment_secret: PaymentSecret,
        payment_id: PaymentId,
    ) -> Result<(), ApiError> {
        self.check_payment_id(&payment_id)?;
        if self.payments.len() >= self.config.max_pending_payments {
            return Err(ApiError::LimitReached(ApiLimit::PendingPayments {
                max: self.config.max_pending_payments,
            }));
        }
        let first = route
            .hops
            .first()
            .ok_or(ApiError::InvalidRoute(RouteError::EmptyRoute))?;
        self.check_first_hop(first.short_channel_id, first.node_id)?;
        // The session key must be fresh per payment: derive it from the payment id (refused
        // above while in flight or recently completed) and the best block (an id free again
        // after the retention window is used at another block).
        let best_hash = self.best_hash.to_byte_array();
        let mut bytes = self.derive(
            b"onion-session-key",
            &[&payment_id.0, &payment_hash.0, &best_hash],
        );
        let session_key = loop {
            if let Ok(key) = SecretKey::from_slice(&bytes) {
                break key;
            }
            bytes = bitcoin::hashes::sha256::Hash::hash(&bytes).to_byte_array();
        };
        let onion = build_payment_onion(
            &self.secp,
            &session_key,
            route,
            &payment_hash,
            &payment_secret,
            self.best_height,
        )
        .map_err(ApiError::InvalidRoute)?;
        self.check_first_hop_amount(first.short_channel_id, onion.first_hop_amount_msat)?;
        self.dirty.node = true;
        self.payments.insert(
            payment_id,
            OutboundPayment {
                payment_hash,
                route: route.clone(),
                shared_secrets: onion.shared_secrets,
            },
        );
        self.route_forward(ForwardHtlc {
            source: HtlcSource::Local(payment_id),
            short_channel_id: first.short_channel_id,
            amount_msat: onion.first_hop_amount_msat,
            cltv_expiry: onion.first_hop_cltv_expiry,
            payment_hash,
            onion: onion.onion,
            incoming_amount_msat: onion.first_hop_amount_msat,
        });
        Ok(())
    }

    /// Claims a payment to us: fulfills its HTLCs with `payment_preimage`.
    /// [`Event::PaymentClaimed`] follows at once (the preimage is out).
    pub fn claim_funds(&mut self, payment_preimage: PaymentPreimage) -> Result<(), ApiError> {
        let hash = payment_preimage.payment_hash();
        let htlcs = self
            .claimable
            .remove(&hash)
            .ok_or(ApiError::NotClaimable(hash))?;
        self.dirty.node = true;
        self.inbound_payments.remove(&hash);
        let mut amount_msat = 0;
        for htlc in htlcs {
            amount_msat += htlc.amount_msat;
            let done = self.with_channel(htlc.node_id, htlc.channel_id, |entry| {
                entry.channel.fulfill_htlc(htlc.htlc_id, payment_preimage)
            });
            if done.is_none() {
                // The channel is closed: its monitor claims the HTLC on chain.
                self.preimage_to_monitor(htlc.channel_id, payment_preimage);
            }
        }
        self.push_event(Event::PaymentClaimed {
            payment_hash: hash,
            amount_msat,
        });
        Ok(())
    }

    /// Refuses a claimable payment to us: fails its HTLCs back with
    /// `incorrect_or_unknown_payment_details`.
    pub fn fail_htlc_backwards(&mut self, payment_hash: PaymentHash) -> Result<(), ApiError> {
        let htlcs = self
            .claimable
            .remove(&payment_hash)
            .ok_or(ApiError::NotClaimable(payment_hash))?;
        self.dirty.node = true;
        self.inbound_payments.remove(&payment_hash);
        for htlc in htlcs {
            let failure = FailureMessage::IncorrectOrUnknownPaymentDetails {
                htlc_msat: htlc.amount_msat,
                height: self.best_height,
            };
            self.fail_incoming(
                htlc.node_id,
                htlc.channel_id,
                htlc.htlc_id,
                &htlc.shared_secret,
                failure,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bitcoin::hashes::Hash;
    use bitcoin::BlockHash;

    use super::*;
    use crate::node::NodeConfig;

    fn node(seed: u8) -> NodeCore {
        let secret = SecretKey::from_slice(&[seed; 32]).expect("a valid key");
        NodeCore::new(
            secret,
            [seed; 32],
            NodeConfig::default(),
            100,
            BlockHash::all_zeros(),
        )
    }

    #[test]
    fn a_stateless_secret_verifies_carries_its_amount_and_stores_nothing() {
        let mut core = node(3);
        let _ = core.take_dirty();
        for amount in [Some(1), Some(12_345_678), Some(u64::MAX - 1), None] {
            let preimage = PaymentPreimage([amount.map_or(0, |a| a as u8); 32]);
            let (hash, secret) = core.create_inbound_payment(&preimage, amount);
            assert_eq!(hash, preimage.payment_hash());
            let expected = core.stateless_expected(&hash, &secret).expect("verifies");
            assert_eq!(expected.amount_msat, amount);
            assert_eq!(expected.payment_secret, secret);
        }
        let dirty = core.take_dirty();
        assert!(
            !dirty.node && dirty.channels.is_empty(),
            "nothing to commit"
        );
    }

    #[test]
    fn a_stateless_secret_is_refused_when_tampered_with_or_for_another_hash_or_node() {
        let core = node(4);
        let preimage = PaymentPreimage([9; 32]);
        let (hash, secret) = core.create_inbound_payment(&preimage, Some(50_000));
        // Any flipped bit, in the masked amount or in the tag.
        for byte in 0..32 {
            let mut bad = secret;
            bad.0[byte] ^= 0x01;
            assert!(
                core.stateless_expected(&hash, &bad).is_none(),
                "byte {byte}"
            );
        }
        let other = PaymentPreimage([10; 32]).payment_hash();
        assert!(core.stateless_expected(&other, &secret).is_none());
        assert!(node(5).stateless_expected(&hash, &secret).is_none());
        // The same inputs give the same secret (any shard of the node derives it alike).
        assert_eq!(
            core.create_inbound_payment(&preimage, Some(50_000)).1,
            secret
        );
    }
}
