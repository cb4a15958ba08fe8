//! `attach_socket`: a shard owns its peers' sockets (shared-nothing IO). The host runs the
//! BOLT 8 handshake, then hands the socket itself to the peer's shard, which reads, decrypts,
//! handles, encrypts and writes on its own thread. Over a real Unix socket pair, and over an
//! in-memory stream that signals its readiness with its `SocketWaker`.

use lnshard_testkit as support;

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use shard_engine::lightning_core::node::{Event, NodeConfig, NodeCore, Output};
use shard_engine::lightning_core::secp256k1::{PublicKey, SecretKey};
use shard_engine::lightning_core::transport::{InitiatorHandshake, ResponderHandshake, Transport};
use shard_engine::lightning_core::wire::{Message, Ping};
use shard_engine::{ConnectionId, Engine, PeerSocket, SocketWaker};
use support::{engine_config, genesis, hub_secret, hub_seed, secret};

/// The far end's byte stream: a socket, or the far side of an in-memory stream.
trait FarIo {
    fn send(&mut self, bytes: &[u8]);
    /// What arrived within a short wait (`None`: the stream closed).
    fn recv(&mut self) -> Option<Vec<u8>>;
}

impl FarIo for UnixStream {
    fn send(&mut self, bytes: &[u8]) {
        self.write_all(bytes).expect("write to the engine's socket");
    }
    fn recv(&mut self) -> Option<Vec<u8>> {
        self.set_read_timeout(Some(Duration::from_millis(5)))
            .expect("timeout");
        let mut buf = vec![0; 65536];
        match self.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => Some(buf[..n].to_vec()),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                Some(Vec::new())
            }
            Err(_) => None,
        }
    }
}

/// A peer NodeCore at the far end of an encrypted stream.
struct Far<I: FarIo> {
    core: NodeCore,
    transport: Transport,
    io: I,
    received: Vec<Message>,
    closed: bool,
}

impl<I: FarIo> Far<I> {
    /// Moves traffic both ways until nothing moves for a while (or the stream closed).
    fn pump(&mut self, hub: PublicKey, engine: &Engine) {
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < Duration::from_millis(100) && !self.closed {
            let mut moved = false;
            let mut bytes = Vec::new();
            for o in self.core.drain_outputs() {
                match o {
                    Output::SendMessage { msg, .. } => {
                        bytes.extend(self.transport.encrypt(&msg.encode()).expect("encrypt"))
                    }
                    Output::Event(Event::FundingGenerationReady {
                        temporary_channel_id,
                        output_script,
                        channel_value_satoshis,
                        ..
                    }) => {
                        let tx = support::fake_funding_tx(output_script, channel_value_satoshis, 1);
                        self.core
                            .funding_transaction_generated(temporary_channel_id, hub, tx)
                            .expect("funding");
                    }
                    _ => {}
                }
            }
            if !bytes.is_empty() {
                moved = true;
                self.io.send(&bytes);
            }
            match self.io.recv() {
                None => self.closed = true,
                Some(b) if b.is_empty() => {}
                Some(b) => {
                    moved = true;
                    for m in self.transport.decrypt(&b).expect("decrypt") {
                        self.received.push(Message::decode(&m).expect("decodes"));
                        self.core.handle_message(hub, &m);
                    }
                }
            }
            if moved || !engine.is_idle() {
                quiet_since = Instant::now();
            }
        }
    }

    fn names(&self) -> Vec<&'static str> {
        self.received
            .iter()
            .map(|m| match m {
                Message::Init(_) => "init",
                Message::AcceptChannel(_) => "accept_channel",
                Message::FundingSigned(_) => "funding_signed",
                Message::Pong(_) => "pong",
                _ => "other",
            })
            .collect()
    }
}

/// The far peer dials: both handshakes run over `far_io`/`hub_io` by hand (as a host's
/// accept loop would), the hub's transport and the far peer's come back.
fn handshake(
    key: &SecretKey,
    hub: PublicKey,
    far_io: &mut impl FarIo,
    hub_read: &mut dyn FnMut(usize) -> Vec<u8>,
    hub_write: &mut dyn FnMut(&[u8]),
) -> (Transport, PublicKey, Transport) {
    let initiator = InitiatorHandshake::new(key, &hub, &secret(b"owned-socket-eph"));
    far_io.send(&initiator.act_one());
    let responder = ResponderHandshake::new(&hub_secret(), &secret(b"owned-socket-hub-eph"));
    let (waiting, act_two) = responder.process_act_one(&hub_read(50)).expect("act one");
    hub_write(&act_two);
    let mut got = Vec::new();
    while got.len() < 50 {
        got.extend(far_io.recv().expect("open"));
    }
    let (act_three, far_transport) = initiator.process_act_two(&got).expect("act two");
    far_io.send(&act_three);
    let (far_id, hub_transport) = waiting.process_act_three(&hub_read(66)).expect("act three");
    (far_transport, far_id, hub_transport)
}

