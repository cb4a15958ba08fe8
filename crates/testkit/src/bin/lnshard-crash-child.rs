//! The engine as a child process on a filesystem store, for the crash test
//! (`tests/crash.rs`): the parent plays the peers and kills this process with SIGKILL at
//! random points. Not a tool for anything else.
//!
//! `lnshard-crash-child <data dir> <shards> <node secret hex> <seed hex> <checkpoint bytes>
//! [--tip <height> <hash hex>] [--static-remotekey] [--sweep <script hex>] [--feerate <n>]`
//! (`<checkpoint bytes>`: `FsStoreOptions::checkpoint_bytes`, small to make kills land in
//! checkpoints; `--tip`: the chain's tip for a new store (height 100 and a zero hash by
//! default); `--static-remotekey`: channels without anchors (the on-chain crash test has no
//! wallet to bump anchor transactions); `--sweep` and `--feerate`: where on-chain claims
//! pay and the feerate they start from, which the engine does not store, so the host sets
//! them on every start, before anything else)
//!
//! Peers reach the engine as from any host: BOLT 8 connections, whose handshake the parent
//! runs (it knows both ends' keys) and whose hub end it hands over as the session's keys,
//! right after the handshake; from then on every byte between them is ciphertext, decrypted
//! and encrypted on the engine's shards.
//!
//! Requests, one line each on stdin (hex for bytes, `<peer>` a compressed public key,
//! `<conn>` a connection id in decimal): `attach <conn> <peer> <ck> <sk> <rk>` (the hub's end
//! of a new connection: chaining key, sending and receiving keys, nonces at 0),
//! `ct <conn> <peer> <ciphertext>`, `detach <conn> <peer>`, `block <height> <hash>`,
//! `txs <height> <index>:<tx>,...`, `disconnected <height> <hash>` (blocks from `height`
//! up; `hash`: the fork point's, the block at `height - 1`), `idle`, `channels`, `channel <peer> <channel id>`, `force_close <channel id>`,
//! `balances` (channels with something claimable on chain: `balances <channel id>,...`, a
//! channel once per balance), `best` (`best <height> <hash> <stored>`: the engine's best
//! block, after its restore the lowest best block any of its shards had committed, from
//! which a host resumes its chain feed (it re-feeds the blocks above it); and the lowest
//! best height any node record of the store held when this process started, `-` if none,
//! read from the store by this process as a check of the engine's answer) and `stored`
//! (`stored <lowest> <highest>`, `stored - -` if none: the lowest and highest best heights
//! of the store's node records when this process started; they differ after a kill that
//! left one shard behind another).
//! Each gets one `R ...` line. Asynchronously, in the order the engine releases them:
//! `P <conn> <ciphertext>` (bytes for a connection), `X <conn>` (close it), and events:
//! `E ready <channel id> <peer> <scid|->`, `E forwarded <fee msat>`, `E closed <channel id>`,
//! `E broadcast <tx>`, `E onchain <channel id> <peer> <what>` (`claim <txid> <sat>`,
//! `revoked <txid> <number>`, `bump <tx>`, `fulfilled <htlc id> <preimage>`, or the
//! event's name),
//! `E other <debug>`.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Duration;

use lightning_core::bitcoin::consensus::{deserialize, serialize};
use lightning_core::bitcoin::hashes::Hash;
use lightning_core::bitcoin::ScriptBuf;
use lightning_core::bitcoin::{BlockHash, Transaction};
use lightning_core::chain::MonitorEvent;
use lightning_core::node::Event;
use lightning_core::persist::{ChannelRecord, NodeRecord};
use lightning_core::secp256k1::{PublicKey, SecretKey};
use lightning_core::transport::Transport;
use lightning_core::types::ChannelId;
use parking_lot::Mutex;
use shard_engine::store::{FsStore, FsStoreOptions, Store};
use shard_engine::{ConnectionId, ConnectionWriter, Engine, EngineConfig, EngineError, NodeApi};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 == 1 {
        return Err(format!("odd hex length {}", s.len()));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(|| format!("bad hex at {i}"))
        })
        .collect()
}

fn arr32(s: &str) -> Result<[u8; 32], String> {
    unhex(s)?
        .try_into()
        .map_err(|_| "expected 32 bytes".to_owned())
}

