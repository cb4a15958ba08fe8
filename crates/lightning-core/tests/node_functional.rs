//! Functional tests: networks of `NodeCore`s exchanging encoded wire bytes, a fake chain
//! mining what they broadcast.

mod node_support;

use lightning_core::bitcoin::hashes::{sha256, Hash};
use lightning_core::chain::MonitorEvent;
use lightning_core::node::{ClosureReason, Event};
use lightning_core::onion::FailureMessage;
use lightning_core::types::ShortChannelId;
use node_support::{verify_2of2_spend, Net};

const SATS: u64 = 1_000_000;

#[test]
fn two_nodes_open_confirm_ready() {
    let mut net = Net::new(2, 1);
    net.connect(0, 1);
    let (channel_id, scid) = net.open_channel(0, 1, SATS, 0);
    for i in 0..2 {
        assert!(
            net.nodes[i].events.iter().any(|e| matches!(e, Event::ChannelReady { channel_id: c, short_channel_id: Some(s), .. } if *c == channel_id && *s == scid)),
            "node {i} saw ChannelReady"
        );
    }
    let a = net.details(0, channel_id).unwrap();
    assert_eq!(a.balances.to_local_msat, SATS * 1000);
    assert_eq!(a.balances.to_remote_msat, 0);
}

#[test]
fn two_nodes_1000_payments_both_ways_exact_balances() {
    let mut net = Net::new(2, 2);
    net.connect(0, 1);
    let (channel_id, scid) = net.open_channel(0, 1, SATS, 300_000_000);
    let (mut sent_ab, mut sent_ba) = (0u64, 0u64);
    for i in 0..1000u64 {
        // Mostly above dust (HTLC outputs and HTLC signatures), every tenth below it.
        let amount = if i % 10 == 9 {
            200_000
        } else {
            5_000_000 + i * 1_000
        };
        if i % 2 == 0 {
            net.pay(&[0, 1], &[scid], amount, i);
            sent_ab += amount;
        } else {
            net.pay(&[1, 0], &[scid], amount, i);
            sent_ba += amount;
        }
    }
    let a = net.details(0, channel_id).unwrap();
    let b = net.details(1, channel_id).unwrap();
    let a_expected = SATS * 1000 - 300_000_000 + sent_ba - sent_ab;
    assert_eq!(a.balances.to_local_msat, a_expected);
    assert_eq!(a.balances.to_remote_msat, SATS * 1000 - a_expected);
    assert_eq!(b.balances.to_local_msat, SATS * 1000 - a_expected);
    assert_eq!(b.balances.to_remote_msat, a_expected);
    let (ca, cb) = (
        net.nodes[0].core.channel(&net.id(1), &channel_id).unwrap(),
        net.nodes[1].core.channel(&net.id(0), &channel_id).unwrap(),
    );
    assert_eq!(
        ca.local_commit().spec,
        cb.remote_commit().spec,
        "A's commitment is what B signed"
    );
    assert_eq!(
        cb.local_commit().spec,
        ca.remote_commit().spec,
        "B's commitment is what A signed"
    );
}

fn line_of_three(seed: u8) -> (Net, ShortChannelId, ShortChannelId) {
    let mut net = Net::new(3, seed);
    net.connect(0, 1);
    net.connect(1, 2);
    let (_, s01) = net.open_channel(0, 1, SATS, 0);
    let (_, s12) = net.open_channel(1, 2, SATS, 0);
    (net, s01, s12)
}

#[test]
fn three_nodes_multi_hop_pays_the_middle_nodes_fee() {
    let (mut net, s01, s12) = line_of_three(3);
    let amount = 30_000_000;
    let fee = net.pay(&[0, 1, 2], &[s01, s12], amount, 1);
    let policy_fee = net.nodes[1].core.config().forwarding.fee_for(amount);
    assert_eq!(fee, policy_fee);
    let forwarded = net.take_events(1).into_iter().find_map(|e| match e {
        Event::PaymentForwarded {
            fee_earned_msat,
            outbound_amount_msat,
            ..
        } => Some((fee_earned_msat, outbound_amount_msat)),
        _ => None,
    });
    assert_eq!(forwarded, Some((policy_fee, amount)));
    let c01 = net.nodes[0].core.list_channels()[0].balances;
    assert_eq!(c01.to_local_msat, SATS * 1000 - amount - policy_fee);
    let c12 = net.nodes[2].core.list_channels()[0].balances;
    assert_eq!(c12.to_local_msat, amount);
    // And back the other way, through the same middle node.
    net.pay(&[2, 1, 0], &[s12, s01], 3_000_000, 2);
}

