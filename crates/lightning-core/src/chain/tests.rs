//! The monitor against real channels: every transaction it produces is checked by
//! libbitcoinconsensus against the outputs it spends, and every transaction confirmed goes
//! through the testkit's validating chain (a mempool with locktimes, BIP 68, relay policy).

use std::collections::HashMap;

use bitcoin::{OutPoint, Transaction, TxOut};

use super::*;
use crate::channel::test_utils::{ready_pair_funded, script};
use crate::channel::Channel;
use crate::transactions::scripts::funding_output;
use crate::types::{PaymentHash, PaymentPreimage};
use crate::wire::ONION_PACKET_LEN;
use lnshard_testkit::chain::ValidatingChain;

const VERIFY_P2SH: u32 = 1 << 0;
const VERIFY_DERSIG: u32 = 1 << 2;
const VERIFY_NULLDUMMY: u32 = 1 << 4;
const VERIFY_CHECKLOCKTIMEVERIFY: u32 = 1 << 9;
const VERIFY_CHECKSEQUENCEVERIFY: u32 = 1 << 10;
const VERIFY_WITNESS: u32 = 1 << 11;
const FLAGS: u32 = VERIFY_P2SH
    | VERIFY_DERSIG
    | VERIFY_NULLDUMMY
    | VERIFY_CHECKLOCKTIMEVERIFY
    | VERIFY_CHECKSEQUENCEVERIFY
    | VERIFY_WITNESS;

fn preimage(tag: u8) -> PaymentPreimage {
    PaymentPreimage([tag; 32])
}

/// `a` (whose monitor we test) and `b`, the monitor kept in step after every call, and the
/// outputs every transaction seen so far created (for consensus checks).
struct World {
    a: Channel,
    b: Channel,
    monitor: ChannelMonitor,
    prevouts: HashMap<OutPoint, TxOut>,
    height: u32,
    events: Vec<MonitorEvent>,
    broadcasts: Vec<Transaction>,
    bumps: Vec<Transaction>,
    chain: ValidatingChain,
}

impl World {
    fn new() -> World {
        World::of(false)
    }

    fn of(anchors: bool) -> World {
        let mut chain = ValidatingChain::new();
        let (a, b) = ready_pair_funded(anchors, |out| {
            chain.fund(out.script_pubkey, out.value.to_sat())
        });
        let height = chain.height();
        let peer = b.local_pubkeys.funding_pubkey;
        let monitor =
            ChannelMonitor::from_channel(&a, peer, script(0xdd), height, 1000).expect("funded");
        let funding = a.funding_outpoint().expect("funded");
        let mut prevouts = HashMap::new();
        prevouts.insert(
            funding,
            funding_output(
                &a.local_pubkeys.funding_pubkey,
                &a.remote_pubkeys.funding_pubkey,
                a.funding_satoshis(),
            ),
        );
        World {
            a,
            b,
            monitor,
            prevouts,
            height,
            events: Vec::new(),
            broadcasts: Vec::new(),
            bumps: Vec::new(),
            chain,
        }
    }

    fn sync(&mut self) {
        if let Some(update) = self.monitor.update_for(&self.a) {
            self.monitor.apply(&update).expect("update applies");
        }
        assert_eq!(self.monitor.update_for(&self.a), None, "in step");
    }

    /// Delivers everything both ways, syncing the monitor after each of `a`'s calls (as the
    /// node does before `a`'s messages leave).
    fn settle(&mut self) {
        for _ in 0..50 {
            self.a.maybe_sign().expect("sign");
            self.sync();
            self.b.maybe_sign().expect("sign");
            let (ma, mb) = (self.a.drain_messages(), self.b.drain_messages());
            if ma.is_empty() && mb.is_empty() {
                return;
            }
            for m in &ma {
                self.b.handle_message(m).expect("honest");
            }
            for m in &mb {
                self.a.handle_message(m).expect("honest");
                self.sync();
            }
        }
        panic!("did not settle");
    }

