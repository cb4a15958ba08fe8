//! Completed payment ids are stored one record each (`completed_payments/`), written by the
//! commit that completed the payment and deleted by the one that forgot it: a commit's
//! size does not grow with the payments of the retention window, the node record keeps its
//! size, and a restart (with the same or another shard count) still refuses the ids until
//! their window passes. Node records of the first format-5 build, which held the ids in a
//! field, still read and are rewritten as separate records.

use lnshard_testkit as support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightning_core::node::{ApiError, Event, PaymentId, Route, RouteHop};
use lightning_core::persist::{CompletedPaymentRecord, NodeRecord};
use lightning_core::secp256k1::{PublicKey, Secp256k1};
use lightning_core::types::{PaymentHash, PaymentSecret, ShortChannelId};
use shard_engine::durable::{completed_payment_key, node_key, COMPLETED_PAYMENTS, NODES};
use shard_engine::store::{MemoryStore, Store, StoreError, WriteOp};
use shard_engine::{Engine, EngineConfig, EngineError, NodeApi};
use support::{engine_config, hub_secret, hub_seed, Net, Threaded, Who};

/// The retention window of these tests (blocks).
const WINDOW: u32 = 4;

/// A memory store that keeps every batch written to it.
#[derive(Default)]
struct Recording {
    inner: MemoryStore,
    batches: Mutex<Vec<Vec<WriteOp>>>,
}

impl Store for Recording {
    fn read(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.read(namespace, key)
    }

    fn write_batch(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        self.batches
            .lock()
            .expect("not poisoned")
            .push(batch.to_vec());
        self.inner.write_batch(batch)
    }

    fn list(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(namespace)
    }
}

impl Recording {
    fn take_batches(&self) -> Vec<Vec<WriteOp>> {
        std::mem::take(&mut *self.batches.lock().expect("not poisoned"))
    }
}

