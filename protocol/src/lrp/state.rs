//! The scheduler's internal state: the re-serve queue's keys, a job's slot
//! and holders, a batch's jobs, a prover's holdings and record, and the job
//! times learnt from accepted proofs.

use std::collections::VecDeque;

use super::hash::{FxMap, ProverKey};
use super::{BatchProgress, Holder, Holding};
use crate::identity::PublicKey;
use crate::ids::{JobId, RequestId, Timestamp};

/// Which part of the re-serve queue a job sits in. Orphans (handed out before,
/// but with no holder left) go before jobs someone is working on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Lane {
    Orphan,
    Held,
}

/// A pending job's place in the queue: its lane, then the request id of its
/// latest remaining hand-out. Request ids grow with the clock, so within a lane
/// the queue is ordered by hand-out time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct QueueKey {
    pub(super) lane: Lane,
    pub(super) request: RequestId,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct QueueEntry {
    pub(super) job: JobId,
    /// Time of the hand-out named by the key.
    pub(super) at: Timestamp,
}

/// A pending job's holders, oldest first. Most jobs have exactly one, kept
/// inline: a fresh hand-out allocates nothing, and a completion finds it in the
/// slot's own cache line instead of behind a pointer.
#[derive(Debug, Clone)]
pub(super) enum Holders {
    One(Holder),
    Many(Vec<Holder>),
}

impl Default for Holders {
    fn default() -> Self {
        Self::Many(Vec::new())
    }
}

impl Holders {
    pub(super) fn as_slice(&self) -> &[Holder] {
        match self {
            Self::One(h) => std::slice::from_ref(h),
            Self::Many(v) => v,
        }
    }

    pub(super) fn push(&mut self, holder: Holder) {
        match self {
            Self::One(first) => *self = Self::Many(vec![*first, holder]),
            Self::Many(v) if v.is_empty() => *self = Self::One(holder),
            Self::Many(v) => v.push(holder),
        }
    }

    pub(super) fn remove(&mut self, i: usize) -> Holder {
        match self {
            Self::One(h) => {
                let gone = *h;
                *self = Self::default();
                gone
            }
            Self::Many(v) => v.remove(i),
        }
    }

