//! [`FsStore`]: the default embedded store, on the local filesystem.
//!
//! Layout under the root directory:
//!
//! ```text
//! wal.log                 batches written since the last checkpoint, one frame each
//! data/<namespace>/<key>  checkpointed values, one file each
//! ```
//!
//! A batch is one frame appended to `wal.log` and made durable with a single `fdatasync`:
//! that is the group commit, whatever the number of records in the batch. Reads see the WAL's
//! newer values through an in-memory overlay. When the WAL grows past
//! [`FsStoreOptions::checkpoint_bytes`], every overlaid value is written to its own file the
//! classic way (temporary file, fsync, rename, fsync the directory) and the WAL is emptied.
//!
//! Frame: `magic "LNSW" | body length u32 | first 8 bytes of SHA256(body) | first 4 bytes of
//! SHA256(the 16 header bytes before) | body`, body =
//! `count u32` then per operation `op u8 (1 put, 2 remove) | namespace (u8 length, bytes) |
//! key (u8 length, bytes) | value (u32 length, bytes; put only)`. On open, the WAL is
//! replayed: a torn final frame (cut short, zero-filled, or its body failing its checksum
//! with nothing after it) is a write that was never acknowledged and is dropped; any other
//! damage (a header failing its own checksum, a body failing its checksum with frames after
//! it) is corruption, and opening fails with [`StoreError::Corrupt`] rather than guess.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use lightning_core::bitcoin::hashes::{sha256, Hash};
use parking_lot::Mutex;

use super::{check_name, check_op, Store, StoreError, WriteOp};

const MAGIC: &[u8; 4] = b"LNSW";
const HEADER_LEN: usize = 4 + 4 + 8 + 4;

/// Tuning of an [`FsStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsStoreOptions {
    /// WAL size above which values are checkpointed into their files (default 16 MiB).
    pub checkpoint_bytes: u64,
    /// Whether to sync at all. `false` is only for measuring what syncing costs: a crash may
    /// then lose acknowledged writes.
    pub sync: bool,
}

impl Default for FsStoreOptions {
    fn default() -> Self {
        FsStoreOptions {
            checkpoint_bytes: 16 << 20,
            sync: true,
        }
    }
}

/// The value of a key as the WAL last set it.
type Overlay = BTreeMap<(String, String), Option<Vec<u8>>>;

#[derive(Debug)]
struct Inner {
    wal: File,
    wal_len: u64,
    overlay: Overlay,
}

/// The default embedded [`Store`]: see the [module documentation](self).
#[derive(Debug)]
pub struct FsStore {
    root: PathBuf,
    options: FsStoreOptions,
    inner: Mutex<Inner>,
    syncs: AtomicU64,
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Io { context, source }
}

impl FsStore {
    /// Opens (creating if needed) a store in `root` with default options.
    pub fn open(root: impl AsRef<Path>) -> Result<FsStore, StoreError> {
        FsStore::open_with(root, FsStoreOptions::default())
    }

