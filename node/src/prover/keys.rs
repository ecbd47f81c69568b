//! The prover's proving-key cache: keys are fetched from the distributor in
//! chunks, resumed from a partial file after an interruption, checked against
//! their content hash, and kept on disk by hash so each is fetched once.
//!
//! What a distributor can make a prover fetch is bounded: a key announced
//! longer than the prover's `max_key_mb` — or than the disk has room for —
//! is refused before a byte is written; the hash is taken as the chunks
//! stream in (memory stays one chunk, whatever the key's size); one key
//! downloads at a time (a job needing another meanwhile is refused, and
//! released); partial downloads of other keys are removed when one starts,
//! and at most [`KEPT_KEYS`] whole keys are kept within the disk budget
//! (`key_cache_mb`), the least recently used removed first. `/status` shows
//! a download's progress and a key's loading ([`KeyCache::work`]).
//!
//! A fetched key is `<hash>.pk`, the distributor's bytes; a transfer key is
//! then kept expanded instead, `<hash>.expanded`
//! ([`prover_core::ProvingKey::save_expanded`]): twice the disk, read at
//! each later start 40 to 60 times faster than decompressing the fetched
//! file (34 ms against 1.9 s for the default `transfer-d8-k2`; the
//! key-load benchmark in docs/benchmarks.md).
//! A circom zkey's points are uncompressed already: it stays as fetched.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use protocol::ContentHash;
use protocol::messages::{KEY_CHUNK_BYTES, KeyChunk, KeyRequest, MAX_KEY_BYTES};
use prover_core::{AnyProvingKey, Circuit, ProvingKey};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::status_doc::KeyWorkView;

/// Whole keys kept on disk; older ones (by last use) are removed.
pub const KEPT_KEYS: usize = 3;

/// Room left free on the key cache's disk beyond a key being fetched.
const DISK_MARGIN: u64 = 64 << 20;

/// Fetches one chunk of a key; the prover's request path.
pub trait ChunkSource {
    /// Asks for chunk `chunk` of `key`.
    fn fetch(
        &self,
        request: KeyRequest,
    ) -> impl std::future::Future<Output = anyhow::Result<KeyChunk>> + Send;
}

/// Keys on disk under one folder, and the one in use in memory.
#[derive(Debug)]
pub struct KeyCache {
    dir: PathBuf,
    max_key_bytes: u64,
    /// Most bytes of whole keys kept on disk (the key in use is kept
    /// whatever its size).
    budget_bytes: u64,
    loaded: Mutex<Option<Arc<AnyProvingKey>>>,
    /// The key being downloaded, if one is.
    downloading: std::sync::Mutex<Option<ContentHash>>,
    /// What is being done to a key now, for `/status`.
    work: std::sync::Mutex<Option<KeyWorkView>>,
}

/// A key from [`KeyCache::get`], and what getting it took.
#[derive(Debug)]
pub struct Got {
    /// The key, loaded.
    pub key: Arc<AnyProvingKey>,
    /// What getting it took.
    pub took: KeyTook,
}

/// What getting a key took.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyTook {
    /// Bytes downloaded for it (0: it was on disk or in memory).
    pub fetched: u64,
    /// How long the download took.
    pub download: std::time::Duration,
    /// How long loading and checking it took (0: it was in memory).
    pub load: std::time::Duration,
}

/// Marks a key as downloading until dropped.
struct Downloading<'a>(&'a std::sync::Mutex<Option<ContentHash>>);

impl Drop for Downloading<'_> {
    fn drop(&mut self) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// Shows a key's work in `/status` until dropped.
struct Working<'a>(&'a KeyCache);

impl Drop for Working<'_> {
    fn drop(&mut self) {
        self.0.report(None);
    }
}

