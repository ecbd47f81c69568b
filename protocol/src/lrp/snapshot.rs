//! The scheduler's state as plain data ([`LrpSnapshot`]), restoring from
//! it, and the format-3 layout ([`LrpSnapshotV3`]) older stores hold.

use serde::{Deserialize, Serialize};

use super::hash::ProverKey;
use super::state::{BatchState, Holders, Lane, ProverState, QueueEntry, QueueKey, Slot};
use super::{BatchProgress, Holder, Holding, Lrp, LrpConfig, Result};
use crate::identity::PublicKey;
use crate::ids::{BatchId, JobId, RequestId, Timestamp};

/// The scheduler's whole state as plain data, so a log can be compacted: a
/// restart restores the snapshot ([`Lrp::restore`]) and replays only the
/// events logged after it, with the same outcomes as replaying everything.
/// Maps are listed sorted by key, so equal states give equal snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LrpSnapshot {
    // The fields are the encoding, in order: never reorder them. They are
    // `pub(super)` so that the tests can write a format-3 snapshot.
    pub(super) clock: Timestamp,
    pub(super) next_request: u64,
    pub(super) fresh: Vec<JobId>,
    /// Re-serve queue entries: orphan lane?, request id, job, hand-out time.
    pub(super) queue: Vec<(bool, RequestId, JobId, Timestamp)>,
    /// Provers: key, strikes, accepted proofs, cooldown end, holdings still
    /// held.
    pub(super) provers: Vec<(PublicKey, u32, u32, Timestamp, Vec<Holding>)>,
    pub(super) batches: Vec<BatchSnapshot>,
    pub(super) pending: u64,
    pub(super) done: u64,
    /// Provers' learnt job times: key, average ms, samples (only provers
    /// with samples).
    pub(super) job_times: Vec<(PublicKey, u64, u32)>,
    /// The recent accepted holding times, oldest first.
    pub(super) recent: Vec<u64>,
    /// First hand-outs and backups, the backup budget's counters.
    pub(super) first_handouts: u64,
    pub(super) backups: u64,
    /// Live hand-outs' last heartbeats, by request id.
    pub(super) heard: Vec<(RequestId, Timestamp)>,
    /// The last resume.
    pub(super) resumed_at: Timestamp,
}

/// An [`LrpSnapshot`] as format-3 job stores hold it, written before the
/// scheduler learnt job times: decode such bytes as this and convert (the
/// conversion knows no job times, as the scheduler that wrote it did not).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LrpSnapshotV3 {
    // The fields are format 3's encoding, in order: never change them.
    pub(super) clock: Timestamp,
    pub(super) next_request: u64,
    pub(super) fresh: Vec<JobId>,
    pub(super) queue: Vec<(bool, RequestId, JobId, Timestamp)>,
    pub(super) provers: Vec<(PublicKey, u32, u32, Timestamp, Vec<Holding>)>,
    pub(super) batches: Vec<BatchSnapshot>,
    pub(super) pending: u64,
    pub(super) done: u64,
}

impl From<LrpSnapshotV3> for LrpSnapshot {
    fn from(old: LrpSnapshotV3) -> Self {
        Self {
            clock: old.clock,
            next_request: old.next_request,
            fresh: old.fresh,
            queue: old.queue,
            provers: old.provers,
            batches: old.batches,
            pending: old.pending,
            done: old.done,
            job_times: Vec::new(),
            recent: Vec::new(),
            first_handouts: 0,
            backups: 0,
            heard: Vec::new(),
            resumed_at: Timestamp(0),
        }
    }
}

