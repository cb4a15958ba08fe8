//! One shard: a NodeCore over the peers placed on it, and [`step`], the plain function that
//! handles one [`ShardMsg`]. The thread loop (`engine`) and the simulator (`sim`) both call
//! `step`; neither adds logic of its own around a message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use lightning_core::node::{Event, HtlcSource, NodeCore, Output};
use lightning_core::secp256k1::{PublicKey, SecretKey};
use lightning_core::transport::Transport;

use crate::connection::{AttachedConnection, ConnectionId, ConnectionWriter};
use crate::coordinator::Coordinator;
use crate::msg::{Out, PeerOutput, ShardMsg};
use crate::placement::Placement;

/// A shard's counters, shared with the engine for reading.
#[derive(Debug, Default)]
pub struct ShardCounters {
    /// Messages handled by `step`.
    pub messages_handled: AtomicU64,
    /// The deepest the inbox has been (messages waiting when one was taken, plus it).
    pub queue_high_water: AtomicUsize,
    /// Nanoseconds spent in `step` and delivering its outputs, and deriving keys ahead
    /// while idle (work a later message would otherwise do).
    pub busy_nanos: AtomicU64,
    /// HTLCs handed to another shard.
    pub forwards_out: AtomicU64,
    /// Results handed to another shard.
    pub resolutions_out: AtomicU64,
    /// The most cross-shard messages parked at once because a target inbox was full.
    pub parked_high_water: AtomicUsize,
    /// When (host ms) the shard's core next needs a timer tick
    /// ([`NodeCore::poll_timeout`]): `u64::MAX` when none is due. The engine ticks only
    /// shards whose time has come. Starts at 0 (tick at once).
    pub next_tick_ms: AtomicU64,
}

/// A snapshot of [`ShardCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShardStats {
    /// Messages handled by `step`.
    pub messages_handled: u64,
    /// The inbox depth high-water mark.
    pub queue_high_water: usize,
    /// Nanoseconds busy (see [`ShardCounters::busy_nanos`]).
    pub busy_nanos: u64,
    /// HTLCs handed to another shard.
    pub forwards_out: u64,
    /// Results handed to another shard.
    pub resolutions_out: u64,
    /// Cross-shard messages parked at once, at most.
    pub parked_high_water: usize,
}

impl ShardCounters {
    /// A snapshot.
    pub fn snapshot(&self) -> ShardStats {
        ShardStats {
            messages_handled: self.messages_handled.load(Ordering::Relaxed),
            queue_high_water: self.queue_high_water.load(Ordering::Relaxed),
            busy_nanos: self.busy_nanos.load(Ordering::Relaxed),
            forwards_out: self.forwards_out.load(Ordering::Relaxed),
            resolutions_out: self.resolutions_out.load(Ordering::Relaxed),
            parked_high_water: self.parked_high_water.load(Ordering::Relaxed),
        }
    }
}

/// One shard's state: its index, its NodeCore (owning its peers' `PeerState`s outright, with
/// no lock around them), and handles on the shared routing state.
#[derive(Debug)]
pub struct Shard {
    index: usize,
    core: NodeCore,
    coordinator: Arc<Coordinator>,
    placement: Placement,
    counters: Arc<ShardCounters>,
    /// The BOLT 8 connections of this shard's peers that were attached to it: their cipher
    /// states and writers. IO state, kept apart from the peers' channel state.
    connections: HashMap<PublicKey, ShardConnection>,
}

/// One attached connection, on its peer's shard.
pub(crate) struct ShardConnection {
    pub(crate) conn: ConnectionId,
    pub(crate) transport: Transport,
    pub(crate) writer: Box<dyn ConnectionWriter>,
}

