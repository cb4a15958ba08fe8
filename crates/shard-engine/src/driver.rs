//! One shard's batch protocol, written once for the thread loop and the simulator.
//!
//! Modelled on TiKV's batch-system `PollHandler`: a batch [`begins`](ShardDriver::begin),
//! each inbox message is [`handled`](ShardDriver::handle) (one [`step`] of the shard), and the
//! batch [`ends`](ShardDriver::end) with the group commit (one `write_batch` of everything the
//! batch changed), after which, and only after which, its outputs are released. The driver
//! owns what is per shard: the [`Shard`], its [`Persister`], the cross-shard messages parked
//! until their target's inbox has room, the resolutions consumed in the batch (removed from
//! the store in its commit).
//!
//! What differs between the threads and the simulator (how outputs reach peers, the
//! application and other shards' inboxes; whether the engine stopped) goes through a
//! [`Sink`], called with static dispatch: the thread loop's hot path has no dyn call. The
//! thread loop ([`crate::engine`]) keeps only receiving and blocking; the simulator keeps
//! only its seeded choice of which shard runs next, its queues and its crashes.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use lightning_core::bitcoin::BlockHash;
use lightning_core::node::{Event, HtlcSource};
use lightning_core::secp256k1::{PublicKey, SecretKey};

use crate::connection::ConnectionId;
use crate::coordinator::Coordinator;
use crate::durable::{self, Persister};
use crate::engine::EngineConfig;
use crate::error::{EngineError, StopReason};
use crate::msg::{Out, PeerOutput, ShardMsg};
use crate::placement::Placement;
use crate::shard::{step, Shard};
use crate::store::{Store, WriteOp};

/// The most bytes of peers' ciphertext one batch handles before its commit and the release of
/// its outputs: a batch of reads full of messages that cost work but change no state (a
/// flood of pings, say) would otherwise hold every other peer's answers back for all of them.
pub(crate) const BATCH_CIPHERTEXT_BYTES: usize = 64 * 1024;

/// Why another shard's inbox did not take a message (it comes back by value, as in
/// crossbeam's `TrySendError`: nothing is allocated to refuse it).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Refused {
    /// No room now: the message stays parked and is retried.
    Full(ShardMsg),
    /// The shard has stopped: the message goes back to the caller of `shutdown`.
    Gone(ShardMsg),
}

/// Where a shard's released outputs go, and what the driver asks of the engine around it:
/// the threads' shared queues, or the simulator's.
pub(crate) trait Sink {
    /// A message carrying `bytes` bytes of a peer's message left shard `shard`'s inbox (its
    /// byte bound gets them back).
    fn taken(&mut self, shard: usize, bytes: usize);
    /// Whether the engine has stopped on a failure.
    fn stopped(&self) -> bool;
    /// Whether the process is dying now (a crash between a commit and its release): the
    /// committed batch's outputs are never released.
    fn aborted(&self) -> bool;
    /// Stops the whole engine for `reason`.
    fn halt(&mut self, reason: StopReason);
    /// Writes a batch on the shard's thread, unless the engine has stopped (refused then,
    /// with nothing written): no shard writes once the engine has stopped.
    fn write(&mut self, store: &dyn Store, ops: &[WriteOp]) -> Result<(), EngineError>;
    /// An event for the application.
    fn event(&mut self, event: Event);
    /// A cross-shard message left this shard (queued or parked): work now pending.
    fn cross_shard(&mut self);
    /// Hands `msg` to shard `to`'s inbox without waiting.
    #[allow(clippy::result_large_err)]
    fn to_shard(&mut self, to: usize, msg: ShardMsg) -> Result<(), Refused>;
    /// Whether a commit now should overlap the shard's next messages (work is waiting for
    /// it): the commit then goes to the host's committer ([`Sink::submit`]) rather than being
    /// written on the shard's thread while that work waits.
    fn overlap(&self) -> bool;
    /// Hands batch `seq`'s writes for shard `shard` to the host's committer, which writes
    /// them after the batches this shard submitted before (a crash keeps a prefix of them)
    /// and reports back through [`ShardDriver::durable`]. `Err` gives them back when there is
    /// no committer: the driver writes them itself.
    #[allow(clippy::result_large_err)]
    fn submit(&mut self, shard: usize, seq: u64, ops: Vec<WriteOp>) -> Result<(), Vec<WriteOp>>;
}

