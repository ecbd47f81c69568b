//! The claim → prove → submit loop of one worker, and the proving pools
//! workers share. Proving runs on a blocking thread inside a fixed-size
//! pool, so the async side stays responsive; a crowd of identities in one
//! process shares one set of pools.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use protocol::messages::{
    AnyMessage, Assignment, Heartbeat, InvalidReason, JobRequest, NoWorkReason, Outcome,
    ProofSubmission, Release, Verdict, Witness,
};
use protocol::{ContentHash, JobId, RequestId};
use prover_core::{AnyProvingKey, Circuit, Proof, ThreadPool};
use tokio::sync::Semaphore;
use tracing::{Instrument, debug, error, info, info_span, warn};

use super::Shared;
use super::client::{CallError, PATIENCE};
use super::fault::Byzantine;
use super::receipts::{Owed, Promise, save_owed_logged};
use super::status::{Doing, RecentJob};
use super::witness::witness_of;
use crate::config::Fault;

/// Shortest and longest back-off after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Proving slots, each a thread pool of its own; at most one proof per slot
/// at a time. Cheap to clone; clones share the slots.
#[derive(Clone)]
pub struct ProvingPools {
    pools: Arc<Vec<Arc<ThreadPool>>>,
    free: Arc<Mutex<Vec<usize>>>,
    permits: Arc<Semaphore>,
}

impl ProvingPools {
    /// `slots` slots of `threads` threads each (0: share all cores).
    pub fn new(slots: usize, threads: usize) -> anyhow::Result<Self> {
        let slots = slots.max(1);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = if threads == 0 {
            (cores / slots).max(1)
        } else {
            threads
        };
        let pools = (0..slots)
            .map(|_| ThreadPool::new(threads).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            pools: Arc::new(pools),
            free: Arc::new(Mutex::new((0..slots).collect())),
            permits: Arc::new(Semaphore::new(slots)),
        })
    }

    /// Slots in all.
    pub fn slots(&self) -> usize {
        self.pools.len()
    }

    /// Threads per slot.
    pub fn threads(&self) -> usize {
        self.pools.first().map_or(1, |p| p.threads())
    }

    /// Waits for a free slot, then — if the job is still `wanted` — proves
    /// there on a blocking thread. `None`: no longer wanted, slot not used.
    /// A panic while proving is an error here, and frees the slot.
    pub async fn prove(
        &self,
        key: Arc<AnyProvingKey>,
        witness: Vec<u8>,
        wanted: impl FnOnce() -> bool,
    ) -> Option<tokio::task::JoinHandle<anyhow::Result<Proof>>> {
        self.run(wanted, move || {
            key.prove(&witness).context("proving failed")
        })
        .await
    }

    /// [`Self::prove`] for any work: `work` runs in a free slot's pool on a
    /// blocking thread. The slot is freed however the work ends — done,
    /// failed or panicked (a panic becomes an error naming it).
    async fn run<T: Send + 'static>(
        &self,
        wanted: impl FnOnce() -> bool,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> Option<tokio::task::JoinHandle<anyhow::Result<T>>> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        if !wanted() {
            return None;
        }
        let slot = lock(&self.free).pop().expect("a permit means a free slot");
        let held = HeldSlot {
            free: self.free.clone(),
            slot,
            _permit: permit,
        };
        let pool = self.pools[slot].clone();
        Some(tokio::task::spawn_blocking(move || {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.install(work)));
            drop(held);
            ran.unwrap_or_else(|panic| Err(anyhow!("proving panicked: {}", panic_message(&*panic))))
        }))
    }
}

