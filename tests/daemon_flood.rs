//! A ping flood against `lnshard node` (issue 12, case 3): 8 connections send `ping`s asking
//! for 65,531-byte `pong`s as fast as their sockets take them while never reading (the worst
//! case: everything the node answers piles up in its write queues), 4 more do the same and
//! read, and meanwhile honest peers ping at an honest rate. The node's resident memory must
//! stay under 100 MB and every honest ping must be answered within 100 ms.
//!
//! The honest side is 40 connections pinging in turn, one ping every 100 ms in all (so each
//! pings every 4 s, within the node's per-peer pong budget: a single peer pinging every
//! 100 ms would itself be a flooder whose pings the node may ignore, as BOLT 1 allows).
//! Flooders whose connection the node closes dial again. The node's own liveness pings run
//! at their defaults: the honest peers answer them when their turn comes to read (every 4 s),
//! and a flooder that does not answer is disconnected after 45 s and dials again.
//!
//! The default run floods for 5 s (CI); `DAEMON_FLOOD_FULL=1` floods for 60 s:
//! `DAEMON_FLOOD_FULL=1 cargo test --release --test daemon_flood -- --nocapture`. The figures
//! (memory, honest latency, what the flooders sent and got) are printed.

mod daemon_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use daemon_support::peer::{key, msg_type, Recv, WirePeer};
use daemon_support::{rss_kib, DaemonProcess};
use lnshard::core::node::NodeConfig;
use lnshard::core::secp256k1::PublicKey;
use lnshard::core::transport::{InitiatorHandshake, Transport, ACT_TWO_LEN};
use lnshard::core::wire::{Init, Message, Ping};

const FLOODERS_NOT_READING: u32 = 8;
const FLOODERS_READING: u32 = 4;
const HONEST: u32 = 40;
const PONG_BYTES: u16 = 65_531;
/// An encrypted pong of [`PONG_BYTES`]: length (2 + 16 MAC), type, length, padding, MAC.
const PONG_FRAME: u64 = 18 + 4 + PONG_BYTES as u64 + 16;
const RSS_LIMIT_KIB: u64 = 100_000;
/// The bound on an honest ping's answer in the full run (release, as measured for issue 12).
const HONEST_LIMIT: Duration = Duration::from_millis(100);
/// The bound in the default run: CI's debug build on a small machine that the flooders share
/// with the node measures the machine more than the node.
const HONEST_LIMIT_DEFAULT: Duration = Duration::from_secs(2);

/// The CPU time `pid` has used (user and system), from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
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

fn ping(num_pong_bytes: u16) -> Vec<u8> {
    Message::Ping(Ping {
        num_pong_bytes,
        ignored: vec![],
    })
    .encode()
}

/// What one set of flooders did.
#[derive(Default)]
struct Stats {
    connections: AtomicU64,
    pings: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
}

/// The BOLT 8 handshake over `s`, or `None` when the node refuses or closes.
fn handshake(s: &mut TcpStream, node_id: &PublicKey, id: u32, n: u32) -> Option<Transport> {
    let handshake = InitiatorHandshake::new(&key(9, id), node_id, &key(10, n));
    s.write_all(&handshake.act_one()).ok()?;
    let mut act_two = [0u8; ACT_TWO_LEN];
    s.read_exact(&mut act_two).ok()?;
    let (act_three, transport) = handshake.process_act_two(&act_two).ok()?;
    s.write_all(&act_three).ok()?;
    Some(transport)
}

/// One flooding connection.
struct Flooder {
    id: u32,
    reads: bool,
    dials: u32,
    conn: Option<(TcpStream, Transport)>,
    /// Encrypted bytes not yet taken by the socket.
    pending: Vec<u8>,
    at: usize,
}

