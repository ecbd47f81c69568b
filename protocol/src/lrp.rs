//! The Least-Recently-Processed (LRP) assignment rule as a pure, deterministic
//! state machine.
//!
//! Provers poll the distributor for work. On each request the scheduler hands
//! out a job that was never handed out before, if there is one; otherwise it
//! re-serves the pending job that was handed out least recently and moves it to
//! the back of the queue. Every hand-out gets a fresh [`RequestId`], and a job
//! may be held by several provers at once. The first valid proof for an issued
//! (job, request) pair completes the job and supersedes its other request ids;
//! proofs for superseded pairs are *late*. Stalled, vanished or lying provers
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
//! proofs: its own average or the crowd's median, whichever is longer), or
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
//! [`LrpConfig::max_held_per_prover`], where `expired` counts its hand-outs
//! whose lease ran out with the job still open (claiming and sitting counts
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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher, RandomState};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::identity::PublicKey;
use crate::ids::{BatchId, JobId, RequestId, Timestamp};

/// Why the scheduler could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LrpError {
    /// A knob in [`LrpConfig`] has a value the rule cannot work with.
    #[error("invalid LRP setting `{field}`: {reason}")]
    InvalidConfig {
        /// The offending field of [`LrpConfig`].
        field: &'static str,
        /// What it must be instead.
        reason: &'static str,
    },
}

/// The LRP module's result type.
pub type Result<T> = std::result::Result<T, LrpError>;

/// The knobs of the rule. `Default` gives the documented production values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LrpConfig {
    /// A pending job is re-served only once its latest hand-out is at least this
    /// old, so a healthy prover is not raced at once.
    pub min_reserve_age_ms: u64,
    /// A hand-out older than this stops counting as live: it no longer counts
    /// toward a job's holder cap or its prover's holding cap. Its request id
    /// stays valid, so a slow prover can still complete.
    pub lease_ms: u64,
    /// At most this many live holders per job; a re-serve skips jobs at the cap.
    /// Only trusted holders count (see [Probation](self#probation)).
    pub max_live_holders: u32,
    /// At most this many live hand-outs per prover, for a trusted one; a
    /// prover on probation gets fewer. Beyond its allowance a request is
    /// refused with [`Refusal::AtCapacity`].
    pub max_held_per_prover: u32,
    /// A prover's first strike refuses it work for this long; each further
    /// strike doubles the cooldown.
    pub strike_cooldown_ms: u64,
    /// A prover with this many strikes is refused for good (until pardoned).
    pub max_strikes: u32,
    /// A re-serve looks at most this many queue entries from the head before
    /// answering [`Decision::NoWork`]; bounds the cost of one decision.
    pub max_reserve_scan: u32,
    /// How long a prover that got no work is told to wait before asking again,
    /// unless a pending job becomes ready for re-serve sooner.
    pub idle_retry_ms: u64,
    /// The first request id issued; a restarted distributor that does not
    /// replay its log sets it past every id it issued before.
    pub first_request_id: u64,
    /// When a held job may get another copy: on evidence ([`ReservePolicy::Adaptive`],
    /// the default) or at a fixed age (the paper's rule, [`ReservePolicy::Lrp`]).
    pub policy: ReservePolicy,
    /// Adaptive: the time a job is expected to take before any proof was
    /// accepted (afterwards the median of recent ones, and each prover's own
    /// history once it has one).
    pub job_time_prior_ms: u64,
    /// Adaptive: a hand-out is overdue, and its job eligible for another
    /// copy, once it is this many percent of its holder's expected time old
    /// (never sooner than [`Self::min_reserve_age_ms`]).
    pub overdue_percent: u32,
    /// Adaptive: backup copies of jobs that are not overdue (given, in a
    /// batch's tail, to a prover expected to finish before the holder) are at
    /// most this many percent of the jobs handed out.
    pub backup_percent: u32,
    /// Adaptive: a hand-out whose prover sent no [`LrpEvent::Heartbeat`]
    /// for this long (since its last one, or since the hand-out) is overdue
    /// whatever its expected time. 0: silence is not evidence.
    pub heartbeat_silence_ms: u64,
    /// Adaptive: overdue work goes to a trusted prover first; one on
    /// probation may have it only this much later. An idle trusted prover
    /// is told when the job comes due, so a round trip suffices.
    pub probation_lag_ms: u64,
}

/// A tail backup goes only to a prover expected to prove the job this many
/// times faster than its holder's expected time left: a backup costs a
/// duplicate, so it must cut the tail, not shave it (in simulation a 1.25×
/// margin spent the budget on marginal copies and left the slow machines'
/// jobs without one; `crowdprove simulate`, docs/lrp.md).
const BACKUP_SPEEDUP: u64 = 3;

/// How a held job becomes eligible for another copy (see `docs/lrp.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReservePolicy {
    /// Re-serve a job once its holder is overdue for its own expected time,
    /// learnt from accepted proofs; in the tail, a bounded backup copy goes
    /// to a prover expected to finish sooner than the holder (LATE).
    #[default]
    Adaptive,
    /// The paper's LRP: re-serve the least recently handed-out job once its
    /// latest hand-out is [`LrpConfig::min_reserve_age_ms`] old.
    Lrp,
}

impl std::str::FromStr for ReservePolicy {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "adaptive" => Ok(Self::Adaptive),
            "lrp" => Ok(Self::Lrp),
            other => Err(format!(
                "unknown scheduling policy `{other}` (expected `adaptive` or `lrp`)"
            )),
        }
    }
}

impl Default for LrpConfig {
    fn default() -> Self {
        Self {
            min_reserve_age_ms: 30_000,
            lease_ms: 300_000,
            max_live_holders: 3,
            max_held_per_prover: 2,
            strike_cooldown_ms: 60_000,
            max_strikes: 3,
            max_reserve_scan: 64,
            idle_retry_ms: 5_000,
            first_request_id: 1,
            policy: ReservePolicy::Adaptive,
            job_time_prior_ms: 60_000,
            overdue_percent: 200,
            backup_percent: 3,
            heartbeat_silence_ms: 30_000,
            probation_lag_ms: 2_000,
        }
    }
}

impl LrpConfig {
    /// Checks that every knob lets the rule make progress.
    pub fn validate(&self) -> Result<()> {
        let positive: [(&'static str, u64); 7] = [
            ("lease_ms", self.lease_ms),
            ("max_live_holders", self.max_live_holders.into()),
            ("max_held_per_prover", self.max_held_per_prover.into()),
            ("max_strikes", self.max_strikes.into()),
            ("max_reserve_scan", self.max_reserve_scan.into()),
            ("first_request_id", self.first_request_id),
            ("job_time_prior_ms", self.job_time_prior_ms),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(LrpError::InvalidConfig {
                    field,
                    reason: "must be at least 1",
                });
            }
        }
        if self.overdue_percent < 100 {
            return Err(LrpError::InvalidConfig {
                field: "overdue_percent",
                reason: "must be at least 100 (a holder is never overdue before its expected time)",
            });
        }
        Ok(())
    }
}

/// One input to the scheduler. The node persists these; replaying them into a
/// fresh [`Lrp`] with the same config reproduces every decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LrpEvent {
    /// New jobs, queued fresh in the given order.
    Submit {
        /// The jobs, in the order they should first be handed out.
        jobs: Vec<JobId>,
    },
    /// A prover asks for work.
    Request {
        /// The asking prover.
        prover: PublicKey,
        /// When it asked.
        now: Timestamp,
    },
    /// A prover delivered a proof that verified.
    Complete {
        /// The job the proof is for.
        job: JobId,
        /// The hand-out the proof answers.
        request: RequestId,
        /// The submitting prover.
        prover: PublicKey,
        /// When it arrived.
        now: Timestamp,
    },
    /// A prover delivered a proof that did not verify.
    Invalid {
        /// The job the proof claims.
        job: JobId,
        /// The hand-out it claims to answer.
        request: RequestId,
        /// The submitting prover.
        prover: PublicKey,
        /// When it arrived.
        now: Timestamp,
    },
    /// A prover gives a hand-out back, e.g. on shutdown.
    Release {
        /// The job given back.
        job: JobId,
        /// The hand-out given back.
        request: RequestId,
        /// The prover giving it back.
        prover: PublicKey,
        /// When.
        now: Timestamp,
    },
    /// The operator clears a prover's strikes.
    Pardon {
        /// The prover pardoned.
        prover: PublicKey,
    },
    /// Drop a finished batch's jobs from memory.
    Forget {
        /// The batch to forget.
        batch: BatchId,
    },
    /// A prover says it is still working on a hand-out.
    Heartbeat {
        /// The job.
        job: JobId,
        /// The hand-out.
        request: RequestId,
        /// The prover.
        prover: PublicKey,
        /// When it arrived.
        now: Timestamp,
    },
    /// The distributor (re)started: no heartbeat could reach it before
    /// `now`, so silence before then is no evidence.
    Resume {
        /// When it started.
        now: Timestamp,
    },
}

/// One hand-out: the job a prover should prove and the request id its proof
/// must name. (Not the wire message `Assignment`, which carries it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handout {
    /// The job to prove.
    pub job: JobId,
    /// The fresh request id of this hand-out.
    pub request: RequestId,
    /// Whether the job was handed out before (a re-serve).
    pub reserve: bool,
}

/// The answer to a [`LrpEvent::Request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Prove this.
    Assign(Handout),
    /// Nothing can go to this prover now; ask again at `retry_at`.
    NoWork {
        /// When asking again may give work.
        retry_at: Timestamp,
    },
    /// This prover may not have work now.
    Refused(Refusal),
}

/// Why a prover was refused work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// It reached [`LrpConfig::max_strikes`] invalid proofs.
    Banned {
        /// Its strikes.
        strikes: u32,
    },
    /// It submitted an invalid proof recently.
    Cooldown {
        /// Its strikes.
        strikes: u32,
        /// When the cooldown ends.
        until: Timestamp,
    },
    /// It already holds as many live hand-outs as its allowance
    /// ([`LrpConfig::max_held_per_prover`] once trusted; see
    /// [Probation](self#probation)).
    AtCapacity {
        /// Its live hand-outs.
        held: u32,
        /// When asking again may give work: its oldest live hand-out's lease
        /// end, or the idle retry when it holds none live.
        retry_at: Timestamp,
    },
    /// Every request id up to `u64::MAX` has been issued.
    RequestIdsExhausted,
}

/// The verdict on a [`LrpEvent::Complete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Completion {
    /// First valid proof: the job is done and this prover is paid.
    Accepted {
        /// Other request ids of the job that this completion superseded.
        superseded: u32,
        /// Whether this was the batch's last open job.
        batch_finished: bool,
    },
    /// The pair was issued to this prover but the job was already done.
    Late,
    /// This very pair already completed the job.
    Duplicate,
    /// The pair was issued, but to another prover.
    WrongProver,
    /// The pair was never issued (or was released / voided by an invalid
    /// proof), or the job is unknown.
    Unknown,
}

/// The effect of a [`LrpEvent::Invalid`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StrikeOutcome {
    /// The prover got a strike; the hand-out is void.
    Struck {
        /// Its strikes now.
        strikes: u32,
        /// When its cooldown ends.
        cooldown_until: Timestamp,
        /// Whether it is now refused for good.
        banned: bool,
    },
    /// This pair already completed the job with a valid proof; no strike.
    AlreadyAccepted,
    /// The pair was issued to another prover; no strike.
    WrongProver,
    /// The pair is not a live or late hand-out; no strike.
    Unknown,
}

/// The effect of a [`LrpEvent::Release`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReleaseOutcome {
    /// The hand-out is void; `orphaned` when the job has no holder left and so
    /// goes to the next request that finds no fresh job.
    Released {
        /// Whether the job has no holder left.
        orphaned: bool,
    },
    /// The job was already done.
    AlreadyDone,
    /// The pair was issued to another prover.
    WrongProver,
    /// The pair is not a live hand-out.
    Unknown,
}

/// The effect of a [`LrpEvent::Heartbeat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeartbeatOutcome {
    /// Noted: the hand-out's silence starts again.
    Noted,
    /// Too soon after the last one noted (within a sixth of
    /// [`LrpConfig::heartbeat_silence_ms`]): changes nothing, need not be
    /// logged.
    TooSoon,
    /// The job is already done: the prover can stop.
    AlreadyDone,
    /// The pair was issued to another prover.
    WrongProver,
    /// The pair is not a live hand-out.
    Unknown,
}

/// The effect of a [`LrpEvent::Submit`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitOutcome {
    /// Jobs queued.
    pub added: u64,
    /// Jobs ignored because the scheduler already knew them.
    pub duplicates: Vec<JobId>,
}

