//! BOLT 8 cryptographic building blocks: `HKDF`, `encryptWithAD` / `decryptWithAD` with the
//! Noise nonce encoding, and the per-direction [`CipherState`] that rotates its key every
//! 1000 uses.

use bitcoin::hashes::{sha256, Hash, HashEngine, Hmac, HmacEngine};
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce, Tag};

/// Length of a Poly1305 tag.
pub(super) const MAC_LEN: usize = 16;

/// A key is rotated once its nonce reaches this value (BOLT 8 "Lightning Message Key
/// Rotation": every 1000 encryptions or decryptions, i.e. every 500 messages).
pub(super) const KEY_ROTATION_INTERVAL: u64 = 1000;

/// A Poly1305 tag did not match: the ciphertext, its associated data, the key or the nonce
/// differ from what the sender used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MacMismatch;

/// `HKDF(salt, ikm)` from RFC 5869 with SHA-256 and a zero-length `info`, returning the 64
/// output bytes as two 32-byte halves, as BOLT 8 uses it (`ck, k = HKDF(ck, ikm)`).
pub(super) fn hkdf(salt: &[u8; 32], ikm: &[u8]) -> ([u8; 32], [u8; 32]) {
    // Extract: PRK = HMAC(salt, IKM).
    let mut extract = HmacEngine::<sha256::Hash>::new(salt);
    extract.input(ikm);
    let prk = Hmac::<sha256::Hash>::from_engine(extract).to_byte_array();

    // Expand with empty info: T(1) = HMAC(PRK, 0x01), T(2) = HMAC(PRK, T(1) || 0x02).
    let mut first = HmacEngine::<sha256::Hash>::new(&prk);
    first.input(&[1]);
    let t1 = Hmac::<sha256::Hash>::from_engine(first).to_byte_array();

    let mut second = HmacEngine::<sha256::Hash>::new(&prk);
    second.input(&t1);
    second.input(&[2]);
    let t2 = Hmac::<sha256::Hash>::from_engine(second).to_byte_array();

    (t1, t2)
}

/// The 96-bit ChaCha20-Poly1305 nonce for counter `n`: 32 zero bits followed by `n` as a
/// little-endian 64-bit integer (the Noise convention, not Lightning's usual big-endian).
pub(super) fn nonce_bytes(n: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    for (slot, byte) in nonce.iter_mut().skip(4).zip(n.to_le_bytes()) {
        *slot = byte;
    }
    nonce
}

/// `encryptWithAD(k, n, ad, plaintext)`: encrypts `buffer` in place and returns the tag.
pub(super) fn encrypt_with_ad(key: &[u8; 32], n: u64, ad: &[u8], buffer: &mut [u8]) -> [u8; 16] {
    let cipher = ChaCha20Poly1305::new(&Key::from(*key));
    let tag = cipher
        .encrypt_in_place_detached(&Nonce::from(nonce_bytes(n)), ad, buffer)
        .expect("chacha20poly1305 only fails above 2^38 bytes; callers pass at most 65535");
    tag.into()
}

/// `decryptWithAD(k, n, ad, ciphertext)`: checks `tag` and decrypts `buffer` in place.
///
/// On a mismatch `buffer` is left as it was.
pub(super) fn decrypt_with_ad(
    key: &[u8; 32],
    n: u64,
    ad: &[u8],
    buffer: &mut [u8],
    tag: &[u8; 16],
) -> Result<(), MacMismatch> {
    let cipher = ChaCha20Poly1305::new(&Key::from(*key));
    cipher
        .decrypt_in_place_detached(&Nonce::from(nonce_bytes(n)), ad, buffer, &Tag::from(*tag))
        .map_err(|_| MacMismatch)
}

/// One direction's message-phase cipher: chaining key `ck` (`sck` or `rck`), key `k` (`sk`
/// or `rk`) and nonce `n` (`sn` or `rn`). The associated data is always empty.
#[derive(Clone)]
pub(super) struct CipherState {
    chaining_key: [u8; 32],
    key: [u8; 32],
    nonce: u64,
}

