//! Durable key/value storage for the engine's records, in the spirit of LDK's `KVStore`.
//!
//! A [`Store`] holds byte values under `(namespace, key)`. Writes are durable when they return;
//! [`Store::write_batch`] makes a whole batch durable at once, which is how a shard persists
//! every channel a batch of messages changed with a single sync (group commit). Two
//! implementations ship: [`FsStore`], the default, on the local filesystem with a write-ahead
//! log, and [`MemoryStore`] for tests and benchmarks. Applications may plug their own.
//! [`DirLock`] is [`FsStore`]'s lock on its directory, for programs that write there before
//! opening the store.

mod dir;
pub mod fs;
mod memory;

use core::fmt;
use std::path::PathBuf;
use std::sync::Arc;

pub use dir::DirLock;
pub use fs::{FsStore, FsStoreOptions};
pub use memory::MemoryStore;

/// One change in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Set `namespace/key` to `value`.
    Put {
        /// The namespace.
        namespace: String,
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
    },
    /// Remove `namespace/key` (no error if absent).
    Remove {
        /// The namespace.
        namespace: String,
        /// The key.
        key: String,
    },
}

/// Why a store operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// A namespace or key is empty, too long or has characters other than ASCII letters,
    /// digits, `-` and `_`.
    InvalidName {
        /// The offending name.
        name: String,
    },
    /// The operating system refused an operation.
    Io {
        /// What the store was doing.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// Stored bytes are damaged (not a torn final write, which is discarded as never
    /// acknowledged): the store refuses to guess.
    Corrupt {
        /// Where and what.
        corruption: Corruption,
    },
    /// A value is larger than the store can hold.
    ValueTooLarge {
        /// The value's length in bytes.
        len: usize,
        /// The largest value the store holds.
        max: u64,
    },
    /// A write failed, and cutting the write-ahead log back to its last good frame failed
    /// too: the log's end is unknown.
    CutFailed {
        /// The write's failure.
        write: Box<StoreError>,
        /// The cut's failure.
        cut: Box<StoreError>,
    },
    /// An earlier write or sync failed in a way that left the disk's state unknown (a failed
    /// `fsync` may have dropped the data it was flushing, so a retry could falsely succeed;
    /// a failed append could not be cut back): the store refuses every write, from every
    /// thread, until it is reopened, which recovers every acknowledged write. The call that
    /// failed first returned its own error; later writes return this.
    Poisoned {
        /// The first failure (a copy: its input/output error keeps its kind and message).
        first_failure: Arc<StoreError>,
    },
    /// A directory or file of the store grants access to group or others. The store holds
    /// channel secrets: its directories must be 0700 and its files 0600 (or stricter).
    Permissions {
        /// The offending directory or file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The mode the store gives such an entry.
        required: u32,
    },
    /// Another process, or another open store in this one, holds the data directory's lock.
    Locked {
        /// The locked directory.
        path: PathBuf,
        /// The holder's pid, as its lock file records it (`None` if unreadable).
        holder_pid: Option<u32>,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::InvalidName { name } => write!(
                f,
                "invalid store name {name:?}: use 1 to 120 ASCII letters, digits, '-' or '_'"
            ),
            StoreError::Io { context, source } => write!(f, "{context}: {source}"),
            StoreError::Corrupt { corruption } => write!(f, "corrupt store: {corruption}"),
            StoreError::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes is above the maximum {max}")
            }
            StoreError::CutFailed { write, cut } => write!(f, "{write}; then {cut}"),
            StoreError::Poisoned { first_failure } => write!(
                f,
                "the store refuses writes until it is reopened: an earlier failure left the \
                 disk's state unknown ({first_failure})"
            ),
            StoreError::Permissions {
                path,
                mode,
                required,
            } => write!(
                f,
                "{} has mode {mode:04o}, which gives access to group or others: it must be \
                 {required:04o} (the store holds channel secrets; chmod {required:o} it)",
                path.display()
            ),
            StoreError::Locked { path, holder_pid } => {
                write!(f, "data directory {} is locked by ", path.display())?;
                match holder_pid {
                    Some(pid) => write!(f, "pid {pid}")?,
                    None => write!(f, "another process (pid unknown)")?,
                }
                write!(f, ": another node is using it")
            }
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            StoreError::Corrupt { corruption } => corruption.source(),
            StoreError::CutFailed { cut, .. } => Some(cut.as_ref()),
            StoreError::Poisoned { first_failure } => Some(first_failure.as_ref()),
            _ => None,
        }
    }
}

impl StoreError {
    /// A copy of this error, to keep as the cause of later ones (an input/output error is
    /// copied as its kind and message; `io::Error` is not `Clone`).
    pub fn duplicate(&self) -> StoreError {
        match self {
            StoreError::InvalidName { name } => StoreError::InvalidName { name: name.clone() },
            StoreError::Io { context, source } => StoreError::Io {
                context: context.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            StoreError::Corrupt { corruption } => StoreError::Corrupt {
                corruption: corruption.clone(),
            },
            StoreError::ValueTooLarge { len, max } => StoreError::ValueTooLarge {
                len: *len,
                max: *max,
            },
            StoreError::CutFailed { write, cut } => StoreError::CutFailed {
                write: Box::new(write.duplicate()),
                cut: Box::new(cut.duplicate()),
            },
            StoreError::Poisoned { first_failure } => StoreError::Poisoned {
                first_failure: Arc::clone(first_failure),
            },
            StoreError::Permissions {
                path,
                mode,
                required,
            } => StoreError::Permissions {
                path: path.clone(),
                mode: *mode,
                required: *required,
            },
            StoreError::Locked { path, holder_pid } => StoreError::Locked {
                path: path.clone(),
                holder_pid: *holder_pid,
            },
        }
    }
}

/// What is damaged in a store ([`StoreError::Corrupt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// A frame of the write-ahead log, before its end, is damaged.
    WalFrame {
        /// The frame's offset in `wal.log`.
        offset: u64,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A key the store lists cannot be read.
    ListedButUnreadable {
        /// Its namespace.
        namespace: String,
        /// The key.
        key: String,
    },
    /// The store listed a key that is not UTF-8 (a store the application implements).
    KeyNotUtf8 {
        /// The decoding error.
        error: std::str::Utf8Error,
    },
}

impl Corruption {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Corruption::KeyNotUtf8 { error } => Some(error),
            _ => None,
        }
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::WalFrame { offset, why } => {
                write!(f, "wal.log frame at byte {offset}: {why}")
            }
            Corruption::ListedButUnreadable { namespace, key } => {
                write!(f, "{namespace}/{key} is listed but not readable")
            }
            Corruption::KeyNotUtf8 { error } => write!(f, "store key is not UTF-8: {error}"),
        }
    }
}

