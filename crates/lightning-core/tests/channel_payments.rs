//! Opening, payments both ways, fails, fee updates and crossing commitments, with both
//! channel types, through encoded messages.

mod channel_support;

use channel_support::{onion, preimage, Pair, Side, FUNDING_SATOSHIS, PUSH_MSAT};
use lightning_core::channel::{ChannelEvent, HtlcFailure};
use lightning_core::wire::Message;

fn pay(pair: &mut Pair, from: Side, i: u64, amount_msat: u64) {
    let to = if from == Side::A { Side::B } else { Side::A };
    let p = preimage(i);
    let id = pair
        .chan(from)
        .send_htlc(amount_msat, p.payment_hash(), 500_000, onion(i))
        .expect("send_htlc");
    pair.run().expect("add exchange");
    pair.assert_converged();
    let (ea, eb) = pair.take_events();
    let (ev_from, ev_to) = if from == Side::A { (ea, eb) } else { (eb, ea) };
    assert!(ev_from.is_empty(), "{ev_from:?}");
    let [ChannelEvent::InboundHtlcCommitted {
        id: got_id,
        amount_msat: got_amount,
        payment_hash,
        onion: got_onion,
        ..
    }] = ev_to.as_slice()
    else {
        panic!("expected one inbound htlc, got {ev_to:?}")
    };
    assert_eq!(
        (*got_id, *got_amount, *payment_hash),
        (id, amount_msat, p.payment_hash())
    );
    assert_eq!(got_onion, &onion(i));
    pair.chan(to).fulfill_htlc(id, p).expect("fulfill");
    pair.chan(to)
        .fulfill_htlc(id, p)
        .expect("fulfill is idempotent");
    pair.run().expect("fulfill exchange");
    pair.assert_converged();
    let (ea, eb) = pair.take_events();
    let ev_from = if from == Side::A { ea } else { eb };
    assert_eq!(
        ev_from,
        vec![ChannelEvent::OutboundHtlcFulfilled {
            id,
            payment_preimage: p
        }]
    );
}

fn payments(anchors: bool, count: u64) {
    let mut pair = Pair::open(anchors);
    let mut a_balance = FUNDING_SATOSHIS * 1000 - PUSH_MSAT;
    for i in 0..count {
        // Above-dust HTLCs (HTLC transactions and signatures) and every 4th one dust.
        let amount = if i % 4 == 3 { 20_000 } else { 5_000_000 + i };
        let from = if i % 2 == 0 { Side::A } else { Side::B };
        pay(&mut pair, from, i, amount);
        if from == Side::A {
            a_balance -= amount;
        } else {
            a_balance += amount;
        }
    }
    let b_balance = FUNDING_SATOSHIS * 1000 - a_balance;
    assert_eq!(pair.a.local_commit().spec.to_local_msat, a_balance);
    assert_eq!(pair.a.local_commit().spec.to_remote_msat, b_balance);
    assert_eq!(pair.b.local_commit().spec.to_local_msat, b_balance);
    assert_eq!(pair.b.local_commit().spec.to_remote_msat, a_balance);
    assert_eq!(pair.a.balances().to_local_msat, a_balance);
    assert_eq!(pair.b.balances().to_local_msat, b_balance);
    // Two new commitments per payment on each side (add, then fulfill).
    assert_eq!(pair.a.local_commit().index, 2 * count);
    assert_eq!(pair.b.local_commit().index, 2 * count);
}

#[test]
fn thousand_payments_alternating_static_remotekey() {
    payments(false, 1000);
}

#[test]
fn payments_alternating_anchors() {
    // Fewer than 1000 only to keep the debug suite fast: the code path is the same.
    payments(true, 200);
}

#[test]
fn message_order_is_add_cs_raa_cs_raa() {
    let mut pair = Pair::open(false);
    pair.sent_types_a.clear();
    pair.sent_types_b.clear();
    pair.a
        .send_htlc(5_000_000, preimage(1).payment_hash(), 500_000, onion(1))
        .unwrap();
    pair.a.maybe_sign().unwrap();
    pair.flush();
    assert_eq!(pair.sent_types_a, vec![128, 132]);
    assert_eq!(pair.deliver(Side::A).unwrap(), Some(128));
    assert_eq!(pair.deliver(Side::A).unwrap(), Some(132));
    assert_eq!(pair.sent_types_b, vec![133, 132]);
    pair.run().unwrap();
    assert_eq!(pair.sent_types_a, vec![128, 132, 133]);
    let (_, eb) = pair.take_events();
    assert_eq!(eb.len(), 1);
    // The HTLC has an output and a signature in both commitments.
    assert_eq!(pair.a.local_commit().htlc_signatures.len(), 1);
    assert_eq!(pair.b.local_commit().htlc_signatures.len(), 1);
}

