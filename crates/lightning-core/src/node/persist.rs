//! Durable state at the node: records of its channels and of itself, what changed since the
//! last commit (for group commit), and a node rebuilt from records after a restart. The
//! commit order and the restart procedure are in the [`crate::node`] documentation.

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::secp256k1::{PublicKey, SecretKey};

use super::{
    ClaimableHtlc, ClosureReason, Event, ForwardOutcome, ForwardResolution, InboundPayment,
    NodeConfig, NodeCore, OfferedHtlc, OutboundPayment, PendingTimeout, UpstreamHtlc,
};
use crate::chain::ChannelMonitor;
use crate::channel::{Channel, ChannelPhase};
use crate::onion::{Failure, FailureMessage, HopSharedSecret};
use crate::peer::{PeerChannel, PeerState};
use crate::persist::MonitorRevokedRecord;
use crate::persist::{
    ChannelRecord, ClaimableHtlcRecord, CompletedPaymentRecord, ForwardOutcomeRecord,
    ForwardResolutionRecord, InboundPaymentRecord, MonitorRecord, NodeRecord,
    OfferedHtlcEntryRecord, OfferedHtlcRecord, OutboundPaymentRecord, PendingTimeoutRecord,
    UpstreamHtlcEntryRecord, UpstreamHtlcRecord,
};
use crate::types::ChannelId;

/// What changed in a [`NodeCore`] since the last [`NodeCore::take_dirty`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dirty {
    /// Channels whose record changed (or is new): write their snapshot.
    pub channels: BTreeSet<(PublicKey, ChannelId)>,
    /// Channels that no longer exist (closed, abandoned, or re-keyed from their temporary
    /// id): delete their record.
    pub removed: BTreeSet<(PublicKey, ChannelId)>,
    /// Whether the node record changed.
    pub node: bool,
    /// Monitors that changed: write their [`NodeCore::snapshot_monitor`] records in the same
    /// commit as the channel state they follow, before any message of the batch leaves.
    pub monitors: BTreeSet<ChannelId>,
    /// Payments that completed (or completed ids to store again, after a restore from a
    /// node record that held them): write a [`CompletedPaymentRecord`] for each. They do
    /// not change the node record.
    pub completed_payments: BTreeSet<CompletedPaymentRecord>,
    /// Completed payment ids forgotten (their retention window passed): delete their
    /// record (named by id and completion height, as written).
    pub forgotten_payments: BTreeSet<CompletedPaymentRecord>,
    /// HTLCs we offered, by `(outgoing channel id, htlc id)`, that were added, changed or
    /// removed: write [`NodeCore::offered_entry`]'s record for each, or delete the record
    /// where there is none. They are not in the node record
    /// ([`NodeCore::stored_node_record`]).
    pub offered: BTreeSet<(ChannelId, u64)>,
    /// HTLCs we forwarded, by `(incoming channel id, htlc id)`, added or removed: write
    /// [`NodeCore::upstream_entry`]'s record for each, or delete the record where there is
    /// none. They are not in the node record ([`NodeCore::stored_node_record`]).
    pub upstream: BTreeSet<(ChannelId, u64)>,
}

impl Dirty {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
            && self.removed.is_empty()
            && !self.node
            && self.monitors.is_empty()
            && self.completed_payments.is_empty()
            && self.forgotten_payments.is_empty()
            && self.offered.is_empty()
            && self.upstream.is_empty()
    }

    pub(super) fn payment_completed(&mut self, record: CompletedPaymentRecord) {
        self.forgotten_payments.remove(&record);
        self.completed_payments.insert(record);
    }

    /// A record written in this batch is not written; a record written before is deleted
    /// (deleting a record that was never written deletes nothing).
    pub(super) fn payment_forgotten(&mut self, record: CompletedPaymentRecord) {
        self.completed_payments.remove(&record);
        self.forgotten_payments.insert(record);
    }

    pub(super) fn monitor_created(&mut self, channel_id: ChannelId) {
        self.monitors.insert(channel_id);
    }

    pub(super) fn channel_changed(&mut self, node_id: PublicKey, channel_id: ChannelId) {
        self.removed.remove(&(node_id, channel_id));
        self.channels.insert((node_id, channel_id));
    }

    pub(super) fn channel_removed(&mut self, node_id: PublicKey, channel_id: ChannelId) {
        self.channels.remove(&(node_id, channel_id));
        self.removed.insert((node_id, channel_id));
    }
}