impl Flooder {
    /// Dials and handshakes (blocking, with timeouts), then sends `init` with the pings.
    fn dial(&mut self, listen: SocketAddr, node_id: &PublicKey, stats: &Stats) {
        self.dials += 1;
        let Ok(mut s) = TcpStream::connect_timeout(&listen, Duration::from_secs(2)) else {
            return;
        };
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
        let Some(mut transport) = handshake(&mut s, node_id, self.id, self.dials) else {
            return;
        };
        if s.set_nonblocking(true).is_err() {
            return;
        }
        stats.connections.fetch_add(1, Ordering::Relaxed);
        self.pending = transport.encrypt(&init()).expect("encrypt init");
        self.at = 0;
        self.conn = Some((s, transport));
    }

    /// Moves what the socket takes (and reads what came, for a reading flooder); whether
    /// anything moved.
    fn step(&mut self, buf: &mut [u8], stats: &Stats) -> bool {
        let Some((s, transport)) = self.conn.as_mut() else {
            return false;
        };
        let mut moved = false;
        let mut failed = false;
        if self.reads {
            loop {
                match s.read(buf) {
                    Ok(0) => {
                        failed = true;
                        break;
                    }
                    Ok(n) => {
                        stats.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                        moved = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
        }
        // A few batches at most, then the next connection's turn.
        let mut batches = 0;
        while !failed {
            if self.at == self.pending.len() {
                if batches == 8 {
                    break;
                }
                batches += 1;
                self.pending.clear();
                self.at = 0;
                let ping = ping(PONG_BYTES);
                for _ in 0..PINGS_PER_BATCH {
                    self.pending
                        .extend(transport.encrypt(&ping).expect("encrypt ping"));
                }
                stats.pings.fetch_add(PINGS_PER_BATCH, Ordering::Relaxed);
            }
            match s.write(&self.pending[self.at..]) {
                Ok(0) => failed = true,
                Ok(n) => {
                    self.at += n;
                    stats.bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
                    moved = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => failed = true,
            }
        }
        if failed {
            self.conn = None;
        }
        moved
    }
}

const PINGS_PER_BATCH: u64 = 100;

/// The flooders, all on this one thread (an attacker's CPU is its own: here it shares the
/// node's machine, and one thread leaves the node the other cores): non-blocking sockets
/// written as fast as they take bytes, and read (counted) by the reading flooders; a
/// connection the node closes is dialled again.
fn flood(
    listen: SocketAddr,
    node_id: PublicKey,
    until: Instant,
    not_reading: &Stats,
    reading: &Stats,
) {
    let mut flooders: Vec<Flooder> = (0..FLOODERS_NOT_READING + FLOODERS_READING)
        .map(|i| Flooder {
            id: 1000 + i,
            reads: i >= FLOODERS_NOT_READING,
            dials: 0,
            conn: None,
            pending: Vec::new(),
            at: 0,
        })
        .collect();
    let mut buf = vec![0u8; 256 * 1024];
    while Instant::now() < until {
        let mut moved = false;
        for f in &mut flooders {
            let stats = if f.reads { reading } else { not_reading };
            if f.conn.is_none() {
                f.dial(listen, &node_id, stats);
            }
            moved |= f.step(&mut buf, stats);
        }
        if !moved {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[test]
fn a_ping_flood_leaves_memory_bounded_and_honest_pings_answered() {
    let full = std::env::var_os("DAEMON_FLOOD_FULL").is_some();
    let secs = if full { 60 } else { 5 };
    // Every connection comes from 127.0.0.1: lift the per-address cap above them.
    let node = DaemonProcess::start(
        "flood",
        &["--max-inbound-per-ip", "200", "--tick-ms", "100"],
    );
    let pid = node.pid();
    let mut honest: Vec<WirePeer> = (0..HONEST)
        .map(|i| {
            let mut p = WirePeer::connect(node.listen, node.node_id, &key(11, i));
            assert!(
                matches!(p.recv(Duration::from_secs(10)), Recv::Message(m) if msg_type(&m) == Some(16)),
                "the node's init"
            );
            p.send(&init()).expect("init");
            p
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let rss_start = rss_kib(pid);
    let (cpu_start, flood_start) = (cpu_time(pid), Instant::now());

    let until = Instant::now() + Duration::from_secs(secs);
    let not_reading = Arc::new(Stats::default());
    let reading = Arc::new(Stats::default());
    let flooder = {
        let (listen, node_id) = (node.listen, node.node_id);
        let (not_reading, reading) = (not_reading.clone(), reading.clone());
        std::thread::spawn(move || flood(listen, node_id, until, &not_reading, &reading))
    };
    let rss_max = Arc::new(AtomicU64::new(rss_start));
    let sampler = {
        let rss_max = rss_max.clone();
        std::thread::spawn(move || {
            while Instant::now() < until {
                rss_max.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    // The honest side: one ping every 100 ms, the peers in turn.
    let limit = if full {
        HONEST_LIMIT
    } else {
        HONEST_LIMIT_DEFAULT
    };
    let mut latencies = Vec::new();
    let mut late = Vec::new();
    let mut next = Instant::now();
    let mut turn = 0usize;
    while Instant::now() < until {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        // No catching up after a slow answer: each honest peer's pings stay 4 s apart.
        next = (next + Duration::from_millis(100)).max(Instant::now());
        let at = turn % honest.len();
        let peer = &mut honest[at];
        turn += 1;
        let start = Instant::now();
        peer.send(&ping(16)).expect("the honest peer can write");
        match peer.recv_type(19, Duration::from_secs(5)) {
            Recv::Message(m) => assert_eq!(m.len(), 4 + 16),
            other => panic!(
                "honest ping {turn} not answered: {other:?}; the node's log:\n{}",
                node.log()
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }
        let took = start.elapsed();
        if took > limit {
            late.push((turn, took));
        }
        latencies.push(took);
    }
    flooder.join().expect("the flooders");
    sampler.join().expect("the sampler");
    let rss_max = rss_max.load(Ordering::Relaxed);
    let rss_end = rss_kib(pid);
    let node_cpu = cpu_time(pid).saturating_sub(cpu_start);
    let flood_took = flood_start.elapsed();
    latencies.sort();
    let worst = latencies.last().copied().unwrap_or_default();
    let p50 = latencies
        .get(latencies.len() / 2)
        .copied()
        .unwrap_or_default();
    let show = |name: &str, s: &Stats| {
        let received = s.bytes_received.load(Ordering::Relaxed);
        eprintln!(
            "flood ({secs} s), {name}: {} connections, {} pings sent ({} bytes), {} bytes received (about {} pongs of {PONG_BYTES} bytes)",
            s.connections.load(Ordering::Relaxed),
            s.pings.load(Ordering::Relaxed),
            s.bytes_sent.load(Ordering::Relaxed),
            received,
            received / PONG_FRAME,
        );
    };
    show(
        &format!("{FLOODERS_NOT_READING} flooders not reading"),
        &not_reading,
    );
    show(&format!("{FLOODERS_READING} flooders reading"), &reading);
    eprintln!(
        "flood ({secs} s): node CPU {node_cpu:.2?} in {flood_took:.2?}; node RSS start {rss_start} KiB, max {rss_max} KiB, end {rss_end} KiB; {} honest pings: p50 {p50:.2?}, worst {worst:.2?}, over {limit:?}: {late:?}",
        latencies.len()
    );
    assert!(
        rss_max < RSS_LIMIT_KIB,
        "the node's resident memory reached {rss_max} KiB (limit {RSS_LIMIT_KIB} KiB)"
    );
    assert!(
        late.is_empty(),
        "honest pings answered later than {limit:?}: {late:?}"
    );
    assert!(
        not_reading.pings.load(Ordering::Relaxed) > 0,
        "the flooders flooded"
    );
}