impl core::fmt::Debug for ShardConnection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ShardConnection")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl Shard {
    /// Shard `index` of `placement.shards()`, running a NodeCore with the node's identity.
    pub fn new(
        index: usize,
        node_secret: SecretKey,
        seed: [u8; 32],
        coordinator: Arc<Coordinator>,
        placement: Placement,
    ) -> Self {
        let (height, hash) = coordinator.best_block();
        let core = NodeCore::new(node_secret, seed, coordinator.config(), height, hash);
        Shard {
            index,
            core,
            coordinator,
            placement,
            counters: Arc::new(ShardCounters::default()),
            connections: HashMap::new(),
        }
    }

    /// Shard `index` of `placement.shards()` over a NodeCore restored from its records.
    pub(crate) fn restored(
        index: usize,
        core: NodeCore,
        coordinator: Arc<Coordinator>,
        placement: Placement,
    ) -> Self {
        Shard {
            index,
            core,
            coordinator,
            placement,
            counters: Arc::new(ShardCounters::default()),
            connections: HashMap::new(),
        }
    }

    /// Write access to the NodeCore (the engine's commits).
    /// The coordinator this shard shares with the others.
    pub(crate) fn coordinator(&self) -> &Coordinator {
        &self.coordinator
    }

    pub(crate) fn core_mut(&mut self) -> &mut NodeCore {
        &mut self.core
    }

    /// This shard's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Read access to the NodeCore (tests, inspection).
    pub fn core(&self) -> &NodeCore {
        &self.core
    }

    /// The counters.
    pub fn counters(&self) -> &Arc<ShardCounters> {
        &self.counters
    }

    /// Connections attached to this shard.
    pub fn attached_connections(&self) -> usize {
        self.connections.len()
    }

    /// The attached connection of `node_id` (the engine's delivery encrypts with it).
    pub(crate) fn connection_mut(&mut self, node_id: &PublicKey) -> Option<&mut ShardConnection> {
        self.connections.get_mut(node_id)
    }

    /// Closes every attached connection, as a dying process's sockets close (the simulator's
    /// crashes).
    #[cfg(feature = "sim")]
    pub(crate) fn close_connections(&mut self) {
        for (_, mut c) in self.connections.drain() {
            c.writer.close();
        }
    }
}

/// Decrypts `bytes` read from `node_id`'s attached connection `conn` and hands each message
/// to the core. A failed decryption closes the connection and disconnects the peer.
fn handle_ciphertext(shard: &mut Shard, conn: ConnectionId, node_id: PublicKey, bytes: &[u8]) {
    let Some(c) = shard.connections.get_mut(&node_id) else {
        return;
    };
    if c.conn != conn {
        // Bytes of a connection the peer has since replaced.
        return;
    }
    let mut input = bytes;
    loop {
        match c.transport.next_message(&mut input) {
            Ok(Some(message)) => shard.core.handle_message(node_id, &message),
            Ok(None) => return,
            Err(error) => {
                tracing::info!(%node_id, %error, "undecryptable bytes: disconnecting");
                c.writer.close();
                shard.connections.remove(&node_id);
                shard.core.peer_disconnected(node_id);
                return;
            }
        }
    }
}

/// Handles one message on `shard`, appending its effects to `out` in order.
///
/// Forwards and results whose target is this shard (or nobody) are handed straight back to
/// the NodeCore; only work for another shard leaves as [`Out::Shard`].
pub fn step(shard: &mut Shard, msg: ShardMsg, out: &mut Vec<Out>) {
    shard
        .counters
        .messages_handled
        .fetch_add(1, Ordering::Relaxed);
    // An API call's answer goes after the outputs its task produced: a caller that returns
    // from the call finds its events (a force-close's broadcast, say) already queued.
    let mut reply = None;
    let msg = match msg {
        // The thread loop takes the socket itself ([`crate::socket`]); stepped here (by a
        // host without one), the connection is attached and written to, never read.
        ShardMsg::AttachSocket(a) => ShardMsg::Attach(a.attached),
        msg => msg,
    };
    match msg {
        ShardMsg::Api(task) => reply = task.run(shard),
        ShardMsg::Forward(forward) => shard.core.handle_forward(forward),
        ShardMsg::Resolve(resolution) => shard.core.handle_resolution(resolution),
        ShardMsg::BestBlock { height, hash } => shard.core.best_block_updated(height, hash),
        ShardMsg::TransactionsConfirmed { height, txdata } => {
            let refs: Vec<(u32, &lightning_core::bitcoin::Transaction)> =
                txdata.iter().map(|(i, tx)| (*i, tx)).collect();
            shard.core.transactions_confirmed(height, &refs);
        }
        ShardMsg::Attach(AttachedConnection {
            conn,
            node_id,
            transport,
            writer,
        }) => {
            let _span = tracing::debug_span!("peer", node_id = %node_id).entered();
            if let Some(mut old) = shard.connections.remove(&node_id) {
                tracing::debug!(
                    old = old.conn,
                    new = conn,
                    "a new connection replaces the old"
                );
                old.writer.close();
                shard.core.peer_disconnected(node_id);
            }
            shard.connections.insert(
                node_id,
                ShardConnection {
                    conn,
                    transport,
                    writer,
                },
            );
            shard.core.peer_connected(node_id);
        }
        ShardMsg::Ciphertext {
            conn,
            node_id,
            bytes,
        } => {
            let _span = tracing::debug_span!("peer", node_id = %node_id).entered();
            handle_ciphertext(shard, conn, node_id, &bytes);
            if let Some(c) = shard.connections.get_mut(&node_id) {
                if c.conn == conn {
                    c.writer.read_consumed();
                }
            }
        }
        // Made an `Attach` above.
        ShardMsg::AttachSocket(_) => {}
        ShardMsg::Detach { conn, node_id } => {
            if shard
                .connections
                .get(&node_id)
                .is_some_and(|c| c.conn == conn)
            {
                if let Some(mut c) = shard.connections.remove(&node_id) {
                    c.writer.close();
                }
                shard.core.peer_disconnected(node_id);
            }
        }
        ShardMsg::Timer { now_ms } => shard.core.timer_tick(now_ms),
        ShardMsg::Shutdown => {}
    }
    drain(shard, out);
    if let Some(reply) = reply {
        out.push(Out::Reply(reply));
    }
    let next = shard.core.poll_timeout().unwrap_or(u64::MAX);
    shard.counters.next_tick_ms.store(next, Ordering::Relaxed);
}

