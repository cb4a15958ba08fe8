//! The 1366-byte `onion_packet`: version, ephemeral public key, 1300 bytes of `hop_payloads`
//! and an HMAC.
//!
//! Decoding only checks the length: the version and the public key are checked when the packet
//! is processed ([`super::process`]), because each has its own failure code to send back.

use core::fmt;

use bitcoin::hashes::{sha256, Hash};

use crate::ser::{DecodeError, Reader};

/// The length of a serialized onion packet.
pub const ONION_PACKET_LEN: usize = 1 + 33 + HOP_PAYLOADS_LEN + HMAC_LEN;
/// The length of the `hop_payloads` field.
pub const HOP_PAYLOADS_LEN: usize = 1300;
/// The length of an HMAC-SHA256.
pub const HMAC_LEN: usize = 32;
/// The only onion version this specification defines.
pub const ONION_VERSION: u8 = 0;

/// An `onion_packet` as it travels in `update_add_htlc`.
#[derive(Clone, PartialEq, Eq)]
pub struct OnionPacket {
    /// The version byte (0 for this specification).
    pub version: u8,
    /// The ephemeral public key, as received: it may not be a valid point.
    pub public_key: [u8; 33],
    /// The obfuscated per-hop payloads and filler.
    pub hop_payloads: [u8; HOP_PAYLOADS_LEN],
    /// The HMAC over `hop_payloads` and the associated data.
    pub hmac: [u8; HMAC_LEN],
}

impl fmt::Debug for OnionPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        f.debug_struct("OnionPacket")
            .field("version", &self.version)
            .field("public_key", &hex(&self.public_key))
            .field("hmac", &hex(&self.hmac))
            .finish_non_exhaustive()
    }
}

impl OnionPacket {
    /// Reads a packet from `reader` (e.g. inside `update_add_htlc`).
    pub fn read(reader: &mut Reader<'_>) -> Result<OnionPacket, DecodeError> {
        let version = reader.read_u8("onion version")?;
        let public_key = reader.read_array("onion public_key")?;
        let hop_payloads = reader.read_array("onion hop_payloads")?;
        let hmac = reader.read_array("onion hmac")?;
        Ok(OnionPacket {
            version,
            public_key,
            hop_payloads,
            hmac,
        })
    }

    /// Decodes a packet that must fill `bytes` exactly ([`ONION_PACKET_LEN`] bytes).
    pub fn decode(bytes: &[u8]) -> Result<OnionPacket, DecodeError> {
        let mut reader = Reader::new(bytes);
        let packet = OnionPacket::read(&mut reader)?;
        reader.finish("onion_packet")?;
        Ok(packet)
    }

    /// Appends the serialized packet.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.reserve(ONION_PACKET_LEN);
        out.push(self.version);
        out.extend_from_slice(&self.public_key);
        out.extend_from_slice(&self.hop_payloads);
        out.extend_from_slice(&self.hmac);
    }

    /// The serialized packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ONION_PACKET_LEN);
        self.write(&mut out);
        out
    }

    /// SHA256 of the serialized packet: the `sha256_of_onion` of the BADONION failures.
    pub fn sha256(&self) -> [u8; 32] {
        sha256::Hash::hash(&self.encode()).to_byte_array()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn wrong_lengths_are_typed_errors() {
        assert_eq!(ONION_PACKET_LEN, 1366);
        assert_eq!(
            OnionPacket::decode(&[0u8; 1365]),
            Err(DecodeError::ShortRead {
                field: "onion hmac",
                needed: 32,
                remaining: 31
            })
        );
        assert_eq!(
            OnionPacket::decode(&[0u8; 1367]),
            Err(DecodeError::TrailingBytes {
                field: "onion_packet",
                extra: 1
            })
        );
        assert_eq!(
            OnionPacket::decode(&[]).unwrap_err().to_string(),
            "onion version: needed 1 bytes but only 0 remain"
        );
    }

    #[test]
    fn invalid_version_and_key_still_decode() {
        let mut bytes = vec![0u8; ONION_PACKET_LEN];
        bytes[0] = 1;
        let packet = OnionPacket::decode(&bytes).unwrap();
        assert_eq!(packet.version, 1);
        assert_eq!(packet.public_key, [0; 33]);
    }

    proptest! {
        #[test]
        fn packets_round_trip(bytes in proptest::collection::vec(any::<u8>(), ONION_PACKET_LEN)) {
            let packet = OnionPacket::decode(&bytes).unwrap();
            prop_assert_eq!(packet.encode(), bytes.clone());
            prop_assert_eq!(packet.sha256(), sha256::Hash::hash(&bytes).to_byte_array());
        }
    }
}
