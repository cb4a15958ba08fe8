//! No stored byte of a channel opened under the current record format holds one of its secret
//! keys: the engine on 2 shards (so forwards and their resolutions cross shards and are
//! stored) writes every record through a store that keeps a copy of every value ever written,
//! and each channel's six secrets (re-derived from the node seed, the peer and the channel's
//! key index), the node secret and the seed are searched for in all of them.

use lnshard_testkit as support;

use std::sync::Arc;

use parking_lot::Mutex;
use shard_engine::lightning_core::bitcoin::hashes::{sha256, Hash};
use shard_engine::lightning_core::channel::derive_peer_channel_keys;
use shard_engine::lightning_core::secp256k1::Secp256k1;
use shard_engine::lightning_core::transactions::scripts::funding_output;
use shard_engine::sim::SimRng;
use shard_engine::store::{MemoryStore, Store, StoreError, WriteOp};
use shard_engine::{Engine, EngineConfig, NodeApi};
use support::{engine_config, hub_secret, hub_seed, Net, PaymentMix, Threaded};

/// A MemoryStore that keeps every value ever written, with its namespace.
#[derive(Default)]
struct Recording {
    inner: MemoryStore,
    written: Mutex<Vec<(String, Vec<u8>)>>,
}

impl Store for Recording {
    fn read(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.read(namespace, key)
    }
    fn write_batch(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        let mut written = self.written.lock();
        for op in batch {
            if let WriteOp::Put {
                namespace, value, ..
            } = op
            {
                written.push((namespace.clone(), value.clone()));
            }
        }
        drop(written);
        self.inner.write_batch(batch)
    }
    fn list(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(namespace)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_stored_value_holds_a_channel_secret_the_node_secret_or_the_seed() {
    let store = Arc::new(Recording::default());
    let dyn_store: Arc<dyn Store> = store.clone();
    let config = EngineConfig {
        store: Some(dyn_store),
        ..engine_config(2)
    };
    let engine =
        Engine::open(config, hub_secret(), hub_seed(), 100, support::genesis()).expect("open");
    let peers = 8;
    let mut net = Net::new(Threaded { engine }, peers);
    // Peers open to the hub and the hub opens to some: channels of both funders.
    let specs: Vec<(usize, bool)> = (0..peers)
        .map(|i| (i, false))
        .chain((0..peers).step_by(2).map(|i| (i, true)))
        .collect();
    net.open_channels(&specs);
    let mut rng = SimRng::new(13);
    let mix = PaymentMix {
        extra_msat: 20_000_000,
        from_hub_every: Some(3),
        fail_one_in: Some(4),
    };
    for _ in 0..4 {
        net.start_random_payments(&mut rng, 8, mix);
        net.run();
        net.settle();
    }
    let engine = &net.hub.engine;
    let stats = engine.shard_stats();
    assert!(
        stats.iter().map(|s| s.forwards_out).sum::<u64>() > 0
            && stats.iter().map(|s| s.resolutions_out).sum::<u64>() > 0,
        "work crossed shards (so resolutions were stored): {stats:?}"
    );
    let written = store.written.lock().clone();
    let namespaces: std::collections::BTreeSet<&str> =
        written.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        namespaces.contains(shard_engine::durable::RESOLUTIONS),
        "resolutions were stored: {namespaces:?}"
    );

    let mut secrets: Vec<(String, [u8; 32])> = vec![
        ("node secret".into(), hub_secret().secret_bytes()),
        ("node seed".into(), hub_seed()),
    ];
    let channels = engine.list_channels().expect("channels");
    assert!(channels.len() >= peers, "{} channels", channels.len());
    let hub_id = engine.node_id();
    let secp = Secp256k1::new();
    for details in &channels {
        let peer_id = details.counterparty_node_id;
        let channel = engine
            .channel(peer_id, details.channel_id)
            .expect("engine")
            .expect("the channel");
        let index = channel
            .key_index()
            .expect("a channel opened under the current format stores a key index");
        let keys = derive_peer_channel_keys(&hub_seed(), &peer_id, index);
        // They are the channel's own keys: with the peer's (derived the same way from its
        // seed), they make the channel's funding output.
        let p = (0..peers)
            .find(|&i| net.peer_id(i) == peer_id)
            .expect("a peer of the network");
        let theirs_channel = net.peers[p]
            .core
            .channel(&hub_id, &details.channel_id)
            .expect("the peer's side");
        let peer_seed = sha256::Hash::hash(format!("peer-seed-{p}").as_bytes()).to_byte_array();
        let theirs = derive_peer_channel_keys(
            &peer_seed,
            &hub_id,
            theirs_channel.key_index().expect("derived"),
        );
        let expected = funding_output(
            &keys.public_keys(&secp).funding_pubkey,
            &theirs.public_keys(&secp).funding_pubkey,
            channel.funding_satoshis(),
        )
        .script_pubkey;
        assert_eq!(channel.funding_script_pubkey(), expected, "re-derived keys");
        let id = details.channel_id;
        secrets.push((format!("{id} funding"), keys.funding_key.secret_bytes()));
        secrets.push((
            format!("{id} revocation base"),
            keys.revocation_base_key.secret_bytes(),
        ));
        secrets.push((
            format!("{id} payment base"),
            keys.payment_base_key.secret_bytes(),
        ));
        secrets.push((
            format!("{id} delayed payment base"),
            keys.delayed_payment_base_key.secret_bytes(),
        ));
        secrets.push((format!("{id} htlc base"), keys.htlc_base_key.secret_bytes()));
        secrets.push((format!("{id} commitment seed"), keys.commitment_seed));
    }
    let mut found = Vec::new();
    for (namespace, value) in &written {
        for (what, secret) in &secrets {
            if contains(value, secret) {
                found.push(format!("{what} in a {namespace} record"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "secrets in {} stored values: {found:?}",
        written.len()
    );
    assert!(written.len() > 100, "{} values searched", written.len());
}
