//! The main job.
//!
//! A routing node B — the shard engine (2 shards by default) persisting to the embedded
//! filesystem store in a temporary directory (or `--data-dir`) — between two peers A and C,
//! each a `NodeCore` of its own. Every link is a BOLT 8 transport (real Noise_XK handshakes;
//! every message encrypted and decrypted). Channels A-B and B-C open through the API and the
//! chain calls; then payments go from A to C forwarded by B (real onions, real BOLT 3
//! commitment and HTLC transactions and signatures, every state durable before the messages
//! that commit to it leave B), and back from C to A. It ends with throughput, the store's
//! syncs per payment and a reconciliation of every channel balance on both sides.
//!
//! Flags: `--payments N` (default 500), `--shards N` (default 2), `--data-dir DIR`.
//! The issue-7 routing benchmark with many peers will replace this job.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lnshard::core::bitcoin::absolute::LockTime;
use lnshard::core::bitcoin::hashes::{sha256, Hash};
use lnshard::core::bitcoin::transaction::Version;
use lnshard::core::bitcoin::{
    Amount, BlockHash, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness,
};
use lnshard::core::node::{
    ChannelDetails, Event, NodeConfig, NodeCore, Output, PaymentId, Route, RouteHop,
};
use lnshard::core::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lnshard::core::transport::{InitiatorHandshake, ResponderHandshake, Transport};
use lnshard::core::types::{
    ChannelId, PaymentHash, PaymentPreimage, PaymentSecret, ShortChannelId,
};
use lnshard::engine::store::{FsStore, Store};
use lnshard::engine::{Engine, EngineConfig, PeerOutput, Placement};

const CHANNEL_SATS: u64 = 5_000_000;
const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

fn key(tag: &[u8]) -> SecretKey {
    SecretKey::from_slice(&sha256::Hash::hash(tag).to_byte_array()).expect("a valid key")
}

/// A node of the demo: a single `NodeCore`, or the shard engine.
enum Node {
    Core(Box<NodeCore>),
    Engine(Box<Engine>),
}

/// Three nodes, their encrypted links and a toy chain.
struct Demo {
    nodes: Vec<Node>,
    ids: Vec<PublicKey>,
    /// `(from, to)`: the transport `from` uses with `to`.
    links: BTreeMap<(usize, usize), Transport>,
    /// Encrypted bytes in flight: (from, to, ciphertext).
    wire: VecDeque<(usize, usize, Vec<u8>)>,
    events: Vec<Vec<Event>>,
    mempool: Vec<Transaction>,
    height: u32,
    messages: u64,
    wire_bytes: u64,
}

impl Demo {
    fn new(engine_config: EngineConfig) -> Demo {
        let secp = Secp256k1::new();
        let mut secrets: Vec<SecretKey> = (0..3u8).map(|i| key(&[b'n', i])).collect();
        // Put C on another shard than A (when there are several), so forwards cross shards.
        let placement = Placement::new(&secrets[B], engine_config.shards);
        let shard = |s: &SecretKey| placement.shard_of(&PublicKey::from_secret_key(&secp, s));
        let mut tag = 0u8;
        while placement.shards() > 1 && shard(&secrets[C]) == shard(&secrets[A]) {
            tag += 1;
            secrets[C] = key(&[b'n', 2, tag]);
        }
        let ids = secrets
            .iter()
            .map(|s| PublicKey::from_secret_key(&secp, s))
            .collect();
        let height = 100;
        let seed = |i: u8| sha256::Hash::hash(&[b's', i]).to_byte_array();
        let core = |i: usize| {
            let core = NodeCore::new(
                secrets[i],
                seed(i as u8),
                NodeConfig::default(),
                height,
                block_hash(height),
            );
            Node::Core(Box::new(core))
        };
        let engine = Engine::open(
            engine_config,
            secrets[B],
            seed(B as u8),
            height,
            block_hash(height),
        )
        .unwrap_or_else(|e| fail(&format!("cannot open the engine on its store: {e}")));
        let mut demo = Demo {
            nodes: vec![core(A), Node::Engine(Box::new(engine)), core(C)],
            ids,
            links: BTreeMap::new(),
            wire: VecDeque::new(),
            events: vec![Vec::new(); 3],
            mempool: Vec::new(),
            height,
            messages: 0,
            wire_bytes: 0,
        };
        demo.handshake(&secrets, A, B);
        demo.handshake(&secrets, C, B);
        demo
    }

    fn engine(&self) -> &Engine {
        match &self.nodes[B] {
            Node::Engine(e) => e,
            Node::Core(_) => unreachable!("node B is the engine"),
        }
    }

