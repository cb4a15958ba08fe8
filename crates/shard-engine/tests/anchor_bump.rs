//! An anchor channel's holder commitment bumped by CPFP from the host's wallet
//! (`shard_engine::bump_commitment`): the hub force-closes while the validating chain's
//! mempool floor is above the commitment's own feerate, so the commitment alone is refused;
//! the child spending the hub's anchor (signed by the engine with the funding key) and a
//! wallet coin (signed by the wallet) is relayed with it as a package, every input passes
//! libbitcoinconsensus (here and in the chain), the package meets the floor, both are mined
//! in the same block (after a second child replaced the first, same inputs, BIP 125), and
//! the wallet's change and reservations are exact. Then the hub's
//! HTLC-success and HTLC-timeout transactions (zero fee, the peer's signature
//! SIGHASH_SINGLE|ANYONECANPAY) are completed with wallet inputs and change
//! (`shard_engine::bump_htlc`, our signature made again over the whole transaction), pass
//! libbitcoinconsensus and confirm.
//!
//! Third, the host-side `shard_engine::Bumper` answers every `BumpNeeded` of a force-close
//! whose bumps do not confirm (the mempool's floor above the host's estimate, then blocks
//! mined without them): each re-bump spends the same wallet inputs, pays more, replaces the
//! last in the mempool by BIP 125 and never pays more than the request's cap, until the
//! commitment (and then the HTLC-timeout) is mined; the bumper releases the reservations
//! once the spends are deep.

use lnshard_testkit as support;
use support::chain::verify_inputs;

use bitcoin::Transaction;
use lightning_core::chain::bump::BumpError;
use lightning_core::chain::MonitorEvent;
use lightning_core::node::{Event, NodeConfig};
use lightning_core::transactions::fees::ANCHOR_OUTPUT_SATOSHIS;
use lightning_core::wallet::fee_for_weight;
use shard_engine::{
    bump_commitment, bump_htlc, rebump_commitment, BumpBroadcast, BumpCommitmentError, Bumper,
    Engine, NodeApi, Reservation, Wallet,
};
use support::chain::{Policy, Reject, ValidatingChain};
use support::onchain::ChainHub;
use support::wallet::TestWallet;
use support::{engine_config, hub_secret, hub_seed, Hub, Net, Threaded};

/// The mempool floor: 20 sat/vB, above the commitment's 2500 sat/kw (10 sat/vB).
const FLOOR_SAT_PER_KVB: u64 = 20_000;
/// The bump's target: 6000 sat/kw (24 sat/vB).
const TARGET_PER_KW: u32 = 6_000;

fn vsize(tx: &Transaction) -> u64 {
    tx.weight().to_wu().div_ceil(4)
}

/// A hub engine (2 shards, sweeping to the hub's script) on a validating chain 100 blocks
/// high, with two peers, each having opened a channel to it.
fn two_peer_network() -> Net<Threaded> {
    let mut chain = ValidatingChain::new();
    chain.mine(100);
    let engine = Engine::new(
        engine_config(2),
        hub_secret(),
        hub_seed(),
        chain.height(),
        chain.tip(),
    );
    NodeApi::set_sweep_script(&engine, support::onchain::hub_sweep_script()).expect("sweep script");
    let mut net = Net::new_validating(Threaded { engine }, 2, NodeConfig::default(), chain);
    net.open_channels(&[(0, false), (1, false)]);
    net
}

