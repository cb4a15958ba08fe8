//! A hostile peer talks to a `NodeCore` that has a funded channel with it, reestablished
//! after a reconnection.
//!
//! Setup (once): nodes A (the victim) and B (the peer) open a 1 000 000 sat channel from A to
//! B (400 000 sat pushed to B), confirm it and disconnect; both nodes' records are kept as
//! bytes. Per input, both nodes are restored from those records and reconnect (`init`,
//! `channel_reestablish`), then the input is read as a sequence of steps, each chosen by one
//! byte: a raw message from B's id; a typed message for the live channel with fuzzed fields
//! (so decoding is passed); B's next honest message, delivered as is or mutated; A's next
//! message delivered to B; payments either way and their claims; a clock tick; blocks (what
//! the nodes broadcast is mined); a reconnection; a cooperative or forced close.
//!
//! Checked after every step, for both nodes: no panic; every message a node sends encodes and
//! decodes back equal; the node's dirty tracking misses nothing (after each commit its store
//! equals a full snapshot of it) and every record it stores decodes back equal. At the end A
//! is restored from its store and reconnects to B.
#![no_main]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lightning_core::bitcoin::block::{Header, Version as BlockVersion};
use lightning_core::bitcoin::hashes::{sha256, Hash};
use lightning_core::bitcoin::{
    BlockHash, CompactTarget, OutPoint, ScriptBuf, Transaction, TxMerkleNode, Txid,
};
use lightning_core::node::{Event, NodeConfig, NodeCore, Output, PaymentId, Route, RouteHop};
use lightning_core::persist::{ChannelRecord, NodeRecord};
use lightning_core::secp256k1::{ecdsa::Signature, PublicKey, Secp256k1, SecretKey};
use lightning_core::types::{ChannelId, PaymentHash, PaymentPreimage, ShortChannelId};
use lightning_core::wire::{
    ChannelReestablish, ClosingFeeRange, ClosingSigned, CommitmentSigned, ErrorMessage,
    FundingTxidFlags, Message, Ping, RevokeAndAck, Shutdown, UpdateAddHtlc, UpdateFailHtlc,
    UpdateFailMalformedHtlc, UpdateFee, UpdateFulfillHtlc, Warning, ONION_PACKET_LEN,
};
use lnshard_testkit::fake_funding_tx;

/// Steps per input (each may cost a few signatures).
const MAX_STEPS: usize = 48;
const A: usize = 0;
const B: usize = 1;

/// The input, read front to back; reads past the end give zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head.to_vec()
    }
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let got = self.bytes(N);
        out[..got.len()].copy_from_slice(&got);
        out
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }
    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.array())
    }
    /// Mostly small numbers (ids, counters), sometimes any.
    fn small_or_any(&mut self) -> u64 {
        match self.u8() {
            b @ 0..=239 => u64::from(b % 16),
            _ => self.u64(),
        }
    }
}

/// What was made once: both nodes' records after the channel confirmed and they parted.
struct Base {
    secrets: [SecretKey; 2],
    seeds: [[u8; 32]; 2],
    ids: [PublicKey; 2],
    config: NodeConfig,
    /// Each node's records (decoded once: cloned per input).
    records: [(NodeRecord, Vec<ChannelRecord>); 2],
    channel_id: ChannelId,
    scid: ShortChannelId,
    height: u32,
    tip: BlockHash,
    /// Valid points for fuzzed public-key fields.
    points: Vec<PublicKey>,
    /// A valid signature for fuzzed signature fields that do not parse.
    signature: Signature,
}

/// A node's stored records, as bytes.
#[derive(Default)]
struct Store {
    channels: BTreeMap<(PublicKey, ChannelId), Vec<u8>>,
    node: Vec<u8>,
}

struct Pair {
    cores: [NodeCore; 2],
    ids: [PublicKey; 2],
    stores: [Store; 2],
    /// `queues[i]`: messages on their way to node `i`.
    queues: [VecDeque<Vec<u8>>; 2],
    connected: bool,
    mempool: Vec<Transaction>,
    confirmed: BTreeSet<Txid>,
    spent: BTreeSet<OutPoint>,
    height: u32,
    tip: BlockHash,
    now_ms: u64,
    /// Preimages of payments either node registered.
    preimages: Vec<PaymentPreimage>,
    /// Claimable payment hashes seen per node.
    claimable: [Vec<PaymentHash>; 2],
    funding: Vec<(ChannelId, ScriptBuf, u64)>,
    nonce: u64,
}

