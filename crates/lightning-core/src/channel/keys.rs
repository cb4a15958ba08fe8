//! The channel's signer keys: deterministic derivation from a node seed and a channel index.

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::SecretKey;

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

fn derive_bytes(seed: &[u8; 32], index: u64, label: &[u8], counter: u8) -> [u8; 32] {
    let mut engine = sha256::Hash::engine();
    engine.input(b"lnshard channel key");
    engine.input(seed);
    engine.input(&index.to_be_bytes());
    engine.input(label);
    engine.input(&[counter]);
    sha256::Hash::from_engine(engine).to_byte_array()
}

fn derive_key(seed: &[u8; 32], index: u64, label: &[u8]) -> SecretKey {
    let mut counter = 0u8;
    loop {
        if let Ok(key) = SecretKey::from_slice(&derive_bytes(seed, index, label, counter)) {
            return key;
        }
        // A SHA256 output is a valid key except with probability ~2^-128.
        counter = counter.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::Secp256k1;

    #[test]
    fn deterministic_and_distinct_per_index() {
        let secp = Secp256k1::new();
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
}
