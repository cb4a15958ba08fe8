//! BOLT 1 message vectors (01-messaging.md, Appendix C "Message Extension") and byte layouts
//! of BOLT 1 / BOLT 2 messages checked field by field against the spec's definitions.

use lightning_core::bitcoin::constants::ChainHash;
use lightning_core::bitcoin::hashes::Hash;
use lightning_core::bitcoin::hex::FromHex;
use lightning_core::bitcoin::{ScriptBuf, Txid};
use lightning_core::secp256k1::{ecdsa::Signature, PublicKey, Secp256k1, SecretKey};
use lightning_core::ser::DecodeError;
use lightning_core::types::{ChannelId, PaymentHash, ShortChannelId};
use lightning_core::wire::{
    ChannelReady, ClosingFeeRange, ClosingSigned, ErrorMessage, Feature, Features, FundingSigned,
    Init, Message, OpenChannel, SocketAddress, UpdateAddHtlc, WireMessage, ONION_PACKET_LEN,
};

fn hex(s: &str) -> Vec<u8> {
    Vec::<u8>::from_hex(s).expect("test hex is valid")
}

/// The base `init` of Appendix C: no feature bits, no extension.
fn base_init() -> Message {
    Message::Init(Init {
        global_features: Features::empty(),
        features: Features::empty(),
        networks: None,
        remote_addr: None,
    })
}

// ---- Appendix C: Message Extension (valid) ----

#[test]
fn bolt01_appendix_c_valid_init_no_extension() {
    let bytes = hex("001000000000");
    let m = Message::decode(&bytes).expect("valid per Appendix C");
    assert_eq!(m, base_init());
    assert_eq!(m.encode(), bytes);
}

#[test]
fn bolt01_appendix_c_valid_init_two_unknown_odd_tlvs() {
    // The extension holds unknown odd records 0xc9 and 0xcb: both ignored.
    let bytes = hex("001000000000c9012acb0104");
    let m = Message::decode(&bytes).expect("valid per Appendix C");
    assert_eq!(m, base_init());
}

// ---- Appendix C: Message Extension (invalid) ----

#[test]
fn bolt01_appendix_c_invalid_init_extension_truncated() {
    let bytes = hex("00100000000001");
    assert_eq!(
        Message::decode(&bytes),
        Err(DecodeError::ShortRead {
            field: "tlv length",
            needed: 1,
            remaining: 0
        })
    );
}

#[test]
fn bolt01_appendix_c_invalid_init_unknown_even_tlv() {
    let bytes = hex("001000000000ca012a");
    assert_eq!(
        Message::decode(&bytes),
        Err(DecodeError::UnknownEvenTlv { tlv_type: 0xca })
    );
}

#[test]
fn bolt01_appendix_c_invalid_init_duplicate_tlv() {
    let bytes = hex("001000000000c90101c90102");
    assert_eq!(
        Message::decode(&bytes),
        Err(DecodeError::TlvNotIncreasing {
            previous: 0xc9,
            current: 0xc9
        })
    );
}

// ---- Hand-checked layouts ----

fn point(n: u8) -> PublicKey {
    let secret = SecretKey::from_slice(&[n; 32]).expect("non-zero scalar");
    PublicKey::from_secret_key(&Secp256k1::signing_only(), &secret)
}

fn sig(n: u8) -> Signature {
    let mut bytes = [0u8; 64];
    bytes[31] = n;
    bytes[63] = n.wrapping_add(1);
    Signature::from_compact(&bytes).expect("small r and s")
}