    /// Every holder but the one with `request`, for a completed job's record.
    pub(super) fn into_others(self, request: RequestId) -> Vec<Holder> {
        match self {
            // The lone holder is the one that completed.
            Self::One(_) => Vec::new(),
            Self::Many(mut v) => {
                v.retain(|h| h.request != request);
                v
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(super) enum Slot {
    Fresh,
    Pending {
        key: QueueKey,
        holders: Holders,
    },
    Done {
        prover: PublicKey,
        request: RequestId,
        at: Timestamp,
        /// Superseded hand-outs: their proofs are late, not unknown. (The
        /// pending job's holder list, reused.)
        late: Vec<Holder>,
    },
}

/// A batch: its progress and its jobs' slots. Job indices run densely from 0,
/// so the slots sit in a vector by index: jobs handed out around the same time
/// (neighbouring indices) share cache lines, and a look-up is a hash of the
/// batch id (a small, hot table) plus an index. An index that would leave the
/// vector less than half full goes to `sparse` instead, so a stray huge index
/// costs one entry, not gigabytes.
#[derive(Debug, Clone, Default)]
pub(super) struct BatchState {
    pub(super) progress: BatchProgress,
    pub(super) dense: Vec<Option<Slot>>,
    /// Occupied entries of `dense`.
    pub(super) filled: usize,
    pub(super) sparse: FxMap<u32, Slot>,
}

impl BatchState {
    /// Indices below this always go to `dense`, so small batches never hash.
    const DENSE_FLOOR: usize = 1_024;

    pub(super) fn slot(&self, index: u32) -> Option<&Slot> {
        match self.dense.get(index as usize) {
            Some(slot) => slot.as_ref(),
            None => self.sparse.get(&index),
        }
    }

    pub(super) fn slot_mut(&mut self, index: u32) -> Option<&mut Slot> {
        match self.dense.get_mut(index as usize) {
            Some(slot) => slot.as_mut(),
            None => self.sparse.get_mut(&index),
        }
    }

    /// Adds a job the batch does not have yet.
    pub(super) fn add(&mut self, index: u32, slot: Slot) {
        let i = index as usize;
        if i >= self.dense.len() {
            if i >= Self::DENSE_FLOOR && self.filled < i / 2 {
                self.sparse.insert(index, slot);
                return;
            }
            let from = self.dense.len();
            self.dense.resize_with(i + 1, || None);
            // Jobs parked in `sparse` that the vector now covers move into it.
            if !self.sparse.is_empty() {
                for j in from..i {
                    let moved = u32::try_from(j).ok().and_then(|j| self.sparse.remove(&j));
                    if moved.is_some() {
                        self.dense[j] = moved;
                        self.filled += 1;
                    }
                }
            }
        }
        self.dense[i] = Some(slot);
        self.filled += 1;
    }

    pub(super) fn job_count(&self) -> u64 {
        (self.filled + self.sparse.len()) as u64
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct ProverState {
    pub(super) strikes: u32,
    /// Proofs that completed a job.
    pub(super) proven: u32,
    pub(super) cooldown_until: Timestamp,
    /// Sorted by request id, hence by hand-out time; only `holdings[gone..]`
    /// are still held.
    pub(super) holdings: Vec<Holding>,
    /// Holdings usually go oldest first; dropping the front just bumps this
    /// instead of shifting the rest (compacted once it is half the vector).
    pub(super) gone: usize,
    /// How long it holds a job it wins, ms: a moving average (weight ¼ on
    /// the newest), meaningful once `samples` > 0.
    pub(super) job_time_ms: u64,
    /// Accepted proofs its `job_time_ms` has seen.
    pub(super) samples: u32,
    /// Its holdings of a job it was handed again since: each past its
    /// lease (a job comes back to a prover only once every hand-out of it
    /// to that prover is), and still valid for its proof. Usually empty.
    pub(super) renewed: Vec<RequestId>,
}

impl ProverState {
    /// What it holds, oldest first.
    pub(super) fn held(&self) -> &[Holding] {
        &self.holdings[self.gone..]
    }

    /// Drops the holding with `request`, if it has it.
    pub(super) fn drop_holding(&mut self, request: RequestId) {
        self.unmark_renewed(request);
        // The holding that goes is usually among the oldest: a forward scan
        // reads the vector in order (prefetched), where a binary search waits
        // on a cache miss per probe.
        let held = self.held();
        let Some(i) = held.iter().position(|h| h.request >= request) else {
            return;
        };
        if held[i].request != request {
            return;
        }
        if i == 0 {
            self.gone += 1;
            if self.gone == self.holdings.len() {
                self.holdings.clear();
                self.gone = 0;
            } else if 2 * self.gone >= self.holdings.len() {
                self.holdings.drain(..self.gone);
                self.gone = 0;
            }
        } else {
            self.holdings.remove(self.gone + i);
        }
    }

    /// Index in [`Self::held`] of the first holding still within its lease.
    pub(super) fn first_live(&self, now: Timestamp, lease_ms: u64) -> usize {
        self.held()
            .partition_point(|h| now.millis_since(h.at) >= lease_ms)
    }

    /// The open jobs it holds only past their lease, given `first_live` of
    /// its holdings are past it: a job handed to it again keeps its older
    /// hand-outs (valid for their proofs), all past their lease, but counts
    /// once, by its newest, and not at all while that one is live.
    pub(super) fn expired_jobs(&self, first_live: usize) -> usize {
        first_live.saturating_sub(self.renewed.len())
    }

    /// [`Self::expired_jobs`] counted the long way, from the holdings
    /// alone: its distinct jobs, less the `live` hand-outs (a prover holds
    /// a job live at most once, and then by its newest hand-out).
    #[cfg(debug_assertions)]
    pub(super) fn expired_jobs_counted(&self, live: usize) -> usize {
        let mut jobs: Vec<JobId> = self.held().iter().map(|h| h.job).collect();
        jobs.sort_unstable();
        jobs.dedup();
        jobs.len().saturating_sub(live)
    }

    /// Rebuilds [`Self::renewed`] from the holdings: of each job's, all but
    /// the newest (a restored snapshot lists holdings only).
    pub(super) fn find_renewed(&mut self) {
        let mut by_job: Vec<(JobId, RequestId)> =
            self.held().iter().map(|h| (h.job, h.request)).collect();
        by_job.sort_unstable();
        self.renewed = by_job
            .windows(2)
            .filter(|w| w[0].0 == w[1].0)
            .map(|w| w[0].1)
            .collect();
    }

    /// Its holding `request` is no longer an older hand-out of a job it
    /// holds again (it went, or the newer one did).
    pub(super) fn unmark_renewed(&mut self, request: RequestId) {
        if let Some(i) = self.renewed.iter().position(|r| *r == request) {
            self.renewed.swap_remove(i);
        }
    }

    /// Past probation: a proof accepted and no strike.
    pub(super) fn is_trusted(&self) -> bool {
        self.proven > 0 && self.strikes == 0
    }

    /// Folds one accepted proof's holding time into its average.
    pub(super) fn learn(&mut self, took_ms: u64) {
        self.job_time_ms = if self.samples == 0 {
            took_ms
        } else {
            (self.job_time_ms.saturating_mul(3)).saturating_add(took_ms) / 4
        };
        self.samples = self.samples.saturating_add(1);
    }

    /// Nothing worth keeping: no holding, strike or accepted proof.
    pub(super) fn is_blank(&self) -> bool {
        self.held().is_empty() && self.strikes == 0 && self.proven == 0
    }

    /// How many live hand-outs it may hold, given `expired` open jobs it
    /// holds only past their lease ([`Self::expired_jobs`]; a larger count
    /// gives a lower bound); see [Probation](super#probation).
    pub(super) fn allowance(&self, expired: usize, max_held: usize) -> usize {
        let earned = 1 + self.proven as usize;
        earned
            .saturating_sub(self.strikes as usize + expired)
            .min(max_held)
    }
}

/// What the scheduler has learnt of job times as a whole, and the backup
/// budget's counters.
#[derive(Debug, Clone, Default)]
pub(super) struct JobTimes {
    /// The holding times of the latest accepted proofs, oldest first, at
    /// most [`JobTimes::RECENT`].
    pub(super) recent: VecDeque<u64>,
    /// Their median, kept current (`None` before the first).
    pub(super) median: Option<u64>,
    /// Jobs handed out for the first time.
    pub(super) first_handouts: u64,
    /// Backup copies handed out.
    pub(super) backups: u64,
}

impl JobTimes {
    /// How many recent proofs the median is taken over.
    const RECENT: usize = 32;

    pub(super) fn learn(&mut self, took_ms: u64) {
        if self.recent.len() == Self::RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(took_ms);
        let mut sorted: Vec<u64> = self.recent.iter().copied().collect();
        sorted.sort_unstable();
        self.median = Some(sorted[sorted.len() / 2]);
    }
}

/// Drops a prover's holding; forgets the prover once nothing about it is
/// worth keeping ([`ProverState::is_blank`]), so memory follows the crowd
/// that works or misbehaves, not every key that ever asked.
pub(super) fn remove_holding(
    provers: &mut FxMap<ProverKey, ProverState>,
    prover: &PublicKey,
    request: RequestId,
) {
    let key = ProverKey::of(prover);
    let Some(state) = provers.get_mut(&key) else {
        return;
    };
    state.drop_holding(request);
    if state.is_blank() {
        provers.remove(&key);
    }
}
