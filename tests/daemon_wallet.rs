//! The daemon's wallet end to end (issue 15, item 4) on the validating test chain: an
//! address from `new_address` is paid by a mined transaction fed with `block_connected`,
//! `wallet_balance` and `list_utxos` show it, `open_channel` is funded from the wallet (its
//! funding transaction's inputs pass libbitcoinconsensus and the chain's relay policy), the
//! channel confirms and opens, and `send` pays another node's wallet; every balance exact
//! to the satoshi after fees. And the daemon serves fee bumps from that wallet by itself: an
//! anchor commitment it force-closes below the mempool's floor goes out under `packages`
//! with a CPFP child of its wallet's coins (reserved meanwhile, every input through
//! libbitcoinconsensus), which the chain takes as a package and mines together.

mod daemon_support;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;

use bitcoin::address::NetworkUnchecked;
use bitcoin::consensus::encode::deserialize;
use bitcoin::{Address, OutPoint, ScriptBuf, Transaction, TxOut};
use daemon_support::{wait_for, DaemonProcess};
use lnshard_testkit::chain::ValidatingChain;
use serde_json::{json, Value};

fn new_address(node: &DaemonProcess) -> (String, ScriptBuf) {
    let address = node.call("new_address", json!({}))["address"]
        .as_str()
        .expect("an address")
        .to_string();
    let script = address
        .parse::<Address<NetworkUnchecked>>()
        .expect("an address")
        .require_network(bitcoin::Network::Regtest)
        .expect("a regtest address")
        .script_pubkey();
    (address, script)
}

fn confirmed(node: &DaemonProcess) -> u64 {
    node.call("wallet_balance", json!({}))["confirmed_sat"]
        .as_u64()
        .expect("confirmed_sat")
}

