//! The prover role: find the distributor, claim jobs, prove, submit, collect
//! receipts.
//!
//! `jobs` worker tasks each loop claim → prove → submit; proving runs on a
//! blocking thread inside a fixed-size pool, so the async side stays
//! responsive. The main task validates gossip (announcements signed by the
//! distributor wake idle workers), answers the status API, fetches receipts
//! and handles shutdown: workers stop claiming, finish what they hold within
//! the grace period, and release what they cannot finish.
//!
//! # Layout
//! - [`keys`]: the proving-key cache (chunked, resumable, hash-checked fetch).
//! - this file: the worker loop, the distributor client, receipts, status.

pub mod keys;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use libp2p::PeerId;
use protocol::envelope::{self, Verifier};
use protocol::messages::{
    AnyMessage, Assignment, JobRequest, KeyChunk, KeyRequest, Message, NoWorkReason, Outcome,
    ProofSubmission, ReceiptRequest, Release, Verdict,
};
use protocol::{JobId, PublicKey, SecretKey, Timestamp};
use rand::Rng;
use serde_json::json;
use tokio::sync::{Notify, mpsc, watch};
use tracing::{Instrument, debug, error, info, info_span, warn};

use self::keys::{ChunkSource, KeyCache};
use crate::api::ApiRequest;
use crate::config::{Fault, ProverSection};
use crate::metrics::Metrics;
use crate::network::{GossipVerdict, NetworkEvent, NetworkHandle, peer_id_of};
use crate::node::NodeInfo;

/// Shortest and longest back-off after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often pending receipts are asked for.
const RECEIPT_POLL: Duration = Duration::from_secs(2);
/// How many finished jobs and kept receipts `/status` lists.
const RECENT: usize = 50;

/// Counters for `/status`.
#[derive(Debug, Default)]
struct Tally {
    active: u64,
    accepted: u64,
    late: u64,
    invalid: u64,
    released: u64,
    failed: u64,
    earned: u64,
    receipts: u64,
    stopped_workers: u64,
    last_error: Option<String>,
    awaiting_receipts: Vec<JobId>,
    /// The newest finished assignments, newest first.
    recent_jobs: VecDeque<RecentJob>,
    /// The newest receipts kept: job and block height, newest first.
    recent_receipts: VecDeque<(JobId, u64)>,
}

/// One finished assignment, as `/status` lists it.
#[derive(Debug, Clone)]
struct RecentJob {
    job: JobId,
    request: protocol::RequestId,
    /// `accepted`, `late`, `invalid`, `released` or `failed`.
    outcome: &'static str,
    reward: u64,
    prove_ms: Option<u64>,
    ended: Timestamp,
}

impl RecentJob {
    /// `assignment` ended just now with `outcome`, unpaid and unproved.
    fn new(assignment: &Assignment, outcome: &'static str) -> Self {
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
    fn finished(&mut self, job: RecentJob) {
        remember(&mut self.recent_jobs, job);
    }

    fn kept_receipt(&mut self, job: JobId, height: u64) {
        remember(&mut self.recent_receipts, (job, height));
    }

    fn to_json(&self) -> serde_json::Value {
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
        json!({
            "jobs": {
                "active": self.active,
                "accepted": self.accepted,
                "late": self.late,
                "invalid": self.invalid,
                "released": self.released,
                "failed": self.failed,
            },
            "earned": self.earned,
            "receipts": self.receipts,
            "awaiting_receipts": self.awaiting_receipts.len(),
            "workers_stopped": self.stopped_workers,
            "last_error": self.last_error,
            "recent_jobs": jobs,
            "recent_receipts": receipts,
        })
    }
}

/// What every worker shares.
struct Shared {
    secret: SecretKey,
    me: PublicKey,
    distributor: PublicKey,
    distributor_peer: PeerId,
    net: NetworkHandle,
    metrics: Arc<Metrics>,
    settings: ProverSection,
    receipts_dir: PathBuf,
    verifier: Mutex<Verifier>,
    keys: KeyCache,
    tally: Mutex<Tally>,
    wake: Notify,
    stop: watch::Receiver<bool>,
    pool: Vec<Arc<prover_core::ThreadPool>>,
    started: Instant,
}

/// Why a call to the distributor failed.
#[derive(Debug)]
enum CallError {
    /// No answer (unreachable, timed out).
    Network(String),
    /// The distributor answered with a refusal.
    Rejected(String),
    /// The answer did not check out (bad signature, not the distributor).
    BadAnswer(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Network(e) => write!(f, "distributor unreachable: {e}"),
            CallError::Rejected(r) => write!(f, "distributor refused: {r}"),
            CallError::BadAnswer(e) => write!(f, "bad answer from the distributor: {e}"),
        }
    }
}

