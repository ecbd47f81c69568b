//! Start-up, in the order it happens: the keys (checked against each
//! other), the state (job store, ledger, the rollup or circom workload),
//! the pinned settings, the services, the scheduler's replay, and recovery
//! of whatever a crash left half done.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use protocol::lrp::LrpEvent;
use protocol::{BatchId, CircuitId, ContentHash, JobId, PublicKey, SecretKey};
use prover_core::{AnyProvingKey, Circuit, ProvingKeyHead, Rollup, TxGenerator, VerifyingKey};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::centralized::LocalProver;
use super::chain::ChainSettings;
use super::courier::{Courier, Durable, Teller};
use super::intake::{Intake, Statements, Workload};
use super::journal::Journal;
use super::payout::{Payout, SharedLedger};
use super::queue::ServiceThread;
use super::router::{Admission, RateLimits};
use super::scheduler::{Log, Scheduler};
use super::serving::{KeyBudget, Server, Sources};
use super::status::StatusBoard;
use super::store::{JobStore, Pinned};
use super::submission::Settlement;
use super::verify::{self, VerifyPool};
use super::wire::{Edge, Outbox};
use super::{Core, Counters, Distributor, Internal, Services, Threads};
use crate::config::{ChainSection, Config, DistributorSection};
use crate::disk::Space;
use crate::metrics::Metrics;
use crate::node_info::NodeInfo;

/// Starting balance of every generated account.
pub const GENESIS_BALANCE: u64 = 1_000_000_000;
/// Batches that may wait to be built.
const INTAKE_QUEUE: usize = 4;

/// Where a circom circuit's constraint system is kept in `keys_dir`.
pub fn r1cs_path(keys_dir: &Path, circuit: &CircuitId) -> PathBuf {
    keys_dir.join(format!("{circuit}.r1cs"))
}

