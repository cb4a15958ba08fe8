//! The deterministic mode: every shard driven on one thread by a seeded scheduler.
//!
//! [`Sim`] holds the same shards, coordinator and placement as the threaded engine and runs
//! each shard through the same driver as a shard thread (`driver::ShardDriver`: a batch of
//! [`step`](crate::step)s, its group commit, then the release of its outputs), but its
//! inboxes are plain queues and [`Sim::step_random`] picks which shard runs its next batch
//! with a seeded generator: one seed, one interleaving, replayed exactly. API calls that need
//! an answer run random batches until the answer comes, as a caller blocked on a threaded
//! engine would see other shards progress meanwhile.
//!
//! On a store ([`Sim::open`], a `MemoryStore` in the tests) every batch is committed before
//! its outputs leave. As on the threads, a batch that ends with work waiting may go to the
//! shard's committer (pipelined group commit): here a per-shard queue of writes that a
//! seeded step completes later (the shard steps other batches meanwhile, their outputs
//! waiting behind it), and that a crash cuts to a seeded prefix, as a dying disk would.
//! [`Sim::set_crashes`] makes the whole engine die at seeded points of
//! its batches and restart from the store, through the restore path of
//! [`Engine::open`](crate::Engine::open), with a seeded shard count. A crash is of the whole
//! engine: a shard that fails (a failed commit, a panic) stops every shard, as in the threads.

use std::collections::VecDeque;
use std::sync::Arc;

use crossbeam_channel::Receiver;
use lightning_core::bitcoin::BlockHash;
use lightning_core::node::{Event, NodeCore};
use lightning_core::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning_core::transport::Transport;

use crate::api::{ApiTask, Backend};
use crate::connection::{AttachedConnection, ConnectionId, ConnectionWriter};
use crate::coordinator::Coordinator;
use crate::driver::{open_shards, Handled, Refused, ShardDriver, Sink};
use crate::engine::EngineConfig;
use crate::error::{EngineError, StopReason};
use crate::msg::{Out, ShardMsg};
use crate::placement::Placement;
use crate::shard::{Shard, ShardStats};
use crate::store::{Store, WriteOp};

/// A small seeded generator (SplitMix64): the simulator's only source of choice.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        SimRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        den != 0 && self.next_u64() % den < num
    }
}

/// The seed to use: `SIM_SEED` from the environment if set (to replay a failure), else
/// `default`.
pub fn sim_seed_from_env(default: u64) -> u64 {
    std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// Seeded crashes of the whole simulated engine (see [`Sim::set_crashes`]).
#[derive(Debug, Clone)]
pub struct Crashes {
    /// The chance, `(num, den)`, that a batch ends in a crash of the engine.
    pub chance: (u64, u64),
    /// The shard counts a restart picks from (a seeded choice each time).
    pub shard_counts: Vec<usize>,
}

/// Where in a batch the engine dies.
#[derive(Debug, Clone, Copy)]
enum CrashPoint {
    /// After the batch's messages were stepped, before its commit: the batch is lost.
    BeforeCommit,
    /// After the commit, before any output is released.
    AfterCommit,
    /// After the release: the other shards' queued work is lost.
    AfterRelease,
}

/// What a crash-restart did, for tests that report it.
#[derive(Debug, Clone, Default)]
pub struct CrashStats {
    /// Crash-restarts so far.
    pub crashes: u64,
    /// Of those, crashes before the batch's commit, between its commit and its release,
    /// and after its release.
    pub before_commit: u64,
    /// See `before_commit`.
    pub after_commit: u64,
    /// See `before_commit`.
    pub after_release: u64,
    /// Crashes while a committer was writing batches the shards had moved past (pipelined
    /// group commit).
    pub during_write: u64,
    /// Restarts into a shard count other than the one that crashed.
    pub resharded: u64,
    /// Inbox messages lost in crashes (handled in a lost batch, or still queued).
    pub messages_lost: u64,
    /// Batches a committer held at a crash that never reached the store (their outputs
    /// never left).
    pub writes_lost: u64,
}

/// The engine on one thread: see the [module documentation](self).
#[derive(Debug)]
pub struct Sim {
    node_id: PublicKey,
    node_secret: SecretKey,
    seed: [u8; 32],
    /// The configuration (its store, if any, is where restarts read from).
    config: EngineConfig,
    placement: Placement,
    coordinator: Arc<Coordinator>,
    /// Each shard with its batch protocol: the same driver as the threads'.
    drivers: Vec<ShardDriver>,
    inboxes: Vec<VecDeque<ShardMsg>>,
    inbox_capacity: usize,
    /// [`EngineConfig::inbox_bytes`](crate::EngineConfig::inbox_bytes), as the threads apply it.
    inbox_bytes: usize,
    rng: SimRng,
    events: Vec<Event>,
    steps: u64,
    /// Why the engine stopped (a failed commit), if it did.
    stopped: Option<EngineError>,
    crashes: Option<Crashes>,
    crash_stats: CrashStats,
    /// Restarts the caller has not yet been told of ([`Sim::take_restarts`]).
    untold_restarts: u64,
    /// Set while an API call waits for its answer: no crash then (the caller is inside the
    /// engine; a crash is injected between the caller's moves).
    in_call: bool,
    /// Per shard: the batches its committer holds, oldest first, not yet written.
    committing: Vec<VecDeque<(u64, Vec<WriteOp>)>>,
}

/// The simulator's [`Sink`]: its queues.
struct SimSink<'a> {
    inboxes: &'a mut Vec<VecDeque<ShardMsg>>,
    events: &'a mut Vec<Event>,
    stopped: &'a mut Option<EngineError>,
    /// The engine dies between this batch's commit and its release.
    abort: bool,
    /// This batch's commit goes to the committer (a seeded choice).
    overlap: bool,
    committing: &'a mut Vec<VecDeque<(u64, Vec<WriteOp>)>>,
}