impl Shared {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().expect("tally lock")
    }

    /// Sends a signed request to the distributor and checks that the answer
    /// is signed by it: the prover trusts that one key alone.
    async fn call<M: Message>(&self, message: &M) -> Result<AnyMessage, CallError> {
        self.call_raw(envelope::seal_now(message, &self.secret))
            .await
    }

    async fn call_raw(&self, bytes: Vec<u8>) -> Result<AnyMessage, CallError> {
        let answer = self
            .net
            .request(self.distributor_peer, bytes)
            .await
            .map_err(|e| CallError::Network(e.to_string()))?;
        let signed = self
            .verifier
            .lock()
            .expect("verifier lock")
            .open_any(&answer, Timestamp::now())
            .map_err(|e| {
                self.metrics.reject(e.label());
                CallError::BadAnswer(e.to_string())
            })?;
        if signed.signer() != self.distributor {
            self.metrics.reject("not_the_distributor");
            return Err(CallError::BadAnswer("signed by another key".into()));
        }
        match signed.body {
            AnyMessage::Rejected(r) => Err(CallError::Rejected(r.reason)),
            body => Ok(body),
        }
    }

    /// Sleeps `delay` plus up to 20% jitter, waking early on an announcement
    /// or shutdown.
    async fn pause(&self, delay: Duration) {
        let jitter = rand::thread_rng().gen_range(0..=delay.as_millis() as u64 / 5 + 1);
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(delay + Duration::from_millis(jitter)) => {}
            _ = self.wake.notified() => {}
            _ = stop.changed() => {}
        }
    }
}

impl ChunkSource for Shared {
    async fn fetch(&self, request: KeyRequest) -> anyhow::Result<KeyChunk> {
        match self.call(&request).await {
            Ok(AnyMessage::KeyChunk(chunk)) => {
                self.metrics
                    .key_bytes_fetched
                    .inc_by(chunk.data.len() as u64);
                Ok(chunk)
            }
            Ok(other) => bail!("asked for a key chunk, got a {}", other.kind()),
            Err(e) => Err(anyhow!("{e}")),
        }
    }
}