    fn add(&mut self, from_a: bool, sat: u64, hash: PaymentHash, cltv: u32) -> u64 {
        let onion = Box::new([0u8; ONION_PACKET_LEN]);
        let id = if from_a {
            self.a.send_htlc(sat * 1000, hash, cltv, onion)
        } else {
            self.b.send_htlc(sat * 1000, hash, cltv, onion)
        }
        .expect("add");
        self.settle();
        id
    }

    fn verify(&self, tx: &Transaction) {
        tx.verify_with_flags(|op| self.prevouts.get(op).cloned(), FLAGS)
            .unwrap_or_else(|e| panic!("consensus refuses {}: {e:?}", tx.compute_txid()));
        let fee: i64 = tx
            .input
            .iter()
            .map(|i| self.prevouts[&i.previous_output].value.to_sat() as i64)
            .sum::<i64>()
            - tx.output
                .iter()
                .map(|o| o.value.to_sat() as i64)
                .sum::<i64>();
        assert!(fee >= 0, "outputs exceed inputs");
        assert!(tx.weight().to_wu() <= 400_000);
        for o in &tx.output {
            assert!(o.value.to_sat() >= 294, "dust output");
        }
    }

    /// Mines a block with `txs` (each checked by consensus first, then accepted by the
    /// validating chain's mempool at the next height: locktimes, BIP 68, relay policy).
    fn confirm(&mut self, txs: &[Transaction]) {
        for tx in txs {
            self.verify(tx);
            if let Err(reject) = self.chain.submit(tx.clone()) {
                panic!("the chain refuses {}: {reject:?}", tx.compute_txid());
            }
        }
        for tx in txs {
            let txid = tx.compute_txid();
            for (vout, o) in tx.output.iter().enumerate() {
                self.prevouts.insert(
                    OutPoint {
                        txid,
                        vout: vout as u32,
                    },
                    o.clone(),
                );
            }
        }
        let block = self.chain.mine(1).pop().expect("a block");
        self.height = self.chain.height();
        assert_eq!(block.txdata.len(), txs.len() + 1, "all mined");
        let refs: Vec<&Transaction> = block.txdata.iter().skip(1).collect();
        let out = self.monitor.block_connected(self.height, &refs);
        self.take(out);
    }

    fn mine_to(&mut self, height: u32) {
        while self.height < height {
            self.confirm(&[]);
        }
    }

    fn take(&mut self, out: Vec<MonitorOutput>) {
        self.broadcasts.clear();
        self.bumps.clear();
        for o in out {
            match o {
                MonitorOutput::Broadcast(tx) => {
                    self.verify(&tx);
                    self.broadcasts.push(tx);
                }
                MonitorOutput::Event(MonitorEvent::BumpNeeded { tx, .. }) => {
                    // Valid as it is (its signatures let fee inputs be added).
                    if tx
                        .input
                        .iter()
                        .all(|i| self.prevouts.contains_key(&i.previous_output))
                    {
                        self.verify(&tx);
                    }
                    self.bumps.push(tx);
                }
                MonitorOutput::Event(e) => self.events.push(e),
            }
        }
    }

    fn spends(&self, outpoint: OutPoint) -> Option<Transaction> {
        self.broadcasts
            .iter()
            .find(|t| t.input.iter().any(|i| i.previous_output == outpoint))
            .cloned()
    }

    fn paid_to_destination(&self, tx: &Transaction) -> u64 {
        tx.output
            .iter()
            .filter(|o| o.script_pubkey == script(0xdd))
            .map(|o| o.value.to_sat())
            .sum()
    }
}

/// The output of `tx` paying `sat` satoshis.
fn output_of(tx: &Transaction, sat: u64) -> OutPoint {
    let vout = tx
        .output
        .iter()
        .position(|o| o.value.to_sat() == sat)
        .expect("output present");
    OutPoint {
        txid: tx.compute_txid(),
        vout: vout as u32,
    }
}