#[test]
fn a_cpfp_child_from_the_wallet_gets_the_hubs_anchor_commitment_mined() {
    let mut chain = ValidatingChain::new();
    chain.mine(100);
    let engine = Engine::new(
        engine_config(2),
        hub_secret(),
        hub_seed(),
        chain.height(),
        chain.tip(),
    );
    NodeApi::set_sweep_script(&engine, support::onchain::hub_sweep_script()).expect("sweep script");
    let mut net = Net::new_validating(Threaded { engine }, 1, NodeConfig::default(), chain);
    net.open_channels(&[(0, false)]);
    let channel_id = net.channels[0].channel_id;
    let hub_side = net
        .hub
        .channel(net.peer_id(0), channel_id)
        .expect("hub side");
    assert!(hub_side.channel_type().has_anchors(), "an anchor channel");

    // The hub's wallet: two coins on chain.
    let wallet = TestWallet::new(b"anchor bump wallet", &[9_000, 60_000]);
    let wallet_parent = wallet.parent().clone();
    net.vchain_mut().submit_funding(wallet_parent.clone());
    net.mine(1);
    assert!(net
        .vchain()
        .confirmed_at(&wallet_parent.compute_txid())
        .is_some());
    let start_balance = wallet.balance_satoshis();
    let change_script = wallet.change_script().expect("change script");

    // The mempool floor rises above the commitment's feerate.
    net.vchain_mut().set_policy(Policy {
        mempool_min_sat_per_kvb: Some(FLOOR_SAT_PER_KVB),
        ..Policy::default()
    });

    let events_before = net.hub_events.len();
    ChainHub::force_close_channel(&mut net.hub, channel_id).expect("force close");
    net.run();
    // The hub relays its commitment at once (refused: below the floor; the peer's own
    // commitment likewise); with the next block its monitor asks for a bump.
    net.mine(1);
    let bump = net.hub_events[events_before..]
        .iter()
        .find_map(|e| match e {
            Event::OnChain {
                channel_id: c,
                event:
                    event @ MonitorEvent::BumpNeeded {
                        anchor: Some(_), ..
                    },
                ..
            } if *c == channel_id => Some(event.clone()),
            _ => None,
        })
        .expect("the monitor asks for a bump of the commitment");
    let MonitorEvent::BumpNeeded {
        tx: commitment,
        anchor: Some(anchor),
        ..
    } = &bump
    else {
        unreachable!()
    };
    let commitment_txid = commitment.compute_txid();
    assert!(!net.vchain().in_mempool(&commitment_txid));
    assert!(net.vchain().confirmed_at(&commitment_txid).is_none());
    let anchor_out = &commitment.output[anchor.vout as usize];
    assert_eq!(anchor_out.value.to_sat(), ANCHOR_OUTPUT_SATOSHIS);
    assert!(anchor_out.script_pubkey.is_p2wsh());

    // Alone, the commitment is below the mempool's floor.
    match net.vchain_mut().submit(commitment.clone()) {
        Err(Reject::MempoolMinFee { .. }) => {}
        other => panic!("the commitment alone: {other:?}"),
    }

    // A bump the wallet cannot pay is refused without reserving anything.
    let poor = TestWallet::new(b"poor wallet", &[400]);
    match bump_commitment(&net.hub.engine, &poor, channel_id, &bump, TARGET_PER_KW) {
        Err(BumpCommitmentError::Bump(BumpError::InsufficientFunds { .. })) => {}
        other => panic!("a poor wallet: {other:?}"),
    }
    assert!(poor.reserved().is_empty());

    let done = bump_commitment(&net.hub.engine, &wallet, channel_id, &bump, TARGET_PER_KW)
        .expect("bump_commitment");
    let child = done.child.clone();
    let plan = &done.plan;
    assert_eq!(done.commitment, *commitment);
    // Largest first: the 60k coin alone pays.
    let big = wallet
        .coins()
        .into_iter()
        .find(|(_, o)| o.value.to_sat() == 60_000)
        .expect("the 60k coin");
    assert_eq!(plan.wallet_outpoints(), vec![big.0]);
    assert_eq!(child.input.len(), 2);
    assert_eq!(child.input[0].previous_output, *anchor);
    assert_eq!(child.input[1].previous_output, big.0);
    let reserved = wallet.reserved();
    assert_eq!(reserved.len(), 1);
    assert_eq!(reserved[&big.0], Reservation::AnchorBump(commitment_txid));

    // Every input checked by libbitcoinconsensus: the anchor (funding key) and the coin.
    let prevouts = vec![anchor_out.clone(), big.1.clone()];
    assert_eq!(plan.prevouts(), prevouts);
    verify_inputs(&child, &prevouts);
    // The anchor's witness is as heavy as its satisfaction weight allows, at most.
    assert!(child.weight().to_wu() <= plan.weight);
    assert!(plan.weight - child.weight().to_wu() <= 4 * 2);

    // The engine signs only a spend of this channel's anchor, and bumps only its latest
    // holder commitment.
    let mut stray = plan.tx.clone();
    stray.input.swap(0, 1);
    assert_eq!(
        NodeApi::sign_anchor_input(&net.hub.engine, channel_id, stray, 0).expect("engine"),
        Err(BumpError::NotAnchorInput { input: 0 })
    );
    assert_eq!(
        NodeApi::anchor_parent(&net.hub.engine, channel_id, wallet_parent.clone()).expect("engine"),
        Err(BumpError::NotOurCommitment {
            txid: wallet_parent.compute_txid()
        })
    );

    // Change and fee, to the satoshi.
    assert_eq!(child.output.len(), 1);
    assert_eq!(child.output[0].script_pubkey, change_script);
    let change = child.output[0].value.to_sat();
    assert_eq!(ANCHOR_OUTPUT_SATOSHIS + 60_000, change + plan.fee_satoshis);
    let commitment_fee = net.fee_of(commitment);
    assert_eq!(
        plan.package_fee_satoshis,
        commitment_fee + plan.fee_satoshis
    );
    assert_eq!(
        plan.package_fee_satoshis,
        fee_for_weight(TARGET_PER_KW, commitment.weight().to_wu() + plan.weight)
    );

    // The package: accepted, the commitment held only with its child.
    let (p, c) = net
        .vchain_mut()
        .submit_package(commitment.clone(), child.clone())
        .expect("the package is accepted");
    assert_eq!((p, c), (commitment_txid, child.compute_txid()));
    assert!(net.vchain().needs_child(&commitment_txid));
    // The package's feerate meets the floor; the commitment's alone does not.
    let package_vsize = vsize(commitment) + vsize(&child);
    assert!(plan.package_fee_satoshis * 1000 >= FLOOR_SAT_PER_KVB * package_vsize);
    assert!(commitment_fee * 1000 < FLOOR_SAT_PER_KVB * vsize(commitment));

    // Not mined yet: bumped again at twice the feerate with the same inputs, the new child
    // replaces the first (BIP 125) and the coin stays reserved.
    let again = rebump_commitment(
        &net.hub.engine,
        &wallet,
        channel_id,
        &done,
        2 * TARGET_PER_KW,
        u64::MAX,
    )
    .expect("rebump_commitment");
    let first_child = child.compute_txid();
    let child = again.child.clone();
    let plan = &again.plan;
    let ins = |t: &Transaction| {
        t.input
            .iter()
            .map(|i| i.previous_output)
            .collect::<Vec<_>>()
    };
    assert_eq!(ins(&child), ins(&done.child));
    verify_inputs(&child, &prevouts);
    assert!(plan.fee_satoshis > done.plan.fee_satoshis);
    assert_eq!(
        plan.package_fee_satoshis,
        fee_for_weight(2 * TARGET_PER_KW, commitment.weight().to_wu() + plan.weight)
    );
    let change = child.output[0].value.to_sat();
    assert_eq!(ANCHOR_OUTPUT_SATOSHIS + 60_000, change + plan.fee_satoshis);
    assert_eq!(reserved, wallet.reserved());
    net.vchain_mut()
        .submit_package(commitment.clone(), child.clone())
        .expect("the replacement child is accepted");
    assert!(!net.vchain().in_mempool(&first_child));
    assert!(net.vchain().in_mempool(&child.compute_txid()));

    net.mine(1);
    let (ph, _) = net
        .vchain()
        .confirmed_at(&commitment_txid)
        .expect("commitment mined");
    let (ch, _) = net
        .vchain()
        .confirmed_at(&child.compute_txid())
        .expect("child mined");
    assert_eq!(ph, ch, "mined together");

    wallet.transaction_confirmed(&child);
    assert!(wallet.reserved().is_empty());
    assert_eq!(
        wallet.balance_satoshis(),
        start_balance - 60_000 + change,
        "the wallet paid exactly the child's fee beyond the anchor"
    );
    assert_eq!(
        start_balance - wallet.balance_satoshis(),
        plan.fee_satoshis - ANCHOR_OUTPUT_SATOSHIS
    );

    assert_refused_only_below_the_floor(&net, commitment_txid, 0);
}

