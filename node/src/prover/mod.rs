//! The prover role: find the distributor, claim jobs, prove, submit, collect
//! receipts.
//!
//! `jobs` workers each loop claim → prove → submit ([`worker`]); proofs run
//! in [`worker::ProvingPools`], which a crowd of identities in one process
//! (`crowdprove crowd`) shares, as it shares the key cache. A task of its
//! own fetches receipts. The run loop takes gossip (an announcement wakes
//! idle workers), answers the API, publishes the status — never waiting on
//! the network — and handles shutdown: workers stop claiming, finish what
//! they hold within the grace period, and release what they cannot finish.
//!
//! # Layout
//! - [`client`]: signed calls to the distributor through a
//!   [`client::Link`] (the network; channels in the in-process tests),
//!   answers checked.
//! - [`worker`]: the claim → prove → submit loop; the proving pools.
//! - [`receipts`]: receipts fetched, checked and kept.
//! - [`payout`]: the payout address binding sent with every proof.
//! - [`anchoring`]: the kept balance proof a claim sends; the watch that
//!   raises the alarm when the blocks holding this prover's credits are not
//!   anchored on chain in time.
//! - [`keys`]: the proving-key cache (chunked, resumable, hash-checked fetch).
//! - [`fault`]: fault injection (byzantine submissions), apart from the hot path.
//! - [`status`]: the counters `/status` shows.
//! - this file: start-up, the run loop, the status document.

pub mod anchoring;
pub mod client;
pub mod fault;
pub mod holding;
pub mod keys;
pub mod payout;
pub mod receipts;
pub mod status;
pub mod witness;
pub mod worker;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use protocol::messages::AnyMessage;
use protocol::{BatchId, JobId, PublicKey, SecretKey, Timestamp};
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, watch};
use tracing::{Instrument, debug, error, info, info_span, warn};

use self::client::Client;
use self::keys::KeyCache;
use self::status::Tally;
use self::worker::ProvingPools;
use crate::api::ApiRequest;
use crate::config::ProverSection;
use crate::distributor::status::StatusBoard;
use crate::metrics::Metrics;
use crate::network::NetworkEvent;
use crate::node_info::NodeInfo;

pub use self::receipts::{Audit, audit as audit_receipts, check as check_receipt, receipt_path};

/// The time on this process's monotonic clock, in ms since its first
/// reading: what the prover measures waits by (a receipt owed, a credit
/// unanchored), so a wall clock stepped by an hour raises no alarm and
/// hides none.
pub fn monotonic_now() -> Timestamp {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let elapsed = START.get_or_init(Instant::now).elapsed().as_millis();
    Timestamp(u64::try_from(elapsed).unwrap_or(u64::MAX))
}

/// How often pending receipts are asked for.
const RECEIPT_POLL: Duration = Duration::from_secs(2);
/// How often the status document is refreshed.
const STATUS_REFRESH: Duration = Duration::from_millis(500);
/// Proven batches remembered (their held jobs are dropped unproved).
const PROVEN_KEPT: usize = 64;

/// What provers in one process may share: proving slots and the key cache.
#[derive(Clone)]
pub struct Resources {
    /// The proving slots.
    pub pools: ProvingPools,
    /// The proving-key cache.
    pub keys: Arc<KeyCache>,
}

impl Resources {
    /// One prover's own: `jobs` slots sharing the cores (or `threads` each),
    /// keys cached under `<data_dir>/keys`.
    pub fn local(settings: &ProverSection, data_dir: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            pools: ProvingPools::new(settings.jobs, settings.threads)?,
            keys: Arc::new(
                KeyCache::new(data_dir.join("keys"))
                    .with_max_key_bytes(settings.max_key_mb.saturating_mul(1 << 20))
                    .with_disk_budget(settings.key_cache_mb.saturating_mul(1 << 20)),
            ),
        })
    }
}

/// What one identity's workers share.
pub struct Shared {
    client: Arc<Client>,
    settings: ProverSection,
    /// The signed payout address sent with every proof, if one is set.
    payout: Option<protocol::PayoutBinding>,
    data_dir: PathBuf,
    receipts_dir: PathBuf,
    /// The hand-outs it holds, on disk.
    holding: holding::Holding,
    keys: Arc<KeyCache>,
    pools: ProvingPools,
    tally: Mutex<Tally>,
    /// Batches the distributor gossiped proven, newest last: a job of one
    /// of them is not worth proving any more.
    proven: Mutex<VecDeque<BatchId>>,
    wake: Notify,
    stop: watch::Receiver<bool>,
    started: Instant,
}

impl Shared {
    /// Whether `batch` is known to be proven already.
    fn is_proven(&self, batch: BatchId) -> bool {
        self.proven.lock().expect("proven lock").contains(&batch)
    }

