//! Channel lifecycle at the node: opening (both roles, with per-peer limits), funding, and
//! closing (cooperative, forced, or because of an error).

use bitcoin::secp256k1::PublicKey;
use bitcoin::{OutPoint, Transaction};

use super::{ApiError, ApiLimit, ClosureReason, Event, FundingTransactionError, NodeCore};
use crate::channel::{Channel, OutboundParams};
use crate::peer::{PeerChannel, PeerState};
use crate::types::ChannelId;
use crate::wire::{AcceptChannel, FundingCreated, FundingSigned, Message, OpenChannel};

impl NodeCore {
    /// Opens a channel to a connected peer: queues `open_channel`. Returns the temporary
    /// channel id; [`Event::FundingGenerationReady`] follows when the peer accepts.
    ///
    /// Refused at once, with nothing created: a value or push amount outside our limits or
    /// the peer's known ones, a feerate outside ours, or a channel whose first commitment
    /// the peer would refuse ([`ApiError::ChannelValue`]).
    pub fn create_channel(
        &mut self,
        node_id: PublicKey,
        funding_satoshis: u64,
        push_msat: u64,
        user_channel_id: u128,
        feerate_per_kw: u32,
    ) -> Result<ChannelId, ApiError> {
        // The values first: they are wrong whatever the peer's state (the peer's features,
        // when it sent them, refine the checks).
        self.check_outbound_channel(&node_id, funding_satoshis, push_msat, feerate_per_kw)?;
        let peer = self
            .peers
            .get(&node_id)
            .ok_or(ApiError::PeerNotConnected(node_id))?;
        let their_features = peer
            .their_features
            .clone()
            .ok_or(ApiError::PeerNotConnected(node_id))?;
        if !peer.connected {
            return Err(ApiError::PeerNotConnected(node_id));
        }
        if peer.channel_by_id.len() >= self.config.max_channels_per_peer {
            return Err(ApiError::LimitReached(ApiLimit::ChannelsPerPeer {
                node_id,
                max: self.config.max_channels_per_peer,
            }));
        }
        let temporary_channel_id = ChannelId(self.peer_random(&node_id, b"temporary-channel-id"));
        let (keys, key_index) = self.next_keys(&node_id);
        let shutdown_script = self.fresh_shutdown_script(&node_id);
        let params = OutboundParams {
            chain_hash: self.config.chain_hash,
            temporary_channel_id,
            funding_satoshis,
            push_msat,
            feerate_per_kw,
            announce: false,
            shutdown_script,
        };
        let (channel, open) = Channel::new_outbound(
            params,
            &self.config.init_features(),
            &their_features,
            self.config.channel.clone(),
            keys,
        )?;
        self.insert_channel(node_id, channel, key_index, user_channel_id);
        self.send(node_id, Message::OpenChannel(open));
        Ok(temporary_channel_id)
    }

    fn insert_channel(
        &mut self,
        node_id: PublicKey,
        channel: Channel,
        key_index: Option<u64>,
        user_channel_id: u128,
    ) {
        let alias = crate::types::ShortChannelId(u64::from_be_bytes(
            self.peer_random(&node_id, b"scid-alias")[..8]
                .try_into()
                .expect("8 of 32 bytes"),
        ));
        let mut channel = channel;
        if let Some(index) = key_index {
            channel.set_key_index(index);
        }
        channel.set_local_alias(alias);
        channel.set_created_height(self.best_height);
        self.dirty.channel_changed(node_id, channel.channel_id());
        if let Some(peer) = self.peers.get_mut(&node_id) {
            peer.channel_by_id.insert(
                channel.channel_id(),
                Box::new(PeerChannel {
                    channel,
                    user_channel_id,
                    funding_tx: None,
                }),
            );
        }
    }

    pub(super) fn handle_open_channel(&mut self, node_id: PublicKey, open: &OpenChannel) {
        let Some(peer) = self.peers.get(&node_id) else {
            return;
        };
        let refuse = |core: &mut NodeCore, text: String| {
            core.send_error(node_id, open.temporary_channel_id, &text);
        };
        if peer.channel_by_id.contains_key(&open.temporary_channel_id) {
            return refuse(
                self,
                "temporary_channel_id is already in use with us".to_owned(),
            );
        }
        if peer.unfunded_channels() >= self.config.max_unfunded_channels_per_peer {
            return refuse(
                self,
                format!(
                    "too many unfunded channels: limit {} per peer",
                    self.config.max_unfunded_channels_per_peer
                ),
            );
        }
        if peer.channel_by_id.len() >= self.config.max_channels_per_peer {
            return refuse(
                self,
                format!(
                    "too many channels: limit {} per peer",
                    self.config.max_channels_per_peer
                ),
            );
        }
        if !peer.has_funded_channel() {
            let pending: usize = self
                .peers
                .values()
                .filter(|p| !p.has_funded_channel())
                .map(PeerState::pending_inbound_channels)
                .sum();
            if pending >= self.config.max_pending_inbound_channels {
                return refuse(
                    self,
                    format!(
                        "too many unfunded channels from peers without a funded channel: \
                         limit {}",
                        self.config.max_pending_inbound_channels
                    ),
                );
            }
        }
        let their_features = peer.their_features.clone().unwrap_or_default();
        let (keys, key_index) = self.next_keys(&node_id);
        let shutdown_script = self.fresh_shutdown_script(&node_id);
        match Channel::new_inbound(
            open,
            self.config.chain_hash,
            &self.config.init_features(),
            &their_features,
            self.config.channel.clone(),
            keys,
            shutdown_script,
        ) {
            Ok((channel, accept)) => {
                self.insert_channel(node_id, channel, key_index, 0);
                self.send(node_id, Message::AcceptChannel(accept));
            }
            Err(e) => {
                if let Some(msg) = e.to_message(open.temporary_channel_id) {
                    self.send(node_id, msg);
                }
            }
        }
    }

