//! The peers file `<data-dir>/peers`: the peers we have channels with and the address of
//! our last successful outbound handshake with each, so that a restarted node redials them.
//!
//! One peer a line, `<node id hex> <ip:port>`; lines starting with `#` are comments. The
//! file is small and rewritten whole: created with mode 0600 (never looser, not even for a
//! moment), written to `peers.tmp`, synced, renamed over `peers`, and the directory synced,
//! so a crash leaves either the old list or the new one. A line that does not parse is
//! skipped with a warning (the list is a convenience: the channels themselves live in the
//! store).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use lightning_core::secp256k1::PublicKey;

use super::{io_error, DaemonError};

/// The peers file in `data_dir`.
pub fn peers_path(data_dir: &Path) -> PathBuf {
    data_dir.join("peers")
}

/// Reads the peers file; an absent file is an empty list.
pub(crate) fn load(path: &Path) -> Result<Vec<(PublicKey, SocketAddr)>, DaemonError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(format!("reading {}", path.display()))(e)),
    };
    let mut peers = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let parsed = match (parts.next(), parts.next(), parts.next()) {
            (Some(id), Some(addr), None) => id
                .parse::<PublicKey>()
                .ok()
                .zip(addr.parse::<SocketAddr>().ok()),
            _ => None,
        };
        match parsed {
            Some(p) => peers.push(p),
            None => tracing::warn!(
                file = %path.display(),
                line = i + 1,
                "peers file: a line that is not `<node id> <ip:port>` is skipped"
            ),
        }
    }
    Ok(peers)
}

/// Replaces the peers file with `peers`, atomically and durably (see the
/// [module documentation](self)).
pub(crate) fn save(path: &Path, peers: &[(PublicKey, SocketAddr)]) -> Result<(), DaemonError> {
    let mut text = String::from("# lnshard peers with channels: <node id> <last good address>\n");
    for (id, addr) in peers {
        text.push_str(&format!("{id} {addr}\n"));
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&tmp)
        .map_err(io_error(format!("creating {}", tmp.display())))?;
    #[cfg(unix)]
    {
        // A leftover temporary file keeps the mode it was created with: make sure.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io_error(format!("setting the mode of {}", tmp.display())))?;
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error(format!("writing {}", tmp.display())))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io_error(format!(
        "renaming {} to {}",
        tmp.display(),
        path.display()
    )))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(format!("syncing {}", dir.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightning_core::secp256k1::{Secp256k1, SecretKey};

    #[test]
    fn saved_peers_load_back_with_mode_0600_and_bad_lines_are_skipped() {
        let dir = std::env::temp_dir().join(format!("lnshard-peers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = peers_path(&dir);
        let secp = Secp256k1::signing_only();
        let id = PublicKey::from_secret_key(&secp, &SecretKey::from_slice(&[7; 32]).expect("key"));
        let addr: SocketAddr = "127.0.0.1:9735".parse().expect("addr");
        assert!(load(&path).expect("absent file").is_empty());
        save(&path, &[(id, addr)]).expect("save");
        assert_eq!(load(&path).expect("load"), vec![(id, addr)]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, format!("garbage\n{id} {addr}\n{id}\n")).expect("write");
        assert_eq!(load(&path).expect("load"), vec![(id, addr)]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