/// Feeds every block of `chain` the node has not seen.
fn feed(chain: &ValidatingChain, nodes: &mut [&mut DaemonProcess]) {
    for node in nodes.iter_mut() {
        for height in node.fed_height + 1..=chain.height() {
            let block = chain.block(height).expect("a block").clone();
            node.feed_block(&block, height);
        }
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

/// Every input of `tx` checked by libbitcoinconsensus against the outputs it spends.
fn verify(chain: &ValidatingChain, tx: &Transaction) {
    let prevouts: HashMap<OutPoint, TxOut> = tx
        .input
        .iter()
        .map(|i| {
            let prev = chain
                .get_tx(&i.previous_output.txid)
                .expect("the spent transaction is on the chain");
            (
                i.previous_output,
                prev.output[i.previous_output.vout as usize].clone(),
            )
        })
        .collect();
    tx.verify(|op| prevouts.get(op).cloned())
        .expect("every input passes libbitcoinconsensus");
}

fn fee_of(chain: &ValidatingChain, tx: &Transaction) -> u64 {
    let inputs: u64 = tx
        .input
        .iter()
        .map(|i| {
            chain
                .get_tx(&i.previous_output.txid)
                .expect("spent tx")
                .output[i.previous_output.vout as usize]
                .value
                .to_sat()
        })
        .sum();
    let outputs: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
    inputs - outputs
}

#[test]
fn the_wallet_receives_funds_a_channel_and_sends_exact_to_the_satoshi() {
    const FUNDS: u64 = 2_000_000;
    const CHANNEL: u64 = 1_000_000;
    const SENT: u64 = 300_000;
    let mut chain = ValidatingChain::new();
    let mut a = DaemonProcess::start("wallet-a", &[]);
    let mut b = DaemonProcess::start("wallet-b", &[]);
    assert!(a.dir.join("wallet").exists(), "the wallet file is created");

    // Fund an address of A's wallet with a mined transaction.
    let (_, script) = new_address(&a);
    let coin = chain.fund(script.clone(), FUNDS);
    feed(&chain, &mut [&mut a, &mut b]);
    assert_eq!(confirmed(&a), FUNDS);
    let utxos = a.call("list_utxos", json!({}))["utxos"].clone();
    assert_eq!(
        utxos,
        json!([{
            "outpoint": coin.to_string(),
            "amount_sat": FUNDS,
            "script_pubkey": script.to_hex_string(),
            "confirmation_height": chain.height(),
            "change": false,
            "reserved": false,
        }])
    );
    assert_eq!(confirmed(&b), 0);

    // Open a channel funded from the wallet.
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
    a.call(
        "open_channel",
        json!({"node_id": b.node_id.to_string(), "amount_sat": CHANNEL,
               "funding_feerate_per_kw": 1000}),
    );
    let funding = wait_for(20, "the wallet-funded transaction to broadcast", || {
        broadcasts(&a).into_iter().find(|tx| {
            tx.output
                .iter()
                .any(|o| o.value.to_sat() == CHANNEL && o.script_pubkey.is_p2wsh())
        })
    });
    assert_eq!(funding.input.len(), 1);
    assert_eq!(funding.input[0].previous_output, coin);
    verify(&chain, &funding);
    let funding_fee = fee_of(&chain, &funding);
    // At least 1,000 sat per 1,000 weight of the signed transaction, and not much more.
    let weight = funding.weight().to_wu();
    assert!(
        funding_fee >= weight && funding_fee <= weight + 10,
        "fee {funding_fee} for weight {weight}"
    );
    let change = FUNDS - CHANNEL - funding_fee;
    assert_eq!(funding.output.len(), 2);
    assert!(funding.output.iter().any(|o| o.value.to_sat() == change));
    let balance = a.call("wallet_balance", json!({}));
    assert_eq!(balance["confirmed_sat"], 0, "{balance}");
    assert_eq!(balance["trusted_pending_sat"], change, "{balance}");

    // The chain takes it (relay policy, libbitcoinconsensus) and the channel opens.
    chain
        .submit(funding.clone())
        .expect("the funding transaction enters the mempool");
    chain.mine(6);
    assert!(chain.confirmations(&funding.compute_txid()) >= 6);
    feed(&chain, &mut [&mut a, &mut b]);
    wait_for(20, "the channel open on both sides", || {
        let open = |n: &DaemonProcess| phases(n).iter().any(|p| p == "normal");
        (open(&a) && open(&b)).then_some(())
    });
    assert_eq!(confirmed(&a), change);
    let balance = a.call("wallet_balance", json!({}));
    assert_eq!(balance["trusted_pending_sat"], 0, "{balance}");

    // `send` pays B's wallet from A's change.
    let (b_address, _) = new_address(&b);
    let sent = a.call(
        "send",
        json!({"address": b_address, "amount_sat": SENT, "feerate_per_kw": 2000}),
    );
    let tx: Transaction =
        deserialize(&hex::decode(sent["transaction"].as_str().expect("transaction")).expect("hex"))
            .expect("a transaction");
    assert_eq!(sent["txid"], tx.compute_txid().to_string());
    verify(&chain, &tx);
    let send_fee = fee_of(&chain, &tx);
    assert_eq!(sent["fee_sat"], send_fee);
    assert!(send_fee >= tx.weight().to_wu() * 2, "fee {send_fee}");
    assert!(
        broadcasts(&a)
            .iter()
            .any(|t| t.compute_txid() == tx.compute_txid()),
        "send queues its transaction for broadcasts"
    );
    chain
        .submit(tx.clone())
        .expect("the send enters the mempool");
    chain.mine(1);
    feed(&chain, &mut [&mut a, &mut b]);
    assert_eq!(confirmed(&a), change - SENT - send_fee);
    assert_eq!(confirmed(&b), SENT);

    // A force-closes: after B's to_self_delay its to_local is swept into A's wallet (the
    // default sweep script), and the wallet's balance grows by exactly the claim's output.
    let before = confirmed(&a);
    let channel_id = a.call("list_channels", json!({}))[0]["channel_id"]
        .as_str()
        .expect("a channel id")
        .to_string();
    a.call("force_close", json!({ "channel_id": channel_id }));
    let funding_txid = funding.compute_txid();
    let commitment = wait_for(10, "A's commitment to broadcast", || {
        broadcasts(&a).into_iter().find(|tx| {
            tx.input
                .iter()
                .any(|i| i.previous_output.txid == funding_txid)
        })
    });
    verify(&chain, &commitment);
    chain
        .submit(commitment.clone())
        .expect("the commitment enters the mempool");
    chain.mine(1);
    feed(&chain, &mut [&mut a, &mut b]);
    let commitment_txid = commitment.compute_txid();
    let mut sweep = None;
    for _ in 0..200 {
        if let Some(tx) = broadcasts(&a).into_iter().find(|tx| {
            tx.input
                .iter()
                .any(|i| i.previous_output.txid == commitment_txid)
        }) {
            sweep = Some(tx);
            break;
        }
        chain.mine(1);
        feed(&chain, &mut [&mut a, &mut b]);
    }
    let sweep = sweep.expect("A swept its to_local");
    assert_eq!(sweep.output.len(), 1);
    verify(&chain, &sweep);
    let swept = sweep.output[0].value.to_sat();
    chain
        .submit(sweep.clone())
        .expect("the sweep enters the mempool");
    chain.mine(1);
    feed(&chain, &mut [&mut a, &mut b]);
    let coins = a.call("list_utxos", json!({}))["utxos"].clone();
    assert!(
        coins
            .as_array()
            .expect("utxos")
            .iter()
            .any(
                |c| c["outpoint"] == format!("{}:0", sweep.compute_txid()).as_str()
                    && c["amount_sat"] == swept
            ),
        "the sweep is the wallet's: {coins}"
    );
    assert_eq!(confirmed(&a), before + swept);

    // Refusals: another network's address, a zero amount.
    let err = a
        .try_call(
            "send",
            json!({"address": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
                   "amount_sat": 1000, "feerate_per_kw": 1000}),
        )
        .expect_err("a mainnet address is refused");
    assert!(err.contains("address"), "{err}");
    a.try_call(
        "send",
        json!({"address": b_address, "amount_sat": 0, "feerate_per_kw": 1000}),
    )
    .expect_err("zero is refused");

    // The wallet is kept in the data directory (0600) across a restart.
    let dir = a.stop();
    let mode = std::fs::metadata(dir.join("wallet"))
        .expect("the wallet file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let a = DaemonProcess::start_in(dir, &[]);
    assert_eq!(confirmed(&a), before + swept);
    a.finish();
    b.finish();
}

#[test]
fn fund_with_a_secret_key_is_refused_outside_regtest() {
    let node = DaemonProcess::start("wallet-signet", &["--network", "signet"]);
    let err = node
        .try_call(
            "fund",
            json!({
                "temporary_channel_id": "03".repeat(32),
                "outpoint": format!("{}:0", "07".repeat(32)),
                "amount_sat": 3_000_000,
                "secret_key": "42".repeat(32),
            }),
        )
        .expect_err("fund is regtest only");
    assert!(err.contains("refused on signet"), "{err}");
    let address = node.call("new_address", json!({}))["address"]
        .as_str()
        .expect("an address")
        .to_string();
    assert!(
        address.starts_with("tb1q"),
        "a signet P2WPKH address: {address}"
    );
    node.finish();
}

/// The packages (`parent`, `child`) of a `broadcasts` answer.
fn packages(answer: &Value) -> Vec<(Transaction, Transaction)> {
    let tx = |v: &Value| -> Transaction {
        deserialize(&hex::decode(v.as_str().expect("hex")).expect("hex")).expect("a transaction")
    };
    answer["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (tx(&p["parent"]), tx(&p["child"])))
        .collect()
}

#[test]
fn an_anchor_commitment_the_daemon_force_closes_is_bumped_from_its_wallet_by_itself() {
    const FUNDS: u64 = 2_000_000;
    const CHANNEL: u64 = 1_000_000;
    let mut chain = ValidatingChain::new();
    let mut a = DaemonProcess::start("bump-a", &["--claim-feerate-per-kw", "5000"]);
    let mut b = DaemonProcess::start("bump-b", &[]);
    let (_, script) = new_address(&a);
    chain.fund(script, FUNDS);
    feed(&chain, &mut [&mut a, &mut b]);
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
    a.call(
        "open_channel",
        json!({"node_id": b.node_id.to_string(), "amount_sat": CHANNEL,
               "funding_feerate_per_kw": 1000}),
    );
    let funding = wait_for(20, "the wallet-funded transaction to broadcast", || {
        broadcasts(&a).into_iter().find(|tx| {
            tx.output
                .iter()
                .any(|o| o.value.to_sat() == CHANNEL && o.script_pubkey.is_p2wsh())
        })
    });
    chain.submit(funding.clone()).expect("funding accepted");
    chain.mine(6);
    feed(&chain, &mut [&mut a, &mut b]);
    wait_for(20, "the channel open on both sides", || {
        let open = |n: &DaemonProcess| phases(n).iter().any(|p| p == "normal");
        (open(&a) && open(&b)).then_some(())
    });
    let before = confirmed(&a);
    assert!(
        before > 900_000,
        "the funding's change, confirmed: {before}"
    );
    a.call("broadcasts", json!({}));

    // The mempool is full: its floor (12 sat/vB) is above the commitment's own feerate
    // (below 8 sat/vB), and below the daemon's claim feerate (5000 sat/kw, 20 sat/vB).
    chain.set_policy(lnshard_testkit::chain::Policy {
        mempool_min_sat_per_kvb: Some(12_000),
        ..Default::default()
    });
    let channel_id = a.call("list_channels", json!({}))[0]["channel_id"]
        .as_str()
        .expect("a channel id")
        .to_string();
    a.call("force_close", json!({ "channel_id": channel_id }));
    // The daemon bumps its commitment from its own wallet as soon as its monitor asks (at
    // the latest with the next block): nothing but `broadcasts` is called.
    let mut package = None;
    let mut alone = None;
    for _ in 0..3 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while package.is_none() && std::time::Instant::now() < deadline {
            let answer = a.call("broadcasts", json!({}));
            for h in answer["transactions"].as_array().expect("transactions") {
                let tx: Transaction =
                    deserialize(&hex::decode(h.as_str().expect("hex")).expect("hex"))
                        .expect("a transaction");
                if tx.input[0].previous_output.txid == funding.compute_txid() {
                    alone = Some(tx);
                }
            }
            package = packages(&answer).pop();
            if package.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        if package.is_some() {
            break;
        }
        chain.mine(1);
        feed(&chain, &mut [&mut a, &mut b]);
    }
    let (commitment, child) = package.expect("a package from the daemon's wallet");
    assert_eq!(
        commitment.input[0].previous_output.txid,
        funding.compute_txid(),
        "the parent is A's commitment"
    );
    if let Some(alone) = alone {
        assert_eq!(alone, commitment, "the commitment it broadcast alone");
    }
    // Alone, the commitment is below the floor.
    let r = chain.submit(commitment.clone());
    assert!(
        matches!(r, Err(lnshard_testkit::chain::Reject::MempoolMinFee { .. })),
        "{r:?} fee {} weight {}",
        fee_of(&chain, &commitment),
        commitment.weight()
    );
    verify(&chain, &commitment);
    // The child: our anchor (330 sat) first, then the wallet's coins, which are reserved;
    // change to the wallet.
    let anchor = &commitment.output[child.input[0].previous_output.vout as usize];
    assert_eq!(
        child.input[0].previous_output.txid,
        commitment.compute_txid()
    );
    assert_eq!(anchor.value.to_sat(), 330);
    let utxos = a.call("list_utxos", json!({}))["utxos"].clone();
    let mut prevouts = vec![anchor.clone()];
    for input in &child.input[1..] {
        let coin = utxos
            .as_array()
            .expect("utxos")
            .iter()
            .find(|u| u["outpoint"] == input.previous_output.to_string().as_str())
            .unwrap_or_else(|| panic!("{} is not the wallet's: {utxos}", input.previous_output));
        assert_eq!(coin["reserved"], true, "reserved for the bump: {coin}");
        prevouts.push(
            chain
                .get_tx(&input.previous_output.txid)
                .expect("on chain")
                .output[input.previous_output.vout as usize]
                .clone(),
        );
    }
    let serialized = bitcoin::consensus::encode::serialize(&child);
    for (i, prevout) in prevouts.iter().enumerate() {
        bitcoin::consensus::verify_script(&prevout.script_pubkey, i, prevout.value, &serialized)
            .unwrap_or_else(|e| panic!("child input {i}: {e:?}"));
    }
    let child_fee = prevouts.iter().map(|o| o.value.to_sat()).sum::<u64>()
        - child.output.iter().map(|o| o.value.to_sat()).sum::<u64>();
    // The package pays the floor; the chain takes it and mines both together.
    chain
        .submit_package(commitment.clone(), child.clone())
        .expect("the package is accepted");
    chain.mine(1);
    let height = chain.height();
    assert_eq!(
        chain.confirmed_at(&commitment.compute_txid()).map(|c| c.0),
        Some(height)
    );
    assert_eq!(
        chain.confirmed_at(&child.compute_txid()).map(|c| c.0),
        Some(height)
    );
    feed(&chain, &mut [&mut a, &mut b]);
    // The wallet paid exactly the child's fee beyond the anchor.
    wait_for(10, "the wallet sees the child", || {
        (confirmed(&a) == before + 330 - child_fee).then_some(())
    });
    // Deep: nothing stays reserved, and no further package or request comes.
    chain.mine(6);
    feed(&chain, &mut [&mut a, &mut b]);
    let utxos = a.call("list_utxos", json!({}))["utxos"].clone();
    assert!(
        utxos
            .as_array()
            .expect("utxos")
            .iter()
            .all(|u| u["reserved"] == false),
        "{utxos}"
    );
    let answer = a.call("broadcasts", json!({}));
    assert!(packages(&answer).is_empty(), "{answer}");
    assert_eq!(answer["bump_needed"], json!([]), "{answer}");
    a.finish();
    b.finish();
}