    pub(super) fn handle_accept_channel(
        &mut self,
        node_id: PublicKey,
        channel_id: ChannelId,
        accept: &AcceptChannel,
    ) {
        let result = self.with_channel(node_id, channel_id, |entry| {
            entry.channel.handle_accept_channel(accept)?;
            Ok((
                entry.channel.funding_satoshis(),
                entry.channel.funding_script_pubkey(),
                entry.user_channel_id,
            ))
        });
        if let Some(Ok((value, script, user_channel_id))) = result {
            self.push_event(Event::FundingGenerationReady {
                temporary_channel_id: channel_id,
                counterparty_node_id: node_id,
                channel_value_satoshis: value,
                output_script: script,
                user_channel_id,
            });
        }
    }

    /// The funding transaction for a channel whose [`Event::FundingGenerationReady`] came out:
    /// it must pay the channel's funding script exactly the channel value. Queues
    /// `funding_created`; the transaction is broadcast only after the peer's `funding_signed`
    /// (so it can never lock funds without a signed way back).
    pub fn funding_transaction_generated(
        &mut self,
        temporary_channel_id: ChannelId,
        node_id: PublicKey,
        funding_tx: Transaction,
    ) -> Result<(), ApiError> {
        let entry = self
            .peers
            .get(&node_id)
            .and_then(|p| p.channel_by_id.get(&temporary_channel_id))
            .ok_or(ApiError::UnknownChannel(temporary_channel_id))?;
        let script = entry.channel.funding_script_pubkey();
        let value = entry.channel.funding_satoshis();
        let vout = funding_tx
            .output
            .iter()
            .position(|o| o.script_pubkey == script && o.value.to_sat() == value)
            .ok_or(ApiError::BadFundingTransaction(
                FundingTransactionError::NoFundingOutput {
                    value_satoshis: value,
                },
            ))?;
        let outpoint = OutPoint {
            txid: funding_tx.compute_txid(),
            vout: u32::try_from(vout).map_err(|_| {
                ApiError::BadFundingTransaction(FundingTransactionError::TooManyOutputs {
                    outputs: funding_tx.output.len(),
                })
            })?,
        };
        let result = self.with_channel(node_id, temporary_channel_id, |entry| {
            let created = entry.channel.funding_transaction_built(outpoint)?;
            entry.funding_tx = Some(funding_tx);
            Ok(created)
        });
        match result {
            Some(Ok(created)) => {
                self.send(node_id, Message::FundingCreated(created));
                Ok(())
            }
            Some(Err(e)) => Err(e.into()),
            None => Err(ApiError::UnknownChannel(temporary_channel_id)),
        }
    }

    pub(super) fn handle_funding_created(
        &mut self,
        node_id: PublicKey,
        channel_id: ChannelId,
        created: &FundingCreated,
    ) {
        let result = self.with_channel(node_id, channel_id, |entry| {
            let signed = entry.channel.handle_funding_created(created)?;
            Ok((signed, entry.user_channel_id))
        });
        if let Some(Ok((signed, user_channel_id))) = result {
            let final_id = signed.channel_id;
            self.send(node_id, Message::FundingSigned(signed));
            if let Some(outpoint) = self
                .channel(&node_id, &final_id)
                .and_then(|c| c.funding_outpoint())
            {
                self.push_event(Event::ChannelPending {
                    channel_id: final_id,
                    counterparty_node_id: node_id,
                    funding_txo: outpoint,
                    user_channel_id,
                });
            }
        }
    }

    pub(super) fn handle_funding_signed(
        &mut self,
        node_id: PublicKey,
        channel_id: ChannelId,
        signed: &FundingSigned,
    ) {
        let result = self.with_channel(node_id, channel_id, |entry| {
            entry.channel.handle_funding_signed(signed)?;
            Ok((
                entry.funding_tx.clone(),
                entry.channel.funding_outpoint(),
                entry.user_channel_id,
            ))
        });
        if let Some(Ok((tx, outpoint, user_channel_id))) = result {
            if let Some(outpoint) = outpoint {
                self.push_event(Event::ChannelPending {
                    channel_id,
                    counterparty_node_id: node_id,
                    funding_txo: outpoint,
                    user_channel_id,
                });
            }
            if let Some(tx) = tx {
                self.broadcast(tx);
            }
        }
    }

