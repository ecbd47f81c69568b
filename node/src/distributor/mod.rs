//! The distributor role: batches in, jobs out, proofs verified, provers paid.
//!
//! A run loop routes requests to services, each on its own thread behind a
//! queue, so the loop itself does no proof verification, no fsync and no
//! batch building:
//!
//! ```text
//!  network ──▶ run loop: admission (router) ─┬─▶ scheduler core (LRP) ──▶ journal ──▶ reply
//!                                            ├─▶ verification pool ──▶ scheduler ──▶ journal ──▶ payout ──▶ reply
//!                                            └─▶ serving (key chunks, receipts) ──▶ reply
//!  API ──▶ run loop ──▶ intake (apply_batch) ──▶ scheduler ──▶ journal ──▶ announce
//! ```
//!
//! Every scheduler input is logged to the job store before its effect
//! leaves the node; on restart the log is replayed, so hand-outs made
//! before a crash stay valid and no job is lost or paid twice.
//!
//! # Layout
//! - [`router`]: admission — rate limit, envelope, signer, allowlist.
//! - [`scheduler`]: the LRP and the history; the one `apply`.
//! - [`journal`]: the job-store writer (group commits, follow-ups).
//! - [`verify`]: the verification pool (batched, bisected).
//! - [`payout`]: the ledger writer (group commits, blocks).
//! - [`queue`]: the never-waiting queues in front of the services.
//! - [`serving`]: key chunks and receipts.
//! - [`intake`]: batch building.
//! - [`centralized`]: the local-proving baseline.
//! - [`status`]: the `/status` snapshot.
//! - [`store`], [`history`]: the durable job store; per-prover counters.
//! - this file: start-up and recovery, the run loop, dispatch, shutdown.

pub mod centralized;
pub mod history;
pub mod intake;
pub mod journal;
pub mod outbox;
pub mod pardon;
pub mod payout;
pub mod queue;
pub mod router;
pub mod scheduler;
pub mod serving;
pub mod status;
pub mod store;
pub mod verify;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use libp2p::PeerId;
use protocol::lrp::{Completion, Decision, HeartbeatOutcome, LrpEvent, LrpOutcome, Refusal};
use protocol::messages::{
    AnyMessage, Assignment, BatchProven, InvalidReason, JobAnnouncement, JobRequest, KeyRequest,
    NoWork, NoWorkReason, Outcome, ProofSubmission, Verdict,
};
use protocol::{BatchId, CircuitId, ContentHash, JobId, PublicKey, SecretKey, Timestamp};
use prover_core::{AnyProvingKey, Circuit, Rollup, TxGenerator, VerifyingKey};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

use self::centralized::{LocalProof, LocalProver};
use self::intake::{BatchInput, BuildRequest, Intake, IntakeThread, NewBatch, Workload};
use self::journal::{Journal, JournalThread};
use self::outbox::{Channel, Outbox};
use self::payout::{Payout, PayoutThread, SharedLedger};
use self::router::{Admission, RateLimits};
use self::scheduler::{Log, Scheduler};
use self::serving::{KeyBudget, Serve, Server, ServerThread, Sources};
use self::status::{QueueDepth, StatusBoard};
use self::store::{BatchRecord, Change, DoneRecord, JobRecord, JobStore, Pinned};
use self::verify::{BatchCheck, Checked, PoolThread, ProofCheck, VerifyPool};
use crate::api::{ApiRequest, Rejection};
use crate::config::{Config, DistributorSection};
use crate::disk::Space;
use crate::metrics::Metrics;
use crate::network::{NetworkEvent, NetworkHandle};
use crate::node_info::NodeInfo;

/// Starting balance of every generated account.
pub const GENESIS_BALANCE: u64 = 1_000_000_000;
/// How often the distributor checks its timers and refreshes its status.
const TICK: Duration = Duration::from_millis(250);
/// Batches that may wait to be built.
const INTAKE_QUEUE: usize = 4;

/// Where a circom circuit's constraint system is kept in `keys_dir`.
pub fn r1cs_path(keys_dir: &std::path::Path, circuit: &CircuitId) -> std::path::PathBuf {
    keys_dir.join(format!("{circuit}.r1cs"))
}

/// Paths of a circuit's key files in `keys_dir`: `<circuit>.pk` (a circom
/// circuit's: `<circuit>.zkey`, the snarkjs file as registered) and
/// `<circuit>.vk`.
pub fn key_paths(
    keys_dir: &std::path::Path,
    circuit: &CircuitId,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let proving = if circuit.as_str().starts_with("circom-") {
        "zkey"
    } else {
        "pk"
    };
    (
        keys_dir.join(format!("{circuit}.{proving}")),
        keys_dir.join(format!("{circuit}.vk")),
    )
}

/// A proof on its way through the verification pool.
struct Submission {
    job: JobId,
    request: protocol::RequestId,
    prover: PublicKey,
    proof: Vec<u8>,
    record: JobRecord,
    /// Where the verdict goes; `None` for the baseline's own proofs.
    channel: Option<Channel>,
}

/// A finished batch on its way through the verification pool.
struct BatchContext {
    record: BatchRecord,
}

/// Where a `POST /batch` answer goes; `None` for generated batches.
type BatchReply = Option<oneshot::Sender<Result<Value, Rejection>>>;

/// What the services tell the run loop.
enum Internal {
    Checked(Checked<Submission, BatchContext>),
    Built(anyhow::Result<NewBatch>, BatchReply),
    /// Every job of the batch is credited: check its batch proof.
    Credited(BatchId),
    /// A baseline hand-out is logged: prove it on the reserved slot.
    LocalAssigned(usize, Assignment),
    Local(LocalProof),
    Fatal(String),
}

/// The services' threads, joined at shutdown in pipeline order.
struct Threads {
    intake: IntakeThread,
    pool: PoolThread,
    journal: JournalThread,
    payout: PayoutThread,
    server: ServerThread,
}

