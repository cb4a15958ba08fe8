//! The control interface refuses at call time what the engine refuses at call time, as an
//! error whose text names the value and the limit: a channel value outside the limits, an
//! unknown first hop, an amount below the first hop's `htlc_minimum_msat` or above what the
//! channel can send, and a payment id already used (in flight, completed, and after a
//! restart of the payer). Each refusal is checked twice: its text names the value and the
//! limit, and its typed `data` (`kind`, `reason`, the value and the limit as numbers) is
//! exactly what the engine's typed error holds.

mod daemon_support;

use bitcoin::address::NetworkUnchecked;
use bitcoin::consensus::encode::deserialize;
use bitcoin::{Address, Transaction};
use daemon_support::{wait_for, DaemonProcess};
use lnshard_testkit::chain::ValidatingChain;
use serde_json::{json, Value};

fn feed(chain: &ValidatingChain, nodes: &mut [&mut DaemonProcess]) {
    for node in nodes.iter_mut() {
        for height in node.fed_height + 1..=chain.height() {
            let block = chain.block(height).expect("a block").clone();
            node.feed_block(&block, height);
        }
    }
}

fn has_event(node: &DaemonProcess, seen: &mut Vec<Value>, kind: &str, hash: &str) -> bool {
    if let Some(events) = node.call("events", json!({}))["events"].as_array() {
        seen.extend(events.iter().cloned());
    }
    seen.iter()
        .any(|e| e["type"] == kind && e["payment_hash"] == hash)
}

#[track_caller]
fn refused(result: Result<Value, String>, needles: &[&str]) -> String {
    let e = result.expect_err("refused at call time");
    for needle in needles {
        assert!(e.contains(needle), "{e} names {needle:?}");
    }
    e
}

/// The refusal's typed `data` (the JSON-RPC error object is the error's text).
#[track_caller]
fn data(error: &str) -> Value {
    let error: Value = serde_json::from_str(error).expect("a JSON-RPC error object");
    assert_eq!(error["code"], -32000, "{error}");
    error["data"].clone()
}

fn pay(
    node: &DaemonProcess,
    hop: &str,
    scid: &Value,
    amount: u64,
    invoice: &Value,
    id: &str,
) -> Result<Value, String> {
    node.try_call(
        "pay",
        json!({
            "route": [{"node_id": hop, "short_channel_id": scid,
                       "fee_msat": amount, "cltv_expiry_delta": 42}],
            "payment_hash": invoice["payment_hash"],
            "payment_secret": invoice["payment_secret"],
            "payment_id": id,
        }),
    )
}

