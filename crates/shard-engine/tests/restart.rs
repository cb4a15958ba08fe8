//! Restarting the engine from its store with another shard count: a workload with HTLCs in
//! flight stops, the engine is reopened with M shards on what N shards wrote, peers
//! reconnect (channel_reestablish), the payments finish and every balance reconciles.
//! The two ends of every HTLC in flight are records of their own (format 6), never in a node
//! record, and each is deleted once its HTLC is resolved.

use lnshard_testkit as support;

use std::sync::Arc;
use std::time::Duration;

use lightning_core::persist::envelope::{self, RecordKind};
use lightning_core::persist::{NodeRecord, OfferedHtlcEntryRecord, UpstreamHtlcEntryRecord};
use shard_engine::durable::{NODES, OFFERED_HTLCS, UPSTREAM_HTLCS};
use shard_engine::sim::SimRng;
use shard_engine::store::{MemoryStore, Store, WriteOp};
use shard_engine::{Engine, EngineConfig, NodeApi};
use support::{engine_config, hub_secret, hub_seed, Net, PaymentMix, Threaded};

const PEERS: usize = 10;

fn config(shards: usize, store: &Arc<dyn Store>) -> EngineConfig {
    EngineConfig {
        store: Some(store.clone()),
        ..engine_config(shards)
    }
}

fn open(shards: usize, store: &Arc<dyn Store>) -> Engine {
    Engine::open(
        config(shards, store),
        hub_secret(),
        hub_seed(),
        100,
        support::genesis(),
    )
    .expect("open")
}

/// The payments these tests start.
const MIX: PaymentMix = PaymentMix {
    extra_msat: 20_000_000,
    from_hub_every: Some(4),
    fail_one_in: Some(5),
};

/// Stops the hub (`crash`: [`Engine::abort`], else a shutdown with no grace) after `rounds`
/// delivery rounds of a batch of payments and with one more round being handled (its
/// connections drop with whatever was in flight), reopens it from the store with `to` shards, and
/// finishes. Returns the HTLCs that were in flight at the stop, and the offered HTLCs'
/// records the store held then.
fn stop_and_reopen(
    net: &mut Net<Threaded>,
    store: &Arc<dyn Store>,
    to: usize,
    rng: &mut SimRng,
    rounds: usize,
    crash: bool,
    as_format_5: bool,
) -> (usize, usize) {
    net.start_random_payments(rng, 6, MIX);
    net.rounds(rounds);
    // The hub is busy with this when it stops.
    net.deliver_once();
    let in_flight = net.htlcs_in_flight();
    net.cut_all_for_crash();
    // A placeholder hub while the old one stops (never called).
    let placeholder = Engine::new(
        engine_config(1),
        support::secret(b"placeholder"),
        [0; 32],
        100,
        support::genesis(),
    );
    let old = std::mem::replace(&mut net.hub.engine, placeholder);
    let report = if crash {
        // Queued work and unreleased outputs are lost, as in a crash.
        old.abort();
        Default::default()
    } else {
        old.shutdown(Duration::ZERO)
    };
    let offered = check_htlc_records(store.as_ref());
    if as_format_5 {
        to_format_5(store.as_ref());
    }
    let pending = store
        .list(shard_engine::durable::RESOLUTIONS)
        .expect("list")
        .len();
    if !report.parked.is_empty() || pending > 0 {
        eprintln!(
            "stop: {} cross-shard messages undelivered, {pending} results not yet applied",
            report.parked.len()
        );
    }
    drop(std::mem::replace(&mut net.hub.engine, open(to, store)));
    assert_eq!(net.hub.engine.shard_count(), to);
    net.absorb_hub_events(report.events);
    net.reconnect_all();
    net.run();
    net.settle();
    (in_flight, offered)
}

