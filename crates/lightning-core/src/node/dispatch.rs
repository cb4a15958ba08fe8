//! Peers and their messages: connection, `init`, decoding, routing a message to the channel
//! it names (only among the sender's own channels), and acting on what the channel says.

use bitcoin::secp256k1::PublicKey;

use super::limits::{peer_text, peer_text_suppressed};
use super::{ClosureReason, Event, NodeCore};
use crate::channel::{ChannelError, ChannelEvent, ChannelPhase};
use crate::peer::{PeerChannel, PeerState};
use crate::types::ChannelId;
use crate::wire::{Init, Message, Ping, Warning};

impl NodeCore {
    /// A connection to `node_id` is up: queues our `init`. The peer's `init` must be its first
    /// message ([`NodeCore::handle_message`]).
    pub fn peer_connected(&mut self, node_id: PublicKey) {
        let peer = self
            .peers
            .entry(node_id)
            .or_insert_with(|| PeerState::new(node_id));
        peer.connected = true;
        peer.their_features = None;
        peer.last_ping_ms = None;
        peer.awaiting_pong = false;
        let init = Init::new(
            self.config.init_features(),
            Some(vec![self.config.chain_hash]),
            None,
        );
        self.send(node_id, Message::Init(init));
    }

    /// The connection to `node_id` went down: unfunded channels are forgotten (as LDK does),
    /// funded ones roll back the peer's unsigned updates and wait for a reconnection.
    pub fn peer_disconnected(&mut self, node_id: PublicKey) {
        let Some(peer) = self.peers.get_mut(&node_id) else {
            return;
        };
        peer.connected = false;
        peer.their_features = None;
        let unfunded: Vec<ChannelId> = peer
            .channel_by_id
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e.channel.phase(),
                    ChannelPhase::AwaitingAcceptChannel
                        | ChannelPhase::AwaitingFundingTransaction
                        | ChannelPhase::AwaitingFundingCreated
                        | ChannelPhase::AwaitingFundingSigned
                )
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &unfunded {
            peer.channel_by_id.remove(id);
            self.dirty.channel_removed(node_id, *id);
        }
        for (id, entry) in peer.channel_by_id.iter_mut() {
            entry.channel.peer_disconnected();
            self.dirty.channel_changed(node_id, *id);
        }
        for id in unfunded {
            self.push_event(Event::ChannelClosed {
                channel_id: id,
                counterparty_node_id: node_id,
                reason: ClosureReason::DisconnectedPeer,
            });
        }
        if self.peers.get(&node_id).is_some_and(PeerState::is_prunable) {
            self.peers.remove(&node_id);
            self.dirty.node = true;
        }
    }

    /// A message from `node_id` (its decrypted bytes: 2-byte type, then payload).
    ///
    /// A `ping` is answered while the peer's pong budget for the window lasts
    /// ([`PeerRateLimits`](super::PeerRateLimits)), and ignored beyond it.
    ///
    /// Undecodable input gets a `warning` and a disconnection, an unknown even type a
    /// disconnection (BOLT 1); a message naming a channel that is not this peer's is refused
    /// with an `error` for that channel id and changes nothing.
    pub fn handle_message(&mut self, node_id: PublicKey, bytes: &[u8]) {
        let connected = self.peers.get(&node_id).is_some_and(|p| p.connected);
        if !connected {
            return;
        }
        let msg = match Message::decode(bytes) {
            Ok(msg) => msg,
            Err(e) => {
                let text = format!("cannot decode message: {e}");
                self.send(
                    node_id,
                    Message::Warning(Warning::new(ChannelId::ALL, &text)),
                );
                self.outputs
                    .push_back(super::Output::Disconnect { node_id });
                return;
            }
        };
        self.handle_decoded(node_id, msg);
    }

    /// As [`NodeCore::handle_message`], for a message already decoded.
    pub fn handle_decoded(&mut self, node_id: PublicKey, msg: Message) {
        let Some(peer) = self.peers.get(&node_id) else {
            return;
        };
        if !peer.connected {
            return;
        }
        let initialized = peer.their_features.is_some();
        match msg {
            Message::Init(init) => self.handle_init(node_id, init),
            _ if !initialized => {
                // BOLT 1: init must be the first message.
                self.outputs
                    .push_back(super::Output::Disconnect { node_id });
            }
            Message::Ping(ping) => {
                // BOLT 1 lets us ignore pings that come faster than we want: beyond the
                // peer's pong budget for this window, no pong (a flood must not make us send
                // 65 KB for every 4 bytes received).
                let limits = self.rate_limits;
                let answer = ping.num_pong_bytes < Ping::NO_REPLY_THRESHOLD
                    && self
                        .peers
                        .get_mut(&node_id)
                        .is_some_and(|p| p.budget.take_pong(ping.num_pong_bytes, &limits));
                if answer {
                    self.want_budget_refill(node_id);
                }
                if let Some(pong) = ping.pong().filter(|_| answer) {
                    self.send(node_id, Message::Pong(pong));
                }
            }
            Message::Pong(_) => {
                if let Some(peer) = self.peers.get_mut(&node_id) {
                    peer.awaiting_pong = false;
                }
            }
            Message::Warning(_) | Message::Gossip { .. } => {}
            Message::Unknown { .. } => {}
            Message::Error(err) => self.handle_error_message(node_id, err),
            Message::OpenChannel(open) => self.handle_open_channel(node_id, &open),
            other => self.handle_channel_message(node_id, other),
        }
    }

    fn handle_init(&mut self, node_id: PublicKey, init: Init) {
        let features = init.combined_features();
        let ours = self.config.init_features();
        if let Some(bit) = features.first_unknown_required_bit(&ours) {
            let text = format!("init requires unknown feature bit {bit}");
            self.send(
                node_id,
                Message::Warning(Warning::new(ChannelId::ALL, &text)),
            );
            self.outputs
                .push_back(super::Output::Disconnect { node_id });
            return;
        }
        if let Some(feature) = ours.first_required_missing_from(&features) {
            let text = format!("init lacks feature {feature:?}, which we require");
            self.send(
                node_id,
                Message::Warning(Warning::new(ChannelId::ALL, &text)),
            );
            self.outputs
                .push_back(super::Output::Disconnect { node_id });
            return;
        }
        if let Some(networks) = &init.networks {
            if !networks.contains(&self.config.chain_hash) {
                self.outputs
                    .push_back(super::Output::Disconnect { node_id });
                return;
            }
        }
        let Some(peer) = self.peers.get_mut(&node_id) else {
            return;
        };
        peer.their_features = Some(features);
        // Resume every funded channel (BOLT 2 message retransmission).
        let ids: Vec<ChannelId> = peer.channel_by_id.keys().copied().collect();
        // The ping interval starts at the next tick.
        self.want_tick(0);
        for id in ids {
            let reestablish =
                self.with_channel(node_id, id, |entry| entry.channel.get_reestablish());
            if let Some(Ok(msg)) = reestablish {
                self.send(node_id, Message::ChannelReestablish(msg));
            }
        }
    }

    /// The host's clock ticked (`now_ms`: milliseconds on its monotonic clock; call it every
    /// second or so, extra calls are harmless). Every peer that has sent `init` is pinged
    /// each [`Liveness::ping_interval_ms`](super::Liveness), the first time one interval
    /// after the first tick that finds its `init` (its `init` just showed it alive); a peer
    /// whose `pong` is still due [`Liveness::pong_timeout_ms`](super::Liveness) after the
    /// ping is disconnected. Each peer's [`PeerRateLimits`](super::PeerRateLimits) budget is
    /// refilled when its window is over.
    pub fn timer_tick(&mut self, now_ms: u64) {
        let liveness = self.liveness;
        let limits = self.rate_limits;
        let mut ping = Vec::new();
        let mut dead = Vec::new();
        for peer in self.peers.values_mut() {
            peer.budget.tick(now_ms, &limits);
            if !peer.connected || peer.their_features.is_none() {
                continue;
            }
            match peer.last_ping_ms {
                Some(sent) if peer.awaiting_pong => {
                    if now_ms.saturating_sub(sent) >= liveness.pong_timeout_ms {
                        dead.push(peer.node_id);
                    }
                }
                Some(sent) if now_ms.saturating_sub(sent) < liveness.ping_interval_ms => {}
                // The first tick since its `init`: the interval starts now.
                None => peer.last_ping_ms = Some(now_ms),
                Some(_) => {
                    peer.last_ping_ms = Some(now_ms);
                    peer.awaiting_pong = true;
                    ping.push(peer.node_id);
                }
            }
        }
        for node_id in ping {
            let msg = Ping {
                num_pong_bytes: 0,
                ignored: Vec::new(),
            };
            self.send(node_id, Message::Ping(msg));
        }
        for node_id in dead {
            let text = "no pong in time: disconnecting";
            self.send(
                node_id,
                Message::Warning(Warning::new(ChannelId::ALL, text)),
            );
            self.outputs
                .push_back(super::Output::Disconnect { node_id });
        }
        self.next_tick_ms = self.next_deadline();
    }

    /// When the node next needs [`NodeCore::timer_tick`] (host milliseconds, in the clock of
    /// the `now_ms` it was given; 0: at the next tick, whatever the time), or `None` when no
    /// timer is due: a host (or the engine) need not tick a node before then. Extra ticks are
    /// harmless. O(1): kept current as peers send `init`, draw from their budgets and are
    /// pinged.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.next_tick_ms
    }

    /// Asks for a tick by `at_ms` (keeps an earlier request).
    fn want_tick(&mut self, at_ms: u64) {
        self.next_tick_ms = Some(self.next_tick_ms.map_or(at_ms, |t| t.min(at_ms)));
    }

    /// A peer drew from its budget: a tick must refill it when its window ends (or start its
    /// first window).
    fn want_budget_refill(&mut self, node_id: PublicKey) {
        let window = self.rate_limits.window_ms;
        let at = self.peers.get(&node_id).map(|p| {
            p.budget
                .window_start_ms
                .map_or(0, |s| s.saturating_add(window))
        });
        if let Some(at) = at {
            self.want_tick(at);
        }
    }

    /// The earliest deadline over every peer: its ping, its pong, its budget's window.
    fn next_deadline(&self) -> Option<u64> {
        let liveness = self.liveness;
        let window = self.rate_limits.window_ms;
        let mut next: Option<u64> = None;
        let mut want = |at: u64| next = Some(next.map_or(at, |t: u64| t.min(at)));
        for peer in self.peers.values() {
            let b = &peer.budget;
            if b.pongs > 0 || b.texts > 0 {
                want(b.window_start_ms.map_or(0, |s| s.saturating_add(window)));
            }
            if !peer.connected || peer.their_features.is_none() {
                continue;
            }
            match peer.last_ping_ms {
                None => want(0),
                Some(sent) if peer.awaiting_pong => {
                    want(sent.saturating_add(liveness.pong_timeout_ms))
                }
                Some(sent) => want(sent.saturating_add(liveness.ping_interval_ms)),
            }
        }
        next
    }

    /// A peer's `error`: fails the channel it names (or all of them). The peer's text is kept
    /// in the [`ClosureReason`] cut to [`MAX_PEER_TEXT_BYTES`](super::MAX_PEER_TEXT_BYTES),
    /// and only for the first
    /// [`PeerRateLimits::max_peer_texts_per_window`](super::PeerRateLimits) errors of a window
    /// (later ones keep its length only), so a peer cannot make us hold or show much text.
    fn handle_error_message(&mut self, node_id: PublicKey, err: crate::wire::ErrorMessage) {
        let ids: Vec<ChannelId> = match self.peers.get(&node_id) {
            Some(peer) if err.channel_id == ChannelId::ALL => {
                peer.channel_by_id.keys().copied().collect()
            }
            Some(peer) if peer.channel_by_id.contains_key(&err.channel_id) => vec![err.channel_id],
            // BOLT 1: an error for an unknown channel is ignored.
            _ => Vec::new(),
        };
        if ids.is_empty() {
            return;
        }
        let limits = self.rate_limits;
        let shown = self
            .peers
            .get_mut(&node_id)
            .is_some_and(|p| p.budget.take_text(&limits));
        if shown {
            self.want_budget_refill(node_id);
        }
        let peer_msg = if shown {
            peer_text(&err.data)
        } else {
            peer_text_suppressed(&err.data)
        };
        for id in ids {
            self.close_channel_internal(
                node_id,
                id,
                ClosureReason::CounterpartyForceClosed {
                    peer_msg: peer_msg.clone(),
                },
                true,
            );
        }
    }

    /// Runs `f` on one of `node_id`'s channels, then acts on the result and on everything the
    /// channel queued. Returns `None` if the peer has no such channel.
    pub(super) fn with_channel<T>(
        &mut self,
        node_id: PublicKey,
        channel_id: ChannelId,
        f: impl FnOnce(&mut PeerChannel) -> Result<T, ChannelError>,
    ) -> Option<Result<T, ChannelError>> {
        let entry = self
            .peers
            .get_mut(&node_id)?
            .channel_by_id
            .get_mut(&channel_id)?;
        let result = f(entry);
        let result = match result {
            Ok(value) => {
                let signed = entry.channel.maybe_sign();
                signed.map(|_| value)
            }
            Err(e) => Err(e),
        };
        self.after_channel_call(node_id, channel_id);
        if let Err(e) = &result {
            self.handle_channel_error(node_id, channel_id, e);
        }
        Some(result)
    }

    /// Sends what the channel queued, re-keys it if its id changed, and acts on its events.
    pub(super) fn after_channel_call(&mut self, node_id: PublicKey, channel_id: ChannelId) {
        let Some(peer) = self.peers.get_mut(&node_id) else {
            return;
        };
        let Some(entry) = peer.channel_by_id.get_mut(&channel_id) else {
            return;
        };
        let messages = entry.channel.drain_messages();
        let events = entry.channel.drain_events();
        let current_id = entry.channel.channel_id();
        peer.rekey(channel_id, current_id);
        if current_id != channel_id {
            self.dirty.channel_removed(node_id, channel_id);
        }
        self.dirty.channel_changed(node_id, current_id);
        self.ahead.push(node_id, current_id);
        let connected = peer.connected;
        // The monitor follows the channel before any of the call's messages can leave.
        self.sync_monitor(node_id, current_id);
        if connected {
            for msg in messages {
                self.send(node_id, msg);
            }
        }
        for event in events {
            self.handle_channel_event(node_id, current_id, event);
        }
    }

    fn handle_channel_event(
        &mut self,
        node_id: PublicKey,
        channel_id: ChannelId,
        event: ChannelEvent,
    ) {
        match event {
            ChannelEvent::ChannelReady {
                short_channel_id, ..
            } => {
                let mut user_channel_id = 0;
                let mut alias = None;
                if let Some(entry) = self
                    .peers
                    .get(&node_id)
                    .and_then(|p| p.channel_by_id.get(&channel_id))
                {
                    user_channel_id = entry.user_channel_id;
                    alias = entry.channel.our_alias();
                }
                for scid in [short_channel_id, alias].into_iter().flatten() {
                    self.scid_to_channel.insert(scid, (node_id, channel_id));
                }
                self.push_event(Event::ChannelReady {
                    channel_id,
                    counterparty_node_id: node_id,
                    short_channel_id,
                    alias,
                    user_channel_id,
                });
            }
            ChannelEvent::InboundHtlcCommitted {
                id,
                amount_msat,
                payment_hash,
                cltv_expiry,
                onion,
                ..
            } => {
                self.handle_committed_htlc(
                    node_id,
                    channel_id,
                    id,
                    amount_msat,
                    payment_hash,
                    cltv_expiry,
                    &onion,
                );
            }
            ChannelEvent::OutboundHtlcFulfilled {
                id,
                payment_preimage,
            } => {
                self.outbound_htlc_fulfilled(channel_id, id, payment_preimage);
            }
            ChannelEvent::OutboundHtlcFailed { id, failure } => {
                self.outbound_htlc_failed(channel_id, id, failure);
            }
            ChannelEvent::ShutdownStarted => {}
            ChannelEvent::ClosingTransactionReady { tx } => {
                self.broadcast(tx);
                self.forget_channel(node_id, channel_id, ClosureReason::CooperativeClosure);
            }
        }
    }

    /// Acts on a channel error: sends the warning or error it carries and fails the channel
    /// when it says so.
    pub(super) fn handle_channel_error(
        &mut self,
        node_id: PublicKey,
        channel_id: ChannelId,
        e: &ChannelError,
    ) {
        match e {
            ChannelError::Ignore(_) => {}
            ChannelError::Warn(_) => {
                if let Some(msg) = e.to_message(channel_id) {
                    self.send(node_id, msg);
                }
            }
            ChannelError::Close(reason) | ChannelError::CloseNoBroadcast(reason) => {
                let text = reason.to_string();
                self.send_error(node_id, channel_id, &text);
                self.close_channel_internal(
                    node_id,
                    channel_id,
                    ClosureReason::ProcessingError { err: text },
                    matches!(e, ChannelError::Close(_)),
                );
            }
        }
    }

    /// Routes a channel message to the sender's channel it names. A channel id that is not
    /// this peer's (another peer's, or none) is refused and touches nothing.
    fn handle_channel_message(&mut self, node_id: PublicKey, msg: Message) {
        let Some(channel_id) = msg.channel_id() else {
            return;
        };
        let owned = self
            .peers
            .get(&node_id)
            .is_some_and(|p| p.channel_by_id.contains_key(&channel_id));
        if !owned {
            let text = format!(
                "got a message for channel {channel_id}, which is not a channel with this peer"
            );
            self.send_error(node_id, channel_id, &text);
            return;
        }
        match msg {
            Message::AcceptChannel(accept) => {
                self.handle_accept_channel(node_id, channel_id, &accept)
            }
            Message::FundingCreated(created) => {
                self.handle_funding_created(node_id, channel_id, &created)
            }
            Message::FundingSigned(signed) => {
                self.handle_funding_signed(node_id, channel_id, &signed)
            }
            Message::UpdateFee(fee) if !self.check_remote_update_fee(node_id, channel_id, &fee) => {
            }
            other => {
                // A channel that may just have become usable follows the estimates.
                let usable_now = matches!(
                    other,
                    Message::ChannelReady(_) | Message::ChannelReestablish(_)
                );
                self.with_channel(node_id, channel_id, |entry| {
                    entry.channel.handle_message(&other)
                });
                if usable_now {
                    self.maybe_update_fee(node_id, channel_id);
                }
            }
        }
    }
}
