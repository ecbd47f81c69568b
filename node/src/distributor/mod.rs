//! The distributor role: batches in, jobs out, proofs verified, provers paid.
//!
//! A run loop routes each inbound message to the file of its step; the
//! heavy work runs on service threads behind queues, so the loop itself
//! does no proof verification, no fsync and no batch building:
//!
//! ```text
//!  network ─▶ lanes (proofs first) ─▶ run loop: admission ─┬─▶ handout:   scheduler ─▶ journal ─▶ assignment
//!                                                           ├─▶ submission: verification pool ─▶ judge ─▶ journal
//!                                                           │                 (stored) ─▶ payout (paid) ─▶ told
//!                                                           └─▶ serving:    key chunks, receipts
//!  API ─▶ run loop ─▶ batch: intake ─▶ scheduler ─▶ journal ─▶ announce
//! ```
//!
//! Every scheduler input is logged to the job store before its effect
//! leaves the node; on restart the log is replayed, so hand-outs made
//! before a crash stay valid and no job is lost or paid twice. Nothing here
//! names a transport type: requests arrive as [`wire::Inbound`] values and
//! answers leave through [`wire::Outbox`], so the whole role runs
//! in-process in tests (`node/tests/distributor.rs`).
//!
//! # Layout, in the order a job meets it
//! - [`wire`]: the edge — inbound lanes, the outbox, replies by id.
//! - [`router`]: admission — rate limits, envelope, signer, allowlist.
//! - [`handout`]: job requests, heartbeats, releases, key requests; the
//!   baseline's own hand-outs.
//! - [`submission`]: proofs — the checks before verification, the verdict,
//!   and the [`submission::Settlement`] that carries a winner through
//!   stored, paid and told.
//! - [`courier`]: what the journal and payout writer pass on once durable.
//! - [`batch`]: batches built, stored, announced, checked and proven.
//! - [`http`]: the operator API's requests (batches in, proofs out).
//! - [`chain`]: proven batches settled and ledger blocks anchored on L1.
//! - [`start`]: start-up — keys, state, services, replay, recovery.
//! - services: [`scheduler`] (the LRP and history; the one `apply`),
//!   [`journal`] (job-store writer), [`verify`] (verification pool),
//!   [`payout`] (ledger writer), [`serving`] (key chunks, receipts),
//!   [`intake`] (batch building), [`queue`] (their queues and threads),
//!   [`centralized`] (the local-proving baseline).
//! - [`store`], [`history`], [`status`], [`pardon`]: the durable job store,
//!   per-prover counters, the `/status` snapshot, bans lifted.
//! - [`soak`]: an open crowd driven through the scheduler, for the soak
//!   test and `examples/soak.rs`.
//! - this file: the state, the run loop, dispatch, shutdown.

pub mod batch;
pub mod centralized;
pub mod chain;
pub mod courier;
pub mod handout;
pub mod history;
pub mod http;
pub mod intake;
pub mod journal;
pub mod pardon;
pub mod payout;
pub mod queue;
pub mod router;
pub mod scheduler;
pub mod serving;
pub mod soak;
pub mod start;
pub mod status;
pub mod store;
pub mod submission;
pub mod verify;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use protocol::messages::AnyMessage;
use protocol::{BatchId, CircuitId, ContentHash, PublicKey, Timestamp};
use prover_core::VerifyingKey;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info};

use self::batch::BatchContext;
use self::centralized::{LocalProof, LocalProver};
use self::intake::{Intake, NewBatch};
use self::payout::{Payout, SharedLedger};
use self::queue::ServiceThread;
use self::router::Admission;
use self::scheduler::Scheduler;
use self::serving::{KeyBudget, Serve, Server};
use self::status::{QueueDepth, StatusBoard};
use self::store::JobStore;
use self::submission::{Settlement, Submission};
use self::verify::{Checked, VerifyPool};
use self::wire::{Inbound, Lane, Lanes, Outbox, Request};
use crate::api::{ApiRequest, Rejection};
use crate::config::DistributorSection;
use crate::metrics::Metrics;
use crate::node_info::NodeInfo;