fn encode_record_channel(record: &ChannelRecord) -> Vec<u8> {
    let bytes = record.to_bytes().expect("a channel record encodes");
    let back = ChannelRecord::from_bytes(&bytes).expect("a stored channel record decodes");
    assert!(
        back == *record,
        "a channel record changed through its bytes"
    );
    bytes
}

fn encode_record_node(record: &NodeRecord) -> Vec<u8> {
    let bytes = record.to_bytes().expect("a node record encodes");
    let back = NodeRecord::from_bytes(&bytes).expect("a stored node record decodes");
    assert!(back == *record, "a node record changed through its bytes");
    bytes
}

impl Pair {
    fn new(cores: [NodeCore; 2], height: u32, tip: BlockHash) -> Pair {
        let ids = [cores[0].node_id(), cores[1].node_id()];
        let mut pair = Pair {
            cores,
            ids,
            stores: [Store::default(), Store::default()],
            queues: [VecDeque::new(), VecDeque::new()],
            connected: false,
            mempool: Vec::new(),
            confirmed: BTreeSet::new(),
            spent: BTreeSet::new(),
            height,
            tip,
            now_ms: 0,
            preimages: Vec::new(),
            claimable: [Vec::new(), Vec::new()],
            funding: Vec::new(),
            nonce: 0,
        };
        for i in [A, B] {
            pair.cores[i].take_dirty();
            pair.stores[i] = pair.snapshot(i);
        }
        pair
    }

    /// A full snapshot of node `i`'s records, as bytes.
    fn snapshot(&self, i: usize) -> Store {
        let core = &self.cores[i];
        Store {
            channels: core
                .channel_records()
                .iter()
                .map(|r| {
                    let bytes = r.to_bytes().expect("a channel record encodes");
                    ((r.node_id, r.channel_id()), bytes)
                })
                .collect(),
            node: core
                .node_record()
                .to_bytes()
                .expect("a node record encodes"),
        }
    }

    /// One group commit of node `i` (every record written is checked to decode back equal);
    /// then its store must equal a full snapshot.
    fn commit(&mut self, i: usize) {
        let dirty = self.cores[i].take_dirty();
        if dirty.is_empty() {
            return;
        }
        let store = &mut self.stores[i];
        for key in &dirty.removed {
            store.channels.remove(key);
        }
        for (node_id, channel_id) in &dirty.channels {
            match self.cores[i].snapshot_channel(node_id, channel_id) {
                Some(record) => {
                    store
                        .channels
                        .insert((*node_id, *channel_id), encode_record_channel(&record));
                }
                None => {
                    store.channels.remove(&(*node_id, *channel_id));
                }
            }
        }
        if dirty.node {
            store.node = encode_record_node(&self.cores[i].node_record());
        }
        let full = self.snapshot(i);
        let store = &self.stores[i];
        assert!(
            full.channels == store.channels,
            "node {i}: a channel changed without being reported dirty"
        );
        assert!(
            full.node == store.node,
            "node {i}: the node record changed without being reported dirty"
        );
    }

