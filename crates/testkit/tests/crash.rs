//! The crash test: the engine runs as a child process (`lnshard-crash-child`) on the
//! filesystem store; this process plays its peers (plain NodeCores) over hex lines on the
//! child's stdin and stdout, each peer on a BOLT 8 connection (the test network's links: the
//! handshake runs here, the hub's end of it is handed to the child, and every byte between
//! them is ciphertext, decrypted and encrypted on the child's shards). A stream of payments between peers, forwarded by the engine
//! (within a shard and across shards), is cut by SIGKILL at a seeded random point; the engine
//! restarts on the same data directory (with a seeded shard count), the peers reconnect
//! (channel_reestablish), and the stream goes on. At the end: every payment ended exactly
//! once at its payer and was claimed at most once (exactly once when sent), no channel
//! closed (a peer shown an old commitment by the restarted engine would fail the channel),
//! both sides of every channel agree, no HTLC is left, and every balance reconciles.
//!
//! `CRASH_KILLS` kill points (3 by default; the issue asks for at least 50:
//! `CRASH_KILLS=50 cargo test --release -p shard-engine --test crash -- --nocapture`),
//! `CRASH_SEED` the seed.

use lnshard_testkit as support;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use shard_engine::lightning_core::bitcoin::consensus::{deserialize, serialize};
use shard_engine::lightning_core::bitcoin::hashes::Hash;
use shard_engine::lightning_core::bitcoin::{BlockHash, Transaction};
use shard_engine::lightning_core::channel::Channel;
use shard_engine::lightning_core::node::{ChannelDetails, Event, PaymentId, Route};
use shard_engine::lightning_core::persist::ChannelRecord;
use shard_engine::lightning_core::secp256k1::{PublicKey, Secp256k1};
use shard_engine::lightning_core::transport::Transport;
use shard_engine::lightning_core::types::{
    ChannelId, PaymentHash, PaymentPreimage, PaymentSecret, ShortChannelId,
};
use shard_engine::sim::SimRng;
use shard_engine::{ConnectionId, ConnectionWriter, EngineError, Placement};
use support::{hub_secret, hub_seed, Hub, Net, Who};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex from the child"))
        .collect()
}

fn arr32(s: &str) -> [u8; 32] {
    unhex(s).try_into().expect("32 bytes")
}

struct Inner {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// Each attached connection's peer and writer (the peer's link).
    writers: HashMap<ConnectionId, (PublicKey, Box<dyn ConnectionWriter>)>,
    /// `P`, `X` and `E` lines absorbed so far.
    received: u64,
    /// `received` when `is_idle` last asked.
    idle_mark: u64,
    events: Vec<Event>,
    closed: Vec<String>,
    dead: bool,
    /// SIGKILL when this many peer messages have been handed to the child.
    kill_after: Option<u64>,
    /// Then wait this long first (µs), so the kill lands anywhere in the child's work.
    kill_delay_us: u64,
    messages: u64,
    /// Message types exchanged since the start, per peer (printed on a failure).
    log: Vec<String>,
}

impl Inner {
    /// Sorts one asynchronous line; returns the payload of a reply line.
    fn absorb(&mut self, line: &str) -> Option<String> {
        let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
        match kind {
            "R" => return Some(rest.to_owned()),
            "P" => {
                self.received += 1;
                let (conn, bytes) = rest.split_once(' ').expect("P line");
                let conn: ConnectionId = conn.parse().expect("connection id");
                let b = unhex(bytes);
                if let Some((peer, writer)) = self.writers.get_mut(&conn) {
                    self.log.push(format!(
                        "{} -> {} bytes on {conn}",
                        &hex(&peer.serialize())[..8],
                        b.len()
                    ));
                    if !writer.write(b) {
                        writer.close();
                    }
                }
            }
            "X" => {
                self.received += 1;
                let conn: ConnectionId = rest.parse().expect("connection id");
                if let Some((_, mut writer)) = self.writers.remove(&conn) {
                    writer.close();
                }
            }
            "E" => {
                self.received += 1;
                let words: Vec<&str> = rest.split(' ').collect();
                match words.as_slice() {
                    ["ready", id, peer, scid] => self.events.push(Event::ChannelReady {
                        channel_id: ChannelId(arr32(id)),
                        counterparty_node_id: PublicKey::from_slice(&unhex(peer)).expect("peer"),
                        short_channel_id: scid.parse().ok().map(ShortChannelId),
                        alias: None,
                        user_channel_id: 0,
                    }),
                    ["forwarded", fee] => self.events.push(Event::PaymentForwarded {
                        prev_channel_id: ChannelId([0; 32]),
                        next_channel_id: ChannelId([0; 32]),
                        fee_earned_msat: fee.parse().expect("fee"),
                        outbound_amount_msat: 0,
                    }),
                    ["broadcast", tx] => self.events.push(Event::BroadcastTransaction {
                        tx: deserialize(&unhex(tx)).expect("tx"),
                    }),
                    ["closed", id] => self.closed.push((*id).to_owned()),
                    _ => {}
                }
            }
            _ => panic!("unexpected line from the child: {line}"),
        }
        None
    }

