//! A network of `NodeCore`s for functional tests: every message travels as encoded bytes,
//! forwards and resolutions are routed like the shard engine would, and a fake chain mines
//! what the nodes broadcast.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use lightning_core::bitcoin::block::{Header, Version as BlockVersion};
use lightning_core::bitcoin::hashes::{sha256, Hash};
use lightning_core::bitcoin::{
    Amount, BlockHash, CompactTarget, EcdsaSighashType, ScriptBuf, Transaction, TxMerkleNode, Txid,
};
use lightning_core::node::{
    ChannelDetails, Event, NodeConfig, NodeCore, Output, PaymentId, Route, RouteHop,
};
use lightning_core::persist::{
    restore_monitor_with_revoked, ChannelRecord, MonitorRecord, MonitorRevokedRecord, NodeRecord,
    OfferedHtlcEntryRecord, UpstreamHtlcEntryRecord,
};
use lightning_core::secp256k1::{
    ecdsa::Signature, Message as SecpMessage, PublicKey, Secp256k1, SecretKey,
};
use lightning_core::types::{ChannelId, PaymentPreimage, ShortChannelId};

/// One node of the test network.
pub struct TestNode {
    pub core: NodeCore,
    pub events: Vec<Event>,
    /// Every message this node sent, encoded, in order (for determinism checks).
    pub sent: Vec<(PublicKey, Vec<u8>)>,
}

/// A fake chain: blocks with real headers linking by hash; mines the mempool on demand.
pub struct Chain {
    pub height: u32,
    pub tip: BlockHash,
    pub mempool: Vec<Transaction>,
    pub confirmed: BTreeMap<Txid, (u32, Transaction)>,
}

impl Chain {
    /// Checks `tx` with libbitcoinconsensus if every output it spends is one this chain
    /// confirmed; panics naming the input that fails.
    fn check_consensus(&self, tx: &Transaction) {
        let prevout = |op: &lightning_core::bitcoin::OutPoint| {
            self.confirmed
                .get(&op.txid)
                .and_then(|(_, t)| t.output.get(op.vout as usize).cloned())
        };
        if tx
            .input
            .iter()
            .any(|i| prevout(&i.previous_output).is_none())
        {
            return;
        }
        // P2SH, DERSIG, NULLDUMMY, CHECKLOCKTIMEVERIFY, CHECKSEQUENCEVERIFY, WITNESS.
        let flags: u32 = 1 | (1 << 2) | (1 << 4) | (1 << 9) | (1 << 10) | (1 << 11);
        tx.verify_with_flags(prevout, flags)
            .unwrap_or_else(|e| panic!("consensus refuses {}: {e:?}", tx.compute_txid()));
    }

    fn new() -> Self {
        Chain {
            height: 100,
            tip: BlockHash::all_zeros(),
            mempool: Vec::new(),
            confirmed: BTreeMap::new(),
        }
    }
}

/// The network: nodes, connections, in-flight messages and the chain.
pub struct Net {
    pub nodes: Vec<TestNode>,
    pub connected: BTreeSet<(usize, usize)>,
    /// (from, to, bytes) not yet delivered.
    pub inflight: VecDeque<(usize, usize, Vec<u8>)>,
    /// Drop every message instead of delivering it (to simulate a connection cut).
    pub chain: Chain,
    pub seed_base: u8,
    /// Each node's store (from [`Net::enable_persistence`], called by the constructor).
    pub stores: Vec<Option<MemStore>>,
    /// After every commit, check that the store equals a full snapshot of the node (proves
    /// the dirty tracking misses nothing).
    pub check_dirty: bool,
}

