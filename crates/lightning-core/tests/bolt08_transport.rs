//! BOLT 8 Appendix A test vectors (from `tests/vectors/bolt08.json`, an extraction of
//! `08-transport.md`), one test per vector, plus property tests of the handshake and of
//! message framing over arbitrary chunk splits.

// Test code: indexing into the vector JSON and our own fixed-size test data panics on a
// malformed vector file, which is what a test should do.
#![allow(clippy::indexing_slicing)]

use lightning_core::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning_core::transport::{
    Act, Decryptor, Encryptor, Established, Handshake, HandshakeError, HandshakeStep,
    InitiatorHandshake, ResponderHandshake, Transport, ACT_ONE_LEN, ACT_THREE_LEN, ACT_TWO_LEN,
    MAX_MESSAGE_LEN,
};
use proptest::prelude::*;
use serde_json::Value;

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/bolt08.json"
));

fn vectors() -> Value {
    serde_json::from_str(VECTORS).expect("bolt08.json parses")
}

fn hex(s: &str) -> Vec<u8> {
    assert_eq!(s.len() % 2, 0, "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("missing string field {name} in {v}"))
}

fn secret(v: &Value, name: &str) -> SecretKey {
    SecretKey::from_slice(&hex(field(v, name))).expect("valid secret key")
}

fn public(v: &Value, name: &str) -> PublicKey {
    PublicKey::from_slice(&hex(field(v, name))).expect("valid public key")
}

fn public_of(secret: &SecretKey) -> PublicKey {
    PublicKey::from_secret_key(&Secp256k1::new(), secret)
}

fn case(group: &str, name: &str) -> Value {
    vectors()[group]
        .as_array()
        .expect("group is an array")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no vector named {name:?} in {group}"))
        .clone()
}

fn act<'a>(case: &'a Value, which: &str) -> &'a Value {
    case["acts"]
        .as_array()
        .expect("acts is an array")
        .iter()
        .find(|a| a["act"] == which)
        .unwrap_or_else(|| panic!("no act {which} in {}", case["name"]))
}

/// Maps a spec error such as `ACT2_BAD_VERSION 1` to the typed error it must produce, given
/// the offending input.
fn expected_error(spec: &str, input: &[u8]) -> HandshakeError {
    let mut words = spec.split(' ');
    let code = words.next().expect("error code");
    let (act_name, what) = code.split_once('_').expect("ACTn_WHAT");
    let act = match act_name {
        "ACT1" => Act::One,
        "ACT2" => Act::Two,
        "ACT3" => Act::Three,
        other => panic!("unknown act in {other}"),
    };
    let key_field = if act == Act::Three {
        "static key"
    } else {
        "ephemeral key"
    };
    match what {
        "READ_FAILED" => HandshakeError::WrongLength {
            act,
            expected: if act == Act::Three {
                ACT_THREE_LEN
            } else {
                ACT_ONE_LEN
            },
            actual: input.len(),
        },
        "BAD_VERSION" => {
            let version = input[0];
            // Some vectors print the version ("ACT2_BAD_VERSION 1"); check it when they do.
            if let Some(printed) = words.next() {
                assert_eq!(printed, version.to_string(), "{spec}");
            }
            HandshakeError::BadVersion { act, version }
        }
        "BAD_PUBKEY" => HandshakeError::InvalidPublicKey {
            act,
            field: key_field,
        },
        "BAD_TAG" => HandshakeError::BadMac {
            act,
            field: if act == Act::Three {
                "final tag"
            } else {
                "tag"
            },
        },
        "BAD_CIPHERTEXT" => HandshakeError::BadMac {
            act,
            field: "encrypted static key",
        },
        other => panic!("unknown spec error {other}"),
    }
}

