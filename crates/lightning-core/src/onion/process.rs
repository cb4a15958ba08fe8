//! Per-hop processing of an onion (BOLT 4 "Onion Decryption"): check the version, the
//! ephemeral key and the HMAC, peel one layer, read this hop's payload and either hand back the
//! packet for the next hop or say that this hop is the final one.
//!
//! Replay protection ("if `hmac` has previously been received") needs state and is the
//! caller's job; so is the route-blinding tweak of the node key when `update_add_htlc` carries
//! a `path_key`.

use core::fmt;

use bitcoin::hashes::cmp::fixed_time_eq;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey, Verification};

use super::failure::{FailureCode, FailureMessage};
use super::keys::{
    apply_stream, blind_public_key, blinding_factor, hmac_sha256, HopSharedSecret,
    KeyBlindingError, KeyType,
};
use super::packet::{OnionPacket, HMAC_LEN, HOP_PAYLOADS_LEN, ONION_VERSION};
use super::payload::{PayloadError, PaymentPayload};
use crate::ser::{BigSize, DecodeError, Reader};
use crate::types::PaymentHash;

/// The result of peeling one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessedOnion {
    /// The next HMAC is not all zero: forward `next_packet` to the next hop.
    Forward {
        /// The secret shared with the origin (keep it to return a failure).
        shared_secret: HopSharedSecret,
        /// This hop's payload (the TLV stream, without its length prefix).
        payload: Vec<u8>,
        /// The packet for the next hop.
        next_packet: Box<OnionPacket>,
    },
    /// The next HMAC is all zero: this hop is the final destination.
    Final {
        /// The secret shared with the origin (keep it to return a failure).
        shared_secret: HopSharedSecret,
        /// This hop's payload (the TLV stream, without its length prefix).
        payload: Vec<u8>,
    },
}

impl ProcessedOnion {
    /// The secret shared with the origin.
    pub fn shared_secret(&self) -> &HopSharedSecret {
        match self {
            ProcessedOnion::Forward { shared_secret, .. }
            | ProcessedOnion::Final { shared_secret, .. } => shared_secret,
        }
    }

    /// This hop's payload.
    pub fn payload(&self) -> &[u8] {
        match self {
            ProcessedOnion::Forward { payload, .. } | ProcessedOnion::Final { payload, .. } => {
                payload
            }
        }
    }
}

/// Why an onion was rejected, and so which failure to send back.
///
/// The first three are BADONION failures: the hop could not authenticate the onion, shares no
/// secret with the origin, and answers with `update_fail_malformed_htlc` carrying
/// [`OnionProcessError::failure_code`] and the onion's SHA256. The others come after the HMAC
/// was verified: the hop answers with an `update_fail_htlc` encrypted with
/// [`OnionProcessError::shared_secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnionProcessError {
    /// The version byte is not 0: `invalid_onion_version`.
    UnknownVersion {
        /// The version received.
        version: u8,
        /// SHA256 of the onion.
        sha256_of_onion: [u8; 32],
    },
    /// The ephemeral key is not a valid point: `invalid_onion_key`.
    InvalidEphemeralKey {
        /// SHA256 of the onion.
        sha256_of_onion: [u8; 32],
    },
    /// The HMAC does not match: `invalid_onion_hmac`.
    InvalidHmac {
        /// SHA256 of the onion.
        sha256_of_onion: [u8; 32],
    },
    /// The payload length is not a minimal BigSize: `invalid_onion_payload`.
    MalformedPayloadLength {
        /// The secret shared with the origin.
        shared_secret: HopSharedSecret,
        /// The BigSize error.
        error: DecodeError,
    },
    /// The payload length is 0 (the retired legacy format) or 1 (reserved):
    /// `invalid_onion_payload`.
    ReservedPayloadLength {
        /// The secret shared with the origin.
        shared_secret: HopSharedSecret,
        /// The length read.
        length: u64,
    },
    /// The payload and the next HMAC do not fit in `hop_payloads`: `invalid_onion_payload`.
    PayloadBeyondPacket {
        /// The secret shared with the origin.
        shared_secret: HopSharedSecret,
        /// The payload length read.
        length: u64,
        /// The longest payload that fits after this length prefix.
        limit: u64,
    },
    /// The payload's TLV stream breaks the rules for this hop: `invalid_onion_payload`.
    InvalidPayload {
        /// The secret shared with the origin.
        shared_secret: HopSharedSecret,
        /// What was wrong.
        error: PayloadError,
    },
    /// The ephemeral key for the next hop could not be derived (negligible probability):
    /// `invalid_onion_payload`, since the sender's onion cannot be forwarded.
    UnblindableNextKey {
        /// The secret shared with the origin.
        shared_secret: HopSharedSecret,
        /// The blinding error.
        error: KeyBlindingError,
    },
}