#[test]
fn failures_come_back_naming_the_failing_hop() {
    let (mut net, s01, s12) = line_of_three(4);
    // The recipient does not know the payment: hop 1 (node 2) fails it.
    let route = net.route(&[0, 1, 2], &[s01, s12], 6_000_000);
    let preimage = lightning_core::types::PaymentPreimage([0x55; 32]);
    let id = lightning_core::node::PaymentId([1; 32]);
    net.nodes[0]
        .core
        .send_payment(
            &route,
            preimage.payment_hash(),
            lightning_core::types::PaymentSecret([3; 32]),
            id,
        )
        .unwrap();
    net.run();
    let failure = net
        .take_events(0)
        .into_iter()
        .find_map(|e| match e {
            Event::PaymentFailed {
                payment_id,
                failure,
                ..
            } if payment_id == id => Some(failure),
            _ => None,
        })
        .expect("payment failed");
    assert_eq!(failure.failing_hop, Some(1));
    assert_eq!(failure.failing_node, Some(net.id(2)));
    assert!(
        matches!(
            failure.failure,
            Some(FailureMessage::IncorrectOrUnknownPaymentDetails { .. })
        ),
        "{failure:?}"
    );

    // The middle node is underpaid: hop 0 (node 1) fails it with fee_insufficient.
    let mut route = net.route(&[0, 1, 2], &[s01, s12], 6_000_000);
    route.hops[0].fee_msat -= 1;
    let preimage = lightning_core::types::PaymentPreimage([0x56; 32]);
    let (hash, secret) = net.nodes[2].core.create_inbound_payment(&preimage, None);
    let id = lightning_core::node::PaymentId([2; 32]);
    net.nodes[0]
        .core
        .send_payment(&route, hash, secret, id)
        .unwrap();
    net.run();
    let failure = net
        .take_events(0)
        .into_iter()
        .find_map(|e| match e {
            Event::PaymentFailed {
                payment_id,
                failure,
                ..
            } if payment_id == id => Some(failure),
            _ => None,
        })
        .expect("payment failed");
    assert_eq!(failure.failing_hop, Some(0));
    assert!(
        matches!(
            failure.failure,
            Some(FailureMessage::FeeInsufficient { .. })
        ),
        "{failure:?}"
    );

    // An unknown next channel: hop 0 fails it with unknown_next_peer.
    let mut route = net.route(&[0, 1, 2], &[s01, s12], 6_000_000);
    route.hops[1].short_channel_id = ShortChannelId::new(1, 2, 3);
    let id = lightning_core::node::PaymentId([3; 32]);
    net.nodes[0]
        .core
        .send_payment(&route, hash, secret, id)
        .unwrap();
    net.run();
    let failure = net
        .take_events(0)
        .into_iter()
        .find_map(|e| match e {
            Event::PaymentFailed {
                payment_id,
                failure,
                ..
            } if payment_id == id => Some(failure),
            _ => None,
        })
        .expect("payment failed");
    assert_eq!(failure.failing_hop, Some(0));
    assert_eq!(failure.failure, Some(FailureMessage::UnknownNextPeer));
    // Balances are untouched by failed payments.
    assert_eq!(
        net.nodes[0].core.list_channels()[0].balances.to_local_msat,
        SATS * 1000
    );
}

