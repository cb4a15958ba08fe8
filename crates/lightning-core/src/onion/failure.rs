//! BOLT 4 failure messages: the `failure_code` with its flags, the typed data of every defined
//! code, and the optional TLV stream that may follow the data.
//!
//! The encrypted return packet that carries a failure message back to the origin is in
//! [`super::error_packet`].

use core::fmt;

use crate::ser::{write_bigsize, DecodeError, Reader};
use crate::tlv::{decode_stream, write_record};

/// A BOLT 4 `failure_code`. Its top byte holds the flags [`FailureCode::BADONION`],
/// [`FailureCode::PERM`], [`FailureCode::NODE`] and [`FailureCode::UPDATE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FailureCode(pub u16);

impl FailureCode {
    /// Unparsable onion encrypted by the sending peer.
    pub const BADONION: u16 = 0x8000;
    /// Permanent failure (otherwise transient).
    pub const PERM: u16 = 0x4000;
    /// Node failure (otherwise channel).
    pub const NODE: u16 = 0x2000;
    /// A channel forwarding parameter was violated.
    pub const UPDATE: u16 = 0x1000;

    /// `temporary_node_failure` (NODE|2).
    pub const TEMPORARY_NODE_FAILURE: FailureCode = FailureCode(Self::NODE | 2);
    /// `permanent_node_failure` (PERM|NODE|2).
    pub const PERMANENT_NODE_FAILURE: FailureCode = FailureCode(Self::PERM | Self::NODE | 2);
    /// `required_node_feature_missing` (PERM|NODE|3).
    pub const REQUIRED_NODE_FEATURE_MISSING: FailureCode = FailureCode(Self::PERM | Self::NODE | 3);
    /// `invalid_onion_version` (BADONION|PERM|4).
    pub const INVALID_ONION_VERSION: FailureCode = FailureCode(Self::BADONION | Self::PERM | 4);
    /// `invalid_onion_hmac` (BADONION|PERM|5).
    pub const INVALID_ONION_HMAC: FailureCode = FailureCode(Self::BADONION | Self::PERM | 5);
    /// `invalid_onion_key` (BADONION|PERM|6).
    pub const INVALID_ONION_KEY: FailureCode = FailureCode(Self::BADONION | Self::PERM | 6);
    /// `temporary_channel_failure` (UPDATE|7).
    pub const TEMPORARY_CHANNEL_FAILURE: FailureCode = FailureCode(Self::UPDATE | 7);
    /// `permanent_channel_failure` (PERM|8).
    pub const PERMANENT_CHANNEL_FAILURE: FailureCode = FailureCode(Self::PERM | 8);
    /// `required_channel_feature_missing` (PERM|9).
    pub const REQUIRED_CHANNEL_FEATURE_MISSING: FailureCode = FailureCode(Self::PERM | 9);
    /// `unknown_next_peer` (PERM|10).
    pub const UNKNOWN_NEXT_PEER: FailureCode = FailureCode(Self::PERM | 10);
    /// `amount_below_minimum` (UPDATE|11).
    pub const AMOUNT_BELOW_MINIMUM: FailureCode = FailureCode(Self::UPDATE | 11);
    /// `fee_insufficient` (UPDATE|12).
    pub const FEE_INSUFFICIENT: FailureCode = FailureCode(Self::UPDATE | 12);
    /// `incorrect_cltv_expiry` (UPDATE|13).
    pub const INCORRECT_CLTV_EXPIRY: FailureCode = FailureCode(Self::UPDATE | 13);
    /// `expiry_too_soon` (UPDATE|14).
    pub const EXPIRY_TOO_SOON: FailureCode = FailureCode(Self::UPDATE | 14);
    /// `incorrect_or_unknown_payment_details` (PERM|15).
    pub const INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS: FailureCode = FailureCode(Self::PERM | 15);
    /// `final_incorrect_cltv_expiry` (18).
    pub const FINAL_INCORRECT_CLTV_EXPIRY: FailureCode = FailureCode(18);
    /// `final_incorrect_htlc_amount` (19).
    pub const FINAL_INCORRECT_HTLC_AMOUNT: FailureCode = FailureCode(19);
    /// `channel_disabled` (UPDATE|20).
    pub const CHANNEL_DISABLED: FailureCode = FailureCode(Self::UPDATE | 20);
    /// `expiry_too_far` (21).
    pub const EXPIRY_TOO_FAR: FailureCode = FailureCode(21);
    /// `invalid_onion_payload` (PERM|22).
    pub const INVALID_ONION_PAYLOAD: FailureCode = FailureCode(Self::PERM | 22);
    /// `mpp_timeout` (23).
    pub const MPP_TIMEOUT: FailureCode = FailureCode(23);
    /// `invalid_onion_blinding` (BADONION|PERM|24).
    pub const INVALID_ONION_BLINDING: FailureCode = FailureCode(Self::BADONION | Self::PERM | 24);