    fn core(&mut self, i: usize) -> &mut NodeCore {
        match &mut self.nodes[i] {
            Node::Core(c) => c,
            Node::Engine(_) => unreachable!("nodes A and C are cores"),
        }
    }

    /// BOLT 8: `a` dials `b`; three acts, then each side holds its transport.
    fn handshake(&mut self, secrets: &[SecretKey], a: usize, b: usize) {
        let initiator = InitiatorHandshake::new(&secrets[a], &self.ids[b], &key(&[b'e', a as u8]));
        let responder = ResponderHandshake::new(&secrets[b], &key(&[b'e', b as u8, a as u8]));
        let (awaiting, act_two) = responder
            .process_act_one(&initiator.act_one())
            .expect("act one");
        let (act_three, ta) = initiator.process_act_two(&act_two).expect("act two");
        let (peer, tb) = awaiting.process_act_three(&act_three).expect("act three");
        assert_eq!(
            peer, self.ids[a],
            "the responder learns the initiator's node id"
        );
        self.links.insert((a, b), ta);
        self.links.insert((b, a), tb);
        let (ida, idb) = (self.ids[a], self.ids[b]);
        for (node, peer) in [(a, idb), (b, ida)] {
            match &mut self.nodes[node] {
                Node::Core(c) => c.peer_connected(peer),
                Node::Engine(e) => e.peer_connected(peer).expect("engine accepts the peer"),
            }
        }
        self.run();
    }

    fn index(&self, id: &PublicKey) -> usize {
        self.ids.iter().position(|i| i == id).expect("a known node")
    }

    fn send(&mut self, from: usize, to: usize, plaintext: &[u8]) {
        let link = self.links.get_mut(&(from, to)).expect("a link");
        let bytes = link.encrypt(plaintext).expect("a message fits");
        self.messages += 1;
        self.wire_bytes += bytes.len() as u64;
        self.wire.push_back((from, to, bytes));
    }

    /// Moves outputs and encrypted bytes until every node is quiet.
    fn run(&mut self) {
        loop {
            let mut progress = false;
            for i in [A, C] {
                for output in self.core(i).drain_outputs() {
                    progress = true;
                    match output {
                        Output::SendMessage { node_id, msg } => {
                            let to = self.index(&node_id);
                            self.send(i, to, &msg.encode());
                        }
                        Output::Event(Event::BroadcastTransaction { tx }) => self.mempool.push(tx),
                        Output::Event(e) => self.events[i].push(e),
                        Output::Forward(f) => self.core(i).handle_forward(f),
                        Output::Resolve(r) => self.core(i).handle_resolution(r),
                        other => fail(&format!("unexpected output {other:?}")),
                    }
                }
            }
            for peer in [A, C] {
                let outputs = self.engine().peer_outputs(&self.ids[peer]);
                for output in outputs {
                    progress = true;
                    match output {
                        PeerOutput::Message(bytes) => self.send(B, peer, &bytes),
                        PeerOutput::Disconnect => fail("the engine disconnected a peer"),
                    }
                }
            }
            for event in self.engine().drain_events() {
                progress = true;
                match event {
                    Event::BroadcastTransaction { tx } => self.mempool.push(tx),
                    e => self.events[B].push(e),
                }
            }
            while let Some((from, to, bytes)) = self.wire.pop_front() {
                progress = true;
                let link = self.links.get_mut(&(to, from)).expect("a link");
                let sender = self.ids[from];
                for plaintext in link.decrypt(&bytes).expect("authentic ciphertext") {
                    match &mut self.nodes[to] {
                        Node::Core(c) => c.handle_message(sender, &plaintext),
                        Node::Engine(e) => e
                            .handle_message(sender, &plaintext)
                            .expect("the engine takes it"),
                    }
                }
            }
            if !progress {
                if self.engine().is_idle() {
                    return;
                }
                std::thread::sleep(Duration::from_micros(20));
            }
        }
    }

    fn mine(&mut self, blocks: u32) {
        for _ in 0..blocks {
            self.height += 1;
            let (height, hash) = (self.height, block_hash(self.height));
            let txs = std::mem::take(&mut self.mempool);
            let txdata: Vec<(u32, Transaction)> = txs
                .into_iter()
                .enumerate()
                .map(|(i, tx)| (i as u32 + 1, tx))
                .collect();
            let refs: Vec<(u32, &Transaction)> = txdata.iter().map(|(i, tx)| (*i, tx)).collect();
            for i in [A, C] {
                self.core(i).transactions_confirmed(height, &refs);
                self.core(i).best_block_updated(height, hash);
            }
            self.engine()
                .transactions_confirmed(height, &txdata)
                .expect("engine confirms");
            self.engine()
                .best_block_updated(height, hash)
                .expect("engine block");
            self.run();
        }
    }