fn offered_record(o: &OfferedHtlc) -> OfferedHtlcRecord {
    OfferedHtlcRecord {
        node_id: o.node_id,
        source: o.source,
        amount_msat: o.amount_msat,
        incoming_amount_msat: o.incoming_amount_msat,
        cltv_expiry: o.cltv_expiry,
    }
}

fn upstream_record(u: &UpstreamHtlc) -> UpstreamHtlcRecord {
    UpstreamHtlcRecord {
        node_id: u.node_id,
        shared_secret: u.shared_secret.0,
    }
}

fn offered_from(o: &OfferedHtlcRecord) -> OfferedHtlc {
    OfferedHtlc {
        node_id: o.node_id,
        source: o.source,
        amount_msat: o.amount_msat,
        incoming_amount_msat: o.incoming_amount_msat,
        cltv_expiry: o.cltv_expiry,
    }
}

impl NodeCore {
    /// What changed since the last call (or since the node was created or restored), and
    /// resets it. See [`crate::node`] for the commit order.
    ///
    /// Every monitor with something to store is in [`Dirty::monitors`]: write its
    /// [`NodeCore::snapshot_monitor`] records in the same batch.
    pub fn take_dirty(&mut self) -> Dirty {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.offered = self.offered.take_changed();
        dirty.upstream = self.upstream.take_changed();
        dirty
    }

    /// The record of the HTLC we offered on `channel_id` as `htlc_id`, `None` if there is
    /// none (it was resolved: delete its record).
    pub fn offered_entry(
        &self,
        channel_id: ChannelId,
        htlc_id: u64,
    ) -> Option<OfferedHtlcEntryRecord> {
        self.offered
            .get(&(channel_id, htlc_id))
            .map(|o| OfferedHtlcEntryRecord {
                channel_id,
                htlc_id,
                offered: offered_record(o),
            })
    }

    /// The record of the HTLC we forwarded that came in on `channel_id` as `htlc_id`, `None`
    /// if there is none (it was answered: delete its record).
    pub fn upstream_entry(
        &self,
        channel_id: ChannelId,
        htlc_id: u64,
    ) -> Option<UpstreamHtlcEntryRecord> {
        self.upstream
            .get(&(channel_id, htlc_id))
            .map(|u| UpstreamHtlcEntryRecord {
                channel_id,
                htlc_id,
                upstream: upstream_record(u),
            })
    }

    /// What to store of the channel's monitor: its snapshot without the revoked commitments'
    /// HTLCs, when it holds what its channel's record does not (chain data, a force-close,
    /// the channel gone: otherwise the channel's record rebuilds it on restore, see
    /// [`NodeCore::restore_with_monitors`]); and the chunks of revoked HTLCs not handed out
    /// before (a chunk is handed out again while its numbers fill). Records them as handed
    /// out. `None` if the channel has no monitor.
    pub fn snapshot_monitor(
        &mut self,
        channel_id: &ChannelId,
    ) -> Option<(Option<MonitorRecord>, Vec<MonitorRevokedRecord>)> {
        let monitor = self.monitors.get(channel_id)?;
        let after = self
            .monitor_revoked_stored
            .get(channel_id)
            .copied()
            .flatten();
        let chunks = monitor
            .revoked_chunks_after(after)
            .into_iter()
            .map(|chunk| monitor.revoked_chunk_record(chunk))
            .collect();
        self.monitor_revoked_stored
            .insert(*channel_id, monitor.last_revoked_with_htlcs());
        let snapshot = self
            .monitor_snapshots_due
            .remove(channel_id)
            .then(|| monitor.to_bounded_record());
        Some((snapshot, chunks))
    }