/// Runs the prover role until `stop` fires and every worker has finished
/// or released its job.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    settings: ProverSection,
    distributor: PublicKey,
    secret: SecretKey,
    data_dir: PathBuf,
    net: NetworkHandle,
    mut events: mpsc::Receiver<NetworkEvent>,
    mut api: mpsc::Receiver<ApiRequest>,
    metrics: Arc<Metrics>,
    info: NodeInfo,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let jobs = settings.jobs.max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = if settings.threads == 0 {
        (cores / jobs).max(1)
    } else {
        settings.threads
    };
    let pool = (0..jobs)
        .map(|_| prover_core::ThreadPool::new(threads).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let me = secret.public();
    let shared = Arc::new(Shared {
        me,
        distributor,
        distributor_peer: peer_id_of(&distributor),
        net,
        metrics,
        receipts_dir: data_dir.join("receipts"),
        verifier: Mutex::new(Verifier::default()),
        keys: KeyCache::new(data_dir.join("keys")),
        tally: Mutex::new(Tally::default()),
        wake: Notify::new(),
        stop: stop.clone(),
        pool,
        secret,
        settings,
        started: Instant::now(),
    });
    info!(
        target: "prover",
        distributor = %distributor.node_id(),
        jobs,
        threads,
        fault = ?shared.settings.fault,
        "prover starting"
    );
    let mut workers = tokio::task::JoinSet::new();
    for slot in 0..jobs {
        let shared = shared.clone();
        workers.spawn(worker(shared, slot).instrument(info_span!("worker", slot)));
    }
    let mut receipts = tokio::time::interval(RECEIPT_POLL);
    let mut stop_signal = stop.clone();
    let mut stopping = false;
    loop {
        tokio::select! {
            Some(event) = events.recv() => on_network(&shared, event).await,
            Some(request) = api.recv() => on_api(&shared, &info, request),
            _ = receipts.tick() => fetch_receipts(&shared).await,
            done = workers.join_next() => match done {
                Some(_) => {}
                None => break,
            },
            _ = stop_signal.changed(), if !stopping => {
                stopping = true;
                info!(target: "prover", "stopping: finishing or releasing held jobs");
            }
        }
    }
    fetch_receipts(&shared).await;
    let tally = shared.tally();
    if !stopping && tally.stopped_workers > 0 {
        bail!(
            "the prover stopped claiming jobs: {}",
            tally.last_error.clone().unwrap_or_default()
        );
    }
    info!(target: "prover", accepted = tally.accepted, earned = tally.earned, "prover stopped");
    Ok(())
}

async fn on_network(shared: &Shared, event: NetworkEvent) {
    match event {
        NetworkEvent::Gossip { id, source, bytes } => {
            let verdict = match envelope::open_any(&bytes, Timestamp::now(), Default::default()) {
                Ok(signed) if signed.signer() == shared.distributor => {
                    if let AnyMessage::JobAnnouncement(a) = &signed.body {
                        debug!(target: "prover", batch = %a.batch, jobs = a.jobs.len(), "announcement");
                        shared.wake.notify_waiters();
                    }
                    GossipVerdict::Accept
                }
                Ok(_) => {
                    shared.metrics.reject("gossip_not_from_distributor");
                    GossipVerdict::Reject
                }
                Err(envelope::EnvelopeError::Stale { .. }) => GossipVerdict::Ignore,
                Err(e) => {
                    shared.metrics.reject(e.label());
                    GossipVerdict::Reject
                }
            };
            shared.net.report(id, source, verdict).await;
        }
        NetworkEvent::Request { channel, .. } => {
            // Provers serve no requests; say so rather than leave the peer waiting.
            let refusal = protocol::messages::Rejected {
                reason: "not_a_distributor".into(),
            };
            shared
                .net
                .respond(channel, envelope::seal_now(&refusal, &shared.secret))
                .await;
        }
        NetworkEvent::InboundFailure { reason, .. } => shared.metrics.reject(reason),
        NetworkEvent::Connected(peer) if peer == shared.distributor_peer => {
            info!(target: "prover", "connected to the distributor");
            shared.wake.notify_waiters();
        }
        _ => {}
    }
}

fn on_api(shared: &Shared, info: &NodeInfo, request: ApiRequest) {
    match request {
        ApiRequest::Status(reply) => {
            let mut doc = shared.tally().to_json();
            doc["role"] = json!("prover");
            doc["node"] = info.to_json();
            doc["now_ms"] = json!(Timestamp::now().0);
            doc["uptime_ms"] = json!(shared.started.elapsed().as_millis() as u64);
            doc["distributor"] = json!(shared.distributor.to_hex());
            doc["distributor_node_id"] = json!(shared.distributor.node_id().to_string());
            doc["fault"] = json!(format!("{:?}", shared.settings.fault).to_lowercase());
            let _ = reply.send(doc);
        }
        ApiRequest::SubmitBatch(_, reply) => {
            let _ = reply.send(Err(
                "a prover takes no batches; POST /batch to the distributor".into(),
            ));
        }
        ApiRequest::Attempts { reply, .. } => {
            let _ = reply.send(json!({ "error": "attempts are kept by the distributor" }));
        }
    }
}

