//! The free-space floor of the distributor's data dir, and durable small
//! file writes ([`write_durably`]).
//!
//! RocksDB does not recover well from a write that runs out of space (some
//! builds abort the process on the next sync), so the distributor never lets
//! it get there: before each group commit to the job store or the ledger it
//! checks that the data dir's filesystem keeps `min_free_disk_mb`, and when
//! it does not the process exits at once with a clear error — without the
//! graceful shutdown, whose own writes (RocksDB flushing its logs as it
//! closes) would meet the full disk. That is a crash at a clean point: every
//! step of a job's lifecycle that anyone was told of is durable and each is
//! idempotent, so once space is freed a restart carries on where the last
//! write left off.

use std::path::{Path, PathBuf};

/// Checks a folder's filesystem for a minimum of free space.
#[derive(Debug, Clone)]
pub struct Space {
    dir: PathBuf,
    min_free: u64,
}

impl Space {
    /// Keeps at least `min_free_mb` MiB free where `dir` lives (0: no check).
    pub fn floor(dir: &Path, min_free_mb: u64) -> Self {
        Self {
            dir: dir.to_path_buf(),
            min_free: min_free_mb.saturating_mul(1 << 20),
        }
    }

    /// Free bytes available to this process where the folder lives.
    pub fn free(&self) -> std::io::Result<u64> {
        let stat = rustix::fs::statvfs(&self.dir)?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    /// Returns if there is room for the next write; otherwise logs why and
    /// exits the process (status 1) without another write.
    pub fn check_or_exit(&self) {
        if let Err(full) = self.check() {
            // Held until the process is gone, so no other thread's log line
            // follows the error: the last line says why it stopped.
            let _out = std::io::stdout().lock();
            let _err = std::io::stderr().lock();
            tracing::error!(target: "distributor", error = %full, "stopping at once: the disk is full");
            eprintln!("error: {full}");
            std::process::exit(1);
        }
    }

    /// Fine, or why the next write must not happen.
    pub fn check(&self) -> Result<(), String> {
        if self.min_free == 0 {
            return Ok(());
        }
        let free = self
            .free()
            .map_err(|e| format!("cannot read the free space of {}: {e}", self.dir.display()))?;
        if free < self.min_free {
            return Err(format!(
                "the disk holding {} is full: {} MiB free, under the {} MiB min_free_disk_mb it \
                 keeps; free some space, then restart (nothing written so far is lost)",
                self.dir.display(),
                free >> 20,
                self.min_free >> 20
            ));
        }
        Ok(())
    }
}

/// Writes `path` in `dir` with `write`: a temporary file, synced, renamed
/// over `path`, then `dir` synced so the rename lasts.
pub fn write_durably(
    dir: &Path,
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut file = std::fs::File::create(&tmp)?;
    write(&mut file)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_above_the_free_space_is_refused_with_the_figures() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Space::floor(dir.path(), 0).check().is_ok());
        assert!(Space::floor(dir.path(), 1).check().is_ok());
        let free_mb = Space::floor(dir.path(), 0).free().unwrap() >> 20;
        let err = Space::floor(dir.path(), free_mb + 1024)
            .check()
            .unwrap_err();
        assert!(
            err.contains("is full") && err.contains("min_free_disk_mb"),
            "{err}"
        );
        let gone = Space::floor(&dir.path().join("missing"), 1)
            .check()
            .unwrap_err();
        assert!(gone.contains("cannot read the free space"), "{gone}");
    }
}
