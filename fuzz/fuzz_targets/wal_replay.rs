//! Fuzzes `FsStore`'s write-ahead-log reader through its public API: the input becomes
//! `wal.log` in an empty store directory, and `FsStore::open_with` replays it.
//!
//! The first byte chooses how the log is made:
//! - 0: the rest of the input, as is;
//! - 1: frames with valid checksums around fuzzer-chosen bodies (so the body parser is
//!   reached), some with a damaged header or body checksum;
//! - 2: as 1, with bodies made of well-formed operations whose names and values are fuzzed;
//! - 3: batches written by `FsStore::write_batch` itself, then the file damaged (cut short,
//!   extended with zeros or garbage, or a byte changed).
//!
//! Oracle for 0 to 2: an independent reader written from the format in the store's
//! documentation decides what opening must give: either the values of every complete frame
//! (a torn final frame dropped) or `StoreError::Corrupt`. When open succeeds, every key reads
//! back its value, `list` gives exactly the live keys, and a second open (after the
//! checkpoint that moved the log into files) reads the same. For 3: opening gives the state
//! after some prefix of the written batches, at least every batch whose frame lies wholly
//! before the damage; cutting or zero-extending the file never makes it `Corrupt`.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lightning_core::bitcoin::hashes::{sha256, Hash};
use shard_engine::store::{FsStore, FsStoreOptions, Store, StoreError, WriteOp};

/// (namespace, key) -> value; a removed key is absent.
type State = BTreeMap<(String, String), Vec<u8>>;

const HEADER_LEN: usize = 20;

fn options() -> FsStoreOptions {
    FsStoreOptions {
        sync: false,
        ..FsStoreOptions::default()
    }
}

/// A directory of this process's own, emptied for each input.
fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        base.join(format!("lnshard-fuzz-wal-{}", std::process::id()))
    })
}

fn fresh_dir() -> &'static Path {
    let dir = dir();
    let _ = fs::remove_dir_all(dir);
    fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .expect("create the store directory");
    dir
}

fn write_wal(dir: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dir.join("wal.log"))
        .expect("create wal.log");
    f.write_all(bytes).expect("write wal.log");
}

fn sum(bytes: &[u8], n: usize) -> Vec<u8> {
    sha256::Hash::hash(bytes).as_byte_array()[..n].to_vec()
}

fn frame(body: &[u8], bad_header: bool, bad_body: bool) -> Vec<u8> {
    let mut frame = b"LNSW".to_vec();
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    let mut body_sum = sum(body, 8);
    if bad_body {
        body_sum[0] ^= 1;
    }
    frame.extend_from_slice(&body_sum);
    let mut head_sum = sum(&frame, 4);
    if bad_header {
        head_sum[0] ^= 1;
    }
    frame.extend_from_slice(&head_sum);
    frame.extend_from_slice(body);
    frame
}

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= 120
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

/// The operations of one frame body, or `None` if the body is malformed.
fn parse_body(body: &[u8]) -> Option<Vec<(String, String, Option<Vec<u8>>)>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (head, tail) = b.split_at(n);
        *b = tail;
        Some(head)
    }
    fn name(b: &mut &[u8]) -> Option<String> {
        let n = usize::from(take(b, 1)?[0]);
        let raw = take(b, n)?;
        valid_name(raw).then(|| String::from_utf8(raw.to_vec()).expect("ASCII"))
    }
    let mut b = body;
    let count = u32::from_be_bytes(take(&mut b, 4)?.try_into().ok()?);
    let mut ops = Vec::new();
    for _ in 0..count {
        let op = take(&mut b, 1)?[0];
        let ns = name(&mut b)?;
        let key = name(&mut b)?;
        match op {
            1 => {
                let n = u32::from_be_bytes(take(&mut b, 4)?.try_into().ok()?) as usize;
                ops.push((ns, key, Some(take(&mut b, n)?.to_vec())));
            }
            2 => ops.push((ns, key, None)),
            _ => return None,
        }
    }
    b.is_empty().then_some(ops)
}

/// What opening a store whose log is `wal` must give: its state, or `None` for corrupt.
fn model(wal: &[u8]) -> Option<State> {
    let mut state = State::new();
    let mut rest = wal;
    loop {
        if rest.iter().all(|b| *b == 0) || rest.len() < HEADER_LEN {
            return Some(state); // empty, a zero-filled tail, or a torn header
        }
        let (header, after) = rest.split_at(HEADER_LEN);
        if &header[..4] != b"LNSW" || sum(&header[..16], 4) != header[16..] {
            // A header written only in part over zeros (preallocated) is a torn final write.
            return after.iter().all(|b| *b == 0).then_some(state);
        }
        let len = u32::from_be_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
        if len > after.len() {
            return Some(state); // torn final frame
        }
        let (body, next) = after.split_at(len);
        if sum(body, 8) != header[8..16] {
            return next.iter().all(|b| *b == 0).then_some(state);
        }
        for (ns, key, value) in parse_body(body)? {
            match value {
                Some(v) => state.insert((ns, key), v),
                None => state.remove(&(ns, key)),
            };
        }
        rest = next;
    }
}

