//! Two lnshard engines in one process, talking BOLT 8 through a message pump: the program
//! carries the encrypted bytes a socket would (`Engine::connection_outputs` from one engine,
//! `Engine::handle_bytes` into the other).
//!
//! Alice opens a 1,000,000 sat channel to Bob and funds it from a (simulated) coin with
//! `funding_transaction_from_utxo`; the engine broadcasts the funding transaction itself
//! (`Event::BroadcastTransaction`), the program mines it into fabricated blocks until the
//! channel is ready, then Alice pays Bob and Bob pays Alice, each payee claiming with the
//! preimage it made the invoice from. Both balances are printed at the end.
//!
//! Run it with `cargo run --example two_engines` from the repository root.
//! `crates/lnshard/tests/two_engines.rs` runs it as a test.
//!
//! The chain is simulated: blocks are a height, a made-up hash and the transactions of the
//! mempool, and the funding transaction is not signed (the engine only checks that it pays
//! the channel's funding script the channel value). A real application signs it with the
//! wallet that owns the coin before handing it to the engine, feeds real blocks, and gets
//! its preimages from a cryptographic RNG.
#![allow(clippy::print_stdout)] // an example shows what it does

use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lnshard::core::bitcoin::hashes::{sha256, Hash};
use lnshard::core::bitcoin::{BlockHash, OutPoint, Transaction, Txid};
use lnshard::core::node::{Event, PaymentId, Route, RouteHop};
use lnshard::core::secp256k1::{PublicKey, SecretKey};
use lnshard::core::types::{PaymentHash, PaymentPreimage, ShortChannelId};
use lnshard::core::wallet::funding_transaction_from_utxo;
use lnshard::engine::store::MemoryStore;
use lnshard::engine::{ConnectionId, Engine, EngineConfig, EngineError, NodeApi};

/// The channel Alice opens, in satoshis.
pub const CHANNEL_SAT: u64 = 1_000_000;
/// What Alice pays Bob, in millisatoshis.
pub const ALICE_PAYS_MSAT: u64 = 50_000_000;
/// What Bob pays Alice back, in millisatoshis.
pub const BOB_PAYS_MSAT: u64 = 20_000_000;

/// What a run ended with.
#[derive(Debug)]
pub struct Summary {
    /// Alice's balance in the channel (msat).
    pub alice_msat: u64,
    /// Bob's balance in the channel (msat).
    pub bob_msat: u64,
    /// `PaymentSent` events seen (both nodes).
    pub payments_sent: usize,
    /// `PaymentClaimed` events seen (both nodes).
    pub payments_claimed: usize,
}

/// One node: its engine, its end of the one connection, and the preimages of its invoices.
struct Node {
    name: &'static str,
    engine: Engine,
    id: PublicKey,
    conn: ConnectionId,
    preimages: HashMap<PaymentHash, PaymentPreimage>,
    /// The short channel id of the channel once it is ready.
    ready: Option<ShortChannelId>,
    sent: usize,
    claimed: usize,
}

/// The simulated chain: a tip and a mempool.
struct Chain {
    height: u32,
    mempool: Vec<Transaction>,
}

fn block_hash(height: u32) -> BlockHash {
    let mut bytes = [0x42; 32];
    bytes[..4].copy_from_slice(&height.to_le_bytes());
    BlockHash::from_byte_array(bytes)
}

/// Starts a node on a fresh in-memory store. `Engine::open` resumes whatever a store holds;
/// on an empty one it starts a new node at the given best block.
fn start(
    name: &'static str,
    secret: u8,
    conn: ConnectionId,
    chain: &Chain,
) -> Result<Node, Box<dyn Error>> {
    let config = EngineConfig {
        shards: 2,
        store: Some(Arc::new(MemoryStore::new())),
        ..EngineConfig::default()
    };
    let node_secret = SecretKey::from_slice(&[secret; 32])?;
    let seed = [secret ^ 0x5a; 32]; // all keys and randomness derive from it: keep it secret
    let engine = Engine::open(
        config,
        node_secret,
        seed,
        chain.height,
        block_hash(chain.height),
    )?;
    let id = engine.node_id();
    println!("{name}: node {id} ({} shards)", engine.shard_count());
    Ok(Node {
        name,
        engine,
        id,
        conn,
        preimages: HashMap::new(),
        ready: None,
        sent: 0,
        claimed: 0,
    })
}