impl Sink for SimSink<'_> {
    fn taken(&mut self, _shard: usize, _bytes: usize) {
        // The simulator counts an inbox's bytes from its queue.
    }

    fn stopped(&self) -> bool {
        self.stopped.is_some()
    }

    fn aborted(&self) -> bool {
        self.abort
    }

    fn halt(&mut self, reason: StopReason) {
        self.stopped.get_or_insert(EngineError::Stopped { reason });
    }

    fn write(&mut self, store: &dyn Store, ops: &[WriteOp]) -> Result<(), EngineError> {
        // One thread: nothing writes between a stop and this check.
        match &self.stopped {
            Some(stopped) => Err(stopped.clone()),
            None => store.write_batch(ops).map_err(crate::durable::store_error),
        }
    }

    fn event(&mut self, event: Event) {
        self.events.push(event);
    }

    fn cross_shard(&mut self) {}

    fn to_shard(&mut self, to: usize, msg: ShardMsg) -> Result<(), Refused> {
        // Cross-shard traffic is never refused here (the threads park it while the target's
        // inbox is full).
        match self.inboxes.get_mut(to) {
            Some(q) => {
                q.push_back(msg);
                Ok(())
            }
            None => Err(Refused::Gone(msg)),
        }
    }

    fn overlap(&self) -> bool {
        self.overlap
    }

    fn submit(&mut self, shard: usize, seq: u64, ops: Vec<WriteOp>) -> Result<(), Vec<WriteOp>> {
        match self.committing.get_mut(shard) {
            Some(q) => {
                q.push_back((seq, ops));
                Ok(())
            }
            None => Err(ops),
        }
    }
}

impl Sim {
    /// A simulated engine with `config.shards` shards for a new node, with no store
    /// (`config.store` is not used: [`Sim::open`] runs on one); `sim_seed` drives the
    /// scheduler.
    pub fn new(
        config: EngineConfig,
        node_secret: SecretKey,
        seed: [u8; 32],
        best_height: u32,
        best_hash: BlockHash,
        sim_seed: u64,
    ) -> Sim {
        let config = EngineConfig {
            store: None,
            ..config
        };
        let placement = Placement::new(&node_secret, config.shards);
        let coordinator = Arc::new(Coordinator::new(
            config.node.shard_share(placement.shards()),
            best_height,
            best_hash,
        ));
        let n = placement.shards();
        let drivers = (0..n)
            .map(|i| {
                let shard =
                    Shard::new(i, node_secret, seed, coordinator.clone(), placement.clone());
                ShardDriver::new(shard, &config, n)
            })
            .collect();
        Sim::assemble(
            config,
            node_secret,
            seed,
            placement,
            coordinator,
            drivers,
            SimRng::new(sim_seed),
        )
    }

