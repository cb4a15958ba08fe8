//! The envelope around every stored record: magic bytes, record kind, format version, the
//! oldest format version that can read the record, payload length and checksum, then the
//! postcard payload.
//!
//! ```text
//! offset  size  field
//!      0     4  magic "LNSD"
//!      4     2  kind (big-endian): 1 channel record, 2 node record, 3 forward resolution,
//!                 4 monitor snapshot, 5 monitor update
//!      6     2  version: the format version the writer used
//!      8     2  min_reader_version: the oldest format version that can read the payload
//!     10     4  payload length (big-endian)
//!     14     8  checksum: the first 8 bytes of SHA256(bytes 0..14 || payload)
//!     22     n  payload (postcard)
//! ```
//!
//! The checksum is SHA256 truncated to 64 bits rather than a CRC: it needs no new
//! dependency (the crate already has `bitcoin::hashes`), a random corruption passes it with
//! probability 2^-64 whatever its pattern (a CRC-32 lets one in 2^32 through), and hashing a
//! few kilobytes costs microseconds next to an fsync. It detects accidents, not tampering: it
//! is not keyed.
//!
//! [`decode`] never panics and never allocates: every length is checked against the input
//! first, and every failure is a [`PersistError`].

use core::fmt;

use bitcoin::hashes::{sha256, Hash, HashEngine};

use crate::chain::MonitorError;
use crate::types::ChannelId;

/// The magic bytes that open every record.
pub const MAGIC: [u8; 4] = *b"LNSD";
/// The format version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u16 = 6;
/// The oldest format version this build can read (older ones would be migrated).
pub const OLDEST_READABLE_VERSION: u16 = 1;
/// The envelope's size before the payload.
pub const HEADER_LEN: usize = 22;
/// The largest payload an envelope holds (its length field is 32 bits).
pub const MAX_PAYLOAD_LEN: usize = u32::MAX as usize;

/// What a record holds. Adding a kind: see "Adding a record kind" in [`super`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RecordKind {
    /// A [`super::ChannelRecord`].
    Channel,
    /// A [`super::NodeRecord`].
    Node,
    /// A [`super::ForwardResolutionRecord`] (from format version 3).
    Resolution,
    /// A [`super::MonitorRecord`]: a snapshot of a channel's on-chain monitor (from format
    /// version 4).
    Monitor,
    /// A [`super::MonitorUpdateRecord`]: one update of a channel's on-chain monitor (from
    /// format version 4).
    MonitorUpdate,
    /// A [`super::MonitorRevokedRecord`]: the HTLCs of a chunk of the peer's revoked
    /// commitments, kept beside the monitor's snapshot (from format version 4).
    MonitorRevoked,
    /// A [`super::CompletedPaymentRecord`]: the id of one of our payments that completed,
    /// with the height then, kept for the retention window (from format version 5).
    CompletedPayment,
    /// A [`super::OfferedHtlcEntryRecord`]: one HTLC we offered, with where it came from
    /// (from format version 6; the node record held them all before).
    OfferedHtlc,
    /// A [`super::UpstreamHtlcEntryRecord`]: one HTLC we forwarded, with what answering it
    /// takes (from format version 6; the node record held them all before).
    UpstreamHtlc,
}

impl RecordKind {
    /// The kind's 2-byte code in the envelope.
    pub fn code(self) -> u16 {
        match self {
            RecordKind::Channel => 1,
            RecordKind::Node => 2,
            RecordKind::Resolution => 3,
            RecordKind::Monitor => 4,
            RecordKind::MonitorUpdate => 5,
            RecordKind::MonitorRevoked => 6,
            RecordKind::CompletedPayment => 7,
            RecordKind::OfferedHtlc => 8,
            RecordKind::UpstreamHtlc => 9,
        }
    }

    /// The kind with code `code`, if known.
    pub fn from_code(code: u16) -> Option<RecordKind> {
        match code {
            1 => Some(RecordKind::Channel),
            2 => Some(RecordKind::Node),
            3 => Some(RecordKind::Resolution),
            4 => Some(RecordKind::Monitor),
            5 => Some(RecordKind::MonitorUpdate),
            6 => Some(RecordKind::MonitorRevoked),
            7 => Some(RecordKind::CompletedPayment),
            8 => Some(RecordKind::OfferedHtlc),
            9 => Some(RecordKind::UpstreamHtlc),
            _ => None,
        }
    }

