//! Peers over TCP: accept and dial, the BOLT 8 handshake on the connection's IO task, then
//! the cipher states handed to the peer's shard and ciphertext moved both ways.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lightning_core::secp256k1::{PublicKey, SecretKey};
use lightning_core::transport::{
    InitiatorHandshake, ResponderHandshake, Transport, ACT_ONE_LEN, ACT_THREE_LEN, ACT_TWO_LEN,
};
use shard_engine::{ConnectionId, ConnectionWriter, EngineError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};

use super::Node;

/// Encrypted writes queued for one connection before the peer counts as too slow.
const WRITE_QUEUE: usize = 4096;
/// Bytes read from an established connection at once.
const READ_CHUNK: usize = 16 * 1024;

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

/// Connections and peers to keep connected.
#[derive(Debug, Default)]
pub struct Connections {
    next: AtomicU64,
    open: AtomicUsize,
    map: parking_lot::Mutex<HashMap<ConnectionId, PeerConnection>>,
    /// Peers to redial when no connection to them is up, and their addresses.
    persistent: parking_lot::Mutex<HashMap<PublicKey, SocketAddr>>,
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

    fn is_connected(&self, node_id: &PublicKey) -> bool {
        self.map
            .lock()
            .values()
            .any(|c| c.node_id.as_ref() == Some(node_id))
    }
}

/// Removes a connection from the table when its task ends, however it ends.
struct Registration {
    node: Arc<Node>,
    conn: ConnectionId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        {
            let mut map = self.node.state.connections.map.lock();
            map.remove(&self.conn);
            // After a burst of connections, give the table's memory back (a HashMap never
            // shrinks by itself).
            if map.capacity() > 64 && map.len() * 4 < map.capacity() {
                map.shrink_to_fit();
            }
        }
        self.node
            .state
            .connections
            .open
            .fetch_sub(1, Ordering::SeqCst);
    }
}

fn register(node: &Arc<Node>, addr: SocketAddr, inbound: bool) -> Option<Registration> {
    let c = &node.state.connections;
    if c.open.fetch_add(1, Ordering::SeqCst) >= node.config.max_connections {
        c.open.fetch_sub(1, Ordering::SeqCst);
        return None;
    }
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
    Some(Registration {
        node: node.clone(),
        conn,
    })
}

