//! The daemon's files: the node's identity and seed, the control cookie and address.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use lightning_core::secp256k1::SecretKey;

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

pub(crate) fn create_dir(dir: &Path) -> Result<(), DaemonError> {
    std::fs::create_dir_all(dir).map_err(io_error(format!("creating {}", dir.display())))
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
