//! BOLT 2 channel establishment v1: `open_channel`, `accept_channel`, `funding_created`,
//! `funding_signed` and `channel_ready`.

use bitcoin::constants::ChainHash;
use bitcoin::secp256k1::{ecdsa::Signature, PublicKey};
use bitcoin::{ScriptBuf, Txid};

use super::codec::{
    read_channel_id, read_extension, read_txid, tlv_array, write_pubkey, write_signature,
    write_txid,
};
use super::features::{ChannelType, Features};
use super::WireMessage;
use crate::ser::{DecodeError, Reader};
use crate::tlv::{TlvRecord, TlvWriter};
use crate::types::{ChannelId, ShortChannelId};

const UPFRONT_SHUTDOWN_SCRIPT: u64 = 0;
const CHANNEL_TYPE: u64 = 1;

/// The two TLVs `open_channel` and `accept_channel` share.
fn write_open_tlvs(
    out: &mut Vec<u8>,
    upfront_shutdown_script: &Option<ScriptBuf>,
    channel_type: &Option<ChannelType>,
) {
    let mut tlvs = TlvWriter::new();
    tlvs.optional(
        UPFRONT_SHUTDOWN_SCRIPT,
        upfront_shutdown_script.as_ref().map(|s| s.to_bytes()),
    );
    tlvs.optional(
        CHANNEL_TYPE,
        channel_type.as_ref().map(|t| t.to_wire_bytes()),
    );
    tlvs.finish(out);
}

fn read_open_tlvs(records: Vec<TlvRecord<'_>>) -> (Option<ScriptBuf>, Option<ChannelType>) {
    let mut script = None;
    let mut channel_type = None;
    for record in records {
        if record.tlv_type == UPFRONT_SHUTDOWN_SCRIPT {
            script = Some(ScriptBuf::from_bytes(record.value.to_vec()));
        } else {
            channel_type = Some(Features::from_wire_bytes(record.value));
        }
    }
    (script, channel_type)
}

/// `open_channel` (type 32): the funder proposes a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenChannel {
    /// The chain the channel lives on (its genesis block hash).
    pub chain_hash: ChainHash,
    /// The id used until the funding transaction is known.
    pub temporary_channel_id: ChannelId,
    /// The funder's contribution.
    pub funding_satoshis: u64,
    /// Funds given unconditionally to the fundee.
    pub push_msat: u64,
    /// Below this, the funder's outputs are not created.
    pub dust_limit_satoshis: u64,
    /// Cap on the value of HTLCs the fundee may have in flight towards the funder.
    pub max_htlc_value_in_flight_msat: u64,
    /// The reserve the fundee must keep.
    pub channel_reserve_satoshis: u64,
    /// The smallest HTLC the funder accepts.
    pub htlc_minimum_msat: u64,
    /// Initial commitment fee rate (satoshi per 1000 weight).
    pub feerate_per_kw: u32,
    /// CSV delay the fundee's to-self outputs get.
    pub to_self_delay: u16,
    /// How many HTLCs the fundee may offer at once.
    pub max_accepted_htlcs: u16,
    /// The funder's key in the 2-of-2 funding output.
    pub funding_pubkey: PublicKey,
    /// Revocation basepoint.
    pub revocation_basepoint: PublicKey,
    /// Payment basepoint.
    pub payment_basepoint: PublicKey,
    /// Delayed payment basepoint.
    pub delayed_payment_basepoint: PublicKey,
    /// HTLC basepoint.
    pub htlc_basepoint: PublicKey,
    /// Per-commitment point of commitment 0.
    pub first_per_commitment_point: PublicKey,
    /// Bit 0 is `announce_channel`; other bits are undefined.
    pub channel_flags: u8,
    /// TLV 0: where mutual-close funds must go; `Some` of an empty script means "no
    /// commitment" (`0x0000`), `None` means the record is absent.
    pub upfront_shutdown_script: Option<ScriptBuf>,
    /// TLV 1: the channel type.
    pub channel_type: Option<ChannelType>,
}

