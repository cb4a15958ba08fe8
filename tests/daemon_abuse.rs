//! Abuse of `lnshard node` over TCP while an honest peer keeps being served: connections
//! dropped at random points of the handshake, garbage before and after the handshake, a
//! maximum-size message, many idle connections held at once; then the node's open file
//! descriptors and memory (from `/proc/<pid>/`) return to their starting level.
//!
//! The default counts keep CI short (200 dropped handshakes, 500 idle connections).
//! `DAEMON_ABUSE_FULL=1` runs the full sizes of issue 8 (1,000 dropped handshakes, 10,000
//! idle connections); run it in release for speed:
//! `DAEMON_ABUSE_FULL=1 cargo test --release --test daemon_abuse -- --nocapture`.
//! The measured figures are printed (with `--nocapture`).

mod daemon_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use daemon_support::peer::{key, msg_type, Recv, WirePeer};
use daemon_support::{rss_kib, wait_for, DaemonProcess};
use lnshard::core::node::NodeConfig;
use lnshard::core::transport::{InitiatorHandshake, ACT_ONE_LEN, ACT_THREE_LEN, ACT_TWO_LEN};
use lnshard::core::wire::{Init, Message, Ping};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn init() -> Vec<u8> {
    let config = NodeConfig::default();
    Message::Init(Init::new(
        config.init_features(),
        Some(vec![config.chain_hash]),
        None,
    ))
    .encode()
}

fn honest_peer(node: &DaemonProcess, n: u32) -> WirePeer {
    let mut peer = WirePeer::connect(node.listen, node.node_id, &key(3, n));
    assert!(matches!(peer.recv(WAIT), Recv::Message(m) if msg_type(&m) == Some(16)));
    peer.send(&init()).expect("send init");
    peer
}

/// Honest peers taking turns: the node answers only a few pings per peer in each window of
/// its clock (BOLT 1 lets it ignore faster ones), and the test pings more often than that.
struct Honest {
    peers: Vec<WirePeer>,
    turn: usize,
}

fn honest(node: &DaemonProcess) -> Honest {
    Honest {
        peers: (1..=HONEST_PEERS).map(|n| honest_peer(node, n)).collect(),
        turn: 0,
    }
}

/// Honest peers: each pings at most every 8th check, within the node's pong budget.
const HONEST_PEERS: u32 = 8;

impl Honest {
    /// The next peer in turn.
    fn next(&mut self) -> &mut WirePeer {
        let at = self.turn % self.peers.len();
        self.turn += 1;
        &mut self.peers[at]
    }
}

/// The time a ping of `n` pong bytes takes to be answered on `peer`; panics, with the tail of
/// the node's log, when it is not answered.
fn served(node: &DaemonProcess, peer: &mut WirePeer, n: u16) -> Duration {
    let start = Instant::now();
    peer.send(
        &Message::Ping(Ping {
            num_pong_bytes: n,
            ignored: vec![],
        })
        .encode(),
    )
    .expect("the honest peer can write");
    match peer.recv_type(19, WAIT) {
        Recv::Message(m) => assert_eq!(m.len(), 4 + usize::from(n)),
        other => {
            let log = node.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "ping {n}: the peer is not served: {other:?}\nthe node's log, last lines:\n{}",
                tail.join("\n")
            )
        }
    }
    start.elapsed()
}