/// A proving slot in use: back on the free list, and its permit returned,
/// when dropped — whichever way the proof ended.
struct HeldSlot {
    free: Arc<Mutex<Vec<usize>>>,
    slot: usize,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for HeldSlot {
    fn drop(&mut self) {
        // The slot goes back before the permit (a field, dropped after
        // this), so a permit always finds a free slot.
        lock(&self.free).push(self.slot);
    }
}

/// The free-slot list, even if a panic poisoned its lock (the list is a
/// plain `Vec` of slot numbers, never left half-changed).
fn lock(free: &Mutex<Vec<usize>>) -> std::sync::MutexGuard<'_, Vec<usize>> {
    free.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The text a panic was raised with, if it was text.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// One worker: claim → prove → submit, until shutdown or too many failures.
pub async fn run(shared: Arc<Shared>, slot: usize) {
    let mut worker = Worker {
        shared,
        slot,
        failures: 0,
        backoff: BACKOFF_MIN,
        byzantine: Byzantine::default(),
    };
    while !worker.shared.stopping() {
        let max = worker.shared.settings.max_failures;
        if worker.failures >= max {
            let failures = worker.failures;
            error!(target: "prover", failures, "too many consecutive failures; this worker stops claiming jobs");
            let mut t = worker.shared.tally();
            let last = t.last_error.take().map(|e| format!(", the last: {e}"));
            t.last_error = Some(format!(
                "{failures} consecutive failures (--max-failures {max}){}",
                last.unwrap_or_default()
            ));
            t.stopped_workers += 1;
            t.gone(slot);
            return;
        }
        worker.shared.doing(slot, Doing::Asking, None);
        match worker.claim().await {
            Claim::Job(assignment) => worker.work(assignment).await,
            Claim::Retry => {}
            Claim::Stop => {
                worker.shared.tally().gone(slot);
                return;
            }
        }
    }
}

/// A worker's state between jobs.
struct Worker {
    shared: Arc<Shared>,
    /// Its number, for the logs.
    slot: usize,
    /// Consecutive failures of this machine's own.
    failures: u32,
    /// How long to wait before the next try after a failure or an outage.
    backoff: Duration,
    byzantine: Byzantine,
}

/// What came of asking the distributor for work.
enum Claim {
    /// A job for this prover.
    Job(Assignment),
    /// Nothing yet (already waited for); ask again.
    Retry,
    /// Refused for good: this worker stops.
    Stop,
}

impl Worker {
    /// A failure of this machine's own: counted, and waited out further
    /// apart each time.
    fn fail(&mut self, what: String) {
        self.failures += 1;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        warn!(target: "prover", failures = self.failures, "{what}");
        self.shared.tally().last_error = Some(what);
    }

    /// The distributor is away (restarting, unreachable): wait for it,
    /// further apart each time; an outage is not this prover's failure.
    fn away(&mut self, what: String) {
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        warn!(target: "prover", retry_ms = self.backoff.as_millis() as u64, "{what}");
        self.shared.tally().last_error = Some(what);
    }

    /// Refused for good (banned, not on the allowlist): this worker stops.
    fn refused(&self, what: &str) -> Claim {
        error!(target: "prover", "{what}");
        let mut t = self.shared.tally();
        t.last_error = Some(what.to_string());
        t.stopped_workers += 1;
        Claim::Stop
    }

    /// The distributor is away: waits for it (see [`Self::away`]).
    async fn wait_away(&mut self, what: String) -> Claim {
        self.away(what);
        self.shared.doing(self.slot, Doing::Waiting, None);
        self.shared.pause(self.backoff).await;
        Claim::Retry
    }

    /// Finds the distributor and asks it for a job.
    async fn claim(&mut self) -> Claim {
        let shared = self.shared.clone();
        if let Err(e) = shared.client.locate().await {
            return self
                .wait_away(format!("cannot find the distributor: {e}"))
                .await;
        }
        let answer = shared
            .client
            .call(&JobRequest {
                circuits: Vec::new(),
            })
            .await;
        match answer {
            Ok(AnyMessage::Assignment(a)) if a.prover == shared.client.me() => {
                self.backoff = BACKOFF_MIN;
                let since_start = shared.since_start();
                shared
                    .tally()
                    .first_job
                    .assigned_ms
                    .get_or_insert(since_start);
                Claim::Job(a)
            }
            Ok(AnyMessage::Assignment(_)) => {
                self.wait_away("assignment for another prover".into()).await
            }
            Ok(AnyMessage::NoWork(no)) => {
                if no.reason == NoWorkReason::Refused {
                    return self.refused("the distributor refuses this prover work");
                }
                self.backoff = BACKOFF_MIN;
                debug!(target: "prover", reason = ?no.reason, retry_ms = no.retry_after_ms, "no work");
                shared.doing(self.slot, Doing::Waiting, None);
                shared
                    .pause(Duration::from_millis(no.retry_after_ms.clamp(100, 60_000)))
                    .await;
                Claim::Retry
            }
            Ok(other) => {
                self.wait_away(format!("unexpected {} answer", other.kind()))
                    .await
            }
            Err(CallError::Busy(reason)) => {
                // Back-pressure, not a failure: wait longer each time.
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                debug!(target: "prover", reason, backoff_ms = self.backoff.as_millis() as u64, "distributor busy; backing off");
                shared.doing(self.slot, Doing::Waiting, None);
                shared.pause(self.backoff).await;
                Claim::Retry
            }
            Err(CallError::Network(e)) => {
                self.wait_away(format!("distributor unreachable: {e}"))
                    .await
            }
            Err(CallError::Rejected(reason)) if reason == "not_admitted" => {
                self.refused("the distributor admits only allowlisted provers, and not this one")
            }
            Err(e @ (CallError::Rejected(_) | CallError::BadAnswer(_))) => {
                // The distributor's word on one message (a clock off, a
                // garbled answer), not a verdict on this prover's work.
                self.wait_away(e.to_string()).await
            }
        }
    }

