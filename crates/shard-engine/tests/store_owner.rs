//! The store records the node it belongs to: an engine started with another node key
//! refuses it with an error naming both node ids (and changes nothing in it), while a store
//! written before the id was recorded opens and gets it recorded.

use lnshard_testkit as support;

use std::collections::BTreeMap;
use std::sync::Arc;

use shard_engine::durable::{CHANNELS, NODE, NODES, NODE_ID, RESOLUTIONS};
use shard_engine::lightning_core::persist::PersistError;
use shard_engine::lightning_core::secp256k1::{PublicKey, Secp256k1};
use shard_engine::store::{MemoryStore, Store};
use shard_engine::{Engine, EngineConfig, EngineError, NodeApi, StopReason};
use support::{engine_config, hub_secret, hub_seed, Net, Threaded};

fn config(store: &Arc<dyn Store>) -> EngineConfig {
    EngineConfig {
        store: Some(store.clone()),
        ..engine_config(2)
    }
}

fn hub_id() -> PublicKey {
    PublicKey::from_secret_key(&Secp256k1::signing_only(), &hub_secret())
}

/// Every record of the store.
fn contents(store: &Arc<dyn Store>) -> BTreeMap<(String, String), Vec<u8>> {
    let mut all = BTreeMap::new();
    for ns in [CHANNELS, NODES, RESOLUTIONS, NODE] {
        for key in store.list(ns).expect("list") {
            let value = store.read(ns, &key).expect("read").expect("listed");
            all.insert((ns.to_owned(), key), value);
        }
    }
    all
}

/// A store holding the hub's node with two channels (the hub stopped as in a crash).
fn written_store() -> Arc<dyn Store> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = Engine::open(
        config(&store),
        hub_secret(),
        hub_seed(),
        100,
        support::genesis(),
    )
    .expect("open");
    let mut net = Net::new(Threaded { engine }, 2);
    net.open_channels(&[(0, false), (1, true)]);
    let placeholder = Engine::new(
        engine_config(1),
        support::secret(b"placeholder"),
        [0; 32],
        100,
        support::genesis(),
    );
    std::mem::replace(&mut net.hub.engine, placeholder).abort();
    store
}

#[test]
fn a_store_records_its_node_and_refuses_another() {
    let store = written_store();
    assert_eq!(
        store.read(NODE, NODE_ID).expect("read"),
        Some(hub_id().serialize().to_vec()),
        "the node id is recorded"
    );
    let before = contents(&store);
    let other = support::secret(b"another node");
    let other_id = PublicKey::from_secret_key(&Secp256k1::signing_only(), &other);
    let refused = Engine::open(config(&store), other, hub_seed(), 100, support::genesis())
        .map(|_| ())
        .expect_err("another node's store was opened");
    assert_eq!(
        refused,
        EngineError::WrongNode {
            stored: Box::new(hub_id()),
            ours: Box::new(other_id),
        }
    );
    let text = refused.to_string();
    assert!(text.contains(&hub_id().to_string()), "{text}");
    assert!(text.contains(&other_id.to_string()), "{text}");
    assert_eq!(contents(&store), before, "the refused store is unchanged");

    // Engine::new does not take it over either: it starts stopped, writing nothing.
    let engine = Engine::new(config(&store), other, hub_seed(), 100, support::genesis());
    match engine.health() {
        Err(EngineError::Stopped {
            reason: StopReason::Start { error },
        }) => assert_eq!(
            *error,
            EngineError::WrongNode {
                stored: Box::new(hub_id()),
                ours: Box::new(other_id),
            }
        ),
        other => panic!("Engine::new on another node's store: {other:?}"),
    }
    assert!(matches!(
        engine.list_channels(),
        Err(EngineError::Stopped { .. })
    ));
    drop(engine);
    assert_eq!(contents(&store), before, "the store is unchanged");

    // Its own node opens it with both channels.
    let engine = Engine::open(
        config(&store),
        hub_secret(),
        hub_seed(),
        100,
        support::genesis(),
    )
    .expect("open");
    assert_eq!(engine.list_channels().expect("list").len(), 2);
}

#[test]
fn a_store_without_a_node_id_opens_and_gets_it_recorded() {
    let store = written_store();
    // As written before the node id was recorded.
    store.remove(NODE, NODE_ID).expect("remove");
    let engine = Engine::open(
        config(&store),
        hub_secret(),
        hub_seed(),
        100,
        support::genesis(),
    )
    .expect("open");
    assert_eq!(engine.list_channels().expect("list").len(), 2);
    assert_eq!(
        store.read(NODE, NODE_ID).expect("read"),
        Some(hub_id().serialize().to_vec())
    );
    drop(engine);

    // A new node on an empty store records itself at once.
    let empty: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = Engine::new(
        config(&empty),
        hub_secret(),
        hub_seed(),
        100,
        support::genesis(),
    );
    assert_eq!(engine.health(), Ok(()));
    assert_eq!(
        empty.read(NODE, NODE_ID).expect("read"),
        Some(hub_id().serialize().to_vec())
    );
}

#[test]
fn a_damaged_node_id_is_refused_as_a_record_error() {
    let store = written_store();
    store.write(NODE, NODE_ID, &[2; 20]).expect("write");
    match Engine::open(
        config(&store),
        hub_secret(),
        hub_seed(),
        100,
        support::genesis(),
    ) {
        Err(EngineError::Record {
            namespace,
            key,
            error,
        }) => {
            assert_eq!((namespace.as_str(), key.as_str()), (NODE, NODE_ID));
            assert_eq!(*error, PersistError::BadNodeId { len: 20 });
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a damaged node id was accepted"),
    }
}
