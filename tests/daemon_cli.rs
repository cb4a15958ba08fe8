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

    // An unknown method: a failure exit and a message naming it and pointing at help.
    let out = cli(&node.dir, &["no_such_method"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no_such_method"), "{stderr}");
    assert!(stderr.contains("lnshard cli help"), "{stderr}");
    assert!(
        stderr.contains("open_channel"),
        "the known methods: {stderr}"
    );
    // The node answers the same: a structured error listing the methods.
    let reply = node
        .try_call("no_such_method", serde_json::json!({}))
        .expect_err("unknown");
    let reply: Value = serde_json::from_str(&reply).expect("a JSON error object");
    assert_eq!(reply["code"], -32601, "{reply}");
    assert_eq!(reply["data"]["kind"], "unknown_method", "{reply}");
    assert!(reply["data"]["methods"]
        .as_array()
        .is_some_and(|m| m.iter().any(|m| m == "pay")));

    // A refusal is printed as its JSON error object: code, message, kind and fields.
    let out = cli(&node.dir, &["connect", "address=127.0.0.1:1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let object = &stderr[stderr.find('{').expect("a JSON object")..];
    let error: Value = serde_json::from_str(object.trim()).expect("the error is JSON");
    assert_eq!(error["code"], -32602);
    assert_eq!(error["data"]["kind"], "invalid_params");
    assert_eq!(error["data"]["parameter"], "node_id");
    assert_eq!(error["message"], "missing string parameter node_id");

    // The `help` method answers the table as JSON.
    let table = node.call("help", serde_json::json!({}));
    let names: Vec<&str> = table["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(
        names.contains(&"new_invoice") && names.contains(&"help"),
        "{names:?}"
    );
    let pay = node.call("help", serde_json::json!({"method": "pay"}));
    assert_eq!(pay["params"][0]["name"], "route");
    assert_eq!(pay["params"][0]["required"], true);

    // The node's log (stderr to a file) has no colour codes.
    let log = node.log();
    assert!(log.contains("INFO"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "no ANSI escapes in a log file: {log:?}"
    );

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

    node.finish();
}

fn cli_text(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lnshard"))
        .arg("cli")
        .args(args)
        .output()
        .expect("the lnshard binary runs")
}

/// `lnshard cli help`, `help METHOD` and `--help` list the methods and their parameters from
/// the node's own table, without a running node.
#[test]
fn cli_help_lists_the_methods_and_their_parameters() {
    let empty = temp_dir("cli-help");
    let dir = empty.to_str().expect("a path");
    let out = cli_text(&["--data-dir", dir, "help"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for method in lnshard_node::control::METHODS {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(method)),
            "{method} listed: {text}"
        );
    }
    assert!(
        text.contains("new_invoice          amount_msat? hold?"),
        "{text}"
    );
    assert!(
        text.contains("connect              node_id address"),
        "{text}"
    );

    let out = cli_text(&["help", "new_invoice"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("new_invoice: "), "{text}");
    assert!(text.contains("hold"), "{text}");
    assert!(text.contains("optional"), "{text}");
    let out = cli_text(&["help", "pay"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("route") && text.contains("required"),
        "{text}"
    );

    let out = cli_text(&["help", "nope"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown method \"nope\""), "{stderr}");
    assert!(stderr.contains("getinfo"), "the known ones: {stderr}");

    // clap's --help ends with the method list.
    let out = cli_text(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("lnshard cli help METHOD"), "{text}");
    assert!(text.contains("open_channel"), "{text}");
    assert!(!text.contains('\u{1b}'), "no colour codes in a pipe");
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
    node.finish();
}