/// A node's stored records, as bytes, the way a key/value store holds them.
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    pub channels: BTreeMap<(PublicKey, ChannelId), Vec<u8>>,
    pub node: Option<Vec<u8>>,
    /// Monitor snapshots, by channel.
    pub monitors: BTreeMap<ChannelId, Vec<u8>>,
    /// Chunks of monitors' revoked HTLCs, by (channel, chunk).
    pub monitor_revoked: BTreeMap<(ChannelId, u64), Vec<u8>>,
    /// The HTLCs we offered, one record each, by (channel, htlc id) (not in `node`).
    pub offered: BTreeMap<(ChannelId, u64), Vec<u8>>,
    /// The HTLCs we forwarded, one record each, by (incoming channel, htlc id).
    pub upstream: BTreeMap<(ChannelId, u64), Vec<u8>>,
    /// Group commits made (one per drain of the node's outputs that changed something).
    pub commits: u64,
    /// Records written.
    pub writes: u64,
}

/// Every HTLC `core` offered and forwarded, as the records the engine stores.
#[allow(clippy::type_complexity)]
fn htlc_records(
    core: &NodeCore,
) -> (
    BTreeMap<(ChannelId, u64), Vec<u8>>,
    BTreeMap<(ChannelId, u64), Vec<u8>>,
) {
    let whole = core.node_record();
    let offered = whole
        .offered
        .keys()
        .filter_map(|&(c, h)| core.offered_entry(c, h))
        .map(|r| ((r.channel_id, r.htlc_id), r.to_bytes().expect("encodes")))
        .collect();
    let upstream = whole
        .upstream
        .keys()
        .filter_map(|&(c, h)| core.upstream_entry(c, h))
        .map(|r| ((r.channel_id, r.htlc_id), r.to_bytes().expect("encodes")))
        .collect();
    (offered, upstream)
}

/// Stores a monitor's snapshot and revoked chunks the way the engine does.
fn store_monitor(
    store: &mut MemStore,
    record: Option<&MonitorRecord>,
    chunks: &[MonitorRevokedRecord],
) {
    if let Some(record) = record {
        store
            .monitors
            .insert(record.channel_id, record.to_bytes().expect("encodes"));
    }
    for chunk in chunks {
        store.monitor_revoked.insert(
            (chunk.channel_id, chunk.chunk),
            chunk.to_bytes().expect("encodes"),
        );
    }
}

pub fn node_seed(seed_base: u8, i: usize) -> [u8; 32] {
    sha256::Hash::hash(&[seed_base, i as u8, 2]).to_byte_array()
}

pub fn node_secret(seed_base: u8, i: usize) -> SecretKey {
    SecretKey::from_slice(&sha256::Hash::hash(&[seed_base, i as u8, 1]).to_byte_array()).unwrap()
}

impl Net {
    /// `n` nodes, not yet connected.
    pub fn new(n: usize, seed_base: u8) -> Net {
        Self::with_config(n, seed_base, NodeConfig::default())
    }

    pub fn with_config(n: usize, seed_base: u8, config: NodeConfig) -> Net {
        Self::with_configs(vec![config; n], seed_base)
    }

    /// One node per config, node `i` with `configs[i]`.
    pub fn with_configs(configs: Vec<NodeConfig>, seed_base: u8) -> Net {
        let chain = Chain::new();
        let nodes: Vec<TestNode> = configs
            .into_iter()
            .enumerate()
            .map(|(i, config)| TestNode {
                core: NodeCore::new(
                    node_secret(seed_base, i),
                    node_seed(seed_base, i),
                    config,
                    chain.height,
                    chain.tip,
                ),
                events: Vec::new(),
                sent: Vec::new(),
            })
            .collect();
        let mut net = Net {
            stores: (0..nodes.len()).map(|_| None).collect(),
            nodes,
            connected: BTreeSet::new(),
            inflight: VecDeque::new(),
            chain,
            seed_base,
            check_dirty: true,
        };
        // Every functional test also proves the dirty tracking: each node commits to a store
        // before its outputs leave, and the store must equal a full snapshot after each commit.
        net.enable_persistence();
        net
    }

