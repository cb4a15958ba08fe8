//! `lnshard cli` against a running `lnshard node`: it reads the cookie and the control address
//! from the data directory, passes parameters as key=value pairs or one JSON object, prints the
//! answer as JSON, and fails with a message a user can act on.

mod daemon_support;

use std::process::{Command, Output};

use daemon_support::{temp_dir, DaemonProcess};
use serde_json::Value;

fn cli(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lnshard"))
        .arg("cli")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("the lnshard binary runs")
}

fn json_out(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "lnshard cli failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the answer is JSON")
}

#[test]
fn cli_calls_the_node_with_its_cookie_and_reports_errors() {
    let node = DaemonProcess::start("cli", &[]);

    // getinfo: the node id the node announced.
    let info = json_out(&cli(&node.dir, &["getinfo"]));
    assert_eq!(info["node_id"], node.node_id.to_string());

    // key=value parameters (a JSON value is taken as JSON) and one JSON object give the same.
    let a = json_out(&cli(&node.dir, &["new_invoice", "amount_msat=5000000"]));
    let b = json_out(&cli(
        &node.dir,
        &["new_invoice", r#"{"amount_msat": 5000000}"#],
    ));
    for invoice in [&a, &b] {
        assert_eq!(invoice["payment_hash"].as_str().map(str::len), Some(64));
        assert_eq!(invoice["payment_secret"].as_str().map(str::len), Some(64));
    }
    assert_ne!(
        a["payment_hash"], b["payment_hash"],
        "a fresh preimage each time"
    );
    let channels = json_out(&cli(&node.dir, &["list_channels"]));
    assert_eq!(channels, Value::Array(Vec::new()));

    // An unknown method: the node's JSON-RPC error, a failure exit and a message.
    let out = cli(&node.dir, &["no_such_method"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_method"));

    // A malformed parameter is refused before anything is sent.
    let out = cli(&node.dir, &["connect", "node_id"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not key=value"));

    // A directory without a cookie (no node there): the error says what is missing.
    let empty = temp_dir("cli-empty");
    std::fs::create_dir_all(&empty).expect("a directory");
    let out = cli(&empty, &["getinfo"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cookie"),
        "the error names the cookie: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&empty);

    node.stop();
}

#[test]
fn invoices_survive_a_restart_of_the_node() {
    let node = DaemonProcess::start("invoices", &[]);
    let invoice = node.call("new_invoice", serde_json::json!({"amount_msat": 1000}));
    let hash = invoice["payment_hash"]
        .as_str()
        .expect("a hash")
        .to_string();
    // Before the restart: the preimage is known; nothing to claim yet.
    let before = node
        .try_call("claim", serde_json::json!({"payment_hash": hash}))
        .expect_err("no payment arrived");
    assert!(!before.contains("no preimage known"), "{before}");
    // The invoices file is private to the node's user.
    let meta = std::fs::metadata(node.dir.join("invoices")).expect("the invoices file");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let dir = node.stop();
    let node = DaemonProcess::start_in(dir, &[]);
    let after = node
        .try_call("claim", serde_json::json!({"payment_hash": hash}))
        .expect_err("still no payment arrived");
    assert_eq!(
        after, before,
        "after a restart the node still knows the preimage"
    );
    // An unknown hash is still refused as such.
    let unknown = node
        .try_call(
            "claim",
            serde_json::json!({"payment_hash": "11".repeat(32)}),
        )
        .expect_err("unknown");
    assert!(unknown.contains("no preimage known"), "{unknown}");
    node.stop();
}
