//! `FsStore`'s preallocated write-ahead log (issue 13: cheaper syncs, same durability).
//!
//! Once the WAL holds 64 KiB, `wal.log` is extended with written zeros ahead of its end and
//! frames are written over them, so the file's length is no longer the log's end. These tests
//! read and damage `wal.log` with their own reader and writer of the documented frame format
//! (not the store's code), and simulate crashes by copying the store's files between batches
//! (a crash image) and then changing the copy as an interrupted write would have left it.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use lightning_core::bitcoin::hashes::{sha256, Hash};
use shard_engine::store::{FsStore, FsStoreOptions, Store, StoreError, WriteOp};

const HEADER_LEN: usize = 20;
/// The WAL length from which the store preallocates (its documented 64 KiB).
const PREALLOCATE_FROM: usize = 64 << 10;

/// One frame of the documented format around `batch`.
fn frame(batch: &[(&str, &str, Option<&[u8]>)]) -> Vec<u8> {
    let mut body = (batch.len() as u32).to_be_bytes().to_vec();
    for (namespace, key, value) in batch {
        body.push(if value.is_some() { 1 } else { 2 });
        body.push(namespace.len() as u8);
        body.extend_from_slice(namespace.as_bytes());
        body.push(key.len() as u8);
        body.extend_from_slice(key.as_bytes());
        if let Some(value) = value {
            body.extend_from_slice(&(value.len() as u32).to_be_bytes());
            body.extend_from_slice(value);
        }
    }
    let mut frame = b"LNSW".to_vec();
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&sha256::Hash::hash(&body).as_byte_array()[..8]);
    let head_sum = sha256::Hash::hash(&frame);
    frame.extend_from_slice(&head_sum.as_byte_array()[..4]);
    frame.extend_from_slice(&body);
    frame
}

/// The end of the last frame whose header and body check out, reading from the start.
fn logical_end(wal: &[u8]) -> usize {
    let mut at = 0;
    while wal.len() - at >= HEADER_LEN {
        let header = &wal[at..at + HEADER_LEN];
        if &header[..4] != b"LNSW"
            || sha256::Hash::hash(&header[..16]).as_byte_array()[..4] != header[16..]
        {
            break;
        }
        let len = u32::from_be_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
        let Some(body) = wal.get(at + HEADER_LEN..at + HEADER_LEN + len) else {
            break;
        };
        if sha256::Hash::hash(body).as_byte_array()[..8] != header[8..16] {
            break;
        }
        at += HEADER_LEN + len;
    }
    at
}

/// A new directory, private as the store requires of one that holds its files.
fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
    dir
}

/// A copy of the store's files in a new directory, as a crash at this moment leaves them
/// (taken between batches, so every write is complete). `wal` replaces `wal.log`'s bytes.
fn crash_image(root: &Path, wal: Option<&[u8]>) -> tempfile::TempDir {
    let image = private_dir();
    fn copy_dir(from: &Path, to: &Path) {
        for entry in fs::read_dir(from).expect("list") {
            let entry = entry.expect("entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("type").is_dir() {
                DirBuilder::new()
                    .mode(0o700)
                    .create(&target)
                    .expect("mkdir");
                copy_dir(&entry.path(), &target);
            } else {
                fs::copy(entry.path(), &target).expect("copy");
            }
        }
    }
    DirBuilder::new()
        .mode(0o700)
        .create(image.path().join("data"))
        .expect("mkdir data");
    copy_dir(&root.join("data"), &image.path().join("data"));
    let bytes = match wal {
        Some(bytes) => bytes.to_vec(),
        None => fs::read(root.join("wal.log")).expect("wal.log"),
    };
    write_wal(image.path(), &bytes);
    image
}

fn write_wal(root: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(root.join("wal.log"))
        .expect("wal.log");
    f.write_all(bytes).expect("write wal.log");
}

fn value(i: usize) -> Vec<u8> {
    let mut v = vec![(i % 251) as u8; 1_000];
    v[..8].copy_from_slice(&(i as u64).to_be_bytes());
    v
}

/// Writes batches 0..n: batch i puts `k{i % 20}` = value(i) and `last` = i.
fn write_batches(store: &FsStore, from: usize, n: usize) {
    for i in from..from + n {
        store
            .write_batch(&[
                WriteOp::Put {
                    namespace: "chan".into(),
                    key: format!("k{}", i % 20),
                    value: value(i),
                },
                WriteOp::Put {
                    namespace: "node".into(),
                    key: "last".into(),
                    value: (i as u64).to_be_bytes().to_vec(),
                },
            ])
            .unwrap_or_else(|e| panic!("batch {i}: {e}"));
    }
}

