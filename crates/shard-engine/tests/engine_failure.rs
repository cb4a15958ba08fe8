//! A store failure or a shard panic stops the whole engine, plainly: every shard stops taking
//! messages, every caller (API calls, peers' bytes, callers already waiting on an answer)
//! gets [`EngineError::Stopped`] naming the cause (the store's own error, or the shard and
//! the panic's message), nothing leaves for a state that is not durable, and a restart on
//! the same store returns every acknowledged state: the payments in flight finish and every
//! balance reconciles.

use lnshard_testkit as support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use shard_engine::lightning_core::types::PaymentPreimage;
use shard_engine::sim::SimRng;
use shard_engine::store::{MemoryStore, Store, StoreError, WriteOp};
use shard_engine::{Engine, EngineConfig, EngineError, NodeApi, StopReason};
use support::{engine_config, hub_secret, hub_seed, Net, PaymentMix, Threaded, Who};

const PEERS: usize = 8;

/// What the next `write_batch` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Writes go through.
    None,
    /// The next batch fails as a full disk would (ENOSPC); later ones go through (space
    /// comes back).
    NoSpaceOnce,
    /// The next batch panics (a bug under the shard's commit).
    PanicOnce,
}

/// A [`MemoryStore`] with injected faults; `inner` is what survives (what a restart reads).
struct FaultyStore {
    inner: Arc<MemoryStore>,
    fault: Mutex<Fault>,
    /// Batches acknowledged.
    written: AtomicU64,
    /// Batches refused or panicked.
    failed: AtomicU64,
}