/// The distributor.
pub struct Distributor {
    public: PublicKey,
    settings: DistributorSection,
    circuit: CircuitId,
    /// The most transfers one batch may hold: as many jobs as an
    /// announcement may name, each full.
    max_batch_txs: usize,
    /// Whether `batch_interval_secs` makes batches (the transfer rollup's
    /// generator); a circom circuit's batches only come from the API.
    generates_batches: bool,
    proving_key_hash: ContentHash,
    /// What each prover may still fetch of the proving key.
    key_budget: KeyBudget,
    /// The verifying key: its hash is announced, its setup reported, and
    /// proofs are exported with it.
    verifying_key: VerifyingKey,
    store: Arc<JobStore>,
    ledger: SharedLedger,
    scheduler: Scheduler,
    admission: Admission,
    outbox: Outbox,
    metrics: Arc<Metrics>,
    payout: Payout,
    pool: VerifyPool<Submission, BatchContext>,
    server: Server,
    intake: Intake<BatchReply>,
    local: Option<LocalProver>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal: mpsc::UnboundedReceiver<Internal>,
    /// Taken at shutdown.
    threads: Option<Threads>,
    status: StatusBoard,
    info: NodeInfo,
    net: NetworkHandle,
    /// Batches asked of intake so far, stored or not.
    batches: u64,
    /// Batches scheduled (stored or on their way to the store), and proven.
    batches_stored: u64,
    batches_proven: u64,
    last_generated: Instant,
    /// Finished batches whose batch proof waits for room in the pool.
    unchecked: Vec<BatchId>,
    verify_count: u64,
    verify_seconds: f64,
    started: Instant,
    last_status: Option<Instant>,
}