    fn channel(&mut self, node: usize, channel_id: ChannelId) -> ChannelDetails {
        let list = match &mut self.nodes[node] {
            Node::Core(c) => c.list_channels(),
            Node::Engine(e) => e.list_channels().expect("list"),
        };
        list.into_iter()
            .find(|c| c.channel_id == channel_id)
            .expect("the channel is listed")
    }

    /// `a` opens a channel to `b` and funds it; mined to depth; returns its ids.
    fn open(&mut self, a: usize, b: usize) -> (ChannelId, ShortChannelId) {
        let peer = self.ids[b];
        let temp = match &mut self.nodes[a] {
            Node::Core(c) => c
                .create_channel(peer, CHANNEL_SATS, 0, 0, 2_500)
                .expect("open"),
            Node::Engine(e) => e
                .create_channel(peer, CHANNEL_SATS, 0, 0, 2_500)
                .expect("open"),
        };
        self.run();
        let (script, value) = self.events[a]
            .iter()
            .find_map(|e| match e {
                Event::FundingGenerationReady {
                    temporary_channel_id,
                    output_script,
                    channel_value_satoshis,
                    ..
                } if *temporary_channel_id == temp => {
                    Some((output_script.clone(), *channel_value_satoshis))
                }
                _ => None,
            })
            .expect("the peer accepted");
        let funding = funding_tx(script, value, a as u8);
        match &mut self.nodes[a] {
            Node::Core(c) => c
                .funding_transaction_generated(temp, peer, funding.clone())
                .expect("funding"),
            Node::Engine(e) => e
                .funding_transaction_generated(temp, funding.clone())
                .expect("funding"),
        }
        self.run();
        self.mine(6);
        let channel_id = ChannelId::from_funding_outpoint(&funding.compute_txid(), 0);
        let details = self.channel(a, channel_id);
        assert!(details.is_usable, "the channel is ready");
        (channel_id, details.short_channel_id.expect("confirmed"))
    }

    fn inbound(
        &mut self,
        node: usize,
        preimage: &PaymentPreimage,
        amount: u64,
    ) -> (PaymentHash, PaymentSecret) {
        self.core(node)
            .create_inbound_payment(preimage, Some(amount))
    }

    /// Pays `amount` from `path[0]` to `path[2]` through B; the recipient claims. Returns the
    /// fee B earned. (C keeps more than the 1% channel reserve a fundee must hold before it
    /// pays back.)
    fn pay(&mut self, path: [usize; 3], scids: [ShortChannelId; 2], amount: u64, n: u64) -> u64 {
        let middle_fee = NodeConfig::default().forwarding.fee_for(amount);
        let route = Route {
            hops: vec![
                RouteHop {
                    node_id: self.ids[B],
                    short_channel_id: scids[0],
                    fee_msat: middle_fee,
                    cltv_expiry_delta: 72,
                },
                RouteHop {
                    node_id: self.ids[path[2]],
                    short_channel_id: scids[1],
                    fee_msat: amount,
                    cltv_expiry_delta: 60,
                },
            ],
        };
        let preimage = PaymentPreimage(sha256::Hash::hash(&n.to_be_bytes()).to_byte_array());
        let (hash, secret) = self.inbound(path[2], &preimage, amount);
        self.core(path[0])
            .send_payment(&route, hash, secret, PaymentId(preimage.0))
            .expect("send");
        self.run();
        if self.core(path[2]).claim_funds(preimage).is_err() {
            fail(&format!(
                "payment {n} did not arrive: {:?}",
                self.events[path[0]]
            ));
        }
        self.run();
        let sent = self.events[path[0]]
            .drain(..)
            .any(|e| matches!(e, Event::PaymentSent { payment_hash, .. } if payment_hash == hash));
        if !sent {
            fail(&format!("payment {n} did not complete"));
        }
        self.events[path[2]].clear();
        self.events[B].clear();
        middle_fee
    }
}

fn fail(why: &str) -> ! {
    eprintln!("lnshard: {why}");
    std::process::exit(1)
}

fn block_hash(height: u32) -> BlockHash {
    BlockHash::from_byte_array(sha256::Hash::hash(&height.to_be_bytes()).to_byte_array())
}

