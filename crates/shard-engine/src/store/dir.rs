//! The store root's exclusive lock ([`DirLock`]) and its private permissions.
//!
//! A data directory holds channel secrets, and two nodes writing one directory destroy each
//! other's state, so:
//! * every directory the store creates is mode 0700 and every file 0600, set at creation
//!   (never widened by a later `chmod`), and opening refuses a root, `data/`, namespace
//!   directory or store file that grants anything to group or others
//!   ([`StoreError::Permissions`]);
//! * the root holds a `LOCK` file with an exclusive `flock` for as long as the [`DirLock`]
//!   lives, with the holder's pid in it, so a second open, from this process or another, is
//!   refused with [`StoreError::Locked`] naming that pid.

use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::StoreError;

/// Mode of every directory the store creates.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of every file the store creates.
pub(crate) const FILE_MODE: u32 = 0o600;
/// The lock file's name in the root.
pub(crate) const LOCK_FILE: &str = "LOCK";

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Io { context, source }
}

/// Makes `dir`'s entries durable (a created, renamed or removed name in it).
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let d = File::open(dir).map_err(io(format!("open {}", dir.display())))?;
    d.sync_all().map_err(io(format!("sync {}", dir.display())))
}

/// The directory holding `path`'s entry (`.` for a bare relative name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates `dir` and any missing ancestors with mode 0700, syncing the directory that gained
/// each new entry when `sync`. Returns whether `dir` itself was created.
pub(crate) fn create_private_dir_all(dir: &Path, sync: bool) -> Result<bool, StoreError> {
    let mut missing = Vec::new();
    let mut at = dir;
    loop {
        match fs::metadata(at) {
            Ok(_) => break,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                missing.push(at);
                match at.parent() {
                    Some(p) if !p.as_os_str().is_empty() => at = p,
                    _ => break,
                }
            }
            Err(e) => return Err(io(format!("inspect {}", at.display()))(e)),
        }
    }
    let created = !missing.is_empty();
    for p in missing.into_iter().rev() {
        match DirBuilder::new().mode(DIR_MODE).create(p) {
            Ok(()) => {
                if sync {
                    sync_dir(parent_of(p))?;
                }
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(format!("create {}", p.display()))(e)),
        }
    }
    Ok(created)
}

/// A directory given to hold a new store (it has none of the store's entries yet: a fresh
/// temporary directory, a data directory holding only a node's key) loses any group and
/// other permission bits before the store writes anything in it. A directory that already
/// holds a store is left as it is, and refused later if it is looser than 0700.
fn tighten_new_root(dir: &Path) -> Result<(), StoreError> {
    let meta = fs::metadata(dir).map_err(io(format!("inspect {}", dir.display())))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 || !meta.is_dir() {
        return Ok(());
    }
    for entry in [LOCK_FILE, "wal.log", "data"] {
        match fs::symlink_metadata(dir.join(entry)) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io(format!("inspect {}", dir.join(entry).display()))(e)),
        }
    }
    let tight = mode & !0o077;
    tracing::info!(
        path = %dir.display(),
        from = format_args!("{mode:04o}"),
        to = format_args!("{tight:04o}"),
        "a new store's directory is made private"
    );
    fs::set_permissions(dir, fs::Permissions::from_mode(tight)).map_err(io(format!(
        "restrict {} to mode {tight:04o}",
        dir.display()
    )))
}

/// Refuses `path` if its mode grants anything to group or others. `required` is the mode
/// the store gives such an entry, for the message.
pub(crate) fn check_private(path: &Path, required: u32) -> Result<(), StoreError> {
    let meta = fs::metadata(path).map_err(io(format!("inspect {}", path.display())))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(StoreError::Permissions {
            path: path.to_path_buf(),
            mode,
            required,
        });
    }
    Ok(())
}

/// An exclusive lock on a data directory, held until dropped: one node per directory.
///
/// [`FsStore::open`](super::FsStore::open) takes one on its root before it reads or writes
/// anything else there; a program that must write into the directory before opening its
/// store (a cookie, a pid file) acquires the lock first and hands it to
/// [`FsStore::open_locked`](super::FsStore::open_locked).
///
/// The lock is an `flock` on `<dir>/LOCK` (mode 0600), which holds the holder's pid. It is
/// per open file: a second [`DirLock::acquire`] on the same directory fails even within the
/// same process, and the kernel releases the lock when the process dies, however it dies.
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    // Holds the flock; closing it releases the lock.
    _file: File,
}

/// How long [`DirLock::acquire`] waits for a lock held by someone else before it reports
/// [`StoreError::Locked`].
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_millis(250);
/// How often it tries again meanwhile.
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(10);

impl DirLock {
    /// Locks `dir`, creating it (mode 0700) if missing. An existing `dir` that holds no
    /// store yet (no `LOCK`, `wal.log` or `data`) loses any group and other permission bits
    /// first; one that holds a store must already be private.
    ///
    /// Fails with [`StoreError::Locked`] if another [`DirLock`] (in any process) holds it for
    /// longer than a quarter of a second,
    /// naming that holder's pid where the lock file records it, and with
    /// [`StoreError::Permissions`] if `dir` or its lock file grants access to group or
    /// others.
    pub fn acquire(dir: impl AsRef<Path>) -> Result<DirLock, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        if !create_private_dir_all(&dir, true)? {
            tighten_new_root(&dir)?;
        }
        let path = dir.join(LOCK_FILE);
        let (mut file, created) = match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&path)
        {
            Ok(f) => (f, true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => (
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(io(format!("open {}", path.display())))?,
                false,
            ),
            Err(e) => return Err(io(format!("create {}", path.display()))(e)),
        };
        // A lock held only for a moment is waited for (up to LOCK_PATIENCE): a store being
        // closed on another thread, or a child process between its fork and its exec, which
        // holds every descriptor of the parent (and so its lock) until the exec closes it.
        let mut waited = std::time::Duration::ZERO;
        let mut attempt = file.try_lock();
        while matches!(attempt, Err(TryLockError::WouldBlock)) && waited < LOCK_PATIENCE {
            std::thread::sleep(LOCK_RETRY);
            waited += LOCK_RETRY;
            attempt = file.try_lock();
        }
        match attempt {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let holder_pid = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                return Err(StoreError::Locked {
                    path: dir,
                    holder_pid,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(format!("lock {}", path.display()))(e)),
        }
        check_private(&dir, DIR_MODE)?;
        check_private(&path, FILE_MODE)?;
        file.set_len(0)
            .map_err(io(format!("truncate {}", path.display())))?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes())
            .map_err(io(format!("write {}", path.display())))?;
        file.sync_all()
            .map_err(io(format!("sync {}", path.display())))?;
        if created {
            sync_dir(&dir)?;
        }
        Ok(DirLock { dir, _file: file })
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // No stale pid for the next holder's rivals to read (best effort: a process that
        // dies leaves its pid, which the next holder overwrites).
        let _ = self._file.set_len(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_in_the_same_process_is_refused_until_the_first_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/node");
        let first = DirLock::acquire(&dir).unwrap();
        assert_eq!(first.dir(), dir);
        for p in [tmp.path().join("a"), tmp.path().join("a/b"), dir.clone()] {
            let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", p.display());
        }
        let mode = fs::metadata(dir.join(LOCK_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        match DirLock::acquire(&dir) {
            Err(StoreError::Locked { path, holder_pid }) => {
                assert_eq!(path, dir);
                assert_eq!(holder_pid, Some(std::process::id()));
            }
            other => panic!("{other:?}"),
        }
        drop(first);
        DirLock::acquire(&dir).unwrap();
    }
}
