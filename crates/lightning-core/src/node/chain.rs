//! Chain input: confirmations of funding transactions, new best blocks (channel_ready at
//! depth; HTLC deadlines), and our HTLC-timeout transactions confirming.

use bitcoin::secp256k1::PublicKey;
use bitcoin::{BlockHash, Transaction};

use super::{ClosureReason, NodeCore};
use crate::onion::FailureMessage;
use crate::types::{ChannelId, PaymentHash};

impl NodeCore {
    /// Transactions confirmed in the block at `height`: `(index in block, tx)`.
    pub fn transactions_confirmed(&mut self, height: u32, txdata: &[(u32, &Transaction)]) {
        // Spends of our funding outputs and of what those created: the monitors' business.
        self.monitors_confirmed(height, txdata);
        for (index, tx) in txdata {
            let txid = tx.compute_txid();
            // A funding transaction of ours.
            let funded: Vec<(PublicKey, ChannelId, u16)> = self
                .peers
                .values()
                .flat_map(|p| {
                    p.channel_by_id.iter().filter_map(move |(id, e)| {
                        let outpoint = e.channel.funding_outpoint()?;
                        (outpoint.txid == txid).then_some((p.node_id, *id, outpoint.vout as u16))
                    })
                })
                .collect();
            for (node_id, channel_id, vout) in funded {
                self.with_channel(node_id, channel_id, |entry| {
                    entry.channel.funding_confirmed(height, *index, vout)?;
                    entry.channel.best_block_updated(height)
                });
            }
            // One of our HTLC-timeout transactions: the HTLCs it times out fail back now.
            if let Some(pending) = self.pending_timeouts.remove(&txid) {
                self.dirty.node = true;
                for p in pending {
                    self.resolve_offered_failed_here(
                        p.offered,
                        Some(p.channel_id),
                        FailureMessage::PermanentChannelFailure,
                    );
                }
            }
        }
    }

    /// A new best block: channels reaching their funding depth send `channel_ready`; an
    /// inbound channel whose funding has not confirmed
    /// [`FUNDING_CONF_DEADLINE_BLOCKS`](super::FUNDING_CONF_DEADLINE_BLOCKS) after we accepted
    /// it is forgotten ([`ClosureReason::FundingTimedOut`], its record removed); a channel
    /// holding an HTLC we offered past its deadline (expiry plus the grace period) is failed
    /// and the HTLC timed out on chain; payments to us nobody claimed before their deadline
    /// are failed back.
    pub fn best_block_updated(&mut self, height: u32, hash: BlockHash) {
        self.best_height = height;
        self.best_hash = hash;
        self.dirty.node = true;
        self.prune_completed_payments();
        // Claims due and events deep enough at this height.
        self.monitors_best_block(height);
        let ids: Vec<(PublicKey, ChannelId)> = self
            .peers
            .values()
            .flat_map(|p| p.channel_by_id.keys().map(move |id| (p.node_id, *id)))
            .collect();
        let grace = self.config.offered_htlc_grace_blocks;
        for (node_id, channel_id) in ids {
            // BOLT 2: as fundee, forget a channel whose funding never confirmed (it cost the
            // peer nothing, and we would keep it forever).
            let timed_out = self
                .channel(&node_id, &channel_id)
                .is_some_and(|c| c.funding_timed_out(height, super::FUNDING_CONF_DEADLINE_BLOCKS));
            if timed_out {
                self.send_error(
                    node_id,
                    channel_id,
                    "funding transaction not confirmed within 2016 blocks: channel forgotten",
                );
                self.forget_channel(node_id, channel_id, ClosureReason::FundingTimedOut);
                continue;
            }
            // BOLT 2 deadlines: an HTLC we offered, in either commitment, past its expiry
            // plus the grace period; or one we fulfilled still not removed near its expiry.
            let expired = self.channel(&node_id, &channel_id).is_some_and(|c| {
                c.offered_htlc_expiries()
                    .any(|expiry| expiry.saturating_add(grace) <= height)
                    || c.check_htlc_deadlines(height).is_err()
            });
            if expired {
                self.send_error(
                    node_id,
                    channel_id,
                    "an offered htlc passed its deadline: closing",
                );
                self.close_channel_internal(
                    node_id,
                    channel_id,
                    ClosureReason::HtlcsTimedOut,
                    true,
                );
                continue;
            }
            // Most channels do nothing on a block: keep them out of the next commit unless
            // this call changed them.
            let key = (node_id, channel_id);
            let before = if self.dirty.channels.contains(&key) {
                None
            } else {
                self.channel(&node_id, &channel_id).cloned()
            };
            let was_open = self
                .channel(&node_id, &channel_id)
                .is_some_and(|c| c.phase() == crate::channel::ChannelPhase::Normal);
            self.with_channel(node_id, channel_id, |entry| {
                entry.channel.best_block_updated(height)
            });
            if before.is_some() && self.channel(&node_id, &channel_id) == before.as_ref() {
                self.dirty.channels.remove(&key);
            }
            // Open now (our channel_ready went out after the peer's): it follows the
            // estimates from here.
            let open_now = self
                .channel(&node_id, &channel_id)
                .is_some_and(|c| c.phase() == crate::channel::ChannelPhase::Normal);
            if open_now && !was_open {
                self.maybe_update_fee(node_id, channel_id);
            }
        }
        let deadline = self.config.received_htlc_deadline_blocks;
        let overdue: Vec<PaymentHash> = self
            .claimable
            .iter()
            .filter(|(_, htlcs)| {
                htlcs
                    .iter()
                    .any(|h| h.cltv_expiry <= height.saturating_add(deadline))
            })
            .map(|(hash, _)| *hash)
            .collect();
        for hash in overdue {
            let _ = self.fail_htlc_backwards(hash);
        }
    }
}
