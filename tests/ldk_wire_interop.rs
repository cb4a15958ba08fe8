//! Interoperability of `lightning_core::wire` with LDK (the `lightning` crate), byte for byte.
//!
//! Part (a), `ldk_reencodes_our_*`: for each of the 20 BOLT 1/2 message types, messages built
//! with our codec (edge values, with and without each TLV) are decoded by LDK's own
//! deserializer and re-encoded by LDK's serializer; the bytes must be identical. The one
//! documented exception is `init`, where LDK writes `globalfeatures` as exactly
//! `min(2, len(features))` bytes: there both sides must decode to the same combined features.
//!
//! Part (b), `ldk_to_ldk_through_our_codec_*`: two real LDK nodes run a channel's whole life
//! (init, open, funding, channel_ready, payments both ways with HTLC outputs, a failed payment,
//! a malformed onion, update_fee, ping/pong, disconnect and channel_reestablish, cooperative
//! close) while every message travels through our codec: LDK's bytes are decoded by
//! `Message::decode`, re-encoded by `Message::encode`, compared byte for byte with LDK's, and
//! OUR bytes are what the other LDK node receives.

mod ldk_support;

use std::collections::BTreeMap;

use bitcoin::constants::ChainHash;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{
    ecdsa::Signature, Message as SecpMessage, PublicKey, Secp256k1, SecretKey,
};
use bitcoin::{Network, ScriptBuf, Txid};
use lnshard::core::types::{ChannelId, PaymentHash, PaymentPreimage, ShortChannelId};
use lnshard::core::wire::{
    AcceptChannel, AttributionData, ChannelReady, ChannelReestablish, ClosingFeeRange,
    ClosingSigned, CommitmentSigned, ErrorMessage, Feature, Features, FundingCreated,
    FundingSigned, FundingTxidFlags, Hostname, Init, Message, OpenChannel, Ping, Pong,
    RevokeAndAck, Shutdown, SocketAddress, UpdateAddHtlc, UpdateFailHtlc, UpdateFailMalformedHtlc,
    UpdateFee, UpdateFulfillHtlc, Warning, WireMessage, ONION_PACKET_LEN,
};

use ldk_support::{
    is_disconnect, ldk_decode, ldk_frame, ldk_reencode, split_type, FakeChain, LdkEvent, LdkNode,
};

// ---- deterministic values -------------------------------------------------------------

fn secret(n: u8) -> SecretKey {
    SecretKey::from_slice(&[n; 32]).expect("[n; 32] is a valid scalar for n > 0")
}

fn point(n: u8) -> PublicKey {
    PublicKey::from_secret_key(&Secp256k1::new(), &secret(n))
}

/// A real ECDSA signature by key `n` over sha256(`n`).
fn sig(n: u8) -> Signature {
    let digest = sha256::Hash::hash(&[n]).to_byte_array();
    Secp256k1::new().sign_ecdsa(&SecpMessage::from_digest(digest), &secret(n))
}

fn cid(n: u8) -> ChannelId {
    ChannelId([n; 32])
}

fn txid(n: u8) -> Txid {
    Txid::from_byte_array([n; 32])
}

fn regtest() -> ChainHash {
    ChainHash::using_genesis_block(Network::Regtest)
}

fn p2wpkh(n: u8) -> ScriptBuf {
    let mut s = vec![0x00, 0x14];
    s.extend_from_slice(&[n; 20]);
    ScriptBuf::from_bytes(s)
}

fn attribution(n: u8) -> Box<AttributionData> {
    let mut hold = [0u32; AttributionData::HOPS];
    for (i, t) in hold.iter_mut().enumerate() {
        *t = u32::from(n).wrapping_mul(1000).wrapping_add(i as u32);
    }
    let mut hmacs = [[0u8; 4]; AttributionData::HMACS];
    for (i, h) in hmacs.iter_mut().enumerate() {
        *h = [n, i as u8, (i >> 8) as u8, 0xa5];
    }
    Box::new(AttributionData {
        htlc_hold_times: hold,
        truncated_hmacs: hmacs,
    })
}

/// An onion packet: version 0, a valid ephemeral point (or all zeros), patterned hop data.
fn onion(n: u8, zero_key: bool) -> Box<[u8; ONION_PACKET_LEN]> {
    let mut packet = Box::new([0u8; ONION_PACKET_LEN]);
    if !zero_key {
        packet[1..34].copy_from_slice(&point(n).serialize());
    }
    for (i, b) in packet[34..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(n);
    }
    packet
}

// ---- part (a): our encoding, LDK's reading -----------------------------------------------

