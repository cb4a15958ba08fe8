//! On-chain enforcement at the engine's level, lnshard against lnshard: the hub (the engine,
//! with a MemoryStore) and plain `NodeCore` peers over BOLT 8, every transaction anyone
//! broadcasts submitted to the testkit's validating chain (libbitcoinconsensus, locktimes,
//! BIP 68, relay policy) and every block mined there. Channels are `static_remotekey` (the
//! harness has no wallet to add fees to anchor channels' zero-fee transactions; anchors are
//! covered by lightning-core's monitor tests).

use lnshard_testkit as support;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use lightning_core::bitcoin::{OutPoint, Transaction, Txid};
use lightning_core::chain::{FundingSpendKind, MonitorEvent};
use lightning_core::channel::Channel;
use lightning_core::types::PaymentHash;
use shard_engine::store::{MemoryStore, Store};
use shard_engine::{Engine, EngineConfig, NodeApi};
use support::chain::ValidatingChain;
use support::onchain::{stale_htlc_txs, static_remotekey_config, ChainHub};
use support::{engine_config, hub_secret, hub_seed, Hub, Net, Threaded, Who};

/// Peer A (0) pays through the hub to peer B (1), and back.
const A: usize = 0;
const B: usize = 1;
/// The channels' indices in `net.channels` (A's, then B's).
const CA: usize = 0;
const CB: usize = 1;

fn config(store: &Arc<dyn Store>) -> EngineConfig {
    EngineConfig {
        store: Some(store.clone()),
        node: static_remotekey_config(),
        ..engine_config(2)
    }
}

fn open_hub(store: &Arc<dyn Store>, chain: &ValidatingChain) -> Engine {
    let engine = Engine::open(
        config(store),
        hub_secret(),
        hub_seed(),
        chain.height(),
        chain.tip(),
    )
    .expect("open");
    NodeApi::set_sweep_script(&engine, support::onchain::hub_sweep_script()).expect("sweep script");
    engine
}

/// The hub (2 shards, a MemoryStore), peers A and B, each with a channel the peer funded,
/// on a validating chain at height 100.
fn setup() -> (Net<Threaded>, Arc<dyn Store>) {
    let mut chain = ValidatingChain::new();
    chain.mine(100);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = open_hub(&store, &chain);
    let mut net = Net::new_validating(Threaded { engine }, 2, static_remotekey_config(), chain);
    net.open_channels(&[(A, false), (B, false)]);
    assert_eq!(net.channels[CA].peer, A);
    assert_eq!(net.channels[CB].peer, B);
    let hub_id = net.hub.engine.node_id();
    for c in net.channels.clone() {
        let ch = net.peers[c.peer]
            .core
            .channel(&hub_id, &c.channel_id)
            .expect("open");
        assert!(!ch.channel_type().has_anchors(), "static_remotekey");
    }
    (net, store)
}

/// The transactions the hub broadcast that confirmed, other than commitments, with the
/// hub's ClaimConfirmed events checked against them: each pays the sweep script exactly
/// what the event says.
struct HubClaims {
    /// Σ what the hub's confirmed claims pay its sweep script.
    swept: u64,
    /// Σ the fees of every confirmed hub transaction spending a commitment output or a
    /// second-stage output of its own.
    fees: u64,
    /// The confirmed hub transactions.
    txs: Vec<Transaction>,
}

