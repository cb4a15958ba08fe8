//! BOLT 1 Appendix A (BigSize) and Appendix B (TLV streams) test vectors, from
//! 01-messaging.md, run against `ser` and `tlv`, which every message's extension is built on.

use lightning_core::bitcoin::hex::FromHex;
use lightning_core::secp256k1::PublicKey;
use lightning_core::ser::{read_tu32, read_tu64, write_bigsize, BigSize, DecodeError, Reader};
use lightning_core::tlv::decode_stream;

fn hex(s: &str) -> Vec<u8> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    Vec::<u8>::from_hex(&compact).expect("test hex is valid")
}

// ---- Appendix A: BigSize ----

/// (name, value, bytes) of the Appendix A decoding and encoding successes.
const BIGSIZE_OK: [(&str, u64, &str); 8] = [
    ("zero", 0, "00"),
    ("one byte high", 252, "fc"),
    ("two byte low", 253, "fd00fd"),
    ("two byte high", 65535, "fdffff"),
    ("four byte low", 65536, "fe00010000"),
    ("four byte high", 4294967295, "feffffffff"),
    ("eight byte low", 4294967296, "ff0000000100000000"),
    (
        "eight byte high",
        18446744073709551615,
        "ffffffffffffffffff",
    ),
];

#[test]
fn bolt01_appendix_a_bigsize_decoding_successes() {
    for (name, value, bytes) in BIGSIZE_OK {
        assert_eq!(BigSize::decode(&hex(bytes)), Ok(BigSize(value)), "{name}");
    }
}

#[test]
fn bolt01_appendix_a_bigsize_decoding_failures() {
    let not_canonical = [
        ("two byte not canonical", "fd00fc"),
        ("four byte not canonical", "fe0000ffff"),
        ("eight byte not canonical", "ff00000000ffffffff"),
    ];
    for (name, bytes) in not_canonical {
        assert!(
            matches!(
                BigSize::decode(&hex(bytes)),
                Err(DecodeError::NonCanonicalBigSize { .. })
            ),
            "{name}"
        );
    }
    let eof = [
        ("two byte short read", "fd00"),
        ("four byte short read", "feffff"),
        ("eight byte short read", "ffffffffff"),
        ("one byte no read", ""),
        ("two byte no read", "fd"),
        ("four byte no read", "fe"),
        ("eight byte no read", "ff"),
    ];
    for (name, bytes) in eof {
        assert!(
            matches!(
                BigSize::decode(&hex(bytes)),
                Err(DecodeError::ShortRead { .. })
            ),
            "{name}"
        );
    }
}

#[test]
fn bolt01_appendix_a_bigsize_encoding() {
    for (name, value, bytes) in BIGSIZE_OK {
        let mut out = Vec::new();
        write_bigsize(&mut out, value);
        assert_eq!(out, hex(bytes), "{name}");
    }
}

// ---- Appendix B: TLV streams in namespaces n1 and n2 ----

#[derive(Debug, Default, PartialEq, Eq)]
struct N1 {
    tlv1_amount_msat: Option<u64>,
    tlv2_scid: Option<u64>,
    tlv3: Option<(PublicKey, u64, u64)>,
    tlv4_cltv_delta: Option<u16>,
}

fn decode_n1(bytes: &[u8]) -> Result<N1, DecodeError> {
    let mut out = N1::default();
    for record in decode_stream(bytes, |t| matches!(t, 1 | 2 | 3 | 254))? {
        let mut r = record.reader();
        match record.tlv_type {
            1 => out.tlv1_amount_msat = Some(read_tu64(r.rest(), "tlv1")?),
            2 => out.tlv2_scid = Some(r.read_u64("tlv2")?),
            3 => {
                out.tlv3 = Some((
                    r.read_pubkey("tlv3")?,
                    r.read_u64("tlv3")?,
                    r.read_u64("tlv3")?,
                ))
            }
            254 => out.tlv4_cltv_delta = Some(r.read_u16("tlv4")?),
            _ => continue,
        }
        r.finish("n1 record")?;
    }
    Ok(out)
}

#[derive(Debug, Default, PartialEq, Eq)]
struct N2 {
    tlv1_amount_msat: Option<u64>,
    tlv2_cltv_expiry: Option<u32>,
}

fn decode_n2(bytes: &[u8]) -> Result<N2, DecodeError> {
    let mut out = N2::default();
    for record in decode_stream(bytes, |t| matches!(t, 0 | 11))? {
        let mut r = Reader::new(record.value);
        match record.tlv_type {
            0 => out.tlv1_amount_msat = Some(read_tu64(r.rest(), "tlv1")?),
            11 => out.tlv2_cltv_expiry = Some(read_tu32(r.rest(), "tlv2")?),
            _ => {}
        }
    }
    Ok(out)
}

/// Which typed error a failing vector must give.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Short,
    NonCanonical,
    UnknownEven,
    NonMinimal,
    Trailing,
    BadPoint,
    Order,
}

