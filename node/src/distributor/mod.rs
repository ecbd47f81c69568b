//! The distributor role: batches in, jobs out, proofs verified, provers paid.
//!
//! One task owns the whole state (job store, ledger, scheduler, rollup
//! state) and handles, in turn, network requests, API calls and timer ticks,
//! so no lock is ever taken. Every scheduler input is logged to the job store
//! before its effect leaves the node; on restart the log is replayed, so
//! hand-outs made before a crash stay valid and no job is lost or paid twice.
//!
//! # Layout
//! - [`store`]: the durable job store (RocksDB).
//! - [`history`]: per-prover counters and the attempt timeline.
//! - this file: recovery, the request handlers, batch intake and the batch
//!   proof, the centralized baseline's local prover.

pub mod history;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use libp2p::PeerId;
use libp2p::request_response::ResponseChannel;
use protocol::envelope::{self, Verifier};
use protocol::lrp::{Completion, Decision, Lrp, LrpEvent, LrpOutcome, Refusal};
use protocol::messages::{
    AnyMessage, Assignment, BatchProven, InvalidReason, JobAnnouncement, JobRequest,
    KEY_CHUNK_BYTES, KeyChunk, KeyRequest, Message, NoWork, NoWorkReason, Outcome, ProofSubmission,
    ReceiptReply, ReceiptRequest, Rejected, Verdict,
};
use protocol::{BatchId, CircuitId, ContentHash, JobId, PublicKey, SecretKey, Timestamp};
use prover_core::{
    CircuitConfig, PreparedVerifyingKey, Proof, ProvingKey, Rollup, SignedTransfer, TxGenerator,
    VerifyingKey,
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, info_span, warn};

use self::history::History;
use self::store::{BatchRecord, DoneRecord, JobRecord, JobStore};
use crate::api::ApiRequest;
use crate::config::{Config, DistributorSection};
use crate::metrics::Metrics;
use crate::network::{GossipVerdict, NetworkEvent, NetworkHandle, peer_id_of};
use crate::node::NodeInfo;

/// Starting balance of every generated account.
const GENESIS_BALANCE: u64 = 1_000_000_000;
/// How often the distributor checks its timers.
const TICK: Duration = Duration::from_millis(250);
/// Rate-limit buckets kept before the idle ones are dropped.
const MAX_BUCKETS: usize = 65_536;

/// A proof made by the centralized baseline's local prover.
pub struct LocalProof {
    job: JobId,
    request: protocol::RequestId,
    proof: Result<Vec<u8>, String>,
    seconds: f64,
}

/// The distributor's state.
pub struct Distributor {
    secret: SecretKey,
    public: PublicKey,
    info: NodeInfo,
    settings: DistributorSection,
    circuit: CircuitId,
    proving_key_bytes: Arc<Vec<u8>>,
    proving_key_hash: ContentHash,
    local_key: Option<Arc<ProvingKey>>,
    vk: VerifyingKey,
    pvk: PreparedVerifyingKey,
    store: JobStore,
    ledger: ledger::Ledger,
    lrp: Lrp,
    rollup: Rollup,
    generator: TxGenerator,
    verifier: Verifier,
    net: NetworkHandle,
    metrics: Arc<Metrics>,
    allowlist: HashSet<PublicKey>,
    buckets: HashMap<PeerId, (f64, Instant)>,
    history: History,
    uncredited: Vec<ledger::Credit>,
    local_busy: bool,
    local_tx: mpsc::Sender<LocalProof>,
    /// Batches stored so far (the last batch id).
    batches: u64,
    last_generated: Instant,
    verify_count: u64,
    verify_seconds: f64,
    started: Instant,
    /// The depth and capacity of the queues the run loop drains, as of its
    /// last turn: `/status` and the metrics show them.
    queues: [QueueDepth; 2],
}

/// One internal queue's fill, for `/status` and the metrics.
#[derive(Debug, Clone, Copy, Default)]
struct QueueDepth {
    name: &'static str,
    depth: usize,
    capacity: usize,
}

impl QueueDepth {
    fn of<T>(name: &'static str, queue: &mpsc::Receiver<T>) -> Self {
        Self {
            name,
            depth: queue.len(),
            capacity: queue.max_capacity(),
        }
    }

    fn all(events: &mpsc::Receiver<NetworkEvent>, api: &mpsc::Receiver<ApiRequest>) -> [Self; 2] {
        [
            Self::of("network_events", events),
            Self::of("api_requests", api),
        ]
    }
}

/// Paths of a circuit's key files in `keys_dir`.
pub fn key_paths(
    keys_dir: &std::path::Path,
    circuit: &CircuitId,
) -> (std::path::PathBuf, std::path::PathBuf) {
    (
        keys_dir.join(format!("{circuit}.pk")),
        keys_dir.join(format!("{circuit}.vk")),
    )
}

