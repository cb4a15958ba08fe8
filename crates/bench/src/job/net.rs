//! The network of the main job: the routing node (the shard engine), its peers (each a
//! `NodeCore` with its own BOLT 8 link), a toy chain, and the threads moving bytes between
//! them.
//!
//! Each peer dials the routing node: both ends run lightning-core's [`Handshake`] over the
//! bytes of the three acts, and the routing node's end of each link, its socket, moves into
//! the peer's shard ([`Engine::attach_socket`]), as the daemon's does: shared-nothing IO. The
//! socket is a [`Wire`], this program's stand-in for a socket pair: the bytes the peer sent
//! and the shard has not read yet (the shard reads them itself when the wire's
//! [`SocketWaker`] rings), and the bytes the shard wrote and the peer has not read (bounded
//! like the daemon's write queue, with a ready signal to the driver threads).
//!
//! Each peer sits behind its own mutex (the load generator's, not the engine's: the engine
//! has no lock around channel state). Driver threads take whichever peer the routing node
//! wrote to (the ready queue), decrypt with the peer's end of the link, let the peer's node
//! answer and hand its encrypted answer to the routing node. One thread takes the engine's
//! events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use lightning_core::bitcoin::hashes::{sha256, Hash};
use lightning_core::bitcoin::{BlockHash, ScriptBuf, Transaction};
use lightning_core::channel::Balances;
use lightning_core::node::{
    Event, ForwardingPolicy, NodeConfig, NodeCore, Output, PaymentId, Route, RouteHop,
};
use lightning_core::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning_core::transport::{Established, Handshake, HandshakeStep, Transport};
use lightning_core::types::{ChannelId, PaymentHash, PaymentPreimage, ShortChannelId};
use shard_engine::{Engine, EngineConfig, NodeApi, PeerSocket, ShutdownReport, SocketWaker};

use super::plan::{Kind, Payment, Plan};

/// Each peer's channel: 10,000,000 sat, half pushed to the routing node so both can pay.
pub const CHANNEL_SATS: u64 = 10_000_000;
/// What the routing node holds in each channel at the start.
pub const PUSH_MSAT: u64 = CHANNEL_SATS * 1000 / 2;
const START_HEIGHT: u32 = 100;
const CONFIRMATIONS: u32 = 6;
/// The most bytes a peer leaves on its wire for the routing node's shard before it waits for
/// the shard to read them.
const INBOUND_LIMIT: usize = 1 << 20;

/// One peer: its node and its end of the BOLT 8 link (the routing node's end lives on the
/// peer's shard).
struct Peer {
    core: NodeCore,
    id: PublicKey,
    link: Transport,
    temporary_channel: Option<ChannelId>,
    funding_script: Option<(ScriptBuf, u64)>,
    channel_id: Option<ChannelId>,
    scid: Option<ShortChannelId>,
    /// The routing node closed the link (reported once).
    disconnected: bool,
}

/// The routing node's side of one peer's link, as a socket's write half would be: the
/// ciphertext its shard wrote and the peer has not read yet (at most `limit` bytes, as the
/// daemon bounds its write queue), and whether the shard closed the link.
struct Wire {
    /// What the peer sent, for the shard to read.
    inbound: Mutex<Vec<u8>>,
    /// The shard's wake-up for this wire, once attached.
    waker: std::sync::OnceLock<SocketWaker>,
    /// The shard found the wire full: the peer wakes it after reading, to write the rest.
    blocked: AtomicBool,
    bytes: Mutex<Vec<u8>>,
    closed: AtomicBool,
    /// Whether the peer is in the ready queue (once until it reads).
    signalled: AtomicBool,
}

impl Wire {
    fn new() -> Wire {
        Wire {
            inbound: Mutex::new(Vec::new()),
            waker: std::sync::OnceLock::new(),
            blocked: AtomicBool::new(false),
            bytes: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            signalled: AtomicBool::new(false),
        }
    }

    /// What the shard wrote since the last read, and whether it closed the link.
    fn read(&self) -> (Vec<u8>, bool) {
        // First: a write from now on queues the peer again.
        self.signalled.store(false, Ordering::SeqCst);
        let bytes = std::mem::take(&mut *lock(&self.bytes));
        (bytes, self.closed.load(Ordering::SeqCst))
    }
}

/// The routing node's end of one peer's wire: the socket its shard owns.
struct WireWriter {
    peer: usize,
    wire: Arc<Wire>,
    ready: Sender<usize>,
    limit: usize,
}

