//! BOLT 2 normal operation: `update_add_htlc`, `update_fulfill_htlc`, `update_fail_htlc`,
//! `update_fail_malformed_htlc`, `commitment_signed`, `revoke_and_ack` and `update_fee`.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{ecdsa::Signature, PublicKey};
use bitcoin::Txid;

use super::codec::{
    read_channel_id, read_extension, tlv_array, tlv_pubkey, write_pubkey, write_signature,
    write_txid,
};
use super::WireMessage;
use crate::ser::{write_u16_prefixed, DecodeError, Reader};
use crate::tlv::{TlvRecord, TlvWriter};
use crate::types::{ChannelId, PaymentHash, PaymentPreimage};

/// The size of a BOLT 4 `onion_routing_packet`.
pub const ONION_PACKET_LEN: usize = 1366;

const UPDATE_ADD_BLINDED_PATH: u64 = 0;

/// `update_add_htlc` (type 128): offers an HTLC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateAddHtlc {
    /// The channel.
    pub channel_id: ChannelId,
    /// The HTLC's id: 0 for the sender's first, then incremented by one.
    pub id: u64,
    /// The HTLC's amount.
    pub amount_msat: u64,
    /// The hash the HTLC is locked to.
    pub payment_hash: PaymentHash,
    /// The HTLC's absolute expiry height.
    pub cltv_expiry: u32,
    /// The BOLT 4 onion, kept as opaque bytes: a malformed onion is answered with
    /// `update_fail_malformed_htlc`, not by failing this message's decoding.
    pub onion_routing_packet: Box<[u8; ONION_PACKET_LEN]>,
    /// TLV 0 `blinded_path`: the `path_key` when relaying inside a blinded route.
    pub path_key: Option<PublicKey>,
}

impl WireMessage for UpdateAddHtlc {
    const TYPE: u16 = 128;

    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.channel_id.0);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.amount_msat.to_be_bytes());
        out.extend_from_slice(&self.payment_hash.0);
        out.extend_from_slice(&self.cltv_expiry.to_be_bytes());
        out.extend_from_slice(self.onion_routing_packet.as_slice());
        let mut tlvs = TlvWriter::new();
        tlvs.optional(
            UPDATE_ADD_BLINDED_PATH,
            self.path_key.map(|k| k.serialize()),
        );
        tlvs.finish(out);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let channel_id = read_channel_id(&mut r, "update_add_htlc.channel_id")?;
        let id = r.read_u64("update_add_htlc.id")?;
        let amount_msat = r.read_u64("update_add_htlc.amount_msat")?;
        let payment_hash = PaymentHash(r.read_array("update_add_htlc.payment_hash")?);
        let cltv_expiry = r.read_u32("update_add_htlc.cltv_expiry")?;
        let onion_routing_packet =
            Box::new(r.read_array::<ONION_PACKET_LEN>("update_add_htlc.onion_routing_packet")?);
        let mut path_key = None;
        for record in read_extension(&mut r, &[UPDATE_ADD_BLINDED_PATH])? {
            path_key = Some(tlv_pubkey(
                &record,
                "update_add_htlc.blinded_path.path_key",
            )?);
        }
        Ok(UpdateAddHtlc {
            channel_id,
            id,
            amount_msat,
            payment_hash,
            cltv_expiry,
            onion_routing_packet,
            path_key,
        })
    }
}

/// The `attribution_data` TLV of `update_fulfill_htlc` and `update_fail_htlc` (BOLT 4
/// attributable failures): 20 hold times and 210 truncated HMACs, 920 bytes in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributionData {
    /// `htlc_hold_times`: one `u32` per hop, in units of 100 ms.
    pub htlc_hold_times: [u32; AttributionData::HOPS],
    /// `truncated_hmacs`: 4-byte truncated HMACs.
    pub truncated_hmacs: [[u8; 4]; AttributionData::HMACS],
}

impl AttributionData {
    /// The number of hold times.
    pub const HOPS: usize = 20;
    /// The number of truncated HMACs.
    pub const HMACS: usize = 210;
    /// The encoded length.
    pub const LEN: usize = Self::HOPS * 4 + Self::HMACS * 4;