#[test]
fn their_commitment_with_htlcs_both_ways_is_claimed_and_resolved_upstream() {
    let mut w = World::new();
    let ours = w.add(true, 50_000, preimage(1).payment_hash(), 200);
    let theirs = w.add(false, 40_000, preimage(2).payment_hash(), 210);
    // We learn the preimage of the HTLC offered to us only now (claim_funds after close).
    let step = MonitorUpdate {
        update_id: w.monitor.update_id() + 1,
        steps: vec![MonitorStep::Preimage(preimage(2))],
    };
    w.monitor.apply(&step).expect("applies");
    let commitment = w.b.force_close().expect("b closes");
    w.confirm(std::slice::from_ref(&commitment));
    assert!(w.events.contains(&MonitorEvent::FundingSpent {
        txid: commitment.compute_txid(),
        kind: FundingSpendKind::Counterparty {
            index: w.a.remote_commit.index
        },
    }));
    // At once: our to_remote and the HTLC offered to us, with its preimage, separately.
    let their_htlc = output_of(&commitment, 40_000);
    let our_htlc = output_of(&commitment, 50_000);
    let claim_theirs = w.spends(their_htlc).expect("preimage claim");
    assert_eq!(claim_theirs.input.len(), 1, "an HTLC claim goes alone");
    assert!(w.spends(our_htlc).is_none(), "not before its expiry");
    let to_remote_spk = crate::transactions::scripts::to_remote_script_pubkey(
        &w.a.local_pubkeys.payment_basepoint,
        w.a.channel_type(),
    );
    let (vout, to_remote_value) = commitment
        .output
        .iter()
        .enumerate()
        .find(|(_, o)| o.script_pubkey == to_remote_spk)
        .map(|(v, o)| (v as u32, o.value.to_sat()))
        .expect("our to_remote");
    let sweep = w
        .spends(OutPoint {
            txid: commitment.compute_txid(),
            vout,
        })
        .expect("to_remote swept");
    w.confirm(&[claim_theirs.clone(), sweep.clone()]);
    w.mine_to(w.height + ANTI_REORG_DELAY);
    assert!(w.events.contains(&MonitorEvent::InboundHtlcClaimed {
        htlc_id: theirs,
        amount_msat: 40_000_000,
        payment_hash: preimage(2).payment_hash(),
    }));
    // Our HTLC: claimed back after its expiry, failed upstream 6 blocks after.
    w.mine_to(199);
    assert!(w.spends(our_htlc).is_none(), "final only in block 201");
    w.mine_to(200);
    let timeout = w.spends(our_htlc).expect("timeout claim at expiry");
    assert_eq!(timeout.lock_time.to_consensus_u32(), 200);
    assert!(!w
        .events
        .iter()
        .any(|e| matches!(e, MonitorEvent::OutboundHtlcFailed { .. })));
    w.confirm(std::slice::from_ref(&timeout));
    w.mine_to(w.height + ANTI_REORG_DELAY);
    assert!(w.events.contains(&MonitorEvent::OutboundHtlcFailed {
        htlc_id: ours,
        payment_hash: preimage(1).payment_hash(),
    }));
    assert!(w.monitor.is_fully_resolved());
    let swept = w.paid_to_destination(&claim_theirs)
        + w.paid_to_destination(&sweep)
        + w.paid_to_destination(&timeout);
    let owed = to_remote_value + 40_000 + 50_000;
    assert!(swept < owed && swept > owed - 2_000, "{swept} of {owed}");
    // Nothing is broadcast twice once resolved, and no event repeats.
    w.mine_to(w.height + 3);
    assert!(w.broadcasts.is_empty(), "{:?}", w.broadcasts);
    let before = w.events.len();
    let out = w.monitor.outputs();
    w.take(out);
    assert_eq!(w.events.len(), before);
}

#[test]
fn a_preimage_revealed_on_chain_goes_upstream_at_once() {
    let mut w = World::new();
    let ours = w.add(true, 50_000, preimage(1).payment_hash(), 200);
    // B learns the preimage and fulfils; before A receives it, B goes to chain with its
    // commitment and claims our HTLC with its HTLC-success transaction.
    w.b.fulfill_htlc(ours, preimage(1)).expect("b fulfils");
    let _ = w.b.drain_messages();
    let commitment = w.b.clone().force_close().expect("b closes");
    let success =
        w.b.holder_htlc_txs()
            .success
            .into_iter()
            .map(|(_, tx)| tx)
            .next()
            .expect("b's HTLC-success");
    w.confirm(std::slice::from_ref(&commitment));
    w.confirm(&[success]);
    assert!(w.events.contains(&MonitorEvent::OutboundHtlcFulfilled {
        htlc_id: ours,
        preimage: preimage(1),
    }));
}

