//! The verification pool: Groth16 checks off the run loop, on a rayon pool
//! of their own, behind a bounded queue.
//!
//! One dispatcher thread takes every proof waiting (up to a batch), checks
//! them together — one multi-pairing per slice of the batch, a slice per
//! pool thread — and bisects a failing slice ([`prover_core::verify_each`]),
//! so a bad proof costs its sender a few extra pairings and the honest
//! proofs beside it nothing. Verdicts go back to the run loop in the order
//! the proofs came. Batch proofs (a finished batch's root chain and its
//! proofs) run on the same pool.
//!
//! When the queue is full, [`VerifyPool::submit`] gives the check back and
//! the caller answers `busy`: a prover whose proof is refused that way keeps
//! it and submits again.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use protocol::messages::InvalidReason;
use prover_core::{Circuit, PreparedVerifyingKey, Proof, PublicSignals, ThreadPool, VerifierKey};
use rayon::prelude::*;
use tracing::debug;

use super::queue::{self, Bounded, Depth, ServiceThread};

/// One proof to check, with whatever the caller needs back with its verdict.
pub struct ProofCheck<T> {
    /// The statement.
    pub public: PublicSignals,
    /// The proof bytes as submitted.
    pub proof: Vec<u8>,
    /// Carried through untouched.
    pub context: T,
}

/// A checked proof.
pub struct Verdict<T> {
    /// `Ok` for a valid proof.
    pub result: Result<(), InvalidReason>,
    /// The check's share of its batch's time, in seconds.
    pub seconds: f64,
    /// What the caller sent along.
    pub context: T,
}

/// Reads a batch's statements and proofs, in job order.
pub type LoadChunks = Box<dyn FnOnce() -> Result<Vec<(PublicSignals, Vec<u8>)>, String> + Send>;

/// A whole batch's proof to check.
pub struct BatchCheck<B> {
    /// State root before the batch (a transfer batch's chunks must chain
    /// from it to `new_root`; a circom batch has no state and ignores both).
    pub old_root: prover_core::Root,
    /// State root after it.
    pub new_root: prover_core::Root,
    /// Reads every job's statement and proof, on the pool's thread: a large
    /// batch's proofs and witnesses are a lot to read.
    pub load: LoadChunks,
    /// Carried through untouched.
    pub context: B,
}

enum Work<T, B> {
    Proof(ProofCheck<T>),
    Batch(BatchCheck<B>),
}

/// What the pool sends back.
pub enum Checked<T, B> {
    /// Proof verdicts, in submission order.
    Proofs(Vec<Verdict<T>>),
    /// A batch proof's result: the hash over its proofs in job order when
    /// it checks, or what is wrong.
    Batch {
        /// The result.
        result: Result<protocol::ContentHash, String>,
        /// Milliseconds the check took.
        ms: u64,
        /// What the caller sent along.
        context: B,
    },
}

/// Pool settings.
#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    /// Threads of the pool's own rayon pool.
    pub threads: usize,
    /// Checks that may wait; more are refused.
    pub queue: usize,
    /// Most proofs checked in one batch.
    pub max_batch: usize,
}

/// The handle to the pool.
pub struct VerifyPool<T, B> {
    queue: Bounded<Work<T, B>>,
}

impl<T: Send + 'static, B: Send + 'static> VerifyPool<T, B> {
    /// Starts the pool; verdicts go to `out`.
    pub fn start(
        pvk: Arc<PreparedVerifyingKey>,
        config: PoolConfig,
        out: impl Fn(Checked<T, B>) + Send + 'static,
    ) -> anyhow::Result<(Self, ServiceThread)> {
        let pool = ThreadPool::new(config.threads.max(1))?;
        let (queue, rx, depth) = queue::bounded(config.queue);
        let max_batch = config.max_batch.max(1);
        let thread = ServiceThread::spawn("verify", move || {
            dispatch(&pvk, &pool, &rx, &depth, max_batch, &out)
        })?;
        Ok((Self { queue }, thread))
    }

    /// Queues a proof; a full queue gives it back.
    pub fn submit(&self, check: ProofCheck<T>) -> Result<(), ProofCheck<T>> {
        self.push(Work::Proof(check)).map_err(|w| match w {
            Work::Proof(c) => c,
            Work::Batch(_) => unreachable!("a proof was pushed"),
        })
    }

