//! The same workload on 1, 2, 4 and 8 shards ends in identical channel states.

use lnshard_testkit as support;

use shard_engine::sim::SimRng;
use shard_engine::Engine;
use support::{engine_config, hub_secret, hub_seed, Hub, Net, PaymentMix, Threaded};

const PEERS: usize = 12;

/// Opens a channel from every peer to the hub and one from the hub to every third peer,
/// then runs rounds of payments between peers through the hub (lockstep: every round runs
/// to quiescence, then the payees claim), some failed back by their payee.
fn workload<H: Hub>(net: &mut Net<H>) {
    let specs: Vec<(usize, bool)> = (0..PEERS)
        .map(|i| (i, false))
        .chain((0..PEERS).step_by(3).map(|i| (i, true)))
        .collect();
    net.open_channels(&specs);
    let mut rng = SimRng::new(7);
    for _round in 0..8 {
        // Disjoint channels in one round: each channel's message order is fixed.
        net.start_random_payments(
            &mut rng,
            4,
            PaymentMix {
                extra_msat: 20_000_000,
                from_hub_every: None,
                fail_one_in: Some(5),
            },
        );
        net.run();
        net.settle();
    }
}

#[test]
fn same_workload_same_channel_states_on_1_2_4_8_shards() {
    let mut reference = None;
    for shards in [1, 2, 4, 8] {
        let engine = Engine::new(
            engine_config(shards),
            hub_secret(),
            hub_seed(),
            100,
            support::genesis(),
        );
        let mut net = Net::new(Threaded { engine }, PEERS);
        net.open_channels(&[]);
        let initial_empty = net.balances();
        assert!(initial_empty.values().all(|&b| b == 0));
        workload(&mut net);
        let snapshot = net.hub_snapshot();
        let balances = net.balances();
        let stats = net.hub.engine.shard_stats();
        let forwards: u64 = stats.iter().map(|s| s.forwards_out).sum();
        let resolutions: u64 = stats.iter().map(|s| s.resolutions_out).sum();
        eprintln!(
            "{shards} shards: {} channels, {} payments forwarded, cross-shard forwards {forwards}, results {resolutions}",
            snapshot.len(),
            net.forwarded_count
        );
        if shards > 1 {
            assert!(
                forwards > 0 && resolutions > 0,
                "work crossed shards on {shards} shards"
            );
        }
        assert!(net.forwarded_count > 10, "payments went through");
        match &reference {
            None => reference = Some((snapshot, balances)),
            Some((snap, bal)) => {
                assert_eq!(snap.len(), snapshot.len());
                for ((id1, c1), (id2, c2)) in snap.iter().zip(&snapshot) {
                    assert_eq!(id1, id2, "same channel ids on {shards} shards");
                    assert_eq!(
                        c1.local_commit().spec,
                        c2.local_commit().spec,
                        "{id1}: local commitment on {shards} shards"
                    );
                    assert_eq!(
                        c1.remote_commit().spec,
                        c2.remote_commit().spec,
                        "{id1}: remote commitment on {shards} shards"
                    );
                    assert_eq!(
                        c1.balances(),
                        c2.balances(),
                        "{id1}: balances on {shards} shards"
                    );
                    if c1 != c2 {
                        let (d1, d2) = (format!("{c1:#?}"), format!("{c2:#?}"));
                        for (l1, l2) in d1.lines().zip(d2.lines()) {
                            if l1 != l2 {
                                eprintln!("1 shard: {l1}\n{shards} shards: {l2}");
                            }
                        }
                    }
                    assert!(
                        c1 == c2,
                        "{id1}: whole channel state equal on {shards} shards"
                    );
                }
                assert_eq!(bal, &balances, "every party's balance on {shards} shards");
            }
        }
        let report = net.hub.engine.shutdown(std::time::Duration::from_secs(5));
        assert!(report.parked.is_empty());
    }
}
