//! Files a seeded step makes, made once per build of the tests instead of
//! once per test process (nextest runs every test in its own process).
//! Also included by the node crate's tests.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// A folder that `make` fills from seeded inputs, made by the first test
/// process that asks and reused by the others: kept in the target's temp
/// dir under a name stamped with the test binary's name, and with the size
/// and modification time of the test binary and of `programs` (binaries
/// `make` runs), so a rebuild makes it again. Two processes racing both make it; the first rename wins, and
/// the files are the same.
pub fn built_once(name: &str, programs: &[&Path], make: impl FnOnce(&Path)) -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let mut stamp = std::collections::hash_map::DefaultHasher::new();
    let exe = std::env::current_exe().unwrap();
    for program in std::iter::once(exe.as_path()).chain(programs.iter().copied()) {
        let meta = std::fs::metadata(program).unwrap();
        (meta.len(), meta.modified().unwrap()).hash(&mut stamp);
    }
    // Per test binary: two binaries sharing a name would each take the
    // other's folder for an older build's and delete it.
    let binary = exe.file_stem().unwrap().to_string_lossy();
    let binary = binary
        .rsplit_once('-')
        .map_or(&*binary, |(crate_name, _hash)| crate_name);
    let prefix = format!("{name}-{binary}-");
    let dir = base.join(format!("{prefix}{:016x}", stamp.finish()));
    if dir.exists() {
        return dir;
    }
    // Older builds' folders go.
    for old in std::fs::read_dir(base).unwrap().flatten() {
        let other = old.path() != dir;
        if other && old.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(old.path());
        }
    }
    let tmp = tempfile::tempdir_in(base).unwrap();
    make(tmp.path());
    let made = tmp.keep();
    if std::fs::rename(&made, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&made);
    }
    dir
}