    /// Queues a batch proof; a full queue gives it back.
    pub fn submit_batch(&self, check: BatchCheck<B>) -> Result<(), BatchCheck<B>> {
        self.push(Work::Batch(check)).map_err(|w| match w {
            Work::Batch(c) => c,
            Work::Proof(_) => unreachable!("a batch was pushed"),
        })
    }

    fn push(&self, work: Work<T, B>) -> Result<(), Work<T, B>> {
        self.queue.push(work)
    }

    /// Takes no more checks; the dispatcher stops once the queue is empty.
    pub fn close(&mut self) {
        self.queue.close();
    }

    /// Checks waiting or in progress.
    pub fn depth(&self) -> usize {
        self.queue.depth()
    }

    /// The queue's capacity.
    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }
}

fn dispatch<T: Send, B>(
    pvk: &PreparedVerifyingKey,
    pool: &ThreadPool,
    rx: &mpsc::Receiver<Work<T, B>>,
    depth: &Depth,
    max_batch: usize,
    out: &dyn Fn(Checked<T, B>),
) {
    let threads = pool.threads();
    while let Ok(first) = rx.recv() {
        let mut proofs = Vec::new();
        let mut batches = Vec::new();
        let mut take = |work| match work {
            Work::Proof(p) => proofs.push(p),
            Work::Batch(b) => batches.push(b),
        };
        take(first);
        let mut taken = 1;
        while taken < max_batch {
            match rx.try_recv() {
                Ok(work) => {
                    take(work);
                    taken += 1;
                }
                Err(_) => break,
            }
        }
        if !proofs.is_empty() {
            let n = proofs.len();
            let verdicts = pool.install(|| check_proofs(pvk, proofs, threads));
            depth.done(n);
            out(Checked::Proofs(verdicts));
        }
        for batch in batches {
            let started = Instant::now();
            let (old_root, new_root) = (batch.old_root, batch.new_root);
            let result = (batch.load)().and_then(|chunks| {
                pool.install(|| check_batch(pvk, old_root, new_root, &chunks))?;
                Ok(protocol::ContentHash::of_parts(
                    chunks.iter().map(|(_, proof)| proof.as_slice()),
                ))
            });
            depth.done(1);
            out(Checked::Batch {
                result,
                ms: started.elapsed().as_millis() as u64,
                context: batch.context,
            });
        }
    }
}

/// Parses and checks `proofs` in slices, one per pool thread.
fn check_proofs<T: Send>(
    pvk: &PreparedVerifyingKey,
    proofs: Vec<ProofCheck<T>>,
    threads: usize,
) -> Vec<Verdict<T>> {
    let started = Instant::now();
    let parsed: Vec<Option<Proof>> = proofs
        .iter()
        .map(|c| Proof::from_bytes(&c.proof).ok())
        .collect();
    let items: Vec<(usize, (PublicSignals, Proof))> = parsed
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.clone().map(|p| (i, (proofs[i].public.clone(), p))))
        .collect();
    let slice = items.len().div_ceil(threads.max(1)).max(1);
    let valid: Vec<bool> = items
        .par_chunks(slice)
        .flat_map_iter(|chunk| {
            let statements: Vec<_> = chunk.iter().map(|(_, item)| item.clone()).collect();
            prover_core::verify_each(pvk, &statements, &mut rand::rngs::OsRng)
        })
        .collect();
    let mut results: Vec<Result<(), InvalidReason>> = parsed
        .iter()
        .map(|p| match p {
            Some(_) => Ok(()),
            None => Err(InvalidReason::MalformedProof),
        })
        .collect();
    for ((index, _), ok) in items.iter().zip(valid) {
        if !ok {
            results[*index] = Err(InvalidReason::VerificationFailed);
        }
    }
    let seconds = started.elapsed().as_secs_f64() / proofs.len().max(1) as f64;
    debug!(target: "distributor", proofs = proofs.len(), per_proof_ms = seconds * 1e3, "verified a batch");
    proofs
        .into_iter()
        .zip(results)
        .map(|(check, result)| Verdict {
            result,
            seconds,
            context: check.context,
        })
        .collect()
}

