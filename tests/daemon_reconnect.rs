//! Reconnection of `lnshard node` (issue 12, case 13): two nodes with a channel, both stopped
//! and started again, find each other by themselves (the dialling side kept the peer's
//! address in `<data-dir>/peers`); a `connect` to an address where another identity answers
//! is not redialled; `connect` to a connected peer answers the address in use, not the one
//! given.

mod daemon_support;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use daemon_support::peer::key;
use daemon_support::{temp_dir, wait_for, DaemonProcess};
use lnshard::core::secp256k1::{PublicKey, Secp256k1};
use lnshard::core::transport::{ResponderHandshake, ACT_ONE_LEN};
use serde_json::json;

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// Whether `node` lists `peer` among its connected peers.
fn lists(node: &DaemonProcess, peer: &PublicKey) -> bool {
    let peers = node.call("list_peers", json!({}));
    let id = peer.to_string();
    peers
        .as_array()
        .is_some_and(|p| p.iter().any(|x| x["node_id"] == id.as_str()))
}

fn phase_on(node: &DaemonProcess) -> Vec<String> {
    node.call("list_channels", json!({}))
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["phase"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn peers_with_a_channel_reconnect_by_themselves_after_both_restart() {
    let (listen_a, listen_b) = (free_addr().to_string(), free_addr().to_string());
    let a = DaemonProcess::start_in(temp_dir("reconnect-a"), &["--listen", &listen_a]);
    let b = DaemonProcess::start_in(temp_dir("reconnect-b"), &["--listen", &listen_b]);

    // A dials B.
    let r = a.call(
        "connect",
        json!({"node_id": b.node_id.to_string(), "address": b.listen.to_string()}),
    );
    assert_eq!(r["address"], b.listen.to_string());
    wait_for(10, "both connected", || {
        (lists(&a, &b.node_id) && lists(&b, &a.node_id)).then_some(())
    });

    // `connect` to a connected peer with a bogus address: the address in use.
    let bogus = "127.0.0.1:1";
    let r = a.call(
        "connect",
        json!({"node_id": b.node_id.to_string(), "address": bogus}),
    );
    assert_eq!(r["connected"], true);
    assert_eq!(r["address"], b.listen.to_string(), "A dialled B there");
    let r = b.call(
        "connect",
        json!({"node_id": a.node_id.to_string(), "address": bogus}),
    );
    let in_use = r["address"].as_str().expect("an address").to_string();
    assert_ne!(
        in_use, bogus,
        "B reports A's connection, not the address given"
    );
    let b_peers = b.call("list_peers", json!({}));
    assert!(
        b_peers
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x["address"] == in_use.as_str())),
        "{in_use} is the address of B's connection to A: {b_peers}"
    );

    // A opens a channel to B and funds it: both sides hold a signed funding transaction.
    let open = a.call(
        "open_channel",
        json!({"node_id": b.node_id.to_string(), "amount_sat": 1_000_000, "push_msat": 0}),
    );
    let temp = open["temporary_channel_id"].as_str().expect("temporary id");
    let utxo_key = key(0x42, 1);
    a.call(
        "fund",
        json!({
            "temporary_channel_id": temp,
            "outpoint": format!("{}:0", "07".repeat(32)),
            "amount_sat": 3_000_000,
            "secret_key": hex::encode(utxo_key.secret_bytes()),
        }),
    );
    wait_for(20, "the channel funded on both sides", || {
        let pending = |n: &DaemonProcess| phase_on(n).iter().any(|p| p == "awaiting_channel_ready");
        (pending(&a) && pending(&b)).then_some(())
    });
    // A keeps B's address, privately.
    let peers_file = a.dir.join("peers");
    let text = wait_for(10, "A's peers file", || {
        std::fs::read_to_string(&peers_file)
            .ok()
            .filter(|t| t.contains(&b.node_id.to_string()))
    });
    assert!(
        text.contains(&format!("{} {}", b.node_id, b.listen)),
        "{text}"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&peers_file)
            .expect("the peers file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the peers file is private");
    }

    // Both stop; both start again. B takes no inbound peer without a channel: A gets in as
    // a peer it has a channel with.
    let (id_a, id_b) = (a.node_id, b.node_id);
    let (dir_a, dir_b) = (a.stop(), b.stop());
    let b = DaemonProcess::start_in(dir_b, &["--listen", &listen_b, "--max-inbound-peers", "0"]);
    let a = DaemonProcess::start_in(dir_a, &["--listen", &listen_a]);
    let restarted = Instant::now();
    wait_for(10, "A and B connected again by themselves", || {
        (lists(&a, &id_b) && lists(&b, &id_a)).then_some(())
    });
    let took = restarted.elapsed();
    eprintln!("reconnect: both restarted, connected again after {took:.2?}");
    assert!(took < Duration::from_secs(5), "reconnected after {took:?}");
    assert_eq!(phase_on(&a), vec!["awaiting_channel_ready".to_string()]);
}

#[test]
fn a_connect_to_another_identity_fails_and_is_not_redialled() {
    let node = DaemonProcess::start("wrong-identity", &[]);
    // At this address answers a node with another key: act one does not decrypt with it, so
    // it reads act one and closes, as any BOLT 8 responder does.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    listener.set_nonblocking(true).expect("nonblocking");
    let dials = Arc::new(AtomicU32::new(0));
    let until = Instant::now() + Duration::from_secs(6);
    let server = {
        let dials = dials.clone();
        std::thread::spawn(move || {
            let secret = key(0x51, 1);
            while Instant::now() < until {
                let Ok((mut s, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                dials.fetch_add(1, Ordering::SeqCst);
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut act_one = [0u8; ACT_ONE_LEN];
                if s.read_exact(&mut act_one).is_ok() {
                    let handshake = ResponderHandshake::new(&secret, &key(0x52, 1));
                    assert!(
                        handshake.process_act_one(&act_one).is_err(),
                        "act one is for another key"
                    );
                }
            }
        })
    };
    let secp = Secp256k1::new();
    let dialled = PublicKey::from_secret_key(&secp, &key(0x53, 1));
    let err = node
        .try_call(
            "connect",
            json!({"node_id": dialled.to_string(), "address": addr.to_string()}),
        )
        .expect_err("the handshake fails");
    assert!(
        err.contains("is not") && err.contains(&dialled.to_string()),
        "the error says the node there is not the one dialled: {err}"
    );
    let typed: serde_json::Value = serde_json::from_str(&err).expect("a JSON error");
    assert_eq!(typed["data"]["kind"], "connect_failed", "{typed}");
    assert_eq!(
        typed["data"]["node_id"],
        dialled.to_string().as_str(),
        "{typed}"
    );
    server.join().expect("the server");
    // Before, the node redialled it forever with backoff (0.5 s, 1 s, 2 s, ...).
    assert_eq!(
        dials.load(Ordering::SeqCst),
        1,
        "dialled once in 6 s: not redialled"
    );
    assert!(
        node.call("list_peers", json!({}))
            .as_array()
            .is_some_and(|p| p.is_empty()),
        "no peer"
    );
}
