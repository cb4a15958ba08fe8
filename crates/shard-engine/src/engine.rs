//! The threaded engine: N shards, each one thread with one bounded inbox and one NodeCore.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{
    bounded, unbounded, Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError,
};
use lightning_core::bitcoin::BlockHash;
use lightning_core::keys::ChannelKeys;
use lightning_core::node::{Event, Liveness, NodeConfig};
use lightning_core::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning_core::transport::{Handshake, HandshakeStep};

use crate::api::{ApiTask, Backend};
use crate::budget::ByteBudget;
use crate::connection::{
    ephemeral_key, AttachedConnection, Connection, ConnectionId, ConnectionOutput,
    ConnectionWriter, Connections, State,
};
use crate::coordinator::Coordinator;
use crate::driver::{open_shards, Handled, Refused, ShardDriver, Sink};
use crate::durable;
use crate::error::{EngineError, StopReason};
use crate::fees::FeeEstimator;
use crate::inbox::{Bell, Inbox, WAKE_TOKEN};
use crate::msg::{Out, ShardMsg};
use crate::placement::Placement;
use crate::shard::{Shard, ShardCounters, ShardStats};
use crate::socket::{PeerSocket, ShardSockets, SocketAttach, SocketSet, SocketWaker, SocketWriter};
use crate::store::{Store, StoreError, WriteOp};

/// How the engine is sized, and where it keeps its state.
#[derive(Clone)]
pub struct EngineConfig {
    /// Worker threads (shards), at least one.
    pub shards: usize,
    /// Messages each shard's inbox holds before a caller gets [`EngineError::Full`].
    pub inbox_capacity: usize,
    /// Bytes of peers' ciphertext each shard's inbox holds before a
    /// caller gets [`EngineError::Full`] (an empty inbox takes any one). Default 16 MiB.
    pub inbox_bytes: usize,
    /// Messages queued for one connection served through [`Engine::handle_bytes`] (its
    /// encrypted queue) before the engine disconnects the peer as too slow.
    pub peer_outbox_capacity: usize,
    /// Bytes queued for one connection served through [`Engine::handle_bytes`] (its
    /// encrypted queue) before the engine disconnects the peer as too slow: a write that
    /// would take a non-empty queue past it is refused. Default 1 MiB. (A host that attaches
    /// its own [`ConnectionWriter`] bounds its own queue.) Also the bound on what waits for a
    /// socket a shard owns ([`Engine::attach_socket`]), above half of which the shard stops
    /// reading that socket.
    pub peer_outbox_bytes: usize,
    /// How long a socket a shard owns may keep more than half of `peer_outbox_bytes` waiting
    /// (its peer does not read) before the shard disconnects the peer. Default 30 s.
    pub write_stall_timeout: Duration,
    /// Events queued for the application before shards wait for it to drain them.
    pub event_capacity: usize,
    /// How long an API call waits for its shard's answer.
    pub reply_timeout: Duration,
    /// The node configuration every shard runs with.
    pub node: NodeConfig,
    /// Where state is made durable; `None`: nowhere (state lives as long as the process).
    /// With a store, start with [`Engine::open`].
    pub store: Option<Arc<dyn Store>>,
    /// The most inbox messages a shard handles before one group commit (at least one; 1
    /// turns group commit off: one `write_batch` per message). A batch is also cut short when
    /// the inbox is empty. Without a store there is nothing to amortize, and each message's
    /// outputs leave as soon as it is handled. Default 64: as few syncs per payment as 256
    /// (0.41 vs 0.43 in `lnshard bench durable`), while shards forwarding to each other do not
    /// wait on each other's long batches (docs/ENGINE.md, "Batch size").
    pub commit_batch: usize,
    /// The longest a shard steps one batch before ending it (it then commits, and its
    /// outputs leave): bounds how long the first message's outputs wait on the messages
    /// behind it, which a busy inbox would otherwise stretch to `commit_batch` messages
    /// (two shards forwarding to each other then wait on each other's long batches). A batch
    /// always takes at least one message. Default 2 ms: with `FsStore`, about one fdatasync
    /// per 2 ms of work per shard, and `lnshard bench durable` at 0.8x of no store or more
    /// where batches of 64 gave 0.65x (docs/ENGINE.md, "Batch size").
    pub batch_time: Duration,
    /// Pipelined group commit, for a store whose writes wait on a disk
    /// ([`Store::overlap_writes`]: `FsStore`): a shard whose batch (up to `commit_batch`
    /// messages) ends with work waiting in its inbox hands the batch's writes to its own
    /// committer thread, which writes whatever has queued meanwhile in one `write_batch` (one
    /// sync), and goes on with the next messages; the batch's outputs leave, in order, the
    /// moment its write is durable. With an empty inbox the shard writes itself. Default
    /// true; false: the shard always writes itself, its inbox waiting meanwhile. Without
    /// effect on other stores.
    pub pipeline_commits: bool,
    /// Ping/pong liveness for peers ([`Engine::timer_tick`] drives it).
    pub liveness: Liveness,
    /// Test mode only (regtest conformance harnesses): every new channel uses these keys
    /// (see `NodeCore::set_forced_channel_keys`). `None` in every real node.
    pub forced_channel_keys: Option<ChannelKeys>,
    /// The host's fee estimator, consulted once at start and on every best block; `None`
    /// (the default): the host pushes estimates with
    /// [`NodeApi::fee_estimates_updated`](crate::NodeApi::fee_estimates_updated).
    pub fee_estimator: Option<Arc<dyn FeeEstimator>>,
}

impl core::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("shards", &self.shards)
            .field("inbox_capacity", &self.inbox_capacity)
            .field("inbox_bytes", &self.inbox_bytes)
            .field("peer_outbox_capacity", &self.peer_outbox_capacity)
            .field("peer_outbox_bytes", &self.peer_outbox_bytes)
            .field("write_stall_timeout", &self.write_stall_timeout)
            .field("event_capacity", &self.event_capacity)
            .field("reply_timeout", &self.reply_timeout)
            .field("node", &self.node)
            .field("store", &self.store.as_ref().map(|_| "dyn Store"))
            .field("commit_batch", &self.commit_batch)
            .field("batch_time", &self.batch_time)
            .field("pipeline_commits", &self.pipeline_commits)
            .field("liveness", &self.liveness)
            .field("forced_channel_keys", &self.forced_channel_keys.is_some())
            .field("fee_estimator", &self.fee_estimator.is_some())
            .finish()
    }
}

impl EngineConfig {
    /// Whether shards hand their writes to committer threads ([`EngineConfig::pipeline_commits`]
    /// with a store whose writes wait on a disk).
    pub(crate) fn pipelines_commits(&self) -> bool {
        self.pipeline_commits && self.store.as_ref().is_some_and(|s| s.overlap_writes())
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            shards: 2,
            inbox_capacity: 4096,
            inbox_bytes: 16 << 20,
            peer_outbox_capacity: 4096,
            peer_outbox_bytes: 1 << 20,
            write_stall_timeout: Duration::from_secs(30),
            event_capacity: 65_536,
            reply_timeout: Duration::from_secs(10),
            node: NodeConfig::default(),
            store: None,
            commit_batch: 64,
            batch_time: Duration::from_millis(2),
            pipeline_commits: true,
            liveness: Liveness::default(),
            forced_channel_keys: None,
            fee_estimator: None,
        }
    }
}

