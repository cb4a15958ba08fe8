//! The deterministic simulator over many seeds: a multi-peer workload with forwards across
//! shards, overlapping payments on shared channels, claims as soon as payments arrive, some
//! failed back, payments from and to the hub itself. After each seed: conservation per
//! channel and network-wide, every payment ended exactly once, no upstream settlement before
//! the downstream one. A failing seed is printed; `SIM_SEED=<seed>` replays only it.
//! `SIM_SEEDS=<n>` sets how many seeds run (1000 by default: about 30 s in release, 75 s in
//! a debug build on one core).

use lnshard_testkit as support;

use shard_engine::sim::sim_seed_from_env;
use shard_engine::Sim;
use support::{engine_config, hub_secret, hub_seed, Net, Who};

const PEERS: usize = 6;

/// What one seed did.
#[derive(Default, Debug)]
struct Tally {
    sent: u64,
    failed: u64,
    forwarded: u64,
    cross_shard: u64,
    steps: u64,
    disconnects: u64,
}

fn run_seed(seed: u64) -> Result<([u8; 32], Tally), Vec<String>> {
    run_seed_with(seed, None)
}

/// Runs one seed (cutting connections with `disconnects` chance per move, if given);
/// returns a digest of the run (for replay checks) or the failures.
fn run_seed_with(
    seed: u64,
    disconnects: Option<(u64, u64)>,
) -> Result<([u8; 32], Tally), Vec<String>> {
    let shards = 2 + (seed % 3) as usize;
    let sim = Sim::new(
        engine_config(shards),
        hub_secret(),
        hub_seed(),
        100,
        support::genesis(),
        seed,
    );
    let mut net = Net::new(sim, PEERS);
    net.eager_claims = true;
    let specs: Vec<(usize, bool)> = (0..PEERS)
        .map(|i| (i, false))
        .chain([(0, true), (3, true)])
        .collect();
    net.open_channels(&specs);
    let initial = net.balances();
    net.disconnect_chance = disconnects;
    let n = net.channels.len();
    for _round in 0..3 {
        let k = 2 + net.hub.rng().below(4);
        for _ in 0..k {
            let kind = net.hub.rng().below(10);
            let amount = 500_000 + net.hub.rng().below(30_000_000) as u64;
            let claim = !net.hub.rng().chance(1, 6);
            let cin = net.hub.rng().below(n);
            let cout = net.hub.rng().below(n);
            let (a, b) = (net.channels[cin].peer, net.channels[cout].peer);
            match kind {
                0 => {
                    net.start_payment(Who::Hub, Who::Peer(b), None, Some(cout), amount, claim);
                }
                1 => {
                    net.start_payment(Who::Peer(a), Who::Hub, Some(cin), None, amount, claim);
                }
                _ if a != b => {
                    net.start_payment(
                        Who::Peer(a),
                        Who::Peer(b),
                        Some(cin),
                        Some(cout),
                        amount,
                        claim,
                    );
                }
                _ => {}
            }
        }
        net.run();
    }
    net.settle();
    let errors = net.check(&initial);
    if !errors.is_empty() {
        return Err(errors);
    }
    let digest = net.run_digest();
    let tally = Tally {
        sent: net
            .payments
            .values()
            .filter(|p| p.outcomes == [true])
            .count() as u64,
        failed: net
            .payments
            .values()
            .filter(|p| p.outcomes == [false])
            .count() as u64,
        forwarded: net.forwarded_count,
        cross_shard: net.hub.shard_stats().iter().map(|s| s.forwards_out).sum(),
        steps: net.hub.steps(),
        disconnects: net.disconnects,
    };
    Ok((digest, tally))
}

#[test]
fn sim_seed_sweep_conserves_funds_and_htlcs() {
    if let Ok(s) = std::env::var("SIM_SEED") {
        let seed = sim_seed_from_env(0);
        eprintln!("replaying SIM_SEED={s}");
        if let Err(errors) = run_seed(seed) {
            panic!("SIM_SEED={seed} failed: {errors:#?}");
        }
        return;
    }
    let seeds: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let started = std::time::Instant::now();
    let mut total = Tally::default();
    for seed in 0..seeds {
        match run_seed(seed) {
            Ok((_, t)) => {
                total.sent += t.sent;
                total.failed += t.failed;
                total.forwarded += t.forwarded;
                total.cross_shard += t.cross_shard;
                total.steps += t.steps;
            }
            Err(errors) => panic!("seed {seed} failed (replay with SIM_SEED={seed}): {errors:#?}"),
        }
    }
    eprintln!("{seeds} seeds passed in {:?}: {total:?}", started.elapsed());
    assert!(total.sent > seeds && total.failed > 0 && total.cross_shard > seeds);
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [3, 11] {
        let a = run_seed(seed).expect("seed passes").0;
        let b = run_seed(seed).expect("seed passes").0;
        assert_eq!(a, b, "seed {seed} replays to the same state and step count");
    }
}

/// The sweep with connections cut and restored at random moments (messages in flight lost,
/// channels reestablished with HTLCs in flight across shards). `SIM_DISCONNECT_SEEDS=<n>`
/// (200 by default); `SIM_SEED=<n>` replays one.
#[test]
fn sim_seed_sweep_with_disconnects_conserves_funds_and_htlcs() {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(_) => vec![sim_seed_from_env(0)],
        Err(_) => (0..std::env::var("SIM_DISCONNECT_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(200))
            .collect(),
    };
    let mut failures = Vec::new();
    let mut total = Tally::default();
    for &seed in &seeds {
        match run_seed_with(seed, Some((1, 40))) {
            Ok((_, t)) => {
                total.sent += t.sent;
                total.failed += t.failed;
                total.forwarded += t.forwarded;
                total.cross_shard += t.cross_shard;
                total.disconnects += t.disconnects;
            }
            Err(errors) => failures.push((seed, errors)),
        }
    }
    eprintln!(
        "{} seeds with disconnects: {} failed; {total:?}",
        seeds.len(),
        failures.len()
    );
    if let Some((seed, errors)) = failures.first() {
        let list: Vec<u64> = failures.iter().map(|(s, _)| *s).collect();
        panic!("seeds {list:?} failed; first (replay with SIM_SEED={seed}): {errors:#?}");
    }
    assert!(
        total.disconnects > seeds.len() as u64,
        "connections were cut"
    );
}
