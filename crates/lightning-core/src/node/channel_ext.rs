//! What the node needs of a [`Channel`] beyond its own API: our alias, the expiries of HTLCs
//! we offered, and the second-stage transactions that time out our offered HTLCs after a
//! force close.

use bitcoin::secp256k1::Secp256k1;
use bitcoin::Transaction;

use crate::channel::Channel;
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

    /// Our HTLC-timeout transactions for the HTLCs we offered in our latest commitment, each
    /// with both signatures (the peer's from its `commitment_signed`, ours), keyed by HTLC id.
    /// They are valid once the block height reaches the HTLC's expiry (their locktime).
    pub(crate) fn holder_htlc_timeout_txs(&self) -> Vec<(u64, Transaction)> {
        let Ok(commitment) = self.local_commitment_tx() else {
            return Vec::new();
        };
        let Ok(point) = self.local_point(self.local_commit.index) else {
            return Vec::new();
        };
        let secp = Secp256k1::new();
        let Ok(htlc_key) = self.keys.htlc_key(&secp, &point) else {
            return Vec::new();
        };
        // The builder's HTLC list is the spec's HTLCs in map order.
        let spec_htlcs: Vec<_> = self.local_commit.spec.htlcs.values().collect();
        let mut out = Vec::new();
        for (htlc_tx, remote_sig) in commitment
            .htlc_txs()
            .iter()
            .zip(&self.local_commit.htlc_signatures)
        {
            if htlc_tx.is_success() {
                continue;
            }
            let Some(spec) = spec_htlcs.get(htlc_tx.commitment_output().htlc_index) else {
                continue;
            };
            let local_sig = htlc_tx.sign_local(&secp, &htlc_key);
            if let Ok(tx) = htlc_tx.finalize(remote_sig, &local_sig, None) {
                out.push((spec.id, tx));
            }
        }
        out
    }
}
