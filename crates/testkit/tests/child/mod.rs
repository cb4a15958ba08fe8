//! The engine in a child process (`lnshard-crash-child`, on the filesystem store), behind
//! the test network's `Hub` trait: requests and replies as hex lines on its stdin and
//! stdout (the protocol is documented in the child's source), and SIGKILL at points the
//! test arms. Shared by the crash tests (`crash.rs`, `crash_onchain.rs`); some of it is
//! used by one of them only.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::str::FromStr;
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use lnshard_testkit::{hub_secret, hub_seed, Hub};
use shard_engine::lightning_core::bitcoin::consensus::{deserialize, serialize};
use shard_engine::lightning_core::bitcoin::hashes::Hash;
use shard_engine::lightning_core::bitcoin::{BlockHash, Transaction, Txid};
use shard_engine::lightning_core::chain::MonitorEvent;
use shard_engine::lightning_core::channel::Channel;
use shard_engine::lightning_core::node::{ChannelDetails, Event, PaymentId, Route};
use shard_engine::lightning_core::persist::ChannelRecord;
use shard_engine::lightning_core::secp256k1::{PublicKey, Secp256k1};
use shard_engine::lightning_core::transport::Transport;
use shard_engine::lightning_core::types::{
    ChannelId, PaymentHash, PaymentPreimage, PaymentSecret, ShortChannelId,
};
use shard_engine::{ConnectionId, ConnectionWriter, EngineError, Placement};

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex from the child, as bytes.
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex from the child"))
        .collect()
}

fn arr32(s: &str) -> [u8; 32] {
    unhex(s).try_into().expect("32 bytes")
}

/// The child's state as this process sees it.
pub struct Inner {
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
    /// Channels the child reported closed (`E closed`).
    pub closed: Vec<String>,
    dead: bool,
    /// SIGKILL when this many peer messages have been handed to the child.
    pub kill_after: Option<u64>,
    /// SIGKILL when this many chain requests (`txs`, `block`) have been answered.
    pub kill_after_chain: Option<u64>,
    /// SIGKILL when this many `E broadcast` lines have been read.
    pub kill_after_broadcasts: Option<u64>,
    /// Before a kill, wait this long (µs), so it lands anywhere in the child's work.
    pub kill_delay_us: u64,
    /// Peer messages handed to the child (since the test last reset it).
    pub messages: u64,
    /// Chain requests answered (since the test last reset it).
    pub chain_requests: u64,
    /// Broadcasts read (since the test last reset it).
    pub broadcasts: u64,
    /// Message types exchanged since the start, per peer (printed on a failure).
    pub log: Vec<String>,
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
                    ["broadcast", tx] => {
                        self.events.push(Event::BroadcastTransaction {
                            tx: deserialize(&unhex(tx)).expect("tx"),
                        });
                        self.broadcasts += 1;
                        if self.kill_after_broadcasts == Some(self.broadcasts) {
                            self.kill();
                        }
                    }
                    ["onchain", id, peer, what @ ..] => {
                        let event = match what {
                            ["claim", txid, sat] => Some(MonitorEvent::ClaimConfirmed {
                                txid: Txid::from_str(txid).expect("txid"),
                                value_sat: sat.parse().expect("sat"),
                            }),
                            ["revoked", txid, index] => Some(MonitorEvent::RevokedCommitmentSeen {
                                txid: Txid::from_str(txid).expect("txid"),
                                index: index.parse().expect("index"),
                            }),
                            ["bump", tx] => Some(MonitorEvent::BumpNeeded {
                                tx: deserialize(&unhex(tx)).expect("tx"),
                                anchor: None,
                                deadline: 0,
                                feerate_per_kw: 0,
                                max_fee_sat: 0,
                            }),
                            ["fulfilled", htlc_id, preimage] => {
                                Some(MonitorEvent::OutboundHtlcFulfilled {
                                    htlc_id: htlc_id.parse().expect("htlc id"),
                                    preimage: PaymentPreimage(arr32(preimage)),
                                })
                            }
                            _ => None,
                        };
                        if let Some(event) = event {
                            self.events.push(Event::OnChain {
                                channel_id: ChannelId(arr32(id)),
                                counterparty_node_id: PublicKey::from_slice(&unhex(peer))
                                    .expect("peer"),
                                event,
                            });
                        }
                    }
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
            if self.dead {
                return;
            }
        }
    }

    /// Sends a request and waits for its reply; `None` once the child is dead (killed
    /// before it answered, too).
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
            let reply = self.absorb(&line);
            if self.dead {
                return None;
            }
            if let Some(reply) = reply {
                assert!(!reply.starts_with("err"), "child refused {line}: {reply}");
                return Some(reply);
            }
        }
    }

    /// A chain request (`txs`, `block`): counted, and the child killed after it if armed.
    fn chain_request(&mut self, line: &str) {
        if self.request(line).is_none() {
            return;
        }
        self.chain_requests += 1;
        if self.kill_after_chain == Some(self.chain_requests) {
            self.kill();
        }
    }

    /// SIGKILL (after the armed delay); what the child wrote before it died is read.
    pub fn kill(&mut self) {
        self.kill_after = None;
        self.kill_after_chain = None;
        self.kill_after_broadcasts = None;
        std::thread::sleep(Duration::from_micros(self.kill_delay_us));
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
        self.dead = true;
        // What it wrote before it died may still arrive.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
            self.absorb(&line);
        }
    }
}

