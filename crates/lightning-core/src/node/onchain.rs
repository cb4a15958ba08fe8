//! The node's side of on-chain enforcement: one [`ChannelMonitor`] per funded channel, kept
//! in step with its channel after every call (before the call's messages can leave), fed
//! the chain, and outliving the channel until everything it watches is resolved.
//!
//! What the monitors conclude comes back here: a confirmed spend of the funding output
//! closes the channel without a broadcast of ours; a preimage seen on chain fulfils the
//! upstream HTLC at once (on this shard or through [`Output::Resolve`] on another); an HTLC
//! timed out on chain fails upstream once [`ANTI_REORG_DELAY`](crate::chain::ANTI_REORG_DELAY)
//! deep; claims go out as [`Event::BroadcastTransaction`]; what the application must know
//! or do (fees for anchor transactions, claims confirmed, a revoked commitment punished)
//! arrives as [`Event::OnChain`].

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::{BlockHash, CompressedPublicKey, ScriptBuf, Transaction};

use super::{ClosureReason, Event, NodeCore};
use crate::chain::{
    Balance, ChannelMonitor, MonitorEvent, MonitorOutput, MonitorStep, MonitorUpdate,
};
use crate::onion::FailureMessage;
use crate::types::{ChannelId, PaymentPreimage};

impl NodeCore {
    /// The key our claims pay to unless [`NodeCore::set_sweep_script`] chose another
    /// script: derived from the seed, so a restored node can always spend what it swept.
    pub fn sweep_secret_key(&self) -> SecretKey {
        let mut engine = sha256::Hash::engine();
        engine.input(b"lnshard sweep key");
        engine.input(&self.seed);
        let mut bytes = sha256::Hash::from_engine(engine).to_byte_array();
        loop {
            if let Ok(key) = SecretKey::from_slice(&bytes) {
                return key;
            }
            // Out of range (probability about 2^-128): hash again.
            bytes = sha256::Hash::hash(&bytes).to_byte_array();
        }
    }

    /// Where on-chain claims pay: the script set with [`NodeCore::set_sweep_script`], or a
    /// P2WPKH to [`NodeCore::sweep_secret_key`].
    pub fn sweep_script(&self) -> ScriptBuf {
        if let Some(script) = &self.sweep_script {
            return script.clone();
        }
        let key = PublicKey::from_secret_key(&self.secp, &self.sweep_secret_key());
        ScriptBuf::new_p2wpkh(&CompressedPublicKey(key).wpubkey_hash())
    }

    /// Makes on-chain claims of channels funded from now on pay `script` (the application's
    /// wallet). Channels already monitored keep the destination they were given.
    pub fn set_sweep_script(&mut self, script: ScriptBuf) {
        self.sweep_script = Some(script);
    }

    /// The feerate (sat per 1000 weight) on-chain claims pay, before their deadline
    /// multiplier.
    pub fn set_claim_feerate(&mut self, feerate_per_kw: u32) {
        self.claim_feerate_per_kw = feerate_per_kw.max(253);
        for m in self.monitors.values_mut() {
            m.set_feerate(feerate_per_kw);
        }
    }

    /// The channel's monitor, if it has one (from its funding until it is archived).
    pub fn monitor(&self, channel_id: &ChannelId) -> Option<&ChannelMonitor> {
        self.monitors.get(channel_id)
    }

    /// What each monitored channel's on-chain state owes us.
    pub fn claimable_balances(&self) -> Vec<(ChannelId, Balance)> {
        self.monitors
            .iter()
            .flat_map(|(id, m)| m.balances().into_iter().map(move |b| (*id, b)))
            .collect()
    }

