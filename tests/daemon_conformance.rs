//! Conformance of `lnshard node` over real TCP and BOLT 8, driven only through its socket and
//! its control interface: BOLT 1 init feature rules, unknown messages, ping, the accepter's
//! channel-open flow with keys forced by the regtest test mode, and the control interface's
//! authentication and loopback rule.

mod daemon_support;
mod ldk_support;

use std::time::Duration;

use bitcoin::secp256k1::Secp256k1;
use daemon_support::peer::{key, msg_type, Recv, WirePeer};
use daemon_support::{wait_for, DaemonProcess};
use ldk_support::FakeChain;
use lnshard::core::keys::ChannelKeys;
use lnshard::core::node::{Event, NodeConfig, NodeCore, Output};
use lnshard::core::secp256k1::PublicKey;
use lnshard::core::wire::{Init, Message, Ping};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(5);
/// Long enough to tell "no answer" from a slow one on a loaded machine.
const QUIET: Duration = Duration::from_millis(1500);

fn init_with(extra_bits: &[usize], with_required: bool) -> Vec<u8> {
    let mut features = if with_required {
        NodeConfig::default().init_features()
    } else {
        lnshard::core::wire::Features::empty()
    };
    for bit in extra_bits {
        features.set_bit(*bit);
    }
    let chain = NodeConfig::default().chain_hash;
    Message::Init(Init::new(features, Some(vec![chain]), None)).encode()
}

fn ping(num_pong_bytes: u16) -> Vec<u8> {
    Message::Ping(Ping {
        num_pong_bytes,
        ignored: vec![],
    })
    .encode()
}

/// Connects as a fresh identity, reads the node's init, sends `init`.
fn connected(node: &DaemonProcess, n: u32, init: &[u8]) -> WirePeer {
    let mut peer = WirePeer::connect(node.listen, node.node_id, &key(7, n));
    match peer.recv(WAIT) {
        Recv::Message(m) => assert_eq!(msg_type(&m), Some(16), "the node's first message is init"),
        other => panic!("no init from the node: {other:?}"),
    }
    peer.send(init).expect("send init");
    peer
}

/// The connection is served: a ping gets its pong.
fn served(peer: &mut WirePeer) -> bool {
    if peer.send(&ping(4)).is_err() {
        return false;
    }
    matches!(peer.recv_type(19, WAIT), Recv::Message(m) if m.len() == 2 + 2 + 4)
}

fn closed(peer: &mut WirePeer) -> bool {
    loop {
        match peer.recv(WAIT) {
            Recv::Closed => return true,
            Recv::Timeout => return false,
            Recv::Message(_) => {} // a warning may come first
        }
    }
}

#[test]
fn init_feature_rules_unknown_messages_and_ping() {
    let node = DaemonProcess::start("conformance", &[]);

    // Unknown even feature bit: disconnect.
    let mut p = connected(&node, 1, &init_with(&[100], true));
    assert!(
        closed(&mut p),
        "an unknown even (required) feature bit disconnects"
    );

    // Unknown odd feature bit: ignored.
    let mut p = connected(&node, 2, &init_with(&[101], true));
    assert!(
        served(&mut p),
        "an unknown odd (optional) feature bit is ignored"
    );

    // A feature we require is missing: disconnect.
    let mut p = connected(&node, 3, &init_with(&[], false));
    assert!(closed(&mut p), "missing required features disconnects");

    // Unknown odd message: ignored.
    let mut p = connected(&node, 4, &init_with(&[], true));
    p.send(&[0x80, 0x01, 1, 2, 3]).expect("send");
    assert!(served(&mut p), "an unknown odd message is ignored");

    // Unknown even message: disconnect.
    p.send(&[0x80, 0x00, 1, 2, 3]).expect("send");
    assert!(closed(&mut p), "an unknown even message disconnects");

    // ping with num_pong_bytes >= 65532: no pong; the next ping is answered.
    let mut p = connected(&node, 5, &init_with(&[], true));
    p.send(&ping(65532)).expect("send");
    p.send(&ping(7)).expect("send");
    match p.recv_type(19, WAIT) {
        Recv::Message(m) => assert_eq!(m.len(), 2 + 2 + 7, "the pong answers the second ping"),
        other => panic!("no pong: {other:?}"),
    }
    p.send(&ping(65535)).expect("send");
    assert_eq!(p.recv_type(19, QUIET), Recv::Timeout, "no pong for 65535");

    // A first message other than init: disconnect.
    let mut p = WirePeer::connect(node.listen, node.node_id, &key(7, 6));
    let _ = p.recv(WAIT);
    p.send(&ping(1)).expect("send");
    assert!(closed(&mut p), "init must come first");

    // The node kept serving an earlier, honest connection all along.
    let mut honest = connected(&node, 2, &init_with(&[], true));
    assert!(served(&mut honest));
}