impl Distributor {
    /// Opens (or creates) the distributor's state under the data dir and
    /// replays its scheduler log.
    pub fn open(
        config: &Config,
        secret: SecretKey,
        net: NetworkHandle,
        metrics: Arc<Metrics>,
        info: NodeInfo,
        local_tx: mpsc::Sender<LocalProof>,
    ) -> anyhow::Result<Self> {
        let settings = config.distributor.clone();
        let circuit = CircuitId::new(settings.circuit.clone())
            .map_err(|e| anyhow::anyhow!("invalid circuit id {:?}: {e}", settings.circuit))?;
        let circuit_config = CircuitConfig::from_circuit_id(&circuit)
            .with_context(|| format!("unsupported circuit {circuit}"))?;
        let jobs_per_batch = settings
            .batch_txs
            .div_ceil(circuit_config.transfers_per_job as usize);
        if settings.batch_txs == 0 || jobs_per_batch > protocol::messages::MAX_JOBS_PER_ANNOUNCEMENT
        {
            bail!(
                "batch_txs {} gives {jobs_per_batch} jobs per batch; it must give 1 to {}",
                settings.batch_txs,
                protocol::messages::MAX_JOBS_PER_ANNOUNCEMENT
            );
        }
        let (pk_path, vk_path) = key_paths(&settings.keys_dir, &circuit);
        let missing = |path: &std::path::Path| {
            format!(
                "cannot load {}; create the keys with `crowdprove setup --circuit {circuit} --out {}`",
                path.display(),
                settings.keys_dir.display()
            )
        };
        let vk =
            VerifyingKey::load_for(&vk_path, &circuit, None).with_context(|| missing(&vk_path))?;
        let proving_key_bytes = std::fs::read(&pk_path).with_context(|| missing(&pk_path))?;
        let proving_key_hash = ContentHash::of(&proving_key_bytes);
        let local_key = if settings.centralized {
            info!(target: "distributor", "centralized mode: loading the proving key to prove every job here");
            Some(Arc::new(
                ProvingKey::from_bytes(&proving_key_bytes, Some(proving_key_hash))
                    .with_context(|| format!("cannot parse proving key {}", pk_path.display()))?,
            ))
        } else {
            None
        };
        let pvk = vk.prepare();

        let data = &config.node.data_dir;
        let store = JobStore::open(data.join("jobs"))?;
        let ledger_config = ledger::LedgerConfig {
            max_block_age_ms: settings.block_interval_ms,
            ..ledger::LedgerConfig::default()
        };
        let ledger = ledger::Ledger::open(data.join("ledger"), &secret, ledger_config)?;

        let mut generator = TxGenerator::new(settings.seed, settings.accounts);
        let rollup = match store.rollup_state()? {
            Some(bytes) => {
                let rollup =
                    Rollup::from_bytes(&bytes).context("the saved rollup state is corrupt")?;
                if rollup.config() != circuit_config {
                    bail!(
                        "the data dir {} holds a rollup for circuit {}, not {circuit}; use another data dir",
                        data.display(),
                        rollup.config().circuit_id()
                    );
                }
                rollup
            }
            None => {
                let rollup = generator.genesis(circuit_config, GENESIS_BALANCE)?;
                store.save_genesis(&rollup.to_bytes())?;
                info!(target: "distributor", accounts = settings.accounts, "created genesis rollup state");
                rollup
            }
        };

        let events = store.events()?;
        let (lrp, outcomes) = Lrp::replay(config.lrp(), &events)?;
        let mut history = History::default();
        for (event, outcome) in events.iter().zip(&outcomes) {
            history.record(event, outcome, settings.reward_per_job);
        }
        let allowlist = config.allowlist()?.into_iter().collect();
        let public = secret.public();
        let mut distributor = Self {
            secret,
            public,
            info,
            circuit,
            proving_key_bytes: Arc::new(proving_key_bytes),
            proving_key_hash,
            local_key,
            vk,
            pvk,
            store,
            ledger,
            lrp,
            rollup,
            generator,
            verifier: Verifier::default(),
            net,
            metrics,
            allowlist,
            buckets: HashMap::new(),
            history,
            uncredited: Vec::new(),
            local_busy: false,
            local_tx,
            batches: 0,
            last_generated: Instant::now(),
            verify_count: 0,
            verify_seconds: 0.0,
            started: Instant::now(),
            queues: Default::default(),
            settings,
        };
        distributor.batches = distributor.store.batches()?.len() as u64;
        distributor.recover()?;
        Ok(distributor)
    }