/// Rewrites the store as a format-5 build left it: every HTLC record moved into a node
/// record (written as version 5, readable from 3), none of its own.
fn to_format_5(store: &dyn Store) {
    let keys = store.list(NODES).expect("list");
    let first = keys.first().expect("a node record").clone();
    let bytes = store.read(NODES, &first).expect("read").expect("listed");
    let mut node = NodeRecord::from_bytes(&bytes).expect("a node record");
    let mut ops = Vec::new();
    for key in store.list(OFFERED_HTLCS).expect("list") {
        let bytes = store
            .read(OFFERED_HTLCS, &key)
            .expect("read")
            .expect("listed");
        let r = OfferedHtlcEntryRecord::from_bytes(&bytes).expect("an offered HTLC record");
        node.offered.insert((r.channel_id, r.htlc_id), r.offered);
        ops.push(WriteOp::Remove {
            namespace: OFFERED_HTLCS.into(),
            key,
        });
    }
    for key in store.list(UPSTREAM_HTLCS).expect("list") {
        let bytes = store
            .read(UPSTREAM_HTLCS, &key)
            .expect("read")
            .expect("listed");
        let r = UpstreamHtlcEntryRecord::from_bytes(&bytes).expect("a forwarded HTLC record");
        node.upstream.insert((r.channel_id, r.htlc_id), r.upstream);
        ops.push(WriteOp::Remove {
            namespace: UPSTREAM_HTLCS.into(),
            key,
        });
    }
    let payload = node.to_bytes().expect("encodes")[envelope::HEADER_LEN..].to_vec();
    ops.push(WriteOp::Put {
        namespace: NODES.into(),
        key: first,
        value: envelope::encode_with_versions(RecordKind::Node, 5, 3, &payload).expect("small"),
    });
    store.write_batch(&ops).expect("written");
}

/// Every node record holds no HTLC (they are records of their own), and every HTLC record
/// reads back under its key. Returns how many offered HTLCs the store holds.
fn check_htlc_records(store: &dyn Store) -> usize {
    for key in store.list(NODES).expect("list") {
        let bytes = store.read(NODES, &key).expect("read").expect("listed");
        let node = NodeRecord::from_bytes(&bytes).expect("a node record");
        assert!(
            node.offered.is_empty() && node.upstream.is_empty(),
            "node record {key} holds HTLCs"
        );
    }
    let offered = store.list(OFFERED_HTLCS).expect("list");
    for key in &offered {
        let bytes = store
            .read(OFFERED_HTLCS, key)
            .expect("read")
            .expect("listed");
        let r = OfferedHtlcEntryRecord::from_bytes(&bytes).expect("an offered HTLC record");
        assert_eq!(
            *key,
            shard_engine::durable::htlc_key(&r.channel_id, r.htlc_id)
        );
    }
    for key in store.list(UPSTREAM_HTLCS).expect("list") {
        let bytes = store
            .read(UPSTREAM_HTLCS, &key)
            .expect("read")
            .expect("listed");
        let r = UpstreamHtlcEntryRecord::from_bytes(&bytes).expect("a forwarded HTLC record");
        assert_eq!(
            key,
            shard_engine::durable::htlc_key(&r.channel_id, r.htlc_id)
        );
    }
    offered.len()
}

fn restart(from: usize, to: usize) {
    restart_with(from, to, false)
}