fn config(shards: usize, store: &Arc<dyn Store>) -> EngineConfig {
    let mut c = engine_config(shards);
    c.node.payment_id_retention_blocks = WINDOW;
    c.store = Some(store.clone());
    c
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

/// A route whose first hop is no channel of ours: the id is checked (over every shard)
/// before the route, so a used id is refused as such.
fn nowhere() -> Route {
    Route {
        hops: vec![RouteHop {
            node_id: PublicKey::from_secret_key(&Secp256k1::new(), &support::secret(b"nowhere")),
            short_channel_id: ShortChannelId(1),
            fee_msat: 1_000,
            cltv_expiry_delta: 40,
        }],
    }
}

/// What sending with `id` now answers.
fn send_answer(engine: &Engine, id: PaymentId) -> Result<(), ApiError> {
    match engine.send_payment(&nowhere(), PaymentHash([1; 32]), PaymentSecret([2; 32]), id) {
        Ok(()) => Ok(()),
        Err(EngineError::Api(e)) => Err(e),
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

fn recently_used(answer: Result<(), ApiError>) -> bool {
    matches!(answer, Err(ApiError::PaymentIdRecentlyUsed { .. }))
}

/// Restarts the hub of `net` on `store` with `shards` shards.
fn restart(net: &mut Net<Threaded>, store: &Arc<dyn Store>, shards: usize) {
    net.cut_all_for_crash();
    let placeholder = Engine::new(
        engine_config(1),
        support::secret(b"placeholder"),
        [0; 32],
        100,
        support::genesis(),
    );
    let old = std::mem::replace(&mut net.hub.engine, placeholder);
    let report = old.shutdown(Duration::from_secs(5));
    drop(std::mem::replace(&mut net.hub.engine, open(shards, store)));
    net.absorb_hub_events(report.events);
    net.reconnect_all();
    net.run();
}

/// The puts of `namespace` in `batch`: (key, value length).
fn puts<'a>(batch: &'a [WriteOp], namespace: &'a str) -> impl Iterator<Item = (&'a str, usize)> {
    batch.iter().filter_map(move |op| match op {
        WriteOp::Put {
            namespace: ns,
            key,
            value,
        } if ns == namespace => Some((key.as_str(), value.len())),
        _ => None,
    })
}

#[test]
fn each_completion_writes_one_small_record_and_the_node_record_keeps_its_size() {
    const PAYMENTS: usize = 200;
    let recording = Arc::new(Recording::default());
    let store: Arc<dyn Store> = recording.clone();
    let mut net = Net::new(
        Threaded {
            engine: open(2, &store),
        },
        2,
    );
    net.open_channels(&[(0, true), (1, true)]);
    recording.take_batches();

    let mut ids = Vec::new();
    // Per payment: the largest node record written, and the bytes of all its commits.
    let mut node_record_max = Vec::new();
    let mut bytes_per_payment = Vec::new();
    for i in 0..PAYMENTS {
        let id = net.start_payment(Who::Hub, Who::Peer(i % 2), None, Some(i % 2), 10_000, true);
        net.run();
        net.settle();
        assert!(
            net.hub_events
                .iter()
                .any(|e| matches!(e, Event::PaymentSent { payment_id, .. } if *payment_id == id)),
            "payment {i} completed"
        );
        ids.push(id);
        let batches = recording.take_batches();
        let completed: Vec<(&str, usize)> = batches
            .iter()
            .flat_map(|b| puts(b, COMPLETED_PAYMENTS))
            .collect();
        let key = completed_payment_key(&CompletedPaymentRecord {
            payment_id: id,
            completed_height: net.chain.height,
        });
        assert_eq!(
            completed.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            vec![key.as_str()],
            "payment {i}: one completed-payment record, its own"
        );
        assert!(
            completed[0].1 < 80,
            "a small record: {} bytes",
            completed[0].1
        );
        node_record_max.push(
            batches
                .iter()
                .flat_map(|b| puts(b, NODES))
                .map(|(_, len)| len)
                .max()
                .unwrap_or(0),
        );
        // What the node writes beside its channels' state (which is per channel, bounded
        // by its own limits): the node record and the completed ids.
        bytes_per_payment.push(
            batches
                .iter()
                .flat_map(|b| b.iter())
                .map(|op| match op {
                    WriteOp::Put {
                        namespace, value, ..
                    } if namespace == NODES || namespace == COMPLETED_PAYMENTS => value.len(),
                    _ => 0,
                })
                .sum::<usize>(),
        );
    }
    // The node record does not grow with the completed ids (it holds none).
    let early = node_record_max[..20].iter().max().copied().unwrap_or(0);
    let late = node_record_max[PAYMENTS - 20..]
        .iter()
        .max()
        .copied()
        .unwrap_or(0);
    assert!(early > 0, "the node record is written");
    assert!(
        late <= early,
        "node record: {early} bytes for the first payments, {late} for the last"
    );
    // Nor does what a payment's commits write beside the channels' state.
    let early = bytes_per_payment[..20].iter().max().copied().unwrap_or(0);
    let late = bytes_per_payment[PAYMENTS - 20..]
        .iter()
        .max()
        .copied()
        .unwrap_or(0);
    assert!(
        late <= early,
        "node and completed-payment bytes of a payment: {early} at first, {late} after \
         {PAYMENTS}"
    );
    assert_eq!(
        store.list(COMPLETED_PAYMENTS).expect("lists").len(),
        PAYMENTS
    );
    for key in store.list(NODES).expect("lists") {
        let bytes = store.read(NODES, &key).expect("reads").expect("present");
        let record = NodeRecord::from_bytes(&bytes).expect("decodes");
        assert!(record.completed_payments.is_empty(), "{key}");
    }

    // A restart, with the same and another shard count: every id is still refused.
    for shards in [2, 3] {
        restart(&mut net, &store, shards);
        for id in [ids[0], ids[PAYMENTS / 2], ids[PAYMENTS - 1]] {
            assert!(
                recently_used(send_answer(&net.hub.engine, id)),
                "refused after a restart with {shards} shards"
            );
        }
        assert_eq!(
            store.list(COMPLETED_PAYMENTS).expect("lists").len(),
            PAYMENTS,
            "a restart rewrites nothing and loses nothing"
        );
    }

    // Once the window passed, the ids are forgotten and their records deleted.
    net.mine(WINDOW);
    net.run();
    assert!(!recently_used(send_answer(&net.hub.engine, ids[0])));
    assert!(
        store.list(COMPLETED_PAYMENTS).expect("lists").is_empty(),
        "every record of the window deleted"
    );
    restart(&mut net, &store, 2);
    assert!(!recently_used(send_answer(&net.hub.engine, ids[1])));
}

/// A store of the first format-5 build: the completed ids in the node records' field. They
/// are refused after the restart, and the opening batch moves them to records of their own.
#[test]
fn ids_held_by_a_node_record_are_refused_and_moved_to_records_of_their_own() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = open(1, &store);
    engine.shutdown(Duration::from_secs(5));
    let key = node_key(0, 1);
    let bytes = store.read(NODES, &key).expect("reads").expect("written");
    let mut record = NodeRecord::from_bytes(&bytes).expect("decodes");
    let (a, b) = (PaymentId([0xa1; 32]), PaymentId([0xb2; 32]));
    record.completed_payments = [(a, 99), (b, 100)].into_iter().collect();
    store
        .write(NODES, &key, &record.to_bytes().expect("encodes"))
        .expect("writes");
    assert!(store.list(COMPLETED_PAYMENTS).expect("lists").is_empty());

    let engine = open(3, &store);
    for id in [a, b] {
        assert!(recently_used(send_answer(&engine, id)), "{id:?}");
    }
    let keys = store.list(COMPLETED_PAYMENTS).expect("lists");
    let expected: Vec<String> = [(a, 99), (b, 100)]
        .map(|(payment_id, completed_height)| {
            completed_payment_key(&CompletedPaymentRecord {
                payment_id,
                completed_height,
            })
        })
        .into_iter()
        .collect();
    assert_eq!(keys, expected, "written as records of their own");
    for key in store.list(NODES).expect("lists") {
        let bytes = store.read(NODES, &key).expect("reads").expect("present");
        let record = NodeRecord::from_bytes(&bytes).expect("decodes");
        assert!(
            record.completed_payments.is_empty(),
            "{key} rewritten empty"
        );
    }
    engine.shutdown(Duration::from_secs(5));
    // And after one more restart, from the records alone.
    let engine = open(2, &store);
    for id in [a, b] {
        assert!(recently_used(send_answer(&engine, id)), "{id:?}");
    }
    engine.shutdown(Duration::from_secs(5));
}
