//! Peers over TCP: accept and dial, the BOLT 8 handshake on the connection's IO task, then
//! the socket itself handed to the peer's shard ([`shard_engine::Engine::attach_socket`]),
//! which reads and writes it on its own thread from then on (shared-nothing IO).
//!
//! # Connection slots
//! Every limit is a [`DaemonConfig`](super::DaemonConfig) field:
//! * An inbound connection first takes a **handshaking** slot (`max_handshaking`) and has
//!   `handshake_timeout` to complete the handshake. When every handshaking slot is taken, the
//!   oldest connection still in its handshake is closed to make room (an idle connection
//!   cannot hold a slot against a peer that handshakes promptly).
//! * Inbound connections from one IP address, handshaking or established without a channel,
//!   are capped at `max_inbound_per_ip`; one more is reset at accept.
//! * After act three the peer's node id is known. A peer we have a channel with (funded, or
//!   one we opened) moves to a **reserved** slot: no cap beyond its handshaking slot, and it
//!   no longer counts against its address. Any other peer takes a **general** slot
//!   (`max_inbound_peers`) or is dropped when none is free.
//! * Our own dials (`connect` and redials) take **outbound** slots (`max_outbound`), which no
//!   inbound connection can use up.
//!
//! Refused connections are reset (`SO_LINGER` 0), so a dialling lnshard tells a full node from
//! one with another identity, which reads act one and closes.
//!
//! # Write queue and backpressure
//! The shard writes encrypted frames straight to the socket; what the socket cannot take yet
//! waits in the connection's buffer, bounded in bytes (`write_queue_bytes`): a write past the
//! bound disconnects the peer. While more than half of the bound waits, the shard does not
//! read the connection (so the peer cannot make us produce more); reading resumes once the
//! socket has taken all but a quarter. A peer that keeps it above half for
//! `write_stall_timeout` is disconnected ([`shard_engine::socket`]).
//!
//! # Redialling
//! Peers `connect`ed to are redialled with backoff (0.5 s doubling to 30 s) while they are
//! not connected. Peers we have channels with and the address of our last successful
//! outbound handshake with each are kept in `<data-dir>/peers` ([`super::peers`]) and
//! redialled after a restart. A peer that only ever dialled us has no known address: it is
//! not redialled (it is expected to dial us). A dial whose remote closes the connection after
//! act one, or answers an act two that does not decrypt, is taken as an identity mismatch
//! (the remote's static key is not the node id dialled): that address is dropped from the
//! redial set and from the peers file, and is not retried.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lightning_core::channel::ChannelPhase;
use lightning_core::node::{ChannelDetails, Event};
use lightning_core::secp256k1::{PublicKey, SecretKey};
use lightning_core::transport::{Established, Handshake, HandshakeStep, ACT_THREE_LEN};
use shard_engine::{ConnectionId, EngineError, NodeApi};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;

use super::Node;

/// The first redial delay, and the delay between checks while the peer is connected.
const REDIAL_MIN: Duration = Duration::from_millis(500);
/// The longest delay between redials.
const REDIAL_MAX: Duration = Duration::from_secs(30);
/// The least time between two warnings about refused connections.
const REFUSAL_WARNING_MS: u64 = 10_000;

/// One open connection, as `list_peers` shows it.
#[derive(Debug, Clone)]
pub struct PeerConnection {
    /// The connection's id.
    pub conn: ConnectionId,
    /// The peer, once the handshake is done.
    pub node_id: Option<PublicKey>,
    /// The remote address.
    pub addr: SocketAddr,
    /// Whether the peer dialled us.
    pub inbound: bool,
}

/// The slot a connection holds (see the [module documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Inbound, in the handshake.
    Handshaking(IpAddr),
    /// Inbound, established, no channel with us.
    General(IpAddr),
    /// Inbound, established, a peer we have a channel with.
    Reserved,
    /// Our dial.
    Outbound,
    /// None (refused after the handshake, winding down).
    Released,
}

/// Slot counts.
#[derive(Debug, Default)]
struct Slots {
    /// Inbound connections in their handshake, oldest first, and how to close each.
    handshaking: BTreeMap<ConnectionId, Arc<Notify>>,
    general: usize,
    reserved: usize,
    outbound: usize,
    /// Inbound connections per address (handshaking or in a general slot).
    per_ip: HashMap<IpAddr, usize>,
}

