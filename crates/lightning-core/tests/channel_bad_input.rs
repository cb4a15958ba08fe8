//! Protocol violations by the peer: each gives the specific `ChannelError` kind and leaves
//! the channel unchanged.

mod channel_support;

use channel_support::{config, onion, preimage, Pair, Side};
use lightning_core::channel::{ChannelError, ChannelPhase};
use lightning_core::secp256k1::{self, ecdsa::Signature, Secp256k1, SecretKey};
use lightning_core::types::{ChannelId, PaymentPreimage};
use lightning_core::wire::{
    CommitmentSigned, Message, RevokeAndAck, UpdateAddHtlc, UpdateFailMalformedHtlc, UpdateFee,
    UpdateFulfillHtlc,
};

fn other_signature() -> Signature {
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&[3; 32]).unwrap();
    secp.sign_ecdsa(&secp256k1::Message::from_digest([1; 32]), &key)
}

/// Expects a Close error naming `needle` and no change to the receiving channel.
fn expect_close(pair: &mut Pair, to: Side, msg: &Message, needle: &str) {
    let before = pair.chan(to).clone();
    let err = pair.chan(to).handle_message(msg).unwrap_err();
    match &err {
        ChannelError::Close(t) => assert!(
            t.to_string().contains(needle),
            "{t:?} should mention {needle:?}"
        ),
        other => panic!("expected Close, got {other:?}"),
    }
    assert_eq!(*pair.chan(to), before, "state changed after {err}");
    assert!(err.to_message(pair.chan(to).channel_id()).is_some());
}

/// A with one HTLC (above dust) added and its `commitment_signed` queued, undelivered
/// except the add.
fn pair_with_pending_cs() -> (Pair, CommitmentSigned) {
    let mut pair = Pair::open(false);
    pair.a
        .send_htlc(5_000_000, preimage(1).payment_hash(), 500_000, onion(1))
        .unwrap();
    pair.a.maybe_sign().unwrap();
    pair.deliver(Side::A).unwrap(); // the add
    let Message::CommitmentSigned(cs) = Message::decode(&pair.a_to_b[0]).unwrap() else {
        panic!("commitment_signed")
    };
    assert_eq!(cs.htlc_signatures.len(), 1);
    (pair, cs)
}

#[test]
fn bad_commitment_signature() {
    let (mut pair, mut cs) = pair_with_pending_cs();
    cs.signature = other_signature();
    expect_close(
        &mut pair,
        Side::B,
        &Message::CommitmentSigned(cs),
        "signature does not verify",
    );
}

#[test]
fn bad_htlc_signature() {
    let (mut pair, mut cs) = pair_with_pending_cs();
    cs.htlc_signatures[0] = other_signature();
    expect_close(
        &mut pair,
        Side::B,
        &Message::CommitmentSigned(cs),
        "htlc signature for output",
    );
}

#[test]
fn wrong_htlc_signature_count() {
    let (mut pair, cs) = pair_with_pending_cs();
    let mut fewer = cs.clone();
    fewer.htlc_signatures.clear();
    expect_close(
        &mut pair,
        Side::B,
        &Message::CommitmentSigned(fewer),
        "has 0 htlc signatures",
    );
    let mut more = cs.clone();
    more.htlc_signatures.push(other_signature());
    expect_close(
        &mut pair,
        Side::B,
        &Message::CommitmentSigned(more),
        "has 2 htlc signatures",
    );
    // The honest one is still accepted afterwards.
    pair.b
        .handle_message(&Message::CommitmentSigned(cs))
        .unwrap();
}