#[test]
fn a_revoked_commitment_and_the_cheaters_htlc_transaction_are_punished() {
    let mut w = World::new();
    w.add(true, 50_000, preimage(1).payment_hash(), 200);
    w.add(false, 40_000, preimage(2).payment_hash(), 210);
    let stale_b = w.b.clone();
    let revoked = stale_b.clone().force_close().expect("b's state now");
    let cheat_timeout = stale_b
        .holder_htlc_txs()
        .timeout
        .into_iter()
        .map(|(_, tx)| tx)
        .next()
        .expect("b's HTLC-timeout of its own HTLC");
    // The channel moves on: that state is revoked.
    w.add(true, 30_000, preimage(3).payment_hash(), 220);
    assert!(w.a.remote_commit.index > 2);
    w.confirm(std::slice::from_ref(&revoked));
    let txid = revoked.compute_txid();
    assert!(w
        .events
        .iter()
        .any(|e| matches!(e, MonitorEvent::RevokedCommitmentSeen { txid: t, .. } if *t == txid)));
    // Justice: every output of the revoked commitment but the anchors is claimed.
    let claimed: Vec<OutPoint> = w
        .broadcasts
        .iter()
        .flat_map(|t| t.input.iter().map(|i| i.previous_output))
        .collect();
    assert_eq!(claimed.len(), revoked.output.len(), "{claimed:?}");
    // The cheater gets its HTLC-timeout in first, once final (our justice for that output
    // was out all along but, in this test, never mined).
    w.mine_to(210);
    w.verify(&cheat_timeout);
    w.confirm(std::slice::from_ref(&cheat_timeout));
    let second = OutPoint {
        txid: cheat_timeout.compute_txid(),
        vout: 0,
    };
    let punish = w.spends(second).expect("the second stage is punished");
    let all: Vec<Transaction> = w.broadcasts.clone();
    w.confirm(&all);
    w.mine_to(w.height + ANTI_REORG_DELAY);
    let _ = punish;
    assert!(w.monitor.is_fully_resolved(), "{:?}", w.monitor.balances());
    // Everything in the channel (less fees) ended with us.
    let capacity = w.a.funding_satoshis();
    let total: u64 = w
        .events
        .iter()
        .filter_map(|e| match e {
            MonitorEvent::ClaimConfirmed { value_sat, .. } => Some(*value_sat),
            _ => None,
        })
        .sum();
    assert!(total > capacity - 20_000 && total < capacity, "{total}");
}

#[test]
fn our_force_close_sweeps_to_local_and_times_out_through_second_stage() {
    let mut w = World::new();
    let ours = w.add(true, 50_000, preimage(1).payment_hash(), 200);
    let commitment = w.monitor.broadcast_holder_commitment().expect("ours");
    w.confirm(std::slice::from_ref(&commitment));
    assert!(
        w.monitor.broadcast_holder_commitment().is_none(),
        "never after a spend"
    );
    let csv = u32::from(w.a.remote_params.to_self_delay);
    let to_local_sat =
        w.a.local_commitment_tx()
            .expect("built")
            .to_local_satoshis()
            .expect("a to_local");
    let to_local = output_of(&commitment, to_local_sat);
    assert!(w.spends(to_local).is_none());
    w.mine_to(w.height + csv - 1);
    let sweep = w.spends(to_local).expect("to_local after its delay");
    w.confirm(&[sweep]);
    w.mine_to(200);
    let htlc = output_of(&commitment, 50_000);
    let timeout = w.spends(htlc).expect("HTLC-timeout at expiry");
    w.confirm(std::slice::from_ref(&timeout));
    w.mine_to(w.height + ANTI_REORG_DELAY);
    assert!(w.events.contains(&MonitorEvent::OutboundHtlcFailed {
        htlc_id: ours,
        payment_hash: preimage(1).payment_hash(),
    }));
    let second = OutPoint {
        txid: timeout.compute_txid(),
        vout: 0,
    };
    w.mine_to(w.height + csv);
    let sweep2 = w
        .spends(second)
        .expect("second stage swept after its delay");
    w.confirm(&[sweep2]);
    w.mine_to(w.height + ANTI_REORG_DELAY);
    assert!(w.monitor.is_fully_resolved());
}

