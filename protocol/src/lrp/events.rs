//! What goes into the scheduler ([`LrpEvent`]) and what comes out: one
//! outcome type per event, and the read-only views of jobs and provers.

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::{Lrp, LrpConfig};
use crate::identity::PublicKey;
use crate::ids::{BatchId, JobId, RequestId, Timestamp};

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
    /// [Probation](super#probation)).
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

/// One hand-out of a pending job, live or past its lease: valid for its
/// proof until the job is done or the hand-out is voided.
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
        /// Its current hand-outs, oldest first, those past their lease
        /// included (a prover appears more than once when the job came back
        /// to it after its lease ran out; live, at most once). A proof for
        /// any of them is judged.
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

impl ProverView<'_> {
    /// Past probation: a proof accepted and no strike.
    pub fn is_trusted(&self) -> bool {
        self.proven > 0 && self.strikes == 0
    }

    /// Whether one of its hand-outs is still within `lease_ms` at `now`.
    pub fn holds_live(&self, now: Timestamp, lease_ms: u64) -> bool {
        // Sorted by hand-out: the newest is the last.
        self.holdings
            .last()
            .is_some_and(|h| now.millis_since(h.at) < lease_ms)
    }
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
