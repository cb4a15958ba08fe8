//! The typed hop `payload` of a payment onion (BOLT 4 "`payload` format") and the reader's
//! validity rules for forwarding and final hops.
//!
//! [`HopPayload`] is the TLV stream with every defined record typed (the route-blinding records
//! too, so that they are not rejected as unknown even types) and unknown odd records kept;
//! [`PaymentPayload::decode`] applies the rules that depend on the hop's position.

use core::fmt;

use bitcoin::secp256k1::PublicKey;

use super::failure::{FailureMessage, PayloadFailureLocation};
use crate::ser::{read_tu32, read_tu64, write_truncated, BigSize, DecodeError, Reader};
use crate::tlv::{decode_stream, TlvRecord, TlvWriter};
use crate::types::{PaymentSecret, ShortChannelId};

/// TLV type of `amt_to_forward`.
pub const AMT_TO_FORWARD: u64 = 2;
/// TLV type of `outgoing_cltv_value`.
pub const OUTGOING_CLTV_VALUE: u64 = 4;
/// TLV type of `short_channel_id`.
pub const SHORT_CHANNEL_ID: u64 = 6;
/// TLV type of `payment_data`.
pub const PAYMENT_DATA: u64 = 8;
/// TLV type of `encrypted_recipient_data`.
pub const ENCRYPTED_RECIPIENT_DATA: u64 = 10;
/// TLV type of `current_path_key`.
pub const CURRENT_PATH_KEY: u64 = 12;
/// TLV type of `payment_metadata`.
pub const PAYMENT_METADATA: u64 = 16;
/// TLV type of `total_amount_msat`.
pub const TOTAL_AMOUNT_MSAT: u64 = 18;

fn is_known(tlv_type: u64) -> bool {
    matches!(
        tlv_type,
        AMT_TO_FORWARD
            | OUTGOING_CLTV_VALUE
            | SHORT_CHANNEL_ID
            | PAYMENT_DATA
            | ENCRYPTED_RECIPIENT_DATA
            | CURRENT_PATH_KEY
            | PAYMENT_METADATA
            | TOTAL_AMOUNT_MSAT
    )
}

fn field_name(tlv_type: u64) -> &'static str {
    match tlv_type {
        AMT_TO_FORWARD => "amt_to_forward",
        OUTGOING_CLTV_VALUE => "outgoing_cltv_value",
        SHORT_CHANNEL_ID => "short_channel_id",
        PAYMENT_DATA => "payment_data",
        ENCRYPTED_RECIPIENT_DATA => "encrypted_recipient_data",
        CURRENT_PATH_KEY => "current_path_key",
        PAYMENT_METADATA => "payment_metadata",
        TOTAL_AMOUNT_MSAT => "total_amount_msat",
        _ => "custom record",
    }
}

/// The `payment_data` record: the recipient's payment secret and the total payment amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PaymentData {
    /// The recipient's `payment_secret`.
    pub payment_secret: PaymentSecret,
    /// The total amount of the (possibly multi-part) payment.
    pub total_msat: u64,
}

/// A decoded hop `payload`: every defined record typed, unknown odd records kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct HopPayload {
    /// Type 2: the amount to forward (or to receive, at the final hop).
    pub amt_to_forward: Option<u64>,
    /// Type 4: the CLTV expiry of the outgoing HTLC.
    pub outgoing_cltv_value: Option<u32>,
    /// Type 6: the outgoing channel.
    pub short_channel_id: Option<ShortChannelId>,
    /// Type 8: payment secret and total amount (final hop).
    pub payment_data: Option<PaymentData>,
    /// Type 10: data for a node in a blinded route.
    pub encrypted_recipient_data: Option<Vec<u8>>,
    /// Type 12: the path key of a blinded route's introduction node.
    pub current_path_key: Option<PublicKey>,
    /// Type 16: the recipient's payment metadata.
    pub payment_metadata: Option<Vec<u8>>,
    /// Type 18: the total amount (final hop of a blinded route).
    pub total_amount_msat: Option<u64>,
    /// Unknown odd records, in increasing type order.
    pub custom_records: Vec<(u64, Vec<u8>)>,
}