/// Nothing refused but the commitments relayed alone below the floor (the hub's
/// `commitment_txid`, and the peer's own, which is the peer's to bump) and the harness's own
/// note of each bump request (it has no wallet).
fn assert_refused_only_below_the_floor(
    net: &Net<Threaded>,
    commitment_txid: bitcoin::Txid,
    peer: usize,
) {
    let hub_alone = format!("the chain refused Hub's broadcast {commitment_txid}: MempoolMinFee");
    let peer_alone = format!("the chain refused Peer({peer})'s broadcast");
    let others: Vec<&String> = net
        .violations
        .iter()
        .filter(|v| {
            !(v.contains("needs a fee bump")
                || v.starts_with(&hub_alone)
                || (v.starts_with(&peer_alone) && v.contains("MempoolMinFee")))
        })
        .collect();
    assert!(others.is_empty(), "{others:?}");
}

/// The first `BumpNeeded` of `channel_id` in the hub's events from `from` on, for a
/// commitment (`anchor` named) or an HTLC transaction (none).
fn bump_event(
    net: &Net<Threaded>,
    from: usize,
    channel_id: lightning_core::types::ChannelId,
    commitment: bool,
) -> Option<MonitorEvent> {
    bump_events(net, from, channel_id, commitment)
        .into_iter()
        .next()
}