/// `also`: other transactions the hub may claim from (a cheater's second stage).
fn hub_claims(net: &Net<Threaded>, commitment: &Transaction, also: &[Txid]) -> HubClaims {
    let v = net.validating.as_ref().expect("validating");
    let commitment_txid = commitment.compute_txid();
    let mut seen: BTreeSet<Txid> = BTreeSet::new();
    let mut txs = Vec::new();
    for (who, tx) in &v.broadcasts {
        let txid = tx.compute_txid();
        if *who != Who::Hub || txid == commitment_txid || !seen.insert(txid) {
            continue;
        }
        if v.chain.confirmations(&txid) == 0 {
            continue;
        }
        // Only spends of this channel's outputs (the commitment or the hub's own
        // second stages).
        assert!(
            tx.input
                .iter()
                .all(|i| i.previous_output.txid == commitment_txid
                    || also.contains(&i.previous_output.txid)
                    || v.origin.get(&i.previous_output.txid) == Some(&Who::Hub)),
            "hub tx {txid} spends elsewhere"
        );
        txs.push(tx.clone());
    }
    let sweep = support::onchain::hub_sweep_script();
    let mut swept = 0;
    let mut fees = 0;
    let events: HashMap<Txid, u64> = net
        .on_chain_events(Who::Hub)
        .into_iter()
        .filter_map(|(_, e)| match e {
            MonitorEvent::ClaimConfirmed { txid, value_sat } => Some((txid, value_sat)),
            _ => None,
        })
        .collect();
    for tx in &txs {
        fees += net.fee_of(tx);
        let to_sweep: u64 = tx
            .output
            .iter()
            .filter(|o| o.script_pubkey == sweep)
            .map(|o| o.value.to_sat())
            .sum();
        swept += to_sweep;
        if to_sweep > 0 {
            assert_eq!(
                events.get(&tx.compute_txid()),
                Some(&to_sweep),
                "ClaimConfirmed of {}",
                tx.compute_txid()
            );
        }
    }
    // Every ClaimConfirmed names one of these transactions.
    let ours: BTreeSet<Txid> = txs.iter().map(|t| t.compute_txid()).collect();
    for (txid, value) in &events {
        if *value > 0 {
            assert!(ours.contains(txid), "ClaimConfirmed of unknown {txid}");
        }
    }
    HubClaims { swept, fees, txs }
}

fn assert_clean(net: &Net<Threaded>) {
    // Every refusal is a lost race or a re-issue (see the testkit's onchain module).
    let v = net.validating.as_ref().expect("validating");
    assert!(
        net.vchain().refused().iter().all(|(txid, _)| v
            .conflicts
            .iter()
            .any(|(_, t, _)| t == txid)
            || v.reissues.iter().any(|(_, t, _)| t == txid)),
        "refused: {:#?}",
        net.vchain().refused()
    );
}

/// The hub's HTLC of `hash` in `spec`'s view, its expiry.
fn expiry(ch: &Channel, hash: PaymentHash) -> u32 {
    ch.remote_commit()
        .spec
        .htlcs
        .values()
        .find(|h| h.payment_hash == hash)
        .expect("htlc")
        .cltv_expiry
}

