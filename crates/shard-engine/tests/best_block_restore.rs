//! The best block a restarted engine reports when its shards had committed different
//! blocks.
//!
//! Each shard commits its own node record (with its best block) in its own batch, so a crash
//! can leave one shard with a block another never processed. Here that is built
//! deterministically with the simulator: a block holding a peer's REVOKED commitment (a
//! spend of the funding output of a channel on shard `lag`) is fed to the hub, only the
//! other shard runs its batches, and the process dies. The restarted engine must report the
//! lower best block (the lagging shard's), so that a host resuming its chain feed from the
//! reported best block re-feeds the lost block, the lagging shard's monitor sees the
//! revoked commitment and the hub's justice transactions take every output of it (on the
//! testkit's validating chain: libbitcoinconsensus, locktimes, relay policy). The shard
//! that had already processed the block takes it again harmlessly.
//!
//! Under the old rule (the restored engine took the HIGHEST best block of its shards' node
//! records) the host re-feeds nothing and the revoked commitment goes unpunished: this test
//! fails there.

use lnshard_testkit as support;

use std::collections::BTreeSet;
use std::sync::Arc;

use lightning_core::bitcoin::{BlockHash, Transaction, Txid};
use lightning_core::chain::{FundingSpendKind, MonitorEvent};
use lightning_core::persist::NodeRecord;
use shard_engine::durable::{node_key, NODES};
use shard_engine::store::{MemoryStore, Store};
use shard_engine::{Backend, EngineConfig, NodeApi, Sim};
use support::chain::ValidatingChain;
use support::onchain::static_remotekey_config;
use support::{engine_config, hub_secret, hub_seed, Net, Who};

const SHARDS: usize = 2;
/// Peers; enough that two of them land on different shards.
const PEERS: usize = 4;

fn config(store: &Arc<dyn Store>) -> EngineConfig {
    EngineConfig {
        store: Some(store.clone()),
        node: static_remotekey_config(),
        ..engine_config(SHARDS)
    }
}

/// The simulated hub on `store` (a new node on an empty store at `chain`'s tip).
fn open_hub(store: &Arc<dyn Store>, chain: &ValidatingChain, sim_seed: u64) -> Sim {
    let mut sim = Sim::open(
        config(store),
        hub_secret(),
        hub_seed(),
        chain.height(),
        chain.tip(),
        sim_seed,
    )
    .expect("open");
    NodeApi::set_sweep_script(&mut sim, support::onchain::hub_sweep_script())
        .expect("sweep script");
    sim
}

/// Every shard's stored best height, by shard index.
fn stored_heights(store: &Arc<dyn Store>) -> Vec<u32> {
    stored_blocks(store).into_iter().map(|(h, _)| h).collect()
}

/// A block's transactions as the host feeds them (index in the block, transaction).
fn txdata(chain: &ValidatingChain, height: u32) -> Vec<(u32, Transaction)> {
    support::chain::block_txdata(chain.block(height).expect("block"))
}