impl OpenChannel {
    /// The `announce_channel` bit of `channel_flags`.
    pub const ANNOUNCE_CHANNEL: u8 = 1;

    /// Whether the funder wants the channel announced.
    pub fn announce_channel(&self) -> bool {
        self.channel_flags & Self::ANNOUNCE_CHANNEL != 0
    }
}

impl WireMessage for OpenChannel {
    const TYPE: u16 = 32;

    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.chain_hash.as_bytes());
        out.extend_from_slice(&self.temporary_channel_id.0);
        for v in [
            self.funding_satoshis,
            self.push_msat,
            self.dust_limit_satoshis,
            self.max_htlc_value_in_flight_msat,
            self.channel_reserve_satoshis,
            self.htlc_minimum_msat,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&self.feerate_per_kw.to_be_bytes());
        out.extend_from_slice(&self.to_self_delay.to_be_bytes());
        out.extend_from_slice(&self.max_accepted_htlcs.to_be_bytes());
        for key in [
            &self.funding_pubkey,
            &self.revocation_basepoint,
            &self.payment_basepoint,
            &self.delayed_payment_basepoint,
            &self.htlc_basepoint,
            &self.first_per_commitment_point,
        ] {
            write_pubkey(out, key);
        }
        out.push(self.channel_flags);
        write_open_tlvs(out, &self.upfront_shutdown_script, &self.channel_type);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let chain_hash = ChainHash::from(r.read_array::<32>("open_channel.chain_hash")?);
        let temporary_channel_id = read_channel_id(&mut r, "open_channel.temporary_channel_id")?;
        let funding_satoshis = r.read_u64("open_channel.funding_satoshis")?;
        let push_msat = r.read_u64("open_channel.push_msat")?;
        let dust_limit_satoshis = r.read_u64("open_channel.dust_limit_satoshis")?;
        let max_htlc_value_in_flight_msat =
            r.read_u64("open_channel.max_htlc_value_in_flight_msat")?;
        let channel_reserve_satoshis = r.read_u64("open_channel.channel_reserve_satoshis")?;
        let htlc_minimum_msat = r.read_u64("open_channel.htlc_minimum_msat")?;
        let feerate_per_kw = r.read_u32("open_channel.feerate_per_kw")?;
        let to_self_delay = r.read_u16("open_channel.to_self_delay")?;
        let max_accepted_htlcs = r.read_u16("open_channel.max_accepted_htlcs")?;
        let funding_pubkey = r.read_pubkey("open_channel.funding_pubkey")?;
        let revocation_basepoint = r.read_pubkey("open_channel.revocation_basepoint")?;
        let payment_basepoint = r.read_pubkey("open_channel.payment_basepoint")?;
        let delayed_payment_basepoint = r.read_pubkey("open_channel.delayed_payment_basepoint")?;
        let htlc_basepoint = r.read_pubkey("open_channel.htlc_basepoint")?;
        let first_per_commitment_point =
            r.read_pubkey("open_channel.first_per_commitment_point")?;
        let channel_flags = r.read_u8("open_channel.channel_flags")?;
        let (upfront_shutdown_script, channel_type) = read_open_tlvs(read_extension(
            &mut r,
            &[UPFRONT_SHUTDOWN_SCRIPT, CHANNEL_TYPE],
        )?);
        Ok(OpenChannel {
            chain_hash,
            temporary_channel_id,
            funding_satoshis,
            push_msat,
            dust_limit_satoshis,
            max_htlc_value_in_flight_msat,
            channel_reserve_satoshis,
            htlc_minimum_msat,
            feerate_per_kw,
            to_self_delay,
            max_accepted_htlcs,
            funding_pubkey,
            revocation_basepoint,
            payment_basepoint,
            delayed_payment_basepoint,
            htlc_basepoint,
            first_per_commitment_point,
            channel_flags,
            upfront_shutdown_script,
            channel_type,
        })
    }
}

