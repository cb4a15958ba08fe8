//! `lnshard node` against a real LDK node over TCP: LDK's own `PeerManager` and BOLT 8
//! (`lightning-net-tokio`) dial the daemon; a channel is opened each way, a payment made
//! each way, the connection dropped and re-established (`channel_reestablish`), another
//! payment, and a cooperative close. The test's fake chain mines what either side
//! broadcasts and feeds every block to both (to the daemon through `block_connected`).

mod daemon_support;
mod ldk_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::consensus::encode::deserialize;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bitcoin::{Amount, CompressedPublicKey, ScriptBuf, Transaction, TxOut};
use daemon_support::DaemonProcess;
use ldk_support::net::{connect, peer_manager, LdkPeerManager};
use ldk_support::{FakeChain, Hop, LdkEvent, LdkNode, FINAL_CLTV_EXPIRY_DELTA};
use serde_json::{json, Value};

const CHANNEL_SAT: u64 = 1_000_000;
const PAYMENT_MSAT: u64 = 5_000_000;

struct World {
    rt: tokio::runtime::Runtime,
    chain: FakeChain,
    ldk: LdkNode,
    pm: Arc<LdkPeerManager>,
    node: DaemonProcess,
    ldk_events: Vec<LdkEvent>,
    node_events: Vec<Value>,
}

