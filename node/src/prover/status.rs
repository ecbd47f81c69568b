//! What a prover reports in `/status`: counters, what each worker is doing,
//! how long its first job took, the newest finished jobs and the newest
//! receipts kept.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use protocol::messages::Assignment;
use protocol::{JobId, Timestamp};

use super::keys::KeyTook;
use super::receipts::Owed;
use crate::status_doc::{BalanceProofView, FirstJobView, WorkerView};
use serde_json::json;

/// How many finished jobs and kept receipts `/status` lists.
pub const RECENT: usize = 50;

/// Counters for `/status`.
#[derive(Debug, Default)]
pub struct Tally {
    pub(crate) active: u64,
    pub(crate) accepted: u64,
    pub(crate) late: u64,
    pub(crate) invalid: u64,
    pub(crate) released: u64,
    /// Jobs dropped unproved because their batch was proven meanwhile.
    pub(crate) dropped: u64,
    pub(crate) failed: u64,
    pub(crate) earned: u64,
    pub(crate) receipts: u64,
    pub(crate) stopped_workers: u64,
    pub(crate) last_error: Option<String>,
    /// Receipts refused (each job counted once): not verifying, or not the
    /// credit its `Accepted` promised.
    pub(crate) receipts_refused: u64,
    /// Why the last balance proof paying someone else was refused.
    pub(crate) payout_diverted: Option<String>,
    /// Where in `awaiting_receipts` the next receipt poll starts.
    pub(crate) receipt_turn: usize,
    /// `Accepted` verdicts that named another proof than the one sent.
    pub(crate) bad_verdicts: u64,
    pub(crate) awaiting_receipts: Vec<Owed>,
    /// The newest finished assignments, newest first.
    recent_jobs: VecDeque<RecentJob>,
    /// The newest receipts kept: job and block height, newest first.
    recent_receipts: VecDeque<(JobId, u64)>,
    /// The newest balance proof kept (`<data-dir>/balance-proof`).
    pub(crate) kept_proof: Option<super::anchoring::Kept>,
    /// The newest one seen anchored (`<data-dir>/balance-proof-anchored`).
    pub(crate) anchored_proof: Option<super::anchoring::Kept>,
    /// The anchoring watch, when the prover watches the chain.
    pub(crate) anchoring: Option<super::anchoring::Anchoring>,
    /// What each worker slot is doing, and since when.
    workers: BTreeMap<usize, (Doing, Option<JobId>, Instant)>,
    /// A newcomer's wait for its first paid job.
    pub(crate) first_job: FirstJobView,
}

/// What a worker is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doing {
    /// Asking the distributor for a job.
    Asking,
    /// Waiting to ask again: no work, the distributor busy or away.
    Waiting,
    /// Getting the job's proving key (downloading or loading it).
    GettingKey,
    /// Fetching the job's witness (one too long to travel inline).
    GettingWitness,
    /// Waiting for a proving thread.
    Queued,
    /// Proving the job.
    Proving,
    /// Sending the proof and waiting for the verdict.
    Submitting,
}

impl Doing {
    /// As `/status` names it.
    pub fn name(self) -> &'static str {
        match self {
            Doing::Asking => "asking",
            Doing::Waiting => "waiting",
            Doing::GettingKey => "getting key",
            Doing::GettingWitness => "getting witness",
            Doing::Queued => "queued",
            Doing::Proving => "proving",
            Doing::Submitting => "submitting",
        }
    }
}

/// Milliseconds in `d`, for `/status`.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One finished assignment, as `/status` lists it.
#[derive(Debug, Clone)]
pub struct RecentJob {
    pub(crate) job: JobId,
    pub(crate) request: protocol::RequestId,
    /// `accepted`, `late`, `invalid`, `released`, `dropped` or `failed`.
    pub(crate) outcome: &'static str,
    pub(crate) reward: u64,
    pub(crate) prove_ms: Option<u64>,
    pub(crate) ended: Timestamp,
}

impl RecentJob {
    /// `assignment` ended just now with `outcome`, unpaid and unproved.
    pub fn new(assignment: &Assignment, outcome: &'static str) -> Self {
        Self {
            job: assignment.job,
            request: assignment.request,
            outcome,
            reward: 0,
            prove_ms: None,
            ended: Timestamp::now(),
        }
    }
}

/// Puts `item` first in `ring`, dropping the oldest past [`RECENT`].
fn remember<T>(ring: &mut VecDeque<T>, item: T) {
    ring.truncate(RECENT - 1);
    ring.push_front(item);
}

impl Tally {
    /// Worker `slot` is doing `doing` (on `job`) from now.
    pub fn doing(&mut self, slot: usize, doing: Doing, job: Option<JobId>) {
        let same = self
            .workers
            .get(&slot)
            .is_some_and(|(d, j, _)| (*d, *j) == (doing, job));
        if !same {
            self.workers.insert(slot, (doing, job, Instant::now()));
        }
    }

    /// A job's proving key is ready, having `took` that, `since_start` ms
    /// after the prover started: kept for the first job only.
    pub fn key_ready(&mut self, took: KeyTook, since_start: u64) {
        let first = &mut self.first_job;
        if first.key_ready_ms.is_some() {
            return;
        }
        let fetched = took.fetched > 0;
        first.key_download_ms = fetched.then(|| millis(took.download));
        first.key_bytes = fetched.then_some(took.fetched);
        first.key_load_ms = Some(millis(took.load));
        first.key_ready_ms = Some(since_start);
    }

    /// Worker `slot` stopped for good.
    pub fn gone(&mut self, slot: usize) {
        self.workers.remove(&slot);
    }

