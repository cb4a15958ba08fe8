//! HTLCs moving through the node: what to do with one a peer committed to us, adding one on
//! an outgoing channel for whoever asked (a forward or our own payment), and carrying each
//! result back to where the HTLC came from.

use bitcoin::secp256k1::PublicKey;

use super::htlc_policy::{
    check_receive, decide_incoming, ExpectedPayment, HtlcDecision, IncomingHtlc,
};
use super::{
    ClaimableHtlc, Event, ForwardHtlc, ForwardOutcome, ForwardResolution, HtlcSource, NodeCore,
    OfferedHtlc, Output, PaymentFailure, UpstreamHtlc,
};
use crate::channel::HtlcFailure;
use crate::onion::{
    create_failure, decrypt_failure, forward_failure, Failure, FailureMessage, ReturnedFailure,
    FAILURE_PADDED_LEN,
};
use crate::types::{ChannelId, PaymentHash, PaymentPreimage};

impl NodeCore {
    /// An HTLC a peer irrevocably committed to us: peel its onion and forward, receive or
    /// fail it. A dust HTLC that takes the channel's dust exposure over its limit
    /// ([`Channel::inbound_dust_exposure_exceeded`](crate::channel::Channel::inbound_dust_exposure_exceeded))
    /// is failed back with `temporary_channel_failure` whatever its onion says.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_committed_htlc(
        &mut self,
        node_id: PublicKey,
        channel_id: ChannelId,
        htlc_id: u64,
        amount_msat: u64,
        payment_hash: PaymentHash,
        cltv_expiry: u32,
        onion: &[u8; 1366],
    ) {
        let htlc = IncomingHtlc {
            amount_msat,
            cltv_expiry,
            payment_hash,
            onion,
        };
        let decision = decide_incoming(
            &self.secp,
            &self.node_secret,
            htlc,
            &self.config.forwarding,
            self.best_height,
        );
        let over_dust_limit = self
            .channel(&node_id, &channel_id)
            .and_then(|c| c.inbound_dust_exposure_exceeded(htlc_id))
            .is_some();
        let decision = match decision {
            HtlcDecision::Forward { shared_secret, .. }
            | HtlcDecision::Receive { shared_secret, .. }
                if over_dust_limit =>
            {
                HtlcDecision::Fail {
                    shared_secret,
                    failure: FailureMessage::TemporaryChannelFailure {
                        channel_update: Vec::new(),
                    },
                }
            }
            other => other,
        };
        match decision {
            HtlcDecision::Forward {
                short_channel_id,
                amount_msat: out_amount,
                cltv_expiry: out_cltv,
                onion,
                shared_secret,
            } => {
                self.upstream.insert(
                    (channel_id, htlc_id),
                    UpstreamHtlc {
                        node_id,
                        shared_secret,
                    },
                );
                self.route_forward(ForwardHtlc {
                    source: HtlcSource::Forwarded {
                        channel_id,
                        htlc_id,
                    },
                    short_channel_id,
                    amount_msat: out_amount,
                    cltv_expiry: out_cltv,
                    payment_hash,
                    onion,
                    incoming_amount_msat: amount_msat,
                });
            }
            HtlcDecision::Receive {
                payload,
                shared_secret,
            } => {
                let expected = match self.inbound_payments.get(&payment_hash) {
                    Some(p) => Some(ExpectedPayment {
                        payment_secret: p.secret,
                        amount_msat: p.amount_msat,
                    }),
                    None => payload
                        .payment_secret
                        .and_then(|secret| self.stateless_expected(&payment_hash, &secret)),
                };
                let already_claimable = self.claimable.contains_key(&payment_hash);
                let check = if already_claimable {
                    // One HTLC per payment: a second one for the same hash is refused.
                    Err(FailureMessage::IncorrectOrUnknownPaymentDetails {
                        htlc_msat: amount_msat,
                        height: self.best_height,
                    })
                } else {
                    check_receive(
                        &payload,
                        amount_msat,
                        cltv_expiry,
                        self.best_height,
                        self.config.min_final_cltv_expiry_delta,
                        expected.as_ref(),
                    )
                };
                match check {
                    Ok(()) => {
                        self.dirty.node = true;
                        self.claimable
                            .entry(payment_hash)
                            .or_default()
                            .push(ClaimableHtlc {
                                node_id,
                                channel_id,
                                htlc_id,
                                amount_msat,
                                cltv_expiry,
                                shared_secret,
                            });
                        self.push_event(Event::PaymentClaimable {
                            payment_hash,
                            amount_msat,
                            payment_secret: payload.payment_secret,
                            via_channel_id: channel_id,
                            claim_deadline: cltv_expiry,
                        });
                    }
                    Err(failure) => {
                        self.fail_incoming(node_id, channel_id, htlc_id, &shared_secret, failure);
                    }
                }
            }
            HtlcDecision::FailMalformed {
                failure_code,
                sha256_of_onion,
            } => {
                self.with_channel(node_id, channel_id, |entry| {
                    entry
                        .channel
                        .fail_malformed_htlc(htlc_id, sha256_of_onion, failure_code)
                });
            }
            HtlcDecision::Fail {
                shared_secret,
                failure,
            } => {
                self.fail_incoming(node_id, channel_id, htlc_id, &shared_secret, failure);
            }
        }
    }

    /// Fails an incoming HTLC with a failure built here.
    pub(super) fn fail_incoming(
        &mut self,
        node_id: PublicKey,
        channel_id: ChannelId,
        htlc_id: u64,
        shared_secret: &crate::onion::HopSharedSecret,
        failure: FailureMessage,
    ) {
        let reason = match create_failure(
            shared_secret,
            &Failure::from(failure),
            FAILURE_PADDED_LEN,
            None,
        ) {
            Ok(returned) => returned.reason,
            // A failure too large to encode (never for the messages built here): report a
            // generic node failure instead.
            Err(_) => match create_failure(
                shared_secret,
                &Failure::from(FailureMessage::TemporaryNodeFailure),
                FAILURE_PADDED_LEN,
                None,
            ) {
                Ok(returned) => returned.reason,
                Err(_) => return,
            },
        };
        self.with_channel(node_id, channel_id, |entry| {
            entry.channel.fail_htlc(htlc_id, reason)
        });
    }

    /// Hands an HTLC to the owner of its outgoing channel: this core if it owns the channel,
    /// otherwise an [`Output::Forward`] for the engine to route.
    pub(super) fn route_forward(&mut self, forward: ForwardHtlc) {
        if self.scid_to_channel.contains_key(&forward.short_channel_id) {
            self.handle_forward(forward);
        } else {
            self.outputs.push_back(Output::Forward(forward));
        }
    }

    /// Hands a result to the owner of its source: this core if it owns the source, otherwise
    /// an [`Output::Resolve`] for the engine to route.
    fn route_resolution(&mut self, resolution: ForwardResolution) {
        let owned = match resolution.source {
            HtlcSource::Local(id) => self.payments.contains_key(&id),
            HtlcSource::Forwarded {
                channel_id,
                htlc_id,
            } => self.upstream.contains_key(&(channel_id, htlc_id)),
        };
        if owned {
            self.handle_resolution(resolution);
        } else {
            self.outputs.push_back(Output::Resolve(resolution));
        }
    }

    /// An HTLC to add on one of our channels (from a forward, here or on another shard, or
    /// from a payment). If it cannot be added, its failure goes back to its source.
    pub fn handle_forward(&mut self, forward: ForwardHtlc) {
        let Some(&(node_id, channel_id)) = self.scid_to_channel.get(&forward.short_channel_id)
        else {
            return self.route_resolution(ForwardResolution {
                source: forward.source,
                next_channel_id: None,
                outcome: ForwardOutcome::FailedHere(FailureMessage::UnknownNextPeer),
            });
        };
        let connected = self
            .peers
            .get(&node_id)
            .is_some_and(|p| p.connected && p.their_features.is_some());
        let result = if connected {
            self.with_channel(node_id, channel_id, |entry| {
                entry.channel.send_htlc(
                    forward.amount_msat,
                    forward.payment_hash,
                    forward.cltv_expiry,
                    forward.onion.clone(),
                )
            })
        } else {
            None
        };
        match result {
            Some(Ok(htlc_id)) => {
                self.offered.insert(
                    (channel_id, htlc_id),
                    OfferedHtlc {
                        node_id,
                        source: forward.source,
                        amount_msat: forward.amount_msat,
                        incoming_amount_msat: forward.incoming_amount_msat,
                        cltv_expiry: forward.cltv_expiry,
                    },
                );
            }
            _ => self.route_resolution(ForwardResolution {
                source: forward.source,
                next_channel_id: Some(channel_id),
                outcome: ForwardOutcome::FailedHere(FailureMessage::TemporaryChannelFailure {
                    channel_update: Vec::new(),
                }),
            }),
        }
    }

    /// The result of an HTLC we handed on, for the incoming HTLC or payment it came from.
    pub fn handle_resolution(&mut self, resolution: ForwardResolution) {
        match resolution.source {
            HtlcSource::Local(payment_id) => self.payment_resolved(payment_id, resolution.outcome),
            HtlcSource::Forwarded {
                channel_id,
                htlc_id,
            } => {
                let Some(up) = self.upstream.remove(&(channel_id, htlc_id)) else {
                    return;
                };
                match resolution.outcome {
                    ForwardOutcome::Fulfilled(preimage) => {
                        let done = self.with_channel(up.node_id, channel_id, |entry| {
                            entry.channel.fulfill_htlc(htlc_id, preimage)
                        });
                        if done.is_none() {
                            // The upstream channel is closed: claim the HTLC on chain.
                            self.preimage_to_monitor(channel_id, preimage);
                        }
                    }
                    ForwardOutcome::FailedDownstream(reason) => {
                        let returned = ReturnedFailure {
                            reason,
                            attribution_data: None,
                        };
                        let wrapped = forward_failure(&up.shared_secret, &returned, None);
                        self.with_channel(up.node_id, channel_id, |entry| {
                            entry.channel.fail_htlc(htlc_id, wrapped.reason)
                        });
                    }
                    ForwardOutcome::Malformed {
                        failure_code,
                        sha256_of_onion,
                    } => {
                        let failure = FailureMessage::from_malformed(failure_code, sha256_of_onion)
                            .unwrap_or(FailureMessage::InvalidOnionHmac { sha256_of_onion });
                        self.fail_incoming(
                            up.node_id,
                            channel_id,
                            htlc_id,
                            &up.shared_secret,
                            failure,
                        );
                    }
                    ForwardOutcome::FailedHere(failure) => {
                        self.fail_incoming(
                            up.node_id,
                            channel_id,
                            htlc_id,
                            &up.shared_secret,
                            failure,
                        );
                    }
                }
            }
        }
    }

    /// The peer fulfilled an HTLC we offered: pass the preimage back at once.
    pub(super) fn outbound_htlc_fulfilled(
        &mut self,
        channel_id: ChannelId,
        htlc_id: u64,
        preimage: PaymentPreimage,
    ) {
        let Some(offered) = self.offered.remove(&(channel_id, htlc_id)) else {
            return;
        };
        if let HtlcSource::Forwarded {
            channel_id: prev_channel_id,
            ..
        } = offered.source
        {
            self.push_event(Event::PaymentForwarded {
                prev_channel_id,
                next_channel_id: channel_id,
                fee_earned_msat: offered
                    .incoming_amount_msat
                    .saturating_sub(offered.amount_msat),
                outbound_amount_msat: offered.amount_msat,
            });
        }
        self.route_resolution(ForwardResolution {
            source: offered.source,
            next_channel_id: Some(channel_id),
            outcome: ForwardOutcome::Fulfilled(preimage),
        });
    }

    /// An HTLC we offered failed and its removal is irrevocably committed.
    pub(super) fn outbound_htlc_failed(
        &mut self,
        channel_id: ChannelId,
        htlc_id: u64,
        failure: HtlcFailure,
    ) {
        let Some(offered) = self.offered.remove(&(channel_id, htlc_id)) else {
            return;
        };
        let outcome = match failure {
            HtlcFailure::Reason { reason, .. } => ForwardOutcome::FailedDownstream(reason),
            // Queued but never sent (the peer shut the channel down first): it failed here.
            HtlcFailure::NotSent => {
                ForwardOutcome::FailedHere(FailureMessage::TemporaryChannelFailure {
                    channel_update: Vec::new(),
                })
            }
            HtlcFailure::Malformed {
                sha256_of_onion,
                failure_code,
            } => ForwardOutcome::Malformed {
                failure_code,
                sha256_of_onion,
            },
        };
        self.route_resolution(ForwardResolution {
            source: offered.source,
            next_channel_id: Some(channel_id),
            outcome,
        });
    }

    /// Fails back an HTLC we offered that failed at this node (channel closed, timed out).
    pub(super) fn resolve_offered_failed_here(
        &mut self,
        offered: OfferedHtlc,
        next_channel_id: Option<ChannelId>,
        failure: FailureMessage,
    ) {
        self.route_resolution(ForwardResolution {
            source: offered.source,
            next_channel_id,
            outcome: ForwardOutcome::FailedHere(failure),
        });
    }

    /// One of our payments got its result.
    fn payment_resolved(&mut self, payment_id: super::PaymentId, outcome: ForwardOutcome) {
        let Some(payment) = self.payments.remove(&payment_id) else {
            return;
        };
        self.dirty.node = true;
        self.payment_completed(payment_id);
        let failing_node = |i: usize| payment.route.hops.get(i).map(|h| h.node_id);
        let failure = match outcome {
            ForwardOutcome::Fulfilled(payment_preimage) => {
                return self.push_event(Event::PaymentSent {
                    payment_id,
                    payment_hash: payment.payment_hash,
                    payment_preimage,
                    fee_paid_msat: payment.route.total_fees_msat(),
                });
            }
            ForwardOutcome::FailedDownstream(reason) => {
                let decrypted = decrypt_failure(
                    &payment.shared_secrets,
                    &ReturnedFailure {
                        reason,
                        attribution_data: None,
                    },
                );
                let hop = decrypted.failing_hop;
                PaymentFailure {
                    failing_hop: hop.as_ref().map(|h| h.index),
                    failing_node: hop.as_ref().and_then(|h| failing_node(h.index)),
                    failure: hop
                        .and_then(|h| h.failure.ok())
                        .map(|f| super::limits::bounded_failure(f.message)),
                    local: false,
                }
            }
            ForwardOutcome::Malformed {
                failure_code,
                sha256_of_onion,
            } => PaymentFailure {
                failing_hop: Some(0),
                failing_node: failing_node(0),
                failure: FailureMessage::from_malformed(failure_code, sha256_of_onion),
                local: false,
            },
            ForwardOutcome::FailedHere(failure) => PaymentFailure {
                failing_hop: None,
                failing_node: None,
                failure: Some(failure),
                local: true,
            },
        };
        self.push_event(Event::PaymentFailed {
            payment_id,
            payment_hash: payment.payment_hash,
            failure,
        });
    }
}
