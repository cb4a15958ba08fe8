//! Timers the quinn way: each shard's core says when it next needs a tick
//! (`NodeCore::poll_timeout`), and `Engine::timer_tick` wakes only the shards whose time has
//! come, so an idle node's shards are not woken every second for nothing.

use std::time::{Duration, Instant};

use lnshard_testkit as support;
use shard_engine::{Engine, EngineConfig};
use support::{genesis, hub_secret, hub_seed, Net, Threaded};

fn handled(engine: &Engine) -> Vec<u64> {
    engine
        .shard_stats()
        .iter()
        .map(|s| s.messages_handled)
        .collect()
}

fn wait_idle(engine: &Engine) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !engine.is_idle() {
        assert!(Instant::now() < deadline, "the engine went idle");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_node_without_peers_is_ticked_once_then_left_asleep() {
    let config = EngineConfig {
        shards: 4,
        ..support::engine_config(4)
    };
    let engine = Engine::new(config, hub_secret(), hub_seed(), 100, genesis());
    // Nothing is known at the start: every shard gets the first tick.
    engine.timer_tick(1_000).expect("tick");
    wait_idle(&engine);
    let after_first = handled(&engine);
    assert!(after_first.iter().all(|&n| n >= 1), "{after_first:?}");
    // No peer, no deadline: a minute of ticks wakes no shard.
    for s in 1..=60u64 {
        engine.timer_tick(1_000 + s * 1_000).expect("tick");
    }
    wait_idle(&engine);
    assert_eq!(handled(&engine), after_first, "no shard was woken");
}

#[test]
fn only_the_shard_of_a_live_peer_is_ticked_and_at_its_deadlines() {
    let engine = Engine::new(
        support::engine_config(4),
        hub_secret(),
        hub_seed(),
        100,
        genesis(),
    );
    let mut net = Net::new(Threaded { engine }, 1);
    net.run();
    let engine = &net.hub.engine;
    let peer = net.peer_id(0);
    let home = engine.shard_of(&peer);
    // The first tick starts the peer's ping interval (30 s by default).
    engine.timer_tick(10_000).expect("tick");
    wait_idle(engine);
    let before = handled(engine);
    // Ticks inside the interval wake nobody.
    for s in 1..29u64 {
        engine.timer_tick(10_000 + s * 1_000).expect("tick");
    }
    wait_idle(engine);
    assert_eq!(
        handled(engine),
        before,
        "no shard woken inside the interval"
    );
    // At the deadline only the peer's shard is woken (and pings it).
    engine.timer_tick(40_000).expect("tick");
    wait_idle(engine);
    let after = handled(engine);
    for (shard, (b, a)) in before.iter().zip(&after).enumerate() {
        if shard == home {
            assert!(
                a > b,
                "the peer's shard {shard} was ticked: {before:?} -> {after:?}"
            );
        } else {
            assert_eq!(a, b, "shard {shard} slept: {before:?} -> {after:?}");
        }
    }
}