#[test]
fn the_rpc_refuses_bad_channels_first_hops_amounts_and_used_payment_ids() {
    let mut chain = ValidatingChain::new();
    let mut a = DaemonProcess::start("refuse-a", &[]);
    let mut b = DaemonProcess::start("refuse-b", &[]);
    let b_id = b.node_id.to_string();
    let address = a.call("new_address", json!({}))["address"]
        .as_str()
        .expect("an address")
        .parse::<Address<NetworkUnchecked>>()
        .expect("an address")
        .require_network(bitcoin::Network::Regtest)
        .expect("regtest");
    chain.fund(address.script_pubkey(), 2_000_000);
    feed(&chain, &mut [&mut a, &mut b]);
    a.call(
        "connect",
        json!({"node_id": b_id, "address": b.listen.to_string()}),
    );
    wait_for(10, "connected", || {
        let peers = b.call("list_peers", json!({}));
        (peers.as_array().is_some_and(|p| !p.is_empty())).then_some(())
    });

    // Channel values outside the limits: nothing is created.
    let e = refused(
        a.try_call("open_channel", json!({"node_id": b_id, "amount_sat": 100})),
        &["100 sat", "1000 sat"],
    );
    assert_eq!(
        data(&e),
        json!({"kind": "channel_value", "reason": "below_minimum",
               "funding_satoshis": 100, "min_satoshis": 1000})
    );
    let e = refused(
        a.try_call(
            "open_channel",
            json!({"node_id": b_id, "amount_sat": 100_000, "push_msat": 100_000_001u64}),
        ),
        &["100000001 msat", "100000000 msat"],
    );
    assert_eq!(
        data(&e),
        json!({"kind": "channel_value", "reason": "push_above_value",
               "push_msat": 100_000_001u64, "value_msat": 100_000_000u64})
    );
    assert_eq!(a.call("list_channels", json!({})), json!([]));

    a.call(
        "open_channel",
        json!({"node_id": b_id, "amount_sat": 1_000_000}),
    );
    let funding = wait_for(20, "the funding transaction", || {
        a.call("broadcasts", json!({}))["transactions"]
            .as_array()
            .and_then(|t| t.first().cloned())
    });
    let tx: Transaction = deserialize(&hex::decode(funding.as_str().expect("hex")).expect("hex"))
        .expect("a transaction");
    chain.submit(tx).expect("the chain takes it");
    chain.mine(6);
    feed(&chain, &mut [&mut a, &mut b]);
    wait_for(20, "a usable channel", || {
        let usable = |n: &DaemonProcess| n.call("list_channels", json!({}))[0]["usable"] == true;
        (usable(&a) && usable(&b)).then_some(())
    });
    let scid = a.call("list_channels", json!({}))[0]["short_channel_id"].clone();
    assert!(scid.is_string(), "{scid}");

    let invoice = b.call("new_invoice", json!({"amount_msat": 50_000, "hold": true}));
    let hash = invoice["payment_hash"]
        .as_str()
        .expect("a hash")
        .to_string();
    let id = "ab".repeat(32);

    // An unknown first hop, amounts the first hop cannot carry.
    let e = refused(
        pay(&a, &b_id, &json!("1x2x3"), 50_000, &invoice, &id),
        &["1x2x3"],
    );
    assert_eq!(
        data(&e),
        json!({"kind": "unknown_short_channel_id", "short_channel_id": "1x2x3"})
    );
    let e = refused(
        pay(&a, &b_id, &scid, 0, &invoice, &id),
        &["0 msat", "htlc_minimum_msat 1"],
    );
    assert_eq!(
        data(&e),
        json!({"kind": "first_hop", "reason": "below_htlc_minimum", "short_channel_id": scid,
               "amount_msat": 0, "htlc_minimum_msat": 1})
    );
    let e = refused(
        pay(&a, &b_id, &scid, 2_000_000_000, &invoice, &id),
        &["2000000000 msat", "outbound capacity"],
    );
    let typed = data(&e);
    let capacity = typed["outbound_capacity_msat"]
        .as_u64()
        .expect("the limit, a number");
    assert!(capacity > 0 && capacity < 1_000_000_000, "{typed}");
    assert!(e.contains(&format!("capacity {capacity} msat")), "{e}");
    assert_eq!(
        typed,
        json!({"kind": "first_hop", "reason": "above_outbound_capacity",
               "short_channel_id": scid, "amount_msat": 2_000_000_000u64,
               "outbound_capacity_msat": capacity})
    );

    // The id is still free: pay, and while in flight the id is refused.
    pay(&a, &b_id, &scid, 50_000, &invoice, &id).expect("pays");
    let e = refused(
        pay(&a, &b_id, &scid, 50_000, &invoice, &id),
        &[&id, "in flight"],
    );
    assert_eq!(
        data(&e),
        json!({"kind": "duplicate_payment", "payment_id": id})
    );
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());
    wait_for(20, "bob's payment_claimable", || {
        has_event(&b, &mut b_seen, "payment_claimable", &hash).then_some(())
    });
    b.call("claim", json!({"payment_hash": hash}));
    wait_for(20, "alice's payment_sent", || {
        has_event(&a, &mut a_seen, "payment_sent", &hash).then_some(())
    });
    let completed = a.fed_height;
    let until = (completed + lightning_core::node::DEFAULT_PAYMENT_ID_RETENTION_BLOCKS).to_string();
    let e = refused(
        pay(&a, &b_id, &scid, 50_000, &invoice, &id),
        &[&id, &until, "payment_id_retention_blocks"],
    );
    let recently_used = json!({"kind": "payment_id_recently_used", "payment_id": id,
        "completed_height": completed,
        "retained_until_height": completed + lightning_core::node::DEFAULT_PAYMENT_ID_RETENTION_BLOCKS});
    assert_eq!(data(&e), recently_used);

    // Alice restarts: the id is still refused.
    let a_listen = a.listen.to_string();
    let dir = a.stop();
    let a = DaemonProcess::start_in(dir, &["--listen", &a_listen]);
    let e = refused(pay(&a, &b_id, &scid, 50_000, &invoice, &id), &[&id, &until]);
    assert_eq!(data(&e), recently_used, "the same refusal after a restart");
    a.finish();
    b.finish();
}