    /// Works on `assignment` (with heartbeats beside it) and takes in how
    /// it ended.
    async fn work(&mut self, assignment: Assignment) {
        let shared = self.shared.clone();
        let job = assignment.job;
        let span = info_span!("job", %job, request = assignment.request.0, slot = self.slot);
        if shared.settings.fault == Fault::Stall {
            info!(target: "prover", %job, "stalling on purpose (fault injection): never answering");
            shared.tally().active += 1;
            return;
        }
        shared.tally().active += 1;
        shared.holding.took(job, assignment.request);
        // Heartbeats run beside the job in this task, so they end with it
        // however it ends (done, failed, or the worker dropped at shutdown).
        let outcome = tokio::select! {
            outcome = prove_and_submit(&shared, self.slot, &assignment, &mut self.byzantine).instrument(span) => outcome,
            never = heartbeats(&shared, job, assignment.request) => match never {},
        };
        if outcome.is_ok() {
            // A verdict, or a job dropped unproved: not held any more. (A
            // failed job was released, and forgotten there if that worked;
            // if not, the next start gives it back.)
            shared.holding.done(job, assignment.request);
        }
        shared.tally().active -= 1;
        match outcome {
            Ok(Outcome::Accepted { .. }) => {
                self.failures = 0;
                self.backoff = BACKOFF_MIN;
            }
            Ok(Outcome::Late) => self.failures = 0,
            // Not this prover's fault: the distributor no longer holds the
            // hand-out for it (released, voided, or long forgotten).
            Ok(Outcome::Invalid(InvalidReason::NotIssued)) => {
                warn!(target: "prover", %job, "the distributor says this hand-out was never issued (or no longer stands): the proof is not paid");
            }
            Ok(Outcome::Invalid(reason)) => {
                self.fail(format!("job {job}: proof judged invalid ({reason:?})"))
            }
            Err(e) => self.failed(&assignment, e).await,
        }
    }