/// The store holds what batches 0..n wrote, and nothing of a later batch.
fn assert_batches(store: &FsStore, n: usize, case: &str) {
    let last = store.read("node", "last").expect("read");
    assert_eq!(
        last,
        n.checked_sub(1).map(|i| (i as u64).to_be_bytes().to_vec()),
        "{case}: the last batch"
    );
    for k in 0..20.min(n) {
        let i = (0..n).rev().find(|i| i % 20 == k).expect("written");
        assert_eq!(
            store.read("chan", &format!("k{k}")).expect("read"),
            Some(value(i)),
            "{case}: k{k}"
        );
    }
}

fn no_checkpoint() -> FsStoreOptions {
    FsStoreOptions {
        checkpoint_bytes: u64::MAX,
        ..FsStoreOptions::default()
    }
}

#[test]
fn many_batches_reopen_with_a_preallocated_tail() {
    for sync in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = FsStoreOptions {
            sync,
            ..no_checkpoint()
        };
        let store = FsStore::open_with(dir.path(), options).expect("open");
        let before = store.syncs();
        write_batches(&store, 0, 150);
        let wal = fs::read(dir.path().join("wal.log")).expect("wal.log");
        let end = logical_end(&wal);
        assert!(end > PREALLOCATE_FROM, "{end}");
        assert!(wal.len() >= 4 << 20, "preallocated: {} bytes", wal.len());
        assert!(wal[end..].iter().all(|b| *b == 0), "zeros past the end");
        // One sync per batch, and one for the single preallocation.
        let syncs = store.syncs() - before;
        assert_eq!(syncs, if sync { 151 } else { 0 }, "sync {sync}");

        let image = crash_image(dir.path(), None);
        let copy = FsStore::open_with(image.path(), options).expect("open the crash image");
        assert_batches(&copy, 150, "crash image");
        write_batches(&copy, 150, 5);
        drop(copy);
        let copy = FsStore::open_with(image.path(), options).expect("reopen the image");
        assert_batches(&copy, 155, "crash image, written and reopened");

        drop(store);
        let store = FsStore::open_with(dir.path(), options).expect("reopen");
        assert_batches(&store, 150, "reopened");
    }
}

/// A store past the preallocation threshold, its WAL bytes, and their logical end.
fn preallocated(dir: &Path, batches: usize) -> (FsStore, Vec<u8>, usize) {
    let store = FsStore::open_with(dir, no_checkpoint()).expect("open");
    write_batches(&store, 0, batches);
    let wal = fs::read(dir.join("wal.log")).expect("wal.log");
    let end = logical_end(&wal);
    assert!(wal.len() > end + 10_000, "preallocated past the end");
    (store, wal, end)
}

#[test]
fn a_torn_frame_over_the_zeros_is_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_store, wal, end) = preallocated(dir.path(), 80);
    let next = frame(&[
        ("chan", "torn", Some(&[0xee; 3_000][..])),
        ("node", "last", Some(&999u64.to_be_bytes()[..])),
    ]);
    // Every cut of the header, then cuts through the body (a page written, the next not).
    let cuts: Vec<usize> = (1..HEADER_LEN + 4)
        .chain((HEADER_LEN + 4..next.len()).step_by(331))
        .chain([next.len() - 1])
        .collect();
    for cut in cuts {
        let mut torn = wal.clone();
        torn[end..end + cut].copy_from_slice(&next[..cut]);
        let image = crash_image(dir.path(), Some(&torn));
        let store = FsStore::open_with(image.path(), no_checkpoint())
            .unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        assert_batches(&store, 80, &format!("cut {cut}"));
        assert_eq!(store.read("chan", "torn").expect("read"), None, "cut {cut}");
        // The torn bytes are gone: what is written next is read back after a reopen.
        write_batches(&store, 80, 3);
        drop(store);
        let store = FsStore::open_with(image.path(), no_checkpoint()).expect("reopen");
        assert_batches(&store, 83, &format!("cut {cut}, written after"));
    }

    // The whole frame over the zeros is a complete write: it is replayed.
    let mut whole = wal.clone();
    whole[end..end + next.len()].copy_from_slice(&next);
    let image = crash_image(dir.path(), Some(&whole));
    let store = FsStore::open_with(image.path(), no_checkpoint()).expect("open");
    assert_eq!(
        store.read("chan", "torn").expect("read"),
        Some(vec![0xee; 3_000])
    );
    assert_eq!(
        store.read("node", "last").expect("read"),
        Some(999u64.to_be_bytes().to_vec())
    );
}

