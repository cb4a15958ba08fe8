//! `lnshard node` against a hostile local user and a hostile peer (issue 12): the control
//! interface checks the cookie before it reads a body, bounds bodies and connections; a flood
//! of `error` messages with large text keeps the node's memory and log bounded; the data
//! directory is private and locked; a node whose engine stopped says so.
//!
//! The error flood runs 150 cycles by default (CI); `DAEMON_HOSTILE_FULL=1` runs the 1,500 of
//! the issue, best in release:
//! `DAEMON_HOSTILE_FULL=1 cargo test --release --test daemon_hostile -- --nocapture error_flood`.
//! The measured figures are printed (with `--nocapture`).

mod daemon_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use daemon_support::peer::{key, msg_type, Recv, WirePeer};
use daemon_support::{rss_kib, temp_dir, wait_for, DaemonProcess};
use lnshard::core::node::{NodeConfig, NodeCore, Output};
use lnshard::core::wire::{Init, Message};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);
/// The control interface's body limit (`lnshard_node::control::MAX_REQUEST`).
const MAX_REQUEST: usize = lnshard_node::control::MAX_REQUEST;

fn auth_header(dir: &Path) -> String {
    let cookie = std::fs::read_to_string(dir.join(".cookie")).expect("the cookie");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(cookie.trim())
    )
}

fn head(content_length: usize, auth: Option<&str>) -> String {
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{auth}\
         Content-Length: {content_length}\r\n\r\n"
    )
}

/// Reads an HTTP response's status line (up to `timeout`); `None` if none came.
fn status_of(stream: &mut TcpStream, timeout: Duration) -> Option<u16> {
    stream.set_read_timeout(Some(timeout)).expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + timeout;
    while !got.windows(2).any(|w| w == b"\r\n") && Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&got);
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A JSON-RPC call over one raw connection (its status and the body's start).
fn raw_rpc(control: SocketAddr, auth: &str, method: &str) -> (Option<u16>, String) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method}).to_string();
    let mut s = TcpStream::connect(control).expect("connect");
    s.write_all(head(body.len(), Some(auth)).as_bytes())
        .expect("headers");
    s.write_all(body.as_bytes()).expect("body");
    let status = status_of(&mut s, WAIT);
    let mut rest = String::new();
    let _ = s.read_to_string(&mut rest);
    (status, rest)
}

/// Sends `total` bytes of body after `head` in 64 KiB writes until the node stops reading
/// (it closes the connection) or `total` is sent; the bytes sent.
fn upload(control: SocketAddr, head: &str, total: usize) -> usize {
    let Ok(mut s) = TcpStream::connect(control) else {
        return 0;
    };
    s.set_write_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    if s.write_all(head.as_bytes()).is_err() {
        return 0;
    }
    let chunk = vec![b'x'; 64 << 10];
    let mut sent = 0;
    while sent < total {
        match s.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => sent += n,
        }
    }
    sent
}

