//! [`PeerMap`]: the node's peers by node id, ordered as secp256k1 orders public keys
//! (lexicographically by compressed serialization) without serializing two keys per
//! comparison.
//!
//! `secp256k1::PublicKey`'s `Ord` (and `Eq`, and `Hash`) serialize both keys on every call:
//! about 800 instructions per comparison, six comparisons per lookup among 64 peers, and
//! several lookups per message (2% of a routing shard's instructions, measured with
//! callgrind on `lnshard bench scaling`). Here each key is serialized once, when it enters
//! the map, and once per lookup; the order, and so every iteration over the peers, is
//! unchanged.

use bitcoin::secp256k1::PublicKey;
use std::collections::btree_map::{self, BTreeMap};

use crate::peer::PeerState;

/// A node id's compressed serialization: ordered as `PublicKey` orders keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PeerKey([u8; 33]);

impl PeerKey {
    fn new(key: &PublicKey) -> PeerKey {
        PeerKey(key.serialize())
    }
}

/// The node's peers, by node id (see the [module documentation](self)).
#[derive(Debug, Default)]
pub(crate) struct PeerMap(BTreeMap<PeerKey, PeerState>);

impl PeerMap {
    pub(crate) fn get(&self, node_id: &PublicKey) -> Option<&PeerState> {
        self.0.get(&PeerKey::new(node_id))
    }

    pub(crate) fn get_mut(&mut self, node_id: &PublicKey) -> Option<&mut PeerState> {
        self.0.get_mut(&PeerKey::new(node_id))
    }

    pub(crate) fn entry(&mut self, node_id: PublicKey) -> btree_map::Entry<'_, PeerKey, PeerState> {
        self.0.entry(PeerKey::new(&node_id))
    }

    pub(crate) fn remove(&mut self, node_id: &PublicKey) -> Option<PeerState> {
        self.0.remove(&PeerKey::new(node_id))
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The peers, in node id order.
    pub(crate) fn values(&self) -> btree_map::Values<'_, PeerKey, PeerState> {
        self.0.values()
    }

    /// The peers, in node id order.
    pub(crate) fn values_mut(&mut self) -> btree_map::ValuesMut<'_, PeerKey, PeerState> {
        self.0.values_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::{Secp256k1, SecretKey};

    #[test]
    fn orders_keys_as_secp256k1_does() {
        let secp = Secp256k1::signing_only();
        let keys: Vec<PublicKey> = (1u8..=40)
            .map(|i| {
                let mut b = [0u8; 32];
                b[0] = i.wrapping_mul(37);
                b[31] = i;
                PublicKey::from_secret_key(&secp, &SecretKey::from_slice(&b).expect("valid"))
            })
            .collect();
        for a in &keys {
            for b in &keys {
                assert_eq!(PeerKey::new(a).cmp(&PeerKey::new(b)), a.cmp(b));
            }
        }
    }
}