/// `accept_channel` (type 33): the fundee accepts and states its own parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptChannel {
    /// Same as in `open_channel`.
    pub temporary_channel_id: ChannelId,
    /// Below this, the fundee's outputs are not created.
    pub dust_limit_satoshis: u64,
    /// Cap on the value of HTLCs the funder may have in flight towards the fundee.
    pub max_htlc_value_in_flight_msat: u64,
    /// The reserve the funder must keep.
    pub channel_reserve_satoshis: u64,
    /// The smallest HTLC the fundee accepts.
    pub htlc_minimum_msat: u64,
    /// Confirmations the fundee waits for before `channel_ready` (0 for zero-conf).
    pub minimum_depth: u32,
    /// CSV delay the funder's to-self outputs get.
    pub to_self_delay: u16,
    /// How many HTLCs the funder may offer at once.
    pub max_accepted_htlcs: u16,
    /// The fundee's key in the 2-of-2 funding output.
    pub funding_pubkey: PublicKey,
    /// Revocation basepoint.
    pub revocation_basepoint: PublicKey,
    /// Payment basepoint.
    pub payment_basepoint: PublicKey,
    /// Delayed payment basepoint.
    pub delayed_payment_basepoint: PublicKey,
    /// HTLC basepoint.
    pub htlc_basepoint: PublicKey,
    /// Per-commitment point of commitment 0.
    pub first_per_commitment_point: PublicKey,
    /// TLV 0: as in `open_channel`.
    pub upfront_shutdown_script: Option<ScriptBuf>,
    /// TLV 1: must equal `open_channel`'s.
    pub channel_type: Option<ChannelType>,
}

impl WireMessage for AcceptChannel {
    const TYPE: u16 = 33;

    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.temporary_channel_id.0);
        for v in [
            self.dust_limit_satoshis,
            self.max_htlc_value_in_flight_msat,
            self.channel_reserve_satoshis,
            self.htlc_minimum_msat,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&self.minimum_depth.to_be_bytes());
        out.extend_from_slice(&self.to_self_delay.to_be_bytes());
        out.extend_from_slice(&self.max_accepted_htlcs.to_be_bytes());
        for key in [
            &self.funding_pubkey,
            &self.revocation_basepoint,
            &self.payment_basepoint,
            &self.delayed_payment_basepoint,
            &self.htlc_basepoint,
            &self.first_per_commitment_point,
        ] {
            write_pubkey(out, key);
        }
        write_open_tlvs(out, &self.upfront_shutdown_script, &self.channel_type);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let temporary_channel_id = read_channel_id(&mut r, "accept_channel.temporary_channel_id")?;
        let dust_limit_satoshis = r.read_u64("accept_channel.dust_limit_satoshis")?;
        let max_htlc_value_in_flight_msat =
            r.read_u64("accept_channel.max_htlc_value_in_flight_msat")?;
        let channel_reserve_satoshis = r.read_u64("accept_channel.channel_reserve_satoshis")?;
        let htlc_minimum_msat = r.read_u64("accept_channel.htlc_minimum_msat")?;
        let minimum_depth = r.read_u32("accept_channel.minimum_depth")?;
        let to_self_delay = r.read_u16("accept_channel.to_self_delay")?;
        let max_accepted_htlcs = r.read_u16("accept_channel.max_accepted_htlcs")?;
        let funding_pubkey = r.read_pubkey("accept_channel.funding_pubkey")?;
        let revocation_basepoint = r.read_pubkey("accept_channel.revocation_basepoint")?;
        let payment_basepoint = r.read_pubkey("accept_channel.payment_basepoint")?;
        let delayed_payment_basepoint =
            r.read_pubkey("accept_channel.delayed_payment_basepoint")?;
        let htlc_basepoint = r.read_pubkey("accept_channel.htlc_basepoint")?;
        let first_per_commitment_point =
            r.read_pubkey("accept_channel.first_per_commitment_point")?;
        let (upfront_shutdown_script, channel_type) = read_open_tlvs(read_extension(
            &mut r,
            &[UPFRONT_SHUTDOWN_SCRIPT, CHANNEL_TYPE],
        )?);
        Ok(AcceptChannel {
            temporary_channel_id,
            dust_limit_satoshis,
            max_htlc_value_in_flight_msat,
            channel_reserve_satoshis,
            htlc_minimum_msat,
            minimum_depth,
            to_self_delay,
            max_accepted_htlcs,
            funding_pubkey,
            revocation_basepoint,
            payment_basepoint,
            delayed_payment_basepoint,
            htlc_basepoint,
            first_per_commitment_point,
            upfront_shutdown_script,
            channel_type,
        })
    }
}