    /// The format version that introduced the kind: no record of the kind is older, so a
    /// migration step never sees a kind younger than its version (a record claiming to be
    /// one is refused with [`PersistError::KindNotInVersion`]).
    pub fn introduced_in(self) -> u16 {
        match self {
            RecordKind::Channel | RecordKind::Node => 1,
            RecordKind::Resolution => 3,
            RecordKind::Monitor | RecordKind::MonitorUpdate | RecordKind::MonitorRevoked => 4,
            RecordKind::CompletedPayment => 5,
            RecordKind::OfferedHtlc | RecordKind::UpstreamHtlc => 6,
        }
    }

    /// The oldest format version that reads the kind's payload as this build writes it: the
    /// `min_reader_version` [`encode`] puts in the envelope. Format version 4 only added
    /// kinds, so the kinds of version 3 keep 3 (a version-3 build still reads them, see
    /// "Compatibility policy" in [`super`]); a kind reads from the version that introduced
    /// it on (format version 5 appended a field to the node record and added
    /// [`RecordKind::CompletedPayment`], read from 5 on). Format version 6 moved the node
    /// record's offered and forwarded HTLCs into records of their own: a node record of
    /// version 6 reads from 6 on, since an older build would take its empty maps for no
    /// HTLCs in flight and lose the links between forwards' two ends.
    pub fn min_reader_version(self) -> u16 {
        match self {
            RecordKind::Channel | RecordKind::Resolution => 3,
            RecordKind::Monitor | RecordKind::MonitorUpdate | RecordKind::MonitorRevoked => 4,
            RecordKind::CompletedPayment => 5,
            RecordKind::Node | RecordKind::OfferedHtlc | RecordKind::UpstreamHtlc => 6,
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordKind::Channel => write!(f, "channel record"),
            RecordKind::Node => write!(f, "node record"),
            RecordKind::Resolution => write!(f, "forward resolution record"),
            RecordKind::Monitor => write!(f, "channel monitor record"),
            RecordKind::MonitorUpdate => write!(f, "channel monitor update record"),
            RecordKind::MonitorRevoked => write!(f, "channel monitor revoked-HTLCs record"),
            RecordKind::CompletedPayment => write!(f, "completed payment record"),
            RecordKind::OfferedHtlc => write!(f, "offered HTLC record"),
            RecordKind::UpstreamHtlc => write!(f, "forwarded HTLC record"),
        }
    }
}

/// Why an engine resolution record in its format-1 hand-written layout (written before
/// resolutions moved into the envelope) does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LegacyResolutionError {
    /// A field is cut short or malformed.
    Field(crate::ser::DecodeError),
    /// A tag byte names no known variant.
    UnknownTag {
        /// The field whose tag it is.
        field: &'static str,
        /// The tag.
        tag: u8,
    },
}

impl fmt::Display for LegacyResolutionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LegacyResolutionError::Field(e) => write!(f, "{e}"),
            LegacyResolutionError::UnknownTag { field, tag } => {
                write!(f, "unknown {field} tag {tag}")
            }
        }
    }
}