pub use self::start::{GENESIS_BALANCE, key_paths, r1cs_path};

/// How often the distributor checks its timers and refreshes its status.
const TICK: Duration = Duration::from_millis(250);

/// Where a `POST /batch` answer goes; `None` for generated batches.
pub type BatchReply = Option<oneshot::Sender<Result<Value, Rejection>>>;

/// What the services tell the run loop.
pub enum Internal {
    /// Verdicts on proofs, or on a batch proof.
    Checked(Checked<Submission, BatchContext>),
    /// A batch intake built (or could not build).
    Built(anyhow::Result<NewBatch>, BatchReply),
    /// Every job of the batch is credited: check its batch proof.
    Credited(BatchId),
    /// A proven batch's record is on disk: count it proven.
    BatchRecorded(BatchId),
    /// A baseline hand-out is logged: prove it on the reserved slot.
    LocalAssigned(usize, protocol::messages::Assignment, Vec<u8>),
    /// The baseline proved a job.
    Local(LocalProof),
    /// A service cannot go on: the node must stop.
    Fatal(String),
}

/// The distributor.
pub struct Distributor {
    core: Core,
    services: Services,
    counters: Counters,
}

/// What every decision reads and the scheduler it changes.
struct Core {
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
    /// The verifying key: its hash is announced, its setup reported, and
    /// proofs are exported with it (off the run loop: shared).
    verifying_key: Arc<VerifyingKey>,
    /// What each prover may still fetch of the proving key.
    key_budget: KeyBudget,
    admission: Admission,
    scheduler: Scheduler,
    store: Arc<JobStore>,
    /// Read here (credited jobs, status); written by the payout thread.
    ledger: SharedLedger,
}

/// The threads the run loop hands work to, and the ways back.
struct Services {
    outbox: Outbox,
    payout: Payout<Settlement>,
    pool: VerifyPool<Submission, BatchContext>,
    server: Server,
    intake: Intake<BatchReply>,
    local: Option<LocalProver>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal: mpsc::UnboundedReceiver<Internal>,
    /// Taken at shutdown.
    threads: Option<Threads>,
    /// The L1 chain client, if a chain is configured.
    chain: ChainService,
    edge_stats: Arc<dyn Fn() -> crate::network::NetStats + Send + Sync>,
    metrics: Arc<Metrics>,
    status: StatusBoard,
    info: NodeInfo,
}

/// The chain client: configured at open, started by the run loop (it is a
/// task on the node's runtime).
enum ChainService {
    Configured(Option<Box<self::chain::ChainSettings>>),
    Running(self::chain::ChainClient),
}

/// The services' threads, joined at shutdown in pipeline order.
struct Threads {
    intake: ServiceThread,
    pool: ServiceThread,
    journal: ServiceThread,
    payout: ServiceThread,
    server: ServiceThread,
}

/// What the run loop counts and what waits on its timers.
struct Counters {
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
    /// `GET /proofs/<job>` exports being built off the run loop.
    exports: Arc<std::sync::atomic::AtomicUsize>,
    started: Instant,
    last_status: Option<Instant>,
}