/// Connections the kernel completes and queues for us before it drops new ones (`listen`'s
/// backlog; the kernel caps it at `net.core.somaxconn`). std's default of 128 overflows in a
/// burst of connections before the accept loop drains it, and each dropped SYN costs its
/// peer a one-second retransmission.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds the peers' listening socket (with `SO_REUSEADDR`, as std does, and
/// [`LISTEN_BACKLOG`]).
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
        let node = node.clone();
        tokio::spawn(async move {
            let Some(reg) = register(&node, addr, true) else {
                tracing::warn!(%addr, "too many connections: refusing");
                return;
            };
            let conn = reg.conn;
            let _ = stream.set_nodelay(true);
            let handshake =
                tokio::time::timeout(node.config.handshake_timeout, respond(&node, conn, stream))
                    .await;
            match handshake {
                Ok(Ok((node_id, transport, stream))) => {
                    run_established(&node, conn, node_id, transport, stream).await
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

async fn respond(
    node: &Node,
    conn: ConnectionId,
    mut stream: TcpStream,
) -> Result<(PublicKey, Transport, TcpStream), String> {
    let handshake = ResponderHandshake::new(&node.node_secret, &ephemeral()?);
    let mut act_one = [0u8; ACT_ONE_LEN];
    stream
        .read_exact(&mut act_one)
        .await
        .map_err(|e| format!("reading act one: {e}"))?;
    let (next, act_two) = handshake
        .process_act_one(&act_one)
        .map_err(|e| format!("act one: {e}"))?;
    stream
        .write_all(&act_two)
        .await
        .map_err(|e| format!("writing act two: {e}"))?;
    let mut act_three = [0u8; ACT_THREE_LEN];
    stream
        .read_exact(&mut act_three)
        .await
        .map_err(|e| format!("reading act three: {e}"))?;
    let (node_id, transport) = next
        .process_act_three(&act_three)
        .map_err(|e| format!("act three: {e}"))?;
    tracing::debug!(conn, %node_id, "inbound handshake done");
    Ok((node_id, transport, stream))
}

async fn initiate(
    node: &Node,
    their_node_id: PublicKey,
    mut stream: TcpStream,
) -> Result<(Transport, TcpStream), String> {
    let handshake = InitiatorHandshake::new(&node.node_secret, &their_node_id, &ephemeral()?);
    stream
        .write_all(&handshake.act_one())
        .await
        .map_err(|e| format!("writing act one: {e}"))?;
    let mut act_two = [0u8; ACT_TWO_LEN];
    stream
        .read_exact(&mut act_two)
        .await
        .map_err(|e| format!("reading act two: {e}"))?;
    let (act_three, transport) = handshake
        .process_act_two(&act_two)
        .map_err(|e| format!("act two: {e}"))?;
    stream
        .write_all(&act_three)
        .await
        .map_err(|e| format!("writing act three: {e}"))?;
    Ok((transport, stream))
}

/// Dials `node_id` at `addr` and runs the connection until it closes. `up` hears whether the
/// handshake succeeded.
async fn dial_and_run(
    node: Arc<Node>,
    node_id: PublicKey,
    addr: SocketAddr,
    up: Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
) {
    let Some(reg) = register(&node, addr, false) else {
        if let Some(up) = up {
            let _ = up.send(Err("too many connections".into()));
        }
        return;
    };
    let conn = reg.conn;
    let timeout = node.config.handshake_timeout;
    let attempt = tokio::time::timeout(timeout, async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        initiate(&node, node_id, stream).await
    })
    .await
    .unwrap_or_else(|_| Err(format!("handshake with {addr} timed out")));
    match attempt {
        Ok((transport, stream)) => {
            if let Some(up) = up {
                let _ = up.send(Ok(()));
            }
            run_established(&node, conn, node_id, transport, stream).await;
        }
        Err(why) => {
            tracing::info!(%node_id, %addr, why, "dial failed");
            if let Some(up) = up {
                let _ = up.send(Err(why));
            }
        }
    }
    drop(reg);
}

/// `connect`: dials `node_id` at `addr` (waiting for the handshake), and keeps redialling it
/// with backoff whenever no connection to it is up.
pub async fn connect(node: Arc<Node>, node_id: PublicKey, addr: SocketAddr) -> Result<(), String> {
    if node_id == node.node_id {
        return Err("cannot connect to ourselves".into());
    }
    let first = node
        .state
        .connections
        .persistent
        .lock()
        .insert(node_id, addr)
        .is_none();
    if node.state.connections.is_connected(&node_id) {
        return Ok(());
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(dial_and_run(node.clone(), node_id, addr, Some(tx)));
    if first {
        tokio::spawn(keep_connected(node.clone(), node_id));
    }
    rx.await
        .unwrap_or_else(|_| Err("the connection task ended".into()))
}

/// Redials a persistent peer whenever it is not connected.
async fn keep_connected(node: Arc<Node>, node_id: PublicKey) {
    let mut backoff = Duration::from_millis(500);
    loop {
        tokio::time::sleep(backoff).await;
        if node.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Some(addr) = node
            .state
            .connections
            .persistent
            .lock()
            .get(&node_id)
            .copied()
        else {
            return;
        };
        if node.state.connections.is_connected(&node_id) {
            backoff = Duration::from_millis(500);
            continue;
        }
        tracing::info!(%node_id, %addr, "reconnecting");
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(dial_and_run(node.clone(), node_id, addr, Some(tx)));
        match rx.await {
            Ok(Ok(())) => backoff = Duration::from_millis(500),
            _ => backoff = (backoff * 2).min(Duration::from_secs(30)),
        }
    }
}

/// The write half of an attached connection, as the shard sees it.
struct SocketWriter {
    tx: mpsc::Sender<Vec<u8>>,
    closing: Arc<watch::Sender<bool>>,
}

impl ConnectionWriter for SocketWriter {
    fn write(&mut self, bytes: Vec<u8>) -> bool {
        !*self.closing.borrow() && self.tx.try_send(bytes).is_ok()
    }

    fn close(&mut self) {
        self.closing.send_replace(true);
    }
}

async fn closed(closing: &watch::Sender<bool>) {
    let mut rx = closing.subscribe();
    let _ = rx.wait_for(|closed| *closed).await;
}

async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Vec<u8>>,
    closing: Arc<watch::Sender<bool>>,
) {
    loop {
        tokio::select! {
            biased;
            next = rx.recv() => match next {
                Some(bytes) => {
                    if wr.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            _ = closed(&closing) => {
                while let Ok(bytes) = rx.try_recv() {
                    if wr.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                break;
            }
        }
    }
    let _ = wr.shutdown().await;
    closing.send_replace(true);
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
    node_id: PublicKey,
    transport: Transport,
    stream: TcpStream,
) {
    if let Some(c) = node.state.connections.map.lock().get_mut(&conn) {
        c.node_id = Some(node_id);
    }
    let (mut rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    let closing = Arc::new(watch::Sender::new(false));
    let writer = SocketWriter {
        tx,
        closing: closing.clone(),
    };
    if control(node, move |n| {
        n.engine
            .attach_connection(conn, node_id, transport, Box::new(writer))
    })
    .await
    .is_err()
    {
        return;
    }
    tracing::info!(conn, %node_id, "peer connected");
    let write_task = tokio::spawn(write_loop(wr, rx, closing.clone()));
    let mut buf = vec![0u8; READ_CHUNK];
    'read: loop {
        let n = tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = closed(&closing) => break,
        };
        let mut bytes = buf.get(..n).unwrap_or_default().to_vec();
        loop {
            match node.engine.connection_ciphertext(conn, node_id, bytes) {
                Ok(()) => break,
                Err(EngineError::Full { .. }) => {
                    // Backpressure: stop reading this socket until the shard has room.
                    bytes = buf.get(..n).unwrap_or_default().to_vec();
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(_) => break 'read,
            }
        }
    }
    let _ = control(node, move |n| n.engine.detach_connection(conn, node_id)).await;
    closing.send_replace(true);
    // The writer ends once the shard has dropped its end (the detach) or closed it.
    let _ = tokio::time::timeout(Duration::from_secs(5), write_task).await;
    tracing::info!(conn, %node_id, "peer disconnected");
}

/// At stop: forget persistent peers (no more redialling).
pub fn close_all(node: &Node) {
    node.state.connections.persistent.lock().clear();
}
