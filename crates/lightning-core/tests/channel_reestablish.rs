//! Disconnection and `channel_reestablish`: the reconnect matrix over every prefix of a
//! two-HTLC exchange, the RAA/CS resend order, and data-loss-protect rows.

mod channel_support;

use channel_support::{onion, preimage, wire, Pair, Side, FUNDING_SATOSHIS, PUSH_MSAT};
use lightning_core::channel::{ChannelError, ChannelEvent, ChannelPhase};
use lightning_core::wire::Message;

/// Delivers up to `budget` messages (alternating directions when both have some); returns
/// how many were delivered.
fn deliver_some(pair: &mut Pair, budget: &mut usize, turn: &mut bool) -> usize {
    let mut n = 0;
    pair.flush();
    while *budget > 0 && (!pair.a_to_b.is_empty() || !pair.b_to_a.is_empty()) {
        let from_a = if pair.a_to_b.is_empty() {
            false
        } else if pair.b_to_a.is_empty() {
            true
        } else {
            *turn
        };
        *turn = !*turn;
        pair.deliver(if from_a { Side::A } else { Side::B })
            .expect("honest messages are accepted");
        *budget -= 1;
        n += 1;
    }
    n
}

/// Runs the two-HTLC script (A and B each add one HTLC at once, then each fulfills the
/// other's), disconnecting after `cut` deliveries (dropping whatever is in flight) and
/// reconnecting; returns the pair and how many deliveries the script had before the cut.
fn scripted(anchors: bool, cut: usize) -> (Pair, usize) {
    let mut pair = Pair::open(anchors);
    let mut budget = cut;
    let mut turn = true;
    let mut delivered = 0;
    let mut reconnected = false;
    let mut all_a = Vec::new();
    let mut all_b = Vec::new();
    let mut settle = |pair: &mut Pair, budget: &mut usize, reconnected: &mut bool| {
        let mut n = deliver_some(pair, budget, &mut turn);
        pair.flush();
        if *budget == 0 && !*reconnected {
            *reconnected = true;
            pair.reconnect().expect("reconnection");
        }
        pair.run().expect("settles");
        n += 0;
        n
    };
    let ida = pair
        .a
        .send_htlc(5_000_000, preimage(1).payment_hash(), 500_000, onion(1))
        .unwrap();
    let idb = pair
        .b
        .send_htlc(6_000_000, preimage(2).payment_hash(), 500_000, onion(2))
        .unwrap();
    pair.a.maybe_sign().unwrap();
    pair.b.maybe_sign().unwrap();
    delivered += settle(&mut pair, &mut budget, &mut reconnected);
    pair.assert_converged();
    let (ea, eb) = pair.take_events();
    all_a.extend(ea);
    all_b.extend(eb);
    assert!(all_b
        .iter()
        .any(|e| matches!(e, ChannelEvent::InboundHtlcCommitted { id, .. } if *id == ida)));
    assert!(all_a
        .iter()
        .any(|e| matches!(e, ChannelEvent::InboundHtlcCommitted { id, .. } if *id == idb)));
    pair.b.fulfill_htlc(ida, preimage(1)).unwrap();
    pair.a.fulfill_htlc(idb, preimage(2)).unwrap();
    pair.a.maybe_sign().unwrap();
    pair.b.maybe_sign().unwrap();
    delivered += settle(&mut pair, &mut budget, &mut reconnected);
    pair.assert_converged();
    let (ea, eb) = pair.take_events();
    all_a.extend(ea);
    all_b.extend(eb);
    // Every event exactly once.
    let count = |evs: &Vec<ChannelEvent>, f: &dyn Fn(&ChannelEvent) -> bool| {
        evs.iter().filter(|e| f(e)).count()
    };
    assert_eq!(
        count(&all_b, &|e| matches!(
            e,
            ChannelEvent::InboundHtlcCommitted { .. }
        )),
        1
    );
    assert_eq!(
        count(&all_a, &|e| matches!(
            e,
            ChannelEvent::InboundHtlcCommitted { .. }
        )),
        1
    );
    assert_eq!(
        count(&all_a, &|e| *e
            == ChannelEvent::OutboundHtlcFulfilled {
                id: ida,
                payment_preimage: preimage(1)
            }),
        1
    );
    assert_eq!(
        count(&all_b, &|e| *e
            == ChannelEvent::OutboundHtlcFulfilled {
                id: idb,
                payment_preimage: preimage(2)
            }),
        1
    );
    assert_eq!(all_a.len(), 2, "{all_a:?}");
    assert_eq!(all_b.len(), 2, "{all_b:?}");
    let a = FUNDING_SATOSHIS * 1000 - PUSH_MSAT - 5_000_000 + 6_000_000;
    assert_eq!(pair.a.local_commit().spec.to_local_msat, a);
    assert_eq!(
        pair.b.local_commit().spec.to_local_msat,
        FUNDING_SATOSHIS * 1000 - a
    );
    assert!(pair.a.local_commit().spec.htlcs.is_empty());
    (pair, delivered)
}