    /// Commits node `i`, then moves its outputs out; true if there were any.
    fn collect(&mut self, i: usize) -> bool {
        let mut any = false;
        loop {
            self.commit(i);
            let outputs = self.cores[i].drain_outputs();
            if outputs.is_empty() {
                return any;
            }
            any = true;
            for output in outputs {
                match output {
                    Output::SendMessage { node_id, msg } => {
                        let bytes = msg.encode();
                        let back = Message::decode(&bytes).expect("a sent message decodes");
                        assert_eq!(back, msg, "a sent message changed through its bytes");
                        if node_id == self.ids[1 - i] && self.connected {
                            self.queues[1 - i].push_back(bytes);
                        }
                    }
                    Output::Disconnect { .. } => self.disconnect(),
                    Output::Event(Event::BroadcastTransaction { tx }) => {
                        if self.mempool.len() < 64 {
                            self.mempool.push(tx);
                        }
                    }
                    Output::Event(Event::PaymentClaimable { payment_hash, .. }) => {
                        if self.claimable[i].len() < 64 {
                            self.claimable[i].push(payment_hash);
                        }
                    }
                    Output::Event(Event::FundingGenerationReady {
                        temporary_channel_id,
                        output_script,
                        channel_value_satoshis,
                        ..
                    }) => {
                        self.funding.push((
                            temporary_channel_id,
                            output_script,
                            channel_value_satoshis,
                        ));
                    }
                    Output::Event(_) => {}
                    // One NodeCore per node: what it forwards or resolves comes back to it.
                    Output::Forward(f) => self.cores[i].handle_forward(f),
                    Output::Resolve(r) => self.cores[i].handle_resolution(r),
                    _ => {}
                }
            }
        }
    }

    fn collect_both(&mut self) -> bool {
        let a = self.collect(A);
        let b = self.collect(B);
        a || b
    }

    /// Hands node `to` its next queued message, optionally changed; false if none.
    fn deliver(&mut self, to: usize, mutate: Option<&mut Input<'_>>) -> bool {
        let Some(mut bytes) = self.queues[to].pop_front() else {
            return false;
        };
        if let Some(input) = mutate {
            match input.u8() % 4 {
                0 | 1 if !bytes.is_empty() => {
                    let at = usize::from(input.u16()) % bytes.len();
                    bytes[at] ^= input.u8() | 1;
                }
                2 => bytes.truncate(usize::from(input.u16()) % (bytes.len() + 1)),
                _ => {
                    let n = usize::from(input.u8());
                    bytes.extend(input.bytes(n));
                }
            }
        }
        self.cores[to].handle_message(self.ids[1 - to], &bytes);
        true
    }

    fn connect(&mut self) {
        if self.connected {
            return;
        }
        self.connected = true;
        self.cores[A].peer_connected(self.ids[B]);
        self.cores[B].peer_connected(self.ids[A]);
    }

    fn disconnect(&mut self) {
        if !self.connected {
            return;
        }
        self.connected = false;
        self.queues = [VecDeque::new(), VecDeque::new()];
        self.cores[A].peer_disconnected(self.ids[B]);
        self.cores[B].peer_disconnected(self.ids[A]);
    }

    /// Runs both nodes honestly until nothing moves (bounded).
    fn run(&mut self, max_messages: usize) {
        for _ in 0..max_messages {
            let produced = self.collect_both();
            let delivered = self.deliver(A, None) | self.deliver(B, None);
            if !produced && !delivered {
                return;
            }
        }
        self.collect_both();
    }

    /// Mines `blocks` blocks: the mempool's transactions whose inputs are unspent and whose
    /// lock time has passed go in the first.
    fn mine(&mut self, blocks: u32) {
        for _ in 0..blocks {
            let header = Header {
                version: BlockVersion::TWO,
                prev_blockhash: self.tip,
                merkle_root: TxMerkleNode::all_zeros(),
                time: self.height,
                bits: CompactTarget::from_consensus(0x207fffff),
                nonce: 0,
            };
            self.height += 1;
            self.tip = header.block_hash();
            let mut block = Vec::new();
            for tx in std::mem::take(&mut self.mempool) {
                let txid = tx.compute_txid();
                let double_spend = tx
                    .input
                    .iter()
                    .any(|i| self.spent.contains(&i.previous_output));
                if self.confirmed.contains(&txid) || double_spend {
                    continue;
                }
                if tx.lock_time.is_block_height() && tx.lock_time.to_consensus_u32() > self.height {
                    self.mempool.push(tx);
                    continue;
                }
                for input in &tx.input {
                    self.spent.insert(input.previous_output);
                }
                self.confirmed.insert(txid);
                block.push(tx);
            }
            for core in &mut self.cores {
                let txdata: Vec<(u32, &Transaction)> = block
                    .iter()
                    .enumerate()
                    .map(|(i, tx)| (i as u32 + 1, tx))
                    .collect();
                core.transactions_confirmed(self.height, &txdata);
                core.best_block_updated(self.height, self.tip);
            }
            self.collect_both();
        }
    }