/// Everything `store` holds under the namespaces and keys `names` mentions, checked
/// against its `list`.
fn read_state(store: &FsStore, names: &BTreeSet<(String, String)>) -> State {
    let mut state = State::new();
    let namespaces: BTreeSet<&String> = names.iter().map(|(ns, _)| ns).collect();
    for ns in namespaces {
        let listed = store.list(ns).expect("list");
        let mut live = Vec::new();
        for (n, key) in names.iter().filter(|(n, _)| n == ns) {
            if let Some(value) = store.read(n, key).expect("read") {
                state.insert((n.clone(), key.clone()), value);
                live.push(key.clone());
            }
        }
        assert_eq!(listed, live, "list({ns}) disagrees with read");
    }
    state
}

/// Every (namespace, key) a log mentions in any well-formed body.
fn names_in(wal: &[u8]) -> BTreeSet<(String, String)> {
    let mut names = BTreeSet::new();
    let mut rest = wal;
    while rest.len() >= HEADER_LEN {
        let len = u32::from_be_bytes(rest[4..8].try_into().expect("4 bytes")) as usize;
        let Some(body) = rest.get(HEADER_LEN..HEADER_LEN.saturating_add(len)) else {
            break;
        };
        for (ns, key, _) in parse_body(body).unwrap_or_default() {
            names.insert((ns, key));
        }
        rest = &rest[HEADER_LEN + len..];
    }
    names
}

/// Opens the store in `dir` and checks it against `expected` (`None`: must be corrupt).
fn open_and_check(dir: &Path, expected: Option<&State>, names: &BTreeSet<(String, String)>) {
    match (FsStore::open_with(dir, options()), expected) {
        (Ok(store), Some(expected)) => {
            assert_eq!(&read_state(&store, names), expected, "replayed state");
            drop(store);
            let again = FsStore::open_with(dir, options()).expect("reopen after a checkpoint");
            assert_eq!(
                &read_state(&again, names),
                expected,
                "state after reopening"
            );
        }
        (Ok(_), None) => panic!("a corrupt log opened"),
        (Err(StoreError::Corrupt { .. }), None) => {}
        (Err(e), expected) => panic!("open failed ({e}); expected {expected:?}"),
    }
}

/// A name from the input: mostly one of a few valid ones, sometimes raw bytes.
fn name(input: &mut &[u8]) -> Vec<u8> {
    let b = take_u8(input);
    match b {
        0..=199 => format!("n{}", b % 4).into_bytes(),
        200..=239 => vec![b'x'; usize::from(b - 200) * 4],
        _ => {
            let n = usize::from(take_u8(input) % 130);
            take_bytes(input, n)
        }
    }
}

fn take_u8(input: &mut &[u8]) -> u8 {
    match input.split_first() {
        Some((b, rest)) => {
            *input = rest;
            *b
        }
        None => 0,
    }
}

fn take_bytes(input: &mut &[u8], n: usize) -> Vec<u8> {
    let (head, rest) = input.split_at(n.min(input.len()));
    *input = rest;
    head.to_vec()
}

/// Frames around bodies from the input (`structured`: bodies of well-formed operations).
fn fuzzed_frames(mut input: &[u8], structured: bool) -> Vec<u8> {
    let mut wal = Vec::new();
    while !input.is_empty() {
        let flags = take_u8(&mut input);
        let body = if structured {
            let count = flags >> 4;
            let mut body = u32::from(count).to_be_bytes().to_vec();
            for _ in 0..count {
                let op = match take_u8(&mut input) {
                    0..=127 => 1,
                    128..=251 => 2,
                    b => b,
                };
                body.push(op);
                for _ in 0..2 {
                    let name = name(&mut input);
                    body.push(name.len() as u8);
                    body.extend_from_slice(&name);
                }
                if op == 1 {
                    let n = usize::from(take_u8(&mut input) % 32);
                    let value = take_bytes(&mut input, n);
                    body.extend_from_slice(&(value.len() as u32).to_be_bytes());
                    body.extend_from_slice(&value);
                }
            }
            if flags & 8 != 0 {
                body.push(take_u8(&mut input));
            }
            body
        } else {
            let n = usize::from(take_u8(&mut input));
            take_bytes(&mut input, n)
        };
        wal.extend(frame(&body, flags & 3 == 1, flags & 3 == 2));
        if flags & 4 != 0 {
            // A torn or zero-filled tail, or stray bytes.
            match take_u8(&mut input) % 3 {
                0 => wal.truncate(wal.len().saturating_sub(usize::from(take_u8(&mut input)))),
                1 => wal.extend(std::iter::repeat(0).take(usize::from(take_u8(&mut input)))),
                _ => {
                    let n = usize::from(take_u8(&mut input) % 16);
                    wal.extend(take_bytes(&mut input, n));
                }
            }
        }
    }
    wal
}