/// Runs one "Initiator Tests" vector: act one output, then act two input, then either the
/// expected error or act three output and sk/rk.
fn run_initiator_vector(name: &str) {
    let case = case("initiator_tests", name);
    let local_static = secret(&case, "ls.priv");
    let remote_static = public(&case, "rs.pub");
    let ephemeral = secret(&case, "e.priv");
    assert_eq!(public_of(&local_static), public(&case, "ls.pub"));
    assert_eq!(public_of(&ephemeral), public(&case, "e.pub"));

    let initiator = InitiatorHandshake::new(&local_static, &remote_static, &ephemeral);
    let act_one = initiator.act_one();
    assert_eq!(act_one.to_vec(), hex(field(act(&case, "One"), "output")));

    let act_two = hex(field(act(&case, "Two"), "input"));
    let result = initiator.process_act_two(&act_two);
    match case.get("expected_error").and_then(Value::as_str) {
        Some(spec) => {
            assert_eq!(act(&case, "Two")["error"], spec);
            let error = result.expect_err("act two must be rejected");
            assert_eq!(error, expected_error(spec, &act_two));
            assert!(error.to_string().ends_with("disconnect"));
        }
        None => {
            let (act_three, transport) = result.expect("act two is accepted");
            assert_eq!(act_three.len(), ACT_THREE_LEN);
            assert_eq!(
                act_three.to_vec(),
                hex(field(act(&case, "Three"), "output"))
            );
            let keys = &case["expected_keys"];
            assert_eq!(transport.encryptor().key().to_vec(), hex(field(keys, "sk")));
            assert_eq!(transport.decryptor().key().to_vec(), hex(field(keys, "rk")));
            let ck = hex(field(&act(&case, "Three")["intermediate"], "ck"));
            assert_eq!(transport.encryptor().chaining_key().to_vec(), ck);
            assert_eq!(transport.decryptor().chaining_key().to_vec(), ck);
            assert_eq!(transport.encryptor().nonce(), 0);
            assert_eq!(transport.decryptor().nonce(), 0);
        }
    }
}

/// Runs one "Responder Tests" vector: act one input, then either its error or act two
/// output; then act three input, then either its error or the initiator's key and rk/sk.
fn run_responder_vector(name: &str) {
    let case = case("responder_tests", name);
    let local_static = secret(&case, "ls.priv");
    let ephemeral = secret(&case, "e.priv");
    assert_eq!(public_of(&local_static), public(&case, "ls.pub"));
    assert_eq!(public_of(&ephemeral), public(&case, "e.pub"));
    let expected = case.get("expected_error").and_then(Value::as_str);

    let responder = ResponderHandshake::new(&local_static, &ephemeral);
    let act_one_vector = act(&case, "One");
    let act_one = hex(field(act_one_vector, "input"));
    let result = responder.process_act_one(&act_one);
    if let Some(spec) = act_one_vector.get("error").and_then(Value::as_str) {
        assert_eq!(expected, Some(spec));
        let error = result.expect_err("act one must be rejected");
        assert_eq!(error, expected_error(spec, &act_one));
        assert!(error.to_string().ends_with("disconnect"));
        return;
    }
    let (awaiting, act_two) = result.expect("act one is accepted");
    assert_eq!(act_two.len(), ACT_TWO_LEN);
    assert_eq!(act_two.to_vec(), hex(field(act(&case, "Two"), "output")));

    let act_three_vector = act(&case, "Three");
    let act_three = hex(field(act_three_vector, "input"));
    let result = awaiting.process_act_three(&act_three);
    match expected {
        Some(spec) => {
            assert_eq!(act_three_vector["error"], spec);
            let error = result.expect_err("act three must be rejected");
            assert_eq!(error, expected_error(spec, &act_three));
            assert!(error.to_string().ends_with("disconnect"));
        }
        None => {
            let (remote_static, transport) = result.expect("act three is accepted");
            let rs = hex(field(&act_three_vector["intermediate"], "rs"));
            assert_eq!(remote_static.serialize().to_vec(), rs);
            let keys = &case["expected_keys"];
            assert_eq!(transport.decryptor().key().to_vec(), hex(field(keys, "rk")));
            assert_eq!(transport.encryptor().key().to_vec(), hex(field(keys, "sk")));
            let ck = hex(field(&act_three_vector["intermediate"], "ck"));
            assert_eq!(transport.encryptor().chaining_key().to_vec(), ck);
            assert_eq!(transport.decryptor().chaining_key().to_vec(), ck);
        }
    }
}

/// What a stream [`Handshake`] made of one act fed in chunks of `chunk` bytes: still reading
/// (with what it wrote and how many bytes it still needs), established, or failed.
enum Fed {
    Reading(Handshake, Vec<u8>),
    Established(Established),
    Failed(HandshakeError),
}