/// [`restart`]; `as_format_5`: at every stop the store is rewritten as a format-5 build
/// left it (HTLCs in node records), and the reopened engine takes it from there.
fn restart_with(from: usize, to: usize, as_format_5: bool) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = open(from, &store);
    let mut net = Net::new(Threaded { engine }, PEERS);
    let specs: Vec<(usize, bool)> = (0..PEERS)
        .map(|i| (i, false))
        .chain((0..PEERS).step_by(3).map(|i| (i, true)))
        .collect();
    net.open_channels(&specs);
    let initial = net.balances();
    let mut rng = SimRng::new(from as u64 * 31 + to as u64);
    net.start_random_payments(&mut rng, 6, MIX);
    net.run();
    net.settle();
    let mut in_flight = 0;
    let mut offered_records = 0;
    // Stop part-way at several depths; alternate the shard counts.
    for (k, rounds) in [1usize, 2, 3, 4, 5, 6].into_iter().enumerate() {
        let shards = if k % 2 == 0 { to } else { from };
        let crash = k % 2 == 0;
        let (htlcs, records) = stop_and_reopen(
            &mut net,
            &store,
            shards,
            &mut rng,
            rounds,
            crash,
            as_format_5,
        );
        in_flight += htlcs;
        offered_records += records;
    }
    assert!(
        offered_records > 0,
        "{from} -> {to}: offered HTLCs were stored at a stop"
    );
    net.start_random_payments(&mut rng, 6, MIX);
    net.run();
    net.settle();
    let errors = net.check(&initial);
    assert!(errors.is_empty(), "{from} -> {to} shards: {errors:#?}");
    assert!(
        in_flight > 0,
        "{from} -> {to}: HTLCs were in flight at a stop"
    );
    let sent = net
        .payments
        .values()
        .filter(|p| p.outcomes == [true])
        .count();
    eprintln!(
        "{from} -> {to} shards: {} payments, {sent} sent, {in_flight} htlcs in flight at stops",
        net.payments.len()
    );
    assert!(sent > 5, "payments went through");
    let report = net.hub.engine.shutdown(Duration::from_secs(5));
    assert!(report.parked.is_empty());
    // Everything resolved: no HTLC record is left behind.
    check_htlc_records(store.as_ref());
    assert_eq!(
        store.list(OFFERED_HTLCS).expect("list"),
        Vec::<String>::new()
    );
    assert_eq!(
        store.list(UPSTREAM_HTLCS).expect("list"),
        Vec::<String>::new()
    );
}

/// A store whose node records hold the HTLCs in flight (format 5) opens, its HTLCs are
/// written as records of their own by the opening batch, and the payments finish.
#[test]
fn a_format_5_store_with_htlcs_in_its_node_records_upgrades() {
    restart_with(2, 3, true);
}

#[test]
fn restart_1_to_4_shards_with_htlcs_in_flight() {
    restart(1, 4);
}

#[test]
fn restart_4_to_1_shards_with_htlcs_in_flight() {
    restart(4, 1);
}

#[test]
fn restart_3_to_8_shards_with_htlcs_in_flight() {
    restart(3, 8);
}

/// A damaged record refuses the whole open with an error naming it (nothing is dropped or
/// guessed, nothing panics); the intact store still opens.
#[test]
fn open_refuses_a_damaged_record_naming_it() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut net = Net::new(
        Threaded {
            engine: open(2, &store),
        },
        3,
    );
    net.open_channels(&[(0, false), (1, false)]);
    net.hub.engine.drain_events();
    let placeholder = Engine::new(
        engine_config(1),
        support::secret(b"placeholder"),
        [0; 32],
        100,
        support::genesis(),
    );
    std::mem::replace(&mut net.hub.engine, placeholder).abort();
    let key = store
        .list(shard_engine::durable::CHANNELS)
        .expect("list")
        .into_iter()
        .next()
        .expect("a channel record");
    let good = store
        .read(shard_engine::durable::CHANNELS, &key)
        .expect("read")
        .expect("present");
    let mut rng = SimRng::new(5);
    for case in 0..20 {
        let mut bad = good.clone();
        match case % 3 {
            0 => {
                let i = rng.below(bad.len());
                bad[i] ^= 1 << rng.below(8);
            }
            1 => bad.truncate(rng.below(bad.len())),
            _ => bad.extend_from_slice(&[0xab; 3]),
        }
        store
            .write(shard_engine::durable::CHANNELS, &key, &bad)
            .expect("write");
        let config = EngineConfig {
            store: Some(store.clone()),
            ..engine_config(2)
        };
        match Engine::open(config, hub_secret(), hub_seed(), 100, support::genesis()) {
            Err(shard_engine::EngineError::Record {
                namespace,
                key: k,
                error,
            }) => {
                assert_eq!(namespace, shard_engine::durable::CHANNELS, "case {case}");
                assert_eq!(k, key, "case {case}: {error}");
            }
            Err(other) => panic!("case {case}: {other}"),
            Ok(_) => panic!("case {case}: a damaged record was accepted"),
        }
    }
    store
        .write(shard_engine::durable::CHANNELS, &key, &good)
        .expect("write");
    let engine = open(3, &store);
    assert_eq!(engine.list_channels().expect("list").len(), 2);
}