/// A batch whose writes the committer holds: its outputs, and those of the batches after it
/// that needed no commit of their own, wait for it to be durable.
#[derive(Debug)]
struct InFlight {
    seq: u64,
    out: Vec<Out>,
}

/// What [`ShardDriver::handle`] did with a message. A held message comes back by value:
/// the thread loop's hot path allocates nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Handled {
    /// Stepped; the batch has room for another message.
    More,
    /// Stepped; the batch is full: end it.
    Full,
    /// Not handled: this message (a new connection) starts the next batch, so that no output
    /// of the batch is encrypted for the new connection.
    Held(ShardMsg),
    /// A shutdown request: end the batch, then stop once the inbox is drained.
    Shutdown,
}

/// One shard and its batch protocol: see the [module documentation](self).
#[derive(Debug)]
pub(crate) struct ShardDriver {
    shard: Shard,
    /// Where batches are made durable, if anywhere.
    persister: Option<Persister>,
    /// The most messages in one batch.
    commit_batch: usize,
    /// Cross-shard messages waiting for room in their target's inbox, per target, in order.
    parked: Vec<VecDeque<ShardMsg>>,
    /// Cross-shard messages whose target had stopped.
    dead: Vec<ShardMsg>,
    /// Resolutions applied in this batch: their records go in its commit.
    consumed: Vec<HtlcSource>,
    /// The batch's outputs, released after its commit.
    out: Vec<Out>,
    /// Messages handled in this batch.
    handled: usize,
    /// Ciphertext bytes handled in this batch.
    ciphertext: usize,
    /// Whether this batch commits whatever its outputs (a shutdown, an idle flush).
    force_commit: bool,
    /// Whether an earlier batch's changes were carried over uncommitted (none of its
    /// outputs [needed](Out::needs_commit) them durable): the next commit writes them.
    deferred: bool,
    /// Batches submitted to the committer and not yet durable, oldest first (pipelined group
    /// commit: the shard steps the next messages meanwhile).
    in_flight: VecDeque<InFlight>,
    /// The number of the next batch submitted to the committer.
    next_seq: u64,
    /// A commit failed: nothing more is written or released (the store keeps a prefix).
    failed: bool,
}

impl ShardDriver {
    /// The driver of `shard`, shard `shard.index()` of `shards`, as `config` says (its store,
    /// batch size, liveness and forced keys).
    pub(crate) fn new(mut shard: Shard, config: &EngineConfig, shards: usize) -> ShardDriver {
        shard.core_mut().set_liveness(config.liveness);
        shard
            .core_mut()
            .set_forced_channel_keys(config.forced_channel_keys.clone());
        let index = shard.index();
        ShardDriver {
            shard,
            persister: config.store.clone().map(|store| Persister {
                store,
                node_key: durable::node_key(index, shards),
            }),
            // Batches exist to amortize commits: without a store, release each message's
            // outputs at once (cross-shard work then never waits on another batch).
            commit_batch: if config.store.is_some() {
                config.commit_batch.max(1)
            } else {
                1
            },
            parked: (0..shards).map(|_| VecDeque::new()).collect(),
            dead: Vec::new(),
            consumed: Vec::new(),
            out: Vec::new(),
            handled: 0,
            ciphertext: 0,
            force_commit: false,
            deferred: false,
            in_flight: VecDeque::new(),
            next_seq: 0,
            failed: false,
        }
    }