impl Slots {
    fn release(&mut self, conn: ConnectionId, slot: Slot) {
        match slot {
            Slot::Handshaking(ip) => {
                self.handshaking.remove(&conn);
                self.leave_ip(ip);
            }
            Slot::General(ip) => {
                self.general = self.general.saturating_sub(1);
                self.leave_ip(ip);
            }
            Slot::Reserved => self.reserved = self.reserved.saturating_sub(1),
            Slot::Outbound => self.outbound = self.outbound.saturating_sub(1),
            Slot::Released => {}
        }
    }

    fn leave_ip(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
                if self.per_ip.capacity() > 64 && self.per_ip.len() * 4 < self.per_ip.capacity() {
                    self.per_ip.shrink_to_fit();
                }
            }
        }
    }
}

/// What the node knows about its peers beyond the open connections.
#[derive(Debug, Default)]
struct PeerBook {
    /// Peers we have a channel with (funded, or opened by us): they get reserved slots and
    /// their addresses are persisted.
    channel_peers: HashSet<PublicKey>,
    /// The address of the last successful outbound handshake with each peer.
    good_addr: HashMap<PublicKey, SocketAddr>,
    /// Peers to redial when not connected, at these addresses.
    targets: HashMap<PublicKey, SocketAddr>,
    /// Peers with a redial task running.
    redialing: HashSet<PublicKey>,
}

/// Connections, slots and the peers to keep connected.
#[derive(Debug, Default)]
pub struct Connections {
    next: AtomicU64,
    open: AtomicUsize,
    map: parking_lot::Mutex<HashMap<ConnectionId, PeerConnection>>,
    /// Established connections per peer.
    per_peer: parking_lot::Mutex<HashMap<PublicKey, usize>>,
    slots: parking_lot::Mutex<Slots>,
    book: parking_lot::Mutex<PeerBook>,
    /// Serializes rewrites of the peers file.
    save: parking_lot::Mutex<()>,
    /// Connections refused for want of a slot, and when that was last logged (ms).
    refused: AtomicU64,
    refusal_logged_ms: AtomicU64,
}

impl Connections {
    /// Every established connection.
    pub fn established(&self) -> Vec<PeerConnection> {
        let mut v: Vec<_> = self
            .map
            .lock()
            .values()
            .filter(|c| c.node_id.is_some())
            .cloned()
            .collect();
        v.sort_by_key(|c| c.conn);
        v
    }

    /// Open sockets (handshaking or established).
    pub fn open_count(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Connections refused for want of a slot since the start.
    pub fn refused_count(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn is_connected(&self, node_id: &PublicKey) -> bool {
        self.per_peer.lock().get(node_id).is_some_and(|n| *n > 0)
    }

    /// The remote address of an established connection to `node_id` (the newest).
    fn address_of(&self, node_id: &PublicKey) -> Option<SocketAddr> {
        self.map
            .lock()
            .values()
            .filter(|c| c.node_id.as_ref() == Some(node_id))
            .max_by_key(|c| c.conn)
            .map(|c| c.addr)
    }
}

/// A connection's place in the table and its slot, both given back when its task ends,
/// however it ends.
struct Registration {
    node: Arc<Node>,
    conn: ConnectionId,
    slot: Slot,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let c = &self.node.state.connections;
        let removed = {
            let mut map = c.map.lock();
            let removed = map.remove(&self.conn);
            // After a burst of connections, give the table's memory back (a HashMap never
            // shrinks by itself).
            if map.capacity() > 64 && map.len() * 4 < map.capacity() {
                map.shrink_to_fit();
            }
            removed
        };
        if let Some(node_id) = removed.and_then(|r| r.node_id) {
            let mut per_peer = c.per_peer.lock();
            if let Some(n) = per_peer.get_mut(&node_id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    per_peer.remove(&node_id);
                }
            }
        }
        c.slots.lock().release(self.conn, self.slot);
        c.open.fetch_sub(1, Ordering::SeqCst);
    }
}