#[test]
fn damage_in_a_preallocated_wal_is_still_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_store, wal, end) = preallocated(dir.path(), 80);
    let next = frame(&[("chan", "late", Some(&[0x11; 500][..]))]);
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // The last acknowledged frame's header damaged (its body is non-zero after it).
    let last_start = {
        let mut at = 0;
        let mut last = 0;
        while at < end {
            last = at;
            let len = u32::from_be_bytes(wal[at + 4..at + 8].try_into().expect("4")) as usize;
            at += HEADER_LEN + len;
        }
        last
    };
    let mut bad = wal.clone();
    bad[last_start + 5] ^= 0x01;
    cases.push(("last frame's header", bad));
    // A valid frame after garbage in the zeros.
    let mut bad = wal.clone();
    bad[end + 7] = 0x42;
    bad[end + 100..end + 100 + next.len()].copy_from_slice(&next);
    cases.push(("a frame after garbage", bad));
    // A frame whose header never reached the disk but whose body did (out of order): the
    // store cannot tell it from a damaged acknowledged frame, and refuses to guess.
    let mut bad = wal.clone();
    bad[end + HEADER_LEN..end + next.len()].copy_from_slice(&next[HEADER_LEN..]);
    cases.push(("a body under a zero header", bad));
    for (case, bytes) in cases {
        let image = crash_image(dir.path(), Some(&bytes));
        match FsStore::open_with(image.path(), no_checkpoint()) {
            Err(e @ StoreError::Corrupt { .. }) => {
                assert!(e.to_string().contains("wal.log frame"), "{case}: {e}")
            }
            Ok(_) => panic!("{case}: opened"),
            Err(e) => panic!("{case}: {e}"),
        }
    }
}

#[test]
fn a_crash_while_preallocating_leaves_a_wal_that_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Just past the threshold: the last batch grew the file.
    let store = FsStore::open_with(dir.path(), no_checkpoint()).expect("open");
    let wal_len = || fs::metadata(dir.path().join("wal.log")).expect("wal").len() as usize;
    let mut n = 0;
    let mut before_growth = 0;
    while wal_len() < 1 << 20 {
        before_growth = wal_len();
        write_batches(&store, n, 1);
        n += 1;
    }
    assert!(before_growth > PREALLOCATE_FROM, "{before_growth}");
    let wal = fs::read(dir.path().join("wal.log")).expect("wal.log");
    let end = logical_end(&wal);
    assert!(end > before_growth && end < before_growth + 3_000, "{end}");
    // The growth's zeros reached the disk in part (its size and some pages, or none): the
    // batch that grew the file was not acknowledged, so only the batches before it count.
    for len in [
        before_growth,
        before_growth + 1,
        before_growth + 19,
        before_growth + 4_096,
        (before_growth + 4_096) & !4_095,
        before_growth + (1 << 20) + 3,
        wal.len(),
    ] {
        let mut partial = wal[..before_growth].to_vec();
        partial.resize(len, 0);
        let image = crash_image(dir.path(), Some(&partial));
        let store = FsStore::open_with(image.path(), no_checkpoint())
            .unwrap_or_else(|e| panic!("length {len}: {e}"));
        assert_batches(&store, n - 1, &format!("length {len}"));
        write_batches(&store, n - 1, 2);
        drop(store);
        let store = FsStore::open_with(image.path(), no_checkpoint()).expect("reopen");
        assert_batches(&store, n + 1, &format!("length {len}, written after"));
    }
    // And the preallocated file with the acknowledged frame in it.
    let image = crash_image(dir.path(), None);
    let copy = FsStore::open_with(image.path(), no_checkpoint()).expect("open");
    assert_batches(&copy, n, "grown");
    // The file cut anywhere past the logical end (a growth of a size not yet durable).
    for len in [end, end + 1, end + 5_000] {
        let image = crash_image(dir.path(), Some(&wal[..len]));
        let copy = FsStore::open_with(image.path(), no_checkpoint()).expect("open");
        assert_batches(&copy, n, &format!("grown, cut at {len}"));
    }
}

#[test]
fn stale_frames_after_a_checkpoint_are_never_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = FsStoreOptions {
        checkpoint_bytes: 200_000,
        ..FsStoreOptions::default()
    };
    let store = FsStore::open_with(dir.path(), options).expect("open");
    let mut previous_len = 0;
    let mut checkpoints = 0;
    let mut preallocated = false;
    let mut i = 0;
    while checkpoints < 3 {
        write_batches(&store, i, 1);
        i += 1;
        let wal = fs::read(dir.path().join("wal.log")).expect("wal.log");
        let end = logical_end(&wal);
        assert!(
            wal[end..].iter().all(|b| *b == 0),
            "batch {i}: past the end"
        );
        preallocated |= wal.len() > end + 4_096;
        let crashed_now = wal.len() < previous_len || i % 37 == 0;
        if wal.len() < previous_len {
            checkpoints += 1;
        }
        previous_len = wal.len();
        if crashed_now {
            let image = crash_image(dir.path(), None);
            let copy = FsStore::open_with(image.path(), options).expect("open the image");
            assert_batches(&copy, i, &format!("crash image after batch {i}"));
        }
    }
    assert!(preallocated, "the WAL was preallocated between checkpoints");
    // Right after a checkpoint: one small batch over a file cut to zero length.
    write_batches(&store, i, 1);
    let image = crash_image(dir.path(), None);
    let copy = FsStore::open_with(image.path(), options).expect("open the image");
    assert_batches(&copy, i + 1, "one batch after a checkpoint");
}