#[test]
fn the_hubs_htlc_timeout_and_success_are_completed_with_wallet_inputs_and_confirm() {
    let mut net = two_peer_network();
    let cb = net.channels[1];
    assert_eq!(cb.peer, 1);
    // A -> hub -> B, never claimed by B: the hub's HTLC-timeout on its commitment with B.
    let p = net.start_payment(
        support::Who::Peer(0),
        support::Who::Peer(1),
        Some(0),
        Some(1),
        60_000_000,
        true,
    );
    // B -> hub -> A, which A claims after the close: the hub's HTLC-success.
    let p3 = net.start_payment(
        support::Who::Peer(1),
        support::Who::Peer(0),
        Some(1),
        Some(0),
        80_000_000,
        true,
    );
    net.run();
    let (_, hash) = net.preimage_of(p);
    let (pre3, _) = net.preimage_of(p3);
    let hub_side = net
        .hub
        .channel(net.peer_id(1), cb.channel_id)
        .expect("hub side");
    assert!(hub_side.channel_type().has_anchors());
    let htlc = hub_side
        .local_commit()
        .spec
        .htlcs
        .values()
        .find(|h| h.payment_hash == hash)
        .copied()
        .expect("locked in");

    let wallet = TestWallet::new(b"htlc bump wallet", &[50_000, 70_000, 20_000]);
    net.vchain_mut().submit_funding(wallet.parent().clone());
    net.mine(1);
    let start_balance = wallet.balance_satoshis();
    let change_script = wallet.change_script().expect("change script");
    net.vchain_mut().set_policy(Policy {
        mempool_min_sat_per_kvb: Some(FLOOR_SAT_PER_KVB),
        ..Policy::default()
    });

    // The commitment goes out through its anchor, as in the test above.
    let from = net.hub_events.len();
    ChainHub::force_close_channel(&mut net.hub, cb.channel_id).expect("force close");
    net.run();
    net.mine(1);
    let event = bump_event(&net, from, cb.channel_id, true).expect("commitment bump");
    let done = bump_commitment(
        &net.hub.engine,
        &wallet,
        cb.channel_id,
        &event,
        TARGET_PER_KW,
    )
    .expect("bump_commitment");
    net.vchain_mut()
        .submit_package(done.commitment.clone(), done.child.clone())
        .expect("package");
    net.mine(1);
    let commitment_txid = done.commitment.compute_txid();
    assert!(net.vchain().confirmed_at(&commitment_txid).is_some());
    wallet.transaction_confirmed(&done.child);
    // The floor falls back to the relay minimum: the peers' and the hub's own claims pay
    // their way from here.
    net.vchain_mut().set_policy(Policy::default());

    // A claims P3 from the hub: the hub's HTLC-success on its commitment with B, completed
    // with wallet inputs the same way (the preimage kept in its witness).
    let from = net.hub_events.len();
    net.peers[0].core.claim_funds(pre3).expect("A claims");
    net.run();
    net.mine(1);
    let success_event = bump_event(&net, from, cb.channel_id, false).expect("HTLC-success bump");
    let MonitorEvent::BumpNeeded { tx: success, .. } = &success_event else {
        unreachable!()
    };
    assert_eq!(success.input[0].previous_output.txid, commitment_txid);
    assert_eq!(success.lock_time.to_consensus_u32(), 0, "an HTLC-success");
    let before = wallet.balance_satoshis();
    let bumped = bump_htlc(
        &net.hub.engine,
        &wallet,
        cb.channel_id,
        &success_event,
        TARGET_PER_KW,
    )
    .expect("bump_htlc (success)");
    assert!(bumped.tx.input[0]
        .witness
        .iter()
        .any(|item| item == pre3.0.as_slice()));
    verify_inputs(&bumped.tx, &bumped.plan.prevouts());
    assert_eq!(bumped.tx.output[0], success.output[0]);
    assert_eq!(net.fee_of(&bumped.tx), bumped.plan.fee_satoshis);
    let txid = net
        .vchain_mut()
        .submit(bumped.tx.clone())
        .expect("accepted");
    net.mine(1);
    assert!(net.vchain().confirmed_at(&txid).is_some());
    wallet.transaction_confirmed(&bumped.tx);
    assert!(wallet.reserved().is_empty());
    assert_eq!(wallet.balance_satoshis(), before - bumped.plan.fee_satoshis);
    let success_fee = bumped.plan.fee_satoshis;

    // At the HTLC's expiry the hub's monitor asks for fee inputs for its HTLC-timeout.
    let from = net.hub_events.len();
    let mut event = None;
    while event.is_none() && net.vchain().height() <= htlc.cltv_expiry + 2 {
        net.mine(1);
        event = bump_event(&net, from, cb.channel_id, false);
    }
    let event = event.expect("an HTLC-timeout bump at expiry");
    let MonitorEvent::BumpNeeded { tx: timeout, .. } = &event else {
        unreachable!()
    };
    assert_eq!(timeout.input[0].previous_output.txid, commitment_txid);
    assert_eq!(timeout.lock_time.to_consensus_u32(), htlc.cltv_expiry);
    // Alone, it pays nothing and is refused.
    match net.vchain_mut().submit(timeout.clone()) {
        Err(Reject::ZeroFee) => {}
        other => panic!("the HTLC-timeout alone: {other:?}"),
    }

    // The largest coin now (the change of an earlier bump).
    let coin = wallet
        .coins()
        .into_iter()
        .max_by_key(|(_, o)| o.value)
        .expect("coins");
    let bumped = bump_htlc(
        &net.hub.engine,
        &wallet,
        cb.channel_id,
        &event,
        TARGET_PER_KW,
    )
    .expect("bump_htlc");
    let tx = &bumped.tx;
    let plan = &bumped.plan;
    // The HTLC's input and output first (the peer's SINGLE|ANYONECANPAY signature holds),
    // then the wallet's largest coin and the change.
    assert_eq!(
        tx.input[0].previous_output,
        timeout.input[0].previous_output
    );
    assert_eq!(tx.output[0], timeout.output[0]);
    assert_eq!(tx.lock_time, timeout.lock_time);

    assert_eq!(plan.wallet_outpoints(), vec![coin.0]);
    assert_eq!(
        wallet.reserved().get(&coin.0),
        Some(&Reservation::HtlcBump(timeout.input[0].previous_output))
    );
    let prevouts = plan.prevouts();
    assert_eq!(
        prevouts[0],
        done.commitment.output[timeout.input[0].previous_output.vout as usize]
    );
    verify_inputs(tx, &prevouts);
    // Fee and change, to the satoshi; the feerate met on the real weight.
    assert_eq!(tx.output.len(), 2);
    assert_eq!(tx.output[1].script_pubkey, change_script);
    let change = tx.output[1].value.to_sat();
    let htlc_fee = prevouts[0].value.to_sat() - tx.output[0].value.to_sat();
    assert_eq!(
        htlc_fee, 0,
        "anchors: the HTLC-timeout pays no fee of its own"
    );
    assert_eq!(coin.1.value.to_sat(), change + plan.fee_satoshis);
    assert_eq!(net.fee_of(tx), plan.fee_satoshis);
    assert!(tx.weight().to_wu() <= plan.weight);
    assert!(plan.fee_satoshis >= fee_for_weight(TARGET_PER_KW, tx.weight().to_wu()));

    // Our signature is made only while the HTLC's own output stays first (the peer's
    // SIGHASH_SINGLE signature commits to it).
    let mut moved = plan.tx.clone();
    moved.output.swap(0, 1);
    assert!(matches!(
        NodeApi::sign_htlc_input(&net.hub.engine, cb.channel_id, moved).expect("engine"),
        Err(BumpError::NotHtlcTransaction { .. })
    ));

    let txid = net.vchain_mut().submit(tx.clone()).expect("accepted");
    net.mine(1);
    assert!(net.vchain().confirmed_at(&txid).is_some());
    wallet.transaction_confirmed(tx);
    assert!(wallet.reserved().is_empty());
    assert_eq!(
        wallet.balance_satoshis(),
        start_balance - done.plan.fee_satoshis + ANCHOR_OUTPUT_SATOSHIS
            - success_fee
            - plan.fee_satoshis
    );

    assert_refused_only_below_the_floor(&net, commitment_txid, 1);
}

