//! Sockets a shard owns: shared-nothing IO.
//!
//! After the BOLT 8 handshake (run wherever the host accepts or dials), the host hands the
//! socket itself to the peer's shard with [`Engine::attach_socket`](crate::Engine::attach_socket).
//! From then on the shard's own thread reads the socket when its poller says it is readable,
//! decrypts and handles what it read in its next batch, and writes what it encrypts straight
//! to the socket once the batch is durable: a peer's bytes never change thread (except a
//! forwarded HTLC, which crosses to the next hop's shard as a message). Compare the ciphertext
//! entry ([`Engine::connection_ciphertext`](crate::Engine::connection_ciphertext)), where the
//! host reads and every read crosses to the shard's inbox.
//!
//! A [`PeerSocket`] is either a file descriptor the shard's poller watches (a TCP or Unix
//! stream, non-blocking), or an in-memory stream that announces its readiness itself through
//! the [`SocketWaker`] the attach returns.
//!
//! Bounds and backpressure: a shard reads at most [`READ_CHUNK`] bytes from one socket before
//! it serves the others. What a socket cannot take yet waits in its own buffer, at most
//! `EngineConfig::peer_outbox_bytes`: a write past it disconnects the peer. While more than
//! half of that waits, the shard does not read the socket (the peer cannot make it produce
//! more); it reads again once the socket has taken all but a quarter, and disconnects a peer
//! that keeps it above half for `EngineConfig::write_stall_timeout`.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use lightning_core::secp256k1::PublicKey;
use parking_lot::Mutex;

use crate::connection::{AttachedConnection, ConnectionId, ConnectionWriter};
use crate::inbox::{Bell, WAKE_TOKEN};
use crate::msg::ShardMsg;

/// The most bytes a shard reads from one socket at a time before it serves its other sockets
/// and its inbox (also the most one read adds to a batch).
pub const READ_CHUNK: usize = 64 * 1024;

/// A byte stream to a peer that a shard can own (see the [module documentation](self)).
///
/// Every call is made on the owning shard's thread and must not block: a read with nothing
/// to read and a write the stream cannot take now return [`io::ErrorKind::WouldBlock`].
pub trait PeerSocket: Send {
    /// Reads what is there into `buf`: `Ok(0)` when the peer closed the stream.
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes a prefix of `buf`, returning its length.
    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// Closes the stream (both directions). Called once, after everything written.
    fn close(&mut self);
    /// The descriptor the shard's poller watches for readability and writability; `None`
    /// for a stream that announces them through its [`SocketWaker`] instead.
    fn poll_fd(&self) -> Option<RawFd>;
    /// Called once when the shard takes the socket, before any other call: puts a stream
    /// in non-blocking mode (the streams of this crate do).
    fn prepare(&mut self) -> io::Result<()> {
        Ok(())
    }
}

macro_rules! std_stream_socket {
    ($t:ty) => {
        impl PeerSocket for $t {
            fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                Read::read(self, buf)
            }
            fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
                Write::write(self, buf)
            }
            fn close(&mut self) {
                let _ = self.shutdown(std::net::Shutdown::Both);
            }
            fn poll_fd(&self) -> Option<RawFd> {
                Some(self.as_raw_fd())
            }
            fn prepare(&mut self) -> io::Result<()> {
                self.set_nonblocking(true)
            }
        }
    };
}

std_stream_socket!(std::net::TcpStream);
std_stream_socket!(std::os::unix::net::UnixStream);

/// Tells a shard that one of its in-memory sockets has bytes to read, or room to write
/// (returned by [`Engine::attach_socket`](crate::Engine::attach_socket); a socket with a
/// descriptor needs none, its poller watches it). Cheap to clone; may be used from any
/// thread; signals after the socket is gone are ignored.
#[derive(Debug, Clone)]
pub struct SocketWaker {
    conn: ConnectionId,
    ready: Sender<ConnectionId>,
    signalled: Arc<AtomicBool>,
    bell: Arc<Bell>,
}

impl SocketWaker {
    /// The socket has bytes to read or room to write: its shard looks at it soon (at most
    /// once per signal, however many signals arrive before it does).
    pub fn ready(&self) {
        if !self.signalled.swap(true, Ordering::SeqCst) {
            let _ = self.ready.send(self.conn);
            self.bell.ring();
        }
    }
}

/// A socket on its way into its shard (carried by [`ShardMsg::AttachSocket`]).
pub struct SocketAttach {
    pub(crate) attached: AttachedConnection,
    pub(crate) shared: Arc<Mutex<Owned>>,
    pub(crate) signalled: Arc<AtomicBool>,
    pub(crate) on_close: Option<Box<dyn FnOnce(ConnectionId) + Send>>,
}

