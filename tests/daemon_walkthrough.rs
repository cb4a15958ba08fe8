//! The README's node walkthrough, run as written: its `sh` block is read from README.md and
//! each line is given, in order, to one `bash` (so `BOB`, `INV` and `SCID` carry over), with
//! `ln` the built `lnshard` binary. Two things stand in for what a reader has: the ports are
//! free ones (the README's 9735/9736/9835/9836 may be taken), and a validating chain
//! (`lnshard_testkit::chain::ValidatingChain`) plays `bitcoin-cli`: its blocks are fed to
//! both nodes with the README's own `block_connected` line, and what `broadcasts` returns is
//! mined. A line whose comment names an answer that comes in its own time (the funding
//! transaction, a usable channel, the payment's events) is repeated until it comes.
//!
//! There is no manual `claim`: bob claims the payment to its own invoice by itself. The logs
//! of both nodes (their stderr, a file) carry no colour codes.
//!
//! And a hold invoice (`new_invoice hold=true`) on the same two nodes: its payment waits,
//! across a restart of the payee, until `claim`; another's, failed with `fail`, reaches the
//! payer as a typed BOLT 4 failure.

mod daemon_support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use bitcoin::address::NetworkUnchecked;
use bitcoin::consensus::encode::{deserialize, serialize_hex};
use bitcoin::{Address, Transaction};
use daemon_support::{temp_dir, wait_for, DaemonProcess};
use lnshard_testkit::chain::ValidatingChain;
use serde_json::{json, Value};

const README: &str = include_str!("../README.md");

/// The walkthrough: the README's `sh` block that starts two nodes.
fn walkthrough() -> Vec<&'static str> {
    let mut blocks = README.split("```sh\n").skip(1).map(|b| {
        b.split("\n```")
            .next()
            .expect("a closed block")
            .lines()
            .collect::<Vec<_>>()
    });
    blocks
        .find(|b| b.iter().any(|l| l.starts_with("ln node --data-dir bob")))
        .expect("README.md has the walkthrough")
}

/// One `bash`, fed a line at a time.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    dir: PathBuf,
}

const END: &str = "__walkthrough_end__";

impl Shell {
    fn start(dir: &Path, bin: &str) -> Shell {
        let stderr = std::fs::File::create(dir.join("stderr.log")).expect("the stderr file");
        let mut child = Command::new("bash")
            .current_dir(dir)
            .env("LNSHARD_BIN", bin)
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("bash runs");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Shell {
            child,
            stdin,
            stdout,
            dir: dir.to_path_buf(),
        }
    }

    /// Runs `line`; its output and exit status.
    fn run(&mut self, line: &str) -> (String, i32) {
        writeln!(self.stdin, "{line}\nprintf '\\n{END} %s\\n' $?").expect("bash reads");
        self.stdin.flush().expect("flush");
        let mut out = String::new();
        loop {
            let mut l = String::new();
            let n = self.stdout.read_line(&mut l).expect("bash writes");
            assert!(n > 0, "bash exited at {line:?}: {}", self.stderr());
            if let Some(code) = l.trim_end().strip_prefix(&format!("{END} ")) {
                return (out, code.parse().expect("a status"));
            }
            out.push_str(&l);
        }
    }

