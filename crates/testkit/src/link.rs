//! BOLT 8 between the test network's plaintext peers and the routing node.
//!
//! The engine takes peers' bytes only as BOLT 8 ciphertext on attached connections
//! ([`Engine::attach_connection`](shard_engine::Engine::attach_connection),
//! [`connection_ciphertext`](shard_engine::Engine::connection_ciphertext),
//! [`detach_connection`](shard_engine::Engine::detach_connection)); the test network's peers
//! are plain `NodeCore`s that speak in messages. A [`Link`] is one connection between them:
//! [`Link::open`] runs the real handshake in memory (the peer dials the hub with its own node
//! secret; the hub answers with its own), keeps the peer's end of the session, and hands back
//! the hub's end (its [`Transport`] and a [`LinkWriter`]) to attach to the hub. Then
//! [`Link::seal`] encrypts each of the peer's messages for the hub, and [`Link::take`]
//! decrypts what the hub's shard wrote into the writer. This is the only plaintext entry to
//! the engine, and it lives here, in the test tooling.

use std::collections::VecDeque;
use std::sync::Arc;

use lightning_core::bitcoin::hashes::{sha256, Hash, HashEngine};
use lightning_core::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning_core::transport::{Handshake, HandshakeStep, Transport};
use parking_lot::Mutex;
use shard_engine::{ConnectionId, ConnectionWriter};

/// Writes one [`LinkWriter`] holds before it refuses more (as the engine's own connection
/// queue, [`EngineConfig::peer_outbox_capacity`](shard_engine::EngineConfig)).
pub const LINK_CAPACITY: usize = 4096;
/// Bytes one [`LinkWriter`] holds before it refuses more (a write that would take a
/// non-empty queue past it), as [`EngineConfig::peer_outbox_bytes`](shard_engine::EngineConfig).
pub const LINK_BYTES: usize = 1 << 20;

/// What the hub's shard wrote to one connection and the peer has not read yet.
#[derive(Default)]
struct Queue {
    /// Encrypted writes, in order (each write one whole frame: one message).
    chunks: VecDeque<Vec<u8>>,
    /// Their bytes.
    bytes: usize,
    /// The hub closed the connection.
    closed: bool,
    /// Called after each write and the close (see [`Link::on_write`]).
    notify: Option<Box<dyn FnMut() + Send>>,
}

/// The hub's end of a [`Link`]'s byte stream: the [`ConnectionWriter`] attached to the hub
/// with the connection. Bounded in writes ([`LINK_CAPACITY`]) and bytes ([`LINK_BYTES`]):
/// a write past either is refused, and the shard then disconnects the peer as too slow.
pub struct LinkWriter {
    queue: Arc<Mutex<Queue>>,
}

impl ConnectionWriter for LinkWriter {
    fn write(&mut self, bytes: Vec<u8>) -> bool {
        let mut q = self.queue.lock();
        let over = q.bytes > 0 && q.bytes + bytes.len() > LINK_BYTES;
        if q.closed || over || q.chunks.len() >= LINK_CAPACITY {
            return false;
        }
        q.bytes += bytes.len();
        q.chunks.push_back(bytes);
        if let Some(notify) = &mut q.notify {
            notify();
        }
        true
    }

    fn close(&mut self) {
        let mut q = self.queue.lock();
        q.closed = true;
        if let Some(notify) = &mut q.notify {
            notify();
        }
    }
}

/// The hub's end of a new [`Link`], to attach to the hub.
pub struct HubEnd {
    /// The connection's name.
    pub conn: ConnectionId,
    /// The peer's node id, as the hub's side of the handshake learned it from act three.
    pub node_id: PublicKey,
    /// The hub's cipher states, right after the handshake.
    pub transport: Transport,
    /// Where the hub's shard writes what it encrypts for the peer.
    pub writer: LinkWriter,
}

/// One BOLT 8 connection between a test peer and the hub: the peer's end (see the
/// [module documentation](self)).
pub struct Link {
    /// The connection's name (the hub's `ConnectionId`).
    pub conn: ConnectionId,
    /// The peer's cipher states.
    transport: Transport,
    /// What the hub wrote.
    queue: Arc<Mutex<Queue>>,
    /// The ciphertext of a message the hub refused (`Full`), to hand over again as is: its
    /// nonce is spent.
    refused: Option<Vec<u8>>,
}