fn feed(mut handshake: Handshake, bytes: &[u8], chunk: usize) -> Fed {
    let mut written = Vec::new();
    let mut chunks = bytes.chunks(chunk);
    loop {
        let Some(piece) = chunks.next() else {
            return Fed::Reading(handshake, written);
        };
        match handshake.read(piece) {
            Ok(HandshakeStep::Reading {
                handshake: next,
                write,
            }) => {
                written.extend_from_slice(&write);
                handshake = next;
            }
            Ok(HandshakeStep::Established(mut e)) => {
                written.append(&mut e.write);
                e.write = written;
                assert!(chunks.next().is_none(), "bytes left after the last act");
                return Fed::Established(e);
            }
            Err(error) => return Fed::Failed(error),
        }
    }
}

/// A "short read" vector gives fewer bytes than the act: over a stream that is no error, the
/// handshake waits for the rest.
fn assert_waits_for_the_rest(fed: Fed, input: &[u8], len: usize) {
    match fed {
        Fed::Reading(handshake, written) => {
            assert!(written.is_empty());
            assert_eq!(handshake.bytes_needed(), len - input.len());
        }
        _ => panic!("a short act must leave the handshake reading"),
    }
}

/// One "Initiator Tests" vector through the stream [`Handshake`], act two fed in chunks of
/// `chunk` bytes.
fn run_initiator_vector_stream(name: &str, chunk: usize) {
    let case = case("initiator_tests", name);
    let (handshake, act_one) = Handshake::outbound(
        &secret(&case, "ls.priv"),
        &public(&case, "rs.pub"),
        &secret(&case, "e.priv"),
    );
    assert_eq!(act_one.to_vec(), hex(field(act(&case, "One"), "output")));
    assert!(handshake.is_outbound());
    assert_eq!(handshake.awaiting(), Act::Two);
    let act_two = hex(field(act(&case, "Two"), "input"));
    let fed = feed(handshake, &act_two, chunk);
    match case.get("expected_error").and_then(Value::as_str) {
        Some(spec) if spec.contains("READ_FAILED") => {
            assert_waits_for_the_rest(fed, &act_two, ACT_TWO_LEN)
        }
        Some(spec) => match fed {
            Fed::Failed(error) => assert_eq!(error, expected_error(spec, &act_two), "{name}"),
            _ => panic!("{name}: act two must be rejected"),
        },
        None => {
            let Fed::Established(e) = fed else {
                panic!("{name}: act two must complete the handshake");
            };
            assert_eq!(e.write, hex(field(act(&case, "Three"), "output")));
            assert_eq!(e.node_id, public(&case, "rs.pub"));
            assert!(e.leftover.is_empty());
            let keys = &case["expected_keys"];
            assert_eq!(
                e.transport.encryptor().key().to_vec(),
                hex(field(keys, "sk"))
            );
            assert_eq!(
                e.transport.decryptor().key().to_vec(),
                hex(field(keys, "rk"))
            );
        }
    }
}

/// One "Responder Tests" vector through the stream [`Handshake`], acts one and three fed in
/// chunks of `chunk` bytes.
fn run_responder_vector_stream(name: &str, chunk: usize) {
    let case = case("responder_tests", name);
    let handshake = Handshake::inbound(&secret(&case, "ls.priv"), &secret(&case, "e.priv"));
    assert!(!handshake.is_outbound());
    let expected = case.get("expected_error").and_then(Value::as_str);
    let act_one_vector = act(&case, "One");
    let act_one = hex(field(act_one_vector, "input"));
    let fed = feed(handshake, &act_one, chunk);
    if let Some(spec) = act_one_vector.get("error").and_then(Value::as_str) {
        if spec.contains("READ_FAILED") {
            return assert_waits_for_the_rest(fed, &act_one, ACT_ONE_LEN);
        }
        match fed {
            Fed::Failed(error) => assert_eq!(error, expected_error(spec, &act_one), "{name}"),
            _ => panic!("{name}: act one must be rejected"),
        }
        return;
    }
    let Fed::Reading(handshake, act_two) = fed else {
        panic!("{name}: act one must be accepted");
    };
    assert_eq!(act_two, hex(field(act(&case, "Two"), "output")));
    assert_eq!(handshake.awaiting(), Act::Three);
    let act_three_vector = act(&case, "Three");
    let act_three = hex(field(act_three_vector, "input"));
    let fed = feed(handshake, &act_three, chunk);
    match expected {
        Some(spec) if spec.contains("READ_FAILED") => {
            assert_waits_for_the_rest(fed, &act_three, ACT_THREE_LEN)
        }
        Some(spec) => match fed {
            Fed::Failed(error) => assert_eq!(error, expected_error(spec, &act_three), "{name}"),
            _ => panic!("{name}: act three must be rejected"),
        },
        None => {
            let Fed::Established(e) = fed else {
                panic!("{name}: act three must complete the handshake");
            };
            assert!(e.write.is_empty());
            assert!(e.leftover.is_empty());
            let rs = hex(field(&act_three_vector["intermediate"], "rs"));
            assert_eq!(e.node_id.serialize().to_vec(), rs);
            let keys = &case["expected_keys"];
            assert_eq!(
                e.transport.decryptor().key().to_vec(),
                hex(field(keys, "rk"))
            );
            assert_eq!(
                e.transport.encryptor().key().to_vec(),
                hex(field(keys, "sk"))
            );
        }
    }
}