    /// Gives every node a store holding its current state; from now on each node's changes
    /// are committed to it before its outputs leave (in [`Net::collect_outputs`]).
    pub fn enable_persistence(&mut self) {
        for i in 0..self.nodes.len() {
            let core = &mut self.nodes[i].core;
            core.take_dirty();
            let mut store = MemStore::default();
            for record in core.channel_records() {
                store.channels.insert(
                    (record.node_id, record.channel_id()),
                    record.to_bytes().expect("encodes"),
                );
            }
            store.node = Some(core.stored_node_record().to_bytes().expect("encodes"));
            let (offered, upstream) = htlc_records(core);
            store.offered = offered;
            store.upstream = upstream;
            // Every monitor whole (a store enabled again starts empty: what was handed out
            // to the one before is not in it).
            for id in core.monitor_ids() {
                let _ = core.snapshot_monitor(&id);
                if let Some(m) = core.monitor(&id) {
                    let chunks: Vec<MonitorRevokedRecord> = m
                        .revoked_chunks_after(None)
                        .into_iter()
                        .map(|c| m.revoked_chunk_record(c))
                        .collect();
                    store_monitor(&mut store, Some(&m.to_bounded_record()), &chunks);
                }
            }
            self.stores[i] = Some(store);
        }
    }

    /// Commits node `i`'s changes since its last commit to its store (one group commit).
    pub fn commit(&mut self, i: usize) {
        let Some(store) = self.stores[i].as_mut() else {
            return;
        };
        let core = &mut self.nodes[i].core;
        let dirty = core.take_dirty();
        if dirty.is_empty() {
            return;
        }
        store.commits += 1;
        for key in &dirty.removed {
            store.channels.remove(key);
        }
        // Monitors, as the engine writes them: a bounded snapshot and new revoked chunks.
        for channel_id in &dirty.monitors {
            if let Some((record, chunks)) = core.snapshot_monitor(channel_id) {
                store_monitor(store, record.as_ref(), &chunks);
            }
        }
        for (node_id, channel_id) in &dirty.channels {
            match core.snapshot_channel(node_id, channel_id) {
                Some(record) => {
                    store.writes += 1;
                    store
                        .channels
                        .insert((*node_id, *channel_id), record.to_bytes().expect("encodes"));
                }
                None => {
                    store.channels.remove(&(*node_id, *channel_id));
                }
            }
        }
        for &(channel_id, htlc_id) in &dirty.offered {
            match core.offered_entry(channel_id, htlc_id) {
                Some(r) => {
                    store.writes += 1;
                    store
                        .offered
                        .insert((channel_id, htlc_id), r.to_bytes().expect("encodes"));
                }
                None => {
                    store.offered.remove(&(channel_id, htlc_id));
                }
            }
        }
        for &(channel_id, htlc_id) in &dirty.upstream {
            match core.upstream_entry(channel_id, htlc_id) {
                Some(r) => {
                    store.writes += 1;
                    store
                        .upstream
                        .insert((channel_id, htlc_id), r.to_bytes().expect("encodes"));
                }
                None => {
                    store.upstream.remove(&(channel_id, htlc_id));
                }
            }
        }
        if dirty.node {
            store.writes += 1;
            store.node = Some(core.stored_node_record().to_bytes().expect("encodes"));
        }
        if self.check_dirty {
            let full: BTreeMap<(PublicKey, ChannelId), Vec<u8>> = core
                .channel_records()
                .into_iter()
                .map(|r| ((r.node_id, r.channel_id()), r.to_bytes().expect("encodes")))
                .collect();
            assert_eq!(
                full.keys().collect::<Vec<_>>(),
                store.channels.keys().collect::<Vec<_>>(),
                "node {i}: stored channel set differs from the live one"
            );
            for (key, bytes) in &full {
                assert!(
                    store.channels.get(key) == Some(bytes),
                    "node {i}: channel {} changed without being reported dirty",
                    key.1
                );
            }
            assert!(
                store.node.as_deref()
                    == Some(&core.stored_node_record().to_bytes().expect("encodes")[..]),
                "node {i}: node record changed without being reported dirty"
            );
            let (offered, upstream) = htlc_records(core);
            assert!(
                store.offered == offered && store.upstream == upstream,
                "node {i}: an offered or forwarded HTLC changed without being reported dirty"
            );
        }
    }