    /// Runs `line`, which must succeed; its output.
    fn ok(&mut self, line: &str) -> String {
        let (out, code) = self.run(line);
        assert_eq!(code, 0, "{line}\n{out}\nstderr:\n{}", self.stderr());
        out
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        // The nodes the walkthrough started: their pids are in their LOCK files.
        for node in ["alice", "bob"] {
            let lock = self.dir.join(node).join("LOCK");
            let Some(pid) = std::fs::read_to_string(lock)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
            else {
                continue;
            };
            // Only if that pid is still this node (a stopped node leaves its pid behind).
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.contains("lnshard") && cmdline.contains(node) {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The chain and what both nodes have been fed.
struct Chain {
    chain: ValidatingChain,
    fed: u32,
    /// The README's `block_connected` line, `X`, `H`, `HEX` and `'["HEX",...]'` to fill.
    template: String,
}

impl Chain {
    /// Feeds every block not fed yet to both nodes with the README's line.
    fn feed(&mut self, sh: &mut Shell) {
        while self.fed < self.chain.height() {
            let height = self.fed + 1;
            let block = self.chain.block(height).expect("a block").clone();
            let txs: Vec<String> = block
                .txdata
                .iter()
                .map(|t| format!("\"{}\"", serialize_hex(t)))
                .collect();
            for node in ["alice", "bob"] {
                let line = self
                    .template
                    .replace("--data-dir X", &format!("--data-dir {node}"))
                    .replace("height=H", &format!("height={height}"))
                    .replace(
                        "header=HEX",
                        &format!("header={}", serialize_hex(&block.header)),
                    )
                    .replace("'[\"HEX\",...]'", &format!("'[{}]'", txs.join(",")));
                sh.ok(&line);
            }
            self.fed = height;
        }
    }
}

/// Repeats `line` (each answer appended) until `done` holds of the answers so far, mining a
/// block between tries when `mine`.
fn until(
    sh: &mut Shell,
    chain: &mut Chain,
    line: &str,
    mine: bool,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut all = String::new();
    loop {
        all.push_str(&sh.ok(line));
        if done(&all) {
            return all;
        }
        assert!(Instant::now() < deadline, "{line}: never came:\n{all}");
        if mine {
            chain.chain.mine(1);
            chain.feed(sh);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The comment of a line (after `  #`), if any.
fn comment(line: &str) -> Option<&str> {
    line.split_once("  #").map(|(_, c)| c.trim())
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let lines = walkthrough();
    let dir = temp_dir("walkthrough");
    std::fs::create_dir_all(&dir).expect("a directory");
    let mut sh = Shell::start(&dir, env!("CARGO_BIN_EXE_lnshard"));
    let ports: Vec<(String, String)> = ["9735", "9736", "9835", "9836"]
        .iter()
        .map(|p| {
            (
                format!("127.0.0.1:{p}"),
                format!("127.0.0.1:{}", free_port()),
            )
        })
        .collect();
    let template = lines
        .iter()
        .find_map(|l| l.strip_prefix("# for each block, on both nodes: "))
        .expect("the walkthrough says how to feed a block")
        .to_string();
    let mut chain = Chain {
        chain: ValidatingChain::new(),
        fed: 0,
        template,
    };
    let mut ran = Vec::new();
    for line in &lines {
        let mut line = line.to_string();
        for (readme, ours) in &ports {
            line = line.replace(readme, ours);
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with("cargo build") {
            // The binary is built: `ln` is it (an alias is not expanded in a script).
            assert!(line.contains("alias ln=target/release/lnshard"), "{line}");
            sh.ok("ln() { \"$LNSHARD_BIN\" \"$@\"; }");
            ran.push("alias ln");
            continue;
        }
        if let Some(rest) = line.strip_prefix("bitcoin-cli -regtest sendtoaddress ") {
            // The chain pays the address and mines the block.
            let (var, rest) = rest.split_once(' ').expect("an address and an amount");
            let (btc, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(rest.contains("-generate 1"), "{line}");
            let address = sh.ok(&format!("echo {var}"));
            let script = address
                .trim()
                .parse::<Address<NetworkUnchecked>>()
                .expect("an address")
                .require_network(bitcoin::Network::Regtest)
                .expect("a regtest address")
                .script_pubkey();
            let sat = bitcoin::Amount::from_str_in(btc, bitcoin::Denomination::Bitcoin)
                .expect("an amount in BTC")
                .to_sat();
            chain.chain.fund(script, sat);
            chain.feed(&mut sh);
            ran.push("sendtoaddress");
            continue;
        }
        let note = comment(&line).unwrap_or_default().to_string();
        if line.contains(" node --data-dir ") && line.ends_with('&') {
            sh.ok(&line);
            let node = if line.contains("alice") {
                "alice"
            } else {
                "bob"
            };
            wait_for(30, "the node to start", || {
                let (_, code) = sh.run(&format!("ln cli --data-dir {node} getinfo >/dev/null"));
                (code == 0).then_some(())
            });
            ran.push("node");
        } else if line.contains(" broadcasts") {
            // Once the peer accepted and signed: the funding transaction. Broadcast, mine.
            let out = until(&mut sh, &mut chain, &line, false, |o| {
                o.contains("\"transactions\": [\n    \"")
            });
            for part in out.split("\"transactions\": [").skip(1) {
                let list = part.split(']').next().unwrap_or_default();
                for hex_tx in list.split('"').filter(|s| s.len() > 20) {
                    let tx: Transaction =
                        deserialize(&hex::decode(hex_tx).expect("hex")).expect("a transaction");
                    chain.chain.submit(tx).expect("the chain takes it");
                }
            }
            chain.chain.mine(1);
            chain.feed(&mut sh);
            ran.push("broadcasts");
        } else if line.contains(" list_channels") && note.starts_with("usable") {
            until(&mut sh, &mut chain, &line, true, |o| {
                o.contains("\"usable\": true")
            });
            ran.push("usable");
        } else if line.contains(" events") {
            let want: Vec<&str> = note
                .split([',', ' ', ':'])
                .filter(|w| w.starts_with("payment_"))
                .collect();
            assert!(!want.is_empty(), "{line}");
            until(&mut sh, &mut chain, &line, false, |o| {
                want.iter()
                    .all(|w| o.contains(&format!("\"type\": \"{w}\"")))
            });
            ran.push("events");
        } else {
            let out = sh.ok(&line);
            // `# key: value` is the answer.
            if let Some((key, value)) = note.split_once(": ") {
                if !key.contains(' ') {
                    assert!(
                        out.contains(&format!("\"{key}\": {value}")),
                        "{line}: {out}"
                    );
                }
            }
            ran.push("cli");
        }
        assert!(
            !line.contains(" claim "),
            "no manual claim in the walkthrough: {line}"
        );
    }
    assert!(
        ran.iter().filter(|r| **r == "events").count() == 2 && ran.contains(&"usable"),
        "the walkthrough pays: {ran:?}"
    );
    // The payment moved: bob has its amount; the short channel id is BLOCKxTXxOUT.
    let channels: Value =
        serde_json::from_str(&sh.ok("ln cli --data-dir alice list_channels")).expect("JSON");
    assert_eq!(channels[0]["to_remote_msat"], 5_000_000, "{channels}");
    let scid = channels[0]["short_channel_id"].as_str().expect("a string");
    assert_eq!(scid.split('x').count(), 3, "{scid}");
    sh.ok("ln cli --data-dir alice stop && ln cli --data-dir bob stop");
    // The nodes' logs went to a file: no colour codes.
    wait_for(20, "both nodes to stop", || {
        let stopped = |n: &str| !dir.join(n).join("control.addr").exists();
        (stopped("alice") && stopped("bob")).then_some(())
    });
    let log = sh.stderr();
    assert!(log.contains("INFO"), "the nodes logged: {log}");
    assert!(!log.contains('\u{1b}'), "no ANSI escapes in a log file");
    drop(sh);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Alice and bob with a usable channel from alice, on `chain`.
fn two_nodes_with_a_channel(chain: &mut ValidatingChain) -> (DaemonProcess, DaemonProcess) {
    let mut a = DaemonProcess::start("hold-a", &[]);
    let mut b = DaemonProcess::start("hold-b", &[]);
    let address = a.call("new_address", json!({}))["address"]
        .as_str()
        .expect("an address")
        .parse::<Address<NetworkUnchecked>>()
        .expect("an address")
        .require_network(bitcoin::Network::Regtest)
        .expect("regtest");
    chain.fund(address.script_pubkey(), 2_000_000);
    feed(chain, &mut [&mut a, &mut b]);
    a.call(
        "connect",
        json!({"node_id": b.node_id.to_string(), "address": b.listen.to_string()}),
    );
    wait_for(10, "connected", || {
        let peers = b.call("list_peers", json!({}));
        (peers.as_array().is_some_and(|p| !p.is_empty())).then_some(())
    });
    a.call(
        "open_channel",
        json!({"node_id": b.node_id.to_string(), "amount_sat": 1_000_000}),
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
    feed(chain, &mut [&mut a, &mut b]);
    wait_for(20, "a usable channel", || {
        let usable = |n: &DaemonProcess| n.call("list_channels", json!({}))[0]["usable"] == true;
        (usable(&a) && usable(&b)).then_some(())
    });
    (a, b)
}

fn feed(chain: &ValidatingChain, nodes: &mut [&mut DaemonProcess]) {
    for node in nodes.iter_mut() {
        for height in node.fed_height + 1..=chain.height() {
            let block = chain.block(height).expect("a block").clone();
            node.feed_block(&block, height);
        }
    }
}

/// Events of `node` of type `kind`, drained into `seen` (kept across calls).
fn has_event(node: &DaemonProcess, seen: &mut Vec<Value>, kind: &str, hash: &str) -> bool {
    if let Some(events) = node.call("events", json!({}))["events"].as_array() {
        seen.extend(events.iter().cloned());
    }
    seen.iter()
        .any(|e| e["type"] == kind && e["payment_hash"] == hash)
}

#[test]
fn a_hold_invoice_waits_for_claim_across_a_restart() {
    let mut chain = ValidatingChain::new();
    let (a, b) = two_nodes_with_a_channel(&mut chain);
    let invoice = b.call(
        "new_invoice",
        json!({"amount_msat": 3_000_000, "hold": true}),
    );
    assert_eq!(invoice["hold"], true);
    let hash = invoice["payment_hash"]
        .as_str()
        .expect("a hash")
        .to_string();
    // Bob restarts: the invoice is still a hold invoice.
    let b_id = b.node_id;
    let b_listen = b.listen.to_string();
    let dir = b.stop();
    let b = DaemonProcess::start_in(dir, &["--listen", &b_listen]);
    assert_eq!(b.node_id, b_id);
    wait_for(30, "alice and bob reconnected", || {
        let usable = |n: &DaemonProcess| n.call("list_channels", json!({}))[0]["usable"] == true;
        (usable(&a) && usable(&b)).then_some(())
    });
    let scid = a.call("list_channels", json!({}))[0]["short_channel_id"].clone();
    assert!(scid.is_string(), "{scid}");
    a.call(
        "pay",
        json!({
            "route": [{"node_id": b_id.to_string(), "short_channel_id": scid,
                       "fee_msat": 3_000_000, "cltv_expiry_delta": 42}],
            "payment_hash": hash,
            "payment_secret": invoice["payment_secret"],
        }),
    );
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());
    wait_for(20, "bob's payment_claimable", || {
        has_event(&b, &mut b_seen, "payment_claimable", &hash).then_some(())
    });
    // It waits: no claim, alice's payment pending.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!has_event(&b, &mut b_seen, "payment_claimed", &hash));
    assert!(!has_event(&a, &mut a_seen, "payment_sent", &hash));
    b.call("claim", json!({"payment_hash": hash}));
    wait_for(20, "alice's payment_sent", || {
        has_event(&a, &mut a_seen, "payment_sent", &hash).then_some(())
    });
    assert!(has_event(&b, &mut b_seen, "payment_claimed", &hash));
    // Another hold invoice, failed back with `fail`: alice's payment_failed is typed (the
    // BOLT 4 failure bob's node sent, from the hop that sent it).
    let invoice = b.call(
        "new_invoice",
        json!({"amount_msat": 2_000_000, "hold": true}),
    );
    let failed_hash = invoice["payment_hash"]
        .as_str()
        .expect("a hash")
        .to_string();
    a.call(
        "pay",
        json!({
            "route": [{"node_id": b_id.to_string(), "short_channel_id": scid,
                       "fee_msat": 2_000_000, "cltv_expiry_delta": 42}],
            "payment_hash": failed_hash,
            "payment_secret": invoice["payment_secret"],
        }),
    );
    wait_for(20, "bob's second payment_claimable", || {
        has_event(&b, &mut b_seen, "payment_claimable", &failed_hash).then_some(())
    });
    b.call("fail", json!({"payment_hash": failed_hash}));
    wait_for(20, "alice's payment_failed", || {
        has_event(&a, &mut a_seen, "payment_failed", &failed_hash).then_some(())
    });
    let failure = a_seen
        .iter()
        .find(|e| e["type"] == "payment_failed" && e["payment_hash"] == failed_hash.as_str())
        .map(|e| e["failure"].clone())
        .expect("the event");
    assert_eq!(
        failure["code"], "incorrect_or_unknown_payment_details",
        "{failure}"
    );
    assert_eq!(failure["code_number"], 0x400f, "{failure}");
    assert_eq!(failure["local"], false, "{failure}");
    assert_eq!(failure["failing_hop"], 0, "{failure}");
    assert_eq!(
        failure["failing_node"],
        b_id.to_string().as_str(),
        "{failure}"
    );
    assert_eq!(failure["htlc_msat"], 2_000_000, "{failure}");

    // A hash the node made no invoice for: a typed error naming it.
    let unknown = "11".repeat(32);
    let e = b
        .try_call("claim", json!({"payment_hash": unknown}))
        .expect_err("no such invoice");
    let e: Value = serde_json::from_str(&e).expect("a JSON error");
    assert_eq!(e["code"], -32000, "{e}");
    assert_eq!(e["data"]["kind"], "unknown_payment_hash", "{e}");
    assert_eq!(e["data"]["payment_hash"], unknown.as_str(), "{e}");
    a.finish();
    b.finish();
}