    /// Brings the channel's monitor up to date after a call, creating it once the channel
    /// is funded. Runs before the call's messages are released: the update is in the same
    /// commit as the channel state those messages depend on.
    pub(super) fn sync_monitor(&mut self, node_id: PublicKey, channel_id: ChannelId) {
        let Some(channel) = self
            .peers
            .get(&node_id)
            .and_then(|p| p.channel_by_id.get(&channel_id))
            .map(|e| &e.channel)
        else {
            return;
        };
        if let Some(monitor) = self.monitors.get_mut(&channel_id) {
            if let Some(update) = monitor.update_for(channel) {
                // Derived from the channel, which its own record stores: only the revoked
                // HTLCs a revocation adds are new to the store.
                let revokes = update
                    .steps
                    .iter()
                    .any(|s| matches!(s, MonitorStep::CommitmentSecret { .. }));
                if monitor.apply_owned(update).is_ok() && revokes {
                    self.dirty.monitor_created(channel_id);
                }
            }
            return;
        }
        if channel.funding_outpoint().is_none() || !channel.is_funded() {
            return;
        }
        let destination = self.sweep_script();
        if let Ok(monitor) = ChannelMonitor::from_channel(
            channel,
            node_id,
            destination,
            self.best_height,
            self.claim_feerate_per_kw,
        ) {
            self.monitors.insert(channel_id, monitor);
            self.monitor_snapshot_due(channel_id);
        }
    }

    /// The monitor's whole state must be written with this batch: it holds what its
    /// channel's record does not (chain data, a force-close, a preimage given after the
    /// close, or the channel is gone). Otherwise a monitor is written as the chunks of
    /// revoked HTLCs it added, and rebuilt from its channel's record on restore.
    pub(super) fn monitor_snapshot_due(&mut self, channel_id: ChannelId) {
        self.dirty.monitor_created(channel_id);
        self.monitor_snapshots_due.insert(channel_id);
    }

    /// Gives a preimage to a monitor of a channel that is gone (closed on chain): it claims
    /// the HTLC there. False if there is no such monitor.
    pub(super) fn preimage_to_monitor(
        &mut self,
        channel_id: ChannelId,
        preimage: PaymentPreimage,
    ) -> bool {
        let Some(monitor) = self.monitors.get_mut(&channel_id) else {
            return false;
        };
        let update = MonitorUpdate {
            update_id: monitor.update_id() + 1,
            steps: vec![MonitorStep::Preimage(preimage)],
        };
        if monitor.apply_owned(update).is_err() {
            return false;
        }
        let out = monitor.outputs();
        self.monitor_snapshot_due(channel_id);
        self.handle_monitor_outputs(channel_id, out);
        true
    }

    /// Our latest commitment for broadcast through the channel's monitor: `None` once a
    /// spend of the funding output has confirmed (ours could never confirm) or without a
    /// monitor. The monitor records the force-close.
    pub(super) fn monitor_force_close(&mut self, channel_id: ChannelId) -> Option<Transaction> {
        let monitor = self.monitors.get_mut(&channel_id)?;
        let tx = monitor.broadcast_holder_commitment()?;
        let update = MonitorUpdate {
            update_id: monitor.update_id() + 1,
            steps: vec![MonitorStep::ForceClosed],
        };
        // Cannot fail: the one step it checks (not already force-closed on a newer
        // commitment) holds since the commitment was just built.
        let _ = monitor.apply_owned(update);
        self.monitor_snapshot_due(channel_id);
        Some(tx)
    }

    /// Whether the channel's monitor knows the HTLC we offered with `htlc_id` (it is in a
    /// commitment, so the chain resolves it).
    pub(super) fn monitor_knows_offered(&self, channel_id: ChannelId, htlc_id: u64) -> bool {
        self.monitors.get(&channel_id).is_some_and(|m| {
            m.holder.spec.htlcs.contains_key(&(true, htlc_id))
                || m.counterparty
                    .values()
                    .any(|c| c.spec.htlcs.contains_key(&(false, htlc_id)))
        })
    }

    /// A block's transactions, for the monitors.
    pub(super) fn monitors_confirmed(&mut self, height: u32, txdata: &[(u32, &Transaction)]) {
        let ids: Vec<ChannelId> = self.monitors.keys().copied().collect();
        for id in ids {
            let Some(monitor) = self.monitors.get_mut(&id) else {
                continue;
            };
            // A spend of the funding output and spends of its outputs may share a block (a
            // commitment and the peer's HTLC-success revealing a preimage): once one
            // transaction is of interest, the monitor sees the whole block and keeps what is
            // of interest transitively.
            if !txdata.iter().any(|(_, tx)| monitor.is_relevant(tx)) {
                continue;
            }
            let all: Vec<&Transaction> = txdata.iter().map(|(_, tx)| *tx).collect();
            let out = monitor.block_connected(height, &all);
            self.monitor_snapshot_due(id);
            self.handle_monitor_outputs(id, out);
        }
    }