fn read_exact_blocking(s: &mut UnixStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.read_exact(&mut buf).expect("read an act");
    buf
}

fn far_core(tag: &[u8]) -> (NodeCore, SecretKey) {
    let key = secret(tag);
    (
        NodeCore::new(key, [9; 32], NodeConfig::default(), 100, genesis()),
        key,
    )
}

/// A far peer over a Unix socket pair whose other end the engine's shard owns (attached as
/// connection `conn` after the handshake), pumped until the shard's `init` arrived; and where
/// the engine reports the socket closed.
fn unix_far(
    engine: &Engine,
    tag: &[u8],
    conn: ConnectionId,
) -> (Far<UnixStream>, mpsc::Receiver<ConnectionId>) {
    let hub = engine.node_id();
    let (core, key) = far_core(tag);
    let (mut far_io, mut hub_io) = UnixStream::pair().expect("socket pair");
    let (far_transport, far_id, hub_transport) = {
        let mut w = hub_io.try_clone().expect("clone");
        handshake(
            &key,
            hub,
            &mut far_io,
            &mut |n| read_exact_blocking(&mut hub_io, n),
            &mut |b| w.write_all(b).expect("act two"),
        )
    };
    assert_eq!(far_id, core.node_id());
    let (closed_tx, closed_rx) = mpsc::channel::<ConnectionId>();
    engine
        .attach_socket(
            conn,
            far_id,
            hub_transport,
            Box::new(hub_io),
            Some(Box::new(move |conn| {
                let _ = closed_tx.send(conn);
            })),
        )
        .expect("attach");
    let mut far = Far {
        core,
        transport: far_transport,
        io: far_io,
        received: Vec::new(),
        closed: false,
    };
    far.core.peer_connected(hub);
    far.pump(hub, engine);
    assert_eq!(far.names(), ["init"], "the shard wrote its init itself");
    (far, closed_rx)
}

#[test]
fn a_shard_owns_a_unix_socket_opens_a_channel_answers_pings_and_reports_the_close() {
    let engine = Engine::new(engine_config(2), hub_secret(), hub_seed(), 100, genesis());
    let hub = engine.node_id();
    let (mut far, closed_rx) = unix_far(&engine, b"owned-far", 11);
    far.core
        .create_channel(hub, 1_000_000, 0, 1, 2500)
        .expect("create_channel");
    far.pump(hub, &engine);
    assert_eq!(far.names(), ["init", "accept_channel", "funding_signed"]);
    assert!(engine
        .drain_events()
        .iter()
        .any(|e| matches!(e, Event::ChannelPending { .. })));
    // Several pings in one write (within the peer's pong budget): the shard splits the
    // frames and answers each.
    let ping = Message::Ping(Ping {
        num_pong_bytes: 8,
        ignored: vec![0; 4],
    });
    let mut bytes = Vec::new();
    for _ in 0..3 {
        bytes.extend(far.transport.encrypt(&ping.encode()).expect("encrypt"));
    }
    far.io.send(&bytes);
    far.pump(hub, &engine);
    assert_eq!(
        far.names().iter().filter(|n| **n == "pong").count(),
        3,
        "{:?}",
        far.names()
    );
    // The far end closes: the shard detaches the peer and tells the host.
    drop(far);
    assert_eq!(
        closed_rx.recv_timeout(Duration::from_secs(5)),
        Ok(11),
        "on_close ran"
    );
}

#[test]
fn garbage_from_the_peer_makes_the_shard_close_its_socket() {
    let engine = Engine::new(engine_config(1), hub_secret(), hub_seed(), 100, genesis());
    let (mut far, closed_rx) = unix_far(&engine, b"owned-garbage", 5);
    // 18 bytes that are no encrypted length: the shard cannot decrypt them.
    far.io.send(&[0xAB; 18]);
    assert_eq!(closed_rx.recv_timeout(Duration::from_secs(5)), Ok(5));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if far.io.recv().is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "the far end sees the close");
    }
}