    /// After a restart: pays completed jobs the ledger missed and finishes
    /// batches whose last proof arrived just before the crash.
    fn recover(&mut self) -> anyhow::Result<()> {
        let mut open = 0;
        for batch in self.store.batches()? {
            if batch.proven.is_some() {
                continue;
            }
            for (index, job) in self.store.batch_jobs(batch.id)?.into_iter().enumerate() {
                let id = JobId::new(batch.id, index as u32);
                match job.done {
                    Some(done) if !self.ledger.is_credited(id)? => {
                        warn!(target: "distributor", job = %id, "completed before the crash but not paid; paying now");
                        self.credit(id, &done);
                    }
                    Some(_) => {}
                    None => open += 1,
                }
            }
            if self.lrp.is_finished(batch.id) {
                self.finish_batch(batch.id);
            }
        }
        let counts = self.lrp.counts();
        info!(
            target: "distributor",
            batches = self.batches,
            open_jobs = open,
            fresh = counts.fresh,
            pending = counts.pending,
            next_request = self.lrp.next_request_id().0,
            ledger_height = self.ledger.height(),
            "state loaded"
        );
        Ok(())
    }

    /// Serves until `shutdown` fires.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<NetworkEvent>,
        mut api: mpsc::Receiver<ApiRequest>,
        mut local: mpsc::Receiver<LocalProof>,
        mut shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        self.net.provide().await?;
        // Re-announce open batches: provers that were waiting learn of them.
        for batch in self.store.batches()? {
            if batch.proven.is_none() {
                self.announce(&batch).await;
            }
        }
        let mut tick = tokio::time::interval(TICK);
        loop {
            self.queues = QueueDepth::all(&events, &api);
            tokio::select! {
                Some(event) = events.recv() => self.on_network(event).await?,
                Some(request) = api.recv() => self.on_api(request).await?,
                Some(proof) = local.recv() => self.on_local_proof(proof).await?,
                _ = tick.tick() => self.on_tick().await?,
                _ = shutdown.changed() => break,
            }
        }
        if let Err(e) = self.ledger.cut_block() {
            warn!(target: "ledger", error = %e, "could not cut a last block at shutdown");
        }
        info!(target: "distributor", "stopped");
        Ok(())
    }

    async fn on_tick(&mut self) -> anyhow::Result<()> {
        let now = Timestamp::now();
        match self.ledger.maybe_cut_blocks(now) {
            Ok(blocks) => {
                for block in blocks {
                    info!(target: "ledger", height = block.header.height, txs = block.header.tx_count, "block cut");
                }
            }
            Err(e) => {
                self.metrics.ledger_write_errors.inc();
                error!(target: "ledger", error = %e, "cannot cut a block")
            }
        }
        self.metrics.ledger_height.set(self.ledger.height() as i64);
        self.metrics
            .ledger_pending_txs
            .set(self.ledger.pending_len() as i64);
        let counts = self.lrp.counts();
        self.metrics
            .jobs_open
            .set((counts.fresh + counts.pending) as i64);
        for q in &self.queues {
            self.metrics.queue(q.name, q.depth, q.capacity);
        }
        if !self.uncredited.is_empty() {
            let pending = std::mem::take(&mut self.uncredited);
            for credit in pending {
                self.append_credit(credit);
            }
        }
        if let Ok(stats) = self.net.stats().await {
            self.metrics.peers.set(stats.peers as i64);
            self.metrics
                .wire_bytes
                .get_or_create(&crate::metrics::label("direction", "read"))
                .set(stats.rpc_bytes_read as i64);
            self.metrics
                .wire_bytes
                .get_or_create(&crate::metrics::label("direction", "written"))
                .set(stats.rpc_bytes_written as i64);
        }
        let s = &self.settings;
        if s.batch_interval_secs > 0
            && (s.max_batches == 0 || self.batches < s.max_batches)
            && self.last_generated.elapsed() >= Duration::from_secs(s.batch_interval_secs)
            && let Err(e) = self.new_batch(None).await
        {
            warn!(target: "distributor", error = %e, "could not generate a batch");
        }
        self.run_local_prover()?;
        Ok(())
    }

    /// Turns transactions (or, with `None`, a generated set) into a batch:
    /// applied to the rollup state, cut into jobs, stored, scheduled, announced.
    pub async fn new_batch(&mut self, txs: Option<Vec<SignedTransfer>>) -> anyhow::Result<Value> {
        self.last_generated = Instant::now();
        let txs = match txs {
            Some(txs) => txs,
            None => self.generator.batch(&self.rollup, self.settings.batch_txs),
        };
        if txs.is_empty() {
            bail!("the batch has no transactions");
        }
        let mut next = self.rollup.clone();
        let built = next
            .apply_batch(&txs)
            .context("no transaction in the batch is valid")?;
        // Batch ids run 1, 2, 3, ... with no gaps: a batch is stored whole or not at all.
        let id = BatchId(self.batches + 1);
        let record = BatchRecord {
            id,
            old_root: built.old_root,
            new_root: built.new_root,
            jobs: built.jobs.len() as u32,
            txs: (txs.len() - built.rejected.len()) as u32,
            created: Timestamp::now(),
            proven: None,
        };
        let jobs: Vec<JobRecord> = built
            .jobs
            .iter()
            .map(|j| JobRecord {
                public: j.public,
                witness: j.to_bytes(),
                done: None,
            })
            .collect();
        let job_ids: Vec<JobId> = (0..record.jobs).map(|i| JobId::new(id, i)).collect();
        let submit = LrpEvent::Submit {
            jobs: job_ids.clone(),
        };
        self.store
            .add_batch(&record, &jobs, &next.to_bytes(), &submit)?;
        self.rollup = next;
        self.lrp.apply(&submit);
        self.batches += 1;
        self.metrics.batches_submitted.inc();
        for rejection in &built.rejected {
            debug!(target: "distributor", batch = %id, %rejection, "transaction refused");
        }
        info!(
            target: "distributor",
            batch = %id,
            jobs = record.jobs,
            txs = record.txs,
            rejected = built.rejected.len(),
            "batch cut into jobs"
        );
        self.announce(&record).await;
        Ok(json!({
            "batch": id.0,
            "jobs": record.jobs,
            "txs": record.txs,
            "rejected": built.rejected.len(),
        }))
    }

    async fn announce(&self, batch: &BatchRecord) {
        let announcement = JobAnnouncement {
            batch: batch.id,
            jobs: (0..batch.jobs).map(|i| JobId::new(batch.id, i)).collect(),
            circuit: self.circuit.clone(),
            proving_key: self.proving_key_hash,
            verifying_key: self.vk.hash(),
            reward_per_job: self.settings.reward_per_job,
        };
        let bytes = envelope::seal_now(&announcement, &self.secret);
        if let Err(e) = self.net.publish(bytes).await {
            warn!(target: "net", batch = %batch.id, error = %e, "announcement not published");
        }
    }

    async fn on_network(&mut self, event: NetworkEvent) -> anyhow::Result<()> {
        match event {
            NetworkEvent::Request {
                peer,
                bytes,
                channel,
            } => self.on_request(peer, bytes, channel).await?,
            NetworkEvent::Gossip { id, source, bytes } => {
                // Only our own messages belong on the topic; anything else
                // claiming to be from a distributor is someone else's.
                let verdict = match envelope::open_any(&bytes, Timestamp::now(), Default::default())
                {
                    Ok(signed) if signed.signer() == self.public => GossipVerdict::Accept,
                    Ok(_) => GossipVerdict::Ignore,
                    Err(e) => {
                        self.metrics.reject(e.label());
                        GossipVerdict::Reject
                    }
                };
                self.net.report(id, source, verdict).await;
            }
            NetworkEvent::InboundFailure { peer, reason } => {
                debug!(target: "net", %peer, reason, "inbound request failed");
                self.metrics.reject(reason);
            }
            NetworkEvent::Connected(peer) => debug!(target: "net", %peer, "peer connected"),
            NetworkEvent::Disconnected(peer) => debug!(target: "net", %peer, "peer disconnected"),
        }
        Ok(())
    }

    fn rate_limited(&mut self, peer: PeerId) -> bool {
        let rate = f64::from(self.settings.rate_limit_per_sec.max(1));
        let burst = f64::from(self.settings.rate_limit_burst.max(1));
        let now = Instant::now();
        if self.buckets.len() >= MAX_BUCKETS {
            self.buckets
                .retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(60));
        }
        let (tokens, at) = self.buckets.entry(peer).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            false
        } else {
            true
        }
    }

    async fn refuse(&self, channel: ResponseChannel<Vec<u8>>, reason: &str) {
        self.metrics.reject(reason);
        let message = Rejected {
            reason: reason.to_string(),
        };
        self.net
            .respond(channel, envelope::seal_now(&message, &self.secret))
            .await;
    }

    async fn reply<M: Message>(&self, channel: ResponseChannel<Vec<u8>>, message: &M) {
        self.net
            .respond(channel, envelope::seal_now(message, &self.secret))
            .await;
    }

    async fn on_request(
        &mut self,
        peer: PeerId,
        bytes: Vec<u8>,
        channel: ResponseChannel<Vec<u8>>,
    ) -> anyhow::Result<()> {
        if self.rate_limited(peer) {
            debug!(target: "distributor", %peer, "rate limited");
            return {
                self.refuse(channel, "rate_limited").await;
                Ok(())
            };
        }
        let now = Timestamp::now();
        let signed = match self.verifier.open_any(&bytes, now) {
            Ok(signed) => signed,
            Err(e) => {
                info!(target: "distributor", %peer, error = %e, "request refused");
                self.refuse(channel, e.label()).await;
                return Ok(());
            }
        };
        let prover = signed.signer();
        if peer_id_of(&prover) != peer {
            info!(target: "distributor", %peer, "request signed by another node's key");
            self.refuse(channel, "signer_mismatch").await;
            return Ok(());
        }
        if !self.allowlist.is_empty() && !self.allowlist.contains(&prover) {
            self.refuse(channel, "not_admitted").await;
            return Ok(());
        }
        match signed.body {
            AnyMessage::JobRequest(request) => {
                self.on_job_request(prover, request, now, channel).await?
            }
            AnyMessage::ProofSubmission(submission) => {
                let verdict = self.on_submission(prover, submission, now).await?;
                self.reply(channel, &verdict).await;
            }
            AnyMessage::Release(release) => {
                let event = LrpEvent::Release {
                    job: release.job,
                    request: release.request,
                    prover,
                    now,
                };
                let outcome = self.apply(&event)?;
                debug!(target: "lrp", job = %release.job, ?outcome, "release");
                self.reply(channel, &release).await;
            }
            AnyMessage::KeyRequest(request) => self.on_key_request(request, channel).await,
            AnyMessage::ReceiptRequest(request) => self.on_receipt_request(request, channel).await,
            _ => self.refuse(channel, "unexpected_kind").await,
        }
        Ok(())
    }

    /// Applies a scheduler event and logs it; a log failure stops the node,
    /// since a scheduler ahead of its log could forget a hand-out. Events
    /// whose effect leaves the node (a hand-out) wait for the disk; the rest
    /// (no work, strikes, releases) only move the clock or void a hand-out,
    /// and are written without a sync.
    fn apply(&mut self, event: &LrpEvent) -> anyhow::Result<LrpOutcome> {
        let outcome = self.lrp.apply(event);
        let sync = matches!(outcome, LrpOutcome::Decided(Decision::Assign(_)));
        self.store
            .log_event(event, sync)
            .context("cannot log to the job store; stopping so no hand-out is forgotten")?;
        self.history
            .record(event, &outcome, self.settings.reward_per_job);
        Ok(outcome)
    }

    async fn on_job_request(
        &mut self,
        prover: PublicKey,
        request: JobRequest,
        now: Timestamp,
        channel: ResponseChannel<Vec<u8>>,
    ) -> anyhow::Result<()> {
        let no_work = |reason, retry_after_ms| NoWork {
            reason,
            retry_after_ms,
        };
        if self.settings.centralized {
            return {
                self.reply(channel, &no_work(NoWorkReason::Refused, 60_000))
                    .await;
                Ok(())
            };
        }
        if !request.circuits.is_empty() && !request.circuits.contains(&self.circuit) {
            self.reply(channel, &no_work(NoWorkReason::Idle, 30_000))
                .await;
            return Ok(());
        }
        match self.hand_out(prover, now)? {
            Ok(assignment) => self.reply(channel, &assignment).await,
            Err(no) => self.reply(channel, &no).await,
        }
        Ok(())
    }

    /// One LRP decision for `prover`: an assignment, or why not.
    fn hand_out(
        &mut self,
        prover: PublicKey,
        now: Timestamp,
    ) -> anyhow::Result<Result<Assignment, NoWork>> {
        let event = LrpEvent::Request { prover, now };
        let LrpOutcome::Decided(decision) = self.apply(&event)? else {
            unreachable!("a request is answered by a decision")
        };
        let retry = |at: Timestamp| at.millis_since(now).max(250);
        Ok(match decision {
            Decision::Assign(handout) => {
                let job = self
                    .store
                    .job(handout.job)?
                    .with_context(|| format!("job {} is scheduled but not stored", handout.job))?;
                self.metrics
                    .assigned(if handout.reserve { "reserve" } else { "fresh" });
                info!(
                    target: "lrp",
                    job = %handout.job,
                    request = handout.request.0,
                    prover = %prover.node_id(),
                    reserve = handout.reserve,
                    "assigned"
                );
                Ok(Assignment {
                    job: handout.job,
                    request: handout.request,
                    prover,
                    circuit: self.circuit.clone(),
                    proving_key: self.proving_key_hash,
                    witness: job.witness,
                    reward: self.settings.reward_per_job,
                })
            }
            Decision::NoWork { retry_at } => Err(NoWork {
                reason: NoWorkReason::Idle,
                retry_after_ms: retry(retry_at),
            }),
            Decision::Refused(Refusal::AtCapacity { retry_at, .. }) => Err(NoWork {
                reason: NoWorkReason::AtCapacity,
                retry_after_ms: retry(retry_at),
            }),
            Decision::Refused(Refusal::Cooldown { until, .. }) => Err(NoWork {
                reason: NoWorkReason::CoolingDown,
                retry_after_ms: retry(until),
            }),
            Decision::Refused(Refusal::Banned { .. } | Refusal::RequestIdsExhausted) => {
                Err(NoWork {
                    reason: NoWorkReason::Refused,
                    retry_after_ms: 3_600_000,
                })
            }
        })
    }

    /// Judges a proof submission: unknown pairs are dropped unverified, the
    /// first valid proof of a job is paid, later ones are late.
    async fn on_submission(
        &mut self,
        prover: PublicKey,
        submission: ProofSubmission,
        now: Timestamp,
    ) -> anyhow::Result<Verdict> {
        let ProofSubmission {
            job,
            request,
            proof,
        } = submission;
        let _span = info_span!("job", %job).entered();
        let proof_hash = ContentHash::of(&proof);
        let verdict = |outcome| Verdict {
            job,
            request,
            prover,
            proof_hash,
            outcome,
        };
        let done_already = |this: &Self| match this.lrp.job(job) {
            Some(protocol::lrp::JobView::Done { .. }) => true,
            // A finished batch is forgotten by the scheduler; the store remembers.
            None => matches!(
                this.store.job(job),
                Ok(Some(JobRecord { done: Some(_), .. }))
            ),
            _ => false,
        };
        if done_already(self) {
            self.metrics.proof("late");
            self.history.late(prover, request, now);
            debug!(target: "distributor", prover = %prover.node_id(), "late proof");
            return Ok(verdict(Outcome::Late));
        }
        let holder = match self.lrp.job(job) {
            Some(protocol::lrp::JobView::Pending { holders }) => {
                holders.iter().find(|h| h.request == request).copied()
            }
            _ => None,
        };
        let Some(holder) = holder.filter(|h| h.prover == prover) else {
            self.metrics.proof("not_issued");
            self.history.not_issued(prover);
            info!(
                target: "distributor",
                prover = %prover.node_id(),
                request = request.0,
                "proof for a hand-out never issued to this prover; dropped unverified"
            );
            return Ok(verdict(Outcome::Invalid(InvalidReason::NotIssued)));
        };
        let record = self
            .store
            .job(job)?
            .with_context(|| format!("job {job} is scheduled but not stored"))?;
        let started = Instant::now();
        let checked = Proof::from_bytes(&proof)
            .map_err(|_| InvalidReason::MalformedProof)
            .and_then(|p| {
                prover_core::verify(&self.pvk, &record.public, &p)
                    .map_err(|_| InvalidReason::VerificationFailed)
            });
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.verify_seconds.observe(seconds);
        self.verify_count += 1;
        self.verify_seconds += seconds;
        if let Err(reason) = checked {
            self.metrics.proof("invalid");
            let event = LrpEvent::Invalid {
                job,
                request: holder.request,
                prover,
                now,
            };
            let outcome = self.apply(&event)?;
            warn!(target: "distributor", prover = %prover.node_id(), ?reason, ?outcome, "invalid proof");
            return Ok(verdict(Outcome::Invalid(reason)));
        }
        let event = LrpEvent::Complete {
            job,
            request,
            prover,
            now,
        };
        let outcome = self.lrp.apply(&event);
        self.history
            .record(&event, &outcome, self.settings.reward_per_job);
        let LrpOutcome::Completed(completion) = outcome else {
            unreachable!("a completion is answered by a completion")
        };
        match completion {
            Completion::Accepted { batch_finished, .. } => {
                let done = DoneRecord {
                    prover,
                    request,
                    proof,
                    at: now,
                };
                self.store
                    .complete_job(job, done.clone(), &event)
                    .context("cannot record a completed job; stopping")?;
                self.metrics.proof("valid");
                self.metrics.jobs_completed.inc();
                info!(target: "distributor", prover = %prover.node_id(), ms = (seconds * 1e3) as u64, "proof accepted");
                self.credit(job, &done);
                if batch_finished {
                    self.finish_batch(job.batch);
                    self.publish_proven(job.batch).await;
                }
                Ok(verdict(Outcome::Accepted {
                    reward: self.settings.reward_per_job,
                }))
            }
            _ => {
                self.metrics.proof("late");
                self.history.late(prover, request, now);
                Ok(verdict(Outcome::Late))
            }
        }
    }

    fn credit(&mut self, job: JobId, done: &DoneRecord) {
        let credit = ledger::Credit::new(
            done.prover,
            job,
            self.settings.reward_per_job,
            ContentHash::of(&done.proof),
        );
        self.append_credit(credit);
    }

    fn append_credit(&mut self, credit: ledger::Credit) {
        match self.ledger.append(&[ledger::Tx::Credit(credit.clone())]) {
            Ok(_) => {}
            Err(ledger::Error::AlreadyCredited { job }) => {
                debug!(target: "ledger", %job, "already credited");
            }
            Err(e) => {
                self.metrics.ledger_write_errors.inc();
                error!(target: "ledger", job = %credit.job, error = %e, "credit not written; will retry");
                self.uncredited.push(credit);
            }
        }
    }

    /// Checks a finished batch's proof (root chain and batch verification)
    /// and records it proven.
    fn finish_batch(&mut self, batch: BatchId) {
        let result = (|| -> anyhow::Result<()> {
            let record = self
                .store
                .batch(batch)?
                .with_context(|| format!("batch {batch} is not stored"))?;
            let mut chunks = Vec::with_capacity(record.jobs as usize);
            for job in self.store.batch_jobs(batch)? {
                let done = job
                    .done
                    .with_context(|| format!("batch {batch} has a job without a proof"))?;
                chunks.push((job.public, Proof::from_bytes(&done.proof)?));
            }
            let started = Instant::now();
            prover_core::verify_batch_proof(
                &self.pvk,
                record.old_root,
                record.new_root,
                &chunks,
                &mut rand::rngs::OsRng,
            )?;
            let now = Timestamp::now();
            let forget = LrpEvent::Forget { batch };
            self.store.mark_proven(batch, now, &forget)?;
            self.lrp.apply(&forget);
            self.metrics.batches_proven.inc();
            info!(
                target: "distributor",
                batch = %batch,
                jobs = record.jobs,
                latency_ms = now.millis_since(record.created),
                batch_verify_ms = started.elapsed().as_millis() as u64,
                "batch proven"
            );
            Ok(())
        })();
        if let Err(e) = result {
            error!(target: "distributor", batch = %batch, error = %format!("{e:#}"), "batch proof failed");
        }
    }

    async fn publish_proven(&self, batch: BatchId) {
        let Ok(Some(record)) = self.store.batch(batch) else {
            return;
        };
        if record.proven.is_none() {
            return;
        }
        let Ok(jobs) = self.store.batch_jobs(batch) else {
            return;
        };
        let proofs = ContentHash::of_parts(
            jobs.iter()
                .filter_map(|j| j.done.as_ref())
                .map(|d| d.proof.as_slice()),
        );
        let message = BatchProven {
            batch,
            jobs: record.jobs,
            old_root: record.old_root.0,
            new_root: record.new_root.0,
            proofs,
        };
        if let Err(e) = self
            .net
            .publish(envelope::seal_now(&message, &self.secret))
            .await
        {
            debug!(target: "net", error = %e, "batch-proven not published");
        }
    }

    async fn on_key_request(&self, request: KeyRequest, channel: ResponseChannel<Vec<u8>>) {
        if request.key != self.proving_key_hash {
            self.refuse(channel, "unknown_key").await;
            return;
        }
        let total = self.proving_key_bytes.len() as u64;
        let start = u64::from(request.chunk) * KEY_CHUNK_BYTES as u64;
        if start >= total {
            self.refuse(channel, "chunk_out_of_range").await;
            return;
        }
        let end = (start + KEY_CHUNK_BYTES as u64).min(total);
        let chunk = KeyChunk {
            key: self.proving_key_hash,
            chunk: request.chunk,
            total_len: total,
            data: self.proving_key_bytes[start as usize..end as usize].to_vec(),
        };
        self.reply(channel, &chunk).await;
    }

    async fn on_receipt_request(&self, request: ReceiptRequest, channel: ResponseChannel<Vec<u8>>) {
        match self.ledger.receipt(request.job) {
            Ok(receipt) => {
                let reply = ReceiptReply {
                    job: request.job,
                    receipt: receipt.encode(),
                };
                self.reply(channel, &reply).await;
            }
            Err(ledger::Error::NotYetInBlock { .. }) => {
                let reply = ReceiptReply {
                    job: request.job,
                    receipt: Vec::new(),
                };
                self.reply(channel, &reply).await;
            }
            Err(ledger::Error::NotCredited { .. }) => self.refuse(channel, "not_credited").await,
            Err(e) => {
                error!(target: "ledger", error = %e, "receipt failed");
                self.refuse(channel, "ledger_error").await;
            }
        }
    }

    /// The centralized baseline: while jobs are open, prove one at a time on
    /// every local core, through the same scheduler, verifier and ledger.
    fn run_local_prover(&mut self) -> anyhow::Result<()> {
        let Some(key) = self.local_key.clone() else {
            return Ok(());
        };
        if self.local_busy || self.lrp.is_all_finished() {
            return Ok(());
        }
        let assignment = match self.hand_out(self.public, Timestamp::now())? {
            Ok(a) => a,
            Err(_) => return Ok(()),
        };
        self.local_busy = true;
        let tx = self.local_tx.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let proof = prover_core::prove(&key, &assignment.witness)
                .map(|p| p.to_bytes().to_vec())
                .map_err(|e| e.to_string());
            let _ = tx.blocking_send(LocalProof {
                job: assignment.job,
                request: assignment.request,
                proof,
                seconds: started.elapsed().as_secs_f64(),
            });
        });
        Ok(())
    }

    async fn on_local_proof(&mut self, local: LocalProof) -> anyhow::Result<()> {
        self.local_busy = false;
        self.metrics.prove_seconds.observe(local.seconds);
        match local.proof {
            Ok(proof) => {
                let submission = ProofSubmission {
                    job: local.job,
                    request: local.request,
                    proof,
                };
                let verdict = self
                    .on_submission(self.public, submission, Timestamp::now())
                    .await?;
                debug!(target: "distributor", job = %local.job, outcome = ?verdict.outcome, "local proof");
            }
            Err(e) => {
                error!(target: "distributor", job = %local.job, error = %e, "local proving failed")
            }
        }
        self.run_local_prover()
    }

    async fn on_api(&mut self, request: ApiRequest) -> anyhow::Result<()> {
        match request {
            ApiRequest::Status(reply) => {
                let status = self.status().await;
                let _ = reply.send(status);
            }
            ApiRequest::Attempts { last, reply } => {
                let store = &self.store;
                let lrp = &self.lrp;
                let doc = self.history.attempts_json(last, |job| match lrp.job(job) {
                    Some(protocol::lrp::JobView::Done { .. }) => true,
                    Some(_) => false,
                    None => matches!(store.job(job), Ok(Some(JobRecord { done: Some(_), .. }))),
                });
                let _ = reply.send(doc);
            }
            ApiRequest::SubmitBatch(body, reply) => {
                let answer = match parse_batch_body(&body) {
                    Ok(txs) => self.new_batch(txs).await.map_err(|e| format!("{e:#}")),
                    Err(e) => Err(e),
                };
                let _ = reply.send(answer);
            }
        }
        Ok(())
    }

    async fn status(&self) -> Value {
        let net = self.net.stats().await.unwrap_or_default();
        let counts = self.lrp.counts();
        let tip = self.ledger.tip();
        let batches: Vec<Value> = self
            .store
            .batches()
            .unwrap_or_default()
            .iter()
            .map(|b| {
                let done = match self.lrp.batch(b.id) {
                    Some(p) => p.done,
                    None if b.proven.is_some() => u64::from(b.jobs),
                    None => 0,
                };
                json!({
                    "id": b.id.0,
                    "jobs": b.jobs,
                    "txs": b.txs,
                    "done": done,
                    "created_ms": b.created.0,
                    "proven_ms": b.proven.map(|t| t.0),
                    "latency_ms": b.proven.map(|t| t.millis_since(b.created)),
                })
            })
            .collect();
        let proven = batches.iter().filter(|b| !b["proven_ms"].is_null()).count();
        let provers: Vec<Value> = self
            .history
            .provers
            .iter()
            .map(|(key, s)| {
                let view = self.lrp.prover(key);
                json!({
                    "public_key": key.to_hex(),
                    "node_id": key.node_id().to_string(),
                    "assigned": s.assigned,
                    "reserved": s.reserved,
                    "accepted": s.accepted,
                    "late": s.late,
                    "invalid": s.invalid,
                    "not_issued": s.not_issued,
                    "released": s.released,
                    "earned": s.earned,
                    "balance": self.ledger.balance(key),
                    "strikes": view.as_ref().map_or(0, |v| v.strikes),
                    "holding": view.as_ref().map_or(0, |v| v.holdings.len()),
                    "mean_prove_ms": s.mean_prove_ms(),
                    "last_seen_ms": s.last_seen.map(|t| t.0),
                })
            })
            .collect();
        json!({
            "role": "distributor",
            "node": self.info.to_json(),
            "peers": net.peers,
            "circuit": self.circuit.as_str(),
            "proving_key": self.proving_key_hash.to_hex(),
            "verifying_key": self.vk.hash().to_hex(),
            "centralized": self.settings.centralized,
            "now_ms": Timestamp::now().0,
            "uptime_ms": self.started.elapsed().as_millis() as u64,
            "batches": {
                "total": batches.len(),
                "proven": proven,
                "open": batches.len() - proven,
                "list": batches,
            },
            "jobs": {
                "fresh": counts.fresh,
                "pending": counts.pending,
                "done": counts.done,
                "next_request_id": self.lrp.next_request_id().0,
            },
            "provers": provers,
            "verification": {
                "proofs": self.verify_count,
                "total_ms": self.verify_seconds * 1e3,
                "mean_ms": if self.verify_count == 0 { 0.0 } else { self.verify_seconds * 1e3 / self.verify_count as f64 },
            },
            "wire": {
                "rpc_bytes_read": net.rpc_bytes_read,
                "rpc_bytes_written": net.rpc_bytes_written,
            },
            "queues": self.queues.iter().map(|q| {
                (q.name.to_string(), json!({ "depth": q.depth, "capacity": q.capacity }))
            }).collect::<serde_json::Map<_, _>>(),
            "ledger": {
                "height": self.ledger.height(),
                "pending": self.ledger.pending_len(),
                "last_block": {
                    "height": tip.header.height,
                    "hash": tip.hash().to_hex(),
                    "txs": tip.header.tx_count,
                    "time_ms": tip.header.timestamp.0,
                },
            },
        })
    }
}

/// `POST /batch` bodies: empty (generate a batch of the configured size) or
/// a JSON array of signed transfers.
fn parse_batch_body(body: &[u8]) -> Result<Option<Vec<SignedTransfer>>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    match value {
        Value::Array(_) => serde_json::from_value(value)
            .map(Some)
            .map_err(|e| format!("not an array of signed transfers: {e}")),
        _ => Err("expected an empty body or a JSON array of signed transfers".into()),
    }
}
