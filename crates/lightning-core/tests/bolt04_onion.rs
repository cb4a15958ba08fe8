//! BOLT 4 onion construction and per-hop processing, on the spec's `onion-test.json`
//! (a 5-hop route with variable-length payloads; `decode` holds the hops' private keys).

// Indexing the vector JSON and unwrapping its values panics on a malformed file, which is
// what a test should do.
#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

use lightning_core::bitcoin::hex::{DisplayHex, FromHex};
use lightning_core::onion::keys::route_keys;
use lightning_core::onion::payload::{
    ForwardPayload, HopPayload, PaymentData, PaymentPayload, ReceivePayload,
};
use lightning_core::onion::{
    construct_onion, process_onion, process_payment_onion, OnionHop, OnionPacket, PaymentHop,
    ProcessedOnion, ONION_PACKET_LEN,
};
use lightning_core::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning_core::ser::Reader;
use lightning_core::types::{PaymentHash, PaymentSecret, ShortChannelId};
use serde_json::Value;

const VECTOR: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/onion-test.json"
));

fn hex(s: &str) -> Vec<u8> {
    Vec::from_hex(s).expect("vector hex")
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.to_lower_hex_string()
}

struct Vector {
    session_key: SecretKey,
    associated_data: Vec<u8>,
    /// (node id, payload as in the vector: BigSize length prefix included)
    hops: Vec<(PublicKey, Vec<u8>)>,
    onion: Vec<u8>,
    node_secrets: Vec<SecretKey>,
}

fn vector() -> Vector {
    let v: Value = serde_json::from_str(VECTOR).expect("valid json");
    let generate = &v["generate"];
    let str_of = |x: &Value| x.as_str().expect("string").to_owned();
    let hops = generate["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .map(|h| {
            let pubkey = PublicKey::from_slice(&hex(&str_of(&h["pubkey"]))).expect("pubkey");
            (pubkey, hex(&str_of(&h["payload"])))
        })
        .collect();
    let node_secrets = v["decode"]
        .as_array()
        .expect("decode")
        .iter()
        .map(|k| SecretKey::from_slice(&hex(&str_of(k))).expect("private key"))
        .collect();
    Vector {
        session_key: SecretKey::from_slice(&hex(&str_of(&generate["session_key"])))
            .expect("session key"),
        associated_data: hex(&str_of(&generate["associated_data"])),
        hops,
        onion: hex(&str_of(&v["onion"])),
        node_secrets,
    }
}

/// Splits a vector payload into its BigSize length and body, checking they agree.
fn split_length(prefixed: &[u8]) -> Vec<u8> {
    let mut reader = Reader::new(prefixed);
    let len = reader.read_bigsize("length").expect("length prefix");
    let body = reader.rest().to_vec();
    assert_eq!(len, body.len() as u64, "vector payload length prefix");
    body
}

fn onion_hops(v: &Vector) -> Vec<OnionHop> {
    v.hops
        .iter()
        .map(|(node_id, payload)| OnionHop {
            node_id: *node_id,
            payload: split_length(payload),
        })
        .collect()
}

#[test]
fn bolt04_onion_test_construct_packet() {
    let v = vector();
    let secp = Secp256k1::new();
    assert_eq!(v.onion.len(), ONION_PACKET_LEN);
    let constructed =
        construct_onion(&secp, &v.session_key, &onion_hops(&v), &v.associated_data).unwrap();
    assert_eq!(to_hex(&constructed.packet.encode()), to_hex(&v.onion));
    // The first ephemeral key is the session key's public key.
    assert_eq!(
        constructed.packet.public_key,
        PublicKey::from_secret_key(&secp, &v.session_key).serialize()
    );
    let decoded = OnionPacket::decode(&v.onion).unwrap();
    assert_eq!(decoded, constructed.packet);
    assert_eq!(decoded.encode(), v.onion);
}

#[test]
fn bolt04_onion_test_decode_keys_are_the_hops() {
    let v = vector();
    let secp = Secp256k1::new();
    // One bolt04_onion_test_process_hop_N test below per hop of the vector.
    assert_eq!(v.hops.len(), 5);
    assert_eq!(v.node_secrets.len(), v.hops.len());
    for (i, (secret, (node_id, _))) in v.node_secrets.iter().zip(&v.hops).enumerate() {
        assert_eq!(
            &PublicKey::from_secret_key(&secp, secret),
            node_id,
            "hop {i}"
        );
    }
}