fn register(node: &Arc<Node>, addr: SocketAddr, inbound: bool, slot: Slot) -> Registration {
    let c = &node.state.connections;
    c.open.fetch_add(1, Ordering::SeqCst);
    let conn = c.next.fetch_add(1, Ordering::SeqCst) + 1;
    c.map.lock().insert(
        conn,
        PeerConnection {
            conn,
            node_id: None,
            addr,
            inbound,
        },
    );
    Registration {
        node: node.clone(),
        conn,
        slot,
    }
}

/// Counts (and now and then logs) a connection refused for want of a slot.
fn refused(node: &Node, addr: SocketAddr, why: &str) {
    let c = &node.state.connections;
    let total = c.refused.fetch_add(1, Ordering::Relaxed) + 1;
    let now = node.now_ms();
    let last = c.refusal_logged_ms.load(Ordering::Relaxed);
    if (last == 0 || now.saturating_sub(last) >= REFUSAL_WARNING_MS)
        && c.refusal_logged_ms
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(%addr, why, total, "connection refused (one warning per 10 s)");
    } else {
        tracing::debug!(%addr, why, "connection refused");
    }
}

/// The address as one host: an IPv4-mapped IPv6 address is its IPv4 address.
fn host(addr: SocketAddr) -> IpAddr {
    addr.ip().to_canonical()
}

/// Takes a handshaking slot for an inbound connection from `addr`, closing the oldest
/// handshake when all are taken; the reason when the address is over its cap.
fn admit_inbound(
    node: &Arc<Node>,
    addr: SocketAddr,
) -> Result<(Registration, Arc<Notify>), &'static str> {
    let ip = host(addr);
    let config = &node.config;
    let evict = Arc::new(Notify::new());
    let mut slots = node.state.connections.slots.lock();
    if slots.per_ip.get(&ip).copied().unwrap_or(0) >= config.max_inbound_per_ip {
        return Err("too many connections from this address");
    }
    while slots.handshaking.len() >= config.max_handshaking {
        match slots.handshaking.pop_first() {
            Some((oldest, close)) => {
                tracing::debug!(
                    conn = oldest,
                    "every handshaking slot taken: closing the oldest"
                );
                close.notify_one();
            }
            None => return Err("no handshaking slot"),
        }
    }
    *slots.per_ip.entry(ip).or_insert(0) += 1;
    // The id is taken under the slots' lock, so the map's order is the connections' age.
    let reg = register(node, addr, true, Slot::Handshaking(ip));
    slots.handshaking.insert(reg.conn, evict.clone());
    Ok((reg, evict))
}

/// After act three: moves an inbound connection from its handshaking slot to a reserved slot
/// (a peer we have a channel with) or a general one; false when there is no room for it.
fn admit_peer(node: &Node, reg: &mut Registration, node_id: &PublicKey) -> bool {
    let Slot::Handshaking(ip) = reg.slot else {
        return true;
    };
    let c = &node.state.connections;
    let channel = c.book.lock().channel_peers.contains(node_id);
    let mut slots = c.slots.lock();
    slots.handshaking.remove(&reg.conn);
    if channel {
        slots.leave_ip(ip);
        slots.reserved += 1;
        reg.slot = Slot::Reserved;
        true
    } else if slots.general < node.config.max_inbound_peers {
        slots.general += 1;
        reg.slot = Slot::General(ip);
        true
    } else {
        slots.leave_ip(ip);
        reg.slot = Slot::Released;
        false
    }
}

/// Takes an outbound slot.
fn admit_outbound(node: &Arc<Node>, addr: SocketAddr) -> Option<Registration> {
    let mut slots = node.state.connections.slots.lock();
    if slots.outbound >= node.config.max_outbound {
        return None;
    }
    slots.outbound += 1;
    drop(slots);
    Some(register(node, addr, false, Slot::Outbound))
}