#[test]
fn wrong_revocation_secret() {
    let (mut pair, _) = pair_with_pending_cs();
    pair.deliver(Side::A).unwrap(); // CS: B queues RAA, CS
    let Message::RevokeAndAck(raa) = Message::decode(&pair.b_to_a[0]).unwrap() else {
        panic!("revoke_and_ack")
    };
    let mut bad = raa.clone();
    bad.per_commitment_secret = [0x11; 32];
    expect_close(
        &mut pair,
        Side::A,
        &Message::RevokeAndAck(bad),
        "does not match the point",
    );
    let mut invalid = raa.clone();
    invalid.per_commitment_secret = [0xff; 32];
    expect_close(
        &mut pair,
        Side::A,
        &Message::RevokeAndAck(invalid),
        "not a valid secret key",
    );
    pair.a
        .handle_message(&Message::RevokeAndAck(raa.clone()))
        .unwrap();
    // The same RAA again: nothing awaits revocation.
    expect_close(
        &mut pair,
        Side::A,
        &Message::RevokeAndAck(raa),
        "unexpected revoke_and_ack",
    );
}

#[test]
fn inconsistent_revocation_secret_is_rejected_by_secret_storage() {
    // B (misbehaving) announced in channel_ready a point whose secret S does not come from
    // its per-commitment seed. When it later reveals S, the secret matches the point but
    // does not derive the earlier revealed secret: the compact storage rejects it.
    let secp = Secp256k1::new();
    let fake_secret = [0x33; 32];
    let fake_point =
        lightning_core::keys::per_commitment_point(&secp, &fake_secret).expect("valid secret");
    let mut pair = Pair::open_hooked(false, config(false), config(false), 3_000_000_000, &|r| {
        r.second_per_commitment_point = fake_point;
    });
    let b_keys = lightning_core::channel::derive_channel_keys(&[2; 32], 7);
    let secret0 = b_keys
        .per_commitment_secret(lightning_core::secrets::FIRST_INDEX)
        .unwrap();
    let any_point = lightning_core::keys::per_commitment_point(&secp, &[0x44; 32]).unwrap();
    pair.a
        .send_htlc(5_000_000, preimage(1).payment_hash(), 500_000, onion(1))
        .unwrap();
    assert!(pair.a.maybe_sign().unwrap());
    let channel_id = pair.a.channel_id();
    // B's honest revocation of commitment 0 is accepted.
    pair.a
        .handle_message(&Message::RevokeAndAck(RevokeAndAck {
            channel_id,
            per_commitment_secret: secret0,
            next_per_commitment_point: any_point,
        }))
        .unwrap();
    pair.a
        .send_htlc(5_000_000, preimage(2).payment_hash(), 500_000, onion(2))
        .unwrap();
    assert!(pair.a.maybe_sign().unwrap());
    let raa = Message::RevokeAndAck(RevokeAndAck {
        channel_id,
        per_commitment_secret: fake_secret,
        next_per_commitment_point: any_point,
    });
    expect_close(&mut pair, Side::A, &raa, "per_commitment_secret rejected");
}

#[test]
fn htlc_id_gap() {
    let (mut pair, _) = pair_with_pending_cs();
    let mut add = UpdateAddHtlc {
        channel_id: pair.b.channel_id(),
        id: 2, // expected 1
        amount_msat: 5_000_000,
        payment_hash: preimage(2).payment_hash(),
        cltv_expiry: 500_000,
        onion_routing_packet: onion(2),
        path_key: None,
    };
    expect_close(
        &mut pair,
        Side::B,
        &Message::UpdateAddHtlc(add.clone()),
        "id 2 is not the expected 1",
    );
    add.id = 0; // already used
    expect_close(
        &mut pair,
        Side::B,
        &Message::UpdateAddHtlc(add.clone()),
        "id 0 is not the expected 1",
    );
    add.id = 1;
    add.cltv_expiry = 500_000_000;
    expect_close(
        &mut pair,
        Side::B,
        &Message::UpdateAddHtlc(add.clone()),
        "cltv_expiry",
    );
    add.cltv_expiry = 500_000;
    add.amount_msat = 0;
    expect_close(
        &mut pair,
        Side::B,
        &Message::UpdateAddHtlc(add),
        "htlc_minimum_msat",
    );
}

fn committed_htlc_pair() -> (Pair, u64) {
    let mut pair = Pair::open(false);
    let id = pair
        .a
        .send_htlc(5_000_000, preimage(1).payment_hash(), 500_000, onion(1))
        .unwrap();
    pair.run().unwrap();
    pair.take_events();
    (pair, id)
}