#[test]
fn a_reorged_commitment_is_forgotten_and_its_replacement_handled() {
    let mut w = World::new();
    w.add(true, 50_000, preimage(1).payment_hash(), 200);
    let theirs = w.b.clone().force_close().expect("b");
    w.confirm(std::slice::from_ref(&theirs));
    let at = w.height;
    assert!(w.monitor.funding_spend().is_some());
    // Our commitment replaces theirs on a longer branch.
    let mut offline = w.monitor.clone();
    offline.blocks_disconnected(at);
    assert!(offline.funding_spend().is_none());
    assert!(offline.planned_claims().is_empty());
    let ours = offline
        .broadcast_holder_commitment()
        .expect("ours may go now");
    let blocks = w
        .chain
        .reorg_replacing(theirs.compute_txid(), Some(ours.clone()))
        .expect("reorg");
    w.monitor.blocks_disconnected(at);
    for (i, block) in blocks.iter().enumerate() {
        let refs: Vec<&Transaction> = block.txdata.iter().skip(1).collect();
        let out = w.monitor.block_connected(at + i as u32, &refs);
        w.take(out);
    }
    assert_eq!(
        w.monitor.funding_spend().map(|(t, _)| t),
        Some(ours.compute_txid())
    );
    assert!(w.events.iter().any(|e| matches!(
        e,
        MonitorEvent::FundingSpent {
            kind: FundingSpendKind::Holder { .. },
            ..
        }
    )));
}

#[test]
fn updates_apply_in_order_and_never_go_back() {
    let mut w = World::new();
    w.add(true, 50_000, preimage(1).payment_hash(), 200);
    let id = w.monitor.update_id();
    let wrong = MonitorUpdate {
        update_id: id + 2,
        steps: vec![],
    };
    assert!(matches!(
        w.monitor.apply(&wrong),
        Err(MonitorError::UpdateOutOfOrder { .. })
    ));
    let stale = MonitorUpdate {
        update_id: id + 1,
        steps: vec![MonitorStep::HolderCommitment(w.monitor.holder.clone())],
    };
    assert!(matches!(
        w.monitor.apply(&stale),
        Err(MonitorError::StaleHolderCommitment { .. })
    ));
    assert_eq!(
        w.monitor.update_id(),
        id,
        "a refused update changes nothing"
    );
}

#[test]
fn deadlines_force_the_channel_to_chain_in_time() {
    let mut w = World::new();
    let ours = w.add(true, 50_000, preimage(1).payment_hash(), 200);
    let theirs = w.add(false, 40_000, preimage(2).payment_hash(), 300);
    assert_eq!(w.monitor.force_close_deadline(202), None);
    assert_eq!(
        w.monitor.force_close_deadline(203),
        Some(DeadlineReason::OfferedExpired {
            htlc_id: ours,
            cltv_expiry: 200
        })
    );
    // The preimage of the HTLC offered to us: claim it on chain 36 blocks before expiry.
    let step = MonitorUpdate {
        update_id: w.monitor.update_id() + 1,
        steps: vec![MonitorStep::Preimage(preimage(2))],
    };
    w.monitor.apply(&step).expect("applies");
    let mut later = w.monitor.clone();
    // Without our own expired HTLC in the way.
    later.holder.spec.htlcs.retain(|_, h| !h.offered);
    later
        .counterparty
        .values_mut()
        .for_each(|c| c.spec.htlcs.retain(|_, h| h.offered));
    assert_eq!(later.force_close_deadline(263), None);
    assert_eq!(
        later.force_close_deadline(264),
        Some(DeadlineReason::FulfilledNearExpiry {
            htlc_id: theirs,
            cltv_expiry: 300
        })
    );
    let closed = MonitorUpdate {
        update_id: later.update_id() + 1,
        steps: vec![MonitorStep::ForceClosed],
    };
    later.apply(&closed).expect("applies");
    assert_eq!(later.force_close_deadline(299), None, "once only");
}