#[test]
fn a_peer_force_closes_with_htlcs_both_ways_and_the_hub_claims_its_own() {
    let (mut net, _store) = setup();
    let hub_id = net.hub.engine.node_id();
    // P1: A -> hub -> B, which B claims on chain. P2: A -> hub -> B, which B never claims
    // (times out on chain). P3: B -> hub -> A, which A claims once B's channel is closed.
    let p1 = net.start_payment(
        Who::Peer(A),
        Who::Peer(B),
        Some(CA),
        Some(CB),
        60_000_000,
        true,
    );
    let p2 = net.start_payment(
        Who::Peer(A),
        Who::Peer(B),
        Some(CA),
        Some(CB),
        70_000_000,
        true,
    );
    let p3 = net.start_payment(
        Who::Peer(B),
        Who::Peer(A),
        Some(CB),
        Some(CA),
        80_000_000,
        true,
    );
    net.run();
    let (pre1, _) = net.preimage_of(p1);
    let (_, hash2) = net.preimage_of(p2);
    let (pre3, _) = net.preimage_of(p3);
    let cb = net.channels[CB];
    let hub_side = net
        .hub
        .channel(net.peer_id(B), cb.channel_id)
        .expect("hub side");
    assert_eq!(
        hub_side.remote_commit().spec.htlcs.len(),
        3,
        "all three locked in"
    );
    let expiry2 = expiry(&hub_side, hash2);

    // B force-closes.
    net.peers[B]
        .core
        .force_close_channel(cb.channel_id, hub_id)
        .expect("B force-closes");
    net.run();
    net.mine(1);
    let commitment = net.funding_spend(&hub_side);
    assert_eq!(
        commitment.compute_txid(),
        hub_side.remote_commit().txid,
        "B's latest"
    );
    assert!(net.on_chain_events(Who::Hub).iter().any(|(_, e)| matches!(
        e,
        MonitorEvent::FundingSpent {
            kind: FundingSpendKind::Counterparty { .. },
            ..
        }
    )));

    // B claims P1 with its HTLC-success: the hub fulfils A at once, in the same block.
    net.peers[B]
        .core
        .claim_funds(pre1)
        .expect("B claims on chain");
    net.run();
    net.mine(1);
    assert!(
        net.on_chain_events(Who::Hub)
            .iter()
            .any(|(_, e)| matches!(e, MonitorEvent::OutboundHtlcFulfilled { preimage, .. } if *preimage == pre1)),
        "the hub saw the preimage"
    );
    assert_eq!(net.outcomes(p1), vec![true], "A paid at once");

    // A claims P3 off-chain: the hub claims it on chain from B's commitment.
    net.peers[A].core.claim_funds(pre3).expect("A claims");
    net.run();
    net.mine(1);

    // P2 times out on chain; it fails upstream only 6 blocks after the timeout confirms.
    let mut failed_at = None;
    while failed_at.is_none() && net.vchain().height() < expiry2 + 20 {
        net.mine(1);
        if net.outcomes(p2) == vec![false] {
            failed_at = Some(net.vchain().height());
        }
    }
    let failed_at = failed_at.expect("P2 failed upstream");
    let timeout_claim = net
        .validating
        .as_ref()
        .expect("v")
        .broadcasts
        .iter()
        .filter(|(w, _)| *w == Who::Hub)
        .map(|(_, t)| t)
        .find(|t| {
            t.lock_time.to_consensus_u32() == expiry2
                && net.vchain().confirmations(&t.compute_txid()) > 0
        })
        .expect("the hub's timeout claim confirmed")
        .clone();
    let (confirmed_at, _) = net
        .vchain()
        .confirmed_at(&timeout_claim.compute_txid())
        .expect("confirmed");
    assert_eq!(
        failed_at,
        confirmed_at + 5,
        "failed upstream 6 deep, not before"
    );

    net.mine(6);
    assert_clean(&net);
    // Exact amounts: the hub's balance on B's commitment and the two HTLCs it won.
    let htlc_sat = |hash: PaymentHash| {
        hub_side
            .remote_commit()
            .spec
            .htlcs
            .values()
            .find(|h| h.payment_hash == hash)
            .expect("htlc")
            .amount_msat
            / 1000
    };
    let (_, hash3) = net.preimage_of(p3);
    // P3 carries the hub's forwarding fee on top of its 80,000 sat.
    assert!(htlc_sat(hash3) > 80_000);
    let expected =
        hub_side.remote_commit().spec.to_remote_msat / 1000 + htlc_sat(hash2) + htlc_sat(hash3);
    let claims = hub_claims(&net, &commitment, &[]);
    assert_eq!(
        claims.swept + claims.fees,
        expected,
        "swept {} + fees {} of {} txs",
        claims.swept,
        claims.fees,
        claims.txs.len()
    );
    assert!(claims.fees < 5_000, "fees {}", claims.fees);
    let left: Vec<_> = net
        .hub
        .claimable_balances()
        .expect("balances")
        .into_iter()
        .filter(|(id, _)| *id == cb.channel_id)
        .collect();
    assert!(left.is_empty(), "nothing left to claim: {left:?}");
    // Off-chain: A's channel holds no HTLC and A saw every outcome once.
    assert_eq!(
        net.outcomes(p3),
        vec![true],
        "B learned P3's preimage on chain"
    );
    let a_side = net.peers[A]
        .core
        .channel(&hub_id, &net.channels[CA].channel_id)
        .expect("A's channel")
        .clone();
    assert!(a_side.local_commit().spec.htlcs.is_empty());
}

/// Mines until the hub has nothing left to claim on channel `cb` (or `limit` is reached),
/// then 6 more blocks. Returns the height at which nothing was left.
fn mine_until_resolved(
    net: &mut Net<Threaded>,
    channel: lightning_core::types::ChannelId,
    limit: u32,
) -> u32 {
    loop {
        let left = net
            .hub
            .claimable_balances()
            .expect("balances")
            .into_iter()
            .filter(|(id, _)| *id == channel)
            .count();
        if left == 0 {
            let at = net.vchain().height();
            net.mine(6);
            return at;
        }
        assert!(net.vchain().height() < limit, "unresolved at {limit}");
        net.mine(1);
    }
}

/// The amount (sat) of the HTLC of `hash` in `ch`'s latest commitment.
fn local_htlc_sat(ch: &Channel, hash: PaymentHash) -> u64 {
    ch.local_commit()
        .spec
        .htlcs
        .values()
        .find(|h| h.payment_hash == hash)
        .expect("htlc")
        .amount_msat
        / 1000
}