#[test]
fn fulfill_with_wrong_preimage() {
    let (mut pair, id) = committed_htlc_pair();
    let msg = Message::UpdateFulfillHtlc(UpdateFulfillHtlc {
        channel_id: pair.a.channel_id(),
        id,
        payment_preimage: PaymentPreimage([9; 32]),
        attribution_data: None,
    });
    expect_close(&mut pair, Side::A, &msg, "preimage does not hash");
    // Locally, fulfilling with a wrong preimage is refused too.
    let before = pair.b.clone();
    assert!(matches!(
        pair.b.fulfill_htlc(id, PaymentPreimage([9; 32])),
        Err(ChannelError::Ignore(_))
    ));
    assert_eq!(pair.b, before);
}

#[test]
fn unknown_htlc_id() {
    let (mut pair, _) = committed_htlc_pair();
    let fulfill = Message::UpdateFulfillHtlc(UpdateFulfillHtlc {
        channel_id: pair.a.channel_id(),
        id: 99,
        payment_preimage: preimage(1),
        attribution_data: None,
    });
    expect_close(&mut pair, Side::A, &fulfill, "unknown htlc id 99");
    let malformed = Message::UpdateFailMalformedHtlc(UpdateFailMalformedHtlc {
        channel_id: pair.a.channel_id(),
        id: 99,
        sha256_of_onion: [0; 32],
        failure_code: 0x8000 | 5,
    });
    expect_close(&mut pair, Side::A, &malformed, "unknown htlc id 99");
    let no_badonion = Message::UpdateFailMalformedHtlc(UpdateFailMalformedHtlc {
        channel_id: pair.a.channel_id(),
        id: 0,
        sha256_of_onion: [0; 32],
        failure_code: 0x4005,
    });
    expect_close(&mut pair, Side::A, &no_badonion, "BADONION");
    let before = pair.b.clone();
    assert!(matches!(
        pair.b.fail_htlc(42, vec![1]),
        Err(ChannelError::Ignore(_))
    ));
    assert_eq!(pair.b, before);
}

#[test]
fn update_fee_from_the_fundee() {
    let (mut pair, _) = committed_htlc_pair();
    let msg = Message::UpdateFee(UpdateFee {
        channel_id: pair.a.channel_id(),
        feerate_per_kw: 3000,
    });
    expect_close(&mut pair, Side::A, &msg, "non-funder");
    // From the funder, an absurd feerate or one it cannot afford closes.
    let absurd = Message::UpdateFee(UpdateFee {
        channel_id: pair.b.channel_id(),
        feerate_per_kw: 100,
    });
    expect_close(&mut pair, Side::B, &absurd, "feerate_per_kw 100 is outside");
}

#[test]
fn funder_update_fee_it_cannot_afford() {
    // A pushes almost everything to B: it cannot afford a high feerate.
    let mut pair = Pair::open_with(false, config(false), config(false), 9_850_000_000);
    let msg = Message::UpdateFee(UpdateFee {
        channel_id: pair.b.channel_id(),
        feerate_per_kw: 90_000,
    });
    expect_close(&mut pair, Side::B, &msg, "cannot afford");
    let before = pair.a.clone();
    assert!(matches!(
        pair.a.update_fee(90_000),
        Err(ChannelError::Ignore(_))
    ));
    assert_eq!(pair.a, before);
}

#[test]
fn add_over_max_accepted_htlcs() {
    let mut pair = Pair::open(false);
    // B accepts at most 30 HTLCs from A; A's own check refuses the 31st.
    for i in 0..30 {
        pair.a
            .send_htlc(10_000, preimage(i).payment_hash(), 500_000, onion(i))
            .unwrap();
    }
    let before = pair.a.clone();
    let err = pair
        .a
        .send_htlc(10_000, preimage(30).payment_hash(), 500_000, onion(30))
        .unwrap_err();
    assert!(
        matches!(err, ChannelError::Ignore(ref t) if t.to_string().contains("max_accepted_htlcs"))
    );
    assert_eq!(pair.a, before);
    // A peer ignoring the limit: B closes on the 31st add.
    pair.a.maybe_sign().unwrap();
    for _ in 0..30 {
        pair.deliver(Side::A).unwrap();
    }
    let add = Message::UpdateAddHtlc(UpdateAddHtlc {
        channel_id: pair.b.channel_id(),
        id: 30,
        amount_msat: 10_000,
        payment_hash: preimage(30).payment_hash(),
        cltv_expiry: 500_000,
        onion_routing_packet: onion(30),
        path_key: None,
    });
    expect_close(&mut pair, Side::B, &add, "above our max_accepted_htlcs 30");
}