    /// The 920-byte encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        for t in &self.htlc_hold_times {
            out.extend_from_slice(&t.to_be_bytes());
        }
        for h in &self.truncated_hmacs {
            out.extend_from_slice(h);
        }
        out
    }

    /// Decodes a value that must be exactly 920 bytes.
    pub fn from_bytes(bytes: &[u8], field: &'static str) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let mut htlc_hold_times = [0u32; Self::HOPS];
        for t in &mut htlc_hold_times {
            *t = r.read_u32(field)?;
        }
        let mut truncated_hmacs = [[0u8; 4]; Self::HMACS];
        for h in &mut truncated_hmacs {
            *h = r.read_array(field)?;
        }
        r.finish(field)?;
        Ok(AttributionData {
            htlc_hold_times,
            truncated_hmacs,
        })
    }
}

const ATTRIBUTION_DATA: u64 = 1;

fn read_attribution(
    records: Vec<TlvRecord<'_>>,
    field: &'static str,
) -> Result<Option<Box<AttributionData>>, DecodeError> {
    let mut attribution = None;
    for record in records {
        attribution = Some(Box::new(AttributionData::from_bytes(record.value, field)?));
    }
    Ok(attribution)
}

fn write_attribution(out: &mut Vec<u8>, attribution: &Option<Box<AttributionData>>) {
    let mut tlvs = TlvWriter::new();
    tlvs.optional(ATTRIBUTION_DATA, attribution.as_ref().map(|a| a.to_bytes()));
    tlvs.finish(out);
}

/// `update_fulfill_htlc` (type 130): settles an HTLC with its preimage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateFulfillHtlc {
    /// The channel.
    pub channel_id: ChannelId,
    /// The HTLC's id.
    pub id: u64,
    /// The preimage of the HTLC's payment hash.
    pub payment_preimage: PaymentPreimage,
    /// TLV 1 `attribution_data`.
    pub attribution_data: Option<Box<AttributionData>>,
}

impl WireMessage for UpdateFulfillHtlc {
    const TYPE: u16 = 130;

    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.channel_id.0);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.payment_preimage.0);
        write_attribution(out, &self.attribution_data);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let channel_id = read_channel_id(&mut r, "update_fulfill_htlc.channel_id")?;
        let id = r.read_u64("update_fulfill_htlc.id")?;
        let payment_preimage =
            PaymentPreimage(r.read_array("update_fulfill_htlc.payment_preimage")?);
        let attribution_data = read_attribution(
            read_extension(&mut r, &[ATTRIBUTION_DATA])?,
            "update_fulfill_htlc.attribution_data",
        )?;
        Ok(UpdateFulfillHtlc {
            channel_id,
            id,
            payment_preimage,
            attribution_data,
        })
    }
}

/// `update_fail_htlc` (type 131): fails an HTLC with an encrypted reason for the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateFailHtlc {
    /// The channel.
    pub channel_id: ChannelId,
    /// The HTLC's id.
    pub id: u64,
    /// The BOLT 4 failure onion, opaque here.
    pub reason: Vec<u8>,
    /// TLV 1 `attribution_data`.
    pub attribution_data: Option<Box<AttributionData>>,
}

impl WireMessage for UpdateFailHtlc {
    const TYPE: u16 = 131;

    /// # Panics
    /// If `reason` is longer than 65535 bytes (a caller bug).
    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.channel_id.0);
        out.extend_from_slice(&self.id.to_be_bytes());
        write_u16_prefixed(out, &self.reason);
        write_attribution(out, &self.attribution_data);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let channel_id = read_channel_id(&mut r, "update_fail_htlc.channel_id")?;
        let id = r.read_u64("update_fail_htlc.id")?;
        let reason = r.read_u16_prefixed("update_fail_htlc.reason")?.to_vec();
        let attribution_data = read_attribution(
            read_extension(&mut r, &[ATTRIBUTION_DATA])?,
            "update_fail_htlc.attribution_data",
        )?;
        Ok(UpdateFailHtlc {
            channel_id,
            id,
            reason,
            attribution_data,
        })
    }
}

/// `update_fail_malformed_htlc` (type 135): the onion could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateFailMalformedHtlc {
    /// The channel.
    pub channel_id: ChannelId,
    /// The HTLC's id.
    pub id: u64,
    /// SHA256 of the onion that could not be parsed.
    pub sha256_of_onion: [u8; 32],
    /// The BOLT 4 failure code (must have the `BADONION` bit).
    pub failure_code: u16,
}

impl UpdateFailMalformedHtlc {
    /// BOLT 4's `BADONION` bit.
    pub const BADONION: u16 = 0x8000;