/// An in-memory stream: what the far peer wrote and the shard has not read, and the
/// reverse. The shard learns of new bytes through its `SocketWaker`.
#[derive(Clone, Default)]
struct Pipe {
    to_hub: Arc<Mutex<VecDeque<u8>>>,
    to_far: Arc<Mutex<VecDeque<u8>>>,
    closed: Arc<Mutex<bool>>,
}

struct HubEnd(Pipe);

impl PeerSocket for HubEnd {
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut q = self.0.to_hub.lock().unwrap();
        if q.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(q.len());
        for (b, x) in buf.iter_mut().zip(q.drain(..n)) {
            *b = x;
        }
        Ok(n)
    }
    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.to_far.lock().unwrap().extend(buf);
        Ok(buf.len())
    }
    fn close(&mut self) {
        *self.0.closed.lock().unwrap() = true;
    }
    fn poll_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
}

struct FarEnd {
    pipe: Pipe,
    waker: Option<SocketWaker>,
}

impl FarIo for FarEnd {
    fn send(&mut self, bytes: &[u8]) {
        self.pipe.to_hub.lock().unwrap().extend(bytes);
        if let Some(w) = &self.waker {
            w.ready();
        }
    }
    fn recv(&mut self) -> Option<Vec<u8>> {
        let got: Vec<u8> = self.pipe.to_far.lock().unwrap().drain(..).collect();
        if got.is_empty() {
            if *self.pipe.closed.lock().unwrap() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Some(got)
    }
}

#[test]
fn an_in_memory_socket_signals_its_shard_with_its_waker() {
    let engine = Engine::new(engine_config(2), hub_secret(), hub_seed(), 100, genesis());
    let hub = engine.node_id();
    let (core, key) = far_core(b"owned-memory");
    let pipe = Pipe::default();
    let mut far_io = FarEnd {
        pipe: pipe.clone(),
        waker: None,
    };
    let (far_transport, far_id, hub_transport) = {
        let (r, w) = (pipe.clone(), pipe.clone());
        handshake(
            &key,
            hub,
            &mut far_io,
            &mut |n| r.to_hub.lock().unwrap().drain(..n).collect(),
            &mut |b| w.to_far.lock().unwrap().extend(b),
        )
    };
    let waker = engine
        .attach_socket(3, far_id, hub_transport, Box::new(HubEnd(pipe)), None)
        .expect("attach");
    far_io.waker = Some(waker);
    let mut far = Far {
        core,
        transport: far_transport,
        io: far_io,
        received: Vec::new(),
        closed: false,
    };
    far.core.peer_connected(hub);
    far.pump(hub, &engine);
    far.core
        .create_channel(hub, 1_000_000, 0, 1, 2500)
        .expect("create_channel");
    far.pump(hub, &engine);
    assert_eq!(far.names(), ["init", "accept_channel", "funding_signed"]);
}

/// The test network's concurrent payments and cross-shard forwards with every peer's socket
/// owned by its shard (the testkit's `Sockets` hub): funds and HTLCs conserve as over the
/// ciphertext entry.
#[test]
fn shard_owned_sockets_carry_concurrent_cross_shard_payments_and_conserve_funds() {
    use support::{Net, Sockets, Who};
    let peers = 24;
    let engine = Engine::new(engine_config(4), hub_secret(), hub_seed(), 100, genesis());
    let mut net = Net::new(Sockets::new(engine), peers);
    net.eager_claims = true;
    let specs: Vec<(usize, bool)> = (0..peers).flat_map(|i| [(i, false), (i, true)]).collect();
    net.open_channels(&specs);
    let initial = net.balances();
    let mut payments = 0;
    for round in 0..2 {
        for i in 0..peers {
            let j = (i + peers / 2 + round) % peers;
            let claim = (i + round) % 10 != 0;
            net.start_payment(
                Who::Peer(i),
                Who::Peer(j),
                Some(2 * i + round % 2),
                Some(2 * j + (round + 1) % 2),
                1_000_000 + (i as u64) * 1000,
                claim,
            );
            payments += 1;
        }
        net.run();
    }
    let errors = net.check(&initial);
    assert!(errors.is_empty(), "{errors:#?}");
    let succeeded = net
        .payments
        .values()
        .filter(|p| p.outcomes == [true])
        .count();
    assert!(succeeded >= payments * 8 / 10, "most payments succeeded");
    let stats = net.hub.engine().shard_stats();
    let cross: u64 = stats.iter().map(|s| s.forwards_out).sum();
    assert!(
        cross as usize >= payments / 2,
        "most forwards crossed shards"
    );
    let report = net
        .hub
        .into_engine()
        .shutdown(std::time::Duration::from_secs(10));
    assert!(report.parked.is_empty());
}
