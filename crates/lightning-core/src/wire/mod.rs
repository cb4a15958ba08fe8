//! Typed BOLT 1 and BOLT 2 messages and their framing.
//!
//! A Lightning message (after BOLT 8 decryption) is a 2-byte big-endian `type`, the fixed
//! fields of that type's `payload`, then an optional `extension`: a TLV stream. Every message
//! here decodes its fixed fields, then reads whatever follows as its extension TLV stream:
//! the TLV types the message defines are parsed with exact lengths, unknown odd types are
//! ignored, and an unknown even type or bytes that are not a valid TLV stream are an error
//! (BOLT 1, "Lightning Message Format" and Appendix C).
//!
//! [`Message::decode`] reads the type and dispatches: an unknown even type is
//! [`DecodeError::UnknownEvenMessage`] (the connection must close), an unknown odd type is
//! [`Message::Unknown`] (to be ignored). BOLT 7 gossip types are passed through undecoded as
//! [`Message::Gossip`], so a peer sending, say, a `channel_update` for a private channel is
//! not mistaken for one requiring an unknown even message.
//!
//! Each message struct implements [`WireMessage`] for its payload alone.

mod address;
mod close;
mod codec;
pub mod features;
mod open;
mod reestablish;
mod serde_impls;
mod setup;
mod update;

pub use address::{Hostname, SocketAddress};
pub use close::{ClosingFeeRange, ClosingSigned, Shutdown};
pub use features::{ChannelType, Feature, FeatureError, Features, InitFeatures};
pub use open::{AcceptChannel, ChannelReady, FundingCreated, FundingSigned, OpenChannel};
pub use reestablish::{ChannelReestablish, FundingTxidFlags};
pub use setup::{ErrorMessage, Init, Ping, Pong, Warning};
pub use update::{
    AttributionData, CommitmentSigned, RevokeAndAck, UpdateAddHtlc, UpdateFailHtlc,
    UpdateFailMalformedHtlc, UpdateFee, UpdateFulfillHtlc, ONION_PACKET_LEN,
};

use crate::ser::{DecodeError, Reader};
use crate::types::ChannelId;

/// The largest message the BOLT 8 transport carries (type included).
pub const MAX_MESSAGE_LEN: usize = 65535;

/// BOLT 7 gossip message types: `channel_announcement` (256), `node_announcement` (257),
/// `channel_update` (258), `announcement_signatures` (259), `query_short_channel_ids` (261),
/// `reply_short_channel_ids_end` (262), `query_channel_range` (263), `reply_channel_range`
/// (264) and `gossip_timestamp_filter` (265).
pub const GOSSIP_MESSAGE_TYPES: [u16; 9] = [256, 257, 258, 259, 261, 262, 263, 264, 265];

/// One message type's payload codec.
pub trait WireMessage: Sized {
    /// The message's 2-byte type.
    const TYPE: u16;

    /// Appends the payload: fixed fields, then the extension TLV stream (no type).
    fn write_payload(&self, out: &mut Vec<u8>);

    /// Decodes a payload (everything after the 2-byte type).
    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError>;

    /// The payload bytes (no type).
    fn encode_payload(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_payload(&mut out);
        out
    }

    /// The whole message: type, then payload.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&Self::TYPE.to_be_bytes());
        self.write_payload(&mut out);
        out
    }
}

macro_rules! message_enum {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// Any BOLT 1 or BOLT 2 message this crate types, a BOLT 7 gossip message passed
        /// through, or an unknown odd type to ignore.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Message {
            $(
                #[doc = concat!("`", stringify!($ty), "`.")]
                $variant($ty),
            )*
            /// A BOLT 7 gossip message (see [`GOSSIP_MESSAGE_TYPES`]), payload undecoded.
            Gossip {
                /// The message type.
                message_type: u16,
                /// The payload.
                payload: Vec<u8>,
            },
            /// An unknown odd message type: BOLT 1 says to ignore it. Its payload is dropped.
            Unknown {
                /// The message type (always odd).
                message_type: u16,
            },
        }

        impl Message {
            /// The 2-byte message type.
            pub fn message_type(&self) -> u16 {
                match self {
                    $(Message::$variant(_) => <$ty as WireMessage>::TYPE,)*
                    Message::Gossip { message_type, .. } => *message_type,
                    Message::Unknown { message_type } => *message_type,
                }
            }

            /// Decodes a whole message: the 2-byte type, then its payload.
            ///
            /// An unknown even type fails with [`DecodeError::UnknownEvenMessage`]; an unknown
            /// odd type gives [`Message::Unknown`]. Input longer than [`MAX_MESSAGE_LEN`]
            /// (which no transport delivers) fails with [`DecodeError::InvalidValue`].
            pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
                if bytes.len() > MAX_MESSAGE_LEN {
                    return Err(DecodeError::InvalidValue {
                        field: "message",
                        reason: "longer than the 65535-byte maximum",
                    });
                }
                let mut reader = Reader::new(bytes);
                let message_type = reader.read_u16("message type")?;
                let payload = reader.rest();
                match message_type {
                    $(<$ty as WireMessage>::TYPE => {
                        <$ty as WireMessage>::decode_payload(payload).map(Message::$variant)
                    })*
                    t if GOSSIP_MESSAGE_TYPES.contains(&t) => Ok(Message::Gossip {
                        message_type: t,
                        payload: payload.to_vec(),
                    }),
                    t if t % 2 == 0 => Err(DecodeError::UnknownEvenMessage { message_type: t }),
                    t => Ok(Message::Unknown { message_type: t }),
                }
            }

            /// The whole message: type, then payload. [`Message::Unknown`] encodes as its
            /// type alone, since its payload was not kept.
            ///
            /// # Panics
            /// If a variable-length field is longer than its `u16` length allows (a caller
            /// bug; see each message's `write_payload`).
            pub fn encode(&self) -> Vec<u8> {
                let mut out = Vec::new();
                out.extend_from_slice(&self.message_type().to_be_bytes());
                match self {
                    $(Message::$variant(m) => m.write_payload(&mut out),)*
                    Message::Gossip { payload, .. } => out.extend_from_slice(payload),
                    Message::Unknown { .. } => {}
                }
                out
            }
        }

        $(
            impl From<$ty> for Message {
                fn from(m: $ty) -> Message {
                    Message::$variant(m)
                }
            }
        )*
    };
}

