//! The centralized baseline: the distributor proves every job itself,
//! through the same scheduler, verification pool and ledger as the crowd's
//! proofs, on proving pools of its own. `jobs` slots prove at once, each on
//! `cores / jobs` threads: 1 is one job on all cores, `cores` is one job
//! per core; `scripts/bench-network` runs both and compares the crowd with
//! the better.

use std::sync::Arc;
use std::time::Instant;

use protocol::messages::Assignment;
use prover_core::{AnyProvingKey, ThreadPool};

/// A proof the baseline made.
pub struct LocalProof {
    /// Which slot made it (free again now).
    pub slot: usize,
    /// The hand-out it answers.
    pub assignment: Assignment,
    /// The proof bytes, or why proving failed.
    pub proof: Result<Vec<u8>, String>,
    /// Seconds it took.
    pub seconds: f64,
}

/// The baseline's proving slots.
pub struct LocalProver {
    key: Arc<AnyProvingKey>,
    pools: Vec<Arc<ThreadPool>>,
    free: Vec<usize>,
}

impl LocalProver {
    /// `jobs` slots (at least 1) sharing this machine's cores.
    pub fn new(key: Arc<AnyProvingKey>, jobs: usize) -> anyhow::Result<Self> {
        let jobs = jobs.max(1);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = (cores / jobs).max(1);
        let pools = (0..jobs)
            .map(|_| ThreadPool::new(threads).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            key,
            pools,
            free: (0..jobs).rev().collect(),
        })
    }

    /// Whether a slot is free.
    pub fn has_free_slot(&self) -> bool {
        !self.free.is_empty()
    }

    /// Takes a free slot for a hand-out on its way. Call only when
    /// [`LocalProver::has_free_slot`].
    pub fn reserve(&mut self) -> usize {
        self.free.pop().expect("a free slot")
    }

    /// Proves `assignment`, whose witness is `witness`, on the reserved
    /// `slot`; `done` gets the proof.
    pub fn start(
        &mut self,
        slot: usize,
        assignment: Assignment,
        witness: Vec<u8>,
        done: impl FnOnce(LocalProof) + Send + 'static,
    ) {
        let pool = self.pools[slot].clone();
        let key = self.key.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let proof = pool
                .install(|| key.prove(&witness))
                .map(|p| p.to_bytes().to_vec())
                .map_err(|e| e.to_string());
            done(LocalProof {
                slot,
                assignment,
                proof,
                seconds: started.elapsed().as_secs_f64(),
            });
        });
    }

    /// `slot` finished.
    pub fn finished(&mut self, slot: usize) {
        self.free.push(slot);
    }
}
