//! The engine as a routing node under load, with the engine the bottleneck.
//!
//! Lanes: peer A_k → the routing node → peer B_k, A_k and B_k placed on different shards
//! (for 2 shards). Record once with real peers (lane by lane in lockstep: a lane's next
//! payment starts when the previous one completed), then replay: a light driver feeds each
//! lane's recorded peer messages as soon as the routing node has sent what they answer, and
//! compares every message the routing node sends with the recording, byte for byte. The
//! routing node still verifies every signature it receives and signs everything it sends.
//!
//! Systems, all on the same NodeCore and the same recording:
//! * the engine with 1 and 2 shards (one driver thread);
//! * one global `Mutex<NodeCore>` over all peers, driven by 2 threads (LDK before its
//!   per-peer refactor);
//! * per-peer `Mutex<NodeCore>` in a `RwLock`'d map, driven by 2 threads (LDK after it).
//!
//! `cargo bench -p shard-engine --bench routing`; `BENCH_LANES`, `BENCH_PAYMENTS` (per
//! lane) and `BENCH_RUNS` size it.
#![allow(clippy::print_stdout)]

#[path = "../../tests/support/mod.rs"]
mod support;

mod baseline;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baseline::{BaselineHub, Locked, Sink};
use shard_engine::lightning_core::secp256k1::{PublicKey, Secp256k1};
use shard_engine::store::{FsStore, MemoryStore, Store};
use shard_engine::{Engine, EngineConfig, EngineError, PeerOutput, Placement};
use support::{
    engine_config, genesis, hub_secret, hub_seed, secret, Hub, Net, Recorder, Threaded, Who,
};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Lane k: (peer index of A_k, peer index of B_k), on different shards of 2 when `cross`,
/// else on the same shard (half the lanes on each).
fn choose_lanes(lanes: usize, cross: bool) -> (usize, Vec<(usize, usize)>) {
    let placement = Placement::new(&hub_secret(), 2);
    let secp = Secp256k1::signing_only();
    let (mut s0, mut s1) = (Vec::new(), Vec::new());
    let mut i = 0;
    while s0.len() < 2 * lanes || s1.len() < 2 * lanes {
        let id = PublicKey::from_secret_key(&secp, &secret(format!("peer-{i}").as_bytes()));
        if placement.shard_of(&id) == 0 {
            s0.push(i);
        } else {
            s1.push(i);
        }
        i += 1;
    }
    let pairs = (0..lanes)
        .map(|k| match (cross, k % 2 == 0) {
            (true, true) => (s0[k], s1[k]),
            (true, false) => (s1[k], s0[k]),
            (false, true) => (s0[k], s0[k + lanes]),
            (false, false) => (s1[k], s1[k + lanes]),
        })
        .collect();
    (i, pairs)
}

/// Connects the peers and opens each lane's two channels (funded by the peers, half pushed
/// to the routing node so it can forward). Deterministic: the same for every system.
fn setup<H: Hub>(hub: H, peers: usize, lanes: &[(usize, usize)]) -> Net<H> {
    let mut net = Net::new(hub, peers);
    let specs: Vec<(usize, bool)> = lanes
        .iter()
        .flat_map(|&(a, b)| [(a, false), (b, false)])
        .collect();
    net.open_channels(&specs);
    net
}

/// One peer message of a lane: send it once the routing node has sent `need[0]` messages
/// to A and `need[1]` to B.
struct Step {
    side: usize,
    bytes: Vec<u8>,
    need: [usize; 2],
}

struct Recording {
    /// Per lane, the peers' messages in order.
    scripts: Vec<Vec<Step>>,
    /// Per lane and side, what the routing node sent.
    expected: Vec<[Vec<Vec<u8>>; 2]>,
    ids: Vec<[PublicKey; 2]>,
    /// Payments per lane.
    payments: usize,
}

