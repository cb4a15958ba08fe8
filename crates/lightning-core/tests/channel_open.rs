//! Channel establishment: `open_channel` / `accept_channel` validation, funding signatures,
//! channel type negotiation, minimum depth and `channel_ready` with aliases.

mod channel_support;

use channel_support::{chain, config, features, shutdown_script, wire, Pair};
use lightning_core::bitcoin::constants::ChainHash;
use lightning_core::bitcoin::hashes::Hash;
use lightning_core::bitcoin::{Network, OutPoint, ScriptBuf, Txid};
use lightning_core::channel::{
    derive_channel_keys, Channel, ChannelConfig, ChannelError, ChannelEvent, ChannelPhase,
    OutboundParams,
};
use lightning_core::secp256k1::{self, Secp256k1, SecretKey};
use lightning_core::transactions::ChannelType;
use lightning_core::types::{ChannelId, ShortChannelId};
use lightning_core::wire::{AcceptChannel, Feature, Features, FundingSigned, Message, OpenChannel};

fn params(funding: u64, push: u64, feerate: u32) -> OutboundParams {
    OutboundParams {
        chain_hash: chain(),
        temporary_channel_id: ChannelId([0x11; 32]),
        funding_satoshis: funding,
        push_msat: push,
        feerate_per_kw: feerate,
        announce: false,
        shutdown_script: shutdown_script(0xaa),
    }
}

fn outbound(anchors: bool) -> (Channel, OpenChannel) {
    Channel::new_outbound(
        params(1_000_000, 0, 2500),
        &features(anchors),
        &features(anchors),
        config(anchors),
        derive_channel_keys(&[1; 32], 0),
    )
    .unwrap()
}

fn inbound(open: &OpenChannel, anchors: bool) -> Result<(Channel, AcceptChannel), ChannelError> {
    Channel::new_inbound(
        open,
        chain(),
        &features(anchors),
        &features(anchors),
        config(anchors),
        derive_channel_keys(&[2; 32], 0),
        shutdown_script(0xbb),
    )
}