#[test]
fn a_block_only_one_shard_committed_is_refed_after_a_restart_and_the_cheat_punished() {
    let mut chain = ValidatingChain::new();
    chain.mine(100);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let sim = open_hub(&store, &chain, 7);
    let mut net = Net::new_validating(sim, PEERS, static_remotekey_config(), chain);
    // Channels the peers fund, then one payer and one cheater on different shards.
    let specs: Vec<(usize, bool)> = (0..PEERS).map(|i| (i, false)).collect();
    net.open_channels(&specs);
    let hub_id = net.hub.node_id();
    let payer = 0;
    let lag = net.hub.shard_of(&net.peer_id(payer)) ^ 1;
    let cheater = (1..PEERS)
        .find(|&i| net.hub.shard_of(&net.peer_id(i)) == lag)
        .expect("a peer on the other shard");
    let ahead = 1 - lag;
    let c_payer = net.channels[payer];
    let c_cheat = net.channels[cheater];
    assert_eq!((c_payer.peer, c_cheat.peer), (payer, cheater));

    // A payment payer -> hub -> cheater; the cheater keeps the state with the HTLC in
    // flight, then the payment settles and that state is revoked.
    let p = net.start_payment(
        Who::Peer(payer),
        Who::Peer(cheater),
        Some(payer),
        Some(cheater),
        50_000_000,
        true,
    );
    net.run();
    let mut stale = net.peers[cheater]
        .core
        .channel(&hub_id, &c_cheat.channel_id)
        .expect("the cheater's channel")
        .clone();
    assert_eq!(
        stale.local_commit().spec.htlcs.len(),
        1,
        "the HTLC in flight"
    );
    net.settle();
    assert_eq!(net.payments[&p].outcomes, vec![true]);
    let revoked = stale.force_close().expect("the stale commitment");
    let revoked_txid = revoked.compute_txid();
    let before = net.vchain().height();
    assert_eq!(stored_heights(&store), vec![before; SHARDS]);

    // The cheater's revoked commitment is mined. The hub gets the block (both calls fan out
    // to both shards) but only shard `ahead` runs before the process dies: shard `lag`
    // never processed it. The peers see the block too.
    let block = net
        .vchain_mut()
        .mine_block_with(vec![revoked.clone()])
        .expect("a valid block");
    let height = net.vchain().height();
    let txs = txdata(net.vchain(), height);
    NodeApi::transactions_confirmed(&mut net.hub, height, &txs).expect("confirmed");
    NodeApi::best_block_updated(&mut net.hub, height, block.block_hash()).expect("best block");
    while net.hub.inbox_lens()[ahead] > 0 {
        assert!(net.hub.step_shard(ahead));
    }
    // Its committer finished too (the batches it overlapped with later ones are durable).
    net.hub.complete_writes(ahead);
    assert!(
        net.hub.inbox_lens()[lag] > 0,
        "shard {lag} never ran the block"
    );
    let refs: Vec<(u32, &Transaction)> = txs.iter().map(|(k, t)| (*k, t)).collect();
    for peer in &mut net.peers {
        peer.core.transactions_confirmed(height, &refs);
        peer.core.best_block_updated(height, block.block_hash());
    }
    net.chain.height = height;
    net.chain.tip = block.block_hash();
    net.chain.confirmed.insert(revoked_txid);
    let mut expected = vec![before; SHARDS];
    expected[ahead] = height;
    assert_eq!(stored_heights(&store), expected, "the shards diverged");

    // The crash: the process is gone with shard `lag`'s queued block and every connection.
    net.cut_all_for_crash();
    let reopened = open_hub(&store, net.vchain(), 8);
    drop(std::mem::replace(&mut net.hub, reopened));
    let hub: &mut Sim = &mut net.hub;
    let reported = hub.coordinator().best_block();
    let restored: Vec<_> = (0..SHARDS)
        .map(|i| net.hub.core(i).expect("a shard").best_block())
        .collect();

    // The host resumes its chain feed from the engine's reported best block.
    for h in reported.0 + 1..=net.vchain().height() {
        let txs = txdata(net.vchain(), h);
        let hash = net.vchain().block(h).expect("block").block_hash();
        NodeApi::transactions_confirmed(&mut net.hub, h, &txs).expect("re-fed");
        NodeApi::best_block_updated(&mut net.hub, h, hash).expect("re-fed");
    }
    net.run();
    net.reconnect_all();
    net.run();

    // Money first: the lagging shard's monitor saw the revoked commitment and the hub's
    // justice transactions take every output of it.
    let seen = net
        .on_chain_events(Who::Hub)
        .into_iter()
        .filter(|(id, e)| {
            *id == c_cheat.channel_id
                && matches!(e, MonitorEvent::RevokedCommitmentSeen { txid, .. } if *txid == revoked_txid)
        })
        .count();
    assert_eq!(
        seen, 1,
        "the hub saw the revoked commitment once (reported best block {reported:?}, \
         block {height})"
    );
    for _ in 0..20 {
        net.mine(1);
    }
    let v = net.validating.as_ref().expect("validating");
    let hub_txs: BTreeSet<Txid> = v
        .broadcasts
        .iter()
        .filter(|(w, _)| *w == Who::Hub)
        .map(|(_, t)| t.compute_txid())
        .collect();
    for vout in 0..revoked.output.len() {
        let outpoint = lightning_core::bitcoin::OutPoint {
            txid: revoked_txid,
            vout: vout as u32,
        };
        let spender = v
            .chain
            .spender_of(&outpoint)
            .unwrap_or_else(|| panic!("output {vout} of the revoked commitment unclaimed"));
        assert!(
            hub_txs.contains(&spender),
            "output {vout} taken by the hub's justice (spent by {spender})"
        );
    }
    let sweep = support::onchain::hub_sweep_script();
    let swept: u64 = hub_txs
        .iter()
        .filter_map(|t| v.chain.get_tx(t))
        .filter(|t| v.chain.confirmations(&t.compute_txid()) > 0)
        .flat_map(|t| t.output.iter())
        .filter(|o| o.script_pubkey == sweep)
        .map(|o| o.value.to_sat())
        .sum();
    let everything: u64 = revoked.output.iter().map(|o| o.value.to_sat()).sum();
    assert!(
        swept + 10_000 > everything && swept < everything,
        "swept {swept} of {everything}"
    );
    assert!(net.violations.is_empty(), "{:#?}", net.violations);
    // No event raised twice by the shard that took the block again.
    let events = net.on_chain_events(Who::Hub);
    let funding_spent = events
        .iter()
        .filter(|(id, e)| {
            *id == c_cheat.channel_id && matches!(e, MonitorEvent::FundingSpent { .. })
        })
        .count();
    assert_eq!(funding_spent, 1, "{events:#?}");

    // The reported best block: the lowest any shard had committed, with its hash; every
    // restored shard starts there.
    let hash_before = net.vchain().block(before).expect("block").block_hash();
    assert_eq!(reported, (before, hash_before));
    assert_eq!(restored, vec![reported; SHARDS]);
}