/// One worker: claim → prove → submit, until shutdown or too many failures.
async fn worker(shared: Arc<Shared>, slot: usize) {
    let mut failures = 0u32;
    let mut backoff = BACKOFF_MIN;
    let mut attack = 0u32;
    let mut last_envelope: Option<Vec<u8>> = None;
    let fail = |failures: &mut u32, backoff: &mut Duration, what: String| {
        *failures += 1;
        *backoff = (*backoff * 2).min(BACKOFF_MAX);
        warn!(target: "prover", failures = *failures, "{what}");
        shared.tally().last_error = Some(what);
    };
    while !shared.stopping() {
        if failures >= shared.settings.max_failures {
            error!(target: "prover", failures, "too many consecutive failures; this worker stops claiming jobs");
            shared.tally().stopped_workers += 1;
            return;
        }
        if let Err(e) = shared.net.locate(shared.distributor_peer).await {
            fail(
                &mut failures,
                &mut backoff,
                format!("cannot find the distributor: {e}"),
            );
            shared.pause(backoff).await;
            continue;
        }
        let answer = shared
            .call(&JobRequest {
                circuits: Vec::new(),
            })
            .await;
        let assignment = match answer {
            Ok(AnyMessage::Assignment(a)) if a.prover == shared.me => a,
            Ok(AnyMessage::Assignment(_)) => {
                fail(
                    &mut failures,
                    &mut backoff,
                    "assignment for another prover".into(),
                );
                continue;
            }
            Ok(AnyMessage::NoWork(no)) => {
                if no.reason == NoWorkReason::Refused {
                    let what = "the distributor refuses this prover work".to_string();
                    error!(target: "prover", "{what}");
                    let mut t = shared.tally();
                    t.last_error = Some(what);
                    t.stopped_workers += 1;
                    return;
                }
                backoff = BACKOFF_MIN;
                debug!(target: "prover", reason = ?no.reason, retry_ms = no.retry_after_ms, "no work");
                shared
                    .pause(Duration::from_millis(no.retry_after_ms.clamp(100, 60_000)))
                    .await;
                continue;
            }
            Ok(other) => {
                fail(
                    &mut failures,
                    &mut backoff,
                    format!("unexpected {} answer", other.kind()),
                );
                continue;
            }
            Err(e) => {
                fail(&mut failures, &mut backoff, e.to_string());
                shared.pause(backoff).await;
                continue;
            }
        };
        let job = assignment.job;
        let span = info_span!("job", %job, request = assignment.request.0);
        if shared.settings.fault == Fault::Stall {
            info!(target: "prover", %job, "stalling on purpose (fault injection): never answering");
            shared.tally().active += 1;
            continue;
        }
        shared.tally().active += 1;
        let outcome = prove_and_submit(&shared, slot, &assignment, &mut attack, &mut last_envelope)
            .instrument(span)
            .await;
        shared.tally().active -= 1;
        match outcome {
            Ok(Outcome::Accepted { .. }) => {
                failures = 0;
                backoff = BACKOFF_MIN;
            }
            Ok(Outcome::Late) => failures = 0,
            Ok(Outcome::Invalid(reason)) => fail(
                &mut failures,
                &mut backoff,
                format!("job {job}: proof judged invalid ({reason:?})"),
            ),
            Err(e) => {
                if !shared.stopping() {
                    let mut t = shared.tally();
                    t.failed += 1;
                    t.finished(RecentJob::new(&assignment, "failed"));
                    shared.metrics.prover_job("failed");
                }
                fail(&mut failures, &mut backoff, format!("job {job}: {e:#}"))
            }
        }
    }
}