    /// Whether the BADONION flag is set: the sending peer's onion could not be parsed (such a
    /// code travels in `update_fail_malformed_htlc`).
    pub fn is_badonion(self) -> bool {
        self.0 & Self::BADONION != 0
    }

    /// Whether the PERM flag is set: the failure is permanent.
    pub fn is_perm(self) -> bool {
        self.0 & Self::PERM != 0
    }

    /// Whether the NODE flag is set: the node failed, not a channel.
    pub fn is_node(self) -> bool {
        self.0 & Self::NODE != 0
    }

    /// Whether the UPDATE flag is set: a channel forwarding parameter was violated.
    pub fn is_update(self) -> bool {
        self.0 & Self::UPDATE != 0
    }

    /// The spec's name for a defined code.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::TEMPORARY_NODE_FAILURE => "temporary_node_failure",
            Self::PERMANENT_NODE_FAILURE => "permanent_node_failure",
            Self::REQUIRED_NODE_FEATURE_MISSING => "required_node_feature_missing",
            Self::INVALID_ONION_VERSION => "invalid_onion_version",
            Self::INVALID_ONION_HMAC => "invalid_onion_hmac",
            Self::INVALID_ONION_KEY => "invalid_onion_key",
            Self::TEMPORARY_CHANNEL_FAILURE => "temporary_channel_failure",
            Self::PERMANENT_CHANNEL_FAILURE => "permanent_channel_failure",
            Self::REQUIRED_CHANNEL_FEATURE_MISSING => "required_channel_feature_missing",
            Self::UNKNOWN_NEXT_PEER => "unknown_next_peer",
            Self::AMOUNT_BELOW_MINIMUM => "amount_below_minimum",
            Self::FEE_INSUFFICIENT => "fee_insufficient",
            Self::INCORRECT_CLTV_EXPIRY => "incorrect_cltv_expiry",
            Self::EXPIRY_TOO_SOON => "expiry_too_soon",
            Self::INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS => "incorrect_or_unknown_payment_details",
            Self::FINAL_INCORRECT_CLTV_EXPIRY => "final_incorrect_cltv_expiry",
            Self::FINAL_INCORRECT_HTLC_AMOUNT => "final_incorrect_htlc_amount",
            Self::CHANNEL_DISABLED => "channel_disabled",
            Self::EXPIRY_TOO_FAR => "expiry_too_far",
            Self::INVALID_ONION_PAYLOAD => "invalid_onion_payload",
            Self::MPP_TIMEOUT => "mpp_timeout",
            Self::INVALID_ONION_BLINDING => "invalid_onion_blinding",
            _ => return None,
        })
    }
}

impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} (0x{:04x})", self.0),
            None => write!(f, "unknown failure code 0x{:04x}", self.0),
        }
    }
}

/// Where in a decrypted hop payload the `invalid_onion_payload` failure lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PayloadFailureLocation {
    /// The TLV type at fault.
    pub tlv_type: u64,
    /// The byte offset of its record in the decrypted payload.
    pub offset: u16,
}

