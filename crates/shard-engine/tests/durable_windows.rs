//! The two windows between shards that a restart must close, made to happen on purpose: a
//! store that refuses one shard's commits stops that shard exactly there (a shard whose
//! commit fails releases nothing), then the engine is aborted and reopened.
//!
//! * A forward committed upstream (shard A) that the downstream shard (B) never committed:
//!   the downstream peer never saw it, so the restart fails it back upstream.
//! * A result committed downstream (B, which removed its offered HTLC) that the upstream
//!   shard (A) never applied: the restart applies it from its resolution record, so the
//!   preimage is not lost.

use lnshard_testkit as support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use shard_engine::durable::{OFFERED_HTLCS, RESOLUTIONS, UPSTREAM_HTLCS};
use shard_engine::store::{MemoryStore, Store, StoreError, WriteOp};
use shard_engine::{Engine, EngineConfig};
use support::{engine_config, hub_secret, hub_seed, Net, Threaded, Who};

/// Which write a [`Gate`] refuses.
type Refusal = Box<dyn Fn(&WriteOp) -> bool + Send>;

/// A store that, once armed, refuses every batch holding a write it is told to refuse.
#[derive(Default)]
struct Gate {
    inner: MemoryStore,
    refuse: Mutex<Option<Refusal>>,
    refused: AtomicU64,
}

impl Store for Gate {
    fn read(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.read(namespace, key)
    }
    fn write_batch(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        if let Some(refuse) = self.refuse.lock().as_ref() {
            if batch.iter().any(refuse) {
                self.refused.fetch_add(1, Ordering::SeqCst);
                return Err(StoreError::Io {
                    context: "test gate refuses the batch".into(),
                    source: std::io::Error::other("refused"),
                });
            }
        }
        self.inner.write_batch(batch)
    }
    fn list(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(namespace)
    }
}

const SHARDS: usize = 2;
const PEERS: usize = 6;

fn open(store: &Arc<Gate>) -> Engine {
    let store: Arc<dyn Store> = store.clone();
    let config = EngineConfig {
        store: Some(store),
        ..engine_config(SHARDS)
    };
    Engine::open(config, hub_secret(), hub_seed(), 100, support::genesis()).expect("open")
}

/// Lets the engine and the peers exchange messages until `reached` holds, then a while
/// longer (a stopped shard never becomes idle, so this cannot wait for quiescence). Waits on
/// the condition, not on a fixed time: a loaded machine may take long to get there.
fn exchange_until(net: &mut Net<Threaded>, reached: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !reached() {
        assert!(
            std::time::Instant::now() < deadline,
            "the refused commit never came"
        );
        net.deliver_once();
        std::thread::sleep(Duration::from_millis(2));
    }
    for _ in 0..20 {
        net.deliver_once();
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Aborts the hub and reopens it on the same store, ungated; reconnects; runs to the end.
fn crash_and_reopen(net: &mut Net<Threaded>, store: &Arc<Gate>) {
    net.cut_all_for_crash();
    let placeholder = Engine::new(
        engine_config(1),
        support::secret(b"placeholder"),
        [0; 32],
        100,
        support::genesis(),
    );
    std::mem::replace(&mut net.hub.engine, placeholder).abort();
    *store.refuse.lock() = None;
    drop(std::mem::replace(&mut net.hub.engine, open(store)));
    net.reconnect_all();
    net.run();
    net.settle();
}

/// A network whose peer `a` sits on shard 0 and `b` on shard 1, with a channel each.
fn setup(store: &Arc<Gate>) -> (Net<Threaded>, usize, usize) {
    let mut net = Net::new(
        Threaded {
            engine: open(store),
        },
        PEERS,
    );
    net.open_channels(&(0..PEERS).map(|i| (i, false)).collect::<Vec<_>>());
    let on = |net: &Net<Threaded>, shard: usize| {
        (0..net.channels.len())
            .find(|&c| net.hub.engine.shard_of(&net.peer_id(net.channels[c].peer)) == shard)
            .expect("a peer on each shard")
    };
    let (a, b) = (on(&net, 0), on(&net, 1));
    (net, a, b)
}

#[test]
fn forward_never_committed_downstream_fails_back_upstream_after_restart() {
    let store = Arc::new(Gate::default());
    let (mut net, cin, cout) = setup(&store);
    let initial = net.balances();
    let (pa, pb) = (net.channels[cin].peer, net.channels[cout].peer);
    // The downstream shard's commit of the HTLC it offers (the only HTLC this test offers).
    *store.refuse.lock() = Some(Box::new(
        |op| matches!(op, WriteOp::Put { namespace, .. } if namespace == OFFERED_HTLCS),
    ));
    let id = net.start_payment(
        Who::Peer(pa),
        Who::Peer(pb),
        Some(cin),
        Some(cout),
        5_000_000,
        true,
    );
    exchange_until(&mut net, || store.refused.load(Ordering::SeqCst) > 0);
    crash_and_reopen(&mut net, &store);
    assert_eq!(
        net.payments[&id].outcomes,
        vec![false],
        "failed back upstream"
    );
    let errors = net.check(&initial);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn result_committed_downstream_but_not_upstream_is_applied_after_restart() {
    let store = Arc::new(Gate::default());
    let (mut net, cin, cout) = setup(&store);
    let initial = net.balances();
    let (pa, pb) = (net.channels[cin].peer, net.channels[cout].peer);
    let id = net.start_payment(
        Who::Peer(pa),
        Who::Peer(pb),
        Some(cin),
        Some(cout),
        5_000_000,
        true,
    );
    net.run();
    // The payee claims; the upstream shard cannot commit what follows.
    // The upstream shard's commit that answers the forwarded HTLC (deleting its record).
    *store.refuse.lock() = Some(Box::new(
        |op| matches!(op, WriteOp::Remove { namespace, .. } if namespace == UPSTREAM_HTLCS),
    ));
    net.claim_pending();
    exchange_until(&mut net, || {
        store.refused.load(Ordering::SeqCst) > 0
            && store.list(RESOLUTIONS).map_or(0, |r| r.len()) == 1
    });
    assert_eq!(
        store.list(RESOLUTIONS).expect("list").len(),
        1,
        "the downstream shard recorded the result it handed on"
    );
    crash_and_reopen(&mut net, &store);
    assert!(store.list(RESOLUTIONS).expect("list").is_empty());
    assert_eq!(net.payments[&id].outcomes, vec![true], "settled upstream");
    let errors = net.check(&initial);
    assert!(errors.is_empty(), "{errors:#?}");
}