/// Why a hop payload was rejected. Every variant maps to the `invalid_onion_payload` failure
/// ([`PayloadError::failure_message`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PayloadError {
    /// The payload is not a valid TLV stream (bad framing, types out of order, an unknown even
    /// type).
    Stream {
        /// The framing error.
        error: DecodeError,
        /// The record at fault, when it can be named.
        location: Option<PayloadFailureLocation>,
    },
    /// A defined record's value is malformed.
    InvalidRecord {
        /// The record's type.
        tlv_type: u64,
        /// The record's offset in the payload.
        offset: u16,
        /// What was wrong with its value.
        error: DecodeError,
    },
    /// A record the hop needs is absent.
    MissingRecord {
        /// The record's type.
        tlv_type: u64,
        /// Which kind of hop needs it.
        hop: &'static str,
    },
    /// A record this hop must not receive is present.
    UnexpectedRecord {
        /// The record's type.
        tlv_type: u64,
        /// The record's offset in the payload.
        offset: u16,
        /// Which kind of hop must not receive it.
        hop: &'static str,
    },
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::Stream { error, .. } => write!(f, "hop payload: {error}"),
            PayloadError::InvalidRecord {
                tlv_type,
                offset,
                error,
            } => write!(
                f,
                "hop payload {} (type {tlv_type}) at offset {offset}: {error}",
                field_name(*tlv_type)
            ),
            PayloadError::MissingRecord { tlv_type, hop } => write!(
                f,
                "hop payload {} (type {tlv_type}) is required in a {hop} payload",
                field_name(*tlv_type)
            ),
            PayloadError::UnexpectedRecord {
                tlv_type,
                offset,
                hop,
            } => write!(
                f,
                "hop payload {} (type {tlv_type}) at offset {offset} is not allowed in a {hop} payload",
                field_name(*tlv_type)
            ),
        }
    }
}

impl std::error::Error for PayloadError {}

impl PayloadError {
    /// The failure to send back: `invalid_onion_payload`, naming the record when it can.
    ///
    /// Inside a blinded route BOLT 4 requires `invalid_onion_blinding` instead; route blinding
    /// is handled by the caller.
    pub fn failure_message(&self) -> FailureMessage {
        let location = match self {
            PayloadError::Stream { location, .. } => *location,
            PayloadError::InvalidRecord {
                tlv_type, offset, ..
            }
            | PayloadError::UnexpectedRecord {
                tlv_type, offset, ..
            } => Some(PayloadFailureLocation {
                tlv_type: *tlv_type,
                offset: *offset,
            }),
            PayloadError::MissingRecord { .. } => None,
        };
        FailureMessage::InvalidOnionPayload { location }
    }
}

/// The (type, offset) of each record, as far as the framing can be read.
fn record_offsets(bytes: &[u8]) -> Vec<(u64, u16)> {
    let mut reader = Reader::new(bytes);
    let mut out = Vec::new();
    while !reader.is_empty() {
        let offset = u16::try_from(bytes.len() - reader.remaining()).unwrap_or(u16::MAX);
        let Ok(tlv_type) = reader.read_bigsize("tlv type") else {
            break;
        };
        out.push((tlv_type, offset));
        let Ok(len) = reader.read_bigsize("tlv length") else {
            break;
        };
        if reader.read_bytes(len, "tlv value").is_err() {
            break;
        }
    }
    out
}

/// The offset of the first record of `tlv_type`.
fn offset_of(bytes: &[u8], tlv_type: u64) -> u16 {
    record_offsets(bytes)
        .into_iter()
        .find(|(t, _)| *t == tlv_type)
        .map_or(0, |(_, offset)| offset)
}

