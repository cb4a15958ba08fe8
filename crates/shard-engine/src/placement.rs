//! Which shard owns a peer: a keyed hash of its node id.

use lightning_core::bitcoin::hashes::{sha256, Hash, HashEngine};
use lightning_core::secp256k1::{PublicKey, SecretKey};

/// Maps a peer's node id to a shard: `ahash(node_id) % shards`, with the hash keyed from the
/// node's own secret.
///
/// The keys are a function of the node secret only, so a node places its peers the same way
/// on every start (with the same build: ahash promises no stability across versions or
/// targets), while a peer, not knowing the keys, cannot grind node ids that crowd one shard.
#[derive(Clone)]
pub struct Placement {
    state: ahash::RandomState,
    shards: usize,
}

impl core::fmt::Debug for Placement {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Placement")
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

impl Placement {
    /// Placement over `shards` shards (at least one) keyed from `node_secret`.
    pub fn new(node_secret: &SecretKey, shards: usize) -> Self {
        let mut engine = sha256::Hash::engine();
        engine.input(b"lnshard/placement-key");
        engine.input(&node_secret.secret_bytes());
        let key = sha256::Hash::from_engine(engine).to_byte_array();
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(key.get(i * 8..i * 8 + 8).unwrap_or(&[0; 8]));
            u64::from_le_bytes(w)
        };
        Placement {
            state: ahash::RandomState::with_seeds(word(0), word(1), word(2), word(3)),
            shards: shards.max(1),
        }
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The shard that owns `node_id`.
    pub fn shard_of(&self, node_id: &PublicKey) -> usize {
        let h = self.state.hash_one(node_id.serialize());
        // The remainder is below `shards`, a usize.
        (h % self.shards as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightning_core::secp256k1::Secp256k1;

    fn key(i: u8) -> SecretKey {
        SecretKey::from_slice(&sha256::Hash::hash(&[i]).to_byte_array()).expect("valid key")
    }

    #[test]
    fn placement_is_reproducible_and_keyed() {
        let secp = Secp256k1::new();
        let peers: Vec<PublicKey> = (0..200)
            .map(|i| PublicKey::from_secret_key(&secp, &key(i)))
            .collect();
        let a = Placement::new(&key(250), 8);
        let b = Placement::new(&key(250), 8);
        let c = Placement::new(&key(251), 8);
        let pa: Vec<usize> = peers.iter().map(|p| a.shard_of(p)).collect();
        let pb: Vec<usize> = peers.iter().map(|p| b.shard_of(p)).collect();
        let pc: Vec<usize> = peers.iter().map(|p| c.shard_of(p)).collect();
        assert_eq!(pa, pb, "same secret, same placement");
        assert_ne!(pa, pc, "another secret places peers differently");
        let mut counts = [0usize; 8];
        for s in pa {
            counts[s] += 1;
        }
        assert!(
            counts.iter().all(|&n| n > 5),
            "200 peers spread over 8 shards: {counts:?}"
        );
    }

    #[test]
    fn one_shard_takes_everything() {
        let secp = Secp256k1::new();
        let p = Placement::new(&key(1), 0);
        assert_eq!(p.shards(), 1);
        assert_eq!(p.shard_of(&PublicKey::from_secret_key(&secp, &key(2))), 0);
    }
}
