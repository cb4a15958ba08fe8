//! A `lnshard node` process for tests: started from the built binary on free ports in a
//! temporary data directory, called through its control interface (with the cookie), fed
//! blocks from a [`FakeChain`](crate::ldk_support::FakeChain)-like source, and killed when
//! dropped.

#![allow(dead_code)] // Each test binary uses a part of it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::secp256k1::PublicKey;
use bitcoin::Block;
use serde_json::{json, Value};

/// A running `lnshard node`.
pub struct DaemonProcess {
    /// The process.
    pub child: Child,
    /// Its data directory (removed on drop).
    pub dir: PathBuf,
    /// Its node id.
    pub node_id: PublicKey,
    /// Where peers connect.
    pub listen: SocketAddr,
    /// The control interface.
    pub control: SocketAddr,
    /// `Basic ...` for the control interface.
    auth: String,
    /// The last block height fed.
    pub fed_height: u32,
}

/// A fresh temporary directory for a node.
pub fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!("lnshard-test-{tag}-{}-{nanos}", std::process::id()))
}

impl DaemonProcess {
    /// Starts `lnshard node` with `extra` flags (listen and control on free loopback ports).
    pub fn start(tag: &str, extra: &[&str]) -> DaemonProcess {
        Self::start_in(temp_dir(tag), extra)
    }

    /// As [`DaemonProcess::start`], in `dir` (kept from an earlier run: a restart).
    pub fn start_in(dir: PathBuf, extra: &[&str]) -> DaemonProcess {
        Self::start_with_env(dir, extra, &[])
    }

    /// As [`DaemonProcess::start_in`], with `env` added to the node's environment.
    pub fn start_with_env(dir: PathBuf, extra: &[&str], env: &[(&str, &str)]) -> DaemonProcess {
        // The node refuses a data directory others can read (mode 0700) and its files are
        // private (0600): the log too, as it may name peers and channels.
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .expect("creating the data directory");
        let _ = std::fs::remove_file(dir.join("control.addr"));
        let log = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(dir.join("node.log"))
            .expect("creating the log file");
        let child = Command::new(env!("CARGO_BIN_EXE_lnshard"))
            .arg("node")
            .arg("--data-dir")
            .arg(&dir)
            // A free port, unless the test names one (a restart on the same address).
            .args(if extra.contains(&"--listen") {
                &["--control", "127.0.0.1:0"][..]
            } else {
                &["--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"][..]
            })
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("LNSHARD_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting lnshard node");
        let deadline = Instant::now() + Duration::from_secs(30);
        let control: SocketAddr = loop {
            if let Ok(s) = std::fs::read_to_string(dir.join("control.addr")) {
                if let Ok(a) = s.trim().parse() {
                    break a;
                }
            }
            assert!(
                Instant::now() < deadline,
                "node did not start: {}",
                log_of(&dir)
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let cookie = std::fs::read_to_string(dir.join(".cookie")).expect("the cookie");
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(cookie.trim())
        );
        let mut node = DaemonProcess {
            child,
            dir,
            node_id: PublicKey::from_slice(&[2; 33]).unwrap_or_else(|_| {
                bitcoin::secp256k1::PublicKey::from_secret_key(
                    &bitcoin::secp256k1::Secp256k1::new(),
                    &bitcoin::secp256k1::SecretKey::from_slice(&[1; 32]).expect("valid"),
                )
            }),
            listen: control,
            control,
            auth,
            fed_height: 0,
        };
        let info = node.call("getinfo", json!({}));
        node.node_id = info["node_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("getinfo node_id");
        node.listen = info["listen"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("getinfo listen");
        node.fed_height = info["block_height"].as_u64().unwrap_or(0) as u32;
        node
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        log_of(&self.dir)
    }

    /// Calls `method`; the whole JSON-RPC answer, or the HTTP status on refusal.
    pub fn raw_call(&self, method: &str, params: Value, auth: Option<&str>) -> Result<Value, u16> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        // One connection per call, closed after it: a pooled connection would stay open on
        // the node until its idle timeout, and tests count the node's descriptors.
        let mut request = ureq::post(&format!("http://{}/", self.control))
            .header("Connection", "close")
            .config()
            .http_status_as_error(false)
            .build();
        if let Some(a) = auth {
            request = request.header("Authorization", a);
        }
        let mut response = request
            .send_json(&body)
            .expect("the control interface answers");
        let status = response.status().as_u16();
        if status != 200 {
            return Err(status);
        }
        Ok(response.body_mut().read_json().expect("a JSON answer"))
    }

    /// Calls `method` with the cookie; panics on an error answer.
    pub fn call(&self, method: &str, params: Value) -> Value {
        let auth = self.auth.clone();
        let reply = self
            .raw_call(method, params.clone(), Some(&auth))
            .unwrap_or_else(|s| panic!("{method}: HTTP {s}"));
        if let Some(e) = reply.get("error") {
            panic!("{method}({params}): {e}\nlog:\n{}", self.log());
        }
        reply["result"].clone()
    }

    /// Calls `method` with the cookie; the error message if it failed.
    pub fn try_call(&self, method: &str, params: Value) -> Result<Value, String> {
        let auth = self.auth.clone();
        let reply = self
            .raw_call(method, params, Some(&auth))
            .map_err(|s| format!("HTTP {s}"))?;
        match reply.get("error") {
            Some(e) => Err(e.to_string()),
            None => Ok(reply["result"].clone()),
        }
    }

    /// Feeds one block at `height`.
    pub fn feed_block(&mut self, block: &Block, height: u32) {
        let txs: Vec<String> = block.txdata.iter().map(serialize_hex).collect();
        self.call(
            "block_connected",
            json!({"height": height, "header": serialize_hex(&block.header), "transactions": txs}),
        );
        self.fed_height = height;
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the node to stop and waits for it, and removes its data directory (unless
    /// `KEEP_NODE_DIR` is set).
    pub fn finish(self) {
        let dir = self.stop();
        if std::env::var_os("KEEP_NODE_DIR").is_none() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// Asks the node to stop and waits for it. The data directory stays (for a restart with
    /// [`DaemonProcess::start_in`], which owns it from then on); [`DaemonProcess::finish`]
    /// removes it.
    #[must_use = "the data directory stays: restart in it, or call `finish` to remove it"]
    pub fn stop(mut self) -> PathBuf {
        let _ = self.try_call("stop", json!({}));
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let dir = self.dir.clone();
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir = PathBuf::new();
        dir
    }
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("node.log")).unwrap_or_default()
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.dir.as_os_str().is_empty() && std::env::var_os("KEEP_NODE_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Polls `f` every 20 ms until it returns `Some`, up to `secs` seconds.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
pub mod peer;

/// The resident memory of process `pid` in KiB (`VmRSS` of `/proc/<pid>/status`; 0 if gone).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
