//! serde for the messages a channel stores (its pending updates and the last
//! `commitment_signed` it sent): each is stored as its BOLT payload bytes, so the stored form
//! of an update is fixed by the spec, not by this crate's struct layout.
//!
//! Deserializing decodes the payload with the message's own [`WireMessage::decode_payload`],
//! with every check the wire decoder makes.

use core::fmt;
use core::marker::PhantomData;

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{
    CommitmentSigned, RevokeAndAck, UpdateAddHtlc, UpdateFailHtlc, UpdateFailMalformedHtlc,
    UpdateFee, UpdateFulfillHtlc, WireMessage,
};

/// Reads a byte string (borrowed, owned or as a sequence of bytes) and decodes it as `M`.
struct PayloadVisitor<M>(PhantomData<M>);

impl<'de, M: WireMessage> Visitor<'de> for PayloadVisitor<M> {
    type Value = M;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the BOLT payload of message type {}", M::TYPE)
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<M, E> {
        M::decode_payload(v).map_err(|e| E::custom(format!("stored message type {}: {e}", M::TYPE)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<M, A::Error> {
        let mut bytes = Vec::new();
        while let Some(b) = seq.next_element::<u8>()? {
            if bytes.len() >= super::MAX_MESSAGE_LEN {
                return Err(A::Error::custom(format!(
                    "stored message type {} is longer than {} bytes",
                    M::TYPE,
                    super::MAX_MESSAGE_LEN
                )));
            }
            bytes.push(b);
        }
        self.visit_bytes(&bytes)
    }
}

macro_rules! serde_as_bolt_payload {
    ($($ty:ty),* $(,)?) => {$(
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.encode_payload())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_bytes(PayloadVisitor::<$ty>(PhantomData))
            }
        }
    )*};
}

serde_as_bolt_payload!(
    UpdateAddHtlc,
    UpdateFulfillHtlc,
    UpdateFailHtlc,
    UpdateFailMalformedHtlc,
    UpdateFee,
    CommitmentSigned,
    RevokeAndAck,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ChannelId, PaymentHash, PaymentPreimage};

    #[test]
    fn update_messages_round_trip_through_postcard_as_their_bolt_payload() {
        let add = UpdateAddHtlc {
            channel_id: ChannelId([7; 32]),
            id: 3,
            amount_msat: 12_345,
            payment_hash: PaymentHash([9; 32]),
            cltv_expiry: 500,
            onion_routing_packet: Box::new([0x42; crate::wire::ONION_PACKET_LEN]),
            path_key: None,
        };
        let bytes = postcard::to_allocvec(&add).expect("serializes");
        let payload = add.encode_payload();
        // postcard: a varint length, then the payload verbatim.
        assert!(bytes.ends_with(&payload));
        assert_eq!(postcard::from_bytes::<UpdateAddHtlc>(&bytes), Ok(add));

        let fulfill = UpdateFulfillHtlc {
            channel_id: ChannelId([1; 32]),
            id: 0,
            payment_preimage: PaymentPreimage([5; 32]),
            attribution_data: None,
        };
        let bytes = postcard::to_allocvec(&fulfill).expect("serializes");
        assert_eq!(
            postcard::from_bytes::<UpdateFulfillHtlc>(&bytes),
            Ok(fulfill)
        );
    }

    #[test]
    fn a_stored_payload_that_does_not_decode_is_an_error_naming_the_type() {
        // A 3-byte update_fee payload: too short for channel_id and feerate.
        let bytes = postcard::to_allocvec(&serde_bytes_like(&[1, 2, 3])).expect("serializes");
        let err = postcard::from_bytes::<UpdateFee>(&bytes).expect_err("too short");
        assert!(matches!(err, postcard::Error::SerdeDeCustom), "{err:?}");
    }

    /// A byte string as serde bytes.
    fn serde_bytes_like(b: &[u8]) -> ByteString {
        ByteString(b.to_vec())
    }

    struct ByteString(Vec<u8>);

    impl Serialize for ByteString {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }
}