fn stream_error(bytes: &[u8], error: DecodeError) -> PayloadError {
    let offsets = record_offsets(bytes);
    let location = match error {
        DecodeError::UnknownEvenTlv { tlv_type } => offsets
            .iter()
            .find(|(t, _)| *t == tlv_type)
            .map(|(t, offset)| (*t, *offset)),
        DecodeError::TlvNotIncreasing { .. } => offsets.windows(2).find_map(|pair| match pair {
            [(previous, _), (current, offset)] if current <= previous => Some((*current, *offset)),
            _ => None,
        }),
        _ => None,
    }
    .map(|(tlv_type, offset)| PayloadFailureLocation { tlv_type, offset });
    PayloadError::Stream { error, location }
}

fn exact<T>(
    record: &TlvRecord<'_>,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut reader = record.reader();
    let value = read(&mut reader)?;
    reader.finish(field_name(record.tlv_type))?;
    Ok(value)
}

impl HopPayload {
    /// A forwarding hop's payload.
    pub fn forward(short_channel_id: ShortChannelId, amt_to_forward: u64, cltv: u32) -> Self {
        HopPayload {
            amt_to_forward: Some(amt_to_forward),
            outgoing_cltv_value: Some(cltv),
            short_channel_id: Some(short_channel_id),
            ..HopPayload::default()
        }
    }

    /// A final hop's payload.
    pub fn receive(amt_to_forward: u64, cltv: u32, payment_data: Option<PaymentData>) -> Self {
        HopPayload {
            amt_to_forward: Some(amt_to_forward),
            outgoing_cltv_value: Some(cltv),
            payment_data,
            ..HopPayload::default()
        }
    }

    /// Decodes a payload TLV stream (without its length prefix).
    pub fn decode(bytes: &[u8]) -> Result<HopPayload, PayloadError> {
        let records = decode_stream(bytes, is_known).map_err(|e| stream_error(bytes, e))?;
        let mut payload = HopPayload::default();
        for record in records {
            payload
                .set(&record)
                .map_err(|error| PayloadError::InvalidRecord {
                    tlv_type: record.tlv_type,
                    offset: offset_of(bytes, record.tlv_type),
                    error,
                })?;
        }
        Ok(payload)
    }

    fn set(&mut self, record: &TlvRecord<'_>) -> Result<(), DecodeError> {
        let name = field_name(record.tlv_type);
        match record.tlv_type {
            AMT_TO_FORWARD => self.amt_to_forward = Some(read_tu64(record.value, name)?),
            OUTGOING_CLTV_VALUE => self.outgoing_cltv_value = Some(read_tu32(record.value, name)?),
            SHORT_CHANNEL_ID => {
                self.short_channel_id = Some(ShortChannelId(exact(record, |r| r.read_u64(name))?))
            }
            PAYMENT_DATA => {
                let mut reader = record.reader();
                let payment_secret = PaymentSecret(reader.read_array("payment_secret")?);
                let total_msat = read_tu64(reader.rest(), "total_msat")?;
                self.payment_data = Some(PaymentData {
                    payment_secret,
                    total_msat,
                });
            }
            ENCRYPTED_RECIPIENT_DATA => self.encrypted_recipient_data = Some(record.value.to_vec()),
            CURRENT_PATH_KEY => {
                self.current_path_key = Some(exact(record, |r| r.read_pubkey(name))?)
            }
            PAYMENT_METADATA => self.payment_metadata = Some(record.value.to_vec()),
            TOTAL_AMOUNT_MSAT => self.total_amount_msat = Some(read_tu64(record.value, name)?),
            other => self.custom_records.push((other, record.value.to_vec())),
        }
        Ok(())
    }