/// Why a stored record could not be read (or, rarely, written).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PersistError {
    /// The bytes do not start with [`MAGIC`]: not an lnshard record.
    BadMagic {
        /// The first bytes found (up to 4).
        found: Vec<u8>,
    },
    /// The record ends before its header or its payload is complete.
    Truncated {
        /// Bytes the record needs.
        needed: u64,
        /// Bytes there are.
        got: usize,
    },
    /// Bytes follow the payload the header announces.
    TrailingBytes {
        /// Bytes the header announces (header and payload).
        expected: u64,
        /// Bytes there are.
        got: usize,
    },
    /// The checksum does not match the header and payload: the record is corrupt.
    ChecksumMismatch {
        /// The checksum stored in the record.
        stored: u64,
        /// The checksum of the bytes read.
        computed: u64,
    },
    /// The record was written by a newer version that this one cannot read.
    TooNew {
        /// The format version that wrote it.
        written_by_version: u16,
        /// The oldest format version able to read it.
        min_reader_version: u16,
        /// Our format version.
        our_version: u16,
    },
    /// The record's format version is older than any this version can migrate.
    TooOld {
        /// The format version that wrote it.
        written_by_version: u16,
        /// The oldest format version we read.
        oldest_readable_version: u16,
    },
    /// The header's kind code is not one we know.
    UnknownKind {
        /// The kind code.
        code: u16,
    },
    /// The record holds another kind than the one asked for.
    WrongKind {
        /// The kind asked for.
        expected: RecordKind,
        /// The kind found.
        found: RecordKind,
    },
    /// The payload passed the checksum but does not decode as a record of its kind and
    /// version.
    Decode {
        /// The record's kind.
        kind: RecordKind,
        /// The format version whose layout was decoded (after any migration).
        version: u16,
        /// postcard's error.
        error: postcard::Error,
    },
    /// The payload decoded but bytes are left after the value, in a record of a version
    /// that does not allow appended fields (ours or older).
    PayloadTrailing {
        /// The record's kind.
        kind: RecordKind,
        /// The format version that wrote it.
        version: u16,
        /// Bytes left.
        left: usize,
    },
    /// The record's kind did not exist at the format version it claims.
    KindNotInVersion {
        /// The record's kind.
        kind: RecordKind,
        /// The format version it claims.
        version: u16,
        /// The format version that introduced the kind.
        introduced_in: u16,
    },
    /// A resolution in the engine's format-1 layout (outside the envelope) does not decode.
    LegacyResolution {
        /// Its version byte.
        version: u8,
        /// What is wrong.
        error: LegacyResolutionError,
    },
    /// A stored node id is not a valid compressed public key.
    BadNodeId {
        /// The stored value's length.
        len: usize,
    },
    /// A monitor record's keys are not the channel's: the public keys of the keys derived
    /// again from the node's seed (or of the stored secrets) differ from the record's. The
    /// wrong seed, or a corrupt record; never restored with keys that cannot sign.
    MonitorKeysMismatch {
        /// The monitor's channel.
        channel_id: ChannelId,
        /// The key index the keys were derived with (`None`: stored secrets).
        key_index: Option<u64>,
    },
    /// A monitor record contradicts itself (it decoded, but cannot be the stored form of a
    /// monitor).
    MonitorInconsistent {
        /// The monitor's channel.
        channel_id: ChannelId,
        /// What is wrong.
        what: &'static str,
    },
    /// A monitor update record of another channel was given to restore a monitor.
    MonitorUpdateWrongChannel {
        /// The monitor's channel.
        expected: ChannelId,
        /// The update's channel.
        found: ChannelId,
    },
    /// The monitor updates to restore leave a gap: an update after the snapshot is missing.
    MonitorUpdateGap {
        /// The monitor's channel.
        channel_id: ChannelId,
        /// The update number expected next.
        expected: u64,
        /// The next number there is.
        got: u64,
    },
    /// A stored monitor update does not apply to the monitor restored so far.
    MonitorUpdateRefused {
        /// The monitor's channel.
        channel_id: ChannelId,
        /// The update's number.
        update_id: u64,
        /// Why the monitor refused it.
        error: MonitorError,
    },
    /// Writing: the value could not be serialized.
    Encode {
        /// The record's kind.
        kind: RecordKind,
        /// postcard's error.
        error: postcard::Error,
    },
    /// Writing: the payload is longer than the 32-bit length field allows.
    TooLarge {
        /// The payload's length.
        len: usize,
    },
}