/// `funding_created` (type 34): the funding outpoint and the funder's signature of the
/// fundee's first commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundingCreated {
    /// Same as in `open_channel`.
    pub temporary_channel_id: ChannelId,
    /// The funding transaction id (internal byte order on the wire).
    pub funding_txid: Txid,
    /// The funding output's index.
    pub funding_output_index: u16,
    /// Signature of the fundee's commitment 0.
    pub signature: Signature,
}

impl FundingCreated {
    /// The channel id this funding outpoint gives the channel.
    pub fn channel_id(&self) -> ChannelId {
        ChannelId::from_funding_outpoint(&self.funding_txid, self.funding_output_index)
    }
}

impl WireMessage for FundingCreated {
    const TYPE: u16 = 34;

    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.temporary_channel_id.0);
        write_txid(out, &self.funding_txid);
        out.extend_from_slice(&self.funding_output_index.to_be_bytes());
        write_signature(out, &self.signature);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let temporary_channel_id = read_channel_id(&mut r, "funding_created.temporary_channel_id")?;
        let funding_txid = read_txid(&mut r, "funding_created.funding_txid")?;
        let funding_output_index = r.read_u16("funding_created.funding_output_index")?;
        let signature = r.read_signature("funding_created.signature")?;
        read_extension(&mut r, &[])?;
        Ok(FundingCreated {
            temporary_channel_id,
            funding_txid,
            funding_output_index,
            signature,
        })
    }
}

/// `funding_signed` (type 35): the fundee's signature of the funder's first commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundingSigned {
    /// The real channel id (from the funding outpoint).
    pub channel_id: ChannelId,
    /// Signature of the funder's commitment 0.
    pub signature: Signature,
}

impl WireMessage for FundingSigned {
    const TYPE: u16 = 35;

    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.channel_id.0);
        write_signature(out, &self.signature);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let channel_id = read_channel_id(&mut r, "funding_signed.channel_id")?;
        let signature = r.read_signature("funding_signed.signature")?;
        read_extension(&mut r, &[])?;
        Ok(FundingSigned {
            channel_id,
            signature,
        })
    }
}

const CHANNEL_READY_SCID_ALIAS: u64 = 1;

/// `channel_ready` (type 36): the funding is deep enough; here is the next per-commitment
/// point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelReady {
    /// The channel.
    pub channel_id: ChannelId,
    /// Per-commitment point of commitment 1.
    pub second_per_commitment_point: PublicKey,
    /// TLV 1 `short_channel_id`: an alias the peer may use to route to this channel.
    pub short_channel_id_alias: Option<ShortChannelId>,
}

impl WireMessage for ChannelReady {
    const TYPE: u16 = 36;

    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.channel_id.0);
        write_pubkey(out, &self.second_per_commitment_point);
        let mut tlvs = TlvWriter::new();
        tlvs.optional(
            CHANNEL_READY_SCID_ALIAS,
            self.short_channel_id_alias.map(|s| s.0.to_be_bytes()),
        );
        tlvs.finish(out);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let channel_id = read_channel_id(&mut r, "channel_ready.channel_id")?;
        let second_per_commitment_point =
            r.read_pubkey("channel_ready.second_per_commitment_point")?;
        let mut short_channel_id_alias = None;
        for record in read_extension(&mut r, &[CHANNEL_READY_SCID_ALIAS])? {
            let alias = tlv_array::<8>(&record, "channel_ready.short_channel_id")?;
            short_channel_id_alias = Some(ShortChannelId(u64::from_be_bytes(alias)));
        }
        Ok(ChannelReady {
            channel_id,
            second_per_commitment_point,
            short_channel_id_alias,
        })
    }
}