impl fmt::Display for OnionProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OnionProcessError::UnknownVersion { version, .. } => write!(
                f,
                "onion version {version} is not the supported version {ONION_VERSION}"
            ),
            OnionProcessError::InvalidEphemeralKey { .. } => {
                f.write_str("onion public_key is not a valid secp256k1 point")
            }
            OnionProcessError::InvalidHmac { .. } => {
                f.write_str("onion hmac does not match hop_payloads and associated data")
            }
            OnionProcessError::MalformedPayloadLength { error, .. } => {
                write!(f, "hop payload length: {error}")
            }
            OnionProcessError::ReservedPayloadLength { length, .. } => write!(
                f,
                "hop payload length {length} is reserved: the minimum is 2"
            ),
            OnionProcessError::PayloadBeyondPacket { length, limit, .. } => write!(
                f,
                "hop payload length {length} exceeds the {limit} bytes left in hop_payloads"
            ),
            OnionProcessError::InvalidPayload { error, .. } => write!(f, "{error}"),
            OnionProcessError::UnblindableNextKey { error, .. } => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for OnionProcessError {}

impl OnionProcessError {
    /// The failure message to send back (for BADONION ones: the code and `sha256_of_onion` of
    /// `update_fail_malformed_htlc`).
    pub fn failure_message(&self) -> FailureMessage {
        match self {
            OnionProcessError::UnknownVersion {
                sha256_of_onion, ..
            } => FailureMessage::InvalidOnionVersion {
                sha256_of_onion: *sha256_of_onion,
            },
            OnionProcessError::InvalidEphemeralKey { sha256_of_onion } => {
                FailureMessage::InvalidOnionKey {
                    sha256_of_onion: *sha256_of_onion,
                }
            }
            OnionProcessError::InvalidHmac { sha256_of_onion } => {
                FailureMessage::InvalidOnionHmac {
                    sha256_of_onion: *sha256_of_onion,
                }
            }
            OnionProcessError::InvalidPayload { error, .. } => error.failure_message(),
            OnionProcessError::MalformedPayloadLength { .. }
            | OnionProcessError::ReservedPayloadLength { .. }
            | OnionProcessError::PayloadBeyondPacket { .. }
            | OnionProcessError::UnblindableNextKey { .. } => {
                FailureMessage::InvalidOnionPayload { location: None }
            }
        }
    }

    /// The BOLT 4 failure code to send back.
    pub fn failure_code(&self) -> FailureCode {
        self.failure_message().code()
    }

    /// The secret shared with the origin, once the HMAC was verified (`None` for the
    /// BADONION failures).
    pub fn shared_secret(&self) -> Option<&HopSharedSecret> {
        match self {
            OnionProcessError::UnknownVersion { .. }
            | OnionProcessError::InvalidEphemeralKey { .. }
            | OnionProcessError::InvalidHmac { .. } => None,
            OnionProcessError::MalformedPayloadLength { shared_secret, .. }
            | OnionProcessError::ReservedPayloadLength { shared_secret, .. }
            | OnionProcessError::PayloadBeyondPacket { shared_secret, .. }
            | OnionProcessError::InvalidPayload { shared_secret, .. }
            | OnionProcessError::UnblindableNextKey { shared_secret, .. } => Some(shared_secret),
        }
    }
}