    /// The payload's TLV stream (without its length prefix), records sorted by type.
    ///
    /// # Panics
    /// If a custom record repeats a type, or uses a type defined above: a caller bug.
    pub fn encode(&self) -> Vec<u8> {
        let truncated = |v: u64| {
            let mut out = Vec::new();
            write_truncated(&mut out, v);
            out
        };
        let mut w = TlvWriter::new();
        w.optional(AMT_TO_FORWARD, self.amt_to_forward.map(truncated))
            .optional(
                OUTGOING_CLTV_VALUE,
                self.outgoing_cltv_value.map(|v| truncated(u64::from(v))),
            )
            .optional(
                SHORT_CHANNEL_ID,
                self.short_channel_id.map(|s| s.0.to_be_bytes()),
            )
            .optional(
                PAYMENT_DATA,
                self.payment_data.map(|d| {
                    let mut out = d.payment_secret.0.to_vec();
                    write_truncated(&mut out, d.total_msat);
                    out
                }),
            )
            .optional(
                ENCRYPTED_RECIPIENT_DATA,
                self.encrypted_recipient_data.clone(),
            )
            .optional(
                CURRENT_PATH_KEY,
                self.current_path_key.map(|k| k.serialize()),
            )
            .optional(PAYMENT_METADATA, self.payment_metadata.clone())
            .optional(TOTAL_AMOUNT_MSAT, self.total_amount_msat.map(truncated));
        for (tlv_type, value) in &self.custom_records {
            w.record(*tlv_type, value.clone());
        }
        let mut out = Vec::new();
        w.finish(&mut out);
        out
    }

    /// The payload with its BigSize length prefix, as it sits in `hop_payloads`.
    pub fn encode_with_length(&self) -> Vec<u8> {
        let body = self.encode();
        let mut out = Vec::with_capacity(BigSize::encoded_len(body.len() as u64) + body.len());
        BigSize(body.len() as u64).write(&mut out);
        out.extend_from_slice(&body);
        out
    }

    /// The types of the records present, in increasing order.
    fn present_types(&self) -> Vec<u64> {
        let defined = [
            (AMT_TO_FORWARD, self.amt_to_forward.is_some()),
            (OUTGOING_CLTV_VALUE, self.outgoing_cltv_value.is_some()),
            (SHORT_CHANNEL_ID, self.short_channel_id.is_some()),
            (PAYMENT_DATA, self.payment_data.is_some()),
            (
                ENCRYPTED_RECIPIENT_DATA,
                self.encrypted_recipient_data.is_some(),
            ),
            (CURRENT_PATH_KEY, self.current_path_key.is_some()),
            (PAYMENT_METADATA, self.payment_metadata.is_some()),
            (TOTAL_AMOUNT_MSAT, self.total_amount_msat.is_some()),
        ];
        let mut types: Vec<u64> = defined
            .iter()
            .filter(|(_, present)| *present)
            .map(|(t, _)| *t)
            .chain(self.custom_records.iter().map(|(t, _)| *t))
            .collect();
        types.sort_unstable();
        types
    }
}

/// A forwarding hop's payload outside a blinded route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ForwardPayload {
    /// The outgoing channel.
    pub short_channel_id: ShortChannelId,
    /// The amount to forward.
    pub amt_to_forward: u64,
    /// The outgoing HTLC's CLTV expiry.
    pub outgoing_cltv_value: u32,
    /// Unknown odd records.
    pub custom_records: Vec<(u64, Vec<u8>)>,
}

/// The final hop's payload outside a blinded route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReceivePayload {
    /// The amount of this HTLC.
    pub amt_to_forward: u64,
    /// The CLTV expiry the HTLC must have at least.
    pub outgoing_cltv_value: u32,
    /// The payment secret, when the sender included `payment_data`.
    pub payment_secret: Option<PaymentSecret>,
    /// The total payment amount: `payment_data.total_msat`, else `total_amount_msat`, else
    /// `amt_to_forward` (BOLT 4: "treat `total_msat` as if it were equal to `amt_to_forward` if
    /// it is not present").
    pub total_msat: u64,
    /// The recipient's payment metadata.
    pub payment_metadata: Option<Vec<u8>>,
    /// Unknown odd records.
    pub custom_records: Vec<(u64, Vec<u8>)>,
}

/// A non-final hop's payload inside a blinded route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlindedForwardPayload {
    /// The data the recipient encrypted for this hop.
    pub encrypted_recipient_data: Vec<u8>,
    /// The path key, at the introduction node.
    pub current_path_key: Option<PublicKey>,
}