impl World {
    /// Lets both sides run until `done` holds (LDK's events and the daemon's are collected
    /// on the way), up to 60 s.
    fn until(&mut self, what: &str, mut done: impl FnMut(&mut World) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.pm.process_events();
            self.ldk_events.extend(self.ldk.drain_events());
            let events = self.node.call("events", json!({}));
            if let Some(list) = events["events"].as_array() {
                self.node_events.extend(list.iter().cloned());
            }
            if done(self) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\nLDK events: {:?}\nnode events: {:?}\nnode log:\n{}",
                self.ldk_events,
                self.node_events,
                self.node.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Mines `txs` in one block, then `extra` empty blocks; feeds them to both.
    fn mine(&mut self, txs: Vec<Transaction>, extra: u32) {
        self.chain.mine(txs);
        self.chain.mine_empty(extra);
        self.ldk.sync_to(&self.chain);
        for height in self.node.fed_height + 1..=self.chain.height() {
            let block = self.chain.block(height).expect("mined").clone();
            self.node.feed_block(&block, height);
        }
    }

    /// Transactions the daemon wants broadcast.
    fn node_broadcasts(&self) -> Vec<Transaction> {
        let r = self.node.call("broadcasts", json!({}));
        r["transactions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str())
                    .map(|t| deserialize(&hex::decode(t).expect("hex")).expect("a transaction"))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn node_event(&self, kind: &str, key: &str, value: &str) -> bool {
        self.node_events
            .iter()
            .any(|e| e["type"] == kind && e[key].as_str() == Some(value))
    }

    fn node_channel(&self, channel_id: &str) -> Option<Value> {
        let list = self.node.call("list_channels", json!({}));
        list.as_array()?
            .iter()
            .find(|c| c["channel_id"] == channel_id)
            .cloned()
    }

    fn connected(&self) -> bool {
        let peers = self.node.call("list_peers", json!({}));
        let ldk_id = self.ldk.node_id.to_string();
        self.pm.peer_by_node_id(&self.node.node_id).is_some()
            && peers
                .as_array()
                .is_some_and(|p| p.iter().any(|x| x["node_id"] == ldk_id.as_str()))
    }
}

/// A P2WPKH output of `key` worth `sat`, in a transaction mined on the fake chain: the
/// UTXO the daemon's `fund` spends.
fn utxo_tx(key: &SecretKey, sat: u64) -> Transaction {
    let secp = Secp256k1::new();
    let pk = CompressedPublicKey(PublicKey::from_secret_key(&secp, key));
    Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![bitcoin::TxIn {
            previous_output: bitcoin::OutPoint {
                txid: bitcoin::Txid::from_byte_array([7; 32]),
                vout: 0,
            },
            ..Default::default()
        }],
        output: vec![TxOut {
            value: Amount::from_sat(sat),
            script_pubkey: ScriptBuf::new_p2wpkh(&pk.wpubkey_hash()),
        }],
    }
}

#[test]
fn ldk_over_tcp_opens_both_ways_pays_both_ways_reconnects_and_closes() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut chain = FakeChain::new();
    chain.mine_empty(101);
    let ldk = LdkNode::new("LDK", 1, LdkNode::config(false), &chain);
    let pm = peer_manager(&ldk);
    let node = DaemonProcess::start("ldk", &[]);
    let mut w = World {
        rt,
        chain,
        ldk,
        pm,
        node,
        ldk_events: Vec::new(),
        node_events: Vec::new(),
    };
    // The daemon learns the chain so far.
    for height in 1..=w.chain.height() {
        let block = w.chain.block(height).expect("mined").clone();
        w.node.feed_block(&block, height);
    }

    // LDK dials the daemon over TCP with its own PeerManager and BOLT 8.
    let (pm, id, addr) = (w.pm.clone(), w.node.node_id, w.node.listen);
    assert!(w.rt.block_on(connect(&pm, id, addr)), "TCP connect");
    w.until("the connection", |w| w.connected());
    let ldk_id = w.ldk.node_id.to_string();

    // 1. The daemon opens a channel to LDK, funded from a UTXO it is told about.
    let key = SecretKey::from_slice(&[0x42; 32]).expect("valid key");
    let utxo = utxo_tx(&key, 3_000_000);
    w.mine(vec![utxo.clone()], 0);
    let open = w.node.call(
        "open_channel",
        json!({"node_id": ldk_id, "amount_sat": CHANNEL_SAT, "push_msat": 0}),
    );
    let temp = open["temporary_channel_id"]
        .as_str()
        .expect("temp id")
        .to_string();
    let fund = w.node.call(
        "fund",
        json!({
            "temporary_channel_id": temp,
            "outpoint": format!("{}:0", utxo.compute_txid()),
            "amount_sat": 3_000_000,
            "secret_key": hex::encode(key.secret_bytes()),
        }),
    );
    assert!(fund["status"].is_string(), "{fund}");
    let mut funding = Vec::new();
    w.until("the daemon's funding broadcast", |w| {
        funding.extend(w.node_broadcasts());
        !funding.is_empty()
    });
    let funding_tx = funding.remove(0);
    assert_eq!(
        funding_tx.input[0].previous_output.txid,
        utxo.compute_txid()
    );
    w.mine(vec![funding_tx.clone()], 6);
    let ch1 = lnshard::core::types::ChannelId::from_funding_outpoint(&funding_tx.compute_txid(), 0)
        .to_string();
    w.until("channel 1 usable on both sides", |w| {
        w.node_channel(&ch1).is_some_and(|c| c["usable"] == true)
            && w.ldk
                .channels()
                .iter()
                .any(|c| c.is_usable && !c.is_outbound)
    });

    // 2. LDK opens a channel to the daemon.
    w.ldk
        .create_channel(w.node.node_id, CHANNEL_SAT, 0)
        .expect("LDK create_channel");
    let mut ldk_funding = Vec::new();
    w.until("LDK's funding broadcast", |w| {
        ldk_funding.extend(w.ldk.broadcaster.take());
        !ldk_funding.is_empty()
    });
    let ldk_funding_tx = ldk_funding.remove(0);
    w.mine(vec![ldk_funding_tx.clone()], 6);
    let ch2 =
        lnshard::core::types::ChannelId::from_funding_outpoint(&ldk_funding_tx.compute_txid(), 0)
            .to_string();
    w.until("channel 2 usable on both sides", |w| {
        w.node_channel(&ch2).is_some_and(|c| c["usable"] == true)
            && w.ldk.channels().iter().filter(|c| c.is_usable).count() == 2
    });

    // 3. The daemon pays LDK over channel 1.
    let pay_ldk = |w: &mut World, n: u64| {
        let (hash, secret) = w.ldk.create_inbound_payment(PAYMENT_MSAT + n);
        let scid = w.node_channel(&ch1).expect("channel 1")["short_channel_id"].clone();
        w.node.call(
            "pay",
            json!({
                "route": [{"node_id": ldk_id, "short_channel_id": scid, "fee_msat": PAYMENT_MSAT + n, "cltv_expiry_delta": FINAL_CLTV_EXPIRY_DELTA}],
                "payment_hash": hash.to_string(),
                "payment_secret": secret.to_string(),
            }),
        );
        let mut preimage = None;
        w.until("LDK's PaymentClaimable", |w| {
            preimage = w.ldk_events.iter().find_map(|e| match e {
                LdkEvent::PaymentClaimable {
                    payment_hash,
                    preimage,
                    ..
                } if *payment_hash == hash => *preimage,
                _ => None,
            });
            preimage.is_some()
        });
        w.ldk.claim_funds(preimage.expect("LDK knows its preimage"));
        let hash_text = hash.to_string();
        w.until("the daemon's payment_sent", |w| {
            w.node_event("payment_sent", "payment_hash", &hash_text)
        });
    };
    pay_ldk(&mut w, 0);

    // 4. LDK pays the daemon over channel 2: the first payment is claimed by the node itself
    // (its invoice's preimage is the node's), the later ones are to hold invoices, claimed
    // with `claim`.
    let pay_node = |w: &mut World, n: u64| {
        let hold = n > 0;
        let invoice = w.node.call(
            "new_invoice",
            json!({"amount_msat": PAYMENT_MSAT + n, "hold": hold}),
        );
        let hash_text = invoice["payment_hash"].as_str().expect("hash").to_string();
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&hash_text, &mut hash).expect("hex");
        let mut secret = [0u8; 32];
        hex::decode_to_slice(
            invoice["payment_secret"].as_str().expect("secret"),
            &mut secret,
        )
        .expect("hex");
        let scid = w
            .ldk
            .channels()
            .iter()
            .find(|c| c.is_outbound && c.is_usable)
            .and_then(|c| c.short_channel_id)
            .expect("LDK's outbound channel has an scid");
        w.ldk
            .send_payment_along(
                &[Hop {
                    node_id: w.node.node_id,
                    short_channel_id: scid,
                    fee_msat: PAYMENT_MSAT + n,
                    cltv_expiry_delta: FINAL_CLTV_EXPIRY_DELTA,
                }],
                lnshard::core::types::PaymentHash(hash),
                lnshard::core::types::PaymentSecret(secret),
            )
            .expect("LDK send_payment");
        w.until("the daemon's payment_claimable", |w| {
            w.node_event("payment_claimable", "payment_hash", &hash_text)
        });
        if hold {
            w.node.call("claim", json!({"payment_hash": hash_text}));
        }
        w.until("LDK's PaymentSent", |w| {
            w.ldk_events.iter().any(|e| matches!(e, LdkEvent::PaymentSent { payment_hash, .. } if payment_hash.0 == hash))
        });
    };
    pay_node(&mut w, 0);