/// Peels one layer of `packet` with this node's secret, checking the HMAC over the packet and
/// `associated_data` (the payment hash for a payment onion).
pub fn process_onion<C: Verification>(
    secp: &Secp256k1<C>,
    node_secret: &SecretKey,
    packet: &OnionPacket,
    associated_data: &[u8],
) -> Result<ProcessedOnion, OnionProcessError> {
    if packet.version != ONION_VERSION {
        return Err(OnionProcessError::UnknownVersion {
            version: packet.version,
            sha256_of_onion: packet.sha256(),
        });
    }
    let ephemeral_key = PublicKey::from_slice(&packet.public_key).map_err(|_| {
        OnionProcessError::InvalidEphemeralKey {
            sha256_of_onion: packet.sha256(),
        }
    })?;
    let shared_secret = HopSharedSecret::compute(&ephemeral_key, node_secret);
    let mu = shared_secret.derive_key(KeyType::Mu);
    let expected = hmac_sha256(&mu, &[&packet.hop_payloads, associated_data]);
    if !fixed_time_eq(&expected, &packet.hmac) {
        return Err(OnionProcessError::InvalidHmac {
            sha256_of_onion: packet.sha256(),
        });
    }

    // hop_payloads followed by as many zero bytes, XORed with twice as much stream.
    let mut unwrapped = [0u8; 2 * HOP_PAYLOADS_LEN];
    for (slot, byte) in unwrapped.iter_mut().zip(&packet.hop_payloads) {
        *slot = *byte;
    }
    apply_stream(&shared_secret.derive_key(KeyType::Rho), &mut unwrapped);

    let mut reader = Reader::new(&unwrapped);
    let length = reader.read_bigsize("hop payload length").map_err(|error| {
        OnionProcessError::MalformedPayloadLength {
            shared_secret,
            error,
        }
    })?;
    if length < 2 {
        return Err(OnionProcessError::ReservedPayloadLength {
            shared_secret,
            length,
        });
    }
    let limit = (HOP_PAYLOADS_LEN - BigSize::encoded_len(length) - HMAC_LEN) as u64;
    if length > limit {
        return Err(OnionProcessError::PayloadBeyondPacket {
            shared_secret,
            length,
            limit,
        });
    }
    // Both reads fit: prefix + length + HMAC <= 1300 and the buffer holds 2600 bytes.
    let beyond = |_| OnionProcessError::PayloadBeyondPacket {
        shared_secret,
        length,
        limit,
    };
    let payload = reader
        .read_bytes(length, "hop payload")
        .map_err(beyond)?
        .to_vec();
    let next_hmac: [u8; HMAC_LEN] = reader.read_array("next hmac").map_err(beyond)?;
    let next_hop_payloads: [u8; HOP_PAYLOADS_LEN] =
        reader.read_array("next hop_payloads").map_err(beyond)?;

    if next_hmac == [0u8; HMAC_LEN] {
        return Ok(ProcessedOnion::Final {
            shared_secret,
            payload,
        });
    }
    let factor = blinding_factor(&ephemeral_key, &shared_secret);
    let next_key = blind_public_key(secp, &ephemeral_key, &factor, 0).map_err(|error| {
        OnionProcessError::UnblindableNextKey {
            shared_secret,
            error,
        }
    })?;
    Ok(ProcessedOnion::Forward {
        shared_secret,
        payload,
        next_packet: Box::new(OnionPacket {
            version: ONION_VERSION,
            public_key: next_key.serialize(),
            hop_payloads: next_hop_payloads,
            hmac: next_hmac,
        }),
    })
}