/// The typed payload each hop of the vector carries.
fn expected_payload(hop: usize) -> PaymentPayload {
    match hop {
        0..=3 => {
            let (amt, cltv) = [(15000, 1500), (14000, 1400), (12500, 1250), (10000, 1000)][hop];
            let custom_records = if hop == 1 {
                let mut bytes = Vec::new();
                for _ in 0..4 {
                    bytes.extend(1u8..=15);
                }
                vec![(513, bytes)]
            } else {
                vec![]
            };
            PaymentPayload::Forward(ForwardPayload {
                short_channel_id: ShortChannelId(hop as u64 + 1),
                amt_to_forward: amt,
                outgoing_cltv_value: cltv,
                custom_records,
            })
        }
        _ => PaymentPayload::Receive(ReceivePayload {
            amt_to_forward: 10000,
            outgoing_cltv_value: 1000,
            payment_secret: Some(PaymentSecret(
                hex("24a33562c54507a9334e79f0dc4f17d407e6d7c61f0e2f3d0d38599502f61704")
                    .try_into()
                    .unwrap(),
            )),
            total_msat: 10000,
            payment_metadata: None,
            custom_records: vec![(301, vec![0x2a; 224])],
        }),
    }
}

/// Processes the vector's onion up to hop `n` and checks everything that hop sees.
fn check_hop(n: usize) {
    let v = vector();
    let secp = Secp256k1::new();
    let node_ids: Vec<PublicKey> = v.hops.iter().map(|(k, _)| *k).collect();
    let origin_keys = route_keys(&secp, &v.session_key, &node_ids).unwrap();
    let mut packet = OnionPacket::decode(&v.onion).unwrap();
    for (i, secret) in v.node_secrets.iter().enumerate().take(n) {
        match process_onion(&secp, secret, &packet, &v.associated_data).unwrap() {
            ProcessedOnion::Forward { next_packet, .. } => packet = *next_packet,
            ProcessedOnion::Final { .. } => panic!("hop {i} is not final"),
        }
    }
    // The ephemeral key hop n finds is the one the origin derived for it.
    assert_eq!(packet.public_key, origin_keys[n].ephemeral_key.serialize());

    let processed = process_onion(&secp, &v.node_secrets[n], &packet, &v.associated_data).unwrap();
    assert_eq!(processed.shared_secret(), &origin_keys[n].shared_secret);
    let expected_raw = &v.hops[n].1;
    assert_eq!(
        to_hex(
            &HopPayload::decode(processed.payload())
                .unwrap()
                .encode_with_length()
        ),
        to_hex(expected_raw),
        "peeled payload, re-encoded with its length"
    );
    assert_eq!(processed.payload(), split_length(expected_raw).as_slice());
    match &processed {
        ProcessedOnion::Forward { next_packet, .. } => {
            assert!(n < 4, "hop {n} must be final");
            assert_eq!(next_packet.version, 0);
            assert_eq!(
                next_packet.public_key,
                origin_keys[n + 1].ephemeral_key.serialize()
            );
            assert_ne!(next_packet.hmac, [0; 32]);
        }
        ProcessedOnion::Final { .. } => assert_eq!(n, 4, "only the last hop is final"),
    }

    // The payment view: typed payload, forward or receive.
    let payment_hash = PaymentHash(v.associated_data.clone().try_into().unwrap());
    let hop = process_payment_onion(&secp, &v.node_secrets[n], &packet, &payment_hash).unwrap();
    match hop {
        PaymentHop::Forward {
            payload,
            next_packet,
            ..
        } => {
            assert_eq!(payload, expected_payload(n));
            if let ProcessedOnion::Forward {
                next_packet: peeled,
                ..
            } = &processed
            {
                assert_eq!(next_packet, *peeled);
            }
        }
        PaymentHop::Receive { payload, .. } => {
            assert_eq!(payload, expected_payload(n));
            let raw = HopPayload::decode(processed.payload()).unwrap();
            assert_eq!(
                raw.payment_data,
                Some(PaymentData {
                    payment_secret: PaymentSecret(
                        hex("24a33562c54507a9334e79f0dc4f17d407e6d7c61f0e2f3d0d38599502f61704")
                            .try_into()
                            .unwrap()
                    ),
                    total_msat: 10000,
                })
            );
        }
    }
}

#[test]
fn bolt04_onion_test_process_hop_0() {
    check_hop(0);
}

#[test]
fn bolt04_onion_test_process_hop_1() {
    check_hop(1);
}

#[test]
fn bolt04_onion_test_process_hop_2() {
    check_hop(2);
}

#[test]
fn bolt04_onion_test_process_hop_3() {
    check_hop(3);
}

#[test]
fn bolt04_onion_test_process_hop_4() {
    check_hop(4);
}