/// A failure message's code and data, typed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureMessage {
    /// General temporary failure of the processing node.
    TemporaryNodeFailure,
    /// General permanent failure of the processing node.
    PermanentNodeFailure,
    /// The processing node has a required feature which was not in this onion.
    RequiredNodeFeatureMissing,
    /// The onion's `version` byte was not understood.
    InvalidOnionVersion {
        /// SHA256 of the onion as received.
        sha256_of_onion: [u8; 32],
    },
    /// The onion's HMAC was incorrect.
    InvalidOnionHmac {
        /// SHA256 of the onion as received.
        sha256_of_onion: [u8; 32],
    },
    /// The onion's ephemeral key was unparsable.
    InvalidOnionKey {
        /// SHA256 of the onion as received.
        sha256_of_onion: [u8; 32],
    },
    /// The outgoing channel could not handle this HTLC now.
    TemporaryChannelFailure {
        /// The channel's `channel_update`, possibly empty.
        channel_update: Vec<u8>,
    },
    /// The outgoing channel cannot handle any HTLC.
    PermanentChannelFailure,
    /// The outgoing channel requires features not present in the onion.
    RequiredChannelFeatureMissing,
    /// The onion's `short_channel_id` leads nowhere from the processing node.
    UnknownNextPeer,
    /// The HTLC amount was below the outgoing channel's `htlc_minimum_msat`.
    AmountBelowMinimum {
        /// The HTLC amount.
        htlc_msat: u64,
        /// The channel's `channel_update`, possibly empty.
        channel_update: Vec<u8>,
    },
    /// The fee was below the outgoing channel's.
    FeeInsufficient {
        /// The HTLC amount.
        htlc_msat: u64,
        /// The channel's `channel_update`, possibly empty.
        channel_update: Vec<u8>,
    },
    /// The `cltv_expiry` does not leave the outgoing channel's `cltv_expiry_delta`.
    IncorrectCltvExpiry {
        /// The HTLC's `cltv_expiry`.
        cltv_expiry: u32,
        /// The channel's `channel_update`, possibly empty.
        channel_update: Vec<u8>,
    },
    /// The CLTV expiry is too close to the current block height.
    ExpiryTooSoon {
        /// The channel's `channel_update`, possibly empty.
        channel_update: Vec<u8>,
    },
    /// The final node does not know the payment, or its details do not match.
    IncorrectOrUnknownPaymentDetails {
        /// The HTLC amount.
        htlc_msat: u64,
        /// The final node's best block height.
        height: u32,
    },
    /// The final HTLC's CLTV expiry is below the onion's `outgoing_cltv_value`.
    FinalIncorrectCltvExpiry {
        /// The HTLC's `cltv_expiry`.
        cltv_expiry: u32,
    },
    /// The final HTLC's amount is below the onion's `amt_to_forward`.
    FinalIncorrectHtlcAmount {
        /// The HTLC's amount.
        incoming_htlc_amt: u64,
    },
    /// The outgoing channel is disabled.
    ChannelDisabled {
        /// Flags, currently always zero.
        disabled_flags: u16,
        /// The channel's `channel_update`, possibly empty.
        channel_update: Vec<u8>,
    },
    /// The CLTV expiry is too far in the future.
    ExpiryTooFar,
    /// The decrypted hop payload was not understood or is incomplete.
    InvalidOnionPayload {
        /// The TLV type and offset at fault, when the failure can be narrowed down (senders may
        /// leave the data out).
        location: Option<PayloadFailureLocation>,
    },
    /// The complete multi-part payment did not arrive in time.
    MppTimeout,
    /// An error occurred within a blinded path.
    InvalidOnionBlinding {
        /// SHA256 of the onion as received (may be all zero).
        sha256_of_onion: [u8; 32],
    },
    /// A code this implementation does not define; its data is kept as is.
    Unknown {
        /// The failure code.
        code: FailureCode,
        /// Everything after the code.
        data: Vec<u8>,
    },
}

/// Why a failure message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureEncodeError {
    /// A variable-length field is longer than its `u16` length prefix allows.
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        length: usize,
        /// The largest length allowed.
        limit: usize,
    },
}