/// Durable key/value storage. Implementations must be safe to call from every shard thread
/// at once.
pub trait Store: Send + Sync {
    /// The value of `namespace/key`, if any.
    fn read(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Makes every operation of `batch` durable, in order, before returning: the batch is
    /// the unit of group commit (one sync for all of it where the store can).
    fn write_batch(&self, batch: &[WriteOp]) -> Result<(), StoreError>;

    /// [`Store::write_batch`], running `meanwhile` while the store waits on its disk: work
    /// the caller would do anyway and that needs nothing of this write (a node deriving its
    /// next keys ahead, [`lightning_core::node::NodeCore::derive_ahead`]). `meanwhile` runs
    /// exactly once, whatever the write's result, and must not call the store. The default
    /// runs it first, then writes; a store that writes to a disk starts the write, runs it,
    /// then waits for the sync.
    fn write_batch_meanwhile(
        &self,
        batch: &[WriteOp],
        meanwhile: &mut dyn FnMut(),
    ) -> Result<(), StoreError> {
        meanwhile();
        self.write_batch(batch)
    }

    /// The keys present in `namespace`, sorted.
    fn list(&self, namespace: &str) -> Result<Vec<String>, StoreError>;

    /// Sets `namespace/key` durably.
    fn write(&self, namespace: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write_batch(&[WriteOp::Put {
            namespace: namespace.to_owned(),
            key: key.to_owned(),
            value: value.to_vec(),
        }])
    }

    /// Removes `namespace/key` durably (no error if absent).
    fn remove(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        self.write_batch(&[WriteOp::Remove {
            namespace: namespace.to_owned(),
            key: key.to_owned(),
        }])
    }

    /// How many durable syncs the store has performed (for fsyncs-per-payment figures).
    fn syncs(&self) -> u64 {
        0
    }

    /// Whether a write waits on a disk (or a server) long enough that the engine should
    /// overlap it with its next messages: each shard then hands its batches to a committer
    /// thread (pipelined group commit) instead of writing them itself while its inbox waits.
    /// False (the default) for a store whose writes cost less than that hand-off (memory).
    fn overlap_writes(&self) -> bool {
        false
    }
}

/// Checks a namespace or key: 1 to 120 ASCII letters, digits, `-` or `_` (so a name can never
/// escape its directory or collide with the store's own files).
pub fn check_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 120
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName {
            name: name.to_owned(),
        })
    }
}

fn check_op(op: &WriteOp) -> Result<(), StoreError> {
    match op {
        WriteOp::Put { namespace, key, .. } | WriteOp::Remove { namespace, key } => {
            check_name(namespace)?;
            check_name(key)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Behaviour every store must have.
    pub(crate) fn exercise(store: &dyn Store) {
        assert_eq!(store.read("chan", "a").unwrap(), None);
        store.write("chan", "a", b"one").unwrap();
        store.write("chan", "b", b"two").unwrap();
        store.write("node", "a", b"three").unwrap();
        assert_eq!(store.read("chan", "a").unwrap(), Some(b"one".to_vec()));
        assert_eq!(
            store.list("chan").unwrap(),
            vec!["a".to_owned(), "b".to_owned()]
        );
        store
            .write_batch(&[
                WriteOp::Put {
                    namespace: "chan".into(),
                    key: "a".into(),
                    value: b"uno".to_vec(),
                },
                WriteOp::Remove {
                    namespace: "chan".into(),
                    key: "b".into(),
                },
                WriteOp::Put {
                    namespace: "chan".into(),
                    key: "c".into(),
                    value: vec![],
                },
            ])
            .unwrap();
        assert_eq!(store.read("chan", "a").unwrap(), Some(b"uno".to_vec()));
        assert_eq!(store.read("chan", "b").unwrap(), None);
        assert_eq!(store.read("chan", "c").unwrap(), Some(vec![]));
        assert_eq!(
            store.list("chan").unwrap(),
            vec!["a".to_owned(), "c".to_owned()]
        );
        assert_eq!(store.list("empty").unwrap(), Vec::<String>::new());
        store.remove("chan", "zzz").unwrap();
        for bad in ["", "../x", "a/b", "a.b", &"x".repeat(121)] {
            assert!(matches!(
                store.write(bad, "k", b""),
                Err(StoreError::InvalidName { .. })
            ));
            assert!(matches!(
                store.read("ns", bad),
                Err(StoreError::InvalidName { .. })
            ));
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("channel-01_ab").is_ok());
        let err = check_name("a/b").unwrap_err();
        assert!(err.to_string().contains("\"a/b\""), "{err}");
    }
}