/// One connection dropped at a random point of the handshake (or sending garbage).
fn dropped_handshake(node: &DaemonProcess, rng: &mut Rng, i: u32) {
    let Ok(mut s) = TcpStream::connect(node.listen) else {
        return;
    };
    let _ = s.set_read_timeout(Some(WAIT));
    let handshake = InitiatorHandshake::new(&key(5, i), &node.node_id, &key(6, i));
    let act_one = handshake.act_one();
    match rng.below(7) {
        0 => {} // connect, then drop
        1 => {
            let cut = rng.below(ACT_ONE_LEN as u64) as usize;
            let _ = s.write_all(&act_one[..cut]);
        }
        2 => {
            let _ = s.write_all(&act_one); // drop before reading act two
        }
        3 => {
            let _ = s.write_all(&act_one);
            let mut act_two = [0u8; ACT_TWO_LEN];
            if s.read_exact(&mut act_two).is_ok() {
                if let Ok((act_three, _)) = handshake.process_act_two(&act_two) {
                    let cut = rng.below(ACT_THREE_LEN as u64) as usize;
                    let _ = s.write_all(&act_three[..cut]);
                }
            }
        }
        4 => {
            // Garbage instead of act one: the node closes.
            let n = ACT_ONE_LEN + rng.below(200) as usize;
            let _ = s.write_all(&rng.bytes(n));
            let mut b = [0u8; 64];
            let _ = s.read(&mut b);
        }
        5 => {
            // A whole handshake, then garbage (bad MACs): the shard closes the connection.
            let _ = s.write_all(&act_one);
            let mut act_two = [0u8; ACT_TWO_LEN];
            if s.read_exact(&mut act_two).is_ok() {
                if let Ok((act_three, _)) = handshake.process_act_two(&act_two) {
                    let _ = s.write_all(&act_three);
                    let n = 18 + rng.below(2000) as usize;
                    let _ = s.write_all(&rng.bytes(n));
                    let mut b = [0u8; 4096];
                    let deadline = Instant::now() + WAIT;
                    while Instant::now() < deadline {
                        match s.read(&mut b) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                }
            }
        }
        _ => {
            // A whole handshake, then drop without init.
            let _ = s.write_all(&act_one);
            let mut act_two = [0u8; ACT_TWO_LEN];
            if s.read_exact(&mut act_two).is_ok() {
                if let Ok((act_three, _)) = handshake.process_act_two(&act_two) {
                    let _ = s.write_all(&act_three);
                }
            }
        }
    }
}

#[test]
fn abuse_leaves_the_honest_peer_served_and_resources_back_at_start() {
    let full = std::env::var_os("DAEMON_ABUSE_FULL").is_some();
    let (drops, idle) = if full { (1_000, 10_000) } else { (200, 500) };
    // This process holds `idle` sockets too.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((1024, 1024));
    assert!(
        soft as usize > idle + 100,
        "the open file limit {soft} is too low for {idle} idle connections"
    );
    // One glibc malloc arena: the node's RSS then follows its heap. With the default (up to
    // 8 per core, one per thread that meets contention) a burst may open another arena in the
    // second round, and RSS grows by the pages freed into the first ones and kept there,
    // which says nothing about a leak (`benches/daemon_heap.sh` measures the live heap under
    // valgrind's massif with the defaults).
    let node = DaemonProcess::start_with_env(
        daemon_support::temp_dir("abuse"),
        // Every idle connection comes from 127.0.0.1 and stays in its handshake: lift the
        // per-address and handshaking caps above them (the slot limits have their own test).
        &[
            "--handshake-timeout-secs",
            "120",
            "--ping-interval-secs",
            "3600",
            "--max-handshaking",
            "20000",
            "--max-inbound-per-ip",
            "20000",
        ],
        &[("MALLOC_ARENA_MAX", "1")],
    );
    let pid = node.pid();
    let mut peer = honest(&node);
    served(&node, peer.next(), 1);
    // Warm up the node's allocator and runtime with a few full connections first.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..20 {
        dropped_handshake(&node, &mut rng, 1_000_000 + i);
    }
    std::thread::sleep(Duration::from_millis(500));
    let (fds_start, rss_start) = (open_fds(pid), rss_kib(pid));

    // 1. Connections dropped at random points of the handshake, and garbage senders.
    let start = Instant::now();
    let mut worst = Duration::ZERO;
    for i in 0..drops {
        dropped_handshake(&node, &mut rng, i);
        if i % 50 == 0 {
            worst = worst.max(served(&node, peer.next(), 2));
        }
    }
    let drops_took = start.elapsed();

    // 2. A maximum-size message (65535 bytes: an unknown odd type and its payload).
    let mut big = vec![0x80, 0x03];
    big.extend(rng.bytes(65_535 - 2));
    // An identity of its own: with an honest peer's key, its connection would replace that
    // peer's (as a reconnection does), and dropping it would leave the peer disconnected.
    let mut big_sender = WirePeer::connect(node.listen, node.node_id, &key(4, 1));
    let _ = big_sender.recv(WAIT);
    big_sender.send(&init()).expect("init");
    big_sender.send(&big).expect("the maximum-size message");
    served(&node, &mut big_sender, 3);
    worst = worst.max(served(&node, peer.next(), 3));
    drop(big_sender);

    // 3. Idle connections held at once (no byte sent), twice: the second round shows whether
    // memory freed after the first is reused (no per-connection leak).
    let mut rounds = Vec::new();
    for _ in 0..2 {
        let start = Instant::now();
        let mut held = Vec::with_capacity(idle);
        for _ in 0..idle {
            match TcpStream::connect(node.listen) {
                Ok(s) => held.push(s),
                Err(e) => panic!("connection {} of {idle} refused: {e}", held.len()),
            }
        }
        let open = wait_for(120, "the node to hold every idle connection", || {
            let n = node.call("getinfo", json!({}))["open_connections"].as_u64()?;
            (n as usize >= idle).then_some(n)
        });
        let held_took = start.elapsed();
        let (fds_held, rss_held) = (open_fds(pid), rss_kib(pid));
        let ping_while_held = served(&node, peer.next(), 4);
        worst = worst.max(ping_while_held);
        drop(held);
        // 4. Back to the start.
        let fds_end = wait_for(60, "the node's descriptors back at the start", || {
            let n = open_fds(pid);
            (n <= fds_start).then_some(n)
        });
        std::thread::sleep(Duration::from_millis(500));
        let rss_end = rss_kib(pid);
        rounds.push((
            open,
            held_took,
            ping_while_held,
            fds_held,
            fds_end,
            rss_held,
            rss_end,
        ));
    }
    // Every honest peer is still connected and served (the node closed none of them).
    for honest in &mut peer.peers {
        served(&node, honest, 5);
    }
    for (i, (open, took, ping, fds_held, fds_end, rss_held, rss_end)) in rounds.iter().enumerate() {
        eprintln!(
            "abuse ({}), idle round {}: {idle} idle connections held in {took:.2?} (node reported {open} open); honest ping while held {ping:.2?}; fds start {fds_start}, held {fds_held}, end {fds_end}; RSS start {rss_start} KiB, held {rss_held} KiB, end {rss_end} KiB",
            if full { "full" } else { "default" },
            i + 1
        );
        assert!(
            *fds_held >= fds_start + idle,
            "the idle connections were held"
        );
        assert!(*fds_end <= fds_start, "descriptors back at the start");
    }
    eprintln!(
        "abuse: {drops} dropped/garbage handshakes in {drops_took:.2?}; worst honest ping {worst:.2?}"
    );
    // Memory: glibc keeps most freed pages in its arenas (the connection table is shrunk and
    // given back, the tasks' small blocks mostly are not), so RSS after a round lies between
    // the start and that round's high mark, and where exactly varies from run to run. A leak
    // would grow memory past the first round's high mark in the second round: allow 4 MiB.
    let (first_held, second_held, second_end) = (rounds[0].5, rounds[1].5, rounds[1].6);
    assert!(
        second_held <= first_held + 4 * 1024 && second_end <= first_held + 4 * 1024,
        "RSS grew past the first round's high mark in the second round (a leak): start {rss_start} KiB, round 1 held {first_held} KiB, round 2 held {second_held} KiB, after {second_end} KiB"
    );
}