/// Every `BumpNeeded` of `channel_id` in the hub's events from `from` on, for a commitment
/// (`anchor` named) or an HTLC transaction (none).
fn bump_events(
    net: &Net<Threaded>,
    from: usize,
    channel_id: lightning_core::types::ChannelId,
    commitment: bool,
) -> Vec<MonitorEvent> {
    net.hub_events[from..]
        .iter()
        .filter_map(|e| match e {
            Event::OnChain {
                channel_id: c,
                event: event @ MonitorEvent::BumpNeeded { anchor, .. },
                ..
            } if *c == channel_id && anchor.is_some() == commitment => Some(event.clone()),
            _ => None,
        })
        .collect()
}

/// Hands the latest block to the bumper (as a host feeds it every block).
fn feed_block(net: &Net<Threaded>, bumper: &mut Bumper, wallet: &TestWallet) {
    let height = net.vchain().height();
    let block = net.vchain().block(height).expect("the tip").clone();
    let txs: Vec<&Transaction> = block.txdata.iter().collect();
    bumper.block_connected(wallet, height, &txs);
}

/// What a relayed bump looked like: its txid, the wallet coins it spends, its fee.
struct Relayed {
    txid: bitcoin::Txid,
    inputs: Vec<bitcoin::OutPoint>,
    fee: u64,
    accepted: bool,
}

