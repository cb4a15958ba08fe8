//! The three BOLT 8 handshake acts (`Noise_XK`: `-> e, es`, `<- e, ee`, `-> s, se`) for the
//! initiator and the responder, each step consuming the previous state.

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::ecdh::SharedSecret;
use bitcoin::secp256k1::{PublicKey, SecretKey};

use super::cipher::{decrypt_with_ad, encrypt_with_ad, hkdf, MAC_LEN};
use super::framing::Transport;
use super::{Act, HandshakeError};
use crate::entropy::EntropySource;

/// Length of act one: version, compressed ephemeral key, tag.
pub const ACT_ONE_LEN: usize = 1 + 33 + MAC_LEN;
/// Length of act two: version, compressed ephemeral key, tag.
pub const ACT_TWO_LEN: usize = 1 + 33 + MAC_LEN;
/// Length of act three: version, encrypted static key and its tag, final tag.
pub const ACT_THREE_LEN: usize = 1 + 33 + MAC_LEN + MAC_LEN;
/// The only handshake version BOLT 8 defines; any other leading byte is rejected.
pub const HANDSHAKE_VERSION: u8 = 0;

const PROTOCOL_NAME: &[u8] = b"Noise_XK_secp256k1_ChaChaPoly_SHA256";
const PROLOGUE: &[u8] = b"lightning";

/// How many invalid scalars in a row [`ephemeral_key`] tolerates before calling the source
/// broken. A working source produces one with probability about 2^-128.
const EPHEMERAL_KEY_ATTEMPTS: usize = 16;

/// Draws an ephemeral secret key from `entropy`, retrying while the 32 bytes are not a valid
/// secp256k1 scalar (zero or at least the group order).
///
/// Returns `None` only if the source produced 16 invalid scalars in a row, which means it is
/// broken.
pub fn ephemeral_key<E: EntropySource + ?Sized>(entropy: &mut E) -> Option<SecretKey> {
    (0..EPHEMERAL_KEY_ATTEMPTS).find_map(|_| SecretKey::from_slice(&entropy.random_bytes()).ok())
}

/// `ECDH(k, rk)`: SHA-256 of the compressed shared point.
fn ecdh(secret: &SecretKey, point: &PublicKey) -> [u8; 32] {
    SharedSecret::new(point, secret).secret_bytes()
}

fn public_key(secret: &SecretKey) -> PublicKey {
    PublicKey::from_secret_key(&crate::secp::ctx(), secret)
}

/// The running handshake state shared by both sides: chaining key `ck` and digest `h`.
struct SymmetricState {
    ck: [u8; 32],
    h: [u8; 32],
}

impl SymmetricState {
    /// "Handshake State Initialization": `h = SHA-256(protocolName)`, `ck = h`,
    /// `h = SHA-256(h || prologue)`, `h = SHA-256(h || responder static key)`.
    fn initialize(responder_static: &PublicKey) -> Self {
        let h = sha256::Hash::hash(PROTOCOL_NAME).to_byte_array();
        let mut state = SymmetricState { ck: h, h };
        state.mix_hash(PROLOGUE);
        state.mix_hash(&responder_static.serialize());
        state
    }

    /// `h = SHA-256(h || data)`.
    fn mix_hash(&mut self, data: &[u8]) {
        let mut engine = sha256::Hash::engine();
        engine.input(&self.h);
        engine.input(data);
        self.h = sha256::Hash::from_engine(engine).to_byte_array();
    }

    /// `ck, temp_k = HKDF(ck, shared_secret)`; returns `temp_k`.
    fn mix_key(&mut self, shared_secret: &[u8; 32]) -> [u8; 32] {
        let (ck, temp_k) = hkdf(&self.ck, shared_secret);
        self.ck = ck;
        temp_k
    }

    /// `sk, rk = HKDF(ck, zero)` for the initiator (the responder names them `rk, sk`),
    /// with `rck = sck = ck`.
    fn split(&self) -> ([u8; 32], [u8; 32]) {
        hkdf(&self.ck, &[])
    }
}

/// Checks an act's exact length.
fn exact<const N: usize>(act: Act, bytes: &[u8]) -> Result<&[u8; N], HandshakeError> {
    bytes.try_into().map_err(|_| HandshakeError::WrongLength {
        act,
        expected: N,
        actual: bytes.len(),
    })
}