#[test]
fn anchors_claims_carry_the_csv_of_one_and_zero_fee_transactions_ask_for_fees() {
    let mut w = World::of(true);
    assert!(w.a.channel_type().has_anchors());
    w.add(true, 50_000, preimage(1).payment_hash(), 200);
    w.add(false, 40_000, preimage(2).payment_hash(), 210);
    let step = MonitorUpdate {
        update_id: w.monitor.update_id() + 1,
        steps: vec![MonitorStep::Preimage(preimage(2))],
    };
    w.monitor.apply(&step).expect("applies");
    let mut ours = w_clone(&w);
    // Their commitment: the CSV of 1 on to_remote and HTLC outputs.
    let commitment = w.b.force_close().expect("b closes");
    w.confirm(std::slice::from_ref(&commitment));
    let their_htlc = output_of(&commitment, 40_000);
    // Claimable in the next block (BIP 68: one confirmation of the commitment by then).
    let claim = w.spends(their_htlc).expect("preimage claim");
    assert_eq!(claim.input[0].sequence.0, 1, "the CSV of 1");
    assert!(w.broadcasts.len() >= 2, "to_remote too: {:?}", w.broadcasts);
    let all = w.broadcasts.clone();
    w.confirm(&all);
    // Our commitment instead: bumped through our anchor; zero-fee HTLC transactions are
    // never broadcast as final, they ask for fee inputs.
    let tx = ours.monitor.broadcast_holder_commitment().expect("ours");
    let out = ours.monitor.outputs();
    ours.take(out);
    assert!(ours.broadcasts.is_empty());
    assert_eq!(
        ours.bumps,
        vec![tx.clone()],
        "CPFP asked for the commitment"
    );
    ours.confirm(std::slice::from_ref(&tx));
    ours.mine_to(200);
    // The HTLC-success (we hold the preimage) and, at its expiry, the HTLC-timeout: both
    // zero-fee, both handed over for fee inputs.
    assert_eq!(ours.bumps.len(), 2, "{:?}", ours.bumps);
    let timeout = ours
        .bumps
        .iter()
        .find(|t| t.lock_time.to_consensus_u32() == 200)
        .expect("the HTLC-timeout");
    assert_eq!(
        timeout.output.iter().map(|o| o.value.to_sat()).sum::<u64>(),
        50_000
    );
    assert!(ours
        .bumps
        .iter()
        .any(|t| t.output.iter().map(|o| o.value.to_sat()).sum::<u64>() == 40_000));
    assert!(ours.spends(output_of(&tx, 50_000)).is_none());
}

/// A second world on the same channels and monitor (a different chain future).
fn w_clone(w: &World) -> World {
    World {
        a: w.a.clone(),
        b: w.b.clone(),
        monitor: w.monitor.clone(),
        prevouts: w.prevouts.clone(),
        height: w.height,
        events: Vec::new(),
        broadcasts: Vec::new(),
        bumps: Vec::new(),
        chain: w.chain.clone(),
    }
}

/// The `BumpNeeded` requests among `out`: (tx, anchor named, feerate, cap).
fn bump_requests(out: &[MonitorOutput]) -> Vec<(Transaction, bool, u32, u64)> {
    out.iter()
        .filter_map(|o| match o {
            MonitorOutput::Event(MonitorEvent::BumpNeeded {
                tx,
                anchor,
                feerate_per_kw,
                max_fee_sat,
                ..
            }) => Some((tx.clone(), anchor.is_some(), *feerate_per_kw, *max_fee_sat)),
            _ => None,
        })
        .collect()
}

