//! The daemon's files: the node's identity and seed, the control cookie and address, and the
//! preimages of the payments it created (`invoices`, mode 0600, one `hash preimage` line each,
//! `hash preimage hold` for a hold invoice, synced before `new_invoice` answers).
//!
//! The data directory is private: it is created mode 0700 and every file in it 0600 from
//! creation; a node refuses to start on a directory, or with one of its files, that gives
//! group or others any access, naming the path and the `chmod` that fixes it. It is locked
//! (`<data-dir>/LOCK`, an exclusive `flock` holding the node's pid) before anything is written
//! there, for as long as the node runs: a second node on it is refused, naming the first's
//! pid.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use std::collections::HashMap;

use lightning_core::secp256k1::SecretKey;
use lightning_core::types::{PaymentHash, PaymentPreimage};
use shard_engine::store::DirLock;

use super::{io_error, DaemonError};

/// The user name in the cookie (as bitcoind's).
pub const COOKIE_USER: &str = "__cookie__";

/// The cookie file of a data directory.
pub fn cookie_path(data_dir: &Path) -> PathBuf {
    data_dir.join(".cookie")
}

/// The file holding the control interface's bound address.
pub fn control_addr_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control.addr")
}

/// The files the daemon itself keeps in the data directory (the store checks its own).
const OWN_FILES: [&str; 6] = [
    "node_secret",
    "seed",
    "invoices",
    "peers",
    ".cookie",
    "control.addr",
];

/// Locks `dir` (creating it mode 0700 if missing) for the life of the returned lock: refused,
/// naming the holder's pid, while another node runs on it, and refused if `dir` gives group or
/// others any access.
pub(crate) fn lock_data_dir(dir: &Path) -> Result<DirLock, DaemonError> {
    DirLock::acquire(dir).map_err(|e| DaemonError::Config(e.to_string()))
}

/// Refuses the data directory's own files (the node's key and seed, the invoices' preimages,
/// the cookie) if one gives group or others any access.
pub(crate) fn check_private_files(dir: &Path) -> Result<(), DaemonError> {
    for name in OWN_FILES {
        let path = dir.join(name);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(format!("inspecting {}", path.display()))(e)),
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(DaemonError::Config(format!(
                "{} has mode {mode:04o}, which gives access to group or others: it must be 0600 \
                 (it holds the node's secrets; chmod 600 it)",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Writes `contents` to `path` readable and writable by the owner only (mode 0600),
/// replacing what was there.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<(), DaemonError> {
    let what = format!("writing {}", path.display());
    let _ = std::fs::remove_file(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error(what.clone()))?;
    file.write_all(contents).map_err(io_error(what.clone()))?;
    file.sync_all().map_err(io_error(what))
}

fn random_32() -> Result<[u8; 32], DaemonError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| DaemonError::Io {
        what: "reading the system's random source".into(),
        error: std::io::Error::other(e.to_string()),
    })?;
    Ok(bytes)
}

/// 32 random bytes, hex-encoded (the cookie's secret).
pub(crate) fn random_hex() -> Result<String, DaemonError> {
    Ok(hex::encode(random_32()?))
}

fn load_or_create_32(
    path: &Path,
    valid: impl Fn(&[u8; 32]) -> bool,
) -> Result<[u8; 32], DaemonError> {
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .map_err(io_error(format!("reading {}", path.display())))?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|e| {
            DaemonError::Config(format!("{} is not 64 hex digits: {e}", path.display()))
        })?;
        if !valid(&bytes) {
            return Err(DaemonError::Config(format!(
                "{} does not hold a valid key",
                path.display()
            )));
        }
        return Ok(bytes);
    }
    let bytes = loop {
        let b = random_32()?;
        if valid(&b) {
            break b;
        }
    };
    write_private(path, hex::encode(bytes).as_bytes())?;
    Ok(bytes)
}

/// The node secret in `path`, created (random, mode 0600) if absent.
pub(crate) fn load_or_create_secret(path: &Path) -> Result<SecretKey, DaemonError> {
    let bytes = load_or_create_32(path, |b| SecretKey::from_slice(b).is_ok())?;
    SecretKey::from_slice(&bytes)
        .map_err(|e| DaemonError::Config(format!("{}: {e}", path.display())))
}

/// The channel-key seed in `path`, created (random, mode 0600) if absent.
pub(crate) fn load_or_create_seed(path: &Path) -> Result<[u8; 32], DaemonError> {
    load_or_create_32(path, |_| true)
}

/// Removes the cookie and the control address (a clean stop).
/// The file of the preimages of the payments `new_invoice` created.
pub fn invoices_path(data_dir: &Path) -> PathBuf {
    data_dir.join("invoices")
}

/// An invoice the node created: the preimage it keeps, and whether a payment to it waits for
/// `claim` or `fail` (`hold`) rather than being claimed as it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invoice {
    /// The payment's preimage.
    pub preimage: PaymentPreimage,
    /// A hold invoice: its payments wait for `claim` or `fail`.
    pub hold: bool,
}