/// Reads act one or act two (`v || e.pub || c`): checks the version, parses the ephemeral key
/// and returns it with its serialization and the tag.
fn parse_ephemeral_act(
    act: Act,
    bytes: &[u8],
) -> Result<(PublicKey, [u8; 33], [u8; MAC_LEN]), HandshakeError> {
    let bytes: &[u8; ACT_ONE_LEN] = exact(act, bytes)?;
    let [version, rest @ ..] = *bytes;
    let (key_bytes, tag_bytes) = rest.split_at(33);
    let mut key = [0u8; 33];
    key.copy_from_slice(key_bytes);
    let mut tag = [0u8; MAC_LEN];
    tag.copy_from_slice(tag_bytes);
    // BOLT 8 parses `re` before checking `v`; both failures abort the connection.
    let remote_ephemeral =
        PublicKey::from_slice(&key).map_err(|_| HandshakeError::InvalidPublicKey {
            act,
            field: "ephemeral key",
        })?;
    if version != HANDSHAKE_VERSION {
        return Err(HandshakeError::BadVersion { act, version });
    }
    Ok((remote_ephemeral, key, tag))
}

/// Writes act one or act two: `0 || e.pub || c`.
fn ephemeral_act(ephemeral_public: &[u8; 33], tag: &[u8; MAC_LEN]) -> [u8; ACT_ONE_LEN] {
    let mut act = [0u8; ACT_ONE_LEN];
    let (version, rest) = act.split_at_mut(1);
    let (key, mac) = rest.split_at_mut(33);
    version.copy_from_slice(&[HANDSHAKE_VERSION]);
    key.copy_from_slice(ephemeral_public);
    mac.copy_from_slice(tag);
    act
}

/// The sending side of `-> e, es` / `<- e, ee`: mixes our ephemeral key and the shared
/// secret in, and returns the zero-length AEAD tag `c` (already mixed into `h`) and the
/// temporary key `temp_k` that made it.
fn write_ephemeral(
    state: &mut SymmetricState,
    ephemeral_public: &[u8; 33],
    shared_secret: &[u8; 32],
) -> ([u8; MAC_LEN], [u8; 32]) {
    state.mix_hash(ephemeral_public);
    let temp_k = state.mix_key(shared_secret);
    let c = encrypt_with_ad(&temp_k, 0, &state.h, &mut []);
    state.mix_hash(&c);
    (c, temp_k)
}

/// The initiator, after sending act one and while waiting for act two.
pub struct InitiatorHandshake {
    local_static: SecretKey,
    ephemeral: SecretKey,
    state: SymmetricState,
    act_one: [u8; ACT_ONE_LEN],
}

impl InitiatorHandshake {
    /// Starts a handshake to the node whose static public key (node id) is `remote_static`,
    /// as `local_static`, with the fresh ephemeral key `ephemeral` (BOLT 8 requires strong
    /// randomness for it: never reuse one). Computes act one: see [`Self::act_one`].
    pub fn new(local_static: &SecretKey, remote_static: &PublicKey, ephemeral: &SecretKey) -> Self {
        let mut state = SymmetricState::initialize(remote_static);
        let ephemeral_public = public_key(ephemeral).serialize();
        let es = ecdh(ephemeral, remote_static);
        let (c, _temp_k1) = write_ephemeral(&mut state, &ephemeral_public, &es);
        InitiatorHandshake {
            local_static: *local_static,
            ephemeral: *ephemeral,
            state,
            act_one: ephemeral_act(&ephemeral_public, &c),
        }
    }

    /// The 50 bytes of act one (`0 || e.pub || c`) to send to the responder.
    pub fn act_one(&self) -> [u8; ACT_ONE_LEN] {
        self.act_one
    }

