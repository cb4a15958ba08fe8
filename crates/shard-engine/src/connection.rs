//! BOLT 8 connections: the Noise handshake and the encrypted message stream, on the caller's
//! thread, in front of the shards.
//!
//! A host that hands the engine raw socket bytes names each connection with its own
//! [`ConnectionId`]. The handshake runs in [`Engine::handle_bytes`](crate::Engine::handle_bytes)
//! (an inbound connection's node id is only known after act three); once established, each
//! decrypted message goes to the peer's shard exactly as [`Engine::handle_message`] would
//! send it, and [`Engine::connection_outputs`] encrypts what the shard queued for the peer.
//! A connection's state (handshake and cipher states) is IO state owned by whichever thread
//! serves that socket; it sits behind its own mutex, never shared with a peer's channels.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use lightning_core::bitcoin::hashes::{sha256, Hash, HashEngine};
use lightning_core::secp256k1::{PublicKey, SecretKey};
use lightning_core::transport::{
    InitiatorHandshake, ResponderAwaitingActThree, ResponderHandshake, Transport, ACT_ONE_LEN,
    ACT_THREE_LEN, ACT_TWO_LEN,
};
use parking_lot::{Mutex, RwLock};

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
    /// We sent act one to this node; waiting for act two.
    AwaitingActTwo(InitiatorHandshake, PublicKey),
    /// Waiting for act one.
    AwaitingActOne(ResponderHandshake),
    /// We sent act two; waiting for act three.
    AwaitingActThree(ResponderAwaitingActThree),
    /// Established with `node_id`.
    Established {
        /// The peer.
        node_id: PublicKey,
        /// The cipher states.
        transport: Transport,
    },
    /// Failed: the host must close it.
    Failed,
}

/// One connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) state: State,
    /// Handshake bytes received but not yet a whole act.
    pub(crate) act_buf: Vec<u8>,
    /// Decrypted messages a full inbox refused: sent first on the next call.
    pub(crate) pending: VecDeque<Vec<u8>>,
}

impl Connection {
    pub(crate) fn new(state: State) -> Self {
        Connection {
            state,
            act_buf: Vec::new(),
            pending: VecDeque::new(),
        }
    }

    /// The length of the act this connection waits for, if it waits for one.
    pub(crate) fn act_len(&self) -> Option<usize> {
        match self.state {
            State::AwaitingActOne(_) => Some(ACT_ONE_LEN),
            State::AwaitingActTwo(..) => Some(ACT_TWO_LEN),
            State::AwaitingActThree(_) => Some(ACT_THREE_LEN),
            _ => None,
        }
    }
}

/// Every open connection.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    pub(crate) map: RwLock<HashMap<ConnectionId, Arc<Mutex<Connection>>>>,
}

impl Connections {
    pub(crate) fn get(&self, conn: ConnectionId) -> Option<Arc<Mutex<Connection>>> {
        self.map.read().get(&conn).cloned()
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