/// Batches written by the store itself, then damage: checked against the prefix states.
fn written_then_damaged(mut input: &[u8]) {
    let dir = fresh_dir();
    let store = FsStore::open_with(dir, options()).expect("open an empty store");
    let mut states = vec![State::new()];
    let mut ends = Vec::new(); // the log's length after each batch
    let mut names = BTreeSet::new();
    let batches = usize::from(take_u8(&mut input) % 8);
    for _ in 0..batches {
        let mut state = states.last().expect("the empty state").clone();
        let n = 1 + usize::from(take_u8(&mut input) % 4);
        let mut batch = Vec::new();
        for _ in 0..n {
            let b = take_u8(&mut input);
            let namespace = format!("ns{}", b % 2);
            let key = format!("k{}", (b >> 1) % 4);
            names.insert((namespace.clone(), key.clone()));
            if b & 0x80 == 0 {
                let len = usize::from(take_u8(&mut input) % 24);
                let value = take_bytes(&mut input, len);
                state.insert((namespace.clone(), key.clone()), value.clone());
                batch.push(WriteOp::Put {
                    namespace,
                    key,
                    value,
                });
            } else {
                state.remove(&(namespace.clone(), key.clone()));
                batch.push(WriteOp::Remove { namespace, key });
            }
        }
        store.write_batch(&batch).expect("write a batch");
        states.push(state);
        ends.push(fs::metadata(dir.join("wal.log")).expect("wal.log").len() as usize);
    }
    drop(store);
    let mut wal = fs::read(dir.join("wal.log")).expect("read wal.log");
    assert_eq!(Some(&wal.len()), ends.last().or(Some(&0)));
    // The damage, and the first byte it touches.
    let (damaged_at, only_torn) = match take_u8(&mut input) % 4 {
        0 => {
            let at = usize::from(u16::from_be_bytes([
                take_u8(&mut input),
                take_u8(&mut input),
            ]));
            let at = at % (wal.len() + 1);
            wal.truncate(at);
            (at, true)
        }
        1 => {
            let at = wal.len();
            wal.extend(std::iter::repeat(0).take(usize::from(take_u8(&mut input))));
            (at, true)
        }
        2 if !wal.is_empty() => {
            let at = usize::from(u16::from_be_bytes([
                take_u8(&mut input),
                take_u8(&mut input),
            ]));
            let at = at % wal.len();
            wal[at] ^= take_u8(&mut input) | 1;
            (at, false)
        }
        _ => {
            let at = wal.len();
            let n = usize::from(take_u8(&mut input));
            wal.extend(take_bytes(&mut input, n));
            (at, false)
        }
    };
    write_wal(dir, &wal);
    let intact = ends.iter().filter(|end| **end <= damaged_at).count();
    match FsStore::open_with(dir, options()) {
        Ok(store) => {
            let state = read_state(&store, &names);
            let k = states
                .iter()
                .position(|s| *s == state)
                .unwrap_or_else(|| panic!("opened a state no prefix of the batches gives"));
            // Two prefixes may give the same state: one at or after the intact ones will do.
            assert!(
                states[intact..].contains(&state),
                "lost batches written before the damage (state of {k}, {intact} intact)"
            );
            if only_torn {
                assert_eq!(state, states[intact], "a cut or zero-extended log");
            }
        }
        Err(StoreError::Corrupt { .. }) if !only_torn => {}
        Err(e) => panic!("open failed: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let wal = match mode % 4 {
        0 => rest.to_vec(),
        1 => fuzzed_frames(rest, false),
        2 => fuzzed_frames(rest, true),
        _ => return written_then_damaged(rest),
    };
    let dir = fresh_dir();
    write_wal(dir, &wal);
    let expected = model(&wal);
    open_and_check(dir, expected.as_ref(), &names_in(&wal));
});