#[test]
fn a_bump_that_does_not_confirm_is_rebumped_with_the_same_inputs_until_mined_under_its_cap() {
    let mut net = two_peer_network();
    let cb = net.channels[1];
    // A -> hub -> B, never claimed by B: the hub's HTLC-timeout on its commitment with B.
    let p = net.start_payment(
        support::Who::Peer(0),
        support::Who::Peer(1),
        Some(0),
        Some(1),
        60_000_000,
        true,
    );
    net.run();
    let (_, hash) = net.preimage_of(p);
    let htlc = net
        .hub
        .channel(net.peer_id(1), cb.channel_id)
        .expect("hub side")
        .local_commit()
        .spec
        .htlcs
        .values()
        .find(|h| h.payment_hash == hash)
        .copied()
        .expect("locked in");

    let wallet = TestWallet::new(b"rebump wallet", &[50_000, 70_000, 20_000]);
    net.vchain_mut().submit_funding(wallet.parent().clone());
    net.mine(1);
    let start_balance = wallet.balance_satoshis();
    let mut bumper = Bumper::new();

    // The hub force-closes while the mempool is full (its commitment alone is refused);
    // its first request says what the host thinks is enough.
    net.vchain_mut().set_policy(Policy {
        mempool_min_sat_per_kvb: Some(FLOOR_SAT_PER_KVB),
        ..Policy::default()
    });
    let mut from = net.hub_events.len();
    ChainHub::force_close_channel(&mut net.hub, cb.channel_id).expect("force close");
    net.run();
    let first = bump_events(&net, from, cb.channel_id, true)
        .into_iter()
        .next()
        .or_else(|| {
            net.mine(1);
            bump_events(&net, from, cb.channel_id, true)
                .into_iter()
                .next()
        })
        .expect("a request for the commitment");
    let MonitorEvent::BumpNeeded {
        tx: commitment,
        feerate_per_kw: asked,
        max_fee_sat: cap,
        ..
    } = &first
    else {
        unreachable!()
    };
    let commitment = commitment.clone();
    let commitment_txid = commitment.compute_txid();
    assert!(*cap > 60_000, "the cap counts our HTLC and balance: {cap}");
    // The mempool's floor is nearly twice that: the first package is refused (the host's
    // estimate was low), and only re-bumps reach it.
    let floor = u64::from(*asked) * 4 * 19 / 10;
    net.vchain_mut().set_policy(Policy {
        mempool_min_sat_per_kvb: Some(floor),
        ..Policy::default()
    });

    let mut relayed: Vec<Relayed> = Vec::new();
    let mut replaced_in_mempool = 0;
    from = net.hub_events.len();
    let mut pending = vec![first.clone()];
    for _ in 0..30 {
        for event in std::mem::take(&mut pending) {
            let height = net.vchain().height();
            let out = bumper
                .handle(&net.hub.engine, &wallet, cb.channel_id, &event, height)
                .expect("bumped");
            for b in out {
                let BumpBroadcast::Package { parent, child } = b else {
                    panic!("a commitment goes out as a package");
                };
                assert_eq!(parent, commitment);
                let txid = child.compute_txid();
                if relayed.last().is_some_and(|r| r.txid == txid) {
                    continue;
                }
                // Every input of the child through libbitcoinconsensus.
                let mut prevouts =
                    vec![commitment.output[child.input[0].previous_output.vout as usize].clone()];
                let coins = wallet.coins();
                prevouts.extend(
                    child.input[1..]
                        .iter()
                        .map(|i| coins[&i.previous_output].clone()),
                );
                verify_inputs(&child, &prevouts);
                let inputs: Vec<bitcoin::OutPoint> =
                    child.input.iter().map(|i| i.previous_output).collect();
                let fee = prevouts.iter().map(|o| o.value.to_sat()).sum::<u64>()
                    - child.output.iter().map(|o| o.value.to_sat()).sum::<u64>();
                let before = relayed.last().filter(|r| r.accepted).map(|r| r.txid);
                let accepted = net
                    .vchain_mut()
                    .submit_package(parent.clone(), child.clone())
                    .is_ok();
                if let (Some(old), true) = (before, accepted) {
                    // A BIP 125 replacement of the child in the mempool.
                    assert!(!net.vchain().in_mempool(&old));
                    replaced_in_mempool += 1;
                }
                relayed.push(Relayed {
                    txid,
                    inputs,
                    fee,
                    accepted,
                });
            }
        }
        if net.vchain().confirmed_at(&commitment_txid).is_some() {
            break;
        }
        // While the package sits in the mempool, two blocks come without it (a miner
        // filling its blocks with better-paying transactions): the re-bumps replace it.
        if relayed.last().is_some_and(|r| r.accepted) && replaced_in_mempool < 2 {
            net.mine_exactly(Vec::new());
        } else {
            net.mine(1);
        }
        feed_block(&net, &mut bumper, &wallet);
        pending = bump_events(&net, from, cb.channel_id, true);
        from = net.hub_events.len();
    }
    let (mined_at, _) = net
        .vchain()
        .confirmed_at(&commitment_txid)
        .expect("the commitment is finally mined");
    let last = relayed.last().expect("bumps relayed");
    assert!(
        net.vchain().confirmed_at(&last.txid).is_some(),
        "with the last child"
    );
    // The first package was refused, later ones accepted, two of them as replacements.
    assert!(!relayed[0].accepted, "the first bump is below the floor");
    assert!(relayed.len() >= 4, "{}", relayed.len());
    assert_eq!(replaced_in_mempool, 2);
    // Every re-bump spent the same inputs and paid more, never more than the cap.
    for pair in relayed.windows(2) {
        assert_eq!(pair[1].inputs, pair[0].inputs, "the same inputs");
        assert!(pair[1].fee > pair[0].fee, "more fee each time");
    }
    assert!(last.fee <= *cap, "the cap: {} of {cap}", last.fee);
    let status = bumper.status(&commitment_txid).expect("still held");
    assert_eq!(status.fee_satoshis, last.fee);
    assert_eq!(status.bumps as usize, relayed.len());
    assert_eq!(status.settled_at, Some(mined_at));
    assert_eq!(status.wallet_inputs, last.inputs[1..].to_vec());
    // The coins stay reserved until the commitment is ANTI_REORG_DELAY deep, then the
    // bumper releases them (the wallet is told of the child only later, on purpose).
    assert!(!wallet.reserved().is_empty());
    while net.vchain().height() + 1 < mined_at + lightning_core::chain::ANTI_REORG_DELAY {
        net.mine(1);
        feed_block(&net, &mut bumper, &wallet);
        if net.vchain().height() + 1 < mined_at + lightning_core::chain::ANTI_REORG_DELAY {
            assert!(!wallet.reserved().is_empty(), "reserved until deep");
        }
    }
    assert!(wallet.reserved().is_empty(), "released by the bumper");
    assert!(bumper.status(&commitment_txid).is_none());
    let child = net
        .vchain()
        .get_tx(&last.txid)
        .expect("the mined child")
        .clone();
    wallet.transaction_confirmed(&child);
    assert_eq!(
        wallet.balance_satoshis(),
        start_balance + ANCHOR_OUTPUT_SATOSHIS - last.fee
    );

    // The HTLC-timeout at expiry: the floor again above the first bump's feerate, so it is
    // re-bumped (same inputs, more fee) until the mempool takes it, then mined.
    net.vchain_mut().set_policy(Policy::default());
    let mut timeout_requests = Vec::new();
    while timeout_requests.is_empty() {
        assert!(
            net.vchain().height() <= htlc.cltv_expiry + 2,
            "no HTLC-timeout request"
        );
        from = net.hub_events.len();
        net.mine(1);
        feed_block(&net, &mut bumper, &wallet);
        timeout_requests = bump_events(&net, from, cb.channel_id, false);
    }
    let MonitorEvent::BumpNeeded {
        tx: timeout,
        feerate_per_kw: asked,
        max_fee_sat: htlc_cap,
        ..
    } = &timeout_requests[0]
    else {
        unreachable!()
    };
    let (timeout, asked, htlc_cap) = (timeout.clone(), *asked, *htlc_cap);
    assert_eq!(timeout.lock_time.to_consensus_u32(), htlc.cltv_expiry);
    assert_eq!(htlc_cap, 60_000, "the HTLC's value");
    net.vchain_mut().set_policy(Policy {
        mempool_min_sat_per_kvb: Some(u64::from(asked) * 4 * 3 / 2),
        ..Policy::default()
    });
    let mut htlc_relayed: Vec<Relayed> = Vec::new();
    let mut pending = timeout_requests;
    for _ in 0..30 {
        for event in std::mem::take(&mut pending) {
            let height = net.vchain().height();
            for b in bumper
                .handle(&net.hub.engine, &wallet, cb.channel_id, &event, height)
                .expect("bumped")
            {
                let BumpBroadcast::Transaction(tx) = b else {
                    panic!("an HTLC transaction goes out alone");
                };
                let txid = tx.compute_txid();
                if htlc_relayed.last().is_some_and(|r| r.txid == txid) {
                    continue;
                }
                assert_eq!(
                    tx.input[0].previous_output,
                    timeout.input[0].previous_output
                );
                assert_eq!(tx.output[0], timeout.output[0]);
                let coins = wallet.coins();
                let mut prevouts =
                    vec![commitment.output[tx.input[0].previous_output.vout as usize].clone()];
                prevouts.extend(
                    tx.input[1..]
                        .iter()
                        .map(|i| coins[&i.previous_output].clone()),
                );
                verify_inputs(&tx, &prevouts);
                let fee = prevouts.iter().map(|o| o.value.to_sat()).sum::<u64>()
                    - tx.output.iter().map(|o| o.value.to_sat()).sum::<u64>();
                let accepted = net.vchain_mut().submit(tx.clone()).is_ok();
                htlc_relayed.push(Relayed {
                    txid,
                    inputs: tx.input.iter().map(|i| i.previous_output).collect(),
                    fee,
                    accepted,
                });
            }
        }
        if htlc_relayed
            .last()
            .is_some_and(|r| net.vchain().confirmed_at(&r.txid).is_some())
        {
            break;
        }
        from = net.hub_events.len();
        net.mine(1);
        feed_block(&net, &mut bumper, &wallet);
        pending = bump_events(&net, from, cb.channel_id, false);
    }
    let last = htlc_relayed.last().expect("relayed");
    let (htlc_mined_at, _) = net
        .vchain()
        .confirmed_at(&last.txid)
        .expect("the HTLC-timeout is mined");
    assert!(
        !htlc_relayed[0].accepted,
        "the first HTLC bump is below the floor"
    );
    assert!(last.accepted);
    for pair in htlc_relayed.windows(2) {
        assert_eq!(pair[1].inputs, pair[0].inputs, "the same inputs");
        assert!(pair[1].fee > pair[0].fee, "more fee each time");
    }
    assert!(last.fee <= htlc_cap);
    while net.vchain().height() + 1 < htlc_mined_at + lightning_core::chain::ANTI_REORG_DELAY {
        net.mine(1);
        feed_block(&net, &mut bumper, &wallet);
    }
    assert!(bumper.is_empty(), "every bump settled and forgotten");
    assert!(wallet.reserved().is_empty(), "every reservation released");
    let tx = net.vchain().get_tx(&last.txid).expect("mined").clone();
    wallet.transaction_confirmed(&tx);
    assert_eq!(
        wallet.balance_satoshis(),
        start_balance + ANCHOR_OUTPUT_SATOSHIS
            - relayed.last().map(|r| r.fee).unwrap_or(0)
            - last.fee
    );

    assert_refused_only_below_the_floor(&net, commitment_txid, 1);
}

