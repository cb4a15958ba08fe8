//! BOLT 2 message retransmission: `channel_reestablish`.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::PublicKey;
use bitcoin::Txid;

use super::codec::{read_channel_id, read_extension, write_pubkey, write_txid};
use super::WireMessage;
use crate::ser::{DecodeError, Reader};
use crate::tlv::{TlvRecord, TlvWriter};
use crate::types::ChannelId;

/// A funding transaction id with its `retransmit_flags`, the shape of both
/// `channel_reestablish` TLVs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FundingTxidFlags {
    /// The funding (or splice) transaction id, internal byte order on the wire.
    pub txid: Txid,
    /// The `retransmit_flags` bitfield (see the constants on [`ChannelReestablish`]).
    pub retransmit_flags: u8,
}

impl FundingTxidFlags {
    fn to_bytes(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(33);
        write_txid(&mut v, &self.txid);
        v.push(self.retransmit_flags);
        v
    }

    fn from_record(record: &TlvRecord<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let mut r = record.reader();
        let txid = Txid::from_byte_array(r.read_array(field)?);
        let retransmit_flags = r.read_u8(field)?;
        r.finish(field)?;
        Ok(FundingTxidFlags {
            txid,
            retransmit_flags,
        })
    }
}

const NEXT_FUNDING: u64 = 1;
const MY_CURRENT_FUNDING_LOCKED: u64 = 5;

/// `channel_reestablish` (type 136): sent for every channel on reconnection so both sides
/// agree on what to retransmit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelReestablish {
    /// The channel.
    pub channel_id: ChannelId,
    /// The commitment number of the next `commitment_signed` the sender expects.
    pub next_commitment_number: u64,
    /// The commitment number of the next `revoke_and_ack` the sender expects.
    pub next_revocation_number: u64,
    /// The last `per_commitment_secret` the sender received (zeros if none).
    pub your_last_per_commitment_secret: [u8; 32],
    /// The sender's current per-commitment point.
    pub my_current_per_commitment_point: PublicKey,
    /// TLV 1 `next_funding`: an interactive funding transaction whose signatures are not
    /// complete.
    pub next_funding: Option<FundingTxidFlags>,
    /// TLV 5 `my_current_funding_locked`: the latest funding (or splice) transaction the
    /// sender considers locked.
    pub my_current_funding_locked: Option<FundingTxidFlags>,
}

impl ChannelReestablish {
    /// `next_funding.retransmit_flags` bit 0: retransmit `commitment_signed`.
    pub const RETRANSMIT_COMMITMENT_SIGNED: u8 = 1;
    /// `my_current_funding_locked.retransmit_flags` bit 0: retransmit
    /// `announcement_signatures`.
    pub const RETRANSMIT_ANNOUNCEMENT_SIGNATURES: u8 = 1;
}

impl WireMessage for ChannelReestablish {
    const TYPE: u16 = 136;

    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.channel_id.0);
        out.extend_from_slice(&self.next_commitment_number.to_be_bytes());
        out.extend_from_slice(&self.next_revocation_number.to_be_bytes());
        out.extend_from_slice(&self.your_last_per_commitment_secret);
        write_pubkey(out, &self.my_current_per_commitment_point);
        let mut tlvs = TlvWriter::new();
        tlvs.optional(
            NEXT_FUNDING,
            self.next_funding.map(FundingTxidFlags::to_bytes),
        );
        tlvs.optional(
            MY_CURRENT_FUNDING_LOCKED,
            self.my_current_funding_locked
                .map(FundingTxidFlags::to_bytes),
        );
        tlvs.finish(out);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let channel_id = read_channel_id(&mut r, "channel_reestablish.channel_id")?;
        let next_commitment_number = r.read_u64("channel_reestablish.next_commitment_number")?;
        let next_revocation_number = r.read_u64("channel_reestablish.next_revocation_number")?;
        let your_last_per_commitment_secret =
            r.read_array("channel_reestablish.your_last_per_commitment_secret")?;
        let my_current_per_commitment_point =
            r.read_pubkey("channel_reestablish.my_current_per_commitment_point")?;
        let mut next_funding = None;
        let mut my_current_funding_locked = None;
        for record in read_extension(&mut r, &[NEXT_FUNDING, MY_CURRENT_FUNDING_LOCKED])? {
            if record.tlv_type == NEXT_FUNDING {
                next_funding = Some(FundingTxidFlags::from_record(
                    &record,
                    "channel_reestablish.next_funding",
                )?);
            } else {
                my_current_funding_locked = Some(FundingTxidFlags::from_record(
                    &record,
                    "channel_reestablish.my_current_funding_locked",
                )?);
            }
        }
        Ok(ChannelReestablish {
            channel_id,
            next_commitment_number,
            next_revocation_number,
            your_last_per_commitment_secret,
            my_current_per_commitment_point,
            next_funding,
            my_current_funding_locked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_values::{assert_truncations_fail, point};
    use super::*;

    fn reestablish() -> ChannelReestablish {
        ChannelReestablish {
            channel_id: ChannelId([1; 32]),
            next_commitment_number: 2,
            next_revocation_number: 1,
            your_last_per_commitment_secret: [3; 32],
            my_current_per_commitment_point: point(4),
            next_funding: Some(FundingTxidFlags {
                txid: Txid::from_byte_array([5; 32]),
                retransmit_flags: ChannelReestablish::RETRANSMIT_COMMITMENT_SIGNED,
            }),
            my_current_funding_locked: Some(FundingTxidFlags {
                txid: Txid::from_byte_array([6; 32]),
                retransmit_flags: 0,
            }),
        }
    }

    #[test]
    fn layout_is_113_fixed_bytes_then_tlvs_1_and_5() {
        let m = reestablish();
        let bytes = m.encode_payload();
        assert_eq!(bytes.get(113..115), Some(&[0x01, 0x21][..]));
        assert_eq!(bytes.get(147), Some(&1));
        assert_eq!(bytes.get(148..150), Some(&[0x05, 0x21][..]));
        assert_eq!(bytes.len(), 113 + 35 + 35);
        assert_eq!(ChannelReestablish::decode_payload(&bytes), Ok(m));
        assert_truncations_fail(&bytes, 113, ChannelReestablish::decode_payload);
    }

    #[test]
    fn tlv_values_must_be_33_bytes_and_old_even_type_0_is_rejected() {
        let fixed = reestablish()
            .encode_payload()
            .get(..113)
            .unwrap_or_default()
            .to_vec();
        let mut short = fixed.clone();
        short.extend_from_slice(&[0x01, 0x20]);
        short.extend_from_slice(&[5; 32]);
        assert!(matches!(
            ChannelReestablish::decode_payload(&short),
            Err(DecodeError::ShortRead {
                field: "channel_reestablish.next_funding",
                ..
            })
        ));
        // The pre-standard `next_funding_txid` at type 0 is an unknown even TLV.
        let mut old = fixed.clone();
        old.extend_from_slice(&[0x00, 0x20]);
        old.extend_from_slice(&[5; 32]);
        assert_eq!(
            ChannelReestablish::decode_payload(&old),
            Err(DecodeError::UnknownEvenTlv { tlv_type: 0 })
        );
        let mut bad_point = fixed;
        if let Some(b) = bad_point.get_mut(80) {
            *b = 0x00;
        }
        assert_eq!(
            ChannelReestablish::decode_payload(&bad_point),
            Err(DecodeError::InvalidPublicKey {
                field: "channel_reestablish.my_current_per_commitment_point"
            })
        );
    }
}