/// State shared by the application's handle and the shard threads.
#[derive(Debug)]
struct Shared {
    coordinator: Arc<Coordinator>,
    /// Per shard: the bytes of peers' messages in its inbox, against
    /// [`EngineConfig::inbox_bytes`].
    inbox_bytes: Vec<ByteBudget>,
    events_tx: Sender<Event>,
    events_rx: Receiver<Event>,
    /// Messages queued to a shard (by anyone) and not yet fully handled.
    pending: AtomicUsize,
    /// Shards holding changes carried over uncommitted, until their idle flush.
    deferred: AtomicUsize,
    /// Shards whose committer holds batches not yet durable (their outputs wait).
    committing: AtomicUsize,
    closing: AtomicBool,
    /// Set by [`Engine::abort`]: shards stop at once, as the process would in a crash.
    aborted: AtomicBool,
    /// Set once, when the engine stops on a failure (a shard's commit failed, a shard
    /// panicked): the [`EngineError::Stopped`] every later call returns. Every shard checks
    /// it before taking a message.
    stopped: OnceLock<EngineError>,
    /// Held shared by every store write of a shard or a committer (which checks `stopped`
    /// under it), and exclusively by [`Shared::halt`] while it sets `stopped`: once the stop
    /// is visible, no write is under way and none starts, on any shard.
    write_gate: parking_lot::RwLock<()>,
}

impl Shared {
    /// The error of a stopped engine, if it stopped.
    fn stopped(&self) -> Option<EngineError> {
        self.stopped.get().cloned()
    }

    fn is_stopped(&self) -> bool {
        self.stopped.get().is_some()
    }

    /// Writes `ops` to `store` unless the engine has stopped (`None` then: nothing was
    /// written). The caller must not hold the gate (see [`Shared::write_gate`]).
    fn write(&self, store: &dyn Store, ops: &[WriteOp]) -> Option<Result<(), StoreError>> {
        let _gate = self.write_gate.read();
        if self.is_stopped() {
            return None;
        }
        Some(store.write_batch(ops))
    }

    /// Stops the whole engine for `reason` (the first reason wins; it is logged once), and
    /// wakes every shard waiting on its inbox so that it sees the stop and exits.
    fn halt(&self, reason: StopReason, senders: &[Inbox]) {
        let error = EngineError::Stopped { reason };
        let first = {
            // Waits out every write under way; none starts after the stop is set.
            let _gate = self.write_gate.write();
            self.stopped.set(error.clone()).is_ok()
        };
        if first {
            tracing::error!(%error, "engine stopped: every shard stops taking messages");
        }
        for sender in senders {
            // A shard with a full inbox is not waiting: it sees the stop at its next message.
            let _ = sender.try_send(ShardMsg::Shutdown);
        }
    }
}

/// What [`Engine::shutdown`] hands back.
#[derive(Debug, Default)]
pub struct ShutdownReport {
    /// Cross-shard messages (forwards, results) that could not be delivered because their
    /// target shard had already stopped: work to replay after a restart.
    pub parked: Vec<ShardMsg>,
    /// Events the application had not drained.
    pub events: Vec<Event>,
    /// Each shard's final counters.
    pub stats: Vec<ShardStats>,
}