impl fmt::Display for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PersistError::BadMagic { found } => {
                write!(
                    f,
                    "not an lnshard record: magic bytes are {found:02x?}, expected \"LNSD\""
                )
            }
            PersistError::Truncated { needed, got } => {
                write!(f, "record is truncated: it needs {needed} bytes, got {got}")
            }
            PersistError::TrailingBytes { expected, got } => write!(
                f,
                "record has trailing bytes: header announces {expected} bytes, got {got}"
            ),
            PersistError::ChecksumMismatch { stored, computed } => write!(
                f,
                "record is corrupt: checksum is {stored:016x}, the bytes hash to {computed:016x}"
            ),
            PersistError::TooNew {
                written_by_version,
                min_reader_version,
                our_version,
            } => write!(
                f,
                "record was written by format version {written_by_version} and needs a reader of \
                 format version {min_reader_version} or later; this is format version \
                 {our_version}: upgrade lnshard to read it"
            ),
            PersistError::TooOld {
                written_by_version,
                oldest_readable_version,
            } => write!(
                f,
                "record was written by format version {written_by_version}; this version reads \
                 format versions {oldest_readable_version} and later"
            ),
            PersistError::UnknownKind { code } => write!(f, "unknown record kind {code}"),
            PersistError::WrongKind { expected, found } => {
                write!(f, "expected a {expected}, found a {found}")
            }
            PersistError::Decode {
                kind,
                version,
                error,
            } => write!(
                f,
                "{kind} payload does not decode as format version {version}: {error}"
            ),
            PersistError::PayloadTrailing {
                kind,
                version,
                left,
            } => write!(
                f,
                "{kind} of format version {version} has {left} bytes left after its value"
            ),
            PersistError::KindNotInVersion {
                kind,
                version,
                introduced_in,
            } => write!(
                f,
                "{kind} claims format version {version}, but the kind exists from format \
                 version {introduced_in} on"
            ),
            PersistError::LegacyResolution { version, error } => write!(
                f,
                "forward resolution record of the engine's layout version {version} does not \
                 decode: {error}"
            ),
            PersistError::BadNodeId { len } => {
                write!(f, "stored node id of {len} bytes is not a public key")
            }
            PersistError::MonitorKeysMismatch {
                channel_id,
                key_index,
            } => match key_index {
                Some(index) => write!(
                    f,
                    "monitor of channel {channel_id}: the keys derived with index {index} are \
                     not the channel's (another node seed?)"
                ),
                None => write!(
                    f,
                    "monitor of channel {channel_id}: its stored secrets are not the channel's keys"
                ),
            },
            PersistError::MonitorInconsistent { channel_id, what } => {
                write!(
                    f,
                    "monitor record of channel {channel_id} is inconsistent: {what}"
                )
            }
            PersistError::MonitorUpdateWrongChannel { expected, found } => write!(
                f,
                "monitor update of channel {found} given to the monitor of channel {expected}"
            ),
            PersistError::MonitorUpdateGap {
                channel_id,
                expected,
                got,
            } => write!(
                f,
                "monitor of channel {channel_id}: update {expected} is missing (the next stored \
                 one is {got})"
            ),
            PersistError::MonitorUpdateRefused {
                channel_id,
                update_id,
                error,
            } => write!(
                f,
                "monitor of channel {channel_id}: stored update {update_id} does not apply: {error}"
            ),
            PersistError::Encode { kind, error } => {
                write!(f, "{kind} cannot be encoded: {error}")
            }
            PersistError::TooLarge { len } => write!(
                f,
                "record payload of {len} bytes exceeds the {MAX_PAYLOAD_LEN}-byte limit"
            ),
        }
    }
}

impl std::error::Error for PersistError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PersistError::Decode { error, .. } | PersistError::Encode { error, .. } => Some(error),
            PersistError::MonitorUpdateRefused { error, .. } => Some(error),
            PersistError::LegacyResolution {
                error: LegacyResolutionError::Field(e),
                ..
            } => Some(e),
            _ => None,
        }
    }
}

/// A decoded envelope: the header's fields and the payload, checksum verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// What the record holds.
    pub kind: RecordKind,
    /// The format version that wrote it.
    pub version: u16,
    /// The oldest format version able to read it.
    pub min_reader_version: u16,
    /// The postcard payload.
    pub payload: &'a [u8],
}

fn checksum(header: &[u8], payload: &[u8]) -> [u8; 8] {
    let mut engine = sha256::Hash::engine();
    engine.input(header);
    engine.input(payload);
    let hash = sha256::Hash::from_engine(engine).to_byte_array();
    let mut out = [0u8; 8];
    for (o, h) in out.iter_mut().zip(hash) {
        *o = h;
    }
    out
}