impl fmt::Display for FailureEncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureEncodeError::FieldTooLong {
                field,
                length,
                limit,
            } => write!(f, "{field} length {length} exceeds the maximum {limit}"),
        }
    }
}

impl std::error::Error for FailureEncodeError {}

fn write_channel_update(out: &mut Vec<u8>, update: &[u8]) -> Result<(), FailureEncodeError> {
    let len = u16::try_from(update.len()).map_err(|_| FailureEncodeError::FieldTooLong {
        field: "channel_update",
        length: update.len(),
        limit: usize::from(u16::MAX),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(update);
    Ok(())
}

impl FailureMessage {
    /// The message's failure code.
    pub fn code(&self) -> FailureCode {
        match self {
            FailureMessage::TemporaryNodeFailure => FailureCode::TEMPORARY_NODE_FAILURE,
            FailureMessage::PermanentNodeFailure => FailureCode::PERMANENT_NODE_FAILURE,
            FailureMessage::RequiredNodeFeatureMissing => {
                FailureCode::REQUIRED_NODE_FEATURE_MISSING
            }
            FailureMessage::InvalidOnionVersion { .. } => FailureCode::INVALID_ONION_VERSION,
            FailureMessage::InvalidOnionHmac { .. } => FailureCode::INVALID_ONION_HMAC,
            FailureMessage::InvalidOnionKey { .. } => FailureCode::INVALID_ONION_KEY,
            FailureMessage::TemporaryChannelFailure { .. } => {
                FailureCode::TEMPORARY_CHANNEL_FAILURE
            }
            FailureMessage::PermanentChannelFailure => FailureCode::PERMANENT_CHANNEL_FAILURE,
            FailureMessage::RequiredChannelFeatureMissing => {
                FailureCode::REQUIRED_CHANNEL_FEATURE_MISSING
            }
            FailureMessage::UnknownNextPeer => FailureCode::UNKNOWN_NEXT_PEER,
            FailureMessage::AmountBelowMinimum { .. } => FailureCode::AMOUNT_BELOW_MINIMUM,
            FailureMessage::FeeInsufficient { .. } => FailureCode::FEE_INSUFFICIENT,
            FailureMessage::IncorrectCltvExpiry { .. } => FailureCode::INCORRECT_CLTV_EXPIRY,
            FailureMessage::ExpiryTooSoon { .. } => FailureCode::EXPIRY_TOO_SOON,
            FailureMessage::IncorrectOrUnknownPaymentDetails { .. } => {
                FailureCode::INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS
            }
            FailureMessage::FinalIncorrectCltvExpiry { .. } => {
                FailureCode::FINAL_INCORRECT_CLTV_EXPIRY
            }
            FailureMessage::FinalIncorrectHtlcAmount { .. } => {
                FailureCode::FINAL_INCORRECT_HTLC_AMOUNT
            }
            FailureMessage::ChannelDisabled { .. } => FailureCode::CHANNEL_DISABLED,
            FailureMessage::ExpiryTooFar => FailureCode::EXPIRY_TOO_FAR,
            FailureMessage::InvalidOnionPayload { .. } => FailureCode::INVALID_ONION_PAYLOAD,
            FailureMessage::MppTimeout => FailureCode::MPP_TIMEOUT,
            FailureMessage::InvalidOnionBlinding { .. } => FailureCode::INVALID_ONION_BLINDING,
            FailureMessage::Unknown { code, .. } => *code,
        }
    }

    /// The BADONION message to send back in an `update_fail_htlc` for an
    /// `update_fail_malformed_htlc` received from downstream, or `None` when `failure_code`
    /// lacks the BADONION flag (the peer broke the protocol).
    pub fn from_malformed(failure_code: u16, sha256_of_onion: [u8; 32]) -> Option<Self> {
        let code = FailureCode(failure_code);
        if !code.is_badonion() {
            return None;
        }
        Some(match code {
            FailureCode::INVALID_ONION_VERSION => {
                FailureMessage::InvalidOnionVersion { sha256_of_onion }
            }
            FailureCode::INVALID_ONION_HMAC => FailureMessage::InvalidOnionHmac { sha256_of_onion },
            FailureCode::INVALID_ONION_KEY => FailureMessage::InvalidOnionKey { sha256_of_onion },
            FailureCode::INVALID_ONION_BLINDING => {
                FailureMessage::InvalidOnionBlinding { sha256_of_onion }
            }
            _ => FailureMessage::Unknown {
                code,
                data: sha256_of_onion.to_vec(),
            },
        })
    }

    /// Appends the code and data.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), FailureEncodeError> {
        out.extend_from_slice(&self.code().0.to_be_bytes());
        match self {
            FailureMessage::TemporaryNodeFailure
            | FailureMessage::PermanentNodeFailure
            | FailureMessage::RequiredNodeFeatureMissing
            | FailureMessage::PermanentChannelFailure
            | FailureMessage::RequiredChannelFeatureMissing
            | FailureMessage::UnknownNextPeer
            | FailureMessage::ExpiryTooFar
            | FailureMessage::MppTimeout => {}
            FailureMessage::InvalidOnionVersion { sha256_of_onion }
            | FailureMessage::InvalidOnionHmac { sha256_of_onion }
            | FailureMessage::InvalidOnionKey { sha256_of_onion }
            | FailureMessage::InvalidOnionBlinding { sha256_of_onion } => {
                out.extend_from_slice(sha256_of_onion)
            }
            FailureMessage::TemporaryChannelFailure { channel_update }
            | FailureMessage::ExpiryTooSoon { channel_update } => {
                write_channel_update(out, channel_update)?
            }
            FailureMessage::AmountBelowMinimum {
                htlc_msat,
                channel_update,
            }
            | FailureMessage::FeeInsufficient {
                htlc_msat,
                channel_update,
            } => {
                out.extend_from_slice(&htlc_msat.to_be_bytes());
                write_channel_update(out, channel_update)?;
            }
            FailureMessage::IncorrectCltvExpiry {
                cltv_expiry,
                channel_update,
            } => {
                out.extend_from_slice(&cltv_expiry.to_be_bytes());
                write_channel_update(out, channel_update)?;
            }
            FailureMessage::IncorrectOrUnknownPaymentDetails { htlc_msat, height } => {
                out.extend_from_slice(&htlc_msat.to_be_bytes());
                out.extend_from_slice(&height.to_be_bytes());
            }
            FailureMessage::FinalIncorrectCltvExpiry { cltv_expiry } => {
                out.extend_from_slice(&cltv_expiry.to_be_bytes())
            }
            FailureMessage::FinalIncorrectHtlcAmount { incoming_htlc_amt } => {
                out.extend_from_slice(&incoming_htlc_amt.to_be_bytes())
            }
            FailureMessage::ChannelDisabled {
                disabled_flags,
                channel_update,
            } => {
                out.extend_from_slice(&disabled_flags.to_be_bytes());
                write_channel_update(out, channel_update)?;
            }
            FailureMessage::InvalidOnionPayload { location } => {
                if let Some(location) = location {
                    write_bigsize(out, location.tlv_type);
                    out.extend_from_slice(&location.offset.to_be_bytes());
                }
            }
            FailureMessage::Unknown { data, .. } => out.extend_from_slice(data),
        }
        Ok(())
    }

    /// Reads a code and its data; whatever follows the data is left in `reader`.
    pub fn read(reader: &mut Reader<'_>) -> Result<FailureMessage, DecodeError> {
        let code = FailureCode(reader.read_u16("failure_code")?);
        let update = |r: &mut Reader<'_>| -> Result<Vec<u8>, DecodeError> {
            Ok(r.read_u16_prefixed("channel_update")?.to_vec())
        };
        Ok(match code {
            FailureCode::TEMPORARY_NODE_FAILURE => FailureMessage::TemporaryNodeFailure,
            FailureCode::PERMANENT_NODE_FAILURE => FailureMessage::PermanentNodeFailure,
            FailureCode::REQUIRED_NODE_FEATURE_MISSING => {
                FailureMessage::RequiredNodeFeatureMissing
            }
            FailureCode::INVALID_ONION_VERSION => FailureMessage::InvalidOnionVersion {
                sha256_of_onion: reader.read_array("sha256_of_onion")?,
            },
            FailureCode::INVALID_ONION_HMAC => FailureMessage::InvalidOnionHmac {
                sha256_of_onion: reader.read_array("sha256_of_onion")?,
            },
            FailureCode::INVALID_ONION_KEY => FailureMessage::InvalidOnionKey {
                sha256_of_onion: reader.read_array("sha256_of_onion")?,
            },
            FailureCode::TEMPORARY_CHANNEL_FAILURE => FailureMessage::TemporaryChannelFailure {
                channel_update: update(reader)?,
            },
            FailureCode::PERMANENT_CHANNEL_FAILURE => FailureMessage::PermanentChannelFailure,
            FailureCode::REQUIRED_CHANNEL_FEATURE_MISSING => {
                FailureMessage::RequiredChannelFeatureMissing
            }
            FailureCode::UNKNOWN_NEXT_PEER => FailureMessage::UnknownNextPeer,
            FailureCode::AMOUNT_BELOW_MINIMUM => FailureMessage::AmountBelowMinimum {
                htlc_msat: reader.read_u64("htlc_msat")?,
                channel_update: update(reader)?,
            },
            FailureCode::FEE_INSUFFICIENT => FailureMessage::FeeInsufficient {
                htlc_msat: reader.read_u64("htlc_msat")?,
                channel_update: update(reader)?,
            },
            FailureCode::INCORRECT_CLTV_EXPIRY => FailureMessage::IncorrectCltvExpiry {
                cltv_expiry: reader.read_u32("cltv_expiry")?,
                channel_update: update(reader)?,
            },
            FailureCode::EXPIRY_TOO_SOON => FailureMessage::ExpiryTooSoon {
                channel_update: update(reader)?,
            },
            FailureCode::INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS => {
                FailureMessage::IncorrectOrUnknownPaymentDetails {
                    htlc_msat: reader.read_u64("htlc_msat")?,
                    height: reader.read_u32("height")?,
                }
            }
            FailureCode::FINAL_INCORRECT_CLTV_EXPIRY => FailureMessage::FinalIncorrectCltvExpiry {
                cltv_expiry: reader.read_u32("cltv_expiry")?,
            },
            FailureCode::FINAL_INCORRECT_HTLC_AMOUNT => FailureMessage::FinalIncorrectHtlcAmount {
                incoming_htlc_amt: reader.read_u64("incoming_htlc_amt")?,
            },
            FailureCode::CHANNEL_DISABLED => FailureMessage::ChannelDisabled {
                disabled_flags: reader.read_u16("disabled_flags")?,
                channel_update: update(reader)?,
            },
            FailureCode::EXPIRY_TOO_FAR => FailureMessage::ExpiryTooFar,
            FailureCode::INVALID_ONION_PAYLOAD => FailureMessage::InvalidOnionPayload {
                location: if reader.is_empty() {
                    None
                } else {
                    Some(PayloadFailureLocation {
                        tlv_type: reader.read_bigsize("invalid_onion_payload type")?,
                        offset: reader.read_u16("invalid_onion_payload offset")?,
                    })
                },
            },
            FailureCode::MPP_TIMEOUT => FailureMessage::MppTimeout,
            FailureCode::INVALID_ONION_BLINDING => FailureMessage::InvalidOnionBlinding {
                sha256_of_onion: reader.read_array("sha256_of_onion")?,
            },
            code => FailureMessage::Unknown {
                code,
                data: reader.rest().to_vec(),
            },
        })
    }
}

