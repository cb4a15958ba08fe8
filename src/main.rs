//! The lnshard main job.
//!
//! Until the shard engine's routing-node benchmark takes this place, it runs the protocol
//! core for real: three nodes A, B and C, each a `NodeCore`, connected by BOLT 8 encrypted
//! transports (Noise_XK handshakes, every message encrypted and decrypted), open channels
//! A-B and B-C through the chain API, and send payments from A to C forwarded by B (real
//! onions, real commitment transactions and signatures), then back from C to A. It ends with
//! throughput and a reconciliation of every channel balance on both sides.
//!
//! Flags: `--payments N` (default 500).

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use lnshard::core::bitcoin::absolute::LockTime;
use lnshard::core::bitcoin::hashes::{sha256, Hash};
use lnshard::core::bitcoin::transaction::Version;
use lnshard::core::bitcoin::{
    Amount, BlockHash, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness,
};
use lnshard::core::node::{Event, NodeConfig, NodeCore, Output, PaymentId, Route, RouteHop};
use lnshard::core::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lnshard::core::transport::{InitiatorHandshake, ResponderHandshake, Transport};
use lnshard::core::types::{ChannelId, PaymentPreimage, ShortChannelId};

const CHANNEL_SATS: u64 = 5_000_000;

fn key(tag: &[u8]) -> SecretKey {
    SecretKey::from_slice(&sha256::Hash::hash(tag).to_byte_array()).expect("a valid key")
}

