//! Cooperative close (legacy `closing_signed` with `fee_range`) and force close: the
//! resulting transactions spend the funding output with valid signatures.

mod channel_support;

use channel_support::{
    onion, preimage, shutdown_script, verify_funding_spend, Pair, Side, FUNDING_SATOSHIS, PUSH_MSAT,
};
use lightning_core::bitcoin::Transaction;
use lightning_core::channel::{ChannelError, ChannelEvent, ChannelPhase};
use lightning_core::types::ChannelId;
use lightning_core::wire::{Message, Shutdown};

fn closing_tx(events: &[ChannelEvent]) -> Transaction {
    events
        .iter()
        .find_map(|e| match e {
            ChannelEvent::ClosingTransactionReady { tx } => Some(tx.clone()),
            _ => None,
        })
        .expect("a closing transaction")
}

fn cooperative_close(anchors: bool, initiator: Side) {
    let mut pair = Pair::open(anchors);
    let id = pair
        .a
        .send_htlc(7_000_000, preimage(1).payment_hash(), 500_000, onion(1))
        .unwrap();
    pair.run().unwrap();
    pair.b.fulfill_htlc(id, preimage(1)).unwrap();
    pair.run().unwrap();
    pair.take_events();
    pair.chan(initiator).shutdown().unwrap();
    pair.run().unwrap();
    assert_eq!(pair.a.phase(), ChannelPhase::Closed);
    assert_eq!(pair.b.phase(), ChannelPhase::Closed);
    let (ea, eb) = pair.take_events();
    let tx_a = closing_tx(&ea);
    let tx_b = closing_tx(&eb);
    assert_eq!(
        tx_a, tx_b,
        "both sides broadcast the same closing transaction"
    );
    verify_funding_spend(&tx_a, &pair.funding_tx);
    // Outputs: B's balance in full, A's minus the fee, to the shutdown scripts.
    let a_sat = (FUNDING_SATOSHIS * 1000 - PUSH_MSAT - 7_000_000) / 1000;
    let b_sat = (PUSH_MSAT + 7_000_000) / 1000;
    let out_a = tx_a
        .output
        .iter()
        .find(|o| o.script_pubkey == shutdown_script(0xaa))
        .expect("A's output");
    let out_b = tx_a
        .output
        .iter()
        .find(|o| o.script_pubkey == shutdown_script(0xbb))
        .expect("B's output");
    assert_eq!(out_b.value.to_sat(), b_sat);
    let fee = a_sat - out_a.value.to_sat();
    assert!(fee > 0 && fee < 10_000, "fee {fee}");
    assert_eq!(tx_a.output.len(), 2);
    assert_eq!(tx_a.input[0].sequence.0, 0xffff_ffff);
}

#[test]
fn cooperative_close_static_remotekey_funder_initiates() {
    cooperative_close(false, Side::A);
}

#[test]
fn cooperative_close_static_remotekey_fundee_initiates() {
    cooperative_close(false, Side::B);
}

#[test]
fn cooperative_close_anchors() {
    cooperative_close(true, Side::A);
}

#[test]
fn shutdown_with_pending_htlc_waits_until_clean() {
    let mut pair = Pair::open(false);
    let id = pair
        .a
        .send_htlc(5_000_000, preimage(2).payment_hash(), 500_000, onion(2))
        .unwrap();
    pair.run().unwrap();
    pair.take_events();
    pair.b.shutdown().unwrap();
    pair.run().unwrap();
    // Both shutdowns exchanged, no closing_signed while the HTLC is pending.
    assert_eq!(pair.a.phase(), ChannelPhase::Normal);
    assert!(!pair.a.is_clean_for_closing());
    assert!(matches!(
        pair.a
            .send_htlc(5_000_000, preimage(3).payment_hash(), 500_000, onion(3)),
        Err(ChannelError::Ignore(_))
    ));
    assert!(!pair.sent_types_a.contains(&39) && !pair.sent_types_b.contains(&39));
    // Fulfill still works; then negotiation runs by itself.
    pair.b.fulfill_htlc(id, preimage(2)).unwrap();
    pair.run().unwrap();
    assert_eq!(pair.a.phase(), ChannelPhase::Closed);
    let (ea, eb) = pair.take_events();
    assert!(ea.contains(&ChannelEvent::OutboundHtlcFulfilled {
        id,
        payment_preimage: preimage(2)
    }));
    verify_funding_spend(&closing_tx(&ea), &pair.funding_tx);
    assert_eq!(closing_tx(&ea), closing_tx(&eb));
}

