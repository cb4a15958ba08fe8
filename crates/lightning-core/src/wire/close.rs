//! BOLT 2 channel close: `shutdown` and the legacy `closing_signed` negotiation.

use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::ScriptBuf;

use super::codec::{read_channel_id, read_extension, tlv_array, write_signature};
use super::WireMessage;
use crate::ser::{write_u16_prefixed, DecodeError, Reader};
use crate::tlv::TlvWriter;
use crate::types::ChannelId;

/// `shutdown` (type 38): the sender wants to close and says where its funds go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shutdown {
    /// The channel.
    pub channel_id: ChannelId,
    /// The sender's closing output script (its form is checked by the channel).
    pub scriptpubkey: ScriptBuf,
}

impl WireMessage for Shutdown {
    const TYPE: u16 = 38;

    /// # Panics
    /// If `scriptpubkey` is longer than 65535 bytes (a caller bug).
    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.channel_id.0);
        write_u16_prefixed(out, self.scriptpubkey.as_bytes());
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let channel_id = read_channel_id(&mut r, "shutdown.channel_id")?;
        let scriptpubkey =
            ScriptBuf::from_bytes(r.read_u16_prefixed("shutdown.scriptpubkey")?.to_vec());
        read_extension(&mut r, &[])?;
        Ok(Shutdown {
            channel_id,
            scriptpubkey,
        })
    }
}

/// The `fee_range` TLV of `closing_signed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosingFeeRange {
    /// The lowest fee the sender accepts.
    pub min_fee_satoshis: u64,
    /// The highest fee the sender accepts.
    pub max_fee_satoshis: u64,
}

const CLOSING_SIGNED_FEE_RANGE: u64 = 1;

/// `closing_signed` (type 39): a fee proposal for the mutual close and the sender's signature
/// of the closing transaction at that fee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosingSigned {
    /// The channel.
    pub channel_id: ChannelId,
    /// The proposed fee.
    pub fee_satoshis: u64,
    /// Signature of the closing transaction paying `fee_satoshis`.
    pub signature: Signature,
    /// TLV 1 `fee_range`.
    pub fee_range: Option<ClosingFeeRange>,
}

impl WireMessage for ClosingSigned {
    const TYPE: u16 = 39;

    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.channel_id.0);
        out.extend_from_slice(&self.fee_satoshis.to_be_bytes());
        write_signature(out, &self.signature);
        let mut tlvs = TlvWriter::new();
        tlvs.optional(
            CLOSING_SIGNED_FEE_RANGE,
            self.fee_range.map(|range| {
                let mut v = Vec::with_capacity(16);
                v.extend_from_slice(&range.min_fee_satoshis.to_be_bytes());
                v.extend_from_slice(&range.max_fee_satoshis.to_be_bytes());
                v
            }),
        );
        tlvs.finish(out);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let channel_id = read_channel_id(&mut r, "closing_signed.channel_id")?;
        let fee_satoshis = r.read_u64("closing_signed.fee_satoshis")?;
        let signature = r.read_signature("closing_signed.signature")?;
        let mut fee_range = None;
        for record in read_extension(&mut r, &[CLOSING_SIGNED_FEE_RANGE])? {
            let value = tlv_array::<16>(&record, "closing_signed.fee_range")?;
            let mut v = Reader::new(&value);
            fee_range = Some(ClosingFeeRange {
                min_fee_satoshis: v.read_u64("closing_signed.fee_range.min_fee_satoshis")?,
                max_fee_satoshis: v.read_u64("closing_signed.fee_range.max_fee_satoshis")?,
            });
        }
        Ok(ClosingSigned {
            channel_id,
            fee_satoshis,
            signature,
            fee_range,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_values::{assert_truncations_fail, sig};
    use super::*;

    #[test]
    fn shutdown_layout() {
        let script = ScriptBuf::from_bytes(vec![0x00, 0x14].into_iter().chain([7; 20]).collect());
        let m = Shutdown {
            channel_id: ChannelId([1; 32]),
            scriptpubkey: script,
        };
        let bytes = m.encode_payload();
        assert_eq!(bytes.get(32..36), Some(&[0x00, 0x16, 0x00, 0x14][..]));
        assert_eq!(bytes.len(), 32 + 2 + 22);
        assert_eq!(Shutdown::decode_payload(&bytes), Ok(m));
        assert_truncations_fail(&bytes, bytes.len(), Shutdown::decode_payload);
    }

    #[test]
    fn closing_signed_fee_range() {
        let m = ClosingSigned {
            channel_id: ChannelId([1; 32]),
            fee_satoshis: 500,
            signature: sig(2),
            fee_range: Some(ClosingFeeRange {
                min_fee_satoshis: 100,
                max_fee_satoshis: 1000,
            }),
        };
        let bytes = m.encode_payload();
        assert_eq!(bytes.get(104..106), Some(&[0x01, 0x10][..]));
        assert_eq!(bytes.get(106..114), Some(&100u64.to_be_bytes()[..]));
        assert_eq!(ClosingSigned::decode_payload(&bytes), Ok(m));
        assert_truncations_fail(&bytes, 104, ClosingSigned::decode_payload);

        let mut bad = bytes.get(..104).unwrap_or_default().to_vec();
        bad.extend_from_slice(&[0x01, 0x08]);
        bad.extend_from_slice(&[0; 8]);
        assert!(matches!(
            ClosingSigned::decode_payload(&bad),
            Err(DecodeError::ShortRead {
                field: "closing_signed.fee_range",
                ..
            })
        ));
    }
}