/// Paths of a circuit's key files in `keys_dir`: `<circuit>.pk` (a circom
/// circuit's: `<circuit>.zkey`, the snarkjs file as registered) and
/// `<circuit>.vk`.
pub fn key_paths(keys_dir: &Path, circuit: &CircuitId) -> (PathBuf, PathBuf) {
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

/// The circuit and its keys, loaded and checked against each other.
struct Keys {
    circuit: CircuitId,
    definition: Circuit,
    proving_key: ProvingKeyRead,
    proving_key_bytes: Vec<u8>,
    proving_key_hash: ContentHash,
    verifying_key: VerifyingKey,
    /// The command that (re)creates the keys, for error messages.
    make_keys: String,
}

/// What the distributor reads of its proving key, whose bytes it serves
/// and which it proves nothing with (but in centralized mode, which parses
/// the whole key): a transfer key's head, what the pairing check reads
/// (the queries, nearly all of the key, are decompressed by each prover
/// that loads it), or a circom circuit's whole zkey, against which the
/// intake checks witnesses.
enum ProvingKeyRead {
    Head(Box<ProvingKeyHead>),
    Zkey(Arc<prover_core::CircomKey>),
}

impl ProvingKeyRead {
    fn parse(definition: Circuit, bytes: &[u8], hash: ContentHash) -> prover_core::Result<Self> {
        match definition {
            Circuit::Transfer(_) => {
                ProvingKeyHead::from_bytes(bytes, Some(hash)).map(|head| Self::Head(Box::new(head)))
            }
            Circuit::Circom(_) => match AnyProvingKey::from_bytes(definition, bytes, Some(hash))? {
                AnyProvingKey::Circom(zkey) => Ok(Self::Zkey(zkey)),
                AnyProvingKey::Transfer(_) => {
                    unreachable!("a circom circuit's key parses as a zkey")
                }
            },
        }
    }

    fn check_pairs_with(&self, vk: &VerifyingKey) -> prover_core::Result<()> {
        match self {
            Self::Head(head) => head.check_pairs_with(vk),
            Self::Zkey(zkey) => zkey.check_pairs_with(vk),
        }
    }
}

impl Keys {
    /// Transfers one job proves.
    fn transfers_per_job(&self) -> usize {
        match self.definition {
            Circuit::Transfer(config) => config.transfers_per_job as usize,
            Circuit::Circom(_) => 1,
        }
    }

    /// "cannot load `path`; create the keys with …"
    fn missing(&self, path: &Path, keys_dir: &Path) -> String {
        format!(
            "cannot load {}; create the keys with `{} --out {}`",
            path.display(),
            self.make_keys,
            keys_dir.display()
        )
    }
}

/// The durable state under the data dir.
struct State {
    store: Arc<JobStore>,
    ledger: SharedLedger,
    batches: u64,
    batches_proven: u64,
}

impl Distributor {
    /// Opens (or creates) the distributor's state under the data dir,
    /// replays its scheduler log and starts its services. Its answers and
    /// gossip leave through `edge`.
    pub fn open(
        config: &Config,
        secret: SecretKey,
        edge: Edge,
        metrics: Arc<Metrics>,
        info: NodeInfo,
        status: StatusBoard,
    ) -> anyhow::Result<Self> {
        let settings = &config.distributor;
        let keys = load_keys(settings)?;
        metrics.set_key_setup(keys.verifying_key.setup());
        let (state, workload) = open_state(config, &secret, &keys)?;
        pin(config, &state, &keys)?;
        let space = Space::floor(&config.node.data_dir, settings.min_free_disk_mb);
        space.check().map_err(|full| anyhow!("{full}"))?;
        let (internal_tx, internal) = mpsc::unbounded_channel();
        let outbox = Outbox::new(edge.transmit, secret.clone(), metrics.clone());
        let wiring = Wiring {
            outbox: &outbox,
            metrics: &metrics,
            space: &space,
            internal_tx: &internal_tx,
        };
        let chain = chain_settings(config, &keys)?;
        let started = start_services(settings, &keys, &state, workload, &wiring)?;
        let scheduler = replay(config, &state.store, started.journal)?;
        let local = local_prover(settings, &keys)?;
        let counters = Counters::new(state.batches, state.batches_proven);
        let core = Core::new(config, &secret, keys, state, scheduler)?;
        let services = Services {
            outbox,
            payout: started.payout,
            pool: started.pool,
            server: started.server,
            intake: started.intake,
            local,
            internal_tx,
            internal,
            threads: Some(started.threads),
            chain: super::ChainService::Configured(chain),
            edge_stats: edge.stats,
            metrics,
            status,
            info,
        };
        let mut distributor = Self {
            core,
            services,
            counters,
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
        let now = self.core.scheduler.now();
        self.core
            .scheduler
            .apply(LrpEvent::Resume { now }, |_| Log::plain());
        let mut open = 0;
        for batch in self.core.store.batches()? {
            if batch.proven.is_none() {
                open += self.recover_batch(batch.id)?;
            }
        }
        let lrp = self.core.scheduler.lrp();
        let counts = lrp.counts();
        info!(
            target: "distributor",
            batches = self.counters.batches,
            open_jobs = open,
            fresh = counts.fresh,
            pending = counts.pending,
            next_request = lrp.next_request_id().0,
            ledger_height = self.core.ledger.read().expect("ledger lock").height(),
            "state loaded"
        );
        Ok(())
    }

    /// Pays `batch`'s completed jobs the ledger misses; once the last is
    /// paid (or at once, if none is missing) a finished batch is checked.
    /// Returns how many of its jobs are still open.
    fn recover_batch(&mut self, batch: BatchId) -> anyhow::Result<usize> {
        let mut open = 0;
        let mut missing = Vec::new();
        let reward = self.core.settings.reward_per_job;
        for (index, job) in self.core.store.batch_jobs(batch)?.into_iter().enumerate() {
            let id = JobId::new(batch, index as u32);
            match job.done {
                Some(done)
                    if !self
                        .core
                        .ledger
                        .read()
                        .expect("ledger lock")
                        .is_credited(id)? =>
                {
                    warn!(target: "distributor", job = %id, "completed before the crash but not paid; paying now");
                    missing.push(Settlement::recovered(id, &done, reward));
                }
                Some(_) => {}
                None => open += 1,
            }
        }
        let finished = self.core.scheduler.lrp().is_finished(batch);
        match missing.last_mut() {
            Some(last) => last.batch_finished = finished,
            None if finished => {
                let _ = self.services.internal_tx.send(Internal::Credited(batch));
            }
            None => {}
        }
        for settlement in missing {
            self.services
                .payout
                .credit(settlement.credit(), settlement.payout.clone(), settlement);
        }
        Ok(open)
    }

    /// Re-announces open batches: provers that were waiting learn of them.
    pub(super) fn announce_open_batches(&self) -> anyhow::Result<()> {
        for batch in self.core.store.batches()? {
            if batch.proven.is_none() {
                self.announce(&batch);
            }
        }
        Ok(())
    }
}

impl Core {
    fn new(
        config: &Config,
        secret: &SecretKey,
        keys: Keys,
        state: State,
        scheduler: Scheduler,
    ) -> anyhow::Result<Self> {
        let settings = &config.distributor;
        Ok(Self {
            public: secret.public(),
            max_batch_txs: protocol::messages::MAX_JOBS_PER_ANNOUNCEMENT * keys.transfers_per_job(),
            generates_batches: matches!(keys.definition, Circuit::Transfer(_)),
            key_budget: KeyBudget::new(
                keys.proving_key_bytes.len() as u64,
                settings.key_downloads_per_hour,
            ),
            circuit: keys.circuit,
            proving_key_hash: keys.proving_key_hash,
            verifying_key: Arc::new(keys.verifying_key),
            admission: admission(config, settings)?,
            scheduler,
            store: state.store,
            ledger: state.ledger,
            settings: settings.clone(),
        })
    }
}

impl Counters {
    fn new(batches: u64, batches_proven: u64) -> Self {
        Self {
            batches,
            batches_stored: batches,
            batches_proven,
            last_generated: Instant::now(),
            unchecked: Vec::new(),
            verify_count: 0,
            verify_seconds: 0.0,
            exports: Arc::default(),
            started: Instant::now(),
            last_status: None,
        }
    }
}

/// The settings and the verifying key the open batches were cut under
/// stay, or the start is refused.
fn pin(config: &Config, state: &State, keys: &Keys) -> anyhow::Result<()> {
    let open_batches = state.batches - state.batches_proven;
    let settings = &config.distributor;
    let pinned = Pinned {
        scheduler: config.lrp(),
        reward_per_job: settings.reward_per_job,
    };
    pin_settings(&state.store, &pinned, open_batches)?;
    pin_verifying_key(
        &state.store,
        keys.verifying_key.hash(),
        open_batches,
        &settings.keys_dir,
    )
}

/// The centralized baseline's prover, when asked for.
fn local_prover(settings: &DistributorSection, keys: &Keys) -> anyhow::Result<Option<LocalProver>> {
    if !settings.centralized {
        return Ok(None);
    }
    info!(target: "distributor", jobs = settings.centralized_jobs, "centralized mode: proving every job here");
    let key = match &keys.proving_key {
        ProvingKeyRead::Zkey(zkey) => AnyProvingKey::Circom(zkey.clone()),
        ProvingKeyRead::Head(_) => AnyProvingKey::from_bytes(
            keys.definition,
            &keys.proving_key_bytes,
            Some(keys.proving_key_hash),
        )?,
    };
    let prover = LocalProver::new(Arc::new(key), settings.centralized_jobs)?;
    Ok(Some(prover))
}

/// Loads the circuit's keys and checks that they belong together and were
/// made by a setup fit for the settings.
fn load_keys(settings: &DistributorSection) -> anyhow::Result<Keys> {
    let circuit = CircuitId::new(settings.circuit.clone())
        .map_err(|e| anyhow!("invalid circuit id {:?}: {e}", settings.circuit))?;
    let definition =
        Circuit::from_id(&circuit).with_context(|| format!("unsupported circuit {circuit}"))?;
    let make_keys = match definition {
        Circuit::Transfer(_) => format!("crowdprove setup --circuit {circuit}"),
        Circuit::Circom(_) => "crowdprove setup --zkey <circuit.zkey> --r1cs <circuit.r1cs>".into(),
    };
    let keys_dir = &settings.keys_dir;
    let (pk_path, vk_path) = key_paths(keys_dir, &circuit);
    let missing = |path: &Path| {
        format!(
            "cannot load {}; create the keys with `{make_keys} --out {}`",
            path.display(),
            keys_dir.display()
        )
    };
    let verifying_key =
        VerifyingKey::load_for(&vk_path, &circuit, None).with_context(|| missing(&vk_path))?;
    let proving_key_bytes = std::fs::read(&pk_path).with_context(|| missing(&pk_path))?;
    let proving_key_hash = ContentHash::of(&proving_key_bytes);
    let keys = Keys {
        proving_key: ProvingKeyRead::parse(definition, &proving_key_bytes, proving_key_hash)
            .with_context(|| format!("cannot parse proving key {}", pk_path.display()))?,
        circuit,
        definition,
        proving_key_bytes,
        proving_key_hash,
        verifying_key,
        make_keys,
    };
    check_keys(&keys, settings, &pk_path, &vk_path)?;
    check_batch_size(settings, keys.transfers_per_job())?;
    Ok(keys)
}

/// The proving key provers will fetch must match the verifying key their
/// proofs are judged by, or every honest proof fails and honest provers
/// are struck; and keys anyone can forge proofs for run only in dev mode.
fn check_keys(
    keys: &Keys,
    settings: &DistributorSection,
    pk_path: &Path,
    vk_path: &Path,
) -> anyhow::Result<()> {
    let checked = Instant::now();
    let (vk, keys_dir) = (&keys.verifying_key, settings.keys_dir.display());
    if let Err(e) = keys.proving_key.check_pairs_with(vk) {
        bail!(
            "{} and {}: {e}; recreate both with `{} --out {keys_dir} --force` while no \
             batch is open",
            pk_path.display(),
            vk_path.display(),
            keys.make_keys,
        );
    }
    if !vk.setup().is_secure() {
        if !settings.dev {
            bail!(
                "the keys in {keys_dir} come from an {} setup: anyone can forge proofs for them; \
                 create real ones with `crowdprove setup --circuit {} --out {keys_dir} --force` \
                 (no batch open), or pass --dev on a testnet",
                vk.setup(),
                keys.circuit,
            );
        }
        warn!(target: "distributor", setup = %vk.setup(), "development mode: running keys anyone can forge proofs for");
    }
    debug!(target: "distributor", ms = checked.elapsed().as_millis() as u64, "proving key matches the verifying key");
    Ok(())
}

/// A batch must cut into 1 to `MAX_JOBS_PER_ANNOUNCEMENT` jobs.
fn check_batch_size(settings: &DistributorSection, transfers_per_job: usize) -> anyhow::Result<()> {
    let jobs_per_batch = settings.batch_txs.div_ceil(transfers_per_job);
    let max = protocol::messages::MAX_JOBS_PER_ANNOUNCEMENT;
    if settings.batch_txs == 0 || jobs_per_batch > max {
        bail!(
            "batch_txs {} gives {jobs_per_batch} jobs per batch; it must give 1 to {max}",
            settings.batch_txs,
        );
    }
    Ok(())
}

/// Opens the job store and the ledger, and the workload they hold.
fn open_state(
    config: &Config,
    secret: &SecretKey,
    keys: &Keys,
) -> anyhow::Result<(State, Workload)> {
    let data = &config.node.data_dir;
    let store = Arc::new(JobStore::open(data.join("jobs"))?);
    let ledger_config = ledger::LedgerConfig {
        max_block_age_ms: config.distributor.block_interval_ms,
        ..ledger::LedgerConfig::default()
    };
    let ledger = ledger::Ledger::open(data.join("ledger"), secret, ledger_config)?;
    let workload = match (keys.definition, &keys.proving_key) {
        (Circuit::Transfer(circuit_config), _) => {
            rollup_workload(&config.distributor, &store, circuit_config, keys, data)?
        }
        (Circuit::Circom(_), ProvingKeyRead::Zkey(circom)) => {
            circom_workload(&config.distributor, &store, circom, keys, data)?
        }
        (Circuit::Circom(_), ProvingKeyRead::Head(_)) => {
            unreachable!("a circom circuit's key parses as a zkey")
        }
    };
    let all = store.batches()?;
    let batches_proven = all.iter().filter(|b| b.proven.is_some()).count() as u64;
    let state = State {
        batches: all.len() as u64,
        batches_proven,
        store,
        ledger: Arc::new(RwLock::new(ledger)),
    };
    Ok((state, workload))
}

/// The transfer rollup: its saved state, or a new genesis.
fn rollup_workload(
    settings: &DistributorSection,
    store: &JobStore,
    circuit_config: prover_core::CircuitConfig,
    keys: &Keys,
    data: &Path,
) -> anyhow::Result<Workload> {
    let mut generator = TxGenerator::new(settings.seed, settings.accounts);
    let rollup = match store.rollup_state()? {
        Some(bytes) => {
            let rollup = Rollup::from_bytes(&bytes).context("the saved rollup state is corrupt")?;
            if rollup.config() != circuit_config {
                bail!(
                    "the data dir {} holds a rollup for circuit {}, not {}; use another data dir",
                    data.display(),
                    rollup.config().circuit_id(),
                    keys.circuit
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
    Ok(Workload::Rollup {
        rollup,
        generator,
        batch_txs: settings.batch_txs,
    })
}

/// A circom circuit: its constraint system, checked against the zkey.
fn circom_workload(
    settings: &DistributorSection,
    store: &Arc<JobStore>,
    circom: &Arc<prover_core::CircomKey>,
    keys: &Keys,
    data: &Path,
) -> anyhow::Result<Workload> {
    if !(1..=256).contains(&settings.max_witness_mb) {
        bail!(
            "[distributor] max_witness_mb (--max-witness-mb) is {}; it must be 1 to 256 (MiB)",
            settings.max_witness_mb
        );
    }
    if store.rollup_state()?.is_some() {
        bail!(
            "the data dir {} holds a transfer rollup, not circom circuit {}; use another data dir",
            data.display(),
            keys.circuit
        );
    }
    let path = r1cs_path(&settings.keys_dir, &keys.circuit);
    let r1cs = prover_core::CircomR1cs::load(&path)
        .with_context(|| keys.missing(&path, &settings.keys_dir))?;
    r1cs.check_matches(circom).with_context(|| {
        let (pk_path, _) = key_paths(&settings.keys_dir, &keys.circuit);
        format!(
            "{} does not belong to {}",
            path.display(),
            pk_path.display()
        )
    })?;
    info!(target: "distributor", constraints = circom.num_constraints(), public_signals = circom.num_public(), "circom circuit: batches are the witness files submitted to POST /batch/witnesses");
    Ok(Workload::Circom {
        key: circom.clone(),
        r1cs: Arc::new(r1cs),
        statements: Statements::new(store.clone()),
        max_witness_bytes: settings.max_witness_mb << 20,
    })
}

fn admission(config: &Config, settings: &DistributorSection) -> anyhow::Result<Admission> {
    let allowlist: HashSet<PublicKey> = config.allowlist()?.into_iter().collect();
    Ok(Admission::new(
        allowlist,
        RateLimits {
            per_peer: settings.rate_limit_per_sec,
            peer_burst: settings.rate_limit_burst,
            per_ip: settings.rate_limit_per_ip_per_sec,
            per_subnet: settings.rate_limit_per_subnet_per_sec,
        },
    ))
}

/// The chain client's settings, if `[chain] rpc_url` is set.
fn chain_settings(config: &Config, keys: &Keys) -> anyhow::Result<Option<Box<ChainSettings>>> {
    let chain = &config.chain;
    if chain.rpc_url.is_empty() {
        return Ok(None);
    }
    let key = std::fs::read_to_string(&chain.account_key)
        .with_context(|| format!("cannot read the chain account key {}", chain.account_key))?;
    Ok(Some(Box::new(ChainSettings {
        rpc: chain.rpc_url.clone(),
        key,
        settlement: ChainSection::contract(&chain.settlement, "settlement")?,
        payouts: ChainSection::contract(&chain.payouts, "payouts")?,
        confirmations: chain.confirmations,
        replace_after: std::time::Duration::from_secs(chain.replace_after_secs),
        data_dir: config.node.data_dir.clone(),
        verifying_key: keys.verifying_key.clone(),
        statements: matches!(keys.definition, Circuit::Circom(_)),
    })))
}

/// The service threads, started and wired to each other and the run loop.
struct Started {
    journal: Journal<Durable>,
    payout: Payout<Settlement>,
    pool: VerifyPool<super::submission::Submission, super::batch::BatchContext>,
    server: Server,
    intake: Intake<super::BatchReply>,
    threads: Threads,
}

/// What the services are wired to.
struct Wiring<'a> {
    outbox: &'a Outbox,
    metrics: &'a Arc<Metrics>,
    space: &'a Space,
    internal_tx: &'a mpsc::UnboundedSender<Internal>,
}

fn start_services(
    settings: &DistributorSection,
    keys: &Keys,
    state: &State,
    workload: Workload,
    wiring: &Wiring<'_>,
) -> anyhow::Result<Started> {
    let (outbox, metrics) = (wiring.outbox, wiring.metrics);
    let to_loop = || wiring.internal_tx.clone();
    let (payout, payout_thread, journal, journal_thread) = start_writers(state, wiring)?;
    let checked = to_loop();
    let (pool, pool_thread) = VerifyPool::start(
        Arc::new(keys.verifying_key.prepare()),
        verify::PoolConfig {
            threads: match settings.verify_threads {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n,
            },
            queue: settings.verify_queue,
            max_batch: settings.verify_batch,
        },
        move |result| {
            let _ = checked.send(Internal::Checked(result));
        },
    )?;
    let (server, server_thread) = Server::start(
        Sources {
            proving_key: Arc::new(keys.proving_key_bytes.clone()),
            proving_key_hash: keys.proving_key_hash,
            ledger: state.ledger.clone(),
            store: state.store.clone(),
            metrics: metrics.clone(),
        },
        outbox.clone(),
        settings.serve_queue,
    )?;
    let built = to_loop();
    let (intake, intake_thread) = Intake::start(
        workload,
        BatchId(state.batches),
        INTAKE_QUEUE,
        move |batch, reply| {
            let _ = built.send(Internal::Built(batch, reply));
        },
    )?;
    Ok(Started {
        journal,
        payout,
        pool,
        server,
        intake,
        threads: Threads {
            intake: intake_thread,
            pool: pool_thread,
            journal: journal_thread,
            payout: payout_thread,
            server: server_thread,
        },
    })
}

/// The two writers, wired so a journal entry's follow-up reaches the payout
/// writer and a payout's reaches the prover.
fn start_writers(
    state: &State,
    wiring: &Wiring<'_>,
) -> anyhow::Result<(
    Payout<Settlement>,
    ServiceThread,
    Journal<Durable>,
    ServiceThread,
)> {
    let fatal = || {
        let tx = wiring.internal_tx.clone();
        move |e: String| {
            let _ = tx.send(Internal::Fatal(e));
        }
    };
    let teller = Teller {
        outbox: wiring.outbox.clone(),
        to_loop: wiring.internal_tx.clone(),
    };
    let (payout, payout_thread) = Payout::start(
        state.ledger.clone(),
        wiring.metrics.clone(),
        wiring.space.clone(),
        move |settlement| teller.paid(settlement),
        fatal(),
    )?;
    let courier = Courier {
        outbox: wiring.outbox.clone(),
        payout: payout.handle(),
        store: state.store.clone(),
        to_loop: wiring.internal_tx.clone(),
    };
    let (journal, journal_thread) = Journal::start(
        state.store.clone(),
        wiring.space.clone(),
        move |durable| courier.durable(durable),
        fatal(),
    )?;
    Ok((payout, payout_thread, journal, journal_thread))
}

/// Restores the scheduler from the store's snapshot and the events after it.
fn replay(
    config: &Config,
    store: &JobStore,
    journal: Journal<Durable>,
) -> anyhow::Result<Scheduler> {
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
        config.distributor.reward_per_job,
        journal,
    )?;
    info!(
        target: "distributor",
        snapshot_jobs = snapshot.as_ref().map_or(0, |s| s.lrp.jobs()),
        events = events.len(),
        ms = started.elapsed().as_millis() as u64,
        "scheduler state restored"
    );
    Ok(scheduler)
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

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::lrp::LrpConfig;

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