impl KeyCache {
    /// A cache in `dir` (created when first needed), taking keys up to the
    /// protocol's ceiling (4 GiB).
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            max_key_bytes: MAX_KEY_BYTES,
            budget_bytes: u64::MAX,
            loaded: Mutex::new(None),
            downloading: std::sync::Mutex::new(None),
            work: std::sync::Mutex::new(None),
        }
    }

    /// The same, refusing keys longer than `bytes` (at most the ceiling).
    pub fn with_max_key_bytes(mut self, bytes: u64) -> Self {
        self.max_key_bytes = bytes.min(MAX_KEY_BYTES);
        self
    }

    /// The same, keeping at most `bytes` of whole keys on disk: older keys
    /// go first, never the one in use or just fetched.
    pub fn with_disk_budget(mut self, bytes: u64) -> Self {
        self.budget_bytes = bytes;
        self
    }

    /// The key as fetched.
    fn fetched_path(&self, key: ContentHash) -> PathBuf {
        self.dir.join(format!("{}{FETCHED}", key.to_hex()))
    }

    /// The key expanded, once it has been loaded.
    fn expanded_path(&self, key: ContentHash) -> PathBuf {
        self.dir.join(format!("{}{EXPANDED}", key.to_hex()))
    }

    /// The key's file on disk, expanded or as fetched, if it has one.
    fn file(&self, key: ContentHash) -> Option<PathBuf> {
        [self.expanded_path(key), self.fetched_path(key)]
            .into_iter()
            .find(|p| p.exists())
    }

    fn part_path(&self, key: ContentHash) -> PathBuf {
        self.dir.join(format!("{}.pk.part", key.to_hex()))
    }

    /// Whether the key is on disk.
    pub fn has(&self, key: ContentHash) -> bool {
        self.file(key).is_some()
    }

    /// Refused while another key than `key` downloads.
    fn may_download(&self, key: ContentHash) -> anyhow::Result<()> {
        let downloading = *self
            .downloading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match downloading.filter(|other| *other != key) {
            Some(other) => bail!(
                "key {} not fetched: key {} is downloading, and one key downloads at a time",
                key.short(),
                other.short()
            ),
            None => Ok(()),
        }
    }

    /// Claims the one download slot for `key`, until the guard drops.
    fn start_download(&self, key: ContentHash) -> anyhow::Result<Downloading<'_>> {
        self.may_download(key)?;
        *self
            .downloading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(key);
        Ok(Downloading(&self.downloading))
    }

    /// The key of `circuit` with hash `key`: from memory, else from disk,
    /// else fetched through `source`. Concurrent callers for the same key
    /// wait for one fetch; one for another key, while a key downloads, is
    /// refused.
    pub async fn get(
        &self,
        circuit: Circuit,
        key: ContentHash,
        source: &impl ChunkSource,
    ) -> anyhow::Result<Got> {
        if !self.has(key) {
            // Checked before waiting: a job needing another key does not
            // queue a second download behind the first.
            self.may_download(key)?;
        }
        let mut loaded = self.loaded.lock().await;
        if let Some(pk) = loaded
            .as_ref()
            .filter(|pk| pk.hash() == key && pk.circuit() == circuit)
        {
            return Ok(Got {
                key: pk.clone(),
                took: KeyTook::default(),
            });
        }
        let (mut fetched, mut download) = (0, std::time::Duration::ZERO);
        if let Some(file) = self.file(key) {
            // Last used now: the cache keeps the most recently used keys.
            let _ = std::fs::File::options()
                .append(true)
                .open(&file)
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        } else {
            let _slot = self.start_download(key)?;
            let started = std::time::Instant::now();
            fetched = self.download(key, source).await?;
            download = started.elapsed();
        }
        let started = std::time::Instant::now();
        let pk = self.load(circuit, key).await?;
        if fetched > 0 {
            // Pruned once the new key is expanded, so its size on disk counts.
            let in_use = loaded.as_ref().map(|pk| pk.hash());
            self.prune(&[Some(key), in_use]);
        }
        *loaded = Some(pk.clone());
        Ok(Got {
            key: pk,
            took: KeyTook {
                fetched,
                download,
                load: started.elapsed(),
            },
        })
    }

    /// The key being downloaded or loaded now, if one is.
    pub fn work(&self) -> Option<KeyWorkView> {
        self.work
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Shows `work` in `/status` until the returned guard drops.
    fn working(&self, work: KeyWorkView) -> Working<'_> {
        self.report(Some(work));
        Working(self)
    }

    fn report(&self, work: Option<KeyWorkView>) {
        *self
            .work
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = work;
    }

    /// Loads the cached key ([`read_key`]).
    async fn load(&self, circuit: Circuit, key: ContentHash) -> anyhow::Result<Arc<AnyProvingKey>> {
        let started = std::time::Instant::now();
        let bytes = self
            .file(key)
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len());
        let _working = self.working(KeyWorkView {
            key: key.to_hex(),
            doing: "loading".into(),
            bytes,
            total_bytes: Some(bytes),
        });
        let (fetched, expanded) = (self.fetched_path(key), self.expanded_path(key));
        let (pk, form) =
            tokio::task::spawn_blocking(move || read_key(circuit, key, &fetched, &expanded))
                .await??;
        let pk = Arc::new(pk);
        info!(target: "prover", key = %key.short(), ms = started.elapsed().as_millis() as u64, setup = %pk.setup(), from = form, "proving key loaded");
        if !pk.setup().is_secure() {
            // Proofs under such keys can be forged: another prover could take
            // every reward without proving. The distributor runs --dev.
            warn!(target: "prover", key = %key.short(), "the distributor's keys come from an insecure seeded setup (a testnet)");
        }
        Ok(pk)
    }

    /// Opens the partial download of `key`, cut to whole chunks, and hashes
    /// what it holds (read a chunk at a time). Partial downloads of other
    /// keys are removed.
    fn open_part(&self, key: ContentHash) -> anyhow::Result<(std::fs::File, u64, Sha256)> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create key cache {}", self.dir.display()))?;
        let part = self.part_path(key);
        for other in self.files(".pk.part").into_iter().filter(|p| *p != part) {
            info!(target: "prover", path = %other.display(), "removing the partial download of another key");
            let _ = std::fs::remove_file(other);
        }
        let mut have = std::fs::metadata(&part).map_or(0, |m| m.len());
        // Keep whole chunks only: a chunk cut short by a crash is fetched again.
        have -= have % KEY_CHUNK_BYTES as u64;
        have = have.min(self.max_key_bytes - self.max_key_bytes % KEY_CHUNK_BYTES as u64);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&part)
            .with_context(|| format!("cannot open {}", part.display()))?;
        file.set_len(have)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; KEY_CHUNK_BYTES];
        let mut left = have;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            file.read_exact(&mut buf[..n])?;
            hasher.update(&buf[..n]);
            left -= n as u64;
        }
        file.seek(std::io::SeekFrom::Start(have))?;
        Ok((file, have, hasher))
    }

    /// Refuses a key of `total` bytes past the cap, or past the free space
    /// for the `have` bytes not yet on disk.
    fn check_length(&self, key: ContentHash, total: u64, have: u64) -> anyhow::Result<()> {
        if total > self.max_key_bytes {
            bail!(
                "the distributor announces key {} as {total} bytes, over this prover's \
                 max_key_mb ({} MiB); not fetched",
                key.short(),
                self.max_key_bytes >> 20
            );
        }
        if have > total {
            bail!(
                "the partial download of key {} is longer than the key",
                key.short()
            );
        }
        let need = total - have + DISK_MARGIN;
        let free = crate::disk::Space::floor(&self.dir, 0)
            .free()
            .with_context(|| format!("cannot read the free space of {}", self.dir.display()))?;
        if free < need {
            bail!(
                "key {} needs {} MiB more, and {} has {} MiB free; not fetched",
                key.short(),
                need >> 20,
                self.dir.display(),
                free >> 20
            );
        }
        Ok(())
    }

    /// Fetches the key into the cache, resuming a partial download and
    /// hashing the chunks as they arrive. Returns the bytes fetched.
    async fn download(&self, key: ContentHash, source: &impl ChunkSource) -> anyhow::Result<u64> {
        let (mut file, have, mut hasher) = self.open_part(key)?;
        let part = self.part_path(key);
        if have > 0 {
            info!(target: "prover", key = %key.short(), bytes = have, "resuming key download");
        }
        let mut fetched = 0u64;
        let mut chunk = (have / KEY_CHUNK_BYTES as u64) as u32;
        let mut total = None;
        let progress = |total: Option<u64>, fetched: u64| KeyWorkView {
            key: key.to_hex(),
            doing: "downloading".into(),
            bytes: have + fetched,
            total_bytes: total,
        };
        let _working = self.working(progress(None, 0));
        loop {
            let reply = source.fetch(KeyRequest { key, chunk }).await?;
            if reply.key != key || reply.chunk != chunk {
                bail!(
                    "distributor sent chunk {} of {} when asked for chunk {chunk} of {key}",
                    reply.chunk,
                    reply.key
                );
            }
            // The length is the first chunk's (checked against the cap and
            // the free space before anything is written) and may not change.
            if total.is_none() {
                self.check_length(key, reply.total_len, have)?;
            }
            if *total.get_or_insert(reply.total_len) != reply.total_len {
                bail!("distributor changed the key length mid-download");
            }
            file.write_all(&reply.data).with_context(|| {
                format!(
                    "cannot write the proving key to {} ({} of {} bytes written; is the disk full?)",
                    part.display(),
                    u64::from(chunk) * KEY_CHUNK_BYTES as u64,
                    reply.total_len
                )
            })?;
            hasher.update(&reply.data);
            fetched += reply.data.len() as u64;
            self.report(Some(progress(total, fetched)));
            chunk += 1;
            if u64::from(chunk) >= KeyChunk::count(reply.total_len) {
                break;
            }
        }
        file.sync_all()?;
        drop(file);
        if ContentHash(hasher.finalize().into()) != key {
            let _ = std::fs::remove_file(&part);
            bail!("downloaded key does not match its hash {key}; discarded, will fetch again");
        }
        std::fs::rename(&part, self.fetched_path(key))?;
        info!(target: "prover", key = %key.short(), bytes = total.unwrap_or(0), "proving key fetched and checked");
        Ok(fetched)
    }

    /// The files in the cache whose names end in `suffix`.
    fn files(&self, suffix: &str) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_str().is_some_and(|s| s.ends_with(suffix)))
            .collect()
    }

    /// Removes whole keys beyond [`KEPT_KEYS`] or the disk budget, the
    /// least recently used first, never one of `keep`, and any expanded
    /// copy left half-written by a kill (nothing is being expanded while
    /// `get` holds the loaded key).
    fn prune(&self, keep: &[Option<ContentHash>]) {
        for half_written in self.files(".tmp") {
            let _ = std::fs::remove_file(half_written);
        }
        let kept: Vec<PathBuf> = keep
            .iter()
            .flatten()
            .flat_map(|k| [self.fetched_path(*k), self.expanded_path(*k)])
            .collect();
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut keys: Vec<(std::time::SystemTime, PathBuf)> = self
            .files(FETCHED)
            .into_iter()
            .chain(self.files(EXPANDED))
            .map(|p| (modified(&p), p))
            .collect();
        keys.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
        let mut left = KEPT_KEYS.saturating_sub(keep.iter().flatten().count());
        let mut used: u64 = kept.iter().map(|p| size(p)).sum();
        for (_, path) in keys.into_iter().filter(|(_, p)| !kept.contains(p)) {
            let bytes = size(&path);
            if left > 0 && used.saturating_add(bytes) <= self.budget_bytes {
                left -= 1;
                used += bytes;
                continue;
            }
            info!(target: "prover", path = %path.display(), bytes, "removing a proving key unused of late");
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A key as fetched from the distributor.
const FETCHED: &str = ".pk";
/// A key expanded for fast loading.
const EXPANDED: &str = ".expanded";

/// Reads key `key` from its `expanded` form if that is good, else from the
/// file as `fetched` (checked against its hash), expanding a transfer key
/// and then removing the fetched file. A file that does not check is
/// removed, so the next attempt fetches a good copy. Says which it read.
fn read_key(
    circuit: Circuit,
    key: ContentHash,
    fetched: &Path,
    expanded: &Path,
) -> anyhow::Result<(AnyProvingKey, &'static str)> {
    if expanded.exists() {
        match ProvingKey::load_expanded(expanded, &circuit.id(), key) {
            Ok(pk) => {
                // Left by a crash between expanding and removing it.
                let _ = std::fs::remove_file(fetched);
                return Ok((AnyProvingKey::Transfer(pk), "expanded"));
            }
            Err(e) => {
                let _ = std::fs::remove_file(expanded);
                if !fetched.exists() {
                    return Err(e).with_context(|| {
                        format!("cached key {} is bad; removed", expanded.display())
                    });
                }
                warn!(target: "prover", error = %e, "the expanded key is bad; removed, reading the key as fetched");
            }
        }
    }
    let pk = AnyProvingKey::load(circuit, fetched, Some(key))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(fetched);
        })
        .with_context(|| format!("cached key {} is bad; removed", fetched.display()))?;
    if let AnyProvingKey::Transfer(transfer) = &pk {
        match transfer.save_expanded(expanded) {
            Ok(()) => {
                let _ = std::fs::remove_file(fetched);
            }
            // The key still proves; it is read from the fetched file again
            // at the next start.
            Err(e) => warn!(target: "prover", error = %e, "cannot keep the key expanded"),
        }
    }
    Ok((pk, "fetched"))
}

