//! On-chain enforcement through `lnshard node` (issue 14): `--sweep-address` checked
//! against the network and given to the engine, so the node's own claim pays it;
//! `list_balances` per channel as the channel goes from open to force-closed on chain to
//! swept; `on_chain` events; `block_disconnected` rolling the monitor back in a reorg.

mod daemon_support;

use std::process::Command;

use bitcoin::consensus::encode::deserialize;
use bitcoin::{Address, Transaction};
use daemon_support::peer::key;
use daemon_support::{temp_dir, wait_for, DaemonProcess};
use serde_json::{json, Value};

/// BIP 173's P2WPKH example on regtest (the daemon's default network), and on mainnet.
const SWEEP: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
const SWEEP_MAINNET: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";

fn sweep_script() -> bitcoin::ScriptBuf {
    SWEEP
        .parse::<Address<_>>()
        .expect("an address")
        .assume_checked()
        .script_pubkey()
}

/// A made-up 80-byte header, distinct per height and branch.
fn header(height: u32, branch: u8) -> String {
    let mut h = [0u8; 80];
    h[..4].copy_from_slice(&height.to_le_bytes());
    h[4] = branch;
    hex::encode(h)
}

fn feed(nodes: &[&DaemonProcess], height: u32, branch: u8, txs: &[String]) {
    for n in nodes {
        n.call(
            "block_connected",
            json!({"height": height, "header": header(height, branch), "transactions": txs}),
        );
    }
}

fn broadcasts(node: &DaemonProcess) -> Vec<Transaction> {
    node.call("broadcasts", json!({}))["transactions"]
        .as_array()
        .expect("transactions")
        .iter()
        .filter_map(Value::as_str)
        .map(|h| deserialize(&hex::decode(h).expect("hex")).expect("a transaction"))
        .collect()
}

