//! BOLT 1 Appendix A: BigSize decoding and encoding test vectors.

use lightning_core::bitcoin::hex::{DisplayHex, FromHex};
use lightning_core::ser::{write_bigsize, BigSize, DecodeError};
use serde_json::Value;

const VECTORS: &str = include_str!("vectors/bolt01_bigsize.json");

fn cases(section: &str) -> Vec<Value> {
    let all: Value = serde_json::from_str(VECTORS).expect("vector file is valid json");
    all[section]
        .as_array()
        .expect("section is an array")
        .clone()
}

#[test]
fn bolt01_appendix_a_bigsize_decoding() {
    let cases = cases("decoding");
    assert_eq!(cases.len(), 18);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let bytes = Vec::<u8>::from_hex(case["bytes"].as_str().unwrap()).unwrap();
        let got = BigSize::decode(&bytes);
        match case["exp_error"].as_str() {
            None => assert_eq!(got, Ok(BigSize(case["value"].as_u64().unwrap())), "{name}"),
            Some("decoded bigsize is not canonical") => {
                assert!(
                    matches!(got, Err(DecodeError::NonCanonicalBigSize { .. })),
                    "{name}: {got:?}"
                )
            }
            Some(eof) => {
                assert!(eof.ends_with("EOF"), "{name}: unexpected error kind {eof}");
                assert!(
                    matches!(got, Err(DecodeError::ShortRead { .. })),
                    "{name}: {got:?}"
                )
            }
        }
    }
}

#[test]
fn bolt01_appendix_a_bigsize_encoding() {
    let cases = cases("encoding");
    assert_eq!(cases.len(), 8);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut out = Vec::new();
        write_bigsize(&mut out, case["value"].as_u64().unwrap());
        assert_eq!(
            out.to_lower_hex_string(),
            case["bytes"].as_str().unwrap(),
            "{name}"
        );
    }
}
