//! A job's witness as its assignment carries it: the bytes themselves, or
//! their hash and length. A long witness is fetched chunk by chunk from the
//! distributor (which serves only the hand-out's holder) and checked
//! against the hash the signed assignment names before it is proved.

use anyhow::{Context, bail};
use protocol::ContentHash;
use protocol::messages::{Assignment, Witness, WitnessChunk, WitnessRequest};

/// Fetches one chunk of a witness; the prover's request path.
pub trait WitnessSource {
    /// Asks for the chunk `request` names.
    fn fetch_witness(
        &self,
        request: WitnessRequest,
    ) -> impl std::future::Future<Output = anyhow::Result<WitnessChunk>> + Send;
}

/// The witness of `assignment`, fetched from `source` if it is not inline.
/// The bytes grow as chunks arrive (a length the distributor claims
/// reserves nothing), and each chunk must be the one asked for.
pub async fn witness_of(
    assignment: &Assignment,
    source: &impl WitnessSource,
) -> anyhow::Result<Vec<u8>> {
    let (hash, len) = match &assignment.witness {
        Witness::Inline(bytes) => return Ok(bytes.clone()),
        Witness::Chunked { hash, len } => (*hash, *len),
    };
    let job = assignment.job;
    let mut bytes = Vec::new();
    for chunk in 0..WitnessChunk::count(len) {
        let chunk = u32::try_from(chunk).context("a witness of more chunks than a u32 counts")?;
        let request = WitnessRequest {
            job,
            request: assignment.request,
            chunk,
        };
        let got = source
            .fetch_witness(request)
            .await
            .with_context(|| format!("witness chunk {chunk} of job {job}"))?;
        if (got.job, got.chunk, got.total_len) != (job, chunk, len) {
            bail!(
                "asked for chunk {chunk} of job {job}'s {len}-byte witness, the distributor sent \
                 chunk {} of job {}'s {}-byte one",
                got.chunk,
                got.job,
                got.total_len
            );
        }
        bytes.extend_from_slice(&got.data);
    }
    if ContentHash::of(&bytes) != hash {
        bail!("job {job}'s witness does not match the hash its signed assignment names");
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::messages::{MAX_INLINE_WITNESS_BYTES, WITNESS_CHUNK_BYTES};
    use protocol::{BatchId, CircuitId, JobId, PublicKey, RequestId};
    use std::sync::Mutex;

    /// Serves `bytes` in chunks, spoiled by `spoil`; records what it was asked.
    struct Served<F> {
        bytes: Vec<u8>,
        spoil: F,
        asked: Mutex<Vec<u32>>,
    }

    impl<F: Fn(&mut WitnessChunk) + Sync> WitnessSource for Served<F> {
        async fn fetch_witness(&self, request: WitnessRequest) -> anyhow::Result<WitnessChunk> {
            self.asked.lock().unwrap().push(request.chunk);
            let start = request.chunk as usize * WITNESS_CHUNK_BYTES;
            let end = (start + WITNESS_CHUNK_BYTES).min(self.bytes.len());
            let mut chunk = WitnessChunk {
                job: request.job,
                chunk: request.chunk,
                total_len: self.bytes.len() as u64,
                data: self.bytes[start..end].to_vec(),
            };
            (self.spoil)(&mut chunk);
            Ok(chunk)
        }
    }

    fn assignment(witness: Witness) -> Assignment {
        Assignment {
            job: JobId::new(BatchId(3), 1),
            request: RequestId(9),
            prover: PublicKey([1; 32]),
            circuit: CircuitId::new("c").unwrap(),
            proving_key: ContentHash([0; 32]),
            witness,
            reward: 1,
        }
    }

    fn long() -> Vec<u8> {
        (0..WITNESS_CHUNK_BYTES * 2 + 77)
            .map(|i| (i % 251) as u8)
            .collect()
    }

    #[tokio::test]
    async fn a_long_witness_is_fetched_in_order_and_checked_against_its_hash() {
        let bytes = long();
        let a = assignment(Witness::of(bytes.clone()));
        let served = Served {
            bytes: bytes.clone(),
            spoil: |_: &mut WitnessChunk| {},
            asked: Mutex::default(),
        };
        assert_eq!(witness_of(&a, &served).await.unwrap(), bytes);
        assert_eq!(*served.asked.lock().unwrap(), vec![0, 1, 2]);

        // An inline witness is never fetched.
        let short = vec![5u8; MAX_INLINE_WITNESS_BYTES];
        let a = assignment(Witness::of(short.clone()));
        let served = Served {
            bytes: Vec::new(),
            spoil: |_: &mut WitnessChunk| {},
            asked: Mutex::default(),
        };
        assert_eq!(witness_of(&a, &served).await.unwrap(), short);
        assert!(served.asked.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn wrong_bytes_chunks_or_lengths_from_the_distributor_are_refused() {
        let bytes = long();
        let a = assignment(Witness::of(bytes.clone()));
        let refused = |spoil: fn(&mut WitnessChunk)| {
            let served = Served {
                bytes: bytes.clone(),
                spoil,
                asked: Mutex::default(),
            };
            let a = a.clone();
            async move { witness_of(&a, &served).await.unwrap_err().to_string() }
        };
        let flipped = refused(|c| {
            if c.chunk == 1 {
                c.data[5] ^= 1
            }
        })
        .await;
        assert!(flipped.contains("does not match the hash"), "{flipped}");
        let other_chunk = refused(|c| c.chunk = 0).await;
        assert!(other_chunk.contains("sent chunk 0"), "{other_chunk}");
        let other_job = refused(|c| c.job = JobId::new(BatchId(3), 2)).await;
        let named = format!("of job {}'s", JobId::new(BatchId(3), 2));
        assert!(other_job.contains(&named), "{other_job}");
        let other_len = refused(|c| c.total_len += 1).await;
        assert!(other_len.contains("-byte one"), "{other_len}");
    }
}