/// Wraps `payload` in an envelope written by [`FORMAT_VERSION`] and readable by
/// `min_reader_version` and later.
pub fn encode_with_versions(
    kind: RecordKind,
    version: u16,
    min_reader_version: u16,
    payload: &[u8],
) -> Result<Vec<u8>, PersistError> {
    let len =
        u32::try_from(payload.len()).map_err(|_| PersistError::TooLarge { len: payload.len() })?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&kind.code().to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&min_reader_version.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    let sum = checksum(&out, payload);
    out.extend_from_slice(&sum);
    out.extend_from_slice(payload);
    Ok(out)
}

/// Wraps `payload` in an envelope of this format version, readable from the kind's
/// [`RecordKind::min_reader_version`] on.
pub fn encode(kind: RecordKind, payload: &[u8]) -> Result<Vec<u8>, PersistError> {
    encode_with_versions(kind, FORMAT_VERSION, kind.min_reader_version(), payload)
}

/// Reads `N` bytes at `at`, or reports how many the record needs.
fn take<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], PersistError> {
    let end = at.saturating_add(N);
    bytes
        .get(at..end)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(PersistError::Truncated {
            needed: end as u64,
            got: bytes.len(),
        })
}

/// Opens an envelope: checks magic, length and checksum, then that this version can read it
/// (`min_reader_version <= FORMAT_VERSION`). An older `version` is for the record's reader to
/// migrate (or refuse with [`PersistError::TooOld`]). Never panics.
pub fn decode(bytes: &[u8]) -> Result<Envelope<'_>, PersistError> {
    let prefix = bytes.get(..MAGIC.len()).unwrap_or(bytes);
    if prefix != MAGIC.get(..prefix.len()).unwrap_or(&MAGIC) {
        return Err(PersistError::BadMagic {
            found: prefix.to_vec(),
        });
    }
    let kind_code = u16::from_be_bytes(take(bytes, 4)?);
    let version = u16::from_be_bytes(take(bytes, 6)?);
    let min_reader_version = u16::from_be_bytes(take(bytes, 8)?);
    let len = u32::from_be_bytes(take(bytes, 10)?);
    let stored = take::<8>(bytes, 14)?;
    let total = HEADER_LEN as u64 + u64::from(len);
    if (bytes.len() as u64) < total {
        return Err(PersistError::Truncated {
            needed: total,
            got: bytes.len(),
        });
    }
    if (bytes.len() as u64) > total {
        return Err(PersistError::TrailingBytes {
            expected: total,
            got: bytes.len(),
        });
    }
    let header = bytes.get(..14).unwrap_or_default();
    let payload = bytes.get(HEADER_LEN..).unwrap_or_default();
    let computed = checksum(header, payload);
    if computed != stored {
        return Err(PersistError::ChecksumMismatch {
            stored: u64::from_be_bytes(stored),
            computed: u64::from_be_bytes(computed),
        });
    }
    if min_reader_version > FORMAT_VERSION {
        return Err(PersistError::TooNew {
            written_by_version: version,
            min_reader_version,
            our_version: FORMAT_VERSION,
        });
    }
    let kind =
        RecordKind::from_code(kind_code).ok_or(PersistError::UnknownKind { code: kind_code })?;
    Ok(Envelope {
        kind,
        version,
        min_reader_version,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode_gives_back_kind_versions_and_payload() {
        let bytes = encode(RecordKind::Node, b"hello").expect("small");
        assert_eq!(bytes.len(), HEADER_LEN + 5);
        assert_eq!(&bytes[..4], b"LNSD");
        let env = decode(&bytes).expect("valid");
        assert_eq!(env.kind, RecordKind::Node);
        assert_eq!(env.version, FORMAT_VERSION);
        assert_eq!(
            env.min_reader_version, 6,
            "format 6 moved the node record's HTLCs into records of their own"
        );
        assert_eq!(env.payload, b"hello");
        let channel = encode(RecordKind::Channel, b"c").expect("small");
        let env = decode(&channel).expect("valid");
        assert_eq!(
            (env.version, env.min_reader_version),
            (FORMAT_VERSION, 3),
            "formats 4 to 6 left the channel record as it was"
        );
        let monitor = encode(RecordKind::Monitor, b"m").expect("small");
        let env = decode(&monitor).expect("valid");
        assert_eq!((env.version, env.min_reader_version), (FORMAT_VERSION, 4));
    }

    #[test]
    fn kind_codes_round_trip_and_are_distinct() {
        let kinds = [
            RecordKind::Channel,
            RecordKind::Node,
            RecordKind::Resolution,
            RecordKind::Monitor,
            RecordKind::MonitorUpdate,
            RecordKind::MonitorRevoked,
            RecordKind::CompletedPayment,
            RecordKind::OfferedHtlc,
            RecordKind::UpstreamHtlc,
        ];
        for (i, k) in kinds.iter().enumerate() {
            assert_eq!(RecordKind::from_code(k.code()), Some(*k));
            assert_eq!(usize::from(k.code()), i + 1);
            assert!(k.min_reader_version() >= k.introduced_in().min(3));
            assert!(k.min_reader_version() <= FORMAT_VERSION);
        }
        assert_eq!(RecordKind::from_code(10), None);
        // A kind added by format version 5 is read from 5 on: version 4 refuses it (as
        // too new) rather than misreading it.
        assert_eq!(RecordKind::CompletedPayment.introduced_in(), 5);
        assert_eq!(RecordKind::CompletedPayment.min_reader_version(), 5);
        for k in [RecordKind::OfferedHtlc, RecordKind::UpstreamHtlc] {
            assert_eq!((k.introduced_in(), k.min_reader_version()), (6, 6));
        }
    }

    #[test]
    fn bad_magic_and_truncations_are_named() {
        let bytes = encode(RecordKind::Channel, &[1, 2, 3]).expect("small");
        assert_eq!(
            decode(b"LNSX"),
            Err(PersistError::BadMagic {
                found: b"LNSX".to_vec()
            })
        );
        assert_eq!(
            decode(b""),
            Err(PersistError::Truncated { needed: 6, got: 0 })
        );
        assert_eq!(
            decode(&bytes[..3]),
            Err(PersistError::Truncated { needed: 6, got: 3 })
        );
        assert_eq!(
            decode(&bytes[..20]),
            Err(PersistError::Truncated {
                needed: 22,
                got: 20
            })
        );
        assert_eq!(
            decode(&bytes[..24]),
            Err(PersistError::Truncated {
                needed: 25,
                got: 24
            })
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode(&longer),
            Err(PersistError::TrailingBytes {
                expected: 25,
                got: 26
            })
        );
    }

    #[test]
    fn a_flipped_bit_anywhere_after_the_magic_is_caught() {
        let bytes = encode(RecordKind::Channel, &[9; 40]).expect("small");
        for i in 4..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                let err = decode(&b).expect_err("corrupt");
                assert!(
                    matches!(
                        err,
                        PersistError::ChecksumMismatch { .. }
                            | PersistError::Truncated { .. }
                            | PersistError::TrailingBytes { .. }
                    ),
                    "byte {i} bit {bit}: {err:?}"
                );
            }
        }
    }

    #[test]
    fn too_new_names_both_versions() {
        let bytes = encode_with_versions(RecordKind::Node, 9, 7, b"x").expect("small");
        let err = decode(&bytes).expect_err("too new");
        assert_eq!(
            err,
            PersistError::TooNew {
                written_by_version: 9,
                min_reader_version: 7,
                our_version: FORMAT_VERSION
            }
        );
        let text = err.to_string();
        assert!(text.contains("format version 9"), "{text}");
        assert!(text.contains("format version 7"), "{text}");
        assert!(
            text.contains(&format!("format version {FORMAT_VERSION}")),
            "{text}"
        );
    }

    #[test]
    fn a_newer_writer_that_we_can_still_read_is_accepted() {
        let bytes = encode_with_versions(RecordKind::Node, 9, FORMAT_VERSION, b"x").expect("small");
        let env = decode(&bytes).expect("readable");
        assert_eq!(env.version, 9);
    }

    #[test]
    fn unknown_kinds_are_refused() {
        let mut bytes = encode(RecordKind::Node, b"x").expect("small");
        bytes[5] = 99;
        let sum = checksum(&bytes[..14], &bytes[22..]);
        bytes[14..22].copy_from_slice(&sum);
        assert_eq!(decode(&bytes), Err(PersistError::UnknownKind { code: 99 }));
    }
}
