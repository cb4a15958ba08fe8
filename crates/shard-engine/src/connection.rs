//! BOLT 8 connections: the Noise handshake in front of the shards, then the encrypted message
//! stream on the peer's own shard.
//!
//! An inbound connection belongs to no shard until act three reveals the peer's node id, so
//! the handshake runs on the thread that serves the socket. Once established, the connection's
//! [`Transport`] (its cipher states) moves into the peer's shard with
//! [`Engine::attach_connection`](crate::Engine::attach_connection), together with a
//! [`ConnectionWriter`] for outgoing ciphertext: from then on the shard thread decrypts every
//! byte the socket delivers ([`Engine::connection_ciphertext`](crate::Engine::connection_ciphertext))
//! and encrypts every message it sends, after the state that message commits to is durable.
//!
//! Two hosts use this:
//! * the daemon (`lnshard node`) runs the handshake on its own IO task and attaches the
//!   transport with a writer that feeds the socket's write half;
//! * a host that hands the engine raw socket bytes names each connection with its own
//!   [`ConnectionId`] and calls [`Engine::handle_bytes`](crate::Engine::handle_bytes), which
//!   runs the handshake on the caller's thread, attaches the transport with a queue writer
//!   after act three, and forwards later bytes to the shard as ciphertext;
//!   [`Engine::wait_ready_connection`](crate::Engine::wait_ready_connection) names a
//!   connection the shard wrote to and
//!   [`Engine::connection_outputs`](crate::Engine::connection_outputs) drains what it
//!   encrypted.
//!
//! Both drive the handshake with lightning-core's [`Handshake`], the one sans-IO state
//! machine for a BOLT 8 connection between its first byte and its [`Transport`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use lightning_core::bitcoin::hashes::{sha256, Hash, HashEngine};
use lightning_core::secp256k1::{PublicKey, SecretKey};
use lightning_core::transport::{Handshake, Transport};
use parking_lot::{Mutex, RwLock};

use crate::budget::ByteBudget;

/// The host's name for one connection (unique among its open connections).
pub type ConnectionId = u64;

/// What to write to a connection's socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionOutput {
    /// Encrypted bytes to write, in order.
    pub bytes: Vec<u8>,
    /// Close the connection after writing `bytes`.
    pub disconnect: bool,
}

/// Where a connection's handshake stands.
#[derive(Debug)]
pub(crate) enum State {
    /// In the handshake (it buffers the act being read).
    Handshaking(Handshake),
    /// Established with `node_id`: the cipher states live on the peer's shard; encrypted
    /// bytes come back through `queue`.
    Established {
        /// The peer.
        node_id: PublicKey,
        /// Ciphertext the shard wrote, and whether it closed the connection.
        queue: QueueReader,
    },
    /// Failed: the host must close it.
    Failed,
}

/// One connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) state: State,
    /// Ciphertext a full inbox refused: sent first on the next call.
    pub(crate) pending: VecDeque<Vec<u8>>,
}

impl Connection {
    pub(crate) fn new(state: State) -> Self {
        Connection {
            state,
            pending: VecDeque::new(),
        }
    }
}

/// Every open connection, and the connections with output waiting (each named once until
/// [`QueueReader::drain`] runs).
#[derive(Debug)]
pub(crate) struct Connections {
    pub(crate) map: RwLock<HashMap<ConnectionId, Arc<Mutex<Connection>>>>,
    ready_tx: Sender<ConnectionId>,
    ready_rx: Receiver<ConnectionId>,
}

impl Default for Connections {
    fn default() -> Self {
        // Unbounded, yet never longer than the number of connections: each is queued at most
        // once until its host drains it.
        let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
        Connections {
            map: RwLock::default(),
            ready_tx,
            ready_rx,
        }
    }
}

impl Connections {
    pub(crate) fn get(&self, conn: ConnectionId) -> Option<Arc<Mutex<Connection>>> {
        self.map.read().get(&conn).cloned()
    }

    /// A connection the shards wrote to (or closed) since its host last drained it, waiting
    /// up to `timeout`.
    pub(crate) fn wait_ready(&self, timeout: std::time::Duration) -> Option<ConnectionId> {
        self.ready_rx.recv_timeout(timeout).ok()
    }

    /// A queue writer for connection `conn` (see [`queue`]) that signals its readiness here.
    pub(crate) fn queue(
        &self,
        conn: ConnectionId,
        capacity: usize,
        max_bytes: usize,
    ) -> (QueueWriter, QueueReader) {
        queue(
            capacity,
            max_bytes,
            Ready {
                conn,
                tx: self.ready_tx.clone(),
                signalled: Arc::new(AtomicBool::new(false)),
            },
        )
    }
}

/// How a [`QueueWriter`] tells its host that connection `conn` has output: it queues `conn`
/// once, until the reader drains it.
#[derive(Debug, Clone)]
struct Ready {
    conn: ConnectionId,
    tx: Sender<ConnectionId>,
    signalled: Arc<AtomicBool>,
}