    /// Opens (creating if needed) a store in `root`, replaying and checkpointing its WAL.
    pub fn open_with(
        root: impl AsRef<Path>,
        options: FsStoreOptions,
    ) -> Result<FsStore, StoreError> {
        let root = root.as_ref().to_path_buf();
        fs::create_dir_all(root.join("data")).map_err(io(format!("create {}", root.display())))?;
        let wal_path = root.join("wal.log");
        let mut bytes = Vec::new();
        match File::open(&wal_path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes).map_err(io("read wal.log"))?;
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io("open wal.log")(e)),
        }
        let overlay = replay(&bytes)?;
        let wal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&wal_path)
            .map_err(io("open wal.log for append"))?;
        let store = FsStore {
            root,
            options,
            inner: Mutex::new(Inner {
                wal,
                wal_len: bytes.len() as u64,
                overlay,
            }),
            syncs: AtomicU64::new(0),
        };
        // Move whatever the WAL held into files, and drop a torn tail.
        store.checkpoint(&mut store.inner.lock())?;
        Ok(store)
    }

    fn value_path(&self, namespace: &str, key: &str) -> PathBuf {
        self.root.join("data").join(namespace).join(key)
    }

    fn sync_file(&self, file: &File, what: &str) -> Result<(), StoreError> {
        if self.options.sync {
            file.sync_data().map_err(io(format!("sync {what}")))?;
            self.syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> Result<(), StoreError> {
        if self.options.sync {
            let d = File::open(dir).map_err(io(format!("open {}", dir.display())))?;
            d.sync_all()
                .map_err(io(format!("sync {}", dir.display())))?;
            self.syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Writes every overlaid value to its file (temporary file, sync, rename, sync the
    /// directory), then empties the WAL.
    fn checkpoint(&self, inner: &mut Inner) -> Result<(), StoreError> {
        let mut dirs = std::collections::BTreeSet::new();
        for ((namespace, key), value) in &inner.overlay {
            let dir = self.root.join("data").join(namespace);
            let path = dir.join(key);
            match value {
                Some(value) => {
                    fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
                    let tmp = dir.join(format!("{key}.tmp"));
                    let mut f =
                        File::create(&tmp).map_err(io(format!("create {}", tmp.display())))?;
                    f.write_all(value)
                        .map_err(io(format!("write {}", tmp.display())))?;
                    self.sync_file(&f, &tmp.display().to_string())?;
                    fs::rename(&tmp, &path).map_err(io(format!("rename to {}", path.display())))?;
                }
                None => match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(io(format!("remove {}", path.display()))(e)),
                },
            }
            dirs.insert(dir);
        }
        for dir in dirs {
            if dir.exists() {
                self.sync_dir(&dir)?;
            }
        }
        inner.wal.set_len(0).map_err(io("truncate wal.log"))?;
        if self.options.sync {
            inner.wal.sync_all().map_err(io("sync wal.log"))?;
            self.syncs.fetch_add(1, Ordering::Relaxed);
        }
        inner.wal_len = 0;
        inner.overlay.clear();
        Ok(())
    }
}

/// Replays WAL bytes into an overlay; see the module documentation for the torn-tail rule.
fn replay(bytes: &[u8]) -> Result<Overlay, StoreError> {
    let mut overlay = Overlay::new();
    let mut rest = bytes;
    let mut offset = 0usize;
    let corrupt = |offset: usize, why: &str| StoreError::Corrupt {
        detail: format!("wal.log frame at byte {offset}: {why}"),
    };
    while !rest.is_empty() {
        // A crash may leave the file extended with zeros past the last complete write.
        if rest.iter().all(|b| *b == 0) {
            break;
        }
        let Some((header, after)) = rest.split_first_chunk::<HEADER_LEN>() else {
            break;
        };
        let (signed, head_sum) = header.split_at(16);
        if sha256::Hash::hash(signed).as_byte_array()[..4] != *head_sum || &signed[..4] != MAGIC {
            return Err(corrupt(offset, "damaged frame header"));
        }
        let len = u32::from_be_bytes(signed[4..8].try_into().expect("4 bytes")) as usize;
        let body_sum = &signed[8..16];
        if len > after.len() {
            break; // torn final frame: never acknowledged
        }
        let (body, next) = after.split_at(len);
        if sha256::Hash::hash(body).as_byte_array()[..8] != *body_sum {
            if next.iter().all(|b| *b == 0) {
                break; // torn final frame
            }
            return Err(corrupt(offset, "checksum mismatch with frames after it"));
        }
        apply_body(body, &mut overlay).map_err(|why| corrupt(offset, why))?;
        offset += HEADER_LEN + len;
        rest = next;
    }
    Ok(overlay)
}

fn take<'a>(body: &mut &'a [u8], n: usize) -> Result<&'a [u8], &'static str> {
    if n > body.len() {
        return Err("truncated operation");
    }
    let (head, tail) = body.split_at(n);
    *body = tail;
    Ok(head)
}

fn take_str(body: &mut &[u8]) -> Result<String, &'static str> {
    let len = *take(body, 1)?.first().ok_or("truncated operation")? as usize;
    let raw = take(body, len)?;
    let s = std::str::from_utf8(raw).map_err(|_| "name is not utf-8")?;
    check_name(s).map_err(|_| "invalid name")?;
    Ok(s.to_owned())
}

fn apply_body(mut body: &[u8], overlay: &mut Overlay) -> Result<(), &'static str> {
    let count = u32::from_be_bytes(take(&mut body, 4)?.try_into().map_err(|_| "count")?);
    for _ in 0..count {
        let op = *take(&mut body, 1)?.first().ok_or("op")?;
        let namespace = take_str(&mut body)?;
        let key = take_str(&mut body)?;
        match op {
            1 => {
                let len = u32::from_be_bytes(take(&mut body, 4)?.try_into().map_err(|_| "len")?);
                let value = take(&mut body, len as usize)?.to_vec();
                overlay.insert((namespace, key), Some(value));
            }
            2 => {
                overlay.insert((namespace, key), None);
            }
            _ => return Err("unknown operation"),
        }
    }
    if body.is_empty() {
        Ok(())
    } else {
        Err("trailing bytes after the last operation")
    }
}

