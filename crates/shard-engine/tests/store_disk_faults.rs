//! `FsStore` on a failing disk, its permissions and its lock (issue 12, cases 1, 9 and 12).
//!
//! The disk tests mount a small tmpfs (which needs root: CI runs as root) and fill it, so
//! that writes fail with ENOSPC as they would on a full disk; where the mount is refused they
//! print why and pass without checking anything.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shard_engine::store::{DirLock, FsStore, FsStoreOptions, Store, StoreError, WriteOp};

/// A tmpfs mounted on a temporary directory, unmounted when dropped (also on a panic).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it), or says why not.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            Ok(o) => {
                eprintln!(
                    "skipped: cannot mount a tmpfs (this test needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount: {e}");
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
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Something still holds a file open there: detach it now, freed when closed.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Writes `path` until the file system is full; returns how many bytes went in.
fn fill(path: &Path) -> u64 {
    let mut f = File::create(path).expect("the filler file");
    let mut written = 0u64;
    for chunk in [1 << 16, 4096, 512, 1] {
        let buf = vec![0xa5u8; chunk];
        loop {
            match f.write(&buf) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    written
}

fn wal_len(root: &Path) -> u64 {
    fs::metadata(root.join("wal.log")).expect("wal.log").len()
}

fn put(key: &str, value: Vec<u8>) -> WriteOp {
    WriteOp::Put {
        namespace: "chan".into(),
        key: key.into(),
        value,
    }
}

/// Issue 12 case 1, as reproduced: a batch fails with ENOSPC after part of its frame reached
/// wal.log; space comes back; the next batch is acknowledged, so a reopen must return it.
#[test]
fn an_acknowledged_batch_after_enospc_survives_a_reopen() {
    let Some(tmpfs) = Tmpfs::mount("4m") else {
        return;
    };
    let root = tmpfs.path().join("node");
    let store = FsStore::open(&root).expect("open");
    store.write("chan", "first", &[1; 1_000]).expect("first");
    let good = wal_len(&root);
    let filler = tmpfs.path().join("filler");
    let filled = fill(&filler);
    assert!(filled > 3 << 20, "filled {filled} bytes");

    let big: Vec<WriteOp> = (0..20)
        .map(|i| put(&format!("big{i}"), vec![i as u8; 1_000]))
        .collect();
    match store.write_batch(&big) {
        Err(StoreError::Io { source, .. }) if source.kind() == ErrorKind::StorageFull => {}
        other => panic!("the 20 KB batch on a full disk: {other:?}"),
    }
    assert_eq!(wal_len(&root), good, "the partial frame is cut off wal.log");
    assert_eq!(store.read("chan", "big0").expect("read"), None);

    fs::remove_file(&filler).expect("free the space");
    store
        .write("chan", "second", &[2; 1_000])
        .expect("space is back");
    assert_eq!(
        store.read("chan", "second").expect("read"),
        Some(vec![2; 1_000])
    );
    drop(store);

    let store = FsStore::open(&root).expect("reopen");
    assert_eq!(
        store.read("chan", "second").expect("read"),
        Some(vec![2; 1_000]),
        "an acknowledged write is lost after a reopen"
    );
    assert_eq!(
        store.read("chan", "first").expect("read"),
        Some(vec![1; 1_000])
    );
    for i in 0..20 {
        assert_eq!(store.read("chan", &format!("big{i}")).expect("read"), None);
    }
}

/// The checkpoint fails with ENOSPC after its batch's frame is durable: the batch is
/// acknowledged (not an error), the WAL keeps it, and the checkpoint is retried once there
/// is space.
#[test]
fn enospc_in_a_checkpoint_keeps_the_batch_acknowledged() {
    let Some(tmpfs) = Tmpfs::mount("4m") else {
        return;
    };
    let root = tmpfs.path().join("node");
    let options = FsStoreOptions {
        checkpoint_bytes: 2_000,
        ..FsStoreOptions::default()
    };
    let store = FsStore::open_with(&root, options).expect("open");
    for i in 0..3u8 {
        store
            .write("chan", &format!("a{i}"), &[i; 300])
            .expect("small batches");
    }
    assert!(wal_len(&root) < 2_000, "no checkpoint yet");
    let filler = tmpfs.path().join("filler");
    fill(&filler);

    // Its frame fits in wal.log's last page (no new space needed) and crosses the
    // checkpoint size; the checkpoint needs new pages for the value files and fails.
    store
        .write("chan", "b", &[7; 1_500])
        .expect("the batch is durable in wal.log: acknowledged despite the checkpoint");
    assert!(
        wal_len(&root) > 2_000,
        "the checkpoint did not empty the WAL"
    );
    let leftovers: Vec<_> = fs::read_dir(root.join("data/chan"))
        .map(|d| d.map(|e| e.expect("entry").file_name()).collect())
        .unwrap_or_default();
    assert!(
        leftovers
            .iter()
            .all(|n| !n.to_string_lossy().ends_with(".tmp")),
        "temporary files left: {leftovers:?}"
    );
    assert_eq!(store.read("chan", "b").expect("read"), Some(vec![7; 1_500]));

    fs::remove_file(&filler).expect("free the space");
    store.write("chan", "c", &[8; 10]).expect("space is back");
    assert_eq!(wal_len(&root), 0, "the checkpoint was retried");
    assert!(root.join("data/chan/b").exists());
    drop(store);

    let store = FsStore::open_with(&root, options).expect("reopen");
    for i in 0..3u8 {
        assert_eq!(
            store.read("chan", &format!("a{i}")).expect("read"),
            Some(vec![i; 300])
        );
    }
    assert_eq!(store.read("chan", "b").expect("read"), Some(vec![7; 1_500]));
    assert_eq!(store.read("chan", "c").expect("read"), Some(vec![8; 10]));
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Every directory and file under `root` (`root` included).
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut all = vec![root.to_path_buf()];
    let mut i = 0;
    while i < all.len() {
        if all[i].is_dir() {
            let mut entries: Vec<PathBuf> = fs::read_dir(&all[i])
                .expect("list")
                .map(|e| e.expect("entry").path())
                .collect();
            entries.sort();
            all.extend(entries);
        }
        i += 1;
    }
    all
}

/// A store with values checkpointed into files and more in the WAL.
fn populated(root: &Path) {
    let options = FsStoreOptions {
        checkpoint_bytes: 500,
        ..FsStoreOptions::default()
    };
    let store = FsStore::open_with(root, options).expect("open");
    for i in 0..10u8 {
        store
            .write("channels", &format!("c{i}"), &[i; 200])
            .expect("write");
    }
    store.write("nodes", "n", b"node").expect("write");
    store.write("channels", "late", b"wal").expect("write");
}

#[test]
fn a_new_store_is_private_from_creation() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("a/node");
    populated(&root);
    assert!(root.join("data/channels/c0").exists(), "checkpointed");
    assert!(wal_len(&root) > 0, "and some values still in the WAL");
    let mut all = walk(&root);
    // Reopened: the rest is checkpointed (data/nodes/n).
    drop(FsStore::open(&root).expect("reopen"));
    all.extend(walk(&root));
    assert!(root.join("data/nodes/n").exists());
    for p in &all {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(p), want, "{}", p.display());
    }
    assert_eq!(mode(&tmp.path().join("a")), 0o700, "a created parent too");

    // An existing directory that holds no store yet (here 0755 from the umask) is made
    // private before anything is written in it.
    let fresh = tempfile::tempdir().expect("tempdir");
    set_mode(fresh.path(), 0o755);
    fs::write(fresh.path().join("unrelated"), b"x").expect("a file of the caller's");
    drop(FsStore::open(fresh.path()).expect("open"));
    assert_eq!(mode(fresh.path()), 0o700);
}