/// Connections the kernel completes and queues for us before it drops new ones (`listen`'s
/// backlog; the kernel caps it at `net.core.somaxconn`). std's default of 128 overflows in a
/// burst of connections before the accept loop drains it, and each dropped SYN costs its
/// peer a one-second retransmission.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds the peers' listening socket (with `SO_REUSEADDR`, as std does, and
/// a backlog of `LISTEN_BACKLOG` connections).
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Closes `stream` with a reset (`SO_LINGER` 0), telling its peer it was refused.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Accepts peers until the task is aborted.
pub async fn accept_loop(node: Arc<Node>, listener: TcpListener) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(error) => {
                // Out of file descriptors, typically: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (mut reg, evict) = match admit_inbound(&node, addr) {
            Ok(x) => x,
            Err(why) => {
                refused(&node, addr, why);
                reset(stream);
                continue;
            }
        };
        let node = node.clone();
        tokio::spawn(async move {
            let conn = reg.conn;
            let _ = stream.set_nodelay(true);
            let handshake = tokio::select! {
                r = tokio::time::timeout(node.config.handshake_timeout, respond(&node, conn, stream)) => r,
                _ = evict.notified() => {
                    tracing::debug!(%addr, conn, "inbound handshake closed to make room");
                    return;
                }
            };
            match handshake {
                Ok(Ok((established, stream))) => {
                    if admit_peer(&node, &mut reg, &established.node_id) {
                        run_established(&node, conn, established, stream).await
                    } else {
                        refused(
                            &node,
                            addr,
                            "every slot for peers without a channel is taken",
                        );
                        reset(stream);
                    }
                }
                Ok(Err(why)) => tracing::debug!(%addr, conn, why, "inbound handshake failed"),
                Err(_) => tracing::debug!(%addr, conn, "inbound handshake timed out"),
            }
            drop(reg);
        });
    }
}

fn ephemeral() -> Result<SecretKey, String> {
    let mut bytes = [0u8; 32];
    loop {
        getrandom::fill(&mut bytes).map_err(|e| format!("random source: {e}"))?;
        if let Ok(key) = SecretKey::from_slice(&bytes) {
            return Ok(key);
        }
    }
}

/// What one handshake read gave.
enum HandshakeRead {
    /// The handshake goes on (what it wrote is written).
    Reading(Handshake),
    /// It is done (act three, if ours, is written).
    Established(Established),
    /// The remote closed the connection before the act was whole.
    Closed,
}

/// Reads what the act being read still needs (never more: nothing past the handshake is
/// read here), feeds it to the handshake and writes what it answers.
async fn handshake_read(
    handshake: Handshake,
    stream: &mut TcpStream,
) -> Result<HandshakeRead, HandshakeIo> {
    let mut buf = [0u8; ACT_THREE_LEN];
    let act = handshake.awaiting();
    let want = handshake.bytes_needed().min(buf.len());
    let n = stream
        .read(buf.get_mut(..want).unwrap_or_default())
        .await
        .map_err(|e| HandshakeIo::Io(format!("reading {act}: {e}")))?;
    if n == 0 {
        return Ok(HandshakeRead::Closed);
    }
    let step = handshake
        .read(buf.get(..n).unwrap_or_default())
        .map_err(HandshakeIo::Protocol)?;
    let (write, read) = match step {
        HandshakeStep::Reading { handshake, write } => (write, HandshakeRead::Reading(handshake)),
        HandshakeStep::Established(mut established) => (
            std::mem::take(&mut established.write),
            HandshakeRead::Established(established),
        ),
    };
    if !write.is_empty() {
        stream
            .write_all(&write)
            .await
            .map_err(|e| HandshakeIo::Io(format!("writing after {act}: {e}")))?;
    }
    Ok(read)
}

/// Why a handshake read failed.
enum HandshakeIo {
    /// The socket failed.
    Io(String),
    /// The remote's act was rejected.
    Protocol(lightning_core::transport::HandshakeError),
}

async fn respond(
    node: &Node,
    conn: ConnectionId,
    mut stream: TcpStream,
) -> Result<(Established, TcpStream), String> {
    let mut handshake = Handshake::inbound(&node.node_secret, &ephemeral()?);
    loop {
        let act = handshake.awaiting();
        match handshake_read(handshake, &mut stream).await {
            Ok(HandshakeRead::Reading(next)) => handshake = next,
            Ok(HandshakeRead::Established(established)) => {
                tracing::debug!(conn, node_id = %established.node_id, "inbound handshake done");
                return Ok((established, stream));
            }
            Ok(HandshakeRead::Closed) => return Err(format!("closed while reading {act}")),
            Err(HandshakeIo::Io(why)) => return Err(why),
            Err(HandshakeIo::Protocol(e)) => return Err(e.to_string()),
        }
    }
}