    fn poll(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.absorb(&line);
        }
    }

    /// Sends a request and waits for its reply; `None` once the child is dead.
    fn request(&mut self, line: &str) -> Option<String> {
        if self.dead {
            return None;
        }
        writeln!(self.stdin, "{line}").expect("child stdin");
        self.stdin.flush().expect("child stdin");
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .expect("the child answers");
            if let Some(reply) = self.absorb(&line) {
                assert!(!reply.starts_with("err"), "child refused {line}: {reply}");
                return Some(reply);
            }
        }
    }

    fn kill(&mut self) {
        std::thread::sleep(Duration::from_micros(self.kill_delay_us));
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
        self.dead = true;
        // What it wrote before it died may still arrive.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.absorb(&line);
        }
    }
}

/// The engine in a child process, behind the test network's `Hub` trait.
struct ChildHub {
    inner: RefCell<Inner>,
    node_id: PublicKey,
    placement: Placement,
}

impl ChildHub {
    fn spawn(dir: &std::path::Path, shards: usize, kill_after: Option<u64>, delay: u64) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lnshard-crash-child"))
            .arg(dir)
            .arg(shards.to_string())
            .arg(hex(&hub_secret().secret_bytes()))
            .arg(hex(&hub_seed()))
            // Checkpoints every few batches, so that kills land in them too.
            .arg((16 * 1024).to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the child");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    // A line cut short by the kill is a torn write: never delivered.
                    Ok(n) if n > 0 && line.ends_with('\n') => {
                        line.pop();
                        if tx.send(line).is_err() {
                            return;
                        }
                    }
                    _ => return,
                }
            }
        });
        ChildHub {
            inner: RefCell::new(Inner {
                child,
                stdin,
                lines,
                writers: HashMap::new(),
                received: 0,
                idle_mark: 0,
                events: Vec::new(),
                closed: Vec::new(),
                dead: false,
                kill_after,
                kill_delay_us: delay,
                messages: 0,
                log: Vec::new(),
            }),
            node_id: PublicKey::from_secret_key(&Secp256k1::new(), &hub_secret()),
            placement: Placement::new(&hub_secret(), shards),
        }
    }

    fn request(&self, line: &str) -> Option<String> {
        self.inner.borrow_mut().request(line)
    }

    fn dead(&self) -> bool {
        self.inner.borrow().dead
    }
}

impl ChildHub {
    /// Kills the child if it still runs, and reaps it: its directory lock is free after.
    fn stop(&mut self) {
        let inner = self.inner.get_mut();
        if !inner.dead {
            let _ = inner.child.kill();
            let _ = inner.child.wait();
            inner.dead = true;
        }
    }
}