#[test]
fn the_hub_force_closes_and_sweeps_to_local_and_its_htlcs_through_the_second_stage() {
    let (mut net, _store) = setup();
    let hub_id = net.hub.engine.node_id();
    // P1: A -> hub -> B, which B claims on chain. P2: A -> hub -> B, never claimed (the
    // hub's HTLC-timeout). P3: B -> hub -> A, which A claims (the hub's HTLC-success).
    let p1 = net.start_payment(
        Who::Peer(A),
        Who::Peer(B),
        Some(CA),
        Some(CB),
        60_000_000,
        true,
    );
    let p2 = net.start_payment(
        Who::Peer(A),
        Who::Peer(B),
        Some(CA),
        Some(CB),
        70_000_000,
        true,
    );
    let p3 = net.start_payment(
        Who::Peer(B),
        Who::Peer(A),
        Some(CB),
        Some(CA),
        80_000_000,
        true,
    );
    net.run();
    let (pre1, _) = net.preimage_of(p1);
    let (_, hash2) = net.preimage_of(p2);
    let (pre3, hash3) = net.preimage_of(p3);
    let cb = net.channels[CB];
    let hub_side = net
        .hub
        .channel(net.peer_id(B), cb.channel_id)
        .expect("hub side");
    assert_eq!(
        hub_side.local_commit().spec.htlcs.len(),
        3,
        "all three locked in"
    );

    net.hub
        .force_close_channel(cb.channel_id)
        .expect("the hub force-closes");
    net.run();
    net.mine(1);
    let commitment = net.funding_spend(&hub_side);
    assert_eq!(
        commitment.compute_txid(),
        hub_side.local_commit().txid,
        "the hub's latest"
    );
    let closed_at = net.vchain().height();

    // B claims P1 on the hub's commitment: the hub fulfils A at once.
    net.peers[B]
        .core
        .claim_funds(pre1)
        .expect("B claims on chain");
    net.run();
    net.mine(1);
    assert_eq!(
        net.outcomes(p1),
        vec![true],
        "A paid as soon as the preimage confirmed"
    );
    // A claims P3: the hub claims it through its HTLC-success.
    net.peers[A].core.claim_funds(pre3).expect("A claims");
    net.run();
    net.mine(1);

    let csv = u32::from(hub_side.remote_params().to_self_delay);
    let done = mine_until_resolved(&mut net, cb.channel_id, closed_at + 600);
    assert!(done >= closed_at + csv, "to_local waits for its CSV");
    assert_eq!(net.outcomes(p2), vec![false], "P2 failed upstream");
    assert_eq!(net.outcomes(p3), vec![true]);
    assert_clean(&net);

    let expected = hub_side.local_commit().spec.to_local_msat / 1000
        + local_htlc_sat(&hub_side, hash2)
        + local_htlc_sat(&hub_side, hash3);
    let claims = hub_claims(&net, &commitment, &[]);
    // Second stages: an HTLC-timeout (locktime at P2's expiry) and an HTLC-success, each
    // swept after the CSV.
    let second: Vec<&Transaction> = claims
        .txs
        .iter()
        .filter(|t| {
            t.input.len() == 1
                && t.input[0].previous_output.txid == commitment.compute_txid()
                && t.output
                    .iter()
                    .all(|o| o.script_pubkey != support::onchain::hub_sweep_script())
        })
        .collect();
    assert_eq!(
        second.len(),
        2,
        "HTLC-timeout and HTLC-success: {second:#?}"
    );
    for s in &second {
        let txid = s.compute_txid();
        assert!(
            claims
                .txs
                .iter()
                .any(|t| t.input.iter().any(|i| i.previous_output.txid == txid)),
            "second stage {txid} swept"
        );
    }
    assert_eq!(
        claims.swept + claims.fees,
        expected,
        "swept {} + fees {} of {} txs",
        claims.swept,
        claims.fees,
        claims.txs.len()
    );
    assert!(claims.fees < 10_000, "fees {}", claims.fees);
    let a_side = net.peers[A]
        .core
        .channel(&hub_id, &net.channels[CA].channel_id)
        .expect("A's channel")
        .clone();
    assert!(a_side.local_commit().spec.htlcs.is_empty());
}