/// A payment onion processed at one hop, its payload checked against the rules for its
/// position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentHop {
    /// Forward the HTLC; `payload` is [`PaymentPayload::Forward`] or
    /// [`PaymentPayload::BlindedForward`].
    Forward {
        /// The secret shared with the origin.
        shared_secret: HopSharedSecret,
        /// This hop's instructions.
        payload: PaymentPayload,
        /// The packet for the next hop.
        next_packet: Box<OnionPacket>,
    },
    /// This node is the recipient; `payload` is [`PaymentPayload::Receive`] or
    /// [`PaymentPayload::BlindedReceive`].
    Receive {
        /// The secret shared with the origin.
        shared_secret: HopSharedSecret,
        /// The recipient's instructions.
        payload: PaymentPayload,
    },
}

/// Processes the onion of an `update_add_htlc` that carries no `path_key`: the associated data
/// is the payment hash, and the payload must be a valid forward or final payload.
pub fn process_payment_onion<C: Verification>(
    secp: &Secp256k1<C>,
    node_secret: &SecretKey,
    packet: &OnionPacket,
    payment_hash: &PaymentHash,
) -> Result<PaymentHop, OnionProcessError> {
    let processed = process_onion(secp, node_secret, packet, &payment_hash.0)?;
    let is_final = matches!(processed, ProcessedOnion::Final { .. });
    let payload =
        PaymentPayload::decode(processed.payload(), is_final, false).map_err(|error| {
            OnionProcessError::InvalidPayload {
                shared_secret: *processed.shared_secret(),
                error,
            }
        })?;
    Ok(match processed {
        ProcessedOnion::Forward {
            shared_secret,
            next_packet,
            ..
        } => PaymentHop::Forward {
            shared_secret,
            payload,
            next_packet,
        },
        ProcessedOnion::Final { shared_secret, .. } => PaymentHop::Receive {
            shared_secret,
            payload,
        },
    })
}

#[cfg(test)]
mod tests {
    use bitcoin::hashes::{sha256, Hash};

    use super::*;
    use crate::onion::construct::{construct_onion, OnionHop};
    use crate::onion::keys::stream;
    use crate::onion::payload::{HopPayload, PayloadError};
    use crate::ser::write_bigsize;
    use crate::types::ShortChannelId;

    const ASSOC: [u8; 32] = [0x42; 32];

    fn keys() -> (
        Secp256k1<bitcoin::secp256k1::All>,
        SecretKey,
        PublicKey,
        SecretKey,
    ) {
        let secp = crate::secp::ctx();
        let node = SecretKey::from_slice(&[0x41; 32]).unwrap();
        let node_id = PublicKey::from_secret_key(&secp, &node);
        let session = SecretKey::from_slice(&[0x17; 32]).unwrap();
        (secp, node, node_id, session)
    }

    /// An onion whose decrypted `hop_payloads` is `plain`, with a valid HMAC: only its sender
    /// can make one, and the hop must still reject what it says.
    fn crafted(plain: &[u8; HOP_PAYLOADS_LEN]) -> (OnionPacket, HopSharedSecret) {
        let (secp, _, node_id, session) = keys();
        let ss = HopSharedSecret::compute(&node_id, &session);
        let mut hop_payloads = *plain;
        apply_stream(&ss.derive_key(KeyType::Rho), &mut hop_payloads);
        let hmac = hmac_sha256(&ss.derive_key(KeyType::Mu), &[&hop_payloads, &ASSOC]);
        let public_key = PublicKey::from_secret_key(&secp, &session).serialize();
        let packet = OnionPacket {
            version: 0,
            public_key,
            hop_payloads,
            hmac,
        };
        (packet, ss)
    }

    fn plain_with(prefix: &[u8]) -> [u8; HOP_PAYLOADS_LEN] {
        let mut plain = [0u8; HOP_PAYLOADS_LEN];
        for (slot, byte) in plain.iter_mut().zip(prefix) {
            *slot = *byte;
        }
        plain
    }