fn check_batch(
    pvk: &PreparedVerifyingKey,
    old_root: prover_core::Root,
    new_root: prover_core::Root,
    chunks: &[(PublicSignals, Vec<u8>)],
) -> Result<(), String> {
    let mut proofs = Vec::with_capacity(chunks.len());
    for (i, (_, bytes)) in chunks.iter().enumerate() {
        proofs.push(Proof::from_bytes(bytes).map_err(|e| format!("job {i}: {e}"))?);
    }
    let rng = &mut rand::rngs::OsRng;
    match pvk.circuit() {
        Circuit::Transfer(_) => {
            let mut items = Vec::with_capacity(chunks.len());
            for (i, ((public, _), proof)) in chunks.iter().zip(proofs).enumerate() {
                let public = public
                    .transfer()
                    .ok_or_else(|| format!("job {i} holds no transfer inputs"))?;
                items.push((*public, proof));
            }
            prover_core::verify_batch_proof(pvk, old_root, new_root, &items, rng)
        }
        // A circom batch is a set of independent statements: no chain.
        Circuit::Circom(_) => {
            let items: Vec<_> = chunks
                .iter()
                .map(|(public, _)| public.clone())
                .zip(proofs)
                .collect();
            prover_core::batch_verify(pvk, &items, rng)
        }
    }
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prover_core::{CircuitConfig, TxGenerator};

    #[test]
    fn verdicts_come_back_in_order_and_a_bad_proof_costs_only_itself() {
        let config = CircuitConfig::new(4, 1).unwrap();
        let (pk, vk) = prover_core::setup_insecure(config, 3).unwrap();
        let mut generator = TxGenerator::new(2, 8);
        let mut rollup = generator.genesis(config, 1_000_000).unwrap();
        let txs = generator.batch(&rollup, 3);
        let built = rollup.apply_batch(&txs).unwrap();
        let chunks: Vec<(PublicSignals, Vec<u8>)> = built
            .jobs
            .iter()
            .map(|j| {
                let proof = prover_core::prove(&pk, &j.to_bytes()).unwrap();
                (j.public.into(), proof.to_bytes().to_vec())
            })
            .collect();
        let (tx, rx) = mpsc::channel();
        let (mut pool, thread) = VerifyPool::<usize, ()>::start(
            Arc::new(vk.prepare()),
            PoolConfig {
                threads: 2,
                queue: 16,
                max_batch: 16,
            },
            move |checked| {
                let _ = tx.send(checked);
            },
        )
        .unwrap();
        let mut tampered = chunks[1].1.clone();
        tampered[10] ^= 0x40;
        let submissions = [
            (chunks[0].0.clone(), chunks[0].1.clone()),
            (chunks[1].0.clone(), tampered),
            (chunks[2].0.clone(), chunks[2].1.clone()),
            (chunks[0].0.clone(), vec![1, 2, 3]),
            // A valid proof of another job's statement.
            (chunks[2].0.clone(), chunks[0].1.clone()),
        ];
        for (i, (public, proof)) in submissions.into_iter().enumerate() {
            let check = ProofCheck {
                public,
                proof,
                context: i,
            };
            assert!(pool.submit(check).is_ok());
        }
        let mut verdicts = Vec::new();
        while verdicts.len() < 5 {
            if let Checked::Proofs(v) = rx.recv().unwrap() {
                verdicts.extend(v.into_iter().map(|v| (v.context, v.result)));
            }
        }
        verdicts.sort_by_key(|(i, _)| *i);
        let results: Vec<_> = verdicts.into_iter().map(|(_, r)| r).collect();
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert!(results[1].is_err(), "a tampered proof fails");
        assert_eq!(results[3], Err(InvalidReason::MalformedProof));
        assert_eq!(results[4], Err(InvalidReason::VerificationFailed));

        // A whole batch, read on the pool's thread: its proofs' hash comes back.
        let (old_root, new_root) = (built.old_root, built.new_root);
        let expected = protocol::ContentHash::of_parts(chunks.iter().map(|(_, p)| p.as_slice()));
        let load: LoadChunks = Box::new(move || Ok(chunks));
        let batch = BatchCheck {
            old_root,
            new_root,
            load,
            context: (),
        };
        assert!(pool.submit_batch(batch).is_ok());
        match rx.recv().unwrap() {
            Checked::Batch { result, .. } => assert_eq!(result, Ok(expected)),
            Checked::Proofs(_) => panic!("expected the batch's result"),
        }
        pool.close();
        thread.join();
    }
}