fn pubkey(s: &str) -> Result<PublicKey, String> {
    PublicKey::from_slice(&unhex(s)?).map_err(|e| e.to_string())
}

/// The most `P`/`X` lines waiting for the pump: a write past it is refused (the shard then
/// closes the connection, as for any slow socket).
const WIRE_LINES: usize = 65_536;

/// What the shards wrote to connections, as output lines, in order.
type Wire = Arc<Mutex<VecDeque<String>>>;

/// One attached connection's writer: its bytes become `P` lines, its close an `X` line.
struct LineWriter {
    conn: ConnectionId,
    wire: Wire,
}

impl ConnectionWriter for LineWriter {
    fn write(&mut self, bytes: Vec<u8>) -> bool {
        let mut wire = self.wire.lock();
        if wire.len() >= WIRE_LINES {
            return false;
        }
        wire.push_back(format!("P {} {}", self.conn, hex(&bytes)));
        true
    }

    fn close(&mut self) {
        self.wire.lock().push_back(format!("X {}", self.conn));
    }
}

/// Writes released outputs and events to stdout, one line each; `lock` keeps a flush from
/// the request thread and one from the pump thread from interleaving.
struct Pump {
    engine: Arc<Engine>,
    wire: Wire,
    lock: Mutex<()>,
}