fn record(peers: usize, lanes: &[(usize, usize)], payments: usize) -> Recording {
    let engine = Engine::new(engine_config(1), hub_secret(), hub_seed(), 100, genesis());
    let mut net = setup(Threaded { engine }, peers, lanes);
    net.eager_claims = true;
    let chan_of: HashMap<usize, usize> = net
        .channels
        .iter()
        .enumerate()
        .map(|(k, c)| (c.peer, k))
        .collect();
    let mut partner = vec![None; peers];
    for &(a, b) in lanes {
        partner[a] = Some(b);
        partner[b] = Some(a);
    }
    net.recorder = Some(Recorder {
        partner,
        delivered: vec![0; peers],
        to_hub: Vec::new(),
        from_hub: vec![Vec::new(); peers],
    });
    let initial = net.balances();
    for p in 0..payments {
        for &(a, b) in lanes {
            let amount = 10_000_000 + p as u64 * 1000;
            net.start_payment(
                Who::Peer(a),
                Who::Peer(b),
                Some(chan_of[&a]),
                Some(chan_of[&b]),
                amount,
                true,
            );
        }
        net.run();
    }
    let errors = net.check(&initial);
    assert!(errors.is_empty(), "recording run is sound: {errors:#?}");
    assert_eq!(net.forwarded_count as usize, payments * lanes.len());
    let rec = net.recorder.take().expect("recorder");
    let mut lane_of = HashMap::new();
    for (k, &(a, b)) in lanes.iter().enumerate() {
        lane_of.insert(a, (k, 0));
        lane_of.insert(b, (k, 1));
    }
    let mut scripts: Vec<Vec<Step>> = lanes.iter().map(|_| Vec::new()).collect();
    for (peer, bytes, mine, theirs) in rec.to_hub {
        let (k, side) = lane_of[&peer];
        let need = if side == 0 {
            [mine, theirs]
        } else {
            [theirs, mine]
        };
        scripts[k].push(Step { side, bytes, need });
    }
    let mut from_hub = rec.from_hub;
    let expected = lanes
        .iter()
        .map(|&(a, b)| {
            [
                std::mem::take(&mut from_hub[a]),
                std::mem::take(&mut from_hub[b]),
            ]
        })
        .collect();
    let ids = lanes
        .iter()
        .map(|&(a, b)| [net.peer_id(a), net.peer_id(b)])
        .collect();
    Recording {
        scripts,
        expected,
        ids,
        payments,
    }
}

/// CPU time of the calling thread (ns), from the kernel's schedstat.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// CPU time of the whole process (ns), from /proc/self/stat (utime + stime, 100 Hz ticks).
fn process_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks * 10_000_000
}

struct Outcome {
    /// The store's syncs when the timed replay started (engine with a store only).
    setup_syncs: u64,
    payments: usize,
    wall: Duration,
    process_cpu: Duration,
    driver_cpu: Duration,
    mismatches: usize,
    cross_shard: u64,
    /// Each shard's busy share of the wall time (engine only).
    shard_busy: Vec<f64>,
}

/// Per lane: how far its script got and how many messages each side has received.
struct LaneState {
    pos: usize,
    got: [usize; 2],
}

fn lane_done(rec: &Recording, k: usize, st: &LaneState) -> bool {
    st.pos == rec.scripts[k].len()
        && st.got[0] == rec.expected[k][0].len()
        && st.got[1] == rec.expected[k][1].len()
}

fn replay_engine(
    shards: usize,
    peers: usize,
    lanes: &[(usize, usize)],
    rec: &Recording,
) -> Outcome {
    replay_engine_with(shards, peers, lanes, rec, None, 256)
}