    /// `from` pays `amount_msat` to the other node over the channel.
    fn pay(&mut self, from: usize, scid: ShortChannelId, amount_msat: u64, cltv_delta: u32) {
        let to = 1 - from;
        self.nonce += 1;
        let preimage = PaymentPreimage(
            sha256::Hash::hash(&[&self.nonce.to_be_bytes()[..], &[from as u8]].concat())
                .to_byte_array(),
        );
        let (hash, secret) = self.cores[to].create_inbound_payment(&preimage, Some(amount_msat));
        if self.preimages.len() < 64 {
            self.preimages.push(preimage);
        }
        let route = Route {
            hops: vec![RouteHop {
                node_id: self.ids[to],
                short_channel_id: scid,
                fee_msat: amount_msat,
                cltv_expiry_delta: cltv_delta,
            }],
        };
        let id = PaymentId(sha256::Hash::hash(&preimage.0).to_byte_array());
        let _ = self.cores[from].send_payment(&route, hash, secret, id);
    }

    /// Node `i` claims every payment it saw claimable.
    fn claim(&mut self, i: usize, fail: bool) {
        for hash in std::mem::take(&mut self.claimable[i]) {
            if fail {
                let _ = self.cores[i].fail_htlc_backwards(hash);
            } else if let Some(p) = self.preimages.iter().find(|p| p.payment_hash() == hash) {
                let _ = self.cores[i].claim_funds(*p);
            }
        }
    }
}

fn key(tag: u8, i: u8) -> [u8; 32] {
    sha256::Hash::hash(&[b'f', b'z', tag, i]).to_byte_array()
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let secp = Secp256k1::new();
        let secrets = [0u8, 1].map(|i| SecretKey::from_slice(&key(1, i)).expect("a valid key"));
        let seeds = [0u8, 1].map(|i| key(2, i));
        let config = NodeConfig::default();
        let (height, tip) = (100, BlockHash::all_zeros());
        let cores =
            [A, B].map(|i| NodeCore::new(secrets[i], seeds[i], config.clone(), height, tip));
        let mut pair = Pair::new(cores, height, tip);
        pair.connect();
        pair.run(1000);
        let temp = pair.cores[A]
            .create_channel(pair.ids[B], 1_000_000, 400_000_000, 42, 2500)
            .expect("create_channel");
        pair.run(1000);
        let (_, script, value) = pair
            .funding
            .iter()
            .find(|(t, _, _)| *t == temp)
            .cloned()
            .expect("FundingGenerationReady");
        let funding_tx = fake_funding_tx(script, value, 7);
        pair.cores[A]
            .funding_transaction_generated(temp, pair.ids[B], funding_tx.clone())
            .expect("funding");
        pair.run(1000);
        pair.mine(6);
        pair.run(1000);
        let channel_id = ChannelId::from_funding_outpoint(&funding_tx.compute_txid(), 0);
        let details = pair.cores[A]
            .list_channels()
            .into_iter()
            .find(|c| c.channel_id == channel_id)
            .expect("the channel is listed");
        assert!(details.is_usable, "the channel is usable: {details:?}");
        let scid = details.short_channel_id.expect("a short channel id");
        pair.disconnect();
        pair.collect_both();
        let records = [A, B].map(|i| {
            let store = &pair.stores[i];
            read_records(&store.node, store.channels.values())
        });
        let points = (1u8..=6)
            .map(|i| PublicKey::from_secret_key(&secp, &SecretKey::from_slice(&key(3, i)).unwrap()))
            .chain(pair.ids)
            .collect();
        let signature = secp.sign_ecdsa(
            &lightning_core::secp256k1::Message::from_digest(key(4, 0)),
            &secrets[B],
        );
        Base {
            secrets,
            seeds,
            ids: pair.ids,
            config,
            records,
            channel_id,
            scid,
            height: pair.height,
            tip: pair.tip,
            points,
            signature,
        }
    })
}