/// When `path` was last written (the epoch if unknown).
fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(std::time::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Serves a byte string in chunks, failing once after `fail_after` chunks.
    struct Served {
        bytes: Vec<u8>,
        hash: ContentHash,
        fail_after: AtomicU32,
        served: AtomicU32,
    }

    impl Served {
        /// The key of [`circuit`] from a seeded setup.
        fn test_key(fail_after: u32) -> Self {
            let (pk, _) =
                prover_core::setup_insecure(prover_core::CircuitConfig::new(4, 1).unwrap(), 1)
                    .unwrap();
            Self {
                hash: pk.hash(),
                bytes: pk.to_bytes(),
                fail_after: AtomicU32::new(fail_after),
                served: AtomicU32::new(0),
            }
        }
    }

    impl ChunkSource for Served {
        async fn fetch(&self, request: KeyRequest) -> anyhow::Result<KeyChunk> {
            if self.served.fetch_add(1, Ordering::SeqCst) == self.fail_after.load(Ordering::SeqCst)
            {
                bail!("connection lost");
            }
            let start = request.chunk as usize * KEY_CHUNK_BYTES;
            let end = (start + KEY_CHUNK_BYTES).min(self.bytes.len());
            Ok(KeyChunk {
                key: self.hash,
                chunk: request.chunk,
                total_len: self.bytes.len() as u64,
                data: self.bytes[start..end].to_vec(),
            })
        }
    }

    /// Announces a key of `total_len` bytes, and counts what it serves.
    struct Announces {
        total_len: u64,
        served: AtomicU32,
    }

    impl ChunkSource for Announces {
        async fn fetch(&self, request: KeyRequest) -> anyhow::Result<KeyChunk> {
            self.served.fetch_add(1, Ordering::SeqCst);
            Ok(KeyChunk {
                key: request.key,
                chunk: request.chunk,
                total_len: self.total_len,
                data: vec![7; KEY_CHUNK_BYTES],
            })
        }
    }

    /// Never answers until told, so a download stays in progress.
    struct Stalls(tokio::sync::Notify);

    impl ChunkSource for Stalls {
        async fn fetch(&self, _: KeyRequest) -> anyhow::Result<KeyChunk> {
            self.0.notified().await;
            bail!("gave up")
        }
    }

    fn circuit() -> Circuit {
        Circuit::Transfer(prover_core::CircuitConfig::new(4, 1).unwrap())
    }

    #[tokio::test]
    async fn a_key_past_the_cap_is_refused_before_a_byte_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KeyCache::new(dir.path().to_path_buf()).with_max_key_bytes(8 << 20);
        let key = ContentHash::of(b"a huge key");
        let source = Announces {
            total_len: (8 << 20) + 1,
            served: AtomicU32::new(0),
        };
        let err = cache.get(circuit(), key, &source).await.unwrap_err();
        assert!(format!("{err:#}").contains("max_key_mb (8 MiB)"), "{err:#}");
        assert_eq!(
            source.served.load(Ordering::SeqCst),
            1,
            "only the first chunk"
        );
        let part = dir.path().join(format!("{}.pk.part", key.to_hex()));
        assert_eq!(std::fs::metadata(part).unwrap().len(), 0, "nothing written");
        // The protocol's 4 GiB ceiling stays the most a setting allows.
        let loose = KeyCache::new(dir.path().to_path_buf()).with_max_key_bytes(u64::MAX);
        assert_eq!(loose.max_key_bytes, MAX_KEY_BYTES);
    }

    #[tokio::test]
    async fn one_key_downloads_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(KeyCache::new(dir.path().to_path_buf()));
        let stalls = Arc::new(Stalls(tokio::sync::Notify::new()));
        let first = ContentHash::of(b"first key");
        let downloading = tokio::spawn({
            let (cache, stalls) = (cache.clone(), stalls.clone());
            async move {
                cache
                    .get(circuit(), first, stalls.as_ref())
                    .await
                    .map(|_| ())
            }
        });
        while cache.work().is_none() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // `/status` shows it: nothing yet of a length not yet known.
        let work = cache.work().unwrap();
        assert_eq!(
            (work.key, work.doing.as_str(), work.bytes, work.total_bytes),
            (first.to_hex(), "downloading", 0, None)
        );
        let second = ContentHash::of(b"second key");
        let err = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            cache.get(circuit(), second, stalls.as_ref()),
        )
        .await
        .expect("refused at once, not queued")
        .unwrap_err();
        assert!(
            err.to_string().contains("one key downloads at a time"),
            "{err}"
        );
        stalls.0.notify_waiters();
        assert!(downloading.await.unwrap().is_err());
        assert!(
            cache.downloading.lock().unwrap().is_none() && cache.work().is_none(),
            "the slot is freed, and nothing shown"
        );
    }

    #[tokio::test]
    async fn the_cache_keeps_a_few_keys_and_no_other_partial_download() {
        let dir = tempfile::tempdir().unwrap();
        let old = |name: &str, age: u64| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"x").unwrap();
            let then = std::time::SystemTime::now() - std::time::Duration::from_secs(age);
            std::fs::File::options()
                .append(true)
                .open(&path)
                .unwrap()
                .set_modified(then)
                .unwrap();
            path
        };
        let stale_part = old("aa.pk.part", 10);
        let half_expanded = old("bb.tmp", 10);
        let keys: Vec<_> = (0..KEPT_KEYS + 2)
            .map(|i| old(&format!("{i:02}.pk"), 100 + i as u64))
            .collect();
        let source = Served::test_key(u32::MAX);
        let cache = KeyCache::new(dir.path().to_path_buf());
        cache.get(circuit(), source.hash, &source).await.unwrap();
        assert!(
            !stale_part.exists() && !half_expanded.exists(),
            "another key's partial download and a half-written copy are removed"
        );
        assert!(cache.has(source.hash));
        // The new key and the KEPT_KEYS - 1 most recently used others.
        let left: Vec<bool> = keys.iter().map(|k| k.exists()).collect();
        let mut expected = vec![false; keys.len()];
        expected[..KEPT_KEYS - 1].fill(true);
        assert_eq!(left, expected);

        // Over a disk budget, older keys go first, and the one in use stays
        // whatever its size.
        let big = |name: &str, age: u64, len: usize| {
            let path = old(name, age);
            std::fs::write(&path, vec![0u8; len]).unwrap();
            std::fs::File::options()
                .append(true)
                .open(&path)
                .unwrap()
                .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(age))
                .unwrap();
            path
        };
        let newer = big("newer.pk", 1, 300);
        let older = big("older.pk", 2, 300);
        let tight = KeyCache::new(dir.path().to_path_buf()).with_disk_budget(700);
        tight.prune(&[Some(source.hash)]);
        let in_use = tight.file(source.hash).unwrap();
        assert!(in_use.exists() && std::fs::metadata(&in_use).unwrap().len() > 700);
        assert!(
            !newer.exists() && !older.exists(),
            "over budget with the key in use"
        );
        let newer = big("newer.pk", 1, 300);
        let older = big("older.pk", 2, 300);
        tight.prune(&[]);
        assert!(
            !in_use.exists(),
            "a key over the budget goes, however recent"
        );
        assert!(newer.exists() && older.exists(), "600 bytes fit in 700");
    }

    #[tokio::test]
    async fn a_loaded_key_is_kept_expanded_and_a_bad_copy_is_fetched_again() {
        let source = Served::test_key(u32::MAX);
        let dir = tempfile::tempdir().unwrap();
        let cache = KeyCache::new(dir.path().to_path_buf());
        let got = cache.get(circuit(), source.hash, &source).await.unwrap();
        assert_eq!(got.took.fetched, source.bytes.len() as u64);
        let (fetched, expanded) = (
            cache.fetched_path(source.hash),
            cache.expanded_path(source.hash),
        );
        assert!(expanded.exists() && !fetched.exists(), "kept expanded only");
        let same = |key: &AnyProvingKey| match key {
            AnyProvingKey::Transfer(k) => k.to_bytes() == source.bytes,
            AnyProvingKey::Circom(_) => false,
        };
        assert!(same(&got.key));

        // A restart reads the expanded copy, and fetches nothing.
        let restarted = KeyCache::new(dir.path().to_path_buf());
        let got = restarted
            .get(circuit(), source.hash, &source)
            .await
            .unwrap();
        assert_eq!(got.took.fetched, 0);
        assert!(same(&got.key));
        let (_, from) = read_key(circuit(), source.hash, &fetched, &expanded).unwrap();
        assert_eq!(from, "expanded");

        // A changed copy is refused and removed; the next get fetches anew.
        let mut bytes = std::fs::read(&expanded).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        std::fs::write(&expanded, bytes).unwrap();
        let restarted = KeyCache::new(dir.path().to_path_buf());
        let err = restarted
            .get(circuit(), source.hash, &source)
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("is bad; removed"), "{err:#}");
        assert!(!restarted.has(source.hash));
        let got = restarted
            .get(circuit(), source.hash, &source)
            .await
            .unwrap();
        assert_eq!(got.took.fetched, source.bytes.len() as u64);
        assert!(same(&got.key) && expanded.exists());

        // A copy left as fetched beside a good expanded one (a crash
        // between the two) is removed when the key is read.
        std::fs::write(&fetched, &source.bytes).unwrap();
        let (_, from) = read_key(circuit(), source.hash, &fetched, &expanded).unwrap();
        assert_eq!(from, "expanded");
        assert!(!fetched.exists());

        // A copy that cannot be written (a full disk, here no folder for
        // it) leaves the key proving from the file as fetched.
        std::fs::write(&fetched, &source.bytes).unwrap();
        let unwritable = dir.path().join("gone").join("key.expanded");
        let (key, from) = read_key(circuit(), source.hash, &fetched, &unwritable).unwrap();
        assert!(same(&key) && from == "fetched" && fetched.exists());
    }

    #[tokio::test]
    async fn downloads_resume_and_are_hash_checked() {
        let source = Served::test_key(1);
        assert!(
            source.bytes.len() > KEY_CHUNK_BYTES,
            "test needs a multi-chunk key"
        );
        let dir = tempfile::tempdir().unwrap();
        let cache = KeyCache::new(dir.path().to_path_buf());
        // First attempt dies after one chunk; the second resumes from there.
        assert!(cache.get(circuit(), source.hash, &source).await.is_err());
        let got = cache.get(circuit(), source.hash, &source).await.unwrap();
        assert_eq!(got.key.hash(), source.hash);
        assert_eq!(
            got.took.fetched,
            source.bytes.len() as u64 - KEY_CHUNK_BYTES as u64
        );
        assert!(cache.work().is_none(), "nothing shown once done");
        assert!(cache.has(source.hash));
        // A different key cannot be served by this source: its hash fails.
        let wrong = ContentHash::of(b"another key");
        let err = cache
            .get(circuit(), wrong, &source)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("sent chunk") || err.contains("hash"), "{err}");
    }
}