#[test]
fn init_layout_with_networks_and_remote_addr() {
    // type 16 | gflen 1 | 0x02 (bit 1) | flen 3 | bits 8, 13, 23 | networks(mainnet) |
    // remote_addr ipv4 192.168.0.1:9735
    let mut features = Features::empty();
    features.set_required(Feature::VarOnionOptin);
    features.set_optional(Feature::StaticRemoteKey);
    features.set_optional(Feature::Anchors);
    let mut global = Features::empty();
    global.set_optional(Feature::DataLossProtect);
    let init = Init {
        global_features: global,
        features,
        networks: Some(vec![ChainHash::BITCOIN]),
        remote_addr: Some(SocketAddress::Ipv4 {
            addr: [192, 168, 0, 1],
            port: 9735,
        }),
    };
    let expected = hex(concat!(
        "0010",
        "0001",
        "02",
        "0003",
        "802100",
        "0120",
        "6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000",
        "0307",
        "01c0a800012607",
    ));
    assert_eq!(Message::Init(init.clone()).encode(), expected);
    assert_eq!(Message::decode(&expected), Ok(Message::Init(init.clone())));
    let combined = init.combined_features();
    assert!(combined.supports(Feature::DataLossProtect));
    assert!(combined.requires(Feature::VarOnionOptin));
    assert!(combined.supports(Feature::Anchors) && !combined.requires(Feature::Anchors));
}

#[test]
fn error_layout() {
    // type 17 | channel_id | len | data
    let m = ErrorMessage {
        channel_id: ChannelId([0xaa; 32]),
        data: b"oops".to_vec(),
    };
    let mut expected = hex("0011");
    expected.extend_from_slice(&[0xaa; 32]);
    expected.extend_from_slice(&hex("00046f6f7073"));
    assert_eq!(Message::Error(m.clone()).encode(), expected);
    assert_eq!(Message::decode(&expected), Ok(Message::Error(m)));
}

#[test]
fn funding_signed_layout() {
    // type 35 | channel_id | signature (r || s, 64 bytes)
    let m = FundingSigned {
        channel_id: ChannelId([0x01; 32]),
        signature: sig(7),
    };
    let mut expected = hex("0023");
    expected.extend_from_slice(&[0x01; 32]);
    expected.extend_from_slice(&[0; 31]);
    expected.push(7);
    expected.extend_from_slice(&[0; 31]);
    expected.push(8);
    assert_eq!(m.encode(), expected);
    assert_eq!(
        Message::decode(&expected),
        Ok(Message::FundingSigned(m.clone()))
    );
}

#[test]
fn open_channel_layout_field_by_field() {
    let m = OpenChannel {
        chain_hash: ChainHash::REGTEST,
        temporary_channel_id: ChannelId([0x22; 32]),
        funding_satoshis: 0x0102_0304,
        push_msat: 5,
        dust_limit_satoshis: 354,
        max_htlc_value_in_flight_msat: u64::MAX,
        channel_reserve_satoshis: 1000,
        htlc_minimum_msat: 0,
        feerate_per_kw: 2500,
        to_self_delay: 720,
        max_accepted_htlcs: 30,
        funding_pubkey: point(1),
        revocation_basepoint: point(2),
        payment_basepoint: point(3),
        delayed_payment_basepoint: point(4),
        htlc_basepoint: point(5),
        first_per_commitment_point: point(6),
        channel_flags: 0,
        upfront_shutdown_script: Some(ScriptBuf::from_bytes(vec![0x51])),
        channel_type: Some(Features::from_required(&[
            Feature::StaticRemoteKey,
            Feature::ScidAlias,
        ])),
    };
    let mut expected = hex("0020");
    expected.extend_from_slice(ChainHash::REGTEST.as_bytes());
    expected.extend_from_slice(&[0x22; 32]);
    for v in [0x0102_0304u64, 5, 354, u64::MAX, 1000, 0] {
        expected.extend_from_slice(&v.to_be_bytes());
    }
    expected.extend_from_slice(&2500u32.to_be_bytes());
    expected.extend_from_slice(&720u16.to_be_bytes());
    expected.extend_from_slice(&30u16.to_be_bytes());
    for n in 1..=6 {
        expected.extend_from_slice(&point(n).serialize());
    }
    expected.push(0);
    // upfront_shutdown_script (0): OP_TRUE; channel_type (1): bits 46 and 12 in 6 bytes.
    expected.extend_from_slice(&hex("000151"));
    expected.extend_from_slice(&hex("0106400000001000"));
    assert_eq!(expected.len(), 2 + 319 + 3 + 8);
    assert_eq!(Message::OpenChannel(m.clone()).encode(), expected);
    assert_eq!(Message::decode(&expected), Ok(Message::OpenChannel(m)));
}

