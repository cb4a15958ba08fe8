//! BOLT 1 Appendix B: TLV decoding failures and successes in the spec's two test namespaces.
//!
//! The namespaces `n1` and `n2` exist only in the spec's tests; they are decoded here with the
//! same building blocks (`tlv::decode_stream`, `ser::Reader`, truncated integers) that every
//! real message and onion payload uses.

use lightning_core::bitcoin::hex::FromHex;
use lightning_core::secp256k1::PublicKey;
use lightning_core::ser::{read_tu32, read_tu64, DecodeError};
use lightning_core::tlv::decode_stream;
use lightning_core::types::ShortChannelId;

#[derive(Debug, Default, PartialEq)]
struct N1 {
    tlv1_amount_msat: Option<u64>,
    tlv2_scid: Option<ShortChannelId>,
    tlv3: Option<(PublicKey, u64, u64)>,
    tlv4_cltv_delta: Option<u16>,
}

fn decode_n1(bytes: &[u8]) -> Result<N1, DecodeError> {
    let mut out = N1::default();
    for record in decode_stream(bytes, |t| matches!(t, 1 | 2 | 3 | 254))? {
        let mut r = record.reader();
        match record.tlv_type {
            1 => out.tlv1_amount_msat = Some(read_tu64(r.rest(), "tlv1 amount_msat")?),
            2 => out.tlv2_scid = Some(ShortChannelId(r.read_u64("tlv2 scid")?)),
            3 => {
                let node_id = r.read_pubkey("tlv3 node_id")?;
                let a1 = r.read_u64("tlv3 amount_msat_1")?;
                let a2 = r.read_u64("tlv3 amount_msat_2")?;
                out.tlv3 = Some((node_id, a1, a2));
            }
            254 => out.tlv4_cltv_delta = Some(r.read_u16("tlv4 cltv_delta")?),
            _ => continue,
        }
        r.finish("n1 record")?;
    }
    Ok(out)
}

#[derive(Debug, Default, PartialEq)]
struct N2 {
    tlv1_amount_msat: Option<u64>,
    tlv2_cltv_expiry: Option<u32>,
}

fn decode_n2(bytes: &[u8]) -> Result<N2, DecodeError> {
    let mut out = N2::default();
    for record in decode_stream(bytes, |t| matches!(t, 0 | 11))? {
        match record.tlv_type {
            0 => out.tlv1_amount_msat = Some(read_tu64(record.value, "tlv1 amount_msat")?),
            11 => out.tlv2_cltv_expiry = Some(read_tu32(record.value, "tlv2 cltv_expiry")?),
            _ => {}
        }
    }
    Ok(out)
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.trim_start_matches("0x").split_whitespace().collect();
    Vec::<u8>::from_hex(&s).expect("vector hex is valid")
}

const VALUE_TRUNCATED: &str = concat!(
    "0x0f fd0201 ",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000"
);

/// "The following TLV streams in any namespace should trigger a decoding failure."
const ANY_NAMESPACE_FAILURES: &[(&str, &str)] = &[
    ("0xfd", "type truncated"),
    ("0xfd01", "type truncated"),
    ("0xfd0001 00", "not minimally encoded type"),
    ("0xfd0101", "missing length"),
    ("0x0f fd", "length truncated"),
    ("0x0f fd26", "length truncated"),
    ("0x0f fd2602", "missing value"),
    ("0x0f fd0001 00", "not minimally encoded length"),
    (VALUE_TRUNCATED, "value truncated"),
];

/// "The following TLV streams in either namespace should trigger a decoding failure."
const UNKNOWN_EVEN_FAILURES: &[&str] = &[
    "0x12 00",
    "0xfd0102 00",
    "0xfe01000002 00",
    "0xff0100000000000002 00",
];