impl Distributor {
    /// Serves until `shutdown` fires, then shuts the services down in order:
    /// intake stops, the verification pool drains and its verdicts are
    /// judged, the journal and the payout writer write what they hold and
    /// send the answers waiting on it, a last block is cut. The caller then
    /// stops the network, which flushes those answers.
    pub async fn run<L: Lane>(
        mut self,
        mut lanes: Lanes<L>,
        mut api: mpsc::Receiver<ApiRequest>,
        mut shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        self.announce_open_batches()?;
        self.start_chain()?;
        self.refresh_status(&lanes, &api);
        let mut tick = tokio::time::interval(TICK);
        let result = loop {
            tokio::select! {
                biased;
                Some(message) = self.services.internal.recv() => {
                    if let Err(e) = self.on_internal(message) {
                        break Err(e);
                    }
                }
                _ = shutdown.changed() => break Ok(()),
                Some(inbound) = lanes.proofs.recv() => self.on_inbound(inbound),
                Some(inbound) = lanes.requests.recv() => self.on_inbound(inbound),
                Some(request) = api.recv() => self.on_api(request),
                _ = tick.tick() => self.on_tick(&lanes, &api),
            }
        };
        drop(lanes);
        drop(api);
        self.shutdown().await;
        info!(target: "distributor", "stopped");
        result
    }

    /// Starts the chain client, if one is configured.
    fn start_chain(&mut self) -> anyhow::Result<()> {
        if let ChainService::Configured(Some(settings)) = &self.services.chain {
            let client = self::chain::ChainClient::start(
                (**settings).clone(),
                self.core.store.clone(),
                self.core.ledger.clone(),
                self.services.payout.clock(),
                self.services.metrics.clone(),
            )?;
            self.services.chain = ChainService::Running(client);
        }
        Ok(())
    }

    async fn shutdown(mut self) {
        if let ChainService::Running(client) =
            std::mem::replace(&mut self.services.chain, ChainService::Configured(None))
        {
            client.stop().await;
        }
        let services = &mut self.services;
        info!(target: "distributor", verifying = services.pool.depth(), "stopping: draining the services");
        services.intake.close();
        services.pool.close();
        let Threads {
            intake,
            pool,
            journal,
            payout,
            server,
        } = services.threads.take().expect("shut down once");
        join(move || pool.join()).await;
        join(move || intake.join()).await;
        // The pool's last verdicts: judge them, so their provers hear.
        while let Ok(message) = self.services.internal.try_recv() {
            if let Internal::Checked(Checked::Proofs(verdicts)) = message {
                for verdict in verdicts {
                    self.judge(verdict);
                }
            }
        }
        self.core.scheduler.close_journal();
        join(move || journal.join()).await;
        self.services.payout.close();
        join(move || payout.join()).await;
        self.services.server.close();
        join(move || server.join()).await;
    }