impl core::fmt::Debug for SocketAttach {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SocketAttach")
            .field("conn", &self.attached.conn)
            .field("node_id", &self.attached.node_id)
            .finish_non_exhaustive()
    }
}

/// One socket's state, shared by its shard's reader ([`SocketSet`]) and writer
/// ([`SocketWriter`]), both on the shard's thread (the lock is never contended).
pub(crate) struct Owned {
    socket: Box<dyn PeerSocket>,
    /// Bytes the socket could not take yet, from `sent` on.
    unsent: Vec<u8>,
    sent: usize,
    /// The shard closed the connection: close the socket once `unsent` is written.
    closing: bool,
    /// The socket is closed (by us, or it failed).
    closed: bool,
}

impl Owned {
    pub(crate) fn new(socket: Box<dyn PeerSocket>) -> Arc<Mutex<Owned>> {
        Arc::new(Mutex::new(Owned {
            socket,
            unsent: Vec::new(),
            sent: 0,
            closing: false,
            closed: false,
        }))
    }

    /// Writes what waits, as far as the socket takes it. False when the socket failed.
    fn flush(&mut self) -> bool {
        while self.sent < self.unsent.len() {
            match self.socket.try_write(&self.unsent[self.sent..]) {
                Ok(0) => return false,
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        if self.sent == self.unsent.len() {
            self.unsent.clear();
            self.sent = 0;
        }
        true
    }

    fn waiting(&self) -> usize {
        self.unsent.len() - self.sent
    }

    /// Closes the socket now if the shard closed the connection and everything is written.
    /// True when it is (now or before) closed.
    fn close_if_done(&mut self) -> bool {
        if !self.closed && self.closing && self.waiting() == 0 {
            self.socket.close();
            self.closed = true;
        }
        self.closed
    }
}

/// The [`ConnectionWriter`] of an owned socket: writes straight to it on the shard's thread.
pub(crate) struct SocketWriter {
    pub(crate) conn: ConnectionId,
    pub(crate) shared: Arc<Mutex<Owned>>,
    /// The most bytes waiting for the socket before the peer is disconnected.
    pub(crate) limit: usize,
    /// Where the shard's socket set learns that a socket closed.
    pub(crate) closed_tx: Sender<ConnectionId>,
}

impl ConnectionWriter for SocketWriter {
    fn write(&mut self, bytes: Vec<u8>) -> bool {
        let mut owned = self.shared.lock();
        if owned.closed || owned.closing {
            return false;
        }
        if owned.waiting() + bytes.len() > self.limit.max(bytes.len()) {
            // The peer reads too slowly: it is disconnected, not waited for.
            return false;
        }
        owned.unsent.extend_from_slice(&bytes);
        if !owned.flush() {
            owned.closed = true;
            owned.socket.close();
            let _ = self.closed_tx.send(self.conn);
            return false;
        }
        true
    }

    fn close(&mut self) {
        let mut owned = self.shared.lock();
        owned.closing = true;
        if owned.close_if_done() {
            let _ = self.closed_tx.send(self.conn);
        }
    }
}

/// One socket the shard owns.
struct Entry {
    node_id: PublicKey,
    token: mio::Token,
    fd: Option<RawFd>,
    shared: Arc<Mutex<Owned>>,
    signalled: Arc<AtomicBool>,
    on_close: Option<Box<dyn FnOnce(ConnectionId) + Send>>,
    /// In `SocketSet::ready`.
    queued: bool,
    /// The peer closed its side (or the socket failed): a detach follows the last read.
    eof: bool,
    /// Since when more than half of the write bound waits (the socket is not read).
    throttled_since: Option<Instant>,
}

/// The sockets one shard owns, and which of them to read next.
pub(crate) struct SocketSet {
    registry: mio::Registry,
    map: HashMap<ConnectionId, Entry>,
    tokens: HashMap<mio::Token, ConnectionId>,
    next_token: usize,
    /// Sockets to read, in turn.
    ready: VecDeque<ConnectionId>,
    /// In-memory sockets' signals ([`SocketWaker`]).
    ready_rx: Receiver<ConnectionId>,
    /// Sockets a writer closed (or found failed).
    closed_rx: Receiver<ConnectionId>,
    /// The most bytes waiting for one socket (`EngineConfig::peer_outbox_bytes`).
    write_limit: usize,
    /// How long a socket may stay throttled (`EngineConfig::write_stall_timeout`).
    stall: Duration,
    /// The sockets throttled now.
    throttled: Vec<ConnectionId>,
}

/// What an engine keeps to attach sockets to one shard.
#[derive(Debug, Clone)]
pub(crate) struct ShardSockets {
    pub(crate) ready_tx: Sender<ConnectionId>,
    pub(crate) closed_tx: Sender<ConnectionId>,
    pub(crate) bell: Arc<Bell>,
}

impl ShardSockets {
    /// A waker for connection `conn`'s socket.
    pub(crate) fn waker(&self, conn: ConnectionId, signalled: Arc<AtomicBool>) -> SocketWaker {
        SocketWaker {
            conn,
            ready: self.ready_tx.clone(),
            signalled,
            bell: self.bell.clone(),
        }
    }
}

impl SocketSet {
    /// An empty set registering its sockets with `registry`; and what the engine keeps to
    /// attach sockets to it.
    pub(crate) fn new(
        registry: mio::Registry,
        bell: Arc<Bell>,
        write_limit: usize,
        stall: Duration,
    ) -> (SocketSet, ShardSockets) {
        let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
        let (closed_tx, closed_rx) = crossbeam_channel::unbounded();
        let set = SocketSet {
            registry,
            map: HashMap::new(),
            tokens: HashMap::new(),
            next_token: 0,
            ready: VecDeque::new(),
            ready_rx,
            closed_rx,
            write_limit,
            stall,
            throttled: Vec::new(),
        };
        (
            set,
            ShardSockets {
                ready_tx,
                closed_tx,
                bell,
            },
        )
    }

    /// Takes an attached socket: registers it with the poller and queues it for a first
    /// read (bytes may have arrived before). Returns the connection to step into the shard,
    /// or `None` if the socket could not be registered (it is closed and forgotten, and its
    /// host told).
    pub(crate) fn attach(&mut self, attach: SocketAttach) -> Option<AttachedConnection> {
        let SocketAttach {
            attached,
            shared,
            signalled,
            on_close,
        } = attach;
        let conn = attached.conn;
        if let Some(old) = self.map.remove(&conn) {
            // The host reused a name still in use: the old socket goes.
            self.forget(conn, old);
        }
        let token = mio::Token(self.next_token);
        self.next_token = (self.next_token + 1) % WAKE_TOKEN.0;
        let fd = {
            let mut owned = shared.lock();
            let fd = owned.socket.poll_fd();
            let registered = owned.socket.prepare().and_then(|()| match fd {
                Some(fd) => self.registry.register(
                    &mut mio::unix::SourceFd(&fd),
                    token,
                    mio::Interest::READABLE | mio::Interest::WRITABLE,
                ),
                None => Ok(()),
            });
            if let Err(error) = registered {
                tracing::warn!(conn, %error, "a socket could not be polled: closed");
                owned.socket.close();
                owned.closed = true;
                drop(owned);
                if let Some(f) = on_close {
                    f(conn);
                }
                return None;
            }
            fd
        };
        self.tokens.insert(token, conn);
        self.map.insert(
            conn,
            Entry {
                node_id: attached.node_id,
                token,
                fd,
                shared,
                signalled,
                on_close,
                queued: true,
                eof: false,
                throttled_since: None,
            },
        );
        self.ready.push_back(conn);
        Some(attached)
    }

    /// The poller reported `token` readable and/or writable.
    pub(crate) fn event(&mut self, token: mio::Token, readable: bool, writable: bool) {
        let Some(&conn) = self.tokens.get(&token) else {
            return;
        };
        self.wake(conn, readable, writable);
    }

    fn wake(&mut self, conn: ConnectionId, readable: bool, writable: bool) {
        let Some(entry) = self.map.get_mut(&conn) else {
            return;
        };
        let mut resume = false;
        if writable {
            let mut owned = entry.shared.lock();
            if !owned.flush() {
                owned.closed = true;
                entry.eof = true;
            }
            if owned.close_if_done() {
                entry.eof = true;
            }
            if entry.throttled_since.is_some() && owned.waiting() <= self.write_limit / 4 {
                entry.throttled_since = None;
                resume = true;
            }
        }
        if resume {
            self.throttled.retain(|c| *c != conn);
        }
        let readable = readable || resume;
        if (readable || entry.eof) && !entry.queued {
            entry.queued = true;
            self.ready.push_back(conn);
        }
    }

    /// Takes the in-memory sockets' signals and the writers' closes. True if a socket is
    /// ready to read (or to be detached).
    pub(crate) fn collect(&mut self) -> bool {
        while let Ok(conn) = self.ready_rx.try_recv() {
            if let Some(entry) = self.map.get(&conn) {
                entry.signalled.store(false, Ordering::SeqCst);
            }
            // An in-memory socket: it may also have room to write now.
            self.wake(conn, true, true);
        }
        while let Ok(conn) = self.closed_rx.try_recv() {
            if let Some(entry) = self.map.get_mut(&conn) {
                entry.eof = true;
                if !entry.queued {
                    entry.queued = true;
                    self.ready.push_back(conn);
                }
            }
        }
        !self.ready.is_empty()
    }

    /// Whether anything waits without a poll (signals not yet collected included).
    pub(crate) fn has_work(&self) -> bool {
        !self.ready.is_empty() || !self.ready_rx.is_empty() || !self.closed_rx.is_empty()
    }

    /// The next message from the shard's sockets: what one of them had to read, or its
    /// detach once it closed. `None` when no socket is ready. `buf` is the caller's scratch
    /// space for reads, kept from call to call.
    pub(crate) fn next_message(&mut self, buf: &mut Vec<u8>) -> Option<ShardMsg> {
        while let Some(conn) = self.ready.pop_front() {
            let Some(entry) = self.map.get_mut(&conn) else {
                continue;
            };
            entry.queued = false;
            let node_id = entry.node_id;
            let mut more = false;
            if !entry.eof {
                let mut owned = entry.shared.lock();
                if owned.waiting() > self.write_limit / 2 {
                    // The peer does not read what we write: neither do we, for now.
                    if entry.throttled_since.is_none() {
                        entry.throttled_since = Some(Instant::now());
                        self.throttled.push(conn);
                    }
                    continue;
                }
                // `buf` is the shard's scratch space, zeroed once and reused: the message
                // takes a copy of what was read (a 64 KiB allocation zeroed per read, moved
                // into a message that holds a few hundred bytes, was 1.5% of a shard's instructions).
                if buf.len() != READ_CHUNK {
                    buf.clear();
                    buf.resize(READ_CHUNK, 0);
                }
                let mut len = 0;
                loop {
                    if len == buf.len() {
                        // Enough for now: the others get their turn first.
                        more = true;
                        break;
                    }
                    match owned.socket.try_read(&mut buf[len..]) {
                        Ok(0) => {
                            entry.eof = true;
                            break;
                        }
                        Ok(n) => len += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            entry.eof = true;
                            break;
                        }
                    }
                }
                drop(owned);
                if len > 0 {
                    if more || entry.eof {
                        entry.queued = true;
                        self.ready.push_back(conn);
                    }
                    return Some(ShardMsg::Ciphertext {
                        conn,
                        node_id,
                        bytes: buf.get(..len).unwrap_or_default().to_vec(),
                    });
                }
            }
            if entry.eof {
                let entry = self.map.remove(&conn).expect("present above");
                self.forget(conn, entry);
                return Some(ShardMsg::Detach { conn, node_id });
            }
        }
        None
    }

    /// The shard detached connection `conn` (its host did, or its peer went): the socket
    /// is closed and forgotten.
    pub(crate) fn detach(&mut self, conn: ConnectionId) {
        if let Some(entry) = self.map.remove(&conn) {
            self.forget(conn, entry);
        }
    }

    /// When the first throttled socket's stall timeout runs out, if any is throttled.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.throttled
            .iter()
            .filter_map(|c| self.map.get(c)?.throttled_since)
            .min()
            .map(|since| since + self.stall)
    }