    fn proven(&self, batch: BatchId) {
        let mut proven = self.proven.lock().expect("proven lock");
        if !proven.contains(&batch) {
            if proven.len() == PROVEN_KEPT {
                proven.pop_front();
            }
            proven.push_back(batch);
        }
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Worker `slot` is doing `doing` (on `job`) from now.
    fn doing(&self, slot: usize, doing: status::Doing, job: Option<JobId>) {
        self.tally().doing(slot, doing, job);
    }

    /// Milliseconds since this prover started.
    fn since_start(&self) -> u64 {
        status::millis(self.started.elapsed())
    }

    /// The counters; a worker that panicked holding them leaves them
    /// usable (counters are never left half-changed in a way that matters).
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

    /// The `/status` document of this identity.
    pub fn status(&self) -> Value {
        let mut doc = self.tally().to_json();
        let distributor = self.client.distributor();
        doc["role"] = json!("prover");
        doc["now_ms"] = json!(Timestamp::now().0);
        doc["uptime_ms"] = json!(self.started.elapsed().as_millis() as u64);
        doc["public_key"] = json!(self.client.me().to_hex());
        doc["distributor"] = json!(distributor.to_hex());
        doc["distributor_node_id"] = json!(distributor.node_id().to_string());
        doc["fault"] = json!(format!("{:?}", self.settings.fault).to_lowercase());
        doc["payout_address"] = json!(self.payout.as_ref().map(|b| b.address.to_string()));
        if let Some(work) = self.keys.work() {
            doc["key"] = json!(work);
        }
        doc
    }

    /// Workers that stopped for good, and the last error.
    pub fn stopped(&self) -> (u64, Option<String>) {
        let t = self.tally();
        (t.stopped_workers, t.last_error.clone())
    }
}

/// One prover identity, ready to run.
pub struct Prover {
    shared: Arc<Shared>,
    watch: Option<anchoring::WatchSettings>,
}

impl Prover {
    /// A prover for `secret`, working for `distributor`, receipts under
    /// `<data_dir>/receipts`, its payout binding in `<data_dir>`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: ProverSection,
        distributor: PublicKey,
        secret: SecretKey,
        data_dir: &Path,
        link: impl client::Link,
        metrics: Arc<Metrics>,
        resources: Resources,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let payout = payout::binding(&secret, &settings.payout_address, data_dir)?;
        let client = Arc::new(Client::new(secret, distributor, Arc::new(link), metrics));
        let receipts_dir = data_dir.join("receipts");
        let mut tally = Tally::default();
        tally.kept_proof = anchoring::kept(data_dir, anchoring::BALANCE_PROOF_FILE, &distributor);
        tally.anchored_proof = anchoring::kept(data_dir, anchoring::ANCHORED_FILE, &distributor);
        match receipts::load_owed(&receipts_dir) {
            Ok(owed) => {
                if !owed.is_empty() {
                    info!(target: "prover", owed = owed.len(), "receipts still owed from the last run");
                }
                tally.awaiting_receipts = owed;
            }
            Err(e) => {
                warn!(target: "prover", error = %format!("{e:#}"), "cannot read the owed-receipts list")
            }
        }
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                settings,
                payout,
                data_dir: data_dir.to_path_buf(),
                receipts_dir,
                holding: holding::Holding::open(data_dir),
                keys: resources.keys,
                pools: resources.pools,
                tally: Mutex::new(tally),
                proven: Mutex::new(VecDeque::new()),
                wake: Notify::new(),
                stop,
                started: Instant::now(),
            }),
            watch: None,
        })
    }

    /// Watches the anchoring of this prover's credits on chain while it
    /// runs ([`anchoring`]); the kept balance proof's block counts as
    /// credited now.
    pub fn watch_anchoring(mut self, settings: anchoring::WatchSettings) -> Self {
        let mut watching = anchoring::Anchoring::new(settings.payouts, settings.deadline);
        let mut t = self.shared.tally();
        if let Some(kept) = t.kept_proof {
            watching.credited(kept.height, monotonic_now());
        }
        t.anchoring = Some(watching);
        drop(t);
        self.watch = Some(settings);
        self
    }

    /// A handle to read this prover's status while it runs.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Runs until `stop` fires and every worker has finished or released its
    /// job. With `board`, publishes the status document there (with `info`).
    pub async fn run(
        self,
        mut events: mpsc::Receiver<NetworkEvent>,
        mut api: mpsc::Receiver<ApiRequest>,
        board: Option<(StatusBoard, NodeInfo)>,
    ) -> anyhow::Result<()> {
        let shared = self.shared;
        let jobs = shared.settings.jobs.max(1);
        info!(
            target: "prover",
            distributor = %shared.client.distributor().node_id(),
            jobs,
            slots = shared.pools.slots(),
            threads = shared.pools.threads(),
            fault = ?shared.settings.fault,
            "prover starting"
        );
        tokio::spawn(give_back_leftovers(shared.clone()));
        let mut workers = tokio::task::JoinSet::new();
        for slot in 0..jobs {
            let shared = shared.clone();
            workers.spawn(worker::run(shared, slot).instrument(info_span!("worker", slot)));
        }
        let publish = |shared: &Shared| {
            if let Some((board, info)) = &board {
                let mut doc = shared.status();
                doc["node"] = info.to_json();
                board.publish(doc);
            }
        };
        publish(&shared);
        // Receipts on a task of their own: a slow or absent distributor must
        // not hold up the status or the API.
        let fetcher = spawn_receipt_fetcher(shared.clone());
        let watch = self
            .watch
            .map(|settings| tokio::spawn(anchoring::watch(shared.clone(), settings)));
        let mut status = tokio::time::interval(STATUS_REFRESH);
        let mut stop_signal = shared.stop.clone();
        let mut stopping = false;
        loop {
            tokio::select! {
                Some(event) = events.recv() => on_network(&shared, event),
                Some(request) = api.recv() => on_api(request),
                _ = status.tick() => publish(&shared),
                done = workers.join_next() => match done {
                    Some(Err(e)) if e.is_panic() => worker_panicked(&shared, e),
                    Some(_) => {}
                    None => break,
                },
                _ = stop_signal.changed(), if !stopping => {
                    stopping = true;
                    info!(target: "prover", "stopping: finishing or releasing held jobs");
                }
            }
        }
        // Stopped or not (every worker may have given up), the fetcher goes;
        // one last round asks for what is still owed.
        fetcher.abort();
        let _ = fetcher.await;
        if let Some(watch) = watch {
            watch.abort();
            let _ = watch.await;
        }
        receipts::fetch(&shared).await;
        publish(&shared);
        // The workers may see the stop and end before this loop does.
        if !stopping && !shared.stopping() {
            // Nobody asked it to stop, and no worker is left: not a success.
            let (stopped, last_error) = shared.stopped();
            bail!(
                "every worker stopped ({stopped} of {jobs}), so this prover takes no more jobs: {}",
                last_error.unwrap_or_else(|| "no reason recorded".into())
            );
        }
        let t = shared.tally();
        info!(target: "prover", accepted = t.accepted, earned = t.earned, "prover stopped");
        Ok(())
    }
}

