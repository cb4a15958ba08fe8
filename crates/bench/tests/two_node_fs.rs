//! `two-node-sends --store fs` persists: after a few payments, both nodes' filesystem
//! stores, reopened by the engine (`Engine::open`, as a restarted node would), hold the
//! channel with the balances the live nodes ended with.

use std::sync::Arc;
use std::time::Duration;

use lnshard_bench::two_node::{self, Harness, Options, StoreKind, PAYMENT_MSAT};
use shard_engine::store::FsStore;
use shard_engine::{Engine, EngineConfig, NodeApi};

#[test]
fn reopened_stores_hold_both_channels_with_the_final_balances() {
    let root = tempfile::tempdir().expect("temporary directory");
    let dirs = [root.path().join("a"), root.path().join("b")];
    let mut h = Harness::on_fs([&dirs[0], &dirs[1]]).expect("opens the channel");
    let before = h.balances().expect("balances");
    // Three payments each way, then one more from A to B.
    for _ in 0..3 {
        h.iteration().expect("pays both ways");
    }
    h.pay(0).expect("pays A to B");
    h.check()
        .expect("balances, commitment numbers and stored records agree");
    let after = h.balances().expect("balances");
    assert_eq!(
        after[0].to_local_msat,
        before[0].to_local_msat - PAYMENT_MSAT
    );
    assert_eq!(
        after[1].to_local_msat,
        before[1].to_local_msat + PAYMENT_MSAT
    );
    let ids = h.node_ids();
    let channel_id = h.channel_id();
    let (height, tip) = h.best_block();
    // Closes both stores (and releases their locks).
    drop(h);

    for (index, dir) in dirs.iter().enumerate() {
        let (secret, seed) = two_node::node_identity(index);
        let config = EngineConfig {
            shards: 1,
            node: two_node::node_config(),
            store: Some(Arc::new(FsStore::open(dir).expect("reopens the store"))),
            ..EngineConfig::default()
        };
        let engine = Engine::open(config, secret, seed, height, tip).expect("engine reopens");
        assert_eq!(engine.node_id(), ids[index]);
        let channels = engine.list_channels().expect("lists channels");
        assert_eq!(channels.len(), 1, "node {index}: one channel");
        let c = &channels[0];
        assert_eq!(c.channel_id, channel_id);
        assert_eq!(c.counterparty_node_id, ids[1 - index]);
        assert_eq!(c.balances, after[index], "node {index}: the final balances");
        engine.shutdown(Duration::from_secs(5));
    }
}

#[test]
fn a_short_fs_run_checks_out_and_counts_its_syncs() {
    let report = two_node::run(&Options {
        iterations: 3,
        warmup: 1,
        store: StoreKind::Fs,
    })
    .expect("runs and checks out");
    assert_eq!(report.store, StoreKind::Fs);
    assert_eq!(report.messages_per_payment, 10.0);
    // A node commits at every step of the dance that sends something, and every commit is
    // at least one synced WAL frame.
    assert!(report.commits_per_payment >= 6.0, "{report}");
    assert!(
        report.fsyncs_per_payment >= report.commits_per_payment,
        "{report}"
    );
}