#[test]
fn bolt08_every_vector_through_the_stream_handshake_in_one_piece() {
    for name in INITIATOR_VECTORS {
        run_initiator_vector_stream(name, usize::MAX);
    }
    for name in RESPONDER_VECTORS {
        run_responder_vector_stream(name, usize::MAX);
    }
}

#[test]
fn bolt08_every_vector_through_the_stream_handshake_byte_by_byte() {
    for name in INITIATOR_VECTORS {
        run_initiator_vector_stream(name, 1);
    }
    for name in RESPONDER_VECTORS {
        run_responder_vector_stream(name, 1);
    }
}

/// The successful vectors' acts in one stream, followed by the first message of the
/// "transport-message test" (its keys are the successful handshake's): the responder gets
/// the message back as leftover, in every chunking.
#[test]
fn bolt08_stream_handshake_hands_over_bytes_past_act_three() {
    let case = case("responder_tests", RESPONDER_VECTORS[0]);
    let v = vectors();
    let message = &v["message_encryption_tests"]["test_vectors"][0];
    let first = hex(field(&message["outputs"][0], "output"));
    let mut stream = hex(field(act(&case, "Three"), "input"));
    stream.extend_from_slice(&first);
    for chunk in [1, 17, ACT_THREE_LEN, ACT_THREE_LEN + 1, usize::MAX] {
        let handshake = Handshake::inbound(&secret(&case, "ls.priv"), &secret(&case, "e.priv"));
        let act_one = hex(field(act(&case, "One"), "input"));
        let Ok(HandshakeStep::Reading { handshake, .. }) = handshake.read(&act_one) else {
            panic!("act one is accepted");
        };
        let mut handshake = handshake;
        let mut pieces = stream.chunks(chunk.min(stream.len()));
        let mut established = loop {
            let piece = pieces.next().expect("the stream completes the handshake");
            match handshake.read(piece).expect("act three is accepted") {
                HandshakeStep::Reading {
                    handshake: next, ..
                } => handshake = next,
                HandshakeStep::Established(e) => break e,
            }
        };
        for rest in pieces {
            established.leftover.extend_from_slice(rest);
        }
        assert_eq!(
            established
                .transport
                .decrypt(&established.leftover)
                .unwrap(),
            vec![b"hello".to_vec()],
            "chunk {chunk}"
        );
    }
}

/// Every vector name in the JSON, so a vector added there without a test here fails.
const INITIATOR_VECTORS: [&str; 5] = [
    "transport-initiator successful handshake",
    "transport-initiator act2 short read test",
    "transport-initiator act2 bad version test",
    "transport-initiator act2 bad key serialization test",
    "transport-initiator act2 bad MAC test",
];
const RESPONDER_VECTORS: [&str; 10] = [
    "transport-responder successful handshake",
    "transport-responder act1 short read test",
    "transport-responder act1 bad version test",
    "transport-responder act1 bad key serialization test",
    "transport-responder act1 bad MAC test",
    "transport-responder act3 bad version test",
    "transport-responder act3 short read test",
    "transport-responder act3 bad MAC for ciphertext test",
    "transport-responder act3 bad rs test",
    "transport-responder act3 bad MAC test",
];

#[test]
fn bolt08_every_vector_has_a_named_test() {
    let v = vectors();
    let names = |group: &str| -> Vec<String> {
        v[group]
            .as_array()
            .expect("group")
            .iter()
            .map(|c| field(c, "name").to_owned())
            .collect()
    };
    assert_eq!(names("initiator_tests"), INITIATOR_VECTORS);
    assert_eq!(names("responder_tests"), RESPONDER_VECTORS);
    let message_tests = v["message_encryption_tests"]["test_vectors"]
        .as_array()
        .expect("message tests");
    assert_eq!(message_tests.len(), 1);
    assert_eq!(message_tests[0]["name"], "transport-message test");
}

