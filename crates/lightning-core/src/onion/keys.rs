//! The BOLT 4 key schedule: the per-hop shared secret (SHA256 of the compressed ECDH point),
//! the keys derived from it (`rho`, `mu`, `um`, `pad`, `ammag`, `ammagext`), the ChaCha20
//! pseudo-random stream, and the blinding of the ephemeral key from one hop to the next.

use core::fmt;

use bitcoin::hashes::hmac::{Hmac, HmacEngine};
use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{ecdh, PublicKey, Scalar, Secp256k1, SecretKey, Signing, Verification};
use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;

/// The 32-byte secret the origin shares with one hop: SHA256 of the compressed ECDH point
/// (BOLT 4 "Shared Secret").
///
/// `Debug` does not print the bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HopSharedSecret(pub [u8; 32]);

impl fmt::Debug for HopSharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HopSharedSecret(..)")
    }
}

/// The kinds of key derived from a [`HopSharedSecret`] (BOLT 4 "Key Generation" and
/// "Returning Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `rho`: the stream that obfuscates `hop_payloads`.
    Rho,
    /// `mu`: the HMAC key of the forward packet.
    Mu,
    /// `um`: the HMAC key of a failure (and attribution) message.
    Um,
    /// `pad`: the stream that fills the initial `hop_payloads` (keyed by the session key).
    Pad,
    /// `ammag`: the stream that obfuscates a returned failure packet.
    Ammag,
    /// `ammagext`: the stream that obfuscates `attribution_data`.
    AmmagExt,
}

impl KeyType {
    /// The HMAC key naming this key type: its ASCII name with no terminating zero.
    pub fn label(self) -> &'static [u8] {
        match self {
            KeyType::Rho => b"rho",
            KeyType::Mu => b"mu",
            KeyType::Um => b"um",
            KeyType::Pad => b"pad",
            KeyType::Ammag => b"ammag",
            KeyType::AmmagExt => b"ammagext",
        }
    }
}

impl HopSharedSecret {
    /// ECDH between `point` and `scalar`: SHA256 of the compressed product point. The origin
    /// passes (hop node id, ephemeral secret); the hop passes (ephemeral point, node secret).
    pub fn compute(point: &PublicKey, scalar: &SecretKey) -> Self {
        HopSharedSecret(ecdh::SharedSecret::new(point, scalar).secret_bytes())
    }

    /// The key of type `kind`: HMAC-SHA256 keyed by the type's name over the secret.
    pub fn derive_key(&self, kind: KeyType) -> [u8; 32] {
        hmac_sha256(kind.label(), &[&self.0])
    }
}

/// HMAC-SHA256 keyed by `key` over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut engine = HmacEngine::<sha256::Hash>::new(key);
    for part in parts {
        engine.input(part);
    }
    Hmac::<sha256::Hash>::from_engine(engine).to_byte_array()
}

/// XORs the ChaCha20 stream of `key` (96-bit zero nonce, counter from zero) into `buf`.
///
/// Every buffer in BOLT 4 is at most a few kilobytes, far below ChaCha20's 256 GiB limit.
pub fn apply_stream(key: &[u8; 32], buf: &mut [u8]) {
    let mut cipher = ChaCha20::new(key.into(), &[0u8; 12].into());
    cipher.apply_keystream(buf);
}

/// The first `len` bytes of the ChaCha20 stream of `key`: the encryption of `len` zero bytes.
pub fn stream(key: &[u8; 32], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    apply_stream(key, &mut out);
    out
}

/// The factor that blinds an ephemeral key for the next hop: SHA256(`ephemeral_key` ||
/// `shared_secret`).
pub fn blinding_factor(ephemeral_key: &PublicKey, shared_secret: &HopSharedSecret) -> [u8; 32] {
    let mut engine = sha256::Hash::engine();
    engine.input(&ephemeral_key.serialize());
    engine.input(&shared_secret.0);
    sha256::Hash::from_engine(engine).to_byte_array()
}

/// Why a key could not be blinded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyBlindingError {
    /// The blinding factor was zero or not below the curve order (a SHA256 output; this happens
    /// with negligible probability).
    InvalidFactor {
        /// The index in the route of the hop whose key could not be blinded (0 when a
        /// processing hop blinds the key it received: it does not know its index).
        hop: usize,
    },
}

impl fmt::Display for KeyBlindingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyBlindingError::InvalidFactor { hop } => write!(
                f,
                "blinding factor after hop {hop} is not a valid secp256k1 scalar"
            ),
        }
    }
}

impl std::error::Error for KeyBlindingError {}

/// Multiplies a public key by a blinding factor (the processing hop's side).
pub fn blind_public_key<C: Verification>(
    secp: &Secp256k1<C>,
    key: &PublicKey,
    factor: &[u8; 32],
    hop: usize,
) -> Result<PublicKey, KeyBlindingError> {
    let scalar =
        Scalar::from_be_bytes(*factor).map_err(|_| KeyBlindingError::InvalidFactor { hop })?;
    key.mul_tweak(secp, &scalar)
        .map_err(|_| KeyBlindingError::InvalidFactor { hop })
}