impl WireWriter {
    fn signal(&self) {
        if !self.wire.signalled.swap(true, Ordering::SeqCst) {
            let _ = self.ready.send(self.peer);
        }
    }
}

impl PeerSocket for WireWriter {
    fn try_read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut inbound = lock(&self.wire.inbound);
        if inbound.is_empty() {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(inbound.len());
        buf[..n].copy_from_slice(&inbound[..n]);
        inbound.drain(..n);
        Ok(n)
    }

    fn try_write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut queued = lock(&self.wire.bytes);
        if self.wire.closed.load(Ordering::SeqCst) {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        if !queued.is_empty() && queued.len() + bytes.len() > self.limit {
            // The peer has not read what it was sent: the shard keeps the rest (and
            // disconnects the peer past its own bound) until the peer wakes it.
            self.wire.blocked.store(true, Ordering::SeqCst);
            drop(queued);
            self.signal();
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        queued.extend_from_slice(bytes);
        drop(queued);
        self.signal();
        Ok(bytes.len())
    }

    fn close(&mut self) {
        self.wire.closed.store(true, Ordering::SeqCst);
        self.signal();
    }

    fn poll_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
}

/// A payment in flight.
struct Pending {
    payment: Payment,
    fee_msat: u64,
    started: Instant,
}

/// What the payments did: the ledger the balances are reconciled against.
#[derive(Default)]
struct Ledger {
    pending: HashMap<PaymentId, Pending>,
    /// Per peer: how much its channel's peer-side balance moved (msat).
    delta: Vec<i128>,
    /// Fees the routing node earned, by the payers' ledger.
    fees_msat: u64,
    /// Fees the routing node reported (`PaymentForwarded`).
    fees_reported_msat: u64,
    succeeded: u64,
    failed: u64,
    forwards: u64,
    cross_shard: u64,
    to_hub: u64,
    from_hub: u64,
    latencies_us: Vec<u64>,
    failures: Vec<String>,
    anomalies: Vec<String>,
}

/// What the payment phase did.
pub struct Outcome {
    /// Payments that succeeded.
    pub succeeded: u64,
    /// Payments that failed.
    pub failed: u64,
    /// Forwarded between peers.
    pub forwards: u64,
    /// ... of which between peers on different shards.
    pub cross_shard: u64,
    /// From a peer to the routing node.
    pub to_hub: u64,
    /// From the routing node to a peer.
    pub from_hub: u64,
    /// Wall time from the first payment's start to the last one's outcome.
    pub elapsed: Duration,
    /// Each payment's latency, in microseconds, sorted.
    pub latencies_us: Vec<u64>,
    /// BOLT 8 messages exchanged during the payments.
    pub messages: u64,
    /// Encrypted bytes exchanged during the payments.
    pub wire_bytes: u64,
    /// The first failures, described.
    pub failures: Vec<String>,
    /// Set when the payments did not all finish in time: what was left.
    pub timed_out: Option<String>,
}

/// The balance check of every channel.
pub struct Reconciliation {
    /// Channels whose two views and ledger agree.
    pub matched: usize,
    /// Channels checked.
    pub channels: usize,
    /// What did not match.
    pub mismatches: Vec<String>,
    /// Fees earned by the ledger.
    pub fees_msat: u64,
    /// Fees the routing node reported.
    pub fees_reported_msat: u64,
}

/// The whole network.
pub struct Net {
    engine: Engine,
    hub_id: PublicKey,
    peers: Vec<Mutex<Peer>>,
    /// Per peer: what the routing node wrote to it.
    wires: Vec<Arc<Wire>>,
    /// Peers whose wire holds something to read.
    ready: Receiver<usize>,
    shard_of: Vec<usize>,
    preimages: Mutex<HashMap<PaymentHash, PaymentPreimage>>,
    ledger: Mutex<Ledger>,
    mempool: Mutex<Vec<Transaction>>,
    height: AtomicU64,
    policy: ForwardingPolicy,
    messages: AtomicU64,
    wire_bytes: AtomicU64,
    /// Payments finished whose successor has not started yet.
    owed: AtomicU64,
    /// The next payment to start.
    next: AtomicU64,
    /// Payments finished.
    finished: AtomicU64,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a driver thread panicked: its panic is reported when joined.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn block_hash(height: u32) -> BlockHash {
    BlockHash::from_byte_array(sha256::Hash::hash(&height.to_be_bytes()).to_byte_array())
}

/// A funding transaction paying `value` to `script`, spending a made-up coin of peer `peer`'s
/// (the toy chain does not check inputs).
fn funding_tx(script: ScriptBuf, value: u64, peer: usize) -> Transaction {
    lnshard_testkit::fake_funding_tx(script, value, peer as u32)
}

impl Net {
    /// Starts the routing node and its peers and connects each peer over BOLT 8.
    pub fn new(config: EngineConfig, plan: &Plan) -> Result<Net, String> {
        let secp = Secp256k1::new();
        let policy = config.node.forwarding;
        let wire_limit = config.peer_outbox_bytes;
        let hub_secret = plan.secret(b"hub", 0);
        let engine = Engine::open(
            config,
            hub_secret,
            plan.bytes(b"hub-seed", 0),
            START_HEIGHT,
            block_hash(START_HEIGHT),
        )
        .map_err(|e| format!("cannot open the routing node on its store: {e}"))?;
        let hub_id = engine.node_id();
        let mut peers = Vec::with_capacity(plan.peers);
        let mut links = Vec::with_capacity(plan.peers);
        let mut shard_of = Vec::new();
        for i in 0..plan.peers {
            let secret = plan.secret(b"peer", i as u64);
            let id = PublicKey::from_secret_key(&secp, &secret);
            let core = NodeCore::new(
                secret,
                plan.bytes(b"peer-seed", i as u64),
                NodeConfig::default(),
                START_HEIGHT,
                block_hash(START_HEIGHT),
            );
            let (link, hub_link) = handshake(plan, &secret, &hub_secret, &hub_id, i)?;
            if hub_link.node_id != id {
                return Err(format!("peer {i}'s handshake revealed another node id"));
            }
            links.push(hub_link);
            shard_of.push(engine.shard_of(&id));
            peers.push(Mutex::new(Peer {
                core,
                id,
                link,
                temporary_channel: None,
                funding_script: None,
                channel_id: None,
                scid: None,
                disconnected: false,
            }));
        }
        let (ready_tx, ready) = crossbeam_channel::unbounded();
        let wires: Vec<Arc<Wire>> = (0..plan.peers).map(|_| Arc::new(Wire::new())).collect();
        let net = Net {
            engine,
            hub_id,
            peers,
            wires,
            ready,
            shard_of,
            preimages: Mutex::new(HashMap::new()),
            ledger: Mutex::new(Ledger {
                delta: vec![0; plan.peers],
                ..Ledger::default()
            }),
            mempool: Mutex::new(Vec::new()),
            height: AtomicU64::new(u64::from(START_HEIGHT)),
            policy,
            messages: AtomicU64::new(0),
            wire_bytes: AtomicU64::new(0),
            owed: AtomicU64::new(0),
            next: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        };
        for ((i, peer), hub_link) in net.peers.iter().enumerate().zip(links) {
            let mut peer = lock(peer);
            peer.core.peer_connected(net.hub_id);
            let wire = net.wires.get(i).cloned().ok_or("no wire")?;
            let writer = WireWriter {
                peer: i,
                wire: wire.clone(),
                ready: ready_tx.clone(),
                limit: wire_limit,
            };
            // The routing node's end of the link moves into the peer's shard, which sends
            // our `init` first.
            let waker = net
                .engine
                .attach_socket(
                    i as u64,
                    hub_link.node_id,
                    hub_link.transport,
                    Box::new(writer),
                    None,
                )
                .map_err(|e| format!("the routing node refused a peer: {e}"))?;
            let _ = wire.waker.set(waker);
        }
        net.settle()?;
        Ok(net)
    }