    /// The channels that have a monitor (a channel closed on chain keeps its monitor until
    /// everything is resolved).
    pub fn monitor_ids(&self) -> Vec<ChannelId> {
        self.monitors.keys().copied().collect()
    }

    /// The record of one channel, `None` if this node has no such channel.
    pub fn snapshot_channel(
        &self,
        node_id: &PublicKey,
        channel_id: &ChannelId,
    ) -> Option<ChannelRecord> {
        let entry = self.peers.get(node_id)?.channel_by_id.get(channel_id)?;
        Some(ChannelRecord {
            node_id: *node_id,
            user_channel_id: entry.user_channel_id,
            funding_tx: entry.funding_tx.clone(),
            channel: entry.channel.to_record(),
        })
    }

    /// The records of every channel (for a first full write).
    pub fn channel_records(&self) -> Vec<ChannelRecord> {
        self.peers
            .values()
            .flat_map(|p| {
                p.channel_by_id
                    .keys()
                    .filter_map(|id| self.snapshot_channel(&p.node_id, id))
            })
            .collect()
    }

    /// The node's record: everything but its channels, with every HTLC we offered or
    /// forwarded in [`NodeRecord::offered`] and [`NodeRecord::upstream`] (a whole snapshot).
    pub fn node_record(&self) -> NodeRecord {
        let mut record = self.stored_node_record();
        record.offered = self
            .offered
            .iter()
            .map(|(key, o)| (*key, offered_record(o)))
            .collect();
        record.upstream = self
            .upstream
            .iter()
            .map(|(key, u)| (*key, upstream_record(u)))
            .collect();
        record
    }

    /// The node record as a store holds it from format version 6 on: [`NodeCore::node_record`]
    /// without the HTLCs we offered or forwarded, which are records of their own
    /// ([`Dirty::offered`], [`Dirty::upstream`]). [`NodeCore::restore`] takes both kinds back
    /// merged into one [`NodeRecord`].
    pub fn stored_node_record(&self) -> NodeRecord {
        NodeRecord {
            best_height: self.best_height,
            best_hash: self.best_hash,
            peer_random_draws: self
                .peers
                .values()
                .filter(|p| p.random_draws > 0)
                .map(|p| (p.node_id, p.random_draws))
                .collect(),
            inbound_payments: self
                .inbound_payments
                .iter()
                .map(|(hash, p)| {
                    (
                        *hash,
                        InboundPaymentRecord {
                            payment_secret: p.secret,
                            amount_msat: p.amount_msat,
                        },
                    )
                })
                .collect(),
            claimable: self
                .claimable
                .iter()
                .map(|(hash, htlcs)| {
                    let htlcs = htlcs
                        .iter()
                        .map(|h| ClaimableHtlcRecord {
                            node_id: h.node_id,
                            channel_id: h.channel_id,
                            htlc_id: h.htlc_id,
                            amount_msat: h.amount_msat,
                            cltv_expiry: h.cltv_expiry,
                            shared_secret: h.shared_secret.0,
                        })
                        .collect();
                    (*hash, htlcs)
                })
                .collect(),
            payments: self
                .payments
                .iter()
                .map(|(id, p)| {
                    (
                        *id,
                        OutboundPaymentRecord {
                            payment_hash: p.payment_hash,
                            route: p.route.clone(),
                            shared_secrets: p.shared_secrets.iter().map(|s| s.0).collect(),
                        },
                    )
                })
                .collect(),
            // Records of their own (`Dirty::offered`, `Dirty::upstream`).
            offered: BTreeMap::new(),
            upstream: BTreeMap::new(),
            pending_timeouts: self
                .pending_timeouts
                .iter()
                .map(|(txid, pending)| {
                    let pending = pending
                        .iter()
                        .map(|p| PendingTimeoutRecord {
                            channel_id: p.channel_id,
                            offered: offered_record(&p.offered),
                        })
                        .collect();
                    (*txid, pending)
                })
                .collect(),
            // Stored as records of their own (`Dirty::completed_payments`).
            completed_payments: BTreeMap::new(),
        }
    }