    /// A simulated engine on `config.store` (required), resuming the node it holds (or a new
    /// node on an empty store), through the restore path of [`Engine::open`](crate::Engine::open).
    /// Every batch is committed to the store before its outputs are released, as in the
    /// threads; [`Sim::set_crashes`] makes the engine die and restart from it.
    pub fn open(
        config: EngineConfig,
        node_secret: SecretKey,
        seed: [u8; 32],
        best_height: u32,
        best_hash: BlockHash,
        sim_seed: u64,
    ) -> Result<Sim, EngineError> {
        let opened = open_shards(&config, node_secret, seed, best_height, best_hash)?;
        let n = opened.placement.shards();
        let drivers = opened
            .shards
            .into_iter()
            .map(|shard| ShardDriver::new(shard, &config, n))
            .collect();
        let mut sim = Sim::assemble(
            config,
            node_secret,
            seed,
            opened.placement,
            opened.coordinator,
            drivers,
            SimRng::new(sim_seed),
        );
        sim.release_initial(opened.initial);
        Ok(sim)
    }

    fn assemble(
        config: EngineConfig,
        node_secret: SecretKey,
        seed: [u8; 32],
        placement: Placement,
        coordinator: Arc<Coordinator>,
        drivers: Vec<ShardDriver>,
        rng: SimRng,
    ) -> Sim {
        let secp = Secp256k1::signing_only();
        let n = placement.shards();
        Sim {
            node_id: PublicKey::from_secret_key(&secp, &node_secret),
            node_secret,
            seed,
            inboxes: (0..placement.shards()).map(|_| VecDeque::new()).collect(),
            inbox_capacity: config.inbox_capacity.max(1),
            inbox_bytes: config.inbox_bytes,
            config,
            placement,
            coordinator,
            drivers,
            rng,
            events: Vec::new(),
            steps: 0,
            stopped: None,
            crashes: None,
            crash_stats: CrashStats::default(),
            untold_restarts: 0,
            in_call: false,
            committing: (0..n).map(|_| VecDeque::new()).collect(),
        }
    }

    /// Releases the outputs of a restore (already durable).
    fn release_initial(&mut self, initial: Vec<Vec<Out>>) {
        for (driver, first) in self.drivers.iter_mut().zip(initial) {
            let mut sink = SimSink {
                inboxes: &mut self.inboxes,
                events: &mut self.events,
                stopped: &mut self.stopped,
                abort: false,
                overlap: false,
                committing: &mut self.committing,
            };
            driver.release_initial(first, &mut sink);
        }
    }

    /// Seeded crashes (`None`: none): after each batch's messages are stepped, with
    /// `chance`, the whole engine dies at a seeded point of the batch (before its commit,
    /// between its commit and its release, or after its release): the uncommitted batch,
    /// every queued inbox message and every output not yet released are lost (outputs
    /// released before stay out: events the application has seen, messages on the wire). It
    /// restarts at once from its store, through the restore path of
    /// [`Engine::open`](crate::Engine::open), with a shard count drawn from
    /// `shard_counts`; every peer connection is gone (the caller learns of the restart from
    /// [`Sim::take_restarts`] and reconnects its peers). No crash happens while an API call
    /// waits for its answer. Requires a store ([`Sim::open`]); ignored without one.
    pub fn set_crashes(&mut self, crashes: Option<Crashes>) {
        self.crashes = crashes.filter(|c| !c.shard_counts.is_empty());
    }

    /// The crash-restarts so far.
    pub fn crash_stats(&self) -> &CrashStats {
        &self.crash_stats
    }

    /// Restarts since the last call: each dropped every peer connection.
    pub fn take_restarts(&mut self) -> u64 {
        std::mem::take(&mut self.untold_restarts)
    }