    // 5. The connection drops; LDK redials; channel_reestablish resumes both channels.
    w.pm.disconnect_by_node_id(w.node.node_id);
    w.until("the daemon to see the disconnection", |w| {
        let peers = w.node.call("list_peers", json!({}));
        peers.as_array().is_some_and(|p| p.is_empty())
    });
    let (pm, id, addr) = (w.pm.clone(), w.node.node_id, w.node.listen);
    assert!(w.rt.block_on(connect(&pm, id, addr)), "TCP reconnect");
    w.until("both channels usable again", |w| {
        w.connected()
            && w.ldk.channels().iter().filter(|c| c.is_usable).count() == 2
            && w.node_channel(&ch1).is_some_and(|c| c["usable"] == true)
            && w.node_channel(&ch2).is_some_and(|c| c["usable"] == true)
    });
    pay_ldk(&mut w, 1);
    pay_node(&mut w, 1);

    // 5b. The host's fee estimates reach the daemon (`set_fee_estimates`): it funded channel
    // 1 (no anchors), so it raises that channel's feerate to `normal` with `update_fee`, LDK
    // accepts it, and payments go on. Channel 2, LDK's, keeps LDK's feerate.
    let ldk_feerate = |w: &World, outbound: bool| {
        w.ldk
            .channels()
            .iter()
            .find(|c| c.is_outbound == outbound)
            .and_then(|c| c.feerate_sat_per_1000_weight)
    };
    assert_eq!(
        ldk_feerate(&w, false),
        Some(1000),
        "channel 1 opened at 1000"
    );
    let set = w.node.call(
        "set_fee_estimates",
        json!({"urgent": 5000, "normal": 2000, "background": 1000}),
    );
    assert_eq!(set["normal"], 2000, "{set}");
    w.until("LDK's copy of channel 1 at the new feerate", |w| {
        ldk_feerate(w, false) == Some(2000)
    });
    assert_eq!(ldk_feerate(&w, true), Some(1000), "channel 2 unchanged");
    pay_ldk(&mut w, 2);
    pay_node(&mut w, 2);

    // 6. The daemon closes channel 1 cooperatively; both broadcast the closing transaction.
    w.node.call("close", json!({"channel_id": ch1}));
    let mut closing = Vec::new();
    w.until("the closing transaction", |w| {
        closing.extend(w.node_broadcasts());
        closing
            .iter()
            .any(|tx: &Transaction| tx.input[0].previous_output.txid == funding_tx.compute_txid())
            && w.ldk
                .broadcaster
                .all()
                .iter()
                .any(|tx| tx.input[0].previous_output.txid == funding_tx.compute_txid())
    });
    let close_tx = closing
        .into_iter()
        .find(|tx| tx.input[0].previous_output.txid == funding_tx.compute_txid())
        .expect("found above");
    w.mine(vec![close_tx], 6);
    let ch1_check = ch1.clone();
    w.until("channel 1 closed on both sides", |w| {
        w.node_event("channel_closed", "channel_id", &ch1_check)
            && w.ldk_events.iter().any(|e| matches!(e, LdkEvent::ChannelClosed { channel_id, .. } if channel_id.to_string() == ch1_check))
    });
    assert!(
        w.ldk.channels().iter().filter(|c| c.is_usable).count() == 1,
        "channel 2 stays open"
    );
    let World { node, .. } = w;
    let dir = node.stop();
    if std::env::var_os("KEEP_NODE_DIR").is_none() {
        let _ = std::fs::remove_dir_all(dir);
    }
}