/// [`replay_engine`] on an engine persisting to `store` with `commit_batch`.
fn replay_engine_with(
    shards: usize,
    peers: usize,
    lanes: &[(usize, usize)],
    rec: &Recording,
    store: Option<Arc<dyn Store>>,
    commit_batch: usize,
) -> Outcome {
    let config = EngineConfig {
        store: store.clone(),
        commit_batch,
        ..engine_config(shards)
    };
    let store_probe = store.clone();
    let engine = match store {
        Some(_) => Engine::open(config, hub_secret(), hub_seed(), 100, genesis())
            .expect("open on an empty store"),
        None => Engine::new(config, hub_secret(), hub_seed(), 100, genesis()),
    };
    let net = setup(Threaded { engine }, peers, lanes);
    let Net {
        hub: Threaded { engine },
        ..
    } = net;
    let mut where_is: HashMap<PublicKey, (usize, usize)> = HashMap::new();
    for (k, ids) in rec.ids.iter().enumerate() {
        where_is.insert(ids[0], (k, 0));
        where_is.insert(ids[1], (k, 1));
    }
    let n = rec.scripts.len();
    let mut state: Vec<LaneState> = (0..n)
        .map(|_| LaneState {
            pos: 0,
            got: [0, 0],
        })
        .collect();
    let mut mismatches = 0;
    let mut done = 0;
    let mut finished = vec![false; n];
    let mut todo: Vec<usize> = (0..n).collect();
    let busy0: Vec<u64> = engine.shard_stats().iter().map(|s| s.busy_nanos).collect();
    let setup_syncs = store_probe.as_ref().map_or(0, |s| s.syncs());
    let (cpu0, proc0, t0) = (thread_cpu_ns(), process_cpu_ns(), Instant::now());
    let stats0: u64 = engine.shard_stats().iter().map(|s| s.forwards_out).sum();
    while done < n {
        for k in todo.drain(..) {
            let st = &mut state[k];
            let script = &rec.scripts[k];
            while let Some(step) = script.get(st.pos) {
                if st.got[0] < step.need[0] || st.got[1] < step.need[1] {
                    break;
                }
                match engine.handle_message(rec.ids[k][step.side], &step.bytes) {
                    Ok(()) => st.pos += 1,
                    Err(EngineError::Full { .. }) => break,
                    Err(e) => panic!("replay: {e}"),
                }
            }
            // A lane may end with a peer's message (its last revoke_and_ack).
            if !finished[k] && lane_done(rec, k, st) {
                finished[k] = true;
                done += 1;
            }
        }
        if done == n {
            break;
        }
        let Some(peer) = engine.wait_ready_peer(Duration::from_millis(2)) else {
            // Nothing came: retry every lane (one may have met a full inbox).
            todo.extend(0..n);
            continue;
        };
        let (k, side) = where_is[&peer];
        for o in engine.peer_outputs(&peer) {
            let st = &mut state[k];
            match (o, rec.expected[k][side].get(st.got[side])) {
                (PeerOutput::Message(bytes), Some(expected)) if &bytes == expected => {}
                _ => mismatches += 1,
            }
            st.got[side] += 1;
        }
        todo.push(k);
    }
    let wall = t0.elapsed();
    let (cpu1, proc1) = (thread_cpu_ns(), process_cpu_ns());
    let busy1: Vec<u64> = engine.shard_stats().iter().map(|s| s.busy_nanos).collect();
    let shard_busy = busy1
        .iter()
        .zip(&busy0)
        .map(|(b1, b0)| (b1 - b0) as f64 / wall.as_nanos() as f64)
        .collect();
    let cross: u64 = engine
        .shard_stats()
        .iter()
        .map(|s| s.forwards_out)
        .sum::<u64>()
        - stats0;
    engine.shutdown(Duration::from_secs(5));
    Outcome {
        setup_syncs,
        payments: rec.scripts.len() * rec.payments,
        wall,
        process_cpu: Duration::from_nanos(proc1 - proc0),
        driver_cpu: Duration::from_nanos(cpu1 - cpu0),
        mismatches,
        cross_shard: cross,
        shard_busy,
    }
}