    /// An assignment ended.
    pub fn finished(&mut self, job: RecentJob) {
        remember(&mut self.recent_jobs, job);
    }

    /// A receipt was checked and kept.
    pub fn kept_receipt(&mut self, job: JobId, height: u64) {
        remember(&mut self.recent_receipts, (job, height));
        if let Some(anchoring) = &mut self.anchoring {
            anchoring.credited(height, super::monotonic_now());
        }
    }

    /// The counters as the `/status` document's core. Long because it is
    /// one field list: each line puts one counter in the document.
    pub fn to_json(&self) -> serde_json::Value {
        let jobs: Vec<_> = self
            .recent_jobs
            .iter()
            .map(|r| {
                json!({
                    "job": r.job.to_string(),
                    "request": r.request.0,
                    "outcome": r.outcome,
                    "reward": r.reward,
                    "prove_ms": r.prove_ms,
                    "ended_ms": r.ended.0,
                })
            })
            .collect();
        let receipts: Vec<_> = self
            .recent_receipts
            .iter()
            .map(|(job, height)| json!({ "job": job.to_string(), "height": height }))
            .collect();
        let now = super::monotonic_now();
        let overdue: Vec<_> = self
            .awaiting_receipts
            .iter()
            .filter(|o| o.overdue)
            .map(|o| {
                json!({
                    "job": o.job.to_string(),
                    "owed_ms": o.age(now).as_millis() as u64,
                    "refused": o.refused,
                })
            })
            .collect();
        let workers: Vec<_> = self
            .workers
            .iter()
            .map(|(&slot, (doing, job, since))| WorkerView {
                slot,
                doing: doing.name().to_string(),
                job: job.map(|j| j.to_string()),
                for_ms: millis(since.elapsed()),
            })
            .collect();
        let mut doc = json!({
            "workers": workers,
            "first_job": self.first_job,
            "jobs": {
                "active": self.active,
                "accepted": self.accepted,
                "late": self.late,
                "invalid": self.invalid,
                "released": self.released,
                "dropped": self.dropped,
                "failed": self.failed,
            },
            "earned": self.earned,
            "receipts": self.receipts,
            "awaiting_receipts": self.awaiting_receipts.len(),
            // The alarm: accepted jobs the distributor has not paid for
            // within receipts::RECEIPT_OVERDUE.
            "receipts_overdue": overdue,
            "receipts_refused": self.receipts_refused,
            "payout_diverted": self.payout_diverted,
            "bad_verdicts": self.bad_verdicts,
            "workers_stopped": self.stopped_workers,
            "last_error": self.last_error,
            "recent_jobs": jobs,
            "recent_receipts": receipts,
        });
        let view = |k: &super::anchoring::Kept| BalanceProofView {
            height: k.height,
            balance: k.balance,
        };
        if let Some(kept) = &self.kept_proof {
            doc["balance_proof"] = json!(view(kept));
        }
        if let Some(anchored) = &self.anchored_proof {
            doc["anchored_balance_proof"] = json!(view(anchored));
        }
        if let Some(anchoring) = &self.anchoring {
            doc["anchoring"] = json!(anchoring.view(now));
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::BatchId;

    #[test]
    fn status_says_what_each_worker_does_and_keeps_the_first_jobs_key_figures() {
        let mut t = Tally::default();
        let job = JobId::new(BatchId(1), 3);
        t.doing(0, Doing::Proving, Some(job));
        t.doing(1, Doing::Asking, None);
        t.doing(2, Doing::Waiting, None);
        t.gone(2);
        let doc = t.to_json();
        let workers = doc["workers"].as_array().unwrap();
        assert_eq!(workers.len(), 2, "{doc}");
        assert_eq!(
            (&workers[0]["doing"], &workers[0]["job"]),
            (&json!("proving"), &json!("b1/j3"))
        );
        assert_eq!(workers[1]["doing"], "asking");
        assert!(workers[1]["job"].is_null());

        let took = |fetched, ms| KeyTook {
            fetched,
            download: Duration::from_millis(ms),
            load: Duration::from_millis(ms / 2),
        };
        t.key_ready(took(4 << 20, 800), 1200);
        // A later key (say, another circuit's) leaves the first job's figures.
        t.key_ready(took(8 << 20, 9000), 50_000);
        let f = t.first_job;
        assert_eq!(
            (
                f.key_bytes,
                f.key_download_ms,
                f.key_load_ms,
                f.key_ready_ms
            ),
            (Some(4 << 20), Some(800), Some(400), Some(1200))
        );
    }

    #[test]
    fn status_lists_the_newest_jobs_and_receipts_first_and_keeps_only_a_few() {
        let mut t = Tally::default();
        for index in 0..(RECENT as u32 + 5) {
            let job = JobId::new(BatchId(1), index);
            t.finished(RecentJob {
                job,
                request: protocol::RequestId(u64::from(index)),
                outcome: "accepted",
                reward: 100,
                prove_ms: Some(7),
                ended: Timestamp(1),
            });
            t.kept_receipt(job, u64::from(index));
        }
        let doc = t.to_json();
        let jobs = doc["recent_jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), RECENT);
        assert_eq!(jobs[0]["job"], format!("b1/j{}", RECENT + 4));
        assert_eq!(jobs[RECENT - 1]["job"], "b1/j5");
        assert_eq!(jobs[0]["prove_ms"], 7);
        let receipts = doc["recent_receipts"].as_array().unwrap();
        assert_eq!(receipts.len(), RECENT);
        assert_eq!(receipts[0]["height"], RECENT as u64 + 4);
    }
}