/// Moves what the NodeCore has produced outside a [`step`] (after a restore) to `out`.
pub(crate) fn settle(shard: &mut Shard, out: &mut Vec<Out>) {
    drain(shard, out);
}

/// Moves the NodeCore's outputs to `out`, keeping the coordinator's maps current and
/// handing back to the core whatever is its own.
fn drain(shard: &mut Shard, out: &mut Vec<Out>) {
    while let Some(output) = shard.core.poll_output() {
        match output {
            Output::SendMessage { node_id, msg } => out.push(Out::Peer {
                conn: shard.connections.get(&node_id).map(|c| c.conn),
                node_id,
                output: PeerOutput::Message(msg.encode()),
            }),
            Output::Disconnect { node_id } => out.push(Out::Peer {
                conn: shard.connections.get(&node_id).map(|c| c.conn),
                node_id,
                output: PeerOutput::Disconnect,
            }),
            Output::Event(event) => {
                observe(shard, &event);
                out.push(Out::Event(event));
            }
            Output::Forward(forward) => {
                let owner = shard
                    .coordinator
                    .channel_of_scid(&forward.short_channel_id)
                    .map(|(node_id, _)| shard.placement.shard_of(&node_id));
                match owner {
                    Some(to) if to != shard.index => {
                        tracing::trace!(to, scid = %forward.short_channel_id, "forward to shard");
                        shard.counters.forwards_out.fetch_add(1, Ordering::Relaxed);
                        out.push(Out::Shard {
                            to,
                            msg: ShardMsg::Forward(forward),
                        });
                    }
                    // Ours, or nobody's: the core adds it or fails it (unknown_next_peer).
                    _ => shard.core.handle_forward(forward),
                }
            }
            Output::Resolve(resolution) => {
                let owner = match resolution.source {
                    HtlcSource::Forwarded { channel_id, .. } => shard
                        .coordinator
                        .peer_of_channel(&channel_id)
                        .map(|node_id| shard.placement.shard_of(&node_id)),
                    HtlcSource::Local(payment_id) => shard.coordinator.payment_shard(&payment_id),
                };
                match owner {
                    Some(to) if to != shard.index => {
                        shard
                            .counters
                            .resolutions_out
                            .fetch_add(1, Ordering::Relaxed);
                        out.push(Out::Shard {
                            to,
                            msg: ShardMsg::Resolve(resolution),
                        });
                    }
                    _ => {
                        tracing::warn!(?resolution.source, "result for an htlc nobody owns");
                        shard.core.handle_resolution(resolution);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Keeps the coordinator's maps current from the events that change them.
fn observe(shard: &Shard, event: &Event) {
    let coordinator = &shard.coordinator;
    match event {
        Event::FundingGenerationReady {
            temporary_channel_id,
            counterparty_node_id,
            ..
        } => coordinator.insert_channel(*temporary_channel_id, *counterparty_node_id),
        Event::ChannelPending {
            channel_id,
            counterparty_node_id,
            ..
        } => coordinator.insert_channel(*channel_id, *counterparty_node_id),
        Event::ChannelReady {
            channel_id,
            counterparty_node_id,
            short_channel_id,
            alias,
            ..
        } => {
            let scids: Vec<_> = short_channel_id
                .iter()
                .chain(alias.iter())
                .copied()
                .collect();
            coordinator.insert_scids(*channel_id, *counterparty_node_id, &scids);
        }
        Event::ChannelClosed { channel_id, .. } => coordinator.channel_closed(channel_id),
        Event::PaymentClaimable { payment_hash, .. } => {
            coordinator.claimable_at(*payment_hash, shard.index)
        }
        Event::PaymentSent { payment_id, .. } | Event::PaymentFailed { payment_id, .. } => {
            coordinator.payment_finished(payment_id, shard.core.best_block().0)
        }
        _ => {}
    }
}
