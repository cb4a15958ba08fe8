//! BOLT 1 fundamental types: a bounds-checked [`Reader`], big-endian integers, truncated
//! integers, [`BigSize`], and the [`DecodeError`] every decoder in this crate returns.
//!
//! Every read checks the claimed length against what remains before it touches or allocates
//! anything, so a decoder built on [`Reader`] never panics and never reads past its input.

use core::fmt;

use bitcoin::secp256k1::{ecdsa::Signature, PublicKey};

/// Why bytes could not be decoded.
///
/// Every variant names what was being read; none carries a panic path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before `field` was complete.
    ShortRead {
        /// What was being read.
        field: &'static str,
        /// Bytes the field needed.
        needed: u64,
        /// Bytes that remained.
        remaining: usize,
    },
    /// A BigSize used more bytes than its value needs (BOLT 1 requires the minimal form).
    NonCanonicalBigSize {
        /// The decoded value.
        value: u64,
    },
    /// A truncated integer (`tu16`/`tu32`/`tu64`) had a leading zero byte or was too long.
    NonMinimalTruncatedInt {
        /// What was being read.
        field: &'static str,
    },
    /// A TLV stream's types were not strictly increasing.
    TlvNotIncreasing {
        /// The previous record's type.
        previous: u64,
        /// The offending record's type.
        current: u64,
    },
    /// An unknown even TLV type: "it's OK to be odd", but an even type must be understood.
    UnknownEvenTlv {
        /// The type.
        tlv_type: u64,
    },
    /// An unknown even message type (BOLT 1: the peer requires something we lack).
    UnknownEvenMessage {
        /// The message type.
        message_type: u16,
    },
    /// A known TLV record or message had bytes left after its last field.
    TrailingBytes {
        /// What was being read.
        field: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
    /// A field held a value the protocol forbids.
    InvalidValue {
        /// The field.
        field: &'static str,
        /// Why the value is invalid.
        reason: &'static str,
    },
    /// A field did not hold a valid secp256k1 public key.
    InvalidPublicKey {
        /// The field.
        field: &'static str,
    },
    /// A field did not hold a valid compact ECDSA signature.
    InvalidSignature {
        /// The field.
        field: &'static str,
    },
    /// The peer requires a feature bit we do not know.
    UnknownRequiredFeature {
        /// The lowest unknown even bit.
        bit: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::ShortRead {
                field,
                needed,
                remaining,
            } => {
                write!(
                    f,
                    "{field}: needed {needed} bytes but only {remaining} remain"
                )
            }
            DecodeError::NonCanonicalBigSize { value } => {
                write!(f, "bigsize {value} is not minimally encoded")
            }
            DecodeError::NonMinimalTruncatedInt { field } => {
                write!(f, "{field}: truncated integer is not minimally encoded")
            }
            DecodeError::TlvNotIncreasing { previous, current } => write!(
                f,
                "tlv type {current} follows type {previous}: types must be strictly increasing"
            ),
            DecodeError::UnknownEvenTlv { tlv_type } => {
                write!(f, "unknown even tlv type {tlv_type}")
            }
            DecodeError::UnknownEvenMessage { message_type } => {
                write!(f, "unknown even message type {message_type}")
            }
            DecodeError::TrailingBytes { field, extra } => {
                write!(f, "{field}: {extra} unexpected trailing bytes")
            }
            DecodeError::InvalidValue { field, reason } => write!(f, "{field}: {reason}"),
            DecodeError::InvalidPublicKey { field } => {
                write!(f, "{field}: not a valid secp256k1 public key")
            }
            DecodeError::InvalidSignature { field } => {
                write!(f, "{field}: not a valid compact ecdsa signature")
            }
            DecodeError::UnknownRequiredFeature { bit } => {
                write!(f, "peer requires unknown feature bit {bit}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// A cursor over a byte slice whose every read is bounds-checked.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading `buf` from its first byte.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes everything not yet read.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless every byte has been read.
    pub fn finish(&self, field: &'static str) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                field,
                extra: self.buf.len(),
            })
        }
    }

    /// Takes the next `len` bytes, checking `len` against what remains first.
    pub fn read_bytes(&mut self, len: u64, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let short = DecodeError::ShortRead {
            field,
            needed: len,
            remaining: self.buf.len(),
        };
        let len = usize::try_from(len).map_err(|_| short.clone())?;
        if len > self.buf.len() {
            return Err(short);
        }
        let (head, tail) = self.buf.split_at(len);
        self.buf = tail;
        Ok(head)
    }

    /// Reads a fixed-size byte array.
    pub fn read_array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let bytes = self.read_bytes(N as u64, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads one byte.
    pub fn read_u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.read_array(field)?))
    }

    /// Reads a big-endian `u16`.
    pub fn read_u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.read_array(field)?))
    }

    /// Reads a big-endian `u32`.
    pub fn read_u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.read_array(field)?))
    }

    /// Reads a big-endian `u64`.
    pub fn read_u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.read_array(field)?))
    }

    /// Reads a [`BigSize`].
    pub fn read_bigsize(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let first = self.read_u8(field)?;
        match first {
            0xff => {
                let value = self.read_u64(field)?;
                if value < 0x1_0000_0000 {
                    return Err(DecodeError::NonCanonicalBigSize { value });
                }
                Ok(value)
            }
            0xfe => {
                let value = u64::from(self.read_u32(field)?);
                if value < 0x1_0000 {
                    return Err(DecodeError::NonCanonicalBigSize { value });
                }
                Ok(value)
            }
            0xfd => {
                let value = u64::from(self.read_u16(field)?);
                if value < 0xfd {
                    return Err(DecodeError::NonCanonicalBigSize { value });
                }
                Ok(value)
            }
            small => Ok(u64::from(small)),
        }
    }

    /// Reads a `u16` length and then that many bytes.
    pub fn read_u16_prefixed(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.read_u16(field)?;
        self.read_bytes(u64::from(len), field)
    }

    /// Reads a 33-byte compressed public key and checks it is on the curve.
    pub fn read_pubkey(&mut self, field: &'static str) -> Result<PublicKey, DecodeError> {
        let bytes: [u8; 33] = self.read_array(field)?;
        PublicKey::from_slice(&bytes).map_err(|_| DecodeError::InvalidPublicKey { field })
    }

    /// Reads a 64-byte compact ECDSA signature.
    pub fn read_signature(&mut self, field: &'static str) -> Result<Signature, DecodeError> {
        let bytes: [u8; 64] = self.read_array(field)?;
        Signature::from_compact(&bytes).map_err(|_| DecodeError::InvalidSignature { field })
    }
}