#[test]
fn control_interface_checks_the_cookie_before_the_body_and_bounds_requests() {
    let node = DaemonProcess::start("hostile-control", &[]);
    let auth = auth_header(&node.dir);
    let pid = node.pid();

    // Headers claiming 60 MB and a trickle of body: refused before the body is read.
    let mut s = TcpStream::connect(node.control).expect("connect");
    s.write_all(head(60_000_000, None).as_bytes())
        .expect("headers");
    s.write_all(&[b'x'; 1000]).expect("a little body");
    let start = Instant::now();
    assert_eq!(
        status_of(&mut s, WAIT),
        Some(401),
        "refused from the headers alone, without waiting for the 60 MB"
    );
    let refused_in = start.elapsed();
    drop(s);

    // With the cookie, a body over the limit by its Content-Length: 413 at once.
    let mut s = TcpStream::connect(node.control).expect("connect");
    s.write_all(head(60_000_000, Some(&auth)).as_bytes())
        .expect("headers");
    assert_eq!(status_of(&mut s, WAIT), Some(413));
    drop(s);
    // ... and one that says nothing of its length (chunked) but runs past it: 413.
    let mut s = TcpStream::connect(node.control).expect("connect");
    let chunked = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(chunked.as_bytes()).expect("headers");
    let piece = vec![b' '; 32 << 10];
    for _ in 0..(MAX_REQUEST / piece.len() + 2) {
        if s.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .and_then(|()| s.write_all(&piece))
            .and_then(|()| s.write_all(b"\r\n"))
            .is_err()
        {
            break;
        }
    }
    assert_eq!(status_of(&mut s, WAIT), Some(413));
    drop(s);
    // A request within the limit is served.
    let (status, body) = raw_rpc(node.control, &auth, "getinfo");
    assert_eq!(status, Some(200), "{body}");
    // block_connected can name only the block's transactions that matter, by index.
    let tx = lnshard::core::bitcoin::Transaction {
        version: lnshard::core::bitcoin::transaction::Version::TWO,
        lock_time: lnshard::core::bitcoin::absolute::LockTime::ZERO,
        input: vec![lnshard::core::bitcoin::TxIn::default()],
        output: vec![lnshard::core::bitcoin::TxOut {
            value: lnshard::core::bitcoin::Amount::from_sat(1000),
            script_pubkey: lnshard::core::bitcoin::ScriptBuf::new(),
        }],
    };
    let tx_hex = lnshard::core::bitcoin::consensus::encode::serialize_hex(&tx);
    let block = node.call(
        "block_connected",
        json!({"height": 1, "header": "00".repeat(80),
               "transactions": [{"index": 7, "tx": tx_hex}]}),
    );
    assert_eq!(block["height"], 1);
    // The cli refuses to send a request over the limit, saying why.
    let out = Command::new(env!("CARGO_BIN_EXE_lnshard"))
        .arg("cli")
        .arg("--data-dir")
        .arg(&node.dir)
        .arg("new_invoice")
        // (one argument may not pass 128 KiB)
        .args((0..8).map(|i| format!("memo{i}={}", "m".repeat(MAX_REQUEST / 6))))
        .output()
        .expect("cli runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at most"), "{stderr}");

    // Rounds of 8 unauthenticated 60 MB uploads at once: memory stays flat.
    let before = rss_kib(pid);
    let mut peak = before;
    let mut sent_total = 0;
    for _round in 0..3 {
        let uploads: Vec<_> = (0..8)
            .map(|_| {
                let control = node.control;
                std::thread::spawn(move || upload(control, &head(60_000_000, None), 60_000_000))
            })
            .collect();
        for u in uploads {
            sent_total += u.join().expect("upload thread");
        }
        peak = peak.max(rss_kib(pid));
    }
    println!(
        "unauthenticated uploads: 401 in {refused_in:?}; 24 uploads of 60 MB sent {:.1} MB \
         before the node closed them; RSS {before} kB -> peak {peak} kB",
        sent_total as f64 / 1e6
    );
    assert!(
        peak < before + 20_000,
        "memory grew with unauthenticated uploads: {before} kB -> {peak} kB"
    );
    assert!(
        sent_total < 24 * 60_000_000 / 4,
        "the node read the bodies: {sent_total} bytes"
    );

    // At most 16 connections at once: with 16 held by half-sent requests, a 17th waits...
    let mut held: Vec<TcpStream> = (0..16)
        .map(|_| {
            let mut s = TcpStream::connect(node.control).expect("connect");
            s.write_all(b"POST / HTTP/1.1\r\nHost: loc")
                .expect("a part");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "getinfo"}).to_string();
    let mut waiting = TcpStream::connect(node.control).expect("the backlog takes it");
    waiting
        .write_all(head(body.len(), Some(&auth)).as_bytes())
        .expect("headers");
    waiting.write_all(body.as_bytes()).expect("body");
    assert_eq!(
        status_of(&mut waiting, Duration::from_millis(1500)),
        None,
        "a 17th connection is not served while 16 are open"
    );
    // ... until one closes.
    drop(held.pop());
    assert_eq!(status_of(&mut waiting, WAIT), Some(200));
    // The half-sent requests are closed by the node after the request timeout (10 s).
    let start = Instant::now();
    for s in &mut held {
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut buf = [0u8; 256];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {} // an error answer may come first
            }
        }
    }
    let closed_in = start.elapsed();
    println!("16 connections held, a 17th waited; half-sent requests closed after {closed_in:?}");
    assert!(closed_in < Duration::from_secs(15), "{closed_in:?}");
    assert_eq!(raw_rpc(node.control, &auth, "getinfo").0, Some(200));
}