/// Each mutation of a valid `open_channel` must be refused with `Close` naming `needle`.
#[test]
fn open_channel_receiver_rules() {
    let (_, open) = outbound(false);
    assert!(inbound(&open, false).is_ok());
    type Mutation = (&'static str, fn(&mut OpenChannel));
    let cases: [Mutation; 14] = [
        ("chain_hash", |o| {
            o.chain_hash = ChainHash::using_genesis_block(Network::Bitcoin)
        }),
        ("push_msat", |o| o.push_msat = o.funding_satoshis * 1000 + 1),
        ("funding_satoshis", |o| o.funding_satoshis = 999),
        ("funding_satoshis", |o| o.funding_satoshis = 1 << 24),
        ("dust_limit_satoshis 353", |o| o.dust_limit_satoshis = 353),
        ("above channel_reserve_satoshis", |o| {
            o.dust_limit_satoshis = o.channel_reserve_satoshis + 1
        }),
        ("max_accepted_htlcs 484", |o| o.max_accepted_htlcs = 484),
        ("max_accepted_htlcs 0", |o| o.max_accepted_htlcs = 0),
        ("feerate_per_kw 252", |o| o.feerate_per_kw = 252),
        ("feerate_per_kw 100001", |o| o.feerate_per_kw = 100_001),
        ("to_self_delay 2017", |o| o.to_self_delay = 2017),
        ("no channel_type", |o| o.channel_type = None),
        ("not supported", |o| {
            o.channel_type = Some(Features::from_required(&[
                Feature::StaticRemoteKey,
                Feature::Anchors,
            ]))
        }),
        ("upfront_shutdown_script", |o| {
            o.upfront_shutdown_script = Some(ScriptBuf::from_bytes(vec![0x6a]))
        }),
    ];
    for (needle, mutate) in cases {
        let mut bad = open.clone();
        mutate(&mut bad);
        let bad = match wire(&Message::OpenChannel(bad)) {
            Message::OpenChannel(o) => o,
            other => panic!("{other:?}"),
        };
        match inbound(&bad, false) {
            Err(ChannelError::Close(t)) => {
                assert!(t.to_string().contains(needle), "{t:?} lacks {needle:?}")
            }
            Err(other) => panic!("{needle}: expected Close, got {other:?}"),
            Ok(_) => panic!("{needle}: accepted"),
        }
    }
}

#[test]
fn open_channel_funder_cannot_pay_fee_or_reserve() {
    // 20,000 sat at 10,000 sat/kw: fee 7,240 sat; push everything but 5,000 sat.
    let (_, open) = Channel::new_outbound(
        params(20_000, 15_000_000, 10_000),
        &features(false),
        &features(false),
        config(false),
        derive_channel_keys(&[1; 32], 0),
    )
    .unwrap();
    assert!(
        matches!(inbound(&open, false), Err(ChannelError::Close(t)) if t.to_string().contains("cannot pay"))
    );
    // Enough for the fee, but neither side above the reserve.
    let (_, open) = Channel::new_outbound(
        params(20_000, 0, 253),
        &features(false),
        &features(false),
        ChannelConfig {
            reserve_proportional_millionths: 200_000,
            ..config(false)
        },
        derive_channel_keys(&[1; 32], 0),
    )
    .unwrap();
    let res = Channel::new_inbound(
        &open,
        chain(),
        &features(false),
        &features(false),
        ChannelConfig {
            reserve_proportional_millionths: 1_000_000,
            max_reserve_proportional_millionths: 1_000_000,
            ..config(false)
        },
        derive_channel_keys(&[2; 32], 0),
        shutdown_script(0xbb),
    );
    assert!(matches!(res, Err(ChannelError::Close(t)) if t.to_string().contains("reserve")));
}

#[test]
fn channel_type_negotiation() {
    let (a, open) = outbound(true);
    assert_eq!(a.channel_type(), ChannelType::AnchorsZeroFeeHtlcTx);
    let (b, accept) = inbound(&open, true).unwrap();
    assert_eq!(b.channel_type(), ChannelType::AnchorsZeroFeeHtlcTx);
    assert_eq!(accept.channel_type, open.channel_type);
    // A peer without anchors gets static_remotekey.
    let (a, open) = Channel::new_outbound(
        params(1_000_000, 0, 2500),
        &features(true),
        &features(false),
        config(true),
        derive_channel_keys(&[1; 32], 0),
    )
    .unwrap();
    assert_eq!(a.channel_type(), ChannelType::StaticRemoteKey);
    assert_eq!(
        open.channel_type,
        Some(Features::from_required(&[Feature::StaticRemoteKey]))
    );
    // Upfront shutdown script sent when both support it.
    assert_eq!(open.upfront_shutdown_script, Some(shutdown_script(0xaa)));
}

fn accept_checked(mutate: fn(&mut AcceptChannel), needle: &str) {
    let (mut a, open) = outbound(false);
    let (_, mut accept) = inbound(&open, false).unwrap();
    mutate(&mut accept);
    let before = a.clone();
    match a.handle_message(&wire(&Message::AcceptChannel(accept))) {
        Err(ChannelError::Close(t)) => {
            assert!(t.to_string().contains(needle), "{t:?} lacks {needle:?}")
        }
        other => panic!("{needle}: expected Close, got {other:?}"),
    }
    assert_eq!(a, before);
}

#[test]
fn accept_channel_funder_rules() {
    accept_checked(|a| a.channel_type = None, "no channel_type");
    accept_checked(
        |a| {
            a.channel_type = Some(Features::from_required(&[
                Feature::StaticRemoteKey,
                Feature::Anchors,
            ]))
        },
        "differs",
    );
    accept_checked(|a| a.minimum_depth = 145, "minimum_depth 145");
    accept_checked(
        |a| a.channel_reserve_satoshis = 353,
        "below our dust_limit_satoshis",
    );
    accept_checked(
        |a| a.dust_limit_satoshis = 20_000,
        "above our channel_reserve_satoshis",
    );
    accept_checked(|a| a.max_accepted_htlcs = 500, "max_accepted_htlcs 500");
    accept_checked(|a| a.to_self_delay = 5000, "to_self_delay 5000");
    accept_checked(|a| a.htlc_minimum_msat = 2_000_000, "htlc_minimum_msat");
}

#[test]
fn funding_signatures_are_verified_before_anything() {
    let (mut a, open) = outbound(false);
    let (mut b, accept) = inbound(&open, false).unwrap();
    a.handle_accept_channel(&accept).unwrap();
    let outpoint = OutPoint {
        txid: Txid::from_byte_array([5; 32]),
        vout: 0,
    };
    let mut fc = a.funding_transaction_built(outpoint).unwrap();
    assert_eq!(a.phase(), ChannelPhase::AwaitingFundingSigned);
    let secp = Secp256k1::new();
    let bogus = secp.sign_ecdsa(
        &secp256k1::Message::from_digest([7; 32]),
        &SecretKey::from_slice(&[8; 32]).unwrap(),
    );
    // Fundee: a bad funder signature is refused, nothing changes.
    let good_sig = fc.signature;
    fc.signature = bogus;
    let before_b = b.clone();
    assert!(
        matches!(b.handle_funding_created(&fc), Err(ChannelError::Close(t)) if t.to_string().contains("does not verify"))
    );
    assert_eq!(b, before_b);
    fc.signature = good_sig;
    let fs = b.handle_funding_created(&fc).unwrap();
    assert_eq!(
        fs.channel_id,
        ChannelId::from_funding_outpoint(&outpoint.txid, 0)
    );
    // Funder: a bad fundee signature is refused (do not broadcast the funding tx).
    let before_a = a.clone();
    let bad = FundingSigned {
        channel_id: fs.channel_id,
        signature: bogus,
    };
    assert!(matches!(
        a.handle_funding_signed(&bad),
        Err(ChannelError::Close(_))
    ));
    assert_eq!(a, before_a);
    a.handle_funding_signed(&fs).unwrap();
    assert_eq!(a.phase(), ChannelPhase::AwaitingChannelReady);
    assert_eq!(a.channel_id(), b.channel_id());
    // Both first commitments are signed: a force close right away is possible.
    let mut a2 = a.clone();
    assert!(!a2.force_close().unwrap().input[0].witness.is_empty());
}

#[test]
fn channel_ready_waits_for_minimum_depth() {
    let (mut a, open) = outbound(false);
    let (mut b, accept) = inbound(&open, false).unwrap();
    assert_eq!(accept.minimum_depth, 3);
    a.handle_accept_channel(&accept).unwrap();
    let outpoint = OutPoint {
        txid: Txid::from_byte_array([5; 32]),
        vout: 2,
    };
    let fc = a.funding_transaction_built(outpoint).unwrap();
    let fs = b.handle_funding_created(&fc).unwrap();
    a.handle_funding_signed(&fs).unwrap();
    b.set_local_alias(ShortChannelId(42));
    for c in [&mut a, &mut b] {
        c.funding_confirmed(700_000, 12, 2).unwrap();
        c.best_block_updated(700_001).unwrap();
        assert!(c.drain_messages().is_empty(), "depth 2 < 3");
        c.best_block_updated(700_002).unwrap();
    }
    let ready_a = a.drain_messages();
    let ready_b = b.drain_messages();
    assert_eq!(ready_a.len(), 1);
    let Message::ChannelReady(rb) = wire(&ready_b[0]) else {
        panic!()
    };
    assert_eq!(rb.short_channel_id_alias, Some(ShortChannelId(42)));
    a.handle_message(&Message::ChannelReady(rb)).unwrap();
    b.handle_message(&wire(&ready_a[0])).unwrap();
    assert_eq!(a.phase(), ChannelPhase::Normal);
    assert_eq!(
        a.drain_events(),
        vec![ChannelEvent::ChannelReady {
            short_channel_id: Some(ShortChannelId::new(700_000, 12, 2)),
            remote_alias: Some(ShortChannelId(42)),
        }]
    );
    assert_eq!(b.phase(), ChannelPhase::Normal);
}

#[test]
fn opened_pair_has_matching_commitments() {
    for anchors in [false, true] {
        let pair = Pair::open(anchors);
        pair.assert_converged();
        assert_eq!(pair.a.local_commit().index, 0);
        assert_eq!(pair.a.funding_outpoint().unwrap().vout, 1);
        assert_eq!(
            pair.a.short_channel_id(),
            Some(ShortChannelId::new(100, 5, 1))
        );
    }
}

#[test]
fn cooperative_close_before_channel_ready() {
    let (mut a, open) = outbound(false);
    let (mut b, accept) = inbound(&open, false).unwrap();
    a.handle_accept_channel(&accept).unwrap();
    let outpoint = OutPoint {
        txid: Txid::from_byte_array([5; 32]),
        vout: 0,
    };
    let fc = a.funding_transaction_built(outpoint).unwrap();
    let fs = b.handle_funding_created(&fc).unwrap();
    a.handle_funding_signed(&fs).unwrap();
    assert!(a.is_funded() && b.is_funded());
    a.shutdown().unwrap();
    // Exchange everything (as bytes) until quiet.
    for _ in 0..10 {
        for m in a.drain_messages() {
            b.handle_message(&wire(&m)).unwrap();
        }
        for m in b.drain_messages() {
            a.handle_message(&wire(&m)).unwrap();
        }
    }
    assert_eq!(a.phase(), ChannelPhase::Closed);
    assert_eq!(b.phase(), ChannelPhase::Closed);
    let closing = |evs: Vec<ChannelEvent>| {
        evs.into_iter()
            .find_map(|e| match e {
                ChannelEvent::ClosingTransactionReady { tx } => Some(tx),
                _ => None,
            })
            .expect("closing tx")
    };
    let tx = closing(a.drain_events());
    assert_eq!(tx, closing(b.drain_events()));
    assert_eq!(tx.input[0].previous_output, outpoint);
    // A funded everything: one output, A's, minus the fee.
    assert_eq!(tx.output.len(), 1);
    assert_eq!(tx.output[0].script_pubkey, shutdown_script(0xaa));
}
