//! Fee estimates through the engine: `NodeApi::fee_estimates_updated` reaches every shard,
//! the hub's funded channels follow it with `update_fee` (both sides end at the new feerate
//! in both commitments), and payments go on afterwards.

use lnshard_testkit as support;

use lightning_core::node::{FeeEstimates, FeePolicy};
use shard_engine::{Engine, NodeApi, SimRng};
use support::{engine_config, hub_secret, hub_seed, Net, PaymentMix, Threaded};

const PEERS: usize = 6;

#[test]
fn hub_channels_on_every_shard_follow_the_estimates() {
    let engine = Engine::new(
        engine_config(4),
        hub_secret(),
        hub_seed(),
        100,
        support::genesis(),
    );
    let mut net = Net::new(Threaded { engine }, PEERS);
    let specs: Vec<(usize, bool)> = (0..PEERS).map(|i| (i, true)).collect();
    net.open_channels(&specs);
    let initial = net.balances();
    let hub_id = net.hub.engine.node_id();
    let shards: std::collections::BTreeSet<usize> = (0..PEERS)
        .map(|i| net.hub.engine.shard_of(&net.peer_id(i)))
        .collect();
    assert!(shards.len() > 1, "channels on several shards: {shards:?}");

    for (step, estimates) in [
        // Anchor channels (the default) follow the background estimate.
        FeeEstimates {
            urgent: 8_000,
            normal: 5_000,
            background: 1_000,
        },
        FeeEstimates {
            urgent: 12_000,
            normal: 8_000,
            background: 3_000,
        },
    ]
    .into_iter()
    .enumerate()
    {
        net.hub
            .engine
            .fee_estimates_updated(estimates)
            .expect("fee_estimates_updated");
        net.run();
        for c in net.channels.clone() {
            let pid = net.peer_id(c.peer);
            let hub_side = net
                .hub
                .engine
                .channel(pid, c.channel_id)
                .expect("engine")
                .expect("hub channel");
            let peer_side = net.peers[c.peer]
                .core
                .channel(&hub_id, &c.channel_id)
                .expect("peer channel");
            for (who, ch) in [("hub", &hub_side), ("peer", peer_side)] {
                assert_eq!(
                    ch.local_commit().spec.feerate_per_kw,
                    estimates.background,
                    "step {step}: {who}'s commitment of channel {}",
                    c.channel_id
                );
                assert_eq!(
                    ch.remote_commit().spec.feerate_per_kw,
                    estimates.background,
                    "step {step}: {who}'s copy of the other's commitment"
                );
            }
        }
    }

    let mut rng = SimRng::new(15);
    for _ in 0..3 {
        net.start_random_payments(
            &mut rng,
            3,
            PaymentMix {
                extra_msat: 10_000_000,
                from_hub_every: Some(3),
                fail_one_in: None,
            },
        );
        net.run();
        net.settle();
    }
    assert!(net.forwarded_count > 0, "payments went through");
    let errors = net.check(&initial);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn the_fee_policy_set_through_the_engine_holds_every_shard() {
    let engine = Engine::new(
        engine_config(4),
        hub_secret(),
        hub_seed(),
        100,
        support::genesis(),
    );
    let mut net = Net::new(Threaded { engine }, 4);
    let specs: Vec<(usize, bool)> = (0..4).map(|i| (i, true)).collect();
    net.open_channels(&specs);
    let feerate = |net: &mut Net<Threaded>| -> Vec<u32> {
        net.channels
            .clone()
            .iter()
            .map(|c| {
                let pid = net.peer_id(c.peer);
                net.hub
                    .engine
                    .channel(pid, c.channel_id)
                    .expect("engine")
                    .expect("channel")
                    .local_commit()
                    .spec
                    .feerate_per_kw
            })
            .collect()
    };
    let opened = feerate(&mut net);
    // Anchor channels follow `background`; with a raise threshold of 300% a doubling is not
    // enough on any shard.
    net.hub
        .engine
        .set_fee_policy(FeePolicy {
            raise_threshold_percent: 300,
            ..FeePolicy::default()
        })
        .expect("set_fee_policy");
    let doubled = opened[0] * 2;
    let estimates = |background| FeeEstimates {
        urgent: background * 4,
        normal: background * 2,
        background,
    };
    net.hub
        .engine
        .fee_estimates_updated(estimates(doubled))
        .expect("estimates");
    net.run();
    assert_eq!(feerate(&mut net), opened);
    // Five times the feerate passes it.
    net.hub
        .engine
        .fee_estimates_updated(estimates(opened[0] * 5))
        .expect("estimates");
    net.run();
    assert!(feerate(&mut net).iter().all(|&f| f == opened[0] * 5));
}

/// A fee estimator the test steers: its answer (`None` at first) and how often it was asked.
#[derive(Default)]
struct SteeredEstimator {
    answer: std::sync::Mutex<Option<FeeEstimates>>,
    calls: std::sync::atomic::AtomicUsize,
}

impl shard_engine::FeeEstimator for SteeredEstimator {
    fn estimates(&self) -> Option<FeeEstimates> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        *self.answer.lock().expect("estimator lock")
    }
}

