//! Random action scripts (in the spirit of rust-lightning's `chanmon_consistency` fuzzer):
//! adds, fulfills, fails and fee updates in both directions, delivered in random
//! interleavings with random disconnections. Honest peers must never error, and once quiet
//! both views of both commitments agree and every HTLC resolves exactly once.

mod channel_support;

use std::collections::BTreeMap;

use channel_support::{onion, preimage, Pair, Side, FUNDING_SATOSHIS};
use lightning_core::channel::{ChannelError, ChannelEvent};
use lightning_core::types::PaymentHash;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Action {
    Send(bool, u8),
    Fulfill(bool, u8),
    Fail(bool, u8),
    Fee(u16),
    Sign(bool),
    Deliver(bool),
    Reconnect,
    Shutdown(bool),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (any::<bool>(), any::<u8>()).prop_map(|(a, b)| Action::Send(a, b)),
        2 => (any::<bool>(), any::<u8>()).prop_map(|(a, b)| Action::Fulfill(a, b)),
        1 => (any::<bool>(), any::<u8>()).prop_map(|(a, b)| Action::Fail(a, b)),
        1 => (253u16..6000).prop_map(Action::Fee),
        3 => any::<bool>().prop_map(Action::Sign),
        8 => any::<bool>().prop_map(Action::Deliver),
        1 => Just(Action::Reconnect),
        1 => any::<bool>().prop_map(Action::Shutdown),
    ]
}

fn side(a: bool) -> Side {
    if a {
        Side::A
    } else {
        Side::B
    }
}

struct Model {
    hashes: BTreeMap<PaymentHash, u64>,
    next: u64,
    /// Inbound committed and unresolved HTLCs per receiving side: (id, preimage index).
    inbound: [Vec<(u64, u64, u64)>; 2],
    fulfilled: [u64; 2],
    outstanding: usize,
    closing_txs: Vec<lightning_core::bitcoin::Transaction>,
}