#[test]
fn add_over_reserve() {
    let mut pair = Pair::open(false);
    // B has 3,000,000 sat and must keep A's reserve (1% = 100,000 sat).
    let before = pair.b.clone();
    let err = pair
        .b
        .send_htlc(2_950_000_000, preimage(1).payment_hash(), 500_000, onion(1))
        .unwrap_err();
    assert!(
        matches!(err, ChannelError::Ignore(ref t) if t.to_string().contains("reserve")),
        "{err}"
    );
    assert_eq!(pair.b, before);
    let add = Message::UpdateAddHtlc(UpdateAddHtlc {
        channel_id: pair.a.channel_id(),
        id: 0,
        amount_msat: 2_950_000_000,
        payment_hash: preimage(1).payment_hash(),
        cltv_expiry: 500_000,
        onion_routing_packet: onion(1),
        path_key: None,
    });
    expect_close(&mut pair, Side::A, &add, "below our reserve");
    // And more than the whole balance.
    let add = Message::UpdateAddHtlc(UpdateAddHtlc {
        channel_id: pair.a.channel_id(),
        id: 0,
        amount_msat: 3_000_000_001,
        payment_hash: preimage(1).payment_hash(),
        cltv_expiry: 500_000,
        onion_routing_packet: onion(1),
        path_key: None,
    });
    expect_close(&mut pair, Side::A, &add, "above the sender's balance");
}

#[test]
fn funder_fee_spike_buffer_limits_sending() {
    let mut pair = Pair::open(false);
    let cap = pair.a.balances().outbound_capacity_msat;
    // Anything up to the capacity is allowed, one msat more is not.
    let before = pair.a.clone();
    assert!(pair
        .a
        .send_htlc(cap + 1, preimage(1).payment_hash(), 500_000, onion(1))
        .is_err());
    assert_eq!(pair.a, before);
    pair.a
        .send_htlc(cap, preimage(1).payment_hash(), 500_000, onion(1))
        .unwrap();
    pair.run().unwrap();
    pair.assert_converged();
}

#[test]
fn commitment_signed_without_changes_and_out_of_state() {
    let mut pair = Pair::open(false);
    let cs = Message::CommitmentSigned(CommitmentSigned {
        channel_id: pair.b.channel_id(),
        signature: other_signature(),
        htlc_signatures: vec![],
        funding_txid: None,
    });
    expect_close(&mut pair, Side::B, &cs, "without changes");
    let raa = Message::RevokeAndAck(RevokeAndAck {
        channel_id: pair.b.channel_id(),
        per_commitment_secret: [1; 32],
        next_per_commitment_point: pair.b.remote_commit().per_commitment_point,
    });
    expect_close(&mut pair, Side::B, &raa, "unexpected revoke_and_ack");
    let wrong_channel = Message::UpdateFee(UpdateFee {
        channel_id: ChannelId([0x55; 32]),
        feerate_per_kw: 3000,
    });
    expect_close(&mut pair, Side::B, &wrong_channel, "another channel_id");
}

#[test]
fn closed_channel_refuses_everything() {
    let (mut pair, _) = committed_htlc_pair();
    let tx = pair.a.force_close().unwrap();
    assert_eq!(pair.a.phase(), ChannelPhase::Closed);
    assert!(!tx.input[0].witness.is_empty());
    assert!(matches!(
        pair.a
            .send_htlc(5_000_000, preimage(5).payment_hash(), 500_000, onion(5)),
        Err(ChannelError::Ignore(_))
    ));
    assert!(!pair.a.maybe_sign().unwrap());
}