fn init() -> Vec<u8> {
    let config = NodeConfig::default();
    Message::Init(Init::new(
        config.init_features(),
        Some(vec![config.chain_hash]),
        None,
    ))
    .encode()
}

/// An `open_channel` from a test-side core to `node`.
fn open_channel_bytes(node: &DaemonProcess) -> Vec<u8> {
    open_channel_bytes_for(node.node_id)
}

/// An `open_channel` from a test-side core to the node `node_id`.
fn open_channel_bytes_for(node_id: lnshard::core::secp256k1::PublicKey) -> Vec<u8> {
    let mut core = NodeCore::new(
        key(0x51, 1),
        [5; 32],
        NodeConfig::default(),
        0,
        lnshard::core::bitcoin::constants::genesis_block(lnshard::core::bitcoin::Network::Regtest)
            .block_hash(),
    );
    core.peer_connected(node_id);
    core.handle_message(node_id, &init());
    let _ = core.drain_outputs();
    core.create_channel(node_id, 100_000, 0, 1, 1000)
        .expect("create_channel");
    core.drain_outputs()
        .into_iter()
        .find_map(|o| match o {
            Output::SendMessage {
                msg: msg @ Message::OpenChannel(_),
                ..
            } => Some(msg.encode()),
            _ => None,
        })
        .expect("an open_channel")
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[test]
fn error_flood_keeps_memory_and_the_log_bounded() {
    let full = std::env::var_os("DAEMON_HOSTILE_FULL").is_some();
    let cycles: u32 = if full { 1500 } else { 150 };
    let node = DaemonProcess::start("hostile-errors", &[]);
    let pid = node.pid();
    let log_path = node.dir.join("node.log");
    let mut peer = WirePeer::connect(node.listen, node.node_id, &key(0x51, 1));
    assert!(matches!(peer.recv(WAIT), Recv::Message(m) if msg_type(&m) == Some(16)));
    peer.send(&init()).expect("init");
    let mut open = open_channel_bytes(&node);
    std::thread::sleep(Duration::from_millis(300));

    let rss_start = rss_kib(pid);
    let log_start = file_len(&log_path);
    let mut rss_peak = rss_start;
    let start = Instant::now();
    for i in 0..cycles {
        // A fresh temporary channel id (bytes 34..66: after the type and the chain hash).
        open[34..38].copy_from_slice(&i.to_be_bytes());
        open[38] = 0xab;
        peer.send(&open).expect("open_channel");
        match peer.recv_type(33, WAIT) {
            Recv::Message(_) => {}
            other => panic!(
                "cycle {i}: no accept_channel ({other:?})\nlog:\n{}",
                node.log()
            ),
        }
        // `error` for that channel with 65,000 bytes of 0xff.
        let mut error = vec![0u8, 17];
        error.extend_from_slice(&open[34..66]);
        error.extend_from_slice(&65_000u16.to_be_bytes());
        error.extend_from_slice(&[0xff; 65_000]);
        peer.send(&error).expect("error");
        if i % 50 == 49 {
            rss_peak = rss_peak.max(rss_kib(pid));
        }
    }
    let flood = start.elapsed();
    // Let the node handle the tail of the flood, then measure.
    wait_for(30, "the node to close the last channel", || {
        let channels = node.call("list_channels", json!({}));
        channels.as_array().filter(|c| c.is_empty()).map(|_| ())
    });
    std::thread::sleep(Duration::from_millis(1500));
    rss_peak = rss_peak.max(rss_kib(pid));
    let rss_end = rss_kib(pid);
    let log_growth = file_len(&log_path).saturating_sub(log_start);
    let events = node.call("events", json!({}));
    let listed = events["events"].as_array().map_or(0, Vec::len);
    let largest = events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e.to_string().len())
        .max()
        .unwrap_or(0);
    println!(
        "error flood: {cycles} cycles in {flood:?}; RSS {rss_start} kB -> peak {rss_peak} kB, \
         end {rss_end} kB; log +{log_growth} bytes; events kept {listed} (dropped {}), \
         largest {largest} bytes",
        events["dropped"]
    );
    assert!(
        rss_peak < 100_000,
        "resident memory {rss_peak} kB (the bound is 100 MB)"
    );
    assert!(
        log_growth < 1_000_000,
        "the log grew by {log_growth} bytes (the bound is 1 MB)"
    );
    assert!(largest <= 2048, "an event of {largest} bytes");
    assert!(
        node.log().contains("log lines suppressed"),
        "the suppressed lines are summarized"
    );
}

