//! A test-side peer speaking BOLT 8 over a std `TcpStream` with lightning-core's Noise
//! transport: raw messages in and out, for conformance and abuse tests.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use lnshard::core::secp256k1::{PublicKey, SecretKey};
use lnshard::core::transport::{InitiatorHandshake, Transport, ACT_TWO_LEN};

/// What a read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Recv {
    /// A decrypted message (type and payload).
    Message(Vec<u8>),
    /// The node closed the connection.
    Closed,
    /// Nothing within the time given.
    Timeout,
}

/// An established BOLT 8 connection to a node.
pub struct WirePeer {
    /// The socket.
    pub stream: TcpStream,
    transport: Transport,
    buf: Vec<u8>,
    pending: std::collections::VecDeque<Vec<u8>>,
}

/// A key from a tag (deterministic test identities).
pub fn key(tag: u8, n: u32) -> SecretKey {
    let mut bytes = [tag; 32];
    bytes[28..].copy_from_slice(&n.to_be_bytes());
    bytes[0] = 1;
    SecretKey::from_slice(&bytes).expect("a valid key")
}

impl WirePeer {
    /// Dials `node_id` at `addr` as `our_secret` and completes the handshake.
    pub fn connect(addr: SocketAddr, node_id: PublicKey, our_secret: &SecretKey) -> WirePeer {
        let mut stream = TcpStream::connect(addr).expect("TCP connect");
        stream.set_nodelay(true).expect("nodelay");
        let ephemeral = key(0xee, rand_u32());
        let handshake = InitiatorHandshake::new(our_secret, &node_id, &ephemeral);
        stream.write_all(&handshake.act_one()).expect("act one");
        let mut act_two = [0u8; ACT_TWO_LEN];
        stream.read_exact(&mut act_two).expect("act two");
        let (act_three, transport) = handshake.process_act_two(&act_two).expect("valid act two");
        stream.write_all(&act_three).expect("act three");
        WirePeer {
            stream,
            transport,
            buf: vec![0; 65_536 + 64],
            pending: Default::default(),
        }
    }

    /// Sends one message (type and payload).
    pub fn send(&mut self, message: &[u8]) -> std::io::Result<()> {
        let bytes = self.transport.encrypt(message).expect("encrypt");
        self.stream.write_all(&bytes)
    }

    /// The next message, waiting up to `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Recv {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.pending.pop_front() {
                return Recv::Message(m);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Recv::Timeout;
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("read timeout");
            match self.stream.read(&mut self.buf) {
                Ok(0) => return Recv::Closed,
                Ok(n) => {
                    let messages = self
                        .transport
                        .decrypt(&self.buf[..n])
                        .expect("the node's bytes decrypt");
                    self.pending.extend(messages);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Recv::Timeout
                }
                Err(_) => return Recv::Closed,
            }
        }
    }

    /// The next message of type `t`, skipping others (pings of the node are answered).
    pub fn recv_type(&mut self, t: u16, timeout: Duration) -> Recv {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Recv::Message(m) if msg_type(&m) == Some(t) => return Recv::Message(m),
                Recv::Message(m) if msg_type(&m) == Some(18) => {
                    let _ = self.send(&[0, 19, 0, 0]);
                }
                Recv::Message(_) => {}
                other => return other,
            }
        }
    }
}

/// The type of a message.
pub fn msg_type(m: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*m.first()?, *m.get(1)?]))
}

fn rand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    nanos ^ std::process::id().rotate_left(16)
}