#[test]
fn a_wal_written_before_preallocation_opens() {
    // Frames appended back to back, the file's length its end: as every FsStore wrote its
    // WAL before preallocation (the same frame format).
    let frames = [
        frame(&[("chan", "a", Some(&b"one"[..]))]),
        frame(&[
            ("chan", "b", Some(&b"two"[..])),
            ("node", "n", Some(&[7; 300][..])),
        ]),
        frame(&[("chan", "a", None), ("chan", "c", Some(&b"three"[..]))]),
    ];
    let all: Vec<u8> = frames.concat();
    let two = frames[0].len() + frames[1].len();
    for (case, bytes, has_third) in [
        ("whole", all.clone(), true),
        ("torn third frame", all[..all.len() - 3].to_vec(), false),
        ("zero-extended", [&all[..], &[0; 700][..]].concat(), true),
        ("third header cut", all[..two + 9].to_vec(), false),
    ] {
        let dir = private_dir();
        DirBuilder::new()
            .mode(0o700)
            .create(dir.path().join("data"))
            .expect("data");
        write_wal(dir.path(), &bytes);
        let store = FsStore::open(dir.path()).unwrap_or_else(|e| panic!("{case}: {e}"));
        let a = store.read("chan", "a").expect("read");
        assert_eq!(
            a,
            (!has_third).then(|| b"one".to_vec()),
            "{case}: a is removed by the third frame"
        );
        assert_eq!(
            store.read("chan", "b").expect("read"),
            Some(b"two".to_vec())
        );
        assert_eq!(store.read("node", "n").expect("read"), Some(vec![7; 300]));
        assert_eq!(
            store.read("chan", "c").expect("read"),
            has_third.then(|| b"three".to_vec()),
            "{case}"
        );
        // It goes on in the new way: past the threshold, preallocated, then reopened.
        write_batches(&store, 0, 100);
        assert!(
            fs::metadata(dir.path().join("wal.log")).expect("wal").len() >= 4 << 20,
            "{case}: preallocated"
        );
        drop(store);
        let store = FsStore::open(dir.path()).expect("reopen");
        assert_batches(&store, 100, case);
        assert_eq!(
            store.read("chan", "b").expect("read"),
            Some(b"two".to_vec())
        );
    }
}

/// A tmpfs mounted on a temporary directory (which needs root, as CI has), unmounted when
/// dropped; `None`, saying why, where the mount is refused.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .stdin(std::process::Stdio::null())
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
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let path = self.dir.path();
        let ok = std::process::Command::new("umount")
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(path)
                .status();
        }
    }
}

/// A disk without room for the preallocation: it fails with ENOSPC, gives its space back,
/// and the store goes on appending; every acknowledged batch is there after a reopen.
#[test]
fn enospc_while_preallocating_falls_back_to_appending() {
    let Some(tmpfs) = Tmpfs::mount("2m") else {
        return;
    };
    let root = tmpfs.dir.path().join("node");
    let store = FsStore::open(&root).expect("open");
    let wal_len = || fs::metadata(root.join("wal.log")).expect("wal.log").len() as usize;
    let mut n = 0;
    while wal_len() < PREALLOCATE_FROM + 10_000 {
        write_batches(&store, n, 1);
        n += 1;
        assert!(n < 200);
    }
    // Every batch was appended: no 4 MiB of zeros fit in 2 MiB, and none are left behind.
    let wal = fs::read(root.join("wal.log")).expect("wal.log");
    assert_eq!(logical_end(&wal), wal.len(), "no zeros past the end");
    // The space the failed preallocation took was given back: a file of 1 MiB still fits.
    fs::write(tmpfs.dir.path().join("filler"), vec![0xa5; 1 << 20]).expect("room left");
    fs::remove_file(tmpfs.dir.path().join("filler")).expect("remove");
    write_batches(&store, n, 20);
    drop(store);
    let store = FsStore::open(&root).expect("reopen");
    assert_batches(&store, n + 20, "reopened");
}