    /// Node `i` crashes and restarts from its store: its connections drop (messages in
    /// flight to and from it are lost), a new `NodeCore` is restored from the stored records
    /// (whatever it did after its last commit is lost, and none of it left), then it
    /// reconnects to the same peers. Returns the records it restarted from.
    pub fn restart(&mut self, i: usize) -> (NodeRecord, Vec<ChannelRecord>) {
        let store = self.stores[i].clone().expect("persistence enabled");
        let peers: Vec<usize> = self
            .connected
            .iter()
            .filter_map(|&(a, b)| {
                if a == i {
                    Some(b)
                } else if b == i {
                    Some(a)
                } else {
                    None
                }
            })
            .collect();
        // What the others queued before the crash goes out (and is lost with the connection);
        // what node i did since its last commit is lost, and none of it left.
        for j in 0..self.nodes.len() {
            if j != i {
                self.collect_node(j);
            }
        }
        for &p in &peers {
            self.disconnect(i, p);
        }
        let mut node_record =
            NodeRecord::from_bytes(store.node.as_deref().expect("node record")).expect("reads");
        // The HTLCs' own records join the node record, as the engine's restore does.
        for bytes in store.offered.values() {
            let r = OfferedHtlcEntryRecord::from_bytes(bytes).expect("reads");
            node_record
                .offered
                .insert((r.channel_id, r.htlc_id), r.offered);
        }
        for bytes in store.upstream.values() {
            let r = UpstreamHtlcEntryRecord::from_bytes(bytes).expect("reads");
            node_record
                .upstream
                .insert((r.channel_id, r.htlc_id), r.upstream);
        }
        let channels: Vec<ChannelRecord> = store
            .channels
            .values()
            .map(|b| ChannelRecord::from_bytes(b).expect("reads"))
            .collect();
        let config = self.nodes[i].core.config().clone();
        let seed = node_seed(self.seed_base, i);
        let monitors: Vec<_> = store
            .monitors
            .iter()
            .map(|(channel_id, bytes)| {
                let snapshot = MonitorRecord::from_bytes(bytes).expect("reads");
                let chunks: Vec<MonitorRevokedRecord> = store
                    .monitor_revoked
                    .iter()
                    .filter(|((c, _), _)| c == channel_id)
                    .map(|(_, b)| MonitorRevokedRecord::from_bytes(b).expect("reads"))
                    .collect();
                restore_monitor_with_revoked(snapshot, Vec::new(), chunks, &seed).expect("restores")
            })
            .collect();
        self.nodes[i].core = NodeCore::restore_with_monitors(
            node_secret(self.seed_base, i),
            seed,
            config,
            node_record.clone(),
            channels.clone(),
            monitors,
        );
        // Reconnect every peer before anything runs (a forward needs both of its peers).
        let idi = self.id(i);
        for &p in &peers {
            self.connected.insert((i.min(p), i.max(p)));
            let idp = self.id(p);
            self.nodes[i].core.peer_connected(idp);
            self.nodes[p].core.peer_connected(idi);
        }
        // The `init`s open the new connections: they go first (nothing else is in flight on
        // those connections, so no connection's order changes).
        let before = self.inflight.len();
        self.collect_node(i);
        for &p in &peers {
            self.collect_node(p);
        }
        let mut fresh: VecDeque<_> = self.inflight.drain(before..).collect();
        fresh.append(&mut self.inflight);
        self.inflight = fresh;
        self.run();
        (node_record, channels)
    }

    pub fn id(&self, i: usize) -> PublicKey {
        self.nodes[i].core.node_id()
    }

    fn index_of(&self, id: &PublicKey) -> Option<usize> {
        self.nodes.iter().position(|n| n.core.node_id() == *id)
    }

    pub fn connect(&mut self, a: usize, b: usize) {
        self.connected.insert((a.min(b), a.max(b)));
        let (ida, idb) = (self.id(a), self.id(b));
        self.nodes[a].core.peer_connected(idb);
        self.nodes[b].core.peer_connected(ida);
        self.run();
    }

