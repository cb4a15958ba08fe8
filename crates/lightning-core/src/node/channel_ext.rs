//! What the node needs of a [`Channel`] beyond its own API: our alias, the expiries of HTLCs
//! we offered, and the second-stage transactions (HTLC-timeout and HTLC-success) that resolve
//! our HTLCs on chain after a force close.

#[cfg(test)]
use std::collections::BTreeMap;

#[cfg(test)]
use bitcoin::Transaction;

use crate::channel::Channel;
#[cfg(test)]
use crate::channel::Update;
#[cfg(test)]
use crate::types::PaymentPreimage;
use crate::types::ShortChannelId;

impl Channel {
    /// The alias we gave the peer for this channel.
    pub(crate) fn our_alias(&self) -> Option<ShortChannelId> {
        self.local_alias
    }

    /// The expiries of HTLCs we offered that are in either side's current commitment.
    pub(crate) fn offered_htlc_expiries(&self) -> impl Iterator<Item = u32> + '_ {
        let ours = self.local_commit.spec.htlcs.values().filter(|h| h.offered);
        let theirs = self
            .remote_commit
            .spec
            .htlcs
            .values()
            .filter(|h| !h.offered);
        ours.chain(theirs).map(|h| h.cltv_expiry)
    }

    /// Our second-stage transactions for our latest commitment, each with both signatures
    /// (the peer's from its `commitment_signed`, ours), keyed by HTLC id: HTLC-timeout for
    /// the HTLCs we offered (valid once the height reaches their expiry, their locktime), and
    /// HTLC-success for the HTLCs we received and already fulfilled (we hold the preimage:
    /// without this transaction a force close would forfeit them).
    #[cfg(test)]
    pub(crate) fn holder_htlc_txs(&self) -> HolderHtlcTxs {
        let mut out = HolderHtlcTxs::default();
        let Ok(commitment) = self.local_commitment_tx() else {
            return out;
        };
        let Ok(point) = self.local_point(self.local_commit.index) else {
            return out;
        };
        let secp = crate::secp::ctx();
        let Ok(htlc_key) = self.keys.htlc_key(&secp, &point) else {
            return out;
        };
        let preimages: BTreeMap<u64, PaymentPreimage> = self
            .holding_cell
            .iter()
            .chain(&self.local_changes.proposed)
            .chain(&self.local_changes.signed)
            .chain(&self.local_changes.acked)
            .filter_map(|u| match u {
                Update::Fulfill(f) => Some((f.id, f.payment_preimage)),
                _ => None,
            })
            .collect();
        // The builder's HTLC list is the spec's HTLCs in map order.
        let spec_htlcs: Vec<_> = self.local_commit.spec.htlcs.values().collect();
        let txs = commitment.htlc_txs();
        for (htlc_tx, remote_sig) in txs.iter().zip(&self.local_commit.htlc_signatures) {
            let Some(spec) = spec_htlcs.get(htlc_tx.commitment_output().htlc_index) else {
                continue;
            };
            let local_sig = htlc_tx.sign_local(&secp, &htlc_key);
            if htlc_tx.is_success() {
                let Some(preimage) = preimages.get(&spec.id) else {
                    continue;
                };
                if let Ok(tx) = htlc_tx.finalize(remote_sig, &local_sig, Some(preimage)) {
                    out.success.push((spec.id, tx));
                }
            } else if let Ok(tx) = htlc_tx.finalize(remote_sig, &local_sig, None) {
                out.timeout.push((spec.id, tx));
            }
        }
        out
    }
}

/// Second-stage transactions of our latest commitment (see [`Channel::holder_htlc_txs`]).
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct HolderHtlcTxs {
    /// HTLC-timeout transactions of HTLCs we offered, by HTLC id.
    pub(crate) timeout: Vec<(u64, Transaction)>,
    /// HTLC-success transactions of HTLCs we received and fulfilled, by HTLC id.
    pub(crate) success: Vec<(u64, Transaction)>,
}