/// A batch in a snapshot: its id, progress and job slots by index.
pub(super) type BatchSnapshot = (BatchId, BatchProgress, Vec<(u32, SlotSnapshot)>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum SlotSnapshot {
    Fresh,
    Pending {
        orphan: bool,
        request: RequestId,
        holders: Vec<Holder>,
    },
    Done {
        prover: PublicKey,
        request: RequestId,
        at: Timestamp,
        late: Vec<Holder>,
    },
}

impl LrpSnapshot {
    /// Jobs of open batches in the snapshot.
    pub fn jobs(&self) -> usize {
        self.batches.iter().map(|(_, _, slots)| slots.len()).sum()
    }
}

impl Lrp {
    /// The whole state as plain data; see [`LrpSnapshot`].
    pub fn snapshot(&self) -> LrpSnapshot {
        LrpSnapshot {
            clock: self.clock,
            next_request: self.next_request,
            fresh: self.fresh.iter().copied().collect(),
            queue: self
                .queue
                .iter()
                .map(|(k, e)| (is_orphan(k.lane), k.request, e.job, e.at))
                .collect(),
            provers: self.prover_snapshots(),
            batches: self.batch_snapshots(),
            pending: self.pending,
            done: self.done,
            job_times: self.job_time_snapshots(),
            recent: self.job_times.recent.iter().copied().collect(),
            first_handouts: self.job_times.first_handouts,
            backups: self.job_times.backups,
            heard: {
                let mut heard: Vec<_> = self.heard.iter().map(|(r, t)| (*r, *t)).collect();
                heard.sort_unstable();
                heard
            },
            resumed_at: self.resumed_at,
        }
    }

    /// A scheduler in the state `snapshot` holds, with `config`'s knobs.
    pub fn restore(config: LrpConfig, snapshot: &LrpSnapshot) -> Result<Self> {
        let mut lrp = Self::new(config)?;
        lrp.clock = snapshot.clock;
        lrp.next_request = snapshot.next_request;
        lrp.fresh = snapshot.fresh.iter().copied().collect();
        lrp.queue = snapshot
            .queue
            .iter()
            .map(|&(orphan, request, job, at)| {
                let key = QueueKey {
                    lane: lane(orphan),
                    request,
                };
                (key, QueueEntry { job, at })
            })
            .collect();
        lrp.restore_provers(snapshot);
        for &took in &snapshot.recent {
            lrp.job_times.learn(took);
        }
        lrp.job_times.first_handouts = snapshot.first_handouts;
        lrp.job_times.backups = snapshot.backups;
        lrp.heard = snapshot.heard.iter().copied().collect();
        lrp.resumed_at = snapshot.resumed_at;
        for (id, progress, slots) in &snapshot.batches {
            lrp.batches.insert(*id, restore_batch(*progress, slots));
        }
        lrp.pending = snapshot.pending;
        lrp.done = snapshot.done;
        Ok(lrp)
    }

    /// Every prover's record and holdings, sorted by key.
    fn prover_snapshots(&self) -> Vec<(PublicKey, u32, u32, Timestamp, Vec<Holding>)> {
        let mut provers: Vec<_> = self
            .provers
            .iter()
            .map(|(k, p)| {
                let held = p.held().to_vec();
                (k.0, p.strikes, p.proven, p.cooldown_until, held)
            })
            .collect();
        provers.sort_by_key(|p| p.0);
        provers
    }

    /// The learnt job times of the provers that have one, sorted by key.
    fn job_time_snapshots(&self) -> Vec<(PublicKey, u64, u32)> {
        let mut job_times: Vec<_> = self
            .provers
            .iter()
            .filter(|(_, p)| p.samples > 0)
            .map(|(k, p)| (k.0, p.job_time_ms, p.samples))
            .collect();
        job_times.sort_by_key(|p| p.0);
        job_times
    }

    /// Every batch with its slots, sorted by batch id.
    fn batch_snapshots(&self) -> Vec<BatchSnapshot> {
        let mut batches: Vec<_> = self
            .batches
            .iter()
            .map(|(id, b)| (*id, b.progress, slot_snapshots(b)))
            .collect();
        batches.sort_by_key(|(id, _, _)| *id);
        batches
    }

    /// Restores the provers' records, holdings and learnt job times.
    fn restore_provers(&mut self, snapshot: &LrpSnapshot) {
        for (key, strikes, proven, cooldown_until, holdings) in &snapshot.provers {
            let mut state = ProverState {
                strikes: *strikes,
                proven: *proven,
                cooldown_until: *cooldown_until,
                holdings: holdings.clone(),
                gone: 0,
                job_time_ms: 0,
                samples: 0,
                renewed: Vec::new(),
            };
            state.find_renewed();
            self.provers.insert(ProverKey::of(key), state);
        }
        for (key, job_time_ms, samples) in &snapshot.job_times {
            let state = self.provers.entry(ProverKey::of(key)).or_default();
            state.job_time_ms = *job_time_ms;
            state.samples = *samples;
        }
    }
}

/// A batch's slots, dense and sparse alike, sorted by job index.
fn slot_snapshots(batch: &BatchState) -> Vec<(u32, SlotSnapshot)> {
    let mut slots: Vec<(u32, SlotSnapshot)> = batch
        .dense
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().map(|s| (i as u32, s)))
        .chain(batch.sparse.iter().map(|(i, s)| (*i, s)))
        .map(|(i, slot)| (i, SlotSnapshot::of(slot)))
        .collect();
    slots.sort_by_key(|(i, _)| *i);
    slots
}

/// A batch with `progress` and the jobs of `slots`.
fn restore_batch(progress: BatchProgress, slots: &[(u32, SlotSnapshot)]) -> BatchState {
    let mut state = BatchState {
        progress,
        ..BatchState::default()
    };
    for (index, slot) in slots {
        state.add(*index, slot.to_slot());
    }
    state
}

impl SlotSnapshot {
    /// A job's slot as plain data.
    fn of(slot: &Slot) -> Self {
        match slot {
            Slot::Fresh => Self::Fresh,
            Slot::Pending { key, holders } => Self::Pending {
                orphan: is_orphan(key.lane),
                request: key.request,
                holders: holders.as_slice().to_vec(),
            },
            Slot::Done {
                prover,
                request,
                at,
                late,
            } => Self::Done {
                prover: *prover,
                request: *request,
                at: *at,
                late: late.clone(),
            },
        }
    }

    /// The slot this snapshot holds.
    fn to_slot(&self) -> Slot {
        match self {
            Self::Fresh => Slot::Fresh,
            Self::Pending {
                orphan,
                request,
                holders,
            } => {
                let mut list = Holders::default();
                for h in holders {
                    list.push(*h);
                }
                Slot::Pending {
                    key: QueueKey {
                        lane: lane(*orphan),
                        request: *request,
                    },
                    holders: list,
                }
            }
            Self::Done {
                prover,
                request,
                at,
                late,
            } => Slot::Done {
                prover: *prover,
                request: *request,
                at: *at,
                late: late.clone(),
            },
        }
    }
}

/// A snapshot's queue lane: a bool, `true` for orphans.
fn is_orphan(lane: Lane) -> bool {
    matches!(lane, Lane::Orphan)
}

/// The lane [`is_orphan`] wrote.
fn lane(orphan: bool) -> Lane {
    if orphan { Lane::Orphan } else { Lane::Held }
}