    /// Cuts the connection: undelivered messages between the two are lost.
    pub fn disconnect(&mut self, a: usize, b: usize) {
        self.connected.remove(&(a.min(b), a.max(b)));
        self.inflight
            .retain(|(f, t, _)| !((*f == a && *t == b) || (*f == b && *t == a)));
        let (ida, idb) = (self.id(a), self.id(b));
        self.nodes[a].core.peer_disconnected(idb);
        self.nodes[b].core.peer_disconnected(ida);
    }

    pub fn is_connected(&self, a: usize, b: usize) -> bool {
        self.connected.contains(&(a.min(b), a.max(b)))
    }

    /// Moves every node's outputs into the network (messages in flight, events collected).
    pub fn collect_outputs(&mut self) -> bool {
        let mut any = false;
        for i in 0..self.nodes.len() {
            any |= self.collect_node(i);
        }
        any
    }

    /// Moves node `i`'s outputs into the network, after committing its state.
    pub fn collect_node(&mut self, i: usize) -> bool {
        let mut any = false;
        {
            // Persist before anything leaves: the durability barrier.
            self.commit(i);
            let outputs = self.nodes[i].core.drain_outputs();
            for output in outputs {
                any = true;
                match output {
                    Output::SendMessage { node_id, msg } => {
                        let bytes = msg.encode();
                        self.nodes[i].sent.push((node_id, bytes.clone()));
                        if let Some(to) = self.index_of(&node_id) {
                            if self.is_connected(i, to) {
                                self.inflight.push_back((i, to, bytes));
                            }
                        }
                    }
                    Output::Disconnect { node_id } => {
                        if let Some(to) = self.index_of(&node_id) {
                            self.disconnect(i, to);
                        }
                    }
                    Output::Event(Event::BroadcastTransaction { tx }) => {
                        self.chain.mempool.push(tx.clone());
                        self.nodes[i]
                            .events
                            .push(Event::BroadcastTransaction { tx });
                    }
                    Output::Event(e) => self.nodes[i].events.push(e),
                    // One NodeCore per node: a forward it did not own has no other owner.
                    Output::Forward(f) => self.nodes[i].core.handle_forward(f),
                    Output::Resolve(r) => self.nodes[i].core.handle_resolution(r),
                    _ => {}
                }
            }
        }
        any
    }

    /// Delivers one in-flight message; false if none.
    pub fn deliver_one(&mut self) -> bool {
        let Some((from, to, bytes)) = self.inflight.pop_front() else {
            return false;
        };
        let from_id = self.id(from);
        self.nodes[to].core.handle_message(from_id, &bytes);
        true
    }

    /// Runs until no message is in flight and no output is pending.
    pub fn run(&mut self) {
        for _ in 0..1_000_000 {
            let produced = self.collect_outputs();
            if !self.deliver_one() && !produced {
                return;
            }
        }
        panic!("network did not quiesce");
    }

    /// Mines one block with the mempool (or nothing) and tells every node.
    pub fn mine(&mut self, blocks: u32) {
        for _ in 0..blocks {
            let txs: Vec<Transaction> = std::mem::take(&mut self.chain.mempool);
            let header = Header {
                version: BlockVersion::TWO,
                prev_blockhash: self.chain.tip,
                merkle_root: TxMerkleNode::all_zeros(),
                time: self.chain.height,
                bits: CompactTarget::from_consensus(0x207fffff),
                nonce: 0,
            };
            self.chain.height += 1;
            self.chain.tip = header.block_hash();
            let height = self.chain.height;
            let mut block_txs = Vec::new();
            for tx in txs {
                let txid = tx.compute_txid();
                if self.chain.confirmed.contains_key(&txid) {
                    continue;
                }
                // Only transactions whose locktime has passed are mined.
                if tx.lock_time.is_block_height() && tx.lock_time.to_consensus_u32() > height {
                    self.chain.mempool.push(tx);
                    continue;
                }
                // Every transaction spending outputs this chain knows (everything but the
                // made-up inputs of test funding transactions) must satisfy
                // libbitcoinconsensus.
                self.chain.check_consensus(&tx);
                self.chain.confirmed.insert(txid, (height, tx.clone()));
                block_txs.push(tx);
            }
            for node in &mut self.nodes {
                let txdata: Vec<(u32, &Transaction)> = block_txs
                    .iter()
                    .enumerate()
                    .map(|(i, tx)| (i as u32 + 1, tx))
                    .collect();
                node.core.transactions_confirmed(height, &txdata);
                node.core.best_block_updated(height, self.chain.tip);
            }
            self.run();
        }
    }