/// The effect of a [`LrpEvent::Forget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForgetOutcome {
    /// The batch's jobs are gone from memory.
    Forgotten {
        /// How many jobs were dropped.
        jobs: u64,
    },
    /// The batch still has open jobs; nothing was dropped.
    NotFinished {
        /// Its open jobs.
        remaining: u64,
    },
    /// No such batch.
    Unknown,
}

/// What applying one [`LrpEvent`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LrpOutcome {
    /// Answer to [`LrpEvent::Submit`].
    Submitted(SubmitOutcome),
    /// Answer to [`LrpEvent::Request`].
    Decided(Decision),
    /// Answer to [`LrpEvent::Complete`].
    Completed(Completion),
    /// Answer to [`LrpEvent::Invalid`].
    Invalidated(StrikeOutcome),
    /// Answer to [`LrpEvent::Release`].
    Released(ReleaseOutcome),
    /// Answer to [`LrpEvent::Pardon`]: the strikes cleared.
    Pardoned {
        /// Strikes the prover had.
        strikes_cleared: u32,
    },
    /// Answer to [`LrpEvent::Forget`].
    Forgot(ForgetOutcome),
    /// Answer to [`LrpEvent::Heartbeat`].
    Heard(HeartbeatOutcome),
    /// Answer to [`LrpEvent::Resume`].
    Resumed,
}

/// One live hand-out of a pending job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Who holds it.
    pub prover: PublicKey,
    /// The hand-out's request id.
    pub request: RequestId,
    /// When it was handed out.
    pub at: Timestamp,
}

/// One hand-out a prover holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    /// The hand-out's request id.
    pub request: RequestId,
    /// The job.
    pub job: JobId,
    /// When it was handed out.
    pub at: Timestamp,
}

/// A job as the scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobView<'a> {
    /// Never handed out.
    Fresh,
    /// Handed out, not done. `holders` is in hand-out order and may be empty
    /// when every holder released or was voided.
    Pending {
        /// Its current hand-outs, oldest first.
        holders: &'a [Holder],
    },
    /// Completed.
    Done {
        /// The prover whose proof was accepted.
        prover: PublicKey,
        /// The accepted hand-out.
        request: RequestId,
        /// When it was accepted.
        at: Timestamp,
    },
}

/// A prover as the scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProverView<'a> {
    /// Invalid proofs counted against it.
    pub strikes: u32,
    /// Its proofs that completed a job.
    pub proven: u32,
    /// Until when it is refused work (past values mean no cooldown).
    pub cooldown_until: Timestamp,
    /// Its hand-outs of pending jobs, oldest first (expired ones included).
    pub holdings: &'a [Holding],
}

/// How many jobs are in each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LrpCounts {
    /// Never handed out.
    pub fresh: u64,
    /// Handed out, not done.
    pub pending: u64,
    /// Done and not yet forgotten.
    pub done: u64,
}

/// A batch's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BatchProgress {
    /// Jobs submitted for it.
    pub total: u64,
    /// Jobs of it done.
    pub done: u64,
}

impl BatchProgress {
    /// Whether every job of the batch is done.
    pub fn is_finished(&self) -> bool {
        self.done == self.total
    }
}

/// Which part of the re-serve queue a job sits in. Orphans (handed out before,
/// but with no holder left) go before jobs someone is working on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Lane {
    Orphan,
    Held,
}

/// A pending job's place in the queue: its lane, then the request id of its
/// latest remaining hand-out. Request ids grow with the clock, so within a lane
/// the queue is ordered by hand-out time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct QueueKey {
    lane: Lane,
    request: RequestId,
}

#[derive(Debug, Clone, Copy)]
struct QueueEntry {
    job: JobId,
    /// Time of the hand-out named by the key.
    at: Timestamp,
}

/// A pending job's holders, oldest first. Most jobs have exactly one, kept
/// inline: a fresh hand-out allocates nothing, and a completion finds it in the
/// slot's own cache line instead of behind a pointer.
#[derive(Debug, Clone)]
enum Holders {
    One(Holder),
    Many(Vec<Holder>),
}

impl Default for Holders {
    fn default() -> Self {
        Self::Many(Vec::new())
    }
}

impl Holders {
    fn as_slice(&self) -> &[Holder] {
        match self {
            Self::One(h) => std::slice::from_ref(h),
            Self::Many(v) => v,
        }
    }

    fn push(&mut self, holder: Holder) {
        match self {
            Self::One(first) => *self = Self::Many(vec![*first, holder]),
            Self::Many(v) if v.is_empty() => *self = Self::One(holder),
            Self::Many(v) => v.push(holder),
        }
    }