/// Three nodes, their encrypted links and a toy chain.
struct Demo {
    nodes: Vec<NodeCore>,
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
    fn new() -> Demo {
        let secrets: Vec<SecretKey> = (0..3u8).map(|i| key(&[b'n', i])).collect();
        let secp = Secp256k1::new();
        let ids = secrets
            .iter()
            .map(|s| PublicKey::from_secret_key(&secp, s))
            .collect();
        let height = 100;
        let nodes = secrets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let seed = sha256::Hash::hash(&[b's', i as u8]).to_byte_array();
                NodeCore::new(*s, seed, NodeConfig::default(), height, block_hash(height))
            })
            .collect();
        let mut demo = Demo {
            nodes,
            ids,
            links: BTreeMap::new(),
            wire: VecDeque::new(),
            events: vec![Vec::new(); 3],
            mempool: Vec::new(),
            height,
            messages: 0,
            wire_bytes: 0,
        };
        demo.handshake(&secrets, 0, 1);
        demo.handshake(&secrets, 1, 2);
        demo
    }

    /// BOLT 8: `a` dials `b`; three acts, then each side holds its transport.
    fn handshake(&mut self, secrets: &[SecretKey], a: usize, b: usize) {
        let initiator = InitiatorHandshake::new(&secrets[a], &self.ids[b], &key(&[b'e', a as u8]));
        let responder = ResponderHandshake::new(&secrets[b], &key(&[b'e', b as u8, 1]));
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
        self.nodes[a].peer_connected(self.ids[b]);
        self.nodes[b].peer_connected(self.ids[a]);
        self.run();
    }

    fn index(&self, id: &PublicKey) -> usize {
        self.ids.iter().position(|i| i == id).expect("a known node")
    }

    /// Moves outputs and encrypted bytes until everything is quiet.
    fn run(&mut self) {
        loop {
            let mut progress = false;
            for i in 0..self.nodes.len() {
                for output in self.nodes[i].drain_outputs() {
                    progress = true;
                    match output {
                        Output::SendMessage { node_id, msg } => {
                            let to = self.index(&node_id);
                            let link = self.links.get_mut(&(i, to)).expect("a link");
                            let bytes = link.encrypt(&msg.encode()).expect("a message fits");
                            self.messages += 1;
                            self.wire_bytes += bytes.len() as u64;
                            self.wire.push_back((i, to, bytes));
                        }
                        Output::Event(Event::BroadcastTransaction { tx }) => self.mempool.push(tx),
                        Output::Event(e) => self.events[i].push(e),
                        Output::Forward(f) => self.nodes[i].handle_forward(f),
                        Output::Resolve(r) => self.nodes[i].handle_resolution(r),
                        other => panic!("unexpected output {other:?}"),
                    }
                }
            }
            while let Some((from, to, bytes)) = self.wire.pop_front() {
                progress = true;
                let link = self.links.get_mut(&(to, from)).expect("a link");
                for plaintext in link.decrypt(&bytes).expect("authentic ciphertext") {
                    let sender = self.ids[from];
                    self.nodes[to].handle_message(sender, &plaintext);
                }
            }
            if !progress {
                return;
            }
        }
    }

    fn mine(&mut self, blocks: u32) {
        for _ in 0..blocks {
            self.height += 1;
            let txs = std::mem::take(&mut self.mempool);
            let txdata: Vec<(u32, &Transaction)> = txs
                .iter()
                .enumerate()
                .map(|(i, tx)| (i as u32 + 1, tx))
                .collect();
            for node in &mut self.nodes {
                node.transactions_confirmed(self.height, &txdata);
                node.best_block_updated(self.height, block_hash(self.height));
            }
            self.run();
        }
    }

    fn open(&mut self, a: usize, b: usize) -> (ChannelId, ShortChannelId) {
        let temp = self.nodes[a]
            .create_channel(self.ids[b], CHANNEL_SATS, 0, 0, 2_500)
            .expect("open");
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
        self.nodes[a]
            .funding_transaction_generated(temp, self.ids[b], funding.clone())
            .expect("funding");
        self.run();
        self.mine(6);
        let channel_id = ChannelId::from_funding_outpoint(&funding.compute_txid(), 0);
        let details = self.nodes[a]
            .list_channels()
            .into_iter()
            .find(|c| c.channel_id == channel_id);
        let details = details.expect("the channel is listed");
        assert!(details.is_usable, "the channel is ready");
        (channel_id, details.short_channel_id.expect("confirmed"))
    }

    /// Pays `amount` from `path[0]` to `path[2]` through `path[1]`; the recipient claims.
    /// (C keeps more than the 1% channel reserve the spec makes a fundee hold before it pays
    /// back.)
    fn pay(&mut self, path: [usize; 3], scids: [ShortChannelId; 2], amount: u64, n: u64) -> u64 {
        let middle_fee = self.nodes[path[1]].config().forwarding.fee_for(amount);
        let route = Route {
            hops: vec![
                RouteHop {
                    node_id: self.ids[path[1]],
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
        let (hash, secret) = self.nodes[path[2]].create_inbound_payment(&preimage, Some(amount));
        self.nodes[path[0]]
            .send_payment(&route, hash, secret, PaymentId(preimage.0))
            .expect("send");
        self.run();
        if self.nodes[path[2]].claim_funds(preimage).is_err() {
            panic!("payment {n} not claimable: {:?}", self.events[path[0]]);
        }
        self.run();
        let sent = self.events[path[0]]
            .drain(..)
            .any(|e| matches!(e, Event::PaymentSent { payment_hash, .. } if payment_hash == hash));
        assert!(sent, "payment {n} completed");
        self.events[path[2]].clear();
        middle_fee
    }

    fn balance(&self, node: usize, peer: usize, channel: ChannelId) -> (u64, u64) {
        let c = self.nodes[node]
            .list_channels()
            .into_iter()
            .find(|c| c.channel_id == channel);
        let b = c.expect("channel").balances;
        let _ = peer;
        (b.to_local_msat, b.to_remote_msat)
    }
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

fn main() {
    let mut payments: u64 = 500;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--payments" => {
                payments = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                    eprintln!("--payments needs a number");
                    std::process::exit(2)
                })
            }
            other => {
                eprintln!("unknown argument {other}; usage: lnshard [--payments N]");
                std::process::exit(2)
            }
        }
    }
    println!(
        "lnshard {}: three NodeCores A-B-C over BOLT 8 transports",
        env!("CARGO_PKG_VERSION")
    );
    let mut demo = Demo::new();
    let (ab, s_ab) = demo.open(0, 1);
    let (bc, s_bc) = demo.open(1, 2);
    println!("channels A-B {s_ab} and B-C {s_bc} open ({CHANNEL_SATS} sat each)");

    let start = Instant::now();
    let (mut sent_ac, mut sent_ca, mut fees_ac, mut fees_ca) = (0u64, 0u64, 0u64, 0u64);
    for n in 0..payments {
        if n % 2 == 0 || sent_ac < sent_ca + 80_000_000 {
            let amount = 10_000_000 + n * 1_000;
            fees_ac += demo.pay([0, 1, 2], [s_ab, s_bc], amount, n);
            sent_ac += amount;
        } else {
            let amount = 5_000_000 + n * 1_000;
            fees_ca += demo.pay([2, 1, 0], [s_bc, s_ab], amount, n);
            sent_ca += amount;
        }
    }
    let elapsed = start.elapsed();
    println!(
        "{payments} payments forwarded by B in {:.2?}: {:.0} payments/s, {} messages, {} encrypted bytes",
        elapsed,
        payments as f64 / elapsed.as_secs_f64(),
        demo.messages,
        demo.wire_bytes,
    );

    // Reconcile: each channel's two views agree, and the totals match what was paid.
    let total = CHANNEL_SATS * 1000;
    let (a_local, a_remote) = demo.balance(0, 1, ab);
    let (b_ab_local, b_ab_remote) = demo.balance(1, 0, ab);
    let (b_bc_local, b_bc_remote) = demo.balance(1, 2, bc);
    let (c_local, c_remote) = demo.balance(2, 1, bc);
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
    if !reconciled {
        std::process::exit(1);
    }
}