#[test]
fn bolt08_transport_initiator_successful_handshake() {
    run_initiator_vector(INITIATOR_VECTORS[0]);
}

#[test]
fn bolt08_transport_initiator_act2_short_read_test() {
    run_initiator_vector(INITIATOR_VECTORS[1]);
}

#[test]
fn bolt08_transport_initiator_act2_bad_version_test() {
    run_initiator_vector(INITIATOR_VECTORS[2]);
}

#[test]
fn bolt08_transport_initiator_act2_bad_key_serialization_test() {
    run_initiator_vector(INITIATOR_VECTORS[3]);
}

#[test]
fn bolt08_transport_initiator_act2_bad_mac_test() {
    run_initiator_vector(INITIATOR_VECTORS[4]);
}

#[test]
fn bolt08_transport_responder_successful_handshake() {
    run_responder_vector(RESPONDER_VECTORS[0]);
}

#[test]
fn bolt08_transport_responder_act1_short_read_test() {
    run_responder_vector(RESPONDER_VECTORS[1]);
}

#[test]
fn bolt08_transport_responder_act1_bad_version_test() {
    run_responder_vector(RESPONDER_VECTORS[2]);
}

#[test]
fn bolt08_transport_responder_act1_bad_key_serialization_test() {
    run_responder_vector(RESPONDER_VECTORS[3]);
}

#[test]
fn bolt08_transport_responder_act1_bad_mac_test() {
    run_responder_vector(RESPONDER_VECTORS[4]);
}

#[test]
fn bolt08_transport_responder_act3_bad_version_test() {
    run_responder_vector(RESPONDER_VECTORS[5]);
}

#[test]
fn bolt08_transport_responder_act3_short_read_test() {
    run_responder_vector(RESPONDER_VECTORS[6]);
}

#[test]
fn bolt08_transport_responder_act3_bad_mac_for_ciphertext_test() {
    run_responder_vector(RESPONDER_VECTORS[7]);
}

#[test]
fn bolt08_transport_responder_act3_bad_rs_test() {
    run_responder_vector(RESPONDER_VECTORS[8]);
}

#[test]
fn bolt08_transport_responder_act3_bad_mac_test() {
    run_responder_vector(RESPONDER_VECTORS[9]);
}

/// One `ck', k' = HKDF(ck, k)` printed in the message test.
#[derive(Debug, PartialEq)]
struct Rotation {
    ck_in: Vec<u8>,
    k_in: Vec<u8>,
    ck_out: Vec<u8>,
    k_out: Vec<u8>,
}