#[test]
fn htlc_timing_out_on_chain_fails_back_upstream() {
    let (mut net, s01, s12) = line_of_three(5);
    let (payment_id, _preimage) = net.send(&[0, 1, 2], &[s01, s12], 8_000_000, 9);
    // Node 2 holds the HTLC and vanishes: node 1 must time it out on chain.
    net.disconnect(1, 2);
    let expiry = net.nodes[1].core.list_channels().len();
    assert_eq!(expiry, 2);
    net.mine(60);
    let events = net.take_events(1);
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::ChannelClosed {
                reason: ClosureReason::HtlcsTimedOut,
                ..
            }
        )),
        "{events:?}"
    );
    let broadcasts = |events: &[Event]| -> Vec<_> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::BroadcastTransaction { tx } => Some(tx.clone()),
                _ => None,
            })
            .collect()
    };
    let txs = broadcasts(&events);
    assert!(
        !txs.is_empty(),
        "our commitment broadcast (after the funding transaction)"
    );
    // Once the commitment confirms, the monitor hands over the HTLC-timeout transaction
    // (final after the HTLC's expiry; zero-fee on this anchor channel, so as a request for
    // fee inputs: here the "wallet" gets it mined as it is); 6 blocks after it confirms,
    // node 1 fails the upstream HTLC and node 0's payment fails.
    let mut later = Vec::new();
    for _ in 0..60 {
        net.mine(1);
        for e in net.take_events(1) {
            match e {
                Event::OnChain {
                    event: MonitorEvent::BumpNeeded { tx, .. },
                    ..
                } => {
                    net.chain.mempool.push(tx.clone());
                    later.push(tx);
                }
                Event::BroadcastTransaction { tx } => later.push(tx),
                _ => {}
            }
        }
    }
    let failed = net
        .take_events(0)
        .into_iter()
        .any(|e| matches!(e, Event::PaymentFailed { payment_id: p, .. } if p == payment_id));
    assert!(failed, "payment failed back after the on-chain timeout");
    for tx in &txs {
        assert!(
            net.chain.confirmed.contains_key(&tx.compute_txid()),
            "mined {}",
            tx.compute_txid()
        );
    }
    let timeout_confirmed = later.iter().any(|tx| {
        txs.iter()
            .any(|c| tx.input[0].previous_output.txid == c.compute_txid())
            && net.chain.confirmed.contains_key(&tx.compute_txid())
    });
    assert!(timeout_confirmed, "an HTLC-timeout of our commitment mined");
}

/// As above, with node 1 crashing and restarting from its store while its commitment is on
/// chain and the HTLC not yet timed out: the restored monitor (snapshot plus updates) picks
/// up where it was, the HTLC still times out on chain and fails upstream exactly once.
#[test]
fn a_restart_in_the_middle_of_on_chain_resolution_loses_nothing() {
    let (mut net, s01, s12) = line_of_three(5);
    let (payment_id, _preimage) = net.send(&[0, 1, 2], &[s01, s12], 8_000_000, 9);
    net.disconnect(1, 2);
    net.mine(60);
    let closed = net
        .take_events(1)
        .into_iter()
        .find_map(|e| match e {
            Event::ChannelClosed {
                channel_id,
                reason: ClosureReason::HtlcsTimedOut,
                ..
            } => Some(channel_id),
            _ => None,
        })
        .expect("closed to time the HTLC out");
    net.mine(2);
    net.restart(1);
    let monitor = net.nodes[1]
        .core
        .monitor(&closed)
        .expect("restored from the store");
    assert!(
        monitor.funding_spend().is_some(),
        "with the confirmed commitment"
    );
    let mut failed = 0;
    for round in 0..60 {
        net.mine(1);
        if round == 3 {
            net.restart(1);
        }
        for e in net.take_events(1) {
            if let Event::OnChain {
                event: MonitorEvent::BumpNeeded { tx, .. },
                ..
            } = e
            {
                net.chain.mempool.push(tx);
            }
        }
        failed += net
            .take_events(0)
            .into_iter()
            .filter(|e| matches!(e, Event::PaymentFailed { payment_id: p, .. } if *p == payment_id))
            .count();
    }
    assert_eq!(
        failed, 1,
        "failed back exactly once after the on-chain timeout"
    );
    let balances = net.nodes[1].core.claimable_balances();
    assert!(
        balances.is_empty()
            || balances.iter().all(|(_, b)| !matches!(
                b,
                lightning_core::chain::Balance::ContentiousClaimable { .. }
            )),
        "{balances:?}"
    );
}