    /// The routing node.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// How many peers each shard owns.
    pub fn peers_per_shard(&self) -> Vec<usize> {
        let mut counts = vec![0; self.engine.shard_count()];
        for &s in &self.shard_of {
            if let Some(c) = counts.get_mut(s) {
                *c += 1;
            }
        }
        counts
    }

    /// Every peer opens a channel to the routing node and funds it; the toy chain confirms
    /// them all.
    pub fn open_channels(&self) -> Result<(), String> {
        for (i, peer) in self.peers.iter().enumerate() {
            let mut peer = lock(peer);
            let temp = peer
                .core
                .create_channel(self.hub_id, CHANNEL_SATS, PUSH_MSAT, i as u128, 2_500)
                .map_err(|e| format!("peer {i} cannot open a channel: {e}"))?;
            peer.temporary_channel = Some(temp);
        }
        self.settle()?;
        for (i, peer) in self.peers.iter().enumerate() {
            let mut peer = lock(peer);
            let (script, value) = peer
                .funding_script
                .take()
                .ok_or_else(|| format!("the routing node did not accept peer {i}'s channel"))?;
            let temp = peer.temporary_channel.take().ok_or("no temporary id")?;
            let funding = funding_tx(script, value, i);
            peer.channel_id = Some(ChannelId::from_funding_outpoint(&funding.compute_txid(), 0));
            peer.core
                .funding_transaction_generated(temp, self.hub_id, funding)
                .map_err(|e| format!("peer {i} cannot fund its channel: {e}"))?;
        }
        self.settle()?;
        self.mine(CONFIRMATIONS)?;
        for (i, peer) in self.peers.iter().enumerate() {
            let mut peer = lock(peer);
            let channel_id = peer.channel_id.ok_or("no channel id")?;
            let details = peer
                .core
                .list_channels()
                .into_iter()
                .find(|c| c.channel_id == channel_id)
                .ok_or_else(|| format!("peer {i}'s channel is gone"))?;
            if !details.is_usable {
                return Err(format!(
                    "peer {i}'s channel is not usable after confirmation"
                ));
            }
            peer.scid = details.short_channel_id;
        }
        Ok(())
    }

