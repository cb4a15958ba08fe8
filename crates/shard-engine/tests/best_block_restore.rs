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

use lightning_core::bitcoin::{ScriptBuf, Transaction, Txid};
use lightning_core::chain::MonitorEvent;
use lightning_core::persist::NodeRecord;
use lightning_core::secp256k1::PublicKey;
use shard_engine::durable::{node_key, NODES};
use shard_engine::store::{MemoryStore, Store};
use shard_engine::{Backend, EngineConfig, NodeApi, Sim};
use support::chain::ValidatingChain;
use support::onchain::static_remotekey_config;
use support::{engine_config, hub_secret, hub_seed, Net, Who};

const SHARDS: usize = 2;
/// Peers; enough that two of them land on different shards.
const PEERS: usize = 4;

/// Where the hub's claims pay: a P2WPKH of a test key.
fn hub_sweep() -> ScriptBuf {
    let key = PublicKey::from_secret_key(
        &lightning_core::secp256k1::Secp256k1::signing_only(),
        &support::secret(b"hub sweep"),
    );
    ScriptBuf::new_p2wpkh(&lightning_core::bitcoin::CompressedPublicKey(key).wpubkey_hash())
}

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
    NodeApi::set_sweep_script(&mut sim, hub_sweep()).expect("sweep script");
    sim
}

/// Every shard's stored best height, by shard index.
fn stored_heights(store: &Arc<dyn Store>) -> Vec<u32> {
    (0..SHARDS)
        .map(|i| {
            let bytes = store
                .read(NODES, &node_key(i, SHARDS))
                .expect("reads")
                .expect("a node record per shard");
            NodeRecord::from_bytes(&bytes).expect("decodes").best_height
        })
        .collect()
}

/// A block's transactions as the host feeds them (index in the block, transaction).
fn txdata(chain: &ValidatingChain, height: u32) -> Vec<(u32, Transaction)> {
    chain
        .block(height)
        .expect("block")
        .txdata
        .iter()
        .enumerate()
        .skip(1)
        .map(|(k, tx)| (k as u32, tx.clone()))
        .collect()
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
    let sweep = hub_sweep();
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