    pub fn take_events(&mut self, i: usize) -> Vec<Event> {
        std::mem::take(&mut self.nodes[i].events)
    }

    /// Opens a funded, confirmed, ready channel from `a` to `b`; returns its final id and
    /// short channel id.
    pub fn open_channel(
        &mut self,
        a: usize,
        b: usize,
        sats: u64,
        push_msat: u64,
    ) -> (ChannelId, ShortChannelId) {
        let idb = self.id(b);
        let temp = self.nodes[a]
            .core
            .create_channel(idb, sats, push_msat, 42, 2500)
            .expect("create_channel");
        self.run();
        let events = self.take_events(a);
        let (script, value) = events
            .iter()
            .find_map(|e| match e {
                Event::FundingGenerationReady {
                    temporary_channel_id,
                    output_script,
                    channel_value_satoshis,
                    ..
                } if *temporary_channel_id == temp => {
                    Some((output_script.clone(), *channel_value_satoshis))
                }
                _ => None,
            })
            .expect("FundingGenerationReady");
        let funding_tx = fake_funding_tx(
            script,
            value,
            self.chain.height + a as u32 * 1000 + b as u32,
        );
        self.nodes[a]
            .core
            .funding_transaction_generated(temp, idb, funding_tx.clone())
            .expect("funding");
        self.run();
        let channel_id = ChannelId::from_funding_outpoint(&funding_tx.compute_txid(), 0);
        assert!(
            self.nodes[a].events.iter().any(
                |e| matches!(e, Event::ChannelPending { channel_id: c, .. } if *c == channel_id)
            ),
            "funder saw ChannelPending"
        );
        assert!(
            self.nodes[b].events.iter().any(
                |e| matches!(e, Event::ChannelPending { channel_id: c, .. } if *c == channel_id)
            ),
            "fundee saw ChannelPending"
        );
        self.mine(6);
        let details = self.details(a, channel_id).expect("channel listed");
        assert!(
            details.is_usable,
            "channel usable after 6 blocks: {details:?}"
        );
        (channel_id, details.short_channel_id.expect("scid"))
    }

    pub fn details(&self, i: usize, channel_id: ChannelId) -> Option<ChannelDetails> {
        self.nodes[i]
            .core
            .list_channels()
            .into_iter()
            .find(|c| c.channel_id == channel_id)
    }