#[test]
fn the_bumper_never_pays_more_than_the_cap_and_keeps_the_last_bump_at_it() {
    let mut chain = ValidatingChain::new();
    chain.mine(100);
    let engine = Engine::new(
        engine_config(2),
        hub_secret(),
        hub_seed(),
        chain.height(),
        chain.tip(),
    );
    NodeApi::set_sweep_script(&engine, support::onchain::hub_sweep_script()).expect("sweep script");
    let mut net = Net::new_validating(Threaded { engine }, 1, NodeConfig::default(), chain);
    net.open_channels(&[(0, false)]);
    let channel_id = net.channels[0].channel_id;
    let wallet = TestWallet::new(b"capped bumper wallet", &[60_000]);
    net.vchain_mut().submit_funding(wallet.parent().clone());
    net.mine(1);
    net.vchain_mut().set_policy(Policy {
        mempool_min_sat_per_kvb: Some(FLOOR_SAT_PER_KVB),
        ..Policy::default()
    });
    let from = net.hub_events.len();
    ChainHub::force_close_channel(&mut net.hub, channel_id).expect("force close");
    net.run();
    net.mine(1);
    let event = bump_event(&net, from, channel_id, true).expect("a request");
    let with_cap = |cap: u64| match &event {
        MonitorEvent::BumpNeeded {
            tx,
            anchor,
            deadline,
            feerate_per_kw,
            ..
        } => MonitorEvent::BumpNeeded {
            tx: tx.clone(),
            anchor: *anchor,
            deadline: *deadline,
            feerate_per_kw: *feerate_per_kw,
            max_fee_sat: cap,
        },
        _ => unreachable!(),
    };
    let MonitorEvent::BumpNeeded { tx, .. } = &event else {
        unreachable!()
    };
    let txid = tx.compute_txid();
    let height = net.vchain().height();

    // A cap below what even the relay minimum would pay: refused, nothing reserved.
    let mut bumper = Bumper::new();
    match bumper.handle(&net.hub.engine, &wallet, channel_id, &with_cap(50), height) {
        Err(BumpCommitmentError::Bump(BumpError::FeeCapExceeded {
            max_fee_sat: 50, ..
        })) => {}
        other => panic!("a cap of 50 sat: {other:?}"),
    }
    assert!(wallet.reserved().is_empty() && bumper.is_empty());

    // The uncapped first bump's fee, to place the caps around it.
    let free = bumper
        .handle(
            &net.hub.engine,
            &wallet,
            channel_id,
            &with_cap(u64::MAX),
            height,
        )
        .expect("bumped");
    let fee = bumper.status(&txid).expect("in flight").fee_satoshis;
    assert!(bumper.abandon(&wallet, &txid));
    assert!(wallet.reserved().is_empty(), "abandoned: released");

    // A first bump whose feerate would pay more than the cap is scaled down to fit it.
    let cap = fee * 3 / 4;
    let first = bumper
        .handle(&net.hub.engine, &wallet, channel_id, &with_cap(cap), height)
        .expect("bumped under the cap");
    assert_ne!(first, free);
    let status = bumper.status(&txid).expect("in flight");
    assert!(
        status.fee_satoshis <= cap,
        "{} > {cap}",
        status.fee_satoshis
    );
    // A second request in the same block: the same bump again.
    assert_eq!(
        bumper
            .handle(&net.hub.engine, &wallet, channel_id, &with_cap(cap), height)
            .expect("again"),
        first
    );
    // The next block: the re-bump wants 5/4 of the feerate, but the cap leaves only one
    // more step: clamped to the cap.
    let cap2 = status.fee_satoshis + 200;
    let second = bumper
        .handle(
            &net.hub.engine,
            &wallet,
            channel_id,
            &with_cap(cap2),
            height + 1,
        )
        .expect("re-bumped");
    let status2 = bumper.status(&txid).expect("in flight");
    assert_eq!(status2.fee_satoshis, cap2);
    assert_eq!(status2.wallet_inputs, status.wallet_inputs);
    assert_eq!(status2.bumps, 2);
    // At the cap: the last bump is kept and relayed again.
    let third = bumper
        .handle(
            &net.hub.engine,
            &wallet,
            channel_id,
            &with_cap(cap2),
            height + 2,
        )
        .expect("kept");
    assert_eq!(third, second);
    assert_eq!(bumper.status(&txid).expect("in flight").bumps, 2);
    // Still signed right (it pays too little for this mempool's floor: the cap holds).
    let Some(BumpBroadcast::Package { parent, child }) = third.into_iter().next() else {
        panic!("a package");
    };
    let coins = wallet.coins();
    let mut prevouts = vec![parent.output[child.input[0].previous_output.vout as usize].clone()];
    prevouts.extend(
        child.input[1..]
            .iter()
            .map(|i| coins[&i.previous_output].clone()),
    );
    verify_inputs(&child, &prevouts);
    assert_eq!(
        prevouts.iter().map(|o| o.value.to_sat()).sum::<u64>()
            - child.output.iter().map(|o| o.value.to_sat()).sum::<u64>(),
        cap2
    );
}