fn absorb(pair: &mut Pair, m: &mut Model) {
    let (ea, eb) = pair.take_events();
    for (i, evs) in [(0usize, ea), (1usize, eb)] {
        for e in evs {
            match e {
                ChannelEvent::InboundHtlcCommitted {
                    id,
                    amount_msat,
                    payment_hash,
                    ..
                } => m.inbound[i].push((id, amount_msat, m.hashes[&payment_hash])),
                ChannelEvent::OutboundHtlcFulfilled { .. } => m.outstanding -= 1,
                ChannelEvent::OutboundHtlcFailed { .. } => m.outstanding -= 1,
                ChannelEvent::ShutdownStarted => {}
                ChannelEvent::ClosingTransactionReady { tx } => m.closing_txs.push(tx),
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
}

fn ok_or_refused(r: Result<(), ChannelError>) {
    if let Err(e) = r {
        assert!(
            matches!(e, ChannelError::Ignore(_)),
            "local call failed: {e}"
        );
    }
}

fn closed(pair: &Pair) -> bool {
    use lightning_core::channel::ChannelPhase;
    pair.a.phase() == ChannelPhase::Closed || pair.b.phase() == ChannelPhase::Closed
}

/// Delivers one message; a closed channel may only ignore late messages.
fn deliver(pair: &mut Pair, from: Side) {
    match pair.deliver(from) {
        Ok(_) => {}
        Err(ChannelError::Ignore(_)) if closed(pair) => {}
        Err(e) => panic!("honest message refused: {e}"),
    }
}

fn settle(pair: &mut Pair) {
    if !closed(pair) {
        pair.a.maybe_sign().expect("sign");
        pair.b.maybe_sign().expect("sign");
    }
    pair.flush();
    while !pair.a_to_b.is_empty() || !pair.b_to_a.is_empty() {
        if !pair.a_to_b.is_empty() {
            deliver(pair, Side::A);
        }
        if !pair.b_to_a.is_empty() {
            deliver(pair, Side::B);
        }
    }
}

fn run_script(anchors: bool, actions: Vec<Action>) {
    let mut pair = Pair::open(anchors);
    let mut m = Model {
        hashes: BTreeMap::new(),
        next: 0,
        inbound: [Vec::new(), Vec::new()],
        fulfilled: [0, 0],
        outstanding: 0,
        closing_txs: Vec::new(),
    };
    let mut shutdown = false;
    for act in actions {
        match act {
            Action::Send(a, amt) => {
                let i = m.next;
                m.next += 1;
                let p = preimage(i);
                m.hashes.insert(p.payment_hash(), i);
                let amount = if amt % 3 == 0 {
                    30_000
                } else {
                    4_000_000 + u64::from(amt) * 1000
                };
                match pair
                    .chan(side(a))
                    .send_htlc(amount, p.payment_hash(), 500_000, onion(i))
                {
                    Ok(_) => m.outstanding += 1,
                    Err(e) => assert!(matches!(e, ChannelError::Ignore(_)), "{e}"),
                }
            }
            Action::Fulfill(a, k) | Action::Fail(a, k) => {
                let is_fulfill = matches!(act, Action::Fulfill(..));
                let list = &mut m.inbound[usize::from(!a)];
                if list.is_empty() {
                    continue;
                }
                let (id, amount, pi) = list.remove(usize::from(k) % list.len());
                let r = if is_fulfill {
                    m.fulfilled[usize::from(!a)] += amount;
                    pair.chan(side(a)).fulfill_htlc(id, preimage(pi))
                } else {
                    pair.chan(side(a)).fail_htlc(id, vec![1, 2, 3])
                };
                r.expect("a committed inbound htlc can be resolved");
            }
            Action::Fee(f) => ok_or_refused(pair.a.update_fee(u32::from(f))),
            Action::Sign(a) => {
                pair.chan(side(a))
                    .maybe_sign()
                    .expect("signing never fails");
            }
            Action::Deliver(a) => deliver(&mut pair, side(a)),
            Action::Reconnect => {
                if !closed(&pair) {
                    pair.reconnect().expect("reconnection succeeds");
                }
            }
            Action::Shutdown(a) => {
                shutdown = true;
                ok_or_refused(pair.chan(side(a)).shutdown());
            }
        }
        pair.flush();
        absorb(&mut pair, &mut m);
    }
    // Settle, then resolve every remaining HTLC by fulfilling it.
    settle(&mut pair);
    absorb(&mut pair, &mut m);
    pair.assert_converged();
    for _ in 0..3 {
        for i in 0..2 {
            let s = if i == 0 { Side::A } else { Side::B };
            for (id, amount, pi) in std::mem::take(&mut m.inbound[i]) {
                m.fulfilled[i] += amount;
                pair.chan(s)
                    .fulfill_htlc(id, preimage(pi))
                    .expect("fulfill");
            }
        }
        settle(&mut pair);
        absorb(&mut pair, &mut m);
    }
    pair.assert_converged();
    if shutdown {
        // The close completes by itself once no HTLC remains.
        assert!(closed(&pair), "shutdown requested but not closed");
        assert_eq!(m.closing_txs.len(), 2);
        assert_eq!(m.closing_txs[0], m.closing_txs[1]);
        channel_support::verify_funding_spend(&m.closing_txs[0], &pair.funding_tx);
    } else {
        assert!(m.closing_txs.is_empty());
    }
    assert_eq!(m.outstanding, 0, "every htlc resolved exactly once");
    assert!(pair.a.local_commit().spec.htlcs.is_empty());
    let a = pair.a.local_commit().spec.to_local_msat;
    let b = pair.b.local_commit().spec.to_local_msat;
    assert_eq!(a + b, FUNDING_SATOSHIS * 1000);
    let start_a = FUNDING_SATOSHIS * 1000 - channel_support::PUSH_MSAT;
    assert_eq!(a + m.fulfilled[1], start_a + m.fulfilled[0]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_scripts_converge_static_remotekey(actions in proptest::collection::vec(action(), 1..60)) {
        run_script(false, actions);
    }

    #[test]
    fn random_scripts_converge_anchors(actions in proptest::collection::vec(action(), 1..60)) {
        run_script(true, actions);
    }
}