    /// Pays `amount_msat` from `path[0]` through `path[1..]`, with `scids[i]` the channel
    /// between `path[i]` and `path[i+1]`; the recipient claims. Returns the fee paid.
    pub fn pay(
        &mut self,
        path: &[usize],
        scids: &[ShortChannelId],
        amount_msat: u64,
        nonce: u64,
    ) -> u64 {
        let (payment_id, preimage) = self.send(path, scids, amount_msat, nonce);
        let last = *path.last().unwrap();
        let claimable = self.take_events(last).into_iter().any(|e| matches!(e, Event::PaymentClaimable { payment_hash, .. } if payment_hash == preimage.payment_hash()));
        assert!(claimable, "payment {nonce} claimable at recipient");
        self.nodes[last].core.claim_funds(preimage).expect("claim");
        self.run();
        let events = self.take_events(path[0]);
        events
            .iter()
            .find_map(|e| match e {
                Event::PaymentSent {
                    payment_id: p,
                    payment_preimage,
                    fee_paid_msat,
                    ..
                } if *p == payment_id => {
                    assert_eq!(*payment_preimage, preimage);
                    Some(*fee_paid_msat)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("payment {nonce} sent: events {events:?}"))
    }

    /// Sends a payment without claiming it; returns its id and preimage.
    pub fn send(
        &mut self,
        path: &[usize],
        scids: &[ShortChannelId],
        amount_msat: u64,
        nonce: u64,
    ) -> (PaymentId, PaymentPreimage) {
        let route = self.route(path, scids, amount_msat);
        let last = *path.last().unwrap();
        let preimage = PaymentPreimage(
            sha256::Hash::hash(
                &[&nonce.to_be_bytes()[..], &[self.seed_base, path[0] as u8]].concat(),
            )
            .to_byte_array(),
        );
        let (hash, secret) = self.nodes[last]
            .core
            .create_inbound_payment(&preimage, Some(amount_msat));
        let payment_id = PaymentId(sha256::Hash::hash(&preimage.0).to_byte_array());
        self.nodes[path[0]]
            .core
            .send_payment(&route, hash, secret, payment_id)
            .expect("send_payment");
        self.run();
        (payment_id, preimage)
    }

    /// A route along `path` with each forwarding node's default policy fee.
    pub fn route(&self, path: &[usize], scids: &[ShortChannelId], amount_msat: u64) -> Route {
        let n = path.len() - 1;
        let mut hops = Vec::new();
        let mut amount = amount_msat;
        // Walk back: hop i (node path[i+1]) charges the fee for forwarding `amount`.
        let mut fees = vec![0; n];
        for i in (0..n - 1).rev() {
            let policy = &self.nodes[path[i + 1]].core.config().forwarding;
            fees[i] = policy.fee_for(amount);
            amount += fees[i];
        }
        for i in 0..n {
            let policy = &self.nodes[path[i + 1]].core.config().forwarding;
            hops.push(RouteHop {
                node_id: self.id(path[i + 1]),
                short_channel_id: scids[i],
                fee_msat: if i == n - 1 { amount_msat } else { fees[i] },
                cltv_expiry_delta: if i == n - 1 {
                    50
                } else {
                    u32::from(policy.cltv_expiry_delta)
                },
            });
        }
        Route { hops }
    }
}

/// A funding transaction spending a made-up coin (the test kit's, one for every test).
pub use lnshard_testkit::fake_funding_tx;

/// Verifies that input `index` of `tx` spends a P2WSH 2-of-2 output of `value` sat: the
/// witness is `[<>, sig1, sig2, script]`, the script hashes to `prev_script_pubkey`, and both
/// signatures verify (libsecp256k1) against the BIP 143 sighash for their public keys.
pub fn verify_2of2_spend(
    tx: &Transaction,
    index: usize,
    prev_script_pubkey: &ScriptBuf,
    value: u64,
) {
    use lightning_core::bitcoin::sighash::SighashCache;
    let witness: Vec<&[u8]> = tx.input[index].witness.iter().collect();
    assert_eq!(witness.len(), 4, "2-of-2 witness has 4 items");
    assert!(witness[0].is_empty(), "CHECKMULTISIG dummy is empty");
    let script = ScriptBuf::from_bytes(witness[3].to_vec());
    assert_eq!(
        &ScriptBuf::new_p2wsh(&script.wscript_hash()),
        prev_script_pubkey,
        "witness script matches the output"
    );
    let bytes = script.as_bytes();
    assert_eq!(bytes.len(), 71, "2 <33> <33> 2 CHECKMULTISIG");
    let pk1 = PublicKey::from_slice(&bytes[2..35]).unwrap();
    let pk2 = PublicKey::from_slice(&bytes[36..69]).unwrap();
    let secp = Secp256k1::verification_only();
    let sighash = SighashCache::new(tx)
        .p2wsh_signature_hash(
            index,
            &script,
            Amount::from_sat(value),
            EcdsaSighashType::All,
        )
        .unwrap();
    let msg = SecpMessage::from_digest(sighash.to_byte_array());
    for (sig, pk) in [(witness[1], pk1), (witness[2], pk2)] {
        let (last, der) = sig.split_last().unwrap();
        assert_eq!(*last, EcdsaSighashType::All as u8);
        let sig = Signature::from_der(der).expect("DER signature");
        secp.verify_ecdsa(&msg, &sig, &pk)
            .expect("signature verifies");
    }
}
