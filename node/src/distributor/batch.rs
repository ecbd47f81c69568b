//! Batches: asked of intake (generated on a timer or posted to the API),
//! built there, stored with the scheduler's submit event and announced
//! once durable; when every job is proven and paid, checked as a whole on
//! the verification pool (the roots chain, the proofs batch-verify), then
//! recorded proven, forgotten by the scheduler and gossiped.

use std::time::{Duration, Instant};

use anyhow::Context;
use protocol::lrp::LrpEvent;
use protocol::messages::{BatchProven, JobAnnouncement};
use protocol::{BatchId, ContentHash, JobId};
use serde_json::json;
use tracing::{debug, error, info, warn};

use super::courier::Durable;
use super::intake::{BatchInput, BuildRequest, NewBatch};
use super::scheduler::Log;
use super::store::{BatchRecord, Change};
use super::verify::{self, BatchCheck};
use super::{BatchReply, Distributor};
use crate::api::Rejection;

/// A finished batch on its way through the verification pool.
#[derive(Debug)]
pub struct BatchContext {
    record: BatchRecord,
}

impl Distributor {
    /// Asks intake for a generated batch when one is due.
    pub(super) fn generate_batch_if_due(&mut self) {
        let s = &self.core.settings;
        if self.core.generates_batches
            && s.batch_interval_secs > 0
            && (s.max_batches == 0 || self.counters.batches < s.max_batches)
            && self.counters.last_generated.elapsed() >= Duration::from_secs(s.batch_interval_secs)
        {
            self.new_batch(BatchInput::Generated, None);
        }
    }

    /// Asks intake for a batch.
    pub(super) fn new_batch(&mut self, input: BatchInput, reply: BatchReply) {
        self.counters.last_generated = Instant::now();
        match self.services.intake.submit(BuildRequest {
            input,
            context: reply,
        }) {
            Ok(()) => self.counters.batches += 1,
            Err(request) => {
                let busy = "busy: batches are waiting to be built; try again shortly";
                match request.context {
                    Some(reply) => {
                        let _ = reply.send(Err(Rejection::new(503, busy)));
                    }
                    None => warn!(target: "distributor", "{busy}"),
                }
            }
        }
    }

    /// Intake's answer: a batch to schedule, or why there is none.
    pub(super) fn on_built(&mut self, built: anyhow::Result<NewBatch>, reply: BatchReply) {
        match built {
            Ok(batch) => self.schedule_batch(batch, reply),
            Err(e) => {
                warn!(target: "distributor", error = %format!("{e:#}"), "batch not built");
                if let Some(reply) = reply {
                    let _ = reply.send(Err(Rejection::new(422, format!("{e:#}"))));
                }
            }
        }
    }

    /// Schedules a built batch's jobs; the journal stores the batch whole
    /// with the scheduler's submit event, then the batch is announced and
    /// the API caller, if any, answered.
    fn schedule_batch(&mut self, batch: NewBatch, reply: BatchReply) {
        let NewBatch {
            record,
            jobs,
            state_after,
            rejected,
        } = batch;
        let id = record.id;
        let job_ids: Vec<JobId> = (0..record.jobs).map(|i| JobId::new(id, i)).collect();
        let answer = json!({
            "batch": id.0,
            "jobs": record.jobs,
            "txs": record.txs,
            "rejected": rejected,
        });
        info!(
            target: "distributor",
            batch = %id,
            jobs = record.jobs,
            txs = record.txs,
            rejected,
            "batch cut into jobs"
        );
        self.services.metrics.batches_submitted.inc();
        self.counters.batches_stored += 1;
        let stored = Durable::BatchStored {
            announcement: self.announcement(&record),
            reply,
            answer,
        };
        let records = vec![Change::NewBatch {
            record,
            jobs,
            state_after,
        }];
        self.core
            .scheduler
            .apply(LrpEvent::Submit { jobs: job_ids }, move |_| Log {
                records,
                then: Some(stored),
            });
    }