/// Acts on one event of `node`.
fn handle_event(node: &mut Node, chain: &mut Chain, event: Event) -> Result<(), Box<dyn Error>> {
    match event {
        Event::FundingGenerationReady {
            temporary_channel_id,
            channel_value_satoshis,
            output_script,
            ..
        } => {
            // Our (simulated) coin: ab..ab:0 worth 1.1M sat; the rest of it is the fee.
            let coin = OutPoint {
                txid: Txid::from_byte_array([0xab; 32]),
                vout: 0,
            };
            let tx = funding_transaction_from_utxo(
                coin,
                1_100_000,
                output_script,
                channel_value_satoshis,
            )?;
            println!("{}: funding {channel_value_satoshis} sat", node.name);
            // Not broadcast here: the engine emits BroadcastTransaction for it once the peer
            // has signed our first commitment.
            node.engine
                .funding_transaction_generated(temporary_channel_id, tx)?;
        }
        Event::ChannelPending { channel_id, .. } => {
            println!("{}: channel {channel_id} pending", node.name);
        }
        Event::ChannelReady {
            short_channel_id, ..
        } => {
            println!(
                "{}: channel ready, short channel id {short_channel_id:?}",
                node.name
            );
            node.ready = short_channel_id;
        }
        Event::BroadcastTransaction { tx } => {
            if !chain.mempool.contains(&tx) {
                println!("{}: broadcast {}", node.name, tx.compute_txid());
                chain.mempool.push(tx);
            }
        }
        Event::PaymentClaimable {
            payment_hash,
            amount_msat,
            ..
        } => match node.preimages.get(&payment_hash) {
            Some(preimage) => {
                println!("{}: claiming {amount_msat} msat", node.name);
                node.engine.claim_funds(*preimage)?;
            }
            None => node.engine.fail_htlc_backwards(payment_hash)?,
        },
        Event::PaymentClaimed { amount_msat, .. } => {
            node.claimed += 1;
            println!("{}: received {amount_msat} msat", node.name);
        }
        Event::PaymentSent {
            payment_hash,
            fee_paid_msat,
            ..
        } => {
            node.sent += 1;
            println!(
                "{}: payment {payment_hash} sent (fee {fee_paid_msat} msat)",
                node.name
            );
        }
        Event::PaymentFailed { failure, .. } => {
            return Err(format!("{}: payment failed: {failure:?}", node.name).into());
        }
        other => println!("{}: {other:?}", node.name),
    }
    Ok(())
}

/// Carries what `from` encrypted for its connection into `to`'s; whether anything moved.
fn carry(from: &Node, to: &Node) -> Result<bool, Box<dyn Error>> {
    let out = from.engine.connection_outputs(from.conn)?;
    if out.disconnect {
        return Err(format!("{} closed the connection", from.name).into());
    }
    if out.bytes.is_empty() {
        return Ok(false);
    }
    let mut result = to.engine.handle_bytes(to.conn, &out.bytes);
    // Full: every byte was taken; a socket would not be read until this succeeds.
    while let Err(EngineError::Full { .. }) = result {
        to.engine.wait_ready_connection(Duration::from_millis(1));
        result = to.engine.handle_bytes(to.conn, &[]);
    }
    result?;
    Ok(true)
}

/// Pumps bytes and events until both engines are idle and nothing moved for a few rounds.
fn settle(a: &mut Node, b: &mut Node, chain: &mut Chain) -> Result<(), Box<dyn Error>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet = 0;
    while quiet < 3 {
        if Instant::now() > deadline {
            return Err("the engines did not settle within 60 s".into());
        }
        let mut moved = carry(a, b)? | carry(b, a)?;
        for node in [&mut *a, &mut *b] {
            for event in node.engine.drain_events() {
                moved = true;
                handle_event(node, chain, event)?;
            }
        }
        if !moved && a.engine.is_idle() && b.engine.is_idle() {
            quiet += 1;
        } else {
            quiet = 0;
        }
        if !moved {
            // Wait up to 1 ms for a shard to write to a connection.
            a.engine.wait_ready_connection(Duration::from_millis(1));
        }
    }
    Ok(())
}

/// Mines `blocks` blocks (the mempool goes into the first) and gives them to both engines.
fn mine(a: &mut Node, b: &mut Node, chain: &mut Chain, blocks: u32) -> Result<(), Box<dyn Error>> {
    for _ in 0..blocks {
        chain.height += 1;
        let txdata: Vec<(u32, Transaction)> = chain
            .mempool
            .drain(..)
            .enumerate()
            .map(|(i, tx)| (i as u32 + 1, tx))
            .collect();
        for node in [&*a, &*b] {
            node.engine.transactions_confirmed(chain.height, &txdata)?;
            node.engine
                .best_block_updated(chain.height, block_hash(chain.height))?;
        }
        settle(a, b, chain)?;
    }
    Ok(())
}