message_enum!(
    Warning(Warning),
    Init(Init),
    Error(ErrorMessage),
    Ping(Ping),
    Pong(Pong),
    OpenChannel(OpenChannel),
    AcceptChannel(AcceptChannel),
    FundingCreated(FundingCreated),
    FundingSigned(FundingSigned),
    ChannelReady(ChannelReady),
    Shutdown(Shutdown),
    ClosingSigned(ClosingSigned),
    UpdateAddHtlc(UpdateAddHtlc),
    UpdateFulfillHtlc(UpdateFulfillHtlc),
    UpdateFailHtlc(UpdateFailHtlc),
    CommitmentSigned(CommitmentSigned),
    RevokeAndAck(RevokeAndAck),
    UpdateFee(UpdateFee),
    UpdateFailMalformedHtlc(UpdateFailMalformedHtlc),
    ChannelReestablish(ChannelReestablish),
);

impl Message {
    /// The channel a channel message is about: `temporary_channel_id` for `open_channel`,
    /// `accept_channel` and `funding_created`, `channel_id` for the others (all zeros in
    /// `error`/`warning` means every channel). `None` for connection-level messages.
    pub fn channel_id(&self) -> Option<ChannelId> {
        match self {
            Message::Warning(m) => Some(m.channel_id),
            Message::Error(m) => Some(m.channel_id),
            Message::OpenChannel(m) => Some(m.temporary_channel_id),
            Message::AcceptChannel(m) => Some(m.temporary_channel_id),
            Message::FundingCreated(m) => Some(m.temporary_channel_id),
            Message::FundingSigned(m) => Some(m.channel_id),
            Message::ChannelReady(m) => Some(m.channel_id),
            Message::Shutdown(m) => Some(m.channel_id),
            Message::ClosingSigned(m) => Some(m.channel_id),
            Message::UpdateAddHtlc(m) => Some(m.channel_id),
            Message::UpdateFulfillHtlc(m) => Some(m.channel_id),
            Message::UpdateFailHtlc(m) => Some(m.channel_id),
            Message::CommitmentSigned(m) => Some(m.channel_id),
            Message::RevokeAndAck(m) => Some(m.channel_id),
            Message::UpdateFee(m) => Some(m.channel_id),
            Message::UpdateFailMalformedHtlc(m) => Some(m.channel_id),
            Message::ChannelReestablish(m) => Some(m.channel_id),
            Message::Init(_)
            | Message::Ping(_)
            | Message::Pong(_)
            | Message::Gossip { .. }
            | Message::Unknown { .. } => None,
        }
    }
}

/// Deterministic keys and signatures for the unit tests.
#[cfg(test)]
pub(crate) mod test_values {
    use bitcoin::secp256k1::{ecdsa::Signature, PublicKey, SecretKey};

    /// The point of secret key `[n; 32]` (`n` must be non-zero).
    pub(crate) fn point(n: u8) -> PublicKey {
        let secret = SecretKey::from_slice(&[n; 32]).expect("[n; 32] is a valid scalar for n > 0");
        PublicKey::from_secret_key(&crate::secp::ctx(), &secret)
    }

    /// A compact signature with `r = s = n` (`n` must be non-zero).
    pub(crate) fn sig(n: u8) -> Signature {
        let mut bytes = [0u8; 64];
        bytes[31] = n;
        bytes[63] = n;
        Signature::from_compact(&bytes).expect("small r and s are valid")
    }