    fn announcement(&self, batch: &BatchRecord) -> JobAnnouncement {
        JobAnnouncement {
            batch: batch.id,
            jobs: (0..batch.jobs).map(|i| JobId::new(batch.id, i)).collect(),
            circuit: self.core.circuit.clone(),
            proving_key: self.core.proving_key_hash,
            verifying_key: self.core.verifying_key.hash(),
            reward_per_job: self.core.settings.reward_per_job,
        }
    }

    /// Gossips `batch`'s announcement.
    pub(super) fn announce(&self, batch: &BatchRecord) {
        self.services.outbox.publish(&self.announcement(batch));
    }

    /// Every job of `batch` is proven and credited: check the batch proof
    /// on the pool (later, if the pool is full).
    pub(super) fn check_batch(&mut self, batch: BatchId) {
        match self.batch_check(batch) {
            Ok(check) => {
                if self.services.pool.submit_batch(check).is_err() {
                    self.counters.unchecked.push(batch);
                }
            }
            Err(e) => {
                error!(target: "distributor", batch = %batch, error = %format!("{e:#}"), "cannot load a finished batch")
            }
        }
    }

    /// The pool's work for `batch`: its roots, and its proofs read on the
    /// pool's thread.
    fn batch_check(&self, batch: BatchId) -> anyhow::Result<BatchCheck<BatchContext>> {
        let record = self
            .core
            .store
            .batch(batch)?
            .with_context(|| format!("batch {batch} is not stored"))?;
        let store = self.core.store.clone();
        let load: verify::LoadChunks = Box::new(move || {
            let jobs = store.batch_jobs(batch).map_err(|e| e.to_string())?;
            jobs.into_iter()
                .map(|job| match job.done {
                    Some(done) => Ok((job.public, done.proof)),
                    None => Err(format!("batch {batch} has a job without a proof")),
                })
                .collect()
        });
        Ok(BatchCheck {
            old_root: record.old_root,
            new_root: record.new_root,
            load,
            context: BatchContext { record },
        })
    }

    /// The batch proof's result: a proven batch is recorded, its jobs'
    /// witnesses dropped, forgotten by the scheduler (the log is
    /// compacted), and gossiped and counted once durable
    /// ([`Self::count_proven`]).
    pub(super) fn on_batch_checked(
        &mut self,
        result: Result<ContentHash, String>,
        ms: u64,
        context: BatchContext,
    ) {
        let BatchContext { mut record } = context;
        let batch = record.id;
        let proofs = match result {
            Ok(proofs) => proofs,
            Err(e) => {
                error!(target: "distributor", batch = %batch, error = %e, "batch proof failed");
                return;
            }
        };
        let now = self.core.scheduler.now();
        record.proven = Some(now);
        let message = BatchProven {
            batch,
            jobs: record.jobs,
            old_root: record.old_root.0,
            new_root: record.new_root.0,
            proofs,
        };
        info!(
            target: "distributor",
            batch = %batch,
            jobs = record.jobs,
            latency_ms = now.millis_since(record.created),
            batch_verify_ms = ms,
            "batch proven"
        );
        let jobs = record.jobs;
        self.core
            .scheduler
            .apply(LrpEvent::Forget { batch }, move |_| Log {
                records: vec![Change::Batch(record), Change::DropWitnesses(batch, jobs)],
                then: Some(Durable::BatchProven(message)),
            });
        // The batch is gone from the scheduler: nothing before this point of
        // the log is needed any more.
        self.core.scheduler.compact();
    }

    /// A proven batch's record is durable: the status and the metrics count
    /// it only now, so `batches.proven` never runs ahead of the list's
    /// `proven_ms` (a status read between the two saw a proven batch with
    /// no proof time).
    pub(super) fn count_proven(&mut self, batch: BatchId) {
        debug!(target: "distributor", batch = %batch, "batch proven and recorded");
        self.services.metrics.batches_proven.inc();
        self.counters.batches_proven += 1;
    }
}