/// Every directory 0700 and every file 0600 under `dir`: the offenders.
fn loose_entries(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let mode = std::fs::metadata(&d).expect("meta").permissions().mode() & 0o777;
        if mode != 0o700 {
            out.push((d.clone(), mode));
        }
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("meta");
            if meta.is_dir() {
                todo.push(path);
            } else if meta.permissions().mode() & 0o777 != 0o600 {
                out.push((path, meta.permissions().mode() & 0o777));
            }
        }
    }
    out
}

/// Runs `lnshard node` on `dir` (free ports) expecting it to refuse to start; its stderr.
fn refused_start(dir: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lnshard"))
        .arg("node")
        .arg("--data-dir")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the node started on {}", dir.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(!status.success(), "exit {status}: {stderr}");
    stderr
}

#[test]
fn the_data_directory_is_private_and_a_loose_one_is_refused() {
    let node = DaemonProcess::start("hostile-perms", &[]);
    node.call("new_invoice", json!({"amount_msat": 1000}));
    let dir = node.stop();
    let loose = loose_entries(&dir);
    assert!(
        loose.is_empty(),
        "entries not 0700/0600: {:?}",
        loose
            .iter()
            .map(|(p, m)| format!("{} {m:o}", p.display()))
            .collect::<Vec<_>>()
    );
    assert!(dir.join("invoices").exists() && dir.join("node_secret").exists());

    // A node secret others can read: refused, naming the file.
    std::fs::set_permissions(
        dir.join("node_secret"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let stderr = refused_start(&dir);
    assert!(
        stderr.contains("node_secret") && stderr.contains("0644"),
        "{stderr}"
    );
    std::fs::set_permissions(
        dir.join("node_secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");

    // The directory made 0755: refused, naming it and the mode.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let stderr = refused_start(&dir);
    assert!(
        stderr.contains("0755") && stderr.contains(&dir.display().to_string()),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // A new directory is created 0700.
    let fresh = temp_dir("hostile-fresh");
    let node = DaemonProcess::start_in(fresh.clone(), &[]);
    let dir = node.stop();
    assert_eq!(
        std::fs::metadata(&dir).expect("meta").permissions().mode() & 0o777,
        0o700
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_node_on_a_locked_data_directory_is_refused() {
    let node = DaemonProcess::start("hostile-lock", &[]);
    let cookie = std::fs::read(node.dir.join(".cookie")).expect("cookie");
    let addr = std::fs::read(node.dir.join("control.addr")).expect("control.addr");
    let stderr = refused_start(&node.dir);
    assert!(
        stderr.contains(&format!("locked by pid {}", node.pid())),
        "the refusal names the first node's pid ({}): {stderr}",
        node.pid()
    );
    // The first node's files are untouched and it still answers, through the cli too.
    assert_eq!(
        std::fs::read(node.dir.join(".cookie")).expect("cookie"),
        cookie
    );
    assert_eq!(
        std::fs::read(node.dir.join("control.addr")).expect("control.addr"),
        addr
    );
    let out = Command::new(env!("CARGO_BIN_EXE_lnshard"))
        .arg("cli")
        .arg("--data-dir")
        .arg(&node.dir)
        .arg("getinfo")
        .output()
        .expect("cli runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(info["node_id"], node.node_id.to_string());
    assert_eq!(info["state"], "running");
}

/// Mounts a tmpfs of `size` at `at` (root only).
fn mount_tmpfs(at: &Path, size: &str) -> bool {
    std::fs::create_dir_all(at).expect("mount point");
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
        .arg("tmpfs")
        .arg(at)
        .status()
        .is_ok_and(|s| s.success())
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A node whose log is kept outside its data directory (which may be a full disk).
struct LoggedNode {
    child: std::process::Child,
    control: SocketAddr,
    listen: SocketAddr,
    node_id: lnshard::core::secp256k1::PublicKey,
    auth: String,
    log: PathBuf,
}

impl LoggedNode {
    fn start(dir: &Path, log: PathBuf) -> LoggedNode {
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_lnshard"))
            .arg("node")
            .arg("--data-dir")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("starts");
        let control: SocketAddr = wait_for(30, "the node to start", || {
            std::fs::read_to_string(dir.join("control.addr"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
        });
        let mut node = LoggedNode {
            child,
            control,
            listen: control,
            node_id: key(1, 1).public_key(&lnshard::core::secp256k1::Secp256k1::new()),
            auth: auth_header(dir),
            log,
        };
        let info = node.call("getinfo", json!({})).expect("getinfo");
        node.node_id = info["node_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("id");
        node.listen = info["listen"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("listen");
        node
    }

    fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let reply: Value = ureq::post(&format!("http://{}/", self.control))
            .header("Authorization", &self.auth)
            .send_json(&body)
            .map_err(|e| e.to_string())?
            .body_mut()
            .read_json()
            .map_err(|e| e.to_string())?;
        match reply.get("error") {
            Some(e) => Err(e.to_string()),
            None => Ok(reply["result"].clone()),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LoggedNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_node_whose_engine_stopped_says_so_and_why() {
    let mount = temp_dir("hostile-full");
    if !mount_tmpfs(&mount, "4m") {
        println!("SKIPPED: mounting a tmpfs needs root (CI runs as root)");
        return;
    }
    let _unmount = Unmount(mount.clone());
    let dir = mount.join("node");
    let log = PathBuf::from(format!("{}.log", mount.display()));
    let node = LoggedNode::start(&dir, log.clone());
    assert_eq!(
        node.call("getinfo", json!({})).expect("getinfo")["state"],
        "running"
    );
    // Fill the disk, then make the node write until it finds no room: peers open channels
    // (each accepted one is a channel record). A tmpfs page a file already holds takes
    // appends on a "full" disk, so a few small records may still fit: keep opening (from
    // fresh peers, within the node's limits on pending inbound channels) until the node
    // reports the stop.
    let filler = std::fs::File::create(mount.join("filler")).expect("filler");
    let mut filler = std::io::BufWriter::new(filler);
    let block = vec![0u8; 64 << 10];
    while filler.write_all(&block).is_ok() {}
    let _ = filler.flush();
    let stopped = |node: &LoggedNode| {
        let info = node
            .call("getinfo", json!({}))
            .expect("getinfo answers while stopped");
        (info["state"] == "stopped").then_some(info)
    };
    let mut peers = Vec::new();
    let mut info = None;
    for round in 1..=32u32 {
        let mut peer = WirePeer::connect(node.listen, node.node_id, &key(0x52, round));
        if !matches!(peer.recv(WAIT), Recv::Message(m) if msg_type(&m) == Some(16)) {
            // The node stopped meanwhile and no longer answers new peers.
            break;
        }
        peer.send(&init()).expect("init");
        let mut open = open_channel_bytes_for(node.node_id);
        for i in 0..4u8 {
            open[34] = i;
            open[35] = round as u8;
            let _ = peer.send(&open);
        }
        peers.push(peer);
        std::thread::sleep(Duration::from_millis(200));
        info = stopped(&node);
        if info.is_some() {
            break;
        }
    }
    let info = match info {
        Some(info) => info,
        None => wait_for(20, "getinfo to report the stop", || stopped(&node)),
    };
    let reason = info["stopped_reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!reason.is_empty(), "{info}");
    println!("stopped: {reason}");
    // Every other method: a JSON-RPC error naming the reason.
    for method in ["list_channels", "new_invoice", "list_peers"] {
        let e = node
            .call(method, json!({}))
            .expect_err("refused while stopped");
        assert!(
            e.contains("-32001") && e.contains("stopped") && e.contains(&reason),
            "{method}: {e}"
        );
    }
    // What does not touch the engine still works: broadcasts, events, and stop.
    node.call("broadcasts", json!({}))
        .expect("broadcasts while stopped");
    node.call("events", json!({}))
        .expect("events while stopped");
    std::thread::sleep(Duration::from_millis(500));
    node.call("stop", json!({})).expect("stop while stopped");
    let mut node = node;
    wait_for(20, "the stopped node to exit", || {
        node.child.try_wait().ok().flatten().map(|_| ())
    });
    let text = node.log();
    assert_eq!(
        text.matches("the node has stopped").count(),
        1,
        "logged once:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("ERROR") && l.contains("the node has stopped")),
        "at error level:\n{text}"
    );
    drop(node);
    let _ = std::fs::remove_file(&log);
}