#[cfg(test)]
mod tests {
    use bitcoin::hashes::Hash;

    use super::super::features::Feature;
    use super::super::test_values::{assert_truncations_fail, point, sig};
    use super::*;

    fn open() -> OpenChannel {
        OpenChannel {
            chain_hash: ChainHash::BITCOIN,
            temporary_channel_id: ChannelId([7; 32]),
            funding_satoshis: 1_000_000,
            push_msat: 0,
            dust_limit_satoshis: 546,
            max_htlc_value_in_flight_msat: 500_000_000,
            channel_reserve_satoshis: 10_000,
            htlc_minimum_msat: 1,
            feerate_per_kw: 253,
            to_self_delay: 144,
            max_accepted_htlcs: 483,
            funding_pubkey: point(1),
            revocation_basepoint: point(2),
            payment_basepoint: point(3),
            delayed_payment_basepoint: point(4),
            htlc_basepoint: point(5),
            first_per_commitment_point: point(6),
            channel_flags: 1,
            upfront_shutdown_script: Some(ScriptBuf::new()),
            channel_type: Some(Features::from_required(&[
                Feature::StaticRemoteKey,
                Feature::Anchors,
            ])),
        }
    }

    fn accept() -> AcceptChannel {
        AcceptChannel {
            temporary_channel_id: ChannelId([7; 32]),
            dust_limit_satoshis: 546,
            max_htlc_value_in_flight_msat: 1,
            channel_reserve_satoshis: 2,
            htlc_minimum_msat: 3,
            minimum_depth: 3,
            to_self_delay: 4,
            max_accepted_htlcs: 5,
            funding_pubkey: point(11),
            revocation_basepoint: point(12),
            payment_basepoint: point(13),
            delayed_payment_basepoint: point(14),
            htlc_basepoint: point(15),
            first_per_commitment_point: point(16),
            upfront_shutdown_script: None,
            channel_type: Some(Features::from_required(&[Feature::StaticRemoteKey])),
        }
    }

    #[test]
    fn open_channel_tlvs_follow_the_319_fixed_bytes() {
        let m = open();
        let bytes = m.encode_payload();
        // upfront_shutdown_script: type 0, length 0; channel_type: type 1, length 3.
        assert_eq!(
            bytes.get(319..),
            Some(&[0x00, 0x00, 0x01, 0x03, 0x40, 0x10, 0x00][..])
        );
        assert_eq!(
            bytes.get(318),
            Some(&1),
            "channel_flags is the last fixed byte"
        );
        assert!(m.announce_channel());
        assert_eq!(OpenChannel::decode_payload(&bytes), Ok(m));
        assert_truncations_fail(&bytes, 319, OpenChannel::decode_payload);
    }

    #[test]
    fn open_channel_without_tlvs_and_with_unknown_odd() {
        let mut m = open();
        m.upfront_shutdown_script = None;
        m.channel_type = None;
        let mut bytes = m.encode_payload();
        assert_eq!(bytes.len(), 319);
        assert_eq!(OpenChannel::decode_payload(&bytes), Ok(m.clone()));
        bytes.extend_from_slice(&[0x03, 0x01, 0xff]);
        assert_eq!(OpenChannel::decode_payload(&bytes), Ok(m));
    }

    #[test]
    fn open_channel_bad_inputs() {
        let bytes = open().encode_payload();
        // Invalid funding_pubkey (starts at 2*32 + 6*8 + 4 + 2 + 2 = 120).
        let mut bad = bytes.clone();
        if let Some(b) = bad.get_mut(120) {
            *b = 0x05;
        }
        assert_eq!(
            OpenChannel::decode_payload(&bad),
            Err(DecodeError::InvalidPublicKey {
                field: "open_channel.funding_pubkey"
            })
        );
        // An unknown even TLV after the known ones.
        let mut bad = bytes.clone();
        bad.extend_from_slice(&[0x02, 0x00]);
        assert_eq!(
            OpenChannel::decode_payload(&bad),
            Err(DecodeError::UnknownEvenTlv { tlv_type: 2 })
        );
        // Repeating channel_type breaks the ordering.
        let mut bad = bytes.clone();
        bad.extend_from_slice(&[0x01, 0x00]);
        assert_eq!(
            OpenChannel::decode_payload(&bad),
            Err(DecodeError::TlvNotIncreasing {
                previous: 1,
                current: 1
            })
        );
        // A TLV length running past the end.
        let mut bad = bytes.get(..319).unwrap_or_default().to_vec();
        bad.extend_from_slice(&[0x00, 0x05, 0x00]);
        assert!(matches!(
            OpenChannel::decode_payload(&bad),
            Err(DecodeError::ShortRead {
                field: "tlv value",
                ..
            })
        ));
    }