    /// The job of `assignment` came to nothing, for `e`.
    async fn failed(&mut self, assignment: &Assignment, e: JobError) {
        let shared = self.shared.clone();
        let job = assignment.job;
        if !shared.stopping() {
            let mut t = shared.tally();
            t.failed += 1;
            t.finished(RecentJob::new(assignment, "failed"));
            shared.client.metrics().prover_job("failed");
        }
        match e {
            JobError::Proving(e) => self.fail(format!("job {job}: {e:#}")),
            JobError::Away(e) => {
                self.wait_away(format!("job {job}: {e:#}")).await;
            }
        }
    }
}

/// Why a job came to nothing. Only a proving error is this machine's
/// failure; the rest is the distributor's absence or refusal, which a
/// prover outlasts.
enum JobError {
    /// This machine could not prove the job.
    Proving(anyhow::Error),
    /// The key or the verdict could not be had from the distributor.
    Away(anyhow::Error),
}

/// Proves one assignment and submits the proof; on shutdown past the grace
/// period, releases the job instead.
async fn prove_and_submit(
    shared: &Arc<Shared>,
    slot: usize,
    assignment: &Assignment,
    byzantine: &mut Byzantine,
) -> Result<Outcome, JobError> {
    let job = Some(assignment.job);
    shared.doing(slot, Doing::GettingKey, job);
    let key = proving_key(shared, assignment).await?;
    let witness = witness(shared, slot, assignment).await?;
    shared.doing(slot, Doing::Queued, job);
    let started = Instant::now();
    let Some(proof) = prove(shared, slot, assignment, key, witness).await? else {
        return Ok(Outcome::Late);
    };
    let seconds = started.elapsed().as_secs_f64();
    shared.client.metrics().prove_seconds.observe(seconds);
    info!(target: "prover", ms = (seconds * 1e3) as u64, "proved");
    let mut submission = ProofSubmission {
        job: assignment.job,
        request: assignment.request,
        proof: proof.to_bytes().to_vec(),
        payout: shared.payout.clone(),
    };
    let replay = match shared.settings.fault {
        Fault::Byzantine => byzantine.spoil(&mut submission, assignment),
        _ => None,
    };
    let first = replay.unwrap_or_else(|| shared.client.seal(&submission));
    byzantine.sent(&first);
    shared.doing(slot, Doing::Submitting, job);
    let verdict = submit(shared, first, &submission)
        .await
        .map_err(JobError::Away)?;
    let promise = check_verdict(shared, assignment, &submission, &verdict);
    record(shared, assignment, &verdict.outcome, seconds, promise);
    Ok(verdict.outcome)
}

/// What the receipt of an accepted proof must show: the reward the signed
/// assignment promised, and the hash of the proof this prover sent. A
/// verdict about another job, prover or proof, or naming a smaller reward,
/// is the distributor misbehaving: logged as an error, counted
/// (`bad_verdicts` in `/status`, `crowdprove_bad_verdicts_total`); the
/// receipt is still held to what was promised and sent.
fn check_verdict(
    shared: &Shared,
    assignment: &Assignment,
    submission: &ProofSubmission,
    verdict: &Verdict,
) -> Option<Promise> {
    let Outcome::Accepted { reward } = verdict.outcome else {
        return None;
    };
    let sent = ContentHash::of(&submission.proof);
    let me = shared.client.me();
    let wrong = [
        (
            verdict.proof_hash != sent,
            "proof_hash",
            format!("proof hash {} instead of {sent}", verdict.proof_hash),
        ),
        (
            reward < assignment.reward,
            "reward",
            format!(
                "a reward of {reward} instead of the {} its assignment promised",
                assignment.reward
            ),
        ),
        (
            verdict.job != assignment.job,
            "job",
            format!("job {} instead of {}", verdict.job, assignment.job),
        ),
        (
            verdict.prover != me,
            "prover",
            format!(
                "prover {} instead of {}",
                verdict.prover.node_id(),
                me.node_id()
            ),
        ),
    ];
    for (_, what, differs) in wrong.iter().filter(|(bad, ..)| *bad) {
        error!(
            target: "prover",
            job = %assignment.job,
            "the distributor misbehaves: its Accepted verdict names {differs}; the receipt must match the proof sent"
        );
        shared.client.metrics().bad_verdict(what);
    }
    if wrong.iter().any(|(bad, ..)| *bad) {
        shared.tally().bad_verdicts += 1;
    }
    Some(Promise {
        reward: assignment.reward,
        proof_hash: sent,
    })
}

/// The proving key of the assignment's circuit, fetched if this prover
/// lacks it; the job is released if it cannot be had.
async fn proving_key(
    shared: &Arc<Shared>,
    assignment: &Assignment,
) -> Result<Arc<AnyProvingKey>, JobError> {
    let circuit = match Circuit::from_id(&assignment.circuit) {
        Ok(circuit) => circuit,
        Err(e) => {
            release(shared, assignment).await;
            return Err(JobError::Proving(
                anyhow::Error::new(e).context("this build cannot prove the job's circuit"),
            ));
        }
    };
    let got = match shared
        .keys
        .get(circuit, assignment.proving_key, shared.client.as_ref())
        .await
    {
        Ok(got) => got,
        Err(e) => {
            release(shared, assignment).await;
            return Err(JobError::Away(e.context("cannot get the proving key")));
        }
    };
    if got.took.fetched > 0 {
        info!(target: "prover", bytes = got.took.fetched, "proving key fetched");
    }
    let since_start = shared.since_start();
    shared.tally().key_ready(got.took, since_start);
    Ok(got.key)
}

/// The assignment's witness, fetched if it did not come inline; the job is
/// released if it cannot be had.
async fn witness(
    shared: &Arc<Shared>,
    slot: usize,
    assignment: &Assignment,
) -> Result<Vec<u8>, JobError> {
    if let Witness::Chunked { len, .. } = assignment.witness {
        shared.doing(slot, Doing::GettingWitness, Some(assignment.job));
        info!(target: "prover", bytes = len, "fetching the witness");
    }
    match witness_of(assignment, shared.client.as_ref()).await {
        Ok(witness) => Ok(witness),
        Err(e) => {
            release(shared, assignment).await;
            Err(JobError::Away(e.context("cannot get the witness")))
        }
    }
}

/// Proves the assignment's `witness` with `key` once a slot is free. `None`: its batch
/// was proven meanwhile, and the job is dropped unproved. On shutdown, the
/// job is released (after the grace period, if proving had begun).
async fn prove(
    shared: &Arc<Shared>,
    slot: usize,
    assignment: &Assignment,
    key: Arc<AnyProvingKey>,
    witness: Vec<u8>,
) -> Result<Option<Proof>, JobError> {
    let batch = assignment.job.batch;
    let mut stop = shared.stop.clone();
    let waiting = shared
        .pools
        .prove(key, witness, || !shared.is_proven(batch));
    let proving = tokio::select! {
        proving = waiting => proving,
        _ = async { let _ = stop.wait_for(|s| *s).await; } => {
            // Stopping before a slot came free: nothing to finish.
            release(shared, assignment).await;
            return Err(JobError::Away(anyhow!("released at shutdown")));
        }
    };
    let Some(mut proving) = proving else {
        // Its batch was proven while this job waited for a slot: another
        // prover won it, and proving it now would only make a late proof.
        info!(target: "prover", "batch already proven; dropping the job unproved");
        let mut t = shared.tally();
        t.dropped += 1;
        t.finished(RecentJob::new(assignment, "dropped"));
        shared.client.metrics().prover_job("dropped");
        return Ok(None);
    };
    shared.doing(slot, Doing::Proving, Some(assignment.job));
    let proof = tokio::select! {
        proof = &mut proving => proof,
        _ = async { let _ = stop.wait_for(|s| *s).await; } => {
            let grace = Duration::from_secs(shared.settings.shutdown_grace_secs);
            match tokio::time::timeout(grace, &mut proving).await {
                Ok(proof) => proof,
                Err(_) => {
                    warn!(target: "prover", "not done within the shutdown grace period; releasing the job");
                    release(shared, assignment).await;
                    return Err(JobError::Away(anyhow!("released at shutdown")));
                }
            }
        }
    };
    let proof = proof
        .context("proving task lost")
        .and_then(|p| p)
        .map(Some)
        .map_err(JobError::Proving);
    if proof.is_err() {
        // This machine cannot prove it (an error, a panic): the job goes
        // back to the distributor now rather than when its silence shows.
        release(shared, assignment).await;
    }
    proof
}

/// Takes the distributor's verdict on the assignment's proof (made in
/// `seconds`) into the tally, the metrics and the owed receipts.
fn record(
    shared: &Shared,
    assignment: &Assignment,
    verdict: &Outcome,
    seconds: f64,
    promise: Option<Promise>,
) {
    let mut t = shared.tally();
    let (outcome, reward) = match verdict {
        Outcome::Accepted { reward } => ("accepted", *reward),
        Outcome::Late => ("late", 0),
        Outcome::Invalid(_) => ("invalid", 0),
    };
    t.finished(RecentJob {
        reward,
        prove_ms: Some((seconds * 1e3) as u64),
        ..RecentJob::new(assignment, outcome)
    });
    let metrics = shared.client.metrics();
    match verdict {
        Outcome::Accepted { reward } => {
            let reward = *reward;
            t.accepted += 1;
            t.earned += reward;
            t.first_job.accepted_ms.get_or_insert(shared.since_start());
            if let Some(promise) = promise {
                t.awaiting_receipts.push(Owed::new(assignment.job, promise));
                save_owed_logged(&shared.receipts_dir, &t.awaiting_receipts);
            }
            metrics.prover_job("accepted");
            info!(target: "prover", reward, "proof accepted");
        }
        Outcome::Late => {
            t.late += 1;
            metrics.prover_job("late");
            info!(target: "prover", "proof late: another prover was first");
        }
        Outcome::Invalid(reason) => {
            t.invalid += 1;
            metrics.prover_job("invalid");
            warn!(target: "prover", ?reason, "proof refused");
        }
    }
}

/// How long a proof's submission is retried while the distributor cannot
/// be reached or is busy (back-off 0.5 s doubling to 8 s): a proof is worth
/// more than the request, and a restarted distributor still accepts it.
const SUBMIT_PATIENCE: Duration = Duration::from_secs(600);

/// Submits a sealed proof, retrying network failures and `busy` for up to
/// [`SUBMIT_PATIENCE`] (less if the prover is stopping).
///
/// Each retry is sealed afresh (a new nonce): a word-for-word resend would be
/// refused as a replay, and a winner whose `Accepted` was lost on the way
/// learns it on the retry.
async fn submit(
    shared: &Shared,
    first: Vec<u8>,
    submission: &ProofSubmission,
) -> anyhow::Result<Verdict> {
    let deadline = Instant::now() + SUBMIT_PATIENCE;
    let mut delay = BACKOFF_MIN;
    let mut bytes = first;
    for attempt in 1.. {
        if attempt > 1 {
            bytes = shared.client.seal(submission);
        }
        match shared.client.call_raw(bytes.clone()).await {
            Ok(AnyMessage::Verdict(v)) => return Ok(v),
            Ok(other) => bail!("submitted a proof, got a {}", other.kind()),
            Err(CallError::Network(e) | CallError::Busy(e))
                if Instant::now() + delay < deadline && !shared.stopping() =>
            {
                debug!(target: "prover", attempt, error = %e, "submission not taken; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(8));
                // Reconnect if the distributor came back elsewhere.
                let _ = shared.client.locate().await;
            }
            Err(e) => return Err(anyhow!("{e}")),
        }
    }
    unreachable!("the loop returns")
}

/// Tells the distributor every `heartbeat_secs` that this hand-out is still
/// being worked on (fetching the key, waiting for a slot, proving,
/// submitting), for as long as it is polled; so that its silence, if this
/// machine hangs, gets the job re-served sooner than its expected time
/// would. Falls quiet (but never returns) if the distributor says the job
/// is done or not this prover's, or if heartbeats are off.
async fn heartbeats(shared: &Shared, job: JobId, request: RequestId) -> std::convert::Infallible {
    let secs = shared.settings.heartbeat_secs;
    if secs > 0 {
        loop {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            match shared.client.call(&Heartbeat { job, request }).await {
                Ok(_) => {}
                Err(CallError::Rejected(reason))
                    if reason == "job_done" || reason == "not_issued" =>
                {
                    debug!(target: "prover", %job, reason, "heartbeats stop");
                    break;
                }
                Err(e) => debug!(target: "prover", %job, error = %e, "heartbeat not delivered"),
            }
        }
    }
    std::future::pending().await
}

async fn release(shared: &Shared, assignment: &Assignment) {
    let release = Release {
        job: assignment.job,
        request: assignment.request,
    };
    // Patient while working (an unreleased job holds back a new prover's
    // next one); one try while shutting down.
    let patience = if shared.stopping() {
        Duration::ZERO
    } else {
        PATIENCE
    };
    match shared.client.call_when_free(&release, patience).await {
        Ok(_) => {
            shared.holding.done(assignment.job, assignment.request);
            let mut t = shared.tally();
            t.released += 1;
            t.finished(RecentJob::new(assignment, "released"));
            drop(t);
            shared.client.metrics().prover_job("released");
            info!(target: "prover", job = %assignment.job, "job released");
        }
        Err(e) => warn!(target: "prover", job = %assignment.job, error = %e, "release failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proof that panics gives its slot back: the next proof gets one
    /// (before, the slot was lost and the next took a permit to an empty
    /// free list, and panicked).
    #[tokio::test]
    async fn a_panic_while_proving_frees_the_slot_and_is_an_error() {
        let pools = ProvingPools::new(1, 1).unwrap();
        for round in 0..3 {
            let panicked = pools
                .run(
                    || true,
                    move || -> anyhow::Result<u32> { panic!("boom {round}") },
                )
                .await
                .expect("wanted")
                .await
                .expect("the panic is caught, not the task's");
            let err = format!("{:#}", panicked.unwrap_err());
            assert!(
                err.contains("panicked") && err.contains(&format!("boom {round}")),
                "{err}"
            );
        }
        let done = tokio::time::timeout(Duration::from_secs(10), async {
            pools.run(|| true, || Ok(7)).await.expect("wanted").await
        })
        .await
        .expect("a slot is free again");
        assert_eq!(done.unwrap().unwrap(), 7);
        assert_eq!(lock(&pools.free).len(), 1);
        assert_eq!(pools.permits.available_permits(), 1);
    }
}