fn reconnect_matrix(anchors: bool) {
    // Without a cut the whole script runs (the cut is never reached).
    let (_, total) = scripted(anchors, usize::MAX);
    assert!(total >= 10, "the script has {total} deliveries");
    for cut in 0..=total {
        let (pair, _) = scripted(anchors, cut);
        // A second, quiet reconnection changes nothing.
        let mut again = pair;
        let before_a = again.a.local_commit().clone();
        again.reconnect().unwrap();
        assert_eq!(again.a.local_commit(), &before_a, "cut {cut}");
        again.assert_converged();
    }
}

#[test]
fn reconnect_matrix_static_remotekey() {
    reconnect_matrix(false);
}

#[test]
fn reconnect_matrix_anchors() {
    reconnect_matrix(true);
}

fn types(queue: &std::collections::VecDeque<Vec<u8>>) -> Vec<u16> {
    queue
        .iter()
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .collect()
}

/// Reconnects, returning the message types each side retransmits (before delivery).
fn reconnect_and_peek(pair: &mut Pair) -> (Vec<u16>, Vec<u16>) {
    pair.a_to_b.clear();
    pair.b_to_a.clear();
    pair.a.peer_disconnected();
    pair.b.peer_disconnected();
    let ra = wire(&Message::ChannelReestablish(
        pair.a.get_reestablish().unwrap(),
    ));
    let rb = wire(&Message::ChannelReestablish(
        pair.b.get_reestablish().unwrap(),
    ));
    pair.b.handle_message(&ra).unwrap();
    pair.a.handle_message(&rb).unwrap();
    pair.flush();
    (types(&pair.a_to_b), types(&pair.b_to_a))
}

#[test]
fn resend_order_rev_then_sig() {
    let mut pair = Pair::open(false);
    pair.a
        .send_htlc(5_000_000, preimage(1).payment_hash(), 500_000, onion(1))
        .unwrap();
    pair.a.maybe_sign().unwrap();
    pair.deliver(Side::A).unwrap(); // add
    pair.deliver(Side::A).unwrap(); // CS: B answers RAA, then CS
    pair.flush();
    assert_eq!(types(&pair.b_to_a), vec![133, 132]);
    let (from_a, from_b) = reconnect_and_peek(&mut pair);
    assert_eq!(from_a, Vec::<u16>::new());
    assert_eq!(from_b, vec![133, 132], "RAA first, as originally sent");
    pair.run().unwrap();
    pair.assert_converged();
}

#[test]
fn resend_order_sig_then_rev() {
    let mut pair = Pair::open(false);
    // B signs its own add first; then A's add and CS arrive and B revokes.
    pair.b
        .send_htlc(4_000_000, preimage(2).payment_hash(), 500_000, onion(2))
        .unwrap();
    pair.b.maybe_sign().unwrap();
    pair.a
        .send_htlc(5_000_000, preimage(1).payment_hash(), 500_000, onion(1))
        .unwrap();
    pair.a.maybe_sign().unwrap();
    pair.flush();
    pair.b_to_a.clear(); // B's add + CS lost in flight
    pair.deliver(Side::A).unwrap();
    pair.deliver(Side::A).unwrap(); // B revokes (its CS is still unanswered)
    pair.flush();
    assert_eq!(types(&pair.b_to_a), vec![133]);
    let (from_a, from_b) = reconnect_and_peek(&mut pair);
    assert_eq!(
        from_b,
        vec![128, 132, 133],
        "updates + CS, then RAA, as originally sent"
    );
    // A had sent add+CS which B received: nothing to resend except nothing.
    assert_eq!(from_a, Vec::<u16>::new());
    pair.run().unwrap();
    pair.assert_converged();
    assert_eq!(pair.a.local_commit().spec.htlcs.len(), 2);
}