/// Every shard's stored best block (height and hash), by shard index.
fn stored_blocks(store: &Arc<dyn Store>) -> Vec<(u32, BlockHash)> {
    (0..SHARDS)
        .map(|i| {
            let bytes = store
                .read(NODES, &node_key(i, SHARDS))
                .expect("reads")
                .expect("a node record per shard");
            let r = NodeRecord::from_bytes(&bytes).expect("decodes");
            (r.best_height, r.best_hash)
        })
        .collect()
}

/// A reorg half committed: shard `a` (the channel's) committed a block of branch A holding
/// the peer's commitment, then the process died before it ran the disconnection; the other
/// shard committed both the block and its disconnection. The restored engine reports the
/// fork point; the host re-feeds branch B from there, whose block at the same height holds
/// the HUB's commitment instead. The channel's monitor must take branch B's block (not skip
/// it as already seen) and forget branch A's: the peer's commitment is not confirmed, the
/// hub's is, and the hub sweeps its own `to_local` after its delay.
///
/// Without the restored monitor forgetting the blocks above the reported best block, it
/// keeps branch A's commitment confirmed beside branch B's: this test fails there.
#[test]
fn a_branch_one_shard_committed_and_the_others_disconnected_is_forgotten_after_a_restart() {
    let mut chain = ValidatingChain::new();
    chain.mine(100);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let sim = open_hub(&store, &chain, 11);
    let mut net = Net::new_validating(sim, PEERS, static_remotekey_config(), chain);
    let specs: Vec<(usize, bool)> = (0..PEERS).map(|i| (i, false)).collect();
    net.open_channels(&specs);
    let hub_id = net.hub.node_id();
    let peer = 0;
    let chan = net.channels[peer];
    assert_eq!(chan.peer, peer);
    let a = net.hub.shard_of(&net.peer_id(peer));
    let d = 1 - a;
    // Both sides' current commitments, fully signed (from copies: nobody closes yet).
    let theirs = net.peers[peer]
        .core
        .channel(&hub_id, &chan.channel_id)
        .expect("the peer's channel")
        .clone()
        .force_close()
        .expect("the peer's commitment");
    let peer_id = net.peer_id(peer);
    let hub_channel = NodeApi::channel(&mut net.hub, peer_id, chan.channel_id)
        .expect("asks")
        .expect("the hub's channel");
    let ours = hub_channel
        .clone()
        .force_close()
        .expect("the hub's commitment");
    let (theirs_txid, ours_txid) = (theirs.compute_txid(), ours.compute_txid());
    let h = net.vchain().height();
    let hash_h = net.vchain().tip();
    assert_eq!(stored_blocks(&store), vec![(h, hash_h); SHARDS]);

    // Branch A: the peer's commitment at h + 1. Shard `a` commits it; shard `d` not yet.
    let block_a = net
        .vchain_mut()
        .mine_block_with(vec![theirs.clone()])
        .expect("a valid block");
    let txs_a = txdata(net.vchain(), h + 1);
    NodeApi::transactions_confirmed(&mut net.hub, h + 1, &txs_a).expect("confirmed");
    NodeApi::best_block_updated(&mut net.hub, h + 1, block_a.block_hash()).expect("best");
    while net.hub.inbox_lens()[a] > 0 {
        assert!(net.hub.step_shard(a));
    }
    // Its committer finished too (the batches it overlapped with later ones are durable).
    net.hub.complete_writes(a);
    let monitor = net.hub.core(a).expect("shard").monitor(&chan.channel_id);
    assert_eq!(
        monitor.and_then(|m| m.funding_spend()),
        Some((theirs_txid, h + 1)),
        "shard {a} saw branch A"
    );

    // Branch B replaces it: the hub's commitment at h + 1, then an empty block. The host
    // disconnects h + 1 (fork point h); shard `d` runs block A and the disconnection, shard
    // `a` never runs the disconnection: the process dies.
    let branch_b = net
        .vchain_mut()
        .reorg(1, vec![vec![ours.clone()], Vec::new()])
        .expect("branch B");
    NodeApi::block_disconnected(&mut net.hub, h + 1, hash_h).expect("disconnected");
    while net.hub.inbox_lens()[d] > 0 {
        assert!(net.hub.step_shard(d));
    }
    // Its committer finished too (the batches it overlapped with later ones are durable).
    net.hub.complete_writes(d);
    assert!(
        net.hub.inbox_lens()[a] > 0,
        "shard {a} never ran the disconnection"
    );
    let mut expected = vec![(h, hash_h); SHARDS];
    expected[a] = (h + 1, block_a.block_hash());
    assert_eq!(stored_blocks(&store), expected, "the shards diverged");
    // The peers follow the chain: block A, its disconnection, branch B.
    for (k, block) in std::iter::once(&block_a).chain(&branch_b).enumerate() {
        let height = if k == 0 { h + 1 } else { h + k as u32 };
        if k == 1 {
            for p in &mut net.peers {
                p.core.block_disconnected(h + 1, hash_h);
            }
        }
        let txs: Vec<(u32, Transaction)> = support::chain::block_txdata(block);
        let refs: Vec<(u32, &Transaction)> = txs.iter().map(|(i, t)| (*i, t)).collect();
        for p in &mut net.peers {
            p.core.transactions_confirmed(height, &refs);
            p.core.best_block_updated(height, block.block_hash());
        }
    }
    net.chain.height = net.vchain().height();
    net.chain.tip = net.vchain().tip();
    net.chain.confirmed.insert(ours_txid);

    // The crash, the restart; the host re-feeds branch B from the reported best block.
    net.cut_all_for_crash();
    let reopened = open_hub(&store, net.vchain(), 12);
    drop(std::mem::replace(&mut net.hub, reopened));
    let hub: &mut Sim = &mut net.hub;
    let reported = hub.coordinator().best_block();
    assert_eq!(reported, (h, hash_h), "the fork point: on both branches");
    let rewound = net.hub.core(a).expect("shard").monitor(&chan.channel_id);
    assert_eq!(rewound.map(|m| m.best_height()), Some(h), "rewound to it");
    assert_eq!(rewound.and_then(|m| m.funding_spend()), None);
    let events_at_restart = net.on_chain_events(Who::Hub).len();
    for height in reported.0 + 1..=net.vchain().height() {
        let txs = txdata(net.vchain(), height);
        let hash = net.vchain().block(height).expect("block").block_hash();
        NodeApi::transactions_confirmed(&mut net.hub, height, &txs).expect("re-fed");
        NodeApi::best_block_updated(&mut net.hub, height, hash).expect("re-fed");
    }
    net.run();
    net.reconnect_all();
    net.run();

    // Branch B only, on every shard.
    let tip = (net.vchain().height(), net.vchain().tip());
    for shard in 0..SHARDS {
        assert_eq!(net.hub.core(shard).expect("shard").best_block(), tip);
    }
    let monitor = net
        .hub
        .core(a)
        .expect("shard")
        .monitor(&chan.channel_id)
        .expect("monitored until resolved");
    assert_eq!(monitor.funding_spend(), Some((ours_txid, h + 1)));
    let spends_theirs = Transaction {
        version: lightning_core::bitcoin::transaction::Version::TWO,
        lock_time: lightning_core::bitcoin::absolute::LockTime::ZERO,
        input: vec![lightning_core::bitcoin::TxIn {
            previous_output: lightning_core::bitcoin::OutPoint {
                txid: theirs_txid,
                vout: 0,
            },
            ..Default::default()
        }],
        output: Vec::new(),
    };
    assert!(
        !monitor.is_relevant(&spends_theirs),
        "branch A's commitment is not confirmed"
    );
    let after: Vec<MonitorEvent> = net.on_chain_events(Who::Hub)[events_at_restart..]
        .iter()
        .filter(|(id, _)| *id == chan.channel_id)
        .map(|(_, e)| e.clone())
        .collect();
    assert!(
        after.iter().any(|e| matches!(
            e,
            MonitorEvent::FundingSpent { txid, kind: FundingSpendKind::Holder { .. } }
                if *txid == ours_txid
        )),
        "{after:#?}"
    );

    // The hub sweeps its to_local from its own commitment once the delay has passed.
    for _ in 0..160 {
        net.mine(1);
    }
    let v = net.validating.as_ref().expect("validating");
    let sweep = support::onchain::hub_sweep_script();
    let swept: u64 = v
        .broadcasts
        .iter()
        .filter(|(w, t)| {
            *w == Who::Hub
                && t.input.iter().any(|i| i.previous_output.txid == ours_txid)
                && v.chain.confirmations(&t.compute_txid()) > 0
        })
        .flat_map(|(_, t)| t.output.iter())
        .filter(|o| o.script_pubkey == sweep)
        .map(|o| o.value.to_sat())
        .sum();
    let to_local = hub_channel.local_commit().spec.to_local_msat / 1000;
    assert!(
        to_local > 100_000 && swept + 10_000 > to_local && swept < to_local,
        "swept {swept} of to_local {to_local}"
    );
    assert!(net.violations.is_empty(), "{:#?}", net.violations);
}
