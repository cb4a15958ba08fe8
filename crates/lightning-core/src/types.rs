//! Small identifier and payment types shared across the protocol modules.

use core::fmt;

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::PublicKey;
use serde::{Deserialize, Serialize};

/// A newtype over `[u8; $len]` whose `Debug` (`Name(hex)`) and `Display` (`hex`) print its
/// bytes as lowercase hex, in order.
macro_rules! byte_array_type {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(
            Clone,
            Copy,
            PartialEq,
            Eq,
            PartialOrd,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct $name(pub [u8; $len]);

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                for b in &self.0 {
                    write!(f, "{b:02x}")?;
                }
                write!(f, ")")
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                for b in &self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    };
}
pub(crate) use byte_array_type;

/// A public key in `Debug` output as its 33-byte compressed encoding in hex,
/// `PublicKey(02ab..)`, for the types that hold one and that users print (events, channel
/// listings, routes): secp256k1's own `Debug` shows its internal 64-byte form, which matches
/// no encoding a user sees elsewhere.
pub(crate) struct KeyHex<'a>(pub(crate) &'a PublicKey);

impl fmt::Debug for KeyHex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.0)
    }
}

byte_array_type!(
    /// A 32-byte channel id: temporary before funding, then the funding outpoint's txid XOR its
    /// output index (BOLT 2).
    ChannelId,
    32
);
byte_array_type!(
    /// SHA256 of a payment preimage.
    PaymentHash,
    32
);
byte_array_type!(
    /// The 32-byte secret whose hash locks an HTLC.
    PaymentPreimage,
    32
);
byte_array_type!(
    /// The payment secret carried in the final hop's onion payload (`payment_data`).
    PaymentSecret,
    32
);

impl ChannelId {
    /// The all-zero channel id, which in `error` and `warning` means "every channel".
    pub const ALL: ChannelId = ChannelId([0; 32]);

    /// The final channel id of a funding outpoint: its txid (in internal byte order) with the
    /// output index XORed into the last two bytes (BOLT 2, `funding_created`).
    pub fn from_funding_outpoint(txid: &bitcoin::Txid, vout: u16) -> ChannelId {
        let mut id = txid.to_byte_array();
        let [hi, lo] = vout.to_be_bytes();
        id[30] ^= hi;
        id[31] ^= lo;
        ChannelId(id)
    }
}

impl PaymentPreimage {
    /// The hash that this preimage unlocks.
    pub fn payment_hash(&self) -> PaymentHash {
        PaymentHash(sha256::Hash::hash(&self.0).to_byte_array())
    }
}

/// A short channel id: block height (3 bytes), transaction index (3 bytes), output index
/// (2 bytes) of the funding output, or an alias with the same shape.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct ShortChannelId(pub u64);

impl ShortChannelId {
    /// Builds a short channel id from its parts; each part is masked to its width.
    pub fn new(block: u32, tx_index: u32, output: u16) -> Self {
        ShortChannelId(
            (u64::from(block & 0xff_ffff) << 40)
                | (u64::from(tx_index & 0xff_ffff) << 16)
                | u64::from(output),
        )
    }

    /// The block height part.
    pub fn block(self) -> u32 {
        (self.0 >> 40) as u32
    }

    /// The transaction index part.
    pub fn tx_index(self) -> u32 {
        ((self.0 >> 16) & 0xff_ffff) as u32
    }

    /// The output index part.
    pub fn output(self) -> u16 {
        self.0 as u16
    }
}

impl fmt::Debug for ShortChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.block(), self.tx_index(), self.output())
    }
}

impl fmt::Display for ShortChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scid_parts_round_trip() {
        let scid = ShortChannelId::new(539_268, 845, 1);
        assert_eq!(
            (scid.block(), scid.tx_index(), scid.output()),
            (539_268, 845, 1)
        );
        assert_eq!(scid.to_string(), "539268x845x1");
    }

    #[test]
    fn channel_id_xors_output_index() {
        let txid: bitcoin::Txid = Hash::from_byte_array([0x11; 32]);
        let id = ChannelId::from_funding_outpoint(&txid, 0x0102);
        assert_eq!(id.0[30], 0x11 ^ 0x01);
        assert_eq!(id.0[31], 0x11 ^ 0x02);
        assert_eq!(id.0[..30], [0x11; 30]);
    }
}