/// The engine in a child process, behind the test network's `Hub` trait.
pub struct ChildHub {
    /// The child.
    pub inner: RefCell<Inner>,
    node_id: PublicKey,
    placement: Placement,
}

impl ChildHub {
    /// Starts the child on `dir` with `shards` shards and the child's optional `flags`.
    pub fn spawn(dir: &std::path::Path, shards: usize, flags: &[String]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lnshard-crash-child"))
            .arg(dir)
            .arg(shards.to_string())
            .arg(hex(&hub_secret().secret_bytes()))
            .arg(hex(&hub_seed()))
            // Checkpoints every few batches, so that kills land in them too.
            .arg((16 * 1024).to_string())
            .args(flags)
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
                kill_after: None,
                kill_after_chain: None,
                kill_after_broadcasts: None,
                kill_delay_us: 0,
                messages: 0,
                chain_requests: 0,
                broadcasts: 0,
                log: Vec::new(),
            }),
            node_id: PublicKey::from_secret_key(&Secp256k1::new(), &hub_secret()),
            placement: Placement::new(&hub_secret(), shards),
        }
    }

    /// Sends a request, waits for its reply (`None`: the child is dead).
    pub fn request(&self, line: &str) -> Option<String> {
        self.inner.borrow_mut().request(line)
    }

    /// Whether the child was killed.
    pub fn dead(&self) -> bool {
        self.inner.borrow().dead
    }

    /// Kills the child if it still runs, and reaps it: its directory lock is free after.
    pub fn stop(&mut self) {
        let inner = self.inner.get_mut();
        if !inner.dead {
            let _ = inner.child.kill();
            let _ = inner.child.wait();
            inner.dead = true;
        }
    }

    /// The engine's best block after its restore, and the lowest best height of the
    /// store's node records when the child started (`best`).
    pub fn best(&self) -> (u32, BlockHash, Option<u32>) {
        let reply = self.request("best").expect("a live child");
        let words: Vec<&str> = reply.split(' ').collect();
        let ["best", height, hash, stored] = words.as_slice() else {
            panic!("best: {reply}");
        };
        (
            height.parse().expect("height"),
            BlockHash::from_byte_array(arr32(hash)),
            stored.parse().ok(),
        )
    }

    /// The channels with something claimable on chain, once per balance (`None`: the
    /// child is dead).
    pub fn balances(&self) -> Option<Vec<ChannelId>> {
        let reply = self.request("balances")?;
        let list = reply.strip_prefix("balances").unwrap_or("").trim();
        Some(
            list.split(',')
                .filter(|s| !s.is_empty())
                .map(|s| ChannelId(arr32(s)))
                .collect(),
        )
    }

    /// The hub force-closes `id` (`None`: the child is dead).
    pub fn force_close(&self, id: ChannelId) -> Option<()> {
        self.request(&format!("force_close {}", hex(&id.0)))
            .map(|_| ())
    }

    /// Blocks from `height` up were disconnected; the best block is now the fork point
    /// `height - 1`, with hash `fork_hash`.
    pub fn disconnected(&self, height: u32, fork_hash: BlockHash) -> Option<()> {
        self.request(&format!(
            "disconnected {height} {}",
            hex(&fork_hash.to_byte_array())
        ))
        .map(|_| ())
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
        if !inner.dead && inner.kill_after == Some(inner.messages) {
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
        let line = format!("block {height} {}", hex(&hash.to_byte_array()));
        self.inner.get_mut().chain_request(&line);
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
        let line = format!("txs {height} {}", items.join(","));
        self.inner.get_mut().chain_request(&line);
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