    /// Starts a cooperative close: queues `shutdown` once our updates are signed; the closing
    /// transaction is broadcast ([`Event::BroadcastTransaction`]) when both agree on a fee.
    pub fn close_channel(
        &mut self,
        channel_id: ChannelId,
        node_id: PublicKey,
    ) -> Result<(), ApiError> {
        match self.with_channel(node_id, channel_id, |entry| entry.channel.shutdown()) {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(e.into()),
            None => Err(ApiError::UnknownChannel(channel_id)),
        }
    }

    /// Force-closes: broadcasts our latest fully signed commitment transaction and tells the
    /// peer with an `error`.
    pub fn force_close_channel(
        &mut self,
        channel_id: ChannelId,
        node_id: PublicKey,
    ) -> Result<(), ApiError> {
        if self.channel(&node_id, &channel_id).is_none() {
            return Err(ApiError::UnknownChannel(channel_id));
        }
        self.send_error(node_id, channel_id, "channel force-closed by its owner");
        self.close_channel_internal(node_id, channel_id, ClosureReason::HolderForceClosed, true);
        Ok(())
    }

    /// Fails a channel: with `broadcast`, our latest commitment transaction and the
    /// HTLC-timeout transactions of HTLCs we offered go out; those HTLCs are resolved
    /// upstream once their timeout transaction confirms.
    pub(super) fn close_channel_internal(
        &mut self,
        node_id: PublicKey,
        channel_id: ChannelId,
        reason: ClosureReason,
        broadcast: bool,
    ) {
        let Some(entry) = self
            .peers
            .get_mut(&node_id)
            .and_then(|p| p.channel_by_id.get_mut(&channel_id))
        else {
            return;
        };
        let funded = entry.channel.funding_outpoint().is_some() && entry.channel.is_funded();
        if funded {
            // The monitor takes over: it broadcasts our latest commitment (never once a spend
            // of the funding output confirmed, never a revoked one), then claims what is ours
            // from whichever commitment confirms.
            self.sync_monitor(node_id, channel_id);
            if broadcast {
                match self.monitor_force_close(channel_id) {
                    Some(commitment) => self.broadcast(commitment),
                    None if !self.monitors.contains_key(&channel_id) => {
                        // No monitor could be built: the channel's own latest commitment.
                        let closed = self
                            .peers
                            .get_mut(&node_id)
                            .and_then(|p| p.channel_by_id.get_mut(&channel_id))
                            .map(|e| e.channel.force_close());
                        if let Some(Ok(commitment)) = closed {
                            self.broadcast(commitment);
                        }
                    }
                    None => {}
                }
            }
        }
        self.forget_channel(node_id, channel_id, reason);
    }

    /// Drops a closed channel from the peer, the scid map and the claimable set, failing back
    /// what can no longer complete.
    pub(super) fn forget_channel(
        &mut self,
        node_id: PublicKey,
        channel_id: ChannelId,
        reason: ClosureReason,
    ) {
        if let Some(peer) = self.peers.get_mut(&node_id) {
            peer.channel_by_id.remove(&channel_id);
        }
        self.dirty.channel_removed(node_id, channel_id);
        self.dirty.node = true;
        self.scid_to_channel.retain(|_, (_, id)| *id != channel_id);
        // A monitored channel's HTLCs are resolved on chain by its monitor: payments to us
        // stay claimable (claim_funds claims them on chain), upstream links stay (a preimage
        // learned on chain goes back through them).
        let monitored = self.monitors.contains_key(&channel_id);
        if monitored {
            // Its channel's record is going: the monitor must stand on its own.
            self.monitor_snapshot_due(channel_id);
        } else {
            for htlcs in self.claimable.values_mut() {
                htlcs.retain(|h| h.channel_id != channel_id);
            }
            self.claimable.retain(|_, v| !v.is_empty());
        }
        // HTLCs we offered that never reached a commitment fail back now; the monitor
        // resolves the others.
        let gone: Vec<(ChannelId, u64)> = self
            .offered
            .keys()
            .filter(|(c, id)| *c == channel_id && !self.monitor_knows_offered(channel_id, *id))
            .copied()
            .collect();
        for key in gone {
            if let Some(offered) = self.offered.remove(&key) {
                self.resolve_offered_failed_here(
                    offered,
                    Some(channel_id),
                    crate::onion::FailureMessage::PermanentChannelFailure,
                );
            }
        }
        if !monitored {
            self.upstream.retain(|(c, _), _| *c != channel_id);
        }
        self.push_event(Event::ChannelClosed {
            channel_id,
            counterparty_node_id: node_id,
            reason,
        });
        if self
            .peers
            .get(&node_id)
            .is_some_and(crate::peer::PeerState::is_prunable)
        {
            self.peers.remove(&node_id);
        }
    }
}