impl Drop for ChildHub {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Hub for ChildHub {
    fn node_id(&self) -> PublicKey {
        self.node_id
    }
    fn shard_of(&self, peer: &PublicKey) -> usize {
        self.placement.shard_of(peer)
    }
    fn attach_connection(
        &mut self,
        conn: ConnectionId,
        peer: PublicKey,
        transport: Transport,
        writer: Box<dyn ConnectionWriter>,
    ) -> Result<(), EngineError> {
        let inner = self.inner.get_mut();
        let l = format!("{} connect {conn}", &hex(&peer.serialize())[..8]);
        inner.log.push(l);
        if inner.dead {
            return Ok(());
        }
        // The hub's end, right after the handshake: both nonces at 0, one chaining key.
        let (e, d) = (transport.encryptor(), transport.decryptor());
        assert_eq!((e.nonce(), d.nonce()), (0, 0), "a fresh session");
        inner.writers.insert(conn, (peer, writer));
        inner.request(&format!(
            "attach {conn} {} {} {} {}",
            hex(&peer.serialize()),
            hex(e.chaining_key()),
            hex(e.key()),
            hex(d.key())
        ));
        Ok(())
    }
    fn detach_connection(
        &mut self,
        conn: ConnectionId,
        peer: PublicKey,
    ) -> Result<(), EngineError> {
        self.request(&format!("detach {conn} {}", hex(&peer.serialize())));
        Ok(())
    }
    fn connection_ciphertext(
        &mut self,
        conn: ConnectionId,
        peer: PublicKey,
        bytes: Vec<u8>,
    ) -> Result<(), EngineError> {
        let inner = self.inner.get_mut();
        if inner.dead {
            return Ok(());
        }
        inner.log.push(format!(
            "{} <- {} bytes on {conn}",
            &hex(&peer.serialize())[..8],
            bytes.len()
        ));
        inner.request(&format!(
            "ct {conn} {} {}",
            hex(&peer.serialize()),
            hex(&bytes)
        ));
        inner.messages += 1;
        if inner.kill_after == Some(inner.messages) {
            inner.kill();
        }
        Ok(())
    }
    fn pump(&mut self) -> bool {
        if self.is_idle() {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
        true
    }
    fn is_idle(&self) -> bool {
        let mut inner = self.inner.borrow_mut();
        let reply = inner.request("idle");
        // Outputs that arrived since the last ask (written to the peers' links, maybe after
        // the network last read them) are work still to do.
        let quiet = inner.received == inner.idle_mark;
        inner.idle_mark = inner.received;
        match reply {
            None => quiet,
            Some(r) => r == "idle 1" && quiet,
        }
    }
    fn take_events(&mut self) -> Vec<Event> {
        let inner = self.inner.get_mut();
        inner.poll();
        std::mem::take(&mut inner.events)
    }
    fn create_channel(&mut self, _: PublicKey, _: u64, _: u64) -> Result<ChannelId, EngineError> {
        unreachable!("the peers open the channels")
    }
    fn funding_transaction_generated(
        &mut self,
        _: ChannelId,
        _: Transaction,
    ) -> Result<(), EngineError> {
        unreachable!("the peers fund the channels")
    }
    fn send_payment(
        &mut self,
        _: &Route,
        _: PaymentHash,
        _: PaymentSecret,
        _: PaymentId,
    ) -> Result<(), EngineError> {
        unreachable!("the engine only forwards in this test")
    }
    fn create_inbound_payment(
        &mut self,
        _: PaymentPreimage,
        _: Option<u64>,
    ) -> Result<(PaymentHash, PaymentSecret), EngineError> {
        unreachable!("the engine only forwards in this test")
    }
    fn claim_funds(&mut self, _: PaymentPreimage) -> Result<(), EngineError> {
        unreachable!("the engine only forwards in this test")
    }
    fn fail_htlc_backwards(&mut self, _: PaymentHash) -> Result<(), EngineError> {
        unreachable!("the engine only forwards in this test")
    }
    fn best_block_updated(&mut self, height: u32, hash: BlockHash) -> Result<(), EngineError> {
        self.request(&format!("block {height} {}", hex(&hash.to_byte_array())));
        Ok(())
    }
    fn transactions_confirmed(
        &mut self,
        height: u32,
        txs: &[(u32, Transaction)],
    ) -> Result<(), EngineError> {
        let items: Vec<String> = txs
            .iter()
            .map(|(i, tx)| format!("{i}:{}", hex(&serialize(tx))))
            .collect();
        self.request(&format!("txs {height} {}", items.join(",")));
        Ok(())
    }
    fn list_channels(&mut self) -> Vec<ChannelDetails> {
        let reply = self.request("channels").expect("a live child");
        let list = reply
            .strip_prefix("channels")
            .unwrap_or("")
            .trim()
            .to_owned();
        let mut out = Vec::new();
        for item in list.split(',').filter(|s| !s.is_empty()) {
            let (peer, id) = item.split_once(':').expect("peer:channel");
            let peer = PublicKey::from_slice(&unhex(peer)).expect("peer");
            let id = ChannelId(arr32(id));
            let c = self.channel(peer, id).expect("listed channel");
            out.push(ChannelDetails {
                channel_id: id,
                counterparty_node_id: peer,
                user_channel_id: 0,
                channel_value_satoshis: c.funding_satoshis(),
                is_outbound: c.is_funder(),
                phase: c.phase(),
                is_usable: false,
                short_channel_id: c.short_channel_id(),
                balances: c.balances(),
            });
        }
        out
    }
    fn channel(&mut self, peer: PublicKey, id: ChannelId) -> Option<Channel> {
        let reply = self
            .request(&format!(
                "channel {} {}",
                hex(&peer.serialize()),
                hex(&id.0)
            ))
            .expect("a live child");
        let bytes = reply.strip_prefix("channel ")?;
        if bytes == "-" {
            return None;
        }
        // The record holds the channel's key index; its keys come back from the hub's seed.
        let record = ChannelRecord::from_bytes(&unhex(bytes)).expect("channel record");
        Some(Channel::from_record(record.channel, &hub_seed(), &peer))
    }
    fn choose(&mut self, _n: usize) -> Option<usize> {
        None
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

const PEERS: usize = 8;

#[test]
fn sigkill_at_seeded_points_loses_no_htlc_pays_nothing_twice_and_balances_reconcile() {
    let kills = env("CRASH_KILLS", 3);
    let seed = env("CRASH_SEED", 1);
    let dir = tempfile::tempdir().expect("data directory");
    let mut rng = SimRng::new(seed);
    let mut shards = 2;
    let hub = ChildHub::spawn(dir.path(), shards, None, 0);
    let mut net = Net::new(hub, PEERS);
    net.hub_events_lossy = true;
    net.open_channels(&(0..PEERS).map(|i| (i, false)).collect::<Vec<_>>());
    let initial = net.balances();
    let mut killed_at = Vec::new();
    for k in 0..kills {
        // A stream: payments between random peers through the engine; the engine is killed
        // after a seeded number of peer messages (plus a seeded delay).
        let kill_after = 1 + rng.below(40) as u64;
        let delay = rng.below(3000) as u64;
        net.hub.inner.get_mut().kill_after = Some(kill_after);
        net.hub.inner.get_mut().kill_delay_us = delay;
        net.hub.inner.get_mut().messages = 0;
        net.eager_claims = true;
        for _ in 0..6 {
            let a = rng.below(PEERS);
            let b = rng.below(PEERS);
            if a == b {
                continue;
            }
            let amount = 1_000_000 + rng.below(5_000_000) as u64;
            let claim = !rng.chance(1, 6);
            net.start_payment(Who::Peer(a), Who::Peer(b), Some(a), Some(b), amount, claim);
        }
        net.run();
        let died = net.hub.dead();
        if died {
            killed_at.push((k, kill_after, delay));
        }
        // Restart (dead or not: a live child is killed here, at quiescence) with a seeded
        // shard count on the same directory; the peers reconnect.
        net.cut_all_for_crash();
        shards = 1 + rng.below(4);
        // The old engine must be gone before the new one opens the directory: it holds the
        // directory's lock (before the lock, the two wrote the same store for a moment).
        net.hub.stop();
        net.hub = ChildHub::spawn(dir.path(), shards, None, 0);
        net.reconnect_all();
        net.run();
        net.settle();
        let closed = std::mem::take(&mut net.hub.inner.get_mut().closed);
        assert!(closed.is_empty(), "kill {k}: the engine closed {closed:?}");
        for (i, p) in net.peers.iter().enumerate() {
            let closed = p
                .events
                .iter()
                .any(|e| matches!(e, Event::ChannelClosed { .. }));
            assert!(
                !closed,
                "kill {k}: peer {i} closed a channel (old state shown?)"
            );
        }
    }
    let errors = net.check(&initial);
    if !errors.is_empty() {
        let hub_id = net.hub.node_id();
        for c in net.channels.clone() {
            let peer = net.peer_id(c.peer);
            if let Some(h) = net.hub.channel(peer, c.channel_id) {
                if !h.local_commit().spec.htlcs.is_empty() {
                    let short = hex(&peer.serialize())[..8].to_owned();
                    let log: Vec<_> = net
                        .hub
                        .inner
                        .get_mut()
                        .log
                        .iter()
                        .filter(|l| l.starts_with(&short))
                        .cloned()
                        .collect();
                    eprintln!("messages with this peer since the last restart: {log:?}");

                    eprintln!("hub side of {}: {:#?}", c.channel_id, h);
                    let p = net.peers[c.peer].core.channel(&hub_id, &c.channel_id);
                    eprintln!("peer side: {p:#?}");
                }
            }
        }
        // The child holds the directory's lock while it runs.
        net.hub.stop();
        let store = shard_engine::store::FsStore::open(dir.path());
        if let Ok(store) = store {
            use shard_engine::store::Store;
            for key in store.list("nodes").unwrap_or_default() {
                if let Ok(Some(b)) = store.read("nodes", &key) {
                    let r = shard_engine::lightning_core::persist::NodeRecord::from_bytes(&b);
                    eprintln!("node record {key}: {r:?}");
                }
            }
        }
    }
    assert!(errors.is_empty(), "seed {seed}: {errors:#?}");
    let sent = net
        .payments
        .values()
        .filter(|p| p.outcomes == [true])
        .count();
    let failed = net
        .payments
        .values()
        .filter(|p| p.outcomes == [false])
        .count();
    let wal = std::fs::metadata(dir.path().join("wal.log")).map_or(0, |m| m.len());
    eprintln!(
        "seed {seed}: {kills} kill points, {} landed mid-stream, {} payments: {sent} sent, {failed} failed; wal.log {wal} bytes now",
        killed_at.len(),
        net.payments.len()
    );
    assert!(sent > 0, "payments went through");
}