fn encode_frame(batch: &[WriteOp]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(batch.len() as u32).to_be_bytes());
    for op in batch {
        let (code, namespace, key, value) = match op {
            WriteOp::Put {
                namespace,
                key,
                value,
            } => (1u8, namespace, key, Some(value)),
            WriteOp::Remove { namespace, key } => (2u8, namespace, key, None),
        };
        body.push(code);
        // Names were checked: at most 120 ASCII bytes.
        body.push(namespace.len() as u8);
        body.extend_from_slice(namespace.as_bytes());
        body.push(key.len() as u8);
        body.extend_from_slice(key.as_bytes());
        if let Some(value) = value {
            body.extend_from_slice(&(value.len() as u32).to_be_bytes());
            body.extend_from_slice(value);
        }
    }
    let mut frame = Vec::with_capacity(HEADER_LEN + body.len());
    frame.extend_from_slice(MAGIC);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&sha256::Hash::hash(&body).as_byte_array()[..8]);
    let head_sum = sha256::Hash::hash(&frame[..16]);
    frame.extend_from_slice(&head_sum.as_byte_array()[..4]);
    frame.extend_from_slice(&body);
    frame
}

impl Store for FsStore {
    fn read(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_name(namespace)?;
        check_name(key)?;
        if let Some(value) = self
            .inner
            .lock()
            .overlay
            .get(&(namespace.to_owned(), key.to_owned()))
        {
            return Ok(value.clone());
        }
        let path = self.value_path(namespace, key);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(format!("read {}", path.display()))(e)),
        }
    }

    fn write_batch(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        for op in batch {
            check_op(op)?;
            if let WriteOp::Put { value, .. } = op {
                if value.len() > u32::MAX as usize {
                    return Err(StoreError::Corrupt {
                        detail: "value above 4 GiB".into(),
                    });
                }
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        let frame = encode_frame(batch);
        let mut inner = self.inner.lock();
        inner
            .wal
            .write_all(&frame)
            .map_err(io("append to wal.log"))?;
        self.sync_file(&inner.wal, "wal.log")?;
        inner.wal_len += frame.len() as u64;
        for op in batch {
            match op {
                WriteOp::Put {
                    namespace,
                    key,
                    value,
                } => {
                    inner
                        .overlay
                        .insert((namespace.clone(), key.clone()), Some(value.clone()));
                }
                WriteOp::Remove { namespace, key } => {
                    inner.overlay.insert((namespace.clone(), key.clone()), None);
                }
            }
        }
        if inner.wal_len > self.options.checkpoint_bytes {
            self.checkpoint(&mut inner)?;
        }
        Ok(())
    }

    fn list(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
        check_name(namespace)?;
        let dir = self.root.join("data").join(namespace);
        let mut keys = std::collections::BTreeSet::new();
        match fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(io(format!("list {}", dir.display())))?;
                    if let Some(name) = entry.file_name().to_str() {
                        if check_name(name).is_ok() {
                            keys.insert(name.to_owned());
                        }
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io(format!("list {}", dir.display()))(e)),
        }
        for ((ns, key), value) in &self.inner.lock().overlay {
            if ns == namespace {
                if value.is_some() {
                    keys.insert(key.clone());
                } else {
                    keys.remove(key);
                }
            }
        }
        Ok(keys.into_iter().collect())
    }

    fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fs_store_behaves_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = FsStore::open(dir.path()).unwrap();
            crate::store::tests::exercise(&store);
        }
        let store = FsStore::open(dir.path()).unwrap();
        assert_eq!(store.read("chan", "a").unwrap(), Some(b"uno".to_vec()));
        assert_eq!(store.read("chan", "b").unwrap(), None);
        assert_eq!(
            store.list("chan").unwrap(),
            vec!["a".to_owned(), "c".to_owned()]
        );
        assert_eq!(store.read("node", "a").unwrap(), Some(b"three".to_vec()));
    }

    #[test]
    fn one_sync_per_batch_until_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let before = store.syncs();
        let batch: Vec<WriteOp> = (0..50)
            .map(|i| WriteOp::Put {
                namespace: "chan".into(),
                key: format!("c{i}"),
                value: vec![i as u8; 300],
            })
            .collect();
        store.write_batch(&batch).unwrap();
        assert_eq!(store.syncs() - before, 1, "fifty records, one sync");
        assert_eq!(store.list("chan").unwrap().len(), 50);
    }

    #[test]
    fn checkpoint_moves_values_into_files() {
        let dir = tempfile::tempdir().unwrap();
        let options = FsStoreOptions {
            checkpoint_bytes: 1_000,
            sync: true,
        };
        let store = FsStore::open_with(dir.path(), options).unwrap();
        for i in 0..20u8 {
            store.write("chan", &format!("k{i}"), &[i; 200]).unwrap();
        }
        store.remove("chan", "k3").unwrap();
        assert!(
            dir.path().join("data/chan/k0").exists(),
            "checkpointed to a file"
        );
        drop(store);
        let store = FsStore::open_with(dir.path(), options).unwrap();
        assert_eq!(store.read("chan", "k19").unwrap(), Some(vec![19; 200]));
        assert_eq!(store.read("chan", "k3").unwrap(), None);
        assert_eq!(store.list("chan").unwrap().len(), 19);
    }

    fn wal_with_two_batches(dir: &Path) -> Vec<u8> {
        let options = FsStoreOptions {
            checkpoint_bytes: u64::MAX,
            sync: true,
        };
        let store = FsStore::open_with(dir, options).unwrap();
        store.write("chan", "a", b"first").unwrap();
        store.write("chan", "b", b"second").unwrap();
        // Simulate a crash: read the WAL before any checkpoint.
        let wal = fs::read(dir.join("wal.log")).unwrap();
        std::mem::forget(store);
        wal
    }

    #[test]
    fn torn_final_write_is_dropped_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let wal = wal_with_two_batches(dir.path());
        for cut in 1..30 {
            let d2 = tempfile::tempdir().unwrap();
            fs::create_dir_all(d2.path().join("data")).unwrap();
            fs::write(d2.path().join("wal.log"), &wal[..wal.len() - cut]).unwrap();
            let store = FsStore::open(d2.path()).unwrap();
            assert_eq!(
                store.read("chan", "a").unwrap(),
                Some(b"first".to_vec()),
                "cut {cut}"
            );
            assert_eq!(
                store.read("chan", "b").unwrap(),
                None,
                "cut {cut}: the torn batch is not applied"
            );
        }
    }

    #[test]
    fn damage_before_the_end_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let wal = wal_with_two_batches(dir.path());
        // Every byte of the first frame, and of the second frame's header.
        for i in 0..(wal.len() / 2 + HEADER_LEN) {
            let mut bad = wal.clone();
            bad[i] ^= 0x40;
            let d2 = tempfile::tempdir().unwrap();
            fs::create_dir_all(d2.path().join("data")).unwrap();
            fs::write(d2.path().join("wal.log"), &bad).unwrap();
            match FsStore::open(d2.path()) {
                Err(StoreError::Corrupt { detail }) => {
                    assert!(detail.contains("wal.log frame"), "{detail}")
                }
                Ok(store) => panic!("byte {i}: damage accepted, a={:?}", store.read("chan", "a")),
                Err(other) => panic!("byte {i}: {other}"),
            }
        }
    }

    #[test]
    fn random_flips_truncations_and_extensions_read_a_written_value_or_fail_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let wal = wal_with_two_batches(dir.path());
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        for case in 0..300 {
            let mut bad = wal.clone();
            match case % 3 {
                0 => {
                    let i = next(bad.len());
                    bad[i] ^= 1 << next(8);
                }
                1 => bad.truncate(next(bad.len())),
                _ => {
                    let extra = 1 + next(40);
                    for _ in 0..extra {
                        bad.push(next(256) as u8);
                    }
                }
            }
            let d2 = tempfile::tempdir().unwrap();
            fs::create_dir_all(d2.path().join("data")).unwrap();
            fs::write(d2.path().join("wal.log"), &bad).unwrap();
            match FsStore::open(d2.path()) {
                Err(StoreError::Corrupt { detail }) => {
                    assert!(detail.contains("wal.log"), "case {case}: {detail}")
                }
                Err(other) => panic!("case {case}: {other}"),
                Ok(store) => {
                    // Only values that were written, the torn tail dropped as a whole.
                    let a = store.read("chan", "a").unwrap();
                    let b = store.read("chan", "b").unwrap();
                    let ok = match (a.as_deref(), b.as_deref()) {
                        (Some(b"first"), Some(b"second")) | (Some(b"first"), None) => true,
                        (None, None) => case % 3 == 1,
                        _ => false,
                    };
                    assert!(ok, "case {case}: read a={a:?} b={b:?}");
                }
            }
        }
    }
}