    fn valid_packet() -> OnionPacket {
        let (secp, _, node_id, session) = keys();
        let hop = OnionHop {
            node_id,
            payload: HopPayload::receive(1000, 144, None).encode(),
        };
        construct_onion(&secp, &session, &[hop], &ASSOC)
            .unwrap()
            .packet
    }

    #[test]
    fn bad_version_is_invalid_onion_version() {
        let (secp, node, _, _) = keys();
        let mut packet = valid_packet();
        packet.version = 1;
        let err = process_onion(&secp, &node, &packet, &ASSOC).unwrap_err();
        let sha = sha256::Hash::hash(&packet.encode()).to_byte_array();
        assert_eq!(
            err,
            OnionProcessError::UnknownVersion {
                version: 1,
                sha256_of_onion: sha
            }
        );
        assert_eq!(
            err.to_string(),
            "onion version 1 is not the supported version 0"
        );
        assert_eq!(err.failure_code(), FailureCode::INVALID_ONION_VERSION);
        assert_eq!(
            err.failure_message(),
            FailureMessage::InvalidOnionVersion {
                sha256_of_onion: sha
            }
        );
        assert_eq!(err.shared_secret(), None);
    }

    #[test]
    fn invalid_ephemeral_key_is_invalid_onion_key() {
        let (secp, node, _, _) = keys();
        let mut packet = valid_packet();
        packet.public_key[0] = 0x04;
        let err = process_onion(&secp, &node, &packet, &ASSOC).unwrap_err();
        assert_eq!(
            err,
            OnionProcessError::InvalidEphemeralKey {
                sha256_of_onion: packet.sha256()
            }
        );
        assert_eq!(
            err.to_string(),
            "onion public_key is not a valid secp256k1 point"
        );
        assert_eq!(err.failure_code(), FailureCode::INVALID_ONION_KEY);
        assert_eq!(err.failure_code().0, 0xc006);
    }

    #[test]
    fn wrong_hmac_is_invalid_onion_hmac() {
        let (secp, node, _, _) = keys();
        let mut packet = valid_packet();
        packet.hmac[31] ^= 1;
        let err = process_onion(&secp, &node, &packet, &ASSOC).unwrap_err();
        assert_eq!(
            err,
            OnionProcessError::InvalidHmac {
                sha256_of_onion: packet.sha256()
            }
        );
        assert_eq!(
            err.to_string(),
            "onion hmac does not match hop_payloads and associated data"
        );
        assert_eq!(err.failure_code(), FailureCode::INVALID_ONION_HMAC);

        // A flipped payload bit or different associated data also break the HMAC.
        let mut packet = valid_packet();
        packet.hop_payloads[100] ^= 1;
        assert!(matches!(
            process_onion(&secp, &node, &packet, &ASSOC),
            Err(OnionProcessError::InvalidHmac { .. })
        ));
        assert!(matches!(
            process_onion(&secp, &node, &valid_packet(), &[0x43; 32]),
            Err(OnionProcessError::InvalidHmac { .. })
        ));
        // So does the wrong node key.
        let other = SecretKey::from_slice(&[0x99; 32]).unwrap();
        assert!(matches!(
            process_onion(&secp, &other, &valid_packet(), &ASSOC),
            Err(OnionProcessError::InvalidHmac { .. })
        ));
    }

