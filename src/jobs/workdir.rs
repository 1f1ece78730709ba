//! Work folders (`{data.dir}/work/{variation}`): the downloaded master and
//! the outputs of one variation while it is worked on. A folder is removed
//! when its variation reaches a terminal state (published, rejected,
//! failed, expired, cancelled: [`remove`], called by the pipeline after the
//! state change committed), and at start every folder whose variation is
//! terminal or unknown is swept ([`sweep_stale`]). A later step that needs
//! the master again (reprocess) fetches it from the bucket and checks its
//! SHA-256.
//!
//! The free-disk check lives here too: a master is not downloaded when the
//! work folder's file system has less free space than the master's size
//! plus `data.free_space_margin_bytes` ([`space_shortfall`]).

use super::store::JobStore;
use std::path::Path;

/// Removes the work folder of variation `id`, if there is one.
pub async fn remove(work_dir: &Path, id: &str) {
    let dir = work_dir.join(id);
    match tokio::fs::remove_dir_all(&dir).await {
        Ok(()) => tracing::debug!(variation = %id, "work folder removed"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(variation = %id, error = %e, "could not remove the work folder"),
    }
}

/// Removes every folder under `work_dir` whose variation is terminal or no
/// longer exists; returns how many. A row that cannot be read keeps its
/// folder (the next start looks again).
pub async fn sweep_stale(store: &dyn JobStore, work_dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    let mut entries = match tokio::fs::read_dir(work_dir).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name().to_string_lossy().to_string();
        let stale = match store.variation(&name).await {
            Ok(Some(v)) => v.state.is_terminal(),
            Ok(None) => true,
            Err(e) => {
                tracing::warn!(folder = %name, error = %e, "work folder sweep: cannot read its variation; kept");
                false
            }
        };
        if !stale {
            continue;
        }
        let path = entry.path();
        let gone = if entry.file_type().await?.is_dir() {
            tokio::fs::remove_dir_all(&path).await
        } else {
            tokio::fs::remove_file(&path).await
        };
        match gone {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(folder = %name, error = %e, "work folder sweep: could not remove")
            }
        }
    }
    Ok(removed)
}

/// Bytes available to reelay on the file system holding `path`.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // the field types differ between platforms
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(not(unix))]
pub fn free_bytes(_path: &Path) -> std::io::Result<u64> {
    Ok(u64::MAX)
}

/// Why a master of `size` bytes must not be downloaded now, given `free`
/// bytes on the work folder's file system and the `margin` that must stay
/// free; `None` when it fits.
pub fn space_shortfall(free: u64, size: u64, margin: u64) -> Option<String> {
    let needed = size.saturating_add(margin);
    (free < needed).then(|| {
        format!(
            "waiting for disk space: the master is {} and {} must stay free (data.free_space_margin_bytes), but only {} is free in the work folder",
            human(size),
            human(margin),
            human(free)
        )
    })
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_waits_unless_its_size_plus_the_margin_is_free() {
        const GIB: u64 = 1 << 30;
        assert_eq!(space_shortfall(10 * GIB, 2 * GIB, GIB), None);
        assert_eq!(
            space_shortfall(3 * GIB, 2 * GIB, GIB),
            None,
            "exactly enough"
        );
        let why = space_shortfall(3 * GIB - 1, 2 * GIB, GIB).unwrap();
        assert!(why.starts_with("waiting for disk space"), "{why}");
        assert!(why.contains("2.0 GiB"), "{why}");
        assert!(why.contains("data.free_space_margin_bytes"), "{why}");
        // Space frees: the same master proceeds.
        assert_eq!(space_shortfall(4 * GIB, 2 * GIB, GIB), None);
        assert!(space_shortfall(0, 1, 0).is_some());
        assert!(space_shortfall(u64::MAX - 1, u64::MAX - 1, 1).is_some());
    }

    #[test]
    fn free_space_is_read_from_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }
}