    /// Mines `blocks` blocks holding what was broadcast; every node learns of them.
    fn mine(&self, blocks: u32) -> Result<(), String> {
        for _ in 0..blocks {
            let height = self.height.fetch_add(1, Ordering::SeqCst) as u32 + 1;
            let hash = block_hash(height);
            let txs = std::mem::take(&mut *lock(&self.mempool));
            let txdata: Vec<(u32, Transaction)> = txs
                .into_iter()
                .enumerate()
                .map(|(i, tx)| (i as u32 + 1, tx))
                .collect();
            let refs: Vec<(u32, &Transaction)> = txdata.iter().map(|(i, tx)| (*i, tx)).collect();
            for peer in &self.peers {
                let mut peer = lock(peer);
                peer.core.transactions_confirmed(height, &refs);
                peer.core.best_block_updated(height, hash);
            }
            self.engine
                .transactions_confirmed(height, &txdata)
                .map_err(|e| format!("the routing node did not take block {height}: {e}"))?;
            self.engine
                .best_block_updated(height, hash)
                .map_err(|e| format!("the routing node did not take block {height}: {e}"))?;
            self.settle()?;
        }
        Ok(())
    }

    /// Moves bytes until every node is quiet (single-threaded).
    pub fn settle(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut quiet_passes = 0;
        while quiet_passes < 2 {
            let mut progress = false;
            for i in 0..self.peers.len() {
                progress |= self.serve(i);
            }
            for event in self.engine.drain_events() {
                progress = true;
                self.hub_event(event);
            }
            // Bytes on a wire the shard has not read yet are work the engine does not count.
            let unread = self.wires.iter().any(|w| !lock(&w.inbound).is_empty());
            if progress {
                quiet_passes = 0;
            } else if self.engine.is_idle() && !unread {
                quiet_passes += 1;
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the network did not settle in 120 s ({} messages queued to shards)",
                    self.engine.pending_work()
                ));
            }
        }
        let anomalies = &lock(&self.ledger).anomalies;
        if let Some(first) = anomalies.first() {
            return Err(format!("{} anomalies, first: {first}", anomalies.len()));
        }
        Ok(())
    }

    /// Serves peer `i`: the routing node's messages to it, and its answers. Returns whether
    /// anything moved.
    fn serve(&self, i: usize) -> bool {
        let Some(peer) = self.peers.get(i) else {
            return false;
        };
        let Some(wire) = self.wires.get(i) else {
            return false;
        };
        let mut peer = lock(peer);
        let mut moved = false;
        loop {
            let mut progress = false;
            let (ciphertext, closed) = wire.read();
            if !ciphertext.is_empty() {
                progress = true;
                if wire.blocked.swap(false, Ordering::SeqCst) {
                    // Room again: the shard writes what it kept.
                    if let Some(waker) = wire.waker.get() {
                        waker.ready();
                    }
                }
                self.wire_bytes
                    .fetch_add(ciphertext.len() as u64, Ordering::Relaxed);
                match peer.link.decrypt(&ciphertext) {
                    Ok(messages) => {
                        self.messages
                            .fetch_add(messages.len() as u64, Ordering::Relaxed);
                        for msg in messages {
                            peer.core.handle_message(self.hub_id, &msg);
                        }
                    }
                    Err(e) => self.anomaly(format!("peer {i} cannot decrypt a message: {e}")),
                }
            }
            if closed && !peer.disconnected {
                peer.disconnected = true;
                self.anomaly(format!("the routing node disconnected peer {i}"));
            }
            for output in peer.core.drain_outputs() {
                progress = true;
                self.peer_output(i, &mut peer, output);
            }
            if !progress {
                return moved;
            }
            moved = true;
        }
    }