/// Opens `n` TCP connections to `to` from the loopback address `from` (sending nothing);
/// those the node resets are closed on our side later, when written or read.
fn idle_from(to: std::net::SocketAddr, from: [u8; 4], n: usize) -> Vec<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
            socket
                .bind(std::net::SocketAddr::from((from, 0)))
                .expect("bind a loopback address");
            if let Ok(s) = socket.connect(to).await {
                held.push(s.into_std().expect("a std stream"));
            }
        }
        held
    })
}

fn open_connections(node: &DaemonProcess) -> u64 {
    node.call("getinfo", json!({}))["open_connections"]
        .as_u64()
        .unwrap_or(0)
}

/// Issue 12, case 5: idle connections from one address, or from many, cannot take the room
/// of other peers or of the node's own dials.
#[test]
fn idle_connections_leave_room_for_peers_and_our_own_dials() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let other = DaemonProcess::start("slots-other", &[]);
    let node = DaemonProcess::start(
        "slots",
        &[
            "--max-handshaking",
            "64",
            "--max-inbound-peers",
            "3",
            "--handshake-timeout-secs",
            "120",
            "--ping-interval-secs",
            "3600",
        ],
    );
    // 1. 300 idle connections from one address: the node keeps 16 (the default cap).
    let one_address = idle_from(node.listen, [127, 0, 0, 2], 300);
    // (A connection the node resets at once may fail already in `connect`.)
    assert!(one_address.len() > 200, "{} connected", one_address.len());
    wait_for(20, "16 connections from 127.0.0.2 held", || {
        (open_connections(&node) == 16).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(open_connections(&node), 16, "one address holds 16 at most");

    // 2. 16 idle connections from each of 8 more addresses: 144 in all for 64 handshaking
    // slots; the oldest handshakes are closed to make room.
    let mut many = Vec::new();
    for i in 1..=8 {
        many.extend(idle_from(node.listen, [127, 0, 1, i], 16));
    }
    wait_for(20, "64 handshaking connections held", || {
        (open_connections(&node) == 64).then_some(())
    });

    // 3. An honest peer still gets in and is served.
    let mut peer = honest_peer(&node, 1);
    served(&node, &mut peer, 1);

    // 4. The node's own dial: outbound slots are apart from every inbound one.
    let r = node.call(
        "connect",
        json!({"node_id": other.node_id.to_string(), "address": other.listen.to_string()}),
    );
    assert_eq!(r["connected"], true);

    // 5. Peers without a channel take general slots (3 here): the honest one and two more;
    // a fourth is let through the handshake, then dropped.
    let mut second = honest_peer(&node, 2);
    let _third = honest_peer(&node, 3);
    served(&node, &mut second, 2);
    let mut fourth = WirePeer::connect(node.listen, node.node_id, &key(3, 4));
    assert_eq!(
        fourth.recv(WAIT),
        Recv::Closed,
        "no general slot for a fourth"
    );
    served(&node, &mut peer, 3);
    eprintln!(
        "slots: open connections at the end {}",
        open_connections(&node)
    );
    drop((one_address, many));
}