    /// Whether `failure_code` has the `BADONION` bit (BOLT 2: the receiver must fail the
    /// channel otherwise).
    pub fn has_badonion_bit(&self) -> bool {
        self.failure_code & Self::BADONION != 0
    }
}

impl WireMessage for UpdateFailMalformedHtlc {
    const TYPE: u16 = 135;

    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.channel_id.0);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.sha256_of_onion);
        out.extend_from_slice(&self.failure_code.to_be_bytes());
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let channel_id = read_channel_id(&mut r, "update_fail_malformed_htlc.channel_id")?;
        let id = r.read_u64("update_fail_malformed_htlc.id")?;
        let sha256_of_onion = r.read_array("update_fail_malformed_htlc.sha256_of_onion")?;
        let failure_code = r.read_u16("update_fail_malformed_htlc.failure_code")?;
        read_extension(&mut r, &[])?;
        Ok(UpdateFailMalformedHtlc {
            channel_id,
            id,
            sha256_of_onion,
            failure_code,
        })
    }
}

const COMMITMENT_SIGNED_FUNDING_TXID: u64 = 1;

/// `commitment_signed` (type 132): signatures of the peer's next commitment and its HTLC
/// transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentSigned {
    /// The channel.
    pub channel_id: ChannelId,
    /// Signature of the commitment transaction.
    pub signature: Signature,
    /// One signature per HTLC output, in the commitment's output order.
    pub htlc_signatures: Vec<Signature>,
    /// TLV 1 `funding_txid`: the funding transaction this commitment spends.
    pub funding_txid: Option<Txid>,
}

impl WireMessage for CommitmentSigned {
    const TYPE: u16 = 132;

    /// # Panics
    /// If there are more than 65535 HTLC signatures (a caller bug: a channel has at most
    /// 2 * 483 HTLCs).
    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.channel_id.0);
        write_signature(out, &self.signature);
        let num_htlcs = u16::try_from(self.htlc_signatures.len())
            .expect("commitment_signed with more than 65535 htlc signatures");
        out.extend_from_slice(&num_htlcs.to_be_bytes());
        for sig in &self.htlc_signatures {
            write_signature(out, sig);
        }
        let mut tlvs = TlvWriter::new();
        tlvs.optional(
            COMMITMENT_SIGNED_FUNDING_TXID,
            self.funding_txid.map(|t| {
                let mut v = Vec::with_capacity(32);
                write_txid(&mut v, &t);
                v
            }),
        );
        tlvs.finish(out);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let channel_id = read_channel_id(&mut r, "commitment_signed.channel_id")?;
        let signature = r.read_signature("commitment_signed.signature")?;
        let num_htlcs = r.read_u16("commitment_signed.num_htlcs")?;
        // Take all the signature bytes first, so the claimed count is checked against the
        // input before anything is allocated for it.
        let sig_bytes = r.read_bytes(
            u64::from(num_htlcs) * 64,
            "commitment_signed.htlc_signature",
        )?;
        let mut sigs = Reader::new(sig_bytes);
        let mut htlc_signatures = Vec::with_capacity(usize::from(num_htlcs));
        while !sigs.is_empty() {
            htlc_signatures.push(sigs.read_signature("commitment_signed.htlc_signature")?);
        }
        let mut funding_txid = None;
        for record in read_extension(&mut r, &[COMMITMENT_SIGNED_FUNDING_TXID])? {
            let txid = tlv_array::<32>(&record, "commitment_signed.funding_txid")?;
            funding_txid = Some(Txid::from_byte_array(txid));
        }
        Ok(CommitmentSigned {
            channel_id,
            signature,
            htlc_signatures,
            funding_txid,
        })
    }
}

/// `revoke_and_ack` (type 133): revokes the previous commitment and gives the next point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeAndAck {
    /// The channel.
    pub channel_id: ChannelId,
    /// The secret of the commitment being revoked (checked against its point by the
    /// channel, not here).
    pub per_commitment_secret: [u8; 32],
    /// The point of the sender's next commitment.
    pub next_per_commitment_point: PublicKey,
}