impl CipherState {
    /// A cipher state at nonce 0, as left by the handshake (`rck = sck = ck`).
    pub(super) fn new(chaining_key: [u8; 32], key: [u8; 32]) -> Self {
        CipherState {
            chaining_key,
            key,
            nonce: 0,
        }
    }

    /// The current key.
    pub(super) fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The current chaining key.
    pub(super) fn chaining_key(&self) -> &[u8; 32] {
        &self.chaining_key
    }

    /// The nonce the next operation will use.
    pub(super) fn nonce(&self) -> u64 {
        self.nonce
    }

    /// Encrypts `buffer` in place under the current key and nonce, then advances the nonce.
    pub(super) fn encrypt(&mut self, buffer: &mut [u8]) -> [u8; MAC_LEN] {
        let tag = encrypt_with_ad(&self.key, self.nonce, &[], buffer);
        self.advance();
        tag
    }

    /// Checks `tag` and decrypts `buffer` in place, then advances the nonce. On a mismatch
    /// nothing changes; the caller must drop the connection.
    pub(super) fn decrypt(
        &mut self,
        buffer: &mut [u8],
        tag: &[u8; MAC_LEN],
    ) -> Result<(), MacMismatch> {
        decrypt_with_ad(&self.key, self.nonce, &[], buffer, tag)?;
        self.advance();
        Ok(())
    }

    /// Increments the nonce; once it reaches 1000, rotates: `ck', k' = HKDF(ck, k)`, `n = 0`.
    fn advance(&mut self) {
        self.nonce = self.nonce.saturating_add(1);
        if self.nonce >= KEY_ROTATION_INTERVAL {
            let (chaining_key, key) = hkdf(&self.chaining_key, &self.key);
            self.chaining_key = chaining_key;
            self.key = key;
            self.nonce = 0;
        }
    }
}