fn funding_tx(script: ScriptBuf, value: u64, salt: u8) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: Txid::from_byte_array([salt; 32]),
                vout: 0,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(value),
            script_pubkey: script,
        }],
    }
}

/// Options of the main job.
#[derive(Debug, clap::Args)]
pub struct JobArgs {
    /// Payments to make.
    #[arg(long, default_value_t = 500)]
    pub payments: u64,
    /// Shards of the routing node's engine.
    #[arg(long, default_value_t = 2)]
    pub shards: usize,
    /// Where the routing node's store lives (default: a temporary directory, removed at the end).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Runs the main job.
pub fn run(args: JobArgs) -> ExitCode {
    let JobArgs {
        payments,
        shards,
        data_dir,
    } = args;
    if shards == 0 {
        fail("--shards must be at least 1");
    }
    let temporary = data_dir.is_none();
    let dir = data_dir.unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        std::env::temp_dir().join(format!("lnshard-{}-{nanos}", std::process::id()))
    });
    if dir.join("data").exists() {
        fail(&format!(
            "{} already holds a store: give an empty --data-dir",
            dir.display()
        ));
    }
    let store = Arc::new(FsStore::open(&dir).unwrap_or_else(|e| fail(&format!("store: {e}"))));
    let config = EngineConfig {
        shards,
        store: Some(store.clone()),
        ..EngineConfig::default()
    };

    println!("lnshard {}: routing node B (shard engine, {shards} shards, store {}) between peers A and C over BOLT 8", env!("CARGO_PKG_VERSION"), dir.display());
    let mut demo = Demo::new(config);
    let (ab, s_ab) = demo.open(A, B);
    let (bc, s_bc) = demo.open(B, C);
    println!(
        "channels A-B {s_ab} and B-C {s_bc} open ({CHANNEL_SATS} sat each); A on shard {}, C on shard {}",
        demo.engine().shard_of(&demo.ids[A]),
        demo.engine().shard_of(&demo.ids[C])
    );

    let syncs_before = store.syncs();
    let start = Instant::now();
    let (mut sent_ac, mut sent_ca, mut fees_ac, mut fees_ca) = (0u64, 0u64, 0u64, 0u64);
    for n in 0..payments {
        if n % 2 == 0 || sent_ac < sent_ca + 80_000_000 {
            let amount = 10_000_000 + n * 1_000;
            fees_ac += demo.pay([A, B, C], [s_ab, s_bc], amount, n);
            sent_ac += amount;
        } else {
            let amount = 5_000_000 + n * 1_000;
            fees_ca += demo.pay([C, B, A], [s_bc, s_ab], amount, n);
            sent_ca += amount;
        }
    }
    let elapsed = start.elapsed();
    let syncs = store.syncs() - syncs_before;
    println!(
        "{payments} payments forwarded by B in {:.2?}: {:.0} payments/s, {:.2} fsyncs/payment, {} messages, {} encrypted bytes",
        elapsed,
        payments as f64 / elapsed.as_secs_f64(),
        syncs as f64 / payments.max(1) as f64,
        demo.messages,
        demo.wire_bytes,
    );

    // Reconcile: each channel's two views agree, and the totals match what was paid.
    let total = CHANNEL_SATS * 1000;
    let balances = |d: &ChannelDetails| (d.balances.to_local_msat, d.balances.to_remote_msat);
    let (a_local, a_remote) = balances(&demo.channel(A, ab));
    let (b_ab_local, b_ab_remote) = balances(&demo.channel(B, ab));
    let (b_bc_local, b_bc_remote) = balances(&demo.channel(B, bc));
    let (c_local, c_remote) = balances(&demo.channel(C, bc));
    let views_agree = a_local == b_ab_remote
        && a_remote == b_ab_local
        && b_bc_local == c_remote
        && b_bc_remote == c_local;
    let fees = fees_ac + fees_ca;
    let a_expected = total - sent_ac - fees_ac + sent_ca;
    let c_expected = sent_ac - sent_ca - fees_ca;
    let reconciled = views_agree
        && a_local == a_expected
        && c_local == c_expected
        && b_ab_local + b_bc_local == total + fees
        && a_local + a_remote == total
        && c_local + c_remote == total;
    println!("A: {a_local} msat (expected {a_expected}); C: {c_local} msat (expected {c_expected}); B earned {fees} msat in fees");
    println!("reconciled: {reconciled}");
    if let Node::Engine(engine) = demo.nodes.remove(B) {
        (*engine).shutdown(Duration::from_secs(5));
    }
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if reconciled {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