/// Multiplies a secret key by a blinding factor (the origin's side).
pub fn blind_secret_key(
    key: &SecretKey,
    factor: &[u8; 32],
    hop: usize,
) -> Result<SecretKey, KeyBlindingError> {
    let scalar =
        Scalar::from_be_bytes(*factor).map_err(|_| KeyBlindingError::InvalidFactor { hop })?;
    key.mul_tweak(&scalar)
        .map_err(|_| KeyBlindingError::InvalidFactor { hop })
}

/// What the origin knows about one hop of its route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HopKeys {
    /// The ephemeral public key this hop finds in its onion.
    pub ephemeral_key: PublicKey,
    /// The secret shared with this hop.
    pub shared_secret: HopSharedSecret,
}

/// The origin's key schedule for a route: for each hop in order, the ephemeral key it will see
/// and the secret shared with it, starting from `session_key` and blinding after every hop.
pub fn route_keys<C: Signing + Verification>(
    secp: &Secp256k1<C>,
    session_key: &SecretKey,
    hops: &[PublicKey],
) -> Result<Vec<HopKeys>, KeyBlindingError> {
    let mut ephemeral_secret = *session_key;
    let mut keys = Vec::with_capacity(hops.len());
    for (index, node_id) in hops.iter().enumerate() {
        let ephemeral_key = PublicKey::from_secret_key(secp, &ephemeral_secret);
        let shared_secret = HopSharedSecret::compute(node_id, &ephemeral_secret);
        keys.push(HopKeys {
            ephemeral_key,
            shared_secret,
        });
        if index + 1 < hops.len() {
            let factor = blinding_factor(&ephemeral_key, &shared_secret);
            ephemeral_secret = blind_secret_key(&ephemeral_secret, &factor, index)?;
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> SecretKey {
        SecretKey::from_slice(&[byte; 32]).expect("a repeated non-zero byte is a valid key")
    }

    #[test]
    fn both_ends_derive_the_same_shared_secret() {
        let secp = crate::secp::ctx();
        let node = secret(0x42);
        let ephemeral = secret(0x17);
        let from_origin =
            HopSharedSecret::compute(&PublicKey::from_secret_key(&secp, &node), &ephemeral);
        let from_hop =
            HopSharedSecret::compute(&PublicKey::from_secret_key(&secp, &ephemeral), &node);
        assert_eq!(from_origin, from_hop);
        assert_eq!(format!("{from_hop:?}"), "HopSharedSecret(..)");
    }

    #[test]
    fn blinding_commutes_between_secret_and_public_keys() {
        let secp = crate::secp::ctx();
        let sk = secret(0x41);
        let pk = PublicKey::from_secret_key(&secp, &sk);
        let factor = [0x05; 32];
        let blinded_sk = blind_secret_key(&sk, &factor, 0).unwrap();
        let blinded_pk = blind_public_key(&secp, &pk, &factor, 0).unwrap();
        assert_eq!(PublicKey::from_secret_key(&secp, &blinded_sk), blinded_pk);
    }

    #[test]
    fn out_of_range_blinding_factor_is_a_typed_error() {
        let secp = crate::secp::ctx();
        let sk = secret(0x41);
        let pk = PublicKey::from_secret_key(&secp, &sk);
        let err = blind_public_key(&secp, &pk, &[0xff; 32], 3).unwrap_err();
        assert_eq!(err, KeyBlindingError::InvalidFactor { hop: 3 });
        assert_eq!(
            err.to_string(),
            "blinding factor after hop 3 is not a valid secp256k1 scalar"
        );
        assert_eq!(
            blind_secret_key(&sk, &[0; 32], 1),
            Err(KeyBlindingError::InvalidFactor { hop: 1 })
        );
    }

    #[test]
    fn stream_is_chacha20_with_zero_nonce() {
        // RFC 8439 section 2.4.2 uses a non-zero nonce; with an all-zero key and nonce the first
        // block is the well-known ChaCha20 test vector 1 of RFC 8439 appendix A.1.
        let block = stream(&[0; 32], 16);
        assert_eq!(
            block,
            [
                0x76, 0xb8, 0xe0, 0xad, 0xa0, 0xf1, 0x3d, 0x90, 0x40, 0x5d, 0x6a, 0xe5, 0x53, 0x86,
                0xbd, 0x28
            ]
        );
        let mut buf = block.clone();
        apply_stream(&[0; 32], &mut buf);
        assert_eq!(buf, [0; 16], "applying the stream twice is the identity");
    }

    #[test]
    fn key_labels_have_no_terminator() {
        assert_eq!(KeyType::Rho.label(), &[0x72, 0x68, 0x6f]);
        assert_eq!(KeyType::Mu.label(), &[0x6d, 0x75]);
        assert_eq!(KeyType::Um.label(), &[0x75, 0x6d]);
        assert_eq!(KeyType::Pad.label(), &[0x70, 0x61, 0x64]);
        assert_eq!(KeyType::AmmagExt.label(), b"ammagext");
    }
}