    /// The router: one line per kind of input.
    fn on_inbound(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::Request(request) => self.on_request(request),
            Inbound::Failed(reason) => {
                debug!(target: "net", reason, "inbound request failed");
                self.services.metrics.reject(reason);
            }
            Inbound::Gone(peer) => self.core.admission.disconnected(&peer),
        }
    }

    /// Admission, then dispatch by kind to the step's own file.
    fn on_request(&mut self, request: Request) {
        let Request {
            sender,
            from,
            bytes,
            reply,
        } = request;
        // Freshness is the sender's clock against the wall clock; the
        // scheduler's events run on its own clock, which never goes back.
        let (prover, body) = match self
            .core
            .admission
            .admit(sender, from, &bytes, Timestamp::now())
        {
            Ok(admitted) => admitted,
            Err(reason) => {
                debug!(target: "distributor", sender = ?sender.map(|k| k.node_id()), reason, "request refused");
                return self.services.outbox.refuse(reply, reason);
            }
        };
        let now = self.core.scheduler.now();
        match body {
            AnyMessage::JobRequest(request) => self.on_job_request(prover, request, reply),
            AnyMessage::ProofSubmission(proof) => self.on_submission(prover, proof, Some(reply)),
            AnyMessage::Heartbeat(heartbeat) => self.on_heartbeat(prover, heartbeat, reply, now),
            AnyMessage::Release(release) => self.on_release(prover, release, reply, now),
            AnyMessage::KeyRequest(request) => self.on_key_request(prover, request, reply, now),
            AnyMessage::WitnessRequest(request) => self.on_witness_request(prover, request, reply),
            AnyMessage::ReceiptRequest(request) => self.serve(Serve::Receipt(request, reply)),
            _ => self.services.outbox.refuse(reply, "unexpected_kind"),
        }
    }

    /// Hands `request` to the serving thread, or answers `busy`.
    fn serve(&mut self, request: Serve) {
        if let Err(request) = self.services.server.submit(request) {
            self.services.outbox.refuse(request.reply_to(), "busy");
        }
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
            Internal::Built(built, reply) => self.on_built(built, reply),
            Internal::Credited(batch) => self.check_batch(batch),
            Internal::BatchRecorded(batch) => self.count_proven(batch),
            Internal::LocalAssigned(slot, assignment, witness) => {
                self.start_local(slot, assignment, witness)
            }
            Internal::Local(local) => self.on_local_proof(local),
            Internal::Fatal(e) => return Err(anyhow!(e)),
        }
        Ok(())
    }

    fn on_tick<L: Lane>(&mut self, lanes: &Lanes<L>, api: &mpsc::Receiver<ApiRequest>) {
        self.core.admission.tick();
        for batch in std::mem::take(&mut self.counters.unchecked) {
            self.check_batch(batch);
        }
        self.generate_batch_if_due();
        self.fill_local();
        self.refresh_status(lanes, api);
    }

    /// Publishes the `/status` snapshot and the queue metrics.
    fn refresh_status<L: Lane>(&mut self, lanes: &Lanes<L>, api: &mpsc::Receiver<ApiRequest>) {
        if self
            .counters
            .last_status
            .is_some_and(|at| at.elapsed() < status::REFRESH)
        {
            return;
        }
        self.counters.last_status = Some(Instant::now());
        let (core, services, counters) = (&self.core, &self.services, &self.counters);
        let queues = [
            QueueDepth::new(
                "network_events",
                lanes.requests.depth(),
                lanes.requests.capacity(),
            ),
            QueueDepth::new(
                "proof_submissions",
                lanes.proofs.depth(),
                lanes.proofs.capacity(),
            ),
            QueueDepth::new("api_requests", api.len(), api.max_capacity()),
            QueueDepth::new(
                "verification",
                services.pool.depth(),
                services.pool.capacity(),
            ),
            QueueDepth::new(
                "serving",
                services.server.depth(),
                services.server.capacity(),
            ),
            QueueDepth::unbounded("journal", core.scheduler.journal_depth()),
            QueueDepth::unbounded("payout", services.payout.depth()),
            QueueDepth::new(
                "replay_memory",
                core.admission.remembered(),
                core.admission.remembered_capacity(),
            ),
        ];
        for q in &queues {
            services.metrics.queue(q.name, q.depth, q.capacity);
        }
        let counts = core.scheduler.lrp().counts();
        services
            .metrics
            .jobs_open
            .set((counts.fresh + counts.pending) as i64);
        let doc = status::document(&status::Parts {
            info: &services.info,
            settings: &core.settings,
            circuit: &core.circuit,
            proving_key: core.proving_key_hash,
            verifying_key: core.verifying_key.hash(),
            key_setup: core.verifying_key.setup(),
            store: &core.store,
            scheduler: &core.scheduler,
            ledger: &core.ledger,
            net: (services.edge_stats)(),
            queues: &queues,
            verify_count: counters.verify_count,
            verify_seconds: counters.verify_seconds,
            uptime_ms: counters.started.elapsed().as_millis() as u64,
            batches_stored: counters.batches_stored,
            batches_proven: counters.batches_proven,
            chain: match &services.chain {
                ChainService::Running(client) => Some(client.view()),
                ChainService::Configured(_) => None,
            },
        });
        services.status.publish(doc);
    }
}

/// Runs a blocking join off the async runtime's threads.
async fn join(f: impl FnOnce() + Send + 'static) {
    let _ = tokio::task::spawn_blocking(f).await;
}