impl Distributor {
    /// Opens (or creates) the distributor's state under the data dir,
    /// replays its scheduler log and starts its services.
    pub fn open(
        config: &Config,
        secret: SecretKey,
        net: NetworkHandle,
        metrics: Arc<Metrics>,
        info: NodeInfo,
        status: StatusBoard,
    ) -> anyhow::Result<Self> {
        let settings = config.distributor.clone();
        let circuit = CircuitId::new(settings.circuit.clone())
            .map_err(|e| anyhow!("invalid circuit id {:?}: {e}", settings.circuit))?;
        let circuit_def =
            Circuit::from_id(&circuit).with_context(|| format!("unsupported circuit {circuit}"))?;
        let transfers_per_job = match circuit_def {
            Circuit::Transfer(config) => config.transfers_per_job as usize,
            Circuit::Circom(_) => 1,
        };
        let jobs_per_batch = settings.batch_txs.div_ceil(transfers_per_job);
        if settings.batch_txs == 0 || jobs_per_batch > protocol::messages::MAX_JOBS_PER_ANNOUNCEMENT
        {
            bail!(
                "batch_txs {} gives {jobs_per_batch} jobs per batch; it must give 1 to {}",
                settings.batch_txs,
                protocol::messages::MAX_JOBS_PER_ANNOUNCEMENT
            );
        }
        let (pk_path, vk_path) = key_paths(&settings.keys_dir, &circuit);
        let make_keys = match circuit_def {
            Circuit::Transfer(_) => format!("crowdprove setup --circuit {circuit}"),
            Circuit::Circom(_) => {
                "crowdprove setup --zkey <circuit.zkey> --r1cs <circuit.r1cs>".to_string()
            }
        };
        let missing = |path: &std::path::Path| {
            format!(
                "cannot load {}; create the keys with `{make_keys} --out {}`",
                path.display(),
                settings.keys_dir.display()
            )
        };
        let vk =
            VerifyingKey::load_for(&vk_path, &circuit, None).with_context(|| missing(&vk_path))?;
        let proving_key_bytes = std::fs::read(&pk_path).with_context(|| missing(&pk_path))?;
        let proving_key_hash = ContentHash::of(&proving_key_bytes);
        let key_budget = KeyBudget::new(
            proving_key_bytes.len() as u64,
            settings.key_downloads_per_hour,
        );
        // The proving key provers will fetch must match the verifying key
        // their proofs are judged by, or every honest proof fails and honest
        // provers are struck.
        let checked = Instant::now();
        let key =
            AnyProvingKey::from_bytes(circuit_def, &proving_key_bytes, Some(proving_key_hash))
                .with_context(|| format!("cannot parse proving key {}", pk_path.display()))?;
        if let Err(e) = key.check_pairs_with(&vk) {
            bail!(
                "{} and {}: {e}; recreate both with `{make_keys} --out {} --force` while no \
                 batch is open",
                pk_path.display(),
                vk_path.display(),
                settings.keys_dir.display()
            );
        }
        if !vk.setup().is_secure() {
            if !settings.dev {
                bail!(
                    "the keys in {} come from an {} setup: anyone can forge proofs for them; \
                     create real ones with `crowdprove setup --circuit {circuit} --out {} --force` \
                     (no batch open), or pass --dev on a testnet",
                    settings.keys_dir.display(),
                    vk.setup(),
                    settings.keys_dir.display()
                );
            }
            warn!(target: "distributor", setup = %vk.setup(), "development mode: running keys anyone can forge proofs for");
        }
        metrics.set_key_setup(vk.setup());
        debug!(target: "distributor", ms = checked.elapsed().as_millis() as u64, "proving key matches the verifying key");
        let key = Arc::new(key);

        let data = &config.node.data_dir;
        let store = Arc::new(JobStore::open(data.join("jobs"))?);
        let ledger_config = ledger::LedgerConfig {
            max_block_age_ms: settings.block_interval_ms,
            ..ledger::LedgerConfig::default()
        };
        let ledger = ledger::Ledger::open(data.join("ledger"), &secret, ledger_config)?;
        let ledger: SharedLedger = Arc::new(RwLock::new(ledger));

        let workload = match (circuit_def, key.as_ref()) {
            (Circuit::Transfer(circuit_config), _) => {
                let mut generator = TxGenerator::new(settings.seed, settings.accounts);
                let rollup = match store.rollup_state()? {
                    Some(bytes) => {
                        let rollup = Rollup::from_bytes(&bytes)
                            .context("the saved rollup state is corrupt")?;
                        if rollup.config() != circuit_config {
                            bail!(
                                "the data dir {} holds a rollup for circuit {}, not {circuit}; \
                                 use another data dir",
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
                Workload::Rollup {
                    rollup,
                    generator,
                    batch_txs: settings.batch_txs,
                }
            }
            (Circuit::Circom(_), AnyProvingKey::Circom(circom)) => {
                if store.rollup_state()?.is_some() {
                    bail!(
                        "the data dir {} holds a transfer rollup, not circom circuit {circuit}; \
                         use another data dir",
                        data.display()
                    );
                }
                let path = r1cs_path(&settings.keys_dir, &circuit);
                let r1cs = prover_core::CircomR1cs::load(&path).with_context(|| missing(&path))?;
                r1cs.check_matches(circom).with_context(|| {
                    format!(
                        "{} does not belong to {}",
                        path.display(),
                        pk_path.display()
                    )
                })?;
                info!(target: "distributor", constraints = circom.num_constraints(), public_signals = circom.num_public(), "circom circuit: batches are the witness files submitted to POST /batch/witnesses");
                Workload::Circom {
                    key: circom.clone(),
                    r1cs: Arc::new(r1cs),
                }
            }
            (Circuit::Circom(_), AnyProvingKey::Transfer(_)) => {
                unreachable!("a circom circuit's key parses as a zkey")
            }
        };
        let local = if settings.centralized {
            info!(target: "distributor", jobs = settings.centralized_jobs, "centralized mode: proving every job here");
            Some(LocalProver::new(key.clone(), settings.centralized_jobs)?)
        } else {
            None
        };
        let (batches, batches_proven) = {
            let all = store.batches()?;
            let proven = all.iter().filter(|b| b.proven.is_some()).count();
            (all.len() as u64, proven as u64)
        };
        pin_settings(
            &store,
            &Pinned {
                scheduler: config.lrp(),
                reward_per_job: settings.reward_per_job,
            },
            batches - batches_proven,
        )?;
        pin_verifying_key(
            &store,
            vk.hash(),
            batches - batches_proven,
            &settings.keys_dir,
        )?;

        let (internal_tx, internal) = mpsc::unbounded_channel();
        let fatal = |tx: &mpsc::UnboundedSender<Internal>| {
            let tx = tx.clone();
            move |e: String| {
                let _ = tx.send(Internal::Fatal(e));
            }
        };
        let outbox = Outbox::new(net.clone(), secret.clone(), metrics.clone());
        let space = Space::floor(data, settings.min_free_disk_mb);
        space.check().map_err(|full| anyhow!("{full}"))?;
        let (journal, journal_thread) =
            Journal::start(store.clone(), space.clone(), fatal(&internal_tx))?;
        let (payout, payout_thread) =
            Payout::start(ledger.clone(), metrics.clone(), space, fatal(&internal_tx))?;
        let to_loop = internal_tx.clone();
        let (pool, pool_thread) = VerifyPool::start(
            Arc::new(vk.prepare()),
            verify::PoolConfig {
                threads: match settings.verify_threads {
                    0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                    n => n,
                },
                queue: settings.verify_queue,
                max_batch: settings.verify_batch,
            },
            move |checked| {
                let _ = to_loop.send(Internal::Checked(checked));
            },
        )?;
        let (server, server_thread) = Server::start(
            Sources {
                proving_key: Arc::new(proving_key_bytes),
                proving_key_hash,
                ledger: ledger.clone(),
                metrics: metrics.clone(),
            },
            outbox.clone(),
            settings.serve_queue,
        )?;
        let to_loop = internal_tx.clone();
        let generates_batches = matches!(workload, Workload::Rollup { .. });
        let (intake, intake_thread) = Intake::start(
            workload,
            BatchId(batches),
            INTAKE_QUEUE,
            move |built, reply| {
                let _ = to_loop.send(Internal::Built(built, reply));
            },
        )?;

        let started = Instant::now();
        let (first, snapshot) = match store.snapshot()? {
            Some((first, snapshot)) => (first, Some(snapshot)),
            None => (0, None),
        };
        let events = store.events_from(first)?;
        let scheduler = Scheduler::replay(
            config.lrp(),
            snapshot.as_ref(),
            &events,
            settings.reward_per_job,
            journal,
        )?;
        info!(
            target: "distributor",
            snapshot_jobs = snapshot.as_ref().map_or(0, |s| s.lrp.jobs()),
            events = events.len(),
            ms = started.elapsed().as_millis() as u64,
            "scheduler state restored"
        );
        let allowlist: HashSet<PublicKey> = config.allowlist()?.into_iter().collect();
        let max_batch_txs = protocol::messages::MAX_JOBS_PER_ANNOUNCEMENT * transfers_per_job;
        let mut distributor = Self {
            max_batch_txs,
            generates_batches,
            public: secret.public(),
            admission: Admission::new(
                allowlist,
                RateLimits {
                    per_peer: settings.rate_limit_per_sec,
                    peer_burst: settings.rate_limit_burst,
                    per_ip: settings.rate_limit_per_ip_per_sec,
                    per_subnet: settings.rate_limit_per_subnet_per_sec,
                },
            ),
            circuit,
            proving_key_hash,
            key_budget,
            verifying_key: vk.clone(),
            store,
            ledger,
            scheduler,
            outbox,
            metrics,
            payout,
            pool,
            server,
            intake,
            local,
            internal_tx,
            internal,
            threads: Some(Threads {
                intake: intake_thread,
                pool: pool_thread,
                journal: journal_thread,
                payout: payout_thread,
                server: server_thread,
            }),
            status,
            info,
            net,
            batches,
            batches_stored: batches,
            batches_proven,
            last_generated: Instant::now(),
            unchecked: Vec::new(),
            verify_count: 0,
            verify_seconds: 0.0,
            started: Instant::now(),
            last_status: None,
            settings,
        };
        distributor.recover()?;
        Ok(distributor)
    }

    /// After a restart: pays completed jobs the ledger missed, and checks
    /// batches whose last proof arrived just before the crash once their
    /// credits are durable.
    fn recover(&mut self) -> anyhow::Result<()> {
        // No heartbeat could reach a stopped distributor: silence before
        // now is no evidence against a holder.
        let now = self.scheduler.now();
        self.scheduler
            .apply(LrpEvent::Resume { now }, |_| Log::plain());
        let mut open = 0;
        for batch in self.store.batches()? {
            if batch.proven.is_some() {
                continue;
            }
            let mut missing = Vec::new();
            for (index, job) in self.store.batch_jobs(batch.id)?.into_iter().enumerate() {
                let id = JobId::new(batch.id, index as u32);
                match job.done {
                    Some(done) if !self.ledger.read().expect("ledger lock").is_credited(id)? => {
                        warn!(target: "distributor", job = %id, "completed before the crash but not paid; paying now");
                        missing.push(self.credit_for(id, &done));
                    }
                    Some(_) => {}
                    None => open += 1,
                }
            }
            let finished = self.scheduler.lrp().is_finished(batch.id);
            let last = missing.len();
            for (i, credit) in missing.into_iter().enumerate() {
                let tx = self.internal_tx.clone();
                let id = batch.id;
                let then_check = finished && i + 1 == last;
                self.payout.credit(
                    credit,
                    Box::new(move || {
                        if then_check {
                            let _ = tx.send(Internal::Credited(id));
                        }
                    }),
                );
            }
            if finished && last == 0 {
                let _ = self.internal_tx.send(Internal::Credited(batch.id));
            }
        }
        let counts = self.scheduler.lrp().counts();
        info!(
            target: "distributor",
            batches = self.batches,
            open_jobs = open,
            fresh = counts.fresh,
            pending = counts.pending,
            next_request = self.scheduler.lrp().next_request_id().0,
            ledger_height = self.ledger.read().expect("ledger lock").height(),
            "state loaded"
        );
        Ok(())
    }

    fn credit_for(&self, job: JobId, done: &DoneRecord) -> ledger::Credit {
        ledger::Credit::new(
            done.prover,
            job,
            self.settings.reward_per_job,
            ContentHash::of(&done.proof),
        )
    }

    /// Serves until `shutdown` fires, then shuts the services down in order:
    /// intake stops, the verification pool drains and its verdicts are
    /// judged, the journal and the payout writer write what they hold and
    /// send the answers waiting on it, a last block is cut. The caller then
    /// stops the network, which flushes those answers.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<NetworkEvent>,
        mut api: mpsc::Receiver<ApiRequest>,
        mut shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        self.net.provide()?;
        // Re-announce open batches: provers that were waiting learn of them.
        for batch in self.store.batches()? {
            if batch.proven.is_none() {
                self.announce(&batch);
            }
        }
        self.refresh_status(&events, &api);
        let mut tick = tokio::time::interval(TICK);
        let result = loop {
            let turn = tokio::select! {
                biased;
                Some(message) = self.internal.recv() => self.on_internal(message),
                _ = shutdown.changed() => break Ok(()),
                Some(event) = events.recv() => {
                    self.on_network(event);
                    Ok(())
                }
                Some(request) = api.recv() => {
                    self.on_api(request);
                    Ok(())
                }
                _ = tick.tick() => {
                    self.on_tick(&events, &api);
                    Ok(())
                }
            };
            if let Err(e) = turn {
                break Err(e);
            }
        };
        drop(events);
        drop(api);
        self.shutdown().await;
        info!(target: "distributor", "stopped");
        result
    }

    async fn shutdown(mut self) {
        info!(target: "distributor", verifying = self.pool.depth(), "stopping: draining the services");
        self.intake.close();
        self.pool.close();
        let Threads {
            intake,
            pool,
            journal,
            payout,
            server,
        } = self.threads.take().expect("shut down once");
        join(move || pool.join()).await;
        join(move || intake.join()).await;
        // The pool's last verdicts: judge them, so their provers hear.
        while let Ok(message) = self.internal.try_recv() {
            if let Internal::Checked(Checked::Proofs(verdicts)) = message {
                for verdict in verdicts {
                    self.judge(verdict);
                }
            }
        }
        self.scheduler.close_journal();
        join(move || journal.join()).await;
        self.payout.close();
        join(move || payout.join()).await;
        self.server.close();
        join(move || server.join()).await;
    }

    fn on_internal(&mut self, message: Internal) -> anyhow::Result<()> {
        match message {
            Internal::Checked(Checked::Proofs(verdicts)) => {
                for verdict in verdicts {
                    self.judge(verdict);
                }
            }
            Internal::Checked(Checked::Batch {
                result,
                ms,
                context,
            }) => self.on_batch_checked(result, ms, context),
            Internal::Built(Ok(batch), reply) => self.schedule_batch(batch, reply),
            Internal::Built(Err(e), reply) => {
                warn!(target: "distributor", error = %format!("{e:#}"), "batch not built");
                if let Some(reply) = reply {
                    let _ = reply.send(Err(Rejection::new(422, format!("{e:#}"))));
                }
            }
            Internal::Credited(batch) => self.check_batch(batch),
            Internal::LocalAssigned(slot, assignment) => self.start_local(slot, assignment),
            Internal::Local(local) => self.on_local_proof(local),
            Internal::Fatal(e) => return Err(anyhow!(e)),
        }
        Ok(())
    }

    fn on_tick(&mut self, events: &mpsc::Receiver<NetworkEvent>, api: &mpsc::Receiver<ApiRequest>) {
        self.admission.tick();
        for batch in std::mem::take(&mut self.unchecked) {
            self.check_batch(batch);
        }
        let s = &self.settings;
        if self.generates_batches
            && s.batch_interval_secs > 0
            && (s.max_batches == 0 || self.batches < s.max_batches)
            && self.last_generated.elapsed() >= Duration::from_secs(s.batch_interval_secs)
        {
            self.new_batch(BatchInput::Generated, None);
        }
        self.fill_local();
        self.refresh_status(events, api);
    }

    /// Asks intake for a batch.
    fn new_batch(&mut self, input: BatchInput, reply: BatchReply) {
        self.last_generated = Instant::now();
        match self.intake.submit(BuildRequest {
            input,
            context: reply,
        }) {
            Ok(()) => self.batches += 1,
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
        self.metrics.batches_submitted.inc();
        self.batches_stored += 1;
        let announcement = self.announcement(&record);
        let outbox = self.outbox.clone();
        let stored = Change::NewBatch {
            record,
            jobs,
            state_after,
        };
        self.scheduler
            .apply(LrpEvent::Submit { jobs: job_ids }, move |_| Log {
                records: vec![stored],
                then: Some(Box::new(move || {
                    crate::crash::at(crate::crash::Point::BatchStored);
                    outbox.publish(&announcement);
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(answer));
                    }
                })),
            });
    }

    fn announcement(&self, batch: &BatchRecord) -> JobAnnouncement {
        JobAnnouncement {
            batch: batch.id,
            jobs: (0..batch.jobs).map(|i| JobId::new(batch.id, i)).collect(),
            circuit: self.circuit.clone(),
            proving_key: self.proving_key_hash,
            verifying_key: self.verifying_key.hash(),
            reward_per_job: self.settings.reward_per_job,
        }
    }

    fn announce(&self, batch: &BatchRecord) {
        self.outbox.publish(&self.announcement(batch));
    }

    fn on_network(&mut self, event: NetworkEvent) {
        match event {
            NetworkEvent::Request {
                peer,
                from,
                bytes,
                channel,
                received,
            } => self.on_request(peer, from, &bytes, Channel::new(channel, received)),
            NetworkEvent::InboundFailure { peer, reason } => {
                debug!(target: "net", %peer, reason, "inbound request failed");
                self.metrics.reject(reason);
            }
            NetworkEvent::Disconnected(peer) => self.admission.disconnected(&peer),
            NetworkEvent::Gossip(_) | NetworkEvent::Connected(_) => {}
        }
    }

    /// The router: admission, then dispatch by kind.
    fn on_request(&mut self, peer: PeerId, from: Option<IpAddr>, bytes: &[u8], channel: Channel) {
        let now = self.scheduler.now();
        let (prover, body) = match self.admission.admit(peer, from, bytes, now) {
            Ok(admitted) => admitted,
            Err(reason) => {
                debug!(target: "distributor", %peer, reason, "request refused");
                return self.outbox.refuse(channel, reason);
            }
        };
        match body {
            AnyMessage::JobRequest(request) => self.on_job_request(prover, request, channel),
            AnyMessage::ProofSubmission(submission) => {
                self.on_submission(prover, submission, Some(channel))
            }
            AnyMessage::Release(release) => {
                let event = LrpEvent::Release {
                    job: release.job,
                    request: release.request,
                    prover,
                    now,
                };
                let outcome = self.scheduler.apply(event, |_| Log::plain());
                debug!(target: "lrp", job = %release.job, ?outcome, "release");
                self.outbox.reply(channel, &release);
            }
            AnyMessage::Heartbeat(heartbeat) => {
                let event = LrpEvent::Heartbeat {
                    job: heartbeat.job,
                    request: heartbeat.request,
                    prover,
                    now,
                };
                match self.scheduler.apply(event, |_| Log::plain()) {
                    LrpOutcome::Heard(HeartbeatOutcome::Noted | HeartbeatOutcome::TooSoon) => {
                        self.outbox.reply(channel, &heartbeat)
                    }
                    LrpOutcome::Heard(HeartbeatOutcome::AlreadyDone) => {
                        self.outbox.refuse(channel, "job_done")
                    }
                    _ => self.outbox.refuse(channel, "not_issued"),
                }
            }
            AnyMessage::KeyRequest(request) => self.on_key_request(prover, request, channel, now),
            AnyMessage::ReceiptRequest(request) => {
                if let Err(Serve::Receipt(_, channel) | Serve::Key(_, channel)) =
                    self.server.submit(Serve::Receipt(request, channel))
                {
                    self.outbox.refuse(channel, "busy");
                }
            }
            _ => self.outbox.refuse(channel, "unexpected_kind"),
        }
    }

    /// Key chunks go only to a prover that holds a job (it needs the key to
    /// prove it) and within its [`KeyBudget`].
    fn on_key_request(
        &mut self,
        prover: PublicKey,
        request: KeyRequest,
        channel: Channel,
        now: Timestamp,
    ) {
        let holds_a_job = self
            .scheduler
            .lrp()
            .prover(&prover)
            .is_some_and(|view| !view.holdings.is_empty());
        if !holds_a_job {
            return self.outbox.refuse(channel, "no_handout");
        }
        let bytes = self.key_budget.chunk_bytes(request.chunk);
        if !self.key_budget.charge(prover, now, bytes) {
            return self.outbox.refuse(channel, "key_budget");
        }
        if let Err(Serve::Key(_, channel) | Serve::Receipt(_, channel)) =
            self.server.submit(Serve::Key(request, channel))
        {
            self.key_budget.refund(prover, bytes);
            self.outbox.refuse(channel, "busy");
        }
    }

    fn on_job_request(&mut self, prover: PublicKey, request: JobRequest, channel: Channel) {
        let no_work = |reason, retry_after_ms| NoWork {
            reason,
            retry_after_ms,
        };
        if self.settings.centralized {
            return self.outbox.answer(
                "job_request",
                channel,
                &no_work(NoWorkReason::Refused, 60_000),
            );
        }
        if !request.circuits.is_empty() && !request.circuits.contains(&self.circuit) {
            return self.outbox.answer(
                "job_request",
                channel,
                &no_work(NoWorkReason::Idle, 30_000),
            );
        }
        // The answer must survive a crash before it leaves: it goes out
        // from the journal once the hand-out is on disk.
        let (deliver, refuse) = channel_once(Some(channel));
        let outbox = self.outbox.clone();
        if let Err(no) = self.hand_out(prover, move |assignment| {
            if let Some(channel) = deliver.take() {
                outbox.answer("job_request", channel, &assignment);
            }
        }) && let Some(channel) = refuse.take()
        {
            self.outbox.answer("job_request", channel, &no);
        }
    }

    /// One LRP decision for `prover`. An assignment goes to `deliver` once
    /// its hand-out is durable; otherwise the reason there is none.
    fn hand_out(
        &mut self,
        prover: PublicKey,
        deliver: impl FnOnce(Assignment) + Send + 'static,
    ) -> Result<(), NoWork> {
        let now = self.scheduler.now();
        let store = self.store.clone();
        let (circuit, proving_key, reward) = (
            self.circuit.clone(),
            self.proving_key_hash,
            self.settings.reward_per_job,
        );
        let outcome = self
            .scheduler
            .apply(LrpEvent::Request { prover, now }, |outcome| {
                let LrpOutcome::Decided(Decision::Assign(handout)) = outcome else {
                    return Log::plain();
                };
                let handout = *handout;
                let assignment = move |witness| Assignment {
                    job: handout.job,
                    request: handout.request,
                    prover,
                    circuit,
                    proving_key,
                    witness,
                    reward,
                };
                match store.job(handout.job) {
                    Ok(Some(job)) => {
                        let assignment = assignment(job.witness);
                        Log::then(Box::new(move || deliver(assignment)))
                    }
                    // A batch submitted a moment ago: its jobs are queued to
                    // the journal ahead of this hand-out, so they are on disk
                    // once it is; read the witness then.
                    _ => Log::then(Box::new(move || match store.job(handout.job) {
                        Ok(Some(job)) => deliver(assignment(job.witness)),
                        other => {
                            error!(target: "distributor", job = %handout.job, found = ?other, "job scheduled but not readable from the store");
                        }
                    })),
                }
            });
        let retry = |at: Timestamp| at.millis_since(now).max(250);
        let LrpOutcome::Decided(decision) = outcome else {
            unreachable!("a request is answered by a decision")
        };
        match decision {
            Decision::Assign(handout) => {
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
                Ok(())
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
        }
    }

    /// A proof submission: late and never-issued proofs are answered at
    /// once, unverified; the rest queue for the verification pool.
    fn on_submission(
        &mut self,
        prover: PublicKey,
        submission: ProofSubmission,
        channel: Option<Channel>,
    ) {
        let ProofSubmission {
            job,
            request,
            proof,
        } = submission;
        let answer = |outcome| Verdict {
            job,
            request,
            prover,
            proof_hash: ContentHash::of(&proof),
            outcome,
        };
        let now = self.scheduler.now();
        if self.scheduler.winner(job, &self.store) == Some((prover, request)) {
            // The winner again: its `Accepted` was lost, or it restarted.
            // Say so once the credit is durable; until then, `busy`.
            let credited = self
                .ledger
                .read()
                .expect("ledger lock")
                .is_credited(job)
                .unwrap_or(false);
            if let Some(channel) = channel {
                if credited {
                    let reward = self.settings.reward_per_job;
                    self.outbox.answer(
                        "submission",
                        channel,
                        &answer(Outcome::Accepted { reward }),
                    );
                } else {
                    self.outbox.refuse(channel, "busy");
                }
            }
            return;
        }
        if self.scheduler.is_done(job, &self.store) {
            self.metrics.proof("late");
            self.scheduler.late(prover, request, now);
            debug!(target: "distributor", prover = %prover.node_id(), %job, "late proof");
            if let Some(channel) = channel {
                self.outbox
                    .answer("submission", channel, &answer(Outcome::Late));
            }
            return;
        }
        if !self.scheduler.holds(job, request, &prover) {
            self.metrics.proof("not_issued");
            self.scheduler.not_issued(prover);
            info!(
                target: "distributor",
                prover = %prover.node_id(),
                %job,
                request = request.0,
                "proof for a hand-out never issued to this prover; dropped unverified"
            );
            if let Some(channel) = channel {
                self.outbox.answer(
                    "submission",
                    channel,
                    &answer(Outcome::Invalid(InvalidReason::NotIssued)),
                );
            }
            return;
        }
        let record = match self.store.job(job) {
            Ok(Some(record)) => record,
            other => {
                error!(target: "distributor", %job, found = ?other.map(|_| ()), "job scheduled but not readable from the store");
                if let Some(channel) = channel {
                    self.outbox.refuse(channel, "busy");
                }
                return;
            }
        };
        let check = ProofCheck {
            public: record.public.clone(),
            proof: proof.clone(),
            context: Submission {
                job,
                request,
                prover,
                proof,
                record,
                channel,
            },
        };
        if let Err(check) = self.pool.submit(check) {
            self.metrics.proof("busy");
            if let Some(channel) = check.context.channel {
                self.outbox.refuse(channel, "busy");
            }
        }
    }

    /// A verdict from the pool: strike an invalid proof; complete the job
    /// with a valid one, store it, pay, and only then say `Accepted`.
    fn judge(&mut self, verdict: verify::Verdict<Submission>) {
        let verify::Verdict {
            result,
            seconds,
            context,
        } = verdict;
        let Submission {
            job,
            request,
            prover,
            proof,
            record,
            channel,
        } = context;
        self.metrics.verify_seconds.observe(seconds);
        self.verify_count += 1;
        self.verify_seconds += seconds;
        let proof_hash = ContentHash::of(&proof);
        let answer = move |outcome| Verdict {
            job,
            request,
            prover,
            proof_hash,
            outcome,
        };
        let now = self.scheduler.now();
        if let Err(reason) = result {
            self.metrics.proof("invalid");
            let event = LrpEvent::Invalid {
                job,
                request,
                prover,
                now,
            };
            let outcome = self.scheduler.apply(event, |_| Log::plain());
            warn!(target: "distributor", prover = %prover.node_id(), %job, ?reason, ?outcome, "invalid proof");
            if let Some(channel) = channel {
                self.outbox
                    .answer("submission", channel, &answer(Outcome::Invalid(reason)));
            }
            return;
        }
        crate::crash::at(crate::crash::Point::Verified);
        let credit = ledger::Credit::new(prover, job, self.settings.reward_per_job, proof_hash);
        let reward = self.settings.reward_per_job;
        let (outbox, payout, to_loop) = (
            self.outbox.clone(),
            self.payout.handle(),
            self.internal_tx.clone(),
        );
        let (deliver, late) = channel_once(channel);
        let done = JobRecord {
            done: Some(DoneRecord {
                prover,
                request,
                proof,
                at: now,
            }),
            ..record
        };
        let event = LrpEvent::Complete {
            job,
            request,
            prover,
            now,
        };
        let outcome = self.scheduler.apply(event, move |outcome| match outcome {
            LrpOutcome::Completed(Completion::Accepted { batch_finished, .. }) => {
                let batch_finished = *batch_finished;
                Log {
                    records: vec![Change::Job(job, done)],
                    // Stored, then paid, then told.
                    then: Some(Box::new(move || {
                        payout.credit(
                            credit,
                            Box::new(move || {
                                if let Some(channel) = deliver.take() {
                                    outbox.answer(
                                        "submission",
                                        channel,
                                        &answer(Outcome::Accepted { reward }),
                                    );
                                }
                                if batch_finished {
                                    let _ = to_loop.send(Internal::Credited(job.batch));
                                }
                            }),
                        );
                    })),
                }
            }
            _ => Log::plain(),
        });
        if matches!(outcome, LrpOutcome::Completed(Completion::Accepted { .. })) {
            self.metrics.proof("valid");
            self.metrics.jobs_completed.inc();
            info!(target: "distributor", prover = %prover.node_id(), %job, verify_ms = seconds * 1e3, "proof accepted");
        } else {
            self.metrics.proof("late");
            self.scheduler.late(prover, request, now);
            if let Some(channel) = late.take() {
                self.outbox
                    .answer("submission", channel, &answer(Outcome::Late));
            }
        }
    }

    /// Every job of `batch` is proven and credited: check the batch proof
    /// on the pool.
    fn check_batch(&mut self, batch: BatchId) {
        let loaded = (|| -> anyhow::Result<BatchCheck<BatchContext>> {
            let record = self
                .store
                .batch(batch)?
                .with_context(|| format!("batch {batch} is not stored"))?;
            let store = self.store.clone();
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
        })();
        match loaded {
            Ok(check) => {
                if self.pool.submit_batch(check).is_err() {
                    self.unchecked.push(batch);
                }
            }
            Err(e) => {
                error!(target: "distributor", batch = %batch, error = %format!("{e:#}"), "cannot load a finished batch")
            }
        }
    }

    fn on_batch_checked(
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
        let now = self.scheduler.now();
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
        self.metrics.batches_proven.inc();
        self.batches_proven += 1;
        let outbox = self.outbox.clone();
        self.scheduler
            .apply(LrpEvent::Forget { batch }, move |_| Log {
                records: vec![Change::Batch(record)],
                then: Some(Box::new(move || outbox.publish(&message))),
            });
        // The batch is gone from the scheduler: nothing before this point of
        // the log is needed any more.
        self.scheduler.compact();
    }

    /// The centralized baseline: while jobs are open, keep every local slot
    /// proving.
    fn fill_local(&mut self) {
        while self.local.as_ref().is_some_and(|l| l.has_free_slot())
            && !self.scheduler.lrp().is_all_finished()
        {
            let slot = self.local.as_mut().expect("checked").reserve();
            let to_loop = self.internal_tx.clone();
            let public = self.public;
            if self
                .hand_out(public, move |assignment| {
                    let _ = to_loop.send(Internal::LocalAssigned(slot, assignment));
                })
                .is_err()
            {
                self.local.as_mut().expect("checked").finished(slot);
                break;
            }
        }
    }

    fn start_local(&mut self, slot: usize, assignment: Assignment) {
        let Some(local) = self.local.as_mut() else {
            return;
        };
        let to_loop = self.internal_tx.clone();
        local.start(slot, assignment, move |proof| {
            let _ = to_loop.send(Internal::Local(proof));
        });
    }

    fn on_local_proof(&mut self, local: LocalProof) {
        if let Some(prover) = self.local.as_mut() {
            prover.finished(local.slot);
        }
        self.metrics.prove_seconds.observe(local.seconds);
        let job = local.assignment.job;
        match local.proof {
            Ok(proof) => {
                let submission = ProofSubmission {
                    job,
                    request: local.assignment.request,
                    proof,
                };
                self.on_submission(self.public, submission, None);
            }
            Err(e) => error!(target: "distributor", %job, error = %e, "local proving failed"),
        }
        self.fill_local();
    }

    fn on_api(&mut self, request: ApiRequest) {
        match request {
            ApiRequest::Attempts { last, reply } => {
                let scheduler = &self.scheduler;
                let store = &self.store;
                let doc = scheduler
                    .history()
                    .attempts_json(last, |job| scheduler.is_done(job, store));
                let _ = reply.send(doc);
            }
            ApiRequest::SubmitBatch(body, reply) => {
                match parse_batch_body(&body, self.max_batch_txs) {
                    Ok(input) => self.new_batch(input, Some(reply)),
                    Err(rejection) => {
                        let _ = reply.send(Err(rejection));
                    }
                }
            }
            ApiRequest::Proof(job, reply) => {
                let _ = reply.send(self.proof_bundle(job));
            }
            ApiRequest::SubmitWitnesses(body, reply) => {
                let max = protocol::messages::MAX_JOBS_PER_ANNOUNCEMENT;
                match parse_witness_body(&body, max) {
                    Ok(input) => self.new_batch(input, Some(reply)),
                    Err(rejection) => {
                        let _ = reply.send(Err(rejection));
                    }
                }
            }
        }
    }

    /// `GET /proofs/<job>`: the job's accepted proof in snarkjs JSON, with
    /// its public signals and the circuit's verification key.
    fn proof_bundle(&self, job: JobId) -> Result<Value, Rejection> {
        let internal = |e: String| {
            error!(target: "distributor", %job, error = %e, "cannot export a stored proof");
            Rejection::new(503, format!("cannot read job {job}: {e}"))
        };
        let record = self
            .store
            .job(job)
            .map_err(|e| internal(e.to_string()))?
            .ok_or_else(|| Rejection::new(404, format!("there is no job {job}")))?;
        let done = record
            .done
            .ok_or_else(|| Rejection::new(404, format!("job {job} has no accepted proof yet")))?;
        let proof =
            prover_core::Proof::from_bytes(&done.proof).map_err(|e| internal(e.to_string()))?;
        let mut bundle =
            prover_core::snarkjs::proof_bundle(&self.verifying_key, &record.public, &proof)
                .map_err(|e| internal(e.to_string()))?;
        bundle["job"] = json!(job.to_string());
        bundle["circuit"] = json!(self.circuit.as_str());
        bundle["prover"] = json!(done.prover.to_hex());
        Ok(bundle)
    }

    /// Publishes the `/status` snapshot and the queue metrics.
    fn refresh_status(
        &mut self,
        events: &mpsc::Receiver<NetworkEvent>,
        api: &mpsc::Receiver<ApiRequest>,
    ) {
        if self
            .last_status
            .is_some_and(|at| at.elapsed() < status::REFRESH)
        {
            return;
        }
        self.last_status = Some(Instant::now());
        let queues = [
            QueueDepth::new("network_events", events.len(), events.max_capacity()),
            QueueDepth::new("api_requests", api.len(), api.max_capacity()),
            QueueDepth::new("verification", self.pool.depth(), self.pool.capacity()),
            QueueDepth::new("serving", self.server.depth(), self.server.capacity()),
            QueueDepth::unbounded("journal", self.scheduler.journal_depth()),
            QueueDepth::unbounded("payout", self.payout.depth()),
            QueueDepth::new(
                "replay_memory",
                self.admission.remembered(),
                self.admission.remembered_capacity(),
            ),
        ];
        for q in &queues {
            self.metrics.queue(q.name, q.depth, q.capacity);
        }
        let counts = self.scheduler.lrp().counts();
        self.metrics
            .jobs_open
            .set((counts.fresh + counts.pending) as i64);
        let doc = status::document(&status::Parts {
            info: &self.info,
            settings: &self.settings,
            circuit: &self.circuit,
            proving_key: self.proving_key_hash,
            verifying_key: self.verifying_key.hash(),
            key_setup: self.verifying_key.setup(),
            store: &self.store,
            scheduler: &self.scheduler,
            ledger: &self.ledger,
            net: self.net.stats(),
            queues: &queues,
            verify_count: self.verify_count,
            verify_seconds: self.verify_seconds,
            uptime_ms: self.started.elapsed().as_millis() as u64,
            batches_stored: self.batches_stored,
            batches_proven: self.batches_proven,
        });
        self.status.publish(doc);
    }
}

/// Checks the settings against those the log was written under. They may
/// change only while no batch is open: replaying an open batch's log with
/// other knobs would judge its proofs differently, and another reward would
/// re-price its jobs. A change is refused with both values named.
fn pin_settings(store: &JobStore, now: &Pinned, open_batches: u64) -> anyhow::Result<()> {
    let Some(before) = store.pinned()? else {
        store.pin(now)?;
        return Ok(());
    };
    if before == *now {
        return Ok(());
    }
    let changes = changed_settings(&before, now);
    if open_batches > 0 {
        bail!(
            "the job store {} was written with other settings ({changes}) and {open_batches} \
             batch(es) are still open: replaying them with new settings would judge their \
             proofs differently. Start with the old values until every batch is proven, then \
             change them",
            store.path().display()
        );
    }
    warn!(target: "distributor", %changes, "settings changed (no batch was open)");
    store.pin(now)?;
    Ok(())
}

/// Checks the verifying key against the one the open batches' proofs are
/// judged by. New keys (`setup --force`) while a batch is open would fail
/// every proof made with the old proving key, and strike honest provers.
fn pin_verifying_key(
    store: &JobStore,
    now: ContentHash,
    open_batches: u64,
    keys_dir: &std::path::Path,
) -> anyhow::Result<()> {
    match store.pinned_verifying_key()? {
        Some(before) if before == now => return Ok(()),
        Some(before) if open_batches > 0 => bail!(
            "the keys in {} changed (verifying key {} → {}) while {open_batches} batch(es) are \
             open: proofs made with the old proving key would fail and honest provers would be \
             struck. Put back the keys the open batches were cut under, let every batch be \
             proven, then change them",
            keys_dir.display(),
            before.short(),
            now.short()
        ),
        Some(before) => {
            warn!(target: "distributor", was = %before.short(), now = %now.short(), "keys changed (no batch was open)")
        }
        None => {}
    }
    store.pin_verifying_key(now)?;
    Ok(())
}

/// `key old → new` for every pinned setting that differs.
fn changed_settings(before: &Pinned, now: &Pinned) -> String {
    let table = |p: &Pinned| {
        let mut t = toml::Table::try_from(&p.scheduler).unwrap_or_default();
        t.insert(
            "reward_per_job".into(),
            toml::Value::Integer(p.reward_per_job as i64),
        );
        t
    };
    let (old, new) = (table(before), table(now));
    new.iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .map(|(k, v)| {
            let was = old.get(k).map_or("unset".to_string(), |o| o.to_string());
            format!("{k} {was} → {v}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs a blocking join off the async runtime's threads.
async fn join(f: impl FnOnce() + Send + 'static) {
    let _ = tokio::task::spawn_blocking(f).await;
}

/// A response channel that exactly one of two paths may take: the deferred
/// answer (from a follow-up) or the immediate one.
struct Once(Arc<std::sync::Mutex<Option<Channel>>>);

impl Once {
    fn take(&self) -> Option<Channel> {
        self.0.lock().expect("channel lock").take()
    }
}

fn channel_once(channel: Option<Channel>) -> (Once, Once) {
    let shared = Arc::new(std::sync::Mutex::new(channel));
    (Once(shared.clone()), Once(shared))
}

/// `POST /batch` bodies: empty (generate a batch of the configured size) or
/// a JSON array of at most `max` signed transfers (more would make an
/// announcement over the jobs limit that every prover refuses).
fn parse_batch_body(body: &[u8], max: usize) -> Result<BatchInput, Rejection> {
    let bad = |message: String| Rejection::new(400, message);
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8".into()))?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(BatchInput::Generated);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    match value {
        Value::Array(ref txs) if txs.len() > max => Err(Rejection::new(
            413,
            format!(
                "{} transfers is over the {max} one batch may hold ({} jobs); split them into batches",
                txs.len(),
                protocol::messages::MAX_JOBS_PER_ANNOUNCEMENT,
            ),
        )),
        Value::Array(_) => serde_json::from_value(value)
            .map(BatchInput::Transfers)
            .map_err(|e| bad(format!("not an array of signed transfers: {e}"))),
        _ => Err(bad(
            "expected an empty body or a JSON array of signed transfers".into(),
        )),
    }
}

/// `POST /batch/witnesses` bodies: circom `.wtns` files, concatenated, at
/// most `max` of them. Each file is checked against the circuit by intake.
fn parse_witness_body(body: &[u8], max: usize) -> Result<BatchInput, Rejection> {
    let files = prover_core::circom::split_witness_files(body).map_err(|e| match e {
        prover_core::Error::Wtns(reason) => Rejection::new(400, reason),
        other => Rejection::new(400, other.to_string()),
    })?;
    if files.is_empty() {
        return Err(Rejection::new(400, "the body holds no witness files"));
    }
    if files.len() > max {
        return Err(Rejection::new(
            413,
            format!(
                "{} witnesses is over the {max} one batch may hold; split them into batches",
                files.len()
            ),
        ));
    }
    Ok(BatchInput::Witnesses(
        files.into_iter().map(<[u8]>::to_vec).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::lrp::LrpConfig;

    #[test]
    fn batch_bodies_are_checked_before_anything_is_built() {
        assert_eq!(parse_batch_body(b"  ", 4).unwrap(), BatchInput::Generated);
        let too_many = parse_batch_body(b"[{},{},{},{},{}]", 4).unwrap_err();
        assert_eq!(too_many.status, 413, "{too_many:?}");
        assert!(too_many.message.contains("5 transfers is over the 4"));
        for (body, says) in [
            (&b"{}"[..], "expected an empty body"),
            (b"[{}]", "not an array of signed transfers"),
            (b"[1,", "invalid JSON"),
            (b"\xff", "not UTF-8"),
        ] {
            let refused = parse_batch_body(body, 4).unwrap_err();
            assert_eq!(refused.status, 400);
            assert!(refused.message.contains(says), "{refused:?}");
        }
    }

    #[test]
    fn settings_are_pinned_and_change_only_with_no_batch_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(dir.path()).unwrap();
        let first = Pinned {
            scheduler: LrpConfig::default(),
            reward_per_job: 100,
        };
        pin_settings(&store, &first, 2).unwrap();
        pin_settings(&store, &first, 2).unwrap();
        let changed = Pinned {
            scheduler: LrpConfig {
                lease_ms: 1_234,
                ..LrpConfig::default()
            },
            reward_per_job: 250,
        };
        let refused = pin_settings(&store, &changed, 2).unwrap_err().to_string();
        assert!(refused.contains("lease_ms 300000 → 1234"), "{refused}");
        assert!(refused.contains("reward_per_job 100 → 250"), "{refused}");
        assert!(refused.contains("2 batch(es) are still open"), "{refused}");
        assert_eq!(
            store.pinned().unwrap(),
            Some(first.clone()),
            "nothing re-pinned"
        );
        // With every batch proven the new settings are taken and pinned.
        pin_settings(&store, &changed, 0).unwrap();
        assert_eq!(store.pinned().unwrap(), Some(changed));
    }

    #[test]
    fn new_keys_are_refused_while_a_batch_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(dir.path()).unwrap();
        let keys = std::path::Path::new("keys");
        let (old, new) = (ContentHash([1; 32]), ContentHash([2; 32]));
        pin_verifying_key(&store, old, 1, keys).unwrap();
        pin_verifying_key(&store, old, 1, keys).unwrap();
        let refused = pin_verifying_key(&store, new, 1, keys)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains(&old.short()) && refused.contains(&new.short()),
            "{refused}"
        );
        assert_eq!(store.pinned_verifying_key().unwrap(), Some(old));
        pin_verifying_key(&store, new, 0, keys).unwrap();
        assert_eq!(store.pinned_verifying_key().unwrap(), Some(new));
    }
}