#[test]
fn a_revoked_commitment_and_the_cheaters_htlc_success_are_punished() {
    let (mut net, _store) = setup();
    let hub_id = net.hub.engine.node_id();
    let p1 = net.start_payment(
        Who::Peer(A),
        Who::Peer(B),
        Some(CA),
        Some(CB),
        60_000_000,
        true,
    );
    let p3 = net.start_payment(
        Who::Peer(B),
        Who::Peer(A),
        Some(CB),
        Some(CA),
        80_000_000,
        true,
    );
    net.run();
    let (pre1, _) = net.preimage_of(p1);
    let cb = net.channels[CB];
    // B keeps a copy of this state (both HTLCs pending)...
    let stale = net.peers[B]
        .core
        .channel(&hub_id, &cb.channel_id)
        .expect("B's channel")
        .clone();
    assert_eq!(stale.local_commit().spec.htlcs.len(), 2);
    // ... then the channel moves on: both payments settle, that state is revoked.
    net.settle();
    assert_eq!(net.outcomes(p1), vec![true]);
    assert_eq!(net.outcomes(p3), vec![true]);
    let hub_side = net
        .hub
        .channel(net.peer_id(B), cb.channel_id)
        .expect("hub side");
    assert!(hub_side.remote_commit().index > stale.local_commit().index);

    // B cheats: its revoked commitment and, in the same block (mined privately), its
    // HTLC-success of P1 (it knows the preimage).
    let revoked = stale.clone().force_close().expect("the stale commitment");
    let cheats = stale_htlc_txs(B, &hub_id, &stale, &[pre1]);
    let success = cheats
        .iter()
        .find(|t| t.lock_time.to_consensus_u32() == 0)
        .expect("B's HTLC-success")
        .clone();
    assert_eq!(cheats.len(), 2, "and the HTLC-timeout of P3");
    net.mine_exactly(vec![revoked.clone(), success.clone()]);
    assert!(net.on_chain_events(Who::Hub).iter().any(|(_, e)| matches!(
        e,
        MonitorEvent::RevokedCommitmentSeen { txid, .. } if *txid == revoked.compute_txid()
    )));
    let limit = net.vchain().height() + 300;
    let done = mine_until_resolved(&mut net, cb.channel_id, limit);
    assert_clean(&net);
    let claims = hub_claims(&net, &revoked, &[success.compute_txid()]);
    // The second stage is punished: a hub claim spends the HTLC-success's output.
    let success_out = OutPoint {
        txid: success.compute_txid(),
        vout: 0,
    };
    assert!(claims
        .txs
        .iter()
        .any(|t| t.input.iter().any(|i| i.previous_output == success_out)));
    // Justice takes everything: every output of the revoked commitment but P1's (spent by
    // the cheater), and P1's second-stage output.
    let p1_vout = success.input[0].previous_output.vout as usize;
    let everything: u64 = revoked
        .output
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != p1_vout)
        .map(|(_, o)| o.value.to_sat())
        .sum::<u64>()
        + success.output[0].value.to_sat();
    assert_eq!(
        claims.swept + claims.fees,
        everything,
        "swept {} + fees {} of {} txs (resolved at {done})",
        claims.swept,
        claims.fees,
        claims.txs.len()
    );
    assert!(claims.fees < 10_000, "fees {}", claims.fees);
    // The hub's claims spend only the revoked commitment and the cheater's second stage.
    for t in &claims.txs {
        for i in &t.input {
            assert!(
                i.previous_output.txid == revoked.compute_txid()
                    || i.previous_output == success_out,
                "{t:?}"
            );
        }
    }
}

/// The hub stops as in a crash (at quiescence: nothing in flight) and is reopened from its
/// store at the chain's tip; the peers reconnect.
fn crash_and_reopen(net: &mut Net<Threaded>, store: &Arc<dyn Store>) {
    net.cut_all_for_crash();
    let placeholder = Engine::new(
        engine_config(1),
        support::secret(b"placeholder"),
        [0; 32],
        100,
        support::genesis(),
    );
    let old = std::mem::replace(&mut net.hub.engine, placeholder);
    old.abort();
    let reopened = open_hub(store, net.vchain());
    drop(std::mem::replace(&mut net.hub.engine, reopened));
    net.reconnect_all();
    net.run();
}