#[test]
fn shutdown_script_must_match_upfront_script() {
    let mut pair = Pair::open(false);
    let before = pair.a.clone();
    let bad = Message::Shutdown(Shutdown {
        channel_id: pair.a.channel_id(),
        scriptpubkey: shutdown_script(0xcc),
    });
    let err = pair.a.handle_message(&bad).unwrap_err();
    assert!(
        matches!(err, ChannelError::Close(ref t) if t.to_string().contains("upfront")),
        "{err}"
    );
    assert_eq!(pair.a, before);
    // A non-standard script is refused with a warning.
    let weird = Message::Shutdown(Shutdown {
        channel_id: pair.a.channel_id(),
        scriptpubkey: lightning_core::bitcoin::ScriptBuf::from_bytes(vec![0x6a, 0x01, 0x01]),
    });
    assert!(matches!(
        pair.a.handle_message(&weird),
        Err(ChannelError::Warn(_))
    ));
    assert_eq!(pair.a, before);
    let other = Message::Shutdown(Shutdown {
        channel_id: ChannelId([0x77; 32]),
        scriptpubkey: shutdown_script(0xbb),
    });
    assert!(pair.a.handle_message(&other).unwrap_err().is_close());
}

#[test]
fn shutdown_is_resent_on_reconnect_and_closing_restarts() {
    let mut pair = Pair::open(false);
    pair.a.shutdown().unwrap();
    pair.a.maybe_sign().unwrap();
    pair.flush();
    assert_eq!(pair.sent_types_a.last(), Some(&38));
    // Lost: reconnect, A resends shutdown, and the close completes.
    pair.reconnect().unwrap();
    assert_eq!(pair.a.phase(), ChannelPhase::Closed);
    assert_eq!(pair.b.phase(), ChannelPhase::Closed);
    let (ea, _) = pair.take_events();
    verify_funding_spend(&closing_tx(&ea), &pair.funding_tx);
}

#[test]
fn closing_signed_with_bad_signature_is_refused() {
    let mut pair = Pair::open(false);
    pair.a.shutdown().unwrap();
    pair.a.maybe_sign().unwrap();
    pair.deliver(Side::A).unwrap(); // shutdown -> B answers
    pair.deliver(Side::B).unwrap(); // B's shutdown -> A sends closing_signed
    let Message::ClosingSigned(mut cs) = Message::decode(&pair.a_to_b[0]).unwrap() else {
        panic!("closing_signed")
    };
    cs.fee_satoshis += 1;
    let before = pair.b.clone();
    let err = pair
        .b
        .handle_message(&Message::ClosingSigned(cs.clone()))
        .unwrap_err();
    assert!(matches!(err, ChannelError::Close(ref t) if t.to_string().contains("does not verify")));
    assert_eq!(pair.b, before);
}

fn force_close(anchors: bool) {
    let mut pair = Pair::open(anchors);
    for i in 0..3 {
        let amount = if i == 2 { 20_000 } else { 5_000_000 };
        pair.a
            .send_htlc(
                amount,
                preimage(i).payment_hash(),
                500_000 + i as u32,
                onion(i),
            )
            .unwrap();
    }
    pair.b
        .send_htlc(6_000_000, preimage(9).payment_hash(), 500_100, onion(9))
        .unwrap();
    pair.run().unwrap();
    for side in [Side::A, Side::B] {
        let c = pair.chan(side).clone();
        let mut c2 = c.clone();
        let tx = c2.force_close().unwrap();
        assert_eq!(c2.phase(), ChannelPhase::Closed);
        assert_eq!(tx.compute_txid(), c.local_commit().txid);
        verify_funding_spend(&tx, &pair.funding_tx);
        // Three untrimmed HTLC outputs (the dust one is trimmed), anchors if negotiated.
        let htlc_outputs = c.local_commitment_tx().unwrap().htlc_outputs().len();
        assert_eq!(htlc_outputs, 3);
        assert_eq!(c.local_commit().htlc_signatures.len(), 3);
        let expected_outputs = 2 + 3 + if anchors { 2 } else { 0 };
        assert_eq!(tx.output.len(), expected_outputs);
    }
}