/// Encodes `msg` with our codec, checks our own decoder reads it back, has LDK decode and
/// re-encode it, and requires LDK's bytes to equal ours.
fn assert_ldk_reencodes<M>(label: &str, msg: M)
where
    M: WireMessage + Into<Message> + Clone,
{
    let ours = msg.encode();
    let decoded = Message::decode(&ours).unwrap_or_else(|e| panic!("{label}: our decode: {e}"));
    assert_eq!(decoded, msg.clone().into(), "{label}: our own round trip");
    let theirs = ldk_reencode(&ours).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(
        hex(&theirs),
        hex(&ours),
        "{label}: LDK re-encodes our message differently"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn ldk_reencodes_our_warning_and_error() {
    for (label, channel_id, text) in [
        ("all channels, empty", ChannelId::ALL, ""),
        ("one channel", cid(7), "channel 7 is unhappy"),
        ("long text", cid(0xff), &"x".repeat(1000)[..]),
    ] {
        assert_ldk_reencodes(&format!("warning {label}"), Warning::new(channel_id, text));
        assert_ldk_reencodes(
            &format!("error {label}"),
            ErrorMessage::new(channel_id, text),
        );
    }
}

#[test]
fn ldk_reencodes_our_ping_and_pong() {
    // LDK (like BOLT 1's "SHOULD set ignored to 0s") writes zeros: use zeros.
    for (num_pong_bytes, len) in [
        (0u16, 0usize),
        (1, 0),
        (65531, 16),
        (65532, 100),
        (u16::MAX, 7),
    ] {
        assert_ldk_reencodes(
            &format!("ping {num_pong_bytes}/{len}"),
            Ping {
                num_pong_bytes,
                ignored: vec![0; len],
            },
        );
    }
    for len in [0usize, 1, 32, 1000] {
        assert_ldk_reencodes(
            &format!("pong {len}"),
            Pong {
                ignored: vec![0; len],
            },
        );
    }
}

#[test]
fn ldk_reads_our_init_as_the_same_features() {
    let mut ldk_like = Features::empty();
    for f in [
        Feature::DataLossProtect,
        Feature::StaticRemoteKey,
        Feature::PaymentSecret,
    ] {
        ldk_like.set_required(f);
    }
    for f in [
        Feature::UpfrontShutdownScript,
        Feature::VarOnionOptin,
        Feature::BasicMpp,
        Feature::LargeChannel,
        Feature::ShutdownAnySegwit,
        Feature::ChannelType,
        Feature::ScidAlias,
        Feature::ZeroConf,
        Feature::Anchors,
        Feature::RouteBlinding,
        Feature::ProvideStorage,
    ] {
        ldk_like.set_optional(f);
    }
    let mut only_low = Features::empty();
    only_low.set_optional(Feature::VarOnionOptin);
    let mut only_high = Features::empty();
    only_high.set_optional(Feature::ChannelType);
    let mut high_odd_bit = Features::empty();
    high_odd_bit.set_bit(1001);
    let cases = [
        ("no features", Features::empty(), None, None),
        ("only low bits", only_low, Some(vec![regtest()]), None),
        ("only high bits", only_high, None, None),
        ("an unknown odd bit 1001", high_odd_bit, Some(vec![]), None),
        (
            "ldk-like, regtest, ipv4",
            ldk_like.clone(),
            Some(vec![regtest()]),
            Some(SocketAddress::Ipv4 {
                addr: [127, 0, 0, 1],
                port: 9735,
            }),
        ),
        (
            "two networks, ipv6",
            ldk_like.clone(),
            Some(vec![regtest(), ChainHash::BITCOIN]),
            Some(SocketAddress::Ipv6 {
                addr: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                port: 65535,
            }),
        ),
        (
            "onion v3",
            ldk_like.clone(),
            None,
            Some(SocketAddress::OnionV3 {
                ed25519_pubkey: [9; 32],
                checksum: 0xbeef,
                version: 3,
                port: 0,
            }),
        ),
        (
            "hostname",
            ldk_like,
            None,
            Some(SocketAddress::Hostname {
                hostname: Hostname::new("node.example.com").expect("ascii"),
                port: 9735,
            }),
        ),
    ];
    for (label, features, networks, remote_addr) in cases {
        let init = Init::new(features, networks, remote_addr);
        let ours = init.encode();
        assert_eq!(
            Message::decode(&ours),
            Ok(Message::Init(init.clone())),
            "{label}"
        );
        let (_, payload) = split_type(&ours).expect("typed");
        let ldk: lightning::ln::msgs::Init =
            ldk_decode(payload, "init").unwrap_or_else(|e| panic!("{label}: {e}"));
        let theirs = ldk_reencode(&ours).unwrap_or_else(|e| panic!("{label}: {e}"));
        let back = match Message::decode(&theirs) {
            Ok(Message::Init(back)) => back,
            other => panic!("{label}: LDK's init does not decode as ours: {other:?}"),
        };
        // The documented exception: LDK pads globalfeatures to min(2, flen) bytes. Everything
        // else must be identical, and the combined features must be the same bits.
        assert!(
            back.combined_features()
                .same_bits(&init.combined_features()),
            "{label}: combined features differ"
        );
        assert_eq!(back.features, init.features, "{label}: features");
        assert_eq!(back.networks, init.networks, "{label}: networks");
        assert_eq!(back.remote_addr, init.remote_addr, "{label}: remote_addr");
        let expected_global_len = init.features.wire_len().min(2);
        assert_eq!(
            back.global_features.wire_len(),
            expected_global_len,
            "{label}: LDK's globalfeatures length"
        );
        // And LDK's reading of our init names the same bits as ours.
        let ldk_bits = ldk.features.le_flags().to_vec();
        let our_bits: Vec<u8> = init
            .combined_features()
            .to_wire_bytes()
            .into_iter()
            .rev()
            .collect();
        assert_eq!(
            trim_le(&ldk_bits),
            trim_le(&our_bits),
            "{label}: LDK's combined features"
        );
        // Our re-encoding of LDK's bytes is exactly LDK's bytes.
        assert_eq!(
            hex(&back.encode()),
            hex(&theirs),
            "{label}: our re-encoding of LDK's init"
        );
    }
}

fn trim_le(le: &[u8]) -> Vec<u8> {
    let mut v = le.to_vec();
    while v.last() == Some(&0) {
        v.pop();
    }
    v
}

fn channel_types() -> Vec<(&'static str, Option<Features>)> {
    vec![
        ("no channel_type", None),
        ("empty channel_type", Some(Features::empty())),
        (
            "static_remotekey",
            Some(Features::from_required(&[Feature::StaticRemoteKey])),
        ),
        (
            "anchors",
            Some(Features::from_required(&[
                Feature::StaticRemoteKey,
                Feature::Anchors,
            ])),
        ),
        (
            "anchors + scid_alias + zero_conf",
            Some(Features::from_required(&[
                Feature::StaticRemoteKey,
                Feature::Anchors,
                Feature::ScidAlias,
                Feature::ZeroConf,
            ])),
        ),
    ]
}

fn shutdown_scripts() -> Vec<(&'static str, Option<ScriptBuf>)> {
    vec![
        ("no upfront script", None),
        ("empty upfront script", Some(ScriptBuf::new())),
        ("p2wpkh upfront script", Some(p2wpkh(3))),
        (
            "p2wsh upfront script",
            Some(ScriptBuf::from_bytes(
                [&[0x00, 0x20][..], &[4; 32]].concat(),
            )),
        ),
    ]
}

#[test]
fn ldk_reencodes_our_open_channel() {
    for (amounts_label, funding, push, other) in [
        ("zero amounts", 0u64, 0u64, 0u64),
        ("max amounts", u64::MAX, u64::MAX, u64::MAX),
        ("typical", 1_000_000, 5_000_000, 354),
    ] {
        for (type_label, channel_type) in channel_types() {
            for (script_label, script) in shutdown_scripts() {
                let label = format!("open_channel {amounts_label}, {type_label}, {script_label}");
                let msg = OpenChannel {
                    chain_hash: regtest(),
                    temporary_channel_id: cid(1),
                    funding_satoshis: funding,
                    push_msat: push,
                    dust_limit_satoshis: other,
                    max_htlc_value_in_flight_msat: other,
                    channel_reserve_satoshis: other,
                    htlc_minimum_msat: other,
                    feerate_per_kw: if other == 0 { 0 } else { u32::MAX },
                    to_self_delay: if other == 0 { 0 } else { u16::MAX },
                    max_accepted_htlcs: 483,
                    funding_pubkey: point(1),
                    revocation_basepoint: point(2),
                    payment_basepoint: point(3),
                    delayed_payment_basepoint: point(4),
                    htlc_basepoint: point(5),
                    first_per_commitment_point: point(6),
                    channel_flags: if other == 0 { 0 } else { 0xff },
                    upfront_shutdown_script: script,
                    channel_type: channel_type.clone(),
                };
                assert_ldk_reencodes(&label, msg);
            }
        }
    }
}

#[test]
fn ldk_reencodes_our_accept_channel() {
    for (amounts_label, v) in [("zero", 0u64), ("max", u64::MAX), ("typical", 354)] {
        for (type_label, channel_type) in channel_types() {
            for (script_label, script) in shutdown_scripts() {
                let label = format!("accept_channel {amounts_label}, {type_label}, {script_label}");
                let msg = AcceptChannel {
                    temporary_channel_id: cid(2),
                    dust_limit_satoshis: v,
                    max_htlc_value_in_flight_msat: v,
                    channel_reserve_satoshis: v,
                    htlc_minimum_msat: v,
                    minimum_depth: if v == 0 { 0 } else { u32::MAX },
                    to_self_delay: if v == 0 { 0 } else { 144 },
                    max_accepted_htlcs: if v == 0 { 0 } else { u16::MAX },
                    funding_pubkey: point(11),
                    revocation_basepoint: point(12),
                    payment_basepoint: point(13),
                    delayed_payment_basepoint: point(14),
                    htlc_basepoint: point(15),
                    first_per_commitment_point: point(16),
                    upfront_shutdown_script: script,
                    channel_type: channel_type.clone(),
                };
                assert_ldk_reencodes(&label, msg);
            }
        }
    }
}

#[test]
fn ldk_reencodes_our_funding_created_and_signed() {
    for (i, output_index) in [0u16, 1, u16::MAX].into_iter().enumerate() {
        let n = i as u8 + 1;
        assert_ldk_reencodes(
            &format!("funding_created index {output_index}"),
            FundingCreated {
                temporary_channel_id: cid(n),
                funding_txid: txid(n * 3),
                funding_output_index: output_index,
                signature: sig(n),
            },
        );
        assert_ldk_reencodes(
            &format!("funding_signed {n}"),
            FundingSigned {
                channel_id: cid(n),
                signature: sig(n + 10),
            },
        );
    }
}

#[test]
fn ldk_reencodes_our_channel_ready() {
    for alias in [
        None,
        Some(0u64),
        Some(ShortChannelId::new(800_000, 1234, 1).0),
        Some(u64::MAX),
    ] {
        assert_ldk_reencodes(
            &format!("channel_ready alias {alias:?}"),
            ChannelReady {
                channel_id: cid(5),
                second_per_commitment_point: point(5),
                short_channel_id_alias: alias.map(ShortChannelId),
            },
        );
    }
}

#[test]
fn ldk_reencodes_our_shutdown() {
    for (label, script) in [
        ("empty", ScriptBuf::new()),
        ("p2wpkh", p2wpkh(9)),
        (
            "p2wsh",
            ScriptBuf::from_bytes([&[0x00, 0x20][..], &[4; 32]].concat()),
        ),
        (
            "p2tr",
            ScriptBuf::from_bytes([&[0x51, 0x20][..], &[5; 32]].concat()),
        ),
        (
            "op_return",
            ScriptBuf::from_bytes(vec![0x6a, 0x04, 1, 2, 3, 4]),
        ),
    ] {
        assert_ldk_reencodes(
            &format!("shutdown {label}"),
            Shutdown {
                channel_id: cid(6),
                scriptpubkey: script,
            },
        );
    }
}

#[test]
fn ldk_reencodes_our_closing_signed() {
    for fee in [0u64, 183, u64::MAX] {
        for range in [
            None,
            Some(ClosingFeeRange {
                min_fee_satoshis: 0,
                max_fee_satoshis: 0,
            }),
            Some(ClosingFeeRange {
                min_fee_satoshis: 100,
                max_fee_satoshis: 5000,
            }),
            Some(ClosingFeeRange {
                min_fee_satoshis: u64::MAX,
                max_fee_satoshis: u64::MAX,
            }),
        ] {
            assert_ldk_reencodes(
                &format!("closing_signed fee {fee} range {range:?}"),
                ClosingSigned {
                    channel_id: cid(7),
                    fee_satoshis: fee,
                    signature: sig(7),
                    fee_range: range,
                },
            );
        }
    }
}

#[test]
fn ldk_reencodes_our_update_add_htlc() {
    for (amount, cltv, id) in [
        (0u64, 0u32, 0u64),
        (u64::MAX, u32::MAX, u64::MAX),
        (5_000_000, 800_144, 3),
    ] {
        for zero_key in [false, true] {
            for path_key in [None, Some(point(20))] {
                assert_ldk_reencodes(
                    &format!(
                        "update_add_htlc amount {amount} zero onion key {zero_key} path_key {}",
                        path_key.is_some()
                    ),
                    UpdateAddHtlc {
                        channel_id: cid(8),
                        id,
                        amount_msat: amount,
                        payment_hash: PaymentHash([id as u8; 32]),
                        cltv_expiry: cltv,
                        onion_routing_packet: onion(7, zero_key),
                        path_key,
                    },
                );
            }
        }
    }
}

#[test]
fn ldk_reencodes_our_update_fulfill_and_fail_htlc() {
    for id in [0u64, 1, u64::MAX] {
        for attribution_data in [None, Some(attribution(id as u8 | 1))] {
            let with = attribution_data.is_some();
            assert_ldk_reencodes(
                &format!("update_fulfill_htlc id {id} attribution {with}"),
                UpdateFulfillHtlc {
                    channel_id: cid(9),
                    id,
                    payment_preimage: PaymentPreimage([id as u8; 32]),
                    attribution_data: attribution_data.clone(),
                },
            );
            for reason_len in [0usize, 32, 292, 1024] {
                assert_ldk_reencodes(
                    &format!("update_fail_htlc id {id} reason {reason_len} attribution {with}"),
                    UpdateFailHtlc {
                        channel_id: cid(10),
                        id,
                        reason: (0..reason_len).map(|i| i as u8).collect(),
                        attribution_data: attribution_data.clone(),
                    },
                );
            }
        }
    }
}

#[test]
fn ldk_reencodes_our_update_fail_malformed_htlc() {
    for (id, code) in [
        (0u64, 0x8000u16 | 0x4000 | 5),
        (1, 0x8000 | 0x4000 | 6),
        (u64::MAX, 0),
        (7, u16::MAX),
    ] {
        assert_ldk_reencodes(
            &format!("update_fail_malformed_htlc id {id} code {code:#x}"),
            UpdateFailMalformedHtlc {
                channel_id: cid(11),
                id,
                sha256_of_onion: sha256::Hash::hash(&[id as u8]).to_byte_array(),
                failure_code: code,
            },
        );
    }
}

#[test]
fn ldk_reencodes_our_commitment_signed() {
    for count in [0usize, 1, 3, 483] {
        for funding_txid in [None, Some(txid(0xaa))] {
            assert_ldk_reencodes(
                &format!(
                    "commitment_signed {count} htlc sigs, funding_txid {}",
                    funding_txid.is_some()
                ),
                CommitmentSigned {
                    channel_id: cid(12),
                    signature: sig(12),
                    htlc_signatures: (0..count).map(|i| sig((i % 250) as u8 + 1)).collect(),
                    funding_txid,
                },
            );
        }
    }
}

#[test]
fn ldk_reencodes_our_revoke_and_ack_and_update_fee() {
    for secret_byte in [0u8, 0x42, 0xff] {
        assert_ldk_reencodes(
            &format!("revoke_and_ack secret {secret_byte:#x}"),
            RevokeAndAck {
                channel_id: cid(13),
                per_commitment_secret: [secret_byte; 32],
                next_per_commitment_point: point(13),
            },
        );
    }
    for feerate in [0u32, 253, 2500, u32::MAX] {
        assert_ldk_reencodes(
            &format!("update_fee {feerate}"),
            UpdateFee {
                channel_id: cid(14),
                feerate_per_kw: feerate,
            },
        );
    }
}

#[test]
fn ldk_reencodes_our_channel_reestablish() {
    let flags = |n: u8, f: u8| FundingTxidFlags {
        txid: txid(n),
        retransmit_flags: f,
    };
    for (numbers_label, next_commitment, next_revocation, last_secret) in [
        ("fresh", 1u64, 0u64, [0u8; 32]),
        ("max", u64::MAX, u64::MAX, [0xff; 32]),
        ("mid", 17, 16, [0x5a; 32]),
    ] {
        for (tlv_label, next_funding, locked) in [
            ("no tlvs", None, None),
            ("next_funding", Some(flags(1, 1)), None),
            ("funding_locked", None, Some(flags(2, 0))),
            ("both", Some(flags(3, 0)), Some(flags(4, 1))),
            (
                "both, all flags",
                Some(flags(5, 0xff)),
                Some(flags(6, 0xff)),
            ),
        ] {
            assert_ldk_reencodes(
                &format!("channel_reestablish {numbers_label}, {tlv_label}"),
                ChannelReestablish {
                    channel_id: cid(15),
                    next_commitment_number: next_commitment,
                    next_revocation_number: next_revocation,
                    your_last_per_commitment_secret: last_secret,
                    my_current_per_commitment_point: point(15),
                    next_funding,
                    my_current_funding_locked: locked,
                },
            );
        }
    }
}

/// LDK 0.2 defines two odd, not-yet-BOLT TLVs on `update_add_htlc`: 65537
/// `skimmed_fee_msat` (LSP fee skimming) and 75537 `hold_htlc` (async payments). Our codec
/// ignores unknown odd TLVs as BOLT 1 says, so it reads such a message but does not carry
/// the record: relaying LDK's bytes through our codec is byte-exact only without them (LDK
/// sends them only when configured for those features, which the runs below are not).
#[test]
fn ldk_only_odd_tlvs_on_update_add_htlc_are_ignored_by_our_codec() {
    let ours = UpdateAddHtlc {
        channel_id: cid(8),
        id: 1,
        amount_msat: 5_000_000,
        payment_hash: PaymentHash([1; 32]),
        cltv_expiry: 800_144,
        onion_routing_packet: onion(7, false),
        path_key: None,
    };
    let plain = ours.encode();
    for (label, tlv) in [
        // type 65537 (BigSize 0xfe00010001), length 8, 1000 msat
        (
            "skimmed_fee_msat",
            [&[0xfe, 0, 1, 0, 1, 8][..], &1000u64.to_be_bytes()].concat(),
        ),
        // type 75537 (BigSize 0xfe00012711), length 0
        ("hold_htlc", vec![0xfe, 0, 1, 0x27, 0x11, 0]),
    ] {
        let with_tlv = [&plain[..], &tlv[..]].concat();
        // LDK understands the record and writes it back.
        assert_eq!(
            hex(&ldk_reencode(&with_tlv).expect("LDK reads it")),
            hex(&with_tlv),
            "{label}: LDK round trip"
        );
        let (_, payload) = split_type(&with_tlv).expect("typed");
        let ldk: lightning::ln::msgs::UpdateAddHTLC =
            ldk_decode(payload, "update_add_htlc").expect("LDK reads it");
        assert!(
            ldk.skimmed_fee_msat == Some(1000) || ldk.hold_htlc.is_some(),
            "{label}: LDK sees the record"
        );
        // Our codec reads the message, drops the record, and re-encodes without it.
        let decoded = Message::decode(&with_tlv).expect("odd TLV is ignored");
        assert_eq!(decoded, Message::UpdateAddHtlc(ours.clone()), "{label}");
        assert_eq!(hex(&decoded.encode()), hex(&plain), "{label}");
    }
}

/// LDK, as the node at the other end of a connection, accepts an `init` encoded by our codec
/// when it advertises (optional bits suffice) the features LDK requires, and refuses one
/// that lacks one of them, requires a feature LDK does not know, or names another chain.
#[test]
fn ldk_accepts_our_init_with_its_required_features_only() {
    let chain = FakeChain::new();
    let ldk = LdkNode::new("LDK", 9, LdkNode::config(false), &chain);
    let us = point(1);
    let required_by_ldk = [
        Feature::DataLossProtect,
        Feature::VarOnionOptin,
        Feature::StaticRemoteKey,
        Feature::PaymentSecret,
        Feature::ChannelType,
    ];
    let optional = |without: Option<Feature>| {
        let mut f = Features::empty();
        for x in required_by_ldk {
            if Some(x) != without {
                f.set_optional(x);
            }
        }
        f
    };
    let accepted = Init::new(optional(None), Some(vec![regtest()]), None);
    ldk.peer_connected(us, &accepted.encode(), true)
        .expect("LDK accepts our init");
    ldk.peer_disconnected(us);
    let no_networks = Init::new(optional(None), None, None);
    ldk.peer_connected(us, &no_networks.encode(), true)
        .expect("LDK accepts our init without networks");
    ldk.peer_disconnected(us);

    for missing in required_by_ldk {
        let init = Init::new(optional(Some(missing)), Some(vec![regtest()]), None);
        assert!(
            ldk.peer_connected(us, &init.encode(), true).is_err(),
            "LDK must refuse an init without {}",
            missing.name()
        );
    }
    let mut unknown_even = optional(None);
    unknown_even.set_bit(100);
    let init = Init::new(unknown_even, Some(vec![regtest()]), None);
    assert!(
        ldk.peer_connected(us, &init.encode(), true).is_err(),
        "LDK must refuse an init requiring unknown bit 100"
    );
    let init = Init::new(optional(None), Some(vec![ChainHash::BITCOIN]), None);
    assert!(
        ldk.peer_connected(us, &init.encode(), true).is_err(),
        "LDK must refuse a mainnet-only init on regtest"
    );
}

// ---- part (b): two LDK nodes talking through our codec --------------------------------------

/// A test hook rewriting a decoded message; returns whether it changed it.
type Tamper<'a> = Box<dyn FnMut(&mut Message) -> bool + 'a>;

/// Facts about what crossed, so a run proves it exercised what it claims to.
#[derive(Debug, Default)]
struct Seen {
    /// Most `htlc_signatures` in one `commitment_signed`.
    max_htlc_signatures: usize,
    /// `update_fulfill_htlc` / `update_fail_htlc` carrying `attribution_data` (TLV 1).
    fulfill_with_attribution: usize,
    fail_with_attribution: usize,
    /// `channel_type` of each `open_channel` and `accept_channel`.
    channel_types: Vec<Option<Features>>,
    /// `open_channel`/`accept_channel` with an upfront shutdown script (TLV 0).
    upfront_scripts: usize,
    /// `channel_ready` with `short_channel_id_alias` (TLV 1).
    ready_with_alias: usize,
    /// `closing_signed` with `fee_range` (TLV 1).
    closing_with_fee_range: usize,
    /// `init` with a `networks` TLV.
    init_with_networks: usize,
}

impl Seen {
    fn observe(&mut self, msg: &Message) {
        match msg {
            Message::CommitmentSigned(m) => {
                self.max_htlc_signatures = self.max_htlc_signatures.max(m.htlc_signatures.len())
            }
            Message::UpdateFulfillHtlc(m) if m.attribution_data.is_some() => {
                self.fulfill_with_attribution += 1
            }
            Message::UpdateFailHtlc(m) if m.attribution_data.is_some() => {
                self.fail_with_attribution += 1
            }
            Message::OpenChannel(m) => {
                self.channel_types.push(m.channel_type.clone());
                self.upfront_scripts += usize::from(m.upfront_shutdown_script.is_some());
            }
            Message::AcceptChannel(m) => {
                self.channel_types.push(m.channel_type.clone());
                self.upfront_scripts += usize::from(m.upfront_shutdown_script.is_some());
            }
            Message::ChannelReady(m) if m.short_channel_id_alias.is_some() => {
                self.ready_with_alias += 1
            }
            Message::ClosingSigned(m) if m.fee_range.is_some() => self.closing_with_fee_range += 1,
            Message::Init(m) if m.networks.is_some() => self.init_with_networks += 1,
            _ => {}
        }
    }
}

/// Two LDK nodes whose every message is decoded and re-encoded by our codec on the way.
struct ThroughCodec<'a> {
    a: &'a LdkNode,
    b: &'a LdkNode,
    /// Message types that crossed (in either direction) and how many times.
    crossed: BTreeMap<u16, usize>,
    /// Events seen on A and on B, in order, not yet taken by the test.
    events_a: Vec<LdkEvent>,
    events_b: Vec<LdkEvent>,
    /// Odd message types our codec does not type (it ignores them, as BOLT 1 says); they are
    /// not delivered, as our node would not deliver them.
    ignored: Vec<u16>,
    /// How many times LDK asked for a disconnect.
    disconnects: usize,
    /// A test hook: may rewrite a decoded message from A to B before it is re-encoded.
    tamper_a_to_b: Option<Tamper<'a>>,
    /// What the messages that crossed carried.
    seen: Seen,
}

impl<'a> ThroughCodec<'a> {
    fn new(a: &'a LdkNode, b: &'a LdkNode) -> Self {
        ThroughCodec {
            a,
            b,
            crossed: BTreeMap::new(),
            events_a: Vec::new(),
            events_b: Vec::new(),
            ignored: Vec::new(),
            disconnects: 0,
            tamper_a_to_b: None,
            seen: Seen::default(),
        }
    }

    /// Our codec's view of LDK's bytes: decode, re-encode, and require the same bytes.
    fn through_codec(&mut self, from: &str, bytes: &[u8], tamper: bool) -> Option<Vec<u8>> {
        let mut msg = Message::decode(bytes).unwrap_or_else(|e| {
            panic!(
                "{from}: our codec cannot decode LDK's message {}: {e}",
                hex(bytes)
            )
        });
        let t = msg.message_type();
        if let Message::Unknown { message_type } = msg {
            self.ignored.push(message_type);
            return None;
        }
        // Init too must be exact: our decoder keeps LDK's globalfeatures length as read.
        let ours = msg.encode();
        assert_eq!(
            hex(&ours),
            hex(bytes),
            "{from}: type {t}: our re-encoding differs from LDK's bytes"
        );
        *self.crossed.entry(t).or_default() += 1;
        self.seen.observe(&msg);
        if tamper {
            if let Some(hook) = self.tamper_a_to_b.as_mut() {
                if hook(&mut msg) {
                    return Some(msg.encode());
                }
            }
        }
        Some(ours)
    }

    /// Connects A (outbound) and B (inbound): each one's `init` through our codec.
    fn connect(&mut self) {
        let a_init = self.a.init_bytes(self.b.node_id);
        let b_init = self.b.init_bytes(self.a.node_id);
        let a_init = self
            .through_codec("A", &a_init, false)
            .expect("init is typed");
        let b_init = self
            .through_codec("B", &b_init, false)
            .expect("init is typed");
        self.b
            .peer_connected(self.a.node_id, &a_init, true)
            .expect("B accepts A's init");
        self.a
            .peer_connected(self.b.node_id, &b_init, false)
            .expect("A accepts B's init");
    }

    fn disconnect(&mut self) {
        self.a.peer_disconnected(self.b.node_id);
        self.b.peer_disconnected(self.a.node_id);
    }

    /// Moves messages both ways (and collects events) until neither node has anything more.
    fn pump(&mut self) {
        for _round in 0..1000 {
            let mut moved = false;
            for a_to_b in [true, false] {
                let (from, to, name) = if a_to_b {
                    (self.a, self.b, "A")
                } else {
                    (self.b, self.a, "B")
                };
                for (dest, bytes) in from.drain_messages() {
                    assert_eq!(dest, to.node_id, "{name} wrote to an unknown peer");
                    moved = true;
                    if is_disconnect(&bytes) {
                        self.disconnects += 1;
                        self.disconnect();
                        continue;
                    }
                    if let Some(ours) = self.through_codec(name, &bytes, a_to_b) {
                        to.handle_message(from.node_id, &ours)
                            .unwrap_or_else(|e| panic!("{e}"));
                    }
                }
            }
            let ea = self.a.drain_events();
            let eb = self.b.drain_events();
            moved |= !ea.is_empty() || !eb.is_empty();
            self.events_a.extend(ea);
            self.events_b.extend(eb);
            if !moved {
                return;
            }
        }
        panic!("the nodes never went quiet");
    }

    fn take_events(&mut self) -> (Vec<LdkEvent>, Vec<LdkEvent>) {
        (
            std::mem::take(&mut self.events_a),
            std::mem::take(&mut self.events_b),
        )
    }

    fn crossed(&self, t: u16) -> usize {
        self.crossed.get(&t).copied().unwrap_or(0)
    }
}

fn find_claimable(events: &[LdkEvent], hash: PaymentHash) -> (u64, PaymentPreimage) {
    events
        .iter()
        .find_map(|e| match e {
            LdkEvent::PaymentClaimable {
                payment_hash,
                amount_msat,
                preimage: Some(preimage),
            } if *payment_hash == hash => Some((*amount_msat, *preimage)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no PaymentClaimable for {hash:?} in {events:?}"))
}

/// Pays `amount_msat` from `payer` to `payee` (one of the link's nodes each) and claims it;
/// checks PaymentClaimable, PaymentClaimed and PaymentSent.
fn pay_and_claim(link: &mut ThroughCodec<'_>, payer_is_a: bool, amount_msat: u64) {
    let (payer, payee) = if payer_is_a {
        (link.a, link.b)
    } else {
        (link.b, link.a)
    };
    let (hash, secret) = payee.create_inbound_payment(amount_msat);
    payer
        .send_direct_payment(payee.node_id, amount_msat, hash, secret)
        .expect("send");
    link.pump();
    let (ea, eb) = link.take_events();
    let (payer_events, payee_events) = if payer_is_a { (ea, eb) } else { (eb, ea) };
    assert!(
        payer_events.is_empty(),
        "payer events before claim: {payer_events:?}"
    );
    let (amount, preimage) = find_claimable(&payee_events, hash);
    assert_eq!(amount, amount_msat);
    assert_eq!(preimage.payment_hash(), hash);
    payee.claim_funds(preimage);
    link.pump();
    let (ea, eb) = link.take_events();
    let (payer_events, payee_events) = if payer_is_a { (ea, eb) } else { (eb, ea) };
    assert!(
        payee_events.iter().any(|e| matches!(e,
            LdkEvent::PaymentClaimed { payment_hash, amount_msat: a } if *payment_hash == hash && *a == amount_msat)),
        "payee: no PaymentClaimed in {payee_events:?}"
    );
    assert!(
        payer_events.iter().any(|e| matches!(e,
            LdkEvent::PaymentSent { payment_hash, preimage: p, fee_paid_msat } if *payment_hash == hash && *p == preimage && fee_paid_msat.unwrap_or(0) == 0)),
        "payer: no PaymentSent in {payer_events:?}"
    );
}

/// Starts `a_to_b` payments from A and `b_to_a` from B before moving any message, so the
/// commitments carry several HTLCs at once (several HTLC signatures per `commitment_signed`),
/// then claims them all.
fn pay_concurrently(link: &mut ThroughCodec<'_>, a_to_b: usize, b_to_a: usize, amount_msat: u64) {
    let mut pending = Vec::new();
    for (count, payer_is_a) in [(a_to_b, true), (b_to_a, false)] {
        let (payer, payee) = if payer_is_a {
            (link.a, link.b)
        } else {
            (link.b, link.a)
        };
        for _ in 0..count {
            let (hash, secret) = payee.create_inbound_payment(amount_msat);
            payer
                .send_direct_payment(payee.node_id, amount_msat, hash, secret)
                .expect("send");
            pending.push((payer_is_a, hash));
        }
    }
    link.pump();
    let (ea, eb) = link.take_events();
    for (payer_is_a, hash) in &pending {
        let payee_events = if *payer_is_a { &eb } else { &ea };
        let (amount, preimage) = find_claimable(payee_events, *hash);
        assert_eq!(amount, amount_msat);
        if *payer_is_a {
            link.b.claim_funds(preimage);
        } else {
            link.a.claim_funds(preimage);
        }
    }
    link.pump();
    let (ea, eb) = link.take_events();
    for (payer_is_a, hash) in &pending {
        let payer_events = if *payer_is_a { &ea } else { &eb };
        assert!(
            payer_events.iter().any(
                |e| matches!(e, LdkEvent::PaymentSent { payment_hash, .. } if payment_hash == hash)
            ),
            "no PaymentSent for {hash:?} in {payer_events:?}"
        );
    }
}

/// Sends A→B and has B fail it back (update_fail_htlc); A sees the payment fail.
fn pay_and_fail_back(link: &mut ThroughCodec<'_>, amount_msat: u64) {
    let (hash, secret) = link.b.create_inbound_payment(amount_msat);
    link.a
        .send_direct_payment(link.b.node_id, amount_msat, hash, secret)
        .expect("send");
    link.pump();
    let (_, eb) = link.take_events();
    find_claimable(&eb, hash);
    link.b.fail_htlc_backwards(hash);
    link.pump();
    let (ea, _) = link.take_events();
    assert!(
        ea.iter().any(|e| matches!(e,
            LdkEvent::PaymentPathFailed { payment_hash, permanently: true, .. } if *payment_hash == hash)),
        "A: no permanent PaymentPathFailed in {ea:?}"
    );
    assert!(
        ea.iter()
            .any(|e| matches!(e, LdkEvent::PaymentFailed { payment_hash: Some(h) } if *h == hash)),
        "A: no PaymentFailed in {ea:?}"
    );
}

/// Sends A→B but flips one byte of the onion's hop data on the way (through our codec's
/// typed `update_add_htlc`): B cannot check the onion HMAC and answers
/// `update_fail_malformed_htlc` (BADONION|PERM|5); A sees the payment fail.
fn pay_with_malformed_onion(link: &mut ThroughCodec<'_>, amount_msat: u64) {
    let (hash, secret) = link.b.create_inbound_payment(amount_msat);
    link.tamper_a_to_b = Some(Box::new(|msg: &mut Message| {
        if let Message::UpdateAddHtlc(add) = msg {
            add.onion_routing_packet[100] ^= 0x01;
            true
        } else {
            false
        }
    }));
    link.a
        .send_direct_payment(link.b.node_id, amount_msat, hash, secret)
        .expect("send");
    link.pump();
    link.tamper_a_to_b = None;
    let (ea, eb) = link.take_events();
    assert!(
        !eb.iter()
            .any(|e| matches!(e, LdkEvent::PaymentClaimable { .. })),
        "B must not accept a tampered onion: {eb:?}"
    );
    assert!(
        ea.iter().any(|e| matches!(e, LdkEvent::PaymentPathFailed { payment_hash, .. } if *payment_hash == hash)),
        "A: no PaymentPathFailed in {ea:?}"
    );
}

/// The whole life of a channel between two LDK nodes, every message through our codec.
fn run_channel_life(anchors: bool) -> BTreeMap<u16, usize> {
    let mut chain = FakeChain::new();
    chain.mine_empty(101);
    let a = LdkNode::new("A", 1, LdkNode::config(anchors), &chain);
    let b = LdkNode::new("B", 2, LdkNode::config(anchors), &chain);
    let mut link = ThroughCodec::new(&a, &b);

    // init both ways, then a ping as LDK's PeerManager writes it (A's side), through our
    // codec to B, whose pong comes back through our codec.
    link.connect();
    let ping = ldk_frame(&lightning::ln::msgs::Ping {
        ponglen: 12,
        byteslen: 5,
    });
    let ping = link
        .through_codec("A", &ping, false)
        .expect("ping is typed");
    b.handle_message(a.node_id, &ping).expect("ping");
    link.pump();
    assert_eq!(link.crossed(19), 1, "B answered the ping with a pong");

    // open_channel .. funding_signed; A broadcasts the funding transaction.
    let sats = 1_000_000;
    let push_msat = 300_000_000;
    a.create_channel(b.node_id, sats, push_msat)
        .expect("create_channel");
    link.pump();
    let (ea, eb) = link.take_events();
    let funding_tx = ea
        .iter()
        .find_map(|e| match e {
            LdkEvent::FundingGenerated { funding_tx, .. } => Some(funding_tx.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("A: no FundingGenerated in {ea:?}"));
    let funding_txid = funding_tx.compute_txid();
    if anchors {
        assert!(
            eb.iter()
                .any(|e| matches!(e, LdkEvent::InboundChannelAccepted { .. })),
            "B accepts the anchor channel manually, as LDK requires: {eb:?}"
        );
    }
    for (name, events) in [("A", &ea), ("B", &eb)] {
        assert!(
            events.iter().any(|e| matches!(e, LdkEvent::ChannelPending { funding_txid: t, .. } if *t == funding_txid)),
            "{name}: no ChannelPending in {events:?}"
        );
    }
    assert_eq!(
        a.broadcaster.take(),
        vec![funding_tx.clone()],
        "A broadcasts the funding tx"
    );

    // Six confirmations (LDK as fundee asks for minimum_depth 6): channel_ready both ways.
    chain.mine(vec![funding_tx]);
    chain.mine_empty(5);
    a.sync_to(&chain);
    b.sync_to(&chain);
    link.pump();
    let (ea, eb) = link.take_events();
    for (name, events) in [("A", &ea), ("B", &eb)] {
        assert!(
            events
                .iter()
                .any(|e| matches!(e, LdkEvent::ChannelReady { anchors: x, .. } if *x == anchors)),
            "{name}: no ChannelReady (anchors {anchors}) in {events:?}"
        );
    }
    let channel_id = a.usable_channel_with(b.node_id).channel_id;

    // Payments above dust both ways: HTLC outputs and HTLC signatures on both commitments.
    pay_and_claim(&mut link, true, 5_000_000);
    pay_and_claim(&mut link, false, 5_000_000);
    pay_and_claim(&mut link, true, 5_000_000);

    // Three HTLCs in flight at once, two one way and one the other.
    pay_concurrently(&mut link, 2, 1, 5_000_000);

    // A payment failed back by the payee, and one whose onion was damaged on the way.
    pay_and_fail_back(&mut link, 5_000_000);
    pay_with_malformed_onion(&mut link, 5_000_000);

    // update_fee: the funder's estimate rises.
    let before = link.crossed(134);
    a.fee_estimator.set(2500);
    b.fee_estimator.set(2500);
    a.timer_tick();
    link.pump();
    assert_eq!(link.crossed(134), before + 1, "A sent update_fee");
    assert_eq!(
        b.usable_channel_with(a.node_id).feerate_sat_per_1000_weight,
        Some(2500)
    );

    // Disconnect while a payment is half-way (B has update_add_htlc, not commitment_signed),
    // reconnect: channel_reestablish both ways, the update is retransmitted, then pay on.
    {
        let (hash, secret) = b.create_inbound_payment(5_000_000);
        a.send_direct_payment(b.node_id, 5_000_000, hash, secret)
            .expect("send");
        let mut delivered = 0;
        for (_, bytes) in a.drain_messages() {
            let ours = link.through_codec("A", &bytes, false).expect("typed");
            if split_type(&ours).expect("typed").0 == 128 {
                b.handle_message(a.node_id, &ours).expect("add");
                delivered += 1;
            }
        }
        assert_eq!(delivered, 1, "one update_add_htlc delivered before the cut");
        link.disconnect();
        let reestablish_before = link.crossed(136);
        link.connect();
        link.pump();
        assert_eq!(
            link.crossed(136),
            reestablish_before + 2,
            "reestablish both ways"
        );
        let (_, eb) = link.take_events();
        let (_, preimage) = find_claimable(&eb, hash);
        b.claim_funds(preimage);
        link.pump();
        let (ea, _) = link.take_events();
        assert!(
            ea.iter().any(
                |e| matches!(e, LdkEvent::PaymentSent { payment_hash, .. } if *payment_hash == hash)
            ),
            "A: no PaymentSent after reconnection in {ea:?}"
        );
    }
    pay_and_claim(&mut link, false, 5_000_000);

    // Cooperative close: shutdown both ways, closing_signed negotiation, both broadcast.
    a.close_channel(ChannelId(channel_id.0), b.node_id)
        .expect("close_channel");
    link.pump();
    let (ea, eb) = link.take_events();
    for (name, events) in [("A", &ea), ("B", &eb)] {
        assert!(
            events
                .iter()
                .any(|e| matches!(e, LdkEvent::ChannelClosed { .. })),
            "{name}: no ChannelClosed in {events:?}"
        );
    }
    let closing_a = a.broadcaster.take();
    let closing_b = b.broadcaster.take();
    assert_eq!(
        closing_a.len(),
        1,
        "A broadcasts one closing tx: {closing_a:?}"
    );
    assert_eq!(closing_a, closing_b, "both broadcast the same closing tx");
    assert_eq!(
        closing_a[0].input[0].previous_output.txid, funding_txid,
        "the closing tx spends the funding output"
    );
    chain.mine(closing_a);
    a.sync_to(&chain);
    b.sync_to(&chain);

    assert_eq!(link.disconnects, 0, "LDK never asked to disconnect");
    assert!(
        link.ignored.iter().all(|t| t % 2 == 1),
        "only odd types ignored"
    );
    for t in [
        16, 18, 19, 32, 33, 34, 35, 36, 38, 39, 128, 130, 131, 132, 133, 134, 135, 136, 258,
    ] {
        assert!(
            link.crossed(t) > 0,
            "type {t} never crossed: {:?}",
            link.crossed
        );
    }
    eprintln!(
        "odd types our codec ignored (not delivered): {:?}",
        link.ignored
    );
    eprintln!("{:?}", link.seen);
    // What the run exercised, beyond the message types.
    let seen = &link.seen;
    assert!(
        seen.max_htlc_signatures >= 3,
        "a commitment_signed carried three HTLC signatures"
    );
    assert_eq!(
        seen.upfront_scripts, 2,
        "LDK commits to an upfront shutdown script"
    );
    assert!(
        seen.fulfill_with_attribution > 0,
        "LDK 0.2 sends attribution_data on fulfill"
    );
    assert!(
        seen.fail_with_attribution > 0,
        "LDK 0.2 sends attribution_data on fail"
    );
    let mut expected_type = Features::from_required(&[Feature::StaticRemoteKey]);
    if anchors {
        expected_type.set_required(Feature::Anchors);
    }
    assert_eq!(
        seen.channel_types.len(),
        2,
        "one open_channel, one accept_channel"
    );
    for t in &seen.channel_types {
        let t = t.as_ref().expect("LDK always sends channel_type");
        assert!(t.same_bits(&expected_type), "channel_type {t:?}");
    }
    assert!(
        seen.ready_with_alias > 0,
        "LDK sends an scid alias in channel_ready"
    );
    assert!(
        seen.closing_with_fee_range > 0,
        "LDK sends fee_range in closing_signed"
    );
    assert_eq!(seen.init_with_networks, 4, "LDK's init carries networks");
    link.crossed.clone()
}

#[test]
fn ldk_to_ldk_through_our_codec_static_remotekey() {
    let crossed = run_channel_life(false);
    eprintln!("static_remotekey run, message types crossed: {crossed:?}");
}

#[test]
fn ldk_to_ldk_through_our_codec_anchors() {
    let crossed = run_channel_life(true);
    eprintln!("anchors run, message types crossed: {crossed:?}");
}

/// A force close by B: B sends `error` (through our codec), both sides close, B broadcasts
/// its commitment transaction.
#[test]
fn ldk_to_ldk_through_our_codec_force_close_sends_error() {
    let mut chain = FakeChain::new();
    chain.mine_empty(101);
    let a = LdkNode::new("A", 3, LdkNode::config(false), &chain);
    let b = LdkNode::new("B", 4, LdkNode::config(false), &chain);
    let mut link = ThroughCodec::new(&a, &b);
    link.connect();
    a.create_channel(b.node_id, 500_000, 0)
        .expect("create_channel");
    link.pump();
    let funding_tx = a.broadcaster.take().pop().expect("funding broadcast");
    chain.mine(vec![funding_tx.clone()]);
    chain.mine_empty(5);
    a.sync_to(&chain);
    b.sync_to(&chain);
    link.pump();
    let channel_id = b.usable_channel_with(a.node_id).channel_id;
    let _ = link.take_events();

    b.force_close(ChannelId(channel_id.0), a.node_id)
        .expect("force_close");
    link.pump();
    assert_eq!(link.crossed(17), 1, "B sent error");
    let (ea, eb) = link.take_events();
    for (name, events) in [("A", &ea), ("B", &eb)] {
        assert!(
            events
                .iter()
                .any(|e| matches!(e, LdkEvent::ChannelClosed { .. })),
            "{name}: no ChannelClosed in {events:?}"
        );
    }
    let commitment = b.broadcaster.take();
    assert!(
        commitment
            .iter()
            .any(|tx| tx.input[0].previous_output.txid == funding_tx.compute_txid()),
        "B broadcasts a commitment spending the funding output: {commitment:?}"
    );
}