/// Connects an empty block on the monitor alone (the commitment stays unconfirmed) and
/// returns the commitment's bump request: (feerate, cap).
fn commitment_request_at(w: &mut World, height: u32) -> (u32, u64) {
    w.height = height;
    let out = w.monitor.block_connected(height, &[]);
    let bumps = bump_requests(&out);
    assert_eq!(bumps.len(), 1, "{bumps:?}");
    let (_, anchor, feerate, cap) = bumps.into_iter().next().expect("one");
    assert!(anchor, "the commitment's request names our anchor");
    (feerate, cap)
}

#[test]
fn our_commitments_bump_request_follows_the_urgency_schedule_and_caps_at_the_value_at_stake() {
    let mut w = World::of(true);
    w.add(true, 50_000, preimage(1).payment_hash(), 200);
    w.add(false, 40_000, preimage(2).payment_hash(), 210);
    w.monitor.set_feerate(2_000);
    let to_local = w.a.local_commit.spec.to_local_msat / 1000;
    let commitment = w.monitor.broadcast_holder_commitment().expect("ours");
    let start = w.height;
    assert!(start + 36 < 200);
    // The deadline is the earliest HTLC expiry (200): the host's feerate far from it, then
    // 1.5x within 36 blocks, 2x within 12, 4x within 3. The cap: our balance and the HTLC
    // we offered (the one offered to us is not ours without its preimage).
    assert_eq!(
        commitment_request_at(&mut w, start + 1),
        (2_000, to_local + 50_000)
    );
    assert_eq!(commitment_request_at(&mut w, 163).0, 2_000);
    assert_eq!(commitment_request_at(&mut w, 164).0, 3_000);
    assert_eq!(commitment_request_at(&mut w, 187).0, 3_000);
    assert_eq!(commitment_request_at(&mut w, 188).0, 4_000);
    assert_eq!(commitment_request_at(&mut w, 196).0, 4_000);
    assert_eq!(commitment_request_at(&mut w, 197).0, 8_000);
    // With the preimage of the HTLC offered to us, it is at stake too.
    let step = MonitorUpdate {
        update_id: w.monitor.update_id() + 1,
        steps: vec![MonitorStep::Preimage(preimage(2))],
    };
    w.monitor.apply(&step).expect("applies");
    assert_eq!(
        commitment_request_at(&mut w, 198),
        (8_000, to_local + 50_000 + 40_000)
    );
    // Confirmed: the HTLC transactions ask for fees, each capped at its HTLC's value, at
    // the schedule's feerate for its own deadline.
    let out = w.monitor.block_connected(199, &[&commitment]);
    let bumps = bump_requests(&out);
    let success = bumps
        .iter()
        .find(|(tx, ..)| tx.lock_time.to_consensus_u32() == 0)
        .expect("the HTLC-success (preimage known)");
    assert!(!success.1, "no anchor for an HTLC transaction");
    assert_eq!(success.3, 40_000);
    // Its deadline is the HTLC's expiry, 210: 11 blocks left, 2x.
    assert_eq!(success.2, 4_000);
    let out = w.monitor.block_connected(200, &[]);
    let bumps = bump_requests(&out);
    let timeout = bumps
        .iter()
        .find(|(tx, ..)| tx.lock_time.to_consensus_u32() == 200)
        .expect("the HTLC-timeout at expiry");
    assert_eq!(timeout.3, 50_000);
    // Its deadline is expiry + 36 (236): 36 blocks left, 1.5x.
    assert_eq!(timeout.2, 3_000);
}