#[test]
fn a_reorg_replaces_the_confirmed_commitment_and_a_restart_mid_resolution_claims_nothing_twice() {
    let (mut net, store) = setup();
    let hub_id = net.hub.engine.node_id();
    let p2 = net.start_payment(
        Who::Peer(A),
        Who::Peer(B),
        Some(CA),
        Some(CB),
        70_000_000,
        true,
    );
    let p3 = net.start_payment(
        Who::Peer(B),
        Who::Peer(A),
        Some(CB),
        Some(CA),
        80_000_000,
        true,
    );
    net.run();
    let (_, hash2) = net.preimage_of(p2);
    let (pre3, hash3) = net.preimage_of(p3);
    let cb = net.channels[CB];
    let hub_side = net
        .hub
        .channel(net.peer_id(B), cb.channel_id)
        .expect("hub side");

    // B force-closes; the hub's own commitment loses the race to the mempool.
    net.peers[B]
        .core
        .force_close_channel(cb.channel_id, hub_id)
        .expect("B force-closes");
    net.run();
    let funding = hub_side.funding_outpoint().expect("funded");
    let hub_commitment = net
        .validating
        .as_ref()
        .expect("v")
        .broadcasts
        .iter()
        .find(|(w, t)| {
            *w == Who::Hub
                && t.input.iter().any(|i| {
                    i.previous_output.txid == funding.txid && i.previous_output.vout == funding.vout
                })
        })
        .map(|(_, t)| t.clone())
        .expect("the hub broadcast its commitment too");
    assert_eq!(hub_commitment.compute_txid(), hub_side.local_commit().txid);
    net.mine(3);
    let theirs = net.funding_spend(&hub_side);
    assert_eq!(theirs.compute_txid(), hub_side.remote_commit().txid);
    // The hub's sweep of its output on B's commitment confirmed too.
    assert!(net
        .validating
        .as_ref()
        .expect("v")
        .broadcasts
        .iter()
        .any(|(w, t)| *w == Who::Hub
            && t.input[0].previous_output.txid == theirs.compute_txid()
            && net.vchain().confirmations(&t.compute_txid()) > 0));

    // A longer branch confirms the hub's commitment instead.
    net.reorg_replacing(theirs.compute_txid(), Some(hub_commitment.clone()));
    assert_eq!(
        net.funding_spend(&hub_side).compute_txid(),
        hub_commitment.compute_txid()
    );
    assert!(net.on_chain_events(Who::Hub).iter().any(|(_, e)| matches!(
        e,
        MonitorEvent::FundingSpent { kind: FundingSpendKind::Holder { .. }, txid }
            if *txid == hub_commitment.compute_txid()
    )));
    let closed_at = net
        .vchain()
        .confirmed_at(&hub_commitment.compute_txid())
        .expect("confirmed")
        .0;

    // A claims P3: the hub's HTLC-success. P2 times out through the hub's HTLC-timeout.
    net.peers[A].core.claim_funds(pre3).expect("A claims");
    net.run();
    let expiry2 = expiry(&hub_side, hash2);
    net.mine_to(expiry2 + 8);
    assert_eq!(net.outcomes(p2), vec![false], "P2 failed upstream");
    // Mid-resolution (second stages confirmed, nothing past its CSV yet): a crash.
    assert!(net.vchain().height() < closed_at + 144);
    let claimed_before = net
        .on_chain_events(Who::Hub)
        .iter()
        .filter(|(_, e)| matches!(e, MonitorEvent::ClaimConfirmed { .. }))
        .count();
    crash_and_reopen(&mut net, &store);
    let events_at_restart = net.on_chain_events(Who::Hub).len();
    let done = mine_until_resolved(&mut net, cb.channel_id, closed_at + 600);
    assert!(done >= closed_at + 144);
    assert_clean(&net);
    assert_eq!(net.outcomes(p2), vec![false], "failed upstream once");
    assert_eq!(net.outcomes(p3), vec![true]);

    // Nothing claimed twice, no event repeated across the restart.
    let events = net.on_chain_events(Who::Hub);
    let confirmed: Vec<Txid> = events
        .iter()
        .filter_map(|(_, e)| match e {
            MonitorEvent::ClaimConfirmed { txid, .. } => Some(*txid),
            _ => None,
        })
        .collect();
    let distinct: BTreeSet<Txid> = confirmed.iter().copied().collect();
    assert_eq!(distinct.len(), confirmed.len(), "{events:#?}");
    assert!(confirmed.len() > claimed_before, "claims after the restart");
    for (_, e) in &events[events_at_restart..] {
        assert!(
            !matches!(
                e,
                MonitorEvent::FundingSpent { .. } | MonitorEvent::OutboundHtlcFailed { .. }
            ),
            "repeated after the restart: {e:?}"
        );
    }
    // Exact: the hub's to_local and both HTLCs of its commitment, less the fees.
    let expected = hub_side.local_commit().spec.to_local_msat / 1000
        + local_htlc_sat(&hub_side, hash2)
        + local_htlc_sat(&hub_side, hash3);
    let claims = hub_claims(&net, &hub_commitment, &[]);
    assert_eq!(
        claims.swept + claims.fees,
        expected,
        "swept {} + fees {} of {} txs",
        claims.swept,
        claims.fees,
        claims.txs.len()
    );
    assert!(claims.fees < 10_000, "fees {}", claims.fees);
}