#[test]
fn disconnection_mid_commitment_dance_is_healed_by_reestablish() {
    let mut net = Net::new(2, 6);
    net.connect(0, 1);
    let (channel_id, scid) = net.open_channel(0, 1, SATS, 0);
    let mut paid = 0;
    // A whole payment is about ten messages (add and fulfill, each with two CS/RAA rounds).
    // Cut the connection after each number of delivered messages, in both directions of the
    // dance, then reconnect: every payment must complete and both sides agree.
    for cut in 0..14u8 {
        let route = net.route(&[0, 1], &[scid], 5_000_000);
        let preimage =
            lightning_core::types::PaymentPreimage(sha256::Hash::hash(&[cut]).to_byte_array());
        let (hash, secret) = net.nodes[1].core.create_inbound_payment(&preimage, None);
        let id = lightning_core::node::PaymentId([cut + 10; 32]);
        net.nodes[0]
            .core
            .send_payment(&route, hash, secret, id)
            .unwrap();
        let mut claimed = false;
        let mut claim_if_ready = |net: &mut Net| {
            if !claimed && net.nodes[1].events.iter().any(|e| matches!(e, Event::PaymentClaimable { payment_hash, .. } if *payment_hash == hash)) {
                net.nodes[1].core.claim_funds(preimage).unwrap();
                claimed = true;
            }
        };
        for _ in 0..cut {
            net.collect_outputs();
            claim_if_ready(&mut net);
            net.collect_outputs();
            net.deliver_one();
        }
        net.collect_outputs();
        net.disconnect(0, 1);
        net.connect(0, 1);
        for _ in 0..4 {
            net.run();
            claim_if_ready(&mut net);
        }
        net.run();
        assert!(claimed, "cut {cut}: the payment reached the recipient");
        let sent = net
            .take_events(0)
            .iter()
            .any(|e| matches!(e, Event::PaymentSent { payment_id, .. } if *payment_id == id));
        assert!(sent, "cut {cut}: the payer saw PaymentSent");
        net.take_events(1);
        paid += 5_000_000;
        let ca = net.nodes[0].core.channel(&net.id(1), &channel_id).unwrap();
        let cb = net.nodes[1].core.channel(&net.id(0), &channel_id).unwrap();
        assert_eq!(
            ca.local_commit().spec,
            cb.remote_commit().spec,
            "cut {cut}: converged"
        );
        assert_eq!(
            cb.local_commit().spec,
            ca.remote_commit().spec,
            "cut {cut}: converged"
        );
        assert_eq!(
            ca.local_commit().spec.to_local_msat,
            SATS * 1000 - paid,
            "cut {cut}"
        );
        assert!(
            ca.local_commit().spec.htlcs.is_empty(),
            "cut {cut}: no HTLC left"
        );
    }
    // The channel still works.
    net.pay(&[0, 1], &[scid], 5_000_000, 77);
}

#[test]
fn cooperative_close_spends_funding_with_valid_signatures() {
    let mut net = Net::new(2, 7);
    net.connect(0, 1);
    let (channel_id, scid) = net.open_channel(0, 1, SATS, 0);
    net.pay(&[0, 1], &[scid], 10_000_000, 1);
    let funding = net.nodes[0]
        .core
        .channel(&net.id(1), &channel_id)
        .unwrap()
        .funding_outpoint()
        .unwrap();
    let funding_script = net.chain.confirmed[&funding.txid].1.output[funding.vout as usize]
        .script_pubkey
        .clone();
    {
        let id0 = net.id(0);
        net.nodes[1].core.close_channel(channel_id, id0)
    }
    .unwrap();
    net.run();
    for i in 0..2 {
        let events = net.take_events(i);
        let closing = events
            .iter()
            .find_map(|e| match e {
                Event::BroadcastTransaction { tx } => Some(tx.clone()),
                _ => None,
            })
            .expect("closing tx broadcast");
        assert_eq!(closing.input[0].previous_output, funding);
        verify_2of2_spend(&closing, 0, &funding_script, SATS);
        assert!(events.iter().any(|e| matches!(
            e,
            Event::ChannelClosed {
                reason: ClosureReason::CooperativeClosure,
                ..
            }
        )));
    }
    assert!(net.nodes[0].core.list_channels().is_empty());
}

#[test]
fn force_close_commitment_spends_funding_with_valid_signatures() {
    let mut net = Net::new(2, 8);
    net.connect(0, 1);
    let (channel_id, scid) = net.open_channel(0, 1, SATS, 0);
    net.pay(&[0, 1], &[scid], 10_000_000, 1);
    let funding = net.nodes[0]
        .core
        .channel(&net.id(1), &channel_id)
        .unwrap()
        .funding_outpoint()
        .unwrap();
    let funding_script = net.chain.confirmed[&funding.txid].1.output[funding.vout as usize]
        .script_pubkey
        .clone();
    {
        let id0 = net.id(0);
        net.nodes[1].core.force_close_channel(channel_id, id0)
    }
    .unwrap();
    net.run();
    let events = net.take_events(1);
    let commitment = events
        .iter()
        .find_map(|e| match e {
            Event::BroadcastTransaction { tx } => Some(tx.clone()),
            _ => None,
        })
        .expect("commitment broadcast");
    verify_2of2_spend(&commitment, 0, &funding_script, SATS);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::ChannelClosed {
            reason: ClosureReason::HolderForceClosed,
            ..
        }
    )));
    // The peer learns through the error and closes too.
    assert!(net.take_events(0).iter().any(|e| matches!(
        e,
        Event::ChannelClosed {
            reason: ClosureReason::CounterpartyForceClosed { .. },
            ..
        }
    )));
}