    /// Consumes act two, which must be exactly [`ACT_TWO_LEN`] bytes, and returns act three
    /// (66 bytes) to send plus the established [`Transport`].
    ///
    /// On an error the connection must be closed without sending anything more.
    pub fn process_act_two(
        self,
        act_two: &[u8],
    ) -> Result<([u8; ACT_THREE_LEN], Transport), HandshakeError> {
        let InitiatorHandshake {
            local_static,
            ephemeral,
            mut state,
            ..
        } = self;

        // Act two, receiver: `<- e, ee`.
        let (remote_ephemeral, re, c) = parse_ephemeral_act(Act::Two, act_two)?;
        state.mix_hash(&re);
        let temp_k2 = state.mix_key(&ecdh(&ephemeral, &remote_ephemeral));
        decrypt_with_ad(&temp_k2, 0, &state.h, &mut [], &c).map_err(|_| {
            HandshakeError::BadMac {
                act: Act::Two,
                field: "tag",
            }
        })?;
        state.mix_hash(&c);

        // Act three, sender: `-> s, se`.
        let mut act_three = [0u8; ACT_THREE_LEN];
        let (version, rest) = act_three.split_at_mut(1);
        version.copy_from_slice(&[HANDSHAKE_VERSION]);
        let (encrypted_static, final_tag) = rest.split_at_mut(33 + MAC_LEN);
        let (static_key, static_tag) = encrypted_static.split_at_mut(33);
        static_key.copy_from_slice(&public_key(&local_static).serialize());
        static_tag.copy_from_slice(&encrypt_with_ad(&temp_k2, 1, &state.h, static_key));
        state.mix_hash(encrypted_static);
        let temp_k3 = state.mix_key(&ecdh(&local_static, &remote_ephemeral));
        final_tag.copy_from_slice(&encrypt_with_ad(&temp_k3, 0, &state.h, &mut []));

        let (sending_key, receiving_key) = state.split();
        let transport = Transport::from_keys(state.ck, sending_key, receiving_key);
        Ok((act_three, transport))
    }
}

impl core::fmt::Debug for InitiatorHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InitiatorHandshake").finish_non_exhaustive()
    }
}

/// The responder, waiting for act one.
pub struct ResponderHandshake {
    local_static: SecretKey,
    ephemeral: SecretKey,
    state: SymmetricState,
}

impl ResponderHandshake {
    /// Prepares to accept a handshake as `local_static`, with the fresh ephemeral key
    /// `ephemeral` (BOLT 8 requires strong randomness for it: never reuse one).
    pub fn new(local_static: &SecretKey, ephemeral: &SecretKey) -> Self {
        ResponderHandshake {
            local_static: *local_static,
            ephemeral: *ephemeral,
            state: SymmetricState::initialize(&public_key(local_static)),
        }
    }

    /// Consumes act one, which must be exactly [`ACT_ONE_LEN`] bytes, and returns the state
    /// waiting for act three plus act two (50 bytes) to send.
    ///
    /// On an error the connection must be closed without sending anything.
    pub fn process_act_one(
        self,
        act_one: &[u8],
    ) -> Result<(ResponderAwaitingActThree, [u8; ACT_TWO_LEN]), HandshakeError> {
        let ResponderHandshake {
            local_static,
            ephemeral,
            mut state,
        } = self;

        // Act one, receiver: `-> e, es`.
        let (remote_ephemeral, re, c) = parse_ephemeral_act(Act::One, act_one)?;
        state.mix_hash(&re);
        let temp_k1 = state.mix_key(&ecdh(&local_static, &remote_ephemeral));
        decrypt_with_ad(&temp_k1, 0, &state.h, &mut [], &c).map_err(|_| {
            HandshakeError::BadMac {
                act: Act::One,
                field: "tag",
            }
        })?;
        state.mix_hash(&c);

        // Act two, sender: `<- e, ee`.
        let ephemeral_public = public_key(&ephemeral).serialize();
        let ee = ecdh(&ephemeral, &remote_ephemeral);
        let (c, temp_k2) = write_ephemeral(&mut state, &ephemeral_public, &ee);
        let act_two = ephemeral_act(&ephemeral_public, &c);
        Ok((
            ResponderAwaitingActThree {
                ephemeral,
                state,
                temp_k2,
            },
            act_two,
        ))
    }
}

impl core::fmt::Debug for ResponderHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ResponderHandshake").finish_non_exhaustive()
    }
}

/// The responder, after sending act two and while waiting for act three.
pub struct ResponderAwaitingActThree {
    ephemeral: SecretKey,
    state: SymmetricState,
    temp_k2: [u8; 32],
}