    /// A node rebuilt from its records after a restart.
    ///
    /// `node_record` and `channel_records` may be a shard's part of a node that ran with
    /// another shard count (see [`crate::node`], "Restarting"). Every peer starts
    /// disconnected, so each channel drops the peer's unsigned updates as on a
    /// disconnection, and resumes with `channel_reestablish` when its peer reconnects.
    /// Indexes (peers, short channel ids) are rebuilt from the channels. A channel whose
    /// record holds a key index gets its keys derived again from `seed` and its peer's id.
    ///
    /// A channel that was not yet funded cannot be reestablished: it is dropped, with a
    /// [`Event::ChannelClosed`] and a removal in [`NodeCore::take_dirty`]. Node state that
    /// names a channel not among `channel_records` is dropped as when the channel closed: an
    /// HTLC we offered on it fails back to its source (outputs follow), a forward or
    /// claimable HTLC that came in on it is forgotten. Everything restored is reported dirty,
    /// so the first commit after a restart writes it all back.
    pub fn restore(
        node_secret: SecretKey,
        seed: [u8; 32],
        config: NodeConfig,
        node_record: NodeRecord,
        channel_records: Vec<ChannelRecord>,
    ) -> NodeCore {
        Self::restore_with_monitors(
            node_secret,
            seed,
            config,
            node_record,
            channel_records,
            Vec::new(),
        )
    }