fn is_kind(err: &DecodeError, kind: Kind) -> bool {
    matches!(
        (kind, err),
        (Kind::Short, DecodeError::ShortRead { .. })
            | (Kind::NonCanonical, DecodeError::NonCanonicalBigSize { .. })
            | (Kind::UnknownEven, DecodeError::UnknownEvenTlv { .. })
            | (Kind::NonMinimal, DecodeError::NonMinimalTruncatedInt { .. })
            | (Kind::Trailing, DecodeError::TrailingBytes { .. })
            | (Kind::BadPoint, DecodeError::InvalidPublicKey { .. })
            | (Kind::Order, DecodeError::TlvNotIncreasing { .. })
    )
}

/// "The following TLV streams in any namespace should trigger a decoding failure", and the
/// unknown-even ones "in either namespace".
fn any_namespace_failures() -> Vec<(String, Vec<u8>, Kind)> {
    let mut value_truncated = hex("0f fd0201");
    value_truncated.extend_from_slice(&[0u8; 258]); // 258 of the 513 bytes the length claims
    vec![
        ("type truncated: fd".into(), hex("fd"), Kind::Short),
        ("type truncated: fd01".into(), hex("fd01"), Kind::Short),
        (
            "not minimally encoded type".into(),
            hex("fd0001 00"),
            Kind::NonCanonical,
        ),
        ("missing length".into(), hex("fd0101"), Kind::Short),
        ("length truncated: 0f fd".into(), hex("0f fd"), Kind::Short),
        (
            "length truncated: 0f fd26".into(),
            hex("0f fd26"),
            Kind::Short,
        ),
        ("missing value".into(), hex("0f fd2602"), Kind::Short),
        (
            "not minimally encoded length".into(),
            hex("0f fd0001 00"),
            Kind::NonCanonical,
        ),
        ("value truncated".into(), value_truncated, Kind::Short),
        (
            "unknown even type: 12 00".into(),
            hex("12 00"),
            Kind::UnknownEven,
        ),
        (
            "unknown even type: fd0102 00".into(),
            hex("fd0102 00"),
            Kind::UnknownEven,
        ),
        (
            "unknown even type: fe01000002 00".into(),
            hex("fe01000002 00"),
            Kind::UnknownEven,
        ),
        (
            "unknown even type: ff0100000000000002 00".into(),
            hex("ff0100000000000002 00"),
            Kind::UnknownEven,
        ),
    ]
}

#[test]
fn bolt01_appendix_b_decoding_failures_in_any_namespace() {
    for (name, bytes, kind) in any_namespace_failures() {
        let n1 = decode_n1(&bytes).expect_err(&name);
        assert!(is_kind(&n1, kind), "n1 {name}: {n1:?}");
        let n2 = decode_n2(&bytes).expect_err(&name);
        assert!(is_kind(&n2, kind), "n2 {name}: {n2:?}");
    }
}

const N1_FAILURES: [(&str, &str, Kind); 21] = [
    ("greater than encoding length for tlv1", "01 09 ffffffffffffffffff", Kind::NonMinimal),
    ("tlv1 amount_msat not minimal (1)", "01 01 00", Kind::NonMinimal),
    ("tlv1 amount_msat not minimal (2)", "01 02 0001", Kind::NonMinimal),
    ("tlv1 amount_msat not minimal (3)", "01 03 000100", Kind::NonMinimal),
    ("tlv1 amount_msat not minimal (4)", "01 04 00010000", Kind::NonMinimal),
    ("tlv1 amount_msat not minimal (5)", "01 05 0001000000", Kind::NonMinimal),
    ("tlv1 amount_msat not minimal (6)", "01 06 000100000000", Kind::NonMinimal),
    ("tlv1 amount_msat not minimal (7)", "01 07 00010000000000", Kind::NonMinimal),
    ("tlv1 amount_msat not minimal (8)", "01 08 0001000000000000", Kind::NonMinimal),
    ("less than encoding length for tlv2", "02 07 01010101010101", Kind::Short),
    ("greater than encoding length for tlv2", "02 09 010101010101010101", Kind::Trailing),
    (
        "less than encoding length for tlv3 (33)",
        "03 21 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb",
        Kind::Short,
    ),
    (
        "less than encoding length for tlv3 (41)",
        "03 29 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb0000000000000001",
        Kind::Short,
    ),
    (
        "less than encoding length for tlv3 (48)",
        "03 30 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb000000000000000100000000000001",
        Kind::Short,
    ),
    (
        "tlv3 node_id is not a valid point",
        "03 31 043da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb00000000000000010000000000000002",
        Kind::BadPoint,
    ),
    (
        "greater than encoding length for tlv3",
        "03 32 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb0000000000000001000000000000000001",
        Kind::Trailing,
    ),
    ("less than encoding length for tlv4 (0)", "fd00fe 00", Kind::Short),
    ("less than encoding length for tlv4 (1)", "fd00fe 01 01", Kind::Short),
    ("greater than encoding length for tlv4", "fd00fe 03 010101", Kind::Trailing),
    ("unknown even field for n1", "00 00", Kind::UnknownEven),
    // "TLV Stream Decoding Failure" in n1:
    ("valid records, invalid ordering", "02 08 0000000000000226 01 01 2a", Kind::Order),
];