#[test]
fn reconnect_with_pending_fee_resigns_original_state() {
    let mut pair = Pair::open(false);
    pair.a.update_fee(3000).unwrap();
    pair.a.maybe_sign().unwrap();
    pair.deliver(Side::A).unwrap(); // update_fee
    pair.deliver(Side::A).unwrap(); // CS -> B: RAA + CS (lost)
    let (from_a, from_b) = reconnect_and_peek(&mut pair);
    assert_eq!(from_a, Vec::<u16>::new());
    assert_eq!(from_b, vec![133, 132]);
    pair.run().unwrap();
    pair.assert_converged();
    assert_eq!(pair.b.local_commit().spec.feerate_per_kw, 3000);
    // Lost update_fee + CS: A resends both, same feerate.
    pair.a.update_fee(4000).unwrap();
    pair.a.maybe_sign().unwrap();
    pair.flush();
    let (from_a, _) = reconnect_and_peek(&mut pair);
    assert_eq!(from_a, vec![134, 132]);
    pair.run().unwrap();
    pair.assert_converged();
    assert_eq!(pair.a.local_commit().spec.feerate_per_kw, 4000);
}

#[test]
fn channel_ready_is_resent_when_no_commitment_exchanged() {
    let mut pair = Pair::open(false);
    let (from_a, from_b) = reconnect_and_peek(&mut pair);
    assert_eq!(from_a, vec![36]);
    assert_eq!(from_b, vec![36]);
    pair.run().unwrap();
    assert_eq!(pair.a.phase(), ChannelPhase::Normal);
    pay_once(&mut pair);
    let (from_a, from_b) = reconnect_and_peek(&mut pair);
    assert!(from_a.is_empty() && from_b.is_empty());
}

fn pay_once(pair: &mut Pair) {
    let id = pair
        .a
        .send_htlc(5_000_000, preimage(7).payment_hash(), 500_000, onion(7))
        .unwrap();
    pair.run().unwrap();
    pair.b.fulfill_htlc(id, preimage(7)).unwrap();
    pair.run().unwrap();
    pair.take_events();
}

#[test]
fn data_loss_protect_peer_behind_and_we_are_behind() {
    let mut pair = Pair::open(false);
    pay_once(&mut pair);
    let old_b = pair.b.clone();
    pay_once(&mut pair);
    pay_once(&mut pair);
    // B restores an old backup.
    pair.b = old_b;
    pair.a.peer_disconnected();
    pair.b.peer_disconnected();
    let ra = wire(&Message::ChannelReestablish(
        pair.a.get_reestablish().unwrap(),
    ));
    let rb = wire(&Message::ChannelReestablish(
        pair.b.get_reestablish().unwrap(),
    ));
    let before_a = pair.a.clone();
    // A: the peer is behind (row B3): warn, do not broadcast, state unchanged.
    let err = pair.a.handle_message(&rb).unwrap_err();
    assert!(matches!(err, ChannelError::Warn(_)), "{err}");
    assert_eq!(pair.a, before_a);
    // B: A proves B is behind (row B4): error without broadcasting.
    let err = pair.b.handle_message(&ra).unwrap_err();
    assert!(matches!(err, ChannelError::CloseNoBroadcast(_)), "{err}");
    assert_eq!(pair.b.phase(), ChannelPhase::Closed);
    assert!(pair.b.drain_messages().is_empty());
}