    /// A new best block, for the monitors: claims due now, events deep enough now.
    pub(super) fn monitors_best_block(&mut self, height: u32) {
        let ids: Vec<ChannelId> = self.monitors.keys().copied().collect();
        for id in ids {
            let Some(monitor) = self.monitors.get_mut(&id) else {
                continue;
            };
            if monitor.best_height() >= height {
                continue;
            }
            let closing = monitor.funding_spend().is_some() || monitor.is_force_closed();
            let out = monitor.block_connected(height, &[]);
            if closing {
                // Its best height is state (deadlines, depths): persist it with the block.
                self.monitor_snapshot_due(id);
            }
            self.handle_monitor_outputs(id, out);
        }
    }

    /// Blocks from `height` up were disconnected (a reorg): the best block is now the fork
    /// point, `height - 1` with hash `new_tip_hash` (stored with the next commit, so a
    /// restart never resumes from a block that left the chain); the monitors forget what
    /// they confirmed and rebuild their claims at the next block. A disconnection above our
    /// best block leaves the best block as it is.
    pub fn block_disconnected(&mut self, height: u32, new_tip_hash: BlockHash) {
        let fork_point = height.saturating_sub(1);
        if fork_point <= self.best_height {
            self.best_height = fork_point;
            self.best_hash = new_tip_hash;
        }
        self.dirty.node = true;
        let ids: Vec<ChannelId> = self.monitors.keys().copied().collect();
        for id in ids {
            if let Some(m) = self.monitors.get_mut(&id) {
                m.blocks_disconnected(height);
                self.monitor_snapshot_due(id);
            }
        }
    }

    /// Acts on what a monitor said.
    pub(super) fn handle_monitor_outputs(
        &mut self,
        channel_id: ChannelId,
        out: Vec<MonitorOutput>,
    ) {
        let node_id = self
            .monitors
            .get(&channel_id)
            .map(|m| m.counterparty_node_id());
        for o in out {
            match o {
                MonitorOutput::Broadcast(tx) => self.broadcast(tx),
                MonitorOutput::Event(event) => {
                    self.handle_monitor_event(node_id, channel_id, event)
                }
            }
        }
    }

    fn handle_monitor_event(
        &mut self,
        node_id: Option<PublicKey>,
        channel_id: ChannelId,
        event: MonitorEvent,
    ) {
        match &event {
            MonitorEvent::FundingSpent { .. } => {
                // The channel is over on chain: stop it without broadcasting ours.
                if let Some(node_id) = node_id {
                    let open = self
                        .peers
                        .get(&node_id)
                        .is_some_and(|p| p.channel_by_id.contains_key(&channel_id));
                    if open {
                        self.close_channel_internal(
                            node_id,
                            channel_id,
                            ClosureReason::CommitmentTxConfirmed,
                            false,
                        );
                    }
                }
            }
            MonitorEvent::OutboundHtlcFulfilled { htlc_id, preimage } => {
                self.outbound_htlc_fulfilled(channel_id, *htlc_id, *preimage);
            }
            MonitorEvent::OutboundHtlcFailed { htlc_id, .. } => {
                if let Some(offered) = self.offered.remove(&(channel_id, *htlc_id)) {
                    self.resolve_offered_failed_here(
                        offered,
                        Some(channel_id),
                        FailureMessage::PermanentChannelFailure,
                    );
                }
            }
            // Settled on chain either way: nothing upstream is left to answer.
            MonitorEvent::InboundHtlcClaimed { htlc_id, .. }
            | MonitorEvent::InboundHtlcLost { htlc_id, .. }
                if self.upstream.remove(&(channel_id, *htlc_id)).is_some() => {}
            _ => {}
        }
        if let Some(node_id) = node_id {
            self.push_event(Event::OnChain {
                channel_id,
                counterparty_node_id: node_id,
                event,
            });
        }
    }
}