/// A worker's task panicked: it is counted as stopped, with the panic as
/// the last error.
fn worker_panicked(shared: &Shared, e: tokio::task::JoinError) {
    let what = format!(
        "a worker panicked: {}",
        worker::panic_message(&*e.into_panic())
    );
    error!(target: "prover", "{what}");
    let mut t = shared.tally();
    t.stopped_workers += 1;
    t.last_error = Some(what);
}

/// Releases the jobs this prover held when it last stopped
/// ([`holding::Holding`]).
async fn give_back_leftovers(shared: Arc<Shared>) {
    shared.holding.give_back_leftovers(&shared.client).await
}

/// Fetches owed receipts every [`RECEIPT_POLL`] until the prover stops.
fn spawn_receipt_fetcher(shared: Arc<Shared>) -> tokio::task::JoinHandle<()> {
    let mut stop = shared.stop.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(RECEIPT_POLL);
        while !*stop.borrow() {
            tokio::select! {
                _ = every.tick() => receipts::fetch(&shared).await,
                changed = stop.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
    })
}

fn on_network(shared: &Shared, event: NetworkEvent) {
    match event {
        NetworkEvent::Gossip(AnyMessage::JobAnnouncement(a)) => {
            debug!(target: "prover", batch = %a.batch, jobs = a.jobs.len(), "announcement");
            shared.wake.notify_waiters();
        }
        NetworkEvent::Gossip(AnyMessage::BatchProven(p)) => {
            debug!(target: "prover", batch = %p.batch, "batch proven");
            shared.proven(p.batch);
        }
        NetworkEvent::Request { reply, .. } => {
            // Provers serve no requests; say so rather than leave the peer waiting.
            let refusal = protocol::messages::Rejected {
                reason: "not_a_distributor".into(),
            };
            shared.client.respond(reply, &refusal);
        }
        NetworkEvent::InboundFailure { reason, .. } => shared.client.metrics().reject(reason),
        NetworkEvent::Connected(peer) if peer == shared.client.distributor_peer() => {
            info!(target: "prover", "connected to the distributor");
            shared.wake.notify_waiters();
        }
        _ => {}
    }
}

fn on_api(request: ApiRequest) {
    request.not_served("prover");
}