#[test]
fn the_engine_asks_its_estimator_at_start_and_on_every_block() {
    let estimator = std::sync::Arc::new(SteeredEstimator::default());
    let config = shard_engine::EngineConfig {
        fee_estimator: Some(estimator.clone()),
        ..engine_config(4)
    };
    let engine = Engine::new(config, hub_secret(), hub_seed(), 100, support::genesis());
    let calls = || estimator.calls.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(calls(), 1, "asked once at start");
    let mut net = Net::new(Threaded { engine }, 4);
    let specs: Vec<(usize, bool)> = (0..4).map(|i| (i, true)).collect();
    net.open_channels(&specs);
    let hub_id = net.hub.engine.node_id();
    let feerates = |net: &mut Net<Threaded>| -> Vec<(u32, u32)> {
        net.channels
            .clone()
            .iter()
            .map(|c| {
                let pid = net.peer_id(c.peer);
                let hub_side = net
                    .hub
                    .engine
                    .channel(pid, c.channel_id)
                    .expect("engine")
                    .expect("hub channel");
                let peer_side = net.peers[c.peer]
                    .core
                    .channel(&hub_id, &c.channel_id)
                    .expect("peer channel");
                (
                    hub_side.local_commit().spec.feerate_per_kw,
                    peer_side.local_commit().spec.feerate_per_kw,
                )
            })
            .collect()
    };
    let opened = feerates(&mut net);
    let asked_while_opening = calls();
    assert!(
        asked_while_opening > 1,
        "asked on the blocks that confirmed the channels"
    );
    // No answer yet: nothing moved.
    net.mine(1);
    assert_eq!(calls(), asked_while_opening + 1, "asked once per block");
    assert_eq!(feerates(&mut net), opened);

    // The estimator's answer changes between blocks; anchor channels follow `background`
    // with update_fee (both commitments, both sides), without any push from the host.
    for (step, background) in [opened[0].0 * 4, opened[0].0 * 9].into_iter().enumerate() {
        *estimator.answer.lock().expect("estimator lock") = Some(FeeEstimates {
            urgent: background * 3,
            normal: background * 2,
            background,
        });
        // Not applied before the next block.
        net.run();
        if step == 0 {
            assert_eq!(
                feerates(&mut net),
                opened,
                "applied only when a block comes"
            );
        }
        net.mine(1);
        assert!(
            feerates(&mut net)
                .iter()
                .all(|&(hub, peer)| hub == background && peer == background),
            "step {step}: {:?} after the estimator said {background}",
            feerates(&mut net)
        );
    }
    // Without an answer the last estimates stay.
    let last = feerates(&mut net);
    *estimator.answer.lock().expect("estimator lock") = None;
    net.mine(1);
    assert_eq!(feerates(&mut net), last);
}