#[test]
fn a_store_readable_by_others_is_refused_naming_the_path() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("node");
    populated(&root);
    for (entry, loose, required) in [
        ("", 0o755, 0o700),
        ("", 0o701, 0o700),
        ("data", 0o750, 0o700),
        ("data/channels", 0o705, 0o700),
        ("wal.log", 0o644, 0o600),
        ("LOCK", 0o604, 0o600),
        ("data/channels/c3", 0o640, 0o600),
        ("data/nodes/n", 0o620, 0o600),
    ] {
        let path = if entry.is_empty() {
            root.clone()
        } else {
            root.join(entry)
        };
        let before = mode(&path);
        set_mode(&path, loose);
        match FsStore::open(&root) {
            Err(e @ StoreError::Permissions { .. }) => {
                let text = e.to_string();
                let StoreError::Permissions {
                    path: named,
                    mode: found,
                    required: want,
                } = e
                else {
                    unreachable!()
                };
                assert_eq!(named, path, "{entry:?}");
                assert_eq!((found, want), (loose, required), "{entry:?}");
                assert!(text.contains(&path.display().to_string()), "{text}");
                assert!(text.contains(&format!("{loose:04o}")), "{text}");
                assert!(text.contains(&format!("must be {required:04o}")), "{text}");
            }
            Ok(_) => panic!("{entry:?} at {loose:o}: opened"),
            Err(e) => panic!("{entry:?} at {loose:o}: {e}"),
        }
        set_mode(&path, before);
        let store = FsStore::open(&root).expect("private again");
        assert_eq!(
            store.read("channels", "late").expect("read"),
            Some(b"wal".to_vec())
        );
    }
}