/// The final hop's payload inside a blinded route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlindedReceivePayload {
    /// The data the recipient encrypted for itself.
    pub encrypted_recipient_data: Vec<u8>,
    /// The path key, when the recipient is also the introduction node.
    pub current_path_key: Option<PublicKey>,
    /// The amount of this HTLC.
    pub amt_to_forward: u64,
    /// The CLTV expiry the HTLC must have at least.
    pub outgoing_cltv_value: u32,
    /// The total payment amount.
    pub total_amount_msat: u64,
}

/// A payment hop payload checked against the rules for its position in the route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PaymentPayload {
    /// Forward outside a blinded route.
    Forward(ForwardPayload),
    /// Receive outside a blinded route.
    Receive(ReceivePayload),
    /// Forward inside a blinded route (the caller decrypts `encrypted_recipient_data`).
    BlindedForward(BlindedForwardPayload),
    /// Receive at the end of a blinded route.
    BlindedReceive(BlindedReceivePayload),
}

impl PaymentPayload {
    /// Decodes `bytes` and applies BOLT 4's reader rules for a hop that is the final one when
    /// `is_final` (the next HMAC was all zero) and that received a `path_key` in
    /// `update_add_htlc` when `incoming_path_key`.
    pub fn decode(
        bytes: &[u8],
        is_final: bool,
        incoming_path_key: bool,
    ) -> Result<PaymentPayload, PayloadError> {
        let payload = HopPayload::decode(bytes)?;
        let hop = match (payload.encrypted_recipient_data.is_some(), is_final) {
            (false, false) => "forward",
            (false, true) => "final",
            (true, false) => "blinded forward",
            (true, true) => "blinded final",
        };
        let missing = |tlv_type| PayloadError::MissingRecord { tlv_type, hop };
        let unexpected = |tlv_type| PayloadError::UnexpectedRecord {
            tlv_type,
            offset: offset_of(bytes, tlv_type),
            hop,
        };
        let only = |allowed: &[u64]| match payload
            .present_types()
            .into_iter()
            .find(|t| !allowed.contains(t))
        {
            Some(t) => Err(unexpected(t)),
            None => Ok(()),
        };

        if let Some(encrypted_recipient_data) = payload.encrypted_recipient_data.clone() {
            match (incoming_path_key, payload.current_path_key) {
                (true, Some(_)) => return Err(unexpected(CURRENT_PATH_KEY)),
                (false, None) => return Err(missing(CURRENT_PATH_KEY)),
                _ => {}
            }
            if !is_final {
                only(&[ENCRYPTED_RECIPIENT_DATA, CURRENT_PATH_KEY])?;
                return Ok(PaymentPayload::BlindedForward(BlindedForwardPayload {
                    encrypted_recipient_data,
                    current_path_key: payload.current_path_key,
                }));
            }
            only(&[
                AMT_TO_FORWARD,
                OUTGOING_CLTV_VALUE,
                ENCRYPTED_RECIPIENT_DATA,
                CURRENT_PATH_KEY,
                TOTAL_AMOUNT_MSAT,
            ])?;
            return Ok(PaymentPayload::BlindedReceive(BlindedReceivePayload {
                encrypted_recipient_data,
                current_path_key: payload.current_path_key,
                amt_to_forward: payload.amt_to_forward.ok_or(missing(AMT_TO_FORWARD))?,
                outgoing_cltv_value: payload
                    .outgoing_cltv_value
                    .ok_or(missing(OUTGOING_CLTV_VALUE))?,
                total_amount_msat: payload
                    .total_amount_msat
                    .ok_or(missing(TOTAL_AMOUNT_MSAT))?,
            }));
        }

        if incoming_path_key {
            return Err(missing(ENCRYPTED_RECIPIENT_DATA));
        }
        if payload.current_path_key.is_some() {
            return Err(unexpected(CURRENT_PATH_KEY));
        }
        let amt_to_forward = payload.amt_to_forward.ok_or(missing(AMT_TO_FORWARD))?;
        let outgoing_cltv_value = payload
            .outgoing_cltv_value
            .ok_or(missing(OUTGOING_CLTV_VALUE))?;
        if !is_final {
            if payload.payment_data.is_some() {
                return Err(unexpected(PAYMENT_DATA));
            }
            return Ok(PaymentPayload::Forward(ForwardPayload {
                short_channel_id: payload.short_channel_id.ok_or(missing(SHORT_CHANNEL_ID))?,
                amt_to_forward,
                outgoing_cltv_value,
                custom_records: payload.custom_records,
            }));
        }
        if payload.short_channel_id.is_some() {
            return Err(unexpected(SHORT_CHANNEL_ID));
        }
        Ok(PaymentPayload::Receive(ReceivePayload {
            amt_to_forward,
            outgoing_cltv_value,
            payment_secret: payload.payment_data.map(|d| d.payment_secret),
            total_msat: payload
                .payment_data
                .map(|d| d.total_msat)
                .or(payload.total_amount_msat)
                .unwrap_or(amt_to_forward),
            payment_metadata: payload.payment_metadata,
            custom_records: payload.custom_records,
        }))
    }
}