impl Pump {
    fn flush(&self) -> std::io::Result<bool> {
        let _guard = self.lock.lock();
        let mut out = std::io::stdout().lock();
        let mut any = false;
        let lines = std::mem::take(&mut *self.wire.lock());
        for line in lines {
            any = true;
            writeln!(out, "{line}")?;
        }
        for e in self.engine.drain_events() {
            any = true;
            let line = match e {
                Event::ChannelReady {
                    channel_id,
                    counterparty_node_id,
                    short_channel_id,
                    ..
                } => format!(
                    "E ready {} {} {}",
                    hex(&channel_id.0),
                    hex(&counterparty_node_id.serialize()),
                    short_channel_id.map_or("-".to_owned(), |s| s.0.to_string())
                ),
                Event::PaymentForwarded {
                    fee_earned_msat, ..
                } => format!("E forwarded {fee_earned_msat}"),
                Event::ChannelClosed { channel_id, .. } => {
                    format!("E closed {}", hex(&channel_id.0))
                }
                Event::BroadcastTransaction { tx } => {
                    format!("E broadcast {}", hex(&serialize(&tx)))
                }
                Event::OnChain {
                    channel_id,
                    counterparty_node_id,
                    event,
                } => {
                    let what = match &event {
                        MonitorEvent::ClaimConfirmed { txid, value_sat } => {
                            format!("claim {txid} {value_sat}")
                        }
                        MonitorEvent::RevokedCommitmentSeen { txid, index } => {
                            format!("revoked {txid} {index}")
                        }
                        MonitorEvent::BumpNeeded { tx, .. } => {
                            format!("bump {}", hex(&serialize(tx)))
                        }
                        MonitorEvent::OutboundHtlcFulfilled { htlc_id, preimage } => {
                            format!("fulfilled {htlc_id} {}", hex(&preimage.0))
                        }
                        other => {
                            let debug = format!("{other:?}");
                            debug
                                .split(|c: char| !c.is_alphanumeric())
                                .next()
                                .unwrap_or("")
                                .to_owned()
                        }
                    };
                    format!(
                        "E onchain {} {} {what}",
                        hex(&channel_id.0),
                        hex(&counterparty_node_id.serialize())
                    )
                }
                other => format!("E other {:?}", std::mem::discriminant(&other)),
            };
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        Ok(any)
    }
}

/// Retries a call refused with `Full` (the shards' queues drain on their own threads).
fn retry<T>(mut f: impl FnMut() -> Result<T, EngineError>) -> Result<T, EngineError> {
    loop {
        match f() {
            Err(EngineError::Full { .. }) => std::thread::sleep(Duration::from_micros(100)),
            other => return other,
        }
    }
}

fn handle(
    engine: &Engine,
    pump: &Pump,
    stored: Option<(u32, u32)>,
    line: &str,
) -> Result<String, String> {
    let mut words = line.split_whitespace();
    let cmd = words.next().unwrap_or("");
    let mut arg = || {
        words
            .next()
            .ok_or_else(|| format!("{cmd}: missing argument"))
    };
    let api = |r: Result<(), EngineError>| r.map(|()| "ok".to_owned()).map_err(|e| e.to_string());
    match cmd {
        "attach" => {
            let conn: ConnectionId = arg()?.parse().map_err(|_| "bad connection id")?;
            let peer = pubkey(arg()?)?;
            let (ck, sk, rk) = (arr32(arg()?)?, arr32(arg()?)?, arr32(arg()?)?);
            let writer = LineWriter {
                conn,
                wire: pump.wire.clone(),
            };
            let transport = Transport::from_keys(ck, sk, rk);
            api(engine.attach_connection(conn, peer, transport, Box::new(writer)))
        }
        "detach" => {
            let conn: ConnectionId = arg()?.parse().map_err(|_| "bad connection id")?;
            api(engine.detach_connection(conn, pubkey(arg()?)?))
        }
        "ct" => {
            let conn: ConnectionId = arg()?.parse().map_err(|_| "bad connection id")?;
            let peer = pubkey(arg()?)?;
            let bytes = unhex(arg()?)?;
            loop {
                match engine.connection_ciphertext(conn, peer, bytes.clone()) {
                    Err(EngineError::Full { .. }) => {
                        pump.flush().map_err(|e| e.to_string())?;
                        std::thread::sleep(Duration::from_micros(100));
                    }
                    other => return api(other),
                }
            }
        }
        "block" => {
            let height: u32 = arg()?.parse().map_err(|_| "bad height")?;
            let hash = BlockHash::from_byte_array(arr32(arg()?)?);
            api(engine.best_block_updated(height, hash))
        }
        "txs" => {
            let height: u32 = arg()?.parse().map_err(|_| "bad height")?;
            let mut txs = Vec::new();
            for item in words
                .next()
                .unwrap_or("")
                .split(',')
                .filter(|s| !s.is_empty())
            {
                let (index, tx) = item.split_once(':').ok_or("bad tx item")?;
                let index: u32 = index.parse().map_err(|_| "bad tx index")?;
                let tx: Transaction = deserialize(&unhex(tx)?).map_err(|e| e.to_string())?;
                txs.push((index, tx));
            }
            api(engine.transactions_confirmed(height, &txs))
        }
        "disconnected" => {
            let height: u32 = arg()?.parse().map_err(|_| "bad height")?;
            let hash = BlockHash::from_byte_array(arr32(arg()?)?);
            api(retry(|| engine.block_disconnected(height, hash)))
        }
        "force_close" => {
            let id = ChannelId(arr32(arg()?)?);
            api(retry(|| engine.force_close_channel(id)))
        }
        "balances" => {
            let list = retry(|| engine.claimable_balances()).map_err(|e| e.to_string())?;
            let items: Vec<String> = list.iter().map(|(id, _)| hex(&id.0)).collect();
            Ok(format!("balances {}", items.join(",")))
        }
        "best" => {
            let (height, hash) = engine.coordinator().best_block();
            let lowest = stored.map_or("-".to_owned(), |(h, _)| h.to_string());
            Ok(format!(
                "best {height} {} {lowest}",
                hex(&hash.to_byte_array())
            ))
        }
        "stored" => Ok(match stored {
            Some((lowest, highest)) => format!("stored {lowest} {highest}"),
            None => "stored - -".to_owned(),
        }),
        "idle" => {
            // Idle only once every output of the work done is on stdout (before this reply).
            let idle = engine.is_idle();
            let moved = pump.flush().map_err(|e| e.to_string())?;
            Ok(if idle && !moved { "idle 1" } else { "idle 0" }.to_owned())
        }
        "channels" => {
            let list = engine.list_channels().map_err(|e| e.to_string())?;
            let items: Vec<String> = list
                .iter()
                .map(|c| {
                    format!(
                        "{}:{}",
                        hex(&c.counterparty_node_id.serialize()),
                        hex(&c.channel_id.0)
                    )
                })
                .collect();
            Ok(format!("channels {}", items.join(",")))
        }
        "channel" => {
            let peer = pubkey(arg()?)?;
            let id = ChannelId(arr32(arg()?)?);
            match engine.channel(peer, id).map_err(|e| e.to_string())? {
                None => Ok("channel -".to_owned()),
                Some(channel) => {
                    let record = ChannelRecord {
                        node_id: peer,
                        user_channel_id: 0,
                        funding_tx: None,
                        channel: channel.to_record(),
                    };
                    let bytes = record.to_bytes().map_err(|e| e.to_string())?;
                    Ok(format!("channel {}", hex(&bytes)))
                }
            }
        }
        other => Err(format!("unknown request {other:?}")),
    }
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: lnshard-crash-child <dir> <shards> <secret hex> <seed hex> \
                 <checkpoint bytes> [--tip <height> <hash hex>] [--static-remotekey] \
                 [--sweep <script hex>] [--feerate <n>]";
    let (Some([dir, shards, secret, seed, checkpoint]), Some(flags)) =
        (args.get(1..6), args.get(6..))
    else {
        return Err(usage.into());
    };
    let mut tip = (100, BlockHash::all_zeros());
    let mut static_remotekey = false;
    let mut sweep = None;
    let mut feerate = None;
    let mut flags = flags.iter();
    while let Some(flag) = flags.next() {
        let mut value = || flags.next().ok_or_else(|| format!("{flag}: missing value"));
        match flag.as_str() {
            "--tip" => {
                let height: u32 = value()?.parse().map_err(|_| "bad tip height")?;
                tip = (height, BlockHash::from_byte_array(arr32(value()?)?));
            }
            "--static-remotekey" => static_remotekey = true,
            "--sweep" => sweep = Some(ScriptBuf::from_bytes(unhex(value()?)?)),
            "--feerate" => feerate = Some(value()?.parse::<u32>().map_err(|_| "bad feerate")?),
            _ => return Err(usage.into()),
        }
    }
    let checkpoint_bytes: u64 = checkpoint.parse().map_err(|_| "bad checkpoint size")?;
    let shards: usize = shards.parse().map_err(|_| "bad shard count")?;
    let secret = SecretKey::from_slice(&unhex(secret)?).map_err(|e| e.to_string())?;
    let seed = arr32(seed)?;
    let options = FsStoreOptions {
        checkpoint_bytes,
        ..FsStoreOptions::default()
    };
    let store: Arc<dyn Store> =
        Arc::new(FsStore::open_with(dir, options).map_err(|e| e.to_string())?);
    // The lowest and highest best heights of the shards' node records: each shard stores
    // its own, so after a kill some may hold a block others never committed. Read here only
    // to check the engine, which must report the lowest (`best`).
    let mut stored: Option<(u32, u32)> = None;
    for key in store
        .list(shard_engine::durable::NODES)
        .map_err(|e| e.to_string())?
    {
        if let Some(bytes) = store
            .read(shard_engine::durable::NODES, &key)
            .map_err(|e| e.to_string())?
        {
            let record = NodeRecord::from_bytes(&bytes).map_err(|e| e.to_string())?;
            let h = record.best_height;
            stored = Some(stored.map_or((h, h), |(lo, hi)| (lo.min(h), hi.max(h))));
        }
    }
    let mut config = EngineConfig {
        shards,
        store: Some(store),
        ..EngineConfig::default()
    };
    if static_remotekey {
        config.node.channel.negotiate_anchors = false;
    }
    let engine =
        Arc::new(Engine::open(config, secret, seed, tip.0, tip.1).map_err(|e| e.to_string())?);
    if let Some(script) = sweep {
        retry(|| engine.set_sweep_script(script.clone())).map_err(|e| e.to_string())?;
    }
    if let Some(feerate) = feerate {
        retry(|| engine.set_claim_feerate(feerate)).map_err(|e| e.to_string())?;
    }
    let pump = Arc::new(Pump {
        engine: engine.clone(),
        wire: Wire::default(),
        lock: Mutex::new(()),
    });
    {
        let pump = pump.clone();
        std::thread::spawn(move || loop {
            match pump.flush() {
                Ok(true) => {}
                Ok(false) => std::thread::sleep(Duration::from_micros(200)),
                Err(_) => return,
            }
        });
    }
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let reply = match handle(&engine, &pump, stored, &line) {
            Ok(r) => format!("R {r}"),
            Err(e) => format!("R err {e}"),
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{reply}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}