/// `from` pays `to` `amount_msat` over their channel: `to` makes the invoice (hash and
/// secret) from a preimage only it knows, and claims the payment when it arrives.
fn pay(
    from: &mut Node,
    to: &mut Node,
    chain: &mut Chain,
    amount_msat: u64,
    tag: &str,
) -> Result<(), Box<dyn Error>> {
    // Made up for the example: use 32 bytes from a cryptographic RNG.
    let preimage = PaymentPreimage(sha256::Hash::hash(tag.as_bytes()).to_byte_array());
    let (payment_hash, payment_secret) = to
        .engine
        .create_inbound_payment(preimage, Some(amount_msat))?;
    to.preimages.insert(payment_hash, preimage);
    let scid = from.ready.ok_or("no channel ready")?;
    let route = Route {
        hops: vec![RouteHop {
            node_id: to.id,
            short_channel_id: scid,
            fee_msat: amount_msat, // the last hop: the amount delivered
            cltv_expiry_delta: 50, // at least the payee's min_final_cltv_expiry_delta (42)
        }],
    };
    println!("{} pays {} {amount_msat} msat", from.name, to.name);
    // The payment id is ours to choose (one per payment): here the hash.
    from.engine.send_payment(
        &route,
        payment_hash,
        payment_secret,
        PaymentId(payment_hash.0),
    )?;
    settle(from, to, chain)
}

/// The node's balance in its one channel.
fn balance(node: &Node) -> Result<u64, Box<dyn Error>> {
    let channels = node.engine.list_channels()?;
    let channel = channels.first().ok_or("no channel")?;
    let b = channel.balances;
    println!(
        "{}: balance {} msat (peer {} msat, can send {} msat, can receive {} msat)",
        node.name,
        b.to_local_msat,
        b.to_remote_msat,
        b.outbound_capacity_msat,
        b.inbound_capacity_msat
    );
    Ok(b.to_local_msat)
}

/// The whole run: start, connect, open, fund, confirm, pay each way, read the balances.
pub fn run() -> Result<Summary, Box<dyn Error>> {
    let mut chain = Chain {
        height: 100,
        mempool: Vec::new(),
    };
    let mut alice = start("alice", 0x11, 1, &chain)?;
    let mut bob = start("bob", 0x22, 7, &chain)?;

    // Connect: Alice dials Bob; the three handshake acts cross as bytes, then the engines'
    // encrypted init messages.
    let act_one = alice.engine.new_outbound_connection(alice.conn, bob.id)?;
    bob.engine.new_inbound_connection(bob.conn)?;
    let act_two = bob.engine.handle_bytes(bob.conn, &act_one)?;
    let act_three = alice.engine.handle_bytes(alice.conn, &act_two)?;
    bob.engine.handle_bytes(bob.conn, &act_three)?;
    settle(&mut alice, &mut bob, &mut chain)?;

    // Open the channel; funding happens in handle_event (FundingGenerationReady).
    let feerate_per_kw = 2500;
    alice
        .engine
        .create_channel(bob.id, CHANNEL_SAT, 0, 1, feerate_per_kw)?;
    settle(&mut alice, &mut bob, &mut chain)?;
    if chain.mempool.is_empty() {
        return Err("the funding transaction was not broadcast".into());
    }
    mine(&mut alice, &mut bob, &mut chain, 3)?; // the default minimum depth is 3
    if alice.ready.is_none() || bob.ready.is_none() {
        return Err("the channel is not ready on both sides".into());
    }

    pay(
        &mut alice,
        &mut bob,
        &mut chain,
        ALICE_PAYS_MSAT,
        "alice pays bob",
    )?;
    pay(
        &mut bob,
        &mut alice,
        &mut chain,
        BOB_PAYS_MSAT,
        "bob pays alice",
    )?;

    let summary = Summary {
        alice_msat: balance(&alice)?,
        bob_msat: balance(&bob)?,
        payments_sent: alice.sent + bob.sent,
        payments_claimed: alice.claimed + bob.claimed,
    };
    for node in [alice, bob] {
        let report = node.engine.shutdown(Duration::from_secs(5));
        if !report.events.is_empty() {
            println!("{}: {} events not drained", node.name, report.events.len());
        }
    }
    Ok(summary)
}

fn main() -> Result<(), Box<dyn Error>> {
    let summary = run()?;
    println!(
        "done: {} payments sent, {} claimed; alice {} msat, bob {} msat",
        summary.payments_sent, summary.payments_claimed, summary.alice_msat, summary.bob_msat
    );
    Ok(())
}