/// BOLT 1's BigSize: a variable-length unsigned integer, big-endian, always minimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BigSize(pub u64);

impl BigSize {
    /// The number of bytes `value` takes as a BigSize.
    pub fn encoded_len(value: u64) -> usize {
        match value {
            0..=0xfc => 1,
            0xfd..=0xffff => 3,
            0x1_0000..=0xffff_ffff => 5,
            _ => 9,
        }
    }

    /// Appends the minimal encoding of `self`.
    pub fn write(self, out: &mut Vec<u8>) {
        write_bigsize(out, self.0)
    }

    /// Decodes a BigSize that must fill `bytes` exactly.
    pub fn decode(bytes: &[u8]) -> Result<BigSize, DecodeError> {
        let mut reader = Reader::new(bytes);
        let value = reader.read_bigsize("bigsize")?;
        reader.finish("bigsize")?;
        Ok(BigSize(value))
    }
}

/// Appends `value` as a minimal BigSize.
pub fn write_bigsize(out: &mut Vec<u8>, value: u64) {
    match value {
        0..=0xfc => out.push(value as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(value as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(value as u32).to_be_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
}

/// Appends a `u16` length and then `bytes`.
///
/// # Panics
/// If `bytes` is longer than 65535: a caller bug, never peer input (everything decoded from a
/// peer with a `u16` length fits by construction).
pub fn write_u16_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).expect("u16-prefixed field longer than 65535 bytes");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Appends `value` as a truncated integer: big-endian with leading zero bytes removed
/// (zero is the empty string).
pub fn write_truncated(out: &mut Vec<u8>, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = (value.leading_zeros() / 8) as usize;
    out.extend_from_slice(bytes.get(skip..).unwrap_or_default());
}

/// Decodes a truncated integer of at most `max_len` bytes that fills `bytes` exactly.
pub fn read_truncated(
    bytes: &[u8],
    max_len: usize,
    field: &'static str,
) -> Result<u64, DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::NonMinimalTruncatedInt { field });
    }
    if bytes.first() == Some(&0) {
        return Err(DecodeError::NonMinimalTruncatedInt { field });
    }
    Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Decodes a `tu16`.