#[test]
fn reestablish_with_a_lying_secret_closes() {
    let mut pair = Pair::open(false);
    pay_once(&mut pair);
    pay_once(&mut pair);
    pair.a.peer_disconnected();
    pair.b.peer_disconnected();
    let _ = pair.a.get_reestablish().unwrap();
    let honest = pair.b.get_reestablish().unwrap();
    let before = pair.a.clone();
    // Row B1 with a wrong secret.
    let mut lie = honest.clone();
    lie.your_last_per_commitment_secret = [0x42; 32];
    let err = pair
        .a
        .handle_message(&wire(&Message::ChannelReestablish(lie)))
        .unwrap_err();
    assert!(
        matches!(err, ChannelError::Close(ref t) if t.to_string().contains("your_last_per_commitment_secret"))
    );
    assert_eq!(pair.a, before);
    // Row B5: claims we are behind without proof.
    let mut lie = honest.clone();
    lie.next_revocation_number += 3;
    let err = pair
        .a
        .handle_message(&wire(&Message::ChannelReestablish(lie)))
        .unwrap_err();
    assert!(matches!(err, ChannelError::Close(_)), "{err}");
    assert_eq!(pair.a, before);
    // Row C4: claims commitments we never signed.
    let mut lie = honest.clone();
    lie.next_commitment_number += 2;
    let err = pair
        .a
        .handle_message(&wire(&Message::ChannelReestablish(lie)))
        .unwrap_err();
    assert!(
        matches!(err, ChannelError::Close(ref t) if t.to_string().contains("ahead")),
        "{err}"
    );
    assert_eq!(pair.a, before);
    // Row A: next_commitment_number 0 asks us to close.
    let mut lie = honest.clone();
    lie.next_commitment_number = 0;
    assert!(pair
        .a
        .handle_message(&wire(&Message::ChannelReestablish(lie)))
        .unwrap_err()
        .is_close());
    // The honest one is accepted; a second one while connected closes.
    pair.a
        .handle_message(&wire(&Message::ChannelReestablish(honest.clone())))
        .unwrap();
    let err = pair
        .a
        .handle_message(&wire(&Message::ChannelReestablish(honest)))
        .unwrap_err();
    assert!(matches!(err, ChannelError::Close(ref t) if t.to_string().contains("unexpected")));
}

#[test]
fn updates_before_reestablish_are_refused() {
    let mut pair = Pair::open(false);
    pair.b
        .send_htlc(5_000_000, preimage(1).payment_hash(), 500_000, onion(1))
        .unwrap();
    pair.b.maybe_sign().unwrap();
    pair.flush();
    let add = Message::decode(&pair.b_to_a[0]).unwrap();
    pair.a.peer_disconnected();
    let _ = pair.a.get_reestablish().unwrap();
    let before = pair.a.clone();
    assert!(pair.a.handle_message(&add).unwrap_err().is_close());
    assert_eq!(pair.a, before);
}

#[test]
fn duplicate_fulfill_after_reconnect_is_reported_once() {
    let mut pair = Pair::open(false);
    let id = pair
        .a
        .send_htlc(5_000_000, preimage(3).payment_hash(), 500_000, onion(3))
        .unwrap();
    pair.run().unwrap();
    pair.take_events();
    pair.b.fulfill_htlc(id, preimage(3)).unwrap();
    pair.b.maybe_sign().unwrap();
    pair.deliver(Side::B).unwrap(); // the fulfill: A reports the preimage at once
    let (ea, _) = pair.take_events();
    assert_eq!(
        ea,
        vec![ChannelEvent::OutboundHtlcFulfilled {
            id,
            payment_preimage: preimage(3)
        }]
    );
    // B's commitment_signed is lost; after reconnection B resends fulfill + CS.
    let (_, from_b) = reconnect_and_peek(&mut pair);
    assert_eq!(from_b, vec![130, 132]);
    pair.run().unwrap();
    pair.assert_converged();
    let (ea, _) = pair.take_events();
    assert!(ea.is_empty(), "{ea:?}");
    // A local duplicate claim on B's side is idempotent too.
    assert!(
        pair.b.fulfill_htlc(id, preimage(3)).is_err(),
        "already removed"
    );
}