impl Ready {
    fn signal(&self) {
        if !self.signalled.swap(true, Ordering::SeqCst) {
            let _ = self.tx.send(self.conn);
        }
    }
}

/// Where a shard writes one connection's encrypted bytes (the socket's write half, or a
/// queue its host drains). Called on the shard thread, after the batch that produced the
/// bytes is durable; it must not block.
pub trait ConnectionWriter: Send {
    /// Queues `bytes` (whole encrypted frames) for the socket. False when the connection
    /// cannot take them (closed, or its queue is full): the shard then disconnects the peer
    /// rather than wait for it.
    fn write(&mut self, bytes: Vec<u8>) -> bool;
    /// Closes the connection once what was written before has gone out.
    fn close(&mut self);
    /// Called on the shard after it has handled one batch of bytes read from this connection
    /// (one [`Engine::connection_ciphertext`](crate::Engine::connection_ciphertext) call). A
    /// host that waits for it before reading the socket again keeps at most one read per
    /// connection in the shard's inbox, so a peer that floods cannot crowd the others out:
    /// the shard serves its connections in turn. The default does nothing.
    fn read_consumed(&mut self) {}
}

/// An established connection moving into its peer's shard: the cipher states and where to
/// write what they encrypt.
pub struct AttachedConnection {
    /// The host's name for the connection (a later [`ShardMsg`](crate::ShardMsg) for another
    /// connection of the same peer is stale and ignored).
    pub conn: ConnectionId,
    /// The peer.
    pub node_id: PublicKey,
    /// The cipher states, right after the handshake.
    pub transport: Transport,
    /// Where encrypted bytes go.
    pub writer: Box<dyn ConnectionWriter>,
}

impl core::fmt::Debug for AttachedConnection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AttachedConnection")
            .field("conn", &self.conn)
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// The writer [`Engine::handle_bytes`](crate::Engine::handle_bytes) attaches: a bounded queue
/// that [`Engine::connection_outputs`](crate::Engine::connection_outputs) drains.
#[derive(Debug)]
pub(crate) struct QueueWriter {
    tx: Sender<Vec<u8>>,
    closed: Arc<AtomicBool>,
    bytes: Arc<ByteBudget>,
    ready: Ready,
}

/// The host's end of a [`QueueWriter`].
#[derive(Debug)]
pub(crate) struct QueueReader {
    rx: Receiver<Vec<u8>>,
    closed: Arc<AtomicBool>,
    bytes: Arc<ByteBudget>,
    ready: Ready,
}

/// A queue writer holding at most `capacity` writes and `max_bytes` bytes (see
/// [`ByteBudget`]), and its reader; each write and the close signal `ready`.
fn queue(capacity: usize, max_bytes: usize, ready: Ready) -> (QueueWriter, QueueReader) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    let closed = Arc::new(AtomicBool::new(false));
    let bytes = Arc::new(ByteBudget::new(max_bytes));
    (
        QueueWriter {
            tx,
            closed: closed.clone(),
            bytes: bytes.clone(),
            ready: ready.clone(),
        },
        QueueReader {
            rx,
            closed,
            bytes,
            ready,
        },
    )
}

impl ConnectionWriter for QueueWriter {
    fn write(&mut self, bytes: Vec<u8>) -> bool {
        if self.closed.load(Ordering::SeqCst) {
            return false;
        }
        let len = bytes.len();
        if !self.bytes.try_take(len) {
            return false;
        }
        if self.tx.try_send(bytes).is_err() {
            self.bytes.give_back(len);
            return false;
        }
        self.ready.signal();
        true
    }

    fn close(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        self.ready.signal();
    }
}

impl QueueReader {
    /// Everything written so far, and whether the shard closed the connection after it.
    pub(crate) fn drain(&self) -> (Vec<u8>, bool) {
        // First: a write from now on queues the connection again.
        self.ready.signalled.store(false, Ordering::SeqCst);
        let mut bytes = Vec::new();
        for chunk in self.rx.try_iter() {
            bytes.extend_from_slice(&chunk);
        }
        let closed = self.closed.load(Ordering::SeqCst);
        if closed {
            // Writes that raced with the close came before it.
            for chunk in self.rx.try_iter() {
                bytes.extend_from_slice(&chunk);
            }
        }
        self.bytes.give_back(bytes.len());
        (bytes, closed)
    }
}

/// A fresh ephemeral key for connection `conn`: from the node seed, the connection id and a
/// per-engine counter (never reused within one engine's life).
pub(crate) fn ephemeral_key(seed: &[u8; 32], conn: ConnectionId, counter: u64) -> SecretKey {
    let mut engine = sha256::Hash::engine();
    engine.input(b"lnshard/noise-ephemeral");
    engine.input(seed);
    engine.input(&conn.to_be_bytes());
    engine.input(&counter.to_be_bytes());
    let mut bytes = sha256::Hash::from_engine(engine).to_byte_array();
    loop {
        if let Ok(key) = SecretKey::from_slice(&bytes) {
            return key;
        }
        bytes = sha256::Hash::hash(&bytes).to_byte_array();
    }
}
