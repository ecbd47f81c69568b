//! The Least-Recently-Processed (LRP) assignment rule as a pure, deterministic
//! state machine.
//!
//! Provers poll the distributor for work. On each request the scheduler hands
//! out a job that was never handed out before, if there is one; otherwise it
//! re-serves the pending job that was handed out least recently and moves it to
//! the back of the queue. Every hand-out gets a fresh [`RequestId`], and a job
//! may be held by several provers at once. The first valid proof for an issued
//! (job, request) pair completes the job and supersedes its other request ids;
//! proofs for superseded pairs are *late*. A pair stays valid until then
//! unless a release or an invalid proof voids it: a prover whose lease on a
//! job ran out may get the job again, and its older hand-out still counts. Stalled, vanished or lying provers
//! need no special handling: their job stays pending and is re-served.
//!
//! Every input is an [`LrpEvent`] that carries its own time, and
//! [`Lrp::apply`] is a pure function of the state and the event, so replaying a
//! persisted log into a fresh [`Lrp::new`] gives identical [`LrpOutcome`]s —
//! that is what makes the assignment auditable. `apply` is the only public
//! way the state changes.
//!
//! Knobs live in [`LrpConfig`]; `docs/lrp.md` explains each default.
//!
//! # When a held job goes round again
//! [`LrpConfig::policy`] decides. [`ReservePolicy::Lrp`] is the paper's rule:
//! once the job's latest hand-out is [`LrpConfig::min_reserve_age_ms`] old.
//! [`ReservePolicy::Adaptive`] (the default) waits for evidence: the holder
//! is overdue for the time it is expected to take (learnt from accepted
//! proofs: its own average or the crowd's median, whichever is longer; the
//! median only from provers already trusted when they won,
//! [`LrpConfig::median_from_trusted_only`]), or
//! has been silent ([`LrpEvent::Heartbeat`]) for
//! [`LrpConfig::heartbeat_silence_ms`]; failing both, in a batch's tail, a
//! bounded backup copy goes to a much faster prover. The learnt times are
//! state like the rest: snapshotted, and replayed from the same events.
//!
//! # Probation
//! An identity costs nothing, so the caps cannot simply be per key. A prover
//! is *trusted* once the scheduler accepted a proof of it and while it has
//! no strikes. Its *allowance* of live hand-outs is
//! `1 + accepted − strikes − expired`, at most
//! [`LrpConfig::max_held_per_prover`], where `expired` counts the open jobs
//! it holds only past their lease (claiming and sitting counts
//! against it until someone else proves that job). So a new key holds one
//! job at a time, and a key that only claims soon holds none. Only trusted
//! holders count toward [`LrpConfig::max_live_holders`], so provers on
//! probation sitting on a job never keep it from a trusted re-serve. Under
//! the paper's rule a re-serve to a prover on probation leaves the job's
//! place in the queue where it is, so they cannot keep a job "recently
//! handed out" either; under the adaptive one its holder is judged by the
//! same evidence as any, and overdue work reaches provers on probation only
//! [`LrpConfig::probation_lag_ms`] after trusted ones. Either way it goes
//! only to a job whose latest hand-out to a prover on probation is
//! [`LrpConfig::min_reserve_age_ms`] old, so they race each other no faster
//! than trusted provers race.
//!
//! What new keys leave behind is bounded too: under the adaptive rule a
//! hand-out to one keeps its job from a trusted prover at most
//! [`LrpConfig::probation_hold_ms`], however long jobs are learnt to take; a
//! job keeps at most [`LrpConfig::max_stale_probation_holders`] of their
//! hand-outs past the lease; and one struck while holding nothing more is
//! forgotten ([`LrpConfig::forget_struck_newcomers`]): it comes back as any
//! new key would.
//!
//! # Complexity
//! Each decision costs `O(log Q)` for the re-serve queue of `Q` pending jobs
//! plus expected O(1) look-ups of the job and of the provers holding it (a
//! handful), except that a re-serve may look at up to
//! [`LrpConfig::max_reserve_scan`] queue entries when the jobs at the head
//! cannot go to the asking prover. Batches and provers live in hash maps, a
//! batch's jobs in a vector indexed by job index (so jobs handed out together
//! share cache lines); `docs/lrp.md` has the layout and its measured speed.
//!
//! # Determinism
//! Jobs, provers and batches are only ever looked up by key, never iterated to
//! reach a decision, so the hash maps holding them cannot leak their order into
//! an outcome. The one ordered walk a decision makes, the re-serve scan, runs
//! over the queue, a `BTreeMap` keyed by hand-out. Queries that list things
//! ([`Lrp::provers`]) sort before answering. The hasher is an in-crate
//! multiply-rotate (`FxHasher`) seeded at random per map, so that nobody can
//! grind public keys that pile into one bucket; the seed changes only the
//! maps' memory layout, never a decision. Keep it that way: a new query that
//! iterates a hash map must sort, and no decision may iterate one.
//!
//! # Layout
//! - `config`: [`LrpConfig`], [`ReservePolicy`], their defaults and validation.
//! - `events`: [`LrpEvent`], the outcome of each ([`LrpOutcome`] and the
//!   types it carries) and the views of jobs and provers.
//! - `state`: the internal state: queue keys, job slots and holders,
//!   batches, provers, learnt job times.
//! - `transitions`: how each event changes that state.
//! - `policy`: who may have work, and which job a re-serve hands out
//!   (the paper's rule, the adaptive one, backups, probation).
//! - `snapshot`: [`LrpSnapshot`], [`Lrp::restore`] and the format-3 layout.
//! - `hash`: the seeded hasher of the lookup-only maps.
//! - This file: [`Lrp`] itself, [`Lrp::apply`] and the read-only queries.