#[test]
fn channel_ready_layout_with_alias() {
    let m = ChannelReady {
        channel_id: ChannelId([3; 32]),
        second_per_commitment_point: point(9),
        short_channel_id_alias: Some(ShortChannelId(0x0000_0100_0002_0003)),
    };
    let mut expected = hex("0024");
    expected.extend_from_slice(&[3; 32]);
    expected.extend_from_slice(&point(9).serialize());
    expected.extend_from_slice(&hex("01080000010000020003"));
    assert_eq!(m.encode(), expected);
    assert_eq!(Message::decode(&expected), Ok(Message::ChannelReady(m)));
}

#[test]
fn update_add_htlc_layout() {
    let mut onion = [0u8; ONION_PACKET_LEN];
    onion[0] = 0x00; // version
    onion[1] = 0x02;
    onion[ONION_PACKET_LEN - 1] = 0xee;
    let m = UpdateAddHtlc {
        channel_id: ChannelId([4; 32]),
        id: 0,
        amount_msat: 1_000,
        payment_hash: PaymentHash([5; 32]),
        cltv_expiry: 500_000,
        onion_routing_packet: Box::new(onion),
        path_key: None,
    };
    let mut expected = hex("0080");
    expected.extend_from_slice(&[4; 32]);
    expected.extend_from_slice(&0u64.to_be_bytes());
    expected.extend_from_slice(&1000u64.to_be_bytes());
    expected.extend_from_slice(&[5; 32]);
    expected.extend_from_slice(&500_000u32.to_be_bytes());
    expected.extend_from_slice(&onion);
    assert_eq!(expected.len(), 2 + 1450);
    assert_eq!(m.encode(), expected);
    assert_eq!(Message::decode(&expected), Ok(Message::UpdateAddHtlc(m)));
}

#[test]
fn closing_signed_layout_with_fee_range() {
    let m = ClosingSigned {
        channel_id: ChannelId([6; 32]),
        fee_satoshis: 0x1234,
        signature: sig(1),
        fee_range: Some(ClosingFeeRange {
            min_fee_satoshis: 1,
            max_fee_satoshis: 2,
        }),
    };
    let mut expected = hex("0027");
    expected.extend_from_slice(&[6; 32]);
    expected.extend_from_slice(&0x1234u64.to_be_bytes());
    expected.extend_from_slice(&sig(1).serialize_compact());
    expected.extend_from_slice(&hex("011000000000000000010000000000000002"));
    assert_eq!(m.encode(), expected);
    assert_eq!(Message::decode(&expected), Ok(Message::ClosingSigned(m)));
}

#[test]
fn funding_txid_is_in_internal_byte_order() {
    // BOLT 2 derives channel_id from funding_txid by XORing the output index into the last
    // two bytes *as carried on the wire*; carrying the txid in internal order makes that match
    // ChannelId::from_funding_outpoint.
    let txid = Txid::from_byte_array([0x10; 32]);
    let m = lightning_core::wire::FundingCreated {
        temporary_channel_id: ChannelId([0; 32]),
        funding_txid: txid,
        funding_output_index: 0x0102,
        signature: sig(2),
    };
    let bytes = m.encode_payload();
    let wire_txid = bytes.get(32..64).expect("funding_txid field");
    let mut id = [0u8; 32];
    id.copy_from_slice(wire_txid);
    id[30] ^= 0x01;
    id[31] ^= 0x02;
    assert_eq!(m.channel_id(), ChannelId(id));
}
