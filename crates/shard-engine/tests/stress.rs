//! Stress: many peers with 2 channels each over 8 shards, payments and cross-shard forwards
//! all in flight at once, conservation checked at the end.
//! `STRESS_PEERS=1000` for the full run (40 peers by default, to keep CI quick).

use lnshard_testkit as support;

use std::time::Instant;

use shard_engine::Engine;
use support::{engine_config, genesis, hub_secret, hub_seed, Net, Threaded, Who};

#[test]
fn many_peers_two_channels_each_eight_shards_concurrent_payments_conserve_funds() {
    let peers: usize = std::env::var("STRESS_PEERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let started = Instant::now();
    let engine = Engine::new(engine_config(8), hub_secret(), hub_seed(), 100, genesis());
    let mut net = Net::new(Threaded { engine }, peers);
    net.eager_claims = true;
    // Each peer opens one channel to the hub and the hub opens one to each peer.
    let specs: Vec<(usize, bool)> = (0..peers).flat_map(|i| [(i, false), (i, true)]).collect();
    net.open_channels(&specs);
    assert_eq!(net.channels.len(), 2 * peers);
    let opened = started.elapsed();
    let initial = net.balances();
    let mut payments = 0;
    for round in 0..2 {
        // Every peer pays another at once, in on one of its channels, out on one of the
        // payee's: most forwards cross shards. One in ten is failed back by its payee.
        for i in 0..peers {
            let j = (i + peers / 2 + round) % peers;
            if i == j {
                continue;
            }
            let cin = 2 * i + round % 2;
            let cout = 2 * j + (round + 1) % 2;
            let amount = 1_000_000 + (i as u64) * 1000;
            let claim = (i + round) % 10 != 0;
            net.start_payment(
                Who::Peer(i),
                Who::Peer(j),
                Some(cin),
                Some(cout),
                amount,
                claim,
            );
            payments += 1;
        }
        net.run();
    }
    let paid = started.elapsed() - opened;
    let errors = net.check(&initial);
    assert!(errors.is_empty(), "{errors:#?}");
    let stats = net.hub.engine.shard_stats();
    let cross: u64 = stats.iter().map(|s| s.forwards_out).sum();
    let succeeded = net
        .payments
        .values()
        .filter(|p| p.outcomes == [true])
        .count();
    eprintln!(
        "{peers} peers, {} channels, 8 shards: opened in {opened:?}; {payments} payments \
         ({succeeded} claimed, {} forwarded, {cross} cross-shard forwards) in {paid:?}; \
         per shard messages {:?}, queue high-water {:?}",
        net.channels.len(),
        net.forwarded_count,
        stats.iter().map(|s| s.messages_handled).collect::<Vec<_>>(),
        stats.iter().map(|s| s.queue_high_water).collect::<Vec<_>>(),
    );
    assert!(succeeded >= payments * 8 / 10, "most payments succeeded");
    assert!(
        cross as usize >= payments / 2,
        "most forwards crossed shards"
    );
    let report = net.hub.engine.shutdown(std::time::Duration::from_secs(10));
    assert!(report.parked.is_empty());
}