#[test]
fn a_claim_near_its_deadline_pays_up_to_its_value_less_a_dust_safe_output() {
    let mut w = World::new();
    w.add(true, 10_000, preimage(1).payment_hash(), 200);
    let commitment = w.b.force_close().expect("b closes");
    w.confirm(std::slice::from_ref(&commitment));
    let htlc = output_of(&commitment, 10_000);
    // A feerate at which the timeout claim is affordable at 1x, but 1.5x (its urgency at
    // expiry: 13 blocks left) would leave less than dust.
    w.monitor.set_feerate(14_000);
    w.mine_to(199);
    assert!(w.spends(htlc).is_none());
    w.mine_to(200);
    let claim = w.spends(htlc).expect("claimed at the cap, not dropped");
    let weight = claim.weight().to_wu();
    let dust = script(0xdd).minimal_non_dust().to_sat();
    assert!(
        crate::wallet::fee_for_weight(14_000, weight) + dust <= 10_000,
        "affordable at 1x"
    );
    assert!(
        crate::wallet::fee_for_weight(21_000, weight) + dust > 10_000,
        "not at 1.5x"
    );
    let paid = w.paid_to_destination(&claim);
    // The most it can pay: all but the dust-safe output (to the satoshi, less what the
    // feerate's rounding leaves).
    assert!(paid >= dust, "a dust-safe output: {paid}");
    assert!(
        paid < dust + weight.div_ceil(1000) + 1,
        "nearly all of the value in fees: {paid}"
    );
    // At the cap, a higher feerate cannot replace it: the same claim goes out again.
    w.monitor.set_feerate(60_000);
    let out = w.monitor.outputs();
    w.take(out);
    assert_eq!(w.spends(htlc), Some(claim.clone()));
    // The fee never exceeds the value claimed; the chain takes it.
    w.confirm(&[claim]);
}

#[test]
fn a_rebuilt_claim_replaces_the_last_by_bip125_or_goes_out_unchanged() {
    let mut w = World::new();
    let commitment = w.b.force_close().expect("b closes");
    w.confirm(std::slice::from_ref(&commitment));
    let to_remote_spk = crate::transactions::scripts::to_remote_script_pubkey(
        &w.a.local_pubkeys.payment_basepoint,
        w.a.channel_type(),
    );
    let vout = commitment
        .output
        .iter()
        .position(|o| o.script_pubkey == to_remote_spk)
        .expect("our to_remote") as u32;
    let ours = OutPoint {
        txid: commitment.compute_txid(),
        vout,
    };
    let value = commitment.output[vout as usize].value.to_sat();
    let first = w.spends(ours).expect("to_remote swept");
    let fee = |tx: &Transaction| value - tx.output.iter().map(|o| o.value.to_sat()).sum::<u64>();
    w.chain.submit(first.clone()).expect("in the mempool");
    // The host's feerate falls: no cheaper replacement, the same claim again.
    w.monitor.set_feerate(500);
    let out = w.monitor.outputs();
    w.take(out);
    assert_eq!(w.spends(ours), Some(first.clone()));
    // A hair higher (its fee rounds to what was paid): nothing more urgent, the same claim.
    w.monitor.set_feerate(1_001);
    let out = w.monitor.outputs();
    w.take(out);
    assert_eq!(w.spends(ours), Some(first.clone()));
    // It rises by less than BIP 125's increment would add: a replacement paying the
    // increment, which the mempool takes.
    w.monitor.set_feerate(1_100);
    let out = w.monitor.outputs();
    w.take(out);
    let second = w.spends(ours).expect("rebuilt");
    assert_ne!(second, first);
    let vsize = second.weight().to_wu().div_ceil(4);
    assert!(fee(&second) >= fee(&first) + vsize, "BIP 125's increment");
    w.chain.submit(second.clone()).expect("a valid replacement");
    assert!(!w.chain.in_mempool(&first.compute_txid()));
    // Unchanged: the same transaction again.
    let out = w.monitor.outputs();
    w.take(out);
    assert_eq!(w.spends(ours), Some(second.clone()));
    // Much higher: the feerate's fee.
    w.monitor.set_feerate(5_000);
    let out = w.monitor.outputs();
    w.take(out);
    let third = w.spends(ours).expect("rebuilt");
    assert!(fee(&third) >= crate::wallet::fee_for_weight(5_000, third.weight().to_wu()));
    assert!(fee(&third) > fee(&second) + vsize);
    // A valid replacement of the second, mined.
    w.confirm(&[third]);
    assert!(!w.chain.in_mempool(&second.compute_txid()));
}