#[test]
fn force_close_static_remotekey_commitment_verifies() {
    force_close(false);
}

#[test]
fn force_close_anchors_commitment_verifies() {
    force_close(true);
}

#[test]
fn peer_shutdown_drops_our_unsent_adds() {
    let mut pair = Pair::open(false);
    let id0 = pair
        .a
        .send_htlc(5_000_000, preimage(1).payment_hash(), 500_000, onion(1))
        .unwrap();
    pair.a.maybe_sign().unwrap();
    // A's second add waits in the holding cell (A awaits B's revoke_and_ack).
    let id1 = pair
        .a
        .send_htlc(5_000_000, preimage(2).payment_hash(), 500_000, onion(2))
        .unwrap();
    assert!(!pair.a.maybe_sign().unwrap());
    pair.b.shutdown().unwrap();
    pair.b.maybe_sign().unwrap();
    pair.flush();
    // B's shutdown reaches A first: the queued add is failed back, never sent.
    pair.deliver(Side::B).unwrap();
    let (ea, _) = pair.take_events();
    assert_eq!(
        ea,
        vec![
            ChannelEvent::OutboundHtlcFailed {
                id: id1,
                failure: lightning_core::channel::HtlcFailure::NotSent
            },
            ChannelEvent::ShutdownStarted
        ]
    );
    // While an HTLC remains, update_fee is still allowed.
    pair.a.update_fee(3000).unwrap();
    pair.run().unwrap();
    pair.assert_converged();
    assert_eq!(pair.b.local_commit().spec.htlcs.len(), 1);
    assert_eq!(pair.b.local_commit().spec.feerate_per_kw, 3000);
    let (_, eb) = pair.take_events();
    assert!(eb
        .iter()
        .any(|e| matches!(e, ChannelEvent::InboundHtlcCommitted { id, .. } if *id == id0)));
    pair.b.fulfill_htlc(id0, preimage(1)).unwrap();
    pair.run().unwrap();
    assert_eq!(pair.a.phase(), ChannelPhase::Closed);
    assert_eq!(pair.b.phase(), ChannelPhase::Closed);
    let (ea, _) = pair.take_events();
    verify_funding_spend(&closing_tx(&ea), &pair.funding_tx);
}

#[test]
fn htlc_deadlines_require_going_on_chain() {
    let mut pair = Pair::open(false);
    let id = pair
        .a
        .send_htlc(5_000_000, preimage(1).payment_hash(), 1_000, onion(1))
        .unwrap();
    pair.run().unwrap();
    assert_eq!(pair.a.check_htlc_deadlines(1_002), Ok(()));
    assert!(matches!(
        pair.a.check_htlc_deadlines(1_003),
        Err(ChannelError::Close(t)) if t.to_string().contains("timed out")
    ));
    // B claimed it but A does not sign the removal: B must go on-chain in time.
    pair.b.fulfill_htlc(id, preimage(1)).unwrap();
    assert_eq!(pair.b.check_htlc_deadlines(981), Ok(()));
    assert!(pair.b.check_htlc_deadlines(982).unwrap_err().is_close());
    pair.run().unwrap();
    assert_eq!(pair.a.check_htlc_deadlines(5_000), Ok(()));
    assert_eq!(pair.b.check_htlc_deadlines(5_000), Ok(()));
}

#[test]
fn messages_after_close_are_ignored() {
    let mut pair = Pair::open(false);
    pair.a.shutdown().unwrap();
    pair.run().unwrap();
    assert_eq!(pair.b.phase(), ChannelPhase::Closed);
    let cs_types: Vec<u16> = pair.sent_types_a.clone();
    assert!(cs_types.contains(&39));
    // A repeated shutdown or closing_signed must not make the closed channel fail.
    let again = Message::Shutdown(Shutdown {
        channel_id: pair.b.channel_id(),
        scriptpubkey: shutdown_script(0xaa),
    });
    assert!(matches!(
        pair.b.handle_message(&again),
        Err(ChannelError::Ignore(_))
    ));
}