mod config;
mod events;
mod hash;
mod policy;
mod snapshot;
mod state;
mod transitions;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

pub use config::{LrpConfig, LrpConfigV5, LrpConfigV6, LrpError, ReservePolicy, Result};
pub use events::{
    BatchProgress, Completion, Decision, ForgetOutcome, Handout, HeartbeatOutcome, Holder, Holding,
    JobView, LrpCounts, LrpEvent, LrpOutcome, ProverView, Refusal, ReleaseOutcome, StrikeOutcome,
    SubmitOutcome,
};
pub use snapshot::{LrpSnapshot, LrpSnapshotV3};

use crate::identity::PublicKey;
use crate::ids::{BatchId, JobId, RequestId, Timestamp};
use hash::{FxMap, ProverKey};
use state::{BatchState, JobTimes, ProverState, QueueEntry, QueueKey, Slot};

/// The LRP scheduler. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Lrp {
    config: LrpConfig,
    /// Latest time seen; event times are clamped to it so time never runs back.
    clock: Timestamp,
    next_request: u64,
    fresh: VecDeque<JobId>,
    queue: BTreeMap<QueueKey, QueueEntry>,
    provers: FxMap<ProverKey, ProverState>,
    batches: FxMap<BatchId, BatchState>,
    pending: u64,
    done: u64,
    job_times: JobTimes,
    /// The last heartbeat of each live hand-out that sent one.
    heard: FxMap<RequestId, Timestamp>,
    /// The last [`LrpEvent::Resume`]: silence is counted from no earlier.
    resumed_at: Timestamp,
}

