//! The prover's proving-key cache: keys are fetched from the distributor in
//! chunks, resumed from a partial file after an interruption, checked against
//! their content hash, and kept on disk by hash so each is fetched once.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use protocol::ContentHash;
use protocol::messages::{KEY_CHUNK_BYTES, KeyChunk, KeyRequest};
use prover_core::{AnyProvingKey, Circuit};
use tokio::sync::Mutex;
use tracing::{info, warn};

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
    loaded: Mutex<Option<Arc<AnyProvingKey>>>,
}

impl KeyCache {
    /// A cache in `dir` (created when first needed).
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            loaded: Mutex::new(None),
        }
    }

    fn path(&self, key: ContentHash) -> PathBuf {
        self.dir.join(format!("{}.pk", key.to_hex()))
    }

    /// Whether the key is on disk.
    pub fn has(&self, key: ContentHash) -> bool {
        self.path(key).exists()
    }

    /// The key of `circuit` with hash `key`: from memory, else from disk,
    /// else fetched through `source`. Concurrent callers wait for one fetch.
    pub async fn get(
        &self,
        circuit: Circuit,
        key: ContentHash,
        source: &impl ChunkSource,
    ) -> anyhow::Result<(Arc<AnyProvingKey>, u64)> {
        let mut loaded = self.loaded.lock().await;
        if let Some(pk) = loaded
            .as_ref()
            .filter(|pk| pk.hash() == key && pk.circuit() == circuit)
        {
            return Ok((pk.clone(), 0));
        }
        let path = self.path(key);
        let fetched = if path.exists() {
            0
        } else {
            self.download(key, source).await?
        };
        let started = std::time::Instant::now();
        let pk = tokio::task::spawn_blocking({
            let path = path.clone();
            move || AnyProvingKey::load(circuit, &path, Some(key))
        })
        .await?;
        let pk = match pk {
            Ok(pk) => Arc::new(pk),
            Err(e) => {
                // A cached file that no longer checks out is useless: drop it
                // so the next attempt fetches a good copy.
                let _ = std::fs::remove_file(&path);
                return Err(e)
                    .with_context(|| format!("cached key {} is bad; removed", path.display()));
            }
        };
        info!(target: "prover", key = %key.short(), ms = started.elapsed().as_millis() as u64, setup = %pk.setup(), "proving key loaded");
        if !pk.setup().is_secure() {
            // Proofs under such keys can be forged: another prover could take
            // every reward without proving. The distributor runs --dev.
            warn!(target: "prover", key = %key.short(), "the distributor's keys come from an insecure seeded setup (a testnet)");
        }
        *loaded = Some(pk.clone());
        Ok((pk, fetched))
    }

    /// Fetches the key into the cache, resuming a partial download. Returns
    /// the bytes fetched.
    async fn download(&self, key: ContentHash, source: &impl ChunkSource) -> anyhow::Result<u64> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create key cache {}", self.dir.display()))?;
        let part = self.dir.join(format!("{}.pk.part", key.to_hex()));
        let mut have = std::fs::metadata(&part).map_or(0, |m| m.len());
        // Keep whole chunks only: a chunk cut short by a crash is fetched again.
        have -= have % KEY_CHUNK_BYTES as u64;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&part)
            .with_context(|| format!("cannot open {}", part.display()))?;
        file.set_len(have)?;
        use std::io::Seek;
        file.seek(std::io::SeekFrom::End(0))?;
        if have > 0 {
            info!(target: "prover", key = %key.short(), bytes = have, "resuming key download");
        }
        let mut fetched = 0u64;
        let mut chunk = (have / KEY_CHUNK_BYTES as u64) as u32;
        let mut total = None;
        loop {
            let reply = source.fetch(KeyRequest { key, chunk }).await?;
            if reply.key != key || reply.chunk != chunk {
                bail!(
                    "distributor sent chunk {} of {} when asked for chunk {chunk} of {key}",
                    reply.chunk,
                    reply.key
                );
            }
            // The length is the first chunk's (checked against the 4 GiB
            // ceiling when it was decoded) and may not change afterwards.
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
            fetched += reply.data.len() as u64;
            chunk += 1;
            if u64::from(chunk) >= KeyChunk::count(reply.total_len) {
                break;
            }
        }
        file.sync_all()?;
        drop(file);
        let bytes = std::fs::read(&part)?;
        if ContentHash::of(&bytes) != key {
            let _ = std::fs::remove_file(&part);
            bail!("downloaded key does not match its hash {key}; discarded, will fetch again");
        }
        std::fs::rename(&part, self.path(key))?;
        info!(target: "prover", key = %key.short(), bytes = bytes.len(), "proving key fetched and checked");
        Ok(fetched)
    }
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

    #[tokio::test]
    async fn downloads_resume_and_are_hash_checked() {
        let (pk, _) =
            prover_core::setup_insecure(prover_core::CircuitConfig::new(4, 1).unwrap(), 1).unwrap();
        let bytes = pk.to_bytes();
        assert!(
            bytes.len() > KEY_CHUNK_BYTES,
            "test needs a multi-chunk key"
        );
        let source = Served {
            hash: pk.hash(),
            bytes,
            fail_after: AtomicU32::new(1),
            served: AtomicU32::new(0),
        };
        let dir = tempfile::tempdir().unwrap();
        let cache = KeyCache::new(dir.path().to_path_buf());
        // First attempt dies after one chunk; the second resumes from there.
        assert!(cache.get(pk.circuit(), pk.hash(), &source).await.is_err());
        let (loaded, fetched) = cache.get(pk.circuit(), pk.hash(), &source).await.unwrap();
        assert_eq!(loaded.hash(), pk.hash());
        assert_eq!(fetched, source.bytes.len() as u64 - KEY_CHUNK_BYTES as u64);
        assert!(cache.has(pk.hash()));
        // A different key cannot be served by this source: its hash fails.
        let wrong = ContentHash::of(b"another key");
        let err = cache
            .get(pk.circuit(), wrong, &source)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("sent chunk") || err.contains("hash"), "{err}");
    }
}
