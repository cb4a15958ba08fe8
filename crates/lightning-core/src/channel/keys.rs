//! The channel's signer keys: deterministic derivation from a node seed and a channel index.
//!
//! A node derives every channel's keys with [`derive_peer_channel_keys`] from its seed, the
//! peer's node id and a key index, as LDK's `KeysManager` derives them from its seed and
//! per-channel parameters: the channel's stored record then holds the index, never a
//! secret, and a restart derives the keys again. How `NodeCore` draws indices so that no
//! two channels of one node share keys (across shards too) is documented on its
//! `next_keys`.
//!
//! [`derive_channel_keys`] (seed and index only) is the derivation of format versions 1
//! and 2, whose records stored the secrets; tests use it to make keys.

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{PublicKey, SecretKey};

use crate::keys::ChannelKeys;

/// Derives the keys of channel number `channel_key_index` from a 32-byte node seed:
/// each key is `SHA256("lnshard channel key" || seed || index (8 bytes BE) || label || n)`,
/// with `n` incremented in the (negligible) case the hash is not a valid secret key. The
/// per-commitment seed is derived the same way with its own label.
///
/// Different indices give unrelated keys; the same seed and index always give the same keys.
pub fn derive_channel_keys(node_seed: &[u8; 32], channel_key_index: u64) -> ChannelKeys {
    ChannelKeys {
        funding_key: derive_key(node_seed, channel_key_index, b"funding"),
        revocation_base_key: derive_key(node_seed, channel_key_index, b"revocation"),
        payment_base_key: derive_key(node_seed, channel_key_index, b"payment"),
        delayed_payment_base_key: derive_key(node_seed, channel_key_index, b"delayed_payment"),
        htlc_base_key: derive_key(node_seed, channel_key_index, b"htlc"),
        commitment_seed: derive_bytes(node_seed, channel_key_index, b"commitment_seed", 0),
    }
}

/// Derives the keys of the channel with key index `index` among those a node with seed
/// `node_seed` has with the peer `peer`: each key is
/// `SHA256("lnshard peer channel key" || seed || peer (33 bytes) || index (8 bytes BE) ||
/// label || n)`, with `n` incremented in the (negligible) case the hash is not a valid secret
/// key; the per-commitment seed likewise with its own label.
///
/// The peer is an input, so two shards (which share the seed but never a peer) that hand
/// out the same index still derive unrelated keys. Deterministic: the same seed, peer and
/// index always give the same keys, which is what lets a record store only the index.
pub fn derive_peer_channel_keys(node_seed: &[u8; 32], peer: &PublicKey, index: u64) -> ChannelKeys {
    let peer = peer.serialize();
    let prefix = |engine: &mut sha256::HashEngine| {
        engine.input(b"lnshard peer channel key");
        engine.input(node_seed);
        engine.input(&peer);
        engine.input(&index.to_be_bytes());
    };
    ChannelKeys {
        funding_key: key_from(|c| hash_with(&prefix, b"funding", c)),
        revocation_base_key: key_from(|c| hash_with(&prefix, b"revocation", c)),
        payment_base_key: key_from(|c| hash_with(&prefix, b"payment", c)),
        delayed_payment_base_key: key_from(|c| hash_with(&prefix, b"delayed_payment", c)),
        htlc_base_key: key_from(|c| hash_with(&prefix, b"htlc", c)),
        commitment_seed: hash_with(&prefix, b"commitment_seed", 0),
    }
}

fn hash_with(prefix: &impl Fn(&mut sha256::HashEngine), label: &[u8], counter: u8) -> [u8; 32] {
    let mut engine = sha256::Hash::engine();
    prefix(&mut engine);
    engine.input(label);
    engine.input(&[counter]);
    sha256::Hash::from_engine(engine).to_byte_array()
}

fn derive_bytes(seed: &[u8; 32], index: u64, label: &[u8], counter: u8) -> [u8; 32] {
    let prefix = |engine: &mut sha256::HashEngine| {
        engine.input(b"lnshard channel key");
        engine.input(seed);
        engine.input(&index.to_be_bytes());
    };
    hash_with(&prefix, label, counter)
}

/// The first of `bytes(0)`, `bytes(1)`, ... that is a valid secret key.
fn key_from(bytes: impl Fn(u8) -> [u8; 32]) -> SecretKey {
    let mut counter = 0u8;
    loop {
        if let Ok(key) = SecretKey::from_slice(&bytes(counter)) {
            return key;
        }
        // A SHA256 output is a valid key except with probability ~2^-128.
        counter = counter.wrapping_add(1);
    }
}

fn derive_key(seed: &[u8; 32], index: u64, label: &[u8]) -> SecretKey {
    key_from(|counter| derive_bytes(seed, index, label, counter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_distinct_per_index() {
        let secp = crate::secp::ctx();
        let a = derive_channel_keys(&[1; 32], 0);
        let b = derive_channel_keys(&[1; 32], 0);
        let c = derive_channel_keys(&[1; 32], 1);
        assert_eq!(a, b);
        assert_ne!(a.funding_key, c.funding_key);
        assert_ne!(a.commitment_seed, c.commitment_seed);
        let pk = a.public_keys(&secp);
        let keys = [
            pk.funding_pubkey,
            pk.revocation_basepoint,
            pk.payment_basepoint,
            pk.delayed_payment_basepoint,
            pk.htlc_basepoint,
        ];
        for (i, x) in keys.iter().enumerate() {
            for y in keys.iter().skip(i + 1) {
                assert_ne!(x, y);
            }
        }
    }

    #[test]
    fn peer_keys_are_deterministic_and_distinct_per_peer_and_index() {
        let secp = crate::secp::ctx();
        let peer = |i: u8| {
            PublicKey::from_secret_key(&secp, &SecretKey::from_slice(&[i; 32]).expect("valid"))
        };
        let a = derive_peer_channel_keys(&[1; 32], &peer(2), 0);
        assert_eq!(a, derive_peer_channel_keys(&[1; 32], &peer(2), 0));
        let others = [
            derive_peer_channel_keys(&[1; 32], &peer(2), 1),
            derive_peer_channel_keys(&[1; 32], &peer(3), 0),
            derive_peer_channel_keys(&[9; 32], &peer(2), 0),
            derive_channel_keys(&[1; 32], 0),
        ];
        for o in &others {
            assert_ne!(a.funding_key, o.funding_key);
            assert_ne!(a.commitment_seed, o.commitment_seed);
        }
    }
}