/// "Message Encryption Tests": the initiator sends "hello" 1002 times (indexes 0..=1001);
/// outputs 0, 1, 500, 501, 1000 and 1001 must match, the key must rotate after messages
/// 499 and 999 to the printed `ck', k'`, and the responder must decrypt every frame.
#[test]
fn bolt08_transport_message_test() {
    let v = vectors();
    let test = &v["message_encryption_tests"]["test_vectors"][0];
    assert_eq!(test["name"], "transport-message test");
    let key32 = |name: &str| -> [u8; 32] { hex(field(test, name)).try_into().expect("32 bytes") };
    let (ck, sk, rk) = (key32("ck"), key32("sk"), key32("rk"));

    let mut initiator = Transport::from_keys(ck, sk, rk);
    // The responder receives under the initiator's sk, with rck = ck.
    let mut receiver = Decryptor::new(ck, sk);

    let outputs: Vec<(usize, Vec<u8>)> = test["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(|o| {
            let index = o["index"].as_u64().expect("index") as usize;
            (index, hex(field(o, "output")))
        })
        .collect();
    assert_eq!(
        outputs.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [0, 1, 500, 501, 1000, 1001]
    );

    // The spec prints each rotation twice; the distinct ones, in order.
    let mut rotations: Vec<Rotation> = Vec::new();
    for r in test["key_rotation_comments"].as_array().expect("rotations") {
        let entry = Rotation {
            ck_in: hex(field(r, "ck_in")),
            k_in: hex(field(r, "k_in")),
            ck_out: hex(field(r, "ck_out")),
            k_out: hex(field(r, "k_out")),
        };
        if rotations.last() != Some(&entry) {
            rotations.push(entry);
        }
    }
    assert_eq!(rotations.len(), 2);
    assert_eq!(rotations[0].ck_in, ck);
    assert_eq!(rotations[0].k_in, sk);
    assert_eq!(rotations[1].ck_in, rotations[0].ck_out);
    assert_eq!(rotations[1].k_in, rotations[0].k_out);

    let steps = test["encrypt_steps"].as_array().expect("encrypt steps");
    let mut checked = 0;
    for index in 0..=1001usize {
        let nonce_before = initiator.encryptor().nonce();
        let frame = initiator.encrypt(b"hello").expect("5-byte message");
        assert_eq!(frame.len(), 18 + 5 + 16);

        // The per-part steps printed for messages 0 and 1: nonce, key and ciphertext.
        for (part, step) in steps
            .iter()
            .skip(index * 2)
            .take(if index < 2 { 2 } else { 0 })
            .enumerate()
        {
            let sn = 2 * index as u64 + part as u64;
            assert_eq!(nonce_before + part as u64, sn);
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&sn.to_le_bytes());
            assert_eq!(hex(field(step, "sn")), nonce);
            assert_eq!(hex(field(step, "sk")), sk);
            let (expected_part, cleartext) = if part == 0 {
                (&frame[..18], vec![0x00, 0x05])
            } else {
                (&frame[18..], b"hello".to_vec())
            };
            assert_eq!(hex(field(step, "cleartext")), cleartext);
            assert_eq!(hex(field(step, "ciphertext")), expected_part);
        }

        if let Some((_, expected)) = outputs.iter().find(|(i, _)| *i == index) {
            assert_eq!(&frame, expected, "output {index}");
            checked += 1;
        }
        assert_eq!(
            receiver.decrypt(&frame).expect("frame decrypts"),
            vec![b"hello".to_vec()],
            "message {index}"
        );

        // Rotation after the 500th and 1000th messages (nonce reached 1000).
        let rotation = match index {
            499 => Some(&rotations[0]),
            999 => Some(&rotations[1]),
            _ => None,
        };
        if let Some(Rotation { ck_out, k_out, .. }) = rotation {
            for (key, chaining_key, nonce) in [
                (
                    initiator.encryptor().key(),
                    initiator.encryptor().chaining_key(),
                    initiator.encryptor().nonce(),
                ),
                (receiver.key(), receiver.chaining_key(), receiver.nonce()),
            ] {
                assert_eq!(key.to_vec(), *k_out, "key after message {index}");
                assert_eq!(
                    chaining_key.to_vec(),
                    *ck_out,
                    "chaining key after message {index}"
                );
                assert_eq!(nonce, 0);
            }
        }
    }
    assert_eq!(checked, 6);
    // Only the sending direction moved.
    assert_eq!(initiator.decryptor().key(), &rk);
    assert_eq!(initiator.decryptor().nonce(), 0);
}

fn valid_secret() -> impl Strategy<Value = SecretKey> {
    any::<[u8; 32]>().prop_filter_map("valid secp256k1 scalar", |b| SecretKey::from_slice(&b).ok())
}

/// Runs a whole handshake in memory.
fn handshake(
    initiator_static: &SecretKey,
    initiator_ephemeral: &SecretKey,
    responder_static: &SecretKey,
    responder_ephemeral: &SecretKey,
) -> (Transport, PublicKey, Transport) {
    let initiator = InitiatorHandshake::new(
        initiator_static,
        &public_of(responder_static),
        initiator_ephemeral,
    );
    let responder = ResponderHandshake::new(responder_static, responder_ephemeral);
    let (awaiting, act_two) = responder
        .process_act_one(&initiator.act_one())
        .expect("act one");
    let (act_three, initiator_transport) = initiator.process_act_two(&act_two).expect("act two");
    let (remote, responder_transport) = awaiting.process_act_three(&act_three).expect("act three");
    (initiator_transport, remote, responder_transport)
}

/// A deterministic message of `len` bytes.
fn message(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Feeds `stream` to `decryptor` in chunks of the given sizes (cycled), collecting messages
/// and checking the buffer never holds more than one frame.
fn feed_in_chunks(decryptor: &mut Decryptor, stream: &[u8], chunks: &[usize]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = stream;
    for size in chunks.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at((*size).min(rest.len()));
        rest = tail;
        out.extend(decryptor.decrypt(chunk).expect("authentic frames decrypt"));
        assert!(decryptor.buffered_len() <= MAX_MESSAGE_LEN + 16);
    }
    assert_eq!(decryptor.buffered_len(), 0);
    out
}