/// "The following TLV streams in namespace `n1` should trigger a decoding failure."
const N1_FAILURES: &[(&str, &str)] = &[
    ("0x01 09 ffffffffffffffffff", "greater than encoding length for n1s tlv1"),
    ("0x01 01 00", "amount_msat is not minimal"),
    ("0x01 02 0001", "amount_msat is not minimal"),
    ("0x01 03 000100", "amount_msat is not minimal"),
    ("0x01 04 00010000", "amount_msat is not minimal"),
    ("0x01 05 0001000000", "amount_msat is not minimal"),
    ("0x01 06 000100000000", "amount_msat is not minimal"),
    ("0x01 07 00010000000000", "amount_msat is not minimal"),
    ("0x01 08 0001000000000000", "amount_msat is not minimal"),
    ("0x02 07 01010101010101", "less than encoding length for n1s tlv2"),
    ("0x02 09 010101010101010101", "greater than encoding length for n1s tlv2"),
    (
        "0x03 21 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb",
        "less than encoding length for n1s tlv3",
    ),
    (
        "0x03 29 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb0000000000000001",
        "less than encoding length for n1s tlv3",
    ),
    (
        "0x03 30 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb000000000000000100000000000001",
        "less than encoding length for n1s tlv3",
    ),
    (
        "0x03 31 043da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb00000000000000010000000000000002",
        "n1s node_id is not a valid point",
    ),
    (
        "0x03 32 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb0000000000000001000000000000000001",
        "greater than encoding length for n1s tlv3",
    ),
    ("0xfd00fe 00", "less than encoding length for n1s tlv4"),
    ("0xfd00fe 01 01", "less than encoding length for n1s tlv4"),
    ("0xfd00fe 03 010101", "greater than encoding length for n1s tlv4"),
    ("0x00 00", "unknown even field for n1s namespace"),
];

/// "The following TLV streams in either namespace should correctly decode, and be ignored."
const IGNORED_SUCCESSES: &[&str] = &[
    "0x",
    "0x21 00",
    "0xfd0201 00",
    "0xfd00fd 00",
    "0xfd00ff 00",
    "0xfe02000001 00",
    "0xff0200000000000001 00",
];

fn n1_successes() -> Vec<(&'static str, N1)> {
    let amount = |v| N1 {
        tlv1_amount_msat: Some(v),
        ..N1::default()
    };
    let node_id = PublicKey::from_slice(&hex(
        "023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb",
    ))
    .unwrap();
    vec![
        ("0x01 00", amount(0)),
        ("0x01 01 01", amount(1)),
        ("0x01 02 0100", amount(256)),
        ("0x01 03 010000", amount(65536)),
        ("0x01 04 01000000", amount(16777216)),
        ("0x01 05 0100000000", amount(4294967296)),
        ("0x01 06 010000000000", amount(1099511627776)),
        ("0x01 07 01000000000000", amount(281474976710656)),
        ("0x01 08 0100000000000000", amount(72057594037927936)),
        (
            "0x02 08 0000000000000226",
            N1 { tlv2_scid: Some(ShortChannelId::new(0, 0, 550)), ..N1::default() },
        ),
        (
            "0x03 31 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb00000000000000010000000000000002",
            N1 { tlv3: Some((node_id, 1, 2)), ..N1::default() },
        ),
        ("0xfd00fe 02 0226", N1 { tlv4_cltv_delta: Some(550), ..N1::default() }),
    ]
}

#[test]
fn bolt01_appendix_b_tlv_decoding_failures_any_namespace() {
    for (stream, reason) in ANY_NAMESPACE_FAILURES {
        let bytes = hex(stream);
        let n1 = decode_n1(&bytes);
        let n2 = decode_n2(&bytes);
        let expected_kind = |e: &DecodeError| match *reason {
            "not minimally encoded type" | "not minimally encoded length" => {
                matches!(e, DecodeError::NonCanonicalBigSize { .. })
            }
            _ => matches!(e, DecodeError::ShortRead { .. }),
        };
        assert!(
            n1.as_ref().is_err_and(expected_kind),
            "n1 {stream}: {reason}: {n1:?}"
        );
        assert!(
            n2.as_ref().is_err_and(expected_kind),
            "n2 {stream}: {reason}: {n2:?}"
        );
    }
}

#[test]
fn bolt01_appendix_b_tlv_decoding_failures_unknown_even_type() {
    for stream in UNKNOWN_EVEN_FAILURES {
        let bytes = hex(stream);
        for got in [decode_n1(&bytes).err(), decode_n2(&bytes).err()] {
            assert!(
                matches!(got, Some(DecodeError::UnknownEvenTlv { .. })),
                "{stream}: {got:?}"
            );
        }
    }
}