    /// As [`NodeCore::restore`], with the channels' monitors (each restored with
    /// [`crate::persist::restore_monitor_with_revoked`]).
    /// HTLCs of a channel gone but still monitored stay (the monitor resolves them on
    /// chain). A funded channel without a monitor (a store written before monitors) gets
    /// one now, written by the first commit.
    pub fn restore_with_monitors(
        node_secret: SecretKey,
        seed: [u8; 32],
        config: NodeConfig,
        node_record: NodeRecord,
        channel_records: Vec<ChannelRecord>,
        monitors: Vec<ChannelMonitor>,
    ) -> NodeCore {
        let mut core = NodeCore::new(
            node_secret,
            seed,
            config,
            node_record.best_height,
            node_record.best_hash,
        );
        for record in channel_records {
            let ChannelRecord {
                node_id,
                user_channel_id,
                funding_tx,
                channel,
            } = record;
            let mut channel = Channel::from_record(channel, &seed, &node_id);
            let channel_id = channel.channel_id();
            if !channel.is_funded() {
                core.dirty.channel_removed(node_id, channel_id);
                if channel.phase() != ChannelPhase::Closed {
                    core.push_event(Event::ChannelClosed {
                        channel_id,
                        counterparty_node_id: node_id,
                        reason: ClosureReason::DisconnectedPeer,
                    });
                }
                continue;
            }
            // A record of format version 1 has no creation height: count from now.
            if channel.created_height().is_none() {
                channel.set_created_height(node_record.best_height);
            }
            channel.peer_disconnected();
            // Drop anything the disconnection queued: nothing is sent while disconnected.
            channel.drain_messages();
            channel.drain_events();
            if channel.phase() == ChannelPhase::Normal {
                for scid in [channel.short_channel_id(), channel.our_alias()]
                    .into_iter()
                    .flatten()
                {
                    core.scid_to_channel.insert(scid, (node_id, channel_id));
                }
            }
            let peer = core.peers.entry(node_id).or_insert_with(|| {
                let mut peer = PeerState::new(node_id);
                peer.connected = false;
                peer
            });
            peer.channel_by_id.insert(
                channel_id,
                Box::new(PeerChannel {
                    channel,
                    user_channel_id,
                    funding_tx,
                }),
            );
            core.dirty.channel_changed(node_id, channel_id);
        }
        for mut monitor in monitors {
            let id = monitor.channel_id();
            core.monitor_revoked_stored
                .insert(id, monitor.last_revoked_with_htlcs());
            // A monitor ahead of the node's best block (its snapshot was committed with a
            // block the node record was not, by a shard that got further or one that saw a
            // block the others then disconnected) forgets the blocks above it: the host
            // re-feeds them from there, of whatever branch is now the chain, and they must be
            // applied, not skipped as already seen.
            let above = monitor.rewind_to(node_record.best_height);
            core.monitors.insert(id, monitor);
            if above {
                core.monitor_snapshot_due(id);
            }
        }
        // A monitor's stored snapshot may be older than its channel's record (the channel
        // stores what the monitor derives from it): bring it up to date; a funded channel
        // without one gets one.
        let channels: Vec<(PublicKey, ChannelId)> = core
            .peers
            .values()
            .flat_map(|p| p.channel_by_id.keys().map(move |id| (p.node_id, *id)))
            .collect();
        for (node_id, channel_id) in channels {
            core.sync_monitor(node_id, channel_id);
        }
        // A channel gone but monitored still resolves its HTLCs (on chain).
        let has_channel = |core: &NodeCore, node_id: &PublicKey, channel_id: &ChannelId| {
            core.monitors.contains_key(channel_id)
                || core
                    .peers
                    .get(node_id)
                    .is_some_and(|p| p.channel_by_id.contains_key(channel_id))
        };
        // Keep every peer's draw counter, channels or not: a peer met again in the same block
        // must never get the keys or ids it got before the restart.
        for (node_id, draws) in &node_record.peer_random_draws {
            let peer = core.peers.entry(*node_id).or_insert_with(|| {
                let mut peer = PeerState::new(*node_id);
                peer.connected = false;
                peer
            });
            peer.random_draws = *draws;
        }
        core.inbound_payments = node_record
            .inbound_payments
            .iter()
            .map(|(hash, p)| {
                (
                    *hash,
                    InboundPayment {
                        secret: p.payment_secret,
                        amount_msat: p.amount_msat,
                    },
                )
            })
            .collect();
        let mut claimable: BTreeMap<_, Vec<ClaimableHtlc>> = BTreeMap::new();
        for (hash, htlcs) in &node_record.claimable {
            for h in htlcs {
                if has_channel(&core, &h.node_id, &h.channel_id) {
                    claimable.entry(*hash).or_default().push(ClaimableHtlc {
                        node_id: h.node_id,
                        channel_id: h.channel_id,
                        htlc_id: h.htlc_id,
                        amount_msat: h.amount_msat,
                        cltv_expiry: h.cltv_expiry,
                        shared_secret: HopSharedSecret(h.shared_secret),
                    });
                }
            }
        }
        core.claimable = claimable;
        core.payments = node_record
            .payments
            .iter()
            .map(|(id, p)| {
                (
                    *id,
                    OutboundPayment {
                        payment_hash: p.payment_hash,
                        route: p.route.clone(),
                        shared_secrets: p
                            .shared_secrets
                            .iter()
                            .copied()
                            .map(HopSharedSecret)
                            .collect(),
                    },
                )
            })
            .collect();
        // Ids a node record of the first format-5 build held: the first commit writes them
        // as records of their own (and the node record, dirty below, without them).
        for (payment_id, completed_height) in &node_record.completed_payments {
            core.completed_payment_restored(
                CompletedPaymentRecord {
                    payment_id: *payment_id,
                    completed_height: *completed_height,
                },
                false,
            );
        }
        let mut orphans = Vec::new();
        // Every HTLC read is reported changed, whether kept or dropped: the first commit
        // writes each kept one as a record of its own (a node record of format 5 held them)
        // and deletes the record of each dropped one.
        for key in node_record.offered.keys() {
            core.offered.mark(*key);
        }
        for key in node_record.upstream.keys() {
            core.upstream.mark(*key);
        }
        for ((channel_id, htlc_id), o) in &node_record.offered {
            if has_channel(&core, &o.node_id, channel_id) {
                core.offered
                    .insert((*channel_id, *htlc_id), offered_from(o));
            } else {
                orphans.push((*channel_id, offered_from(o)));
            }
        }
        for ((channel_id, htlc_id), u) in &node_record.upstream {
            if has_channel(&core, &u.node_id, channel_id) {
                core.upstream.insert(
                    (*channel_id, *htlc_id),
                    UpstreamHtlc {
                        node_id: u.node_id,
                        shared_secret: HopSharedSecret(u.shared_secret),
                    },
                );
            }
        }
        core.pending_timeouts = node_record
            .pending_timeouts
            .iter()
            .map(|(txid, pending)| {
                let pending = pending
                    .iter()
                    .map(|p| PendingTimeout {
                        channel_id: p.channel_id,
                        offered: offered_from(&p.offered),
                    })
                    .collect();
                (*txid, pending)
            })
            .collect();
        core.dirty.node = true;
        core.prune_completed_payments();
        for (channel_id, offered) in orphans {
            core.resolve_offered_failed_here(
                offered,
                Some(channel_id),
                FailureMessage::PermanentChannelFailure,
            );
        }
        core
    }
}