/// The shard engine: see the [crate documentation](crate).
///
/// Thread-safety: every method takes `&self` and may be called from any thread; calls for
/// one peer must come from one thread at a time to keep that peer's messages in order.
pub struct Engine {
    node_id: PublicKey,
    placement: Placement,
    shared: Arc<Shared>,
    senders: Vec<Inbox>,
    /// Per shard: what attaching a socket to it takes.
    sockets: Vec<ShardSockets>,
    counters: Vec<Arc<ShardCounters>>,
    threads: Vec<JoinHandle<Vec<ShardMsg>>>,
    inbox_capacity: usize,
    peer_outbox_capacity: usize,
    peer_outbox_bytes: usize,
    reply_timeout: Duration,
    node_secret: SecretKey,
    seed: [u8; 32],
    connections: Connections,
    handshakes: AtomicU64,
    fee_estimator: Option<Arc<dyn FeeEstimator>>,
}

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("node_id", &self.node_id)
            .field("shards", &self.placement.shards())
            .field("fee_estimator", &self.fee_estimator.is_some())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts `config.shards` shard threads for a new node `node_secret`, deriving all keys
    /// and randomness from `seed` (as `NodeCore::new`).
    ///
    /// With a store in `config`, the new node's state is written to it from the first batch
    /// on, whatever the store held (use [`Engine::open`] to resume from a store), once our
    /// node id is recorded in it. A store that records another node id, or one that fails
    /// to record ours, is not written: the engine starts stopped, with
    /// [`StopReason::Start`] ([`Engine::health`] and every call report it).
    pub fn new(
        config: EngineConfig,
        node_secret: SecretKey,
        seed: [u8; 32],
        best_height: u32,
        best_hash: BlockHash,
    ) -> Engine {
        let claim = match &config.store {
            Some(store) => {
                let ours = PublicKey::from_secret_key(&Secp256k1::signing_only(), &node_secret);
                durable::check_owner(store.as_ref(), &ours).and_then(|op| match op {
                    Some(op) => store.write_batch(&[op]).map_err(durable::store_error),
                    None => Ok(()),
                })
            }
            None => Ok(()),
        };
        let placement = Placement::new(&node_secret, config.shards);
        let coordinator = Arc::new(Coordinator::new(
            config.node.shard_share(placement.shards()),
            best_height,
            best_hash,
        ));
        let shards = (0..placement.shards())
            .map(|index| {
                Shard::new(
                    index,
                    node_secret,
                    seed,
                    coordinator.clone(),
                    placement.clone(),
                )
            })
            .collect();
        let mut config = config;
        if claim.is_err() {
            // Not our store (or it cannot be written): nothing of ours goes into it.
            config.store = None;
        }
        let engine = Engine::start(
            config,
            node_secret,
            seed,
            placement,
            coordinator,
            shards,
            Vec::new(),
        );
        if let Err(error) = claim {
            engine.shared.halt(
                StopReason::Start {
                    error: Box::new(error),
                },
                &engine.senders,
            );
        }
        engine
    }

    /// Starts an engine on `config.store` (required), resuming the node it holds: a store
    /// written by an engine with any shard count, or an empty one (a new node at
    /// `best_height`).
    ///
    /// Every record is read; node records are merged and split again by peer over
    /// `config.shards` shards; each shard gets its peers' channels (`NodeCore::restore`:
    /// peers start disconnected and resume with `channel_reestablish` when they reconnect);
    /// the coordinator's maps are rebuilt from the channels. Results of forwards that
    /// another shard had committed but this one had not yet applied are applied; a forward
    /// (or payment) whose downstream HTLC was never committed fails back upstream (see
    /// `docs/ENGINE.md`, "Durable state"). The whole rebuilt state is then written back in
    /// one batch (old node records removed) before any output leaves.
    ///
    /// The engine's best block (`coordinator().best_block()`) is then the lowest any shard
    /// had committed (`best_height` and `best_hash` only serve an empty store): resume the
    /// chain feed from the block above it (see [`crate::NodeApi::best_block_updated`]). If
    /// the reported block is not on your chain, disconnect from its height first
    /// ([`crate::NodeApi::block_disconnected`]); shards that stored different blocks at that
    /// height report the all-zero hash, which is on no chain, for this reason.
    ///
    /// The store records the node id it belongs to (written in the opening batch if it has
    /// none, as in a store written before it was recorded).
    ///
    /// Errors, with nothing started or changed: [`EngineError::NoStore`] without
    /// `config.store`; [`EngineError::WrongNode`] when the store belongs to another node;
    /// [`EngineError::Store`] when the store fails; [`EngineError::Record`] when a record
    /// cannot be read (a corrupt record, a newer incompatible version).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// use shard_engine::lightning_core::bitcoin::{hashes::Hash, BlockHash};
    /// use shard_engine::lightning_core::secp256k1::SecretKey;
    /// use shard_engine::store::MemoryStore;
    /// use shard_engine::{Engine, EngineConfig};
    ///
    /// // A real node keeps its state on disk (`store::FsStore`); this one in memory.
    /// let config = EngineConfig {
    ///     shards: 2,
    ///     store: Some(Arc::new(MemoryStore::new())),
    ///     ..EngineConfig::default()
    /// };
    /// let node_secret = SecretKey::from_slice(&[0x11; 32])?; // the node's key, kept secret
    /// let seed = [0x22; 32]; // 32 random bytes kept with the key: the other keys derive from it
    /// let (height, tip) = (100, BlockHash::all_zeros()); // the chain's tip, for a new node
    /// let engine = Engine::open(config, node_secret, seed, height, tip)?;
    /// println!("node {}", engine.node_id());
    /// // Resume the chain feed from the block above this one (NodeApi::best_block_updated).
    /// let (best_height, _best_hash) = engine.coordinator().best_block();
    /// assert_eq!(best_height, 100);
    /// engine.shutdown(Duration::from_secs(5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(
        config: EngineConfig,
        node_secret: SecretKey,
        seed: [u8; 32],
        best_height: u32,
        best_hash: BlockHash,
    ) -> Result<Engine, EngineError> {
        let opened = open_shards(&config, node_secret, seed, best_height, best_hash)?;
        Ok(Engine::start(
            config,
            node_secret,
            seed,
            opened.placement,
            opened.coordinator,
            opened.shards,
            opened.initial,
        ))
    }

    fn start(
        config: EngineConfig,
        node_secret: SecretKey,
        seed: [u8; 32],
        placement: Placement,
        coordinator: Arc<Coordinator>,
        shards: Vec<Shard>,
        mut initial: Vec<Vec<Out>>,
    ) -> Engine {
        let n = placement.shards();
        let (events_tx, events_rx) = bounded(config.event_capacity.max(1));
        let shared = Arc::new(Shared {
            coordinator: coordinator.clone(),
            inbox_bytes: (0..n)
                .map(|_| ByteBudget::new(config.inbox_bytes))
                .collect(),
            events_tx,
            events_rx,
            pending: AtomicUsize::new(0),
            deferred: AtomicUsize::new(0),
            committing: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            stopped: OnceLock::new(),
            write_gate: parking_lot::RwLock::new(()),
        });
        let inbox_capacity = config.inbox_capacity.max(1);
        // Each shard sleeps in its own poller: its sockets, and a bell for everything else.
        let polls: Vec<mio::Poll> = (0..n)
            .map(|_| mio::Poll::new().expect("creating a shard's poller (the OS refused)"))
            .collect();
        let bells: Vec<Arc<Bell>> = polls
            .iter()
            .map(|p| Bell::new(p).expect("creating a shard's waker (the OS refused)"))
            .collect();
        let (senders, receivers): (Vec<_>, Vec<_>) = bells
            .iter()
            .map(|bell| Inbox::bounded(inbox_capacity, bell.clone()))
            .unzip();
        initial.resize_with(n, Vec::new);
        let mut counters = Vec::new();
        let mut threads = Vec::new();
        let mut sockets = Vec::new();
        for (((shard, rx), first), poll) in
            shards.into_iter().zip(receivers).zip(initial).zip(polls)
        {
            let index = shard.index();
            counters.push(shard.counters().clone());
            let bell = senders[index].bell().clone();
            let (committer, reports) = match &config.store {
                Some(store) if config.pipelines_commits() => {
                    let (committer, reports) =
                        Committer::spawn(index, store.clone(), &shared, bell.clone());
                    (Some(committer), Some(reports))
                }
                _ => (None, None),
            };
            let registry = poll
                .registry()
                .try_clone()
                .expect("sharing a shard's poller registry (the OS refused)");
            let (set, attach) = SocketSet::new(
                registry,
                bell.clone(),
                config.peer_outbox_bytes,
                config.write_stall_timeout,
            );
            sockets.push(attach);
            let worker = Worker {
                driver: ShardDriver::new(shard, &config, n),
                sink: ThreadSink {
                    senders: senders.clone(),
                    shared: shared.clone(),
                    inbox: rx.clone(),
                    committer,
                    sockets_waiting: false,
                },
                rx,
                reports,
                held: None,
                counted_deferred: false,
                counted_committing: false,
                poll,
                events: mio::Events::with_capacity(256),
                bell,
                sockets: set,
                read_buf: Vec::new(),
                batch_time: config.batch_time,
            };
            let handle = std::thread::Builder::new()
                .name(format!("lnshard-shard-{index}"))
                .spawn(move || worker.run(first))
                .expect("spawning a shard thread (the OS refused a thread)");
            threads.push(handle);
        }
        let secp = Secp256k1::signing_only();
        let engine = Engine {
            node_id: PublicKey::from_secret_key(&secp, &node_secret),
            placement,
            shared,
            senders,
            sockets,
            counters,
            threads,
            inbox_capacity,
            peer_outbox_capacity: config.peer_outbox_capacity.max(1),
            peer_outbox_bytes: config.peer_outbox_bytes,
            reply_timeout: config.reply_timeout,
            node_secret,
            seed,
            connections: Connections::default(),
            handshakes: AtomicU64::new(0),
            fee_estimator: config.fee_estimator.clone(),
        };
        // The estimator's first answer, applied as the pushed estimates are.
        if let Some(estimates) = Backend::estimated_fees(&&engine) {
            if let Err(error) = crate::NodeApi::fee_estimates_updated(&engine, estimates) {
                tracing::warn!(%error, "could not apply the fee estimator's first answer");
            }
        }
        engine
    }

    /// Our node id.
    pub fn node_id(&self) -> PublicKey {
        self.node_id
    }

    /// Whether the engine is running: `Ok` while it is (shutting down included), else the
    /// [`EngineError::Stopped`] naming why it stopped (a shard's commit failed, with the
    /// store's error; a shard panicked; [`Engine::new`] could not claim its store). A
    /// stopped engine takes no more work and every call returns that error: shut it down,
    /// fix the cause and start again on the store ([`Engine::open`]), which returns every
    /// state that was acknowledged.
    pub fn health(&self) -> Result<(), EngineError> {
        match self.shared.stopped() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.placement.shards()
    }

    /// The shard that owns `node_id`.
    pub fn shard_of(&self, node_id: &PublicKey) -> usize {
        self.placement.shard_of(node_id)
    }

    /// The coordinator (read-only routing state).
    pub fn coordinator(&self) -> &Coordinator {
        &self.shared.coordinator
    }

    /// The engine as a [`Backend`] (the API calls of [`NodeApi`](crate::NodeApi) run on it).
    fn backend(&self) -> &Engine {
        self
    }

    fn add_connection(&self, conn: ConnectionId, state: State) -> Result<(), EngineError> {
        self.health()?;
        if self.shared.closing.load(Ordering::SeqCst) {
            return Err(EngineError::ShuttingDown);
        }
        let mut map = self.connections.map.write();
        if map.contains_key(&conn) {
            return Err(EngineError::DuplicateConnection(conn));
        }
        map.insert(
            conn,
            Arc::new(parking_lot::Mutex::new(Connection::new(state))),
        );
        Ok(())
    }

    fn next_ephemeral(&self, conn: ConnectionId) -> SecretKey {
        let counter = self.handshakes.fetch_add(1, Ordering::SeqCst);
        ephemeral_key(&self.seed, conn, counter)
    }

    /// Opens a BOLT 8 connection to `their_node_id`: returns act one, to write to the socket.
    /// Then feed every byte read to [`Engine::handle_bytes`] and write what it returns; once
    /// the handshake is done, write what [`Engine::connection_outputs`] hands out whenever
    /// [`Engine::wait_ready_connection`] names the connection. `conn` is the caller's name
    /// for the socket, unique among its open connections.
    ///
    /// Two engines in one process, the bytes carried by hand instead of by sockets:
    ///
    /// ```
    /// use shard_engine::lightning_core::bitcoin::{hashes::Hash, BlockHash};
    /// use shard_engine::lightning_core::secp256k1::SecretKey;
    /// use shard_engine::{Engine, EngineConfig};
    ///
    /// let start = |byte: u8| -> Result<Engine, Box<dyn std::error::Error>> {
    ///     let secret = SecretKey::from_slice(&[byte; 32])?;
    ///     let tip = BlockHash::all_zeros();
    ///     Ok(Engine::new(EngineConfig::default(), secret, [byte; 32], 100, tip))
    /// };
    /// let (alice, bob) = (start(1)?, start(2)?);
    /// // Alice dials Bob (her connection 1, his connection 7): the three acts cross.
    /// let act_one = alice.new_outbound_connection(1, bob.node_id())?;
    /// bob.new_inbound_connection(7)?;
    /// let act_two = bob.handle_bytes(7, &act_one)?;
    /// let act_three = alice.handle_bytes(1, &act_two)?;
    /// bob.handle_bytes(7, &act_three)?;
    /// assert_eq!(alice.connection_node_id(1), Some(bob.node_id()));
    /// assert_eq!(bob.connection_node_id(7), Some(alice.node_id()));
    /// // From now on the shards encrypt: carry connection_outputs(1) into handle_bytes(7)
    /// // and back (crates/lnshard/examples/two_engines.rs runs the whole pump).
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new_outbound_connection(
        &self,
        conn: ConnectionId,
        their_node_id: PublicKey,
    ) -> Result<Vec<u8>, EngineError> {
        let ephemeral = self.next_ephemeral(conn);
        let (handshake, act_one) =
            Handshake::outbound(&self.node_secret, &their_node_id, &ephemeral);
        self.add_connection(conn, State::Handshaking(handshake))?;
        Ok(act_one.to_vec())
    }

    /// Accepts a BOLT 8 connection: feed every byte read to [`Engine::handle_bytes`].
    pub fn new_inbound_connection(&self, conn: ConnectionId) -> Result<(), EngineError> {
        let ephemeral = self.next_ephemeral(conn);
        let handshake = Handshake::inbound(&self.node_secret, &ephemeral);
        self.add_connection(conn, State::Handshaking(handshake))
    }

    /// An established BOLT 8 connection `conn` to `node_id` (the handshake done by the host):
    /// its cipher states and writer move into the peer's shard, which from now on decrypts
    /// what [`Engine::connection_ciphertext`] hands it and encrypts every message for the
    /// peer into `writer`, after the state the message reports is durable. The shard treats
    /// it as the peer connecting (our `init` is the first write); an older attached
    /// connection of the same peer is closed and replaced.
    ///
    /// A control message: it waits for room in the shard's inbox.
    pub fn attach_connection(
        &self,
        conn: ConnectionId,
        node_id: PublicKey,
        transport: lightning_core::transport::Transport,
        writer: Box<dyn ConnectionWriter>,
    ) -> Result<(), EngineError> {
        let shard = self.placement.shard_of(&node_id);
        let attached = AttachedConnection {
            conn,
            node_id,
            transport,
            writer,
        };
        self.backend()
            .enqueue(shard, ShardMsg::Attach(attached), true)
    }

    /// Hands an established connection's socket to its peer's shard, which reads and writes
    /// it itself from now on (shared-nothing IO: see [`crate::socket`]): the host calls
    /// nothing more for this connection, neither [`Engine::connection_ciphertext`] nor
    /// [`Engine::detach_connection`] (which still closes it early if called). `transport`
    /// holds the cipher states right after the handshake the host ran on `socket`; bytes the
    /// peer sent after act three are read from the socket. `on_close` runs once, on the
    /// shard's thread, when the socket is closed (by the peer, by a failure, or by the shard
    /// disconnecting the peer); it must not block.
    ///
    /// Returns the waker an in-memory socket (one without [`PeerSocket::poll_fd`]) calls
    /// when it has bytes to read or room to write; a socket with a descriptor needs none.
    ///
    /// Errors as [`Engine::attach_connection`].
    pub fn attach_socket(
        &self,
        conn: ConnectionId,
        node_id: PublicKey,
        transport: lightning_core::transport::Transport,
        socket: Box<dyn PeerSocket>,
        on_close: Option<Box<dyn FnOnce(ConnectionId) + Send>>,
    ) -> Result<SocketWaker, EngineError> {
        let shard = self.placement.shard_of(&node_id);
        let sockets = self.sockets.get(shard).ok_or(EngineError::ShuttingDown)?;
        let shared = crate::socket::Owned::new(socket);
        let signalled = Arc::new(AtomicBool::new(false));
        let waker = sockets.waker(conn, signalled.clone());
        let writer = SocketWriter {
            conn,
            shared: shared.clone(),
            limit: self.peer_outbox_bytes,
            closed_tx: sockets.closed_tx.clone(),
        };
        let attach = SocketAttach {
            attached: AttachedConnection {
                conn,
                node_id,
                transport,
                writer: Box::new(writer),
            },
            shared,
            signalled,
            on_close,
        };
        self.backend()
            .enqueue(shard, ShardMsg::AttachSocket(Box::new(attach)), true)?;
        Ok(waker)
    }

    /// Bytes read from attached connection `conn` of `node_id`, still encrypted (any framing:
    /// the shard reassembles frames). [`EngineError::Full`] when the shard's inbox is full:
    /// nothing was queued; stop reading the socket and retry later (backpressure).
    pub fn connection_ciphertext(
        &self,
        conn: ConnectionId,
        node_id: PublicKey,
        bytes: Vec<u8>,
    ) -> Result<(), EngineError> {
        let shard = self.placement.shard_of(&node_id);
        let msg = ShardMsg::Ciphertext {
            conn,
            node_id,
            bytes,
        };
        self.backend().enqueue(shard, msg, false)
    }

    /// Attached connection `conn` of `node_id` closed: its shard forgets it and the peer is
    /// disconnected (nothing happens if the peer has attached another connection since).
    pub fn detach_connection(
        &self,
        conn: ConnectionId,
        node_id: PublicKey,
    ) -> Result<(), EngineError> {
        let shard = self.placement.shard_of(&node_id);
        self.backend()
            .enqueue(shard, ShardMsg::Detach { conn, node_id }, true)
    }

    /// The host's clock (`now_ms`, milliseconds on a monotonic clock): peers are pinged and
    /// those whose `pong` is late disconnected ([`EngineConfig::liveness`]). Call it about
    /// once a second. Only shards whose core asked for a tick by `now_ms`
    /// ([`NodeCore::poll_timeout`](lightning_core::node::NodeCore::poll_timeout)) are woken:
    /// an idle node's shards sleep through the ticks.
    pub fn timer_tick(&self, now_ms: u64) -> Result<(), EngineError> {
        for shard in 0..self.placement.shards() {
            let due = self
                .counters
                .get(shard)
                .is_none_or(|c| c.next_tick_ms.load(Ordering::Relaxed) <= now_ms);
            if !due {
                continue;
            }
            self.backend()
                .enqueue(shard, ShardMsg::Timer { now_ms }, true)?;
        }
        Ok(())
    }

    /// Bytes read from connection `conn`'s socket: runs the handshake on the caller's thread
    /// (returning the act to write, if any); after act three the connection's cipher states
    /// move into the peer's shard ([`Engine::attach_connection`]), and every later byte goes
    /// there still encrypted, to be decrypted on the shard thread.
    ///
    /// On [`EngineError::Full`] every byte was taken (ciphertext waits inside the
    /// connection): stop reading the socket and call `handle_bytes(conn, &[])` until it
    /// returns `Ok`. On a handshake error the connection is forgotten: close the socket.
    /// Bytes that fail to decrypt are found on the shard, which closes the connection:
    /// [`Engine::connection_outputs`] then reports `disconnect`.
    pub fn handle_bytes(&self, conn: ConnectionId, bytes: &[u8]) -> Result<Vec<u8>, EngineError> {
        self.health()?;
        let connection = self
            .connections
            .get(conn)
            .ok_or(EngineError::UnknownConnection(conn))?;
        let mut c = connection.lock();
        let mut reply = Vec::new();
        let mut input = bytes;
        let leftover: Vec<u8>;
        if matches!(c.state, State::Handshaking(_)) {
            let State::Handshaking(handshake) = std::mem::replace(&mut c.state, State::Failed)
            else {
                return Ok(reply);
            };
            match handshake.read(input) {
                Ok(HandshakeStep::Reading { handshake, write }) => {
                    c.state = State::Handshaking(handshake);
                    return Ok(write);
                }
                Ok(HandshakeStep::Established(established)) => {
                    // The peer must be known to its shard before its first message: a
                    // control message, waiting for room.
                    let node_id = established.node_id;
                    let (writer, reader) = self.connections.queue(
                        conn,
                        self.peer_outbox_capacity,
                        self.peer_outbox_bytes,
                    );
                    self.attach_connection(conn, node_id, established.transport, Box::new(writer))?;
                    c.state = State::Established {
                        node_id,
                        queue: reader,
                    };
                    reply = established.write;
                    leftover = established.leftover;
                    input = &leftover;
                }
                Err(error) => {
                    drop(c);
                    self.connections.map.write().remove(&conn);
                    return Err(EngineError::Handshake { conn, error });
                }
            }
        }
        let State::Established { node_id, .. } = &c.state else {
            return Ok(reply);
        };
        let node_id = *node_id;
        if !input.is_empty() {
            c.pending.push_back(input.to_vec());
        }
        while let Some(bytes) = c.pending.front() {
            // A copy: on a full inbox the bytes stay queued in the connection.
            self.connection_ciphertext(conn, node_id, bytes.clone())?;
            c.pending.pop_front();
        }
        Ok(reply)
    }

    /// What to write to connection `conn`'s socket now: every message its peer's shard
    /// encrypted for it, and whether to close it afterwards (the shard closed it: asked to by
    /// the protocol, or the bytes did not decrypt). Nothing before the handshake completes.
    pub fn connection_outputs(&self, conn: ConnectionId) -> Result<ConnectionOutput, EngineError> {
        let connection = self
            .connections
            .get(conn)
            .ok_or(EngineError::UnknownConnection(conn))?;
        let c = connection.lock();
        let State::Established { queue, .. } = &c.state else {
            return Ok(ConnectionOutput::default());
        };
        let (bytes, disconnect) = queue.drain();
        Ok(ConnectionOutput { bytes, disconnect })
    }

    /// A connection served through [`Engine::handle_bytes`] whose shard wrote to it or closed
    /// it since [`Engine::connection_outputs`] last drained it, waiting up to `timeout`; then
    /// drain it with [`Engine::connection_outputs`]. Each connection appears at most once
    /// until drained (it may have been closed since: `connection_outputs` then answers
    /// [`EngineError::UnknownConnection`]).
    pub fn wait_ready_connection(&self, timeout: Duration) -> Option<ConnectionId> {
        self.connections.wait_ready(timeout)
    }

    /// The node id at the other end of `conn`, once its handshake is complete.
    pub fn connection_node_id(&self, conn: ConnectionId) -> Option<PublicKey> {
        let connection = self.connections.get(conn)?;
        let c = connection.lock();
        match &c.state {
            State::Established { node_id, .. } => Some(*node_id),
            _ => None,
        }
    }

    /// The socket of `conn` closed: the engine forgets it (and tells the peer's shard).
    pub fn connection_closed(&self, conn: ConnectionId) -> Result<(), EngineError> {
        let removed = self
            .connections
            .map
            .write()
            .remove(&conn)
            .ok_or(EngineError::UnknownConnection(conn))?;
        let node_id = match &removed.lock().state {
            State::Established { node_id, .. } => Some(*node_id),
            _ => None,
        };
        if let Some(node_id) = node_id {
            self.detach_connection(conn, node_id)?;
        }
        Ok(())
    }

    /// The next event, without blocking.
    pub fn next_event(&self) -> Option<Event> {
        self.shared.events_rx.try_recv().ok()
    }

    /// The next event, waiting up to `timeout`.
    pub fn wait_event(&self, timeout: Duration) -> Option<Event> {
        self.shared.events_rx.recv_timeout(timeout).ok()
    }

    /// Every queued event, without blocking.
    ///
    /// Drain events as they come ([`Engine::wait_event`] in a loop of its own, or this call
    /// after each batch of work): shards wait for room when the queue is full
    /// ([`EngineConfig::event_capacity`]), so an application that stops draining stalls the
    /// engine.
    ///
    /// ```
    /// use shard_engine::lightning_core::node::Event;
    /// use shard_engine::Engine;
    ///
    /// fn handle_events(engine: &Engine) {
    ///     for event in engine.drain_events() {
    ///         match event {
    ///             // Hand the transaction to your Bitcoin node (the engine made it).
    ///             Event::BroadcastTransaction { tx } => {
    ///                 println!("broadcast {}", tx.compute_txid())
    ///             }
    ///             // Claim with the invoice's preimage (NodeApi::claim_funds) or fail it back.
    ///             Event::PaymentClaimable { payment_hash, .. } => {
    ///                 println!("claimable {payment_hash}")
    ///             }
    ///             other => println!("{other:?}"),
    ///         }
    ///     }
    /// }
    /// # use shard_engine::lightning_core::bitcoin::{hashes::Hash, BlockHash};
    /// # use shard_engine::lightning_core::secp256k1::SecretKey;
    /// # let secret = SecretKey::from_slice(&[1; 32]).expect("a valid key");
    /// # let tip = BlockHash::all_zeros();
    /// # let engine = Engine::new(Default::default(), secret, [1; 32], 100, tip);
    /// handle_events(&engine);
    /// ```
    pub fn drain_events(&self) -> Vec<Event> {
        self.shared.events_rx.try_iter().collect()
    }

    /// Whether every message queued to a shard has been handled and committed (outputs may
    /// still wait for the application), or the engine has stopped (nothing queued will be
    /// handled: [`Engine::health`]). A shard whose last batches needed no commit (see
    /// [`EngineConfig::commit_batch`]) commits them once its inbox stays empty for a few
    /// milliseconds: the engine is idle after that.
    pub fn is_idle(&self) -> bool {
        (self.shared.pending.load(Ordering::SeqCst) == 0
            && self.shared.deferred.load(Ordering::SeqCst) == 0
            && self.shared.committing.load(Ordering::SeqCst) == 0)
            || self.shared.is_stopped()
    }

    /// Messages queued to shards and not yet handled.
    pub fn pending_work(&self) -> usize {
        self.shared.pending.load(Ordering::SeqCst)
    }

    /// Each shard's counters.
    pub fn shard_stats(&self) -> Vec<ShardStats> {
        self.counters.iter().map(|c| c.snapshot()).collect()
    }

    /// Stops the engine as a crash would, for tests of durability: every shard stops at its
    /// next batch boundary, or between a batch's commit and the release of its outputs;
    /// queued messages, parked cross-shard traffic and unreleased outputs are dropped.
    /// What was committed stays in the store ([`Engine::open`] resumes from it).
    pub fn abort(self) {
        self.shared.aborted.store(true, Ordering::SeqCst);
        // Drop joins the threads.
    }

    /// Stops the engine: refuses new calls, lets queued work finish (up to `grace`), then
    /// tells every shard to stop and joins every thread. Events not drained and cross-shard
    /// messages that found their target stopped come back in the report.
    pub fn shutdown(mut self, grace: Duration) -> ShutdownReport {
        self.shared.closing.store(true, Ordering::SeqCst);
        let mut report = ShutdownReport::default();
        let deadline = Instant::now() + grace;
        while !self.is_idle() && Instant::now() < deadline {
            report.events.extend(self.drain_events());
            std::thread::sleep(Duration::from_millis(1));
        }
        for sender in &self.senders {
            let mut msg = ShardMsg::Shutdown;
            loop {
                match sender.send_timeout(msg, Duration::from_millis(1)) {
                    Ok(()) => break,
                    Err(crossbeam_channel::SendTimeoutError::Timeout(m)) => {
                        msg = m;
                        report.events.extend(self.drain_events());
                    }
                    Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => break,
                }
            }
        }
        self.senders.clear();
        let threads: Vec<_> = self.threads.drain(..).collect();
        for handle in threads {
            while !handle.is_finished() {
                report.events.extend(self.drain_events());
                std::thread::sleep(Duration::from_micros(200));
            }
            match handle.join() {
                Ok(mut parked) => report.parked.append(&mut parked),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        report.events.extend(self.drain_events());
        report.stats = self.shard_stats();
        report
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // An engine dropped without `shutdown`: stop the threads all the same (no detached
        // threads).
        self.shared.closing.store(true, Ordering::SeqCst);
        for sender in &self.senders {
            let _ = sender.try_send(ShardMsg::Shutdown);
        }
        self.senders.clear();
        for handle in self.threads.drain(..) {
            while !handle.is_finished() {
                let _ = self.shared.events_rx.try_iter().count();
                std::thread::sleep(Duration::from_micros(200));
            }
            let _ = handle.join();
        }
    }
}

/// The threaded engine as an API [`Backend`].
impl Backend for &Engine {
    fn placement(&self) -> &Placement {
        &self.placement
    }

    fn estimated_fees(&self) -> Option<lightning_core::node::FeeEstimates> {
        self.fee_estimator.as_ref()?.estimates()
    }

    fn coordinator(&self) -> &Coordinator {
        &self.shared.coordinator
    }

    fn enqueue(&mut self, shard: usize, msg: ShardMsg, control: bool) -> Result<(), EngineError> {
        let engine: &Engine = self;
        engine.health()?;
        if engine.shared.closing.load(Ordering::SeqCst) {
            return Err(EngineError::ShuttingDown);
        }
        let sender = engine.senders.get(shard).ok_or(EngineError::ShuttingDown)?;
        let len = msg.peer_bytes();
        let budget = engine.shared.inbox_bytes.get(shard).filter(|_| len > 0);
        if let Some(budget) = budget {
            if !budget.try_take(len) {
                return Err(EngineError::Full {
                    shard,
                    capacity: engine.inbox_capacity,
                });
            }
        }
        engine.shared.pending.fetch_add(1, Ordering::SeqCst);
        let result = if control {
            // Waits for room, but not on a shard that stopped (its inbox never drains).
            let mut msg = msg;
            loop {
                match sender.send_timeout(msg, STOP_POLL) {
                    Ok(()) => break Ok(()),
                    Err(crossbeam_channel::SendTimeoutError::Timeout(m)) => {
                        engine.health()?;
                        msg = m;
                    }
                    Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => {
                        break Err(engine.gone())
                    }
                }
            }
        } else {
            sender.try_send(msg).map_err(|e| match e {
                TrySendError::Full(_) => EngineError::Full {
                    shard,
                    capacity: engine.inbox_capacity,
                },
                TrySendError::Disconnected(_) => engine.gone(),
            })
        };
        if result.is_err() {
            engine.shared.pending.fetch_sub(1, Ordering::SeqCst);
            if let Some(budget) = budget {
                budget.give_back(len);
            }
        }
        result
    }

    fn submit(&mut self, shard: usize, task: ApiTask) -> Result<(), EngineError> {
        self.enqueue(shard, ShardMsg::Api(task), false)
    }

    fn wait<R>(&mut self, shard: usize, answer: &Receiver<R>) -> Result<R, EngineError> {
        let engine: &Engine = self;
        let timeout = engine.reply_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            // In slices: a caller waiting on a shard wakes as soon as the engine stops, with
            // its reason.
            let left = deadline.saturating_duration_since(Instant::now());
            match answer.recv_timeout(left.min(STOP_POLL)) {
                Ok(reply) => return Ok(reply),
                Err(RecvTimeoutError::Disconnected) => return Err(engine.gone()),
                Err(RecvTimeoutError::Timeout) => {
                    engine.health()?;
                    if left <= STOP_POLL {
                        return Err(EngineError::Timeout {
                            shard,
                            waited_ms: timeout.as_millis() as u64,
                        });
                    }
                }
            }
        }
    }
}