pub fn read_tu16(bytes: &[u8], field: &'static str) -> Result<u16, DecodeError> {
    read_truncated(bytes, 2, field).map(|v| v as u16)
}

/// Decodes a `tu32`.
pub fn read_tu32(bytes: &[u8], field: &'static str) -> Result<u32, DecodeError> {
    read_truncated(bytes, 4, field).map(|v| v as u32)
}

/// Decodes a `tu64`.
pub fn read_tu64(bytes: &[u8], field: &'static str) -> Result<u64, DecodeError> {
    read_truncated(bytes, 8, field)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn short_reads_are_typed_errors() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(
            r.read_u32("x"),
            Err(DecodeError::ShortRead {
                field: "x",
                needed: 4,
                remaining: 3
            })
        );
        assert_eq!(r.remaining(), 3, "a failed read consumes nothing");
        let err = r.read_bytes(u64::MAX, "huge").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("huge: needed {} bytes but only 3 remain", u64::MAX)
        );
    }

    #[test]
    fn u16_prefixed_length_is_checked_before_reading() {
        let mut r = Reader::new(&[0xff, 0xff, 1, 2]);
        assert!(matches!(
            r.read_u16_prefixed("data"),
            Err(DecodeError::ShortRead { .. })
        ));
    }

    #[test]
    fn truncated_ints_reject_leading_zeros_and_overlong() {
        assert_eq!(read_tu64(&[], "a"), Ok(0));
        assert_eq!(read_tu64(&[1, 0], "a"), Ok(256));
        assert!(read_tu64(&[0, 1], "a").is_err());
        assert!(read_tu32(&[1, 2, 3, 4, 5], "a").is_err());
        assert!(read_tu16(&[1, 2, 3], "a").is_err());
    }

    #[test]
    fn pubkey_and_signature_are_validated() {
        let mut r = Reader::new(&[0u8; 33]);
        assert_eq!(
            r.read_pubkey("k"),
            Err(DecodeError::InvalidPublicKey { field: "k" })
        );
        let mut r = Reader::new(&[0xffu8; 64]);
        assert_eq!(
            r.read_signature("s"),
            Err(DecodeError::InvalidSignature { field: "s" })
        );
    }

    proptest! {
        #[test]
        fn bigsize_round_trips(v in any::<u64>()) {
            let mut out = Vec::new();
            write_bigsize(&mut out, v);
            prop_assert_eq!(out.len(), BigSize::encoded_len(v));
            prop_assert_eq!(BigSize::decode(&out), Ok(BigSize(v)));
        }

        #[test]
        fn truncated_round_trips(v in any::<u64>()) {
            let mut out = Vec::new();
            write_truncated(&mut out, v);
            prop_assert_eq!(read_tu64(&out, "v"), Ok(v));
        }

        #[test]
        fn bigsize_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            let _ = BigSize::decode(&bytes);
        }
    }
}