impl FaultyStore {
    fn new(inner: Arc<MemoryStore>) -> Self {
        FaultyStore {
            inner,
            fault: Mutex::new(Fault::None),
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    fn inject(&self, fault: Fault) {
        *self.fault.lock() = fault;
    }
}

impl Store for FaultyStore {
    fn read(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.read(namespace, key)
    }

    fn write_batch(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        let fault = std::mem::replace(&mut *self.fault.lock(), Fault::None);
        match fault {
            Fault::None => {
                self.inner.write_batch(batch)?;
                self.written.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Fault::NoSpaceOnce => {
                self.failed.fetch_add(1, Ordering::SeqCst);
                Err(StoreError::Io {
                    context: "append to wal.log".into(),
                    source: std::io::Error::from(std::io::ErrorKind::StorageFull),
                })
            }
            Fault::PanicOnce => {
                self.failed.fetch_add(1, Ordering::SeqCst);
                panic!("injected panic under write_batch");
            }
        }
    }

    fn list(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(namespace)
    }
}

fn config(store: Arc<dyn Store>) -> EngineConfig {
    EngineConfig {
        store: Some(store),
        reply_timeout: Duration::from_secs(30),
        ..engine_config(2)
    }
}

fn open(store: Arc<dyn Store>) -> Engine {
    Engine::open(
        config(store),
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
    fail_one_in: None,
};

/// A network of `PEERS` peers around a 2-shard hub on `store`, with channels open and
/// payments having run once.
fn network(store: Arc<dyn Store>) -> (Net<Threaded>, std::collections::BTreeMap<Who, u64>) {
    let engine = open(store);
    let mut net = Net::new(Threaded { engine }, PEERS);
    let specs: Vec<(usize, bool)> = (0..PEERS).map(|i| (i, i % 3 == 0)).collect();
    net.open_channels(&specs);
    let initial = net.balances();
    let mut rng = SimRng::new(12);
    net.start_random_payments(&mut rng, 8, MIX);
    net.run();
    net.settle();
    (net, initial)
}

/// Peers on each shard of the hub (at least one per shard, or the test means nothing).
fn peer_per_shard(net: &Net<Threaded>) -> Vec<usize> {
    let shards = net.hub.engine.shard_count();
    let mut per = Vec::new();
    for s in 0..shards {
        let i = (0..PEERS)
            .find(|&i| net.hub.engine.shard_of(&net.peer_id(i)) == s)
            .unwrap_or_else(|| panic!("no peer on shard {s}"));
        per.push(i);
    }
    per
}

/// Waits until the engine reports a stop.
fn wait_stopped(engine: &Engine) -> EngineError {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Err(e) = engine.health() {
            return e;
        }
        assert!(Instant::now() < deadline, "the engine never stopped");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Every entry point of a stopped engine returns exactly `stopped`, on every shard.
fn every_call_is_refused(net: &Net<Threaded>, stopped: &EngineError) {
    let engine = &net.hub.engine;
    assert_eq!(engine.health().as_ref(), Err(stopped));
    assert_eq!(engine.list_channels().as_ref(), Err(stopped));
    for i in peer_per_shard(net) {
        let id = net.peer_id(i);
        // A new connection of the peer, and bytes on it: no shard takes them.
        let (mut link, end) = support::Link::open(
            1_000 + i as u64,
            &support::peer_secret(i),
            &support::hub_secret(),
        );
        let ping = link.seal(&[0u8, 18, 0, 4, 0, 0]);
        assert_eq!(
            engine.connection_ciphertext(end.conn, id, ping),
            Err(stopped.clone()),
            "peer {i}"
        );
        assert_eq!(
            engine.attach_connection(end.conn, id, end.transport, Box::new(end.writer)),
            Err(stopped.clone()),
            "peer {i}"
        );
        let channel = net.channels.iter().find(|c| c.peer == i).expect("channel");
        assert_eq!(
            engine.channel(id, channel.channel_id).map(|_| ()),
            Err(stopped.clone())
        );
    }
    assert_eq!(
        engine
            .create_inbound_payment(PaymentPreimage([9; 32]), Some(1000))
            .map(|_| ()),
        Err(stopped.clone())
    );
    assert_eq!(
        engine.best_block_updated(200, support::genesis()),
        Err(stopped.clone())
    );
    assert_eq!(engine.timer_tick(1), Err(stopped.clone()));
    assert_eq!(engine.new_inbound_connection(77), Err(stopped.clone()));
    assert!(
        engine.is_idle(),
        "a stopped engine has nothing it will still do"
    );
}

/// The stopped hub is shut down, the peers' connections drop, and the hub starts again on
/// `store`; the network then finishes everything and reconciles.
fn restart_and_reconcile(
    net: &mut Net<Threaded>,
    store: Arc<dyn Store>,
    initial: &std::collections::BTreeMap<Who, u64>,
) {
    // Whatever the stopped hub released reaches its peers; what they send it is lost.
    net.rounds(2);
    net.cut_all_for_crash();
    let mut restored = Threaded {
        engine: open(store),
    };
    let errors = net.peers_ahead_of(&mut restored);
    assert!(errors.is_empty(), "{errors:#?}");
    let old = std::mem::replace(&mut net.hub, restored);
    let report = old.engine.shutdown(Duration::from_secs(1));
    net.absorb_hub_events(report.events);
    net.hub_stopped = None;
    net.reconnect_all();
    net.run();
    net.settle();
    let mut rng = SimRng::new(99);
    net.start_random_payments(&mut rng, 8, MIX);
    net.run();
    net.settle();
    let errors = net.check(initial);
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(net.hub.engine.health(), Ok(()));
}

#[test]
fn a_failed_commit_stops_every_shard_with_the_store_error_and_a_restart_recovers() {
    let inner = Arc::new(MemoryStore::new());
    let faulty = Arc::new(FaultyStore::new(inner.clone()));
    let (mut net, initial) = network(faulty.clone());
    assert_eq!(net.hub.engine.health(), Ok(()));

    // Payments in flight; the next commit, whichever shard makes it, fails with ENOSPC and
    // the disk has room again right after.
    let mut rng = SimRng::new(7);
    net.start_random_payments(&mut rng, 8, MIX);
    net.rounds(1);
    faulty.inject(Fault::NoSpaceOnce);
    let mut rounds = 0;
    while net.hub.engine.health().is_ok() {
        net.rounds(1);
        rounds += 1;
        assert!(rounds < 1000, "no commit happened");
    }
    let stopped = wait_stopped(&net.hub.engine);
    assert_eq!(faulty.failed.load(Ordering::SeqCst), 1);
    let EngineError::Stopped {
        reason: StopReason::CommitFailed { shard, error },
    } = &stopped
    else {
        panic!("not a commit failure: {stopped:?}");
    };
    // The store's own error, typed, down to the OS error.
    let EngineError::Store(store_error) = error.as_ref() else {
        panic!("not the store's error: {error:?}");
    };
    let StoreError::Io { source, .. } = store_error.as_ref() else {
        panic!("not an io error: {store_error:?}");
    };
    assert_eq!(source.kind(), std::io::ErrorKind::StorageFull);
    let text = stopped.to_string();
    assert!(text.contains(&format!("shard {shard}")), "{text}");
    assert!(text.contains("append to wal.log"), "{text}");
    let chained = std::error::Error::source(&stopped).expect("source");
    assert_eq!(chained.to_string(), error.to_string());

    // The other shard stopped too (the disk came back, yet no shard writes or serves).
    let written = faulty.written.load(Ordering::SeqCst);
    every_call_is_refused(&net, &stopped);
    net.rounds(3);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        faulty.written.load(Ordering::SeqCst),
        written,
        "a shard of a stopped engine committed"
    );
    if let Some(e) = &net.hub_stopped {
        assert_eq!(e, &stopped);
    }
    eprintln!("stopped after {rounds} rounds: {stopped}");

    restart_and_reconcile(&mut net, inner, &initial);
}

#[test]
fn a_panicking_shard_stops_the_engine_and_wakes_its_waiting_caller() {
    let inner = Arc::new(MemoryStore::new());
    let faulty = Arc::new(FaultyStore::new(inner.clone()));
    let (mut net, initial) = network(faulty.clone());
    let mut rng = SimRng::new(3);
    net.start_random_payments(&mut rng, 8, MIX);
    net.rounds(1);

    // The call's own commit panics on shard 0 (a channel opened to a peer of shard 0): its
    // caller, waiting for the answer, wakes with the reason at once rather than after
    // reply_timeout (30 s).
    let peer = net.peer_id(peer_per_shard(&net)[0]);
    faulty.inject(Fault::PanicOnce);
    let started = Instant::now();
    let result = net.hub.engine.create_channel(peer, 1_000_000, 0, 77, 2500);
    let waited = started.elapsed();
    let stopped = wait_stopped(&net.hub.engine);
    assert_eq!(result.map(|_| ()), Err(stopped.clone()));
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    match &stopped {
        EngineError::Stopped {
            reason: StopReason::Panicked { shard, message },
        } => {
            assert_eq!(*shard, 0);
            assert!(message.contains("injected panic"), "{message}");
        }
        other => panic!("not a panic stop: {other:?}"),
    }
    assert!(
        stopped.to_string().contains("shard 0 panicked"),
        "{stopped}"
    );
    every_call_is_refused(&net, &stopped);

    restart_and_reconcile(&mut net, inner, &initial);
}