/// A whole `failuremsg`: the typed message and the optional TLV stream after its data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Failure {
    /// The code and its data.
    pub message: FailureMessage,
    /// The records of the TLV stream after the data, in increasing type order.
    pub tlvs: Vec<(u64, Vec<u8>)>,
}

impl From<FailureMessage> for Failure {
    fn from(message: FailureMessage) -> Self {
        Failure {
            message,
            tlvs: Vec::new(),
        }
    }
}

impl Failure {
    /// The failure code.
    pub fn code(&self) -> FailureCode {
        self.message.code()
    }

    /// The serialized `failuremsg`.
    ///
    /// The TLV records are written in the order given; they must have increasing types.
    pub fn encode(&self) -> Result<Vec<u8>, FailureEncodeError> {
        let mut out = Vec::new();
        self.message.write(&mut out)?;
        for (tlv_type, value) in &self.tlvs {
            write_record(&mut out, *tlv_type, value);
        }
        Ok(out)
    }

    /// Decodes a `failuremsg` as the origin reads it: the code and its data must be complete;
    /// the bytes after them are kept as TLV records when they form a valid TLV stream and are
    /// otherwise ignored (BOLT 4: the origin "MUST ignore any extra bytes").
    pub fn decode(bytes: &[u8]) -> Result<Failure, DecodeError> {
        let mut reader = Reader::new(bytes);
        let message = FailureMessage::read(&mut reader)?;
        let tlvs = decode_stream(reader.rest(), |_| true)
            .map(|records| {
                records
                    .into_iter()
                    .map(|r| (r.tlv_type, r.value.to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Failure { message, tlvs })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn flags_and_names() {
        let c = FailureCode::INVALID_ONION_HMAC;
        assert_eq!(c.0, 0xc005);
        assert!(c.is_badonion() && c.is_perm() && !c.is_node() && !c.is_update());
        assert_eq!(c.to_string(), "invalid_onion_hmac (0xc005)");
        assert_eq!(FailureCode::TEMPORARY_NODE_FAILURE.0, 0x2002);
        assert!(FailureCode::TEMPORARY_NODE_FAILURE.is_node());
        assert_eq!(FailureCode::INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS.0, 0x400f);
        assert!(FailureCode::CHANNEL_DISABLED.is_update());
        assert_eq!(
            FailureCode(0x1234).to_string(),
            "unknown failure code 0x1234"
        );
    }

    #[test]
    fn truncated_data_is_a_typed_error() {
        assert_eq!(
            Failure::decode(&[0xc0, 0x05, 1, 2]),
            Err(DecodeError::ShortRead {
                field: "sha256_of_onion",
                needed: 32,
                remaining: 2
            })
        );
        assert_eq!(
            Failure::decode(&[0x10, 0x07, 0x00, 0x05, 1])
                .unwrap_err()
                .to_string(),
            "channel_update: needed 5 bytes but only 1 remain"
        );
        assert!(matches!(
            Failure::decode(&[0x20]),
            Err(DecodeError::ShortRead {
                field: "failure_code",
                ..
            })
        ));
    }

    #[test]
    fn extra_bytes_that_are_not_tlv_are_ignored() {
        let f = Failure::decode(&[0x20, 0x02, 0xff]).unwrap();
        assert_eq!(f, Failure::from(FailureMessage::TemporaryNodeFailure));
    }

    #[test]
    fn invalid_onion_payload_data_is_optional() {
        let f = Failure::decode(&[0x40, 0x16]).unwrap();
        assert_eq!(
            f.message,
            FailureMessage::InvalidOnionPayload { location: None }
        );
        let f = Failure::decode(&[0x40, 0x16, 0x06, 0x00, 0x0a]).unwrap();
        assert_eq!(
            f.message,
            FailureMessage::InvalidOnionPayload {
                location: Some(PayloadFailureLocation {
                    tlv_type: 6,
                    offset: 10
                })
            }
        );
    }

    #[test]
    fn malformed_codes_need_the_badonion_flag() {
        assert_eq!(FailureMessage::from_malformed(0x400f, [0; 32]), None);
        assert_eq!(
            FailureMessage::from_malformed(0xc006, [7; 32]),
            Some(FailureMessage::InvalidOnionKey {
                sha256_of_onion: [7; 32]
            })
        );
    }

    #[test]
    fn oversized_channel_update_is_a_typed_error() {
        let f = Failure::from(FailureMessage::ExpiryTooSoon {
            channel_update: vec![0; 70_000],
        });
        let err = f.encode().unwrap_err();
        assert_eq!(
            err.to_string(),
            "channel_update length 70000 exceeds the maximum 65535"
        );
    }

    fn any_message() -> impl Strategy<Value = FailureMessage> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..40);
        prop_oneof![
            Just(FailureMessage::TemporaryNodeFailure),
            Just(FailureMessage::PermanentNodeFailure),
            Just(FailureMessage::RequiredNodeFeatureMissing),
            any::<[u8; 32]>()
                .prop_map(|h| FailureMessage::InvalidOnionVersion { sha256_of_onion: h }),
            any::<[u8; 32]>().prop_map(|h| FailureMessage::InvalidOnionHmac { sha256_of_onion: h }),
            any::<[u8; 32]>().prop_map(|h| FailureMessage::InvalidOnionKey { sha256_of_onion: h }),
            bytes().prop_map(|u| FailureMessage::TemporaryChannelFailure { channel_update: u }),
            Just(FailureMessage::PermanentChannelFailure),
            Just(FailureMessage::RequiredChannelFeatureMissing),
            Just(FailureMessage::UnknownNextPeer),
            (any::<u64>(), bytes()).prop_map(|(a, u)| FailureMessage::AmountBelowMinimum {
                htlc_msat: a,
                channel_update: u
            }),
            (any::<u64>(), bytes()).prop_map(|(a, u)| FailureMessage::FeeInsufficient {
                htlc_msat: a,
                channel_update: u
            }),
            (any::<u32>(), bytes()).prop_map(|(c, u)| FailureMessage::IncorrectCltvExpiry {
                cltv_expiry: c,
                channel_update: u
            }),
            bytes().prop_map(|u| FailureMessage::ExpiryTooSoon { channel_update: u }),
            (any::<u64>(), any::<u32>()).prop_map(|(a, h)| {
                FailureMessage::IncorrectOrUnknownPaymentDetails {
                    htlc_msat: a,
                    height: h,
                }
            }),
            any::<u32>().prop_map(|c| FailureMessage::FinalIncorrectCltvExpiry { cltv_expiry: c }),
            any::<u64>().prop_map(|a| FailureMessage::FinalIncorrectHtlcAmount {
                incoming_htlc_amt: a
            }),
            (any::<u16>(), bytes()).prop_map(|(d, u)| FailureMessage::ChannelDisabled {
                disabled_flags: d,
                channel_update: u
            }),
            Just(FailureMessage::ExpiryTooFar),
            proptest::option::of((any::<u64>(), any::<u16>())).prop_map(|l| {
                FailureMessage::InvalidOnionPayload {
                    location: l
                        .map(|(tlv_type, offset)| PayloadFailureLocation { tlv_type, offset }),
                }
            }),
            Just(FailureMessage::MppTimeout),
            any::<[u8; 32]>()
                .prop_map(|h| FailureMessage::InvalidOnionBlinding { sha256_of_onion: h }),
            (any::<u16>(), bytes()).prop_filter_map("a defined code", |(c, d)| {
                FailureCode(c)
                    .name()
                    .is_none()
                    .then_some(FailureMessage::Unknown {
                        code: FailureCode(c),
                        data: d,
                    })
            }),
        ]
    }

    proptest! {
        #[test]
        fn messages_round_trip(
            message in any_message(),
            tlvs in proptest::collection::btree_map(any::<u64>(), proptest::collection::vec(any::<u8>(), 0..20), 0..3),
        ) {
            // An unknown code swallows everything after it, and an invalid_onion_payload without
            // a location cannot be followed by records; both round trip without records.
            let tlvs = match message {
                FailureMessage::Unknown { .. }
                | FailureMessage::InvalidOnionPayload { location: None } => Vec::new(),
                _ => tlvs.into_iter().collect(),
            };
            let failure = Failure { message, tlvs };
            let bytes = failure.encode().unwrap();
            prop_assert_eq!(Failure::decode(&bytes), Ok(failure));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(failure) = Failure::decode(&bytes) {
                prop_assert_eq!(failure.code().0.to_be_bytes(), [bytes[0], bytes[1]]);
            }
        }
    }
}