/// Why a dial failed.
#[derive(Debug)]
enum DialError {
    /// The remote is not the node id dialled (it closed after act one, or its act two did
    /// not decrypt): not retried at that address.
    Identity(String),
    /// Anything else (refused, reset, timed out, no outbound slot): retried.
    Failed(String),
}

impl core::fmt::Display for DialError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DialError::Identity(m) | DialError::Failed(m) => f.write_str(m),
        }
    }
}

async fn initiate(
    node: &Node,
    their_node_id: PublicKey,
    addr: SocketAddr,
    mut stream: TcpStream,
) -> Result<(Established, TcpStream), DialError> {
    let (mut handshake, act_one) = Handshake::outbound(
        &node.node_secret,
        &their_node_id,
        &ephemeral().map_err(DialError::Failed)?,
    );
    stream
        .write_all(&act_one)
        .await
        .map_err(|e| DialError::Failed(format!("writing act one to {addr}: {e}")))?;
    loop {
        match handshake_read(handshake, &mut stream).await {
            Ok(HandshakeRead::Reading(next)) => handshake = next,
            Ok(HandshakeRead::Established(established)) => return Ok((established, stream)),
            // A responder with another static key cannot decrypt act one: it reads it and
            // closes (an orderly close). A node refusing us for want of room resets the
            // connection.
            Ok(HandshakeRead::Closed) => {
                return Err(DialError::Identity(format!(
                "{addr} closed the connection after act one: the node there is not {their_node_id}"
            )))
            }
            Err(HandshakeIo::Io(why)) => {
                return Err(DialError::Failed(format!("{why} (from {addr})")))
            }
            Err(HandshakeIo::Protocol(e)) => {
                return Err(DialError::Identity(format!(
                    "act two from {addr} (expected node {their_node_id}): {e}"
                )))
            }
        }
    }
}

/// Dials `node_id` at `addr` and runs the connection until it closes. `up` hears how the
/// handshake went; the peer book learns a good address or forgets a wrong one.
async fn dial_and_run(
    node: Arc<Node>,
    node_id: PublicKey,
    addr: SocketAddr,
    up: tokio::sync::oneshot::Sender<Result<(), DialError>>,
) {
    let Some(reg) = admit_outbound(&node, addr) else {
        let _ = up.send(Err(DialError::Failed(format!(
            "every outbound slot ({}) is taken",
            node.config.max_outbound
        ))));
        return;
    };
    let conn = reg.conn;
    let timeout = node.config.handshake_timeout;
    let attempt = tokio::time::timeout(timeout, async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| DialError::Failed(format!("connecting to {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        initiate(&node, node_id, addr, stream).await
    })
    .await
    .unwrap_or_else(|_| {
        Err(DialError::Failed(format!(
            "handshake with {addr} timed out"
        )))
    });
    match attempt {
        Ok((established, stream)) => {
            dial_succeeded(&node, node_id, addr);
            let _ = up.send(Ok(()));
            run_established(&node, conn, established, stream).await;
        }
        Err(why) => {
            tracing::info!(%node_id, %addr, %why, "dial failed");
            if let DialError::Identity(_) = why {
                forget_address(&node, node_id, addr);
            }
            let _ = up.send(Err(why));
        }
    }
    drop(reg);
}

/// Dials once and waits for the handshake.
async fn dial(node: &Arc<Node>, node_id: PublicKey, addr: SocketAddr) -> Result<(), DialError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(dial_and_run(node.clone(), node_id, addr, tx));
    rx.await
        .unwrap_or_else(|_| Err(DialError::Failed("the connection task ended".into())))
}

/// `connect`: the address of the connection in use if `node_id` is connected already;
/// otherwise dials it at `addr`, waits for the handshake, answers `addr`, and keeps
/// redialling it with backoff whenever no connection to it is up. A failed dial is not
/// retried unless the peer was being redialled already (at its earlier address); one that
/// fails the identity check removes `addr` from the redial set.
pub async fn connect(
    node: Arc<Node>,
    node_id: PublicKey,
    addr: SocketAddr,
) -> Result<SocketAddr, String> {
    if node_id == node.node_id {
        return Err("cannot connect to ourselves".into());
    }
    if let Some(in_use) = node.state.connections.address_of(&node_id) {
        return Ok(in_use);
    }
    dial(&node, node_id, addr)
        .await
        .map_err(|e| e.to_string())?;
    keep_connected(&node, node_id, REDIAL_MIN);
    Ok(addr)
}