    /// Whether batches submitted to the committer are not yet durable (their outputs wait).
    pub(crate) fn in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// How many batches are in flight.
    pub(crate) fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether outputs wait outside any batch (the disconnections of connections closed by a
    /// release that [`ShardDriver::durable`] made): the caller runs an empty batch for them.
    pub(crate) fn has_outputs(&self) -> bool {
        !self.out.is_empty()
    }

    /// Whether changes are waiting, uncommitted, for the next commit (see
    /// [`ShardDriver::flush`]).
    pub(crate) fn deferred(&self) -> bool {
        self.deferred
    }

    /// Commits the changes carried over by batches that did not need a commit: what a shard
    /// does when its inbox stays empty for a while, so that a crash loses at most a short
    /// window of them (which the peers resend: see [`Out::needs_commit`]). False as
    /// [`ShardDriver::end`].
    pub(crate) fn flush<S: Sink>(&mut self, sink: &mut S) -> bool {
        if !self.deferred {
            return true;
        }
        self.begin();
        self.force_commit = true;
        self.end(sink)
    }

    /// Idle work: derives ahead the next commitments' keys of one channel changed lately
    /// (`NodeCore::derive_ahead`), what a shard does before it sleeps. Returns whether more
    /// is queued. Changes no state and releases nothing.
    pub(crate) fn derive_ahead(&mut self) -> bool {
        self.shard.core_mut().derive_ahead(1)
    }

    /// Whether [`ShardDriver::derive_ahead`] has work.
    pub(crate) fn has_work_ahead(&self) -> bool {
        self.shard.core().has_work_ahead()
    }

    /// The shard.
    pub(crate) fn shard(&self) -> &Shard {
        &self.shard
    }

    /// The process dies: every attached connection closes (the simulator's crashes).
    #[cfg(feature = "sim")]
    pub(crate) fn crash(&mut self) {
        self.shard.close_connections();
    }

    /// The most messages one batch takes.
    #[cfg_attr(not(feature = "sim"), allow(dead_code))]
    pub(crate) fn commit_batch(&self) -> usize {
        self.commit_batch
    }

    /// Messages handled in the current batch.
    pub(crate) fn handled(&self) -> usize {
        self.handled
    }

    /// Releases the outputs of the restore (already durable: the opening batch); false as
    /// [`ShardDriver::end`].
    pub(crate) fn release_initial<S: Sink>(&mut self, first: Vec<Out>, sink: &mut S) -> bool {
        self.out = first;
        self.handled = 0;
        self.ciphertext = 0;
        self.end(sink)
    }

    /// Starts a batch.
    #[inline]
    pub(crate) fn begin(&mut self) {
        self.handled = 0;
        self.ciphertext = 0;
    }

    /// Handles one message of the batch (see [`Handled`]).
    ///
    /// `from_inbox`: the message came through the shard's inbox (its bytes go back to the
    /// inbox's byte bound), rather than read by the shard from a socket it owns.
    #[inline]
    pub(crate) fn handle<S: Sink>(
        &mut self,
        msg: ShardMsg,
        sink: &mut S,
        from_inbox: bool,
    ) -> Handled {
        let connected = match &msg {
            ShardMsg::Shutdown => {
                // Nothing is left uncommitted at a clean stop.
                self.force_commit = true;
                return Handled::Shutdown;
            }
            ShardMsg::Attach(a) => Some(a.node_id),
            ShardMsg::AttachSocket(a) => Some(a.attached.node_id),
            ShardMsg::Resolve(r) => {
                self.consumed.push(r.source);
                None
            }
            ShardMsg::Api(task) => {
                self.force_commit |= task.commits();
                None
            }
            // Chain data: a host that saw the engine idle after a block may rely on it being
            // durable (it replays from the engine's reported best block).
            ShardMsg::BestBlock { .. } | ShardMsg::TransactionsConfirmed { .. } => {
                self.force_commit = true;
                None
            }
            _ => None,
        };
        if connected.is_some() {
            // Outputs are encrypted for the connection attached at delivery: a new
            // connection starts a new batch, so no output of the old one goes to it.
            if self.handled > 0 {
                return Handled::Held(msg);
            }
        }
        let len = msg.peer_bytes();
        if let ShardMsg::Ciphertext { .. } = &msg {
            self.ciphertext += len;
        }
        if from_inbox {
            sink.taken(self.shard.index(), len);
        }
        step(&mut self.shard, msg, &mut self.out);
        self.handled += 1;
        if self.handled < self.commit_batch
            && self.ciphertext < BATCH_CIPHERTEXT_BYTES
            && !sink.stopped()
        {
            Handled::More
        } else {
            Handled::Full
        }
    }

    /// Ends the batch: commits it (one `write_batch`), then releases its outputs; repeats for
    /// the disconnections of connections closed. A batch none of whose outputs
    /// [needs a commit](Out::needs_commit) (a `revoke_and_ack` that completes a dance, a
    /// `PaymentClaimable`) carries its changes into the next commit instead: nothing that
    /// depends on them leaves before that commit. False
    /// when the commit failed: the outputs are dropped (nothing that depends on the lost
    /// state leaves) and the whole engine stops. The outputs of a batch that committed are
    /// released even when another shard stopped the engine meanwhile (its state is durable);
    /// false then too. False, with nothing released, when the process is dying between the
    /// commit and the release ([`Sink::aborted`]).
    pub(crate) fn end<S: Sink>(&mut self, sink: &mut S) -> bool {
        if self.failed {
            self.out.clear();
            return false;
        }
        loop {
            if let Some(p) = &self.persister {
                if self.force_commit || self.out.iter().any(Out::needs_commit) {
                    let ops = match durable::commit_ops(
                        self.shard.core_mut(),
                        &p.node_key,
                        &self.out,
                        &self.consumed,
                    ) {
                        Ok(ops) => ops,
                        Err(error) => return self.fail(sink, error),
                    };
                    self.consumed.clear();
                    self.deferred = false;
                    self.force_commit = false;
                    if !ops.is_empty() {
                        // Behind a batch in flight, or with work waiting: to the committer,
                        // and the shard goes on while it writes.
                        let ops = if self.in_flight() || sink.overlap() {
                            let seq = self.next_seq;
                            match sink.submit(self.shard.index(), seq, ops) {
                                Ok(()) => {
                                    self.next_seq += 1;
                                    self.in_flight.push_back(InFlight {
                                        seq,
                                        out: std::mem::take(&mut self.out),
                                    });
                                    return !sink.stopped();
                                }
                                Err(ops) => ops,
                            }
                        } else {
                            ops
                        };
                        // No committer (so nothing in flight to overtake): written here.
                        debug_assert!(self.in_flight.is_empty(), "a write overtook the committer");
                        if let Err(error) = sink.write(p.store.as_ref(), &ops) {
                            return self.fail(sink, error);
                        }
                    }
                } else {
                    // Carried into the next commit, with the resolutions consumed (their
                    // records stay until the state that applied them is durable).
                    self.deferred = true;
                    self.force_commit = false;
                }
            } else {
                self.consumed.clear();
            }
            if let Some(last) = self.in_flight.back_mut() {
                // Released after the batch in flight before it, in order.
                last.out.append(&mut self.out);
                return !sink.stopped();
            }
            if sink.aborted() {
                // A crash between the commit and the release of the outputs.
                self.out.clear();
                return false;
            }
            let out = std::mem::take(&mut self.out);
            let closed = self.release(out, sink);
            if sink.stopped() {
                return false;
            }
            if closed.is_empty() {
                return true;
            }
            self.detach_closed(closed);
        }
    }

    /// The committer made every batch up to `seq` durable (`Ok`), or failed to (`Err`: the
    /// engine stops, and nothing of the batches in flight is released). Releases the outputs
    /// of the batches now durable, in order; the disconnections of connections they closed
    /// are stepped into the current batch (see [`ShardDriver::has_outputs`]). False as
    /// [`ShardDriver::end`].
    pub(crate) fn durable<S: Sink>(
        &mut self,
        seq: u64,
        result: Result<(), EngineError>,
        sink: &mut S,
    ) -> bool {
        if self.failed {
            return false;
        }
        if let Err(error) = result {
            return self.fail(sink, error);
        }
        let mut out = Vec::new();
        while let Some(batch) = self.in_flight.pop_front() {
            if batch.seq > seq {
                self.in_flight.push_front(batch);
                break;
            }
            out.extend(batch.out);
        }
        if sink.aborted() {
            return false;
        }
        let closed = self.release(out, sink);
        self.detach_closed(closed);
        !sink.stopped()
    }

    /// Steps the disconnection of each attached connection a release closed.
    fn detach_closed(&mut self, closed: Vec<(ConnectionId, PublicKey)>) {
        for (conn, node_id) in closed {
            // An attached connection the shard closed (asked to, or too slow).
            step(
                &mut self.shard,
                ShardMsg::Detach { conn, node_id },
                &mut self.out,
            );
        }
    }

    /// A commit failed: nothing that depends on the lost state is released (this batch's
    /// outputs, those of the batches in flight), and the whole engine stops.
    fn fail<S: Sink>(&mut self, sink: &mut S, error: EngineError) -> bool {
        self.failed = true;
        self.out.clear();
        self.consumed.clear();
        self.in_flight.clear();
        sink.halt(StopReason::CommitFailed {
            shard: self.shard.index(),
            error: Box::new(error),
        });
        false
    }

    /// Tries to hand parked messages to their targets in order; returns how many remain.
    pub(crate) fn flush_parked<S: Sink>(&mut self, sink: &mut S) -> usize {
        let mut remaining = 0;
        for (to, queue) in self.parked.iter_mut().enumerate() {
            while let Some(msg) = queue.pop_front() {
                match sink.to_shard(to, msg) {
                    Ok(()) => {}
                    Err(Refused::Full(m)) => {
                        queue.push_front(m);
                        break;
                    }
                    Err(Refused::Gone(m)) => self.dead.push(m),
                }
            }
            remaining += queue.len();
        }
        self.shard
            .counters()
            .parked_high_water
            .fetch_max(remaining, Ordering::Relaxed);
        remaining
    }

    /// Whatever found its target stopped, and whatever is still parked: work to replay
    /// after a restart (the caller of `shutdown` gets it).
    pub(crate) fn leftovers(&mut self) -> Vec<ShardMsg> {
        let mut left = std::mem::take(&mut self.dead);
        left.extend(self.parked.iter_mut().flat_map(|q| q.drain(..)));
        left
    }

    /// Releases the batch's outputs; returns the attached connections closed (at the core's
    /// request, or because they could not take more).
    fn release<S: Sink>(&mut self, out: Vec<Out>, sink: &mut S) -> Vec<(ConnectionId, PublicKey)> {
        let mut closed = Vec::new();
        for o in out {
            match o {
                Out::Peer {
                    node_id,
                    conn,
                    output,
                } => {
                    let attached = self
                        .shard
                        .connection_mut(&node_id)
                        .filter(|c| Some(c.conn) == conn);
                    if let Some(c) = attached {
                        // Attached: encrypted here, on the peer's shard, now that the state
                        // it reports is durable.
                        let ok = match output {
                            PeerOutput::Message(m) => match c.transport.encrypt(&m) {
                                Ok(bytes) => c.writer.write(bytes),
                                Err(error) => {
                                    tracing::warn!(%node_id, %error, "cannot encrypt");
                                    false
                                }
                            },
                            PeerOutput::Disconnect => false,
                        };
                        if !ok {
                            c.writer.close();
                            closed.push((c.conn, node_id));
                        }
                    } else {
                        // Its connection is gone (the peer left, or reconnected since): what it
                        // would have been sent is dropped; a reconnection starts afresh with
                        // init and reestablish.
                        tracing::trace!(%node_id, "output for a peer without a connection");
                    }
                }
                Out::Event(event) => sink.event(event),
                Out::Reply(reply) => reply.send(),
                Out::Shard { to, msg } => {
                    sink.cross_shard();
                    if let Some(q) = self.parked.get_mut(to) {
                        q.push_back(msg);
                    }
                }
            }
        }
        self.flush_parked(sink);
        closed
    }
}

/// What [`open_shards`] rebuilt from a store.
pub(crate) struct Opened {
    pub(crate) placement: Placement,
    pub(crate) coordinator: Arc<Coordinator>,
    pub(crate) shards: Vec<Shard>,
    /// Each shard's outputs of the restore, to release first (already durable).
    pub(crate) initial: Vec<Vec<Out>>,
}

/// Rebuilds `config.shards` shards from `config.store` (required) and writes the rebuilt
/// state back in one batch: the restore path of [`Engine::open`](crate::Engine::open), which
/// the simulator's restarts take too. Errors as `Engine::open`.
pub(crate) fn open_shards(
    config: &EngineConfig,
    node_secret: SecretKey,
    seed: [u8; 32],
    best_height: u32,
    best_hash: BlockHash,
) -> Result<Opened, EngineError> {
    let store = config.store.clone().ok_or(EngineError::NoStore)?;
    let placement = Placement::new(&node_secret, config.shards);
    let n = placement.shards();
    let (restored, mut ops) = durable::restore(
        store.as_ref(),
        &placement,
        node_secret,
        seed,
        &config.node.shard_share(n),
        (best_height, best_hash),
    )?;
    let coordinator = restored.coordinator;
    let mut shards = Vec::new();
    let mut initial = Vec::new();
    for (index, core) in restored.cores.into_iter().enumerate() {
        let mut shard = Shard::restored(index, core, coordinator.clone(), placement.clone());
        let mut out = Vec::new();
        crate::shard::settle(&mut shard, &mut out);
        ops.extend(durable::commit_ops(
            shard.core_mut(),
            &durable::node_key(index, n),
            &out,
            &[],
        )?);
        shards.push(shard);
        initial.push(out);
    }
    store.write_batch(&ops).map_err(durable::store_error)?;
    Ok(Opened {
        placement,
        coordinator,
        shards,
        initial,
    })
}
