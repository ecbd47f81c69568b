//! Batch intake, off the run loop: one thread owns the rollup state and the
//! transaction generator, applies each batch's transactions (seconds for a
//! large batch), cuts the result into jobs and encodes the state after it.
//! The run loop then schedules the jobs and the journal stores the batch
//! whole. Batches are built one at a time, in order; ids run 1, 2, 3, ...

use std::sync::mpsc;
use std::thread::JoinHandle;

use anyhow::Context;
use protocol::{BatchId, Timestamp};
use prover_core::{Rollup, SignedTransfer, TxGenerator};
use tracing::debug;

use super::store::{BatchRecord, JobRecord};

/// A built batch, ready to schedule and store.
pub struct NewBatch {
    /// Its record.
    pub record: BatchRecord,
    /// Its jobs, in index order.
    pub jobs: Vec<JobRecord>,
    /// The rollup state after it, encoded.
    pub state_after: Vec<u8>,
    /// Transactions refused.
    pub rejected: usize,
}

/// One batch to build: given transactions, or `None` for a generated set.
pub struct BuildRequest<R> {
    /// The transactions.
    pub txs: Option<Vec<SignedTransfer>>,
    /// Carried back with the result (e.g. the API caller's reply).
    pub context: R,
}

/// The handle to the intake thread.
pub struct Intake<R> {
    tx: Option<mpsc::SyncSender<BuildRequest<R>>>,
}

/// The running thread.
pub struct IntakeThread(JoinHandle<()>);

impl IntakeThread {
    /// Waits for the batch being built, if any.
    pub fn join(self) {
        let _ = self.0.join();
    }
}

impl<R: Send + 'static> Intake<R> {
    /// Starts the thread; `last` is the id of the last stored batch, and
    /// results go to `out`. At most `queue` requests wait.
    pub fn start(
        rollup: Rollup,
        generator: TxGenerator,
        batch_txs: usize,
        last: BatchId,
        queue: usize,
        out: impl Fn(anyhow::Result<NewBatch>, R) + Send + 'static,
    ) -> std::io::Result<(Self, IntakeThread)> {
        let (tx, rx) = mpsc::sync_channel::<BuildRequest<R>>(queue.max(1));
        let thread = std::thread::Builder::new()
            .name("intake".into())
            .spawn(move || {
                let mut builder = Builder {
                    rollup,
                    generator,
                    batch_txs,
                    next: BatchId(last.0 + 1),
                };
                while let Ok(request) = rx.recv() {
                    let built = builder.build(request.txs);
                    out(built, request.context);
                }
            })?;
        Ok((Self { tx: Some(tx) }, IntakeThread(thread)))
    }

    /// Queues a batch; a full queue gives the request back.
    pub fn submit(&self, request: BuildRequest<R>) -> Result<(), BuildRequest<R>> {
        let Some(tx) = &self.tx else {
            return Err(request);
        };
        tx.try_send(request).map_err(|e| match e {
            mpsc::TrySendError::Full(r) | mpsc::TrySendError::Disconnected(r) => r,
        })
    }

    /// Takes no more batches; the thread stops after the one it builds.
    pub fn close(&mut self) {
        self.tx = None;
    }
}

struct Builder {
    rollup: Rollup,
    generator: TxGenerator,
    batch_txs: usize,
    next: BatchId,
}

impl Builder {
    fn build(&mut self, txs: Option<Vec<SignedTransfer>>) -> anyhow::Result<NewBatch> {
        let txs = match txs {
            Some(txs) => txs,
            None => self.generator.batch(&self.rollup, self.batch_txs),
        };
        anyhow::ensure!(!txs.is_empty(), "the batch has no transactions");
        let mut next = self.rollup.clone();
        let built = next
            .apply_batch(&txs)
            .context("no transaction in the batch is valid")?;
        let id = self.next;
        let record = BatchRecord {
            id,
            old_root: built.old_root,
            new_root: built.new_root,
            jobs: built.jobs.len() as u32,
            txs: (txs.len() - built.rejected.len()) as u32,
            created: Timestamp::now(),
            proven: None,
        };
        let jobs = built
            .jobs
            .iter()
            .map(|j| JobRecord {
                public: j.public,
                witness: j.to_bytes(),
                done: None,
            })
            .collect();
        for rejection in &built.rejected {
            debug!(target: "distributor", batch = %id, %rejection, "transaction refused");
        }
        let state_after = next.to_bytes();
        self.rollup = next;
        self.next = BatchId(id.0 + 1);
        Ok(NewBatch {
            record,
            jobs,
            state_after,
            rejected: built.rejected.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prover_core::CircuitConfig;

    #[test]
    fn batches_come_out_in_order_with_their_jobs_and_bad_input_is_an_error() {
        let config = CircuitConfig::new(4, 1).unwrap();
        let mut generator = TxGenerator::new(5, 8);
        let rollup = generator.genesis(config, 1_000_000).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (mut intake, thread) = Intake::start(
            rollup,
            generator,
            3,
            BatchId(4),
            2,
            move |built: anyhow::Result<NewBatch>, tag: u32| {
                let _ = tx.send((tag, built));
            },
        )
        .unwrap();
        intake
            .submit(BuildRequest {
                txs: None,
                context: 1,
            })
            .ok()
            .unwrap();
        let (tag, first) = rx.recv().unwrap();
        let first = first.unwrap();
        assert_eq!(
            (tag, first.record.id),
            (1, BatchId(5)),
            "ids go on from the last stored"
        );
        assert_eq!(first.record.jobs as usize, first.jobs.len());
        assert_eq!(first.record.txs, 3);
        intake
            .submit(BuildRequest {
                txs: Some(Vec::new()),
                context: 2,
            })
            .ok()
            .unwrap();
        let (_, empty) = rx.recv().unwrap();
        assert!(empty.is_err(), "an empty batch is refused");
        intake
            .submit(BuildRequest {
                txs: None,
                context: 3,
            })
            .ok()
            .unwrap();
        let (_, second) = rx.recv().unwrap();
        let second = second.unwrap();
        assert_eq!(second.record.id, BatchId(6), "a refused batch takes no id");
        assert_eq!(
            second.record.old_root, first.record.new_root,
            "states chain"
        );
        intake.close();
        thread.join();
    }
}