/// The node's balances of its one channel: (type, amount) each.
fn balances(node: &DaemonProcess) -> Vec<(String, u64)> {
    let v = node.call("list_balances", json!({}));
    let channels = v["channels"].as_array().expect("channels");
    channels
        .iter()
        .flat_map(|c| c["balances"].as_array().cloned().unwrap_or_default())
        .map(|b| {
            (
                b["type"].as_str().unwrap_or_default().to_string(),
                b["amount_sat"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn phases(node: &DaemonProcess) -> Vec<String> {
    node.call("list_channels", json!({}))
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["phase"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Collects `on_chain` events of `node` until `kind` comes.
fn wait_on_chain(node: &DaemonProcess, seen: &mut Vec<Value>, kind: &str) -> Value {
    wait_for(20, &format!("an on_chain {kind} event"), || {
        let events = node.call("events", json!({}));
        for e in events["events"].as_array().cloned().unwrap_or_default() {
            if e["type"] == "on_chain" {
                seen.push(e);
            }
        }
        seen.iter().find(|e| e["kind"] == kind).cloned()
    })
}

#[test]
fn a_sweep_address_of_another_network_or_a_bad_feerate_stops_the_start() {
    for (flag, value, needle) in [
        (
            "--sweep-address",
            SWEEP_MAINNET,
            "is not an address of the node's network (regtest)",
        ),
        (
            "--sweep-address",
            "6a0100",
            "is not a P2PKH, P2SH, P2WPKH, P2WSH or P2TR output script",
        ),
        (
            "--claim-feerate-per-kw",
            "100",
            "claim feerate_per_kw 100 outside 253..=250000",
        ),
    ] {
        let dir = temp_dir("onchain-refused");
        let out = Command::new(env!("CARGO_BIN_EXE_lnshard"))
            .args([
                "node",
                "--listen",
                "127.0.0.1:0",
                "--control",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(&dir)
            .args([flag, value])
            .output()
            .expect("the lnshard binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} {value} refused: {stderr}");
        assert!(stderr.contains(needle), "{needle:?} missing from {stderr}");
        assert!(!dir.exists(), "nothing written before the refusal");
    }
}

#[test]
fn balances_on_chain_events_reorg_and_the_sweep_to_the_configured_address() {
    let a = DaemonProcess::start(
        "onchain-a",
        &["--sweep-address", SWEEP, "--claim-feerate-per-kw", "2000"],
    );
    let b = DaemonProcess::start("onchain-b", &[]);
    assert!(a.log().contains("on-chain claims pay the sweep script"));
    // No channel: nothing owed.
    assert_eq!(
        a.call("list_balances", json!({})),
        json!({"total_sat": 0, "channels": []})
    );

    a.call(
        "connect",
        json!({"node_id": b.node_id.to_string(), "address": b.listen.to_string()}),
    );
    let lists = |n: &DaemonProcess, peer: &bitcoin::secp256k1::PublicKey| {
        n.call("list_peers", json!({}))
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x["node_id"] == peer.to_string().as_str()))
    };
    wait_for(10, "both connected", || {
        (lists(&a, &b.node_id) && lists(&b, &a.node_id)).then_some(())
    });
    let open = a.call(
        "open_channel",
        json!({"node_id": b.node_id.to_string(), "amount_sat": 1_000_000}),
    );
    let temp = open["temporary_channel_id"].as_str().expect("temporary id");
    a.call(
        "fund",
        json!({
            "temporary_channel_id": temp,
            "outpoint": format!("{}:0", "07".repeat(32)),
            "amount_sat": 3_000_000,
            "secret_key": hex::encode(key(0x42, 1).secret_bytes()),
        }),
    );
    wait_for(20, "the channel funded on both sides", || {
        let pending = |n: &DaemonProcess| phases(n).iter().any(|p| p == "awaiting_channel_ready");
        (pending(&a) && pending(&b)).then_some(())
    });
    let funding = wait_for(10, "the funding transaction to broadcast", || {
        broadcasts(&a).into_iter().find(|tx| {
            tx.output
                .iter()
                .any(|o| o.value.to_sat() == 1_000_000 && o.script_pubkey.is_p2wsh())
        })
    });
    // Funded: a close now would give A (the funder) its whole balance; B nothing yet.
    assert_eq!(
        balances(&a),
        vec![("claimable_on_channel_close".to_string(), 1_000_000)]
    );
    feed(
        &[&a, &b],
        1,
        0,
        &[bitcoin::consensus::encode::serialize_hex(&funding)],
    );

    // A force-closes: its commitment confirms at height 2.
    let channel_id = a.call("list_channels", json!({}))[0]["channel_id"]
        .as_str()
        .expect("a channel id")
        .to_string();
    a.call("force_close", json!({ "channel_id": channel_id }));
    let commitment = wait_for(10, "A's commitment to broadcast", || {
        broadcasts(&a).into_iter().find(|tx| {
            tx.input
                .iter()
                .any(|i| i.previous_output.txid == funding.compute_txid())
        })
    });
    let commitment_hex = bitcoin::consensus::encode::serialize_hex(&commitment);
    feed(&[&a, &b], 2, 0, std::slice::from_ref(&commitment_hex));
    let mut seen = Vec::new();
    let spent = wait_on_chain(&a, &mut seen, "funding_spent");
    assert_eq!(spent["spend"], "holder");
    assert_eq!(spent["txid"], commitment.compute_txid().to_string());
    assert_eq!(spent["channel_id"], channel_id.as_str());
    let confirmed = balances(&a);
    assert!(
        confirmed
            .iter()
            .any(|(t, v)| t == "claimable_awaiting_confirmations" && *v > 900_000),
        "to_local awaits its delay: {confirmed:?}"
    );

    // A reorg takes the commitment out; the monitor rolls back, then the commitment
    // confirms again on the new branch at height 2.
    // The fork point is block 1 of branch 0.
    let fork: bitcoin::block::Header =
        deserialize(&hex::decode(header(1, 0)).expect("hex")).expect("a header");
    let fork_hash = fork.block_hash().to_string();
    let r = a.call(
        "block_disconnected",
        json!({"height": 2, "hash": fork_hash}),
    );
    assert_eq!(r["disconnected_from"], 2);
    assert_eq!(r["best_height"], 1);
    assert_eq!(r["best_hash"], fork_hash.as_str());
    b.call(
        "block_disconnected",
        json!({"height": 2, "hash": fork_hash}),
    );
    let e = a
        .try_call(
            "block_disconnected",
            json!({"height": 0, "hash": fork_hash}),
        )
        .expect_err("the genesis block stays");
    assert!(e.contains("outside 1..="), "{e}");
    let e = a
        .try_call("block_disconnected", json!({"height": 2}))
        .expect_err("the fork point's hash is required");
    assert!(e.contains("hash"), "{e}");
    let rolled_back = balances(&a);
    assert_ne!(rolled_back, confirmed, "the reorg changed what is owed");
    feed(&[&a, &b], 2, 1, std::slice::from_ref(&commitment_hex));

    // The claim feerate can change while running.
    a.call("set_claim_feerate", json!({"feerate_per_kw": 3000}));

    // B imposed to_self_delay 144 on A's to_local: A sweeps it after that, to the address
    // given at start.
    let mut sweep = None;
    for height in 3..=160u32 {
        feed(&[&a, &b], height, 1, &[]);
        if let Some(tx) = broadcasts(&a).into_iter().find(|tx| {
            tx.input
                .iter()
                .any(|i| i.previous_output.txid == commitment.compute_txid())
        }) {
            sweep = Some((height, tx));
            break;
        }
    }
    let (swept_at, sweep) = sweep.expect("A swept its to_local");
    assert!(
        swept_at >= 2 + 144 - 1,
        "not before the CSV delay: {swept_at}"
    );
    assert_eq!(sweep.output.len(), 1);
    assert_eq!(
        sweep.output[0].script_pubkey,
        sweep_script(),
        "the claim pays --sweep-address"
    );
    let sweep_hex = bitcoin::consensus::encode::serialize_hex(&sweep);
    feed(&[&a, &b], swept_at + 1, 1, std::slice::from_ref(&sweep_hex));
    for height in swept_at + 2..swept_at + 8 {
        feed(&[&a, &b], height, 1, &[]);
    }
    let claimed = wait_on_chain(&a, &mut seen, "claim_confirmed");
    assert_eq!(claimed["txid"], sweep.compute_txid().to_string());
    assert_eq!(claimed["value_sat"], sweep.output[0].value.to_sat());
    wait_for(10, "nothing left to claim", || {
        balances(&a).is_empty().then_some(())
    });
    a.finish();
    b.finish();
}