/// Proves one assignment and submits the proof; on shutdown past the grace
/// period, releases the job instead.
async fn prove_and_submit(
    shared: &Arc<Shared>,
    slot: usize,
    assignment: &Assignment,
    attack: &mut u32,
    last_envelope: &mut Option<Vec<u8>>,
) -> anyhow::Result<Outcome> {
    let (key, fetched) = match shared
        .keys
        .get(assignment.proving_key, shared.as_ref())
        .await
    {
        Ok(k) => k,
        Err(e) => {
            release(shared, assignment).await;
            return Err(e.context("cannot get the proving key"));
        }
    };
    if fetched > 0 {
        info!(target: "prover", bytes = fetched, "proving key fetched");
    }
    let pool = shared.pool[slot].clone();
    let witness = assignment.witness.clone();
    let started = Instant::now();
    let mut proving =
        tokio::task::spawn_blocking(move || pool.install(|| prover_core::prove(&key, &witness)));
    let mut stop = shared.stop.clone();
    let proof = tokio::select! {
        proof = &mut proving => proof,
        _ = async { let _ = stop.wait_for(|s| *s).await; } => {
            let grace = Duration::from_secs(shared.settings.shutdown_grace_secs);
            match tokio::time::timeout(grace, &mut proving).await {
                Ok(proof) => proof,
                Err(_) => {
                    warn!(target: "prover", "not done within the shutdown grace period; releasing the job");
                    release(shared, assignment).await;
                    bail!("released at shutdown");
                }
            }
        }
    };
    let proof = proof
        .context("proving task panicked")?
        .context("proving failed")?;
    let seconds = started.elapsed().as_secs_f64();
    shared.metrics.prove_seconds.observe(seconds);
    info!(target: "prover", ms = (seconds * 1e3) as u64, "proved");
    let mut submission = ProofSubmission {
        job: assignment.job,
        request: assignment.request,
        proof: proof.to_bytes().to_vec(),
    };
    let mut envelope_bytes = None;
    if shared.settings.fault == Fault::Byzantine {
        *attack += 1;
        match *attack % 3 {
            0 => {
                // A proof that does not verify.
                let mid = submission.proof.len() / 2;
                submission.proof[mid] ^= 0x5A;
                submission.proof[0] ^= 0x01;
            }
            1 => submission.request = protocol::RequestId(assignment.request.0.saturating_sub(1)),
            _ => {
                // Replay an earlier submission word for word.
                envelope_bytes = last_envelope.clone();
                if envelope_bytes.is_none() {
                    submission.request = protocol::RequestId(assignment.request.0 + 1_000_000);
                }
            }
        }
        warn!(target: "prover", attack = *attack % 3, "sending a byzantine submission (fault injection)");
    }
    let bytes = envelope_bytes.unwrap_or_else(|| envelope::seal_now(&submission, &shared.secret));
    *last_envelope = Some(bytes.clone());
    let verdict = submit(shared, bytes).await?;
    let mut t = shared.tally();
    let (outcome, reward) = match verdict.outcome {
        Outcome::Accepted { reward } => ("accepted", reward),
        Outcome::Late => ("late", 0),
        Outcome::Invalid(_) => ("invalid", 0),
    };
    t.finished(RecentJob {
        reward,
        prove_ms: Some((seconds * 1e3) as u64),
        ..RecentJob::new(assignment, outcome)
    });
    match verdict.outcome {
        Outcome::Accepted { reward } => {
            t.accepted += 1;
            t.earned += reward;
            t.awaiting_receipts.push(assignment.job);
            shared.metrics.prover_job("accepted");
            info!(target: "prover", reward, "proof accepted");
        }
        Outcome::Late => {
            t.late += 1;
            shared.metrics.prover_job("late");
            info!(target: "prover", "proof late: another prover was first");
        }
        Outcome::Invalid(reason) => {
            t.invalid += 1;
            shared.metrics.prover_job("invalid");
            warn!(target: "prover", ?reason, "proof refused");
        }
    }
    Ok(verdict.outcome)
}