fn replay_locked(
    per_peer: bool,
    peers: usize,
    lanes: &[(usize, usize)],
    rec: &Recording,
) -> Outcome {
    let locked = Arc::new(if per_peer {
        Locked::per_peer(hub_secret(), hub_seed(), 100, genesis())
    } else {
        Locked::global(hub_secret(), hub_seed(), 100, genesis())
    });
    let secp = Secp256k1::signing_only();
    let hub = BaselineHub {
        locked: locked.clone(),
        node_id: PublicKey::from_secret_key(&secp, &hub_secret()),
        sink: Sink::default(),
    };
    let net = setup(hub, peers, lanes);
    drop(net);
    let mut where_is: HashMap<PublicKey, (usize, usize)> = HashMap::new();
    for (k, ids) in rec.ids.iter().enumerate() {
        where_is.insert(ids[0], (k, 0));
        where_is.insert(ids[1], (k, 1));
    }
    let (proc0, t0) = (process_cpu_ns(), Instant::now());
    let mismatches: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let locked = locked.clone();
                let where_is = &where_is;
                scope.spawn(move || {
                    let mine: Vec<usize> = (0..rec.scripts.len()).filter(|k| k % 2 == t).collect();
                    let mut state: Vec<LaneState> = mine
                        .iter()
                        .map(|_| LaneState {
                            pos: 0,
                            got: [0, 0],
                        })
                        .collect();
                    let mut mismatches = 0;
                    let mut sink = Sink::default();
                    loop {
                        let mut progressed = false;
                        for (x, &k) in mine.iter().enumerate() {
                            let st = &mut state[x];
                            let Some(step) = rec.scripts[k].get(st.pos) else {
                                continue;
                            };
                            if st.got[0] < step.need[0] || st.got[1] < step.need[1] {
                                panic!("lane {k} waits for a message the baseline never sent");
                            }
                            locked.handle_message(rec.ids[k][step.side], &step.bytes, &mut sink);
                            st.pos += 1;
                            progressed = true;
                            for (peer, o) in sink.messages.drain(..) {
                                let (k2, side) = where_is[&peer];
                                assert_eq!(k2, k, "outputs stay in their lane");
                                match (o, rec.expected[k][side].get(st.got[side])) {
                                    (PeerOutput::Message(b), Some(e)) if &b == e => {}
                                    _ => mismatches += 1,
                                }
                                st.got[side] += 1;
                            }
                            sink.events.clear();
                        }
                        if !progressed {
                            return mismatches;
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("driver thread"))
            .sum()
    });
    let wall = t0.elapsed();
    Outcome {
        setup_syncs: 0,
        payments: rec.scripts.len() * rec.payments,
        wall,
        process_cpu: Duration::from_nanos(process_cpu_ns() - proc0),
        driver_cpu: Duration::ZERO,
        mismatches,
        cross_shard: 0,
        shard_busy: Vec::new(),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `BENCH_DURABLE=1`: the engine (2 shards) with no store, the in-memory store, and the
/// filesystem store with group commit on (one `write_batch` per shard batch) and off (one per
/// message), on the same recording; payments/s and fsyncs per payment.
fn durable(lanes_n: usize, payments: usize, runs: usize) {
    let (peers, lanes) = choose_lanes(lanes_n, true);
    let rec = record(peers, &lanes, payments);
    let names = [
        "no store",
        "MemoryStore",
        "FsStore, group commit on",
        "FsStore, group commit off",
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut syncs: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for run in 0..runs {
        for (i, name) in names.iter().enumerate() {
            let dir = tempfile::tempdir().expect("temporary directory");
            let store: Option<Arc<dyn Store>> = match i {
                0 => None,
                1 => Some(Arc::new(MemoryStore::new())),
                _ => Some(Arc::new(FsStore::open(dir.path()).expect("fs store"))),
            };
            let batch = if i == 3 { 1 } else { 256 };
            let o = replay_engine_with(2, peers, &lanes, &rec, store.clone(), batch);
            // Syncs during the replay only (not the channel opening before it).
            let total_syncs = store.as_ref().map_or(0, |s| s.syncs());
            let rate = o.payments as f64 / o.wall.as_secs_f64();
            let per_payment =
                (total_syncs.saturating_sub(o.setup_syncs)) as f64 / o.payments as f64;
            rates[i].push(rate);
            syncs[i].push(per_payment);
            println!(
                "run {run}: {name:<28} {rate:>7.0} payments/s  wall {:>7.3}s  fsyncs/payment {per_payment:>6.2}  mismatches {}",
                o.wall.as_secs_f64(),
                o.mismatches
            );
            assert_eq!(
                o.mismatches, 0,
                "{name}: replay diverged from the recording"
            );
        }
    }
    println!("median of {runs} runs, 2 shards, {lanes_n} lanes x {payments} payments:");
    for (i, name) in names.iter().enumerate() {
        println!(
            "  {name:<28} {:>7.0} payments/s  {:>6.2} fsyncs/payment",
            median(&mut rates[i]),
            median(&mut syncs[i])
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing we need.
    if env("BENCH_DURABLE", 0) == 1 {
        durable(
            env("BENCH_LANES", 32),
            env("BENCH_PAYMENTS", 10),
            env("BENCH_RUNS", 3),
        );
        return;
    }
    let lanes_n = env("BENCH_LANES", 32);
    let payments = env("BENCH_PAYMENTS", 40);
    let runs = env("BENCH_RUNS", 3);
    let (peers, lanes) = choose_lanes(lanes_n, true);
    let (same_peers, same_lanes) = choose_lanes(lanes_n, false);
    let t = Instant::now();
    let rec = record(peers, &lanes, payments);
    let same_rec = record(same_peers, &same_lanes, payments);
    println!(
        "recorded {lanes_n} lanes x {payments} payments ({} peer messages) in {:?}",
        rec.scripts.iter().map(Vec::len).sum::<usize>(),
        t.elapsed()
    );
    let names = [
        "engine, 1 shard",
        "engine, 2 shards",
        "global Mutex, 2 threads",
        "per-peer Mutex + RwLock map, 2 threads",
        "engine, 2 shards, lanes within one shard",
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut ratios = Vec::new();
    for run in 0..runs {
        let outcomes = [
            replay_engine(1, peers, &lanes, &rec),
            replay_engine(2, peers, &lanes, &rec),
            replay_locked(false, peers, &lanes, &rec),
            replay_locked(true, peers, &lanes, &rec),
            replay_engine(2, same_peers, &same_lanes, &same_rec),
        ];
        for (i, o) in outcomes.iter().enumerate() {
            let rate = o.payments as f64 / o.wall.as_secs_f64();
            rates[i].push(rate);
            let driver_share = if o.process_cpu.is_zero() {
                0.0
            } else {
                100.0 * o.driver_cpu.as_secs_f64() / o.process_cpu.as_secs_f64()
            };
            println!(
                "run {run}: {:<40} {:>7.0} payments/s  wall {:>7.3}s  cpu {:>7.3}s ({:>5.0} us/payment)  driver cpu {:>4.1}%  cross-shard {:>5}  mismatches {}  shards busy {:.0?}",
                names[i],
                rate,
                o.wall.as_secs_f64(),
                o.process_cpu.as_secs_f64(),
                o.process_cpu.as_secs_f64() * 1e6 / o.payments as f64,
                driver_share,
                o.cross_shard,
                o.mismatches,
                o.shard_busy.iter().map(|b| b * 100.0).collect::<Vec<_>>(),
            );
            assert_eq!(
                o.mismatches, 0,
                "{}: replay diverged from the recording",
                names[i]
            );
        }
        ratios.push(rates[1][run] / rates[0][run]);
    }
    println!("median of {runs} runs, {lanes_n} lanes x {payments} payments:");
    for (i, name) in names.iter().enumerate() {
        println!("  {:<40} {:>7.0} payments/s", name, median(&mut rates[i]));
    }
    println!(
        "  2 shards / 1 shard (median of per-run ratios): {:.2}x",
        median(&mut ratios)
    );
}