impl WireMessage for RevokeAndAck {
    const TYPE: u16 = 133;

    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.channel_id.0);
        out.extend_from_slice(&self.per_commitment_secret);
        write_pubkey(out, &self.next_per_commitment_point);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let channel_id = read_channel_id(&mut r, "revoke_and_ack.channel_id")?;
        let per_commitment_secret = r.read_array("revoke_and_ack.per_commitment_secret")?;
        let next_per_commitment_point =
            r.read_pubkey("revoke_and_ack.next_per_commitment_point")?;
        read_extension(&mut r, &[])?;
        Ok(RevokeAndAck {
            channel_id,
            per_commitment_secret,
            next_per_commitment_point,
        })
    }
}

/// `update_fee` (type 134): the funder changes the commitment fee rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateFee {
    /// The channel.
    pub channel_id: ChannelId,
    /// The new fee rate (satoshi per 1000 weight).
    pub feerate_per_kw: u32,
}

impl WireMessage for UpdateFee {
    const TYPE: u16 = 134;

    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.channel_id.0);
        out.extend_from_slice(&self.feerate_per_kw.to_be_bytes());
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let channel_id = read_channel_id(&mut r, "update_fee.channel_id")?;
        let feerate_per_kw = r.read_u32("update_fee.feerate_per_kw")?;
        read_extension(&mut r, &[])?;
        Ok(UpdateFee {
            channel_id,
            feerate_per_kw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_values::{assert_truncations_fail, point, sig};
    use super::*;

    fn add() -> UpdateAddHtlc {
        UpdateAddHtlc {
            channel_id: ChannelId([1; 32]),
            id: 5,
            amount_msat: 10_000,
            payment_hash: PaymentHash([2; 32]),
            cltv_expiry: 800_000,
            onion_routing_packet: Box::new([0xab; ONION_PACKET_LEN]),
            path_key: Some(point(3)),
        }
    }

    fn attribution() -> AttributionData {
        let mut data = AttributionData {
            htlc_hold_times: [0; AttributionData::HOPS],
            truncated_hmacs: [[0; 4]; AttributionData::HMACS],
        };
        data.htlc_hold_times[0] = 0x0102_0304;
        data.truncated_hmacs[209] = [9, 8, 7, 6];
        data
    }

    #[test]
    fn update_add_htlc_layout() {
        let m = add();
        let bytes = m.encode_payload();
        assert_eq!(bytes.len(), 1450 + 2 + 33);
        assert_eq!(bytes.get(80..84), Some(&800_000u32.to_be_bytes()[..]));
        assert_eq!(bytes.get(84), Some(&0xab));
        assert_eq!(bytes.get(1450..1452), Some(&[0x00, 0x21][..]));
        assert_eq!(UpdateAddHtlc::decode_payload(&bytes), Ok(m));
        assert_truncations_fail(&bytes, 1450, UpdateAddHtlc::decode_payload);
    }

    #[test]
    fn update_add_htlc_bad_path_key() {
        let mut bytes = add().encode_payload();
        if let Some(b) = bytes.get_mut(1452) {
            *b = 0x04;
        }
        assert_eq!(
            UpdateAddHtlc::decode_payload(&bytes),
            Err(DecodeError::InvalidPublicKey {
                field: "update_add_htlc.blinded_path.path_key"
            })
        );
        let mut short = add().encode_payload();
        short.truncate(1450);
        short.extend_from_slice(&[0x00, 0x20]);
        short.extend_from_slice(&[0x02; 32]);
        assert!(matches!(
            UpdateAddHtlc::decode_payload(&short),
            Err(DecodeError::ShortRead {
                field: "update_add_htlc.blinded_path.path_key",
                ..
            })
        ));
    }

    #[test]
    fn attribution_data_is_920_bytes() {
        let data = attribution();
        let bytes = data.to_bytes();
        assert_eq!(bytes.len(), 920);
        assert_eq!(bytes.get(..4), Some(&[1, 2, 3, 4][..]));
        assert_eq!(bytes.get(916..), Some(&[9, 8, 7, 6][..]));
        assert_eq!(AttributionData::from_bytes(&bytes, "a"), Ok(data));
        assert!(matches!(
            AttributionData::from_bytes(bytes.get(..919).unwrap_or_default(), "a"),
            Err(DecodeError::ShortRead { field: "a", .. })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            AttributionData::from_bytes(&long, "a"),
            Err(DecodeError::TrailingBytes {
                field: "a",
                extra: 1
            })
        );
    }

    #[test]
    fn fulfill_and_fail_carry_attribution_data() {
        let fulfill = UpdateFulfillHtlc {
            channel_id: ChannelId([1; 32]),
            id: 7,
            payment_preimage: PaymentPreimage([3; 32]),
            attribution_data: Some(Box::new(attribution())),
        };
        let bytes = fulfill.encode_payload();
        // 72 fixed bytes, then type 1, length 0xfd 0x0398 (920).
        assert_eq!(bytes.get(72..76), Some(&[0x01, 0xfd, 0x03, 0x98][..]));
        assert_eq!(UpdateFulfillHtlc::decode_payload(&bytes), Ok(fulfill));
        assert_truncations_fail(&bytes, 72, UpdateFulfillHtlc::decode_payload);

        let fail = UpdateFailHtlc {
            channel_id: ChannelId([1; 32]),
            id: 7,
            reason: vec![1, 2, 3],
            attribution_data: None,
        };
        let bytes = fail.encode_payload();
        assert_eq!(bytes.len(), 32 + 8 + 2 + 3);
        assert_eq!(UpdateFailHtlc::decode_payload(&bytes), Ok(fail));
        assert_truncations_fail(&bytes, bytes.len(), UpdateFailHtlc::decode_payload);

        let mut bad = bytes.clone();
        bad.extend_from_slice(&[0x01, 0x01, 0x00]);
        assert!(matches!(
            UpdateFailHtlc::decode_payload(&bad),
            Err(DecodeError::ShortRead {
                field: "update_fail_htlc.attribution_data",
                ..
            })
        ));
    }

    #[test]
    fn fail_malformed_badonion_bit() {
        let m = UpdateFailMalformedHtlc {
            channel_id: ChannelId([1; 32]),
            id: 1,
            sha256_of_onion: [4; 32],
            failure_code: 0x8000 | 0x4000 | 5,
        };
        assert!(m.has_badonion_bit());
        let bytes = m.encode_payload();
        assert_eq!(bytes.get(72..), Some(&[0xc0, 0x05][..]));
        assert_eq!(UpdateFailMalformedHtlc::decode_payload(&bytes), Ok(m));
        assert_truncations_fail(&bytes, 74, UpdateFailMalformedHtlc::decode_payload);
    }

    #[test]
    fn commitment_signed_counts_signatures_before_allocating() {
        let m = CommitmentSigned {
            channel_id: ChannelId([1; 32]),
            signature: sig(1),
            htlc_signatures: vec![sig(2), sig(3)],
            funding_txid: Some(Txid::from_byte_array([5; 32])),
        };
        let bytes = m.encode_payload();
        assert_eq!(bytes.get(96..98), Some(&[0x00, 0x02][..]));
        assert_eq!(bytes.get(226..228), Some(&[0x01, 0x20][..]));
        assert_eq!(CommitmentSigned::decode_payload(&bytes), Ok(m));
        assert_truncations_fail(&bytes, 226, CommitmentSigned::decode_payload);

        // num_htlcs = 65535 with no signatures following
        let mut claim = bytes.get(..96).unwrap_or_default().to_vec();
        claim.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(
            CommitmentSigned::decode_payload(&claim),
            Err(DecodeError::ShortRead {
                field: "commitment_signed.htlc_signature",
                needed: 65535 * 64,
                remaining: 0
            })
        );
        // an invalid second htlc signature
        let mut bad = bytes.clone();
        for b in bad.get_mut(162..226).into_iter().flatten() {
            *b = 0xff;
        }
        assert_eq!(
            CommitmentSigned::decode_payload(&bad),
            Err(DecodeError::InvalidSignature {
                field: "commitment_signed.htlc_signature"
            })
        );
    }

    #[test]
    fn revoke_and_ack_and_update_fee() {
        let m = RevokeAndAck {
            channel_id: ChannelId([1; 32]),
            per_commitment_secret: [0; 32],
            next_per_commitment_point: point(4),
        };
        let bytes = m.encode_payload();
        assert_eq!(bytes.len(), 97);
        assert_eq!(RevokeAndAck::decode_payload(&bytes), Ok(m));
        assert_truncations_fail(&bytes, 97, RevokeAndAck::decode_payload);

        let f = UpdateFee {
            channel_id: ChannelId([1; 32]),
            feerate_per_kw: 253,
        };
        let bytes = f.encode_payload();
        assert_eq!(bytes.get(32..), Some(&[0, 0, 0, 253][..]));
        assert_eq!(UpdateFee::decode_payload(&bytes), Ok(f));
        assert_truncations_fail(&bytes, 36, UpdateFee::decode_payload);
    }
}