#[test]
fn control_interface_refuses_requests_without_the_secret_and_binds_loopback_only() {
    let node = DaemonProcess::start("control", &[]);
    assert_eq!(node.raw_call("getinfo", json!({}), None).err(), Some(401));
    assert_eq!(
        node.raw_call("getinfo", json!({}), Some("Basic X19jb29raWVfXzp3cm9uZw=="))
            .err(),
        Some(401),
        "a wrong secret is refused"
    );
    assert!(
        node.log().contains("control request refused"),
        "refusals are logged"
    );
    let info = node.call("getinfo", json!({}));
    assert_eq!(info["node_id"], node.node_id.to_string());
    // The cookie is readable by the owner only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(node.dir.join(".cookie"))
        .expect("cookie")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lnshard"))
        .args([
            "node",
            "--control",
            "0.0.0.0:0",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(daemon_support::temp_dir("nonloop"))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lnshard"))
        .args(["node", "--network", "testnet", "--dev-force-node-key"])
        .arg("11".repeat(32))
        .args([
            "--control",
            "127.0.0.1:0",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(daemon_support::temp_dir("testnet"))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("regtest only"), "{stderr}");
}

fn forced_keys() -> (String, ChannelKeys) {
    let secrets: Vec<[u8; 32]> = (1..=6u8).map(|i| [0x10 + i; 32]).collect();
    let k = |i: usize| lnshard::core::secp256k1::SecretKey::from_slice(&secrets[i]).expect("valid");
    let keys = ChannelKeys {
        funding_key: k(0),
        revocation_base_key: k(1),
        payment_base_key: k(2),
        delayed_payment_base_key: k(3),
        htlc_base_key: k(4),
        commitment_seed: secrets[5],
    };
    let flag = secrets
        .iter()
        .map(hex::encode)
        .collect::<Vec<_>>()
        .join("/");
    (flag, keys)
}

/// Moves messages between a test-side NodeCore and the node's socket until `done`.
fn pump(
    core: &mut NodeCore,
    peer: &mut WirePeer,
    node_id: PublicKey,
    received: &mut Vec<Message>,
    events: &mut Vec<Event>,
    mut done: impl FnMut(&[Message], &[Event]) -> bool,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done(received, events) {
        assert!(
            std::time::Instant::now() < deadline,
            "stuck: {received:?} {events:?}"
        );
        for o in core.drain_outputs() {
            match o {
                Output::SendMessage { msg, .. } => peer.send(&msg.encode()).expect("send"),
                Output::Event(e) => events.push(e),
                _ => {}
            }
        }
        if let Recv::Message(m) = peer.recv(Duration::from_millis(20)) {
            if let Ok(msg) = Message::decode(&m) {
                received.push(msg);
            }
            core.handle_message(node_id, &m);
        }
    }
}

#[test]
fn accepter_flow_with_forced_keys() {
    let (flag, keys) = forced_keys();
    let node_key = "42".repeat(32);
    let mut node = DaemonProcess::start(
        "accepter",
        &[
            "--dev-force-node-key",
            &node_key,
            "--dev-force-channel-secrets",
            &flag,
        ],
    );
    let secp = Secp256k1::new();
    let forced_id = PublicKey::from_secret_key(
        &secp,
        &lnshard::core::secp256k1::SecretKey::from_slice(&[0x42; 32]).expect("valid"),
    );
    assert_eq!(node.node_id, forced_id, "the node key is the forced one");

    let mut chain = FakeChain::new();
    chain.mine_empty(10);
    for h in 1..=chain.height() {
        node.feed_block(&chain.block(h).expect("mined").clone(), h);
    }
    let our_secret = key(9, 1);
    let mut core = NodeCore::new(
        our_secret,
        [5; 32],
        NodeConfig::default(),
        chain.height(),
        chain.tip_hash(),
    );
    let mut peer = WirePeer::connect(node.listen, node.node_id, &our_secret);
    core.peer_connected(node.node_id);
    let (mut received, mut events) = (Vec::new(), Vec::new());
    pump(
        &mut core,
        &mut peer,
        node.node_id,
        &mut received,
        &mut events,
        |r, _| r.iter().any(|m| matches!(m, Message::Init(_))),
    );
    core.create_channel(node.node_id, 500_000, 0, 1, 1000)
        .expect("create_channel");
    pump(
        &mut core,
        &mut peer,
        node.node_id,
        &mut received,
        &mut events,
        |_, e| {
            e.iter()
                .any(|e| matches!(e, Event::FundingGenerationReady { .. }))
        },
    );
    // accept_channel carries exactly the forced basepoints and the first per-commitment
    // point of the forced seed.
    let accept = received
        .iter()
        .find_map(|m| match m {
            Message::AcceptChannel(a) => Some(a.clone()),
            _ => None,
        })
        .expect("accept_channel");
    let pk = keys.public_keys(&secp);
    assert_eq!(accept.funding_pubkey, pk.funding_pubkey);
    assert_eq!(accept.revocation_basepoint, pk.revocation_basepoint);
    assert_eq!(accept.payment_basepoint, pk.payment_basepoint);
    assert_eq!(
        accept.delayed_payment_basepoint,
        pk.delayed_payment_basepoint
    );
    assert_eq!(accept.htlc_basepoint, pk.htlc_basepoint);
    let first_secret = lnshard::core::secrets::generate_from_seed(
        &keys.commitment_seed,
        lnshard::core::secrets::FIRST_INDEX,
    )
    .expect("index in range");
    let first_point = PublicKey::from_secret_key(
        &secp,
        &lnshard::core::secp256k1::SecretKey::from_slice(&first_secret).expect("valid"),
    );
    assert_eq!(accept.first_per_commitment_point, first_point);

    // funding_created → funding_signed (the node's signature verified by our core).
    let (temp, script, value) = events
        .iter()
        .find_map(|e| match e {
            Event::FundingGenerationReady {
                temporary_channel_id,
                output_script,
                channel_value_satoshis,
                ..
            } => Some((
                *temporary_channel_id,
                output_script.clone(),
                *channel_value_satoshis,
            )),
            _ => None,
        })
        .expect("funding event");
    let funding_tx = bitcoin::Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![bitcoin::TxIn {
            previous_output: bitcoin::OutPoint {
                txid: bitcoin::Txid::from_raw_hash(bitcoin::hashes::Hash::from_byte_array([3; 32])),
                vout: 0,
            },
            ..Default::default()
        }],
        output: vec![bitcoin::TxOut {
            value: bitcoin::Amount::from_sat(value),
            script_pubkey: script,
        }],
    };
    core.funding_transaction_generated(temp, node.node_id, funding_tx.clone())
        .expect("funding");
    pump(
        &mut core,
        &mut peer,
        node.node_id,
        &mut received,
        &mut events,
        |r, _| r.iter().any(|m| matches!(m, Message::FundingSigned(_))),
    );
    // Confirm; both sides send channel_ready.
    chain.mine(vec![funding_tx]);
    chain.mine_empty(6);
    for h in node.fed_height + 1..=chain.height() {
        let block = chain.block(h).expect("mined").clone();
        node.feed_block(&block, h);
        let txdata: Vec<(u32, &bitcoin::Transaction)> = block
            .txdata
            .iter()
            .enumerate()
            .map(|(i, t)| (i as u32, t))
            .collect();
        core.transactions_confirmed(h, &txdata);
        core.best_block_updated(h, block.block_hash());
    }
    pump(
        &mut core,
        &mut peer,
        node.node_id,
        &mut received,
        &mut events,
        |r, e| {
            r.iter().any(|m| matches!(m, Message::ChannelReady(_)))
                && e.iter().any(|e| matches!(e, Event::ChannelReady { .. }))
        },
    );
    let order: Vec<u16> = received
        .iter()
        .map(|m| msg_type(&m.encode()).unwrap_or(0))
        .filter(|t| [33, 35, 36].contains(t))
        .collect();
    assert_eq!(
        order,
        [33, 35, 36],
        "accept_channel, funding_signed, channel_ready"
    );
    let channels = wait_for(10, "the node's usable channel", || {
        let c = node.call("list_channels", json!({}));
        c.as_array()
            .filter(|a| a.iter().any(|c| c["usable"] == true))
            .cloned()
    });
    assert_eq!(channels.len(), 1);
}

#[test]
fn liveness_pings_and_disconnects_a_peer_that_does_not_pong() {
    let node = DaemonProcess::start(
        "liveness",
        &[
            "--ping-interval-secs",
            "1",
            "--pong-timeout-secs",
            "1",
            "--tick-ms",
            "100",
        ],
    );
    // A peer that answers pings stays connected over several ping intervals.
    let mut lively = connected(&node, 1, &init_with(&[], true));
    let start = std::time::Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_secs(4) {
        match lively.recv(Duration::from_millis(200)) {
            Recv::Message(m) if msg_type(&m) == Some(18) => {
                pings += 1;
                lively.send(&[0, 19, 0, 0]).expect("pong");
            }
            Recv::Closed => panic!("a peer answering pings was disconnected"),
            _ => {}
        }
    }
    assert!(
        pings >= 2,
        "the node pings every interval ({pings} pings in 4 s)"
    );
    // A peer that never answers is disconnected once its pong is late.
    let mut silent = connected(&node, 2, &init_with(&[], true));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut saw_ping = false;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the silent peer was not disconnected"
        );
        match silent.recv(Duration::from_millis(100)) {
            Recv::Message(m) if msg_type(&m) == Some(18) => saw_ping = true,
            Recv::Closed => break,
            _ => {}
        }
        // Meanwhile the lively peer keeps answering its pings.
        if let Recv::Message(m) = lively.recv(Duration::from_millis(10)) {
            if msg_type(&m) == Some(18) {
                lively.send(&[0, 19, 0, 0]).expect("pong");
            }
        }
    }
    assert!(saw_ping, "it was pinged before being disconnected");
    assert!(served(&mut lively), "the lively peer is still served");
}