#[test]
fn a_second_open_of_a_locked_store_names_the_holder() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("node");
    let first = FsStore::open(&root).expect("open");
    first.write("chan", "a", b"one").expect("write");
    for _ in 0..2 {
        match FsStore::open(&root) {
            Err(e @ StoreError::Locked { .. }) => {
                let text = e.to_string();
                let StoreError::Locked { path, holder_pid } = e else {
                    unreachable!()
                };
                assert_eq!(path, root);
                assert_eq!(holder_pid, Some(std::process::id()));
                assert!(text.contains(&root.display().to_string()), "{text}");
                assert!(
                    text.contains(&format!("pid {}", std::process::id())),
                    "{text}"
                );
            }
            Ok(_) => panic!("two stores opened on one directory"),
            Err(e) => panic!("{e}"),
        }
        assert!(matches!(
            DirLock::acquire(&root),
            Err(StoreError::Locked { .. })
        ));
    }
    // The refused opens changed nothing.
    assert_eq!(
        first.read("chan", "a").expect("read"),
        Some(b"one".to_vec())
    );
    first.write("chan", "b", b"two").expect("still the owner");
    drop(first);
    let second = FsStore::open(&root).expect("the lock went with the first store");
    assert_eq!(
        second.read("chan", "b").expect("read"),
        Some(b"two".to_vec())
    );
    drop(second);

    // A lock taken first (as a daemon does before writing its own files) opens the store.
    let lock = DirLock::acquire(&root).expect("lock");
    assert_eq!(lock.dir(), root);
    assert!(matches!(
        FsStore::open(&root),
        Err(StoreError::Locked { .. })
    ));
    let store = FsStore::open_locked(lock, FsStoreOptions::default()).expect("open locked");
    assert_eq!(
        store.read("chan", "a").expect("read"),
        Some(b"one".to_vec())
    );
    assert!(matches!(
        FsStore::open(&root),
        Err(StoreError::Locked { .. })
    ));
}

#[test]
fn a_store_locked_by_another_process_is_refused_naming_its_pid() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("node");
    drop(FsStore::open(&root).expect("create the store"));
    let lock = root.join("LOCK");
    assert_eq!(fs::read(&lock).expect("LOCK"), b"", "no pid once released");
    // flock(1) takes the same kind of lock; the shell it becomes records its pid as ours does.
    let child = Command::new("flock")
        .args(["--no-fork", "--nonblock"])
        .arg(&lock)
        .args(["sh", "-c", "echo $$ > \"$0\"; exec sleep 60"])
        .arg(&lock)
        .stdin(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("skipped: flock(1) is not available");
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let holder = loop {
        let text = fs::read_to_string(&lock).unwrap_or_default();
        if let Ok(pid) = text.trim().parse::<u32>() {
            break pid;
        }
        assert!(Instant::now() < deadline, "the child never took the lock");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(holder, child.id());
    let refused = FsStore::open(&root);
    child.kill().expect("kill the holder");
    child.wait().expect("reap the holder");
    match refused {
        Err(StoreError::Locked { path, holder_pid }) => {
            assert_eq!(path, root);
            assert_eq!(holder_pid, Some(holder));
        }
        Ok(_) => panic!("opened a store another process holds"),
        Err(e) => panic!("{e}"),
    }
    FsStore::open(&root).expect("the lock died with its holder");
}
