//! Payments: receiving (the registry of payments we expect, claiming, failing back) and
//! sending along a caller-given route.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::SecretKey;

use super::route::{build_payment_onion, RouteError};
use super::{
    ApiError, ApiLimit, Event, ForwardHtlc, HtlcSource, InboundPayment, NodeCore, OutboundPayment,
    PaymentId, Route,
};
use crate::onion::FailureMessage;
use crate::types::{PaymentHash, PaymentPreimage, PaymentSecret};

impl NodeCore {
    /// Registers a payment we expect: returns its hash and the secret the payer must send.
    /// The preimage stays with the application, which gives it to
    /// [`NodeCore::claim_funds`] when [`Event::PaymentClaimable`] arrives.
    pub fn create_inbound_payment(
        &mut self,
        payment_preimage: &PaymentPreimage,
        amount_msat: Option<u64>,
    ) -> (PaymentHash, PaymentSecret) {
        let hash = payment_preimage.payment_hash();
        let secret = PaymentSecret(self.derive(b"payment-secret", &[&hash.0]));
        self.dirty.node = true;
        self.inbound_payments.insert(
            hash,
            InboundPayment {
                secret,
                amount_msat,
            },
        );
        (hash, secret)
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
    pub fn send_payment(
        &mut self,
        route: &Route,
        payment_hash: PaymentHash,
        payment_secret: PaymentSecret,
        payment_id: PaymentId,
    ) -> Result<(), ApiError> {
        if self.payments.contains_key(&payment_id) {
            return Err(ApiError::DuplicatePayment(payment_id));
        }
        if self.payments.len() >= self.config.max_pending_payments {
            return Err(ApiError::LimitReached(ApiLimit::PendingPayments {
                max: self.config.max_pending_payments,
            }));
        }
        let first = route
            .hops
            .first()
            .ok_or(ApiError::InvalidRoute(RouteError::EmptyRoute))?;
        // The session key must be fresh per payment: derive it from the payment id, which
        // the application must never reuse (a duplicate id is refused above).
        let mut bytes = self.derive(b"onion-session-key", &[&payment_id.0, &payment_hash.0]);
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