    /// The payload with each prefix shorter than `fixed_len` removed from the end, decoded by
    /// `decode`: each must be an error naming a field.
    pub(crate) fn assert_truncations_fail<T: core::fmt::Debug>(
        payload: &[u8],
        fixed_len: usize,
        decode: impl Fn(&[u8]) -> Result<T, crate::ser::DecodeError>,
    ) {
        for len in 0..fixed_len {
            let prefix = payload
                .get(..len)
                .expect("len < fixed_len <= payload.len()");
            match decode(prefix) {
                Err(crate::ser::DecodeError::ShortRead { .. }) => {}
                other => panic!("prefix of {len} bytes: expected a short read, got {other:?}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_the_spec_numbers() {
        let types = [
            (Warning::TYPE, 1),
            (Init::TYPE, 16),
            (ErrorMessage::TYPE, 17),
            (Ping::TYPE, 18),
            (Pong::TYPE, 19),
            (OpenChannel::TYPE, 32),
            (AcceptChannel::TYPE, 33),
            (FundingCreated::TYPE, 34),
            (FundingSigned::TYPE, 35),
            (ChannelReady::TYPE, 36),
            (Shutdown::TYPE, 38),
            (ClosingSigned::TYPE, 39),
            (UpdateAddHtlc::TYPE, 128),
            (UpdateFulfillHtlc::TYPE, 130),
            (UpdateFailHtlc::TYPE, 131),
            (CommitmentSigned::TYPE, 132),
            (RevokeAndAck::TYPE, 133),
            (UpdateFee::TYPE, 134),
            (UpdateFailMalformedHtlc::TYPE, 135),
            (ChannelReestablish::TYPE, 136),
        ];
        for (got, want) in types {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn too_short_for_a_type_is_a_short_read() {
        assert_eq!(
            Message::decode(&[]),
            Err(DecodeError::ShortRead {
                field: "message type",
                needed: 2,
                remaining: 0
            })
        );
        assert_eq!(
            Message::decode(&[0x00]),
            Err(DecodeError::ShortRead {
                field: "message type",
                needed: 2,
                remaining: 1
            })
        );
    }

    #[test]
    fn unknown_even_fails_unknown_odd_is_ignored() {
        assert_eq!(
            Message::decode(&[0x00, 0x02, 1, 2, 3]),
            Err(DecodeError::UnknownEvenMessage { message_type: 2 })
        );
        assert_eq!(
            Message::decode(&[0x80, 0x00]),
            Err(DecodeError::UnknownEvenMessage {
                message_type: 32768
            })
        );
        assert_eq!(
            Message::decode(&[0x00, 0x7f, 0xff]),
            Ok(Message::Unknown { message_type: 127 })
        );
        assert_eq!(
            Message::decode(&[0xff, 0xff]),
            Ok(Message::Unknown {
                message_type: 65535
            })
        );
        assert_eq!(
            Message::Unknown { message_type: 127 }.encode(),
            vec![0, 0x7f]
        );
    }

    #[test]
    fn longer_than_a_message_can_be_is_rejected() {
        let mut bytes = vec![0x00, 0x13, 0xff, 0xfb];
        bytes.resize(65535, 0);
        assert!(matches!(Message::decode(&bytes), Ok(Message::Pong(_))));
        bytes.push(0);
        assert_eq!(
            Message::decode(&bytes),
            Err(DecodeError::InvalidValue {
                field: "message",
                reason: "longer than the 65535-byte maximum"
            })
        );
    }

    #[test]
    fn gossip_is_passed_through() {
        let bytes = [0x01, 0x02, 0xaa, 0xbb];
        let m = Message::decode(&bytes).unwrap();
        assert_eq!(
            m,
            Message::Gossip {
                message_type: 258,
                payload: vec![0xaa, 0xbb]
            }
        );
        assert_eq!(m.encode(), bytes);
        assert_eq!(m.channel_id(), None);
        // 260 is not a gossip type: an unknown even message.
        assert_eq!(
            Message::decode(&[0x01, 0x04]),
            Err(DecodeError::UnknownEvenMessage { message_type: 260 })
        );
    }

    #[test]
    fn known_message_errors_propagate() {
        // update_fee with a 3-byte feerate
        let mut bytes = vec![0x00, 0x86];
        bytes.extend_from_slice(&[0; 32]);
        bytes.extend_from_slice(&[0, 0, 1]);
        assert_eq!(
            Message::decode(&bytes),
            Err(DecodeError::ShortRead {
                field: "update_fee.feerate_per_kw",
                needed: 4,
                remaining: 3
            })
        );
        bytes.push(1);
        let m = Message::decode(&bytes).unwrap();
        assert_eq!(m.message_type(), 134);
        assert_eq!(m.channel_id(), Some(ChannelId([0; 32])));
        assert_eq!(m.encode(), bytes);
    }
}