#[test]
fn fail_and_fail_malformed_reach_sender_only_when_irrevocable() {
    for anchors in [false, true] {
        let mut pair = Pair::open(anchors);
        let id0 = pair
            .a
            .send_htlc(6_000_000, preimage(10).payment_hash(), 500_000, onion(10))
            .unwrap();
        let id1 = pair
            .a
            .send_htlc(7_000_000, preimage(11).payment_hash(), 500_000, onion(11))
            .unwrap();
        pair.run().unwrap();
        pair.take_events();
        let before = pair.a.local_commit().spec.to_local_msat;
        pair.b.fail_htlc(id0, vec![0xde, 0xad]).unwrap();
        pair.b
            .fail_malformed_htlc(id1, [7; 32], 0x8000 | 0x4000 | 5)
            .unwrap();
        pair.b.maybe_sign().unwrap();
        // fail, malformed, CS from B; A gets nothing until the last RAA.
        for _ in 0..3 {
            pair.deliver(Side::B).unwrap();
        }
        assert!(pair.take_events().0.is_empty());
        pair.deliver(Side::A).unwrap(); // RAA
        pair.deliver(Side::A).unwrap(); // CS
        assert!(pair.take_events().0.is_empty());
        pair.deliver(Side::B).unwrap(); // RAA: irrevocable
        let (ea, _) = pair.take_events();
        assert_eq!(
            ea,
            vec![
                ChannelEvent::OutboundHtlcFailed {
                    id: id0,
                    failure: HtlcFailure::Reason {
                        reason: vec![0xde, 0xad],
                        attribution_data: None
                    }
                },
                ChannelEvent::OutboundHtlcFailed {
                    id: id1,
                    failure: HtlcFailure::Malformed {
                        sha256_of_onion: [7; 32],
                        failure_code: 0xc005
                    }
                },
            ]
        );
        pair.run().unwrap();
        pair.assert_converged();
        assert_eq!(
            pair.a.local_commit().spec.to_local_msat,
            before + 13_000_000
        );
    }
}

#[test]
fn crossing_commitments_converge() {
    for anchors in [false, true] {
        let mut pair = Pair::open(anchors);
        let ida = pair
            .a
            .send_htlc(5_000_000, preimage(1).payment_hash(), 500_000, onion(1))
            .unwrap();
        let idb = pair
            .b
            .send_htlc(4_000_000, preimage(2).payment_hash(), 500_000, onion(2))
            .unwrap();
        // Both sign before seeing anything from the other.
        assert!(pair.a.maybe_sign().unwrap());
        assert!(pair.b.maybe_sign().unwrap());
        pair.flush();
        pair.run().unwrap();
        pair.assert_converged();
        let (ea, eb) = pair.take_events();
        assert_eq!(ea.len(), 1);
        assert_eq!(eb.len(), 1);
        assert_eq!(pair.a.local_commit().spec.htlcs.len(), 2);
        pair.b.fulfill_htlc(ida, preimage(1)).unwrap();
        pair.a.fulfill_htlc(idb, preimage(2)).unwrap();
        assert!(pair.a.maybe_sign().unwrap());
        assert!(pair.b.maybe_sign().unwrap());
        pair.run().unwrap();
        pair.assert_converged();
        assert!(pair.a.local_commit().spec.htlcs.is_empty());
        assert_eq!(
            pair.a.local_commit().spec.to_local_msat,
            FUNDING_SATOSHIS * 1000 - PUSH_MSAT - 1_000_000
        );
    }
}

#[test]
fn update_fee_trims_an_htlc_on_one_side_only() {
    use channel_support::config;
    // B has a larger dust limit, so at a higher feerate an HTLC is trimmed from B's
    // commitment while A's still has its output.
    let ca = config(false);
    let mut cb = config(false);
    cb.dust_limit_satoshis = 1_000;
    let mut pair = Pair::open_with(false, ca, cb, PUSH_MSAT);
    // Offered by A: HTLC-success in B's commitment (703 weight), HTLC-timeout in A's (663).
    // At 2500 sat/kw: B threshold 1000 + 1757 = 2757; A threshold 354 + 1657 = 2011.
    // At 5000 sat/kw: B 1000 + 3515 = 4515; A 354 + 3315 = 3669.
    let amount_msat = 4_000_000;
    pair.a
        .send_htlc(amount_msat, preimage(5).payment_hash(), 500_000, onion(5))
        .unwrap();
    pair.run().unwrap();
    assert_eq!(pair.a.local_commit().htlc_signatures.len(), 1);
    assert_eq!(pair.b.local_commit().htlc_signatures.len(), 1);
    pair.a.update_fee(5000).unwrap();
    assert!(
        pair.b.update_fee(5000).is_err(),
        "the fundee cannot send update_fee"
    );
    pair.a.maybe_sign().unwrap();
    pair.flush();
    let sent: Vec<u16> = pair
        .a_to_b
        .iter()
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(sent, vec![134, 132]);
    // B checks A's CS: no HTLC signature for its commitment, where the HTLC is now trimmed.
    pair.deliver(Side::A).unwrap();
    let Message::CommitmentSigned(cs) = Message::decode(&pair.a_to_b[0]).unwrap() else {
        panic!("commitment_signed")
    };
    assert!(cs.htlc_signatures.is_empty());
    pair.run().unwrap();
    pair.assert_converged();
    assert_eq!(pair.a.local_commit().spec.feerate_per_kw, 5000);
    assert_eq!(pair.b.local_commit().spec.feerate_per_kw, 5000);
    assert_eq!(pair.b.local_commit().htlc_signatures.len(), 0);
    assert_eq!(pair.a.local_commit().htlc_signatures.len(), 1);
    assert_eq!(
        pair.a.local_commitment_tx().unwrap().htlc_outputs().len(),
        1
    );
    assert_eq!(
        pair.b.local_commitment_tx().unwrap().htlc_outputs().len(),
        0
    );
}

#[test]
fn dust_htlcs_have_no_outputs_or_signatures() {
    let mut pair = Pair::open(false);
    for i in 0..3 {
        pair.a
            .send_htlc(100_000, preimage(i).payment_hash(), 500_000, onion(i))
            .unwrap();
    }
    pair.run().unwrap();
    pair.assert_converged();
    assert_eq!(pair.a.local_commit().spec.htlcs.len(), 3);
    assert!(pair.a.local_commit().htlc_signatures.is_empty());
    assert!(pair.b.local_commit().htlc_signatures.is_empty());
    let (_, eb) = pair.take_events();
    assert_eq!(eb.len(), 3);
}