#[test]
fn bolt01_appendix_b_tlv_decoding_failures_n1() {
    for (stream, reason) in N1_FAILURES {
        let got = decode_n1(&hex(stream));
        let ok_kind = match got {
            Err(DecodeError::NonMinimalTruncatedInt { .. }) => {
                reason.contains("not minimal") || reason.contains("greater than")
            }
            Err(DecodeError::ShortRead { .. }) => reason.contains("less than"),
            Err(DecodeError::TrailingBytes { .. }) => reason.contains("greater than"),
            Err(DecodeError::InvalidPublicKey { .. }) => reason.contains("not a valid point"),
            Err(DecodeError::UnknownEvenTlv { tlv_type: 0 }) => reason.contains("unknown even"),
            _ => false,
        };
        assert!(ok_kind, "{stream}: expected {reason}, got {got:?}");
    }
}

#[test]
fn bolt01_appendix_b_tlv_decoding_successes_ignored() {
    for stream in IGNORED_SUCCESSES {
        let bytes = hex(stream);
        assert_eq!(decode_n1(&bytes), Ok(N1::default()), "n1 {stream}");
        assert_eq!(decode_n2(&bytes), Ok(N2::default()), "n2 {stream}");
    }
}

#[test]
fn bolt01_appendix_b_tlv_decoding_successes_n1() {
    for (stream, want) in n1_successes() {
        assert_eq!(decode_n1(&hex(stream)), Ok(want), "{stream}");
    }
}

#[test]
fn bolt01_appendix_b_tlv_stream_decoding_failure_n1() {
    let cases = [
        (
            "0x02 08 0000000000000226 01 01 2a",
            "valid TLV records but invalid ordering",
        ),
        (
            "0x02 08 0000000000000231 02 08 0000000000000451",
            "duplicate TLV type",
        ),
        (
            "0x1f 00 0f 01 2a",
            "valid (ignored) TLV records but invalid ordering",
        ),
        ("0x1f 00 1f 01 2a", "duplicate TLV type (ignored)"),
    ];
    for (stream, reason) in cases {
        let got = decode_n1(&hex(stream));
        assert!(
            matches!(got, Err(DecodeError::TlvNotIncreasing { .. })),
            "{stream}: {reason}"
        );
    }
}

#[test]
fn bolt01_appendix_b_tlv_stream_decoding_failure_n2() {
    let got = decode_n2(&hex("0xffffffffffffffffff 00 00 00"));
    assert_eq!(
        got,
        Err(DecodeError::TlvNotIncreasing {
            previous: u64::MAX,
            current: 0
        })
    );
}

/// "Any appending of an invalid stream to a valid stream should trigger a decoding failure.
/// Any appending of a higher-numbered valid stream to a lower-numbered valid stream should not
/// trigger a decoding failure."
#[test]
fn bolt01_appendix_b_tlv_stream_appending() {
    let valid = n1_successes();
    let invalid: Vec<&str> = ANY_NAMESPACE_FAILURES
        .iter()
        .map(|(s, _)| *s)
        .chain(UNKNOWN_EVEN_FAILURES.iter().copied())
        .chain(N1_FAILURES.iter().map(|(s, _)| *s))
        .collect();
    for (prefix, _) in &valid {
        for bad in &invalid {
            let mut bytes = hex(prefix);
            bytes.extend(hex(bad));
            assert!(decode_n1(&bytes).is_err(), "{prefix} ++ {bad} must fail");
        }
    }
    // Valid n1 streams come in increasing type order: 1, 2, 3, 254.
    let by_type = |t: u8| {
        valid
            .iter()
            .filter(move |(s, _)| hex(s).first() == Some(&t))
    };
    for (low, lw) in by_type(1).chain(by_type(2)).chain(by_type(3)) {
        for (high, hw) in valid
            .iter()
            .filter(|(s, _)| hex(s).first() > hex(low).first())
        {
            let mut bytes = hex(low);
            bytes.extend(hex(high));
            let got = decode_n1(&bytes).unwrap_or_else(|e| panic!("{low} ++ {high}: {e}"));
            let merged = N1 {
                tlv1_amount_msat: lw.tlv1_amount_msat.or(hw.tlv1_amount_msat),
                tlv2_scid: lw.tlv2_scid.or(hw.tlv2_scid),
                tlv3: lw.tlv3.or(hw.tlv3),
                tlv4_cltv_delta: lw.tlv4_cltv_delta.or(hw.tlv4_cltv_delta),
            };
            assert_eq!(got, merged, "{low} ++ {high}");
        }
    }
}