#[test]
fn node_core_is_deterministic() {
    let run = || {
        let (mut net, s01, s12) = line_of_three(9);
        for i in 0..5 {
            net.pay(&[0, 1, 2], &[s01, s12], 5_000_000 + i, i);
        }
        let mut all = Vec::new();
        for node in &net.nodes {
            for (to, bytes) in &node.sent {
                all.extend_from_slice(&to.serialize());
                all.extend_from_slice(bytes);
            }
        }
        sha256::Hash::hash(&all)
    };
    assert_eq!(run(), run(), "same seeds and inputs give the same bytes");
}

/// A force close after we fulfilled an HTLC whose removal the peer never signed: our
/// HTLC-success transaction (with the preimage and both HTLC signatures) goes out once the
/// commitment confirms, so the payment is not forfeited.
#[test]
fn force_close_after_claim_broadcasts_htlc_success_with_the_preimage() {
    use lightning_core::bitcoin::blockdata::script::Instruction;
    use lightning_core::bitcoin::sighash::SighashCache;
    use lightning_core::bitcoin::{Amount, EcdsaSighashType, ScriptBuf};
    use lightning_core::secp256k1::{
        ecdsa::Signature, Message as SecpMessage, PublicKey, Secp256k1,
    };

    let mut net = Net::new(2, 10);
    net.connect(0, 1);
    let (channel_id, scid) = net.open_channel(0, 1, SATS, 0);
    let (_, preimage) = net.send(&[0, 1], &[scid], 9_000_000, 1);
    assert!(net
        .take_events(1)
        .iter()
        .any(|e| matches!(e, Event::PaymentClaimable { .. })));
    net.disconnect(0, 1);
    net.nodes[1].core.claim_funds(preimage).unwrap();
    let id0 = net.id(0);
    net.nodes[1]
        .core
        .force_close_channel(channel_id, id0)
        .unwrap();
    net.run();
    let broadcasts = |events: Vec<Event>| -> Vec<_> {
        events
            .into_iter()
            .filter_map(|e| match e {
                Event::BroadcastTransaction { tx } => Some(tx),
                _ => None,
            })
            .collect()
    };
    // The commitment goes out first; once it confirms, its monitor broadcasts the
    // second-stage transactions.
    let mut txs = broadcasts(net.take_events(1));
    let commitment = txs[0].clone();
    net.mine(1);
    // Anchor channel: the HTLC-success transaction pays no fee of its own, so it comes as
    // a request for fee inputs, never as a final broadcast.
    txs.extend(net.take_events(1).into_iter().filter_map(|e| match e {
        Event::OnChain {
            event: MonitorEvent::BumpNeeded { tx, .. },
            ..
        } => Some(tx),
        _ => None,
    }));
    let success = txs
        .iter()
        .find(|t| t.input[0].previous_output.txid == commitment.compute_txid())
        .expect("an HTLC-success transaction spending our commitment");
    let witness: Vec<&[u8]> = success.input[0].witness.iter().collect();
    assert_eq!(
        witness.len(),
        5,
        "0 <remotesig> <localsig> <preimage> <script>"
    );
    assert_eq!(witness[3], &preimage.0[..], "the preimage is revealed");
    let script = ScriptBuf::from_bytes(witness[4].to_vec());
    let htlc_out = &commitment.output[success.input[0].previous_output.vout as usize];
    assert_eq!(
        htlc_out.script_pubkey,
        ScriptBuf::new_p2wsh(&script.wscript_hash())
    );
    // The received-HTLC script names the remote then the local HTLC key.
    let keys: Vec<PublicKey> = script
        .instructions()
        .filter_map(|i| match i {
            Ok(Instruction::PushBytes(b)) if b.len() == 33 => {
                PublicKey::from_slice(b.as_bytes()).ok()
            }
            _ => None,
        })
        .collect();
    assert_eq!(keys.len(), 2);
    let secp = Secp256k1::verification_only();
    for (sig, key) in [(witness[1], keys[0]), (witness[2], keys[1])] {
        let (flag, der) = sig.split_last().unwrap();
        let sighash_type = EcdsaSighashType::from_standard(u32::from(*flag)).unwrap();
        let sighash = SighashCache::new(success)
            .p2wsh_signature_hash(
                0,
                &script,
                Amount::from_sat(htlc_out.value.to_sat()),
                sighash_type,
            )
            .unwrap();
        let msg = SecpMessage::from_digest(sighash.to_byte_array());
        secp.verify_ecdsa(&msg, &Signature::from_der(der).unwrap(), &key)
            .expect("HTLC signature verifies");
    }
}