/// How often a caller waiting on a shard (for an answer, for room in its inbox) checks
/// whether the engine stopped.
const STOP_POLL: Duration = Duration::from_millis(20);

impl Engine {
    /// The error for a shard that is gone: the engine's stop reason, else shutting down.
    fn gone(&self) -> EngineError {
        // A shard drops what it was handling (a caller's reply channel, say) at shutdown, or
        // while a panic unwinds it, just before it records why the engine stopped: unless the
        // engine is shutting down, wait a moment for that reason.
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            if let Some(stopped) = self.shared.stopped() {
                return stopped;
            }
            if self.shared.closing.load(Ordering::SeqCst) || Instant::now() >= deadline {
                return EngineError::ShuttingDown;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The threads' [`Sink`]: the shared queues and the other shards' inboxes.
struct ThreadSink {
    senders: Vec<Inbox>,
    shared: Arc<Shared>,
    /// This shard's own inbox (whether work is waiting: [`Sink::overlap`]).
    inbox: Receiver<ShardMsg>,
    /// This shard's committer, with a store.
    committer: Option<Committer>,
    /// Whether the shard's own sockets had bytes waiting when its batch ended (work waits
    /// there as it does in the inbox: [`Sink::overlap`]).
    sockets_waiting: bool,
}

/// A batch's writes on their way to the committer: its number, its operations.
type Submitted = (u64, Vec<WriteOp>);

/// What the committer reports: every batch up to this number is durable, or the write of
/// the batches up to it failed.
type Report = (u64, Result<(), StoreError>);

/// Batches in flight beyond which a shard waits for its committer before taking more
/// messages (bounds the outputs and writes it holds).
const MAX_IN_FLIGHT: usize = 64;

/// A shard's committer: a thread that writes the batches its shard submits, in order, each
/// time everything queued in one `write_batch` (group commit across batches), while the
/// shard steps the next messages (pipelined group commit). It reports each write back; after
/// a failed one it writes nothing more (the store keeps a prefix of the shard's batches).
struct Committer {
    tx: Option<Sender<Submitted>>,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    /// Starts shard `index`'s committer on `store`; returns it and where it reports.
    fn spawn(
        index: usize,
        store: Arc<dyn Store>,
        shared: &Arc<Shared>,
        bell: Arc<Bell>,
    ) -> (Self, Receiver<Report>) {
        let (tx, rx) = unbounded::<Submitted>();
        let (report_tx, report_rx) = unbounded::<Report>();
        let shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("lnshard-commit-{index}"))
            .spawn(move || {
                while let Ok((mut seq, mut ops)) = rx.recv() {
                    // Everything queued meanwhile goes in the same write.
                    while let Ok((next, more)) = rx.try_recv() {
                        seq = next;
                        ops.extend(more);
                    }
                    if shared.aborted.load(Ordering::SeqCst) {
                        // The process is dying: this write never happens.
                        break;
                    }
                    let Some(result) = shared.write(store.as_ref(), &ops) else {
                        // The engine stopped: this write never happens (the shard sees the
                        // reports end with batches in flight, and releases none of them).
                        break;
                    };
                    let failed = result.is_err();
                    let sent = report_tx.send((seq, result)).is_ok();
                    bell.ring();
                    if !sent || failed {
                        break;
                    }
                }
                // The shard sees the reports end (it may be asleep waiting for one).
                drop(report_tx);
                bell.ring();
            })
            .expect("spawning a committer thread (the OS refused a thread)");
        (
            Committer {
                tx: Some(tx),
                thread: Some(thread),
            },
            report_rx,
        )
    }

    /// Stops taking batches and waits for the thread to finish the write it is in.
    fn join(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Sink for ThreadSink {
    #[inline]
    fn taken(&mut self, shard: usize, bytes: usize) {
        if let Some(budget) = self.shared.inbox_bytes.get(shard) {
            budget.give_back(bytes);
        }
    }

    #[inline]
    fn stopped(&self) -> bool {
        self.shared.is_stopped()
    }

    #[inline]
    fn aborted(&self) -> bool {
        self.shared.aborted.load(Ordering::SeqCst)
    }

    fn halt(&mut self, reason: StopReason) {
        self.shared.halt(reason, &self.senders);
    }

    fn write(&mut self, store: &dyn Store, ops: &[WriteOp]) -> Result<(), EngineError> {
        match self.shared.write(store, ops) {
            Some(result) => result.map_err(durable::store_error),
            None => Err(self.shared.stopped().unwrap_or(EngineError::ShuttingDown)),
        }
    }

    fn event(&mut self, event: Event) {
        // The application's event queue is bounded: the shard waits for room, unless the
        // engine stops meanwhile.
        let mut event = event;
        loop {
            match self.shared.events_tx.send_timeout(event, STOP_POLL) {
                Err(crossbeam_channel::SendTimeoutError::Timeout(e))
                    if !(self.aborted() || self.stopped()) =>
                {
                    event = e
                }
                _ => break,
            }
        }
    }

    #[inline]
    fn cross_shard(&mut self) {
        self.shared.pending.fetch_add(1, Ordering::SeqCst);
    }

    #[inline]
    fn to_shard(&mut self, to: usize, msg: ShardMsg) -> Result<(), Refused> {
        let Some(sender) = self.senders.get(to) else {
            return Err(Refused::Gone(msg));
        };
        sender.try_send(msg).map_err(|e| match e {
            TrySendError::Full(m) => Refused::Full(m),
            TrySendError::Disconnected(m) => Refused::Gone(m),
        })
    }

    #[inline]
    fn overlap(&self) -> bool {
        self.sockets_waiting || !self.inbox.is_empty()
    }

    fn submit(&mut self, _shard: usize, seq: u64, ops: Vec<WriteOp>) -> Result<(), Vec<WriteOp>> {
        match &self.committer {
            Some(c) => {
                // A committer that is gone (it failed) leaves the batch in flight for good:
                // the shard learns of it from its reports, and nothing is written after it.
                if let Some(tx) = &c.tx {
                    let _ = tx.send((seq, ops));
                }
                Ok(())
            }
            None => Err(ops),
        }
    }
}

/// One shard's thread: receives and blocks; the batch protocol is the [`ShardDriver`]'s.
struct Worker {
    driver: ShardDriver,
    rx: Receiver<ShardMsg>,
    /// The committer's reports (with a store).
    reports: Option<Receiver<Report>>,
    sink: ThreadSink,
    /// A message taken from the inbox that starts the next batch.
    held: Option<ShardMsg>,
    /// Whether this shard is counted in [`Shared::deferred`].
    counted_deferred: bool,
    /// Whether this shard is counted in [`Shared::committing`].
    counted_committing: bool,
    /// Where the shard sleeps: its sockets' readiness and its bell.
    poll: mio::Poll,
    events: mio::Events,
    bell: Arc<Bell>,
    /// The sockets this shard owns ([`crate::socket`]).
    sockets: SocketSet,
    /// The buffer the next socket read goes into.
    read_buf: Vec<u8>,
    /// [`EngineConfig::batch_time`].
    batch_time: Duration,
}

/// What a shard's wait ended with (moved once, never stored: boxing the message would
/// allocate on the hot path).
#[allow(clippy::large_enum_variant)]
enum Wake {
    /// A message from the inbox.
    Msg(ShardMsg),
    /// What the shard read from one of its sockets (or the socket's detach).
    Read(ShardMsg),
    /// Nothing within the time allowed (or a report was handled: look again).
    Nothing,
    /// The inbox closed, or the engine must stop.
    Stop,
}

/// How long a shard's inbox stays empty before the shard commits the changes its last
/// batches carried over uncommitted ([`ShardDriver::flush`]).
const IDLE_FLUSH: Duration = Duration::from_millis(5);

impl Worker {
    /// The thread's body: [`Worker::work`], with a panic contained. A panic stops the whole
    /// engine (the reason names this shard and the panic's message) rather than leave the
    /// other shards serving peers beside a dead one.
    fn run(mut self, first: Vec<Out>) -> Vec<ShardMsg> {
        let index = self.driver.shard().index();
        let span = tracing::info_span!("shard", index);
        let _entered = span.enter();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.work(first)));
        if let Err(payload) = outcome {
            let message = panic_message(payload.as_ref());
            self.sink.halt(StopReason::Panicked {
                shard: index,
                message,
            });
        }
        // No write of this shard after its thread ends (a reopen may read the store next).
        if let Some(c) = self.sink.committer.as_mut() {
            c.join();
        }
        self.note_state();
        if self.sink.stopped() {
            // Whatever is queued will never be handled: drop it now, so callers waiting on
            // an answer wake (their reply channel closes) instead of waiting out a timeout.
            while self.rx.try_recv().is_ok() {}
        }
        let left = self.driver.leftovers();
        self.sink
            .shared
            .pending
            .fetch_sub(left.len(), Ordering::SeqCst);
        left
    }

    /// Counts this shard in [`Shared::deferred`] while its driver holds changes carried
    /// over uncommitted (before its batch stops counting as pending, so that
    /// [`Engine::is_idle`] never reads both zero in between).
    fn note_state(&mut self) {
        let shared = &self.sink.shared;
        let now = self.driver.deferred();
        if now != self.counted_deferred {
            self.counted_deferred = now;
            if now {
                shared.deferred.fetch_add(1, Ordering::SeqCst);
            } else {
                shared.deferred.fetch_sub(1, Ordering::SeqCst);
            }
        }
        // Likewise in [`Shared::committing`] while batches it submitted are in flight (and
        // not once its thread ended: nothing of them will be released).
        let now = self.driver.in_flight() && !self.sink.stopped() && !self.sink.aborted();
        if now != self.counted_committing {
            self.counted_committing = now;
            if now {
                shared.committing.fetch_add(1, Ordering::SeqCst);
            } else {
                shared.committing.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Handles one committer report: releases what became durable, or stops the engine on a
    /// failed write. The disconnections that releasing stepped go in the current batch
    /// (`in_batch`), else in a batch of their own. False if the shard must stop.
    fn report(&mut self, report: Option<Report>, in_batch: bool) -> bool {
        let ok = match report {
            Some((seq, result)) => {
                self.driver
                    .durable(seq, result.map_err(durable::store_error), &mut self.sink)
            }
            // The committer is gone with batches in flight (it failed and reported it, or
            // it was stopped): nothing of them can be released.
            None if self.driver.in_flight() => self.driver.durable(
                0,
                Err(EngineError::Stopped {
                    reason: StopReason::CommitFailed {
                        shard: self.driver.shard().index(),
                        error: Box::new(EngineError::ShuttingDown),
                    },
                }),
                &mut self.sink,
            ),
            None => true,
        };
        let ok = ok
            && (in_batch || !self.driver.has_outputs() || {
                self.driver.begin();
                self.driver.end(&mut self.sink)
            });
        self.note_state();
        ok
    }

    /// Handles the committer's reports already there, without waiting (`in_batch`: as
    /// [`Worker::report`]). False if the shard must stop.
    fn take_reports(&mut self, in_batch: bool) -> bool {
        loop {
            let Some(reports) = &self.reports else {
                return true;
            };
            let report = match reports.try_recv() {
                Ok(r) => Some(r),
                Err(crossbeam_channel::TryRecvError::Empty) => return true,
                Err(crossbeam_channel::TryRecvError::Disconnected) if self.driver.in_flight() => {
                    None
                }
                Err(crossbeam_channel::TryRecvError::Disconnected) => return true,
            };
            if !self.report(report, in_batch) {
                return false;
            }
        }
    }

    /// Waits up to `timeout` (`None`: for as long as it takes) for an inbox message or a
    /// socket's bytes, handling the committer's reports as they come (each may release
    /// outputs). With `inbox` false, waits for a report only (too many batches in flight).
    /// Sleeps in the shard's poller; whoever queues work for it rings its bell
    /// ([`crate::inbox`]).
    fn wait(&mut self, timeout: Option<Duration>, inbox: bool) -> Wake {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let reports = self.reports.as_ref().filter(|_| self.driver.in_flight());
            if let Some(r) = reports {
                let report = match r.try_recv() {
                    Ok(report) => Some(Some(report)),
                    Err(TryRecvError::Disconnected) => Some(None),
                    Err(TryRecvError::Empty) => None,
                };
                if let Some(report) = report {
                    return if self.report(report, false) {
                        Wake::Nothing
                    } else {
                        Wake::Stop
                    };
                }
            }
            if inbox {
                match self.rx.try_recv() {
                    Ok(m) => return Wake::Msg(m),
                    Err(TryRecvError::Disconnected) => return Wake::Stop,
                    Err(TryRecvError::Empty) => {}
                }
                if self.sockets.collect() {
                    if let Some(m) = self.read_socket() {
                        return Wake::Read(m);
                    }
                }
            } else if reports.is_none() {
                return Wake::Nothing;
            }
            let now = Instant::now();
            let left = match deadline {
                Some(d) => match d.checked_duration_since(now) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Wake::Nothing,
                },
                None => None,
            };
            // A throttled socket's stall timeout wakes the shard too.
            let stall = self
                .sockets
                .next_deadline()
                .map(|d| d.saturating_duration_since(now));
            let left = match (left, stall) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if inbox && self.driver.has_work_ahead() {
                // Nothing to handle now: derive a channel's next keys ahead, then look again.
                // Work the next messages would otherwise do: counted busy.
                let started = Instant::now();
                self.driver.derive_ahead();
                self.driver
                    .shard()
                    .counters()
                    .busy_nanos
                    .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                continue;
            }
            self.bell.parking();
            let busy = self
                .reports
                .as_ref()
                .filter(|_| self.driver.in_flight())
                .is_some_and(|r| !r.is_empty())
                || (inbox && (!self.rx.is_empty() || self.sockets.has_work()));
            if busy {
                self.bell.awake();
                continue;
            }
            let polled = self.poll.poll(&mut self.events, left);
            self.bell.awake();
            if let Err(error) = polled {
                if error.kind() != std::io::ErrorKind::Interrupted {
                    tracing::error!(%error, "a shard's poller failed");
                    return Wake::Stop;
                }
            }
            if stall.is_some() {
                self.sockets.expire(Instant::now());
            }
            for event in self.events.iter() {
                if event.token() != WAKE_TOKEN {
                    self.sockets.event(
                        event.token(),
                        event.is_readable() || event.is_read_closed() || event.is_error(),
                        event.is_writable(),
                    );
                }
            }
        }
    }

    /// The batch's next message, without waiting: from the inbox, else from a socket (not
    /// while `stopping`: a stopping shard reads no more); with whether it is the inbox's.
    fn next_message(&mut self, stopping: bool) -> Option<(ShardMsg, bool)> {
        if let Ok(m) = self.rx.try_recv() {
            return Some((m, true));
        }
        if stopping || !self.sockets.collect() {
            return None;
        }
        self.read_socket().map(|m| (m, false))
    }

    /// The next message from a ready socket, counted in [`Shared::pending`] from before the
    /// read until its batch is done: [`Engine::is_idle`] never sees bytes that left a socket
    /// and are not handled yet as idle.
    fn read_socket(&mut self) -> Option<ShardMsg> {
        let pending = &self.sink.shared.pending;
        pending.fetch_add(1, Ordering::SeqCst);
        let m = self.sockets.next_message(&mut self.read_buf);
        if m.is_none() {
            pending.fetch_sub(1, Ordering::SeqCst);
        }
        m
    }

    /// Whether the shard must take no more messages: aborted, or the engine stopped.
    fn must_stop(&self) -> bool {
        self.sink.aborted() || self.sink.stopped()
    }

    fn work(&mut self, first: Vec<Out>) {
        let counters = self.driver.shard().counters().clone();
        // Outputs of the restore: already durable (the opening batch).
        if !self.driver.release_initial(first, &mut self.sink) {
            return;
        }
        let mut stopping = false;
        loop {
            if self.must_stop() || !self.take_reports(false) {
                break;
            }
            let parked = self.driver.flush_parked(&mut self.sink);
            let wake = if let Some(m) = self.held.take() {
                Wake::Msg(m)
            } else if self.driver.in_flight_len() >= MAX_IN_FLIGHT {
                // Enough held for the committer: wait for it before taking more.
                self.wait(Some(STOP_POLL), false)
            } else if stopping {
                match self.rx.try_recv() {
                    Ok(m) => Wake::Msg(m),
                    Err(_) if parked > 0 => {
                        std::thread::sleep(Duration::from_micros(50));
                        Wake::Nothing
                    }
                    // Nothing is left once what is in flight is durable and released.
                    Err(_) if self.driver.in_flight() => self.wait(Some(STOP_POLL), false),
                    Err(_) => break,
                }
            } else if parked > 0 {
                // Never block while holding undelivered work: keep draining our own inbox
                // (which is what frees room in the other shard's) and retry soon.
                self.wait(Some(Duration::from_micros(50)), true)
            } else if self.driver.deferred() {
                // Changes carried over uncommitted: commit them if the inbox stays empty.
                match self.wait(Some(IDLE_FLUSH), true) {
                    Wake::Nothing if !self.driver.in_flight() => {
                        let ok = self.driver.flush(&mut self.sink);
                        self.note_state();
                        if !ok {
                            break;
                        }
                        Wake::Nothing
                    }
                    other => other,
                }
            } else {
                self.wait(None, true)
            };
            let (msg, from_inbox) = match wake {
                Wake::Msg(m) => (m, true),
                Wake::Read(m) => (m, false),
                Wake::Nothing => continue,
                Wake::Stop => break,
            };
            if self.must_stop() {
                break;
            }
            counters
                .queue_high_water
                .fetch_max(self.rx.len() + 1, Ordering::Relaxed);
            let started = Instant::now();
            // A batch: this message and whatever else is waiting, up to `commit_batch`:
            // the inbox first, then what the shard's own sockets have to read.
            self.driver.begin();
            // Messages of the batch that came from the inbox without reaching the driver (a
            // socket that could not be attached).
            let mut dropped = 0;
            let mut next = Some((msg, from_inbox));
            while let Some((m, from_inbox)) = next.take() {
                let m = match m {
                    ShardMsg::AttachSocket(a) => match self.sockets.attach(*a) {
                        Some(attached) => ShardMsg::Attach(attached),
                        None => {
                            dropped += 1;
                            next = self.next_message(stopping);
                            continue;
                        }
                    },
                    ShardMsg::Detach { conn, node_id } => {
                        if from_inbox {
                            // The host detached it: a socket of ours by that name goes too.
                            self.sockets.detach(conn);
                        }
                        ShardMsg::Detach { conn, node_id }
                    }
                    m => m,
                };
                match self.driver.handle(m, &mut self.sink, from_inbox) {
                    Handled::More => {
                        // What became durable meanwhile goes out before the next message.
                        if !self.take_reports(true) {
                            break;
                        }
                        if started.elapsed() >= self.batch_time {
                            // Long enough: what the batch has produced goes out now (after
                            // its commit) rather than wait for more messages.
                            break;
                        }
                        next = self.next_message(stopping);
                    }
                    Handled::Full => {}
                    Handled::Held(m) => self.held = Some(m),
                    Handled::Shutdown => stopping = true,
                }
            }
            let handled = self.driver.handled() + dropped;
            // Bytes waiting on the shard's sockets are work waiting too: the commit then
            // overlaps them (pipelined), rather than make them wait for a sync.
            self.sink.sockets_waiting = self.sockets.has_work();
            let ok = self.driver.end(&mut self.sink);
            self.sink.sockets_waiting = false;
            self.note_state();
            counters
                .busy_nanos
                .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            self.sink
                .shared
                .pending
                .fetch_sub(handled, Ordering::SeqCst);
            if !ok {
                break;
            }
        }
    }
}

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a payload that is not text".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn engine_is_send_and_sync() {
        // The C ABI hands one engine to many threads.
        assert_send_sync::<Engine>();
        assert_send_sync::<EngineError>();
    }
}