/// A deterministic ephemeral key for one side of connection `conn` (test tooling: a real
/// node draws it from strong randomness).
fn ephemeral(side: &[u8], local: &SecretKey, conn: ConnectionId) -> SecretKey {
    let mut engine = sha256::Hash::engine();
    engine.input(b"lnshard-testkit/link-ephemeral");
    engine.input(side);
    engine.input(&local.secret_bytes());
    engine.input(&conn.to_be_bytes());
    let mut bytes = sha256::Hash::from_engine(engine).to_byte_array();
    loop {
        if let Ok(key) = SecretKey::from_slice(&bytes) {
            return key;
        }
        bytes = sha256::Hash::hash(&bytes).to_byte_array();
    }
}

impl Link {
    /// Connection `conn`: the peer `peer_secret` dials the hub `hub_secret` and both run the
    /// BOLT 8 handshake (acts one to three) in memory. Returns the peer's end and the hub's.
    ///
    /// Panics if the handshake fails (it cannot between two honest ends in memory).
    pub fn open(
        conn: ConnectionId,
        peer_secret: &SecretKey,
        hub_secret: &SecretKey,
    ) -> (Link, HubEnd) {
        let secp = Secp256k1::signing_only();
        let hub_id = PublicKey::from_secret_key(&secp, hub_secret);
        let (dialled, act_one) =
            Handshake::outbound(peer_secret, &hub_id, &ephemeral(b"peer", peer_secret, conn));
        let accepted = Handshake::inbound(hub_secret, &ephemeral(b"hub", hub_secret, conn));
        let (accepted, act_two) = match accepted.read(&act_one) {
            Ok(HandshakeStep::Reading { handshake, write }) => (handshake, write),
            _ => panic!("the hub refused act one"),
        };
        let peer = match dialled.read(&act_two) {
            Ok(HandshakeStep::Established(e)) => e,
            _ => panic!("the peer refused act two"),
        };
        let hub = match accepted.read(&peer.write) {
            Ok(HandshakeStep::Established(e)) => e,
            _ => panic!("the hub refused act three"),
        };
        let queue = Arc::new(Mutex::new(Queue::default()));
        (
            Link {
                conn,
                transport: peer.transport,
                queue: queue.clone(),
                refused: None,
            },
            HubEnd {
                conn,
                node_id: hub.node_id,
                transport: hub.transport,
                writer: LinkWriter { queue },
            },
        )
    }

    /// The peer's `message` (type and payload), encrypted for the hub: one frame. After a
    /// refusal ([`Link::refused`]), the refused frame again (the message must be the same).
    pub fn seal(&mut self, message: &[u8]) -> Vec<u8> {
        if let Some(frame) = self.refused.take() {
            return frame;
        }
        self.transport
            .encrypt(message)
            .expect("a test peer's message fits one BOLT 8 frame")
    }

    /// The hub did not take `frame` (the last [`Link::seal`]): the next `seal` hands it over
    /// again, since its nonce is spent.
    pub fn refused(&mut self, frame: Vec<u8>) {
        self.refused = Some(frame);
    }

    /// Everything the hub wrote since the last call, decrypted into messages, and whether
    /// the hub closed the connection (after them). Bytes that do not decrypt close it too.
    pub fn take(&mut self) -> (Vec<Vec<u8>>, bool) {
        let (chunks, closed) = self.take_ciphertext();
        let mut messages = Vec::new();
        for chunk in chunks {
            match self.transport.decrypt(&chunk) {
                Ok(mut m) => messages.append(&mut m),
                Err(_) => return (messages, true),
            }
        }
        (messages, closed)
    }

    /// Everything the hub wrote since the last call, still encrypted (one write per message),
    /// and whether the hub closed the connection: for a driver that counts messages now and
    /// decrypts them later with [`Link::open_frames`].
    pub fn take_ciphertext(&mut self) -> (VecDeque<Vec<u8>>, bool) {
        let mut q = self.queue.lock();
        q.bytes = 0;
        (std::mem::take(&mut q.chunks), q.closed)
    }

    /// Decrypts `frames` the hub wrote (in the order written, after every frame taken
    /// before): the messages, or `None` if any does not decrypt.
    pub fn open_frames(&mut self, frames: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
        let mut messages = Vec::new();
        for frame in frames {
            messages.append(&mut self.transport.decrypt(frame).ok()?);
        }
        Some(messages)
    }

    /// Calls `notify` (on the hub's thread) after each write the hub makes to this link, and
    /// when it closes it: a driver that waits for output instead of polling.
    pub fn on_write(&self, notify: impl FnMut() + Send + 'static) {
        self.queue.lock().notify = Some(Box::new(notify));
    }
}