    /// Why the engine stopped (a failed commit), if it did.
    pub fn health(&self) -> Result<(), EngineError> {
        match &self.stopped {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Our node id.
    pub fn node_id(&self) -> PublicKey {
        self.node_id
    }

    /// The shard that owns `node_id`.
    pub fn shard_of(&self, node_id: &PublicKey) -> usize {
        self.placement.shard_of(node_id)
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.placement.shards()
    }

    /// The scheduler's generator (the test harness draws its own choices from it too, so
    /// one seed fixes the whole run).
    pub fn rng(&mut self) -> &mut SimRng {
        &mut self.rng
    }

    /// Messages stepped so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Read access to one shard's NodeCore.
    pub fn core(&self, shard: usize) -> Option<&NodeCore> {
        self.drivers.get(shard).map(|d| d.shard().core())
    }

    /// Each shard's counters (since the last restart).
    pub fn shard_stats(&self) -> Vec<ShardStats> {
        self.drivers
            .iter()
            .map(|d| d.shard().counters().snapshot())
            .collect()
    }

    /// Whether every inbox is empty and no shard holds changes carried over uncommitted (the
    /// threads' idle flush, which [`Sim::step_random`] runs once the inboxes are empty).
    pub fn is_idle(&self) -> bool {
        self.inboxes.iter().all(VecDeque::is_empty)
            && self.committing.iter().all(VecDeque::is_empty)
            && !self.drivers.iter().any(|d| d.deferred())
    }

    /// Messages waiting in each inbox.
    pub fn inbox_lens(&self) -> Vec<usize> {
        self.inboxes.iter().map(VecDeque::len).collect()
    }

    /// Runs one batch of one shard chosen at random among those with work; false if none.
    pub fn step_random(&mut self) -> bool {
        if self.stopped.is_some() {
            return false;
        }
        let ready: Vec<usize> = (0..self.inboxes.len())
            .filter(|&i| self.inboxes.get(i).is_some_and(|q| !q.is_empty()))
            .collect();
        // A committer's write is one more thing that may happen next.
        let writing: Vec<usize> = (0..self.committing.len())
            .filter(|&i| self.committing.get(i).is_some_and(|q| !q.is_empty()))
            .collect();
        // So is a shard's idle work, deriving keys ahead (the threads do it before sleeping).
        let ahead: Vec<usize> = (0..self.drivers.len())
            .filter(|&i| self.drivers.get(i).is_some_and(ShardDriver::has_work_ahead))
            .collect();
        if ready.is_empty() && writing.is_empty() && ahead.is_empty() {
            return self.flush_idle();
        }
        let pick = self.rng.below(ready.len() + writing.len() + ahead.len());
        if let Some(&shard) = ready.get(pick) {
            return self.step_shard(shard);
        }
        if let Some(&shard) = writing.get(pick - ready.len()) {
            return self.complete_write(shard);
        }
        let shard = ahead
            .get(pick - ready.len() - writing.len())
            .copied()
            .unwrap_or_default();
        if let Some(driver) = self.drivers.get_mut(shard) {
            driver.derive_ahead();
        }
        true
    }

    /// Shard `shard`'s committer writes every batch it holds, and the shard releases what
    /// they held back. Returns how many batches it wrote.
    pub fn complete_writes(&mut self, shard: usize) -> usize {
        let mut written = 0;
        while self.committing.get(shard).is_some_and(|q| !q.is_empty()) {
            written += self.committing.get(shard).map_or(0, VecDeque::len);
            if !self.complete_write(shard) {
                break;
            }
        }
        written
    }

    /// Shard `shard`'s committer writes the batches it holds (a seeded number of them, in
    /// one write, as the threads' committer takes whatever is queued) and reports them
    /// durable; the shard releases their outputs. False if there was nothing to write.
    fn complete_write(&mut self, shard: usize) -> bool {
        // A stopped engine writes nothing more (as the threads' write gate).
        if self.stopped.is_some() || self.committing.get(shard).is_none_or(VecDeque::is_empty) {
            return false;
        }
        let crash = match &self.crashes {
            Some(c) if !self.in_call => self.rng.chance(c.chance.0, c.chance.1),
            _ => false,
        };
        if crash {
            // The engine dies while its committers write: each keeps a seeded prefix.
            self.crash_stats.during_write += 1;
            self.crash_restart();
            return true;
        }
        let Some(queue) = self.committing.get_mut(shard) else {
            return false;
        };
        let take = 1 + self.rng.below(queue.len());
        let mut ops = Vec::new();
        let mut last = None;
        for (seq, batch) in queue.drain(..take.min(queue.len())) {
            ops.extend(batch);
            last = Some(seq);
        }
        let Some(seq) = last else {
            return false;
        };
        let result = match &self.config.store {
            Some(store) => store.write_batch(&ops).map_err(crate::durable::store_error),
            None => Ok(()),
        };
        if result.is_err() {
            // Nothing after a failed write is written (the store keeps a prefix).
            if let Some(q) = self.committing.get_mut(shard) {
                q.clear();
            }
        }
        let Some(driver) = self.drivers.get_mut(shard) else {
            return false;
        };
        let mut sink = SimSink {
            inboxes: &mut self.inboxes,
            events: &mut self.events,
            stopped: &mut self.stopped,
            abort: false,
            overlap: false,
            committing: &mut self.committing,
        };
        if driver.durable(seq, result, &mut sink) && driver.has_outputs() {
            driver.begin();
            driver.end(&mut sink);
        }
        true
    }

    /// With every inbox empty, the threads' idle flush: the first shard holding changes
    /// carried over uncommitted commits them. False if none does (or the engine stopped).
    fn flush_idle(&mut self) -> bool {
        if self.stopped.is_some() {
            return false;
        }
        let Some(driver) = self.drivers.iter_mut().find(|d| d.deferred()) else {
            return false;
        };
        let mut sink = SimSink {
            inboxes: &mut self.inboxes,
            events: &mut self.events,
            stopped: &mut self.stopped,
            abort: false,
            overlap: false,
            committing: &mut self.committing,
        };
        driver.flush(&mut sink);
        true
    }

    /// Runs one batch of shard `shard` (begin, step each message, commit, release): without
    /// a store one message; with one, a seeded number of its queued messages up to
    /// [`EngineConfig::commit_batch`]. False if its inbox is empty or the engine stopped.
    pub fn step_shard(&mut self, shard: usize) -> bool {
        if self.stopped.is_some() || self.inboxes.get(shard).is_none_or(VecDeque::is_empty) {
            return false;
        }
        let Some(driver) = self.drivers.get_mut(shard) else {
            return false;
        };
        let batch = driver.commit_batch();
        let limit = if batch > 1 {
            1 + self.rng.below(batch)
        } else {
            1
        };
        let crash = match &self.crashes {
            Some(c) if !self.in_call && self.rng.chance(c.chance.0, c.chance.1) => {
                Some(match self.rng.below(3) {
                    0 => CrashPoint::BeforeCommit,
                    1 => CrashPoint::AfterCommit,
                    _ => CrashPoint::AfterRelease,
                })
            }
            _ => None,
        };
        // Half the batches of a shard with a store overlap their commit with what follows.
        let overlap = self.config.store.is_some() && self.rng.chance(1, 2);
        let mut sink = SimSink {
            inboxes: &mut self.inboxes,
            events: &mut self.events,
            stopped: &mut self.stopped,
            abort: matches!(crash, Some(CrashPoint::AfterCommit)),
            overlap,
            committing: &mut self.committing,
        };
        driver.begin();
        let mut taken = 0;
        while let Some(msg) = sink.inboxes.get_mut(shard).and_then(VecDeque::pop_front) {
            match driver.handle(msg, &mut sink, true) {
                Handled::More if taken + 1 < limit => taken += 1,
                Handled::More | Handled::Full => {
                    taken += 1;
                    break;
                }
                Handled::Held(msg) => {
                    if let Some(q) = sink.inboxes.get_mut(shard) {
                        q.push_front(msg);
                    }
                    break;
                }
                Handled::Shutdown => break,
            }
        }
        self.steps += taken as u64;
        if let Some(CrashPoint::BeforeCommit) = crash {
            self.crash_stats.before_commit += 1;
            self.crash_stats.messages_lost += taken as u64;
            self.crash_restart();
            return true;
        }
        let released = driver.end(&mut sink);
        match crash {
            Some(CrashPoint::AfterCommit) => {
                self.crash_stats.after_commit += 1;
                self.crash_restart();
            }
            Some(CrashPoint::AfterRelease) if released => {
                self.crash_stats.after_release += 1;
                self.crash_restart();
            }
            _ => {}
        }
        true
    }

    /// The whole engine dies and restarts from its store with a seeded shard count.
    fn crash_restart(&mut self) {
        let Some(crashes) = &self.crashes else {
            return;
        };
        let shards = crashes
            .shard_counts
            .get(self.rng.below(crashes.shard_counts.len()))
            .copied()
            .unwrap_or(1);
        self.crash_stats.crashes += 1;
        if shards != self.placement.shards() {
            self.crash_stats.resharded += 1;
        }
        let lost: usize = self.inboxes.iter().map(VecDeque::len).sum();
        self.crash_stats.messages_lost += lost as u64;
        tracing::debug!(
            from = self.placement.shards(),
            to = shards,
            lost,
            "simulated crash: restarting from the store"
        );
        let config = EngineConfig {
            shards,
            ..self.config.clone()
        };
        // Each committer's writes in flight: a seeded prefix reached the disk, the rest not.
        for queue in std::mem::take(&mut self.committing) {
            let reached = self.rng.below(queue.len() + 1);
            self.crash_stats.writes_lost += (queue.len() - reached) as u64;
            for (_, ops) in queue.into_iter().take(reached) {
                if let Some(store) = &self.config.store {
                    if let Err(error) = store.write_batch(&ops) {
                        tracing::debug!(%error, "a write in flight failed at the crash");
                        break;
                    }
                }
            }
        }
        // The process is gone: its inboxes, unreleased outputs, connections and their queues.
        for driver in &mut self.drivers {
            driver.crash();
        }
        self.drivers.clear();
        self.inboxes.clear();
        self.untold_restarts += 1;
        let (height, hash) = self.coordinator.best_block();
        match open_shards(&config, self.node_secret, self.seed, height, hash) {
            Ok(opened) => {
                let n = opened.placement.shards();
                self.drivers = opened
                    .shards
                    .into_iter()
                    .map(|shard| ShardDriver::new(shard, &config, n))
                    .collect();
                self.inboxes = (0..n).map(|_| VecDeque::new()).collect();
                self.committing = (0..n).map(|_| VecDeque::new()).collect();
                self.placement = opened.placement;
                self.coordinator = opened.coordinator;
                self.config = config;
                self.release_initial(opened.initial);
            }
            Err(error) => {
                tracing::error!(%error, "simulated restart failed");
                self.stopped = Some(error);
            }
        }
    }

    /// Steps until every inbox is empty.
    pub fn run_until_idle(&mut self) {
        while self.step_random() {}
    }

    /// Every event so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// As [`Engine::attach_connection`](crate::Engine::attach_connection): an established
    /// BOLT 8 connection moves into its peer's shard (a control message: it always queues).
    pub fn attach_connection(
        &mut self,
        conn: ConnectionId,
        node_id: PublicKey,
        transport: Transport,
        writer: Box<dyn ConnectionWriter>,
    ) -> Result<(), EngineError> {
        let shard = self.placement.shard_of(&node_id);
        let attached = AttachedConnection {
            conn,
            node_id,
            transport,
            writer,
        };
        (&mut *self).enqueue(shard, ShardMsg::Attach(attached), true)
    }

    /// As [`Engine::connection_ciphertext`](crate::Engine::connection_ciphertext).
    pub fn connection_ciphertext(
        &mut self,
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
        (&mut *self).enqueue(shard, msg, false)
    }

    /// As [`Engine::detach_connection`](crate::Engine::detach_connection).
    pub fn detach_connection(
        &mut self,
        conn: ConnectionId,
        node_id: PublicKey,
    ) -> Result<(), EngineError> {
        let shard = self.placement.shard_of(&node_id);
        (&mut *self).enqueue(shard, ShardMsg::Detach { conn, node_id }, true)
    }
}

impl Backend for &mut Sim {
    fn placement(&self) -> &Placement {
        &self.placement
    }

    fn coordinator(&self) -> &Coordinator {
        &self.coordinator
    }

    fn enqueue(&mut self, shard: usize, msg: ShardMsg, control: bool) -> Result<(), EngineError> {
        self.health()?;
        let capacity = self.inbox_capacity;
        let q = self
            .inboxes
            .get_mut(shard)
            .ok_or(EngineError::ShuttingDown)?;
        let len = msg.peer_bytes();
        let queued: usize = q.iter().map(ShardMsg::peer_bytes).sum();
        let over_bytes = len > 0 && queued > 0 && queued + len > self.inbox_bytes;
        if !control && (q.len() >= capacity || over_bytes) {
            return Err(EngineError::Full { shard, capacity });
        }
        q.push_back(msg);
        Ok(())
    }

    fn submit(&mut self, shard: usize, task: ApiTask) -> Result<(), EngineError> {
        // An answer is needed now: the call waits for room like a control message.
        self.enqueue(shard, ShardMsg::Api(task), true)
    }

    fn wait<R>(&mut self, shard: usize, answer: &Receiver<R>) -> Result<R, EngineError> {
        // No crash while a caller waits inside the engine (see `Sim::set_crashes`).
        let in_call = std::mem::replace(&mut self.in_call, true);
        let result = loop {
            if let Ok(reply) = answer.try_recv() {
                break Ok(reply);
            }
            if !self.step_random() {
                break Err(self.health().err().unwrap_or(EngineError::Timeout {
                    shard,
                    waited_ms: 0,
                }));
            }
        };
        self.in_call = in_call;
        result
    }
}