    /// Disconnects the peers whose socket stayed throttled past the stall timeout at `now`
    /// (their detach is the next message).
    pub(crate) fn expire(&mut self, now: Instant) {
        let stall = self.stall;
        let mut expired = Vec::new();
        self.throttled.retain(|conn| {
            let over = self
                .map
                .get(conn)
                .and_then(|e| e.throttled_since)
                .is_none_or(|since| now >= since + stall);
            if over {
                expired.push(*conn);
            }
            !over
        });
        for conn in expired {
            if let Some(entry) = self.map.get_mut(&conn) {
                tracing::info!(
                    conn,
                    node_id = %entry.node_id,
                    "the peer does not read what we write: disconnecting"
                );
                entry.eof = true;
                entry.throttled_since = None;
                if !entry.queued {
                    entry.queued = true;
                    self.ready.push_back(conn);
                }
            }
        }
    }

    fn forget(&mut self, conn: ConnectionId, mut entry: Entry) {
        self.tokens.remove(&entry.token);
        self.throttled.retain(|c| *c != conn);
        if let Some(fd) = entry.fd {
            let _ = self.registry.deregister(&mut mio::unix::SourceFd(&fd));
        }
        {
            let mut owned = entry.shared.lock();
            if !owned.closed {
                owned.socket.close();
                owned.closed = true;
            }
        }
        if let Some(f) = entry.on_close.take() {
            f(conn);
        }
    }
}

impl Drop for SocketSet {
    fn drop(&mut self) {
        let conns: Vec<ConnectionId> = self.map.keys().copied().collect();
        for conn in conns {
            self.detach(conn);
        }
    }
}

impl core::fmt::Debug for SocketSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SocketSet")
            .field("sockets", &self.map.len())
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}
