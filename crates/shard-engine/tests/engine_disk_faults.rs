//! A full disk under a running engine (issue 12, cases 1 and 2 at engine level): a 2-shard
//! engine on an [`FsStore`] on a small tmpfs, with payments flowing, runs out of space in a
//! commit. The whole engine stops with the store's error (ENOSPC), no shard writes or serves
//! peers after it even once space is back, nothing any peer received reports a state the
//! store does not hold, and a restart on the same directory returns every acknowledged state:
//! the payments finish and every balance reconciles.
//!
//! The tmpfs is mounted by the test, which needs root (CI runs as root); elsewhere the test
//! says so and passes without running.

use lnshard_testkit as support;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shard_engine::sim::SimRng;
use shard_engine::store::{FsStore, Store};
use shard_engine::{Engine, EngineConfig, EngineError, NodeApi, StopReason};
use support::{engine_config, hub_secret, hub_seed, Net, PaymentMix, Threaded};

const PEERS: usize = 8;

/// A tmpfs mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount's syntax: "8m"); `None` (with the reason printed)
    /// where this process may not mount.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs (run as root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn config(store: Arc<dyn Store>) -> EngineConfig {
    EngineConfig {
        store: Some(store),
        reply_timeout: Duration::from_secs(30),
        ..engine_config(2)
    }
}

fn open(root: &Path) -> Engine {
    let store: Arc<dyn Store> = Arc::new(FsStore::open(root).expect("FsStore::open"));
    Engine::open(
        config(store),
        hub_secret(),
        hub_seed(),
        100,
        support::genesis(),
    )
    .expect("Engine::open on the store after the disk filled")
}

/// The payments these tests start.
const MIX: PaymentMix = PaymentMix {
    extra_msat: 5_000_000,
    from_hub_every: None,
    fail_one_in: None,
};

/// Fills the filesystem of `path` with a file until it is full, then frees `slack` bytes.
fn fill(path: &Path, slack: u64) -> File {
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .expect("filler");
    let chunk = vec![0x5au8; 64 << 10];
    let mut len = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => len += n as u64,
            Err(_) => break,
        }
    }
    f.set_len(len.saturating_sub(slack)).expect("free slack");
    f
}

/// The OS error under an error's source chain, if any.
fn os_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cur = err.source();
    }
    None
}

fn wal_len(root: &Path) -> u64 {
    std::fs::metadata(root.join("wal.log")).map_or(0, |m| m.len())
}

#[test]
fn enospc_in_one_shard_stops_the_engine_and_a_restart_returns_every_acknowledged_state() {
    let Some(tmpfs) = Tmpfs::mount("8m") else {
        return;
    };
    let root: PathBuf = tmpfs.path().join("store");
    let engine = open(&root);
    let mut net = Net::new(Threaded { engine }, PEERS);
    net.eager_claims = true;
    let specs: Vec<(usize, bool)> = (0..PEERS).map(|i| (i, i % 3 == 0)).collect();
    net.open_channels(&specs);
    let initial = net.balances();
    let mut rng = SimRng::new(21);
    net.start_random_payments(&mut rng, 8, MIX);
    net.run();

    // The disk fills up with payments in flight; a few more commits fit.
    let filler_path = tmpfs.path().join("filler");
    let filler = fill(&filler_path, 48 << 10);
    let mut rounds = 0;
    while net.hub.engine.health().is_ok() {
        if net.htlcs_in_flight() == 0 {
            net.start_random_payments(&mut rng, 8, MIX);
        }
        net.rounds(1);
        rounds += 1;
        assert!(rounds < 5_000, "the disk never filled");
    }
    let stopped = net.hub.engine.health().expect_err("stopped");
    eprintln!("stopped after {rounds} rounds: {stopped}");
    let EngineError::Stopped {
        reason: StopReason::CommitFailed { error, .. },
    } = &stopped
    else {
        panic!("not a commit failure: {stopped:?}");
    };
    assert!(
        matches!(error.as_ref(), EngineError::Store(_)),
        "the store's own error: {error:?}"
    );
    let io = os_error(&stopped).expect("the OS error in the chain");
    assert_eq!(io.raw_os_error(), Some(28), "ENOSPC: {io}");

    // Space comes back: no shard writes or serves peers any more.
    drop(filler);
    std::fs::remove_file(&filler_path).expect("free the disk");
    let wal = wal_len(&root);
    assert_eq!(
        net.hub.engine.list_channels().map(|_| ()),
        Err(stopped.clone())
    );
    for i in 0..PEERS {
        // A peer's bytes on a connection of its own: refused.
        let (mut link, end) = support::Link::open(
            1_000 + i as u64,
            &support::peer_secret(i),
            &support::hub_secret(),
        );
        let ping = link.seal(&[0u8, 18, 0, 4, 0, 0]);
        assert_eq!(
            net.hub
                .engine
                .connection_ciphertext(end.conn, net.peer_id(i), ping),
            Err(stopped.clone())
        );
    }
    net.rounds(3);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(wal_len(&root), wal, "a shard of the stopped engine wrote");

    // The operator restarts the node on the same directory.
    net.cut_all_for_crash();
    let placeholder = Engine::new(
        engine_config(1),
        support::secret(b"placeholder"),
        [0; 32],
        100,
        support::genesis(),
    );
    let old = std::mem::replace(&mut net.hub.engine, placeholder);
    let report = old.shutdown(Duration::from_secs(1));
    net.absorb_hub_events(report.events);
    let started = Instant::now();
    let mut restored = Threaded {
        engine: open(&root),
    };
    eprintln!("reopened in {:?}", started.elapsed());
    let errors = net.peers_ahead_of(&mut restored);
    assert!(errors.is_empty(), "{errors:#?}");
    drop(std::mem::replace(&mut net.hub, restored));
    net.hub_stopped = None;
    net.reconnect_all();
    net.run();
    net.start_random_payments(&mut rng, 8, MIX);
    net.run();
    let errors = net.check(&initial);
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(net.hub.engine.health(), Ok(()));
    let report = std::mem::replace(
        &mut net.hub.engine,
        Engine::new(
            engine_config(1),
            support::secret(b"placeholder"),
            [0; 32],
            100,
            support::genesis(),
        ),
    )
    .shutdown(Duration::from_secs(5));
    assert!(report.parked.is_empty());
}