fn sends(encryptor: &mut Encryptor, messages: &[Vec<u8>]) -> Vec<u8> {
    let mut stream = Vec::new();
    for m in messages {
        encryptor
            .encrypt_into(m, &mut stream)
            .expect("at most 65535 bytes");
    }
    stream
}

/// (length, seed, initiator-to-responder?) triples: either a few of any size up to the
/// maximum, or many small ones to cross key rotations (500 messages per rotation).
fn message_plan() -> impl Strategy<Value = Vec<(usize, u64, bool)>> {
    let any_len =
        prop_oneof![1 => Just(MAX_MESSAGE_LEN), 1 => Just(0usize), 6 => 0..=MAX_MESSAGE_LEN];
    prop_oneof![
        3 => prop::collection::vec((any_len, any::<u64>(), any::<bool>()), 0..8),
        1 => prop::collection::vec((0..48usize, any::<u64>(), prop::bool::weighted(0.8)), 900..2600),
    ]
}

fn chunk_plan() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        1 => prop::collection::vec(1..=3usize, 1..8),
        3 => prop::collection::vec(1..=70_000usize, 1..16),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn bolt08_handshake_between_random_keypairs_completes_with_matching_keys(
        is in valid_secret(), ie in valid_secret(), rs in valid_secret(), re in valid_secret(),
    ) {
        let (mut initiator, remote, mut responder) = handshake(&is, &ie, &rs, &re);
        prop_assert_eq!(remote, public_of(&is));
        prop_assert_eq!(initiator.encryptor().key(), responder.decryptor().key());
        prop_assert_eq!(initiator.decryptor().key(), responder.encryptor().key());
        prop_assert_ne!(initiator.encryptor().key(), initiator.decryptor().key());
        prop_assert_eq!(initiator.encryptor().chaining_key(), responder.encryptor().chaining_key());
        let frame = initiator.encrypt(b"ping").unwrap();
        prop_assert_eq!(responder.decrypt(&frame).unwrap(), vec![b"ping".to_vec()]);
        let frame = responder.encrypt(b"pong").unwrap();
        prop_assert_eq!(initiator.decrypt(&frame).unwrap(), vec![b"pong".to_vec()]);
    }

    #[test]
    fn bolt08_messages_survive_arbitrary_chunk_splits_in_order(
        plan in message_plan(),
        chunks_to_responder in chunk_plan(),
        chunks_to_initiator in chunk_plan(),
    ) {
        let (initiator, _, responder) =
            handshake(&SecretKey::from_slice(&[1; 32]).unwrap(), &SecretKey::from_slice(&[2; 32]).unwrap(),
                      &SecretKey::from_slice(&[3; 32]).unwrap(), &SecretKey::from_slice(&[4; 32]).unwrap());
        let (mut i_enc, mut i_dec) = initiator.split();
        let (mut r_enc, mut r_dec) = responder.split();
        let to_responder: Vec<Vec<u8>> =
            plan.iter().filter(|p| p.2).map(|&(len, seed, _)| message(len, seed)).collect();
        let to_initiator: Vec<Vec<u8>> =
            plan.iter().filter(|p| !p.2).map(|&(len, seed, _)| message(len, seed)).collect();

        let stream = sends(&mut i_enc, &to_responder);
        prop_assert_eq!(feed_in_chunks(&mut r_dec, &stream, &chunks_to_responder), to_responder);
        let stream = sends(&mut r_enc, &to_initiator);
        prop_assert_eq!(feed_in_chunks(&mut i_dec, &stream, &chunks_to_initiator), to_initiator);

        prop_assert_eq!(i_enc.key(), r_dec.key());
        prop_assert_eq!(i_enc.nonce(), r_dec.nonce());
        prop_assert_eq!(r_enc.key(), i_dec.key());
        prop_assert_eq!(r_enc.nonce(), i_dec.nonce());
    }
}

#[test]
fn bolt08_message_of_65536_bytes_is_rejected_not_panicking() {
    let mut transport = Transport::from_keys([0; 32], [1; 32], [2; 32]);
    let err = transport
        .encrypt(&vec![0; MAX_MESSAGE_LEN + 1])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "message length 65536 exceeds the maximum of 65535 bytes"
    );
}