    fn peer_output(&self, i: usize, peer: &mut Peer, output: Output) {
        match output {
            Output::SendMessage { node_id, msg } => {
                if node_id != self.hub_id {
                    self.anomaly(format!("peer {i} wrote to a node it has no link with"));
                    return;
                }
                match peer.link.encrypt(&msg.encode()) {
                    Ok(ciphertext) => {
                        self.messages.fetch_add(1, Ordering::Relaxed);
                        self.wire_bytes
                            .fetch_add(ciphertext.len() as u64, Ordering::Relaxed);
                        self.deliver(i, peer.id, ciphertext);
                    }
                    Err(e) => self.anomaly(format!("peer {i} cannot encrypt a message: {e}")),
                }
            }
            Output::Event(event) => self.peer_event(i, peer, event),
            other => self.anomaly(format!("peer {i}, a leaf node, produced {other:?}")),
        }
    }

    /// Hands a peer's encrypted message to the routing node's end of its wire and rings the
    /// shard, which reads and decrypts it on its own thread. A wire holding more than the
    /// daemon's write queue would is backpressure: the peer waits until the shard has read.
    fn deliver(&self, i: usize, _id: PublicKey, ciphertext: Vec<u8>) {
        let Some(wire) = self.wires.get(i) else {
            return self.anomaly(format!("peer {i} has no wire"));
        };
        let mut wait = Duration::from_micros(20);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let mut inbound = lock(&wire.inbound);
                if inbound.len() < INBOUND_LIMIT {
                    inbound.extend_from_slice(&ciphertext);
                    break;
                }
            }
            if Instant::now() >= deadline {
                return self.anomaly(format!("the routing node did not read peer {i}'s bytes"));
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_millis(2));
        }
        match wire.waker.get() {
            Some(waker) => waker.ready(),
            None => self.anomaly(format!("peer {i}'s wire is not attached")),
        }
    }

    fn peer_event(&self, i: usize, peer: &mut Peer, event: Event) {
        match event {
            Event::FundingGenerationReady {
                output_script,
                channel_value_satoshis,
                ..
            } => peer.funding_script = Some((output_script, channel_value_satoshis)),
            Event::BroadcastTransaction { tx } => lock(&self.mempool).push(tx),
            Event::PaymentClaimable { payment_hash, .. } => {
                let preimage = lock(&self.preimages).get(&payment_hash).copied();
                match preimage {
                    Some(p) => {
                        if let Err(e) = peer.core.claim_funds(p) {
                            self.anomaly(format!("peer {i} cannot claim: {e}"));
                        }
                    }
                    None => self.anomaly(format!("peer {i} got a payment nobody made")),
                }
            }
            Event::PaymentSent {
                payment_id,
                fee_paid_msat,
                ..
            } => self.succeeded(payment_id, fee_paid_msat),
            Event::PaymentFailed {
                payment_id,
                failure,
                ..
            } => self.failed(payment_id, format!("{failure:?}")),
            Event::ChannelClosed {
                channel_id, reason, ..
            } => self.anomaly(format!(
                "peer {i}'s channel {channel_id} closed: {reason:?}"
            )),
            _ => {}
        }
    }

    fn hub_event(&self, event: Event) {
        match event {
            Event::BroadcastTransaction { tx } => lock(&self.mempool).push(tx),
            Event::PaymentClaimable { payment_hash, .. } => {
                let preimage = lock(&self.preimages).get(&payment_hash).copied();
                match preimage {
                    Some(p) => {
                        if let Err(e) = self.engine.claim_funds(p) {
                            self.anomaly(format!("the routing node cannot claim: {e}"));
                        }
                    }
                    None => self.anomaly("the routing node got a payment nobody made".into()),
                }
            }
            Event::PaymentSent {
                payment_id,
                fee_paid_msat,
                ..
            } => self.succeeded(payment_id, fee_paid_msat),
            Event::PaymentFailed {
                payment_id,
                failure,
                ..
            } => self.failed(payment_id, format!("{failure:?}")),
            Event::PaymentForwarded {
                fee_earned_msat, ..
            } => lock(&self.ledger).fees_reported_msat += fee_earned_msat,
            Event::ChannelClosed {
                channel_id, reason, ..
            } => self.anomaly(format!("the routing node closed {channel_id}: {reason:?}")),
            _ => {}
        }
    }

    fn anomaly(&self, what: String) {
        tracing::error!(%what, "anomaly");
        lock(&self.ledger).anomalies.push(what);
    }

    fn succeeded(&self, id: PaymentId, fee_paid_msat: u64) {
        let mut ledger = lock(&self.ledger);
        let Some(pending) = ledger.pending.remove(&id) else {
            drop(ledger);
            self.anomaly("a payment succeeded twice, or one nobody made".into());
            return;
        };
        let p = pending.payment;
        let amount = i128::from(p.amount_msat);
        if fee_paid_msat != pending.fee_msat {
            ledger.anomalies.push(format!(
                "payment {} paid {fee_paid_msat} msat in fees, the route said {}",
                p.n, pending.fee_msat
            ));
        }
        match p.kind {
            Kind::Forward { from, to } => {
                if let Some(d) = ledger.delta.get_mut(from) {
                    *d -= amount + i128::from(pending.fee_msat);
                }
                if let Some(d) = ledger.delta.get_mut(to) {
                    *d += amount;
                }
                ledger.fees_msat += pending.fee_msat;
                ledger.forwards += 1;
                if self.shard_of.get(from) != self.shard_of.get(to) {
                    ledger.cross_shard += 1;
                }
            }
            Kind::ToHub { from } => {
                if let Some(d) = ledger.delta.get_mut(from) {
                    *d -= amount;
                }
                ledger.to_hub += 1;
            }
            Kind::FromHub { to } => {
                if let Some(d) = ledger.delta.get_mut(to) {
                    *d += amount;
                }
                ledger.from_hub += 1;
            }
        }
        ledger.succeeded += 1;
        let micros = pending.started.elapsed().as_micros() as u64;
        ledger.latencies_us.push(micros);
        drop(ledger);
        self.finished.fetch_add(1, Ordering::SeqCst);
        self.owed.fetch_add(1, Ordering::SeqCst);
    }

    fn failed(&self, id: PaymentId, why: String) {
        let mut ledger = lock(&self.ledger);
        let Some(pending) = ledger.pending.remove(&id) else {
            drop(ledger);
            self.anomaly("a payment failed twice, or one nobody made".into());
            return;
        };
        ledger.failed += 1;
        if ledger.failures.len() < 5 {
            ledger.failures.push(format!(
                "payment {} ({:?}): {why}",
                pending.payment.n, pending.payment.kind
            ));
        }
        drop(ledger);
        self.finished.fetch_add(1, Ordering::SeqCst);
        self.owed.fetch_add(1, Ordering::SeqCst);
    }

    fn scid(&self, i: usize) -> Option<ShortChannelId> {
        self.peers.get(i).and_then(|p| lock(p).scid)
    }

    /// Starts payment `n` of the plan: the payee registers it, then the payer sends it.
    fn start(&self, plan: &Plan, n: u64) {
        let p = plan.payment(n);
        let hop = |node_id: PublicKey, scid: ShortChannelId, fee_msat: u64, delta: u32| RouteHop {
            node_id,
            short_channel_id: scid,
            fee_msat,
            cltv_expiry_delta: delta,
        };
        lock(&self.preimages).insert(p.preimage.payment_hash(), p.preimage);
        let registered = match p.kind {
            Kind::Forward { to, .. } | Kind::FromHub { to } => self
                .peers
                .get(to)
                .map(|peer| {
                    lock(peer)
                        .core
                        .create_inbound_payment(&p.preimage, Some(p.amount_msat))
                })
                .ok_or_else(|| "no such peer".to_string()),
            Kind::ToHub { .. } => self
                .engine
                .create_inbound_payment(p.preimage, Some(p.amount_msat))
                .map_err(|e| e.to_string()),
        };
        let (hash, secret) = match registered {
            Ok(r) => r,
            Err(e) => return self.anomaly(format!("payment {n} cannot be registered: {e}")),
        };
        let (route, fee_msat) = match p.kind {
            Kind::Forward { from, to } => {
                let (Some(first), Some(second), Some(to_id)) = (
                    self.scid(from),
                    self.scid(to),
                    self.peers.get(to).map(|q| lock(q).id),
                ) else {
                    return self.anomaly(format!("payment {n}: a channel has no scid"));
                };
                let fee = self.policy.fee_for(p.amount_msat);
                let hops = vec![
                    hop(
                        self.hub_id,
                        first,
                        fee,
                        u32::from(self.policy.cltv_expiry_delta),
                    ),
                    hop(to_id, second, p.amount_msat, 60),
                ];
                (Route { hops }, fee)
            }
            Kind::ToHub { from } => {
                let Some(first) = self.scid(from) else {
                    return self.anomaly(format!("payment {n}: a channel has no scid"));
                };
                let hops = vec![hop(self.hub_id, first, p.amount_msat, 60)];
                (Route { hops }, 0)
            }
            Kind::FromHub { to } => {
                let (Some(first), Some(to_id)) =
                    (self.scid(to), self.peers.get(to).map(|q| lock(q).id))
                else {
                    return self.anomaly(format!("payment {n}: a channel has no scid"));
                };
                (
                    Route {
                        hops: vec![hop(to_id, first, p.amount_msat, 60)],
                    },
                    0,
                )
            }
        };
        lock(&self.ledger).pending.insert(
            p.id,
            Pending {
                payment: p,
                fee_msat,
                started: Instant::now(),
            },
        );
        let sent = match p.kind {
            Kind::Forward { from, .. } | Kind::ToHub { from } => match self.peers.get(from) {
                Some(peer) => {
                    let result = lock(peer).core.send_payment(&route, hash, secret, p.id);
                    // Flush the payer's update_add_htlc and commitment_signed now.
                    self.serve(from);
                    result.map_err(|e| e.to_string())
                }
                None => Err("no such peer".into()),
            },
            Kind::FromHub { .. } => self
                .engine
                .send_payment(&route, hash, secret, p.id)
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = sent {
            self.failed(p.id, format!("not sent: {e}"));
        }
    }

    /// Starts successors of finished payments while the plan has payments left.
    fn start_owed(&self, plan: &Plan) {
        while self
            .owed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |o| o.checked_sub(1))
            .is_ok()
        {
            let n = self.next.fetch_add(1, Ordering::SeqCst);
            if n >= plan.payments {
                return;
            }
            self.start(plan, n);
        }
    }

    /// Runs the plan's payments, `in_flight` at a time, with `drivers` driver threads.
    pub fn pay(&self, plan: &Plan, in_flight: u64, drivers: usize) -> Outcome {
        let messages_before = self.messages.load(Ordering::SeqCst);
        let bytes_before = self.wire_bytes.load(Ordering::SeqCst);
        let progress = super::report::progress_bar(plan.payments);
        self.owed
            .store(in_flight.min(plan.payments), Ordering::SeqCst);
        let start = Instant::now();
        let mut timed_out = None;
        std::thread::scope(|s| {
            for d in 0..drivers {
                let _ = std::thread::Builder::new()
                    .name(format!("driver-{d}"))
                    .spawn_scoped(s, || {
                        while !self.stop.load(Ordering::SeqCst) {
                            self.start_owed(plan);
                            if let Ok(i) = self.ready.recv_timeout(Duration::from_millis(2)) {
                                self.serve(i);
                            }
                        }
                    });
            }
            let _ = std::thread::Builder::new()
                .name("hub-events".into())
                .spawn_scoped(s, || {
                    while !self.stop.load(Ordering::SeqCst) {
                        if let Some(event) = self.engine.wait_event(Duration::from_millis(2)) {
                            self.hub_event(event);
                        }
                    }
                });
            let deadline = start + Duration::from_secs(600);
            let mut last = (0, Instant::now());
            loop {
                let finished = self.finished.load(Ordering::SeqCst);
                progress.set_position(finished);
                if finished >= plan.payments {
                    break;
                }
                if finished != last.0 {
                    last = (finished, Instant::now());
                }
                let stalled = last.1.elapsed() > Duration::from_secs(30);
                if stalled || Instant::now() > deadline {
                    let pending = lock(&self.ledger).pending.len();
                    timed_out = Some(format!(
                        "{finished} of {} payments finished; {pending} in flight made no progress for {:.0?}",
                        plan.payments,
                        last.1.elapsed()
                    ));
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            self.stop.store(true, Ordering::SeqCst);
        });
        let elapsed = start.elapsed();
        progress.finish_and_clear();
        self.stop.store(false, Ordering::SeqCst);
        let mut ledger = lock(&self.ledger);
        let mut latencies_us = std::mem::take(&mut ledger.latencies_us);
        latencies_us.sort_unstable();
        Outcome {
            succeeded: ledger.succeeded,
            failed: ledger.failed,
            forwards: ledger.forwards,
            cross_shard: ledger.cross_shard,
            to_hub: ledger.to_hub,
            from_hub: ledger.from_hub,
            elapsed,
            latencies_us,
            messages: self.messages.load(Ordering::SeqCst) - messages_before,
            wire_bytes: self.wire_bytes.load(Ordering::SeqCst) - bytes_before,
            failures: ledger.failures.clone(),
            timed_out,
        }
    }

    /// Checks every channel: the peer's view mirrors the routing node's, both sum to the
    /// channel's value, and the peer's balance is what the ledger of succeeded payments says.
    pub fn reconcile(&self) -> Reconciliation {
        let hub: HashMap<ChannelId, Balances> = self
            .engine
            .list_channels()
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.channel_id, c.balances))
            .collect();
        let ledger = lock(&self.ledger);
        let total = i128::from(CHANNEL_SATS) * 1000;
        let start_peer = total - i128::from(PUSH_MSAT);
        let mut mismatches = Vec::new();
        let mut matched = 0;
        for (i, peer) in self.peers.iter().enumerate() {
            let peer = lock(peer);
            let Some(channel_id) = peer.channel_id else {
                mismatches.push(format!("peer {i} has no channel"));
                continue;
            };
            let Some(ours) = peer
                .core
                .list_channels()
                .into_iter()
                .find(|c| c.channel_id == channel_id)
            else {
                mismatches.push(format!("peer {i} lost its channel"));
                continue;
            };
            let Some(theirs) = hub.get(&channel_id) else {
                mismatches.push(format!("the routing node lost peer {i}'s channel"));
                continue;
            };
            let b = ours.balances;
            let expected = start_peer + ledger.delta.get(i).copied().unwrap_or(0);
            let local = i128::from(b.to_local_msat);
            let mirrored = b.to_local_msat == theirs.to_remote_msat
                && b.to_remote_msat == theirs.to_local_msat;
            let whole = local + i128::from(b.to_remote_msat) == total;
            if mirrored && whole && local == expected {
                matched += 1;
            } else {
                mismatches.push(format!(
                    "peer {i}: peer sees {}/{} msat, routing node {}/{}; ledger expects {expected}",
                    b.to_local_msat, b.to_remote_msat, theirs.to_remote_msat, theirs.to_local_msat
                ));
            }
        }
        Reconciliation {
            matched,
            channels: self.peers.len(),
            mismatches,
            fees_msat: ledger.fees_msat,
            fees_reported_msat: ledger.fees_reported_msat,
        }
    }

    /// Stops the routing node.
    pub fn shutdown(self, grace: Duration) -> ShutdownReport {
        self.engine.shutdown(grace)
    }
}