#[test]
fn bolt01_appendix_b_decoding_failures_in_n1() {
    for (name, bytes, kind) in N1_FAILURES {
        let err = decode_n1(&hex(bytes)).expect_err(name);
        assert!(is_kind(&err, kind), "{name}: {err:?}");
    }
}

const IGNORED_SUCCESSES: [(&str, &str); 7] = [
    ("empty message", ""),
    ("unknown odd type 21", "21 00"),
    ("unknown odd type fd0201", "fd0201 00"),
    ("unknown odd type fd00fd", "fd00fd 00"),
    ("unknown odd type fd00ff", "fd00ff 00"),
    ("unknown odd type fe02000001", "fe02000001 00"),
    (
        "unknown odd type ff0200000000000001",
        "ff0200000000000001 00",
    ),
];

#[test]
fn bolt01_appendix_b_decoding_successes_ignored_in_either_namespace() {
    for (name, bytes) in IGNORED_SUCCESSES {
        assert_eq!(decode_n1(&hex(bytes)), Ok(N1::default()), "n1 {name}");
        assert_eq!(decode_n2(&hex(bytes)), Ok(N2::default()), "n2 {name}");
    }
}

fn n1_successes() -> Vec<(&'static str, &'static str, N1)> {
    let amount = |v| N1 {
        tlv1_amount_msat: Some(v),
        ..N1::default()
    };
    let node_id = PublicKey::from_slice(&hex(
        "023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb",
    ))
    .expect("the spec's node_id is a valid point");
    vec![
        ("amount_msat=0", "01 00", amount(0)),
        ("amount_msat=1", "01 01 01", amount(1)),
        ("amount_msat=256", "01 02 0100", amount(256)),
        ("amount_msat=65536", "01 03 010000", amount(65536)),
        ("amount_msat=16777216", "01 04 01000000", amount(16777216)),
        ("amount_msat=4294967296", "01 05 0100000000", amount(4294967296)),
        ("amount_msat=1099511627776", "01 06 010000000000", amount(1099511627776)),
        ("amount_msat=281474976710656", "01 07 01000000000000", amount(281474976710656)),
        ("amount_msat=72057594037927936", "01 08 0100000000000000", amount(72057594037927936)),
        (
            "scid=0x0x550",
            "02 08 0000000000000226",
            N1 {
                tlv2_scid: Some(550),
                ..N1::default()
            },
        ),
        (
            "tlv3 node_id, 1, 2",
            "03 31 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb00000000000000010000000000000002",
            N1 {
                tlv3: Some((node_id, 1, 2)),
                ..N1::default()
            },
        ),
        (
            "cltv_delta=550",
            "fd00fe 02 0226",
            N1 {
                tlv4_cltv_delta: Some(550),
                ..N1::default()
            },
        ),
    ]
}

#[test]
fn bolt01_appendix_b_decoding_successes_in_n1() {
    for (name, bytes, want) in n1_successes() {
        assert_eq!(decode_n1(&hex(bytes)), Ok(want), "{name}");
    }
}

#[test]
fn bolt01_appendix_b_stream_failures() {
    // "Any appending of an invalid stream to a valid stream should trigger a decoding failure."
    for (_, valid, _) in n1_successes() {
        for (name, invalid, _) in any_namespace_failures() {
            let mut stream = hex(valid);
            stream.extend_from_slice(&invalid);
            assert!(decode_n1(&stream).is_err(), "{valid} + {name}");
        }
    }
    // "Any appending of a higher-numbered valid stream to a lower-numbered valid stream should
    // not trigger a decoding failure."
    let successes = n1_successes();
    for (_, low, low_value) in &successes {
        for (_, high, high_value) in &successes {
            let low_bytes = hex(low);
            let high_bytes = hex(high);
            if low_bytes.first() >= high_bytes.first() {
                continue;
            }
            let mut stream = low_bytes;
            stream.extend_from_slice(&high_bytes);
            let got = decode_n1(&stream).expect("increasing valid records decode");
            assert!(
                got.tlv1_amount_msat == low_value.tlv1_amount_msat.or(high_value.tlv1_amount_msat)
                    && got.tlv4_cltv_delta
                        == high_value.tlv4_cltv_delta.or(low_value.tlv4_cltv_delta),
                "{low} + {high}"
            );
        }
    }
    let n1_stream_failures = [
        (
            "valid TLV records but invalid ordering",
            "02 08 0000000000000226 01 01 2a",
        ),
        (
            "duplicate TLV type",
            "02 08 0000000000000231 02 08 0000000000000451",
        ),
        (
            "valid (ignored) TLV records but invalid ordering",
            "1f 00 0f 01 2a",
        ),
        ("duplicate TLV type (ignored)", "1f 00 1f 01 2a"),
    ];
    for (name, bytes) in n1_stream_failures {
        let err = decode_n1(&hex(bytes)).expect_err(name);
        assert!(is_kind(&err, Kind::Order), "{name}: {err:?}");
    }
    let err = decode_n2(&hex("ffffffffffffffffff 00 00 00")).expect_err("n2 ordering");
    assert!(is_kind(&err, Kind::Order), "{err:?}");
}