impl ResponderAwaitingActThree {
    /// Consumes act three, which must be exactly [`ACT_THREE_LEN`] bytes, and returns the
    /// initiator's static public key (the peer's node id) plus the established [`Transport`].
    ///
    /// On an error the connection must be closed without sending anything.
    pub fn process_act_three(
        self,
        act_three: &[u8],
    ) -> Result<(PublicKey, Transport), HandshakeError> {
        let ResponderAwaitingActThree {
            ephemeral,
            mut state,
            temp_k2,
        } = self;

        let bytes: &[u8; ACT_THREE_LEN] = exact(Act::Three, act_three)?;
        let [version, rest @ ..] = *bytes;
        if version != HANDSHAKE_VERSION {
            return Err(HandshakeError::BadVersion {
                act: Act::Three,
                version,
            });
        }
        let (c, t) = rest.split_at(33 + MAC_LEN);
        let (encrypted_key, key_tag) = c.split_at(33);
        let mut static_key = [0u8; 33];
        static_key.copy_from_slice(encrypted_key);
        let mut tag = [0u8; MAC_LEN];
        tag.copy_from_slice(key_tag);
        let mut final_tag = [0u8; MAC_LEN];
        final_tag.copy_from_slice(t);

        decrypt_with_ad(&temp_k2, 1, &state.h, &mut static_key, &tag).map_err(|_| {
            HandshakeError::BadMac {
                act: Act::Three,
                field: "encrypted static key",
            }
        })?;
        let remote_static =
            PublicKey::from_slice(&static_key).map_err(|_| HandshakeError::InvalidPublicKey {
                act: Act::Three,
                field: "static key",
            })?;
        state.mix_hash(c);
        let temp_k3 = state.mix_key(&ecdh(&ephemeral, &remote_static));
        decrypt_with_ad(&temp_k3, 0, &state.h, &mut [], &final_tag).map_err(|_| {
            HandshakeError::BadMac {
                act: Act::Three,
                field: "final tag",
            }
        })?;

        let (receiving_key, sending_key) = state.split();
        let transport = Transport::from_keys(state.ck, sending_key, receiving_key);
        Ok((remote_static, transport))
    }
}