/// A successful outbound handshake: `addr` is the peer's good address and its redial target.
fn dial_succeeded(node: &Arc<Node>, node_id: PublicKey, addr: SocketAddr) {
    let save = {
        let mut book = node.state.connections.book.lock();
        book.targets.insert(node_id, addr);
        let changed = book.good_addr.insert(node_id, addr) != Some(addr);
        changed && book.channel_peers.contains(&node_id)
    };
    if save {
        persist_in_background(node);
    }
}

/// A failed identity check at `addr`: neither redialled nor persisted there any more.
fn forget_address(node: &Arc<Node>, node_id: PublicKey, addr: SocketAddr) {
    let save = {
        let mut book = node.state.connections.book.lock();
        if book.targets.get(&node_id) == Some(&addr) {
            book.targets.remove(&node_id);
        }
        let known = book.good_addr.get(&node_id) == Some(&addr);
        if known {
            book.good_addr.remove(&node_id);
        }
        known && book.channel_peers.contains(&node_id)
    };
    if save {
        persist_in_background(node);
    }
}

/// Starts redialling `node_id` (first after `delay`) unless a task does already.
fn keep_connected(node: &Arc<Node>, node_id: PublicKey, delay: Duration) {
    if node.state.connections.book.lock().redialing.insert(node_id) {
        tokio::spawn(redial(node.clone(), node_id, delay));
    }
}

/// Redials a peer whenever it is not connected, while it is a redial target.
async fn redial(node: Arc<Node>, node_id: PublicKey, mut delay: Duration) {
    let mut backoff = REDIAL_MIN;
    loop {
        tokio::time::sleep(delay).await;
        if node.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Some(addr) = node
            .state
            .connections
            .book
            .lock()
            .targets
            .get(&node_id)
            .copied()
        else {
            break;
        };
        if node.state.connections.is_connected(&node_id) {
            backoff = REDIAL_MIN;
            delay = REDIAL_MIN;
            continue;
        }
        tracing::info!(%node_id, %addr, "reconnecting");
        match dial(&node, node_id, addr).await {
            Ok(()) => {
                backoff = REDIAL_MIN;
                delay = REDIAL_MIN;
            }
            // The target is gone from the book; another address may have been given since.
            Err(DialError::Identity(_)) => delay = REDIAL_MIN,
            Err(DialError::Failed(_)) => {
                delay = backoff;
                backoff = (backoff * 2).min(REDIAL_MAX);
            }
        }
    }
    node.state
        .connections
        .book
        .lock()
        .redialing
        .remove(&node_id);
}

/// Whether `channel` makes its peer one "we have a channel with": funded, or opened by us
/// (an unfunded channel a peer opened costs it nothing, so it earns no reserved slot).
fn is_channel_peer(channel: &ChannelDetails) -> bool {
    match channel.phase {
        ChannelPhase::Closed => false,
        ChannelPhase::AwaitingChannelReady | ChannelPhase::Normal => true,
        _ => channel.is_outbound,
    }
}

/// At start: learns the peers we have channels with (from the engine) and redials those the
/// peers file has an address for. Entries of peers without a channel any more are dropped.
pub(crate) async fn start_redialling(node: &Arc<Node>) {
    let channels = match control(node, |n| n.engine.list_channels()).await {
        Ok(c) => c,
        Err(error) => {
            tracing::error!(%error, "listing channels at start: peers are not redialled");
            return;
        }
    };
    let path = super::peers::peers_path(&node.config.data_dir);
    let saved = match super::peers::load(&path) {
        Ok(s) => s,
        Err(error) => {
            tracing::error!(%error, "peers file unreadable: peers are not redialled");
            Vec::new()
        }
    };
    let (targets, dropped) = {
        let mut book = node.state.connections.book.lock();
        book.channel_peers.extend(
            channels
                .iter()
                .filter(|c| is_channel_peer(c))
                .map(|c| c.counterparty_node_id),
        );
        let mut targets = Vec::new();
        let mut dropped = 0;
        for (id, addr) in saved {
            if book.channel_peers.contains(&id) {
                book.good_addr.insert(id, addr);
                book.targets.insert(id, addr);
                targets.push((id, addr));
            } else {
                dropped += 1;
            }
        }
        (targets, dropped)
    };
    tracing::info!(
        peers = targets.len(),
        dropped,
        "redialling the peers we have channels with"
    );
    if dropped > 0 {
        persist_in_background(node);
    }
    for (id, _) in targets {
        keep_connected(node, id, Duration::ZERO);
    }
}