impl core::fmt::Debug for CipherState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Keys are secret: show only the nonce.
        f.debug_struct("CipherState")
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h32(s: &str) -> [u8; 32] {
        let v = hex(s);
        v.try_into().unwrap()
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // The HKDF inputs and outputs below are the intermediate values printed in the comments of
    // BOLT 8 Appendix A ("transport-initiator successful handshake", act one).
    #[test]
    fn hkdf_matches_bolt08_act_one_intermediate() {
        let ck = h32("2640f52eebcd9e882958951c794250eedb28002c05d7dc2ea0f195406042caf1");
        let ss = hex("1e2fb3c8fe8fb9f262f649f64d26ecf0f2c0a805a767cf02dc2d77a6ef1fdcc3");
        let (ck2, temp_k1) = hkdf(&ck, &ss);
        assert_eq!(
            ck2,
            h32("b61ec1191326fa240decc9564369dbb3ae2b34341d1e11ad64ed89f89180582f")
        );
        assert_eq!(
            temp_k1,
            h32("e68f69b7f096d7917245f5e5cf8ae1595febe4d4644333c99f9c4a1282031c9f")
        );
    }

    #[test]
    fn hkdf_with_empty_ikm_gives_the_final_keys() {
        let ck = h32("919219dbb2920afa8db80f9a51787a840bcf111ed8d588caf9ab4be716e42b01");
        let (sk, rk) = hkdf(&ck, &[]);
        assert_eq!(
            sk,
            h32("969ab31b4d288cedf6218839b27a3e2140827047f2c0f01bf5c04435d43511a9")
        );
        assert_eq!(
            rk,
            h32("bb9020b8965f4df047e07f955f3c4b88418984aadc5cdb35096b9ea8fa5c3442")
        );
    }

    #[test]
    fn nonce_is_32_zero_bits_then_little_endian_counter() {
        assert_eq!(nonce_bytes(0), [0; 12]);
        assert_eq!(nonce_bytes(1), [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            nonce_bytes(0x0102_0304_0506_0708),
            [0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]
        );
    }

    // encryptWithAD(temp_k1, 0, h, <empty>) from the act one comments.
    #[test]
    fn encrypt_with_ad_empty_plaintext_matches_act_one_tag() {
        let k = h32("e68f69b7f096d7917245f5e5cf8ae1595febe4d4644333c99f9c4a1282031c9f");
        let h = hex("9e0e7de8bb75554f21db034633de04be41a2b8a18da7a319a03c803bf02b396c");
        let tag = encrypt_with_ad(&k, 0, &h, &mut []);
        assert_eq!(tag.to_vec(), hex("0df6086551151f58b8afe6c195782c6a"));
        assert_eq!(decrypt_with_ad(&k, 0, &h, &mut [], &tag), Ok(()));
        assert_eq!(decrypt_with_ad(&k, 1, &h, &mut [], &tag), Err(MacMismatch));
    }

    // encryptWithAD(temp_k2, 1, h, s.pub) from the act three comments: nonce 1 is encoded as
    // 0x000000000100000000000000.
    #[test]
    fn encrypt_with_ad_nonce_one_matches_act_three_ciphertext() {
        let k = h32("908b166535c01a935cf1e130a5fe895ab4e6f3ef8855d87e9b7581c4ab663ddc");
        let h = hex("90578e247e98674e661013da3c5c1ca6a8c8f48c90b485c0dfa1494e23d56d72");
        let mut buf = hex("034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa");
        let tag = encrypt_with_ad(&k, 1, &h, &mut buf);
        buf.extend_from_slice(&tag);
        assert_eq!(
            buf,
            hex(
                "b9e3a702e93e3a9948c2ed6e5fd7590a6e1c3a0344cfc9d5b57357049aa22355361aa02e55a8fc28fef5bd6d71ad0c3822"
            )
        );
    }

    #[test]
    fn decrypt_with_ad_leaves_buffer_untouched_on_mismatch() {
        let k = [7u8; 32];
        let mut buf = *b"hello";
        let mut tag = encrypt_with_ad(&k, 3, b"ad", &mut buf);
        let ciphertext = buf;
        tag[0] ^= 1;
        assert_eq!(
            decrypt_with_ad(&k, 3, b"ad", &mut buf, &tag),
            Err(MacMismatch)
        );
        assert_eq!(buf, ciphertext);
    }

    #[test]
    fn cipher_state_rotates_after_1000_uses() {
        let ck = h32("919219dbb2920afa8db80f9a51787a840bcf111ed8d588caf9ab4be716e42b01");
        let sk = h32("969ab31b4d288cedf6218839b27a3e2140827047f2c0f01bf5c04435d43511a9");
        let mut state = CipherState::new(ck, sk);
        for expected_nonce in 0..999 {
            assert_eq!(state.nonce(), expected_nonce);
            state.encrypt(&mut []);
        }
        assert_eq!(state.key(), &sk);
        state.encrypt(&mut []);
        assert_eq!(state.nonce(), 0);
        // BOLT 8 message test: HKDF(ck, sk) = (cc2c..., 3fbd...).
        assert_eq!(
            state.chaining_key(),
            &h32("cc2c6e467efc8067720c2d09c139d1f77731893aad1defa14f9bf3c48d3f1d31")
        );
        assert_eq!(
            state.key(),
            &h32("3fbdc101abd1132ca3a0ae34a669d8d9ba69a587e0bb4ddd59524541cf4813d8")
        );
    }

    #[test]
    fn cipher_state_failed_decrypt_does_not_advance() {
        let mut sender = CipherState::new([1; 32], [2; 32]);
        let mut receiver = sender.clone();
        let mut buf = *b"abc";
        let tag = sender.encrypt(&mut buf);
        let mut bad = tag;
        bad[15] ^= 0x80;
        let mut copy = buf;
        assert_eq!(receiver.decrypt(&mut copy, &bad), Err(MacMismatch));
        assert_eq!(receiver.nonce(), 0);
        assert_eq!(receiver.decrypt(&mut buf, &tag), Ok(()));
        assert_eq!(&buf, b"abc");
        assert_eq!(receiver.nonce(), 1);
    }

    #[test]
    fn debug_does_not_print_keys() {
        let state = CipherState::new([0xab; 32], [0xcd; 32]);
        let shown = format!("{state:?}");
        assert!(!shown.contains("171") && !shown.contains("205"));
        assert!(shown.contains("nonce"));
    }
}