impl core::fmt::Debug for ResponderAwaitingActThree {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ResponderAwaitingActThree")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn h32(s: &str) -> [u8; 32] {
        hex(s).try_into().unwrap()
    }

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_slice(&[byte; 32]).unwrap()
    }

    // The BOLT 8 Appendix A keys.
    fn initiator() -> InitiatorHandshake {
        let responder_static = public_key(&key(0x21));
        InitiatorHandshake::new(&key(0x11), &responder_static, &key(0x12))
    }

    fn responder() -> ResponderHandshake {
        ResponderHandshake::new(&key(0x21), &key(0x22))
    }

    const ACT_ONE: &str = "00036360e856310ce5d294e8be33fc807077dc56ac80d95d9cd4ddbd21325eff73f70df6086551151f58b8afe6c195782c6a";
    const ACT_TWO: &str = "0002466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f276e2470b93aac583c9ef6eafca3f730ae";
    const ACT_THREE: &str = "00b9e3a702e93e3a9948c2ed6e5fd7590a6e1c3a0344cfc9d5b57357049aa22355361aa02e55a8fc28fef5bd6d71ad0c38228dc68b1c466263b47fdf31e560e139ba";

    #[test]
    fn initial_chaining_key_is_sha256_of_protocol_name() {
        let state = SymmetricState::initialize(&public_key(&key(0x21)));
        // The salt of the first HKDF in the BOLT 8 act one comments.
        assert_eq!(
            state.ck,
            h32("2640f52eebcd9e882958951c794250eedb28002c05d7dc2ea0f195406042caf1")
        );
    }

    // Checks the intermediate `h` and `ck` printed in the BOLT 8 Appendix A comments.
    #[test]
    fn initiator_intermediate_state_matches_bolt08_comments() {
        let init = initiator();
        assert_eq!(init.act_one().to_vec(), hex(ACT_ONE));
        assert_eq!(
            init.state.h,
            h32("9d1ffbb639e7e20021d9259491dc7b160aab270fb1339ef135053f6f2cebe9ce")
        );
        assert_eq!(
            init.state.ck,
            h32("b61ec1191326fa240decc9564369dbb3ae2b34341d1e11ad64ed89f89180582f")
        );
    }

    #[test]
    fn responder_intermediate_state_matches_bolt08_comments() {
        let (awaiting, act_two) = responder().process_act_one(&hex(ACT_ONE)).unwrap();
        assert_eq!(act_two.to_vec(), hex(ACT_TWO));
        assert_eq!(
            awaiting.state.h,
            h32("90578e247e98674e661013da3c5c1ca6a8c8f48c90b485c0dfa1494e23d56d72")
        );
        assert_eq!(
            awaiting.state.ck,
            h32("e89d31033a1b6bf68c07d22e08ea4d7884646c4b60a9528598ccb4ee2c8f56ba")
        );
        assert_eq!(
            awaiting.temp_k2,
            h32("908b166535c01a935cf1e130a5fe895ab4e6f3ef8855d87e9b7581c4ab663ddc")
        );
        let (remote, transport) = awaiting.process_act_three(&hex(ACT_THREE)).unwrap();
        assert_eq!(remote, public_key(&key(0x11)));
        assert_eq!(
            transport.encryptor().chaining_key(),
            &h32("919219dbb2920afa8db80f9a51787a840bcf111ed8d588caf9ab4be716e42b01")
        );
    }

    #[test]
    fn truncated_or_extended_act_one_is_wrong_length() {
        let act = hex(ACT_ONE);
        for len in (0..ACT_ONE_LEN).chain([ACT_ONE_LEN + 1]) {
            let mut bytes = act.clone();
            bytes.resize(len, 0);
            assert_eq!(
                responder().process_act_one(&bytes).unwrap_err(),
                HandshakeError::WrongLength {
                    act: Act::One,
                    expected: 50,
                    actual: len
                }
            );
        }
    }

    #[test]
    fn truncated_or_extended_act_two_is_wrong_length() {
        let act = hex(ACT_TWO);
        for len in (0..ACT_TWO_LEN).chain([ACT_TWO_LEN + 1, 1000]) {
            let mut bytes = act.clone();
            bytes.resize(len, 0);
            assert_eq!(
                initiator().process_act_two(&bytes).unwrap_err(),
                HandshakeError::WrongLength {
                    act: Act::Two,
                    expected: 50,
                    actual: len
                }
            );
        }
    }

    #[test]
    fn truncated_or_extended_act_three_is_wrong_length() {
        let act = hex(ACT_THREE);
        for len in (0..ACT_THREE_LEN).chain([ACT_THREE_LEN + 1]) {
            let mut bytes = act.clone();
            bytes.resize(len, 0);
            let (awaiting, _) = responder().process_act_one(&hex(ACT_ONE)).unwrap();
            assert_eq!(
                awaiting.process_act_three(&bytes).unwrap_err(),
                HandshakeError::WrongLength {
                    act: Act::Three,
                    expected: 66,
                    actual: len
                }
            );
        }
    }

    #[test]
    fn act_one_with_bad_key_and_bad_version_reports_the_key_first() {
        // BOLT 8 receiver actions: parse `re` (step 2) before checking `v` (step 3).
        let mut act = hex(ACT_ONE);
        act[0] = 7;
        act[1] = 0x05;
        assert_eq!(
            responder().process_act_one(&act).unwrap_err(),
            HandshakeError::InvalidPublicKey {
                act: Act::One,
                field: "ephemeral key"
            }
        );
    }

    #[test]
    fn act_one_for_another_responder_is_bad_mac() {
        // An initiator that believes the responder's key is someone else's.
        let wrong = InitiatorHandshake::new(&key(0x11), &public_key(&key(0x31)), &key(0x12));
        assert_eq!(
            responder().process_act_one(&wrong.act_one()).unwrap_err(),
            HandshakeError::BadMac {
                act: Act::One,
                field: "tag"
            }
        );
    }

    #[test]
    fn every_flipped_bit_of_act_three_is_rejected() {
        let act = hex(ACT_THREE);
        for bit in 0..(ACT_THREE_LEN * 8) {
            let mut bytes = act.clone();
            bytes[bit / 8] ^= 1 << (bit % 8);
            let (awaiting, _) = responder().process_act_one(&hex(ACT_ONE)).unwrap();
            assert!(awaiting.process_act_three(&bytes).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn ephemeral_key_skips_invalid_scalars_and_gives_up_on_a_broken_source() {
        struct Scripted(Vec<[u8; 32]>);
        impl EntropySource for Scripted {
            fn random_bytes(&mut self) -> [u8; 32] {
                self.0.pop().unwrap_or([0; 32])
            }
        }
        // Popped from the back: first 0xff..ff (above the group order, invalid), then zero
        // (invalid), then 0x12..12.
        let mut source = Scripted(vec![[0x12; 32], [0; 32], [0xff; 32]]);
        assert_eq!(ephemeral_key(&mut source), Some(key(0x12)));
        assert_eq!(ephemeral_key(&mut Scripted(Vec::new())), None);
        let mut seeded = SeededEntropy::new([1; 32]);
        let first = ephemeral_key(&mut seeded).unwrap();
        assert_ne!(Some(first), ephemeral_key(&mut seeded));
    }

    #[test]
    fn debug_output_holds_no_key_material() {
        let shown = format!("{:?} {:?}", initiator(), responder());
        assert_eq!(shown, "InitiatorHandshake { .. } ResponderHandshake { .. }");
    }
}