/// The event pump's hook: a peer we now have a channel with is persisted (if we know its
/// address) and gets reserved slots.
pub(crate) fn on_event(node: &Node, event: &Event) {
    let peer = match event {
        Event::ChannelPending {
            counterparty_node_id,
            ..
        }
        | Event::FundingGenerationReady {
            counterparty_node_id,
            ..
        } => counterparty_node_id,
        _ => return,
    };
    let save = {
        let mut book = node.state.connections.book.lock();
        book.channel_peers.insert(*peer) && book.good_addr.contains_key(peer)
    };
    if save {
        persist(node);
    }
}

/// Rewrites the peers file from the book (the latest state wins).
fn persist(node: &Node) {
    let c = &node.state.connections;
    let _one_at_a_time = c.save.lock();
    let mut peers: Vec<(PublicKey, SocketAddr)> = {
        let book = c.book.lock();
        book.good_addr
            .iter()
            .filter(|(id, _)| book.channel_peers.contains(id))
            .map(|(id, addr)| (*id, *addr))
            .collect()
    };
    peers.sort();
    let path = super::peers::peers_path(&node.config.data_dir);
    match super::peers::save(&path, &peers) {
        Ok(()) => tracing::debug!(peers = peers.len(), "peers file written"),
        Err(error) => tracing::error!(%error, "writing the peers file"),
    }
}

fn persist_in_background(node: &Arc<Node>) {
    let node = node.clone();
    tokio::task::spawn_blocking(move || persist(&node));
}

/// Hands a control message to the engine from async code (it may wait for inbox room).
async fn control<T: Send + 'static>(
    node: &Arc<Node>,
    f: impl FnOnce(&Node) -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    let n = node.clone();
    tokio::task::spawn_blocking(move || f(&n))
        .await
        .unwrap_or(Err(EngineError::ShuttingDown))
}

async fn run_established(
    node: &Arc<Node>,
    conn: ConnectionId,
    established: Established,
    stream: TcpStream,
) {
    let Established {
        node_id,
        transport,
        leftover,
        ..
    } = established;
    {
        let c = &node.state.connections;
        let mut map = c.map.lock();
        if let Some(entry) = map.get_mut(&conn) {
            entry.node_id = Some(node_id);
            *c.per_peer.lock().entry(node_id).or_insert(0) += 1;
        }
    }
    if !leftover.is_empty() {
        // The handshake reads exactly its three acts: nothing past them is ever read here.
        tracing::warn!(conn, %node_id, "bytes read past act three: disconnecting");
        return;
    }
    // The socket itself moves into the peer's shard, which reads and writes it from now on.
    let socket = match stream.into_std() {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(conn, %node_id, %error, "cannot hand the socket to its shard");
            return;
        }
    };
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    let on_close: Box<dyn FnOnce(ConnectionId) + Send> = Box::new(move |_| {
        let _ = closed_tx.send(());
    });
    let attached = control(node, move |n| {
        n.engine
            .attach_socket(conn, node_id, transport, Box::new(socket), Some(on_close))
    })
    .await;
    if attached.is_err() {
        return;
    }
    tracing::info!(conn, %node_id, "peer connected");
    // Until the shard closes the socket (the peer went, a failure, a disconnect), or the
    // engine stopped (its shards drop their sockets, which closes them too).
    let _ = closed_rx.await;
    tracing::info!(conn, %node_id, "peer disconnected");
}

/// At stop: no more redialling.
pub fn close_all(node: &Node) {
    node.state.connections.book.lock().targets.clear();
}