impl ForwardResolution {
    /// The resolution's stored form (a [`ForwardResolutionRecord`], inside core's envelope:
    /// `ForwardResolutionRecord::to_bytes`).
    pub fn to_record(&self) -> ForwardResolutionRecord {
        ForwardResolutionRecord {
            source: self.source,
            next_channel_id: self.next_channel_id,
            outcome: match &self.outcome {
                ForwardOutcome::Fulfilled(p) => ForwardOutcomeRecord::Fulfilled(*p),
                ForwardOutcome::FailedDownstream(reason) => {
                    ForwardOutcomeRecord::FailedDownstream(reason.clone())
                }
                ForwardOutcome::Malformed {
                    failure_code,
                    sha256_of_onion,
                } => ForwardOutcomeRecord::Malformed {
                    failure_code: *failure_code,
                    sha256_of_onion: *sha256_of_onion,
                },
                // A failure this node built itself always encodes; if it ever did not, the
                // upstream end still fails (with temporary_node_failure) rather than hang.
                ForwardOutcome::FailedHere(message) => ForwardOutcomeRecord::FailedHere(
                    Failure::from(message.clone()).encode().unwrap_or_default(),
                ),
            },
        }
    }

    /// The resolution stored as `record`. A failure of this node that does not decode
    /// (only an empty one can be stored) reads as `temporary_node_failure`.
    pub fn from_record(record: ForwardResolutionRecord) -> Self {
        ForwardResolution {
            source: record.source,
            next_channel_id: record.next_channel_id,
            outcome: match record.outcome {
                ForwardOutcomeRecord::Fulfilled(p) => ForwardOutcome::Fulfilled(p),
                ForwardOutcomeRecord::FailedDownstream(reason) => {
                    ForwardOutcome::FailedDownstream(reason)
                }
                ForwardOutcomeRecord::Malformed {
                    failure_code,
                    sha256_of_onion,
                } => ForwardOutcome::Malformed {
                    failure_code,
                    sha256_of_onion,
                },
                ForwardOutcomeRecord::FailedHere(bytes) => ForwardOutcome::FailedHere(
                    Failure::decode(&bytes)
                        .map(|f| f.message)
                        .unwrap_or(FailureMessage::TemporaryNodeFailure),
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use bitcoin::constants::ChainHash;
    use bitcoin::hashes::Hash;

    use bitcoin::BlockHash;

    use super::*;
    use crate::channel::test_utils::{features, ready_pair, script};
    use crate::channel::{derive_channel_keys, Channel, ChannelConfig, OutboundParams};
    use crate::node::{HtlcSource, Output, PaymentId, Route, RouteHop};
    use crate::persist::OfferedHtlcRecord;
    use crate::types::{PaymentHash, ShortChannelId};

    fn secret(i: u8) -> SecretKey {
        SecretKey::from_slice(&[i; 32]).expect("valid")
    }

    fn empty_record() -> NodeRecord {
        NodeCore::new(
            secret(1),
            [7; 32],
            NodeConfig::default(),
            100,
            BlockHash::all_zeros(),
        )
        .node_record()
    }

    #[test]
    fn restore_drops_unfunded_channels_and_reports_them_removed() {
        let peer = PublicKey::from_secret_key(&crate::secp::ctx(), &secret(2));
        let (channel, _) = Channel::new_outbound(
            OutboundParams {
                chain_hash: ChainHash::REGTEST,
                temporary_channel_id: ChannelId([9; 32]),
                funding_satoshis: 100_000,
                push_msat: 0,
                feerate_per_kw: 1000,
                announce: false,
                shutdown_script: script(1),
            },
            &features(),
            &features(),
            ChannelConfig::default(),
            derive_channel_keys(&[3; 32], 0),
        )
        .expect("valid open");
        let record = ChannelRecord {
            node_id: peer,
            user_channel_id: 5,
            funding_tx: None,
            channel: channel.to_record(),
        };
        let mut core = NodeCore::restore(
            secret(1),
            [7; 32],
            NodeConfig::default(),
            empty_record(),
            vec![record],
        );
        assert!(core.peers.is_empty());
        // A peer without channels keeps its draw counter across the restart.
        let mut node = empty_record();
        node.peer_random_draws.insert(peer, 3);
        let again = NodeCore::restore(secret(1), [7; 32], NodeConfig::default(), node, vec![]);
        assert_eq!(again.peers.get(&peer).map(|p| p.random_draws), Some(3));
        assert_eq!(again.node_record().peer_random_draws.get(&peer), Some(&3));
        let dirty = core.take_dirty();
        assert!(dirty.removed.contains(&(peer, ChannelId([9; 32]))));
        assert!(dirty.channels.is_empty());
        assert_eq!(
            core.drain_outputs(),
            vec![Output::Event(Event::ChannelClosed {
                channel_id: ChannelId([9; 32]),
                counterparty_node_id: peer,
                reason: ClosureReason::DisconnectedPeer,
            })]
        );
    }

    #[test]
    fn restore_rebuilds_indexes_from_channels_and_fails_back_orphan_htlcs() {
        let peer = PublicKey::from_secret_key(&crate::secp::ctx(), &secret(2));
        let (mut a, _) = ready_pair();
        a.set_local_alias(ShortChannelId(777));
        let scid = a.short_channel_id().expect("confirmed");
        let channel_id = a.channel_id();
        let mut node = empty_record();
        node.peer_random_draws.insert(peer, 6);
        let payment = PaymentId([4; 32]);
        node.payments.insert(
            payment,
            OutboundPaymentRecord {
                payment_hash: PaymentHash([5; 32]),
                route: Route {
                    hops: vec![RouteHop {
                        node_id: peer,
                        short_channel_id: ShortChannelId(1),
                        fee_msat: 10,
                        cltv_expiry_delta: 40,
                    }],
                },
                shared_secrets: vec![[6; 32]],
            },
        );
        // An HTLC of that payment on a channel that is gone.
        node.offered.insert(
            (ChannelId([8; 32]), 0),
            OfferedHtlcRecord {
                node_id: peer,
                source: HtlcSource::Local(payment),
                amount_msat: 10,
                incoming_amount_msat: 10,
                cltv_expiry: 200,
            },
        );
        let record = ChannelRecord {
            node_id: peer,
            user_channel_id: 5,
            funding_tx: None,
            channel: a.to_record(),
        };
        let mut core = NodeCore::restore(
            secret(1),
            [7; 32],
            NodeConfig::default(),
            node,
            vec![record],
        );
        let expected: BTreeMap<_, _> = [
            (scid, (peer, channel_id)),
            (ShortChannelId(777), (peer, channel_id)),
        ]
        .into_iter()
        .collect();
        assert_eq!(core.scid_to_channel, expected);
        let p = core.peers.get(&peer).expect("peer rebuilt");
        assert!(!p.connected && p.their_features.is_none());
        assert_eq!(p.random_draws, 6);
        assert_eq!(
            core.channel(&peer, &channel_id).map(Channel::connection),
            Some(crate::channel::Connection::Disconnected)
        );
        assert!(core.offered.is_empty() && core.payments.is_empty());
        let failed = core.drain_outputs().into_iter().any(|o| {
            matches!(o, Output::Event(Event::PaymentFailed { payment_id, .. }) if payment_id == payment)
        });
        assert!(failed, "the orphan HTLC's payment failed");
        let dirty = core.take_dirty();
        assert!(dirty.node && dirty.channels.contains(&(peer, channel_id)));
        // The orphan's record is deleted by the first commit.
        assert_eq!(dirty.offered, [(ChannelId([8; 32]), 0)].into());
        assert_eq!(core.offered_entry(ChannelId([8; 32]), 0), None);
        assert!(core.take_dirty().is_empty());
    }

    /// From format 6 the two ends of forwards are records of their own: the stored node
    /// record leaves them out, every change names its key in `Dirty`, and a restore (from
    /// a node record of format 5 that holds them) reports every key it read, so the first
    /// commit writes each as a record.
    #[test]
    fn offered_and_forwarded_htlcs_are_records_of_their_own() {
        let peer = PublicKey::from_secret_key(&crate::secp::ctx(), &secret(2));
        let (a, _) = ready_pair();
        let channel_id = a.channel_id();
        let offered = OfferedHtlcRecord {
            node_id: peer,
            source: HtlcSource::Forwarded {
                channel_id,
                htlc_id: 1,
            },
            amount_msat: 1_000,
            incoming_amount_msat: 1_100,
            cltv_expiry: 300,
        };
        let upstream = UpstreamHtlcRecord {
            node_id: peer,
            shared_secret: [3; 32],
        };
        let mut node = empty_record();
        node.offered.insert((channel_id, 0), offered);
        node.upstream.insert((channel_id, 1), upstream);
        let record = ChannelRecord {
            node_id: peer,
            user_channel_id: 5,
            funding_tx: None,
            channel: a.to_record(),
        };
        let mut core = NodeCore::restore(
            secret(1),
            [7; 32],
            NodeConfig::default(),
            node.clone(),
            vec![record],
        );
        let dirty = core.take_dirty();
        assert_eq!(dirty.offered, [(channel_id, 0)].into());
        assert_eq!(dirty.upstream, [(channel_id, 1)].into());
        assert_eq!(
            core.offered_entry(channel_id, 0),
            Some(OfferedHtlcEntryRecord {
                channel_id,
                htlc_id: 0,
                offered,
            })
        );
        assert_eq!(
            core.upstream_entry(channel_id, 1),
            Some(UpstreamHtlcEntryRecord {
                channel_id,
                htlc_id: 1,
                upstream,
            })
        );
        // The whole snapshot holds them; the stored node record does not.
        let whole = core.node_record();
        assert_eq!(
            (whole.offered, whole.upstream),
            (node.offered, node.upstream)
        );
        let stored = core.stored_node_record();
        assert!(stored.offered.is_empty() && stored.upstream.is_empty());
        // Unchanged since: nothing to write.
        assert!(core.take_dirty().offered.is_empty());
        // A removal names its key (its record is deleted).
        core.upstream.remove(&(channel_id, 1));
        let dirty = core.take_dirty();
        assert_eq!(dirty.upstream, [(channel_id, 1)].into());
        assert_eq!(core.upstream_entry(channel_id, 1), None);
        // The records round-trip through their envelopes.
        let bytes = core
            .offered_entry(channel_id, 0)
            .unwrap()
            .to_bytes()
            .unwrap();
        assert_eq!(
            OfferedHtlcEntryRecord::from_bytes(&bytes),
            Ok(core.offered_entry(channel_id, 0).unwrap())
        );
    }
}