/// How many times a proof submission is tried when the distributor cannot
/// be reached (back-off 0.5 s doubling to 8 s: about 40 s in all, enough for
/// a distributor restart).
const SUBMIT_ATTEMPTS: u32 = 8;

/// Submits a sealed proof, retrying network failures: a proof is worth more
/// than the request, and a restarted distributor still accepts it.
async fn submit(shared: &Shared, bytes: Vec<u8>) -> anyhow::Result<Verdict> {
    let mut delay = BACKOFF_MIN;
    for attempt in 1..=SUBMIT_ATTEMPTS {
        match shared.call_raw(bytes.clone()).await {
            Ok(AnyMessage::Verdict(v)) => return Ok(v),
            Ok(other) => bail!("submitted a proof, got a {}", other.kind()),
            Err(CallError::Network(e)) if attempt < SUBMIT_ATTEMPTS => {
                debug!(target: "prover", attempt, error = %e, "submission failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(8));
                // Reconnect if the distributor came back elsewhere.
                let _ = shared.net.locate(shared.distributor_peer).await;
            }
            Err(e) => return Err(anyhow!("{e}")),
        }
    }
    unreachable!("the last attempt returns")
}

async fn release(shared: &Shared, assignment: &Assignment) {
    let release = Release {
        job: assignment.job,
        request: assignment.request,
    };
    match shared.call(&release).await {
        Ok(_) => {
            let mut t = shared.tally();
            t.released += 1;
            t.finished(RecentJob::new(assignment, "released"));
            drop(t);
            shared.metrics.prover_job("released");
            info!(target: "prover", job = %assignment.job, "job released");
        }
        Err(e) => warn!(target: "prover", job = %assignment.job, error = %e, "release failed"),
    }
}

/// Asks for the receipts of paid jobs whose block has been cut, checks each
/// against the distributor's key and keeps it on disk.
async fn fetch_receipts(shared: &Shared) {
    let waiting = shared.tally().awaiting_receipts.clone();
    for job in waiting {
        let saved = match shared.call(&ReceiptRequest { job }).await {
            Ok(AnyMessage::ReceiptReply(reply)) if reply.receipt.is_empty() => continue,
            Ok(AnyMessage::ReceiptReply(reply)) => save_receipt(shared, job, &reply.receipt),
            Ok(other) => Err(anyhow!("asked for a receipt, got a {}", other.kind())),
            Err(CallError::Network(_)) => return,
            Err(e) => Err(anyhow!("{e}")),
        };
        let mut t = shared.tally();
        match saved {
            Ok(height) => {
                t.receipts += 1;
                t.awaiting_receipts.retain(|j| *j != job);
                t.kept_receipt(job, height);
            }
            Err(e) => warn!(target: "prover", %job, error = %format!("{e:#}"), "receipt not kept"),
        }
    }
}

/// Checks and keeps one receipt; returns the height of its block.
fn save_receipt(shared: &Shared, job: JobId, bytes: &[u8]) -> anyhow::Result<u64> {
    let receipt = ledger::Receipt::decode(bytes).context("receipt does not decode")?;
    let credit = ledger::verify_receipt(&receipt, &shared.distributor)
        .context("receipt does not verify against the distributor's key")?;
    if credit.job != job || credit.prover != shared.me {
        bail!(
            "receipt is for job {} of {}, not ours",
            credit.job,
            credit.prover.node_id()
        );
    }
    std::fs::create_dir_all(&shared.receipts_dir)?;
    let path = receipt_path(&shared.receipts_dir, job);
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    debug!(target: "prover", %job, path = %path.display(), "receipt kept");
    Ok(receipt.header.header.height)
}

/// Where a prover keeps the receipt of `job`.
pub fn receipt_path(dir: &std::path::Path, job: JobId) -> PathBuf {
    dir.join(format!("b{}-j{}.receipt", job.batch.0, job.index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::BatchId;

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