    #[test]
    fn accept_channel_round_trip_and_truncation() {
        let m = accept();
        let bytes = m.encode_payload();
        assert_eq!(bytes.get(270..), Some(&[0x01, 0x02, 0x10, 0x00][..]));
        assert_eq!(AcceptChannel::decode_payload(&bytes), Ok(m));
        assert_truncations_fail(&bytes, 270, AcceptChannel::decode_payload);
    }

    #[test]
    fn funding_created_and_signed() {
        let txid = Txid::from_byte_array([0x11; 32]);
        let m = FundingCreated {
            temporary_channel_id: ChannelId([7; 32]),
            funding_txid: txid,
            funding_output_index: 1,
            signature: sig(9),
        };
        let bytes = m.encode_payload();
        assert_eq!(bytes.len(), 32 + 32 + 2 + 64);
        assert_eq!(bytes.get(32..64), Some(&[0x11; 32][..]));
        assert_eq!(m.channel_id(), ChannelId::from_funding_outpoint(&txid, 1));
        assert_eq!(FundingCreated::decode_payload(&bytes), Ok(m));
        assert_truncations_fail(&bytes, bytes.len(), FundingCreated::decode_payload);

        // A signature with r >= n is rejected.
        let mut bad = bytes.clone();
        for b in bad.get_mut(66..98).into_iter().flatten() {
            *b = 0xff;
        }
        assert_eq!(
            FundingCreated::decode_payload(&bad),
            Err(DecodeError::InvalidSignature {
                field: "funding_created.signature"
            })
        );

        let s = FundingSigned {
            channel_id: ChannelId([8; 32]),
            signature: sig(3),
        };
        let bytes = s.encode_payload();
        assert_eq!(FundingSigned::decode_payload(&bytes), Ok(s));
        let mut trailing = bytes.clone();
        trailing.push(0x00);
        assert!(matches!(
            FundingSigned::decode_payload(&trailing),
            Err(DecodeError::ShortRead {
                field: "tlv length",
                ..
            })
        ));
    }

    #[test]
    fn channel_ready_alias_must_be_eight_bytes() {
        let m = ChannelReady {
            channel_id: ChannelId([1; 32]),
            second_per_commitment_point: point(2),
            short_channel_id_alias: Some(ShortChannelId::new(1, 2, 3)),
        };
        let bytes = m.encode_payload();
        assert_eq!(
            bytes.get(65..),
            Some(&[0x01, 0x08, 0, 0, 1, 0, 0, 2, 0, 3][..])
        );
        assert_eq!(ChannelReady::decode_payload(&bytes), Ok(m));

        let mut short = bytes.get(..65).unwrap_or_default().to_vec();
        short.extend_from_slice(&[0x01, 0x07, 0, 0, 1, 0, 0, 2, 0]);
        assert!(matches!(
            ChannelReady::decode_payload(&short),
            Err(DecodeError::ShortRead {
                field: "channel_ready.short_channel_id",
                ..
            })
        ));
        let mut long = bytes.get(..65).unwrap_or_default().to_vec();
        long.extend_from_slice(&[0x01, 0x09, 0, 0, 1, 0, 0, 2, 0, 3, 4]);
        assert_eq!(
            ChannelReady::decode_payload(&long),
            Err(DecodeError::TrailingBytes {
                field: "channel_ready.short_channel_id",
                extra: 1
            })
        );
    }
}