fn read_records<'a>(
    node: &[u8],
    channels: impl IntoIterator<Item = &'a Vec<u8>>,
) -> (NodeRecord, Vec<ChannelRecord>) {
    let node = NodeRecord::from_bytes(node).expect("a stored node record reads");
    let channels = channels
        .into_iter()
        .map(|b| ChannelRecord::from_bytes(b).expect("a stored channel record reads"))
        .collect();
    (node, channels)
}

fn restore(base: &Base, i: usize, (node, channels): (NodeRecord, Vec<ChannelRecord>)) -> NodeCore {
    NodeCore::restore(
        base.secrets[i],
        base.seeds[i],
        base.config.clone(),
        node,
        channels,
    )
}

fn signature(base: &Base, input: &mut Input<'_>) -> Signature {
    let raw: [u8; 64] = input.array();
    Signature::from_compact(&raw).unwrap_or(base.signature)
}

fn point(base: &Base, input: &mut Input<'_>) -> lightning_core::secp256k1::PublicKey {
    base.points[usize::from(input.u8()) % base.points.len()]
}

/// A typed message from B with fuzzed fields.
fn typed_message(base: &Base, pair: &Pair, input: &mut Input<'_>) -> Message {
    let kind = input.u8();
    let channel_id = match kind >> 5 {
        0 => ChannelId(input.array()),
        1 => ChannelId::ALL,
        _ => base.channel_id,
    };
    let preimage = |input: &mut Input<'_>| match input.u8() {
        b if usize::from(b) < pair.preimages.len() => pair.preimages[usize::from(b)],
        _ => PaymentPreimage(input.array()),
    };
    match kind % 12 {
        0 => {
            let mut onion = Box::new([0u8; ONION_PACKET_LEN]);
            let n = usize::from(input.u8()) % 80;
            let head = input.bytes(n);
            onion[..head.len()].copy_from_slice(&head);
            Message::UpdateAddHtlc(UpdateAddHtlc {
                channel_id,
                id: input.small_or_any(),
                amount_msat: match input.u8() {
                    0..=127 => u64::from(input.u32()),
                    _ => input.u64(),
                },
                payment_hash: preimage(input).payment_hash(),
                cltv_expiry: pair.height.wrapping_add(u32::from(input.u16())),
                onion_routing_packet: onion,
                path_key: (input.u8() & 1 == 1).then(|| point(base, input)),
            })
        }
        1 => Message::UpdateFulfillHtlc(UpdateFulfillHtlc {
            channel_id,
            id: input.small_or_any(),
            payment_preimage: preimage(input),
            attribution_data: None,
        }),
        2 => {
            let n = usize::from(input.u16()) % 600;
            Message::UpdateFailHtlc(UpdateFailHtlc {
                channel_id,
                id: input.small_or_any(),
                reason: input.bytes(n),
                attribution_data: None,
            })
        }
        3 => Message::UpdateFailMalformedHtlc(UpdateFailMalformedHtlc {
            channel_id,
            id: input.small_or_any(),
            sha256_of_onion: input.array(),
            failure_code: input.u16(),
        }),
        4 => {
            let n = usize::from(input.u8() % 8);
            Message::CommitmentSigned(CommitmentSigned {
                channel_id,
                signature: signature(base, input),
                htlc_signatures: (0..n).map(|_| signature(base, input)).collect(),
                funding_txid: None,
            })
        }
        5 => Message::RevokeAndAck(RevokeAndAck {
            channel_id,
            per_commitment_secret: input.array(),
            next_per_commitment_point: point(base, input),
        }),
        6 => Message::UpdateFee(UpdateFee {
            channel_id,
            feerate_per_kw: match input.u8() {
                0..=127 => u32::from(input.u16()),
                _ => input.u32(),
            },
        }),
        7 => {
            let scriptpubkey = match input.u8() % 4 {
                0 => {
                    let mut s = vec![0x00, 0x14];
                    s.extend_from_slice(&input.array::<20>());
                    ScriptBuf::from_bytes(s)
                }
                1 => {
                    let mut s = vec![0x00, 0x20];
                    s.extend_from_slice(&input.array::<32>());
                    ScriptBuf::from_bytes(s)
                }
                2 => {
                    let mut s = vec![0x51, 0x20];
                    s.extend_from_slice(&input.array::<32>());
                    ScriptBuf::from_bytes(s)
                }
                _ => {
                    let n = usize::from(input.u8() % 90);
                    ScriptBuf::from_bytes(input.bytes(n))
                }
            };
            Message::Shutdown(Shutdown {
                channel_id,
                scriptpubkey,
            })
        }
        8 => Message::ClosingSigned(ClosingSigned {
            channel_id,
            fee_satoshis: u64::from(input.u32()),
            signature: signature(base, input),
            fee_range: (input.u8() & 1 == 1).then(|| ClosingFeeRange {
                min_fee_satoshis: u64::from(input.u32()),
                max_fee_satoshis: u64::from(input.u32()),
            }),
        }),
        9 => Message::ChannelReestablish(ChannelReestablish {
            channel_id,
            next_commitment_number: input.small_or_any(),
            next_revocation_number: input.small_or_any(),
            your_last_per_commitment_secret: input.array(),
            my_current_per_commitment_point: point(base, input),
            next_funding: (input.u8() & 1 == 1).then(|| FundingTxidFlags {
                txid: Txid::from_byte_array(input.array()),
                retransmit_flags: input.u8(),
            }),
            my_current_funding_locked: (input.u8() & 1 == 1).then(|| FundingTxidFlags {
                txid: Txid::from_byte_array(input.array()),
                retransmit_flags: input.u8(),
            }),
        }),
        10 => {
            let n = usize::from(input.u8());
            let data = input.bytes(n);
            if input.u8() & 1 == 0 {
                Message::Error(ErrorMessage { channel_id, data })
            } else {
                Message::Warning(Warning { channel_id, data })
            }
        }
        _ => {
            let n = usize::from(input.u8());
            Message::Ping(Ping {
                num_pong_bytes: input.u16(),
                ignored: vec![0; n],
            })
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let base = base();
    let cores = [A, B].map(|i| restore(base, i, base.records[i].clone()));
    let mut pair = Pair::new(cores, base.height, base.tip);
    debug_assert_eq!(pair.ids, base.ids);
    pair.connect();
    pair.run(100);
    let mut input = Input(data);
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        match input.u8() % 16 {
            0 => {
                let n = usize::from(input.u16());
                let bytes = input.bytes(n);
                pair.cores[A].handle_message(pair.ids[B], &bytes);
            }
            1..=3 => {
                let msg = typed_message(base, &pair, &mut input);
                pair.cores[A].handle_message(pair.ids[B], &msg.encode());
            }
            4 => {
                pair.deliver(A, None);
            }
            5 => {
                pair.deliver(A, Some(&mut input));
            }
            6 => {
                pair.deliver(B, None);
            }
            7 | 8 => {
                let from = usize::from(input.u8() & 1);
                let amount = match input.u8() {
                    0..=199 => 1000 + u64::from(input.u32()) * 16,
                    _ => input.u64(),
                };
                let delta = 9 + u32::from(input.u8());
                pair.pay(from, base.scid, amount, delta);
            }
            9 => {
                let flags = input.u8();
                pair.claim(usize::from(flags & 1), flags & 2 != 0);
            }
            10 => {
                pair.now_ms += u64::from(input.u32());
                for core in &mut pair.cores {
                    core.timer_tick(pair.now_ms);
                }
            }
            11 => {
                let blocks = (1u32 << (input.u8() % 8)).min(144);
                pair.mine(blocks);
            }
            12 => {
                pair.disconnect();
                pair.collect_both();
                pair.connect();
            }
            13 => {
                let flags = input.u8();
                let i = usize::from(flags & 1);
                let peer = pair.ids[1 - i];
                if flags & 2 == 0 {
                    let _ = pair.cores[i].close_channel(base.channel_id, peer);
                } else {
                    let _ = pair.cores[i].force_close_channel(base.channel_id, peer);
                }
            }
            _ => pair.run(64),
        }
        pair.collect_both();
    }
    // A restarts from what it stored, and meets B again.
    pair.disconnect();
    pair.collect_both();
    let store = &pair.stores[A];
    pair.cores[A] = restore(base, A, read_records(&store.node, store.channels.values()));
    pair.cores[A].take_dirty();
    pair.stores[A] = pair.snapshot(A);
    pair.connect();
    pair.run(100);
});