#[cfg(test)]
mod tests {
    use bitcoin::secp256k1::SecretKey;
    use proptest::prelude::*;

    use super::*;
    use crate::tlv::write_record;

    fn stream(records: &[(u64, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (t, v) in records {
            write_record(&mut out, *t, v);
        }
        out
    }

    fn path_key() -> PublicKey {
        let secp = crate::secp::ctx();
        PublicKey::from_secret_key(&secp, &SecretKey::from_slice(&[3; 32]).unwrap())
    }

    #[test]
    fn forward_and_final_rules() {
        let fwd = stream(&[
            (2, &[0x3a, 0x98]),
            (4, &[0x05, 0xdc]),
            (6, &[0, 0, 0, 0, 0, 0, 0, 1]),
        ]);
        assert_eq!(
            PaymentPayload::decode(&fwd, false, false),
            Ok(PaymentPayload::Forward(ForwardPayload {
                short_channel_id: ShortChannelId(1),
                amt_to_forward: 15000,
                outgoing_cltv_value: 1500,
                custom_records: vec![],
            }))
        );
        let err = PaymentPayload::decode(&fwd, true, false).unwrap_err();
        assert_eq!(
            err,
            PayloadError::UnexpectedRecord {
                tlv_type: 6,
                offset: 8,
                hop: "final"
            }
        );
        assert_eq!(
            err.to_string(),
            "hop payload short_channel_id (type 6) at offset 8 is not allowed in a final payload"
        );
        assert_eq!(
            err.failure_message(),
            FailureMessage::InvalidOnionPayload {
                location: Some(PayloadFailureLocation {
                    tlv_type: 6,
                    offset: 8
                })
            }
        );

        let no_scid = stream(&[(2, &[1]), (4, &[1])]);
        let err = PaymentPayload::decode(&no_scid, false, false).unwrap_err();
        assert_eq!(
            err,
            PayloadError::MissingRecord {
                tlv_type: 6,
                hop: "forward"
            }
        );
        assert_eq!(
            err.to_string(),
            "hop payload short_channel_id (type 6) is required in a forward payload"
        );
        assert_eq!(
            err.failure_message(),
            FailureMessage::InvalidOnionPayload { location: None }
        );
        assert_eq!(
            PaymentPayload::decode(&no_scid, true, false),
            Ok(PaymentPayload::Receive(ReceivePayload {
                amt_to_forward: 1,
                outgoing_cltv_value: 1,
                payment_secret: None,
                total_msat: 1,
                payment_metadata: None,
                custom_records: vec![],
            }))
        );
        assert_eq!(
            PaymentPayload::decode(&stream(&[(4, &[1])]), true, false),
            Err(PayloadError::MissingRecord {
                tlv_type: 2,
                hop: "final"
            })
        );
        let mut with_data = vec![7u8; 32];
        with_data.push(9);
        let fwd_with_data = stream(&[(2, &[1]), (4, &[1]), (6, &[0; 8]), (8, &with_data)]);
        assert_eq!(
            PaymentPayload::decode(&fwd_with_data, false, false),
            Err(PayloadError::UnexpectedRecord {
                tlv_type: 8,
                offset: 16,
                hop: "forward"
            })
        );
    }

    #[test]
    fn blinded_rules() {
        let key = path_key().serialize();
        let intro = stream(&[(10, &[1, 2, 3]), (12, &key)]);
        assert_eq!(
            PaymentPayload::decode(&intro, false, false),
            Ok(PaymentPayload::BlindedForward(BlindedForwardPayload {
                encrypted_recipient_data: vec![1, 2, 3],
                current_path_key: Some(path_key()),
            }))
        );
        assert_eq!(
            PaymentPayload::decode(&intro, false, true),
            Err(PayloadError::UnexpectedRecord {
                tlv_type: 12,
                offset: 5,
                hop: "blinded forward"
            })
        );
        let inner = stream(&[(10, &[1])]);
        assert_eq!(
            PaymentPayload::decode(&inner, false, false),
            Err(PayloadError::MissingRecord {
                tlv_type: 12,
                hop: "blinded forward"
            })
        );
        let with_amount = stream(&[(2, &[1]), (10, &[1])]);
        assert_eq!(
            PaymentPayload::decode(&with_amount, false, true),
            Err(PayloadError::UnexpectedRecord {
                tlv_type: 2,
                offset: 0,
                hop: "blinded forward"
            })
        );
        let final_hop = stream(&[(2, &[1]), (4, &[2]), (10, &[1]), (18, &[3])]);
        assert_eq!(
            PaymentPayload::decode(&final_hop, true, true),
            Ok(PaymentPayload::BlindedReceive(BlindedReceivePayload {
                encrypted_recipient_data: vec![1],
                current_path_key: None,
                amt_to_forward: 1,
                outgoing_cltv_value: 2,
                total_amount_msat: 3,
            }))
        );
        let no_total = stream(&[(2, &[1]), (4, &[2]), (10, &[1])]);
        assert_eq!(
            PaymentPayload::decode(&no_total, true, true),
            Err(PayloadError::MissingRecord {
                tlv_type: 18,
                hop: "blinded final"
            })
        );
        assert_eq!(
            PaymentPayload::decode(&stream(&[(2, &[1]), (4, &[1])]), true, true),
            Err(PayloadError::MissingRecord {
                tlv_type: 10,
                hop: "final"
            })
        );
        let clear_with_key = stream(&[(2, &[1]), (4, &[1]), (12, &key)]);
        assert_eq!(
            PaymentPayload::decode(&clear_with_key, true, false),
            Err(PayloadError::UnexpectedRecord {
                tlv_type: 12,
                offset: 6,
                hop: "final"
            })
        );
    }

    #[test]
    fn malformed_records_name_type_and_offset() {
        let bad_amount = stream(&[(2, &[0, 1])]);
        let err = HopPayload::decode(&bad_amount).unwrap_err();
        assert_eq!(
            err,
            PayloadError::InvalidRecord {
                tlv_type: 2,
                offset: 0,
                error: DecodeError::NonMinimalTruncatedInt {
                    field: "amt_to_forward"
                }
            }
        );
        assert_eq!(
            err.to_string(),
            "hop payload amt_to_forward (type 2) at offset 0: amt_to_forward: truncated integer is not minimally encoded"
        );
        let short_scid = stream(&[(2, &[1]), (6, &[1, 2, 3])]);
        assert!(matches!(
            HopPayload::decode(&short_scid),
            Err(PayloadError::InvalidRecord {
                tlv_type: 6,
                offset: 3,
                error: DecodeError::ShortRead { .. }
            })
        ));
        let long_scid = stream(&[(6, &[0; 9])]);
        assert!(matches!(
            HopPayload::decode(&long_scid),
            Err(PayloadError::InvalidRecord {
                tlv_type: 6,
                error: DecodeError::TrailingBytes { .. },
                ..
            })
        ));
        let bad_key = stream(&[(12, &[0; 33])]);
        assert!(matches!(
            HopPayload::decode(&bad_key),
            Err(PayloadError::InvalidRecord {
                tlv_type: 12,
                error: DecodeError::InvalidPublicKey { .. },
                ..
            })
        ));
        let short_payment_data = stream(&[(8, &[0; 31])]);
        assert!(matches!(
            HopPayload::decode(&short_payment_data),
            Err(PayloadError::InvalidRecord { tlv_type: 8, .. })
        ));
        let long_cltv = stream(&[(4, &[1, 2, 3, 4, 5])]);
        assert!(matches!(
            HopPayload::decode(&long_cltv),
            Err(PayloadError::InvalidRecord { tlv_type: 4, .. })
        ));
    }

    #[test]
    fn stream_errors_name_the_record_when_they_can() {
        let unknown_even = stream(&[(2, &[1]), (20, &[1])]);
        let err = HopPayload::decode(&unknown_even).unwrap_err();
        assert_eq!(
            err,
            PayloadError::Stream {
                error: DecodeError::UnknownEvenTlv { tlv_type: 20 },
                location: Some(PayloadFailureLocation {
                    tlv_type: 20,
                    offset: 3
                })
            }
        );
        assert_eq!(err.to_string(), "hop payload: unknown even tlv type 20");
        let out_of_order = stream(&[(4, &[1]), (2, &[1])]);
        assert_eq!(
            HopPayload::decode(&out_of_order)
                .unwrap_err()
                .failure_message(),
            FailureMessage::InvalidOnionPayload {
                location: Some(PayloadFailureLocation {
                    tlv_type: 2,
                    offset: 3
                })
            }
        );
        let truncated = [0x02, 0x05, 0x01];
        assert!(matches!(
            HopPayload::decode(&truncated),
            Err(PayloadError::Stream {
                error: DecodeError::ShortRead { .. },
                location: None
            })
        ));
    }

    #[test]
    fn unknown_odd_records_are_kept() {
        let bytes = stream(&[(2, &[1]), (4, &[1]), (301, &[0x2a; 3]), (65537, &[])]);
        let payload = HopPayload::decode(&bytes).unwrap();
        assert_eq!(
            payload.custom_records,
            vec![(301, vec![0x2a; 3]), (65537, vec![])]
        );
        assert_eq!(payload.encode(), bytes);
    }

    fn any_payload() -> impl Strategy<Value = HopPayload> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..20);
        (
            (
                proptest::option::of(any::<u64>()),
                proptest::option::of(any::<u32>()),
                proptest::option::of(any::<u64>()),
                proptest::option::of((any::<[u8; 32]>(), any::<u64>())),
            ),
            (
                proptest::option::of(bytes()),
                any::<bool>(),
                proptest::option::of(bytes()),
                proptest::option::of(any::<u64>()),
                proptest::collection::btree_map(
                    (10u64..100_000)
                        .prop_map(|t| t | 1)
                        .prop_filter("not defined", |t| !is_known(*t)),
                    bytes(),
                    0..3,
                ),
            ),
        )
            .prop_map(
                |((amt, cltv, scid, data), (erd, key, meta, total, custom))| HopPayload {
                    amt_to_forward: amt,
                    outgoing_cltv_value: cltv,
                    short_channel_id: scid.map(ShortChannelId),
                    payment_data: data.map(|(s, t)| PaymentData {
                        payment_secret: PaymentSecret(s),
                        total_msat: t,
                    }),
                    encrypted_recipient_data: erd,
                    current_path_key: key.then(path_key),
                    payment_metadata: meta,
                    total_amount_msat: total,
                    custom_records: custom.into_iter().collect(),
                },
            )
    }

    proptest! {
        #[test]
        fn payloads_round_trip(payload in any_payload()) {
            let bytes = payload.encode();
            prop_assert_eq!(HopPayload::decode(&bytes), Ok(payload.clone()));
            let with_len = payload.encode_with_length();
            prop_assert_eq!(BigSize::decode(&with_len[..with_len.len() - bytes.len()]), Ok(BigSize(bytes.len() as u64)));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120), is_final: bool, blinded: bool) {
            if let Ok(payload) = HopPayload::decode(&bytes) {
                prop_assert_eq!(payload.encode(), bytes.clone());
            }
            let _ = PaymentPayload::decode(&bytes, is_final, blinded);
        }
    }
}