    #[test]
    fn payload_length_beyond_packet_is_invalid_onion_payload() {
        let (secp, node, _, _) = keys();
        // 1266 + 1-byte... as a 3-byte BigSize: 3 + 1266 + 32 = 1301 > 1300.
        let mut prefix = Vec::new();
        write_bigsize(&mut prefix, 1266);
        let (packet, ss) = crafted(&plain_with(&prefix));
        let err = process_onion(&secp, &node, &packet, &ASSOC).unwrap_err();
        assert_eq!(
            err,
            OnionProcessError::PayloadBeyondPacket {
                shared_secret: ss,
                length: 1266,
                limit: 1265
            }
        );
        assert_eq!(
            err.to_string(),
            "hop payload length 1266 exceeds the 1265 bytes left in hop_payloads"
        );
        assert_eq!(err.failure_code(), FailureCode::INVALID_ONION_PAYLOAD);
        assert_eq!(err.shared_secret(), Some(&ss));

        let mut prefix = Vec::new();
        write_bigsize(&mut prefix, u64::MAX);
        let (packet, _) = crafted(&plain_with(&prefix));
        assert!(matches!(
            process_onion(&secp, &node, &packet, &ASSOC),
            Err(OnionProcessError::PayloadBeyondPacket {
                length: u64::MAX,
                limit: 1259,
                ..
            })
        ));

        // The largest payload that fits is accepted.
        let mut prefix = Vec::new();
        write_bigsize(&mut prefix, 1265);
        let (packet, _) = crafted(&plain_with(&prefix));
        let processed = process_onion(&secp, &node, &packet, &ASSOC).unwrap();
        assert!(matches!(processed, ProcessedOnion::Final { .. }));
        assert_eq!(processed.payload().len(), 1265);
    }

    #[test]
    fn reserved_and_malformed_lengths_are_invalid_onion_payload() {
        let (secp, node, _, _) = keys();
        for length in [0u8, 1] {
            let (packet, ss) = crafted(&plain_with(&[length]));
            let err = process_onion(&secp, &node, &packet, &ASSOC).unwrap_err();
            assert_eq!(
                err,
                OnionProcessError::ReservedPayloadLength {
                    shared_secret: ss,
                    length: u64::from(length)
                }
            );
            assert_eq!(err.failure_code(), FailureCode::INVALID_ONION_PAYLOAD);
        }
        let (packet, _) = crafted(&plain_with(&[0xfd, 0x00, 0x10]));
        let err = process_onion(&secp, &node, &packet, &ASSOC).unwrap_err();
        assert!(matches!(
            err,
            OnionProcessError::MalformedPayloadLength {
                error: DecodeError::NonCanonicalBigSize { value: 16 },
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "hop payload length: bigsize 16 is not minimally encoded"
        );
    }

    #[test]
    fn invalid_tlv_payload_names_the_record() {
        let (secp, node, _, _) = keys();
        // A final payload carrying a short_channel_id.
        let payload = HopPayload::forward(ShortChannelId(7), 1000, 144).encode();
        let mut plain = vec![payload.len() as u8];
        plain.extend_from_slice(&payload);
        let (packet, ss) = crafted(&plain_with(&plain));
        let err = process_payment_onion(&secp, &node, &packet, &PaymentHash(ASSOC)).unwrap_err();
        assert_eq!(
            err,
            OnionProcessError::InvalidPayload {
                shared_secret: ss,
                error: PayloadError::UnexpectedRecord {
                    tlv_type: 6,
                    offset: 7,
                    hop: "final"
                }
            }
        );
        assert_eq!(err.failure_code(), FailureCode::INVALID_ONION_PAYLOAD);
    }

    #[test]
    fn final_hop_sees_all_zero_next_hmac() {
        let (secp, node, _, _) = keys();
        let hop = process_payment_onion(&secp, &node, &valid_packet(), &PaymentHash(ASSOC));
        assert!(matches!(
            hop,
            Ok(PaymentHop::Receive {
                payload: PaymentPayload::Receive(_),
                ..
            })
        ));
    }

    #[test]
    fn random_bytes_never_panic() {
        let (secp, node, _, _) = keys();
        for seed in 0u8..32 {
            let bytes = stream(&[seed; 32], 1366);
            let Ok(packet) = OnionPacket::decode(&bytes) else {
                continue;
            };
            assert!(process_onion(&secp, &node, &packet, &ASSOC).is_err());
        }
    }
}