    fn remove(&mut self, i: usize) -> Holder {
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
    fn into_others(self, request: RequestId) -> Vec<Holder> {
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
enum Slot {
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

/// FxHash (the multiply-rotate hash of Firefox and rustc): a few cycles per
/// word, against SipHash's tens. Each map starts it from a random seed
/// ([`SeededFx`]), so the buckets keys land in cannot be predicted: an
/// attacker who grinds ed25519 keys cannot aim them all at one bucket and turn
/// lookups linear. (Not a keyed PRF like SipHash, but without the seed the
/// bucket of a key is unknown.)
#[derive(Debug, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.add(u64::from_le_bytes(tail));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(n.into());
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits; the multiply leaves
        // them depending only on the input's low bits, so fold the high down.
        self.0 ^ (self.0 >> 32)
    }
}

/// Builds [`FxHasher`]s from one random seed per map.
#[derive(Debug, Clone, Copy)]
struct SeededFx(u64);

impl Default for SeededFx {
    fn default() -> Self {
        // std's per-process random keys, without a dependency on `rand`.
        Self(RandomState::new().hash_one(0x5eed_u64))
    }
}

impl BuildHasher for SeededFx {
    type Hasher = FxHasher;
    fn build_hasher(&self) -> FxHasher {
        FxHasher(self.0)
    }
}

/// A lookup-only map: see [Determinism](self#determinism).
type FxMap<K, V> = HashMap<K, V, SeededFx>;

/// A prover's map key: hashes only the public key's first eight bytes, which
/// are as good as random for an ed25519 key; equality still compares all 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProverKey(PublicKey);

impl ProverKey {
    fn of(key: &PublicKey) -> Self {
        Self(*key)
    }
}

impl Hash for ProverKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

/// A batch: its progress and its jobs' slots. Job indices run densely from 0,
/// so the slots sit in a vector by index: jobs handed out around the same time
/// (neighbouring indices) share cache lines, and a look-up is a hash of the
/// batch id (a small, hot table) plus an index. An index that would leave the
/// vector less than half full goes to `sparse` instead, so a stray huge index
/// costs one entry, not gigabytes.
#[derive(Debug, Clone, Default)]
struct BatchState {
    progress: BatchProgress,
    dense: Vec<Option<Slot>>,
    /// Occupied entries of `dense`.
    filled: usize,
    sparse: FxMap<u32, Slot>,
}

impl BatchState {
    /// Indices below this always go to `dense`, so small batches never hash.
    const DENSE_FLOOR: usize = 1_024;

    fn slot(&self, index: u32) -> Option<&Slot> {
        match self.dense.get(index as usize) {
            Some(slot) => slot.as_ref(),
            None => self.sparse.get(&index),
        }
    }

    fn slot_mut(&mut self, index: u32) -> Option<&mut Slot> {
        match self.dense.get_mut(index as usize) {
            Some(slot) => slot.as_mut(),
            None => self.sparse.get_mut(&index),
        }
    }

    /// Adds a job the batch does not have yet.
    fn add(&mut self, index: u32, slot: Slot) {
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

    fn job_count(&self) -> u64 {
        (self.filled + self.sparse.len()) as u64
    }
}

#[derive(Debug, Clone, Default)]
struct ProverState {
    strikes: u32,
    /// Proofs that completed a job.
    proven: u32,
    cooldown_until: Timestamp,
    /// Sorted by request id, hence by hand-out time; only `holdings[gone..]`
    /// are still held.
    holdings: Vec<Holding>,
    /// Holdings usually go oldest first; dropping the front just bumps this
    /// instead of shifting the rest (compacted once it is half the vector).
    gone: usize,
    /// How long it holds a job it wins, ms: a moving average (weight ¼ on
    /// the newest), meaningful once `samples` > 0.
    job_time_ms: u64,
    /// Accepted proofs its `job_time_ms` has seen.
    samples: u32,
}

impl ProverState {
    /// What it holds, oldest first.
    fn held(&self) -> &[Holding] {
        &self.holdings[self.gone..]
    }

    /// Drops the holding with `request`, if it has it.
    fn drop_holding(&mut self, request: RequestId) {
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
    fn first_live(&self, now: Timestamp, lease_ms: u64) -> usize {
        self.held()
            .partition_point(|h| now.millis_since(h.at) >= lease_ms)
    }

    /// Past probation: a proof accepted and no strike.
    fn is_trusted(&self) -> bool {
        self.proven > 0 && self.strikes == 0
    }

    /// Folds one accepted proof's holding time into its average.
    fn learn(&mut self, took_ms: u64) {
        self.job_time_ms = if self.samples == 0 {
            took_ms
        } else {
            (self.job_time_ms.saturating_mul(3)).saturating_add(took_ms) / 4
        };
        self.samples = self.samples.saturating_add(1);
    }

    /// Nothing worth keeping: no holding, strike or accepted proof.
    fn is_blank(&self) -> bool {
        self.held().is_empty() && self.strikes == 0 && self.proven == 0
    }

    /// How many live hand-outs it may hold, given `expired` of its holdings
    /// whose lease ran out; see [Probation](self#probation).
    fn allowance(&self, expired: usize, max_held: usize) -> usize {
        let earned = 1 + self.proven as usize;
        earned
            .saturating_sub(self.strikes as usize + expired)
            .min(max_held)
    }
}

/// What the scheduler has learnt of job times as a whole, and the backup
/// budget's counters.
#[derive(Debug, Clone, Default)]
struct JobTimes {
    /// The holding times of the latest accepted proofs, oldest first, at
    /// most [`JobTimes::RECENT`].
    recent: VecDeque<u64>,
    /// Their median, kept current (`None` before the first).
    median: Option<u64>,
    /// Jobs handed out for the first time.
    first_handouts: u64,
    /// Backup copies handed out.
    backups: u64,
}

impl JobTimes {
    /// How many recent proofs the median is taken over.
    const RECENT: usize = 32;

    fn learn(&mut self, took_ms: u64) {
        if self.recent.len() == Self::RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(took_ms);
        let mut sorted: Vec<u64> = self.recent.iter().copied().collect();
        sorted.sort_unstable();
        self.median = Some(sorted[sorted.len() / 2]);
    }
}

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

    fn on_submit(&mut self, jobs: &[JobId]) -> SubmitOutcome {
        let mut outcome = SubmitOutcome {
            added: 0,
            duplicates: Vec::new(),
        };
        for &job in jobs {
            let state = self.batches.entry(job.batch).or_default();
            if state.slot(job.index).is_some() {
                outcome.duplicates.push(job);
                continue;
            }
            state.add(job.index, Slot::Fresh);
            state.progress.total += 1;
            self.fresh.push_back(job);
            outcome.added += 1;
        }
        outcome
    }

    fn on_request(&mut self, prover: PublicKey, now: Timestamp) -> Decision {
        let now = self.tick(now);
        if let Some(refusal) = self.refusal(&prover, now) {
            return Decision::Refused(refusal);
        }
        let request = RequestId(self.next_request);
        let Some(next) = self.next_request.checked_add(1) else {
            return Decision::Refused(Refusal::RequestIdsExhausted);
        };
        let holder = Holder {
            prover,
            request,
            at: now,
        };
        let key = QueueKey {
            lane: Lane::Held,
            request,
        };
        let (job, reserve, moves) = if let Some(job) = self.fresh.pop_front() {
            if let Some(slot) = self.slot_mut(job) {
                *slot = Slot::Pending {
                    key,
                    holders: Holders::One(holder),
                };
            }
            self.pending += 1;
            self.job_times.first_handouts += 1;
            (job, false, true)
        } else {
            let (old_key, job, backup) = match self.pick_reserve(&prover, now) {
                Ok(picked) => picked,
                Err(retry_at) => return Decision::NoWork { retry_at },
            };
            if backup {
                self.job_times.backups += 1;
            }
            // Under the paper's rule a hand-out on probation does not move
            // the job (see [Probation](self#probation)); under the adaptive
            // one it does, as its holder is judged by its own evidence.
            let moves = self.is_trusted(&prover) || self.config.policy == ReservePolicy::Adaptive;
            if moves {
                self.queue.remove(&old_key);
            }
            let mut replaced = None;
            if let Some(Slot::Pending { key: k, holders }) = self.slot_mut(job) {
                if moves {
                    *k = key;
                }
                // The prover's own expired hand-out of this job, if any, is
                // voided: a prover holds a job at most once.
                if let Some(i) = holders.as_slice().iter().position(|h| h.prover == prover) {
                    replaced = Some(holders.remove(i).request);
                }
                holders.push(holder);
            }
            if let Some(old) = replaced {
                remove_holding(&mut self.provers, &prover, old);
                self.heard.remove(&old);
            }
            (job, true, moves)
        };
        if moves {
            self.queue.insert(key, QueueEntry { job, at: now });
        }
        self.next_request = next;
        self.provers
            .entry(ProverKey::of(&prover))
            .or_default()
            .holdings
            .push(Holding {
                request,
                job,
                at: now,
            });
        Decision::Assign(Handout {
            job,
            request,
            reserve,
        })
    }

    fn refusal(&self, prover: &PublicKey, now: Timestamp) -> Option<Refusal> {
        let state = self.provers.get(&ProverKey::of(prover))?;
        if state.strikes >= self.config.max_strikes {
            return Some(Refusal::Banned {
                strikes: state.strikes,
            });
        }
        if now < state.cooldown_until {
            return Some(Refusal::Cooldown {
                strikes: state.strikes,
                until: state.cooldown_until,
            });
        }
        let max_held = self.config.max_held_per_prover as usize;
        let holdings = state.held();
        // Fewer holdings than the allowance could shrink to, expired or not:
        // no need to read them.
        if holdings.len() < state.allowance(holdings.len(), max_held) {
            return None;
        }
        let first_live = state.first_live(now, self.config.lease_ms);
        let held = holdings.len() - first_live;
        if held < state.allowance(first_live, max_held) {
            return None;
        }
        let retry_at = match holdings.get(first_live) {
            Some(oldest) => oldest.at.plus_millis(self.config.lease_ms),
            None => now.plus_millis(self.config.idle_retry_ms),
        };
        Some(Refusal::AtCapacity {
            held: u32::try_from(held).unwrap_or(u32::MAX),
            retry_at,
        })
    }

    /// Whether `prover` is past probation.
    fn is_trusted(&self, prover: &PublicKey) -> bool {
        self.provers
            .get(&ProverKey::of(prover))
            .is_some_and(ProverState::is_trusted)
    }

    /// The queue entry to re-serve to `prover` (and whether it is a tail
    /// backup), or when to ask again.
    ///
    /// Walks the queue from its head (orphans, then least recently handed out),
    /// skipping jobs the prover holds within its lease, jobs at the holder
    /// cap and, for a prover on probation, jobs handed out to one on
    /// probation less than the minimum age ago, for at most
    /// `max_reserve_scan` entries. It stops at the first held job younger
    /// than the minimum age: every job behind it is younger still (hand-outs
    /// on probation do not move a job, so they cannot break that order).
    ///
    /// Under [`ReservePolicy::Adaptive`] a held job qualifies only once its
    /// latest hand-out is overdue for that holder ([`Self::overdue_ms`]);
    /// failing that, the scanned job with the longest expected time left
    /// and a single live holder goes as a backup copy, if the asker is
    /// expected to finish it [`BACKUP_SPEEDUP`] times sooner than its holder
    /// and the backup budget allows (LATE's speculation).
    fn pick_reserve(
        &self,
        prover: &PublicKey,
        now: Timestamp,
    ) -> std::result::Result<(QueueKey, JobId, bool), Timestamp> {
        let mut retry_at = now.plus_millis(self.config.idle_retry_ms);
        let scan = usize::try_from(self.config.max_reserve_scan).unwrap_or(usize::MAX);
        let on_probation = !self.is_trusted(prover);
        let adaptive = self.config.policy == ReservePolicy::Adaptive;
        let budget = u64::from(self.config.backup_percent);
        let may_back_up = adaptive
            && !on_probation
            && (self.job_times.backups + 1).saturating_mul(100)
                <= budget.saturating_mul(self.job_times.first_handouts);
        // The asker's expected time, once needed.
        let mut asker_ms = None;
        let mut backup: Option<(u64, QueueKey, JobId)> = None;
        for (key, entry) in self.queue.iter().take(scan) {
            if key.lane == Lane::Held {
                let ready_at = entry.at.plus_millis(self.config.min_reserve_age_ms);
                if now < ready_at {
                    retry_at = retry_at.min(ready_at);
                    break;
                }
            }
            let Some(Slot::Pending { holders, .. }) = self.slot(entry.job) else {
                continue;
            };
            let holders = holders.as_slice();
            // Not to a prover still within its lease on this job; one whose
            // lease ran out (it crashed, or lost its proof) may have it again.
            let lease = self.config.lease_ms;
            if holders
                .iter()
                .any(|h| h.prover == *prover && now.millis_since(h.at) < lease)
            {
                continue;
            }
            let live = self.live_trusted_holders(holders, now);
            if live >= self.config.max_live_holders as usize {
                continue;
            }
            if on_probation && self.probation_raced_recently(holders, now) {
                continue;
            }
            if adaptive && key.lane == Lane::Held {
                let holder = holders.iter().find(|h| h.request == key.request);
                let yardstick =
                    holder.map_or_else(|| self.typical_ms(), |h| self.holder_ms(&h.prover));
                let due = entry
                    .at
                    .plus_millis(self.overdue_ms(yardstick))
                    .min(self.silent_at(key.request, entry.at));
                // Trusted provers first: one on probation waits a little
                // longer, so new keys only get the overdue work that no
                // trusted prover was there for.
                let due = if on_probation {
                    due.plus_millis(self.config.probation_lag_ms)
                } else {
                    due
                };
                if now < due {
                    retry_at = retry_at.min(due);
                    if may_back_up && live == 1 {
                        // Its time left at its own pace.
                        let pace = holder
                            .map_or_else(|| self.typical_ms(), |h| self.expected_ms(&h.prover));
                        let left = entry.at.plus_millis(pace).millis_since(now);
                        let asker = *asker_ms.get_or_insert_with(|| self.expected_ms(prover));
                        let beats = asker.saturating_mul(BACKUP_SPEEDUP) < left;
                        if beats && backup.is_none_or(|(best, _, _)| left > best) {
                            backup = Some((left, *key, entry.job));
                        }
                    }
                    continue;
                }
            }
            return Ok((*key, entry.job, false));
        }
        match backup {
            Some((_, key, job)) => Ok((key, job, true)),
            None => Err(retry_at),
        }
    }

    /// When the hand-out `request` (made at `at`) counts as silent: its
    /// last heartbeat, or the hand-out, or the last resume, whichever is
    /// latest, plus [`LrpConfig::heartbeat_silence_ms`]; never with
    /// heartbeats off.
    fn silent_at(&self, request: RequestId, at: Timestamp) -> Timestamp {
        let silence = self.config.heartbeat_silence_ms;
        if silence == 0 {
            return Timestamp(u64::MAX);
        }
        let heard = self.heard.get(&request).copied().unwrap_or(at);
        heard.max(at).max(self.resumed_at).plus_millis(silence)
    }

    /// How long `prover` takes to hold a job it wins, as far as is known:
    /// its own average once it has one, else the crowd's typical time.
    fn expected_ms(&self, prover: &PublicKey) -> u64 {
        match self.provers.get(&ProverKey::of(prover)) {
            Some(state) if state.samples > 0 => state.job_time_ms,
            _ => self.typical_ms(),
        }
    }

    /// How long a holder may take before it is overdue's yardstick: its own
    /// average or the crowd's typical time, whichever is longer. Its own
    /// history only ever lengthens it: a machine that once proved fast with
    /// nothing else to do is not raced when it queues work later (its
    /// silence catches it if it hangs).
    fn holder_ms(&self, prover: &PublicKey) -> u64 {
        self.expected_ms(prover).max(self.typical_ms())
    }

    /// The median holding time of recent accepted proofs, or the prior.
    fn typical_ms(&self) -> u64 {
        self.job_times
            .median
            .unwrap_or(self.config.job_time_prior_ms)
    }

    /// How old a hand-out expected to take `expected_ms` is when overdue.
    fn overdue_ms(&self, expected_ms: u64) -> u64 {
        let scaled = expected_ms.saturating_mul(u64::from(self.config.overdue_percent)) / 100;
        scaled.max(self.config.min_reserve_age_ms)
    }

    /// Holders within their lease and past probation. Trust is looked up
    /// only when the cap could bind.
    fn live_trusted_holders(&self, holders: &[Holder], now: Timestamp) -> usize {
        let lease = self.config.lease_ms;
        let unexpired = || {
            holders
                .iter()
                .filter(move |h| now.millis_since(h.at) < lease)
        };
        let count = unexpired().count();
        if count < self.config.max_live_holders as usize {
            return count;
        }
        unexpired().filter(|h| self.is_trusted(&h.prover)).count()
    }

    /// Whether a holder on probation got the job less than the minimum
    /// re-serve age ago.
    fn probation_raced_recently(&self, holders: &[Holder], now: Timestamp) -> bool {
        holders.iter().any(|h| {
            now.millis_since(h.at) < self.config.min_reserve_age_ms && !self.is_trusted(&h.prover)
        })
    }

    fn on_complete(
        &mut self,
        job: JobId,
        request: RequestId,
        prover: PublicKey,
        now: Timestamp,
    ) -> Completion {
        let now = self.tick(now);
        let Some(batch) = self.batches.get_mut(&job.batch) else {
            return Completion::Unknown;
        };
        let Some(slot) = batch.slot_mut(job.index) else {
            return Completion::Unknown;
        };
        match slot {
            Slot::Fresh => Completion::Unknown,
            Slot::Done {
                prover: winner,
                request: won,
                late,
                ..
            } => {
                if *won == request {
                    if *winner == prover {
                        Completion::Duplicate
                    } else {
                        Completion::WrongProver
                    }
                } else {
                    match late.iter().find(|p| p.request == request) {
                        Some(p) if p.prover == prover => Completion::Late,
                        Some(_) => Completion::WrongProver,
                        None => Completion::Unknown,
                    }
                }
            }
            Slot::Pending { key, holders } => {
                let took = match holders.as_slice().iter().find(|h| h.request == request) {
                    None => return Completion::Unknown,
                    Some(h) if h.prover != prover => return Completion::WrongProver,
                    Some(h) => now.millis_since(h.at),
                };
                let key = *key;
                let holders = std::mem::take(holders);
                let winner = self.provers.entry(ProverKey::of(&prover)).or_default();
                winner.proven = winner.proven.saturating_add(1);
                winner.learn(took);
                self.job_times.learn(took);
                for h in holders.as_slice() {
                    remove_holding(&mut self.provers, &h.prover, h.request);
                    self.heard.remove(&h.request);
                }
                let late = holders.into_others(request);
                let superseded = u32::try_from(late.len()).unwrap_or(u32::MAX);
                *slot = Slot::Done {
                    prover,
                    request,
                    at: now,
                    late,
                };
                self.queue.remove(&key);
                self.pending -= 1;
                self.done += 1;
                let progress = &mut batch.progress;
                progress.done += 1;
                Completion::Accepted {
                    superseded,
                    batch_finished: progress.is_finished(),
                }
            }
        }
    }

    fn on_invalid(
        &mut self,
        job: JobId,
        request: RequestId,
        prover: PublicKey,
        now: Timestamp,
    ) -> StrikeOutcome {
        let now = self.tick(now);
        match self.slot_mut(job) {
            None | Some(Slot::Fresh) => StrikeOutcome::Unknown,
            Some(Slot::Done {
                prover: winner,
                request: won,
                late,
                ..
            }) => {
                if *won == request {
                    return if *winner == prover {
                        StrikeOutcome::AlreadyAccepted
                    } else {
                        StrikeOutcome::WrongProver
                    };
                }
                let Some(i) = late.iter().position(|p| p.request == request) else {
                    return StrikeOutcome::Unknown;
                };
                if late[i].prover != prover {
                    return StrikeOutcome::WrongProver;
                }
                // One issued pair earns at most one strike.
                late.remove(i);
                self.strike(prover, now)
            }
            Some(Slot::Pending { .. }) => match self.take_holder(job, request, &prover) {
                Ok(_) => self.strike(prover, now),
                Err(HolderMiss::WrongProver) => StrikeOutcome::WrongProver,
                Err(HolderMiss::Unknown) => StrikeOutcome::Unknown,
            },
        }
    }

    fn on_release(
        &mut self,
        job: JobId,
        request: RequestId,
        prover: PublicKey,
        now: Timestamp,
    ) -> ReleaseOutcome {
        self.tick(now);
        match self.slot(job) {
            None | Some(Slot::Fresh) => ReleaseOutcome::Unknown,
            Some(Slot::Done { .. }) => ReleaseOutcome::AlreadyDone,
            Some(Slot::Pending { .. }) => match self.take_holder(job, request, &prover) {
                Ok(orphaned) => ReleaseOutcome::Released { orphaned },
                Err(HolderMiss::WrongProver) => ReleaseOutcome::WrongProver,
                Err(HolderMiss::Unknown) => ReleaseOutcome::Unknown,
            },
        }
    }

    /// Voids `prover`'s hand-out `request` of pending `job`, keeping the job's
    /// queue place at its latest remaining hand-out (or among the orphans when
    /// none is left). Returns whether the job is now orphaned.
    fn take_holder(
        &mut self,
        job: JobId,
        request: RequestId,
        prover: &PublicKey,
    ) -> std::result::Result<bool, HolderMiss> {
        let Some(Slot::Pending { key, holders }) = self
            .batches
            .get_mut(&job.batch)
            .and_then(|b| b.slot_mut(job.index))
        else {
            return Err(HolderMiss::Unknown);
        };
        let i = holders
            .as_slice()
            .iter()
            .position(|h| h.request == request)
            .ok_or(HolderMiss::Unknown)?;
        if holders.as_slice()[i].prover != *prover {
            return Err(HolderMiss::WrongProver);
        }
        let gone = holders.remove(i);
        if key.lane == Lane::Held && key.request == gone.request {
            let (new_key, at) = match holders.as_slice().last() {
                Some(last) => (
                    QueueKey {
                        lane: Lane::Held,
                        request: last.request,
                    },
                    last.at,
                ),
                None => (
                    QueueKey {
                        lane: Lane::Orphan,
                        request: gone.request,
                    },
                    gone.at,
                ),
            };
            self.queue.remove(key);
            self.queue.insert(new_key, QueueEntry { job, at });
            *key = new_key;
        }
        let orphaned = holders.as_slice().is_empty();
        remove_holding(&mut self.provers, prover, request);
        self.heard.remove(&request);
        Ok(orphaned)
    }

    fn strike(&mut self, prover: PublicKey, now: Timestamp) -> StrikeOutcome {
        let state = self.provers.entry(ProverKey::of(&prover)).or_default();
        state.strikes = state.strikes.saturating_add(1);
        let doublings = (state.strikes - 1).min(32);
        let cooldown = self
            .config
            .strike_cooldown_ms
            .saturating_mul(1u64 << doublings);
        state.cooldown_until = now.plus_millis(cooldown);
        StrikeOutcome::Struck {
            strikes: state.strikes,
            cooldown_until: state.cooldown_until,
            banned: state.strikes >= self.config.max_strikes,
        }
    }

    fn on_heartbeat(
        &mut self,
        job: JobId,
        request: RequestId,
        prover: PublicKey,
        now: Timestamp,
    ) -> HeartbeatOutcome {
        let now = self.tick(now);
        let holders = match self.slot(job) {
            None | Some(Slot::Fresh) => return HeartbeatOutcome::Unknown,
            Some(Slot::Done { .. }) => return HeartbeatOutcome::AlreadyDone,
            Some(Slot::Pending { holders, .. }) => holders.as_slice(),
        };
        match holders.iter().find(|h| h.request == request) {
            None => return HeartbeatOutcome::Unknown,
            Some(h) if h.prover != prover => return HeartbeatOutcome::WrongProver,
            Some(_) => {}
        }
        let gap = self.config.heartbeat_silence_ms / 6;
        if let Some(last) = self.heard.get(&request)
            && now.millis_since(*last) < gap
        {
            return HeartbeatOutcome::TooSoon;
        }
        self.heard.insert(request, now);
        HeartbeatOutcome::Noted
    }

    fn on_pardon(&mut self, prover: PublicKey) -> u32 {
        let key = ProverKey::of(&prover);
        let Some(state) = self.provers.get_mut(&key) else {
            return 0;
        };
        let cleared = std::mem::take(&mut state.strikes);
        state.cooldown_until = Timestamp(0);
        if state.is_blank() {
            self.provers.remove(&key);
        }
        cleared
    }

    fn on_forget(&mut self, batch: BatchId) -> ForgetOutcome {
        let Some(state) = self.batches.get(&batch) else {
            return ForgetOutcome::Unknown;
        };
        let progress = state.progress;
        if !progress.is_finished() {
            return ForgetOutcome::NotFinished {
                remaining: progress.total - progress.done,
            };
        }
        // A finished batch's jobs are all done: no queue entries, no holdings.
        let Some(state) = self.batches.remove(&batch) else {
            return ForgetOutcome::Unknown;
        };
        self.done -= progress.done;
        ForgetOutcome::Forgotten {
            jobs: state.job_count(),
        }
    }
}

/// Shorthands for the unit tests: each runs exactly what [`Lrp::apply`]
/// runs for its event. Outside tests `apply` is the only way state changes.
#[cfg(test)]
impl Lrp {
    /// [`LrpEvent::Submit`].
    pub(crate) fn submit(&mut self, jobs: impl IntoIterator<Item = JobId>) -> SubmitOutcome {
        let jobs: Vec<JobId> = jobs.into_iter().collect();
        self.on_submit(&jobs)
    }

    /// [`LrpEvent::Request`].
    pub(crate) fn request(&mut self, prover: PublicKey, now: Timestamp) -> Decision {
        self.on_request(prover, now)
    }

    /// [`LrpEvent::Complete`].
    pub(crate) fn complete(
        &mut self,
        job: JobId,
        request: RequestId,
        prover: PublicKey,
        now: Timestamp,
    ) -> Completion {
        self.on_complete(job, request, prover, now)
    }

    /// [`LrpEvent::Invalid`].
    pub(crate) fn invalid(
        &mut self,
        job: JobId,
        request: RequestId,
        prover: PublicKey,
        now: Timestamp,
    ) -> StrikeOutcome {
        self.on_invalid(job, request, prover, now)
    }

    /// [`LrpEvent::Release`].
    pub(crate) fn release(
        &mut self,
        job: JobId,
        request: RequestId,
        prover: PublicKey,
        now: Timestamp,
    ) -> ReleaseOutcome {
        self.on_release(job, request, prover, now)
    }

    /// [`LrpEvent::Pardon`]; returns the strikes cleared.
    pub(crate) fn pardon(&mut self, prover: PublicKey) -> u32 {
        self.on_pardon(prover)
    }

    /// [`LrpEvent::Forget`].
    pub(crate) fn forget_batch(&mut self, batch: BatchId) -> ForgetOutcome {
        self.on_forget(batch)
    }

    /// Credits `prover` with `proven` accepted proofs, as if it had earned
    /// them, so a test of another rule starts past probation.
    pub(crate) fn vouch(&mut self, prover: PublicKey, proven: u32) {
        self.provers
            .entry(ProverKey::of(&prover))
            .or_default()
            .proven = proven;
    }
}

/// The scheduler's whole state as plain data, so a log can be compacted: a
/// restart restores the snapshot ([`Lrp::restore`]) and replays only the
/// events logged after it, with the same outcomes as replaying everything.
/// Maps are listed sorted by key, so equal states give equal snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LrpSnapshot {
    clock: Timestamp,
    next_request: u64,
    fresh: Vec<JobId>,
    /// Re-serve queue entries: orphan lane?, request id, job, hand-out time.
    queue: Vec<(bool, RequestId, JobId, Timestamp)>,
    /// Provers: key, strikes, accepted proofs, cooldown end, holdings still
    /// held.
    provers: Vec<(PublicKey, u32, u32, Timestamp, Vec<Holding>)>,
    batches: Vec<BatchSnapshot>,
    pending: u64,
    done: u64,
    /// Provers' learnt job times: key, average ms, samples (only provers
    /// with samples).
    job_times: Vec<(PublicKey, u64, u32)>,
    /// The recent accepted holding times, oldest first.
    recent: Vec<u64>,
    /// First hand-outs and backups, the backup budget's counters.
    first_handouts: u64,
    backups: u64,
    /// Live hand-outs' last heartbeats, by request id.
    heard: Vec<(RequestId, Timestamp)>,
    /// The last resume.
    resumed_at: Timestamp,
}

/// An [`LrpSnapshot`] as format-3 job stores hold it, written before the
/// scheduler learnt job times: decode such bytes as this and convert (the
/// conversion knows no job times, as the scheduler that wrote it did not).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LrpSnapshotV3 {
    clock: Timestamp,
    next_request: u64,
    fresh: Vec<JobId>,
    queue: Vec<(bool, RequestId, JobId, Timestamp)>,
    provers: Vec<(PublicKey, u32, u32, Timestamp, Vec<Holding>)>,
    batches: Vec<BatchSnapshot>,
    pending: u64,
    done: u64,
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
type BatchSnapshot = (BatchId, BatchProgress, Vec<(u32, SlotSnapshot)>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum SlotSnapshot {
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
        let lane = |l: Lane| matches!(l, Lane::Orphan);
        let mut provers: Vec<_> = self
            .provers
            .iter()
            .map(|(k, p)| {
                let held = p.held().to_vec();
                (k.0, p.strikes, p.proven, p.cooldown_until, held)
            })
            .collect();
        provers.sort_by_key(|p| p.0);
        let mut job_times: Vec<_> = self
            .provers
            .iter()
            .filter(|(_, p)| p.samples > 0)
            .map(|(k, p)| (k.0, p.job_time_ms, p.samples))
            .collect();
        job_times.sort_by_key(|p| p.0);
        let mut batches: Vec<_> = self
            .batches
            .iter()
            .map(|(id, b)| {
                let mut slots: Vec<(u32, SlotSnapshot)> = b
                    .dense
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| s.as_ref().map(|s| (i as u32, s)))
                    .chain(b.sparse.iter().map(|(i, s)| (*i, s)))
                    .map(|(i, slot)| {
                        let snap = match slot {
                            Slot::Fresh => SlotSnapshot::Fresh,
                            Slot::Pending { key, holders } => SlotSnapshot::Pending {
                                orphan: lane(key.lane),
                                request: key.request,
                                holders: holders.as_slice().to_vec(),
                            },
                            Slot::Done {
                                prover,
                                request,
                                at,
                                late,
                            } => SlotSnapshot::Done {
                                prover: *prover,
                                request: *request,
                                at: *at,
                                late: late.clone(),
                            },
                        };
                        (i, snap)
                    })
                    .collect();
                slots.sort_by_key(|(i, _)| *i);
                (*id, b.progress, slots)
            })
            .collect();
        batches.sort_by_key(|(id, _, _)| *id);
        LrpSnapshot {
            clock: self.clock,
            next_request: self.next_request,
            fresh: self.fresh.iter().copied().collect(),
            queue: self
                .queue
                .iter()
                .map(|(k, e)| (lane(k.lane), k.request, e.job, e.at))
                .collect(),
            provers,
            batches,
            pending: self.pending,
            done: self.done,
            job_times,
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
        let lane = |orphan: bool| if orphan { Lane::Orphan } else { Lane::Held };
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
        for (key, strikes, proven, cooldown_until, holdings) in &snapshot.provers {
            lrp.provers.insert(
                ProverKey::of(key),
                ProverState {
                    strikes: *strikes,
                    proven: *proven,
                    cooldown_until: *cooldown_until,
                    holdings: holdings.clone(),
                    gone: 0,
                    job_time_ms: 0,
                    samples: 0,
                },
            );
        }
        for (key, job_time_ms, samples) in &snapshot.job_times {
            let state = lrp.provers.entry(ProverKey::of(key)).or_default();
            state.job_time_ms = *job_time_ms;
            state.samples = *samples;
        }
        for &took in &snapshot.recent {
            lrp.job_times.learn(took);
        }
        lrp.job_times.first_handouts = snapshot.first_handouts;
        lrp.job_times.backups = snapshot.backups;
        lrp.heard = snapshot.heard.iter().copied().collect();
        lrp.resumed_at = snapshot.resumed_at;
        for (id, progress, slots) in &snapshot.batches {
            let mut state = BatchState {
                progress: *progress,
                ..BatchState::default()
            };
            for (index, slot) in slots {
                let slot = match slot {
                    SlotSnapshot::Fresh => Slot::Fresh,
                    SlotSnapshot::Pending {
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
                    SlotSnapshot::Done {
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
                };
                state.add(*index, slot);
            }
            lrp.batches.insert(*id, state);
        }
        lrp.pending = snapshot.pending;
        lrp.done = snapshot.done;
        Ok(lrp)
    }
}

enum HolderMiss {
    WrongProver,
    Unknown,
}

/// Drops a prover's holding; forgets the prover once nothing about it is
/// worth keeping ([`ProverState::is_blank`]), so memory follows the crowd
/// that works or misbehaves, not every key that ever asked.
fn remove_holding(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    fn p(n: u8) -> PublicKey {
        PublicKey([n; 32])
    }

    fn j(batch: u64, index: u32) -> JobId {
        JobId::new(BatchId(batch), index)
    }

    fn t(ms: u64) -> Timestamp {
        Timestamp(ms)
    }

    /// Knobs that make each test's rule visible: no min age, generous caps.
    fn open() -> LrpConfig {
        LrpConfig {
            min_reserve_age_ms: 0,
            lease_ms: 1_000_000,
            max_live_holders: 100,
            max_held_per_prover: 100,
            strike_cooldown_ms: 100,
            max_strikes: 3,
            max_reserve_scan: 64,
            idle_retry_ms: 500,
            first_request_id: 1,
            policy: ReservePolicy::Lrp,
            ..LrpConfig::default()
        }
    }

    /// Provers `p(1)` to `p(TRUSTED)` start past probation in [`lrp_with`];
    /// higher numbers are new identities.
    const TRUSTED: u8 = 9;

    /// A scheduler with `jobs` fresh jobs of batch 1 and provers up to
    /// [`TRUSTED`] past probation, so each test sees only its own rule.
    fn lrp_with(config: LrpConfig, jobs: u32) -> Lrp {
        let mut lrp = Lrp::new(config).unwrap();
        for n in 1..=TRUSTED {
            lrp.vouch(p(n), 1_000);
        }
        lrp.submit((0..jobs).map(|i| j(1, i)));
        lrp
    }

    #[track_caller]
    fn assigned(d: Decision) -> Handout {
        match d {
            Decision::Assign(h) => h,
            other => panic!("expected a hand-out, got {other:?}"),
        }
    }

    #[test]
    fn fresh_jobs_go_first_in_submit_order() {
        let mut lrp = lrp_with(open(), 3);
        let a = assigned(lrp.request(p(1), t(0)));
        let b = assigned(lrp.request(p(1), t(0)));
        let c = assigned(lrp.request(p(2), t(0)));
        assert_eq!(
            [a.job, b.job, c.job],
            [j(1, 0), j(1, 1), j(1, 2)],
            "fresh jobs in submit order"
        );
        assert!(!a.reserve && !b.reserve && !c.reserve);
        assert_eq!(
            [a.request, b.request, c.request],
            [RequestId(1), RequestId(2), RequestId(3)]
        );
        // Re-serves start only once the fresh queue is empty.
        lrp.submit([j(2, 0)]);
        let d = assigned(lrp.request(p(3), t(1)));
        assert_eq!((d.job, d.reserve), (j(2, 0), false));
        let e = assigned(lrp.request(p(3), t(1)));
        assert!(e.reserve);
        assert_eq!(
            lrp.counts(),
            LrpCounts {
                fresh: 0,
                pending: 4,
                done: 0
            }
        );
    }

    #[test]
    fn reserves_go_in_least_recently_handed_out_order_and_move_to_the_tail() {
        let mut lrp = lrp_with(open(), 3);
        for _ in 0..3 {
            assigned(lrp.request(p(1), t(0)));
        }
        // p2 re-serves j0, j1, j2 in order, each moving to the tail.
        let order: Vec<JobId> = (0..3)
            .map(|i| assigned(lrp.request(p(2), t(10 + i))).job)
            .collect();
        assert_eq!(order, [j(1, 0), j(1, 1), j(1, 2)]);
        // p3 again sees j0 first: it was handed out least recently (to p2 at 10).
        let next = assigned(lrp.request(p(3), t(20)));
        assert_eq!((next.job, next.reserve), (j(1, 0), true));
        // ...and it is now at the tail, so p4 gets j1.
        assert_eq!(assigned(lrp.request(p(4), t(21))).job, j(1, 1));
        match lrp.job(j(1, 0)) {
            Some(JobView::Pending { holders }) => {
                let who: Vec<PublicKey> = holders.iter().map(|h| h.prover).collect();
                assert_eq!(who, [p(1), p(2), p(3)]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_prover_never_gets_a_job_it_holds() {
        let mut lrp = lrp_with(open(), 3);
        assigned(lrp.request(p(1), t(0))); // j0
        assigned(lrp.request(p(1), t(0))); // j1
        assigned(lrp.request(p(2), t(0))); // j2
        // The queue is j0, j1, j2; p1 holds the first two, so it gets j2.
        let h = assigned(lrp.request(p(1), t(5)));
        assert_eq!((h.job, h.reserve), (j(1, 2), true));
        // Now p1 holds every job: nothing can go to it.
        assert_eq!(
            lrp.request(p(1), t(6)),
            Decision::NoWork { retry_at: t(506) }
        );
        // p2 holds only j2, so it takes the head.
        assert_eq!(assigned(lrp.request(p(2), t(7))).job, j(1, 0));
    }

    #[test]
    fn min_age_holds_back_reserves_and_says_when_to_retry() {
        let config = LrpConfig {
            min_reserve_age_ms: 100,
            idle_retry_ms: 1_000,
            ..open()
        };
        let mut lrp = lrp_with(config, 2);
        assigned(lrp.request(p(1), t(0)));
        assigned(lrp.request(p(1), t(40)));
        assert_eq!(
            lrp.request(p(2), t(99)),
            Decision::NoWork { retry_at: t(100) }
        );
        let h = assigned(lrp.request(p(2), t(100)));
        assert_eq!((h.job, h.reserve), (j(1, 0), true));
        // j1 (handed out at 40) is ready at 140; j0 was just handed out again.
        assert_eq!(
            lrp.request(p(3), t(139)),
            Decision::NoWork { retry_at: t(140) }
        );
        assert_eq!(assigned(lrp.request(p(3), t(140))).job, j(1, 1));
        // A ready time further off than the idle retry is capped by it.
        let mut lrp = lrp_with(
            LrpConfig {
                min_reserve_age_ms: 10_000,
                idle_retry_ms: 1_000,
                ..open()
            },
            1,
        );
        assigned(lrp.request(p(1), t(0)));
        assert_eq!(
            lrp.request(p(2), t(5)),
            Decision::NoWork { retry_at: t(1_005) }
        );
    }

    #[test]
    fn holder_cap_skips_full_jobs() {
        let config = LrpConfig {
            max_live_holders: 2,
            ..open()
        };
        let mut lrp = lrp_with(config, 2);
        assigned(lrp.request(p(1), t(0))); // j0 ← p1
        assigned(lrp.request(p(1), t(0))); // j1 ← p1
        assert_eq!(assigned(lrp.request(p(2), t(1))).job, j(1, 0)); // j0 full
        assert_eq!(assigned(lrp.request(p(3), t(2))).job, j(1, 1)); // j1 full
        assert_eq!(
            lrp.request(p(4), t(3)),
            Decision::NoWork { retry_at: t(503) }
        );
        // Releasing a holder frees a place on the job.
        assert_eq!(
            lrp.release(j(1, 0), RequestId(3), p(2), t(4)),
            ReleaseOutcome::Released { orphaned: false }
        );
        assert_eq!(assigned(lrp.request(p(4), t(5))).job, j(1, 0));
    }

    #[test]
    fn expired_holders_stop_counting_toward_the_cap_but_may_still_complete() {
        let config = LrpConfig {
            max_live_holders: 1,
            lease_ms: 1_000,
            ..open()
        };
        let mut lrp = lrp_with(config, 1);
        let first = assigned(lrp.request(p(1), t(0)));
        assert_eq!(
            lrp.request(p(2), t(999)),
            Decision::NoWork { retry_at: t(1_499) }
        );
        let second = assigned(lrp.request(p(2), t(1_000)));
        assert!(second.reserve);
        // The stalled holder's id stays valid: a slow but honest proof wins.
        assert_eq!(
            lrp.complete(first.job, first.request, p(1), t(1_500)),
            Completion::Accepted {
                superseded: 1,
                batch_finished: true
            }
        );
        assert_eq!(
            lrp.complete(second.job, second.request, p(2), t(1_600)),
            Completion::Late
        );
    }

    #[test]
    fn per_prover_cap_counts_live_holdings_only() {
        let config = LrpConfig {
            max_held_per_prover: 2,
            lease_ms: 1_000,
            ..open()
        };
        let mut lrp = lrp_with(config, 5);
        assigned(lrp.request(p(1), t(0)));
        assigned(lrp.request(p(1), t(300)));
        assert_eq!(
            lrp.request(p(1), t(400)),
            Decision::Refused(Refusal::AtCapacity {
                held: 2,
                retry_at: t(1_000)
            })
        );
        // Once the oldest hand-out's lease runs out, a crashed-and-restarted
        // prover is not locked out by its stale holdings.
        let h = assigned(lrp.request(p(1), t(1_000)));
        assert_eq!(h.job, j(1, 2));
        assert_eq!(lrp.prover(&p(1)).unwrap().holdings.len(), 3);
        // Completing frees a slot at once.
        assert!(matches!(
            lrp.complete(h.job, h.request, p(1), t(1_001)),
            Completion::Accepted { .. }
        ));
        assert!(matches!(lrp.request(p(1), t(1_002)), Decision::Assign(_)));
    }

    #[test]
    fn a_new_identity_holds_one_job_until_a_proof_is_accepted() {
        let config = LrpConfig {
            max_held_per_prover: 3,
            lease_ms: 1_000,
            ..open()
        };
        let mut lrp = lrp_with(config, 6);
        let newcomer = p(20);
        let first = assigned(lrp.request(newcomer, t(0)));
        assert_eq!(
            lrp.request(newcomer, t(10)),
            Decision::Refused(Refusal::AtCapacity {
                held: 1,
                retry_at: t(1_000)
            })
        );
        assert!(matches!(
            lrp.complete(first.job, first.request, newcomer, t(20)),
            Completion::Accepted { .. }
        ));
        // One accepted proof: two at a time; the cap still binds above that.
        assigned(lrp.request(newcomer, t(30)));
        assigned(lrp.request(newcomer, t(30)));
        assert!(matches!(
            lrp.request(newcomer, t(30)),
            Decision::Refused(Refusal::AtCapacity { held: 2, .. })
        ));
        let view = lrp.prover(&newcomer).unwrap();
        assert_eq!((view.proven, view.holdings.len()), (1, 2));
    }

    #[test]
    fn claiming_and_sitting_costs_the_allowance_until_the_job_is_done() {
        let config = LrpConfig {
            lease_ms: 1_000,
            ..open()
        };
        let mut lrp = lrp_with(config, 2);
        let sitter = p(20);
        let sat = assigned(lrp.request(sitter, t(0)));
        // Its lease ran out and the job is still open: no more work for it,
        // though nothing it holds is live.
        assert_eq!(
            lrp.request(sitter, t(1_000)),
            Decision::Refused(Refusal::AtCapacity {
                held: 0,
                retry_at: t(1_500)
            })
        );
        // Someone else proves the job; the sitter is back to a newcomer's one.
        let taken = assigned(lrp.request(p(1), t(1_100)));
        assert_eq!(taken.job, j(1, 1), "the fresh job goes first");
        let reserve = assigned(lrp.request(p(1), t(1_100)));
        assert_eq!(reserve.job, sat.job);
        lrp.complete(reserve.job, reserve.request, p(1), t(1_200));
        assigned(lrp.request(sitter, t(1_300)));
        assert!(matches!(
            lrp.request(sitter, t(1_300)),
            Decision::Refused(Refusal::AtCapacity { held: 1, .. })
        ));
        // A strike costs a trusted prover its standing too.
        let config = LrpConfig {
            max_held_per_prover: 2,
            ..open()
        };
        let mut lrp = lrp_with(config, 4);
        lrp.vouch(p(30), 1);
        let h = assigned(lrp.request(p(30), t(0)));
        lrp.invalid(h.job, h.request, p(30), t(1));
        assigned(lrp.request(p(30), t(1_000)));
        assert!(matches!(
            lrp.request(p(30), t(1_000)),
            Decision::Refused(Refusal::AtCapacity { held: 1, .. })
        ));
    }

    #[test]
    fn provers_on_probation_never_keep_a_job_from_a_trusted_reserve() {
        let config = LrpConfig {
            max_live_holders: 1,
            min_reserve_age_ms: 100,
            ..open()
        };
        let mut lrp = lrp_with(config, 1);
        // A new key takes the fresh job; once it is old enough a second new
        // key races it, but a third must wait the minimum age again.
        assigned(lrp.request(p(20), t(0)));
        assert!(matches!(lrp.request(p(21), t(50)), Decision::NoWork { .. }));
        assert!(assigned(lrp.request(p(21), t(100))).reserve);
        assert!(matches!(
            lrp.request(p(22), t(150)),
            Decision::NoWork { .. }
        ));
        // Neither moved the job in the queue nor counts toward the holder
        // cap: a trusted prover gets it at once, and then the cap binds.
        assert!(assigned(lrp.request(p(1), t(150))).reserve);
        assert!(matches!(lrp.request(p(2), t(160)), Decision::NoWork { .. }));
        // A job with its trusted holders is covered, for new keys too.
        assert!(matches!(
            lrp.request(p(22), t(250)),
            Decision::NoWork { .. }
        ));
        match lrp.job(j(1, 0)) {
            Some(JobView::Pending { holders }) => assert_eq!(holders.len(), 3),
            other => panic!("{other:?}"),
        }
    }

    /// Many new keys poll fast and never submit; one honest prover takes
    /// 500 ms a proof. With a trusted prover the batch finishes in a time set
    /// by the prover and the minimum re-serve age, not by the size of the
    /// crowd; a new honest key gets in once the sitters hold their one job
    /// each.
    #[test]
    fn a_crowd_of_sitters_cannot_stall_a_batch() {
        for (sitters, honest, within) in [
            (24u32, p(1), 5_000),
            (2_000, p(1), 5_000),
            (24, p(40), 10_000),
        ] {
            let config = LrpConfig {
                min_reserve_age_ms: 1_000,
                lease_ms: 10_000,
                max_live_holders: 2,
                max_held_per_prover: 2,
                ..open()
            };
            let mut lrp = lrp_with(config, 8);
            let sitter = |n: u32| {
                let mut key = [0xee; 32];
                key[..4].copy_from_slice(&n.to_le_bytes());
                PublicKey(key)
            };
            let mut proving: Vec<(Handout, Timestamp)> = Vec::new();
            let mut sitter_handouts = 0u32;
            let mut now = 0;
            while !lrp.is_finished(BatchId(1)) {
                assert!(now < within, "{sitters} sitters: not done at {now} ms");
                for n in 0..sitters {
                    if matches!(lrp.request(sitter(n), t(now)), Decision::Assign(_)) {
                        sitter_handouts += 1;
                    }
                }
                while let Some(i) = proving.iter().position(|(_, at)| now >= at.0 + 500) {
                    let (h, _) = proving.remove(i);
                    lrp.complete(h.job, h.request, honest, t(now));
                }
                while let Decision::Assign(h) = lrp.request(honest, t(now)) {
                    proving.push((h, t(now)));
                }
                now += 50;
            }
            // Sitters race each job at most once per minimum age, however
            // many they are.
            let bound = 8 * (1 + now / 1_000);
            assert!(
                u64::from(sitter_handouts) <= bound,
                "{sitters}: {sitter_handouts} hand-outs to sitters in {now} ms"
            );
            let proofs = lrp.prover(&honest).map_or(0, |v| v.proven);
            assert!(proofs >= 8, "the honest prover proved the batch");
        }
    }

    #[test]
    fn strikes_cool_down_then_ban_and_only_count_for_issued_pairs() {
        let mut lrp = lrp_with(open(), 10);
        let h = assigned(lrp.request(p(1), t(0)));
        // Forged pairs, other provers' pairs and fresh jobs earn no strike.
        assert_eq!(
            lrp.invalid(h.job, RequestId(99), p(1), t(1)),
            StrikeOutcome::Unknown
        );
        assert_eq!(
            lrp.invalid(h.job, h.request, p(2), t(1)),
            StrikeOutcome::WrongProver
        );
        assert_eq!(
            lrp.invalid(j(1, 5), RequestId(1), p(1), t(1)),
            StrikeOutcome::Unknown
        );
        assert_eq!(
            lrp.invalid(j(9, 0), h.request, p(1), t(1)),
            StrikeOutcome::Unknown
        );
        assert_eq!(lrp.strikes(&p(1)), 0);
        assert_eq!(lrp.strikes(&p(2)), 0);

        assert_eq!(
            lrp.invalid(h.job, h.request, p(1), t(10)),
            StrikeOutcome::Struck {
                strikes: 1,
                cooldown_until: t(110),
                banned: false
            }
        );
        // The voided pair cannot strike twice, nor complete.
        assert_eq!(
            lrp.invalid(h.job, h.request, p(1), t(11)),
            StrikeOutcome::Unknown
        );
        assert_eq!(
            lrp.complete(h.job, h.request, p(1), t(11)),
            Completion::Unknown
        );
        assert_eq!(
            lrp.request(p(1), t(109)),
            Decision::Refused(Refusal::Cooldown {
                strikes: 1,
                until: t(110)
            })
        );
        let h = assigned(lrp.request(p(1), t(110)));
        // The cooldown doubles with each strike.
        assert!(matches!(
            lrp.invalid(h.job, h.request, p(1), t(120)),
            StrikeOutcome::Struck { strikes: 2, cooldown_until, banned: false } if cooldown_until == t(320)
        ));
        let h = assigned(lrp.request(p(1), t(320)));
        assert!(matches!(
            lrp.invalid(h.job, h.request, p(1), t(330)),
            StrikeOutcome::Struck {
                strikes: 3,
                banned: true,
                ..
            }
        ));
        assert_eq!(
            lrp.request(p(1), t(1_000_000)),
            Decision::Refused(Refusal::Banned { strikes: 3 })
        );
        // The operator can pardon.
        assert_eq!(lrp.pardon(p(1)), 3);
        assert!(matches!(
            lrp.request(p(1), t(1_000_001)),
            Decision::Assign(_)
        ));
    }

    #[test]
    fn late_invalid_proofs_strike_but_the_winner_does_not() {
        let mut lrp = lrp_with(open(), 1);
        let a = assigned(lrp.request(p(1), t(0)));
        let b = assigned(lrp.request(p(2), t(0)));
        assert!(matches!(
            lrp.complete(a.job, a.request, p(1), t(1)),
            Completion::Accepted { .. }
        ));
        assert_eq!(
            lrp.invalid(a.job, a.request, p(1), t(2)),
            StrikeOutcome::AlreadyAccepted
        );
        assert_eq!(
            lrp.invalid(a.job, a.request, p(2), t(2)),
            StrikeOutcome::WrongProver
        );
        assert_eq!(
            lrp.invalid(b.job, b.request, p(1), t(2)),
            StrikeOutcome::WrongProver
        );
        assert!(matches!(
            lrp.invalid(b.job, b.request, p(2), t(2)),
            StrikeOutcome::Struck { strikes: 1, .. }
        ));
        assert_eq!(
            lrp.invalid(b.job, b.request, p(2), t(3)),
            StrikeOutcome::Unknown
        );
        assert_eq!(lrp.strikes(&p(1)), 0);
    }

    #[test]
    fn struck_holders_do_not_block_the_holder_cap() {
        let config = LrpConfig {
            max_live_holders: 1,
            ..open()
        };
        let mut lrp = lrp_with(config, 2);
        let a = assigned(lrp.request(p(1), t(0))); // j0 ← p1
        let b = assigned(lrp.request(p(1), t(0))); // j1 ← p1
        assert_eq!(
            lrp.request(p(2), t(1)),
            Decision::NoWork { retry_at: t(501) }
        );
        // p1 lies about j1: p1 is struck, so its hold on j0 no longer counts.
        assert!(matches!(
            lrp.invalid(b.job, b.request, p(1), t(2)),
            StrikeOutcome::Struck { .. }
        ));
        // j1 is orphaned and goes first; then j0 is open despite p1's hold.
        assert_eq!(assigned(lrp.request(p(2), t(3))).job, j(1, 1));
        assert_eq!(assigned(lrp.request(p(3), t(3))).job, a.job);
    }

    #[test]
    fn completion_verdicts_tell_late_from_unknown_and_wrong_prover() {
        let mut lrp = lrp_with(open(), 2);
        let a = assigned(lrp.request(p(1), t(0)));
        let b = assigned(lrp.request(p(2), t(0)));
        let c = assigned(lrp.request(p(3), t(0))); // re-serve of j0
        assert_eq!((a.job, c.job), (j(1, 0), j(1, 0)));
        // Before completion: forged ids, other provers and fresh/unknown jobs.
        assert_eq!(
            lrp.complete(a.job, RequestId(77), p(1), t(1)),
            Completion::Unknown
        );
        assert_eq!(
            lrp.complete(a.job, b.request, p(2), t(1)),
            Completion::Unknown
        );
        assert_eq!(
            lrp.complete(a.job, a.request, p(3), t(1)),
            Completion::WrongProver
        );
        assert_eq!(
            lrp.complete(j(5, 0), a.request, p(1), t(1)),
            Completion::Unknown
        );
        // First valid proof wins and supersedes the other hand-out.
        assert_eq!(
            lrp.complete(c.job, c.request, p(3), t(2)),
            Completion::Accepted {
                superseded: 1,
                batch_finished: false
            }
        );
        assert_eq!(lrp.complete(a.job, a.request, p(1), t(3)), Completion::Late);
        assert_eq!(
            lrp.complete(c.job, c.request, p(3), t(3)),
            Completion::Duplicate
        );
        assert_eq!(
            lrp.complete(c.job, c.request, p(1), t(3)),
            Completion::WrongProver
        );
        assert_eq!(
            lrp.complete(a.job, a.request, p(2), t(3)),
            Completion::WrongProver
        );
        assert_eq!(
            lrp.complete(a.job, RequestId(77), p(1), t(3)),
            Completion::Unknown
        );
        assert!(
            matches!(lrp.job(a.job), Some(JobView::Done { prover, request, .. }) if prover == p(3) && request == c.request)
        );
        // Superseded hand-outs leave their provers' holdings.
        assert!(lrp.prover(&p(1)).unwrap().holdings.is_empty());
        assert!(lrp.prover(&p(3)).unwrap().holdings.is_empty());
        assert_eq!(
            lrp.complete(b.job, b.request, p(2), t(4)),
            Completion::Accepted {
                superseded: 0,
                batch_finished: true
            }
        );
        assert_eq!(
            lrp.counts(),
            LrpCounts {
                fresh: 0,
                pending: 0,
                done: 2
            }
        );
        assert!(lrp.is_all_finished());
    }

    #[test]
    fn release_voids_the_handout_and_an_orphan_goes_after_fresh_but_before_reserves() {
        let mut lrp = lrp_with(open(), 3);
        let a = assigned(lrp.request(p(1), t(0))); // j0
        assigned(lrp.request(p(1), t(1))); // j1
        assert_eq!(
            lrp.release(a.job, a.request, p(2), t(2)),
            ReleaseOutcome::WrongProver
        );
        assert_eq!(
            lrp.release(a.job, RequestId(50), p(1), t(2)),
            ReleaseOutcome::Unknown
        );
        assert_eq!(
            lrp.release(j(1, 2), RequestId(1), p(1), t(2)),
            ReleaseOutcome::Unknown,
            "a fresh job has no hand-outs"
        );
        assert_eq!(
            lrp.release(a.job, a.request, p(1), t(2)),
            ReleaseOutcome::Released { orphaned: true }
        );
        assert_eq!(
            lrp.complete(a.job, a.request, p(1), t(3)),
            Completion::Unknown
        );
        assert!(matches!(lrp.job(a.job), Some(JobView::Pending { holders }) if holders.is_empty()));
        // Fresh j2 still goes first.
        assert_eq!(assigned(lrp.request(p(2), t(4))).job, j(1, 2));
        // Then the orphan j0, even though j1 is older, and with no min age.
        let mut strict = lrp.clone();
        strict.config.min_reserve_age_ms = 1_000_000;
        let h = assigned(strict.request(p(2), t(5)));
        assert_eq!((h.job, h.reserve), (j(1, 0), true));
        assert_eq!(assigned(lrp.request(p(2), t(5))).job, j(1, 0));
        assert_eq!(assigned(lrp.request(p(3), t(6))).job, j(1, 1));
        // Releasing a done job's hand-out says so.
        let h = assigned(lrp.request(p(4), t(7)));
        assert!(matches!(
            lrp.complete(h.job, h.request, p(4), t(8)),
            Completion::Accepted { .. }
        ));
        assert_eq!(
            lrp.release(h.job, h.request, p(4), t(9)),
            ReleaseOutcome::AlreadyDone
        );
    }

    #[test]
    fn releasing_the_latest_handout_moves_the_job_back_to_the_one_before() {
        let mut lrp = lrp_with(open(), 2);
        assigned(lrp.request(p(1), t(0))); // j0 r1
        assigned(lrp.request(p(1), t(1))); // j1 r2
        let late = assigned(lrp.request(p(2), t(2))); // j0 r3 → tail
        assert_eq!(late.job, j(1, 0));
        // Without the release, j1 (r2) is the head; releasing r3 puts j0 back at
        // r1's place, ahead of j1.
        assert_eq!(
            lrp.release(late.job, late.request, p(2), t(3)),
            ReleaseOutcome::Released { orphaned: false }
        );
        assert_eq!(assigned(lrp.request(p(3), t(4))).job, j(1, 0));
    }

    #[test]
    fn request_ids_start_where_configured_and_run_out_without_panicking() {
        let mut lrp = lrp_with(
            LrpConfig {
                first_request_id: 1_000,
                ..open()
            },
            2,
        );
        assert_eq!(lrp.next_request_id(), RequestId(1_000));
        assert_eq!(assigned(lrp.request(p(1), t(0))).request, RequestId(1_000));
        assert_eq!(assigned(lrp.request(p(2), t(0))).request, RequestId(1_001));
        // Refusals and no-work answers consume no id.
        assert!(
            matches!(lrp.request(p(1), t(0)), Decision::Assign(h) if h.request == RequestId(1_002))
        );
        assert_eq!(lrp.next_request_id(), RequestId(1_003));

        let mut lrp = lrp_with(
            LrpConfig {
                first_request_id: u64::MAX - 1,
                ..open()
            },
            3,
        );
        assert_eq!(
            assigned(lrp.request(p(1), t(0))).request,
            RequestId(u64::MAX - 1)
        );
        assert_eq!(
            lrp.request(p(1), t(0)),
            Decision::Refused(Refusal::RequestIdsExhausted)
        );
    }

    #[test]
    fn the_scan_is_bounded() {
        let config = LrpConfig {
            max_reserve_scan: 3,
            ..open()
        };
        let mut lrp = lrp_with(config, 5);
        for _ in 0..4 {
            assigned(lrp.request(p(1), t(0)));
        }
        assigned(lrp.request(p(2), t(0))); // j4
        // p1 holds the four jobs at the head; j4 is fifth, past the scan.
        assert_eq!(
            lrp.request(p(1), t(1)),
            Decision::NoWork { retry_at: t(501) }
        );
        let mut wider = lrp.clone();
        wider.config.max_reserve_scan = 5;
        assert_eq!(assigned(wider.request(p(1), t(1))).job, j(1, 4));
    }

    #[test]
    fn time_never_runs_backwards() {
        let config = LrpConfig {
            min_reserve_age_ms: 100,
            ..open()
        };
        let mut lrp = lrp_with(config, 1);
        assigned(lrp.request(p(1), t(1_000)));
        // An event stamped earlier is taken as happening at the latest time.
        assert_eq!(
            lrp.request(p(2), t(5)),
            Decision::NoWork { retry_at: t(1_100) }
        );
        assert_eq!(lrp.clock(), t(1_000));
    }

    #[test]
    fn finished_batches_can_be_forgotten() {
        let mut lrp = Lrp::new(open()).unwrap();
        let out = lrp.submit([j(1, 0), j(1, 1), j(2, 0), j(1, 0)]);
        assert_eq!(
            out,
            SubmitOutcome {
                added: 3,
                duplicates: vec![j(1, 0)]
            }
        );
        assert_eq!(lrp.forget_batch(BatchId(9)), ForgetOutcome::Unknown);
        assert_eq!(
            lrp.forget_batch(BatchId(1)),
            ForgetOutcome::NotFinished { remaining: 2 }
        );
        let mut done = 0;
        while !lrp.is_finished(BatchId(1)) {
            let h = assigned(lrp.request(p(1), t(0)));
            if h.job.batch == BatchId(1) {
                assert!(matches!(
                    lrp.complete(h.job, h.request, p(1), t(0)),
                    Completion::Accepted { .. }
                ));
                done += 1;
            }
        }
        assert_eq!(done, 2);
        assert_eq!(
            lrp.batch(BatchId(1)),
            Some(BatchProgress { total: 2, done: 2 })
        );
        assert!(!lrp.is_finished(BatchId(2)));
        assert_eq!(
            lrp.forget_batch(BatchId(1)),
            ForgetOutcome::Forgotten { jobs: 2 }
        );
        assert_eq!(lrp.batch(BatchId(1)), None);
        assert_eq!(lrp.job(j(1, 0)), None);
        assert_eq!(lrp.job(j(2, 0)), Some(JobView::Fresh));
        assert_eq!(
            lrp.counts(),
            LrpCounts {
                fresh: 1,
                pending: 0,
                done: 0
            }
        );
        // A proof for a forgotten job is unknown.
        assert_eq!(
            lrp.complete(j(1, 0), RequestId(1), p(1), t(1)),
            Completion::Unknown
        );
        assert_eq!(lrp.forget_batch(BatchId(1)), ForgetOutcome::Unknown);
    }

    #[test]
    fn sparse_and_huge_job_indices_are_kept_apart_from_dense_ones() {
        let mut lrp = Lrp::new(open()).unwrap();
        // A huge index first, then a run that grows the dense part over it.
        let ids = [j(1, u32::MAX), j(1, 5_000), j(1, 0), j(1, 4_000)];
        assert_eq!(lrp.submit(ids).added, 4);
        assert_eq!(lrp.submit((0..5_001).map(|i| j(1, i))).added, 4_998);
        assert_eq!(
            lrp.submit([j(1, u32::MAX), j(1, 4_000)]).duplicates.len(),
            2
        );
        assert_eq!(lrp.job(j(1, u32::MAX)), Some(JobView::Fresh));
        assert_eq!(lrp.job(j(1, 5_001)), None);
        let first = assigned(lrp.request(p(1), t(0)));
        assert_eq!(first.job, j(1, u32::MAX));
        assert!(matches!(
            lrp.complete(first.job, first.request, p(1), t(1)),
            Completion::Accepted { .. }
        ));
        assert!(matches!(lrp.job(first.job), Some(JobView::Done { .. })));
        while !lrp.is_all_finished() {
            let h = assigned(lrp.request(p(1), t(2)));
            lrp.complete(h.job, h.request, p(1), t(2));
        }
        assert_eq!(
            lrp.forget_batch(BatchId(1)),
            ForgetOutcome::Forgotten { jobs: 5_002 }
        );
        assert_eq!(lrp.job(j(1, 4_000)), None);
    }

    #[test]
    fn holdings_stay_in_order_whichever_goes_first() {
        let mut lrp = lrp_with(open(), 8);
        let mut held: Vec<Handout> = (0..6).map(|_| assigned(lrp.request(p(1), t(0)))).collect();
        // Oldest, middle, oldest again, then the rest; a new one in between.
        for pick in [0, 2, 0, 0] {
            let h = held.remove(pick);
            lrp.complete(h.job, h.request, p(1), t(1));
            if pick == 2 {
                held.push(assigned(lrp.request(p(1), t(1))));
            }
            let view: Vec<RequestId> = lrp
                .prover(&p(1))
                .unwrap()
                .holdings
                .iter()
                .map(|h| h.request)
                .collect();
            let want: Vec<RequestId> = held.iter().map(|h| h.request).collect();
            assert_eq!(view, want);
        }
        for h in held.drain(..) {
            lrp.complete(h.job, h.request, p(1), t(2));
        }
        assert!(lrp.prover(&p(1)).unwrap().holdings.is_empty());
    }

    #[test]
    fn provers_are_kept_only_for_holdings_strikes_or_accepted_proofs() {
        let mut lrp = Lrp::new(open()).unwrap();
        lrp.submit((0..3).map(|i| j(1, i)));
        // A key that claims and gives back leaves nothing behind.
        let h = assigned(lrp.request(p(20), t(0)));
        assert_eq!(lrp.provers().count(), 1);
        lrp.release(h.job, h.request, p(20), t(1));
        assert_eq!(lrp.provers().count(), 0);
        // An accepted proof is remembered: it is what lifts probation.
        let h = assigned(lrp.request(p(21), t(2)));
        assert!(matches!(
            lrp.complete(h.job, h.request, p(21), t(3)),
            Completion::Accepted { .. }
        ));
        let view = lrp.prover(&p(21)).unwrap();
        assert_eq!((view.proven, view.holdings.len()), (1, 0));
        // So is a strike.
        let h = assigned(lrp.request(p(22), t(4)));
        lrp.invalid(h.job, h.request, p(22), t(5));
        let view = lrp.prover(&p(22)).unwrap();
        assert_eq!((view.strikes, view.holdings.len()), (1, 0));
        assert_eq!(lrp.provers().count(), 2);
    }

    #[test]
    fn config_is_validated() {
        assert!(Lrp::new(LrpConfig::default()).is_ok());
        for broken in [
            LrpConfig {
                lease_ms: 0,
                ..LrpConfig::default()
            },
            LrpConfig {
                max_live_holders: 0,
                ..LrpConfig::default()
            },
            LrpConfig {
                max_held_per_prover: 0,
                ..LrpConfig::default()
            },
            LrpConfig {
                max_strikes: 0,
                ..LrpConfig::default()
            },
            LrpConfig {
                max_reserve_scan: 0,
                ..LrpConfig::default()
            },
            LrpConfig {
                first_request_id: 0,
                ..LrpConfig::default()
            },
        ] {
            let err = Lrp::new(broken).unwrap_err();
            assert!(err.to_string().contains("must be at least 1"), "{err}");
        }
    }

    #[test]
    fn replaying_the_encoded_log_gives_the_same_outcomes() {
        let config = LrpConfig {
            min_reserve_age_ms: 10,
            max_live_holders: 2,
            ..open()
        };
        // A live run logs its events, answering each hand-out one of four ways
        // (and sometimes with a stranger's request id).
        let mut live = Lrp::new(config.clone()).unwrap();
        let mut events = vec![LrpEvent::Submit {
            jobs: (0..4).map(|i| j(1, i)).collect(),
        }];
        let mut live_outcomes = vec![live.apply(&events[0])];
        for i in 0..40u64 {
            let prover = p((i % 5) as u8);
            let now = t(i * 7);
            let asked = LrpEvent::Request { prover, now };
            let decision = live.apply(&asked);
            live_outcomes.push(decision.clone());
            events.push(asked);
            let (job, request) = match decision {
                LrpOutcome::Decided(Decision::Assign(h)) if i % 7 != 6 => (h.job, h.request),
                _ => (j(1, (i % 4) as u32), RequestId(i / 2 + 1)),
            };
            let answer = match i % 4 {
                0 => LrpEvent::Complete {
                    job,
                    request,
                    prover,
                    now,
                },
                1 => LrpEvent::Invalid {
                    job,
                    request,
                    prover,
                    now,
                },
                2 => LrpEvent::Release {
                    job,
                    request,
                    prover,
                    now,
                },
                _ => LrpEvent::Pardon { prover },
            };
            live_outcomes.push(live.apply(&answer));
            events.push(answer);
        }
        events.push(LrpEvent::Forget { batch: BatchId(1) });
        live_outcomes.push(live.apply(&events[events.len() - 1]));
        let (first, outcomes) = Lrp::replay(config.clone(), &events).unwrap();
        assert_eq!(outcomes, live_outcomes);
        let bytes = codec::encode(&events);
        let decoded: Vec<LrpEvent> = codec::decode(&bytes, bytes.len()).unwrap();
        let (second, again) = Lrp::replay(config, &decoded).unwrap();
        assert_eq!(outcomes, again);
        assert_eq!(first.counts(), second.counts());
        assert_eq!(first.next_request_id(), second.next_request_id());
        // The log exercised more than one kind of outcome.
        assert!(
            outcomes
                .iter()
                .any(|o| matches!(o, LrpOutcome::Completed(Completion::Accepted { .. })))
        );
        assert!(
            outcomes
                .iter()
                .any(|o| matches!(o, LrpOutcome::Invalidated(StrikeOutcome::Struck { .. })))
        );
    }

    /// Knobs for the adaptive rule's tests: a 10 s prior, overdue at 2×,
    /// no minimum age, no backups and no heartbeat rule unless a test
    /// allows them.
    fn adaptive() -> LrpConfig {
        LrpConfig {
            policy: ReservePolicy::Adaptive,
            job_time_prior_ms: 10_000,
            overdue_percent: 200,
            backup_percent: 0,
            heartbeat_silence_ms: 0,
            idle_retry_ms: 60_000,
            ..open()
        }
    }

    /// Each prover takes a job at 0 and proves it in its time (listed in
    /// increasing time: the clock never runs back).
    fn learn_times(lrp: &mut Lrp, times: &[(PublicKey, u64)]) {
        let held: Vec<_> = times
            .iter()
            .map(|&(q, _)| assigned(lrp.request(q, t(0))))
            .collect();
        for (&(q, took), h) in times.iter().zip(held) {
            assert!(matches!(
                lrp.complete(h.job, h.request, q, t(took)),
                Completion::Accepted { .. }
            ));
        }
    }

    #[test]
    fn adaptive_reserves_a_job_only_once_its_holder_is_overdue() {
        let mut lrp = lrp_with(adaptive(), 2);
        let a = assigned(lrp.request(p(1), t(0)));
        let b = assigned(lrp.request(p(2), t(0)));
        // Before any proof, the prior: overdue at 2 × 10 s.
        assert_eq!(
            lrp.request(p(3), t(3_000)),
            Decision::NoWork {
                retry_at: t(20_000)
            }
        );
        // p(2) proves in 4 s: the crowd's typical time is now 4 s, so p(1),
        // with no history of its own, is overdue at 8 s.
        assert!(matches!(
            lrp.complete(b.job, b.request, p(2), t(4_000)),
            Completion::Accepted { .. }
        ));
        assert_eq!(
            lrp.request(p(3), t(7_999)),
            Decision::NoWork { retry_at: t(8_000) }
        );
        let again = assigned(lrp.request(p(3), t(8_000)));
        assert_eq!((again.job, again.reserve), (a.job, true));
    }

    #[test]
    fn adaptive_gives_a_slow_holder_its_own_time_and_a_fast_one_the_crowds() {
        let mut lrp = lrp_with(adaptive(), 5);
        // p(2) proves in 2 s, p(3) in 4 s, p(1) in 20 s: the crowd's median
        // is 4 s.
        learn_times(&mut lrp, &[(p(2), 2_000), (p(3), 4_000), (p(1), 20_000)]);
        let slow = assigned(lrp.request(p(1), t(20_000)));
        let fast = assigned(lrp.request(p(2), t(20_000)));
        // The fast holder is judged by the crowd's 4 s (its own 2 s would
        // race it as soon as it queues work): overdue at 28 s. The slow one
        // by its own 20 s: overdue at 60 s, though handed out first.
        assert_eq!(
            lrp.request(p(4), t(27_999)),
            Decision::NoWork {
                retry_at: t(28_000)
            }
        );
        assert_eq!(assigned(lrp.request(p(4), t(28_000))).job, fast.job);
        // (The fast job's new holder, p(4), with no history, is due at 36 s.)
        assert_eq!(
            lrp.request(p(5), t(30_000)),
            Decision::NoWork {
                retry_at: t(36_000)
            }
        );
        assert_eq!(assigned(lrp.request(p(5), t(60_000))).job, slow.job);
    }

    #[test]
    fn adaptive_backs_up_the_longest_job_left_to_a_faster_prover_within_budget() {
        let config = LrpConfig {
            backup_percent: 50,
            ..adaptive()
        };
        let mut lrp = lrp_with(config, 4);
        // p(1) takes 20 s a job, p(2) 2 s.
        learn_times(&mut lrp, &[(p(2), 2_000), (p(1), 20_000)]);
        let slow = assigned(lrp.request(p(1), t(20_000)));
        let fast = assigned(lrp.request(p(2), t(20_000)));
        lrp.complete(fast.job, fast.request, p(2), t(22_000));
        // The slow holder has 18 s left: the fast prover (2 s) gets a backup
        // copy at once, though the holder is not overdue.
        let backup = assigned(lrp.request(p(2), t(22_000)));
        assert_eq!((backup.job, backup.reserve), (slow.job, true));
        // A prover as slow as the holder would not beat it: no backup.
        let mut lrp = lrp_with(
            LrpConfig {
                backup_percent: 50,
                ..adaptive()
            },
            2,
        );
        learn_times(&mut lrp, &[(p(1), 20_000), (p(3), 20_000)]);
        lrp.submit([j(2, 0)]);
        let _held = assigned(lrp.request(p(1), t(20_000)));
        let asked = lrp.request(p(3), t(21_000));
        assert!(matches!(asked, Decision::NoWork { .. }), "{asked:?}");
    }

    #[test]
    fn backups_stay_within_their_share_of_hand_outs() {
        let config = LrpConfig {
            backup_percent: 10,
            ..adaptive()
        };
        let mut lrp = lrp_with(config, 40);
        // One fast prover (1 s a job) and seven slow ones (20 s) that then
        // hold the other 32 jobs: 40 first hand-outs allow 4 backups.
        let slow = || (2..9u8).map(p);
        let fast = assigned(lrp.request(p(1), t(0)));
        let first: Vec<_> = slow()
            .map(|q| (q, assigned(lrp.request(q, t(0)))))
            .collect();
        lrp.complete(fast.job, fast.request, p(1), t(1_000));
        for (q, h) in first {
            lrp.complete(h.job, h.request, q, t(20_000));
        }
        for i in 0..32u8 {
            let _ = assigned(lrp.request(p(2 + i % 7), t(20_000)));
        }
        let mut backups = 0;
        for s in 0..20u64 {
            match lrp.request(p(1), t(20_000 + s)) {
                Decision::Assign(h) => {
                    assert!(h.reserve);
                    backups += 1;
                }
                Decision::NoWork { .. } => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(backups, 4);
    }

    #[test]
    fn learnt_job_times_survive_a_snapshot_and_a_format_3_snapshot_still_restores() {
        let mut lrp = lrp_with(adaptive(), 3);
        let h = assigned(lrp.request(p(1), t(0)));
        lrp.complete(h.job, h.request, p(1), t(3_000));
        let held = assigned(lrp.request(p(2), t(3_000)));
        let snap = lrp.snapshot();
        let mut restored = Lrp::restore(adaptive(), &snap).unwrap();
        assert_eq!(restored.snapshot(), snap);
        // Overdue at 2 × 3 s after its hand-out, in both.
        let probe = |l: &mut Lrp| l.clone().request(p(3), t(4_000));
        assert_eq!(probe(&mut lrp), probe(&mut restored));
        let third = assigned(lrp.request(p(3), t(4_000)));
        assert!(!third.reserve);
        assert_eq!(assigned(lrp.request(p(4), t(9_000))).job, held.job);

        // The bytes a format-3 store holds decode as the old layout and
        // restore with no job times learnt.
        let old = LrpSnapshotV3 {
            clock: snap.clock,
            next_request: snap.next_request,
            fresh: snap.fresh.clone(),
            queue: snap.queue.clone(),
            provers: snap.provers.clone(),
            batches: snap.batches.clone(),
            pending: snap.pending,
            done: snap.done,
        };
        let bytes = codec::encode(&old);
        let decoded: LrpSnapshotV3 = codec::decode(&bytes, bytes.len()).unwrap();
        let migrated = LrpSnapshot::from(decoded);
        assert!(migrated.job_times.is_empty() && migrated.recent.is_empty());
        let restored = Lrp::restore(adaptive(), &migrated).unwrap();
        assert_eq!(restored.snapshot(), migrated);
    }

    fn heartbeat(lrp: &mut Lrp, h: Handout, prover: PublicKey, ms: u64) -> HeartbeatOutcome {
        match lrp.apply(&LrpEvent::Heartbeat {
            job: h.job,
            request: h.request,
            prover,
            now: t(ms),
        }) {
            LrpOutcome::Heard(outcome) => outcome,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_silent_holder_is_overdue_however_long_its_job_should_take() {
        let config = LrpConfig {
            job_time_prior_ms: 600_000,
            heartbeat_silence_ms: 30_000,
            ..adaptive()
        };
        let mut lrp = lrp_with(config.clone(), 2);
        let talks = assigned(lrp.request(p(1), t(0)));
        let quiet = assigned(lrp.request(p(2), t(0)));
        assert_eq!(
            heartbeat(&mut lrp, talks, p(1), 10_000),
            HeartbeatOutcome::Noted
        );
        assert_eq!(
            heartbeat(&mut lrp, talks, p(1), 14_000),
            HeartbeatOutcome::TooSoon
        );
        assert_eq!(
            heartbeat(&mut lrp, talks, p(1), 20_000),
            HeartbeatOutcome::Noted
        );
        // The quiet hand-out is silent 30 s after it was made; the one that
        // talks, 30 s after its last heartbeat.
        let first = assigned(lrp.request(p(3), t(30_000)));
        assert_eq!(first.job, quiet.job);
        assert_eq!(
            lrp.request(p(4), t(45_000)),
            Decision::NoWork {
                retry_at: t(50_000)
            }
        );
        assert_eq!(assigned(lrp.request(p(4), t(50_000))).job, talks.job);

        // Heartbeats for what is not a live hand-out of the sender.
        assert_eq!(
            heartbeat(&mut lrp, talks, p(2), 51_000),
            HeartbeatOutcome::WrongProver
        );
        let forged = Handout {
            request: RequestId(999),
            ..talks
        };
        assert_eq!(
            heartbeat(&mut lrp, forged, p(1), 51_000),
            HeartbeatOutcome::Unknown
        );
        lrp.complete(first.job, first.request, p(3), t(52_000));
        assert_eq!(
            heartbeat(&mut lrp, quiet, p(2), 53_000),
            HeartbeatOutcome::AlreadyDone
        );

        // The paper's rule ignores heartbeats.
        let mut lrp = lrp_with(
            LrpConfig {
                policy: ReservePolicy::Lrp,
                min_reserve_age_ms: 100_000,
                ..config
            },
            1,
        );
        let _ = assigned(lrp.request(p(1), t(0)));
        assert!(matches!(
            lrp.request(p(2), t(60_000)),
            Decision::NoWork { .. }
        ));
    }

    #[test]
    fn a_restart_does_not_count_its_own_downtime_as_silence() {
        let config = LrpConfig {
            job_time_prior_ms: 600_000,
            heartbeat_silence_ms: 30_000,
            ..adaptive()
        };
        let mut lrp = lrp_with(config, 1);
        let h = assigned(lrp.request(p(1), t(0)));
        heartbeat(&mut lrp, h, p(1), 10_000);
        // Down from 10 s to 100 s: no heartbeat could arrive.
        assert_eq!(
            lrp.apply(&LrpEvent::Resume { now: t(100_000) }),
            LrpOutcome::Resumed
        );
        assert_eq!(
            lrp.request(p(2), t(110_000)),
            Decision::NoWork {
                retry_at: t(130_000)
            }
        );
        heartbeat(&mut lrp, h, p(1), 120_000);
        assert_eq!(
            lrp.request(p(2), t(140_000)),
            Decision::NoWork {
                retry_at: t(150_000)
            }
        );
        // Heartbeats and the resume survive a snapshot.
        let restored = Lrp::restore(lrp.config().clone(), &lrp.snapshot()).unwrap();
        assert_eq!(restored.snapshot(), lrp.snapshot());
        assert_eq!(assigned(lrp.request(p(2), t(150_000))).job, h.job);
    }

    #[test]
    fn adaptive_serves_trusted_provers_first_and_judges_a_new_keys_copy_like_any() {
        let config = LrpConfig {
            job_time_prior_ms: 600_000,
            heartbeat_silence_ms: 10_000,
            probation_lag_ms: 5_000,
            ..adaptive()
        };
        let mut lrp = lrp_with(config, 1);
        let first = assigned(lrp.request(p(1), t(0)));
        // Silent at 10 s: a trusted prover could have it now, a new key
        // (p(20)) only a minimum age later.
        assert_eq!(
            lrp.request(p(20), t(10_000)),
            Decision::NoWork {
                retry_at: t(15_000)
            }
        );
        let copy = assigned(lrp.request(p(20), t(15_000)));
        assert_eq!((copy.job, copy.reserve), (first.job, true));
        // The new key's copy talks: nobody races it until it falls silent.
        assert_eq!(
            heartbeat(&mut lrp, copy, p(20), 20_000),
            HeartbeatOutcome::Noted
        );
        assert_eq!(
            lrp.request(p(2), t(26_000)),
            Decision::NoWork {
                retry_at: t(30_000)
            }
        );
        assert_eq!(assigned(lrp.request(p(2), t(30_000))).job, first.job);
    }
}