/// BOLT 8: peer `i` dials the routing node; the acts pass between the two ends as bytes.
/// Returns the peer's end and the routing node's (its transport, and the peer's node id that
/// act three revealed).
fn handshake(
    plan: &Plan,
    secret: &SecretKey,
    hub_secret: &SecretKey,
    hub_id: &PublicKey,
    i: usize,
) -> Result<(Transport, Established), String> {
    let (peer, act_one) = Handshake::outbound(secret, hub_id, &plan.secret(b"eph-peer", i as u64));
    let hub = Handshake::inbound(hub_secret, &plan.secret(b"eph-hub", i as u64));
    let step = |h: Handshake, bytes: &[u8], who: &str| {
        h.read(bytes)
            .map_err(|e| format!("peer {i}'s handshake, {who}: {e}"))
    };
    let HandshakeStep::Reading {
        handshake: hub,
        write: act_two,
    } = step(hub, &act_one, "routing node")?
    else {
        return Err(format!("peer {i}'s handshake: act one cannot complete it"));
    };
    let HandshakeStep::Established(peer_end) = step(peer, &act_two, "peer")? else {
        return Err(format!("peer {i}'s handshake: act two did not complete it"));
    };
    let HandshakeStep::Established(hub_end) = step(hub, &peer_end.write, "routing node")? else {
        return Err(format!(
            "peer {i}'s handshake: act three did not complete it"
        ));
    };
    Ok((peer_end.transport, hub_end))
}