impl Lrp {
    /// An empty scheduler; fails if a knob is unusable.
    pub fn new(config: LrpConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            next_request: config.first_request_id,
            config,
            clock: Timestamp(0),
            fresh: VecDeque::new(),
            queue: BTreeMap::new(),
            provers: FxMap::default(),
            batches: FxMap::default(),
            pending: 0,
            done: 0,
            job_times: JobTimes::default(),
            heard: FxMap::default(),
            resumed_at: Timestamp(0),
        })
    }

    /// Applies `events` in order to a fresh scheduler, returning it and every
    /// outcome: the audit of a persisted log.
    pub fn replay<'a>(
        config: LrpConfig,
        events: impl IntoIterator<Item = &'a LrpEvent>,
    ) -> Result<(Self, Vec<LrpOutcome>)> {
        let mut lrp = Self::new(config)?;
        let outcomes = events.into_iter().map(|e| lrp.apply(e)).collect();
        Ok((lrp, outcomes))
    }

    /// Applies one event. The only way state changes.
    pub fn apply(&mut self, event: &LrpEvent) -> LrpOutcome {
        match *event {
            LrpEvent::Submit { ref jobs } => LrpOutcome::Submitted(self.on_submit(jobs)),
            LrpEvent::Request { prover, now } => LrpOutcome::Decided(self.on_request(prover, now)),
            LrpEvent::Complete {
                job,
                request,
                prover,
                now,
            } => LrpOutcome::Completed(self.on_complete(job, request, prover, now)),
            LrpEvent::Invalid {
                job,
                request,
                prover,
                now,
            } => LrpOutcome::Invalidated(self.on_invalid(job, request, prover, now)),
            LrpEvent::Release {
                job,
                request,
                prover,
                now,
            } => LrpOutcome::Released(self.on_release(job, request, prover, now)),
            LrpEvent::Pardon { prover } => LrpOutcome::Pardoned {
                strikes_cleared: self.on_pardon(prover),
            },
            LrpEvent::Forget { batch } => LrpOutcome::Forgot(self.on_forget(batch)),
            LrpEvent::Heartbeat {
                job,
                request,
                prover,
                now,
            } => LrpOutcome::Heard(self.on_heartbeat(job, request, prover, now)),
            LrpEvent::Resume { now } => {
                self.resumed_at = self.tick(now);
                LrpOutcome::Resumed
            }
        }
    }

    /// The knobs in force.
    pub fn config(&self) -> &LrpConfig {
        &self.config
    }

    /// The latest event time seen.
    pub fn clock(&self) -> Timestamp {
        self.clock
    }

    /// The request id the next hand-out will get.
    pub fn next_request_id(&self) -> RequestId {
        RequestId(self.next_request)
    }

    /// Jobs per state.
    pub fn counts(&self) -> LrpCounts {
        LrpCounts {
            fresh: self.fresh.len() as u64,
            pending: self.pending,
            done: self.done,
        }
    }

    /// A job's state, or `None` if unknown or forgotten.
    pub fn job(&self, job: JobId) -> Option<JobView<'_>> {
        Some(match self.slot(job)? {
            Slot::Fresh => JobView::Fresh,
            Slot::Pending { holders, .. } => JobView::Pending {
                holders: holders.as_slice(),
            },
            Slot::Done {
                prover,
                request,
                at,
                ..
            } => JobView::Done {
                prover: *prover,
                request: *request,
                at: *at,
            },
        })
    }

    /// Whether done `job`'s hand-out `request` went to `prover` and lost
    /// (the winner superseded it): its proof is late, not unknown. `false`
    /// for a job not done, or forgotten.
    pub fn was_superseded(&self, job: JobId, request: RequestId, prover: &PublicKey) -> bool {
        match self.slot(job) {
            Some(Slot::Done { late, .. }) => late
                .iter()
                .any(|h| h.request == request && h.prover == *prover),
            _ => false,
        }
    }

    /// When the holder of hand-out `request` last sent a heartbeat for it,
    /// if it has since the hand-out.
    pub fn heard(&self, request: RequestId) -> Option<Timestamp> {
        self.heard.get(&request).copied()
    }

    /// A prover's strikes, accepted proofs and holdings, or `None` if it has
    /// none of them.
    pub fn prover(&self, prover: &PublicKey) -> Option<ProverView<'_>> {
        self.provers
            .get(&ProverKey::of(prover))
            .map(|s| ProverView {
                strikes: s.strikes,
                proven: s.proven,
                cooldown_until: s.cooldown_until,
                holdings: s.held(),
            })
    }

    /// A prover's strikes (0 for one never seen).
    pub fn strikes(&self, prover: &PublicKey) -> u32 {
        self.provers
            .get(&ProverKey::of(prover))
            .map_or(0, |s| s.strikes)
    }

    /// How many provers the scheduler keeps state for: those with
    /// holdings, strikes or accepted proofs (a poll that got nothing, or a
    /// message about a hand-out it was not given, makes none).
    pub fn prover_count(&self) -> usize {
        self.provers.len()
    }

    /// Provers with holdings, strikes or accepted proofs, in key order.
    pub fn provers(&self) -> impl Iterator<Item = (&PublicKey, ProverView<'_>)> {
        let mut sorted: Vec<_> = self.provers.iter().collect();
        sorted.sort_unstable_by_key(|(k, _)| &k.0);
        sorted.into_iter().map(|(k, s)| {
            (
                &k.0,
                ProverView {
                    strikes: s.strikes,
                    proven: s.proven,
                    cooldown_until: s.cooldown_until,
                    holdings: s.held(),
                },
            )
        })
    }

    /// A batch's progress, or `None` if unknown or forgotten.
    pub fn batch(&self, batch: BatchId) -> Option<BatchProgress> {
        self.batches.get(&batch).map(|b| b.progress)
    }

    /// Whether `batch` is known and all its jobs are done.
    pub fn is_finished(&self, batch: BatchId) -> bool {
        self.batch(batch).is_some_and(|b| b.is_finished())
    }

    /// Whether no job is open (fresh or pending).
    pub fn is_all_finished(&self) -> bool {
        self.fresh.is_empty() && self.pending == 0
    }

    fn slot(&self, job: JobId) -> Option<&Slot> {
        self.batches.get(&job.batch)?.slot(job.index)
    }

    fn slot_mut(&mut self, job: JobId) -> Option<&mut Slot> {
        self.batches.get_mut(&job.batch)?.slot_mut(job.index)
    }

    fn tick(&mut self, now: Timestamp) -> Timestamp {
        self.clock = self.clock.max(now);
        self.clock
    }
}
