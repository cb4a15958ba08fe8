//! The threaded engine with shard-owned sockets as a [`Hub`]: each peer connection is handed
//! to its shard as an in-memory socket ([`Engine::attach_socket`]), which the shard reads and
//! writes itself. The test network's peers still speak through their [`Link`](crate::Link):
//! what a peer sends lands on its connection's [`MemoryWire`] and rings the shard; what the
//! shard writes goes to the wire's writer (the link's queue, or whatever a benchmark redirects
//! it to).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use lightning_core::bitcoin::{BlockHash, Transaction};
use lightning_core::channel::Channel;
use lightning_core::node::{ChannelDetails, Event, PaymentId, Route};
use lightning_core::secp256k1::PublicKey;
use lightning_core::transport::Transport;
use lightning_core::types::{ChannelId, PaymentHash, PaymentPreimage, PaymentSecret};
use shard_engine::{ConnectionId, ConnectionWriter, Engine, EngineError, PeerSocket, SocketWaker};

use crate::hub::{Hub, Threaded};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One connection's in-memory socket: the bytes the peer sent that its shard has not read,
/// and where the shard's writes go.
pub struct MemoryWire {
    inbound: Mutex<Vec<u8>>,
    out: Mutex<Box<dyn ConnectionWriter>>,
    waker: OnceLock<SocketWaker>,
}

impl MemoryWire {
    fn new(out: Box<dyn ConnectionWriter>) -> Arc<MemoryWire> {
        Arc::new(MemoryWire {
            inbound: Mutex::new(Vec::new()),
            out: Mutex::new(out),
            waker: OnceLock::new(),
        })
    }

    /// Bytes from the peer, without ringing the shard (see [`MemoryWire::wake`]).
    pub fn push_quietly(&self, bytes: &[u8]) {
        lock(&self.inbound).extend_from_slice(bytes);
    }

    /// Bytes from the peer: the shard is rung to read them.
    pub fn push(&self, bytes: &[u8]) {
        self.push_quietly(bytes);
        self.wake();
    }

    /// Rings the shard that owns this wire.
    pub fn wake(&self) {
        if let Some(w) = self.waker.get() {
            w.ready();
        }
    }

    /// Whether bytes wait for the shard.
    pub fn unread(&self) -> bool {
        !lock(&self.inbound).is_empty()
    }

    /// Sends the shard's writes to `out` from now on.
    pub fn redirect(&self, out: Box<dyn ConnectionWriter>) {
        *lock(&self.out) = out;
    }
}

/// The shard's end of a [`MemoryWire`].
struct WireEnd(Arc<MemoryWire>);

impl PeerSocket for WireEnd {
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut inbound = lock(&self.0.inbound);
        if inbound.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(inbound.len());
        buf[..n].copy_from_slice(&inbound[..n]);
        inbound.drain(..n);
        Ok(n)
    }

    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if lock(&self.0.out).write(buf.to_vec()) {
            Ok(buf.len())
        } else {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    fn close(&mut self) {
        lock(&self.0.out).close();
    }

    fn poll_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
}

/// The threaded engine, its peers' connections owned by its shards as [`MemoryWire`]s.
pub struct Sockets {
    inner: Threaded,
    wires: HashMap<ConnectionId, Arc<MemoryWire>>,
}

impl Sockets {
    /// The hub over `engine`.
    pub fn new(engine: Engine) -> Sockets {
        Sockets {
            inner: Threaded { engine },
            wires: HashMap::new(),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Takes the engine back (the wires stay with their shards).
    pub fn into_engine(self) -> Engine {
        self.inner.engine
    }

    /// Connection `conn`'s wire.
    pub fn wire(&self, conn: ConnectionId) -> Option<Arc<MemoryWire>> {
        self.wires.get(&conn).cloned()
    }
}

impl Hub for Sockets {
    fn node_id(&self) -> PublicKey {
        self.inner.node_id()
    }
    fn shard_of(&self, peer: &PublicKey) -> usize {
        self.inner.shard_of(peer)
    }
    fn attach_connection(
        &mut self,
        conn: ConnectionId,
        peer: PublicKey,
        transport: Transport,
        writer: Box<dyn ConnectionWriter>,
    ) -> Result<(), EngineError> {
        let wire = MemoryWire::new(writer);
        let waker = self.inner.engine.attach_socket(
            conn,
            peer,
            transport,
            Box::new(WireEnd(wire.clone())),
            None,
        )?;
        let _ = wire.waker.set(waker);
        self.wires.insert(conn, wire);
        Ok(())
    }
    fn connection_ciphertext(
        &mut self,
        conn: ConnectionId,
        _peer: PublicKey,
        bytes: Vec<u8>,
    ) -> Result<(), EngineError> {
        let wire = self
            .wires
            .get(&conn)
            .ok_or(EngineError::UnknownConnection(conn))?;
        wire.push(&bytes);
        Ok(())
    }
    fn detach_connection(
        &mut self,
        conn: ConnectionId,
        peer: PublicKey,
    ) -> Result<(), EngineError> {
        self.wires.remove(&conn);
        self.inner.detach_connection(conn, peer)
    }
    fn pump(&mut self) -> bool {
        let unread = self.wires.values().any(|w| w.unread());
        self.inner.pump() || unread
    }
    fn is_idle(&self) -> bool {
        self.inner.is_idle() && !self.wires.values().any(|w| w.unread())
    }
    fn take_events(&mut self) -> Vec<Event> {
        self.inner.take_events()
    }
    fn create_channel(
        &mut self,
        peer: PublicKey,
        sats: u64,
        push: u64,
    ) -> Result<ChannelId, EngineError> {
        self.inner.create_channel(peer, sats, push)
    }
    fn funding_transaction_generated(
        &mut self,
        temp: ChannelId,
        tx: Transaction,
    ) -> Result<(), EngineError> {
        self.inner.funding_transaction_generated(temp, tx)
    }
    fn send_payment(
        &mut self,
        route: &Route,
        hash: PaymentHash,
        secret: PaymentSecret,
        id: PaymentId,
    ) -> Result<(), EngineError> {
        self.inner.send_payment(route, hash, secret, id)
    }
    fn create_inbound_payment(
        &mut self,
        preimage: PaymentPreimage,
        amount: Option<u64>,
    ) -> Result<(PaymentHash, PaymentSecret), EngineError> {
        self.inner.create_inbound_payment(preimage, amount)
    }
    fn claim_funds(&mut self, preimage: PaymentPreimage) -> Result<(), EngineError> {
        self.inner.claim_funds(preimage)
    }
    fn fail_htlc_backwards(&mut self, hash: PaymentHash) -> Result<(), EngineError> {
        self.inner.fail_htlc_backwards(hash)
    }
    fn best_block_updated(&mut self, height: u32, hash: BlockHash) -> Result<(), EngineError> {
        self.inner.best_block_updated(height, hash)
    }
    fn transactions_confirmed(
        &mut self,
        height: u32,
        txs: &[(u32, Transaction)],
    ) -> Result<(), EngineError> {
        self.inner.transactions_confirmed(height, txs)
    }
    fn list_channels(&mut self) -> Vec<ChannelDetails> {
        self.inner.list_channels()
    }
    fn channel(&mut self, peer: PublicKey, id: ChannelId) -> Option<Channel> {
        self.inner.channel(peer, id)
    }
    fn choose(&mut self, n: usize) -> Option<usize> {
        self.inner.choose(n)
    }
}
