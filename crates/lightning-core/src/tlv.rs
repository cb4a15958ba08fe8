//! BOLT 1 TLV streams: records of (BigSize type, BigSize length, value), types strictly
//! increasing, and "it's OK to be odd": an unknown odd type is skipped, an unknown even type is
//! an error.
//!
//! [`decode_stream`] checks the framing rules and hands back borrowed records; the caller (a
//! message or payload decoder) parses the values of the types it knows with
//! [`TlvRecord::reader`] and [`Reader::finish`] (which rejects a value longer than its type
//! needs).

use crate::ser::{write_bigsize, DecodeError, Reader};

/// One record of a TLV stream, borrowing its value from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlvRecord<'a> {
    /// The record's type.
    pub tlv_type: u64,
    /// The record's value bytes.
    pub value: &'a [u8],
}

impl<'a> TlvRecord<'a> {
    /// A [`Reader`] over the value.
    pub fn reader(&self) -> Reader<'a> {
        Reader::new(self.value)
    }
}

/// Decodes a whole TLV stream from `bytes`.
///
/// `is_known(type)` says whether the caller understands a type. Unknown even types fail with
/// [`DecodeError::UnknownEvenTlv`]; unknown odd types are kept in the output (so a caller may
/// preserve or forward them) but the caller is free to ignore them. Lengths are checked against
/// the remaining input before anything is read.
pub fn decode_stream<'a>(
    bytes: &'a [u8],
    is_known: impl Fn(u64) -> bool,
) -> Result<Vec<TlvRecord<'a>>, DecodeError> {
    let mut reader = Reader::new(bytes);
    let mut records = Vec::new();
    let mut previous: Option<u64> = None;
    while !reader.is_empty() {
        let tlv_type = reader.read_bigsize("tlv type")?;
        let len = reader.read_bigsize("tlv length")?;
        let value = reader.read_bytes(len, "tlv value")?;
        if let Some(previous) = previous {
            if tlv_type <= previous {
                return Err(DecodeError::TlvNotIncreasing {
                    previous,
                    current: tlv_type,
                });
            }
        }
        previous = Some(tlv_type);
        if !is_known(tlv_type) && tlv_type % 2 == 0 {
            return Err(DecodeError::UnknownEvenTlv { tlv_type });
        }
        records.push(TlvRecord { tlv_type, value });
    }
    Ok(records)
}

/// Appends one TLV record.
pub fn write_record(out: &mut Vec<u8>, tlv_type: u64, value: &[u8]) {
    write_bigsize(out, tlv_type);
    write_bigsize(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// Builds a TLV stream whose records may be added in any order; [`TlvWriter::finish`] emits
/// them sorted by type.
///
/// # Panics
/// [`TlvWriter::finish`] panics if one type was added twice: that is a caller bug, never peer
/// input.
#[derive(Debug, Default, Clone)]
pub struct TlvWriter {
    records: Vec<(u64, Vec<u8>)>,
}

impl TlvWriter {
    /// An empty stream.
    pub fn new() -> Self {
        TlvWriter::default()
    }

    /// Adds a record.
    pub fn record(&mut self, tlv_type: u64, value: impl Into<Vec<u8>>) -> &mut Self {
        self.records.push((tlv_type, value.into()));
        self
    }

    /// Adds a record only when `value` is `Some`.
    pub fn optional(&mut self, tlv_type: u64, value: Option<impl Into<Vec<u8>>>) -> &mut Self {
        if let Some(value) = value {
            self.record(tlv_type, value);
        }
        self
    }

    /// Appends the stream, sorted by type, to `out`.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        self.records.sort_by_key(|(t, _)| *t);
        for pair in self.records.windows(2) {
            if let [a, b] = pair {
                assert_ne!(a.0, b.0, "tlv type {} added twice", a.0);
            }
        }
        for (t, v) in &self.records {
            write_record(out, *t, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn unknown_odd_is_kept_unknown_even_fails() {
        let mut s = Vec::new();
        write_record(&mut s, 3, &[1]);
        assert_eq!(decode_stream(&s, |_| false).unwrap().len(), 1);
        let mut s = Vec::new();
        write_record(&mut s, 4, &[1]);
        assert_eq!(
            decode_stream(&s, |_| false),
            Err(DecodeError::UnknownEvenTlv { tlv_type: 4 })
        );
        assert!(decode_stream(&s, |t| t == 4).is_ok());
    }

    #[test]
    fn order_and_duplicates_are_rejected() {
        let mut s = Vec::new();
        write_record(&mut s, 3, &[]);
        write_record(&mut s, 3, &[]);
        assert_eq!(
            decode_stream(&s, |_| true),
            Err(DecodeError::TlvNotIncreasing {
                previous: 3,
                current: 3
            })
        );
    }

    #[test]
    fn claimed_length_beyond_input_is_short_read() {
        // type 1, length 0xffffffff, one byte of value
        let s = [0x01, 0xfe, 0xff, 0xff, 0xff, 0xff, 0x00];
        assert!(matches!(
            decode_stream(&s, |_| true),
            Err(DecodeError::ShortRead { .. })
        ));
    }

    proptest! {
        #[test]
        fn streams_round_trip(
            records in proptest::collection::btree_map(any::<u64>(), proptest::collection::vec(any::<u8>(), 0..40), 0..8)
        ) {
            let mut w = TlvWriter::new();
            for (t, v) in records.iter().rev() {
                w.record(*t, v.clone());
            }
            let mut out = Vec::new();
            w.finish(&mut out);
            let decoded = decode_stream(&out, |_| true).unwrap();
            let got: Vec<(u64, Vec<u8>)> = decoded.iter().map(|r| (r.tlv_type, r.value.to_vec())).collect();
            let want: Vec<(u64, Vec<u8>)> = records.into_iter().collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_stream(&bytes, |t| t % 3 == 0);
        }
    }
}