/// The last word of a hold invoice's line.
const HOLD: &str = "hold";

/// Appends a payment's hash, preimage and `hold` to `path` (created with mode 0600) and syncs
/// it: the preimage is on disk before the invoice is handed out, so a restart can still claim
/// it, and a hold invoice stays one.
pub(crate) fn append_invoice(
    path: &Path,
    hash: &PaymentHash,
    invoice: &Invoice,
) -> Result<(), DaemonError> {
    let what = format!("writing {}", path.display());
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error(what.clone()))?;
    let hold = if invoice.hold { " hold" } else { "" };
    let line = format!("{hash} {}{hold}\n", hex::encode(invoice.preimage.0));
    file.write_all(line.as_bytes())
        .map_err(io_error(what.clone()))?;
    file.sync_data().map_err(io_error(what))
}

/// Reads the preimages `append_invoice` wrote. A last line cut short by a crash (the invoice
/// was never handed out) is skipped; any other bad line, or a preimage that does not hash to
/// its line's hash, is an error naming the line.
pub(crate) fn load_invoices(path: &Path) -> Result<HashMap<PaymentHash, Invoice>, DaemonError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(io_error(format!("reading {}", path.display()))(e)),
    };
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut out = HashMap::new();
    for (i, line) in lines.iter().enumerate() {
        let mut words = line.split(' ');
        let parsed = match (words.next(), words.next(), words.next(), words.next()) {
            (Some(h), Some(p), hold @ (None | Some(HOLD)), None) => (|| {
                let h: [u8; 32] = hex::decode(h).ok()?.try_into().ok()?;
                let p: [u8; 32] = hex::decode(p).ok()?.try_into().ok()?;
                Some((PaymentHash(h), PaymentPreimage(p), hold.is_some()))
            })(),
            _ => None,
        };
        match parsed {
            Some((hash, preimage, hold)) if preimage.payment_hash() == hash => {
                out.insert(hash, Invoice { preimage, hold });
            }
            None if i + 1 == lines.len() && !complete => {
                tracing::warn!(path = %path.display(), "skipping a torn last line");
            }
            _ => {
                return Err(DaemonError::Config(format!(
                    "{} line {}: not a payment hash and its preimage",
                    path.display(),
                    i + 1
                )))
            }
        }
    }
    Ok(out)
}

pub(crate) fn remove_control_files(data_dir: &Path) {
    let _ = std::fs::remove_file(cookie_path(data_dir));
    let _ = std::fs::remove_file(control_addr_path(data_dir));
}

/// Reads a data directory's cookie (`__cookie__:<secret>`), for clients.
pub fn read_cookie(data_dir: &Path) -> Result<String, DaemonError> {
    let path = cookie_path(data_dir);
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(io_error(format!(
            "reading the cookie {} (is the node running?)",
            path.display()
        )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let d = std::env::temp_dir().join(format!("lnshard-files-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&d).expect("a temporary directory");
        d
    }

    #[test]
    fn invoices_round_trip_and_a_torn_last_line_is_skipped() {
        let d = dir();
        let path = invoices_path(&d);
        assert!(load_invoices(&path).expect("no file: none").is_empty());
        let a = Invoice {
            preimage: PaymentPreimage([1; 32]),
            hold: false,
        };
        let b = Invoice {
            preimage: PaymentPreimage([2; 32]),
            hold: true,
        };
        append_invoice(&path, &a.preimage.payment_hash(), &a).expect("written");
        append_invoice(&path, &b.preimage.payment_hash(), &b).expect("written");
        let loaded = load_invoices(&path).expect("read");
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded.get(&a.preimage.payment_hash()), Some(&a));
        assert_eq!(
            loaded.get(&b.preimage.payment_hash()),
            Some(&b),
            "hold stays hold"
        );
        // A line of an older node (no third word) is an invoice claimed as it arrives; a
        // third word other than `hold` is refused.
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.lines().nth(1).is_some_and(|l| l.ends_with(" hold")));
        assert_eq!(text.lines().next().map(|l| l.split(' ').count()), Some(2));
        // A crash in the middle of a third line: that invoice never left; the rest loads.
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"abcd").expect("torn write");
        assert_eq!(load_invoices(&path).expect("read").len(), 2);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_bad_invoice_line_is_an_error_naming_it() {
        let d = dir();
        let path = invoices_path(&d);
        let a = PaymentPreimage([1; 32]);
        // A preimage that does not hash to the line's hash.
        std::fs::write(
            &path,
            format!("{} {}\nzz\n", a.payment_hash(), hex::encode([9u8; 32])),
        )
        .expect("written");
        let e = load_invoices(&path).expect_err("refused").to_string();
        assert!(e.contains("line 1"), "{e}");
        let line = format!("{} {} held\n", a.payment_hash(), hex::encode(a.0));
        std::fs::write(&path, line).expect("written");
        let e = load_invoices(&path).expect_err("refused").to_string();
        assert!(e.contains("line 1"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
